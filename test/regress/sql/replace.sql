-- replace_partition, replace_partition_range, replace_table: behaviour
--
-- Each block says what it shows.  Results are (deleted, inserted, unchanged,
-- mode); mode is the mode that actually ran.

-- in a schema of its own: the regression database is shared with other tests
CREATE SCHEMA pgi_replace;
SET search_path = pgi_replace, public;

-- A day-partitioned table, the shape the swap mode is for.
CREATE TABLE daily_sales (
	day date NOT NULL,
	store_id int NOT NULL,
	amount numeric(12,2),
	note text DEFAULT 'none',
	PRIMARY KEY (day, store_id)
) PARTITION BY RANGE (day);
CREATE INDEX ON daily_sales (store_id);
CREATE TABLE daily_sales_0101 PARTITION OF daily_sales FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE daily_sales_0102 PARTITION OF daily_sales FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
CREATE TABLE daily_sales_0103 PARTITION OF daily_sales FOR VALUES FROM ('2025-01-03') TO ('2025-01-04');
INSERT INTO daily_sales (day, store_id, amount)
SELECT d::date, s, s * 10 FROM generate_series('2025-01-01'::date, '2025-01-03', '1 day') d,
	generate_series(1, 5) s;
CREATE TABLE stage (day date, store_id int, amount numeric(12,2), note text);
INSERT INTO stage SELECT day, store_id, amount, note FROM daily_sales WHERE day = '2025-01-02';

-- the rows of a slice, with where they physically are
CREATE FUNCTION pg_temp.slice(d date) RETURNS TABLE (store_id int, amount numeric, note text)
LANGUAGE sql AS $$ SELECT store_id, amount, note FROM daily_sales WHERE day = d ORDER BY 1, 2 $$;
CREATE TEMP TABLE before_tids AS SELECT tableoid AS toid, ctid AS tid FROM daily_sales;

-- diff: an identical re-run writes no tuple and (next to) no WAL
SELECT pg_current_wal_insert_lsn() AS lsn \gset
SELECT * FROM replace_partition('daily_sales', 'stage', 'day', date '2025-01-02', 'diff');
SELECT pg_current_wal_insert_lsn() - :'lsn' < 65536 AS under_64kb_of_wal;
SELECT count(*) AS rows_rewritten FROM daily_sales d
WHERE NOT EXISTS (SELECT 1 FROM before_tids b WHERE b.toid = d.tableoid AND b.tid = d.ctid);

-- diff: one changed row is one delete and one insert; a new row one insert;
-- a vanished row one delete; the rest is untouched
UPDATE stage SET amount = 99 WHERE store_id = 2;
DELETE FROM stage WHERE store_id = 5;
INSERT INTO stage VALUES ('2025-01-02', 6, 60, 'new store');
SELECT * FROM replace_partition('daily_sales', 'stage', 'day', date '2025-01-02', 'diff');
SELECT * FROM pg_temp.slice('2025-01-02');
SELECT count(*) AS rows_rewritten FROM daily_sales d
WHERE NOT EXISTS (SELECT 1 FROM before_tids b WHERE b.toid = d.tableoid AND b.tid = d.ctid);
-- nothing outside the slice moved
SELECT day, count(*) FROM daily_sales GROUP BY day ORDER BY day;

-- the value may be given as text: it is cast to the column's type
SELECT * FROM replace_partition('daily_sales', 'stage', 'day', '2025-01-02'::text, 'diff');

-- the source may leave out columns: new rows take the target's defaults,
-- and rows compare on the columns the source has
CREATE TABLE stage_narrow (day date, store_id int, amount numeric(12,2));
INSERT INTO stage_narrow SELECT day, store_id, amount FROM daily_sales WHERE day = '2025-01-03';
INSERT INTO stage_narrow VALUES ('2025-01-03', 7, 70);
SELECT * FROM replace_partition('daily_sales', 'stage_narrow', 'day', date '2025-01-03', 'diff');
SELECT * FROM pg_temp.slice('2025-01-03');

-- delete_insert: the classic, in one statement each; it reports no unchanged rows
SELECT * FROM replace_partition('daily_sales', 'stage', 'day', date '2025-01-02', 'delete_insert');
SELECT * FROM pg_temp.slice('2025-01-02');

