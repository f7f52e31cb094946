/*
 * The runtime: start a run, drive it through the executor's events, and
 * finish it. Attempts that end in one poll are handled as a batch: one
 * datastore sync and one index transaction for all of them, then their
 * successors are scheduled. So nothing is scheduled from a result that a
 * crash could still take back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <jansson.h>

#include "datastore/datastore.h"
#include "rt.h"

#define TAIL_LINES 10


MF_EXTERN(int) mf_start_options_init(mf_start_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_start_options_init: options are NULL");
    if (version != MF_START_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_start_options", version);
    mf_start_options init = MF_START_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

const char *mf__rt_step_name(const mf__rt *rt, size_t step)
{
    return mf__flow_step_at(rt->flow, step)->name;
}

void mf__rt_event(mf__rt *rt, int type, const rt_task *t, int exit_code, int sig,
                  const char *message)
{
    if (!rt->event_cb)
        return;
    mf_run_event ev;
    memset(&ev, 0, sizeof ev);
    ev.version = 1;
    ev.type = type;
    if (t) {
        ev.step = mf__rt_step_name(rt, t->step);
        ev.task_id = t->task_id;
        ev.attempt = t->attempt;
    }
    ev.exit_code = exit_code;
    ev.signal = sig;
    ev.run_status = rt->final_status;
    ev.message = message;
    rt->event_cb(&ev, rt->event_payload);
}

/* ------------------------------------------------------------ handles */

static size_t hslot(const mf__rt *rt, uint64_t h)
{
    return (size_t)((h * 0x9E3779B97F4A7C15ull) >> 7) & (rt->hcap - 1);
}

static int handle_put(mf__rt *rt, uint64_t h, size_t task)
{
    if (2 * (rt->hcount + 1) > rt->hcap) {
        size_t oc = rt->hcap, nc = oc ? oc * 2 : 256;
        uint64_t *ok = rt->hkeys;
        size_t *ov = rt->hvals;
        rt->hkeys = calloc(nc, sizeof *rt->hkeys);
        rt->hvals = calloc(nc, sizeof *rt->hvals);
        if (!rt->hkeys || !rt->hvals) {
            free(rt->hkeys);
            free(rt->hvals);
            rt->hkeys = ok;
            rt->hvals = ov;
            return mf__error_oom();
        }
        rt->hcap = nc;
        rt->hcount = 0;
        for (size_t i = 0; i < oc; i++)
            if (ok[i])
                handle_put(rt, ok[i], ov[i]);
        free(ok);
        free(ov);
    }
    size_t s = hslot(rt, h);
    while (rt->hkeys[s] && rt->hkeys[s] != h)
        s = (s + 1) & (rt->hcap - 1);
    if (!rt->hkeys[s])
        rt->hcount++;
    rt->hkeys[s] = h;
    rt->hvals[s] = task;
    return MF_OK;
}

static size_t handle_get(const mf__rt *rt, uint64_t h)
{
    if (!rt->hcap || !h)
        return SIZE_MAX;
    for (size_t s = hslot(rt, h); rt->hkeys[s]; s = (s + 1) & (rt->hcap - 1))
        if (rt->hkeys[s] == h)
            return rt->hvals[s];
    return SIZE_MAX;
}

/* Deleting from linear probing: re-insert the rest of the cluster. */
static void handle_del(mf__rt *rt, uint64_t h)
{
    if (!rt->hcap)
        return;
    size_t s = hslot(rt, h);
    while (rt->hkeys[s] && rt->hkeys[s] != h)
        s = (s + 1) & (rt->hcap - 1);
    if (!rt->hkeys[s])
        return;
    rt->hkeys[s] = 0;
    rt->hcount--;
    for (size_t n = (s + 1) & (rt->hcap - 1); rt->hkeys[n]; n = (n + 1) & (rt->hcap - 1)) {
        uint64_t k = rt->hkeys[n];
        size_t v = rt->hvals[n];
        rt->hkeys[n] = 0;
        rt->hcount--;
        handle_put(rt, k, v);
    }
}

/* ------------------------------------------------------------ results */

int mf__rt_done_push(mf__rt *rt, size_t task, mf_task *result, int exit_code, int sig,
                     bool timed_out, const char *message)
{
    if (rt->ndone == rt->done_cap) {
        size_t nc = rt->done_cap ? rt->done_cap * 2 : 64;
        rt_done *n = realloc(rt->done, nc * sizeof *n);
        if (!n)
            return mf__error_oom();
        rt->done = n;
        rt->done_cap = nc;
    }
    rt_done *d = &rt->done[rt->ndone++];
    memset(d, 0, sizeof *d);
    d->task = task;
    d->result = result;
    d->exit_code = exit_code;
    d->signal = sig;
    d->timed_out = timed_out;
    d->message = message ? strdup(message) : NULL;
    return MF_OK;
}

