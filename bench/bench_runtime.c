/*
 * bench_runtime: end-to-end cost of the runtime and the local executor on
 * a fresh fs datastore (real files, real LMDB index) per run.
 *
 *   bench_runtime [-d dir] [-n tasks] [-c cmd_tasks] [-r reps] [-q] [-k]
 *   bench_runtime -p workers,threads[,join] [-d dir] [-n tasks] [-k]
 *
 * (defaults: $TMPDIR or /tmp, 10000, 1000, 3). Flows are
 * start -> foreach body x N -> join -> end.
 *
 *   1. In-process C steps: the body puts one 8-byte artifact; the join
 *      either reads nothing or opens every input and sums its artifact.
 *      Timed from mf_run_start() to the return of mf_run_wait(), and split
 *      into phases with the run's events (times are when the runtime
 *      recorded each result: after its batch's sync and index write).
 *   2. Command steps: the body runs /bin/true, as a "command" step
 *      attribute (/bin/sh -c "/bin/true") or as a command template
 *      {"/bin/true"} (exec'd directly); start, join and end stay
 *      in-process. Compared with a baseline of posix_spawn()+waitpid()
 *      of the same program, as many times, with as many at once.
 *
 * Every run is a forked child with its own temporary datastore, so its
 * peak RSS (getrusage ru_maxrss) and CPU time are its own. Figures are
 * the median of -r repetitions (RSS: the largest). -q skips the command
 * tasks. -p runs one in-process configuration once in this process
 * (no fork, no repetition): for profilers such as perf or callgrind.
 * Datastores are removed when the benchmark ends (-k keeps them).
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <metaflow.h>

extern char **environ;

#define MAX_REPS 15

enum kind {
    K_INPROC,      /* in-process body */
    K_CMD_SHELL,   /* body: "command" attribute, /bin/sh -c /bin/true */
    K_CMD_EXEC,    /* body: command template {"/bin/true"} */
    K_SPAWN_TRUE,  /* baseline: posix_spawn /bin/true */
    K_SPAWN_SH     /* baseline: posix_spawn /bin/sh -c /bin/true */
};

typedef struct config {
    int kind;
    uint32_t n;          /* foreach width / number of spawns */
    uint32_t workers;    /* max_workers (0: default 16) */
    uint32_t threads;    /* local executor threads */
    bool join_reads;     /* join opens and sums every input */
} config;

typedef struct result {
    int rc;
    double total;        /* mf_run_start .. mf_run_wait return (or all spawns) */
    double run_start;    /* the mf_run_start call */
    double start_done;   /* start task recorded, from mf_run_start */
    double body_first;   /* first body task handed to the executor */
    double body_done;    /* last body task recorded */
    double join_start;   /* join handed to the executor */
    double join_done;    /* join recorded */
    double end_done;     /* end recorded */
    double utime, stime; /* this process (all its threads) */
    double cutime, cstime; /* its reaped children (command tasks) */
    long maxrss_kb;
    long nvcsw, nivcsw;
    uint32_t body_ok;
    uint32_t batches;    /* runs of consecutive body results (~ sync batches) */
    bool in_batch;
    int64_t sum;
    char err[512];
} result;

static const char *g_base;
static bool g_keep;
static uint32_t g_tasks = 10000, g_cmd_tasks = 1000;
static int g_reps = 3;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ steps */

typedef struct payload {
    uint32_t n;
    bool join_reads;
    int64_t sum;
} payload;

static int s_start(mf_task *t, void *p)
{
    payload *pl = p;
    return mf_task_set_foreach(t, pl->n, NULL) == MF_OK ? 0 : 1;
}

static int s_body(mf_task *t, void *p)
{
    (void)p;
    int64_t v = (int64_t)mf_task_foreach_index(t, 0);
    return mf_task_put(t, "v", "i64", &v, sizeof v, 0) == MF_OK ? 0 : 1;
}

