/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  idempotent_key(VARIADIC "any") and stable_bucket("any", int).
 *
 * A key is a UUIDv8 (RFC 9562) made of the SHA-256 of a fixed domain
 * string, the argument count and the encode.c encoding of each argument.
 * Keys end up in generated columns and unique indexes, so the function must
 * stay IMMUTABLE in the strongest sense: the same arguments give the same
 * key in every session, on every platform and in every later version.
 * docs/keys-and-fingerprints.md is the specification and
 * test/vectors/idempotent_key.csv pins it.
 *
 * The argument types of a call site never change, so their encoders are
 * looked up once and kept in fn_extra; a call then costs one pass over the
 * values and one SHA-256.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "pg_idempotent.h"

PG_FUNCTION_INFO_V1(pgi_idempotent_key);
PG_FUNCTION_INFO_V1(pgi_stable_bucket);

/*
 * The domain string that starts every hashed message: it keeps these
 * hashes apart from any other use of the same encoding, and names the
 * algorithm version.  Part of the pinned format.
 */
#define KEY_DOMAIN		"pg_idempotent:idempotent_key:1"

/* What a call site of idempotent_key or stable_bucket keeps in fn_extra. */
typedef struct KeyCache
{
	bool		variadic;		/* called as f(VARIADIC array) */
	int			nargs;			/* arguments, when not variadic */
	PgiEncoder **encs;			/* one per argument, or the element's */
	Oid			elemtype;		/* variadic: the array's element type */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	StringInfoData buf;			/* reused message buffer */
} KeyCache;

static KeyCache *get_key_cache(FunctionCallInfo fcinfo, int nargs);
static void start_message(StringInfo buf, uint32 nargs);
static void hash_message(StringInfo buf, uint8 *digest);
static void hash_arguments(FunctionCallInfo fcinfo, int nargs,
						   uint8 *digest);

static KeyCache *
get_key_cache(FunctionCallInfo fcinfo, int nargs)
{
	KeyCache   *cache = (KeyCache *) fcinfo->flinfo->fn_extra;
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
	MemoryContext oldcxt;
	int			i;

	if (cache != NULL)
		return cache;

	cache = MemoryContextAllocZero(mcxt, sizeof(KeyCache));
	cache->variadic = get_fn_expr_variadic(fcinfo->flinfo);
	cache->nargs = nargs;
	if (cache->variadic)
	{
		Oid			arrtype = get_fn_expr_argtype(fcinfo->flinfo, 0);

		if (!OidIsValid(arrtype))
			elog(ERROR, "could not determine the type of the variadic argument");
		cache->elemtype = get_element_type(getBaseType(arrtype));
		if (!OidIsValid(cache->elemtype))
			elog(ERROR, "variadic argument is not an array");
		get_typlenbyvalalign(cache->elemtype, &cache->elemlen,
							 &cache->elembyval, &cache->elemalign);
		cache->encs = MemoryContextAlloc(mcxt, sizeof(PgiEncoder *));
		cache->encs[0] = pgi_encoder_create(cache->elemtype, mcxt);
	}
	else
	{
		cache->encs = MemoryContextAlloc(mcxt,
										 sizeof(PgiEncoder *) * Max(nargs, 1));
		for (i = 0; i < nargs; i++)
		{
			Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, i);

			if (!OidIsValid(typid))
				elog(ERROR, "could not determine the type of argument %d",
					 i + 1);
			cache->encs[i] = pgi_encoder_create(typid, mcxt);
		}
	}
	oldcxt = MemoryContextSwitchTo(mcxt);
	initStringInfo(&cache->buf);
	MemoryContextSwitchTo(oldcxt);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * The fixed start of every message: the domain, then the argument count.
 * Written with plain stores rather than resetStringInfo and two
 * appendBinaryStringInfo calls: this runs once per key, and like encode.c
 * we keep the buffer as a byte string, not NUL-terminated.
 */
#define KEY_PREFIX_LEN	(sizeof(KEY_DOMAIN) - 1 + sizeof(uint32))

