/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The dedup ledger: named sets of processed keys, each with a status,
 *	  kept in the extension's own tables (pgi_ledger, pgi_ledger_key).
 *
 * Two ways to use a ledger:
 *
 *	- ledger_record / ledger_record_batch: check-and-record in one
 *	  statement (INSERT ... ON CONFLICT DO NOTHING), called in the same
 *	  transaction as the write it guards.  A rollback forgets the record.
 *
 *	- ledger_enqueue / ledger_claim / ledger_claim_next / ledger_complete /
 *	  ledger_complete_batch / ledger_fail / ledger_heartbeat: work whose
 *	  effects leave the database,
 *	  done by workers that hold a lease on a key.  Every claim draws a new
 *	  fencing token from one sequence, so tokens of one key strictly
 *	  increase across takeovers (and are unique across all keys): a worker
 *	  whose token is no longer the key's token changes nothing.
 *
 * The state machine lives in one place, the transitions[] table below and
 * the rules of ledger_decide(), and every function decides through
 * ledger_transition().  The set-based statements (claim_next, the fast
 * paths of complete and complete_batch) take the states they may move a
 * key from, and to what, out of ledger_decide() (statuses_moved_to()).
 *
 * Time: leases are measured with the wall clock at the call
 * (GetCurrentTimestamp(), which is clock_timestamp()), taken once per call,
 * not with the transaction's start (now()).  A worker that claims late in
 * a long transaction still gets its whole lease, and a claimer inside a
 * long transaction does not take leases for live that have run out.
 *
 * Invariants of pgi_ledger_key kept here:
 *	- available_at is when a key can next be claimed: its creation for a
 *	  pending key, its failure plus the ledger's retry backoff for a failed
 *	  key, the end of the lease for a processing key, and NULL for done and
 *	  dead keys (which are never claimed).  A partial index on (ledger_id, available_at) serves
 *	  claim_next, oldest first; another on (ledger_id, updated_at) over done
 *	  and dead keys serves ledger_prune.
 *	- token is the token of the last claim (NULL before the first), or one
 *	  nobody holds once a claim made the key dead because its last lease
 *	  ran out.
 *	- attempts counts claims: a lease that runs out counts as a failed
 *	  attempt, so a claim that finds the max_attempts-th lease run out
 *	  makes the key dead instead of handing it out.
 *
 * Every statement is prepared once per backend (pgi_cached_plan) and runs
 * with the caller's rights: the caller needs privileges on the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_ledger_create);
PG_FUNCTION_INFO_V1(pgi_ledger_drop);
PG_FUNCTION_INFO_V1(pgi_ledger_record);
PG_FUNCTION_INFO_V1(pgi_ledger_record_batch);
PG_FUNCTION_INFO_V1(pgi_ledger_enqueue);
PG_FUNCTION_INFO_V1(pgi_ledger_claim);
PG_FUNCTION_INFO_V1(pgi_ledger_claim_next);
PG_FUNCTION_INFO_V1(pgi_ledger_complete);
PG_FUNCTION_INFO_V1(pgi_ledger_complete_batch);
PG_FUNCTION_INFO_V1(pgi_ledger_fail);
PG_FUNCTION_INFO_V1(pgi_ledger_heartbeat);
PG_FUNCTION_INFO_V1(pgi_ledger_status);
PG_FUNCTION_INFO_V1(pgi_ledger_stats);
PG_FUNCTION_INFO_V1(pgi_ledger_prune);

/* ----------------------------------------------------------------
 * The state machine
 * ----------------------------------------------------------------
 */
typedef enum LedgerStatus
{
	LS_ABSENT,					/* the key is not in the ledger */
	LS_PENDING,
	LS_PROCESSING,
	LS_DONE,
	LS_FAILED,
	LS_DEAD,
	LS_COUNT
} LedgerStatus;

static const char *const status_names[LS_COUNT] = {
	"absent", "pending", "processing", "done", "failed", "dead"
};

typedef enum LedgerEvent
{
	LE_RECORD,
	LE_ENQUEUE,
	LE_CLAIM,
	LE_COMPLETE,
	LE_FAIL,
	LE_HEARTBEAT,
	LE_COUNT
} LedgerEvent;

static const char *const event_verbs[LE_COUNT] = {
	"record", "enqueue", "claim", "complete", "fail", "heartbeat"
};

typedef enum LedgerOutcome
{
	LO_ILLEGAL = 0,				/* 55000 */
	LO_MOVE,					/* change to .to */
	LO_NOOP,					/* already there: change nothing, succeed */
	LO_REFUSE					/* change nothing, report (busy, no lease) */
} LedgerOutcome;

typedef struct LedgerTransition
{
	LedgerOutcome outcome;
	LedgerStatus to;
} LedgerTransition;

#define ILLEGAL {LO_ILLEGAL, LS_ABSENT}
#define MOVE(s) {LO_MOVE, s}
#define NOOP {LO_NOOP, LS_ABSENT}
#define REFUSE {LO_REFUSE, LS_ABSENT}

/*
 * transitions[event][from].  Notes on the entries that are not obvious:
 *	- record and enqueue of a known key change nothing (the key was seen);
 *	- claim of a processing key moves it only when its lease has run out
 *	  (a takeover, with a new token); with a live lease it is "busy"; a
 *	  failed key likewise waits out its retry backoff; a key that has used
 *	  max_attempts goes to dead instead (ledger_decide); claim of done or
 *	  dead keys reports them;
 *	- complete and fail run only with the key's current token (checked
 *	  before this table); repeating them is a no-op;
 *	- fail moves to failed, or to dead once attempts reach max_attempts
 *	  (ledger_decide);
 *	- heartbeat extends a processing key's lease and refuses otherwise.
 */
static const LedgerTransition transitions[LE_COUNT][LS_COUNT] = {
	/* absent, pending, processing, done, failed, dead */
	[LE_RECORD] = {MOVE(LS_DONE), NOOP, NOOP, NOOP, NOOP, NOOP},
	[LE_ENQUEUE] = {MOVE(LS_PENDING), NOOP, NOOP, NOOP, NOOP, NOOP},
	[LE_CLAIM] = {MOVE(LS_PROCESSING), MOVE(LS_PROCESSING),
	MOVE(LS_PROCESSING), NOOP, MOVE(LS_PROCESSING), NOOP},
	[LE_COMPLETE] = {ILLEGAL, ILLEGAL, MOVE(LS_DONE), NOOP, ILLEGAL, ILLEGAL},
	[LE_FAIL] = {ILLEGAL, ILLEGAL, MOVE(LS_FAILED), ILLEGAL, NOOP, NOOP},
	[LE_HEARTBEAT] = {REFUSE, REFUSE, MOVE(LS_PROCESSING), REFUSE, REFUSE,
	REFUSE},
};

typedef struct LedgerDecision
{
	LedgerOutcome outcome;
	LedgerStatus to;
} LedgerDecision;

/*
 * What an event does to a key, without raising: the table, and the three
 * rules it cannot express.  waiting is whether the key's available_at is
 * still ahead (a processing key's lease runs, a failed key's retry backoff
 * runs); exhausted is whether the key has used max_attempts.
 *	- a claim while the key is waiting is refused (busy);
 *	- a claim of an exhausted key makes it dead instead of handing it out:
 *	  a lease that ran out was an attempt that failed, so a key whose
 *	  workers keep dying ends dead after max_attempts leases, as one that
 *	  keeps failing does;
 *	- a failure that exhausts the key makes it dead.
 */
