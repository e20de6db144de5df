-- One variant of bench/replace_round.sql: replace_partition in :mode, on
-- the variant's own day; auto is recorded with the mode it ran.
SELECT day AS day, format('%s_stage_%s_%s', :'tbl', tag, :'sfx') AS stage FROM variant WHERE variant = :'mode' \gset
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
SELECT mode AS ran FROM replace_partition(:'tbl', :'stage'::regclass, 'day', :'day'::date, :'mode') \gset
SELECT pg_temp.rb_record(:'tbl', :'scenario', CASE WHEN :'mode' = 'auto' THEN 'auto (' || :'ran' || ')' ELSE :'mode' END,
						 :'t0', :'l0') \g /dev/null
