-- pg_idempotent.progress_interval: long operations say what they have done,
-- step by step, when the interval has passed since the call began or since
-- the last report.  Terse verbosity hides the DETAIL, which says how long
-- the call has run and so differs from run to run.
\set VERBOSITY terse

-- the setting is defined once the library is loaded; 10 s by default
SELECT idempotent_key(1) IS NOT NULL AS loaded;
SHOW pg_idempotent.progress_interval;

CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(12,2), version int);
CREATE TABLE staging (LIKE orders);
INSERT INTO staging SELECT g, g * 1.5, 1 FROM generate_series(1, 10) g;

-- the default is silent for a short call
SELECT * FROM idempotent_upsert('orders', 'staging');
SELECT table_fingerprint('orders') IS NOT NULL AS fingerprinted;

--
-- 0: every step reports
--
SET pg_idempotent.progress_interval = 0;

-- a replay: the source checked, its rows classified, nothing written
SELECT * FROM idempotent_upsert('orders', 'staging');
-- changed and new rows: each write reports its count
UPDATE staging SET amount = 0 WHERE id <= 3;
INSERT INTO staging VALUES (11, 11, 1), (12, 12, 1);
SELECT * FROM idempotent_upsert('orders', 'staging');
-- a dry run says that it wrote nothing
UPDATE staging SET amount = 1 WHERE id = 1;
SELECT * FROM idempotent_upsert('orders', 'staging', dry_run => true);
-- versions: stale rows are counted; duplicates folded by on_duplicate => 'last'
UPDATE staging SET version = 0 WHERE id = 2;
INSERT INTO staging VALUES (12, 13, 2);
SELECT * FROM idempotent_upsert('orders', 'staging', version_column => 'version',
	on_duplicate => 'last');
-- a first load into an empty table is one step
CREATE TABLE orders2 (LIKE orders INCLUDING ALL);
SELECT * FROM idempotent_upsert_query('orders2', 'SELECT id, amount FROM staging WHERE id <> 12');
-- ... and when the key's index stops it, the report says so before the
-- general path names the duplicates
TRUNCATE orders2;
SELECT * FROM idempotent_upsert_query('orders2', 'SELECT id, amount FROM staging');
-- the JSON form reports as the others do
SELECT * FROM idempotent_upsert_json('orders', '[{"id": 1, "amount": 5}, {"id": 100, "amount": 1}]');

-- table_fingerprint: one step, with the rows it read
SELECT table_fingerprint('orders') IS NOT NULL AS fingerprinted;
-- assert_idempotent: each run and each table's fingerprint after it
SELECT assert_idempotent($$SELECT idempotent_upsert('orders', 'staging', version_column => 'version',
	on_duplicate => 'last')$$, 'orders', 'orders2', 'orders');
CREATE SEQUENCE s START 1000;
SELECT assert_idempotent('INSERT INTO orders2 VALUES (nextval(''s''), 0)', 'orders2');

-- the replace family: the source checked, the comparison, each write; a
-- swap reports its load, the replacement's build and the exchange
CREATE TABLE rp (day date NOT NULL, id int, v text) PARTITION BY RANGE (day);
CREATE TABLE rp_0101 PARTITION OF rp FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
INSERT INTO rp SELECT '2025-01-01', g, 'old' FROM generate_series(1, 5) g;
CREATE TABLE rp_src AS SELECT date '2025-01-01' AS day, g AS id, CASE WHEN g = 1 THEN 'new' ELSE 'old' END AS v
FROM generate_series(1, 5) g;
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'diff');
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'diff');
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'delete_insert');
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'swap');
-- a target with a foreign partition has no xmin to read there: the slice is
-- always compared again after writing (and found settled)
CREATE EXTENSION file_fdw;
CREATE SERVER archive FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE rp_2024 PARTITION OF rp FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
	SERVER archive OPTIONS (filename '/dev/null');
UPDATE rp_src SET v = 'newer' WHERE id = 2;
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'diff');
DROP FOREIGN TABLE rp_2024;
-- without it, one scan after writing settles the slice
UPDATE rp_src SET v = 'newest' WHERE id = 2;
SELECT * FROM replace_partition('rp', 'rp_src', 'day', date '2025-01-01', 'diff');
DROP SERVER archive;
DROP EXTENSION file_fdw;
DROP TABLE rp, rp_src;
-- diff compares in one pass while every row both sides hold is there once
-- on each side; rows only one side holds may repeat (each copy is deleted,
-- or inserted)
CREATE TABLE ev (k int, v text);
INSERT INTO ev VALUES (1, 'a'), (1, 'a'), (2, 'b'), (3, 'c');
CREATE TABLE ev_src (k int, v text);
INSERT INTO ev_src VALUES (2, 'b'), (3, 'c'), (4, 'd'), (4, 'd');
SELECT * FROM replace_table('ev', 'ev_src', 'diff');
-- a row both hold, repeated on either side: the one pass would join copies
-- to copies, so it is dropped unwritten and copies are counted instead
INSERT INTO ev_src VALUES (2, 'b'), (5, 'e');
SELECT * FROM replace_table('ev', 'ev_src', 'diff');
INSERT INTO ev VALUES (3, 'c');
SELECT * FROM replace_table('ev', 'ev_src', 'diff');
SELECT k, v, count(*) FROM ev GROUP BY k, v ORDER BY k, v;
DROP TABLE ev, ev_src;

-- a value in a unit; a report is then due only after that much time
SET pg_idempotent.progress_interval = '1min';
SHOW pg_idempotent.progress_interval;
SELECT * FROM idempotent_upsert('orders', 'staging', version_column => 'version',
	on_duplicate => 'last');

--
-- -1: never, even for the steps 0 reports
--
SET pg_idempotent.progress_interval = -1;
SELECT * FROM idempotent_upsert('orders', 'staging', version_column => 'version',
	on_duplicate => 'last');
SELECT table_fingerprint('orders') IS NOT NULL AS fingerprinted;

-- the reports are NOTICEs: client_min_messages hides them like any other
SET pg_idempotent.progress_interval = 0;
SET client_min_messages = warning;
SELECT table_fingerprint('orders') IS NOT NULL AS fingerprinted;
RESET client_min_messages;

--
-- bad values are refused, and the setting keeps its value
--
-- (the server words its range message differently from one major to the
-- next, so this one shows its SQLSTATE)
DO $$
BEGIN
	SET pg_idempotent.progress_interval = -2;
EXCEPTION WHEN invalid_parameter_value THEN
	RAISE NOTICE 'refused with SQLSTATE %', SQLSTATE;
END $$;
SET pg_idempotent.progress_interval = 'often';
SET pg_idempotent.progress_interval = '1 fortnight';
SET pg_idempotent.progress_interval = 2147483648;
SHOW pg_idempotent.progress_interval;
RESET pg_idempotent.progress_interval;
SHOW pg_idempotent.progress_interval;

DROP TABLE orders, orders2, staging;
DROP SEQUENCE s;
