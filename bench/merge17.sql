-- Would PostgreSQL 17's MERGE ... WHEN NOT MATCHED BY SOURCE (with
-- RETURNING merge_action() for the counts) write a replace's diff better
-- than the two statements the diff runs today?  Measures, on one relation
-- that is the whole slice (a leaf partition or replace_table's target; on a
-- slice of a larger table, NOT MATCHED BY SOURCE would have to join the
-- whole table), the two write steps of `diff` for rows without duplicates:
--
--   today:  DELETE ... WHERE NOT EXISTS (source row of the same image)
--           INSERT ... WHERE NOT EXISTS (slice row of the same image)
--   MERGE:  MERGE INTO slice USING source ON image = image
--           WHEN NOT MATCHED BY SOURCE THEN DELETE
--           WHEN NOT MATCHED BY TARGET THEN INSERT
--           RETURNING merge_action()    (counted in a CTE)
--
-- each on its own copy, alternated, ROUNDS times, at 1% and 10% of the
-- rows changed.  Images come from the extension's own _replace_image.
-- Skips itself before 17.  psql -v rows=N -v rounds=R -f bench/merge17.sql
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
SELECT current_setting('server_version_num')::int >= 170000 AS has_merge_by_source \gset
\if :has_merge_by_source
\else
\echo 'bench/merge17.sql: PostgreSQL 17 or later only'
\quit
\endif
\if :{?rows}
\else
\set rows 1000000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
-- the schema of the extension's internal helpers: pgi_internal from 0.2.0
SELECT coalesce((SELECT 'pgi_internal' FROM pg_namespace WHERE nspname = 'pgi_internal'),
	(SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pg_idempotent')) AS ext \gset

CREATE TEMP TABLE m17_result (round int, pct int, variant text, ms numeric, deleted bigint, inserted bigint);
DROP TABLE IF EXISTS m17_base, m17_src, m17_a, m17_b;
CREATE UNLOGGED TABLE m17_base (id bigint, customer_id int, amount numeric(12,2), order_date date, status text);
INSERT INTO m17_base SELECT g, g % 5000, (g % 100000) / 100.0, date '2025-01-01' + g % 365, 'new'
FROM generate_series(1, :rows) g;
CREATE UNLOGGED TABLE m17_src (LIKE m17_base);
CREATE TABLE m17_a (LIKE m17_base);
CREATE TABLE m17_b (LIKE m17_base);

CREATE FUNCTION pg_temp.m17_round(r int, pct int) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
	t0 timestamptz;
	d bigint;
	i bigint;
	img_t text := format('%I._replace_image(t.id, t.customer_id, t.amount, t.order_date, t.status)', current_setting('m17.ext'));
	img_s text := format('%I._replace_image(s.id, s.customer_id, s.amount, s.order_date, s.status)', current_setting('m17.ext'));
BEGIN
	TRUNCATE m17_src, m17_a, m17_b;
	INSERT INTO m17_src SELECT id, customer_id, amount, order_date,
		CASE WHEN id % 100 < pct THEN 'changed' ELSE status END FROM m17_base;
	INSERT INTO m17_a SELECT * FROM m17_base;
	INSERT INTO m17_b SELECT * FROM m17_base;
	ANALYZE m17_src, m17_a, m17_b;

	-- alternate which goes first
	FOR k IN 0..1 LOOP
		IF (k + r) % 2 = 0 THEN
			t0 := clock_timestamp();
			EXECUTE format('DELETE FROM m17_a t WHERE NOT EXISTS (SELECT 1 FROM m17_src s WHERE %s = %s)', img_s, img_t);
			GET DIAGNOSTICS d = ROW_COUNT;
			EXECUTE format('INSERT INTO m17_a SELECT * FROM m17_src s WHERE NOT EXISTS (SELECT 1 FROM m17_a t WHERE %s = %s)', img_t, img_s);
			GET DIAGNOSTICS i = ROW_COUNT;
			INSERT INTO m17_result VALUES (r, pct, 'DELETE + INSERT (today)',
				round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1), d, i);
		ELSE
			t0 := clock_timestamp();
			EXECUTE format('WITH m AS (MERGE INTO m17_b t USING (SELECT s.*, %s AS img FROM m17_src s) s ON %s = s.img '
				'WHEN NOT MATCHED BY SOURCE THEN DELETE '
				'WHEN NOT MATCHED BY TARGET THEN INSERT VALUES (s.id, s.customer_id, s.amount, s.order_date, s.status) '
				'RETURNING merge_action() AS a) '
				'SELECT count(*) FILTER (WHERE a = ''DELETE''), count(*) FILTER (WHERE a = ''INSERT'') FROM m', img_s, img_t)
				INTO d, i;
			INSERT INTO m17_result VALUES (r, pct, 'MERGE ... NOT MATCHED BY SOURCE',
				round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1), d, i);
		END IF;
	END LOOP;
	IF EXISTS ((TABLE m17_a EXCEPT ALL TABLE m17_b) UNION ALL (TABLE m17_b EXCEPT ALL TABLE m17_a)) THEN
		RAISE EXCEPTION 'the two variants disagree';
	END IF;
END $f$;

SELECT set_config('m17.ext', :'ext', false) \g /dev/null
SELECT pg_temp.m17_round(r, pct) FROM generate_series(1, :rounds) r, (VALUES (1), (10)) p(pct) \g /dev/null

\echo
\echo 'diff write steps on one relation (the whole slice), PostgreSQL 17+ MERGE against today''s two statements'
SELECT pct || '%' AS changed, variant, count(*) AS rounds, round(avg(ms)) AS mean_ms,
	min(ms) AS best_ms, max(ms) AS worst_ms, max(deleted) AS deleted, max(inserted) AS inserted,
	round(avg(ms) / avg(avg(ms)) FILTER (WHERE variant LIKE 'DELETE%') OVER (PARTITION BY pct), 2) AS ratio
FROM m17_result GROUP BY pct, variant ORDER BY pct, variant;
DROP TABLE m17_base, m17_src, m17_a, m17_b;
