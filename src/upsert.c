/*-------------------------------------------------------------------------
 *
 * upsert.c
 *	  idempotent_upsert, idempotent_upsert_query, idempotent_upsert_json:
 *	  merge a source into a table so that a re-run changes nothing.
 *
 * A call runs one statement (upsert_sql.c builds it), in one registered
 * snapshot: it checks the source (rows, null keys, null versions, distinct
 * keys, unless distinct.c proves the source unique on the key; the
 * duplicated keys themselves are only looked for when there are some),
 * classifies each source row against the target by key (new,
 * changed by binary image or by a greater version, stale, unchanged), and
 * only if the checks passed updates the changed rows (found by ctid) and
 * inserts the new ones.  Unchanged rows are dropped before the writes, so
 * an identical replay reads and writes nothing more, and locks no row.
 *
 * Every row lock the statement takes, it takes in key order: it locks the
 * changed rows (by ctid, in key order) before it updates them, and inserts
 * the new rows in key order after that, so two calls writing overlapping
 * keys queue instead of deadlocking, in whatever order their sources list
 * the keys.
 *
 * The statement runs in an internal subtransaction.  Its first attempt
 * inserts the new rows with a plain INSERT, which costs about half of
 * INSERT ... ON CONFLICT.  If another session wrote some of the same keys
 * since the snapshot (it inserted a key classified new: unique violation;
 * it changed or deleted a row classified changed: the lock pass locks fewer
 * rows than were classified changed), the classification is stale and the
 * subtransaction is rolled back.  Under READ COMMITTED the call then runs
 * again in a new snapshot, so the retry too writes and locks only rows that
 * differ; after many such retries, and at once under REPEATABLE READ, the
 * whole batch is written with one INSERT ... ON CONFLICT DO UPDATE in key
 * order, which decides every row against the current table.  The caller
 * sees an upsert, never a duplicate-key error.
 *
 * A first load into an empty table skips the checks: it tries one plain
 * INSERT of the whole source in a subtransaction, and only if the key's
 * unique index or NOT NULL constraint objects does it roll back and run the
 * statement above, which then says what was wrong with the source.
 *
 * What a call derives from the catalogs (columns, key, version, the
 * statements' text) is kept per backend for the next call of the same
 * shape (callcache.c).  The query and JSON sources are upsert_source.c's.
 *
 * Every statement is set-based and streamed by the executor: no source or
 * target row is ever held in this backend's memory, and counts come back as
 * one aggregate row or as SPI_processed.  The executor checks for cancel and
 * statement_timeout as it streams; between attempts, progress.c reports
 * what was done (pg_idempotent.progress_interval) and checks them too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "access/relation.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/bufmgr.h"

#include "upsert.h"

PG_FUNCTION_INFO_V1(pgi_idempotent_upsert);

/*
 * Under READ COMMITTED, attempts of the one statement, each in a new
 * snapshot, before the batch is written with INSERT ... ON CONFLICT; then
 * attempts of that before a repeated deadlock is reported to the caller.
 */
#define UPSERT_FRESH_ATTEMPTS 20
#define UPSERT_SAFE_ATTEMPTS 4

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
	 * A matched row is compared in every source column, the key's included:
	 * key values equal under the index's operator can still differ in image
	 * (1.5 and 1.500, 'A' and 'a' under a case-insensitive collation), and
	 * the table must end holding exactly what the source says.  Such a key is
	 * overwritten too.  A key whose equal values are identical images
	 * (integers, dates, text under a deterministic collation) is not SET: it
	 * cannot change, and an UPDATE that names an indexed column tells the
	 * index to expect a new key, which costs page splits where a row that
	 * keeps its key would not.
	 */
	plan->upd = NIL;
	plan->set = NIL;
	{
		bool		key_is_image = true;

		foreach(lc, plan->key)
		{
			PgiColumn  *col = &plan->cols.cols[lfirst_int(lc)];

			if (!pgi_type_equal_is_image(col->typid, col->collid))
				key_is_image = false;
		}
		for (i = 0; i < plan->cols.ncols; i++)
		{
			plan->upd = lappend_int(plan->upd, i);
			if (!key_is_image || !list_member_int(plan->key, i))
				plan->set = lappend_int(plan->set, i);
		}

		/*
		 * a source of key columns alone never changes a row; SET must name
		 * one
		 */
		if (plan->set == NIL)
			plan->set = list_copy(plan->upd);
	}

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

