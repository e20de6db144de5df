/*-------------------------------------------------------------------------
 *
 * partswap.c
 *	  The swap mode of the replace family: replace one leaf partition of a
 *	  declaratively partitioned table by a new table loaded beside it; or,
 *	  when the slice is a partition that is itself partitioned, each of its
 *	  (leaf) partitions, the source's rows routed to the new ones, all
 *	  exchanged in one window.
 *
 * Only the last step needs the parent's ACCESS EXCLUSIVE lock, and it does
 * catalog work only, so the lock is held for a time that does not grow with
 * the partition's size:
 *
 *	1. build, with no lock on the parent at all: CREATE TABLE (LIKE old
 *	   leaf) with its defaults, CHECK and NOT NULL constraints, generated
 *	   columns, storage, compression, extended statistics, column comments,
 *	   access method, tablespace and reloptions, plus a CHECK constraint
 *	   equal to the partition constraint (added while the table is empty, so
 *	   it costs no scan, and it lets ATTACH skip its validation scan); load
 *	   the source; build the old leaf's indexes (constraint-backed ones as
 *	   constraints, so they attach to the parent's primary key and unique
 *	   constraints); freeze the loaded rows (see freeze_new_leaf); add its
 *	   foreign keys NOT VALID and validate them (so
 *	   ATTACH adopts them instead of checking rows); copy owner, privileges
 *	   (table and column ACLs as stored, whatever the caller's default
 *	   privileges gave the new table), row level security flags and
 *	   policies, replica identity and comment; ANALYZE;
 *	2. the window, in a subtransaction under pg_idempotent.lock_timeout:
 *	   LOCK the parent and the old leaf, DETACH the old leaf, ATTACH the new
 *	   one, DROP the old one, give the new one (and its indexes) the old
 *	   names, drop the bound constraint.  A lock timeout rolls the
 *	   subtransaction back and retries, up to pg_idempotent.lock_retries
 *	   times, so a long reader makes the swap wait and then fail (55P03)
 *	   instead of making every other query queue behind its lock request.
 *
 * All of it happens in the caller's transaction: readers see the old leaf
 * until it commits, then the new one; a crash leaves the old one.
 *
 * Rows loaded this way pass no trigger and no row-level security policy of
 * the table, so a table where writing would run either is not swapped
 * (pgi_swap_write_path_refusal in partswap_plan.c), checked when the swap is planned and again in the
 * window.
 *
 * Why no lock is held on the parent before the window: two swaps of two
 * partitions of one parent would each hold a weak lock on it and then wait
 * for ACCESS EXCLUSIVE, a deadlock.  So replace.c drops the ROW EXCLUSIVE
 * lock it took to plan (nothing was written through it), and the old leaf
 * is read directly.  The window checks that the leaf is still a partition
 * of the parent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "replace.h"

/* The CHECK constraint that spares ATTACH its scan; dropped after it. */
#define BOUND_CONSTRAINT "pgi_partition_bound"

/* An index of the old leaf, and its twin on the new one. */
typedef struct SwapIndex
{
	char	   *oldname;
	char	   *tmpname;
	bool		replident;
} SwapIndex;


static void
run_utility(const char *sql)
{
	pgi_spi_run(sql, NULL, false, 0, SPI_OK_UTILITY);
}

/*
 * Run one of our statements on a replacement or the scratch table; an
 * error of class sqlerrcode from it is raised again as message (and hint),
 * keeping its DETAIL: said about the user's partition, not about the table
 * the statement ran on, whose name the caller never chose.
 */
static void
run_said_of_partition(const char *sql, int expected, int sqlerrcode,
					  const char *message, const char *hint)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		pgi_spi_run(sql, NULL, false, 0, expected);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != sqlerrcode)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("%s", message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 hint ? errhint("%s", hint) : 0));
	}
	PG_END_TRY();
}

/*
 * Build the new leaf's indexes from the old one's.  Constraint-backed
 * indexes are added as constraints (ATTACH matches a parent's primary key
 * or unique constraint only with a constraint); the others from
 * pg_get_indexdef, with the name and table replaced.  Returns the list of
 * SwapIndex, to rename them in the window.
 */
