/* pg_idempotent 0.1.0 -> 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_idempotent UPDATE TO '0.2.0'" to load this file. \quit

-- A new installation of 0.2.0 runs pg_idempotent--0.1.0.sql and then this
-- script, so there is one definition of every object, and the path users
-- take from 0.1.0 is the path every installation takes.  0.1.0's script is
-- released: never edit it; change objects here.
