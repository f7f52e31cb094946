/* The task side of the runtime: what a task tells the scheduler (foreach
 * count, switch case, failure), its inputs, its logs, and opening a task
 * from the environment the runtime gives a task process. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "api.h"
#include "core/mp.h"

/* ------------------------------------------------------------ extra map */

int mf__task_extra_encode(const mf__task_extra *x, mf_buf *out)
{
    uint32_t n = (x->has_foreach_count ? 1 : 0) + (x->nforeach_values ? 1 : 0) +
                 (x->switch_case ? 1 : 0) + (x->failure ? 1 : 0) + (x->has_exit ? 2 : 0) +
                 (x->origin ? 1 : 0) + (x->origin_run_id ? 1 : 0) + (x->caught ? 1 : 0);
    mf__buf_clear(out);
    if (n == 0)
        return MF_OK;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mf__mp_buf_write);
    /* Fixed key order: equal tasks, equal bytes. */
    int e = msgpack_pack_map(&pk, n);
    if (!e && x->caught)
        e = mf__mp_pack_cstr(&pk, "caught") || msgpack_pack_true(&pk);
    if (!e && x->has_exit)
        e = mf__mp_pack_cstr(&pk, "exit_code") || msgpack_pack_int32(&pk, x->exit_code) ||
            mf__mp_pack_cstr(&pk, "signal") || msgpack_pack_int32(&pk, x->signal);
    if (!e && x->failure)
        e = mf__mp_pack_cstr(&pk, "failure") || mf__mp_pack_cstr(&pk, x->failure);
    if (!e && x->has_foreach_count)
        e = mf__mp_pack_cstr(&pk, "foreach_count") || msgpack_pack_uint64(&pk, x->foreach_count);
    if (!e && x->nforeach_values)
        e = mf__mp_pack_cstr(&pk, "foreach_values") ||
            mf__mp_pack_strv(&pk, x->foreach_values, x->nforeach_values);
    if (!e && x->origin)
        e = mf__mp_pack_cstr(&pk, "origin") || mf__mp_pack_cstr(&pk, x->origin);
    if (!e && x->origin_run_id)
        e = mf__mp_pack_cstr(&pk, "origin_run_id") || mf__mp_pack_cstr(&pk, x->origin_run_id);
    if (!e && x->switch_case)
        e = mf__mp_pack_cstr(&pk, "switch_case") || mf__mp_pack_cstr(&pk, x->switch_case);
    return e ? mf__error_oom() : MF_OK;
}

void mf__task_extra_clear(mf__task_extra *x)
{
    mf__strvec_free(x->foreach_values, x->nforeach_values);
    free(x->switch_case);
    free(x->failure);
    free(x->origin);
    free(x->origin_run_id);
    memset(x, 0, sizeof *x);
}

