/*
 * Whole flows on the S3 datastore, through the public API only, against a
 * real signature-checking endpoint (run through tests/e2e/with_s3.py).
 *
 *   start (a 200 MB artifact, foreach 8) -> body (x8) -> join -> end
 *
 * Then a second "machine" (an empty index cache, read-only) sees the run,
 * its tasks and artifacts; a failing run is resumed; a task process that
 * uses the library itself finds the S3 datastore from its environment.
 */
#include <limits.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <metaflow.h>
#include <metaflow/sys/datastore.h>

#define CHECK(call)                                                              \
    do {                                                                         \
        int rc_ = (call);                                                        \
        if (rc_ != MF_OK)                                                        \
            fail_msg("%s: %s (%d)", #call, mf_error_last(), rc_);                \
    } while (0)

#define BIG (200u << 20)
#define WIDTH 8

static char self_exe[PATH_MAX];
static char cache_a[PATH_MAX], cache_b[PATH_MAX];
static int fail_body_once; /* the body step fails while this is set */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = mix(seed + i);
        memcpy(p + i, &v, 8);
    }
}

static bool strlist_has(const mf_strlist *l, const char *s)
{
    for (size_t i = 0; i < mf_strlist_count(l); i++)
        if (strcmp(mf_strlist_get(l, i), s) == 0)
            return true;
    return false;
}

static int put_i64(mf_task *t, const char *name, int64_t v)
{
    return mf_task_put(t, name, "i64", &v, sizeof v, 0);
}

static int64_t get_i64(mf_task *t, const char *name)
{
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    int64_t v = -1;
    if (mf_task_artifact(&a, t, name) == MF_OK && mf_artifact_read(a, 0, &b) == MF_OK &&
        b.size == 8)
        memcpy(&v, b.ptr, 8);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    return v;
}

static int step_start(mf_task *t, void *payload)
{
    uint8_t *big = malloc(BIG);
    if (!big)
        return 1;
    fill(big, BIG, 42);
    int rc = mf_task_put(t, "big", "raw", big, BIG, 0);
    free(big);
    if (!rc)
        rc = put_i64(t, "base", 1000);
    if (!rc)
        rc = mf_task_set_foreach(t, WIDTH, NULL);
    return rc ? 1 : 0;
}

static int step_body(mf_task *t, void *payload)
{
    if (fail_body_once && mf_task_foreach_index(t, 0) == 5)
        return 3;
    mf_task *in = NULL;
    int rc = mf_task_input_open(&in, t, 0);
    int64_t base = rc ? -1 : get_i64(in, "base");
    mf_task_free(in);
    return put_i64(t, "v", base + mf_task_foreach_index(t, 0)) ? 1 : 0;
}

static int step_join(mf_task *t, void *payload)
{
    int64_t sum = 0;
    for (size_t i = 0; i < mf_task_input_count(t); i++) {
        mf_task *in = NULL;
        if (mf_task_input_open(&in, t, i) != MF_OK)
            return 1;
        sum += get_i64(in, "v");
        mf_task_free(in);
    }
    return put_i64(t, "sum", sum) ? 1 : 0;
}

static int step_nop(mf_task *t, void *payload)
{
    return 0;
}

