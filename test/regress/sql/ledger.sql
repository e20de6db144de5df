-- The dedup ledger: check-and-record, the state machine of leased work,
-- fencing tokens, results, max_attempts, claim_next, heartbeat, prune.
-- Tokens are never printed (they come from a sequence other tests draw
-- from too); what is shown is how they compare.

SELECT ledger_create('orders');
-- ledger_create is idempotent, and brings an existing ledger's settings to the given ones
SELECT ledger_create('orders');
SELECT ledger_create('orders', lease => '1 hour', max_attempts => 3, retention => '7 days');
SELECT name, lease, max_attempts, retention FROM pgi_ledger ORDER BY name;

-- ledger_record: true the first time, false ever after
SELECT ledger_record('orders', 'o-1') AS first, ledger_record('orders', 'o-1') AS again;
SELECT ledger_status('orders', 'o-1'), ledger_status('orders', 'never-seen');

-- in the caller's transaction: a rollback forgets the record
BEGIN;
SELECT ledger_record('orders', 'o-2');
ROLLBACK;
SELECT ledger_status('orders', 'o-2');
SELECT ledger_record('orders', 'o-2');

-- a subtransaction rolled back forgets it too
BEGIN;
SAVEPOINT s;
SELECT ledger_record('orders', 'o-3');
ROLLBACK TO SAVEPOINT s;
SELECT ledger_record('orders', 'o-3');
COMMIT;

-- the same key with the same fingerprint is a repeat; without one, nothing is compared
SELECT ledger_record('orders', 'pay-1', '\x0102'), ledger_record('orders', 'pay-1', '\x0102'),
	ledger_record('orders', 'pay-1');

-- keys are compared byte for byte: case, spaces and odd characters all count
SELECT ledger_record('orders', 'O-1'), ledger_record('orders', 'o-1 '), ledger_record('orders', ''),
	ledger_record('orders', ''), ledger_record('orders', E'quote\'"\\ é');

-- ledgers are separate: the same key in another ledger is new
SELECT ledger_create('refunds');
SELECT ledger_record('refunds', 'o-1');

-- ledger_record_batch: one statement; each new key once, even if the array repeats it
SELECT k FROM ledger_record_batch('orders', ARRAY['o-1', 'b-1', 'b-2', 'b-1', 'b-3', 'b-2']) AS k ORDER BY k;
SELECT k FROM ledger_record_batch('orders', ARRAY['b-1', 'b-2', 'b-3']) AS k ORDER BY k;
SELECT count(*) FROM ledger_record_batch('orders', '{}');
-- 10k keys, half of them repeats of each other
SELECT count(*) FROM ledger_record_batch('orders',
	ARRAY(SELECT 'big-' || (g % 5000) FROM generate_series(1, 10000) g));
SELECT count(*) FROM ledger_record_batch('orders',
	ARRAY(SELECT 'big-' || g FROM generate_series(4990, 5009) g));

-- leased work: enqueue, claim, complete
SELECT ledger_create('jobs', lease => '1 hour', max_attempts => 2);
SELECT ledger_enqueue('jobs', ARRAY['j-1', 'j-2', 'j-3', 'j-1']) AS new_pending;
SELECT ledger_enqueue('jobs', ARRAY['j-1', 'j-4']) AS new_pending;
SELECT * FROM ledger_stats('jobs');

CREATE TEMP TABLE tok (key text PRIMARY KEY, token bigint);

-- claim of a pending key: acquired, with a token and attempt 1
INSERT INTO tok SELECT 'j-1', token FROM ledger_claim('jobs', 'j-1')
	WHERE status = 'acquired' AND token IS NOT NULL AND attempts = 1 AND result IS NULL
	RETURNING key;
SELECT ledger_status('jobs', 'j-1');
-- while the lease runs, another claim finds it busy (and no token)
SELECT status, token, attempts, result FROM ledger_claim('jobs', 'j-1');

