/*-------------------------------------------------------------------------
 *
 * partswap_plan.c
 *	  Whether the swap mode can replace a slice: where the slice lies in a
 *	  partitioned table (one leaf, or a partitioned partition whose leaves
 *	  are exchanged together), whether it is exactly a partition's bounds,
 *	  and every reason a swap would not do what writing through the table
 *	  does (pgi_swap_check).  partswap.c performs the swap.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "replace.h"

static int
bound_cmp(PartitionKey key, Datum a, Datum b)
{
	return DatumGetInt32(FunctionCall2Coll(&key->partsupfunc[0],
										   key->partcollation[0], a, b));
}

/*
 * Whether upper is the value right after v, for the discrete types whose
 * one-value slices are commonly range partitions ([day, day + 1)).
 */
static bool
is_successor(Oid typid, Datum upper, Datum v)
{
	switch (typid)
	{
		case INT2OID:
			return (int32) DatumGetInt16(upper) == (int32) DatumGetInt16(v) + 1;
		case INT4OID:
			return (int64) DatumGetInt32(upper) == (int64) DatumGetInt32(v) + 1;
		case INT8OID:
			return DatumGetInt64(v) < PG_INT64_MAX &&
				DatumGetInt64(upper) == DatumGetInt64(v) + 1;
		case DATEOID:
			return DATE_NOT_FINITE(DatumGetDateADT(v)) ? false :
				(int64) DatumGetDateADT(upper) == (int64) DatumGetDateADT(v) + 1;
	}
	return false;
}

/* Is the slice exactly the partition's bounds? */
static bool
slice_is_partition(PartitionKey key, Oid leaf, ReplaceKind kind, Datum *values)
{
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	PartitionBoundSpec *spec;
	bool		exact = false;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(leaf));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", leaf);
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tup);
		return false;
	}
	spec = castNode(PartitionBoundSpec, stringToNode(TextDatumGetCString(d)));
	ReleaseSysCache(tup);

	if (spec->is_default)
		return false;
	if (spec->strategy == PARTITION_STRATEGY_LIST)
	{
		Const	   *c;

		if (kind != REPLACE_VALUE || list_length(spec->listdatums) != 1)
			return false;
		c = linitial_node(Const, spec->listdatums);
		exact = !c->constisnull && bound_cmp(key, c->constvalue, values[0]) == 0;
	}
	else if (spec->strategy == PARTITION_STRATEGY_RANGE)
	{
		PartitionRangeDatum *lo = linitial_node(PartitionRangeDatum, spec->lowerdatums);
		PartitionRangeDatum *hi = linitial_node(PartitionRangeDatum, spec->upperdatums);
		Datum		lov,
					hiv;

		if (lo->kind != PARTITION_RANGE_DATUM_VALUE ||
			hi->kind != PARTITION_RANGE_DATUM_VALUE)
			return false;
		lov = castNode(Const, lo->value)->constvalue;
		hiv = castNode(Const, hi->value)->constvalue;
		if (bound_cmp(key, lov, values[0]) != 0)
			return false;
		if (kind == REPLACE_RANGE)
			exact = bound_cmp(key, hiv, values[1]) == 0;
		else
			exact = is_successor(key->parttypid[0], hiv, values[0]);
	}
	return exact;
}

/*
 * The slice is a partition that is itself partitioned: its partitions are
 * what gets exchanged, each under it, in one window.  They must all be
 * leaves, and none the default (ATTACH would scan a default partition
 * under the lock; see pgi_swap_locate).
 */
