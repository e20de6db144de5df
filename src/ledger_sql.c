/*-------------------------------------------------------------------------
 *
 * ledger_sql.c
 *	  The ledger's statements: each one's text, and under it the function
 *	  that runs it, binding its $n from arguments that name them.
 *
 * Every statement is prepared once per backend (pgi_cached_plan) and runs
 * with the caller's rights: the caller needs privileges on the tables.
 * Text parameters are passed as text Datums (often the caller's argument
 * as it came), and a pointer Datum of (Datum) 0 binds SQL NULL.
 *
 * pgi_ledger has two layouts: 0.1.0's, and 0.2.0's with the retry
 * settings.  A database still at 0.1.0 is served by the new library (with
 * the settings at their defaults, no backoff) until ALTER EXTENSION
 * pg_idempotent UPDATE; the two statements that read or write the settings
 * exist once per layout, and pgi_ledger_lookup_for and
 * pgi_ledger_sql_create choose between them (LedgerTables.retry).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ledger.h"

/* key = $n, compared as the unique index does */
#define KEYEQ(alias, p) alias "key OPERATOR(pg_catalog.=) (" p " COLLATE pg_catalog.\"C\")"
/* the ledger named by $1 */
#define NAMEEQ(alias) alias "name OPERATOR(pg_catalog.=) ($1 COLLATE pg_catalog.\"C\")"

/* A statement's parameters, bound by the function under its text. */
typedef struct StmtArgs
{
	Datum		values[PGI_PLAN_MAXARGS];
	char		nulls[PGI_PLAN_MAXARGS];
} StmtArgs;

static inline void
args_init(StmtArgs *a)
{
	memset(a->nulls, ' ', sizeof(a->nulls));
}

/* $param = value */
static inline void
bind(StmtArgs *a, int param, Datum value)
{
	a->values[param - 1] = value;
	a->nulls[param - 1] = ' ';
}

/* $param = NULL */
static inline void
bind_null(StmtArgs *a, int param)
{
	a->values[param - 1] = (Datum) 0;
	a->nulls[param - 1] = 'n';
}

/* $param = value, NULL when the pointer Datum is (Datum) 0 */
static inline void
bind_ptr(StmtArgs *a, int param, Datum value)
{
	if (value == (Datum) 0)
		bind_null(a, param);
	else
		bind(a, param, value);
}

static int
run(PgiCachedPlan *plan, LedgerCall *call, StmtArgs *a, bool read_only,
	int expected)
{
	return pgi_spi_run_plan(plan, call->nspid, a->values, a->nulls,
							read_only, 0, expected);
}

static int
run_in(PgiCachedPlan *plan, LedgerCall *call, StmtArgs *a, Snapshot snapshot,
	   int expected)
{
	return pgi_spi_run_plan_in(plan, call->nspid, a->values, a->nulls,
							   snapshot, expected);
}

/* the first column of the first row of the result */
static Datum
first_value(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
						 isnull);
}

/* ----------------------------------------------------------------
 * Ledgers
 * ----------------------------------------------------------------
 */

/* A ledger and its settings, in the layout of 0.2.0 and of 0.1.0. */
static PgiCachedPlan plan_ledger = {
	"SELECT id, lease, max_attempts, retention, retry_backoff, retry_backoff_max"
	" FROM @extschema@.pgi_ledger WHERE " NAMEEQ(""),
	1, {TEXTOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_ledger_010 = {
	"SELECT id, lease, max_attempts, retention,"
	" '0'::pg_catalog.interval, '1 hour'::pg_catalog.interval"
	" FROM @extschema@.pgi_ledger WHERE " NAMEEQ(""),
	1, {TEXTOID}, InvalidOid, NULL
};

static void
ledger_not_found(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("ledger \"%s\" does not exist", name),
			 errhint("Create it with ledger_create().")));
}

/*
 * Resolve the ledger by name into call (one index lookup); 42704 if there
 * is none.
 *
 * for_insert: the caller will insert keys with the id found, so the
 * ledger must not be dropped under it (ledger_drop explains the protocol):
 * lock pgi_ledger_key first, then read the ledger in a snapshot taken
 * after the lock.  Under READ COMMITTED every statement takes a new
 * snapshot; under REPEATABLE READ and SERIALIZABLE the transaction's
 * snapshot may be older than a drop that committed while we waited, so
 * the ledger is read in the latest snapshot instead.
 */
