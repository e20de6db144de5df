/*-------------------------------------------------------------------------
 *
 * distinct.c
 *	  Whether a source is unique on the key by construction, so that a
 *	  call can leave out the sort that looks for duplicated keys.
 *
 * The upsert and the history check every source for keys that appear more
 * than once: count(DISTINCT key) over the whole source, which on an
 * identical replay is the largest cost that is not the source's own.  Often
 * the source cannot hold duplicates: a table with a unique index over some
 * of the key's columns, a query grouped by the key.  PostgreSQL proves
 * that much for the planner's own use (join removal, unique joins), and
 * this file asks it the same questions.
 *
 * The check compares keys with the default btree equality of the key's
 * type, under the target column's collation (the statements convert source
 * values to the target's type and collation, pgi_match_source_columns), and
 * joins them to the target's.  A proof counts only if it is about that
 * equality:
 *	- the source column is of the target column's type, with no cast in
 *	  between (a cast can merge distinct values: numeric 1.2 and 1.4 both
 *	  become integer 1, varchar(5) truncates);
 *	- the proving operator belongs to the type's default btree operator
 *	  family;
 *	- for a collatable type, the proof's collation is the target column's,
 *	  or that one is deterministic
 *	  (distinct under any collation means distinct byte for byte, which is
 *	  what a deterministic collation's equality is; the reverse does not
 *	  hold: 'a' and 'A' are distinct bytewise and equal case-insensitively).
 *
 * A relation source is unique on the key if it has a valid, immediate
 * (a deferred constraint may hold duplicates inside a transaction),
 * non-partial unique index on plain columns that are all key columns,
 * created before any snapshot of this transaction (an older snapshot can
 * see two rows the index, built later, never saw live together) or with
 * the table in this transaction, and no
 * inheritance children (the source is read with them; a partitioned
 * table's unique index covers every partition).  A query source is unique
 * on the key if query_is_distinct_for says so: DISTINCT, GROUP BY, or a
 * set operation without ALL over the key columns, or a single aggregate
 * row.
 *
 * When in doubt the answer is no: a wrong yes lets duplicates through to
 * the write, a wrong no only costs the sort.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planmain.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "pg_idempotent.h"

/*
 * Whether values distinct under collation proof are distinct under
 * collation check too.
 */
static bool
collation_implies(Oid typid, Oid proof, Oid check)
{
	if (!type_is_collatable(typid))
		return true;
	if (!OidIsValid(proof) || !OidIsValid(check))
		return false;
	return proof == check || get_collation_isdeterministic(check);
}

/*
 * Whether uniqueness of key position pos under collation proof is
 * uniqueness under the check's equality: same type (no cast), and a
 * collation that implies the target column's.
 */
static bool
column_provable(const PgiColumnList *source, const PgiColumnList *cols,
				int pos, Oid proof)
{
	const PgiColumn *scol = &source->cols[pos];
	const PgiColumn *tcol = &cols->cols[pos];

	if (pgi_column_needs_cast(scol, tcol))
		return false;
	return collation_implies(tcol->typid, proof, tcol->collid);
}

/* the key position whose source column is attnum, or -1 */
static int
key_position_of(const PgiColumnList *source, List *key, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, key)
	{
		if (source->cols[lfirst_int(lc)].attnum == attnum)
			return lfirst_int(lc);
	}
	return -1;
}

