/*
 * Garbage collection: mark every blob reachable from a manifest (and the
 * chunks of reachable chunk lists), sweep unreferenced blobs older than
 * the grace period.
 *
 * Safety against concurrent writers rests on the datastore contract that
 * put-if-absent refreshes an existing blob's mtime: a writer first puts
 * (or refreshes) every blob, then commits the manifest that references
 * them. A manifest committed after our listing was therefore preceded by
 * a refresh, so its blobs look young when re-checked right before their
 * deletion. The remaining window is a refresh landing between that
 * re-check and the delete; the grace period is for writers slower than
 * that, not for this window (see docs/datastore-format.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"
#include "datastore/s3/s3.h"

typedef struct blob_ent {
    uint8_t key[MF_SHA256_LEN];
    uint64_t size;
    int64_t mtime;
    bool used;    /* hash slot taken */
    bool marked;
} blob_ent;

typedef struct gc_state {
    mf_store *st;
    /* listing */
    blob_ent *list;
    size_t nlist, caplist;
    char **manifests;
    size_t nman, capman;
    int err;
    /* hash table over the listed blobs */
    blob_ent *tab;
    size_t mask;
} gc_state;

static bool parse_blob_key(const char *k, uint8_t key[MF_SHA256_LEN])
{
    return strncmp(k, "data/", 5) == 0 && strlen(k) == 8 + MF_SHA256_HEX &&
           k[7] == '/' && k[5] == k[8] && k[6] == k[9] &&
           mf__unhex(k + 8, key, MF_SHA256_LEN) == MF_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static int list_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    gc_state *g = payload;
    uint8_t k[MF_SHA256_LEN];
    if (strncmp(key, "data/", 5) == 0) {
        /* Anything else under data/ is not ours to judge. */
        if (!parse_blob_key(key, k))
            return 0;
        if (g->nlist == g->caplist) {
            size_t cap = g->caplist ? g->caplist * 2 : 1024;
            blob_ent *p = realloc(g->list, cap * sizeof *p);
            if (!p)
                goto oom;
            g->list = p;
            g->caplist = cap;
        }
        blob_ent *e = &g->list[g->nlist++];
        memset(e, 0, sizeof *e);
        memcpy(e->key, k, sizeof k);
        e->size = size;
        e->mtime = mtime;
        return 0;
    }
    if (!ends_with(key, ".manifest"))
        return 0;
    if (g->nman == g->capman) {
        size_t cap = g->capman ? g->capman * 2 : 256;
        char **p = realloc(g->manifests, cap * sizeof *p);
        if (!p)
            goto oom;
        g->manifests = p;
        g->capman = cap;
    }
    if (!(g->manifests[g->nman] = strdup(key)))
        goto oom;
    g->nman++;
    return 0;
oom:
    g->err = MF_ENOMEM;
    return 1;
}

static uint64_t slot_of(const uint8_t key[MF_SHA256_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* SHA-256 bytes are already uniform */
    return h;
}

static int build_table(gc_state *g)
{
    size_t cap = 16;
    while (cap < g->nlist * 2)
        cap *= 2;
    g->tab = calloc(cap, sizeof *g->tab);
    if (!g->tab)
        return mf__error_oom();
    g->mask = cap - 1;
    for (size_t i = 0; i < g->nlist; i++) {
        size_t s = slot_of(g->list[i].key) & g->mask;
        while (g->tab[s].used && memcmp(g->tab[s].key, g->list[i].key, MF_SHA256_LEN) != 0)
            s = (s + 1) & g->mask;
        if (g->tab[s].used)
            continue; /* a backend listing a key twice */
        g->tab[s] = g->list[i];
        g->tab[s].used = true;
    }
    return MF_OK;
}

static blob_ent *find(gc_state *g, const uint8_t key[MF_SHA256_LEN])
{
    size_t s = slot_of(key) & g->mask;
    while (g->tab[s].used) {
        if (memcmp(g->tab[s].key, key, MF_SHA256_LEN) == 0)
            return &g->tab[s];
        s = (s + 1) & g->mask;
    }
    return NULL;
}

/* Mark a referenced value: its blob and, for a chunk list, its chunks. */
static int mark(gc_state *g, const uint8_t key[MF_SHA256_LEN])
{
    blob_ent *e = find(g, key);
    if (!e || e->marked)
        return MF_OK; /* absent: nothing to keep; marked: done already */
    e->marked = true;
    mf__value v;
    int rc = mf__value_open(&v, g->st, key);
    if (rc == MF_ENOTFOUND)
        return MF_OK; /* deleted since the listing, by someone else */
    if (rc != MF_OK)
        return rc;
    for (size_t i = 0; v.chunked && i < v.cl.n; i++) {
        blob_ent *c = find(g, v.cl.ents[i].key);
        if (c)
            c->marked = true;
    }
    mf__value_close(&v);
    return MF_OK;
}

/* MF_ECORRUPT (also for a newer format: its references are unknown),
 * keeping the cause's message after the prefix. */
static int gc_corrupt(const char *mkey)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", mf_error_last()); /* not aliased below */
    return mf__error_set(MF_ECORRUPT, "gc stopped, nothing deleted: manifest '%s': %s",
                         mkey, msg);
}