static char *
key_names(UpsertPlan *plan)
{
	return pgi_column_names(&plan->cols, plan->key);
}

/*
 * A statement of the call: its text as the call's shape keeps it, built
 * (and kept) by build the first time a call of the shape needs it.
 */
const char *
pgi_upsert_statement(UpsertPlan *plan, UpsertStatement which,
					 char *(*build) (UpsertPlan *plan))
{
	UpsertShape *kept;
	char	   *sql;

	kept = plan->shape ? pgi_call_cache_data(plan->shape) : NULL;
	if (kept != NULL && kept->sql[which] != NULL)
		return kept->sql[which];
	sql = build(plan);
	if (kept != NULL)
		kept->sql[which] = MemoryContextStrdup(pgi_call_cache_context(plan->shape),
											   sql);
	return sql;
}

/* The call's statement settings (sqlbuild.c), undone when it returns. */
static int
begin_settings(UpsertPlan *plan)
{
	return pgi_begin_settings(plan->probe);
}

/*
 * Move the call to a new snapshot, after an attempt rolled back under READ
 * COMMITTED: the retry sees what the sessions it met have committed.
 */
void
pgi_upsert_renew_snapshot(UpsertPlan *plan)
{
	UnregisterSnapshot(plan->snapshot);
	plan->snapshot = RegisterSnapshot(GetTransactionSnapshot());
}

/* Run one of the call's statements, in the call's snapshot. */
static void
upsert_exec(UpsertPlan *plan, const char *sql, bool read_only, int expected)
{
	pgi_spi_run_cached(sql, &plan->source->params, plan->relids,
					   CURSOR_OPT_GENERIC_PLAN, plan->snapshot, read_only,
					   expected);
}

static bool
target_is_empty(UpsertPlan *plan)
{
	const char *q;

	/* a table without a block has no row in any snapshot */
	if (plan->target->relkind == RELKIND_RELATION)
	{
		Relation	rel = relation_open(plan->target->relid, NoLock);
		BlockNumber blocks = RelationGetNumberOfBlocks(rel);

		relation_close(rel, NoLock);
		if (blocks == 0)
			return true;
	}
	q = pgi_upsert_statement(plan, US_EMPTY, pgi_upsert_build_empty);
	pgi_spi_run_cached(q, NULL, plan->relids, CURSOR_OPT_GENERIC_PLAN,
					   plan->snapshot, true, SPI_OK_SELECT);
	return SPI_processed == 0;
}

