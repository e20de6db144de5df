/*-------------------------------------------------------------------------
 *
 * upsert_sql.c
 *	  The text of the upsert's statements: the one statement of the common
 *	  case (checks, classification and writes as one CTE), the first load
 *	  into an empty table, the safe path's INSERT ... ON CONFLICT, and the
 *	  emptiness probe.  Each is built once per call shape and kept
 *	  (callcache.c); upsert.c decides which runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "upsert.h"

/* s.version > t.version, with the version type's own operator */
static void
append_version_compare(StringInfo buf, UpsertPlan *plan, const char *s,
					   int strategy, const char *t)
{
	PgiColumn  *v = &plan->cols.cols[plan->version];

	pgi_append_column(buf, s, v);
	appendStringInfoChar(buf, ' ');
	pgi_append_operator(buf, pgi_type_operator(v->typid, strategy, v->name));
	appendStringInfoChar(buf, ' ');
	pgi_append_column(buf, t, v);
}

/*
 * The condition under which source row s overwrites existing row t: a
 * greater version (or a target row with none), or without versions any
 * difference in binary image.
 */
static void
append_changed(StringInfo buf, UpsertPlan *plan, const char *t, const char *s)
{
	if (plan->version >= 0)
	{
		appendStringInfoString(buf, "(");
		pgi_append_column(buf, t, &plan->cols.cols[plan->version]);
		appendStringInfoString(buf, " IS NULL OR ");
		append_version_compare(buf, plan, s, BTGreaterStrategyNumber, t);
		appendStringInfoString(buf, ")");
	}
	else
		pgi_append_image_differs(buf, pgi_images_differ_fn(plan->fn), t, s,
								 &plan->cols, plan->upd, true);
}

/* key columns as "s.k1, s.k2" */
static void
append_key_list(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_column_list(buf, alias, &plan->cols, plan->key);
}

/* ROW(alias.k1, ...)::text, the key as a message shows it */
static void
append_key_text(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_row_text(buf, alias, &plan->cols, plan->key);
}


/* the found/not-found test on the outer-joined target row */
static void
append_found(StringInfo buf, UpsertPlan *plan, const char *t, bool found)
{
	pgi_append_column(buf, t, &plan->cols.cols[linitial_int(plan->key)]);
	appendStringInfoString(buf, found ? " IS NOT NULL" : " IS NULL");
}

/* SET u1 = <from>.u1, ... */
static void
append_set_list(StringInfo buf, UpsertPlan *plan, const char *from)
{
	ListCell   *lc;

	foreach(lc, plan->set)
	{
		PgiColumn  *col = &plan->cols.cols[lfirst_int(lc)];

		if (lc != list_head(plan->set))
			appendStringInfoString(buf, ", ");
		pgi_append_ident(buf, col->name);
		appendStringInfoString(buf, " = ");
		pgi_append_column(buf, from, col);
	}
}

/*
 * The row lock the UPDATE will take: FOR UPDATE where it may change a key
 * column (a key whose equal values can differ in image is SET), so that
 * no lock needs upgrading; FOR NO KEY UPDATE otherwise, as UPDATE itself
 * takes, which leaves foreign key checks against the rows unblocked.
 */
static const char *
lock_strength(UpsertPlan *plan)
{
	ListCell   *lc;

	foreach(lc, plan->key)
	{
		if (list_member_int(plan->set, lfirst_int(lc)))
			return "UPDATE";
	}
	return "NO KEY UPDATE";
}

/* a column name for j's own columns, unused by the source's columns */
static char *
j_column_name(UpsertPlan *plan, const char *base)
{
	char	   *name = pstrdup(base);

	while (pgi_column_index(&plan->cols, name) >= 0)
		name = psprintf("%s_", name);
	return name;
}

/* , e AS (the newest row of each key of s, for on_duplicate => 'last') */
static void
append_newest_per_key(StringInfo q, UpsertPlan *plan)
{
	appendStringInfoString(q, ", e AS (SELECT DISTINCT ON (");
	append_key_list(q, plan, "s");
	appendStringInfoString(q, ") ");
	pgi_append_column_list(q, "s", &plan->cols, NIL);
	appendStringInfoString(q, " FROM s ORDER BY ");
	append_key_list(q, plan, "s");
	if (plan->version >= 0)
	{
		appendStringInfoString(q, ", ");
		pgi_append_column(q, "s", &plan->cols.cols[plan->version]);
		appendStringInfoString(q, " DESC");
	}
	appendStringInfoChar(q, ')');
}


