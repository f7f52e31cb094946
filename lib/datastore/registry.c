/*
 * The datastore registry: backend name -> factory, behind a mutex. Like
 * SQLite's VFS list, a registered entry is never modified, so a factory
 * pointer copied out under the lock stays meaningful after it is released;
 * factories run unlocked because opening (S3) may be slow and may itself
 * use the registry.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "datastore.h"
#include "s3/s3.h"

#define NAME_MAX_LEN 64

typedef struct entry {
    struct entry *next;
    mf_datastore_open_cb open;
    void *payload;
    char name[];
} entry;

static int fs_factory(mf_datastore **out, const char *root, void *payload)
{
    (void)payload;
    return mf__fs_open(out, root);
}

static int s3_factory(mf_datastore **out, const char *root, void *payload)
{
    (void)payload;
    return mf__s3_open(out, root);
}

/* Built-ins are not in the list and cannot be unregistered: every host
 * relies on "fs" being there, and one test or plugin removing it would
 * break every other user in the process. */
static const struct {
    const char *name;
    mf_datastore_open_cb open;
} builtins[] = {
    { "fs", fs_factory },
    { "local", fs_factory },
    { "s3", s3_factory },
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static entry *reg_head;

static int name_check(const char *name)
{
    if (!name || !*name)
        return mf__error_set(MF_EINVAL, "datastore backend name is empty");
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return mf__error_set(MF_EINVAL,
                                 "datastore backend name '%.64s': invalid character "
                                 "(use [a-z0-9_])", name);
    }
    if (n > NAME_MAX_LEN)
        return mf__error_set(MF_EINVAL, "datastore backend name '%.64s...': longer than %d",
                             name, NAME_MAX_LEN);
    return MF_OK;
}

static mf_datastore_open_cb builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return builtins[i].open;
    return NULL;
}

/* Caller holds reg_lock. */
static entry **find_locked(const char *name)
{
    for (entry **e = &reg_head; *e; e = &(*e)->next)
        if (strcmp((*e)->name, name) == 0)
            return e;
    return NULL;
}

MF_EXTERN(int) mf_datastore_register(const char *name, mf_datastore_open_cb open,
                                     void *payload)
{
    int rc = name_check(name);
    if (rc < 0)
        return rc;
    if (!open)
        return mf__error_set(MF_EINVAL, "datastore backend '%s': NULL open function", name);
    if (builtin_find(name))
        return mf__error_set(MF_EEXISTS, "datastore backend '%s' is built in", name);

    size_t len = strlen(name);
    entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return mf__error_oom();
    memcpy(e->name, name, len + 1);
    e->open = open;
    e->payload = payload;

    pthread_mutex_lock(&reg_lock);
    if (find_locked(name)) {
        pthread_mutex_unlock(&reg_lock);
        free(e);
        return mf__error_set(MF_EEXISTS, "datastore backend '%s' is already registered",
                             name);
    }
    e->next = reg_head;
    reg_head = e;
    pthread_mutex_unlock(&reg_lock);
    return MF_OK;
}

MF_EXTERN(int) mf_datastore_unregister(const char *name)
{
    if (!name)
        return mf__error_set(MF_EINVAL, "datastore backend name is NULL");
    if (builtin_find(name))
        return mf__error_set(MF_EINVAL,
                             "datastore backend '%s' is built in and cannot be unregistered",
                             name);
    pthread_mutex_lock(&reg_lock);
    entry **link = find_locked(name);
    entry *e = link ? *link : NULL;
    if (e)
        *link = e->next;
    pthread_mutex_unlock(&reg_lock);
    if (!e)
        return mf__error_set(MF_ENOTFOUND, "datastore backend '%.64s' is not registered",
                             name);
    free(e);
    return MF_OK;
}

/* Struct size of each known vtable version, so that a vtable is zeroed only
 * as far as the version its author compiled against. */
static const size_t version_size[] = {
    0,
    offsetof(mf_datastore, local_path) + sizeof(((mf_datastore *)0)->local_path), /* 1 */
};

static int version_known(unsigned int version)
{
    return version >= 1 && version < sizeof version_size / sizeof version_size[0];
}

MF_EXTERN(int) mf_datastore_init(mf_datastore *ds, unsigned int version)
{
    if (!ds)
        return mf__error_set(MF_EINVAL, "mf_datastore_init: NULL vtable");
    if (!version_known(version))
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_datastore", version);
    memset(ds, 0, version_size[version]);
    ds->version = version;
    return MF_OK;
}

int mf__datastore_check(const mf_datastore *ds, const char *what)
{
    if (!ds)
        return mf__error_set(MF_EINVAL, "datastore '%s': NULL vtable", what);
    if (!version_known(ds->version))
        return mf__error_set(MF_EVERSION, "datastore '%s': invalid version %u on mf_datastore",
                             what, ds->version);
    if (!ds->free || !ds->put || !ds->get || !ds->exists || !ds->list || !ds->del)
        return mf__error_set(MF_EINVAL, "datastore '%s': vtable lacks a required method",
                             what);
    return MF_OK;
}

MF_EXTERN(int) mf_datastore_open(mf_datastore **out, const char *name, const char *root)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_datastore_open: NULL out");
    *out = NULL;
    if (!name)
        return mf__error_set(MF_EINVAL, "datastore backend name is NULL");

    mf_datastore_open_cb open = builtin_find(name);
    void *payload = NULL;
    if (!open) {
        pthread_mutex_lock(&reg_lock);
        entry **link = find_locked(name);
        if (link) {
            open = (*link)->open;
            payload = (*link)->payload;
        }
        pthread_mutex_unlock(&reg_lock);
    }
    if (!open)
        return mf__error_set(MF_ENOTFOUND, "no datastore backend named '%.64s'", name);

    mf_datastore *ds = NULL;
    int rc = open(&ds, root, payload);
    if (rc < 0) {
        /* A factory that fails but leaves an object is a bug we can
         * survive only by leaking it: its state is unknown. */
        return rc;
    }
    if (rc > 0 || !ds)
        return mf__error_set(MF_ERROR, "datastore backend '%s' returned %d without a datastore",
                             name, rc);
    rc = mf__datastore_check(ds, name);
    if (rc < 0) {
        /* Versions only append methods, so `free` sits at the same offset
         * in every version, even one newer than this library. */
        if (ds->version >= 1 && ds->free)
            ds->free(ds);
        return rc;
    }
    *out = ds;
    return MF_OK;
}

MF_EXTERN(void) mf_datastore_free(mf_datastore *ds)
{
    if (ds && ds->free)
        ds->free(ds);
}

int mf__datastore_local_path(mf_datastore *ds, const char *key, mf_buf *path)
{
    /* local_path is in version 1; a later optional method would test
     * `ds->version >= N` here before reading the field at all. */
    if (!ds || ds->version < 1 || !ds->local_path)
        return mf__error_set(MF_ENOTSUP, "datastore has no local files for '%s'",
                             key ? key : "");
    return ds->local_path(ds, key, path);
}

int mf__datastore_sync(mf_datastore *ds)
{
    if (!ds || ds->version < 1 || !ds->sync)
        return MF_OK;
    return ds->sync(ds);
}
