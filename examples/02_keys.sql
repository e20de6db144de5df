-- Deterministic keys: an event feed delivers the same events more than
-- once, without an id of its own.  A key computed from the event's content,
-- in a generated column with a unique index, makes the second delivery a
-- no-op, on any server, whatever the session's DateStyle or TimeZone.

\echo
\echo '== Events keyed by idempotent_key(source, event_time, kind) in a generated column'
CREATE TABLE events (
	id uuid GENERATED ALWAYS AS (idempotent_key(source, event_time, kind)) STORED PRIMARY KEY,
	source text NOT NULL,
	event_time timestamptz NOT NULL,
	kind text NOT NULL,
	payload jsonb
);
CREATE TABLE events_delivery (source text, event_time timestamptz, kind text, payload jsonb);
INSERT INTO events_delivery
SELECT 'sensor-' || g % 10, timestamptz '2025-01-01 00:00+00' + g * interval '1 minute',
	   CASE WHEN g % 3 = 0 THEN 'alarm' ELSE 'reading' END, jsonb_build_object('value', g % 97)
FROM generate_series(1, 10000) g;

\echo
\echo '== Delivery 1, in a session on UTC with ISO dates'
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
INSERT INTO events (source, event_time, kind, payload)
SELECT * FROM events_delivery ON CONFLICT (id) DO NOTHING;
SELECT count(*) AS events, table_fingerprint('events') AS fingerprint FROM events;
SELECT table_fingerprint('events') AS after_delivery_1 \gset

\echo
\echo '== Delivery 2 of the same events, from a session in another time zone and date style'
SET TimeZone = 'America/Sao_Paulo';
SET DateStyle = 'German';
INSERT INTO events (source, event_time, kind, payload)
SELECT * FROM events_delivery ON CONFLICT (id) DO NOTHING;
SELECT count(*) AS events, table_fingerprint('events') AS fingerprint FROM events;
SELECT table_fingerprint('events') AS after_delivery_2 \gset
RESET TimeZone;
RESET DateStyle;
SELECT :'after_delivery_1' = :'after_delivery_2' AS same_table \gset
\if :same_table
\echo 'Same fingerprint: the second delivery added nothing.'
\else
\echo 'DIFFERENT fingerprints: the second delivery changed the table!'
SELECT 1 / 0;
\endif

\echo
\echo '== The key of one event, and the same key from the int4/int8 family fold'
SELECT idempotent_key('sensor-1', timestamptz '2025-01-01 00:01+00', 'reading') AS key;
SELECT idempotent_key(5::int4) = idempotent_key(5::int8) AS "int4 5 and int8 5 give one key",
	   idempotent_key('ab', 'c') <> idempotent_key('a', 'bc') AS "('ab','c') and ('a','bc') differ";

\echo
\echo '== stable_bucket: a 10% sample that is the same sample on every run'
SELECT count(*) AS sampled FROM events WHERE stable_bucket(id, 10) = 0;
SELECT count(*) AS sampled_again FROM events WHERE stable_bucket(id, 10) = 0;
