/*
 * In-memory datastore for tests (see memstore.h). Objects live in an array
 * sorted by key, so a prefix listing is one binary search and a scan; tests
 * hold thousands of keys at most, so O(n) inserts are fine.
 */
#include "memstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "datastore/datastore.h"

typedef struct ms_obj {
    char *key;
    unsigned char *data;
    uint64_t size;
    int64_t mtime;
} ms_obj;

typedef struct ms_fail {
    unsigned skip; /* calls to let through before failing */
    unsigned n;    /* calls to fail after that */
    int code;
} ms_fail;

typedef struct memstore {
    mf_datastore parent; /* first: the vtable */
    pthread_mutex_t lock;
    ms_obj *objs;
    size_t nobjs, cap;
    int64_t now;
    ms_fail fail[MF_TEST_MEMSTORE_NOPS];
    mf_test_memstore_stats stats;
} memstore;

static const char *op_names[MF_TEST_MEMSTORE_NOPS] = {
    "put", "get", "exists", "list", "del"
};

static int64_t ms_now(memstore *ms)
{
    return ms->now ? ms->now : (int64_t)time(NULL);
}

/* Index of `key`, or -(insertion point) - 1. Caller holds the lock. */
static ptrdiff_t ms_find(memstore *ms, const char *key)
{
    size_t lo = 0, hi = ms->nobjs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ms->objs[mid].key, key);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

/* Count the call and decide whether an injected failure applies. Caller
 * holds the lock. Returns 0 or the code to fail with. */
static int ms_injected(memstore *ms, mf_test_memstore_op op)
{
    ms_fail *f = &ms->fail[op];
    ms->stats.calls[op]++;
    if (f->n == 0)
        return 0;
    if (f->skip > 0) {
        f->skip--;
        return 0;
    }
    f->n--;
    return f->code;
}

static int ms_fail_error(int code, mf_test_memstore_op op, const char *key)
{
    return mf__error_set(code, "memstore: injected failure of %s '%s'",
                         op_names[op], key ? key : "");
}

static void ms_free(mf_datastore *ds)
{
    memstore *ms = (memstore *)ds;
    if (!ms)
        return;
    for (size_t i = 0; i < ms->nobjs; i++) {
        free(ms->objs[i].key);
        free(ms->objs[i].data);
    }
    free(ms->objs);
    pthread_mutex_destroy(&ms->lock);
    free(ms);
}

static int ms_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov,
                  size_t niov, uint32_t flags)
{
    memstore *ms = (memstore *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    if (niov > 0 && !iov)
        return mf__error_set(MF_EINVAL, "memstore: put '%s': NULL iovec", key);

    /* Concatenate outside the lock: the copy of a big object must not
     * serialise other threads. */
    uint64_t total = 0;
    for (size_t i = 0; i < niov; i++) {
        if (iov[i].len > 0 && !iov[i].base)
            return mf__error_set(MF_EINVAL, "memstore: put '%s': NULL iovec base", key);
        if (total + iov[i].len < total || total + iov[i].len > SIZE_MAX - 1)
            return mf__error_set(MF_ENOMEM, "memstore: put '%s': object too large", key);
        total += iov[i].len;
    }
    unsigned char *data = malloc(total ? (size_t)total : 1);
    if (!data)
        return mf__error_oom();
    uint64_t pos = 0;
    for (size_t i = 0; i < niov; i++) {
        if (iov[i].len)
            memcpy(data + pos, iov[i].base, (size_t)iov[i].len);
        pos += iov[i].len;
    }

    pthread_mutex_lock(&ms->lock);
    int inj = ms_injected(ms, MF_TEST_MEMSTORE_PUT);
    if (inj) {
        pthread_mutex_unlock(&ms->lock);
        free(data);
        return ms_fail_error(inj, MF_TEST_MEMSTORE_PUT, key);
    }
    ptrdiff_t at = ms_find(ms, key);
    if (at >= 0) {
        ms_obj *o = &ms->objs[at];
        if (flags & MF_DS_PUT_IF_ABSENT) {
            /* Refresh, as the contract asks, so GC's grace period protects
             * a blob a new writer is about to reference. */
            o->mtime = ms_now(ms);
            ms->stats.put_eexists++;
            pthread_mutex_unlock(&ms->lock);
            free(data);
            return mf__error_set(MF_EEXISTS, "memstore: object '%s' already exists", key);
        }
        ms->stats.bytes_stored -= o->size;
        free(o->data);
        o->data = data;
        o->size = total;
        o->mtime = ms_now(ms);
    } else {
        size_t ins = (size_t)(-at - 1);
        char *k = strdup(key);
        if (k && ms->nobjs == ms->cap) {
            size_t ncap = ms->cap ? ms->cap * 2 : 64;
            ms_obj *n = realloc(ms->objs, ncap * sizeof *n);
            if (n) {
                ms->objs = n;
                ms->cap = ncap;
            } else {
                free(k);
                k = NULL;
            }
        }
        if (!k) {
            pthread_mutex_unlock(&ms->lock);
            free(data);
            return mf__error_oom();
        }
        memmove(&ms->objs[ins + 1], &ms->objs[ins], (ms->nobjs - ins) * sizeof *ms->objs);
        ms->objs[ins] = (ms_obj){ k, data, total, ms_now(ms) };
        ms->nobjs++;
        ms->stats.objects++;
    }
    ms->stats.put_ok++;
    ms->stats.bytes_put += total;
    ms->stats.bytes_stored += total;
    pthread_mutex_unlock(&ms->lock);
    return MF_OK;
}

static int ms_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
                  mf_buf *out)
{
    memstore *ms = (memstore *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    if (!out)
        return mf__error_set(MF_EINVAL, "memstore: get '%s': NULL buffer", key);

    pthread_mutex_lock(&ms->lock);
    int inj = ms_injected(ms, MF_TEST_MEMSTORE_GET);
    if (inj) {
        pthread_mutex_unlock(&ms->lock);
        return ms_fail_error(inj, MF_TEST_MEMSTORE_GET, key);
    }
    ptrdiff_t at = ms_find(ms, key);
    if (at < 0) {
        pthread_mutex_unlock(&ms->lock);
        return mf__error_set(MF_ENOTFOUND, "memstore: object '%s' not found", key);
    }
    ms_obj *o = &ms->objs[at];
    if (off > o->size) {
        uint64_t size = o->size;
        pthread_mutex_unlock(&ms->lock);
        return mf__error_set(MF_ERANGE,
                             "memstore: offset %llu past the end of '%s' (%llu bytes)",
                             (unsigned long long)off, key, (unsigned long long)size);
    }
    uint64_t avail = o->size - off;
    if (len > avail)
        len = avail;
    /* Copy under the lock: an overwrite frees the old data. */
    rc = mf__buf_set(out, o->data + off, (size_t)len);
    pthread_mutex_unlock(&ms->lock);
    return rc;
}

static int ms_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    memstore *ms = (memstore *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ms->lock);
    int inj = ms_injected(ms, MF_TEST_MEMSTORE_EXISTS);
    if (inj) {
        pthread_mutex_unlock(&ms->lock);
        return ms_fail_error(inj, MF_TEST_MEMSTORE_EXISTS, key);
    }
    ptrdiff_t at = ms_find(ms, key);
    if (at >= 0 && size)
        *size = ms->objs[at].size;
    pthread_mutex_unlock(&ms->lock);
    if (at < 0)
        return mf__error_set(MF_ENOTFOUND, "memstore: object '%s' not found", key);
    return MF_OK;
}

