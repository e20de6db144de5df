/*-------------------------------------------------------------------------
 *
 * callcache.c
 *	  What a call derived from the catalogs, kept per backend for the next
 *	  call of the same shape.
 *
 * A small call (one row, a micro-batch) spends more on finding its key,
 * matching columns and building its statements than on its rows.  None of
 * that changes between two calls of the same shape (the same function, the
 * same target and source relations by OID, the same options), so each
 * backend keeps it, in a memory context of its own per shape, and a
 * repeated call only looks it up.
 *
 * An entry is forgotten when anything it was derived from may have changed:
 *	- a relcache invalidation of either relation (ALTER TABLE, CREATE or
 *	  DROP INDEX, DROP, ANALYZE, and ALTER EXTENSION on the extension's own
 *	  tables all send one);
 *	- any change to types, casts, operators, functions or schemas (the
 *	  statements name types, casts' functions, operators and schemas as text;
 *	  ALTER EXTENSION ... UPDATE replaces functions), which forgets every
 *	  entry: such changes are rare next to calls.
 * search_path is not part of a shape: relations come as OIDs, resolved by
 * the caller before the call, and everything kept is schema-qualified (the
 * plan cache itself replans a statement for a new search_path).
 * Callers look entries up after locking their relations, which is when
 * PostgreSQL delivers the invalidations of concurrent DDL, so an entry that
 * is found is current.  Privileges are not part of an entry: each call
 * checks them as its caller, and so does the executor at each run.
 *
 * The cache is bounded: PGI_CALL_CACHE_SIZE shapes, the least recently
 * used forgotten first, so memory does not grow with the number of tables a
 * session writes to.  An entry in use by a call (pinned) is never freed
 * under it: a forgotten entry is freed when its last user releases it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "pg_idempotent.h"

#define PGI_CALL_CACHE_SIZE 32

struct PgiCallShape
{
	char	   *key;			/* NULL: slot unused */
	Size		keylen;
	uint32		hash;
	Oid			relids[2];
	bool		stale;			/* forgotten: free when no longer pinned */
	int			pins;			/* calls using it now */
	uint64		used;			/* for evicting the least recently used */
	MemoryContext cxt;			/* the entry and everything its user keeps */
	void	   *data;			/* the user's, NULL until stored */
};

static PgiCallShape *shapes[PGI_CALL_CACHE_SIZE];
static uint64 shapes_clock;
static MemoryContext shapes_cxt;

/* Every syscache whose change can make a kept statement or message wrong. */
static const int shape_syscaches[] = {TYPEOID, CASTSOURCETARGET, OPEROID,
PROCOID, NAMESPACEOID};

static void
shape_free(int slot)
{
	PgiCallShape *s = shapes[slot];

	shapes[slot] = NULL;
	MemoryContextDelete(s->cxt);
}

static void
shapes_forget_rel(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < PGI_CALL_CACHE_SIZE; i++)
	{
		PgiCallShape *s = shapes[i];

		if (s != NULL &&
			(!OidIsValid(relid) || s->relids[0] == relid || s->relids[1] == relid))
			s->stale = true;
	}
}

static void
shapes_forget_all(Datum arg, int cacheid, uint32 hashvalue)
{
	shapes_forget_rel(arg, InvalidOid);
}

/* free what is forgotten and unpinned */
static void
shapes_sweep(void)
{
	int			i;

	for (i = 0; i < PGI_CALL_CACHE_SIZE; i++)
	{
		if (shapes[i] != NULL && shapes[i]->stale && shapes[i]->pins == 0)
			shape_free(i);
	}
}

/*
 * The entry for a call shape (key: keylen bytes the caller builds from
 * what identifies the shape, with the OIDs of its relations in relids,
 * InvalidOid where there is none), pinned until pgi_call_cache_release.
 * Its data is NULL when the shape is new: the caller derives what it
 * needs and keeps it with pgi_call_cache_store.  Must be called after the
 * relations are locked.
 */
PgiCallShape *
pgi_call_cache_get(const char *key, Size keylen, const Oid *relids)
{
	uint32		hash = hash_bytes((const unsigned char *) key, keylen);
	PgiCallShape *s;
	int			victim = -1;
	int			i;

	if (shapes_cxt == NULL)
	{
		shapes_cxt = AllocSetContextCreate(TopMemoryContext,
										   "pg_idempotent call cache",
										   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(shapes_forget_rel, (Datum) 0);
		for (i = 0; i < (int) lengthof(shape_syscaches); i++)
			CacheRegisterSyscacheCallback(shape_syscaches[i], shapes_forget_all,
										  (Datum) 0);
	}
	shapes_sweep();
	for (i = 0; i < PGI_CALL_CACHE_SIZE; i++)
	{
		s = shapes[i];
		if (s != NULL && !s->stale && s->hash == hash && s->keylen == keylen &&
			memcmp(s->key, key, keylen) == 0)
		{
			s->pins++;
			s->used = ++shapes_clock;
			return s;
		}
	}
	for (i = 0; i < PGI_CALL_CACHE_SIZE; i++)
	{
		s = shapes[i];
		if (s == NULL)
		{
			victim = i;
			break;
		}
		if (s->pins == 0 && (victim < 0 || s->used < shapes[victim]->used))
			victim = i;
	}

	/*
	 * Every slot in use by a call running now (nested calls, from triggers):
	 * forget the least recently used anyway; it is freed when released.
	 */
	if (victim < 0)
	{
		victim = 0;
		for (i = 1; i < PGI_CALL_CACHE_SIZE; i++)
		{
			if (shapes[i]->used < shapes[victim]->used)
				victim = i;
		}
		shapes[victim]->stale = true;
		shapes[victim] = NULL;
	}
	else if (shapes[victim] != NULL)
		shape_free(victim);

	{
		MemoryContext cxt = AllocSetContextCreate(shapes_cxt,
												  "pg_idempotent call shape",
												  ALLOCSET_SMALL_SIZES);

		s = MemoryContextAllocZero(cxt, sizeof(PgiCallShape));
		s->cxt = cxt;
		s->key = MemoryContextAlloc(cxt, keylen);
		memcpy(s->key, key, keylen);
		s->keylen = keylen;
		s->hash = hash;
		s->relids[0] = relids[0];
		s->relids[1] = relids[1];
		s->pins = 1;
		s->used = ++shapes_clock;
		shapes[victim] = s;
	}
	return s;
}

/* The caller's data of an entry, NULL until stored. */
void *
pgi_call_cache_data(PgiCallShape *s)
{
	return s->data;
}

/* The memory context to keep the caller's data in; lives as long as the entry. */
MemoryContext
pgi_call_cache_context(PgiCallShape *s)
{
	return s->cxt;
}

void
pgi_call_cache_store(PgiCallShape *s, void *data)
{
	s->data = data;
}

/*
 * Unpin an entry; one forgotten meanwhile (or evicted while pinned) is
 * freed now if no other call uses it.
 */
void
pgi_call_cache_release(PgiCallShape *s)
{
	int			i;

	Assert(s->pins > 0);
	s->pins--;
	if (s->pins > 0 || !s->stale)
		return;
	for (i = 0; i < PGI_CALL_CACHE_SIZE; i++)
	{
		if (shapes[i] == s)
		{
			shape_free(i);
			return;
		}
	}
	/* evicted while pinned: no slot holds it any more */
	MemoryContextDelete(s->cxt);
}