static mf_flow *build(const char *name)
{
    static const char *const join = "join", *const end = "end";
    mf_flow *f = NULL;
    CHECK(mf_flow_new(&f, name));
    CHECK(mf_flow_add_step(f, "start", 0));
    CHECK(mf_flow_add_step(f, "body", 0));
    CHECK(mf_flow_add_step(f, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(f, "end", 0));
    CHECK(mf_flow_set_foreach(f, "start", "body", "items"));
    CHECK(mf_flow_set_next(f, "body", &join, 1));
    CHECK(mf_flow_set_next(f, "join", &end, 1));
    CHECK(mf_flow_validate(f));
    return f;
}

static mf_engine *open_engine(const char *cache, uint32_t flags)
{
    setenv("XDG_CACHE_HOME", cache, 1);
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.datastore = "s3";
    o.flags = flags;
    mf_engine *e = NULL;
    CHECK(mf_engine_open(&e, &o));
    return e;
}

static mf_executor *executor(mf_engine *e)
{
    mf_executor *x = NULL;
    CHECK(mf_executor_local_new(&x, e, NULL));
    CHECK(mf_executor_local_set_step(x, "start", step_start, NULL));
    CHECK(mf_executor_local_set_step(x, "body", step_body, NULL));
    CHECK(mf_executor_local_set_step(x, "join", step_join, NULL));
    CHECK(mf_executor_local_set_step(x, "end", step_nop, NULL));
    return x;
}

static mf_task *only_task(mf_engine *e, mf_run *run, const char *step)
{
    mf_strlist *ids = NULL;
    CHECK(mf_run_tasks(run, step, &ids));
    assert_int_equal(mf_strlist_count(ids), 1);
    char ps[512];
    snprintf(ps, sizeof ps, "%s/%s/%s/%s", mf_run_flow(run), mf_run_id(run), step,
             mf_strlist_get(ids, 0));
    mf_strlist_free(ids);
    mf_task *t = NULL;
    CHECK(mf_task_open(&t, e, ps));
    return t;
}

static void check_big(mf_task *start)
{
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    CHECK(mf_task_artifact(&a, start, "big"));
    assert_int_equal(mf_artifact_size(a), BIG);
    CHECK(mf_artifact_read(a, 0, &b));
    uint8_t *want = malloc(BIG);
    fill(want, BIG, 42);
    assert_int_equal(b.size, BIG);
    assert_memory_equal(b.ptr, want, BIG);
    /* A range in the middle, across chunk edges. */
    CHECK(mf_artifact_read_range(a, 0, 77777777, 3u << 20, &b));
    assert_memory_equal(b.ptr, want + 77777777, 3u << 20);
    free(want);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
}

static void test_foreach_flow_and_second_machine(void **state)
{
    mf_engine *e = open_engine(cache_a, 0);
    assert_int_equal(strncmp(mf_engine_root(e), "s3://", 5), 0);
    mf_executor *x = executor(e);
    mf_flow *f = build("S3ForeachFlow");
    mf_start_options so = MF_START_OPTIONS_INIT;
    so.executor = x;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, e, f, &so));
    CHECK(mf_run_wait(run));
    assert_int_equal(mf_run_status_get(run), MF_RUN_SUCCEEDED);
    char run_id[128];
    snprintf(run_id, sizeof run_id, "%s", mf_run_id(run));
    mf_task *end = only_task(e, run, "end");
    assert_int_equal(get_i64(end, "sum"), WIDTH * 1000 + WIDTH * (WIDTH - 1) / 2);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(f);
    mf_executor_free(x);
    mf_engine_free(e);

    /* Another machine: nothing in its index cache; it reads S3. */
    mf_engine *r = open_engine(cache_b, MF_ENGINE_READONLY);
    mf_strlist *flows = NULL;
    CHECK(mf_flow_list(&flows, r));
    assert_int_equal(mf_strlist_count(flows), 1);
    assert_string_equal(mf_strlist_get(flows, 0), "S3ForeachFlow");
    mf_strlist_free(flows);
    CHECK(mf_run_open(&run, r, "S3ForeachFlow", run_id));
    assert_int_equal(mf_run_status_get(run), MF_RUN_SUCCEEDED);
    mf_strlist *steps = NULL, *ids = NULL;
    CHECK(mf_run_steps(run, &steps));
    assert_int_equal(mf_strlist_count(steps), 4);
    CHECK(mf_run_tasks(run, "body", &ids));
    assert_int_equal(mf_strlist_count(ids), WIDTH);
    mf_task *start = only_task(r, run, "start");
    check_big(start);
    mf_task_free(start);
    end = only_task(r, run, "end");
    assert_int_equal(get_i64(end, "sum"), WIDTH * 1000 + WIDTH * (WIDTH - 1) / 2);
    mf_task_free(end);
    mf_strlist_free(steps);
    mf_strlist_free(ids);
    mf_run_free(run);
    mf_engine_free(r);
}