/*
 * Whether the duplicated keys a failed check names are looked for by a
 * statement of their own (pgi_upsert_build_dups), after the one statement
 * found that there are some: for a table or JSON source, which read the
 * same rows again in the same snapshot.  This keeps d's plan out of every
 * call that has no duplicates (its nodes are set up at each execution,
 * read or not).  A query is evaluated once, so its d stays in.
 */
bool
pgi_upsert_dups_apart(UpsertPlan *plan)
{
	return !plan->unique && !plan->keep_last && plan->source->query == NULL;
}

/*
 * Whether an UPDATE of the target can update fewer rows than it is given
 * without an error or anything concurrent: only a BEFORE UPDATE ROW trigger
 * that returns NULL can (a partition may have one of its own).  Otherwise
 * the rows locked are the rows updated, and the statement need not count
 * both.
 */
static bool
update_may_skip_rows(UpsertPlan *plan)
{
	Relation	rel;
	bool		skip;

	if (plan->target->relkind != RELKIND_RELATION)
		return true;
	rel = relation_open(plan->target->relid, NoLock);
	skip = rel->trigdesc != NULL && rel->trigdesc->trig_update_before_row;
	relation_close(rel, NoLock);
	return skip;
}

/*
 * The one statement of a call, in the common case:
 *
 *	s	the source in the target's types; MATERIALIZED for a query or JSON
 *		source, so it is evaluated once, while a relation is simply read
 *		again (in the same snapshot, so the same rows);
 *	c	the checks: one aggregate over s counting rows, null keys, null
 *		versions and distinct keys (not for a source unique on the key by
 *		construction, distinct.c: it has no duplicates to look for);
 *	d	the duplicated keys, and tie the key whose newest rows differ:
 *		only read when c found duplicates (a CTE runs when first read);
 *		for a table or JSON source, d is a statement of its own, run only
 *		then (pgi_upsert_dups_apart);
 *	e	with on_duplicate => 'last', the newest row of each key (a unique
 *		source is its own);
 *	j	the rows to write (1 new, 2 changed) and the stale ones (3), from e
 *		LEFT JOIN the target; read only if the checks passed, so that
 *		nothing is written otherwise.  Unchanged rows are dropped here, so
 *		an identical replay keeps no row and writes nothing;
 *	l	the changed rows locked, in key order;
 *	i	plain INSERT of the new rows, in key order, after l;
 *	u	UPDATE of the locked rows, after i, rechecking that they still
 *		differ;
 *
 * and one row of counts, with what the error messages need when the
 * checks failed.  Every part reads the statement's one snapshot.
 */

