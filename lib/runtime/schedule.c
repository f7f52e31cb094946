/*
 * Scheduling: which tasks a finished task makes, and joins. Every task
 * carries its split frames (which task opened each enclosing split, at
 * which branch or index), so a join knows exactly which inputs it waits
 * for, also when a recursive switch runs a split twice.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "core/mp.h"
#include "rt.h"

void mf__rt_task_free(rt_task *t)
{
    if (!t)
        return;
    free(t->task_id);
    if (t->inputs_file) {
        unlink(t->inputs_file);
        free(t->inputs_file);
    }
    for (size_t i = 0; i < t->nframes; i++)
        free(t->frames[i].value);
    free(t->frames);
    mf__strvec_free(t->inputs, t->ninputs);
    free(t->input_tasks);
    mf_buf_dispose(&t->log[0]);
    mf_buf_dispose(&t->log[1]);
    mf__strvec_free(t->foreach_values, t->nforeach_values);
    free(t->switch_case);
    free(t->join_slots);
    free(t);
}

int mf__rt_foreach_stack(const rt_task *t, rt_stack *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = t->nframes ? t->nframes : 1;
    out->index = malloc(cap * sizeof *out->index);
    out->nsplits = malloc(cap * sizeof *out->nsplits);
    out->value = malloc(cap * sizeof *out->value);
    if (!out->index || !out->nsplits || !out->value) {
        mf__rt_stack_clear(out);
        return mf__error_oom();
    }
    for (size_t i = 0; i < t->nframes; i++)
        if (t->frames[i].foreach) {
            out->index[out->depth] = t->frames[i].index;
            out->nsplits[out->depth] = t->frames[i].n;
            out->value[out->depth] = t->frames[i].value;
            out->depth++;
        }
    return MF_OK;
}

void mf__rt_stack_clear(rt_stack *s)
{
    free(s->index);
    free(s->nsplits);
    free(s->value);
    memset(s, 0, sizeof *s);
}

static int next_task_id(mf__rt *rt, char *out, size_t cap)
{
    if (rt->id_left == 0) {
        /* Ids come from the index in blocks: one transaction per block,
         * not per task. Unused ids of the last block are skipped. */
        uint64_t n = 256, first;
        int rc = mf__meta_task_id_reserve(rt->engine->meta, rt->run->rec.flow,
                                          rt->run->rec.run_id, n, &first);
        if (rc)
            return rc;
        rt->next_id = first;
        rt->id_left = n;
    }
    snprintf(out, cap, "%llu", (unsigned long long)rt->next_id++);
    rt->id_left--;
    return MF_OK;
}

/* The ready queue: a ring of task indices. New tasks go to the back;
 * retries to the front, being the oldest work. */
int mf__rt_ready_push(mf__rt *rt, size_t task, bool front)
{
    if (rt->ready_len == rt->ready_cap) {
        size_t nc = rt->ready_cap ? rt->ready_cap * 2 : 64;
        size_t *n = malloc(nc * sizeof *n);
        if (!n)
            return mf__error_oom();
        for (size_t i = 0; i < rt->ready_len; i++)
            n[i] = rt->ready[(rt->ready_head + i) % rt->ready_cap];
        free(rt->ready);
        rt->ready = n;
        rt->ready_cap = nc;
        rt->ready_head = 0;
    }
    if (front) {
        rt->ready_head = (rt->ready_head + rt->ready_cap - 1) % rt->ready_cap;
        rt->ready[rt->ready_head] = task;
    } else {
        rt->ready[(rt->ready_head + rt->ready_len) % rt->ready_cap] = task;
    }
    rt->ready_len++;
    rt->tasks[task]->state = T_READY;
    return MF_OK;
}

size_t mf__rt_ready_pop(mf__rt *rt)
{
    size_t ti = rt->ready[rt->ready_head];
    rt->ready_head = (rt->ready_head + 1) % rt->ready_cap;
    rt->ready_len--;
    return ti;
}

static uint32_t attr_uint(const mf__rt *rt, size_t step, const char *key, uint32_t dflt)
{
    const char *v = mf_flow_step_attr(rt->flow, mf__rt_step_name(rt, step), key);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end || x > 1000000 ? dflt : (uint32_t)x;
}

