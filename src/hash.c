/*-------------------------------------------------------------------------
 *
 * hash.c
 *	  The two hash functions pg_idempotent's pinned formats rest on:
 *	  SHA-256, over the canonical encoding of values (idempotent_key,
 *	  stable_bucket), and MurmurHash3 x64-128, over each row of
 *	  table_fingerprint.  Both must give the same bytes on every platform
 *	  and in every version: docs/keys-and-fingerprints.md describes how
 *	  each is used, and test/vectors/idempotent_key.csv pins the keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef USE_OPENSSL
#include <openssl/err.h>
#include <openssl/evp.h>
#endif

#include "common/cryptohash.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"

#include "compat.h"
#include "pg_idempotent.h"

/*
 * Where the server was built with OpenSSL 3 (for EVP_MD_fetch and
 * EVP_DigestInit_ex2), hash through EVP directly, see pgi_sha256; otherwise
 * through pg_cryptohash.  The Makefile links libcrypto when the server was
 * built with OpenSSL.
 */
#if defined(USE_OPENSSL) && OPENSSL_VERSION_NUMBER >= 0x30000000L
#define PGI_SHA256_EVP
#endif

#ifdef PGI_SHA256_EVP

/*
 * SHA-256 through OpenSSL's EVP interface, with one digest context kept for
 * the life of the backend.  pg_cryptohash_create/init/final would do the
 * same work, but set a context up from scratch on every call: a palloc, a
 * ResourceOwner registration, EVP_MD_CTX_new, an implicit fetch of the
 * SHA-256 implementation by name (locks, string compares) and the matching
 * teardown.  For the short messages of idempotent_key that set-up costs
 * more than the hash itself.
 *
 * The context and the fetched EVP_MD are malloc'd by OpenSSL and belong to
 * no memory context or ResourceOwner, so nothing frees them under us at
 * (sub)transaction end, and an error cannot leave them in a state that
 * matters: every call starts with EVP_DigestInit_ex2, which resets the
 * context, and nothing between init and final can throw.  (A cached
 * pg_cryptohash_ctx would not do: it belongs to the ResourceOwner it was
 * created under.)  With the EVP_MD fetched once, re-initialising the
 * context costs at most a small malloc and free of the provider's hash
 * state, about half of what pg_cryptohash spends per call.
 */
static EVP_MD *sha256_md = NULL;
static EVP_MD_CTX *sha256_ctx = NULL;

pg_noreturn static void sha256_error(const char *call);

/* Report a failed OpenSSL call; none of them is expected to fail. */
static void
sha256_error(const char *call)
{
	unsigned long ecode = ERR_get_error();
	const char *reason = ecode ? ERR_reason_error_string(ecode) : NULL;

	/* leave nothing in the thread's error queue for the next OpenSSL user */
	ERR_clear_error();
	elog(ERROR, "could not compute SHA-256 hash: %s failed: %s", call,
		 reason ? reason : "no OpenSSL error reported");
}

/* SHA-256 of a byte string. */
void
pgi_sha256(const char *data, size_t len, uint8 *digest)
{
	unsigned int dlen;

	if (unlikely(sha256_ctx == NULL))
	{
		if (sha256_md == NULL)
		{
			sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
			if (sha256_md == NULL)
				sha256_error("EVP_MD_fetch");
		}
		sha256_ctx = EVP_MD_CTX_new();
		if (sha256_ctx == NULL)
			sha256_error("EVP_MD_CTX_new");
	}
	if (!EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL))
		sha256_error("EVP_DigestInit_ex2");
	if (!EVP_DigestUpdate(sha256_ctx, data, len))
		sha256_error("EVP_DigestUpdate");
	if (!EVP_DigestFinal_ex(sha256_ctx, digest, &dlen))
		sha256_error("EVP_DigestFinal_ex");
	Assert(dlen == PGI_SHA256_LEN);
}

