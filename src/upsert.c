/*-------------------------------------------------------------------------
 *
 * upsert.c
 *	  idempotent_upsert, idempotent_upsert_query, idempotent_upsert_json:
 *	  merge a source into a table so that a re-run changes nothing.
 *
 * The work is split so that a replay only reads:
 *
 *	1. check the source: one aggregate over it counts its rows, null keys,
 *	   null versions and distinct keys (the duplicated keys themselves are
 *	   only looked for when there are some);
 *	2. classify: one aggregate over source LEFT JOIN target counts the rows
 *	   that are new, changed (by binary image, or by a greater version),
 *	   stale and unchanged.  Nothing is locked;
 *	3. write, only if step 2 found something to write: an UPDATE of the
 *	   changed rows, then an INSERT of the new ones.
 *
 * Step 3 runs in an internal subtransaction.  Its first attempt inserts the
 * new rows with a plain INSERT, which costs about half of INSERT ... ON
 * CONFLICT; if another session inserted one of the same keys since step 2
 * (unique violation) or the two deadlock, the classification is stale: the
 * subtransaction is rolled back and the whole batch is written again with
 * one INSERT ... ON CONFLICT DO UPDATE in key order, which decides every row
 * against the current table.  The caller sees an upsert, never a
 * duplicate-key error.  Sessions that write in key order cannot deadlock
 * against each other; the retries only cover sessions still on their first
 * attempt.
 *
 * A first load into an empty table skips steps 1 and 2: it tries one plain
 * INSERT of the whole source in a subtransaction, and only if the key's
 * unique index or NOT NULL constraint objects does it roll back and take
 * the steps above, which then say what was wrong with the source.
 *
 * Every statement is set-based and streamed by the executor: no source or
 * target row is ever held in this backend's memory, and counts come back as
 * one aggregate row or as SPI_processed.  The executor checks for cancel and
 * statement_timeout as it streams; between the steps, progress.c reports
 * what was done (pg_idempotent.progress_interval) and checks them too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "access/relation.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"
#include "storage/bufmgr.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_idempotent_upsert);
PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_query);
PG_FUNCTION_INFO_V1(pgi_idempotent_upsert_json);

/* Write attempts before a repeated deadlock is reported to the caller. */
#define UPSERT_MAX_ATTEMPTS 5

/* Where the rows come from: a FROM item aliased s0, and its columns. */
typedef struct UpsertSource
{
	StringInfoData from;
	const char *name;			/* for messages */
	PgiColumnList columns;
	PgiParams	params;
	Oid			relid;			/* a relation source; invalid for a query or
								 * JSON */
	double		rows;			/* its size, if known before it is read; else
								 * -1 */

	/*
	 * what identifies the source in a call shape (callcache.c); NULL: not
	 * kept
	 */
	StringInfo	shape;
	/* on a shape's first call: fill in from and columns (a JSON source) */
	void		(*describe) (struct UpsertSource *source, PgiRelation *target);
	char	  **keys;			/* a JSON source's keys, for describe */
	int			nkeys;
} UpsertSource;

/*
 * What a call derives from the catalogs, kept per backend for the next call
 * of the same shape (callcache.c): the columns, key and version, and the
 * statements' text, each built the first time a call of the shape needs it.
 */
typedef enum UpsertStatement
{
	US_MERGE,
	US_EMPTY,
	US_FIRST_LOAD,
	US_SAFE,
	US_NSTATEMENTS
} UpsertStatement;

typedef struct UpsertShape
{
	PgiColumnList cols;
	List	   *key;
	List	   *upd;
	List	   *set;
	int			version;
	char	   *sel;
	char	   *sql[US_NSTATEMENTS];
} UpsertShape;

typedef struct UpsertPlan
{
	PgiRelation *target;
	UpsertSource *source;
	PgiColumnList cols;			/* target columns the source supplies */
	List	   *key;			/* positions in cols */
	List	   *upd;			/* positions in cols compared: all */
	List	   *set;			/* positions in cols set: all but an
								 * image-equal key */
	int			version;		/* position in cols, or -1 */
	bool		keep_last;		/* on_duplicate => 'last' */
	bool		dry_run;
	char	   *sel;			/* SELECT of cols, in target types */
	bool		materialize;	/* evaluate the source once: a query or JSON */
	bool		probe;			/* batch small against the table: index probes */
	Oid			relids[2];		/* target and source, whose invalidation
								 * forgets plans */
	PgiCallShape *shape;		/* the call's shape, when it is kept; else
								 * NULL */
	Snapshot	snapshot;		/* the one moment the call reads its inputs as
								 * of */
	PgiProgress progress;
} UpsertPlan;

typedef struct UpsertCounts
{
	int64		inserted;
	int64		updated;
	int64		unchanged;
	int64		stale;
	int64		duplicates;
} UpsertCounts;

/*
 * Match the source's columns to the target's (the shared layer refuses what
 * could not be written) and keep the SELECT that yields them in the
 * target's types, so every later comparison is between values of one type.
 */
