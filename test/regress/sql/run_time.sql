-- run_time() and run_date(): the pipeline's logical time in loaded data

\i test/regress/sql/include/err.sql
\pset format unaligned

-- unset, run_time() is an error with a hint, never the clock
SELECT pg_temp.err('SELECT run_time()');
SELECT pg_temp.err('SELECT run_date()');

-- a value that is not a timestamp is refused when it is set, not when read
SELECT pg_temp.err($$SET pg_idempotent.run_time = 'not a time'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-02-30 00:00'$$);
SELECT pg_temp.err($$SELECT set_config('pg_idempotent.run_time', '12:00', false)$$);
-- words relative to the clock would differ on every run
SELECT pg_temp.err($$SET pg_idempotent.run_time = 'now'$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = 'Today'$$);
SELECT pg_temp.err('SELECT run_time()');

-- the value is an instant: TimeZone at SET time or at read time does not
-- change it, and a value without a zone is UTC
SET TimeZone = 'UTC';
SET pg_idempotent.run_time = '2025-01-15 23:30:00+00';
SELECT run_time()::text AS utc_session, run_date();
SET TimeZone = 'Asia/Tokyo';
SELECT run_time() = '2025-01-15 23:30:00+00' AS same_instant_in_tokyo, run_date() AS still_utc_date;
SET pg_idempotent.run_time = '2025-01-15 23:30:00';
SELECT run_time() = '2025-01-15 23:30:00+00' AS no_zone_is_utc;
SET pg_idempotent.run_time = '2025-01-16 08:30:00+09';
SELECT run_time() = '2025-01-15 23:30:00+00' AS explicit_zone_kept, run_date();
SET pg_idempotent.run_time = 'infinity';
SELECT run_time(), run_date();
SET pg_idempotent.run_time = '1999-12-31 23:00:00-02';
SELECT run_date() AS before_2000;
RESET TimeZone;

-- RESET makes it unset again; SET LOCAL and set_config(..., true) last one
-- transaction, as an orchestrator's run would use them
RESET pg_idempotent.run_time;
SELECT pg_temp.err('SELECT run_time()');
BEGIN;
SELECT set_config('pg_idempotent.run_time', '2025-01-15 00:00:00+00', true) IS NOT NULL AS set_for_this_run;
SELECT run_time() = '2025-01-15 00:00:00+00' AS inside_the_run;
COMMIT;
SELECT pg_temp.err('SELECT run_time()');

-- the point: DEFAULT run_time() loads the same batch identically in two
-- transactions seconds apart, where DEFAULT now() does not
CREATE TABLE loaded_rt (id int, loaded_at timestamptz DEFAULT run_time());
CREATE TABLE loaded_now (id int, loaded_at timestamptz DEFAULT now());
SET pg_idempotent.run_time = '2025-01-15 00:00:00+00';
BEGIN;
INSERT INTO loaded_rt (id) SELECT g FROM generate_series(1, 5) g;
INSERT INTO loaded_now (id) SELECT g FROM generate_series(1, 5) g;
COMMIT;
SELECT table_fingerprint('loaded_rt') AS rt1, table_fingerprint('loaded_now') AS now1 \gset
SELECT pg_sleep(1.1);
BEGIN;
TRUNCATE loaded_rt, loaded_now;
INSERT INTO loaded_rt (id) SELECT g FROM generate_series(1, 5) g;
INSERT INTO loaded_now (id) SELECT g FROM generate_series(1, 5) g;
COMMIT;
SELECT table_fingerprint('loaded_rt') = :'rt1' AS run_time_load_is_repeatable,
	   table_fingerprint('loaded_now') = :'now1' AS now_load_is_repeatable;

-- assert_idempotent runs both runs in the caller's transaction, where now()
-- stands still; the clock itself (clock_timestamp) is what it catches, and
-- the same statement with run_time() passes
CREATE TABLE loaded_clock (id int PRIMARY KEY, loaded_at timestamptz DEFAULT clock_timestamp());
SELECT pg_temp.err($$SELECT assert_idempotent(
	'DELETE FROM loaded_clock; INSERT INTO loaded_clock (id) SELECT g FROM generate_series(1, 5) g',
	'loaded_clock')$$);
ALTER TABLE loaded_clock ALTER loaded_at SET DEFAULT run_time();
SELECT pg_temp.err($$SELECT assert_idempotent(
	'DELETE FROM loaded_clock; INSERT INTO loaded_clock (id) SELECT g FROM generate_series(1, 5) g',
	'loaded_clock')$$);
RESET pg_idempotent.run_time;

-- the module reserves its prefix: a mistyped setting is an error, not a
-- placeholder that silently leaves run_time() unset
SELECT pg_temp.err($$SET pg_idempotent.runtime = '2025-01-15 00:00:00+00'$$);
SELECT pg_temp.err($$SELECT set_config('pg_idempotent.run_tme', '2025-01-15', false)$$);
SELECT pg_temp.err($$SET pg_idempotent.run_time = '2025-01-15 00:00:00+00'$$);
RESET pg_idempotent.run_time;
