/*-------------------------------------------------------------------------
 *
 * jsonrows.c
 *	  A JSON array's objects read as rows of given column types, with the
 *	  values jsonb_to_recordset gives them, at a constant memory cost.
 *
 *	  jsonb_to_recordset keeps every row's intermediate values (the text of
 *	  each value, its parsed form) until the call ends: a batch of a million
 *	  objects grows the backend by hundreds of megabytes, and the time to
 *	  fault that memory in was a quarter of the time to read the batch.  The
 *	  reader here converts each value exactly as jsonb_to_recordset converts
 *	  a scalar column (the value as text, quotes stripped from a string, into
 *	  the type's input function with the column's typmod; a jsonb column
 *	  takes the value as it is, a json column its text), in a memory context
 *	  reset per row; where the text would only be read back to a value known
 *	  without it (an integer, a numeric, a text, an ISO date), the value is
 *	  made directly (json_value_fast).  A column list with a domain,
 *	  composite or array column is read by jsonb_to_recordset itself: those
 *	  conversions are its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "upsert.h"

/*
 * The column types whose value is made without the text of the JSON value
 * in the cases where the result is provably the input function's: see
 * json_value_fast.
 */
typedef enum JsonRowFast
{
	JRF_NONE,
	JRF_INT2,
	JRF_INT4,
	JRF_INT8,
	JRF_NUMERIC,
	JRF_TEXT,
	JRF_DATE
} JsonRowFast;

/* how one column's value is made from a JSON value */
typedef struct JsonRowColumn
{
	const char *name;
	int			namelen;
	Oid			typid;
	int32		typmod;
	Oid			typioparam;
	FmgrInfo	input;
	JsonRowFast fast;
} JsonRowColumn;

typedef struct JsonRowReader
{
	TupleDesc	desc;
	JsonRowColumn *cols;
	Numeric		zero;			/* for json_value_fast's numerics */
	MemoryContext rowcxt;		/* reset before each object */
} JsonRowReader;

/*
 * Whether jsonb_to_recordset converts a value of this type as a scalar:
 * through the type's input function, from the value's text.  It builds
 * domains, composites and arrays itself, from JSON objects and arrays.
 */
static bool
json_scalar_type(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		scalar;

	if (typid == RECORDOID)
		return false;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	scalar = typ->typtype != TYPTYPE_DOMAIN &&
		typ->typtype != TYPTYPE_COMPOSITE &&
		!IsTrueArrayType(typ);
	ReleaseSysCache(tup);
	return scalar;
}

/*
 * A reader of objects into rows of desc, its state in cxt; NULL when a
 * column is not a scalar (the caller then uses jsonb_to_recordset).
 */
static JsonRowReader *
json_rows_begin(TupleDesc desc, MemoryContext cxt)
{
	JsonRowReader *r;
	MemoryContext old;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && !json_scalar_type(att->atttypid))
			return NULL;
	}
	r = MemoryContextAllocZero(cxt, sizeof(JsonRowReader));
	r->desc = desc;
	r->cols = MemoryContextAllocZero(cxt,
									 sizeof(JsonRowColumn) * Max(desc->natts, 1));
	r->rowcxt = AllocSetContextCreate(cxt, "pg_idempotent JSON row",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	r->zero = int64_to_numeric(0);
	MemoryContextSwitchTo(old);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		JsonRowColumn *col = &r->cols[i];
		Oid			infunc;

		if (att->attisdropped)
			continue;
		col->name = MemoryContextStrdup(cxt, NameStr(att->attname));
		col->namelen = strlen(col->name);
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		getTypeInputInfo(col->typid, &infunc, &col->typioparam);
		fmgr_info_cxt(infunc, &col->input, cxt);
		switch (col->typid)
		{
			case INT2OID:
				col->fast = JRF_INT2;
				break;
			case INT4OID:
				col->fast = JRF_INT4;
				break;
			case INT8OID:
				col->fast = JRF_INT8;
				break;
			case NUMERICOID:
				col->fast = JRF_NUMERIC;
				break;
			case TEXTOID:
				col->fast = JRF_TEXT;
				break;
			case DATEOID:
				col->fast = JRF_DATE;
				break;
			default:
				col->fast = JRF_NONE;
				break;
		}
	}
	return r;
}

/*
 * "YYYY-MM-DD" exactly, a valid date of years 1 to 9999: the ISO 8601 form,
 * which date_in reads as year, month, day whatever DateStyle says; into
 * *date, as date_in computes it.  Anything else is left to date_in.
 */
