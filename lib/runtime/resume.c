/*
 * Resume: match the tasks of a new run to those of its origin run and
 * clone the ones that succeeded there. A task matches by step, foreach
 * indices and occurrence (the n-th task of that step and stack, which
 * only differs from 0 when a recursive switch ran a step again). The
 * origin is read from its manifests, the source of truth, so a task that
 * committed just before its runtime was killed counts as done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

char *mf__rt_match_key(const mf__rt *rt, const char *step, const uint32_t *idx, size_t depth,
                       uint32_t occurrence)
{
    (void)rt;
    mf_buf b = MF_BUF_INIT;
    int rc = mf__buf_printf(&b, "%s|", step);
    for (size_t i = 0; !rc && i < depth; i++)
        rc = mf__buf_printf(&b, "%s%u", i ? "." : "", idx[i]);
    if (!rc)
        rc = mf__buf_printf(&b, "|%u", occurrence);
    if (rc) {
        mf_buf_dispose(&b);
        return NULL;
    }
    return mf__buf_detach(&b, NULL);
}

typedef struct scan_entry {
    char *step, *task_id;
    uint32_t attempt;
} scan_entry;

typedef struct scan {
    scan_entry *v;
    size_t n, cap;
    int rc;
} scan;

static int scan_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    (void)size;
    (void)mtime;
    scan *s = payload;
    mf_buf step = MF_BUF_INIT, task = MF_BUF_INIT;
    uint32_t attempt;
    if (!mf__store_parse_manifest_key(key, NULL, NULL, &step, &task, &attempt)) {
        mf_buf_dispose(&step);
        mf_buf_dispose(&task);
        return 0;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        scan_entry *n = realloc(s->v, nc * sizeof *n);
        if (!n) {
            s->rc = mf__error_oom();
            return 1;
        }
        s->v = n;
        s->cap = nc;
    }
    scan_entry *e = &s->v[s->n++];
    e->step = mf__buf_detach(&step, NULL);
    e->task_id = mf__buf_detach(&task, NULL);
    e->attempt = attempt;
    return 0;
}

/* Numeric task ids in numeric order, others after them by text. */
static int cmp_task_id(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool na = la && strspn(a, "0123456789") == la, nb = lb && strspn(b, "0123456789") == lb;
    if (na != nb)
        return na ? -1 : 1;
    if (na && la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

static int cmp_scan(const void *x, const void *y)
{
    const scan_entry *a = x, *b = y;
    int c = strcmp(a->step, b->step);
    if (c)
        return c;
    c = cmp_task_id(a->task_id, b->task_id);
    if (c)
        return c;
    return a->attempt < b->attempt ? -1 : a->attempt > b->attempt;
}

static int cmp_origin(const void *x, const void *y)
{
    return strcmp(((const origin_entry *)x)->key, ((const origin_entry *)y)->key);
}

/* Occurrence of `key` (a "step|stack" string) so far, counting this one. */
static int occurrence_next(char ***keys, uint32_t **vals, size_t *n, size_t *cap,
                           const char *key, uint32_t *out)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*keys)[i], key) == 0) {
            *out = (*vals)[i]++;
            return MF_OK;
        }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **nk = realloc(*keys, nc * sizeof *nk);
        if (!nk)
            return mf__error_oom();
        *keys = nk;
        uint32_t *nv = realloc(*vals, nc * sizeof *nv);
        if (!nv)
            return mf__error_oom();
        *vals = nv;
        *cap = nc;
    }
    if (!((*keys)[*n] = mf__strdup(key)))
        return MF_ENOMEM;
    (*vals)[*n] = 1;
    (*n)++;
    *out = 0;
    return MF_OK;
}

