/*-------------------------------------------------------------------------
 *
 * sqlbuild.c
 *	  Building SQL text that neither odd names nor a hostile search_path can
 *	  change, and running it through SPI.
 *
 * Every identifier goes through quote_identifier, every type is printed
 * schema-qualified, and every operator is written OPERATOR(schema.op) with
 * the operator looked up from the type cache by OID, so the text means the
 * same thing whatever search_path the caller has.  Values never appear in
 * the text: they travel as SPI parameters.
 *
 * Statements are set-based and streamed by the executor; the only rows that
 * come back through SPI are the one-row answers of aggregate queries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/queryenvironment.h"
#include "utils/resowner.h"
#include "utils/snapshot.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "pg_idempotent.h"

void
pgi_append_ident(StringInfo buf, const char *ident)
{
	appendStringInfoString(buf, quote_identifier(ident));
}

/* alias.column, or just column when alias is NULL */
void
pgi_append_column(StringInfo buf, const char *alias, const PgiColumn *col)
{
	if (alias != NULL)
		appendStringInfo(buf, "%s.", alias);
	pgi_append_ident(buf, col->name);
}

/*
 * The head of an INSERT of cols into target (with an alias when
 * target_alias is given): "INSERT INTO target (c1, c2) ", followed, when
 * alias is given, by the select list "SELECT alias.c1, alias.c2" of the same
 * columns in the same order.
 */
void
pgi_append_insert_into(StringInfo buf, const char *target,
					   const char *target_alias, const PgiColumnList *cols,
					   const char *alias)
{
	appendStringInfo(buf, "INSERT INTO %s ", target);
	if (target_alias != NULL)
		appendStringInfo(buf, "AS %s ", target_alias);
	appendStringInfoChar(buf, '(');
	pgi_append_column_list(buf, NULL, cols, NIL);
	appendStringInfoString(buf, ") ");
	if (alias != NULL)
	{
		appendStringInfoString(buf, "SELECT ");
		pgi_append_column_list(buf, alias, cols, NIL);
	}
}

/*
 * A comma-separated column list; indexes is a List of positions in cols,
 * or NIL for all of them.
 */
void
pgi_append_column_list(StringInfo buf, const char *alias,
					   const PgiColumnList *cols, List *indexes)
{
	int			i;
	ListCell   *lc;

	if (indexes == NIL)
	{
		for (i = 0; i < cols->ncols; i++)
		{
			if (i > 0)
				appendStringInfoString(buf, ", ");
			pgi_append_column(buf, alias, &cols->cols[i]);
		}
		return;
	}
	foreach(lc, indexes)
	{
		if (lc != list_head(indexes))
			appendStringInfoString(buf, ", ");
		pgi_append_column(buf, alias, &cols->cols[lfirst_int(lc)]);
	}
}

void
pgi_append_type(StringInfo buf, Oid typid, int32 typmod)
{
	appendStringInfoString(buf,
						   format_type_extended(typid, typmod,
												FORMAT_TYPE_TYPEMOD_GIVEN |
												FORMAT_TYPE_FORCE_QUALIFY));
}

/* a collation's schema-qualified, quoted name */
void
pgi_append_collation(StringInfo buf, Oid collid)
{
	HeapTuple	tup;
	Form_pg_collation coll;

	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	coll = (Form_pg_collation) GETSTRUCT(tup);
	appendStringInfo(buf, "%s.%s",
					 quote_identifier(get_namespace_name(coll->collnamespace)),
					 quote_identifier(NameStr(coll->collname)));
	ReleaseSysCache(tup);
}

/*
 * alias.col converted to typid/typmod as an INSERT would convert it: with
 * assignment, not explicit, semantics.  CAST(x AS varchar(3)) silently
 * truncates, where assigning a longer value to a varchar(3) column is an
 * error (22001), so a length coercion is written as a call of the type's
 * length coercion function with isExplicit false, as the parser itself
 * builds it for an INSERT.
 */
void
pgi_append_assignment_cast(StringInfo buf, const char *alias,
						   const PgiColumn *col, Oid typid, int32 typmod)
{
	Oid			basetype = typid;
	int32		basetypmod = typmod;
	Oid			funcid = InvalidOid;

	/*
	 * a domain over varchar(3) carries its length in the domain, not the
	 * column
	 */
	if (typmod < 0)
		basetype = getBaseTypeAndTypmod(typid, &basetypmod);

	if (basetypmod >= 0 &&
		find_typmod_coercion_function(basetype, &funcid) == COERCION_PATH_FUNC &&
		get_func_nargs(funcid) == 3)
	{
		if (basetype != typid)
			appendStringInfoString(buf, "CAST(");
		appendStringInfo(buf, "%s.",
						 quote_identifier(get_namespace_name(get_func_namespace(funcid))));
		pgi_append_ident(buf, get_func_name(funcid));
		appendStringInfoString(buf, "(CAST(");
		pgi_append_column(buf, alias, col);
		appendStringInfoString(buf, " AS ");
		pgi_append_type(buf, basetype, -1);
		appendStringInfo(buf, "), %d, false)", basetypmod);
		if (basetype != typid)
		{
			appendStringInfoString(buf, " AS ");
			pgi_append_type(buf, typid, typmod);
			appendStringInfoChar(buf, ')');
		}
		return;
	}
	appendStringInfoString(buf, "CAST(");
	pgi_append_column(buf, alias, col);
	appendStringInfoString(buf, " AS ");
	pgi_append_type(buf, typid, typmod);
	appendStringInfoChar(buf, ')');
}