-- replace_partition_range: a half-open range [lower, upper)
CREATE TABLE stage_range AS SELECT * FROM daily_sales WHERE day >= '2025-01-01' AND day < '2025-01-03';
UPDATE stage_range SET amount = amount + 1 WHERE store_id = 1;
SELECT * FROM replace_partition_range('daily_sales', 'stage_range', 'day', date '2025-01-01', date '2025-01-03', 'diff');
SELECT * FROM replace_partition_range('daily_sales', 'stage_range', 'day', date '2025-01-01', date '2025-01-03', 'diff');
SELECT day, count(*), sum(amount) FROM daily_sales GROUP BY day ORDER BY day;

-- an empty source empties the slice only with allow_empty
CREATE TABLE stage_empty (LIKE stage);
SELECT * FROM replace_partition('daily_sales', 'stage_empty', 'day', date '2025-01-03', 'diff', allow_empty => true);
SELECT count(*) AS rows_left_on_0103 FROM daily_sales WHERE day = '2025-01-03';

-- multisets without any key: duplicates count, NULLs match NULLs
CREATE TABLE events (k int, v text);
INSERT INTO events VALUES (1, 'a'), (1, 'a'), (1, 'a'), (2, NULL), (NULL, NULL), (3, 'c');
CREATE TABLE events_src (k int, v text);
INSERT INTO events_src VALUES (1, 'a'), (2, NULL), (2, NULL), (NULL, NULL), (3, 'c'), (3, 'c');
SELECT * FROM replace_table('events', 'events_src', 'diff');
SELECT k, v, count(*) FROM events GROUP BY k, v ORDER BY k, v;
SELECT * FROM replace_table('events', 'events_src', 'diff');

-- identity, not equality: 1.0 and 1.00 differ, as do -0 and 0
CREATE TABLE measures (x numeric, f float8);
INSERT INTO measures VALUES (1.0, 0), (2, 1);
CREATE TABLE measures_src (x numeric, f float8);
INSERT INTO measures_src VALUES (1.00, 0), (2, 1);
SELECT * FROM replace_table('measures', 'measures_src', 'diff');
SELECT x::text, f FROM measures ORDER BY x;
UPDATE measures_src SET f = '-0' WHERE x = 1;
SELECT * FROM replace_table('measures', 'measures_src', 'diff');

-- types without an equality operator compare by binary image too
CREATE TABLE docs (id int, body json, pos point, x xml);
INSERT INTO docs VALUES (1, '{"a": 1}', '(1,2)', '<a/>'), (2, '{"b": 2}', '(3,4)', '<b/>');
CREATE TABLE docs_src (LIKE docs);
INSERT INTO docs_src SELECT * FROM docs;
SELECT * FROM replace_table('docs', 'docs_src', 'diff');
UPDATE docs_src SET body = '{"a":1}' WHERE id = 1;
SELECT * FROM replace_table('docs', 'docs_src', 'diff');
SELECT id, body FROM docs ORDER BY id;

-- every type compares, even one without a binary send function (aclitem)
CREATE TABLE acls (id int, a aclitem);
CREATE TABLE acls_src (LIKE acls);
INSERT INTO acls_src VALUES (1, 'postgres=r/postgres');
SELECT * FROM replace_table('acls', 'acls_src', 'diff');
SELECT * FROM replace_table('acls', 'acls_src', 'diff');

-- rows of more than 99 columns compare by record_send; a type without a
-- binary send function there makes diff fall back to delete_insert, with a
-- NOTICE saying so
DO $$
BEGIN
	EXECUTE 'CREATE TABLE wide (a aclitem, ' ||
		(SELECT string_agg('c' || g || ' int', ', ') FROM generate_series(1, 100) g) || ')';
END $$;
CREATE TABLE wide_src (LIKE wide);
INSERT INTO wide_src (a, c1, c100) VALUES ('postgres=r/postgres', 1, 100);
SELECT * FROM replace_table('wide', 'wide_src', 'diff');
-- without that column, the 100 int columns compare by record_send
ALTER TABLE wide DROP COLUMN a;
ALTER TABLE wide_src DROP COLUMN a;
SELECT * FROM replace_table('wide', 'wide_src', 'diff');
SELECT * FROM replace_table('wide', 'wide_src', 'diff');

-- auto on a table that is not partitioned is a diff
SELECT * FROM replace_table('events', 'events_src');