/* "step 'x' task 3 attempt 1 failed: exit code 2 ... last lines". */
static char *failure_text(mf__rt *rt, const rt_task *t, const rt_done *d, const mf_task *res)
{
    mf_buf b = MF_BUF_INIT;
    mf__buf_printf(&b, "step '%s' task %s attempt %u failed: ", mf__rt_step_name(rt, t->step),
                   t->task_id, t->attempt);
    /* A failure the runtime recorded itself already says all of this. */
    if (res && res->x.failure && strncmp(res->x.failure, b.ptr, b.size) == 0) {
        mf_buf_dispose(&b);
        return strdup(res->x.failure);
    }
    if (d->timed_out)
        mf__buf_printf(&b, "timed out (its process group was killed)");
    else if (d->signal)
        mf__buf_printf(&b, "killed by signal %d (%s)", d->signal, strsignal(d->signal));
    else if (d->exit_code > 0)
        mf__buf_printf(&b, "exit code %d", d->exit_code);
    else if (d->exit_code < 0 && !res)
        mf__buf_printf(&b, "it ended without recording a result");
    else if (res && res->x.failure)
        mf__buf_printf(&b, "it reported");
    else
        mf__buf_printf(&b, "it reported failure");
    const char *why = res && res->x.failure ? res->x.failure : d->message;
    if (why && !d->timed_out)
        mf__buf_printf(&b, res && res->x.failure && d->exit_code <= 0 && !d->signal ? ":\n%s"
                                                                                   : "; %s",
                       why);
    const mf_buf *log = t->log[1].size ? &t->log[1] : &t->log[0];
    if (log->size && !(res && res->x.failure)) { /* a task's own account wins */
        mf__buf_printf(&b, "\n  last lines of its %s:", log == &t->log[1] ? "stderr" : "stdout");
        mf__log_tail(log, TAIL_LINES, &b);
    }
    return mf__buf_detach(&b, NULL);
}

/* A writable attempt committed by the runtime on a task's behalf. */
int mf__rt_runtime_task(mf__rt *rt, const rt_task *t, uint32_t attempt, mf_task **out)
{
    mf_task_options to = MF_TASK_OPTIONS_INIT;
    rt_stack st;
    int rc = mf__rt_foreach_stack(t, &st);
    if (rc)
        return rc;
    to.task_id = t->task_id;
    to.attempt = attempt;
    to.foreach_index = st.index;
    to.foreach_nsplits = st.nsplits;
    to.foreach_value = st.value;
    to.foreach_depth = st.depth;
    to.input_paths = (const char *const *)t->inputs;
    to.ninputs = t->ninputs;
    rc = mf__task_create_ex(out, rt->engine, rt->run->rec.flow, rt->run->rec.run_id,
                            mf__rt_step_name(rt, t->step), &to, MF__CREATE_NO_PROBE);
    mf__rt_stack_clear(&st);
    if (rc)
        return rc;
    (*out)->is_join = (mf__flow_step_at(rt->flow, t->step)->flags & MF_STEP_JOIN) != 0;
    (*out)->inherit = true;
    (*out)->log_cap = 0;
    if (rt->origin_run_id && !((*out)->x.origin_run_id = mf__strdup(rt->origin_run_id)))
        return MF_ENOMEM;
    return MF_OK;
}

/* Persist the output the executor streamed for this attempt. */
static int persist_logs(mf__rt *rt, rt_task *t)
{
    for (int s = 0; s < 2; s++) {
        if (t->dropped[s])
            mf__log_note_dropped(&t->log[s], t->dropped[s], rt->max_log_size);
        if (!t->log[s].size)
            continue;
        int rc = mf__log_persist(rt->engine, rt->run->rec.flow, rt->run->rec.run_id,
                                 mf__rt_step_name(rt, t->step), t->task_id, t->attempt, s + 1,
                                 t->log[s].ptr, t->log[s].size, MF_DS_PUT_DEFER_SYNC);
        if (rc)
            return rc;
    }
    return MF_OK;
}

/* Read back the committed manifest of a task's current attempt. */
static int open_attempt(mf__rt *rt, const rt_task *t, mf_task **out)
{
    mf_buf ps = MF_BUF_INIT;
    int rc = mf__buf_printf(&ps, "%s/%s/%s/%s/%u", rt->run->rec.flow, rt->run->rec.run_id,
                            mf__rt_step_name(rt, t->step), t->task_id, t->attempt);
    if (!rc)
        rc = mf_task_open(out, rt->engine, ps.ptr);
    mf_buf_dispose(&ps);
    return rc;
}

