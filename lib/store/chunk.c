/*
 * Content-defined chunking (FastCDC-style gear hash) and chunk lists.
 *
 * Cut points are part of the format's dedupe behaviour, not of its
 * correctness: a reader never recomputes them. Changing the gear table or
 * the masks only costs dedupe against older blobs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

/* splitmix64 from a fixed seed: a reproducible table without 2 KiB of
 * literals (docs/datastore-format.md gives the seed). */
static void gear_init(void)
{
    uint64_t x = 0x6d66636463763101ull; /* "mfcdcv1\1" */
    for (int i = 0; i < 256; i++) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        gear[i] = z ^ (z >> 31);
    }
}

/* Normalised chunking (FastCDC level 2): a harder mask before the average
 * size and an easier one after it pull sizes towards the average. The
 * masks test the top bits, which depend on the last 64 bytes. */
#define MASK_S (((1ull << 22) - 1) << 42)
#define MASK_L (((1ull << 18) - 1) << 46)

size_t mf__cdc_cut_free(const uint8_t *p, size_t n)
{
    pthread_once(&gear_once, gear_init);
    if (n <= MF__CHUNK_MIN)
        return n;
    size_t end = n < MF__CHUNK_MAX ? n : MF__CHUNK_MAX;
    size_t normal = end < MF__CHUNK_AVG ? end : MF__CHUNK_AVG;
    uint64_t h = 0;
    size_t i = MF__CHUNK_MIN;
    for (; i < normal; i++) {
        h = (h << 1) + gear[p[i]];
        if (!(h & MASK_S))
            return i + 1;
    }
    for (; i < end; i++) {
        h = (h << 1) + gear[p[i]];
        if (!(h & MASK_L))
            return i + 1;
    }
    return end;
}

/* Aligned mode evaluates one candidate per 4 KiB; a cut probability of
 * 1/192 per candidate after the minimum gives 256 KiB + 192 * 4 KiB
 * = 1 MiB on average. */
#define ALIGNED_THRESHOLD ((uint32_t)(UINT32_MAX / 192u))

size_t mf__cdc_cut_aligned(const uint8_t *p, size_t n)
{
    pthread_once(&gear_once, gear_init);
    if (n <= MF__CHUNK_MIN)
        return n;
    size_t end = n < MF__CHUNK_MAX ? n : MF__CHUNK_MAX;
    for (size_t q = MF__CHUNK_MIN; q + MF__CHUNK_ALIGN <= end; q += MF__CHUNK_ALIGN) {
        const uint8_t *w = p + q - MF__CHUNK_WINDOW;
        uint64_t h = 0;
        for (unsigned i = 0; i < MF__CHUNK_WINDOW; i++)
            h = (h << 1) + gear[w[i]];
        if ((uint32_t)(h >> 32) < ALIGNED_THRESHOLD)
            return q;
    }
    /* No content cut: the largest aligned length, or all that is left. */
    if (end == n)
        return n;
    return end - end % MF__CHUNK_ALIGN;
}

/* --------------------------------------------------------- chunk list */

int mf__chunklist_encode(const mf__chunklist *cl, mf_buf *out)
{
    size_t len = MF__CL_HDR + cl->n * MF__CL_ENTRY;
    mf__buf_clear(out);
    int rc = mf__buf_grow(out, len);
    if (rc != MF_OK)
        return rc;
    uint8_t *p = (uint8_t *)out->ptr;
    memcpy(p, MF__CL_MAGIC, 4);
    mf__le32_put(p + 4, MF__CL_VERSION);
    mf__le64_put(p + 8, cl->total);
    mf__le32_put(p + 16, (uint32_t)cl->n);
    mf__le32_put(p + 20, cl->flags);
    for (size_t i = 0; i < cl->n; i++) {
        uint8_t *e = p + MF__CL_HDR + i * MF__CL_ENTRY;
        memcpy(e, cl->ents[i].key, MF_SHA256_LEN);
        mf__le64_put(e + MF_SHA256_LEN, cl->ents[i].len);
    }
    out->size = len;
    out->ptr[len] = '\0';
    return MF_OK;
}

int mf__chunklist_decode(mf__chunklist *cl, const uint8_t *p, size_t len,
                         const char *what)
{
    memset(cl, 0, sizeof *cl);
    if (len < MF__CL_HDR || memcmp(p, MF__CL_MAGIC, 4) != 0)
        return mf__error_set(MF_ECORRUPT, "chunk list '%s': bad magic or truncated", what);
    uint32_t version = mf__le32_get(p + 4);
    if (version != MF__CL_VERSION)
        return mf__error_set(MF_EVERSION, "chunk list '%s': version %u is not supported",
                             what, (unsigned)version);
    uint64_t total = mf__le64_get(p + 8);
    uint32_t n = mf__le32_get(p + 16);
    uint32_t flags = mf__le32_get(p + 20);
    /* The count is checked against the bytes present before allocating. */
    if (n == 0 || (len - MF__CL_HDR) / MF__CL_ENTRY != n ||
        (len - MF__CL_HDR) % MF__CL_ENTRY != 0 || total == 0 || total > (uint64_t)INT64_MAX)
        return mf__error_set(MF_ECORRUPT, "chunk list '%s': inconsistent size", what);
    if (flags & ~(uint32_t)MF__CL_FLAG_ALIGNED)
        return mf__error_set(MF_ECORRUPT, "chunk list '%s': unknown flags 0x%x", what,
                             (unsigned)flags);
    mf__chunk_ent *ents = malloc((size_t)n * sizeof *ents);
    if (!ents)
        return mf__error_oom();
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + MF__CL_HDR + (size_t)i * MF__CL_ENTRY;
        memcpy(ents[i].key, e, MF_SHA256_LEN);
        ents[i].len = mf__le64_get(e + MF_SHA256_LEN);
        ents[i].off = off;
        if (ents[i].len == 0 || ents[i].len > MF__CHUNK_READ_MAX ||
            ents[i].len > total - off) {
            free(ents);
            return mf__error_set(MF_ECORRUPT, "chunk list '%s': chunk %u length invalid",
                                 what, (unsigned)i);
        }
        off += ents[i].len;
    }
    if (off != total) {
        free(ents);
        return mf__error_set(MF_ECORRUPT, "chunk list '%s': chunk lengths do not add up",
                             what);
    }
    cl->total = total;
    cl->flags = flags;
    cl->n = n;
    cl->ents = ents;
    return MF_OK;
}

void mf__chunklist_clear(mf__chunklist *cl)
{
    if (!cl)
        return;
    free(cl->ents);
    memset(cl, 0, sizeof *cl);
}

size_t mf__chunklist_find(const mf__chunklist *cl, uint64_t off)
{
    size_t lo = 0, hi = cl->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (cl->ents[mid].off <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