static List *
build_indexes(Oid leaf, const char *oldq, const char *newq)
{
	PgiParams	p;
	List	   *result = NIL;
	int			n;
	int			i;
	char	  **oldname;
	char	  **conname;
	char	  **condef;
	char	  **idxdef;
	char	  **replident;
	char	  **idxoid;

	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(leaf));

	/* a handful of catalog rows, copied out before the next statement */
	pgi_spi_run("SELECT ic.relname, con.conname, pg_catalog.pg_get_constraintdef(con.oid), "
				"pg_catalog.pg_get_indexdef(i.indexrelid), i.indisreplident::pg_catalog.text, "
				"i.indexrelid::pg_catalog.text "
				"FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid "
				"LEFT JOIN pg_catalog.pg_constraint con ON con.conindid OPERATOR(pg_catalog.=) i.indexrelid "
				"AND con.conrelid OPERATOR(pg_catalog.=) i.indrelid "
				"AND con.contype OPERATOR(pg_catalog.=) ANY ('{p,u,x}'::pg_catalog.\"char\"[]) "
				"WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisvalid ORDER BY ic.relname",
				&p, false, 0, SPI_OK_SELECT);
	n = (int) SPI_processed;
	oldname = palloc0(sizeof(char *) * (n + 1));
	conname = palloc0(sizeof(char *) * (n + 1));
	condef = palloc0(sizeof(char *) * (n + 1));
	idxdef = palloc0(sizeof(char *) * (n + 1));
	replident = palloc0(sizeof(char *) * (n + 1));
	idxoid = palloc0(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		oldname[i] = pgi_spi_text(i, 1);
		conname[i] = pgi_spi_text(i, 2);
		condef[i] = pgi_spi_text(i, 3);
		idxdef[i] = pgi_spi_text(i, 4);
		replident[i] = pgi_spi_text(i, 5);
		idxoid[i] = pgi_spi_text(i, 6);
	}

	for (i = 0; i < n; i++)
	{
		SwapIndex  *si = palloc0(sizeof(SwapIndex));
		StringInfoData q;

		CHECK_FOR_INTERRUPTS();
		si->oldname = oldname[i];
		si->tmpname = pgi_unused_relname(get_rel_namespace(leaf),
										 psprintf("pgi_swap_%s", idxoid[i]));
		si->replident = (strcmp(replident[i], "true") == 0);
		initStringInfo(&q);
		if (conname[i] != NULL)
			appendStringInfo(&q, "ALTER TABLE %s ADD CONSTRAINT %s %s", newq,
							 quote_identifier(si->tmpname), condef[i]);
		else
		{
			/*
			 * pg_get_indexdef prints "CREATE [UNIQUE] INDEX name ON
			 * schema.table USING ..."; everything from USING on is the index
			 * itself.
			 */
			char	   *head = psprintf(" INDEX %s ON %s USING ",
										quote_identifier(oldname[i]), oldq);
			char	   *at = strstr(idxdef[i], head);

			if (at == NULL)
				elog(ERROR, "unexpected index definition: %s", idxdef[i]);
			appendStringInfo(&q, "%s INDEX %s ON %s USING %s",
							 strncmp(idxdef[i], "CREATE UNIQUE", 13) == 0 ? "CREATE UNIQUE" : "CREATE",
							 quote_identifier(si->tmpname), newq,
							 at + strlen(head));
		}
		run_utility(q.data);
		result = lappend(result, si);
	}
	return result;
}

/*
 * The old leaf's foreign keys, on the loaded new one: added NOT VALID (a
 * catalog change), then validated by one query that blocks no writer of
 * the referenced table.  ATTACH then finds each one validated and equal to
 * the parent's and adopts it instead of checking every row under the lock.
 */
static void
copy_foreign_keys(Oid leaf, const char *leafname, const char *newq)
{
	PgiParams	p;
	int			n;
	int			i;
	char	  **conname;
	char	  **condef;

	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(leaf));
	pgi_spi_run("SELECT c.conname, pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c "
				"WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.contype OPERATOR(pg_catalog.=) 'f' "
				"ORDER BY c.conname",
				&p, false, 0, SPI_OK_SELECT);
	n = (int) SPI_processed;
	conname = palloc0(sizeof(char *) * (n + 1));
	condef = palloc0(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		conname[i] = pgi_spi_text(i, 1);
		condef[i] = pgi_spi_text(i, 2);
	}
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		run_utility(psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", newq,
							 quote_identifier(conname[i]), condef[i]));
		run_said_of_partition(psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", newq,
									   quote_identifier(conname[i])),
							  SPI_OK_UTILITY, ERRCODE_FOREIGN_KEY_VIOLATION,
							  psprintf("source rows violate foreign key constraint \"%s\" of partition \"%s\"",
									   conname[i], leafname),
							  NULL);
	}
}

