/*-------------------------------------------------------------------------
 *
 * fingerprint.c
 *	  table_fingerprint(regclass), its aggregate _fingerprint_agg(record),
 *	  and assert_idempotent(text, VARIADIC regclass[]).
 *
 * A fingerprint is a hash of a relation's rows as a multiset.  Each row is
 * encoded with encode.c (so the result does not depend on session settings
 * and folds the same type families as idempotent_key), hashed to 128 bits
 * with MurmurHash3 x64-128, and the row hashes are added as two 64-bit lanes
 * with wraparound, together with a row count.  Addition makes the result
 * independent of row order, physical layout and parallel partial
 * aggregation, while a row present twice adds its hash twice.  The final
 * text is the hex of the first 16 bytes of a SHA-256 over the count and the
 * two lanes.
 *
 * The row hash reads its input as little-endian words explicitly, so a
 * fingerprint is the same on every platform.  It is not a cryptographic
 * commitment: it detects accidental differences, not an adversary who
 * builds rows to collide.
 *
 * table_fingerprint runs one SELECT through SPI: the executor streams the
 * relation through the aggregate, so memory does not grow with its size,
 * checks for cancel and statement_timeout as it goes, and the caller's
 * SELECT privilege and row-level security apply as they would to the same
 * query typed by hand.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_fingerprint_accum);
PG_FUNCTION_INFO_V1(pgi_fingerprint_combine);
PG_FUNCTION_INFO_V1(pgi_fingerprint_serialize);
PG_FUNCTION_INFO_V1(pgi_fingerprint_deserialize);
PG_FUNCTION_INFO_V1(pgi_fingerprint_final);
PG_FUNCTION_INFO_V1(pgi_table_fingerprint);
PG_FUNCTION_INFO_V1(pgi_assert_idempotent);

/* Starts the message whose SHA-256 is the fingerprint; pinned. */
#define FINGERPRINT_DOMAIN	"pg_idempotent:table_fingerprint:1"

/* Bytes of the serialized state: count, lane 0, lane 1. */
#define FP_SERIAL_LEN		(3 * sizeof(uint64))

/* The transition state: what a partial aggregate has summed so far. */
typedef struct FpState
{
	uint64		count;
	uint64		lane[2];
	PgiEncoder *rowenc;			/* built on the first row, NULL after combine */
	StringInfoData buf;			/* the row being encoded */
} FpState;

static FpState *fp_state_create(MemoryContext mcxt);
static char *fingerprint_relation(const PgiRelation *rel, const char *helpers,
								  bool read_only, int64 *rows);
static void run_statement(const char *statement);
static char *fingerprint_after_run(PgiProgress *progress,
								   const PgiRelation *rel, const char *helpers,
								   int run);

static FpState *
fp_state_create(MemoryContext mcxt)
{
	FpState    *state = MemoryContextAllocZero(mcxt, sizeof(FpState));

	return state;
}

/*
 * _fingerprint_accum(internal, record): encode the row, hash it, add it.
 * A NULL row (possible from an outer join, never from a table scan) counts
 * as a row whose encoding is the NULL tag.
 */
Datum
pgi_fingerprint_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	FpState    *state;
	uint64		h[2];

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "_fingerprint_accum called in non-aggregate context");

	state = PG_ARGISNULL(0) ? NULL : (FpState *) PG_GETARG_POINTER(0);
	if (state == NULL)
		state = fp_state_create(aggcxt);
	if (state->rowenc == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(aggcxt);

		state->rowenc = pgi_encoder_create(RECORDOID, aggcxt);
		initStringInfo(&state->buf);
		MemoryContextSwitchTo(oldcxt);
	}

	resetStringInfo(&state->buf);
	pgi_encode_datum(&state->buf, state->rowenc, PG_GETARG_DATUM(1),
					 PG_ARGISNULL(1));
	pgi_murmur3_128((const unsigned char *) state->buf.data, state->buf.len, h);
	state->lane[0] += h[0];
	state->lane[1] += h[1];
	state->count++;

	PG_RETURN_POINTER(state);
}

/* _fingerprint_combine(internal, internal): sums add up. */
Datum
pgi_fingerprint_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	FpState    *s1;
	FpState    *s2;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "_fingerprint_combine called in non-aggregate context");

	s1 = PG_ARGISNULL(0) ? NULL : (FpState *) PG_GETARG_POINTER(0);
	s2 = PG_ARGISNULL(1) ? NULL : (FpState *) PG_GETARG_POINTER(1);
	if (s2 == NULL)
		PG_RETURN_POINTER(s1);
	/* s2 may live in a shorter-lived context: copy into ours */
	if (s1 == NULL)
		s1 = fp_state_create(aggcxt);
	s1->count += s2->count;
	s1->lane[0] += s2->lane[0];
	s1->lane[1] += s2->lane[1];
	PG_RETURN_POINTER(s1);
}