-- complete with the current token stores the result; completing again is a no-op
SELECT ledger_complete('jobs', 'j-1', (SELECT token FROM tok WHERE key = 'j-1'), '{"charge": "ch_1"}');
SELECT ledger_complete('jobs', 'j-1', (SELECT token FROM tok WHERE key = 'j-1'), '{"charge": "other"}');
-- every later claim gets the stored result
SELECT status, token, attempts, result FROM ledger_claim('jobs', 'j-1');
SELECT status, token, attempts, result FROM ledger_claim('jobs', 'j-1');
-- a token that is not the key's changes nothing
SELECT ledger_complete('jobs', 'j-1', -1, '{"charge": "forged"}');
SELECT result FROM pgi_ledger_key WHERE key = 'j-1';

-- claim of an unknown key creates it, acquired
SELECT status, attempts FROM ledger_claim('jobs', 'j-new', '\xaa');
SELECT ledger_status('jobs', 'j-new');

-- failures: failed is claimed again; the max_attempts-th failure makes the key dead
INSERT INTO tok SELECT 'j-2', token FROM ledger_claim('jobs', 'j-2');
SELECT ledger_fail('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2'), 'timeout');
-- failing again with the same token is a no-op
SELECT ledger_fail('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2'), 'timeout again');
SELECT status, attempts, error FROM pgi_ledger_key WHERE key = 'j-2';
-- the old token is stale once the key is claimed again: fail and complete change nothing
UPDATE tok SET token = c.token FROM (SELECT token FROM ledger_claim('jobs', 'j-2')) c WHERE key = 'j-2'
	RETURNING key;
SELECT ledger_fail('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2') - 1, 'stale') IS NULL AS stale_fail;
SELECT ledger_complete('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2') - 1) AS stale_complete;
SELECT ledger_fail('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2'), 'timeout, last');
SELECT status, attempts, error FROM pgi_ledger_key WHERE key = 'j-2';
-- a dead key is reported, never handed out
SELECT status, token, attempts FROM ledger_claim('jobs', 'j-2');
SELECT ledger_fail('jobs', 'j-2', (SELECT token FROM tok WHERE key = 'j-2'), 'again');

-- fencing: a lease that runs out is taken over with a strictly greater token;
-- the first worker's complete then changes nothing, the successor's wins
SELECT ledger_create('short', lease => '0');
SELECT ledger_enqueue('short', ARRAY['k']);
INSERT INTO tok SELECT 'short-1', token FROM ledger_claim('short', 'k');
INSERT INTO tok SELECT 'short-2', token FROM ledger_claim('short', 'k');
SELECT (SELECT token FROM tok WHERE key = 'short-2') > (SELECT token FROM tok WHERE key = 'short-1') AS greater;
SELECT ledger_complete('short', 'k', (SELECT token FROM tok WHERE key = 'short-1'), '"first"') AS first_worker;
SELECT ledger_complete('short', 'k', (SELECT token FROM tok WHERE key = 'short-2'), '"second"') AS second_worker;
SELECT status, attempts, result FROM pgi_ledger_key WHERE key = 'k';

-- a live lease: the key is busy
SELECT ledger_enqueue('jobs', ARRAY['j-5']);
INSERT INTO tok SELECT 'j-5', token FROM ledger_claim('jobs', 'j-5');
SELECT status, token, attempts FROM ledger_claim('jobs', 'j-5');

-- heartbeat: extends the lease only for the current token
SELECT ledger_heartbeat('jobs', 'j-5', (SELECT token FROM tok WHERE key = 'j-5'), '2 hours');
SELECT available_at > now() + interval '90 minutes' AS extended FROM pgi_ledger_key WHERE key = 'j-5';
SELECT ledger_heartbeat('jobs', 'j-5', (SELECT token FROM tok WHERE key = 'j-5') - 1);
SELECT ledger_heartbeat('jobs', 'j-1', (SELECT token FROM tok WHERE key = 'j-1')) AS done_key;
-- a heartbeat of 0 lets the lease run out now: the next claimer takes the key over
SELECT ledger_heartbeat('jobs', 'j-5', (SELECT token FROM tok WHERE key = 'j-5'), '0');
SELECT status, attempts FROM ledger_claim('jobs', 'j-5');
SELECT ledger_heartbeat('jobs', 'j-5', (SELECT token FROM tok WHERE key = 'j-5')) AS after_takeover;