static LedgerDecision
ledger_decide(LedgerEvent event, LedgerStatus from, bool waiting,
			  bool exhausted)
{
	LedgerTransition t = transitions[event][from];
	LedgerDecision d;

	d.outcome = t.outcome;
	d.to = t.to;
	if (event == LE_CLAIM && d.outcome == LO_MOVE && from != LS_ABSENT)
	{
		if (waiting)
			d.outcome = LO_REFUSE;
		else if (exhausted)
			d.to = LS_DEAD;
	}
	if (event == LE_FAIL && d.outcome == LO_MOVE && exhausted)
		d.to = LS_DEAD;
	return d;
}

/*
 * The one place that decides what an event does to a key, for the
 * functions that decide key by key: ledger_decide, with an illegal
 * transition raised as an error.
 */
static LedgerDecision
ledger_transition(LedgerEvent event, LedgerStatus from, bool waiting,
				  bool exhausted, const char *ledger, const char *key)
{
	LedgerDecision d = ledger_decide(event, from, waiting, exhausted);

	if (d.outcome == LO_ILLEGAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s key \"%s\" of ledger \"%s\": it is %s",
						event_verbs[event], key, ledger, status_names[from]),
				 errdetail("Ledger \"%s\", key \"%s\": the transition from %s to %s is not allowed.",
						   ledger, key, status_names[from],
						   status_names[event == LE_COMPLETE ? LS_DONE : LS_FAILED])));
	return d;
}

/*
 * A status as a text Datum, and, for the set-based statements, the
 * statuses of known keys that an event moves to a given status (decided
 * by ledger_decide for a key that is not waiting), as a text[] Datum;
 * built once per backend.
 */
static Datum
status_text(LedgerStatus status)
{
	static Datum cache[LS_COUNT];

	if (cache[status] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		cache[status] = CStringGetTextDatum(status_names[status]);
		MemoryContextSwitchTo(old);
	}
	return cache[status];
}

static Datum
statuses_moved_to(LedgerEvent event, bool exhausted, LedgerStatus to)
{
	static Datum cache[LE_COUNT][2][LS_COUNT];

	if (cache[event][exhausted][to] == (Datum) 0)
	{
		Datum		elems[LS_COUNT];
		int			n = 0;
		int			s;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (s = LS_PENDING; s < LS_COUNT; s++)
		{
			LedgerDecision d = ledger_decide(event, (LedgerStatus) s, false,
											 exhausted);

			if (d.outcome == LO_MOVE && d.to == to)
				elems[n++] = CStringGetTextDatum(status_names[s]);
		}
		cache[event][exhausted][to] =
			PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
											TYPALIGN_INT));
		MemoryContextSwitchTo(old);
	}
	return cache[event][exhausted][to];
}

static LedgerStatus
status_from_name(const char *name)
{
	int			s;

	for (s = LS_PENDING; s < LS_COUNT; s++)
	{
		if (strcmp(name, status_names[s]) == 0)
			return (LedgerStatus) s;
	}
	/* only a hand-written row can get here: there is no CHECK constraint */
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("a key of a ledger has the unknown status \"%s\"", name),
			 errdetail("The statuses are pending, processing, done, failed and dead."),
			 errhint("Write to the ledger's tables only through the ledger functions.")));
	return LS_ABSENT;			/* keep compiler quiet */
}

/* ----------------------------------------------------------------
 * Statements
 * ----------------------------------------------------------------
 */
#define KEYEQ(alias, p) alias "key OPERATOR(pg_catalog.=) (" p " COLLATE pg_catalog.\"C\")"
/* the ledger named by $1 */
#define NAMEEQ(alias) alias "name OPERATOR(pg_catalog.=) ($1 COLLATE pg_catalog.\"C\")"

/*
 * A ledger and its settings, and ledger_create's upsert of them.  The
 * settings 0.2.0 added are arguments: a database still at 0.1.0 has no
 * retry settings in pgi_ledger, and the library serves it (with the
 * settings at their defaults, no backoff) until ALTER EXTENSION
 * pg_idempotent UPDATE; see has_retry_settings.
 */
#define LEDGER_SELECT(retry) \
	"SELECT id, lease, max_attempts, retention, " retry \
	" FROM @extschema@.pgi_ledger WHERE " NAMEEQ("")
#define LEDGER_UPSERT(cols, vals, sets, changed) \
	"INSERT INTO @extschema@.pgi_ledger AS l (name, lease, max_attempts, retention" cols \
	", created_at) VALUES ($1, $2, $3, $4" vals ", $5)" \
	" ON CONFLICT (name) DO UPDATE SET lease = EXCLUDED.lease," \
	" max_attempts = EXCLUDED.max_attempts, retention = EXCLUDED.retention" sets \
	" WHERE l.lease OPERATOR(pg_catalog.<>) EXCLUDED.lease" \
	" OR l.max_attempts OPERATOR(pg_catalog.<>) EXCLUDED.max_attempts" \
	" OR l.retention OPERATOR(pg_catalog.<>) EXCLUDED.retention" changed

