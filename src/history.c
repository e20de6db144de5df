/*-------------------------------------------------------------------------
 *
 * history.c
 *	  idempotent_history: type-2 history (a slowly changing dimension, a dbt
 *	  snapshot) written so that a re-run changes nothing.
 *
 * The target keeps every version of each key with its validity interval
 * [valid_from, valid_to); valid_to IS NULL is the current version.  A call
 * says what every source key looked like at one moment, as_of.  For a key,
 * history is a step function of time; the call sets it to the source's
 * row on [as_of, e), where e is the end of the piece of history (a version,
 * or a gap before a version or after a closed one) that covers as_of, and
 * then keeps the invariant that no two adjacent versions hold identical
 * rows.  With V the version covering as_of, P the version ending exactly
 * at as_of, N the first version starting after it:
 *
 *	V identical					unchanged: nothing written, nothing locked
 *	V starts before as_of		V closed at as_of; a new version [as_of, e),
 *								or N extended back to as_of if it is
 *								identical and starts at e
 *	V starts at as_of			V rewritten in place (a corrected re-run of
 *								the same run); merged into P or N where
 *								identical to them
 *	no V						a new version [as_of, N's start), or P or N
 *								extended over it where identical
 *
 * and with deletes => 'close', a V whose key the source lacks is closed at
 * as_of (deleted, if it starts at as_of: the corrected run no longer has
 * the key).  Each source row is counted once, as inserted, corrected
 * (every in-place rewrite or extension) or unchanged; closed counts the
 * versions whose end moved to as_of.
 *
 * All of it is one statement in one registered snapshot, as the upsert's:
 * s the source in the target's types, c its checks (null and duplicate
 * keys; duplicates only where the source could hold them, distinct.c), x
 * the source rows whose covering version is absent or differs (a replay
 * keeps none, so it reads and writes nothing more), j those
 * rows with P and N (looked up only where they can matter) and what is to
 * be done, o the version rows to change (each found again by the ctid it
 * was read at, as the upsert's UPDATE is), and the writes ordered so that
 * no constraint over the versions ever sees a transient state: deletes,
 * then versions that shrink, then versions that grow, then rows rewritten,
 * then inserts.  So the mandatory unique index over (key, valid_from), a
 * partial unique index over the key WHERE valid_to IS NULL, and an
 * exclusion constraint against overlapping intervals all hold throughout.
 *
 * Concurrency.  Two calls on one table must not both decide from what
 * they read before the other committed: they could give a key two current
 * versions (each inserting one, at different as_of, with no unique index
 * to stop them) or overlapping ones.  Row locks cannot cover a key that
 * has no version yet, so history writers of a table are serialized by a
 * transaction-level lock of the extension's own on the table
 * (pgi_lock_key: a key space no application shares), taken before the call's
 * snapshot: the second call waits, then reads what the first committed.
 * One lock per call, so no two calls deadlock, in whatever order their
 * sources list the keys.  A replay takes the lock too but no row lock.
 * A dry run takes neither.  Any other writer that changes a version
 * between our read and our write makes the write find fewer rows than it
 * planned (the version's ctid moved; where the writes cannot use ctids,
 * tid_of, only a change of its key, start or end is seen), and the call
 * fails with 40001 rather than write a history it did not decide.
 *
 * Every statement is set-based and streamed by the executor; the only row
 * that comes back is the one-row answer of counts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_idempotent.h"

/*
 * The smallest source, in rows, whose history statement is planned for its
 * call's as_of rather than kept for every as_of (see pgi_idempotent_history).
 */
#define HISTORY_CUSTOM_PLAN_MIN 10000

PG_FUNCTION_INFO_V1(pgi_idempotent_history);

/* idempotent_history's arguments, by position */
enum
{
	HA_TARGET,
	HA_SOURCE,
	HA_KEY,
	HA_AS_OF,
	HA_VALID_FROM,
	HA_VALID_TO,
	HA_DELETES,
	HA_DRY_RUN
};

typedef struct HistoryPlan
{
	PgiRelation *target;
	PgiRelation *source;
	PgiColumnList cols;			/* target columns the source supplies */
	List	   *key;			/* positions in cols */
	List	   *all;			/* every position in cols: compared, written */
	PgiColumn  *vf;				/* the target's validity columns */
	PgiColumn  *vt;
	const char *pfx;			/* prefix of our own columns, unused by cols */
	bool		close;			/* deletes => 'close' */
	bool		dry_run;
	bool		probe;			/* batch small against the table */
	bool		custom;			/* planned for this call's as_of */
	bool		unique;			/* source unique on the key (distinct.c) */
	bool		bytid;			/* versions found again by ctid: tid_of */
	char	   *sel;			/* SELECT of cols, in target types */
	char	   *imagefn;		/* _images_differ, or NULL: see
								 * pgi_append_image_differs */
	Oid			relids[2];
	PgiParams	params;			/* $1: as_of */
	Snapshot	snapshot;
	PgiProgress progress;
} HistoryPlan;

