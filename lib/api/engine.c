/* Engines: a datastore, the content store on it and the metadata index. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "datastore/datastore.h"

#define MF_LOCAL_DIR ".metaflow"

MF_EXTERN(int) mf_engine_options_init(mf_engine_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_engine_options_init: options are NULL");
    if (version != MF_ENGINE_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_engine_options", version);
    mf_engine_options init = MF_ENGINE_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

/* The local root as Metaflow finds it: $MF_DATASTORE_ROOT (the exact
 * root, which the runtime gives its task processes), else
 * $METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow, else the nearest .metaflow in
 * the working directory or a parent, else ./.metaflow. */
static int find_local_root(char **out, bool create)
{
    const char *exact = mf__getenv("MF_DATASTORE_ROOT");
    const char *env = mf__getenv("METAFLOW_DATASTORE_SYSROOT_LOCAL");
    char cwd[PATH_MAX];
    if (exact) {
        *out = mf__strdup(exact);
        return *out ? MF_OK : MF_ENOMEM;
    }
    if (env) {
        mf_buf b = MF_BUF_INIT;
        int rc = mf__buf_printf(&b, "%s/%s", env, MF_LOCAL_DIR);
        if (rc) {
            mf_buf_dispose(&b);
            return rc;
        }
        *out = mf__buf_detach(&b, NULL);
        return *out ? MF_OK : MF_ENOMEM;
    }
    if (!getcwd(cwd, sizeof cwd))
        return mf__error_errno(errno, "cannot read the working directory", ".");
    char probe[PATH_MAX + sizeof MF_LOCAL_DIR + 1];
    char dir[PATH_MAX];
    memcpy(dir, cwd, strlen(cwd) + 1);
    for (;;) {
        struct stat st;
        snprintf(probe, sizeof probe, "%s/%s", strcmp(dir, "/") ? dir : "", MF_LOCAL_DIR);
        if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
            *out = mf__strdup(probe);
            return *out ? MF_OK : MF_ENOMEM;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (strcmp(dir, "/") == 0)
                break;
            dir[1] = '\0';
            continue;
        }
        *slash = '\0';
    }
    if (!create)
        return mf__error_set(MF_ENOTFOUND,
                             "no '%s' directory in '%s' or its parents", MF_LOCAL_DIR, cwd);
    snprintf(probe, sizeof probe, "%s/%s", cwd, MF_LOCAL_DIR);
    *out = mf__strdup(probe);
    return *out ? MF_OK : MF_ENOMEM;
}

/* The datastore when the options name none: $MF_DATASTORE (which the
 * runtime gives its task processes), else Metaflow's
 * $METAFLOW_DEFAULT_DATASTORE, else "fs". */
static const char *default_datastore(void)
{
    const char *v = mf__getenv("MF_DATASTORE");
    if (!v)
        v = mf__getenv("METAFLOW_DEFAULT_DATASTORE");
    return v ? v : "fs";
}

/* The root of a remote datastore: $MF_DATASTORE_ROOT (exact), else
 * $METAFLOW_DATASTORE_SYSROOT_<NAME> (Metaflow's S3 variable for "s3"). */
