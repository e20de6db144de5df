-- Hostile input catalogue, the ledger and checkpoints: bad calls of the
-- ledger_* and checkpoint_* functions, each printed with its SQLSTATE,
-- none of which writes anything, and odd names, which are names like any
-- other.
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

---------------------------------------------------------------------------
-- ledger and checkpoints: bad calls fail with their SQLSTATE and write
-- nothing; odd names are names like any other
---------------------------------------------------------------------------
SELECT ledger_create('hostile_l', lease => '1 hour', max_attempts => 2);
SELECT ledger_enqueue('hostile_l', ARRAY['queued']);
SELECT ledger_record('hostile_l', 'fp', '\x01');
CREATE TABLE tok AS SELECT 'k_done' AS key, token FROM ledger_claim('hostile_l', 'k_done');
INSERT INTO tok SELECT 'k_failed', token FROM ledger_claim('hostile_l', 'k_failed');
SELECT ledger_complete('hostile_l', 'k_done', (SELECT token FROM tok WHERE key = 'k_done'));
SELECT ledger_fail('hostile_l', 'k_failed', (SELECT token FROM tok WHERE key = 'k_failed'), 'boom');
INSERT INTO tok SELECT 'k_dead', token FROM ledger_claim('hostile_l', 'k_dead');
SELECT ledger_fail('hostile_l', 'k_dead', (SELECT token FROM tok WHERE key = 'k_dead'), 'boom');
UPDATE tok SET token = c.token FROM ledger_claim('hostile_l', 'k_dead') c WHERE key = 'k_dead';
SELECT ledger_fail('hostile_l', 'k_dead', (SELECT token FROM tok WHERE key = 'k_dead'), 'boom');
INSERT INTO tok SELECT 'k_busy', token FROM ledger_claim('hostile_l', 'k_busy');
GRANT SELECT ON tok TO regress_hostile_nobody;
SELECT checkpoint_advance('hostile_cp', 5, '\x01');
-- what every group below checks: the ledgers and checkpoints hold exactly
-- what they held
CREATE VIEW ledger_now AS
	SELECT l.name, l.lease, l.max_attempts, l.retention, k.key, k.status, k.token, k.attempts,
		   k.fingerprint, k.result, k.error
	FROM pgi_ledger l LEFT JOIN pgi_ledger_key k ON k.ledger_id = l.id
	UNION ALL SELECT name, NULL, NULL, NULL, NULL, NULL, position, NULL, fingerprint, NULL, NULL
	FROM pgi_checkpoint;