static void
plan_columns(UpsertPlan *plan)
{
	plan->cols = pgi_match_source_columns(plan->target, &plan->source->columns,
										  plan->source->name,
										  plan->source->from.data, &plan->sel);
}

static void
plan_key_and_version(UpsertPlan *plan, ArrayType *key, const char *version)
{
	List	   *tkey;
	ListCell   *lc;
	int			i;

	tkey = pgi_find_key(plan->target, &plan->source->columns, key,
						plan->source->name);
	plan->key = NIL;
	foreach(lc, tkey)
	{
		const char *name = plan->target->columns.cols[lfirst_int(lc)].name;
		int			pos = pgi_column_index(&plan->cols, name);

		Assert(pos >= 0);
		/* an unusable key type fails here, before anything runs */
		pgi_type_operator(plan->cols.cols[pos].typid, BTEqualStrategyNumber, name);
		plan->key = lappend_int(plan->key, pos);
	}

	/*
	 * A matched row is compared in every source column, the key's included:
	 * key values equal under the index's operator can still differ in image
	 * (1.5 and 1.500, 'A' and 'a' under a case-insensitive collation), and
	 * the table must end holding exactly what the source says.  Such a key is
	 * overwritten too.  A key whose equal values are identical images
	 * (integers, dates, text under a deterministic collation) is not SET: it
	 * cannot change, and an UPDATE that names an indexed column tells the
	 * index to expect a new key, which costs page splits where a row that
	 * keeps its key would not.
	 */
	plan->upd = NIL;
	plan->set = NIL;
	{
		bool		key_is_image = true;

		foreach(lc, plan->key)
		{
			PgiColumn  *col = &plan->cols.cols[lfirst_int(lc)];

			if (!pgi_type_equal_is_image(col->typid, col->collid))
				key_is_image = false;
		}
		for (i = 0; i < plan->cols.ncols; i++)
		{
			plan->upd = lappend_int(plan->upd, i);
			if (!key_is_image || !list_member_int(plan->key, i))
				plan->set = lappend_int(plan->set, i);
		}

		/*
		 * a source of key columns alone never changes a row; SET must name
		 * one
		 */
		if (plan->set == NIL)
			plan->set = list_copy(plan->upd);
	}

	plan->version = -1;
	if (version != NULL)
	{
		if (pgi_column_index(&plan->target->columns, version) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("version column \"%s\" does not exist in \"%s\"",
							version, plan->target->displayname)));
		plan->version = pgi_column_index(&plan->cols, version);
		if (plan->version < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("version column \"%s\" does not exist in source \"%s\"",
							version, plan->source->name)));
		if (list_member_int(plan->key, plan->version))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version column \"%s\" is part of the key", version),
					 errdetail("A row's version must be able to change while its key stays the same.")));
		pgi_type_operator(plan->cols.cols[plan->version].typid,
						  BTGreaterStrategyNumber, version);
	}
}

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
		pgi_append_image_differs(buf, t, s, &plan->cols, plan->upd, true);
}

/* key columns as "s.k1, s.k2" */
static void
append_key_list(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_column_list(buf, alias, &plan->cols, plan->key);
}

/* the key as one sortable value: the column itself, or ROW(k1, k2, ...) */
static void
append_key_row(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_row_value(buf, alias, &plan->cols, plan->key);
}

/* ROW(alias.k1, ...)::text, the key as a message shows it */
static void
append_key_text(StringInfo buf, UpsertPlan *plan, const char *alias)
{
	pgi_append_row_text(buf, alias, &plan->cols, plan->key);
}

