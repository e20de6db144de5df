/*-------------------------------------------------------------------------
 *
 * relation.c
 *	  Resolving the relations, columns and keys an operation works on.
 *
 * Every operation takes its relations as regclass arguments, which are
 * OIDs: this file turns one into a PgiRelation after locking it, so that a
 * concurrent DROP or ALTER cannot change the catalog entries we read while
 * the statement runs.  The lock is kept until the end of the transaction.
 *
 * Errors a user can cause here (unknown OIDs, wrong relation kinds, missing
 * columns, no usable key) are reported with the SQLSTATE a user would match
 * on; see API.md "Errors".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "pg_idempotent.h"

/* The DETAIL of a relation argument of the wrong kind: what it is. */
static int
errdetail_relkind(const char *argname, char relkind)
{
	switch (relkind)
	{
		case RELKIND_RELATION:
			return errdetail("The \"%s\" argument is a table.", argname);
		case RELKIND_PARTITIONED_TABLE:
			return errdetail("The \"%s\" argument is a partitioned table.", argname);
		case RELKIND_VIEW:
			return errdetail("The \"%s\" argument is a view.", argname);
		case RELKIND_MATVIEW:
			return errdetail("The \"%s\" argument is a materialized view.", argname);
		case RELKIND_FOREIGN_TABLE:
			return errdetail("The \"%s\" argument is a foreign table.", argname);
		case RELKIND_SEQUENCE:
			return errdetail("The \"%s\" argument is a sequence.", argname);
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			return errdetail("The \"%s\" argument is an index.", argname);
		case RELKIND_COMPOSITE_TYPE:
			return errdetail("The \"%s\" argument is a composite type.", argname);
		case RELKIND_TOASTVALUE:
			return errdetail("The \"%s\" argument is a TOAST table.", argname);
	}
	return errdetail("The \"%s\" argument is a relation of an unsupported kind.",
					 argname);
}

PgiColumnList
pgi_columns_from_tupdesc(TupleDesc desc)
{
	PgiColumnList list;
	int			i;

	list.ncols = 0;
	list.cols = palloc0(sizeof(PgiColumn) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		PgiColumn  *col;

		if (att->attisdropped)
			continue;
		col = &list.cols[list.ncols++];
		col->name = pstrdup(NameStr(att->attname));
		col->attnum = att->attnum;
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->collid = att->attcollation;
		col->generated = att->attgenerated;
		col->identity = att->attidentity;
		col->notnull = att->attnotnull;
	}
	return list;
}

/* A copy of a column list, names included, in the current memory context. */
PgiColumnList
pgi_columns_copy(const PgiColumnList *list)
{
	PgiColumnList copy;
	int			i;

	copy.ncols = list->ncols;
	copy.cols = palloc(sizeof(PgiColumn) * Max(list->ncols, 1));
	for (i = 0; i < list->ncols; i++)
	{
		copy.cols[i] = list->cols[i];
		copy.cols[i].name = pstrdup(list->cols[i].name);
	}
	return copy;
}

int
pgi_column_index(const PgiColumnList *list, const char *name)
{
	int			i;

	for (i = 0; i < list->ncols; i++)
	{
		if (strcmp(list->cols[i].name, name) == 0)
			return i;
	}
	return -1;
}

/*
 * Refuse, before locking, a caller who could not take the lock with a
 * statement of their own: ROW EXCLUSIVE needs INSERT, UPDATE, DELETE or
 * TRUNCATE on the table, or INSERT or UPDATE on one of its columns (what an
 * INSERT or UPDATE of those columns would take); ACCESS SHARE needs SELECT
 * on the table or on one of its columns.  Without this, a role with no privilege at all could hold a
 * lock on someone else's table for as long as its transaction stays open.
 * What each statement needs beyond that is checked when it runs.
 */
