--
-- idempotent_key and stable_bucket
--

-- The pinned test vectors: every expression must give its recorded key.
-- A mismatch here means stored keys would change: never "fix" the file.
CREATE TEMP TABLE key_vectors (expression text, expected uuid);
\copy key_vectors FROM 'test/vectors/idempotent_key.csv' WITH (FORMAT csv, HEADER true)
CREATE FUNCTION pg_temp.eval_key(e text) RETURNS uuid LANGUAGE plpgsql AS
$$DECLARE r uuid; BEGIN EXECUTE 'SELECT ' || e INTO r; RETURN r; END$$;
CREATE FUNCTION pg_temp.vector_mismatches() RETURNS SETOF text LANGUAGE sql AS
$$SELECT expression FROM key_vectors
  WHERE pg_temp.eval_key(expression) IS DISTINCT FROM expected
  ORDER BY expression$$;
SELECT count(*) >= 300 AS enough_vectors FROM key_vectors;
SELECT * FROM pg_temp.vector_mismatches();

-- The same vectors under other session settings: keys do not move.
BEGIN;
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'America/St_Johns';
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL extra_float_digits = -3;
SET LOCAL bytea_output = 'escape';
SET LOCAL client_encoding = 'LATIN1';
SELECT * FROM pg_temp.vector_mismatches();
ROLLBACK;
BEGIN;
SET LOCAL DateStyle = 'German';
SET LOCAL TimeZone = 'Pacific/Kiritimati';
SET LOCAL extra_float_digits = 3;
SET LOCAL search_path = pg_catalog, pg_temp, public;
SELECT * FROM pg_temp.vector_mismatches();
ROLLBACK;

-- The algorithm from first principles (docs/keys-and-fingerprints.md):
-- SHA-256 of the domain string, the argument count and each argument's
-- tagged encoding; the first 16 bytes with version 8 and variant 10.
CREATE FUNCTION pg_temp.spelled_key(body bytea) RETURNS uuid LANGUAGE sql AS
$$SELECT encode(set_byte(set_byte(substr(h, 1, 16),
                                  6, (get_byte(h, 6) & 15) | 128),
                         8, (get_byte(h, 8) & 63) | 128), 'hex')::uuid
  FROM (SELECT sha256(convert_to('pg_idempotent:idempotent_key:1', 'UTF8')
                      || body) AS h) s$$;
SELECT idempotent_key('a'::text) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x04' || '\x00000001' || '\x61'::bytea) AS text_a,
       idempotent_key(NULL) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x00'::bytea) AS null_arg,
       idempotent_key(1) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x02' || '\x00000005' || '\x00' || '\x0000' || '\x0001'::bytea) AS int_1,
       idempotent_key(10000.00) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x02' || '\x00000005' || '\x00' || '\x0001' || '\x0001'::bytea) AS numeric_10000,
       idempotent_key(-1.5::float8) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x03' || '\x00000008' || '\xbff8000000000000'::bytea) AS float,
       idempotent_key('a'::text, NULL, true) =
       pg_temp.spelled_key('\x00000003'::bytea || '\x040000000161' || '\x00' || '\x010000000101'::bytea) AS three_args,
       idempotent_key('2000-01-02'::date) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x06' || '\x00000004' || '\x00000001'::bytea) AS date,
       idempotent_key(ARRAY[7]) =
       pg_temp.spelled_key('\x00000001'::bytea || '\x10' || '\x00000016' || '\x00000001' || '\x00000001' || '\x00000001'
                           || '\x02' || '\x00000005' || '\x00' || '\x0000' || '\x0007'::bytea) AS array_7;

-- Keys are UUIDv8 (RFC 9562): version nibble 8, variant bits 10.
SELECT substr(k::text, 15, 1) AS version, substr(k::text, 20, 1) IN ('8', '9', 'a', 'b') AS variant_10
FROM (SELECT idempotent_key('anything'::text, 42) AS k) s;

