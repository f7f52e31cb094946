/* mfctl: errors, pathspecs and output helpers shared by the commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mfctl.h"

int mfctl_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("mfctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MFCTL_EXIT_FAIL;
}

int mfctl_fail_api(const char *context)
{
    if (context)
        fprintf(stderr, "mfctl: %s: %s\n", context, mf_error_last());
    else
        fprintf(stderr, "mfctl: %s\n", mf_error_last());
    return MFCTL_EXIT_FAIL;
}

/* ----------------------------------------------------------- pathspecs */

/* "FLOW/RUN[/STEP]" for 2..3 parts. */
static void path_shape(char *out, size_t size, size_t min, size_t max)
{
    static const char *const names[MFCTL_PATH_MAX_PARTS] = {
        "FLOW", "RUN", "STEP", "TASK", "ATTEMPT"
    };
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < max && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s%s", i >= min ? "[" : "",
                                i ? "/" : "", names[i]);
    for (size_t i = min; i < max && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "]");
}

int mfctl_path_parse(const mfctl *ctl, mfctl_path *path, const char *spec,
                     size_t min, size_t max)
{
    char shape[64];
    memset(path, 0, sizeof *path);
    if (!(path->buf = strdup(spec)))
        return mfctl_fail("out of memory");
    char *p = path->buf;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p || path->n == MFCTL_PATH_MAX_PARTS)
            break;
        path->part[path->n++] = p;
        if (!slash) {
            if (path->n >= min && path->n <= max)
                return MFCTL_EXIT_OK;
            break;
        }
        p = slash + 1;
    }
    mfctl_path_free(path);
    path_shape(shape, sizeof shape, min, max);
    return mfctl_usage_error(ctl, "pathspec '%s' is not %s", spec, shape);
}

void mfctl_path_free(mfctl_path *path)
{
    free(path->buf);
    memset(path, 0, sizeof *path);
}

int mfctl_open_run(mfctl *ctl, mf_run **out)
{
    if (mf_run_open(out, ctl->engine, ctl->path.part[0], ctl->path.part[1]) != MF_OK)
        return mfctl_fail_api(NULL);
    return MFCTL_EXIT_OK;
}

int mfctl_open_task(mfctl *ctl, mf_task **out)
{
    const mfctl_path *path = &ctl->path;
    mf_run *run = NULL;
    char *resolved = NULL;
    /* Through the run, so that "latest" works and a missing run is named
     * as such rather than as a missing task. */
    int rc = mfctl_open_run(ctl, &run);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    size_t len = strlen(ctl->args[0]) + strlen(mf_run_id(run)) + 8;
    if (!(resolved = malloc(len))) {
        rc = mfctl_fail("out of memory");
        goto out;
    }
    snprintf(resolved, len, "%s/%s/%s/%s%s%s", path->part[0], mf_run_id(run), path->part[2],
             path->part[3], path->n == 5 ? "/" : "", path->n == 5 ? path->part[4] : "");
    if (mf_task_open(out, ctl->engine, resolved) != MF_OK)
        rc = mfctl_fail_api(NULL);
out:
    free(resolved);
    mf_run_free(run);
    return rc;
}

/* -------------------------------------------------------------- output */

const char *mfctl_run_status_name(int status)
{
    switch (status) {
    case MF_RUN_RUNNING: return "running";
    case MF_RUN_SUCCEEDED: return "succeeded";
    case MF_RUN_FAILED: return "failed";
    case MF_RUN_CRASHED: return "crashed";
    default: return "unknown";
    }
}

const char *mfctl_task_status_name(int status)
{
    switch (status) {
    case MF_TASK_RUNNING: return "running";
    case MF_TASK_SUCCEEDED: return "succeeded";
    case MF_TASK_FAILED: return "failed";
    default: return "unknown";
    }
}

void mfctl_format_time(int64_t us, char *out, size_t size)
{
    /* Floor division: times before 1970 still round down. */
    time_t secs = (time_t)(us / 1000000 - (us % 1000000 < 0));
    struct tm tm;
    if (us == 0 || !gmtime_r(&secs, &tm) ||
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "-");
}

void mfctl_put_field(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
    }
}

int mfctl_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