-- claim_next: pending, failed and lease-expired keys, oldest first
SELECT ledger_create('queue', lease => '1 hour', max_attempts => 5);
SELECT ledger_enqueue('queue', ARRAY['q-1']);
SELECT ledger_enqueue('queue', ARRAY['q-2']);
SELECT ledger_enqueue('queue', ARRAY['q-3']);
SELECT ledger_record('queue', 'q-recorded');
SELECT key, attempts FROM ledger_claim_next('queue', 2) ORDER BY key;
SELECT key, attempts FROM ledger_claim_next('queue') ORDER BY key;
SELECT key, attempts FROM ledger_claim_next('queue', 10) ORDER BY key;
SELECT count(*) FROM ledger_claim_next('queue', 0);
-- a failed key comes back, with its next attempt
SELECT ledger_fail('queue', 'q-2', (SELECT token FROM pgi_ledger_key WHERE key = 'q-2'), 'flaky');
SELECT key, attempts FROM ledger_claim_next('queue', 10) ORDER BY key;
-- tokens handed out are unique
SELECT count(DISTINCT token) = count(*) AS unique_tokens FROM pgi_ledger_key WHERE token IS NOT NULL;

-- stats: every status, in the state machine's order
SELECT * FROM ledger_stats('jobs');

-- prune: only done and dead keys older than the retention (or older_than)
SELECT ledger_create('old', retention => '1 hour');
SELECT ledger_enqueue('old', ARRAY['pending-1']);
SELECT ledger_record('old', 'done-1'), ledger_record('old', 'done-2');
SELECT ledger_prune('old') AS within_retention;
SELECT ledger_prune('old', older_than => '0') AS all_finished;
SELECT key, status FROM pgi_ledger_key WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'old') ORDER BY key;
-- in bounded batches: max_keys at a time
SELECT count(*) FROM ledger_record_batch('old', ARRAY(SELECT 'p-' || g FROM generate_series(1, 25) g));
SELECT ledger_prune('old', '0', max_keys => 10), ledger_prune('old', '0', max_keys => 10),
	ledger_prune('old', '0', max_keys => 10), ledger_prune('old', '0', max_keys => 10);
-- a pruned key is forgotten: it is new again
SELECT ledger_record('old', 'done-1');

-- drop removes the ledger and its keys
SELECT ledger_drop('old');
SELECT count(*) FROM pgi_ledger_key k LEFT JOIN pgi_ledger l ON l.id = k.ledger_id WHERE l.id IS NULL;

-- every call is an index lookup: generic plans of the statements ledger.c runs
-- (the same shapes; on a big ledger they must not sort or scan the whole table)
SELECT ledger_create('big');
SELECT count(*) FROM ledger_record_batch('big', ARRAY(SELECT 'k' || g FROM generate_series(1, 20000) g));
SELECT ledger_enqueue('big', ARRAY(SELECT 'e' || g FROM generate_series(1, 5000) g));
ANALYZE pgi_ledger_key;
SET plan_cache_mode = force_generic_plan;
-- a plan's shape: its nodes, the tables and the indexes they use, without
-- the conditions' text (which the server prints differently from one major
-- to the next)
CREATE FUNCTION pg_temp.plan_shape(node json, depth int DEFAULT 0) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	child json;
BEGIN
	RETURN NEXT repeat('  ', depth) || (node->>'Node Type')
		|| coalesce(' (' || (node->>'Parent Relationship') || ')', '')
		|| coalesce(' on ' || (node->>'Relation Name'), '')
		|| coalesce(' using ' || (node->>'Index Name'), '');
	FOR child IN SELECT json_array_elements(node->'Plans') LOOP
		RETURN QUERY SELECT pg_temp.plan_shape(child, depth + 1);
	END LOOP;
