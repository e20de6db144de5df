-- The path users take from 0.1.0: what a pipeline built under the released
-- version holds survives ALTER EXTENSION pg_idempotent UPDATE, and the new
-- version's functions work on it as the old ones did.  Tokens and times are
-- never printed; what is shown is how they compare.

CREATE EXTENSION pg_idempotent VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'pg_idempotent';

--
-- State made under 0.1.0
--

-- a ledger with keys in every status, a done key with its result, a key
-- recorded with a payload fingerprint
SELECT ledger_create('payments', lease => '1 hour', max_attempts => 2, retention => '7 days');
SELECT ledger_record('payments', 'recorded') AS recorded,
	ledger_record('payments', 'with-payload', '\xabcd') AS with_payload;
SELECT ledger_enqueue('payments', ARRAY['pending', 'processing', 'done', 'failed', 'dead']);
CREATE TABLE tok (key text PRIMARY KEY, token bigint NOT NULL);
INSERT INTO tok SELECT c.k, t.token
FROM unnest(ARRAY['processing', 'done', 'failed', 'dead']) c(k),
	LATERAL ledger_claim('payments', c.k) t;
SELECT ledger_complete('payments', 'done', (SELECT token FROM tok WHERE key = 'done'),
	'{"charge": "ch_1", "amount": 42}');
SELECT ledger_fail('payments', 'failed', (SELECT token FROM tok WHERE key = 'failed'), 'timeout');
SELECT ledger_fail('payments', 'dead', (SELECT token FROM tok WHERE key = 'dead'), 'timeout');
UPDATE tok SET token = c.token FROM ledger_claim('payments', 'dead') c WHERE key = 'dead';
SELECT ledger_fail('payments', 'dead', (SELECT token FROM tok WHERE key = 'dead'), 'timeout, last');
-- a second ledger, so that keys stay apart
SELECT ledger_create('refunds');
SELECT ledger_record_batch('refunds', ARRAY['r-1', 'r-2']) ORDER BY 1;

-- checkpoints, one with a fingerprint
SELECT checkpoint_advance('orders-consumer', 1500);
SELECT checkpoint_advance('events', 10, '\x0a'), checkpoint_advance('events', 20, '\x14');

-- a table keyed by a generated column of idempotent_key, loaded by upserts,
-- and a table a replace keeps
CREATE TABLE events (
	id uuid GENERATED ALWAYS AS (idempotent_key(source, event_id, day)) STORED PRIMARY KEY,
	source text NOT NULL,
	event_id bigint NOT NULL,
	day date NOT NULL,
	payload jsonb,
	bucket int GENERATED ALWAYS AS (stable_bucket(event_id, 16)) STORED
);
INSERT INTO events (source, event_id, day, payload)
SELECT 'web', g, date '2025-01-01' + g % 3, jsonb_build_object('n', g)
FROM generate_series(1, 100) g;
CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(12,2), version int NOT NULL);
CREATE TABLE orders_staging (LIKE orders);
INSERT INTO orders_staging SELECT g, g * 1.5, 1 FROM generate_series(1, 50) g;
SELECT * FROM idempotent_upsert('orders', 'orders_staging', version_column => 'version');
-- without a version column rows compare by binary image; 0.1.0 has no
-- pgi_internal._images_differ, so the call compares ROW()s: the replay is
-- unchanged, a new amount an update
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
UPDATE orders_staging SET amount = amount + 1 WHERE id = 1;
SELECT * FROM idempotent_upsert('orders', 'orders_staging');
CREATE TABLE daily (day date NOT NULL, n int NOT NULL);
CREATE TABLE daily_source (LIKE daily);
INSERT INTO daily_source SELECT date '2025-01-15', g FROM generate_series(1, 10) g;
SELECT * FROM replace_partition('daily', 'daily_source', 'day', date '2025-01-15', mode => 'diff');