int mf__rt_new_task(mf__rt *rt, size_t step, const rt_frame *frames, size_t nframes,
                    const size_t *inputs, size_t ninputs, size_t *out)
{
    if (rt->ntasks == rt->cap) {
        size_t nc = rt->cap ? rt->cap * 2 : 64;
        rt_task **n = realloc(rt->tasks, nc * sizeof *n);
        if (!n)
            return mf__error_oom();
        rt->tasks = n;
        rt->cap = nc;
    }
    rt_task *t = calloc(1, sizeof *t);
    if (!t)
        return mf__error_oom();
    char id[24];
    int rc = next_task_id(rt, id, sizeof id);
    t->step = step;
    /* Metaflow's @retry(times=N): N retries after the first try. */
    t->max_attempts = 1 + attr_uint(rt, step, "retry.times", 0);
    if (rc || !(t->task_id = mf__strdup(id)))
        goto fail;
    rc = MF_ENOMEM;
    if (nframes) {
        if (!(t->frames = calloc(nframes, sizeof *t->frames)))
            goto fail;
        for (size_t i = 0; i < nframes; i++) {
            t->frames[i] = frames[i];
            t->frames[i].value = NULL;
            t->nframes = i + 1;
            if (!(t->frames[i].value = mf__strdup(frames[i].value ? frames[i].value : "")))
                goto fail;
        }
    }
    if (ninputs) {
        t->inputs = calloc(ninputs, sizeof *t->inputs);
        t->input_tasks = malloc(ninputs * sizeof *t->input_tasks);
        if (!t->inputs || !t->input_tasks)
            goto fail;
        for (size_t i = 0; i < ninputs; i++) {
            const rt_task *p = rt->tasks[inputs[i]];
            mf_buf b = MF_BUF_INIT;
            if (mf__buf_printf(&b, "%s/%s/%s", rt->run->rec.run_id,
                               mf__rt_step_name(rt, p->step), p->task_id)) {
                mf_buf_dispose(&b);
                goto fail;
            }
            t->inputs[i] = mf__buf_detach(&b, NULL);
            t->ninputs = i + 1;
            t->input_tasks[i] = inputs[i];
        }
    }
    rt->tasks[rt->ntasks] = t;
    *out = rt->ntasks++;
    return mf__rt_ready_push(rt, *out, false);
fail:
    mf__rt_task_free(t);
    return rc ? rc : MF_ENOMEM;
}

/* A task reached `target` with split frames `frames`. */
static int advance(mf__rt *rt, size_t from, size_t target, const rt_frame *frames,
                   size_t nframes)
{
    const mf__step *ts = mf__flow_step_at(rt->flow, target);
    size_t made;
    if (!(ts->flags & MF_STEP_JOIN))
        return mf__rt_new_task(rt, target, frames, nframes, &from, 1, &made);

    if (nframes == 0)
        return mf__error_set(MF_ERROR, "join '%s' reached outside any split", ts->name);
    const rt_frame *f = &frames[nframes - 1];
    rt_task *split = rt->tasks[f->split_task];
    if (!split->join_slots) {
        split->join_expected = f->n;
        split->join_slots = malloc((f->n ? f->n : 1) * sizeof *split->join_slots);
        if (!split->join_slots)
            return mf__error_oom();
        for (size_t i = 0; i < f->n; i++)
            split->join_slots[i] = SIZE_MAX;
    }
    if (f->index >= split->join_expected || split->join_slots[f->index] != SIZE_MAX)
        return mf__error_set(MF_ERROR, "join '%s': input %u of task %s arrived twice",
                             ts->name, f->index, split->task_id);
    split->join_slots[f->index] = from;
    if (++split->join_arrived < split->join_expected)
        return MF_OK;
    /* Inputs in split order: foreach index, or branch order as declared. */
    return mf__rt_new_task(rt, target, frames, nframes - 1, split->join_slots,
                           split->join_expected, &made);
}

/* The foreach count a task did not state, from its foreach variable when
 * the library can read it: a msgpack or JSON array. */
