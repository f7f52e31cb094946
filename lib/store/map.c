/*
 * Mapping a value as one contiguous read-only region.
 *
 * Zero-copy needs every blob raw with a header length and value offset
 * that are page multiples, in a datastore with local files: then the
 * chunks' payloads are mapped side by side, with MAP_FIXED, into one
 * address range reserved PROT_NONE up front (so nothing else can land in
 * between). Anything else is read, verified, into an anonymous mapping
 * that is then made read-only, so the two cases look the same to callers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store_int.h"

struct mf__mapping {
    void *base;
    size_t len; /* mapped bytes (a page multiple), 0 for an empty value */
};

static size_t round_up(uint64_t n, size_t page)
{
    return (size_t)((n + page - 1) / page * page);
}

/* Map chunk `i` (or the whole single blob) at base + off; *mapped tells
 * whether the file was mapped (else the bytes were copied in). */
static int place(mf_store *st, mf__value *v, mf__bsrc *b, uint8_t *at, uint64_t len,
                 bool *mapped)
{
    *mapped = false;
    if (b->fd >= 0 && b->h.codec == MF__CODEC_RAW && b->h.hdr_len % st->page == 0) {
        void *p = mmap(at, len, PROT_READ, MAP_SHARED | MAP_FIXED, b->fd,
                       (off_t)b->h.hdr_len);
        if (p != MAP_FAILED) {
            *mapped = true;
            return MF_OK;
        }
    }
    /* Copy in: make the pages writable for the read, read-only after. */
    size_t span = round_up(len, st->page);
    void *p = mmap(at, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return mf__error_errno(errno, "mapping value", v->top.dskey);
    mf__codec_ctx *cc = mf__store_cc_get(st);
    int rc = cc ? mf__bsrc_load(b, cc, at) : MF_ENOMEM;
    mf__store_cc_put(st, cc);
    if (rc == MF_OK && mprotect(at, span, PROT_READ) != 0)
        rc = mf__error_errno(errno, "protecting mapping of", v->top.dskey);
    return rc;
}

typedef struct map_ctx {
    mf_store *st;
    mf__value *v;
    uint8_t *base;
    atomic_int copied; /* chunks that had to be copied in */
} map_ctx;

static int map_chunk(map_ctx *mc, const mf__chunk_ent *e)
{
    mf__bsrc b;
    bool mapped;
    int rc = mf__bsrc_open(&b, mc->st, e->key);
    if (rc == MF_ENOTFOUND)
        return mf__error_set(MF_ECORRUPT, "chunked value '%s': chunk '%s' is missing",
                             mc->v->top.dskey, b.dskey);
    if (rc != MF_OK)
        return rc;
    if (b.h.kind != MF__KIND_DATA || b.h.raw_len != e->len)
        rc = mf__error_set(MF_ECORRUPT, "chunked value '%s': chunk '%s' does not match the list",
                           mc->v->top.dskey, b.dskey);
    else
        rc = place(mc->st, mc->v, &b, mc->base + e->off, e->len, &mapped);
    mf__bsrc_close(&b);
    if (rc == MF_OK && !mapped)
        atomic_fetch_add(&mc->copied, 1);
    return rc;
}

/* Opening a chunk file and checking its header costs more than mapping
 * it, so chunks are placed by the worker pool; each MAP_FIXED replaces
 * only its own part of the reserved range. */
static int map_worker(mf__pool *pool, void *arg, unsigned worker)
{
    map_ctx *mc = arg;
    int rc = MF_OK;
    size_t i;
    (void)worker;
    while (rc == MF_OK && (i = mf__pool_next(pool)) != SIZE_MAX)
        rc = map_chunk(mc, &mc->v->cl.ents[i]);
    return rc;
}

static int map_files(mf_store *st, mf__value *v, uint8_t *base, bool *all_mapped)
{
    bool mapped;
    if (!v->chunked) {
        int rc = place(st, v, &v->top, base, v->size, &mapped);
        *all_mapped = mapped;
        return rc;
    }
    map_ctx mc = { st, v, base, 0 };
    unsigned nthreads = mf__pool_threads(v->cl.n, MF__POOL_CPU);
    int rc = mf__pool_run(v->cl.n, nthreads, map_worker, &mc);
    *all_mapped = atomic_load(&mc.copied) == 0;
    return rc;
}

static bool offsets_aligned(const mf__value *v, size_t page)
{
    if (!v->chunked)
        return true;
    for (size_t i = 0; i < v->cl.n; i++)
        if (v->cl.ents[i].off % page != 0)
            return false;
    return true;
}

int mf__store_map(mf_store *st, const uint8_t key[MF_SHA256_LEN], mf__mapping **out,
                  const void **ptr, uint64_t *len, int *zero_copy)
{
    static const char empty[1];
    *out = NULL;
    if (zero_copy)
        *zero_copy = 0;
    mf__value v;
    int rc = mf__value_open(&v, st, key);
    if (rc != MF_OK)
        return rc;
    mf__mapping *m = calloc(1, sizeof *m);
    if (!m) {
        mf__value_close(&v);
        return mf__error_oom();
    }
    if (v.size == 0) {
        *ptr = empty;
        *len = 0;
        *out = m;
        mf__value_close(&v);
        return MF_OK;
    }
    if (v.size > SIZE_MAX - st->page) {
        rc = mf__error_set(MF_ENOMEM, "blob '%s': value too large to map", v.top.dskey);
        goto fail;
    }
    m->len = round_up(v.size, st->page);
    /* Reserve the whole range first so that the pieces land contiguously. */
    m->base = mmap(NULL, m->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m->base == MAP_FAILED) {
        m->base = NULL;
        rc = mf__error_errno(errno, "reserving a mapping for", v.top.dskey);
        goto fail;
    }
    bool all_mapped = false;
    if (st->can_map && v.top.fd >= 0 && offsets_aligned(&v, st->page)) {
        rc = map_files(st, &v, m->base, &all_mapped);
    } else {
        void *p = mmap(m->base, m->len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            rc = mf__error_errno(errno, "mapping value", v.top.dskey);
        } else {
            mf__advise_huge(m->base, m->len);
            rc = mf__value_read(&v, 0, v.size, m->base);
        }
        if (rc == MF_OK && mprotect(m->base, m->len, PROT_READ) != 0)
            rc = mf__error_errno(errno, "protecting mapping of", v.top.dskey);
    }
    if (rc != MF_OK)
        goto fail;
    *ptr = m->base;
    *len = v.size;
    if (zero_copy)
        *zero_copy = all_mapped ? 1 : 0;
    *out = m;
    mf__value_close(&v);
    return MF_OK;
fail:
    mf__mapping_free(m);
    mf__value_close(&v);
    return rc;
}

void mf__mapping_free(mf__mapping *m)
{
    if (!m)
        return;
    if (m->base)
        munmap(m->base, m->len);
    free(m);
}
