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
 * The state machine lives in one place, ledger_state.c, and every
 * function decides through it.
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
 * Every statement runs with the caller's rights: the caller needs
 * privileges on the tables.
 *
 * The files: this one holds the SQL functions; ledger_state.c the state
 * machine, ledger_sql.c the statements, ledger_cache.c what a backend
 * remembers between calls (ledger.h lists them).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "ledger.h"

PG_FUNCTION_INFO_V1(pgi_ledger_create);
PG_FUNCTION_INFO_V1(pgi_ledger_create_with_backoff);
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
 * Helpers
 * ----------------------------------------------------------------
 */

static void
call_init(LedgerCall *call, FunctionCallInfo fcinfo)
{
	memset(call, 0, sizeof(*call));
	call->nspid = get_func_namespace(fcinfo->flinfo->fn_oid);
	call->now = GetCurrentTimestamp();
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
	Oid			keys = pgi_ledger_tables(call->nspid)->keys;

	Assert(event == LE_RECORD || event == LE_CLAIM);
	if (check_enable_rls(keys, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 event == LE_RECORD ?
				 errmsg("could not record key \"%s\" of ledger \"%s\"",
						key, call->name) :
				 errmsg("could not claim key \"%s\" of ledger \"%s\"",
						key, call->name),
				 errdetail("The key exists, but the row-level security policies of table \"%s\" do not let role \"%s\" read it.",
						   get_rel_name(keys), GetUserNameFromId(GetUserId(), false)),
				 errhint("Let every role that uses a ledger read all of its keys, or give each role ledgers of its own.")));
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 event == LE_RECORD ?
			 errmsg("could not record key \"%s\" of ledger \"%s\"",
					key, call->name) :
			 errmsg("could not claim key \"%s\" of ledger \"%s\"",
					key, call->name),
			 errdetail_plural("Inserting the key conflicted with an existing key %d time, and the key was gone when read: another transaction deleted it.",
							  "Inserting the key conflicted with an existing key %d times, and each time the key was gone when read: other transactions keep deleting it.",
							  KEY_TRIES, KEY_TRIES),
			 errhint("Retry the transaction.")));
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
 *
 * 0.2.0 added retry_backoff and retry_backoff_max.  0.1.0's four-argument
 * ledger_create stays bound to pgi_ledger_create until ALTER EXTENSION
 * pg_idempotent UPDATE replaces it, so that symbol takes four arguments
 * and 0.2.0's function has a symbol of its own; both are ledger_create
 * here, told apart by with_backoff (0.1.0's keeps the backoff settings).
 */
static void
ledger_create(FunctionCallInfo fcinfo, bool with_backoff)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "name");
	Interval   *lease;
	int32		max_attempts;
	Interval   *retention;
	Interval   *retry_backoff = NULL;
	Interval   *retry_backoff_max = NULL;

	pgi_require_arg(fcinfo, 1, "lease");
	pgi_require_arg(fcinfo, 2, "max_attempts");
	pgi_require_arg(fcinfo, 3, "retention");
	if (with_backoff)
	{
		pgi_require_arg(fcinfo, 4, "retry_backoff");
		pgi_require_arg(fcinfo, 5, "retry_backoff_max");
	}
	lease = PG_GETARG_INTERVAL_P(1);
	max_attempts = PG_GETARG_INT32(2);
	retention = PG_GETARG_INTERVAL_P(3);
	if (with_backoff)
	{
		retry_backoff = PG_GETARG_INTERVAL_P(4);
		retry_backoff_max = PG_GETARG_INTERVAL_P(5);
	}
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ledger name must not be empty")));
	require_nonnegative(lease, "lease");
	require_nonnegative(retention, "retention");
	if (with_backoff)
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
	SPI_connect();
	pgi_ledger_sql_create(&call, name, lease, max_attempts, retention,
						  retry_backoff, retry_backoff_max);
	SPI_finish();
}

/* 0.2.0's ledger_create, with the retry backoff */
Datum
pgi_ledger_create_with_backoff(PG_FUNCTION_ARGS)
{
	ledger_create(fcinfo, true);
	PG_RETURN_VOID();
}