/*
 * Set one ACL column of a catalog row of ours (pg_class.relacl,
 * pg_attribute.attacl) to acl, NULL for the owner's default, and the
 * shared dependencies on the roles it names, as GRANT and REVOKE do.
 */
static void
set_acl(Relation catalog, HeapTuple tup, int attno, Acl *acl, Oid relid,
		int32 attnum, Oid owner)
{
	TupleDesc	desc = RelationGetDescr(catalog);
	Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc0(sizeof(bool) * desc->natts);
	bool	   *replace = palloc0(sizeof(bool) * desc->natts);
	bool		wasnull;
	Datum		was = heap_getattr(tup, attno, desc, &wasnull);
	Oid		   *oldmembers = NULL;
	Oid		   *newmembers = NULL;
	int			noldmembers = 0;
	int			nnewmembers = 0;
	HeapTuple	newtup;

	if (wasnull && acl == NULL)
		return;
	if (!wasnull)
		noldmembers = aclmembers(DatumGetAclP(was), &oldmembers);
	if (acl != NULL)
		nnewmembers = aclmembers(acl, &newmembers);
	replace[attno - 1] = true;
	values[attno - 1] = PointerGetDatum(acl);
	nulls[attno - 1] = (acl == NULL);
	newtup = heap_modify_tuple(tup, desc, values, nulls, replace);
	CatalogTupleUpdate(catalog, &newtup->t_self, newtup);
	updateAclDependencies(RelationRelationId, relid, attnum, owner,
						  noldmembers, oldmembers, nnewmembers, newmembers);
}

/*
 * Give the replacement exactly the old leaf's privileges: its table ACL and
 * its columns' ACLs as they are stored, NULL staying NULL (the owner's
 * default) and every grant keeping its grantor, whatever the caller's
 * default privileges (ALTER DEFAULT PRIVILEGES) gave the new table when it
 * was created.  GRANT and REVOKE cannot: they would record the owner as the
 * grantor of every grant, and no command brings an ACL back to NULL.  So
 * the catalog rows are written as GRANT writes them.  Called after the
 * replacement has the old leaf's owner; a caller without that owner's
 * privileges (who could not GRANT on it either) is refused.
 */
static void
copy_acls(Oid leaf, Oid newrel)
{
	Relation	classrel;
	Relation	attrel;
	HeapTuple	tup;
	Form_pg_class cls;
	Oid			owner;
	int			natts;
	bool		isnull;
	Datum		d;
	Acl		   *acl;
	AttrNumber	attnum;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(leaf));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", leaf);
	cls = (Form_pg_class) GETSTRUCT(tup);
	owner = cls->relowner;
	natts = cls->relnatts;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	acl = isnull ? NULL : DatumGetAclPCopy(d);
	ReleaseSysCache(tup);

	if (!has_privs_of_role(GetUserId(), owner))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(leaf));

	classrel = table_open(RelationRelationId, RowExclusiveLock);
	tup = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(newrel));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", newrel);
	if (((Form_pg_class) GETSTRUCT(tup))->relowner != owner)
		elog(ERROR, "replacement %u does not have the owner of partition %u",
			 newrel, leaf);
	set_acl(classrel, tup, Anum_pg_class_relacl, acl, newrel, 0, owner);
	table_close(classrel, RowExclusiveLock);

	/* the columns, matched by name: the old leaf may have dropped ones */
	attrel = table_open(AttributeRelationId, RowExclusiveLock);
	for (attnum = 1; attnum <= natts; attnum++)
	{
		Form_pg_attribute att;
		HeapTuple	newatt;

		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(leaf),
							  Int16GetDatum(attnum));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for attribute %d of relation %u",
				 attnum, leaf);
		att = (Form_pg_attribute) GETSTRUCT(tup);
		if (att->attisdropped)
		{
			ReleaseSysCache(tup);
			continue;
		}
		d = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attacl, &isnull);
		acl = isnull ? NULL : DatumGetAclPCopy(d);
		newatt = SearchSysCacheCopyAttName(newrel, NameStr(att->attname));
		if (!HeapTupleIsValid(newatt))
			elog(ERROR, "replacement %u lacks column \"%s\" of partition %u",
				 newrel, NameStr(att->attname), leaf);
		set_acl(attrel, newatt, Anum_pg_attribute_attacl, acl, newrel,
				((Form_pg_attribute) GETSTRUCT(newatt))->attnum, owner);
		ReleaseSysCache(tup);
	}
	table_close(attrel, RowExclusiveLock);
	CommandCounterIncrement();
}

