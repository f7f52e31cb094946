/* Maintenance: garbage collection, index rebuild, store verification. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "datastore/datastore.h"
#include "datastore/s3/s3.h"

MF_EXTERN(int) mf_gc_options_init(mf_gc_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_gc_options_init: options are NULL");
    if (version != MF_GC_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_gc_options", version);
    mf_gc_options init = MF_GC_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

MF_EXTERN(int) mf_gc(mf_engine *e, const mf_gc_options *opts, mf_gc_stats *stats)
{
    if (!e)
        return mf__error_set(MF_EINVAL, "mf_gc: engine is NULL");
    if (opts && opts->version != MF_GC_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_gc_options", opts->version);
    if (stats && stats->version != MF_GC_STATS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_gc_stats", stats->version);
    if (e->flags & MF_ENGINE_READONLY)
        return mf__error_set(MF_ESTATE, "cannot collect garbage: the engine is read-only");
    int64_t grace = opts && opts->grace_seconds >= 0 ? opts->grace_seconds : 3600;
    mf_gc_stats local;
    memset(&local, 0, sizeof local);
    local.version = MF_GC_STATS_VERSION;
    int rc = mf__store_gc(e->store, grace, opts ? opts->flags : 0, &local);
    /* Temp files of writers killed mid-put are garbage too. */
    if (!rc && !(opts && (opts->flags & MF_GC_DRY_RUN)) && mf__fs_root(e->ds)) {
        uint64_t removed = 0;
        /* Grace 0 means everything up to this second (mtimes are in seconds). */
        rc = mf__fs_clean_temps(e->ds, mf__now_us() / 1000000 - grace + 1, &removed);
    }
    if (stats)
        *stats = local;
    return rc;
}

/* Collected datastore keys of run records and manifests (a NULL list
 * collects nothing). */
struct rebuild_keys {
    mf_strlist *runs;
    mf_strlist *manifests;
};

static int rebuild_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    struct rebuild_keys *k = payload;
    size_t n = strlen(key);
    if (strncmp(key, "data/", 5) == 0)
        return 0;
    if (n > 5 && strcmp(key + n - 5, "/_run") == 0)
        return k->runs && mf__strlist_push(k->runs, key) ? 1 : 0;
    if (k->manifests && mf__store_parse_manifest_key(key, NULL, NULL, NULL, NULL, NULL))
        return mf__strlist_push(k->manifests, key) ? 1 : 0;
    return 0;
}

static int cmp_manifest(const void *a, const void *b)
{
    const mf__manifest *x = a, *y = b;
    int c = strcmp(x->flow, y->flow);
    if (c)
        return c;
    if ((c = strcmp(x->run_id, y->run_id)) != 0)
        return c;
    /* Recording order: by start time, then numeric task id, then attempt. */
    if (x->started_us != y->started_us)
        return x->started_us < y->started_us ? -1 : 1;
    size_t lx = strlen(x->task_id), ly = strlen(y->task_id);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    if ((c = strcmp(x->task_id, y->task_id)) != 0)
        return c;
    return x->attempt < y->attempt ? -1 : x->attempt > y->attempt;
}

static int refresh(mf_engine *e);