static int opt_str(const msgpack_object *root, const char *key, char **out, const char *what)
{
    const msgpack_object *o = mf__mp_get(root, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return MF_OK;
    if (!mf__mp_is_str(o))
        return mf__error_set(MF_ECORRUPT, "%s: '%s' is not a string", what, key);
    *out = mf__mp_strdup(o);
    return *out ? MF_OK : mf__error_oom();
}

int mf__task_extra_decode(mf__task_extra *x, const mf_buf *extra, const char *what)
{
    memset(x, 0, sizeof *x);
    if (!extra->size)
        return MF_OK;
    msgpack_unpacked u;
    int rc = mf__mp_decode(extra->ptr, extra->size, what, &u);
    if (rc)
        return rc;
    const msgpack_object *root = &u.data, *o;
    int64_t v;
    if ((o = mf__mp_get(root, "caught")) && !mf__mp_bool(o, &x->caught))
        rc = mf__error_set(MF_ECORRUPT, "%s: 'caught' is not a boolean", what);
    if (!rc && (o = mf__mp_get(root, "exit_code"))) {
        if (!mf__mp_int(o, &v) || v < INT32_MIN || v > INT32_MAX)
            rc = mf__error_set(MF_ECORRUPT, "%s: bad 'exit_code'", what);
        x->exit_code = (int32_t)v;
        x->has_exit = true;
    }
    if (!rc && (o = mf__mp_get(root, "signal"))) {
        if (!mf__mp_int(o, &v) || v < 0 || v > 255)
            rc = mf__error_set(MF_ECORRUPT, "%s: bad 'signal'", what);
        x->signal = (int32_t)v;
    }
    if (!rc && (o = mf__mp_get(root, "foreach_count"))) {
        if (!mf__mp_uint(o, &x->foreach_count))
            rc = mf__error_set(MF_ECORRUPT, "%s: bad 'foreach_count'", what);
        x->has_foreach_count = true;
    }
    if (!rc && (o = mf__mp_get(root, "foreach_values"))) {
        if (o->type != MSGPACK_OBJECT_ARRAY) {
            rc = mf__error_set(MF_ECORRUPT, "%s: 'foreach_values' is not an array", what);
        } else if (o->via.array.size) {
            x->foreach_values = calloc(o->via.array.size, sizeof *x->foreach_values);
            if (!x->foreach_values)
                rc = mf__error_oom();
            for (uint32_t i = 0; !rc && i < o->via.array.size; i++) {
                if (!(x->foreach_values[i] = mf__mp_strdup(&o->via.array.ptr[i])))
                    rc = mf__error_set(MF_ECORRUPT, "%s: foreach value %u is not a string",
                                       what, i);
                else
                    x->nforeach_values = i + 1;
            }
        }
    }
    if (!rc)
        rc = opt_str(root, "failure", &x->failure, what);
    if (!rc)
        rc = opt_str(root, "origin", &x->origin, what);
    if (!rc)
        rc = opt_str(root, "origin_run_id", &x->origin_run_id, what);
    if (!rc)
        rc = opt_str(root, "switch_case", &x->switch_case, what);
    msgpack_unpacked_destroy(&u);
    if (rc)
        mf__task_extra_clear(x);
    return rc;
}

/* ------------------------------------------------------------ setters */

static int check_writable(const mf_task *t, const char *op)
{
    if (!t)
        return mf__error_set(MF_EINVAL, "%s: task is NULL", op);
    if (!t->writable)
        return mf__error_set(MF_ESTATE, "task '%s' is not writable: cannot %s", t->pathspec, op);
    return MF_OK;
}

/* A value's text cut to 64 bytes on a UTF-8 boundary. */
static char *short_text(const char *s)
{
    size_t n = strlen(s);
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (!d) {
        mf__error_oom();
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

MF_EXTERN(int) mf_task_set_foreach(mf_task *t, uint64_t count, const char *const *values)
{
    int rc = check_writable(t, "set its foreach count");
    if (rc)
        return rc;
    char **v = NULL;
    if (values && count) {
        if (count > (1u << 24))
            return mf__error_set(MF_EINVAL, "task '%s': %llu foreach values is too many to keep",
                                 t->pathspec, (unsigned long long)count);
        v = calloc((size_t)count, sizeof *v);
        if (!v)
            return mf__error_oom();
        for (size_t i = 0; i < count; i++)
            if (!(v[i] = short_text(values[i] ? values[i] : ""))) {
                mf__strvec_free(v, i);
                return MF_ENOMEM;
            }
    }
    mf__strvec_free(t->x.foreach_values, t->x.nforeach_values);
    t->x.foreach_values = v;
    t->x.nforeach_values = v ? (size_t)count : 0;
    t->x.foreach_count = count;
    t->x.has_foreach_count = true;
    return MF_OK;
}

MF_EXTERN(int) mf_task_set_switch(mf_task *t, const char *case_value)
{
    int rc = check_writable(t, "set its switch case");
    if (rc)
        return rc;
    if (!case_value)
        return mf__error_set(MF_EINVAL, "task '%s': switch case is NULL", t->pathspec);
    char *d = mf__strdup(case_value);
    if (!d)
        return MF_ENOMEM;
    free(t->x.switch_case);
    t->x.switch_case = d;
    return MF_OK;
}

/* ------------------------------------------------------------ inputs */

MF_EXTERN(size_t) mf_task_input_count(const mf_task *t) { return t ? t->man.ninputs : 0; }

MF_EXTERN(const char *) mf_task_input(const mf_task *t, size_t i)
{
    return t && i < t->man.ninputs ? t->man.input_paths[i] : NULL;
}

MF_EXTERN(int) mf_task_input_open(mf_task **out, mf_task *t, size_t i)
{
    if (!out || !t)
        return mf__error_set(MF_EINVAL, "mf_task_input_open: NULL argument");
    *out = NULL;
    if (i >= t->man.ninputs)
        return mf__error_set(MF_ERANGE, "task '%s' has %zu inputs, not %zu", t->pathspec,
                             t->man.ninputs, i + 1);
    mf_buf p = MF_BUF_INIT;
    int rc = mf__buf_printf(&p, "%s/%s", t->man.flow, t->man.input_paths[i]);
    if (!rc)
        rc = mf_task_open(out, t->engine, p.ptr);
    mf_buf_dispose(&p);
    return rc;
}

MF_EXTERN(size_t) mf_task_foreach_depth(const mf_task *t) { return t ? t->man.foreach_depth : 0; }

MF_EXTERN(uint32_t) mf_task_foreach_index(const mf_task *t, size_t level)
{
    return t && level < t->man.foreach_depth ? t->man.foreach_index[level] : 0;
}

MF_EXTERN(uint32_t) mf_task_foreach_nsplits(const mf_task *t, size_t level)
{
    return t && level < t->man.foreach_depth ? t->man.foreach_nsplits[level] : 0;
}

MF_EXTERN(const char *) mf_task_foreach_value(const mf_task *t, size_t level)
{
    return t && level < t->man.foreach_depth && t->man.foreach_value ? t->man.foreach_value[level]
                                                                      : NULL;
}

MF_EXTERN(int) mf_task_fail(mf_task *t, const char *text)
{
    int rc = check_writable(t, "fail");
    if (rc)
        return rc;
    if (!text)
        return mf__error_set(MF_EINVAL, "task '%s': failure text is NULL", t->pathspec);
    char *d = mf__strdup(text);
    if (!d)
        return MF_ENOMEM;
    free(t->x.failure);
    t->x.failure = d;
    /* A failed attempt's artifacts are not part of the result. */
    mf__task_drop_artifacts(t);
    return mf__task_commit_ex(t, MF_TASK_FAILED, t->commit_flags);
}

MF_EXTERN(int) mf_task_failure(const mf_task *t, mf_buf *out)
{
    if (!t || !out)
        return mf__error_set(MF_EINVAL, "mf_task_failure: NULL argument");
    if (!t->x.failure)
        return mf__error_set(MF_ENOTFOUND, "task '%s' has no failure recorded", t->pathspec);
    return mf__buf_set(out, t->x.failure, strlen(t->x.failure));
}

MF_EXTERN(const char *) mf_task_origin(const mf_task *t) { return t ? t->x.origin : NULL; }

/* ------------------------------------------------------------ logs */

static const char log_magic[8] = { 'M', 'F', 'L', 'O', 'G', 1, 0, 0 };
#define LOG_MAX_RAW ((uint64_t)1 << 30)

static const char *stream_name(int32_t s)
{
    return s == MF_LOG_STDOUT ? "stdout" : s == MF_LOG_STDERR ? "stderr" : NULL;
}

int mf__log_key(const char *flow, const char *run_id, const char *step, const char *task_id,
                uint32_t attempt, int32_t stream, mf_buf *out)
{
    const char *sn = stream_name(stream);
    if (!sn)
        return mf__error_set(MF_EINVAL, "log stream %d is not stdout (1) or stderr (2)",
                             (int)stream);
    mf__buf_clear(out);
    return mf__buf_printf(out, "%s/%s/%s/%s/%u.%s.log", flow, run_id, step, task_id, attempt, sn);
}

int mf__log_append(mf_buf *log, int64_t us, const char *text, size_t len)
{
    char ts[24];
    int n = snprintf(ts, sizeof ts, "%lld ", (long long)us);
    int rc = mf__buf_put(log, ts, (size_t)n);
    if (!rc && len)
        rc = mf__buf_put(log, text, len);
    if (!rc)
        rc = mf__buf_put(log, "\n", 1);
    return rc;
}

int mf__log_tail(const mf_buf *log, int lines, mf_buf *out)
{
    if (!log->size)
        return MF_OK;
    const char *start = log->ptr, *end = log->ptr + log->size, *p = end;
    int seen = 0;
    while (p > start && seen <= lines) {
        p--;
        if (*p == '\n' && p != end - 1)
            seen++;
    }
    if (seen > lines)
        p++;
    int rc = MF_OK;
    while (!rc && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(le - p));
        const char *text = sp ? sp + 1 : p;
        rc = mf__buf_puts(out, "\n    ");
        if (!rc)
            rc = mf__buf_put(out, text, (size_t)(le - text));
        p = nl ? nl + 1 : end;
    }
    return rc;
}

int mf__log_note_dropped(mf_buf *log, uint64_t dropped, uint64_t cap)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "[libmetaflow: %llu bytes of output dropped: the log reached its cap of "
                     "%llu bytes]",
                     (unsigned long long)dropped, (unsigned long long)cap);
    return mf__log_append(log, mf__now_us(), msg, (size_t)n);
}

