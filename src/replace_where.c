/*-------------------------------------------------------------------------
 *
 * replace_where.c
 *	  replace_where: the slice is the caller's predicate, parsed here as
 *	  exactly one boolean expression over the target's columns, refused if
 *	  it could write, lock or change between statements, and embedded as
 *	  its analysed, deparsed form; the tables its subqueries read are
 *	  locked against writers for the transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "replace.h"

PG_FUNCTION_INFO_V1(pgi_replace_where);

/*
 * Reject anything in a predicate that writes or locks: a data-modifying
 * statement in a WITH or a subquery, or a row-locking clause.
 */
static bool
predicate_writes_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, InsertStmt) || IsA(node, UpdateStmt) ||
		IsA(node, DeleteStmt) || IsA(node, MergeStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must not contain a data-modifying statement")));
	if (IsA(node, SelectStmt) && ((SelectStmt *) node)->lockingClause != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must not lock rows"),
				 errdetail("It contains a FOR UPDATE or FOR SHARE clause.")));
	return raw_expression_tree_walker(node, predicate_writes_walker, context);
}

static void
not_one_expression(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("predicate must be a single boolean expression"),
			 errdetail("%s", _(why)),
			 errhint("Write it as the condition of a WHERE clause over the target's columns, such as: day >= '2025-01-01' AND tenant_id = 7.")));
}

/*
 * The grammar's own syntax errors, said about the predicate: their cursor
 * position is within the predicate, not within the caller's statement.
 */
static List *
parse_expression_text(const char *text)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *raw = NIL;

	PG_TRY();
	{
		raw = raw_parser(text, RAW_PARSE_PLPGSQL_EXPR);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_SYNTAX_ERROR)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("predicate must be a single boolean expression"),
				 edata->cursorpos > 0 ?
				 errdetail("%s, at character %d of the predicate.",
						   edata->message, edata->cursorpos) :
				 errdetail("%s.", edata->message)));
	}
	PG_END_TRY();
	return raw;
}

/* Collect the relations a predicate's subqueries read (RTE_RELATION). */
static bool
predicate_reads_walker(Node *node, void *context)
{
	List	  **relids = (List **) context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*relids = list_append_unique_oid(*relids, rte->relid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, predicate_reads_walker,
								 context, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, predicate_reads_walker, context);
}

/*
 * A predicate's subqueries (day IN (SELECT d FROM reload_days)) are
 * evaluated in every statement of the call, each with its own snapshot:
 * if reload_days changed between the check of the source and the delete,
 * the call would delete a slice other than the one it checked, and its
 * reconciling pass would then empty that slice.  So every table they read
 * is locked against writers (SHARE, as LOCK TABLE takes it, with LOCK
 * TABLE's own privilege check and recursion into views and inheritance
 * children) until the transaction ends: every statement of the call sees
 * the same rows of it.  A subquery that reads the target itself would see
 * the call's own writes, so it is refused, as is a relation LOCK TABLE
 * cannot lock (a foreign table, a materialized view).  Functions the
 * predicate calls may read tables too: nothing holds those still
 * (docs/replace.md says so).
 */
static void
lock_predicate_reads(PgiRelation *target, List *relids)
{
	List	   *family = find_all_inheritors(target->relid, NoLock, NULL);
	ListCell   *lc;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char		relkind = get_rel_relkind(relid);
		char	   *name = get_rel_name(relid);

		if (list_member_oid(family, relid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("predicate must not read the table being replaced"),
					 errdetail("Its subquery reads \"%s\", which the replace writes, so the rows it selects would change as the call runs.",
							   name),
					 errhint("Compute the values first and write them into the predicate.")));
		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			relkind != RELKIND_VIEW)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("predicate must not read \"%s\"", name),
					 errdetail("Its subquery reads a relation that cannot be locked against writers for the call, so the slice could change between the call's statements."),
					 errhint("Copy the values it needs into a table, or write them into the predicate.")));
		/* who may not read it hears so, as from the statement itself */
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
									  ACLMASK_ANY) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind), name);
		if (pg_class_aclcheck(relid, GetUserId(),
							  ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to lock \"%s\", which the predicate reads", name),
					 errdetail("replace_where locks the tables its predicate's subqueries read against writers until the transaction ends, which LOCK TABLE allows to roles with UPDATE, DELETE or TRUNCATE on them."),
					 errhint("Grant one of them, or write the values into the predicate.")));
		pgi_spi_run(psprintf("LOCK TABLE %s IN SHARE MODE",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														name)),
					NULL, false, 0, SPI_OK_UTILITY);
	}
}

static void
predicate_error_context(void *arg)
{
	errcontext("predicate: %s", (const char *) arg);
}