/* The columns of the statement's one row of counts. */
typedef enum HistoryResult
{
	HR_ROWS = 1,
	HR_NULL_KEYS,
	HR_KEYED,
	HR_DISTINCT,
	HR_DUP_KEYS,
	HR_DUP_EXAMPLE,
	HR_TO_WRITE,				/* source rows not unchanged */
	HR_INSERT,
	HR_CLOSE,
	HR_CORRECT,
	HR_OPS,						/* version rows deleted, shrunk or grown */
	HR_REWRITE,					/* versions rewritten in place */
	HR_WRITTEN					/* rows the writes found */
} HistoryResult;

/* one of our own columns in the statement: "pgi_" plus name, quoted */
static const char *
own(HistoryPlan *plan, const char *name)
{
	return quote_identifier(psprintf("%s%s", plan->pfx, name));
}

/* alias.<own column> */
static const char *
own_col(HistoryPlan *plan, const char *alias, const char *name)
{
	return psprintf("%s.%s", alias, own(plan, name));
}

/* a prefix no source column starts with, for the statement's own columns */
static const char *
own_prefix(const PgiColumnList *cols)
{
	char	   *pfx = pstrdup("pgi_");
	bool		clash;
	int			i;

	do
	{
		clash = false;
		for (i = 0; i < cols->ncols; i++)
		{
			if (strncmp(cols->cols[i].name, pfx, strlen(pfx)) == 0)
				clash = true;
		}
		if (clash)
			pfx = psprintf("%s_", pfx);
	} while (clash);
	return pfx;
}

/*
 * The ctid a version was read at, where the writes find it again by it
 * (pgi_relation_rows_by_ctid); elsewhere they find a version by key, start
 * and end alone.
 */
static const char *
tid_of(HistoryPlan *plan, const char *alias)
{
	return plan->bytid ? psprintf("%s.ctid", alias) : "NULL::pg_catalog.tid";
}

/* alias.valid_from / alias.valid_to */
static const char *
vcol(HistoryPlan *plan, const char *alias, bool to)
{
	return psprintf("%s.%s", alias, quote_identifier(to ? plan->vt->name : plan->vf->name));
}

/*
 * A validity column of the target: it must exist, be timestamptz (what
 * as_of is: another type would make the call's meaning depend on the
 * session's TimeZone), and be left to us by the source.
 */
static PgiColumn *
validity_column(HistoryPlan *plan, const char *name, const char *argname)
{
	int			i = pgi_column_index(&plan->target->columns, name);
	PgiColumn  *col;

	if (i < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in \"%s\"",
						name, plan->target->displayname),
				 errdetail("A history table needs a column for where each version starts and one for where it ends."),
				 errhint("Add the column, or name the table's own in the \"%s\" argument.",
						 argname)));
	col = &plan->target->columns.cols[i];
	if (col->typid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of \"%s\" is of type %s",
						name, plan->target->displayname, format_type_be(col->typid)),
				 errdetail("Validity columns must be of type timestamp with time zone, the type of as_of.")));
	if (pgi_column_index(&plan->source->columns, name) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("column \"%s\" of source \"%s\" is a validity column of \"%s\"",
						name, plan->source->displayname, plan->target->displayname),
				 errdetail("idempotent_history sets the validity columns from as_of."),
				 errhint("Leave \"%s\" out of the source.", name)));
	return col;
}

static void
plan_columns(HistoryPlan *plan, ArrayType *key, const char *vf,
			 const char *vt)
{
	StringInfoData from;
	List	   *tkey;
	ListCell   *lc;
	int			i;

	if (strcmp(vf, vt) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_from and valid_to must name different columns"),
				 errdetail("Both name \"%s\".", vf)));
	plan->vf = validity_column(plan, vf, "valid_from");
	plan->vt = validity_column(plan, vt, "valid_to");
	if (plan->vt->notnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("column \"%s\" of \"%s\" must allow nulls",
						plan->vt->name, plan->target->displayname),
				 errdetail("A null \"%s\" marks a key's current version.",
						   plan->vt->name),
				 errhint("Drop the column's NOT NULL constraint.")));

	initStringInfo(&from);
	appendStringInfo(&from, "%s s0", plan->source->qualname);
	plan->cols = pgi_match_source_columns(plan->target, &plan->source->columns,
										  plan->source->displayname, from.data,
										  &plan->sel);

	/* the key: a unique index's columns, less valid_from */
	if (key != NULL)
	{
		foreach(lc, pgi_text_array_to_list(key, "key"))
		{
			if (strcmp(lfirst(lc), vf) == 0 || strcmp(lfirst(lc), vt) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("key must not include validity column \"%s\"",
								(char *) lfirst(lc)),
						 errdetail("The key names an entity across its versions; where each version starts and ends comes from as_of."),
						 errhint("Name the key columns alone: the unique index must be over them and \"%s\".", vf)));
		}
	}
	tkey = pgi_find_key_with(plan->target, &plan->source->columns, key,
							 plan->source->displayname,
							 pgi_column_index(&plan->target->columns, vf));
	plan->key = NIL;
	foreach(lc, tkey)
	{
		const char *name = plan->target->columns.cols[lfirst_int(lc)].name;
		int			pos = pgi_column_index(&plan->cols, name);

		if (strcmp(name, vt) == 0 || pos < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("the unique key of \"%s\" includes \"%s\"",
							plan->target->displayname, name),
					 errdetail("The key of a history is its unique index's columns other than \"%s\", which the source must supply.",
							   vf)));
		pgi_type_operator(plan->cols.cols[pos].typid, BTEqualStrategyNumber, name);
		plan->key = lappend_int(plan->key, pos);
	}
	plan->unique = pgi_source_unique_on_key(plan->source->relid, NULL,
											&plan->source->columns,
											&plan->cols, plan->key,
											plan->source->displayname);
	plan->pfx = own_prefix(&plan->cols);
	plan->all = NIL;
	for (i = 0; i < plan->cols.ncols; i++)
		plan->all = lappend_int(plan->all, i);
}

