/*
 * retry_catch: Metaflow's @retry and @catch as step attributes.
 *
 *   start -> flaky -> doomed -> end
 *
 * `flaky` fails on its first attempt and succeeds on the second: the
 * attribute "retry.times" = "2" allows two retries after the first try,
 * "retry.delay_seconds" waits between them. `doomed` always fails, but
 * "catch.var" = "error" turns its last failure into a successful attempt
 * that stores a JSON artifact `error` describing what went wrong, and the
 * run goes on. mf_start_options.event_cb reports each failure, retry and
 * catch as it happens.
 *
 * Both are in-process C steps: a non-zero return fails the attempt with
 * that exit code (202 means "do not retry").
 *
 *   cc $(pkg-config --cflags metaflow) retry_catch.c $(pkg-config --libs metaflow)
 */
#include <stdio.h>
#include <string.h>

#include <metaflow.h>

static int put_text(mf_task *task, const char *name, const char *text)
{
    return mf_task_put(task, name, "str", text, strlen(text), 0);
}

static int step_start(mf_task *task, void *payload)
{
    (void)payload;
    return put_text(task, "status", "started") == MF_OK ? 0 : 1;
}

/* The attempt number is 0 on the first try. */
static int step_flaky(mf_task *task, void *payload)
{
    static const char msg[] = "transient failure, try again\n";
    (void)payload;
    if (mf_task_attempt(task) == 0) {
        /* An in-process step's stdout is the host's: the task log is
         * written explicitly. */
        mf_task_log_write(task, MF_LOG_STDERR, msg, sizeof msg - 1);
        return 1;
    }
    return put_text(task, "status", "flaky worked on a retry") == MF_OK ? 0 : 1;
}

static int step_doomed(mf_task *task, void *payload)
{
    static const char msg[] = "the disk is on fire\n";
    (void)payload;
    mf_task_log_write(task, MF_LOG_STDERR, msg, sizeof msg - 1);
    return 3;
}

static int step_end(mf_task *task, void *payload)
{
    (void)task;
    (void)payload;
    return 0;
}