typedef struct ms_entry {
    char *key;
    uint64_t size;
    int64_t mtime;
} ms_entry;

static int ms_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb,
                   void *payload)
{
    memstore *ms = (memstore *)ds;
    if (!prefix)
        prefix = "";
    int prc = mf__datastore_prefix_check(prefix);
    if (prc < 0)
        return prc;
    if (!cb)
        return mf__error_set(MF_EINVAL, "memstore: list '%s': NULL callback", prefix);
    size_t plen = strlen(prefix);

    pthread_mutex_lock(&ms->lock);
    int inj = ms_injected(ms, MF_TEST_MEMSTORE_LIST);
    if (inj) {
        pthread_mutex_unlock(&ms->lock);
        return ms_fail_error(inj, MF_TEST_MEMSTORE_LIST, prefix);
    }
    ptrdiff_t at = ms_find(ms, prefix);
    size_t start = at >= 0 ? (size_t)at : (size_t)(-at - 1);
    size_t end = start;
    while (end < ms->nobjs && strncmp(ms->objs[end].key, prefix, plen) == 0)
        end++;
    /* Snapshot, so the callback runs unlocked and may modify the store. */
    size_t n = end - start;
    ms_entry *snap = calloc(n ? n : 1, sizeof *snap);
    int rc = snap ? MF_OK : mf__error_oom();
    for (size_t i = 0; rc == MF_OK && i < n; i++) {
        ms_obj *o = &ms->objs[start + i];
        snap[i].key = strdup(o->key);
        snap[i].size = o->size;
        snap[i].mtime = o->mtime;
        if (!snap[i].key)
            rc = mf__error_oom();
    }
    pthread_mutex_unlock(&ms->lock);

    for (size_t i = 0; rc == MF_OK && i < n; i++) {
        if (cb(snap[i].key, snap[i].size, snap[i].mtime, payload) != 0)
            rc = mf__error_set(MF_EUSER, "memstore: listing of '%s' stopped by the callback",
                               prefix);
    }
    if (snap) {
        for (size_t i = 0; i < n; i++)
            free(snap[i].key);
        free(snap);
    }
    return rc;
}