/* An attempt ended (executor event): read its manifest, or write one. */
static int attempt_ended(mf__rt *rt, size_t ti, const mf_exec_event *ev)
{
    rt_task *t = rt->tasks[ti];
    t->state = T_NEW; /* decided when the batch is handled */
    rt->running--;
    if (t->inputs_file) {
        unlink(t->inputs_file);
        free(t->inputs_file);
        t->inputs_file = NULL;
    }
    int rc = persist_logs(rt, t);
    if (rc)
        return rc;
    /* An in-process attempt hands its committed task over; any other is
     * read back from its manifest. */
    mf_task *res = mf__executor_local_take(rt->ex);
    if (!res)
        rc = open_attempt(rt, t, &res);
    if (rc == MF_ENOTFOUND) {
        /* No manifest: a plain command that exited 0 succeeded (its
         * artifacts are its input's); anything else failed. Either way
         * the attempt gets a manifest, so readers see how it ended. */
        mf_error_clear();
        bool ok = ev->exit_code == 0 && !ev->signal && !ev->timed_out;
        rc = mf__rt_runtime_task(rt, t, t->attempt, &res);
        if (!rc && !ok) {
            res->x.has_exit = true;
            res->x.exit_code = ev->exit_code;
            res->x.signal = ev->signal;
            rt_done tmp = { ti, NULL, ev->exit_code, ev->signal, ev->timed_out != 0,
                            (char *)ev->message };
            res->x.failure = failure_text(rt, t, &tmp, NULL);
        }
        if (!rc)
            rc = mf__task_commit_ex(res, ok ? MF_TASK_SUCCEEDED : MF_TASK_FAILED,
                                    MF__COMMIT_DEFER);
        if (rc == MF_EEXISTS) { /* the task committed after all: read it */
            mf_task_free(res);
            res = NULL;
            rc = open_attempt(rt, t, &res);
        }
    }
    if (rc) {
        mf_task_free(res);
        return mf__error_wrap("reading the result of task %s of step '%s'", t->task_id,
                              mf__rt_step_name(rt, t->step));
    }
    return mf__rt_done_push(rt, ti, res, ev->exit_code, ev->signal, ev->timed_out != 0,
                            ev->message);
}

static void on_exec_event(const mf_exec_event *ev, void *payload)
{
    mf__rt *rt = payload;
    size_t ti = handle_get(rt, ev->handle);
    if (ti == SIZE_MAX)
        return;
    rt_task *t = rt->tasks[ti];
    if (ev->type == MF_EXEC_OUTPUT) {
        int s = ev->stream == MF_LOG_STDERR ? 1 : 0;
        if (rt->log_cb) {
            mf_log_line line;
            memset(&line, 0, sizeof line);
            line.version = 1;
            line.step = mf__rt_step_name(rt, t->step);
            line.task_id = t->task_id;
            line.attempt = t->attempt;
            line.stream = s + 1;
            line.timestamp_us = ev->timestamp_us;
            line.text = ev->data;
            line.len = ev->len;
            rt->log_cb(&line, rt->log_payload);
        }
        if (t->log[s].size + ev->len + 24 > rt->max_log_size)
            t->dropped[s] += ev->len + 1;
        else
            mf__log_append(&t->log[s], ev->timestamp_us, ev->data, ev->len);
        return;
    }
    if (ev->type != MF_EXEC_EXITED)
        return;
    handle_del(rt, ev->handle);
    if (attempt_ended(rt, ti, ev) != MF_OK) {
        /* The runtime cannot tell how the attempt ended: stop the run. */
        mf__rt_fail(rt, mf_error_last());
        t->state = T_FAILED;
    }
}

