-- A claimed work queue: jobs whose effect leaves the database (an e-mail, an
-- HTTP call) are handed to workers with a lease and a fencing token; a
-- worker that stalls loses its job to the next one, and its late
-- completion changes nothing.

\echo
\echo '== A queue of 5 e-mails, with leases of 50 ms so the demo does not wait'
SELECT ledger_create('emails', lease => '50 milliseconds', max_attempts => 3);
SELECT ledger_enqueue('emails', ARRAY['welcome:1', 'welcome:2', 'welcome:3', 'invoice:7', 'invoice:8']) AS enqueued;
SELECT ledger_enqueue('emails', ARRAY['welcome:1', 'welcome:2']) AS enqueued_again;

\echo
\echo '== Worker A claims two jobs and stalls; worker B claims the rest'
CREATE TEMP TABLE worker_a AS SELECT * FROM ledger_claim_next('emails', 2);
SELECT key, token, attempts FROM worker_a ORDER BY key;
CREATE TEMP TABLE worker_b AS SELECT * FROM ledger_claim_next('emails', 10);
SELECT key, token, attempts FROM worker_b ORDER BY key;
SELECT ledger_complete('emails', key, token, '{"sent": true}') AS b_completed FROM worker_b ORDER BY key;

\echo
\echo '== A''s leases run out; worker C takes its jobs over with greater tokens and completes them'
SELECT pg_sleep(0.1);
CREATE TEMP TABLE worker_c AS SELECT * FROM ledger_claim_next('emails', 10);
SELECT c.key, a.token AS stale_token, c.token AS new_token FROM worker_c c JOIN worker_a a USING (key) ORDER BY key;
SELECT ledger_complete('emails', key, token, '{"sent": true}') AS c_completed FROM worker_c ORDER BY key;

\echo
\echo '== A wakes up and completes with its stale tokens: nothing changes'
SELECT ledger_complete('emails', key, token, '{"sent": "twice?"}') AS a_completed FROM worker_a ORDER BY key;
SELECT * FROM ledger_stats('emails') ORDER BY status;
\echo
\echo '== A retry of a finished job gets the stored result back, as the first attempt answered'
SELECT status, result FROM ledger_claim('emails', 'welcome:1');

\echo
\echo '== Long work keeps its claim with heartbeats: D claims a job and heartbeats past its lease'
SELECT ledger_enqueue('emails', ARRAY['report:1']) AS enqueued;
CREATE TEMP TABLE worker_d AS SELECT * FROM ledger_claim_next('emails', 1);
SELECT pg_sleep(0.04);
SELECT ledger_heartbeat('emails', key, token, '1 hour') AS d_heartbeat FROM worker_d;
SELECT pg_sleep(0.06);
SELECT count(*) AS jobs_e_could_claim FROM ledger_claim_next('emails', 10);
SELECT ledger_complete('emails', key, token, '{"rows": 42}') AS d_completed FROM worker_d;
