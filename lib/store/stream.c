/*
 * Streamed puts and gets: values larger than memory pass through a bounded
 * window while the pool hashes, compresses and writes (or fetches and
 * verifies) their chunks in parallel, as whole puts and gets do.
 *
 * A streamed put must store exactly what mf__store_put() stores for the
 * same bytes. Values up to MF_STORE_STREAM_HOLD are simply collected and
 * handed back to the caller, who stores them as any buffer. Longer ones are
 * cut in a ring: a cut depends only on the bytes from the chunk's start to
 * MF__CHUNK_MAX past it (mf__cdc_cut_*), so cutting only when the ring
 * holds that much ahead, or the end of the value, gives the cuts of the
 * whole buffer; the cut mode comes from the same prefix probe
 * (mf__chunk_mode_aligned) on the first MF__CHUNK_PROBE_PREFIX bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Values routed through the ring are chunked, and their probe prefix is
 * in memory when the mode is chosen. */
_Static_assert(MF_STORE_STREAM_HOLD >= MF__CHUNK_PROBE_PREFIX, "hold covers the probe");
_Static_assert(MF_STORE_STREAM_HOLD >= MF_STORE_CHUNK_THRESHOLD, "streamed values are chunked");

/* First read buffer: small values should not cost megabytes. */
#define FIRST_CAP (64u << 10)

/* Ring size for `threads` workers: enough chunks in flight to keep them
 * busy plus a chunk being read ahead; at least what was collected before
 * streaming (MF_STORE_STREAM_HOLD + 1 bytes) plus two chunks, so that the
 * ring can always make progress (see read_room()). */
static size_t ring_size(unsigned threads)
{
    size_t r = (size_t)(threads + 2) * MF__CHUNK_MAX;
    size_t min = (size_t)MF_STORE_STREAM_HOLD + 2 * (size_t)MF__CHUNK_MAX;
    return r < min ? min : r;
}

/* Grow `b` to exactly `cap` bytes of capacity (mf__buf_grow doubles, which
 * would overshoot the bound by up to 2x). */
static int reserve_exact(mf_buf *b, size_t cap)
{
    if (b->reserved >= cap)
        return MF_OK;
    char *p = realloc(b->reserved ? b->ptr : NULL, cap);
    if (!p)
        return mf__error_oom();
    b->ptr = p;
    b->reserved = cap;
    return MF_OK;
}

/* Call `read` for up to `cap` bytes: the count, 0 at the end, or < 0 with
 * the error set. */
static int64_t call_read(mf_read_cb read, void *payload, uint8_t *dst, size_t cap,
                         uint64_t total)
{
    int64_t n = read(dst, cap, payload);
    if (n < 0)
        return mf__error_set(MF_EUSER, "the read callback stopped the put (returned %lld "
                             "after %llu bytes)", (long long)n, (unsigned long long)total);
    if ((uint64_t)n > cap)
        return mf__error_set(MF_EINVAL, "the read callback returned %lld bytes for a buffer "
                             "of %zu", (long long)n, cap);
    if ((uint64_t)n > (uint64_t)INT64_MAX - total)
        return mf__error_set(MF_EINVAL, "streamed value is longer than 2^63 - 1 bytes");
    return n;
}

/* ------------------------------------------------------------------- put */

/* One chunk cut from the ring, waiting for or being stored by a worker. */
typedef struct sjob {
    size_t off;   /* in the ring */
    size_t len;
    bool done;
} sjob;

typedef struct sput {
    mf_store *st;
    mf_read_cb read;
    void *payload;
    bool raw_only, aligned;
    uint8_t *ring;
    size_t cap;
    /* Producer only (worker 0): the bytes read but not cut yet, always
     * contiguous in the ring, and how much was read in all. */
    size_t win_off, win_len;
    uint64_t total, cut_total;
    bool eof;
    /* Under the lock. Chunk i waits in q[i % qcap] from its cut until it
     * is stored; chunks [first, claim) are claimed, [claim, ncut) pending.
     * The oldest one in flight (q[first]) marks where the ring's used part
     * begins, so chunks are freed in order even when stored out of order. */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    sjob *q;
    size_t qcap;
    size_t first, claim, ncut;
    bool cut_done, stop;
    mf__chunk_ent *ents; /* every chunk's key and length, by index */
    size_t ents_cap;
} sput;