/* alias.vf OP $1, with timestamptz's own operator */
static void
append_vf_cmp(StringInfo q, HistoryPlan *plan, const char *alias, bool to,
			  const char *op)
{
	appendStringInfo(q, "%s OPERATOR(pg_catalog.%s) $1", vcol(plan, alias, to), op);
}

/* alias's version covers as_of: vf <= $1 AND (vt IS NULL OR vt > $1) */
static void
append_covers(StringInfo q, HistoryPlan *plan, const char *alias)
{
	append_vf_cmp(q, plan, alias, false, "<=");
	appendStringInfo(q, " AND (%s IS NULL OR ", vcol(plan, alias, true));
	append_vf_cmp(q, plan, alias, true, ">");
	appendStringInfoChar(q, ')');
}

/*
 * A lateral lookup of one neighbour of as_of among the key's versions: the
 * last one starting before it (P) or the first one starting after it (N),
 * only where cond says it can matter; its bounds and whether it is
 * identical to the source row.
 */
static void
append_neighbour(StringInfo q, HistoryPlan *plan, const char *name,
				 const char *cond, bool after)
{
	appendStringInfo(q, " LEFT JOIN LATERAL (SELECT %s AS %s, %s AS %s, %s AS %s, ",
					 tid_of(plan, "t"), own(plan, "id"),
					 vcol(plan, "t", false), own(plan, "vf"),
					 vcol(plan, "t", true), own(plan, "vt"));
	pgi_append_image_differs(q, plan->imagefn, "t", "x", &plan->cols, plan->all, false);
	appendStringInfo(q, " AS %s FROM %s t WHERE %s AND ",
					 own(plan, "same"), plan->target->qualname, cond);
	pgi_append_key_match(q, "t", "x", &plan->cols, plan->key);
	appendStringInfoString(q, " AND ");
	append_vf_cmp(q, plan, "t", false, after ? ">" : "<");
	appendStringInfo(q, " ORDER BY %s%s LIMIT 1) %s ON true",
					 vcol(plan, "t", false), after ? "" : " DESC", name);
}

/*
 * one branch of o: the version of j's key at ctid tid, starting at vf, and
 * its new bounds
 */
static void
append_op(StringInfo q, HistoryPlan *plan, int kind, const char *tid,
		  const char *vf, const char *vt, const char *new_vf,
		  const char *new_vt, const char *cond)
{
	appendStringInfo(q, " UNION ALL SELECT %d, %s, ", kind, tid);
	pgi_append_column_list(q, "j", &plan->cols, plan->key);
	appendStringInfo(q, ", %s, %s, %s, %s FROM j WHERE %s",
					 vf, vt, new_vf, new_vt, cond);
}

/*
 * t is the version row that alias names by its own columns tid, vf and vt:
 * found by the ctid it was read at (a TID scan, not a second probe of the
 * key's index) where there is one (tid_of), and still that key and start
 * with its end unchanged.  A version another transaction updated since is
 * found by none of it (under READ COMMITTED the recheck sees a new ctid),
 * so the write misses it and the call fails with 40001 (see the caller),
 * on every release (pgi_append_tid_match).
 */
static void
append_version_match(StringInfo q, HistoryPlan *plan, const char *alias,
					 const char *tid, const char *vf, const char *vt)
{
	if (plan->bytid)
	{
		pgi_append_tid_match(q, "t", own_col(plan, alias, tid));
		appendStringInfoString(q, " AND ");
	}
	pgi_append_key_match(q, "t", alias, &plan->cols, plan->key);
	appendStringInfo(q, " AND %s OPERATOR(pg_catalog.=) %s AND %s IS NOT DISTINCT FROM %s",
					 vcol(plan, "t", false), own_col(plan, alias, vf),
					 vcol(plan, "t", true), own_col(plan, alias, vt));
}

/* the version row o names */
static void
append_op_match(StringInfo q, HistoryPlan *plan, const char *o)
{
	append_version_match(q, plan, o, "otid", "ovf", "ovt");
}

