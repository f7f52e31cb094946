/* The flow object: steps in declaration order, a name index, the builder
 * API and the read accessors of include/metaflow/flow.h. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

/* ---- name index
 *
 * Lookups by name happen on every builder call and in validation; a hash
 * keeps building a long chain linear instead of quadratic. When a loaded
 * spec repeats a name, the index keeps the first step, which is also what
 * every by-name accessor returns (validation reports the repeat). */

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

size_t mf__flow_lookup(const mf_flow *flow, const char *name)
{
    if (!flow->index_cap)
        return MF__NO_STEP;
    size_t mask = flow->index_cap - 1;
    for (size_t slot = hash_name(name) & mask;; slot = (slot + 1) & mask) {
        size_t v = flow->index[slot];
        if (v == 0)
            return MF__NO_STEP;
        if (strcmp(flow->steps[v - 1].name, name) == 0)
            return v - 1;
    }
}

static void index_put(size_t *index, size_t cap, const mf__step *steps, size_t i)
{
    size_t mask = cap - 1;
    for (size_t slot = hash_name(steps[i].name) & mask;; slot = (slot + 1) & mask) {
        if (index[slot] == 0) {
            index[slot] = i + 1;
            return;
        }
        if (strcmp(steps[index[slot] - 1].name, steps[i].name) == 0)
            return; /* a repeated name: the first one stays */
    }
}

/* Make room for one more step in the index (load factor <= 1/2). */
static int index_reserve(mf_flow *flow, size_t nsteps)
{
    if (flow->index_cap >= 2 * nsteps && flow->index_cap)
        return MF_OK;
    size_t cap = flow->index_cap ? flow->index_cap : 16;
    while (cap < 2 * nsteps) {
        if (cap > SIZE_MAX / 4)
            return mf__error_oom();
        cap *= 2;
    }
    size_t *index = calloc(cap, sizeof *index);
    if (!index)
        return mf__error_oom();
    for (size_t i = 0; i < flow->nsteps; i++)
        index_put(index, cap, flow->steps, i);
    free(flow->index);
    flow->index = index;
    flow->index_cap = cap;
    return MF_OK;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int mf__strv_repeat(const char **v, size_t n, const char **dup)
{
    if (n < 2)
        return 0;
    qsort(v, n, sizeof *v, cmp_strp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0) {
            *dup = v[i];
            return 1;
        }
    return 0;
}

/* ---- lifecycle */

MF_EXTERN(int) mf_flow_new(mf_flow **out, const char *name)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_flow_new: out is NULL");
    *out = NULL;
    int rc = mf__check_flow_name(name);
    if (rc)
        return rc;
    mf_flow *flow = calloc(1, sizeof *flow);
    if (!flow || !(flow->name = strdup(name))) {
        free(flow);
        return mf__error_oom();
    }
    *out = flow;
    return MF_OK;
}

void mf__flow_clear_computed(mf_flow *flow)
{
    free(flow->topo);
    free(flow->edge_to);
    free(flow->edge_back);
    free(flow->parent_buf);
    free(flow->loop_parent_buf);
    free(flow->frames);
    flow->topo = NULL;
    flow->edge_to = NULL;
    flow->edge_back = NULL;
    flow->parent_buf = NULL;
    flow->loop_parent_buf = NULL;
    flow->frames = NULL;
    flow->nframes = 0;
    for (size_t i = 0; i < flow->nsteps; i++) {
        mf__step *s = &flow->steps[i];
        s->target_idx = NULL;
        s->target_back = NULL;
        s->parents = NULL;
        s->nparents = 0;
        s->loop_parents = NULL;
        s->nloop_parents = 0;
        s->frame = NULL;
        s->split_parent = MF__NO_STEP;
        s->matching_join = MF__NO_STEP;
        s->ipdom = MF__NO_STEP;
        s->topo_pos = 0;
    }
    flow->validated = false;
}

void mf__step_clear_transition(mf__step *step)
{
    mf__strvec_free(step->targets, step->ntargets);
    mf__strvec_free(step->cases, step->ntargets);
    free(step->var);
    step->targets = NULL;
    step->cases = NULL;
    step->var = NULL;
    step->ntargets = 0;
    step->transition = MF_TRANSITION_NONE;
}