/* A failed attempt: retry, catch, or fail the run. */
static int handle_failure(mf__rt *rt, size_t ti, rt_done *d)
{
    rt_task *t = rt->tasks[ti];
    char *why = failure_text(rt, t, d, d->result);
    if (!why)
        return MF_ENOMEM;
    mf__rt_event(rt, MF_EVENT_TASK_FAILED, t, d->exit_code, d->signal, why);
    const char *step = mf__rt_step_name(rt, t->step);
    bool no_retry = d->exit_code == 202 ||
                    (d->result && d->result->x.has_exit && d->result->x.exit_code == 202);
    if (!rt->failing && !no_retry && t->attempt + 1 < t->max_attempts) {
        double delay = 0;
        const char *v = mf_flow_step_attr(rt->flow, step, "retry.minutes_between_retries");
        if (v)
            delay += 60 * strtod(v, NULL);
        v = mf_flow_step_attr(rt->flow, step, "retry.delay_seconds");
        if (v)
            delay += strtod(v, NULL);
        t->attempt++;
        t->state = T_WAITING;
        t->ready_at = mf__mono_us() + (int64_t)(delay > 0 ? delay * 1e6 : 0);
        rt->waiting++;
        mf__rt_event(rt, MF_EVENT_TASK_RETRYING, t, 0, 0, NULL);
        free(why);
        return MF_OK;
    }
    const char *catch_var = mf_flow_step_attr(rt->flow, step, "catch.var");
    bool catching = catch_var || mf_flow_step_attr(rt->flow, step, "catch");
    const mf__step *ms = mf__flow_step_at(rt->flow, t->step);
    if (catching && !rt->failing &&
        (ms->transition == MF_TRANSITION_FOREACH || ms->transition == MF_TRANSITION_SWITCH)) {
        mf_buf b = MF_BUF_INIT;
        mf__buf_printf(&b, "%s\n  (@catch cannot continue a %s step: its %s is unknown)", why,
                       ms->transition == MF_TRANSITION_FOREACH ? "foreach" : "switch",
                       ms->transition == MF_TRANSITION_FOREACH ? "item count" : "case");
        free(why);
        why = mf__buf_detach(&b, NULL);
        catching = false;
    }
    if (catching && !rt->failing) {
        /* The failure becomes an artifact of a new, successful attempt
         * that carries the input's artifacts on (Metaflow's @catch). */
        mf_task *c = NULL;
        int rc = mf__rt_runtime_task(rt, t, t->attempt + 1, &c);
        if (!rc) {
            c->x.caught = true;
            c->x.failure = why;
            why = NULL;
            c->x.has_exit = true;
            c->x.exit_code = d->exit_code;
            c->x.signal = d->signal;
        }
        if (!rc && catch_var && *catch_var) {
            json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:s}", "step", step,
                                  "task_id", t->task_id, "attempt", (int)t->attempt,
                                  "exit_code", d->exit_code, "signal", d->signal,
                                  "timed_out", d->timed_out, "message", c->x.failure);
            char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            json_decref(j);
            rc = text ? mf_task_put(c, catch_var, "json", text, strlen(text), 0)
                      : mf__error_oom();
            free(text);
        }
        if (!rc)
            rc = mf__task_commit_ex(c, MF_TASK_SUCCEEDED, MF__COMMIT_DEFER);
        free(why);
        if (rc) {
            mf_task_free(c);
            return rc;
        }
        t->attempt++;
        mf__rt_event(rt, MF_EVENT_TASK_CAUGHT, t, d->exit_code, d->signal, c->x.failure);
        /* Its index record goes with the next batch; schedule from it now. */
        int r2 = mf__rt_done_push(rt, ti, c, 0, 0, false, NULL);
        return r2;
    }
    t->state = T_FAILED;
    mf__rt_fail(rt, why);
    free(why);
    return MF_OK;
}

/* Hand what ended since the last call to the committer. */
static int submit_done(mf__rt *rt)
{
    if (!rt->ndone)
        return MF_OK;
    rt_done *v = rt->done;
    size_t n = rt->ndone;
    rt->done = NULL;
    rt->ndone = rt->done_cap = 0;
    int rc = mf__rt_committer_push(rt, v, n);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            mf_task_free(v[i].result);
            free(v[i].message);
        }
        free(v);
    }
    return rc;
}

/* Act on the batches the committer made durable: schedule successors,
 * retry, catch or fail. */
static int process_batches(mf__rt *rt)
{
    rt_batch *list = mf__rt_committer_take(rt);
    int rc = MF_OK;
    for (rt_batch *b = list; b; b = b->next) {
        if (b->rc && rc == MF_OK)
            rc = mf__error_set(b->rc, "%s", b->err ? b->err : "committing results failed");
        for (size_t i = 0; i < b->n; i++) {
            rt_done *d = &b->v[i];
            rt_task *t = rt->tasks[d->task];
            if (rc != MF_OK) {
                t->state = T_FAILED;
                continue;
            }
            if (d->result->man.status == MF_TASK_SUCCEEDED) {
                int r2 = mf__rt_take_result(rt, d->task, d->result);
                if (r2 == MF_OK) {
                    t->state = T_DONE;
                    if (!t->cloned)
                        mf__rt_event(rt, MF_EVENT_TASK_SUCCEEDED, t, 0, 0, NULL);
                    if (!rt->failing)
                        r2 = mf__rt_succeeded(rt, d->task);
                }
                if (r2 != MF_OK) {
                    t->state = T_FAILED;
                    mf__rt_fail(rt, mf_error_last());
                }
            } else {
                rc = handle_failure(rt, d->task, d);
            }
        }
    }
    mf__rt_batch_free(list);
    return rc;
}