static void
check_lock_privilege(Oid relid, PgiRelUse use)
{
	Oid			userid = GetUserId();
	char		relkind;

	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		return;					/* no such relation: try_relation_open says so */
	if (use == PGI_REL_WRITE)
	{
		if (pg_class_aclmask(relid, userid,
							 ACL_INSERT | ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE,
							 ACLMASK_ANY) != 0 ||
			pg_attribute_aclcheck_all(relid, userid, ACL_INSERT | ACL_UPDATE,
									  ACLMASK_ANY) == ACLCHECK_OK)
			return;
	}
	else
	{
		if (pg_class_aclmask(relid, userid, ACL_SELECT, ACLMASK_ANY) != 0 ||
			pg_attribute_aclcheck_all(relid, userid, ACL_SELECT,
									  ACLMASK_ANY) == ACLCHECK_OK)
			return;
	}
	aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind),
				   get_rel_name(relid));
}

static void
relation_not_found(Oid relid, const char *argname)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("relation with OID %u does not exist", relid),
			 errdetail("The \"%s\" argument names no relation; it may have been dropped.",
					   argname)));
}

/*
 * Refuse, before anything is locked, a caller who could not use the
 * relation as an operation will: the privileges of the lock
 * pgi_relation_open takes (check_lock_privilege), and, unless also is 0,
 * one of the table privileges in also.  For the replace family, which
 * takes a lock of its own before it opens its relations (see lock_slice in
 * replace.c).  A relation that does not exist is 42P01.
 */
void
pgi_relation_check(Oid relid, PgiRelUse use, AclMode also,
				   const char *argname)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		relation_not_found(relid, argname);
	check_lock_privilege(relid, use);
	if (also != 0 &&
		pg_class_aclmask(relid, GetUserId(), also, ACLMASK_ANY) == 0)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind),
					   get_rel_name(relid));
}

/*
 * Open, lock and describe the relation behind a regclass argument.
 *
 * A target is locked ROW EXCLUSIVE (the mode its own INSERT and UPDATE
 * would take), a source ACCESS SHARE.  Taking the lock before reading the
 * catalogs, and keeping it, means the description stays true for the rest
 * of the transaction.
 */
PgiRelation *
pgi_relation_open(Oid relid, PgiRelUse use, const char *argname)
{
	LOCKMODE	lockmode = (use == PGI_REL_WRITE) ? RowExclusiveLock : AccessShareLock;
	Relation	rel;
	PgiRelation *result;
	char		relkind;
	bool		ok;

	check_lock_privilege(relid, use);
	rel = try_relation_open(relid, lockmode);
	if (rel == NULL)
		relation_not_found(relid, argname);

	relkind = rel->rd_rel->relkind;
	result = palloc0(sizeof(PgiRelation));
	result->relid = relid;
	result->relkind = relkind;
	result->relpersistence = rel->rd_rel->relpersistence;
	result->nspname = get_namespace_name(RelationGetNamespace(rel));
	result->relname = pstrdup(RelationGetRelationName(rel));
	result->qualname = quote_qualified_identifier(result->nspname,
												  result->relname);
	if (RelationIsVisible(relid))
		result->displayname = result->relname;
	else
		result->displayname = psprintf("%s.%s", result->nspname,
									   result->relname);

	if (use == PGI_REL_WRITE)
		ok = (relkind == RELKIND_RELATION ||
			  relkind == RELKIND_PARTITIONED_TABLE);
	else
		ok = (relkind == RELKIND_RELATION ||
			  relkind == RELKIND_PARTITIONED_TABLE ||
			  relkind == RELKIND_VIEW ||
			  relkind == RELKIND_MATVIEW ||
			  relkind == RELKIND_FOREIGN_TABLE);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 use == PGI_REL_WRITE ?
				 errmsg("\"%s\" is not a table", result->displayname) :
				 errmsg("\"%s\" is not a table or view", result->displayname),
				 errdetail_relkind(argname, relkind),
				 use == PGI_REL_WRITE ?
				 errhint("Only ordinary and partitioned tables can be written to.") : 0));

	result->columns = pgi_columns_from_tupdesc(RelationGetDescr(rel));
	relation_close(rel, NoLock);
	return result;
}

