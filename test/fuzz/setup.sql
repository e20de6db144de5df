-- The throwaway database test/fuzz/run fuzzes: the extension, tables of
-- every shape its functions take, two unprivileged roles, and the
-- generator of random calls.  Run as a superuser.
--
-- To fuzz another function: add templates to fuzz.calls, using @kind@ for
-- each argument, and add the kinds it needs to fuzz.args (valid and invalid
-- values, as SQL expressions).  Nothing else changes.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION pg_idempotent;

-- fuzz_gen runs the generated calls, fuzz_smith runs sqlsmith: separate
-- roles, so sqlsmith's pg_terminate_backend calls cannot reach the
-- generator's session.  Neither is a superuser.
CREATE ROLE fuzz_gen LOGIN;
CREATE ROLE fuzz_smith LOGIN;
-- fuzz_stage changes the staging tables while the calls run (fuzz.gen's
-- 'stage' client): overlapping runs of an upstream job
CREATE ROLE fuzz_stage LOGIN;
ALTER ROLE fuzz_stage SET statement_timeout = '5s';
ALTER ROLE fuzz_stage SET lock_timeout = '1s';
ALTER ROLE fuzz_stage SET search_path = fuzz, public;
ALTER ROLE fuzz_gen SET statement_timeout = '5s';
ALTER ROLE fuzz_gen SET lock_timeout = '1s';
ALTER ROLE fuzz_smith SET statement_timeout = '2s';
ALTER ROLE fuzz_smith SET lock_timeout = '1s';
ALTER ROLE fuzz_gen SET search_path = fuzz, public;
ALTER ROLE fuzz_smith SET search_path = smith, public;

-- a table neither role may touch, for privilege errors
CREATE SCHEMA secret;
CREATE TABLE secret.t (id int PRIMARY KEY, a text);
GRANT USAGE ON SCHEMA secret TO fuzz_gen;

CREATE SCHEMA fuzz AUTHORIZATION fuzz_gen;
CREATE SCHEMA smith AUTHORIZATION fuzz_smith;

SET ROLE fuzz_gen;
CREATE DOMAIN fuzz.positive AS int CHECK (VALUE > 0);
CREATE TABLE fuzz.t_int (id int PRIMARY KEY, a text, v int, n numeric(8,2), j jsonb, ts timestamptz);
CREATE TABLE fuzz.t_text (k text PRIMARY KEY, a text, v int);
CREATE TABLE fuzz.t_comp (id int, day date, a text, v int, PRIMARY KEY (id, day));
CREATE TABLE fuzz.t_part (day date, id int, a text, v int, PRIMARY KEY (day, id)) PARTITION BY RANGE (day);
CREATE TABLE fuzz.t_part_1 PARTITION OF fuzz.t_part FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE fuzz.t_gen (id int PRIMARY KEY, a text, g int GENERATED ALWAYS AS (id * 2) STORED,
						 i int GENERATED ALWAYS AS IDENTITY, v int);
CREATE TABLE fuzz.t_dom (id int PRIMARY KEY, p fuzz.positive, a varchar(3), v int NOT NULL DEFAULT 0);
CREATE TABLE fuzz.t_nokey (id int, a text, v int);
CREATE TABLE fuzz.t_two (id int UNIQUE, a text UNIQUE, v int);
CREATE TABLE fuzz.t_rls (id int PRIMARY KEY, owner text, a text, v int);
ALTER TABLE fuzz.t_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE fuzz.t_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON fuzz.t_rls USING (id % 2 = 0) WITH CHECK (id % 3 <> 0);
CREATE TABLE fuzz.t_trig (id int PRIMARY KEY, a text, v int);
CREATE FUNCTION fuzz.trig() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.v = 13 THEN RAISE EXCEPTION 'unlucky row %', NEW.id USING ERRCODE = 'P0013'; END IF;
	IF NEW.v = 7 THEN RETURN NULL; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER trig BEFORE INSERT OR UPDATE ON fuzz.t_trig FOR EACH ROW EXECUTE FUNCTION fuzz.trig();
CREATE TABLE fuzz.log (x text);
CREATE SEQUENCE fuzz.seq;

-- sources: rows with overlaps, duplicates, NULL keys, odd values
CREATE TABLE fuzz.s_int AS
	SELECT g AS id, 'a' || g AS a, g % 20 AS v, (g * 1.25)::numeric(8,2) AS n,
		   jsonb_build_object('g', g) AS j, '2025-01-01 00:00+00'::timestamptz + g * interval '1 hour' AS ts
	FROM generate_series(1, 300) g;
