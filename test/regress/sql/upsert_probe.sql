-- A one-row source (a table, or a JSON array of one object) is decided by
-- a probe of the key's unique index (upsert_probe.c): a row the target
-- already holds runs no statement, a changed or new one is written by a
-- statement of one row; a DEBUG1 line says which.  Anything the probe
-- cannot read exactly as the general statement would goes to that
-- statement, which answers as before: these cases show both, and that the
-- answers (counts, rows, errors) are the same either way.

\i test/regress/sql/include/err.sql

CREATE TABLE p_t (id int PRIMARY KEY, amount numeric, note text, big text);
INSERT INTO p_t SELECT g, g, 'row ' || g, NULL FROM generate_series(1, 100) g;
CREATE TABLE p_s (id int, amount numeric, note text, big text);
INSERT INTO p_s VALUES (7, 7, 'row 7', NULL);
ANALYZE p_t, p_s;

-- identical: probed, nothing written (the row keeps its place)
SELECT ctid AS before FROM p_t WHERE id = 7 \gset
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
SELECT * FROM idempotent_upsert('p_t', 'p_s', dry_run => true);
RESET client_min_messages;
SELECT ctid = :'before' AS not_written FROM p_t WHERE id = 7;

-- a column that differs, NULL against a value, and the same number written
-- differently (1.0 and 1.00 are equal, but the table must end holding what
-- the source says): each is written
SET client_min_messages = debug1;
UPDATE p_s SET note = 'changed';
SELECT * FROM idempotent_upsert('p_t', 'p_s');
UPDATE p_s SET note = NULL;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
SELECT * FROM idempotent_upsert('p_t', 'p_s');
UPDATE p_s SET amount = 7.00;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
SELECT id, amount, note FROM p_t WHERE id = 7;

-- a key equal under the index's equality but not in image: changed
CREATE TABLE p_nk (k numeric PRIMARY KEY, v text);
INSERT INTO p_nk SELECT g, 'v' FROM generate_series(1, 100) g;
CREATE TABLE p_nks (k numeric, v text);
INSERT INTO p_nks VALUES (5.0, 'v');
ANALYZE p_nk, p_nks;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_nk', 'p_nks');
SELECT * FROM idempotent_upsert('p_nk', 'p_nks');
RESET client_min_messages;
SELECT k::text FROM p_nk WHERE k = 5;

-- a value stored out of line and compressed on both sides: compared whole
UPDATE p_s SET amount = 7, note = 'row 7',
	big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g);
SELECT * FROM idempotent_upsert('p_t', 'p_s');
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
UPDATE p_s SET big = big || 'x';
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
SELECT length(big) FROM p_t WHERE id = 7;

-- a new key: inserted; no row, two rows, a NULL key: the statement
SET client_min_messages = debug1;
UPDATE p_s SET id = 1000;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
DELETE FROM p_s;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
INSERT INTO p_s SELECT * FROM p_t WHERE id IN (1, 2);
SELECT * FROM idempotent_upsert('p_t', 'p_s');
DELETE FROM p_s;
INSERT INTO p_s VALUES (NULL, 1, 'no key', NULL);
SELECT pg_temp.err($$SELECT * FROM idempotent_upsert('p_t', 'p_s')$$);
RESET client_min_messages;

-- types that differ from the target's (the statement casts): the statement
CREATE TABLE p_cast (id bigint, amount numeric(10, 2), note text, big text);
INSERT INTO p_cast SELECT id, amount, note, big FROM p_t WHERE id = 3;
ANALYZE p_cast;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_cast');
RESET client_min_messages;

-- a source with a child table, whose rows the statement reads too
DELETE FROM p_s;
INSERT INTO p_s SELECT * FROM p_t WHERE id = 4;
CREATE TABLE p_s_child () INHERITS (p_s);
INSERT INTO p_s_child SELECT id, amount, 'child', big FROM p_t WHERE id = 5;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
DROP TABLE p_s_child;
ANALYZE p_s;	-- which clears relhassubclass, left set by the DROP

