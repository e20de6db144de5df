-- A JSON source's rows are read by jsonrows.c (through
-- pgi_internal._jsonb_to_recordset), not by jsonb_to_recordset, which keeps
-- every row's intermediate values to the end of the statement.  Its values
-- must be jsonb_to_recordset's, to the byte: every type against every kind
-- of JSON value, compared with jsonb_to_recordset's own answer, or error.
SET client_min_messages = warning;
\set VERBOSITY terse
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TYPE jr_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN jr_pos AS int CHECK (VALUE > 0);
CREATE DOMAIN jr_notnull AS text NOT NULL;
CREATE TYPE jr_pair AS (a int, b text);

-- each function's rows as text and their binary images, or its error
CREATE FUNCTION pg_temp.read(fn text, doc jsonb, cols text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('SELECT pg_catalog.string_agg(s::text || '' '' || pg_catalog.md5(pg_catalog.textin(pg_catalog.record_out(s))) '
		'|| '' '' || pg_catalog.encode(pg_catalog.record_send(s), ''hex''), '';'') FROM %s AS s(%s)',
		CASE fn WHEN 'pg' THEN 'pg_catalog.jsonb_to_recordset($1)'
			ELSE 'pgi_internal._jsonb_to_recordset($1, 0)' END, cols)
		INTO r USING doc;
	RETURN coalesce(r, '(no rows)');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE jr_types (t text);
INSERT INTO jr_types VALUES ('int2'), ('int4'), ('int8'), ('numeric'), ('numeric(5,2)'),
	('numeric(3)'), ('numeric(12,2)'), ('numeric(1000,500)'), ('numeric(3,-2)'), ('numeric(2,5)'),
	('float4'), ('float8'), ('text'), ('varchar(3)'), ('char(4)'), ('"char"'),
	('name'), ('bool'), ('date'), ('timestamp'), ('timestamptz'), ('interval'), ('json'),
	('jsonb'), ('uuid'), ('bytea'), ('inet'), ('point'), ('money'), ('jr_mood'), ('int4range'),
	('int[]'), ('text[]'), ('jr_pos'), ('jr_notnull'), ('jr_pair');
CREATE TABLE jr_values (v jsonb);
INSERT INTO jr_values VALUES ('1'), ('-0'), ('1.50'), ('1e3'), ('123456789012'), ('3.14159'),
	('1000000000000000000000'), ('"1"'), ('"  12 "'), ('""'), ('"x"'), ('"happy"'),
	('"2024-02-29"'), ('"2024-02-29 12:30:00+02"'), ('"1 day"'), ('"\\x00ff"'),
	('"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"'), ('"10.1.2.3/8"'), ('"(1,2)"'), ('"[1,5)"'),
	('"{1,2}"'), ('"(1,x)"'), ('"é\"\\\n"'), ('true'), ('false'), ('null'), ('{"a": 1, "b": "x"}'),
	('[1, 2]'), ('["a", null]'), ('{}'), ('[]'),
	-- the edges of the fast paths (integers, ISO dates, text)
	('32767'), ('-32769'), ('2147483647'), ('-2147483648'), ('2147483648'),
	('9223372036854775807'), ('-9223372036854775809'), ('1.0'), ('1e-1'), ('-1.5e2'),
	('"1999-01-08"'), ('"0001-01-01"'), ('"0000-01-01"'), ('"9999-12-31"'), ('"2023-02-29"'),
	('"2024-13-01"'), ('"2024-1-8"'), ('"2024-01-08 "'), ('"20240108"'), ('"1999-01-08BC"'),
	('0.000'), ('-0.00012345'), ('99.995'), ('1e-70'), ('12345.678901234567890123456789');

-- every pair: one object holding the value, and one lacking the key
SELECT count(*) AS pairs,
	count(*) FILTER (WHERE pg LIKE 'ERROR%') AS errors,
	count(*) FILTER (WHERE pg IS DISTINCT FROM ours) AS different
FROM (SELECT t, v,
		pg_temp.read('pg', jsonb_build_array(jsonb_build_object('c', v), '{}'::jsonb), 'c ' || t) AS pg,
		pg_temp.read('ours', jsonb_build_array(jsonb_build_object('c', v), '{}'::jsonb), 'c ' || t) AS ours
	FROM jr_types, jr_values) x;
-- and where both give rows, the same stored bytes (the images the upsert
-- compares to tell a changed row from an unchanged one), row by row
CREATE FUNCTION pg_temp.same_image(doc jsonb, cols text) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
	r bool;
BEGIN
	EXECUTE format('SELECT pg_catalog.bool_and(a OPERATOR(pg_catalog.*=) b) '
		'FROM ROWS FROM (pg_catalog.jsonb_to_recordset($1) AS (%s)) WITH ORDINALITY AS a '
		'JOIN ROWS FROM (pgi_internal._jsonb_to_recordset($1, 0) AS (%s)) WITH ORDINALITY AS b '
		'ON a.ordinality OPERATOR(pg_catalog.=) b.ordinality', cols, cols)
		INTO r USING doc;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END $$;
SELECT count(*) AS compared,
	count(*) FILTER (WHERE NOT pg_temp.same_image(d, 'c ' || t)) AS different
FROM (SELECT t, jsonb_build_array(jsonb_build_object('c', v), '{}'::jsonb) AS d
	FROM jr_types, jr_values) x
WHERE pg_temp.same_image(d, 'c ' || t) IS NOT NULL;

-- what differs, if anything
SELECT t, v, pg, ours
FROM (SELECT t, v,
		pg_temp.read('pg', jsonb_build_array(jsonb_build_object('c', v)), 'c ' || t) AS pg,
		pg_temp.read('ours', jsonb_build_array(jsonb_build_object('c', v)), 'c ' || t) AS ours
	FROM jr_types, jr_values) x
WHERE pg IS DISTINCT FROM ours;

-- dates and timestamps under other DateStyles: an ISO date is the same date
-- in every one, anything else is the input function's to read
SET datestyle = 'SQL, DMY';
SELECT count(*) AS pairs, count(*) FILTER (WHERE pg IS DISTINCT FROM ours) AS different
FROM (SELECT pg_temp.read('pg', jsonb_build_array(jsonb_build_object('c', v)), 'c ' || t) AS pg,
		pg_temp.read('ours', jsonb_build_array(jsonb_build_object('c', v)), 'c ' || t) AS ours
	FROM (VALUES ('date'), ('timestamp'), ('timestamptz')) t(t),
		(VALUES ('"1999-01-08"'::jsonb), ('"08-01-1999"'), ('"01/08/1999"'), ('"1999-08-01"'),
			('"8 Jan 1999"'), ('"1999-01-08 04:05:06"')) v(v)) x;
SET datestyle = 'German';
SELECT pg_temp.read('ours', d, 'c date') IS NOT DISTINCT FROM pg_temp.read('pg', d, 'c date') AS same,
	regexp_replace(pg_temp.read('ours', d, 'c date'), ' [0-9a-f]+ [0-9a-f]+(;|$)', '\1', 'g') AS rows
FROM (VALUES ('[{"c": "1999-01-08"}, {"c": "08.01.1999"}]'::jsonb)) v(d);
SET datestyle = 'ISO, YMD';

-- several columns, keys in any order, absent, null, or not columns at all
SELECT pg_temp.read('ours', d, c) IS NOT DISTINCT FROM pg_temp.read('pg', d, c) AS same,
	regexp_replace(pg_temp.read('ours', d, c), ' [0-9a-f]+ [0-9a-f]+(;|$)', '\1', 'g') AS rows
FROM (VALUES ('[{"b": "x", "a": 1}, {"a": 2}, {"z": 3}, {"a": null, "b": null}]'::jsonb,
			  'a int, b text'),
			 ('[{"a": 1}, {"a": "y"}]', 'a int'),
			 ('[{"Id": 1, "id": 2}]', '"Id" int, id int'),
			 ('[{"a": 1}, 2]', 'a int'),
			 ('[]', 'a int'),
			 ('{"a": 1}', 'a int'),
			 ('1', 'a int'),
			 ('[{"a": 1, "b": 2}]', 'a int, b jr_pos'),
			 ('[{"a": 1}]', 'a int, b jr_notnull')) v(d, c);

-- the one-row path of the upsert (upsert_probe.c) reads its object the same
-- way: a value the column's input function refuses, and one it takes
CREATE TABLE jr_t (id int PRIMARY KEY, amount numeric(5,2), tags text[], mood jr_mood);
SELECT inserted FROM idempotent_upsert_json('jr_t', '[{"id": 1, "amount": 1.005, "tags": ["a"], "mood": "ok"}]');
SELECT unchanged FROM idempotent_upsert_json('jr_t', '[{"id": 1, "amount": "1.01", "tags": "{a}", "mood": "ok"}]');
SELECT inserted FROM idempotent_upsert_json('jr_t', '[{"id": 2, "amount": 1000}]');
SELECT inserted FROM idempotent_upsert_json('jr_t', '[{"id": 2, "mood": "glad"}]');
SELECT inserted FROM idempotent_upsert_json('jr_t', '[{"id": 3, "amount": 2.5}, {"id": 4, "mood": "sad"}]');
SELECT * FROM jr_t ORDER BY id;
