/*-------------------------------------------------------------------------
 *
 * upsert_probe.c
 *	  A one-row relation source whose row the target already holds, told
 *	  without a statement: read the row, probe the key's unique index, and
 *	  compare the two rows by image, as the statement's classification does.
 *
 * A streaming writer upserts one row per call, and most such rows are
 * re-deliveries of a row already written.  For them the one statement of
 * the general path (upsert_sql.c) costs more to set up (some forty plan
 * nodes, every call) than to run, and it finds nothing to write.  Here the
 * same answer costs a heap scan of the one-row source, one index probe and
 * a comparison, in the call's snapshot.
 *
 * The probe only ever answers "unchanged": a row that is new, changed,
 * that it cannot read exactly as the statement would (a cast between the
 * source's and the target's types, a key index of another equality, row
 * security, privileges granted by column only), or a source of more or
 * fewer than one row, goes to the statement, which decides as before.  So
 * a mistake here can only cost the work it meant to save; it can never
 * skip a write.  And it only answers where running the statement would
 * have had no other effect: a target with statement-level triggers (which
 * fire for a statement that writes nothing) or rules (which the statement
 * refuses) goes to the statement too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "compat.h"
#include "upsert.h"

/* What a call shape's probe needs, worked out on its first call. */
struct UpsertProbe
{
	Oid			index;			/* unique btree index on exactly the key */
	int			nkeys;
	int			keycol[INDEX_MAX_KEYS]; /* per index column: position in cols */
	RegProcedure eqproc[INDEX_MAX_KEYS];	/* its equality's function */
	Oid			eqcoll[INDEX_MAX_KEYS];
	AttrNumber *srcatt;			/* per column of cols: the source's attnum */
	int16	   *typlen;
	bool	   *byval;
};

/*
 * The index the probe reads: unique, immediate and valid, on the key's
 * columns and nothing else (no expression, no predicate), in each column's
 * default btree family and collation, so that its equality is the
 * OPERATOR(pg_catalog.=) under the column's collation that the statement
 * joins on.  InvalidOid if there is none.
 */
