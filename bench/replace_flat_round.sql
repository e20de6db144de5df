-- One scenario of bench/replace_flat.sql: each variant replaces its own day
-- from rf_stage_<tag>_<sfx>, after a checkpoint, timed with its WAL.
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
BEGIN;
DELETE FROM rf_sales WHERE day = '2025-01-02';
SELECT format('INSERT INTO rf_sales SELECT * FROM rf_stage_raw_%s', :'sfx') \gexec
COMMIT;
SELECT pg_temp.rf_record(:'scenario', 'DELETE + INSERT', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT * FROM replace_partition('rf_sales', ('rf_stage_diff_' || :'sfx')::regclass, 'day', date '2025-01-03', 'diff') \g /dev/null
SELECT pg_temp.rf_record(:'scenario', 'diff', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT * FROM replace_partition('rf_sales', ('rf_stage_di_' || :'sfx')::regclass, 'day', date '2025-01-04', 'delete_insert') \g /dev/null
SELECT pg_temp.rf_record(:'scenario', 'delete_insert', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT mode AS auto_mode FROM replace_partition('rf_sales', ('rf_stage_auto_' || :'sfx')::regclass, 'day', date '2025-01-05') \gset
SELECT pg_temp.rf_record(:'scenario', 'auto (' || :'auto_mode' || ')', :'t0', :'l0') \g /dev/null
