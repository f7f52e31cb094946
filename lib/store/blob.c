/*
 * Blob headers, codecs and blob writes (format v1, docs/datastore-format.md).
 */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "store_int.h"

/* ------------------------------------------------------------- header */

void mf__blob_hdr_encode(const mf__blob_hdr *h, uint8_t out[MF__BLOB_HDR_MIN])
{
    memset(out, 0, MF__BLOB_HDR_MIN);
    memcpy(out, MF__BLOB_MAGIC, 4);
    out[4] = MF__BLOB_VERSION;
    out[5] = h->kind;
    out[6] = h->codec;
    mf__le32_put(out + 8, h->hdr_len);
    mf__le64_put(out + 16, h->raw_len);
    mf__le64_put(out + 24, h->payload_len);
    mf__le64_put(out + 32, h->checksum);
    mf__le64_put(out + 56, mf__xxh64(out, 56, 0));
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int mf__blob_hdr_decode(mf__blob_hdr *h, const uint8_t *buf, size_t len,
                        const char *what)
{
    if (len < MF__BLOB_HDR_MIN)
        return mf__error_set(MF_ECORRUPT, "blob '%s': truncated header (%zu bytes)",
                             what, len);
    if (memcmp(buf, MF__BLOB_MAGIC, 4) != 0)
        return mf__error_set(MF_ECORRUPT, "blob '%s': bad magic", what);
    /* The checksum comes before the version so that a flipped version bit
     * reads as damage; every later version keeps bytes 0-7 and 56-63. */
    if (mf__le64_get(buf + 56) != mf__xxh64(buf, 56, 0))
        return mf__error_set(MF_ECORRUPT, "blob '%s': header checksum mismatch", what);
    if (buf[4] != MF__BLOB_VERSION)
        return mf__error_set(MF_EVERSION, "blob '%s': format version %u is not supported",
                             what, (unsigned)buf[4]);
    h->kind = buf[5];
    h->codec = buf[6];
    h->hdr_len = mf__le32_get(buf + 8);
    h->raw_len = mf__le64_get(buf + 16);
    h->payload_len = mf__le64_get(buf + 24);
    h->checksum = mf__le64_get(buf + 32);
    if (h->kind > MF__KIND_CHUNKS || h->codec > MF__CODEC_ZSTD || buf[7] != 0 ||
        !all_zero(buf + 12, 4) || !all_zero(buf + 40, 16))
        return mf__error_set(MF_ECORRUPT, "blob '%s': invalid header fields", what);
    if (h->hdr_len < MF__BLOB_HDR_MIN || h->hdr_len > MF__BLOB_HDR_MAX ||
        h->hdr_len % 8 != 0)
        return mf__error_set(MF_ECORRUPT, "blob '%s': invalid header length %u",
                             what, (unsigned)h->hdr_len);
    /* Sizes must fit in memory and in a file offset. */
    if (h->raw_len > (uint64_t)INT64_MAX || h->payload_len > (uint64_t)INT64_MAX - h->hdr_len ||
        h->raw_len > SIZE_MAX)
        return mf__error_set(MF_ECORRUPT, "blob '%s': invalid length", what);
    /* zstd expands at most 32768x (a 4-byte RLE block per 128 KiB), so a
     * larger claim is damage, caught before anything is allocated. */
    if (h->codec == MF__CODEC_RAW ? h->payload_len != h->raw_len
                                  : (h->payload_len == 0 || h->raw_len == 0 ||
                                     h->raw_len / 32768 > h->payload_len))
        return mf__error_set(MF_ECORRUPT, "blob '%s': inconsistent lengths", what);
    return MF_OK;
}

void mf__blob_dskey(const uint8_t key[MF_SHA256_LEN], char out[80])
{
    char hex[MF_SHA256_HEX + 1];
    mf__hex(key, MF_SHA256_LEN, hex);
    memcpy(out, "data/", 5);
    out[5] = hex[0];
    out[6] = hex[1];
    out[7] = '/';
    memcpy(out + 8, hex, MF_SHA256_HEX + 1);
}

/* ------------------------------------------------------------- codecs */

struct mf__codec_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *buf;
    size_t cap;
};

mf__codec_ctx *mf__codec_ctx_new(void)
{
    mf__codec_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, MF__ZSTD_LEVEL)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1))) {
        mf__codec_ctx_free(c);
        return NULL;
    }
    return c;
}

void mf__codec_ctx_free(mf__codec_ctx *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c->buf);
    free(c);
}

static int reserve(mf__codec_ctx *c, size_t n)
{
    if (c->cap >= n)
        return MF_OK;
    uint8_t *p = realloc(c->buf, n);
    if (!p)
        return mf__error_oom();
    c->buf = p;
    c->cap = n;
    return MF_OK;
}

#define PROBE_SAMPLES 4
#define PROBE_SAMPLE_LEN (8u << 10)