char *
pgi_upsert_build_merge(UpsertPlan *plan)
{
	StringInfoData q;
	const char *cls = j_column_name(plan, "pgi_class");

	/* the matched row is updated where j found it, where that can be named */
	const char *tid = plan->bytid ? j_column_name(plan, "pgi_tid") : NULL;
	const char *ok_dups;
	bool		lock_pass;
	const char *dupcond = "c.nd OPERATOR(pg_catalog.<>) c.nn AND c.nk OPERATOR(pg_catalog.=) 0 "
		"AND c.nv OPERATOR(pg_catalog.=) 0";

	initStringInfo(&q);
	if (plan->probe)
		appendStringInfoString(&q, "/* pg_idempotent: batch small against the table: index probes */ ");
	appendStringInfo(&q, "WITH s AS %sMATERIALIZED (%s)",
					 plan->materialize ? "" : "NOT ", plan->sel);

	/* c: count(DISTINCT) sorts, several times cheaper than hashing */
	appendStringInfoString(&q, ", c AS (SELECT pg_catalog.count(*) AS n, "
						   "pg_catalog.count(*) FILTER (WHERE ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nk, ");
	if (plan->version >= 0)
	{
		appendStringInfoString(&q, "pg_catalog.count(*) FILTER (WHERE ");
		pgi_append_column(&q, "s", &plan->cols.cols[plan->version]);
		appendStringInfoString(&q, " IS NULL)");
	}
	else
		appendStringInfoString(&q, "0::pg_catalog.int8");
	/* the keyed rows are the others: the same aggregate, computed once */
	appendStringInfoString(&q, " AS nv, pg_catalog.count(*) OPERATOR(pg_catalog.-) "
						   "pg_catalog.count(*) FILTER (WHERE ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nn");

	/*
	 * A source unique on the key by construction has no duplicates to count,
	 * name, or fold with on_duplicate => 'last' (each key's newest row is its
	 * only one): its keyed rows are its distinct keys.
	 */
	if (plan->unique)
	{
		appendStringInfoString(&q, " FROM s)");
		ok_dups = "true";
	}
	else
	{
		pgi_append_distinct_keys(&q, &plan->cols, plan->key);
		appendStringInfoString(&q, " FROM s)");
	}

	if (!plan->unique && !plan->keep_last)
	{
		if (!pgi_upsert_dups_apart(plan))
			pgi_append_duplicated_keys(&q, &plan->cols, plan->key);
		ok_dups = "c.nd OPERATOR(pg_catalog.=) c.nn";
	}
	else if (!plan->unique)
	{
		StringInfoData win;

		/* the window every row of a key shares, newest version first */
		initStringInfo(&win);
		appendStringInfoString(&win, "PARTITION BY ");
		append_key_list(&win, plan, "s");
		if (plan->version >= 0)
		{
			appendStringInfoString(&win, " ORDER BY ");
			pgi_append_column(&win, "s", &plan->cols.cols[plan->version]);
			appendStringInfoString(&win, " DESC");
		}
		/* rows tied for newest must be identical, or there is no answer */
		appendStringInfoString(&q, ", tie AS (SELECT ");
		append_key_text(&q, plan, "d");
		appendStringInfoString(&q, " AS ex FROM (SELECT ");
		append_key_list(&q, plan, "s");
		appendStringInfoString(&q, ", ROW(");
		pgi_append_column_list(&q, "s", &plan->cols, NIL);
		appendStringInfoString(&q, ") AS img, pg_catalog.first_value(ROW(");
		pgi_append_column_list(&q, "s", &plan->cols, NIL);
		appendStringInfo(&q, ")) OVER w AS top, pg_catalog.rank() OVER w AS rk "
						 "FROM s WINDOW w AS (%s)) d "
						 "WHERE d.rk OPERATOR(pg_catalog.=) 1 "
						 "AND pg_catalog.record_image_ne(d.img, d.top) LIMIT 1)",
						 win.data);

		append_newest_per_key(&q, plan);
		ok_dups = "(c.nd OPERATOR(pg_catalog.=) c.nn OR NOT EXISTS (SELECT FROM tie))";
	}

	/* j: classify, keeping only what is to be written or counted stale */
	appendStringInfoString(&q, ", j AS (SELECT * FROM (SELECT ");
	pgi_append_column_list(&q, "e", &plan->cols, NIL);
	appendStringInfoString(&q, ", CASE WHEN ");
	append_found(&q, plan, "t", false);
	appendStringInfoString(&q, " THEN 1 WHEN ");
	append_changed(&q, plan, "t", "e");
	appendStringInfoString(&q, " THEN 2 ");
	if (plan->version >= 0)
	{
		appendStringInfoString(&q, "WHEN ");
		append_version_compare(&q, plan, "e", BTLessStrategyNumber, "t");
		appendStringInfoString(&q, " THEN 3 ");
	}
	appendStringInfoString(&q, "ELSE 0 END AS ");
	pgi_append_ident(&q, cls);
	if (tid != NULL)
	{
		appendStringInfoString(&q, ", t.ctid AS ");
		pgi_append_ident(&q, tid);
	}
	appendStringInfo(&q, " FROM %s LEFT JOIN %s t ON ",
					 plan->keep_last && !plan->unique ? "e" : "s e",
					 plan->target->qualname);
	pgi_append_key_match(&q, "e", "t", &plan->cols, plan->key);
	/* OFFSET 0: the CASE is computed once, not again in the filter */
	appendStringInfo(&q, " WHERE (SELECT c.nk OPERATOR(pg_catalog.=) 0 AND c.nv OPERATOR(pg_catalog.=) 0 "
					 "AND %s FROM c) OFFSET 0) x WHERE x.%s OPERATOR(pg_catalog.<>) 0)",
					 ok_dups, quote_identifier(cls));

	/*
	 * Citus runs SELECT ... FOR UPDATE on one shard only: a distributed
	 * target goes without the lock pass, as before it, and two overlapping
	 * batches may deadlock there, which a retry then absorbs.
	 */
	lock_pass = !plan->dry_run && !pgi_relation_is_distributed(plan->target->relid);
	if (!plan->dry_run && !lock_pass)
		ereport(DEBUG1,
				(errmsg_internal("pg_idempotent: target \"%s\" is distributed by Citus: changed rows are not locked in key order before the update",
								 plan->target->displayname)));

	if (lock_pass)
	{
		/*
		 * l: the changed rows, locked in key order before any is updated.
		 * UPDATE has no ORDER BY, and two sessions updating overlapping keys
		 * in the orders their joins happen to produce deadlock; locking in
		 * one order they queue instead.  With the ctid, a row that another
		 * session changed since the snapshot fails the recheck of its new
		 * version and is left out: the call then sees fewer rows locked than
		 * it classified changed, and classifies again in a new snapshot.
		 * Only the key and ctid are sorted (OFFSET 0 keeps the subquery
		 * whole, so the row a recheck carries along is that narrow one).
		 */
		appendStringInfoString(&q, ", l AS (SELECT FROM (SELECT ");
		if (tid != NULL)
		{
			append_key_list(&q, plan, "j");
			appendStringInfo(&q, ", j.%s", quote_identifier(tid));
		}
		else
			pgi_append_column_list(&q, "j", &plan->cols, NIL);
		appendStringInfo(&q, " FROM j WHERE j.%s OPERATOR(pg_catalog.=) 2 OFFSET 0) jl JOIN %s t ON ",
						 quote_identifier(cls), plan->target->qualname);
		if (tid != NULL)
			pgi_append_tid_match(&q, "t",
								 psprintf("jl.%s", quote_identifier(tid)));
		else
		{
			pgi_append_key_match(&q, "t", "jl", &plan->cols, plan->key);
			appendStringInfoString(&q, " AND ");
			append_changed(&q, plan, "t", "jl");
		}
		appendStringInfoString(&q, " ORDER BY ");
		append_key_list(&q, plan, "jl");
		appendStringInfo(&q, " FOR %s OF t)", lock_strength(plan));
	}

	if (!plan->dry_run)
	{
		/*
		 * i: the new rows, in key order too, once l has locked every changed
		 * row (its initplan reads l first), and before u updates any.  An
		 * insert waits for another session's uncommitted insert of the same
		 * key and for its update of a row with that key (a stale snapshot
		 * classifies such a key new), never for a row lock alone.  So a
		 * session that waits in i holds only lower new keys and row locks no
		 * inserter waits for, and one that updates (in u) waits for nothing
		 * any more: no two sessions wait for each other.  With u first, a
		 * session waiting in i held updated rows of any key, which a stale
		 * first load could be waiting for.
		 */
		appendStringInfoString(&q, ", i AS (");
		pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "j");
		appendStringInfo(&q, " FROM j WHERE j.%s OPERATOR(pg_catalog.=) 1 ",
						 quote_identifier(cls));
		if (lock_pass)
			appendStringInfoString(&q, "AND (SELECT pg_catalog.count(*) FROM l) OPERATOR(pg_catalog.>=) 0 ");
		appendStringInfoString(&q, "ORDER BY ");
		append_key_list(&q, plan, "j");

		/*
		 * u, once i has inserted every new row (its initplan reads i first):
		 * the row j found, by its ctid, so no second probe of the key's index.
		 * The key and the change are matched too, which costs nothing on a
		 * row we hold (and where no lock pass ran, rechecks a row updated
		 * concurrently in its new version, or skips it, deleted).
		 */
		appendStringInfo(&q, " RETURNING 1), u AS (UPDATE %s t SET ", plan->target->qualname);
		append_set_list(&q, plan, "j");
		appendStringInfo(&q, " FROM j WHERE j.%s OPERATOR(pg_catalog.=) 2 "
						 "AND (SELECT pg_catalog.count(*) FROM i) OPERATOR(pg_catalog.>=) 0 AND ",
						 quote_identifier(cls));
		if (tid != NULL)
		{
			pgi_append_tid_match(&q, "t",
								 psprintf("j.%s", quote_identifier(tid)));
			appendStringInfoString(&q, " AND ");
		}
		pgi_append_key_match(&q, "t", "j", &plan->cols, plan->key);
		appendStringInfoString(&q, " AND ");
		append_changed(&q, plan, "t", "j");
		appendStringInfoString(&q, " RETURNING 1)");
	}

	/*
	 * Rows locked: l's count where a trigger may skip updates; otherwise the
	 * rows updated tell the same, and the column is NULL for the caller to
	 * take them (a second count of u would be a subquery of its own, planned
	 * and set up again at every planning).
	 */
	appendStringInfo(&q, " SELECT c.n, c.nk, c.nv, c.nn, %s, k.n1, k.n2, k.n3, %s, %s, %s, ",
					 plan->unique ? "c.nn" : "c.nd",
					 plan->dry_run ? "0::pg_catalog.int8" :
					 lock_pass && update_may_skip_rows(plan) ? "(SELECT pg_catalog.count(*) FROM l)" :
					 "NULL::pg_catalog.int8",
					 plan->dry_run ? "0::pg_catalog.int8" : "(SELECT pg_catalog.count(*) FROM u)",
					 plan->dry_run ? "0::pg_catalog.int8" : "(SELECT pg_catalog.count(*) FROM i)");
	if (plan->unique || pgi_upsert_dups_apart(plan))
		appendStringInfoString(&q, "NULL::pg_catalog.int8, NULL::pg_catalog.text, NULL::pg_catalog.text");
	else if (!plan->keep_last)
		appendStringInfo(&q, "CASE WHEN %s THEN (SELECT d.n FROM d) END, "
						 "CASE WHEN %s THEN (SELECT d.ex FROM d) END, NULL::pg_catalog.text",
						 dupcond, dupcond);
	else
		appendStringInfo(&q, "NULL::pg_catalog.int8, NULL::pg_catalog.text, "
						 "CASE WHEN %s THEN (SELECT tie.ex FROM tie) END", dupcond);
	appendStringInfo(&q, " FROM c, (SELECT pg_catalog.count(*) FILTER (WHERE j.%s OPERATOR(pg_catalog.=) 1) AS n1, "
					 "pg_catalog.count(*) FILTER (WHERE j.%s OPERATOR(pg_catalog.=) 2) AS n2, "
					 "pg_catalog.count(*) FILTER (WHERE j.%s OPERATOR(pg_catalog.=) 3) AS n3 FROM j) k",
					 quote_identifier(cls), quote_identifier(cls), quote_identifier(cls));
	return q.data;
}