static char *
build_statement(HistoryPlan *plan)
{
	StringInfoData q;
	const char *tq = plan->target->qualname;
	const char *checks;
	const char *dupcond = "c.nk OPERATOR(pg_catalog.=) 0 AND c.nd OPERATOR(pg_catalog.<>) c.nn";
	const char *cs = own_col(plan, "j", "cs");
	const char *lm = own_col(plan, "j", "lm");
	const char *rm = own_col(plan, "j", "rm");
	const char *e = own_col(plan, "j", "e");
	const char *newend;
	const char *grows_n;
	const char *inserts;
	const char *corrects;
	int			i;

	/* where a merge ends: N's end when N is absorbed, else the piece's */
	newend = psprintf("CASE WHEN %s THEN %s ELSE %s END", rm,
					  own_col(plan, "j", "nvt"), e);
	/* N extended back to as_of: after a closed V, or over a gap alone */
	grows_n = psprintf("%s AND (%s OPERATOR(pg_catalog.=) 2 OR (%s OPERATOR(pg_catalog.=) 4 AND NOT %s))",
					   rm, cs, cs, lm);
	inserts = psprintf("NOT %s AND (%s OPERATOR(pg_catalog.=) 2 OR (%s OPERATOR(pg_catalog.=) 4 AND NOT %s))",
					   rm, cs, cs, lm);
	corrects = psprintf("(%s OPERATOR(pg_catalog.=) 3 OR %s OR %s)", cs, lm, rm);

	initStringInfo(&q);
	if (plan->probe)
		appendStringInfoString(&q, "/* pg_idempotent: batch small against the table: index probes */ ");
	/* the statement text is the kept plan's key: one per way of planning */
	if (plan->custom)
		appendStringInfoString(&q, "/* pg_idempotent: large batch: planned for its as_of */ ");
	appendStringInfo(&q, "WITH s AS NOT MATERIALIZED (%s)", plan->sel);

	/*
	 * c: the checks; d: the duplicated keys, read only when there are some. A
	 * source unique on the key by construction has none: c counts its null
	 * keys alone, and its keyed rows are its distinct keys.
	 */
	appendStringInfoString(&q, ", c AS (SELECT pg_catalog.count(*) AS n, pg_catalog.count(*) FILTER (WHERE ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nk, pg_catalog.count(*) FILTER (WHERE NOT ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nn");
	if (plan->unique)
	{
		appendStringInfoString(&q, " FROM s)");
		checks = "(SELECT c.nk OPERATOR(pg_catalog.=) 0 FROM c)";
	}
	else
	{
		pgi_append_distinct_keys(&q, &plan->cols, plan->key);
		appendStringInfoString(&q, " FROM s)");
		pgi_append_duplicated_keys(&q, &plan->cols, plan->key);
		checks = "(SELECT c.nk OPERATOR(pg_catalog.=) 0 AND c.nd OPERATOR(pg_catalog.=) c.nn FROM c)";
	}

	/*
	 * x: the source rows whose covering version V is absent or differs; read
	 * only if the checks passed.  An identical replay keeps none.
	 */
	appendStringInfoString(&q, ", x AS (SELECT ");
	pgi_append_column_list(&q, "s", &plan->cols, NIL);
	appendStringInfo(&q, ", %s AS %s, %s AS %s, %s AS %s FROM s LEFT JOIN %s v ON ",
					 tid_of(plan, "v"), own(plan, "cid"),
					 vcol(plan, "v", false), own(plan, "cvf"),
					 vcol(plan, "v", true), own(plan, "cvt"), tq);
	pgi_append_key_match(&q, "s", "v", &plan->cols, plan->key);
	appendStringInfoString(&q, " AND ");
	append_covers(&q, plan, "v");
	appendStringInfo(&q, " WHERE %s AND (%s IS NULL OR ", checks, vcol(plan, "v", false));
	pgi_append_image_differs(&q, plan->imagefn, "s", "v", &plan->cols, plan->all, true);
	appendStringInfoString(&q, "))");

	/*
	 * j: x with P (only without V, or with V starting at as_of) and N (only
	 * without V, or with V ending), and what is to be done: cs	2: V starts
	 * before as_of, 3: V starts at as_of, 4: no V; lm	P ends at as_of and is
	 * identical: P absorbs the change; rm	N starts where the changed piece
	 * ends and is identical; e	where the changed piece ends (NULL: never).
	 */
	appendStringInfoString(&q, ", j AS (SELECT y.*, CASE WHEN ");
	appendStringInfo(&q, "y.%s IS NULL THEN 4 WHEN y.%s OPERATOR(pg_catalog.=) $1 THEN 3 ELSE 2 END AS %s, ",
					 own(plan, "cvf"), own(plan, "cvf"), own(plan, "cs"));
	appendStringInfo(&q, "COALESCE(y.%s OPERATOR(pg_catalog.=) $1 AND y.%s, false) AS %s, ",
					 own(plan, "pvt"), own(plan, "psame"), own(plan, "lm"));
	appendStringInfo(&q, "COALESCE(CASE WHEN y.%s IS NULL THEN y.%s ELSE y.%s END OPERATOR(pg_catalog.=) y.%s AND y.%s, false) AS %s, ",
					 own(plan, "cvf"), own(plan, "nvf"), own(plan, "cvt"),
					 own(plan, "nvf"), own(plan, "nsame"), own(plan, "rm"));
	appendStringInfo(&q, "CASE WHEN y.%s IS NULL THEN y.%s ELSE y.%s END AS %s FROM (SELECT x.*, ",
					 own(plan, "cvf"), own(plan, "nvf"), own(plan, "cvt"), own(plan, "e"));
	appendStringInfo(&q, "p.%s AS %s, p.%s AS %s, p.%s AS %s, p.%s AS %s, ",
					 own(plan, "id"), own(plan, "pid"),
					 own(plan, "vf"), own(plan, "pvf"), own(plan, "vt"), own(plan, "pvt"),
					 own(plan, "same"), own(plan, "psame"));
	appendStringInfo(&q, "n.%s AS %s, n.%s AS %s, n.%s AS %s, n.%s AS %s FROM x",
					 own(plan, "id"), own(plan, "nid"),
					 own(plan, "vf"), own(plan, "nvf"), own(plan, "vt"), own(plan, "nvt"),
					 own(plan, "same"), own(plan, "nsame"));
	append_neighbour(&q, plan, "p",
					 psprintf("(x.%s IS NULL OR x.%s OPERATOR(pg_catalog.=) $1)",
							  own(plan, "cvf"), own(plan, "cvf")), false);
	append_neighbour(&q, plan, "n",
					 psprintf("(x.%s IS NULL OR x.%s IS NOT NULL)",
							  own(plan, "cvf"), own(plan, "cvt")), true);
	appendStringInfoString(&q, ") y)");

	/*
	 * z: with deletes => 'close', the versions covering as_of of keys the
	 * source lacks (read only if the checks passed).
	 */
	if (plan->close)
	{
		appendStringInfo(&q, ", z AS (SELECT %s AS %s, ", tid_of(plan, "t"), own(plan, "otid"));
		pgi_append_column_list(&q, "t", &plan->cols, plan->key);
		appendStringInfo(&q, ", %s AS %s, %s AS %s FROM %s t LEFT JOIN s ON ",
						 vcol(plan, "t", false), own(plan, "ovf"),
						 vcol(plan, "t", true), own(plan, "ovt"), tq);
		pgi_append_key_match(&q, "t", "s", &plan->cols, plan->key);
		appendStringInfoString(&q, " WHERE ");
		append_covers(&q, plan, "t");
		appendStringInfo(&q, " AND %s AND ", checks);
		pgi_append_column(&q, "s", &plan->cols.cols[linitial_int(plan->key)]);
		appendStringInfoString(&q, " IS NULL)");
	}

	/*
	 * o: the version rows to delete (1), shrink (2) or grow (3), each named
	 * by the ctid it was read at, its key and start, with its new bounds.
	 */
	appendStringInfo(&q, ", o AS (SELECT NULL::pg_catalog.int4 AS %s, NULL::pg_catalog.tid AS %s, ",
					 own(plan, "op"), own(plan, "otid"));
	for (i = 0; i < list_length(plan->key); i++)
	{
		PgiColumn  *col = &plan->cols.cols[list_nth_int(plan->key, i)];

		appendStringInfoString(&q, "NULL::");
		pgi_append_type(&q, col->typid, col->typmod);
		appendStringInfo(&q, " AS %s, ", quote_identifier(col->name));
	}
	appendStringInfo(&q, "NULL::pg_catalog.timestamptz AS %s, NULL::pg_catalog.timestamptz AS %s, "
					 "NULL::pg_catalog.timestamptz AS %s, NULL::pg_catalog.timestamptz AS %s WHERE false",
					 own(plan, "ovf"), own(plan, "ovt"), own(plan, "nvf"), own(plan, "nvt"));
	/* V, replaced by P's extension */
	append_op(&q, plan, 1, own_col(plan, "j", "cid"),
			  own_col(plan, "j", "cvf"), own_col(plan, "j", "cvt"),
			  "NULL", "NULL", psprintf("%s OPERATOR(pg_catalog.=) 3 AND %s", cs, lm));
	/* N, absorbed by V's rewrite or P's extension */
	append_op(&q, plan, 1, own_col(plan, "j", "nid"),
			  own_col(plan, "j", "nvf"), own_col(plan, "j", "nvt"),
			  "NULL", "NULL",
			  psprintf("%s AND (%s OPERATOR(pg_catalog.=) 3 OR (%s OPERATOR(pg_catalog.=) 4 AND %s))",
					   rm, cs, cs, lm));
	/* V closed at as_of */
	append_op(&q, plan, 2, own_col(plan, "j", "cid"),
			  own_col(plan, "j", "cvf"), own_col(plan, "j", "cvt"),
			  own_col(plan, "j", "cvf"), "$1", psprintf("%s OPERATOR(pg_catalog.=) 2", cs));
	/* P extended over the changed piece (and N, if N is absorbed too) */
	append_op(&q, plan, 3, own_col(plan, "j", "pid"),
			  own_col(plan, "j", "pvf"), own_col(plan, "j", "pvt"),
			  own_col(plan, "j", "pvf"), newend, lm);
	/* N extended back to as_of */
	append_op(&q, plan, 3, own_col(plan, "j", "nid"),
			  own_col(plan, "j", "nvf"), own_col(plan, "j", "nvt"),
			  "$1", own_col(plan, "j", "nvt"), grows_n);
	if (plan->close)
	{
		appendStringInfo(&q, " UNION ALL SELECT CASE WHEN z.%s OPERATOR(pg_catalog.=) $1 THEN 1 ELSE 2 END, z.%s, ",
						 own(plan, "ovf"), own(plan, "otid"));
		pgi_append_column_list(&q, "z", &plan->cols, plan->key);
		appendStringInfo(&q, ", z.%s, z.%s, z.%s, $1 FROM z",
						 own(plan, "ovf"), own(plan, "ovt"), own(plan, "ovf"));
	}
	appendStringInfoChar(&q, ')');

	if (!plan->dry_run)
	{
		/* in this order: see the top of the file */
		appendStringInfo(&q, ", w1 AS (DELETE FROM %s t USING o WHERE %s OPERATOR(pg_catalog.=) 1 AND ",
						 tq, own_col(plan, "o", "op"));
		append_op_match(&q, plan, "o");
		appendStringInfo(&q, " RETURNING 1), w2 AS (UPDATE %s t SET %s = o.%s FROM o WHERE %s OPERATOR(pg_catalog.=) 2 AND ",
						 tq, quote_identifier(plan->vt->name), own(plan, "nvt"),
						 own_col(plan, "o", "op"));
		append_op_match(&q, plan, "o");
		appendStringInfo(&q, " RETURNING 1), w3 AS (UPDATE %s t SET %s = o.%s, %s = o.%s FROM o WHERE %s OPERATOR(pg_catalog.=) 3 AND ",
						 tq, quote_identifier(plan->vf->name), own(plan, "nvf"),
						 quote_identifier(plan->vt->name), own(plan, "nvt"),
						 own_col(plan, "o", "op"));
		append_op_match(&q, plan, "o");
		/* V rewritten in place, over N too if N was absorbed */
		appendStringInfo(&q, " RETURNING 1), w4 AS (UPDATE %s t SET ", tq);
		for (i = 0; i < plan->cols.ncols; i++)
		{
			pgi_append_ident(&q, plan->cols.cols[i].name);
			appendStringInfoString(&q, " = ");
			pgi_append_column(&q, "j", &plan->cols.cols[i]);
			appendStringInfoString(&q, ", ");
		}
		appendStringInfo(&q, "%s = %s FROM j WHERE %s OPERATOR(pg_catalog.=) 3 AND NOT %s AND ",
						 quote_identifier(plan->vt->name), newend, cs, lm);
		append_version_match(&q, plan, "j", "cid", "cvf", "cvt");
		appendStringInfoString(&q, " RETURNING 1), w5 AS (");
		appendStringInfo(&q, "INSERT INTO %s (", tq);
		pgi_append_column_list(&q, NULL, &plan->cols, NIL);
		appendStringInfo(&q, ", %s, %s) SELECT ", quote_identifier(plan->vf->name),
						 quote_identifier(plan->vt->name));
		pgi_append_column_list(&q, "j", &plan->cols, NIL);
		appendStringInfo(&q, ", $1, %s FROM j WHERE %s RETURNING 1)", e, inserts);
	}

	if (plan->unique)
		appendStringInfoString(&q, " SELECT c.n, c.nk, c.nn, c.nn, "
							   "NULL::pg_catalog.int8, NULL::pg_catalog.text, ");
	else
		appendStringInfo(&q, " SELECT c.n, c.nk, c.nn, c.nd, "
						 "CASE WHEN %s THEN (SELECT d.n FROM d) END, "
						 "CASE WHEN %s THEN (SELECT d.ex FROM d) END, ",
						 dupcond, dupcond);
	appendStringInfo(&q, "(SELECT pg_catalog.count(*) FROM j), "
					 "(SELECT pg_catalog.count(*) FILTER (WHERE %s) FROM j), "
					 "(SELECT pg_catalog.count(*) FILTER (WHERE %s OPERATOR(pg_catalog.=) 2) FROM j)%s, "
					 "(SELECT pg_catalog.count(*) FILTER (WHERE %s) FROM j), "
					 "(SELECT pg_catalog.count(*) FROM o), "
					 "(SELECT pg_catalog.count(*) FILTER (WHERE %s OPERATOR(pg_catalog.=) 3 AND NOT %s) FROM j), ",
					 inserts, cs, plan->close ? " OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM z)" : "",
					 corrects, cs, lm);
	if (plan->dry_run)
		appendStringInfoString(&q, "0::pg_catalog.int8");
	else
		appendStringInfoString(&q, "(SELECT pg_catalog.count(*) FROM w1) OPERATOR(pg_catalog.+) "
							   "(SELECT pg_catalog.count(*) FROM w2) OPERATOR(pg_catalog.+) "
							   "(SELECT pg_catalog.count(*) FROM w3) OPERATOR(pg_catalog.+) "
							   "(SELECT pg_catalog.count(*) FROM w4) OPERATOR(pg_catalog.+) "
							   "(SELECT pg_catalog.count(*) FROM w5)");
	appendStringInfoString(&q, " FROM c");
	return q.data;
}

