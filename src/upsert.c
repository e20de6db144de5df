/*-------------------------------------------------------------------------
 *
 * upsert.c
 *	  idempotent_upsert, idempotent_upsert_query, idempotent_upsert_json:
 *	  merge a source into a table so that a re-run changes nothing.
 *
 * The work is split so that a replay only reads:
 *
 *	1. check the source: one aggregate over it counts its rows, null keys,
 *	   null versions and distinct keys (the duplicated keys themselves are
 *	   only looked for when there are some);
 *	2. classify: one aggregate over source LEFT JOIN target counts the rows
 *	   that are new, changed (by binary image, or by a greater version),
 *	   stale and unchanged.  Nothing is locked;
 *	3. write, only if step 2 found something to write: an UPDATE of the
 *	   changed rows, then an INSERT of the new ones.
 *
 * Step 3 runs in an internal subtransaction.  Its first attempt inserts the
 * new rows with a plain INSERT, which costs about half of INSERT ... ON
 * CONFLICT; if another session inserted one of the same keys since step 2
 * (unique violation) or the two deadlock, the classification is stale: the
 * subtransaction is rolled back and the whole batch is written again with
 * one INSERT ... ON CONFLICT DO UPDATE in key order, which decides every row
 * against the current table.  The caller sees an upsert, never a
 * duplicate-key error.  Sessions that write in key order cannot deadlock
 * against each other; the retries only cover sessions still on their first
 * attempt.
 *
 * A first load into an empty table skips steps 1 and 2: it tries one plain
 * INSERT of the whole source in a subtransaction, and only if the key's
 * unique index or NOT NULL constraint objects does it roll back and take
 * the steps above, which then say what was wrong with the source.
 *
 * Every statement is set-based and streamed by the executor: no source or
 * target row is ever held in this backend's memory, and counts come back as
 * one aggregate row or as SPI_processed.  The executor checks for cancel and
 * statement_timeout as it streams; between the steps, progress.c reports
 * what was done (pg_idempotent.progress_interval) and checks them too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_idempotent_upsert);
PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_query);
PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_json);

/* Write attempts before a repeated deadlock is reported to the caller. */
#define UPSERT_MAX_ATTEMPTS 5

/* Where the rows come from: a FROM item aliased s0, and its columns. */
typedef struct UpsertSource
{
	StringInfoData from;
	const char *name;			/* for messages */
	PgiColumnList columns;
	PgiParams	params;
} UpsertSource;

typedef struct UpsertPlan
{
	PgiRelation *target;
	UpsertSource *source;
	PgiColumnList cols;			/* target columns the source supplies */
	List	   *key;			/* positions in cols */
	List	   *upd;			/* positions in cols compared and set: all */
	int			version;		/* position in cols, or -1 */
	bool		keep_last;		/* on_duplicate => 'last' */
	bool		dry_run;
	char	   *sel;			/* SELECT of cols, in target types */
	char	   *eff;			/* sel, or sel with duplicates resolved */
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

/*
 * Match the source's columns to the target's (the shared layer refuses what
 * could not be written) and keep the SELECT that yields them in the
 * target's types, so every later comparison is between values of one type.
 */
static void
plan_columns(UpsertPlan *plan)
{
	plan->cols = pgi_match_source_columns(plan->target, &plan->source->columns,
										  plan->source->name,
										  plan->source->from.data, &plan->sel);
	plan->eff = plan->sel;
}

static void
plan_key_and_version(UpsertPlan *plan, ArrayType *key, const char *version)
{
	List	   *tkey;
	ListCell   *lc;
	int			i;

	tkey = pgi_find_key(plan->target, &plan->source->columns, key,
						plan->source->name);
	plan->key = NIL;
	foreach(lc, tkey)
	{
		const char *name = plan->target->columns.cols[lfirst_int(lc)].name;
		int			pos = pgi_column_index(&plan->cols, name);

		Assert(pos >= 0);
		/* an unusable key type fails here, before anything runs */
		pgi_type_operator(plan->cols.cols[pos].typid, BTEqualStrategyNumber, name);
		plan->key = lappend_int(plan->key, pos);
	}

	/*
	 * A matched row is compared, and overwritten, in every source column,
	 * the key's included: key values equal under the index's operator can
	 * still differ in image (1.5 and 1.500, 'A' and 'a' under a
	 * case-insensitive collation), and the table must end holding exactly
	 * what the source says.  Setting a key column to a binary-identical
	 * value does not stop a HOT update.
	 */
	plan->upd = NIL;
	for (i = 0; i < plan->cols.ncols; i++)
		plan->upd = lappend_int(plan->upd, i);

	plan->version = -1;
	if (version != NULL)
	{
		if (pgi_column_index(&plan->target->columns, version) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("version column \"%s\" does not exist in \"%s\"",
							version, plan->target->displayname)));
		plan->version = pgi_column_index(&plan->cols, version);
		if (plan->version < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("version column \"%s\" does not exist in source \"%s\"",
							version, plan->source->name)));
		if (list_member_int(plan->key, plan->version))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version column \"%s\" is part of the key", version),
					 errdetail("A row's version must be able to change while its key stays the same.")));
		pgi_type_operator(plan->cols.cols[plan->version].typid,
						  BTGreaterStrategyNumber, version);
	}
}

