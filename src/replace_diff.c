/*-------------------------------------------------------------------------
 *
 * replace_diff.c
 *	  Comparing a slice with the source, and writing what differs: the
 *	  diff mode (rows as multisets of binary images, _replace_image,
 *	  compared in one pass where that is exact, diff_one_pass), the
 *	  plain DELETE and INSERT of delete_insert, and the pass after writing
 *	  that makes sure no concurrent writer's row is left in the slice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "executor/tuptable.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "replace.h"

PG_FUNCTION_INFO_V1(pgi_replace_image);

/* Rows wider than one function call's arguments compare via record_send. */
#define IMAGE_MAX_ARGS	(FUNC_MAX_ARGS - 1)

/*
 * Whether record_send can encode a value of this type: the binary image
 * the diff compares.  Arrays need their element type's send function too.
 */
static bool
type_has_send(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		ok;
	Oid			elem;

	typid = getBaseType(typid);
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	ok = OidIsValid(typ->typsend);
	elem = (typ->typlen == -1) ? typ->typelem : InvalidOid;
	ReleaseSysCache(tup);
	if (ok && OidIsValid(elem))
		ok = type_has_send(elem);
	return ok;
}

/*
 * Whether the plan's rows can be compared by binary image: always, up to
 * IMAGE_MAX_ARGS columns (_replace_image takes any type); beyond, only if
 * record_send can encode every column.
 */
void
pgi_replace_set_comparable(ReplacePlan *plan)
{
	int			i;

	plan->comparable = true;
	for (i = 0; i < plan->cols.ncols && plan->cols.ncols > IMAGE_MAX_ARGS; i++)
	{
		if (!type_has_send(plan->cols.cols[i].typid))
		{
			plan->comparable = false;
			plan->uncomparable = psprintf(_("Column \"%s\" has a type without a binary send function, so rows of more than %d columns cannot be compared."),
										  plan->cols.cols[i].name, IMAGE_MAX_ARGS);
			break;
		}
	}
}

/*
 * A row's binary image as one bytea: schema._replace_image(a.c1, a.c2, ...),
 * or for rows too wide for one function call, the bytes of record_send.
 */
static void
append_image(StringInfo buf, ReplacePlan *plan, const char *alias)
{
	if (plan->cols.ncols > IMAGE_MAX_ARGS)
	{
		appendStringInfoString(buf, "pg_catalog.record_send(ROW(");
		pgi_append_column_list(buf, alias, &plan->cols, NIL);
		appendStringInfoString(buf, "))");
		return;
	}
	appendStringInfo(buf, "%s(", plan->imagefn);
	pgi_append_column_list(buf, alias, &plan->cols, NIL);
	appendStringInfoChar(buf, ')');
}

/*
 * _replace_image(VARIADIC "any") RETURNS bytea: the binary image of its
 * arguments, the bytes record_image_eq compares, so that two rows have
 * equal images exactly when *= says they are identical: NULLs match, 1.0
 * and 1.00 differ, and every type compares, with or without an equality
 * operator.  Per argument: a tag byte, then for a varlena its detoasted
 * length and payload, for a C string its bytes and terminator, for a
 * fixed-length type its typlen bytes.  The argument types are fixed by the
 * call site, so the encoding is unambiguous.
 */