static bool
json_iso_date(const char *str, int len, DateADT *date)
{
	int			y,
				m,
				d,
				i;

	if (len != 10 || str[4] != '-' || str[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
	{
		if (i != 4 && i != 7 && (str[i] < '0' || str[i] > '9'))
			return false;
	}
	y = (str[0] - '0') * 1000 + (str[1] - '0') * 100 + (str[2] - '0') * 10 + (str[3] - '0');
	m = (str[5] - '0') * 10 + (str[6] - '0');
	d = (str[8] - '0') * 10 + (str[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > day_tab[isleap(y)][m - 1])
		return false;
	*date = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return true;
}

/*
 * The value of a column with a fast path, where it is sure to be what the
 * input function makes of the value's text: an integer given as a JSON
 * number without a fractional part (numeric_out prints it as its digits,
 * which int2in, int4in and int8in read back) that fits the type (and, for
 * int8, an int4: numeric_int4_opt_error is the conversion every version
 * offers without raising); a numeric given as a JSON number: numeric_in
 * reads numeric_out's digits back to the same value and display scale and
 * stores it in normal form (make_result), which the sum with zero makes
 * too, and then applies the typmod, as numeric() does, with the same
 * rounding and the same error past its precision (numeric() keeps the
 * bytes of a value in normal form, so the stored image is numeric_in's:
 * json_rows.sql compares them); a text given as a JSON string (textin copies
 * the string, which jsonb never lets hold a NUL); an ISO date given as a
 * string.  False otherwise: the caller then takes the text path, which
 * also gives a value out of range the input function's own error.
 */
static bool
json_value_fast(JsonRowReader *r, JsonRowColumn *col, JsonbValue *v,
				Datum *result)
{
	if (v->type == jbvNumeric && col->fast == JRF_NUMERIC)
	{
		Numeric		n = v->val.numeric;

		if (numeric_is_nan(n) || numeric_is_inf(n))
			return false;
		n = numeric_add_opt_error(n, r->zero, NULL);
		*result = DirectFunctionCall2(numeric, NumericGetDatum(n),
									  Int32GetDatum(col->typmod));
		return true;
	}
	if (v->type == jbvNumeric &&
		(col->fast == JRF_INT2 || col->fast == JRF_INT4 || col->fast == JRF_INT8))
	{
		Numeric		n = v->val.numeric;
		bool		error = false;
		int32		i;

		if (numeric_is_nan(n) || numeric_is_inf(n) ||
			DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) != 0)
			return false;
		i = numeric_int4_opt_error(n, &error);
		if (error)
			return false;
		if (col->fast == JRF_INT2)
		{
			if (i < PG_INT16_MIN || i > PG_INT16_MAX)
				return false;
			*result = Int16GetDatum((int16) i);
		}
		else if (col->fast == JRF_INT4)
			*result = Int32GetDatum(i);
		else
			*result = Int64GetDatum((int64) i);
		return true;
	}
	if (v->type == jbvString && col->fast == JRF_TEXT)
	{
		*result = PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
														   v->val.string.len));
		return true;
	}
	if (v->type == jbvString && col->fast == JRF_DATE)
	{
		DateADT		date;

		if (!json_iso_date(v->val.string.val, v->val.string.len, &date))
			return false;
		*result = DateADTGetDatum(date);
		return true;
	}
	return false;
}

/*
 * One value, not null, as jsonb_to_recordset's scalar conversion makes it
 * (populate_scalar in jsonfuncs.c, which this follows case by case).
 */
static Datum
json_value_datum(JsonRowReader *r, JsonRowColumn *col, JsonbValue *v)
{
	char	   *str;
	Datum		fast;

	if (col->fast != JRF_NONE && json_value_fast(r, col, v, &fast))
		return fast;
	if (col->typid == JSONBOID)
		return JsonbPGetDatum(JsonbValueToJsonb(v));
	if (col->typid == JSONOID && v->type != jbvBinary)
	{
		/* a scalar keeps its JSON form: a string its quotes */
		Jsonb	   *jb = JsonbValueToJsonb(v);

		str = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	else if (v->type == jbvString)
		str = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvBool)
		str = pstrdup(v->val.boolean ? "true" : "false");
	else if (v->type == jbvNumeric)
		str = DatumGetCString(DirectFunctionCall1(numeric_out,
												  NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvBinary)
		str = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	else
		elog(ERROR, "unrecognized jsonb type: %d", (int) v->type);
	return InputFunctionCall(&col->input, str, col->typioparam, col->typmod);
}

/*
 * One object's row: values and nulls by position in the reader's desc, in
 * the reader's row context (valid until the next object is read).  A key
 * the object lacks, or holds as null, is a null.
 */
static void
json_rows_read(JsonRowReader *r, JsonbContainer *obj,
			   Datum *values, bool *nulls)
{
	MemoryContext old;
	int			i;

	MemoryContextReset(r->rowcxt);
	old = MemoryContextSwitchTo(r->rowcxt);
	for (i = 0; i < r->desc->natts; i++)
	{
		JsonRowColumn *col = &r->cols[i];
		JsonbValue	buf;
		JsonbValue *v;

		nulls[i] = true;
		values[i] = (Datum) 0;
		if (col->name == NULL)
			continue;
		v = getKeyJsonValueFromContainer(obj, col->name, col->namelen, &buf);
		if (v == NULL || v->type == jbvNull)
			continue;
		values[i] = json_value_datum(r, col, v);
		nulls[i] = false;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Every object of the array rows into a tuplestore of rows of desc, made in
 * storecxt; NULL where jsonb_to_recordset must read them (a column that is
 * not a scalar).  An element that is not an object is refused with
 * jsonb_to_recordset's error.  Nothing else outlives the call.
 */
Tuplestorestate *
pgi_json_rows_store(Jsonb *rows, TupleDesc desc, bool random_access,
					MemoryContext storecxt)
{
	JsonRowReader *r;
	Tuplestorestate *store;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext old;

	r = json_rows_begin(desc, CurrentMemoryContext);
	if (r == NULL)
		return NULL;
	values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	old = MemoryContextSwitchTo(storecxt);
	store = tuplestore_begin_heap(random_access, false, work_mem);
	MemoryContextSwitchTo(old);

	it = JsonbIteratorInit(&rows->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		CHECK_FOR_INTERRUPTS();
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument of %s must be an array of objects",
							"jsonb_to_recordset")));
		json_rows_read(r, v.val.binary.data, values, nulls);
		tuplestore_putvalues(store, desc, values, nulls);
	}
	MemoryContextDelete(r->rowcxt);
	return store;
}
