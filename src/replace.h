/*-------------------------------------------------------------------------
 *
 * replace.h
 *	  What the replace family's files share: replace.c (the calls: slices,
 *	  locks, the source's checks, mode choice), replace_diff.c (comparing
 *	  a slice with the source and writing the difference; delete_insert),
 *	  replace_where.c (the caller's predicate), partswap_plan.c (whether
 *	  the swap mode applies) and partswap.c (the swap).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGI_REPLACE_H
#define PGI_REPLACE_H

#include "pg_idempotent.h"

/* pg_idempotent.lock_timeout (ms) and pg_idempotent.lock_retries */
extern int	pgi_lock_timeout;
extern int	pgi_lock_retries;

/* What a call's slice is: the function that was called. */
typedef enum ReplaceKind
{
	REPLACE_VALUE,				/* replace_partition: column = value */
	REPLACE_RANGE,				/* replace_partition_range: lower <= column <
								 * upper */
	REPLACE_TABLE,				/* replace_table: every row */
	REPLACE_WHERE				/* replace_where: the caller's predicate */
} ReplaceKind;

/* How a call writes the slice (mode =>). */
typedef enum ReplaceMode
{
	MODE_AUTO,
	MODE_DIFF,
	MODE_SWAP,
	MODE_DELETE_INSERT
} ReplaceMode;

/* Everything a call knows about its slice, source and target. */
typedef struct ReplacePlan
{
	PgiRelation *target;
	PgiRelation *source;
	ReplaceKind kind;
	PgiColumnList cols;			/* target columns the source supplies */
	char	   *sel;			/* SELECT of cols from the source, in target
								 * types; once read, from "src" */
	PgiMaterialized src;		/* the source's rows, read once */
	char	   *pred;			/* the slice, unqualified column names */
	char	   *desc;			/* the slice as messages show it */
	PgiParams	params;			/* the slice's values ($1, $2) */
	int			colidx;			/* slice column in target->columns, or -1 */
	bool		allow_empty;
	char	   *imagefn;		/* our _replace_image, schema-qualified */
	bool		comparable;		/* rows can be compared by binary image */
	char	   *uncomparable;	/* why not, when they cannot */
	PgiProgress progress;
} ReplacePlan;

/* What a diff found: counts per side, as multisets. */
typedef struct DiffCounts
{
	int64		to_delete;
	int64		to_insert;
	int64		unchanged;
	int64		target_rows;
	int64		max_source_copies;	/* most copies of one image in the source */
	int64		max_target_copies;	/* ... and in the slice */
} DiffCounts;

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
 * kind is REPLACE_VALUE (one value: values[0]) or REPLACE_RANGE (values[0]
 * <= x < values[1]), values of the column's type.
 */
extern void pgi_swap_locate(PgiRelation *target, int colidx, ReplaceKind kind,
							Datum *values, PgiSwapTarget *st);
extern void pgi_swap_check(PgiRelation *target, PgiSwapTarget *st);
extern int64 pgi_swap_count_leaf(PgiSwapTarget *st);
extern char *pgi_swap_write_path_refusal(Oid target, List *leaves);
extern void pgi_swap_run(PgiRelation *target, PgiSwapTarget *st,
						 const PgiColumnList *cols, const char *sel,
						 PgiProgress *progress, int64 *inserted);

/* replace.c */
extern ReplaceMode pgi_replace_parse_mode(FunctionCallInfo fcinfo, int argno);
extern int	pgi_replace_begin_settings(void);
extern void pgi_replace_check_privileges(FunctionCallInfo fcinfo);
extern void pgi_replace_lock_slice(FunctionCallInfo fcinfo, Oid relid,
								   const char *slicekey, int keylen);
extern void pgi_replace_plan_open(ReplacePlan *plan, FunctionCallInfo fcinfo);
extern void pgi_replace_execute(FunctionCallInfo fcinfo, ReplacePlan *plan,
								ReplaceMode mode, PgiSwapTarget *st);

/* replace_diff.c */
extern void pgi_replace_set_comparable(ReplacePlan *plan);
extern void pgi_replace_diff_count(ReplacePlan *plan, const char *from,
								   DiffCounts *dc);
extern void pgi_replace_diff_write(ReplacePlan *plan, DiffCounts *dc,
								   int64 *deleted, int64 *inserted);
extern bool pgi_replace_diff(ReplacePlan *plan, int64 *deleted,
							 int64 *inserted);
extern int64 pgi_replace_delete_slice(ReplacePlan *plan);
extern int64 pgi_replace_insert_all(ReplacePlan *plan);
extern void pgi_replace_settle(ReplacePlan *plan, TransactionId horizon,
							   int64 expected, int64 *deleted, int64 *inserted);

#endif							/* PGI_REPLACE_H */
