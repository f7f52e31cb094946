/*
 * Benchmark of the LMDB metadata index (lib/meta): insert rates, then
 * queries per second against a flow with 10k runs and a step with 1000
 * tasks.
 *
 *   bench_index [directory]     (default: a fresh directory under $TMPDIR)
 *
 * Inserts are one durable transaction each (one fsync per commit), as the
 * runtime does them, so their rate depends mostly on the disk.
 */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/meta.h"

#define NRUNS 10000
#define NTASKS 1000

static void die(const char *what)
{
    fprintf(stderr, "bench_index: %s: %s\n", what, mf_error_last());
    exit(1);
}

static void row(const char *name, double ops, double secs)
{
    double per = secs / ops;
    printf("| %-44s | %12.0f | %10.2f |\n", name, ops / secs, per * 1e6);
}

/* Repeat `fn` for about a quarter of a second. */
typedef void (*query_fn)(mf_meta *m, void *arg);

static void timed(const char *name, mf_meta *m, query_fn fn, void *arg)
{
    fn(m, arg); /* warm */
    int64_t t0 = mf__mono_us(), t;
    long n = 0;
    do {
        for (int i = 0; i < 16; i++)
            fn(m, arg);
        n += 16;
        t = mf__mono_us();
    } while (t - t0 < 250000);
    row(name, (double)n, (double)(t - t0) / 1e6);
}

static void expect_count(mf_strlist *l, size_t want, const char *what)
{
    if (mf_strlist_count(l) != want) {
        fprintf(stderr, "bench_index: %s: %zu results, expected %zu\n", what,
                mf_strlist_count(l), want);
        exit(1);
    }
}

static char g_latest_ok[32];

static void q_latest(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", NULL, 0, 0, 1, l) != MF_OK)
        die("latest run");
    expect_count(l, 1, "latest run");
    mf_strlist_free(l);
    (void)arg;
}

static void q_latest_ok(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", NULL, 0, MF_LIST_SUCCESSFUL, 1, l) != MF_OK)
        die("latest successful run");
    expect_count(l, 1, "latest successful run");
    if (strcmp(mf_strlist_get(l, 0), g_latest_ok) != 0)
        die("latest successful run: wrong run");
    mf_strlist_free(l);
    (void)arg;
}

static void q_list_all(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", NULL, 0, 0, 0, l) != MF_OK)
        die("run list");
    expect_count(l, NRUNS, "run list");
    mf_strlist_free(l);
    (void)arg;
}

static void q_list_tag(mf_meta *m, void *arg)
{
    static const char *const tags[] = { "exp:a" };
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", tags, 1, 0, 0, l) != MF_OK)
        die("run list by tag");
    expect_count(l, NRUNS / 10, "run list by tag");
    mf_strlist_free(l);
    (void)arg;
}

static void q_list_two_tags(mf_meta *m, void *arg)
{
    static const char *const tags[] = { "user:bench", "exp:a" };
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", tags, 2, 0, 0, l) != MF_OK)
        die("run list by two tags");
    expect_count(l, NRUNS / 10, "run list by two tags");
    mf_strlist_free(l);
    (void)arg;
}

static void q_run_get(mf_meta *m, void *arg)
{
    mf__run_record r;
    if (mf__meta_run_get(m, "BenchFlow", arg, &r) != MF_OK)
        die("run get");
    mf__run_record_clear(&r);
}

static void q_alive(mf_meta *m, void *arg)
{
    if (mf__meta_run_alive(m, "BenchFlow", arg) < 0)
        die("run alive");
}

static void q_task_get(mf_meta *m, void *arg)
{
    mf__task_record t;
    if (mf__meta_task_get(m, "BenchFlow", arg, "train", "500", -1, &t) != MF_OK)
        die("task get");
    mf__task_record_clear(&t);
}

static void q_task_list(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_task_list(m, "BenchFlow", arg, "train", l) != MF_OK)
        die("task list");
    expect_count(l, NTASKS, "task list");
    mf_strlist_free(l);
}

static void q_step_list(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_step_list(m, "BenchFlow", arg, l) != MF_OK)
        die("step list");
    expect_count(l, 3, "step list");
    mf_strlist_free(l);
}

