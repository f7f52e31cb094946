/*
 * demo: store and read artifacts and list runs on the embedded default
 * (filesystem datastore in ./.metaflow, LMDB index).
 *
 *   cc $(pkg-config --cflags metaflow) demo.c $(pkg-config --libs metaflow)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <metaflow.h>

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

int main(void)
{
    mf_engine *engine = NULL;
    mf_run *run = NULL;
    mf_task *task = NULL;
    mf_artifact *art = NULL;
    mf_strlist *list = NULL;
    mf_buf buf = MF_BUF_INIT;
    size_t i, n = 64u << 20;
    const char *tags[] = {"demo"};
    mf_run_options ropts = MF_RUN_OPTIONS_INIT;
    double t0;
    const void *map;
    uint64_t maplen;
    float *weights;

    printf("libmetaflow %s\n", mf_version_string());
    CHECK(mf_engine_open(&engine, NULL));
    printf("datastore: %s\n", mf_engine_root(engine));

    ropts.tags = tags;
    ropts.ntags = 1;
    CHECK(mf_run_create(&run, engine, "DemoFlow", &ropts));
    printf("run DemoFlow/%s started\n", mf_run_id(run));

    /* start: a small JSON value and a 64 MiB float array. */
    CHECK(mf_task_create(&task, run, "start", NULL));
    CHECK(mf_task_put(task, "greeting", "json", "\"hello, world\"", 14, 0));
    weights = (float *)malloc(n);
    for (i = 0; i < n / sizeof *weights; i++)
        weights[i] = (float)((i * 2654435761u) % 1000003u) / 1000003.0f;
    t0 = now();
    CHECK(mf_task_put(task, "weights", "raw", weights, n, MF_PUT_RAW));
    printf("stored weights: %zu MiB in %.1f ms\n", n >> 20, (now() - t0) * 1e3);
    CHECK(mf_task_commit(task, MF_TASK_SUCCEEDED));
    printf("task %s committed\n", mf_task_pathspec(task));
    mf_task_free(task);
    task = NULL;

    /* end: the same array again is stored once (content-addressed). */
    CHECK(mf_task_create(&task, run, "end", NULL));
    CHECK(mf_task_put(task, "weights", "raw", weights, n, MF_PUT_RAW));
    CHECK(mf_task_commit(task, MF_TASK_SUCCEEDED));
    mf_task_free(task);
    CHECK(mf_run_finish(run, MF_RUN_SUCCEEDED));

    /* Read back, as a client would. */
    {
        char ps[256];
        snprintf(ps, sizeof ps, "DemoFlow/%s/start/1", mf_run_id(run));
        CHECK(mf_task_open(&task, engine, ps));
    }
    CHECK(mf_task_artifact(&art, task, "greeting"));
    CHECK(mf_artifact_read(art, 0, &buf));
    printf("greeting (%s) = %s\n", mf_artifact_encoding(art), buf.ptr);
    mf_artifact_free(art);
    CHECK(mf_task_artifact(&art, task, "weights"));
    t0 = now();
    CHECK(mf_artifact_map(art, 0, &map, &maplen));
    printf("weights: %llu bytes mapped in %.1f us (zero-copy: %s), key %.16s..., "
           "equal: %s\n",
           (unsigned long long)maplen, (now() - t0) * 1e6,
           mf_artifact_is_zero_copy(art, 0) ? "yes" : "no", mf_artifact_key(art),
           maplen == n && memcmp(map, weights, n) == 0 ? "yes" : "NO");
    mf_artifact_free(art);
    mf_task_free(task);
    mf_run_free(run);

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
    free(weights);
    mf_engine_free(engine);
    return 0;
}