static char *
key_names(UpsertPlan *plan)
{
	return pgi_column_names(&plan->cols, plan->key);
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
 * The one statement of a call, in the common case:
 *
 *	s	the source in the target's types; MATERIALIZED for a query or JSON
 *		source, so it is evaluated once, while a relation is simply read
 *		again (in the same snapshot, so the same rows);
 *	c	the checks: one aggregate over s counting rows, null keys, null
 *		versions and distinct keys;
 *	d	the duplicated keys, and tie the key whose newest rows differ:
 *		only read when c found duplicates (a CTE runs when first read);
 *	e	with on_duplicate => 'last', the newest row of each key;
 *	j	the rows to write (1 new, 2 changed) and the stale ones (3), from e
 *		LEFT JOIN the target; read only if the checks passed, so that
 *		nothing is written otherwise.  Unchanged rows are dropped here, so
 *		an identical replay keeps no row and writes nothing;
 *	u	UPDATE of the changed rows, rechecking that they still differ;
 *	i	plain INSERT of the new rows;
 *
 * and one row of counts, with what the error messages need when the
 * checks failed.  Every part reads the statement's one snapshot.
 */
/*
 * Whether a plain INSERT into the target can insert fewer rows than it is
 * given without an error: only a BEFORE ROW trigger that returns NULL can
 * (a partition may have one of its own).  Otherwise the rows classified new
 * are the rows inserted, and the INSERT need not count them.
 */
static bool
insert_may_skip_rows(UpsertPlan *plan)
{
	Relation	rel;
	bool		skip;

	if (plan->target->relkind != RELKIND_RELATION)
		return true;
	rel = relation_open(plan->target->relid, NoLock);
	skip = rel->trigdesc != NULL && rel->trigdesc->trig_insert_before_row;
	relation_close(rel, NoLock);
	return skip;
}

typedef enum MergeResult
{
	MR_ROWS = 1,
	MR_NULL_KEYS,
	MR_NULL_VERSIONS,
	MR_KEYED,
	MR_DISTINCT,
	MR_NEW,
	MR_CHANGED,
	MR_STALE,
	MR_UPDATED,
	MR_INSERTED,
	MR_DUP_KEYS,
	MR_DUP_EXAMPLE,
	MR_TIE_EXAMPLE
} MergeResult;

static char *
build_merge(UpsertPlan *plan)
{
	StringInfoData q;
	const char *cls = j_column_name(plan, "pgi_class");

	/*
	 * A plain table's matched row is updated where j found it; reading its
	 * ctid takes SELECT on the whole table, not only on some columns.
	 */
	const char *tid = (plan->target->relkind == RELKIND_RELATION &&
					   pg_class_aclcheck(plan->target->relid, GetUserId(),
										 ACL_SELECT) == ACLCHECK_OK) ?
		j_column_name(plan, "pgi_tid") : NULL;
	const char *ok_dups;
	bool		count_inserts = insert_may_skip_rows(plan);
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
	appendStringInfoString(&q, " AS nv, pg_catalog.count(*) FILTER (WHERE NOT ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nn, pg_catalog.count(DISTINCT ");
	append_key_row(&q, plan, "s");
	appendStringInfoString(&q, ") FILTER (WHERE NOT ");
	pgi_append_any_null(&q, "s", &plan->cols, plan->key);
	appendStringInfoString(&q, ") AS nd FROM s)");

	if (!plan->keep_last)
	{
		appendStringInfoString(&q, ", d AS (SELECT pg_catalog.count(*) AS n, pg_catalog.min(");
		append_key_text(&q, plan, "g");
		appendStringInfoString(&q, ") AS ex FROM (SELECT ");
		append_key_list(&q, plan, "s");
		appendStringInfoString(&q, " FROM s GROUP BY ");
		append_key_list(&q, plan, "s");
		appendStringInfoString(&q, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) g)");
		ok_dups = "c.nd OPERATOR(pg_catalog.=) c.nn";
	}
	else
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
					 plan->keep_last ? "e" : "s e", plan->target->qualname);
	pgi_append_key_match(&q, "e", "t", &plan->cols, plan->key);
	/* OFFSET 0: the CASE is computed once, not again in the filter */
	appendStringInfo(&q, " WHERE (SELECT c.nk OPERATOR(pg_catalog.=) 0 AND c.nv OPERATOR(pg_catalog.=) 0 "
					 "AND %s FROM c) OFFSET 0) x WHERE x.%s OPERATOR(pg_catalog.<>) 0)",
					 ok_dups, quote_identifier(cls));

	if (!plan->dry_run)
	{
		appendStringInfo(&q, ", u AS (UPDATE %s t SET ", plan->target->qualname);
		append_set_list(&q, plan, "j");
		appendStringInfo(&q, " FROM j WHERE j.%s OPERATOR(pg_catalog.=) 2 AND ",
						 quote_identifier(cls));

		/*
		 * The row j found, by its ctid: no second probe of the key's index.
		 * The key is matched too: a row updated concurrently is rechecked in
		 * its new version by the key and the change, as before (a TID scan
		 * does not recheck the ctid), and one deleted is skipped, which the
		 * count of updated rows shows.
		 */
		if (tid != NULL)
			appendStringInfo(&q, "t.ctid OPERATOR(pg_catalog.=) j.%s AND ",
							 quote_identifier(tid));
		pgi_append_key_match(&q, "t", "j", &plan->cols, plan->key);
		appendStringInfoString(&q, " AND ");
		append_changed(&q, plan, "t", "j");
		appendStringInfoString(&q, " RETURNING 1), i AS (");
		pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "j");
		appendStringInfo(&q, " FROM j WHERE j.%s OPERATOR(pg_catalog.=) 1%s)",
						 quote_identifier(cls), count_inserts ? " RETURNING 1" : "");
	}

	/*
	 * i runs to completion unread; unless a trigger can skip rows, it inserts
	 * every row it is given or fails, so k.n1 counts it, and its rows need
	 * not go through RETURNING into a tuplestore.
	 */
	appendStringInfo(&q, " SELECT c.n, c.nk, c.nv, c.nn, c.nd, k.n1, k.n2, k.n3, %s, %s, ",
					 plan->dry_run ? "0::pg_catalog.int8" : "(SELECT pg_catalog.count(*) FROM u)",
					 plan->dry_run ? "0::pg_catalog.int8" :
					 count_inserts ? "(SELECT pg_catalog.count(*) FROM i)" : "k.n1");
	if (!plan->keep_last)
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
 * A statement of the call: its text as the call's shape keeps it, built
 * (and kept) by build the first time a call of the shape needs it.
 */
