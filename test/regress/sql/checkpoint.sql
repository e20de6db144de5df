-- Checkpoints: named monotonic positions, written in the caller's transaction.

-- the first advance creates the checkpoint; a position only moves forward
SELECT checkpoint_get('orders-consumer') AS never_advanced;
SELECT checkpoint_advance('orders-consumer', 100) AS first;
SELECT checkpoint_advance('orders-consumer', 100) AS same, checkpoint_advance('orders-consumer', 99) AS behind;
SELECT checkpoint_advance('orders-consumer', 150) AS forward;
SELECT checkpoint_get('orders-consumer');

-- transactional: the position commits or rolls back with the data it covers
BEGIN;
SELECT checkpoint_advance('orders-consumer', 200);
SELECT checkpoint_get('orders-consumer') AS inside;
ROLLBACK;
SELECT checkpoint_get('orders-consumer') AS after_rollback;
BEGIN;
SAVEPOINT s;
SELECT checkpoint_advance('orders-consumer', 300);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT checkpoint_get('orders-consumer') AS after_savepoint_rollback;

-- checkpoints are separate; negative and extreme positions are positions too
SELECT checkpoint_advance('other', -5), checkpoint_advance('other', -9223372036854775808),
	checkpoint_advance('other', 9223372036854775807);
SELECT checkpoint_get('other');
SELECT checkpoint_get('ORDERS-CONSUMER') AS names_are_exact;

-- with a fingerprint: the same position again with the same batch is a no-op
SELECT checkpoint_advance('fp', 10, '\x0a') AS first, checkpoint_advance('fp', 10, '\x0a') AS replay;
SELECT checkpoint_advance('fp', 20, '\x14') AS forward, checkpoint_advance('fp', 15, '\xff') AS behind;
SELECT position, fingerprint FROM pgi_checkpoint WHERE name = 'fp';
-- the two-argument form is unchanged: it moves on and keeps no fingerprint for the new position
SELECT checkpoint_advance('fp', 30) AS forward, checkpoint_advance('fp', 30, '\x1e') AS unknown_fingerprint;
SELECT position, fingerprint FROM pgi_checkpoint WHERE name = 'fp';

-- errors, with their SQLSTATE
\i test/regress/sql/include/err.sql
\pset format unaligned
\pset tuples_only on
-- a replayed batch whose contents changed: 22023 naming the checkpoint and position
SELECT checkpoint_advance('fp', 40, '\x28');
SELECT pg_temp.err($$SELECT checkpoint_advance('fp', 40, '\x29')$$);
-- NULL arguments: 22004
SELECT pg_temp.err($$SELECT checkpoint_advance(NULL, 1)$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('fp', NULL)$$);
SELECT pg_temp.err($$SELECT checkpoint_advance('fp', 50, NULL)$$);
SELECT pg_temp.err($$SELECT checkpoint_get(NULL)$$);
-- an empty name: 22023
SELECT pg_temp.err($$SELECT checkpoint_advance('', 1)$$);
-- none of them wrote anything
SELECT name, position, fingerprint FROM pgi_checkpoint WHERE name IN ('fp', 'orders-consumer', 'other') ORDER BY name;
