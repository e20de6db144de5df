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
 *	   deadlock on the target's own locks (see pgi_replace_lock_slice);
 *	2. check the source: one aggregate counts its rows and those outside the
 *	   slice (23514 with an example), and refuses an empty source unless
 *	   allow_empty;
 *	3. write, in the mode asked for (or chosen by auto):
 *	   - diff: rows compare as multisets by binary image (_replace_image,
 *	     the bytes record_image_eq compares: 1.0 and 1.00 differ, NULL
 *	     matches NULL, and json or point compare without an equality
 *	     operator).  One read-only
 *	     FULL JOIN on the image keeps the rows only one side holds (target
 *	     ctids to delete, source rows to insert); only if there are any are
 *	     they deleted and inserted.  Where an image both sides hold repeats,
 *	     that join is not the multiset comparison, and an aggregate counts
 *	     per distinct image the rows on each side instead; the surplus
 *	     target rows are deleted (numbered within their image group, by
 *	     ctid) and the missing source rows inserted.  An identical re-run
 *	     therefore only reads;
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
 * into the slice meanwhile is what pgi_replace_settle is for.
 *
 * Every statement is set-based and streamed by the executor; the only rows
 * that come back through SPI are one-row aggregates and one example row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "replace.h"

PG_FUNCTION_INFO_V1(pgi_replace_partition);
PG_FUNCTION_INFO_V1(pgi_replace_partition_range);
PG_FUNCTION_INFO_V1(pgi_replace_table);


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

ReplaceMode
pgi_replace_parse_mode(FunctionCallInfo fcinfo, int argno)
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
 * Match the source's columns to the target's, as the upsert does (the
 * shared layer refuses what could not be written and converts the source
 * to the target's types, so that binary images on both sides are images of
 * the same types), and find out whether rows can be compared by image.
 */
static void
plan_columns(ReplacePlan *plan)
{
	char	   *from = psprintf("%s s0", plan->source->qualname);

	plan->cols = pgi_match_source_columns(plan->target, &plan->source->columns,
										  plan->source->displayname, from,
										  &plan->sel);
	pgi_replace_set_comparable(plan);
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
void
pgi_replace_lock_slice(FunctionCallInfo fcinfo, Oid relid, const char *slicekey,
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
void
pgi_replace_check_privileges(FunctionCallInfo fcinfo)
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
	if (plan->kind != REPLACE_TABLE)
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
 * Steps 2 and 3, once the slice is known and locked.  st says where the
 * slice lies in a partitioned target (NULL for replace_where, which never
 * swaps).
 */
void
pgi_replace_execute(FunctionCallInfo fcinfo, ReplacePlan *plan, ReplaceMode mode,
					PgiSwapTarget *st)
{
	int64		total;
	int64		deleted = 0;
	int64		inserted = 0;
	int64		unchanged = 0;
	DiffCounts	dc;
	bool		counted = false;
	bool		changed;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	TransactionId horizon;

	/* before the first read of the slice: see pgi_replace_settle */
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
					 errdetail("%s", st ? st->refusal : _("replace_where slices are not partitions.")),
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

			pgi_replace_diff_count(plan, leaf, &dc);
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
			if (counted)
			{
				changed = dc.to_delete > 0 || dc.to_insert > 0;
				if (changed)
					pgi_replace_diff_write(plan, &dc, &deleted, &inserted);
			}
			else
				changed = pgi_replace_diff(plan, &deleted, &inserted);
			if (changed)
				pgi_replace_settle(plan, horizon, total, &deleted, &inserted);
			/* the source rows that were there already */
			unchanged = Max(total - inserted, 0);
			break;
		case MODE_DELETE_INSERT:
			deleted = pgi_replace_delete_slice(plan);
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: deleted %lld row",
											"%s on %s: deleted %lld rows",
											deleted, PGI_PROGRESS_OF(&plan->progress),
											(long long) deleted));
			inserted = pgi_replace_insert_all(plan);
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld row",
											"%s on %s: inserted %lld rows",
											inserted, PGI_PROGRESS_OF(&plan->progress),
											(long long) inserted));
			if (plan->comparable)
				pgi_replace_settle(plan, horizon, total, &deleted, &inserted);
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
 * the time of a serial hash aggregate.  Nor with JIT: the same guess makes
 * a comparison's estimated cost (a join of 100,000 rows with 100,000 comes
 * out at 50 million rows) pass jit_above_cost whatever the slice's size,
 * and compiling took longer (0.28 s) than the identical re-run of a
 * 100,000-row slice without it.  The settings are the caller's again when
 * the function returns, or when its (sub)transaction aborts.
 */