/* Wait for the committer to give back everything it has. */
static int drain_committer(mf__rt *rt)
{
    int rc = MF_OK;
    while (rt->batches_inflight || rt->ndone) {
        int r = submit_done(rt);
        if (!r && rt->batches_inflight) {
            struct pollfd p = { mf__rt_committer_fd(rt), POLLIN, 0 };
            poll(&p, 1, 100);
            r = process_batches(rt);
        }
        if (r && !rc)
            rc = r;
    }
    return rc;
}

/* ------------------------------------------------------------ driving */

static int launch_ready(mf__rt *rt)
{
    int64_t now = mf__mono_us();
    if (rt->waiting) {
        for (size_t i = 0; i < rt->ntasks; i++) {
            rt_task *t = rt->tasks[i];
            if (t->state == T_WAITING && t->ready_at <= now) {
                rt->waiting--;
                if (rt->failing) {
                    t->state = T_FAILED;
                    continue;
                }
                int rc = mf__rt_ready_push(rt, i, true);
                if (rc)
                    return rc;
            }
        }
    }
    while (rt->ready_len && !rt->failing && rt->running < rt->max_workers) {
        size_t ti = mf__rt_ready_pop(rt);
        rt_task *t = rt->tasks[ti];
        if (rt->origin) {
            bool cloned = false;
            mf_task *res = NULL;
            int rc = mf__rt_try_clone(rt, ti, &cloned, &res);
            if (rc)
                return rc;
            if (cloned) {
                t->cloned = true;
                t->state = T_NEW;
                mf__rt_event(rt, MF_EVENT_TASK_CLONED, t, 0, 0, NULL);
                if ((rc = mf__rt_done_push(rt, ti, res, 0, 0, false, NULL)) != MF_OK)
                    return rc;
                continue;
            }
        }
        int rc = mf__rt_launch(rt, ti);
        if (rc) {
            t->state = T_FAILED;
            mf__rt_fail(rt, mf_error_last());
            return MF_OK;
        }
        if ((rc = handle_put(rt, t->handle, ti)) != MF_OK)
            return rc;
        t->state = T_RUNNING;
        rt->running++;
        mf__rt_event(rt, MF_EVENT_TASK_STARTED, t, 0, 0, NULL);
    }
    if (rt->failing) {
        while (rt->ready_len)
            rt->tasks[mf__rt_ready_pop(rt)]->state = T_FAILED;
    }
    return MF_OK;
}

static int finish(mf__rt *rt)
{
    int32_t status = MF_RUN_SUCCEEDED;
    if (rt->failing) {
        status = MF_RUN_FAILED;
    } else if (rt->end_done == 0) {
        status = MF_RUN_FAILED;
        /* Nothing runs and `end` was never reached: name what waits. */
        mf_buf b = MF_BUF_INIT;
        mf__buf_puts(&b, "the run stopped before 'end'");
        for (size_t i = 0; i < rt->ntasks; i++) {
            rt_task *t = rt->tasks[i];
            if (t->join_slots && t->join_arrived < t->join_expected) {
                mf__buf_printf(&b, ": the join after step '%s' (task %s) got %zu of %zu inputs",
                               mf__rt_step_name(rt, t->step), t->task_id, t->join_arrived,
                               t->join_expected);
                break;
            }
        }
        rt->failure = mf__buf_detach(&b, NULL);
    }
    rt->finished = true;
    rt->final_status = status;
    int rc = mf_run_finish(rt->run, status);
    mf__rt_event(rt, MF_EVENT_RUN_FINISHED, NULL, 0, 0,
                 status == MF_RUN_SUCCEEDED ? NULL : rt->failure);
    return rc;
}

static int heartbeat(mf__rt *rt)
{
    int64_t now = mf__mono_us();
    if (now - rt->last_heartbeat < MF__HEARTBEAT_US)
        return MF_OK;
    rt->last_heartbeat = now;
    mf__run_record *rec = &rt->run->rec;
    rec->heartbeat_us = mf__now_us();
    int rc = mf__run_record_write(rt->engine, rec);
    if (!rc)
        rc = mf__meta_run_put(rt->engine->meta, rec);
    return rc;
}

