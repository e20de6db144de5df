-- replace_where: the slice is one boolean expression over the target's
-- columns.  Behaviour first, then every way a predicate is refused.

-- in a schema of its own: the regression database is shared with other tests
CREATE SCHEMA pgi_replace_where;
SET search_path = pgi_replace_where, public;

\i test/regress/sql/include/err.sql

CREATE TABLE usage (tenant_id int, day date, units int, tags text[]);
INSERT INTO usage SELECT t, date '2025-01-01' + d, t * 10 + d, ARRAY['a']
FROM generate_series(1, 3) t, generate_series(0, 2) d;
CREATE TABLE usage_src (LIKE usage);
INSERT INTO usage_src SELECT * FROM usage WHERE tenant_id = 2 AND day >= '2025-01-02';
UPDATE usage_src SET units = 0 WHERE day = '2025-01-03';

-- one tenant's last two days: only the changed row is rewritten
SELECT * FROM replace_where('usage', 'usage_src', $$tenant_id = 2 AND day >= '2025-01-02'$$);
SELECT * FROM usage WHERE tenant_id = 2 ORDER BY day;
-- a re-run writes nothing
SELECT * FROM replace_where('usage', 'usage_src', $$tenant_id = 2 AND day >= '2025-01-02'$$);
-- every mode that applies
SELECT * FROM replace_where('usage', 'usage_src', $$tenant_id = 2 AND day >= '2025-01-02'$$, 'delete_insert');
SELECT * FROM replace_where('usage', 'usage_src', $$tenant_id = 2 AND day >= '2025-01-02'$$, 'diff');
SELECT tenant_id, count(*), sum(units) FROM usage GROUP BY tenant_id ORDER BY tenant_id;

-- a predicate may read other tables and call functions, as a WHERE clause can
CREATE TABLE tenants (id int, active bool);
INSERT INTO tenants VALUES (1, false), (2, true), (3, false);
SELECT * FROM replace_where('usage', 'usage_src',
	$$tenant_id IN (SELECT id FROM tenants WHERE active) AND day >= date '2025-01-01' + 1 AND 'a' = ANY (tags)$$);
-- a correlated subquery names the target's row as any WHERE clause would
SELECT * FROM replace_where('usage', 'usage_src',
	$$EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id AND t.active) AND day >= '2025-01-02'$$);
-- the tables a predicate's subqueries read are locked against writers
-- until the transaction ends (SHARE, as LOCK TABLE takes it), so every
-- statement of the call selects the same slice
BEGIN;
SELECT * FROM replace_where('usage', 'usage_src', $$tenant_id IN (SELECT id FROM tenants WHERE active) AND day >= '2025-01-02'$$);
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND c.relname = 'tenants' ORDER BY l.mode;
COMMIT;
-- ... so a subquery may not read the table being replaced (42P17) ...
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id IN (SELECT u.tenant_id FROM usage u WHERE u.units > 20)')$$);
-- ... nor a relation LOCK TABLE cannot lock (0A000)
CREATE MATERIALIZED VIEW active_tenants AS SELECT id FROM tenants WHERE active;
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id IN (SELECT id FROM active_tenants)')$$);
DROP MATERIALIZED VIEW active_tenants;
-- comments and odd spacing are fine: the checked expression is what runs
SELECT * FROM replace_where('usage', 'usage_src', E'tenant_id = 2 -- the tenant\n AND day > \'2025-01-01\'');

-- rows outside the predicate: 23514, with how many and one example
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = 3')$$);

-- not one expression: 42601
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'true; DROP TABLE usage')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = 2) OR (true')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = 2, day = day')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'true FROM usage')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'true WHERE false')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'true AS x')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', '')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'true /* unterminated')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src',
	'EXISTS (WITH d AS (DELETE FROM tenants RETURNING 1) SELECT 1 FROM d)')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src',
	'tenant_id IN (SELECT id FROM tenants FOR UPDATE)')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'generate_series(1, 2) = tenant_id')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'count(*) > 0')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'row_number() OVER () > 0')$$);

-- a column the target lacks: 42703; not boolean: 42804
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'region = 1')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id + 1')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', $q$'yes'::text$q$)$$);

-- volatile: 42P17 (the predicate is evaluated more than once)
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'random() < 2')$$);

-- swap does not apply to a predicate: 0A000
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = 2', 'swap')$$);
-- NULL arguments: 22004
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', NULL)$$);

-- the predicate runs with the caller's rights: a table or function the
-- caller may not use is refused as it would be in their own WHERE clause
CREATE ROLE regress_pgi_where;
GRANT USAGE ON SCHEMA pgi_replace_where TO regress_pgi_where;
GRANT SELECT, INSERT, DELETE ON usage TO regress_pgi_where;
GRANT SELECT ON usage_src TO regress_pgi_where;
CREATE FUNCTION secret_tenant() RETURNS int LANGUAGE sql STABLE AS 'SELECT 2';
REVOKE EXECUTE ON FUNCTION secret_tenant() FROM PUBLIC;
SET ROLE regress_pgi_where;
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id IN (SELECT id FROM tenants)')$$);
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = secret_tenant()')$$);
-- reading a table is not enough: it must be lockable against writers, as
-- LOCK TABLE allows with UPDATE, DELETE or TRUNCATE on it (42501)
RESET ROLE;
GRANT SELECT ON tenants TO regress_pgi_where;
SET ROLE regress_pgi_where;
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id IN (SELECT id FROM tenants)')$$);
RESET ROLE;
REVOKE SELECT ON tenants FROM regress_pgi_where;
SET ROLE regress_pgi_where;
SELECT pg_temp.err($$SELECT replace_where('usage', 'usage_src', 'tenant_id = 2 AND day >= ''2025-01-02''')$$);
RESET ROLE;
REVOKE ALL ON usage, usage_src FROM regress_pgi_where;
REVOKE USAGE ON SCHEMA pgi_replace_where FROM regress_pgi_where;
DROP ROLE regress_pgi_where;
SELECT tenant_id, count(*), sum(units) FROM usage GROUP BY tenant_id ORDER BY tenant_id;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pgi_replace_where CASCADE;
