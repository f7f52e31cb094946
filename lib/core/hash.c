/* SHA-256 through OpenSSL EVP (uses SHA-NI where the CPU has it) and XXH64,
 * the fast non-cryptographic checksum of raw blobs. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct mf__sha256_ctx {
    EVP_MD_CTX *md;
};

/* OpenSSL 3 looks the algorithm up in its provider on every implicit use
 * (EVP_sha256()); the first lookup also loads the provider (~2 ms). Fetch it
 * once per process and reuse it. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

static void md_fetch(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, md_fetch);
    return md_sha256 ? md_sha256 : EVP_sha256();
}

void mf__sha256_warm(void)
{
    (void)sha256_md();
}

int mf__sha256(const void *data, size_t len, uint8_t out[MF_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, sha256_md(), NULL) != 1 || n != MF_SHA256_LEN)
        return mf__error_set(MF_ERROR, "SHA-256 failed in OpenSSL");
    return MF_OK;
}

mf__sha256_ctx *mf__sha256_begin(void)
{
    mf__sha256_ctx *c = malloc(sizeof *c);
    if (!c) {
        mf__error_oom();
        return NULL;
    }
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, sha256_md(), NULL) != 1) {
        EVP_MD_CTX_free(c->md);
        free(c);
        mf__error_oom();
        return NULL;
    }
    return c;
}

int mf__sha256_update(mf__sha256_ctx *ctx, const void *data, size_t len)
{
    if (EVP_DigestUpdate(ctx->md, data, len) != 1)
        return mf__error_set(MF_ERROR, "SHA-256 update failed in OpenSSL");
    return MF_OK;
}

int mf__sha256_end(mf__sha256_ctx *ctx, uint8_t out[MF_SHA256_LEN])
{
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(ctx->md, out, &n) == 1 && n == MF_SHA256_LEN;
    mf__sha256_abort(ctx);
    return ok ? MF_OK : mf__error_set(MF_ERROR, "SHA-256 final failed in OpenSSL");
}

void mf__sha256_abort(mf__sha256_ctx *ctx)
{
    if (!ctx)
        return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

void mf__hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int mf__unhex(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return mf__error_set(MF_EINVAL, "'%.80s' is not %zu lowercase hex digits",
                             hex ? hex : "(null)", 2 * n);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return mf__error_set(MF_EINVAL, "'%.80s' is not lowercase hex", hex);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return MF_OK;
}

/* XXH64, written from the published specification (xxhash.com, "xxHash
 * fast digest algorithm", XXH64). Little-endian reads via memcpy. */
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t val)
{
    acc ^= round64(0, val);
    return acc * P1 + P4;
}

uint64_t mf__xxh64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = round64(v1, rd64(p));
            v2 = round64(v2, rd64(p + 8));
            v3 = round64(v3, rd64(p + 16));
            v4 = round64(v4, rd64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = merge64(h, v1);
        h = merge64(h, v2);
        h = merge64(h, v3);
        h = merge64(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= round64(0, rd64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)rd32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}