END $$;
CREATE FUNCTION pg_temp.explain(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (COSTS OFF, FORMAT JSON) ' || stmt INTO plan;
	RETURN QUERY SELECT pg_temp.plan_shape(plan->0->'Plan');
END $$;
PREPARE next(int, bigint, timestamptz) AS
	WITH c AS (SELECT k.key FROM pgi_ledger_key k
		WHERE k.ledger_id = $1 AND k.available_at <= $3
		AND k.status = ANY ('{pending,processing,failed}')
		ORDER BY k.available_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	UPDATE pgi_ledger_key k SET attempts = k.attempts + 1
	WHERE k.ledger_id = $1 AND k.key = ANY (ARRAY(SELECT c.key FROM c));
SELECT pg_temp.explain($$EXECUTE next(3, 10, now())$$);
PREPARE prune(int, timestamptz, bigint) AS
	SELECT k.key FROM pgi_ledger_key k
	WHERE k.ledger_id = $1 AND k.status = ANY ('{done,dead}'::text[])
	AND k.updated_at < $2 ORDER BY k.updated_at LIMIT $3 FOR UPDATE SKIP LOCKED;
SELECT pg_temp.explain($$EXECUTE prune(3, now(), 10)$$);
PREPARE status(int, text) AS
	SELECT status FROM pgi_ledger_key WHERE ledger_id = $1 AND key = ($2 COLLATE "C");
SELECT pg_temp.explain($$EXECUTE status(3, 'k1')$$);
-- ledger_complete_batch: a nested loop over the sorted arrays, one index lookup per key
PREPARE complete_batch(text, text[], bigint[], jsonb[]) AS
	UPDATE pgi_ledger_key k SET status = 'done', result = b.result
	FROM (SELECT a.key COLLATE "C" AS key, a.token, a.result
		FROM ROWS FROM (unnest($2), unnest($3), unnest($4)) AS a(key, token, result) ORDER BY 1) b
	WHERE k.ledger_id = (SELECT l.id FROM pgi_ledger l WHERE l.name = ($1 COLLATE "C"))
	AND k.key = b.key AND k.token = b.token AND k.status = ANY ('{processing}');
SELECT pg_temp.explain($$EXECUTE complete_batch('big', '{k1}', '{1}', NULL)$$);
RESET plan_cache_mode;

-- The consumer loop of docs/ledger.md: exactly-once under redelivery.  Each message's
-- effect and its ledger record commit together; a redelivered message (or
-- the whole inbox replayed) changes nothing.
SELECT ledger_create('payments');
CREATE TABLE inbox (seq bigint PRIMARY KEY, msg_id text NOT NULL, account int NOT NULL, amount numeric NOT NULL);
CREATE TABLE balances (account int PRIMARY KEY, total numeric NOT NULL);
-- the broker delivered m-2 three times and m-3 twice
INSERT INTO inbox VALUES (1, 'm-1', 7, 10.00), (2, 'm-2', 7, 5.00), (3, 'm-2', 7, 5.00),
	(4, 'm-3', 8, 1.50), (5, 'm-2', 7, 5.00), (6, 'm-3', 8, 1.50), (7, 'm-4', 8, 2.00);
CREATE PROCEDURE consume_inbox() LANGUAGE plpgsql AS $$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM inbox
			WHERE seq > coalesce(checkpoint_get('payments-consumer'), 0) ORDER BY seq
	LOOP
		IF ledger_record('payments', m.msg_id) THEN
			INSERT INTO balances VALUES (m.account, m.amount)
			ON CONFLICT (account) DO UPDATE SET total = balances.total + EXCLUDED.total;
		END IF;
		PERFORM checkpoint_advance('payments-consumer', m.seq);
		COMMIT;
	END LOOP;
END $$;
CALL consume_inbox();
SELECT * FROM balances ORDER BY account;
-- replay everything from the start, as after a lost checkpoint: nothing changes
DELETE FROM pgi_checkpoint WHERE name = 'payments-consumer';
CALL consume_inbox();
SELECT * FROM balances ORDER BY account;
SELECT checkpoint_get('payments-consumer');
DROP PROCEDURE consume_inbox();
DROP TABLE inbox, balances;
DELETE FROM pgi_checkpoint WHERE name = 'payments-consumer';

-- ledger_complete_batch: ledger_complete for many keys in one statement.  It
-- returns the keys done by the token given (now, or already: a repeat is a
-- no-op), each once; keys with a token that is not current are left alone.
SELECT ledger_create('batch', lease => '1 hour');
SELECT ledger_enqueue('batch', ARRAY['a', 'b', 'c', 'd', 'e']);
CREATE TEMP TABLE btok AS SELECT key, token FROM ledger_claim_next('batch', 4);
SELECT key FROM btok ORDER BY key;
SELECT k FROM ledger_complete_batch('batch',
	ARRAY['a', 'b', 'c', 'e'],
	ARRAY[(SELECT token FROM btok WHERE key = 'a'), (SELECT token FROM btok WHERE key = 'b'),
		(SELECT token FROM btok WHERE key = 'c') - 1, 0],
	ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 5}']::jsonb[]) AS k ORDER BY k;
SELECT key, status, result FROM pgi_ledger_key
	WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'batch') ORDER BY key;
-- again, in another order and with a key repeated: the same keys, once each; the first results stay
SELECT k FROM ledger_complete_batch('batch',
	ARRAY['b', 'a', 'a'],
	ARRAY[(SELECT token FROM btok WHERE key = 'b'), (SELECT token FROM btok WHERE key = 'a'),
		(SELECT token FROM btok WHERE key = 'a')],
	ARRAY['"late"', '"late"', '"late"']::jsonb[]) AS k ORDER BY k;
-- results may be left out (NULL results), and an empty batch returns nothing
SELECT k FROM ledger_complete_batch('batch', ARRAY['c', 'd'],
	ARRAY[(SELECT token FROM btok WHERE key = 'c'), (SELECT token FROM btok WHERE key = 'd')]) AS k ORDER BY k;
SELECT count(*) FROM ledger_complete_batch('batch', '{}', '{}');
SELECT key, status, result FROM pgi_ledger_key
	WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'batch') ORDER BY key;
