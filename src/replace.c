/*-------------------------------------------------------------------------
 *
 * replace.c
 *	  replace_partition, replace_partition_range, replace_table and
 *	  replace_where: make one slice of a table hold exactly a source's rows.
 *
 * A slice is a boolean expression over the target's columns: "col = $1",
 * "col >= $1 AND col < $2", "true", or the caller's own predicate, parsed
 * and checked here as exactly one expression.  Every call goes through the
 * same steps, and nothing is written before the last check:
 *
 *	1. serialize: check the caller's privileges, then take
 *	   transaction-level locks of the extension's own on the table and the
 *	   slice, before any lock on the target so that two replaces can never
 *	   deadlock on the target's own locks (see lock_slice);
 *	2. check the source: one aggregate counts its rows and those outside the
 *	   slice (23514 with an example), and refuses an empty source unless
 *	   allow_empty;
 *	3. write, in the mode asked for (or chosen by auto):
 *	   - diff: rows compare as multisets by binary image (_replace_image,
 *	     the bytes record_image_eq compares: 1.0 and 1.00 differ, NULL
 *	     matches NULL, and json or point compare without an equality
 *	     operator).  One read-only
 *	     aggregate counts, per distinct image, the rows on each side; only if
 *	     the counts differ are the surplus target rows deleted (numbered
 *	     within their image group, by ctid) and the missing source rows
 *	     inserted.  An identical re-run therefore only reads;
 *	   - delete_insert: DELETE the slice, INSERT the source;
 *	   - swap: partswap.c builds a new leaf partition and exchanges it.
 *
 * The source is read once, right after the locks, into a tuplestore that
 * every later statement reads instead (read_source): a writer committing
 * mid-call (an overlapping run emptying the staging table) cannot make the
 * call check one set of rows and write another.  A replace_where
 * predicate's subqueries read tables that are locked against writers for
 * the transaction (lock_predicate_reads), so the slice is the same slice
 * in every statement.  The target is read with a fresh snapshot in every
 * statement after the slice's lock (SPI not read-only): the lock may have
 * been waited for, and what the previous holder committed must be seen, or
 * the counts would be of the slice as it was before; what others write
 * into the slice meanwhile is what slice_settled and reconcile are for.
 *
 * Every statement is set-based and streamed by the executor; the only rows
 * that come back through SPI are one-row aggregates and one example row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/acl.h"
#include "utils/typcache.h"

#include "replace.h"

PG_FUNCTION_INFO_V1(pgi_replace_partition);
PG_FUNCTION_INFO_V1(pgi_replace_partition_range);
PG_FUNCTION_INFO_V1(pgi_replace_table);
PG_FUNCTION_INFO_V1(pgi_replace_where);
PG_FUNCTION_INFO_V1(pgi_replace_image);

/* Rows wider than one function call's arguments compare via record_send. */
#define IMAGE_MAX_ARGS	(FUNC_MAX_ARGS - 1)

int			pgi_lock_timeout = 1000;
int			pgi_lock_retries = 4;

/*
 * auto swaps only where the slice (old or new) has at least
 * AUTO_SWAP_MIN_ROWS rows and at least AUTO_SWAP_MIN_CHANGED of its rows
 * change (rows to delete or to insert, whichever is more).  Measured on a
 * day of 100k rows (bench/replace.sql): a swap costs about 0.7x of DELETE +
 * INSERT whatever changed, and writes the partition once (0.3x the WAL); a
 * diff of 10% changed rows wrote as much WAL and took longer.  Below the
 * threshold a diff writes far less, and an identical re-run as a diff
 * writes nothing.
 *
 * Where no swap applies, auto is diff.  Switching to delete_insert when
 * most rows change was tried and measured (bench/replace.sql, the table
 * that is not partitioned): the comparison that tells how much changed is
 * most of a diff's cost, so once it has run, finishing as a diff cost the
 * same as a delete_insert.
 */
#define AUTO_SWAP_MIN_ROWS		10000
#define AUTO_SWAP_MIN_CHANGED	0.05

typedef enum ReplaceMode
{
	MODE_AUTO,
	MODE_DIFF,
	MODE_SWAP,
	MODE_DELETE_INSERT
} ReplaceMode;

typedef struct ReplacePlan
{
	PgiRelation *target;
	PgiRelation *source;
	char		kind;			/* 'p', 'r', 't' or 'w' */
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

void
pgi_replace_init(void)
{
	DefineCustomIntVariable("pg_idempotent.lock_timeout",
							"How long a partition swap waits for its ACCESS EXCLUSIVE lock, per attempt.",
							"A swap that cannot get the lock in time gives up that attempt, so that other "
							"queries do not queue behind it; 0 waits forever.",
							&pgi_lock_timeout, 1000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_idempotent.lock_retries",
							"How many more attempts a partition swap makes after a lock timeout.",
							NULL,
							&pgi_lock_retries, 4, 0, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

static ReplaceMode
parse_mode(FunctionCallInfo fcinfo, int argno)
{
	char	   *mode;

	pgi_require_arg(fcinfo, argno, "mode");
	mode = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(mode, "auto") == 0)
		return MODE_AUTO;
	if (strcmp(mode, "diff") == 0)
		return MODE_DIFF;
	if (strcmp(mode, "swap") == 0)
		return MODE_SWAP;
	if (strcmp(mode, "delete_insert") == 0)
		return MODE_DELETE_INSERT;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for mode: \"%s\"", mode),
			 errhint("Valid values are \"auto\", \"diff\", \"swap\" and \"delete_insert\".")));
	return MODE_AUTO;			/* keep compiler quiet */
}

static const char *
mode_name(ReplaceMode mode)
{
	switch (mode)
	{
		case MODE_AUTO:
			return "auto";
		case MODE_DIFF:
			return "diff";
		case MODE_SWAP:
			return "swap";
		case MODE_DELETE_INSERT:
			return "delete_insert";
	}
	return "?";
}

/*
 * Whether record_send can encode a value of this type: the binary image
 * the diff compares.  Arrays need their element type's send function too.
 */
static bool
type_has_send(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		ok;
	Oid			elem;

	typid = getBaseType(typid);
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	ok = OidIsValid(typ->typsend);
	elem = (typ->typlen == -1) ? typ->typelem : InvalidOid;
	ReleaseSysCache(tup);
	if (ok && OidIsValid(elem))
		ok = type_has_send(elem);
	return ok;
}

