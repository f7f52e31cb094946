/*
 * hello: a linear flow, start -> hello -> end, of in-process C steps.
 *
 * Each step is a C function the local executor calls on a worker thread
 * with a task to fill. Artifacts a step stores are passed on: a linear
 * step's task inherits every artifact of its parent, and can read its
 * parent directly with mf_task_input_open().
 *
 * Runs in any directory: the engine keeps its datastore in ./.metaflow.
 *
 *   cc $(pkg-config --cflags metaflow) hello.c $(pkg-config --libs metaflow)
 */
#include <stdio.h>
#include <string.h>

#include <metaflow.h>

/* What the host hands every step (read-only while the run goes on: steps
 * run on worker threads). */
struct hello_config {
    const char *name;
};

/* The artifact `name` of the task's only parent, into `out`. */
static int read_input(mf_task *task, const char *name, mf_buf *out)
{
    mf_task *parent = NULL;
    mf_artifact *art = NULL;
    int rc = mf_task_input_open(&parent, task, 0);
    if (rc == MF_OK)
        rc = mf_task_artifact(&art, parent, name);
    if (rc == MF_OK)
        rc = mf_artifact_read(art, 0, out);
    mf_artifact_free(art);
    mf_task_free(parent);
    return rc;
}

static int put_text(mf_task *task, const char *name, const char *text)
{
    return mf_task_put(task, name, "str", text, strlen(text), 0);
}

/* A non-zero return fails the attempt; the library call that failed left
 * its message in mf_error_last(), which the runtime keeps as the reason. */
static int step_start(mf_task *task, void *payload)
{
    const struct hello_config *cfg = payload;
    return put_text(task, "name", cfg->name) == MF_OK ? 0 : 1;
}

static int step_hello(mf_task *task, void *payload)
{
    mf_buf name = MF_BUF_INIT;
    char greeting[256];
    int rc;
    (void)payload;
    rc = read_input(task, "name", &name);
    if (rc == MF_OK) {
        snprintf(greeting, sizeof greeting, "hello, %s!", name.ptr);
        rc = put_text(task, "greeting", greeting);
    }
    mf_buf_dispose(&name);
    return rc == MF_OK ? 0 : 1;
}

/* end sees `greeting` from its parent and `name` passed on from start. */
static int step_end(mf_task *task, void *payload)
{
    mf_buf name = MF_BUF_INIT, greeting = MF_BUF_INIT;
    int rc;
    (void)payload;
    rc = read_input(task, "name", &name);
    if (rc == MF_OK)
        rc = read_input(task, "greeting", &greeting);
    if (rc == MF_OK)
        printf("end sees: name = %s, greeting = %s\n", name.ptr, greeting.ptr);
    mf_buf_dispose(&name);
    mf_buf_dispose(&greeting);
    return rc == MF_OK ? 0 : 1;
}

static int build_flow(mf_flow **out)
{
    static const char *const steps[] = { "start", "hello", "end" };
    mf_flow *flow = NULL;
    size_t i;
    int rc = mf_flow_new(&flow, "HelloFlow");
    for (i = 0; rc == MF_OK && i < 3; i++)
        rc = mf_flow_add_step(flow, steps[i], 0);
    for (i = 0; rc == MF_OK && i + 1 < 3; i++)
        rc = mf_flow_set_next(flow, steps[i], &steps[i + 1], 1);
    if (rc == MF_OK)
        rc = mf_flow_validate(flow);
    if (rc != MF_OK) {
        mf_flow_free(flow);
        return rc;
    }
    *out = flow;
    return MF_OK;
}

/* The artifact `name` of task `pathspec` ("Flow/run/step/task"), into `out`. */
static int read_artifact(mf_engine *engine, const char *pathspec, const char *name,
                         mf_buf *out)
{
    mf_task *task = NULL;
    mf_artifact *art = NULL;
    int rc = mf_task_open(&task, engine, pathspec);
    if (rc == MF_OK)
        rc = mf_task_artifact(&art, task, name);
    if (rc == MF_OK)
        rc = mf_artifact_read(art, 0, out);
    mf_artifact_free(art);
    mf_task_free(task);
    return rc;
}

/* Every call is checked; a failure reports the thread's last error, which
 * names what went wrong, and leaves through the one cleanup path. */
#define TRY(call)                                                              \
    do {                                                                       \
        rc = (call);                                                           \
        if (rc != MF_OK) {                                                     \
            fprintf(stderr, "hello: %s: %s (%s)\n", #call, mf_error_last(),    \
                    mf_strerror(rc));                                          \
            goto out;                                                          \
        }                                                                      \
    } while (0)

int main(void)
{
    struct hello_config cfg = { "world" };
    mf_engine *engine = NULL;
    mf_executor *executor = NULL;
    mf_flow *flow = NULL;
    mf_run *run = NULL;
    mf_strlist *ids = NULL;
    mf_buf greeting = MF_BUF_INIT;
    mf_start_options opts = MF_START_OPTIONS_INIT;
    char pathspec[512];
    int rc;

    TRY(mf_engine_open(&engine, NULL));
    TRY(mf_executor_local_new(&executor, engine, NULL));
    TRY(mf_executor_local_set_step(executor, "start", step_start, &cfg));
    TRY(mf_executor_local_set_step(executor, "hello", step_hello, NULL));
    TRY(mf_executor_local_set_step(executor, "end", step_end, NULL));
    TRY(build_flow(&flow));

    opts.executor = executor;
    TRY(mf_run_start(&run, engine, flow, &opts));
    printf("run %s/%s started\n", mf_run_flow(run), mf_run_id(run));
    /* On failure mf_error_last() names the step, task and attempt. */
    TRY(mf_run_wait(run));

    /* Read back what end stored, as any later reader of the run would. */
    TRY(mf_run_tasks(run, "end", &ids));
    if (mf_strlist_count(ids) != 1) {
        fprintf(stderr, "hello: %zu end tasks, expected 1\n", mf_strlist_count(ids));
        rc = MF_ERROR;
        goto out;
    }
    snprintf(pathspec, sizeof pathspec, "%s/%s/end/%s", mf_run_flow(run), mf_run_id(run),
             mf_strlist_get(ids, 0));
    TRY(read_artifact(engine, pathspec, "greeting", &greeting));
    printf("%s: greeting = %s\n", pathspec, greeting.ptr);
    if (strcmp(greeting.ptr, "hello, world!") != 0) {
        fprintf(stderr, "hello: unexpected greeting\n");
        rc = MF_ERROR;
        goto out;
    }
    printf("run succeeded\n");

out:
    /* Runs before their executor, everything before the engine. */
    mf_buf_dispose(&greeting);
    mf_strlist_free(ids);
    mf_run_free(run);
    mf_flow_free(flow);
    mf_executor_free(executor);
    mf_engine_free(engine);
    return rc == MF_OK ? 0 : 1;
}
