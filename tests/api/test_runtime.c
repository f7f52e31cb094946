/* Public-API tests of the runtime and the local executor: whole runs on a
 * real filesystem datastore and LMDB index, with in-process C steps, real
 * child processes, retries, timeouts, @catch, logs, resume, and runtimes
 * killed with SIGKILL. Only the public headers are used. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <metaflow.h>
#include <metaflow/sys/executor.h>

#include "testutil.h"

static char self_exe[PATH_MAX];

struct fx {
    char *dir;
    char root[PATH_MAX];
    mf_engine *e;
    mf_executor *ex;
};

#define CHECK(expr)                                                            \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != MF_OK)                                                      \
            fail_msg("%s = %d: %s", #expr, rc_, mf_error_last());              \
    } while (0)

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = mf_test_tmpdir("rt");
    snprintf(f->root, sizeof f->root, "%s/.metaflow", f->dir);
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.root = f->root;
    CHECK(mf_engine_open(&f->e, &o));
    mf_local_options lo = MF_LOCAL_OPTIONS_INIT;
    lo.kill_grace_us = 300000;
    CHECK(mf_executor_local_new(&f->ex, f->e, &lo));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mf_executor_free(f->ex);
    mf_engine_free(f->e);
    mf_test_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- small helpers over the public API */

static mf_flow *chain(const char *name, const char *const *steps, size_t n)
{
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, name));
    for (size_t i = 0; i < n; i++)
        CHECK(mf_flow_add_step(fl, steps[i], 0));
    for (size_t i = 0; i + 1 < n; i++)
        CHECK(mf_flow_set_next(fl, steps[i], &steps[i + 1], 1));
    return fl;
}

static int64_t get_i64(mf_task *t, const char *name)
{
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_artifact(&a, t, name));
    CHECK(mf_artifact_read(a, 0, &b));
    assert_int_equal(b.size, 8);
    int64_t v;
    memcpy(&v, b.ptr, 8);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    return v;
}

static void put_i64(mf_task *t, const char *name, int64_t v)
{
    CHECK(mf_task_put(t, name, "i64", &v, sizeof v, 0));
}

static int64_t input_i64(mf_task *t, size_t i, const char *name)
{
    mf_task *in = NULL;
    CHECK(mf_task_input_open(&in, t, i));
    int64_t v = get_i64(in, name);
    mf_task_free(in);
    return v;
}

/* The one task of a step in a run (opened). */
static mf_task *only_task(mf_engine *e, mf_run *run, const char *step)
{
    mf_strlist *ids = NULL;
    CHECK(mf_run_tasks(run, step, &ids));
    if (mf_strlist_count(ids) != 1)
        fail_msg("step '%s' has %zu tasks", step, mf_strlist_count(ids));
    char ps[512];
    snprintf(ps, sizeof ps, "%s/%s/%s/%s", mf_run_flow(run), mf_run_id(run), step,
             mf_strlist_get(ids, 0));
    mf_strlist_free(ids);
    mf_task *t = NULL;
    CHECK(mf_task_open(&t, e, ps));
    return t;
}

static size_t task_count(mf_run *run, const char *step)
{
    mf_strlist *ids = NULL;
    CHECK(mf_run_tasks(run, step, &ids));
    size_t n = mf_strlist_count(ids);
    mf_strlist_free(ids);
    return n;
}

static int reopen_status(mf_engine *e, const char *flow, const char *id)
{
    mf_run *r = NULL;
    CHECK(mf_run_open(&r, e, flow, id));
    int s = mf_run_status_get(r);
    mf_run_free(r);
    return s;
}

/* ---- events */

struct counts {
    int started, succeeded, failed, retrying, caught, cloned, finished;
    int lines;
    char last_line[256];
};

static void on_event(const mf_run_event *ev, void *p)
{
    struct counts *c = p;
    switch (ev->type) {
    case MF_EVENT_TASK_STARTED: c->started++; break;
    case MF_EVENT_TASK_SUCCEEDED: c->succeeded++; break;
    case MF_EVENT_TASK_FAILED: c->failed++; break;
    case MF_EVENT_TASK_RETRYING: c->retrying++; break;
    case MF_EVENT_TASK_CAUGHT: c->caught++; break;
    case MF_EVENT_TASK_CLONED: c->cloned++; break;
    case MF_EVENT_RUN_FINISHED: c->finished++; break;
    }
}

static void on_line(const mf_log_line *l, void *p)
{
    struct counts *c = p;
    c->lines++;
    snprintf(c->last_line, sizeof c->last_line, "%s/%s:%.*s", l->step, l->task_id,
             (int)l->len, l->text);
}

static mf_start_options opts_for(struct fx *f, struct counts *c)
{
    mf_start_options o = MF_START_OPTIONS_INIT;
    o.executor = f->ex;
    o.event_cb = on_event;
    o.event_payload = c;
    o.log_cb = on_line;
    o.log_payload = c;
    return o;
}

/* ---- in-process steps */

static int step_start(mf_task *t, void *p)
{
    (void)p;
    put_i64(t, "x", 41);
    return 0;
}

static int step_add(mf_task *t, void *p)
{
    (void)p;
    put_i64(t, "y", input_i64(t, 0, "x") + 1);
    return 0;
}

static int step_nop(mf_task *t, void *p)
{
    (void)t;
    (void)p;
    return 0;
}

static void test_linear_inproc(void **state)
{
    struct fx *f = *state;
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = chain("Linear", steps, 3);
    CHECK(mf_executor_local_set_step(f->ex, "start", step_start, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "a", step_add, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_status_get(run), MF_RUN_RUNNING);
    CHECK(mf_run_wait(run));
    assert_int_equal(mf_run_status_get(run), MF_RUN_SUCCEEDED);
    assert_null(mf_run_failure(run));
    assert_int_equal(c.started, 3);
    assert_int_equal(c.succeeded, 3);
    assert_int_equal(c.finished, 1);
    /* end inherits x from start (through a) and y from a, by reference. */
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "x"), 41);
    assert_int_equal(get_i64(end, "y"), 42);
    assert_int_equal(mf_task_status_get(end), MF_TASK_SUCCEEDED);
    assert_int_equal(mf_task_input_count(end), 1);
    mf_task *a = only_task(f->e, run, "a");
    char want[256];
    snprintf(want, sizeof want, "%s/a/%s", mf_run_id(run), mf_task_id(a));
    assert_string_equal(mf_task_input(end, 0), want);
    /* Task ids as Metaflow: integers in scheduling order. */
    mf_task *s = only_task(f->e, run, "start");
    assert_string_equal(mf_task_id(s), "1");
    assert_string_equal(mf_task_id(a), "2");
    assert_string_equal(mf_task_id(end), "3");
    mf_artifact *ax = NULL, *ex = NULL;
    CHECK(mf_task_artifact(&ax, s, "x"));
    CHECK(mf_task_artifact(&ex, end, "x"));
    assert_string_equal(mf_artifact_key(ax), mf_artifact_key(ex));
    mf_artifact_free(ax);
    mf_artifact_free(ex);
    mf_task_free(s);
    mf_task_free(a);
    mf_task_free(end);
    /* Polling a finished run says so. */
    assert_int_equal(mf_run_poll(run, 0), 0);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* foreach over N with a join that sums what the N tasks made. */
struct fe_payload {
    uint32_t n;
    int fail_index;     /* -1: none */
    int calls;          /* body calls (atomic enough: checked after wait) */
    pthread_mutex_t mu;
};