static int s_join(mf_task *t, void *p)
{
    payload *pl = p;
    size_t n = mf_task_input_count(t);
    if (n != pl->n)
        return 4;
    if (!pl->join_reads)
        return 0;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        mf_task *in = NULL;
        mf_artifact *a = NULL;
        mf_buf b = MF_BUF_INIT;
        int rc = mf_task_input_open(&in, t, i);
        if (!rc)
            rc = mf_task_artifact(&a, in, "v");
        if (!rc)
            rc = mf_artifact_read(a, 0, &b);
        if (!rc && b.size == 8) {
            int64_t v;
            memcpy(&v, b.ptr, 8);
            sum += v;
        }
        mf_buf_dispose(&b);
        mf_artifact_free(a);
        mf_task_free(in);
        if (rc)
            return 5;
    }
    pl->sum = sum;
    return mf_task_put(t, "sum", "i64", &sum, sizeof sum, 0) == MF_OK ? 0 : 1;
}

static int s_nop(mf_task *t, void *p)
{
    (void)t;
    (void)p;
    return 0;
}

/* ------------------------------------------------------------ events */

typedef struct timing {
    double t0;
    result *r;
} timing;

static void on_event(const mf_run_event *ev, void *p)
{
    timing *tm = p;
    result *r = tm->r;
    if (!ev->step)
        return;
    double t = now_s() - tm->t0;
    /* The results of one batch (one sync, one index transaction) are
     * reported back to back; new body tasks start between batches. */
    bool body_ok = ev->type == MF_EVENT_TASK_SUCCEEDED && !strcmp(ev->step, "body");
    if (body_ok && !r->in_batch)
        r->batches++;
    r->in_batch = body_ok;
    if (ev->type == MF_EVENT_TASK_STARTED) {
        if (!strcmp(ev->step, "body") && r->body_first == 0)
            r->body_first = t;
        else if (!strcmp(ev->step, "join"))
            r->join_start = t;
    } else if (ev->type == MF_EVENT_TASK_SUCCEEDED) {
        if (!strcmp(ev->step, "start")) {
            r->start_done = t;
        } else if (!strcmp(ev->step, "body")) {
            r->body_ok++;
            r->body_done = t;
        } else if (!strcmp(ev->step, "join")) {
            r->join_done = t;
        } else if (!strcmp(ev->step, "end")) {
            r->end_done = t;
        }
    }
}

/* ------------------------------------------------------------ scenarios */

static void fail(result *r, const char *what)
{
    r->rc = 1;
    snprintf(r->err, sizeof r->err, "%s: %s", what, mf_error_last());
}

