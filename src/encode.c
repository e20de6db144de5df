/*-------------------------------------------------------------------------
 *
 * encode.c
 *	  The canonical byte encoding of a value, shared by idempotent_key,
 *	  stable_bucket and table_fingerprint.
 *
 * Keys built from this encoding are stored in generated columns and unique
 * indexes, so the encoding is a promise: the same value must encode to the
 * same bytes in every session, on every platform and in every future
 * version.  docs/keys-and-fingerprints.md describes it byte by byte and
 * test/vectors/idempotent_key.csv pins it; a change here that alters any
 * byte is a new version of the algorithm, never a fix.
 *
 * Invariants:
 *	- Injective: every value is a tag byte, then (except for NULL) a 4-byte
 *	  big-endian payload length, then the payload, so a sequence of encoded
 *	  values can be split back into its values.
 *	- Settings-independent: nothing depends on DateStyle, TimeZone,
 *	  extra_float_digits, bytea_output, search_path, lc_* or client_encoding.
 *	  We never use a type's text output; text is converted to UTF-8; binary
 *	  send output is produced with client_encoding set to UTF-8.
 *	- Equality-consistent within a family: values equal under the type's
 *	  default equality encode equally (1.0 and 1.00, -0 and 0, all NaNs,
 *	  '1 mon' and '30 days', 'a ' and 'a' as char(n)), and the type families
 *	  listed in the docs fold together (int2/int4/int8/numeric, float4/float8,
 *	  text/varchar/char(n)/name).
 *	- Domains encode as their base type; builtin and user types without a
 *	  family of their own are tagged with their schema and name (never an
 *	  OID, which differs between databases).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "compat.h"
#include "pg_idempotent.h"

/*
 * Tag bytes.  These values are part of the pinned format: never renumber.
 * Inside a jsonb payload the same tags are reused for JSON values (null,
 * boolean, number, string) plus the two JSON container tags.
 */
#define TAG_NULL		0x00
#define TAG_BOOL		0x01
#define TAG_NUMBER		0x02	/* int2, int4, int8, numeric */
#define TAG_FLOAT		0x03	/* float4, float8 */
#define TAG_TEXT		0x04	/* text, varchar, char(n), name, unknown */
#define TAG_BYTEA		0x05
#define TAG_DATE		0x06
#define TAG_TIMESTAMP	0x07
#define TAG_TIMESTAMPTZ 0x08
#define TAG_INTERVAL	0x09
#define TAG_UUID		0x0A
#define TAG_JSONB		0x0B
#define TAG_JSON		0x0C
#define TAG_ENUM		0x0D
#define TAG_ARRAY		0x10
#define TAG_RECORD		0x11
#define TAG_JSON_ARRAY	0x12
#define TAG_JSON_OBJECT 0x13
#define TAG_OTHER		0x7F

/* Sign bytes of a TAG_NUMBER payload. */
#define NUM_POS			0
#define NUM_NEG			1
#define NUM_NAN			2
#define NUM_PINF		3
#define NUM_NINF		4

/* How a type is encoded: one entry per family, plus the integer widths. */
typedef enum PgiFamily
{
	FAM_BOOL,
	FAM_INT2,
	FAM_INT4,
	FAM_INT8,
	FAM_NUMERIC,
	FAM_FLOAT4,
	FAM_FLOAT8,
	FAM_TEXT,					/* varlena text: text, varchar */
	FAM_BPCHAR,					/* varlena text whose trailing spaces don't
								 * count */
	FAM_NAME,
	FAM_CSTRING,				/* unknown-type literals, cstring */
	FAM_BYTEA,
	FAM_DATE,
	FAM_TIMESTAMP,
	FAM_TIMESTAMPTZ,
	FAM_INTERVAL,
	FAM_UUID,
	FAM_JSONB,
	FAM_JSON,
	FAM_ENUM,
	FAM_ARRAY,
	FAM_RECORD,
	FAM_OTHER
} PgiFamily;

