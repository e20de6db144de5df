-- A target distributed by Citus (listed in pg_catalog.pg_dist_partition)
-- is upserted without the lock pass, whose SELECT ... FOR UPDATE Citus
-- refuses over several shards; a DEBUG1 line says so.  Citus is not
-- installed here: a stand-in catalog with the one column read makes the
-- target look distributed, as Citus's own catalog would.
CREATE TABLE citus_t (id int PRIMARY KEY, v text);
INSERT INTO citus_t VALUES (1, 'old'), (2, 'old');
CREATE TABLE citus_src (id int, v text);
INSERT INTO citus_src VALUES (1, 'new'), (2, 'old'), (3, 'new');

CREATE TABLE citus_dist (LIKE citus_t INCLUDING ALL);
INSERT INTO citus_dist SELECT * FROM citus_t;

-- without Citus: no line
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('citus_t', 'citus_src');
RESET client_min_messages;

SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass);
RESET allow_system_table_mods;
INSERT INTO pg_catalog.pg_dist_partition VALUES ('citus_dist');

-- distributed: the line, and the same result as a local table gets
SET client_min_messages = debug1;
SELECT * FROM idempotent_upsert('citus_dist', 'citus_src');
RESET client_min_messages;
SELECT * FROM citus_dist EXCEPT SELECT * FROM citus_t;
SELECT * FROM citus_dist ORDER BY id;
-- a replay writes nothing there either
SELECT * FROM idempotent_upsert('citus_dist', 'citus_src');

SET allow_system_table_mods = on;
DROP TABLE pg_catalog.pg_dist_partition;
RESET allow_system_table_mods;
DROP TABLE citus_t, citus_dist, citus_src;