/*
 * Whether a source column reaches its target column through a cast (of
 * type, or of length or precision): what pgi_match_source_columns converts.
 */
bool
pgi_column_needs_cast(const PgiColumn *scol, const PgiColumn *tcol)
{
	return scol->typid != tcol->typid ||
		(tcol->typmod >= 0 && scol->typmod != tcol->typmod);
}

/*
 * Match a source's columns to a target's by name, as an INSERT of the
 * source into the target would: a column the target lacks is 42703, a
 * column named twice 42701, a generated or GENERATED ALWAYS identity target
 * column 428C9, a type with no assignment cast 42804.  Returns the target's
 * columns in the source's order, and in *sel a SELECT of them over "from"
 * (a FROM item aliased s0) converted to the target's types with assignment
 * semantics, so that whatever compares or writes them later works on values
 * of the target's types.
 */
PgiColumnList
pgi_match_source_columns(PgiRelation *target, const PgiColumnList *source,
						 const char *sourcename, const char *from, char **sel)
{
	PgiColumnList cols;
	StringInfoData buf;
	int			i;

	if (source->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\" has no columns", sourcename)));

	cols.ncols = 0;
	cols.cols = palloc0(sizeof(PgiColumn) * source->ncols);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (i = 0; i < source->ncols; i++)
	{
		const PgiColumn *scol = &source->cols[i];
		int			t = pgi_column_index(&target->columns, scol->name);
		PgiColumn  *tcol;
		bool		cast;
		bool		recollate;

		if (t < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of source \"%s\" does not exist in \"%s\"",
							scol->name, sourcename, target->displayname),
					 errhint("Leave the column out of the source, or add it to the target.")));
		if (pgi_column_index(&cols, scol->name) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" appears more than once in source \"%s\"",
							scol->name, sourcename)));
		tcol = &target->columns.cols[t];
		if (tcol->generated != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("column \"%s\" of \"%s\" is a generated column",
							tcol->name, target->displayname),
					 errdetail("Generated columns are computed by the table and cannot be written."),
					 errhint("Leave \"%s\" out of the source.", tcol->name)));
		if (tcol->identity == ATTRIBUTE_IDENTITY_ALWAYS)
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("column \"%s\" of \"%s\" is an identity column defined as GENERATED ALWAYS",
							tcol->name, target->displayname),
					 errhint("Leave \"%s\" out of the source, or make it GENERATED BY DEFAULT.",
							 tcol->name)));
		if (scol->typid != tcol->typid &&
			!can_coerce_type(1, (Oid *) &scol->typid, &tcol->typid,
							 COERCION_ASSIGNMENT))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is of type %s in source \"%s\" but of type %s in \"%s\"",
							scol->name, format_type_be(scol->typid), sourcename,
							format_type_be(tcol->typid), target->displayname),
					 errdetail("There is no assignment cast from %s to %s.",
							   format_type_be(scol->typid),
							   format_type_be(tcol->typid))));

		cols.cols[cols.ncols++] = *tcol;
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		cast = pgi_column_needs_cast(scol, tcol);
		recollate = OidIsValid(tcol->collid) && scol->collid != tcol->collid;
		if (cast)
			pgi_append_assignment_cast(&buf, "s0", scol, tcol->typid, tcol->typmod);
		else
			pgi_append_column(&buf, "s0", scol);

		/*
		 * Source values are compared as the target compares them: a key
		 * unique byte for byte ('a' and 'A') may be one key under the
		 * target's case-insensitive collation, and the checks must find that
		 * duplicate before ON CONFLICT or the unique index does.
		 */
		if (recollate)
		{
			appendStringInfoString(&buf, " COLLATE ");
			pgi_append_collation(&buf, tcol->collid);
		}
		if (cast || recollate)
		{
			appendStringInfoString(&buf, " AS ");
			pgi_append_ident(&buf, tcol->name);
		}
	}
	appendStringInfo(&buf, " FROM %s", from);
	*sel = buf.data;
	return cols;
}

/* OPERATOR(schema.name), from the operator's OID */
void
pgi_append_operator(StringInfo buf, Oid opno)
{
	HeapTuple	tup;
	Form_pg_operator oper;

	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	oper = (Form_pg_operator) GETSTRUCT(tup);
	appendStringInfo(buf, "OPERATOR(%s.%s)",
					 quote_identifier(get_namespace_name(oper->oprnamespace)),
					 NameStr(oper->oprname));
	ReleaseSysCache(tup);
}