Datum
pgi_replace_image(PG_FUNCTION_ARGS)
{
	PgiImageArgs *ia = pgi_image_args(fcinfo, "_replace_image");
	int			nargs = PG_NARGS();
	Size		len = VARHDRSZ;
	bytea	   *result;
	char	   *p;
	int			i;

	/* first the size, then one allocation */
	for (i = 0; i < nargs; i++)
	{
		len += 1;
		if (PG_ARGISNULL(i))
			continue;
		if (ia->arg[i].typlen == -1)
			len += sizeof(uint32) +
				VARSIZE_ANY_EXHDR(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(i)));
		else if (ia->arg[i].typlen == -2)
			len += strlen(DatumGetCString(PG_GETARG_DATUM(i))) + 1;
		else
			len += ia->arg[i].typlen;
	}
	result = palloc(len);
	SET_VARSIZE(result, len);
	p = VARDATA(result);
	for (i = 0; i < nargs; i++)
	{
		Datum		d = PG_GETARG_DATUM(i);

		if (PG_ARGISNULL(i))
		{
			*p++ = 'n';
			continue;
		}
		*p++ = 'v';
		if (ia->arg[i].typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
			uint32		vlen = VARSIZE_ANY_EXHDR(v);

			memcpy(p, &vlen, sizeof(uint32));
			p += sizeof(uint32);
			memcpy(p, VARDATA_ANY(v), vlen);
			p += vlen;
		}
		else if (ia->arg[i].typlen == -2)
		{
			Size		slen = strlen(DatumGetCString(d)) + 1;

			memcpy(p, DatumGetCString(d), slen);
			p += slen;
		}
		else if (ia->arg[i].byval)
		{
			store_att_byval(p, d, ia->arg[i].typlen);
			p += ia->arg[i].typlen;
		}
		else
		{
			memcpy(p, DatumGetPointer(d), ia->arg[i].typlen);
			p += ia->arg[i].typlen;
		}
	}
	Assert(p == (char *) result + len);
	PG_RETURN_BYTEA_P(result);
}

/* FROM <target> t WHERE (<slice>) */
static void
append_target_slice(StringInfo buf, ReplacePlan *plan, const char *from)
{
	appendStringInfo(buf, " FROM %s t WHERE (%s)", from, plan->pred);
}

static void
report_compared(ReplacePlan *plan, DiffCounts *dc)
{
	pgi_progress_step(&plan->progress,
					  errmsg("%s on %s: compared the slice with the source: %lld to delete, %lld to insert, %lld unchanged",
							 PGI_PROGRESS_OF(&plan->progress),
							 (long long) dc->to_delete, (long long) dc->to_insert,
							 (long long) dc->unchanged));
}

/*
 * The read-only half of a diff: per distinct binary image, how many rows
 * each side holds.  Nothing is locked but the relations themselves.
 * "from" is the relation the slice is read from: the target, or the one
 * partition that holds the slice.
 */
void
pgi_replace_diff_count(ReplacePlan *plan, const char *from, DiffCounts *dc)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT pg_catalog.sum(GREATEST(g.nt OPERATOR(pg_catalog.-) g.ns, 0))::pg_catalog.int8, "
						   "pg_catalog.sum(GREATEST(g.ns OPERATOR(pg_catalog.-) g.nt, 0))::pg_catalog.int8, "
						   "pg_catalog.sum(LEAST(g.ns, g.nt))::pg_catalog.int8, "
						   "pg_catalog.sum(g.nt)::pg_catalog.int8, pg_catalog.max(g.ns), pg_catalog.max(g.nt) "
						   "FROM (SELECT u.img, pg_catalog.count(*) FILTER (WHERE u.src) AS ns, "
						   "pg_catalog.count(*) FILTER (WHERE NOT u.src) AS nt FROM (SELECT ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS img, true AS src FROM (%s) s UNION ALL SELECT ", plan->sel);
	append_image(&q, plan, "t");
	appendStringInfoString(&q, ", false");
	append_target_slice(&q, plan, from);
	appendStringInfoString(&q, ") u GROUP BY u.img) g");
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_SELECT);
	dc->to_delete = pgi_spi_int8(0, 1);
	dc->to_insert = pgi_spi_int8(0, 2);
	dc->unchanged = pgi_spi_int8(0, 3);
	dc->target_rows = pgi_spi_int8(0, 4);
	dc->max_source_copies = pgi_spi_int8(0, 5);
	dc->max_target_copies = pgi_spi_int8(0, 6);
	report_compared(plan, dc);
}