/* The errors the checks found, as the contract words them. */
static void
report_check_errors(HistoryPlan *plan, int64 null_keys, int64 dup_keys,
					const char *dup_example, int64 dup_rows)
{
	if (null_keys > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null key values", plan->source->displayname),
				 errdetail_plural("%lld row has a null in key column(s) (%s).",
								  "%lld rows have a null in key column(s) (%s).",
								  (unsigned long) null_keys,
								  (long long) null_keys,
								  pgi_column_names(&plan->cols, plan->key)),
				 errhint("Filter out or fix those rows: a null key names no history.")));
	if (dup_rows > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys", plan->source->displayname),
				 errdetail_plural("Key (%s)=%s appears more than once; %lld key is duplicated.",
								  "Key (%s)=%s appears more than once; %lld keys are duplicated.",
								  (unsigned long) dup_keys,
								  pgi_column_names(&plan->cols, plan->key),
								  dup_example, (long long) dup_keys),
				 errhint("A history write takes one row per key, its state at as_of: remove the duplicates.")));
}

/*
 * Under REPEATABLE READ or SERIALIZABLE the call reads in the transaction's
 * snapshot, which may be older than the commit of the writer it waited
 * for.  An UPDATE or DELETE of a version that writer changed fails with
 * 40001 by itself; a version it inserted is invisible to us, so after
 * writing, the source's keys are checked in a fresh snapshot for versions
 * that overlap (two current ones included), and if there are any the call
 * fails with 40001 too, as ON CONFLICT does in the same situation.
 */
