/*-------------------------------------------------------------------------
 *
 * pg_idempotent.c
 *	  Module entry point of pg_idempotent.
 *
 * The operations live one per file (upsert.c, keys.c, fingerprint.c, ...)
 * over the shared layer in relation.c and sqlbuild.c; this file declares the
 * module and asks each capability that has settings to define them.  Most
 * operations keep no state across calls and resolve what they need from the
 * catalogs inside the caller's transaction; the ledger and checkpoints keep
 * prepared statements and the ledger tables' oids per backend (ledger.c,
 * sqlbuild.c), forgotten when those tables change.
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