static int ms_del(mf_datastore *ds, const char *key)
{
    memstore *ms = (memstore *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ms->lock);
    int inj = ms_injected(ms, MF_TEST_MEMSTORE_DEL);
    if (inj) {
        pthread_mutex_unlock(&ms->lock);
        return ms_fail_error(inj, MF_TEST_MEMSTORE_DEL, key);
    }
    ptrdiff_t at = ms_find(ms, key);
    if (at < 0) {
        pthread_mutex_unlock(&ms->lock);
        return mf__error_set(MF_ENOTFOUND, "memstore: object '%s' not found", key);
    }
    ms_obj o = ms->objs[at];
    memmove(&ms->objs[at], &ms->objs[at + 1], (ms->nobjs - (size_t)at - 1) * sizeof o);
    ms->nobjs--;
    ms->stats.objects--;
    ms->stats.bytes_stored -= o.size;
    pthread_mutex_unlock(&ms->lock);
    free(o.key);
    free(o.data);
    return MF_OK;
}

int mf_test_memstore_new(mf_datastore **out)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "memstore: NULL out");
    *out = NULL;
    memstore *ms = calloc(1, sizeof *ms);
    if (!ms)
        return mf__error_oom();
    int rc = mf_datastore_init(&ms->parent, MF_DATASTORE_VERSION);
    if (rc < 0) {
        free(ms);
        return rc;
    }
    if (pthread_mutex_init(&ms->lock, NULL) != 0) {
        free(ms);
        return mf__error_oom();
    }
    ms->parent.free = ms_free;
    ms->parent.put = ms_put;
    ms->parent.get = ms_get;
    ms->parent.exists = ms_exists;
    ms->parent.list = ms_list;
    ms->parent.del = ms_del;
    ms->parent.local_path = NULL; /* no files; see memstore.h */
    *out = &ms->parent;
    return MF_OK;
}

void mf_test_memstore_fail_after(mf_datastore *ds, mf_test_memstore_op op,
                                 unsigned after, int code, unsigned n)
{
    memstore *ms = (memstore *)ds;
    if (!ms || (unsigned)op >= MF_TEST_MEMSTORE_NOPS)
        return;
    pthread_mutex_lock(&ms->lock);
    ms->fail[op] = (ms_fail){ n ? after : 0, n, code };
    pthread_mutex_unlock(&ms->lock);
}

void mf_test_memstore_fail_next_op(mf_datastore *ds, mf_test_memstore_op op,
                                   int code, unsigned n)
{
    mf_test_memstore_fail_after(ds, op, 0, code, n);
}

void mf_test_memstore_fail_next(mf_datastore *ds, int code, unsigned n)
{
    mf_test_memstore_fail_after(ds, MF_TEST_MEMSTORE_PUT, 0, code, n);
}

int mf_test_memstore_set_mtime(mf_datastore *ds, const char *key, int64_t mtime)
{
    memstore *ms = (memstore *)ds;
    pthread_mutex_lock(&ms->lock);
    ptrdiff_t at = key ? ms_find(ms, key) : -1;
    if (at >= 0)
        ms->objs[at].mtime = mtime;
    pthread_mutex_unlock(&ms->lock);
    if (at < 0)
        return mf__error_set(MF_ENOTFOUND, "memstore: object '%s' not found",
                             key ? key : "");
    return MF_OK;
}

void mf_test_memstore_set_now(mf_datastore *ds, int64_t now)
{
    memstore *ms = (memstore *)ds;
    pthread_mutex_lock(&ms->lock);
    ms->now = now;
    pthread_mutex_unlock(&ms->lock);
}

void mf_test_memstore_stats_get(mf_datastore *ds, mf_test_memstore_stats *out)
{
    memstore *ms = (memstore *)ds;
    pthread_mutex_lock(&ms->lock);
    *out = ms->stats;
    pthread_mutex_unlock(&ms->lock);
}

void mf_test_memstore_stats_reset(mf_datastore *ds)
{
    memstore *ms = (memstore *)ds;
    pthread_mutex_lock(&ms->lock);
    uint64_t objects = ms->stats.objects, bytes = ms->stats.bytes_stored;
    memset(&ms->stats, 0, sizeof ms->stats);
    /* These describe the contents, not the history. */
    ms->stats.objects = objects;
    ms->stats.bytes_stored = bytes;
    pthread_mutex_unlock(&ms->lock);
}

int mf_test_memstore_corrupt(mf_datastore *ds, const char *key, uint64_t off,
                             uint8_t xor_mask)
{
    memstore *ms = (memstore *)ds;
    int rc = MF_OK;
    pthread_mutex_lock(&ms->lock);
    ptrdiff_t at = key ? ms_find(ms, key) : -1;
    if (at < 0)
        rc = MF_ENOTFOUND;
    else if (off >= ms->objs[at].size)
        rc = MF_ERANGE;
    else
        ms->objs[at].data[off] ^= xor_mask;
    pthread_mutex_unlock(&ms->lock);
    if (rc == MF_ENOTFOUND)
        return mf__error_set(rc, "memstore: object '%s' not found", key ? key : "");
    if (rc == MF_ERANGE)
        return mf__error_set(rc, "memstore: offset %llu past the end of '%s'",
                             (unsigned long long)off, key);
    return MF_OK;
}