/*
 * The default btree operator of a type for a strategy (equal, greater,
 * less), as the type cache knows it.  A type without one cannot be used as a
 * key or a version: that is the caller's error, 42883.
 */
Oid
pgi_type_operator(Oid typid, int strategy, const char *colname)
{
	TypeCacheEntry *tce;
	Oid			opno;

	tce = lookup_type_cache(typid, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR |
							TYPECACHE_GT_OPR);
	switch (strategy)
	{
		case BTEqualStrategyNumber:
			opno = tce->eq_opr;
			break;
		case BTGreaterStrategyNumber:
			opno = tce->gt_opr;
			break;
		case BTLessStrategyNumber:
			opno = tce->lt_opr;
			break;
		default:
			elog(ERROR, "unexpected strategy %d", strategy);
	}
	if (!OidIsValid(opno))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 strategy == BTEqualStrategyNumber ?
				 errmsg("could not identify an equality operator for type %s",
						format_type_be(typid)) :
				 errmsg("could not identify an ordering operator for type %s",
						format_type_be(typid)),
				 errdetail("Column \"%s\" needs one to be compared.", colname)));
	return opno;
}

/*
 * Whether values of the type that its equality operator calls equal are
 * always identical images, under the collation: what the btree operator
 * class says (its equalimage support function, as deduplication asks).
 * Not for numeric (1.5 and 1.50), float (0 and -0), or text under a
 * nondeterministic collation.
 */
bool
pgi_type_equal_is_image(Oid typid, Oid collid)
{
	TypeCacheEntry *tce = lookup_type_cache(typid, TYPECACHE_BTREE_OPFAMILY);
	Oid			proc;

	if (!OidIsValid(tce->btree_opf))
		return false;
	proc = get_opfamily_proc(tce->btree_opf, tce->btree_opintype,
							 tce->btree_opintype, BTEQUALIMAGE_PROC);
	if (!OidIsValid(proc))
		return false;
	return DatumGetBool(OidFunctionCall1Coll(proc, collid,
											 ObjectIdGetDatum(tce->btree_opintype)));
}

/* left.k1 = right.k1 AND left.k2 = right.k2 ... with each type's own "=" */
void
pgi_append_key_match(StringInfo buf, const char *left, const char *right,
					 const PgiColumnList *cols, List *key)
{
	ListCell   *lc;

	foreach(lc, key)
	{
		const PgiColumn *col = &cols->cols[lfirst_int(lc)];

		if (lc != list_head(key))
			appendStringInfoString(buf, " AND ");
		pgi_append_column(buf, left, col);
		appendStringInfoChar(buf, ' ');
		pgi_append_operator(buf, pgi_type_operator(col->typid,
												   BTEqualStrategyNumber,
												   col->name));
		appendStringInfoChar(buf, ' ');
		pgi_append_column(buf, right, col);
	}
}

/*
 * alias.ctid = tid, for a row found again by the ctid it was read at.  Under
 * READ COMMITTED a write that waited for the row rechecks its new version,
 * and a changed row must then fail the match: its ctid moved.  The ctid is
 * compared twice for that.  A TID scan fetches by the first and takes it out
 * of its filter, and releases of PostgreSQL older than the 2025 fix that
 * made a TID scan recheck its TIDs (16.2 among them) let the recheck pass
 * whatever the ctid.  The second, which no TID scan takes for its own,
 * stays in the filter, which every release rechecks.
 */
void
pgi_append_tid_match(StringInfo buf, const char *alias, const char *tid)
{
	appendStringInfo(buf, "%s.ctid OPERATOR(pg_catalog.=) %s AND "
					 "(%s.ctid OPERATOR(pg_catalog.=) %s) IS TRUE",
					 alias, tid, alias, tid);
}

/* (a.k1 IS NULL OR a.k2 IS NULL) */
void
pgi_append_any_null(StringInfo buf, const char *alias,
					const PgiColumnList *cols, List *indexes)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '(');
	foreach(lc, indexes)
	{
		if (lc != list_head(indexes))
			appendStringInfoString(buf, " OR ");
		pgi_append_column(buf, alias, &cols->cols[lfirst_int(lc)]);
		appendStringInfoString(buf, " IS NULL");
	}
	appendStringInfoChar(buf, ')');
}

/*
 * Whether two rows differ (or are identical) in the given columns, by
 * binary image: the comparison REFRESH MATERIALIZED VIEW CONCURRENTLY uses.
 * 1.0 and 1.00 differ, NULL equals NULL, and types without an equality
 * operator compare too.  With no columns, rows are identical.  fn is
 * _images_differ (pgi_images_differ_fn), which compares the columns without
 * building a row of each side; without it (an extension not yet updated
 * from 0.1.0), or for rows too wide for one call, record_image_ne.
 */
