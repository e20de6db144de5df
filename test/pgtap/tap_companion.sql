-- pg_idempotent_tap: is_idempotent and isnt_idempotent as pgTAP assertions.
-- Each is checked both ways with pgTAP's own check_test, so a test that
-- cannot fail would show here.

\ir include/begin.sql
CREATE EXTENSION IF NOT EXISTS pg_idempotent_tap;

SELECT plan(12);

CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE src (id int, v text);
INSERT INTO src VALUES (1, 'a'), (2, 'b');
CREATE TABLE log (v text);

SELECT * FROM check_test(
	is_idempotent($$SELECT * FROM idempotent_upsert('t', 'src')$$, ARRAY['t'::regclass], 'the upsert is idempotent'),
	true, 'is_idempotent passes an upsert', 'the upsert is idempotent', '');
SELECT * FROM check_test(
	is_idempotent('INSERT INTO log SELECT v FROM src', ARRAY['log'::regclass], 'a blind insert'),
	false, 'is_idempotent fails a blind insert', 'a blind insert',
	'Table "log" changed on the second run.');
SELECT * FROM check_test(
	isnt_idempotent('UPDATE t SET v = v || ''!''', ARRAY['t'::regclass], 'appending is not idempotent'),
	true, 'isnt_idempotent passes an append', 'appending is not idempotent', '');
SELECT * FROM check_test(
	isnt_idempotent('DELETE FROM log', ARRAY['log'::regclass]),
	false, 'isnt_idempotent fails a delete', 'statement is not idempotent',
	'A second run left every table unchanged.');

SELECT * FROM finish();
ROLLBACK;