struct PgiEncoder
{
	Oid			typid;			/* as given, possibly a domain */
	Oid			basetype;		/* domains resolved */
	PgiFamily	family;
	MemoryContext mcxt;			/* where this encoder and its children live */

	/* FAM_ENUM, FAM_OTHER: the type's schema and name, in UTF-8 */
	char	   *nspname;
	char	   *typname;

	/* FAM_OTHER */
	FmgrInfo	sendfn;

	/* FAM_ARRAY: the element type and its encoder, built on first use */
	Oid			elemtype;
	PgiEncoder *elem;

	/* FAM_RECORD: the row type last seen, with one encoder per column */
	Oid			rectypid;
	int32		rectypmod;
	TupleDesc	rectupdesc;
	PgiEncoder **atts;			/* NULL for dropped columns */
	Datum	   *values;
	bool	   *nulls;
};

static inline int begin_value(StringInfo buf, uint8 tag);
static inline void end_value(StringInfo buf, int lenpos);
static void append_utf8(StringInfo buf, const char *s, int len);
static void append_lstring(StringInfo buf, const char *s);
static void encode_int64(StringInfo buf, int64 v);
static void encode_numeric(StringInfo buf, Datum value);
static void encode_float8(StringInfo buf, float8 v);
static void encode_interval(StringInfo buf, const Interval *iv);
static void encode_jsonb(StringInfo buf, Jsonb *jb);
static void encode_jsonb_scalar(StringInfo buf, const JsonbValue *v);
static void encode_enum(StringInfo buf, PgiEncoder *enc, Datum value);
static void encode_array(StringInfo buf, PgiEncoder *enc, Datum value);
static void encode_record(StringInfo buf, PgiEncoder *enc, Datum value);
static void encode_other(StringInfo buf, PgiEncoder *enc, Datum value);
static void prepare_record(PgiEncoder *enc, Oid typid, int32 typmod);

/*
 * Room for n more bytes at the end of buf; returns where they go.  Every
 * encoded byte passes through here, so it is inline and checks the space
 * once per write instead of once per byte.  The buffer is a byte string,
 * not a C string: it is not kept NUL-terminated.
 */
static inline char *
reserve(StringInfo buf, int n)
{
	char	   *p;

	if (buf->len + n >= buf->maxlen)
		enlargeStringInfo(buf, n);
	p = buf->data + buf->len;
	buf->len += n;
	return p;
}

static inline void
append_byte(StringInfo buf, uint8 v)
{
	*reserve(buf, 1) = (char) v;
}

static inline void
append_bytes(StringInfo buf, const void *data, int len)
{
	memcpy(reserve(buf, len), data, len);
}

static inline void
append_u16(StringInfo buf, uint16 v)
{
	uint16		be = pg_hton16(v);

	memcpy(reserve(buf, sizeof(be)), &be, sizeof(be));
}

static inline void
append_u32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	memcpy(reserve(buf, sizeof(be)), &be, sizeof(be));
}

static inline void
append_u64(StringInfo buf, uint64 v)
{
	uint64		be = pg_hton64(v);

	memcpy(reserve(buf, sizeof(be)), &be, sizeof(be));
}

/*
 * Start a tagged value: the tag, then room for the payload length, which
 * end_value fills in once the payload is written.  Writing the length after
 * the fact lets nested values (arrays, rows, jsonb) stream into the buffer.
 */
static inline int
begin_value(StringInfo buf, uint8 tag)
{
	int			lenpos;

	append_byte(buf, tag);
	lenpos = buf->len;
	append_u32(buf, 0);
	return lenpos;
}

static inline void
end_value(StringInfo buf, int lenpos)
{
	uint32		be = pg_hton32((uint32) (buf->len - lenpos - 4));

	memcpy(buf->data + lenpos, &be, sizeof(be));
}

/*
 * Text in UTF-8, whatever the database encoding, so that a key computed in
 * a LATIN1 database equals the one computed in a UTF8 database.  SQL_ASCII
 * databases have no known encoding: their bytes are taken as they are.
 */