static int64
write_all_new(UpsertPlan *plan)
{
	upsert_exec(plan, pgi_upsert_statement(plan, US_FIRST_LOAD, pgi_upsert_build_first_load),
				false, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

static void
write_all_rows_safely(UpsertPlan *plan, UpsertCounts *counts)
{
	upsert_exec(plan, pgi_upsert_statement(plan, US_SAFE, pgi_upsert_build_safe), false,
				SPI_OK_SELECT);
	counts->duplicates = pgi_spi_int8(0, SR_ROWS) - pgi_spi_int8(0, SR_EFFECTIVE);
	counts->stale = pgi_spi_int8(0, SR_STALE);
	counts->inserted = pgi_spi_int8(0, SR_INSERTED);
	counts->updated = pgi_spi_int8(0, SR_UPDATED);
	counts->unchanged = Max(pgi_spi_int8(0, SR_EFFECTIVE) - counts->inserted -
							counts->updated - counts->stale, 0);
}

/* What one attempt at writing needs, passed through pgi_run_in_subxact. */
typedef struct UpsertWrite
{
	UpsertPlan *plan;
	bool		safe;
	const char *merge;			/* the one statement */
	/* what the one statement found and did */
	int64		rows;
	int64		null_keys;
	int64		null_versions;
	int64		keyed;
	int64		distinct;
	int64		new_rows;
	int64		changed;
	int64		stale;
	int64		locked;
	int64		updated;
	int64		inserted;
	int64		dup_keys;
	char	   *dup_example;
	char	   *tie_example;
	UpsertCounts safe_counts;
} UpsertWrite;

static char *
result_text(int col)
{
	char	   *v = pgi_spi_text(0, col);

	return v;
}

static void
merge_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	if (w->safe)
	{
		write_all_rows_safely(w->plan, &w->safe_counts);
		return;
	}
	upsert_exec(w->plan, w->merge, w->plan->dry_run, SPI_OK_SELECT);
	w->rows = pgi_spi_int8(0, MR_ROWS);
	w->null_keys = pgi_spi_int8(0, MR_NULL_KEYS);
	w->null_versions = pgi_spi_int8(0, MR_NULL_VERSIONS);
	w->keyed = pgi_spi_int8(0, MR_KEYED);
	w->distinct = pgi_spi_int8(0, MR_DISTINCT);
	w->new_rows = pgi_spi_int8(0, MR_NEW);
	w->changed = pgi_spi_int8(0, MR_CHANGED);
	w->stale = pgi_spi_int8(0, MR_STALE);
	w->updated = pgi_spi_int8(0, MR_UPDATED);
	/* NULL where the rows updated are the rows locked (upsert_sql.c) */
	if (pgi_spi_isnull(0, MR_LOCKED))
		w->locked = w->updated;
	else
		w->locked = pgi_spi_int8(0, MR_LOCKED);
	w->inserted = pgi_spi_int8(0, MR_INSERTED);
	w->dup_keys = pgi_spi_int8(0, MR_DUP_KEYS);
	w->dup_example = result_text(MR_DUP_EXAMPLE);
	w->tie_example = result_text(MR_TIE_EXAMPLE);

	/*
	 * Fewer rows locked than classified changed: another session changed or
	 * deleted some since the snapshot.  Under READ COMMITTED the call rolls
	 * this attempt back and classifies again in a new snapshot, which sees
	 * that session's rows; the error never reaches the caller.
	 */
	if (!w->plan->dry_run && w->locked < w->changed && !IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of \"%s\" changed since the upsert's snapshot",
						w->plan->target->displayname)));
}

/*
 * The progress reports of a write attempt that rolled back, by what made
 * it roll back and what comes next: the error it caught is gone by then,
 * and its code is all a reader needs.  Called for pgi_progress_step's
 * message.
 */
static int
errmsg_attempt_rolled_back(PgiProgress *progress, int attempt, int sqlerrcode,
						   bool again)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNIQUE_VIOLATION:
			return again ?
				errmsg("%s on %s: write attempt %d rolled back after a unique violation; classifying the batch again in a new snapshot",
					   PGI_PROGRESS_OF(progress), attempt) :
				errmsg("%s on %s: write attempt %d rolled back after a unique violation; writing the batch again with INSERT ... ON CONFLICT in key order",
					   PGI_PROGRESS_OF(progress), attempt);
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return again ?
				errmsg("%s on %s: write attempt %d rolled back after a deadlock; classifying the batch again in a new snapshot",
					   PGI_PROGRESS_OF(progress), attempt) :
				errmsg("%s on %s: write attempt %d rolled back after a deadlock; writing the batch again with INSERT ... ON CONFLICT in key order",
					   PGI_PROGRESS_OF(progress), attempt);
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
			return again ?
				errmsg("%s on %s: write attempt %d rolled back: rows changed since its snapshot; classifying the batch again in a new snapshot",
					   PGI_PROGRESS_OF(progress), attempt) :
				errmsg("%s on %s: write attempt %d rolled back: rows changed since its snapshot; writing the batch again with INSERT ... ON CONFLICT in key order",
					   PGI_PROGRESS_OF(progress), attempt);
	}
	/* no other code is caught today; a new one still reads sensibly */
	return errmsg("%s on %s: write attempt %d rolled back after error %s; writing the batch again with INSERT ... ON CONFLICT in key order",
				  PGI_PROGRESS_OF(progress), attempt,
				  unpack_sql_state(sqlerrcode));
}