/* s.version > t.version, with the version type's own operator */
static void
append_version_compare(StringInfo buf, UpsertPlan *plan, const char *s,
					   int strategy, const char *t)
{
	PgiColumn  *v = &plan->cols.cols[plan->version];

	pgi_append_column(buf, s, v);
	appendStringInfoChar(buf, ' ');
	pgi_append_operator(buf, pgi_type_operator(v->typid, strategy, v->name));
	appendStringInfoChar(buf, ' ');
	pgi_append_column(buf, t, v);
}

/*
 * The condition under which source row s overwrites existing row t: a
 * greater version (or a target row with none), or without versions any
 * difference in binary image.
 */
static void
append_changed(StringInfo buf, UpsertPlan *plan, const char *t, const char *s)
{
	if (plan->version >= 0)
	{
		appendStringInfoString(buf, "(");
		pgi_append_column(buf, t, &plan->cols.cols[plan->version]);
		appendStringInfoString(buf, " IS NULL OR ");
		append_version_compare(buf, plan, s, BTGreaterStrategyNumber, t);
		appendStringInfoString(buf, ")");
	}
	else
		pgi_append_image_differs(buf, t, s, &plan->cols, plan->upd, true);
}

/* key columns as "s.k1, s.k2" */
static void
append_key_list(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_column_list(buf, alias, &plan->cols, plan->key);
}

/* the key as one sortable value: the column itself, or ROW(k1, k2, ...) */
static void
append_key_row(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	if (list_length(plan->key) == 1)
	{
		pgi_append_column(buf, alias, &plan->cols.cols[linitial_int(plan->key)]);
		return;
	}
	appendStringInfoString(buf, "ROW(");
	append_key_list(buf, plan, alias);
	appendStringInfoChar(buf, ')');
}

/* ROW(alias.k1, ...)::text, the key as a message shows it */
static void
append_key_text(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	appendStringInfoString(buf, "ROW(");
	append_key_list(buf, plan, alias);
	appendStringInfoString(buf, ")::pg_catalog.text");
}

static char *
key_names(UpsertPlan *plan)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, plan->key)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, plan->cols.cols[lfirst_int(lc)].name);
	}
	return buf.data;
}

/*
 * Step 1: one pass over the source, counting keys.  Refuses null keys,
 * null versions and (unless keep_last) duplicate keys; with keep_last,
 * checks that each duplicated key has one row of greatest version and
 * makes plan->eff keep only that row.  Returns the number of rows the
 * later steps will see.
 */
