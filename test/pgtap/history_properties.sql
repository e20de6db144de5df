-- Property checks for idempotent_history, over random sequences of runs from
-- a fixed seed: re-runs, corrected re-runs of the same as_of, backfills at
-- earlier as_of, and full snapshots with deletes => 'close', against a model
-- of history written in plain SQL.  The model keeps each key's history as
-- breakpoints of a step function (a value, or absent, from each breakpoint
-- to the next): a run sets the value at as_of (absent for a key closed by
-- deletes => 'close'), which holds until the next breakpoint, and equal
-- neighbours are merged.  Its versions are its present breakpoints, each
-- valid until the next breakpoint.  After every run the target holds
-- exactly the model's versions; no key has overlapping versions or two
-- current ones; a re-run with the same source and as_of writes nothing and
-- reports every row unchanged; every source row is counted once.

\ir include/begin.sql
SET LOCAL search_path = public, pg_catalog;
SET LOCAL TimeZone = 'UTC';

SELECT plan(7 * 60);

CREATE TABLE hist_p (id int, v text, w int, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from));
CREATE TABLE hist_p_model (id int, t timestamptz, present boolean, v text, w int, PRIMARY KEY (id, t));
CREATE TABLE hist_p_src (id int, v text, w int);

SELECT setseed(0.1717);
SELECT diag('seed 0.1717, 60 runs over 25 keys and 6 moments');

-- the model's versions
CREATE FUNCTION pg_temp.model_versions()
RETURNS TABLE (id int, v text, w int, valid_from timestamptz, valid_to timestamptz)
LANGUAGE sql AS $$
	SELECT id, v, w, t, next_t FROM (
		SELECT m.*, lead(t) OVER (PARTITION BY m.id ORDER BY t) AS next_t FROM hist_p_model m) b
	WHERE present
$$;

CREATE FUNCTION pg_temp.run(r int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	as_of timestamptz := '2025-01-01 00:00+00'::timestamptz + (floor(random() * 6)::int) * interval '1 day';
	mode text := CASE WHEN random() < 0.3 THEN 'close' ELSE 'ignore' END;
	c record;
	c2 record;
	fp text;
	n bigint;
	label text;
BEGIN
	-- a source: a random subset of the keys, values from a small set (so
	-- that neighbours are often identical), NULLs among them
	TRUNCATE hist_p_src;
	INSERT INTO hist_p_src
	SELECT k, (ARRAY['a', 'b', NULL])[1 + floor(random() * 3)::int],
		   CASE WHEN random() < 0.7 THEN 1 ELSE 2 END
	FROM generate_series(1, 25) k WHERE random() < 0.6;
	SELECT count(*) INTO n FROM hist_p_src;
	label := format('run %s (as_of day %s, %s, %s rows)', r,
					extract(day FROM as_of), mode, n);

	-- the model: set each source key's value at as_of ...
	INSERT INTO hist_p_model
	SELECT s.id, as_of, true, s.v, s.w FROM hist_p_src s
	ON CONFLICT (id, t) DO UPDATE SET present = true, v = excluded.v, w = excluded.w;
	-- ... and with 'close', absent from as_of for the keys with a version covering it
	IF mode = 'close' THEN
		INSERT INTO hist_p_model
		SELECT mv.id, as_of, false, NULL, NULL FROM pg_temp.model_versions() mv
		WHERE mv.valid_from <= as_of AND (mv.valid_to IS NULL OR mv.valid_to > as_of)
		  AND mv.id NOT IN (SELECT id FROM hist_p_src)
		ON CONFLICT (id, t) DO UPDATE SET present = false, v = NULL, w = NULL;
	END IF;
	-- then merge equal neighbours (absent before the first breakpoint)
	DELETE FROM hist_p_model m USING (
		SELECT id, t, present, v, w,
			   coalesce(lag(present) OVER k, false) AS pp, lag(v) OVER k AS pv, lag(w) OVER k AS pw
		FROM hist_p_model WINDOW k AS (PARTITION BY id ORDER BY t)) b
	WHERE m.id = b.id AND m.t = b.t AND b.present = b.pp
	  AND (NOT b.present OR (b.v IS NOT DISTINCT FROM b.pv AND b.w IS NOT DISTINCT FROM b.pw));

	SELECT * INTO c FROM idempotent_history('hist_p', 'hist_p_src', as_of => as_of, deletes => mode);

	RETURN NEXT is((SELECT count(*) FROM (
		(SELECT id, v, w, valid_from, valid_to FROM hist_p EXCEPT ALL SELECT * FROM pg_temp.model_versions())
		UNION ALL
		(SELECT * FROM pg_temp.model_versions() EXCEPT ALL SELECT id, v, w, valid_from, valid_to FROM hist_p)) d),
		0::bigint, label || ': the target holds the model''s versions');
	RETURN NEXT is((SELECT count(*) FROM (
		SELECT valid_from, lag(valid_to) OVER k AS pvt, lag(valid_from) OVER k AS pvf
		FROM hist_p WINDOW k AS (PARTITION BY id ORDER BY valid_from)) o
		WHERE pvf IS NOT NULL AND (pvt IS NULL OR pvt > valid_from)), 0::bigint,
		label || ': no overlapping versions');
	RETURN NEXT is((SELECT count(*) FROM (SELECT id FROM hist_p WHERE valid_to IS NULL GROUP BY id
		HAVING count(*) > 1) d), 0::bigint, label || ': at most one current version per key');
	RETURN NEXT is((SELECT count(*) FROM hist_p WHERE valid_to <= valid_from), 0::bigint,
		label || ': no empty versions');
	RETURN NEXT is(c.inserted + c.corrected + c.unchanged, n,
		label || ': every source row is counted once');

	fp := table_fingerprint('hist_p');
	SELECT * INTO c2 FROM idempotent_history('hist_p', 'hist_p_src', as_of => as_of, deletes => mode);
	RETURN NEXT is(table_fingerprint('hist_p'), fp, label || ': a re-run changes nothing');
	RETURN NEXT is(row(c2.inserted, c2.closed, c2.corrected, c2.unchanged)::text,
		row(0, 0, 0, n)::text, label || ': a re-run reports every row unchanged');
END $$;

SELECT pg_temp.run(r) FROM generate_series(1, 60) r;

SELECT * FROM finish();
ROLLBACK;
