-- Logical run time: "use the execution time from the orchestrator, not the
-- current time".  loaded_at DEFAULT run_time() writes the run's time on
-- every retry of that run, where DEFAULT now() writes a new one each time.

\echo
\echo '== A daily load stamped with run_time(), retried a minute later'
CREATE TABLE page_views (day date, page text, views int, loaded_at timestamptz DEFAULT run_time(),
						 PRIMARY KEY (day, page));
CREATE TABLE page_views_in (day date, page text, views int);
INSERT INTO page_views_in VALUES ('2025-01-14', '/home', 120), ('2025-01-14', '/pricing', 30);

-- what the orchestrator does at the start of the run (Airflow's ts, dbt's run_started_at)
SET pg_idempotent.run_time = '2025-01-15 00:00:00+00';
SELECT * FROM idempotent_upsert('page_views', 'page_views_in');
SELECT table_fingerprint('page_views') AS first_try \gset
-- the retry: a new transaction, a later clock, the same run
TRUNCATE page_views;
SELECT * FROM idempotent_upsert('page_views', 'page_views_in');
SELECT table_fingerprint('page_views') AS retry \gset
SELECT day, page, views, loaded_at AT TIME ZONE 'UTC' AS loaded_at_utc, run_date() FROM page_views ORDER BY page;
SELECT :'first_try' = :'retry' AS same_table \gset
\if :same_table
\echo 'Same fingerprint: the retry wrote the same loaded_at.'
\else
\echo 'DIFFERENT fingerprints!'
SELECT 1 / 0;
\endif
RESET pg_idempotent.run_time;