static void
check_no_overlap(HistoryPlan *plan)
{
	StringInfoData q;
	Snapshot	latest;
	int64		overlaps;

	initStringInfo(&q);
	appendStringInfo(&q, "WITH s AS NOT MATERIALIZED (%s) SELECT pg_catalog.count(*) FROM (SELECT %s AS vf, "
					 "pg_catalog.lag(%s) OVER w AS pvf, pg_catalog.lag(%s) OVER w AS pvt FROM %s t "
					 "WHERE EXISTS (SELECT FROM s WHERE ",
					 plan->sel, vcol(plan, "t", false), vcol(plan, "t", false),
					 vcol(plan, "t", true), plan->target->qualname);
	pgi_append_key_match(&q, "s", "t", &plan->cols, plan->key);
	appendStringInfoString(&q, ") WINDOW w AS (PARTITION BY ");
	pgi_append_column_list(&q, "t", &plan->cols, plan->key);
	appendStringInfo(&q, " ORDER BY %s)) o WHERE o.pvf IS NOT NULL AND "
					 "(o.pvt IS NULL OR o.pvt OPERATOR(pg_catalog.>) o.vf)",
					 vcol(plan, "t", false));
	latest = RegisterSnapshot(GetLatestSnapshot());
	pgi_spi_run_cached(q.data, NULL, plan->relids, CURSOR_OPT_GENERIC_PLAN,
					   latest, true, SPI_OK_SELECT);
	overlaps = pgi_spi_int8(0, 1);
	UnregisterSnapshot(latest);
	if (overlaps > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent idempotent_history on \"%s\"",
						plan->target->displayname),
				 errdetail("Another transaction wrote versions of the same keys after this transaction's snapshot was taken."),
				 errhint("Retry the transaction.")));
}

