-- The orders load: a nightly job copies the day's orders into a staging
-- table and merges them into "orders".  The job fails half-way, or the
-- scheduler retries it, or someone re-runs it by hand: the merge must give
-- the same table however many times it runs.

\echo
\echo '== The orders table, and a staging table holding 100,000 incoming orders'
CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id int NOT NULL,
	amount numeric(12,2) NOT NULL,
	order_date date NOT NULL,
	status text NOT NULL
);
CREATE TABLE orders_staging (LIKE orders);
INSERT INTO orders_staging
SELECT g, g % 5000, (g % 10000) / 100.0, date '2025-01-01' + g % 31, 'placed'
FROM generate_series(1, 100000) g;

\echo
\echo '== Run 1: the first load inserts every order'
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
SELECT table_fingerprint('orders') AS after_run_1 \gset
\echo 'fingerprint after run 1:' :after_run_1

\echo
\echo '== Run 2: the retry of the same batch finds nothing to do and writes nothing'
SELECT pg_current_wal_insert_lsn() AS wal_before \gset
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
SELECT table_fingerprint('orders') AS after_run_2 \gset
\echo 'fingerprint after run 2:' :after_run_2
SELECT pg_size_pretty(pg_current_wal_insert_lsn() - :'wal_before') AS "WAL written by run 2";

SELECT :'after_run_1' = :'after_run_2' AS same_table \gset
\if :same_table
\echo 'Same fingerprint: the re-run changed nothing.'
\else
\echo 'DIFFERENT fingerprints: the re-run changed the table!'
SELECT 1 / 0;
\endif

\echo
\echo '== The next day: 1,000 orders were paid, 500 are new.  Run it twice again.'
UPDATE orders_staging SET status = 'paid' WHERE id % 100 = 0;
INSERT INTO orders_staging
SELECT g, g % 5000, 19.99, date '2025-02-01', 'placed' FROM generate_series(100001, 100500) g;
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
SELECT table_fingerprint('orders') AS after_run_3 \gset
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
SELECT table_fingerprint('orders') AS after_run_4 \gset
SELECT :'after_run_3' = :'after_run_4' AS same_table \gset
\if :same_table
\echo 'Same fingerprint after both runs:' :after_run_4
\else
\echo 'DIFFERENT fingerprints: the re-run changed the table!'
SELECT 1 / 0;
\endif

\echo
\echo '== A late, out-of-order message cannot roll an order back: version columns'
CREATE TABLE order_status (id bigint PRIMARY KEY, status text, updated_seq bigint);
CREATE TABLE order_status_in (LIKE order_status);
INSERT INTO order_status_in VALUES (1, 'shipped', 3), (2, 'paid', 2);
SELECT * FROM idempotent_upsert('order_status', 'order_status_in', version_column => 'updated_seq');
TRUNCATE order_status_in;
INSERT INTO order_status_in VALUES (1, 'paid', 2), (2, 'shipped', 3);
SELECT * FROM idempotent_upsert('order_status', 'order_status_in', version_column => 'updated_seq');
SELECT * FROM order_status ORDER BY id;

\echo
\echo '== assert_idempotent catches a load that is not safe to re-run'
CREATE TABLE order_log (id bigint, status text);
CREATE TABLE order_counts (customer_id int PRIMARY KEY, orders int, counted_at timestamptz);
INSERT INTO order_counts SELECT customer_id, 0, NULL FROM orders GROUP BY customer_id;
DO $$
DECLARE
	cases text[][] := ARRAY[
		['a blind INSERT', 'INSERT INTO order_log SELECT id, status FROM orders_staging WHERE id <= 10', 'order_log'],
		['a counter increment', 'UPDATE order_counts SET orders = orders + 1', 'order_counts'],
		['now() in the data', 'UPDATE order_counts SET counted_at = now()', 'order_counts']];
	detail text;
BEGIN
	FOR i IN 1 .. array_length(cases, 1) LOOP
		BEGIN
			PERFORM assert_idempotent(cases[i][2], cases[i][3]::regclass);
			RAISE EXCEPTION 'assert_idempotent missed %', cases[i][1];
		EXCEPTION WHEN assert_failure THEN
			GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
			RAISE NOTICE '% is caught: % (%)', cases[i][1], SQLERRM, detail;
		END;
	END LOOP;
END $$;
SELECT assert_idempotent($$SELECT * FROM idempotent_upsert('orders', 'orders_staging')$$, 'orders') \g /dev/null
\echo 'The idempotent_upsert of the same batch passes the same check.'