/* Copy what CREATE TABLE (LIKE) does not: owner, grants, RLS, and more. */
static void
copy_properties(Oid leaf, Oid newrel, const char *newq, List *indexes)
{
	HeapTuple	tup;
	Form_pg_class cls;
	Oid			owner;
	bool		rls;
	bool		force_rls;
	char		replident;
	PgiParams	p;
	ListCell   *lc;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(leaf));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", leaf);
	cls = (Form_pg_class) GETSTRUCT(tup);
	owner = cls->relowner;
	rls = cls->relrowsecurity;
	force_rls = cls->relforcerowsecurity;
	replident = cls->relreplident;
	ReleaseSysCache(tup);

	/* first the owner: ALTER OWNER rewrites the grants the owner holds */
	if (owner != GetUserId())
		run_utility(psprintf("ALTER TABLE %s OWNER TO %s", newq,
							 quote_identifier(GetUserNameFromId(owner, false))));
	copy_acls(leaf, newrel);

	if (rls)
		run_utility(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", newq));
	if (force_rls)
		run_utility(psprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", newq));
	if (replident == REPLICA_IDENTITY_FULL)
		run_utility(psprintf("ALTER TABLE %s REPLICA IDENTITY FULL", newq));
	else if (replident == REPLICA_IDENTITY_NOTHING)
		run_utility(psprintf("ALTER TABLE %s REPLICA IDENTITY NOTHING", newq));
	else if (replident == REPLICA_IDENTITY_INDEX)
	{
		foreach(lc, indexes)
		{
			SwapIndex  *si = lfirst(lc);

			if (si->replident)
				run_utility(psprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s",
									 newq, quote_identifier(si->tmpname)));
		}
	}

	/*
	 * Policies and the table's comment, as one generated script (the grants
	 * were copied above).
	 */
	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(leaf));
	pgi_params_add(&p, TEXTOID, CStringGetTextDatum(newq));
	pgi_spi_run("SELECT pg_catalog.concat_ws('; ', "
				"(SELECT pg_catalog.string_agg(pg_catalog.format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', "
				"p.polname, $2, CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
				"CASE WHEN p.polcmd OPERATOR(pg_catalog.=) 'r' THEN 'SELECT' "
				"WHEN p.polcmd OPERATOR(pg_catalog.=) 'a' THEN 'INSERT' "
				"WHEN p.polcmd OPERATOR(pg_catalog.=) 'w' THEN 'UPDATE' "
				"WHEN p.polcmd OPERATOR(pg_catalog.=) 'd' THEN 'DELETE' ELSE 'ALL' END, "
				"(SELECT pg_catalog.string_agg(CASE WHEN r OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' "
				"ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END, ', ') FROM pg_catalog.unnest(p.polroles) r), "
				"CASE WHEN p.polqual IS NULL THEN '' ELSE pg_catalog.format(' USING (%s)', pg_catalog.pg_get_expr(p.polqual, p.polrelid)) END, "
				"CASE WHEN p.polwithcheck IS NULL THEN '' ELSE pg_catalog.format(' WITH CHECK (%s)', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)) END), '; ') "
				"FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid), "
				"CASE WHEN pg_catalog.obj_description(c.oid, 'pg_class') IS NOT NULL THEN "
				"pg_catalog.format('COMMENT ON TABLE %s IS %L', $2, pg_catalog.obj_description(c.oid, 'pg_class')) END) "
				"FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
				&p, false, 0, SPI_OK_SELECT);
	{
		char	   *script = pgi_spi_text(0, 1);

		if (script != NULL && script[0] != '\0')
			run_utility(script);
	}
}

/* One leaf to exchange, and its replacement, built beside it. */
typedef struct SwapLeaf
{
	Oid			old;			/* the leaf */
	char	   *name;			/* its name, which the replacement takes */
	Oid			parent;			/* its parent */
	char	   *parentq;		/* ... quoted and qualified */
	char	   *nsp;			/* the leaf's schema */
	char	   *oldq;			/* the leaf, quoted and qualified */
	Oid			new;			/* the replacement */
	char	   *newq;			/* ... quoted and qualified */
	char	   *bound;			/* FOR VALUES ..., as ATTACH takes it */
	List	   *indexes;		/* SwapIndex */
} SwapLeaf;