MF_EXTERN(void) mf_flow_free(mf_flow *flow)
{
    if (!flow)
        return;
    mf__flow_clear_computed(flow);
    for (size_t i = 0; i < flow->nsteps; i++) {
        mf__step *s = &flow->steps[i];
        mf__step_clear_transition(s);
        for (size_t a = 0; a < s->nattrs; a++) {
            free(s->attrs[a].key);
            free(s->attrs[a].value);
        }
        free(s->attrs);
        free(s->name);
    }
    free(flow->steps);
    free(flow->index);
    free(flow->name);
    free(flow);
}

void mf__flow_touch(mf_flow *flow)
{
    /* The computed arrays stay allocated until the next validation or
     * mf_flow_free(); the flag is what readers check. */
    flow->validated = false;
}

bool mf__flow_validated(const mf_flow *flow)
{
    return flow && flow->validated;
}

int mf__flow_find(const mf_flow *flow, const char *step, size_t *idx)
{
    size_t i = mf__flow_lookup(flow, step);
    if (i == MF__NO_STEP)
        return mf__error_set(MF_ENOTFOUND, "flow '%s' has no step '%s'", flow->name, step);
    *idx = i;
    return MF_OK;
}

const mf__step *mf__flow_step_at(const mf_flow *flow, size_t i)
{
    return flow && i < flow->nsteps ? &flow->steps[i] : NULL;
}

int mf__flow_push_step(mf_flow *flow, char *name, uint32_t flags)
{
    if (flow->nsteps == flow->cap) {
        size_t cap = flow->cap ? flow->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(mf__step))
            return mf__error_oom();
        mf__step *steps = realloc(flow->steps, cap * sizeof *steps);
        if (!steps)
            return mf__error_oom();
        flow->steps = steps;
        flow->cap = cap;
    }
    int rc = index_reserve(flow, flow->nsteps + 1);
    if (rc)
        return rc;
    mf__step *s = &flow->steps[flow->nsteps];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->flags = flags;
    s->split_parent = s->matching_join = s->ipdom = MF__NO_STEP;
    index_put(flow->index, flow->index_cap, flow->steps, flow->nsteps);
    flow->nsteps++;
    mf__flow_touch(flow);
    return MF_OK;
}

/* ---- builder */

MF_EXTERN(int) mf_flow_add_step(mf_flow *flow, const char *step, uint32_t flags)
{
    if (!flow)
        return mf__error_set(MF_EINVAL, "mf_flow_add_step: flow is NULL");
    int rc = mf__check_step_name(step);
    if (rc)
        return mf__error_wrap("flow '%s'", flow->name);
    if (flags & ~MF_STEP_JOIN)
        return mf__error_set(MF_EINVAL, "flow '%s': step '%s': unknown flags 0x%x",
                             flow->name, step, (unsigned)(flags & ~MF_STEP_JOIN));
    if (mf__flow_lookup(flow, step) != MF__NO_STEP)
        return mf__error_set(MF_EEXISTS, "flow '%s' already has a step '%s'",
                             flow->name, step);
    char *name = strdup(step);
    if (!name)
        return mf__error_oom();
    rc = mf__flow_push_step(flow, name, flags);
    if (rc)
        free(name);
    return rc;
}

/* Common argument checks of the transition setters; finds the step. */
static int setter_step(mf_flow *flow, const char *step, const char *fn, mf__step **out)
{
    if (!flow)
        return mf__error_set(MF_EINVAL, "%s: flow is NULL", fn);
    if (!step)
        return mf__error_set(MF_EINVAL, "%s: step is NULL", fn);
    size_t i = 0;
    int rc = mf__flow_find(flow, step, &i);
    if (rc)
        return rc;
    *out = &flow->steps[i];
    return MF_OK;
}

static int check_target(const mf_flow *flow, const char *step, const char *target)
{
    if (!target || !*target)
        return mf__error_set(MF_EINVAL, "flow '%s': step '%s': a target is %s",
                             flow->name, step, target ? "empty" : "NULL");
    return MF_OK;
}

static char **dup_strv(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            mf__strvec_free(out, i);
            return NULL;
        }
    }
    return out;
}