static PgiCachedPlan plan_ledger = {
	LEDGER_SELECT("retry_backoff, retry_backoff_max"),
	1, {TEXTOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_ledger_010 = {
	LEDGER_SELECT("'0'::pg_catalog.interval, '1 hour'::pg_catalog.interval"),
	1, {TEXTOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_create = {
	LEDGER_UPSERT(", retry_backoff, retry_backoff_max", ", $6, $7",
				  ", retry_backoff = EXCLUDED.retry_backoff,"
				  " retry_backoff_max = EXCLUDED.retry_backoff_max",
				  " OR l.retry_backoff OPERATOR(pg_catalog.<>) EXCLUDED.retry_backoff"
				  " OR l.retry_backoff_max OPERATOR(pg_catalog.<>) EXCLUDED.retry_backoff_max"),
	7, {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TIMESTAMPTZOID, INTERVALOID,
	INTERVALOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_create_010 = {
	LEDGER_UPSERT("", "", "", ""),
	5, {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_drop = {
	"DELETE FROM @extschema@.pgi_ledger"
	" WHERE " NAMEEQ("") " RETURNING id",
	1, {TEXTOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_drop_keys = {
	"DELETE FROM @extschema@.pgi_ledger_key WHERE ledger_id OPERATOR(pg_catalog.=) $1",
	1, {INT4OID}, InvalidOid, NULL
};

/*
 * check-and-record: one statement, the ledger joined in.  It locks
 * pgi_ledger_key (when SPI revalidates the plan) before it takes its
 * snapshot, so under READ COMMITTED it waits for a ledger_drop in flight
 * and then sees the ledger gone (see ledger_drop).  plan_record_by_id is
 * the same with the ledger's id known (ledger_id_cached); it needs no
 * RETURNING, as the count of rows inserted says whether the key was new.
 */
#define RECORD_INSERT(row, returning) \
	"INSERT INTO @extschema@.pgi_ledger_key" \
	" (ledger_id, key, status, token, fingerprint, created_at, updated_at) " row \
	" ON CONFLICT (ledger_id, key) DO NOTHING" returning

static PgiCachedPlan plan_record = {
	RECORD_INSERT("SELECT l.id, $2, $3, NULL, $4, $5, $5 FROM @extschema@.pgi_ledger l"
				  " WHERE " NAMEEQ("l."), " RETURNING ledger_id"),
	5, {TEXTOID, TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_record_by_id = {
	RECORD_INSERT("VALUES ($1, $2, $3, NULL, $4, $5, $5)", ""),
	5, {INT4OID, TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

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

static PgiCachedPlan plan_insert_claim = {
	"INSERT INTO @extschema@.pgi_ledger_key"
	" (ledger_id, key, status, token, attempts, available_at, fingerprint,"
	"  created_at, updated_at)"
	" VALUES ($1, $2, $3, DEFAULT, 1, $4, $5, $6, $6)"
	" ON CONFLICT (ledger_id, key) DO NOTHING RETURNING token",
	6, {INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_update_claim = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, token = DEFAULT,"
	" attempts = attempts OPERATOR(pg_catalog.+) 1, available_at = $4,"
	" fingerprint = COALESCE(fingerprint, $5), updated_at = $6"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2")
	" RETURNING token, attempts",
	6, {INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/*
 * claim_next: lock up to n claimable keys, oldest first, skipping keys
 * another worker holds locked, and give each a new token and lease.  The
 * UPDATE finds the locked rows by key, so a row a concurrent claim changed
 * since the snapshot is updated in its newest version.  The ledger is read
 * in the statement (its id as an InitPlan, so the index scan still yields
 * keys in available_at order and stops after n).  A key that has used
 * max_attempts (its last lease ran out) is made dead instead, with a token
 * nobody holds, and is not returned: ledger_decide's rule, with the
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

/* ledger_claim of a key that has used max_attempts: dead, token revoked */
static PgiCachedPlan plan_expire = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, token = DEFAULT,"
	" available_at = NULL, error = COALESCE($4, error), updated_at = $5"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2"),
	5, {INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

/* the error a key made dead by its last lease running out is left with */
#define LEASE_RAN_OUT "the lease of its last attempt ran out"

/*
 * complete, fast path: the one legal move, with the current token; the
 * ledger found by name (its id returned, for ledger_id_remember) or by the
 * id remembered.
 */
#define COMPLETE_UPDATE(ledger, returning) \
	"UPDATE @extschema@.pgi_ledger_key k SET status = $4, result = $5," \
	" available_at = NULL, updated_at = $6" \
	" WHERE k.ledger_id OPERATOR(pg_catalog.=) " ledger \
	" AND " KEYEQ("k.", "$2") " AND k.token OPERATOR(pg_catalog.=) $3" \
	" AND k.status OPERATOR(pg_catalog.=) ANY ($7)" returning

static PgiCachedPlan plan_complete = {
	COMPLETE_UPDATE("(SELECT l.id FROM @extschema@.pgi_ledger l WHERE " NAMEEQ("l.") ")",
					" RETURNING k.ledger_id"),
	7, {TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_complete_by_id = {
	COMPLETE_UPDATE("$1", ""),
	7, {INT4OID, TEXTOID, INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

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

/*
 * complete_batch, the rest: every key of the arrays whose token is current,
 * locked, with its status, for ledger_transition to decide on.
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

/* any other change of one locked key */
static PgiCachedPlan plan_set = {
	"UPDATE @extschema@.pgi_ledger_key SET status = $3, result = $4, error = $5,"
	" available_at = $6, updated_at = $7"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2"),
	7, {INT4OID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_heartbeat = {
	"UPDATE @extschema@.pgi_ledger_key SET available_at = $4, updated_at = $5"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND " KEYEQ("", "$2")
	" AND token OPERATOR(pg_catalog.=) $3"
	" AND status OPERATOR(pg_catalog.=) ANY ($6) RETURNING 1",
	6, {INT4OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_stats = {
	"SELECT status, pg_catalog.count(*) FROM @extschema@.pgi_ledger_key"
	" WHERE ledger_id OPERATOR(pg_catalog.=) $1 GROUP BY status",
	1, {INT4OID}, InvalidOid, NULL
};

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

/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */

/* What one call works with. */
typedef struct LedgerCall
{
	Oid			nspid;			/* the extension's schema */
	TimestampTz now;			/* the wall clock, once per call */
	char	   *name;			/* ledger name */
	int32		id;
	Interval   *lease;
	int32		max_attempts;
	Interval   *retention;
	Interval   *retry_backoff;
	Interval   *retry_backoff_max;
} LedgerCall;

/* The key as it stands, locked or just read. */
typedef struct LedgerKey
{
	LedgerStatus status;
	bool		has_token;
	int64		token;
	int32		attempts;
	TimestampTz available_at;	/* 0 when NULL */
	bool		has_fingerprint;
	bytea	   *fingerprint;
	bool		has_result;
	Datum		result;			/* jsonb */
} LedgerKey;

static void
call_init(LedgerCall *call, FunctionCallInfo fcinfo)
{
	memset(call, 0, sizeof(*call));
	call->nspid = get_func_namespace(fcinfo->flinfo->fn_oid);
	call->now = GetCurrentTimestamp();
}

static void
ledger_not_found(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("ledger \"%s\" does not exist", name),
			 errhint("Create it with ledger_create().")));
}

/*
 * The extension's two ledger tables, and whether pgi_ledger has 0.2.0's
 * retry settings, looked up once per backend: every ledger call needs them,
 * and three catalog lookups a call were a measurable part of ledger_record.
 * Forgotten, with the ledger ids below, on any relcache invalidation of
 * either table: ALTER EXTENSION UPDATE adding columns, DROP EXTENSION,
 * ledger_drop (which sends one on purpose).
 */
typedef struct LedgerTables
{
	Oid			nspid;			/* the extension's schema; invalid: unknown */
	Oid			ledger;			/* pgi_ledger */
	Oid			keys;			/* pgi_ledger_key */
	bool		retry;			/* pgi_ledger has retry_backoff */
} LedgerTables;

static LedgerTables ledger_tables_known;
static bool ledger_cache_registered;

static void ledger_cache_forget(Datum arg, Oid relid);

static const LedgerTables *
ledger_tables(Oid nspid)
{
	LedgerTables *t = &ledger_tables_known;

	if (t->nspid == nspid)
		return t;
	if (!ledger_cache_registered)
	{
		CacheRegisterRelcacheCallback(ledger_cache_forget, (Datum) 0);
		ledger_cache_registered = true;
	}
	t->ledger = get_relname_relid("pgi_ledger", nspid);
	t->keys = get_relname_relid("pgi_ledger_key", nspid);
	if (!OidIsValid(t->ledger) || !OidIsValid(t->keys))
		elog(ERROR, "the ledger tables of extension pg_idempotent are missing");
	t->retry = get_attnum(t->ledger, "retry_backoff") != InvalidAttrNumber;
	t->nspid = nspid;
	return t;
}

/*
 * Lock pgi_ledger_key in lockmode, as a statement writing it would, when
 * the caller has the privilege (without it the statement that follows
 * raises 42501, and a role that may not write the keys must not be able to
 * hold up those who may).
 */
static bool
keys_lock(LedgerCall *call, AclMode privilege, LOCKMODE lockmode)
{
	Oid			relid = ledger_tables(call->nspid)->keys;

	if (pg_class_aclcheck(relid, GetUserId(), privilege) != ACLCHECK_OK)
		return false;
	LockRelationOid(relid, lockmode);
	return true;
}

/* ----------------------------------------------------------------
 * Ledger ids by name, for ledger_record's hot path
 *
 * Finding the ledger by name in ledger_record's statement was measured at
 * 15% of its cost.  So each backend remembers the ids of the last few
 * ledgers it recorded into, and forgets them all on any relcache
 * invalidation of pgi_ledger, which ledger_drop sends (it reaches other
 * backends when the drop commits, and this one at its next command).
 *
 * That is only safe used like this, under READ COMMITTED: lock
 * pgi_ledger_key first (a lock newly taken makes the backend read the
 * invalidations sent so far, and a drop in flight holds a lock that makes
 * us wait until it has committed and sent its own), then look in the
 * cache, then insert with the id.  A drop cannot start while we hold the
 * lock.  Entries are only made from an id that ledger_record's INSERT or
 * ledger_complete's UPDATE read from pgi_ledger in a snapshot taken after
 * that statement locked pgi_ledger_key.  (ledger_complete also uses them,
 * without the lock first: a stale id only makes it miss and look again by
 * name.)  Deleting rows of pgi_ledger by hand instead of calling
 * ledger_drop sends no invalidation: don't.
 * ----------------------------------------------------------------
 */
#define LEDGER_ID_CACHE_SIZE 8

typedef struct LedgerIdCacheEntry
{
	char	   *name;			/* NULL: unused */
	Oid			nspid;			/* the extension's schema */
	int32		id;
} LedgerIdCacheEntry;

static LedgerIdCacheEntry ledger_id_cache[LEDGER_ID_CACHE_SIZE];
static int	ledger_id_cache_next;

static void
ledger_cache_forget(Datum arg, Oid relid)
{
	int			i;

	if (OidIsValid(relid) && relid != ledger_tables_known.ledger &&
		relid != ledger_tables_known.keys)
		return;
	for (i = 0; i < LEDGER_ID_CACHE_SIZE; i++)
	{
		if (ledger_id_cache[i].name != NULL)
			pfree(ledger_id_cache[i].name);
		ledger_id_cache[i].name = NULL;
	}
	ledger_tables_known.nspid = InvalidOid;
}

static bool
ledger_id_cached(LedgerCall *call, const char *name, int32 *id)
{
	int			i;

	for (i = 0; i < LEDGER_ID_CACHE_SIZE; i++)
	{
		LedgerIdCacheEntry *e = &ledger_id_cache[i];

		if (e->name != NULL && e->nspid == call->nspid &&
			strcmp(e->name, name) == 0)
		{
			*id = e->id;
			return true;
		}
	}
	return false;
}

static void
ledger_id_remember(LedgerCall *call, const char *name, int32 id)
{
	LedgerIdCacheEntry *e = &ledger_id_cache[ledger_id_cache_next];
	int32		known;

	if (ledger_id_cached(call, name, &known))
		return;
	/* the callback that forgets the entry, and the tables it listens for */
	(void) ledger_tables(call->nspid);
	if (e->name != NULL)
		pfree(e->name);
	e->name = MemoryContextStrdup(TopMemoryContext, name);
	e->nspid = call->nspid;
	e->id = id;
	ledger_id_cache_next = (ledger_id_cache_next + 1) % LEDGER_ID_CACHE_SIZE;
}

/*
 * The id remembered for the ledger, if the caller may use it: the
 * statements by name read pgi_ledger, so a caller without SELECT on it
 * must take them and be refused there.
 */
static bool
ledger_id_usable(LedgerCall *call, const char *name, int32 *id)
{
	return ledger_id_cached(call, name, id) &&
		pg_class_aclcheck(ledger_tables(call->nspid)->ledger, GetUserId(),
						  ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Remember the ledger id the statement by name just returned (the first
 * column of its first row), under READ COMMITTED only: the statement
 * locked pgi_ledger_key before taking its snapshot, which a transaction
 * snapshot may predate.
 */
static void
ledger_id_remember_returned(LedgerCall *call, const char *name)
{
	bool		isnull;

	if (SPI_processed == 0 || IsolationUsesXactSnapshot())
		return;
	ledger_id_remember(call, name,
					   DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull)));
}

/* Whether pgi_ledger has 0.2.0's retry settings. */
static bool
has_retry_settings(Oid nspid)
{
	return ledger_tables(nspid)->retry;
}

/*
 * Resolve the ledger by name (one index lookup); 42704 if there is none.
 *
 * for_insert: the caller will insert keys with the id found, so the
 * ledger must not be dropped under it (ledger_drop explains the protocol):
 * lock pgi_ledger_key first, then read the ledger in a snapshot taken
 * after the lock.  Under READ COMMITTED every statement takes a new
 * snapshot; under REPEATABLE READ and SERIALIZABLE the transaction's
 * snapshot may be older than a drop that committed while we waited, so
 * the ledger is read in the latest snapshot instead.
 */
static void
ledger_lookup_for(LedgerCall *call, char *name, bool for_insert)
{
	Datum		values[1];
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	PgiCachedPlan *plan = has_retry_settings(call->nspid) ?
		&plan_ledger : &plan_ledger_010;

	call->name = name;
	values[0] = CStringGetTextDatum(name);
	if (for_insert)
		keys_lock(call, ACL_INSERT, RowExclusiveLock);
	pgi_spi_run_plan_in(plan, call->nspid, values, NULL,
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

static void
ledger_lookup(LedgerCall *call, char *name)
{
	ledger_lookup_for(call, name, false);
}

/* Read the key (FOR UPDATE when lock); false if the ledger lacks it. */
static bool
key_read(LedgerCall *call, const char *key, bool lock, LedgerKey *k)
{
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	values[0] = Int32GetDatum(call->id);
	values[1] = CStringGetTextDatum(key);
	pgi_spi_run_plan(lock ? &plan_lock_key : &plan_peek_key, call->nspid,
					 values, NULL, false, 0, SPI_OK_SELECT);
	memset(k, 0, sizeof(*k));
	if (SPI_processed == 0)
	{
		k->status = LS_ABSENT;
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	k->status = status_from_name(SPI_getvalue(tup, desc, 1));
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

/*
 * How many times ledger_record and ledger_claim insert a key and read it
 * again before giving up.  Each round that finds nothing means the insert
 * met a key that the read that followed did not see.  Under READ COMMITTED
 * the read sees every key committed before it began, so that takes
 * another transaction deleting the key in between (ledger_prune,
 * ledger_drop), or inserting and committing it in between (a claim racing
 * another claim: one round more); both are rare, and repeating them round
 * after round rarer still.  Row-level security on pgi_ledger_key that
 * hides the key from the caller does it every round.
 */
#define KEY_TRIES 10

/*
 * The error after KEY_TRIES rounds: 42501 when row-level security applies
 * to the caller's reads of pgi_ledger_key (the likely cause), else 40001,
 * which says to retry the transaction.
 */
pg_noreturn static void
key_unreadable(LedgerCall *call, LedgerEvent event, const char *key)
{
	Oid			keys = ledger_tables(call->nspid)->keys;

	if (check_enable_rls(keys, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("could not %s key \"%s\" of ledger \"%s\"",
						event_verbs[event], key, call->name),
				 errdetail("The key exists, but the row-level security policies of table \"%s\" do not let role \"%s\" read it.",
						   get_rel_name(keys), GetUserNameFromId(GetUserId(), false)),
				 errhint("Let every role that uses a ledger read all of its keys, or give each role ledgers of its own.")));
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not %s key \"%s\" of ledger \"%s\"",
					event_verbs[event], key, call->name),
			 errdetail_plural("Inserting the key conflicted with an existing key %d time, and the key was gone when read: another transaction deleted it.",
							  "Inserting the key conflicted with an existing key %d times, and each time the key was gone when read: other transactions keep deleting it.",
							  KEY_TRIES, KEY_TRIES),
			 errhint("Retry the transaction.")));
}

static TimestampTz
time_plus(TimestampTz t, Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(t),
												   IntervalPGetDatum(iv)));
}

static TimestampTz
time_minus(TimestampTz t, Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(t),
												   IntervalPGetDatum(iv)));
}

/*
 * 22023 unless the interval argument is finite and at least zero.  An
 * infinite interval (17 and later have them) would put a lease's end, a
 * retry or a pruning horizon at the end or start of time: a key that is
 * never retried or never pruned, with nothing to say so.
 */
static void
require_nonnegative(Interval *iv, const char *argname)
{
	Interval	zero;

	if (!pgi_interval_is_finite(iv))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be finite", argname),
				 errdetail("It is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(iv),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must not be negative", argname),
				 errdetail("It is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
}

/* 22023 when both fingerprints are known and differ */
static void
check_fingerprint(const LedgerCall *call, const char *key,
				  const LedgerKey *k, bytea *given)
{
	if (given == NULL || !k->has_fingerprint)
		return;
	if (VARSIZE_ANY_EXHDR(given) == VARSIZE_ANY_EXHDR(k->fingerprint) &&
		memcmp(VARDATA_ANY(given), VARDATA_ANY(k->fingerprint),
			   VARSIZE_ANY_EXHDR(given)) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("key \"%s\" of ledger \"%s\" was reused with a different payload",
					key, call->name),
			 errdetail("The fingerprint given differs from the one recorded when the key was first seen."),
			 errhint("Use a new key for a different request, or send the same payload again.")));
}

/*
 * Whether the key cannot be claimed yet: a processing key's lease or a
 * failed key's retry backoff still runs.
 */
static bool
key_waiting(const LedgerCall *call, const LedgerKey *k)
{
	return k->available_at != 0 && k->available_at > call->now;
}

/*
 * When a key that failed on attempt number `attempts` may be claimed
 * again: now + retry_backoff * 2^(attempts - 1), at most now +
 * retry_backoff_max.  Doubled by addition, stopping at the cap, so that
 * no step can overflow an interval that the cap itself does not.
 */
static TimestampTz
retry_at(const LedgerCall *call, int32 attempts)
{
	Interval	zero;
	Interval   *delay = call->retry_backoff;
	int32		i;

	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(delay),
										  IntervalPGetDatum(&zero))) <= 0)
		return call->now;
	for (i = 1; i < attempts; i++)
	{
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  IntervalPGetDatum(delay),
											  IntervalPGetDatum(call->retry_backoff_max))) >= 0)
			break;
		delay = DatumGetIntervalP(DirectFunctionCall2(interval_pl,
													  IntervalPGetDatum(delay),
													  IntervalPGetDatum(delay)));
	}
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(delay),
										  IntervalPGetDatum(call->retry_backoff_max))) > 0)
		delay = call->retry_backoff_max;
	return time_plus(call->now, delay);
}

static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	pgi_require_arg(fcinfo, argno, argname);
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * An array argument, one-dimensional (or empty), with no NULL elements
 * unless nulls_ok.
 */
static ArrayType *
array_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
		  bool nulls_ok)
{
	ArrayType  *arr;

	pgi_require_arg(fcinfo, argno, argname);
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("argument \"%s\" must be a one-dimensional array",
						argname)));
	if (!nulls_ok && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not contain null elements",
						argname)));
	return arr;
}

static ArrayType *
keys_arg(FunctionCallInfo fcinfo, int argno)
{
	return array_arg(fcinfo, argno, "keys", false);
}

/* 22023 unless array argument argname has as many elements as "keys" */
static void
require_same_length(ArrayType *keys, ArrayType *arr, const char *argname)
{
	int			nkeys = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));

	if (n != nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("arguments \"keys\" and \"%s\" must have the same length",
						argname),
				 errdetail("\"keys\" has length %d and \"%s\" has length %d.",
						   nkeys, argname, n)));
}

/*
 * Set up materialize mode for a set-returning function: a composite result
 * or SETOF text, whose descriptor the executor passes as the expected one.
 */
static Tuplestorestate *
srf_begin(FunctionCallInfo fcinfo, TupleDesc *desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	*desc = rsinfo->setDesc;
	return rsinfo->setResult;
}

/* ----------------------------------------------------------------
 * Managing ledgers
 * ----------------------------------------------------------------
 */

/*
 * ledger_create(name, lease, max_attempts, retention, retry_backoff,
 * retry_backoff_max): creates the ledger, or brings an existing one's
 * settings to the given values.  Writes nothing when they already are.
 */
Datum
pgi_ledger_create(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "name");
	Interval   *lease;
	int32		max_attempts;
	Interval   *retention;
	Interval   *retry_backoff;
	Interval   *retry_backoff_max;
	Datum		values[7];

	/* 0.1.0's ledger_create has no retry settings: see plan_create_010 */
	bool		v010 = PG_NARGS() < 6;

	pgi_require_arg(fcinfo, 1, "lease");
	pgi_require_arg(fcinfo, 2, "max_attempts");
	pgi_require_arg(fcinfo, 3, "retention");
	if (!v010)
	{
		pgi_require_arg(fcinfo, 4, "retry_backoff");
		pgi_require_arg(fcinfo, 5, "retry_backoff_max");
	}
	lease = PG_GETARG_INTERVAL_P(1);
	max_attempts = PG_GETARG_INT32(2);
	retention = PG_GETARG_INTERVAL_P(3);
	retry_backoff = v010 ? NULL : PG_GETARG_INTERVAL_P(4);
	retry_backoff_max = v010 ? NULL : PG_GETARG_INTERVAL_P(5);
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ledger name must not be empty")));
	require_nonnegative(lease, "lease");
	require_nonnegative(retention, "retention");
	if (!v010)
	{
		require_nonnegative(retry_backoff, "retry_backoff");
		require_nonnegative(retry_backoff_max, "retry_backoff_max");
	}
	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"max_attempts\" must be at least 1"),
				 errdetail("It is %d.", max_attempts)));

	call_init(&call, fcinfo);
	values[0] = CStringGetTextDatum(name);
	values[1] = IntervalPGetDatum(lease);
	values[2] = Int32GetDatum(max_attempts);
	values[3] = IntervalPGetDatum(retention);
	values[4] = TimestampTzGetDatum(call.now);
	values[5] = PointerGetDatum(retry_backoff);
	values[6] = PointerGetDatum(retry_backoff_max);
	SPI_connect();
	pgi_spi_run_plan(v010 || !has_retry_settings(call.nspid) ?
					 &plan_create_010 : &plan_create,
					 call.nspid, values, NULL, false, 0, SPI_OK_INSERT);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * ledger_drop(name): the ledger and all its keys.
 *
 * A key inserted by a transaction that a drop does not see (in flight, or
 * committed after the drop's snapshot) would be left behind with the id of
 * a ledger that no longer exists.  So every function that inserts keys
 * holds a lock on pgi_ledger_key from before it reads the ledger's id
 * (ledger_record's statement takes it before its snapshot; the others call
 * ledger_lookup_for), and the drop takes a lock that conflicts with those:
 * it waits for every transaction that may be inserting keys to end, and
 * holds off new ones until it commits; they then find the ledger gone
 * (42704).  The keys are deleted in the latest snapshot, which sees every
 * key committed by the transactions it waited for, even when the drop's
 * own snapshot is older (REPEATABLE READ).  SHARE ROW EXCLUSIVE rather
 * than SHARE: it conflicts with itself, so two drops queue instead of
 * deadlocking when each upgrades to the ROW EXCLUSIVE of its DELETE.
 */
Datum
pgi_ledger_drop(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "name");
	Datum		values[1];
	bool		isnull;

	call_init(&call, fcinfo);
	keys_lock(&call, ACL_DELETE, ShareRowExclusiveLock);
	SPI_connect();
	values[0] = CStringGetTextDatum(name);
	pgi_spi_run_plan(&plan_drop, call.nspid, values, NULL, false, 0,
					 SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
		ledger_not_found(name);
	/* every backend forgets its cached ledger ids (see ledger_id_cached) */
	CacheInvalidateRelcacheByRelid(ledger_tables(call.nspid)->ledger);
	values[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							  &isnull);
	pgi_spi_run_plan_in(&plan_drop_keys, call.nspid, values, NULL,
						GetLatestSnapshot(), SPI_OK_DELETE);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Check-and-record
 * ----------------------------------------------------------------
 */

/*
 * ledger_record(ledger, key, fingerprint): true the first time a key is
 * seen, false ever after.  The first attempt is the whole job when the key
 * is new: one INSERT ... ON CONFLICT DO NOTHING with the ledger joined in.
 * Only when it inserts nothing do we look again, to tell an unknown ledger
 * (42704) and a different payload (22023) from a repeat.  Under REPEATABLE
 * READ and SERIALIZABLE the transaction's snapshot may still show a ledger
 * that a drop has since deleted, so the ledger is first checked in the
 * latest snapshot, under the lock (ledger_lookup_for says why).
 */
Datum
pgi_ledger_record(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	bytea	   *fingerprint = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	Datum		values[5];
	char		nulls[5];
	bool		result = false;
	int			tries;

	memset(nulls, ' ', sizeof(nulls));
	call_init(&call, fcinfo);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = status_text(transitions[LE_RECORD][LS_ABSENT].to);
	values[3] = fingerprint ? PointerGetDatum(fingerprint) : (Datum) 0;
	nulls[3] = fingerprint ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(call.now);

	SPI_connect();
	for (tries = 1;; tries++)
	{
		LedgerKey	k;
		bool		fresh = !IsolationUsesXactSnapshot();
		int32		id;

		CHECK_FOR_INTERRUPTS();
		if (tries > KEY_TRIES)
			key_unreadable(&call, LE_RECORD, key);
		if (!fresh)
			ledger_lookup_for(&call, name, true);
		if (fresh && keys_lock(&call, ACL_INSERT, RowExclusiveLock) &&
			ledger_id_usable(&call, name, &id))
		{
			/*
			 * See ledger_id_cached: the lock came first.  The statement
			 * reads no table (the conflict check sees every committed and
			 * in-progress key, whatever the snapshot), so it runs in the
			 * calling statement's snapshot instead of taking one of its
			 * own, which is a scan of every backend's transaction when
			 * others are committing.
			 */
			Datum		byid[5];

			memcpy(byid, values, sizeof(byid));
			byid[0] = Int32GetDatum(id);
			pgi_spi_run_plan_in(&plan_record_by_id, call.nspid, byid, nulls,
								ActiveSnapshotSet() ?
								GetActiveSnapshot() : InvalidSnapshot,
								SPI_OK_INSERT);
			if (SPI_processed > 0)
			{
				result = true;
				break;
			}
		}
		else
		{
			pgi_spi_run_plan(&plan_record, call.nspid, values, nulls, false, 0,
							 SPI_OK_INSERT_RETURNING);
			ledger_id_remember_returned(&call, name);
			if (SPI_processed > 0)
			{
				result = true;
				break;
			}
		}
		ledger_lookup(&call, name);
		if (key_read(&call, key, false, &k))
		{
			check_fingerprint(&call, key, &k, fingerprint);
			(void) ledger_transition(LE_RECORD, k.status, false, false,
									 name, key);
			break;
		}
		/* deleted between the two statements (or hidden): try again */
	}
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/*
 * Insert the distinct keys of an array with the given status, in one
 * statement (sorted, so concurrent batches over the same keys cannot
 * deadlock); leaves the new keys in SPI_tuptable.
 */
static void
insert_keys(LedgerCall *call, ArrayType *keys, LedgerEvent event)
{
	LedgerStatus to = transitions[event][LS_ABSENT].to;
	Datum		values[5];
	char		nulls[5];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(call->id);
	values[1] = PointerGetDatum(keys);
	values[2] = status_text(to);
	values[3] = TimestampTzGetDatum(call->now);
	nulls[3] = (to == LS_PENDING) ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(call->now);
	pgi_spi_run_plan(&plan_record_batch, call->nspid, values, nulls, false, 0,
					 SPI_OK_INSERT_RETURNING);
}

/* ledger_record_batch(ledger, keys): the keys that were new, each once. */
Datum
pgi_ledger_record_batch(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	ArrayType  *keys = keys_arg(fcinfo, 1);
	Tuplestorestate *store;
	TupleDesc	desc;
	uint64		i;

	store = srf_begin(fcinfo, &desc);
	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup_for(&call, name, true);
	insert_keys(&call, keys, LE_RECORD);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		value;

		CHECK_FOR_INTERRUPTS();
		value = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
							  &isnull);
		tuplestore_putvalues(store, desc, &value, &isnull);
	}
	SPI_finish();
	return (Datum) 0;
}

/* ledger_enqueue(ledger, keys): how many keys were new (now pending). */
Datum
pgi_ledger_enqueue(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	ArrayType  *keys = keys_arg(fcinfo, 1);
	int64		count;

	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup_for(&call, name, true);
	insert_keys(&call, keys, LE_ENQUEUE);
	count = (int64) SPI_processed;
	SPI_finish();
	PG_RETURN_INT64(count);
}

/* ----------------------------------------------------------------
 * Work with leases
 * ----------------------------------------------------------------
 */

/*
 * ledger_claim(ledger, key, fingerprint) returns (status, token, attempts,
 * result): 'acquired' with a new token and a lease, 'done' with the stored
 * result, 'busy' while another worker's lease runs, or 'dead'.  An unknown
 * key is created processing.  The key's row is locked for the decision.
 */
Datum
pgi_ledger_claim(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	bytea	   *fingerprint = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	MemoryContext callcxt = CurrentMemoryContext;
	const char *outstatus;
	int64		token = 0;
	int32		attempts = 0;
	int			tries;
	Datum		out[4];
	bool		outnull[4] = {false, false, false, true};
	Datum		values[6];
	char		nulls[6];

	memset(nulls, ' ', sizeof(nulls));
	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup_for(&call, name, true);
	values[0] = Int32GetDatum(call.id);
	values[1] = CStringGetTextDatum(key);
	values[2] = status_text(LS_PROCESSING);
	values[3] = TimestampTzGetDatum(time_plus(call.now, call.lease));
	values[4] = fingerprint ? PointerGetDatum(fingerprint) : (Datum) 0;
	nulls[4] = fingerprint ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(call.now);

	for (tries = 1;; tries++)
	{
		LedgerKey	k;
		LedgerDecision d;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (tries > KEY_TRIES)
			key_unreadable(&call, LE_CLAIM, key);
		if (!key_read(&call, key, true, &k))
		{
			d = ledger_transition(LE_CLAIM, LS_ABSENT, false, false, name, key);
			if (d.outcome != LO_MOVE || d.to != LS_PROCESSING)
				elog(ERROR, "ledger state machine: a claim must create a processing key");
			pgi_spi_run_plan(&plan_insert_claim, call.nspid, values, nulls,
							 false, 0, SPI_OK_INSERT_RETURNING);
			if (SPI_processed == 0)
				continue;		/* inserted by another session meanwhile (or
								 * hidden) */
			outstatus = "acquired";
			token = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1,
												&isnull));
			attempts = 1;
			break;
		}

		check_fingerprint(&call, key, &k, fingerprint);
		d = ledger_transition(LE_CLAIM, k.status, key_waiting(&call, &k),
							  k.attempts >= call.max_attempts, name, key);
		if (d.outcome == LO_MOVE && d.to == LS_DEAD)
		{
			Datum		v[5];
			char		vn[5];

			memset(vn, ' ', sizeof(vn));
			v[0] = Int32GetDatum(call.id);
			v[1] = values[1];
			v[2] = status_text(LS_DEAD);
			v[3] = CStringGetTextDatum(LEASE_RAN_OUT);
			vn[3] = (k.status == LS_PROCESSING) ? ' ' : 'n';
			v[4] = TimestampTzGetDatum(call.now);
			pgi_spi_run_plan(&plan_expire, call.nspid, v, vn, false, 0,
							 SPI_OK_UPDATE);
			outstatus = status_names[LS_DEAD];
			outnull[1] = true;
			attempts = k.attempts;
		}
		else if (d.outcome == LO_MOVE)
		{
			pgi_spi_run_plan(&plan_update_claim, call.nspid, values, nulls,
							 false, 0, SPI_OK_UPDATE_RETURNING);
			if (SPI_processed != 1)
				elog(ERROR, "the locked key \"%s\" of ledger \"%s\" was not updated",
					 key, name);
			outstatus = "acquired";
			token = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1,
												&isnull));
			attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2,
												   &isnull));
		}
		else
		{
			MemoryContext spicxt;

			outstatus = (d.outcome == LO_REFUSE) ? "busy" :
				status_names[k.status];
			outnull[1] = true;
			attempts = k.attempts;
			if (k.status == LS_DONE && k.has_result)
			{
				spicxt = MemoryContextSwitchTo(callcxt);
				out[3] = datumCopy(k.result, false, -1);
				MemoryContextSwitchTo(spicxt);
				outnull[3] = false;
			}
		}
		break;
	}
	SPI_finish();

	/*
	 * The Datums are made only now: a token read as a Datum would point
	 * into the SPI result where int8 is passed by reference.
	 */
	out[0] = CStringGetTextDatum(outstatus);
	out[1] = Int64GetDatum(token);
	out[2] = Int32GetDatum(attempts);
	pgi_return_row(fcinfo, out, outnull);
	return (Datum) 0;
}