static void
append_utf8(StringInfo buf, const char *s, int len)
{
	int			dbenc = GetDatabaseEncoding();
	char	   *conv;

	if (dbenc == PG_UTF8 || dbenc == PG_SQL_ASCII)
	{
		append_bytes(buf, s, len);
		return;
	}
	conv = pg_server_to_any(s, len, PG_UTF8);
	if (conv == s)
		append_bytes(buf, s, len);
	else
	{
		append_bytes(buf, conv, strlen(conv));
		pfree(conv);
	}
}

/* A length-prefixed UTF-8 string (schema and type names). */
static void
append_lstring(StringInfo buf, const char *s)
{
	int			lenpos = buf->len;
	uint32		be;

	append_u32(buf, 0);
	append_utf8(buf, s, strlen(s));
	be = pg_hton32((uint32) (buf->len - lenpos - 4));
	memcpy(buf->data + lenpos, &be, sizeof(be));
}

/*
 * Integers are encoded as the exact number they are, in the same form as
 * numeric (see encode_numeric), so that int2, int4, int8 and numeric values
 * that compare equal encode equally.  Computing the base-10000 digits
 * directly keeps the common integer case free of numeric arithmetic.
 */
static void
encode_int64(StringInfo buf, int64 v)
{
	uint16		digits[5];		/* 2^63 has 19 decimal digits */
	int			ndigits = 0;
	int			low = 0;
	uint64		u;
	int			lenpos;
	int			i;

	lenpos = begin_value(buf, TAG_NUMBER);
	if (v == 0)
	{
		append_byte(buf, NUM_POS);
		append_u16(buf, 0);
		end_value(buf, lenpos);
		return;
	}
	u = (v < 0) ? -((uint64) v) : (uint64) v;
	while (u != 0)
	{
		digits[ndigits++] = (uint16) (u % 10000);
		u /= 10000;
	}
	/* digits[] is least significant first; trailing zero groups go */
	while (digits[low] == 0)
		low++;
	append_byte(buf, (v < 0) ? NUM_NEG : NUM_POS);
	append_u16(buf, (uint16) (int16) (ndigits - 1));
	for (i = ndigits - 1; i >= low; i--)
		append_u16(buf, digits[i]);
	end_value(buf, lenpos);
}

/*
 * numeric's stored format, which numeric.c keeps private.  It cannot change
 * (pg_upgrade keeps numeric columns as they are on disk), and reading it
 * directly spares every numeric value an fmgr call, a palloc and a copy
 * through numeric_send.  After the varlena header comes a uint16 header
 * word; for the long format an int16 weight follows; then the base-10000
 * digits, most significant first.
 */
#define NUMERIC_SIGN_MASK	0xC000
#define NUMERIC_NEG			0x4000
#define NUMERIC_SHORT		0x8000
#define NUMERIC_SPECIAL		0xC000
#define NUMERIC_EXT_SIGN_MASK 0xF000
#define NUMERIC_NAN			0xC000
#define NUMERIC_PINF		0xD000
#define NUMERIC_SHORT_SIGN_MASK 0x2000
#define NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUMERIC_SHORT_WEIGHT_MASK 0x003F

/*
 * A numeric as sign, weight and base-10000 digits with no leading or
 * trailing zero digits and no display scale: exactly what numeric equality
 * compares, so 1.0 and 1.00 (and -0 and 0) encode equally.
 */