static void
locate_subtree(PgiSwapTarget *st)
{
	Relation	rel = relation_open(st->leaf, NoLock);
	PartitionDesc pd = RelationGetPartitionDesc(rel, true);
	int			i;

	if (pd->nparts == 0)
		st->refusal = psprintf(_("Partition \"%s\" is partitioned and has no partitions."),
							   st->leafname);
	else if (pd->boundinfo != NULL && partition_bound_has_default(pd->boundinfo))
		st->refusal = psprintf(_("Partition \"%s\" has a default partition, which ATTACH PARTITION would have to scan under the lock."),
							   st->leafname);
	for (i = 0; i < pd->nparts && st->refusal == NULL; i++)
	{
		if (!pd->is_leaf[i])
			st->refusal = psprintf(_("Partition \"%s\" of \"%s\" is partitioned too: swap exchanges the partitions of one level."),
								   get_rel_name(pd->oids[i]), st->leafname);
		else
			st->leaves = lappend_oid(st->leaves, pd->oids[i]);
	}
	relation_close(rel, NoLock);
	if (st->refusal != NULL)
	{
		list_free(st->leaves);
		st->leaves = NIL;
		return;
	}

	/* as for the partition itself: kept from being dropped or detached */
	for (i = 0; i < list_length(st->leaves); i++)
		LockRelationOid(list_nth_oid(st->leaves, i), AccessShareLock);
}

/*
 * Find the partition the slice's (first) value routes to, as tuple routing
 * would (get_partition_for_tuple), and whether the slice is exactly that
 * partition.  Called with the target locked.
 */
void
pgi_swap_locate(PgiRelation *target, int colidx, ReplaceKind kind, Datum *values,
				PgiSwapTarget *st)
{
	Relation	rel;
	PartitionKey key;
	PartitionDesc pd;
	PartitionBoundInfo bi;
	int			idx = -1;
	bool		eq;

	memset(st, 0, sizeof(PgiSwapTarget));
	st->found = true;
	if (target->relkind != RELKIND_PARTITIONED_TABLE)
	{
		st->refusal = psprintf(_("\"%s\" is not a partitioned table."),
							   target->displayname);
		return;
	}
	st->partitioned = true;
	rel = relation_open(target->relid, NoLock);
	key = RelationGetPartitionKey(rel);
	if (key->strategy == PARTITION_STRATEGY_HASH || key->partnatts != 1 ||
		key->partattrs[0] != target->columns.cols[colidx].attnum)
	{
		st->refusal = psprintf(_("\"%s\" is not partitioned by list or range of \"%s\" alone."),
							   target->displayname,
							   target->columns.cols[colidx].name);
		relation_close(rel, NoLock);
		return;
	}
	st->routable = true;
	pd = RelationGetPartitionDesc(rel, true);
	bi = pd->boundinfo;
	if (bi != NULL)
	{
		st->has_default = partition_bound_has_default(bi);
		if (key->strategy == PARTITION_STRATEGY_LIST)
		{
			int			off = partition_list_bsearch(key->partsupfunc,
													 key->partcollation, bi,
													 values[0], &eq);

			if (off >= 0 && eq)
				idx = bi->indexes[off];
		}
		else
		{
			int			off = partition_range_datum_bsearch(key->partsupfunc,
															key->partcollation,
															bi, 1, values, &eq);

			idx = bi->indexes[off + 1];
		}
		if (idx < 0 && st->has_default)
		{
			idx = bi->default_index;
			st->is_default = true;
		}
	}
	if (idx < 0)
	{
		st->found = false;
		st->refusal = _("No partition holds the slice.");
		relation_close(rel, NoLock);
		return;
	}
	st->leaf = pd->oids[idx];
	st->is_leaf = pd->is_leaf[idx];
	st->leafname = get_rel_name(st->leaf);
	st->exact = !st->is_default &&
		slice_is_partition(key, st->leaf, kind, values);
	relation_close(rel, NoLock);

	/*
	 * Keep the partition from being dropped or detached under us; ACCESS
	 * SHARE conflicts with neither readers nor writers.
	 */
	LockRelationOid(st->leaf, AccessShareLock);

	if (st->is_default)
		st->refusal = psprintf(_("The slice lies in the default partition \"%s\", which holds other values too."),
							   st->leafname);
	else if (!st->is_leaf)
		locate_subtree(st);
	else
		st->leaves = list_make1_oid(st->leaf);
	if (st->refusal != NULL)
		return;
	if (!st->exact)
		st->refusal = psprintf(_("The slice is not exactly the bounds of partition \"%s\"."),
							   st->leafname);
	else if (st->has_default)
		st->refusal = psprintf(_("\"%s\" has a default partition, which ATTACH PARTITION would have to scan under the lock."),
							   target->displayname);
}

