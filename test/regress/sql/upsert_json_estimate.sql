-- idempotent_upsert_json tells the planner how many objects a large batch
-- holds (src/upsert_source.c, json_rows_call).  jsonb_to_recordset alone is
-- planned as 100 rows whatever the array holds, and a batch as large as its
-- table was then joined to it by one probe of the key's index per row.
SET client_min_messages = warning;
\set VERBOSITY terse

-- the helper's estimate is the planner's row count; without a constant
-- estimate, jsonb_to_recordset's own (100)
CREATE FUNCTION pg_temp.plan_rows(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || stmt INTO plan;
	RETURN (plan->0->'Plan'->>'Node Type') || ' ' || (plan->0->'Plan'->>'Plan Rows');
END $$;
SELECT pg_temp.plan_rows($$SELECT * FROM pgi_internal._jsonb_to_recordset('[{"a": 1}]', 65536) AS s(a int)$$);
SELECT pg_temp.plan_rows($$SELECT * FROM pgi_internal._jsonb_to_recordset('[{"a": 1}]', 4096::bigint + 0) AS s(a int)$$);
PREPARE est(bigint) AS SELECT * FROM pgi_internal._jsonb_to_recordset('[{"a": 1}]', $1) AS s(a int);
SET plan_cache_mode = force_generic_plan;
SELECT pg_temp.plan_rows($$EXECUTE est(65536)$$);
RESET plan_cache_mode;
DEALLOCATE est;
-- and it returns exactly what jsonb_to_recordset returns
SELECT * FROM pgi_internal._jsonb_to_recordset('[{"a": 1, "b": "x"}, {"a": 2}, {}]', 1) AS s(a int, b text);
SELECT count(*) FROM pgi_internal._jsonb_to_recordset(NULL, 1) AS s(a int);
SELECT * FROM pgi_internal._jsonb_to_recordset('{"a": 1}', 1) AS s(a int);

-- A table whose sequential scan is dear next to 100 index probes (few
-- rows to a page), and a replay of half of it: the batch is not small
-- against the table, so the planner chooses the join.  Told the batch's
-- size, it reads the table once; planned as 100 rows, it probed the key's
-- index once per row.
CREATE TABLE je_t (id int PRIMARY KEY, a text, pad text) WITH (fillfactor = 10);
INSERT INTO je_t SELECT g, 'a' || g, repeat(md5(g::text), 12) FROM generate_series(1, 6000) g;
ANALYZE je_t;
CREATE TABLE je_docs (n int PRIMARY KEY, doc jsonb);
INSERT INTO je_docs SELECT n, (SELECT jsonb_agg(jsonb_build_object('id', g, 'a', 'a' || g))
	FROM generate_series(1, n) g)
FROM unnest('{10,1500,3000}'::int[]) n;

BEGIN;
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 3000));
SELECT pg_stat_get_xact_numscans('je_t_pkey'::regclass) < 100 AS no_index_probe_per_row;
COMMIT;

-- batches of other sizes on the same target and keys have shapes (and
-- statements) of their own, and each writes what it is given
UPDATE je_docs SET doc = (SELECT jsonb_agg(jsonb_build_object('id', g, 'a', 'b' || g))
	FROM generate_series(1, n) g);
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 10));
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 1500));
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 3000));
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 10));
SELECT * FROM idempotent_upsert_json('je_t', (SELECT doc FROM je_docs WHERE n = 3000));
SELECT count(*) FILTER (WHERE a = 'b' || id) AS written, count(*) FILTER (WHERE a = 'a' || id) AS untouched
FROM je_t;
-- a large batch into an empty table (the first load) and its replay
CREATE TABLE je_e (id int PRIMARY KEY, a text);
SELECT * FROM idempotent_upsert_json('je_e', (SELECT doc FROM je_docs WHERE n = 3000));
SELECT * FROM idempotent_upsert_json('je_e', (SELECT doc FROM je_docs WHERE n = 3000));
-- a look-alike in the extension's own schema is never what a call reads
CREATE FUNCTION _jsonb_to_recordset(jsonb, bigint) RETURNS SETOF record
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'planted _jsonb_to_recordset called'; END$$;
SELECT * FROM idempotent_upsert_json('je_e', (SELECT doc FROM je_docs WHERE n = 1500));
DROP FUNCTION _jsonb_to_recordset(jsonb, bigint);
-- a large batch's checks still see its duplicates and null keys
SELECT * FROM idempotent_upsert_json('je_e', (SELECT doc || '[{"id": 7, "a": "dup"}]' FROM je_docs WHERE n = 3000));
SELECT * FROM idempotent_upsert_json('je_e', (SELECT doc || '[{"a": "no key"}]' FROM je_docs WHERE n = 3000));

DROP TABLE je_t, je_docs, je_e;
