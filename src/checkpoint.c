/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  checkpoint_advance, checkpoint_get: named monotonic positions (a
 *	  consumer's offset, a high-water mark) kept in the extension's table
 *	  pgi_checkpoint, written in the caller's transaction so that the data
 *	  and the position it reached commit or roll back together.
 *
 * A position only moves forward: advancing to the current position or
 * behind it changes nothing and returns false.  Concurrent advances of one
 * checkpoint serialize on its row (INSERT ... ON CONFLICT DO UPDATE locks
 * it), so the greatest position wins whatever the commit order.
 *
 * With a fingerprint (a hash of the batch that led to the position), the
 * same position again must come with the same fingerprint: a replayed batch
 * whose contents changed is an error (22023), an identical replay a no-op.
 * The two-argument form stores no fingerprint for the position it reaches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_checkpoint_advance);
PG_FUNCTION_INFO_V1(pgi_checkpoint_advance_fp);
PG_FUNCTION_INFO_V1(pgi_checkpoint_get);

/* insert, or move forward; the row is locked either way */
static PgiCachedPlan plan_advance = {
	"INSERT INTO @extschema@.pgi_checkpoint AS c (name, position, fingerprint, updated_at)"
	" VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
	" fingerprint = EXCLUDED.fingerprint, updated_at = EXCLUDED.updated_at"
	" WHERE c.position OPERATOR(pg_catalog.<) EXCLUDED.position RETURNING 1",
	4, {TEXTOID, INT8OID, BYTEAOID, TIMESTAMPTZOID}, InvalidOid, NULL
};

static PgiCachedPlan plan_get = {
	"SELECT position, fingerprint FROM @extschema@.pgi_checkpoint"
	" WHERE name OPERATOR(pg_catalog.=) ($1 COLLATE pg_catalog.\"C\")",
	1, {TEXTOID}, InvalidOid, NULL
};

static bool
advance(FunctionCallInfo fcinfo, bool with_fingerprint)
{
	Oid			nspid = get_func_namespace(fcinfo->flinfo->fn_oid);
	char	   *name;
	int64		position;
	bytea	   *fingerprint = NULL;
	Datum		values[4];
	char		nulls[4];
	bool		advanced;

	memset(nulls, ' ', sizeof(nulls));
	pgi_require_arg(fcinfo, 0, "name");
	pgi_require_arg(fcinfo, 1, "position");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	position = PG_GETARG_INT64(1);
	if (with_fingerprint)
	{
		pgi_require_arg(fcinfo, 2, "fingerprint");
		fingerprint = PG_GETARG_BYTEA_PP(2);
	}
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint name must not be empty")));

	values[0] = PG_GETARG_DATUM(0);
	values[1] = Int64GetDatum(position);
	values[2] = fingerprint ? PointerGetDatum(fingerprint) : (Datum) 0;
	nulls[2] = fingerprint ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());

	SPI_connect();
	pgi_spi_run_plan(&plan_advance, nspid, values, nulls, false, 0,
					 SPI_OK_INSERT_RETURNING);
	advanced = SPI_processed > 0;
	if (!advanced && fingerprint != NULL)
	{
		bool		isnull;
		int64		current;
		Datum		d;

		/* the row is locked by the statement above: this is its state */
		pgi_spi_run_plan(&plan_get, nspid, values, NULL, false, 0,
						 SPI_OK_SELECT);
		if (SPI_processed != 1)
			elog(ERROR, "checkpoint \"%s\" vanished while locked", name);
		current = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1,
											  &isnull));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
						  &isnull);
		if (current == position && !isnull)
		{
			bytea	   *stored = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(stored) != VARSIZE_ANY_EXHDR(fingerprint) ||
				memcmp(VARDATA_ANY(stored), VARDATA_ANY(fingerprint),
					   VARSIZE_ANY_EXHDR(fingerprint)) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("checkpoint \"%s\" is already at position " INT64_FORMAT " with a different fingerprint",
								name, position),
						 errdetail("The batch that reached position " INT64_FORMAT " of checkpoint \"%s\" had other contents than this one.",
								   position, name),
						 errhint("A replayed batch must have the same contents as the first time.")));
		}
	}
	SPI_finish();
	return advanced;
}

/* checkpoint_advance(name, position): true if the position moved forward */
Datum
pgi_checkpoint_advance(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(advance(fcinfo, false));
}

/*
 * checkpoint_advance(name, position, fingerprint): as above; the current
 * position again with the same fingerprint is a no-op, with another one an
 * error.
 */
Datum
pgi_checkpoint_advance_fp(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(advance(fcinfo, true));
}

/* checkpoint_get(name): the position, NULL for a checkpoint never advanced */
Datum
pgi_checkpoint_get(PG_FUNCTION_ARGS)
{
	Oid			nspid = get_func_namespace(fcinfo->flinfo->fn_oid);
	Datum		values[1];
	bool		isnull = true;
	int64		position = 0;

	pgi_require_arg(fcinfo, 0, "name");
	values[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	pgi_spi_run_plan(&plan_get, nspid, values, NULL, true, 0, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		/*
		 * The value, not the Datum: where int8 is passed by reference the
		 * Datum points into the result, which SPI_finish frees.
		 */
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			position = DatumGetInt64(d);
	}
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_INT64(position);
}