static void
encode_numeric(StringInfo buf, Datum value)
{
	struct varlena *n = PG_DETOAST_DATUM_PACKED(value);
	const char *p = VARDATA_ANY(n);
	int			size = VARSIZE_ANY_EXHDR(n);
	uint16		header;
	int			weight;
	bool		neg;
	int			ndigits;
	int			first = 0;
	int			lenpos;
	int			i;
	uint16		digit;

	/* stored unaligned when the varlena header is short: read with memcpy */
#define DIGIT(i) \
	(memcpy(&digit, p + (i) * sizeof(uint16), sizeof(uint16)), digit)

	memcpy(&header, p, sizeof(uint16));
	lenpos = begin_value(buf, TAG_NUMBER);
	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL)
	{
		uint16		ext = header & NUMERIC_EXT_SIGN_MASK;

		append_byte(buf, ext == NUMERIC_NAN ? NUM_NAN :
					ext == NUMERIC_PINF ? NUM_PINF : NUM_NINF);
		append_u16(buf, 0);
		end_value(buf, lenpos);
		if ((Pointer) n != DatumGetPointer(value))
			pfree(n);
		return;
	}
	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SHORT)
	{
		neg = (header & NUMERIC_SHORT_SIGN_MASK) != 0;
		weight = (header & NUMERIC_SHORT_WEIGHT_MASK);
		if (header & NUMERIC_SHORT_WEIGHT_SIGN_MASK)
			weight |= ~NUMERIC_SHORT_WEIGHT_MASK;
		p += sizeof(uint16);
		size -= sizeof(uint16);
	}
	else
	{
		int16		w;

		neg = (header & NUMERIC_SIGN_MASK) == NUMERIC_NEG;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		p += sizeof(uint16) + sizeof(int16);
		size -= sizeof(uint16) + sizeof(int16);
	}
	ndigits = size / sizeof(uint16);

	while (first < ndigits && DIGIT(first) == 0)
	{
		first++;
		weight--;
	}
	while (ndigits > first && DIGIT(ndigits - 1) == 0)
		ndigits--;
	if (ndigits == first)
	{
		/* zero, whatever its sign and scale */
		append_byte(buf, NUM_POS);
		append_u16(buf, 0);
	}
	else
	{
		append_byte(buf, neg ? NUM_NEG : NUM_POS);
		append_u16(buf, (uint16) (int16) weight);
		for (i = first; i < ndigits; i++)
			append_u16(buf, DIGIT(i));
	}
#undef DIGIT
	end_value(buf, lenpos);
	if ((Pointer) n != DatumGetPointer(value))
		pfree(n);
}

/*
 * IEEE 754 binary64, big-endian.  float4 values are widened exactly, so a
 * float4 and a float8 encode equally when float48eq says they are equal.
 * -0 becomes 0 and every NaN one NaN, as float equality has it.
 */
static void
encode_float8(StringInfo buf, float8 v)
{
	union
	{
		float8		f;
		uint64		u;
	}			bits;
	int			lenpos;

	if (isnan(v))
		bits.u = UINT64CONST(0x7FF8000000000000);
	else if (v == 0.0)
		bits.u = 0;
	else
		bits.f = v;
	lenpos = begin_value(buf, TAG_FLOAT);
	append_u64(buf, bits.u);
	end_value(buf, lenpos);
}

/*
 * interval equality compares the total span with a month taken as 30 days
 * and a day as 24 hours, so '1 mon' = '30 days' = '720 hours'.  Encode that
 * span as whole days plus microseconds in [0, one day): the same canonical
 * value, without 128-bit arithmetic.
 */
static void
encode_interval(StringInfo buf, const Interval *iv)
{
	int64		days = (int64) iv->month * DAYS_PER_MONTH + iv->day;
	int64		usecs = iv->time;
	int			lenpos;

	days += usecs / USECS_PER_DAY;
	usecs %= USECS_PER_DAY;
	if (usecs < 0)
	{
		usecs += USECS_PER_DAY;
		days--;
	}
	lenpos = begin_value(buf, TAG_INTERVAL);
	append_u64(buf, (uint64) days);
	append_u64(buf, (uint64) usecs);
	end_value(buf, lenpos);
}