/* DELETE FROM target WHERE (slice): the whole slice */
int64
pgi_replace_delete_slice(ReplacePlan *plan)
{
	char	   *q = psprintf("DELETE FROM %s t WHERE (%s)",
							 plan->target->qualname, plan->pred);

	pgi_spi_run(q, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/* INSERT INTO target (cols) SELECT cols FROM source: every source row */
int64
pgi_replace_insert_all(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, NULL);
	appendStringInfoString(&q, plan->sel);
	pgi_spi_run(q.data, NULL, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The head of a DELETE of the slice's rows named by (tableoid, ctid):
 * "DELETE FROM target t WHERE (slice) AND t.ctid = ANY (SELECT x.tid",
 * with the tableoid too for a partitioned target (ctid alone repeats
 * across partitions); the caller adds the FROM and the closing parenthesis.
 */
static void
append_delete_named(StringInfo buf, ReplacePlan *plan, const char *toid,
					const char *tid)
{
	if (plan->target->relkind == RELKIND_PARTITIONED_TABLE)
		appendStringInfo(buf, "DELETE FROM %s t WHERE (%s) AND ROW(t.tableoid, t.ctid) "
						 "OPERATOR(pg_catalog.=) ANY (SELECT %s, %s",
						 plan->target->qualname, plan->pred, toid, tid);
	else
		appendStringInfo(buf, "DELETE FROM %s t WHERE (%s) AND t.ctid "
						 "OPERATOR(pg_catalog.=) ANY (SELECT %s",
						 plan->target->qualname, plan->pred, tid);
}

/*
 * Delete the target rows of the slice that the source has fewer copies of:
 * within each group of identical images, rows numbered beyond the source's
 * count go.  Rows are named by (tableoid, ctid)
 * (append_delete_named).
 */
static int64
diff_delete(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	append_delete_named(&q, plan, "x.toid", "x.tid");
	appendStringInfoString(&q, " FROM (SELECT t.tableoid AS toid, t.ctid AS tid, t.img, "
						   "pg_catalog.row_number() OVER (PARTITION BY t.img) AS rn FROM (SELECT t.tableoid, t.ctid, ");
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " AS img");
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, ") t) x LEFT JOIN (SELECT s.img, pg_catalog.count(*) AS n FROM (SELECT ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS img FROM (%s) s) s GROUP BY s.img) c ON x.img OPERATOR(pg_catalog.=) c.img "
					 "WHERE x.rn OPERATOR(pg_catalog.>) COALESCE(c.n, 0))", plan->sel);
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/*
 * Insert the source rows the slice has fewer copies of, counted after
 * diff_delete: within each group of identical images, source rows numbered
 * beyond the slice's count go in.
 */
static int64
diff_insert(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "x");
	appendStringInfoString(&q, " FROM (SELECT s.*, pg_catalog.row_number() OVER (PARTITION BY s.\"pgi img\") AS \"pgi rn\" "
						   "FROM (SELECT s.*, ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS \"pgi img\" FROM (%s) s) s) x LEFT JOIN (SELECT ", plan->sel);
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " AS img, pg_catalog.count(*) AS n");
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, " GROUP BY 1) c ON x.\"pgi img\" OPERATOR(pg_catalog.=) c.img "
						   "WHERE x.\"pgi rn\" OPERATOR(pg_catalog.>) COALESCE(c.n, 0)");
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The same two steps when no image repeats on the side that decides: a
 * slice without duplicate rows loses exactly the rows whose image the
 * source lacks, and a source without duplicates adds exactly the rows whose
 * image the slice (after the delete) lacks.  Hash anti-joins, with no
 * numbering and so no sort of either side.
 */
static int64
diff_delete_unique(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "DELETE FROM %s t WHERE (%s) AND NOT EXISTS (SELECT 1 FROM (%s) s WHERE ",
					 plan->target->qualname, plan->pred, plan->sel);
	append_image(&q, plan, "s");
	appendStringInfoString(&q, " OPERATOR(pg_catalog.=) ");
	append_image(&q, plan, "t");
	appendStringInfoChar(&q, ')');
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

