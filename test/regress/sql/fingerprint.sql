--
-- table_fingerprint and assert_idempotent
--

-- A fingerprint is 32 hex digits; an empty table has one too.
CREATE TABLE fp_a (id int, name text, score numeric, seen timestamptz);
SELECT table_fingerprint('fp_a') AS empty_table;

-- The same rows in any order, with any physical layout, give the same
-- fingerprint; these values are pinned (they must not change between
-- versions or platforms).
INSERT INTO fp_a VALUES
  (1, 'one', 1.5, '2024-01-01 00:00+00'),
  (2, 'two', NULL, '2024-01-02 12:00+00'),
  (3, NULL, -0.25, NULL);
CREATE TABLE fp_b (LIKE fp_a);
INSERT INTO fp_b SELECT * FROM fp_a ORDER BY id DESC;
SELECT table_fingerprint('fp_a') AS fp_a, table_fingerprint('fp_b') AS fp_b;

-- Updates that write the same values, VACUUM FULL and CLUSTER move rows
-- around without changing the fingerprint.
SELECT table_fingerprint('fp_a') AS before \gset
UPDATE fp_a SET name = name;
VACUUM FULL fp_a;
CREATE INDEX fp_a_id ON fp_a (id);
CLUSTER fp_a USING fp_a_id;
SELECT table_fingerprint('fp_a') = :'before' AS unchanged_by_layout;

-- Values equal under their type's equality fingerprint equally: 1.5 and
-- 1.50, the same instant written in another zone.
UPDATE fp_b SET score = 1.50, seen = '2024-01-01 02:00+02' WHERE id = 1;
SELECT table_fingerprint('fp_b') = :'before' AS equal_values_equal;

-- Session settings do not matter.
BEGIN;
SET LOCAL TimeZone = 'Asia/Kathmandu';
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL extra_float_digits = -3;
SET LOCAL bytea_output = 'escape';
SET LOCAL search_path = pg_catalog;
SELECT public.table_fingerprint('public.fp_a') = :'before' AS settings_independent;
ROLLBACK;

-- Multiplicity counts: a row twice is not the same as once.
INSERT INTO fp_b SELECT * FROM fp_a WHERE id = 1;
SELECT table_fingerprint('fp_b') = :'before' AS duplicate_row_differs;
DELETE FROM fp_b WHERE ctid = (SELECT max(ctid) FROM fp_b WHERE id = 1);
SELECT table_fingerprint('fp_b') = :'before' AS back_to_equal;

-- NULL positions count: (1, NULL) is not (NULL, 1).
CREATE TABLE fp_n1 (a int, b int);
CREATE TABLE fp_n2 (a int, b int);
INSERT INTO fp_n1 VALUES (1, NULL);
INSERT INTO fp_n2 VALUES (NULL, 1);
SELECT table_fingerprint('fp_n1') = table_fingerprint('fp_n2') AS null_position_ignored;
-- and swapped rows do not cancel out: {(1,2),(3,4)} is not {(1,4),(3,2)}
CREATE TABLE fp_s1 (a int, b int);
CREATE TABLE fp_s2 (a int, b int);
INSERT INTO fp_s1 VALUES (1, 2), (3, 4);
INSERT INTO fp_s2 VALUES (1, 4), (3, 2);
SELECT table_fingerprint('fp_s1') = table_fingerprint('fp_s2') AS swapped_cells_ignored;

-- Dropped columns are not part of a row; widening int to bigint keeps the
-- fingerprint (the integer family folds).
CREATE TABLE fp_d (a int, junk text, b text);
INSERT INTO fp_d VALUES (1, 'x', 'p'), (2, 'y', 'q');
CREATE TABLE fp_e (a bigint, b varchar);
INSERT INTO fp_e VALUES (1, 'p'), (2, 'q');
ALTER TABLE fp_d DROP COLUMN junk;
SELECT table_fingerprint('fp_d') = table_fingerprint('fp_e') AS dropped_and_widened;

-- Large values stored out of line are read in full.
CREATE TABLE fp_t (id int, body text);
INSERT INTO fp_t VALUES (1, repeat('x', 100000));
SELECT table_fingerprint('fp_t') AS toast_before \gset
UPDATE fp_t SET body = repeat('x', 99999) || 'y';
SELECT table_fingerprint('fp_t') = :'toast_before' AS last_byte_ignored;