/*
 * Serialize the history writers of the table (see the top of the file).
 * Before the call's snapshot is taken, so that under READ COMMITTED it
 * sees what the writer we waited for committed.
 */
static void
lock_history(FunctionCallInfo fcinfo, HistoryPlan *plan)
{
	pgi_lock_key(fcinfo, plan->target->relid, PGI_LOCK_HISTORY, ExclusiveLock);
}

Datum
pgi_idempotent_history(PG_FUNCTION_ARGS)
{
	HistoryPlan plan;
	ArrayType  *key;
	char	   *deletes;
	TimestampTz as_of;
	double		srows;
	char	   *sql;
	Datum		values[4];
	bool		nulls[4];
	int64		rows,
				null_keys,
				keyed,
				distinct,
				to_write,
				inserted,
				closed,
				corrected,
				ops,
				rewrites,
				written;
	int			nest;

	pgi_require_arg(fcinfo, HA_TARGET, "target");
	pgi_require_arg(fcinfo, HA_SOURCE, "source");
	pgi_require_arg(fcinfo, HA_VALID_FROM, "valid_from");
	pgi_require_arg(fcinfo, HA_VALID_TO, "valid_to");
	pgi_require_arg(fcinfo, HA_DELETES, "deletes");
	pgi_require_arg(fcinfo, HA_DRY_RUN, "dry_run");

	memset(&plan, 0, sizeof(plan));
	plan.target = pgi_relation_open(PG_GETARG_OID(HA_TARGET), PGI_REL_WRITE, "target");
	plan.source = pgi_relation_open(PG_GETARG_OID(HA_SOURCE), PGI_REL_READ, "source");
	key = PG_ARGISNULL(HA_KEY) ? NULL : PG_GETARG_ARRAYTYPE_P(HA_KEY);
	plan.dry_run = PG_GETARG_BOOL(HA_DRY_RUN);
	plan.imagefn = pgi_images_differ_fn(fcinfo->flinfo->fn_oid);
	deletes = text_to_cstring(PG_GETARG_TEXT_PP(HA_DELETES));
	if (strcmp(deletes, "ignore") == 0)
		plan.close = false;
	else if (strcmp(deletes, "close") == 0)
		plan.close = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for deletes: \"%s\"", deletes),
				 errhint("Valid values are \"ignore\" and \"close\" (the source is a full snapshot).")));

	/* the moment the source describes: as_of, else the run's time */
	as_of = PG_ARGISNULL(HA_AS_OF) ? pgi_current_run_time() :
		PG_GETARG_TIMESTAMPTZ(HA_AS_OF);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("as_of must be finite"),
				 errdetail("A version cannot start at %s.",
						   TIMESTAMP_IS_NOBEGIN(as_of) ? "-infinity" : "infinity")));

	plan_columns(&plan, key,
				 text_to_cstring(PG_GETARG_TEXT_PP(HA_VALID_FROM)),
				 text_to_cstring(PG_GETARG_TEXT_PP(HA_VALID_TO)));
	plan.bytid = pgi_relation_rows_by_ctid(plan.target);
	plan.relids[0] = plan.target->relid;
	plan.relids[1] = plan.source->relid;
	pgi_params_add(&plan.params, TIMESTAMPTZOID, TimestampTzGetDatum(as_of));
	pgi_progress_begin(&plan.progress, "idempotent_history", plan.target->displayname);

	/*
	 * A batch under a quarter of the table probes the key's index per row (as
	 * the upsert does); not with deletes => 'close', which reads every
	 * version covering as_of anyway.
	 */
	srows = pgi_relation_rows(plan.source->relid);
	if (!plan.close)
		plan.probe = srows >= 0 &&
			pgi_relation_rows_exceed(plan.target->relid, srows * 4);

	/*
	 * A large batch joined to the versions that cover as_of is planned for
	 * this call's as_of.  A plan kept for every as_of estimates the versions
	 * "valid_from <= $1" finds at a third of the table, where it is nearly
	 * every current one: at 1M keys it hashed the history (1M current rows,
	 * the wider side) instead of the source.  Planning the statement again is
	 * a few milliseconds, nothing next to such a batch; smaller batches keep
	 * the plan kept for them.
	 */
	plan.custom = !plan.probe && srows >= HISTORY_CUSTOM_PLAN_MIN;
	sql = build_statement(&plan);

	SPI_connect();
	if (!plan.dry_run)
		lock_history(fcinfo, &plan);
	plan.snapshot = RegisterSnapshot(GetTransactionSnapshot());
	nest = pgi_begin_settings(plan.probe);
	pgi_spi_run_cached(sql, &plan.params, plan.relids,
					   plan.custom ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN,
					   plan.snapshot, plan.dry_run, SPI_OK_SELECT);
	rows = pgi_spi_int8(0, HR_ROWS);
	null_keys = pgi_spi_int8(0, HR_NULL_KEYS);
	keyed = pgi_spi_int8(0, HR_KEYED);
	distinct = pgi_spi_int8(0, HR_DISTINCT);
	report_check_errors(&plan, null_keys, pgi_spi_int8(0, HR_DUP_KEYS),
						pgi_spi_text(0, HR_DUP_EXAMPLE), keyed - distinct);
	to_write = pgi_spi_int8(0, HR_TO_WRITE);
	inserted = pgi_spi_int8(0, HR_INSERT);
	closed = pgi_spi_int8(0, HR_CLOSE);
	corrected = pgi_spi_int8(0, HR_CORRECT);
	ops = pgi_spi_int8(0, HR_OPS);
	rewrites = pgi_spi_int8(0, HR_REWRITE);
	written = pgi_spi_int8(0, HR_WRITTEN);
	AtEOXact_GUC(true, nest);
	UnregisterSnapshot(plan.snapshot);

	/*
	 * Every version row planned is found by its key, start and end as they
	 * were read; fewer means another writer changed one since (history
	 * writers wait for each other, but any other UPDATE or DELETE of the
	 * table does not), and what was written no longer follows from what was
	 * read.
	 */
	if (!plan.dry_run && written != ops + rewrites + inserted)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not write the history of \"%s\" because of a concurrent update",
						plan.target->displayname),
				 errdetail_plural("%lld of the %lld version rows to write was changed by another transaction since it was read.",
								  "%lld of the %lld version rows to write were changed by another transaction since they were read.",
								  ops + rewrites + inserted - written,
								  (long long) (ops + rewrites + inserted - written),
								  (long long) (ops + rewrites + inserted)),
				 errhint("Retry the transaction.")));
	if (!plan.dry_run && written > 0 && IsolationUsesXactSnapshot())
		check_no_overlap(&plan);
	if (plan.dry_run)
		pgi_progress_step(&plan.progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld to insert, %lld to close, %lld to correct, %lld unchanged (dry run: nothing written)",
										"%s on %s: classified %lld rows: %lld to insert, %lld to close, %lld to correct, %lld unchanged (dry run: nothing written)",
										rows, PGI_PROGRESS_OF(&plan.progress),
										(long long) rows, (long long) inserted,
										(long long) closed, (long long) corrected,
										(long long) (rows - to_write)));
	else
		pgi_progress_step(&plan.progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld to insert, %lld to close, %lld to correct, %lld unchanged",
										"%s on %s: classified %lld rows: %lld to insert, %lld to close, %lld to correct, %lld unchanged",
										rows, PGI_PROGRESS_OF(&plan.progress),
										(long long) rows, (long long) inserted,
										(long long) closed, (long long) corrected,
										(long long) (rows - to_write)));
	SPI_finish();

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(inserted);
	values[1] = Int64GetDatum(closed);
	values[2] = Int64GetDatum(corrected);
	values[3] = Int64GetDatum(rows - to_write);
	pgi_return_row(fcinfo, values, nulls);
	PG_RETURN_NULL();
}
