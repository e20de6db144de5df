/*-------------------------------------------------------------------------
 *
 * pg_idempotent.h
 *	  The shared layer every operation of pg_idempotent is built on:
 *	  resolving relations, columns and keys (relation.c), building SQL text
 *	  with quoted identifiers and schema-qualified operators and running it
 *	  through SPI (sqlbuild.c), the canonical value encoding shared by
 *	  idempotent_key and table_fingerprint (encode.c), and the hash
 *	  functions over it (hash.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_IDEMPOTENT_H
#define PG_IDEMPOTENT_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/array.h"

/* One column of a relation or of a source (dropped columns never appear). */
typedef struct PgiColumn
{
	char	   *name;			/* attname, not quoted */
	AttrNumber	attnum;			/* in its relation; 0 for a query's column */
	Oid			typid;
	int32		typmod;
	Oid			collid;
	char		generated;		/* attgenerated: '\0' or 's' */
	char		identity;		/* attidentity: '\0', 'a' (always), 'd' */
	bool		notnull;
} PgiColumn;

typedef struct PgiColumnList
{
	int			ncols;
	PgiColumn  *cols;
} PgiColumnList;

/* A relation resolved from a regclass, locked, with its live columns. */
typedef struct PgiRelation
{
	Oid			relid;
	char		relkind;
	char		relpersistence;
	char	   *nspname;
	char	   *relname;
	char	   *qualname;		/* quoted and schema-qualified, for SQL text */
	char	   *displayname;	/* schema.name as users write it, for messages */
	PgiColumnList columns;
} PgiRelation;

/* What a relation argument will be used for. */
typedef enum PgiRelUse
{
	PGI_REL_WRITE,				/* a table rows are written to */
	PGI_REL_READ				/* anything rows can be selected from */
} PgiRelUse;

/* relation.c */
extern PgiRelation *pgi_relation_open(Oid relid, PgiRelUse use,
									  const char *argname);
extern void pgi_relation_check(Oid relid, PgiRelUse use, AclMode also,
							   const char *argname);
extern void pgi_lock_key(FunctionCallInfo fcinfo, Oid relid, int32 subid,
						 LOCKMODE mode);
extern PgiColumnList pgi_columns_from_tupdesc(TupleDesc desc);
extern PgiColumnList pgi_columns_copy(const PgiColumnList *list);

/*
 * The keys pgi_lock_key takes on a table: 0 serializes every replace of the
 * table (shared by a value slice, exclusive otherwise), 1 to 65535 a value
 * slice (a hash of column and value), and PGI_LOCK_HISTORY the history
 * writers of the table.
 */
#define PGI_LOCK_TABLE 0
#define PGI_LOCK_SLICES 65535
#define PGI_LOCK_HISTORY 65536
extern int	pgi_column_index(const PgiColumnList *list, const char *name);
extern List *pgi_find_key(PgiRelation *target, const PgiColumnList *source,
						  ArrayType *key, const char *sourcename);
extern bool pgi_index_is_usable_key(HeapTuple idxtup);
extern List *pgi_find_key_with(PgiRelation *target, const PgiColumnList *source,
							   ArrayType *key, const char *sourcename,
							   int with);
extern List *pgi_text_array_to_list(ArrayType *arr, const char *argname);
extern char *pgi_unused_relname(Oid nspid, const char *base);
extern double pgi_relation_rows(Oid relid);
extern bool pgi_relation_rows_exceed(Oid relid, double n);
extern bool pgi_relation_rows_by_ctid(const PgiRelation *rel);
extern bool pgi_relation_is_distributed(Oid relid);

/* sqlbuild.c */
extern void pgi_append_ident(StringInfo buf, const char *ident);
extern void pgi_append_column(StringInfo buf, const char *alias,
							  const PgiColumn *col);
extern void pgi_append_insert_into(StringInfo buf, const char *target,
								   const char *target_alias,
								   const PgiColumnList *cols, const char *alias);
extern void pgi_append_column_list(StringInfo buf, const char *alias,
								   const PgiColumnList *cols, List *indexes);
extern void pgi_append_type(StringInfo buf, Oid typid, int32 typmod);
extern void pgi_append_collation(StringInfo buf, Oid collid);
extern void pgi_append_assignment_cast(StringInfo buf, const char *alias,
									   const PgiColumn *col, Oid typid,
									   int32 typmod);
extern bool pgi_column_needs_cast(const PgiColumn *scol,
								  const PgiColumn *tcol);
