-- idempotent_history: every error a caller can cause, with its SQLSTATE.
-- None of them writes anything: the target is checked at the end.

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on
SET TimeZone = 'UTC';

CREATE TABLE hist_e (id int, a text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from));
CREATE TABLE hist_e_src (id int, a text);
INSERT INTO hist_e VALUES (1, 'kept', '2025-01-01', NULL);
INSERT INTO hist_e_src VALUES (1, 'x'), (2, 'y');

-- NULL arguments: 22004
SELECT pg_temp.err($$SELECT idempotent_history(NULL, 'hist_e_src', as_of => '2025-02-01')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', NULL, as_of => '2025-02-01')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', valid_from => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', valid_to => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', deletes => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', dry_run => NULL)$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', key => ARRAY[NULL]::text[])$$);

-- no as_of and no run_time: 55000; an infinite as_of: 22008
RESET pg_idempotent.run_time;
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => 'infinity')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '-infinity')$$);

-- bad option values: 22023
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', deletes => 'delete')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', valid_to => 'valid_from')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', key => '{}')$$);

-- unknown and wrong-kind relations: 42P01, 42809
SELECT pg_temp.err($$SELECT idempotent_history('hist_no_such', 'hist_e_src', as_of => '2025-02-01')$$);
SELECT pg_temp.err($$SELECT idempotent_history(1::oid::regclass, 'hist_e_src', as_of => '2025-02-01')$$);
CREATE VIEW hist_e_view AS SELECT * FROM hist_e;
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_view', 'hist_e_src', as_of => '2025-02-01')$$);

-- the validity columns: missing (42703), of another type (42804), supplied
-- by the source (428C9)
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', valid_from => 'starts')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', valid_to => 'ends')$$);
CREATE TABLE hist_e_dates (id int, a text, valid_from date NOT NULL, valid_to date, PRIMARY KEY (id, valid_from));
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_dates', 'hist_e_src', as_of => '2025-02-01')$$);
CREATE TABLE hist_e_src_vf (id int, a text, valid_from timestamptz);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src_vf', as_of => '2025-02-01')$$);
-- valid_to NOT NULL (42P16): a null valid_to is the current version, so
-- the call is refused before it reads anything, not by the insert's 23502
CREATE TABLE hist_e_inf (id int, a text, valid_from timestamptz NOT NULL,
	valid_to timestamptz NOT NULL DEFAULT 'infinity', PRIMARY KEY (id, valid_from));
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_inf', 'hist_e_src', as_of => '2025-02-01')$$);
SELECT count(*) FROM hist_e_inf;

-- source columns the target lacks (42703), a key column missing (42703),
-- a source without the key's columns (42P10)
CREATE TABLE hist_e_src_extra (id int, a text, b text);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src_extra', as_of => '2025-02-01')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', key => ARRAY['nope'])$$);
CREATE TABLE hist_e_src_nokey (a text);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src_nokey', as_of => '2025-02-01')$$);

-- no unique key over the key columns plus valid_from (42P10), naming what
-- was found; an explicit key without such an index; more than one
CREATE TABLE hist_e_nokey (id int, a text, valid_from timestamptz NOT NULL, valid_to timestamptz);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_nokey', 'hist_e_src', as_of => '2025-02-01')$$);
CREATE TABLE hist_e_idkey (id int PRIMARY KEY, a text, valid_from timestamptz NOT NULL, valid_to timestamptz);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_idkey', 'hist_e_src', as_of => '2025-02-01')$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_idkey', 'hist_e_src', as_of => '2025-02-01', key => ARRAY['id'])$$);
CREATE TABLE hist_e_two (id int, a text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	UNIQUE (id, valid_from), UNIQUE (a, valid_from));
SELECT pg_temp.err($$SELECT idempotent_history('hist_e_two', 'hist_e_src', as_of => '2025-02-01')$$);
-- a key naming a validity column: 22023
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', key => ARRAY['id', 'valid_from'])$$);
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01', key => ARRAY['valid_to'])$$);

-- null keys (23502) and duplicate keys (21000) in the source, with how many
CREATE TABLE hist_e_nulls (id int, a text);
INSERT INTO hist_e_nulls VALUES (1, 'x'), (NULL, 'y'), (NULL, 'z');
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_nulls', as_of => '2025-02-01')$$);
DELETE FROM hist_e_nulls WHERE a = 'z';
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_nulls', as_of => '2025-02-01')$$);
CREATE TABLE hist_e_dups (id int, a text);
INSERT INTO hist_e_dups VALUES (1, 'x'), (1, 'y'), (2, 'x'), (3, 'x'), (3, 'x'), (3, 'x');
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_dups', as_of => '2025-02-01')$$);
DELETE FROM hist_e_dups WHERE id = 3;
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_dups', as_of => '2025-02-01', deletes => 'close')$$);

-- privileges are the caller's: reading the source but not writing the
-- target is 42501
CREATE ROLE regress_hist_reader;
GRANT SELECT ON hist_e, hist_e_src TO regress_hist_reader;
SET ROLE regress_hist_reader;
SELECT pg_temp.err($$SELECT idempotent_history('hist_e', 'hist_e_src', as_of => '2025-02-01')$$);
RESET ROLE;

-- nothing above wrote anything
\pset tuples_only off
SELECT id, a, valid_from, valid_to FROM hist_e ORDER BY id, valid_from;

DROP VIEW hist_e_view;
DROP TABLE hist_e, hist_e_src, hist_e_dates, hist_e_src_vf, hist_e_src_extra, hist_e_src_nokey,
	hist_e_nokey, hist_e_idkey, hist_e_two, hist_e_nulls, hist_e_dups;
DROP ROLE regress_hist_reader;