static const char *
plan_statement(UpsertPlan *plan, UpsertStatement which,
			   char *(*build) (UpsertPlan *plan))
{
	UpsertShape *kept;
	char	   *sql;

	kept = plan->shape ? pgi_call_cache_data(plan->shape) : NULL;
	if (kept != NULL && kept->sql[which] != NULL)
		return kept->sql[which];
	sql = build(plan);
	if (kept != NULL)
		kept->sql[which] = MemoryContextStrdup(pgi_call_cache_context(plan->shape),
											   sql);
	return sql;
}

/* The call's statement settings (sqlbuild.c), undone when it returns. */
static int
begin_settings(UpsertPlan *plan)
{
	return pgi_begin_settings(plan->probe);
}

/* Run one of the call's statements, in the call's snapshot. */
static void
upsert_exec(UpsertPlan *plan, const char *sql, bool read_only, int expected)
{
	pgi_spi_run_cached(sql, &plan->source->params, plan->relids,
					   CURSOR_OPT_GENERIC_PLAN, plan->snapshot, read_only,
					   expected);
}

static char *
build_empty(UpsertPlan *plan)
{
	return psprintf("SELECT 1 FROM %s LIMIT 1", plan->target->qualname);
}

static bool
target_is_empty(UpsertPlan *plan)
{
	const char *q;

	/* a table without a block has no row in any snapshot */
	if (plan->target->relkind == RELKIND_RELATION)
	{
		Relation	rel = relation_open(plan->target->relid, NoLock);
		BlockNumber blocks = RelationGetNumberOfBlocks(rel);

		relation_close(rel, NoLock);
		if (blocks == 0)
			return true;
	}
	q = plan_statement(plan, US_EMPTY, build_empty);
	pgi_spi_run_cached(q, NULL, plan->relids, CURSOR_OPT_GENERIC_PLAN,
					   plan->snapshot, true, SPI_OK_SELECT);
	return SPI_processed == 0;
}

/*
 * The first load's insert: a plain INSERT of the whole source into the
 * empty table, so defaults are evaluated for those rows alone and no
 * speculative insertion is paid for.
 */
static char *
build_first_load(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	pgi_append_insert_into(&q, plan->target->qualname, NULL, &plan->cols, "s");
	appendStringInfo(&q, " FROM (%s) s", plan->sel);
	return q.data;
}

static int64
write_all_new(UpsertPlan *plan)
{
	upsert_exec(plan, plan_statement(plan, US_FIRST_LOAD, build_first_load),
				false, SPI_OK_INSERT);
	return (int64) SPI_processed;
}

/*
 * The safe path, taken when another session wrote some of the same keys
 * since the call's snapshot: one INSERT ... ON CONFLICT DO UPDATE of the
 * whole batch, in key order, so it neither trusts the classification nor
 * deadlocks against another session doing the same.  It locks the
 * conflicting rows and evaluates defaults for every row it offers, which
 * is the price of the race, not of the common case.  It reads the source
 * in the call's snapshot (so the same rows; a query or JSON source is
 * evaluated again, this once) and counts what it needs itself: the rows,
 * those left after duplicates are folded, and the stale ones, as the
 * table was before it wrote.
 */
typedef enum SafeResult
{
	SR_ROWS = 1,
	SR_EFFECTIVE,
	SR_STALE,
	SR_INSERTED,
	SR_UPDATED
} SafeResult;

static char *
build_safe(UpsertPlan *plan)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "WITH s AS MATERIALIZED (%s)", plan->sel);
	if (plan->keep_last)
	{
		append_newest_per_key(&q, plan);
	}
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
	 * inserted has none.
	 */
	appendStringInfoString(&q, " RETURNING t.xmax AS x) "
						   "SELECT (SELECT pg_catalog.count(*) FROM s), "
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
	appendStringInfoString(&q, "pg_catalog.count(*) FILTER (WHERE w.x OPERATOR(pg_catalog.=) '0'::pg_catalog.xid), "
						   "pg_catalog.count(*) FILTER (WHERE w.x OPERATOR(pg_catalog.<>) '0'::pg_catalog.xid) FROM w");
	return q.data;
}

static void
write_all_rows_safely(UpsertPlan *plan, UpsertCounts *counts)
{
	upsert_exec(plan, plan_statement(plan, US_SAFE, build_safe), false,
				SPI_OK_SELECT);
	counts->duplicates = pgi_spi_int8(0, SR_ROWS) - pgi_spi_int8(0, SR_EFFECTIVE);
	counts->stale = pgi_spi_int8(0, SR_STALE);
	counts->inserted = pgi_spi_int8(0, SR_INSERTED);
	counts->updated = pgi_spi_int8(0, SR_UPDATED);
	counts->unchanged = Max(pgi_spi_int8(0, SR_EFFECTIVE) - counts->inserted -
							counts->updated - counts->stale, 0);
}