int mf__rt_resume_prepare(mf__rt *rt, const char *resume_step)
{
    mf_engine *e = rt->engine;
    const char *flow = rt->run->rec.flow;
    size_t nsteps = mf_flow_step_count(rt->flow);
    rt->forced = calloc(nsteps ? nsteps : 1, sizeof *rt->forced);
    if (!rt->forced)
        return mf__error_oom();
    if (resume_step) {
        size_t from;
        if (mf__flow_find(rt->flow, resume_step, &from) != MF_OK)
            return mf__error_set(MF_EINVAL, "cannot resume from step '%s': flow '%s' has no "
                                 "such step", resume_step, flow);
        /* That step and everything reachable from it run again. */
        size_t *stack = malloc(nsteps * sizeof *stack), top = 0;
        if (!stack)
            return mf__error_oom();
        stack[top++] = from;
        rt->forced[from] = true;
        while (top) {
            const mf__step *s = mf__flow_step_at(rt->flow, stack[--top]);
            for (size_t i = 0; i < s->ntargets; i++)
                if (!rt->forced[s->target_idx[i]]) {
                    rt->forced[s->target_idx[i]] = true;
                    stack[top++] = s->target_idx[i];
                }
        }
        free(stack);
    }

    /* Every manifest of the origin run, latest attempt per task. */
    scan sc = { NULL, 0, 0, MF_OK };
    mf_buf prefix = MF_BUF_INIT;
    int rc = mf__buf_printf(&prefix, "%s/%s/", flow, rt->origin_run_id);
    if (!rc) {
        rc = e->ds->list(e->ds, prefix.ptr, scan_cb, &sc);
        if (rc == MF_EUSER)
            rc = sc.rc;
    }
    mf_buf_dispose(&prefix);
    if (!rc && sc.n)
        qsort(sc.v, sc.n, sizeof *sc.v, cmp_scan);
    char **okeys = NULL;
    uint32_t *ovals = NULL;
    size_t nocc = 0, occ_cap = 0;
    if (!rc && sc.n && !(rt->origin = calloc(sc.n, sizeof *rt->origin)))
        rc = mf__error_oom();
    for (size_t i = 0; !rc && i < sc.n; i++) {
        scan_entry *en = &sc.v[i];
        if (i + 1 < sc.n && !strcmp(en->step, sc.v[i + 1].step) &&
            !strcmp(en->task_id, sc.v[i + 1].task_id))
            continue; /* a later attempt follows */
        mf_buf ps = MF_BUF_INIT;
        mf_task *o = NULL;
        rc = mf__buf_printf(&ps, "%s/%s/%s/%s/%u", flow, rt->origin_run_id, en->step,
                            en->task_id, en->attempt);
        if (!rc)
            rc = mf_task_open(&o, e, ps.ptr);
        mf_buf_dispose(&ps);
        if (rc) {
            if (rc == MF_ECORRUPT) { /* a damaged manifest: that task runs again */
                mf_error_clear();
                rc = MF_OK;
            }
            continue;
        }
        char *stack = mf__rt_match_key(rt, en->step, o->man.foreach_index,
                                       o->man.foreach_depth, 0);
        uint32_t occ = 0;
        if (!stack)
            rc = MF_ENOMEM;
        else
            rc = occurrence_next(&okeys, &ovals, &nocc, &occ_cap, stack, &occ);
        free(stack);
        if (!rc) {
            origin_entry *oe = &rt->origin[rt->norigin];
            oe->key = mf__rt_match_key(rt, en->step, o->man.foreach_index,
                                       o->man.foreach_depth, occ);
            oe->task_id = mf__strdup(en->task_id);
            oe->ok = o->man.status == MF_TASK_SUCCEEDED;
            if (!oe->key || !oe->task_id) {
                free(oe->key);
                free(oe->task_id);
                rc = MF_ENOMEM;
            } else {
                rt->norigin++;
            }
        }
        mf_task_free(o);
    }
    for (size_t i = 0; i < sc.n; i++) {
        free(sc.v[i].step);
        free(sc.v[i].task_id);
    }
    free(sc.v);
    mf__strvec_free(okeys, nocc);
    free(ovals);
    if (rc)
        return rc;
    if (rt->norigin)
        qsort(rt->origin, rt->norigin, sizeof *rt->origin, cmp_origin);
    else if (!rt->origin && !(rt->origin = calloc(1, sizeof *rt->origin)))
        return mf__error_oom(); /* non-NULL: this run resumes */
    return MF_OK;
}

