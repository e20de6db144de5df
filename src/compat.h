/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL majors pg_idempotent builds
 *	  against (15, 16, 17, 18), as named helpers.  No other file tests
 *	  PG_VERSION_NUM: a capability file calls the helper and reads the same
 *	  on every version.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGI_COMPAT_H
#define PGI_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "datatype/timestamp.h"
#include "utils/datetime.h"
#include "utils/elog.h"
#include "utils/guc.h"

/*
 * A function that never returns.  18 spells it pg_noreturn, written before
 * the declaration; 15 to 17 have only pg_attribute_noreturn(), which the
 * compilers we build with accept in that place too.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * DecodeDateTime: 16 added a DateTimeErrorExtra argument, which says more
 * about a failure than we report (the caller only answers "not a timestamp").
 */
static inline int
pgi_decode_datetime(char **field, int *ftype, int nf, int *dtype,
					struct pg_tm *tm, fsec_t *fsec, int *tz)
{
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra;

	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz, &extra);
#else

	/*
	 * Up to 15 an unknown time zone name is an ERROR thrown from inside the
	 * decoder; 16 returns it as a code like any other bad field.  Answer as
	 * 16 does, so a GUC check hook can refuse the value instead of throwing.
	 * The decoder only computes, so nothing needs cleaning up after it.
	 */
	MemoryContext cxt = CurrentMemoryContext;
	volatile int dterr = 0;

	PG_TRY();
	{
		dterr = DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		/* only the unknown zone; a cancel or out of memory goes on up */
		if (edata->sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
			PG_RE_THROW();
		FreeErrorData(edata);
		FlushErrorState();
		dterr = DTERR_BAD_FORMAT;
	}
	PG_END_TRY();
	return dterr;
#endif
}

/*
 * Memory for a GUC check hook's *extra.  The GUC machinery frees it, with
 * free() up to 15 and with guc_free() (a pfree in its own memory context)
 * from 16 on, so it must come from the allocator that matches: handing 16+
 * a malloc()ed block is "pfree called with invalid pointer" at the next
 * SET, or a crash at transaction end.  NULL when out of memory (the hook
 * then answers false, as the server's own hooks do).
 */
static inline void *
pgi_guc_extra_alloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/* Whether an interval is finite: 17 added infinite intervals. */
static inline bool
pgi_interval_is_finite(const Interval *iv)
{
#if PG_VERSION_NUM >= 170000
	return !INTERVAL_NOT_FINITE(iv);
#else
	return true;
#endif
}

/* index_beginscan: 18 added an argument for EXPLAIN's instrumentation. */
static inline IndexScanDesc
pgi_index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

#endif							/* PGI_COMPAT_H */
