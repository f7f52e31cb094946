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
    char *ds_name;  /* the registered datastore name; NULL for a caller's datastore */
    bool remote;    /* the index is a local cache of a remote datastore */
    uint32_t flags;
    char host[256];
};

typedef struct mf__rt mf__rt;

struct mf_run {
    mf_engine *engine;
    mf__run_record rec;
    bool owner;     /* created by this handle and not finished yet */
    mf__rt *rt;     /* the runtime driving it (mf_run_start/resume), or NULL */
};

/* lib/runtime: cancel what runs, finish the run as failed if it is not
 * finished, free. Called by mf_run_free(). */
void mf__rt_free(mf__rt *rt);

/* Runtime fields of a task, kept in its manifest's "extra" map
 * (docs/task-protocol.md). */
typedef struct mf__task_extra {
    bool has_foreach_count;
    uint64_t foreach_count;     /* items of the foreach variable */
    size_t nforeach_values;
    char **foreach_values;      /* short text of each item, or none */
    char *switch_case;          /* value of a switch step's condition */
    char *failure;              /* why the attempt failed or was caught */
    bool has_exit;
    int32_t exit_code, signal;
    char *origin;               /* resume: "run/step/task" cloned from */
    char *origin_run_id;        /* resume: the origin run */
    bool caught;                /* succeeded by @catch after failing */
} mf__task_extra;

int mf__task_extra_encode(const mf__task_extra *x, mf_buf *out); /* empty when nothing set */
int mf__task_extra_decode(mf__task_extra *x, const mf_buf *extra, const char *what);
void mf__task_extra_clear(mf__task_extra *x);

/* mf__task_commit_ex() flags. */
#define MF__COMMIT_DEFER 0x1u   /* no sync, no index record: the runtime batches both */

struct mf_task {
    mf_engine *engine;
    char *pathspec;     /* Flow/run/step/task */
    bool writable;      /* created, not committed */
    bool committed;
    mf__manifest man;   /* artifacts sorted by name once committed or opened */
    mf__task_extra x;
    bool is_join;       /* joins do not inherit their input's artifacts */
    bool inherit;       /* at commit, take the single input's other artifacts */
    mf_buf log[2];      /* in-process log lines: "<us> <text>\n" */
    uint64_t log_cap;   /* per stream; 0: no cap */
    uint32_t commit_flags; /* MF__COMMIT_* for mf_task_commit() */
    uint64_t log_dropped[2];
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

/* A run held on another host whose heartbeat is older than this reads as
 * crashed; the runtime refreshes it every MF__HEARTBEAT_US. */
#define MF__HEARTBEAT_US (10 * 1000000LL)
#define MF__HEARTBEAT_STALE_US (60 * 1000000LL)

/* Shared helpers (lib/api/util.c). */
char *mf__strdup(const char *s);           /* NULL on OOM (error set) */
char **mf__strv_dup(const char *const *v, size_t n); /* NULL on OOM */
int mf__get_user(const char *given, char **out);
int mf__run_record_write(mf_engine *e, const mf__run_record *r);
/* Record a committed manifest in the index (task.c; also the rebuild). */
int mf__api_record_task(mf_engine *e, const mf__manifest *m);
/* The index record of a manifest; borrows its strings. free(r->artifact_names). */
int mf__api_task_record(const mf__manifest *m, mf__task_record *r);

/* A writable task from parts, without a run handle (runtime, executor).
 * MF__CREATE_NO_PROBE skips the check that the attempt is not committed
 * yet, for attempts the runtime hands out itself (the put-if-absent of the
 * commit still refuses a second writer). */
#define MF__CREATE_NO_PROBE 0x1u
int mf__task_create_raw(mf_task **out, mf_engine *e, const char *flow, const char *run_id,
                        const char *step, const mf_task_options *opts);
int mf__task_create_ex(mf_task **out, mf_engine *e, const char *flow, const char *run_id,
                       const char *step, const mf_task_options *opts, uint32_t flags);
int mf__task_commit_ex(mf_task *t, int32_t status, uint32_t flags);
/* Forget every artifact put so far (a failed attempt keeps none). */
void mf__task_drop_artifacts(mf_task *t);
/* Take the artifacts of `parent` that `t` has not put (by reference). */
int mf__task_inherit(mf_task *t, const mf_task *parent);

/* Logs: "<Flow>/<run>/<step>/<task>/<attempt>.<stdout|stderr>.log", a
 * magic then a zstd frame of "<us> <text>\n" lines. */
#define MF__LOG_DEFAULT_CAP (10u << 20)
int mf__log_key(const char *flow, const char *run_id, const char *step, const char *task_id,
                uint32_t attempt, int32_t stream, mf_buf *out);
int mf__log_persist(mf_engine *e, const char *flow, const char *run_id, const char *step,
                    const char *task_id, uint32_t attempt, int32_t stream,
                    const void *lines, size_t len, uint32_t ds_flags);
/* Append one line to a log buffer (no cap here). */
int mf__log_append(mf_buf *log, int64_t us, const char *text, size_t len);
/* Append the last `lines` lines of a log buffer to `out`, text only,
 * each as "\n    <text>". */
int mf__log_tail(const mf_buf *log, int lines, mf_buf *out);
/* "[... N bytes of output dropped: the log reached its cap of C bytes]" */
int mf__log_note_dropped(mf_buf *log, uint64_t dropped, uint64_t cap);

#endif