static void run_flow(const config *c, const char *dir, result *r)
{
    char root[4200];
    snprintf(root, sizeof root, "%s/.metaflow", dir);
    mf_engine *e = NULL;
    mf_executor *ex = NULL;
    mf_flow *fl = NULL;
    mf_run *run = NULL;
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    eo.root = root;
    if (mf_engine_open(&e, &eo) != MF_OK) {
        fail(r, "mf_engine_open");
        return;
    }
    mf_local_options lo = MF_LOCAL_OPTIONS_INIT;
    lo.threads = c->threads;
    payload pl = { c->n, c->join_reads, 0 };
    const char *j = "join", *en = "end";
    if (mf_executor_local_new(&ex, e, &lo) != MF_OK ||
        mf_executor_local_set_step(ex, "start", s_start, &pl) != MF_OK ||
        mf_executor_local_set_step(ex, "join", s_join, &pl) != MF_OK ||
        mf_executor_local_set_step(ex, "end", s_nop, NULL) != MF_OK ||
        (c->kind == K_INPROC && mf_executor_local_set_step(ex, "body", s_body, NULL) != MF_OK) ||
        mf_flow_new(&fl, "BenchFlow") != MF_OK || mf_flow_add_step(fl, "start", 0) != MF_OK ||
        mf_flow_add_step(fl, "body", 0) != MF_OK ||
        mf_flow_add_step(fl, "join", MF_STEP_JOIN) != MF_OK ||
        mf_flow_add_step(fl, "end", 0) != MF_OK ||
        mf_flow_set_foreach(fl, "start", "body", "items") != MF_OK ||
        mf_flow_set_next(fl, "body", &j, 1) != MF_OK ||
        mf_flow_set_next(fl, "join", &en, 1) != MF_OK ||
        (c->kind == K_CMD_SHELL &&
         mf_flow_set_step_attr(fl, "body", "command", "/bin/true") != MF_OK) ||
        mf_flow_validate(fl) != MF_OK) {
        fail(r, "setting up");
        goto done;
    }
    timing tm = { 0, r };
    mf_start_options o = MF_START_OPTIONS_INIT;
    o.executor = ex;
    o.max_workers = c->workers;
    o.max_num_splits = c->n;
    o.event_cb = on_event;
    o.event_payload = &tm;
    const char *tmpl[] = { "/bin/true" };
    if (c->kind == K_CMD_EXEC) {
        o.command = tmpl;
        o.ncommand = 1;
    }
    tm.t0 = now_s();
    if (mf_run_start(&run, e, fl, &o) != MF_OK) {
        fail(r, "mf_run_start");
        goto done;
    }
    r->run_start = now_s() - tm.t0;
    if (mf_run_wait(run) != MF_OK) {
        fail(r, "mf_run_wait");
        goto done;
    }
    r->total = now_s() - tm.t0;
    r->sum = pl.sum;
    if (r->body_ok != c->n) {
        r->rc = 1;
        snprintf(r->err, sizeof r->err, "%u body tasks succeeded, not %u", r->body_ok, c->n);
    } else if (c->join_reads && pl.sum != (int64_t)c->n * (c->n - 1) / 2) {
        r->rc = 1;
        snprintf(r->err, sizeof r->err, "join sum %lld is wrong", (long long)pl.sum);
    }
done:
    mf_run_free(run);
    mf_flow_free(fl);
    mf_executor_free(ex);
    mf_engine_free(e);
}

/* posix_spawn + waitpid, n times, at most `workers` at once. */
static void run_spawns(const config *c, result *r)
{
    char *argv_true[] = { "/bin/true", NULL };
    char *argv_sh[] = { "/bin/sh", "-c", "/bin/true", NULL };
    char **argv = c->kind == K_SPAWN_SH ? argv_sh : argv_true;
    uint32_t workers = c->workers ? c->workers : 16;
    uint32_t started = 0, running = 0;
    double t0 = now_s();
    while (started < c->n || running) {
        while (started < c->n && running < workers) {
            pid_t pid;
            int e = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
            if (e) {
                r->rc = 1;
                snprintf(r->err, sizeof r->err, "posix_spawn: %s", strerror(e));
                return;
            }
            started++;
            running++;
        }
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            r->rc = 1;
            snprintf(r->err, sizeof r->err, "waitpid: %s", strerror(errno));
            return;
        }
        running--;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            r->rc = 1;
            snprintf(r->err, sizeof r->err, "/bin/true failed");
            return;
        }
    }
    r->total = now_s() - t0;
}

/* Datastores are removed at the end, not after each run: on ext4 without
 * a journal, inode allocation skips inodes deleted in the last minutes
 * (ext4 recently_deleted()), at a CPU cost per skipped inode that would
 * make each run pay for the deletions of the one before. */
static char **g_dirs;
static size_t g_ndirs;

static void keep_dir(const char *dir)
{
    char **n = realloc(g_dirs, (g_ndirs + 1) * sizeof *n);
    if (!n || !(n[g_ndirs] = strdup(dir))) {
        perror("malloc");
        exit(2);
    }
    g_dirs = n;
    g_ndirs++;
}

static void rmrf(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static const char *fs_name(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return "?";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53: return "ext2/3/4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: return "other";
    }
}