static int
errmsg_first_load_rolled_back(PgiProgress *progress, int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNIQUE_VIOLATION:
			return errmsg("%s on %s: first load into the empty table rolled back after a unique violation; checking the source",
						  PGI_PROGRESS_OF(progress));
		case ERRCODE_NOT_NULL_VIOLATION:
			return errmsg("%s on %s: first load into the empty table rolled back after a not-null violation; checking the source",
						  PGI_PROGRESS_OF(progress));
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return errmsg("%s on %s: first load into the empty table rolled back after a deadlock; checking the source",
						  PGI_PROGRESS_OF(progress));
	}
	return errmsg("%s on %s: first load into the empty table rolled back after error %s; checking the source",
				  PGI_PROGRESS_OF(progress), unpack_sql_state(sqlerrcode));
}

/* The errors the checks found, as the contract words them. */
static void
report_check_errors(UpsertPlan *plan, UpsertWrite *w)
{
	int64		dup_rows = w->keyed - w->distinct;

	/* the duplicated keys, where the one statement left them out */
	if (dup_rows > 0 && w->null_keys == 0 && w->null_versions == 0 &&
		pgi_upsert_dups_apart(plan))
	{
		upsert_exec(plan, pgi_upsert_statement(plan, US_DUPS, pgi_upsert_build_dups),
					true, SPI_OK_SELECT);
		w->dup_keys = pgi_spi_int8(0, 1);
		w->dup_example = result_text(2);
	}

	if (w->null_keys > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null key values", plan->source->name),
				 errdetail_plural("%lld of its rows has a null in key column(s) (%s).",
								  "%lld of its rows have a null in key column(s) (%s).",
								  w->null_keys,
								  (long long) w->null_keys, key_names(plan)),
				 errhint("Filter out or fix those rows: a null key matches no row.")));
	if (w->null_versions > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null values in version column \"%s\"",
						plan->source->name,
						plan->cols.cols[plan->version].name),
				 errdetail_plural("%lld of its rows has no version.",
								  "%lld of its rows have no version.",
								  w->null_versions,
								  (long long) w->null_versions)));
	if (dup_rows > 0 && !plan->keep_last)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys", plan->source->name),
				 errdetail_plural("Key (%s)=%s appears more than once; %lld key is duplicated, %lld rows in all.",
								  "Key (%s)=%s appears more than once; %lld keys are duplicated, %lld rows in all.",
								  w->dup_keys,
								  key_names(plan), w->dup_example, (long long) w->dup_keys,
								  (long long) (dup_rows + w->dup_keys)),
				 errhint("Remove the duplicates, or pass on_duplicate => 'last' with a version_column to keep the newest row of each key.")));
	if (dup_rows > 0 && w->tie_example != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys with no single newest row",
						plan->source->name),
				 plan->version >= 0 ?
				 errdetail("Key (%s)=%s has different rows with the same greatest version.",
						   key_names(plan), w->tie_example) :
				 errdetail("Key (%s)=%s has different rows and there is no version column to choose between them.",
						   key_names(plan), w->tie_example),
				 errhint("Make the rows of each key differ in \"version_column\", or remove the duplicates.")));
}

