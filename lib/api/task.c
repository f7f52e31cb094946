/* Tasks: writing artifacts and committing manifests; opening committed
 * tasks for reading. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "datastore/datastore.h"

/* Insert or replace artifact `a` (taken) in the task's sorted list. */
static int insert_artifact(mf_task *t, mf__martifact *a);

MF_EXTERN(int) mf_task_options_init(mf_task_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_task_options_init: options are NULL");
    if (version != MF_TASK_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_task_options", version);
    mf_task_options init = MF_TASK_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

static int set_pathspec(mf_task *t)
{
    mf_buf b = MF_BUF_INIT;
    int rc = mf__buf_printf(&b, "%s/%s/%s/%s", t->man.flow, t->man.run_id, t->man.step,
                            t->man.task_id);
    if (rc) {
        mf_buf_dispose(&b);
        return rc;
    }
    t->pathspec = mf__buf_detach(&b, NULL);
    return MF_OK;
}

static int manifest_key(const mf_task *t, uint32_t attempt, mf_buf *key)
{
    return mf__store_manifest_key(t->man.flow, t->man.run_id, t->man.step, t->man.task_id,
                                  attempt, key);
}

MF_EXTERN(int) mf_task_create(mf_task **out, mf_run *run, const char *step,
                              const mf_task_options *opts)
{
    if (!out || !run)
        return mf__error_set(MF_EINVAL, "mf_task_create: NULL argument");
    return mf__task_create_raw(out, run->engine, run->rec.flow, run->rec.run_id, step, opts);
}

int mf__task_create_raw(mf_task **out, mf_engine *e, const char *flow, const char *run_id,
                        const char *step, const mf_task_options *opts)
{
    return mf__task_create_ex(out, e, flow, run_id, step, opts, 0);
}

int mf__task_create_ex(mf_task **out, mf_engine *e, const char *flow, const char *run_id,
                       const char *step, const mf_task_options *opts, uint32_t flags)
{
    int rc;
    if (!out || !e)
        return mf__error_set(MF_EINVAL, "mf_task_create: NULL argument");
    *out = NULL;
    if (opts && opts->version != MF_TASK_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_task_options", opts->version);
    if (e->flags & MF_ENGINE_READONLY)
        return mf__error_set(MF_ESTATE, "cannot create a task: the engine is read-only");
    if ((rc = mf__check_step_name(step)) != MF_OK)
        return rc;
    if (opts && opts->task_id && (rc = mf__check_id("task id", opts->task_id)) != MF_OK)
        return rc;
    if (opts && opts->foreach_depth &&
        (!opts->foreach_index || !opts->foreach_nsplits))
        return mf__error_set(MF_EINVAL, "task options: foreach stack of depth %zu has no indices",
                             opts->foreach_depth);
    if (opts && opts->ninputs && !opts->input_paths)
        return mf__error_set(MF_EINVAL, "task options: %zu input paths but no array",
                             opts->ninputs);

    mf_task *t = calloc(1, sizeof *t);
    if (!t)
        return mf__error_oom();
    t->engine = e;
    t->log_cap = MF__LOG_DEFAULT_CAP;
    mf__manifest *m = &t->man;
    m->format = MF_MANIFEST_FORMAT;
    m->status = MF_TASK_RUNNING;
    m->attempt = opts ? opts->attempt : 0;
    m->started_us = mf__now_us();
    rc = MF_ENOMEM;
    if (!(m->flow = mf__strdup(flow)) || !(m->run_id = mf__strdup(run_id)) ||
        !(m->step = mf__strdup(step)))
        goto fail;
    if (opts && opts->task_id) {
        if (!(m->task_id = mf__strdup(opts->task_id)))
            goto fail;
    } else {
        mf_buf id = MF_BUF_INIT;
        if ((rc = mf__meta_task_id_next(e->meta, m->flow, m->run_id, &id)) != MF_OK) {
            mf_buf_dispose(&id);
            goto fail;
        }
        m->task_id = mf__buf_detach(&id, NULL);
        rc = MF_ENOMEM;
        if (!m->task_id)
            goto fail;
    }
    if (opts && opts->foreach_depth) {
        size_t d = opts->foreach_depth;
        m->foreach_index = calloc(d, sizeof *m->foreach_index);
        m->foreach_nsplits = calloc(d, sizeof *m->foreach_nsplits);
        m->foreach_value = calloc(d, sizeof *m->foreach_value);
        if (!m->foreach_index || !m->foreach_nsplits || !m->foreach_value)
            goto fail;
        m->foreach_depth = d;
        for (size_t i = 0; i < d; i++) {
            m->foreach_index[i] = opts->foreach_index[i];
            m->foreach_nsplits[i] = opts->foreach_nsplits[i];
            const char *v = opts->foreach_value ? opts->foreach_value[i] : NULL;
            if (!(m->foreach_value[i] = mf__strdup(v ? v : "")))
                goto fail;
        }
    }
    if (opts && opts->ninputs) {
        if (!(m->input_paths = mf__strv_dup(opts->input_paths, opts->ninputs)))
            goto fail;
        m->ninputs = opts->ninputs;
    }
    if ((rc = set_pathspec(t)) != MF_OK)
        goto fail;
    if (!(flags & MF__CREATE_NO_PROBE)) {
        mf_buf key = MF_BUF_INIT;
        rc = manifest_key(t, m->attempt, &key);
        if (!rc) {
            rc = e->ds->exists(e->ds, key.ptr, NULL);
            if (rc == MF_OK)
                rc = mf__error_set(MF_EEXISTS, "task '%s' attempt %u is already committed",
                                   t->pathspec, m->attempt);
            else if (rc == MF_ENOTFOUND)
                rc = MF_OK;
        }
        mf_buf_dispose(&key);
        if (rc)
            goto fail;
    }
    t->writable = true;
    *out = t;
    return MF_OK;
fail:
    mf_task_free(t);
    return rc;
}

static int check_encoding(const char *enc)
{
    if (!enc || !*enc)
        return mf__error_set(MF_EINVAL, "artifact encoding is empty");
    size_t n = strlen(enc);
    if (n > 63)
        return mf__error_set(MF_EINVAL, "artifact encoding '%.40s...' is longer than 63 bytes",
                             enc);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)enc[i] < 0x21 || (unsigned char)enc[i] > 0x7e)
            return mf__error_set(MF_EINVAL,
                                 "artifact encoding '%s' has a byte outside printable ASCII",
                                 enc);
    return MF_OK;
}

static void part_clear(mf__part *p)
{
    free(p->inline_data);
    p->inline_data = NULL;
}

static void martifact_clear(mf__martifact *a)
{
    free(a->name);
    free(a->encoding);
    for (uint32_t i = 0; i < a->nparts; i++)
        part_clear(&a->parts[i]);
    free(a->parts);
    memset(a, 0, sizeof *a);
}

/* An artifact named `name` with `nparts` empty parts. MF_OK or MF_ENOMEM
 * (with `a` cleared). */
static int martifact_new(mf__martifact *a, const char *name, const char *encoding,
                         uint32_t nparts)
{
    memset(a, 0, sizeof *a);
    a->parts = calloc(nparts, sizeof *a->parts);
    a->name = mf__strdup(name);
    a->encoding = mf__strdup(encoding);
    if (!a->parts || !a->name || !a->encoding) {
        martifact_clear(a);
        return mf__error_oom();
    }
    a->nparts = nparts;
    return MF_OK;
}

/* Store one part: inline when small, else a content-addressed blob. */
static int store_part(mf_task *t, const void *data, uint64_t len, uint32_t flags,
                      bool oob, mf__part *p)
{
    int rc;
    p->size = len;
    if (len < MF_STORE_INLINE_MAX && !(flags & MF_PUT_NO_INLINE)) {
        if ((rc = mf__sha256(data, (size_t)len, p->key)) != MF_OK)
            return rc;
        p->inline_data = malloc(len ? (size_t)len : 1);
        if (!p->inline_data)
            return mf__error_oom();
        if (len)
            memcpy(p->inline_data, data, (size_t)len);
        return MF_OK;
    }
    /* Out-of-band buffers stay raw so they can be mapped zero-copy. */
    return mf__store_put(t->engine->store, data, len, flags | (oob ? MF_PUT_RAW : 0), p->key);
}

/* What every put checks first: a task that takes artifacts, a valid name
 * and encoding. `fn` names the entry point for a NULL task. */
static int check_put(mf_task *t, const char *name, const char *encoding, const char *fn)
{
    int rc;
    if (!t)
        return mf__error_set(MF_EINVAL, "%s: task is NULL", fn);
    if ((rc = mf__check_artifact_name(name)) != MF_OK)
        return rc;
    if ((rc = check_encoding(encoding)) != MF_OK)
        return mf__error_wrap("artifact '%s'", name);
    if (!t->writable)
        return mf__error_set(MF_ESTATE, "task '%s' is %s: cannot put artifact '%s'",
                             t->pathspec, t->committed ? "committed" : "read-only", name);
    return MF_OK;
}

MF_EXTERN(int) mf_task_put_parts(mf_task *t, const char *name, const char *encoding,
                                 const void *const *parts, const uint64_t *lens,
                                 uint32_t nparts, uint32_t flags)
{
    int rc = check_put(t, name, encoding, "mf_task_put");
    if (rc)
        return rc;
    if (nparts == 0 || !parts || !lens)
        return mf__error_set(MF_EINVAL, "artifact '%s': no parts", name);
    for (uint32_t i = 0; i < nparts; i++)
        if (!parts[i] && lens[i])
            return mf__error_set(MF_EINVAL, "artifact '%s': part %u is NULL", name, i);

    mf__martifact a;
    if ((rc = martifact_new(&a, name, encoding, nparts)) != MF_OK)
        return rc;
    for (uint32_t i = 0; i < nparts; i++) {
        static const char empty[1];
        rc = store_part(t, parts[i] ? parts[i] : empty, lens[i], flags, i > 0, &a.parts[i]);
        if (rc) {
            martifact_clear(&a);
            return mf__error_wrap("artifact '%s' of task '%s'", name, t->pathspec);
        }
    }
    return insert_artifact(t, &a);
}

static int insert_artifact(mf_task *t, mf__martifact *ap)
{
    mf__martifact a = *ap;
    const char *name = a.name;
    /* Insert in name order, replacing an earlier put of the same name. */
    mf__manifest *m = &t->man;
    size_t lo = 0, hi = m->nartifacts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->artifacts[mid].name, name);
        if (c == 0) {
            martifact_clear(&m->artifacts[mid]);
            m->artifacts[mid] = a;
            return MF_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    mf__martifact *arr = realloc(m->artifacts, (m->nartifacts + 1) * sizeof *arr);
    if (!arr) {
        martifact_clear(&a);
        return mf__error_oom();
    }
    memmove(arr + lo + 1, arr + lo, (m->nartifacts - lo) * sizeof *arr);
    arr[lo] = a;
    m->artifacts = arr;
    m->nartifacts++;
    return MF_OK;
}

static int martifact_copy(mf__martifact *dst, const mf__martifact *src)
{
    memset(dst, 0, sizeof *dst);
    dst->name = mf__strdup(src->name);
    dst->encoding = mf__strdup(src->encoding);
    dst->parts = calloc(src->nparts ? src->nparts : 1, sizeof *dst->parts);
    if (!dst->name || !dst->encoding || !dst->parts)
        goto oom;
    dst->nparts = src->nparts;
    for (uint32_t i = 0; i < src->nparts; i++) {
        const mf__part *p = &src->parts[i];
        dst->parts[i] = *p;
        dst->parts[i].inline_data = NULL;
        if (p->inline_data) {
            dst->parts[i].inline_data = malloc(p->size ? (size_t)p->size : 1);
            if (!dst->parts[i].inline_data)
                goto oom;
            memcpy(dst->parts[i].inline_data, p->inline_data, (size_t)p->size);
        }
    }
    return MF_OK;
oom:
    martifact_clear(dst);
    return mf__error_oom();
}

/* Artifacts pass on by reference: the new manifest names the same content
 * keys, so nothing is copied in the store. */
int mf__task_inherit(mf_task *t, const mf_task *parent)
{
    mf__manifest *m = &t->man;
    const mf__manifest *pm = &parent->man;
    size_t n = m->nartifacts + pm->nartifacts;
    if (pm->nartifacts == 0)
        return MF_OK;
    mf__martifact *merged = calloc(n, sizeof *merged);
    if (!merged)
        return mf__error_oom();
    size_t i = 0, j = 0, k = 0;
    int rc = MF_OK;
    while (i < m->nartifacts || j < pm->nartifacts) {
        int c = i == m->nartifacts ? 1
              : j == pm->nartifacts ? -1
              : strcmp(m->artifacts[i].name, pm->artifacts[j].name);
        if (c <= 0) {
            merged[k++] = m->artifacts[i++];
            if (c == 0)
                j++; /* the task's own value wins */
        } else {
            if ((rc = martifact_copy(&merged[k], &pm->artifacts[j++])) != MF_OK)
                break;
            k++;
        }
    }
    if (rc != MF_OK) {
        /* Undo: only the copies belong to us. */
        for (size_t x = 0; x < k; x++) {
            bool own = true;
            for (size_t y = 0; y < m->nartifacts; y++)
                if (merged[x].name == m->artifacts[y].name)
                    own = false;
            if (own)
                martifact_clear(&merged[x]);
        }
        free(merged);
        return rc;
    }
    free(m->artifacts);
    m->artifacts = merged;
    m->nartifacts = k;
    return MF_OK;
}

void mf__task_drop_artifacts(mf_task *t)
{
    for (size_t i = 0; i < t->man.nartifacts; i++)
        martifact_clear(&t->man.artifacts[i]);
    free(t->man.artifacts);
    t->man.artifacts = NULL;
    t->man.nartifacts = 0;
}

MF_EXTERN(int) mf_task_put_ref(mf_task *t, const char *name, const mf_task *source)
{
    int rc;
    if (!t || !source)
        return mf__error_set(MF_EINVAL, "mf_task_put_ref: NULL argument");
    if ((rc = mf__check_artifact_name(name)) != MF_OK)
        return rc;
    if (!t->writable)
        return mf__error_set(MF_ESTATE, "task '%s' is %s: cannot put artifact '%s'",
                             t->pathspec, t->committed ? "committed" : "read-only", name);
    if (!source->committed)
        return mf__error_set(MF_ESTATE, "task '%s' is not committed: its artifacts cannot be "
                             "referenced", source->pathspec);
    const mf__manifest *sm = &source->man;
    for (size_t i = 0; i < sm->nartifacts; i++) {
        if (strcmp(sm->artifacts[i].name, name) != 0)
            continue;
        mf__martifact a;
        if ((rc = martifact_copy(&a, &sm->artifacts[i])) != MF_OK)
            return rc;
        return insert_artifact(t, &a);
    }
    return mf__error_set(MF_ENOTFOUND, "task '%s' has no artifact '%s'", source->pathspec,
                         name);
}

MF_EXTERN(int) mf_task_put(mf_task *t, const char *name, const char *encoding,
                           const void *data, uint64_t len, uint32_t flags)
{
    const void *parts[1] = {data};
    uint64_t lens[1] = {len};
    return mf_task_put_parts(t, name, encoding, parts, lens, 1, flags);
}

MF_EXTERN(int) mf_task_put_stream(mf_task *t, const char *name, const char *encoding,
                                  mf_read_cb read, void *payload, uint32_t flags)
{
    int rc = check_put(t, name, encoding, "mf_task_put_stream");
    if (rc)
        return rc;
    if (!read)
        return mf__error_set(MF_EINVAL, "artifact '%s': the read callback is NULL", name);

    mf__martifact a;
    if ((rc = martifact_new(&a, name, encoding, 1)) != MF_OK)
        return rc;
    /* A value the store only collected (a few MiB at most) is stored as
     * mf_task_put() stores a buffer, so both give the same part. */
    mf_buf small = MF_BUF_INIT;
    bool stored = false;
    mf__part *p = &a.parts[0];
    rc = mf__store_put_stream(t->engine->store, read, payload, flags, &small, &stored, p->key,
                              &p->size);
    if (rc == MF_OK && !stored)
        rc = store_part(t, small.ptr ? small.ptr : "", small.size, flags, false, p);
    mf_buf_dispose(&small);
    if (rc) {
        martifact_clear(&a);
        return mf__error_wrap("artifact '%s' of task '%s'", name, t->pathspec);
    }
    return insert_artifact(t, &a);
}

int mf__api_task_record(const mf__manifest *m, mf__task_record *out)
{
    mf__task_record r;
    memset(&r, 0, sizeof r);
    r.format = MF_RECORD_FORMAT;
    r.flow = m->flow;
    r.run_id = m->run_id;
    r.step = m->step;
    r.task_id = m->task_id;
    r.attempt = m->attempt;
    r.status = m->status;
    r.started_us = m->started_us;
    r.finished_us = m->finished_us;
    r.foreach_depth = m->foreach_depth;
    r.foreach_index = m->foreach_index;
    r.foreach_nsplits = m->foreach_nsplits;
    r.foreach_value = m->foreach_value;
    r.ninputs = m->ninputs;
    r.input_paths = m->input_paths;
    r.nartifacts = m->nartifacts;
    r.artifact_names = calloc(m->nartifacts ? m->nartifacts : 1, sizeof *r.artifact_names);
    if (!r.artifact_names)
        return mf__error_oom();
    for (size_t i = 0; i < m->nartifacts; i++)
        r.artifact_names[i] = m->artifacts[i].name; /* already sorted */
    *out = r;
    return MF_OK;
}

int mf__api_record_task(mf_engine *e, const mf__manifest *m)
{
    mf__task_record r;
    int rc = mf__api_task_record(m, &r);
    if (rc)
        return rc;
    rc = mf__meta_task_put(e->meta, &r);
    free(r.artifact_names);
    return rc;
}

MF_EXTERN(int) mf_task_commit(mf_task *t, int32_t status)
{
    return mf__task_commit_ex(t, status, t ? t->commit_flags : 0);
}

static int commit_inherit(mf_task *t)
{
    if (!t->inherit || t->is_join || t->man.ninputs != 1)
        return MF_OK;
    mf_task *parent = NULL;
    int rc = mf_task_input_open(&parent, t, 0);
    if (rc == MF_OK)
        rc = mf__task_inherit(t, parent);
    mf_task_free(parent);
    return rc;
}

int mf__task_commit_ex(mf_task *t, int32_t status, uint32_t flags)
{
    int rc;
    if (!t)
        return mf__error_set(MF_EINVAL, "mf_task_commit: task is NULL");
    if (!t->writable)
        return mf__error_set(MF_ESTATE, "task '%s' is %s", t->pathspec,
                             t->committed ? "already committed" : "read-only");
    if (status != MF_TASK_SUCCEEDED && status != MF_TASK_FAILED)
        return mf__error_set(MF_EINVAL, "task '%s': commit status %d is not succeeded or failed",
                             t->pathspec, (int)status);
    mf_engine *e = t->engine;
    if (status == MF_TASK_SUCCEEDED && (rc = commit_inherit(t)) != MF_OK)
        return mf__error_wrap("committing task '%s'", t->pathspec);
    if ((rc = mf__task_extra_encode(&t->x, &t->man.extra)) != MF_OK)
        return rc;
    uint32_t dsflags = (flags & MF__COMMIT_DEFER) ? MF_DS_PUT_DEFER_SYNC : 0;
    /* Logs first: a reader who sees the manifest finds them. */
    for (int s = 0; s < 2; s++) {
        if (t->log_dropped[s] && (rc = mf__log_note_dropped(&t->log[s], t->log_dropped[s],
                                                          t->log_cap)) != MF_OK)
            return rc;
        if (t->log[s].size &&
            (rc = mf__log_persist(e, t->man.flow, t->man.run_id, t->man.step, t->man.task_id,
                                  t->man.attempt, s + 1, t->log[s].ptr, t->log[s].size,
                                  dsflags)) != MF_OK)
            return mf__error_wrap("committing task '%s'", t->pathspec);
    }
    t->man.status = status;
    t->man.finished_us = mf__now_us();
    mf_buf key = MF_BUF_INIT, val = MF_BUF_INIT;
    rc = manifest_key(t, t->man.attempt, &key);
    if (!rc)
        rc = mf__manifest_encode(&t->man, &val);
    /* Blobs were written without waiting for the disk; make them durable
     * before the manifest that references them exists (or, deferred, the
     * runtime syncs once for a batch before it acts on any of them). */
    if (!rc && !(flags & MF__COMMIT_DEFER) && (rc = mf__datastore_sync(e->ds)) != MF_OK)
        mf__error_wrap("committing task '%s'", t->pathspec);
    if (!rc) {
        /* Put-if-absent: of two writers of one attempt exactly one wins. */
        mf_ds_iovec iov = {val.ptr, val.size};
        rc = e->ds->put(e->ds, key.ptr, &iov, 1, MF_DS_PUT_IF_ABSENT | dsflags);
        if (rc == MF_EEXISTS)
            rc = mf__error_set(MF_EEXISTS, "task '%s' attempt %u was committed by another writer",
                               t->pathspec, t->man.attempt);
        else if (rc)
            mf__error_wrap("committing task '%s'", t->pathspec);
    }
    mf_buf_dispose(&key);
    mf_buf_dispose(&val);
    if (rc) {
        t->man.status = MF_TASK_RUNNING;
        t->man.finished_us = 0;
        return rc;
    }
    t->writable = false;
    t->committed = true;
    if (flags & MF__COMMIT_DEFER)
        return MF_OK;
    /* The manifest is the truth; an index failure here is repaired by
     * mf_index_rebuild(), so it is reported but the commit stands. */
    rc = mf__api_record_task(e, &t->man);
    if (rc)
        return mf__error_wrap("task '%s' committed, but indexing it failed", t->pathspec);
    return MF_OK;
}

/* Highest attempt with a manifest in the datastore (for tasks the index
 * has not seen, e.g. written on another machine). */
struct attempt_scan {
    uint32_t best;
    bool found;
};

static int attempt_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    struct attempt_scan *s = payload;
    uint32_t a;
    if (mf__store_parse_manifest_key(key, NULL, NULL, NULL, NULL, &a)) {
        if (!s->found || a > s->best)
            s->best = a;
        s->found = true;
    }
    return 0;
}

