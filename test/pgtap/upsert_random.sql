-- Randomized differential test of idempotent_upsert and its _query and
-- _json forms.  Each iteration builds a random table (key of one or two
-- columns; columns of int, bigint, numeric(p,s), numeric, float8, text with
-- quotes, backslashes, unicode and control characters, int[], text[], jsonb,
-- timestamptz, bool, date; odd column names; NULLs) and applies random
-- batches to it.  For every batch:
--   - the upsert's counts equal those of an independent oracle (new keys,
--     and rows whose text differs from the existing row);
--   - the target then equals a model kept with plain SQL: DELETE + INSERT
--     when the batch has every column, UPDATE + INSERT when it leaves some
--     out (those keep their values, or take their defaults when inserted);
--   - applying the batch a second time changes nothing and reports every
--     row unchanged;
--   - a second table fed the same batches in a shuffled order, and a third
--     fed them as JSON, end identical.
-- A quarter of the batches are one row, decided by a probe of the key's
-- index where the probe can read the row as the statement would.
-- "Identical" is checked on the rows' text (1.0 and 1.00, 0 and -0 differ),
-- as table_fingerprint folds values that are merely equal.
--
-- Knobs, from the environment (pg_prove passes it to psql):
--   UPSERT_RANDOM_SEED        setseed() value in [-1, 1]; default 0.2025
--   UPSERT_RANDOM_ITERATIONS  tables to generate; default 40 (about 3 s)
--   UPSERT_RANDOM_KEY_IMAGES  on (default): numeric keys come at different
--                             scales (1.50, 1.500), equal but not identical,
--                             and the target must end holding the source's
--                             image of the key too; off: keys at one scale.
-- The seed is printed, and every test names its iteration and batch, so a
-- failure is reproduced with the same seed.
--
-- Runs outside a transaction block (one transaction per iteration, so a
-- long run does not pile up locks) in a schema of its own, dropped at the
-- end.
\set QUIET 1
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

\getenv seed UPSERT_RANDOM_SEED
\getenv iterations UPSERT_RANDOM_ITERATIONS
\if :{?seed}
\else
\set seed 0.2025
\endif
\if :{?iterations}
\else
\set iterations 40
\endif
\getenv key_images UPSERT_RANDOM_KEY_IMAGES
\if :{?key_images}
\else
\set key_images on
\endif

SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_idempotent;
DROP SCHEMA IF EXISTS upsert_random CASCADE;
CREATE SCHEMA upsert_random;
SET search_path = public, pg_catalog;
SELECT set_config('upsert_random.key_images', :'key_images', false) IS NULL;

-- per iteration: 3 batches of 7 tests
SELECT plan(:iterations * 3 * 7);
SELECT diag(format('seed %s, %s iterations (UPSERT_RANDOM_SEED, UPSERT_RANDOM_ITERATIONS)',
	:'seed', :'iterations'));
SELECT setseed(:'seed');

