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
PREPARE next(int, bigint, timestamptz) AS
	WITH c AS (SELECT k.key FROM pgi_ledger_key k
		WHERE k.ledger_id = $1 AND k.available_at <= $3
		AND k.status = ANY ('{pending,processing,failed}')
		ORDER BY k.available_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	UPDATE pgi_ledger_key k SET attempts = k.attempts + 1
	WHERE k.ledger_id = $1 AND k.key = ANY (ARRAY(SELECT c.key FROM c));
EXPLAIN (COSTS OFF) EXECUTE next(3, 10, now());
PREPARE prune(int, timestamptz, bigint) AS
	SELECT k.key FROM pgi_ledger_key k
	WHERE k.ledger_id = $1 AND k.status = ANY ('{done,dead}'::text[])
	AND k.updated_at < $2 ORDER BY k.updated_at LIMIT $3 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE prune(3, now(), 10);
PREPARE status(int, text) AS
	SELECT status FROM pgi_ledger_key WHERE ledger_id = $1 AND key = ($2 COLLATE "C");
EXPLAIN (COSTS OFF) EXECUTE status(3, 'k1');
RESET plan_cache_mode;

-- The README's consumer loop: exactly-once under redelivery.  Each message's
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