/* 0.1.0's ledger_create, until ALTER EXTENSION pg_idempotent UPDATE */
Datum
pgi_ledger_create(PG_FUNCTION_ARGS)
{
	ledger_create(fcinfo, false);
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
 * pgi_ledger_lookup_for), and the drop takes a lock that conflicts with
 * those: it waits for every transaction that may be inserting keys to end,
 * and holds off new ones until it commits; they then find the ledger gone
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
	int32		id;

	call_init(&call, fcinfo);
	pgi_ledger_keys_lock(&call, ACL_DELETE, ShareRowExclusiveLock);
	SPI_connect();
	id = pgi_ledger_sql_drop(&call, name);
	/* every backend forgets its cached ledger ids (see ledger_cache.c) */
	pgi_ledger_id_forget_everywhere(&call);
	pgi_ledger_sql_drop_keys(&call, id);
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
 * is new: one INSERT ... ON CONFLICT DO NOTHING, by the ledger's id when
 * it is known (remembered, or looked up under the lock), else with the
 * ledger joined in by name.  Only when it inserts nothing do we look again:
 * the key, to tell a different payload (22023) from a repeat, and, when
 * the ledger was joined in by name, the ledger, to tell an unknown one
 * (42704).  Under REPEATABLE READ and SERIALIZABLE the transaction's
 * snapshot may still show a ledger that a drop has since deleted, so the
 * ledger is first looked up in the latest snapshot, under the lock
 * (pgi_ledger_lookup_for says why), and its id is what we insert with.
 */