void
pgi_append_image_differs(StringInfo buf, const char *fn, const char *left,
						 const char *right, const PgiColumnList *cols,
						 List *indexes, bool differs)
{
	if (indexes == NIL)
	{
		appendStringInfoString(buf, differs ? "false" : "true");
		return;
	}
	if (fn != NULL && 2 * list_length(indexes) <= FUNC_MAX_ARGS)
	{
		appendStringInfo(buf, "%s%s(", differs ? "" : "NOT ", fn);
		pgi_append_column_list(buf, left, cols, indexes);
		appendStringInfoString(buf, ", ");
		pgi_append_column_list(buf, right, cols, indexes);
		appendStringInfoChar(buf, ')');
		return;
	}

	/*
	 * A function call, not OPERATOR(*<>): between two ROW() constructors the
	 * parser would expand an operator column by column.
	 */
	appendStringInfo(buf, "pg_catalog.%s(ROW(",
					 differs ? "record_image_ne" : "record_image_eq");
	pgi_append_column_list(buf, left, cols, indexes);
	appendStringInfoString(buf, "), ROW(");
	pgi_append_column_list(buf, right, cols, indexes);
	appendStringInfoChar(buf, ')');
	appendStringInfoChar(buf, ')');
}

/*
 * The schema of the extension's internal helpers (_fingerprint_agg,
 * _replace_image), which the SQL we build calls by name, not quoted.
 *
 * A call by name picks, among the functions of that name in the schema,
 * the one whose argument types match best, and an overload with exactly
 * the argument types of a call (a _fingerprint_agg of one table's row
 * type, a _replace_image(date, int, int)) is preferred to ours, which take
 * record and VARIADIC "any"; a cast to record does not help (the parser
 * drops it), and an overload with a defaulted extra argument makes even an
 * exact match ambiguous.  So the helpers live in pgi_internal, a schema the
 * extension creates and nobody but its owner may create in, and this makes
 * sure the schema of that name is the extension's own (a member of the
 * extension that fn, the calling SQL function, belongs to) before SQL
 * calls into it.  A database whose extension is still 0.1.0 has no such
 * schema and keeps its helpers beside fn, where they were.
 */
static char *
internal_schema(Oid fn, Oid *ext)
{
	Oid			nsp = get_namespace_oid(PGI_INTERNAL_SCHEMA, true);
	char	   *name;

	*ext = getExtensionOfObject(ProcedureRelationId, fn);
	if (OidIsValid(*ext) && OidIsValid(nsp) &&
		getExtensionOfObject(NamespaceRelationId, nsp) == *ext)
		return pstrdup(PGI_INTERNAL_SCHEMA);
	name = get_namespace_name(get_func_namespace(fn));
	if (name == NULL)
		elog(ERROR, "cache lookup failed for the schema of function %u", fn);
	return name;
}

char *
pgi_internal_schema(Oid fn)
{
	Oid			ext;

	return internal_schema(fn, &ext);
}

/*
 * The qualified name of the helper pgi_internal.name(argtypes), or NULL
 * where the extension's objects predate it (an extension still at 0.1.0 has
 * no pgi_internal schema; a later helper is missing until the update that
 * adds it): the caller then builds its SQL without it.  Only a member of
 * fn's extension is returned.
 */
char *
pgi_internal_function(Oid fn, const char *name, int nargs, const Oid *argtypes)
{
	Oid			ext;
	char	   *schema = internal_schema(fn, &ext);
	Oid			helper;

	if (strcmp(schema, PGI_INTERNAL_SCHEMA) != 0)
		return NULL;
	helper = LookupFuncName(list_make2(makeString(schema), makeString(pstrdup(name))),
							nargs, argtypes, true);
	if (!OidIsValid(helper) ||
		getExtensionOfObject(ProcedureRelationId, helper) != ext)
		return NULL;
	return quote_qualified_identifier(schema, name);
}

/* _images_differ(VARIADIC "any") (image.c), or NULL: see above. */
char *
pgi_images_differ_fn(Oid fn)
{
	Oid			any = ANYOID;

	return pgi_internal_function(fn, "_images_differ", 1, &any);
}

/*
 * The given columns as one sortable value: the column itself when there
 * is one, else ROW(alias.c1, alias.c2, ...).  What a key is counted,
 * grouped and ordered by.
 */
void
pgi_append_row_value(StringInfo buf, const char *alias,
					 const PgiColumnList *cols, List *indexes)
{
	if (list_length(indexes) == 1)
	{
		pgi_append_column(buf, alias, &cols->cols[linitial_int(indexes)]);
		return;
	}
	appendStringInfoString(buf, "ROW(");
	pgi_append_column_list(buf, alias, cols, indexes);
	appendStringInfoChar(buf, ')');
}

/* ROW(alias.c1, ...)::text: key values as a message shows them */
void
pgi_append_row_text(StringInfo buf, const char *alias,
					const PgiColumnList *cols, List *indexes)
{
	appendStringInfoString(buf, "ROW(");
	pgi_append_column_list(buf, alias, cols, indexes);
	appendStringInfoString(buf, ")::pg_catalog.text");
}

