-- Re-materializing a day: the daily_sales table holds one row per shop and
-- day, computed from the orders of that day.  The job that computes a day
-- may run again (a retry, a backfill, late orders): after each run the day
-- must hold exactly what the orders say, and the other days nothing new.

\echo
\echo '== daily_sales, partitioned by day, and the orders it is computed from'
CREATE TABLE sales_orders (id bigint PRIMARY KEY, shop int, day date, amount numeric(12,2));
INSERT INTO sales_orders
SELECT g, (g / 10) % 20, date '2025-01-01' + g % 10, (g % 97) + 0.99 FROM generate_series(1, 50000) g;
CREATE TABLE daily_sales (day date NOT NULL, shop int NOT NULL, orders bigint, revenue numeric(14,2))
	PARTITION BY RANGE (day);
SELECT format('CREATE TABLE daily_sales_%s PARTITION OF daily_sales FOR VALUES FROM (%L) TO (%L)',
			  to_char(d, 'YYYYMMDD'), d, d + 1)
FROM generate_series(date '2025-01-01', date '2025-01-10', '1 day') g, LATERAL (SELECT g::date AS d) x \gexec
CREATE VIEW daily_sales_source AS
SELECT day, shop, count(*) AS orders, sum(amount)::numeric(14,2) AS revenue
FROM sales_orders GROUP BY day, shop;

\echo
\echo '== Every day computed once (day | deleted | inserted | unchanged | mode)'
SELECT format('CREATE TEMP TABLE day_%s AS SELECT * FROM daily_sales_source WHERE day = %L',
			  to_char(d, 'YYYYMMDD'), d)
FROM generate_series(date '2025-01-01', date '2025-01-10', '1 day') g, LATERAL (SELECT g::date AS d) x \gexec
\pset tuples_only on
\pset format unaligned
SELECT format('SELECT %L AS day, * FROM replace_partition(''daily_sales'', ''day_%s'', ''day'', %L::date)',
			  d, to_char(d, 'YYYYMMDD'), d)
FROM generate_series(date '2025-01-01', date '2025-01-10', '1 day') g, LATERAL (SELECT g::date AS d) x \gexec
SELECT table_fingerprint('daily_sales') AS first \gset

\echo
\echo '== 2025-01-05 recomputed ten times: every re-run finds nothing to change (run | deleted | inserted | unchanged | mode)'
SELECT format('SELECT %s AS run, * FROM replace_partition(''daily_sales'', ''day_20250105'', ''day'', date ''2025-01-05'')', n)
FROM generate_series(1, 10) n \gexec
\pset tuples_only off
\pset format aligned
SELECT table_fingerprint('daily_sales') AS tenth \gset
SELECT :'first' = :'tenth' AS same_table \gset
\if :same_table
\echo 'Same fingerprint after ten re-runs of the day:' :tenth
\else
\echo 'DIFFERENT fingerprints!'
SELECT 1 / 0;
\endif

\echo
\echo '== Late orders arrive for 2025-01-05: one recomputation replaces just that day, twice'
INSERT INTO sales_orders SELECT 100000 + g, g % 3, date '2025-01-05', 10 FROM generate_series(1, 30) g;
DROP TABLE day_20250105;
CREATE TEMP TABLE day_20250105 AS SELECT * FROM daily_sales_source WHERE day = '2025-01-05';
SELECT * FROM replace_partition('daily_sales', 'day_20250105', 'day', date '2025-01-05');
SELECT * FROM replace_partition('daily_sales', 'day_20250105', 'day', date '2025-01-05');
SELECT day, sum(orders) AS orders, sum(revenue) AS revenue FROM daily_sales
WHERE day BETWEEN '2025-01-04' AND '2025-01-06' GROUP BY day ORDER BY day;

\echo
\echo '== The same day with a partition swap: the new leaf is built beside the old one, then swapped in'
SELECT * FROM replace_partition('daily_sales', 'day_20250105', 'day', date '2025-01-05', mode => 'swap');
SELECT table_fingerprint('daily_sales') AS after_swap \gset
SELECT * FROM replace_partition('daily_sales', 'day_20250105', 'day', date '2025-01-05', mode => 'swap');
SELECT :'after_swap' = table_fingerprint('daily_sales') AS same_after_second_swap;

\echo
\echo '== An upstream failure delivers an empty day: refused, the day is kept'
CREATE TEMP TABLE empty_day (LIKE daily_sales);
DO $$
BEGIN
	PERFORM replace_partition('daily_sales', 'empty_day', 'day', date '2025-01-06');
	RAISE EXCEPTION 'an empty source wiped a day';
EXCEPTION WHEN OTHERS THEN
	IF SQLERRM LIKE '%wiped%' THEN RAISE; END IF;
	RAISE NOTICE 'refused: % (%)', SQLERRM, SQLSTATE;
END $$;
SELECT count(*) AS shops_on_2025_01_06 FROM daily_sales WHERE day = '2025-01-06';

\echo
\echo '== Delete missing rows within a scope: shop 3 closed its books for the first five days'
CREATE TEMP TABLE shop3_restated AS
SELECT * FROM daily_sales WHERE shop = 3 AND day < '2025-01-06' AND day <> '2025-01-02';
SELECT * FROM replace_where('daily_sales', 'shop3_restated', $$shop = 3 AND day < '2025-01-06'$$);
SELECT * FROM replace_where('daily_sales', 'shop3_restated', $$shop = 3 AND day < '2025-01-06'$$);
SELECT count(*) FILTER (WHERE shop = 3 AND day < '2025-01-06') AS shop3_days_left,
	   count(*) FILTER (WHERE shop <> 3 OR day >= '2025-01-06') AS other_rows_untouched
FROM daily_sales;
