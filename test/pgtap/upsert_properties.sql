-- Property checks for idempotent_upsert, over random batches from a fixed
-- seed (printed as a diagnostic): applying a batch once, twice, and from a
-- shuffled copy gives identical fingerprints; a replay reports every row
-- unchanged; after each batch the target equals "the old rows overwritten by
-- the batch", computed independently with DELETE and INSERT.

\ir include/begin.sql
SET LOCAL search_path = public, pg_catalog;

SELECT plan(25);

-- a batch generator: n rows, keys drawn from 1..keyspace without repeats,
-- every type family and NULLs scattered over the non-key columns
CREATE FUNCTION pg_temp.batch(n int, keyspace int, tag text)
RETURNS TABLE (id bigint, i int, s text, n numeric, f float8, ts timestamptz, j jsonb, a int[])
LANGUAGE sql AS $$
	SELECT k, CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 1000)::int END,
		   CASE WHEN random() < 0.1 THEN NULL ELSE tag || E' \t''"\\' || md5(random()::text) END,
		   CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1e6)::numeric, (random() * 4)::int) END,
		   CASE WHEN random() < 0.1 THEN NULL ELSE random() END,
		   CASE WHEN random() < 0.1 THEN NULL
				ELSE '2020-01-01 00:00+00'::timestamptz + random() * interval '900 days' END,
		   CASE WHEN random() < 0.1 THEN NULL ELSE jsonb_build_object('k', k, 'v', random()) END,
		   CASE WHEN random() < 0.1 THEN NULL ELSE ARRAY[k::int, NULL] END
	FROM (SELECT k FROM generate_series(1, keyspace) k ORDER BY random() LIMIT n) keys
$$;

CREATE TABLE tgt (id bigint PRIMARY KEY, i int, s text, n numeric, f float8, ts timestamptz, j jsonb, a int[]);
CREATE TABLE tgt2 (LIKE tgt INCLUDING ALL);
CREATE TABLE expected (LIKE tgt INCLUDING ALL);

SELECT setseed(0.2025);
SELECT diag('seed 0.2025, 5 rounds of 2000-row batches over 3000 keys');

CREATE FUNCTION pg_temp.round(r int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	fp1 text;
	fp2 text;
	c record;
BEGIN
	DROP TABLE IF EXISTS b, b_shuffled;
	CREATE TEMP TABLE b AS SELECT * FROM pg_temp.batch(2000, 3000, 'r' || r);
	CREATE TEMP TABLE b_shuffled AS SELECT * FROM b ORDER BY random();

	-- what the target must hold: the old rows, overwritten by the batch
	DELETE FROM expected WHERE id IN (SELECT id FROM b);
	INSERT INTO expected SELECT * FROM b;

	PERFORM idempotent_upsert('tgt', 'b');
	fp1 := table_fingerprint('tgt');
	RETURN NEXT is(fp1, table_fingerprint('expected'),
		format('round %s: the target holds the old rows overwritten by the batch', r));

	SELECT * INTO c FROM idempotent_upsert('tgt', 'b');
	fp2 := table_fingerprint('tgt');
	RETURN NEXT is(fp2, fp1, format('round %s: applying the batch twice equals once', r));
	RETURN NEXT is(c.unchanged, 2000::bigint, format('round %s: the replay reports every row unchanged', r));

	PERFORM idempotent_upsert('tgt2', 'b_shuffled');
	RETURN NEXT is(table_fingerprint('tgt2'), fp1,
		format('round %s: a shuffled copy of the same batches gives the same table', r));
	RETURN NEXT is((SELECT count(*) FROM tgt), (SELECT count(*) FROM expected),
		format('round %s: no row lost or duplicated', r));
END $$;

SELECT pg_temp.round(1);
SELECT pg_temp.round(2);
SELECT pg_temp.round(3);
SELECT pg_temp.round(4);
SELECT pg_temp.round(5);

SELECT * FROM finish();
ROLLBACK;