-- Unambiguous: boundaries, NULL position and argument count all matter.
SELECT count(DISTINCT k) AS distinct_keys, count(*) AS calls FROM (VALUES
  (idempotent_key('ab'::text, 'c'::text)),
  (idempotent_key('a'::text, 'bc'::text)),
  (idempotent_key('abc'::text)),
  (idempotent_key('a'::text, NULL)),
  (idempotent_key('a'::text, ''::text)),
  (idempotent_key(NULL, 'a'::text)),
  (idempotent_key(''::text, 'a'::text)),
  (idempotent_key('a'::text)),
  (idempotent_key('a'::text, NULL, NULL)),
  (idempotent_key(NULL)),
  (idempotent_key(NULL, NULL)),
  (idempotent_key(''::text)),
  (idempotent_key('NULL'::text)),
  (idempotent_key('_null_'::text)),
  (idempotent_key(1, 'a'::text)),
  (idempotent_key('1'::text, 'a'::text)),
  (idempotent_key(ARRAY['a', 'b'])),
  (idempotent_key('a'::text, 'b'::text)),
  (idempotent_key(ROW('a', 'b'))),
  (idempotent_key('a'::bytea)),
  (idempotent_key('"a"'::jsonb)),
  (idempotent_key('"a"'::json))
) v(k);

-- Families that fold: values equal under their type's equality get the
-- same key.  int2/int4/int8/numeric, float4/float8, text/varchar/char(n)/name.
SELECT idempotent_key(5::int2) = idempotent_key(5::int8) AS int2_int8,
       idempotent_key(5) = idempotent_key(5.000) AS int_numeric,
       idempotent_key(1.5::float4) = idempotent_key(1.5::float8) AS float4_float8,
       idempotent_key('-0'::float8) = idempotent_key(0::float8) AS minus_zero,
       idempotent_key('NaN'::float8) = idempotent_key(-('NaN'::float8)) AS nans,
       idempotent_key('x  '::char(3)) = idempotent_key('x'::text) AS bpchar_trimmed,
       idempotent_key('x'::name) = idempotent_key('x'::varchar) AS name_varchar,
       idempotent_key('1 day'::interval) = idempotent_key('24:00:00'::interval) AS interval_span,
       idempotent_key('2024-01-01 12:00+02'::timestamptz) = idempotent_key('2024-01-01 10:00+00'::timestamptz) AS tz_instant,
       idempotent_key('{"b": [1.0], "a": 1}'::jsonb) = idempotent_key('{"a":1,"b":[1]}'::jsonb) AS jsonb_canonical;

-- ...and families that do not: an exact number is not a float, a date is
-- not a timestamp, text is not bytea, timestamp is not timestamptz.
SELECT idempotent_key(1) = idempotent_key(1::float8) AS int_float,
       idempotent_key('2024-01-01'::date) = idempotent_key('2024-01-01'::timestamp) AS date_timestamp,
       idempotent_key('2024-01-01'::timestamp) = idempotent_key('2024-01-01 00:00+00'::timestamptz) AS timestamp_tz,
       idempotent_key('a'::text) = idempotent_key('a'::bytea) AS text_bytea,
       idempotent_key('{"a":1}'::json) = idempotent_key('{"a":1}'::jsonb) AS json_jsonb;

-- Domains encode as their base type; named composites as their columns.
CREATE DOMAIN key_posint AS int CHECK (VALUE > 0);
CREATE TYPE key_pair AS (a int, b text);
SELECT idempotent_key(5::key_posint) = idempotent_key(5) AS domain_is_base,
       idempotent_key(ROW(1, 'x')::key_pair) = idempotent_key(ROW(1, 'x'::text)) AS composite_is_row,
       idempotent_key(ARRAY[5::key_posint]) = idempotent_key(ARRAY[5]) AS domain_array;

-- Enums encode as type name and label (OIDs differ between databases).
CREATE TYPE key_mood AS ENUM ('sad', 'happy');
SELECT idempotent_key('happy'::key_mood) = idempotent_key('happy'::key_mood) AS same_label,
       idempotent_key('happy'::key_mood) = idempotent_key('sad'::key_mood) AS other_label,
       idempotent_key('happy'::key_mood) = idempotent_key('happy'::text) AS enum_vs_text;
-- A documented limit: the names are part of the key, so renaming the
-- type, its schema or a label changes the keys of its values (keys stored
-- before the rename keep the old ones).  The same holds for every type
-- outside pg_catalog, which is tagged with its schema and name.
SELECT idempotent_key('happy'::key_mood) AS happy_key \gset
ALTER TYPE key_mood RENAME TO key_mood_renamed;
SELECT idempotent_key('happy'::key_mood_renamed) = :'happy_key' AS same_after_type_rename;
ALTER TYPE key_mood_renamed RENAME VALUE 'happy' TO 'glad';
SELECT idempotent_key('glad'::key_mood_renamed) = :'happy_key' AS same_after_label_rename;
ALTER TYPE key_mood_renamed RENAME VALUE 'glad' TO 'happy';
ALTER TYPE key_mood_renamed RENAME TO key_mood;
SELECT idempotent_key('happy'::key_mood) = :'happy_key' AS same_when_named_back;