/*
 * The general path: the one statement, in a subtransaction when it
 * writes.  If another session wrote some of the same keys since the
 * call's snapshot (a unique violation, or fewer changed rows locked than
 * classified), or the two deadlock, the statement is rolled back.  Under
 * READ COMMITTED it then runs again in a new snapshot, which sees what the
 * other session committed, so the retry too locks and writes only what
 * differs.  After UPSERT_FRESH_ATTEMPTS of those, or at once where the
 * transaction's snapshot cannot move (REPEATABLE READ, SERIALIZABLE), the
 * batch is written with INSERT ... ON CONFLICT in key order, for as long as
 * sessions still on their first attempt deadlock against us; the last
 * attempt runs without catching anything, so its error, if any, is the
 * caller's.
 */
static void
upsert_general(UpsertPlan *plan, UpsertCounts *counts)
{
	static const int fresh_codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_T_R_DEADLOCK_DETECTED, ERRCODE_T_R_SERIALIZATION_FAILURE, 0};
	static const int fast_codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int safe_codes[] = {ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int no_codes[] = {0};
	bool		fresh = !IsolationUsesXactSnapshot();
	int			fast_attempts = fresh ? UPSERT_FRESH_ATTEMPTS : 1;
	int			last_attempt = fast_attempts + UPSERT_SAFE_ATTEMPTS;
	UpsertWrite w;
	int64		total;
	int			attempt;

	memset(&w, 0, sizeof(w));
	w.plan = plan;
	w.merge = pgi_upsert_statement(plan, US_MERGE, pgi_upsert_build_merge);

	if (plan->dry_run)
		merge_once(&w);
	else
	{
		for (attempt = 1;; attempt++)
		{
			int			caught;
			bool		again = attempt < fast_attempts;

			w.safe = attempt > fast_attempts;
			caught = pgi_run_in_subxact(merge_once, &w,
										attempt == last_attempt ? no_codes :
										w.safe ? safe_codes :
										fresh ? fresh_codes : fast_codes);
			if (caught == 0)
				break;
			/* also where a cancel between attempts is taken */
			pgi_progress_step(&plan->progress,
							  errmsg_attempt_rolled_back(&plan->progress, attempt,
														 caught, again));
			/* under READ COMMITTED every retry sees what the others committed */
			if (fresh)
				pgi_upsert_renew_snapshot(plan);
		}
		if (w.safe)
		{
			*counts = w.safe_counts;
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld and updated %lld row with INSERT ... ON CONFLICT",
											"%s on %s: inserted %lld and updated %lld rows with INSERT ... ON CONFLICT",
											counts->updated, PGI_PROGRESS_OF(&plan->progress),
											(long long) counts->inserted,
											(long long) counts->updated));
			return;
		}
	}

	report_check_errors(plan, &w);
	counts->duplicates = w.keyed - w.distinct;
	total = w.rows - counts->duplicates;
	pgi_progress_step(&plan->progress,
					  errmsg_plural("%s on %s: checked the source: %lld row, duplicates: %lld",
									"%s on %s: checked the source: %lld rows, duplicates: %lld",
									w.rows, PGI_PROGRESS_OF(&plan->progress),
									(long long) w.rows,
									(long long) counts->duplicates));
	if (plan->dry_run)
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld new, %lld changed, %lld stale, %lld unchanged (dry run: nothing written)",
										"%s on %s: classified %lld rows: %lld new, %lld changed, %lld stale, %lld unchanged (dry run: nothing written)",
										total, PGI_PROGRESS_OF(&plan->progress),
										(long long) total, (long long) w.new_rows,
										(long long) w.changed, (long long) w.stale,
										(long long) (total - w.new_rows - w.changed - w.stale)));
	else
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld new, %lld changed, %lld stale, %lld unchanged",
										"%s on %s: classified %lld rows: %lld new, %lld changed, %lld stale, %lld unchanged",
										total, PGI_PROGRESS_OF(&plan->progress),
										(long long) total, (long long) w.new_rows,
										(long long) w.changed, (long long) w.stale,
										(long long) (total - w.new_rows - w.changed - w.stale)));
	counts->stale = w.stale;
	if (plan->dry_run)
	{
		counts->inserted = w.new_rows;
		counts->updated = w.changed;
	}
	else
	{
		if (w.changed > 0)
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: updated %lld row",
											"%s on %s: updated %lld rows",
											w.updated, PGI_PROGRESS_OF(&plan->progress),
											(long long) w.updated));
		if (w.new_rows > 0)
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld row",
											"%s on %s: inserted %lld rows",
											w.inserted, PGI_PROGRESS_OF(&plan->progress),
											(long long) w.inserted));
		counts->inserted = w.inserted;
		counts->updated = w.updated;
	}
	counts->unchanged = Max(total - counts->inserted - counts->updated - counts->stale, 0);
}

