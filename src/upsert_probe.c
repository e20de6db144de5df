/*-------------------------------------------------------------------------
 *
 * upsert_probe.c
 *	  A one-row source, decided by a probe of the key's unique index instead
 *	  of the general statement: the row is read (from a table, or the one
 *	  object of a JSON array), the target's row with its key found, and the
 *	  two compared by image, as the statement's classification does.
 *
 * A streaming writer upserts one row per call.  For it the one statement of
 * the general path (upsert_sql.c) costs more to set up (some forty plan
 * nodes, every call) than to run.  Here a row the target already holds
 * costs a read of the source, one index probe and a comparison, in the
 * call's snapshot, and no statement at all; a changed row one UPDATE of
 * that row, by its ctid, and a new one one INSERT ... ON CONFLICT DO
 * NOTHING, each a statement of a few plan nodes (pgi_upsert_build_one_*).
 * A write that finds the row changed or inserted by another session since
 * the snapshot writes nothing, and the call goes on to the general path,
 * in a new snapshot under READ COMMITTED; REPEATABLE READ raises 40001 from
 * the write itself, as the general path would.
 *
 * Only where the general statement would read the rows exactly so and have
 * no other effect: anything the probe cannot read as the statement would (a
 * cast between the source's and the target's types, a key index of another
 * equality, row security, privileges granted by column only) or a source
 * of more or fewer than one row goes to the statement, and so does a
 * target with statement-level triggers (which fire for a statement that
 * writes nothing) or rules (which the statement refuses).  A target with
 * BEFORE ROW triggers is probed but not written here: a trigger that skips
 * the row would look like a concurrent change, and run twice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

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
	AttrNumber *srcatt;			/* per column of cols: a table source's
								 * attnum */
	int16	   *typlen;
	bool	   *byval;
	bool		write;			/* a changed or new row is written here */
	Oid			rowtype;		/* the target's row type, for the write */
	TupleDesc	jsondesc;		/* a JSON source's row, as its statement's
								 * column list declares it */
};