int mf__log_persist(mf_engine *e, const char *flow, const char *run_id, const char *step,
                    const char *task_id, uint32_t attempt, int32_t stream, const void *lines,
                    size_t len, uint32_t ds_flags)
{
    mf_buf key = MF_BUF_INIT, z = MF_BUF_INIT;
    int rc = mf__log_key(flow, run_id, step, task_id, attempt, stream, &key);
    size_t bound = ZSTD_compressBound(len);
    if (!rc)
        rc = mf__buf_grow(&z, sizeof log_magic + bound);
    if (!rc) {
        memcpy(z.ptr, log_magic, sizeof log_magic);
        size_t n = ZSTD_compress(z.ptr + sizeof log_magic, bound, lines, len, 3);
        if (ZSTD_isError(n))
            rc = mf__error_set(MF_ERROR, "compressing the log of '%s': %s", key.ptr,
                               ZSTD_getErrorName(n));
        else
            z.size = sizeof log_magic + n;
    }
    if (!rc) {
        mf_ds_iovec iov = { z.ptr, z.size };
        rc = e->ds->put(e->ds, key.ptr, &iov, 1, ds_flags & MF_DS_PUT_DEFER_SYNC);
        if (rc)
            mf__error_wrap("writing log '%s'", key.ptr);
    }
    mf_buf_dispose(&key);
    mf_buf_dispose(&z);
    return rc;
}