static void
encode_jsonb_scalar(StringInfo buf, const JsonbValue *v)
{
	int			lenpos;

	switch (v->type)
	{
		case jbvNull:
			append_byte(buf, TAG_NULL);
			break;
		case jbvBool:
			lenpos = begin_value(buf, TAG_BOOL);
			append_byte(buf, v->val.boolean ? 1 : 0);
			end_value(buf, lenpos);
			break;
		case jbvNumeric:
			encode_numeric(buf, NumericGetDatum(v->val.numeric));
			break;
		case jbvString:
			lenpos = begin_value(buf, TAG_TEXT);
			append_utf8(buf, v->val.string.val, v->val.string.len);
			end_value(buf, lenpos);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * jsonb is already canonical in storage (object keys sorted by length, then
 * bytes, duplicates removed), except that its numbers keep their display
 * scale: walk it and encode numbers the way numeric equality sees them.
 */
static void
encode_jsonb(StringInfo buf, Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int		   *stack = NULL;
	int			depth = 0;
	int			maxdepth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		CHECK_FOR_INTERRUPTS();
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				if (depth == maxdepth)
				{
					maxdepth = Max(8, maxdepth * 2);
					stack = stack ? repalloc(stack, sizeof(int) * maxdepth)
						: palloc(sizeof(int) * maxdepth);
				}
				/* a top-level scalar is stored as a one-element array */
				if (tok == WJB_BEGIN_ARRAY && v.val.array.rawScalar)
					stack[depth++] = -1;
				else
					stack[depth++] = begin_value(buf, tok == WJB_BEGIN_ARRAY ?
												 TAG_JSON_ARRAY : TAG_JSON_OBJECT);
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				depth--;
				if (stack[depth] >= 0)
					end_value(buf, stack[depth]);
				break;
			case WJB_KEY:
			case WJB_VALUE:
			case WJB_ELEM:
				encode_jsonb_scalar(buf, &v);
				break;
			default:
				elog(ERROR, "unexpected jsonb iterator token %d", (int) tok);
		}
	}
	if (stack)
		pfree(stack);
}

/*
 * An enum value is its type's schema and name and its label: enum OIDs
 * differ between databases, labels do not.
 */
static void
encode_enum(StringInfo buf, PgiEncoder *enc, Datum value)
{
	HeapTuple	tup;
	int			lenpos;

	tup = SearchSysCache1(ENUMOID, value);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid internal value for enum: %u",
						DatumGetObjectId(value))));
	lenpos = begin_value(buf, TAG_ENUM);
	append_lstring(buf, enc->nspname);
	append_lstring(buf, enc->typname);
	append_utf8(buf, NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel),
				strlen(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel)));
	end_value(buf, lenpos);
	ReleaseSysCache(tup);
}

/*
 * An array: its dimensions and lower bounds (array equality compares
 * them), then each element in storage order, each encoded by its own type's
 * rules, so int4[] and int8[] fold like their elements do.
 */
static void
encode_array(StringInfo buf, PgiEncoder *enc, Datum value)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	int			ndim = ARR_NDIM(arr);
	int		   *dims = ARR_DIMS(arr);
	int		   *lbs = ARR_LBOUND(arr);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	ArrayIterator iter;
	Datum		elem;
	bool		isnull;
	int			lenpos;
	int			i;

	if (enc->elem == NULL || enc->elemtype != elemtype)
	{
		enc->elemtype = elemtype;
		enc->elem = pgi_encoder_create(elemtype, enc->mcxt);
	}

	lenpos = begin_value(buf, TAG_ARRAY);
	append_u32(buf, (uint32) ndim);
	for (i = 0; i < ndim; i++)
	{
		append_u32(buf, (uint32) dims[i]);
		append_u32(buf, (uint32) lbs[i]);
	}
	iter = array_create_iterator(arr, 0, NULL);
	while (array_iterate(iter, &elem, &isnull))
	{
		CHECK_FOR_INTERRUPTS();
		pgi_encode_datum(buf, enc->elem, elem, isnull);
	}
	array_free_iterator(iter);
	end_value(buf, lenpos);
}

