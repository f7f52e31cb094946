/*
 * The msgpack flow spec (format 1, docs/flow-spec.md): mf_flow_save() and
 * mf_flow_load().
 *
 * The loader checks structure only (types, known transition names, counts
 * that the model cannot hold otherwise) and reports MF_ECORRUPT naming the
 * place; graph rules, including step-name rules, are left to
 * mf_flow_validate() so a host that sends a spec gets the same
 * mf_graph_problem whichever way the flow was built. The writer emits one
 * canonical form, so save(load(save(x))) == save(x) byte for byte.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mp.h"
#include "graph/graph.h"

#define MF_FLOW_SPEC_FORMAT 1

static const char *const transition_names[] = {
    [MF_TRANSITION_NONE] = "none",
    [MF_TRANSITION_LINEAR] = "linear",
    [MF_TRANSITION_SPLIT] = "split",
    [MF_TRANSITION_FOREACH] = "foreach",
    [MF_TRANSITION_SWITCH] = "switch",
};
#define NTRANSITIONS (sizeof transition_names / sizeof transition_names[0])

/* ---- save */

static int pack_str(msgpack_packer *pk, const char *s)
{
    return mf__mp_pack_cstr(pk, s);
}

static int pack_step(msgpack_packer *pk, const mf__step *s)
{
    bool has_cases = s->transition == MF_TRANSITION_SWITCH && s->cases;
    size_t nkeys = 5 + (has_cases ? 1 : 0) + (s->var ? 1 : 0);
    int rc = msgpack_pack_map(pk, nkeys);
    rc = rc ? rc : pack_str(pk, "name");
    rc = rc ? rc : pack_str(pk, s->name);
    rc = rc ? rc : pack_str(pk, "join");
    rc = rc ? rc : ((s->flags & MF_STEP_JOIN) ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    rc = rc ? rc : pack_str(pk, "transition");
    rc = rc ? rc : pack_str(pk, transition_names[s->transition]);
    rc = rc ? rc : pack_str(pk, "targets");
    rc = rc ? rc : mf__mp_pack_strv(pk, s->targets, s->ntargets);
    if (has_cases) {
        rc = rc ? rc : pack_str(pk, "cases");
        rc = rc ? rc : mf__mp_pack_strv(pk, s->cases, s->ntargets);
    }
    if (s->var) {
        rc = rc ? rc : pack_str(pk, "var");
        rc = rc ? rc : pack_str(pk, s->var);
    }
    rc = rc ? rc : pack_str(pk, "attrs");
    rc = rc ? rc : msgpack_pack_map(pk, s->nattrs);
    for (size_t i = 0; !rc && i < s->nattrs; i++) {
        rc = pack_str(pk, s->attrs[i].key);
        rc = rc ? rc : pack_str(pk, s->attrs[i].value);
    }
    return rc;
}

MF_EXTERN(int) mf_flow_save(const mf_flow *flow, mf_buf *out)
{
    if (!flow || !out)
        return mf__error_set(MF_EINVAL, "mf_flow_save: %s is NULL", flow ? "out" : "flow");
    mf_buf tmp = MF_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &tmp, mf__mp_buf_write);
    int rc = msgpack_pack_map(&pk, 3);
    rc = rc ? rc : pack_str(&pk, "format");
    rc = rc ? rc : msgpack_pack_uint32(&pk, MF_FLOW_SPEC_FORMAT);
    rc = rc ? rc : pack_str(&pk, "name");
    rc = rc ? rc : pack_str(&pk, flow->name);
    rc = rc ? rc : pack_str(&pk, "steps");
    rc = rc ? rc : msgpack_pack_array(&pk, flow->nsteps);
    for (size_t i = 0; !rc && i < flow->nsteps; i++)
        rc = pack_step(&pk, &flow->steps[i]);
    if (rc) {
        /* the only way a write fails is the buffer failing to grow */
        mf_buf_dispose(&tmp);
        return mf__error_oom();
    }
    mf_buf_dispose(out);
    *out = tmp;
    return MF_OK;
}

/* ---- load */

static int corrupt(const char *fmt, ...) MF__PRINTF(1, 2);
static int corrupt(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mf__error_set(MF_ECORRUPT, "flow spec: %s", msg);
}

/* A str object as a C string. Embedded NULs would silently cut the string
 * and break the round trip, so they make the spec corrupt. */