static int64
check_source(UpsertPlan *plan, UpsertCounts *counts)
{
	StringInfoData q;
	int64		total,
				null_keys,
				null_versions,
				dup_rows,
				dup_keys;
	char	   *example;

	/*
	 * count(DISTINCT key) sorts, which is several times cheaper than hashing
	 * a million groups; the duplicated keys themselves are only looked for
	 * once we know there are some.
	 */
	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, "), ");
	if (plan->version >= 0)
	{
		appendStringInfoString(&q, "pg_catalog.count(*) FILTER (WHERE ");
		pgi_append_column(&q, "s", &plan->cols.cols[plan->version]);
		appendStringInfoString(&q, " IS NULL), ");
	}
	else
		appendStringInfoString(&q, "0::pg_catalog.int8, ");
	appendStringInfoString(&q, "pg_catalog.count(DISTINCT ");
	append_key_row(&q, plan, "s");
	appendStringInfoString(&q, ") FILTER (WHERE NOT ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfo(&q, ") FROM (%s) s", plan->sel);

	pgi_spi_run(q.data, &plan->source->params, true, 0, SPI_OK_SELECT);
	total = pgi_spi_int8(0, 1);
	null_keys = pgi_spi_int8(0, 2);
	null_versions = pgi_spi_int8(0, 3);
	dup_rows = total - null_keys - pgi_spi_int8(0, 4);
	dup_keys = 0;
	example = NULL;

	if (dup_rows > 0 && null_keys == 0 && null_versions == 0)
	{
		resetStringInfo(&q);
		appendStringInfoString(&q, "SELECT pg_catalog.count(*), pg_catalog.min(");
		append_key_text(&q, plan, "g");
		appendStringInfoString(&q, ") FROM (SELECT ");
		append_key_list(&q, plan, "s");
		appendStringInfo(&q, " FROM (%s) s GROUP BY ", plan->sel);
		append_key_list(&q, plan, "s");
		appendStringInfoString(&q, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) g");
		pgi_spi_run(q.data, &plan->source->params, true, 0, SPI_OK_SELECT);
		dup_keys = pgi_spi_int8(0, 1);
		example = pgi_spi_text(0, 2);
	}

	if (null_keys > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null key values", plan->source->name),
				 errdetail("%lld of its rows have a null in key column(s) (%s).",
						   (long long) null_keys, key_names(plan)),
				 errhint("Filter out or fix those rows: a null key matches no row.")));
	if (null_versions > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null values in version column \"%s\"",
						plan->source->name,
						plan->cols.cols[plan->version].name),
				 errdetail("%lld of its rows have no version.",
						   (long long) null_versions)));
	if (dup_rows > 0 && !plan->keep_last)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys", plan->source->name),
				 errdetail("Key (%s)=%s appears more than once; %lld keys are duplicated, %lld rows in all.",
						   key_names(plan), example, (long long) dup_keys,
						   (long long) (dup_rows + dup_keys)),
				 errhint("Remove the duplicates, or pass on_duplicate => 'last' with a version_column to keep the newest row of each key.")));

	counts->duplicates = dup_rows;
	if (dup_rows > 0)
	{
		StringInfoData tie;
		StringInfoData eff;
		StringInfoData win;

		/* the window every row of a key shares, newest version first */
		initStringInfo(&win);
		appendStringInfoString(&win, "PARTITION BY ");
		append_key_list(&win, plan, "s");
		if (plan->version >= 0)
		{
			appendStringInfoString(&win, " ORDER BY ");
			pgi_append_column(&win, "s", &plan->cols.cols[plan->version]);
			appendStringInfoString(&win, " DESC");
		}

		/* rows tied for newest must be identical, or there is no answer */
		initStringInfo(&tie);
		appendStringInfoString(&tie, "SELECT ");
		append_key_text(&tie, plan, "d");
		appendStringInfoString(&tie, " FROM (SELECT ");
		append_key_list(&tie, plan, "s");
		appendStringInfoString(&tie, ", ROW(");
		pgi_append_column_list(&tie, "s", &plan->cols, NIL);
		appendStringInfoString(&tie, ") AS img, pg_catalog.first_value(ROW(");
		pgi_append_column_list(&tie, "s", &plan->cols, NIL);
		appendStringInfo(&tie, ")) OVER w AS top, pg_catalog.rank() OVER w AS rk "
						 "FROM (%s) s WINDOW w AS (%s)) d "
						 "WHERE d.rk OPERATOR(pg_catalog.=) 1 "
						 "AND pg_catalog.record_image_ne(d.img, d.top) LIMIT 1",
						 plan->sel, win.data);
		pgi_spi_run(tie.data, &plan->source->params, true, 1, SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("source \"%s\" has duplicate keys with no single newest row",
							plan->source->name),
					 errdetail("Key (%s)=%s has different rows %s.",
							   key_names(plan), pgi_spi_text(0, 1),
							   plan->version >= 0 ?
							   "with the same greatest version" :
							   "and there is no version column to choose between them"),
					 errhint("Make the rows of each key differ in \"version_column\", or remove the duplicates.")));

		initStringInfo(&eff);
		appendStringInfoString(&eff, "SELECT DISTINCT ON (");
		append_key_list(&eff, plan, "s");
		appendStringInfoString(&eff, ") ");
		pgi_append_column_list(&eff, "s", &plan->cols, NIL);
		appendStringInfo(&eff, " FROM (%s) s ORDER BY ", plan->sel);
		append_key_list(&eff, plan, "s");
		if (plan->version >= 0)
		{
			appendStringInfoString(&eff, ", ");
			pgi_append_column(&eff, "s", &plan->cols.cols[plan->version]);
			appendStringInfoString(&eff, " DESC");
		}
		plan->eff = eff.data;
	}
	return total - dup_rows;
}

