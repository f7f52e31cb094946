/* mfctl: commands that print what tasks stored: logs and artifact bytes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mfctl.h"

/* ---------------------------------------------------------------- logs */

/* "2024-05-01T12:00:00.123456Z", as MF_LOG_TIMESTAMPS starts each line. */
#define TS_LEN 27

/* A cursor over the lines of one timestamped log. */
struct log_cursor {
    const char *p, *end;
    const char *line;  /* current line, NULL at the end */
    size_t len;
    const char *ts;    /* its timestamp (the last seen one for a line without) */
};

static int has_ts(const char *line, size_t len)
{
    return len >= TS_LEN && line[4] == '-' && line[10] == 'T' && line[TS_LEN - 1] == 'Z' &&
           (len == TS_LEN || line[TS_LEN] == ' ');
}

static void cursor_next(struct log_cursor *c)
{
    if (c->p >= c->end) {
        c->line = NULL;
        return;
    }
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    c->line = c->p;
    c->len = nl ? (size_t)(nl - c->p) : (size_t)(c->end - c->p);
    c->p += c->len + (nl ? 1 : 0);
    if (has_ts(c->line, c->len))
        c->ts = c->line;
}

static void cursor_init(struct log_cursor *c, const mf_buf *b)
{
    static const char zero_ts[TS_LEN + 1] = "0000-00-00T00:00:00.000000Z";
    c->p = b->ptr ? b->ptr : "";
    c->end = c->p + b->size;
    c->ts = zero_ts;
    cursor_next(c);
}

static void put_log_line(const struct log_cursor *c, int timestamps)
{
    const char *s = c->line;
    size_t n = c->len;
    if (!timestamps && has_ts(s, n)) {
        size_t skip = n > TS_LEN ? TS_LEN + 1 : TS_LEN;
        s += skip;
        n -= skip;
    }
    fwrite(s, 1, n, stdout);
    putchar('\n');
}

/* Both streams in time order; on equal times stdout first. */
static void put_merged(const mf_buf *out, const mf_buf *err, int timestamps)
{
    struct log_cursor o, e;
    cursor_init(&o, out);
    cursor_init(&e, err);
    while (o.line || e.line) {
        struct log_cursor *c;
        if (!e.line)
            c = &o;
        else if (!o.line)
            c = &e;
        else
            c = memcmp(e.ts, o.ts, TS_LEN) < 0 ? &e : &o;
        put_log_line(c, timestamps);
        cursor_next(c);
    }
}

int mfctl_cmd_logs(mfctl *ctl)
{
    mf_task *task = NULL;
    mf_buf out = MF_BUF_INIT, err = MF_BUF_INIT;
    int rc = mfctl_open_task(ctl, &task);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    if (ctl->streams == 3) {
        /* Merging needs the times whether or not they are shown. */
        if (mf_task_log_read(task, MF_LOG_STDOUT, MF_LOG_TIMESTAMPS, &out) != MF_OK ||
            mf_task_log_read(task, MF_LOG_STDERR, MF_LOG_TIMESTAMPS, &err) != MF_OK)
            rc = mfctl_fail_api(NULL);
        else
            put_merged(&out, &err, ctl->timestamps);
    } else {
        int32_t stream = ctl->streams == 2 ? MF_LOG_STDERR : MF_LOG_STDOUT;
        if (mf_task_log_read(task, stream, ctl->timestamps ? MF_LOG_TIMESTAMPS : 0,
                             &out) != MF_OK) {
            rc = mfctl_fail_api(NULL);
        } else if (out.size > 0) {
            fwrite(out.ptr, 1, out.size, stdout);
            if (out.ptr[out.size - 1] != '\n')
                putchar('\n');
        }
    }
    mf_buf_dispose(&out);
    mf_buf_dispose(&err);
    mf_task_free(task);
    return rc;
}

/* ---------------------------------------------------------------- dump */

/* Parts up to this size are read whole, which verifies their checksums;
 * larger ones are streamed in STREAM_STEP ranges so memory stays bounded
 * (ranged reads of raw blobs are not checksummed: docs/mfctl.md). */