/*
 * The duplicate check over CTE s, both halves: ", count(DISTINCT key) ...
 * AS nd", a column of the check's aggregate (keys with a null left out:
 * they are counted apart), and ", d AS (...)": how many keys are
 * duplicated and the least of them, for the error's DETAIL, read only
 * where nd shows some.  Left out for a source unique on the key
 * (distinct.c).
 */
void
pgi_append_distinct_keys(StringInfo buf, const PgiColumnList *cols, List *key)
{
	appendStringInfoString(buf, ", pg_catalog.count(DISTINCT ");
	pgi_append_row_value(buf, "s", cols, key);
	appendStringInfoString(buf, ") FILTER (WHERE NOT ");
	pgi_append_any_null(buf, "s", cols, key);
	appendStringInfoString(buf, ") AS nd");
}

void
pgi_append_duplicated_keys(StringInfo buf, const PgiColumnList *cols,
						   List *key)
{
	appendStringInfoString(buf, ", d AS (SELECT pg_catalog.count(*) AS n, pg_catalog.min(");
	pgi_append_row_text(buf, "g", cols, key);
	appendStringInfoString(buf, ") AS ex FROM (SELECT ");
	pgi_append_column_list(buf, "s", cols, key);
	appendStringInfoString(buf, " FROM s GROUP BY ");
	pgi_append_column_list(buf, "s", cols, key);
	appendStringInfoString(buf, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) g)");
}

/* "c1, c2": column names as a message lists them, unquoted */
char *
pgi_column_names(const PgiColumnList *cols, List *indexes)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, indexes)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, cols->cols[lfirst_int(lc)].name);
	}
	return buf.data;
}

/*
 * Settings for a call's statements, undone when the call returns or its
 * (sub)transaction aborts (AtEOXact_GUC(true, nest) with the level
 * returned): no JIT (these statements are a join and a write per row,
 * whose expressions the JIT's compile time was measured never to pay
 * back), and with probe, for a batch small against the table, no hash or
 * merge join, so that each batch row probes the key's index, as ON
 * CONFLICT does, whatever the estimates say.
 */
int
pgi_begin_settings(bool probe)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (probe)
	{
		(void) set_config_option("enable_hashjoin", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_mergejoin", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	return nest;
}

/*
 * Add a non-null parameter ($n, n = its position) to a parameter list that
 * starts zeroed.
 */
void
pgi_params_add(PgiParams *params, Oid type, Datum value)
{
	if (params->nargs >= (int) lengthof(params->types))
		elog(ERROR, "too many SPI parameters");
	params->types[params->nargs] = type;
	params->values[params->nargs] = value;
	params->nulls[params->nargs] = ' ';
	params->nargs++;
}

/* An SPI result code, when it is the one expected; else an internal error. */
static int
spi_result(int ret, int expected, const char *sql)
{
	if (ret != expected)
		elog(ERROR, "unexpected SPI result %s for: %s",
			 SPI_result_code_string(ret), sql);
	return ret;
}

/*
 * Run one statement through SPI with parameters.  tcount bounds the rows
 * kept in SPI_tuptable: callers pass 0 only for statements that return a
 * bounded answer (an aggregate) or none at all.
 */
int
pgi_spi_run(const char *sql, const PgiParams *params, bool read_only,
			long tcount, int expected)
{
	int			ret;

	if (params != NULL && params->nargs > 0)
		ret = SPI_execute_with_args(sql, params->nargs,
									(Oid *) params->types,
									(Datum *) params->values,
									params->nulls, read_only, tcount);
	else
		ret = SPI_execute(sql, read_only, tcount);
	return spi_result(ret, expected, sql);
}

/*
 * Run a SELECT once and keep its rows, as of that statement's snapshot, for
 * the rest of the call: the later statements of the same SPI connection
 * read them by m->name, an ephemeral named relation (what a trigger's
 * transition tables are).  An operation that reads its source in several
 * statements, each with its own snapshot, reads it here instead, so that a
 * writer committing between two of them (an overlapping run emptying a
 * staging table) cannot make the call check one set of rows and write
 * another; a source that is a view with a volatile part is evaluated once.
 *
 * The rows are streamed by the executor into a tuplestore, which keeps up
 * to work_mem in memory and the rest in a temporary file, as a hash join's
 * batches do.  Values are detoasted on the way in: a TOAST pointer into the
 * source would dangle once the source row is deleted and vacuumed, which
 * our own later snapshots no longer prevent.  The name must not be one
 * the caller's statements use unqualified (a CTE's name would hide it).
 */
void
pgi_spi_materialize(const char *sql, const char *name, PgiMaterialized *m)
{
	pgi_spi_materialize_some(sql, NULL, name, m, NULL, NULL);
}

/* What pgi_spi_materialize_some passes its rows through. */
typedef struct FilterReceiver
{
	DestReceiver pub;
	DestReceiver *store;		/* the tuplestore's receiver */
	PgiRowFilter keep;
	void	   *arg;
} FilterReceiver;

static bool
filter_receive(TupleTableSlot *slot, DestReceiver *self)
{
	FilterReceiver *f = (FilterReceiver *) self;

	if (!f->keep(slot, f->arg))
		return true;
	return f->store->receiveSlot(slot, f->store);
}

static void
filter_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	FilterReceiver *f = (FilterReceiver *) self;

	f->store->rStartup(f->store, operation, typeinfo);
}

