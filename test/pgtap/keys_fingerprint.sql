-- Property checks for idempotent_key, stable_bucket, table_fingerprint and
-- assert_idempotent.  Run with pg_prove against a database where the
-- extensions pgtap and pg_idempotent can be created (they are created here
-- if missing); everything runs in one transaction that is rolled back.

\ir include/begin.sql
SET LOCAL search_path = public, pg_catalog;

SELECT plan(42);

-- Random but reproducible data: every type family, NULLs scattered.
SELECT setseed(0.4242);
CREATE TEMP TABLE src AS
SELECT g AS id,
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 60000 - 30000)::int END AS i,
       CASE WHEN random() < 0.1 THEN NULL ELSE md5(random()::text) END AS s,
       CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1e6)::numeric, 3) END AS n,
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 1e6)::float8 END AS f,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE '2020-01-01 00:00+00'::timestamptz + random() * interval '1000 days' END AS ts,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE jsonb_build_object('k', g, 'v', round(random()::numeric, 2)) END AS j,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE ARRAY[g, NULL, (random() * 10)::int] END AS a
FROM generate_series(1, 2000) g;
CREATE TEMP TABLE copy1 AS SELECT * FROM src ORDER BY random();
CREATE TEMP TABLE copy2 AS SELECT * FROM src ORDER BY s DESC NULLS FIRST, id;

-- Keys of every row under default settings, to compare with later.
CREATE TEMP TABLE keys0 AS
SELECT id, idempotent_key(i, s, n, f, ts, j, a) AS k FROM src;
SELECT table_fingerprint('src') AS fp0 \gset

-- 1. table_fingerprint: order and layout independence
SELECT is(table_fingerprint('copy1'), :'fp0', 'fingerprint ignores row order (random order)');
SELECT is(table_fingerprint('copy2'), :'fp0', 'fingerprint ignores row order (sorted by text)');
DELETE FROM copy1 WHERE id % 2 = 0;
INSERT INTO copy1 SELECT * FROM src WHERE id % 2 = 0;
SELECT is(table_fingerprint('copy1'), :'fp0', 'fingerprint ignores delete and re-insert');
UPDATE copy2 SET s = s;

SELECT is(table_fingerprint('copy2'), :'fp0', 'fingerprint ignores no-op updates (new row versions)');

-- 2. multiplicity
INSERT INTO copy1 SELECT * FROM src WHERE id = 7;
SELECT isnt(table_fingerprint('copy1'), :'fp0', 'a duplicated row changes the fingerprint');
INSERT INTO copy1 SELECT * FROM src WHERE id = 7;
SELECT isnt(table_fingerprint('copy1'), :'fp0', 'a row three times differs too');
DELETE FROM copy1 WHERE ctid IN (SELECT ctid FROM copy1 WHERE id = 7 LIMIT 2);
SELECT is(table_fingerprint('copy1'), :'fp0', 'removing the extra copies restores it');
DELETE FROM copy1 WHERE id = 7;
SELECT isnt(table_fingerprint('copy1'), :'fp0', 'a missing row changes the fingerprint');
INSERT INTO copy1 SELECT * FROM src WHERE id = 7;

-- 3. NULL position and single-cell changes
CREATE TEMP TABLE nullpos1 AS SELECT 1 AS a, NULL::int AS b;
CREATE TEMP TABLE nullpos2 AS SELECT NULL::int AS a, 1 AS b;
SELECT isnt(table_fingerprint('nullpos1'), table_fingerprint('nullpos2'),
            '(1, NULL) and (NULL, 1) differ');
UPDATE copy1 SET i = NULL WHERE id = (SELECT min(id) FROM copy1 WHERE i IS NOT NULL);
SELECT isnt(table_fingerprint('copy1'), :'fp0', 'one value set to NULL changes the fingerprint');
UPDATE copy2 SET ts = ts + interval '1 microsecond' WHERE id = 1000;
SELECT isnt(table_fingerprint('copy2'), :'fp0', 'one microsecond changes the fingerprint');