MF_EXTERN(int) mf_task_log_write(mf_task *t, int32_t stream, const char *text, size_t len)
{
    int rc = check_writable(t, "write its log");
    if (rc)
        return rc;
    if (!stream_name(stream))
        return mf__error_set(MF_EINVAL, "log stream %d is not stdout (1) or stderr (2)",
                             (int)stream);
    if (!text && len)
        return mf__error_set(MF_EINVAL, "task '%s': log text is NULL", t->pathspec);
    mf_buf *log = &t->log[stream - 1];
    int64_t now = mf__now_us();
    /* One entry per line; a trailing newline ends the last line. */
    size_t i = 0;
    while (i < len || (i == 0 && len == 0)) {
        const char *nl = len ? memchr(text + i, '\n', len - i) : NULL;
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        if (t->log_cap && log->size + n + 22 > t->log_cap)
            t->log_dropped[stream - 1] += n + 1;
        else if ((rc = mf__log_append(log, now, text + i, n)) != MF_OK)
            return rc;
        i += n + 1;
        if (len == 0)
            break;
    }
    return MF_OK;
}

/* Lines "<us> <text>" to "<text>" or "<ISO time> <text>". */
static int log_render(const char *p, size_t len, uint32_t flags, mf_buf *out)
{
    mf__buf_clear(out);
    if (!p || !len)
        return mf__buf_set(out, "", 0);
    const char *end = p + len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(le - p));
        const char *text = sp ? sp + 1 : p;
        int rc = MF_OK;
        if (!first)
            rc = mf__buf_put(out, "\n", 1);
        first = false;
        if (!rc && (flags & MF_LOG_TIMESTAMPS) && sp) {
            long long us = strtoll(p, NULL, 10);
            time_t sec = (time_t)(us / 1000000);
            struct tm tm;
            gmtime_r(&sec, &tm);
            char ts[48];
            size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(ts + n, sizeof ts - n, ".%06lldZ ", us % 1000000);
            rc = mf__buf_puts(out, ts);
        }
        if (!rc)
            rc = mf__buf_put(out, text, (size_t)(le - text));
        if (rc)
            return rc;
        p = nl ? nl + 1 : end;
    }
    if (!out->ptr)
        return mf__buf_set(out, "", 0);
    return MF_OK;
}