static void
filter_shutdown(DestReceiver *self)
{
	FilterReceiver *f = (FilterReceiver *) self;

	f->store->rShutdown(f->store);
}

static void
filter_destroy(DestReceiver *self)
{
	FilterReceiver *f = (FilterReceiver *) self;

	f->store->rDestroy(f->store);
	pfree(f);
}

/*
 * pgi_spi_materialize with parameters, keeping only the rows keep() says
 * to keep (all when keep is NULL): keep sees every row the statement
 * returns, so a caller can count the rows it drops in the same pass.
 */
void
pgi_spi_materialize_some(const char *sql, const PgiParams *params,
						 const char *name, PgiMaterialized *m,
						 PgiRowFilter keep, void *arg)
{
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	DestReceiver *dest;
	SPIExecuteOptions options;
	EphemeralNamedRelation enr;
	ParamListInfo paramli = NULL;
	int			nargs = params != NULL ? params->nargs : 0;
	int			ret;
	int			i;

	plan = SPI_prepare(sql, nargs, nargs > 0 ? (Oid *) params->types : NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare statement: %s: %s",
			 SPI_result_code_string(SPI_result), sql);
	ps = linitial(SPI_plan_get_plan_sources(plan));
	if (ps->resultDesc == NULL)
		elog(ERROR, "statement returns no rows: %s", sql);

	m->name = name;
	m->rows = tuplestore_begin_heap(false, false, work_mem);
	dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, m->rows, CurrentMemoryContext,
									true, NULL, NULL);
	if (keep != NULL)
	{
		FilterReceiver *f = palloc0(sizeof(FilterReceiver));

		f->pub.receiveSlot = filter_receive;
		f->pub.rStartup = filter_startup;
		f->pub.rShutdown = filter_shutdown;
		f->pub.rDestroy = filter_destroy;
		f->pub.mydest = dest->mydest;
		f->store = dest;
		f->keep = keep;
		f->arg = arg;
		dest = &f->pub;
	}
	if (nargs > 0)
	{
		paramli = makeParamList(nargs);
		for (i = 0; i < nargs; i++)
		{
			paramli->params[i].value = params->values[i];
			paramli->params[i].isnull = params->nulls[i] == 'n';
			paramli->params[i].pflags = PARAM_FLAG_CONST;
			paramli->params[i].ptype = params->types[i];
		}
	}
	memset(&options, 0, sizeof(options));
	options.params = paramli;
	options.read_only = false;
	options.dest = dest;
	ret = SPI_execute_plan_extended(plan, &options);
	dest->rDestroy(dest);
	spi_result(ret, SPI_OK_SELECT, sql);
	m->nrows = (int64) tuplestore_tuple_count(m->rows);

	enr = palloc0(sizeof(EphemeralNamedRelationData));
	enr->md.name = pstrdup(name);
	enr->md.reliddesc = InvalidOid;
	/* the result's descriptor lives in the plan: copied before it is freed */
	enr->md.tupdesc = CreateTupleDescCopy(ps->resultDesc);
	SPI_freeplan(plan);
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) m->nrows;
	enr->reldata = m->rows;
	ret = SPI_register_relation(enr);
	if (ret != SPI_OK_REL_REGISTER)
		elog(ERROR, "could not register \"%s\": %s", name,
			 SPI_result_code_string(ret));
}

/*
 * Drop what pgi_spi_materialize kept, before SPI_finish: its temporary
 * file is closed now instead of reported as leaked at commit.  (On an
 * error the transaction's cleanup closes it.)
 */
void
pgi_spi_forget_materialized(PgiMaterialized *m)
{
	if (m->rows == NULL)
		return;
	SPI_unregister_relation(m->name);
	tuplestore_end(m->rows);
	m->rows = NULL;
}

/*
 * A bigint column of the last result, 0 when NULL.  The column must be a
 * bigint: an int4 read as an int8 only happens to work where int8 is passed
 * by value (on 32-bit builds it is a pointer, and an int4 Datum is not),
 * so a statement that says "0" where it means "0::pg_catalog.int8" is an
 * internal error here on every platform, not a crash on some.  The value
 * is returned, not the Datum, so it outlives SPI_finish.
 */
