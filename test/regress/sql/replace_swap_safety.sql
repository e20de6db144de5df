-- The swap mode never bypasses what writing through the table would run,
-- and the partition it swaps in is exactly as private as the one it
-- replaces.
--
-- A swap loads a new table and attaches it: rows reach the partition
-- without passing the table's triggers or its row-level security policies.
-- So a table with an INSERT or DELETE trigger, or whose policies apply to
-- the caller, is never swapped: mode => 'auto' takes diff, which writes
-- through them, and an explicit mode => 'swap' is 55000, saying why.  And
-- the new partition carries the old one's privileges as they were (NULL
-- stays NULL, every grant keeps its grantor), whatever the caller's
-- ALTER DEFAULT PRIVILEGES would give a new table.

-- no progress reports: a call here can pass the default 10 s interval
-- under valgrind (make test-valgrind), and none of this is about them
SET pg_idempotent.progress_interval = '1h';

CREATE SCHEMA pgi_swap_safety;
SET search_path = pgi_swap_safety, public;

\i test/regress/sql/include/err.sql

-- A day of sales, large enough that auto would swap a wholesale change.
CREATE FUNCTION pg_temp.sales_table(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I (day date NOT NULL, store int NOT NULL, units int NOT NULL) PARTITION BY RANGE (day)', name);
	EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name || '_0101', name, '2025-01-01', '2025-01-02');
	EXECUTE format('INSERT INTO %I SELECT %L, s, 1 FROM generate_series(1, 10000) s', name, '2025-01-01');
END $$;
-- the new day: every row changed
CREATE TABLE stage AS SELECT date '2025-01-01' AS day, s AS store, 2 AS units FROM generate_series(1, 10000) s;
-- the same, with one row no policy below lets in
CREATE TABLE stage_bad AS SELECT * FROM stage;
UPDATE stage_bad SET units = -1 WHERE store = 1;

---------------------------------------------------------------------------
-- Triggers
---------------------------------------------------------------------------

CREATE TABLE audit (tg text, op text, n bigint);
CREATE FUNCTION pg_temp.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO pgi_swap_safety.audit VALUES (TG_NAME, TG_OP, 1);
	RETURN NULL;
END $$;

-- a row trigger on the partitioned table (each partition has a clone of it)
SELECT pg_temp.sales_table('with_row_trigger');
CREATE TRIGGER audit_rows AFTER INSERT OR DELETE ON with_row_trigger
	FOR EACH ROW EXECUTE FUNCTION pg_temp.audit_row();
-- auto does not swap: it diffs, and the trigger sees every row
SELECT * FROM replace_partition('with_row_trigger', 'stage', 'day', date '2025-01-01');
SELECT tg, op, sum(n) FROM audit GROUP BY tg, op ORDER BY tg, op;
SELECT units, count(*) FROM with_row_trigger GROUP BY units;
TRUNCATE audit;
-- an explicit swap is refused, and nothing is written
SELECT pg_temp.err($$SELECT replace_partition('with_row_trigger', 'stage_bad', 'day', date '2025-01-01', 'swap')$$);
SELECT count(*) AS audited FROM audit;
SELECT units, count(*) FROM with_row_trigger GROUP BY units;

-- a statement trigger on the partitioned table
SELECT pg_temp.sales_table('with_statement_trigger');
CREATE TRIGGER audit_statements AFTER INSERT ON with_statement_trigger
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.audit_row();
SELECT * FROM replace_partition('with_statement_trigger', 'stage', 'day', date '2025-01-01');
SELECT tg, op, sum(n) FROM audit GROUP BY tg, op ORDER BY tg, op;
SELECT pg_temp.err($$SELECT replace_partition('with_statement_trigger', 'stage_bad', 'day', date '2025-01-01', 'swap')$$);
TRUNCATE audit;

-- a trigger for UPDATE only is not one a replace fires: swap goes ahead
SELECT pg_temp.sales_table('with_update_trigger');
CREATE TRIGGER audit_updates AFTER UPDATE ON with_update_trigger
	FOR EACH ROW EXECUTE FUNCTION pg_temp.audit_row();
SELECT * FROM replace_partition('with_update_trigger', 'stage', 'day', date '2025-01-01');

---------------------------------------------------------------------------
-- Row-level security
---------------------------------------------------------------------------

-- the table's owner is subject to its policies under FORCE ROW LEVEL
-- SECURITY: a diff's rows pass them, a swap's would not
CREATE ROLE regress_swap_safety_owner;
GRANT USAGE, CREATE ON SCHEMA pgi_swap_safety TO regress_swap_safety_owner;
GRANT SELECT ON stage, stage_bad TO regress_swap_safety_owner;
SELECT pg_temp.sales_table('with_rls');
ALTER TABLE with_rls OWNER TO regress_swap_safety_owner;
ALTER TABLE with_rls_0101 OWNER TO regress_swap_safety_owner;
ALTER TABLE with_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE with_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY positive_units ON with_rls USING (true) WITH CHECK (units > 0);
SET ROLE regress_swap_safety_owner;
SELECT pg_temp.err($$SELECT replace_partition('with_rls', 'stage_bad', 'day', date '2025-01-01', 'swap')$$);
-- auto diffs, and the policy refuses the bad row
SELECT pg_temp.err($$SELECT replace_partition('with_rls', 'stage_bad', 'day', date '2025-01-01')$$);
SELECT * FROM replace_partition('with_rls', 'stage', 'day', date '2025-01-01');
SELECT units, count(*) FROM with_rls GROUP BY units;
RESET ROLE;
-- a role the policies do not apply to (a superuser) may swap
SELECT * FROM replace_partition('with_rls', 'stage', 'day', date '2025-01-01', 'swap');

