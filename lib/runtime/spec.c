/*
 * Task specs: the command line, environment and resources of one attempt,
 * as docs/task-protocol.md describes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

/* Beyond this, input paths go through a file (MF_TASK_INPUTS=@path):
 * Linux limits one environment string to 128 KiB. */
#define INPUTS_ENV_MAX (64u << 10)

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static int strv_push_own(strv *s, char *str)
{
    if (!str)
        return MF_ENOMEM;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **n = realloc(s->v, nc * sizeof *n);
        if (!n) {
            free(str);
            return mf__error_oom();
        }
        s->v = n;
        s->cap = nc;
    }
    s->v[s->n++] = str;
    return MF_OK;
}

static int strv_printf(strv *s, const char *fmt, ...) MF__PRINTF(2, 3);
static int strv_printf(strv *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        return mf__error_oom();
    return strv_push_own(s, p);
}

static void strv_free(strv *s)
{
    mf__strvec_free(s->v, s->n);
    memset(s, 0, sizeof *s);
}

/* Input paths, compact when they share a run and step ("run/step/:1,2"). */
static int inputs_text(const rt_task *t, mf_buf *out)
{
    mf__buf_clear(out);
    if (t->ninputs == 0)
        return mf__buf_set(out, "", 0);
    bool same = t->ninputs > 1;
    const char *first = t->inputs[0];
    const char *slash = strrchr(first, '/');
    size_t plen = (size_t)(slash - first) + 1;
    for (size_t i = 1; same && i < t->ninputs; i++)
        if (strncmp(t->inputs[i], first, plen) != 0 || strchr(t->inputs[i] + plen, '/'))
            same = false;
    int rc = MF_OK;
    if (same) {
        rc = mf__buf_put(out, first, plen);
        if (!rc)
            rc = mf__buf_put(out, ":", 1);
        for (size_t i = 0; !rc && i < t->ninputs; i++)
            rc = mf__buf_printf(out, "%s%s", i ? "," : "", t->inputs[i] + plen);
        return rc;
    }
    for (size_t i = 0; !rc && i < t->ninputs; i++)
        rc = mf__buf_printf(out, "%s%s", i ? "," : "", t->inputs[i]);
    return rc;
}

/* Replace {placeholders} in one template argument. */
static int expand(const char *tmpl, const char *const *keys, const char *const *vals, size_t n,
                  mf_buf *out)
{
    mf__buf_clear(out);
    int rc = MF_OK;
    for (const char *p = tmpl; !rc && *p;) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            bool hit = false;
            for (size_t i = 0; close && i < n; i++) {
                size_t kl = strlen(keys[i]);
                if ((size_t)(close - p - 1) == kl && strncmp(p + 1, keys[i], kl) == 0) {
                    rc = mf__buf_puts(out, vals[i]);
                    p = close + 1;
                    hit = true;
                    break;
                }
            }
            if (hit)
                continue;
        }
        rc = mf__buf_put(out, p, 1);
        p++;
    }
    if (!rc && !out->ptr)
        rc = mf__buf_set(out, "", 0);
    return rc;
}

static double attr_double(const mf__rt *rt, const char *step, const char *key, double dflt)
{
    const char *v = mf_flow_step_attr(rt->flow, step, key);
    if (!v || !*v)
        return dflt;
    char *end;
    double d = strtod(v, &end);
    return *end || d < 0 ? dflt : d;
}

/* "0 3 apple\n1 2 x": index, count and value text per foreach level. */
static int foreach_text(const rt_task *t, mf_buf *out)
{
    mf__buf_clear(out);
    int rc = mf__buf_set(out, "", 0);
    bool first = true;
    for (size_t i = 0; !rc && i < t->nframes; i++) {
        const rt_frame *f = &t->frames[i];
        if (!f->foreach)
            continue;
        rc = mf__buf_printf(out, "%s%u %u ", first ? "" : "\n", f->index, f->n);
        for (const char *c = f->value; !rc && c && *c; c++)
            rc = mf__buf_put(out, (*c == '\n' || *c == '\r') ? " " : c, 1);
        first = false;
    }
    return rc;
}