static int poll_wait_ms(mf__rt *rt, int timeout_ms)
{
    if (rt->ready_len && rt->running < rt->max_workers && !rt->failing)
        return 0;
    int64_t best = timeout_ms < 0 ? INT64_MAX : (int64_t)timeout_ms * 1000;
    int64_t now = mf__mono_us();
    if (rt->waiting)
        for (size_t i = 0; i < rt->ntasks; i++)
            if (rt->tasks[i]->state == T_WAITING && rt->tasks[i]->ready_at - now < best)
                best = rt->tasks[i]->ready_at - now > 0 ? rt->tasks[i]->ready_at - now : 0;
    int64_t hb = rt->last_heartbeat + MF__HEARTBEAT_US - now;
    if (hb < best)
        best = hb > 0 ? hb : 0;
    return best == INT64_MAX ? -1 : (int)((best + 999) / 1000);
}

/* Wait up to `wait_ms` for executor events or a batch back from the
 * committer, and take the executor's events. Returns the number of
 * executor events, or a negative code. */
static int wait_events(mf__rt *rt, int wait_ms)
{
    if (!rt->running) {
        if (rt->batches_inflight) {
            struct pollfd p = { mf__rt_committer_fd(rt), POLLIN, 0 };
            poll(&p, 1, wait_ms);
        } else if (wait_ms > 0) {
            usleep((useconds_t)wait_ms * 1000); /* only retry delays to wait for */
        }
        return 0;
    }
    if (rt->epfd < 0) {
        /* An executor without a descriptor: poll it, briefly while a batch
         * is being made durable. */
        int w = rt->batches_inflight && (wait_ms < 0 || wait_ms > 2) ? 2 : wait_ms;
        return rt->ex->poll(rt->ex, w, on_exec_event, rt);
    }
    /* The executor enforces timeouts when polled: wake at least every 50 ms
     * while tasks run. */
    int w = wait_ms < 0 || wait_ms > 50 ? 50 : wait_ms;
    struct epoll_event ev[2];
    if (epoll_wait(rt->epfd, ev, 2, w) < 0 && errno != EINTR)
        return mf__error_errno(errno, "waiting for tasks", "epoll_wait");
    return rt->ex->poll(rt->ex, 0, on_exec_event, rt);
}

MF_EXTERN(int) mf_run_poll(mf_run *run, int timeout_ms)
{
    if (!run)
        return mf__error_set(MF_EINVAL, "mf_run_poll: run is NULL");
    mf__rt *rt = run->rt;
    if (!rt)
        return mf__error_set(MF_ESTATE, "run '%s/%s' is not driven by this process",
                             run->rec.flow, run->rec.run_id);
    if (rt->finished)
        return 0;
    int64_t start = mf__mono_us();
    for (;;) {
        int rc = launch_ready(rt);
        if (!rc)
            rc = submit_done(rt); /* clones finish without the executor */
        if (!rc)
            rc = process_batches(rt);
        if (!rc && rt->ready_len && !rt->failing && rt->running < rt->max_workers)
            continue;
        if (!rc)
            rc = heartbeat(rt);
        if (rc)
            mf__rt_fail(rt, mf_error_last());
        if (!rt->running && !rt->ready_len && !rt->waiting && !rt->batches_inflight &&
            !rt->ndone)
            return finish(rt) == MF_OK ? 0 : mf_error_last_code();
        int left = timeout_ms;
        if (timeout_ms > 0) {
            int64_t spent = (mf__mono_us() - start) / 1000;
            left = spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
        }
        int n = wait_events(rt, poll_wait_ms(rt, left));
        if (n < 0) {
            mf__rt_fail(rt, mf_error_last());
            return n;
        }
        if (submit_done(rt) != MF_OK)
            mf__rt_fail(rt, mf_error_last());
        if (process_batches(rt) != MF_OK)
            mf__rt_fail(rt, mf_error_last());
        if (!rt->running && !rt->ready_len && !rt->waiting && !rt->batches_inflight &&
            !rt->ndone)
            return finish(rt) == MF_OK ? 0 : mf_error_last_code();
        if (n > 0 || timeout_ms == 0)
            return 1;
        if (timeout_ms > 0 && mf__mono_us() - start >= (int64_t)timeout_ms * 1000)
            return 1;
    }
}

MF_EXTERN(int) mf_run_wait(mf_run *run)
{
    int rc;
    while ((rc = mf_run_poll(run, -1)) == 1)
        ;
    if (rc < 0)
        return rc;
    if (run->rt->final_status != MF_RUN_SUCCEEDED)
        return mf__error_set(MF_EFAILED, "run '%s/%s' failed: %s", run->rec.flow,
                             run->rec.run_id, run->rt->failure ? run->rt->failure : "unknown");
    return MF_OK;
}