/* What one attempt at the window needs, passed through pgi_run_in_subxact. */
typedef struct SwapWindow
{
	PgiRelation *target;
	PgiSwapTarget *st;
	List	   *leaves;			/* SwapLeaf */
	TimestampTz granted;
	TimestampTz finished;
} SwapWindow;

static void
window_once(void *arg)
{
	SwapWindow *w = (SwapWindow *) arg;
	int			nest = NewGUCNestLevel();
	char		timeout[32];
	char	   *refusal;
	StringInfoData lock;
	ListCell   *lc;
	ListCell   *ic;

	snprintf(timeout, sizeof(timeout), "%d", pgi_lock_timeout);
	(void) set_config_option("lock_timeout", timeout, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	/*
	 * Top down, as readers lock them; ONLY: the other partitions need no lock
	 * of ours.
	 */
	initStringInfo(&lock);
	appendStringInfo(&lock, "LOCK TABLE ONLY %s", w->target->qualname);
	if (list_length(w->leaves) > 0 &&
		((SwapLeaf *) linitial(w->leaves))->parent == w->st->leaf)
		appendStringInfo(&lock, ", ONLY %s",
						 ((SwapLeaf *) linitial(w->leaves))->parentq);
	foreach(lc, w->leaves)
		appendStringInfo(&lock, ", ONLY %s", ((SwapLeaf *) lfirst(lc))->oldq);
	appendStringInfoString(&lock, " IN ACCESS EXCLUSIVE MODE");
	run_utility(lock.data);
	w->granted = GetCurrentTimestamp();

	/*
	 * a trigger or policy added since the swap was planned: see
	 * pgi_swap_check
	 */
	refusal = pgi_swap_write_path_refusal(w->target->relid, w->st->leaves);
	if (refusal != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot replace this slice of \"%s\" by swapping a partition",
						w->target->displayname),
				 errdetail("%s", refusal),
				 errhint("Use mode => 'diff' or mode => 'delete_insert', which write through the table's triggers and row-level security.")));

	foreach(lc, w->leaves)
	{
		SwapLeaf   *l = lfirst(lc);
		PgiParams	p;

		memset(&p, 0, sizeof(p));
		pgi_params_add(&p, OIDOID, ObjectIdGetDatum(l->old));
		pgi_params_add(&p, OIDOID, ObjectIdGetDatum(l->parent));
		pgi_spi_run("SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid OPERATOR(pg_catalog.=) $1 "
					"AND inhparent OPERATOR(pg_catalog.=) $2 AND NOT inhdetachpending",
					&p, false, 1, SPI_OK_SELECT);
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("partition \"%s\" was detached while its replacement was loaded",
							l->name)));

		run_utility(psprintf("ALTER TABLE %s DETACH PARTITION %s", l->parentq, l->oldq));
		run_utility(psprintf("ALTER TABLE %s ATTACH PARTITION %s %s", l->parentq, l->newq, l->bound));
		run_utility(psprintf("DROP TABLE %s", l->oldq));
		run_utility(psprintf("ALTER TABLE %s RENAME TO %s", l->newq,
							 quote_identifier(l->name)));
		foreach(ic, l->indexes)
		{
			SwapIndex  *si = lfirst(ic);

			run_utility(psprintf("ALTER INDEX %s RENAME TO %s",
								 quote_qualified_identifier(l->nsp, si->tmpname),
								 quote_identifier(si->oldname)));
		}
		/* the replacement now has the old name */
		run_utility(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", l->oldq,
							 BOUND_CONSTRAINT));
	}
	w->finished = GetCurrentTimestamp();

	/* lock_timeout back to the caller's; an error undoes it with the subxact */
	AtEOXact_GUC(true, nest);
}

/*
 * The window: one attempt, in a subtransaction so that a lock timeout can
 * be undone and retried.  Returns false when the attempt timed out waiting
 * for a lock (or deadlocked) and was rolled back; after the last attempt
 * that is an error saying why.
 */