---------------------------------------------------------------------------
-- Privileges of the new partition
---------------------------------------------------------------------------

CREATE ROLE regress_swap_safety_spy;
CREATE ROLE regress_swap_safety_mid;
CREATE ROLE regress_swap_safety_reader;
GRANT USAGE ON SCHEMA pgi_swap_safety TO regress_swap_safety_mid;
SELECT pg_temp.sales_table('private');
ALTER TABLE private OWNER TO regress_swap_safety_owner;
ALTER TABLE private_0101 OWNER TO regress_swap_safety_owner;
-- the owner's default privileges would open every new table to the spy
ALTER DEFAULT PRIVILEGES FOR ROLE regress_swap_safety_owner IN SCHEMA pgi_swap_safety
	GRANT SELECT ON TABLES TO regress_swap_safety_spy;
CREATE FUNCTION pg_temp.privileges(rel regclass) RETURNS TABLE (acl_is_default boolean,
	spy_reads boolean, reader_reads boolean, reader_updates_units boolean)
LANGUAGE sql AS $$
	SELECT c.relacl IS NULL,
		has_table_privilege('regress_swap_safety_spy', rel, 'SELECT'),
		has_table_privilege('regress_swap_safety_reader', rel, 'SELECT'),
		has_column_privilege('regress_swap_safety_reader', rel, 'units', 'UPDATE')
	FROM pg_class c WHERE c.oid = rel
$$;
-- a partition with no grants (the owner's default): still none after a swap
SELECT * FROM pg_temp.privileges('private_0101');
SET ROLE regress_swap_safety_owner;
SELECT * FROM replace_partition('private', 'stage', 'day', date '2025-01-01', 'swap');
RESET ROLE;
SELECT * FROM pg_temp.privileges('private_0101');
-- grants, one made by a role holding the grant option, and a column grant:
-- the same ACLs afterwards, grantors included
GRANT SELECT ON private_0101 TO regress_swap_safety_mid WITH GRANT OPTION;
SET ROLE regress_swap_safety_mid;
GRANT SELECT ON pgi_swap_safety.private_0101 TO regress_swap_safety_reader;
RESET ROLE;
GRANT UPDATE (units) ON private_0101 TO regress_swap_safety_reader;
SELECT relacl::text AS acl_before FROM pg_class WHERE oid = 'private_0101'::regclass \gset
SELECT attacl::text AS units_acl_before FROM pg_attribute
	WHERE attrelid = 'private_0101'::regclass AND attname = 'units' \gset
SELECT 'private_0101'::regclass::oid AS old_oid \gset
SET ROLE regress_swap_safety_owner;
SELECT * FROM replace_partition('private', 'stage', 'day', date '2025-01-01', 'swap');
RESET ROLE;
SELECT oid <> :old_oid AS new_table, relacl::text = :'acl_before' AS same_acl
	FROM pg_class WHERE oid = 'private_0101'::regclass;
SELECT attacl::text = :'units_acl_before' AS same_column_acl FROM pg_attribute
	WHERE attrelid = 'private_0101'::regclass AND attname = 'units';
SELECT * FROM pg_temp.privileges('private_0101');
-- and the roles they name are recorded as depending on it, as GRANT records them
SELECT d.refobjid::regrole::text AS role, d.objsubid <> 0 AS on_column, d.deptype
	FROM pg_shdepend d
	WHERE d.classid = 'pg_class'::regclass AND d.objid = 'private_0101'::regclass
	ORDER BY 1, 2, 3;
-- a superuser's default privileges are not the partition's either
ALTER DEFAULT PRIVILEGES IN SCHEMA pgi_swap_safety GRANT SELECT ON TABLES TO regress_swap_safety_spy;
SELECT * FROM replace_partition('private', 'stage', 'day', date '2025-01-01', 'swap');
SELECT relacl::text = :'acl_before' AS same_acl, pg_get_userbyid(relowner) AS owner
	FROM pg_class WHERE oid = 'private_0101'::regclass;
SELECT * FROM pg_temp.privileges('private_0101');
ALTER DEFAULT PRIVILEGES IN SCHEMA pgi_swap_safety REVOKE SELECT ON TABLES FROM regress_swap_safety_spy;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_swap_safety_owner IN SCHEMA pgi_swap_safety
	REVOKE SELECT ON TABLES FROM regress_swap_safety_spy;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pgi_swap_safety CASCADE;
DROP ROLE regress_swap_safety_owner, regress_swap_safety_spy, regress_swap_safety_mid,
	regress_swap_safety_reader;