/* What one attempt at writing needs, passed through pgi_run_in_subxact. */
typedef struct UpsertWrite
{
	UpsertPlan *plan;
	bool		safe;
	const char *merge;			/* the one statement */
	/* what the one statement found and did */
	int64		rows;
	int64		null_keys;
	int64		null_versions;
	int64		keyed;
	int64		distinct;
	int64		new_rows;
	int64		changed;
	int64		stale;
	int64		updated;
	int64		inserted;
	int64		dup_keys;
	char	   *dup_example;
	char	   *tie_example;
	UpsertCounts safe_counts;
} UpsertWrite;

static char *
result_text(int col)
{
	char	   *v = pgi_spi_text(0, col);

	return v;
}

static void
merge_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	if (w->safe)
	{
		write_all_rows_safely(w->plan, &w->safe_counts);
		return;
	}
	upsert_exec(w->plan, w->merge, w->plan->dry_run, SPI_OK_SELECT);
	w->rows = pgi_spi_int8(0, MR_ROWS);
	w->null_keys = pgi_spi_int8(0, MR_NULL_KEYS);
	w->null_versions = pgi_spi_int8(0, MR_NULL_VERSIONS);
	w->keyed = pgi_spi_int8(0, MR_KEYED);
	w->distinct = pgi_spi_int8(0, MR_DISTINCT);
	w->new_rows = pgi_spi_int8(0, MR_NEW);
	w->changed = pgi_spi_int8(0, MR_CHANGED);
	w->stale = pgi_spi_int8(0, MR_STALE);
	w->updated = pgi_spi_int8(0, MR_UPDATED);
	w->inserted = pgi_spi_int8(0, MR_INSERTED);
	w->dup_keys = pgi_spi_int8(0, MR_DUP_KEYS);
	w->dup_example = result_text(MR_DUP_EXAMPLE);
	w->tie_example = result_text(MR_TIE_EXAMPLE);
}

/*
 * The progress reports of a write attempt that rolled back, by what made
 * it roll back: the error it caught is gone by then, and its code is all a
 * reader needs.  Called for pgi_progress_step's message.
 */
static int
errmsg_attempt_rolled_back(PgiProgress *progress, int attempt, int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNIQUE_VIOLATION:
			return errmsg("%s on %s: write attempt %d rolled back after a unique violation; writing the batch again with INSERT ... ON CONFLICT in key order",
						  PGI_PROGRESS_OF(progress), attempt);
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return errmsg("%s on %s: write attempt %d rolled back after a deadlock; writing the batch again with INSERT ... ON CONFLICT in key order",
						  PGI_PROGRESS_OF(progress), attempt);
	}
	return errmsg("%s on %s: write attempt %d rolled back after error %s; writing the batch again with INSERT ... ON CONFLICT in key order",
				  PGI_PROGRESS_OF(progress), attempt,
				  unpack_sql_state(sqlerrcode));
}

static int
errmsg_first_load_rolled_back(PgiProgress *progress, int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNIQUE_VIOLATION:
			return errmsg("%s on %s: first load into the empty table rolled back after a unique violation; checking the source",
						  PGI_PROGRESS_OF(progress));
		case ERRCODE_NOT_NULL_VIOLATION:
			return errmsg("%s on %s: first load into the empty table rolled back after a not-null violation; checking the source",
						  PGI_PROGRESS_OF(progress));
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return errmsg("%s on %s: first load into the empty table rolled back after a deadlock; checking the source",
						  PGI_PROGRESS_OF(progress));
	}
	return errmsg("%s on %s: first load into the empty table rolled back after error %s; checking the source",
				  PGI_PROGRESS_OF(progress), unpack_sql_state(sqlerrcode));
}

/* The errors the checks found, as the contract words them. */
static void
report_check_errors(UpsertPlan *plan, UpsertWrite *w)
{
	int64		dup_rows = w->keyed - w->distinct;

	if (w->null_keys > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null key values", plan->source->name),
				 errdetail_plural("%lld of its rows has a null in key column(s) (%s).",
								  "%lld of its rows have a null in key column(s) (%s).",
								  w->null_keys,
								  (long long) w->null_keys, key_names(plan)),
				 errhint("Filter out or fix those rows: a null key matches no row.")));
	if (w->null_versions > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("source \"%s\" has null values in version column \"%s\"",
						plan->source->name,
						plan->cols.cols[plan->version].name),
				 errdetail_plural("%lld of its rows has no version.",
								  "%lld of its rows have no version.",
								  w->null_versions,
								  (long long) w->null_versions)));
	if (dup_rows > 0 && !plan->keep_last)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys", plan->source->name),
				 errdetail_plural("Key (%s)=%s appears more than once; %lld key is duplicated, %lld rows in all.",
								  "Key (%s)=%s appears more than once; %lld keys are duplicated, %lld rows in all.",
								  w->dup_keys,
								  key_names(plan), w->dup_example, (long long) w->dup_keys,
								  (long long) (dup_rows + w->dup_keys)),
				 errhint("Remove the duplicates, or pass on_duplicate => 'last' with a version_column to keep the newest row of each key.")));
	if (dup_rows > 0 && w->tie_example != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("source \"%s\" has duplicate keys with no single newest row",
						plan->source->name),
				 plan->version >= 0 ?
				 errdetail("Key (%s)=%s has different rows with the same greatest version.",
						   key_names(plan), w->tie_example) :
				 errdetail("Key (%s)=%s has different rows and there is no version column to choose between them.",
						   key_names(plan), w->tie_example),
				 errhint("Make the rows of each key differ in \"version_column\", or remove the duplicates.")));
}