/*
 * Match the source's columns to the target's, as the upsert does (the
 * shared layer refuses what could not be written and converts the source
 * to the target's types, so that binary images on both sides are images of
 * the same types), and find out whether rows can be compared by image.
 */
static void
plan_columns(ReplacePlan *plan)
{
	char	   *from = psprintf("%s s0", plan->source->qualname);
	int			i;

	plan->cols = pgi_match_source_columns(plan->target, &plan->source->columns,
										  plan->source->displayname, from,
										  &plan->sel);
	plan->comparable = true;
	for (i = 0; i < plan->cols.ncols && plan->cols.ncols > IMAGE_MAX_ARGS; i++)
	{
		if (!type_has_send(plan->cols.cols[i].typid))
		{
			plan->comparable = false;
			plan->uncomparable = psprintf("Column \"%s\" has a type without a binary send function, so rows of more than %d columns cannot be compared.",
										  plan->cols.cols[i].name, IMAGE_MAX_ARGS);
			break;
		}
	}
}

/*
 * A row's binary image as one bytea: schema._replace_image(a.c1, a.c2, ...),
 * or for rows too wide for one function call, the bytes of record_send.
 */
static void
append_image(StringInfo buf, ReplacePlan *plan, const char *alias)
{
	if (plan->cols.ncols > IMAGE_MAX_ARGS)
	{
		appendStringInfoString(buf, "pg_catalog.record_send(ROW(");
		pgi_append_column_list(buf, alias, &plan->cols, NIL);
		appendStringInfoString(buf, "))");
		return;
	}
	appendStringInfo(buf, "%s(", plan->imagefn);
	pgi_append_column_list(buf, alias, &plan->cols, NIL);
	appendStringInfoChar(buf, ')');
}

/* What _replace_image knows about its arguments, kept in fn_extra. */
typedef struct ImageArg
{
	int16		typlen;
	bool		byval;
} ImageArg;

typedef struct ImageArgs
{
	int			nargs;
	ImageArg	arg[FLEXIBLE_ARRAY_MEMBER];
} ImageArgs;

/*
 * _replace_image(VARIADIC "any") RETURNS bytea: the binary image of its
 * arguments, the bytes record_image_eq compares, so that two rows have
 * equal images exactly when *= says they are identical: NULLs match, 1.0
 * and 1.00 differ, and every type compares, with or without an equality
 * operator.  Per argument: a tag byte, then for a varlena its detoasted
 * length and payload, for a C string its bytes and terminator, for a
 * fixed-length type its typlen bytes.  The argument types are fixed by the
 * call site, so the encoding is unambiguous.
 */
Datum
pgi_replace_image(PG_FUNCTION_ARGS)
{
	ImageArgs  *ia = (ImageArgs *) fcinfo->flinfo->fn_extra;
	int			nargs = PG_NARGS();
	Size		len = VARHDRSZ;
	bytea	   *result;
	char	   *p;
	int			i;

	if (ia == NULL || ia->nargs != nargs)
	{
		if (get_fn_expr_variadic(fcinfo->flinfo))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("_replace_image does not take a VARIADIC array")));
		ia = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
								offsetof(ImageArgs, arg) + sizeof(ImageArg) * Max(nargs, 1));
		ia->nargs = nargs;
		for (i = 0; i < nargs; i++)
			get_typlenbyval(get_fn_expr_argtype(fcinfo->flinfo, i),
							&ia->arg[i].typlen, &ia->arg[i].byval);
		fcinfo->flinfo->fn_extra = ia;
	}

	/* first the size, then one allocation */
	for (i = 0; i < nargs; i++)
	{
		len += 1;
		if (PG_ARGISNULL(i))
			continue;
		if (ia->arg[i].typlen == -1)
			len += sizeof(uint32) +
				VARSIZE_ANY_EXHDR(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(i)));
		else if (ia->arg[i].typlen == -2)
			len += strlen(DatumGetCString(PG_GETARG_DATUM(i))) + 1;
		else
			len += ia->arg[i].typlen;
	}
	result = palloc(len);
	SET_VARSIZE(result, len);
	p = VARDATA(result);
	for (i = 0; i < nargs; i++)
	{
		Datum		d = PG_GETARG_DATUM(i);

		if (PG_ARGISNULL(i))
		{
			*p++ = 'n';
			continue;
		}
		*p++ = 'v';
		if (ia->arg[i].typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
			uint32		vlen = VARSIZE_ANY_EXHDR(v);

			memcpy(p, &vlen, sizeof(uint32));
			p += sizeof(uint32);
			memcpy(p, VARDATA_ANY(v), vlen);
			p += vlen;
		}
		else if (ia->arg[i].typlen == -2)
		{
			Size		slen = strlen(DatumGetCString(d)) + 1;

			memcpy(p, DatumGetCString(d), slen);
			p += slen;
		}
		else if (ia->arg[i].byval)
		{
			store_att_byval(p, d, ia->arg[i].typlen);
			p += ia->arg[i].typlen;
		}
		else
		{
			memcpy(p, DatumGetPointer(d), ia->arg[i].typlen);
			p += ia->arg[i].typlen;
		}
	}
	Assert(p == (char *) result + len);
	PG_RETURN_BYTEA_P(result);
}

/* FROM <target> t WHERE (<slice>) */
static void
append_target_slice(StringInfo buf, ReplacePlan *plan, const char *from)
{
	appendStringInfo(buf, " FROM %s t WHERE (%s)", from, plan->pred);
}

/*
 * Serialize replaces whose slices may overlap.  Slices "column = value"
 * are the common case and are told apart exactly: each takes the table's
 * key shared and (table, column, value) exclusively, so replaces of one
 * value serialize and replaces of different values run side by side.
 * Anything else (a range, a predicate, the whole table) may overlap
 * slices in ways not worth deciding here, so it takes the table's key
 * exclusively: it waits for every replace of the table, and they for it.
 * Replaces by value of two different columns of one table are not
 * serialized against each other (the keys cannot express "same column
 * shares, other columns conflict"); docs/replace.md says so.
 *
 * The keys are object locks (LOCKTAG_OBJECT, the kind PostgreSQL takes on
 * its catalog objects) whose class is this extension: the OID of its
 * pg_extension row, which names no catalog, so nothing else locks in that
 * space, and SQL cannot reach it (pg_advisory_lock takes advisory locks
 * only).  No application's advisory key can collide with a replace's, and
 * no role can hold one by hand.  pg_locks shows them as locktype object,
 * classid the extension's OID, objid the table's OID, objsubid 0 for the
 * table's key and 1 to 65535 (a hash of column and value) for a slice's;
 * two values of one table whose hashes meet serialize needlessly, nothing
 * worse.
 *
 * The caller's privileges are checked before (check_privileges), so only
 * a role that may delete from the table (and so could LOCK it in any mode
 * anyway) can hold or queue for a key; queued, it would hold up every
 * replace of the table requested after it.  The wait obeys lock_timeout
 * and statement_timeout, as any lock wait does; the keys are held to the
 * end of the transaction.
 *
 * slicekey NULL means the table's key exclusively.
 */