/*
 * The duplicated keys of a source the one statement found to have some,
 * for the error: how many, and the smallest as text.
 */
char *
pgi_upsert_build_dups(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "WITH s AS NOT MATERIALIZED (%s)", plan->sel);
	pgi_append_duplicated_keys(&q, &plan->cols, plan->key);
	appendStringInfoString(&q, " SELECT d.n, d.ex FROM d");
	return q.data;
}

char *
pgi_upsert_build_empty(UpsertPlan *plan)
{
	return psprintf("SELECT 1 FROM %s LIMIT 1", plan->target->qualname);
}


/*
 * The first load's insert: a plain INSERT of the whole source into the
 * empty table, so defaults are evaluated for those rows alone and no
 * speculative insertion is paid for.  In key order, as every write of the
 * upsert: two sessions loading overlapping keys then queue instead of
 * deadlocking, and the key's index is filled from left to right (1M rows
 * in random order: 4.1-4.6 s unsorted, 1.6-1.8 s sorted; in key order
 * already, the same either way).
 */
char *
pgi_upsert_build_first_load(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "s");
	appendStringInfo(&q, " FROM (%s) s ORDER BY ", plan->sel);
	append_key_list(&q, plan, "s");
	return q.data;
}


/*
 * The safe path, the last resort when other sessions keep writing some of
 * the same keys under the call (after many retries in new snapshots under
 * READ COMMITTED, at once under REPEATABLE READ): one INSERT ... ON
 * CONFLICT DO UPDATE of the whole batch, in key order, so it neither trusts
 * a classification nor deadlocks against another session doing the same.
 * It locks the conflicting rows and evaluates defaults for every row it
 * offers, which is the price of the race, not of the common case.  It reads
 * the source in the call's current snapshot (a query or JSON source is
 * evaluated again) and counts what it needs itself: the rows, those left
 * after duplicates are folded, and the stale ones, as the table was before
 * it wrote.
 */