int64
pgi_spi_int8(int row, int col)
{
	bool		isnull;
	Datum		d;
	Oid			typid = SPI_gettypeid(SPI_tuptable->tupdesc, col);

	if (typid != INT8OID)
		elog(ERROR, "column %d of the result is of type %s, not bigint",
			 col, format_type_be(typid));
	d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
					  &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* A column of the last result as text, or NULL; lives until SPI_finish. */
char *
pgi_spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* Whether a column of the last result is NULL. */
bool
pgi_spi_isnull(int row, int col)
{
	bool		isnull;

	(void) SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						 &isnull);
	return isnull;
}

/* Raise 22004 for a NULL argument that has no meaning as NULL. */
void
pgi_require_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", argname)));
}

/*
 * Return the single row of a RETURNS TABLE function, in materialize mode so
 * the function runs exactly once however the caller consumes it.
 */
void
pgi_return_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Statements prepared once per backend and kept (SPI_keepplan), for the
 * operations called once per message (the ledger, checkpoints), where
 * parsing and planning would cost more than the work.  The text names the
 * extension's schema as @extschema@; the plan is prepared for the schema
 * the calling function lives in (the extension is not relocatable, so its
 * tables are there too) and prepared again if that ever changes (the
 * extension dropped and created in another schema).  A table dropped and
 * created again under the same name is handled by the plan cache itself.
 * Must be called between SPI_connect and SPI_finish.
 */
struct _SPI_plan *
pgi_cached_plan(PgiCachedPlan *cp, Oid nspid)
{
	if (cp->plan != NULL && cp->nspid == nspid)
		return cp->plan;
	if (cp->plan != NULL)
	{
		SPI_freeplan(cp->plan);
		cp->plan = NULL;
	}
	{
		const char *schema = quote_identifier(get_namespace_name(nspid));
		StringInfoData sql;
		const char *p = cp->sql;
		const char *hit;
		SPIPlanPtr	plan;

		initStringInfo(&sql);
		while ((hit = strstr(p, "@extschema@")) != NULL)
		{
			appendBinaryStringInfo(&sql, p, hit - p);
			appendStringInfoString(&sql, schema);
			p = hit + strlen("@extschema@");
		}
		appendStringInfoString(&sql, p);
		/* generic plans: the statements are index lookups whatever the values */
		plan = SPI_prepare_cursor(sql.data, cp->nargs, (Oid *) cp->argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "could not prepare statement: %s: %s",
				 SPI_result_code_string(SPI_result), sql.data);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep prepared statement");
		cp->plan = plan;
		cp->nspid = nspid;
	}
	return cp->plan;
}

/* Run a cached plan with its parameters (nulls as for SPI: ' ' or 'n'). */
int
pgi_spi_run_plan(PgiCachedPlan *cp, Oid nspid, Datum *values,
				 const char *nulls, bool read_only, long tcount,
				 int expected)
{
	int			ret;

	ret = SPI_execute_plan(pgi_cached_plan(cp, nspid), values, nulls,
						   read_only, tcount);
	return spi_result(ret, expected, cp->sql);
}

/*
 * The same, writing, in a snapshot of the caller's choosing instead of a
 * new one (SPI_execute_snapshot); InvalidSnapshot takes a new one, as
 * pgi_spi_run_plan does.
 */
int
pgi_spi_run_plan_in(PgiCachedPlan *cp, Oid nspid, Datum *values,
					const char *nulls, Snapshot snapshot, int expected)
{
	int			ret;

	ret = SPI_execute_snapshot(pgi_cached_plan(cp, nspid), values, nulls,
							   snapshot, InvalidSnapshot, false, true, 0);
	return spi_result(ret, expected, cp->sql);
}

/*
 * Run fn(arg) in an internal subtransaction.  If it fails with one of the
 * SQLSTATEs in catch_codes (a zero-terminated array), the subtransaction is
 * rolled back, undoing everything fn wrote, and that SQLSTATE is returned;
 * any other error propagates.  Returns 0 when fn succeeded.
 *
 * This is how an operation tries an optimistic fast path (a plain INSERT
 * where a concurrent session might insert the same key) and falls back to
 * the safe one without the caller ever seeing the first attempt's error.
 * The caller must be connected to SPI; SPI statements fn runs see the
 * subtransaction's own changes.
 */
int
pgi_run_in_subxact(void (*fn) (void *arg), void *arg, const int *catch_codes)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile int caught = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const int  *code;

		/*
		 * Roll the subtransaction back before anything else, whether or not
		 * the error is ours to absorb: an error that propagates with our
		 * subtransaction still open would leave the caller's own exception
		 * handling (a PL/pgSQL EXCEPTION block, a savepoint) one level off,
		 * which corrupts the transaction state.  This is what PL/pgSQL's
		 * exec_stmt_block does too.
		 */
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		for (code = catch_codes; *code != 0; code++)
		{
			if (edata->sqlerrcode == *code)
				caught = *code;
		}
		if (caught == 0)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return caught;
}