static void
lock_slice(FunctionCallInfo fcinfo, Oid relid, const char *slicekey,
		   int keylen)
{
	if (slicekey == NULL)
	{
		pgi_lock_key(fcinfo, relid, PGI_LOCK_TABLE, ExclusiveLock);
		return;
	}
	pgi_lock_key(fcinfo, relid, PGI_LOCK_TABLE, ShareLock);
	pgi_lock_key(fcinfo, relid,
				 1 + hash_bytes((const unsigned char *) slicekey, keylen) % PGI_LOCK_SLICES,
				 ExclusiveLock);
}

/*
 * Step 1's first half: refuse, before any lock, a caller who may not
 * replace rows of the target with rows of the source.  Every replace that
 * changes the slice deletes from it, so the target needs DELETE besides
 * the lock's own privilege; the source, SELECT.  Everything else a
 * statement needs is checked when it runs.
 */
static void
check_privileges(FunctionCallInfo fcinfo)
{
	pgi_relation_check(PG_GETARG_OID(0), PGI_REL_WRITE, ACL_DELETE, "target");
	pgi_relation_check(PG_GETARG_OID(1), PGI_REL_READ, 0, "source");
}

/* What statements call the source once it is read (see read_source). */
#define SOURCE_ROWS_NAME "pg_idempotent: the source"

/*
 * Step 2's first half: read the source, once, as of now (after the locks).
 * From here on plan->sel reads those rows, whatever happens to the source.
 */
static void
read_source(ReplacePlan *plan)
{
	StringInfoData q;

	pgi_spi_materialize(plan->sel, SOURCE_ROWS_NAME, &plan->src);
	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	pgi_append_column_list(&q, "s0", &plan->cols, NIL);
	appendStringInfoString(&q, " FROM ");
	pgi_append_ident(&q, SOURCE_ROWS_NAME);
	appendStringInfoString(&q, " s0");
	plan->sel = q.data;
}

/*
 * Step 2's second half: every source row must lie inside the slice, and an
 * empty source is refused unless allow_empty.  Returns the number of source
 * rows.
 */
static int64
check_source(ReplacePlan *plan)
{
	StringInfoData q;
	int64		total = plan->src.nrows;
	int64		outside = 0;

	initStringInfo(&q);
	if (plan->kind != 't')
	{
		appendStringInfo(&q, "SELECT pg_catalog.count(*) FILTER (WHERE (%s) IS NOT TRUE) FROM (%s) t",
						 plan->pred, plan->sel);
		pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_SELECT);
		outside = pgi_spi_int8(0, 1);
	}

	if (outside > 0)
	{
		char	   *example;

		resetStringInfo(&q);
		appendStringInfo(&q, "SELECT ROW(t.*)::pg_catalog.text FROM (%s) t WHERE (%s) IS NOT TRUE LIMIT 1",
						 plan->sel, plan->pred);
		pgi_spi_run(q.data, &plan->params, false, 1, SPI_OK_SELECT);
		example = SPI_processed > 0 ? pgi_spi_text(0, 1) : NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("source \"%s\" has rows outside the slice of \"%s\" being replaced",
						plan->source->displayname, plan->target->displayname),
				 errdetail_plural("%lld of its %lld rows does not satisfy %s, for example %s.",
								  "%lld of its %lld rows do not satisfy %s, for example %s.",
								  outside,
								  (long long) outside, (long long) total, plan->desc,
								  example ? example : "(unprintable)"),
				 errhint("Replace a slice that covers these rows, or filter them out of the source.")));
	}
	if (total == 0 && !plan->allow_empty)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\" is empty", plan->source->displayname),
				 errdetail("Replacing with it would delete every row of the slice %s of \"%s\".",
						   plan->desc, plan->target->displayname),
				 errhint("Pass allow_empty => true to empty the slice on purpose.")));
	pgi_progress_step(&plan->progress,
					  errmsg_plural("%s on %s: checked the source: %lld row, all inside the slice %s",
									"%s on %s: checked the source: %lld rows, all inside the slice %s",
									total, PGI_PROGRESS_OF(&plan->progress),
									(long long) total, plan->desc));
	return total;
}

/*
 * The read-only half of a diff: per distinct binary image, how many rows
 * each side holds.  Nothing is locked but the relations themselves.
 * "from" is the relation the slice is read from: the target, or the one
 * partition that holds the slice.
 */
static void
diff_count(ReplacePlan *plan, const char *from, DiffCounts *dc)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT pg_catalog.sum(GREATEST(g.nt OPERATOR(pg_catalog.-) g.ns, 0))::pg_catalog.int8, "
						   "pg_catalog.sum(GREATEST(g.ns OPERATOR(pg_catalog.-) g.nt, 0))::pg_catalog.int8, "
						   "pg_catalog.sum(LEAST(g.ns, g.nt))::pg_catalog.int8, "
						   "pg_catalog.sum(g.nt)::pg_catalog.int8, pg_catalog.max(g.ns), pg_catalog.max(g.nt) "
						   "FROM (SELECT u.img, pg_catalog.count(*) FILTER (WHERE u.src) AS ns, "
						   "pg_catalog.count(*) FILTER (WHERE NOT u.src) AS nt FROM (SELECT ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS img, true AS src FROM (%s) s UNION ALL SELECT ", plan->sel);
	append_image(&q, plan, "t");
	appendStringInfoString(&q, ", false");
	append_target_slice(&q, plan, from);
	appendStringInfoString(&q, ") u GROUP BY u.img) g");
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_SELECT);
	dc->to_delete = pgi_spi_int8(0, 1);
	dc->to_insert = pgi_spi_int8(0, 2);
	dc->unchanged = pgi_spi_int8(0, 3);
	dc->target_rows = pgi_spi_int8(0, 4);
	dc->max_source_copies = pgi_spi_int8(0, 5);
	dc->max_target_copies = pgi_spi_int8(0, 6);
	pgi_progress_step(&plan->progress,
					  errmsg("%s on %s: compared the slice with the source: %lld to delete, %lld to insert, %lld unchanged",
							 PGI_PROGRESS_OF(&plan->progress),
							 (long long) dc->to_delete, (long long) dc->to_insert,
							 (long long) dc->unchanged));
}