/* _fingerprint_serialize(internal) RETURNS bytea */
Datum
pgi_fingerprint_serialize(PG_FUNCTION_ARGS)
{
	FpState    *state = (FpState *) PG_GETARG_POINTER(0);
	bytea	   *result = palloc(VARHDRSZ + FP_SERIAL_LEN);
	uint64		words[3];

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "_fingerprint_serialize called in non-aggregate context");

	words[0] = pg_hton64(state->count);
	words[1] = pg_hton64(state->lane[0]);
	words[2] = pg_hton64(state->lane[1]);
	SET_VARSIZE(result, VARHDRSZ + FP_SERIAL_LEN);
	memcpy(VARDATA(result), words, FP_SERIAL_LEN);
	PG_RETURN_BYTEA_P(result);
}

/* _fingerprint_deserialize(bytea, internal) RETURNS internal */
Datum
pgi_fingerprint_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *sstate = PG_GETARG_BYTEA_PP(0);
	FpState    *state;
	uint64		words[3];

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "_fingerprint_deserialize called in non-aggregate context");
	if (VARSIZE_ANY_EXHDR(sstate) != FP_SERIAL_LEN)
		elog(ERROR, "invalid serialized fingerprint state");

	memcpy(words, VARDATA_ANY(sstate), FP_SERIAL_LEN);
	state = fp_state_create(CurrentMemoryContext);
	state->count = pg_ntoh64(words[0]);
	state->lane[0] = pg_ntoh64(words[1]);
	state->lane[1] = pg_ntoh64(words[2]);
	PG_RETURN_POINTER(state);
}

/*
 * _fingerprint_final(internal) RETURNS text: 32 hex digits, the first 16
 * bytes of SHA-256(domain, count, lane 0, lane 1), all big-endian.  No rows
 * at all is a fingerprint like any other.
 */
Datum
pgi_fingerprint_final(PG_FUNCTION_ARGS)
{
	FpState    *state = PG_ARGISNULL(0) ? NULL : (FpState *) PG_GETARG_POINTER(0);
	StringInfoData msg;
	uint64		words[3] = {0, 0, 0};
	uint8		digest[PGI_SHA256_LEN];
	char		hex[33];
	int			i;

	if (state != NULL)
	{
		words[0] = pg_hton64(state->count);
		words[1] = pg_hton64(state->lane[0]);
		words[2] = pg_hton64(state->lane[1]);
	}
	initStringInfo(&msg);
	appendBinaryStringInfo(&msg, FINGERPRINT_DOMAIN,
						   sizeof(FINGERPRINT_DOMAIN) - 1);
	appendBinaryStringInfo(&msg, (char *) words, sizeof(words));
	pgi_sha256(msg.data, msg.len, digest);
	pfree(msg.data);

	for (i = 0; i < 16; i++)
		snprintf(hex + i * 2, 3, "%02x", digest[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/*
 * The fingerprint of one relation, as a string in the current SPI
 * procedure context, and the number of rows it covers (for progress
 * reports: counting in the same scan costs next to nothing).  The caller
 * has connected to SPI.
 *
 * The aggregate is named with the schema of the extension's helpers
 * (helpers, from pgi_internal_schema), which nobody else may create in, so
 * neither a search_path that puts another _fingerprint_agg first nor an
 * overload for this relation's row type can stand in for it; the relation
 * is named by the quoted, qualified name pgi_relation_open gave.  "t.*"
 * rather than "t" so that a column called t cannot be taken for the whole
 * row.
 */
static char *
fingerprint_relation(const PgiRelation *rel, const char *helpers,
					 bool read_only, int64 *rows)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s._fingerprint_agg(t.*), pg_catalog.count(*) FROM %s t",
					 quote_identifier(helpers), rel->qualname);
	pgi_spi_run(sql.data, NULL, read_only, 1, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "fingerprint query returned " UINT64_FORMAT " rows",
			 (uint64) SPI_processed);
	*rows = pgi_spi_int8(0, 2);
	return pgi_spi_text(0, 1);
}

/* table_fingerprint(target regclass) RETURNS text */
Datum
pgi_table_fingerprint(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	char	   *helpers = pgi_internal_schema(fcinfo->flinfo->fn_oid);
	PgiRelation *rel;
	PgiProgress progress;
	char	   *fp;
	int64		rows;

	pgi_require_arg(fcinfo, 0, "target");
	rel = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_READ, "target");
	pgi_progress_begin(&progress, get_func_name(fcinfo->flinfo->fn_oid),
					   rel->displayname);

	SPI_connect();
	/* STABLE: read with the calling query's snapshot, as PL/pgSQL would */
	fp = MemoryContextStrdup(callercxt,
							 fingerprint_relation(rel, helpers, true, &rows));
	SPI_finish();
	pgi_progress_step(&progress,
					  errmsg_plural("%s on %s: fingerprinted %lld row",
									"%s on %s: fingerprinted %lld rows",
									rows, PGI_PROGRESS_OF(&progress),
									(long long) rows));

	PG_RETURN_TEXT_P(cstring_to_text(fp));
}