/* FROM (eff) s LEFT JOIN target t ON key match */
static void
append_source_join(StringInfo buf, UpsertPlan *plan, const char *t)
{
	appendStringInfo(buf, " FROM (%s) s LEFT JOIN %s %s ON ",
					 plan->eff, plan->target->qualname, t);
	pgi_append_key_match(buf, "s", t, &plan->cols, plan->key);
}

/* the found/not-found test on the outer-joined target row */
static void
append_found(StringInfo buf, UpsertPlan *plan, const char *t, bool found)
{
	pgi_append_column(buf, t, &plan->cols.cols[linitial_int(plan->key)]);
	appendStringInfoString(buf, found ? " IS NOT NULL" : " IS NULL");
}

/* Step 2: count new, changed and stale rows; reads only, locks nothing. */
static void
classify(UpsertPlan *plan, int64 *new_rows, int64 *changed, int64 *stale)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT pg_catalog.count(*) FILTER (WHERE ");
	append_found(&q, plan, "t", false);
	appendStringInfoString(&q, "), pg_catalog.count(*) FILTER (WHERE ");
	append_found(&q, plan, "t", true);
	appendStringInfoString(&q, " AND ");
	append_changed(&q, plan, "t", "s");
	appendStringInfoString(&q, "), pg_catalog.count(*) FILTER (WHERE ");
	if (plan->version >= 0)
	{
		append_found(&q, plan, "t", true);
		appendStringInfoString(&q, " AND ");
		append_version_compare(&q, plan, "s", BTLessStrategyNumber, "t");
	}
	else
		appendStringInfoString(&q, "false");
	appendStringInfoString(&q, ")");
	append_source_join(&q, plan, "t");

	pgi_spi_run(q.data, &plan->source->params, true, 0, SPI_OK_SELECT);
	*new_rows = pgi_spi_int8(0, 1);
	*changed = pgi_spi_int8(0, 2);
	*stale = pgi_spi_int8(0, 3);
}

static bool
target_is_empty(UpsertPlan *plan)
{
	char	   *q = psprintf("SELECT 1 FROM %s LIMIT 1", plan->target->qualname);

	pgi_spi_run(q, NULL, true, 1, SPI_OK_SELECT);
	return SPI_processed == 0;
}

/* SET u1 = <from>.u1, ... */
static void
append_set_list(StringInfo buf, UpsertPlan *plan, const char *from)
{
	ListCell   *lc;

	foreach(lc, plan->upd)
	{
		PgiColumn  *col = &plan->cols.cols[lfirst_int(lc)];

		if (lc != list_head(plan->upd))
			appendStringInfoString(buf, ", ");
		pgi_append_ident(buf, col->name);
		appendStringInfoString(buf, " = ");
		pgi_append_column(buf, from, col);
	}
}