MF_EXTERN(int) mf_index_rebuild(mf_engine *e)
{
    if (!e)
        return mf__error_set(MF_EINVAL, "mf_index_rebuild: engine is NULL");
    if ((e->flags & MF_ENGINE_READONLY) && !e->remote)
        return mf__error_set(MF_ESTATE, "cannot rebuild the index: the engine is read-only");
    if (e->remote) {
        /* Run by run: listing the whole bucket would list every blob. With
         * the index cleared, every run is read again. */
        int rc = mf__meta_clear(e->meta);
        return rc ? rc : refresh(e);
    }
    struct rebuild_keys k = {mf__strlist_new(), mf__strlist_new()};
    mf__manifest *ms = NULL;
    size_t nms = 0;
    mf_buf val = MF_BUF_INIT;
    int rc = MF_OK;
    if (!k.runs || !k.manifests) {
        rc = MF_ENOMEM;
        goto out;
    }
    rc = e->ds->list(e->ds, "", rebuild_cb, &k);
    if (rc == MF_EUSER)
        rc = mf__error_oom();
    if (rc)
        goto out;
    /* Read everything before touching the index, so a damaged datastore
     * leaves the old index in place. */
    size_t nruns = mf_strlist_count(k.runs);
    mf__run_record *runs = calloc(nruns ? nruns : 1, sizeof *runs);
    size_t nman = mf_strlist_count(k.manifests);
    ms = calloc(nman ? nman : 1, sizeof *ms);
    if (!runs || !ms) {
        free(runs);
        rc = mf__error_oom();
        goto out;
    }
    size_t nr = 0;
    for (size_t i = 0; i < nruns && !rc; i++) {
        const char *key = mf_strlist_get(k.runs, i);
        rc = e->ds->get(e->ds, key, 0, MF_DS_TO_END, &val);
        if (!rc)
            rc = mf__run_record_decode(&runs[nr], val.ptr, val.size, key);
        if (!rc)
            nr++;
    }
    for (size_t i = 0; i < nman && !rc; i++) {
        const char *key = mf_strlist_get(k.manifests, i);
        rc = e->ds->get(e->ds, key, 0, MF_DS_TO_END, &val);
        if (!rc)
            rc = mf__manifest_decode(&ms[nms], val.ptr, val.size, key);
        if (!rc)
            nms++;
    }
    if (!rc) {
        qsort(ms, nms, sizeof *ms, cmp_manifest);
        rc = mf__meta_clear(e->meta);
    }
    for (size_t i = 0; i < nr && !rc; i++)
        rc = mf__meta_run_put(e->meta, &runs[i]);
    for (size_t i = 0; i < nms && !rc; i++)
        rc = mf__api_record_task(e, &ms[i]);
    for (size_t i = 0; i < nr; i++)
        mf__run_record_clear(&runs[i]);
    free(runs);
    if (rc)
        mf__error_wrap("rebuilding the index of '%s'", e->root);
out:
    for (size_t i = 0; i < nms; i++)
        mf__manifest_clear(&ms[i]);
    free(ms);
    mf_buf_dispose(&val);
    mf_strlist_free(k.runs);
    mf_strlist_free(k.manifests);
    return rc;
}

static int blob_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    return mf__strlist_push(payload, key) ? 1 : 0;
}

MF_EXTERN(int) mf_store_verify(mf_engine *e, mf_strlist **bad_out)
{
    if (!e)
        return mf__error_set(MF_EINVAL, "mf_store_verify: engine is NULL");
    if (bad_out)
        *bad_out = NULL;
    mf_strlist *keys = mf__strlist_new(), *bad = mf__strlist_new();
    int rc = keys && bad ? MF_OK : MF_ENOMEM;
    if (!rc)
        rc = e->ds->list(e->ds, "data/", blob_cb, keys);
    if (rc == MF_EUSER)
        rc = mf__error_oom();
    char first[1024] = "";
    for (size_t i = 0; !rc && i < mf_strlist_count(keys); i++) {
        const char *key = mf_strlist_get(keys, i);
        int v = mf__store_verify_blob(e->store, key);
        /* Not ours to judge (a stray file), or gone since the listing (a
         * concurrent GC): nothing to verify. */
        if (v == MF_EINVAL || v == MF_ENOTFOUND) {
            mf_error_clear();
            continue;
        }
        if (v == MF_ECORRUPT || v == MF_EVERSION) {
            if (!first[0])
                snprintf(first, sizeof first, "%s", mf_error_last());
            if (mf__strlist_push(bad, key))
                rc = MF_ENOMEM;
        } else if (v) {
            rc = v;
        }
    }
    if (!rc && mf_strlist_count(bad) > 0)
        rc = mf__error_set(MF_ECORRUPT, "%zu damaged blob(s); first: %s",
                           mf_strlist_count(bad), first);
    mf_strlist_free(keys);
    if (bad_out && (rc == MF_OK || rc == MF_ECORRUPT))
        *bad_out = bad;
    else
        mf_strlist_free(bad);
    return rc;
}

