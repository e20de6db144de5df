/*-------------------------------------------------------------------------
 *
 * upsert_source.c
 *	  idempotent_upsert_query and idempotent_upsert_json: the sources that
 *	  are not a relation.  A query must be one SELECT that locks no rows; a
 *	  JSON array's objects are scanned once, in C, for their keys, which
 *	  become the column list of the function that reads its rows
 *	  (pgi_internal._jsonb_to_recordset($1, estimate), jsonrows.c), and
 *	  their count, which a large batch's statement gives the planner.  Both
 *	  then run as upsert.c's call, with the source evaluated once
 *	  (MATERIALIZED).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "upsert.h"

PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_query);
PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_json);
PG_FUNCTION_INFO_V1(pgi_jsonb_to_recordset);
PG_FUNCTION_INFO_V1(pgi_jsonb_to_recordset_support);

/*
 * The smallest JSON batch whose size the statement tells the planner.  Up
 * to here the planner's default for a set-returning function (100 rows) is
 * near enough for it to plan well; and a batch that small keeps one call
 * shape, so micro-batches of varying size share their statements and plans.
 */
#define JSON_ESTIMATE_MIN 1024

/*
 * The query must be exactly one SELECT (or VALUES): it is embedded as a
 * subquery, so anything else would either fail obscurely or, worse, run.
 */
static char *
single_select(const char *query)
{
	List	   *raw;
	RawStmt    *stmt;

	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query must be exactly one SELECT statement"),
				 errdetail_plural("It contains %d statement.",
								  "It contains %d statements.",
								  list_length(raw), list_length(raw))));
	stmt = linitial_node(RawStmt, raw);
	if (!IsA(stmt->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query must be a SELECT statement"),
				 errdetail("The statement is %s.",
						   GetCommandTagName(CreateCommandTag(stmt->stmt)))));
	if (stmt->stmt_len > 0)
		return pnstrdup(query + stmt->stmt_location, stmt->stmt_len);
	return pstrdup(query + stmt->stmt_location);
}

/*
 * The query is only read: a locking clause (FOR UPDATE, FOR SHARE) at any
 * level is refused, with the error SPI gives a read-only statement that
 * has one.  (The call's statement writes the target, so SPI no longer
 * refuses it for us.)
 */
static bool
query_locks_rows(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		if (q->rowMarks != NIL)
		{
			*(LockClauseStrength *) context =
				linitial_node(RowMarkClause, q->rowMarks)->strength;
			return true;
		}
		return query_tree_walker(q, query_locks_rows, context, 0);
	}
	return expression_tree_walker(node, query_locks_rows, context);
}

static void
refuse_locking(Query *query)
{
	LockClauseStrength strength = LCS_NONE;
	CommandTag	tag;

	if (!query_locks_rows((Node *) query, &strength))
		return;
	switch (strength)
	{
		case LCS_FORKEYSHARE:
			tag = CMDTAG_SELECT_FOR_KEY_SHARE;
			break;
		case LCS_FORSHARE:
			tag = CMDTAG_SELECT_FOR_SHARE;
			break;
		case LCS_FORNOKEYUPDATE:
			tag = CMDTAG_SELECT_FOR_NO_KEY_UPDATE;
			break;
		default:
			tag = CMDTAG_SELECT_FOR_UPDATE;
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
	/* translator: %s is a SQL statement name */
			 errmsg("%s is not allowed in a non-volatile function",
					GetCommandTagName(tag))));
}