MF_EXTERN(int) mf_task_log_read(mf_task *t, int32_t stream, uint32_t flags, mf_buf *out)
{
    if (!t || !out)
        return mf__error_set(MF_EINVAL, "mf_task_log_read: NULL argument");
    if (t->writable) /* still being written: what it has so far */
        return stream_name(stream) ? log_render(t->log[stream - 1].ptr, t->log[stream - 1].size,
                                                flags, out)
                                   : mf__log_key("", "", "", "", 0, stream, out);
    mf_buf key = MF_BUF_INIT, z = MF_BUF_INIT, raw = MF_BUF_INIT;
    mf_engine *e = t->engine;
    int rc = mf__log_key(t->man.flow, t->man.run_id, t->man.step, t->man.task_id,
                         t->man.attempt, stream, &key);
    if (!rc) {
        rc = e->ds->get(e->ds, key.ptr, 0, MF_DS_TO_END, &z);
        if (rc == MF_ENOTFOUND && t->x.origin) {
            /* A task cloned by resume: its log is its origin's. */
            mf_buf ps = MF_BUF_INIT;
            mf_task *o = NULL;
            mf_error_clear();
            rc = mf__buf_printf(&ps, "%s/%s", t->man.flow, t->x.origin);
            if (!rc)
                rc = mf_task_open(&o, e, ps.ptr);
            if (!rc)
                rc = mf_task_log_read(o, stream, flags, out);
            mf_task_free(o);
            mf_buf_dispose(&ps);
            mf_buf_dispose(&key);
            return rc;
        }
        if (rc == MF_ENOTFOUND) {
            mf_error_clear();
            rc = MF_OK;
            z.size = 0;
            mf__buf_clear(&z);
        }
    }
    if (!rc && z.size) {
        if (z.size < sizeof log_magic || memcmp(z.ptr, log_magic, sizeof log_magic) != 0) {
            rc = mf__error_set(MF_ECORRUPT, "log '%s' is damaged (bad header)", key.ptr);
        } else {
            const char *zp = z.ptr + sizeof log_magic;
            size_t zn = z.size - sizeof log_magic;
            unsigned long long n = ZSTD_getFrameContentSize(zp, zn);
            if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > LOG_MAX_RAW)
                rc = mf__error_set(MF_ECORRUPT, "log '%s' is damaged (bad frame)", key.ptr);
            if (!rc)
                rc = mf__buf_grow(&raw, (size_t)n);
            if (!rc) {
                size_t got = ZSTD_decompress(raw.ptr, (size_t)n, zp, zn);
                if (ZSTD_isError(got) || got != n)
                    rc = mf__error_set(MF_ECORRUPT, "log '%s' is damaged: %s", key.ptr,
                                       ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                                         : "short frame");
                raw.size = got;
            }
        }
    }
    if (!rc)
        rc = log_render(raw.ptr, raw.size, flags, out);
    mf_buf_dispose(&key);
    mf_buf_dispose(&z);
    mf_buf_dispose(&raw);
    return rc;
}

