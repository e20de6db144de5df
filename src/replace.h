/*-------------------------------------------------------------------------
 *
 * replace.h
 *	  What replace.c (the replace family: slices, validation, diff and
 *	  delete_insert) and partswap.c (the swap mode) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGI_REPLACE_H
#define PGI_REPLACE_H

#include "pg_idempotent.h"

/* pg_idempotent.lock_timeout (ms) and pg_idempotent.lock_retries */
extern int	pgi_lock_timeout;
extern int	pgi_lock_retries;

/*
 * Where a slice lies in a partitioned table, and whether the swap mode can
 * replace it: filled by pgi_swap_locate, completed by pgi_swap_check.
 */
typedef struct PgiSwapTarget
{
	bool		partitioned;	/* the target is a partitioned table */
	bool		routable;		/* its key is the slice column, list/range */
	bool		found;			/* the slice value routes to a partition */
	bool		is_default;		/* ... which is the default partition */
	bool		has_default;	/* the target has a default partition */
	bool		is_leaf;		/* ... which is not partitioned itself */
	bool		exact;			/* the slice is exactly that partition */
	Oid			leaf;			/* that partition, or InvalidOid */
	char	   *leafname;		/* its name, for messages */
	List	   *leaves;			/* OIDs of the leaves a swap exchanges: that
								 * partition, or its partitions */
	char	   *refusal;		/* why swap does not apply, or NULL */
	int			refusal_code;	/* its SQLSTATE: 0A000, or 55000 when a swap
								 * would skip the table's triggers or
								 * row-level security */
} PgiSwapTarget;

/*
 * kind is 'p' (one value: values[0]) or 'r' (values[0] <= x < values[1]),
 * values of the column's type.
 */
extern void pgi_swap_locate(PgiRelation *target, int colidx, char kind,
							Datum *values, PgiSwapTarget *st);
extern void pgi_swap_check(PgiRelation *target, PgiSwapTarget *st);
extern int64 pgi_swap_count_leaf(PgiSwapTarget *st);
extern void pgi_swap_run(PgiRelation *target, PgiSwapTarget *st,
						 const PgiColumnList *cols, const char *sel,
						 PgiProgress *progress, int64 *inserted);

#endif							/* PGI_REPLACE_H */