/* DELETE FROM target WHERE (slice): the whole slice */
static int64
delete_slice(ReplacePlan *plan)
{
	char	   *q = psprintf("DELETE FROM %s t WHERE (%s)",
							 plan->target->qualname, plan->pred);

	pgi_spi_run(q, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/* INSERT INTO target (cols) SELECT cols FROM source: every source row */
static int64
insert_all(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, NULL);
	appendStringInfoString(&q, plan->sel);
	pgi_spi_run(q.data, NULL, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * Delete the target rows of the slice that the source has fewer copies of:
 * within each group of identical images, rows numbered beyond the source's
 * count go.  Rows are named by (tableoid, ctid): ctid alone repeats across
 * partitions.
 */
static int64
diff_delete(ReplacePlan *plan)
{
	StringInfoData q;
	bool		partitioned = plan->target->relkind == RELKIND_PARTITIONED_TABLE;

	initStringInfo(&q);
	appendStringInfo(&q, "DELETE FROM %s t WHERE (%s) AND %s OPERATOR(pg_catalog.=) ANY (SELECT %s FROM "
					 "(SELECT t.tableoid AS toid, t.ctid AS tid, t.img, "
					 "pg_catalog.row_number() OVER (PARTITION BY t.img) AS rn FROM (SELECT t.tableoid, t.ctid, ",
					 plan->target->qualname, plan->pred,
					 partitioned ? "ROW(t.tableoid, t.ctid)" : "t.ctid",
					 partitioned ? "x.toid, x.tid" : "x.tid");
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " AS img");
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, ") t) x LEFT JOIN (SELECT s.img, pg_catalog.count(*) AS n FROM (SELECT ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS img FROM (%s) s) s GROUP BY s.img) c ON x.img OPERATOR(pg_catalog.=) c.img "
					 "WHERE x.rn OPERATOR(pg_catalog.>) COALESCE(c.n, 0))", plan->sel);
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/*
 * Insert the source rows the slice has fewer copies of, counted after
 * diff_delete: within each group of identical images, source rows numbered
 * beyond the slice's count go in.
 */
static int64
diff_insert(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "x");
	appendStringInfoString(&q, " FROM (SELECT s.*, pg_catalog.row_number() OVER (PARTITION BY s.\"pgi img\") AS \"pgi rn\" "
						   "FROM (SELECT s.*, ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS \"pgi img\" FROM (%s) s) s) x LEFT JOIN (SELECT ", plan->sel);
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " AS img, pg_catalog.count(*) AS n");
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, " GROUP BY 1) c ON x.\"pgi img\" OPERATOR(pg_catalog.=) c.img "
						   "WHERE x.\"pgi rn\" OPERATOR(pg_catalog.>) COALESCE(c.n, 0)");
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The same two steps when no image repeats on the side that decides: a
 * slice without duplicate rows loses exactly the rows whose image the
 * source lacks, and a source without duplicates adds exactly the rows whose
 * image the slice (after the delete) lacks.  Hash anti-joins, with no
 * numbering and so no sort of either side.
 */
static int64
diff_delete_unique(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "DELETE FROM %s t WHERE (%s) AND NOT EXISTS (SELECT 1 FROM (%s) s WHERE ",
					 plan->target->qualname, plan->pred, plan->sel);
	append_image(&q, plan, "s");
	appendStringInfoString(&q, " OPERATOR(pg_catalog.=) ");
	append_image(&q, plan, "t");
	appendStringInfoChar(&q, ')');
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

static int64
diff_insert_unique(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "s");
	appendStringInfo(&q, " FROM (%s) s WHERE NOT EXISTS (SELECT 1", plan->sel);
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, " AND ");
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " OPERATOR(pg_catalog.=) ");
	append_image(&q, plan, "s");
	appendStringInfoChar(&q, ')');
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/* Write what diff_count found, and only that. */
static void
diff_write(ReplacePlan *plan, DiffCounts *dc, int64 *deleted, int64 *inserted)
{
	*deleted = 0;
	*inserted = 0;
	if (dc->to_delete > 0)
	{
		if (dc->to_delete == dc->target_rows)
			*deleted = delete_slice(plan);
		else if (dc->max_target_copies <= 1)
			*deleted = diff_delete_unique(plan);
		else
			*deleted = diff_delete(plan);
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: deleted %lld row",
										"%s on %s: deleted %lld rows",
										*deleted, PGI_PROGRESS_OF(&plan->progress),
										(long long) *deleted));
	}
	if (dc->to_insert > 0)
	{
		if (dc->unchanged == 0)
			*inserted = insert_all(plan);
		else if (dc->max_source_copies <= 1)
			*inserted = diff_insert_unique(plan);
		else
			*inserted = diff_insert(plan);
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: inserted %lld row",
										"%s on %s: inserted %lld rows",
										*inserted, PGI_PROGRESS_OF(&plan->progress),
										(long long) *inserted));
	}
}

/*
 * After writing: does the slice hold exactly what we wrote and what we left
 * in place, with nothing from a concurrent writer?  A writer that committed
 * while our statements ran (an upsert of a row in the slice, say) is
 * invisible to their snapshots, and under READ COMMITTED a DELETE that
 * waited for its row lock skips the rows it inserted.  Every such row was
 * written by a transaction that was running, or not yet begun, when the
 * replace took its first snapshot: its xmin is at or after that snapshot's
 * xmin (the horizon).  A row we left in place and someone then deleted
 * shows in the count.  So: as many rows as the source has, none of them
 * written at or after the horizon by anyone but us, means there is nothing
 * to reconcile; otherwise reconcile() compares the whole slice again.  This
 * costs a scan of the slice where the comparison costs an aggregate of both
 * sides.  Rows the caller wrote earlier in the same transaction count as
 * foreign, which is safe (they only cost the comparison).  A target with a
 * foreign partition has no xmin to read: always compare.
 */