/* Describe the row type (typid, typmod) in enc, once per row type seen. */
static void
prepare_record(PgiEncoder *enc, Oid typid, int32 typmod)
{
	MemoryContext oldcxt;
	TupleDesc	desc;
	int			i;

	desc = lookup_rowtype_tupdesc(typid, typmod);
	oldcxt = MemoryContextSwitchTo(enc->mcxt);
	/* keep missing-attribute defaults: deforming an old row needs them */
	enc->rectupdesc = CreateTupleDescCopyConstr(desc);
	ReleaseTupleDesc(desc);
	enc->atts = palloc0(sizeof(PgiEncoder *) * Max(enc->rectupdesc->natts, 1));
	enc->values = palloc(sizeof(Datum) * Max(enc->rectupdesc->natts, 1));
	enc->nulls = palloc(sizeof(bool) * Max(enc->rectupdesc->natts, 1));
	MemoryContextSwitchTo(oldcxt);
	for (i = 0; i < enc->rectupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(enc->rectupdesc, i);

		if (!att->attisdropped)
			enc->atts[i] = pgi_encoder_create(att->atttypid, enc->mcxt);
	}
	enc->rectypid = typid;
	enc->rectypmod = typmod;
}

/*
 * A row: each live column in order, each by its own type's rules.  The row
 * type itself is not encoded (record equality compares only the columns),
 * so the same values in two tables encode equally.
 */
static void
encode_record(StringInfo buf, PgiEncoder *enc, Datum value)
{
	HeapTupleHeader th = DatumGetHeapTupleHeader(value);
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	int32		typmod = HeapTupleHeaderGetTypMod(th);
	HeapTupleData tuple;
	int			lenpos;
	int			i;

	if (enc->rectupdesc == NULL || enc->rectypid != typid ||
		enc->rectypmod != typmod)
		prepare_record(enc, typid, typmod);

	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, enc->rectupdesc, enc->values, enc->nulls);

	lenpos = begin_value(buf, TAG_RECORD);
	for (i = 0; i < enc->rectupdesc->natts; i++)
	{
		if (enc->atts[i] == NULL)
			continue;
		pgi_encode_datum(buf, enc->atts[i], enc->values[i], enc->nulls[i]);
	}
	end_value(buf, lenpos);
}

/*
 * Any other type: its schema and name, then its binary send output, which
 * is in network byte order and independent of DateStyle and friends.  Send
 * functions that emit text (pq_sendtext) convert it to the client encoding,
 * so run them with client_encoding set to UTF-8 (to the database encoding
 * in a SQL_ASCII database, where no conversion exists).
 */
static void
encode_other(StringInfo buf, PgiEncoder *enc, Datum value)
{
	int			client = pg_get_client_encoding();
	int			wanted = (GetDatabaseEncoding() == PG_SQL_ASCII) ?
		PG_SQL_ASCII : PG_UTF8;
	bytea	   *sent;
	int			lenpos;

	if (client == wanted)
		sent = SendFunctionCall(&enc->sendfn, value);
	else
	{
		if (PrepareClientEncoding(wanted) < 0 || SetClientEncoding(wanted) < 0)
			elog(ERROR, "could not switch client encoding to %s",
				 pg_encoding_to_char(wanted));
		PG_TRY();
		{
			sent = SendFunctionCall(&enc->sendfn, value);
		}
		PG_CATCH();
		{
			/* the encoding was in use, so its conversion is still cached */
			(void) SetClientEncoding(client);
			PG_RE_THROW();
		}
		PG_END_TRY();
		(void) SetClientEncoding(client);
	}

	lenpos = begin_value(buf, TAG_OTHER);
	append_lstring(buf, enc->nspname);
	append_lstring(buf, enc->typname);
	append_bytes(buf, VARDATA(sent), VARSIZE(sent) - VARHDRSZ);
	end_value(buf, lenpos);
	pfree(sent);
}

/*
 * Look up how values of typid are encoded.  The encoder and whatever it
 * caches later (element and column encoders) live in mcxt.
 */
