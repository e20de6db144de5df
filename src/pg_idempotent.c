/*-------------------------------------------------------------------------
 *
 * pg_idempotent.c
 *	  Module entry point of pg_idempotent.
 *
 * The operations live one per file (upsert.c, keys.c, fingerprint.c, ...)
 * over the shared layer in relation.c and sqlbuild.c; this file declares the
 * module and asks each capability that has settings to define them.
 * Operations resolve what they need from the catalogs inside the caller's
 * transaction; what a backend keeps across calls is a cache, each
 * forgotten when what it describes changes: the ledger and checkpoints keep
 * prepared statements (sqlbuild.c), the ledger its tables' oids and the
 * ids of ledgers by name (ledger_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "pg_idempotent.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* one line per capability with settings: pgi_<capability>_init(); */
	pgi_runtime_init();
	pgi_progress_init();
	pgi_replace_init();
	/* a mistyped pg_idempotent.* setting is an error, not a placeholder */
	MarkGUCPrefixReserved("pg_idempotent");
}