Datum
pgi_ledger_record(PG_FUNCTION_ARGS)
{
	LedgerCall	call;
	char	   *name = text_arg(fcinfo, 0, "ledger");
	char	   *key = text_arg(fcinfo, 1, "key");
	bytea	   *fingerprint = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	bool		fresh = !IsolationUsesXactSnapshot();
	bool		result = false;
	int			tries;

	call_init(&call, fcinfo);
	SPI_connect();
	for (tries = 1;; tries++)
	{
		LedgerKey	k;
		bool		known;		/* call.id is the ledger's, under the lock */
		bool		inserted;

		CHECK_FOR_INTERRUPTS();
		if (tries > KEY_TRIES)
			key_unreadable(&call, LE_RECORD, key);
		if (!fresh)
		{
			pgi_ledger_lookup_for(&call, name, true);
			known = true;
		}
		else
		{
			/* see ledger_cache.c: the lock comes first */
			known = pgi_ledger_keys_lock(&call, ACL_INSERT, RowExclusiveLock) &&
				pgi_ledger_id_usable(&call, name, &call.id);
			if (known)
				call.name = name;
		}
		if (known)
		{
			/*
			 * The statement reads no table (the conflict check sees every
			 * committed and in-progress key, whatever the snapshot), so it
			 * runs in the calling statement's snapshot instead of taking one
			 * of its own, which is a scan of every backend's transaction when
			 * others are committing.
			 */
			inserted = pgi_ledger_sql_record_by_id(&call, call.id,
												   PG_GETARG_DATUM(1),
												   fingerprint,
												   ActiveSnapshotSet() ?
												   GetActiveSnapshot() :
												   InvalidSnapshot);
		}
		else
		{
			inserted = pgi_ledger_sql_record(&call, PG_GETARG_DATUM(0),
											 PG_GETARG_DATUM(1), fingerprint);
			pgi_ledger_id_remember_returned(&call, name);
		}
		if (inserted)
		{
			result = true;
			break;
		}
		if (!known)
			pgi_ledger_lookup(&call, name);
		if (pgi_ledger_key_read(&call, key, false, &k))
		{
			check_fingerprint(&call, key, &k, fingerprint);
			(void) pgi_ledger_transition(LE_RECORD, k.status, false, false,
										 name, key);
			break;
		}
		/* deleted between the two statements (or hidden): try again */
	}
	SPI_finish();
	PG_RETURN_BOOL(result);
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
	pgi_ledger_lookup_for(&call, name, true);
	pgi_ledger_sql_insert_keys(&call, keys, pgi_ledger_first_status(LE_RECORD));
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
	pgi_ledger_lookup_for(&call, name, true);
	pgi_ledger_sql_insert_keys(&call, keys,
							   pgi_ledger_first_status(LE_ENQUEUE));
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
	Datum		keytext;
	bytea	   *fingerprint = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	MemoryContext callcxt = CurrentMemoryContext;
	const char *outstatus;
	int64		token = 0;
	int32		attempts = 0;
	int			tries;
	Datum		out[4];
	bool		outnull[4] = {false, false, false, true};

	call_init(&call, fcinfo);
	SPI_connect();
	pgi_ledger_lookup_for(&call, name, true);
	keytext = CStringGetTextDatum(key);

	for (tries = 1;; tries++)
	{
		LedgerKey	k;
		LedgerMove	d;

		CHECK_FOR_INTERRUPTS();
		if (tries > KEY_TRIES)
			key_unreadable(&call, LE_CLAIM, key);
		if (!pgi_ledger_key_read(&call, key, true, &k))
		{
			d = pgi_ledger_transition(LE_CLAIM, LS_ABSENT, false, false,
									  name, key);
			if (d.outcome != LO_MOVE || d.to != LS_PROCESSING)
				elog(ERROR, "ledger state machine: a claim must create a processing key");
			if (!pgi_ledger_sql_insert_claim(&call, keytext, fingerprint,
											 &token))
				continue;		/* inserted by another session meanwhile (or
								 * hidden) */
			outstatus = "acquired";
			attempts = 1;
			break;
		}

		check_fingerprint(&call, key, &k, fingerprint);
		d = pgi_ledger_transition(LE_CLAIM, k.status,
								  pgi_ledger_key_waiting(&call, &k),
								  k.attempts >= call.max_attempts, name, key);
		if (d.outcome == LO_MOVE && d.to == LS_DEAD)
		{
			/* a key whose last lease ran out keeps that as its error */
			pgi_ledger_sql_expire(&call, keytext,
								  k.status == LS_PROCESSING ?
								  LEDGER_LEASE_RAN_OUT : NULL);
			outstatus = pgi_ledger_status_names[LS_DEAD];
			outnull[1] = true;
			attempts = k.attempts;
		}
		else if (d.outcome == LO_MOVE)
		{
			pgi_ledger_sql_update_claim(&call, keytext, fingerprint, &token,
										&attempts);
			outstatus = "acquired";
		}
		else
		{
			MemoryContext spicxt;

			outstatus = (d.outcome == LO_REFUSE) ? "busy" :
				pgi_ledger_status_names[k.status];
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
	 * The Datums are made only now: a token read as a Datum would point into
	 * the SPI result where int8 is passed by reference.
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
		pgi_ledger_lookup(&call, name);
		SPI_finish();
		return (Datum) 0;
	}
	pgi_ledger_sql_claim_next(&call, PG_GETARG_DATUM(0), n);
	if (SPI_processed == 0)
	{
		pgi_ledger_lookup(&call, name); /* 42704 if there is no such ledger */
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
	Datum		result_arg;
	bool		result = false;
	bool		moved;
	LedgerKey	k;
	LedgerMove	d;
	int32		id;

	pgi_require_arg(fcinfo, 2, "token");
	token = PG_GETARG_INT64(2);
	result_arg = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	call_init(&call, fcinfo);

	SPI_connect();
	if (pgi_ledger_id_usable(&call, name, &id))
	{
		/*
		 * A remembered id is only a shortcut here: the ledger dropped since
		 * has no keys left, and ids are never reused, so a stale one matches
		 * nothing and the slow path below finds the ledger by name.
		 */
		moved = pgi_ledger_sql_complete_by_id(&call, id, PG_GETARG_DATUM(1),
											  token, result_arg);
	}
	else
	{
		moved = pgi_ledger_sql_complete(&call, PG_GETARG_DATUM(0),
										PG_GETARG_DATUM(1), token,
										result_arg);
		pgi_ledger_id_remember_returned(&call, name);
	}
	if (moved)
		result = true;
	else
	{
		pgi_ledger_lookup(&call, name);
		if (pgi_ledger_key_read(&call, key, true, &k) && k.has_token &&
			k.token == token)
		{
			d = pgi_ledger_transition(LE_COMPLETE, k.status, false, false,
									  name, key);
			/* moved to a legal state the fast path did not cover */
			if (d.outcome == LO_MOVE)
				pgi_ledger_sql_set(&call, PG_GETARG_DATUM(1), d.to,
								   result_arg, (Datum) 0, false, 0);
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
 * read, and pgi_ledger_transition decides on each, as ledger_complete's
 * slow path does: an illegal transition is 55000, a repeat is a no-op.
 * The answer is then that second statement's keys, which include those
 * the first moved (they are done now, by this token).  A key the state
 * machine would still move (it changed between the two statements; we
 * hold its lock now) sends us round again, at most KEY_TRIES times: a
 * trigger on pgi_ledger_key that skips the update would send us round
 * forever.
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
	bool		again;
	int			rounds = 0;
	uint64		i;

	require_same_length(keys, tokens, "tokens");
	if (!PG_ARGISNULL(3))
	{
		results = array_arg(fcinfo, 3, "results", true);
		require_same_length(keys, results, "results");
	}
	store = srf_begin(fcinfo, &desc);
	call_init(&call, fcinfo);

	SPI_connect();
	if (nkeys == 0)
		pgi_ledger_lookup(&call, name); /* 42704 if there is no such ledger */
	do
	{
		CHECK_FOR_INTERRUPTS();
		if (++rounds > KEY_TRIES)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not complete keys of ledger \"%s\"", name),
					 errdetail_plural("Completing them was tried %d time, and some keys were left to complete each time.",
									  "Completing them was tried %d times, and some keys were left to complete each time.",
									  KEY_TRIES, KEY_TRIES),
					 errhint("A trigger on table \"%s\" may be skipping the update; otherwise retry the transaction.",
							 get_rel_name(pgi_ledger_tables(call.nspid)->keys))));
		again = false;
		pgi_ledger_sql_complete_batch(&call, PG_GETARG_DATUM(0), keys, tokens,
									  results);
		if (SPI_processed == (uint64) nkeys)
			break;
		if (call.name == NULL)
			pgi_ledger_lookup(&call, name);
		pgi_ledger_sql_complete_batch_rest(&call, keys, tokens);
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *key = pgi_spi_text(i, 1);
			LedgerMove	d;

			d = pgi_ledger_transition(LE_COMPLETE,
									  pgi_ledger_status_from_name(pgi_spi_text(i, 2)),
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
	LedgerMove	d;
	const char *result = NULL;

	pgi_require_arg(fcinfo, 2, "token");
	token = PG_GETARG_INT64(2);
	call_init(&call, fcinfo);
	SPI_connect();
	pgi_ledger_lookup(&call, name);
	if (pgi_ledger_key_read(&call, key, true, &k) && k.has_token &&
		k.token == token)
	{
		d = pgi_ledger_transition(LE_FAIL, k.status, false,
								  k.attempts >= call.max_attempts, name, key);
		if (d.outcome == LO_MOVE)
		{
			/*
			 * a failed key can be claimed again after its backoff; a dead one
			 * never
			 */
			pgi_ledger_sql_set(&call, CStringGetTextDatum(key), d.to,
							   (Datum) 0,
							   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
							   d.to == LS_FAILED,
							   pgi_ledger_retry_at(&call, k.attempts));
			result = pgi_ledger_status_names[d.to];
		}
		else
			result = pgi_ledger_status_names[k.status];
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
	pgi_ledger_lookup(&call, name);
	result = pgi_ledger_sql_heartbeat(&call, CStringGetTextDatum(key), token,
									  pgi_ledger_time_plus(call.now,
														   extend ? extend : call.lease));
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
	pgi_ledger_lookup(&call, name);
	found = pgi_ledger_key_read(&call, key, false, &k);
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(pgi_ledger_status_names[k.status]));
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
	uint64		i;
	int			s;

	store = srf_begin(fcinfo, &desc);
	call_init(&call, fcinfo);
	memset(counts, 0, sizeof(counts));
	SPI_connect();
	pgi_ledger_lookup(&call, name);
	pgi_ledger_sql_stats(&call);
	for (i = 0; i < SPI_processed; i++)
		counts[pgi_ledger_status_from_name(pgi_spi_text(i, 1))] =
			pgi_spi_int8(i, 2);
	SPI_finish();
	for (s = LS_PENDING; s < LS_COUNT; s++)
	{
		Datum		row[2];
		bool		rownull[2] = {false, false};

		row[0] = CStringGetTextDatum(pgi_ledger_status_names[s]);
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
	pgi_ledger_lookup(&call, name);
	count = pgi_ledger_sql_prune(&call,
								 pgi_ledger_time_minus(call.now,
													   older_than ? older_than : call.retention),
								 max_keys);
	SPI_finish();
	PG_RETURN_INT64(count);
}