/*
 * What else keeps a leaf from being swapped: objects that point at it or
 * its ancestors, and objects of its own that a swap would not carry over.
 * Returns the first one found, or NULL.
 */
static char *
leaf_refusal(Oid leaf)
{
	PgiParams	p;

	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(leaf));
	pgi_spi_run("SELECT x.o, x.a, x.b, x.c FROM ("
				"SELECT 1::pg_catalog.int8 AS o, pg_catalog.quote_ident(c.conname::pg_catalog.text) AS a, "
				"c.conrelid::pg_catalog.regclass::pg_catalog.text AS b, "
				"c.confrelid::pg_catalog.regclass::pg_catalog.text AS c "
				"FROM pg_catalog.pg_constraint c, pg_catalog.pg_partition_ancestors($1::pg_catalog.regclass) a "
				"WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.confrelid OPERATOR(pg_catalog.=) a.relid "
				"UNION ALL SELECT 2, pg_catalog.quote_ident(c.conname::pg_catalog.text), "
				"$1::pg_catalog.regclass::pg_catalog.text, NULL FROM pg_catalog.pg_constraint c "
				"WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.conrelid OPERATOR(pg_catalog.=) $1 AND NOT c.convalidated "
				"UNION ALL SELECT 3, $1::pg_catalog.regclass::pg_catalog.text, "
				"pg_catalog.quote_ident(t.tgname::pg_catalog.text), NULL FROM pg_catalog.pg_trigger t "
				"WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 AND NOT t.tgisinternal "
				"AND t.tgparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
				"UNION ALL SELECT 4, w.ev_class::pg_catalog.regclass::pg_catalog.text, "
				"$1::pg_catalog.regclass::pg_catalog.text, NULL "
				"FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid "
				"WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass "
				"AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
				"AND d.refobjid OPERATOR(pg_catalog.=) $1 AND w.ev_class OPERATOR(pg_catalog.<>) $1 "
				"UNION ALL SELECT 5, $1::pg_catalog.regclass::pg_catalog.text, "
				"pg_catalog.quote_ident(pb.pubname::pg_catalog.text), NULL FROM pg_catalog.pg_publication_rel pr "
				"JOIN pg_catalog.pg_publication pb ON pb.oid OPERATOR(pg_catalog.=) pr.prpubid "
				"WHERE pr.prrelid OPERATOR(pg_catalog.=) $1 "
				"UNION ALL SELECT 6, $1::pg_catalog.regclass::pg_catalog.text, NULL, NULL "
				"FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) $1 "
				"AND k.relkind OPERATOR(pg_catalog.=) 'f'"
				") x ORDER BY x.o, x.a, x.b, x.c LIMIT 1",
				&p, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	switch (pgi_spi_int8(0, 1))
	{
		case 1:
			return psprintf(_("Foreign key %s of table %s references %s: the rows that point into the partition would have to be checked under the lock."),
							pgi_spi_text(0, 2), pgi_spi_text(0, 3), pgi_spi_text(0, 4));
		case 2:
			return psprintf(_("Foreign key %s of partition %s is not validated: attaching a replacement would validate it under the lock."),
							pgi_spi_text(0, 2), pgi_spi_text(0, 3));
		case 3:
			return psprintf(_("Partition %s has trigger %s of its own, which swap does not copy."),
							pgi_spi_text(0, 2), pgi_spi_text(0, 3));
		case 4:
			return psprintf(_("View or rule %s depends on partition %s."),
							pgi_spi_text(0, 2), pgi_spi_text(0, 3));
		case 5:
			return psprintf(_("Partition %s is in publication %s by name, which swap does not copy."),
							pgi_spi_text(0, 2), pgi_spi_text(0, 3));
	}
	return psprintf(_("Partition %s is a foreign table."), pgi_spi_text(0, 2));
}