void
pgi_ledger_lookup_for(LedgerCall *call, char *name, bool for_insert)
{
	StmtArgs	a;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	PgiCachedPlan *plan = pgi_ledger_tables(call->nspid)->retry ?
		&plan_ledger : &plan_ledger_010;

	call->name = name;
	args_init(&a);
	bind(&a, 1, CStringGetTextDatum(name));
	if (for_insert)
		pgi_ledger_keys_lock(call, ACL_INSERT, RowExclusiveLock);
	run_in(plan, call, &a,
		   for_insert && IsolationUsesXactSnapshot() ?
		   GetLatestSnapshot() : InvalidSnapshot,
		   SPI_OK_SELECT);
	if (SPI_processed == 0)
		ledger_not_found(name);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	call->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	call->lease = DatumGetIntervalP(SPI_getbinval(tup, desc, 2, &isnull));
	call->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	call->retention = DatumGetIntervalP(SPI_getbinval(tup, desc, 4, &isnull));
	call->retry_backoff = DatumGetIntervalP(SPI_getbinval(tup, desc, 5, &isnull));
	call->retry_backoff_max = DatumGetIntervalP(SPI_getbinval(tup, desc, 6, &isnull));
}

void
pgi_ledger_lookup(LedgerCall *call, char *name)
{
	pgi_ledger_lookup_for(call, name, false);
}

/*
 * ledger_create's upsert, in the layout of 0.2.0 and of 0.1.0: writes
 * nothing when the settings already are the given ones.
 */