static void
first_load_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	w->inserted = write_all_new(w->plan);
}

/*
 * A first load into an empty table, optimistically: one plain INSERT of the
 * whole source, letting the key's unique index and NOT NULL constraints find
 * what the checks would look for.  If the source turns out to have
 * duplicate or null keys, or another session is loading the same keys, the
 * insert is rolled back and the caller takes the general path, which reports
 * or resolves them.  Only used where the index is sure to catch both: the
 * key columns are NOT NULL and no version column needs checking; and not
 * with on_duplicate => 'last', whose batches are expected to have
 * duplicates (a query or JSON source would be evaluated twice).
 */
static bool
try_first_load(UpsertPlan *plan, int64 *inserted)
{
	static const int codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_NOT_NULL_VIOLATION, ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	UpsertWrite w;
	ListCell   *lc;
	int			caught;

	if (plan->dry_run || plan->version >= 0 || plan->keep_last)
		return false;
	/* a batch small against the table is not loading it: no probe of it */
	if (plan->probe)
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
						  errmsg_first_load_rolled_back(&plan->progress, caught));
		/* another session's load: under READ COMMITTED, see its rows */
		if (!IsolationUsesXactSnapshot())
			pgi_upsert_renew_snapshot(plan);
		return false;
	}
	*inserted = w.inserted;
	pgi_progress_step(&plan->progress,
					  errmsg_plural("%s on %s: inserted %lld row into the empty table (first load)",
									"%s on %s: inserted %lld rows into the empty table (first load)",
									w.inserted, PGI_PROGRESS_OF(&plan->progress),
									(long long) w.inserted));
	return true;
}

static void upsert_shaped(UpsertPlan *plan, UpsertCounts *counts,
						  ArrayType *key, const char *version);

void
pgi_upsert_run(FunctionCallInfo fcinfo, PgiRelation *target, UpsertSource *source)
{
	UpsertPlan	plan;
	UpsertCounts counts;
	ArrayType  *key = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	char	   *version = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *on_duplicate;
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
	plan.fn = fcinfo->flinfo->fn_oid;
	plan.relids[0] = target->relid;
	plan.relids[1] = source->relid;
	plan.materialize = !OidIsValid(source->relid);
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

	/*
	 * A batch under a quarter of the table probes the key's index per row. A
	 * query's size is not known before it runs: the planner decides.
	 */
	if (source->rows >= 0)
		plan.probe = pgi_relation_rows_exceed(target->relid,
											  (double) source->rows * 4);

	/*
	 * Whether matched rows are found again by ctid depends on the caller's
	 * privileges, not only on the catalogs: decided per call, and part of
	 * the shape, so a statement built for a role that may read the target's
	 * ctids is never run by one that may not.
	 */
	plan.bytid = pgi_relation_rows_by_ctid(target);

	/*
	 * What the catalogs say about this shape of call, derived once per
	 * backend and kept (callcache.c); the relations are locked by now, so
	 * what is kept is current.
	 */
	if (source->shape != NULL)
	{
		StringInfo	k = source->shape;

		appendBinaryStringInfo(k, (char *) &fcinfo->flinfo->fn_oid, sizeof(Oid));
		appendBinaryStringInfo(k, (char *) &plan.relids, sizeof(plan.relids));
		appendStringInfo(k, "|%d%d%d%d|", plan.dry_run, plan.keep_last, plan.probe,
						 plan.bytid);
		if (key != NULL)
			appendBinaryStringInfo(k, (char *) key, VARSIZE(key));
		appendStringInfo(k, "|%s", version ? version : "");
		appendBinaryStringInfo(k, "", 1);	/* a version name can be "" */
		appendStringInfoChar(k, version ? 'v' : '-');
		plan.shape = pgi_call_cache_get(k->data, k->len, plan.relids);
	}
	PG_TRY();
	{
		upsert_shaped(&plan, &counts, key, version);
	}
	PG_FINALLY();
	{
		if (plan.shape != NULL)
			pgi_call_cache_release(plan.shape);
	}
	PG_END_TRY();

	values[0] = Int64GetDatum(counts.inserted);
	values[1] = Int64GetDatum(counts.updated);
	values[2] = Int64GetDatum(counts.unchanged);
	values[3] = Int64GetDatum(counts.stale);
	values[4] = Int64GetDatum(counts.duplicates);
	pgi_return_row(fcinfo, values, nulls);
}

