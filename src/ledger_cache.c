/*-------------------------------------------------------------------------
 *
 * ledger_cache.c
 *	  What a backend remembers between ledger calls, and when it forgets:
 *	  the extension's two ledger tables (and pgi_ledger's layout), and the
 *	  ids of the last few ledgers it used, by name.  Both are forgotten on
 *	  any relcache invalidation of either table: ALTER EXTENSION UPDATE
 *	  adding columns, DROP EXTENSION, ledger_drop (which sends one on
 *	  purpose).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "ledger.h"

/*
 * The tables, looked up once per backend: every ledger call needs them,
 * and three catalog lookups a call were a measurable part of ledger_record.
 */
static LedgerTables ledger_tables_known;
static bool ledger_cache_registered;

static void ledger_cache_forget(Datum arg, Oid relid);

const LedgerTables *
pgi_ledger_tables(Oid nspid)
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
bool
pgi_ledger_keys_lock(LedgerCall *call, AclMode privilege, LOCKMODE lockmode)
{
	Oid			relid = pgi_ledger_tables(call->nspid)->keys;

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
	(void) pgi_ledger_tables(call->nspid);
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
bool
pgi_ledger_id_usable(LedgerCall *call, const char *name, int32 *id)
{
	return ledger_id_cached(call, name, id) &&
		pg_class_aclcheck(pgi_ledger_tables(call->nspid)->ledger, GetUserId(),
						  ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Remember the ledger id the statement by name just returned (the first
 * column of its first row), under READ COMMITTED only: the statement
 * locked pgi_ledger_key before taking its snapshot, which a transaction
 * snapshot may predate.
 */
void
pgi_ledger_id_remember_returned(LedgerCall *call, const char *name)
{
	bool		isnull;

	if (SPI_processed == 0 || IsolationUsesXactSnapshot())
		return;
	ledger_id_remember(call, name,
					   DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull)));
}

/* Every backend forgets its ledger ids when this transaction commits. */
void
pgi_ledger_id_forget_everywhere(LedgerCall *call)
{
	CacheInvalidateRelcacheByRelid(pgi_ledger_tables(call->nspid)->ledger);
}
