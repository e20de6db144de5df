/*-------------------------------------------------------------------------
 *
 * ledger_state.c
 *	  The ledger's state machine: what an event (record, enqueue, claim,
 *	  complete, fail, heartbeat) does to a key in a given status, and the
 *	  clock rules that go with it (when a lease or a retry backoff ends).
 *
 * The state machine lives here only: the transitions[] table and the rules
 * of pgi_ledger_decide().  The functions that decide key by key call
 * pgi_ledger_transition(); the set-based statements (claim_next, the fast
 * paths of complete and complete_batch) take the states they may move a
 * key from, and to what, out of pgi_ledger_decide() as a text[] parameter
 * (pgi_ledger_statuses_moved_to()).  Nothing here reads or writes a table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ledger.h"

const char *const pgi_ledger_status_names[LS_COUNT] = {
	"absent", "pending", "processing", "done", "failed", "dead"
};

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
 *	  max_attempts goes to dead instead (pgi_ledger_decide); claim of done
 *	  or dead keys reports them;
 *	- complete and fail run only with the key's current token (checked
 *	  before this table); repeating them is a no-op;
 *	- fail moves to failed, or to dead once attempts reach max_attempts
 *	  (pgi_ledger_decide);
 *	- heartbeat extends a processing key's lease and refuses otherwise.
 */
static const LedgerMove transitions[LE_COUNT][LS_COUNT] = {
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

/* The status a key the ledger did not have gets from an event. */
LedgerStatus
pgi_ledger_first_status(LedgerEvent event)
{
	return transitions[event][LS_ABSENT].to;
}

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
LedgerMove
pgi_ledger_decide(LedgerEvent event, LedgerStatus from, bool waiting,
				  bool exhausted)
{
	LedgerMove	d = transitions[event][from];

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
 * functions that decide key by key: pgi_ledger_decide, with an illegal
 * transition raised as an error.  Only complete and fail have illegal
 * transitions.
 */
LedgerMove
pgi_ledger_transition(LedgerEvent event, LedgerStatus from, bool waiting,
					  bool exhausted, const char *ledger, const char *key)
{
	LedgerMove	d = pgi_ledger_decide(event, from, waiting, exhausted);
	const char *status = pgi_ledger_status_names[from];

	if (d.outcome != LO_ILLEGAL)
		return d;
	if (event == LE_COMPLETE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot complete key \"%s\" of ledger \"%s\": it is %s",
						key, ledger, status),
				 errdetail("Ledger \"%s\", key \"%s\": the transition from %s to done is not allowed.",
						   ledger, key, status)));
	if (event == LE_FAIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot fail key \"%s\" of ledger \"%s\": it is %s",
						key, ledger, status),
				 errdetail("Ledger \"%s\", key \"%s\": the transition from %s to failed is not allowed.",
						   ledger, key, status)));
	elog(ERROR, "ledger state machine: event %d has no illegal transition",
		 (int) event);
	return d;					/* keep compiler quiet */
}

LedgerStatus
pgi_ledger_status_from_name(const char *name)
{
	int			s;

	for (s = LS_PENDING; s < LS_COUNT; s++)
	{
		if (strcmp(name, pgi_ledger_status_names[s]) == 0)
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

/*
 * A status as a text Datum, and, for the set-based statements, the
 * statuses of known keys that an event moves to a given status (decided
 * by pgi_ledger_decide for a key that is not waiting), as a text[] Datum;
 * built once per backend.
 */
Datum
pgi_ledger_status_text(LedgerStatus status)
{
	static Datum cache[LS_COUNT];

	if (cache[status] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		cache[status] = CStringGetTextDatum(pgi_ledger_status_names[status]);
		MemoryContextSwitchTo(old);
	}
	return cache[status];
}

Datum
pgi_ledger_statuses_moved_to(LedgerEvent event, bool exhausted,
							 LedgerStatus to)
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
			LedgerMove	d = pgi_ledger_decide(event, (LedgerStatus) s, false,
											  exhausted);

			if (d.outcome == LO_MOVE && d.to == to)
				elems[n++] = CStringGetTextDatum(pgi_ledger_status_names[s]);
		}
		cache[event][exhausted][to] =
			PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
											TYPALIGN_INT));
		MemoryContextSwitchTo(old);
	}
	return cache[event][exhausted][to];
}

/* ----------------------------------------------------------------
 * The clock
 * ----------------------------------------------------------------
 */

TimestampTz
pgi_ledger_time_plus(TimestampTz t, Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(t),
												   IntervalPGetDatum(iv)));
}

TimestampTz
pgi_ledger_time_minus(TimestampTz t, Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(t),
												   IntervalPGetDatum(iv)));
}

/*
 * Whether the key cannot be claimed yet: a processing key's lease or a
 * failed key's retry backoff still runs.
 */
bool
pgi_ledger_key_waiting(const LedgerCall *call, const LedgerKey *k)
{
	return k->available_at != 0 && k->available_at > call->now;
}

/*
 * When a key that failed on attempt number `attempts` may be claimed
 * again: now + retry_backoff * 2^(attempts - 1), at most now +
 * retry_backoff_max.  Doubled by addition, stopping at the cap, so that
 * no step can overflow an interval that the cap itself does not.
 */
TimestampTz
pgi_ledger_retry_at(const LedgerCall *call, int32 attempts)
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
	return pgi_ledger_time_plus(call->now, delay);
}
