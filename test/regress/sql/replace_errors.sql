-- replace_partition, replace_partition_range, replace_table: every error a
-- caller can cause, with its SQLSTATE.  All are raised before anything is
-- written: the target's fingerprint is checked after each group.

-- in a schema of its own: the regression database is shared with other tests
CREATE SCHEMA pgi_replace_errors;
SET search_path = pgi_replace_errors, public;

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on

CREATE TABLE sales (day date NOT NULL, store int, amount numeric(12,2),
	total numeric GENERATED ALWAYS AS (amount * 2) STORED) PARTITION BY RANGE (day);
CREATE TABLE sales_0101 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE sales_0102 PARTITION OF sales FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
INSERT INTO sales (day, store, amount) VALUES ('2025-01-01', 1, 10), ('2025-01-02', 1, 20);
CREATE TABLE src (day date, store int, amount numeric(12,2));
INSERT INTO src VALUES ('2025-01-01', 1, 11), ('2025-01-01', 2, 12);
SELECT table_fingerprint('sales') AS fp \gset

-- NULL arguments: 22004
SELECT pg_temp.err($$SELECT replace_partition(NULL, 'src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', NULL, 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', NULL, date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', NULL::date)$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', NULL)$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', allow_empty => NULL)$$);
SELECT pg_temp.err($$SELECT replace_partition_range('sales', 'src', 'day', NULL::date, date '2025-01-02')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('sales', 'src', 'day', date '2025-01-01', NULL::date)$$);
SELECT pg_temp.err($$SELECT replace_table('sales', NULL)$$);
SELECT pg_temp.err($$SELECT replace_table('sales', 'src', NULL)$$);

-- a mode that does not exist: 22023
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'merge')$$);

-- unknown and wrong-kind relations: 42P01, 42809
SELECT pg_temp.err($$SELECT replace_partition(1::oid::regclass, 'src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 1::oid::regclass, 'day', date '2025-01-01')$$);
CREATE VIEW sales_view AS SELECT * FROM sales;
SELECT pg_temp.err($$SELECT replace_table('sales_view', 'src')$$);
CREATE SEQUENCE some_seq;
SELECT pg_temp.err($$SELECT replace_table('sales', 'some_seq')$$);

-- column mismatches: 42703, 42804, 428C9
CREATE TABLE src_extra (day date, store int, nope int);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_extra', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'no_such_column', date '2025-01-01')$$);
CREATE TABLE src_no_day (store int, amount numeric(12,2));
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_no_day', 'day', date '2025-01-01')$$);
CREATE TABLE src_badtype (day date, store point);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_badtype', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', point '(1,2)')$$);
CREATE TABLE src_generated (day date, total numeric);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_generated', 'day', date '2025-01-01')$$);
CREATE TABLE src_json (day date, j json);
CREATE TABLE jsons (day date, j json);
SELECT pg_temp.err($$SELECT replace_partition('jsons', 'src_json', 'j', '{}'::json)$$);
SELECT table_fingerprint('sales') = :'fp' AS sales_unchanged;

-- source rows outside the slice: 23514, with how many and one example
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-02')$$);
INSERT INTO src VALUES (NULL, 3, 13);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('sales', 'src', 'day', date '2025-01-01', date '2025-01-03')$$);
DELETE FROM src WHERE day IS NULL;
SELECT table_fingerprint('sales') = :'fp' AS sales_unchanged;

-- an empty source, unless allow_empty: 22023
CREATE TABLE src_empty (LIKE src);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_empty', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_table('src', 'src_empty', 'delete_insert')$$);
SELECT table_fingerprint('sales') = :'fp' AS sales_unchanged;

-- a slice value that matches no partition: 23514
CREATE TABLE src_0301 (LIKE src);
INSERT INTO src_0301 VALUES ('2025-03-01', 1, 1);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_0301', 'day', date '2025-03-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_0301', 'day', date '2025-03-01', 'diff')$$);