/*
 * Deconstruct a text[] argument into a List of C strings, refusing NULL
 * elements and multi-dimensional or empty arrays.
 */
List *
pgi_text_array_to_list(ArrayType *arr, const char *argname)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			i;
	List	   *result = NIL;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("argument \"%s\" must be a one-dimensional array", argname)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must not be an empty array", argname)));
	for (i = 0; i < nelems; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not contain null elements",
							argname)));
		result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

/*
 * Is this index (its pg_index row) one that ON CONFLICT can use as an
 * arbiter for exactly the given set of columns?  It must be unique, valid,
 * immediate, without a predicate and without expressions.
 */
bool
pgi_index_is_usable_key(HeapTuple idxtup)
{
	Form_pg_index idx = (Form_pg_index) GETSTRUCT(idxtup);

	return idx->indisunique && idx->indisvalid && idx->indimmediate &&
		heap_attisnull(idxtup, Anum_pg_index_indpred, NULL) &&
		heap_attisnull(idxtup, Anum_pg_index_indexprs, NULL);
}

/* The key columns of an index, as indexes into the relation's column list. */
static List *
index_key_columns(PgiRelation *target, Form_pg_index idx)
{
	List	   *cols = NIL;
	int			i,
				j;

	for (i = 0; i < idx->indnkeyatts; i++)
	{
		AttrNumber	attnum = idx->indkey.values[i];

		for (j = 0; j < target->columns.ncols; j++)
		{
			if (target->columns.cols[j].attnum == attnum)
			{
				cols = lappend_int(cols, j);
				break;
			}
		}
	}
	return cols;
}

static bool
int_lists_equal_as_sets(List *a, List *b)
{
	ListCell   *lc;

	if (list_length(a) != list_length(b))
		return false;
	foreach(lc, a)
	{
		if (!list_member_int(b, lfirst_int(lc)))
			return false;
	}
	return true;
}

/*
 * Find the key to match source rows to target rows on.
 *
 * With an explicit key, its columns must exist on both sides and be exactly
 * the columns of a usable unique index: without one, concurrent sessions
 * could insert the same key twice.  Without an explicit key, the primary
 * key wins, else the one usable unique index whose columns the source has;
 * none or several is 42P10, naming what was found.
 *
 * Returns the key as a List of indexes into target->columns, in the order
 * of the index (or of the argument).
 */
List *
pgi_find_key(PgiRelation *target, const PgiColumnList *source,
			 ArrayType *key, const char *sourcename)
{
	return pgi_find_key_with(target, source, key, sourcename, -1);
}

/*
 * The same, for a key that a unique index must complete with one more
 * target column, which the source does not have (the history's
 * valid_from): with, an index into target->columns, or -1 for none.  Only
 * unique indexes that include it are candidates, an explicit key must be
 * the columns of such an index without it, and the key returned leaves
 * it out.
 */