Datum
pgi_idempotent_upsert_query(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	UpsertSource *source = pgi_upsert_source_new();
	char	   *query;
	SPIPlanPtr	prepared;
	CachedPlanSource *ps;
	int			i;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "query");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	query = single_select(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	SPI_connect();
	prepared = SPI_prepare(query, 0, NULL);
	if (prepared == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	ps = linitial(SPI_plan_get_plan_sources(prepared));
	if (ps->resultDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query returns no rows")));
	refuse_locking(linitial_node(Query, ps->query_list));
	/* what distinct.c reads to prove the query unique on the key */
	if (list_length(ps->query_list) == 1)
		source->query = copyObject(linitial_node(Query, ps->query_list));
	source->name = "query";
	source->columns = pgi_columns_from_tupdesc(ps->resultDesc);
	for (i = 0; i < source->columns.ncols; i++)
		source->columns.cols[i].attnum = 0;
	/* the newline ends a trailing -- comment before our closing paren */
	appendStringInfo(&source->from, "(%s\n) s0", query);
	SPI_freeplan(prepared);

	pgi_upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}

/* A key of a JSON object, pointing into the jsonb it came from. */
typedef struct JsonKey
{
	const char *str;
	int			len;
} JsonKey;

static uint32
json_key_hash(const void *key, Size keysize)
{
	const JsonKey *k = (const JsonKey *) key;

	return hash_bytes((const unsigned char *) k->str, k->len);
}

static int
json_key_match(const void *key1, const void *key2, Size keysize)
{
	const JsonKey *a = (const JsonKey *) key1;
	const JsonKey *b = (const JsonKey *) key2;

	return (a->len == b->len && memcmp(a->str, b->str, a->len) == 0) ? 0 : 1;
}

static int
json_key_cmp(const void *a, const void *b)
{
	const JsonKey *x = (const JsonKey *) a;
	const JsonKey *y = (const JsonKey *) b;

	return varstr_cmp(x->str, x->len, y->str, y->len, DEFAULT_COLLATION_OID);
}

/*
 * Whether two objects have the same keys, in the same order: the keys are
 * the first JEntries of an object and the first bytes of its data (jsonb
 * keeps them sorted and apart from the values), so equal entries and equal
 * bytes mean the same keys.  Objects that hold the same keys encoded some
 * other way merely miss the shortcut.
 */
static bool
json_same_keys(const JsonbContainer *a, const JsonbContainer *b)
{
	uint32		n = JsonContainerSize(a);

	if (JsonContainerSize(b) != n)
		return false;
	if (n == 0)
		return true;
	if (memcmp(a->children, b->children, sizeof(JEntry) * n) != 0)
		return false;
	/* both objects' keys end where their first value starts */
	return memcmp(&a->children[2 * n], &b->children[2 * n],
				  getJsonbOffset(a, n)) == 0;
}

/*
 * One pass over the array, in C: counts its elements, refuses any that is
 * not an object, and returns the distinct keys of the objects, sorted as
 * ORDER BY sorts text.  Nothing per row is kept: the keys point into the
 * jsonb, and each object's iterator is freed as it ends.  An object with
 * the keys of the one before it (a batch of rows of one shape, the common
 * case) adds none and is not iterated.
 */
static int64
json_scan(Jsonb *rows, char ***keys_out, int *nkeys_out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	HASHCTL		ctl;
	HTAB	   *seen;
	HASH_SEQ_STATUS status;
	JsonKey    *entry;
	JsonKey    *sorted;
	int64		nrows = 0;
	int64		not_objects = 0;
	const JsonbContainer *prev = NULL;
	int			nkeys;
	int			i;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(JsonKey);
	ctl.entrysize = sizeof(JsonKey);
	ctl.hash = json_key_hash;
	ctl.match = json_key_match;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pg_idempotent JSON keys", 64, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	it = JsonbIteratorInit(&rows->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbIterator *oit;
		JsonbValue	k;
		JsonbIteratorToken otok;

		if (tok != WJB_ELEM)
			continue;
		CHECK_FOR_INTERRUPTS();
		nrows++;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		{
			not_objects++;
			continue;
		}
		if (prev != NULL && json_same_keys(v.val.binary.data, prev))
			continue;
		prev = v.val.binary.data;
		oit = JsonbIteratorInit(v.val.binary.data);
		while ((otok = JsonbIteratorNext(&oit, &k, true)) != WJB_DONE)
		{
			JsonKey		key;

			if (otok != WJB_KEY)
				continue;
			key.str = k.val.string.val;
			key.len = k.val.string.len;
			(void) hash_search(seen, &key, HASH_ENTER, NULL);
		}
	}
	if (not_objects > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"rows\" must be a JSON array of objects"),
				 errdetail_plural("%lld of its elements is not an object.",
								  "%lld of its elements are not objects.",
								  not_objects, (long long) not_objects)));

	nkeys = (int) hash_get_num_entries(seen);
	sorted = palloc(sizeof(JsonKey) * Max(nkeys, 1));
	i = 0;
	hash_seq_init(&status, seen);
	while ((entry = (JsonKey *) hash_seq_search(&status)) != NULL)
		sorted[i++] = *entry;
	qsort(sorted, nkeys, sizeof(JsonKey), json_key_cmp);
	*keys_out = palloc(sizeof(char *) * Max(nkeys, 1));
	for (i = 0; i < nkeys; i++)
		(*keys_out)[i] = pnstrdup(sorted[i].str, sorted[i].len);
	*nkeys_out = nkeys;
	hash_destroy(seen);
	return nrows;
}