static Oid
key_index(Relation target, UpsertPlan *plan, UpsertProbe *probe)
{
	List	   *indexes = RelationGetIndexList(target);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ind = index->rd_index;
		bool		ok;
		int			i;

		ok = ind->indisunique && ind->indimmediate && ind->indisvalid &&
			ind->indislive && index->rd_rel->relam == BTREE_AM_OID &&
			IndexRelationGetNumberOfKeyAttributes(index) == list_length(plan->key) &&
			RelationGetIndexExpressions(index) == NIL &&
			RelationGetIndexPredicate(index) == NIL;
		for (i = 0; ok && i < list_length(plan->key); i++)
		{
			AttrNumber	att = ind->indkey.values[i];
			ListCell   *kc;
			int			pos = -1;
			PgiColumn  *col;
			Oid			opclass;

			foreach(kc, plan->key)
			{
				if (plan->cols.cols[lfirst_int(kc)].attnum == att)
					pos = lfirst_int(kc);
			}
			if (pos < 0)
			{
				ok = false;
				break;
			}
			col = &plan->cols.cols[pos];
			opclass = GetDefaultOpClass(col->typid, BTREE_AM_OID);
			if (!OidIsValid(opclass) ||
				get_opclass_family(opclass) != index->rd_opfamily[i] ||
				index->rd_indcollation[i] != col->collid)
			{
				ok = false;
				break;
			}
			probe->keycol[i] = pos;
			probe->eqcoll[i] = col->collid;
			probe->eqproc[i] = get_opcode(get_opfamily_member(index->rd_opfamily[i],
															  col->typid, col->typid,
															  BTEqualStrategyNumber));
			if (!RegProcedureIsValid(probe->eqproc[i]))
				ok = false;
		}
		index_close(index, AccessShareLock);
		if (ok)
		{
			found = lfirst_oid(lc);
			probe->nkeys = list_length(plan->key);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * Whether calls of this shape may probe, and what with; NULL if they may
 * not.  Everything here follows from the catalogs, which the call shape is
 * forgotten on a change of (callcache.c); what depends on the caller is
 * checked per call.
 */
static UpsertProbe *
probe_setup(UpsertPlan *plan)
{
	UpsertProbe *probe;
	Relation	target;
	Relation	source;
	bool		ok;
	int			i;

	if (!OidIsValid(plan->source->relid) || plan->version >= 0 ||
		plan->keep_last || plan->target->relkind != RELKIND_RELATION)
		return NULL;

	target = table_open(plan->target->relid, NoLock);
	source = table_open(plan->source->relid, NoLock);
	/* another session's temporary table: the statement says it cannot */
	ok = source->rd_rel->relkind == RELKIND_RELATION &&
		!RELATION_IS_OTHER_TEMP(source) && !RELATION_IS_OTHER_TEMP(target) &&
		!source->rd_rel->relhassubclass &&
		!target->rd_rel->relhasrules &&
		(target->trigdesc == NULL ||
		 !(target->trigdesc->trig_insert_before_statement ||
		   target->trigdesc->trig_insert_after_statement ||
		   target->trigdesc->trig_update_before_statement ||
		   target->trigdesc->trig_update_after_statement));

	probe = palloc0(sizeof(UpsertProbe));
	probe->srcatt = palloc0(sizeof(AttrNumber) * Max(plan->cols.ncols, 1));
	probe->typlen = palloc0(sizeof(int16) * Max(plan->cols.ncols, 1));
	probe->byval = palloc0(sizeof(bool) * Max(plan->cols.ncols, 1));

	/* the source's columns as they are, with no cast to the target's */
	for (i = 0; ok && i < plan->cols.ncols; i++)
	{
		PgiColumn  *col = &plan->cols.cols[i];
		int			s = pgi_column_index(&plan->source->columns, col->name);
		PgiColumn  *scol;

		if (s < 0)
		{
			ok = false;
			break;
		}
		scol = &plan->source->columns.cols[s];
		if (scol->typid != col->typid || scol->typmod != col->typmod ||
			scol->collid != col->collid || col->attnum <= 0)
		{
			ok = false;
			break;
		}
		probe->srcatt[i] = scol->attnum;
		get_typlenbyval(col->typid, &probe->typlen[i], &probe->byval[i]);
	}
	if (ok)
		probe->index = key_index(target, plan, probe);
	table_close(source, NoLock);
	table_close(target, NoLock);
	if (!ok || !OidIsValid(probe->index) ||
		pgi_relation_is_distributed(plan->target->relid) ||
		pgi_relation_is_distributed(plan->source->relid))
		return NULL;
	return probe;
}

/*
 * Whether this caller's statement would have read and written both tables
 * with table-wide privileges and no row security; otherwise the statement
 * runs and checks (or applies) them itself.
 */
static bool
caller_may_probe(UpsertPlan *plan)
{
	Oid			user = GetUserId();
	AclMode		need = plan->dry_run ? ACL_SELECT :
		(ACL_SELECT | ACL_INSERT | ACL_UPDATE);

	return pg_class_aclmask(plan->target->relid, user, need, ACLMASK_ALL) == need &&
		pg_class_aclcheck(plan->source->relid, user, ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(plan->target->relid, InvalidOid, true) != RLS_ENABLED &&
		check_enable_rls(plan->source->relid, InvalidOid, true) != RLS_ENABLED;
}

/*
 * The source's one row into values/nulls (by position in cols), or false
 * if it has none or more than one.  The values point into the row slot
 * holds, which the caller drops when done with them.
 */
static bool
read_one_row(UpsertPlan *plan, UpsertProbe *probe, Relation source,
			 TupleTableSlot *slot, Datum *values, bool *nulls)
{
	TableScanDesc scan;
	bool		one = false;
	int			i;

	/* no synchronized start, no ring buffer: a row or two is all we read */
	scan = table_beginscan_strat(source, plan->snapshot, 0, NULL, false, false);
	if (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		TupleTableSlot *next = table_slot_create(source, NULL);

		/* a copy of the row, before the scan moves on */
		ExecMaterializeSlot(slot);
		CHECK_FOR_INTERRUPTS();
		one = !table_scan_getnextslot(scan, ForwardScanDirection, next);
		ExecDropSingleTupleTableSlot(next);
	}
	table_endscan(scan);
	if (!one)
		return false;
	slot_getallattrs(slot);
	for (i = 0; i < plan->cols.ncols; i++)
	{
		values[i] = slot->tts_values[probe->srcatt[i] - 1];
		nulls[i] = slot->tts_isnull[probe->srcatt[i] - 1];
	}
	return true;
}

/*
 * Whether the target holds the source's row, key and every column
 * identical by image, in the call's snapshot.
 */
static bool
target_holds(UpsertPlan *plan, UpsertProbe *probe, Relation target,
			 Datum *values, bool *nulls)
{
	Relation	index = index_open(probe->index, AccessShareLock);
	ScanKeyData skeys[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(target, NULL);
	bool		same = false;
	int			i;

	for (i = 0; i < probe->nkeys; i++)
	{
		int			pos = probe->keycol[i];

		if (nulls[pos])
		{
			index_close(index, AccessShareLock);
			ExecDropSingleTupleTableSlot(slot);
			return false;
		}
		ScanKeyEntryInitialize(&skeys[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, probe->eqcoll[i], probe->eqproc[i],
							   values[pos]);
	}
	scan = pgi_index_beginscan(target, index, plan->snapshot, probe->nkeys);
	index_rescan(scan, skeys, probe->nkeys, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		slot_getallattrs(slot);
		same = true;
		for (i = 0; same && i < plan->cols.ncols; i++)
		{
			AttrNumber	att = plan->cols.cols[i].attnum;
			bool		tnull = slot->tts_isnull[att - 1];

			if (tnull || nulls[i])
				same = tnull == nulls[i];
			else
				same = pgi_image_equal(probe->typlen[i], probe->byval[i],
									   slot->tts_values[att - 1], values[i]);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	return same;
}

/*
 * A call whose source is one row the target already holds: true, with the
 * counts, and nothing else to do.  False for anything else, which the
 * statement then decides.  kept, the call shape's, remembers the setup.
 */
bool
pgi_upsert_probe_unchanged(UpsertPlan *plan, UpsertShape *kept,
						   UpsertCounts *counts)
{
	UpsertProbe *probe;
	Relation	target;
	Relation	source;
	TupleTableSlot *row;
	Datum	   *values;
	bool	   *nulls;
	bool		same;

	/* a batch not small against the table is not one row */
	if (!plan->probe)
		return false;
	if (kept != NULL && kept->probe_known)
		probe = kept->probe;
	else
	{
		MemoryContext old = CurrentMemoryContext;

		if (kept != NULL)
			MemoryContextSwitchTo(pgi_call_cache_context(plan->shape));
		probe = probe_setup(plan);
		MemoryContextSwitchTo(old);
		if (kept != NULL)
		{
			kept->probe = probe;
			kept->probe_known = true;
		}
	}
	if (probe == NULL || !caller_may_probe(plan))
		return false;

	values = palloc(sizeof(Datum) * Max(plan->cols.ncols, 1));
	nulls = palloc(sizeof(bool) * Max(plan->cols.ncols, 1));
	source = table_open(plan->source->relid, NoLock);
	target = table_open(plan->target->relid, NoLock);
	row = table_slot_create(source, NULL);
	same = read_one_row(plan, probe, source, row, values, nulls) &&
		target_holds(plan, probe, target, values, nulls);
	ExecDropSingleTupleTableSlot(row);
	table_close(target, NoLock);
	table_close(source, NoLock);
	if (!same)
		return false;

	ereport(DEBUG1,
			(errmsg_internal("pg_idempotent: the source's one row is in \"%s\" as it is (by a probe of its key's index): no statement ran",
							 plan->target->displayname)));
	counts->unchanged = 1;
	pgi_progress_step(&plan->progress,
					  errmsg("%s on %s: classified 1 row: 0 new, 0 changed, 0 stale, 1 unchanged (by a probe of the key's index)",
							 PGI_PROGRESS_OF(&plan->progress)));
	return true;
}
