/* Small helpers of the API layer. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

char *mf__strdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        mf__error_oom();
    return d;
}

char **mf__strv_dup(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        mf__error_oom();
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = mf__strdup(v[i] ? v[i] : "");
        if (!out[i]) {
            mf__strvec_free(out, i);
            return NULL;
        }
    }
    return out;
}

/* The user a run belongs to, as Metaflow finds it: METAFLOW_USER, then the
 * login environment, then the password database. */
int mf__get_user(const char *given, char **out)
{
    const char *u = given;
    if (!u || !*u)
        u = getenv("METAFLOW_USER");
    if (!u || !*u)
        u = getenv("USER");
    if (!u || !*u)
        u = getenv("USERNAME");
    if (!u || !*u) {
        struct passwd *pw = getpwuid(getuid());
        u = pw && pw->pw_name ? pw->pw_name : "unknown";
    }
    int rc = mf__check_tag(u);
    if (rc)
        return mf__error_wrap("user name");
    *out = mf__strdup(u);
    return *out ? MF_OK : MF_ENOMEM;
}

int mf__run_record_write(mf_engine *e, const mf__run_record *r)
{
    mf_buf key = MF_BUF_INIT, val = MF_BUF_INIT;
    int rc = mf__store_run_key(r->flow, r->run_id, &key);
    if (!rc)
        rc = mf__run_record_encode(r, &val);
    if (!rc) {
        mf_ds_iovec iov = {val.ptr, val.size};
        rc = e->ds->put(e->ds, key.ptr, &iov, 1, 0);
        if (rc)
            mf__error_wrap("writing run record of '%s/%s'", r->flow, r->run_id);
    }
    mf_buf_dispose(&key);
    mf_buf_dispose(&val);
    return rc;
}