-- a shape already probed, then the source's column retyped: the call
-- shape is forgotten, and the statement runs
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
ALTER TABLE p_s ALTER COLUMN id TYPE bigint;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
ALTER TABLE p_s ALTER COLUMN id TYPE int;
ANALYZE p_s;

-- a statement-level trigger fires for a statement that writes nothing, so
-- a target with one is never probed
CREATE FUNCTION p_stmt_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE '% % statement trigger', TG_WHEN, TG_OP;
	RETURN NULL;
END $$;
CREATE TRIGGER p_stmt AFTER UPDATE ON p_t FOR EACH STATEMENT
	EXECUTE FUNCTION p_stmt_trigger();
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
DROP TRIGGER p_stmt ON p_t;

-- a caller who may read but not write the target: the statement's error,
-- as before, even though the row is unchanged; with every privilege, the
-- probe
CREATE ROLE regress_probe_reader;
GRANT SELECT ON p_t, p_s TO regress_probe_reader;
SET ROLE regress_probe_reader;
SELECT pg_temp.err($$SELECT * FROM idempotent_upsert('p_t', 'p_s')$$);
SELECT pg_temp.err($$SELECT * FROM idempotent_upsert('p_t', 'p_s', dry_run => true)$$);
RESET ROLE;
GRANT INSERT, UPDATE ON p_t TO regress_probe_reader;
SET ROLE regress_probe_reader;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_t', 'p_s');
RESET client_min_messages;
RESET ROLE;

-- row security on the target, for that caller: a policy hides the row, so
-- the statement classifies it new, and its insert meets the policy (the
-- probe, blind to policies, would have found the row unchanged)
ALTER TABLE p_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p_hide ON p_t USING (id <> 4);
SET ROLE regress_probe_reader;
SET client_min_messages = debug1;
SELECT pg_temp.err($$SELECT * FROM idempotent_upsert('p_t', 'p_s')$$);
RESET client_min_messages;
RESET ROLE;
DROP POLICY p_hide ON p_t;
ALTER TABLE p_t DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON p_t, p_s FROM regress_probe_reader;
DROP ROLE regress_probe_reader;

-- a key index whose equality is not the type's default: the statement
CREATE TABLE p_ops (code text, v int);
CREATE UNIQUE INDEX p_ops_code ON p_ops (code text_pattern_ops);
INSERT INTO p_ops SELECT 'c' || g, g FROM generate_series(1, 100) g;
CREATE TABLE p_ops_s (code text, v int);
INSERT INTO p_ops_s VALUES ('c9', 9);
ANALYZE p_ops, p_ops_s;
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('p_ops', 'p_ops_s');
RESET client_min_messages;

-- JSON, one object: the same decisions; a key the object leaves out is
-- null, and a column it leaves out is not compared (nor written)
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 20, "amount": 20, "note": "row 20"}]');
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 20, "amount": 21, "note": "row 20"}]');
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 20, "amount": 21}]');
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 2000, "amount": 1, "note": "new"}]');
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 2000, "amount": 1, "note": "new"}]', dry_run => true);
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 2001, "amount": 1}]', dry_run => true);
SELECT pg_temp.err($$SELECT * FROM idempotent_upsert_json('p_t', '[{"id": null, "amount": 1}]')$$);
RESET client_min_messages;
SELECT id, amount, note FROM p_t WHERE id IN (20, 2000, 2001) ORDER BY id;

-- the one object is read as the statement reads every batch, by
-- jsonb_to_recordset with the target's column types (upsert_source.c):
-- each value coerced to its column's type and typmod, domains checked,
-- arrays, composites and jsonb built alike.  Each object alone (probed)
-- and with a second object (the statement) answers the same: the same
-- counts, or the same error.
CREATE DOMAIN p_pos AS int CHECK (VALUE > 0);
CREATE TYPE p_pair AS (a int, b text);
CREATE TABLE p_kinds (id int PRIMARY KEY, amt numeric(6,2), code varchar(3),
	pos p_pos, tags text[], pair p_pair, doc jsonb, at timestamptz);
INSERT INTO p_kinds SELECT g, 1.00, 'abc', 1, '{x}', '(1,one)', '{"k": 1}',
	'2026-01-01 00:00+00' FROM generate_series(1, 100) g;
