/* pg_idempotent 0.1.0: install script */

\echo Use "CREATE EXTENSION pg_idempotent" to load this file. \quit

/*
 * Every function is SECURITY INVOKER (the default) and runs inside the
 * caller's transaction.  Functions that take user arguments are not STRICT:
 * a NULL argument is reported with SQLSTATE 22004 naming the argument,
 * rather than silently returning nothing.
 */

-- 1. Deterministic keys

CREATE FUNCTION idempotent_key(VARIADIC "any")
RETURNS pg_catalog.uuid
AS 'MODULE_PATHNAME', 'pgi_idempotent_key'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION idempotent_key("any") IS
'deterministic UUID of its arguments: settings-independent, unambiguous, pinned across versions';

CREATE FUNCTION stable_bucket(key "any", buckets pg_catalog.int4)
RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'pgi_stable_bucket'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION stable_bucket("any", pg_catalog.int4) IS
'deterministic bucket 0..buckets-1 of a value, from the idempotent_key encoding';

-- 2. Upsert

CREATE FUNCTION idempotent_upsert(target pg_catalog.regclass,
								  source pg_catalog.regclass,
								  key pg_catalog.text[] DEFAULT NULL,
								  version_column pg_catalog.text DEFAULT NULL,
								  on_duplicate pg_catalog.text DEFAULT 'error',
								  dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (inserted pg_catalog.int8, updated pg_catalog.int8,
			   unchanged pg_catalog.int8, stale pg_catalog.int8,
			   duplicates pg_catalog.int8)
AS 'MODULE_PATHNAME', 'pgi_idempotent_upsert'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION idempotent_upsert(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text[], pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
'merge a staging relation into a table; a replay writes nothing';

CREATE FUNCTION idempotent_upsert_query(target pg_catalog.regclass,
										query pg_catalog.text,
										key pg_catalog.text[] DEFAULT NULL,
										version_column pg_catalog.text DEFAULT NULL,
										on_duplicate pg_catalog.text DEFAULT 'error',
										dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (inserted pg_catalog.int8, updated pg_catalog.int8,
			   unchanged pg_catalog.int8, stale pg_catalog.int8,
			   duplicates pg_catalog.int8)
AS 'MODULE_PATHNAME', 'pgi_idempotent_upsert_query'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION idempotent_upsert_query(pg_catalog.regclass, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
'merge the rows of one SELECT into a table; a replay writes nothing';

CREATE FUNCTION idempotent_upsert_json(target pg_catalog.regclass,
									   rows pg_catalog.jsonb,
									   key pg_catalog.text[] DEFAULT NULL,
									   version_column pg_catalog.text DEFAULT NULL,
									   on_duplicate pg_catalog.text DEFAULT 'error',
									   dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (inserted pg_catalog.int8, updated pg_catalog.int8,
			   unchanged pg_catalog.int8, stale pg_catalog.int8,
			   duplicates pg_catalog.int8)
AS 'MODULE_PATHNAME', 'pgi_idempotent_upsert_json'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION idempotent_upsert_json(pg_catalog.regclass, pg_catalog.jsonb, pg_catalog.text[], pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
'merge a JSON array of objects into a table; a replay writes nothing';

-- 6. Proving idempotency

/*
 * The per-row state of table_fingerprint: an order-free, multiplicity-aware
 * sum of row hashes.  Internal; table_fingerprint is the interface.
 */
CREATE FUNCTION _fingerprint_accum(pg_catalog.internal, record)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'pgi_fingerprint_accum'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION _fingerprint_combine(pg_catalog.internal, pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'pgi_fingerprint_combine'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION _fingerprint_serialize(pg_catalog.internal)
RETURNS pg_catalog.bytea
AS 'MODULE_PATHNAME', 'pgi_fingerprint_serialize'
LANGUAGE C STRICT PARALLEL SAFE;

CREATE FUNCTION _fingerprint_deserialize(pg_catalog.bytea, pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'pgi_fingerprint_deserialize'
LANGUAGE C STRICT PARALLEL SAFE;

CREATE FUNCTION _fingerprint_final(pg_catalog.internal)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_fingerprint_final'
LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE _fingerprint_agg(record) (
	SFUNC = _fingerprint_accum,
	STYPE = pg_catalog.internal,
	COMBINEFUNC = _fingerprint_combine,
	SERIALFUNC = _fingerprint_serialize,
	DESERIALFUNC = _fingerprint_deserialize,
	FINALFUNC = _fingerprint_final,
	FINALFUNC_EXTRA = false,
	PARALLEL = SAFE
);

COMMENT ON FUNCTION _fingerprint_accum(pg_catalog.internal, record) IS
'internal: adds one row''s hash to the state of _fingerprint_agg';
COMMENT ON FUNCTION _fingerprint_combine(pg_catalog.internal, pg_catalog.internal) IS
'internal: adds two partial states of _fingerprint_agg (parallel aggregation)';
COMMENT ON FUNCTION _fingerprint_serialize(pg_catalog.internal) IS
'internal: the state of _fingerprint_agg as bytes, for parallel workers';
COMMENT ON FUNCTION _fingerprint_deserialize(pg_catalog.bytea, pg_catalog.internal) IS
'internal: the state of _fingerprint_agg from bytes';
COMMENT ON FUNCTION _fingerprint_final(pg_catalog.internal) IS
'internal: the fingerprint text from the state of _fingerprint_agg';

COMMENT ON AGGREGATE _fingerprint_agg(record) IS
'internal: multiset hash of rows, used by table_fingerprint';

CREATE FUNCTION table_fingerprint(target pg_catalog.regclass)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_table_fingerprint'
LANGUAGE C STABLE;

COMMENT ON FUNCTION table_fingerprint(pg_catalog.regclass) IS
'order-free, settings-independent hash of a table''s rows as a multiset';

CREATE FUNCTION assert_idempotent(statement pg_catalog.text,
								  VARIADIC tables pg_catalog.regclass[])
RETURNS void
AS 'MODULE_PATHNAME', 'pgi_assert_idempotent'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION assert_idempotent(pg_catalog.text, pg_catalog.regclass[]) IS
'run a statement twice and fail if the second run changed any of the tables';

-- 7. Logical run time

CREATE FUNCTION run_time()
RETURNS pg_catalog.timestamptz
AS 'MODULE_PATHNAME', 'pgi_run_time'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION run_time() IS
'the logical time of the pipeline run (setting pg_idempotent.run_time), for use in place of now() in loaded data';

CREATE FUNCTION run_date()
RETURNS pg_catalog.date
AS 'MODULE_PATHNAME', 'pgi_run_date'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION run_date() IS
'the UTC calendar date of run_time()';

-- 4. The dedup ledger

/*
 * The ledger's tables belong to the extension and live in its schema.  They
 * are registered with pg_extension_config_dump, so pg_dump dumps their rows
 * (and the sequences' positions) and a restore keeps every ledger, key,
 * status, token and checkpoint.  Keys and names are compared in the "C"
 * collation: they are identifiers, and their unique indexes must not
 * depend on the database's locale or on the C library's version.
 *
 * Privileges: every function is SECURITY INVOKER and reads and writes these
 * tables as the caller, so a role needs grants on them (see README, "The
 * dedup ledger"); without them it gets 42501 from PostgreSQL itself.
 */
CREATE SEQUENCE pgi_ledger_id_seq AS pg_catalog.int4;

CREATE TABLE pgi_ledger (
	id pg_catalog.int4 PRIMARY KEY
		DEFAULT pg_catalog.nextval('@extschema@.pgi_ledger_id_seq'::pg_catalog.regclass),
	name pg_catalog.text COLLATE pg_catalog."C" NOT NULL UNIQUE
		CHECK (name OPERATOR(pg_catalog.<>) ''),
	lease pg_catalog.interval NOT NULL,
	max_attempts pg_catalog.int4 NOT NULL CHECK (max_attempts OPERATOR(pg_catalog.>=) 1),
	retention pg_catalog.interval NOT NULL,
	created_at pg_catalog.timestamptz NOT NULL
);

ALTER SEQUENCE pgi_ledger_id_seq OWNED BY pgi_ledger.id;

COMMENT ON TABLE pgi_ledger IS
'the ledgers: name, lease of a claim, attempts before a key is dead, retention of finished keys';

/* Fencing tokens: every claim draws one, so a key's tokens strictly increase. */
CREATE SEQUENCE pgi_ledger_token_seq AS pg_catalog.int8;

CREATE TABLE pgi_ledger_key (
	ledger_id pg_catalog.int4 NOT NULL,
	key pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
	/*
	 * pending, processing, done, failed or dead.  No CHECK constraint: the
	 * executor parses a table's CHECK constraints again for every statement,
	 * which alone cost ledger_record about 10%; the functions are the only
	 * writers the extension supports, and they write only these five.
	 */
	status pg_catalog.text NOT NULL,
	token pg_catalog.int8
		DEFAULT pg_catalog.nextval('@extschema@.pgi_ledger_token_seq'::pg_catalog.regclass),
	attempts pg_catalog.int4 NOT NULL DEFAULT 0,
	available_at pg_catalog.timestamptz,
	fingerprint pg_catalog.bytea,
	result pg_catalog.jsonb,
	error pg_catalog.text,
	created_at pg_catalog.timestamptz NOT NULL,
	updated_at pg_catalog.timestamptz NOT NULL,
	PRIMARY KEY (ledger_id, key)
);

COMMENT ON TABLE pgi_ledger_key IS
'the keys of every ledger with their status; available_at is when a key can next be claimed (NULL: never)';

/* ledger_claim_next: claimable keys of a ledger, oldest first */
CREATE INDEX pgi_ledger_key_available ON pgi_ledger_key (ledger_id, available_at)
	WHERE available_at IS NOT NULL;

/* ledger_prune: finished keys of a ledger, oldest first (ledger.c relies on this predicate) */
CREATE INDEX pgi_ledger_key_finished ON pgi_ledger_key (ledger_id, updated_at)
	WHERE status OPERATOR(pg_catalog.=) ANY ('{done,dead}'::pg_catalog.text[]);

SELECT pg_catalog.pg_extension_config_dump('pgi_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('pgi_ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('pgi_ledger_key', '');
SELECT pg_catalog.pg_extension_config_dump('pgi_ledger_token_seq', '');

CREATE FUNCTION ledger_create(name pg_catalog.text,
							  lease pg_catalog.interval DEFAULT '5 minutes',
							  max_attempts pg_catalog.int4 DEFAULT 5,
							  retention pg_catalog.interval DEFAULT '30 days')
RETURNS void
AS 'MODULE_PATHNAME', 'pgi_ledger_create'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_create(pg_catalog.text, pg_catalog.interval, pg_catalog.int4, pg_catalog.interval) IS
'create a ledger, or set an existing one''s lease, max_attempts and retention; idempotent';

CREATE FUNCTION ledger_drop(name pg_catalog.text)
RETURNS void
AS 'MODULE_PATHNAME', 'pgi_ledger_drop'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_drop(pg_catalog.text) IS
'drop a ledger and all its keys';

CREATE FUNCTION ledger_record(ledger pg_catalog.text, key pg_catalog.text,
							  fingerprint pg_catalog.bytea DEFAULT NULL)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_ledger_record'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_record(pg_catalog.text, pg_catalog.text, pg_catalog.bytea) IS
'check-and-record a key in the caller''s transaction: true the first time, false ever after';

CREATE FUNCTION ledger_record_batch(ledger pg_catalog.text, keys pg_catalog.text[])
RETURNS SETOF pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_ledger_record_batch'
LANGUAGE C VOLATILE ROWS 100;

COMMENT ON FUNCTION ledger_record_batch(pg_catalog.text, pg_catalog.text[]) IS
'check-and-record many keys in one statement; returns each key that was new, once';

CREATE FUNCTION ledger_enqueue(ledger pg_catalog.text, keys pg_catalog.text[])
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'pgi_ledger_enqueue'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_enqueue(pg_catalog.text, pg_catalog.text[]) IS
'add keys as pending work; returns how many were new';

CREATE FUNCTION ledger_claim(ledger pg_catalog.text, key pg_catalog.text,
							 fingerprint pg_catalog.bytea DEFAULT NULL)
RETURNS TABLE (status pg_catalog.text, token pg_catalog.int8,
			   attempts pg_catalog.int4, result pg_catalog.jsonb)
AS 'MODULE_PATHNAME', 'pgi_ledger_claim'
LANGUAGE C VOLATILE ROWS 1;

COMMENT ON FUNCTION ledger_claim(pg_catalog.text, pg_catalog.text, pg_catalog.bytea) IS
'claim one key: acquired (with a fencing token and a lease), done (with its result), busy or dead';

CREATE FUNCTION ledger_claim_next(ledger pg_catalog.text, n pg_catalog.int4 DEFAULT 1)
RETURNS TABLE (key pg_catalog.text, token pg_catalog.int8, attempts pg_catalog.int4)
AS 'MODULE_PATHNAME', 'pgi_ledger_claim_next'
LANGUAGE C VOLATILE ROWS 10;

COMMENT ON FUNCTION ledger_claim_next(pg_catalog.text, pg_catalog.int4) IS
'claim up to n pending, failed or lease-expired keys, oldest first, skipping locked ones';

CREATE FUNCTION ledger_complete(ledger pg_catalog.text, key pg_catalog.text,
								token pg_catalog.int8,
								result pg_catalog.jsonb DEFAULT NULL)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_ledger_complete'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_complete(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.jsonb) IS
'mark a claimed key done and store its result; false (and no change) for a token that is not current';

CREATE FUNCTION ledger_fail(ledger pg_catalog.text, key pg_catalog.text,
							token pg_catalog.int8, error pg_catalog.text)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_ledger_fail'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_fail(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.text) IS
'record a failed attempt: returns failed or dead; NULL (and no change) for a token that is not current';

CREATE FUNCTION ledger_heartbeat(ledger pg_catalog.text, key pg_catalog.text,
								 token pg_catalog.int8,
								 extend pg_catalog.interval DEFAULT NULL)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_ledger_heartbeat'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_heartbeat(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.interval) IS
'extend the lease of a processing key for its current token; false (and no change) otherwise';

CREATE FUNCTION ledger_status(ledger pg_catalog.text, key pg_catalog.text)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_ledger_status'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_status(pg_catalog.text, pg_catalog.text) IS
'a key''s status, NULL for a key the ledger has not seen';

CREATE FUNCTION ledger_stats(ledger pg_catalog.text)
RETURNS TABLE (status pg_catalog.text, keys pg_catalog.int8)
AS 'MODULE_PATHNAME', 'pgi_ledger_stats'
LANGUAGE C VOLATILE ROWS 5;

COMMENT ON FUNCTION ledger_stats(pg_catalog.text) IS
'how many keys of a ledger are in each status';

CREATE FUNCTION ledger_prune(ledger pg_catalog.text,
							 older_than pg_catalog.interval DEFAULT NULL,
							 max_keys pg_catalog.int4 DEFAULT 10000)
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'pgi_ledger_prune'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_prune(pg_catalog.text, pg_catalog.interval, pg_catalog.int4) IS
'delete up to max_keys done and dead keys finished longer ago than older_than (default: the retention)';

-- 5. Checkpoints

CREATE TABLE pgi_checkpoint (
	name pg_catalog.text COLLATE pg_catalog."C" PRIMARY KEY
		CHECK (name OPERATOR(pg_catalog.<>) ''),
	position pg_catalog.int8 NOT NULL,
	fingerprint pg_catalog.bytea,
	updated_at pg_catalog.timestamptz NOT NULL
);

COMMENT ON TABLE pgi_checkpoint IS
'named monotonic positions, with the fingerprint of the batch that reached each';

SELECT pg_catalog.pg_extension_config_dump('pgi_checkpoint', '');

CREATE FUNCTION checkpoint_advance(name pg_catalog.text, "position" pg_catalog.int8)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_checkpoint_advance'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION checkpoint_advance(pg_catalog.text, pg_catalog.int8) IS
'move a checkpoint forward in the caller''s transaction; false (no change) at or behind its position';

CREATE FUNCTION checkpoint_advance(name pg_catalog.text, "position" pg_catalog.int8,
								   fingerprint pg_catalog.bytea)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_checkpoint_advance_fp'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION checkpoint_advance(pg_catalog.text, pg_catalog.int8, pg_catalog.bytea) IS
'move a checkpoint forward; the current position again is a no-op with the same fingerprint, 22023 with another';

CREATE FUNCTION checkpoint_get(name pg_catalog.text)
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'pgi_checkpoint_get'
LANGUAGE C STABLE;

COMMENT ON FUNCTION checkpoint_get(pg_catalog.text) IS
'a checkpoint''s position, NULL if it was never advanced';

-- 3. Replacing a slice

/*
 * Each makes one slice of target hold exactly the source's rows, in one of
 * the modes 'diff', 'swap', 'delete_insert' or 'auto'; the result's mode
 * column says which mode ran.  See README.md, "Replacing a slice".
 */

CREATE FUNCTION replace_partition(target pg_catalog.regclass,
								  source pg_catalog.regclass,
								  partition_column pg_catalog.text,
								  partition_value anyelement,
								  mode pg_catalog.text DEFAULT 'auto',
								  allow_empty pg_catalog.bool DEFAULT false)
RETURNS TABLE (deleted pg_catalog.int8, inserted pg_catalog.int8,
			   unchanged pg_catalog.int8, mode pg_catalog.text)
AS 'MODULE_PATHNAME', 'pgi_replace_partition'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION replace_partition(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text, anyelement, pg_catalog.text, pg_catalog.bool) IS
'make the rows whose partition_column equals partition_value exactly the source''s rows';

CREATE FUNCTION replace_partition_range(target pg_catalog.regclass,
										source pg_catalog.regclass,
										partition_column pg_catalog.text,
										lower anyelement,
										upper anyelement,
										mode pg_catalog.text DEFAULT 'auto',
										allow_empty pg_catalog.bool DEFAULT false)
RETURNS TABLE (deleted pg_catalog.int8, inserted pg_catalog.int8,
			   unchanged pg_catalog.int8, mode pg_catalog.text)
AS 'MODULE_PATHNAME', 'pgi_replace_partition_range'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION replace_partition_range(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text, anyelement, anyelement, pg_catalog.text, pg_catalog.bool) IS
'make the rows with lower <= partition_column < upper exactly the source''s rows';

CREATE FUNCTION replace_table(target pg_catalog.regclass,
							  source pg_catalog.regclass,
							  mode pg_catalog.text DEFAULT 'auto',
							  allow_empty pg_catalog.bool DEFAULT false)
RETURNS TABLE (deleted pg_catalog.int8, inserted pg_catalog.int8,
			   unchanged pg_catalog.int8, mode pg_catalog.text)
AS 'MODULE_PATHNAME', 'pgi_replace_table'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION replace_table(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text, pg_catalog.bool) IS
'make a table hold exactly the source''s rows; an identical re-run in diff mode writes nothing';

CREATE FUNCTION replace_where(target pg_catalog.regclass,
							  source pg_catalog.regclass,
							  predicate pg_catalog.text,
							  mode pg_catalog.text DEFAULT 'auto',
							  allow_empty pg_catalog.bool DEFAULT false)
RETURNS TABLE (deleted pg_catalog.int8, inserted pg_catalog.int8,
			   unchanged pg_catalog.int8, mode pg_catalog.text)
AS 'MODULE_PATHNAME', 'pgi_replace_where'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION replace_where(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
'make the rows satisfying a boolean predicate over the target''s columns exactly the source''s rows';

/*
 * Internal: the binary image of a row's values (the bytes record_image_eq
 * compares), as one bytea that can be grouped and joined on.
 */
CREATE FUNCTION _replace_image(VARIADIC "any")
RETURNS pg_catalog.bytea
AS 'MODULE_PATHNAME', 'pgi_replace_image'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION _replace_image("any") IS
'internal: binary image of its arguments, used by the diff mode of the replace functions';