MF_EXTERN(int) mf_run_fd(const mf_run *run)
{
    if (!run || !run->rt || run->rt->finished)
        return -1;
    return run->rt->epfd;
}

MF_EXTERN(const char *) mf_run_failure(const mf_run *run)
{
    if (!run || !run->rt || !run->rt->finished || run->rt->final_status == MF_RUN_SUCCEEDED)
        return NULL;
    return run->rt->failure;
}

MF_EXTERN(int) mf_run_cancel(mf_run *run)
{
    if (!run || !run->rt)
        return mf__error_set(MF_ESTATE, "mf_run_cancel: the run is not driven by this process");
    mf__rt *rt = run->rt;
    if (rt->finished)
        return MF_OK;
    mf__rt_fail(rt, "the run was cancelled");
    while (rt->running) {
        int n = rt->ex->poll(rt->ex, -1, on_exec_event, rt);
        if (n < 0)
            break;
    }
    /* Results of what was running are recorded; nothing new starts. */
    drain_committer(rt);
    rt->ready_len = 0;
    rt->waiting = 0;
    return finish(rt);
}

void mf__rt_free(mf__rt *rt)
{
    if (!rt)
        return;
    if (!rt->finished)
        mf_run_cancel(rt->run);
    mf__rt_committer_stop(rt);
    if (rt->epfd >= 0)
        close(rt->epfd);
    for (size_t i = 0; i < rt->ndone; i++) {
        mf_task_free(rt->done[i].result);
        free(rt->done[i].message);
    }
    free(rt->done);
    for (size_t i = 0; i < rt->ntasks; i++)
        mf__rt_task_free(rt->tasks[i]);
    free(rt->tasks);
    free(rt->ready);
    free(rt->hkeys);
    free(rt->hvals);
    if (rt->own_ex)
        mf_executor_free(rt->ex);
    mf_flow_free(rt->flow);
    mf__strvec_free(rt->command, rt->ncommand);
    free(rt->failure);
    free(rt->origin_run_id);
    free(rt->forced);
    for (size_t i = 0; i < rt->norigin; i++) {
        free(rt->origin[i].key);
        free(rt->origin[i].task_id);
    }
    free(rt->origin);
    mf__strvec_free(rt->occ_keys, rt->nocc);
    free(rt->occ_vals);
    free(rt);
}

/* ------------------------------------------------------------ start */

static int copy_flow(const mf_flow *flow, mf_flow **out)
{
    mf_buf spec = MF_BUF_INIT;
    int rc = mf_flow_save(flow, &spec);
    if (!rc)
        rc = mf_flow_load(out, spec.ptr, spec.size);
    mf_buf_dispose(&spec);
    if (!rc && (rc = mf_flow_validate(*out)) != MF_OK) {
        mf_flow_free(*out);
        *out = NULL;
    }
    return rc;
}

