-- idempotent_upsert: behaviour
--
-- Each block says what it shows.  Counts are (inserted, updated, unchanged,
-- stale, duplicates).

CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id int,
	amount numeric(12,2),
	order_date date,
	status text
);
CREATE TABLE staging (LIKE orders);
INSERT INTO staging
SELECT g, g % 7, g * 1.25, date '2025-01-01' + g % 5, 'new'
FROM generate_series(1, 20) g;

-- a first load inserts every row
SELECT * FROM idempotent_upsert('orders', 'staging');

-- a replay changes nothing, writes nothing and says so
SELECT n_tup_upd AS updates_before FROM pg_stat_xact_user_tables WHERE relname = 'orders' \gset
SELECT * FROM idempotent_upsert('orders', 'staging');
SELECT n_tup_upd - :updates_before AS tuples_updated_by_replay
FROM pg_stat_xact_user_tables WHERE relname = 'orders';

-- a replay takes no row locks: no row carries a locker in xmax afterwards
-- (test/isolation/specs/upsert-replay-no-locks.spec shows it is not blocked)
SELECT * FROM idempotent_upsert('orders', 'staging');
SELECT count(*) AS rows_locked_by_replay FROM orders WHERE xmax <> '0'::xid;

-- changed rows are updated, new rows inserted, the rest left alone
UPDATE staging SET status = 'paid' WHERE id <= 3;
INSERT INTO staging VALUES (21, 1, 9.99, '2025-02-01', 'new');
SELECT * FROM idempotent_upsert('orders', 'staging');
SELECT * FROM orders WHERE id <= 3 OR id = 21 ORDER BY id;
SELECT * FROM idempotent_upsert('orders', 'staging');

-- dry_run reports the same counts and changes nothing
UPDATE staging SET amount = amount + 1 WHERE id = 5;
INSERT INTO staging VALUES (22, 2, 1, '2025-02-02', 'new');
SELECT * FROM idempotent_upsert('orders', 'staging', dry_run => true);
SELECT count(*) AS rows, sum(amount) AS total FROM orders;
SELECT * FROM idempotent_upsert('orders', 'staging');
SELECT count(*) AS rows, sum(amount) AS total FROM orders;

-- "unchanged" means identical: 1.0 -> 1.00, -0 -> 0 and 'A' -> 'a' under a
-- case-insensitive collation are updates, so the table ends holding exactly
-- what the source says
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE measures (id int PRIMARY KEY, n numeric, f float8, label text COLLATE ci);
INSERT INTO measures VALUES (1, 1.0, 0, 'A');
CREATE TEMP TABLE measures_in (id int, n numeric, f float8, label text COLLATE ci);
INSERT INTO measures_in VALUES (1, 1.00, 0, 'A');
SELECT * FROM idempotent_upsert('measures', 'measures_in');
UPDATE measures_in SET f = '-0';
SELECT * FROM idempotent_upsert('measures', 'measures_in');
UPDATE measures_in SET label = 'a';
SELECT * FROM idempotent_upsert('measures', 'measures_in');
SELECT id, n::text, f::text, label FROM measures;
SELECT * FROM idempotent_upsert('measures', 'measures_in');

-- types with no equality operator compare too
CREATE TABLE shapes (id int PRIMARY KEY, doc json, p point);
CREATE TEMP TABLE shapes_in (id int, doc json, p point);
INSERT INTO shapes_in VALUES (1, '{"a": 1}', '(1,2)'), (2, '{"b":2}', '(0,0)');
SELECT * FROM idempotent_upsert('shapes', 'shapes_in');
SELECT * FROM idempotent_upsert('shapes', 'shapes_in');
UPDATE shapes_in SET doc = '{"a":1}' WHERE id = 1;
SELECT * FROM idempotent_upsert('shapes', 'shapes_in');
SELECT id, doc::text, p::text FROM shapes ORDER BY id;

-- the source may omit columns: inserts take their defaults, updates leave
-- them alone; a replay draws no value from the sequence
CREATE TABLE customers (
	email text PRIMARY KEY,
	name text,
	serial_no bigserial,
	created text DEFAULT 'default'
);
CREATE TEMP TABLE customers_in (email text, name text);
INSERT INTO customers_in VALUES ('a@x', 'Ann'), ('b@x', 'Bob');
SELECT * FROM idempotent_upsert('customers', 'customers_in');
UPDATE customers SET created = 'kept' WHERE email = 'a@x';
UPDATE customers_in SET name = 'Annie' WHERE email = 'a@x';
INSERT INTO customers_in VALUES ('c@x', 'Cy');
SELECT * FROM idempotent_upsert('customers', 'customers_in');
SELECT * FROM idempotent_upsert('customers', 'customers_in');
SELECT * FROM idempotent_upsert('customers', 'customers_in');
SELECT * FROM customers ORDER BY email;
-- three rows inserted in all, so the sequence has handed out exactly three
SELECT last_value FROM customers_serial_no_seq;