/*
 * The row estimate a JSON batch's statement carries: its element count
 * rounded to the nearest power of 4 (on a log scale, so never more than
 * twice off), or 0 for a batch too small to need one.  Rounded, because the
 * estimate is written into the statement's text: the statement is planned
 * once (a generic plan, callcache.c and pgi_spi_run_cached), and a few
 * sizes of batch share it, where each count would have a plan of its own.
 */
static int64
json_rows_estimate(int64 nrows)
{
	int64		est = JSON_ESTIMATE_MIN;

	if (nrows < JSON_ESTIMATE_MIN)
		return 0;
	while (nrows >= est * 2 && est <= PG_INT64_MAX / 8)
		est *= 4;
	return est;
}

/*
 * The function call a JSON source's rows come from, into source->from
 * (json_describe adds its column list), and the estimate it carries into
 * the call's shape, ahead of the keys.
 *
 * The rows are read by pgi_internal._jsonb_to_recordset($1, estimate),
 * which makes the rows jsonb_to_recordset makes, at a memory cost that does
 * not grow with the batch (jsonrows.c), and whose planner support function
 * returns the estimate as its row count.  jsonb_to_recordset() is planned
 * as 100 rows, whatever the array holds; against a table of 100k rows, a
 * batch of 100k is then joined by 100k probes of the key's index where one
 * hash join is cheaper.  The count is known by now (json_scan), so a batch
 * of JSON_ESTIMATE_MIN or more carries it, and the planner costs every join
 * and aggregate of the statement on the right size; a smaller one carries
 * 0, planned as the default.  The function is only called where it is the
 * extension's own, in the schema nobody else may create in
 * (pgi_internal_function); a database whose extension predates it reads
 * the array with jsonb_to_recordset, unestimated, as before.
 */
static void
json_rows_call(UpsertSource *source, Oid fn, int64 nrows)
{
	int64		est = json_rows_estimate(nrows);
	Oid			argtypes[2] = {JSONBOID, INT8OID};
	char	   *wrapper;

	wrapper = pgi_internal_function(fn, "_jsonb_to_recordset", 2, argtypes);
	if (wrapper == NULL)
		est = -1;
	if (est >= 0)
		appendStringInfo(&source->from,
						 "%s($1, " INT64_FORMAT "::pg_catalog.int8)",
						 wrapper, est);
	else
		appendStringInfoString(&source->from, "pg_catalog.jsonb_to_recordset($1)");
	appendBinaryStringInfo(source->shape, (char *) &est, sizeof(est));
}

/*
 * pgi_internal._jsonb_to_recordset(rows jsonb, estimate int8): the rows of
 * jsonb_to_recordset(rows), read by jsonrows.c into a tuplestore of the
 * call's column list; a column list jsonrows.c does not read, a call
 * without one, and anything but an array are jsonb_to_recordset's own,
 * called with the same call context (the column definition list, the
 * materialize mode), so that it answers as it always does.  estimate is
 * only for the planner, through the support function below.
 */