/* What the probe found for the source's row. */
typedef enum ProbeResult
{
	PROBE_NONE,					/* no decision: the statement decides */
	PROBE_SAME,
	PROBE_CHANGED,
	PROBE_NEW
} ProbeResult;

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
		bool		ok;
		int			i;

		/* an arbiter ON CONFLICT could use, on as many columns as the key */
		ok = pgi_index_is_usable_key(index->rd_indextuple) &&
			index->rd_index->indislive && index->rd_rel->relam == BTREE_AM_OID &&
			IndexRelationGetNumberOfKeyAttributes(index) == list_length(plan->key);
		for (i = 0; ok && i < list_length(plan->key); i++)
		{
			AttrNumber	att = index->rd_index->indkey.values[i];
			ListCell   *kc;
			int			pos = -1;
			PgiColumn  *col;
			TypeCacheEntry *tce;

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
			tce = lookup_type_cache(col->typid,
									TYPECACHE_BTREE_OPFAMILY | TYPECACHE_EQ_OPR);
			if (!OidIsValid(tce->btree_opf) || !OidIsValid(tce->eq_opr) ||
				tce->btree_opf != index->rd_opfamily[i] ||
				index->rd_indcollation[i] != col->collid)
			{
				ok = false;
				break;
			}
			probe->keycol[i] = pos;
			probe->eqcoll[i] = col->collid;
			probe->eqproc[i] = get_opcode(tce->eq_opr);
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
	Relation	source = NULL;
	bool		ok;
	int			i;

	if (plan->source->query != NULL || plan->version >= 0 ||
		plan->keep_last || plan->target->relkind != RELKIND_RELATION)
		return NULL;
	if (!OidIsValid(plan->source->relid) && plan->source->keys == NULL)
		return NULL;

	target = table_open(plan->target->relid, NoLock);
	if (OidIsValid(plan->source->relid))
		source = table_open(plan->source->relid, NoLock);

	/* another session's temporary table: the statement says it cannot */
	ok = !RELATION_IS_OTHER_TEMP(target) && !target->rd_rel->relhasrules &&
		(target->trigdesc == NULL ||
		 !(target->trigdesc->trig_insert_before_statement ||
		   target->trigdesc->trig_insert_after_statement ||
		   target->trigdesc->trig_update_before_statement ||
		   target->trigdesc->trig_update_after_statement));
	if (source != NULL)
		ok = ok && source->rd_rel->relkind == RELKIND_RELATION &&
			!RELATION_IS_OTHER_TEMP(source) && !source->rd_rel->relhassubclass;

	probe = palloc0(sizeof(UpsertProbe));
	probe->srcatt = palloc0(sizeof(AttrNumber) * Max(plan->cols.ncols, 1));
	probe->typlen = palloc0(sizeof(int16) * Max(plan->cols.ncols, 1));
	probe->byval = palloc0(sizeof(bool) * Max(plan->cols.ncols, 1));
	probe->write = target->trigdesc == NULL ||
		!(target->trigdesc->trig_insert_before_row ||
		  target->trigdesc->trig_update_before_row);
	probe->rowtype = target->rd_rel->reltype;
	if (source == NULL)
		probe->jsondesc = pgi_upsert_json_row_desc(&plan->cols);

	for (i = 0; ok && i < plan->cols.ncols; i++)
	{
		PgiColumn  *col = &plan->cols.cols[i];

		if (col->attnum <= 0)
			ok = false;
		else if (source != NULL)
		{
			/* a table's columns as they are, with no cast to the target's */
			int			s = pgi_column_index(&plan->source->columns, col->name);
			PgiColumn  *scol = s >= 0 ? &plan->source->columns.cols[s] : NULL;

			if (scol == NULL || scol->typid != col->typid ||
				scol->typmod != col->typmod || scol->collid != col->collid)
				ok = false;
			else
				probe->srcatt[i] = scol->attnum;
		}
		get_typlenbyval(col->typid, &probe->typlen[i], &probe->byval[i]);
	}
	if (ok)
		probe->index = key_index(target, plan, probe);
	if (source != NULL)
		table_close(source, NoLock);
	table_close(target, NoLock);
	if (!ok || !OidIsValid(probe->index) ||
		pgi_relation_is_distributed(plan->target->relid) ||
		(source != NULL && pgi_relation_is_distributed(plan->source->relid)))
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

	if (pg_class_aclmask(plan->target->relid, user, need, ACLMASK_ALL) != need ||
		check_enable_rls(plan->target->relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	return !OidIsValid(plan->source->relid) ||
		(pg_class_aclcheck(plan->source->relid, user, ACL_SELECT) == ACLCHECK_OK &&
		 check_enable_rls(plan->source->relid, InvalidOid, true) != RLS_ENABLED);
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
 * The target's row with the source row's key, in the call's snapshot: none
 * (new), one identical by image in every column (same), or one that
 * differs (changed, and where it is, in *tid).
 */
static ProbeResult
probe_target(UpsertPlan *plan, UpsertProbe *probe, Relation target,
			 Datum *values, bool *nulls, ItemPointer tid)
{
	Relation	index;
	ScanKeyData skeys[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ProbeResult result = PROBE_NEW;
	int			i;

	/* a null key: the statement reports it */
	for (i = 0; i < probe->nkeys; i++)
	{
		if (nulls[probe->keycol[i]])
			return PROBE_NONE;
	}

	index = index_open(probe->index, AccessShareLock);
	slot = table_slot_create(target, NULL);
	for (i = 0; i < probe->nkeys; i++)
		ScanKeyEntryInitialize(&skeys[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, probe->eqcoll[i], probe->eqproc[i],
							   values[probe->keycol[i]]);
	scan = pgi_index_beginscan(target, index, plan->snapshot, probe->nkeys);
	index_rescan(scan, skeys, probe->nkeys, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		slot_getallattrs(slot);
		result = PROBE_SAME;
		for (i = 0; result == PROBE_SAME && i < plan->cols.ncols; i++)
		{
			AttrNumber	att = plan->cols.cols[i].attnum;
			bool		tnull = slot->tts_isnull[att - 1];

			if (tnull != nulls[i] ||
				(!tnull && !pgi_image_equal(probe->typlen[i], probe->byval[i],
											slot->tts_values[att - 1], values[i])))
				result = PROBE_CHANGED;
		}
		*tid = slot->tts_tid;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	return result;
}

/*
 * Write the changed or new row with its statement of one row; whether it
 * wrote it (not: another session changed the row or inserted the key since
 * the snapshot).
 */
static bool
write_one_row(UpsertPlan *plan, UpsertProbe *probe, Relation target,
			  ProbeResult found, Datum *values, bool *nulls, ItemPointer tid)
{
	TupleDesc	desc = RelationGetDescr(target);
	Datum	   *tvalues = palloc0(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *tnulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	PgiParams	params;
	int			i;

	/* the source's columns in a row of the target's type, the rest null */
	memset(tnulls, true, sizeof(bool) * Max(desc->natts, 1));
	for (i = 0; i < plan->cols.ncols; i++)
	{
		tvalues[plan->cols.cols[i].attnum - 1] = values[i];
		tnulls[plan->cols.cols[i].attnum - 1] = nulls[i];
	}
	memset(&params, 0, sizeof(params));
	pgi_params_add(&params, probe->rowtype,
				   heap_copy_tuple_as_datum(heap_form_tuple(desc, tvalues, tnulls),
											desc));
	if (found == PROBE_CHANGED)
	{
		pgi_params_add(&params, TIDOID, PointerGetDatum(tid));
		pgi_spi_run_cached(pgi_upsert_statement(plan, US_ONE_UPDATE,
												pgi_upsert_build_one_update),
						   &params, plan->relids, CURSOR_OPT_GENERIC_PLAN,
						   plan->snapshot, false, SPI_OK_UPDATE);
	}
	else
		pgi_spi_run_cached(pgi_upsert_statement(plan, US_ONE_INSERT,
												pgi_upsert_build_one_insert),
						   &params, plan->relids, CURSOR_OPT_GENERIC_PLAN,
						   plan->snapshot, false, SPI_OK_INSERT);
	return SPI_processed == 1;
}

/*
 * A call whose source is one row: true when the probe decided it, with the
 * counts, and nothing else to do.  False for anything else, which the
 * general statement then decides (in a new snapshot, under READ COMMITTED,
 * if a write here met another session's).  kept, the call shape's,
 * remembers the setup.
 */
bool
pgi_upsert_probe(UpsertPlan *plan, UpsertShape *kept, UpsertCounts *counts)
{
	UpsertProbe *probe;
	Relation	target;
	Relation	source = NULL;
	TupleTableSlot *row = NULL;
	Datum	   *values;
	bool	   *nulls;
	ProbeResult found = PROBE_NONE;
	ItemPointerData tid;
	bool		done;

	/* a batch not small against the table is not one row */
	if (!plan->probe && !(plan->source->keys != NULL && plan->source->rows == 1))
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
	target = table_open(plan->target->relid, NoLock);
	if (OidIsValid(plan->source->relid))
	{
		source = table_open(plan->source->relid, NoLock);
		row = table_slot_create(source, NULL);
		if (read_one_row(plan, probe, source, row, values, nulls))
			found = probe_target(plan, probe, target, values, nulls, &tid);
	}
	else if (plan->source->rows == 1 &&
			 pgi_upsert_json_one_row(plan->source->params.values[0],
									 probe->jsondesc, plan->snapshot,
									 values, nulls))
		found = probe_target(plan, probe, target, values, nulls, &tid);

	done = found == PROBE_SAME;
	if ((found == PROBE_CHANGED || found == PROBE_NEW) && probe->write &&
		!plan->dry_run)
	{
		done = write_one_row(plan, probe, target, found, values, nulls, &tid);
		/* another session's write since the snapshot: see it */
		if (!done && !IsolationUsesXactSnapshot())
			pgi_upsert_renew_snapshot(plan);
	}
	if (row != NULL)
		ExecDropSingleTupleTableSlot(row);
	if (source != NULL)
		table_close(source, NoLock);
	table_close(target, NoLock);
	if (!done)
		return false;

	if (found == PROBE_SAME)
	{
		ereport(DEBUG1,
				(errmsg_internal("pg_idempotent: the source's one row is in \"%s\" as it is (by a probe of its key's index): no statement ran",
								 plan->target->displayname)));
		counts->unchanged = 1;
	}
	else
	{
		ereport(DEBUG1,
				(errmsg_internal("pg_idempotent: the source's one row is %s in \"%s\" (by a probe of its key's index): written by a statement of one row",
								 found == PROBE_NEW ? "new" : "changed",
								 plan->target->displayname)));
		if (found == PROBE_NEW)
			counts->inserted = 1;
		else
			counts->updated = 1;
	}
	pgi_progress_step(&plan->progress,
					  errmsg("%s on %s: one row, %s (by a probe of the key's index)",
							 PGI_PROGRESS_OF(&plan->progress),
							 found == PROBE_SAME ? "unchanged" :
							 found == PROBE_NEW ? "inserted" : "updated"));
	return true;
}