-- version_column: newer versions win, equal ones are unchanged, older ones
-- are stale and cannot roll a row back
CREATE TABLE events (id int PRIMARY KEY, version int, payload text);
CREATE TEMP TABLE events_in (id int, version int, payload text);
INSERT INTO events_in VALUES (1, 1, 'one'), (2, 5, 'two'), (3, 1, 'three');
SELECT * FROM idempotent_upsert('events', 'events_in', version_column => 'version');
TRUNCATE events_in;
INSERT INTO events_in VALUES (1, 2, 'one v2'), (2, 4, 'two v4 (late)'), (3, 1, 'three, same version');
SELECT * FROM idempotent_upsert('events', 'events_in', version_column => 'version');
SELECT * FROM events ORDER BY id;

-- duplicates in the batch with on_duplicate => 'last': the greatest version
-- of each key wins and the others are counted
TRUNCATE events_in;
INSERT INTO events_in VALUES (1, 7, 'one v7'), (1, 6, 'one v6'), (1, 3, 'one v3'), (4, 1, 'four');
SELECT * FROM idempotent_upsert('events', 'events_in', version_column => 'version', on_duplicate => 'last');
SELECT * FROM events ORDER BY id;
-- identical duplicate rows collapse even without a version column
TRUNCATE events_in;
INSERT INTO events_in VALUES (5, 1, 'five'), (5, 1, 'five');
SELECT * FROM idempotent_upsert('events', 'events_in', on_duplicate => 'last');
SELECT * FROM idempotent_upsert('events', 'events_in', on_duplicate => 'last');

-- the key: an explicit one, a unique index when there is no primary key, and
-- a composite one
CREATE TABLE daily (day date, shop int, sales numeric, UNIQUE (day, shop));
CREATE TEMP TABLE daily_in (shop int, day date, sales numeric);
INSERT INTO daily_in VALUES (1, '2025-01-01', 10), (2, '2025-01-01', 20), (1, '2025-01-02', 30);
SELECT * FROM idempotent_upsert('daily', 'daily_in');
UPDATE daily_in SET sales = 11 WHERE shop = 1 AND day = '2025-01-01';
SELECT * FROM idempotent_upsert('daily', 'daily_in', key => ARRAY['shop', 'day']);
SELECT * FROM daily ORDER BY day, shop;

-- a source of another type is cast to the target's (int -> bigint,
-- numeric rounded to the column's scale)
CREATE TEMP TABLE orders_wide (id int, amount numeric);
INSERT INTO orders_wide VALUES (1, 1.254), (2, 2.50);
SELECT * FROM idempotent_upsert('orders', 'orders_wide');
SELECT id, amount FROM orders WHERE id IN (1, 2) ORDER BY id;
SELECT * FROM idempotent_upsert('orders', 'orders_wide');

-- views and materialized views as sources
CREATE VIEW staging_paid AS SELECT id, status FROM staging WHERE status = 'paid';
SELECT * FROM idempotent_upsert('orders', 'staging_paid');
CREATE MATERIALIZED VIEW staging_mv AS SELECT id, customer_id FROM staging;
SELECT * FROM idempotent_upsert('orders', 'staging_mv');

-- odd names: schemas, quotes, spaces, upper case, reserved words, 63 bytes
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Select ""Table""" ("Key Col" int PRIMARY KEY, "order" text, "user" text);
CREATE TEMP TABLE "odd in" ("Key Col" int, "order" text, "user" text);
INSERT INTO "odd in" VALUES (1, 'a', 'b'), (2, 'c', 'd');
SELECT * FROM idempotent_upsert('"Odd Schema"."Select ""Table"""', '"odd in"');
SELECT * FROM idempotent_upsert('"Odd Schema"."Select ""Table"""', '"odd in"');
CREATE TABLE t234567890123456789012345678901234567890123456789012345678901 (
	c234567890123456789012345678901234567890123456789012345678901 int PRIMARY KEY,
	v int);
SELECT * FROM idempotent_upsert_query('t234567890123456789012345678901234567890123456789012345678901',
	'SELECT 1 AS c234567890123456789012345678901234567890123456789012345678901, 2 AS v');

