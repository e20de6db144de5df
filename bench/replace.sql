-- Replace benchmark: replace_partition in each mode against a hand-written
-- DELETE + INSERT in one transaction, on the same data in the same run.
-- A 30-day table (day_rows rows a day), partitioned by day and then not
-- (replace_table.sql); each variant replaces a day of its own, four times
-- in a row: (a) with identical data, (b) with 10% of the rows changed,
-- (c) 50%, (d) all.  Then the lock window of a swap at day_rows and at
-- big_rows rows.
-- psql -v day_rows=N -v big_rows=M -f bench/replace.sql (bench/run sets up).
-- The swap's own measure of its lock window is a DEBUG1 line, "swapped
-- partition ... held N ms"; add the COMMIT time printed below it.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\if :{?day_rows}
\else
\set day_rows 100000
\endif
\if :{?big_rows}
\else
\set big_rows 1000000
\endif

DROP TABLE IF EXISTS rb_result, rb_sales, rf_sales, rb_big CASCADE;
CREATE TABLE rb_result (seq serial, tbl text, scenario text, variant text, ms numeric, wal numeric);
CREATE FUNCTION pg_temp.rb_record(tbl text, scenario text, variant text, t0 timestamptz, l0 pg_lsn)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO rb_result (tbl, scenario, variant, ms, wal)
  VALUES (tbl, scenario, variant,
          round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1),
          pg_current_wal_insert_lsn() - l0)
$$;

-- the same days, in a table partitioned by day, where auto may swap, and
-- in one that is not, where auto is diff
\set tbl rb_sales
\set partitioned true
\ir replace_table.sql
\set tbl rf_sales
\set partitioned false
\ir replace_table.sql

-- the swap's lock window at day_rows and at big_rows rows in the partition
CREATE TABLE rb_big (LIKE rb_sales INCLUDING ALL) PARTITION BY RANGE (day);
CREATE TABLE rb_big_0101 PARTITION OF rb_big FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE rb_big_0102 PARTITION OF rb_big FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
INSERT INTO rb_big SELECT '2025-01-01', g / 1000, g % 1000, 1, 1 FROM generate_series(0, :day_rows - 1) g;
INSERT INTO rb_big SELECT '2025-01-02', g / 1000, g % 1000, 1, 1 FROM generate_series(0, :big_rows - 1) g;
CREATE TABLE rb_big_src_small AS SELECT '2025-01-01'::date AS day, g / 1000 AS store_id, g % 1000 AS product_id, 2 AS qty, 2::numeric(12,2) AS amount
FROM generate_series(0, :day_rows - 1) g;
CREATE TABLE rb_big_src_large AS SELECT '2025-01-02'::date AS day, g / 1000 AS store_id, g % 1000 AS product_id, 2 AS qty, 2::numeric(12,2) AS amount
FROM generate_series(0, :big_rows - 1) g;
VACUUM ANALYZE rb_big, rb_big_src_small, rb_big_src_large;

\echo
\echo 'Swap lock window: "held" below is from the grant of ACCESS EXCLUSIVE to the end of the swap; COMMIT follows:'
\set src rb_big_src_small
\set day 2025-01-01
\set rows :day_rows
\ir replace_window.sql
\set src rb_big_src_large
\set day 2025-01-02
\set rows :big_rows
\ir replace_window.sql

DROP TABLE rb_result, rb_sales, rf_sales, rb_big, rb_big_src_small, rb_big_src_large;