/*
 * Run the user's statement, discarding whatever rows it returns: a SELECT
 * over a large table must not be collected in memory.  Several statements
 * separated by semicolons run one after another, as SPI_execute does.
 */
static void
run_statement(const char *statement)
{
	SPIExecuteOptions options;
	int			rc;

	memset(&options, 0, sizeof(options));
	options.read_only = false;
	options.dest = None_Receiver;
	rc = SPI_execute_extended(statement, &options);
	if (rc == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("assert_idempotent cannot run transaction control statements"),
				 errdetail("The statement runs inside the caller's transaction.")));
	if (rc == SPI_ERROR_COPY)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("assert_idempotent cannot run COPY to or from the client")));
	if (rc < 0)
		elog(ERROR, "unexpected SPI result %s", SPI_result_code_string(rc));
}

/*
 * assert_idempotent's fingerprint of one of its tables after the run-th run
 * of the statement, reported as a step of its own: on a large table each is
 * as long as the statement.  Reads with a new snapshot, so it sees what the
 * statement wrote.
 */
static char *
fingerprint_after_run(PgiProgress *progress, const PgiRelation *rel,
					  const char *helpers, int run)
{
	int64		rows;
	char	   *fp = fingerprint_relation(rel, helpers, false, &rows);

	pgi_progress_step(progress,
					  errmsg_plural("%s on %s: fingerprinted %s after run %d: %lld row",
									"%s on %s: fingerprinted %s after run %d: %lld rows",
									rows, PGI_PROGRESS_OF(progress),
									rel->displayname, run, (long long) rows));
	return fp;
}

/*
 * Whether a query reads the transaction's clock: now() and its synonyms,
 * CURRENT_DATE and the other SQL value functions of the time of day, all
 * of which return the transaction's start.  Both runs of a check happen in
 * one transaction, so such a value is the same in both and the
 * fingerprints agree, yet the statement writes another value every time it
 * runs again for real.  Column defaults count (the rewriter has put them
 * into an INSERT's target list); what functions do inside their bodies and
 * what triggers do cannot be seen.
 */
static bool
reads_clock_walker(Node *node, const char **what)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr))
	{
		Oid			funcid = ((FuncExpr *) node)->funcid;

		if (funcid == F_NOW || funcid == F_TRANSACTION_TIMESTAMP ||
			funcid == F_STATEMENT_TIMESTAMP)
		{
			*what = psprintf("%s()", get_func_name(funcid));
			return true;
		}
	}
	else if (IsA(node, SQLValueFunction))
	{
		switch (((SQLValueFunction *) node)->op)
		{
			case SVFOP_CURRENT_DATE:
				*what = "CURRENT_DATE";
				return true;
			case SVFOP_CURRENT_TIME:
			case SVFOP_CURRENT_TIME_N:
				*what = "CURRENT_TIME";
				return true;
			case SVFOP_CURRENT_TIMESTAMP:
			case SVFOP_CURRENT_TIMESTAMP_N:
				*what = "CURRENT_TIMESTAMP";
				return true;
			case SVFOP_LOCALTIME:
			case SVFOP_LOCALTIME_N:
				*what = "LOCALTIME";
				return true;
			case SVFOP_LOCALTIMESTAMP:
			case SVFOP_LOCALTIMESTAMP_N:
				*what = "LOCALTIMESTAMP";
				return true;
			default:
				break;
		}
	}
	else if (IsA(node, Query))
		return query_tree_walker((Query *) node, reads_clock_walker,
								 (void *) what, 0);
	return expression_tree_walker(node, reads_clock_walker, (void *) what);
}

/*
 * The first clock read in the statement's queries that write (INSERT,
 * UPDATE, DELETE, MERGE, or a SELECT with a data-modifying WITH), or NULL:
 * a SELECT that only reads the clock writes nothing.  raws are the
 * statement's parse trees, made once by the caller.  Analysed after the
 * statement has run, so that what it creates exists; utility statements
 * (DO, CALL, DDL) and the insides of functions cannot be looked into.
 */
