-- A checkpointed incremental load: the high-water mark of what has been
-- loaded is stored with the data, in the same transaction, so a crash
-- between loading and saving the offset cannot make the next run skip or
-- repeat a batch.

\echo
\echo '== Events arrive in an append-only log; the warehouse table is loaded from it in batches'
CREATE TABLE event_log (seq bigint PRIMARY KEY, kind text, amount int);
INSERT INTO event_log SELECT g, 'kind-' || g % 4, g % 100 FROM generate_series(1, 10000) g;
CREATE TABLE event_totals (kind text PRIMARY KEY, events bigint, amount bigint);

CREATE FUNCTION load_next_batch(batch_size int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	from_seq bigint := coalesce(checkpoint_get('event_totals'), 0);
	to_seq bigint;
BEGIN
	SELECT max(seq) INTO to_seq FROM (SELECT seq FROM event_log WHERE seq > from_seq ORDER BY seq LIMIT batch_size) s;
	IF to_seq IS NULL THEN
		RETURN 'nothing new';
	END IF;
	INSERT INTO event_totals
	SELECT kind, count(*), sum(amount) FROM event_log WHERE seq > from_seq AND seq <= to_seq GROUP BY kind
	ON CONFLICT (kind) DO UPDATE SET events = event_totals.events + EXCLUDED.events,
									 amount = event_totals.amount + EXCLUDED.amount;
	PERFORM checkpoint_advance('event_totals', to_seq);
	RETURN format('loaded (%s, %s]', from_seq, to_seq);
END $$;

\echo
\echo '== Four runs of 3,000 events: the last finds the rest, a fifth finds nothing'
SELECT load_next_batch(3000) FROM generate_series(1, 5);
SELECT table_fingerprint('event_totals') AS loaded \gset

\echo
\echo '== A run that fails after loading rolls back its rows and its checkpoint together'
INSERT INTO event_log SELECT g, 'kind-' || g % 4, g % 100 FROM generate_series(10001, 10500) g;
BEGIN;
SELECT load_next_batch(1000);
ROLLBACK;
SELECT checkpoint_get('event_totals') AS checkpoint_after_the_failed_run;
SELECT load_next_batch(1000);
SELECT load_next_batch(1000);
SELECT sum(events) = 10500 AS every_event_counted_once FROM event_totals;

\echo
\echo '== Advancing to a position already passed changes nothing'
SELECT checkpoint_advance('event_totals', 5000) AS moved_back;
SELECT checkpoint_get('event_totals');

\echo
\echo '== A fingerprinted checkpoint: a replayed batch must be the batch that was loaded'
SELECT checkpoint_advance('export', 100, sha256('batch 1..100')) AS first_time;
SELECT checkpoint_advance('export', 100, sha256('batch 1..100')) AS same_batch_replayed;
DO $$
BEGIN
	PERFORM checkpoint_advance('export', 100, sha256('batch 1..100, but different'));
	RAISE EXCEPTION 'a changed batch went through';
EXCEPTION WHEN invalid_parameter_value THEN
	RAISE NOTICE 'a replay with different contents is refused: %', SQLERRM;
END $$;