static int start(mf_run **out, mf_engine *e, const mf_flow *flow, const char *origin,
                 const mf_start_options *opts)
{
    if (!out || !e || !flow)
        return mf__error_set(MF_EINVAL, "mf_run_start: NULL argument");
    *out = NULL;
    if (opts && opts->version != MF_START_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_start_options",
                             opts->version);
    if (opts && opts->ncommand && !opts->command)
        return mf__error_set(MF_EINVAL, "start options: %zu command arguments but no array",
                             opts->ncommand);
    mf__rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return mf__error_oom();
    rt->engine = e;
    rt->epfd = -1;
    rt->max_workers = opts && opts->max_workers ? opts->max_workers : 16;
    rt->max_num_splits = opts && opts->max_num_splits ? opts->max_num_splits : 100;
    rt->max_log_size = opts && opts->max_log_size ? opts->max_log_size : MF__LOG_DEFAULT_CAP;
    if (opts) {
        rt->log_cb = opts->log_cb;
        rt->log_payload = opts->log_payload;
        rt->event_cb = opts->event_cb;
        rt->event_payload = opts->event_payload;
    }
    mf_run *run = NULL;
    mf__run_record origin_rec;
    memset(&origin_rec, 0, sizeof origin_rec);
    int rc = copy_flow(flow, &rt->flow);
    if (rc)
        goto fail;
    if (opts && opts->ncommand) {
        if (!(rt->command = mf__strv_dup(opts->command, opts->ncommand))) {
            rc = MF_ENOMEM;
            goto fail;
        }
        rt->ncommand = opts->ncommand;
    }
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    if (opts) {
        ro.run_id = opts->run_id;
        ro.user = opts->user;
        ro.tags = opts->tags;
        ro.ntags = opts->ntags;
        ro.param_names = opts->param_names;
        ro.param_values = opts->param_values;
        ro.nparams = opts->nparams;
    }
    if (origin) {
        if ((rc = mf__check_id("origin run id", origin)) != MF_OK)
            goto fail;
        rc = mf__meta_run_get(e->meta, mf_flow_name(flow), origin, &origin_rec);
        if (rc == MF_ENOTFOUND)
            rc = mf__error_set(MF_ENOTFOUND, "cannot resume run '%s/%s': no such run",
                               mf_flow_name(flow), origin);
        if (rc)
            goto fail;
        if (origin_rec.status == MF_RUN_RUNNING &&
            mf__meta_run_alive(e->meta, mf_flow_name(flow), origin) == 1) {
            rc = mf__error_set(MF_EBUSY, "cannot resume run '%s/%s': it is still running",
                               mf_flow_name(flow), origin);
            goto fail;
        }
        ro.origin_run_id = origin;
        /* The origin's parameters, unless the caller gives them. */
        if (!(opts && opts->nparams)) {
            ro.param_names = (const char *const *)origin_rec.param_names;
            ro.param_values = (const char *const *)origin_rec.param_values;
            ro.nparams = origin_rec.nparams;
        }
        if (!(rt->origin_run_id = mf__strdup(origin))) {
            rc = MF_ENOMEM;
            goto fail;
        }
    }
    if (opts && opts->executor) {
        rt->ex = opts->executor;
    } else {
        if ((rc = mf_executor_local_new(&rt->ex, e, NULL)) != MF_OK)
            goto fail;
        rt->own_ex = true;
    }
    if (rt->ex->version != MF_EXECUTOR_VERSION || !rt->ex->submit || !rt->ex->poll ||
        !rt->ex->cancel || !rt->ex->capabilities) {
        rc = mf__error_set(MF_EVERSION, "invalid version %u on mf_executor (or a method is "
                           "missing)", rt->ex->version);
        goto fail;
    }
    rt->caps = rt->ex->capabilities(rt->ex);
    if ((rc = mf__rt_committer_start(rt)) != MF_OK)
        goto fail;
    if (rt->ex->fd && rt->ex->fd(rt->ex) >= 0) {
        /* One descriptor for hosts (mf_run_fd) and for our own waits. */
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        rt->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (rt->epfd < 0 ||
            epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->ex->fd(rt->ex), &ev) != 0 ||
            epoll_ctl(rt->epfd, EPOLL_CTL_ADD, mf__rt_committer_fd(rt), &ev) != 0) {
            rc = mf__error_errno(errno, "starting the runtime", "epoll");
            goto fail;
        }
    }
    if ((rc = mf_run_create(&run, e, mf_flow_name(flow), &ro)) != MF_OK)
        goto fail;
    rt->run = run;
    run->rt = rt;
    rt->last_heartbeat = mf__mono_us();
    if (origin && (rc = mf__rt_resume_prepare(rt, opts ? opts->resume_step : NULL)) != MF_OK)
        goto fail_run;
    size_t made;
    if ((rc = mf__rt_new_task(rt, rt->flow->start, NULL, 0, NULL, 0, &made)) != MF_OK)
        goto fail_run;
    mf__run_record_clear(&origin_rec);
    *out = run;
    return MF_OK;
fail_run:
    /* The run exists: finish it honestly as failed. */
    {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", mf_error_last());
        rt->failure = mf__strdup(msg);
        rt->failing = true;
        finish(rt);
        mf_run_free(run); /* frees rt */
        mf__run_record_clear(&origin_rec);
        return mf__error_set(rc, "%s", msg);
    }
fail:
    mf__run_record_clear(&origin_rec);
    if (run) {
        run->rt = NULL;
        mf_run_free(run);
    }
    rt->run = NULL;
    rt->finished = true;
    mf__rt_free(rt);
    return rc;
}

MF_EXTERN(int) mf_run_start(mf_run **out, mf_engine *engine, const mf_flow *flow,
                            const mf_start_options *opts)
{
    return start(out, engine, flow, NULL, opts);
}

MF_EXTERN(int) mf_run_resume(mf_run **out, mf_engine *engine, const mf_flow *flow,
                             const char *origin_run_id, const mf_start_options *opts)
{
    if (!origin_run_id)
        return mf__error_set(MF_EINVAL, "mf_run_resume: origin run id is NULL");
    return start(out, engine, flow, origin_run_id, opts);
}