/*
 * ledger_claim_next(ledger, n): up to n claimable keys (pending, failed,
 * or processing with a lease that ran out), oldest first, each with a new
 * token.  Keys another worker holds locked are skipped, not waited for.
 */
Datum
pgi_ledger_claim_next(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	int32		n;
	Tuplestorestate *store;
	TupleDesc	desc;
	Datum		values[8];
	uint64		i;

	pgi_require_arg(fcinfo, 1, "n");
	n = PG_GETARG_INT32(1);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"n\" must not be negative"),
				 errdetail("It is %d.", n)));
	store = srf_begin(fcinfo, &desc);

	call_init(&call, fcinfo);
	SPI_connect();
	if (n == 0)
	{
		/* nothing to claim, but an unknown ledger is still 42704 */
		ledger_lookup(&call, name);
		SPI_finish();
		return (Datum) 0;
	}
	values[0] = PG_GETARG_DATUM(0);
	values[1] = Int64GetDatum((int64) n);
	values[2] = TimestampTzGetDatum(call.now);
	values[3] = statuses_moved_to(LE_CLAIM, false, LS_PROCESSING);
	values[4] = status_text(LS_PROCESSING);
	values[5] = statuses_moved_to(LE_CLAIM, true, LS_DEAD);
	values[6] = status_text(LS_DEAD);
	values[7] = CStringGetTextDatum(LEASE_RAN_OUT);
	pgi_spi_run_plan(&plan_claim_next, call.nspid, values, NULL, false, 0,
					 SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		ledger_lookup(&call, name);		/* 42704 if there is no such ledger */
		SPI_finish();
		return (Datum) 0;
	}
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		row[3];
		bool		rownull[3];
		int			c;

		CHECK_FOR_INTERRUPTS();
		for (c = 0; c < 3; c++)
			row[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								   c + 1, &rownull[c]);
		tuplestore_putvalues(store, desc, row, rownull);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * ledger_complete(ledger, key, token, result): true when the key is done
 * by this token (now, or already: a repeat is a no-op); false, changing
 * nothing, when the token is not the key's current one.  The common case
 * is one UPDATE; the rest is only looked at when it changes nothing.
 */
