-- idempotent_history: type-2 history written so that a re-run changes
-- nothing.  Each block shows one rule, with the counts the call returns
-- (inserted, closed, corrected, unchanged) and the versions it leaves.

SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

CREATE TABLE hist_dim (
	id int,
	name text,
	tier text,
	valid_from timestamptz NOT NULL,
	valid_to timestamptz,
	loaded_at timestamptz DEFAULT run_time(),
	PRIMARY KEY (id, valid_from)
);
CREATE TABLE hist_src (id int, name text, tier text);
CREATE VIEW hist_versions AS
	SELECT id, name, tier, valid_from::date AS from_day, valid_to::date AS to_day
	FROM hist_dim ORDER BY id, valid_from;

-- the first run: a version per key, from as_of, current
INSERT INTO hist_src VALUES (1, 'Ann', 'gold'), (2, 'Bob', 'silver'), (3, 'Cy', 'bronze');
SET pg_idempotent.run_time = '2025-01-10 00:00+00';
SELECT * FROM idempotent_history('hist_dim', 'hist_src');
SELECT * FROM hist_versions;

-- a re-run of the same run writes nothing and locks nothing: every row
-- keeps its physical place and the transaction that wrote it, and none
-- carries a locker in xmax
SELECT string_agg(ctid::text || xmin::text, ',' ORDER BY ctid) AS rows_before FROM hist_dim \gset
SELECT * FROM idempotent_history('hist_dim', 'hist_src');
SELECT string_agg(ctid::text || xmin::text, ',' ORDER BY ctid) = :'rows_before' AS untouched,
	count(*) FILTER (WHERE xmax <> '0'::xid) AS locked FROM hist_dim;

-- as_of given explicitly overrides run_time(); a changed key's current
-- version is closed at as_of and a new one starts there; a new key gets its
-- first version
UPDATE hist_src SET tier = 'platinum' WHERE id = 1;
INSERT INTO hist_src VALUES (4, 'Dee', 'gold');
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-01-20 00:00+00');
SELECT * FROM hist_versions;

-- a corrected re-run of the same run (as_of 01-20 again): the version
-- starting exactly at as_of is rewritten in place, nothing is closed
UPDATE hist_src SET tier = 'diamond' WHERE id = 1;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-01-20 00:00+00');
SELECT * FROM hist_versions WHERE id = 1;

-- correcting it back to what the previous version holds merges the two:
-- no two adjacent versions hold identical values
UPDATE hist_src SET tier = 'gold' WHERE id = 1;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-01-20 00:00+00');
SELECT * FROM hist_versions WHERE id = 1;

-- rewritten in place means in place: columns the source does not supply
-- (loaded_at) keep their value on a correction; a new version takes defaults
SET pg_idempotent.run_time = '2025-02-01 00:00+00';
UPDATE hist_src SET name = 'Bobby' WHERE id = 2;
SELECT * FROM idempotent_history('hist_dim', 'hist_src');
SET pg_idempotent.run_time = '2025-02-02 00:00+00';
UPDATE hist_src SET name = 'Robert' WHERE id = 2;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-02-01 00:00+00');
SELECT id, name, valid_from::date, loaded_at::date FROM hist_dim WHERE id = 2 ORDER BY valid_from;

-- a backfill: a run for an earlier moment lands at its place in history.
-- Key 3 changed on 01-15: its 01-10 version is closed there and split, the
-- new version ends where the next one starts (here: current); no gap, no
-- overlap
CREATE TABLE hist_src_0115 (id int, name text, tier text);
INSERT INTO hist_src_0115 VALUES (3, 'Cy', 'silver');
SELECT * FROM idempotent_history('hist_dim', 'hist_src_0115', as_of => '2025-01-15 00:00+00');
SELECT * FROM hist_versions WHERE id = 3;

-- a backfill in the middle of a history: key 1 is gold 01-10..01-20 ...
UPDATE hist_src SET tier = 'platinum' WHERE id = 1;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-01 00:00+00');
SELECT * FROM hist_versions WHERE id = 1;
-- ... and was silver on 01-12: the gold version is split around it, the
-- silver one ending where gold resumes
TRUNCATE hist_src_0115;
INSERT INTO hist_src_0115 VALUES (1, 'Ann', 'silver');
SELECT * FROM idempotent_history('hist_dim', 'hist_src_0115', as_of => '2025-01-12 00:00+00');
SELECT * FROM hist_versions WHERE id = 1;