/* ------------------------------------------------------------ from env */

static int parse_inputs(const char *s, mf_strlist *out)
{
    /* Metaflow's compact form too: "run/step/:1,2,3" */
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', n);
        if (colon && colon > p && colon[-1] == '/') {
            size_t plen = (size_t)(colon - p);
            const char *q = colon + 1;
            for (;;) {
                const char *c2 = strchr(q, ',');
                size_t m = c2 ? (size_t)(c2 - q) : strlen(q);
                mf_buf one = MF_BUF_INIT;
                int rc = mf__buf_put(&one, p, plen);
                if (!rc)
                    rc = mf__buf_put(&one, q, m);
                if (!rc)
                    rc = mf__strlist_pushn(out, one.ptr, one.size);
                mf_buf_dispose(&one);
                if (rc)
                    return rc;
                if (!c2)
                    return MF_OK;
                q = c2 + 1;
            }
        }
        if (n && mf__strlist_pushn(out, p, n))
            return MF_ENOMEM;
        if (!comma)
            break;
        p = comma + 1;
    }
    return MF_OK;
}

static int read_file(const char *path, mf_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mf__error_errno(errno, "reading input paths", path);
    char buf[65536];
    size_t n;
    int rc = MF_OK;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = mf__buf_put(out, buf, n);
    fclose(f);
    if (!rc && !out->ptr)
        rc = mf__buf_set(out, "", 0);
    return rc;
}