/*
 * What writing through the table runs and a swap would skip: the swap
 * loads the replacement before attaching it and drops the old leaf, so no
 * trigger fires for those rows and no row-level security policy checks
 * them.  Such a table is not swapped (auto takes diff, which writes
 * through the table; an explicit swap is 55000), when:
 *	- row-level security of the target applies to the caller (diff writes
 *	  through the target, whose policies are the ones that apply; a
 *	  partition's own are carried over by copy_properties);
 *	- an enabled trigger that is not internal fires on INSERT or DELETE:
 *	  for each row, on a leaf to be exchanged (its own, or a clone of an
 *	  ancestor's), or for each statement, on the target.
 * Checked when the swap is planned and again under the lock in the window,
 * so that one added meanwhile is not skipped either.  Returns the reason
 * (a DETAIL), or NULL.
 */
char *
pgi_swap_write_path_refusal(Oid target, List *leaves)
{
	PgiParams	p;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	if (check_enable_rls(target, InvalidOid, true) == RLS_ENABLED)
		return psprintf(_("Row-level security of \"%s\" applies to role \"%s\": a swap loads the replacement directly, so the policies would not check its rows."),
						get_rel_name(target), GetUserNameFromId(GetUserId(), false));

	elems = palloc(sizeof(Datum) * Max(list_length(leaves), 1));
	foreach(lc, leaves)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	memset(&p, 0, sizeof(p));
	pgi_params_add(&p, OIDOID, ObjectIdGetDatum(target));
	pgi_params_add(&p, OIDARRAYOID,
				   PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid),
												   true, TYPALIGN_INT)));
	/* tgtype bits: 1 for each row, 4 INSERT, 8 DELETE */
	pgi_spi_run("SELECT x.per_row, pg_catalog.quote_ident(x.tgname::pg_catalog.text), "
				"x.tgrelid::pg_catalog.regclass::pg_catalog.text FROM ("
				"SELECT t.tgname, t.tgrelid, (t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 1) OPERATOR(pg_catalog.<>) 0 AS per_row "
				"FROM pg_catalog.pg_trigger t "
				"WHERE NOT t.tgisinternal AND t.tgenabled OPERATOR(pg_catalog.<>) 'D' "
				"AND (t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 12) OPERATOR(pg_catalog.<>) 0) x "
				"WHERE CASE WHEN x.per_row THEN x.tgrelid OPERATOR(pg_catalog.=) ANY ($2) "
				"ELSE x.tgrelid OPERATOR(pg_catalog.=) $1 END "
				"ORDER BY x.tgrelid, x.tgname LIMIT 1",
				&p, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	if (strcmp(pgi_spi_text(0, 1), "t") == 0)
		return psprintf(_("Trigger %s of %s fires for each row inserted or deleted: a swap loads the replacement before attaching it, so the trigger would not fire."),
						pgi_spi_text(0, 2), pgi_spi_text(0, 3));
	return psprintf(_("Trigger %s of %s fires for each INSERT or DELETE statement: a swap runs neither, so the trigger would not fire."),
					pgi_spi_text(0, 2), pgi_spi_text(0, 3));
}

/*
 * Sets st->refusal to the first reason any of the leaves has, and then to
 * what a swap would skip (pgi_swap_write_path_refusal), with st->refusal_code.
 */
void
pgi_swap_check(PgiRelation *target, PgiSwapTarget *st)
{
	ListCell   *lc;

	foreach(lc, st->leaves)
	{
		if (st->refusal != NULL)
			return;
		st->refusal = leaf_refusal(lfirst_oid(lc));
	}
	if (st->refusal == NULL)
	{
		st->refusal = pgi_swap_write_path_refusal(target->relid, st->leaves);
		if (st->refusal != NULL)
			st->refusal_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}
}

/* How many rows the old leaf holds: swap's "deleted". */
int64
pgi_swap_count_leaf(PgiSwapTarget *st)
{
	char	   *q;

	q = psprintf("SELECT pg_catalog.count(*) FROM %s",
				 quote_qualified_identifier(get_namespace_name(get_rel_namespace(st->leaf)),
											st->leafname));
	pgi_spi_run(q, NULL, false, 0, SPI_OK_SELECT);
	return pgi_spi_int8(0, 1);
}
