/*-------------------------------------------------------------------------
 *
 * upsert.h
 *	  What the upsert's files share: upsert.c (the call: its plan, its
 *	  write attempts, the relation source), upsert_sql.c (the text of its
 *	  statements), upsert_source.c (query and JSON sources), jsonrows.c
 *	  (a JSON source's rows) and upsert_probe.c (a one-row source, by a
 *	  probe of the key's index).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGI_UPSERT_H
#define PGI_UPSERT_H

#include "utils/jsonb.h"
#include "utils/snapshot.h"
#include "utils/tuplestore.h"

#include "pg_idempotent.h"

/* Where the rows come from: a FROM item aliased s0, and its columns. */
typedef struct UpsertSource
{
	StringInfoData from;
	const char *name;			/* for messages */
	PgiColumnList columns;
	PgiParams	params;
	Oid			relid;			/* a relation source; invalid for a query or
								 * JSON */
	Query	   *query;			/* a query source, analyzed, for distinct.c */
	double		rows;			/* its size, if known before it is read; else
								 * -1 */

	/*
	 * what identifies the source in a call shape (callcache.c); NULL: not
	 * kept
	 */
	StringInfo	shape;
	/* on a shape's first call: fill in from and columns (a JSON source) */
	void		(*describe) (struct UpsertSource *source, PgiRelation *target);
	char	  **keys;			/* a JSON source's keys, for describe */
	int			nkeys;
} UpsertSource;

/*
 * What a call derives from the catalogs, kept per backend for the next call
 * of the same shape (callcache.c): the columns, key and version, and the
 * statements' text, each built the first time a call of the shape needs it.
 */
typedef enum UpsertStatement
{
	US_MERGE,
	US_EMPTY,
	US_FIRST_LOAD,
	US_SAFE,
	US_DUPS,
	US_ONE_UPDATE,
	US_ONE_INSERT,
	US_NSTATEMENTS
} UpsertStatement;

typedef struct UpsertProbe UpsertProbe;	/* upsert_probe.c */

typedef struct UpsertShape
{
	PgiColumnList cols;
	List	   *key;
	List	   *upd;
	List	   *set;
	int			version;
	bool		unique;
	char	   *sel;
	char	   *sql[US_NSTATEMENTS];
	bool		probe_known;	/* probe says whether calls may probe */
	UpsertProbe *probe;
} UpsertShape;

typedef struct UpsertPlan
{
	PgiRelation *target;
	UpsertSource *source;
	PgiColumnList cols;			/* target columns the source supplies */
	List	   *key;			/* positions in cols */
	List	   *upd;			/* positions in cols compared: all */
	List	   *set;			/* positions in cols set: all but an
								 * image-equal key */
	int			version;		/* position in cols, or -1 */
	bool		keep_last;		/* on_duplicate => 'last' */
	bool		unique;			/* source unique on the key (distinct.c): no
								 * duplicate check */
	bool		dry_run;
	char	   *sel;			/* SELECT of cols, in target types */
	bool		materialize;	/* evaluate the source once: a query or JSON */
	bool		probe;			/* batch small against the table: index probes */
	bool		bytid;			/* matched rows found again by ctid: the
								 * caller may read the target's ctids
								 * (pgi_relation_rows_by_ctid) */
	Oid			fn;				/* the function called, for
								 * pgi_images_differ_fn */
	Oid			relids[2];		/* target and source, whose invalidation
								 * forgets plans */
	PgiCallShape *shape;		/* the call's shape, when it is kept; else
								 * NULL */
	Snapshot	snapshot;		/* the one moment the call reads its inputs as
								 * of */
	PgiProgress progress;
} UpsertPlan;

typedef struct UpsertCounts
{
	int64		inserted;
	int64		updated;
	int64		unchanged;
	int64		stale;
	int64		duplicates;
} UpsertCounts;

/* the columns of the one statement's row of counts */
typedef enum MergeResult
{
	MR_ROWS = 1,
	MR_NULL_KEYS,
	MR_NULL_VERSIONS,
	MR_KEYED,
	MR_DISTINCT,
	MR_NEW,
	MR_CHANGED,
	MR_STALE,
	MR_LOCKED,
	MR_UPDATED,
	MR_INSERTED,
	MR_DUP_KEYS,
	MR_DUP_EXAMPLE,
	MR_TIE_EXAMPLE
} MergeResult;

/* the columns of the safe path's one row of counts */
typedef enum SafeResult
{
	SR_ROWS = 1,
	SR_EFFECTIVE,
	SR_STALE,
	SR_INSERTED,
	SR_UPDATED
} SafeResult;

extern UpsertSource *pgi_upsert_source_new(void);
extern void pgi_upsert_run(FunctionCallInfo fcinfo, PgiRelation *target,
						   UpsertSource *source);
extern TupleDesc pgi_upsert_json_row_desc(const PgiColumnList *cols);
extern bool pgi_upsert_json_one_row(Datum rows, TupleDesc desc,
									Snapshot snapshot, Datum *values,
									bool *nulls);

/* jsonrows.c */
extern Tuplestorestate *pgi_json_rows_store(Jsonb *rows, TupleDesc desc,
											bool random_access,
											MemoryContext storecxt);

extern char *pgi_upsert_build_merge(UpsertPlan *plan);
extern char *pgi_upsert_build_empty(UpsertPlan *plan);
extern char *pgi_upsert_build_first_load(UpsertPlan *plan);
extern char *pgi_upsert_build_safe(UpsertPlan *plan);
extern char *pgi_upsert_build_dups(UpsertPlan *plan);
extern bool pgi_upsert_dups_apart(UpsertPlan *plan);
extern char *pgi_upsert_build_one_update(UpsertPlan *plan);
extern char *pgi_upsert_build_one_insert(UpsertPlan *plan);

/* upsert.c */
extern const char *pgi_upsert_statement(UpsertPlan *plan, UpsertStatement which,
										char *(*build) (UpsertPlan *plan));
extern void pgi_upsert_renew_snapshot(UpsertPlan *plan);

/* upsert_probe.c */
extern bool pgi_upsert_probe(UpsertPlan *plan, UpsertShape *kept,
							 UpsertCounts *counts);

#endif							/* PGI_UPSERT_H */