static int fe_start(mf_task *t, void *p)
{
    struct fe_payload *fp = p;
    put_i64(t, "n", fp->n);
    return mf_task_set_foreach(t, fp->n, NULL);
}

static int fe_body(mf_task *t, void *p)
{
    struct fe_payload *fp = p;
    pthread_mutex_lock(&fp->mu);
    fp->calls++;
    pthread_mutex_unlock(&fp->mu);
    assert_int_equal(mf_task_foreach_depth(t), 1);
    uint32_t i = mf_task_foreach_index(t, 0);
    if (mf_task_foreach_nsplits(t, 0) != fp->n)
        return 3;
    if ((int)i == fp->fail_index) {
        const char *why = "this index is cursed\n";
        CHECK(mf_task_log_write(t, MF_LOG_STDERR, why, strlen(why)));
        return 7;
    }
    put_i64(t, "v", (int64_t)i * 2);
    return 0;
}

static int fe_join(mf_task *t, void *p)
{
    struct fe_payload *fp = p;
    size_t n = mf_task_input_count(t);
    if (n != fp->n)
        return 4;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        mf_task *in = NULL;
        CHECK(mf_task_input_open(&in, t, i));
        /* inputs in split order */
        if (mf_task_foreach_index(in, 0) != i) {
            mf_task_free(in);
            return 5;
        }
        sum += get_i64(in, "v");
        mf_task_free(in);
    }
    put_i64(t, "sum", sum);
    return 0;
}

static mf_flow *foreach_flow(const char *name)
{
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, name));
    CHECK(mf_flow_add_step(fl, "start", 0));
    CHECK(mf_flow_add_step(fl, "body", 0));
    CHECK(mf_flow_add_step(fl, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(fl, "end", 0));
    CHECK(mf_flow_set_foreach(fl, "start", "body", "items"));
    const char *j = "join", *e = "end";
    CHECK(mf_flow_set_next(fl, "body", &j, 1));
    CHECK(mf_flow_set_next(fl, "join", &e, 1));
    return fl;
}

static void set_fe_steps(struct fx *f, struct fe_payload *fp)
{
    CHECK(mf_executor_local_set_step(f->ex, "start", fe_start, fp));
    CHECK(mf_executor_local_set_step(f->ex, "body", fe_body, fp));
    CHECK(mf_executor_local_set_step(f->ex, "join", fe_join, fp));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
}

static void test_foreach_1000_join_sum(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = foreach_flow("Wide");
    struct fe_payload fp = { 1000, -1, 0, PTHREAD_MUTEX_INITIALIZER };
    set_fe_steps(f, &fp);
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    o.max_num_splits = 1000;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(fp.calls, 1000);
    assert_int_equal(task_count(run, "body"), 1000);
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "sum"), 999 * 1000);
    /* A join does not inherit: n came from start, not through the join. */
    mf_artifact *a = NULL;
    assert_int_equal(mf_task_artifact(&a, end, "n"), MF_ENOTFOUND);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_max_num_splits(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = foreach_flow("TooWide");
    struct fe_payload fp = { 101, -1, 0, PTHREAD_MUTEX_INITIALIZER };
    set_fe_steps(f, &fp);
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "step 'start'"));
    assert_non_null(strstr(msg, "101 items"));
    assert_non_null(strstr(msg, "max_num_splits (100)"));
    assert_int_equal(mf_run_status_get(run), MF_RUN_FAILED);
    assert_int_equal(fp.calls, 0);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* Static split: join inputs in the order the split declares its targets. */
static int br_a(mf_task *t, void *p) { (void)p; put_i64(t, "who", 1); return 0; }
static int br_b(mf_task *t, void *p) { (void)p; put_i64(t, "who", 2); return 0; }
static int br_join(mf_task *t, void *p)
{
    (void)p;
    if (mf_task_input_count(t) != 2)
        return 9;
    put_i64(t, "order", input_i64(t, 0, "who") * 10 + input_i64(t, 1, "who"));
    /* By reference: the second input's value, nothing copied. */
    mf_task *in = NULL;
    CHECK(mf_task_input_open(&in, t, 1));
    CHECK(mf_task_put_ref(t, "who", in));
    assert_int_equal(mf_task_put_ref(t, "nope", in), MF_ENOTFOUND);
    mf_task_free(in);
    return 0;
}

