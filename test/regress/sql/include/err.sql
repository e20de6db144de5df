-- Included by the pg_regress files that list errors.  pg_temp.err(stmt)
-- runs a statement and returns "SQLSTATE: message" with DETAIL and HINT,
-- or "ok" with the first value it returned, so a file can show many
-- errors as rows.  assert_failure (P0004) is not among OTHERS, hence the
-- explicit OR.  An internal error (class XX) also raises a WARNING naming
-- the statement, so it cannot pass unnoticed.  Written with qualified
-- operators and functions, so a hostile search_path cannot hijack the
-- helper itself; OIDs in messages are masked so the output is stable.
--
-- Each call is counted in temporary sequences (calls, calls_failed,
-- calls_internal), which a rollback does not undo, for a file that shows
-- the tally; every role may call err().
CREATE TEMP SEQUENCE calls;
CREATE TEMP SEQUENCE calls_failed;
CREATE TEMP SEQUENCE calls_internal;
GRANT USAGE ON SEQUENCE calls, calls_failed, calls_internal TO PUBLIC;
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
	msg text;
	res text;
BEGIN
	PERFORM pg_catalog.nextval('pg_temp.calls');
	BEGIN
		IF stmt OPERATOR(pg_catalog.~*) '^\s*(SELECT|VALUES|TABLE|WITH)\M' THEN
			EXECUTE stmt INTO res;
		ELSE
			EXECUTE stmt;
		END IF;
		RETURN 'ok' OPERATOR(pg_catalog.||) COALESCE(': ' OPERATOR(pg_catalog.||) res, '');
	EXCEPTION WHEN OTHERS OR assert_failure THEN
		GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
		PERFORM pg_catalog.nextval('pg_temp.calls_failed');
		IF pg_catalog.left(SQLSTATE, 2) OPERATOR(pg_catalog.=) 'XX' THEN
			PERFORM pg_catalog.nextval('pg_temp.calls_internal');
			RAISE WARNING 'internal error % from: %', SQLSTATE, stmt;
		END IF;
		msg := SQLSTATE OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) SQLERRM;
		IF detail OPERATOR(pg_catalog.<>) '' THEN
			msg := msg OPERATOR(pg_catalog.||) E'\n  DETAIL: ' OPERATOR(pg_catalog.||) detail;
		END IF;
		IF hint OPERATOR(pg_catalog.<>) '' THEN
			msg := msg OPERATOR(pg_catalog.||) E'\n  HINT: ' OPERATOR(pg_catalog.||) hint;
		END IF;
		RETURN pg_catalog.regexp_replace(msg, '(OID |pg_toast_)[0-9]+', '\1N', 'g');
	END;
END $$;
-- The tally of the calls so far: how many, how many failed, and how many
-- of those with an internal error (class XX).
CREATE FUNCTION pg_temp.tally(OUT calls bigint, OUT failed bigint,
	OUT internal_errors bigint) LANGUAGE sql AS $$
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.calls),
	(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.calls_failed),
	(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.calls_internal)
$$;