/* Lock held: claim the next pending chunk, store it unlocked, record it. */
static int put_one(sput *s, mf__codec_ctx *cc)
{
    size_t i = s->claim++;
    sjob *j = &s->q[i % s->qcap];
    const uint8_t *p = s->ring + j->off;
    size_t len = j->len;
    pthread_mutex_unlock(&s->lock);
    uint8_t key[MF_SHA256_LEN];
    int rc = mf__blob_put_data(s->st, cc, p, len, s->raw_only, key);
    pthread_mutex_lock(&s->lock);
    if (rc != MF_OK) {
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        return rc;
    }
    memcpy(s->ents[i].key, key, MF_SHA256_LEN);
    j->done = true;
    while (s->first < s->claim && s->q[s->first % s->qcap].done)
        s->first++;
    pthread_cond_broadcast(&s->cv);
    return MF_OK;
}

/* Lock held: the producer has to wait for room. It stores a pending chunk
 * itself rather than idle, which also keeps the put going when no worker
 * thread could be started. */
static int help_or_wait(sput *s, mf__codec_ctx *cc)
{
    if (s->claim < s->ncut)
        return put_one(s, cc);
    pthread_cond_wait(&s->cv, &s->lock);
    return MF_OK;
}

/* Stop everything on the producer's own failure. */
static int put_abort(sput *s, int rc)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Cut every chunk the window allows and queue it. */
static int cut_window(sput *s, mf__codec_ctx *cc)
{
    while (s->win_len >= MF__CHUNK_MAX || (s->eof && s->win_len > 0)) {
        const uint8_t *p = s->ring + s->win_off;
        /* With at least MF__CHUNK_MAX bytes in hand the cut is the one the
         * whole value would give; at the end the rest is the whole rest. */
        size_t c = s->aligned ? mf__cdc_cut_aligned(p, s->win_len)
                              : mf__cdc_cut_free(p, s->win_len);
        pthread_mutex_lock(&s->lock);
        int rc = MF_OK;
        /* The ring bounds the chunks in flight (each but the last is at
         * least MF__CHUNK_MIN), so this only waits if qcap were too small. */
        while (rc == MF_OK && !s->stop && s->ncut - s->first == s->qcap)
            rc = help_or_wait(s, cc);
        if (rc == MF_OK && !s->stop && s->ncut == s->ents_cap) {
            size_t ncap = s->ents_cap * 2;
            mf__chunk_ent *e = realloc(s->ents, ncap * sizeof *e);
            if (e) {
                s->ents = e;
                s->ents_cap = ncap;
            } else {
                rc = mf__error_oom();
            }
        }
        if (rc != MF_OK || s->stop) {
            /* A worker's failure is reported by the pool; ours here. */
            if (rc != MF_OK && !s->stop) {
                s->stop = true;
                pthread_cond_broadcast(&s->cv);
            }
            pthread_mutex_unlock(&s->lock);
            return rc;
        }
        size_t i = s->ncut++;
        s->q[i % s->qcap] = (sjob){ s->win_off, c, false };
        memset(&s->ents[i], 0, sizeof s->ents[i]);
        s->ents[i].off = s->cut_total;
        s->ents[i].len = c;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->lock);
        s->cut_total += c;
        s->win_off += c;
        s->win_len -= c;
    }
    return MF_OK;
}

/*
 * Where the next read may go: [win_off + win_len, limit). The used part of
 * the ring runs from the oldest chunk in flight (`head`) to the window's
 * end, wrapping at most once, as a bip buffer. When the window reaches the
 * ring's end it moves to the start once no chunk in flight lies in the
 * first MF__CHUNK_MAX bytes (the window, not yet cut, holds less than
 * that); reads then go up to `head` until the chunks ahead of it are
 * stored. Every wait ends: the ring is at least 2 x MF__CHUNK_MAX, so a
 * window at its end starts past MF__CHUNK_MAX, and as chunks are stored
 * `head` passes MF__CHUNK_MAX or no chunk is left. Lock held; may wait.
 */
static int read_room(sput *s, mf__codec_ctx *cc, size_t *limit)
{
    for (;;) {
        if (s->stop)
            return MF_OK;
        size_t end = s->win_off + s->win_len;
        bool empty = s->first == s->ncut;
        size_t head = empty ? s->win_off : s->q[s->first % s->qcap].off;
        *limit = head > s->win_off ? head : s->cap;
        if (*limit > end)
            return MF_OK;
        if (head <= s->win_off && (empty || head >= MF__CHUNK_MAX)) {
            memmove(s->ring, s->ring + s->win_off, s->win_len);
            s->win_off = 0;
            continue;
        }
        int rc = help_or_wait(s, cc);
        if (rc != MF_OK)
            return rc;
    }
}