MF_EXTERN(int) mf_task_open(mf_task **out, mf_engine *e, const char *pathspec)
{
    int rc;
    if (!out || !e || !pathspec)
        return mf__error_set(MF_EINVAL, "mf_task_open: NULL argument");
    *out = NULL;
    char *parts[6] = {0};
    size_t n = 0;
    char *copy = mf__strdup(pathspec);
    if (!copy)
        return MF_ENOMEM;
    for (char *s = copy, *tok; n < 6 && (tok = strsep(&s, "/")) != NULL;)
        parts[n++] = tok;
    if (n < 4 || n > 5) {
        free(copy);
        return mf__error_set(MF_EINVAL,
                             "pathspec '%s' is not Flow/run/step/task or Flow/run/step/task/attempt",
                             pathspec);
    }
    if ((rc = mf__check_flow_name(parts[0])) || (rc = mf__check_id("run id", parts[1])) ||
        (rc = mf__check_step_name(parts[2])) || (rc = mf__check_id("task id", parts[3]))) {
        free(copy);
        return mf__error_wrap("pathspec '%s'", pathspec);
    }
    int64_t attempt = -1;
    if (n == 5) {
        char *end;
        unsigned long v = strtoul(parts[4], &end, 10);
        if (!*parts[4] || *end || v > UINT32_MAX) {
            rc = mf__error_set(MF_EINVAL, "pathspec '%s': attempt '%s' is not a number",
                               pathspec, parts[4]);
            free(copy);
            return rc;
        }
        attempt = (int64_t)v;
    }
    mf_task *t = calloc(1, sizeof *t);
    if (!t) {
        free(copy);
        return mf__error_oom();
    }
    t->engine = e;
    mf_buf key = MF_BUF_INIT, val = MF_BUF_INIT, what = MF_BUF_INIT;
    if (attempt < 0) {
        mf__task_record r;
        memset(&r, 0, sizeof r);
        rc = mf__meta_task_get(e->meta, parts[0], parts[1], parts[2], parts[3], -1, &r);
        if (rc == MF_OK) {
            attempt = r.attempt;
        } else if (rc == MF_ENOTFOUND) {
            struct attempt_scan s = {0, false};
            mf_buf prefix = MF_BUF_INIT;
            rc = mf__buf_printf(&prefix, "%s/%s/%s/%s/", parts[0], parts[1], parts[2], parts[3]);
            if (!rc)
                rc = e->ds->list(e->ds, prefix.ptr, attempt_cb, &s);
            mf_buf_dispose(&prefix);
            if (!rc && !s.found)
                rc = mf__error_set(MF_ENOTFOUND, "task '%s' not found", pathspec);
            attempt = s.best;
        }
        mf__task_record_clear(&r);
        if (rc)
            goto fail;
    }
    rc = mf__store_manifest_key(parts[0], parts[1], parts[2], parts[3], (uint32_t)attempt, &key);
    if (!rc) {
        rc = e->ds->get(e->ds, key.ptr, 0, MF_DS_TO_END, &val);
        if (rc == MF_ENOTFOUND)
            rc = mf__error_set(MF_ENOTFOUND, "task '%s' attempt %lld not found", pathspec,
                               (long long)attempt);
    }
    if (!rc)
        rc = mf__buf_printf(&what, "manifest of task '%s/%s/%s/%s' attempt %lld", parts[0],
                            parts[1], parts[2], parts[3], (long long)attempt);
    if (!rc)
        rc = mf__manifest_decode(&t->man, val.ptr, val.size, what.ptr);
    if (!rc && (strcmp(t->man.flow, parts[0]) || strcmp(t->man.run_id, parts[1]) ||
                strcmp(t->man.step, parts[2]) || strcmp(t->man.task_id, parts[3]) ||
                t->man.attempt != (uint32_t)attempt))
        rc = mf__error_set(MF_ECORRUPT, "%s: it describes another task", what.ptr);
    if (!rc)
        rc = mf__task_extra_decode(&t->x, &t->man.extra, what.ptr);
    if (!rc)
        rc = set_pathspec(t);
    if (rc)
        goto fail;
    t->committed = true;
    mf_buf_dispose(&key);
    mf_buf_dispose(&val);
    mf_buf_dispose(&what);
    free(copy);
    *out = t;
    return MF_OK;
fail:
    mf_buf_dispose(&key);
    mf_buf_dispose(&val);
    mf_buf_dispose(&what);
    free(copy);
    mf_task_free(t);
    return rc;
}