static bool
slice_settled(ReplacePlan *plan, TransactionId horizon, int64 expected,
			  const char **why)
{
	StringInfoData q;
	PgiParams	p = plan->params;

	if (plan->target->relkind == RELKIND_PARTITIONED_TABLE)
	{
		/* the partitions are locked, if at all, by the statements to come */
		List	   *parts = find_all_inheritors(plan->target->relid, NoLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			{
				*why = "the table has a foreign partition";
				return false;
			}
		}
	}

	pgi_params_add(&p, XIDOID, TransactionIdGetDatum(horizon));
	pgi_params_add(&p, XIDOID, TransactionIdGetDatum(GetCurrentTransactionId()));
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER ("
					 "WHERE pg_catalog.age(t.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($%d) "
					 "AND NOT t.xmin OPERATOR(pg_catalog.=) $%d)",
					 p.nargs - 1, p.nargs);
	append_target_slice(&q, plan, plan->target->qualname);
	pgi_spi_run(q.data, &p, false, 0, SPI_OK_SELECT);
	*why = "another transaction wrote into the slice meanwhile";
	return pgi_spi_int8(0, 1) == expected && pgi_spi_int8(0, 2) == 0;
}

/* How many times a diff is checked again after writing, at most. */
#define RECONCILE_PASSES 3

/*
 * Compare again after writing, with a fresh snapshot, and write what still
 * differs.  A writer that committed while our statements ran (an upsert of
 * a row in the slice, say) is invisible to the snapshots they took, and
 * under READ COMMITTED a DELETE that waited for such a writer's row lock
 * skips the rows it inserted: without this pass the slice could end
 * holding a row the source does not have.  Bounded: a slice written to
 * continuously by others is left as the last pass found it.
 */
static void
reconcile(ReplacePlan *plan, const char *why, int64 *deleted, int64 *inserted)
{
	int			pass;

	for (pass = 0; pass < RECONCILE_PASSES; pass++)
	{
		DiffCounts	dc;
		int64		d;
		int64		i;

		pgi_progress_step(&plan->progress,
						  errmsg("%s on %s: %s: comparing again (pass %d of at most %d)",
								 PGI_PROGRESS_OF(&plan->progress),
								 why, pass + 1, RECONCILE_PASSES));
		diff_count(plan, plan->target->qualname, &dc);
		if (dc.to_delete == 0 && dc.to_insert == 0)
			return;
		diff_write(plan, &dc, &d, &i);
		*deleted += d;
		*inserted += i;
	}
}

/*
 * Steps 2 and 3, once the slice is known and locked.  st says where the
 * slice lies in a partitioned target (NULL for replace_where, which never
 * swaps).
 */
static void
replace_execute(FunctionCallInfo fcinfo, ReplacePlan *plan, ReplaceMode mode,
				PgiSwapTarget *st)
{
	int64		total;
	int64		deleted = 0;
	int64		inserted = 0;
	int64		unchanged = 0;
	DiffCounts	dc;
	bool		counted = false;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	TransactionId horizon;
	const char *why;

	/* before the first read of the slice: see slice_settled */
	horizon = GetLatestSnapshot()->xmin;
	read_source(plan);
	total = check_source(plan);

	if (st != NULL && st->partitioned && st->routable && !st->found)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of \"%s\" holds the slice %s",
						plan->target->displayname, plan->desc),
				 errdetail("The value matches no partition, and the table has no default partition."),
				 errhint("Create the partition first.")));

	if (mode == MODE_SWAP || mode == MODE_AUTO)
	{
		if (st != NULL)
			pgi_swap_check(plan->target, st);
		if (mode == MODE_SWAP && st != NULL && st->refusal != NULL &&
			st->refusal_code == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot replace this slice of \"%s\" by swapping a partition",
							plan->target->displayname),
					 errdetail("%s", st->refusal),
					 errhint("Use mode => 'diff' or mode => 'delete_insert', which write through the table's triggers and row-level security.")));
		if (mode == MODE_SWAP && (st == NULL || st->refusal != NULL))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot replace this slice of \"%s\" by swapping a partition",
							plan->target->displayname),
					 errdetail("%s", st ? st->refusal : "replace_where slices are not partitions."),
					 errhint("Use mode => 'diff' or mode => 'delete_insert'.")));
	}

	if (mode == MODE_AUTO)
	{
		mode = MODE_DIFF;
		if (st != NULL && st->refusal == NULL && plan->comparable)
		{
			/*
			 * Count against the partition alone: no lock on the parent is
			 * taken before the swap's own, so two swaps of different
			 * partitions cannot deadlock on lock upgrades.
			 */
			char	   *leaf = quote_qualified_identifier(get_namespace_name(get_rel_namespace(st->leaf)),
														  get_rel_name(st->leaf));

			diff_count(plan, leaf, &dc);
			counted = true;
			if (Max(dc.target_rows, total) >= AUTO_SWAP_MIN_ROWS &&
				(double) Max(dc.to_delete, dc.to_insert) >=
				AUTO_SWAP_MIN_CHANGED * (double) Max(total, dc.target_rows))
				mode = MODE_SWAP;
		}
		else if (st != NULL && st->refusal == NULL)
			mode = MODE_SWAP;
	}

	if (mode == MODE_DIFF && !plan->comparable)
	{
		ereport(NOTICE,
				(errmsg("replacing the slice of \"%s\" with delete_insert instead of diff",
						plan->target->displayname),
				 errdetail("%s", plan->uncomparable)));
		mode = MODE_DELETE_INSERT;
	}

	switch (mode)
	{
		case MODE_DIFF:
			if (!counted)
				diff_count(plan, plan->target->qualname, &dc);
			if (dc.to_delete > 0 || dc.to_insert > 0)
			{
				diff_write(plan, &dc, &deleted, &inserted);
				if (!slice_settled(plan, horizon, total, &why))
					reconcile(plan, why, &deleted, &inserted);
			}
			/* the source rows that were there already */
			unchanged = Max(total - inserted, 0);
			break;
		case MODE_DELETE_INSERT:
			deleted = delete_slice(plan);
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: deleted %lld row",
											"%s on %s: deleted %lld rows",
											deleted, PGI_PROGRESS_OF(&plan->progress),
											(long long) deleted));
			inserted = insert_all(plan);
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld row",
											"%s on %s: inserted %lld rows",
											inserted, PGI_PROGRESS_OF(&plan->progress),
											(long long) inserted));
			if (plan->comparable && !slice_settled(plan, horizon, total, &why))
				reconcile(plan, why, &deleted, &inserted);
			break;
		case MODE_SWAP:
			deleted = counted ? dc.target_rows : pgi_swap_count_leaf(st);
			pgi_swap_run(plan->target, st, &plan->cols, plan->sel,
						 &plan->progress, &inserted);
			break;
		case MODE_AUTO:
			elog(ERROR, "unresolved replace mode");
	}

	pgi_spi_forget_materialized(&plan->src);
	values[0] = Int64GetDatum(deleted);
	values[1] = Int64GetDatum(inserted);
	values[2] = Int64GetDatum(unchanged);
	values[3] = CStringGetTextDatum(mode_name(mode));
	pgi_return_row(fcinfo, values, nulls);
}