ANALYZE p_kinds;
CREATE TABLE p_kinds_cases (n int, obj jsonb);
INSERT INTO p_kinds_cases VALUES
	(1, '{"id": 1, "amt": 1.004}'),
	(2, '{"id": 1, "amt": "1.006"}'),
	(3, '{"id": 1, "amt": 99999}'),
	(4, '{"id": 1, "code": "abcd"}'),
	(5, '{"id": 1, "code": "ab "}'),
	(6, '{"id": 1, "pos": 0}'),
	(7, '{"id": 1, "pos": "x"}'),
	(8, '{"id": "1x"}'),
	(9, '{"id": 1, "tags": ["x"]}'),
	(10, '{"id": 1, "tags": {"a": 1}}'),
	(11, '{"id": 1, "pair": {"a": 1, "b": "one"}}'),
	(12, '{"id": 1, "pair": {"a": 2, "c": 3}}'),
	(13, '{"id": 1, "doc": {"k": 1}}'),
	(14, '{"id": 1, "at": "2026-01-01 01:00+01"}'),
	(15, '{"id": 1, "at": "garbage"}'),
	(16, '{"id": 1, "pos": null}');
SELECT c.n,
	pg_temp.err(format($$SELECT row(inserted, updated, unchanged)::text FROM idempotent_upsert_json('p_kinds', %L, dry_run => true)$$,
		jsonb_build_array(c.obj))) AS one_object,
	pg_temp.err(format($$SELECT row(inserted, updated, unchanged)::text FROM idempotent_upsert_json('p_kinds', %L, dry_run => true)$$,
		jsonb_build_array(c.obj, c.obj || '{"id": 100}'))) AS with_another
FROM p_kinds_cases c ORDER BY c.n;
-- and written: the row an object changes is the row its statement writes
SELECT * FROM idempotent_upsert_json('p_kinds', '[{"id": 2, "amt": "7.005", "code": "xy ", "tags": ["a", "b"], "pair": {"a": 5}, "doc": {"z": [1]}}]');
SELECT * FROM idempotent_upsert_json('p_kinds', '[{"id": 3, "amt": "7.005", "code": "xy ", "tags": ["a", "b"], "pair": {"a": 5}, "doc": {"z": [1]}}, {"id": 4, "amt": 1}]');
SELECT id, amt, code, pos, tags, pair, doc FROM p_kinds WHERE id IN (2, 3) ORDER BY id;

-- a BEFORE ROW trigger: probed, but a changed row is written by the
-- statement (a trigger that skips the row would look like another
-- session's change, and run twice)
CREATE FUNCTION p_row_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE '% % row trigger on %', TG_WHEN, TG_OP, NEW.id;
	RETURN NEW;
END $$;
CREATE TRIGGER p_row BEFORE INSERT OR UPDATE ON p_t FOR EACH ROW
	EXECUTE FUNCTION p_row_trigger();
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 20, "amount": 21}]');
SELECT * FROM idempotent_upsert_json('p_t', '[{"id": 20, "amount": 22}]');
RESET client_min_messages;
DROP TRIGGER p_row ON p_t;

-- a default is evaluated only for the row inserted
CREATE TABLE p_seq (id int PRIMARY KEY, v text, n bigserial);
INSERT INTO p_seq (id, v) SELECT g, 'v' FROM generate_series(1, 100) g;
ANALYZE p_seq;
SELECT * FROM idempotent_upsert_json('p_seq', '[{"id": 5, "v": "v"}]');
SELECT * FROM idempotent_upsert_json('p_seq', '[{"id": 5, "v": "w"}]');
SELECT * FROM idempotent_upsert_json('p_seq', '[{"id": 500, "v": "w"}]');
SELECT last_value FROM p_seq_n_seq;
SELECT id, v, n FROM p_seq WHERE id IN (5, 500) ORDER BY id;

DROP TABLE p_t, p_s, p_nk, p_nks, p_cast, p_ops, p_ops_s, p_seq;
DROP FUNCTION p_stmt_trigger(), p_row_trigger();
