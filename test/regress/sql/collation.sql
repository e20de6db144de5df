-- A key column whose collation differs between source and target: the
-- source's keys are compared as the target compares them.  Under the
-- target's case-insensitive collation, 'a' and 'A' are one key, so a source
-- holding both has a duplicate (21000 naming it, never ON CONFLICT's bare
-- "cannot affect row a second time" or the index's 23505); under a target
-- that tells them apart, they are two keys even when the source's own
-- collation does not.

\i test/regress/sql/include/err.sql

CREATE COLLATION co_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

-- the target's key is case-insensitive; the source's is not
CREATE TABLE co_t (k text COLLATE co_ci PRIMARY KEY, v int);
CREATE TABLE co_s (k text, v int);
INSERT INTO co_s VALUES ('a', 1), ('A', 2);

-- into an empty target (the first load) and into one that has rows
SELECT pg_temp.err($$SELECT idempotent_upsert('co_t', 'co_s')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('co_t', 'SELECT * FROM co_s')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('co_t', '[{"k": "a", "v": 1}, {"k": "A", "v": 2}]')$$);
INSERT INTO co_t VALUES ('b', 0);
SELECT pg_temp.err($$SELECT idempotent_upsert('co_t', 'co_s')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_query('co_t', 'SELECT * FROM co_s')$$);
SELECT pg_temp.err($$SELECT idempotent_upsert_json('co_t', '[{"k": "a", "v": 1}, {"k": "A", "v": 2}]')$$);
SELECT * FROM co_t ORDER BY k COLLATE "C";

-- on_duplicate => 'last' keeps the newest of the two as the one key
SELECT * FROM idempotent_upsert('co_t', 'co_s', version_column => 'v', on_duplicate => 'last');
SELECT * FROM co_t ORDER BY k COLLATE "C";
-- a source that spells the stored key differently is an update
DELETE FROM co_s WHERE k = 'a';
UPDATE co_s SET k = 'B', v = 0;
SELECT * FROM idempotent_upsert('co_t', 'co_s');
SELECT * FROM co_t ORDER BY k COLLATE "C";

-- history: the same duplicate
CREATE TABLE co_h (k text COLLATE co_ci, a int, valid_from timestamptz,
	valid_to timestamptz, PRIMARY KEY (k, valid_from));
CREATE TABLE co_hs (k text, a int);
INSERT INTO co_hs VALUES ('a', 1), ('A', 2);
SELECT pg_temp.err($$SELECT idempotent_history('co_h', 'co_hs', as_of => '2025-01-01')$$);
INSERT INTO co_h VALUES ('b', 0, '2024-01-01', NULL);
SELECT pg_temp.err($$SELECT idempotent_history('co_h', 'co_hs', as_of => '2025-01-01')$$);
SELECT count(*) AS versions FROM co_h;

-- the other way round: the source's collation is case-insensitive, the
-- target's is not, so 'a' and 'A' are two keys
CREATE TABLE co_t2 (k text PRIMARY KEY, v int);
INSERT INTO co_t2 VALUES ('b', 0);
CREATE TABLE co_s2 (k text COLLATE co_ci, v int);
INSERT INTO co_s2 VALUES ('a', 1), ('A', 2);
SELECT * FROM idempotent_upsert('co_t2', 'co_s2');
SELECT * FROM idempotent_upsert('co_t2', 'co_s2');
SELECT * FROM co_t2 ORDER BY k COLLATE "C";
CREATE TABLE co_h2 (k text, a int, valid_from timestamptz,
	valid_to timestamptz, PRIMARY KEY (k, valid_from));
INSERT INTO co_h2 VALUES ('b', 0, '2024-01-01', NULL);
CREATE TABLE co_hs2 (k text COLLATE co_ci, a int);
INSERT INTO co_hs2 VALUES ('a', 1), ('A', 2);
SELECT * FROM idempotent_history('co_h2', 'co_hs2', as_of => '2025-01-01');
SELECT * FROM idempotent_history('co_h2', 'co_hs2', as_of => '2025-01-01');
SELECT k, a FROM co_h2 ORDER BY k COLLATE "C";
