-- Upsert benchmark: idempotent_upsert against raw INSERT ... ON CONFLICT DO
-- UPDATE and against MERGE, on the same data in the same run.
-- psql -v rows=N -f bench/upsert.sql (bench/run sets everything up).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;

CREATE TEMP TABLE bench_result (seq serial, scenario text, variant text, ms numeric, wal numeric);

CREATE FUNCTION pg_temp.bench_record(scenario text, variant text, t0 timestamptz, l0 pg_lsn)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO bench_result (scenario, variant, ms, wal)
  VALUES (scenario, variant,
          round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1),
          pg_current_wal_insert_lsn() - l0)
$$;

DROP TABLE IF EXISTS stg, t_raw, t_merge, t_idem;
CREATE UNLOGGED TABLE stg (id bigint, customer_id int, amount numeric(12,2), order_date date, status text);
INSERT INTO stg SELECT g, g % 5000, (g % 100000) / 100.0, date '2025-01-01' + g % 365, 'new'
FROM generate_series(1, :rows) g;
CREATE TABLE t_raw (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2), order_date date, status text);
CREATE TABLE t_merge (LIKE t_raw INCLUDING ALL);
CREATE TABLE t_idem (LIKE t_raw INCLUDING ALL);
VACUUM ANALYZE stg;

\set raw_sql 'INSERT INTO t_raw SELECT * FROM stg ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, amount = excluded.amount, order_date = excluded.order_date, status = excluded.status'
\set merge_sql 'MERGE INTO t_merge t USING stg s ON t.id = s.id WHEN MATCHED THEN UPDATE SET customer_id = s.customer_id, amount = s.amount, order_date = s.order_date, status = s.status WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.customer_id, s.amount, s.order_date, s.status)'
\set idem_sql 'SELECT * FROM idempotent_upsert(''t_idem'', ''stg'')'

-- one scenario: the three variants, each after a checkpoint
\set scenario 'first load'
\ir upsert_round.sql
VACUUM ANALYZE t_raw, t_merge, t_idem;
\set scenario 'identical replay'
\ir upsert_round.sql
UPDATE stg SET status = 'changed' WHERE id % 10 = 0;
VACUUM ANALYZE stg;
\set scenario '10% changed'
\ir upsert_round.sql

-- the three tables must agree
SELECT count(*) AS rows_differing FROM (
  (TABLE t_raw EXCEPT TABLE t_idem) UNION ALL (TABLE t_idem EXCEPT TABLE t_raw)
  UNION ALL (TABLE t_merge EXCEPT TABLE t_idem)) d;

\set scenario 'keys'
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT count(DISTINCT md5(coalesce(id::text, '_null_') || '-' || coalesce(customer_id::text, '_null_') || '-' || coalesce(order_date::text, '_null_'))) FROM stg \g /dev/null
SELECT pg_temp.bench_record(:'scenario', 'raw', :'t0', :'l0') \g /dev/null
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT count(DISTINCT idempotent_key(id, customer_id, order_date)) FROM stg \g /dev/null
SELECT pg_temp.bench_record(:'scenario', 'pg_idempotent', :'t0', :'l0') \g /dev/null

\set scenario 'fingerprint'
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM t_idem t \g /dev/null
SELECT pg_temp.bench_record(:'scenario', 'raw', :'t0', :'l0') \g /dev/null
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT table_fingerprint('t_idem') \g /dev/null
SELECT pg_temp.bench_record(:'scenario', 'pg_idempotent', :'t0', :'l0') \g /dev/null

\echo
\echo Upsert, keys and fingerprint: :rows rows (raw = INSERT ... ON CONFLICT DO UPDATE; md5 of text; md5(string_agg ORDER BY key))
SELECT b.scenario, b.variant, b.ms, pg_size_pretty(b.wal) AS wal,
       round(b.ms / nullif(r.ms, 0), 2) AS "time vs raw"
FROM bench_result b JOIN bench_result r ON r.scenario = b.scenario AND r.variant = 'raw'
ORDER BY b.seq;
