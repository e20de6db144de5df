-- One scenario of bench/replace_table.sql: each variant replaces its own
-- day of :tbl from <tbl>_stage_<tag>_<sfx>, after a checkpoint, timed with
-- its WAL.  The raw variant is DELETE + INSERT in one transaction.
SELECT day AS day, format('%s_stage_raw_%s', :'tbl', :'sfx') AS stage FROM variant WHERE tag = 'raw' \gset
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
BEGIN;
SELECT format('DELETE FROM %I WHERE day = %L', :'tbl', :'day') \gexec
SELECT format('INSERT INTO %I SELECT * FROM %I', :'tbl', :'stage') \gexec
COMMIT;
SELECT pg_temp.rb_record(:'tbl', :'scenario', 'DELETE + INSERT', :'t0', :'l0') \g /dev/null

\set mode diff
\ir replace_mode.sql
\set mode delete_insert
\ir replace_mode.sql
SELECT EXISTS (SELECT FROM variant WHERE variant = 'swap') AS has_swap \gset
\if :has_swap
\set mode swap
\ir replace_mode.sql
\endif
\set mode auto
\ir replace_mode.sql