/*
 * Our statements run without parallel workers: the planner cannot estimate
 * how many distinct images a slice has (it guesses 200), and a parallel
 * partial aggregate built on that guess spills and was measured at twice
 * the time of a serial hash aggregate.  The setting is the caller's again
 * when the function returns, or when its (sub)transaction aborts.
 */
static int
begin_settings(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("max_parallel_workers_per_gather", "0",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return nest;
}

/* Open target and source, and match their columns. */
static void
plan_open(ReplacePlan *plan, FunctionCallInfo fcinfo)
{
	/* in a schema nobody else may create in: see pgi_internal_schema */
	plan->imagefn = quote_qualified_identifier(pgi_internal_schema(fcinfo->flinfo->fn_oid),
											   "_replace_image");
	plan->target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	plan->source = pgi_relation_open(PG_GETARG_OID(1), PGI_REL_READ, "source");
	plan_columns(plan);
	pgi_progress_begin(&plan->progress, get_func_name(fcinfo->flinfo->fn_oid),
					   plan->target->displayname);
}

/*
 * The type of a slice column as the catalogs say before the target is
 * locked: only used to cast the slice values for the slice lock's key,
 * which must be taken before the target's lock.  Everything is checked
 * again, under the lock.
 */
static Oid
unlocked_column_type(Oid relid, const char *colname, int32 *typmod)
{
	AttrNumber	attnum = get_attnum(relid, colname);
	Oid			typid;
	Oid			collid;

	*typmod = -1;
	if (attnum == InvalidAttrNumber || attnum < 0)
		return InvalidOid;
	get_atttypetypmodcoll(relid, attnum, &typid, typmod, &collid);
	return typid;
}

/* CAST($1 AS coltype), run once; the result lives until SPI_finish */
static Datum
cast_value(Datum value, Oid fromtype, Oid totype, int32 typmod,
		   const char *argname, const char *colname)
{
	StringInfoData q;
	PgiParams	p;
	bool		isnull;
	int16		typlen;
	bool		typbyval;

	if (fromtype == totype && typmod < 0)
		return value;
	if (fromtype != UNKNOWNOID &&
		!can_coerce_type(1, &fromtype, &totype, COERCION_EXPLICIT))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("argument \"%s\" is of type %s but column \"%s\" is of type %s",
						argname, format_type_be(fromtype), colname,
						format_type_be(totype)),
				 errdetail("There is no cast from %s to %s.",
						   format_type_be(fromtype), format_type_be(totype))));
	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, (fromtype == UNKNOWNOID) ? TEXTOID : fromtype, value);
	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT CAST($1 AS ");
	pgi_append_type(&q, totype, typmod);
	appendStringInfoChar(&q, ')');
	pgi_spi_run(q.data, &p, false, 0, SPI_OK_SELECT);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	get_typlenbyval(totype, &typlen, &typbyval);
	return datumCopy(value, typbyval, typlen);
}

/*
 * The operator of the column type's default btree opclass for a strategy,
 * ">=" included (pgi_type_operator knows =, < and >).  A type without one
 * cannot define a slice: 42883.
 */
static Oid
slice_operator(PgiColumn *col, int strategy)
{
	TypeCacheEntry *tce;
	Oid			opno = InvalidOid;

	tce = lookup_type_cache(col->typid, TYPECACHE_BTREE_OPFAMILY);
	if (OidIsValid(tce->btree_opf))
		opno = get_opfamily_member(tce->btree_opf, tce->btree_opintype,
								   tce->btree_opintype, strategy);
	if (!OidIsValid(opno))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 strategy == BTEqualStrategyNumber ?
				 errmsg("could not identify an equality operator for type %s",
						format_type_be(col->typid)) :
				 errmsg("could not identify an ordering operator for type %s",
						format_type_be(col->typid)),
				 errdetail("Column \"%s\" needs one to define a slice.", col->name)));
	return opno;
}

/* "day = 2025-01-15" or "day >= 2025-01-01 AND day < 2025-02-01" */
static char *
slice_description(PgiColumn *col, char kind, Datum *values)
{
	Oid			out;
	bool		varlena;

	getTypeOutputInfo(col->typid, &out, &varlena);
	if (kind == 'p')
		return psprintf("%s = %s", quote_identifier(col->name),
						OidOutputFunctionCall(out, values[0]));
	return psprintf("%s >= %s AND %s < %s",
					quote_identifier(col->name), OidOutputFunctionCall(out, values[0]),
					quote_identifier(col->name), OidOutputFunctionCall(out, values[1]));
}

/* The canonical encoding of slice values, for the slice lock's key. */
static void
append_slice_key(StringInfo key, Datum *values, int nvalues, Oid typid)
{
	int			i;

	for (i = 0; i < nvalues; i++)
		pgi_encode_value(key, values[i], false, typid);
}

/*
 * replace_partition and replace_partition_range: the slice is one value,
 * or a half-open range, of one column.
 */