-- Text with everything a careless quoting would trip on; no NUL (text
-- cannot hold it).
CREATE FUNCTION pg_temp.odd_text() RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg((ARRAY[
		'''', '"', '\', '\\', E'\t', E'\n', E'\r', E'\x01', E'\x1f', ' ', '',
		'é', 'ß', '漢字', '🙂', E'e\u0301', E'\u200d', E'\u202e', 'NULL', '$$',
		';--', '%s', '{', '}', ',', '(', ')', 'a', 'Z', '0'
		])[1 + floor(random() * 30)::int], ''), '')
	FROM generate_series(1, floor(random() * 6)::int)
$f$;

-- A random value of one of the generator's types, as a SQL literal of that
-- type.  "numeric(p,s)" values fit the precision, so no batch fails.
CREATE FUNCTION pg_temp.random_value(typ text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	p int;
	s int;
	v text;
BEGIN
	IF typ ~ '^numeric\(' THEN
		p := substring(typ from '\((\d+),')::int;
		s := substring(typ from ',(\d+)\)')::int;
		v := round(((random() * 2 - 1) * (10 ^ (p - s) - 1))::numeric, s)::text;
	ELSE
		CASE typ
		WHEN 'int' THEN
			v := (ARRAY[(random() * 2000 - 1000)::int, 0, 2147483647, -2147483648])
				[CASE WHEN random() < 0.9 THEN 1 ELSE 2 + floor(random() * 3)::int END]::text;
		WHEN 'bigint' THEN
			v := ((random() * 2 - 1) * 9e18)::bigint::text;
		WHEN 'numeric' THEN
			-- the same number at different scales: 1.5, 1.50 and 1.500 are
			-- equal but not identical, so each change must be written
			v := round((floor(random() * 200) / 8)::numeric, floor(random() * 5)::int)::text;
		WHEN 'float8' THEN
			v := (ARRAY['0', '-0', 'NaN', 'Infinity', '-Infinity', '1e-300',
						(random() * 1e6)::text, (random() - 0.5)::text])
				[1 + floor(random() * 8)::int];
		WHEN 'text' THEN
			v := pg_temp.odd_text();
		WHEN 'int[]' THEN
			v := (SELECT coalesce(array_agg(CASE WHEN random() < 0.2 THEN NULL ELSE (random() * 100)::int END), '{}')
				  FROM generate_series(1, floor(random() * 4)::int))::text;
		WHEN 'text[]' THEN
			v := (SELECT coalesce(array_agg(CASE WHEN random() < 0.2 THEN NULL ELSE pg_temp.odd_text() END), '{}')
				  FROM generate_series(1, floor(random() * 4)::int))::text;
		WHEN 'jsonb' THEN
			v := jsonb_build_object(pg_temp.odd_text(), pg_temp.odd_text(),
				'n', (ARRAY['1', '1.0', '-0', '1e3', '0.10'])[1 + floor(random() * 5)::int]::numeric,
				'a', jsonb_build_array(random() < 0.5, NULL, floor(random() * 3)))::text;
		WHEN 'timestamptz' THEN
			v := CASE WHEN random() < 0.05 THEN 'infinity'
					  ELSE ('2000-01-01 00:00:00+00'::timestamptz
							+ floor(random() * 1e15) * interval '1 microsecond')::text END;
		WHEN 'bool' THEN
			v := (random() < 0.5)::text;
		WHEN 'date' THEN
			v := CASE WHEN random() < 0.05 THEN '-infinity'
					  ELSE ('2000-01-01'::date + floor(random() * 20000)::int)::text END;
		END CASE;
	END IF;
	RETURN quote_literal(v) || '::' || typ;
END $$;

-- The value of key column number kcol for key number k: a function of k
-- alone, so a key drawn twice is the same key.
CREATE FUNCTION pg_temp.key_value(typ text, k int, kcol int) RETURNS text LANGUAGE sql AS $$
	SELECT CASE typ
		WHEN 'int' THEN (k * 7 + kcol)::text
		WHEN 'bigint' THEN (k::bigint * 100000000007 - 4000000000000)::text
		WHEN 'text' THEN quote_literal(k || (ARRAY['', ' ', '''', '"', '\', 'é', E'\t', '🙂'])[1 + (k + kcol) % 8]) || '::text'
		WHEN 'date' THEN quote_literal('2020-01-01'::date + k * 3 + kcol) || '::date'
		-- with key_images, the same key at different scales: equal, not
		-- identical (see the knob at the top)
		WHEN 'numeric' THEN quote_literal(round((k * 10 + kcol)::numeric / 4,
			2 + CASE WHEN current_setting('upsert_random.key_images') = 'on' THEN floor(random() * 3)::int ELSE 0 END))
			|| '::numeric'
	END
$$;

-- The rows of a table as text, sorted: equal only for identical contents
-- (table_fingerprint folds values that are equal, as 1.0 and 1.00, or 0
-- and -0, which the upsert must still write).
CREATE FUNCTION pg_temp.rows_text(t regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('SELECT md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text COLLATE "C"), '''')) FROM %s x', t)
	INTO r;
	RETURN r;
END $$;

CREATE TABLE upsert_random.names (n int, name text);
INSERT INTO upsert_random.names VALUES
	(1, 'a'), (2, 'Mixed Case'), (3, 'with space'), (4, 'quote"d'), (5, 'order'),
	(6, 'select'), (7, 'ünï'), (8, 'x'), (9, 'back\slash'), (10, 'user'),
	(11, 'c63_0123456789012345678901234567890123456789012345678901234567'),
	(12, 'NULL'), (13, 'dash-ed'), (14, 'v'), (15, 'semi;colon');

/*
 * One iteration: a random table and three batches.  Returns its TAP lines.
 */
CREATE FUNCTION pg_temp.iteration(it int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	types text[] := ARRAY['int', 'bigint', 'numeric(12,2)', 'numeric(5,0)', 'numeric(18,4)',
						  'numeric', 'float8', 'text', 'int[]', 'text[]', 'jsonb',
						  'timestamptz', 'bool', 'date'];
	keytypes text[] := ARRAY['int', 'bigint', 'text', 'date', 'numeric'];
	nkey int := 1 + (random() < 0.3)::int;
	ncol int := 1 + floor(random() * 7)::int;
	keyspace int := 20 + floor(random() * 200)::int;
	kt text[] := '{}';
	ct text[] := '{}';
	cn text[] := '{}';			-- every column name, keys first
	coldefs text := '';
	keylist text;
	collist text;
	t text := format('upsert_random.t%s', it);
	where_am_i text;
	b int;
	i int;
	n int;
	nrows int;
	partial boolean;
	bcols int[];				-- positions in cn of the batch's columns
	bcolnames text;
	bcoldefs text;
	rowvals text;
	sql text;					-- key match of batch b and model m
	sql2 text;					-- key match of batch b and model b0
	json text;					-- the batch as a JSON array
	c record;
	o_new bigint;
	o_changed bigint;
BEGIN
	-- the table: key columns, then the others, names drawn without repeats
	SELECT array_agg(name ORDER BY r) INTO cn
	FROM (SELECT name, random() AS r FROM upsert_random.names ORDER BY r LIMIT nkey + ncol) s;
	FOR i IN 1 .. nkey LOOP
		kt := kt || keytypes[1 + floor(random() * array_length(keytypes, 1))::int];
		coldefs := coldefs || format('%I %s NOT NULL, ', cn[i], kt[i]);
	END LOOP;
	FOR i IN 1 .. ncol LOOP
		ct := ct || types[1 + floor(random() * array_length(types, 1))::int];
		-- some columns have a default, which an insert that leaves them out takes
		coldefs := coldefs || format('%I %s%s, ', cn[nkey + i], ct[i],
			CASE WHEN random() < 0.3 THEN ' DEFAULT ' || pg_temp.random_value(ct[i]) ELSE '' END);
	END LOOP;
	SELECT string_agg(format('%I', x), ', ') INTO keylist FROM unnest(cn[1:nkey]) x;
	EXECUTE format('CREATE TABLE %s (%s PRIMARY KEY (%s))', t, coldefs, keylist);
	EXECUTE format('CREATE TABLE %s_shuffled (LIKE %1$s INCLUDING ALL)', t);
	EXECUTE format('CREATE TABLE %s_json (LIKE %1$s INCLUDING ALL)', t);
	EXECUTE format('CREATE TABLE %s_model (LIKE %1$s INCLUDING ALL)', t);
	where_am_i := format('iteration %s (key %s, columns %s)', it,
						 array_to_string(kt, ','), array_to_string(ct, ','));

	FOR b IN 1 .. 3 LOOP
		-- the batch's columns: all of them, or the key and a random subset
		partial := ncol > 1 AND random() < 0.3;
		bcols := ARRAY(SELECT g FROM generate_series(1, nkey) g);
		FOR i IN 1 .. ncol LOOP
			IF NOT partial OR random() < 0.5 THEN
				bcols := bcols || (nkey + i);
			END IF;
		END LOOP;
		SELECT string_agg(format('%I', cn[x]), ', ' ORDER BY o),
			   string_agg(format('%I %s', cn[x], CASE WHEN x <= nkey THEN kt[x] ELSE ct[x - nkey] END), ', ' ORDER BY o)
		INTO bcolnames, bcoldefs
		FROM unnest(bcols) WITH ORDINALITY u(x, o);

		-- rows for distinct random keys; NULLs in non-key columns
		EXECUTE format('DROP TABLE IF EXISTS upsert_random.batch, upsert_random.batch_shuffled');
		EXECUTE format('CREATE TABLE upsert_random.batch (%s)', bcoldefs);
		-- a quarter of the batches are one row, which the upserts decide by
		-- a probe of the key's index (upsert_probe.c)
		nrows := CASE WHEN random() < 0.25 THEN 1
					  ELSE 1 + floor(random() * keyspace * 0.6)::int END;
		FOR n IN SELECT k FROM generate_series(1, keyspace) k ORDER BY random() LIMIT nrows LOOP
			rowvals := '';
			FOREACH i IN ARRAY bcols LOOP
				rowvals := rowvals || CASE WHEN rowvals = '' THEN '' ELSE ', ' END ||
					CASE WHEN i <= nkey THEN pg_temp.key_value(kt[i], n, i)
						 WHEN random() < 0.15 THEN 'NULL'
						 ELSE pg_temp.random_value(ct[i - nkey]) END;
			END LOOP;
			EXECUTE format('INSERT INTO upsert_random.batch VALUES (%s)', rowvals);
		END LOOP;
		-- a third of the rows that exist already come again unchanged
		SELECT string_agg(format('b.%1$I = m.%1$I', x), ' AND '),
			   string_agg(format('b.%1$I = b0.%1$I', x), ' AND ')
		INTO sql, sql2 FROM unnest(cn[1:nkey]) x;
		EXECUTE format('UPDATE upsert_random.batch b SET (%s) = (SELECT %s FROM %s_model m WHERE %s) '
					   'WHERE random() < 0.33 AND EXISTS (SELECT FROM %3$s_model m WHERE %4$s)',
					   bcolnames, (SELECT string_agg(format('m.%I', cn[x]), ', ') FROM unnest(bcols) x), t, sql);
		EXECUTE 'CREATE TABLE upsert_random.batch_shuffled AS SELECT * FROM upsert_random.batch ORDER BY random()';
		-- so that a one-row batch is known small against the table
		ANALYZE upsert_random.batch, upsert_random.batch_shuffled;

		-- the oracle's counts, before the model moves: new keys (the key is
		-- NOT NULL, so a NULL means no match), and existing rows whose
		-- columns in the batch differ as text
		EXECUTE format('SELECT count(*) FILTER (WHERE m.%5$I IS NULL), '
					   'count(*) FILTER (WHERE m.%5$I IS NOT NULL AND (%1$s)::text IS DISTINCT FROM (%2$s)::text) '
					   'FROM upsert_random.batch b LEFT JOIN %3$s_model m ON %4$s',
					   'ROW(' || (SELECT string_agg(format('b.%I', cn[x]), ', ') FROM unnest(bcols) x) || ')',
					   'ROW(' || (SELECT string_agg(format('m.%I', cn[x]), ', ') FROM unnest(bcols) x) || ')',
					   t, sql, cn[1])
		INTO o_new, o_changed;

		-- the model: plain SQL
		IF partial THEN
			-- every column the batch has, the key's too: a key equal but not
			-- identical (1.5, 1.500) ends as the batch writes it
			EXECUTE format('UPDATE %s_model b0 SET (%s) = (SELECT %s FROM upsert_random.batch b WHERE %s) '
						   'WHERE EXISTS (SELECT FROM upsert_random.batch b WHERE %4$s)',
						   t,
						   (SELECT string_agg(format('%I', cn[x]), ', ') FROM unnest(bcols) x),
						   (SELECT string_agg(format('b.%I', cn[x]), ', ') FROM unnest(bcols) x),
						   sql2);
			EXECUTE format('INSERT INTO %s_model (%s) SELECT %2$s FROM upsert_random.batch b '
						   'WHERE NOT EXISTS (SELECT FROM %1$s_model m WHERE %3$s)', t, bcolnames, sql);
		ELSE
			EXECUTE format('DELETE FROM %s_model m WHERE EXISTS (SELECT FROM upsert_random.batch b WHERE %s)', t, sql);
			EXECUTE format('INSERT INTO %s_model (%s) SELECT %2$s FROM upsert_random.batch', t, bcolnames);
		END IF;

		where_am_i := format('iteration %s batch %s (key %s, columns %s%s)', it, b,
							 array_to_string(kt, ','), array_to_string(ct, ','),
							 CASE WHEN partial THEN ', partial' ELSE '' END);

		EXECUTE format('SELECT * FROM idempotent_upsert(%L, ''upsert_random.batch'')', t) INTO c;
		RETURN NEXT is(ARRAY[c.inserted, c.updated, c.unchanged, c.stale, c.duplicates],
					   ARRAY[o_new, o_changed, nrows - o_new - o_changed, 0, 0],
					   where_am_i || ': counts agree with the oracle');
		RETURN NEXT is(ARRAY[table_fingerprint(t::regclass), pg_temp.rows_text(t::regclass)],
					   ARRAY[table_fingerprint((t || '_model')::regclass), pg_temp.rows_text((t || '_model')::regclass)],
					   where_am_i || ': target equals the plain-SQL model');

		EXECUTE format('SELECT * FROM idempotent_upsert(%L, ''upsert_random.batch'')', t) INTO c;
		RETURN NEXT is(ARRAY[c.inserted, c.updated, c.unchanged], ARRAY[0, 0, nrows]::bigint[],
					   where_am_i || ': a replay reports every row unchanged');
		RETURN NEXT is(pg_temp.rows_text(t::regclass), pg_temp.rows_text((t || '_model')::regclass),
					   where_am_i || ': a replay changes nothing');

		EXECUTE format('SELECT * FROM idempotent_upsert_query(%L, ''TABLE upsert_random.batch_shuffled'')',
					   t || '_shuffled') INTO c;
		RETURN NEXT is(pg_temp.rows_text((t || '_shuffled')::regclass), pg_temp.rows_text(t::regclass),
					   where_am_i || ': the batches shuffled give the same table');

		-- to_jsonb turns a float8 into a JSON number, where -0 is 0: send
		-- float8 values as strings, which the float8 column reads exactly
		json := format('(SELECT jsonb_agg(to_jsonb(b)%s) FROM upsert_random.batch b)',
					   (SELECT string_agg(format(' || jsonb_build_object(%L, b.%I::text)', cn[x], cn[x]), '')
						FROM unnest(bcols) x WHERE x > nkey AND ct[x - nkey] = 'float8'));
		EXECUTE format('SELECT * FROM idempotent_upsert_json(%L, %s)', t || '_json', json) INTO c;
		RETURN NEXT is(pg_temp.rows_text((t || '_json')::regclass), pg_temp.rows_text(t::regclass),
					   where_am_i || ': the batches as JSON give the same table');
		EXECUTE format('SELECT * FROM idempotent_upsert_json(%L, %s)', t || '_json', json) INTO c;
		RETURN NEXT is(c.unchanged, nrows::bigint, where_am_i || ': a JSON replay reports every row unchanged');
	END LOOP;

	EXECUTE format('DROP TABLE %s, %1$s_shuffled, %1$s_json, %1$s_model', t);
END $$;

-- one statement, so one transaction, per iteration
SELECT format('SELECT * FROM pg_temp.iteration(%s)', i) FROM generate_series(1, :iterations) i \gexec

SELECT * FROM finish();
DROP SCHEMA upsert_random CASCADE;