static bool
try_window(SwapWindow *w, const char *targetname, bool last_attempt)
{
	static const int codes[] = {ERRCODE_LOCK_NOT_AVAILABLE,
	ERRCODE_T_R_DEADLOCK_DETECTED, 0};

	if (pgi_run_in_subxact(window_once, w, codes) == 0)
		return true;
	if (last_attempt)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not lock \"%s\" to swap partition \"%s\"",
						targetname, w->st->leafname),
				 errdetail_plural("Gave up after %d attempt of %d ms: other transactions hold locks on the table.",
								  "Gave up after %d attempts of %d ms each: other transactions hold locks on the table.",
								  pgi_lock_retries + 1,
								  pgi_lock_retries + 1, pgi_lock_timeout),
				 errhint("Retry when long-running transactions on the table have ended, raise pg_idempotent.lock_timeout or pg_idempotent.lock_retries, or use mode => 'diff'.")));
	return false;
}

/*
 * Mark every row of the new leaf frozen, as COPY FREEZE would have loaded
 * it.  Rows inserted by our transaction are invisible to every snapshot
 * taken before it commits; once the old leaf is gone, a REPEATABLE READ or
 * SERIALIZABLE transaction holding such a snapshot would find the slice
 * empty.  Frozen, the rows are visible to it: it sees the new slice whole,
 * never an empty one (it sees data committed after its snapshot, the
 * price COPY FREEZE and TRUNCATE document too).
 *
 * This is safe only because nobody else can see the table and it vanishes
 * if the subtransaction that created it aborts: so it is done only when
 * the table was created in the current subtransaction, and only to rows
 * this transaction inserted and did not delete.  Each page is WAL-logged
 * whole, as VACUUM's freezing would log it, so a standby agrees.
 */
static void
freeze_new_leaf(Oid relid, const char *newq)
{
	/* created by this transaction, so already locked ACCESS EXCLUSIVE */
	Relation	rel = table_open(relid, NoLock);
	BlockNumber nblocks;
	BlockNumber blkno;

	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_createSubid != GetCurrentSubTransactionId())
	{
		ereport(DEBUG1,
				(errmsg("pg_idempotent: rows of %s left unfrozen", newq)));
		table_close(rel, NoLock);
		return;
	}

	nblocks = RelationGetNumberOfBlocks(rel);
	for (blkno = 0; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber off;
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(rel, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);

		/* check first: no error may be raised inside the critical section */
		for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
		{
			ItemId		itemid = PageGetItemId(page, off);
			HeapTupleHeader htup;

			if (!ItemIdIsNormal(itemid))
				continue;
			htup = (HeapTupleHeader) PageGetItem(page, itemid);
			if (!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(htup)) ||
				!(htup->t_infomask & HEAP_XMAX_INVALID))
				elog(ERROR, "row (%u,%u) of %s was not inserted alone by this transaction",
					 blkno, off, newq);
		}

		START_CRIT_SECTION();
		for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
		{
			ItemId		itemid = PageGetItemId(page, off);

			if (ItemIdIsNormal(itemid))
				HeapTupleHeaderSetXminFrozen((HeapTupleHeader) PageGetItem(page, itemid));
		}
		MarkBufferDirty(buf);
		if (RelationNeedsWAL(rel))
			log_newpage_buffer(buf, true);
		END_CRIT_SECTION();
		UnlockReleaseBuffer(buf);
	}
	table_close(rel, NoLock);
}

/*
 * Create the replacement of one leaf, empty, beside it: its definition,
 * and the CHECK constraint equal to its partition constraint, added while
 * it is empty so that adding it scans nothing.
 */
