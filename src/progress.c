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
 * Whether a report of the step just done is due (pgi_progress_step): at
 * least pg_idempotent.progress_interval since the call began or since its
 * last report.  One clock read; the message is formatted only when due.
 */
bool
pgi_progress_due(PgiProgress *progress)
{
	TimestampTz now;

	CHECK_FOR_INTERRUPTS();
	if (pgi_progress_interval < 0)
		return false;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(progress->reported, now,
									pgi_progress_interval) &&
		pgi_progress_interval > 0)
		return false;
	progress->reported = now;
	return true;
}

/* The DETAIL of every report: how long the call has run. */
int
pgi_progress_errdetail(PgiProgress *progress)
{
	return errdetail("The call has run for %.1f s.",
					 (double) (progress->reported - progress->started) / 1000000.0);
}