-- swap where it does not apply: 0A000, saying why; auto falls back to diff
CREATE TABLE plain (day date, store int, amount numeric(12,2));
SELECT pg_temp.err($$SELECT replace_partition('plain', 'src', 'day', date '2025-01-01', 'swap')$$);
SELECT pg_temp.err($$SELECT replace_table('sales', 'src', 'swap')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('sales', 'src', 'day', date '2025-01-01', date '2025-01-03', 'swap')$$);
CREATE TABLE by_ts (ts timestamp NOT NULL, v int) PARTITION BY RANGE (ts);
CREATE TABLE by_ts_0101 PARTITION OF by_ts FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE by_ts_src (ts timestamp, v int);
INSERT INTO by_ts_src VALUES ('2025-01-01', 1);
SELECT pg_temp.err($$SELECT replace_partition('by_ts', 'by_ts_src', 'ts', timestamp '2025-01-01', 'swap')$$);
-- a default partition: ATTACH would scan it under the lock
CREATE TABLE sales_rest PARTITION OF sales DEFAULT;
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'swap')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src_0301', 'day', date '2025-03-01', 'swap')$$);
SELECT * FROM replace_partition('sales', 'src_0301', 'day', date '2025-03-01');
DROP TABLE sales_rest;
-- a foreign key that points at the partitioned table
CREATE TABLE keyed (day date, id int, PRIMARY KEY (day, id)) PARTITION BY RANGE (day);
CREATE TABLE keyed_0101 PARTITION OF keyed FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE referrer (day date, id int, FOREIGN KEY (day, id) REFERENCES keyed);
CREATE TABLE keyed_src (day date, id int);
INSERT INTO keyed_src VALUES ('2025-01-01', 1);
SELECT pg_temp.err($$SELECT replace_partition('keyed', 'keyed_src', 'day', date '2025-01-01', 'swap')$$);
SELECT * FROM replace_partition('keyed', 'keyed_src', 'day', date '2025-01-01');
-- a source row that breaks a foreign key from the table: 23503 from the
-- validation of the new partition, before any lock on the parent
CREATE TABLE fk_stores (id int PRIMARY KEY);
INSERT INTO fk_stores VALUES (1);
CREATE TABLE fk_orders (day date NOT NULL, store_id int REFERENCES fk_stores) PARTITION BY RANGE (day);
CREATE TABLE fk_orders_0101 PARTITION OF fk_orders FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
INSERT INTO fk_orders VALUES ('2025-01-01', 1);
CREATE TABLE fk_src (day date, store_id int);
INSERT INTO fk_src VALUES ('2025-01-01', 1), ('2025-01-01', 2);
SELECT pg_temp.err($$SELECT replace_partition('fk_orders', 'fk_src', 'day', date '2025-01-01', 'swap')$$);
SELECT pg_temp.err($$SELECT replace_partition('fk_orders', 'fk_src', 'day', date '2025-01-01', 'diff')$$);
SELECT * FROM fk_orders;
-- a foreign key that is not validated would be validated by ATTACH: refused
DELETE FROM fk_src WHERE store_id = 2;
CREATE TABLE fk_orders2 (day date NOT NULL, store_id int) PARTITION BY RANGE (day);
CREATE TABLE fk_orders2_0101 PARTITION OF fk_orders2 FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
ALTER TABLE fk_orders2_0101 ADD CONSTRAINT own_fk FOREIGN KEY (store_id) REFERENCES fk_stores NOT VALID;
SELECT pg_temp.err($$SELECT replace_partition('fk_orders2', 'fk_src', 'day', date '2025-01-01', 'swap')$$);
DROP TABLE fk_orders, fk_orders2, fk_src, fk_stores;

-- a view on the partition itself
CREATE VIEW sales_0101_view AS SELECT * FROM sales_0101;
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'swap')$$);
DROP VIEW sales_0101_view;
-- a trigger of the partition's own
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER own_trigger BEFORE INSERT ON sales_0101 FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'swap')$$);
DROP TRIGGER own_trigger ON sales_0101;
SELECT table_fingerprint('sales') = :'fp' AS sales_unchanged;

-- privileges are the caller's: 42501
CREATE ROLE regress_pgi_nobody;
GRANT USAGE ON SCHEMA pgi_replace_errors TO regress_pgi_nobody;
GRANT SELECT ON src TO regress_pgi_nobody;
SET ROLE regress_pgi_nobody;
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'diff')$$);
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'swap')$$);
RESET ROLE;
-- a replace deletes from the slice: without DELETE on the target the
-- call is refused before it takes any lock (see below)
GRANT SELECT, INSERT ON sales TO regress_pgi_nobody;
SET ROLE regress_pgi_nobody;
SELECT pg_temp.err($$SELECT replace_partition('sales', 'src', 'day', date '2025-01-01', 'diff')$$);
RESET ROLE;
REVOKE ALL ON sales FROM regress_pgi_nobody;
REVOKE ALL ON src FROM regress_pgi_nobody;
REVOKE USAGE ON SCHEMA pgi_replace_errors FROM regress_pgi_nobody;
DROP ROLE regress_pgi_nobody;

-- the lock that serializes replaces of a slice is out of everyone else's
-- reach: no advisory lock (which any role, and any application's own key,
-- could take and hold), but object locks whose class is the extension,
-- on the table (shared) and on the slice (exclusive).  Two sessions:
-- test/isolation/specs/replace-lock-outsiders.spec.
BEGIN;
SELECT mode FROM replace_partition('sales', 'src', 'day', date '2025-01-01', 'diff');
SELECT l.locktype, l.classid = x.oid AS extension_class,
	l.objid = 'sales'::regclass::oid AS on_sales, l.objsubid = 0 AS table_key, l.mode
FROM pg_locks l, pg_extension x
WHERE x.extname = 'pg_idempotent' AND l.pid = pg_backend_pid()
	AND (l.locktype = 'advisory' OR l.classid = x.oid)
ORDER BY l.locktype, l.objsubid = 0 DESC, l.mode;
ROLLBACK;
SELECT table_fingerprint('sales') = :'fp' AS sales_unchanged;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pgi_replace_errors CASCADE;