-- 4. settings independence of keys and fingerprints
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'America/Caracas';
SET LOCAL extra_float_digits = -15;
SET LOCAL bytea_output = 'escape';
SET LOCAL IntervalStyle = 'iso_8601';
SELECT is((SELECT count(*) FROM src JOIN keys0 USING (id)
           WHERE idempotent_key(i, s, n, f, ts, j, a) <> keys0.k), 0::bigint,
          'keys do not depend on DateStyle, TimeZone, extra_float_digits, bytea_output, IntervalStyle');
SELECT is(table_fingerprint('src'), :'fp0', 'fingerprint does not depend on them either');
SET LOCAL DateStyle = 'Postgres, MDY';
SET LOCAL TimeZone = 'Asia/Kolkata';
SET LOCAL extra_float_digits = 3;
SET LOCAL search_path = pg_catalog, public;
SELECT is((SELECT count(*) FROM src JOIN keys0 USING (id)
           WHERE public.idempotent_key(i, s, n, f, ts, j, a) <> keys0.k), 0::bigint,
          'keys do not depend on a second set of settings nor on search_path');
SELECT is(public.table_fingerprint('src'), :'fp0',
          'fingerprint does not depend on search_path');
SET LOCAL client_encoding = 'LATIN1';
SELECT is((SELECT count(*) FROM src JOIN keys0 USING (id)
           WHERE public.idempotent_key(i, s, n, f, ts, j, a) <> keys0.k), 0::bigint,
          'keys do not depend on client_encoding');
RESET client_encoding;
RESET DateStyle;
RESET TimeZone;
RESET extra_float_digits;
RESET bytea_output;
RESET IntervalStyle;
SET LOCAL search_path = public, pg_catalog;

-- 5. parallel partial aggregation gives the same fingerprint (temporary
-- tables are never scanned in parallel, so use a plain one)
CREATE TABLE pgi_tap_par AS SELECT * FROM src;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT is(table_fingerprint('pgi_tap_par'), :'fp0', 'fingerprint is the same with parallel workers');
SELECT is(pgi_internal._fingerprint_agg(t.*), :'fp0', 'and from the aggregate run by hand')
FROM pgi_tap_par t;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is(table_fingerprint('pgi_tap_par'), :'fp0', 'and without');
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- 6. folding: integers, numerics, floats, text
SELECT is((SELECT count(*) FROM generate_series(-32768, 32767, 7) x
           WHERE idempotent_key(x::int2) <> idempotent_key(x::int4)
              OR idempotent_key(x::int4) <> idempotent_key(x::int8)
              OR idempotent_key(x::int8) <> idempotent_key(x::numeric)), 0::bigint,
          'int2, int4, int8 and numeric fold');
SELECT is((SELECT count(*) FROM generate_series(1, 2000) g,
                  LATERAL (SELECT (random() * 1e12)::bigint * (CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END) AS x) r
           WHERE idempotent_key(x) <> idempotent_key(x::numeric(30, 6))), 0::bigint,
          'large int8 and numeric with a scale fold');
SELECT is((SELECT count(*) FROM src
           WHERE n IS NOT NULL AND idempotent_key(n) <> idempotent_key(n::numeric(20, 9))), 0::bigint,
          'numeric display scale does not matter');
SELECT is((SELECT count(*) FROM generate_series(1, 1000) g,
                  LATERAL (SELECT (random() * 1000)::float4 AS x) r
           WHERE idempotent_key(x) <> idempotent_key(x::float8)), 0::bigint,
          'float4 and float8 fold');
SELECT is((SELECT count(*) FROM src WHERE s IS NOT NULL
           AND (idempotent_key(s) <> idempotent_key(s::varchar)
                OR idempotent_key(s) <> idempotent_key(s::char(40))
                OR idempotent_key(s) <> idempotent_key(s::name))), 0::bigint,
          'text, varchar, char(n) and name fold');