static void remove_dirs(void)
{
    for (size_t i = 0; i < g_ndirs; i++) {
        if (g_keep)
            fprintf(stderr, "kept %s\n", g_dirs[i]);
        else
            rmrf(g_dirs[i]);
        free(g_dirs[i]);
    }
    free(g_dirs);
    g_dirs = NULL;
    g_ndirs = 0;
}

static void scenario(const config *c, result *r, const char *dir)
{
    if (c->kind == K_SPAWN_TRUE || c->kind == K_SPAWN_SH)
        run_spawns(c, r);
    else
        run_flow(c, dir, r);
    struct rusage ru, rc;
    getrusage(RUSAGE_SELF, &ru);
    getrusage(RUSAGE_CHILDREN, &rc);
    r->maxrss_kb = ru.ru_maxrss;
    r->utime = tv_s(ru.ru_utime);
    r->stime = tv_s(ru.ru_stime);
    r->cutime = tv_s(rc.ru_utime);
    r->cstime = tv_s(rc.ru_stime);
    r->nvcsw = ru.ru_nvcsw;
    r->nivcsw = ru.ru_nivcsw;
}

/* One repetition in a forked child, on a datastore of its own. */
static result run_once(const config *c)
{
    result r;
    memset(&r, 0, sizeof r);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench_runtime.XXXXXX", g_base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        scenario(c, &r, dir);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    keep_dir(dir);
    if (n != (ssize_t)sizeof r) {
        fprintf(stderr, "scenario child failed (status %d)\n", status);
        exit(2);
    }
    if (r.rc) {
        fprintf(stderr, "scenario failed: %s\n", r.err);
        exit(2);
    }
    return r;
}

static int cmp_total(const void *a, const void *b)
{
    const result *x = a, *y = b;
    return x->total < y->total ? -1 : x->total > y->total;
}

/* Median by total time; the largest RSS; the fastest and slowest. */
typedef struct summary {
    result med;
    double min, max;
    long maxrss_kb;
} summary;

static summary run_reps(const config *c, int reps)
{
    result rs[MAX_REPS];
    summary s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < reps; i++) {
        rs[i] = run_once(c);
        if (rs[i].maxrss_kb > s.maxrss_kb)
            s.maxrss_kb = rs[i].maxrss_kb;
    }
    qsort(rs, (size_t)reps, sizeof *rs, cmp_total);
    s.med = rs[reps / 2];
    s.min = rs[0].total;
    s.max = rs[reps - 1].total;
    return s;
}

/* ------------------------------------------------------------ output */

static void inproc_row(const config *c, const summary *s)
{
    const result *r = &s->med;
    uint32_t tasks = c->n + 3;
    double bodies = r->body_done - r->start_done;
    double join = r->join_done - r->body_done;
    double tail = r->total - r->join_done;
    printf("%7u %7u %-5s %8.0f %9.0f %7.0f-%-7.0f %7.1f %7.1f %8.0f %7.1f %6.0f %5.2f/%-5.2f "
           "%6.1f %7.1f\n",
           c->workers ? c->workers : 16, c->threads, c->join_reads ? "sum" : "none",
           r->total * 1e3, tasks / r->total, tasks / s->max, tasks / s->min,
           r->start_done * 1e3, r->run_start * 1e3, bodies * 1e3, join * 1e3, tail * 1e3,
           r->utime, r->stime, r->batches ? (double)r->body_ok / r->batches : 0,
           (double)s->maxrss_kb / 1024.0);
}

static void inproc_header(void)
{
    printf("%7s %7s %-5s %8s %9s %15s %7s %7s %8s %7s %6s %11s %6s %7s\n", "workers",
           "threads", "join", "total ms", "tasks/s", "tasks/s range", "start", "(rs)",
           "bodies", "join", "tail", "user/sys s", "/batch", "RSS MiB");
}