-- a backfill before a key's first version: a version ending where the
-- first one starts; if it is identical to that one, the first one is
-- extended back instead
TRUNCATE hist_src_0115;
INSERT INTO hist_src_0115 VALUES (4, 'Dee', 'gold'), (3, 'Cy', 'tin');
SELECT * FROM idempotent_history('hist_dim', 'hist_src_0115', as_of => '2025-01-01 00:00+00');
SELECT * FROM hist_versions WHERE id IN (3, 4);

-- a backfill identical to the version it lands in changes nothing
SELECT * FROM idempotent_history('hist_dim', 'hist_src_0115', as_of => '2025-01-05 00:00+00');

-- a change whose value equals the next version's: that version is extended
-- back to as_of instead of inserting a copy of it.  On 02-01 keys 1 and 3
-- already hold what their versions from 03-01 hold: the versions covering
-- 02-01 are closed there, and the 03-01 ones start at 02-01
UPDATE hist_src SET tier = 'bronze' WHERE id = 3;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-02-01 00:00+00');
SELECT * FROM hist_versions WHERE id IN (1, 3);

-- deletes => 'ignore' (the default): a key missing from the source keeps
-- its current version
DELETE FROM hist_src WHERE id = 4;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-10 00:00+00');
SELECT * FROM hist_versions WHERE id = 4;

-- deletes => 'close' (the source is a full snapshot): it is closed at as_of;
-- a re-run writes nothing
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-10 00:00+00', deletes => 'close');
SELECT * FROM hist_versions WHERE id = 4;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-10 00:00+00', deletes => 'close');

-- a key that comes back later gets a new version after the gap
INSERT INTO hist_src VALUES (4, 'Dee', 'gold');
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-20 00:00+00', deletes => 'close');
SELECT * FROM hist_versions WHERE id = 4;

-- a corrected re-run of the 03-20 run that no longer has key 4: its version
-- started at as_of, so it is removed (and counted closed), leaving the gap
DELETE FROM hist_src WHERE id = 4;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-20 00:00+00', deletes => 'close');
SELECT * FROM hist_versions WHERE id = 4;

-- a corrected re-run of the 03-10 close that has key 4 after all, as it
-- was: the closed version is reopened (the gap disappears)
INSERT INTO hist_src VALUES (4, 'Dee', 'gold');
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-03-10 00:00+00', deletes => 'close');
SELECT * FROM hist_versions WHERE id = 4;

-- dry_run: the counts of a real call, nothing written
UPDATE hist_src SET tier = 'lead' WHERE id = 2;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-04-01 00:00+00', dry_run => true);
SELECT count(*) AS versions_of_2 FROM hist_dim WHERE id = 2;

-- identity, not equality: 1.0 -> 1.00 is a change, NULL -> NULL is not; a
-- type without an equality operator (json) compares too.  Other validity
-- column names, a composite key found from the unique index, a source
-- with a column subset and in another order, with a castable type
CREATE TABLE hist_prices (
	sku text, region text, price numeric, meta json, note text,
	starts timestamptz NOT NULL, ends timestamptz,
	UNIQUE (sku, region, starts)
);
CREATE TABLE hist_prices_src (price numeric, region varchar(10), sku text, meta json);
INSERT INTO hist_prices_src VALUES (1.0, 'eu', 'A', '{"x": 1}'), (NULL, 'us', 'A', NULL);
SELECT * FROM idempotent_history('hist_prices', 'hist_prices_src', as_of => '2025-01-01 00:00+00',
	valid_from => 'starts', valid_to => 'ends');
UPDATE hist_prices_src SET price = 1.00 WHERE region = 'eu';
SELECT * FROM idempotent_history('hist_prices', 'hist_prices_src', as_of => '2025-01-02 00:00+00',
	valid_from => 'starts', valid_to => 'ends');
UPDATE hist_prices_src SET meta = '{"x":1}' WHERE region = 'eu';
SELECT * FROM idempotent_history('hist_prices', 'hist_prices_src', as_of => '2025-01-03 00:00+00',
	valid_from => 'starts', valid_to => 'ends', key => ARRAY['region', 'sku']);
SELECT sku, region, price, meta, starts::date, ends::date FROM hist_prices ORDER BY sku, region, starts;

