-- idempotent_upsert_query and idempotent_upsert_json evaluate their source
-- once per call: each source row is computed exactly once, whatever the
-- call does with it (checks, dry_run, a version column, on_duplicate =>
-- 'last', a first load), and all of it is read as of one moment.
--
-- A query source counts its evaluations with a volatile function; a JSON
-- source with a domain whose CHECK counts, since every JSON value is
-- converted to the column's type once per evaluation.  Each block shows the
-- counts, then how many times a source row was computed.

CREATE SEQUENCE evaluations;
CREATE FUNCTION counted(x int) RETURNS int LANGUAGE plpgsql VOLATILE
	AS 'BEGIN PERFORM nextval(''evaluations''); RETURN x; END';
CREATE FUNCTION count_value(x text) RETURNS boolean LANGUAGE plpgsql VOLATILE
	AS 'BEGIN PERFORM nextval(''evaluations''); RETURN true; END';
CREATE DOMAIN counted_text AS text CHECK (count_value(VALUE));
-- how many evaluations since the last call, and start counting again
CREATE FUNCTION evaluated() RETURNS bigint LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN is_called THEN last_value ELSE 0 END
	FROM (SELECT last_value, is_called, setval('evaluations', 1, false) FROM evaluations) s
$$;

CREATE TABLE items (id int PRIMARY KEY, v text, version int);
INSERT INTO items VALUES (0, 'already there', 1);
SELECT evaluated() AS reset;

-- query source: new rows, then a replay, a dry run and a change
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(g) AS id, ''v'' || g AS v, 1 AS version FROM generate_series(1, 3) g');
SELECT evaluated();
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(g) AS id, ''v'' || g AS v, 1 AS version FROM generate_series(1, 3) g');
SELECT evaluated();
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(g) AS id, ''w'' || g AS v, 1 AS version FROM generate_series(1, 3) g',
	dry_run => true);
SELECT evaluated();
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(g) AS id, ''w'' || g AS v, 1 AS version FROM generate_series(1, 4) g');
SELECT evaluated();

-- a version column: a newer row, an equal one and a stale one
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(id) AS id, v, version FROM (VALUES (1, ''x'', 2), (2, ''w2'', 1), (3, ''old'', 0)) s(id, v, version)',
	version_column => 'version');
SELECT evaluated();

-- on_duplicate => 'last': four rows, two of one key
SELECT * FROM idempotent_upsert_query('items',
	'SELECT counted(id) AS id, v, version FROM (VALUES (5, ''a'', 1), (5, ''b'', 2), (6, ''c'', 1), (1, ''x'', 2)) s(id, v, version)',
	version_column => 'version', on_duplicate => 'last');
SELECT evaluated();
SELECT * FROM items ORDER BY id;

-- a first load into an empty table
CREATE TABLE items2 (LIKE items INCLUDING ALL);
SELECT * FROM idempotent_upsert_query('items2',
	'SELECT counted(g) AS id, ''v'' || g AS v, 1 AS version FROM generate_series(1, 3) g');
SELECT evaluated();

-- a sequence in the query advances once per row, not once per step
CREATE SEQUENCE ids START 100;
CREATE TABLE numbered (id bigint PRIMARY KEY, v text);
INSERT INTO numbered VALUES (1, 'seed');
SELECT * FROM idempotent_upsert_query('numbered',
	'SELECT nextval(''ids'') AS id, ''n'' || g AS v FROM generate_series(1, 3) g');
SELECT last_value FROM ids;
SELECT * FROM numbered ORDER BY id;

-- JSON source
CREATE TABLE docs (id int PRIMARY KEY, v counted_text, version int);
INSERT INTO docs VALUES (0, 'seed', 1);
SELECT evaluated() AS reset;
SELECT * FROM idempotent_upsert_json('docs',
	'[{"id": 1, "v": "a", "version": 1}, {"id": 2, "v": "b", "version": 1}, {"id": 3, "v": "c", "version": 1}]');
SELECT evaluated();
SELECT * FROM idempotent_upsert_json('docs',
	'[{"id": 1, "v": "a", "version": 1}, {"id": 2, "v": "b", "version": 1}, {"id": 3, "v": "c", "version": 1}]');
SELECT evaluated();
SELECT * FROM idempotent_upsert_json('docs',
	'[{"id": 1, "v": "A", "version": 1}, {"id": 4, "v": "d", "version": 1}]', dry_run => true);
SELECT evaluated();
SELECT * FROM idempotent_upsert_json('docs',
	'[{"id": 1, "v": "A", "version": 2}, {"id": 2, "v": "B", "version": 0}, {"id": 4, "v": "d", "version": 1}]',
	version_column => 'version');
SELECT evaluated();
SELECT * FROM idempotent_upsert_json('docs',
	'[{"id": 5, "v": "e", "version": 1}, {"id": 5, "v": "E", "version": 2}, {"id": 1, "v": "A", "version": 2}]',
	version_column => 'version', on_duplicate => 'last');
SELECT evaluated();
SELECT * FROM docs ORDER BY id;

-- A view is a query too: the upserts, the history writes and the replace
-- family evaluate it once per call, whatever they do with its rows.
CREATE TABLE viewed (id int PRIMARY KEY, v text, version int);
CREATE VIEW counted_rows AS
	SELECT counted(g) AS id, 'v' || g AS v, 1 AS version FROM generate_series(1, 3) g;
SELECT evaluated() AS reset;
SELECT * FROM idempotent_upsert('viewed', 'counted_rows');
SELECT evaluated();
SELECT * FROM idempotent_upsert('viewed', 'counted_rows');
SELECT evaluated();
SELECT * FROM idempotent_upsert('viewed', 'counted_rows', version_column => 'version',
	on_duplicate => 'last', dry_run => true);
SELECT evaluated();
CREATE TABLE viewed_history (id int, v text, version int, valid_from timestamptz,
	valid_to timestamptz, PRIMARY KEY (id, valid_from));
SELECT * FROM idempotent_history('viewed_history', 'counted_rows', as_of => '2025-01-01');
SELECT evaluated();
SELECT * FROM idempotent_history('viewed_history', 'counted_rows', as_of => '2025-01-01');
SELECT evaluated();
SELECT * FROM idempotent_history('viewed_history', 'counted_rows', as_of => '2025-02-01',
	deletes => 'close');
SELECT evaluated();
SELECT * FROM replace_table('viewed', 'counted_rows', mode => 'diff');
SELECT evaluated();
SELECT * FROM replace_partition('viewed', 'counted_rows', 'version', 1, mode => 'delete_insert');
SELECT evaluated();