List *
pgi_find_key_with(PgiRelation *target, const PgiColumnList *source,
				  ArrayType *key, const char *sourcename, int with)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	List	   *wanted = NIL;
	List	   *result = NIL;
	List	   *candidates = NIL;
	StringInfoData found;
	bool		have_pkey_candidate = false;

	if (key != NULL)
	{
		List	   *names = pgi_text_array_to_list(key, "key");

		foreach(lc, names)
		{
			char	   *name = lfirst(lc);
			int			idx = pgi_column_index(&target->columns, name);

			if (idx < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("key column \"%s\" does not exist in \"%s\"",
								name, target->displayname)));
			if (pgi_column_index(source, name) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("key column \"%s\" does not exist in source \"%s\"",
								name, sourcename)));
			if (list_member_int(wanted, idx))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("key column \"%s\" is listed more than once", name)));
			wanted = lappend_int(wanted, idx);
		}
		if (with >= 0)
			wanted = lappend_int(wanted, with);
	}

	initStringInfo(&found);
	rel = relation_open(target->relid, NoLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tup;
		Form_pg_index idx;
		List	   *cols;
		ListCell   *lc2;
		bool		source_has_all = true;

		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", indexoid);
		idx = (Form_pg_index) GETSTRUCT(tup);
		if (!idx->indisunique)
		{
			ReleaseSysCache(tup);
			continue;
		}
		cols = index_key_columns(target, idx);
		if (!pgi_index_is_usable_key(tup) || list_length(cols) != idx->indnkeyatts)
		{
			if (wanted == NIL)
				appendStringInfo(&found, "%s%s (not usable: partial, expression, deferrable or invalid)",
								 found.len > 0 ? "; " : "",
								 get_rel_name(indexoid));
			ReleaseSysCache(tup);
			continue;
		}

		if (wanted != NIL)
		{
			if (int_lists_equal_as_sets(cols, wanted))
				result = wanted;
			ReleaseSysCache(tup);
			if (result != NIL)
				break;
			continue;
		}

		foreach(lc2, cols)
		{
			if (lfirst_int(lc2) != with &&
				pgi_column_index(source, target->columns.cols[lfirst_int(lc2)].name) < 0)
				source_has_all = false;
		}
		appendStringInfo(&found, "%s%s %s (%s)%s",
						 found.len > 0 ? "; " : "",
						 idx->indisprimary ? "primary key" : "unique index",
						 get_rel_name(indexoid),
						 pgi_column_names(&target->columns, cols),
						 with >= 0 && !list_member_int(cols, with) ?
						 psprintf(", without %s", target->columns.cols[with].name) :
						 source_has_all ? "" : ", not all in the source");
		if (with >= 0)
		{
			if (!list_member_int(cols, with) || list_length(cols) < 2)
				source_has_all = false;
			else
				cols = list_delete_int(cols, with);
		}
		if (source_has_all)
		{
			if (idx->indisprimary)
			{
				have_pkey_candidate = true;
				result = cols;
			}
			candidates = lappend(candidates, cols);
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	relation_close(rel, NoLock);

	if (wanted != NIL)
	{
		if (result != NIL && with >= 0)
			result = list_delete_int(list_copy(result), with);
		if (result == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("no unique index of \"%s\" matches key (%s)",
							target->displayname, pgi_column_names(&target->columns, wanted)),
					 errdetail("Without a unique index on exactly these columns, concurrent sessions could insert the same key twice."),
					 errhint("Create a unique index on (%s), or name the columns of an existing one.",
							 pgi_column_names(&target->columns, wanted))));
		return result;
	}

	if (have_pkey_candidate)
		return result;
	if (list_length(candidates) == 1)
		return linitial(candidates);

	if (with >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 candidates == NIL ?
				 errmsg("table \"%s\" has no unique key on \"%s\" and columns of source \"%s\"",
						target->displayname, target->columns.cols[with].name, sourcename) :
				 errmsg("table \"%s\" has more than one unique key on \"%s\" and columns of source \"%s\"",
						target->displayname, target->columns.cols[with].name, sourcename),
				 found.len > 0 ?
				 errdetail("Found: %s.", found.data) :
				 errdetail("It has no primary key and no unique index."),
				 errhint("Create a unique index on the key columns and \"%s\", or pass the key columns in the \"key\" argument.",
						 target->columns.cols[with].name)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 candidates == NIL ?
			 errmsg("table \"%s\" has no unique key that source \"%s\" covers",
					target->displayname, sourcename) :
			 errmsg("table \"%s\" has more than one unique key that source \"%s\" covers",
					target->displayname, sourcename),
			 found.len > 0 ?
			 errdetail("Found: %s.", found.data) :
			 errdetail("It has no primary key and no unique index."),
			 errhint("Pass the key columns in the \"key\" argument; they must be the columns of a unique index.")));
	return NIL;					/* keep compiler quiet */
}

/*
 * A name for a scratch relation in a schema, free there: base, else
 * base_2, base_3, ...  A user's table that happens to be called like our
 * scratch tables must not make the operation fail.  (A concurrent session
 * creating the same name between this check and our CREATE still gets a
 * clean 42P07, as any CREATE would.)
 */