static int count_from_artifact(mf__rt *rt, mf_task *res, const char *var, uint64_t *count)
{
    const char *step = mf_task_step(res);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    int rc = mf_task_artifact(&a, res, var);
    if (rc == MF_ENOTFOUND)
        return mf__error_set(MF_EINVAL, "step '%s': foreach variable '%s' was not set", step,
                             var);
    if (!rc)
        rc = mf_artifact_read(a, 0, &b);
    const char *enc = a ? mf_artifact_encoding(a) : "";
    if (!rc) {
        if (strcmp(enc, "msgpack") == 0) {
            msgpack_unpacked u;
            rc = mf__mp_decode(b.ptr, b.size, "foreach variable", &u);
            if (!rc) {
                if (u.data.type == MSGPACK_OBJECT_ARRAY)
                    *count = u.data.via.array.size;
                else
                    rc = MF_EINVAL;
                msgpack_unpacked_destroy(&u);
            }
        } else if (strcmp(enc, "json") == 0) {
            json_t *j = json_loadb(b.ptr ? b.ptr : "", b.size, 0, NULL);
            if (j && json_is_array(j))
                *count = json_array_size(j);
            else
                rc = MF_EINVAL;
            json_decref(j);
        } else {
            rc = MF_EINVAL;
        }
        if (rc == MF_EINVAL || rc == MF_ECORRUPT)
            rc = mf__error_set(MF_EINVAL,
                               "step '%s': foreach variable '%s' is not a list the library "
                               "can count (encoding '%s'); call mf_task_set_foreach()",
                               step, var, enc);
    }
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    (void)rt;
    return rc;
}

/* The switch case a task did not state, from its condition variable when
 * it is text ("str", "utf-8", "raw") or a JSON or msgpack string. */
static int case_from_artifact(mf_task *res, const char *var, char **out)
{
    const char *step = mf_task_step(res);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    int rc = mf_task_artifact(&a, res, var);
    if (rc == MF_ENOTFOUND)
        return mf__error_set(MF_EINVAL, "step '%s': switch condition '%s' was not set", step,
                             var);
    if (!rc)
        rc = mf_artifact_read(a, 0, &b);
    const char *enc = a ? mf_artifact_encoding(a) : "";
    if (!rc) {
        if (!strcmp(enc, "str") || !strcmp(enc, "utf-8") || !strcmp(enc, "raw")) {
            *out = malloc(b.size + 1);
            if (*out) {
                memcpy(*out, b.ptr ? b.ptr : "", b.size);
                (*out)[b.size] = 0;
            }
        } else if (!strcmp(enc, "json")) {
            json_t *j = json_loadb(b.ptr ? b.ptr : "", b.size, JSON_DECODE_ANY, NULL);
            if (j && json_is_string(j))
                *out = strdup(json_string_value(j));
            else
                rc = MF_EINVAL;
            json_decref(j);
        } else if (!strcmp(enc, "msgpack")) {
            msgpack_unpacked u;
            rc = mf__mp_decode(b.ptr, b.size, "switch condition", &u);
            if (!rc) {
                *out = mf__mp_is_str(&u.data) ? mf__mp_strdup(&u.data) : NULL;
                if (!*out)
                    rc = MF_EINVAL;
                msgpack_unpacked_destroy(&u);
            }
        } else {
            rc = MF_EINVAL;
        }
        if (rc == MF_EINVAL || rc == MF_ECORRUPT)
            rc = mf__error_set(MF_EINVAL,
                               "step '%s': switch condition '%s' is not text the library can "
                               "read (encoding '%s'); call mf_task_set_switch()",
                               step, var, enc);
        else if (!rc && !*out)
            rc = mf__error_oom();
    }
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    return rc;
}

