/* pg_idempotent 0.1.0 -> 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_idempotent UPDATE TO '0.2.0'" to load this file. \quit

-- A new installation of 0.2.0 runs pg_idempotent--0.1.0.sql and then this
-- script, so there is one definition of every object, and the path users
-- take from 0.1.0 is the path every installation takes.  0.1.0's script is
-- released: never edit it; change objects here.

-- 4. The dedup ledger

/*
 * Retry backoff: a failed key may be claimed again only after
 * retry_backoff * 2^(attempts - 1), at most retry_backoff_max.  The
 * defaults keep 0.1.0's behaviour (a failed key is retried at once).
 */
ALTER TABLE pgi_ledger
	ADD COLUMN retry_backoff pg_catalog.interval NOT NULL DEFAULT '0',
	ADD COLUMN retry_backoff_max pg_catalog.interval NOT NULL DEFAULT '1 hour';

COMMENT ON TABLE pgi_ledger IS
'the ledgers: name, lease of a claim, attempts before a key is dead, retention of finished keys, retry backoff of failed keys';

DROP FUNCTION ledger_create(pg_catalog.text, pg_catalog.interval, pg_catalog.int4, pg_catalog.interval);

CREATE FUNCTION ledger_create(name pg_catalog.text,
	lease pg_catalog.interval DEFAULT '5 minutes',
	max_attempts pg_catalog.int4 DEFAULT 5,
	retention pg_catalog.interval DEFAULT '30 days',
	retry_backoff pg_catalog.interval DEFAULT '0',
	retry_backoff_max pg_catalog.interval DEFAULT '1 hour')
RETURNS pg_catalog.void
AS 'MODULE_PATHNAME', 'pgi_ledger_create_with_backoff'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ledger_create(pg_catalog.text, pg_catalog.interval, pg_catalog.int4, pg_catalog.interval, pg_catalog.interval, pg_catalog.interval) IS
'create a ledger, or set an existing one''s lease, max_attempts, retention and retry backoff; idempotent';

CREATE FUNCTION ledger_complete_batch(ledger pg_catalog.text, keys pg_catalog.text[],
	tokens pg_catalog.int8[], results pg_catalog.jsonb[] DEFAULT NULL)
RETURNS SETOF pg_catalog.text
AS 'MODULE_PATHNAME', 'pgi_ledger_complete_batch'
LANGUAGE C VOLATILE ROWS 10;

COMMENT ON FUNCTION ledger_complete_batch(pg_catalog.text, pg_catalog.text[], pg_catalog.int8[], pg_catalog.jsonb[]) IS
'ledger_complete for many keys in one statement: the keys done by the tokens given';

-- 3. Replacing a slice, 6. Proving idempotency: the internal helpers

/*
 * The SQL the extension builds at run time calls its helpers by name
 * (_fingerprint_agg, _replace_image).  In the extension's own schema, a
 * role that may create there (every role could, in public, up to
 * PostgreSQL 14) could add an overload whose argument types match a call
 * exactly, which PostgreSQL prefers to record and VARIADIC "any", and the
 * next caller would run it; or one with a defaulted extra argument, which
 * makes every call ambiguous.  So they live in a schema of their own,
 * created here, owned by the role that installs the extension and writable
 * by nobody else.  The extension checks that the schema is its own before
 * calling into it.
 */
CREATE SCHEMA pgi_internal;

COMMENT ON SCHEMA pgi_internal IS
'internal helpers of pg_idempotent, called by the SQL it builds; only the extension creates objects here';

GRANT USAGE ON SCHEMA pgi_internal TO PUBLIC;

ALTER FUNCTION _fingerprint_accum(pg_catalog.internal, record) SET SCHEMA pgi_internal;
ALTER FUNCTION _fingerprint_combine(pg_catalog.internal, pg_catalog.internal) SET SCHEMA pgi_internal;
ALTER FUNCTION _fingerprint_serialize(pg_catalog.internal) SET SCHEMA pgi_internal;
ALTER FUNCTION _fingerprint_deserialize(pg_catalog.bytea, pg_catalog.internal) SET SCHEMA pgi_internal;
ALTER FUNCTION _fingerprint_final(pg_catalog.internal) SET SCHEMA pgi_internal;
ALTER AGGREGATE _fingerprint_agg(record) SET SCHEMA pgi_internal;
ALTER FUNCTION _replace_image("any") SET SCHEMA pgi_internal;

-- 2. Upserting JSON: the planner's row estimate

/*
 * jsonb_to_recordset is planned as 100 rows whatever the array holds, so a
 * large JSON batch was joined to its table by one index probe per row.
 * idempotent_upsert_json knows the count before its statement runs, and
 * reads a large batch through this one instead: jsonb_to_recordset(rows),
 * whose support function gives the planner estimate (a constant in the
 * statement) as its row count.
 */
CREATE FUNCTION pgi_internal._jsonb_to_recordset_support(pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'pgi_jsonb_to_recordset_support'
LANGUAGE C STRICT;

COMMENT ON FUNCTION pgi_internal._jsonb_to_recordset_support(pg_catalog.internal) IS
'planner support of _jsonb_to_recordset: its estimate argument as its row count';

CREATE FUNCTION pgi_internal._jsonb_to_recordset(rows pg_catalog.jsonb, estimate pg_catalog.int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pgi_jsonb_to_recordset'
LANGUAGE C STABLE PARALLEL SAFE ROWS 100
SUPPORT pgi_internal._jsonb_to_recordset_support;

COMMENT ON FUNCTION pgi_internal._jsonb_to_recordset(pg_catalog.jsonb, pg_catalog.int8) IS
'jsonb_to_recordset(rows), planned as estimate rows; the JSON source of idempotent_upsert_json';

-- 8. History: immutable versioned writes

CREATE FUNCTION idempotent_history(target pg_catalog.regclass,
	source pg_catalog.regclass,
	key pg_catalog.text[] DEFAULT NULL,
	as_of pg_catalog.timestamptz DEFAULT NULL,
	valid_from pg_catalog.text DEFAULT 'valid_from',
	valid_to pg_catalog.text DEFAULT 'valid_to',
	deletes pg_catalog.text DEFAULT 'ignore',
	dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (inserted pg_catalog.int8, closed pg_catalog.int8,
			   corrected pg_catalog.int8, unchanged pg_catalog.int8)
AS 'MODULE_PATHNAME', 'pgi_idempotent_history'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION idempotent_history(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.text[], pg_catalog.timestamptz, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
'write a source''s rows as of a moment into a type-2 history (versions with valid_from, valid_to); a re-run writes nothing';

/*
 * Internal: whether two rows, given as one argument list (the first half
 * against the second), differ by binary image, as ROW(...) *<> ROW(...)
 * says, without forming either row.
 */
CREATE FUNCTION pgi_internal._images_differ(VARIADIC "any")
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'pgi_images_differ'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION pgi_internal._images_differ("any") IS
'internal: whether two rows differ by binary image, used by the upserts and idempotent_history';