static const char *
statement_reads_clock(const char *statement, List *raws)
{
	ListCell   *lc;
	const char *what = NULL;

	foreach(lc, raws)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		ListCell   *qc;

		CHECK_FOR_INTERRUPTS();
		foreach(qc, pg_analyze_and_rewrite_fixedparams(raw, statement, NULL, 0, NULL))
		{
			Query	   *query = lfirst_node(Query, qc);

			if ((query->commandType == CMD_INSERT ||
				 query->commandType == CMD_UPDATE ||
				 query->commandType == CMD_DELETE ||
				 query->commandType == CMD_MERGE ||
				 (query->commandType == CMD_SELECT && query->hasModifyingCTE)) &&
				reads_clock_walker((Node *) query, &what))
				return what;
		}
	}
	return NULL;
}

/* assert_idempotent(statement text, VARIADIC tables regclass[]) */
Datum
pgi_assert_idempotent(PG_FUNCTION_ARGS)
{
	char	   *helpers = pgi_internal_schema(fcinfo->flinfo->fn_oid);
	char	   *statement;
	ArrayType  *tables;
	Datum	   *relids;
	bool	   *relnulls;
	int			nrels;
	PgiRelation **rels;
	char	  **before;
	PgiProgress progress;
	StringInfoData tablenames;
	StringInfoData detail;
	int			nchanged = 0;
	StringInfoData clock;
	List	   *raws;
	int			i;
	int			j;

	pgi_require_arg(fcinfo, 0, "statement");
	pgi_require_arg(fcinfo, 1, "tables");
	statement = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tables = PG_GETARG_ARRAYTYPE_P(1);

	/* nothing to run proves nothing: most likely a mistake in the caller */
	raws = pg_parse_query(statement);
	if (raws == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"statement\" contains no SQL statement")));

	deconstruct_array(tables, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &relids, &relnulls, &nrels);
	if (nrels == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"tables\" must not be empty"),
				 errhint("Name the tables the statement writes to.")));
	for (i = 0; i < nrels; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (relnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"tables\" must not contain nulls")));
	}

	/* resolve and lock every table before anything runs; skip repeats */
	rels = palloc0(sizeof(PgiRelation *) * nrels);
	initStringInfo(&tablenames);
	for (i = 0; i < nrels; i++)
	{
		CHECK_FOR_INTERRUPTS();
		for (j = 0; j < i; j++)
			if (rels[j] != NULL &&
				rels[j]->relid == DatumGetObjectId(relids[i]))
				break;
		if (j < i)
			continue;
		rels[i] = pgi_relation_open(DatumGetObjectId(relids[i]),
									PGI_REL_READ, "tables");
		if (tablenames.len > 0)
			appendStringInfoString(&tablenames, ", ");
		appendStringInfoString(&tablenames, rels[i]->displayname);
	}
	pgi_progress_begin(&progress, get_func_name(fcinfo->flinfo->fn_oid),
					   tablenames.data);

	/* the DETAILs must outlive SPI_finish */
	initStringInfo(&detail);
	initStringInfo(&clock);

	SPI_connect();

	run_statement(statement);
	pgi_progress_step(&progress,
					  errmsg("%s on %s: ran the statement once",
							 PGI_PROGRESS_OF(&progress)));
	before = palloc0(sizeof(char *) * nrels);
	for (i = 0; i < nrels; i++)
		if (rels[i] != NULL)
			before[i] = fingerprint_after_run(&progress, rels[i], helpers, 1);

	run_statement(statement);
	pgi_progress_step(&progress,
					  errmsg("%s on %s: ran the statement a second time",
							 PGI_PROGRESS_OF(&progress)));
	for (i = 0; i < nrels; i++)
	{
		if (rels[i] == NULL ||
			strcmp(before[i], fingerprint_after_run(&progress, rels[i],
													helpers, 2)) == 0)
			continue;
		if (nchanged++ > 0)
			appendStringInfoChar(&detail, '\n');
		appendStringInfo(&detail, _("Table \"%s\" changed on the second run."),
						 rels[i]->displayname);
	}
	if (nchanged == 0)
	{
		const char *what = statement_reads_clock(statement, raws);

		if (what != NULL)
			appendStringInfoString(&clock, what);
	}

	SPI_finish();

	if (clock.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_ASSERT_FAILURE),
				 errmsg("statement is not idempotent"),
				 errdetail("It reads the transaction's clock (%s): both runs of this check saw the same time, but every later run of the statement sees another one.",
						   clock.data),
				 errhint("Use run_time(), the run's logical time set by the orchestrator, which is the same on every re-run of a run.")));

	if (nchanged > 0)
		ereport(ERROR,
				(errcode(ERRCODE_ASSERT_FAILURE),
				 errmsg("statement is not idempotent"),
				 errdetail_internal("%s", detail.data),
				 errhint("Make the statement write only what is missing or different, for example with idempotent_upsert or INSERT ... ON CONFLICT DO NOTHING.")));

	PG_RETURN_VOID();
}