int mf__rt_try_clone(mf__rt *rt, size_t ti, bool *cloned, mf_task **result)
{
    *cloned = false;
    *result = NULL;
    rt_task *t = rt->tasks[ti];
    if (t->attempt != 0)
        return MF_OK; /* a retry: it ran here already */
    const char *step = mf__rt_step_name(rt, t->step);
    rt_stack st;
    int rc = mf__rt_foreach_stack(t, &st);
    if (rc)
        return rc;
    char *stack = mf__rt_match_key(rt, step, st.index, st.depth, 0);
    rc = stack ? occurrence_next(&rt->occ_keys, &rt->occ_vals, &rt->nocc, &rt->occ_cap, stack,
                                 &t->occurrence)
               : MF_ENOMEM;
    free(stack);
    bool eligible = !rc && !rt->forced[t->step];
    for (size_t i = 0; eligible && i < t->ninputs; i++)
        if (!rt->tasks[t->input_tasks[i]]->cloned)
            eligible = false; /* an input ran again: so does this */
    origin_entry probe;
    probe.key = eligible ? mf__rt_match_key(rt, step, st.index, st.depth, t->occurrence) : NULL;
    mf__rt_stack_clear(&st);
    if (rc || !eligible)
        return rc;
    if (!probe.key)
        return MF_ENOMEM;
    origin_entry *hit = rt->norigin ? bsearch(&probe, rt->origin, rt->norigin,
                                              sizeof *rt->origin, cmp_origin)
                                    : NULL;
    free(probe.key);
    if (!hit || !hit->ok)
        return MF_OK;

    mf_buf ps = MF_BUF_INIT;
    mf_task *o = NULL, *c = NULL;
    rc = mf__buf_printf(&ps, "%s/%s/%s/%s", rt->run->rec.flow, rt->origin_run_id, step,
                        hit->task_id);
    if (!rc)
        rc = mf_task_open(&o, rt->engine, ps.ptr);
    if (!rc)
        rc = mf__rt_runtime_task(rt, t, 0, &c);
    if (!rc) {
        c->inherit = false;
        rc = mf__task_inherit(c, o); /* every artifact, by reference */
    }
    if (!rc) {
        mf__task_extra *x = &c->x;
        const mf__task_extra *ox = &o->x;
        x->has_foreach_count = ox->has_foreach_count;
        x->foreach_count = ox->foreach_count;
        if (ox->nforeach_values &&
            !(x->foreach_values = mf__strv_dup((const char *const *)ox->foreach_values,
                                               ox->nforeach_values)))
            rc = MF_ENOMEM;
        else
            x->nforeach_values = ox->nforeach_values;
        if (!rc && ox->switch_case && !(x->switch_case = mf__strdup(ox->switch_case)))
            rc = MF_ENOMEM;
        mf__buf_clear(&ps);
        if (!rc)
            rc = mf__buf_printf(&ps, "%s/%s/%s", rt->origin_run_id, step, hit->task_id);
        if (!rc && !(x->origin = mf__strdup(ps.ptr)))
            rc = MF_ENOMEM;
    }
    if (!rc)
        rc = mf__task_commit_ex(c, MF_TASK_SUCCEEDED, MF__COMMIT_DEFER);
    mf_buf_dispose(&ps);
    mf_task_free(o);
    if (rc) {
        mf_task_free(c);
        return mf__error_wrap("cloning task %s of step '%s' from run '%s'", hit->task_id,
                              step, rt->origin_run_id);
    }
    *cloned = true;
    *result = c;
    return MF_OK;
}