/* ---- refreshing the index cache of a remote datastore */

static int dir_cb(const char *dir, void *payload)
{
    size_t n = strlen(dir);
    if (n < 2 || dir[n - 1] != '/')
        return 0;
    return mf__strlist_pushn(payload, dir, n - 1) ? 1 : 0;
}

/* "Flow/run" of every run in the datastore. */
static int remote_runs(mf_engine *e, mf_strlist *out)
{
    int rc;
    if (mf__s3_is(e->ds)) {
        mf_strlist *flows = mf__strlist_new();
        if (!flows)
            return mf__error_oom();
        rc = mf__s3_list_dirs(e->ds, "", dir_cb, flows);
        mf_buf p = MF_BUF_INIT;
        for (size_t i = 0; rc == MF_OK && i < mf_strlist_count(flows); i++) {
            const char *flow = mf_strlist_get(flows, i);
            if (mf__check_flow_name(flow) != MF_OK) { /* data/ and foreign prefixes */
                mf_error_clear();
                continue;
            }
            mf__buf_clear(&p);
            if ((rc = mf__buf_printf(&p, "%s/", flow)) == MF_OK)
                rc = mf__s3_list_dirs(e->ds, p.ptr, dir_cb, out);
        }
        mf_buf_dispose(&p);
        mf_strlist_free(flows);
    } else {
        struct rebuild_keys k = {out, NULL}; /* run records only */
        rc = e->ds->list(e->ds, "", rebuild_cb, &k);
        /* "Flow/run/_run" -> "Flow/run" */
        for (size_t i = 0; rc == MF_OK && i < mf_strlist_count(out); i++)
            ((char *)mf_strlist_get(out, i))[strlen(mf_strlist_get(out, i)) - 5] = '\0';
    }
    if (rc == MF_EUSER)
        rc = mf__error_oom();
    return rc;
}

/* Bring one run's records into the index: its run record, and every
 * manifest the index does not have yet, in recording order. */