MF_EXTERN(int) mf_flow_set_next(mf_flow *flow, const char *step,
                                const char *const *targets, size_t ntargets)
{
    mf__step *s = NULL;
    int rc = setter_step(flow, step, "mf_flow_set_next", &s);
    if (rc)
        return rc;
    if (!targets || ntargets == 0)
        return mf__error_set(MF_EINVAL, "flow '%s': step '%s': no targets given",
                             flow->name, step);
    for (size_t i = 0; i < ntargets; i++)
        if ((rc = check_target(flow, step, targets[i])))
            return rc;
    char **t = dup_strv(targets, ntargets);
    if (!t)
        return mf__error_oom();
    mf__step_clear_transition(s);
    s->targets = t;
    s->ntargets = ntargets;
    s->transition = ntargets == 1 ? MF_TRANSITION_LINEAR : MF_TRANSITION_SPLIT;
    mf__flow_touch(flow);
    return MF_OK;
}

MF_EXTERN(int) mf_flow_set_foreach(mf_flow *flow, const char *step,
                                   const char *target, const char *foreach_var)
{
    mf__step *s = NULL;
    int rc = setter_step(flow, step, "mf_flow_set_foreach", &s);
    if (rc)
        return rc;
    if ((rc = check_target(flow, step, target)))
        return rc;
    if (mf__check_artifact_name(foreach_var))
        return mf__error_wrap("flow '%s': step '%s': foreach variable", flow->name, step);
    char **t = dup_strv(&target, 1);
    char *var = strdup(foreach_var);
    if (!t || !var) {
        mf__strvec_free(t, 1);
        free(var);
        return mf__error_oom();
    }
    mf__step_clear_transition(s);
    s->targets = t;
    s->ntargets = 1;
    s->var = var;
    s->transition = MF_TRANSITION_FOREACH;
    mf__flow_touch(flow);
    return MF_OK;
}

MF_EXTERN(int) mf_flow_set_switch(mf_flow *flow, const char *step,
                                  const char *const *cases,
                                  const char *const *targets, size_t n,
                                  const char *condition_var)
{
    mf__step *s = NULL;
    int rc = setter_step(flow, step, "mf_flow_set_switch", &s);
    if (rc)
        return rc;
    if (!cases || !targets || n == 0)
        return mf__error_set(MF_EINVAL, "flow '%s': switch '%s': no cases given",
                             flow->name, step);
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_target(flow, step, targets[i])))
            return rc;
        if (!cases[i])
            return mf__error_set(MF_EINVAL, "flow '%s': switch '%s': case %zu is NULL",
                                 flow->name, step, i);
    }
    if (mf__check_artifact_name(condition_var))
        return mf__error_wrap("flow '%s': switch '%s': condition variable", flow->name, step);
    char **t = dup_strv(targets, n);
    char **c = dup_strv(cases, n);
    char *var = strdup(condition_var);
    if (!t || !c || !var) {
        mf__strvec_free(t, t ? n : 0);
        mf__strvec_free(c, c ? n : 0);
        free(var);
        return mf__error_oom();
    }
    mf__step_clear_transition(s);
    s->targets = t;
    s->cases = c;
    s->ntargets = n;
    s->var = var;
    s->transition = MF_TRANSITION_SWITCH;
    mf__flow_touch(flow);
    return MF_OK;
}

MF_EXTERN(int) mf_flow_set_step_attr(mf_flow *flow, const char *step,
                                     const char *key, const char *value)
{
    mf__step *s = NULL;
    int rc = setter_step(flow, step, "mf_flow_set_step_attr", &s);
    if (rc)
        return rc;
    if (!key || !*key)
        return mf__error_set(MF_EINVAL, "flow '%s': step '%s': attribute key is %s",
                             flow->name, step, key ? "empty" : "NULL");
    size_t a = 0;
    while (a < s->nattrs && strcmp(s->attrs[a].key, key) != 0)
        a++;
    if (!value) {
        /* NULL removes the attribute; keep the order of the others so
         * saving stays deterministic. */
        if (a < s->nattrs) {
            free(s->attrs[a].key);
            free(s->attrs[a].value);
            memmove(&s->attrs[a], &s->attrs[a + 1], (s->nattrs - a - 1) * sizeof *s->attrs);
            s->nattrs--;
        }
        return MF_OK;
    }
    char *v = strdup(value);
    if (!v)
        return mf__error_oom();
    if (a < s->nattrs) {
        free(s->attrs[a].value);
        s->attrs[a].value = v;
        return MF_OK;
    }
    char *k = strdup(key);
    mf__step_attr *attrs = k ? realloc(s->attrs, (s->nattrs + 1) * sizeof *attrs) : NULL;
    if (!attrs) {
        free(k);
        free(v);
        return mf__error_oom();
    }
    s->attrs = attrs;
    s->attrs[s->nattrs].key = k;
    s->attrs[s->nattrs].value = v;
    s->nattrs++;
    return MF_OK;
}