/*
 * The general path: the one statement, in a subtransaction when it
 * writes.  If another session inserted one of the same keys since the
 * call's snapshot (unique violation), or the two deadlock, the statement is
 * rolled back and the batch written again with INSERT ... ON CONFLICT in
 * key order, for as long as sessions still on their first attempt deadlock
 * against us; the last attempt runs without catching anything, so its
 * error, if any, is the caller's.
 */
static void
upsert_general(UpsertPlan *plan, UpsertCounts *counts)
{
	static const int fast_codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int safe_codes[] = {ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	static const int no_codes[] = {0};
	UpsertWrite w;
	int64		total;
	int			attempt;

	memset(&w, 0, sizeof(w));
	w.plan = plan;
	w.merge = plan_statement(plan, US_MERGE, build_merge);

	if (plan->dry_run)
		merge_once(&w);
	else
	{
		for (attempt = 1;; attempt++)
		{
			int			caught;

			w.safe = attempt > 1;
			caught = pgi_run_in_subxact(merge_once, &w,
										attempt == UPSERT_MAX_ATTEMPTS ? no_codes :
										w.safe ? safe_codes : fast_codes);
			if (caught == 0)
				break;
			/* also where a cancel between attempts is taken */
			pgi_progress_step(&plan->progress,
							  errmsg_attempt_rolled_back(&plan->progress, attempt,
														 caught));
		}
		if (w.safe)
		{
			*counts = w.safe_counts;
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld and updated %lld row with INSERT ... ON CONFLICT",
											"%s on %s: inserted %lld and updated %lld rows with INSERT ... ON CONFLICT",
											counts->updated, PGI_PROGRESS_OF(&plan->progress),
											(long long) counts->inserted,
											(long long) counts->updated));
			return;
		}
	}

	report_check_errors(plan, &w);
	counts->duplicates = w.keyed - w.distinct;
	total = w.rows - counts->duplicates;
	pgi_progress_step(&plan->progress,
					  errmsg_plural("%s on %s: checked the source: %lld row, duplicates: %lld",
									"%s on %s: checked the source: %lld rows, duplicates: %lld",
									w.rows, PGI_PROGRESS_OF(&plan->progress),
									(long long) w.rows,
									(long long) counts->duplicates));
	if (plan->dry_run)
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld new, %lld changed, %lld stale, %lld unchanged (dry run: nothing written)",
										"%s on %s: classified %lld rows: %lld new, %lld changed, %lld stale, %lld unchanged (dry run: nothing written)",
										total, PGI_PROGRESS_OF(&plan->progress),
										(long long) total, (long long) w.new_rows,
										(long long) w.changed, (long long) w.stale,
										(long long) (total - w.new_rows - w.changed - w.stale)));
	else
		pgi_progress_step(&plan->progress,
						  errmsg_plural("%s on %s: classified %lld row: %lld new, %lld changed, %lld stale, %lld unchanged",
										"%s on %s: classified %lld rows: %lld new, %lld changed, %lld stale, %lld unchanged",
										total, PGI_PROGRESS_OF(&plan->progress),
										(long long) total, (long long) w.new_rows,
										(long long) w.changed, (long long) w.stale,
										(long long) (total - w.new_rows - w.changed - w.stale)));
	counts->stale = w.stale;
	if (plan->dry_run)
	{
		counts->inserted = w.new_rows;
		counts->updated = w.changed;
	}
	else
	{
		if (w.changed > 0)
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: updated %lld row",
											"%s on %s: updated %lld rows",
											w.updated, PGI_PROGRESS_OF(&plan->progress),
											(long long) w.updated));
		if (w.new_rows > 0)
			pgi_progress_step(&plan->progress,
							  errmsg_plural("%s on %s: inserted %lld row",
											"%s on %s: inserted %lld rows",
											w.inserted, PGI_PROGRESS_OF(&plan->progress),
											(long long) w.inserted));
		counts->inserted = w.inserted;
		counts->updated = w.updated;

		/*
		 * The UPDATE found fewer rows than the classification counted as
		 * changed: a concurrent writer got there between, and one of its
		 * changes may have taken a row out from under our UPDATE (deleted and
		 * re-inserted it, as a replace does), which READ COMMITTED skips
		 * without a word.  One pass of the safe path decides every row again
		 * against the committed table; rows already written are identical by
		 * now and left alone.
		 */
		if (w.updated < w.changed)
		{
			pgi_progress_step(&plan->progress,
							  errmsg("%s on %s: updated %lld of the %lld changed rows; deciding the batch again with INSERT ... ON CONFLICT",
									 PGI_PROGRESS_OF(&plan->progress),
									 (long long) w.updated, (long long) w.changed));
			w.safe = true;
			(void) pgi_run_in_subxact(merge_once, &w, no_codes);
			counts->inserted += w.safe_counts.inserted;
			counts->updated += w.safe_counts.updated;
		}
	}
	counts->unchanged = Max(total - counts->inserted - counts->updated - counts->stale, 0);
}