-- a partitioned target
CREATE TABLE sales (day date, shop int, amount numeric, PRIMARY KEY (day, shop)) PARTITION BY RANGE (day);
CREATE TABLE sales_jan PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE sales_feb PARTITION OF sales FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
SELECT * FROM idempotent_upsert_query('sales',
	$$SELECT d::date AS day, s AS shop, 1.5 AS amount
	  FROM generate_series('2025-01-30'::date, '2025-02-02', '1 day') d, generate_series(1, 2) s$$);
SELECT * FROM idempotent_upsert_query('sales',
	$$SELECT d::date AS day, s AS shop, 1.5 AS amount
	  FROM generate_series('2025-01-30'::date, '2025-02-02', '1 day') d, generate_series(1, 2) s$$);
SELECT tableoid::regclass AS part, count(*) FROM sales GROUP BY 1 ORDER BY 1;

-- idempotent_upsert_query: any single SELECT, a trailing semicolon allowed
SELECT * FROM idempotent_upsert_query('orders', 'SELECT id, ''query'' AS status FROM staging WHERE id <= 2;');
SELECT id, status FROM orders WHERE id <= 2 ORDER BY id;
SELECT * FROM idempotent_upsert_query('orders', 'SELECT * FROM (VALUES (3::bigint, ''values'')) v(id, status)');

-- idempotent_upsert_json: the columns are the union of the objects' keys; a
-- key missing from an object is null in that row
SELECT * FROM idempotent_upsert_json('orders',
	'[{"id": 100, "status": "json", "amount": "1.5"}, {"id": 101, "status": "json"}]');
SELECT * FROM idempotent_upsert_json('orders',
	'[{"id": 100, "status": "json", "amount": "1.5"}, {"id": 101, "status": "json"}]');
SELECT id, amount, status FROM orders WHERE id >= 100 ORDER BY id;
-- objects of one shape are read once for their keys; a later object with
-- another key of the same length in as many keys (104: amount, where the
-- others have status), or with one key more (105), still adds its key to
-- the columns
SELECT * FROM idempotent_upsert_json('orders',
	'[{"id": 102, "status": "s"}, {"id": 103, "status": "s"}, {"id": 104, "amount": "2.5"},
	  {"id": 105, "status": "s", "customer_id": 7}, {"id": 106, "status": "s"}]');
SELECT id, customer_id, amount, status FROM orders WHERE id >= 102 ORDER BY id;
SELECT * FROM idempotent_upsert_json('orders', '[]');

-- a hostile search_path cannot change what the generated SQL means: an
-- earlier schema with look-alike operators and functions is ignored
CREATE SCHEMA evil;
CREATE FUNCTION evil.always_true(bigint, bigint) RETURNS boolean
	LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.always_true);
CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE sql AS 'SELECT 42::bigint';
CREATE FUNCTION evil.record_image_ne(record, record) RETURNS boolean
	LANGUAGE plpgsql AS 'BEGIN RETURN true; END';
SET search_path = evil, public;
SELECT * FROM idempotent_upsert('orders', 'staging');
UPDATE staging SET status = 'shipped' WHERE id = 4;
SELECT * FROM idempotent_upsert('orders', 'staging');
RESET search_path;
SELECT id, status FROM orders WHERE id BETWEEN 3 AND 5 ORDER BY id;

-- the upsert is part of the caller's transaction: a rollback undoes it
BEGIN;
INSERT INTO staging VALUES (500, 1, 1, '2025-03-01', 'rolled back');
SELECT * FROM idempotent_upsert('orders', 'staging');
ROLLBACK;
SELECT count(*) AS rolled_back_rows FROM orders WHERE id = 500;

-- a temp table as the target
CREATE TEMP TABLE scratch (id int PRIMARY KEY, v text);
SELECT * FROM idempotent_upsert_query('scratch', 'SELECT g AS id, ''v'' || g AS v FROM generate_series(1, 3) g');
SELECT * FROM idempotent_upsert_query('scratch', 'SELECT g AS id, ''v'' || g AS v FROM generate_series(1, 3) g');

-- a first load with identical duplicate rows and on_duplicate => 'last'
-- folds them, as into a table that has rows
CREATE TABLE events_copy (LIKE events INCLUDING ALL);
SELECT * FROM idempotent_upsert('events_copy', 'events_in', on_duplicate => 'last');
SELECT * FROM events_copy;