#else							/* !PGI_SHA256_EVP */

/*
 * SHA-256 of a byte string, through PostgreSQL's cryptohash layer: its own
 * implementation when the server was built without OpenSSL.  The context
 * is registered with the current ResourceOwner, so it is made per call.
 */
void
pgi_sha256(const char *data, size_t len, uint8 *digest)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, PGI_SHA256_LEN) < 0)
		elog(ERROR, "could not compute SHA-256 hash: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

#endif							/* PGI_SHA256_EVP */

static inline uint64
rotl64(uint64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64
fmix64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

static inline uint64
load_le64(const unsigned char *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
#ifdef WORDS_BIGENDIAN
	v = pg_bswap64(v);
#endif
	return v;
}

/*
 * MurmurHash3 x64-128 (Austin Appleby, public domain) with seed 0, reading
 * little-endian words on every platform.
 */
void
pgi_murmur3_128(const unsigned char *data, size_t len, uint64 *out)
{
	const uint64 c1 = UINT64CONST(0x87c37b91114253d5);
	const uint64 c2 = UINT64CONST(0x4cf5ad432745937f);
	size_t		nblocks = len / 16;
	const unsigned char *tail = data + nblocks * 16;
	uint64		h1 = 0;
	uint64		h2 = 0;
	uint64		k1;
	uint64		k2;
	size_t		i;

	for (i = 0; i < nblocks; i++)
	{
		/*
		 * One value can be up to 1 GB, hashed in one call: let a cancel in
		 * every MiB rather than only between rows.
		 */
		if (unlikely((i & 0xFFFF) == 0xFFFF))
			CHECK_FOR_INTERRUPTS();
		k1 = load_le64(data + i * 16);
		k2 = load_le64(data + i * 16 + 8);

		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		h1 = rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;

		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		h2 = rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}

	k1 = 0;
	k2 = 0;
	switch (len & 15)
	{
		case 15:
			k2 ^= ((uint64) tail[14]) << 48;
			/* FALLTHROUGH */
		case 14:
			k2 ^= ((uint64) tail[13]) << 40;
			/* FALLTHROUGH */
		case 13:
			k2 ^= ((uint64) tail[12]) << 32;
			/* FALLTHROUGH */
		case 12:
			k2 ^= ((uint64) tail[11]) << 24;
			/* FALLTHROUGH */
		case 11:
			k2 ^= ((uint64) tail[10]) << 16;
			/* FALLTHROUGH */
		case 10:
			k2 ^= ((uint64) tail[9]) << 8;
			/* FALLTHROUGH */
		case 9:
			k2 ^= ((uint64) tail[8]);
			k2 *= c2;
			k2 = rotl64(k2, 33);
			k2 *= c1;
			h2 ^= k2;
			/* FALLTHROUGH */
		case 8:
			k1 ^= ((uint64) tail[7]) << 56;
			/* FALLTHROUGH */
		case 7:
			k1 ^= ((uint64) tail[6]) << 48;
			/* FALLTHROUGH */
		case 6:
			k1 ^= ((uint64) tail[5]) << 40;
			/* FALLTHROUGH */
		case 5:
			k1 ^= ((uint64) tail[4]) << 32;
			/* FALLTHROUGH */
		case 4:
			k1 ^= ((uint64) tail[3]) << 24;
			/* FALLTHROUGH */
		case 3:
			k1 ^= ((uint64) tail[2]) << 16;
			/* FALLTHROUGH */
		case 2:
			k1 ^= ((uint64) tail[1]) << 8;
			/* FALLTHROUGH */
		case 1:
			k1 ^= ((uint64) tail[0]);
			k1 *= c1;
			k1 = rotl64(k1, 31);
			k1 *= c2;
			h1 ^= k1;
	}

	h1 ^= (uint64) len;
	h2 ^= (uint64) len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	h2 += h1;
	out[0] = h1;
	out[1] = h2;
}
