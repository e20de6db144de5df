-- What a call derives from the catalogs is kept per backend for the next
-- call of the same shape (src/callcache.c).  Between two calls in one
-- session the catalogs change, and the second call must see them as they
-- are: each case below gives a different answer with a stale shape.  Every
-- target holds a row before the first call, so that both calls are of the
-- same shape (a batch small against the table: index probes).
SET client_min_messages = warning;
\set VERBOSITY terse

CREATE TABLE uc_t (id int PRIMARY KEY, a text);
CREATE TABLE uc_s (id int, a text);
INSERT INTO uc_s VALUES (1, 'x'), (2, 'y');
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');

-- a column added to both: the second call writes it
ALTER TABLE uc_t ADD COLUMN b int;
ALTER TABLE uc_s ADD COLUMN b int;
UPDATE uc_s SET b = id * 10;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
SELECT * FROM uc_t ORDER BY id;

-- the column dropped from the target only: the source's is refused
ALTER TABLE uc_t DROP COLUMN b;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
ALTER TABLE uc_s DROP COLUMN b;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');

-- a column retyped: the source's values are converted to the new type
-- before they are compared (1.234 is 1.2 in numeric(10,1): unchanged)
CREATE TABLE uc_n (id int PRIMARY KEY, n numeric(10,3));
INSERT INTO uc_n VALUES (100, 0);
CREATE TABLE uc_ns (id int, n numeric(10,3));
INSERT INTO uc_ns VALUES (1, 1.234);
SELECT * FROM idempotent_upsert('uc_n', 'uc_ns');
ALTER TABLE uc_n ALTER COLUMN n TYPE numeric(10,1);
SELECT * FROM idempotent_upsert('uc_n', 'uc_ns');
SELECT * FROM uc_n ORDER BY id;
-- and retyped without a rewrite: varchar(5) to varchar(20), the source's
-- longer value refused before (as an INSERT would: 22001), written after
CREATE TABLE uc_v (id int PRIMARY KEY, s varchar(5));
INSERT INTO uc_v VALUES (100, 'other');
CREATE TABLE uc_vs (id int, s varchar(20));
INSERT INTO uc_vs VALUES (1, 'short');
SELECT * FROM idempotent_upsert('uc_v', 'uc_vs');
UPDATE uc_vs SET s = 'somewhat longer';
SELECT * FROM idempotent_upsert('uc_v', 'uc_vs');
ALTER TABLE uc_v ALTER COLUMN s TYPE varchar(20);
SELECT * FROM idempotent_upsert('uc_v', 'uc_vs');
SELECT * FROM uc_v ORDER BY id;

-- the key changes with the indexes: the primary key dropped and a unique
-- index on code made, then that dropped too (no key left)
CREATE TABLE uc_k (id int PRIMARY KEY, code text NOT NULL, v text);
INSERT INTO uc_k VALUES (100, 'c100', 'other');
CREATE TABLE uc_ks (id int, code text, v text);
INSERT INTO uc_ks VALUES (1, 'c1', 'first');
SELECT * FROM idempotent_upsert('uc_k', 'uc_ks');
ALTER TABLE uc_k DROP CONSTRAINT uc_k_pkey;
CREATE UNIQUE INDEX uc_k_code ON uc_k (code);
UPDATE uc_ks SET id = 2, v = 'second';
SELECT * FROM idempotent_upsert('uc_k', 'uc_ks');
SELECT * FROM uc_k ORDER BY id;
DROP INDEX uc_k_code;
SELECT * FROM idempotent_upsert('uc_k', 'uc_ks');
CREATE UNIQUE INDEX uc_k_id ON uc_k (id);
SELECT * FROM idempotent_upsert('uc_k', 'uc_ks');

-- the source dropped and made again under the same name, of another shape
DROP TABLE uc_s;
CREATE TABLE uc_s (a text, id int);
INSERT INTO uc_s VALUES ('z', 1);
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
SELECT * FROM uc_t ORDER BY id;

-- search_path changed: the same name is another table
CREATE SCHEMA uc_a;
CREATE SCHEMA uc_b;
CREATE TABLE uc_a.t (id int PRIMARY KEY, a text);
CREATE TABLE uc_b.t (id int PRIMARY KEY, a text, c int);
INSERT INTO uc_a.t VALUES (100, 'other');
INSERT INTO uc_b.t VALUES (100, 'other');
SET search_path = uc_a, public;
SELECT * FROM idempotent_upsert('t', 'uc_s');
SET search_path = uc_b, public;
SELECT * FROM idempotent_upsert('t', 'uc_s');
RESET search_path;
SELECT 'a' AS schema, * FROM uc_a.t UNION ALL SELECT 'b', id, a FROM uc_b.t ORDER BY 1, 2;

-- a schema renamed: the statements name the table by its schema
ALTER SCHEMA uc_a RENAME TO uc_c;
UPDATE uc_s SET a = 'renamed';
SELECT * FROM idempotent_upsert('uc_c.t', 'uc_s');
SELECT * FROM uc_c.t ORDER BY id;