CREATE TABLE fuzz.s_dups AS SELECT * FROM fuzz.s_int UNION ALL SELECT id, a || 'x', v + 1, n, j, ts FROM fuzz.s_int WHERE id % 10 = 0;
CREATE TABLE fuzz.s_nulls AS SELECT CASE WHEN id % 17 = 0 THEN NULL ELSE id END AS id, a, CASE WHEN id % 5 = 0 THEN NULL ELSE v END AS v FROM fuzz.s_int;
CREATE TABLE fuzz.s_text AS SELECT id::text || E'\t''"' AS k, a, v FROM fuzz.s_int;
CREATE TABLE fuzz.s_comp AS SELECT id % 50 AS id, '2025-01-01'::date + id % 40 AS day, a, v FROM fuzz.s_int;
CREATE TABLE fuzz.s_wide AS SELECT id::bigint AS id, a::varchar(10) AS a, v::numeric AS v, 5 AS p FROM fuzz.s_int;
CREATE TABLE fuzz.s_bad AS SELECT id, point(id, id) AS a, id AS nope FROM fuzz.s_int;
CREATE VIEW fuzz.v_int AS SELECT * FROM fuzz.s_int WHERE id % 3 = 0;
CREATE MATERIALIZED VIEW fuzz.m_int AS SELECT * FROM fuzz.s_int WHERE id % 4 = 0;
CREATE TABLE fuzz.scratch (id int PRIMARY KEY, a text);
-- the replace family's targets: a range-partitioned table (with and without
-- rows in its leaves), a list-partitioned one, a plain one without a key
CREATE TABLE fuzz.r_range (day date NOT NULL, id int, a text, v int) PARTITION BY RANGE (day);
CREATE TABLE fuzz.r_range_1 PARTITION OF fuzz.r_range FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE fuzz.r_range_2 PARTITION OF fuzz.r_range FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
CREATE TABLE fuzz.r_range_3 PARTITION OF fuzz.r_range FOR VALUES FROM ('2025-01-03') TO ('2025-02-01');
INSERT INTO fuzz.r_range SELECT '2025-01-01'::date + g % 5, g, 'r' || g, g % 7 FROM generate_series(1, 200) g;
CREATE TABLE fuzz.r_list (day date NOT NULL, id int, a text, v int) PARTITION BY LIST (day);
CREATE TABLE fuzz.r_list_1 PARTITION OF fuzz.r_list FOR VALUES IN ('2025-01-01');
CREATE TABLE fuzz.r_list_2 PARTITION OF fuzz.r_list FOR VALUES IN ('2025-01-02');
CREATE TABLE fuzz.r_list_d PARTITION OF fuzz.r_list DEFAULT;
CREATE TABLE fuzz.r_plain (day date, id int, a text, v int);
INSERT INTO fuzz.r_plain SELECT '2025-01-01'::date + g % 3, g % 50, 'p', g % 2 FROM generate_series(1, 150) g;
-- their sources: one day, one day with duplicates, two days, none, odd columns
CREATE TABLE fuzz.rs_day AS SELECT '2025-01-01'::date AS day, g AS id, 'n' || g AS a, g % 7 AS v FROM generate_series(1, 100) g;
CREATE TABLE fuzz.rs_dups AS SELECT * FROM fuzz.rs_day UNION ALL SELECT * FROM fuzz.rs_day WHERE id % 4 = 0;
CREATE TABLE fuzz.rs_two AS SELECT '2025-01-01'::date + g % 2 AS day, g AS id, 'm' AS a, g AS v FROM generate_series(1, 100) g;
CREATE TABLE fuzz.rs_empty (day date, id int, a text, v int);
CREATE TABLE fuzz.rs_cols AS SELECT '2025-01-01'::date AS day, g AS id FROM generate_series(1, 20) g;
CREATE TABLE fuzz.rs_text AS SELECT '2025-01-01'::text AS day, g AS id FROM generate_series(1, 20) g;
-- what replace_where predicates read: one the caller may lock, one (in
-- secret) it may only read
CREATE TABLE fuzz.reload_days (d date);
INSERT INTO fuzz.reload_days VALUES ('2025-01-01');
-- history: a dimension keyed by id with its validity columns, and one without
CREATE TABLE fuzz.h_dim (id int, a text, v int, valid_from timestamptz NOT NULL,
						 valid_to timestamptz, PRIMARY KEY (id, valid_from));