-- swap: the new leaf gets the old one's columns, defaults, CHECK and NOT
-- NULL constraints, indexes (attached to the parent's), owner, grants, RLS
-- settings and policies, reloptions and comment.  Describe a leaf:
CREATE FUNCTION pg_temp.describe(leaf regclass) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		|| coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
	FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attrelid = leaf AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
	-- not-null constraints show on their columns (18 also lists them here;
	-- their names are compared apart, below)
	FROM pg_constraint WHERE conrelid = leaf AND contype <> 'n'
	UNION ALL
	SELECT 'index ' || i.indexrelid::regclass || ' ' || regexp_replace(pg_get_indexdef(i.indexrelid), ' ON \S+', '')
		|| coalesce(' attached to ' || (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = i.indexrelid), '')
	FROM pg_index i WHERE i.indrelid = leaf
	UNION ALL
	SELECT 'owner ' || pg_get_userbyid(relowner) || ', acl ' || coalesce((
			-- what the grants add to or take from the owner's default (which
			-- differs between majors: 17 added MAINTAIN)
			SELECT string_agg(g, ' ' ORDER BY g) FROM (
				(SELECT '+' || e.grantee::regrole || ':' || e.privilege_type || '/' || e.grantor::regrole FROM aclexplode(relacl) e
				 EXCEPT SELECT '+' || e.grantee::regrole || ':' || e.privilege_type || '/' || e.grantor::regrole FROM aclexplode(acldefault('r', relowner)) e)
				UNION ALL
				(SELECT '-' || e.grantee::regrole || ':' || e.privilege_type || '/' || e.grantor::regrole FROM aclexplode(acldefault('r', relowner)) e
				 EXCEPT SELECT '-' || e.grantee::regrole || ':' || e.privilege_type || '/' || e.grantor::regrole FROM aclexplode(relacl) e)) d(g)
			WHERE relacl IS NOT NULL), 'default')
		|| ', rls ' || relrowsecurity || ', force rls ' || relforcerowsecurity
		|| ', options ' || coalesce(reloptions::text, 'none')
		|| ', comment ' || coalesce(obj_description(oid, 'pg_class'), 'none')
		|| ', partition of ' || (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = leaf)
		|| ' ' || pg_get_expr(relpartbound, oid)
	FROM pg_class WHERE oid = leaf
	UNION ALL
	SELECT 'policy ' || polname || ' ' || polcmd::text || ' ' || coalesce(pg_get_expr(polqual, polrelid), '')
	FROM pg_policy WHERE polrelid = leaf
	UNION ALL
	SELECT 'column acl ' || attname || ' ' || attacl::text
	FROM pg_attribute WHERE attrelid = leaf AND attacl IS NOT NULL
	ORDER BY 1
$$;
CREATE ROLE regress_pgi_owner;
CREATE ROLE regress_pgi_reader;
ALTER TABLE daily_sales_0101 ADD CONSTRAINT amount_positive CHECK (amount > 0);
ALTER TABLE daily_sales_0101 ALTER COLUMN note SET DEFAULT 'leaf default';
CREATE INDEX daily_sales_0101_amount ON daily_sales_0101 (amount) WHERE amount > 20;
ALTER TABLE daily_sales_0101 SET (fillfactor = 70, autovacuum_enabled = false);
ALTER TABLE daily_sales_0101 OWNER TO regress_pgi_owner;
GRANT SELECT ON daily_sales_0101 TO regress_pgi_reader;
GRANT UPDATE (note) ON daily_sales_0101 TO regress_pgi_reader;
ALTER TABLE daily_sales_0101 ENABLE ROW LEVEL SECURITY;
CREATE POLICY big_stores ON daily_sales_0101 FOR SELECT TO regress_pgi_reader USING (store_id > 2);
COMMENT ON TABLE daily_sales_0101 IS 'first day';
CREATE TEMP TABLE described AS SELECT * FROM pg_temp.describe('daily_sales_0101') AS line;
CREATE TEMP TABLE not_null_names AS
	SELECT conname FROM pg_constraint WHERE conrelid = 'daily_sales_0101'::regclass AND contype = 'n';
SELECT 'daily_sales_0101'::regclass::oid AS old_oid \gset

CREATE TABLE stage_0101 AS SELECT day, store_id, amount + 1 AS amount, note FROM daily_sales WHERE day = '2025-01-01';
SELECT * FROM replace_partition('daily_sales', 'stage_0101', 'day', date '2025-01-01', 'swap');
SELECT * FROM pg_temp.slice('2025-01-01');
SELECT 'daily_sales_0101'::regclass::oid <> :old_oid AS is_a_new_table;
SELECT * FROM pg_temp.describe('daily_sales_0101');
-- the same description as before, line for line
(SELECT * FROM pg_temp.describe('daily_sales_0101') EXCEPT SELECT line FROM described)
UNION ALL (SELECT line FROM described EXCEPT SELECT * FROM pg_temp.describe('daily_sales_0101'));
-- and the same not-null constraint names (18 catalogs them; none before 18)
(SELECT conname FROM pg_constraint WHERE conrelid = 'daily_sales_0101'::regclass AND contype = 'n'
 EXCEPT SELECT conname FROM not_null_names)
