-- A source unique on the key by construction (a unique index over key
-- columns, a query grouped by the key) has its duplicate check left out
-- (distinct.c): a DEBUG1 line says so.  Every source that only looks
-- unique still has its duplicates reported, with the same SQLSTATE and
-- message as any other source.

\i test/regress/sql/include/err.sql

SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- the DEBUG1 lines of a call that say the check was left out, and the
-- call's result or error
CREATE FUNCTION pg_temp.check_left_out(stmt text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
	SET LOCAL client_min_messages = debug1;
	RETURN NEXT pg_temp.err(stmt);
	RESET client_min_messages;
END $$;

\pset format unaligned
\pset tuples_only on

-- idempotent_history
CREATE TABLE u_hist (id int, a text, valid_from timestamptz NOT NULL,
	valid_to timestamptz, PRIMARY KEY (id, valid_from));

-- provable: a primary key, a unique index over part of a longer key, a
-- partitioned table's primary key, a materialized view's unique index
CREATE TABLE u_pk (id int PRIMARY KEY, a text);
INSERT INTO u_pk VALUES (1, 'x'), (2, 'y');
SET client_min_messages = debug1;
SELECT * FROM idempotent_history('u_hist', 'u_pk', as_of => '2025-01-01');
SELECT * FROM idempotent_history('u_hist', 'u_pk', as_of => '2025-01-01');
UPDATE u_pk SET a = 'z' WHERE id = 2;
SELECT * FROM idempotent_history('u_hist', 'u_pk', as_of => '2025-02-01');
RESET client_min_messages;
SELECT * FROM u_hist ORDER BY id, valid_from;

CREATE TABLE u_part (id int PRIMARY KEY, a text) PARTITION BY RANGE (id);
CREATE TABLE u_part_1 PARTITION OF u_part FOR VALUES FROM (0) TO (10);
CREATE TABLE u_part_2 PARTITION OF u_part FOR VALUES FROM (10) TO (20);
INSERT INTO u_part VALUES (1, 'x'), (2, 'z'), (11, 'w');
CREATE MATERIALIZED VIEW u_mv AS SELECT * FROM u_part;
CREATE UNIQUE INDEX ON u_mv (id);
SET client_min_messages = debug1;
SELECT * FROM idempotent_history('u_hist', 'u_part', as_of => '2025-03-01');
SELECT * FROM idempotent_history('u_hist', 'u_mv', as_of => '2025-03-01');
RESET client_min_messages;

-- not provable, and duplicated: each reported as 21000, nothing written
-- a unique index over a column outside the key
CREATE TABLE u_other (id int, a text UNIQUE);
INSERT INTO u_other VALUES (1, 'p'), (1, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_other', as_of => '2025-04-01')$$);
-- a partial unique index
CREATE TABLE u_partial (id int, a text);
CREATE UNIQUE INDEX ON u_partial (id) WHERE a <> 'q';
INSERT INTO u_partial VALUES (1, 'p'), (1, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_partial', as_of => '2025-04-01')$$);
-- a unique index over an expression of the key
CREATE TABLE u_expr (id int, a text);
CREATE UNIQUE INDEX ON u_expr ((id * 0 + id));
INSERT INTO u_expr VALUES (1, 'p'), (2, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_expr', as_of => '2025-04-01', dry_run => true)$$);
-- a deferrable primary key, deferred: duplicates inside the transaction
CREATE TABLE u_deferred (id int PRIMARY KEY DEFERRABLE, a text);
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO u_deferred VALUES (1, 'p'), (1, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_deferred', as_of => '2025-04-01')$$);
ROLLBACK;
-- a parent's primary key, and a child holding the same key
CREATE TABLE u_parent (id int PRIMARY KEY, a text);
CREATE TABLE u_child () INHERITS (u_parent);
INSERT INTO u_parent VALUES (1, 'p');
INSERT INTO u_child VALUES (1, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_parent', as_of => '2025-04-01')$$);
-- a unique key of another type, cast to the target's: 1.2 and 1.4 are
-- both 1
CREATE TABLE u_numeric (id numeric PRIMARY KEY, a text);
INSERT INTO u_numeric VALUES (1.2, 'p'), (1.4, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_numeric', as_of => '2025-04-01')$$);
-- ... or of the same type with another precision
CREATE TABLE u_hist_n (id numeric(4,0), a text, valid_from timestamptz NOT NULL,
	valid_to timestamptz, PRIMARY KEY (id, valid_from));
CREATE TABLE u_numeric_2 (id numeric(4,1) PRIMARY KEY, a text);
INSERT INTO u_numeric_2 VALUES (1.2, 'p'), (1.4, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist_n', 'u_numeric_2', as_of => '2025-04-01')$$);
-- a unique index under a deterministic collation, where the source column's
-- collation is case-insensitive: the check compares as the target's key
-- does, under its deterministic collation, so 'a' and 'A' are two keys and
-- the "C" index proves it
CREATE COLLATION u_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE u_hist_t (code text, a text, valid_from timestamptz NOT NULL,
	valid_to timestamptz, PRIMARY KEY (code, valid_from));
CREATE TABLE u_ci_src (code text COLLATE u_ci, a text);
CREATE UNIQUE INDEX ON u_ci_src (code COLLATE "C");
INSERT INTO u_ci_src VALUES ('a', 'p'), ('A', 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist_t', 'u_ci_src', as_of => '2025-04-01')$$);
-- the same index under the column's own collation proves it
CREATE TABLE u_ci_src2 (code text COLLATE u_ci PRIMARY KEY, a text);
INSERT INTO u_ci_src2 VALUES ('a', 'p'), ('b', 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist_t', 'u_ci_src2', as_of => '2025-04-01', dry_run => true)$$);
-- a target key under a case-insensitive collation, a source unique
-- bytewise: not proved
CREATE TABLE u_hist_ci (code text COLLATE u_ci, a text, valid_from timestamptz NOT NULL,
	valid_to timestamptz, PRIMARY KEY (code, valid_from));
CREATE TABLE u_c_src (code text PRIMARY KEY, a text);
INSERT INTO u_c_src VALUES ('a', 'p'), ('b', 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist_ci', 'u_c_src', as_of => '2025-04-01', dry_run => true)$$);

-- null keys are still counted where the check is left out: a unique
-- index lets any number of them in
CREATE TABLE u_nulls (id int UNIQUE, a text);
INSERT INTO u_nulls VALUES (1, 'p'), (NULL, 'q'), (NULL, 'r');
SELECT pg_temp.check_left_out($$SELECT idempotent_history('u_hist', 'u_nulls', as_of => '2025-04-01')$$);

-- nothing above wrote anything after 2025-03-01
SELECT count(*) AS versions_after_march FROM u_hist WHERE valid_from > '2025-03-01';

-- idempotent_upsert and idempotent_upsert_query: the same proofs
CREATE TABLE u_tgt (id int PRIMARY KEY, a text, v int);
INSERT INTO u_tgt VALUES (1, 'x', 1);
CREATE TABLE u_vsrc (id int PRIMARY KEY, a text, v int);
INSERT INTO u_vsrc VALUES (1, 'p', 2), (2, 'q', 1);

-- provable: a primary key, with or without on_duplicate => 'last' and a
-- version column (each key's newest row is its only one)
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_pk', dry_run => true)$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_vsrc', version_column => 'v', on_duplicate => 'last', dry_run => true)$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_vsrc', on_duplicate => 'last')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_vsrc', on_duplicate => 'last')$$);
SELECT * FROM u_tgt ORDER BY id;
-- a query grouped by the key, DISTINCT ON the key, a UNION, one aggregate row
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id, max(a) AS a FROM u_other GROUP BY id', dry_run => true)$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT DISTINCT ON (id) id, a FROM u_other ORDER BY id, a DESC', dry_run => true)$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id FROM u_pk UNION SELECT id FROM u_other', dry_run => true)$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT 7 AS id, count(*)::text AS a FROM u_other', dry_run => true)$$);
-- a query grouped by a key under a case-insensitive collation: 'a' and 'A'
-- are one group, and one key
CREATE TABLE u_tgt_t (code text PRIMARY KEY, a text);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt_t', 'SELECT code, max(a) AS a FROM u_ci_src GROUP BY code')$$);
SELECT * FROM u_tgt_t ORDER BY code;

-- not provable, and duplicated: 21000 as for any source, nothing written
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_other')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_partial')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_parent')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_numeric')$$);
-- unique bytewise ("C") but not under the target key's case-insensitive
-- collation
CREATE TABLE u_tgt_ci (code text COLLATE u_ci PRIMARY KEY, a text);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt_ci', 'u_ci_src')$$);
SELECT count(*) FROM u_tgt_ci;
-- into a target whose key tells 'a' from 'A': two keys, the "C" index
-- proves it
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt_t', 'u_ci_src')$$);
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO u_deferred VALUES (1, 'p'), (1, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_deferred')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_deferred', on_duplicate => 'last')$$);
ROLLBACK;
-- grouped by a numeric key, then cast to the target's integer: 1.2 and 1.4
-- are two groups and one key, whether the query or the call casts
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id, min(a) AS a FROM u_numeric GROUP BY id')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id::int AS id, min(a) AS a FROM u_numeric GROUP BY u_numeric.id')$$);
-- a UNION ALL, and a UNION over more than the key
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id, a FROM u_pk UNION ALL SELECT id, a FROM u_pk')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id, a FROM u_other UNION SELECT id, a FROM u_other')$$);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert_query('u_tgt', 'SELECT id FROM u_pk UNION ALL SELECT id FROM u_other')$$);
-- null keys are still counted
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_nulls')$$);

-- a unique index made in this transaction: proved on a table made in it
-- too (no other transaction wrote its rows), not on an older table (a
-- snapshot older than the index can see two rows it never saw live
-- together)
BEGIN;
CREATE TABLE u_new (id int PRIMARY KEY, a text);
INSERT INTO u_new VALUES (1, 'p'), (3, 'q');
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_new', dry_run => true)$$);
ALTER TABLE u_expr ADD PRIMARY KEY (id);
SELECT pg_temp.check_left_out($$SELECT idempotent_upsert('u_tgt', 'u_expr', dry_run => true)$$);
ROLLBACK;

\pset tuples_only off
SELECT * FROM u_tgt ORDER BY id;