PgiEncoder *
pgi_encoder_create(Oid typid, MemoryContext mcxt)
{
	PgiEncoder *enc = MemoryContextAllocZero(mcxt, sizeof(PgiEncoder));
	Oid			base = getBaseType(typid);
	char		typtype = get_typtype(base);

	enc->typid = typid;
	enc->basetype = base;
	enc->mcxt = mcxt;

	switch (base)
	{
		case BOOLOID:
			enc->family = FAM_BOOL;
			return enc;
		case INT2OID:
			enc->family = FAM_INT2;
			return enc;
		case INT4OID:
			enc->family = FAM_INT4;
			return enc;
		case INT8OID:
			enc->family = FAM_INT8;
			return enc;
		case NUMERICOID:
			enc->family = FAM_NUMERIC;
			return enc;
		case FLOAT4OID:
			enc->family = FAM_FLOAT4;
			return enc;
		case FLOAT8OID:
			enc->family = FAM_FLOAT8;
			return enc;
		case TEXTOID:
		case VARCHAROID:
			enc->family = FAM_TEXT;
			return enc;
		case BPCHAROID:
			enc->family = FAM_BPCHAR;
			return enc;
		case NAMEOID:
			enc->family = FAM_NAME;
			return enc;
		case UNKNOWNOID:
		case CSTRINGOID:
			enc->family = FAM_CSTRING;
			return enc;
		case BYTEAOID:
			enc->family = FAM_BYTEA;
			return enc;
		case DATEOID:
			enc->family = FAM_DATE;
			return enc;
		case TIMESTAMPOID:
			enc->family = FAM_TIMESTAMP;
			return enc;
		case TIMESTAMPTZOID:
			enc->family = FAM_TIMESTAMPTZ;
			return enc;
		case INTERVALOID:
			enc->family = FAM_INTERVAL;
			return enc;
		case UUIDOID:
			enc->family = FAM_UUID;
			return enc;
		case JSONBOID:
			enc->family = FAM_JSONB;
			return enc;
		case JSONOID:
			enc->family = FAM_JSON;
			return enc;
		case RECORDOID:
			enc->family = FAM_RECORD;
			return enc;
		case ANYARRAYOID:
			enc->family = FAM_ARRAY;
			return enc;
		default:
			break;
	}

	if (typtype == TYPTYPE_COMPOSITE)
	{
		enc->family = FAM_RECORD;
		return enc;
	}
	if (get_element_type(base) != InvalidOid)
	{
		enc->family = FAM_ARRAY;
		return enc;
	}

	/* enums and everything else are tagged with the type's name */
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(base));
		Form_pg_type typ;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for type %u", base);
		typ = (Form_pg_type) GETSTRUCT(tup);
		enc->typname = MemoryContextStrdup(mcxt, NameStr(typ->typname));
		enc->nspname = MemoryContextStrdup(mcxt,
										   get_namespace_name(typ->typnamespace));
		ReleaseSysCache(tup);
	}
	if (typtype == TYPTYPE_ENUM)
	{
		enc->family = FAM_ENUM;
		return enc;
	}
	if (typtype == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot encode a value of pseudo-type %s",
						format_type_be(base))));

	enc->family = FAM_OTHER;
	{
		Oid			sendfn;
		bool		isvarlena;

		/* raises 42883 for a type with no binary send function */
		getTypeBinaryOutputInfo(base, &sendfn, &isvarlena);
		fmgr_info_cxt(sendfn, &enc->sendfn, mcxt);
	}
	return enc;
}

