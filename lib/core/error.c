/* Per-thread error state and error-code descriptions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

#define MF_ERROR_MSG_MAX 1024

static _Thread_local int tl_code;
static _Thread_local char tl_msg[MF_ERROR_MSG_MAX];

MF_EXTERN(const char *) mf_strerror(int code)
{
    switch (code) {
    case MF_OK: return "success";
    case MF_ERROR: return "generic error";
    case MF_EINVAL: return "invalid argument";
    case MF_ENOTFOUND: return "not found";
    case MF_EEXISTS: return "already exists";
    case MF_EIO: return "I/O error";
    case MF_ECORRUPT: return "corrupt data";
    case MF_ENOMEM: return "out of memory";
    case MF_EVERSION: return "unsupported version";
    case MF_EBUSY: return "resource busy";
    case MF_ETIMEOUT: return "timed out";
    case MF_EUSER: return "stopped by a callback";
    case MF_EGRAPH: return "invalid flow graph";
    case MF_ENOTSUP: return "not supported";
    case MF_ESTATE: return "wrong state";
    case MF_ERANGE: return "out of range";
    case MF_ENOSPACE: return "index full";
    case MF_EFAILED: return "failed";
    case MF_EACCESS: return "access denied";
    default: return "unknown error code";
    }
}

MF_EXTERN(const char *) mf_error_last(void)
{
    if (tl_code == MF_OK || tl_msg[0] == '\0')
        return tl_code == MF_OK ? "no error" : mf_strerror(tl_code);
    return tl_msg;
}

MF_EXTERN(int) mf_error_last_code(void)
{
    return tl_code;
}

MF_EXTERN(void) mf_error_clear(void)
{
    tl_code = MF_OK;
    tl_msg[0] = '\0';
}

int mf__error_vset(int code, const char *fmt, va_list ap)
{
    tl_code = code;
    if (fmt)
        vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    else
        snprintf(tl_msg, sizeof tl_msg, "%s", mf_strerror(code));
    return code;
}

int mf__error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mf__error_vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int mf__error_wrap(const char *fmt, ...)
{
    char prefix[MF_ERROR_MSG_MAX];
    char old[MF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", mf_error_last());
    size_t np = strlen(prefix), no = strlen(old);
    if (np > sizeof tl_msg - 3)
        np = sizeof tl_msg - 3;
    if (no > sizeof tl_msg - 3 - np)
        no = sizeof tl_msg - 3 - np;
    memcpy(tl_msg, prefix, np);
    memcpy(tl_msg + np, ": ", 2);
    memcpy(tl_msg + np + 2, old, no);
    tl_msg[np + 2 + no] = '\0';
    if (tl_code == MF_OK)
        tl_code = MF_ERROR;
    return tl_code;
}

int mf__error_recode(int code)
{
    tl_code = code;
    return code;
}

int mf__error_oom(void)
{
    tl_code = MF_ENOMEM;
    /* A fixed string: formatting could itself need memory. */
    memcpy(tl_msg, "out of memory", sizeof "out of memory");
    return MF_ENOMEM;
}

int mf__error_errno(int err, const char *what, const char *path)
{
    int code;
    switch (err) {
    case ENOENT: code = MF_ENOTFOUND; break;
    case EEXIST: code = MF_EEXISTS; break;
    case ENOMEM: code = MF_ENOMEM; break;
    default: code = MF_EIO; break;
    }
    return mf__error_set(code, "%s '%s': %s", what ? what : "I/O",
                         path ? path : "", strerror(err));
}
