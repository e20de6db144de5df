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