static int64
write_updates(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "UPDATE %s t SET ", plan->target->qualname);
	append_set_list(&q, plan, "s");
	appendStringInfo(&q, " FROM (%s) s WHERE ", plan->eff);
	pgi_append_key_match(&q, "t", "s", &plan->cols, plan->key);
	appendStringInfoString(&q, " AND ");
	append_changed(&q, plan, "t", "s");
	pgi_spi_run(q.data, &plan->source->params, false, 0, SPI_OK_UPDATE);
	return (int64) SPI_processed;
}

/*
 * The fast path's insert: a plain INSERT of the rows the target lacks
 * (all of them, when it was empty), so defaults are evaluated for those
 * rows alone and no speculative insertion is paid for.
 */
static int64
write_new_rows(UpsertPlan *plan, bool all_new)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "s");
	if (all_new)
		appendStringInfo(&q, " FROM (%s) s", plan->eff);
	else
	{
		append_source_join(&q, plan, "o");
		appendStringInfoString(&q, " WHERE ");
		append_found(&q, plan, "o", false);
	}
	pgi_spi_run(q.data, &plan->source->params, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The safe path, taken when another session wrote some of the same keys
 * since we classified the batch: one INSERT ... ON CONFLICT DO UPDATE of
 * the whole batch, in key order, so it neither trusts the classification
 * nor deadlocks against another session doing the same.  It locks the
 * conflicting rows and evaluates defaults for every row it offers, which
 * is the price of the race, not of the common case.
 */
static void
write_all_rows_safely(UpsertPlan *plan, int64 *inserted, int64 *updated)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "WITH w AS (");
	pgi_append_insert_into(&q, plan->target->qualname, "t", &plan->cols, "s");
	appendStringInfo(&q, " FROM (%s) s ORDER BY ", plan->eff);
	append_key_list(&q, plan, "s");
	appendStringInfoString(&q, " ON CONFLICT (");
	append_key_list(&q, plan, NULL);
	if (plan->upd == NIL)
		appendStringInfoString(&q, ") DO NOTHING");
	else
	{
		appendStringInfoString(&q, ") DO UPDATE SET ");
		append_set_list(&q, plan, "excluded");
		appendStringInfoString(&q, " WHERE ");
		append_changed(&q, plan, "t", "excluded");
	}

	/*
	 * A row ON CONFLICT updated carries our transaction as its xmax; a row it
	 * inserted has none.
	 */
	appendStringInfoString(&q, " RETURNING t.xmax AS x) "
						   "SELECT pg_catalog.count(*) FILTER (WHERE w.x OPERATOR(pg_catalog.=) '0'::pg_catalog.xid), "
						   "pg_catalog.count(*) FILTER (WHERE w.x OPERATOR(pg_catalog.<>) '0'::pg_catalog.xid) FROM w");
	pgi_spi_run(q.data, &plan->source->params, false, 0, SPI_OK_SELECT);
	*inserted = pgi_spi_int8(0, 1);
	*updated = pgi_spi_int8(0, 2);
}

/* What one attempt at writing needs, passed through pgi_run_in_subxact. */
typedef struct UpsertWrite
{
	UpsertPlan *plan;
	int64		total;
	int64		new_rows;
	int64		changed;
	bool		safe;
	int64		inserted;
	int64		updated;
} UpsertWrite;

static void
write_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	w->inserted = 0;
	w->updated = 0;
	if (w->safe)
	{
		write_all_rows_safely(w->plan, &w->inserted, &w->updated);
		pgi_progress_step(&w->plan->progress,
						  "inserted %lld and updated %lld %s with INSERT ... ON CONFLICT",
						  (long long) w->inserted, (long long) w->updated,
						  PGI_PLURAL(w->updated, "row", "rows"));
	}
	else
	{
		if (w->changed > 0)
		{
			w->updated = write_updates(w->plan);
			pgi_progress_rows(&w->plan->progress, "updated", w->updated);
		}
		if (w->new_rows > 0)
		{
			w->inserted = write_new_rows(w->plan, w->new_rows == w->total);
			pgi_progress_rows(&w->plan->progress, "inserted", w->inserted);
		}
	}
}

/*
 * What made a write attempt roll back, for the progress report: the error
 * it caught is gone by then, and its code is all a reader needs.
 */
