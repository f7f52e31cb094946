/* Runs: records in the index and in the datastore, liveness, tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

MF_EXTERN(int) mf_run_options_init(mf_run_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_run_options_init: options are NULL");
    if (version != MF_RUN_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_run_options", version);
    mf_run_options init = MF_RUN_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

/* Sort and drop repeated user tags. */
static void tags_normalize(char **tags, size_t *n)
{
    mf__strvec_sort(tags, *n);
    *n = mf__strvec_uniq(tags, *n);
}

MF_EXTERN(int) mf_run_create(mf_run **out, mf_engine *e, const char *flow,
                             const mf_run_options *opts)
{
    int rc;
    if (!out || !e)
        return mf__error_set(MF_EINVAL, "mf_run_create: NULL argument");
    *out = NULL;
    if (opts && opts->version != MF_RUN_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_run_options", opts->version);
    if (e->flags & MF_ENGINE_READONLY)
        return mf__error_set(MF_ESTATE, "cannot create a run: the engine is read-only");
    if ((rc = mf__check_flow_name(flow)) != MF_OK)
        return rc;
    if (opts && opts->run_id && (rc = mf__check_id("run id", opts->run_id)) != MF_OK)
        return rc;
    if (opts && opts->origin_run_id &&
        (rc = mf__check_id("origin run id", opts->origin_run_id)) != MF_OK)
        return rc;
    for (size_t i = 0; opts && i < opts->ntags; i++)
        if ((rc = mf__check_tag(opts->tags[i])) != MF_OK)
            return rc;
    for (size_t i = 0; opts && i < opts->nparams; i++) {
        if (!opts->param_names || !opts->param_values || !opts->param_values[i])
            return mf__error_set(MF_EINVAL, "run parameter %zu has no name or value", i);
        if ((rc = mf__check_artifact_name(opts->param_names[i])) != MF_OK)
            return mf__error_wrap("run parameter");
    }

    mf_run *r = calloc(1, sizeof *r);
    if (!r)
        return mf__error_oom();
    r->engine = e;
    mf__run_record *rec = &r->rec;
    rec->format = MF_RECORD_FORMAT;
    rc = MF_ENOMEM;
    if (!(rec->flow = mf__strdup(flow)))
        goto fail;
    if (opts && opts->run_id && !(rec->run_id = mf__strdup(opts->run_id)))
        goto fail;
    if (opts && opts->origin_run_id && !(rec->origin_run_id = mf__strdup(opts->origin_run_id)))
        goto fail;
    if ((rc = mf__get_user(opts ? opts->user : NULL, &rec->user)) != MF_OK)
        goto fail;
    rc = MF_ENOMEM;
    rec->status = MF_RUN_RUNNING;
    rec->created_us = mf__now_us();
    rec->heartbeat_us = rec->created_us;
    if (!(rec->host = mf__strdup(e->host)))
        goto fail;
    rec->pid = (int64_t)getpid();
    {
        mf_buf b = MF_BUF_INIT;
        rec->sys_tags = calloc(3, sizeof *rec->sys_tags);
        if (!rec->sys_tags)
            goto fail;
        mf__buf_printf(&b, "user:%s", rec->user);
        rec->sys_tags[rec->nsys_tags++] = mf__buf_detach(&b, NULL);
        rec->sys_tags[rec->nsys_tags++] = mf__strdup("runtime:dev");
        mf__buf_printf(&b, "metaflow_version:libmetaflow-%s", MF_VERSION_STRING);
        rec->sys_tags[rec->nsys_tags++] = mf__buf_detach(&b, NULL);
        for (size_t i = 0; i < rec->nsys_tags; i++)
            if (!rec->sys_tags[i])
                goto fail;
    }
    if (opts && opts->ntags) {
        if (!(rec->tags = mf__strv_dup(opts->tags, opts->ntags)))
            goto fail;
        rec->ntags = opts->ntags;
        tags_normalize(rec->tags, &rec->ntags);
    }
    if (opts && opts->nparams) {
        if (!(rec->param_names = mf__strv_dup(opts->param_names, opts->nparams)))
            goto fail;
        if (!(rec->param_values = mf__strv_dup(opts->param_values, opts->nparams)))
            goto fail;
        rec->nparams = opts->nparams;
    }
    /* The index allocates a unique id and, in the same transaction, the
     * lock marks the run as held by this process: a death from here on
     * reads as "crashed", and no reader ever sees it unheld before. */
    if ((rc = mf__meta_run_insert_locked(e->meta, rec)) != MF_OK)
        goto fail;
    r->owner = true;
    if ((rc = mf__run_record_write(e, rec)) != MF_OK) {
        /* Leave an honest record: the run failed before it began. */
        int keep = rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", mf_error_last());
        rec->status = MF_RUN_FAILED;
        rec->finished_us = mf__now_us();
        mf__meta_run_put(e->meta, rec);
        mf__meta_run_unlock(e->meta, rec->flow, rec->run_id);
        r->owner = false;
        rc = mf__error_set(keep, "%s", msg);
        goto fail;
    }
    *out = r;
    return MF_OK;
fail:
    mf_run_free(r);
    return rc;
}

static int open_latest(mf_engine *e, const char *flow, uint32_t flags, char **id)
{
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    int rc = mf__meta_run_list(e->meta, flow, NULL, 0, flags, 1, l);
    if (!rc && mf_strlist_count(l) == 0)
        rc = mf__error_set(MF_ENOTFOUND, "flow '%s' has no %sruns", flow,
                           flags & MF_LIST_SUCCESSFUL ? "successful " : "");
    if (!rc && !(*id = mf__strdup(mf_strlist_get(l, 0))))
        rc = MF_ENOMEM;
    mf_strlist_free(l);
    return rc;
}

MF_EXTERN(int) mf_run_open(mf_run **out, mf_engine *e, const char *flow, const char *run_id)
{
    int rc;
    char *id = NULL;
    if (!out || !e || !run_id)
        return mf__error_set(MF_EINVAL, "mf_run_open: NULL argument");
    *out = NULL;
    if ((rc = mf__check_flow_name(flow)) != MF_OK)
        return rc;
    if (strcmp(run_id, "latest") == 0)
        rc = open_latest(e, flow, 0, &id);
    else if (strcmp(run_id, "latest_successful") == 0)
        rc = open_latest(e, flow, MF_LIST_SUCCESSFUL, &id);
    else if ((rc = mf__check_id("run id", run_id)) == MF_OK && !(id = mf__strdup(run_id)))
        rc = MF_ENOMEM;
    if (rc)
        return rc;
    mf_run *r = calloc(1, sizeof *r);
    if (!r) {
        free(id);
        return mf__error_oom();
    }
    r->engine = e;
    rc = mf__meta_run_get(e->meta, flow, id, &r->rec);
    if (rc == MF_ENOTFOUND)
        rc = mf__error_set(MF_ENOTFOUND, "run '%s/%s' not found", flow, id);
    free(id);
    if (rc) {
        mf_run_free(r);
        return rc;
    }
    *out = r;
    return MF_OK;
}

MF_EXTERN(int) mf_run_finish(mf_run *r, int32_t status)
{
    if (!r)
        return mf__error_set(MF_EINVAL, "mf_run_finish: run is NULL");
    if (status != MF_RUN_SUCCEEDED && status != MF_RUN_FAILED)
        return mf__error_set(MF_EINVAL, "run '%s/%s': finish status %d is not succeeded or failed",
                             r->rec.flow, r->rec.run_id, (int)status);
    if (!r->owner)
        return mf__error_set(MF_ESTATE, "run '%s/%s' is not held by this handle",
                             r->rec.flow, r->rec.run_id);
    mf_engine *e = r->engine;
    r->rec.status = status;
    r->rec.finished_us = mf__now_us();
    r->rec.heartbeat_us = r->rec.finished_us;
    /* Datastore first: it is the source of truth the index is rebuilt from. */
    int rc = mf__run_record_write(e, &r->rec);
    if (!rc)
        rc = mf__meta_run_put(e->meta, &r->rec);
    if (rc)
        return rc;
    r->owner = false;
    return mf__meta_run_unlock(e->meta, r->rec.flow, r->rec.run_id);
}

MF_EXTERN(void) mf_run_free(mf_run *r)
{
    if (!r)
        return;
    /* A run the runtime drives is stopped and finished as failed. */
    if (r->rt) {
        mf__rt_free(r->rt);
        r->rt = NULL;
    }
    /* An owned, unfinished run keeps its lock until the process exits, so
     * readers see it running while this process lives and crashed after. */
    mf__run_record_clear(&r->rec);
    free(r);
}

MF_EXTERN(const char *) mf_run_flow(const mf_run *r) { return r ? r->rec.flow : NULL; }
MF_EXTERN(const char *) mf_run_id(const mf_run *r) { return r ? r->rec.run_id : NULL; }
MF_EXTERN(const char *) mf_run_user(const mf_run *r) { return r ? r->rec.user : NULL; }
MF_EXTERN(const char *) mf_run_origin(const mf_run *r) { return r ? r->rec.origin_run_id : NULL; }
MF_EXTERN(int64_t) mf_run_created_at(const mf_run *r) { return r ? r->rec.created_us : 0; }
MF_EXTERN(int64_t) mf_run_finished_at(const mf_run *r) { return r ? r->rec.finished_us : 0; }

/* Refresh the handle's record from the index. */
static int run_reload(mf_run *r)
{
    mf__run_record fresh;
    memset(&fresh, 0, sizeof fresh);
    int rc = mf__meta_run_get(r->engine->meta, r->rec.flow, r->rec.run_id, &fresh);
    if (rc)
        return rc;
    /* Identity strings stay put: mf_run_id() and friends hand them out as
     * borrowed pointers valid for the handle's life. */
    char **keep[4] = {&r->rec.flow, &r->rec.run_id, &r->rec.user, &r->rec.origin_run_id};
    char **slot[4] = {&fresh.flow, &fresh.run_id, &fresh.user, &fresh.origin_run_id};
    for (int i = 0; i < 4; i++) {
        if (*keep[i] && *slot[i] && strcmp(*keep[i], *slot[i]) == 0) {
            free(*slot[i]);
            *slot[i] = *keep[i];
            *keep[i] = NULL;
        }
    }
    mf__run_record_clear(&r->rec);
    r->rec = fresh;
    return MF_OK;
}

MF_EXTERN(int) mf_run_status_get(mf_run *r)
{
    if (!r)
        return mf__error_set(MF_EINVAL, "mf_run_status_get: run is NULL");
    int rc = run_reload(r);
    if (rc)
        return rc;
    if (r->rec.status != MF_RUN_RUNNING)
        return r->rec.status;
    /* Liveness is checkable on the host that holds the run (its lock); a
     * run held on another host is alive while its runtime refreshes the
     * heartbeat (every 10 s). */
    if (r->rec.host && strcmp(r->rec.host, r->engine->host) != 0)
        return mf__now_us() - r->rec.heartbeat_us > MF__HEARTBEAT_STALE_US ? MF_RUN_CRASHED
                                                                             : MF_RUN_RUNNING;
    rc = mf__meta_run_alive(r->engine->meta, r->rec.flow, r->rec.run_id);
    if (rc < 0)
        return rc;
    return rc ? MF_RUN_RUNNING : MF_RUN_CRASHED;
}

MF_EXTERN(int) mf_run_param(const mf_run *r, const char *name, mf_buf *out)
{
    if (!r || !name || !out)
        return mf__error_set(MF_EINVAL, "mf_run_param: NULL argument");
    for (size_t i = 0; i < r->rec.nparams; i++)
        if (strcmp(r->rec.param_names[i], name) == 0)
            return mf__buf_set(out, r->rec.param_values[i], strlen(r->rec.param_values[i]));
    return mf__error_set(MF_ENOTFOUND, "run '%s/%s' has no parameter '%s'",
                         r->rec.flow, r->rec.run_id, name);
}

static int strlist_from(mf_strlist **out, char *const *v, size_t n, char *const *v2, size_t n2)
{
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (mf__strlist_push(l, v[i])) {
            mf_strlist_free(l);
            return MF_ENOMEM;
        }
    for (size_t i = 0; i < n2; i++)
        if (mf__strlist_push(l, v2[i])) {
            mf_strlist_free(l);
            return MF_ENOMEM;
        }
    *out = l;
    return MF_OK;
}

MF_EXTERN(int) mf_run_params(const mf_run *r, mf_strlist **out)
{
    if (!r || !out)
        return mf__error_set(MF_EINVAL, "mf_run_params: NULL argument");
    return strlist_from(out, r->rec.param_names, r->rec.nparams, NULL, 0);
}

MF_EXTERN(int) mf_run_tags(mf_run *r, mf_strlist **out)
{
    if (!r || !out)
        return mf__error_set(MF_EINVAL, "mf_run_tags: NULL argument");
    int rc = run_reload(r);
    if (rc)
        return rc;
    return strlist_from(out, r->rec.sys_tags, r->rec.nsys_tags, r->rec.tags, r->rec.ntags);
}

MF_EXTERN(int) mf_run_tags_update(mf_run *r, const char *const *add, size_t nadd,
                                  const char *const *remove, size_t nremove)
{
    int rc;
    if (!r || (nadd && !add) || (nremove && !remove))
        return mf__error_set(MF_EINVAL, "mf_run_tags_update: NULL argument");
    for (size_t i = 0; i < nadd; i++)
        if ((rc = mf__check_tag(add[i])) != MF_OK)
            return rc;
    for (size_t i = 0; i < nremove; i++)
        if (!remove[i])
            return mf__error_set(MF_EINVAL, "run '%s/%s': tag %zu to remove is NULL",
                                 r->rec.flow, r->rec.run_id, i);
    if ((rc = run_reload(r)) != MF_OK)
        return rc;
    for (size_t i = 0; i < nremove; i++)
        for (size_t j = 0; j < r->rec.nsys_tags; j++)
            if (strcmp(remove[i], r->rec.sys_tags[j]) == 0)
                return mf__error_set(MF_EINVAL, "run '%s/%s': system tag '%s' cannot be removed",
                                     r->rec.flow, r->rec.run_id, remove[i]);
    size_t cap = r->rec.ntags + nadd;
    char **tags = calloc(cap ? cap : 1, sizeof *tags);
    if (!tags)
        return mf__error_oom();
    size_t n = 0;
    for (size_t i = 0; i < r->rec.ntags; i++) {
        bool drop = false;
        for (size_t j = 0; j < nremove; j++)
            drop |= strcmp(r->rec.tags[i], remove[j]) == 0;
        if (drop)
            free(r->rec.tags[i]);
        else
            tags[n++] = r->rec.tags[i];
    }
    for (size_t i = 0; i < nadd; i++) {
        if (!(tags[n] = mf__strdup(add[i]))) {
            mf__strvec_free(tags, n);
            free(r->rec.tags);
            r->rec.tags = NULL;
            r->rec.ntags = 0;
            return MF_ENOMEM;
        }
        n++;
    }
    free(r->rec.tags);
    r->rec.tags = tags;
    r->rec.ntags = n;
    tags_normalize(r->rec.tags, &r->rec.ntags);
    rc = mf__run_record_write(r->engine, &r->rec);
    if (!rc)
        rc = mf__meta_run_put(r->engine->meta, &r->rec);
    return rc;
}

MF_EXTERN(int) mf_run_list(mf_strlist **out, mf_engine *e, const char *flow,
                           const char *const *tags, size_t ntags, uint32_t flags)
{
    int rc;
    if (!out || !e || (ntags && !tags))
        return mf__error_set(MF_EINVAL, "mf_run_list: NULL argument");
    *out = NULL;
    if ((rc = mf__check_flow_name(flow)) != MF_OK)
        return rc;
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    rc = mf__meta_run_list(e->meta, flow, tags, ntags, flags, 0, l);
    if (rc) {
        mf_strlist_free(l);
        return rc;
    }
    *out = l;
    return MF_OK;
}

MF_EXTERN(int) mf_run_steps(mf_run *r, mf_strlist **out)
{
    if (!r || !out)
        return mf__error_set(MF_EINVAL, "mf_run_steps: NULL argument");
    *out = NULL;
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    int rc = mf__meta_step_list(r->engine->meta, r->rec.flow, r->rec.run_id, l);
    if (rc) {
        mf_strlist_free(l);
        return rc;
    }
    *out = l;
    return MF_OK;
}

MF_EXTERN(int) mf_run_tasks(mf_run *r, const char *step, mf_strlist **out)
{
    int rc;
    if (!r || !out)
        return mf__error_set(MF_EINVAL, "mf_run_tasks: NULL argument");
    *out = NULL;
    if ((rc = mf__check_step_name(step)) != MF_OK)
        return rc;
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    rc = mf__meta_task_list(r->engine->meta, r->rec.flow, r->rec.run_id, step, l);
    if (rc) {
        mf_strlist_free(l);
        return rc;
    }
    *out = l;
    return MF_OK;
}
