/*
 * demo: run a flow on the embedded default (filesystem datastore in
 * ./.metaflow, LMDB index, local executor) and read its artifacts back.
 *
 *   start  stores a greeting and a 64 MiB float array, fans out over 4 shards
 *   score  (x4, in parallel) sums its quarter of the array, mapped zero-copy
 *   join   adds the partial sums
 *   end
 *
 *   cc $(pkg-config --cflags metaflow) demo.c $(pkg-config --libs metaflow)
 *
 * The file also compiles as C++.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <metaflow.h>

#define NSHARDS 4
#define NBYTES (64u << 20)

#define CHECK(call)                                                          \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ < 0) {                                                       \
            fprintf(stderr, "demo: %s failed: %s (%s)\n", #call,             \
                    mf_error_last(), mf_strerror(rc_));                      \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static float *make_weights(void)
{
    float *w = (float *)malloc(NBYTES);
    size_t i;
    if (!w)
        return NULL;
    for (i = 0; i < NBYTES / sizeof *w; i++)
        w[i] = (float)((i * 2654435761u) % 1000003u) / 1000003.0f;
    return w;
}

static double sum_range(const float *w, size_t from, size_t to)
{
    double s = 0;
    size_t i;
    for (i = from; i < to; i++)
        s += w[i];
    return s;
}

/* ---- the steps (in-process; each gets a task of its own) */

static int start(mf_task *t, void *payload)
{
    float *w = make_weights();
    int rc;
    (void)payload;
    if (!w)
        return 1;
    rc = mf_task_put(t, "greeting", "json", "\"hello, world\"", 14, 0);
    if (!rc)
        rc = mf_task_put(t, "weights", "raw", w, NBYTES, MF_PUT_RAW);
    if (!rc)
        rc = mf_task_set_foreach(t, NSHARDS, NULL);
    free(w);
    return rc ? 1 : 0;
}

static int score(mf_task *t, void *payload)
{
    mf_task *parent = NULL;
    mf_artifact *a = NULL;
    const void *map;
    uint64_t len;
    size_t n, shard = mf_task_foreach_index(t, 0);
    double partial;
    int rc;
    (void)payload;
    rc = mf_task_input_open(&parent, t, 0);
    if (!rc)
        rc = mf_task_artifact(&a, parent, "weights");
    if (!rc)
        rc = mf_artifact_map(a, 0, &map, &len); /* zero-copy from the file */
    if (!rc) {
        n = (size_t)len / sizeof(float);
        partial = sum_range((const float *)map, n * shard / NSHARDS,
                            n * (shard + 1) / NSHARDS);
        rc = mf_task_put(t, "partial", "f64", &partial, sizeof partial, 0);
    }
    mf_artifact_free(a);
    mf_task_free(parent);
    return rc ? 1 : 0;
}

static int join(mf_task *t, void *payload)
{
    double total = 0;
    size_t i;
    (void)payload;
    for (i = 0; i < mf_task_input_count(t); i++) {
        mf_task *in = NULL;
        mf_artifact *a = NULL;
        mf_buf b = MF_BUF_INIT;
        double v = 0;
        int rc = mf_task_input_open(&in, t, i);
        if (!rc)
            rc = mf_task_artifact(&a, in, "partial");
        if (!rc)
            rc = mf_artifact_read(a, 0, &b);
        if (!rc && b.size == sizeof v)
            memcpy(&v, b.ptr, sizeof v);
        mf_buf_dispose(&b);
        mf_artifact_free(a);
        mf_task_free(in);
        if (rc)
            return 1;
        total += v;
    }
    return mf_task_put(t, "total", "f64", &total, sizeof total, 0) ? 1 : 0;
}

static int end(mf_task *t, void *payload)
{
    (void)t;
    (void)payload;
    return 0;
}

static void on_event(const mf_run_event *ev, void *payload)
{
    (void)payload;
    if (ev->type == MF_EVENT_TASK_SUCCEEDED)
        printf("  [%s/%s] done\n", ev->step, ev->task_id);
    else if (ev->type == MF_EVENT_TASK_FAILED)
        printf("  [%s/%s] FAILED: %s\n", ev->step, ev->task_id, ev->message);
}