static int find_remote_root(char **out, const char *name)
{
    const char *exact = mf__getenv("MF_DATASTORE_ROOT");
    char var[96];
    size_t n = (size_t)snprintf(var, sizeof var, "METAFLOW_DATASTORE_SYSROOT_");
    for (const char *p = name; *p && n + 1 < sizeof var; p++)
        var[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    var[n] = '\0';
    const char *v = exact ? exact : mf__getenv(var);
    if (!v)
        return mf__error_set(MF_EINVAL, "datastore '%s' needs a root: set %s "
                             "(for example s3://bucket/prefix) or give one in the engine "
                             "options", name, var);
    *out = mf__strdup(v);
    return *out ? MF_OK : mf__error_oom();
}

static int engine_finish_open(mf_engine *e, const mf_engine_options *opts)
{
    int rc;
    /* A remote datastore's index is a local cache the engine keeps up to
     * date itself, so it is written even by a read-only engine. */
    bool ro = opts && (opts->flags & MF_ENGINE_READONLY) && !e->remote;
    mf__sha256_warm();
    if (!e->index_dir)
        return mf__error_set(MF_EINVAL, "engine: no index directory given");
    rc = mf__store_new(&e->store, e->ds);
    if (rc)
        return rc;
    rc = mf__meta_open(&e->meta, e->index_dir, opts ? opts->index_map_size : 0, ro);
    if (rc)
        return rc;
    if (gethostname(e->host, sizeof e->host - 1) != 0)
        strcpy(e->host, "localhost");
    /* A reader of a remote datastore sees what other machines wrote. */
    if (e->remote && (e->flags & MF_ENGINE_READONLY))
        return mf_index_refresh(e);
    return MF_OK;
}

static int check_opts(const mf_engine_options *opts)
{
    if (opts && opts->version != MF_ENGINE_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_engine_options",
                             opts->version);
    return MF_OK;
}

MF_EXTERN(int) mf_engine_open(mf_engine **out, const mf_engine_options *opts)
{
    int rc;
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_engine_open: out is NULL");
    *out = NULL;
    if ((rc = check_opts(opts)) != MF_OK)
        return rc;
    /* Without a datastore name, a given root says which (s3://...), else
     * the environment does. */
    const char *name = opts && opts->datastore ? opts->datastore
                       : opts && opts->root ? (strncmp(opts->root, "s3://", 5) == 0 ? "s3" : "fs")
                                            : default_datastore();
    bool local = strcmp(name, "fs") == 0 || strcmp(name, "local") == 0;
    bool ro = opts && (opts->flags & MF_ENGINE_READONLY);
    mf_engine *e = calloc(1, sizeof *e);
    if (!e)
        return mf__error_oom();
    e->flags = opts ? opts->flags : 0;
    e->remote = !local;
    if (!(e->ds_name = mf__strdup(local ? "fs" : name))) {
        rc = mf__error_oom();
        goto fail;
    }

    if (opts && opts->root) {
        e->root = mf__strdup(opts->root);
        rc = e->root ? MF_OK : MF_ENOMEM;
    } else if (local) {
        rc = find_local_root(&e->root, !ro);
    } else {
        rc = find_remote_root(&e->root, name);
    }
    if (rc)
        goto fail;
    /* Read-only never creates: the fs backend would make a missing root. */
    struct stat st;
    if (local && ro && stat(e->root, &st) != 0) {
        rc = mf__error_errno(errno, "datastore root", e->root);
        goto fail;
    }
    rc = mf_datastore_open(&e->ds, local ? "fs" : name, e->root);
    if (rc)
        goto fail;
    if (local) {
        /* The backend made the root and resolved it: runs record an
         * absolute root. */
        free(e->root);
        if (!(e->root = mf__strdup(mf__fs_root(e->ds)))) {
            rc = MF_ENOMEM;
            goto fail;
        }
    }

    if (opts && opts->index_dir) {
        e->index_dir = mf__strdup(opts->index_dir);
    } else if (local) {
        mf_buf b = MF_BUF_INIT;
        if (mf__buf_printf(&b, "%s/.index", e->root) == MF_OK)
            e->index_dir = mf__buf_detach(&b, NULL);
        mf_buf_dispose(&b);
    } else {
        /* A remote datastore gets a local index cache keyed by its root. */
        uint8_t h[MF_SHA256_LEN];
        char hex[MF_SHA256_HEX + 1];
        mf_buf id = MF_BUF_INIT, b = MF_BUF_INIT;
        const char *cache = mf__getenv("XDG_CACHE_HOME");
        const char *home = mf__getenv("HOME");
        char pwbuf[4096];
        struct passwd pw, *pwp = NULL;
        /* Never a shared directory such as /tmp: another user could own it. */
        if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &pwp) == 0 &&
            pwp && pwp->pw_dir && *pwp->pw_dir)
            home = pwp->pw_dir;
        mf__buf_printf(&id, "%s:%s", name, e->root);
        mf__sha256(id.ptr, id.size, h);
        mf__hex(h, 8, hex);
        if (cache)
            mf__buf_printf(&b, "%s/libmetaflow/index-%s", cache, hex);
        else if (home)
            mf__buf_printf(&b, "%s/.cache/libmetaflow/index-%s", home, hex);
        else
            rc = mf__error_set(MF_EINVAL, "no directory for the index cache of '%s': set "
                               "XDG_CACHE_HOME or HOME, or give options.index_dir", e->root);
        e->index_dir = rc ? NULL : mf__buf_detach(&b, NULL);
        mf_buf_dispose(&id);
        mf_buf_dispose(&b);
        if (rc)
            goto fail;
    }
    if (!e->index_dir) {
        rc = mf__error_oom();
        goto fail;
    }
    if ((rc = engine_finish_open(e, opts)) != MF_OK)
        goto fail;
    *out = e;
    return MF_OK;
fail:
    mf_engine_free(e);
    return rc;
}

MF_EXTERN(int) mf_engine_open_datastore(mf_engine **out, mf_datastore *ds,
                                        const mf_engine_options *opts)
{
    int rc;
    if (!out || !ds)
        return mf__error_set(MF_EINVAL, "mf_engine_open_datastore: NULL argument");
    *out = NULL;
    if ((rc = check_opts(opts)) != MF_OK)
        return rc;
    if (ds->version < 1 || ds->version > MF_DATASTORE_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_datastore", ds->version);
    if (!ds->free || !ds->put || !ds->get || !ds->exists || !ds->list || !ds->del)
        return mf__error_set(MF_EINVAL, "mf_datastore: a required method is NULL");
    if (!opts || !opts->index_dir)
        return mf__error_set(MF_EINVAL, "mf_engine_open_datastore: options.index_dir is required");
    mf_engine *e = calloc(1, sizeof *e);
    if (!e)
        return mf__error_oom();
    e->flags = opts->flags;
    e->root = mf__strdup(opts->root ? opts->root : "(custom datastore)");
    e->index_dir = mf__strdup(opts->index_dir);
    if (!e->root || !e->index_dir) {
        rc = MF_ENOMEM;
        goto fail;
    }
    e->ds = ds;
    if ((rc = engine_finish_open(e, opts)) != MF_OK) {
        e->ds = NULL; /* ownership passes only on success */
        goto fail;
    }
    *out = e;
    return MF_OK;
fail:
    mf_engine_free(e);
    return rc;
}

MF_EXTERN(void) mf_engine_free(mf_engine *e)
{
    if (!e)
        return;
    mf__meta_close(e->meta);
    mf__store_free(e->store);
    mf_datastore_free(e->ds);
    free(e->root);
    free(e->index_dir);
    free(e->ds_name);
    free(e);
}

MF_EXTERN(const char *) mf_engine_root(const mf_engine *e)
{
    return e ? e->root : NULL;
}

MF_EXTERN(int) mf_flow_list(mf_strlist **out, mf_engine *e)
{
    if (!out || !e)
        return mf__error_set(MF_EINVAL, "mf_flow_list: NULL argument");
    *out = NULL;
    mf_strlist *l = mf__strlist_new();
    if (!l)
        return MF_ENOMEM;
    int rc = mf__meta_flow_list(e->meta, l);
    if (rc) {
        mf_strlist_free(l);
        return rc;
    }
    *out = l;
    return MF_OK;
}