static const char *
rollback_cause(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNIQUE_VIOLATION:
			return "a unique violation";
		case ERRCODE_NOT_NULL_VIOLATION:
			return "a not-null violation";
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return "a deadlock";
	}
	return unpack_sql_state(sqlerrcode);
}

/*
 * Step 3: the fast path first, then the safe path for as long as sessions
 * still on their fast path deadlock against us.  The last attempt runs
 * without catching anything, so its error, if any, is the caller's.
 */
static void
write_changes(UpsertPlan *plan, int64 total, int64 new_rows, int64 changed,
			  int64 *inserted, int64 *updated)
{
	static const int fast_codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int safe_codes[] = {ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int no_codes[] = {0};
	UpsertWrite w;
	int			attempt;

	w.plan = plan;
	w.total = total;
	w.new_rows = new_rows;
	w.changed = changed;
	for (attempt = 1;; attempt++)
	{
		int			caught;

		w.safe = attempt > 1;
		caught = pgi_run_in_subxact(write_once, &w,
									attempt == UPSERT_MAX_ATTEMPTS ? no_codes :
									w.safe ? safe_codes : fast_codes);
		if (caught == 0)
			break;
		/* also where a cancel between attempts is taken */
		pgi_progress_step(&plan->progress,
						  "write attempt %d rolled back after %s; writing the batch again with INSERT ... ON CONFLICT in key order",
						  attempt, rollback_cause(caught));
	}
	*inserted = w.inserted;
	*updated = w.updated;

	/*
	 * The fast path updated fewer rows than step 2 counted as changed: a
	 * concurrent writer got there between, and one of its changes may have
	 * taken a row out from under our UPDATE (deleted and re-inserted it, as
	 * a replace does), which READ COMMITTED skips without a word.  One pass
	 * of the safe path decides every row again against the committed table;
	 * rows the fast path wrote are identical by now and left alone.
	 */
	if (!w.safe && w.updated < changed)
	{
		pgi_progress_step(&plan->progress,
						  "updated %lld of the %lld changed rows; deciding the batch again with INSERT ... ON CONFLICT",
						  (long long) w.updated, (long long) changed);
		w.safe = true;
		(void) pgi_run_in_subxact(write_once, &w, no_codes);
		*inserted += w.inserted;
		*updated += w.updated;
	}
}

static void
first_load_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	w->inserted = write_new_rows(w->plan, true);
}

/*
 * A first load into an empty table, optimistically: one plain INSERT of the
 * whole source, letting the key's unique index and NOT NULL constraints find
 * what steps 1 and 2 would look for.  If the source turns out to have
 * duplicate or null keys, or another session is loading the same keys, the
 * insert is rolled back and the caller takes the general path, which reports
 * or resolves them.  Only used where the index is sure to catch both: the
 * key columns are NOT NULL and no version column needs checking.
 */
static bool
try_first_load(UpsertPlan *plan, int64 *inserted)
{
	static const int codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_NOT_NULL_VIOLATION, ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	UpsertWrite w;
	ListCell   *lc;
	int			caught;

	if (plan->dry_run || plan->version >= 0)
		return false;
	foreach(lc, plan->key)
	{
		if (!plan->cols.cols[lfirst_int(lc)].notnull)
			return false;
	}
	if (!target_is_empty(plan))
		return false;

	memset(&w, 0, sizeof(w));
	w.plan = plan;
	caught = pgi_run_in_subxact(first_load_once, &w, codes);
	if (caught != 0)
	{
		pgi_progress_step(&plan->progress,
						  "first load into the empty table rolled back after %s; checking the source",
						  rollback_cause(caught));
		return false;
	}
	*inserted = w.inserted;
	pgi_progress_step(&plan->progress,
					  "inserted %lld %s into the empty table (first load)",
					  (long long) w.inserted, PGI_PLURAL(w.inserted, "row", "rows"));
	return true;
}