-- a key equal to the table's but of another image (numeric 1.5 and 1.50,
-- 2 and 2.0) is written as the source has it, and then left alone
CREATE TABLE num_keyed (k numeric PRIMARY KEY, v text);
INSERT INTO num_keyed VALUES (1.5, 'a'), (2, 'b');
SELECT * FROM idempotent_upsert_query('num_keyed', 'SELECT 1.50 AS k, ''a''::text AS v UNION ALL SELECT 2.0, ''b''');
SELECT k::text, v FROM num_keyed ORDER BY k;
SELECT * FROM idempotent_upsert_query('num_keyed', 'SELECT 1.50 AS k, ''a''::text AS v UNION ALL SELECT 2.0, ''b''');

-- a BEFORE INSERT trigger that skips rows: the counts say what was inserted
CREATE TABLE skipping (id int PRIMARY KEY, v text);
CREATE FUNCTION skip_marked() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN IF NEW.v = 'skip' THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER skip_marked BEFORE INSERT ON skipping FOR EACH ROW EXECUTE FUNCTION skip_marked();
INSERT INTO skipping VALUES (1, 'one');
SELECT * FROM idempotent_upsert_query('skipping', 'SELECT * FROM (VALUES (1, ''uno''), (2, ''two''), (3, ''skip'')) v(id, v)');
SELECT * FROM skipping ORDER BY id;
-- and a BEFORE UPDATE trigger that skips one: the row is locked but not
-- updated, which is the trigger's doing, not a concurrent change (no retry:
-- the call counts the row unchanged and returns)
CREATE TRIGGER skip_marked_update BEFORE UPDATE ON skipping FOR EACH ROW EXECUTE FUNCTION skip_marked();
SELECT * FROM idempotent_upsert_query('skipping', 'SELECT * FROM (VALUES (1, ''skip''), (2, ''deux'')) v(id, v)');
SELECT * FROM skipping ORDER BY id;

-- rows compare by binary image column by column (_images_differ) up to 50
-- columns, and as ROW()s beyond: both ways, a replay is unchanged and one
-- changed column an update, by image (1.0 -> 1.00, a long value out of line)
DO $$
BEGIN
	EXECUTE 'CREATE TABLE wide50 (id int PRIMARY KEY, n numeric, t text, '
		|| (SELECT string_agg(format('c%s int', g), ', ') FROM generate_series(4, 50) g) || ')';
	EXECUTE 'CREATE TABLE wide51 (id int PRIMARY KEY, n numeric, t text, '
		|| (SELECT string_agg(format('c%s int', g), ', ') FROM generate_series(4, 51) g) || ')';
END $$;
CREATE TABLE wide50_in (LIKE wide50);
CREATE TABLE wide51_in (LIKE wide51);
INSERT INTO wide50_in (id, n, t, c50) SELECT g, 1.0, repeat('x', 10000), g FROM generate_series(1, 3) g;
INSERT INTO wide51_in (id, n, t, c51) SELECT g, 1.0, repeat('x', 10000), g FROM generate_series(1, 3) g;
SELECT * FROM idempotent_upsert('wide50', 'wide50_in');
SELECT * FROM idempotent_upsert('wide51', 'wide51_in');
SELECT * FROM idempotent_upsert('wide50', 'wide50_in');
SELECT * FROM idempotent_upsert('wide51', 'wide51_in');
UPDATE wide50_in SET n = 1.00 WHERE id = 1;
UPDATE wide50_in SET t = repeat('x', 9999) || 'y' WHERE id = 2;
UPDATE wide50_in SET c50 = NULL WHERE id = 3;
UPDATE wide51_in SET n = 1.00 WHERE id = 1;
UPDATE wide51_in SET t = repeat('x', 9999) || 'y' WHERE id = 2;
UPDATE wide51_in SET c51 = NULL WHERE id = 3;
SELECT * FROM idempotent_upsert('wide50', 'wide50_in');
SELECT * FROM idempotent_upsert('wide51', 'wide51_in');
SELECT id, n::text, right(t, 1), c50 FROM wide50 ORDER BY id;
SELECT id, n::text, right(t, 1), c51 FROM wide51 ORDER BY id;
SELECT * FROM idempotent_upsert('wide50', 'wide50_in');
SELECT * FROM idempotent_upsert('wide51', 'wide51_in');
-- the helper itself: no VARIADIC array, an even number of arguments
SELECT pgi_internal._images_differ(VARIADIC ARRAY[1, 2]);
SELECT pgi_internal._images_differ(1, 2, 3);
