\set k random(1, 1000000000000)
INSERT INTO raw_key (ledger_id, key, status, token, created_at, updated_at) VALUES (1, 'k' || :k, 'done', NULL, clock_timestamp(), clock_timestamp()) ON CONFLICT (ledger_id, key) DO NOTHING;
