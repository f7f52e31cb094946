/*
 * The content-addressed store: keys, put (single blobs and chunked
 * values), get, ranged get, size, verification.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

/* The key of a chunk list: the SHA-256 of its bytes with the last byte
 * complemented. A data blob's key is the plain SHA-256 of its bytes, so a
 * data value that happens to equal a chunk list's bytes gets another key;
 * sharing one would take a SHA-256 preimage. */
static int chunklist_key(const void *list, size_t len, uint8_t key[MF_SHA256_LEN])
{
    int rc = mf__sha256(list, len, key);
    key[MF_SHA256_LEN - 1] ^= 0xff;
    return rc;
}

/* The key a blob's content must have, by its kind. */
static int content_key(uint8_t kind, const void *raw, size_t len, uint8_t key[MF_SHA256_LEN])
{
    return kind == MF__KIND_CHUNKS ? chunklist_key(raw, len, key) : mf__sha256(raw, len, key);
}


/* ------------------------------------------------------------ object */

int mf__store_new(mf_store **out, mf_datastore *ds)
{
    *out = NULL;
    if (!ds || !ds->put || !ds->get || !ds->exists || !ds->list || !ds->del)
        return mf__error_set(MF_EINVAL, "store: incomplete datastore vtable");
    mf_store *st = calloc(1, sizeof *st);
    if (!st)
        return mf__error_oom();
    st->ds = ds;
    long page = sysconf(_SC_PAGESIZE);
    st->page = page > 0 ? (size_t)page : 4096;
    st->can_map = ds->version >= 1 && ds->local_path != NULL;
    atomic_init(&st->blobs_written, 0);
    atomic_init(&st->bytes_written, 0);
    atomic_init(&st->blobs_existing, 0);
    pthread_mutex_init(&st->cc_lock, NULL);
    *out = st;
    return MF_OK;
}

void mf__store_free(mf_store *st)
{
    if (!st)
        return;
    for (unsigned i = 0; i < st->ncc; i++)
        mf__codec_ctx_free(st->cc[i]);
    pthread_mutex_destroy(&st->cc_lock);
    free(st);
}

mf_datastore *mf__store_datastore(mf_store *st)
{
    return st->ds;
}

void mf__store_stats_get(mf_store *st, mf__store_stats *out)
{
    out->blobs_written = atomic_load(&st->blobs_written);
    out->bytes_written = atomic_load(&st->bytes_written);
    out->blobs_existing = atomic_load(&st->blobs_existing);
}

mf__codec_ctx *mf__store_cc_get(mf_store *st)
{
    mf__codec_ctx *c = NULL;
    pthread_mutex_lock(&st->cc_lock);
    if (st->ncc)
        c = st->cc[--st->ncc];
    pthread_mutex_unlock(&st->cc_lock);
    if (!c && !(c = mf__codec_ctx_new()))
        mf__error_oom();
    return c;
}

void mf__store_cc_put(mf_store *st, mf__codec_ctx *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&st->cc_lock);
    if (st->ncc < sizeof st->cc / sizeof st->cc[0]) {
        st->cc[st->ncc++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&st->cc_lock);
    mf__codec_ctx_free(c);
}

/* -------------------------------------------------------------- keys */

int mf__store_blob_key(const uint8_t key[MF_SHA256_LEN], mf_buf *out)
{
    char k[80];
    mf__blob_dskey(key, k);
    return mf__buf_set(out, k, strlen(k));
}

int mf__store_run_key(const char *flow, const char *run_id, mf_buf *out)
{
    mf__buf_clear(out);
    return mf__buf_printf(out, "%s/%s/_run", flow, run_id);
}

int mf__store_manifest_key(const char *flow, const char *run_id, const char *step,
                           const char *task_id, uint32_t attempt, mf_buf *out)
{
    mf__buf_clear(out);
    return mf__buf_printf(out, "%s/%s/%s/%s/%u.manifest", flow, run_id, step, task_id,
                          (unsigned)attempt);
}

static bool set_part(mf_buf *out, const char *s, size_t n)
{
    return !out || mf__buf_set(out, s, n) == MF_OK;
}

