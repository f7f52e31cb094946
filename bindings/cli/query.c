/* mfctl: listing commands (flows, runs, steps, tasks, artifacts) and show. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mfctl.h"

static int list_has(const mf_strlist *l, const char *s)
{
    for (size_t i = 0; i < mf_strlist_count(l); i++)
        if (strcmp(mf_strlist_get(l, i), s) == 0)
            return 1;
    return 0;
}

static void put_lines(const mf_strlist *l)
{
    for (size_t i = 0; i < mf_strlist_count(l); i++) {
        mfctl_put_field(stdout, mf_strlist_get(l, i));
        putchar('\n');
    }
}

int mfctl_cmd_flows(mfctl *ctl)
{
    mf_strlist *flows = NULL;
    if (mf_flow_list(&flows, ctl->engine) != MF_OK)
        return mfctl_fail_api("cannot list flows");
    put_lines(flows);
    mf_strlist_free(flows);
    return MFCTL_EXIT_OK;
}

/* One line of `runs`; the run is opened by id. */
static int print_run(mfctl *ctl, const char *flow, const char *id)
{
    mf_run *run = NULL;
    mf_strlist *tags = NULL;
    char created[32];
    if (mf_run_open(&run, ctl->engine, flow, id) != MF_OK)
        return mfctl_fail_api(NULL);
    int status = mf_run_status_get(run);
    if (status < 0 || mf_run_tags(run, &tags) != MF_OK) {
        mf_run_free(run);
        return mfctl_fail_api(NULL);
    }
    mfctl_format_time(mf_run_created_at(run), created, sizeof created);
    printf("%s\t%s\t%s\t", mf_run_id(run), mfctl_run_status_name(status), created);
    mfctl_put_field(stdout, mf_run_user(run));
    for (size_t i = 0; i < mf_strlist_count(tags); i++) {
        putchar('\t');
        mfctl_put_field(stdout, mf_strlist_get(tags, i));
    }
    putchar('\n');
    mf_strlist_free(tags);
    mf_run_free(run);
    return MFCTL_EXIT_OK;
}

int mfctl_cmd_runs(mfctl *ctl)
{
    const char *flow = ctl->args[0];
    mf_strlist *flows = NULL, *ids = NULL;
    int rc = MFCTL_EXIT_OK;
    /* mf_run_list() answers an empty list for an unknown flow; a typo
     * deserves an error. */
    if (mf_flow_list(&flows, ctl->engine) != MF_OK)
        return mfctl_fail_api("cannot list flows");
    if (!list_has(flows, flow)) {
        rc = mfctl_fail("flow '%s' not found in datastore '%s'", flow,
                        mf_engine_root(ctl->engine));
        goto out;
    }
    if (mf_run_list(&ids, ctl->engine, flow, ctl->tags, ctl->ntags,
                    ctl->successful ? MF_LIST_SUCCESSFUL : 0) != MF_OK) {
        rc = mfctl_fail_api(NULL);
        goto out;
    }
    size_t n = mf_strlist_count(ids);
    if (ctl->limit && ctl->limit < n)
        n = (size_t)ctl->limit;
    for (size_t i = 0; i < n && rc == MFCTL_EXIT_OK; i++)
        rc = print_run(ctl, flow, mf_strlist_get(ids, i));
out:
    mf_strlist_free(ids);
    mf_strlist_free(flows);
    return rc;
}

int mfctl_cmd_steps(mfctl *ctl)
{
    mf_run *run = NULL;
    mf_strlist *steps = NULL;
    int rc = mfctl_open_run(ctl, &run);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    if (mf_run_steps(run, &steps) != MF_OK)
        rc = mfctl_fail_api(NULL);
    else
        put_lines(steps);
    mf_strlist_free(steps);
    mf_run_free(run);
    return rc;
}