-- everything above as fingerprints, and as 0.1.0 left it (the view, built
-- on the extension's functions and tables, must survive the update too)
CREATE VIEW state AS
SELECT 'events' AS t, table_fingerprint('events') AS fp
UNION ALL SELECT 'orders', table_fingerprint('orders')
UNION ALL SELECT 'daily', table_fingerprint('daily')
UNION ALL SELECT 'ledger keys', md5(string_agg(format('%s %s %s %s %s %s %s', l.name, k.key,
		k.status, k.attempts, k.fingerprint, k.result, k.error), ',' ORDER BY l.name, k.key))
	FROM pgi_ledger_key k JOIN pgi_ledger l ON l.id = k.ledger_id
UNION ALL SELECT 'ledgers', md5(string_agg(format('%s %s %s %s', name, lease, max_attempts,
		retention), ',' ORDER BY name))
	FROM pgi_ledger
UNION ALL SELECT 'checkpoints', md5(string_agg(format('%s %s %s', name, position, fingerprint),
		',' ORDER BY name))
	FROM pgi_checkpoint;
CREATE TABLE before_update AS SELECT * FROM state;

--
-- The update
--

ALTER EXTENSION pg_idempotent UPDATE;
-- the version the control file installs by default
SELECT e.extversion, e.extversion = a.default_version AS is_default
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extname = 'pg_idempotent';

--
-- The state survived
--

-- every table, the ledger and the checkpoints, unchanged
SELECT t, b.fp = a.fp AS unchanged FROM before_update b JOIN state a USING (t) ORDER BY t;

-- the ledger's keys, each in the status 0.1.0 left it in
SELECT l.name, k.key, k.status, k.attempts, k.result, k.error
FROM pgi_ledger_key k JOIN pgi_ledger l ON l.id = k.ledger_id ORDER BY l.name, k.key;
SELECT * FROM ledger_stats('payments');

--
-- ... and still works
--

-- a done key answers with the result stored before the update
SELECT status, token IS NULL AS no_token, attempts, result FROM ledger_claim('payments', 'done');
-- an old key is not new; a fingerprint recorded before the update is still checked
SELECT ledger_record('payments', 'recorded') AS recorded_again,
	ledger_record('payments', 'with-payload', '\xabcd') AS same_payload;
SELECT ledger_record('payments', 'with-payload', '\xffff');
SELECT ledger_record('refunds', 'r-1') AS old_refund, ledger_record('refunds', 'r-3') AS new_refund;
-- the lease taken under 0.1.0 still holds the key, and still fences: its
-- token completes, a stale one does not
SELECT status, token IS NULL AS no_token FROM ledger_claim('payments', 'processing');
SELECT ledger_complete('payments', 'processing', (SELECT token FROM tok WHERE key = 'processing') - 1)
	AS stale_token;
SELECT ledger_complete('payments', 'processing', (SELECT token FROM tok WHERE key = 'processing'),
	'"late"') AS current_token;
-- the failed key is claimed again, its next attempt; the dead key is never handed out
SELECT status, attempts FROM ledger_claim('payments', 'failed');
SELECT status, attempts FROM ledger_claim('payments', 'dead');
-- new tokens stay above the ones handed out before the update
SELECT k.token > (SELECT max(token) FROM tok) AS greater
FROM ledger_claim_next('payments', 1) k;

-- the retry settings the update added work in this same session, which
-- used the ledger before the update (the library notices the new columns)
SELECT ledger_create('retried', retry_backoff => '1 hour');
SELECT retry_backoff FROM pgi_ledger WHERE name = 'retried';
SELECT status, attempts FROM ledger_claim('retried', 'k') \gset first_
SELECT ledger_fail('retried', 'k', (SELECT max(token) FROM pgi_ledger_key k
	JOIN pgi_ledger l ON l.id = k.ledger_id WHERE l.name = 'retried'), 'boom');
-- backing off: not handed out again yet
SELECT status FROM ledger_claim('retried', 'k');

-- checkpoints: positions kept, the stored fingerprint still checked
SELECT checkpoint_get('orders-consumer'), checkpoint_get('events');
SELECT checkpoint_advance('events', 20, '\x14') AS replay;
SELECT checkpoint_advance('events', 20, '\x15');
SELECT checkpoint_advance('orders-consumer', 1600) AS forward;

-- generated keys computed by 0.1.0 are the keys 0.2.0 computes
SELECT count(*) FILTER (WHERE id = idempotent_key(source, event_id, day)) AS same_keys,
	count(*) FILTER (WHERE bucket = stable_bucket(event_id, 16)) AS same_buckets,
	count(*) AS rows
FROM events;
INSERT INTO events (source, event_id, day) VALUES ('web', 1, date '2025-01-02');
INSERT INTO events (source, event_id, day) VALUES ('web', 101, date '2025-01-03');

-- a replay of the upsert writes nothing; a newer version updates (the
-- session's first upsert, before the update, was of this shape: what it
-- kept is forgotten when the update creates and moves functions, see
-- src/callcache.c)
SELECT * FROM idempotent_upsert('orders', 'orders_staging', version_column => 'version');
UPDATE orders_staging SET amount = 0, version = 2 WHERE id <= 5;
SELECT * FROM idempotent_upsert('orders', 'orders_staging', version_column => 'version');
SELECT assert_idempotent($$SELECT idempotent_upsert('orders', 'orders_staging', version_column => 'version')$$,
	'orders');

-- the replace's re-run writes nothing
SELECT * FROM replace_partition('daily', 'daily_source', 'day', date '2025-01-15', mode => 'diff');