-- A column named t cannot be mistaken for the row.
CREATE TABLE fp_col_t (t int, u int);
INSERT INTO fp_col_t VALUES (1, 2);
CREATE TABLE fp_col_u (t int, u int);
INSERT INTO fp_col_u VALUES (1, 3);
SELECT table_fingerprint('fp_col_t') = table_fingerprint('fp_col_u') AS column_t_only;

-- Odd names are quoted.
CREATE SCHEMA "fp schema";
CREATE TABLE "fp schema"."Odd ""name""" (x int);
INSERT INTO "fp schema"."Odd ""name""" VALUES (1);
SELECT length(table_fingerprint('"fp schema"."Odd ""name"""')) AS odd_name;

-- Partitioned tables include every partition; views, materialized views
-- and inheritance parents fingerprint what a SELECT from them returns.
CREATE TABLE fp_p (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE fp_p1 PARTITION OF fp_p FOR VALUES FROM (0) TO (10);
CREATE TABLE fp_p2 PARTITION OF fp_p FOR VALUES FROM (10) TO (20);
INSERT INTO fp_p SELECT g, 'v' || g FROM generate_series(0, 19) g;
CREATE TABLE fp_plain AS SELECT g AS id, 'v' || g AS v FROM generate_series(0, 19) g;
CREATE VIEW fp_view AS SELECT * FROM fp_plain;
CREATE MATERIALIZED VIEW fp_mv AS SELECT * FROM fp_plain;
SELECT table_fingerprint('fp_p') = table_fingerprint('fp_plain') AS partitioned,
       table_fingerprint('fp_view') = table_fingerprint('fp_plain') AS view,
       table_fingerprint('fp_mv') = table_fingerprint('fp_plain') AS matview,
       table_fingerprint('fp_p1') = table_fingerprint('fp_plain') AS one_partition;

-- A search_path with another _fingerprint_agg first cannot hijack it.
SELECT table_fingerprint('fp_plain') AS plain_fp \gset
CREATE SCHEMA fp_evil;
CREATE FUNCTION fp_evil._fingerprint_agg_sfunc(text, record) RETURNS text
  LANGUAGE plpgsql AS $$BEGIN RETURN 'hijacked'; END$$;
CREATE AGGREGATE fp_evil._fingerprint_agg(record) (
  SFUNC = fp_evil._fingerprint_agg_sfunc, STYPE = text);
SET search_path = fp_evil, public;
SELECT _fingerprint_agg(t.*) AS unqualified_would_be FROM fp_plain t;
SELECT table_fingerprint('fp_plain') = :'plain_fp' AS not_hijacked;
RESET search_path;
DROP SCHEMA fp_evil CASCADE;

-- Errors.
\set VERBOSITY sqlstate
-- NULL target
SELECT table_fingerprint(NULL);
-- no such relation
SELECT table_fingerprint(0::regclass);
-- no SELECT privilege
CREATE ROLE regress_fp_reader;
SET ROLE regress_fp_reader;
SELECT table_fingerprint('fp_a');
RESET ROLE;
-- an unpopulated materialized view
CREATE MATERIALIZED VIEW fp_mv_empty AS SELECT 1 AS x WITH NO DATA;
SELECT table_fingerprint('fp_mv_empty');
\set VERBOSITY default
SELECT table_fingerprint(NULL);
SET ROLE regress_fp_reader;
SELECT table_fingerprint('fp_a');
RESET ROLE;

--
-- assert_idempotent
--

-- An idempotent statement passes, and its effects stay.
CREATE TABLE fp_target (id int PRIMARY KEY, v text);
SELECT assert_idempotent(
  'INSERT INTO fp_target VALUES (1, ''a''), (2, ''b'') ON CONFLICT (id) DO NOTHING',
  'fp_target');
SELECT * FROM fp_target ORDER BY id;

-- A statement that changes the table again fails with P0004 and names
-- the table; the second run is what differs.
SELECT assert_idempotent('UPDATE fp_target SET v = v || ''!''', 'fp_target');
\set VERBOSITY sqlstate
SELECT assert_idempotent('UPDATE fp_target SET v = v || ''!''', 'fp_target');
\set VERBOSITY default

-- Only the tables that changed are named.
CREATE TABLE fp_log (n int);
SELECT assert_idempotent(
  'INSERT INTO fp_log VALUES (1); INSERT INTO fp_target VALUES (3, ''c'') ON CONFLICT DO NOTHING',
  'fp_target', 'fp_log');
SELECT assert_idempotent(
  'INSERT INTO fp_log VALUES (1); INSERT INTO fp_target SELECT max(id) + 1, ''x'' FROM fp_target',
  'fp_target', 'fp_log', 'fp_a');

-- Inside the caller's transaction: both runs can be rolled back.
BEGIN;
SELECT assert_idempotent('DELETE FROM fp_target WHERE id = 3', 'fp_target');
SELECT count(*) AS rows_inside FROM fp_target;
ROLLBACK;
SELECT count(*) AS rows_after_rollback FROM fp_target;

-- A SELECT runs without keeping its rows; a table named twice is checked once.
SELECT assert_idempotent('SELECT * FROM generate_series(1, 100000)', 'fp_target', 'fp_target');

-- A statement that writes the transaction's clock passes the comparison
-- (both runs see the same now()) but is refused for it: every real re-run
-- writes another time.  Defaults an INSERT fills in count; a SELECT that
-- only reads the clock, and run_time(), do not.
CREATE TABLE fp_seen (id int PRIMARY KEY, seen_at timestamptz, seen_on date DEFAULT CURRENT_DATE);
SELECT assert_idempotent('INSERT INTO fp_seen VALUES (1, now(), DEFAULT) ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at', 'fp_seen');
SELECT assert_idempotent('INSERT INTO fp_seen (id, seen_at) VALUES (2, NULL) ON CONFLICT DO NOTHING', 'fp_seen');
SELECT assert_idempotent('UPDATE fp_seen SET seen_at = CURRENT_TIMESTAMP(0) WHERE id = 1', 'fp_seen');
SELECT assert_idempotent('WITH d AS (DELETE FROM fp_seen WHERE seen_at < transaction_timestamp() RETURNING 1) SELECT count(*) FROM d', 'fp_seen');
SELECT assert_idempotent('SELECT now(), count(*) FROM fp_seen', 'fp_seen');
SET pg_idempotent.run_time = '2025-01-15 00:00+00';
SELECT assert_idempotent('UPDATE fp_seen SET seen_at = run_time(), seen_on = run_date()', 'fp_seen');
RESET pg_idempotent.run_time;
SELECT count(*) FROM fp_seen;

-- A procedure call.
CREATE PROCEDURE fp_proc() LANGUAGE sql AS
$$INSERT INTO fp_target VALUES (10, 'p') ON CONFLICT (id) DO UPDATE SET v = 'p'$$;
SELECT assert_idempotent('CALL fp_proc()', 'fp_target');

-- Errors.
\set VERBOSITY sqlstate
SELECT assert_idempotent(NULL, 'fp_target');
SELECT assert_idempotent('SELECT 1', NULL);
SELECT assert_idempotent('SELECT 1', VARIADIC NULL::regclass[]);
SELECT assert_idempotent('SELECT 1', VARIADIC ARRAY['fp_target'::regclass, NULL]);
SELECT assert_idempotent('SELECT 1', VARIADIC '{}'::regclass[]);
SELECT assert_idempotent('  ; -- nothing', 'fp_target');
SELECT assert_idempotent('SELECT 1', 0::regclass);
SELECT assert_idempotent('COMMIT', 'fp_target');
SELECT assert_idempotent('COPY fp_target FROM STDIN', 'fp_target');
SELECT assert_idempotent('SELECT 1/0', 'fp_target');
SET ROLE regress_fp_reader;
SELECT assert_idempotent('SELECT 1', 'fp_target');
RESET ROLE;
\set VERBOSITY default
SELECT assert_idempotent(NULL, 'fp_target');
SELECT assert_idempotent('SELECT 1', VARIADIC '{}'::regclass[]);
SELECT assert_idempotent('SELECT 1', VARIADIC ARRAY['fp_target'::regclass, NULL]);
SELECT assert_idempotent('  ; -- nothing', 'fp_target');
SELECT assert_idempotent('COMMIT', 'fp_target');

DROP ROLE regress_fp_reader;
DROP PROCEDURE fp_proc();
DROP TABLE fp_a, fp_b, fp_n1, fp_n2, fp_s1, fp_s2, fp_d, fp_e, fp_t, fp_col_t,
  fp_col_u, fp_p, fp_plain, fp_target, fp_log CASCADE;
DROP MATERIALIZED VIEW fp_mv_empty;
DROP SCHEMA "fp schema" CASCADE;
