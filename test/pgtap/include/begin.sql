-- The start of every pgTAP suite here (each includes it with \ir): TAP
-- output only, stop at the first error, one transaction that the suite
-- rolls back at its end, pgtap and pg_idempotent installed in it.
\set QUIET 1
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_idempotent;