bool mf__store_parse_manifest_key(const char *key, mf_buf *flow, mf_buf *run_id,
                                  mf_buf *step, mf_buf *task_id, uint32_t *attempt)
{
    const char *part[5];
    size_t plen[5];
    const char *p = key;
    for (int i = 0; i < 5; i++) {
        const char *slash = strchr(p, '/');
        if ((i < 4) != (slash != NULL))
            return false;
        part[i] = p;
        plen[i] = slash ? (size_t)(slash - p) : strlen(p);
        if (plen[i] == 0)
            return false;
        p = slash ? slash + 1 : p + plen[i];
    }
    static const char suffix[] = ".manifest";
    size_t sl = sizeof suffix - 1;
    if (plen[4] <= sl || memcmp(part[4] + plen[4] - sl, suffix, sl) != 0)
        return false;
    /* The attempt is a canonical decimal uint32 so that a key parses back
     * to exactly one (flow, run, step, task, attempt). */
    size_t dl = plen[4] - sl;
    if (dl == 0 || dl > 10 || (dl > 1 && part[4][0] == '0'))
        return false;
    uint64_t a = 0;
    for (size_t i = 0; i < dl; i++) {
        if (part[4][i] < '0' || part[4][i] > '9')
            return false;
        a = a * 10 + (uint64_t)(part[4][i] - '0');
    }
    if (a > UINT32_MAX)
        return false;
    if (plen[0] == 4 && memcmp(part[0], "data", 4) == 0)
        return false;
    if (!set_part(flow, part[0], plen[0]) || !set_part(run_id, part[1], plen[1]) ||
        !set_part(step, part[2], plen[2]) || !set_part(task_id, part[3], plen[3]))
        return false;
    if (attempt)
        *attempt = (uint32_t)a;
    return true;
}

/* ----------------------------------------------------------- reading */

#define HEAD_READ (64u << 10)

static int not_found(const mf__bsrc *b)
{
    return mf__error_set(MF_ENOTFOUND, "blob '%s' not found", b->dskey);
}

static int truncated(const mf__bsrc *b)
{
    return mf__error_set(MF_ECORRUPT, "blob '%s': truncated or resized", b->dskey);
}

int mf__bsrc_open(mf__bsrc *b, mf_store *st, const uint8_t key[MF_SHA256_LEN])
{
    memset(b, 0, sizeof *b);
    b->st = st;
    b->fd = -1;
    mf__blob_dskey(key, b->dskey);
    int rc;
    if (st->can_map) {
        mf_buf path = MF_BUF_INIT;
        rc = st->ds->local_path(st->ds, b->dskey, &path);
        if (rc == MF_OK) {
            b->fd = open(path.ptr, O_RDONLY | O_CLOEXEC);
            int e = errno;
            struct stat sb;
            if (b->fd >= 0 && fstat(b->fd, &sb) == 0) {
                b->fsize = (uint64_t)sb.st_size;
            } else {
                e = errno;
                rc = e == ENOENT ? not_found(b) : mf__error_errno(e, "opening blob", path.ptr);
            }
            mf_buf_dispose(&path);
            if (rc != MF_OK)
                goto fail;
        } else {
            mf_buf_dispose(&path);
            if (rc == MF_ENOTFOUND) {
                rc = not_found(b);
                goto fail;
            }
            if (rc != MF_ENOTSUP)
                goto fail;
        }
    }

    uint8_t buf[MF__BLOB_HDR_MIN];
    const uint8_t *hp;
    size_t avail;
    if (b->fd >= 0) {
        ssize_t n = pread(b->fd, buf, sizeof buf, 0);
        if (n < 0) {
            rc = mf__error_errno(errno, "reading blob", b->dskey);
            goto fail;
        }
        hp = buf;
        avail = (size_t)n;
    } else {
        /* One round trip brings the header and, for small blobs, all. */
        rc = st->ds->get(st->ds, b->dskey, 0, HEAD_READ, &b->head);
        if (rc == MF_ENOTFOUND) {
            rc = not_found(b);
            goto fail;
        }
        if (rc == MF_ERANGE) { /* an empty object: no header at all */
            mf__buf_clear(&b->head);
        } else if (rc != MF_OK) {
            rc = mf__error_wrap("reading blob '%s'", b->dskey);
            goto fail;
        }
        b->head_all = b->head.size < HEAD_READ;
        hp = (const uint8_t *)b->head.ptr;
        avail = b->head.size;
    }
    rc = mf__blob_hdr_decode(&b->h, hp, avail, b->dskey);
    if (rc != MF_OK)
        goto fail;
    uint64_t total = b->h.hdr_len + b->h.payload_len;
    if (b->fd < 0 && !b->head_all) {
        /* Learn the real size before anyone allocates what the header
         * claims: a damaged header must not cost gigabytes. */
        rc = st->ds->exists(st->ds, b->dskey, &b->fsize);
        if (rc == MF_ENOTFOUND) {
            rc = not_found(b);
            goto fail;
        }
        if (rc != MF_OK) {
            rc = mf__error_wrap("reading blob '%s'", b->dskey);
            goto fail;
        }
    } else if (b->fd < 0) {
        b->fsize = b->head.size;
    }
    if (b->fsize != total) {
        rc = truncated(b);
        goto fail;
    }
    return MF_OK;
fail:
    mf__bsrc_close(b);
    return rc;
}