static int produce(sput *s)
{
    mf__codec_ctx *cc = mf__store_cc_get(s->st);
    if (!cc)
        return put_abort(s, MF_ENOMEM);
    int rc = MF_OK;
    for (;;) {
        if ((rc = cut_window(s, cc)) != MF_OK)
            break;
        pthread_mutex_lock(&s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        if (s->eof) {
            /* Everything is cut: help the workers finish. */
            s->cut_done = true;
            pthread_cond_broadcast(&s->cv);
            while (rc == MF_OK && !s->stop && s->first < s->ncut)
                rc = help_or_wait(s, cc);
            pthread_mutex_unlock(&s->lock);
            break;
        }
        size_t limit;
        rc = read_room(s, cc, &limit);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (rc != MF_OK || stop)
            break;
        /* Chunks in flight only ever free room, so [end, limit) stays ours
         * unlocked. Read until a chunk can be cut or the room is full. */
        size_t end = s->win_off + s->win_len;
        while (end < limit && s->win_len < MF__CHUNK_MAX) {
            int64_t n = call_read(s->read, s->payload, s->ring + end, limit - end, s->total);
            if (n < 0) {
                rc = (int)n;
                break;
            }
            if (n == 0) {
                s->eof = true;
                break;
            }
            s->total += (uint64_t)n;
            s->win_len += (size_t)n;
            end += (size_t)n;
        }
        if (rc != MF_OK)
            break;
    }
    mf__store_cc_put(s->st, cc);
    if (rc != MF_OK)
        put_abort(s, rc);
    /* A worker's failure (s->stop without rc) is the pool's to report. */
    return rc;
}

static int put_worker(mf__pool *pool, void *arg, unsigned worker)
{
    sput *s = arg;
    if (worker == 0)
        return produce(s);
    mf__codec_ctx *cc = mf__store_cc_get(s->st);
    if (!cc)
        return put_abort(s, MF_ENOMEM);
    int rc = MF_OK;
    pthread_mutex_lock(&s->lock);
    while (rc == MF_OK && !s->stop) {
        if (s->claim < s->ncut)
            rc = put_one(s, cc);
        else if (s->cut_done)
            break;
        else
            pthread_cond_wait(&s->cv, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    mf__store_cc_put(s->st, cc);
    return rc;
}

/* The value's first `s->win_len` bytes (more than MF_STORE_STREAM_HOLD)
 * are at the start of the ring; stream the rest through it. */
static int put_ring(sput *s, unsigned threads, uint8_t key[MF_SHA256_LEN])
{
    int rc = mf__chunk_mode_aligned(s->st, s->ring, s->win_len, s->raw_only, &s->aligned);
    if (rc != MF_OK)
        return rc;
    s->qcap = s->cap / MF__CHUNK_MIN + 2;
    s->ents_cap = 1024;
    s->q = calloc(s->qcap, sizeof *s->q);
    s->ents = malloc(s->ents_cap * sizeof *s->ents);
    if (!s->q || !s->ents) {
        free(s->q);
        free(s->ents);
        return mf__error_oom();
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* One "job" per thread: the workers take chunks from the queue. */
    rc = mf__pool_run(threads, threads, put_worker, s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->lock);
    if (rc == MF_OK && (s->first != s->ncut || s->cut_total != s->total))
        rc = mf__error_set(MF_ERROR, "store: streamed put stopped early");
    if (rc == MF_OK)
        rc = mf__chunklist_put(s->st, s->ents, s->ncut, s->total, s->aligned, key);
    free(s->q);
    free(s->ents);
    return rc;
}

int mf__store_put_stream(mf_store *st, mf_read_cb read, void *payload, uint32_t flags,
                         mf_buf *small, bool *stored, uint8_t key_out[MF_SHA256_LEN],
                         uint64_t *size_out)
{
    *stored = false;
    *size_out = 0;
    mf__buf_clear(small);
    if (!read)
        return mf__error_set(MF_EINVAL, "store: NULL read callback");
    /* Collect up to the hold (and one byte more, to know it is more). */
    const size_t hold = MF_STORE_STREAM_HOLD;
    int rc = MF_OK;
    for (;;) {
        if (small->size > hold)
            break;
        if (small->reserved < small->size + 2) {
            size_t want = small->reserved ? small->reserved * 2 : FIRST_CAP;
            if (want > hold + 2)
                want = hold + 2;
            if ((rc = reserve_exact(small, want)) != MF_OK)
                break;
        }
        /* One byte stays free for the NUL that mf_buf promises. */
        int64_t n = call_read(read, payload, (uint8_t *)small->ptr + small->size,
                              small->reserved - 1 - small->size, small->size);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0) {
            small->ptr[small->size] = '\0';
            *size_out = small->size;
            return MF_OK;
        }
        small->size += (size_t)n;
    }
    if (rc != MF_OK) {
        mf_buf_dispose(small);
        return rc;
    }

    unsigned threads = mf__pool_threads(SIZE_MAX, MF__POOL_IO);
    sput s;
    memset(&s, 0, sizeof s);
    s.st = st;
    s.read = read;
    s.payload = payload;
    s.raw_only = (flags & MF_PUT_RAW) != 0;
    s.cap = ring_size(threads);
    rc = reserve_exact(small, s.cap);
    if (rc == MF_OK) {
        s.ring = (uint8_t *)small->ptr;
        s.win_len = small->size;
        s.total = small->size;
        rc = put_ring(&s, threads, key_out);
    }
    mf_buf_dispose(small);
    if (rc != MF_OK)
        return rc;
    *stored = true;
    *size_out = s.total;
    return MF_OK;
}

/* ------------------------------------------------------------------- get */

/* One chunk of the range: fetched into `buf` by a worker, then written out
 * by the caller's thread. */
typedef struct gslot {
    uint8_t *buf;
    size_t cap;
    bool done;
} gslot;

typedef struct sget {
    mf__value *v;
    uint64_t off, end;    /* the range in the value */
    size_t first, n;      /* its chunks: cl.ents[first .. first + n) */
    mf_write_cb write;
    void *payload;
    /* Under the lock. Chunk k of the range (0-based) goes in
     * slots[k % nslots]; [out, claim) are fetched or being fetched. */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    gslot *slots;
    size_t nslots;
    size_t claim, out;
    uint64_t inflight, budget; /* bytes of the chunks in [out, claim) */
    /* Buffers of chunks written out, for reuse (at most nslots of at most
     * MF__CHUNK_MAX bytes: memory stays within the budget). */
    gslot *spare;
    size_t nspare;
    bool stop;
} sget;

static const mf__chunk_ent *gchunk(const sget *g, size_t k)
{
    return &g->v->cl.ents[g->first + k];
}

static bool can_claim(const sget *g)
{
    if (g->claim == g->n || g->claim - g->out == g->nslots)
        return false;
    /* A chunk larger than the budget (another writer's) still goes, alone. */
    return g->claim == g->out || g->inflight + gchunk(g, g->claim)->len <= g->budget;
}

/* Lock held: claim the next chunk and fetch it unlocked, whole and
 * verified (also at the range's edges: every byte written out is
 * checked). */
static int fetch_one(sget *g)
{
    size_t k = g->claim++;
    const mf__chunk_ent *e = gchunk(g, k);
    gslot *sl = &g->slots[k % g->nslots];
    g->inflight += e->len;
    gslot buf = { NULL, 0, false };
    if (g->nspare)
        buf = g->spare[--g->nspare];
    pthread_mutex_unlock(&g->lock);
    int rc = MF_OK;
    if (buf.cap < e->len) {
        free(buf.buf);
        buf.cap = e->len > MF__CHUNK_MAX ? (size_t)e->len : MF__CHUNK_MAX;
        if (!(buf.buf = malloc(buf.cap))) {
            buf.cap = 0;
            rc = mf__error_oom();
        }
    }
    if (rc == MF_OK)
        rc = mf__value_read(g->v, e->off, e->len, buf.buf);
    pthread_mutex_lock(&g->lock);
    sl->buf = buf.buf;
    sl->cap = buf.cap;
    if (rc != MF_OK) {
        g->stop = true;
    } else {
        sl->done = true;
    }
    pthread_cond_broadcast(&g->cv);
    return rc;
}

/* Lock held: give a written-out chunk's buffer back. */
static void release_slot(sget *g, gslot *sl, uint64_t len)
{
    if (sl->buf && sl->cap <= MF__CHUNK_MAX && g->nspare < g->nslots)
        g->spare[g->nspare++] = (gslot){ sl->buf, sl->cap, false };
    else
        free(sl->buf);
    *sl = (gslot){ NULL, 0, false };
    g->inflight -= len;
}

/* The caller's thread: write the chunks out in order, fetching one itself
 * when it would otherwise wait (and so also when no worker started). */
static int consume(sget *g)
{
    int rc = MF_OK;
    pthread_mutex_lock(&g->lock);
    while (rc == MF_OK && g->out < g->n) {
        gslot *sl = &g->slots[g->out % g->nslots];
        if (g->stop)
            break;
        if (!sl->done) {
            if (can_claim(g))
                rc = fetch_one(g);
            else
                pthread_cond_wait(&g->cv, &g->lock);
            continue;
        }
        const mf__chunk_ent *e = gchunk(g, g->out);
        uint64_t s = e->off > g->off ? e->off : g->off;
        uint64_t t = e->off + e->len < g->end ? e->off + e->len : g->end;
        pthread_mutex_unlock(&g->lock);
        int w = g->write(sl->buf + (s - e->off), (size_t)(t - s), g->payload);
        pthread_mutex_lock(&g->lock);
        release_slot(g, sl, e->len);
        g->out++;
        pthread_cond_broadcast(&g->cv);
        if (w != 0) {
            rc = mf__error_set(MF_EUSER, "the write callback stopped the read (returned %d)",
                               w);
            g->stop = true;
        }
    }
    pthread_mutex_unlock(&g->lock);
    /* A worker's failure (g->stop without rc) is the pool's to report. */
    return rc;
}

static int get_worker(mf__pool *pool, void *arg, unsigned worker)
{
    sget *g = arg;
    if (worker == 0)
        return consume(g);
    int rc = MF_OK;
    pthread_mutex_lock(&g->lock);
    while (rc == MF_OK && !g->stop && g->claim < g->n) {
        if (can_claim(g))
            rc = fetch_one(g);
        else
            pthread_cond_wait(&g->cv, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static int get_chunked(mf__value *v, uint64_t off, uint64_t len, mf_write_cb write,
                       void *payload)
{
    sget g;
    memset(&g, 0, sizeof g);
    g.v = v;
    g.off = off;
    g.end = off + len;
    g.first = mf__chunklist_find(&v->cl, off);
    g.n = mf__chunklist_find(&v->cl, off + len - 1) - g.first + 1;
    g.write = write;
    g.payload = payload;
    unsigned threads = mf__pool_threads(g.n, MF__POOL_CPU);
    /* Each worker fetching one chunk, and two fetched ahead of the one
     * being written out. */
    g.nslots = (size_t)threads + 2;
    g.budget = (uint64_t)g.nslots * MF__CHUNK_MAX;
    g.slots = calloc(g.nslots, sizeof *g.slots);
    g.spare = calloc(g.nslots, sizeof *g.spare);
    if (!g.slots || !g.spare) {
        free(g.slots);
        free(g.spare);
        return mf__error_oom();
    }
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cv, NULL);
    /* One "job" per thread: the workers take chunks as the window allows. */
    int rc = mf__pool_run(threads, threads, get_worker, &g);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.lock);
    for (size_t i = 0; i < g.nslots; i++)
        free(g.slots[i].buf);
    for (size_t i = 0; i < g.nspare; i++)
        free(g.spare[i].buf);
    free(g.slots);
    free(g.spare);
    return rc;
}

int mf__store_get_stream(mf_store *st, const uint8_t key[MF_SHA256_LEN], uint64_t size,
                         uint64_t off, uint64_t len, mf_write_cb write, void *payload)
{
    if (!write)
        return mf__error_set(MF_EINVAL, "store: NULL write callback");
    mf__value v;
    int rc = mf__value_open(&v, st, key);
    if (rc != MF_OK)
        return rc;
    if ((rc = mf__value_range(&v, size, off, &len)) == MF_OK) {
        if (len == 0) {
            /* Nothing to write. */
        } else if (v.chunked) {
            rc = get_chunked(&v, off, len, write, payload);
        } else {
            /* One blob (at most MF_STORE_CHUNK_THRESHOLD bytes as written
             * here): read and verify it whole, write the range at once. */
            uint8_t *buf = v.size <= SIZE_MAX ? malloc((size_t)v.size) : NULL;
            rc = buf ? mf__value_read(&v, 0, v.size, buf) : mf__error_oom();
            if (rc == MF_OK) {
                int w = write(buf + off, (size_t)len, payload);
                if (w != 0)
                    rc = mf__error_set(MF_EUSER,
                                       "the write callback stopped the read (returned %d)", w);
            }
            free(buf);
        }
    }
    mf__value_close(&v);
    return rc;
}