static void
first_load_once(void *arg)
{
	UpsertWrite *w = (UpsertWrite *) arg;

	w->inserted = write_all_new(w->plan);
}

/*
 * A first load into an empty table, optimistically: one plain INSERT of the
 * whole source, letting the key's unique index and NOT NULL constraints find
 * what the checks would look for.  If the source turns out to have
 * duplicate or null keys, or another session is loading the same keys, the
 * insert is rolled back and the caller takes the general path, which reports
 * or resolves them.  Only used where the index is sure to catch both: the
 * key columns are NOT NULL and no version column needs checking; and not
 * with on_duplicate => 'last', whose batches are expected to have
 * duplicates (a query or JSON source would be evaluated twice).
 */
static bool
try_first_load(UpsertPlan *plan, int64 *inserted)
{
	static const int codes[] = {ERRCODE_UNIQUE_VIOLATION,
	ERRCODE_NOT_NULL_VIOLATION, ERRCODE_T_R_DEADLOCK_DETECTED, 0};
	UpsertWrite w;
	ListCell   *lc;
	int			caught;

	if (plan->dry_run || plan->version >= 0 || plan->keep_last)
		return false;
	/* a batch small against the table is not loading it: no probe of it */
	if (plan->probe)
		return false;
	foreach(lc, plan->key)
	{
		if (!plan->cols.cols[lfirst_int(lc)].notnull)
			return false;
	}
	if (!target_is_empty(plan))
		return false;

	memset(&w, 0, sizeof(w));
	w.plan = plan;
	caught = pgi_run_in_subxact(first_load_once, &w, codes);
	if (caught != 0)
	{
		pgi_progress_step(&plan->progress,
						  errmsg_first_load_rolled_back(&plan->progress, caught));
		return false;
	}
	*inserted = w.inserted;
	pgi_progress_step(&plan->progress,
					  errmsg_plural("%s on %s: inserted %lld row into the empty table (first load)",
									"%s on %s: inserted %lld rows into the empty table (first load)",
									w.inserted, PGI_PROGRESS_OF(&plan->progress),
									(long long) w.inserted));
	return true;
}

static void upsert_shaped(UpsertPlan *plan, UpsertCounts *counts,
						  ArrayType *key, const char *version);

static void
upsert_run(FunctionCallInfo fcinfo, PgiRelation *target, UpsertSource *source)
{
	UpsertPlan	plan;
	UpsertCounts counts;
	ArrayType  *key = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	char	   *version = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *on_duplicate;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	pgi_require_arg(fcinfo, 4, "on_duplicate");
	pgi_require_arg(fcinfo, 5, "dry_run");
	on_duplicate = text_to_cstring(PG_GETARG_TEXT_PP(4));

	memset(&plan, 0, sizeof(plan));
	memset(&counts, 0, sizeof(counts));
	plan.target = target;
	plan.source = source;
	plan.dry_run = PG_GETARG_BOOL(5);
	plan.relids[0] = target->relid;
	plan.relids[1] = source->relid;
	plan.materialize = !OidIsValid(source->relid);
	pgi_progress_begin(&plan.progress, get_func_name(fcinfo->flinfo->fn_oid),
					   target->displayname);
	if (strcmp(on_duplicate, "error") == 0)
		plan.keep_last = false;
	else if (strcmp(on_duplicate, "last") == 0)
		plan.keep_last = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for on_duplicate: \"%s\"", on_duplicate),
				 errhint("Valid values are \"error\" and \"last\".")));

	/*
	 * A batch under a quarter of the table probes the key's index per row. A
	 * query's size is not known before it runs: the planner decides.
	 */
	if (source->rows >= 0)
	{
		double		target_rows = pgi_relation_rows(target->relid);

		plan.probe = target_rows >= 0 && source->rows * 4 < target_rows;
	}

	/*
	 * What the catalogs say about this shape of call, derived once per
	 * backend and kept (callcache.c); the relations are locked by now, so
	 * what is kept is current.
	 */
	if (source->shape != NULL)
	{
		StringInfo	k = source->shape;

		appendBinaryStringInfo(k, (char *) &fcinfo->flinfo->fn_oid, sizeof(Oid));
		appendBinaryStringInfo(k, (char *) &plan.relids, sizeof(plan.relids));
		appendStringInfo(k, "|%d%d%d|", plan.dry_run, plan.keep_last, plan.probe);
		if (key != NULL)
			appendBinaryStringInfo(k, (char *) key, VARSIZE(key));
		appendStringInfo(k, "|%s", version ? version : "");
		appendBinaryStringInfo(k, "", 1);	/* a version name can be "" */
		appendStringInfoChar(k, version ? 'v' : '-');
		plan.shape = pgi_call_cache_get(k->data, k->len, plan.relids);
	}
	PG_TRY();
	{
		upsert_shaped(&plan, &counts, key, version);
	}
	PG_FINALLY();
	{
		if (plan.shape != NULL)
			pgi_call_cache_release(plan.shape);
	}
	PG_END_TRY();

	values[0] = Int64GetDatum(counts.inserted);
	values[1] = Int64GetDatum(counts.updated);
	values[2] = Int64GetDatum(counts.unchanged);
	values[3] = Int64GetDatum(counts.stale);
	values[4] = Int64GetDatum(counts.duplicates);
	pgi_return_row(fcinfo, values, nulls);
}