-- a partial unique index on the key's current version and an exclusion
-- constraint against overlaps hold at every step of a call: versions are
-- deleted, then shrunk, then grown, then rewritten, then inserted
CREATE TABLE hist_strict (
	id int, v text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from),
	EXCLUDE USING gist (int4range(id, id, '[]') WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX hist_strict_current ON hist_strict (id) WHERE valid_to IS NULL;
CREATE TABLE hist_strict_src (id int, v text);
CREATE TABLE hist_strict_one (id int, v text);
INSERT INTO hist_strict_src VALUES (1, 'a'), (2, 'a');
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_src', as_of => '2025-01-01 00:00+00');
-- closed, then a new current version
UPDATE hist_strict_src SET v = 'b';
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_src', as_of => '2025-01-05 00:00+00');
-- key 1 corrected at 01-01 to what follows: the next version is deleted
-- and the corrected one becomes current
INSERT INTO hist_strict_one VALUES (1, 'b');
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_one', as_of => '2025-01-01 00:00+00');
-- key 2 corrected at 01-05 back to what precedes: deleted, and the previous
-- version becomes current again
UPDATE hist_strict_src SET v = 'a' WHERE id = 2;
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_src', as_of => '2025-01-05 00:00+00');
-- key 2: c from 01-10, and a backfill of c on 01-07: the covering version
-- shrinks to 01-07, the c version grows back to 01-07
UPDATE hist_strict_src SET v = 'c' WHERE id = 2;
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_src', as_of => '2025-01-10 00:00+00');
SELECT * FROM idempotent_history('hist_strict', 'hist_strict_src', as_of => '2025-01-07 00:00+00');
SELECT id, v, valid_from::date, valid_to::date FROM hist_strict ORDER BY id, valid_from;

-- an empty source writes nothing (and, with 'close', closes every key)
CREATE TABLE hist_empty (id int, v text);
SELECT * FROM idempotent_history('hist_strict', 'hist_empty', as_of => '2025-02-01 00:00+00');
SELECT * FROM idempotent_history('hist_strict', 'hist_empty', as_of => '2025-02-01 00:00+00', deletes => 'close');
SELECT id, v, valid_from::date, valid_to::date FROM hist_strict ORDER BY id, valid_from;

-- odd names: quoted everywhere; a hostile search_path changes nothing
CREATE SCHEMA "hist Odd";
CREATE TABLE "hist Odd"."Dim ""x""" ("Key" int, "pgi_cvf" text, "From" timestamptz NOT NULL, "To" timestamptz,
	PRIMARY KEY ("Key", "From"));
CREATE TABLE "hist Odd"."src" ("Key" int, "pgi_cvf" text);
INSERT INTO "hist Odd"."src" VALUES (1, 'x');
CREATE FUNCTION "hist Odd".count(anyelement) RETURNS bigint LANGUAGE sql AS 'SELECT 42::bigint';
SET search_path = "hist Odd", public;
SELECT * FROM idempotent_history('"hist Odd"."Dim ""x"""', '"hist Odd".src', as_of => '2025-01-01 00:00+00',
	valid_from => 'From', valid_to => 'To');
UPDATE "hist Odd".src SET "pgi_cvf" = 'y';
SELECT * FROM idempotent_history('"hist Odd"."Dim ""x"""', '"hist Odd".src', as_of => '2025-01-02 00:00+00',
	valid_from => 'From', valid_to => 'To');
RESET search_path;
SELECT "Key", "pgi_cvf", "From"::date, "To"::date FROM "hist Odd"."Dim ""x""" ORDER BY 3;

-- in the caller's transaction: a rollback undoes the call
BEGIN;
UPDATE hist_src SET tier = 'rolled back' WHERE id = 3;
SELECT * FROM idempotent_history('hist_dim', 'hist_src', as_of => '2025-05-01 00:00+00');
ROLLBACK;
SELECT count(*) AS versions_from_may FROM hist_dim WHERE valid_from >= '2025-05-01';

-- a key column named like the statement's own columns (k, op): no ambiguity
CREATE TABLE hist_k (k int, op text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (k, valid_from));
CREATE TABLE hist_k_src (k int, op text);
INSERT INTO hist_k_src VALUES (1, 'a'), (2, 'b');
SELECT * FROM idempotent_history('hist_k', 'hist_k_src', as_of => '2025-01-01 00:00+00');
UPDATE hist_k_src SET op = 'c' WHERE k = 1;
SELECT * FROM idempotent_history('hist_k', 'hist_k_src', as_of => '2025-02-01 00:00+00');
DELETE FROM hist_k_src WHERE k = 2;
SELECT * FROM idempotent_history('hist_k', 'hist_k_src', as_of => '2025-03-01 00:00+00', deletes => 'close');
SELECT k, op, valid_from::date, valid_to::date FROM hist_k ORDER BY k, valid_from;
DROP TABLE hist_k, hist_k_src;

-- a partitioned history: the writes find its versions by key and start (a
-- ctid names a row only with its partition); a change, a re-run, a backfill
CREATE TABLE hist_part (id int, v text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from)) PARTITION BY RANGE (id);
CREATE TABLE hist_part_1 PARTITION OF hist_part FOR VALUES FROM (0) TO (10);
CREATE TABLE hist_part_2 PARTITION OF hist_part FOR VALUES FROM (10) TO (20);
CREATE TABLE hist_part_src (id int, v text);
INSERT INTO hist_part_src VALUES (1, 'a'), (11, 'b');
SELECT * FROM idempotent_history('hist_part', 'hist_part_src', as_of => '2025-01-01 00:00+00');
UPDATE hist_part_src SET v = v || '2';
SELECT * FROM idempotent_history('hist_part', 'hist_part_src', as_of => '2025-02-01 00:00+00');
SELECT * FROM idempotent_history('hist_part', 'hist_part_src', as_of => '2025-02-01 00:00+00');
SELECT * FROM idempotent_history('hist_part', 'hist_part_src', as_of => '2025-01-15 00:00+00');
SELECT tableoid::regclass AS part, id, v, valid_from::date, valid_to::date FROM hist_part ORDER BY id, valid_from;

