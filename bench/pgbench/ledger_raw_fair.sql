\set k random(1, 1000000000000)
INSERT INTO raw_fair (key) VALUES ('k' || :k) ON CONFLICT DO NOTHING;