static Datum
replace_by_column(FunctionCallInfo fcinfo, char kind)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;
	PgiSwapTarget st;
	char	   *colname;
	int			nvalues = (kind == 'p') ? 1 : 2;
	int			modearg = 3 + nvalues;
	const char *argnames[2];
	Datum		values[2];
	Oid			argtype;
	Oid			coltype;
	int32		coltypmod;
	StringInfoData key;
	StringInfoData pred;
	PgiColumn  *col;
	int			i;

	argnames[0] = (kind == 'p') ? "partition_value" : "lower";
	argnames[1] = "upper";
	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	pgi_require_arg(fcinfo, 2, "partition_column");
	for (i = 0; i < nvalues; i++)
		pgi_require_arg(fcinfo, 3 + i, argnames[i]);
	mode = parse_mode(fcinfo, modearg);
	pgi_require_arg(fcinfo, modearg + 1, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = kind;
	plan.allow_empty = PG_GETARG_BOOL(modearg + 1);
	colname = text_to_cstring(PG_GETARG_TEXT_PP(2));
	argtype = get_fn_expr_argtype(fcinfo->flinfo, 3);
	if (!OidIsValid(argtype))
		elog(ERROR, "could not determine the type of argument \"%s\"", argnames[0]);

	SPI_connect();
	nest = begin_settings();

	/* step 1, before any lock on the target: see lock_slice */
	check_privileges(fcinfo);
	coltype = unlocked_column_type(PG_GETARG_OID(0), colname, &coltypmod);
	for (i = 0; i < nvalues; i++)
		values[i] = OidIsValid(coltype) ?
			cast_value(PG_GETARG_DATUM(3 + i), argtype, coltype, coltypmod,
					   argnames[i], colname) :
			PG_GETARG_DATUM(3 + i);
	if (kind == 'p')
	{
		/* the column's name, a NUL, then the value */
		initStringInfo(&key);
		appendBinaryStringInfo(&key, colname, strlen(colname) + 1);
		append_slice_key(&key, values, nvalues, OidIsValid(coltype) ? coltype : argtype);
		lock_slice(fcinfo, PG_GETARG_OID(0), key.data, key.len);
	}
	else
		lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);

	plan_open(&plan, fcinfo);
	plan.colidx = pgi_column_index(&plan.target->columns, colname);
	if (plan.colidx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("partition column \"%s\" does not exist in \"%s\"",
						colname, plan.target->displayname)));
	if (pgi_column_index(&plan.cols, colname) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("partition column \"%s\" does not exist in source \"%s\"",
						colname, plan.source->displayname),
				 errdetail("Every source row must say which slice it belongs to.")));
	col = &plan.target->columns.cols[plan.colidx];
	if (col->typid != coltype || col->typmod != coltypmod)
	{
		/* the column changed type between the lookup and the lock */
		for (i = 0; i < nvalues; i++)
			values[i] = cast_value(PG_GETARG_DATUM(3 + i), argtype, col->typid,
								   col->typmod, argnames[i], colname);
	}

	plan.params.nargs = nvalues;
	initStringInfo(&pred);
	for (i = 0; i < nvalues; i++)
	{
		plan.params.types[i] = col->typid;
		plan.params.values[i] = values[i];
		plan.params.nulls[i] = ' ';
		if (i > 0)
			appendStringInfoString(&pred, " AND ");
		pgi_append_ident(&pred, col->name);
		appendStringInfoChar(&pred, ' ');
		pgi_append_operator(&pred,
							slice_operator(col,
										   kind == 'p' ? BTEqualStrategyNumber :
										   i == 0 ? BTGreaterEqualStrategyNumber :
										   BTLessStrategyNumber));
		appendStringInfo(&pred, " $%d", i + 1);
	}
	plan.pred = pred.data;
	plan.desc = slice_description(col, kind, values);

	pgi_swap_locate(plan.target, plan.colidx, kind, values, &st);
	replace_execute(fcinfo, &plan, mode, &st);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}

Datum
pgi_replace_partition(PG_FUNCTION_ARGS)
{
	return replace_by_column(fcinfo, 'p');
}

Datum
pgi_replace_partition_range(PG_FUNCTION_ARGS)
{
	return replace_by_column(fcinfo, 'r');
}

Datum
pgi_replace_table(PG_FUNCTION_ARGS)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	mode = parse_mode(fcinfo, 2);
	pgi_require_arg(fcinfo, 3, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = 't';
	plan.allow_empty = PG_GETARG_BOOL(3);
	plan.pred = "true";
	plan.desc = "(the whole table)";
	plan.colidx = -1;

	SPI_connect();
	nest = begin_settings();
	check_privileges(fcinfo);
	lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);
	plan_open(&plan, fcinfo);
	if (mode == MODE_SWAP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replace all of \"%s\" by swapping a partition",
						plan.target->displayname),
				 errdetail("Swap replaces one leaf partition; the whole table is not one."),
				 errhint("Use mode => 'diff' or mode => 'delete_insert'.")));
	replace_execute(fcinfo, &plan, mode, NULL);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}

/*
 * Reject anything in a predicate that writes or locks: a data-modifying
 * statement in a WITH or a subquery, or a row-locking clause.
 */
static bool
predicate_writes_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, InsertStmt) || IsA(node, UpdateStmt) ||
		IsA(node, DeleteStmt) || IsA(node, MergeStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must not contain a data-modifying statement")));
	if (IsA(node, SelectStmt) && ((SelectStmt *) node)->lockingClause != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must not lock rows"),
				 errdetail("It contains a FOR UPDATE or FOR SHARE clause.")));
	return raw_expression_tree_walker(node, predicate_writes_walker, context);
}

static void
not_one_expression(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("predicate must be a single boolean expression"),
			 errdetail("%s", why),
			 errhint("Write it as the condition of a WHERE clause over the target's columns, such as: day >= '2025-01-01' AND tenant_id = 7.")));
}

/*
 * The grammar's own syntax errors, said about the predicate: their cursor
 * position is within the predicate, not within the caller's statement.
 */
static List *
parse_expression_text(const char *text)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *raw = NIL;

	PG_TRY();
	{
		raw = raw_parser(text, RAW_PARSE_PLPGSQL_EXPR);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_SYNTAX_ERROR)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must be a single boolean expression"),
				 edata->cursorpos > 0 ?
				 errdetail("%s, at character %d of the predicate.",
						   edata->message, edata->cursorpos) :
				 errdetail("%s.", edata->message)));
	}
	PG_END_TRY();
	return raw;
}

/* Collect the relations a predicate's subqueries read (RTE_RELATION). */
static bool
predicate_reads_walker(Node *node, void *context)
{
	List	  **relids = (List **) context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*relids = list_append_unique_oid(*relids, rte->relid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, predicate_reads_walker,
								 context, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, predicate_reads_walker, context);
}