/*
 * The call, once its shape is known: columns, key and version from the
 * kept shape or, on its first call, from the catalogs (and kept), then the
 * statements.
 */
static void
upsert_shaped(UpsertPlan *plan, UpsertCounts *counts, ArrayType *key,
			  const char *version)
{
	UpsertShape *kept = plan->shape ? pgi_call_cache_data(plan->shape) : NULL;
	int			nest;

	if (kept != NULL)
	{
		plan->cols = kept->cols;
		plan->key = kept->key;
		plan->upd = kept->upd;
		plan->set = kept->set;
		plan->version = kept->version;
		plan->unique = kept->unique;
		plan->sel = kept->sel;
	}
	else
	{
		if (plan->source->describe != NULL)
			plan->source->describe(plan->source, plan->target);
		plan_columns(plan);
		plan_key_and_version(plan, key, version);
		plan->unique = pgi_source_unique_on_key(plan->source->relid,
												plan->source->query,
												&plan->source->columns,
												&plan->cols, plan->key,
												plan->source->name);
		if (plan->shape != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(pgi_call_cache_context(plan->shape));

			kept = palloc0(sizeof(UpsertShape));
			kept->cols = pgi_columns_copy(&plan->cols);
			kept->key = list_copy(plan->key);
			kept->upd = list_copy(plan->upd);
			kept->set = list_copy(plan->set);
			kept->version = plan->version;
			kept->unique = plan->unique;
			kept->sel = pstrdup(plan->sel);
			MemoryContextSwitchTo(old);
			pgi_call_cache_store(plan->shape, kept);
		}
	}

	/*
	 * Every statement of the call reads its inputs as of this one moment: a
	 * source changed while the call runs is seen as it was at its start.
	 * (Under REPEATABLE READ this is the transaction's snapshot anyway.)
	 */
	plan->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	if (!pgi_upsert_probe(plan, kept, counts))
	{
		nest = begin_settings(plan);
		if (!try_first_load(plan, &counts->inserted))
			upsert_general(plan, counts);
		AtEOXact_GUC(true, nest);
	}
	UnregisterSnapshot(plan->snapshot);
}

UpsertSource *
pgi_upsert_source_new(void)
{
	UpsertSource *source = palloc0(sizeof(UpsertSource));

	initStringInfo(&source->from);
	source->rows = -1;
	return source;
}

Datum
pgi_idempotent_upsert(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	PgiRelation *rel;
	UpsertSource *source = pgi_upsert_source_new();

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	rel = pgi_relation_open(PG_GETARG_OID(1), PGI_REL_READ, "source");
	source->name = rel->displayname;
	source->columns = rel->columns;
	source->relid = rel->relid;
	source->rows = pgi_relation_rows(rel->relid);
	appendStringInfo(&source->from, "%s s0", rel->qualname);
	/* the relations' OIDs and the options say it all */
	source->shape = makeStringInfo();

	SPI_connect();
	pgi_upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}