-- a stale worker's batch after a takeover changes nothing
SELECT ledger_create('batch_short', lease => '0');
SELECT ledger_enqueue('batch_short', ARRAY['x', 'y']);
CREATE TEMP TABLE stale AS SELECT key, token FROM ledger_claim_next('batch_short', 2);
CREATE TEMP TABLE fresh AS SELECT key, token FROM ledger_claim_next('batch_short', 2);
SELECT count(*) AS stale_completed FROM ledger_complete_batch('batch_short',
	ARRAY(SELECT key FROM stale ORDER BY key), ARRAY(SELECT token FROM stale ORDER BY key));
SELECT k AS fresh_completed FROM ledger_complete_batch('batch_short',
	ARRAY(SELECT key FROM fresh ORDER BY key), ARRAY(SELECT token FROM fresh ORDER BY key)) AS k ORDER BY k;

-- A lease that runs out counts as an attempt: once a key has used
-- max_attempts, the next claim makes it dead (with a token nobody holds)
-- instead of handing it out again, whether by ledger_claim or claim_next.
SELECT ledger_create('crashy', lease => '0', max_attempts => 2);
SELECT ledger_enqueue('crashy', ARRAY['k1', 'k2']);
SELECT key, attempts FROM ledger_claim_next('crashy', 2) ORDER BY key;
-- both leases ran out (lease 0): the second attempt
CREATE TEMP TABLE last_try AS SELECT key, token, attempts FROM ledger_claim_next('crashy', 2);
SELECT key, attempts FROM last_try ORDER BY key;
-- their second leases ran out too: the next claims end them dead, and hand out nothing
SELECT count(*) AS handed_out FROM ledger_claim_next('crashy', 10);
SELECT key, status, attempts, error, available_at IS NULL AS never_claimable
	FROM pgi_ledger_key WHERE ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'crashy') ORDER BY key;
SELECT status, token, attempts FROM ledger_claim('crashy', 'k1');
-- the last worker's late complete or heartbeat changes nothing: its token was revoked
SELECT ledger_complete('crashy', 'k1', (SELECT token FROM last_try WHERE key = 'k1')) AS late_complete,
	ledger_heartbeat('crashy', 'k2', (SELECT token FROM last_try WHERE key = 'k2')) AS late_heartbeat;