static int get_str(const msgpack_object *o, char **out, const char *where, const char *what)
{
    *out = NULL;
    if (!mf__mp_is_str(o))
        return corrupt("%s%s is not a string", where, what);
    if (o->via.str.size && memchr(o->via.str.ptr, '\0', o->via.str.size))
        return corrupt("%s%s contains a NUL byte", where, what);
    if (!(*out = mf__mp_strdup(o)))
        return mf__error_oom();
    return MF_OK;
}

/* Map keys we know, found once each; unknown keys are ignored so a later
 * minor revision of format 1 may add optional fields. */
static int scan_keys(const msgpack_object *map, const char *const *keys, size_t nkeys,
                     const msgpack_object **vals, const char *where)
{
    for (size_t k = 0; k < nkeys; k++)
        vals[k] = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR)
            return corrupt("%skey #%u is not a string", where, i);
        for (size_t k = 0; k < nkeys; k++) {
            if (!mf__mp_streq(key, keys[k]))
                continue;
            if (vals[k])
                return corrupt("%s'%s' appears twice", where, keys[k]);
            vals[k] = &map->via.map.ptr[i].val;
        }
    }
    return MF_OK;
}

static int get_strv(const msgpack_object *arr, char ***out, const char *where,
                    const char *what)
{
    *out = NULL;
    if (arr->type != MSGPACK_OBJECT_ARRAY)
        return corrupt("%s'%s' is not an array", where, what);
    uint32_t n = arr->via.array.size;
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return mf__error_oom();
    for (uint32_t i = 0; i < n; i++) {
        char item[64];
        snprintf(item, sizeof item, "'%s' item %u", what, i);
        int rc = get_str(&arr->via.array.ptr[i], &v[i], where, item);
        if (rc) {
            for (uint32_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return rc;
        }
    }
    *out = v;
    return MF_OK;
}

enum { K_NAME, K_JOIN, K_TRANSITION, K_TARGETS, K_CASES, K_VAR, K_ATTRS, K_COUNT };
static const char *const step_keys[K_COUNT] = {
    "name", "join", "transition", "targets", "cases", "var", "attrs"};

static int load_attrs(mf__step *s, const msgpack_object *m, const char *where)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return corrupt("%s'attrs' is not a map", where);
    uint32_t n = m->via.map.size;
    s->attrs = calloc(n ? n : 1, sizeof *s->attrs);
    if (!s->attrs)
        return mf__error_oom();
    for (uint32_t i = 0; i < n; i++) {
        char *k, *val;
        int rc = get_str(&m->via.map.ptr[i].key, &k, where, "an attribute key");
        if (rc)
            return rc;
        if (!*k) {
            free(k);
            return corrupt("%san attribute key is empty", where);
        }
        char what[300];
        snprintf(what, sizeof what, "attribute '%s'", k);
        if ((rc = get_str(&m->via.map.ptr[i].val, &val, where, what))) {
            free(k);
            return rc;
        }
        s->attrs[s->nattrs].key = k;
        s->attrs[s->nattrs].value = val;
        s->nattrs++;
    }
    /* Keys must be unique, or the flow could not be saved back as read. */
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return mf__error_oom();
    for (uint32_t i = 0; i < n; i++)
        keys[i] = s->attrs[i].key;
    const char *dup = NULL;
    int rc = mf__strv_repeat(keys, n, &dup);
    if (rc == 1)
        rc = corrupt("%sattribute '%s' appears twice", where, dup);
    free(keys);
    return rc;
}

