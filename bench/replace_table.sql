-- One table of bench/replace.sql: :tbl, 30 days of day_rows rows,
-- partitioned by day when :partitioned.  Each variant replaces a day of its
-- own from staging tables built before any timing, in four scenarios; then
-- the figures, and a check that every variant's day ended the same.
SELECT format('CREATE TABLE %I (day date NOT NULL, store_id int NOT NULL, product_id int NOT NULL, '
			  'qty int NOT NULL, amount numeric(12,2) NOT NULL, PRIMARY KEY (day, store_id, product_id))%s',
			  :'tbl', CASE WHEN :'partitioned'::boolean THEN ' PARTITION BY RANGE (day)' ELSE '' END) \gexec
SELECT format('CREATE INDEX ON %I (product_id)', :'tbl') \gexec
SELECT format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
              :'tbl' || to_char(d, '_MMDD'), :'tbl', d::date, d::date + 1)
FROM generate_series(date '2025-01-01', date '2025-01-30', '1 day') d
WHERE :'partitioned'::boolean \gexec
SELECT format('INSERT INTO %I SELECT d::date, g / 1000, g %% 1000, g %% 7 + 1, (g %% 10000) / 100.0 '
			  'FROM generate_series(date ''2025-01-01'', date ''2025-01-30'', ''1 day'') d, '
			  'generate_series(0, %s - 1) g', :'tbl', :day_rows) \gexec
SELECT format('VACUUM ANALYZE %I', :'tbl') \gexec

-- the variants and their days; every day starts with the same rows
DROP TABLE IF EXISTS variant;
CREATE TEMP TABLE variant (variant text, tag text, day date);
INSERT INTO variant VALUES
	('DELETE + INSERT', 'raw', '2025-01-10'),
	('diff', 'diff', '2025-01-11'),
	('delete_insert', 'di', '2025-01-12'),
	('swap', 'swap', '2025-01-13'),
	('auto', 'auto', '2025-01-14');
DELETE FROM variant WHERE variant = 'swap' AND NOT :'partitioned'::boolean;

-- staging per variant and scenario: (b) changes the products divisible by
-- 10, (c) by 2 (the other half too, differently), (d) every row
SELECT unnest(ARRAY[
	format('CREATE TABLE %1$I AS SELECT * FROM %2$I WHERE day = %3$L', st || 'a', :'tbl', day),
	format('CREATE TABLE %I AS SELECT day, store_id, product_id, qty, '
		   'CASE WHEN product_id %% 10 = 0 THEN amount + 1 ELSE amount END AS amount FROM %I', st || 'b', st || 'a'),
	format('CREATE TABLE %I AS SELECT day, store_id, product_id, qty, '
		   'CASE WHEN product_id %% 2 = 0 THEN amount + 2 ELSE amount + 1 END AS amount FROM %I', st || 'c', st || 'a'),
	format('CREATE TABLE %I AS SELECT day, store_id, product_id, qty + 1 AS qty, amount + 3 AS amount FROM %I',
		   st || 'd', st || 'a'),
	format('VACUUM ANALYZE %I, %I, %I, %I', st || 'a', st || 'b', st || 'c', st || 'd')])
FROM (SELECT format('%s_stage_%s_', :'tbl', tag) AS st, day FROM variant ORDER BY tag) v \gexec

\set scenario '(a) identical'
\set sfx a
\ir replace_round.sql
\set scenario '(b) 10% changed'
\set sfx b
\ir replace_round.sql
\set scenario '(c) 50% changed'
\set sfx c
\ir replace_round.sql
\set scenario '(d) all changed'
\set sfx d
\ir replace_round.sql

\echo
\if :partitioned
\echo 'Replacing one day of' :day_rows 'rows in a 30-day table partitioned by day, against DELETE + INSERT in one transaction:'
\else
\echo 'Replacing one day of' :day_rows 'rows in a 30-day table that is not partitioned (auto is diff), against DELETE + INSERT in one transaction:'
\endif
SELECT r.scenario, r.variant, r.ms, round(r.ms / nullif(b.ms, 0), 2) AS time_ratio,
       pg_size_pretty(r.wal) AS wal, round(r.wal / nullif(b.wal, 0), 3) AS wal_ratio
FROM rb_result r JOIN rb_result b ON b.tbl = r.tbl AND b.scenario = r.scenario AND b.variant = 'DELETE + INSERT'
WHERE r.tbl = :'tbl'
ORDER BY r.seq;

SELECT format('SELECT count(*) AS days_that_differ FROM variant v WHERE EXISTS ('
			  '(SELECT store_id, product_id, qty, amount FROM %1$I WHERE day = v.day '
			  'EXCEPT ALL SELECT store_id, product_id, qty, amount FROM %1$I WHERE day = %2$L) UNION ALL '
			  '(SELECT store_id, product_id, qty, amount FROM %1$I WHERE day = %2$L '
			  'EXCEPT ALL SELECT store_id, product_id, qty, amount FROM %1$I WHERE day = v.day))',
			  :'tbl', day) FROM variant WHERE tag = 'raw' \gexec
SELECT format('DROP TABLE %I', relname) FROM pg_class
WHERE relname LIKE :'tbl' || '\_stage\_%' AND relkind = 'r' \gexec
