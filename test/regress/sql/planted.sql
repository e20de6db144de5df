-- Planted overloads: nothing another role creates can stand in for what
-- the extension calls.
--
-- The SQL the extension builds at run time calls helpers of its own by
-- name: the fingerprint aggregate (table_fingerprint, assert_idempotent)
-- and the row image of the diff mode (the replace family).  A role that
-- may CREATE in the extension's schema (PostgreSQL 14 and older grant that
-- on public to every role) can create a function whose argument types
-- match the call exactly, which PostgreSQL prefers to one taking record or
-- VARIADIC "any": the next call of a superuser would run it.  Here such a
-- role plants exact-type overloads of every helper; each would log that it
-- ran and return a wrong answer.  None may run, and every result must be
-- the right one.

-- the extension's schema, whatever it is
SELECT n.nspname AS extschema FROM pg_extension e
	JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE e.extname = 'pg_idempotent' \gset

CREATE SCHEMA regress_planted;
SET search_path = regress_planted, public;
CREATE TABLE sales (day date NOT NULL, store_id int NOT NULL, units int NOT NULL);
INSERT INTO sales SELECT '2025-01-15', s, 1 FROM generate_series(1, 5) s;
INSERT INTO sales SELECT '2025-01-16', s, 1 FROM generate_series(1, 5) s;
-- the replacement for 2025-01-15: as many rows, other values
CREATE TABLE sales_stage (day date, store_id int, units int);
INSERT INTO sales_stage SELECT '2025-01-15', s, 2 FROM generate_series(1, 5) s;
-- what a planted function writes when it runs (with its caller's rights)
CREATE TABLE ran (what text);
GRANT INSERT ON ran TO PUBLIC;

-- the planter: CREATE on the extension's schema, nothing else
CREATE ROLE regress_planted_mallory;
GRANT CREATE ON SCHEMA :"extschema" TO regress_planted_mallory;
GRANT USAGE ON SCHEMA regress_planted TO regress_planted_mallory;
SET ROLE regress_planted_mallory;
-- _fingerprint_agg(t.*) for a row of sales: an aggregate over exactly that type
CREATE FUNCTION :"extschema".regress_planted_fp_step(text, regress_planted.sales)
	RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO regress_planted.ran VALUES ('_fingerprint_agg(sales)'); RETURN 'planted'; END$$;
CREATE AGGREGATE :"extschema"._fingerprint_agg(regress_planted.sales) (
	SFUNC = :"extschema".regress_planted_fp_step, STYPE = text, INITCOND = 'planted');
-- _replace_image(s.day, s.store_id, s.units): a constant, so every row of
-- the slice would look like every row of the source
CREATE FUNCTION :"extschema"._replace_image(date, int, int) RETURNS bytea
	LANGUAGE plpgsql AS
$$BEGIN INSERT INTO regress_planted.ran VALUES ('_replace_image(date, int, int)'); RETURN '\x00'; END$$;
-- an overload with a defaulted extra argument would make even an exact
-- match ambiguous: every call would fail
CREATE FUNCTION :"extschema"._fingerprint_agg(record, int DEFAULT 0) RETURNS text
	LANGUAGE plpgsql AS
$$BEGIN INSERT INTO regress_planted.ran VALUES ('_fingerprint_agg(record, int)'); RETURN 'planted'; END$$;
-- the extension's own helpers live in a schema nobody else may create in
CREATE FUNCTION pgi_internal._replace_image(date, int, int) RETURNS bytea
	LANGUAGE sql AS $$SELECT '\x00'::bytea$$;
RESET ROLE;

-- the planted objects are there, and PostgreSQL would pick them over the
-- extension's for a call by name
SELECT p.oid::regprocedure::text AS planted FROM pg_proc p
	WHERE p.proowner = 'regress_planted_mallory'::regrole ORDER BY 1;

-- table_fingerprint: the extension's aggregate, not the planted one
SELECT table_fingerprint('sales') ~ '^[0-9a-f]{32}$' AS is_a_fingerprint,
	table_fingerprint('sales') = table_fingerprint('sales') AS stable;
CREATE TABLE sales_copy AS SELECT * FROM sales;
SELECT table_fingerprint('sales') = table_fingerprint('sales_copy') AS equal_contents_equal_fingerprints;
INSERT INTO sales_copy VALUES ('2025-01-17', 1, 1);
SELECT table_fingerprint('sales') <> table_fingerprint('sales_copy') AS other_contents_other_fingerprints;

-- assert_idempotent: a statement that is not idempotent is still caught
-- (and rolled back), one that is passes
\set VERBOSITY terse
SELECT assert_idempotent('INSERT INTO regress_planted.sales VALUES (''2025-01-18'', 1, 1)', 'sales');
\set VERBOSITY default
SELECT assert_idempotent('DELETE FROM regress_planted.sales WHERE day = ''2025-01-18''', 'sales');

-- diff-mode replace: the slice ends holding exactly the source's rows
SELECT * FROM replace_partition('sales', 'sales_stage', 'day', date '2025-01-15', 'diff');
SELECT day, store_id, units FROM sales ORDER BY day, store_id;
-- and an identical re-run writes nothing
SELECT * FROM replace_partition('sales', 'sales_stage', 'day', date '2025-01-15', 'diff');

-- none of the planted code ran
SELECT what AS planted_code_that_ran, count(*) FROM ran GROUP BY 1 ORDER BY 1;

-- clean up
DROP AGGREGATE :"extschema"._fingerprint_agg(regress_planted.sales);
DROP FUNCTION :"extschema".regress_planted_fp_step(text, regress_planted.sales);
DROP FUNCTION :"extschema"._replace_image(date, int, int);
DROP FUNCTION :"extschema"._fingerprint_agg(record, int);
REVOKE CREATE ON SCHEMA :"extschema" FROM regress_planted_mallory;
REVOKE USAGE ON SCHEMA regress_planted FROM regress_planted_mallory;
DROP ROLE regress_planted_mallory;
RESET search_path;
DROP SCHEMA regress_planted CASCADE;
