-- Replace benchmark on a table that is not partitioned, where auto chooses
-- between diff and delete_insert: replace_partition in each mode against
-- DELETE + INSERT in one transaction, same data, same run.  A 10-day table
-- (day_rows rows a day); each variant replaces a day of its own with
-- (a) identical data, (b) 10%, (c) 50% and (d) all rows changed.
-- psql -v day_rows=N -f bench/replace_flat.sql (bench/run sets up).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\if :{?day_rows}
\else
\set day_rows 100000
\endif

DROP TABLE IF EXISTS rf_result, rf_sales CASCADE;
CREATE TABLE rf_result (seq serial, scenario text, variant text, ms numeric, wal numeric);
CREATE FUNCTION pg_temp.rf_record(scenario text, variant text, t0 timestamptz, l0 pg_lsn)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO rf_result (scenario, variant, ms, wal)
  VALUES (scenario, variant,
          round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1),
          pg_current_wal_insert_lsn() - l0)
$$;

CREATE TABLE rf_sales (
	day date NOT NULL,
	store_id int NOT NULL,
	product_id int NOT NULL,
	qty int NOT NULL,
	amount numeric(12,2) NOT NULL,
	PRIMARY KEY (day, store_id, product_id)
);
CREATE INDEX ON rf_sales (product_id);
INSERT INTO rf_sales
SELECT d::date, g / 1000, g % 1000, g % 7 + 1, (g % 10000) / 100.0
FROM generate_series(date '2025-01-01', date '2025-01-10', '1 day') d, generate_series(0, :day_rows - 1) g;
VACUUM ANALYZE rf_sales;

CREATE TEMP TABLE rf_variant (variant text, tag text, day date);
INSERT INTO rf_variant VALUES
	('DELETE + INSERT', 'raw', '2025-01-02'),
	('diff', 'diff', '2025-01-03'),
	('delete_insert', 'di', '2025-01-04'),
	('auto', 'auto', '2025-01-05');

-- staging per variant and scenario: (b) changes products divisible by 10,
-- (c) by 2, (d) every row
SELECT unnest(ARRAY[
	format('CREATE TABLE rf_stage_%s_a AS SELECT * FROM rf_sales WHERE day = %L', tag, day),
	format('CREATE TABLE rf_stage_%s_b AS SELECT day, store_id, product_id, qty, '
		   'CASE WHEN product_id %% 10 = 0 THEN amount + 1 ELSE amount END AS amount FROM rf_stage_%s_a', tag, tag),
	format('CREATE TABLE rf_stage_%s_c AS SELECT day, store_id, product_id, qty, '
		   'CASE WHEN product_id %% 2 = 0 THEN amount + 2 ELSE amount + 1 END AS amount FROM rf_stage_%s_a', tag, tag),
	format('CREATE TABLE rf_stage_%s_d AS SELECT day, store_id, product_id, qty + 1 AS qty, amount + 3 AS amount '
		   'FROM rf_stage_%s_a', tag, tag),
	format('VACUUM ANALYZE rf_stage_%s_a, rf_stage_%s_b, rf_stage_%s_c, rf_stage_%s_d', tag, tag, tag, tag)])
FROM rf_variant ORDER BY tag \gexec

\set scenario '(a) identical'
\set sfx a
\ir replace_flat_round.sql
\set scenario '(b) 10% changed'
\set sfx b
\ir replace_flat_round.sql
\set scenario '(c) 50% changed'
\set sfx c
\ir replace_flat_round.sql
\set scenario '(d) all changed'
\set sfx d
\ir replace_flat_round.sql

\echo
\echo 'Replacing one day of' :day_rows 'rows in a 10-day table that is not partitioned, against DELETE + INSERT:'
SELECT r.scenario, r.variant, r.ms, round(r.ms / nullif(b.ms, 0), 2) AS time_ratio,
       pg_size_pretty(r.wal) AS wal, round(r.wal / nullif(b.wal, 0), 3) AS wal_ratio
FROM rf_result r JOIN rf_result b ON b.scenario = r.scenario AND b.variant = 'DELETE + INSERT'
ORDER BY r.seq;

SELECT count(*) AS days_that_differ FROM rf_variant v
WHERE EXISTS (
	(SELECT store_id, product_id, qty, amount FROM rf_sales WHERE day = v.day
	 EXCEPT ALL SELECT store_id, product_id, qty, amount FROM rf_sales WHERE day = '2025-01-02')
	UNION ALL
	(SELECT store_id, product_id, qty, amount FROM rf_sales WHERE day = '2025-01-02'
	 EXCEPT ALL SELECT store_id, product_id, qty, amount FROM rf_sales WHERE day = v.day));

DROP TABLE rf_result, rf_sales;
SELECT format('DROP TABLE %I', relname) FROM pg_class WHERE relname LIKE 'rf\_stage\_%' AND relkind = 'r' \gexec
