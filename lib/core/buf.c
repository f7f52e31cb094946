/* Caller-owned byte buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

MF_EXTERN(void) mf_buf_dispose(mf_buf *buf)
{
    if (!buf)
        return;
    if (buf->reserved)
        free(buf->ptr);
    buf->ptr = NULL;
    buf->reserved = 0;
    buf->size = 0;
}

int mf__buf_grow(mf_buf *buf, size_t need)
{
    if (need == SIZE_MAX)
        return mf__error_oom();
    if (buf->reserved >= need + 1)
        return MF_OK;
    size_t cap = buf->reserved ? buf->reserved : 64;
    while (cap < need + 1) {
        if (cap > SIZE_MAX / 2) {
            cap = need + 1;
            break;
        }
        cap *= 2;
    }
    char *p;
    if (buf->reserved) {
        p = realloc(buf->ptr, cap);
    } else {
        /* A borrowed buffer: copy what it shows into memory we own. */
        p = malloc(cap);
        if (p && buf->ptr && buf->size)
            memcpy(p, buf->ptr, buf->size);
    }
    if (!p)
        return mf__error_oom();
    buf->ptr = p;
    buf->reserved = cap;
    buf->ptr[buf->size] = '\0';
    return MF_OK;
}

int mf__buf_set(mf_buf *buf, const void *data, size_t len)
{
    buf->size = 0;
    return mf__buf_put(buf, data, len);
}

int mf__buf_put(mf_buf *buf, const void *data, size_t len)
{
    if (buf->size > SIZE_MAX - len - 1)
        return mf__error_oom();
    int rc = mf__buf_grow(buf, buf->size + len);
    if (rc)
        return rc;
    if (len)
        memmove(buf->ptr + buf->size, data, len);
    buf->size += len;
    buf->ptr[buf->size] = '\0';
    return MF_OK;
}

int mf__buf_puts(mf_buf *buf, const char *s)
{
    return mf__buf_put(buf, s, strlen(s));
}

int mf__buf_printf(mf_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return mf__error_set(MF_EINVAL, "bad format string");
    int rc = mf__buf_grow(buf, buf->size + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(buf->ptr + buf->size, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->size += (size_t)n;
    return MF_OK;
}

void mf__buf_clear(mf_buf *buf)
{
    if (!buf->reserved) {
        buf->ptr = NULL;
        buf->size = 0;
        return;
    }
    buf->size = 0;
    buf->ptr[0] = '\0';
}

char *mf__buf_detach(mf_buf *buf, size_t *len)
{
    char *p = buf->ptr;
    if (len)
        *len = buf->size;
    if (!buf->reserved && p) {
        p = malloc(buf->size + 1);
        if (p) {
            memcpy(p, buf->ptr, buf->size);
            p[buf->size] = '\0';
        }
    }
    buf->ptr = NULL;
    buf->reserved = 0;
    buf->size = 0;
    return p;
}