CREATE TABLE ledger_before AS SELECT * FROM ledger_now;
-- NULL in each argument: 22004 (fingerprint, result, error, extend and
-- older_than may be NULL)
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', lease => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', max_attempts => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', retention => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record('hostile_l', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('hostile_l', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('hostile_l', ARRAY['new', NULL])$$);
SELECT pg_temp.err($$SELECT ledger_enqueue(NULL, ARRAY['new'])$$);
SELECT pg_temp.err($$SELECT ledger_enqueue('hostile_l', ARRAY['new', NULL])$$);
SELECT pg_temp.err($$SELECT ledger_claim(NULL, 'new')$$);
SELECT pg_temp.err($$SELECT ledger_claim('hostile_l', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_claim_next(NULL)$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('hostile_l', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_complete(NULL, 'k_busy', 1)$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', NULL, 1)$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'k_busy', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_fail('hostile_l', NULL, 1, 'x')$$);
SELECT pg_temp.err($$SELECT ledger_fail('hostile_l', 'k_busy', NULL, 'x')$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat(NULL, 'k_busy', 1)$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('hostile_l', 'k_busy', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_status(NULL, 'k_busy')$$);
SELECT pg_temp.err($$SELECT ledger_status('hostile_l', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_prune('hostile_l', '1 day', NULL)$$);
SELECT pg_temp.err($$SELECT checkpoint_advance(NULL, 6)$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', NULL)$$);
SELECT pg_temp.err($$SELECT checkpoint_advance(NULL, 6, '\x01')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', NULL, '\x01')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', 6, NULL)$$);
-- an unknown ledger, named: 42704 (ledger_errors.sql shows it for each
-- function), and an empty array or the default count is no way around it
SELECT pg_temp.err($$SELECT ledger_record_batch('hostile_none', '{}')$$);
SELECT pg_temp.err($$SELECT ledger_enqueue('hostile_none', '{}')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('hostile_none')$$);
SELECT pg_temp.err($$SELECT ledger_status('HOSTILE_L', 'k_done')$$);
-- bad values: 22023, 2202E
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', lease => '-1 second')$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', max_attempts => 0)$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', max_attempts => -2147483648)$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', retention => '-1 day')$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_l', lease => '-1 month')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('hostile_l', -1)$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('hostile_l', 'k_busy', (SELECT token FROM tok WHERE key = 'k_busy'), '-1 minute')$$);
SELECT pg_temp.err($$SELECT ledger_prune('hostile_l', '-1 day')$$);
SELECT pg_temp.err($$SELECT ledger_prune('hostile_l', '1 day', 0)$$);
SELECT pg_temp.err($$SELECT ledger_record_batch('hostile_l', ARRAY[['a', 'b'], ['c', 'd']])$$);
SELECT pg_temp.err($$SELECT ledger_enqueue('hostile_l', ARRAY[['a', 'b'], ['c', 'd']])$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('', 1, '\x01')$$);
-- illegal transitions: 55000
SELECT pg_temp.err($$SELECT ledger_fail('hostile_l', 'k_done', (SELECT token FROM tok WHERE key = 'k_done'), 'late')$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'k_failed', (SELECT token FROM tok WHERE key = 'k_failed'))$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'k_dead', (SELECT token FROM tok WHERE key = 'k_dead'), '{}')$$);
-- the fingerprint a key or the current position was reached with: 22023
SELECT pg_temp.err($$SELECT ledger_record('hostile_l', 'fp', '\x02')$$);
SELECT pg_temp.err($$SELECT ledger_claim('hostile_l', 'fp', '\x02')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', 5, '\x02')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', 5, '')$$);
-- stale tokens change nothing: false, NULL, false
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'k_busy', (SELECT token FROM tok WHERE key = 'k_busy') - 1)$$);
SELECT pg_temp.err($$SELECT ledger_fail('hostile_l', 'k_busy', (SELECT token FROM tok WHERE key = 'k_busy') + 1000, 'x') IS NULL$$);
SELECT pg_temp.err($$SELECT ledger_heartbeat('hostile_l', 'k_busy', -1)$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'never_seen', 1)$$);
-- ledger_complete_batch and the retry settings (0.2.0)
SELECT pg_temp.err($$SELECT ledger_complete_batch(NULL, '{a}', '{1}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', NULL, '{1}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{a}', NULL)$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{a,NULL}', '{1,2}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{a,b}', '{1,NULL}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{a,b}', '{1}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{{a},{b}}', '{{1},{2}}')$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{a}', '{1}', '{"{}","{}"}')$$);
SELECT pg_temp.err($$SELECT count(*) FROM ledger_complete_batch('hostile_l', '{never_seen,k_busy}', ARRAY[1, (SELECT token FROM tok WHERE key = 'k_busy') - 1])$$);
SELECT pg_temp.err($$SELECT ledger_complete_batch('hostile_l', '{k_failed}', ARRAY[(SELECT token FROM tok WHERE key = 'k_failed')])$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', retry_backoff => NULL)$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', retry_backoff => '-1 second')$$);
SELECT pg_temp.err($$SELECT ledger_create('hostile_x', retry_backoff_max => '-1 hour')$$);
-- a role lacking grants on the extension's tables: 42501
SET ROLE regress_hostile_nobody;
SELECT pg_temp.err($$SELECT ledger_create('hostile_n')$$);
SELECT pg_temp.err($$SELECT ledger_drop('hostile_l')$$);
SELECT pg_temp.err($$SELECT ledger_record('hostile_l', 'n')$$);
SELECT pg_temp.err($$SELECT ledger_claim_next('hostile_l', 5)$$);
SELECT pg_temp.err($$SELECT ledger_complete('hostile_l', 'k_busy', (SELECT token FROM tok WHERE key = 'k_busy'))$$);
SELECT pg_temp.err($$SELECT ledger_prune('hostile_l', '0 seconds')$$);
SELECT pg_temp.err($$SELECT ledger_stats('hostile_l')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('hostile_cp', 9)$$);
SELECT pg_temp.err($$SELECT checkpoint_get('hostile_cp')$$);
RESET ROLE;
SELECT * FROM ledger_now EXCEPT SELECT * FROM ledger_before;
SELECT * FROM ledger_before EXCEPT SELECT * FROM ledger_now;
-- odd names (quotes, spaces, a tab, 63 and 64 bytes) are names like
-- any other, and two that differ only in case are two
SELECT pg_temp.err($$SELECT ledger_create('we"ird'' name; --')$$);
SELECT pg_temp.err($$SELECT ledger_record('we"ird'' name; --', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_status('we"ird'' name; --', 'k')$$);
SELECT pg_temp.err($$SELECT ledger_create(' hostile_l ')$$);
SELECT pg_temp.err($$SELECT ledger_record(' hostile_l ', 'k_done')$$);
SELECT pg_temp.err($$SELECT ledger_create(repeat('l', 63))$$);
SELECT pg_temp.err($$SELECT ledger_create(repeat('l', 64))$$);
SELECT pg_temp.err($$SELECT ledger_record(repeat('l', 64), 'k')$$);
SELECT pg_temp.err($$SELECT ledger_status(repeat('l', 63), 'k')$$);
SELECT pg_temp.err($$SELECT ledger_create('Hostile_L')$$);
SELECT pg_temp.err($$SELECT ledger_create(E'hostile\tl')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('we"ird'' name; --', 1)$$);
SELECT pg_temp.err($$SELECT checkpoint_get('we"ird'' name; --')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance(repeat('c', 63), 2, '\x01')$$);
SELECT pg_temp.err($$SELECT checkpoint_advance(repeat('c', 64), 3)$$);
SELECT pg_temp.err($$SELECT checkpoint_get(repeat('c', 63))$$);
SELECT pg_temp.err($$SELECT checkpoint_get(repeat('c', 62))$$);
-- (names and keys are in the "C" collation: the order is the same everywhere)
SELECT name, key, status FROM ledger_now EXCEPT SELECT name, key, status FROM ledger_before ORDER BY 1, 2;
SELECT count(*) AS dropped FROM (SELECT ledger_drop(name) FROM pgi_ledger WHERE name IN ('hostile_l', 'we"ird'' name; --', ' hostile_l ',
	repeat('l', 63), repeat('l', 64), 'Hostile_L', E'hostile\tl')) d;
DELETE FROM pgi_checkpoint WHERE name IN ('hostile_cp', 'we"ird'' name; --', repeat('c', 63), repeat('c', 64));

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