MF_EXTERN(void) mf_task_free(mf_task *t)
{
    if (!t)
        return;
    mf__manifest_clear(&t->man);
    mf__task_extra_clear(&t->x);
    mf_buf_dispose(&t->log[0]);
    mf_buf_dispose(&t->log[1]);
    free(t->pathspec);
    free(t);
}

MF_EXTERN(const char *) mf_task_pathspec(const mf_task *t) { return t ? t->pathspec : NULL; }
MF_EXTERN(const char *) mf_task_id(const mf_task *t) { return t ? t->man.task_id : NULL; }
MF_EXTERN(const char *) mf_task_step(const mf_task *t) { return t ? t->man.step : NULL; }
MF_EXTERN(uint32_t) mf_task_attempt(const mf_task *t) { return t ? t->man.attempt : 0; }

MF_EXTERN(int) mf_task_status_get(const mf_task *t)
{
    if (!t)
        return mf__error_set(MF_EINVAL, "mf_task_status_get: task is NULL");
    return t->man.status;
}

MF_EXTERN(int) mf_task_artifacts(const mf_task *t, uint32_t flags, mf_strlist **out)
{
    if (!t || !out)
        return mf__error_set(MF_EINVAL, "mf_task_artifacts: NULL argument");
    *out = NULL;
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    for (size_t i = 0; i < t->man.nartifacts; i++) {
        const char *name = t->man.artifacts[i].name;
        if (name[0] == '_' && !(flags & MF_LIST_PRIVATE))
            continue;
        if (mf__strlist_push(l, name)) {
            mf_strlist_free(l);
            return MF_ENOMEM;
        }
    }
    *out = l;
    return MF_OK;
}
