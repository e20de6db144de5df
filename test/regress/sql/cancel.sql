-- Cancel and statement_timeout stop every long operation promptly, leave
-- its target as it was, and leave the session ready for the next statement.
--
-- Each operation is given far more work than it can do before a 200 ms
-- statement_timeout: 20 million rows from a view over two generate_series
-- (streamed by the executor, so nothing is built in advance), or an array
-- of 2 million keys.  Uncancelled, each would run for minutes.  After the
-- timeout (57014), the target's fingerprint is compared with the one taken
-- before, the time since the statement began with 10 s, and the next
-- statement is checked to run in a transaction of its own with nothing
-- left over.  test/isolation/specs/cancel-waiting-upsert.spec cancels an
-- upsert waiting for a row lock with pg_cancel_backend.
\set VERBOSITY sqlstate

CREATE TABLE target (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO target SELECT g, 'old' FROM generate_series(1, 1000) g;
CREATE TABLE empty_target (LIKE target INCLUDING ALL);
CREATE TABLE daily (day date NOT NULL, id bigint NOT NULL, v text NOT NULL);
INSERT INTO daily SELECT date '2025-01-14' + g % 2, g, 'old' FROM generate_series(1, 1000) g;
-- 20 million rows, ids 1 to 20000000, overlapping target's
CREATE VIEW big AS
SELECT a.g::bigint * 1000 + b.g AS id, 'new' AS v
FROM generate_series(0, 19999) a(g), generate_series(1, 1000) b(g);
CREATE VIEW big_day AS SELECT date '2025-01-15' AS day, id, v FROM big;

-- what is true after each cancelled call
CREATE FUNCTION pg_temp.after_cancel(target regclass, fingerprint_before text,
	started timestamptz)
RETURNS TABLE (unchanged boolean, prompt boolean, new_transaction boolean)
LANGUAGE sql AS $$
	SELECT table_fingerprint(target) = fingerprint_before,
		clock_timestamp() - started < interval '10 s',
		now() = statement_timestamp() AND pg_current_xact_id_if_assigned() IS NULL
$$;

-- idempotent_upsert into a table with rows: stopped while it checks the source
SELECT table_fingerprint('target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM idempotent_upsert('target', 'big');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('target', :'fp', :'t0');

-- idempotent_upsert into an empty table: stopped in the middle of the first
-- load's INSERT, inside the upsert's own subtransaction
SELECT table_fingerprint('empty_target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM idempotent_upsert('empty_target', 'big');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('empty_target', :'fp', :'t0');
SELECT count(*) AS rows_left FROM empty_target;

-- idempotent_upsert_query, with a version column
SELECT table_fingerprint('target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM idempotent_upsert_query('target',
	'SELECT a.g::bigint * 1000 + b.g AS id, ''new'' AS v
	 FROM generate_series(0, 19999) a(g), generate_series(1, 1000) b(g)',
	version_column => 'v');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('target', :'fp', :'t0');

-- replace_table in diff and delete_insert modes
SELECT table_fingerprint('target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM replace_table('target', 'big', mode => 'diff');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('target', :'fp', :'t0');

SELECT table_fingerprint('target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM replace_table('target', 'big', mode => 'delete_insert');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('target', :'fp', :'t0');

-- replace_partition in diff and delete_insert modes: the day it replaces
-- and the day next to it are both as they were
SELECT table_fingerprint('daily') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM replace_partition('daily', 'big_day', 'day', date '2025-01-15', mode => 'diff');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('daily', :'fp', :'t0');

SELECT table_fingerprint('daily') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT * FROM replace_partition('daily', 'big_day', 'day', date '2025-01-15',
	mode => 'delete_insert');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('daily', :'fp', :'t0');

-- table_fingerprint of 20 million rows
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT table_fingerprint('big');
RESET statement_timeout;
SELECT prompt, new_transaction FROM pg_temp.after_cancel('target', NULL, :'t0');

-- idempotent_key over 20 million rows
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT count(idempotent_key(id, v, 'k')) FROM big;
RESET statement_timeout;
SELECT prompt, new_transaction FROM pg_temp.after_cancel('target', NULL, :'t0');

-- ledger_record_batch with 2 million keys: no key of the batch is recorded
SELECT ledger_create('cancelled');
SELECT ledger_record('cancelled', 'key-1');
CREATE TEMP TABLE big_keys AS SELECT array_agg('key-' || g) AS keys FROM generate_series(1, 2000000) g;
SELECT table_fingerprint('pgi_ledger_key') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT count(*) FROM big_keys, ledger_record_batch('cancelled', keys);
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('pgi_ledger_key', :'fp', :'t0');
SELECT * FROM ledger_stats('cancelled');

-- assert_idempotent: stopped in the statement's first run
SELECT table_fingerprint('target') AS fp, clock_timestamp() AS t0 \gset
SET statement_timeout = '200ms';
SELECT assert_idempotent('INSERT INTO target SELECT id + 1000000000, v FROM big ON CONFLICT DO NOTHING',
	'target');
RESET statement_timeout;
SELECT * FROM pg_temp.after_cancel('target', :'fp', :'t0');

-- inside the caller's transaction: rolling back to a savepoint taken before
-- the cancelled call keeps what the transaction did before it
BEGIN;
UPDATE target SET v = 'kept' WHERE id = 1;
SAVEPOINT before_replace;
SET LOCAL statement_timeout = '200ms';
SELECT * FROM replace_table('target', 'big', mode => 'delete_insert');
ROLLBACK TO SAVEPOINT before_replace;
SHOW statement_timeout;
SELECT * FROM idempotent_upsert_query('target', $$SELECT 2::bigint AS id, 'kept' AS v$$);
COMMIT;
SELECT id, v FROM target WHERE v <> 'old' ORDER BY id;
SELECT count(*) FROM target;

DROP VIEW big_day, big;
DROP TABLE target, empty_target, daily, big_keys;
SELECT ledger_drop('cancelled');