static int sync_run(mf_engine *e, const char *flow, const char *run_id)
{
    struct rebuild_keys k = {NULL, mf__strlist_new()}; /* manifests only */
    mf_buf prefix = MF_BUF_INIT, val = MF_BUF_INIT, step = MF_BUF_INIT, task = MF_BUF_INIT;
    mf__manifest *ms = NULL;
    size_t nms = 0;
    mf__run_record run = {0};
    mf__run_record have = {0};
    int rc = k.manifests ? MF_OK : mf__error_oom();
    /* The run record first: a prefix without one (a run being created, or
     * another tool's files) is not listed at all. */
    if (!rc)
        rc = mf__buf_printf(&prefix, "%s/%s/_run", flow, run_id);
    if (!rc && (rc = e->ds->get(e->ds, prefix.ptr, 0, MF_DS_TO_END, &val)) == MF_ENOTFOUND) {
        mf_error_clear();
        rc = MF_OK;
        goto out;
    }
    if (!rc && (rc = mf__run_record_decode(&run, val.ptr, val.size, prefix.ptr)) != MF_OK)
        goto out;
    prefix.size -= 4; /* "Flow/run/" */
    prefix.ptr[prefix.size] = '\0';
    if (!rc && (rc = e->ds->list(e->ds, prefix.ptr, rebuild_cb, &k)) == MF_EUSER)
        rc = mf__error_oom();
    if (rc)
        goto out;
    size_t nman = mf_strlist_count(k.manifests);
    ms = calloc(nman ? nman : 1, sizeof *ms);
    if (!ms) {
        rc = mf__error_oom();
        goto out;
    }
    for (size_t i = 0; i < nman && !rc; i++) {
        const char *key = mf_strlist_get(k.manifests, i);
        uint32_t attempt = 0;
        mf__task_record known = {0};
        if (!mf__store_parse_manifest_key(key, NULL, NULL, &step, &task, &attempt))
            continue;
        if (mf__meta_task_get(e->meta, flow, run_id, step.ptr, task.ptr, attempt, &known) ==
            MF_OK) {
            mf__task_record_clear(&known);
            continue;
        }
        mf_error_clear();
        rc = e->ds->get(e->ds, key, 0, MF_DS_TO_END, &val);
        if (!rc)
            rc = mf__manifest_decode(&ms[nms], val.ptr, val.size, key);
        if (!rc)
            nms++;
    }
    if (rc)
        goto out;
    qsort(ms, nms, sizeof *ms, cmp_manifest);
    /* A runtime on this machine may have finished the run since the
     * record was read: a final status in the index is never taken back. */
    if (mf__meta_run_get(e->meta, flow, run_id, &have) == MF_OK &&
        have.status != MF_RUN_RUNNING && run.status == MF_RUN_RUNNING)
        rc = MF_OK;
    else
        rc = mf__meta_run_put(e->meta, &run);
    mf_error_clear();
    for (size_t i = 0; i < nms && !rc; i++)
        rc = mf__api_record_task(e, &ms[i]);
out:
    for (size_t i = 0; i < nms; i++)
        mf__manifest_clear(&ms[i]);
    free(ms);
    mf__run_record_clear(&run);
    mf__run_record_clear(&have);
    mf_buf_dispose(&prefix);
    mf_buf_dispose(&val);
    mf_buf_dispose(&step);
    mf_buf_dispose(&task);
    mf_strlist_free(k.manifests);
    return rc;
}

/* Runs the index has as finished never change again (but for tags, which
 * mf_index_rebuild() picks up); the others are read from the datastore. */
static int refresh(mf_engine *e)
{
    mf_strlist *runs = mf__strlist_new();
    int rc = runs ? remote_runs(e, runs) : mf__error_oom();
    for (size_t i = 0; rc == MF_OK && i < mf_strlist_count(runs); i++) {
        char *fr = (char *)mf_strlist_get(runs, i);
        char *slash = strchr(fr, '/');
        if (!slash)
            continue;
        *slash = '\0';
        const char *flow = fr, *run_id = slash + 1;
        if (mf__check_flow_name(flow) != MF_OK || mf__check_id("run id", run_id) != MF_OK ||
            strcmp(run_id, "data") == 0) {
            mf_error_clear();
            continue;
        }
        mf__run_record have = {0};
        if (mf__meta_run_get(e->meta, flow, run_id, &have) == MF_OK &&
            have.status != MF_RUN_RUNNING) {
            mf__run_record_clear(&have);
            continue;
        }
        mf__run_record_clear(&have);
        mf_error_clear();
        rc = sync_run(e, flow, run_id);
        if (rc == MF_ECORRUPT || rc == MF_EVERSION || rc == MF_ENOTFOUND) {
            /* One damaged (or newer-format) run must not hide the others;
             * mf_store_verify() and mf_index_rebuild() report it. */
            mf_error_clear();
            rc = MF_OK;
        }
    }
    mf_strlist_free(runs);
    if (rc)
        mf__error_wrap("refreshing the index of '%s'", e->root);
    return rc;
}

MF_EXTERN(int) mf_index_refresh(mf_engine *e)
{
    if (!e)
        return mf__error_set(MF_EINVAL, "mf_index_refresh: engine is NULL");
    /* A local datastore's index is written with the data: always current. */
    return e->remote ? refresh(e) : MF_OK;
}