/* Append the encoding of one value, using what enc has cached. */
void
pgi_encode_datum(StringInfo buf, PgiEncoder *enc, Datum value, bool isnull)
{
	int			lenpos;

	if (isnull)
	{
		append_byte(buf, TAG_NULL);
		return;
	}

	switch (enc->family)
	{
		case FAM_BOOL:
			lenpos = begin_value(buf, TAG_BOOL);
			append_byte(buf, DatumGetBool(value) ? 1 : 0);
			end_value(buf, lenpos);
			break;
		case FAM_INT2:
			encode_int64(buf, DatumGetInt16(value));
			break;
		case FAM_INT4:
			encode_int64(buf, DatumGetInt32(value));
			break;
		case FAM_INT8:
			encode_int64(buf, DatumGetInt64(value));
			break;
		case FAM_NUMERIC:
			encode_numeric(buf, value);
			break;
		case FAM_FLOAT4:
			encode_float8(buf, (float8) DatumGetFloat4(value));
			break;
		case FAM_FLOAT8:
			encode_float8(buf, DatumGetFloat8(value));
			break;
		case FAM_TEXT:
		case FAM_BPCHAR:
		case FAM_JSON:
			{
				struct varlena *t = PG_DETOAST_DATUM_PACKED(value);
				const char *s = VARDATA_ANY(t);
				int			len = VARSIZE_ANY_EXHDR(t);

				/* char(n) equality ignores trailing spaces; so do we */
				if (enc->family == FAM_BPCHAR)
					while (len > 0 && s[len - 1] == ' ')
						len--;
				lenpos = begin_value(buf, enc->family == FAM_JSON ?
									 TAG_JSON : TAG_TEXT);
				append_utf8(buf, s, len);
				end_value(buf, lenpos);
				if ((Pointer) t != DatumGetPointer(value))
					pfree(t);
			}
			break;
		case FAM_NAME:
			lenpos = begin_value(buf, TAG_TEXT);
			append_utf8(buf, NameStr(*DatumGetName(value)),
						strlen(NameStr(*DatumGetName(value))));
			end_value(buf, lenpos);
			break;
		case FAM_CSTRING:
			lenpos = begin_value(buf, TAG_TEXT);
			append_utf8(buf, DatumGetCString(value),
						strlen(DatumGetCString(value)));
			end_value(buf, lenpos);
			break;
		case FAM_BYTEA:
			{
				bytea	   *b = DatumGetByteaPP(value);

				lenpos = begin_value(buf, TAG_BYTEA);
				append_bytes(buf, VARDATA_ANY(b),
							 VARSIZE_ANY_EXHDR(b));
				end_value(buf, lenpos);
				if ((Pointer) b != DatumGetPointer(value))
					pfree(b);
			}
			break;
		case FAM_DATE:
			lenpos = begin_value(buf, TAG_DATE);
			append_u32(buf, (uint32) DatumGetDateADT(value));
			end_value(buf, lenpos);
			break;
		case FAM_TIMESTAMP:
		case FAM_TIMESTAMPTZ:
			/* both are int64 microseconds since 2000-01-01 (UTC for tz) */
			lenpos = begin_value(buf, enc->family == FAM_TIMESTAMP ?
								 TAG_TIMESTAMP : TAG_TIMESTAMPTZ);
			append_u64(buf, (uint64) DatumGetInt64(value));
			end_value(buf, lenpos);
			break;
		case FAM_INTERVAL:
			encode_interval(buf, DatumGetIntervalP(value));
			break;
		case FAM_UUID:
			lenpos = begin_value(buf, TAG_UUID);
			append_bytes(buf,
						 (char *) DatumGetUUIDP(value)->data,
						 UUID_LEN);
			end_value(buf, lenpos);
			break;
		case FAM_JSONB:
			lenpos = begin_value(buf, TAG_JSONB);
			encode_jsonb(buf, DatumGetJsonbP(value));
			end_value(buf, lenpos);
			break;
		case FAM_ENUM:
			encode_enum(buf, enc, value);
			break;
		case FAM_ARRAY:
			check_stack_depth();
			encode_array(buf, enc, value);
			break;
		case FAM_RECORD:
			check_stack_depth();
			encode_record(buf, enc, value);
			break;
		case FAM_OTHER:
			encode_other(buf, enc, value);
			break;
	}
}

/*
 * The one-off form, for callers that encode a single value: the lookups
 * are redone on every call, so loops should keep a PgiEncoder instead.
 */
void
pgi_encode_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	PgiEncoder *enc;

	if (isnull)
	{
		append_byte(buf, TAG_NULL);
		return;
	}
	enc = pgi_encoder_create(typid, CurrentMemoryContext);
	pgi_encode_datum(buf, enc, value, false);
}