static void
upsert_run(FunctionCallInfo fcinfo, PgiRelation *target, UpsertSource *source)
{
	UpsertPlan	plan;
	UpsertCounts counts;
	ArrayType  *key = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	char	   *version = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *on_duplicate;
	int64		total,
				new_rows,
				changed;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	pgi_require_arg(fcinfo, 4, "on_duplicate");
	pgi_require_arg(fcinfo, 5, "dry_run");
	on_duplicate = text_to_cstring(PG_GETARG_TEXT_PP(4));

	memset(&plan, 0, sizeof(plan));
	memset(&counts, 0, sizeof(counts));
	plan.target = target;
	plan.source = source;
	plan.dry_run = PG_GETARG_BOOL(5);
	pgi_progress_begin(&plan.progress, get_func_name(fcinfo->flinfo->fn_oid),
					   target->displayname);
	if (strcmp(on_duplicate, "error") == 0)
		plan.keep_last = false;
	else if (strcmp(on_duplicate, "last") == 0)
		plan.keep_last = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for on_duplicate: \"%s\"", on_duplicate),
				 errhint("Valid values are \"error\" and \"last\".")));

	plan_columns(&plan);
	plan_key_and_version(&plan, key, version);

	if (!try_first_load(&plan, &counts.inserted))
	{
		total = check_source(&plan, &counts);
		pgi_progress_step(&plan.progress,
						  "checked the source: %lld %s, %lld %s",
						  (long long) (total + counts.duplicates),
						  PGI_PLURAL(total + counts.duplicates, "row", "rows"),
						  (long long) counts.duplicates,
						  PGI_PLURAL(counts.duplicates, "duplicate", "duplicates"));
		if (target_is_empty(&plan))
		{
			/*
			 * Every row is new, and the join would only prove it.  A
			 * concurrent insert is still caught by the write's fallback.
			 */
			new_rows = total;
			changed = 0;
		}
		else
			classify(&plan, &new_rows, &changed, &counts.stale);
		pgi_progress_step(&plan.progress,
						  "classified %lld %s: %lld new, %lld changed, %lld stale, %lld unchanged%s",
						  (long long) total, PGI_PLURAL(total, "row", "rows"),
						  (long long) new_rows,
						  (long long) changed, (long long) counts.stale,
						  (long long) (total - new_rows - changed - counts.stale),
						  plan.dry_run ? " (dry run: nothing written)" : "");

		if (plan.dry_run)
		{
			counts.inserted = new_rows;
			counts.updated = changed;
		}
		else if (new_rows > 0 || changed > 0)
			write_changes(&plan, total, new_rows, changed,
						  &counts.inserted, &counts.updated);
		counts.unchanged = Max(total - counts.inserted - counts.updated - counts.stale, 0);
	}

	values[0] = Int64GetDatum(counts.inserted);
	values[1] = Int64GetDatum(counts.updated);
	values[2] = Int64GetDatum(counts.unchanged);
	values[3] = Int64GetDatum(counts.stale);
	values[4] = Int64GetDatum(counts.duplicates);
	pgi_return_row(fcinfo, values, nulls);
}

static UpsertSource *
source_new(void)
{
	UpsertSource *source = palloc0(sizeof(UpsertSource));

	initStringInfo(&source->from);
	return source;
}

Datum
pgi_idempotent_upsert(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	PgiRelation *rel;
	UpsertSource *source = source_new();

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	rel = pgi_relation_open(PG_GETARG_OID(1), PGI_REL_READ, "source");
	source->name = rel->displayname;
	source->columns = rel->columns;
	appendStringInfo(&source->from, "%s s0", rel->qualname);

	SPI_connect();
	upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}

/*
 * The query must be exactly one SELECT (or VALUES): it is embedded as a
 * subquery, so anything else would either fail obscurely or, worse, run.
 */
static char *
single_select(const char *query)
{
	List	   *raw;
	RawStmt    *stmt;

	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query must be exactly one SELECT statement"),
				 errdetail("It contains %d statements.", list_length(raw))));
	stmt = linitial_node(RawStmt, raw);
	if (!IsA(stmt->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query must be a SELECT statement"),
				 errdetail("The statement is %s.",
						   GetCommandTagName(CreateCommandTag(stmt->stmt)))));
	if (stmt->stmt_len > 0)
		return pnstrdup(query + stmt->stmt_location, stmt->stmt_len);
	return pstrdup(query + stmt->stmt_location);
}