Datum
pgi_jsonb_to_recordset(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(inner, 1);
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		result;

	if (rsi != NULL && IsA(rsi, ReturnSetInfo) &&
		(rsi->allowedModes & SFRM_Materialize) != 0 &&
		rsi->expectedDesc != NULL && !PG_ARGISNULL(0))
	{
		Jsonb	   *rows = PG_GETARG_JSONB_P(0);
		MemoryContext qcxt = rsi->econtext->ecxt_per_query_memory;
		TupleDesc	desc;
		Tuplestorestate *store = NULL;

		if (JB_ROOT_IS_ARRAY(rows) && !JB_ROOT_IS_SCALAR(rows))
		{
			/* the result's descriptor, which lives as long as its rows */
			MemoryContext old = MemoryContextSwitchTo(qcxt);

			desc = CreateTupleDescCopy(rsi->expectedDesc);
			MemoryContextSwitchTo(old);
			store = pgi_json_rows_store(rows, desc,
										(rsi->allowedModes & SFRM_Materialize_Random) != 0,
										qcxt);
		}
		if (store != NULL)
		{
			rsi->setDesc = desc;
			rsi->returnMode = SFRM_Materialize;
			rsi->setResult = store;
			PG_RETURN_NULL();
		}
	}

	InitFunctionCallInfoData(*inner, fcinfo->flinfo, 1, fcinfo->fncollation,
							 fcinfo->context, fcinfo->resultinfo);
	inner->args[0] = fcinfo->args[0];
	result = jsonb_to_recordset(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}

/*
 * Its planner support: the estimate argument, when the planner sees it as
 * a constant (it is written into the statement as one), is the function's
 * row count.
 */
Datum
pgi_jsonb_to_recordset_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestRows *req;
	Node	   *est;

	if (!IsA(rawreq, SupportRequestRows))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestRows *) rawreq;
	if (!is_funcclause(req->node) ||
		list_length(((FuncExpr *) req->node)->args) != 2)
		PG_RETURN_POINTER(NULL);
	est = lsecond(((FuncExpr *) req->node)->args);
	if (req->root != NULL)
		est = estimate_expression_value(req->root, est);
	if (!IsA(est, Const) || ((Const *) est)->constisnull ||
		((Const *) est)->consttype != INT8OID ||
		DatumGetInt64(((Const *) est)->constvalue) <= 0)
		PG_RETURN_POINTER(NULL);
	req->rows = (double) DatumGetInt64(((Const *) est)->constvalue);
	PG_RETURN_POINTER(req);
}

/*
 * The row type a one-object JSON source is read as, from the call's
 * columns (the target's, in the order of the source's keys): their types,
 * typmods and collations, as json_describe's column list declares them.
 */
TupleDesc
pgi_upsert_json_row_desc(const PgiColumnList *cols)
{
	TupleDesc	desc = CreateTemplateTupleDesc(cols->ncols);
	int			i;

	for (i = 0; i < cols->ncols; i++)
	{
		const PgiColumn *col = &cols->cols[i];

		TupleDescInitEntry(desc, i + 1, col->name, col->typid, col->typmod, 0);
		TupleDescInitEntryCollation(desc, i + 1, col->collid);
	}
	return desc;
}

/*
 * The one object of a one-row JSON source (rows) into values/nulls (by
 * position in desc), in snapshot: what the statement's FROM item
 * _jsonb_to_recordset($1, 0) AS s0(column list) yields, without a
 * statement.  The function is called as the executor calls a set-returning
 * FROM item, with desc as the column list and a function call of its own
 * (jsonb_to_recordset's, which it may call: its caches live for this call
 * only, as they would in a statement), so every value is read, coerced and
 * checked exactly as there.  False if it yields no row.  The values live in
 * the current memory context.
 */