extern PgiColumnList pgi_match_source_columns(PgiRelation *target,
											  const PgiColumnList *source,
											  const char *sourcename,
											  const char *from, char **sel);
extern void pgi_append_operator(StringInfo buf, Oid opno);
extern void pgi_append_key_match(StringInfo buf, const char *left,
								 const char *right, const PgiColumnList *cols,
								 List *key);
extern void pgi_append_tid_match(StringInfo buf, const char *alias,
								 const char *tid);
extern void pgi_append_any_null(StringInfo buf, const char *alias,
								const PgiColumnList *cols, List *indexes);
extern void pgi_append_image_differs(StringInfo buf, const char *fn,
									 const char *left, const char *right,
									 const PgiColumnList *cols, List *indexes,
									 bool differs);
extern Oid	pgi_type_operator(Oid typid, int strategy, const char *colname);
extern bool pgi_type_equal_is_image(Oid typid, Oid collid);
extern void pgi_append_row_value(StringInfo buf, const char *alias,
								 const PgiColumnList *cols, List *indexes);
extern void pgi_append_row_text(StringInfo buf, const char *alias,
								const PgiColumnList *cols, List *indexes);
extern char *pgi_column_names(const PgiColumnList *cols, List *indexes);
extern void pgi_append_distinct_keys(StringInfo buf, const PgiColumnList *cols,
									 List *key);
extern void pgi_append_duplicated_keys(StringInfo buf,
									   const PgiColumnList *cols, List *key);
extern int	pgi_begin_settings(bool probe);

/* the schema of the internal helpers the generated SQL calls by name */
#define PGI_INTERNAL_SCHEMA "pgi_internal"
extern char *pgi_internal_schema(Oid fn);
extern char *pgi_internal_function(Oid fn, const char *name, int nargs,
								   const Oid *argtypes);
extern char *pgi_images_differ_fn(Oid fn);

/* image.c: values compared by binary image */
typedef struct PgiImageArg
{
	Oid			typid;
	int16		typlen;
	bool		byval;
} PgiImageArg;

typedef struct PgiImageArgs
{
	int			nargs;
	PgiImageArg arg[FLEXIBLE_ARRAY_MEMBER];
} PgiImageArgs;

extern PgiImageArgs *pgi_image_args(FunctionCallInfo fcinfo, const char *fname);
extern bool pgi_image_equal(int16 typlen, bool byval, Datum a, Datum b);

typedef struct PgiParams
{
	int			nargs;
	Oid			types[4];
	Datum		values[4];
	char		nulls[4];
} PgiParams;

extern void pgi_params_add(PgiParams *params, Oid type, Datum value);
extern int	pgi_spi_run(const char *sql, const PgiParams *params,
						bool read_only, long tcount, int expected);
extern int64 pgi_spi_int8(int row, int col);
extern char *pgi_spi_text(int row, int col);
extern bool pgi_spi_isnull(int row, int col);

/*
 * A SELECT's rows kept as of one moment, readable by name in the later
 * statements of the same SPI connection (pgi_spi_materialize).
 */
typedef struct PgiMaterialized
{
	const char *name;			/* how statements name it, unquoted */
	struct Tuplestorestate *rows;
	int64		nrows;
} PgiMaterialized;

extern void pgi_spi_materialize(const char *sql, const char *name,
								PgiMaterialized *m);

/* Whether pgi_spi_materialize_some keeps a row; sees every row. */
struct TupleTableSlot;
typedef bool (*PgiRowFilter) (struct TupleTableSlot *slot, void *arg);

extern void pgi_spi_materialize_some(const char *sql, const PgiParams *params,
									 const char *name, PgiMaterialized *m,
									 PgiRowFilter keep, void *arg);
extern void pgi_spi_forget_materialized(PgiMaterialized *m);

extern int	pgi_run_in_subxact(void (*fn) (void *arg), void *arg,
							   const int *catch_codes);
extern void pgi_require_arg(FunctionCallInfo fcinfo, int argno,
							const char *argname);
extern void pgi_return_row(FunctionCallInfo fcinfo, Datum *values,
						   bool *nulls);

/*
 * distinct.c: whether a source is unique on the key by construction, so
 * that its duplicate check can be left out.  source: the source's columns;
 * cols: the target columns they are written to, position for position (as
 * pgi_match_source_columns returns them); key: positions in both.  relid
 * for a relation source, query for a query source (analyzed and
 * rewritten); neither for anything else (the answer is then no).
 */