static void test_resume(void **state)
{
    mf_engine *e = open_engine(cache_a, 0);
    mf_executor *x = executor(e);
    mf_flow *f = build("S3ResumeFlow");
    mf_start_options so = MF_START_OPTIONS_INIT;
    so.executor = x;
    mf_run *run = NULL;
    fail_body_once = 1;
    CHECK(mf_run_start(&run, e, f, &so));
    assert_int_equal(mf_run_wait(run), MF_EFAILED);
    assert_non_null(strstr(mf_run_failure(run), "step 'body'"));
    char origin[128];
    snprintf(origin, sizeof origin, "%s", mf_run_id(run));
    mf_run_free(run);

    fail_body_once = 0;
    CHECK(mf_run_resume(&run, e, f, origin, &so));
    CHECK(mf_run_wait(run));
    mf_task *end = only_task(e, run, "end");
    assert_int_equal(get_i64(end, "sum"), WIDTH * 1000 + WIDTH * (WIDTH - 1) / 2);
    mf_task_free(end);
    /* start was cloned, not run again: it names its origin. */
    mf_task *start = only_task(e, run, "start");
    assert_non_null(mf_task_origin(start));
    char want[160];
    snprintf(want, sizeof want, "%s/start/", origin);
    assert_int_equal(strncmp(mf_task_origin(start), want, strlen(want)), 0);
    mf_task_free(start);
    mf_run_free(run);
    mf_flow_free(f);
    mf_executor_free(x);
    mf_engine_free(e);
}

/* ---- a task process that finds S3 from its environment */

static int task_helper_main(void)
{
    mf_task *t = NULL;
    mf_engine *e = NULL;
    if (mf_task_from_env(&t, &e) != MF_OK) {
        fprintf(stderr, "task helper: %s\n", mf_error_last());
        return 2;
    }
    int rc = strncmp(mf_engine_root(e), "s3://", 5) == 0 ? MF_OK : MF_EINVAL;
    if (!rc)
        rc = put_i64(t, "pid", (int64_t)getpid());
    if (!rc)
        rc = mf_task_commit(t, MF_TASK_SUCCEEDED);
    if (rc)
        fprintf(stderr, "task helper: %s\n", mf_error_last());
    mf_task_free(t);
    mf_engine_free(e);
    return rc ? 1 : 0;
}

static void test_task_process(void **state)
{
    static const char *const end = "end";
    mf_engine *e = open_engine(cache_a, 0);
    mf_executor *x = NULL;
    CHECK(mf_executor_local_new(&x, e, NULL));
    CHECK(mf_executor_local_set_step(x, "end", step_nop, NULL));
    mf_flow *f = NULL;
    CHECK(mf_flow_new(&f, "S3ProcessFlow"));
    CHECK(mf_flow_add_step(f, "start", 0));
    CHECK(mf_flow_add_step(f, "end", 0));
    CHECK(mf_flow_set_next(f, "start", &end, 1));
    CHECK(mf_flow_validate(f));
    const char *cmd[] = { self_exe, "--task-helper" };
    mf_start_options so = MF_START_OPTIONS_INIT;
    so.executor = x;
    so.command = cmd;
    so.ncommand = 2;
    mf_run *run = NULL;
    CHECK(mf_run_start(&run, e, f, &so));
    CHECK(mf_run_wait(run));
    mf_task *t = only_task(e, run, "end");
    int64_t pid = get_i64(t, "pid");
    assert_true(pid > 0 && pid != (int64_t)getpid());
    mf_task_free(t);
    mf_run_free(run);
    mf_flow_free(f);
    mf_executor_free(x);
    mf_engine_free(e);
}

/* Garbage collection on S3: an uncommitted task's blobs go (with
 * DeleteObjects), everything the runs reference stays readable; then the
 * index rebuilds from the bucket alone. */
