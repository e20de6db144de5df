-- Exactly-once effects from at-least-once delivery: a payments consumer
-- reads messages that the broker may deliver twice (or a hundred times),
-- and must apply each payment to the balances once.

\echo
\echo '== A ledger, an inbox with redelivered messages, and the balances'
SELECT ledger_create('payments');
CREATE TABLE inbox (seq bigserial PRIMARY KEY, msg_id text NOT NULL, account int NOT NULL, amount numeric NOT NULL);
CREATE TABLE balances (account int PRIMARY KEY, total numeric NOT NULL);
-- 1,000 payments, each delivered one to three times
INSERT INTO inbox (msg_id, account, amount)
SELECT 'msg-' || g, g % 10, g % 7 + 1
FROM generate_series(1, 1000) g, generate_series(1, 1 + g % 3) copies
ORDER BY random();
SELECT count(*) AS deliveries, count(DISTINCT msg_id) AS payments FROM inbox;

\echo
\echo '== The consumer: record the message id and apply the payment in one transaction'
CREATE FUNCTION consume(from_seq bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	m record;
	applied bigint := 0;
BEGIN
	FOR m IN SELECT * FROM inbox WHERE seq > from_seq ORDER BY seq LOOP
		IF ledger_record('payments', m.msg_id) THEN
			INSERT INTO balances VALUES (m.account, m.amount)
			ON CONFLICT (account) DO UPDATE SET total = balances.total + EXCLUDED.total;
			applied := applied + 1;
		END IF;
	END LOOP;
	RETURN applied;
END $$;
SELECT consume(0) AS payments_applied;
SELECT sum(total) AS total_of_balances FROM balances;
SELECT table_fingerprint('balances') AS after_first_pass \gset

\echo
\echo '== The consumer crashes and its offset is lost: it replays the whole inbox'
SELECT consume(0) AS payments_applied_on_replay;
SELECT :'after_first_pass' = table_fingerprint('balances') AS balances_unchanged \gset
\if :balances_unchanged
\echo 'Same balances: every payment was applied exactly once.'
\else
\echo 'DIFFERENT balances: a payment was applied twice!'
SELECT 1 / 0;
\endif
SELECT (SELECT sum(amount) FROM (SELECT DISTINCT msg_id, amount FROM inbox) p) = (SELECT sum(total) FROM balances)
	AS balances_equal_the_distinct_payments;
