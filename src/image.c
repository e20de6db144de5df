/*-------------------------------------------------------------------------
 *
 * image.c
 *	  Values compared by binary image, the comparison record_image_eq (the
 *	  operator *=) makes and REFRESH MATERIALIZED VIEW CONCURRENTLY relies
 *	  on: 1.0 and 1.00 differ, -0 and 0 differ, NULL matches NULL, and every
 *	  type compares, with or without an equality operator.
 *
 *	  pgi_image_args is what such a function (_images_differ here,
 *	  _replace_image in replace_diff.c) keeps about its arguments.
 *	  _images_differ(VARIADIC "any") compares two rows given as one
 *	  argument list, the first half against the second, without building
 *	  either row: ROW(...) *<> ROW(...) forms two heap tuples per call and
 *	  deforms them again, which costs more than the join that feeds it on
 *	  an identical replay of a million rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_images_differ);

/*
 * What a VARIADIC "any" image function knows about its arguments, set up
 * on its first call from the call site's argument types and kept in
 * fn_extra: the argument types are fixed by the call site.
 */
PgiImageArgs *
pgi_image_args(FunctionCallInfo fcinfo, const char *fname)
{
	PgiImageArgs *ia = (PgiImageArgs *) fcinfo->flinfo->fn_extra;
	int			nargs = PG_NARGS();
	int			i;

	if (ia != NULL && ia->nargs == nargs)
		return ia;
	if (get_fn_expr_variadic(fcinfo->flinfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s does not take a VARIADIC array", fname)));
	ia = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
							offsetof(PgiImageArgs, arg) +
							sizeof(PgiImageArg) * Max(nargs, 1));
	ia->nargs = nargs;
	for (i = 0; i < nargs; i++)
	{
		ia->arg[i].typid = get_fn_expr_argtype(fcinfo->flinfo, i);
		if (!OidIsValid(ia->arg[i].typid))
			elog(ERROR, "could not determine the type of argument %d of %s",
				 i + 1, fname);
		get_typlenbyval(ia->arg[i].typid, &ia->arg[i].typlen, &ia->arg[i].byval);
	}
	fcinfo->flinfo->fn_extra = ia;
	return ia;
}

/* Whether two non-null values of one type have the same binary image. */
bool
pgi_image_equal(int16 typlen, bool byval, Datum a, Datum b)
{
	if (typlen == -1)
	{
		Size		len = toast_raw_datum_size(a);
		struct varlena *va;
		struct varlena *vb;
		bool		equal;

		/* as record_image_eq: no need to detoast if the lengths differ */
		if (len != toast_raw_datum_size(b))
			return false;
		va = PG_DETOAST_DATUM_PACKED(a);
		vb = PG_DETOAST_DATUM_PACKED(b);
		equal = memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), len - VARHDRSZ) == 0;
		if ((Pointer) va != DatumGetPointer(a))
			pfree(va);
		if ((Pointer) vb != DatumGetPointer(b))
			pfree(vb);
		return equal;
	}
	if (typlen == -2)
		return strcmp(DatumGetCString(a), DatumGetCString(b)) == 0;
	if (byval)
		return a == b;
	return memcmp(DatumGetPointer(a), DatumGetPointer(b), typlen) == 0;
}

/*
 * _images_differ(a1, ..., an, b1, ..., bn) RETURNS boolean: whether
 * ROW(a1, ..., an) *<> ROW(b1, ..., bn).  Never null; each ai must be of
 * bi's type, as record_image_ne requires of its rows' columns.
 */
Datum
pgi_images_differ(PG_FUNCTION_ARGS)
{
	PgiImageArgs *ia = pgi_image_args(fcinfo, "_images_differ");
	int			half = PG_NARGS() / 2;
	int			i;

	if (PG_NARGS() % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_images_differ takes an even number of arguments")));
	for (i = 0; i < half; i++)
	{
		bool		anull = PG_ARGISNULL(i);
		bool		bnull = PG_ARGISNULL(half + i);

		if (ia->arg[i].typid != ia->arg[half + i].typid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot compare dissimilar column types %s and %s at record column %d",
							format_type_be(ia->arg[i].typid),
							format_type_be(ia->arg[half + i].typid), i + 1)));
		if (anull || bnull)
		{
			if (anull != bnull)
				PG_RETURN_BOOL(true);
			continue;
		}
		if (!pgi_image_equal(ia->arg[i].typlen, ia->arg[i].byval,
							 PG_GETARG_DATUM(i), PG_GETARG_DATUM(half + i)))
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}
