/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  What a long operation is doing, said as it goes.
 *
 * Every operation is a handful of set-based statements, so the natural
 * points to report are between them: after a step, if at least
 * pg_idempotent.progress_interval has passed since the call began or since
 * its last report, a NOTICE says what was just done and how long the call
 * has run.  A call shorter than the interval says nothing, so the default
 * (10 s) is silent for the daily small batch and speaks for the backfill
 * that runs for minutes.  A step is one executor statement, and the
 * executor checks for interrupts as it goes, so cancel and
 * statement_timeout end any step promptly; the loops of our own that run
 * several statements check between them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "pg_idempotent.h"

static int	pgi_progress_interval = 10000;

void
pgi_progress_init(void)
{
	DefineCustomIntVariable("pg_idempotent.progress_interval",
							"How often a long pg_idempotent operation reports its progress.",
							"After each step, a NOTICE says what was done if this much time has "
							"passed since the call began or since its last report; 0 reports "
							"every step, -1 never.",
							&pgi_progress_interval, 10000, -1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

void
pgi_progress_begin(PgiProgress *progress, const char *operation,
				   const char *target)
{
	progress->operation = operation;
	progress->target = target;
	progress->started = GetCurrentTimestamp();
	progress->reported = progress->started;
}

/*
 * Report that a step is done, if a report is due.  The format is expanded
 * only then, so a call in a hot path costs one clock read.
 */
void
pgi_progress_step(PgiProgress *progress, const char *fmt,...)
{
	TimestampTz now;
	StringInfoData msg;

	CHECK_FOR_INTERRUPTS();
	if (pgi_progress_interval < 0)
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(progress->reported, now,
									pgi_progress_interval) &&
		pgi_progress_interval > 0)
		return;
	progress->reported = now;

	initStringInfo(&msg);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}
	ereport(NOTICE,
			(errmsg("%s on %s: %s", progress->operation, progress->target,
					msg.data),
			 errdetail("The call has run for %.1f s.",
					   (double) (now - progress->started) / 1000000.0)));
	pfree(msg.data);
}

/* "deleted 5 rows": the report of a step that wrote or read rows */
void
pgi_progress_rows(PgiProgress *progress, const char *verb, int64 rows)
{
	pgi_progress_step(progress, "%s %lld %s", verb, (long long) rows,
					  PGI_PLURAL(rows, "row", "rows"));
}
