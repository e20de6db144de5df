-- one scenario of bench/upsert.sql: raw ON CONFLICT, MERGE, idempotent_upsert
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
:raw_sql;
SELECT pg_temp.bench_record(:'scenario', 'raw', :'t0', :'l0') \g /dev/null
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
:merge_sql;
SELECT pg_temp.bench_record(:'scenario', 'merge', :'t0', :'l0') \g /dev/null
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
:idem_sql \g /dev/null
SELECT pg_temp.bench_record(:'scenario', 'pg_idempotent', :'t0', :'l0') \g /dev/null