/* One index of the source: does it make the source unique on the key? */
static bool
index_proves(Oid indexoid, bool rel_is_new, const PgiColumnList *source,
			 const PgiColumnList *cols, List *key)
{
	HeapTuple	tup;
	Form_pg_index index;
	oidvector  *indclass;
	oidvector  *indcollation;
	Datum		d;
	bool		isnull;
	TransactionId xmin;
	bool		proves = false;
	int			i;

	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for index %u", indexoid);
	index = (Form_pg_index) GETSTRUCT(tup);

	if (!pgi_index_is_usable_key(tup) || !index->indislive)
		goto done;

	/*
	 * The index as of every snapshot of this transaction: committed before
	 * the first of them, or made by this transaction on a table it created
	 * (whose rows no other transaction ever wrote).
	 */
	xmin = HeapTupleHeaderGetXmin(tup->t_data);
	if (!(TransactionIdIsValid(TransactionXmin) &&
		  TransactionIdPrecedes(xmin, TransactionXmin)) &&
		!(rel_is_new && TransactionIdIsCurrentTransactionId(xmin)))
		goto done;

	d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indclass, &isnull);
	Assert(!isnull);
	indclass = (oidvector *) DatumGetPointer(d);
	d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indcollation, &isnull);
	Assert(!isnull);
	indcollation = (oidvector *) DatumGetPointer(d);

	for (i = 0; i < index->indnkeyatts; i++)
	{
		int			pos = key_position_of(source, key, index->indkey.values[i]);
		TypeCacheEntry *tce;

		if (pos < 0)
			goto done;
		tce = lookup_type_cache(cols->cols[pos].typid, TYPECACHE_BTREE_OPFAMILY);
		if (!OidIsValid(tce->btree_opf) ||
			get_opclass_family(indclass->values[i]) != tce->btree_opf ||
			!column_provable(source, cols, pos, indcollation->values[i]))
			goto done;
	}
	proves = true;

done:
	ReleaseSysCache(tup);
	return proves;
}

static bool
relation_proves(Oid relid, const PgiColumnList *source,
				const PgiColumnList *cols, List *key)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	bool		usable;
	bool		proves = false;

	/* the caller has locked it */
	rel = relation_open(relid, NoLock);
	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
			/* read with its children, which its indexes do not cover */
			usable = !rel->rd_rel->relhassubclass;
			break;
		case RELKIND_MATVIEW:
		case RELKIND_PARTITIONED_TABLE:
			usable = true;
			break;
		default:
			usable = false;
			break;
	}
	if (usable)
	{
		indexes = RelationGetIndexList(rel);
		foreach(lc, indexes)
		{
			if (index_proves(lfirst_oid(lc),
							 rel->rd_createSubid != InvalidSubTransactionId,
							 source, cols, key))
			{
				proves = true;
				break;
			}
		}
		list_free(indexes);
	}
	relation_close(rel, NoLock);
	return proves;
}

static bool
query_proves(Query *query, const PgiColumnList *source,
			 const PgiColumnList *cols, List *key)
{
	List	   *colnos = NIL;
	List	   *opids = NIL;
	ListCell   *lc;

	foreach(lc, key)
	{
		int			pos = lfirst_int(lc);
		const PgiColumn *tcol = &cols->cols[pos];
		TargetEntry *tle = NULL;
		ListCell   *tl;
		int			n = 0;

		/* the source's columns are the query's non-junk output columns */
		foreach(tl, query->targetList)
		{
			TargetEntry *t = lfirst_node(TargetEntry, tl);

			if (t->resjunk)
				continue;
			if (n++ == pos)
			{
				tle = t;
				break;
			}
		}
		if (tle == NULL)
			return false;

		/*
		 * DISTINCT, GROUP BY and set operations compare an output column
		 * under its own collation.
		 */
		if (!column_provable(source, cols, pos, exprCollation((Node *) tle->expr)))
			return false;
		colnos = lappend_int(colnos, tle->resno);
		opids = lappend_oid(opids, pgi_type_operator(tcol->typid,
													 BTEqualStrategyNumber,
													 tcol->name));
	}
	return query_is_distinct_for(query, colnos, opids);
}

bool
pgi_source_unique_on_key(Oid relid, Query *query,
						 const PgiColumnList *source,
						 const PgiColumnList *cols, List *key,
						 const char *sourcename)
{
	bool		unique = false;

	if (key == NIL)
		return false;
	if (OidIsValid(relid))
		unique = relation_proves(relid, source, cols, key);
	else if (query != NULL && query->commandType == CMD_SELECT)
		unique = query_proves(query, source, cols, key);
	if (unique)
		ereport(DEBUG1,
				(errmsg_internal("pg_idempotent: source \"%s\" is unique on the key: duplicate check left out",
								 sourcename)));
	return unique;
}
