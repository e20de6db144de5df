-- Included by the pg_regress files that list errors: pg_temp.err(statement)
-- runs a statement and returns its SQLSTATE, message, DETAIL and HINT (or
-- 'no error'), so a file can show many errors as rows.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS OR assert_failure THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM
		|| coalesce(E'\n  DETAIL: ' || nullif(detail, ''), '')
		|| coalesce(E'\n  HINT: ' || nullif(hint, ''), '');
END $$;