UNION ALL (SELECT conname FROM not_null_names
 EXCEPT SELECT conname FROM pg_constraint WHERE conrelid = 'daily_sales_0101'::regclass AND contype = 'n');
-- nothing is left behind, and the parent's indexes are all valid
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'pgi_swap_%';
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'daily_sales'::regclass ORDER BY 1;
-- the partition keeps its rules: a row outside the CHECK is refused
INSERT INTO daily_sales VALUES ('2025-01-01', 9, -1);

-- swap keeps foreign keys from the table to others: the new leaf's are
-- validated before the lock, and ATTACH adopts them without a scan
CREATE TABLE stores (id int PRIMARY KEY);
INSERT INTO stores SELECT generate_series(1, 10);
CREATE TABLE orders (day date NOT NULL, store_id int REFERENCES stores, n int) PARTITION BY RANGE (day);
CREATE TABLE orders_0101 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
INSERT INTO orders VALUES ('2025-01-01', 1, 1);
CREATE TABLE orders_src (day date, store_id int, n int);
INSERT INTO orders_src VALUES ('2025-01-01', 2, 2), ('2025-01-01', 3, 3);
SELECT * FROM replace_partition('orders', 'orders_src', 'day', date '2025-01-01', 'swap');
SELECT c.conname, c.convalidated, p.conname AS parent_constraint
FROM pg_constraint c LEFT JOIN pg_constraint p ON p.oid = c.conparentid
WHERE c.conrelid = 'orders_0101'::regclass AND c.contype = 'f';
INSERT INTO orders VALUES ('2025-01-01', 99, 1);

-- swap on a list-partitioned table
CREATE TABLE regional (region text, n int) PARTITION BY LIST (region);
CREATE TABLE regional_eu PARTITION OF regional FOR VALUES IN ('eu');
CREATE TABLE regional_us PARTITION OF regional FOR VALUES IN ('us', 'ca');
INSERT INTO regional VALUES ('eu', 1), ('us', 2), ('ca', 3);
CREATE TABLE regional_src (region text, n int);
INSERT INTO regional_src VALUES ('eu', 10), ('eu', 11);
SELECT * FROM replace_partition('regional', 'regional_src', 'region', 'eu'::text, 'swap');
SELECT * FROM regional ORDER BY region, n;
-- 'us' shares its partition with 'ca': not a whole partition, so auto diffs
TRUNCATE regional_src;
INSERT INTO regional_src VALUES ('us', 20);
SELECT * FROM replace_partition('regional', 'regional_src', 'region', 'us'::text);
SELECT * FROM regional ORDER BY region, n;

-- sub-partitioned: a range partition of a list partition is swapped under
-- its own parent, and its indexes attach through both levels
CREATE TABLE sub (region text NOT NULL, day date NOT NULL, n int) PARTITION BY LIST (region);
CREATE INDEX ON sub (n);
CREATE TABLE sub_eu PARTITION OF sub FOR VALUES IN ('eu') PARTITION BY RANGE (day);
CREATE TABLE sub_eu_0101 PARTITION OF sub_eu FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
CREATE TABLE sub_eu_0102 PARTITION OF sub_eu FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
CREATE TABLE sub_us PARTITION OF sub FOR VALUES IN ('us');
INSERT INTO sub VALUES ('eu', '2025-01-01', 1), ('eu', '2025-01-02', 2), ('us', '2025-01-01', 3);
CREATE TABLE sub_src (region text, day date, n int);
INSERT INTO sub_src VALUES ('eu', '2025-01-01', 100), ('eu', '2025-01-01', 101);
SELECT * FROM replace_partition('sub_eu', 'sub_src', 'day', date '2025-01-01', 'swap');
SELECT * FROM sub ORDER BY region, day, n;
SELECT * FROM pg_temp.describe('sub_eu_0101');
-- replacing the whole 'eu' partition, itself partitioned, is a diff
-- under auto (it is small)
INSERT INTO sub_src VALUES ('eu', '2025-01-02', 2);
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text);
SELECT * FROM sub ORDER BY region, day, n;
-- and a swap when asked: each of its partitions is exchanged, in one
-- window, for a new one that the source's rows were routed to; 'eu' itself
-- stays, and the indexes attach through both levels
SELECT 'sub_eu'::regclass::oid AS eu_oid, 'sub_eu_0101'::regclass::oid AS eu1_oid,
       'sub_eu_0102'::regclass::oid AS eu2_oid \gset