CREATE TABLE fuzz.h_nokey (id int, a text, valid_from timestamptz, valid_to timestamptz);
CREATE VIEW fuzz.hs_dim AS SELECT id, a, v FROM fuzz.s_int WHERE id < 100;
CREATE VIEW fuzz.hs_dups AS SELECT id, a, v FROM fuzz.s_dups;
CREATE VIEW fuzz.hs_nulls AS SELECT id, a, v FROM fuzz.s_nulls;
-- pristine copies the staging client refills from
CREATE TABLE fuzz.orig_s_int AS TABLE fuzz.s_int;
CREATE TABLE fuzz.orig_rs_day AS TABLE fuzz.rs_day;
CREATE TABLE fuzz.orig_rs_two AS TABLE fuzz.rs_two;
GRANT USAGE ON SCHEMA fuzz TO fuzz_stage;
GRANT SELECT ON ALL TABLES IN SCHEMA fuzz TO fuzz_stage;
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON fuzz.s_int, fuzz.s_dups, fuzz.s_nulls,
	fuzz.rs_day, fuzz.rs_dups, fuzz.rs_two, fuzz.reload_days TO fuzz_stage;
RESET ROLE;
CREATE TABLE secret.reload_days (d date);
INSERT INTO secret.reload_days VALUES ('2025-01-02');
GRANT SELECT ON secret.reload_days TO fuzz_gen;