static void on_event(const mf_run_event *ev, void *payload)
{
    (void)payload;
    switch (ev->type) {
    case MF_EVENT_TASK_FAILED:
        printf("event: %s\n", ev->message ? ev->message : "a task failed");
        break;
    case MF_EVENT_TASK_RETRYING:
        printf("event: %s/%s retrying as attempt %u\n", ev->step, ev->task_id,
               (unsigned)ev->attempt);
        break;
    case MF_EVENT_TASK_CAUGHT:
        printf("event: %s/%s failure caught\n", ev->step, ev->task_id);
        break;
    case MF_EVENT_TASK_SUCCEEDED:
        printf("event: %s/%s attempt %u succeeded\n", ev->step, ev->task_id,
               (unsigned)ev->attempt);
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int build_flow(mf_flow **out)
{
    static const char *const steps[] = { "start", "flaky", "doomed", "end" };
    mf_flow *flow = NULL;
    size_t i;
    int rc = mf_flow_new(&flow, "RetryCatchFlow");
    for (i = 0; rc == MF_OK && i < 4; i++)
        rc = mf_flow_add_step(flow, steps[i], 0);
    for (i = 0; rc == MF_OK && i + 1 < 4; i++)
        rc = mf_flow_set_next(flow, steps[i], &steps[i + 1], 1);
    if (rc == MF_OK)
        rc = mf_flow_set_step_attr(flow, "flaky", "retry.times", "2");
    if (rc == MF_OK)
        rc = mf_flow_set_step_attr(flow, "flaky", "retry.delay_seconds", "0.1");
    if (rc == MF_OK)
        rc = mf_flow_set_step_attr(flow, "doomed", "catch.var", "error");
    if (rc == MF_OK)
        rc = mf_flow_validate(flow);
    if (rc != MF_OK) {
        mf_flow_free(flow);
        return rc;
    }
    *out = flow;
    return MF_OK;
}

/* Open the only task of `step` in `run` (its latest attempt). */
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

static int read_artifact(mf_task *task, const char *name, mf_buf *out)
{
    mf_artifact *art = NULL;
    int rc = mf_task_artifact(&art, task, name);
    if (rc == MF_OK)
        rc = mf_artifact_read(art, 0, out);
    mf_artifact_free(art);
    return rc;
}

#define TRY(call)                                                              \
    do {                                                                       \
        rc = (call);                                                           \
        if (rc != MF_OK) {                                                     \
            fprintf(stderr, "retry_catch: %s: %s (%s)\n", #call,               \
                    mf_error_last(), mf_strerror(rc));                         \
            goto out;                                                          \
        }                                                                      \
    } while (0)

int main(void)
{
    mf_engine *engine = NULL;
    mf_executor *executor = NULL;
    mf_flow *flow = NULL;
    mf_run *run = NULL;
    mf_task *flaky = NULL, *end = NULL, *doomed = NULL, *failed = NULL;
    mf_buf status = MF_BUF_INIT, error = MF_BUF_INIT, log = MF_BUF_INIT;
    char pathspec[512];
    mf_start_options opts = MF_START_OPTIONS_INIT;
    int rc;

    TRY(mf_engine_open(&engine, NULL));
    TRY(mf_executor_local_new(&executor, engine, NULL));
    TRY(mf_executor_local_set_step(executor, "start", step_start, NULL));
    TRY(mf_executor_local_set_step(executor, "flaky", step_flaky, NULL));
    TRY(mf_executor_local_set_step(executor, "doomed", step_doomed, NULL));
    TRY(mf_executor_local_set_step(executor, "end", step_end, NULL));
    TRY(build_flow(&flow));

    opts.executor = executor;
    opts.event_cb = on_event;
    TRY(mf_run_start(&run, engine, flow, &opts));
    printf("run %s/%s started\n", mf_run_flow(run), mf_run_id(run));
    TRY(mf_run_wait(run));

    TRY(open_only_task(&flaky, engine, run, "flaky"));
    TRY(open_only_task(&end, engine, run, "end"));
    /* end inherits both: `status` from flaky, `error` from doomed. */
    TRY(read_artifact(end, "status", &status));
    TRY(read_artifact(end, "error", &error));
    printf("flaky succeeded on attempt %u: status = %s\n", (unsigned)mf_task_attempt(flaky),
           status.ptr);
    printf("caught error = %s\n", error.ptr);
    /* Every attempt is kept: the failed one, with the log it wrote. */
    TRY(open_only_task(&doomed, engine, run, "doomed"));
    snprintf(pathspec, sizeof pathspec, "%s/0", mf_task_pathspec(doomed));
    TRY(mf_task_open(&failed, engine, pathspec));
    TRY(mf_task_log_read(failed, MF_LOG_STDERR, 0, &log));
    printf("%s (status %s) stderr: %s\n", pathspec,
           mf_task_status_get(failed) == MF_TASK_FAILED ? "failed" : "not failed", log.ptr);
    if (mf_task_attempt(flaky) != 1 || mf_task_status_get(failed) != MF_TASK_FAILED ||
        strcmp(log.ptr, "the disk is on fire") != 0 ||
        strstr(error.ptr, "\"step\":\"doomed\"") == NULL ||
        strstr(error.ptr, "\"exit_code\":3") == NULL) {
        fprintf(stderr, "retry_catch: unexpected result\n");
        rc = MF_ERROR;
        goto out;
    }
    printf("run succeeded\n");

out:
    mf_buf_dispose(&status);
    mf_buf_dispose(&error);
    mf_buf_dispose(&log);
    mf_task_free(failed);
    mf_task_free(doomed);
    mf_task_free(flaky);
    mf_task_free(end);
    mf_run_free(run);
    mf_flow_free(flow);
    mf_executor_free(executor);
    mf_engine_free(engine);
    return rc == MF_OK ? 0 : 1;
}