TRUNCATE sub_src;
INSERT INTO sub_src VALUES ('eu', '2025-01-01', 110), ('eu', '2025-01-02', 120), ('eu', '2025-01-02', 121);
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text, 'swap');
SELECT * FROM sub ORDER BY region, day, n;
SELECT 'sub_eu'::regclass::oid = :eu_oid AS same_eu,
       'sub_eu_0101'::regclass::oid <> :eu1_oid AS new_0101,
       'sub_eu_0102'::regclass::oid <> :eu2_oid AS new_0102;
SELECT * FROM pg_temp.describe('sub_eu_0102');
SELECT c.relname FROM pg_class c WHERE c.relname LIKE 'pgi\_swap\_%';
-- a source row that no partition of 'eu' takes: nothing changes
INSERT INTO sub_src VALUES ('eu', '2025-02-01', 130);
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text, 'swap');
DELETE FROM sub_src WHERE day = '2025-02-01';
-- refused: a default partition under 'eu', a third level; auto diffs
CREATE TABLE sub_eu_rest PARTITION OF sub_eu DEFAULT;
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text, 'swap');
DROP TABLE sub_eu_rest;
CREATE TABLE sub_eu_feb PARTITION OF sub_eu FOR VALUES FROM ('2025-02-01') TO ('2025-03-01') PARTITION BY LIST (n);
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text, 'swap');
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text);
DROP TABLE sub_eu_feb;
SELECT * FROM sub ORDER BY region, day, n;

-- a user's tables named as the swap would name its scratch tables (the
-- new leaves, their indexes, the routing table) are left alone: the swap
-- picks other names
CREATE TEMP TABLE squatters AS
SELECT 'pgi_swap_' || c.oid AS name FROM pg_class c
WHERE c.oid IN ('sub_eu_0101'::regclass, 'sub_eu_0102'::regclass, 'daily_sales_0102'::regclass)
UNION ALL SELECT 'pgi_swap_root_' || 'sub_eu'::regclass::oid
UNION ALL SELECT 'pgi_swap_' || i.indexrelid FROM pg_index i
WHERE i.indrelid IN ('sub_eu_0101'::regclass, 'sub_eu_0102'::regclass, 'daily_sales_0102'::regclass)
UNION ALL SELECT 'pgi_swap_' || 'daily_sales_0102'::regclass::oid || '_2';
DO $$
DECLARE n text;
BEGIN
	FOR n IN SELECT name FROM squatters LOOP
		EXECUTE format('CREATE TABLE pgi_replace.%I (squatter int); INSERT INTO pgi_replace.%I VALUES (1)', n, n);
	END LOOP;
END $$;
SELECT count(*) AS squatters FROM squatters;
SELECT * FROM replace_partition('sub', 'sub_src', 'region', 'eu'::text, 'swap');
SELECT * FROM sub ORDER BY region, day, n;
CREATE TABLE stage_0102 AS SELECT * FROM daily_sales WHERE day = '2025-01-02';
UPDATE stage_0102 SET amount = amount + 1;
SELECT * FROM replace_partition('daily_sales', 'stage_0102', 'day', date '2025-01-02', 'swap');
SELECT (SELECT count(*) FROM (TABLE stage_0102 EXCEPT ALL SELECT * FROM daily_sales WHERE day = '2025-01-02') d) +
       (SELECT count(*) FROM (SELECT * FROM daily_sales WHERE day = '2025-01-02' EXCEPT ALL TABLE stage_0102) d)
       AS differences;
-- each squatter still holds its one row, and nothing else is left
CREATE FUNCTION pg_temp.rows_in(t text) RETURNS bigint LANGUAGE plpgsql AS
$$ DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM pgi_replace.%I', t) INTO n; RETURN n; END $$;
SELECT count(*) FILTER (WHERE pg_temp.rows_in(name) = 1) AS squatters_intact FROM squatters;
SELECT count(*) AS left_behind FROM pg_class c
WHERE c.relname LIKE 'pgi\_swap\_%' AND c.relname NOT IN (SELECT name FROM squatters);
DO $$
DECLARE n text;
BEGIN
	FOR n IN SELECT name FROM squatters LOOP
		EXECUTE format('DROP TABLE pgi_replace.%I', n);
	END LOOP;