-- ledgers and checkpoints: fuzz_gen may use and create them (the
-- extension's tables are in public; nothing is granted by the extension)
GRANT SELECT, INSERT, UPDATE, DELETE ON pgi_ledger, pgi_ledger_key, pgi_checkpoint TO fuzz_gen;
GRANT USAGE ON SEQUENCE pgi_ledger_id_seq, pgi_ledger_token_seq TO fuzz_gen;
SELECT ledger_create('fz', lease => '1 second', max_attempts => 2);
SELECT ledger_create('fz"q'' x', lease => '1 minute', max_attempts => 1, retention => '0 seconds');
SELECT ledger_enqueue('fz', ARRAY(SELECT 'k' || g FROM generate_series(1, 50) g));

-- sqlsmith's own copies, which it may write to as it likes
SET ROLE fuzz_smith;
CREATE TABLE smith.t_int (id int PRIMARY KEY, a text, v int);
CREATE TABLE smith.s_int AS SELECT g AS id, 'a' || g AS a, g % 20 AS v FROM generate_series(1, 100) g;
CREATE TABLE smith.t_text (k text PRIMARY KEY, a text);
CREATE TABLE smith.s_text AS SELECT g::text AS k, 'b' AS a FROM generate_series(1, 50) g;
RESET ROLE;

-- The generator's vocabulary: templates of calls, and values for each
-- kind of argument.  Weight repeats a row's chance of being picked.
-- client 'gen' is the generator's calls, 'stage' the staging client's changes
CREATE TABLE fuzz.calls (template text, weight int DEFAULT 1, client text DEFAULT 'gen');
CREATE TABLE fuzz.args (kind text, expr text);
GRANT SELECT ON fuzz.calls, fuzz.args TO fuzz_gen, fuzz_stage;

INSERT INTO fuzz.calls (template, weight) VALUES
	('SELECT * FROM idempotent_upsert(@target@, @source@)', 6),
	('SELECT * FROM idempotent_upsert(@target@, @source@, @key@, @version@, @ondup@, @bool@)', 6),
	('SELECT * FROM idempotent_upsert(@target@, @source@, version_column => @version@, on_duplicate => @ondup@)', 3),
	('SELECT * FROM idempotent_upsert(@target@, @source@, key => @key@, dry_run => @bool@)', 2),
	('SELECT * FROM idempotent_upsert_query(@target@, @query@)', 4),
	('SELECT * FROM idempotent_upsert_query(@target@, @query@, @key@, @version@, @ondup@, @bool@)', 4),
	('SELECT * FROM idempotent_upsert_json(@target@, @json@)', 4),
	('SELECT * FROM idempotent_upsert_json(@target@, @json@, @key@, @version@, @ondup@, @bool@)', 3),
	('SELECT idempotent_key(@any@)', 2),
	('SELECT idempotent_key(@any@, @any@, @any@)', 2),
	('SELECT idempotent_key(VARIADIC @array@)', 1),
	('SELECT idempotent_key(t.*) FROM @relname@ t LIMIT 20', 1),
	('SELECT stable_bucket(@any@, @int@)', 2),
	('SELECT table_fingerprint(@target@)', 2),
	('SELECT table_fingerprint(@source@)', 2),
	('SELECT pgi_internal._fingerprint_agg(t.*) FROM @relname@ t', 1),
	('SELECT pgi_internal._fingerprint_agg(t.*) OVER (ORDER BY random()) FROM @relname@ t LIMIT 3', 1),
	('SELECT assert_idempotent(@stmt@, @target@)', 3),
	('SELECT assert_idempotent(@stmt@, @target@, @source@, @target@)', 1),
	('SELECT assert_idempotent(@stmt@, VARIADIC @relarray@)', 1),
	('SELECT run_time(), run_date()', 1),
	('SET pg_idempotent.run_time = @timestr@', 1),
	('SELECT set_config(''pg_idempotent.run_time'', @timestr@, @bool@)', 1),
	-- transaction states around the calls, and schema changes under them
	('BEGIN', 2), ('COMMIT', 1), ('ROLLBACK', 2), ('SAVEPOINT s', 1), ('ROLLBACK TO SAVEPOINT s', 1),
	('DROP TABLE IF EXISTS fuzz.scratch', 1),
	('CREATE TABLE IF NOT EXISTS fuzz.scratch (id int PRIMARY KEY, a text)', 1),
	('ALTER TABLE fuzz.scratch ADD COLUMN IF NOT EXISTS v int', 1),
	('ALTER TABLE fuzz.scratch DROP COLUMN IF EXISTS v', 1),
	('TRUNCATE @tgtname@', 1),
	('DO $$BEGIN PERFORM idempotent_upsert(@target@, @source@); EXCEPTION WHEN OTHERS THEN NULL; END$$', 2),
	-- the replace family
	('SELECT * FROM replace_partition(@rtarget@, @rsource@, @rcol@, @rday@)', 4),
	('SELECT * FROM replace_partition(@rtarget@, @rsource@, @rcol@, @rday@, @rmode@, @bool@)', 4),
	-- calls likely to get past the checks, so that swap and diff really run
	('SELECT * FROM replace_partition(''fuzz.r_range'', @rsource@, ''day'', @rday@, @rmode@)', 3),
	('SELECT * FROM replace_partition(''fuzz.r_range'', @rsource@, ''day'', @rday@, ''swap'')', 2),
	('SELECT * FROM replace_partition(''fuzz.r_list'', @rsource@, ''day'', @rday@, ''swap'')', 1),
	('SELECT * FROM replace_partition_range(''fuzz.r_range'', @rsource@, ''day'', @rday@, @rday@, ''swap'')', 1),
	('SELECT * FROM replace_partition_range(@rtarget@, @rsource@, @rcol@, @rday@, @rday@)', 2),
	('SELECT * FROM replace_partition_range(@rtarget@, @rsource@, @rcol@, @rday@, @rday@, @rmode@, @bool@)', 3),
	('SELECT * FROM replace_table(@rtarget@, @rsource@)', 1),
	('SELECT * FROM replace_table(@rtarget@, @rsource@, @rmode@, @bool@)', 2),
	('TRUNCATE fuzz.r_range_1', 1),
	('DROP TABLE IF EXISTS fuzz.r_range_9', 1),
	('CREATE TABLE IF NOT EXISTS fuzz.r_range_9 PARTITION OF fuzz.r_range FOR VALUES FROM (''2025-03-01'') TO (''2025-03-02'')', 1),
	-- ledgers and checkpoints
	('SELECT ledger_create(@lname@, @interval@, @int@, @interval@)', 1),
	('SELECT ledger_drop(@lname@)', 1),
	('SELECT ledger_record(@lname@, @lkey@, @fp@)', 3),
	('SELECT * FROM ledger_record_batch(@lname@, @lkeys@)', 2),
	('SELECT ledger_enqueue(@lname@, @lkeys@)', 2),
	('SELECT * FROM ledger_claim(@lname@, @lkey@, @fp@)', 3),
	('SELECT * FROM ledger_claim_next(@lname@, @int@)', 3),
	('SELECT ledger_complete(@lname@, @lkey@, @token@, @json@)', 3),
	('SELECT ledger_fail(@lname@, @lkey@, @token@, @ltext@)', 3),
	('SELECT ledger_heartbeat(@lname@, @lkey@, @token@, @interval@)', 2),
	('SELECT ledger_status(@lname@, @lkey@)', 1),
	('SELECT * FROM ledger_stats(@lname@)', 1),
	('SELECT ledger_prune(@lname@, @interval@, @int@)', 2),
	('SELECT checkpoint_advance(@cpname@, @bigint@)', 2),
	('SELECT checkpoint_advance(@cpname@, @bigint@, @fp@)', 2),
	('SELECT checkpoint_get(@cpname@)', 1),
	('SELECT pg_sleep(0.2)', 1),
	('SELECT * FROM ledger_complete_batch(@lname@, @lkeys@, ARRAY[@token@, @token@]::bigint[], ARRAY[@json@, NULL]::jsonb[])', 2),
	-- replace_where, with predicates that read tables the staging client changes
	('SELECT * FROM replace_where(@rtarget@, @rsource@, @rpred@)', 3),
	('SELECT * FROM replace_where(@rtarget@, @rsource@, @rpred@, @rmode@, @bool@)', 3),
	('SELECT * FROM replace_where(''fuzz.r_range'', @rsource@, @rpred@, @rmode@)', 3),
	-- history, as of a run's time or the call's own
	('SELECT * FROM idempotent_history(@htarget@, @hsource@)', 2),
	('SELECT * FROM idempotent_history(''fuzz.h_dim'', @hsource@, ARRAY[''id''], @htime@)', 4),
	('SELECT * FROM idempotent_history(''fuzz.h_dim'', @hsource@, @key@, @htime@, deletes => @hdeletes@, dry_run => @bool@)', 3),
	('SELECT * FROM idempotent_history(@htarget@, @hsource@, @key@, @htime@, @hcol@, @hcol@, @hdeletes@, @bool@)', 2);

-- the staging client: emptying, refilling, duplicating and changing what
-- the calls read, in transactions of its own, while they run
INSERT INTO fuzz.calls (template, weight, client) VALUES
	('DELETE FROM @stgname@', 3, 'stage'),
	('TRUNCATE @stgname@', 1, 'stage'),
	('INSERT INTO fuzz.s_int TABLE fuzz.orig_s_int', 2, 'stage'),
	('INSERT INTO fuzz.s_int SELECT * FROM fuzz.orig_s_int ORDER BY random() LIMIT 5', 2, 'stage'),
	('UPDATE fuzz.s_int SET v = v + 1 WHERE id % 7 = (random() * 7)::int', 2, 'stage'),
	('INSERT INTO fuzz.rs_day TABLE fuzz.orig_rs_day', 3, 'stage'),
	('INSERT INTO fuzz.rs_two TABLE fuzz.orig_rs_two', 2, 'stage'),
	('UPDATE fuzz.rs_day SET v = v + 1 WHERE id % 5 = 0', 2, 'stage'),
	('INSERT INTO fuzz.rs_day SELECT ''2025-01-02'', id, a, v FROM fuzz.orig_rs_day LIMIT 3', 1, 'stage'),
	('UPDATE fuzz.reload_days SET d = d + (CASE WHEN random() < 0.5 THEN 1 ELSE -1 END)', 2, 'stage'),
	('BEGIN; DELETE FROM @stgname@; SELECT pg_sleep(0.05); INSERT INTO fuzz.s_int TABLE fuzz.orig_s_int; INSERT INTO fuzz.rs_day TABLE fuzz.orig_rs_day; COMMIT', 3, 'stage'),
	('BEGIN; DELETE FROM fuzz.rs_day; INSERT INTO fuzz.rs_day TABLE fuzz.orig_rs_day; SELECT pg_sleep(0.1); ROLLBACK', 1, 'stage'),
	('SELECT pg_sleep(0.05)', 3, 'stage');

INSERT INTO fuzz.args (kind, expr)
SELECT 'target', unnest(ARRAY[
	'''fuzz.t_int''', '''fuzz.t_int''', '''fuzz.t_text''', '''fuzz.t_comp''', '''fuzz.t_part''',
	'''fuzz.t_part_1''', '''fuzz.t_gen''', '''fuzz.t_dom''', '''fuzz.t_nokey''', '''fuzz.t_two''',
	'''fuzz.t_rls''', '''fuzz.t_trig''', '''fuzz.scratch''', '''fuzz.v_int''', '''fuzz.m_int''',
	'''fuzz.seq''', '''fuzz.t_int_pkey''', '''secret.t''', '''pg_class''', 'NULL', '0',
	'''4294967295''::oid::regclass', 'to_regclass(''fuzz.scratch'')',
	'(SELECT oid FROM pg_class ORDER BY random() LIMIT 1)::regclass'])
UNION ALL
SELECT 'source', unnest(ARRAY[
	'''fuzz.s_int''', '''fuzz.s_int''', '''fuzz.s_dups''', '''fuzz.s_nulls''', '''fuzz.s_text''',
	'''fuzz.s_comp''', '''fuzz.s_wide''', '''fuzz.s_bad''', '''fuzz.v_int''', '''fuzz.m_int''',
	'''fuzz.t_int''', '''fuzz.scratch''', '''fuzz.seq''', '''secret.t''', 'NULL', '0',
	'''pg_class''', '(SELECT oid FROM pg_class ORDER BY random() LIMIT 1)::regclass'])
UNION ALL
SELECT 'relname', unnest(ARRAY['fuzz.t_int', 'fuzz.s_int', 'fuzz.t_part', 'fuzz.scratch', 'fuzz.t_rls',
	'fuzz.s_text', 'fuzz.v_int', 'fuzz.t_dom', 'fuzz.log'])
UNION ALL
SELECT 'tgtname', unnest(ARRAY['fuzz.t_int', 'fuzz.t_text', 'fuzz.t_comp', 'fuzz.scratch', 'fuzz.log'])
UNION ALL
SELECT 'key', unnest(ARRAY['NULL', 'NULL', 'ARRAY[''id'']', 'ARRAY[''id'', ''day'']', 'ARRAY[''day'', ''id'']',
	'ARRAY[''k'']', 'ARRAY[''a'']', 'ARRAY[]::text[]', 'ARRAY[NULL]::text[]', 'ARRAY[''nope'']',
	'''{{id}}''::text[]', 'ARRAY[''id'', ''id'']', 'ARRAY[''ctid'']', 'ARRAY[repeat(''x'', 100)]'])
UNION ALL
SELECT 'version', unnest(ARRAY['NULL', 'NULL', '''v''', '''v''', '''id''', '''a''', '''j''', '''ts''',
	'''nope''', '''''', '''g''', '''xmin'''])
UNION ALL
SELECT 'ondup', unnest(ARRAY['''error''', '''last''', '''last''', 'NULL', '''LAST''', ''''''])
UNION ALL
SELECT 'bool', unnest(ARRAY['false', 'false', 'true', 'NULL'])
UNION ALL
SELECT 'int', unnest(ARRAY['1', '7', '0', '-1', '2147483647', '-2147483648', 'NULL'])
UNION ALL
SELECT 'query', unnest(ARRAY[
	'''SELECT * FROM fuzz.s_int''', '''SELECT id, a, v FROM fuzz.s_int WHERE id < 50''',
	'''SELECT g AS id, g::text AS a FROM generate_series(1, 2000) g''',
	'''SELECT id, a, v + 1 AS v FROM fuzz.s_int ORDER BY random() LIMIT 100''',
	'''SELECT id, a FROM fuzz.s_dups''', '''SELECT * FROM fuzz.s_nulls''', '''SELECT 1 AS id''',
	'''VALUES (1)''', '''SELECT''', '''''', '''SELECT 1 AS id; SELECT 2 AS id''', '''DELETE FROM fuzz.log''',
	'''SELECT $1 AS id''', '''SELECT 1 AS id -- comment''', '''SELECT 1/0 AS id''',
	'''SELECT id, 5 AS p, ''''toolong'''' AS a FROM fuzz.s_int''', '''SELECT id, -1 AS p FROM fuzz.s_int''',
	'''SELECT id, CASE WHEN id = 42 THEN 13 ELSE v END AS v FROM fuzz.s_int''',
	'''SELECT id, (id * 100000)::numeric AS n FROM fuzz.s_int''', '''TABLE fuzz.s_comp''',
	'''SELECT * FROM fuzz.s_int FOR UPDATE''', 'NULL',
	'''SELECT k, a FROM fuzz.s_text''', '''SELECT id, ''''2025-01-05''''::date AS day, a FROM fuzz.s_int'''])
UNION ALL
SELECT 'json', unnest(ARRAY[
	'''[]''', '''[{"id": 1}]''', '''[{"id": 1, "a": "x", "v": 3}, {"id": 2}]''', 'NULL', '''null''',
	'''{}''', '''[1, 2]''', '''[{}]''', '''[{"id": "x"}]''', '''[{"id": 1}, {"id": 1}]''',
	'''[{"nope": 1}]''', '''[{"id": 1, "g": 2}]''', '''[{"id": 1, "p": -5}]''', '''[{"id": 1, "a": "toolong"}]''',
	'(SELECT jsonb_agg(to_jsonb(s)) FROM fuzz.s_int s)', '(SELECT jsonb_agg(to_jsonb(s)) FROM fuzz.s_dups s)',
	'(SELECT jsonb_agg(to_jsonb(s)) FROM fuzz.s_text s)',
	'''[{"id": 1, "j": {"a": [1, {"b": null}]}, "ts": "2025-01-01T00:00:00Z", "n": 1e3}]''',
	'''[{"id": 99999999999999999999}]''', '''[{"id": 1, "n": "NaN"}]'''])
UNION ALL
SELECT 'any', unnest(ARRAY['1', 'NULL', '''a''::text', '1.50::numeric', 'ARRAY[1, NULL]', 'ROW(1, ''a'')',
	'''{"a": 1}''::jsonb', '''NaN''::float8', '''-0''::float8', '''=r/postgres''::aclitem', 'true',
	'''\x00ff''::bytea', 'point(1, 2)', 'interval ''1 day''', 'NULL::int', '''a''', 'now()',
	'(SELECT t FROM fuzz.t_int t LIMIT 1)', '''infinity''::timestamptz', '''2025-01-01''::date',
	'(SELECT array_agg(s) FROM fuzz.s_int s WHERE id < 4)', 'repeat(''x'', 100000)',
	'''{}''::int[]', 'ARRAY[[1, 2], [3, 4]]', '''(1,2)''::int4range', '''fuzz.t_int''::regclass'])
UNION ALL
SELECT 'array', unnest(ARRAY['ARRAY[1, 2, 3]', 'NULL::int[]', '''{}''::text[]', 'ARRAY[NULL::text]',
	'ARRAY[ROW(1), ROW(2)]', 'ARRAY[[1], [2]]'])
UNION ALL
SELECT 'relarray', unnest(ARRAY['ARRAY[''fuzz.t_int''::regclass]', 'NULL::regclass[]', '''{}''::regclass[]',
	'ARRAY[NULL::regclass]', 'ARRAY[''fuzz.t_int'', ''fuzz.t_int'', ''fuzz.s_int'']::regclass[]'])
UNION ALL
SELECT 'stmt', unnest(ARRAY['''SELECT 1''', '''INSERT INTO fuzz.log VALUES (1)''', 'NULL', '''''',
	'''COMMIT''', '''DROP TABLE IF EXISTS fuzz.scratch''', '''TRUNCATE fuzz.t_int''',
	'''SELECT * FROM idempotent_upsert(''''fuzz.t_int'''', ''''fuzz.s_int'''')''',
	'''SELECT * FROM idempotent_upsert_query(''''fuzz.t_int'''', ''''SELECT id, a FROM fuzz.s_int WHERE id < 9'''')''',
	'''UPDATE fuzz.t_int SET v = v + 1''', '''SELECT assert_idempotent(''''SELECT 1'''', ''''fuzz.t_int'''')''',
	'''COPY fuzz.log FROM STDIN''', '''VACUUM fuzz.log''', '''SELECT 1/0''',
	'''CREATE TABLE fuzz.made (a int)''', '''SET LOCAL statement_timeout = 1'''])
UNION ALL
SELECT 'timestr', unnest(ARRAY['''2025-01-15 00:00:00+00''', '''2025-01-15''', '''now''', '''garbage''', '''''',
	'''infinity''', 'NULL', '''epoch''', '''J2451187''', '''2025-01-15 25:61'''])
UNION ALL
SELECT 'rtarget', unnest(ARRAY['''fuzz.r_range''', '''fuzz.r_range''', '''fuzz.r_list''', '''fuzz.r_plain''',
	'''fuzz.r_range_1''', '''fuzz.t_part''', '''fuzz.t_int''', '''fuzz.v_int''', '''fuzz.seq''',
	'''fuzz.t_int_pkey''', '''secret.t''', 'NULL', '0', 'to_regclass(''fuzz.r_range_9'')'])
UNION ALL
SELECT 'rsource', unnest(ARRAY['''fuzz.rs_day''', '''fuzz.rs_day''', '''fuzz.rs_dups''', '''fuzz.rs_two''',
	'''fuzz.rs_empty''', '''fuzz.rs_cols''', '''fuzz.rs_text''', '''fuzz.r_range_2''', '''fuzz.s_int''',
	'''fuzz.v_int''', '''fuzz.seq''', '''secret.t''', 'NULL', '0'])
UNION ALL
SELECT 'stgname', unnest(ARRAY['fuzz.s_int', 'fuzz.s_dups', 'fuzz.s_nulls', 'fuzz.rs_day', 'fuzz.rs_day',
	'fuzz.rs_dups', 'fuzz.rs_two'])
UNION ALL
SELECT 'rpred', unnest(ARRAY['''day IN (SELECT d FROM fuzz.reload_days)''', '''day IN (SELECT d FROM fuzz.reload_days)''',
	'''EXISTS (SELECT 1 FROM fuzz.reload_days r WHERE r.d = day)''', '''day = ''''2025-01-01''''''',
	'''day >= ''''2025-01-01'''' AND id < 50''', '''day IN (SELECT d FROM secret.reload_days)''',
	'''day IN (SELECT r.day FROM fuzz.r_range r)''', '''true''', '''id''',
	'''day = (SELECT max(d) FROM fuzz.reload_days)''',
	'''day IN (SELECT c.day FROM fuzz.m_int m JOIN fuzz.s_comp c ON c.id = m.id)''', 'NULL', ''''''''])
UNION ALL
SELECT 'htarget', unnest(ARRAY['''fuzz.h_dim''', '''fuzz.h_dim''', '''fuzz.h_nokey''', '''fuzz.t_int''',
	'''fuzz.v_int''', '''secret.t''', 'NULL', '0'])
UNION ALL
SELECT 'htime', unnest(ARRAY['NULL', '''2025-01-01 00:00+00''::timestamptz', '''2025-01-02 00:00+00''::timestamptz',
	'''2025-01-03 00:00+00''::timestamptz', '''2024-12-31 00:00+00''::timestamptz', '''infinity''::timestamptz',
	'''-infinity''::timestamptz', 'now()'])
UNION ALL
SELECT 'hsource', unnest(ARRAY['''fuzz.hs_dim''', '''fuzz.hs_dim''', '''fuzz.hs_dups''', '''fuzz.hs_nulls''',
	'''fuzz.s_int''', '''fuzz.rs_day''', 'NULL'])
UNION ALL
SELECT 'hdeletes', unnest(ARRAY['''ignore''', '''close''', '''close''', 'NULL', '''CLOSE''', ''''''])
UNION ALL
SELECT 'hcol', unnest(ARRAY['''valid_from''', '''valid_to''', '''a''', '''id''', '''nope''', 'NULL'])
UNION ALL
SELECT 'rcol', unnest(ARRAY['''day''', '''day''', '''day''', '''id''', '''a''', '''nope''', '''''',
	'''ctid''', 'NULL'])
UNION ALL
SELECT 'rday', unnest(ARRAY['''2025-01-01''::date', '''2025-01-01''::date', '''2025-01-02''::date',
	'''2025-01-03''::date', '''2025-03-01''::date', '''2030-01-01''::date', '''infinity''::date',
	'''-infinity''::date', 'NULL::date', '1', '''2025-01-01''::timestamptz', '''2025-01-01''::text',
	'point(1, 1)', 'true'])
UNION ALL
SELECT 'rmode', unnest(ARRAY['''auto''', '''diff''', '''diff''', '''swap''', '''delete_insert''',
	'NULL', '''''', '''SWAP'''])
UNION ALL
SELECT 'lname', unnest(ARRAY['''fz''', '''fz''', '''fz''', '''fz"q'''' x''', '''fz2''', '''nope''', '''''',
	'NULL', 'repeat(''L'', 63)'])
UNION ALL
SELECT 'lkey', unnest(ARRAY['''k1''', '''k2''', '''k3''', '''k'' || (random() * 60)::int', '''''',
	'NULL', 'repeat(''k'', 3000)', 'E''k\t\n'''])
UNION ALL
SELECT 'lkeys', unnest(ARRAY['ARRAY[''k1'', ''k2'', ''k1'']', 'ARRAY(SELECT ''k'' || g FROM generate_series(1, 100) g)',
	'''{}''::text[]', 'NULL::text[]', 'ARRAY[''k1'', NULL]', 'ARRAY[[''k1''], [''k2'']]'])
UNION ALL
SELECT 'fp', unnest(ARRAY['NULL', 'NULL', '''\x01''::bytea', '''\x02''::bytea', '''''::bytea'])
UNION ALL
SELECT 'token', unnest(ARRAY['(SELECT max(token) FROM pgi_ledger_key)',
	'(SELECT token FROM pgi_ledger_key ORDER BY random() LIMIT 1)', '1', '-1', '0', 'NULL',
	'9223372036854775807'])
UNION ALL
SELECT 'ltext', unnest(ARRAY['''boom''', 'NULL', '''''', 'repeat(''e'', 10000)'])
UNION ALL
SELECT 'interval', unnest(ARRAY['NULL', '''1 second''', '''5 minutes''', '''0 seconds''', '''-1 second''',
	'''1000 years''', '''2147483647 days'''])
UNION ALL
SELECT 'cpname', unnest(ARRAY['''cp''', '''cp''', '''cp "x'''' y''', '''''', 'NULL', 'repeat(''c'', 64)'])
UNION ALL
SELECT 'bigint', unnest(ARRAY['1', '(SELECT coalesce(max(position), 0) + 1 FROM pgi_checkpoint)', '0', '-1',
	'9223372036854775807', '-9223372036854775808', 'NULL']);

/*
 * n random statements, one a line, each ending in a semicolon.  Arguments
 * are filled left to right, so a value that itself holds an @word@ is
 * never expanded again.
 */
CREATE FUNCTION fuzz.gen(n int, who text DEFAULT 'gen') RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	tmpl text;
	done text;
	want text;
	pos int;
	stop int;
	val text;
BEGIN
	FOR i IN 1 .. n LOOP
		SELECT template INTO tmpl
		FROM fuzz.calls, generate_series(1, weight)
		WHERE client = who
		ORDER BY random() LIMIT 1;
		done := '';
		LOOP
			pos := position('@' IN tmpl);
			EXIT WHEN pos = 0;
			stop := position('@' IN substr(tmpl, pos + 1));
			want := substr(tmpl, pos + 1, stop - 1);
			SELECT expr INTO val FROM fuzz.args a WHERE a.kind = want ORDER BY random() LIMIT 1;
			IF val IS NULL THEN
				RAISE EXCEPTION 'fuzz.args has no values of kind "%"', want;
			END IF;
			done := done || substr(tmpl, 1, pos - 1) || val;
			tmpl := substr(tmpl, pos + stop + 1);
		END LOOP;
		RETURN NEXT replace(done || tmpl, E'\n', ' ') || ';';
	END LOOP;
END $$;
