-- Hostile input catalogue, the replace family: bad calls of
-- replace_partition, replace_partition_range and replace_table, each
-- printed with its SQLSTATE, none of which touches a row (replace_where's
-- predicate is in hostile.sql, beside the hostile search_path it is
-- checked against).
--
-- Every call goes through pg_temp.err (include/err.sql), which prints its
-- SQLSTATE and counts it; the last query shows the tally, with no internal
-- error (class XX).  What the *_errors.sql files show for one function is
-- not repeated here.

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on

-- everything this file creates lives in a schema it drops at the end, and
-- its role is dropped too
CREATE SCHEMA hostile;
SET search_path = hostile, public;
CREATE ROLE regress_hostile_nobody;
GRANT USAGE ON SCHEMA hostile TO regress_hostile_nobody;
-- the relations of the wrong kind, and the OID of a dropped table, that
-- the bad calls below name
CREATE TABLE tgt (id int PRIMARY KEY, a text, v int);
CREATE VIEW tgt_view AS SELECT id, a, v FROM tgt;
CREATE MATERIALIZED VIEW tgt_mv AS SELECT id, a, v FROM tgt;
CREATE SEQUENCE a_seq;
CREATE TYPE a_composite AS (id int, a text);
CREATE TABLE dropped_one (id int PRIMARY KEY);
CREATE TABLE saved_oids AS SELECT 'dropped_one'::regclass::oid AS o;
DROP TABLE dropped_one;

---------------------------------------------------------------------------
-- replace family: replace_partition, replace_partition_range and
-- replace_table refuse every bad call before a row is touched
---------------------------------------------------------------------------
CREATE TABLE rp (day date NOT NULL, store int, amount int) PARTITION BY RANGE (day);
CREATE TABLE rp_0101 PARTITION OF rp FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE rp_0102 PARTITION OF rp FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
INSERT INTO rp VALUES ('2025-01-01', 1, 10), ('2025-01-02', 1, 20);
CREATE TABLE rp_src (day date, store int, amount int);
INSERT INTO rp_src VALUES ('2025-01-01', 1, 11), ('2025-01-01', 2, 12);
CREATE TABLE rp_outside (day date, store int, amount int);
INSERT INTO rp_outside VALUES ('2025-01-01', 1, 11), ('2025-01-02', 9, 99);
CREATE TABLE rp_empty (day date, store int, amount int);
CREATE TABLE rp_2030 (day date, store int, amount int);
INSERT INTO rp_2030 VALUES ('2030-01-01', 1, 1);
CREATE TABLE rp_before AS SELECT * FROM rp;
CREATE TABLE rt (id int, a text);
INSERT INTO rt VALUES (1, 'kept'), (2, 'kept');
CREATE TABLE rt_src (id int, a text);
INSERT INTO rt_src VALUES (1, 'new');
CREATE TABLE rt_empty (id int, a text);
CREATE TABLE rt_before AS SELECT * FROM rt;
-- NULL in each argument replace_errors.sql does not show: 22004
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', date '2025-01-01', mode => NULL)$$);
SELECT pg_temp.err($$SELECT replace_partition_range(NULL, 'rp_src', 'day', date '2025-01-01', date '2025-01-02')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2025-01-01', date '2025-01-02', mode => NULL)$$);
SELECT pg_temp.err($$SELECT replace_table(NULL, 'rt_src')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src', mode => NULL)$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src', allow_empty => NULL)$$);
-- unknown and wrong-kind relations: 42P01, 42809
SELECT pg_temp.err($$SELECT replace_table((SELECT o FROM saved_oids)::regclass, 'rt_src')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', (SELECT o FROM saved_oids)::regclass)$$);
SELECT pg_temp.err($$SELECT replace_partition('tgt_view', 'rp_src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('tgt_mv', 'rp_src', 'day', date '2025-01-01', date '2025-01-02')$$);
SELECT pg_temp.err($$SELECT replace_table('a_seq', 'rt_src')$$);
SELECT pg_temp.err($$SELECT replace_table('tgt_pkey', 'rt_src')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'tgt_pkey')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'a_composite')$$);
-- columns and values: 42703, 42804
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'nope', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rt_src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', point(1, 1))$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', true)$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', 1, 2)$$);
-- a slice value no partition accepts: 23514, whether the source's rows lie
-- outside that slice or inside it
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', date '2030-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2030-01-01', date '2030-01-02')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_2030', 'day', date '2030-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_2030', 'day', date '2030-01-01', mode => 'diff')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_2030', 'day', date '2030-01-01', date '2030-01-02', mode => 'delete_insert')$$);
-- bad modes: 22023; swap where it cannot apply: 0A000
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', date '2025-01-01', mode => 'bogus')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2025-01-01', date '2025-01-02', mode => '')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src', mode => 'diff; DROP TABLE rt')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src', mode => 'swap')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2025-01-01', date '2025-01-03', mode => 'swap')$$);
-- an empty source without allow_empty: 22023
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_empty', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_empty', 'day', date '2025-01-01', date '2025-01-02', mode => 'delete_insert')$$);
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_empty')$$);
-- source rows outside the slice: 23514
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_outside', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_outside', 'day', date '2025-01-01', mode => 'delete_insert')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_outside', 'day', date '2025-01-01', date '2025-01-02', mode => 'diff')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2025-01-02', date '2025-01-01')$$);
-- a role lacking grants: 42501
SET ROLE regress_hostile_nobody;
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src')$$);
SELECT pg_temp.err($$SELECT replace_partition('rp', 'rp_src', 'day', date '2025-01-01')$$);
SELECT pg_temp.err($$SELECT replace_partition_range('rp', 'rp_src', 'day', date '2025-01-01', date '2025-01-02', mode => 'diff')$$);
RESET ROLE;
GRANT SELECT ON rt_src TO regress_hostile_nobody;
GRANT SELECT, INSERT ON rt TO regress_hostile_nobody;
SET ROLE regress_hostile_nobody;
-- no DELETE on the target
SELECT pg_temp.err($$SELECT replace_table('rt', 'rt_src', mode => 'delete_insert')$$);
RESET ROLE;
SELECT * FROM rp EXCEPT SELECT * FROM rp_before;
SELECT * FROM rp_before EXCEPT SELECT * FROM rp;
SELECT * FROM rt EXCEPT SELECT * FROM rt_before;
SELECT * FROM rt_before EXCEPT SELECT * FROM rt;

---------------------------------------------------------------------------
-- the tally: how many calls, how many failed, and none with an internal
-- error (class XX)
---------------------------------------------------------------------------
SELECT * FROM pg_temp.tally();

SET client_min_messages = warning;
DROP SCHEMA hostile CASCADE;
DROP OWNED BY regress_hostile_nobody;
DROP ROLE regress_hostile_nobody;
RESET client_min_messages;
RESET search_path;