char *
pgi_upsert_build_safe(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "WITH s AS MATERIALIZED (%s)", plan->sel);
	if (plan->keep_last && !plan->unique)
		append_newest_per_key(&q, plan);
	else
		appendStringInfoString(&q, ", e AS (SELECT * FROM s)");
	appendStringInfoString(&q, ", w AS (");
	pgi_append_insert_into(&q, plan->target->qualname, "t", &plan->cols, "e");
	appendStringInfoString(&q, " FROM e ORDER BY ");
	append_key_list(&q, plan, "e");
	appendStringInfoString(&q, " ON CONFLICT (");
	append_key_list(&q, plan, NULL);
	appendStringInfoString(&q, ") DO UPDATE SET ");
	append_set_list(&q, plan, "excluded");
	appendStringInfoString(&q, " WHERE ");
	append_changed(&q, plan, "t", "excluded");

	/*
	 * A row ON CONFLICT updated carries our transaction as its xmax; a row it
	 * inserted has none.  A partitioned table cannot return a system column
	 * from ON CONFLICT's update: there, a row whose key the statement's
	 * snapshot holds was updated (in READ COMMITTED a key another session
	 * committed after that snapshot counts as inserted; REPEATABLE READ gets
	 * 40001 for it instead).
	 */
	if (plan->target->relkind == RELKIND_RELATION)
		appendStringInfoString(&q, " RETURNING t.xmax OPERATOR(pg_catalog.<>) '0'::pg_catalog.xid AS x) ");
	else
	{
		appendStringInfo(&q, " RETURNING EXISTS (SELECT FROM %s t0 WHERE ",
						 plan->target->qualname);
		pgi_append_key_match(&q, "t0", "t", &plan->cols, plan->key);
		appendStringInfoString(&q, ") AS x) ");
	}
	appendStringInfoString(&q, "SELECT (SELECT pg_catalog.count(*) FROM s), "
						   "(SELECT pg_catalog.count(*) FROM e), ");
	if (plan->version >= 0)
	{
		appendStringInfo(&q, "(SELECT pg_catalog.count(*) FROM e JOIN %s t ON ",
						 plan->target->qualname);
		pgi_append_key_match(&q, "e", "t", &plan->cols, plan->key);
		appendStringInfoString(&q, " WHERE ");
		append_version_compare(&q, plan, "e", BTLessStrategyNumber, "t");
		appendStringInfoString(&q, "), ");
	}
	else
		appendStringInfoString(&q, "0::pg_catalog.int8, ");
	appendStringInfoString(&q, "pg_catalog.count(*) FILTER (WHERE NOT w.x), "
						   "pg_catalog.count(*) FILTER (WHERE w.x) FROM w");
	return q.data;
}