static void test_split_join_order(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, "Branchy"));
    CHECK(mf_flow_add_step(fl, "start", 0));
    CHECK(mf_flow_add_step(fl, "b", 0)); /* declared before a on purpose */
    CHECK(mf_flow_add_step(fl, "a", 0));
    CHECK(mf_flow_add_step(fl, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(fl, "end", 0));
    const char *ab[] = { "a", "b" }, *j = "join", *e = "end";
    CHECK(mf_flow_set_next(fl, "start", ab, 2));
    CHECK(mf_flow_set_next(fl, "a", &j, 1));
    CHECK(mf_flow_set_next(fl, "b", &j, 1));
    CHECK(mf_flow_set_next(fl, "join", &e, 1));
    CHECK(mf_executor_local_set_step(f->ex, "start", step_nop, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "a", br_a, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "b", br_b, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "join", br_join, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "order"), 12);
    assert_int_equal(get_i64(end, "who"), 2);
    mf_task *b = only_task(f->e, run, "b");
    mf_artifact *x = NULL, *y = NULL;
    CHECK(mf_task_artifact(&x, end, "who"));
    CHECK(mf_task_artifact(&y, b, "who"));
    assert_string_equal(mf_artifact_key(x), mf_artifact_key(y));
    mf_artifact_free(x);
    mf_artifact_free(y);
    mf_task_free(b);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* Nested foreach: 3 x 2, two joins. */
static int nf_start(mf_task *t, void *p) { (void)p; return mf_task_set_foreach(t, 3, NULL); }
static int nf_mid(mf_task *t, void *p)
{
    (void)p;
    const char *vals[] = { "left", "right" };
    return mf_task_set_foreach(t, 2, vals);
}
static int nf_inner(mf_task *t, void *p)
{
    (void)p;
    if (mf_task_foreach_depth(t) != 2 || mf_task_foreach_nsplits(t, 0) != 3 ||
        mf_task_foreach_nsplits(t, 1) != 2)
        return 11;
    const char *v = mf_task_foreach_value(t, 1);
    if (strcmp(v, mf_task_foreach_index(t, 1) ? "right" : "left") != 0)
        return 12;
    put_i64(t, "v", mf_task_foreach_index(t, 0) * 10 + mf_task_foreach_index(t, 1));
    return 0;
}
static int nf_join1(mf_task *t, void *p)
{
    (void)p;
    if (mf_task_input_count(t) != 2 || mf_task_foreach_depth(t) != 1)
        return 13;
    put_i64(t, "v", input_i64(t, 0, "v") + input_i64(t, 1, "v"));
    return 0;
}
static int nf_join2(mf_task *t, void *p)
{
    (void)p;
    if (mf_task_input_count(t) != 3 || mf_task_foreach_depth(t) != 0)
        return 14;
    int64_t s = 0;
    for (size_t i = 0; i < 3; i++)
        s = s * 1000 + input_i64(t, i, "v");
    put_i64(t, "v", s);
    return 0;
}

static void test_nested_foreach(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, "Nested"));
    const char *names[] = { "start", "mid", "inner", "join1", "join2", "end" };
    for (int i = 0; i < 6; i++)
        CHECK(mf_flow_add_step(fl, names[i], (i == 3 || i == 4) ? MF_STEP_JOIN : 0));
    CHECK(mf_flow_set_foreach(fl, "start", "mid", "outer"));
    CHECK(mf_flow_set_foreach(fl, "mid", "inner", "halves"));
    CHECK(mf_flow_set_next(fl, "inner", &names[3], 1));
    CHECK(mf_flow_set_next(fl, "join1", &names[4], 1));
    CHECK(mf_flow_set_next(fl, "join2", &names[5], 1));
    mf_step_fn fns[] = { nf_start, nf_mid, nf_inner, nf_join1, nf_join2, step_nop };
    for (int i = 0; i < 6; i++)
        CHECK(mf_executor_local_set_step(f->ex, names[i], fns[i], NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(task_count(run, "inner"), 6);
    assert_int_equal(task_count(run, "join1"), 3);
    mf_task *end = only_task(f->e, run, "end");
    /* (0+1), (10+11), (20+21) */
    assert_int_equal(get_i64(end, "v"), (int64_t)1 * 1000000 + 21 * 1000 + 41);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* Switch: the case comes from a text artifact of the step. */
static int sw_start(mf_task *t, void *p)
{
    (void)p;
    return mf_task_put(t, "mode", "str", "fast", 4, 0);
}

static void test_switch(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, "Switchy"));
    const char *names[] = { "start", "slow", "fast", "end" };
    for (int i = 0; i < 4; i++)
        CHECK(mf_flow_add_step(fl, names[i], 0));
    const char *cases[] = { "slow", "fast" }, *targets[] = { "slow", "fast" }, *e = "end";
    CHECK(mf_flow_set_switch(fl, "start", cases, targets, 2, "mode"));
    CHECK(mf_flow_set_next(fl, "slow", &e, 1));
    CHECK(mf_flow_set_next(fl, "fast", &e, 1));
    for (int i = 0; i < 4; i++)
        CHECK(mf_executor_local_set_step(f->ex, names[i], i ? step_nop : sw_start, NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(task_count(run, "fast"), 1);
    assert_int_equal(task_count(run, "slow"), 0);
    assert_int_equal(task_count(run, "end"), 1);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* ---- command tasks */

static mf_flow *shell_flow(const char *name, const char *start_cmd, const char *a_cmd)
{
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = chain(name, steps, 3);
    CHECK(mf_flow_set_step_attr(fl, "start", "command", start_cmd));
    CHECK(mf_flow_set_step_attr(fl, "a", "command", a_cmd));
    CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    return fl;
}

static void test_shell_steps_and_logs(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("Shell", "echo hello from {step} $MF_TASK; echo oops >&2",
                             "printf 'one\\ntwo\\nno newline'");
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(c.lines, 5);
    mf_task *s = only_task(f->e, run, "start");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_log_read(s, MF_LOG_STDOUT, 0, &b));
    char want[512];
    snprintf(want, sizeof want, "hello from start Shell/%s/start/1/0", mf_run_id(run));
    assert_string_equal(b.ptr, want);
    CHECK(mf_task_log_read(s, MF_LOG_STDERR, 0, &b));
    assert_string_equal(b.ptr, "oops");
    CHECK(mf_task_log_read(s, MF_LOG_STDERR, MF_LOG_TIMESTAMPS, &b));
    /* "2026-11-27T03:21:25.123456Z oops" */
    assert_int_equal(b.size, 27 + 1 + 4);
    assert_int_equal(b.ptr[10], 'T');
    assert_string_equal(b.ptr + 28, "oops");
    mf_task *a = only_task(f->e, run, "a");
    CHECK(mf_task_log_read(a, MF_LOG_STDOUT, 0, &b));
    assert_string_equal(b.ptr, "one\ntwo\nno newline");
    mf_task *end = only_task(f->e, run, "end");
    CHECK(mf_task_log_read(end, MF_LOG_STDOUT, 0, &b));
    assert_int_equal(b.size, 0);
    mf_buf_dispose(&b);
    mf_task_free(s);
    mf_task_free(a);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_log_cap(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("Chatty", "i=0; while [ $i -lt 500 ]; do echo line $i; "
                             "i=$((i+1)); done", "true");
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    o.max_log_size = 2000;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(c.lines, 500); /* streamed whole */
    mf_task *s = only_task(f->e, run, "start");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_log_read(s, MF_LOG_STDOUT, 0, &b));
    assert_true(b.size < 2200);
    assert_true(strncmp(b.ptr, "line 0\nline 1\n", 14) == 0);
    assert_non_null(strstr(b.ptr, "bytes of output dropped: the log reached its cap of 2000"));
    mf_buf_dispose(&b);
    mf_task_free(s);
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_retry_then_success(void **state)
{
    struct fx *f = *state;
    /* Fails on attempt 0 and 1, succeeds on 2. */
    mf_flow *fl = shell_flow("Retry", "true",
                             "echo try {retry_count}; test {retry_count} -ge 2");
    CHECK(mf_flow_set_step_attr(fl, "a", "retry.times", "3"));
    CHECK(mf_flow_set_step_attr(fl, "a", "retry.delay_seconds", "0.2"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    double t0 = now_s();
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    double took = now_s() - t0;
    assert_true(took >= 0.4); /* two delays honoured */
    assert_int_equal(c.retrying, 2);
    assert_int_equal(c.failed, 2);
    mf_task *a = only_task(f->e, run, "a");
    assert_int_equal(mf_task_attempt(a), 2);
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_log_read(a, MF_LOG_STDOUT, 0, &b));
    assert_string_equal(b.ptr, "try 2");
    mf_task_free(a);
    /* The failed attempts are recorded with why. */
    char ps[256];
    snprintf(ps, sizeof ps, "Retry/%s/a/2/0", mf_run_id(run));
    CHECK(mf_task_open(&a, f->e, ps));
    assert_int_equal(mf_task_status_get(a), MF_TASK_FAILED);
    CHECK(mf_task_failure(a, &b));
    assert_non_null(strstr(b.ptr, "exit code 1"));
    CHECK(mf_task_log_read(a, MF_LOG_STDOUT, 0, &b));
    assert_string_equal(b.ptr, "try 0");
    mf_buf_dispose(&b);
    mf_task_free(a);
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_exit_202_not_retried(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("NoRetry", "true", "echo giving up >&2; exit 202");
    CHECK(mf_flow_set_step_attr(fl, "a", "retry.times", "3"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "step 'a' task 2 attempt 0 failed: exit code 202"));
    assert_non_null(strstr(msg, "giving up"));
    assert_int_equal(c.retrying, 0);
    assert_int_equal(task_count(run, "end"), 0);
    assert_int_equal(mf_run_status_get(run), MF_RUN_FAILED);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* 1 if the process in the pid file runs (a zombie does not count: the
 * container's init may be slow to reap), 0 if not, -1 without a file. */
static int pid_alive(const char *pidfile)
{
    size_t n = 0;
    char *s = mf_test_read_file(pidfile, &n);
    if (!s)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", atol(s));
    free(s);
    char *st = mf_test_read_file(path, &n);
    if (!st)
        return 0;
    const char *rp = strrchr(st, ')');
    int alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
    free(st);
    return alive;
}

static void test_timeout_kills_group(void **state)
{
    struct fx *f = *state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s/bg.pid; wait", f->dir);
    mf_flow *fl = shell_flow("Slow", "true", cmd);
    CHECK(mf_flow_set_step_attr(fl, "a", "timeout.seconds", "1"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    double t0 = now_s();
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    double took = now_s() - t0;
    assert_true(took >= 1.0 && took < 10.0);
    assert_non_null(strstr(mf_error_last(), "timed out"));
    char pidfile[PATH_MAX];
    snprintf(pidfile, sizeof pidfile, "%s/bg.pid", f->dir);
    usleep(100000);
    assert_int_equal(pid_alive(pidfile), 0); /* the background child died too */
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_catch(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("Catchy", "true", "echo boom >&2; exit 3");
    CHECK(mf_flow_set_step_attr(fl, "a", "retry.times", "1"));
    CHECK(mf_flow_set_step_attr(fl, "a", "catch.var", "err"));
    CHECK(mf_flow_set_step_attr(fl, "end", "command", "echo end ran"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(c.caught, 1);
    assert_int_equal(c.failed, 2);
    mf_task *a = only_task(f->e, run, "a");
    assert_int_equal(mf_task_attempt(a), 2); /* two tries, then the caught one */
    assert_int_equal(mf_task_status_get(a), MF_TASK_SUCCEEDED);
    mf_artifact *art = NULL;
    CHECK(mf_task_artifact(&art, a, "err"));
    assert_string_equal(mf_artifact_encoding(art), "json");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_artifact_read(art, 0, &b));
    assert_non_null(strstr(b.ptr, "\"exit_code\":3"));
    assert_non_null(strstr(b.ptr, "\"step\":\"a\""));
    assert_non_null(strstr(b.ptr, "boom"));
    mf_artifact_free(art);
    mf_task *end = only_task(f->e, run, "end");
    CHECK(mf_task_artifact(&art, end, "err")); /* passed on */
    mf_artifact_free(art);
    CHECK(mf_task_log_read(end, MF_LOG_STDOUT, 0, &b));
    assert_string_equal(b.ptr, "end ran");
    mf_buf_dispose(&b);
    mf_task_free(a);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(fl);
}

static int ff_start(mf_task *t, void *p) { (void)p; return mf_task_set_foreach(t, 4, NULL); }

static void test_fail_fast(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = foreach_flow("FailFast");
    CHECK(mf_executor_local_set_step(f->ex, "start", ff_start, NULL));
    CHECK(mf_flow_set_step_attr(fl, "body", "command",
                                "if [ \"$(echo \"$MF_TASK_FOREACH\" | cut -d' ' -f1)\" = 2 ]; "
                                "then echo bad item >&2; exit 9; fi; sleep 60"));
    CHECK(mf_flow_set_step_attr(fl, "join", "command", "true"));
    CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    double t0 = now_s();
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_true(now_s() - t0 < 10.0); /* the sleepers were killed */
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "step 'body'"));
    assert_non_null(strstr(msg, "exit code 9"));
    assert_non_null(strstr(msg, "bad item"));
    assert_string_equal(mf_run_failure(run), strstr(msg, "step 'body'"));
    assert_int_equal(task_count(run, "join"), 0);
    assert_int_equal(mf_run_status_get(run), MF_RUN_FAILED);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* ---- a task process that uses the library itself */

static int task_helper_main(void)
{
    mf_task *t = NULL;
    mf_engine *e = NULL;
    if (mf_task_from_env(&t, &e) != MF_OK) {
        fprintf(stderr, "task helper: %s\n", mf_error_last());
        return 2;
    }
    int64_t v = 0;
    if (mf_task_input_count(t) == 1) {
        mf_task *in = NULL;
        if (mf_task_input_open(&in, t, 0) == MF_OK) {
            mf_artifact *a = NULL;
            mf_buf b = MF_BUF_INIT;
            if (mf_task_artifact(&a, in, "x") == MF_OK && mf_artifact_read(a, 0, &b) == MF_OK &&
                b.size == 8)
                memcpy(&v, b.ptr, 8);
            mf_buf_dispose(&b);
            mf_artifact_free(a);
            mf_task_free(in);
        }
    }
    v += 100;
    printf("helper in %s\n", mf_task_pathspec(t));
    int rc = mf_task_put(t, "x", "i64", &v, 8, 0);
    if (!rc)
        rc = mf_task_commit(t, MF_TASK_SUCCEEDED);
    if (rc)
        fprintf(stderr, "task helper: %s\n", mf_error_last());
    mf_task_free(t);
    mf_engine_free(e);
    return rc ? 1 : 0;
}

static void test_task_process_uses_library(void **state)
{
    struct fx *f = *state;
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = chain("Helper", steps, 3);
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    const char *cmd[] = { self_exe, "--task-helper", "{step}" };
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    o.command = cmd;
    o.ncommand = 3;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "x"), 200);
    mf_task_free(end);
    mf_task *a = only_task(f->e, run, "a");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_log_read(a, MF_LOG_STDOUT, 0, &b));
    char want[256];
    snprintf(want, sizeof want, "helper in Helper/%s/a/2", mf_run_id(run));
    assert_string_equal(b.ptr, want);
    mf_buf_dispose(&b);
    mf_task_free(a);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* A host with its own event loop: wait on mf_run_fd(), then a
 * non-blocking mf_run_poll(), until it says the run is over. */
static void test_event_loop_host(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("Looped", "echo one; sleep 0.2; echo two", "sleep 0.1");
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    int fd = mf_run_fd(run);
    assert_true(fd >= 0);
    int polls = 0, rc;
    while ((rc = mf_run_poll(run, 0)) == 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        poll(&p, 1, 50);
        polls++;
        assert_true(polls < 2000);
    }
    assert_int_equal(rc, 0);
    assert_true(polls > 1);
    assert_int_equal(mf_run_status_get(run), MF_RUN_SUCCEEDED);
    assert_int_equal(c.lines, 2);
    assert_int_equal(mf_run_fd(run), -1); /* finished */
    assert_int_equal(mf_run_poll(run, 0), 0);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* ---- host launchers */

struct launch_log {
    int calls;
    bool detach; /* start the task as a grandchild (not our child) */
};

static int launcher(const mf_task_spec *spec, int out_fd, int err_fd, int64_t *pid,
                    void *payload)
{
    struct launch_log *ll = payload;
    ll->calls++;
    int p[2];
    if (pipe(p) != 0)
        return MF_EIO;
    pid_t child = fork();
    if (child < 0)
        return MF_EIO;
    if (child == 0) {
        pid_t task = ll->detach ? fork() : 0;
        if (task > 0) {
            ssize_t w = write(p[1], &task, sizeof task);
            (void)w;
            _exit(0);
        }
        if (!ll->detach) {
            pid_t me = getpid();
            ssize_t w = write(p[1], &me, sizeof me);
            (void)w;
        }
        setpgid(0, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        for (size_t i = 0; i < spec->nenv; i++)
            putenv((char *)spec->env[i]);
        execl(self_exe, self_exe, "--task-helper", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    pid_t task = 0;
    ssize_t r = read(p[0], &task, sizeof task);
    close(p[0]);
    if (ll->detach)
        waitpid(child, NULL, 0);
    if (r != (ssize_t)sizeof task)
        return MF_EIO;
    *pid = task;
    return 0;
}

static void run_with_launcher(struct fx *f, bool detach)
{
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = chain(detach ? "Detached" : "Launched", steps, 3);
    CHECK(mf_executor_local_set_step(f->ex, "start", step_start, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    struct launch_log ll = { 0, detach };
    CHECK(mf_executor_local_set_launcher(f->ex, launcher, &ll));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    assert_int_equal(ll.calls, 1);
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "x"), 141); /* 41 from start, +100 in a */
    mf_task_free(end);
    mf_task *a = only_task(f->e, run, "a");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_log_read(a, MF_LOG_STDOUT, 0, &b));
    assert_non_null(strstr(b.ptr, "helper in "));
    mf_buf_dispose(&b);
    mf_task_free(a);
    CHECK(mf_executor_local_set_launcher(f->ex, NULL, NULL));
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_launcher_child(void **state) { run_with_launcher(*state, false); }

/* A task the host started as someone else's child: the runtime cannot
 * learn its exit status and goes by its manifest. */
static void test_launcher_not_a_child(void **state) { run_with_launcher(*state, true); }

static void test_timeout_ignoring_sigterm(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = shell_flow("Stubborn", "true", "trap '' TERM; sleep 60");
    CHECK(mf_flow_set_step_attr(fl, "a", "timeout.seconds", "0.5"));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    double t0 = now_s();
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    double took = now_s() - t0;
    /* SIGTERM at 0.5 s is ignored; SIGKILL follows after the 0.3 s grace. */
    assert_true(took >= 0.8 && took < 5.0);
    assert_non_null(strstr(mf_error_last(), "timed out"));
    mf_run_free(run);
    mf_flow_free(fl);
}

/* A join with input paths too long for one environment string gets them
 * through a file (MF_TASK_INPUTS=@path), which goes away afterwards. */
static int count_inputs_main(void)
{
    mf_task *t = NULL;
    mf_engine *e = NULL;
    if (mf_task_from_env(&t, &e) != MF_OK) {
        fprintf(stderr, "count helper: %s\n", mf_error_last());
        return 2;
    }
    const char *env = getenv("MF_TASK_INPUTS");
    printf("inputs via %s\n", env && env[0] == '@' ? "file" : "environment");
    int64_t n = (int64_t)mf_task_input_count(t);
    mf_task *last = NULL;
    int rc = n ? mf_task_input_open(&last, t, (size_t)n - 1) : MF_OK;
    if (!rc)
        rc = mf_task_put(t, "count", "i64", &n, 8, 0);
    if (!rc)
        rc = mf_task_commit(t, MF_TASK_SUCCEEDED);
    if (rc)
        fprintf(stderr, "count helper: %s\n", mf_error_last());
    mf_task_free(last);
    mf_task_free(t);
    mf_engine_free(e);
    return rc ? 1 : 0;
}

static void test_wide_join_inputs_through_file(void **state)
{
    struct fx *f = *state;
    enum { N = 400 };
    mf_flow *fl = NULL;
    CHECK(mf_flow_new(&fl, "WideSplit"));
    CHECK(mf_flow_add_step(fl, "start", 0));
    static char names[N][200];
    const char *targets[N];
    for (int i = 0; i < N; i++) {
        memset(names[i], 'b', sizeof names[i] - 1);
        names[i][sizeof names[i] - 1] = 0;
        snprintf(names[i], 8, "b%05d", i);
        names[i][6] = '_';
        targets[i] = names[i];
        CHECK(mf_flow_add_step(fl, names[i], 0));
        CHECK(mf_executor_local_set_step(f->ex, names[i], step_nop, NULL));
    }
    CHECK(mf_flow_add_step(fl, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(fl, "end", 0));
    CHECK(mf_flow_set_next(fl, "start", targets, N));
    const char *j = "join", *e = "end";
    for (int i = 0; i < N; i++)
        CHECK(mf_flow_set_next(fl, names[i], &j, 1));
    CHECK(mf_flow_set_next(fl, "join", &e, 1));
    CHECK(mf_executor_local_set_step(f->ex, "start", step_nop, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    const char *cmd[] = { self_exe, "--count-inputs" };
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    o.command = cmd;
    o.ncommand = 2;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    CHECK(mf_run_wait(run));
    mf_task *end = only_task(f->e, run, "end");
    assert_int_equal(get_i64(end, "count"), N);
    mf_task_free(end);
    assert_string_equal(c.last_line + strlen(c.last_line) - strlen("inputs via file"),
                        "inputs via file");
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s/.index/tmp", f->root);
    size_t left = 0;
    DIR *d = opendir(tmp);
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        left += de->d_name[0] != '.';
    if (d)
        closedir(d);
    assert_int_equal(left, 0);
    mf_run_free(run);
    mf_flow_free(fl);
}

/* ---- resume */

static void test_resume_clones_and_reruns(void **state)
{
    struct fx *f = *state;
    mf_flow *fl = foreach_flow("Resumable");
    struct fe_payload fp = { 4, 2, 0, PTHREAD_MUTEX_INITIALIZER };
    set_fe_steps(f, &fp);
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_non_null(strstr(mf_error_last(), "step function returned 7"));
    assert_non_null(strstr(mf_error_last(), "last lines of its stderr:\n    this index is cursed"));
    char origin[128];
    snprintf(origin, sizeof origin, "%s", mf_run_id(run));
    mf_run_free(run);

    /* Fixed: index 2 works now. */
    fp.fail_index = -1;
    fp.calls = 0;
    memset(&c, 0, sizeof c);
    mf_run *r2 = NULL;
    CHECK(mf_run_resume(&r2, f->e, fl, origin, &o));
    assert_string_equal(mf_run_origin(r2), origin);
    CHECK(mf_run_wait(r2));
    assert_int_equal(fp.calls, 1);     /* only the failed one ran again */
    assert_int_equal(c.cloned, 4);     /* start and 3 body tasks */
    assert_int_equal(c.started, 3);    /* body[2], join, end */
    mf_task *end = only_task(f->e, r2, "end");
    assert_int_equal(get_i64(end, "sum"), 12);
    mf_task_free(end);
    mf_task *s = only_task(f->e, r2, "start");
    char want[256];
    snprintf(want, sizeof want, "%s/start/1", origin);
    assert_string_equal(mf_task_origin(s), want);
    assert_int_equal(get_i64(s, "n"), 4);
    mf_task_free(s);

    /* From a step: join and after run again, the rest is cloned. */
    char second[128];
    snprintf(second, sizeof second, "%s", mf_run_id(r2));
    mf_run_free(r2);
    fp.calls = 0;
    memset(&c, 0, sizeof c);
    o.resume_step = "join";
    CHECK(mf_run_resume(&r2, f->e, fl, second, &o));
    CHECK(mf_run_wait(r2));
    assert_int_equal(fp.calls, 0);
    assert_int_equal(c.cloned, 5);
    assert_int_equal(c.started, 2);
    mf_run_free(r2);

    mf_run *bad = NULL;
    o.resume_step = "nope";
    assert_int_equal(mf_run_resume(&bad, f->e, fl, second, &o), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'nope'"));
    o.resume_step = NULL;
    assert_int_equal(mf_run_resume(&bad, f->e, fl, "12345", &o), MF_ENOTFOUND);
    mf_flow_free(fl);
}

/* ---- crash safety: a runtime killed with SIGKILL */

/* In a child: run a flow whose `a` step writes a marker per run of start,
 * then sleeps (with a background grandchild) until killed. */
static void crash_child(const char *root, const char *dir, const char *idfile)
{
    mf_engine *e = NULL;
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    eo.root = root;
    if (mf_engine_open(&e, &eo))
        _exit(2);
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = NULL;
    mf_flow_new(&fl, "Crashy");
    for (int i = 0; i < 3; i++)
        mf_flow_add_step(fl, steps[i], 0);
    mf_flow_set_next(fl, "start", &steps[1], 1);
    mf_flow_set_next(fl, "a", &steps[2], 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "echo x >> %s/start.runs", dir);
    mf_flow_set_step_attr(fl, "start", "command", cmd);
    snprintf(cmd, sizeof cmd, "if [ -e %s/go ]; then exit 0; fi; sleep 60 & echo $! > "
             "%s/bg.pid; echo $$ > %s/task.pid; wait", dir, dir, dir);
    mf_flow_set_step_attr(fl, "a", "command", cmd);
    mf_flow_set_step_attr(fl, "end", "command", "true");
    mf_run *run = NULL;
    if (mf_run_start(&run, e, fl, NULL))
        _exit(3);
    mf_test_write_file(idfile, mf_run_id(run), strlen(mf_run_id(run)));
    mf_run_wait(run);
    _exit(4);
}

static void wait_file(const char *path)
{
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0)
            return;
        usleep(10000);
    }
    fail_msg("timed out waiting for %s", path);
}

static void test_sigkill_runtime_then_resume(void **state)
{
    struct fx *f = *state;
    char idfile[PATH_MAX], taskpid[PATH_MAX], bgpid[PATH_MAX], go[PATH_MAX], runs[PATH_MAX];
    snprintf(idfile, sizeof idfile, "%s/run.id", f->dir);
    snprintf(taskpid, sizeof taskpid, "%s/task.pid", f->dir);
    snprintf(bgpid, sizeof bgpid, "%s/bg.pid", f->dir);
    snprintf(go, sizeof go, "%s/go", f->dir);
    snprintf(runs, sizeof runs, "%s/start.runs", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(f->root, f->dir, idfile);
    wait_file(taskpid);
    wait_file(bgpid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    size_t n = 0;
    char *id = mf_test_read_file(idfile, &n);
    assert_non_null(id);
    /* Readers see it crashed, at once. */
    assert_int_equal(reopen_status(f->e, "Crashy", id), MF_RUN_CRASHED);
    /* Its task and the task's child die with it (the orphan watcher). */
    int alive = 1;
    for (int i = 0; i < 200 && alive; i++) {
        alive = pid_alive(taskpid) == 1 || pid_alive(bgpid) == 1;
        if (alive)
            usleep(10000);
    }
    assert_int_equal(alive, 0);
    /* Resume finishes it; start, which succeeded, does not run again. */
    mf_test_write_file(go, "1", 1);
    mf_flow *fl = NULL;
    {
        const char *steps[] = { "start", "a", "end" };
        fl = chain("Crashy", steps, 3);
        CHECK(mf_flow_set_step_attr(fl, "start", "command", "exit 1"));
        CHECK(mf_flow_set_step_attr(fl, "a", "command", "true"));
        CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    }
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *r2 = NULL;
    CHECK(mf_run_resume(&r2, f->e, fl, id, &o));
    CHECK(mf_run_wait(r2));
    assert_int_equal(c.cloned, 1);
    char *r = mf_test_read_file(runs, &n);
    assert_int_equal(n, 2); /* "x\n": start ran once, in the killed run */
    free(r);
    mf_run_free(r2);
    mf_flow_free(fl);
    free(id);
}

/* A runtime killed before its first task: crashed, and resumable. */
static void test_sigkill_before_first_task(void **state)
{
    struct fx *f = *state;
    char idfile[PATH_MAX];
    snprintf(idfile, sizeof idfile, "%s/run.id", f->dir);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        mf_engine *e = NULL;
        mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
        eo.root = f->root;
        if (mf_engine_open(&e, &eo))
            _exit(2);
        const char *steps[] = { "start", "end" };
        mf_flow *fl = chain("Early", steps, 2);
        mf_run *run = NULL;
        if (mf_run_start(&run, e, fl, NULL))
            _exit(3);
        mf_test_write_file(idfile, mf_run_id(run), strlen(mf_run_id(run)));
        char b = 0;
        ssize_t w = write(p[1], &b, 1);
        (void)w;
        pause(); /* killed here: never polled */
        _exit(4);
    }
    close(p[1]);
    char b;
    assert_int_equal(read(p[0], &b, 1), 1);
    close(p[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    size_t n = 0;
    char *id = mf_test_read_file(idfile, &n);
    assert_int_equal(reopen_status(f->e, "Early", id), MF_RUN_CRASHED);
    const char *steps[] = { "start", "end" };
    mf_flow *fl = chain("Early", steps, 2);
    CHECK(mf_executor_local_set_step(f->ex, "start", step_start, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *r2 = NULL;
    CHECK(mf_run_resume(&r2, f->e, fl, id, &o));
    CHECK(mf_run_wait(r2));
    assert_int_equal(c.cloned, 0);
    assert_int_equal(c.succeeded, 2);
    mf_run_free(r2);
    mf_flow_free(fl);
    free(id);
}

/* ---- crash scenarios: the runtime is this binary re-executed, killed
 * with SIGKILL at a chosen point. */

static int inproc_calls_fd = -1;

static int cr_start(mf_task *t, void *p)
{
    uint32_t n = (uint32_t)(uintptr_t)p;
    put_i64(t, "n", n);
    return mf_task_set_foreach(t, n, NULL);
}

static int cr_body(mf_task *t, void *p)
{
    (void)p;
    int64_t i = mf_task_foreach_index(t, 0);
    if (inproc_calls_fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%lld\n", (long long)i);
        ssize_t w = write(inproc_calls_fd, line, (size_t)n); /* O_APPEND: atomic */
        (void)w;
    }
    /* A few MiB so that kills land in blob and manifest writes too. */
    size_t len = 3u << 20;
    char *big = malloc(len);
    memset(big, (int)(i & 0xff), len);
    CHECK(mf_task_put(t, "blob", "raw", big, len, MF_PUT_RAW));
    free(big);
    put_i64(t, "v", i);
    usleep(20000); /* spread the run over a few hundred ms */
    return 0;
}

static int cr_join(mf_task *t, void *p)
{
    (void)p;
    int64_t s = 0;
    for (size_t i = 0; i < mf_task_input_count(t); i++)
        s += input_i64(t, i, "v");
    put_i64(t, "sum", s);
    return 0;
}

/* The crash flows. mode "proc": bodies and join are shell commands that
 * wait for a "go" file; mode "inproc": in-process steps. */
static mf_flow *crash_flow(const char *dir, const char *mode, uint32_t n)
{
    mf_flow *fl = foreach_flow("Crash");
    (void)n;
    if (strcmp(mode, "proc") == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "i=$(echo \"$MF_TASK_FOREACH\" | cut -d' ' -f1); echo x >> %s/body.$i.runs; "
                 "if [ $i -ge 3 ] && [ -e %s/bodywait ] && [ ! -e %s/go ]; then "
                 "echo $$ > %s/sleeping.$i; exec sleep 60; fi", dir, dir, dir, dir);
        CHECK(mf_flow_set_step_attr(fl, "body", "command", cmd));
        snprintf(cmd, sizeof cmd, "echo x >> %s/join.runs; if [ ! -e %s/go ]; then "
                 "echo $$ > %s/joining; exec sleep 60; fi", dir, dir, dir);
        CHECK(mf_flow_set_step_attr(fl, "join", "command", cmd));
        CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    }
    return fl;
}

static mf_executor *crash_executor(mf_engine *e, const char *mode, uint32_t n)
{
    mf_executor *ex = NULL;
    CHECK(mf_executor_local_new(&ex, e, NULL));
    CHECK(mf_executor_local_set_step(ex, "start", cr_start, (void *)(uintptr_t)n));
    if (strcmp(mode, "inproc") == 0) {
        CHECK(mf_executor_local_set_step(ex, "body", cr_body, NULL));
        CHECK(mf_executor_local_set_step(ex, "join", cr_join, NULL));
        CHECK(mf_executor_local_set_step(ex, "end", step_nop, NULL));
    }
    return ex;
}

/* argv: --crash-runtime ROOT DIR MODE N */
static int crash_runtime_main(char **argv)
{
    const char *root = argv[2], *dir = argv[3], *mode = argv[4];
    uint32_t n = (uint32_t)atoi(argv[5]);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/inproc.calls", dir);
    inproc_calls_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    mf_engine *e = NULL;
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    eo.root = root;
    if (mf_engine_open(&e, &eo))
        return 2;
    mf_flow *fl = crash_flow(dir, mode, n);
    mf_executor *ex = crash_executor(e, mode, n);
    mf_start_options o = MF_START_OPTIONS_INIT;
    o.executor = ex;
    o.max_num_splits = n;
    mf_run *run = NULL;
    if (mf_run_start(&run, e, fl, &o))
        return 3;
    snprintf(path, sizeof path, "%s/run.id", dir);
    mf_test_write_file(path, mf_run_id(run), strlen(mf_run_id(run)));
    int rc = mf_run_wait(run);
    return rc == MF_OK ? 0 : 4;
}

static pid_t spawn_runtime(struct fx *f, const char *mode, uint32_t n)
{
    char nb[16];
    snprintf(nb, sizeof nb, "%u", n);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_exe, self_exe, "--crash-runtime", f->root, f->dir, mode, nb, (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

static int count_lines(const char *path)
{
    size_t n = 0;
    char *s = mf_test_read_file(path, &n);
    int c = 0;
    for (size_t i = 0; s && i < n; i++)
        c += s[i] == '\n';
    free(s);
    return s ? c : 0;
}

static char *kill_and_check_crashed(struct fx *f, pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/run.id", f->dir);
    size_t n = 0;
    char *id = mf_test_read_file(path, &n);
    assert_non_null(id);
    assert_int_equal(reopen_status(f->e, "Crash", id), MF_RUN_CRASHED);
    return id;
}

/* Resume a crashed run of the crash flow in this process; returns the
 * number of tasks cloned. */
static int resume_crash(struct fx *f, const char *mode, uint32_t n, const char *id,
                        int *body_cloned)
{
    char go[PATH_MAX];
    snprintf(go, sizeof go, "%s/go", f->dir);
    mf_test_write_file(go, "1", 1);
    mf_flow *fl = crash_flow(f->dir, mode, n);
    mf_executor *ex = crash_executor(f->e, mode, n);
    struct counts c = { 0 };
    mf_start_options o = MF_START_OPTIONS_INIT;
    o.executor = ex;
    o.event_cb = on_event;
    o.event_payload = &c;
    o.max_num_splits = n;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/inproc.calls", f->dir);
    inproc_calls_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    mf_run *r2 = NULL;
    CHECK(mf_run_resume(&r2, f->e, fl, id, &o));
    CHECK(mf_run_wait(r2));
    close(inproc_calls_fd);
    inproc_calls_fd = -1;
    if (strcmp(mode, "inproc") == 0) {
        mf_task *end = only_task(f->e, r2, "end");
        assert_int_equal(get_i64(end, "sum"), (int64_t)n * (n - 1) / 2);
        mf_task_free(end);
    }
    assert_int_equal(task_count(r2, "body"), n);
    if (body_cloned) {
        mf_strlist *ids = NULL;
        CHECK(mf_run_tasks(r2, "body", &ids));
        *body_cloned = 0;
        for (size_t i = 0; i < mf_strlist_count(ids); i++) {
            char ps[512];
            snprintf(ps, sizeof ps, "Crash/%s/body/%s", mf_run_id(r2), mf_strlist_get(ids, i));
            mf_task *t = NULL;
            CHECK(mf_task_open(&t, f->e, ps));
            *body_cloned += mf_task_origin(t) != NULL;
            mf_task_free(t);
        }
        mf_strlist_free(ids);
    }
    mf_run_free(r2);
    mf_executor_free(ex);
    mf_flow_free(fl);
    return c.cloned;
}

static void test_kill_runtime_mid_foreach(void **state)
{
    struct fx *f = *state;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/bodywait", f->dir);
    mf_test_write_file(p, "1", 1);
    pid_t pid = spawn_runtime(f, "proc", 6);
    for (int i = 3; i < 6; i++) {
        snprintf(p, sizeof p, "%s/sleeping.%d", f->dir, i);
        wait_file(p);
    }
    /* Bodies 0-2 finished; wait until the runtime has recorded them. */
    for (int tries = 0; tries < 500; tries++) {
        mf_run *r = NULL;
        snprintf(p, sizeof p, "%s/run.id", f->dir);
        char *id = mf_test_read_file(p, NULL);
        CHECK(mf_run_open(&r, f->e, "Crash", id));
        size_t done = task_count(r, "body");
        mf_run_free(r);
        free(id);
        if (done >= 3)
            break;
        usleep(10000);
    }
    char *id = kill_and_check_crashed(f, pid);
    /* The sleeping bodies die with their runtime. */
    for (int i = 3; i < 6; i++) {
        snprintf(p, sizeof p, "%s/sleeping.%d", f->dir, i);
        int alive = 1;
        for (int k = 0; k < 300 && alive; k++) {
            alive = pid_alive(p) == 1;
            if (alive)
                usleep(10000);
        }
        assert_int_equal(alive, 0);
    }
    int cloned = resume_crash(f, "proc", 6, id, NULL);
    assert_int_equal(cloned, 1 + 3); /* start and the three finished bodies */
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/body.%d.runs", f->dir, i);
        assert_int_equal(count_lines(p), i < 3 ? 1 : 2);
    }
    free(id);
}

static void test_kill_runtime_during_join(void **state)
{
    struct fx *f = *state;
    char p[PATH_MAX];
    pid_t pid = spawn_runtime(f, "proc", 4); /* bodies do not wait; the join does */
    snprintf(p, sizeof p, "%s/joining", f->dir);
    wait_file(p);
    char *id = kill_and_check_crashed(f, pid);
    int cloned = resume_crash(f, "proc", 4, id, NULL);
    assert_int_equal(cloned, 1 + 4); /* start and every body; the join runs again */
    snprintf(p, sizeof p, "%s/join.runs", f->dir);
    assert_int_equal(count_lines(p), 2);
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/body.%d.runs", f->dir, i);
        assert_int_equal(count_lines(p), 1);
    }
    free(id);
}

/* Kill an in-process runtime at several moments while it writes blobs and
 * manifests: every time the run reads as crashed, the datastore verifies,
 * and resume finishes it re-running only what had not committed. */
static void test_kill_runtime_at_random_points(void **state)
{
    struct fx *f = *state;
    const uint32_t n = 40;
    const int delays_ms[] = { 5, 40, 120, 250 };
    for (size_t k = 0; k < sizeof delays_ms / sizeof *delays_ms; k++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/run.id", f->dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/inproc.calls", f->dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/go", f->dir);
        unlink(p);
        pid_t pid = spawn_runtime(f, "inproc", n);
        snprintf(p, sizeof p, "%s/run.id", f->dir);
        wait_file(p);
        usleep((useconds_t)delays_ms[k] * 1000);
        char *id = kill_and_check_crashed(f, pid);
        mf_strlist *bad = NULL;
        CHECK(mf_store_verify(f->e, &bad));
        assert_int_equal(mf_strlist_count(bad), 0);
        mf_strlist_free(bad);
        /* Body tasks that committed in the killed run. */
        mf_run *r = NULL;
        CHECK(mf_run_open(&r, f->e, "Crash", id));
        size_t committed = task_count(r, "body");
        mf_run_free(r);
        snprintf(p, sizeof p, "%s/inproc.calls", f->dir);
        int before = count_lines(p);
        int body_cloned = 0;
        resume_crash(f, "inproc", n, id, &body_cloned);
        int ran = count_lines(p) - before;
        /* What committed is cloned, never run again; the rest runs. (The
         * index may lag the manifests by one batch: clones can exceed it.) */
        assert_true((size_t)body_cloned >= committed);
        assert_int_equal(ran, (int)n - body_cloned);
        free(id);
    }
}

/* A task killed while writing: no partial artifact or manifest of its own
 * is visible; the attempt is recorded as failed by signal 9. */
static int suicide_helper_main(void)
{
    mf_task *t = NULL;
    mf_engine *e = NULL;
    if (mf_task_from_env(&t, &e) != MF_OK)
        return 2;
    size_t len = 16u << 20;
    char *big = malloc(len);
    memset(big, 7, len);
    mf_task_put(t, "written", "raw", big, len, MF_PUT_RAW);
    /* Die in the middle of the next artifact's write. */
    pid_t me = getpid();
    if (fork() == 0) {
        usleep(2000);
        kill(me, SIGKILL);
        _exit(0);
    }
    for (;;)
        mf_task_put(t, "half", "raw", big, len, MF_PUT_RAW | MF_PUT_NO_INLINE),
            big[0]++;
}

static void test_task_killed_while_writing(void **state)
{
    struct fx *f = *state;
    const char *steps[] = { "start", "a", "end" };
    mf_flow *fl = chain("Killed", steps, 3);
    CHECK(mf_executor_local_set_step(f->ex, "start", step_start, NULL));
    CHECK(mf_executor_local_set_step(f->ex, "end", step_nop, NULL));
    const char *cmd[] = { self_exe, "--suicide-helper" };
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    o.command = cmd;
    o.ncommand = 2;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_non_null(strstr(mf_error_last(), "killed by signal 9"));
    mf_task *a = only_task(f->e, run, "a");
    assert_int_equal(mf_task_status_get(a), MF_TASK_FAILED);
    mf_strlist *names = NULL;
    CHECK(mf_task_artifacts(a, 0, &names));
    /* Only what it inherited would show; a failed attempt lists nothing
     * it had not committed. */
    for (size_t i = 0; i < mf_strlist_count(names); i++) {
        assert_string_not_equal(mf_strlist_get(names, i), "written");
        assert_string_not_equal(mf_strlist_get(names, i), "half");
    }
    mf_strlist_free(names);
    mf_strlist *bad = NULL;
    CHECK(mf_store_verify(f->e, &bad));
    assert_int_equal(mf_strlist_count(bad), 0);
    mf_strlist_free(bad);
    mf_task_free(a);
    mf_run_free(run);
    mf_flow_free(fl);
}

static int fail_itself(mf_task *t, void *p)
{
    (void)p;
    CHECK(mf_task_put(t, "partial", "str", "x", 1, 0));
    CHECK(mf_task_fail(t, "ValueError: the input was empty"));
    assert_int_equal(mf_task_fail(t, "again"), MF_ESTATE);
    return 3;
}

/* A task that says why it failed: that text is the failure, its artifacts
 * are not kept. */
static void test_task_fail_with_reason(void **state)
{
    struct fx *f = *state;
    const char *steps[] = { "start", "end" };
    mf_flow *fl = chain("Reasoned", steps, 2);
    CHECK(mf_executor_local_set_step(f->ex, "start", fail_itself, NULL));
    struct counts c = { 0 };
    mf_start_options o = opts_for(f, &c);
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, f->e, fl, &o));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_non_null(strstr(mf_error_last(), "ValueError: the input was empty"));
    mf_task *s = only_task(f->e, run, "start");
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_failure(s, &b));
    assert_string_equal(b.ptr, "ValueError: the input was empty");
    mf_buf_dispose(&b);
    mf_strlist *names = NULL;
    CHECK(mf_task_artifacts(s, 0, &names));
    assert_int_equal(mf_strlist_count(names), 0);
    mf_strlist_free(names);
    mf_task_free(s);
    mf_run_free(run);
    mf_flow_free(fl);
}

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    mf_run *run = NULL;
    const char *steps[] = { "start", "end" };
    mf_flow *fl = chain("Args", steps, 2);
    mf_start_options o = MF_START_OPTIONS_INIT;
    o.version = 99;
    assert_int_equal(mf_run_start(&run, f->e, fl, &o), MF_EVERSION);
    assert_int_equal(mf_run_start(&run, f->e, NULL, NULL), MF_EINVAL);
    /* An invalid graph is refused before any run exists. */
    mf_flow *bad = NULL;
    CHECK(mf_flow_new(&bad, "Bad"));
    CHECK(mf_flow_add_step(bad, "start", 0));
    assert_int_equal(mf_run_start(&run, f->e, bad, NULL), MF_EGRAPH);
    mf_strlist *flows = NULL;
    CHECK(mf_flow_list(&flows, f->e));
    assert_false(mf_strlist_count(flows) && strcmp(mf_strlist_get(flows, 0), "Bad") == 0);
    mf_strlist_free(flows);
    /* No command for a step and no step function: the run fails saying so. */
    mf_start_options ok = MF_START_OPTIONS_INIT;
    ok.executor = f->ex;
    CHECK(mf_run_start(&run, f->e, fl, &ok));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_non_null(strstr(mf_error_last(), "no command to run"));
    mf_run_free(run);
    mf_flow_free(bad);
    mf_flow_free(fl);
    assert_int_equal(mf_run_poll(NULL, 0), MF_EINVAL);
    mf_local_options lo = MF_LOCAL_OPTIONS_INIT;
    lo.version = 7;
    mf_executor *ex = NULL;
    assert_int_equal(mf_executor_local_new(&ex, f->e, &lo), MF_EVERSION);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--task-helper") == 0)
        return task_helper_main();
    if (argc >= 2 && strcmp(argv[1], "--count-inputs") == 0)
        return count_inputs_main();
    if (argc >= 2 && strcmp(argv[1], "--suicide-helper") == 0)
        return suicide_helper_main();
    if (argc >= 6 && strcmp(argv[1], "--crash-runtime") == 0)
        return crash_runtime_main(argv);
    if (!realpath(argv[0], self_exe))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_inproc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_1000_join_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_num_splits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_join_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shell_steps_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_202_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_process_uses_library, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_loop_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launcher_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launcher_not_a_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_ignoring_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_join_inputs_through_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_clones_and_reruns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_runtime_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_before_first_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_runtime_mid_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_runtime_during_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_runtime_at_random_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_killed_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_fail_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