Datum
pgi_idempotent_upsert_query(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	UpsertSource *source = source_new();
	char	   *query;
	SPIPlanPtr	prepared;
	CachedPlanSource *ps;
	int			i;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "query");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	query = single_select(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	SPI_connect();
	prepared = SPI_prepare(query, 0, NULL);
	if (prepared == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	ps = linitial(SPI_plan_get_plan_sources(prepared));
	if (ps->resultDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query returns no rows")));
	source->name = "query";
	source->columns = pgi_columns_from_tupdesc(ps->resultDesc);
	for (i = 0; i < source->columns.ncols; i++)
		source->columns.cols[i].attnum = 0;
	/* the newline ends a trailing -- comment before our closing paren */
	appendStringInfo(&source->from, "(%s\n) s0", query);
	SPI_freeplan(prepared);

	upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}

Datum
pgi_idempotent_upsert_json(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	UpsertSource *source = source_new();
	Jsonb	   *rows;
	Datum	   *keys;
	bool	   *keynulls;
	int			nkeys;
	int			i;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "rows");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	rows = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(rows) || JB_ROOT_IS_SCALAR(rows))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"rows\" must be a JSON array of objects")));

	source->name = "rows";
	pgi_params_add(&source->params, JSONBOID, PointerGetDatum(rows));

	SPI_connect();

	/* the columns are the union of the objects' keys */
	pgi_spi_run("SELECT pg_catalog.count(*) FILTER (WHERE pg_catalog.jsonb_typeof(e) OPERATOR(pg_catalog.<>) 'object'), "
				"pg_catalog.count(*) FROM pg_catalog.jsonb_array_elements($1) e",
				&source->params, true, 0, SPI_OK_SELECT);
	if (pgi_spi_int8(0, 1) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"rows\" must be a JSON array of objects"),
				 errdetail("%lld of its elements are not objects.",
						   (long long) pgi_spi_int8(0, 1))));
	if (pgi_spi_int8(0, 2) == 0)
	{
		/* nothing to merge: an empty batch is a valid, empty replay */
		Datum		values[5] = {0, 0, 0, 0, 0};
		bool		nulls[5] = {false, false, false, false, false};

		pgi_require_arg(fcinfo, 4, "on_duplicate");
		pgi_require_arg(fcinfo, 5, "dry_run");
		for (i = 0; i < 5; i++)
			values[i] = Int64GetDatum(0);
		/* before SPI_finish, which frees the int8s where they are pointers */
		pgi_return_row(fcinfo, values, nulls);
		SPI_finish();
		PG_RETURN_NULL();
	}
	pgi_spi_run("SELECT pg_catalog.array_agg(DISTINCT k ORDER BY k) "
				"FROM pg_catalog.jsonb_array_elements($1) e, pg_catalog.jsonb_object_keys(e) k",
				&source->params, true, 0, SPI_OK_SELECT);
	{
		bool		isnull;
		Datum		arr = SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the objects in argument \"rows\" have no keys")));
		deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false,
						  TYPALIGN_INT, &keys, &keynulls, &nkeys);
	}

	source->columns.ncols = 0;
	source->columns.cols = palloc0(sizeof(PgiColumn) * nkeys);
	appendStringInfoString(&source->from, "pg_catalog.jsonb_to_recordset($1) s0(");
	for (i = 0; i < nkeys; i++)
	{
		char	   *name = TextDatumGetCString(keys[i]);
		int			t = pgi_column_index(&target->columns, name);
		PgiColumn  *col;

		CHECK_FOR_INTERRUPTS();
		if (t < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key \"%s\" of argument \"rows\" is not a column of \"%s\"",
							name, target->displayname),
					 errhint("Every key of every object must name a column of the target.")));
		col = &source->columns.cols[source->columns.ncols++];
		*col = target->columns.cols[t];
		if (i > 0)
			appendStringInfoString(&source->from, ", ");
		pgi_append_ident(&source->from, col->name);
		appendStringInfoChar(&source->from, ' ');
		pgi_append_type(&source->from, col->typid, col->typmod);
	}
	appendStringInfoChar(&source->from, ')');

	upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}