/* ---- accessors. They never write to the flow, so a validated flow can be
 * read from many threads. */

MF_EXTERN(int) mf_flow_problem(const mf_flow *flow)
{
    if (!flow)
        return mf__error_set(MF_EINVAL, "mf_flow_problem: flow is NULL");
    return flow->problem;
}

MF_EXTERN(const char *) mf_flow_name(const mf_flow *flow)
{
    return flow ? flow->name : NULL;
}

MF_EXTERN(size_t) mf_flow_step_count(const mf_flow *flow)
{
    return flow ? flow->nsteps : 0;
}

MF_EXTERN(const char *) mf_flow_step_name(const mf_flow *flow, size_t i)
{
    return flow && i < flow->nsteps ? flow->steps[i].name : NULL;
}

/* The step, or NULL; pointer-returning accessors use it and leave the
 * error state alone (NULL is an ordinary answer for them). */
static const mf__step *get(const mf_flow *flow, const char *step)
{
    if (!flow || !step)
        return NULL;
    size_t i = mf__flow_lookup(flow, step);
    return i == MF__NO_STEP ? NULL : &flow->steps[i];
}

/* Same for int-returning accessors, which report why. */
static int get_rc(const mf_flow *flow, const char *step, const char *fn, const mf__step **out)
{
    if (!flow || !step)
        return mf__error_set(MF_EINVAL, "%s: %s is NULL", fn, flow ? "step" : "flow");
    size_t i = 0;
    int rc = mf__flow_find(flow, step, &i);
    if (rc)
        return rc;
    *out = &flow->steps[i];
    return MF_OK;
}

MF_EXTERN(int) mf_flow_step_transition(const mf_flow *flow, const char *step)
{
    const mf__step *s = NULL;
    int rc = get_rc(flow, step, "mf_flow_step_transition", &s);
    return rc ? rc : s->transition;
}

MF_EXTERN(int) mf_flow_step_is_join(const mf_flow *flow, const char *step)
{
    const mf__step *s = NULL;
    int rc = get_rc(flow, step, "mf_flow_step_is_join", &s);
    return rc ? rc : (s->flags & MF_STEP_JOIN) != 0;
}

MF_EXTERN(size_t) mf_flow_step_target_count(const mf_flow *flow, const char *step)
{
    const mf__step *s = get(flow, step);
    return s ? s->ntargets : 0;
}

MF_EXTERN(const char *) mf_flow_step_target(const mf_flow *flow, const char *step, size_t i)
{
    const mf__step *s = get(flow, step);
    return s && i < s->ntargets ? s->targets[i] : NULL;
}

MF_EXTERN(const char *) mf_flow_step_case(const mf_flow *flow, const char *step, size_t i)
{
    const mf__step *s = get(flow, step);
    return s && s->cases && i < s->ntargets ? s->cases[i] : NULL;
}

MF_EXTERN(const char *) mf_flow_step_var(const mf_flow *flow, const char *step)
{
    const mf__step *s = get(flow, step);
    return s ? s->var : NULL;
}

MF_EXTERN(const char *) mf_flow_step_attr(const mf_flow *flow, const char *step,
                                          const char *key)
{
    const mf__step *s = get(flow, step);
    if (!s || !key)
        return NULL;
    for (size_t a = 0; a < s->nattrs; a++)
        if (strcmp(s->attrs[a].key, key) == 0)
            return s->attrs[a].value;
    return NULL;
}

MF_EXTERN(const char *) mf_flow_step_split_parent(const mf_flow *flow, const char *step)
{
    const mf__step *s = get(flow, step);
    if (!s || !flow->validated || s->split_parent == MF__NO_STEP)
        return NULL;
    return flow->steps[s->split_parent].name;
}

MF_EXTERN(int) mf_flow_step_foreach_depth(const mf_flow *flow, const char *step)
{
    const mf__step *s = NULL;
    int rc = get_rc(flow, step, "mf_flow_step_foreach_depth", &s);
    if (rc)
        return rc;
    if (!flow->validated)
        return mf__error_set(MF_ESTATE,
                             "flow '%s' is not validated: call mf_flow_validate() first",
                             flow->name);
    return s->frame ? (int)s->frame->foreach_depth : 0;
}