/* ----------------------------------------------------------------
 * Statements built as text, prepared once per backend for their text
 *
 * An upsert's statement is built from the catalogs on every call (so it
 * always says what the relations look like now), but parsing and planning
 * it is most of what a small call costs.  So each backend keeps the last
 * few statements it prepared, by their exact text: the same text is the
 * same statement, and a changed relation gives a changed text.  The plan
 * cache revalidates a kept plan when a relation it reads changes, and an
 * entry is also forgotten (its plan freed at the next lookup, never while
 * it runs) on any relcache invalidation of a relation it names, which
 * ALTER EXTENSION, ANALYZE, DDL and DROP all send.
 * ----------------------------------------------------------------
 */
#define TEXT_PLAN_CACHE_SIZE 64

typedef struct TextPlanEntry
{
	char	   *sql;			/* in TopMemoryContext; NULL: unused */
	uint32		hash;
	Oid			relids[2];
	bool		stale;			/* forget at the next lookup */
	int			running;		/* executions in progress */
	uint64		used;			/* for evicting the least recently used */
	SPIPlanPtr	plan;
} TextPlanEntry;

static TextPlanEntry text_plans[TEXT_PLAN_CACHE_SIZE];
static uint64 text_plans_clock;
static bool text_plans_registered;

static void
text_plans_forget(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < TEXT_PLAN_CACHE_SIZE; i++)
	{
		TextPlanEntry *e = &text_plans[i];

		if (e->sql != NULL &&
			(!OidIsValid(relid) || e->relids[0] == relid || e->relids[1] == relid))
			e->stale = true;
	}
}

static void
text_plan_free(TextPlanEntry *e)
{
	if (e->plan != NULL)
		SPI_freeplan(e->plan);
	pfree(e->sql);
	memset(e, 0, sizeof(*e));
}

static pg_noinline TextPlanEntry *
text_plan_lookup(const char *sql, const PgiParams *params,
				 const Oid *relids, int cursor_options)
{
	uint32		hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	TextPlanEntry *victim = NULL;
	TextPlanEntry *e;
	SPIPlanPtr	plan;
	int			i;

	if (!text_plans_registered)
	{
		CacheRegisterRelcacheCallback(text_plans_forget, (Datum) 0);
		text_plans_registered = true;
	}
	for (i = 0; i < TEXT_PLAN_CACHE_SIZE; i++)
	{
		e = &text_plans[i];
		if (e->sql != NULL && e->stale && e->running == 0)
			text_plan_free(e);
		if (e->sql != NULL && !e->stale && e->hash == hash &&
			strcmp(e->sql, sql) == 0)
		{
			e->used = ++text_plans_clock;
			return e;
		}
		if (e->running > 0)
			continue;
		if (e->sql == NULL)
		{
			if (victim == NULL || victim->sql != NULL)
				victim = e;
		}
		else if (victim == NULL ||
				 (victim->sql != NULL && e->used < victim->used))
			victim = e;
	}
	if (victim == NULL)
		return NULL;			/* every entry is running: prepare it once */

	plan = SPI_prepare_cursor(sql, params ? params->nargs : 0,
							  params ? (Oid *) params->types : NULL,
							  cursor_options);
	if (plan == NULL)
		elog(ERROR, "could not prepare statement: %s: %s",
			 SPI_result_code_string(SPI_result), sql);
	if (victim->sql != NULL)
		text_plan_free(victim);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep prepared statement");
	victim->sql = MemoryContextStrdup(TopMemoryContext, sql);
	victim->hash = hash;
	victim->relids[0] = relids[0];
	victim->relids[1] = relids[1];
	victim->plan = plan;
	victim->used = ++text_plans_clock;
	return victim;
}

/*
 * Run sql, prepared once per backend (see above), in snapshot (or a new
 * one when InvalidSnapshot, as SPI_execute would take).  relids names the
 * (up to two) relations whose invalidation forgets the plan.
 * cursor_options are SPI_prepare_cursor's (CURSOR_OPT_GENERIC_PLAN where
 * the plan does not depend on the parameters' values).
 */
int
pgi_spi_run_cached(const char *sql, const PgiParams *params,
				   const Oid *relids, int cursor_options,
				   Snapshot snapshot, bool read_only, int expected)
{
	TextPlanEntry *volatile e = text_plan_lookup(sql, params, relids, cursor_options);
	int			ret;

	if (e == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, params ? params->nargs : 0,
											  params ? (Oid *) params->types : NULL,
											  cursor_options);

		ret = SPI_execute_snapshot(plan,
								   params ? (Datum *) params->values : NULL,
								   params ? params->nulls : NULL,
								   snapshot, InvalidSnapshot, read_only,
								   true, 0);
		return spi_result(ret, expected, sql);
	}
	e->running++;
	PG_TRY();
	{
		ret = SPI_execute_snapshot(e->plan,
								   params ? (Datum *) params->values : NULL,
								   params ? params->nulls : NULL,
								   snapshot, InvalidSnapshot, read_only,
								   true, 0);
	}
	PG_FINALLY();
	{
		e->running--;
	}
	PG_END_TRY();
	return spi_result(ret, expected, sql);
}
