-- Property checks for the replace family over random data (fixed seed,
-- printed): after replace_table or replace_partition, in diff and in
-- delete_insert mode, the slice holds exactly the source's rows as a
-- multiset (duplicates and NULLs included, compared as text so 1.0 and
-- 1.00 differ), nothing outside the slice changed, and a second run equals
-- one run and reports nothing deleted or inserted.
--   REPLACE_RANDOM_SEED        setseed() value in [-1, 1]; default 0.4711
--   REPLACE_RANDOM_ITERATIONS  rounds; default 12

\getenv seed REPLACE_RANDOM_SEED
\getenv iterations REPLACE_RANDOM_ITERATIONS
\if :{?seed}
\else
\set seed 0.4711
\endif
\if :{?iterations}
\else
\set iterations 12
\endif

\ir include/begin.sql
SET LOCAL search_path = public, pg_catalog;

-- per round: 2 modes x (replace_table: 3 checks, replace_partition: 4 checks)
SELECT plan(:iterations * 2 * 7);
SELECT diag(format('seed %s, %s rounds (REPLACE_RANDOM_SEED, REPLACE_RANDOM_ITERATIONS)', :'seed', :'iterations'));
SELECT setseed(:'seed');

-- rows of random values, NULLs scattered, duplicates on purpose
CREATE FUNCTION pg_temp.fill(tbl regclass, n int, days int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
		INSERT INTO %s
		SELECT date '2025-01-01' + (random() * (%s - 1))::int,
			   CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 50)::int END,
			   CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 100)::numeric, (random() * 3)::int) END,
			   CASE WHEN random() < 0.1 THEN NULL ELSE E'x''\\"' || (random() * 20)::int END,
			   CASE WHEN random() < 0.1 THEN NULL ELSE jsonb_build_object('k', (random() * 5)::int) END,
			   CASE WHEN random() < 0.1 THEN NULL ELSE ARRAY[(random() * 3)::int, NULL] END
		FROM generate_series(1, %s) g, generate_series(1, 1 + (random() < 0.2)::int) dup$q$,
		tbl, days, n);
END $$;

CREATE FUNCTION pg_temp.multiset(q text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE format('SELECT coalesce(array_agg(x ORDER BY x), ''{}'') FROM (SELECT t::text AS x FROM (%s) t) s', q) INTO r;
	RETURN r;
END $$;

CREATE FUNCTION pg_temp.round(r int, mode text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	c record;
	outside text[];
BEGIN
	DROP TABLE IF EXISTS rt, rs, rp, rps;
	CREATE TABLE rt (day date, a int, n numeric, s text, j jsonb, arr int[]);
	CREATE TABLE rs (LIKE rt);
	PERFORM pg_temp.fill('rt', 200, 5);
	PERFORM pg_temp.fill('rs', 150, 5);
	-- a share of the source's rows are the target's own
	INSERT INTO rs SELECT * FROM rt WHERE random() < 0.3;

	PERFORM replace_table('rt', 'rs', mode => mode);
	RETURN NEXT is(pg_temp.multiset('TABLE rt'), pg_temp.multiset('TABLE rs'),
				   format('round %s %s: replace_table leaves exactly the source', r, mode));
	SELECT * INTO c FROM replace_table('rt', 'rs', mode => mode);
	RETURN NEXT is(pg_temp.multiset('TABLE rt'), pg_temp.multiset('TABLE rs'),
				   format('round %s %s: replace_table twice equals once', r, mode));
	RETURN NEXT ok(mode = 'delete_insert' OR (c.deleted = 0 AND c.inserted = 0),
				   format('round %s %s: the second replace_table writes nothing (%s deleted, %s inserted)',
						  r, mode, c.deleted, c.inserted));

	-- one day of a partitioned table
	CREATE TABLE rp (LIKE rt) PARTITION BY RANGE (day);
	CREATE TABLE rp_a PARTITION OF rp FOR VALUES FROM ('2025-01-01') TO ('2025-01-03');
	CREATE TABLE rp_b PARTITION OF rp FOR VALUES FROM ('2025-01-03') TO ('2025-01-06');
	PERFORM pg_temp.fill('rp', 300, 5);
	CREATE TABLE rps AS SELECT * FROM rs WHERE day = '2025-01-03';
	INSERT INTO rps SELECT * FROM rp WHERE day = '2025-01-03' AND random() < 0.5;
	outside := pg_temp.multiset($q$SELECT * FROM rp WHERE day <> '2025-01-03'$q$);

	PERFORM replace_partition('rp', 'rps', 'day', date '2025-01-03', mode => mode, allow_empty => true);
	RETURN NEXT is(pg_temp.multiset($q$SELECT * FROM rp WHERE day = '2025-01-03'$q$), pg_temp.multiset('TABLE rps'),
				   format('round %s %s: replace_partition leaves exactly the source in the slice', r, mode));
	RETURN NEXT is(pg_temp.multiset($q$SELECT * FROM rp WHERE day <> '2025-01-03'$q$), outside,
				   format('round %s %s: nothing outside the slice changed', r, mode));
	SELECT * INTO c FROM replace_partition('rp', 'rps', 'day', date '2025-01-03', mode => mode, allow_empty => true);
	RETURN NEXT is(pg_temp.multiset('TABLE rp'),
				   pg_temp.multiset($q$SELECT * FROM rps UNION ALL SELECT * FROM rp WHERE day <> '2025-01-03'$q$),
				   format('round %s %s: replace_partition twice equals once', r, mode));
	RETURN NEXT ok(mode = 'delete_insert' OR (c.deleted = 0 AND c.inserted = 0),
				   format('round %s %s: the second replace_partition writes nothing (%s deleted, %s inserted)',
						  r, mode, c.deleted, c.inserted));
END $$;

SELECT pg_temp.round(i, m) FROM generate_series(1, :iterations) i, unnest(ARRAY['diff', 'delete_insert']) m;

SELECT * FROM finish();
ROLLBACK;