MF_EXTERN(int) mf_task_from_env(mf_task **task_out, mf_engine **engine_out)
{
    if (!task_out || !engine_out)
        return mf__error_set(MF_EINVAL, "mf_task_from_env: NULL argument");
    *task_out = NULL;
    *engine_out = NULL;
    const char *spec = getenv("MF_TASK");
    if (!spec || !*spec)
        return mf__error_set(MF_ENOTFOUND, "MF_TASK is not set: not in a task process");
    char *parts[5] = { 0 };
    char *copy = mf__strdup(spec);
    if (!copy)
        return MF_ENOMEM;
    size_t n = 0;
    for (char *s = copy, *tok; n < 5 && (tok = strsep(&s, "/")) != NULL;)
        parts[n++] = tok;
    char *end = NULL;
    unsigned long attempt = n == 5 ? strtoul(parts[4], &end, 10) : 0;
    if (n != 5 || !*parts[4] || *end || attempt > UINT32_MAX) {
        free(copy);
        return mf__error_set(MF_EINVAL, "MF_TASK '%s' is not Flow/run/step/task/attempt", spec);
    }
    mf_strlist *inputs = mf__strlist_new();
    mf_buf file = MF_BUF_INIT;
    uint32_t *fi = NULL, *fn = NULL;
    char **fv = NULL;
    size_t depth = 0;
    mf_engine *e = NULL;
    mf_task *t = NULL;
    int rc = inputs ? MF_OK : MF_ENOMEM;
    const char *in = getenv("MF_TASK_INPUTS");
    if (!rc && in && in[0] == '@') {
        rc = read_file(in + 1, &file);
        in = file.ptr;
    }
    if (!rc && in)
        rc = parse_inputs(in, inputs);
    const char *fe = getenv("MF_TASK_FOREACH");
    if (!rc && fe && *fe) {
        size_t levels = 1;
        for (const char *p = fe; *p; p++)
            levels += *p == '\n';
        fi = calloc(levels, sizeof *fi);
        fn = calloc(levels, sizeof *fn);
        fv = calloc(levels, sizeof *fv);
        if (!fi || !fn || !fv)
            rc = mf__error_oom();
        const char *p = fe;
        while (!rc && *p) {
            char *e1, *e2;
            unsigned long a = strtoul(p, &e1, 10), b = e1 && *e1 == ' ' ? strtoul(e1 + 1, &e2, 10)
                                                                         : 0;
            if (e1 == p || *e1 != ' ' || !e2 || (*e2 != ' ' && *e2 != '\n' && *e2) ||
                a > UINT32_MAX || b > UINT32_MAX) {
                rc = mf__error_set(MF_EINVAL, "MF_TASK_FOREACH level %zu is not "
                                   "'<index> <count> <value>'", depth);
                break;
            }
            const char *v = *e2 == ' ' ? e2 + 1 : e2;
            const char *nl = strchr(v, '\n');
            size_t vl = nl ? (size_t)(nl - v) : strlen(v);
            fi[depth] = (uint32_t)a;
            fn[depth] = (uint32_t)b;
            if (!(fv[depth] = malloc(vl + 1))) {
                rc = mf__error_oom();
                break;
            }
            memcpy(fv[depth], v, vl);
            fv[depth][vl] = 0;
            depth++;
            p = nl ? nl + 1 : v + vl;
        }
    }
    if (!rc) {
        mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
        eo.index_dir = getenv("MF_INDEX_DIR");
        if (eo.index_dir && !*eo.index_dir)
            eo.index_dir = NULL;
        rc = mf_engine_open(&e, &eo);
    }
    if (!rc) {
        mf_task_options to = MF_TASK_OPTIONS_INIT;
        to.task_id = parts[3];
        to.attempt = (uint32_t)attempt;
        to.foreach_index = fi;
        to.foreach_nsplits = fn;
        to.foreach_value = (const char *const *)fv;
        to.foreach_depth = depth;
        size_t ni = mf_strlist_count(inputs);
        const char **iv = calloc(ni ? ni : 1, sizeof *iv);
        if (!iv)
            rc = mf__error_oom();
        for (size_t i = 0; iv && i < ni; i++)
            iv[i] = mf_strlist_get(inputs, i);
        to.input_paths = ni ? iv : NULL;
        to.ninputs = ni;
        if (!rc)
            rc = mf__task_create_raw(&t, e, parts[0], parts[1], parts[2], &to);
        free(iv);
    }
    if (!rc) {
        const char *j = getenv("MF_TASK_JOIN");
        t->is_join = j && strcmp(j, "1") == 0;
        /* The local runtime syncs and indexes finished attempts in
         * batches: its task processes commit without waiting for either. */
        const char *cm = getenv("MF_TASK_COMMIT");
        if (cm && strcmp(cm, "batch") == 0)
            t->commit_flags = MF__COMMIT_DEFER;
        t->inherit = true;
        const char *o = getenv("MF_TASK_ORIGIN_RUN");
        if (o && *o && !(t->x.origin_run_id = mf__strdup(o)))
            rc = MF_ENOMEM;
    }
    free(copy);
    free(fi);
    free(fn);
    mf__strvec_free(fv, depth);
    mf_strlist_free(inputs);
    mf_buf_dispose(&file);
    if (rc) {
        mf_task_free(t);
        mf_engine_free(e);
        return rc;
    }
    *task_out = t;
    *engine_out = e;
    return MF_OK;
}
