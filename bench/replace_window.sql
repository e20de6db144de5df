-- One lock-window measure of bench/replace.sql: swap the partition of
-- rb_big holding :day with :src (:rows rows), after a checkpoint; the call's
-- DEBUG1 line says how long the lock was held in it, then the COMMIT.
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0 \gset
SET LOCAL client_min_messages = debug1;
SELECT * FROM replace_partition('rb_big', :'src', 'day', :'day'::date, 'swap');
SET LOCAL client_min_messages = warning;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1) AS swap_call_ms \gset
SELECT clock_timestamp() AS c0 \gset
COMMIT;
SELECT :rows AS partition_rows, :swap_call_ms AS whole_call_ms,
       round(extract(epoch FROM clock_timestamp() - :'c0') * 1000, 1) AS commit_ms;