bool mf__codec_probe(mf__codec_ctx *c, const uint8_t *data, size_t len)
{
    /* Below this a full compression is as cheap as a probe. */
    if (len <= PROBE_SAMPLES * PROBE_SAMPLE_LEN * 2)
        return len >= 32;
    if (reserve(c, ZSTD_compressBound(PROBE_SAMPLE_LEN)) != MF_OK)
        return false;
    size_t in = 0, out = 0;
    size_t step = (len - PROBE_SAMPLE_LEN) / (PROBE_SAMPLES - 1);
    for (unsigned i = 0; i < PROBE_SAMPLES; i++) {
        size_t r = ZSTD_compress2(c->cctx, c->buf, c->cap, data + i * step,
                                  PROBE_SAMPLE_LEN);
        if (ZSTD_isError(r))
            return false;
        in += PROBE_SAMPLE_LEN;
        out += r;
    }
    return MF__ZSTD_PAYS(in, out);
}

int mf__codec_compress(mf__codec_ctx *c, const uint8_t *data, size_t len,
                       const uint8_t **out, size_t *out_len)
{
    int rc = reserve(c, ZSTD_compressBound(len));
    if (rc != MF_OK)
        return rc;
    size_t r = ZSTD_compress2(c->cctx, c->buf, c->cap, data, len);
    if (ZSTD_isError(r))
        return mf__error_set(MF_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(r));
    *out = c->buf;
    *out_len = r;
    return MF_OK;
}

int mf__codec_decompress(mf__codec_ctx *c, const uint8_t *src, size_t src_len,
                         uint8_t *dst, size_t raw_len, const char *what)
{
    static const uint8_t zmagic[4] = { 0x28, 0xB5, 0x2F, 0xFD };
    /* The frame must carry its content checksum (descriptor bit 2), or
     * zstd would have nothing to verify the output against. */
    if (src_len < 5 || memcmp(src, zmagic, 4) != 0 || !(src[4] & 0x04))
        return mf__error_set(MF_ECORRUPT, "blob '%s': invalid zstd frame header", what);
    unsigned long long fcs = ZSTD_getFrameContentSize(src, src_len);
    if (fcs != raw_len)
        return mf__error_set(MF_ECORRUPT, "blob '%s': zstd content size mismatch", what);
    if (ZSTD_findFrameCompressedSize(src, src_len) != src_len)
        return mf__error_set(MF_ECORRUPT, "blob '%s': zstd frame size mismatch", what);
    size_t r = ZSTD_decompressDCtx(c->dctx, dst, raw_len, src, src_len);
    if (ZSTD_isError(r))
        return mf__error_set(MF_ECORRUPT, "blob '%s': zstd: %s", what, ZSTD_getErrorName(r));
    if (r != raw_len)
        return mf__error_set(MF_ECORRUPT, "blob '%s': decompressed size mismatch", what);
    return MF_OK;
}

/* -------------------------------------------------------------- write */

/* Zeros for the padding of page-aligned headers, passed as an iovec so
 * that no header buffer of a page is built per blob. */
static const uint8_t zero_pad[MF__BLOB_HDR_PAGE];

int mf__blob_write(mf_store *st, const uint8_t key[MF_SHA256_LEN],
                   const mf__blob_hdr *h, const void *payload, bool canonical)
{
    uint8_t hdr[MF__BLOB_HDR_MIN];
    char dskey[80];
    mf__blob_hdr_encode(h, hdr);
    mf__blob_dskey(key, dskey);

    mf_ds_iovec iov[3];
    size_t n = 0;
    iov[n].base = hdr;
    iov[n++].len = MF__BLOB_HDR_MIN;
    if (h->hdr_len > MF__BLOB_HDR_MIN) {
        iov[n].base = zero_pad;
        iov[n++].len = h->hdr_len - MF__BLOB_HDR_MIN;
    }
    if (h->payload_len) {
        iov[n].base = payload;
        iov[n++].len = h->payload_len;
    }
    /* Durable at the task commit (one sync for all the blobs of a task).
     * Only the encoding a fresh write would choose may judge an existing
     * blob by its size (MF_DS_PUT_CONTENT repairs a short one). */
    uint32_t flags = MF_DS_PUT_IF_ABSENT | MF_DS_PUT_DEFER_SYNC;
    if (canonical)
        flags |= MF_DS_PUT_CONTENT;
    int rc = st->ds->put(st->ds, dskey, iov, n, flags);
    if (rc == MF_EEXISTS) {
        atomic_fetch_add(&st->blobs_existing, 1);
        return MF_OK;
    }
    if (rc != MF_OK)
        return mf__error_wrap("storing blob '%s'", dskey);
    atomic_fetch_add(&st->blobs_written, 1);
    atomic_fetch_add(&st->bytes_written, h->hdr_len + h->payload_len);
    return MF_OK;
}
