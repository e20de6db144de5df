-- Hostile input catalogue: bad and hostile calls of every function that
-- takes input (idempotent_upsert, idempotent_upsert_query,
-- idempotent_upsert_json, idempotent_key, stable_bucket, table_fingerprint,
-- _fingerprint_agg, assert_idempotent, run_time, run_date, replace_where's
-- predicate, and pg_idempotent_tap's is_idempotent), each printed with its
-- SQLSTATE; the replace family and the ledger have files of their own
-- (hostile_replace.sql, hostile_ledger.sql).  What the *_errors.sql files
-- show for one function is not repeated here: this file is about calls
-- across functions (NULL in every argument, odd names, a hostile
-- search_path, row-level security, privileges).
--
-- Every call goes through pg_temp.err (include/err.sql), which prints its
-- SQLSTATE and counts it; the last query shows the tally: the calls, the
-- bad calls among them that failed with a specific SQLSTATE (the others
-- are hostile calls that must succeed: odd names, look-alike objects on
-- the search_path, a shadowing temp table, RLS, column privileges), and
-- internal errors (class XX), of which there must be none.  No failed call
-- may leave a partial write: each group checks its table afterwards.
--
-- Subtransaction: some calls below fail inside the upsert's internal
-- subtransaction (its write step) and run between BEGIN and ROLLBACK.  They
-- once left the caller inside that subtransaction (the error was re-thrown
-- before the subtransaction was rolled back); section 4 checks that a call
-- failing there in autocommit mode leaves the session outside any
-- transaction.
--
-- Concurrent DROP of the target or source needs two sessions:
-- test/isolation/specs/upsert-concurrent-drop.spec.
--
-- To extend: add calls with pg_temp.err(...), and update the tally in the
-- expected output.

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on

-- everything this file creates lives in schemas it drops at the end, so
-- the tests that run after it in the same database see none of it
CREATE SCHEMA hostile;
SET search_path = hostile, public;

CREATE TABLE tgt (id int PRIMARY KEY, a text, v int, g int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO tgt (id, a, v) VALUES (1, 'kept', 1), (2, 'kept', 1);
CREATE TABLE src (id int, a text, v int);
INSERT INTO src VALUES (1, 'new', 2), (3, 'new', 2);
CREATE TABLE tgt_before AS SELECT id, a, v FROM tgt;
-- what every group below checks: tgt still holds exactly what it held
CREATE VIEW tgt_now AS SELECT id, a, v FROM tgt;

---------------------------------------------------------------------------
-- 1. NULL in every argument: 22004 where NULL has no meaning; key and
-- version_column may be NULL (they mean "find the key", "no version").
-- The NULLs upsert_errors.sql and replace_where.sql show are not repeated.
---------------------------------------------------------------------------
SELECT pg_temp.err($$SELECT idempotent_upsert(NULL, NULL, NULL, NULL, NULL, NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY['id', NULL])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => NULL, version_column => NULL, dry_run => true)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query(NULL, 'SELECT 1 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id', on_duplicate => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id', dry_run => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id', key => ARRAY[NULL]::text[])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json(NULL, '[{"id": 1}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', 'null')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[null]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[{"id": 1}]', on_duplicate => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[{"id": 1}]', dry_run => NULL)$$);
-- an empty batch still checks its options
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[]', dry_run => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[{"id": null}]')$$);
-- a NULL is a value for idempotent_key; a NULL argument list is not
SELECT pg_temp.err($$SELECT idempotent_key(NULL) IS NOT NULL$$);
SELECT pg_temp.err($$SELECT idempotent_key(VARIADIC NULL::int[])$$);
SELECT pg_temp.err($$SELECT stable_bucket(NULL::int, 4)$$);
SELECT pg_temp.err($$SELECT stable_bucket(1, NULL)$$);
SELECT pg_temp.err($$SELECT table_fingerprint(NULL)$$);
SELECT pg_temp.err($$SELECT assert_idempotent(NULL, 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', NULL::regclass)$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', VARIADIC NULL::regclass[])$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', 'tgt', NULL)$$);
SELECT pg_temp.err($$SELECT pgi_internal._fingerprint_agg(NULL::record) IS NOT NULL$$);
-- run_time unset, and "unset" spelled every way
SELECT pg_temp.err($$SELECT run_time()$$);
SELECT pg_temp.err($$SELECT run_date()$$);
SELECT pg_temp.err($$SELECT set_config('pg_idempotent.run_time', NULL, false)$$);
SELECT pg_temp.err($$SELECT run_time()$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = ''$$);
SELECT pg_temp.err($$SELECT run_date()$$);
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 2. unknown and wrong-kind relations: 42P01, 42809
---------------------------------------------------------------------------
CREATE TABLE dropped_one (id int PRIMARY KEY);
CREATE TABLE saved_oids AS SELECT 'dropped_one'::regclass::oid AS o;
DROP TABLE dropped_one;
SELECT pg_temp.err($$SELECT idempotent_upsert(0, 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 0)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert((SELECT o FROM saved_oids)::regclass, 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', (SELECT o FROM saved_oids)::regclass)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query((SELECT o FROM saved_oids)::regclass, 'SELECT 1 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json((SELECT o FROM saved_oids)::regclass, '[]')$$);
SELECT pg_temp.err($$SELECT table_fingerprint((SELECT o FROM saved_oids)::regclass)$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', 'tgt', (SELECT o FROM saved_oids)::regclass)$$);
-- an OID that exists, but in another catalog (pg_type's int4)
SELECT pg_temp.err($$SELECT idempotent_upsert(23, 'src')$$);
SELECT pg_temp.err($$SELECT table_fingerprint(4294967295::oid::regclass)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('no_such_table', 'src')$$);
-- wrong kinds
CREATE VIEW tgt_view AS SELECT id, a, v FROM tgt;
CREATE MATERIALIZED VIEW tgt_mv AS SELECT id, a, v FROM tgt;
CREATE SEQUENCE a_seq;
CREATE TYPE a_composite AS (id int, a text);
CREATE TABLE with_toast (id int PRIMARY KEY, a text);
CREATE TABLE toast_oid AS SELECT reltoastrelid AS o FROM pg_class WHERE oid = 'with_toast'::regclass;
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt_view', 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt_mv', 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('a_seq', 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt_pkey', 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('a_composite', 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert((SELECT o FROM toast_oid)::regclass, 'src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'a_seq')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'tgt_pkey')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'a_composite')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', (SELECT o FROM toast_oid)::regclass)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt_view', 'SELECT 1 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('a_seq', '[{"id": 1}]')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('a_seq')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('tgt_pkey')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('a_composite')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', 'tgt_pkey')$$);
-- a view and a materialized view are fine sources, and fingerprint too
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'tgt_view', dry_run => true)$$);
SELECT pg_temp.err($$SELECT table_fingerprint('tgt_mv') = table_fingerprint('tgt_view')$$);
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 3. dropped, generated, identity and system columns
---------------------------------------------------------------------------
CREATE TABLE holes (id int PRIMARY KEY, gone text, a text, gone2 int);
ALTER TABLE holes DROP COLUMN gone;
ALTER TABLE holes DROP COLUMN gone2;
CREATE TABLE holes_src (x int, id int, a text);
ALTER TABLE holes_src DROP COLUMN x;
-- the dropped columns' internal names are not columns
SELECT pg_temp.err($$SELECT idempotent_upsert_query('holes', 'SELECT 1 AS id, 2 AS "........pg.dropped.2........"')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('holes', '[{"id": 1, "........pg.dropped.4........": 1}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('holes', 'holes_src', key => ARRAY['........pg.dropped.2........'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('holes', 'holes_src', version_column => '........pg.dropped.2........')$$);
-- system columns are not columns either
SELECT pg_temp.err($$SELECT idempotent_upsert_query('holes', 'SELECT 1 AS id, ''(0,1)''::tid AS ctid')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('holes', 'holes_src', key => ARRAY['ctid'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('holes', 'holes_src', version_column => 'xmin')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('holes', '[{"id": 1, "tableoid": 1}]')$$);
-- generated and GENERATED ALWAYS identity columns cannot be written: 428C9
CREATE TABLE idents (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int GENERATED BY DEFAULT AS IDENTITY, a text);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id, 5 AS g')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('tgt', '[{"id": 1, "g": 5}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id, 5 AS g', key => ARRAY['id'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('idents', 'SELECT 1 AS id, ''x'' AS a')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('idents', '[{"id": 1, "a": "x"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', version_column => 'g')$$);
-- a table with dropped columns on both sides works; BY DEFAULT identity too
SELECT pg_temp.err($$SELECT idempotent_upsert('holes', 'holes_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('idents', 'SELECT 1 AS n, ''x'' AS a', key => ARRAY['n'])$$);
CREATE UNIQUE INDEX idents_n ON idents (n);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('idents', 'SELECT 1 AS n, ''x'' AS a', key => ARRAY['n'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('idents', 'SELECT 1 AS n, ''x'' AS a', key => ARRAY['n'])$$);
SELECT id, n, a FROM idents;
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 4. mismatched types, values that do not fit, domains with CHECKs:
-- nothing is written when any row fails
---------------------------------------------------------------------------
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE DOMAIN short_text AS varchar(3) NOT NULL;
CREATE TABLE typed (id int PRIMARY KEY, p positive, s short_text DEFAULT 'abc', n numeric(5,2), t timestamptz, j jsonb, arr int[]);
INSERT INTO typed VALUES (1, 1, 'one', 1.00, '2025-01-01 00:00+00', '{}', '{1}');
CREATE TABLE typed_before AS SELECT * FROM typed;
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, point(1,1) AS p')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, ''5''::text AS p')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, ''{"a":1}''::json AS arr')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT ''2''::text AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, 1 AS t')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, ARRAY[''a'']::text[] AS arr')$$);
-- the second row breaks the domain's CHECK, the first alone would not
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'VALUES (2, 5), (3, -1)')$$);
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT * FROM (VALUES (2, 5), (3, -1)) v(id, p)')$$);
ROLLBACK;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT * FROM (VALUES (1, 5), (3, 0)) v(id, p)')$$);
ROLLBACK;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, 1 AS p, NULL::text AS s')$$);
ROLLBACK;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT * FROM (VALUES (2, 1.5), (3, 12345.678)) v(id, n)')$$);
ROLLBACK;
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT * FROM (VALUES (2), (3000000000)) v(id)')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 1 AS id, ''NaN''::numeric AS n', dry_run => true)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2, "p": 5}, {"id": 3, "p": -1}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2.5}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": "two"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2, "t": "yesterday-ish"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2, "arr": {"not": "an array"}}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2, "arr": "{1,2"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 99999999999999999999}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"id": 2, "s": "abcd"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[[1, 2]]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '"[{\"id\": 2}]"')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"": 2}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('typed', '[{"ID": 2}]')$$);
-- a json column has no equality operator: fine as a value, not as a version
CREATE TABLE versioned (id int PRIMARY KEY, js json, x xml, v int);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('versioned', 'SELECT 1 AS id, ''{}''::json AS js', version_column => 'js')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('versioned', 'SELECT 1 AS id, NULL::xml AS x', version_column => 'x')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('versioned', 'SELECT 1 AS id, 1 AS v', version_column => '')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('versioned', 'SELECT 1 AS id, 1 AS v', version_column => 'V')$$);
-- option values
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', on_duplicate => 'LAST')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', on_duplicate => '')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', on_duplicate => 'last ')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY[['id']])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => '{}')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY[''])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY['ID'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY['id', 'a'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('tgt', 'src', key => ARRAY[repeat('x', 200)])$$);
-- stable_bucket and idempotent_key
SELECT pg_temp.err($$SELECT stable_bucket(1, 0)$$);
SELECT pg_temp.err($$SELECT stable_bucket(1, -2147483648)$$);
SELECT pg_temp.err($$SELECT stable_bucket(1, 2147483647) >= 0$$);
SELECT pg_temp.err($$SELECT stable_bucket('=r/postgres'::aclitem, 3)$$);
SELECT pg_temp.err($$SELECT idempotent_key('=r/postgres'::aclitem)$$);
SELECT pg_temp.err($$SELECT idempotent_key(1, ROW('=r/postgres'::aclitem))$$);
SELECT pg_temp.err($$SELECT idempotent_key(VARIADIC ARRAY[['a', 'b'], ['c', 'd']]) = idempotent_key('a', 'b', 'c', 'd')$$);
SELECT pg_temp.err($$SELECT idempotent_key(VARIADIC '{}'::int[]) IS NOT NULL$$);
SELECT pg_temp.err($$SELECT idempotent_key(1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101)$$);
SELECT pg_temp.err($$SELECT idempotent_key(NULL::void)$$);
SELECT pg_temp.err($$SELECT idempotent_key(ROW(1, ROW(2, ARRAY[ROW(3)::record])))$$);
-- a column type with no binary output cannot be fingerprinted: 42883
CREATE TABLE acl_holder (id int, acl aclitem[]);
INSERT INTO acl_holder VALUES (1, '{=r/postgres}');
SELECT pg_temp.err($$SELECT table_fingerprint('acl_holder')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('pg_class')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', 'acl_holder')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('acl_holder', 'SELECT 1 AS id')$$);
-- A value too long for a varchar(n) column is refused as an INSERT would
-- refuse it (22001), not truncated as an explicit CAST would; the JSON path
-- refuses it above too.  Run in a transaction that is rolled back, so typed
-- keeps its one row whatever happens.
BEGIN;
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 3 AS id, 1 AS p, ''toolong''::text AS s')$$);
SELECT id, s FROM typed WHERE id = 3;
ROLLBACK;
-- A call that fails in its write step, outside any transaction block,
-- leaves the session outside any transaction: the next statement starts a
-- transaction of its own.
SELECT pg_temp.err($$SELECT idempotent_upsert_query('typed', 'SELECT 2 AS id, 1 AS p, NULL::text AS s')$$);
SELECT xact_start = query_start AS fresh_transaction FROM pg_stat_activity WHERE pid = pg_backend_pid();
-- typed still holds only its first row
SELECT (SELECT count(*) FROM typed) AS typed_rows,
	(SELECT table_fingerprint('typed') = table_fingerprint('typed_before')) AS typed_intact;
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 5. queries: exactly one SELECT, no parameters, no side channel: 42601,
-- 42P02, 22023
---------------------------------------------------------------------------
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id; DROP TABLE src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'DROP TABLE src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'INSERT INTO src VALUES (9) RETURNING id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id) s0; DROP TABLE src; SELECT (1')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', '-- only a comment')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', ';')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id /* unterminated')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT $1 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 4 AS id INTO new_table')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT id FROM src FOR UPDATE')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'WITH d AS (DELETE FROM src RETURNING id) SELECT id FROM d')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1/0 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'VALUES (1)')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id, ''x'' AS a, 1 AS v UNION ALL SELECT 1, ''y'', 2')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'COMMIT')$$);
-- a valid SELECT ending in a line comment works (the generated SQL closes
-- the subquery on a new line)
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id, ''kept'' AS a, 1 AS v -- a comment', dry_run => true)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('tgt', 'SELECT 1 AS id, ''kept'' AS a, 1 AS v /* a comment */', dry_run => true)$$);
SELECT count(*) AS src_rows FROM src;
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 6. assert_idempotent: statements it refuses, statements that fail, and a
-- statement that drops what it watches
---------------------------------------------------------------------------
CREATE TABLE log (v text);
INSERT INTO log VALUES ('first');
SELECT pg_temp.err($$SELECT assert_idempotent('', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent(' ; -- nothing', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', VARIADIC '{}'::regclass[])$$);
SELECT pg_temp.err($$SELECT assert_idempotent('COMMIT', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('ROLLBACK', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SAVEPOINT s', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('COPY log FROM STDIN', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('COPY log TO STDOUT', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELEC 1', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1/0', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('INSERT INTO log VALUES (''x'')', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('INSERT INTO log VALUES (''x'')', 'log', 'tgt', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('UPDATE log SET v = clock_timestamp()::text', 'log', 'tgt')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('CREATE TABLE made_twice (a int)', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('DROP TABLE IF EXISTS log', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('ALTER TABLE log RENAME TO log2', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT assert_idempotent(''INSERT INTO log VALUES (1)'', ''log'')', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('VACUUM log', 'log')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SET LOCAL pg_idempotent.run_time = ''now''', 'log')$$);
CREATE TABLE tgt_copy (LIKE tgt INCLUDING ALL);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT * FROM idempotent_upsert(''tgt_copy'', ''src'')', 'tgt_copy')$$);
SELECT count(*) AS log_rows FROM log;
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

---------------------------------------------------------------------------
-- 7. run_time: values refused when set (22023, 22007), and what is kept
---------------------------------------------------------------------------
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-01-01 tomorrow'$$);
SELECT pg_temp.err($$SELECT set_config('pg_idempotent.run_time', 'yesterday', true)$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-13-45'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '300000-01-01'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = 'allballs'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-01-01 00:00 Mars/Olympus'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-01-01'';DROP TABLE src;--'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = 'infinity'$$);
SELECT pg_temp.err($$SELECT run_date()$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-06-30 23:30-05'$$);
SELECT pg_temp.err($$SELECT to_char(run_date(), 'YYYY-MM-DD')$$);
RESET pg_idempotent.run_time;

---------------------------------------------------------------------------
-- 8. names: 63 bytes, quotes, dots, spaces, unicode, reserved words,
-- mixed case, and would-be SQL in a name all work
---------------------------------------------------------------------------
CREATE SCHEMA "we""ird.schema";
CREATE TABLE "we""ird.schema"."select" (
	"table" int,
	"c63_01234567890123456789012345678901234567890123456789012345678" text,
	"a""b); DROP TABLE src; --" text,
	"Ünï cödé ✓" numeric,
	"user" text,
	PRIMARY KEY ("table"));
CREATE TABLE "we""ird.schema"."FROM" (LIKE "we""ird.schema"."select");
INSERT INTO "we""ird.schema"."FROM" VALUES
	(1, 'sixty-three', 'quote " and '' and \', 1.50, 'u'),
	(2, E'tab\there', NULL, -0.0, NULL);
CREATE TABLE "T63 01234567890123456789012345678901234567890123456789012345678" AS TABLE "we""ird.schema"."FROM";
SELECT pg_temp.err($$SELECT idempotent_upsert('"we""ird.schema"."select"', '"we""ird.schema"."FROM"')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('"we""ird.schema"."select"', '"T63 01234567890123456789012345678901234567890123456789012345678"')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('"we""ird.schema"."select"', '"we""ird.schema"."FROM"', key => ARRAY['table'], version_column => 'Ünï cödé ✓', on_duplicate => 'last')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('"we""ird.schema"."select"', '[{"table": 3, "a\"b); DROP TABLE src; --": "json", "Ünï cödé ✓": 2}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('"we""ird.schema"."select"', 'SELECT 4 AS "table", ''q'' AS "user"')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('"we""ird.schema"."select"') <> table_fingerprint('"we""ird.schema"."FROM"')$$);
SELECT pg_temp.err($$SELECT assert_idempotent($q$SELECT idempotent_upsert('"we""ird.schema"."select"', '"we""ird.schema"."FROM"')$q$, '"we""ird.schema"."select"')$$);
-- a name one byte too long is truncated by PostgreSQL, not by us: no match
SELECT pg_temp.err($$SELECT idempotent_upsert('"we""ird.schema"."select"', '"we""ird.schema"."FROM"', key => ARRAY['c63_01234567890123456789012345678901234567890123456789012345678X'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('"we""ird.schema"."select"', '[{"table": 5, "c63_01234567890123456789012345678901234567890123456789012345678X": "x"}]')$$);
SELECT * FROM "we""ird.schema"."select" ORDER BY 1;
SELECT count(*) AS src_rows FROM src;

---------------------------------------------------------------------------
-- 9. a hostile search_path: an earlier schema holding look-alike
-- operators, functions and aggregates that raise if anything calls them,
-- and a temp table shadowing the target's name
---------------------------------------------------------------------------
CREATE SCHEMA hostile_evil;
-- one trap per operand type: CREATE OPERATOR wants an exact signature
DO $do$
DECLARE
	t text;
	op text;
BEGIN
	FOREACH t IN ARRAY ARRAY['int', 'bigint', 'text', 'xid', 'record'] LOOP
		EXECUTE format($f$CREATE FUNCTION hostile_evil.trap(%1$s, %1$s) RETURNS boolean LANGUAGE plpgsql
			AS $b$BEGIN RAISE EXCEPTION 'hijacked: an operator of schema evil was called'; END$b$$f$, t);
		FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>='] LOOP
			EXECUTE format('CREATE OPERATOR hostile_evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = hostile_evil.trap)',
						   CASE WHEN t = 'record' THEN '*' || op ELSE op END, t, t);
		END LOOP;
	END LOOP;
END $do$;
CREATE FUNCTION hostile_evil.trap_text(text, text) RETURNS text
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.|| was called'; END$$;
CREATE OPERATOR hostile_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile_evil.trap_text);
CREATE FUNCTION hostile_evil.record_image_ne(record, record) RETURNS boolean
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.record_image_ne'; END$$;
CREATE FUNCTION hostile_evil.record_image_eq(record, record) RETURNS boolean
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.record_image_eq'; END$$;
CREATE FUNCTION hostile_evil.jsonb_array_elements(jsonb) RETURNS SETOF jsonb
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.jsonb_array_elements'; END$$;
CREATE FUNCTION hostile_evil.jsonb_object_keys(jsonb) RETURNS SETOF text
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.jsonb_object_keys'; END$$;
CREATE FUNCTION hostile_evil.jsonb_typeof(jsonb) RETURNS text
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.jsonb_typeof'; END$$;
CREATE FUNCTION hostile_evil.jsonb_to_recordset(jsonb) RETURNS SETOF record
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.jsonb_to_recordset'; END$$;
CREATE FUNCTION hostile_evil.trap_count(bigint) RETURNS bigint
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.count'; END$$;
CREATE AGGREGATE hostile_evil.count(*) (SFUNC = hostile_evil.trap_count, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION hostile_evil.trap_min(text, text) RETURNS text
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.min'; END$$;
CREATE AGGREGATE hostile_evil.min(text) (SFUNC = hostile_evil.trap_min, STYPE = text);
CREATE FUNCTION hostile_evil.trap_fp(text, record) RETURNS text
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil._fingerprint_agg'; END$$;
CREATE AGGREGATE hostile_evil._fingerprint_agg(record) (SFUNC = hostile_evil.trap_fp, STYPE = text);
CREATE FUNCTION hostile_evil.int4(bigint) RETURNS int
	LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: hostile_evil.int4'; END$$;
-- the extension's own SQL is untouched by them
CREATE TABLE hostile.evil_src (id int, a text, v int);
INSERT INTO hostile.evil_src VALUES (1, 'kept', 1), (2, 'changed', 5), (7, 'new', 1), (7, 'new', 1);
CREATE TABLE hostile.evil_tgt (LIKE tgt_before);
ALTER TABLE hostile.evil_tgt ADD PRIMARY KEY (id);
INSERT INTO hostile.evil_tgt SELECT * FROM tgt_before;
SET search_path = hostile_evil, pg_catalog, hostile, public;
-- the look-alikes really are found first by unqualified SQL
SELECT pg_temp.err($$SELECT 1 = 1$$);
SELECT pg_temp.err($$SELECT count(*) FROM src$$);
-- a temp table of the same name comes first for unqualified names in SQL
-- text; the extension writes only to the relation its argument named
CREATE TEMP TABLE evil_tgt (id int PRIMARY KEY, a text, v int);
SELECT pg_temp.err($$SELECT idempotent_upsert('hostile.evil_tgt', 'evil_src', on_duplicate => 'last')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('hostile.evil_tgt', 'evil_src', on_duplicate => 'last')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('hostile.evil_tgt', 'evil_src', version_column => 'v', on_duplicate => 'last', dry_run => true)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('hostile.evil_tgt', 'evil_src', key => ARRAY['id'], version_column => 'v', on_duplicate => 'last')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('hostile.evil_tgt', 'evil_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('hostile.evil_tgt', 'SELECT 8 AS id, ''q'' AS a, 1 AS v')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('hostile.evil_tgt', '[{"id": 9, "a": "j", "v": 1}, {"id": 9, "a": "j", "v": 1}]', on_duplicate => 'last')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('hostile.evil_tgt', '[{"id": 9, "a": "j", "v": 1}]')$$);
SELECT pg_temp.err($$SELECT length(table_fingerprint('hostile.evil_tgt'))$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT idempotent_upsert(''hostile.evil_tgt'', ''evil_src'', on_duplicate => ''last'')', 'hostile.evil_tgt', 'evil_src')$$);
SELECT pg_temp.err($$SELECT idempotent_key(1, 'a') IS NOT NULL$$);
SELECT pg_temp.err($$SELECT stable_bucket('a'::text, 10) IS NOT NULL$$);
-- the temp table named by its plain name is the one written
SELECT pg_temp.err($$SELECT idempotent_upsert('evil_tgt', 'evil_src', on_duplicate => 'last')$$);
SET search_path = hostile, public;
SELECT 'hostile' AS which, * FROM hostile.evil_tgt UNION ALL
SELECT 'pg_temp', * FROM pg_temp.evil_tgt ORDER BY 1, 2;

---------------------------------------------------------------------------
-- 10. row-level security: the policies see the caller, as they would in
-- the caller's own INSERT and UPDATE
---------------------------------------------------------------------------
CREATE ROLE regress_hostile_alice;
GRANT USAGE ON SCHEMA hostile TO regress_hostile_alice;
CREATE TABLE rls_t (id int PRIMARY KEY, owner text NOT NULL, a text);
INSERT INTO rls_t VALUES (1, 'regress_hostile_alice', 'a1'), (2, 'regress_hostile_bob', 'b2');
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_sel ON rls_t FOR SELECT USING (owner = current_user);
CREATE POLICY rls_ins ON rls_t FOR INSERT WITH CHECK (owner = current_user);
CREATE POLICY rls_upd ON rls_t FOR UPDATE USING (owner = current_user) WITH CHECK (owner = current_user);
GRANT SELECT, INSERT, UPDATE ON rls_t TO regress_hostile_alice;
CREATE TABLE rls_src (id int, owner text, a text);
GRANT SELECT ON rls_src TO regress_hostile_alice;
SET ROLE regress_hostile_alice;
-- alice sees one row: the fingerprint is of what she may see
SELECT count(*) AS alice_sees FROM rls_t;
-- her own row: updated
RESET ROLE;
INSERT INTO rls_src VALUES (1, 'regress_hostile_alice', 'a1 new');
SET ROLE regress_hostile_alice;
SELECT pg_temp.err($$SELECT idempotent_upsert('rls_t', 'rls_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('rls_t', 'rls_src')$$);
RESET ROLE;
-- bob's row, which her SELECT policy hides, looks new to her; writing it
-- meets bob's row and the UPDATE policy refuses it: 42501, nothing written
INSERT INTO rls_src VALUES (2, 'regress_hostile_alice', 'stolen');
SET ROLE regress_hostile_alice;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert('rls_t', 'rls_src')$$);
ROLLBACK;
SELECT pg_temp.err($$SELECT idempotent_upsert('rls_t', 'rls_src', dry_run => true)$$);
RESET ROLE;
-- a row for someone else: the INSERT policy's WITH CHECK refuses it
DELETE FROM rls_src WHERE id = 2;
INSERT INTO rls_src VALUES (3, 'regress_hostile_bob', 'planted');
SET ROLE regress_hostile_alice;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert('rls_t', 'rls_src')$$);
ROLLBACK;
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_json('rls_t', '[{"id": 3, "owner": "regress_hostile_bob", "a": "planted"}]')$$);
ROLLBACK;
-- and her own row moved to bob: the UPDATE policy's WITH CHECK refuses it
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert_json('rls_t', '[{"id": 1, "owner": "regress_hostile_bob", "a": "given away"}]')$$);
ROLLBACK;
RESET ROLE;
SELECT * FROM rls_t ORDER BY id;

---------------------------------------------------------------------------
-- 11. privileges: a role lacking each one gets 42501 from PostgreSQL's own
-- checks, as the caller
---------------------------------------------------------------------------
CREATE ROLE regress_hostile_nobody;
GRANT USAGE ON SCHEMA hostile TO regress_hostile_nobody;
CREATE SCHEMA locked_schema;
CREATE TABLE locked_schema.t (id int PRIMARY KEY, a text, v int);
GRANT ALL ON locked_schema.t TO regress_hostile_nobody;
CREATE TABLE priv_t (id int PRIMARY KEY, a text, v int);
INSERT INTO priv_t VALUES (1, 'kept', 1);
CREATE TABLE priv_src (id int, a text, v int);
INSERT INTO priv_src VALUES (1, 'kept', 1), (2, 'new', 1);
CREATE TABLE priv_same (id int, a text, v int);
INSERT INTO priv_same VALUES (1, 'kept', 1);
CREATE TABLE priv_changed (id int, a text, v int);
INSERT INTO priv_changed VALUES (1, 'changed', 1);
CREATE TABLE oids AS SELECT 'locked_schema.t'::regclass::oid AS locked;
GRANT SELECT ON oids TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- no privilege at all
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_src')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('priv_t')$$);
SELECT pg_temp.err($$SELECT assert_idempotent('SELECT 1', 'priv_t')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('priv_t', 'SELECT 1 AS id')$$);
-- the schema is not usable, though the table is granted
SELECT pg_temp.err($$SELECT idempotent_upsert_json((SELECT locked FROM oids)::regclass, '[{"id": 1}]')$$);
SELECT pg_temp.err($$SELECT table_fingerprint((SELECT locked FROM oids)::regclass)$$);
RESET ROLE;
GRANT SELECT ON priv_src, priv_same, priv_changed TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- SELECT on the source, nothing on the target
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_src', dry_run => true)$$);
RESET ROLE;
GRANT INSERT, UPDATE ON priv_t TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- INSERT and UPDATE on the target, no SELECT
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_src')$$);
RESET ROLE;
REVOKE ALL ON priv_t FROM regress_hostile_nobody;
GRANT SELECT, UPDATE ON priv_t TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- no INSERT: a batch with a new row fails
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_src')$$);
ROLLBACK;
RESET ROLE;
REVOKE ALL ON priv_t FROM regress_hostile_nobody;
GRANT SELECT, INSERT ON priv_t TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- no UPDATE: a batch with a changed row fails
BEGIN;  -- ROLLBACK after: see "subtransaction" at the top
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_changed')$$);
ROLLBACK;
RESET ROLE;
REVOKE ALL ON priv_t FROM regress_hostile_nobody;
GRANT SELECT (id, a), INSERT (id, a), UPDATE (id, a) ON priv_t TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- column privileges: v is not granted
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_changed')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('priv_t', 'SELECT 1 AS id, ''x'' AS a')$$);
SELECT pg_temp.err($$SELECT table_fingerprint('priv_t')$$);
RESET ROLE;
-- EXECUTE can be taken away like any function's
REVOKE EXECUTE ON FUNCTION idempotent_upsert(regclass, regclass, text[], text, text, boolean) FROM PUBLIC;
SET ROLE regress_hostile_nobody;
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_same')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION idempotent_upsert(regclass, regclass, text[], text, text, boolean) TO PUBLIC;
SELECT * FROM priv_t ORDER BY id;
UPDATE priv_t SET a = 'kept';

-- No lock without the privilege to take it: a role with no privilege on a
-- table cannot lock it with an empty JSON batch, and a role with only
-- SELECT cannot take its ROW EXCLUSIVE lock with a dry run or an identical
-- replay (LOCK TABLE would refuse both): 42501, and no lock is held.
REVOKE ALL ON priv_t FROM regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
BEGIN;
SELECT pg_temp.err($$SELECT idempotent_upsert_json('priv_t', '[]')$$);
SELECT mode FROM pg_locks WHERE relation = 'priv_t'::regclass AND pid = pg_backend_pid();
ROLLBACK;
RESET ROLE;
GRANT SELECT ON priv_t TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
BEGIN;
SELECT pg_temp.err($$SELECT idempotent_upsert('priv_t', 'priv_same')$$);
SELECT mode FROM pg_locks WHERE relation = 'priv_t'::regclass AND pid = pg_backend_pid() ORDER BY mode;
ROLLBACK;
RESET ROLE;

---------------------------------------------------------------------------
-- 12. pg_idempotent_tap passes errors other than assert_failure through
---------------------------------------------------------------------------
-- (created in schema hostile, first on the path, and dropped with it)
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION pg_idempotent_tap;
RESET client_min_messages;
SELECT pg_temp.err($$SELECT is_idempotent(NULL, ARRAY['tgt'::regclass])$$);
SELECT pg_temp.err($$SELECT is_idempotent('SELECT 1', NULL)$$);
SELECT pg_temp.err($$SELECT is_idempotent('SELECT 1', '{}')$$);
SELECT pg_temp.err($$SELECT isnt_idempotent('SELECT 1/0', ARRAY['tgt'::regclass])$$);

---------------------------------------------------------------------------
-- 13. replace_where: the predicate is the caller's text, parsed as one
-- expression and run with the caller's rights; anything else is refused
-- before a row is touched
---------------------------------------------------------------------------
CREATE TABLE rw_t (tenant int, day date, v text);
INSERT INTO rw_t VALUES (1, '2025-01-01', 'a'), (1, '2025-01-02', 'b'), (2, '2025-01-01', 'c');
CREATE TABLE rw_s AS SELECT * FROM rw_t WHERE tenant = 1;
CREATE TABLE rw_before AS SELECT * FROM rw_t;
CREATE TABLE rw_secret (tenant int);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', '')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.=) 1; DROP TABLE rw_t')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.=) 1) OR (true')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'true FROM rw_secret')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'EXISTS (WITH d AS (DELETE FROM rw_secret RETURNING 1) SELECT 1 FROM d)')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'EXISTS (SELECT 1 FROM rw_secret FOR UPDATE)')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'pg_catalog.generate_series(1, 2) OPERATOR(pg_catalog.=) tenant')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'pg_catalog.count(*) OPERATOR(pg_catalog.>) 0')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'nope OPERATOR(pg_catalog.=) 1')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.+) 1')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'pg_catalog.random() OPERATOR(pg_catalog.<) 0.5')$$);
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.=) 2')$$);
-- the predicate is the caller's text, resolved with the caller's
-- search_path as their own WHERE clause would be: with pg_catalog first, =
-- is pg_catalog's; with the look-alikes of section 9 first, it is theirs:
-- being volatile, they are refused (42P17) before anything runs, and the
-- extension's own SQL around the predicate stays qualified either way
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant = 1')$$);
SET search_path = hostile_evil, pg_catalog, hostile, public;
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant = 1')$$);
SET search_path = hostile, public;
-- a comment at the end cannot swallow anything: the checked expression runs
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.=) 1 -- comment')$$);
-- the caller's rights: a table the caller may not read is refused
GRANT SELECT, INSERT, DELETE ON rw_t, rw_s TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
SELECT pg_temp.err($$SELECT replace_where('rw_t', 'rw_s', 'tenant OPERATOR(pg_catalog.=) 1 AND NOT EXISTS (SELECT 1 FROM rw_secret)')$$);
RESET ROLE;
SELECT * FROM rw_t EXCEPT SELECT * FROM rw_before;
SELECT * FROM rw_before EXCEPT SELECT * FROM rw_t;

---------------------------------------------------------------------------
-- the tally: how many calls, how many failed, and none with an internal
-- error (class XX)
---------------------------------------------------------------------------
SELECT * FROM tgt_now EXCEPT SELECT * FROM tgt_before;

SELECT * FROM pg_temp.tally();

SET client_min_messages = warning;
DROP SCHEMA hostile, hostile_evil, "we""ird.schema", locked_schema CASCADE;
DROP OWNED BY regress_hostile_alice, regress_hostile_nobody;
DROP ROLE regress_hostile_alice, regress_hostile_nobody;
RESET client_min_messages;
RESET search_path;
