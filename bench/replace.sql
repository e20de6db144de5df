-- Replace benchmark: replace_partition in each mode against a hand-written
-- DELETE + INSERT in one transaction, on the same data in the same run.
-- A 30-day table partitioned by day (day_rows rows a day); each variant
-- replaces a day of its own, three times in a row: (a) with identical data,
-- (b) with 10% of the rows changed, (c) with all rows new.  Then the lock
-- window of a swap at day_rows and at big_rows rows.
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

DROP TABLE IF EXISTS rb_result, rb_sales, rb_big CASCADE;
CREATE TABLE rb_result (seq serial, scenario text, variant text, ms numeric, wal numeric);
CREATE FUNCTION pg_temp.rb_record(scenario text, variant text, t0 timestamptz, l0 pg_lsn)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO rb_result (scenario, variant, ms, wal)
  VALUES (scenario, variant,
          round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1),
          pg_current_wal_insert_lsn() - l0)
$$;

CREATE TABLE rb_sales (
	day date NOT NULL,
	store_id int NOT NULL,
	product_id int NOT NULL,
	qty int NOT NULL,
	amount numeric(12,2) NOT NULL,
	PRIMARY KEY (day, store_id, product_id)
) PARTITION BY RANGE (day);
CREATE INDEX ON rb_sales (product_id);
SELECT format('CREATE TABLE rb_sales_%s PARTITION OF rb_sales FOR VALUES FROM (%L) TO (%L)',
              to_char(d, 'MMDD'), d::date, d::date + 1)
FROM generate_series(date '2025-01-01', date '2025-01-30', '1 day') d \gexec
INSERT INTO rb_sales
SELECT d::date, g / 1000, g % 1000, g % 7 + 1, (g % 10000) / 100.0
FROM generate_series(date '2025-01-01', date '2025-01-30', '1 day') d, generate_series(0, :day_rows - 1) g;
VACUUM ANALYZE rb_sales;

-- the variants and their days; every day starts with the same rows
CREATE TEMP TABLE rb_variant (variant text, tag text, day date);
INSERT INTO rb_variant VALUES
	('DELETE + INSERT', 'raw', '2025-01-10'),
	('diff', 'diff', '2025-01-11'),
	('delete_insert', 'di', '2025-01-12'),
	('swap', 'swap', '2025-01-13'),
	('auto', 'auto', '2025-01-14');

-- one staging table per variant and scenario, built before any timing
SELECT unnest(ARRAY[
	format('CREATE TABLE rb_stage_%s_a AS SELECT * FROM rb_sales WHERE day = %L', tag, day),
	format('CREATE TABLE rb_stage_%s_b AS SELECT day, store_id, product_id, qty, '
		   'CASE WHEN product_id %% 10 = 0 THEN amount + 1 ELSE amount END AS amount FROM rb_stage_%s_a', tag, tag),
	format('CREATE TABLE rb_stage_%s_c AS SELECT day, store_id, product_id, qty + 1 AS qty, amount * 2 AS amount '
		   'FROM rb_stage_%s_a', tag, tag),
	format('VACUUM ANALYZE rb_stage_%s_a, rb_stage_%s_b, rb_stage_%s_c', tag, tag, tag)])
FROM rb_variant ORDER BY tag \gexec

-- one run: a checkpoint, then the variant, timed with its WAL
\set scenario '(a) identical'
\set sfx a
\ir replace_round.sql
\set scenario '(b) 10% changed'
\set sfx b
\ir replace_round.sql
\set scenario '(c) all new'
\set sfx c
\ir replace_round.sql

\echo
\echo 'Replacing one day of' :day_rows 'rows in a 30-day table, against DELETE + INSERT in one transaction:'
SELECT r.scenario, r.variant, r.ms, round(r.ms / nullif(b.ms, 0), 2) AS time_ratio,
       pg_size_pretty(r.wal) AS wal, round(r.wal / nullif(b.wal, 0), 3) AS wal_ratio
FROM rb_result r JOIN rb_result b ON b.scenario = r.scenario AND b.variant = 'DELETE + INSERT'
WHERE r.scenario LIKE '(%'
ORDER BY r.seq;

-- every variant's day must end the same
SELECT count(*) AS days_that_differ FROM rb_variant v
WHERE EXISTS (
	(SELECT store_id, product_id, qty, amount FROM rb_sales WHERE day = v.day
	 EXCEPT ALL SELECT store_id, product_id, qty, amount FROM rb_sales WHERE day = '2025-01-10')
	UNION ALL
	(SELECT store_id, product_id, qty, amount FROM rb_sales WHERE day = '2025-01-10'
	 EXCEPT ALL SELECT store_id, product_id, qty, amount FROM rb_sales WHERE day = v.day));

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
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0 \gset
SET LOCAL client_min_messages = debug1;
SELECT * FROM replace_partition('rb_big', 'rb_big_src_small', 'day', date '2025-01-01', 'swap');
SET LOCAL client_min_messages = warning;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1) AS swap_call_ms \gset
SELECT clock_timestamp() AS c0 \gset
COMMIT;
SELECT :day_rows AS partition_rows, :swap_call_ms AS whole_call_ms,
       round(extract(epoch FROM clock_timestamp() - :'c0') * 1000, 1) AS commit_ms;
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0 \gset
SET LOCAL client_min_messages = debug1;
SELECT * FROM replace_partition('rb_big', 'rb_big_src_large', 'day', date '2025-01-02', 'swap');
SET LOCAL client_min_messages = warning;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1) AS swap_call_ms \gset
SELECT clock_timestamp() AS c0 \gset
COMMIT;
SELECT :big_rows AS partition_rows, :swap_call_ms AS whole_call_ms,
       round(extract(epoch FROM clock_timestamp() - :'c0') * 1000, 1) AS commit_ms;

DROP TABLE rb_result, rb_sales, rb_big, rb_big_src_small, rb_big_src_large;
SELECT format('DROP TABLE %I', relname) FROM pg_class WHERE relname LIKE 'rb\_stage\_%' AND relkind = 'r' \gexec