-- a type renamed: the JSON source's columns are typed by name
CREATE DOMAIN uc_dom AS text CHECK (VALUE <> '');
CREATE TABLE uc_j (id int PRIMARY KEY, d uc_dom);
INSERT INTO uc_j VALUES (100, 'other');
SELECT * FROM idempotent_upsert_json('uc_j', '[{"id": 1, "d": "one"}]');
ALTER DOMAIN uc_dom RENAME TO uc_dom2;
-- (a new search_path makes the plan cache parse the statement again)
SET search_path = public, uc_b;
SELECT * FROM idempotent_upsert_json('uc_j', '[{"id": 1, "d": "uno"}]');
RESET search_path;
SELECT * FROM uc_j ORDER BY id;

-- another role, without the privileges, calling the shape the owner just
-- ran: refused (a dry run only reads, yet the target's lock needs a write
-- privilege), and so is a role that may read the target but not the source
CREATE ROLE regress_uc_reader;
GRANT SELECT ON uc_t TO regress_uc_reader;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s', dry_run => true);
SET ROLE regress_uc_reader;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s', dry_run => true);
RESET ROLE;
GRANT INSERT, UPDATE ON uc_t TO regress_uc_reader;
SET ROLE regress_uc_reader;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
RESET ROLE;
GRANT SELECT ON uc_s TO regress_uc_reader;
SET ROLE regress_uc_reader;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s');
RESET ROLE;
REVOKE ALL ON uc_t, uc_s FROM regress_uc_reader;
DROP ROLE regress_uc_reader;

-- a role that may read some of the target's columns, not its ctids, calling
-- the shape the owner just ran with changed rows (two rows: not a probe):
-- the owner's statement finds matched rows by ctid, this role's by key
CREATE TABLE uc_s2 (id int, a text);
INSERT INTO uc_s2 VALUES (1, 'p'), (2, 'q');
CREATE ROLE regress_uc_columns;
GRANT SELECT (id, a), INSERT, UPDATE ON uc_t TO regress_uc_columns;
GRANT SELECT ON uc_s2 TO regress_uc_columns;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s2');
UPDATE uc_s2 SET a = a || '1';
SELECT * FROM idempotent_upsert('uc_t', 'uc_s2');
UPDATE uc_s2 SET a = a || '2';
SET ROLE regress_uc_columns;
SELECT * FROM idempotent_upsert('uc_t', 'uc_s2');
RESET ROLE;
SELECT * FROM uc_t ORDER BY id;
REVOKE ALL ON uc_t, uc_s2 FROM regress_uc_columns;
DROP ROLE regress_uc_columns;
DROP TABLE uc_s2;

-- bounded: upserts into 200 tables in one session keep at most 32 shapes
-- and 64 prepared statements, and their memory does not grow with the
-- tables (from 100 tables on, both caches are full)
CREATE FUNCTION uc_shapes(OUT shapes bigint, OUT kb numeric, OUT plans bigint, OUT plan_kb numeric)
LANGUAGE sql AS $$
	SELECT count(*) FILTER (WHERE name = 'pg_idempotent call shape'),
		round(sum(total_bytes) FILTER (WHERE name LIKE 'pg_idempotent call %') / 1024.0),
		count(*) FILTER (WHERE name = 'CachedPlanSource'),
		round(sum(total_bytes) FILTER (WHERE name LIKE 'CachedPlan%') / 1024.0)
	FROM pg_backend_memory_contexts
	WHERE name LIKE 'pg_idempotent call %' OR (name LIKE 'CachedPlan%' AND ident LIKE '%public.uc\_many\_%')
$$;
DO $$
BEGIN
	FOR g IN 1..200 LOOP
		EXECUTE format('CREATE TABLE uc_many_%s (id int PRIMARY KEY, a text)', g);
	END LOOP;
END $$;
CREATE TEMP TABLE uc_sizes (tables int, shapes bigint, kb numeric, plans bigint, plan_kb numeric);
DO $$
BEGIN
	FOR g IN 1..200 LOOP
		PERFORM * FROM idempotent_upsert(format('uc_many_%s', g)::regclass, 'uc_s');
		IF g IN (100, 200) THEN
			INSERT INTO uc_sizes SELECT g, * FROM uc_shapes();
		END IF;
	END LOOP;
END $$;
SELECT tables, shapes, kb < 256 AS under_256_kb, plans <= 64 AS at_most_64_plans FROM uc_sizes ORDER BY tables;
SELECT a.kb <= b.kb * 1.1 AS shapes_not_growing, a.plan_kb <= b.plan_kb * 1.1 AS plans_not_growing
FROM uc_sizes a, uc_sizes b WHERE a.tables = 200 AND b.tables = 100;
DO $$
BEGIN
	FOR g IN 1..200 LOOP
		EXECUTE format('DROP TABLE uc_many_%s', g);
	END LOOP;
END $$;

DROP TABLE uc_t, uc_s, uc_n, uc_ns, uc_v, uc_vs, uc_k, uc_ks, uc_j, uc_c.t, uc_b.t;
DROP DOMAIN uc_dom2;
DROP SCHEMA uc_b, uc_c;
DROP FUNCTION uc_shapes();