/*
 * A predicate's subqueries (day IN (SELECT d FROM reload_days)) are
 * evaluated in every statement of the call, each with its own snapshot:
 * if reload_days changed between the check of the source and the delete,
 * the call would delete a slice other than the one it checked, and its
 * reconciling pass would then empty that slice.  So every table they read
 * is locked against writers (SHARE, as LOCK TABLE takes it, with LOCK
 * TABLE's own privilege check and recursion into views and inheritance
 * children) until the transaction ends: every statement of the call sees
 * the same rows of it.  A subquery that reads the target itself would see
 * the call's own writes, so it is refused, as is a relation LOCK TABLE
 * cannot lock (a foreign table, a materialized view).  Functions the
 * predicate calls may read tables too: nothing holds those still
 * (docs/replace.md says so).
 */
static void
lock_predicate_reads(PgiRelation *target, List *relids)
{
	List	   *family = find_all_inheritors(target->relid, NoLock, NULL);
	ListCell   *lc;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char		relkind = get_rel_relkind(relid);
		char	   *name = get_rel_name(relid);

		if (list_member_oid(family, relid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("predicate must not read the table being replaced"),
					 errdetail("Its subquery reads \"%s\", which the replace writes, so the rows it selects would change as the call runs.",
							   name),
					 errhint("Compute the values first and write them into the predicate.")));
		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			relkind != RELKIND_VIEW)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("predicate must not read \"%s\"", name),
					 errdetail("Its subquery reads a relation that cannot be locked against writers for the call, so the slice could change between the call's statements."),
					 errhint("Copy the values it needs into a table, or write them into the predicate.")));
		/* who may not read it hears so, as from the statement itself */
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
									  ACLMASK_ANY) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind), name);
		if (pg_class_aclcheck(relid, GetUserId(),
							  ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to lock \"%s\", which the predicate reads", name),
					 errdetail("replace_where locks the tables its predicate's subqueries read against writers until the transaction ends, which LOCK TABLE allows to roles with UPDATE, DELETE or TRUNCATE on them."),
					 errhint("Grant one of them, or write the values into the predicate.")));
		pgi_spi_run(psprintf("LOCK TABLE %s IN SHARE MODE",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														name)),
					NULL, false, 0, SPI_OK_UTILITY);
	}
}

static void
predicate_error_context(void *arg)
{
	errcontext("predicate: %s", (const char *) arg);
}

/*
 * Parse the predicate as exactly one expression, the way PL/pgSQL parses
 * an expression (so ";", FROM, a second column and the like are syntax
 * errors), analyse it against the target's columns (42703 for a column it
 * lacks, 42804 when not boolean), and return it deparsed: the text that is
 * then embedded is the analysed expression itself, with no comment or
 * parenthesis of the caller's able to change the statement around it.
 * It runs as the caller, in the caller's statements: it can do nothing a
 * WHERE clause of theirs could not.
 */
static char *
parse_predicate(PgiRelation *target, const char *text, List **reads)
{
	List	   *raw;
	RawStmt    *rs;
	SelectStmt *sel;
	ResTarget  *rt;
	Relation	rel;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	char	   *result;
	ErrorContextCallback errcallback;

	raw = parse_expression_text(text);
	if (list_length(raw) != 1)
		not_one_expression("It is not one expression.");
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		not_one_expression("It is not an expression.");
	sel = (SelectStmt *) rs->stmt;
	if (sel->targetList == NIL)
		not_one_expression("It is empty.");
	if (list_length(sel->targetList) != 1)
		not_one_expression("It is a list of expressions.");
	if (sel->fromClause != NIL || sel->whereClause != NULL ||
		sel->groupClause != NIL || sel->havingClause != NULL ||
		sel->windowClause != NIL || sel->sortClause != NIL ||
		sel->limitOffset != NULL || sel->limitCount != NULL ||
		sel->lockingClause != NIL || sel->withClause != NULL ||
		sel->distinctClause != NIL || sel->intoClause != NULL ||
		sel->valuesLists != NIL || sel->op != SETOP_NONE)
		not_one_expression("It has clauses beyond an expression (FROM, WHERE, GROUP BY, ORDER BY, ...).");
	rt = linitial_node(ResTarget, sel->targetList);
	if (rt->name != NULL)
		not_one_expression("It names its result with AS.");
	predicate_writes_walker(rt->val, NULL);

	/*
	 * No p_sourcetext: an error's cursor would point into the caller's
	 * statement at the predicate's offset; the context line names it.
	 */
	errcallback.callback = predicate_error_context;
	errcallback.arg = (void *) text;

	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	rel = relation_open(target->relid, NoLock);
	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL,
										   false, true);
	addNSItemToQuery(pstate, nsitem, false, true, true);

	/*
	 * Analysed as a select-list item, which admits set-returning functions,
	 * aggregates and window functions, so that they can be refused here as
	 * what they are: not a condition on a row.
	 */
	expr = transformExpr(pstate, rt->val, EXPR_KIND_SELECT_TARGET);
	if (pstate->p_hasTargetSRFs)
		not_one_expression("It calls a set-returning function.");
	if (pstate->p_hasAggs || pstate->p_hasWindowFuncs)
		not_one_expression("It calls an aggregate or window function.");
	expr = coerce_to_boolean(pstate, expr, "predicate");
	assign_expr_collations(pstate, expr);
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("predicate must not call volatile functions"),
				 errdetail("It is evaluated several times (on the source, then on the target), and must select the same rows each time."),
				 errhint("Compute the value first and write it into the predicate.")));
	*reads = NIL;
	(void) predicate_reads_walker(expr, reads);
	result = deparse_expression(expr,
								deparse_context_for("t",
													RelationGetRelid(rel)),
								false, false);
	free_parsestate(pstate);
	relation_close(rel, NoLock);
	error_context_stack = errcallback.previous;
	return result;
}

Datum
pgi_replace_where(PG_FUNCTION_ARGS)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;
	List	   *reads;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	pgi_require_arg(fcinfo, 2, "predicate");
	mode = parse_mode(fcinfo, 3);
	pgi_require_arg(fcinfo, 4, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = 'w';
	plan.allow_empty = PG_GETARG_BOOL(4);
	plan.colidx = -1;

	SPI_connect();
	nest = begin_settings();

	check_privileges(fcinfo);
	lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);
	plan_open(&plan, fcinfo);
	plan.pred = parse_predicate(plan.target, text_to_cstring(PG_GETARG_TEXT_PP(2)),
								&reads);
	plan.desc = plan.pred;
	lock_predicate_reads(plan.target, reads);
	replace_execute(fcinfo, &plan, mode, NULL);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}