static int mark_manifest(gc_state *g, const char *mkey)
{
    mf_datastore *ds = g->st->ds;
    mf_buf raw = MF_BUF_INIT;
    mf__manifest m;
    int rc = ds->get(ds, mkey, 0, MF_DS_TO_END, &raw);
    if (rc == MF_ENOTFOUND) {
        /* Removed since the listing: it protects nothing any more. */
        mf_buf_dispose(&raw);
        return MF_OK;
    }
    if (rc != MF_OK) {
        mf_buf_dispose(&raw);
        return mf__error_wrap("gc: reading manifest '%s'", mkey);
    }
    rc = mf__manifest_decode(&m, raw.ptr, raw.size, mkey);
    mf_buf_dispose(&raw);
    if (rc != MF_OK) {
        /* Without this manifest's references nothing can be swept safely. */
        if (rc == MF_ECORRUPT || rc == MF_EVERSION)
            return gc_corrupt(mkey);
        return rc;
    }
    for (size_t i = 0; rc == MF_OK && i < m.nartifacts; i++)
        for (uint32_t j = 0; rc == MF_OK && j < m.artifacts[i].nparts; j++)
            if (!m.artifacts[i].parts[j].inline_data)
                rc = mark(g, m.artifacts[i].parts[j].key);
    mf__manifest_clear(&m);
    if (rc == MF_ECORRUPT || rc == MF_EVERSION)
        return gc_corrupt(mkey);
    return rc;
}

/* Blobs waiting for one DeleteObjects request (S3). */
#define GC_BATCH 100

typedef struct gc_del {
    char key[80];
    uint64_t size;
} gc_del;

static int flush_batch(mf_datastore *ds, gc_del *batch, size_t *n, mf_gc_stats *s)
{
    const char *keys[GC_BATCH];
    for (size_t i = 0; i < *n; i++)
        keys[i] = batch[i].key;
    int rc = mf__s3_delete_batch(ds, keys, *n, NULL);
    if (rc != MF_OK)
        return mf__error_wrap("gc: deleting %zu blobs", *n);
    for (size_t i = 0; i < *n; i++) {
        s->swept++;
        s->bytes_swept += batch[i].size;
    }
    *n = 0;
    return MF_OK;
}

typedef struct recheck {
    bool seen;
    int64_t mtime;
    const char *key;
} recheck;

static int recheck_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    recheck *r = payload;
    (void)size;
    if (strcmp(key, r->key) == 0) {
        r->seen = true;
        r->mtime = mtime;
    }
    return 0;
}

int mf__store_gc(mf_store *st, int64_t grace_seconds, uint32_t flags, mf_gc_stats *stats)
{
    if (stats && stats->version < 1)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_gc_stats",
                             stats->version);
    if (grace_seconds < 0)
        grace_seconds = 3600;
    mf_gc_stats s = { MF_GC_STATS_VERSION, 0, 0, 0, 0, 0, 0 };
    gc_state g;
    memset(&g, 0, sizeof g);
    g.st = st;
    mf_datastore *ds = st->ds;

    /* 1. One listing gives both the blobs and the manifests. */
    int rc = ds->list(ds, "", list_cb, &g);
    if (g.err)
        rc = mf__error_oom();
    else if (rc != MF_OK)
        rc = mf__error_wrap("gc: listing the datastore");
    if (rc == MF_OK)
        rc = build_table(&g);

    /* 2. Mark. Any manifest that cannot be read stops GC before a delete. */
    for (size_t i = 0; rc == MF_OK && i < g.nman; i++) {
        rc = mark_manifest(&g, g.manifests[i]);
        s.manifests++;
    }

    /* 3. Sweep. */
    int64_t now = (int64_t)time(NULL);
    gc_del *batch = NULL;
    size_t nbatch = 0;
    if (rc == MF_OK && mf__s3_is(ds) && !(batch = calloc(GC_BATCH, sizeof *batch)))
        rc = mf__error_oom();
    for (size_t i = 0; rc == MF_OK && i <= g.mask && g.tab; i++) {
        blob_ent *e = &g.tab[i];
        if (!e->used)
            continue;
        s.blobs++;
        if (e->marked) {
            s.live++;
            continue;
        }
        if (now - e->mtime < grace_seconds) {
            s.young++;
            continue;
        }
        char dskey[80];
        mf__blob_dskey(e->key, dskey);
        /* Re-read the mtime: a writer may have refreshed the blob since
         * the listing, about to reference it from a new manifest. */
        recheck r = { false, 0, dskey };
        int lrc = ds->list(ds, dskey, recheck_cb, &r);
        if (lrc != MF_OK) {
            rc = mf__error_wrap("gc: re-checking '%s'", dskey);
            break;
        }
        if (!r.seen)
            continue; /* already gone */
        if (now - r.mtime < grace_seconds) {
            s.young++;
            continue;
        }
        if (!(flags & MF_GC_DRY_RUN) && batch) {
            /* S3: deleted 100 at a time with DeleteObjects, which does
             * not tell missing keys apart, so they count as swept. */
            memcpy(batch[nbatch].key, dskey, sizeof dskey);
            batch[nbatch++].size = e->size;
            if (nbatch == GC_BATCH && (rc = flush_batch(ds, batch, &nbatch, &s)) != MF_OK)
                break;
            continue;
        }
        if (!(flags & MF_GC_DRY_RUN)) {
            int drc = ds->del(ds, dskey);
            if (drc == MF_ENOTFOUND)
                continue;
            if (drc != MF_OK) {
                rc = mf__error_wrap("gc: deleting '%s'", dskey);
                break;
            }
        }
        s.swept++;
        s.bytes_swept += e->size;
    }

    if (rc == MF_OK && nbatch)
        rc = flush_batch(ds, batch, &nbatch, &s);
    free(batch);
    if (stats) {
        /* Field by field: a newer caller's struct keeps its version. */
        stats->manifests = s.manifests;
        stats->blobs = s.blobs;
        stats->live = s.live;
        stats->young = s.young;
        stats->swept = s.swept;
        stats->bytes_swept = s.bytes_swept;
    }
    for (size_t i = 0; i < g.nman; i++)
        free(g.manifests[i]);
    free(g.manifests);
    free(g.list);
    free(g.tab);
    return rc;
}