static SwapLeaf *
create_replacement(Oid leaf)
{
	SwapLeaf   *l = palloc0(sizeof(SwapLeaf));
	char	   *nsp = get_namespace_name(get_rel_namespace(leaf));
	char	   *newname = pgi_unused_relname(get_rel_namespace(leaf),
											 psprintf("pgi_swap_%u", leaf));
	char	   *constraint;
	char	   *relopts;
	char	   *amname;
	char	   *spcname;
	char		persistence;
	PgiParams	p;
	StringInfoData q;

	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(leaf));
	pgi_spi_run("SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid), "
				"pg_catalog.pg_get_partition_constraintdef(c.oid), "
				"pg_catalog.concat_ws(', ', "
				"(SELECT pg_catalog.string_agg(pg_catalog.format('%I=%L', pg_catalog.split_part(o, '=', 1), "
				"pg_catalog.substr(o, pg_catalog.strpos(o, '=') OPERATOR(pg_catalog.+) 1)), ', ') "
				"FROM pg_catalog.unnest(c.reloptions) o), "
				"(SELECT pg_catalog.string_agg(pg_catalog.format('toast.%I=%L', pg_catalog.split_part(o, '=', 1), "
				"pg_catalog.substr(o, pg_catalog.strpos(o, '=') OPERATOR(pg_catalog.+) 1)), ', ') "
				"FROM pg_catalog.pg_class tc, pg_catalog.unnest(tc.reloptions) o "
				"WHERE tc.oid OPERATOR(pg_catalog.=) c.reltoastrelid)), "
				"am.amname::pg_catalog.text, ts.spcname::pg_catalog.text, c.relpersistence::pg_catalog.text, "
				"c.relname::pg_catalog.text, i.inhparent::pg_catalog.text "
				"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam "
				"LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) c.reltablespace "
				"LEFT JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) c.oid "
				"WHERE c.oid OPERATOR(pg_catalog.=) $1",
				&p, false, 0, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition with OID %u was dropped while its replacement was planned",
						leaf)));
	l->bound = pgi_spi_text(0, 1);
	constraint = pgi_spi_text(0, 2);
	relopts = pgi_spi_text(0, 3);
	amname = pgi_spi_text(0, 4);
	spcname = pgi_spi_text(0, 5);
	persistence = pgi_spi_text(0, 6)[0];
	l->name = pgi_spi_text(0, 7);
	if (l->bound == NULL || constraint == NULL || pgi_spi_text(0, 8) == NULL)
		elog(ERROR, "relation \"%s\" is not a partition", l->name);
	l->old = leaf;
	l->parent = (Oid) strtoul(pgi_spi_text(0, 8), NULL, 10);
	l->parentq = quote_qualified_identifier(get_namespace_name(get_rel_namespace(l->parent)),
											get_rel_name(l->parent));
	l->nsp = nsp;
	l->oldq = quote_qualified_identifier(nsp, l->name);
	l->newq = quote_qualified_identifier(nsp, newname);

	initStringInfo(&q);
	appendStringInfo(&q, "CREATE %sTABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
					 "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION "
					 "INCLUDING STATISTICS INCLUDING COMMENTS) USING %s",
					 persistence == RELPERSISTENCE_UNLOGGED ? "UNLOGGED " : "",
					 l->newq, l->oldq, quote_identifier(amname));
	if (relopts != NULL && relopts[0] != '\0')
		appendStringInfo(&q, " WITH (%s)", relopts);
	if (spcname != NULL)
		appendStringInfo(&q, " TABLESPACE %s", quote_identifier(spcname));
	run_utility(q.data);
	l->new = get_relname_relid(newname, get_rel_namespace(leaf));
	run_utility(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)", l->newq,
						 BOUND_CONSTRAINT, constraint));
	return l;
}

/*
 * Load the replacements of the partitions of a partitioned partition: the
 * source's rows are routed to them as an INSERT into the partition would
 * route them, through a scratch table partitioned the same way, to which
 * they are attached for the length of one INSERT (they are empty and carry
 * their bound constraint, so attaching them scans nothing).  A row no
 * partition takes is an error, as it would be for that INSERT.
 */
static int64
load_through_scratch(PgiSwapTarget *st, List *leaves,
					 const PgiColumnList *cols, const char *sel)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(st->leaf));
	char	   *partq = quote_qualified_identifier(nsp, st->leafname);
	char	   *scratchq = quote_qualified_identifier(nsp,
													  pgi_unused_relname(get_rel_namespace(st->leaf),
																		 psprintf("pgi_swap_root_%u", st->leaf)));
	PgiParams	p;
	StringInfoData q;
	ListCell   *lc;
	int64		inserted = 0;

	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(st->leaf));
	pgi_spi_run("SELECT pg_catalog.pg_get_partkeydef($1)", &p, false, 0, SPI_OK_SELECT);
	run_utility(psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED) "
						 "PARTITION BY %s", scratchq, partq, pgi_spi_text(0, 1)));
	foreach(lc, leaves)
	{
		SwapLeaf   *l = lfirst(lc);

		run_utility(psprintf("ALTER TABLE %s ATTACH PARTITION %s %s",
							 scratchq, l->newq, l->bound));
	}

	initStringInfo(&q);
	pgi_append_insert_into(&q, scratchq, NULL, cols, NULL);
	appendStringInfoString(&q, sel);
	run_said_of_partition(q.data, SPI_OK_INSERT, ERRCODE_CHECK_VIOLATION,
						  psprintf("a source row fits no partition of \"%s\"", st->leafname),
						  "Create the partition first, or use mode => 'diff'.");
	inserted = (int64) SPI_processed;

	foreach(lc, leaves)
		run_utility(psprintf("ALTER TABLE %s DETACH PARTITION %s", scratchq,
							 ((SwapLeaf *) lfirst(lc))->newq));
	run_utility(psprintf("DROP TABLE %s", scratchq));
	return inserted;
}