/* Take what the scheduler needs from a committed attempt. */
static int take_result(mf__rt *rt, rt_task *t, mf_task *res)
{
    const mf__step *s = mf__flow_step_at(rt->flow, t->step);
    const mf__task_extra *x = &res->x;
    if (s->transition == MF_TRANSITION_FOREACH) {
        if (x->has_foreach_count) {
            t->foreach_count = x->foreach_count;
        } else {
            int rc = count_from_artifact(rt, res, s->var, &t->foreach_count);
            if (rc)
                return rc;
        }
        t->has_foreach_count = true;
        if (x->nforeach_values == t->foreach_count && x->nforeach_values) {
            t->foreach_values = calloc(x->nforeach_values, sizeof *t->foreach_values);
            if (!t->foreach_values)
                return mf__error_oom();
            for (size_t i = 0; i < x->nforeach_values; i++)
                if (!(t->foreach_values[i] = mf__strdup(x->foreach_values[i])))
                    return MF_ENOMEM;
            t->nforeach_values = x->nforeach_values;
        }
    } else if (s->transition == MF_TRANSITION_SWITCH) {
        if (x->switch_case) {
            if (!(t->switch_case = mf__strdup(x->switch_case)))
                return MF_ENOMEM;
        } else {
            int rc = case_from_artifact(res, s->var, &t->switch_case);
            if (rc)
                return rc;
        }
    }
    return MF_OK;
}

/* Successors of a task that succeeded, given the result read back. */
int mf__rt_succeeded(mf__rt *rt, size_t ti)
{
    rt_task *t = rt->tasks[ti];
    const mf__step *s = mf__flow_step_at(rt->flow, t->step);
    int rc = MF_OK;
    switch (s->transition) {
    case MF_TRANSITION_NONE:
        rt->end_done++;
        return MF_OK;
    case MF_TRANSITION_LINEAR:
        return advance(rt, ti, s->target_idx[0], t->frames, t->nframes);
    case MF_TRANSITION_SPLIT:
    case MF_TRANSITION_FOREACH: {
        bool fe = s->transition == MF_TRANSITION_FOREACH;
        uint64_t n = fe ? t->foreach_count : s->ntargets;
        if (fe && n == 0)
            return mf__error_set(MF_EFAILED, "step '%s': foreach variable '%s' is empty "
                                 "(task %s): a foreach needs at least one item",
                                 s->name, s->var, t->task_id);
        if (fe && n > rt->max_num_splits)
            return mf__error_set(MF_EFAILED, "step '%s': foreach over '%s' has %llu items, "
                                 "more than max_num_splits (%u)", s->name, s->var,
                                 (unsigned long long)n, rt->max_num_splits);
        rt_frame *fr = malloc((t->nframes + 1) * sizeof *fr);
        if (!fr)
            return mf__error_oom();
        if (t->nframes)
            memcpy(fr, t->frames, t->nframes * sizeof *fr);
        for (uint64_t i = 0; !rc && i < n && !rt->failing; i++) {
            rt_frame *f = &fr[t->nframes];
            f->split_task = ti;
            f->index = (uint32_t)i;
            f->n = (uint32_t)n;
            f->foreach = fe;
            f->value = fe && t->nforeach_values ? t->foreach_values[i] : NULL;
            rc = advance(rt, ti, fe ? s->target_idx[0] : s->target_idx[i], fr, t->nframes + 1);
        }
        free(fr);
        return rc;
    }
    case MF_TRANSITION_SWITCH:
        for (size_t i = 0; i < s->ntargets; i++) {
            const char *c = s->cases ? s->cases[i] : s->targets[i];
            if (t->switch_case && strcmp(c, t->switch_case) == 0)
                return advance(rt, ti, s->target_idx[i], t->frames, t->nframes);
        }
        return mf__error_set(MF_EFAILED, "step '%s' (task %s): switch condition '%s' is '%s', "
                             "which matches no case", s->name, t->task_id, s->var,
                             t->switch_case ? t->switch_case : "");
    }
    return mf__error_set(MF_ERROR, "step '%s' has an unknown transition", s->name);
}

/* Called with each attempt's committed result before mf__rt_succeeded. */
int mf__rt_take_result(mf__rt *rt, size_t ti, mf_task *res)
{
    return take_result(rt, rt->tasks[ti], res);
}

void mf__rt_fail(mf__rt *rt, const char *why)
{
    if (!rt->failure)
        rt->failure = mf__strdup(why);
    if (rt->failing)
        return;
    rt->failing = true;
    /* Fail fast: stop everything that runs. In-process steps finish. */
    for (size_t i = 0; i < rt->ntasks; i++) {
        rt_task *t = rt->tasks[i];
        if (t->state == T_RUNNING)
            rt->ex->cancel(rt->ex, t->handle);
    }
}