#define READ_WHOLE_MAX (16u << 20)
#define STREAM_STEP (4u << 20)

static int copy_part(mf_artifact *a, uint32_t part, int fd, const char *dest)
{
    mf_buf b = MF_BUF_INIT;
    uint64_t size = mf_artifact_part_size(a, part);
    int rc = MFCTL_EXIT_OK;
    if (size <= READ_WHOLE_MAX) {
        if (mf_artifact_read(a, part, &b) != MF_OK)
            rc = mfctl_fail_api(NULL);
        else if (b.size && mfctl_write_all(fd, b.ptr, b.size) != 0)
            rc = mfctl_fail("cannot write to %s: %s", dest, strerror(errno));
    } else {
        for (uint64_t off = 0; off < size && rc == MFCTL_EXIT_OK; off += b.size) {
            if (mf_artifact_read_range(a, part, off, STREAM_STEP, &b) != MF_OK)
                rc = mfctl_fail_api(NULL);
            else if (b.size == 0)
                rc = mfctl_fail("artifact '%s': part %" PRIu32 " ended at byte %" PRIu64
                                " of %" PRIu64, mf_artifact_name(a), part, off, size);
            else if (mfctl_write_all(fd, b.ptr, b.size) != 0)
                rc = mfctl_fail("cannot write to %s: %s", dest, strerror(errno));
        }
    }
    mf_buf_dispose(&b);
    return rc;
}

/* Into a temporary file next to `path`, renamed over it once complete:
 * a failed dump never leaves a truncated file behind. */
static int dump_to_file(mf_artifact *a, uint32_t part, const char *path)
{
    size_t len = strlen(path) + 8;
    char *tmp = malloc(len);
    char *quoted = malloc(len + 8);
    int rc = MFCTL_EXIT_OK;
    if (!tmp || !quoted) {
        free(tmp);
        free(quoted);
        return mfctl_fail("out of memory");
    }
    snprintf(tmp, len, "%s.XXXXXX", path);
    snprintf(quoted, len + 8, "'%s'", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = mfctl_fail("cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    /* mkstemp makes 0600; a dump gets the mode any new file would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0)
        rc = mfctl_fail("cannot set the mode of '%s': %s", tmp, strerror(errno));
    if (rc == MFCTL_EXIT_OK)
        rc = copy_part(a, part, fd, quoted);
    if (close(fd) != 0 && rc == MFCTL_EXIT_OK)
        rc = mfctl_fail("cannot write to '%s': %s", path, strerror(errno));
    if (rc == MFCTL_EXIT_OK && rename(tmp, path) != 0)
        rc = mfctl_fail("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (rc != MFCTL_EXIT_OK)
        unlink(tmp);
out:
    free(tmp);
    free(quoted);
    return rc;
}

int mfctl_cmd_dump(mfctl *ctl)
{
    mf_task *task = NULL;
    mf_artifact *a = NULL;
    const char *name = ctl->args[1];
    int rc = mfctl_open_task(ctl, &task);
    if (rc != MFCTL_EXIT_OK)
        return rc;
    if (mf_task_artifact(&a, task, name) != MF_OK) {
        rc = mfctl_fail_api(NULL);
        goto out;
    }
    uint32_t nparts = mf_artifact_part_count(a);
    if (ctl->part >= nparts) {
        rc = mfctl_fail("artifact '%s' of task '%s' has %" PRIu32 " part%s: no part %" PRIu32,
                        name, mf_task_pathspec(task), nparts, nparts == 1 ? "" : "s",
                        ctl->part);
        goto out;
    }
    if (ctl->output && strcmp(ctl->output, "-") != 0) {
        rc = dump_to_file(a, ctl->part, ctl->output);
    } else {
        /* Anything already buffered must go first. */
        fflush(stdout);
        rc = copy_part(a, ctl->part, STDOUT_FILENO, "standard output");
    }
out:
    mf_artifact_free(a);
    mf_task_free(task);
    return rc;
}