Datum
pgi_ledger_complete(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	int64		token;
	Datum		values[7];
	char		nulls[7];
	bool		result = false;
	LedgerKey	k;
	LedgerDecision d;
	int32		id;

	memset(nulls, ' ', sizeof(nulls));
	pgi_require_arg(fcinfo, 2, "token");
	token = PG_GETARG_INT64(2);
	call_init(&call, fcinfo);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = Int64GetDatum(token);
	values[3] = status_text(LS_DONE);
	values[4] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[4] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[5] = TimestampTzGetDatum(call.now);
	values[6] = statuses_moved_to(LE_COMPLETE, false, LS_DONE);

	SPI_connect();
	if (ledger_id_usable(&call, name, &id))
	{
		/*
		 * A remembered id is only a shortcut here: the ledger dropped since
		 * has no keys left, and ids are never reused, so a stale one
		 * matches nothing and the slow path below finds the ledger by name.
		 */
		Datum		byid[7];

		memcpy(byid, values, sizeof(byid));
		byid[0] = Int32GetDatum(id);
		pgi_spi_run_plan(&plan_complete_by_id, call.nspid, byid, nulls, false,
						 0, SPI_OK_UPDATE);
	}
	else
	{
		pgi_spi_run_plan(&plan_complete, call.nspid, values, nulls, false, 0,
						 SPI_OK_UPDATE_RETURNING);
		ledger_id_remember_returned(&call, name);
	}
	if (SPI_processed > 0)
		result = true;
	else
	{
		ledger_lookup(&call, name);
		if (key_read(&call, key, true, &k) && k.has_token && k.token == token)
		{
			d = ledger_transition(LE_COMPLETE, k.status, false, false,
								  name, key);
			if (d.outcome == LO_MOVE)
			{
				/* moved to a legal state the fast path did not cover */
				Datum		v[7];
				char		vn[7];

				memset(vn, ' ', sizeof(vn));
				v[0] = Int32GetDatum(call.id);
				v[1] = values[1];
				v[2] = status_text(d.to);
				v[3] = values[4];
				vn[3] = nulls[4];
				v[4] = (Datum) 0;
				vn[4] = 'n';
				v[5] = (Datum) 0;
				vn[5] = 'n';
				v[6] = values[5];
				pgi_spi_run_plan(&plan_set, call.nspid, v, vn, false, 0,
								 SPI_OK_UPDATE);
			}
			result = true;
		}
	}
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/*
 * ledger_complete_batch(ledger, keys, tokens, results): ledger_complete
 * for every (key, token, result) of the arrays; returns the keys that are
 * done by the token given (now, or already), each once.  Keys whose token
 * is not current are left alone and not returned.
 *
 * The common case is one UPDATE that makes the move the state machine
 * allows (processing to done) for every key at once.  When it moves fewer
 * keys than it was given, every key whose token is current is locked and
 * read, and ledger_transition decides on each, as ledger_complete's slow
 * path does: an illegal transition is 55000, a repeat is a no-op.  The
 * answer is then that second statement's keys, which include those the
 * first moved (they are done now, by this token).  A key the state machine
 * would still move (it changed between the two statements; we hold its
 * lock now) sends us round again.
 */
Datum
pgi_ledger_complete_batch(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	ArrayType  *keys = keys_arg(fcinfo, 1);
	ArrayType  *tokens = array_arg(fcinfo, 2, "tokens", false);
	ArrayType  *results = NULL;
	int			nkeys = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	Tuplestorestate *store;
	TupleDesc	desc;
	Datum		values[7];
	char		nulls[7];
	bool		again;
	uint64		i;

	memset(nulls, ' ', sizeof(nulls));
	require_same_length(keys, tokens, "tokens");
	if (!PG_ARGISNULL(3))
	{
		results = array_arg(fcinfo, 3, "results", true);
		require_same_length(keys, results, "results");
	}
	store = srf_begin(fcinfo, &desc);
	call_init(&call, fcinfo);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PointerGetDatum(keys);
	values[2] = PointerGetDatum(tokens);
	values[3] = status_text(LS_DONE);
	values[4] = TimestampTzGetDatum(call.now);
	values[5] = results ? PointerGetDatum(results) : (Datum) 0;
	nulls[5] = results ? ' ' : 'n';
	values[6] = statuses_moved_to(LE_COMPLETE, false, LS_DONE);

	SPI_connect();
	if (nkeys == 0)
		ledger_lookup(&call, name);		/* 42704 if there is no such ledger */
	do
	{
		CHECK_FOR_INTERRUPTS();
		again = false;
		pgi_spi_run_plan(&plan_complete_batch, call.nspid, values, nulls,
						 false, 0, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed == (uint64) nkeys)
			break;
		if (call.name == NULL)
			ledger_lookup(&call, name);
		{
			Datum		v[3];

			v[0] = Int32GetDatum(call.id);
			v[1] = PointerGetDatum(keys);
			v[2] = PointerGetDatum(tokens);
			pgi_spi_run_plan(&plan_complete_batch_rest, call.nspid, v, NULL,
							 false, 0, SPI_OK_SELECT);
		}
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *key = pgi_spi_text(i, 1);
			LedgerDecision d;

			d = ledger_transition(LE_COMPLETE,
								  status_from_name(pgi_spi_text(i, 2)),
								  false, false, name, key);
			if (d.outcome == LO_MOVE)
				again = true;
		}
	} while (again);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		value;

		value = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
							  &isnull);
		tuplestore_putvalues(store, desc, &value, &isnull);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * ledger_fail(ledger, key, token, error): the key's new status, failed (it
 * will be claimed again) or dead (it used max_attempts); NULL, changing
 * nothing, when the token is not the key's current one.
 */