static int64
diff_insert_unique(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "s");
	appendStringInfo(&q, " FROM (%s) s WHERE NOT EXISTS (SELECT 1", plan->sel);
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, " AND ");
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " OPERATOR(pg_catalog.=) ");
	append_image(&q, plan, "s");
	appendStringInfoChar(&q, ')');
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The one pass of a diff: the slice's rows (their ctid and image) and the
 * source's (their columns and image) joined on the image, FULL, so that
 * every row of either side comes out matched or alone.  Only the rows
 * alone are kept (the difference: target rows to delete, source rows to
 * insert), in a tuplestore the writes then read by name; the matched ones
 * are counted on the way past (one_pass_keep).  One hash of both sides
 * instead of three (the count, then an anti-join for each write).
 *
 * Joining rows one to one is the multiset comparison only when no image
 * that both sides hold repeats on either side: a source row twice and its
 * slice copy once match twice and would insert nothing.  Images that only
 * one side holds may repeat (every copy is deleted, or inserted).  That is
 * exactly when each target row and each source row comes out once: the
 * matched rows plus the target's alone are the slice's row count (numbered
 * in the same scan), and plus the source's alone the source's.  Otherwise
 * the difference is dropped, nothing having been written, and the caller
 * counts copies as before.
 */
#define DIFF_ROWS_NAME "pg_idempotent: the difference"

/* The columns of the one pass's rows ahead of the source's own. */
#define DIFF_COL_TOID	1
#define DIFF_COL_TID	2
#define DIFF_COL_RN		3
#define DIFF_COL_SRC	4

typedef struct OnePassCounts
{
	int64		matched;
	int64		target_only;
	int64		source_only;
	int64		target_rows;	/* the highest row number of the slice */
} OnePassCounts;

static bool
one_pass_keep(TupleTableSlot *slot, void *arg)
{
	OnePassCounts *c = (OnePassCounts *) arg;
	bool		isnull;
	bool		in_target = !slot_attisnull(slot, DIFF_COL_TID);
	bool		in_source = DatumGetBool(slot_getattr(slot, DIFF_COL_SRC, &isnull));

	if (in_target)
		c->target_rows = Max(c->target_rows,
							 DatumGetInt64(slot_getattr(slot, DIFF_COL_RN, &isnull)));
	if (in_target && in_source)
	{
		c->matched++;
		return false;
	}
	if (in_target)
		c->target_only++;
	else
		c->source_only++;
	return true;
}

static bool
diff_one_pass(ReplacePlan *plan, DiffCounts *dc, PgiMaterialized *diff)
{
	StringInfoData q;
	OnePassCounts c = {0};
	int			nest;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT t.toid AS \"pgi toid\", t.tid AS \"pgi tid\", t.rn AS \"pgi rn\", "
						   "s.\"pgi img\" IS NOT NULL AS \"pgi src\", ");
	pgi_append_column_list(&q, "s", &plan->cols, NIL);
	appendStringInfoString(&q, " FROM (SELECT t.tableoid AS toid, t.ctid AS tid, "
						   "pg_catalog.row_number() OVER () AS rn, ");
	append_image(&q, plan, "t");
	appendStringInfoString(&q, " AS img");
	append_target_slice(&q, plan, plan->target->qualname);
	appendStringInfoString(&q, ") t FULL JOIN (SELECT s.*, ");
	append_image(&q, plan, "s");
	appendStringInfo(&q, " AS \"pgi img\" FROM (%s) s) s ON t.img OPERATOR(pg_catalog.=) s.\"pgi img\"",
					 plan->sel);

	/*
	 * A hash join, never a merge join: the planner guesses 200 distinct
	 * images a side, which makes a hash join's buckets look 200 rows deep,
	 * and chose to sort both sides instead (measured 3.5 times slower on a
	 * 100,000-row slice).  FULL JOIN has no other way, so this is all the
	 * setting changes.
	 */
	nest = NewGUCNestLevel();
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	pgi_spi_materialize_some(q.data, &plan->params, DIFF_ROWS_NAME, diff,
							 one_pass_keep, &c);
	AtEOXact_GUC(true, nest);
	if (c.matched + c.target_only != c.target_rows ||
		c.matched + c.source_only != plan->src.nrows)
	{
		pgi_spi_forget_materialized(diff);
		return false;
	}
	dc->to_delete = c.target_only;
	dc->to_insert = c.source_only;
	dc->unchanged = c.matched;
	dc->target_rows = c.target_rows;
	/* unknown, and not needed: the writes read the difference */
	dc->max_source_copies = -1;
	dc->max_target_copies = -1;
	report_compared(plan, dc);
	return true;
}

