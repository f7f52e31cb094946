/*
 * shell_steps: a flow whose steps are shell commands.
 *
 *   start -> count -> end
 *
 * A step attribute "command" is run with /bin/sh -c in a child process of
 * its own; "{step}", "{run_id}", "{task_id}", "{retry_count}" and the like
 * are replaced first, and MF_TASK holds the attempt's pathspec. Each line
 * the command writes reaches the host as it is written, through
 * mf_start_options.log_cb, and the whole log is kept with the task: read
 * it back later with mf_task_log_read().
 *
 * No executor is given, so the run makes (and frees) a default local one.
 *
 *   cc $(pkg-config --cflags metaflow) shell_steps.c $(pkg-config --libs metaflow)
 */
#include <stdio.h>
#include <string.h>

#include <metaflow.h>

struct log_stats {
    size_t lines;
};

/* Called on the thread in mf_run_wait(), once per line; `text` is not
 * NUL-terminated. */
static void on_log_line(const mf_log_line *line, void *payload)
{
    struct log_stats *stats = payload;
    stats->lines++;
    printf("[%s/%s] %s%.*s\n", line->step, line->task_id,
           line->stream == MF_LOG_STDERR ? "(stderr) " : "", (int)line->len, line->text);
    fflush(stdout);
}

static int build_flow(mf_flow **out)
{
    static const char *const steps[] = { "start", "count", "end" };
    static const char *const commands[] = {
        "echo \"hello from {step} in $MF_TASK\"; echo 'a note on stderr' >&2",
        "for i in 1 2 3; do echo \"count $i\"; sleep 0.1; done",
        "echo 'run {run_id} done'",
    };
    mf_flow *flow = NULL;
    size_t i;
    int rc = mf_flow_new(&flow, "ShellFlow");
    for (i = 0; rc == MF_OK && i < 3; i++)
        rc = mf_flow_add_step(flow, steps[i], 0);
    for (i = 0; rc == MF_OK && i + 1 < 3; i++)
        rc = mf_flow_set_next(flow, steps[i], &steps[i + 1], 1);
    for (i = 0; rc == MF_OK && i < 3; i++)
        rc = mf_flow_set_step_attr(flow, steps[i], "command", commands[i]);
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
            fprintf(stderr, "shell_steps: %s: %s (%s)\n", #call,               \
                    mf_error_last(), mf_strerror(rc));                         \
            goto out;                                                          \
        }                                                                      \
    } while (0)

int main(void)
{
    mf_engine *engine = NULL;
    mf_flow *flow = NULL;
    mf_run *run = NULL;
    mf_task *count = NULL;
    mf_buf log = MF_BUF_INIT;
    mf_start_options opts = MF_START_OPTIONS_INIT;
    struct log_stats stats = { 0 };
    int rc;

    TRY(mf_engine_open(&engine, NULL));
    TRY(build_flow(&flow));

    opts.log_cb = on_log_line;
    opts.log_payload = &stats;
    TRY(mf_run_start(&run, engine, flow, &opts));
    printf("run %s/%s started\n", mf_run_flow(run), mf_run_id(run));
    TRY(mf_run_wait(run));
    printf("%zu log lines streamed\n", stats.lines);

    /* The persisted log of the count task, with a timestamp per line. */
    TRY(open_only_task(&count, engine, run, "count"));
    TRY(mf_task_log_read(count, MF_LOG_STDOUT, MF_LOG_TIMESTAMPS, &log));
    printf("stdout of %s, read back:\n%s\n", mf_task_pathspec(count), log.ptr);
    TRY(mf_task_log_read(count, MF_LOG_STDOUT, 0, &log));
    if (stats.lines != 6 || strcmp(log.ptr, "count 1\ncount 2\ncount 3") != 0) {
        fprintf(stderr, "shell_steps: unexpected logs\n");
        rc = MF_ERROR;
        goto out;
    }
    printf("run succeeded\n");

out:
    mf_buf_dispose(&log);
    mf_task_free(count);
    mf_run_free(run);
    mf_flow_free(flow);
    mf_engine_free(engine);
    return rc == MF_OK ? 0 : 1;
}
