/*-------------------------------------------------------------------------
 *
 * runtime.c
 *	  run_time() and run_date(): the pipeline's logical time, in place of
 *	  now() in loaded data.
 *
 * The orchestrator sets pg_idempotent.run_time for a run (Airflow's ts,
 * dbt's run_started_at); a column default of run_time() then writes the
 * same value on every retry of that run, where now() would write a new one.
 *
 * The value is parsed once, when it is set, by the setting's check hook: a
 * value that is not a timestamp is refused at SET time, not at the first
 * row that reads it.  A timestamp written without a zone is taken as UTC,
 * and the parsed instant is what is kept, so neither TimeZone at SET time
 * nor TimeZone at read time changes what run_time() returns.  Relative
 * words (now, today, tomorrow, yesterday) are refused: their meaning changes
 * from one run to the next, which is what the setting exists to prevent.
 * Unset, run_time() is an error, never a silent fallback to the clock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_run_time);
PG_FUNCTION_INFO_V1(pgi_run_date);

static char *run_time_setting = NULL;
static bool run_time_is_set = false;
static TimestampTz run_time_value = 0;

static bool
contains_word(const char *str, const char *word)
{
	size_t		len = strlen(word);
	const char *p;

	for (p = str; *p; p++)
	{
		if (pg_strncasecmp(p, word, len) == 0)
			return true;
	}
	return false;
}

/*
 * Parse a timestamp with zone, taking a value without a zone as UTC.  Uses
 * the datetime decoder's return codes rather than timestamptz_in, because a
 * check hook should answer false, not throw.
 */
static bool
parse_run_time(const char *str, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	int			dterr;
	struct pg_tm tm;
	fsec_t		fsec;
	pg_tz	   *saved = session_timezone;
	pg_tz	   *utc;

	if (strlen(str) >= MAXDATELEN)
		return false;
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;

	utc = pg_tzset("UTC");
	if (utc == NULL)
		return false;

	/* the decoder fills in a missing zone from session_timezone */
	PG_TRY();
	{
		session_timezone = utc;
		dterr = pgi_decode_datetime(field, ftype, nf, &dtype, &tm, &fsec, &tz);
	}
	PG_FINALLY();
	{
		session_timezone = saved;
	}
	PG_END_TRY();
	if (dterr != 0)
		return false;

	switch (dtype)
	{
		case DTK_DATE:
			return tm2timestamp(&tm, fsec, &tz, result) == 0 &&
				IS_VALID_TIMESTAMP(*result);
		case DTK_EPOCH:
			*result = SetEpochTimestamp();
			return true;
		case DTK_LATE:
			TIMESTAMP_NOEND(*result);
			return true;
		case DTK_EARLY:
			TIMESTAMP_NOBEGIN(*result);
			return true;
	}
	return false;
}

static bool
check_run_time(char **newval, void **extra, GucSource source)
{
	TimestampTz value;
	TimestampTz *kept;

	if (*newval == NULL || **newval == '\0')
	{
		*extra = NULL;
		return true;
	}
	if (contains_word(*newval, "now") || contains_word(*newval, "today") ||
		contains_word(*newval, "tomorrow") || contains_word(*newval, "yesterday"))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("\"%s\" names a moment relative to the clock, which changes from one run to the next.",
							*newval);
		GUC_check_errhint("Set the run's logical time as an absolute timestamp, such as 2025-01-15 00:00:00+00.");
		return false;
	}
	if (!parse_run_time(*newval, &value))
	{
		GUC_check_errcode(ERRCODE_INVALID_DATETIME_FORMAT);
		GUC_check_errdetail("\"%s\" is not a timestamp.", *newval);
		GUC_check_errhint("Use a timestamp such as 2025-01-15 00:00:00+00; one without a time zone is taken as UTC.");
		return false;
	}
	/* the GUC machinery frees it: allocate as it expects to free */
	kept = pgi_guc_extra_alloc(sizeof(TimestampTz));
	if (kept == NULL)
		return false;
	*kept = value;
	*extra = kept;
	return true;
}

static void
assign_run_time(const char *newval, void *extra)
{
	run_time_is_set = (extra != NULL);
	if (extra != NULL)
		run_time_value = *(TimestampTz *) extra;
}

void
pgi_runtime_init(void)
{
	DefineCustomStringVariable("pg_idempotent.run_time",
							   "The logical time of the current pipeline run, returned by run_time().",
							   "Set it from the orchestrator for each run (for example Airflow's ts or dbt's run_started_at). "
							   "A timestamp without a time zone is taken as UTC.",
							   &run_time_setting,
							   "",
							   PGC_USERSET,
							   0,
							   check_run_time,
							   assign_run_time,
							   NULL);
}

/* run_time(), for C callers (idempotent_history's default as_of) */
TimestampTz
pgi_current_run_time(void)
{
	if (!run_time_is_set)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_idempotent.run_time is not set"),
				 errdetail("run_time() returns the logical time of the pipeline run, which only the orchestrator knows."),
				 errhint("Set it for the run, for example SET pg_idempotent.run_time = '2025-01-15 00:00:00+00', "
						 "or SELECT set_config('pg_idempotent.run_time', '2025-01-15 00:00:00+00', true) inside the run's transaction.")));
	return run_time_value;
}

/* run_time() RETURNS timestamptz */
Datum
pgi_run_time(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(pgi_current_run_time());
}

/* run_date() RETURNS date: the UTC calendar date of run_time() */
Datum
pgi_run_date(PG_FUNCTION_ARGS)
{
	TimestampTz ts = pgi_current_run_time();
	DateADT		result;

	if (TIMESTAMP_IS_NOBEGIN(ts))
		DATE_NOBEGIN(result);
	else if (TIMESTAMP_IS_NOEND(ts))
		DATE_NOEND(result);
	else
	{
		/* days since 2000-01-01 UTC, rounding toward the past */
		int64		days = ts / USECS_PER_DAY;

		if (ts < 0 && ts % USECS_PER_DAY != 0)
			days--;
		result = (DateADT) days;
	}
	PG_RETURN_DATEADT(result);
}