static void
start_message(StringInfo buf, uint32 nargs)
{
	uint32		be = pg_hton32(nargs);

	buf->len = 0;
	if (unlikely(buf->maxlen <= (int) KEY_PREFIX_LEN))
		enlargeStringInfo(buf, KEY_PREFIX_LEN);
	memcpy(buf->data, KEY_DOMAIN, sizeof(KEY_DOMAIN) - 1);
	memcpy(buf->data + sizeof(KEY_DOMAIN) - 1, &be, sizeof(be));
	buf->len = KEY_PREFIX_LEN;
}

static void
hash_message(StringInfo buf, uint8 *digest)
{
	pgi_sha256(buf->data, buf->len, digest);
	/* the buffer lives as long as the call site: don't let one value bloat it */
	if (buf->maxlen > 64 * 1024)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(buf->data));

		pfree(buf->data);
		initStringInfo(buf);
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * Hash the arguments of an idempotent_key or stable_bucket call, nargs of
 * them starting at argument 0.
 */
static void
hash_arguments(FunctionCallInfo fcinfo, int nargs, uint8 *digest)
{
	KeyCache   *cache = get_key_cache(fcinfo, nargs);
	StringInfo	buf = &cache->buf;
	int			i;

	if (!cache->variadic)
	{
		start_message(buf, (uint32) nargs);
		for (i = 0; i < nargs; i++)
			pgi_encode_datum(buf, cache->encs[i], PG_GETARG_DATUM(i),
							 PG_ARGISNULL(i));
	}
	else
	{
		ArrayType  *arr;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		/*
		 * f(VARIADIC NULL::t[]) has no argument list at all: refuse it rather
		 * than invent a key that some real argument list might also get.
		 */
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("VARIADIC argument must not be null"),
					 errhint("Pass an array, possibly empty, or the values themselves.")));
		arr = PG_GETARG_ARRAYTYPE_P(0);
		/* elements are the arguments, in storage order, as format() does */
		deconstruct_array(arr, cache->elemtype, cache->elemlen,
						  cache->elembyval, cache->elemalign,
						  &elems, &nulls, &nelems);
		start_message(buf, (uint32) nelems);
		for (i = 0; i < nelems; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pgi_encode_datum(buf, cache->encs[0], elems[i], nulls[i]);
		}
	}
	hash_message(buf, digest);
}

/*
 * idempotent_key(VARIADIC "any") RETURNS uuid
 *
 * The first 16 bytes of the SHA-256, with the version nibble set to 8 and
 * the variant bits to 10: a UUIDv8, so the key is a valid RFC 9562 UUID.
 */
Datum
pgi_idempotent_key(PG_FUNCTION_ARGS)
{
	uint8		digest[PGI_SHA256_LEN];
	pg_uuid_t  *result;

	hash_arguments(fcinfo, PG_NARGS(), digest);
	result = palloc(sizeof(pg_uuid_t));
	memcpy(result->data, digest, UUID_LEN);
	result->data[6] = (result->data[6] & 0x0F) | 0x80;
	result->data[8] = (result->data[8] & 0x3F) | 0x80;
	PG_RETURN_UUID_P(result);
}

/*
 * stable_bucket(key "any", buckets int) RETURNS int
 *
 * The first 8 bytes of the SHA-256 behind idempotent_key(key), as a
 * big-endian unsigned integer, modulo buckets.  A NULL key is a key like
 * any other.
 */
Datum
pgi_stable_bucket(PG_FUNCTION_ARGS)
{
	uint8		digest[PGI_SHA256_LEN];
	uint64		h;
	int32		buckets;

	pgi_require_arg(fcinfo, 1, "buckets");
	buckets = PG_GETARG_INT32(1);
	if (buckets <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"buckets\" must be positive"),
				 errdetail("The number of buckets given was %d.", buckets)));

	hash_arguments(fcinfo, 1, digest);
	memcpy(&h, digest, sizeof(h));
	h = pg_ntoh64(h);
	PG_RETURN_INT32((int32) (h % (uint64) buckets));
}