int mf__rt_launch(mf__rt *rt, size_t ti)
{
    rt_task *t = rt->tasks[ti];
    const char *step = mf__rt_step_name(rt, t->step);
    const mf__run_record *rec = &rt->run->rec;
    strv argv = { 0 }, env = { 0 };
    mf_buf pathspec = MF_BUF_INIT, inputs = MF_BUF_INIT, fe = MF_BUF_INIT, tmp = MF_BUF_INIT,
           inputs_file = MF_BUF_INIT;
    rt_stack st = { 0 };
    int rc = mf__buf_printf(&pathspec, "%s/%s/%s/%s/%u", rec->flow, rec->run_id, step,
                            t->task_id, t->attempt);
    if (!rc)
        rc = inputs_text(t, &inputs);
    if (!rc)
        rc = foreach_text(t, &fe);
    if (rc)
        goto done;

    /* The foreach stack as arrays; {split_index} is the innermost index. */
    if ((rc = mf__rt_foreach_stack(t, &st)) != MF_OK)
        goto done;
    bool has_split = st.depth > 0;
    uint32_t split_index = has_split ? st.index[st.depth - 1] : 0;

    /* Command: the step's own "command" attribute (a shell string), else
     * the run's template. */
    char attempt_s[16], max_s[16], split_s[16];
    snprintf(attempt_s, sizeof attempt_s, "%u", t->attempt);
    snprintf(max_s, sizeof max_s, "%u", t->max_attempts ? t->max_attempts - 1 : 0);
    snprintf(split_s, sizeof split_s, "%u", split_index);
    const char *keys[] = { "step", "run_id", "task_id", "retry_count", "max_user_code_retries",
                           "input_paths", "split_index", "flow", "pathspec" };
    const char *vals[] = { step, rec->run_id, t->task_id, attempt_s, max_s,
                           inputs.ptr, has_split ? split_s : "", rec->flow, pathspec.ptr };
    size_t nk = sizeof keys / sizeof *keys;
    const char *shell = mf_flow_step_attr(rt->flow, step, "command");
    if (shell) {
        rc = strv_printf(&argv, "/bin/sh");
        if (!rc)
            rc = strv_printf(&argv, "-c");
        if (!rc)
            rc = expand(shell, keys, vals, nk, &tmp);
        if (!rc)
            rc = strv_push_own(&argv, mf__buf_detach(&tmp, NULL));
    } else {
        for (size_t i = 0; !rc && i < rt->ncommand; i++) {
            rc = expand(rt->command[i], keys, vals, nk, &tmp);
            if (!rc)
                rc = strv_push_own(&argv, mf__buf_detach(&tmp, NULL));
        }
    }
    if (rc)
        goto done;

    /* Environment (docs/task-protocol.md). */
    if (rt->engine->root)
        rc = strv_printf(&env, "MF_DATASTORE_ROOT=%s", rt->engine->root);
    if (!rc && rt->engine->ds_name)
        rc = strv_printf(&env, "MF_DATASTORE=%s", rt->engine->ds_name);
    if (!rc)
        rc = strv_printf(&env, "MF_INDEX_DIR=%s", rt->engine->index_dir);
    if (!rc)
        rc = strv_printf(&env, "MF_TASK=%s", pathspec.ptr);
    if (!rc && inputs.size > INPUTS_ENV_MAX) {
        /* Too long for one environment string: hand it over in a file. */
        rc = mf__buf_printf(&inputs_file, "%s/tmp", rt->engine->index_dir);
        if (!rc)
            rc = mf__mkdir_p(inputs_file.ptr);
        if (!rc)
            rc = mf__buf_printf(&inputs_file, "/%s.%s.%s.inputs", rec->run_id, step,
                                t->task_id);
        FILE *f = rc ? NULL : fopen(inputs_file.ptr, "wb");
        if (!rc && (!f || fwrite(inputs.ptr, 1, inputs.size, f) != inputs.size))
            rc = mf__error_errno(errno, "writing input paths", inputs_file.ptr);
        if (f && fclose(f) != 0 && !rc)
            rc = mf__error_errno(errno, "writing input paths", inputs_file.ptr);
        if (!rc)
            rc = strv_printf(&env, "MF_TASK_INPUTS=@%s", inputs_file.ptr);
    } else if (!rc) {
        rc = strv_printf(&env, "MF_TASK_INPUTS=%s", inputs.ptr);
    }
    if (!rc)
        rc = strv_printf(&env, "MF_TASK_FOREACH=%s", fe.ptr);
    if (!rc)
        rc = strv_printf(&env, "MF_TASK_JOIN=%d",
                         (mf__flow_step_at(rt->flow, t->step)->flags & MF_STEP_JOIN) ? 1 : 0);
    if (!rc && rt->origin_run_id)
        rc = strv_printf(&env, "MF_TASK_ORIGIN_RUN=%s", rt->origin_run_id);
    /* Tasks on this machine share our datastore: the batch sync covers
     * their commits (docs/task-protocol.md §7). */
    if (!rc && mf__executor_is_local(rt->ex))
        rc = strv_printf(&env, "MF_TASK_COMMIT=batch");
    /* @environment: attributes "env.NAME" = value. */
    const mf__step *ms = mf__flow_step_at(rt->flow, t->step);
    for (size_t i = 0; !rc && i < ms->nattrs; i++)
        if (strncmp(ms->attrs[i].key, "env.", 4) == 0 && ms->attrs[i].key[4])
            rc = strv_printf(&env, "%s=%s", ms->attrs[i].key + 4, ms->attrs[i].value);
    if (rc)
        goto done;

    mf_task_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.version = MF_TASK_SPEC_VERSION;
    spec.flow = rec->flow;
    spec.run_id = rec->run_id;
    spec.step = step;
    spec.task_id = t->task_id;
    spec.attempt = t->attempt;
    spec.max_attempts = t->max_attempts;
    spec.pathspec = pathspec.ptr;
    spec.origin_run_id = rt->origin_run_id;
    spec.foreach_index = st.index;
    spec.foreach_nsplits = st.nsplits;
    spec.foreach_value = st.value;
    spec.foreach_depth = st.depth;
    spec.input_paths = (const char *const *)t->inputs;
    spec.ninputs = t->ninputs;
    spec.is_join = (ms->flags & MF_STEP_JOIN) ? 1 : 0;
    spec.argv = (const char *const *)argv.v;
    spec.argc = argv.n;
    spec.env = (const char *const *)env.v;
    spec.nenv = env.n;
    spec.cpu = attr_double(rt, step, "resources.cpu", 1);
    spec.memory_mb = (uint64_t)attr_double(rt, step, "resources.memory", 4096);
    spec.gpu = (uint32_t)attr_double(rt, step, "resources.gpu", 0);
    double secs = attr_double(rt, step, "timeout.seconds", 0) +
                  60 * attr_double(rt, step, "timeout.minutes", 0) +
                  3600 * attr_double(rt, step, "timeout.hours", 0);
    spec.timeout_us = (int64_t)(secs * 1e6);

    mf__buf_clear(&t->log[0]);
    mf__buf_clear(&t->log[1]);
    t->dropped[0] = t->dropped[1] = 0;
    rc = rt->ex->submit(rt->ex, &spec, &t->handle);
    if (rc)
        mf__error_wrap("starting task '%s'", pathspec.ptr);
    if (inputs_file.size) {
        if (rc)
            unlink(inputs_file.ptr);
        else
            t->inputs_file = mf__buf_detach(&inputs_file, NULL);
    }
done:
    mf__rt_stack_clear(&st);
    strv_free(&argv);
    strv_free(&env);
    mf_buf_dispose(&pathspec);
    mf_buf_dispose(&inputs);
    mf_buf_dispose(&fe);
    mf_buf_dispose(&tmp);
    mf_buf_dispose(&inputs_file);
    return rc;
}
