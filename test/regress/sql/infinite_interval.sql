-- Infinite intervals.  PostgreSQL 17 and later take 'infinity' as an
-- interval; wherever a ledger takes an interval it refuses one, as it
-- refuses a negative one: a lease that never ends, a retry never due or a
-- pruning horizon at the start of time would leave keys stuck with nothing
-- to say so.  Up to 16 the literal is not an interval at all.  This is a
-- real difference between majors, so it lives in a file of its own with two
-- expected files: infinite_interval.out (17 and later) and
-- infinite_interval_1.out (15 and 16).
\i test/regress/sql/include/err.sql
SELECT pg_temp.err($$SELECT ledger_create('infinite_l', lease => 'infinity')$$);
SELECT pg_temp.err($$SELECT ledger_create('infinite_l', retention => 'infinity')$$);
SELECT pg_temp.err($$SELECT ledger_create('infinite_l', retry_backoff => 'infinity')$$);
SELECT pg_temp.err($$SELECT ledger_create('infinite_l', retry_backoff_max => 'infinity')$$);
SELECT pg_temp.err($$SELECT ledger_create('infinite_l', lease => '-infinity')$$);
-- nothing was created by the refused calls
SELECT count(*) AS ledgers FROM pgi_ledger WHERE name = 'infinite_l';

SELECT ledger_create('infinite_l');
SELECT status, token AS first_token FROM ledger_claim('infinite_l', 'k') \gset
SELECT pg_temp.err(format($$SELECT ledger_heartbeat('infinite_l', 'k', %s, extend => 'infinity')$$, :first_token));
SELECT pg_temp.err($$SELECT ledger_prune('infinite_l', older_than => 'infinity')$$);
SELECT ledger_drop('infinite_l');