END $$;
DROP TABLE stage_0102;

-- auto: a large partition that changes a lot is swapped; a re-run of the
-- same data is a diff that writes nothing
CREATE TABLE big (day date NOT NULL, id int, v text) PARTITION BY RANGE (day);
CREATE TABLE big_0101 PARTITION OF big FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
INSERT INTO big SELECT '2025-01-01', g, 'old' FROM generate_series(1, 20000) g;
CREATE TABLE big_src AS SELECT '2025-01-01'::date AS day, g AS id, 'new' AS v FROM generate_series(1, 20000) g;
SELECT * FROM replace_partition('big', 'big_src', 'day', date '2025-01-01');
SELECT * FROM replace_partition('big', 'big_src', 'day', date '2025-01-01');
UPDATE big_src SET v = 'newer' WHERE id <= 100;
SELECT * FROM replace_partition('big', 'big_src', 'day', date '2025-01-01');
SELECT v, count(*) FROM big GROUP BY v ORDER BY v;

-- replace_partition_range swaps when the range is exactly one partition
CREATE TABLE big_src2 AS SELECT * FROM big_src;
SELECT * FROM replace_partition_range('big', 'big_src2', 'day', date '2025-01-01', date '2025-01-02', 'swap');

-- the caller's transaction decides: a rollback undoes a swap
SELECT 'daily_sales_0102'::regclass::oid AS oid_0102 \gset
BEGIN;
SELECT * FROM replace_partition('daily_sales', 'stage', 'day', date '2025-01-02', 'swap');
ROLLBACK;
SELECT 'daily_sales_0102'::regclass::oid = :oid_0102 AS same_partition_as_before, count(*)
FROM daily_sales WHERE day = '2025-01-02';

-- a hostile search_path changes nothing: look-alike operators and
-- functions ahead of pg_catalog are never picked up by the generated SQL
CREATE SCHEMA evil_replace;
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['tid', 'oid', 'bytea', 'date', 'int8'] LOOP
		EXECUTE format('CREATE FUNCTION evil_replace.yes(%1$s, %1$s) RETURNS boolean LANGUAGE sql AS ''SELECT true''', t);
		EXECUTE format('CREATE OPERATOR evil_replace.= (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = evil_replace.yes)', t);
		EXECUTE format('CREATE OPERATOR evil_replace.> (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = evil_replace.yes)', t);
	END LOOP;
END $$;
CREATE FUNCTION evil_replace.count(anyelement) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
UPDATE stage_0101 SET amount = amount + 1 WHERE store_id = 1;
SET search_path = evil_replace, pgi_replace, public, pg_catalog;
SELECT * FROM replace_partition('daily_sales', 'stage_0101', 'day', date '2025-01-01', 'diff');
SELECT * FROM replace_partition('daily_sales', 'stage_0101', 'day', date '2025-01-01', 'diff');
SELECT * FROM replace_partition('daily_sales', 'stage_0101', 'day', date '2025-01-01', 'swap');
SET search_path = pgi_replace, public;
SELECT * FROM pg_temp.slice('2025-01-01');
SET client_min_messages = warning;
DROP SCHEMA evil_replace CASCADE;
RESET client_min_messages;

-- the daily_sales example of docs/replace.md, run ten times: every run
-- leaves the same table
CREATE TABLE fingerprints (run int, fp text);
CREATE TABLE daily_sales_stage ();
DO $$
BEGIN
	FOR run IN 1..10 LOOP
		DROP TABLE daily_sales_stage;
		CREATE TABLE daily_sales_stage AS
		SELECT date '2025-01-02' AS day, s AS store_id, (s * 7 % 100)::numeric(12,2) AS amount, 'rerun' AS note
		FROM generate_series(1, 50) s;
		PERFORM replace_partition('daily_sales', 'daily_sales_stage', 'day', date '2025-01-02');
		INSERT INTO fingerprints VALUES (run, table_fingerprint('daily_sales'));
	END LOOP;
END $$;
SELECT count(DISTINCT fp) AS distinct_fingerprints, count(*) AS runs FROM fingerprints;

DROP TABLE daily_sales, regional, sub, big, orders, stores;
DROP ROLE regress_pgi_owner;
DROP ROLE regress_pgi_reader;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pgi_replace CASCADE;