int
pgi_replace_begin_settings(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("max_parallel_workers_per_gather", "0",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* Open target and source, and match their columns. */
void
pgi_replace_plan_open(ReplacePlan *plan, FunctionCallInfo fcinfo)
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
slice_description(PgiColumn *col, ReplaceKind kind, Datum *values)
{
	Oid			out;
	bool		varlena;

	getTypeOutputInfo(col->typid, &out, &varlena);
	if (kind == REPLACE_VALUE)
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
replace_by_column(FunctionCallInfo fcinfo, ReplaceKind kind)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;
	PgiSwapTarget st;
	char	   *colname;
	int			nvalues = (kind == REPLACE_VALUE) ? 1 : 2;
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

	argnames[0] = (kind == REPLACE_VALUE) ? "partition_value" : "lower";
	argnames[1] = "upper";
	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	pgi_require_arg(fcinfo, 2, "partition_column");
	for (i = 0; i < nvalues; i++)
		pgi_require_arg(fcinfo, 3 + i, argnames[i]);
	mode = pgi_replace_parse_mode(fcinfo, modearg);
	pgi_require_arg(fcinfo, modearg + 1, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = kind;
	plan.allow_empty = PG_GETARG_BOOL(modearg + 1);
	colname = text_to_cstring(PG_GETARG_TEXT_PP(2));
	argtype = get_fn_expr_argtype(fcinfo->flinfo, 3);
	if (!OidIsValid(argtype))
		elog(ERROR, "could not determine the type of argument \"%s\"", argnames[0]);

	SPI_connect();
	nest = pgi_replace_begin_settings();

	/* step 1, before any lock on the target: see lock_slice */
	pgi_replace_check_privileges(fcinfo);
	coltype = unlocked_column_type(PG_GETARG_OID(0), colname, &coltypmod);
	for (i = 0; i < nvalues; i++)
		values[i] = OidIsValid(coltype) ?
			cast_value(PG_GETARG_DATUM(3 + i), argtype, coltype, coltypmod,
					   argnames[i], colname) :
			PG_GETARG_DATUM(3 + i);
	if (kind == REPLACE_VALUE)
	{
		/* the column's name, a NUL, then the value */
		initStringInfo(&key);
		appendBinaryStringInfo(&key, colname, strlen(colname) + 1);
		append_slice_key(&key, values, nvalues, OidIsValid(coltype) ? coltype : argtype);
		pgi_replace_lock_slice(fcinfo, PG_GETARG_OID(0), key.data, key.len);
	}
	else
		pgi_replace_lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);

	pgi_replace_plan_open(&plan, fcinfo);
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
										   kind == REPLACE_VALUE ? BTEqualStrategyNumber :
										   i == 0 ? BTGreaterEqualStrategyNumber :
										   BTLessStrategyNumber));
		appendStringInfo(&pred, " $%d", i + 1);
	}
	plan.pred = pred.data;
	plan.desc = slice_description(col, kind, values);

	pgi_swap_locate(plan.target, plan.colidx, kind, values, &st);
	pgi_replace_execute(fcinfo, &plan, mode, &st);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}

Datum
pgi_replace_partition(PG_FUNCTION_ARGS)
{
	return replace_by_column(fcinfo, REPLACE_VALUE);
}

Datum
pgi_replace_partition_range(PG_FUNCTION_ARGS)
{
	return replace_by_column(fcinfo, REPLACE_RANGE);
}

Datum
pgi_replace_table(PG_FUNCTION_ARGS)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	mode = pgi_replace_parse_mode(fcinfo, 2);
	pgi_require_arg(fcinfo, 3, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = REPLACE_TABLE;
	plan.allow_empty = PG_GETARG_BOOL(3);
	plan.pred = "true";
	plan.desc = "(the whole table)";
	plan.colidx = -1;

	SPI_connect();
	nest = pgi_replace_begin_settings();
	pgi_replace_check_privileges(fcinfo);
	pgi_replace_lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);
	pgi_replace_plan_open(&plan, fcinfo);
	if (mode == MODE_SWAP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replace all of \"%s\" by swapping a partition",
						plan.target->displayname),
				 errdetail("Swap replaces one leaf partition; the whole table is not one."),
				 errhint("Use mode => 'diff' or mode => 'delete_insert'.")));
	pgi_replace_execute(fcinfo, &plan, mode, NULL);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}
