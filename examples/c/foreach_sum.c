/*
 * foreach_sum: a 1,000-way foreach of in-process C steps.
 *
 *   start --foreach--> square (x1000) --> total (join) --> end
 *
 * start asks for N tasks of `square` with mf_task_set_foreach(); each
 * squares its foreach index; the join `total` reads its N inputs, which
 * come in split order, and sums them; end prints the sum. The host checks
 * it against the closed form 0^2 + 1^2 + ... + (N-1)^2 = (N-1) N (2N-1) / 6.
 *
 * The runtime refuses a foreach wider than mf_start_options.max_num_splits
 * (100 unless set), so this run raises it to N.
 *
 *   cc $(pkg-config --cflags metaflow) foreach_sum.c $(pkg-config --libs metaflow)
 */
#include <stdio.h>
#include <string.h>

#include <metaflow.h>

#define N 1000

/* Integers are stored as 8 native-endian bytes under the tag "i64": the
 * library keeps the encoding tag for readers and never interprets it. */
static int put_i64(mf_task *task, const char *name, int64_t v)
{
    return mf_task_put(task, name, "i64", &v, sizeof v, 0);
}

static int get_i64(mf_task *task, const char *name, int64_t *v)
{
    mf_artifact *art = NULL;
    mf_buf buf = MF_BUF_INIT;
    int rc = mf_task_artifact(&art, task, name);
    if (rc == MF_OK)
        rc = mf_artifact_read(art, 0, &buf);
    if (rc == MF_OK && buf.size != sizeof *v)
        rc = MF_ECORRUPT;
    if (rc == MF_OK)
        memcpy(v, buf.ptr, sizeof *v);
    mf_buf_dispose(&buf);
    mf_artifact_free(art);
    return rc;
}

static int step_start(mf_task *task, void *payload)
{
    (void)payload;
    if (put_i64(task, "n", N) != MF_OK)
        return 1;
    return mf_task_set_foreach(task, N, NULL) == MF_OK ? 0 : 1;
}

/* One of N tasks, on a worker thread; its index says which. */
static int step_square(mf_task *task, void *payload)
{
    int64_t i = mf_task_foreach_index(task, 0);
    (void)payload;
    return put_i64(task, "square", i * i) == MF_OK ? 0 : 1;
}

static int step_total(mf_task *task, void *payload)
{
    size_t i, n = mf_task_input_count(task);
    int64_t sum = 0;
    (void)payload;
    if (n != N)
        return 2;
    for (i = 0; i < n; i++) {
        mf_task *in = NULL;
        int64_t v = 0;
        int rc = mf_task_input_open(&in, task, i);
        /* Inputs come in split order: input i is foreach index i. */
        if (rc == MF_OK && mf_task_foreach_index(in, 0) != i)
            rc = MF_ERROR;
        if (rc == MF_OK)
            rc = get_i64(in, "square", &v);
        mf_task_free(in);
        if (rc != MF_OK)
            return 1;
        sum += v;
    }
    return put_i64(task, "sum", sum) == MF_OK ? 0 : 1;
}

/* end reads `sum` from its input, the join; it also inherits it, so readers
 * of the end task find it there. */
static int step_end(mf_task *task, void *payload)
{
    mf_task *in = NULL;
    int64_t sum = 0;
    int rc = mf_task_input_open(&in, task, 0);
    (void)payload;
    if (rc == MF_OK)
        rc = get_i64(in, "sum", &sum);
    if (rc == MF_OK)
        printf("end: sum of squares of 0..%d = %lld\n", N - 1, (long long)sum);
    mf_task_free(in);
    return rc == MF_OK ? 0 : 1;
}