Datum
pgi_ledger_fail(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	int64		token;
	LedgerKey	k;
	LedgerDecision d;
	const char *result = NULL;

	pgi_require_arg(fcinfo, 2, "token");
	token = PG_GETARG_INT64(2);
	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup(&call, name);
	if (key_read(&call, key, true, &k) && k.has_token && k.token == token)
	{
		d = ledger_transition(LE_FAIL, k.status, false,
							  k.attempts >= call.max_attempts, name, key);
		if (d.outcome == LO_MOVE)
		{
			Datum		v[7];
			char		vn[7];

			memset(vn, ' ', sizeof(vn));
			v[0] = Int32GetDatum(call.id);
			v[1] = CStringGetTextDatum(key);
			v[2] = status_text(d.to);
			v[3] = (Datum) 0;
			vn[3] = 'n';
			v[4] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
			vn[4] = PG_ARGISNULL(3) ? 'n' : ' ';
			/* a failed key can be claimed again after its backoff; a dead one never */
			v[5] = TimestampTzGetDatum(retry_at(&call, k.attempts));
			vn[5] = (d.to == LS_FAILED) ? ' ' : 'n';
			v[6] = TimestampTzGetDatum(call.now);
			pgi_spi_run_plan(&plan_set, call.nspid, v, vn, false, 0,
							 SPI_OK_UPDATE);
			result = status_names[d.to];
		}
		else
			result = status_names[k.status];
	}
	SPI_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*
 * ledger_heartbeat(ledger, key, token, extend): while the token is the
 * key's current one and the key is processing, the lease runs until now +
 * extend (else the ledger's lease) and the answer is true; otherwise
 * nothing changes and the answer is false.
 */
Datum
pgi_ledger_heartbeat(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	int64		token;
	Interval   *extend = NULL;
	Datum		values[6];
	bool		result;

	pgi_require_arg(fcinfo, 2, "token");
	token = PG_GETARG_INT64(2);
	if (!PG_ARGISNULL(3))
	{
		extend = PG_GETARG_INTERVAL_P(3);
		require_nonnegative(extend, "extend");
	}
	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup(&call, name);
	values[0] = Int32GetDatum(call.id);
	values[1] = CStringGetTextDatum(key);
	values[2] = Int64GetDatum(token);
	values[3] = TimestampTzGetDatum(time_plus(call.now,
											  extend ? extend : call.lease));
	values[4] = TimestampTzGetDatum(call.now);
	values[5] = statuses_moved_to(LE_HEARTBEAT, false, LS_PROCESSING);
	pgi_spi_run_plan(&plan_heartbeat, call.nspid, values, NULL, false, 0,
					 SPI_OK_UPDATE_RETURNING);
	result = SPI_processed > 0;
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/* ----------------------------------------------------------------
 * Looking and pruning
 * ----------------------------------------------------------------
 */

/* ledger_status(ledger, key): the key's status, NULL for an unknown key. */
Datum
pgi_ledger_status(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	LedgerKey	k;
	bool		found;

	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup(&call, name);
	found = key_read(&call, key, false, &k);
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(status_names[k.status]));
}

/* ledger_stats(ledger): one row per status, in the state machine's order. */
Datum
pgi_ledger_stats(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	Tuplestorestate *store;
	TupleDesc	desc;
	int64		counts[LS_COUNT];
	Datum		values[1];
	uint64		i;
	int			s;

	store = srf_begin(fcinfo, &desc);
	call_init(&call, fcinfo);
	memset(counts, 0, sizeof(counts));
	SPI_connect();
	ledger_lookup(&call, name);
	values[0] = Int32GetDatum(call.id);
	pgi_spi_run_plan(&plan_stats, call.nspid, values, NULL, true, 0,
					 SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
		counts[status_from_name(pgi_spi_text(i, 1))] = pgi_spi_int8(i, 2);
	SPI_finish();
	for (s = LS_PENDING; s < LS_COUNT; s++)
	{
		Datum		row[2];
		bool		rownull[2] = {false, false};

		row[0] = CStringGetTextDatum(status_names[s]);
		row[1] = Int64GetDatum(counts[s]);
		tuplestore_putvalues(store, desc, row, rownull);
	}
	return (Datum) 0;
}

/*
 * ledger_prune(ledger, older_than, max_keys): deletes up to max_keys done
 * and dead keys that finished more than older_than (else the ledger's
 * retention) ago, oldest first, skipping keys someone holds locked, and
 * returns how many.  One bounded batch per call, so locks are held only
 * for one batch: call it again (in a new transaction) until it returns
 * less than max_keys.
 */
Datum
pgi_ledger_prune(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	Interval   *older_than = NULL;
	int32		max_keys;
	Datum		values[3];
	int64		count;

	if (!PG_ARGISNULL(1))
	{
		older_than = PG_GETARG_INTERVAL_P(1);
		require_nonnegative(older_than, "older_than");
	}
	pgi_require_arg(fcinfo, 2, "max_keys");
	max_keys = PG_GETARG_INT32(2);
	if (max_keys < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"max_keys\" must be at least 1"),
				 errdetail("It is %d.", max_keys)));
	call_init(&call, fcinfo);
	SPI_connect();
	ledger_lookup(&call, name);
	values[0] = Int32GetDatum(call.id);
	values[1] = TimestampTzGetDatum(time_minus(call.now,
											   older_than ? older_than : call.retention));
	values[2] = Int64GetDatum((int64) max_keys);
	pgi_spi_run_plan(&plan_prune, call.nspid, values, NULL, false, 0,
					 SPI_OK_DELETE);
	count = (int64) SPI_processed;
	SPI_finish();
	PG_RETURN_INT64(count);
}