char *
pgi_unused_relname(Oid nspid, const char *base)
{
	char	   *name = pstrdup(base);
	int			n = 1;

	while (OidIsValid(get_relname_relid(name, nspid)))
	{
		CHECK_FOR_INTERRUPTS();
		name = psprintf("%s_%d", base, ++n);
	}
	return name;
}

/*
 * Rows of a relation, from its size on disk and its last known density:
 * what decides whether a batch is small against a table.  -1 when there
 * is no way to tell (a view never analyzed).
 */
double
pgi_relation_rows(Oid relid)
{
	Relation	rel = relation_open(relid, NoLock);
	double		rows = -1;

	if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
	{
		BlockNumber blocks = RelationGetNumberOfBlocks(rel);
		double		density = 50;	/* rows per block before any ANALYZE */

		if (rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples >= 0)
			density = rel->rd_rel->reltuples / rel->rd_rel->relpages;
		rows = blocks * density;
	}
	else if (rel->rd_rel->reltuples >= 0)
		rows = rel->rd_rel->reltuples;
	relation_close(rel, NoLock);
	return rows;
}

/*
 * Whether a relation holds more than n rows, by pgi_relation_rows.  Its
 * statistics settle that without measuring the file when they already
 * count more: the file only shrinks by VACUUM or TRUNCATE, which update
 * them, so its size in blocks is at least relpages and pgi_relation_rows
 * at least reltuples.  A small batch's call skips a system call so.
 */
bool
pgi_relation_rows_exceed(Oid relid, double n)
{
	Relation	rel = relation_open(relid, NoLock);
	bool		known = RELKIND_HAS_STORAGE(rel->rd_rel->relkind) &&
		rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples > n;

	relation_close(rel, NoLock);
	return known || pgi_relation_rows(relid) > n;
}

/*
 * Whether a statement may find the relation's rows again by the ctid it
 * read them at: a plain table whose ctids the caller may read (a system
 * column takes SELECT on the whole table).  In a partitioned table a ctid
 * names a row only with its partition, and a TID scan per partition would
 * cost more than the key's index.
 */
bool
pgi_relation_rows_by_ctid(const PgiRelation *rel)
{
	return rel->relkind == RELKIND_RELATION &&
		pg_class_aclcheck(rel->relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Whether a table is distributed by Citus, whose SQL refuses some shapes
 * a single server runs best (SELECT ... FOR UPDATE over several shards):
 * those who build statements pick per table.  Citus keeps its tables in
 * pg_catalog.pg_dist_partition; where it is not installed there is no
 * such catalog and nothing is read.  Needs an SPI connection.
 */
bool
pgi_relation_is_distributed(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return false;
	args[0] = ObjectIdGetDatum(relid);
	if (SPI_execute_with_args("SELECT FROM pg_catalog.pg_dist_partition "
							  "WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_partition");
	return SPI_processed > 0;
}

/*
 * Take a transaction-level lock of the extension's own on a table: an
 * object lock (LOCKTAG_OBJECT, the kind PostgreSQL takes on its catalog
 * objects) whose class is this extension, the OID of its pg_extension row.
 * That names no catalog, so nothing else locks in that space, and SQL
 * cannot reach it (pg_advisory_lock takes advisory locks only): no
 * application's advisory key can collide with ours, and no role can hold
 * one by hand.  pg_locks shows it as locktype object, classid the
 * extension's OID, objid the table's OID, objsubid the key (the PGI_LOCK_
 * values).  Callers check the caller's privileges first, so only a role
 * that may write the table can queue for a key.  The wait obeys
 * lock_timeout and statement_timeout, as any lock wait does.
 */
void
pgi_lock_key(FunctionCallInfo fcinfo, Oid relid, int32 subid, LOCKMODE mode)
{
	Oid			ext = getExtensionOfObject(ProcedureRelationId,
										   fcinfo->flinfo->fn_oid);

	if (!OidIsValid(ext))
		elog(ERROR, "function %u is not a member of extension pg_idempotent",
			 fcinfo->flinfo->fn_oid);
	LockDatabaseObject(ext, relid, subid, mode);
}
