/* Internal: the handles behind include/metaflow/engine.h. */
#ifndef MF_API_H
#define MF_API_H

#include <sys/types.h>

#include "core/core.h"
#include "meta/meta.h"
#include "metaflow/sys/datastore.h"
#include "store/store.h"

struct mf_engine {
    mf_datastore *ds;
    mf_store *store;
    mf_meta *meta;
    char *root;
    char *index_dir;
    uint32_t flags;
    char host[256];
};

struct mf_run {
    mf_engine *engine;
    mf__run_record rec;
    bool owner;     /* created by this handle and not finished yet */
};

struct mf_task {
    mf_engine *engine;
    char *pathspec;     /* Flow/run/step/task */
    bool writable;      /* created, not committed */
    bool committed;
    mf__manifest man;   /* artifacts sorted by name once committed or opened */
};

struct mf_artifact {
    mf_engine *engine;
    char *name;
    char *encoding;
    char *owner;        /* pathspec of the task, for messages */
    char key[MF_SHA256_HEX + 1];
    uint32_t nparts;
    mf__part *parts;    /* own copies (inline bytes included) */
    mf__mapping **maps; /* per part, from mf_artifact_map() */
    int *zero_copy;     /* per part, -1 until mapped */
    const void **map_ptr; /* per part, the mapped region */
};

/* Shared helpers (lib/api/util.c). */
char *mf__strdup(const char *s);           /* NULL on OOM (error set) */
char **mf__strv_dup(const char *const *v, size_t n); /* NULL on OOM */
int mf__get_user(const char *given, char **out);
int mf__run_record_write(mf_engine *e, const mf__run_record *r);
/* Record a committed manifest in the index (task.c; also the rebuild). */
int mf__api_record_task(mf_engine *e, const mf__manifest *m);

#endif
