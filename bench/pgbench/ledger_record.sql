\set k random(1, 1000000000000)
SELECT ledger_record('rec', 'k' || :k);