extern bool pgi_source_unique_on_key(Oid relid, Query *query,
									 const PgiColumnList *source,
									 const PgiColumnList *cols, List *key,
									 const char *sourcename);

/* runtime.c */
extern void pgi_runtime_init(void);
extern int64 pgi_current_run_time(void);

/* encode.c: the canonical, settings-independent encoding of a value */
extern void pgi_encode_value(StringInfo buf, Datum value, bool isnull,
							 Oid typid);

/*
 * What pgi_encode_value looks up about a type, kept so that callers that
 * encode many values of one type (a column, an argument) pay for the
 * catalog lookups once.  Opaque; lives in the memory context it was
 * created in.
 */
typedef struct PgiEncoder PgiEncoder;

extern PgiEncoder *pgi_encoder_create(Oid typid, MemoryContext mcxt);
extern void pgi_encode_datum(StringInfo buf, PgiEncoder *enc, Datum value,
							 bool isnull);

/* hash.c: SHA-256 and MurmurHash3 x64-128, the same on every platform */
#define PGI_SHA256_LEN 32
extern void pgi_sha256(const char *data, size_t len, uint8 *digest);
extern void pgi_murmur3_128(const unsigned char *data, size_t len,
							uint64 *out);

/*
 * sqlbuild.c: a statement prepared once per backend, for the ledger and
 * checkpoints.  sql names the extension's schema as @extschema@.
 */
#define PGI_PLAN_MAXARGS 8

typedef struct PgiCachedPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PGI_PLAN_MAXARGS];
	Oid			nspid;			/* schema it was prepared for */
	struct _SPI_plan *plan;		/* NULL until first use */
} PgiCachedPlan;

struct SnapshotData;
extern struct _SPI_plan *pgi_cached_plan(PgiCachedPlan *cp, Oid nspid);
extern int	pgi_spi_run_plan(PgiCachedPlan *cp, Oid nspid, Datum *values,
							 const char *nulls, bool read_only, long tcount,
							 int expected);
extern int	pgi_spi_run_plan_in(PgiCachedPlan *cp, Oid nspid, Datum *values,
								const char *nulls, struct SnapshotData *snapshot,
								int expected);
extern int	pgi_spi_run_cached(const char *sql, const PgiParams *params,
							   const Oid *relids, int cursor_options,
							   struct SnapshotData *snapshot, bool read_only,
							   int expected);

/*
 * callcache.c: what a call derived from the catalogs, kept per backend per
 * call shape, forgotten when the catalogs change.  Opaque.
 */
typedef struct PgiCallShape PgiCallShape;
extern PgiCallShape *pgi_call_cache_get(const char *key, Size keylen,
										const Oid *relids);
extern void *pgi_call_cache_data(PgiCallShape *shape);
extern MemoryContext pgi_call_cache_context(PgiCallShape *shape);
extern void pgi_call_cache_store(PgiCallShape *shape, void *data);
extern void pgi_call_cache_release(PgiCallShape *shape);

/* progress.c: NOTICEs from long operations, between their steps */
typedef struct PgiProgress
{
	const char *operation;		/* the SQL function, "idempotent_upsert" */
	const char *target;			/* the relation or ledger, as messages name it */
	int64		started;		/* TimestampTz of the call's start */
	int64		reported;		/* ... and of the last report */
} PgiProgress;

extern void pgi_progress_init(void);
extern void pgi_progress_begin(PgiProgress *progress, const char *operation,
							   const char *target);
extern bool pgi_progress_due(PgiProgress *progress);
extern int	pgi_progress_errdetail(PgiProgress *progress);

/*
 * Report the step just done, if a report is due: a NOTICE whose message is
 * the caller's errmsg() or errmsg_plural(), a whole format string that
 * starts "%s on %s: " for PGI_PROGRESS_OF(progress), the operation and
 * its target, as in
 *		pgi_progress_step(progress,
 *						  errmsg_plural("%s on %s: deleted %lld row",
 *										"%s on %s: deleted %lld rows",
 *										n, PGI_PROGRESS_OF(progress),
 *										(long long) n));
 */
#define pgi_progress_step(progress, message) \
	do { \
		if (pgi_progress_due(progress)) \
			ereport(NOTICE, (message, pgi_progress_errdetail(progress))); \
	} while (0)
#define PGI_PROGRESS_OF(progress) (progress)->operation, (progress)->target

/* replace.c: settings of replace_partition and friends */
extern void pgi_replace_init(void);

#endif							/* PG_IDEMPOTENT_H */