/* Delete the target rows the one pass found alone, by (tableoid, ctid). */
static int64
diff_delete_listed(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	append_delete_named(&q, plan, "d.\"pgi toid\"", "d.\"pgi tid\"");
	appendStringInfoString(&q, " FROM ");
	pgi_append_ident(&q, DIFF_ROWS_NAME);
	appendStringInfoString(&q, " d WHERE NOT d.\"pgi src\")");
	pgi_spi_run(q.data, &plan->params, false, 0, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/* Insert the source rows the one pass found alone. */
static int64
diff_insert_listed(ReplacePlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "d");
	appendStringInfoString(&q, " FROM ");
	pgi_append_ident(&q, DIFF_ROWS_NAME);
	appendStringInfoString(&q, " d WHERE d.\"pgi src\"");
	pgi_spi_run(q.data, NULL, false, 0, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * Write what the comparison found, and only that: from the one pass's
 * difference when there is one (diff), else by counting copies again.
 */
static void
write_difference(ReplacePlan *plan, DiffCounts *dc, PgiMaterialized *diff,
				 int64 *deleted, int64 *inserted)
{
	*deleted = 0;
	*inserted = 0;
	if (dc->to_delete > 0)
	{
		if (dc->to_delete == dc->target_rows)
			*deleted = pgi_replace_delete_slice(plan);
		else if (diff != NULL)
			*deleted = diff_delete_listed(plan);
		else if (dc->max_target_copies <= 1)
			*deleted = diff_delete_unique(plan);
		else
			*deleted = diff_delete(plan);
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: deleted %lld row",
										"%s on %s: deleted %lld rows",
										*deleted, PGI_PROGRESS_OF(&plan->progress),
										(long long) *deleted));
	}
	if (dc->to_insert > 0)
	{
		if (dc->unchanged == 0)
			*inserted = pgi_replace_insert_all(plan);
		else if (diff != NULL)
			*inserted = diff_insert_listed(plan);
		else if (dc->max_source_copies <= 1)
			*inserted = diff_insert_unique(plan);
		else
			*inserted = diff_insert(plan);
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: inserted %lld row",
										"%s on %s: inserted %lld rows",
										*inserted, PGI_PROGRESS_OF(&plan->progress),
										(long long) *inserted));
	}
}

/* Write what pgi_replace_diff_count found, and only that. */
void
pgi_replace_diff_write(ReplacePlan *plan, DiffCounts *dc, int64 *deleted, int64 *inserted)
{
	write_difference(plan, dc, NULL, deleted, inserted);
}

/*
 * A diff from the start: compare in one pass where that is exact
 * (diff_one_pass), else count copies (pgi_replace_diff_count), and write
 * what differs.  False when nothing did: nothing was written or locked.
 */
bool
pgi_replace_diff(ReplacePlan *plan, int64 *deleted, int64 *inserted)
{
	DiffCounts	dc;
	PgiMaterialized diff = {0};
	bool		one = diff_one_pass(plan, &dc, &diff);

	*deleted = 0;
	*inserted = 0;
	if (!one)
	{
		pgi_progress_step(&plan->progress,
						  errmsg("%s on %s: rows that both the slice and the source hold repeat: comparing copies",
								 PGI_PROGRESS_OF(&plan->progress)));
		pgi_replace_diff_count(plan, plan->target->qualname, &dc);
	}
	if (dc.to_delete > 0 || dc.to_insert > 0)
		write_difference(plan, &dc, one ? &diff : NULL, deleted, inserted);
	pgi_spi_forget_materialized(&diff);
	return dc.to_delete > 0 || dc.to_insert > 0;
}

/*
 * After writing: does the slice hold exactly what we wrote and what we left
 * in place, with nothing from a concurrent writer?  A writer that committed
 * while our statements ran (an upsert of a row in the slice, say) is
 * invisible to their snapshots, and under READ COMMITTED a DELETE that
 * waited for its row lock skips the rows it inserted.  Every such row was
 * written by a transaction that was running, or not yet begun, when the
 * replace took its first snapshot: its xmin is at or after that snapshot's
 * xmin (the horizon).  A row we left in place and someone then deleted
 * shows in the count.  So: as many rows as the source has, none of them
 * written at or after the horizon by anyone but us, means there is nothing
 * to reconcile; otherwise reconcile() compares the whole slice again.  This
 * costs a scan of the slice where the comparison costs an aggregate of both
 * sides.  Rows the caller wrote earlier in the same transaction count as
 * foreign, which is safe (they only cost the comparison).  A target with a
 * foreign partition has no xmin to read: always compare.
 */