-- ledger_claim: the same rule, key by key
SELECT status, attempts FROM ledger_claim('crashy', 'k3');
SELECT status, attempts FROM ledger_claim('crashy', 'k3');
SELECT status, token, attempts FROM ledger_claim('crashy', 'k3');
SELECT status, attempts, error FROM pgi_ledger_key WHERE key = 'k3'
	AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'crashy');
-- a lowered max_attempts applies to keys already failed: they are not handed out again
SELECT ledger_create('lowered', lease => '1 hour', max_attempts => 5);
CREATE TEMP TABLE ltok AS SELECT token FROM ledger_claim('lowered', 'k');
SELECT ledger_fail('lowered', 'k', (SELECT token FROM ltok), 'boom');
SELECT ledger_create('lowered', lease => '1 hour', max_attempts => 1);
SELECT status, token, attempts FROM ledger_claim('lowered', 'k');
SELECT status, attempts, error FROM pgi_ledger_key WHERE key = 'k'
	AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'lowered');

-- Retry backoff: a failed key may be claimed again after
-- retry_backoff * 2^(attempts - 1), at most retry_backoff_max.  Until then
-- claim_next skips it and ledger_claim finds it busy.
SELECT ledger_create('backoff', lease => '1 hour', max_attempts => 10,
	retry_backoff => '1 minute', retry_backoff_max => '5 minutes');
SELECT name, lease, max_attempts, retention, retry_backoff, retry_backoff_max FROM pgi_ledger
	WHERE name = 'backoff';
SELECT ledger_enqueue('backoff', ARRAY['k']);
CREATE TEMP TABLE bo (token bigint);
CREATE FUNCTION pg_temp.attempt_and_fail() RETURNS text LANGUAGE sql AS $$
	-- claim the key as soon as it may be claimed (its backoff moved back into the past), then fail it
	UPDATE pgi_ledger_key SET available_at = available_at - interval '1 day' WHERE key = 'k'
		AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'backoff');
	DELETE FROM bo;
	INSERT INTO bo SELECT token FROM ledger_claim_next('backoff', 1);
	SELECT ledger_fail('backoff', 'k', (SELECT token FROM bo), 'try later');
	SELECT format('attempt %s: claimable again after %s', attempts, available_at - updated_at)
		FROM pgi_ledger_key WHERE key = 'k' AND ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'backoff');
$$;
SELECT pg_temp.attempt_and_fail() FROM generate_series(1, 5) ORDER BY 1;
SELECT count(*) AS claimed_during_backoff FROM ledger_claim_next('backoff', 1);
SELECT status, token, attempts FROM ledger_claim('backoff', 'k');
-- the default (0) keeps retries immediate
SELECT ledger_create('backoff', lease => '1 hour', max_attempts => 10);
SELECT retry_backoff, retry_backoff_max FROM pgi_ledger WHERE name = 'backoff';

-- ledger_record remembers a ledger's id per session; a drop makes it
-- forget, in this session at once: no key under a dropped id, and a
-- ledger re-created under the same name gets the keys
SELECT ledger_create('cached');
SELECT ledger_record('cached', 'a') AS first, ledger_record('cached', 'b') AS second,
	ledger_record('cached', 'a') AS again;
SELECT ledger_drop('cached');
\set VERBOSITY terse
SELECT ledger_record('cached', 'c');
\set VERBOSITY default
SELECT ledger_create('cached');
SELECT ledger_record('cached', 'a') AS a_in_new_ledger, ledger_status('cached', 'b') AS b_gone;
BEGIN;
SELECT ledger_record('cached', 'd');
SELECT ledger_drop('cached');
SELECT ledger_record('cached', 'e');
ROLLBACK;
SELECT ledger_record('cached', 'e') AS after_rollback, ledger_status('cached', 'd') AS d_rolled_back;
SELECT count(*) AS orphans FROM pgi_ledger_key k WHERE NOT EXISTS (SELECT FROM pgi_ledger l WHERE l.id = k.ledger_id);
SELECT ledger_drop('cached');