static int load_step(mf_flow *flow, uint32_t idx, const msgpack_object *o)
{
    char where[320];
    snprintf(where, sizeof where, "step #%u: ", idx);
    if (o->type != MSGPACK_OBJECT_MAP)
        return corrupt("step #%u is not a map", idx);
    const msgpack_object *val[K_COUNT];
    int rc = scan_keys(o, step_keys, K_COUNT, val, where);
    if (rc)
        return rc;
    if (!val[K_NAME])
        return corrupt("%sno 'name'", where);
    char *name;
    if ((rc = get_str(val[K_NAME], &name, where, "'name'")))
        return rc;
    snprintf(where, sizeof where, "step #%u ('%.200s'): ", idx, name);

    bool join = false;
    if (val[K_JOIN] && !mf__mp_bool(val[K_JOIN], &join)) {
        free(name);
        return corrupt("%s'join' is not a boolean", where);
    }
    int transition = -1;
    if (!val[K_TRANSITION]) {
        free(name);
        return corrupt("%sno 'transition'", where);
    }
    for (size_t t = 0; t < NTRANSITIONS; t++)
        if (mf__mp_streq(val[K_TRANSITION], transition_names[t]))
            transition = (int)t;
    if (transition < 0) {
        free(name);
        return corrupt("%s'transition' is not one of none, linear, split, foreach, switch",
                       where);
    }
    if ((rc = mf__flow_push_step(flow, name, join ? MF_STEP_JOIN : 0))) {
        free(name);
        return rc;
    }
    /* From here the step belongs to the flow; mf_flow_free() cleans up. */
    mf__step *s = &flow->steps[flow->nsteps - 1];
    s->transition = transition;

    if (val[K_TARGETS]) {
        if ((rc = get_strv(val[K_TARGETS], &s->targets, where, "targets")))
            return rc;
        s->ntargets = val[K_TARGETS]->via.array.size;
    }
    if (transition == MF_TRANSITION_NONE && s->ntargets)
        return corrupt("%stransition 'none' with %zu target(s)", where, s->ntargets);
    if (transition == MF_TRANSITION_LINEAR && s->ntargets != 1)
        return corrupt("%stransition 'linear' needs exactly one target, has %zu",
                       where, s->ntargets);

    if (val[K_CASES]) {
        if (transition != MF_TRANSITION_SWITCH)
            return corrupt("%s'cases' on a %s transition", where, transition_names[transition]);
        /* checked before loading: the step frees cases as ntargets strings */
        if (val[K_CASES]->type == MSGPACK_OBJECT_ARRAY &&
            val[K_CASES]->via.array.size != s->ntargets)
            return corrupt("%s%u cases for %zu targets", where,
                           val[K_CASES]->via.array.size, s->ntargets);
        if ((rc = get_strv(val[K_CASES], &s->cases, where, "cases")))
            return rc;
    }
    if (val[K_VAR] && val[K_VAR]->type != MSGPACK_OBJECT_NIL) {
        if (transition != MF_TRANSITION_FOREACH && transition != MF_TRANSITION_SWITCH)
            return corrupt("%s'var' on a %s transition", where, transition_names[transition]);
        if ((rc = get_str(val[K_VAR], &s->var, where, "'var'")))
            return rc;
    }
    if (val[K_ATTRS] && (rc = load_attrs(s, val[K_ATTRS], where)))
        return rc;
    return MF_OK;
}

enum { T_FORMAT, T_NAME, T_STEPS, T_COUNT };
static const char *const top_keys[T_COUNT] = {"format", "name", "steps"};

static int load_root(mf_flow **out, const msgpack_object *root)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return corrupt("not a map");
    const msgpack_object *val[T_COUNT];
    int rc = scan_keys(root, top_keys, T_COUNT, val, "");
    if (rc)
        return rc;
    /* The version first: a later format may change everything else. */
    uint64_t format;
    if (!val[T_FORMAT])
        return corrupt("no 'format'");
    if (!mf__mp_uint(val[T_FORMAT], &format))
        return corrupt("'format' is not a non-negative integer");
    if (format != MF_FLOW_SPEC_FORMAT)
        return mf__error_set(MF_EVERSION,
                             "flow spec: format %llu is not supported (this library reads "
                             "format %d)", (unsigned long long)format, MF_FLOW_SPEC_FORMAT);
    if (!val[T_NAME])
        return corrupt("no 'name'");
    char *name;
    if ((rc = get_str(val[T_NAME], &name, "", "'name'")))
        return rc;
    rc = mf_flow_new(out, name);
    free(name);
    if (rc)
        return mf__error_wrap("flow spec");
    if (!val[T_STEPS])
        return corrupt("no 'steps'");
    if (val[T_STEPS]->type != MSGPACK_OBJECT_ARRAY)
        return corrupt("'steps' is not an array");
    for (uint32_t i = 0; i < val[T_STEPS]->via.array.size; i++)
        if ((rc = load_step(*out, i, &val[T_STEPS]->via.array.ptr[i])))
            return rc;
    return MF_OK;
}

MF_EXTERN(int) mf_flow_load(mf_flow **out, const void *spec, size_t len)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_flow_load: out is NULL");
    *out = NULL;
    if (!spec && len)
        return mf__error_set(MF_EINVAL, "mf_flow_load: spec is NULL");
    msgpack_unpacked up;
    int rc = mf__mp_decode(spec ? spec : "", len, "flow spec", &up);
    if (rc)
        return rc;
    mf_flow *flow = NULL;
    rc = load_root(&flow, &up.data);
    msgpack_unpacked_destroy(&up);
    if (rc) {
        mf_flow_free(flow);
        return rc;
    }
    *out = flow;
    return MF_OK;
}