static int build_flow(mf_flow **out)
{
    static const char *const total = "total", *const end = "end";
    mf_flow *flow = NULL;
    int rc = mf_flow_new(&flow, "ForeachSumFlow");
    if (rc == MF_OK)
        rc = mf_flow_add_step(flow, "start", 0);
    if (rc == MF_OK)
        rc = mf_flow_add_step(flow, "square", 0);
    if (rc == MF_OK)
        rc = mf_flow_add_step(flow, "total", MF_STEP_JOIN);
    if (rc == MF_OK)
        rc = mf_flow_add_step(flow, "end", 0);
    /* The foreach variable names the list in Metaflow terms; a C start
     * step gives only its length, with mf_task_set_foreach(). */
    if (rc == MF_OK)
        rc = mf_flow_set_foreach(flow, "start", "square", "indices");
    if (rc == MF_OK)
        rc = mf_flow_set_next(flow, "square", &total, 1);
    if (rc == MF_OK)
        rc = mf_flow_set_next(flow, "total", &end, 1);
    if (rc == MF_OK)
        rc = mf_flow_validate(flow);
    if (rc != MF_OK) {
        mf_flow_free(flow);
        return rc;
    }
    *out = flow;
    return MF_OK;
}

/* Open the only task of `step` in `run`. */
static int open_only_task(mf_task **out, mf_engine *engine, mf_run *run, const char *step)
{
    mf_strlist *ids = NULL;
    char pathspec[512];
    int rc = mf_run_tasks(run, step, &ids);
    if (rc == MF_OK && mf_strlist_count(ids) == 1) {
        snprintf(pathspec, sizeof pathspec, "%s/%s/%s/%s", mf_run_flow(run), mf_run_id(run),
                 step, mf_strlist_get(ids, 0));
        rc = mf_task_open(out, engine, pathspec);
    } else if (rc == MF_OK) {
        rc = MF_ENOTFOUND;
    }
    mf_strlist_free(ids);
    return rc;
}

#define TRY(call)                                                              \
    do {                                                                       \
        rc = (call);                                                           \
        if (rc != MF_OK) {                                                     \
            fprintf(stderr, "foreach_sum: %s: %s (%s)\n", #call,               \
                    mf_error_last(), mf_strerror(rc));                         \
            goto out;                                                          \
        }                                                                      \
    } while (0)

int main(void)
{
    const int64_t expected = (int64_t)(N - 1) * N * (2 * N - 1) / 6;
    mf_engine *engine = NULL;
    mf_executor *executor = NULL;
    mf_flow *flow = NULL;
    mf_run *run = NULL;
    mf_strlist *ids = NULL;
    mf_task *end = NULL;
    mf_start_options opts = MF_START_OPTIONS_INIT;
    int64_t sum = 0;
    size_t nsquare;
    int rc;

    TRY(mf_engine_open(&engine, NULL));
    TRY(mf_executor_local_new(&executor, engine, NULL));
    TRY(mf_executor_local_set_step(executor, "start", step_start, NULL));
    TRY(mf_executor_local_set_step(executor, "square", step_square, NULL));
    TRY(mf_executor_local_set_step(executor, "total", step_total, NULL));
    TRY(mf_executor_local_set_step(executor, "end", step_end, NULL));
    TRY(build_flow(&flow));

    opts.executor = executor;
    opts.max_num_splits = N;
    TRY(mf_run_start(&run, engine, flow, &opts));
    printf("run %s/%s started\n", mf_run_flow(run), mf_run_id(run));
    TRY(mf_run_wait(run));

    TRY(mf_run_tasks(run, "square", &ids));
    nsquare = mf_strlist_count(ids);
    TRY(open_only_task(&end, engine, run, "end"));
    TRY(get_i64(end, "sum", &sum));
    printf("%zu square tasks; sum = %lld, expected (N-1)N(2N-1)/6 = %lld\n", nsquare,
           (long long)sum, (long long)expected);
    if (nsquare != N || sum != expected) {
        fprintf(stderr, "foreach_sum: wrong result\n");
        rc = MF_ERROR;
        goto out;
    }
    printf("run succeeded\n");

out:
    mf_task_free(end);
    mf_strlist_free(ids);
    mf_run_free(run);
    mf_flow_free(flow);
    mf_executor_free(executor);
    mf_engine_free(engine);
    return rc == MF_OK ? 0 : 1;
}