/*
 * The call, once its shape is known: columns, key and version from the
 * kept shape or, on its first call, from the catalogs (and kept), then the
 * statements.
 */
static void
upsert_shaped(UpsertPlan *plan, UpsertCounts *counts, ArrayType *key,
			  const char *version)
{
	UpsertShape *kept = plan->shape ? pgi_call_cache_data(plan->shape) : NULL;
	int			nest;

	if (kept != NULL)
	{
		plan->cols = kept->cols;
		plan->key = kept->key;
		plan->upd = kept->upd;
		plan->set = kept->set;
		plan->version = kept->version;
		plan->sel = kept->sel;
	}
	else
	{
		if (plan->source->describe != NULL)
			plan->source->describe(plan->source, plan->target);
		plan_columns(plan);
		plan_key_and_version(plan, key, version);
		if (plan->shape != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(pgi_call_cache_context(plan->shape));

			kept = palloc0(sizeof(UpsertShape));
			kept->cols = pgi_columns_copy(&plan->cols);
			kept->key = list_copy(plan->key);
			kept->upd = list_copy(plan->upd);
			kept->set = list_copy(plan->set);
			kept->version = plan->version;
			kept->sel = pstrdup(plan->sel);
			MemoryContextSwitchTo(old);
			pgi_call_cache_store(plan->shape, kept);
		}
	}

	/*
	 * Every statement of the call reads its inputs as of this one moment: a
	 * source changed while the call runs is seen as it was at its start.
	 * (Under REPEATABLE READ this is the transaction's snapshot anyway.)
	 */
	plan->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	nest = begin_settings(plan);

	if (!try_first_load(plan, &counts->inserted))
		upsert_general(plan, counts);

	AtEOXact_GUC(true, nest);
	UnregisterSnapshot(plan->snapshot);
}

static UpsertSource *
source_new(void)
{
	UpsertSource *source = palloc0(sizeof(UpsertSource));

	initStringInfo(&source->from);
	source->rows = -1;
	return source;
}

Datum
pgi_idempotent_upsert(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	PgiRelation *rel;
	UpsertSource *source = source_new();

	pgi_require_arg(fcinfo, 0, "target");
	pgi_require_arg(fcinfo, 1, "source");
	target = pgi_relation_open(PG_GETARG_OID(0), PGI_REL_WRITE, "target");
	rel = pgi_relation_open(PG_GETARG_OID(1), PGI_REL_READ, "source");
	source->name = rel->displayname;
	source->columns = rel->columns;
	source->relid = rel->relid;
	source->rows = pgi_relation_rows(rel->relid);
	appendStringInfo(&source->from, "%s s0", rel->qualname);
	/* the relations' OIDs and the options say it all */
	source->shape = makeStringInfo();

	SPI_connect();
	upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}

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
	UpsertSource *source = source_new();
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
	source->name = "query";
	source->columns = pgi_columns_from_tupdesc(ps->resultDesc);
	for (i = 0; i < source->columns.ncols; i++)
		source->columns.cols[i].attnum = 0;
	/* the newline ends a trailing -- comment before our closing paren */
	appendStringInfo(&source->from, "(%s\n) s0", query);
	SPI_freeplan(prepared);

	upsert_run(fcinfo, target, source);
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
 * One pass over the array, in C: counts its elements, refuses any that is
 * not an object, and returns the distinct keys of the objects, sorted as
 * ORDER BY sorts text.  Nothing per row is kept: the keys point into the
 * jsonb, and each object's iterator is freed as it ends.
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
 * A JSON source's columns are its keys, each of the type of the target's
 * column of that name: jsonb_to_recordset($1) with that column list.
 */
static void
json_describe(UpsertSource *source, PgiRelation *target)
{
	int			i;

	source->columns.ncols = 0;
	source->columns.cols = palloc0(sizeof(PgiColumn) * source->nkeys);
	appendStringInfoString(&source->from, "pg_catalog.jsonb_to_recordset($1) s0(");
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
	}
	appendStringInfoChar(&source->from, ')');
}

Datum
pgi_idempotent_upsert_json(PG_FUNCTION_ARGS)
{
	PgiRelation *target;
	UpsertSource *source = source_new();
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
	/* the shape: the keys, in their sorted order, each ended by a zero byte */
	source->shape = makeStringInfo();
	for (i = 0; i < nkeys; i++)
		appendBinaryStringInfo(source->shape, keys[i], strlen(keys[i]) + 1);

	upsert_run(fcinfo, target, source);
	SPI_finish();
	PG_RETURN_NULL();
}
