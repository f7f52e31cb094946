/*
 * The datastore the mfctl tests run against, made with the public API only:
 *
 *   cli_fixture ROOT OUTDIR
 *
 * ROOT gets these runs (ids fixed so that the test can expect exact output):
 *   CliFlow/1001     succeeded: start -> foreach(3) body -> join -> end, all
 *                    in-process steps; artifacts of known bytes, task logs
 *   CliFlow/1002     failed: start is a shell command that exits 3
 *   CliFlow/1003     crashed: created and never finished; an uncommitted
 *                    task leaves one unreferenced blob for gc to find
 *   ShellFlow/2001   succeeded: shell steps that write stdout and stderr
 *   ResumeFlow/3001  failed at step a; ResumeFlow/3002 resumes it (start cloned)
 *
 * OUTDIR gets the bytes the test compares dumps with: greeting.bin, big.bin,
 * part1.bin, orphan.bin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <metaflow.h>

#define BIG_SIZE ((17u << 20) + 12345u) /* streamed by mfctl dump, chunked */
#define PART1_SIZE 1000u

static const char greeting[] = "hello, world\n";
static const char orphan[] = "bytes of a task that never committed\n";
static const char *const colors[] = { "red", "green", "blue" };

static void die(const char *what)
{
    fprintf(stderr, "cli_fixture: %s: %s\n", what, mf_error_last());
    exit(1);
}

#define CHECK(call)                                                            \
    do {                                                                       \
        if ((call) != MF_OK)                                                   \
            die(#call);                                                        \
    } while (0)

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cli_fixture: cannot write %s\n", path);
        exit(1);
    }
}

/* Deterministic bytes that zstd shrinks, with enough variety for
 * content-defined chunking to cut in several places. */
static unsigned char *big_bytes(void)
{
    unsigned char *b = malloc(BIG_SIZE);
    uint32_t x = 12345;
    if (!b)
        exit(1);
    for (size_t i = 0; i < BIG_SIZE; i++) {
        if (i % 64 == 0)
            x = x * 1103515245u + 12345u;
        b[i] = (unsigned char)((x >> 16) + (i % 64 < 32 ? 0 : i));
    }
    return b;
}

static unsigned char *part1_bytes(void)
{
    unsigned char *b = malloc(PART1_SIZE);
    if (!b)
        exit(1);
    for (size_t i = 0; i < PART1_SIZE; i++)
        b[i] = (unsigned char)(255 - i % 251);
    return b;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static void log_line(mf_task *t, int32_t stream, const char *text)
{
    CHECK(mf_task_log_write(t, stream, text, strlen(text)));
    /* Distinct times, so that merging the streams has one right order. */
    sleep_ms(3);
}

/* ------------------------------------------------- CliFlow's C steps */

static int cli_start(mf_task *t, void *payload)
{
    (void)payload;
    unsigned char *big = big_bytes(), *p1 = part1_bytes();
    const void *parts[2] = { "main value", p1 };
    uint64_t lens[2] = { 10, PART1_SIZE };
    int rc = mf_task_put(t, "greeting", "raw", greeting, sizeof greeting - 1, MF_PUT_NO_INLINE);
    if (rc == MF_OK)
        rc = mf_task_put(t, "_secret", "raw", "s3cr3t", 6, 0);
    if (rc == MF_OK)
        rc = mf_task_put(t, "big", "raw", big, BIG_SIZE, 0);
    if (rc == MF_OK)
        rc = mf_task_put_parts(t, "bundle", "pickle5", parts, lens, 2, 0);
    free(big);
    free(p1);
    if (rc != MF_OK)
        return 1;
    log_line(t, MF_LOG_STDOUT, "start: one\n");
    log_line(t, MF_LOG_STDOUT, "start: two\n");
    return mf_task_set_foreach(t, 3, colors) == MF_OK ? 0 : 1;
}

static int cli_body(mf_task *t, void *payload)
{
    (void)payload;
    char text[64];
    uint32_t i = mf_task_foreach_index(t, 0);
    snprintf(text, sizeof text, "item-%u", (unsigned)i);
    if (mf_task_put(t, "item", "raw", text, strlen(text), 0) != MF_OK)
        return 1;
    snprintf(text, sizeof text, "body %u out 1\n", (unsigned)i);
    log_line(t, MF_LOG_STDOUT, text);
    snprintf(text, sizeof text, "body %u err\n", (unsigned)i);
    log_line(t, MF_LOG_STDERR, text);
    snprintf(text, sizeof text, "body %u out 2\n", (unsigned)i);
    log_line(t, MF_LOG_STDOUT, text);
    return 0;
}

static int cli_join(mf_task *t, void *payload)
{
    (void)payload;
    mf_buf b = MF_BUF_INIT;
    char joined[256] = "";
    int rc = 0;
    for (size_t i = 0; i < mf_task_input_count(t) && rc == 0; i++) {
        mf_task *in = NULL;
        mf_artifact *a = NULL;
        if (mf_task_input_open(&in, t, i) != MF_OK || mf_task_artifact(&a, in, "item") != MF_OK ||
            mf_artifact_read(a, 0, &b) != MF_OK)
            rc = 1;
        else
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s",
                     i ? "," : "", b.ptr);
        mf_artifact_free(a);
        mf_task_free(in);
    }
    if (rc == 0 && mf_task_put(t, "joined", "raw", joined, strlen(joined), 0) != MF_OK)
        rc = 1;
    mf_buf_dispose(&b);
    return rc;
}

static int cli_end(mf_task *t, void *payload)
{
    (void)payload;
    return mf_task_put(t, "done", "json", "true", 4, 0) == MF_OK ? 0 : 1;
}