/*
 * A one-row source's row, once the probe (upsert_probe.c) found it changed
 * or new: $1 is the row, as a value of the target's row type holding the
 * source's columns.  The update names the row the probe found ($2, its
 * ctid) and matches the key and the change again, so a row another session
 * changed or deleted since the call's snapshot is not written (0 rows: the
 * call then decides in a new snapshot).  The insert does nothing on a key
 * another session inserted meanwhile (0 rows, likewise).  One row needs no
 * order to take its one lock in.
 */
char *
pgi_upsert_build_one_update(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "UPDATE %s t SET ", plan->target->qualname);
	append_set_list(&q, plan, "v");
	appendStringInfoString(&q, " FROM (SELECT ($1).*) v WHERE ");
	pgi_append_tid_match(&q, "t", "$2");
	appendStringInfoString(&q, " AND ");
	pgi_append_key_match(&q, "t", "v", &plan->cols, plan->key);
	appendStringInfoString(&q, " AND ");
	append_changed(&q, plan, "t", "v");
	return q.data;
}

char *
pgi_upsert_build_one_insert(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "v");
	appendStringInfoString(&q, " FROM (SELECT ($1).*) v ON CONFLICT (");
	append_key_list(&q, plan, NULL);
	appendStringInfoString(&q, ") DO NOTHING");
	return q.data;
}