SELECT isnt(idempotent_key(1), idempotent_key(1::float8), 'exact numbers and floats do not fold');
SELECT is((SELECT count(*) FROM src WHERE a IS NOT NULL
           AND idempotent_key(a) <> idempotent_key(a::int8[])), 0::bigint,
          'int[] and bigint[] fold element-wise');

-- 7. injectivity: splitting a string anywhere gives a different key
SELECT is((SELECT count(DISTINCT idempotent_key(substr(w, 1, p), substr(w, p + 1)))
           FROM (SELECT 'abcdefgh' AS w) x, generate_series(0, 8) p), 9::bigint,
          'every split of a string has its own key');
SELECT is((SELECT count(DISTINCT k) FROM (
             SELECT idempotent_key(v) AS k FROM (VALUES ('x'), (''), (NULL)) t(v)
             UNION ALL SELECT idempotent_key(v, w) FROM (VALUES ('x'), (''), (NULL)) t(v),
                                                        (VALUES ('x'), (''), (NULL)) u(w)
             UNION ALL SELECT idempotent_key('x'::text, '', NULL)) z), 13::bigint,
          'NULL, empty and argument count are all distinguished');
SELECT is((SELECT count(DISTINCT k) FROM keys0), (SELECT count(*) FROM keys0),
          'two thousand random rows have two thousand keys');
SELECT is(idempotent_key(VARIADIC ARRAY['a', 'b', NULL]), idempotent_key('a'::text, 'b'::text, NULL),
          'VARIADIC array elements are the arguments');

-- 8. stable_bucket
SELECT is((SELECT count(*) FROM src WHERE stable_bucket(id, 13) NOT BETWEEN 0 AND 12), 0::bigint,
          'buckets are in range');
SELECT is((SELECT count(DISTINCT stable_bucket(id, 13)) FROM src), 13::bigint,
          'every bucket is used');
SELECT is((SELECT count(*) FROM src WHERE stable_bucket(id, 13) <> stable_bucket(id::int8, 13)),
          0::bigint, 'buckets fold like keys');
SELECT ok((SELECT max(c) - min(c) < 100 FROM (SELECT count(*) AS c FROM src WHERE s IS NOT NULL GROUP BY stable_bucket(s, 4)) b),
          'buckets are roughly even');
SELECT throws_ok('SELECT stable_bucket(1, 0)', '22023', NULL, 'zero buckets is 22023');
SELECT throws_ok('SELECT stable_bucket(1, NULL)', '22004', NULL, 'NULL buckets is 22004');

-- 9. schema changes that keep values keep the fingerprint
ALTER TABLE copy2 ALTER COLUMN i TYPE bigint;
UPDATE copy2 SET ts = ts - interval '1 microsecond' WHERE id = 1000;
SELECT is(table_fingerprint('copy2'), :'fp0', 'widening int to bigint keeps the fingerprint');
ALTER TABLE copy2 ADD COLUMN extra int;
SELECT isnt(table_fingerprint('copy2'), :'fp0', 'an added (NULL) column changes it');

-- 10. assert_idempotent
CREATE TEMP TABLE target (id int PRIMARY KEY, v text);
SELECT lives_ok($$SELECT assert_idempotent(
                    'INSERT INTO target SELECT id, s FROM src ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v',
                    'target')$$,
                'an upsert of the same rows is idempotent');
SELECT is((SELECT count(*) FROM target), 2000::bigint, 'and its effects stay');
SELECT throws_ok($$SELECT assert_idempotent('UPDATE target SET v = v || ''x'' WHERE id = 1', 'target')$$,
                 'P0004', 'statement is not idempotent', 'an append is not idempotent');
SELECT throws_ok($$SELECT assert_idempotent('SELECT 1', VARIADIC '{}'::regclass[])$$,
                 '22023', NULL, 'an empty table list is 22023');

SELECT * FROM finish();
ROLLBACK;
