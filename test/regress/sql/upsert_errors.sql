-- idempotent_upsert: every error a caller can cause, with its SQLSTATE.
-- None of them writes anything: the target is checked after each group.

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on

CREATE TABLE target (id int PRIMARY KEY, a text, v int, g int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE e_src (id int, a text, v int);
INSERT INTO target (id, a, v) VALUES (1, 'kept', 1);
INSERT INTO e_src VALUES (1, 'x', 1), (2, 'y', 1);

-- NULL arguments: 22004
SELECT pg_temp.err($$SELECT idempotent_upsert(NULL, 'e_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', on_duplicate => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', dry_run => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', key => ARRAY[NULL]::text[])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', NULL)$$);

-- unknown and wrong-kind relations: 42P01, 42809
SELECT pg_temp.err($$SELECT idempotent_upsert(1::oid::regclass, 'e_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 1::oid::regclass)$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('no_such_table', 'e_src')$$);
CREATE VIEW target_view AS SELECT * FROM target;
SELECT pg_temp.err($$SELECT idempotent_upsert('target_view', 'e_src')$$);
CREATE SEQUENCE some_seq;
SELECT pg_temp.err($$SELECT idempotent_upsert('some_seq', 'e_src')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'some_seq')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target_pkey', 'e_src')$$);
CREATE MATERIALIZED VIEW target_mv AS SELECT * FROM target;
SELECT pg_temp.err($$SELECT idempotent_upsert('target_mv', 'e_src')$$);

-- a foreign table can be read from but not upserted into
CREATE EXTENSION file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE foreign_src (id int, a text, v int) SERVER files OPTIONS (filename '/dev/null');
SELECT pg_temp.err($$SELECT idempotent_upsert('foreign_src', 'e_src')$$);
SELECT pg_temp.err($$SELECT (idempotent_upsert('target', 'foreign_src')).*$$);
DROP FOREIGN TABLE foreign_src;
DROP SERVER files;
DROP EXTENSION file_fdw;

-- source columns the target cannot take: 42703, 428C9, 42804, 42701
CREATE TEMP TABLE extra_col (id int, nope int);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'extra_col')$$);
CREATE TEMP TABLE gen_col (id int, g int);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'gen_col')$$);
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a text);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('ident', 'SELECT 1 AS id, ''x'' AS a')$$);
CREATE TEMP TABLE bad_type (id int, v point);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'bad_type')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'SELECT 1 AS id, 2 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'SELECT 1 AS id, 2')$$);

-- no usable key: 42P10, naming what was found
CREATE TABLE nokey (id int, a text, v int);
SELECT pg_temp.err($$SELECT idempotent_upsert('nokey', 'e_src')$$);
CREATE TABLE twokeys (id int UNIQUE, a text UNIQUE, v int);
SELECT pg_temp.err($$SELECT idempotent_upsert('twokeys', 'e_src')$$);
CREATE TABLE partialkey (id int, a text, v int);
CREATE UNIQUE INDEX partialkey_idx ON partialkey (id) WHERE id > 0;
SELECT pg_temp.err($$SELECT idempotent_upsert('partialkey', 'e_src')$$);
CREATE TEMP TABLE no_id (a text, v int);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'no_id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', key => ARRAY['a'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', key => ARRAY['zz'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', key => ARRAY['id', 'id'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', key => ARRAY[]::text[])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'no_id', key => ARRAY['id'])$$);
-- a partitioned table's key must include the partition column
CREATE TABLE parted (day date, id int, a text, PRIMARY KEY (day, id)) PARTITION BY RANGE (day);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
SELECT pg_temp.err($$SELECT idempotent_upsert_query('parted', 'SELECT 1 AS id, ''x'' AS a', key => ARRAY['id'])$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('parted', 'SELECT 1 AS id, ''x'' AS a')$$);

-- bad option values: 22023, 42703, 42883
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', on_duplicate => 'first')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', version_column => 'nope')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', version_column => 'g')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src', version_column => 'id')$$);
CREATE TABLE pt (id int PRIMARY KEY, v point);
CREATE TEMP TABLE pt_in (id int, v point);
SELECT pg_temp.err($$SELECT idempotent_upsert('pt', 'pt_in', version_column => 'v')$$);

-- null keys and versions in the source: 23502, with how many rows
CREATE TEMP TABLE null_keys (id int, a text, v int);
INSERT INTO null_keys VALUES (NULL, 'a', 1), (NULL, 'b', 1), (3, 'c', NULL);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'null_keys')$$);
DELETE FROM null_keys WHERE id IS NULL;
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'null_keys', version_column => 'v')$$);

-- duplicate keys in the source: 21000 naming one, never "cannot affect row
-- a second time"
CREATE TEMP TABLE dups (id int, a text, v int);
INSERT INTO dups VALUES (1, 'a', 1), (1, 'b', 2), (7, 'c', 1), (7, 'c', 1), (8, 'd', 1);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'dups')$$);
-- 'last' needs a single newest row per key
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'dups', on_duplicate => 'last')$$);
INSERT INTO dups VALUES (8, 'e', 1);
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'dups', version_column => 'v', on_duplicate => 'last')$$);

-- a query must be exactly one SELECT: 42601
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'SELECT 1 AS id; SELECT 2 AS id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'DELETE FROM target RETURNING id')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'SELEC 1')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', '')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('target', 'WITH d AS (DELETE FROM target RETURNING id) SELECT id FROM d')$$);

-- JSON rows must be an array of objects whose keys are target columns
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', '{"id": 1}')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', '[1, 2]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', '[{"id": 1, "zz": 2}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', '[{"id": "not a number"}]')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('target', '[{}]')$$);

-- privileges are the caller's: 42501
CREATE ROLE regress_upsert_reader;
GRANT SELECT ON target, e_src TO regress_upsert_reader;
SET ROLE regress_upsert_reader;
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src')$$);
RESET ROLE;
CREATE ROLE regress_upsert_writer;
GRANT SELECT, INSERT, UPDATE ON target TO regress_upsert_writer;
SET ROLE regress_upsert_writer;
SELECT pg_temp.err($$SELECT idempotent_upsert('target', 'e_src')$$);
RESET ROLE;
DROP OWNED BY regress_upsert_reader, regress_upsert_writer;
DROP ROLE regress_upsert_reader, regress_upsert_writer;

-- nothing above wrote anything
SELECT id, a, v FROM target ORDER BY id;

-- into an empty table the first load inserts optimistically; duplicate and
-- null keys there still get the same answers, and nothing is left behind
CREATE TABLE empty_target (id int PRIMARY KEY, a text, v int);
CREATE TEMP TABLE dups2 (id int, a text, v int);
INSERT INTO dups2 VALUES (1, 'a', 1), (2, 'b', 1), (2, 'b', 1);
SELECT pg_temp.err($$SELECT idempotent_upsert('empty_target', 'dups2')$$);
CREATE TEMP TABLE nulls2 (id int, a text, v int);
INSERT INTO nulls2 VALUES (1, 'a', 1), (NULL, 'b', 1);
SELECT pg_temp.err($$SELECT idempotent_upsert('empty_target', 'nulls2')$$);
SELECT count(*) AS rows_left_behind FROM empty_target;
