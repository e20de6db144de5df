/* pg_idempotent_tap 0.1.0: install script */

\echo Use "CREATE EXTENSION pg_idempotent_tap" to load this file. \quit

/*
 * is_idempotent and isnt_idempotent return a pgTAP line, so they sit in a
 * pgTAP plan like any other assertion.  They call pg_idempotent's
 * assert_idempotent and pgTAP's ok() and diag() by their schemas, looked up
 * here at install time, so the caller's search_path cannot substitute other
 * functions (PostgreSQL 15 has no @extschema:name@ for required extensions).
 */
DO $install$
DECLARE
	pgi text := (SELECT n.nspname FROM pg_catalog.pg_extension e
				 JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
				 WHERE e.extname = 'pg_idempotent');
	tap text := (SELECT n.nspname FROM pg_catalog.pg_extension e
				 JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
				 WHERE e.extname = 'pgtap');
BEGIN
	EXECUTE pg_catalog.format($f$
CREATE FUNCTION is_idempotent(statement pg_catalog.text, tables pg_catalog.regclass[],
							  description pg_catalog.text DEFAULT NULL)
RETURNS pg_catalog.text
LANGUAGE plpgsql
AS $body$
DECLARE
	detail pg_catalog.text;
	what pg_catalog.text := COALESCE(description, 'statement is idempotent');
BEGIN
	BEGIN
		PERFORM %1$I.assert_idempotent(statement, VARIADIC tables);
	EXCEPTION WHEN assert_failure THEN
		GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
		RETURN %2$I.ok(false, what) OPERATOR(pg_catalog.||) E'\n'
			OPERATOR(pg_catalog.||) %2$I.diag(detail);
	END;
	RETURN %2$I.ok(true, what);
END
$body$;

CREATE FUNCTION isnt_idempotent(statement pg_catalog.text, tables pg_catalog.regclass[],
								description pg_catalog.text DEFAULT NULL)
RETURNS pg_catalog.text
LANGUAGE plpgsql
AS $body$
DECLARE
	what pg_catalog.text := COALESCE(description, 'statement is not idempotent');
BEGIN
	BEGIN
		PERFORM %1$I.assert_idempotent(statement, VARIADIC tables);
	EXCEPTION WHEN assert_failure THEN
		RETURN %2$I.ok(true, what);
	END;
	RETURN %2$I.ok(false, what) OPERATOR(pg_catalog.||) E'\n'
		OPERATOR(pg_catalog.||) %2$I.diag('A second run left every table unchanged.');
END
$body$;
$f$, pgi, tap);
END
$install$;

COMMENT ON FUNCTION is_idempotent(pg_catalog.text, pg_catalog.regclass[], pg_catalog.text) IS
'pgTAP: ok when running the statement a second time leaves the tables unchanged';
COMMENT ON FUNCTION isnt_idempotent(pg_catalog.text, pg_catalog.regclass[], pg_catalog.text) IS
'pgTAP: ok when running the statement a second time changes one of the tables';