static mf_flow *demo_flow(void)
{
    mf_flow *flow = NULL;
    const char *j = "join", *e = "end";
    CHECK(mf_flow_new(&flow, "DemoFlow"));
    CHECK(mf_flow_add_step(flow, "start", 0));
    CHECK(mf_flow_add_step(flow, "score", 0));
    CHECK(mf_flow_add_step(flow, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(flow, "end", 0));
    CHECK(mf_flow_set_foreach(flow, "start", "score", "shards"));
    CHECK(mf_flow_set_next(flow, "score", &j, 1));
    CHECK(mf_flow_set_next(flow, "join", &e, 1));
    return flow;
}

int main(void)
{
    mf_engine *engine = NULL;
    mf_executor *ex = NULL;
    mf_flow *flow;
    mf_run *run = NULL;
    mf_task *task = NULL;
    mf_artifact *art = NULL;
    mf_strlist *list = NULL;
    mf_buf buf = MF_BUF_INIT;
    mf_start_options opts = MF_START_OPTIONS_INIT;
    const char *tags[] = {"demo"};
    const void *map;
    uint64_t maplen;
    float *weights;
    double t0, total = 0;
    char ps[256];
    size_t i;

    printf("libmetaflow %s\n", mf_version_string());
    CHECK(mf_engine_open(&engine, NULL));
    printf("datastore: %s\n", mf_engine_root(engine));
    flow = demo_flow();

    CHECK(mf_executor_local_new(&ex, engine, NULL));
    CHECK(mf_executor_local_set_step(ex, "start", start, NULL));
    CHECK(mf_executor_local_set_step(ex, "score", score, NULL));
    CHECK(mf_executor_local_set_step(ex, "join", join, NULL));
    CHECK(mf_executor_local_set_step(ex, "end", end, NULL));
    opts.executor = ex;
    opts.tags = tags;
    opts.ntags = 1;
    opts.event_cb = on_event;

    t0 = now();
    CHECK(mf_run_start(&run, engine, flow, &opts));
    printf("run DemoFlow/%s started\n", mf_run_id(run));
    CHECK(mf_run_wait(run));
    printf("run DemoFlow/%s finished in %.0f ms\n", mf_run_id(run), (now() - t0) * 1e3);

    /* Read back, as a client would: end has what its inputs passed on. */
    snprintf(ps, sizeof ps, "DemoFlow/%s/start/1", mf_run_id(run));
    CHECK(mf_task_open(&task, engine, ps));
    CHECK(mf_task_artifact(&art, task, "greeting"));
    CHECK(mf_artifact_read(art, 0, &buf));
    printf("greeting (%s) = %s\n", mf_artifact_encoding(art), buf.ptr);
    mf_artifact_free(art);
    CHECK(mf_task_artifact(&art, task, "weights"));
    weights = make_weights();
    if (!weights)
        return 1;
    t0 = now();
    CHECK(mf_artifact_map(art, 0, &map, &maplen));
    printf("weights: %llu bytes mapped in %.1f us (zero-copy: %s), key %.16s..., "
           "equal: %s\n",
           (unsigned long long)maplen, (now() - t0) * 1e6,
           mf_artifact_is_zero_copy(art, 0) ? "yes" : "no", mf_artifact_key(art),
           maplen == NBYTES && memcmp(map, weights, NBYTES) == 0 ? "yes" : "NO");
    mf_artifact_free(art);
    mf_task_free(task);

    snprintf(ps, sizeof ps, "DemoFlow/%s/end/%zu", mf_run_id(run), (size_t)NSHARDS + 3);
    CHECK(mf_task_open(&task, engine, ps));
    CHECK(mf_task_artifact(&art, task, "total"));
    CHECK(mf_artifact_read(art, 0, &buf));
    if (buf.size == sizeof total)
        memcpy(&total, buf.ptr, sizeof total);
    printf("total over %d shards = %.3f (recomputed here: %s)\n", NSHARDS, total,
           total == sum_range(weights, 0, NBYTES / 4 / NSHARDS) +
                        sum_range(weights, NBYTES / 4 / NSHARDS, 2 * (NBYTES / 4 / NSHARDS)) +
                        sum_range(weights, 2 * (NBYTES / 4 / NSHARDS),
                                  3 * (NBYTES / 4 / NSHARDS)) +
                        sum_range(weights, 3 * (NBYTES / 4 / NSHARDS), NBYTES / 4)
               ? "equal"
               : "DIFFERENT");
    mf_artifact_free(art);
    mf_task_free(task);
    mf_run_free(run);
    free(weights);

    CHECK(mf_run_list(&list, engine, "DemoFlow", NULL, 0, 0));
    printf("runs of DemoFlow, newest first:\n");
    for (i = 0; i < mf_strlist_count(list) && i < 5; i++) {
        mf_run *r = NULL;
        static const char *const names[] = {"running", "succeeded", "failed", "crashed"};
        CHECK(mf_run_open(&r, engine, "DemoFlow", mf_strlist_get(list, i)));
        printf("  DemoFlow/%s  %s\n", mf_run_id(r), names[mf_run_status_get(r)]);
        mf_run_free(r);
    }
    if (mf_strlist_count(list) > 5)
        printf("  ... %zu runs in all\n", mf_strlist_count(list));
    mf_strlist_free(list);
    mf_buf_dispose(&buf);
    mf_executor_free(ex);
    mf_flow_free(flow);
    mf_engine_free(engine);
    return 0;
}
