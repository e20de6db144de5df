-- The dedup ledger: every error a caller can cause, with its SQLSTATE.
-- None of them writes anything: the ledger is checked after each group.

\i test/regress/sql/include/err.sql

\pset format unaligned
\pset tuples_only on

SELECT ledger_create('e', lease => '1 hour', max_attempts => 2);
SELECT ledger_record('e', 'seen', '\x01');
SELECT ledger_enqueue('e', ARRAY['work']);
-- the rows of every ledger (other tests' too), to show that nothing changes
CREATE TEMP TABLE snapshot AS
	SELECT ledger_id, key, status, token, attempts, fingerprint, result, error FROM pgi_ledger_key;
CREATE FUNCTION pg_temp.unchanged() RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN NOT EXISTS (
		(SELECT ledger_id, key, status, token, attempts, fingerprint, result, error FROM pgi_ledger_key
		 EXCEPT ALL SELECT * FROM snapshot)
		UNION ALL
		(SELECT * FROM snapshot
		 EXCEPT ALL SELECT ledger_id, key, status, token, attempts, fingerprint, result, error FROM pgi_ledger_key))
	THEN 'ledger unchanged' ELSE 'LEDGER CHANGED' END $$;

-- NULL arguments: 22004, naming the argument
SELECT pg_temp.err($$SELECT ledger_create(NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', lease => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', max_attempts => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retention => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_drop(NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record(NULL, 'k')$$);
SELECT pg_temp.err($$SELECT ledger_record('e', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('e', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('e', ARRAY['a', NULL])$$);
SELECT pg_temp.err($$SELECT ledger_enqueue('e', ARRAY[NULL]::text[])$$);
SELECT pg_temp.err($$SELECT ledger_claim('e', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('e', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_complete('e', 'work', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_fail('e', 'work', NULL, 'x')$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('e', 'work', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_status('e', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_stats(NULL)$$);
SELECT pg_temp.err($$SELECT ledger_prune(NULL)$$);
SELECT pg_temp.err($$SELECT ledger_prune('e', '1 day', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retry_backoff => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retry_backoff_max => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch(NULL, ARRAY['work'], ARRAY[1])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', NULL, ARRAY[1])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work'], NULL)$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work', NULL], ARRAY[1, 2])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work'], ARRAY[NULL]::bigint[])$$);
SELECT pg_temp.unchanged();

-- bad settings and arguments: 22023 (2202E for a multi-dimensional array)
SELECT pg_temp.err($$SELECT ledger_create('')$$);
SELECT pg_temp.err($$SELECT ledger_create('x', lease => '-1 second')$$);
SELECT pg_temp.err($$SELECT ledger_create('x', max_attempts => 0)$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retention => '-1 day')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('e', -1)$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('e', 'work', 1, '-1 minute')$$);
SELECT pg_temp.err($$SELECT ledger_prune('e', '-1 day')$$);
SELECT pg_temp.err($$SELECT ledger_prune('e', '1 day', 0)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('e', ARRAY[['a'], ['b']])$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retry_backoff => '-1 second')$$);
SELECT pg_temp.err($$SELECT ledger_create('x', retry_backoff_max => '-1 second')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work', 'seen'], ARRAY[1])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work'], ARRAY[1], ARRAY['{}', '{}']::jsonb[])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY[['work']], ARRAY[[1]])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['work'], ARRAY[[1]])$$);
SELECT count(*) AS created FROM pgi_ledger WHERE name IN ('', 'x');
SELECT pg_temp.unchanged();

-- an unknown ledger: 42704, naming it, from every function
SELECT pg_temp.err($$SELECT ledger_drop('nope')$$);
SELECT pg_temp.err($$SELECT ledger_record('nope', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_record('nope', 'k', '\x01')$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('nope', ARRAY['k'])$$);
SELECT pg_temp.err($$SELECT ledger_enqueue('nope', ARRAY['k'])$$);
SELECT pg_temp.err($$SELECT ledger_claim('nope', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('nope', 1)$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('nope', 0)$$);
SELECT pg_temp.err($$SELECT ledger_complete('nope', 'k', 1)$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('nope', ARRAY['k'], ARRAY[1])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('nope', '{}', '{}')$$);
SELECT pg_temp.err($$SELECT ledger_fail('nope', 'k', 1, 'x')$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('nope', 'k', 1)$$);
SELECT pg_temp.err($$SELECT ledger_status('nope', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_stats('nope')$$);
SELECT pg_temp.err($$SELECT ledger_prune('nope')$$);
-- names are exact: no case folding, no trimming
SELECT pg_temp.err($$SELECT ledger_record('E', 'k')$$);
SELECT pg_temp.unchanged();

-- a known key with a different payload: 22023
SELECT pg_temp.err($$SELECT ledger_record('e', 'seen', '\x02')$$);
SELECT pg_temp.err($$SELECT ledger_claim('e', 'seen', '\x02')$$);
SELECT pg_temp.unchanged();

-- illegal transitions: 55000, naming ledger, key, from and to
CREATE TEMP TABLE tok AS SELECT token FROM ledger_claim('e', 'work');
SELECT ledger_fail('e', 'work', (SELECT token FROM tok), 'first failure');
SELECT pg_temp.err($$SELECT ledger_complete('e', 'work', (SELECT token FROM tok))$$);
-- ... in a batch too, and the batch's other keys are not completed either
CREATE TEMP TABLE other AS SELECT token FROM ledger_claim('e', 'other');
SELECT pg_temp.err($$SELECT ledger_complete_batch('e', ARRAY['other', 'work'], ARRAY[(SELECT token FROM other), (SELECT token FROM tok)])$$);
SELECT ledger_status('e', 'other');
UPDATE tok SET token = (SELECT token FROM ledger_claim('e', 'work'));
SELECT ledger_complete('e', 'work', (SELECT token FROM tok), '{"ok": true}');
SELECT pg_temp.err($$SELECT ledger_fail('e', 'work', (SELECT token FROM tok), 'after done')$$);
SELECT ledger_create('d', max_attempts => 1);
CREATE TEMP TABLE dtok AS SELECT token FROM ledger_claim('d', 'poison');
SELECT ledger_fail('d', 'poison', (SELECT token FROM dtok), 'crash');
SELECT pg_temp.err($$SELECT ledger_complete('d', 'poison', (SELECT token FROM dtok))$$);
SELECT l.name, k.key, k.status, k.attempts, k.result, k.error FROM pgi_ledger_key k
	JOIN pgi_ledger l ON l.id = k.ledger_id WHERE l.name IN ('e', 'd') ORDER BY l.name, k.key;

-- privileges: a role without grants gets 42501 from PostgreSQL itself;
-- the functions are SECURITY INVOKER, never a back door
SELECT p.proname, p.prosecdef FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
	JOIN pg_extension x ON x.oid = d.refobjid
	WHERE x.extname = 'pg_idempotent' AND (p.proname LIKE 'ledger%' OR p.proname LIKE 'checkpoint%')
	ORDER BY p.proname, p.pronargs;
CREATE ROLE regress_ledger_nobody;
CREATE ROLE regress_ledger_worker;
SET ROLE regress_ledger_nobody;
SELECT pg_temp.err($$SELECT ledger_record('e', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('e', 1)$$);
SELECT pg_temp.err($$SELECT ledger_create('mine')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('c', 1)$$);
SELECT pg_temp.err($$SELECT checkpoint_get('c')$$);
RESET ROLE;
SELECT ledger_enqueue('e', ARRAY['for-worker']);
-- what docs/security.md says a worker needs: use ledgers, not create or drop them
GRANT SELECT ON pgi_ledger TO regress_ledger_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgi_ledger_key TO regress_ledger_worker;
GRANT USAGE ON SEQUENCE pgi_ledger_token_seq TO regress_ledger_worker;
SET ROLE regress_ledger_worker;
SELECT ledger_record('e', 'by-worker');
SELECT key, attempts FROM ledger_claim_next('e', 1);
SELECT pg_temp.err($$SELECT ledger_create('mine')$$);
SELECT pg_temp.err($$SELECT ledger_drop('e')$$);
RESET ROLE;
REVOKE ALL ON pgi_ledger, pgi_ledger_key FROM regress_ledger_worker;
REVOKE ALL ON SEQUENCE pgi_ledger_token_seq FROM regress_ledger_worker;
-- the ledger ids this session remembers (ledger_record's and
-- ledger_complete's shortcut past pgi_ledger) skip no privilege: a role
-- that may write the keys but not read the ledgers is refused as the
-- statement by name would refuse it (the GRANT comes first: a change of
-- the tables' privileges makes every session forget the ids)
GRANT SELECT, INSERT, UPDATE ON pgi_ledger_key TO regress_ledger_worker;
SELECT ledger_record('e', 'remembered') AS remembered;
SELECT token AS claimed_token FROM ledger_claim('e', 'claimed-for-worker') \gset
SELECT ledger_complete('e', 'claimed-for-worker', 0) AS remembered_by_complete;
SET ROLE regress_ledger_worker;
SELECT pg_temp.err($$SELECT ledger_record('e', 'k-no-ledger-read')$$);
SELECT pg_temp.err(format('SELECT ledger_complete(%L, %L, %s)', 'e', 'claimed-for-worker', :claimed_token));
SET ROLE regress_ledger_nobody;
SELECT pg_temp.err(format('SELECT ledger_complete(%L, %L, %s)', 'e', 'claimed-for-worker', :claimed_token));
RESET ROLE;
SELECT ledger_status('e', 'claimed-for-worker') AS still;
REVOKE ALL ON pgi_ledger_key FROM regress_ledger_worker;
DROP ROLE regress_ledger_nobody, regress_ledger_worker;

-- a row written by hand with a status the state machine does not know: 23514
UPDATE pgi_ledger_key SET status = 'bogus' WHERE key = 'seen' AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'e');
SELECT pg_temp.err($$SELECT ledger_status('e', 'seen')$$);
UPDATE pgi_ledger_key SET status = 'done' WHERE key = 'seen' AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'e');

-- row-level security on pgi_ledger_key that lets a role insert keys but
-- hides some from it (here: keys older than 2020): recording or claiming a
-- hidden key conflicts with a key the role cannot read.  Both calls fail
-- with 42501, saying so, instead of inserting and reading again for ever
-- (the statement_timeout stops them if they do)
SELECT ledger_create('rls');
SELECT ledger_record('rls', 'old-recorded'), ledger_record('rls', 'old-claimed');
UPDATE pgi_ledger_key SET created_at = '2019-01-01 00:00+00'
	WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'rls');
CREATE ROLE regress_ledger_hidden;
GRANT SELECT ON pgi_ledger TO regress_ledger_hidden;
GRANT SELECT, INSERT, UPDATE ON pgi_ledger_key TO regress_ledger_hidden;
GRANT USAGE ON SEQUENCE pgi_ledger_token_seq TO regress_ledger_hidden;
ALTER TABLE pgi_ledger_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_ledger_insert ON pgi_ledger_key FOR INSERT WITH CHECK (true);
CREATE POLICY regress_ledger_read ON pgi_ledger_key FOR SELECT USING (created_at > '2020-01-01 00:00+00');
CREATE POLICY regress_ledger_update ON pgi_ledger_key FOR UPDATE USING (true);
SET ROLE regress_ledger_hidden;
SET statement_timeout = '2s';
SELECT pg_temp.err($$SELECT ledger_record('rls', 'old-recorded')$$);
SELECT pg_temp.err($$SELECT ledger_claim('rls', 'old-claimed')$$);
-- keys it may read work as ever
SELECT ledger_record('rls', 'open'), ledger_record('rls', 'open');
SELECT status, attempts FROM ledger_claim('rls', 'open-claimed');
RESET statement_timeout;
RESET ROLE;
DROP POLICY regress_ledger_insert ON pgi_ledger_key;
DROP POLICY regress_ledger_read ON pgi_ledger_key;
DROP POLICY regress_ledger_update ON pgi_ledger_key;
ALTER TABLE pgi_ledger_key DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON pgi_ledger, pgi_ledger_key FROM regress_ledger_hidden;
REVOKE ALL ON SEQUENCE pgi_ledger_token_seq FROM regress_ledger_hidden;
DROP ROLE regress_ledger_hidden;
SELECT key, status FROM pgi_ledger_key
	WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'rls') ORDER BY key;
SELECT ledger_drop('rls');

-- a hostile search_path changes nothing: look-alike tables and operators are ignored
CREATE SCHEMA ledger_evil;
CREATE TABLE ledger_evil.pgi_ledger_key (LIKE pgi_ledger_key);
CREATE FUNCTION ledger_evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR ledger_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ledger_evil.texteq);
SET search_path = ledger_evil, public, pg_catalog;
SELECT ledger_record('e', 'hostile'), ledger_record('e', 'hostile'), ledger_status('e', 'never');
SELECT count(*) AS rows_in_evil FROM ledger_evil.pgi_ledger_key;
RESET search_path;
DROP SCHEMA ledger_evil CASCADE;

-- a trigger on pgi_ledger_key that skips updates: ledger_complete_batch
-- gives up after a bounded number of rounds (55000) instead of spinning
SELECT ledger_create('skip');
SELECT ledger_enqueue('skip', ARRAY['a', 'b']);
CREATE TEMP TABLE skip_claims AS SELECT * FROM ledger_claim_next('skip', 2);
CREATE FUNCTION pg_temp.skip_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'done' THEN RETURN NULL; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER skip_done BEFORE UPDATE ON pgi_ledger_key FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_done();
SET statement_timeout = '20s';  -- before the bound, the call spun until this
SELECT pg_temp.err($$SELECT ledger_complete_batch('skip', ARRAY(SELECT key FROM skip_claims ORDER BY key), ARRAY(SELECT token FROM skip_claims ORDER BY key))$$);
RESET statement_timeout;
DROP TRIGGER skip_done ON pgi_ledger_key;
SELECT * FROM ledger_complete_batch('skip', ARRAY(SELECT key FROM skip_claims ORDER BY key), ARRAY(SELECT token FROM skip_claims ORDER BY key)) ORDER BY 1;
SELECT ledger_drop('skip');