bool
pgi_upsert_json_one_row(Datum rows, TupleDesc desc, Snapshot snapshot,
						Datum *values, bool *nulls)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	ExprContext *econtext = CreateStandaloneExprContext();
	TupleTableSlot *slot;
	bool		found;
	int			i;

	fmgr_info(F_JSONB_TO_RECORDSET, &flinfo);
	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.expectedDesc = desc;
	rsinfo.allowedModes = (int) SFRM_Materialize;
	rsinfo.returnMode = SFRM_ValuePerCall;
	rsinfo.isDone = ExprSingleResult;
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL,
							 (Node *) &rsinfo);
	fcinfo->args[0].value = rows;
	fcinfo->args[0].isnull = false;

	PushActiveSnapshot(snapshot);
	(void) pgi_jsonb_to_recordset(fcinfo);
	PopActiveSnapshot();
	if (rsinfo.returnMode != SFRM_Materialize || rsinfo.setResult == NULL)
		elog(ERROR, "_jsonb_to_recordset did not return a tuplestore");

	slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);
	found = tuplestore_gettupleslot(rsinfo.setResult, true, false, slot);
	if (found)
	{
		slot_getallattrs(slot);
		for (i = 0; i < desc->natts; i++)
		{
			values[i] = slot->tts_values[i];
			nulls[i] = slot->tts_isnull[i];
		}
	}
	/* the tuplestore, which holds the values, stays until the call's end */
	ExecDropSingleTupleTableSlot(slot);
	FreeExprContext(econtext, true);
	return found;
}

/*
 * A JSON source's columns are its keys, each of the type and collation of
 * the target's column of that name: json_rows_call's function with that
 * column list.
 */
static void
json_describe(UpsertSource *source, PgiRelation *target)
{
	int			i;

	source->columns.ncols = 0;
	source->columns.cols = palloc0(sizeof(PgiColumn) * source->nkeys);
	appendStringInfoString(&source->from, " s0(");
	for (i = 0; i < source->nkeys; i++)
	{
		char	   *name = source->keys[i];
		int			t = pgi_column_index(&target->columns, name);
		PgiColumn  *col;

		CHECK_FOR_INTERRUPTS();
		if (t < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key \"%s\" of argument \"rows\" is not a column of \"%s\"",
							name, target->displayname),
					 errhint("Every key of every object must name a column of the target.")));
		col = &source->columns.cols[source->columns.ncols++];
		*col = target->columns.cols[t];
		if (i > 0)
			appendStringInfoString(&source->from, ", ");
		pgi_append_ident(&source->from, col->name);
		appendStringInfoChar(&source->from, ' ');
		pgi_append_type(&source->from, col->typid, col->typmod);
		/*
		 * Compared as the target compares it, as a relation's would be; a
		 * column of its type's own collation needs no clause for that (and
		 * the parser then looks up no collation by name).
		 */
		if (OidIsValid(col->collid) &&
			col->collid != get_typcollation(col->typid))
		{
			appendStringInfoString(&source->from, " COLLATE ");
			pgi_append_collation(&source->from, col->collid);
		}
	}
	appendStringInfoChar(&source->from, ')');
}

Datum
pgi_idempotent_upsert_json(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	UpsertSource *source = pgi_upsert_source_new();
	Jsonb	   *rows;
	char	  **keys;
	int			nkeys;
	int64		nrows;
	int			i;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "rows");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	rows = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(rows) || JB_ROOT_IS_SCALAR(rows))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"rows\" must be a JSON array of objects")));

	source->name = "rows";
	pgi_params_add(&source->params, JSONBOID, PointerGetDatum(rows));

	SPI_connect();

	/* the columns are the union of the objects' keys */
	nrows = json_scan(rows, &keys, &nkeys);
	if (nrows == 0)
	{
		/* nothing to merge: an empty batch is a valid, empty replay */
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		pgi_require_arg(fcinfo, 4, "on_duplicate");
		pgi_require_arg(fcinfo, 5, "dry_run");
		for (i = 0; i < 5; i++)
			values[i] = Int64GetDatum(0);
		/* before SPI_finish, which frees the int8s where they are pointers */
		pgi_return_row(fcinfo, values, nulls);
		SPI_finish();
		PG_RETURN_NULL();
	}
	if (nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the objects in argument \"rows\" have no keys")));
	source->rows = nrows;

	source->keys = keys;
	source->nkeys = nkeys;
	source->describe = json_describe;

	/*
	 * the shape: the row estimate (fixed width, first), then the keys, in
	 * their sorted order, each ended by a zero byte
	 */
	source->shape = makeStringInfo();
	json_rows_call(source, fcinfo->flinfo->fn_oid, nrows);
	for (i = 0; i < nkeys; i++)
		appendBinaryStringInfo(source->shape, keys[i], strlen(keys[i]) + 1);

	pgi_upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}