-- a caller granted columns, not the whole table, cannot read ctids: the
-- writes find the versions by key and start instead, and the call works
CREATE TABLE hist_cols (id int, v text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from));
CREATE TABLE hist_cols_src (id int, v text);
INSERT INTO hist_cols_src VALUES (1, 'a'), (2, 'b');
CREATE ROLE regress_hist_columns;
GRANT SELECT (id, v, valid_from, valid_to), INSERT (id, v, valid_from, valid_to),
	UPDATE (id, v, valid_from, valid_to), DELETE ON hist_cols TO regress_hist_columns;
GRANT SELECT ON hist_cols_src TO regress_hist_columns;
SET ROLE regress_hist_columns;
SELECT * FROM idempotent_history('hist_cols', 'hist_cols_src', as_of => '2025-01-01 00:00+00');
RESET ROLE;
UPDATE hist_cols_src SET v = 'a2' WHERE id = 1;
SET ROLE regress_hist_columns;
SELECT * FROM idempotent_history('hist_cols', 'hist_cols_src', as_of => '2025-02-01 00:00+00');
SELECT * FROM idempotent_history('hist_cols', 'hist_cols_src', as_of => '2025-01-15 00:00+00');
RESET ROLE;
SELECT id, v, valid_from::date, valid_to::date FROM hist_cols ORDER BY id, valid_from;
DROP TABLE hist_part, hist_part_src, hist_cols, hist_cols_src;
DROP ROLE regress_hist_columns;

-- a large batch (10,000 source rows or more, not small against the table)
-- has its statement planned for its call's as_of rather than kept for every
-- as_of: the same versions
CREATE TABLE hist_big (id int, v text, valid_from timestamptz NOT NULL, valid_to timestamptz,
	PRIMARY KEY (id, valid_from));
CREATE TABLE hist_big_src (id int PRIMARY KEY, v text);
INSERT INTO hist_big_src SELECT g, 'v' || g FROM generate_series(1, 12000) g;
ANALYZE hist_big_src;
SELECT * FROM idempotent_history('hist_big', 'hist_big_src', as_of => '2025-01-01 00:00+00');
UPDATE hist_big_src SET v = v || '+' WHERE id % 100 = 0;
SELECT * FROM idempotent_history('hist_big', 'hist_big_src', as_of => '2025-02-01 00:00+00');
SELECT * FROM idempotent_history('hist_big', 'hist_big_src', as_of => '2025-02-01 00:00+00');
-- a backfill between the two runs, and a corrected re-run of the second
UPDATE hist_big_src SET v = 'mid' || id WHERE id % 1000 = 0;
SELECT * FROM idempotent_history('hist_big', 'hist_big_src', as_of => '2025-01-15 00:00+00');
UPDATE hist_big_src SET v = 'fix' || id WHERE id % 3000 = 0;
SELECT * FROM idempotent_history('hist_big', 'hist_big_src', as_of => '2025-01-15 00:00+00');
SELECT count(*) AS versions, count(*) FILTER (WHERE valid_to IS NULL) AS current,
	count(DISTINCT id) AS keys FROM hist_big;
SELECT id, v, valid_from::date, valid_to::date FROM hist_big WHERE id IN (100, 1000, 3000)
ORDER BY id, valid_from;
DROP TABLE hist_big, hist_big_src;

DROP SCHEMA "hist Odd" CASCADE;
DROP TABLE hist_strict, hist_strict_src, hist_strict_one, hist_empty, hist_prices, hist_prices_src, hist_src_0115;
DROP VIEW hist_versions;
DROP TABLE hist_dim, hist_src;
RESET pg_idempotent.run_time;