static int resume_start(mf_task *t, void *payload)
{
    (void)payload;
    return mf_task_put(t, "x", "json", "41", 2, 0) == MF_OK ? 0 : 1;
}

/* ------------------------------------------------------------- flows */

static mf_flow *foreach_flow(void)
{
    mf_flow *fl = NULL;
    const char *j = "join", *e = "end";
    CHECK(mf_flow_new(&fl, "CliFlow"));
    CHECK(mf_flow_add_step(fl, "start", 0));
    CHECK(mf_flow_add_step(fl, "body", 0));
    CHECK(mf_flow_add_step(fl, "join", MF_STEP_JOIN));
    CHECK(mf_flow_add_step(fl, "end", 0));
    CHECK(mf_flow_set_foreach(fl, "start", "body", "items"));
    CHECK(mf_flow_set_next(fl, "body", &j, 1));
    CHECK(mf_flow_set_next(fl, "join", &e, 1));
    return fl;
}

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

/* Start a run and wait for it; `want` is what mf_run_wait() must answer. */
static void run_flow(mf_engine *e, mf_flow *fl, mf_executor *ex, const char *id,
                     const char *user, const char *const *tags, size_t ntags,
                     const char *origin, int want)
{
    mf_start_options o = MF_START_OPTIONS_INIT;
    mf_run *run = NULL;
    o.run_id = id;
    o.user = user;
    o.tags = tags;
    o.ntags = ntags;
    o.executor = ex;
    if (origin)
        CHECK(mf_run_resume(&run, e, fl, origin, &o));
    else
        CHECK(mf_run_start(&run, e, fl, &o));
    int rc = mf_run_wait(run);
    if (rc != want) {
        fprintf(stderr, "cli_fixture: run %s/%s: wait answered %d, not %d: %s\n",
                mf_flow_name(fl), id, rc, want, mf_error_last());
        exit(1);
    }
    mf_run_free(run);
}

int main(int argc, char **argv)
{
    mf_engine *e = NULL;
    mf_executor *ex = NULL;
    mf_flow *fl = NULL;
    mf_run *run = NULL;
    mf_task *task = NULL;
    if (argc != 3) {
        fputs("usage: cli_fixture ROOT OUTDIR\n", stderr);
        return 2;
    }
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    eo.root = argv[1];
    CHECK(mf_engine_open(&e, &eo));

    /* CliFlow/1001: in-process steps. */
    static const char *const tags[] = { "team:cli", "nightly" };
    CHECK(mf_executor_local_new(&ex, e, NULL));
    CHECK(mf_executor_local_set_step(ex, "start", cli_start, NULL));
    CHECK(mf_executor_local_set_step(ex, "body", cli_body, NULL));
    CHECK(mf_executor_local_set_step(ex, "join", cli_join, NULL));
    CHECK(mf_executor_local_set_step(ex, "end", cli_end, NULL));
    fl = foreach_flow();
    run_flow(e, fl, ex, "1001", "alice", tags, 2, NULL, MF_OK);
    mf_executor_free(ex);
    mf_flow_free(fl);

    /* CliFlow/1002: start fails in a shell. */
    fl = foreach_flow();
    CHECK(mf_flow_set_step_attr(fl, "start", "command",
                                "echo about to fail; echo 'bad input' >&2; exit 3"));
    run_flow(e, fl, NULL, "1002", "alice", tags + 1, 1, NULL, MF_EFAILED);
    mf_flow_free(fl);

    /* CliFlow/1003: never finished; its one task never committed. */
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    ro.run_id = "1003";
    ro.user = "bob";
    CHECK(mf_run_create(&run, e, "CliFlow", &ro));
    CHECK(mf_task_create(&task, run, "start", NULL));
    CHECK(mf_task_put(task, "orphan", "raw", orphan, sizeof orphan - 1, MF_PUT_NO_INLINE));
    mf_task_free(task);
    mf_run_free(run);

    /* ShellFlow/2001: shell steps with output on both streams. */
    static const char *const shell_steps[] = { "start", "end" };
    fl = chain("ShellFlow", shell_steps, 2);
    CHECK(mf_flow_set_step_attr(fl, "start", "command", "echo hello; echo oops >&2"));
    CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    run_flow(e, fl, NULL, "2001", "carol", NULL, 0, NULL, MF_OK);
    mf_flow_free(fl);

    /* ResumeFlow/3001 fails at a; 3002 resumes it and clones start. */
    static const char *const resume_steps[] = { "start", "a", "end" };
    CHECK(mf_executor_local_new(&ex, e, NULL));
    CHECK(mf_executor_local_set_step(ex, "start", resume_start, NULL));
    fl = chain("ResumeFlow", resume_steps, 3);
    CHECK(mf_flow_set_step_attr(fl, "a", "command", "echo failing a >&2; exit 3"));
    CHECK(mf_flow_set_step_attr(fl, "end", "command", "true"));
    run_flow(e, fl, ex, "3001", "alice", NULL, 0, NULL, MF_EFAILED);
    CHECK(mf_flow_set_step_attr(fl, "a", "command", "echo fixed"));
    run_flow(e, fl, ex, "3002", "alice", NULL, 0, "3001", MF_OK);
    mf_flow_free(fl);
    mf_executor_free(ex);
    mf_engine_free(e);

    unsigned char *big = big_bytes(), *p1 = part1_bytes();
    write_file(argv[2], "greeting.bin", greeting, sizeof greeting - 1);
    write_file(argv[2], "orphan.bin", orphan, sizeof orphan - 1);
    write_file(argv[2], "big.bin", big, BIG_SIZE);
    write_file(argv[2], "part1.bin", p1, PART1_SIZE);
    free(big);
    free(p1);
    return 0;
}