static void q_flow_list(mf_meta *m, void *arg)
{
    mf_strlist *l = mf__strlist_new();
    if (mf__meta_flow_list(m, l) != MF_OK)
        die("flow list");
    mf_strlist_free(l);
    (void)arg;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

int main(int argc, char **argv)
{
    char tmpl[4096];
    const char *dir;
    bool made = false;
    if (argc > 1) {
        dir = argv[1];
    } else {
        const char *base = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/bench-index-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpl)) {
            perror("mkdtemp");
            return 1;
        }
        dir = tmpl;
        made = true;
    }
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/_index", dir);

    mf_meta *m;
    if (mf__meta_open(&m, idx, 0, false) != MF_OK)
        die("open");

    printf("metadata index benchmark (%s)\n\n", idx);
    printf("| %-44s | %12s | %10s |\n", "operation", "ops/s", "us/op");
    printf("|%s|%s|%s|\n", "----------------------------------------------",
           "--------------", "------------");

    /* Runs: allocated ids, two system tags, a tag on every 10th run,
     * every 7th succeeded; a few parameters like a real run. */
    static char *systags[] = { "user:bench", "runtime:dev" };
    static char *tag_a[] = { "exp:a" };
    static char *pn[] = { "alpha", "epochs", "data" };
    static char *pv[] = { "0.5", "10", "\"s3://bucket/path/to/data.parquet\"" };
    char first_run[32] = "";
    int64_t t0 = mf__mono_us();
    for (int i = 0; i < NRUNS; i++) {
        mf__run_record r;
        memset(&r, 0, sizeof r);
        r.flow = "BenchFlow";
        r.user = "bench";
        r.status = i % 7 == 0 ? MF_RUN_SUCCEEDED : MF_RUN_FAILED;
        r.nsys_tags = 2;
        r.sys_tags = systags;
        r.ntags = i % 10 == 0 ? 1 : 0;
        r.tags = tag_a;
        r.nparams = 3;
        r.param_names = pn;
        r.param_values = pv;
        if (mf__meta_run_insert(m, &r) != MF_OK)
            die("run insert");
        if (i == 0)
            snprintf(first_run, sizeof first_run, "%s", r.run_id);
        if (r.status == MF_RUN_SUCCEEDED)
            snprintf(g_latest_ok, sizeof g_latest_ok, "%s", r.run_id);
        free(r.run_id);
    }
    row("run insert (allocated id, 1 txn each)", NRUNS, (double)(mf__mono_us() - t0) / 1e6);

    /* Update: finish 1000 runs (run_put keeps the by-time index). */
    mf_strlist *ids = mf__strlist_new();
    if (mf__meta_run_list(m, "BenchFlow", NULL, 0, 0, 1000, ids) != MF_OK)
        die("run list");
    t0 = mf__mono_us();
    for (size_t i = 0; i < mf_strlist_count(ids); i++) {
        mf__run_record r;
        if (mf__meta_run_get(m, "BenchFlow", mf_strlist_get(ids, i), &r) != MF_OK)
            die("run get");
        r.finished_us = r.created_us + 1000;
        if (mf__meta_run_put(m, &r) != MF_OK)
            die("run put");
        mf__run_record_clear(&r);
    }
    row("run get + put (status update)", (double)mf_strlist_count(ids), (double)(mf__mono_us() - t0) / 1e6);
    mf_strlist_free(ids);

    /* Tasks: 1000 in one step of the first run, with ids from the counter. */
    mf_buf tid = MF_BUF_INIT;
    static char *inputs[] = { "1/start/1" };
    static char *arts[] = { "model", "score", "x" };
    static const char *steps[] = { "start", "train", "end" };
    t0 = mf__mono_us();
    for (int s = 0; s < 3; s++) {
        int n = s == 1 ? NTASKS : 1;
        for (int i = 0; i < n; i++) {
            if (mf__meta_task_id_next(m, "BenchFlow", first_run, &tid) != MF_OK)
                die("task id");
            uint32_t fi = (uint32_t)i, fn = NTASKS;
            char *fv = "item";
            mf__task_record t;
            memset(&t, 0, sizeof t);
            t.flow = "BenchFlow";
            t.run_id = first_run;
            t.step = (char *)steps[s];
            t.task_id = tid.ptr;
            t.status = MF_TASK_SUCCEEDED;
            if (s == 1) {
                t.foreach_depth = 1;
                t.foreach_index = &fi;
                t.foreach_nsplits = &fn;
                t.foreach_value = &fv;
            }
            t.ninputs = 1;
            t.input_paths = inputs;
            t.nartifacts = 3;
            t.artifact_names = arts;
            if (mf__meta_task_put(m, &t) != MF_OK)
                die("task put");
        }
    }
    row("task id next + task put (2 txns)", NTASKS + 2, (double)(mf__mono_us() - t0) / 1e6);
    mf_buf_dispose(&tid);

    if (mf__meta_run_lock(m, "BenchFlow", first_run) != MF_OK)
        die("run lock");

    timed("latest run", m, q_latest, NULL);
    timed("latest successful run", m, q_latest_ok, NULL);
    timed("run list, 10k runs, no filter", m, q_list_all, NULL);
    timed("run list, 10k runs, tag filter (1k match)", m, q_list_tag, NULL);
    timed("run list, 10k runs, 2 tags (1k match)", m, q_list_two_tags, NULL);
    timed("run get (decode record)", m, q_run_get, first_run);
    timed("run alive (held by this process)", m, q_alive, first_run);
    timed("task get (latest attempt)", m, q_task_get, first_run);
    timed("task list, step with 1000 tasks", m, q_task_list, first_run);
    timed("step list", m, q_step_list, first_run);
    timed("flow list", m, q_flow_list, NULL);

    mf__meta_run_unlock(m, "BenchFlow", first_run);
    printf("\nmap size: %" PRIu64 " MiB\n", mf__meta_map_size(m) >> 20);
    mf__meta_close(m);
    if (made)
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