void mf__bsrc_close(mf__bsrc *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    mf_buf_dispose(&b->head);
}

/* `at_end`: the read should end exactly at the end of the object (checked
 * by asking one byte more of a backend). */
static int bsrc_read(mf__bsrc *b, uint64_t off, void *dst, size_t len, bool at_end)
{
    if (len == 0)
        return MF_OK;
    if (b->fd >= 0) {
        uint8_t *p = dst;
        while (len) {
            ssize_t n = pread(b->fd, p, len, (off_t)off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return mf__error_errno(errno, "reading blob", b->dskey);
            if (n == 0)
                return truncated(b);
            p += n;
            off += (uint64_t)n;
            len -= (size_t)n;
        }
        return MF_OK;
    }
    if (off + len <= b->head.size) {
        memcpy(dst, b->head.ptr + off, len);
        return MF_OK;
    }
    mf_buf t = MF_BUF_INIT;
    uint64_t want = at_end && !b->head_all ? (uint64_t)len + 1 : len;
    int rc = b->st->ds->get(b->st->ds, b->dskey, off, want, &t);
    if (rc == MF_OK && t.size != len)
        rc = truncated(b);
    else if (rc == MF_ERANGE)
        rc = truncated(b);
    else if (rc == MF_ENOTFOUND)
        rc = not_found(b);
    else if (rc != MF_OK)
        rc = mf__error_wrap("reading blob '%s'", b->dskey);
    if (rc == MF_OK)
        memcpy(dst, t.ptr, len);
    mf_buf_dispose(&t);
    return rc;
}

int mf__bsrc_read(mf__bsrc *b, uint64_t off, void *dst, size_t len)
{
    return bsrc_read(b, off, dst, len, false);
}

int mf__bsrc_load(mf__bsrc *b, mf__codec_ctx *cc, uint8_t *dst)
{
    const mf__blob_hdr *h = &b->h;
    if (h->codec == MF__CODEC_RAW) {
        int rc = bsrc_read(b, h->hdr_len, dst, h->raw_len, true);
        if (rc != MF_OK)
            return rc;
        if (mf__xxh64(dst, h->raw_len, 0) != h->checksum)
            return mf__error_set(MF_ECORRUPT, "blob '%s': payload checksum mismatch",
                                 b->dskey);
        return MF_OK;
    }
    if (h->payload_len > SIZE_MAX)
        return truncated(b);
    uint8_t *tmp = malloc(h->payload_len);
    if (!tmp)
        return mf__error_oom();
    int rc = bsrc_read(b, h->hdr_len, tmp, h->payload_len, true);
    if (rc == MF_OK && mf__xxh64(tmp, h->payload_len, 0) != h->checksum)
        rc = mf__error_set(MF_ECORRUPT, "blob '%s': payload checksum mismatch", b->dskey);
    if (rc == MF_OK)
        rc = mf__codec_decompress(cc, tmp, h->payload_len, dst, h->raw_len, b->dskey);
    free(tmp);
    return rc;
}

/* Read (a part of) one chunk into dst. */
typedef struct chunk_job {
    const mf__chunk_ent *ent;
    uint64_t rel;   /* offset inside the chunk */
    uint64_t len;
    uint8_t *dst;
} chunk_job;

typedef struct read_ctx {
    mf_store *st;
    const char *value_key; /* ds key of the chunk list, for messages */
    chunk_job *jobs;
} read_ctx;

static int read_chunk(mf_store *st, mf__codec_ctx *cc, const chunk_job *j,
                      const char *value_key)
{
    mf__bsrc b;
    int rc = mf__bsrc_open(&b, st, j->ent->key);
    if (rc == MF_ENOTFOUND)
        /* The list names it, so the store is damaged, not the key wrong. */
        return mf__error_set(MF_ECORRUPT, "chunked value '%s': chunk '%s' is missing",
                             value_key, b.dskey);
    if (rc != MF_OK)
        return rc;
    if (b.h.kind != MF__KIND_DATA || b.h.raw_len != j->ent->len) {
        rc = mf__error_set(MF_ECORRUPT, "chunked value '%s': chunk '%s' does not match the list",
                           value_key, b.dskey);
    } else if (j->rel == 0 && j->len == j->ent->len) {
        rc = mf__bsrc_load(&b, cc, j->dst);
    } else if (b.h.codec == MF__CODEC_RAW) {
        rc = mf__bsrc_read(&b, b.h.hdr_len + j->rel, j->dst, j->len);
    } else {
        uint8_t *tmp = malloc(b.h.raw_len);
        rc = tmp ? mf__bsrc_load(&b, cc, tmp) : mf__error_oom();
        if (rc == MF_OK)
            memcpy(j->dst, tmp + j->rel, j->len);
        free(tmp);
    }
    mf__bsrc_close(&b);
    return rc;
}

static int read_worker(mf__pool *pool, void *arg, unsigned worker)
{
    read_ctx *rc_ = arg;
    mf__codec_ctx *cc = mf__store_cc_get(rc_->st);
    if (!cc)
        return MF_ENOMEM;
    int rc = MF_OK;
    size_t i;
    while (rc == MF_OK && (i = mf__pool_next(pool)) != SIZE_MAX)
        rc = read_chunk(rc_->st, cc, &rc_->jobs[i], rc_->value_key);
    mf__store_cc_put(rc_->st, cc);
    return rc;
}

int mf__value_open(mf__value *v, mf_store *st, const uint8_t key[MF_SHA256_LEN])
{
    memset(v, 0, sizeof *v);
    int rc = mf__bsrc_open(&v->top, st, key);
    if (rc != MF_OK)
        return rc;
    if (v->top.h.kind == MF__KIND_DATA) {
        v->size = v->top.h.raw_len;
        return MF_OK;
    }
    /* A chunk list: small, so read, verify and hash it in full. */
    uint8_t *list = malloc(v->top.h.raw_len ? v->top.h.raw_len : 1);
    mf__codec_ctx *cc = list ? mf__store_cc_get(st) : NULL;
    uint8_t got[MF_SHA256_LEN];
    if (!list || !cc)
        rc = mf__error_oom();
    else
        rc = mf__bsrc_load(&v->top, cc, list);
    if (rc == MF_OK)
        rc = chunklist_key(list, v->top.h.raw_len, got);
    if (rc == MF_OK && memcmp(got, key, MF_SHA256_LEN) != 0)
        rc = mf__error_set(MF_ECORRUPT, "blob '%s': content does not match its key",
                           v->top.dskey);
    if (rc == MF_OK)
        rc = mf__chunklist_decode(&v->cl, list, v->top.h.raw_len, v->top.dskey);
    mf__store_cc_put(st, cc);
    free(list);
    if (rc != MF_OK) {
        mf__value_close(v);
        return rc;
    }
    v->chunked = true;
    v->size = v->cl.total;
    return MF_OK;
}

void mf__value_close(mf__value *v)
{
    mf__bsrc_close(&v->top);
    mf__chunklist_clear(&v->cl);
}

int mf__value_read(mf__value *v, uint64_t off, uint64_t len, uint8_t *dst)
{
    mf_store *st = v->top.st;
    if (len == 0)
        return MF_OK;
    if (!v->chunked) {
        mf__bsrc *b = &v->top;
        if (off == 0 && len == v->size) {
            mf__codec_ctx *cc = mf__store_cc_get(st);
            if (!cc)
                return MF_ENOMEM;
            int rc = mf__bsrc_load(b, cc, dst);
            mf__store_cc_put(st, cc);
            return rc;
        }
        if (b->h.codec == MF__CODEC_RAW)
            return mf__bsrc_read(b, b->h.hdr_len + off, dst, len);
        uint8_t *tmp = malloc(v->size);
        mf__codec_ctx *cc = tmp ? mf__store_cc_get(st) : NULL;
        int rc = cc ? mf__bsrc_load(b, cc, tmp) : mf__error_oom();
        if (rc == MF_OK)
            memcpy(dst, tmp + off, len);
        mf__store_cc_put(st, cc);
        free(tmp);
        return rc;
    }
    size_t first = mf__chunklist_find(&v->cl, off);
    size_t last = mf__chunklist_find(&v->cl, off + len - 1);
    size_t n = last - first + 1;
    chunk_job *jobs = malloc(n * sizeof *jobs);
    if (!jobs)
        return mf__error_oom();
    for (size_t i = 0; i < n; i++) {
        const mf__chunk_ent *e = &v->cl.ents[first + i];
        uint64_t s = e->off > off ? e->off : off;
        uint64_t end = e->off + e->len < off + len ? e->off + e->len : off + len;
        jobs[i] = (chunk_job){ e, s - e->off, end - s, dst + (s - off) };
    }
    read_ctx ctx = { st, v->top.dskey, jobs };
    int rc = mf__pool_run(n, mf__pool_threads(n, MF__POOL_CPU), read_worker, &ctx);
    free(jobs);
    return rc;
}

int mf__store_size(mf_store *st, const uint8_t key[MF_SHA256_LEN], uint64_t *size)
{
    mf__value v;
    int rc = mf__value_open(&v, st, key);
    if (rc != MF_OK)
        return rc;
    *size = v.size;
    mf__value_close(&v);
    return MF_OK;
}

void mf__advise_huge(void *p, size_t len)
{
    /* Filling hundreds of fresh megabytes costs a page fault per 4 KiB;
     * transparent huge pages (where the system offers them on request)
     * cut that 512-fold. Advice only: failure changes nothing. */
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (len < 2 * huge)
        return;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(huge - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static int grow_out(mf_buf *out, uint64_t size)
{
    mf__buf_clear(out);
    if (size >= SIZE_MAX)
        return mf__error_oom();
    int rc = mf__buf_grow(out, (size_t)size);
    if (rc == MF_OK)
        mf__advise_huge(out->ptr, (size_t)size);
    return rc;
}

int mf__store_get(mf_store *st, const uint8_t key[MF_SHA256_LEN], mf_buf *out)
{
    mf__value v;
    int rc = mf__value_open(&v, st, key);
    if (rc != MF_OK)
        return rc;
    rc = grow_out(out, v.size);
    if (rc == MF_OK && !v.chunked && v.top.fd < 0 && !v.top.head_all &&
        v.top.h.codec == MF__CODEC_RAW) {
        /* A large raw blob from a remote backend: let the backend fill
         * `out` directly instead of copying through a temporary. */
        const mf__blob_hdr *h = &v.top.h;
        rc = st->ds->get(st->ds, v.top.dskey, h->hdr_len, h->payload_len + 1, out);
        if (rc == MF_OK && out->size != h->raw_len)
            rc = truncated(&v.top);
        else if (rc == MF_ERANGE || rc == MF_ENOTFOUND)
            rc = truncated(&v.top);
        else if (rc != MF_OK)
            rc = mf__error_wrap("reading blob '%s'", v.top.dskey);
        if (rc == MF_OK && mf__xxh64(out->ptr, out->size, 0) != h->checksum)
            rc = mf__error_set(MF_ECORRUPT, "blob '%s': payload checksum mismatch",
                               v.top.dskey);
    } else if (rc == MF_OK) {
        rc = mf__value_read(&v, 0, v.size, (uint8_t *)out->ptr);
        if (rc == MF_OK) {
            out->size = (size_t)v.size;
            out->ptr[out->size] = '\0';
        }
    }
    if (rc != MF_OK)
        mf__buf_clear(out);
    mf__value_close(&v);
    return rc;
}

int mf__value_range(const mf__value *v, uint64_t size, uint64_t off, uint64_t *len)
{
    if (size != MF_STORE_ANY_SIZE && v->size != size)
        return mf__error_set(MF_ECORRUPT, "stored value has %llu bytes, the manifest says %llu",
                             (unsigned long long)v->size, (unsigned long long)size);
    if (off > v->size)
        return mf__error_set(MF_ERANGE, "blob '%s': offset %llu past the end (%llu bytes)",
                             v->top.dskey, (unsigned long long)off,
                             (unsigned long long)v->size);
    if (*len > v->size - off)
        *len = v->size - off;
    return MF_OK;
}

int mf__store_get_range(mf_store *st, const uint8_t key[MF_SHA256_LEN], uint64_t size,
                        uint64_t off, uint64_t len, mf_buf *out)
{
    mf__value v;
    int rc = mf__value_open(&v, st, key);
    if (rc != MF_OK) {
        mf__buf_clear(out);
        return rc;
    }
    if ((rc = mf__value_range(&v, size, off, &len)) != MF_OK) {
        mf__buf_clear(out);
    } else {
        rc = grow_out(out, len);
        if (rc == MF_OK)
            rc = mf__value_read(&v, off, len, (uint8_t *)out->ptr);
        if (rc == MF_OK) {
            out->size = (size_t)len;
            out->ptr[out->size] = '\0';
        } else {
            mf__buf_clear(out);
        }
    }
    mf__value_close(&v);
    return rc;
}

/* ----------------------------------------------------------- writing */

/* Is the blob at `dskey` there and as long as its header says? (A blob cut
 * short by a power loss before its sync is not, and gets rewritten.) */
static bool blob_whole(mf_store *st, const char *dskey)
{
    uint64_t size = 0;
    if (st->ds->exists(st->ds, dskey, &size) != MF_OK)
        return false;
    mf_buf b = MF_BUF_INIT;
    mf__blob_hdr h;
    bool ok = st->ds->get(st->ds, dskey, 0, MF__BLOB_HDR_MIN, &b) == MF_OK &&
              mf__blob_hdr_decode(&h, (const uint8_t *)b.ptr, b.size, dskey) == MF_OK &&
              (uint64_t)h.hdr_len + h.payload_len == size;
    mf_buf_dispose(&b);
    mf_error_clear();
    return ok;
}

int mf__blob_put_data(mf_store *st, mf__codec_ctx *cc, const uint8_t *data, size_t len,
                      bool raw_only, uint8_t key[MF_SHA256_LEN])
{
    int rc = mf__sha256(data, len, key);
    if (rc != MF_OK)
        return rc;
    mf__blob_hdr h = { MF__KIND_DATA, MF__CODEC_RAW, MF__BLOB_HDR_MIN, len, len, 0 };
    bool canonical = true;
    if (!raw_only && mf__codec_probe(cc, data, len)) {
        /* Already stored (the common case of a re-saved value): skip the
         * compression; the put below then only refreshes the blob (its raw
         * encoding is valid too, should the blob vanish in between). */
        char dskey[80];
        mf__blob_dskey(key, dskey);
        canonical = false;
        if (!blob_whole(st, dskey)) {
            canonical = true;
            const uint8_t *z;
            size_t zlen;
            rc = mf__codec_compress(cc, data, len, &z, &zlen);
            if (rc != MF_OK)
                return rc;
            if (MF__ZSTD_PAYS(len, zlen)) {
                h.codec = MF__CODEC_ZSTD;
                h.payload_len = zlen;
                h.checksum = mf__xxh64(z, zlen, 0);
                return mf__blob_write(st, key, &h, z, true);
            }
        }
    }
    /* Raw blobs of a page or more get a page of header so the payload is
     * page-aligned in the file and can be mapped. */
    if (len >= MF__BLOB_HDR_PAGE)
        h.hdr_len = MF__BLOB_HDR_PAGE;
    h.checksum = mf__xxh64(data, len, 0);
    return mf__blob_write(st, key, &h, data, canonical);
}

typedef struct put_ctx {
    mf_store *st;
    const uint8_t *data;
    uint64_t len;
    bool raw_only;
    bool aligned;
    pthread_mutex_t lock; /* guards cursor and n */
    uint64_t cursor;
    size_t n, cap;
    mf__chunk_ent *ents;
} put_ctx;

/* Workers cut the next chunk under the lock (cheap), then hash, compress
 * and write it outside: cutting is sequential by nature, the rest is not. */
static int put_worker(mf__pool *pool, void *arg, unsigned worker)
{
    put_ctx *pc = arg;
    mf__codec_ctx *cc = mf__store_cc_get(pc->st);
    if (!cc)
        return MF_ENOMEM;
    int rc = MF_OK;
    while (rc == MF_OK && !atomic_load(&pool->failed)) {
        pthread_mutex_lock(&pc->lock);
        if (pc->cursor == pc->len || pc->n == pc->cap) {
            pthread_mutex_unlock(&pc->lock);
            break;
        }
        const uint8_t *p = pc->data + pc->cursor;
        size_t left = pc->len - pc->cursor;
        size_t cut = pc->aligned ? mf__cdc_cut_aligned(p, left) : mf__cdc_cut_free(p, left);
        mf__chunk_ent *e = &pc->ents[pc->n++];
        e->off = pc->cursor;
        e->len = cut;
        pc->cursor += cut;
        pthread_mutex_unlock(&pc->lock);
        rc = mf__blob_put_data(pc->st, cc, p, cut, pc->raw_only, e->key);
    }
    mf__store_cc_put(pc->st, cc);
    return rc;
}

int mf__chunk_mode_aligned(mf_store *st, const uint8_t *data, uint64_t len, bool raw_only,
                           bool *aligned)
{
    /* Incompressible data is cut at page multiples so its raw chunks can
     * be mapped side by side as one region; compressible data is cut
     * anywhere, which also survives insertions. */
    if (raw_only) {
        *aligned = true;
        return MF_OK;
    }
    mf__codec_ctx *cc = mf__store_cc_get(st);
    if (!cc)
        return MF_ENOMEM;
    size_t n = len < MF__CHUNK_PROBE_PREFIX ? (size_t)len : MF__CHUNK_PROBE_PREFIX;
    *aligned = !mf__codec_probe(cc, data, n);
    mf__store_cc_put(st, cc);
    return MF_OK;
}

int mf__chunklist_put(mf_store *st, const mf__chunk_ent *ents, size_t n, uint64_t total,
                      bool aligned, uint8_t key[MF_SHA256_LEN])
{
    mf_buf list = MF_BUF_INIT;
    mf__chunklist cl = { total, aligned ? MF__CL_FLAG_ALIGNED : 0, n, (mf__chunk_ent *)ents };
    int rc = mf__chunklist_encode(&cl, &list);
    if (rc == MF_OK)
        rc = chunklist_key(list.ptr, list.size, key);
    if (rc == MF_OK) {
        mf__blob_hdr h = { MF__KIND_CHUNKS, MF__CODEC_RAW, MF__BLOB_HDR_MIN, list.size,
                           list.size, mf__xxh64(list.ptr, list.size, 0) };
        rc = mf__blob_write(st, key, &h, list.ptr, true);
    }
    mf_buf_dispose(&list);
    return rc;
}

static int put_chunked(mf_store *st, const uint8_t *data, uint64_t len, bool raw_only,
                       uint8_t key[MF_SHA256_LEN])
{
    put_ctx pc = { .st = st, .data = data, .len = len, .raw_only = raw_only };
    int rc = mf__chunk_mode_aligned(st, data, len, raw_only, &pc.aligned);
    if (rc != MF_OK)
        return rc;
    pc.cap = (size_t)(len / MF__CHUNK_MIN) + 2;
    pc.ents = calloc(pc.cap, sizeof *pc.ents);
    if (!pc.ents)
        return mf__error_oom();
    pthread_mutex_init(&pc.lock, NULL);
    rc = mf__pool_run(pc.cap, mf__pool_threads((size_t)(len / MF__CHUNK_AVG) + 1, MF__POOL_IO),
                      put_worker, &pc);
    pthread_mutex_destroy(&pc.lock);
    if (rc == MF_OK && pc.cursor != len)
        rc = mf__error_set(MF_ERROR, "store: chunking stopped early");
    if (rc == MF_OK)
        rc = mf__chunklist_put(st, pc.ents, pc.n, len, pc.aligned, key);
    free(pc.ents);
    return rc;
}

int mf__store_put(mf_store *st, const void *data, uint64_t len, uint32_t flags,
                  uint8_t key_out[MF_SHA256_LEN])
{
    if (!data && len)
        return mf__error_set(MF_EINVAL, "store: NULL data");
    if (len > (uint64_t)SIZE_MAX || len > (uint64_t)INT64_MAX)
        return mf__error_set(MF_EINVAL, "store: value too large");
    bool raw_only = (flags & MF_PUT_RAW) != 0;
    if (len > MF_STORE_CHUNK_THRESHOLD)
        return put_chunked(st, data, len, raw_only, key_out);
    mf__codec_ctx *cc = mf__store_cc_get(st);
    if (!cc)
        return MF_ENOMEM;
    int rc = mf__blob_put_data(st, cc, len ? data : (const uint8_t *)"", (size_t)len,
                               raw_only, key_out);
    mf__store_cc_put(st, cc);
    return rc;
}

/* ------------------------------------------------------------ verify */

int mf__store_verify_blob(mf_store *st, const char *ds_key)
{
    uint8_t key[MF_SHA256_LEN];
    if (strncmp(ds_key, "data/", 5) != 0 || strlen(ds_key) != 8 + MF_SHA256_HEX ||
        ds_key[5] != ds_key[8] || ds_key[6] != ds_key[9] || ds_key[7] != '/' ||
        mf__unhex(ds_key + 8, key, MF_SHA256_LEN) != MF_OK)
        return mf__error_set(MF_EINVAL, "'%s' is not a blob key", ds_key);
    mf__bsrc b;
    int rc = mf__bsrc_open(&b, st, key);
    if (rc != MF_OK)
        return rc;
    uint8_t *raw = malloc(b.h.raw_len ? b.h.raw_len : 1);
    mf__codec_ctx *cc = raw ? mf__store_cc_get(st) : NULL;
    uint8_t got[MF_SHA256_LEN];
    rc = cc ? mf__bsrc_load(&b, cc, raw) : mf__error_oom();
    /* Unlike reads, verification also re-hashes: the key is the claim. */
    if (rc == MF_OK)
        rc = content_key(b.h.kind, raw, b.h.raw_len, got);
    if (rc == MF_OK && memcmp(got, key, MF_SHA256_LEN) != 0)
        rc = mf__error_set(MF_ECORRUPT, "blob '%s': content does not match its key", ds_key);
    if (rc == MF_OK && b.h.kind == MF__KIND_CHUNKS) {
        mf__chunklist cl;
        rc = mf__chunklist_decode(&cl, raw, b.h.raw_len, ds_key);
        for (size_t i = 0; rc == MF_OK && i < cl.n; i++) {
            char ck[80];
            mf__blob_dskey(cl.ents[i].key, ck);
            int e = st->ds->exists(st->ds, ck, NULL);
            if (e == MF_ENOTFOUND)
                rc = mf__error_set(MF_ECORRUPT, "chunk list '%s': chunk '%s' is missing",
                                   ds_key, ck);
            else if (e != MF_OK)
                rc = mf__error_wrap("checking chunk '%s'", ck);
        }
        mf__chunklist_clear(&cl);
    }
    mf__store_cc_put(st, cc);
    free(raw);
    mf__bsrc_close(&b);
    return rc;
}