static void test_gc_verify_rebuild(void **state)
{
    mf_engine *e = open_engine(cache_a, 0);
    mf_run *run = NULL;
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    CHECK(mf_run_create(&run, e, "S3GcFlow", &ro));
    mf_task *t = NULL;
    CHECK(mf_task_create(&t, run, "start", NULL));
    uint8_t junk[3][5000];
    for (int i = 0; i < 3; i++) {
        fill(junk[i], sizeof junk[i], 900 + (uint64_t)i);
        char name[8];
        snprintf(name, sizeof name, "j%d", i);
        CHECK(mf_task_put(t, name, "raw", junk[i], sizeof junk[i], MF_PUT_RAW));
    }
    mf_task_free(t); /* never committed: its 3 blobs are garbage */
    CHECK(mf_run_finish(run, MF_RUN_FAILED));
    mf_run_free(run);

    mf_gc_options go = MF_GC_OPTIONS_INIT;
    go.grace_seconds = 0;
    mf_gc_stats st = { MF_GC_STATS_VERSION };
    CHECK(mf_gc(e, &go, &st));
    assert_int_equal(st.swept, 3);
    assert_int_equal(st.young, 0);
    assert_int_equal(st.blobs, st.live + 3);
    assert_true(st.live > 50); /* the 200 MB artifact's chunks, among others */
    mf_strlist *bad = NULL;
    CHECK(mf_store_verify(e, &bad));
    assert_int_equal(mf_strlist_count(bad), 0);
    mf_strlist_free(bad);
    CHECK(mf_index_rebuild(e));
    mf_strlist *flows = NULL;
    CHECK(mf_flow_list(&flows, e));
    assert_true(mf_strlist_count(flows) >= 4);
    assert_true(strlist_has(flows, "S3ForeachFlow"));
    mf_strlist_free(flows);
    CHECK(mf_run_open(&run, e, "S3ForeachFlow", "latest"));
    mf_task *start = only_task(e, run, "start");
    check_big(start);
    mf_task_free(start);
    mf_run_free(run);
    mf_engine_free(e);
}

/* A refresh skips what is not a run of ours: Metaflow's own data prefix
 * under a flow, and a run whose record is damaged; the other runs show. */
static void test_refresh_skips_foreign_and_damaged(void **state)
{
    mf_datastore *ds = NULL;
    CHECK(mf_datastore_open(&ds, "s3", getenv("METAFLOW_DATASTORE_SYSROOT_S3")));
    mf_ds_iovec v = { "not a run record", 16 };
    CHECK(ds->put(ds, "S3ForeachFlow/data/ab/abcdef", &v, 1, 0));
    CHECK(ds->put(ds, "DamagedFlow/77/_run", &v, 1, 0));
    mf_datastore_free(ds);

    char cache[PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s-c", cache_b);
    mf_engine *r = open_engine(cache, MF_ENGINE_READONLY);
    mf_strlist *flows = NULL;
    CHECK(mf_flow_list(&flows, r));
    assert_true(strlist_has(flows, "S3ForeachFlow"));
    assert_false(strlist_has(flows, "DamagedFlow"));
    mf_strlist_free(flows);
    mf_run *run = NULL;
    assert_int_equal(mf_run_open(&run, r, "S3ForeachFlow", "data"), MF_ENOTFOUND);
    CHECK(mf_run_open(&run, r, "S3ForeachFlow", "latest_successful"));
    mf_run_free(run);
    mf_engine_free(r);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--task-helper") == 0)
        return task_helper_main();
    if (!getenv("METAFLOW_DATASTORE_SYSROOT_S3")) {
        fprintf(stderr, "run through tests/e2e/with_s3.py\n");
        return 1;
    }
    if (!realpath(argv[0], self_exe))
        return 1;
    const char *home = getenv("HOME");
    snprintf(cache_a, sizeof cache_a, "%s/machine-a", home);
    snprintf(cache_b, sizeof cache_b, "%s/machine-b", home);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreach_flow_and_second_machine),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_task_process),
        cmocka_unit_test(test_refresh_skips_foreign_and_damaged),
        cmocka_unit_test(test_gc_verify_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