typedef enum SettleDoubt
{
	DOUBT_FOREIGN_PARTITION,	/* no xmin to read: compare */
	DOUBT_FOREIGN_WRITE			/* someone else wrote into the slice */
} SettleDoubt;

static bool
slice_settled(ReplacePlan *plan, TransactionId horizon, int64 expected,
			  SettleDoubt *doubt)
{
	StringInfoData q;
	PgiParams	p = plan->params;

	if (plan->target->relkind == RELKIND_PARTITIONED_TABLE)
	{
		/* the partitions are locked, if at all, by the statements to come */
		List	   *parts = find_all_inheritors(plan->target->relid, NoLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			{
				*doubt = DOUBT_FOREIGN_PARTITION;
				return false;
			}
		}
	}

	pgi_params_add(&p, XIDOID, TransactionIdGetDatum(horizon));
	pgi_params_add(&p, XIDOID, TransactionIdGetDatum(GetCurrentTransactionId()));
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER ("
					 "WHERE pg_catalog.age(t.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($%d) "
					 "AND NOT t.xmin OPERATOR(pg_catalog.=) $%d)",
					 p.nargs - 1, p.nargs);
	append_target_slice(&q, plan, plan->target->qualname);
	pgi_spi_run(q.data, &p, false, 0, SPI_OK_SELECT);
	*doubt = DOUBT_FOREIGN_WRITE;
	return pgi_spi_int8(0, 1) == expected && pgi_spi_int8(0, 2) == 0;
}

/* How many times a diff is checked again after writing, at most. */
#define RECONCILE_PASSES 3

/*
 * Compare again after writing, with a fresh snapshot, and write what still
 * differs.  A writer that committed while our statements ran (an upsert of
 * a row in the slice, say) is invisible to the snapshots they took, and
 * under READ COMMITTED a DELETE that waited for such a writer's row lock
 * skips the rows it inserted: without this pass the slice could end
 * holding a row the source does not have.  Bounded: a slice written to
 * continuously by others is left as the last pass found it.
 */
static int
errmsg_comparing_again(PgiProgress *progress, SettleDoubt doubt, int pass)
{
	if (doubt == DOUBT_FOREIGN_PARTITION)
		return errmsg("%s on %s: the table has a foreign partition: comparing again (pass %d of at most %d)",
					  PGI_PROGRESS_OF(progress), pass, RECONCILE_PASSES);
	return errmsg("%s on %s: another transaction wrote into the slice meanwhile: comparing again (pass %d of at most %d)",
				  PGI_PROGRESS_OF(progress), pass, RECONCILE_PASSES);
}

static void
reconcile(ReplacePlan *plan, SettleDoubt doubt, int64 *deleted, int64 *inserted)
{
	int			pass;

	for (pass = 0; pass < RECONCILE_PASSES; pass++)
	{
		DiffCounts	dc;
		int64		d;
		int64		i;

		pgi_progress_step(&plan->progress,
						  errmsg_comparing_again(&plan->progress, doubt, pass + 1));
		pgi_replace_diff_count(plan, plan->target->qualname, &dc);
		if (dc.to_delete == 0 && dc.to_insert == 0)
			return;
		pgi_replace_diff_write(plan, &dc, &d, &i);
		*deleted += d;
		*inserted += i;
	}
}


/*
 * After a diff or delete_insert wrote: if the slice may not hold exactly
 * the source (slice_settled), compare and write again (reconcile).
 */
void
pgi_replace_settle(ReplacePlan *plan, TransactionId horizon, int64 expected,
				   int64 *deleted, int64 *inserted)
{
	SettleDoubt doubt;

	if (!slice_settled(plan, horizon, expected, &doubt))
		reconcile(plan, doubt, deleted, inserted);
}