/*
 * Parse the predicate as exactly one expression, the way PL/pgSQL parses
 * an expression (so ";", FROM, a second column and the like are syntax
 * errors), analyse it against the target's columns (42703 for a column it
 * lacks, 42804 when not boolean), and return it deparsed: the text that is
 * then embedded is the analysed expression itself, with no comment or
 * parenthesis of the caller's able to change the statement around it.
 * It runs as the caller, in the caller's statements: it can do nothing a
 * WHERE clause of theirs could not.
 */
static char *
parse_predicate(PgiRelation *target, const char *text, List **reads)
{
	List	   *raw;
	RawStmt    *rs;
	SelectStmt *sel;
	ResTarget  *rt;
	Relation	rel;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	char	   *result;
	ErrorContextCallback errcallback;

	raw = parse_expression_text(text);
	if (list_length(raw) != 1)
		not_one_expression(gettext_noop("It is not one expression."));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		not_one_expression(gettext_noop("It is not an expression."));
	sel = (SelectStmt *) rs->stmt;
	if (sel->targetList == NIL)
		not_one_expression(gettext_noop("It is empty."));
	if (list_length(sel->targetList) != 1)
		not_one_expression(gettext_noop("It is a list of expressions."));
	if (sel->fromClause != NIL || sel->whereClause != NULL ||
		sel->groupClause != NIL || sel->havingClause != NULL ||
		sel->windowClause != NIL || sel->sortClause != NIL ||
		sel->limitOffset != NULL || sel->limitCount != NULL ||
		sel->lockingClause != NIL || sel->withClause != NULL ||
		sel->distinctClause != NIL || sel->intoClause != NULL ||
		sel->valuesLists != NIL || sel->op != SETOP_NONE)
		not_one_expression(gettext_noop("It has clauses beyond an expression (FROM, WHERE, GROUP BY, ORDER BY, ...)."));
	rt = linitial_node(ResTarget, sel->targetList);
	if (rt->name != NULL)
		not_one_expression(gettext_noop("It names its result with AS."));
	predicate_writes_walker(rt->val, NULL);

	/*
	 * No p_sourcetext: an error's cursor would point into the caller's
	 * statement at the predicate's offset; the context line names it.
	 */
	errcallback.callback = predicate_error_context;
	errcallback.arg = (void *) text;

	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	rel = relation_open(target->relid, NoLock);
	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL,
										   false, true);
	addNSItemToQuery(pstate, nsitem, false, true, true);

	/*
	 * Analysed as a select-list item, which admits set-returning functions,
	 * aggregates and window functions, so that they can be refused here as
	 * what they are: not a condition on a row.
	 */
	expr = transformExpr(pstate, rt->val, EXPR_KIND_SELECT_TARGET);
	if (pstate->p_hasTargetSRFs)
		not_one_expression(gettext_noop("It calls a set-returning function."));
	if (pstate->p_hasAggs || pstate->p_hasWindowFuncs)
		not_one_expression(gettext_noop("It calls an aggregate or window function."));
	expr = coerce_to_boolean(pstate, expr, "predicate");
	assign_expr_collations(pstate, expr);
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("predicate must not call volatile functions"),
				 errdetail("It is evaluated several times (on the source, then on the target), and must select the same rows each time."),
				 errhint("Compute the value first and write it into the predicate.")));
	*reads = NIL;
	(void) predicate_reads_walker(expr, reads);
	result = deparse_expression(expr,
								deparse_context_for("t",
													RelationGetRelid(rel)),
								false, false);
	free_parsestate(pstate);
	relation_close(rel, NoLock);
	error_context_stack = errcallback.previous;
	return result;
}

Datum
pgi_replace_where(PG_FUNCTION_ARGS)
{
	ReplacePlan plan;
	ReplaceMode mode;
	int			nest;
	List	   *reads;

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	pgi_require_arg(fcinfo, 2, "predicate");
	mode = pgi_replace_parse_mode(fcinfo, 3);
	pgi_require_arg(fcinfo, 4, "allow_empty");

	memset(&plan, 0, sizeof(plan));
	plan.kind = REPLACE_WHERE;
	plan.allow_empty = PG_GETARG_BOOL(4);
	plan.colidx = -1;

	SPI_connect();
	nest = pgi_replace_begin_settings();

	pgi_replace_check_privileges(fcinfo);
	pgi_replace_lock_slice(fcinfo, PG_GETARG_OID(0), NULL, 0);
	pgi_replace_plan_open(&plan, fcinfo);
	plan.pred = parse_predicate(plan.target, text_to_cstring(PG_GETARG_TEXT_PP(2)),
								&reads);
	plan.desc = plan.pred;
	lock_predicate_reads(plan.target, reads);
	pgi_replace_execute(fcinfo, &plan, mode, NULL);
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_NULL();
}