int main(int argc, char **argv)
{
    const char *prof = NULL;
    bool skip_cmd = false;
    int opt;
    while ((opt = getopt(argc, argv, "d:n:c:r:p:qk")) != -1) {
        switch (opt) {
        case 'd': g_base = optarg; break;
        case 'n': g_tasks = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'c': g_cmd_tasks = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': g_reps = atoi(optarg); break;
        case 'p': prof = optarg; break;
        case 'q': skip_cmd = true; break;
        case 'k': g_keep = true; break;
        default:
            fprintf(stderr, "usage: %s [-d dir] [-n tasks] [-c cmd_tasks] [-r reps] [-q] [-k] "
                            "[-p workers,threads[,join]]\n", argv[0]);
            return 2;
        }
    }
    if (!g_base)
        g_base = getenv("TMPDIR");
    if (!g_base || !*g_base)
        g_base = "/tmp";
    if (g_reps < 1)
        g_reps = 1;
    if (g_reps > MAX_REPS)
        g_reps = MAX_REPS;
    if (g_tasks < 1 || g_cmd_tasks < 1) {
        fprintf(stderr, "-n and -c need at least 1\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    atexit(remove_dirs);

    if (prof) {
        /* One in-process run here, for a profiler. */
        unsigned w = 16, th = 2, jr = 0;
        sscanf(prof, "%u,%u,%u", &w, &th, &jr);
        config c = { K_INPROC, g_tasks, w, th, jr != 0 };
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/bench_runtime.XXXXXX", g_base);
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 2;
        }
        result r;
        memset(&r, 0, sizeof r);
        scenario(&c, &r, dir);
        keep_dir(dir);
        if (r.rc) {
            fprintf(stderr, "failed: %s\n", r.err);
            return 1;
        }
        summary s = { r, r.total, r.total, r.maxrss_kb };
        inproc_header();
        inproc_row(&c, &s);
        printf("peak RSS %.1f MiB; context switches %ld voluntary, %ld involuntary\n",
               (double)r.maxrss_kb / 1024.0, r.nvcsw, r.nivcsw);
        return 0;
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("runtime benchmark: fs datastore + LMDB index under %s (%s), %ld CPUs, median "
           "of %d\n", g_base, fs_name(g_base), ncpu, g_reps);

    /* 1. In-process tasks. */
    printf("\n[1] in-process C steps: start -> foreach body x%u -> join -> end "
           "(%u tasks per run)\n", g_tasks, g_tasks + 3);
    printf("    times in ms from mf_run_start: start = start task recorded (rs = the "
           "mf_run_start call),\n    bodies = start recorded .. last body recorded, join = "
           "last body .. join recorded,\n    tail = join .. mf_run_wait returned "
           "(end task + run finish),\n    /batch = body results per sync batch (one "
           "syncfs + one index transaction)\n");
    inproc_header();
    static const uint32_t workers[] = { 16, 64, 256 };
    static const uint32_t threads[] = { 1, 2, 4 };
    long rss_10k = 0;
    double best_rate = 0;
    for (size_t wi = 0; wi < 3; wi++)
        for (size_t ti = 0; ti < 3; ti++) {
            config c = { K_INPROC, g_tasks, workers[wi], threads[ti], false };
            summary s = run_reps(&c, g_reps);
            inproc_row(&c, &s);
            fflush(stdout);
            if (s.maxrss_kb > rss_10k)
                rss_10k = s.maxrss_kb;
            if ((g_tasks + 3) / s.med.total > best_rate)
                best_rate = (g_tasks + 3) / s.med.total;
        }
    long rss_sum = 0;
    for (size_t ti = 0; ti < 3; ti++) {
        config c = { K_INPROC, g_tasks, 16, threads[ti], true };
        summary s = run_reps(&c, g_reps);
        inproc_row(&c, &s);
        fflush(stdout);
        if (s.maxrss_kb > rss_sum)
            rss_sum = s.maxrss_kb;
    }
    printf("peak RSS of a %u-task run: %.1f MiB (join reads nothing), %.1f MiB (join sums "
           "its %u inputs)\n", g_tasks + 3, (double)rss_10k / 1024.0,
           (double)rss_sum / 1024.0, g_tasks);
    printf("best: %.0f tasks/s (target >= 10,000)\n", best_rate);

    if (skip_cmd)
        return 0;

    /* 2. Command tasks against a bare spawn baseline. */
    printf("\n[2] command tasks: foreach body x%u running /bin/true; baseline = "
           "posix_spawn+waitpid x%u,\n    as many at once as max_workers. overhead = "
           "(run - baseline) / %u tasks\n", g_cmd_tasks, g_cmd_tasks, g_cmd_tasks);
    printf("%7s %-28s %8s %8s %9s %9s %12s %11s\n", "workers", "how", "total ms",
           "tasks/s", "base ms", "ovh ms/t", "self u/s s", "RSS MiB");
    static const uint32_t cworkers[] = { 2, 16, 64 };
    for (size_t wi = 0; wi < 3; wi++) {
        config bt = { K_SPAWN_TRUE, g_cmd_tasks, cworkers[wi], 0, false };
        config bs = { K_SPAWN_SH, g_cmd_tasks, cworkers[wi], 0, false };
        summary sbt = run_reps(&bt, g_reps);
        summary sbs = run_reps(&bs, g_reps);
        printf("%7u %-28s %8.0f %8.0f %9s %9s %5.2f/%-5.2f %11.1f\n", cworkers[wi],
               "baseline spawn /bin/true", sbt.med.total * 1e3, g_cmd_tasks / sbt.med.total,
               "-", "-", sbt.med.utime, sbt.med.stime, (double)sbt.maxrss_kb / 1024.0);
        printf("%7u %-28s %8.0f %8.0f %9s %9s %5.2f/%-5.2f %11.1f\n", cworkers[wi],
               "baseline spawn sh -c true", sbs.med.total * 1e3, g_cmd_tasks / sbs.med.total,
               "-", "-", sbs.med.utime, sbs.med.stime, (double)sbs.maxrss_kb / 1024.0);
        config ce = { K_CMD_EXEC, g_cmd_tasks, cworkers[wi], 2, false };
        config cs = { K_CMD_SHELL, g_cmd_tasks, cworkers[wi], 2, false };
        summary se = run_reps(&ce, g_reps);
        summary ss = run_reps(&cs, g_reps);
        printf("%7u %-28s %8.0f %8.0f %9.0f %9.3f %5.2f/%-5.2f %11.1f\n", cworkers[wi],
               "template {\"/bin/true\"}", se.med.total * 1e3, (g_cmd_tasks + 3) / se.med.total,
               sbt.med.total * 1e3, (se.med.total - sbt.med.total) * 1e3 / g_cmd_tasks,
               se.med.utime, se.med.stime, (double)se.maxrss_kb / 1024.0);
        printf("%7u %-28s %8.0f %8.0f %9.0f %9.3f %5.2f/%-5.2f %11.1f\n", cworkers[wi],
               "attr command \"/bin/true\"", ss.med.total * 1e3,
               (g_cmd_tasks + 3) / ss.med.total, sbs.med.total * 1e3,
               (ss.med.total - sbs.med.total) * 1e3 / g_cmd_tasks, ss.med.utime,
               ss.med.stime, (double)ss.maxrss_kb / 1024.0);
        printf("%7s %-28s %8s %8s %9.0f %9.3f   (attr command against the /bin/true "
               "baseline)\n", "", "", "", "", sbt.med.total * 1e3,
               (ss.med.total - sbt.med.total) * 1e3 / g_cmd_tasks);
        fflush(stdout);
    }
    printf("(self u/s = CPU seconds of the runtime process itself, all threads; the "
           "tasks' own CPU is not in it)\n");
    return 0;
}