static int all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Task ids in numeric order (the runtime's ids are integers), others after
 * them by bytes. */
static int cmp_task_id(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int da = all_digits(a), db = all_digits(b);
    if (da != db)
        return db - da;
    if (da) {
        while (*a == '0' && a[1])
            a++;
        while (*b == '0' && b[1])
            b++;
        size_t la = strlen(a), lb = strlen(b);
        if (la != lb)
            return la < lb ? -1 : 1;
    }
    return strcmp(a, b);
}

/* The tasks of one step: pathspec, status and attempt of the latest attempt.
 * mf_run_tasks() lists them in the order they were recorded, which for
 * tasks that ran in parallel is the order they finished: sorting by id
 * makes the listing the same every time. */
static int print_step_tasks(mfctl *ctl, mf_run *run, const char *step)
{
    mf_strlist *list = NULL;
    if (mf_run_tasks(run, step, &list) != MF_OK)
        return mfctl_fail_api(NULL);
    size_t n = mf_strlist_count(list);
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        mf_strlist_free(list);
        return mfctl_fail("out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = mf_strlist_get(list, i);
    qsort(ids, n, sizeof *ids, cmp_task_id);
    int rc = MFCTL_EXIT_OK;
    for (size_t i = 0; i < n && rc == MFCTL_EXIT_OK; i++) {
        const char *id = ids[i];
        size_t len = strlen(mf_run_flow(run)) + strlen(mf_run_id(run)) + strlen(step) +
                     strlen(id) + 4;
        char *spec = malloc(len);
        mf_task *task = NULL;
        if (!spec) {
            rc = mfctl_fail("out of memory");
            break;
        }
        snprintf(spec, len, "%s/%s/%s/%s", mf_run_flow(run), mf_run_id(run), step, id);
        if (mf_task_open(&task, ctl->engine, spec) != MF_OK) {
            rc = mfctl_fail_api(NULL);
        } else {
            printf("%s\t%s\t%" PRIu32 "\n", spec,
                   mfctl_task_status_name(mf_task_status_get(task)), mf_task_attempt(task));
        }
        mf_task_free(task);
        free(spec);
    }
    free(ids);
    mf_strlist_free(list);
    return rc;
}

int mfctl_cmd_tasks(mfctl *ctl)
{
    const mfctl_path *path = &ctl->path;
    mf_run *run = NULL;
    mf_strlist *steps = NULL;
    int rc = mfctl_open_run(ctl, &run);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    if (mf_run_steps(run, &steps) != MF_OK) {
        rc = mfctl_fail_api(NULL);
        goto out;
    }
    if (path->n == 3) {
        /* mf_run_tasks() answers an empty list for a step that never ran. */
        if (!list_has(steps, path->part[2]))
            rc = mfctl_fail("step '%s' not found in run '%s/%s'", path->part[2],
                            mf_run_flow(run), mf_run_id(run));
        else
            rc = print_step_tasks(ctl, run, path->part[2]);
    } else {
        for (size_t i = 0; i < mf_strlist_count(steps) && rc == MFCTL_EXIT_OK; i++)
            rc = print_step_tasks(ctl, run, mf_strlist_get(steps, i));
    }
out:
    mf_strlist_free(steps);
    mf_run_free(run);
    return rc;
}

int mfctl_cmd_artifacts(mfctl *ctl)
{
    mf_task *task = NULL;
    mf_strlist *names = NULL;
    int rc = mfctl_open_task(ctl, &task);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    if (mf_task_artifacts(task, ctl->all ? MF_LIST_PRIVATE : 0, &names) != MF_OK) {
        rc = mfctl_fail_api(NULL);
        goto out;
    }
    for (size_t i = 0; i < mf_strlist_count(names) && rc == MFCTL_EXIT_OK; i++) {
        mf_artifact *a = NULL;
        if (mf_task_artifact(&a, task, mf_strlist_get(names, i)) != MF_OK) {
            rc = mfctl_fail_api(NULL);
            break;
        }
        printf("%s\t%s\t%" PRIu64 "\t%" PRIu32 "\n", mf_artifact_name(a),
               mf_artifact_encoding(a), mf_artifact_size(a), mf_artifact_part_count(a));
        mf_artifact_free(a);
    }
out:
    mf_strlist_free(names);
    mf_task_free(task);
    return rc;
}

/* Multi-line text, each line indented by two spaces. */
static void put_indented(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        printf("  %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

int mfctl_cmd_show(mfctl *ctl)
{
    mf_task *task = NULL;
    mf_buf failure = MF_BUF_INIT;
    int rc = mfctl_open_task(ctl, &task);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    printf("pathspec: %s\n", mf_task_pathspec(task));
    printf("step: %s\n", mf_task_step(task));
    printf("task: %s\n", mf_task_id(task));
    printf("attempt: %" PRIu32 "\n", mf_task_attempt(task));
    printf("status: %s\n", mfctl_task_status_name(mf_task_status_get(task)));
    for (size_t i = 0; i < mf_task_foreach_depth(task); i++) {
        const char *v = mf_task_foreach_value(task, i);
        printf("foreach: %" PRIu32 "/%" PRIu32, mf_task_foreach_index(task, i),
               mf_task_foreach_nsplits(task, i));
        if (v && *v) {
            putchar(' ');
            mfctl_put_field(stdout, v);
        }
        putchar('\n');
    }
    for (size_t i = 0; i < mf_task_input_count(task); i++)
        printf("input: %s\n", mf_task_input(task, i));
    if (mf_task_origin(task))
        printf("origin: %s\n", mf_task_origin(task));
    int frc = mf_task_failure(task, &failure);
    if (frc == MF_OK) {
        fputs("failure:\n", stdout);
        put_indented(failure.ptr ? failure.ptr : "", failure.size);
    } else if (frc != MF_ENOTFOUND) {
        rc = mfctl_fail_api(NULL);
    }
    mf_buf_dispose(&failure);
    mf_task_free(task);
    return rc;
}