static PgiCachedPlan plan_create = {
	"INSERT INTO @extschema@.pgi_ledger AS l (name, lease, max_attempts, retention,"
	" retry_backoff, retry_backoff_max, created_at)"
	" VALUES ($1, $2, $3, $4, $6, $7, $5)"
	" ON CONFLICT (name) DO UPDATE SET lease = EXCLUDED.lease,"
	" max_attempts = EXCLUDED.max_attempts, retention = EXCLUDED.retention,"
	" retry_backoff = EXCLUDED.retry_backoff,"
	" retry_backoff_max = EXCLUDED.retry_backoff_max"
	" WHERE l.lease OPERATOR(pg_catalog.<>) EXCLUDED.lease"
	" OR l.max_attempts OPERATOR(pg_catalog.<>) EXCLUDED.max_attempts"
	" OR l.retention OPERATOR(pg_catalog.<>) EXCLUDED.retention"
	" OR l.retry_backoff OPERATOR(pg_catalog.<>) EXCLUDED.retry_backoff"
	" OR l.retry_backoff_max OPERATOR(pg_catalog.<>) EXCLUDED.retry_backoff_max",
	7, {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TIMESTAMPTZOID, INTERVALOID,
	INTERVALOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_create_010 = {
	"INSERT INTO @extschema@.pgi_ledger AS l (name, lease, max_attempts, retention,"
	" created_at)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (name) DO UPDATE SET lease = EXCLUDED.lease,"
	" max_attempts = EXCLUDED.max_attempts, retention = EXCLUDED.retention"
	" WHERE l.lease OPERATOR(pg_catalog.<>) EXCLUDED.lease"
	" OR l.max_attempts OPERATOR(pg_catalog.<>) EXCLUDED.max_attempts"
	" OR l.retention OPERATOR(pg_catalog.<>) EXCLUDED.retention",
	5, {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * retry_backoff and retry_backoff_max are NULL when called as 0.1.0's
 * ledger_create; they are dropped too when pgi_ledger is still 0.1.0's.
 */
void
pgi_ledger_sql_create(LedgerCall *call, const char *name, Interval *lease,
					  int32 max_attempts, Interval *retention,
					  Interval *retry_backoff, Interval *retry_backoff_max)
{
	StmtArgs	a;
	bool		retry = retry_backoff != NULL &&
		pgi_ledger_tables(call->nspid)->retry;

	args_init(&a);
	bind(&a, 1, CStringGetTextDatum(name));
	bind(&a, 2, IntervalPGetDatum(lease));
	bind(&a, 3, Int32GetDatum(max_attempts));
	bind(&a, 4, IntervalPGetDatum(retention));
	bind(&a, 5, TimestampTzGetDatum(call->now));
	if (retry)
	{
		bind(&a, 6, IntervalPGetDatum(retry_backoff));
		bind(&a, 7, IntervalPGetDatum(retry_backoff_max));
	}
	run(retry ? &plan_create : &plan_create_010, call, &a, false,
		SPI_OK_INSERT);
}

static PgiCachedPlan plan_drop = {
	"DELETE FROM @extschema@.pgi_ledger"
	" WHERE " NAMEEQ("") " RETURNING id",
	1, {TEXTOID}, InvalidOid, NULL
};

/* Delete the ledger's row, and return its id; 42704 if there is none. */
int32
pgi_ledger_sql_drop(LedgerCall *call, const char *name)
{
	StmtArgs	a;
	bool		isnull;

	args_init(&a);
	bind(&a, 1, CStringGetTextDatum(name));
	run(&plan_drop, call, &a, false, SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
		ledger_not_found(name);
	return DatumGetInt32(first_value(1, &isnull));
}

static PgiCachedPlan plan_drop_keys = {
	"DELETE FROM @extschema@.pgi_ledger_key WHERE ledger_id OPERATOR(pg_catalog.=) $1",
	1, {INT4OID}, InvalidOid, NULL
};

/* Delete the keys of ledger id, in the latest snapshot (see ledger_drop). */
void
pgi_ledger_sql_drop_keys(LedgerCall *call, int32 id)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(id));
	run_in(&plan_drop_keys, call, &a, GetLatestSnapshot(), SPI_OK_DELETE);
}

/* ----------------------------------------------------------------
 * Check-and-record, and enqueue
 * ----------------------------------------------------------------
 */

/*
 * check-and-record: one statement, the ledger joined in.  It locks
 * pgi_ledger_key (when SPI revalidates the plan) before it takes its
 * snapshot, so under READ COMMITTED it waits for a ledger_drop in flight
 * and then sees the ledger gone (see ledger_drop).  The ledger's id is
 * returned for the cache (pgi_ledger_id_remember_returned).
 */
static PgiCachedPlan plan_record = {
	"INSERT INTO @extschema@.pgi_ledger_key"
	" (ledger_id, key, status, token, fingerprint, created_at, updated_at) "
	"SELECT l.id, $2, $3, NULL, $4, $5, $5 FROM @extschema@.pgi_ledger l"
	" WHERE " NAMEEQ("l.")
	" ON CONFLICT (ledger_id, key) DO NOTHING RETURNING ledger_id",
	5, {TEXTOID, TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * The parameters of plan_record and plan_record_by_id, which differ only
 * in $1: the ledger's name (a text Datum) or its id.
 */
static void
bind_record(StmtArgs *a, LedgerCall *call, Datum ledger, Datum key,
			bytea *fingerprint)
{
	args_init(a);
	bind(a, 1, ledger);
	bind(a, 2, key);
	bind(a, 3, pgi_ledger_status_text(pgi_ledger_first_status(LE_RECORD)));
	bind_ptr(a, 4, PointerGetDatum(fingerprint));
	bind(a, 5, TimestampTzGetDatum(call->now));
}

/* Whether the key was new; name and key are text Datums. */
bool
pgi_ledger_sql_record(LedgerCall *call, Datum name, Datum key,
					  bytea *fingerprint)
{
	StmtArgs	a;

	bind_record(&a, call, name, key, fingerprint);
	run(&plan_record, call, &a, false, SPI_OK_INSERT_RETURNING);
	return SPI_processed > 0;
}

/*
 * The same with the ledger's id known (pgi_ledger_id_usable); it needs no
 * RETURNING, as the count of rows inserted says whether the key was new.
 */
static PgiCachedPlan plan_record_by_id = {
	"INSERT INTO @extschema@.pgi_ledger_key"
	" (ledger_id, key, status, token, fingerprint, created_at, updated_at) "
	"VALUES ($1, $2, $3, NULL, $4, $5, $5)"
	" ON CONFLICT (ledger_id, key) DO NOTHING",
	5, {INT4OID, TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

bool
pgi_ledger_sql_record_by_id(LedgerCall *call, int32 id, Datum key,
							bytea *fingerprint, Snapshot snapshot)
{
	StmtArgs	a;

	bind_record(&a, call, Int32GetDatum(id), key, fingerprint);
	run_in(&plan_record_by_id, call, &a, snapshot, SPI_OK_INSERT);
	return SPI_processed > 0;
}

/* record_batch and enqueue: one statement, each distinct key once, sorted */
static PgiCachedPlan plan_record_batch = {
	"INSERT INTO @extschema@.pgi_ledger_key"
	" (ledger_id, key, status, token, available_at, created_at, updated_at)"
	" SELECT $1, u.k, $3, NULL, $4, $5, $5 FROM"
	" (SELECT DISTINCT a.k COLLATE pg_catalog.\"C\" AS k"
	"  FROM pg_catalog.unnest($2) AS a(k) ORDER BY 1) u"
	" ON CONFLICT (ledger_id, key) DO NOTHING RETURNING key",
	5, {INT4OID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * Insert the distinct keys of an array with the given status (sorted, so
 * concurrent batches over the same keys cannot deadlock); a pending key is
 * claimable at once.  Leaves the new keys in SPI_tuptable.
 */
void
pgi_ledger_sql_insert_keys(LedgerCall *call, ArrayType *keys,
						   LedgerStatus status)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, PointerGetDatum(keys));
	bind(&a, 3, pgi_ledger_status_text(status));
	if (status == LS_PENDING)
		bind(&a, 4, TimestampTzGetDatum(call->now));
	else
		bind_null(&a, 4);
	bind(&a, 5, TimestampTzGetDatum(call->now));
	run(&plan_record_batch, call, &a, false, SPI_OK_INSERT_RETURNING);
}

/* ----------------------------------------------------------------
 * One key
 * ----------------------------------------------------------------
 */

static PgiCachedPlan plan_peek_key = {
	"SELECT status, token, attempts, available_at, fingerprint, result"
	" FROM @extschema@.pgi_ledger_key"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2"),
	2, {INT4OID, TEXTOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_lock_key = {
	"SELECT status, token, attempts, available_at, fingerprint, result"
	" FROM @extschema@.pgi_ledger_key"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2")
	" FOR UPDATE",
	2, {INT4OID, TEXTOID}, InvalidOid, NULL
};

/* Read the key (FOR UPDATE when lock); false if the ledger lacks it. */
bool
pgi_ledger_key_read(LedgerCall *call, const char *key, bool lock,
					LedgerKey *k)
{
	StmtArgs	a;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, CStringGetTextDatum(key));
	run(lock ? &plan_lock_key : &plan_peek_key, call, &a, false,
		SPI_OK_SELECT);
	memset(k, 0, sizeof(*k));
	if (SPI_processed == 0)
	{
		k->status = LS_ABSENT;
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	k->status = pgi_ledger_status_from_name(SPI_getvalue(tup, desc, 1));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	k->has_token = !isnull;
	k->token = isnull ? 0 : DatumGetInt64(d);
	k->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	k->available_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	k->has_fingerprint = !isnull;
	k->fingerprint = isnull ? NULL : DatumGetByteaPP(d);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	k->has_result = !isnull;
	k->result = d;
	return true;
}

/* ledger_claim of an unknown key: created processing, with a lease */
static PgiCachedPlan plan_insert_claim = {
	"INSERT INTO @extschema@.pgi_ledger_key"
	" (ledger_id, key, status, token, attempts, available_at, fingerprint,"
	"  created_at, updated_at)"
	" VALUES ($1, $2, $3, DEFAULT, 1, $4, $5, $6, $6)"
	" ON CONFLICT (ledger_id, key) DO NOTHING RETURNING token",
	6, {INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * The parameters of plan_insert_claim and plan_update_claim: the key, made
 * processing with a lease from now, and its fingerprint.
 */
static void
bind_claim(StmtArgs *a, LedgerCall *call, Datum key, bytea *fingerprint)
{
	args_init(a);
	bind(a, 1, Int32GetDatum(call->id));
	bind(a, 2, key);
	bind(a, 3, pgi_ledger_status_text(LS_PROCESSING));
	bind(a, 4, TimestampTzGetDatum(pgi_ledger_time_plus(call->now,
														call->lease)));
	bind_ptr(a, 5, PointerGetDatum(fingerprint));
	bind(a, 6, TimestampTzGetDatum(call->now));
}

/*
 * The key's new token; false when another session inserted the key
 * meanwhile (or it is hidden).  key is a text Datum.
 */
bool
pgi_ledger_sql_insert_claim(LedgerCall *call, Datum key, bytea *fingerprint,
							int64 *token)
{
	StmtArgs	a;
	bool		isnull;

	bind_claim(&a, call, key, fingerprint);
	run(&plan_insert_claim, call, &a, false, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 0)
		return false;
	*token = DatumGetInt64(first_value(1, &isnull));
	return true;
}

/* ledger_claim of a known key the state machine moves to processing */
static PgiCachedPlan plan_update_claim = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, token = DEFAULT,"
	" attempts = attempts OPERATOR(pg_catalog.+) 1, available_at = $4,"
	" fingerprint = COALESCE(fingerprint, $5), updated_at = $6"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2")
	" RETURNING token, attempts",
	6, {INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/* The key's new token and attempts; the key is locked.  key: text Datum. */
void
pgi_ledger_sql_update_claim(LedgerCall *call, Datum key, bytea *fingerprint,
							int64 *token, int32 *attempts)
{
	StmtArgs	a;
	bool		isnull;

	bind_claim(&a, call, key, fingerprint);
	run(&plan_update_claim, call, &a, false, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed != 1)
		elog(ERROR, "the locked key \"%s\" of ledger \"%s\" was not updated",
			 TextDatumGetCString(key), call->name);
	*token = DatumGetInt64(first_value(1, &isnull));
	*attempts = DatumGetInt32(first_value(2, &isnull));
}

/* ledger_claim of a key that has used max_attempts: dead, token revoked */
static PgiCachedPlan plan_expire = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, token = DEFAULT,"
	" available_at = NULL, error = COALESCE($4, error), updated_at = $5"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2"),
	5, {INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/* error NULL keeps the key's error; key is a text Datum */
void
pgi_ledger_sql_expire(LedgerCall *call, Datum key, const char *error)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, key);
	bind(&a, 3, pgi_ledger_status_text(LS_DEAD));
	bind_ptr(&a, 4, error ? CStringGetTextDatum(error) : (Datum) 0);
	bind(&a, 5, TimestampTzGetDatum(call->now));
	run(&plan_expire, call, &a, false, SPI_OK_UPDATE);
}

/*
 * complete, fast path: the one legal move, with the current token; the
 * ledger found by name, its id returned for the cache.
 */
static PgiCachedPlan plan_complete = {
	"UPDATE @extschema@.pgi_ledger_key k SET status = $4, result = $5,"
	" available_at = NULL, updated_at = $6"
	" WHERE k.ledger_id OPERATOR(pg_catalog.=)"
	" (SELECT l.id FROM @extschema@.pgi_ledger l WHERE " NAMEEQ("l.") ")"
	" AND " KEYEQ("k.", "$2") " AND k.token OPERATOR(pg_catalog.=) $3"
	" AND k.status OPERATOR(pg_catalog.=) ANY ($7) RETURNING k.ledger_id",
	7, {TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

/*
 * The parameters of plan_complete and plan_complete_by_id, which differ
 * only in $1: the ledger's name (a text Datum) or its id.  key is a text
 * Datum, result a jsonb Datum or (Datum) 0.
 */
static void
bind_complete(StmtArgs *a, LedgerCall *call, Datum ledger, Datum key,
			  int64 token, Datum result)
{
	args_init(a);
	bind(a, 1, ledger);
	bind(a, 2, key);
	bind(a, 3, Int64GetDatum(token));
	bind(a, 4, pgi_ledger_status_text(LS_DONE));
	bind_ptr(a, 5, result);
	bind(a, 6, TimestampTzGetDatum(call->now));
	bind(a, 7, pgi_ledger_statuses_moved_to(LE_COMPLETE, false, LS_DONE));
}

/* Whether the key was moved to done. */
bool
pgi_ledger_sql_complete(LedgerCall *call, Datum name, Datum key, int64 token,
						Datum result)
{
	StmtArgs	a;

	bind_complete(&a, call, name, key, token, result);
	run(&plan_complete, call, &a, false, SPI_OK_UPDATE_RETURNING);
	return SPI_processed > 0;
}

/* The same with the ledger's id remembered. */
static PgiCachedPlan plan_complete_by_id = {
	"UPDATE @extschema@.pgi_ledger_key k SET status = $4, result = $5,"
	" available_at = NULL, updated_at = $6"
	" WHERE k.ledger_id OPERATOR(pg_catalog.=) $1"
	" AND " KEYEQ("k.", "$2") " AND k.token OPERATOR(pg_catalog.=) $3"
	" AND k.status OPERATOR(pg_catalog.=) ANY ($7)",
	7, {INT4OID, TEXTOID, INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

bool
pgi_ledger_sql_complete_by_id(LedgerCall *call, int32 id, Datum key,
							  int64 token, Datum result)
{
	StmtArgs	a;

	bind_complete(&a, call, Int32GetDatum(id), key, token, result);
	run(&plan_complete_by_id, call, &a, false, SPI_OK_UPDATE);
	return SPI_processed > 0;
}

/* any other change of one locked key */
static PgiCachedPlan plan_set = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, result = $4, error = $5,"
	" available_at = $6, updated_at = $7"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2"),
	7, {INT4OID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * key is a text Datum; result (jsonb) and error (text) are Datums or
 * (Datum) 0; available_at is NULL unless has_available_at.
 */
void
pgi_ledger_sql_set(LedgerCall *call, Datum key, LedgerStatus status,
				   Datum result, Datum error, bool has_available_at,
				   TimestampTz available_at)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, key);
	bind(&a, 3, pgi_ledger_status_text(status));
	bind_ptr(&a, 4, result);
	bind_ptr(&a, 5, error);
	if (has_available_at)
		bind(&a, 6, TimestampTzGetDatum(available_at));
	else
		bind_null(&a, 6);
	bind(&a, 7, TimestampTzGetDatum(call->now));
	run(&plan_set, call, &a, false, SPI_OK_UPDATE);
}

static PgiCachedPlan plan_heartbeat = {
	"UPDATE @extschema@.pgi_ledger_key SET available_at = $4, updated_at = $5"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2")
	" AND token OPERATOR(pg_catalog.=) $3"
	" AND status OPERATOR(pg_catalog.=) ANY ($6) RETURNING 1",
	6, {INT4OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

/* Whether the lease now runs until `until`; key is a text Datum. */
bool
pgi_ledger_sql_heartbeat(LedgerCall *call, Datum key, int64 token,
						 TimestampTz until)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, key);
	bind(&a, 3, Int64GetDatum(token));
	bind(&a, 4, TimestampTzGetDatum(until));
	bind(&a, 5, TimestampTzGetDatum(call->now));
	bind(&a, 6, pgi_ledger_statuses_moved_to(LE_HEARTBEAT, false,
											 LS_PROCESSING));
	run(&plan_heartbeat, call, &a, false, SPI_OK_UPDATE_RETURNING);
	return SPI_processed > 0;
}

/* ----------------------------------------------------------------
 * Many keys
 * ----------------------------------------------------------------
 */

/*
 * claim_next: lock up to n claimable keys, oldest first, skipping keys
 * another worker holds locked, and give each a new token and lease.  The
 * UPDATE finds the locked rows by key, so a row a concurrent claim changed
 * since the snapshot is updated in its newest version.  The ledger is read
 * in the statement (its id as an InitPlan, so the index scan still yields
 * keys in available_at order and stops after n).  A key that has used
 * max_attempts (its last lease ran out) is made dead instead, with a token
 * nobody holds, and is not returned: pgi_ledger_decide's rule, with the
 * statuses it applies to as $6.
 */
#define CLAIM_DIES \
	"(k.status OPERATOR(pg_catalog.=) ANY ($6)" \
	" AND k.attempts OPERATOR(pg_catalog.>=) (SELECT l.max_attempts FROM l))"

static PgiCachedPlan plan_claim_next = {
	"WITH l AS (SELECT id, lease, max_attempts FROM @extschema@.pgi_ledger"
	"  WHERE " NAMEEQ("") "),"
	" c AS (SELECT k.key FROM @extschema@.pgi_ledger_key k"
	"  WHERE k.ledger_id OPERATOR(pg_catalog.=) (SELECT l.id FROM l)"
	"  AND k.available_at OPERATOR(pg_catalog.<=) $3"
	"  AND k.status OPERATOR(pg_catalog.=) ANY ($4)"
	"  ORDER BY k.available_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
	" u AS (UPDATE @extschema@.pgi_ledger_key k"
	"  SET status = CASE WHEN " CLAIM_DIES " THEN $7 ELSE $5 END,"
	"  token = DEFAULT,"
	"  attempts = CASE WHEN " CLAIM_DIES " THEN k.attempts"
	"   ELSE k.attempts OPERATOR(pg_catalog.+) 1 END,"
	"  available_at = CASE WHEN " CLAIM_DIES " THEN NULL"
	"   ELSE $3 OPERATOR(pg_catalog.+) (SELECT l.lease FROM l) END,"
	"  error = CASE WHEN " CLAIM_DIES " AND k.status OPERATOR(pg_catalog.=) $5"
	"   THEN $8 ELSE k.error END,"
	"  updated_at = $3"
	"  WHERE k.ledger_id OPERATOR(pg_catalog.=) (SELECT l.id FROM l)"
	"  AND k.key OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT c.key FROM c))"
	"  RETURNING k.key, k.token, k.attempts, k.status)"
	" SELECT u.key, u.token, u.attempts FROM u"
	" WHERE u.status OPERATOR(pg_catalog.=) $5",
	8, {TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID,
	TEXTOID, TEXTOID}, InvalidOid, NULL
};

/* Leaves (key, token, attempts) of the keys claimed in SPI_tuptable. */
void
pgi_ledger_sql_claim_next(LedgerCall *call, Datum name, int32 n)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, name);
	bind(&a, 2, Int64GetDatum((int64) n));
	bind(&a, 3, TimestampTzGetDatum(call->now));
	bind(&a, 4, pgi_ledger_statuses_moved_to(LE_CLAIM, false, LS_PROCESSING));
	bind(&a, 5, pgi_ledger_status_text(LS_PROCESSING));
	bind(&a, 6, pgi_ledger_statuses_moved_to(LE_CLAIM, true, LS_DEAD));
	bind(&a, 7, pgi_ledger_status_text(LS_DEAD));
	bind(&a, 8, CStringGetTextDatum(LEDGER_LEASE_RAN_OUT));
	run(&plan_claim_next, call, &a, false, SPI_OK_SELECT);
}

/*
 * complete_batch, fast path: the one legal move for every (key, token,
 * result) of the arrays whose token is current, one statement.  The input
 * is sorted by key, so that concurrent batches lock keys in one order.
 */
static PgiCachedPlan plan_complete_batch = {
	"UPDATE @extschema@.pgi_ledger_key k SET status = $4, result = b.result,"
	" available_at = NULL, updated_at = $5"
	" FROM (SELECT a.key COLLATE pg_catalog.\"C\" AS key, a.token, a.result"
	"  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
	"  pg_catalog.unnest($6)) AS a(key, token, result) ORDER BY 1) b"
	" WHERE k.ledger_id OPERATOR(pg_catalog.=) (SELECT l.id FROM @extschema@.pgi_ledger l"
	"  WHERE " NAMEEQ("l.") ")"
	" AND k.key OPERATOR(pg_catalog.=) b.key AND k.token OPERATOR(pg_catalog.=) b.token"
	" AND k.status OPERATOR(pg_catalog.=) ANY ($7) RETURNING k.key",
	7, {TEXTOID, TEXTARRAYOID, INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID,
	JSONBARRAYOID, TEXTARRAYOID}, InvalidOid, NULL
};

/* Leaves the keys moved in SPI_tuptable; results may be NULL. */
void
pgi_ledger_sql_complete_batch(LedgerCall *call, Datum name, ArrayType *keys,
							  ArrayType *tokens, ArrayType *results)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, name);
	bind(&a, 2, PointerGetDatum(keys));
	bind(&a, 3, PointerGetDatum(tokens));
	bind(&a, 4, pgi_ledger_status_text(LS_DONE));
	bind(&a, 5, TimestampTzGetDatum(call->now));
	bind_ptr(&a, 6, PointerGetDatum(results));
	bind(&a, 7, pgi_ledger_statuses_moved_to(LE_COMPLETE, false, LS_DONE));
	run(&plan_complete_batch, call, &a, false, SPI_OK_UPDATE_RETURNING);
}

/*
 * complete_batch, the rest: every key of the arrays whose token is current,
 * locked, with its status, for pgi_ledger_transition to decide on.
 */
static PgiCachedPlan plan_complete_batch_rest = {
	"SELECT k.key, k.status FROM @extschema@.pgi_ledger_key k"
	" WHERE k.ledger_id OPERATOR(pg_catalog.=) $1"
	" AND k.key OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[] COLLATE pg_catalog.\"C\")"
	" AND EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest($2),"
	"  pg_catalog.unnest($3)) AS b(key, token)"
	"  WHERE k.key OPERATOR(pg_catalog.=) (b.key COLLATE pg_catalog.\"C\")"
	"  AND k.token OPERATOR(pg_catalog.=) b.token)"
	" ORDER BY k.key FOR UPDATE OF k",
	3, {INT4OID, TEXTARRAYOID, INT8ARRAYOID}, InvalidOid, NULL
};

/* Leaves (key, status) in SPI_tuptable. */
void
pgi_ledger_sql_complete_batch_rest(LedgerCall *call, ArrayType *keys,
								   ArrayType *tokens)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, PointerGetDatum(keys));
	bind(&a, 3, PointerGetDatum(tokens));
	run(&plan_complete_batch_rest, call, &a, false, SPI_OK_SELECT);
}

static PgiCachedPlan plan_stats = {
	"SELECT status, pg_catalog.count(*) FROM @extschema@.pgi_ledger_key"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 GROUP BY status",
	1, {INT4OID}, InvalidOid, NULL
};

/* Leaves (status, count) in SPI_tuptable. */
void
pgi_ledger_sql_stats(LedgerCall *call)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	run(&plan_stats, call, &a, true, SPI_OK_SELECT);
}

/*
 * prune: one bounded batch, oldest first, skipping keys someone holds
 * locked.  The status list must stay the predicate of the partial index
 * pgi_ledger_key_finished, or the index cannot be used.
 */
static PgiCachedPlan plan_prune = {
	"WITH d AS (SELECT k.key FROM @extschema@.pgi_ledger_key k"
	"  WHERE k.ledger_id OPERATOR(pg_catalog.=) $1"
	"  AND k.status OPERATOR(pg_catalog.=) ANY ('{done,dead}'::pg_catalog.text[])"
	"  AND k.updated_at OPERATOR(pg_catalog.<) $2"
	"  ORDER BY k.updated_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
	" DELETE FROM @extschema@.pgi_ledger_key k"
	" WHERE k.ledger_id OPERATOR(pg_catalog.=) $1"
	" AND k.key OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT d.key FROM d))"
	" AND k.status OPERATOR(pg_catalog.=) ANY ('{done,dead}'::pg_catalog.text[])",
	3, {INT4OID, TIMESTAMPTZOID, INT8OID}, InvalidOid, NULL
};

/* How many done and dead keys that finished before `before` were deleted. */
int64
pgi_ledger_sql_prune(LedgerCall *call, TimestampTz before, int32 max_keys)
{
	StmtArgs	a;

	args_init(&a);
	bind(&a, 1, Int32GetDatum(call->id));
	bind(&a, 2, TimestampTzGetDatum(before));
	bind(&a, 3, Int64GetDatum((int64) max_keys));
	run(&plan_prune, call, &a, false, SPI_OK_DELETE);
	return (int64) SPI_processed;
}
