/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The dedup ledger's types, and what its files share:
 *
 *	  ledger.c		 the SQL functions (ledger_create ... ledger_prune)
 *	  ledger_state.c the state machine: what an event does to a key
 *	  ledger_sql.c	 the statements, each with its parameters bound by
 *					 name, and the two layouts of pgi_ledger (0.1.0, 0.2.0)
 *	  ledger_cache.c what a backend remembers between calls (the ledger
 *					 tables, the ids of ledgers by name) and when it forgets
 *
 * ledger.c's header comment describes the ledger and its invariants.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGI_LEDGER_H
#define PGI_LEDGER_H

#include "pg_idempotent.h"

#include "datatype/timestamp.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/snapshot.h"

/* ledger_state.c: the state machine */

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

typedef enum LedgerOutcome
{
	LO_ILLEGAL = 0,				/* 55000 */
	LO_MOVE,					/* change to .to */
	LO_NOOP,					/* already there: change nothing, succeed */
	LO_REFUSE					/* change nothing, report (busy, no lease) */
} LedgerOutcome;

/* What an event does to a key: an entry of the table, and a decision. */
typedef struct LedgerMove
{
	LedgerOutcome outcome;
	LedgerStatus to;
} LedgerMove;

/* The statuses as ledger_status returns them, "absent" for LS_ABSENT. */
extern const char *const pgi_ledger_status_names[LS_COUNT];

extern LedgerStatus pgi_ledger_first_status(LedgerEvent event);
extern LedgerMove pgi_ledger_decide(LedgerEvent event, LedgerStatus from,
									bool waiting, bool exhausted);
extern LedgerMove pgi_ledger_transition(LedgerEvent event, LedgerStatus from,
										bool waiting, bool exhausted,
										const char *ledger, const char *key);
extern LedgerStatus pgi_ledger_status_from_name(const char *name);
extern Datum pgi_ledger_status_text(LedgerStatus status);
extern Datum pgi_ledger_statuses_moved_to(LedgerEvent event, bool exhausted,
										  LedgerStatus to);

/* What one call works with. */
typedef struct LedgerCall
{
	Oid			nspid;			/* the extension's schema */
	TimestampTz now;			/* the wall clock, once per call */
	char	   *name;			/* ledger name; NULL until looked up */
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

extern bool pgi_ledger_key_waiting(const LedgerCall *call, const LedgerKey *k);
extern TimestampTz pgi_ledger_retry_at(const LedgerCall *call, int32 attempts);
extern TimestampTz pgi_ledger_time_plus(TimestampTz t, Interval *iv);
extern TimestampTz pgi_ledger_time_minus(TimestampTz t, Interval *iv);

/* ledger_cache.c: what a backend remembers between calls */

/* The extension's two ledger tables, and pgi_ledger's layout. */
typedef struct LedgerTables
{
	Oid			nspid;			/* the extension's schema; invalid: unknown */
	Oid			ledger;			/* pgi_ledger */
	Oid			keys;			/* pgi_ledger_key */
	bool		retry;			/* pgi_ledger has 0.2.0's retry_backoff */
} LedgerTables;

extern const LedgerTables *pgi_ledger_tables(Oid nspid);
extern bool pgi_ledger_keys_lock(LedgerCall *call, AclMode privilege,
								 LOCKMODE lockmode);
extern bool pgi_ledger_id_usable(LedgerCall *call, const char *name,
								 int32 *id);
extern void pgi_ledger_id_remember_returned(LedgerCall *call,
											const char *name);
extern void pgi_ledger_id_forget_everywhere(LedgerCall *call);

/* ledger_sql.c: the statements */

/* the error a key made dead by its last lease running out is left with */
#define LEDGER_LEASE_RAN_OUT "the lease of its last attempt ran out"

extern void pgi_ledger_lookup_for(LedgerCall *call, char *name,
								  bool for_insert);
extern void pgi_ledger_lookup(LedgerCall *call, char *name);
extern bool pgi_ledger_key_read(LedgerCall *call, const char *key, bool lock,
								LedgerKey *k);

extern void pgi_ledger_sql_create(LedgerCall *call, const char *name,
								  Interval *lease, int32 max_attempts,
								  Interval *retention, Interval *retry_backoff,
								  Interval *retry_backoff_max);
extern int32 pgi_ledger_sql_drop(LedgerCall *call, const char *name);
extern void pgi_ledger_sql_drop_keys(LedgerCall *call, int32 id);
extern bool pgi_ledger_sql_record(LedgerCall *call, Datum name, Datum key,
								  bytea *fingerprint);
extern bool pgi_ledger_sql_record_by_id(LedgerCall *call, int32 id, Datum key,
										bytea *fingerprint, Snapshot snapshot);
extern void pgi_ledger_sql_insert_keys(LedgerCall *call, ArrayType *keys,
									   LedgerStatus status);
extern bool pgi_ledger_sql_insert_claim(LedgerCall *call, Datum key,
										bytea *fingerprint, int64 *token);
extern void pgi_ledger_sql_update_claim(LedgerCall *call, Datum key,
										bytea *fingerprint, int64 *token,
										int32 *attempts);
extern void pgi_ledger_sql_expire(LedgerCall *call, Datum key,
								  const char *error);
extern bool pgi_ledger_sql_complete(LedgerCall *call, Datum name, Datum key,
									int64 token, Datum result);
extern bool pgi_ledger_sql_complete_by_id(LedgerCall *call, int32 id,
										  Datum key, int64 token,
										  Datum result);
extern void pgi_ledger_sql_set(LedgerCall *call, Datum key,
							   LedgerStatus status, Datum result, Datum error,
							   bool has_available_at,
							   TimestampTz available_at);
extern bool pgi_ledger_sql_heartbeat(LedgerCall *call, Datum key, int64 token,
									 TimestampTz until);
extern void pgi_ledger_sql_claim_next(LedgerCall *call, Datum name, int32 n);
extern void pgi_ledger_sql_complete_batch(LedgerCall *call, Datum name,
										  ArrayType *keys, ArrayType *tokens,
										  ArrayType *results);
extern void pgi_ledger_sql_complete_batch_rest(LedgerCall *call,
											   ArrayType *keys,
											   ArrayType *tokens);
extern void pgi_ledger_sql_stats(LedgerCall *call);
extern int64 pgi_ledger_sql_prune(LedgerCall *call, TimestampTz before,
								  int32 max_keys);

#endif							/* PGI_LEDGER_H */
