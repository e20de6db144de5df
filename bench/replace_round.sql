-- One scenario of bench/replace.sql: each variant replaces its own day from
-- its staging table rb_stage_<tag>_<sfx>, after a checkpoint, timed with
-- its WAL.  The raw variant is DELETE + INSERT in one transaction.
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
BEGIN;
DELETE FROM rb_sales WHERE day = '2025-01-10';
SELECT format('INSERT INTO rb_sales SELECT * FROM rb_stage_raw_%s', :'sfx') \gexec
COMMIT;
SELECT pg_temp.rb_record(:'scenario', 'DELETE + INSERT', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT * FROM replace_partition('rb_sales', ('rb_stage_diff_' || :'sfx')::regclass, 'day', date '2025-01-11', 'diff') \g /dev/null
SELECT pg_temp.rb_record(:'scenario', 'diff', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT * FROM replace_partition('rb_sales', ('rb_stage_di_' || :'sfx')::regclass, 'day', date '2025-01-12', 'delete_insert') \g /dev/null
SELECT pg_temp.rb_record(:'scenario', 'delete_insert', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT * FROM replace_partition('rb_sales', ('rb_stage_swap_' || :'sfx')::regclass, 'day', date '2025-01-13', 'swap') \g /dev/null
SELECT pg_temp.rb_record(:'scenario', 'swap', :'t0', :'l0') \g /dev/null

CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT mode AS auto_mode FROM replace_partition('rb_sales', ('rb_stage_auto_' || :'sfx')::regclass, 'day', date '2025-01-14') \gset
SELECT pg_temp.rb_record(:'scenario', 'auto (' || :'auto_mode' || ')', :'t0', :'l0') \g /dev/null