-- Types without a family of their own use their binary send output, which
-- does not depend on client_encoding either.
CREATE TEMP TABLE key_tsv AS SELECT 'fête à la maison'::tsvector AS v;
SELECT idempotent_key(v) AS k FROM key_tsv \gset
SET client_encoding = 'LATIN1';
SELECT idempotent_key(v) = :'k' AS tsvector_latin1_client FROM key_tsv;
RESET client_encoding;
DROP TABLE key_tsv;

-- VARIADIC arrays: the elements are the arguments.
SELECT idempotent_key(VARIADIC ARRAY[1, 2]) = idempotent_key(1, 2) AS variadic_same,
       idempotent_key(VARIADIC ARRAY[1, 2]) = idempotent_key(ARRAY[1, 2]) AS one_array_arg,
       idempotent_key(VARIADIC '{}'::text[]) = idempotent_key(VARIADIC '{}'::int[]) AS zero_args;

-- In a generated column and a unique index (it is IMMUTABLE).
CREATE TABLE key_events (
    event_id bigint,
    event_date date,
    event_type text,
    id uuid GENERATED ALWAYS AS (idempotent_key(event_id, event_date, event_type)) STORED UNIQUE
);
INSERT INTO key_events VALUES (1, '2024-01-01', 'click'), (1, '2024-01-01', 'view');
\set VERBOSITY sqlstate
INSERT INTO key_events VALUES (1, '2024-01-01', 'click');
\set VERBOSITY default
SELECT id = idempotent_key(1::int4, '2024-01-01'::date, 'click'::varchar) AS same_key_after_widening
FROM key_events WHERE event_type = 'click';
CREATE UNIQUE INDEX ON key_events (idempotent_key(event_type));
DROP TABLE key_events;

-- Errors.
\set VERBOSITY sqlstate
-- VARIADIC NULL is no argument list at all
SELECT idempotent_key(VARIADIC NULL::int[]);
-- a type with no binary send function
SELECT idempotent_key('=r/postgres'::aclitem);
-- a pseudo-type value
SELECT idempotent_key(pg_sleep(0));
\set VERBOSITY default
SELECT idempotent_key(VARIADIC NULL::int[]);

--
-- stable_bucket
--

-- Deterministic, in range, and roughly even.
SELECT min(b) AS lo, max(b) AS hi, count(DISTINCT b) AS used,
       min(n) > 850 AND max(n) < 1150 AS even
FROM (SELECT b, count(*) OVER (PARTITION BY b) AS n
      FROM (SELECT stable_bucket(g, 10) AS b FROM generate_series(1, 10000) g) s) t;
SELECT stable_bucket('user-42'::text, 100) AS b100, stable_bucket(42, 7) AS b7,
       stable_bucket(42::int8, 7) AS b7_int8, stable_bucket(1, 1) AS one_bucket,
       stable_bucket(12345, 2147483647) AS big;

-- It is the first 8 bytes of the SHA-256 behind idempotent_key(key),
-- big-endian, modulo the number of buckets.
SELECT stable_bucket('a'::text, 1000) =
       (SELECT (sum(get_byte(h, i)::numeric * 256::numeric ^ (7 - i)) % 1000)::int
        FROM (SELECT sha256(convert_to('pg_idempotent:idempotent_key:1', 'UTF8')
                            || '\x00000001040000000161'::bytea) AS h) s,
             generate_series(0, 7) i) AS spelled_out;

-- A NULL key is a key: it gets a bucket.
SELECT stable_bucket(NULL::text, 10) = stable_bucket(NULL::int, 10) AS null_bucket;

-- Errors: NULL buckets, zero or negative buckets.
\set VERBOSITY sqlstate
SELECT stable_bucket(1, NULL);
SELECT stable_bucket(1, 0);
SELECT stable_bucket(1, -5);
\set VERBOSITY default
SELECT stable_bucket(1, NULL);
SELECT stable_bucket(1, 0);

DROP TYPE key_mood;
DROP TYPE key_pair;
DROP DOMAIN key_posint;
