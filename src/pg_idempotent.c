/*-------------------------------------------------------------------------
 *
 * pg_idempotent.c
 *	  Module entry point of pg_idempotent.
 *
 * The operations live one per file (upsert.c, keys.c, fingerprint.c, ...)
 * over the shared layer in relation.c and sqlbuild.c; this file only
 * declares the module.  No state is kept across calls: every operation
 * resolves what it needs from the catalogs inside the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;