void
pgi_swap_run(PgiRelation *target, PgiSwapTarget *st,
			 const PgiColumnList *cols, const char *sel,
			 PgiProgress *progress, int64 *inserted)
{
	SwapWindow	w;
	List	   *leaves = NIL;
	ListCell   *lc;
	int			attempt;
	TimestampTz start;
	long		secs;
	int			usecs_wait;
	int			usecs_held;
	long		secs_held;

	/* see the file header: no lock on the parent until the window */
	UnlockRelationOid(target->relid, RowExclusiveLock);

	/* 1. build and load the replacements, beside the old leaves */
	foreach(lc, st->leaves)
		leaves = lappend(leaves, create_replacement(lfirst_oid(lc)));
	if (st->is_leaf)
	{
		SwapLeaf   *l = linitial(leaves);
		StringInfoData q;

		initStringInfo(&q);
		pgi_append_insert_into(&q, l->newq, NULL, cols, NULL);
		appendStringInfoString(&q, sel);
		pgi_spi_run(q.data, NULL, false, 0, SPI_OK_INSERT);
		*inserted = (int64) SPI_processed;
	}
	else
		*inserted = load_through_scratch(st, leaves, cols, sel);
	pgi_progress_step(progress,
					  errmsg_plural("%s on %s: loaded %lld row into the replacement of \"%s\"",
									"%s on %s: loaded %lld rows into the replacement of \"%s\"",
									*inserted, PGI_PROGRESS_OF(progress),
									(long long) *inserted, st->leafname));

	foreach(lc, leaves)
	{
		SwapLeaf   *l = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		freeze_new_leaf(l->new, l->newq);
		l->indexes = build_indexes(l->old, l->oldq, l->newq);
		copy_foreign_keys(l->old, l->name, l->newq);
		copy_properties(l->old, l->new, l->newq, l->indexes);
		run_utility(psprintf("ANALYZE %s", l->newq));
		pgi_progress_step(progress,
						  errmsg("%s on %s: built the indexes and properties of the replacement of \"%s\"",
								 PGI_PROGRESS_OF(progress), l->name));
	}

	/* 2. the window */
	memset(&w, 0, sizeof(w));
	w.target = target;
	w.st = st;
	w.leaves = leaves;
	start = GetCurrentTimestamp();
	for (attempt = 1;; attempt++)
	{
		if (try_window(&w, target->displayname, attempt > pgi_lock_retries))
			break;
		/* let the queries that queued behind our request run first */
		pg_usleep(Min(100000L * attempt, 1000000L));
		CHECK_FOR_INTERRUPTS();
	}
	TimestampDifference(start, w.granted, &secs, &usecs_wait);
	TimestampDifference(w.granted, w.finished, &secs_held, &usecs_held);
	pgi_progress_step(progress,
					  errmsg_plural("%s on %s: exchanged \"%s\" (%d partition) at lock attempt %d",
									"%s on %s: exchanged \"%s\" (%d partitions) at lock attempt %d",
									list_length(leaves), PGI_PROGRESS_OF(progress),
									st->leafname, list_length(leaves), attempt));
	ereport(DEBUG1,
			(errmsg_plural("pg_idempotent: swapped partition \"%s\" of \"%s\" (%d leaf): lock granted after %.3f ms (attempt %d), held %.3f ms to the end of the swap",
						   "pg_idempotent: swapped partition \"%s\" of \"%s\" (%d leaves): lock granted after %.3f ms (attempt %d), held %.3f ms to the end of the swap",
						   list_length(leaves),
						   st->leafname, target->displayname, list_length(leaves),
						   secs * 1000.0 + usecs_wait / 1000.0, attempt,
						   secs_held * 1000.0 + usecs_held / 1000.0)));
}
