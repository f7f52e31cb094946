/*
 * Internal: the LMDB metadata index (see docs/architecture.md) and the
 * msgpack records it holds. The run record is also the datastore's copy
 * (<Flow>/<run>/_run), so the index can be rebuilt from the datastore.
 *
 * One mf_meta per process and index directory; safe from many threads
 * (LMDB: one write transaction at a time, readers never block). Never used
 * after fork(): the child opens its own.
 */
#ifndef MF_META_H
#define MF_META_H

#include "core/core.h"

typedef struct mf_meta mf_meta;

#define MF_RECORD_FORMAT 1

typedef struct mf__run_record {
    uint32_t format;
    char *flow, *run_id, *user, *origin_run_id; /* origin may be NULL */
    int32_t status;               /* mf_run_status */
    int64_t created_us, finished_us, heartbeat_us;
    char *host;                   /* hostname of the runtime holding the run */
    int64_t pid;                  /* its pid */
    size_t nsys_tags; char **sys_tags;
    size_t ntags; char **tags;    /* user tags, sorted, unique */
    size_t nparams; char **param_names; char **param_values;
} mf__run_record;

/* Records are msgpack maps with string keys, encoded deterministically
 * (same record, same bytes). encode replaces `out`'s contents; MF_EINVAL if
 * a required string (flow, run id; step, task id) or an array entry is
 * NULL. decode overwrites `*r` without freeing it (clear it first when
 * reusing) and leaves it zeroed on failure; unknown keys are ignored;
 * MF_EVERSION for a format above MF_RECORD_FORMAT, MF_ECORRUPT (naming
 * `what`) for anything malformed. `*_clear` frees and zeroes; accepts a
 * zeroed record. */
int mf__run_record_encode(const mf__run_record *r, mf_buf *out);
int mf__run_record_decode(mf__run_record *r, const void *data, size_t len, const char *what);
void mf__run_record_clear(mf__run_record *r);

typedef struct mf__task_record {
    uint32_t format;
    char *flow, *run_id, *step, *task_id;
    uint32_t attempt;
    int32_t status;               /* mf_task_status */
    int64_t started_us, finished_us;
    size_t foreach_depth;
    uint32_t *foreach_index, *foreach_nsplits;
    char **foreach_value;
    size_t ninputs; char **input_paths;
    size_t nartifacts; char **artifact_names; /* sorted */
} mf__task_record;

int mf__task_record_encode(const mf__task_record *t, mf_buf *out);
int mf__task_record_decode(mf__task_record *t, const void *data, size_t len, const char *what);
void mf__task_record_clear(mf__task_record *t);

/* Open (creating unless readonly) the index in directory `dir`.
 * map_size 0 = 64 MiB; the map grows on MDB_MAP_FULL (doubling, up to
 * 1 TiB, then MF_ENOSPACE). Readonly on a missing index: MF_ENOTFOUND
 * naming the path. Errors from LMDB: MF_EIO with the path and
 * mdb_strerror() (MF_ECORRUPT for a damaged file, MF_EVERSION for a newer
 * schema). Every call below returns MF_ESTATE when made in a process other
 * than the one that opened the index (after fork()), and the write calls
 * MF_ESTATE on a read-only index.
 *
 * Lists are appended to `out` (which the caller created). */
int mf__meta_open(mf_meta **out, const char *dir, uint64_t map_size, bool readonly);
/* Accepts NULL. In a fork() child it only frees memory (closing LMDB there
 * would release the parent's reader slots). Run locks taken through the
 * index stay held until unlocked or the process exits. */
void mf__meta_close(mf_meta *meta);
/* Current map size in bytes (tests, benchmarks). */
uint64_t mf__meta_map_size(mf_meta *meta);
/* The directory given at open. Borrowed. */
const char *mf__meta_dir(const mf_meta *meta);

/* Insert a new run (MF_EEXISTS if flow/run_id exists). When r->run_id is
 * NULL, allocate a Metaflow-style id (microseconds since the epoch, made
 * unique) and store it in r->run_id (malloc'ed). Records the flow too. */
int mf__meta_run_insert(mf_meta *meta, mf__run_record *r);
/* mf__meta_run_insert() that also takes the run's liveness lock
 * (mf__meta_run_lock) before the insert commits, so no reader ever sees the
 * new run running without its lock (it would read as crashed). On failure
 * nothing is inserted and no lock is held. MF_EBUSY if a live process holds
 * that run's lock. When r->created_us is 0 it is set: to the allocated id's
 * time for a new id, else to now (both inserts). */
int mf__meta_run_insert_locked(mf_meta *meta, mf__run_record *r);
/* Insert or replace a run (rebuild, status and tag updates). Finishing a
 * run: put the final status first, then mf__meta_run_unlock(), so it never
 * reads as running-without-lock (crashed) in between. */
int mf__meta_run_put(mf_meta *meta, const mf__run_record *r);
int mf__meta_run_get(mf_meta *meta, const char *flow, const char *run_id,
                     mf__run_record *out);
/* Run ids of a flow, newest (created_us) first, equal times by run id
 * descending, carrying all `tags` (user or system); with MF_LIST_SUCCESSFUL
 * only succeeded runs. At most `limit` ids (0 = all). An unknown flow gives
 * an empty list. */
int mf__meta_run_list(mf_meta *meta, const char *flow, const char *const *tags,
                      size_t ntags, uint32_t flags, size_t limit, mf_strlist *out);
int mf__meta_flow_list(mf_meta *meta, mf_strlist *out);

/* Next task id of a run: "1", "2", ... atomic across processes. Recording
 * a task with a numeric id (mf__meta_task_put) moves the counter past it. */
int mf__meta_task_id_next(mf_meta *meta, const char *flow, const char *run_id,
                          mf_buf *out);
/* Take `n` consecutive ids at once; the first in *first. */
int mf__meta_task_id_reserve(mf_meta *meta, const char *flow, const char *run_id, uint64_t n,
                             uint64_t *first);
/* Record a committed task attempt (insert or replace that attempt). The
 * step and task id are checked with mf__check_id (not as step names, so
 * Metaflow's "_parameters" can be recorded). Names too long for an LMDB key
 * (511 bytes for flow, run, step and task together) give MF_EINVAL. */
int mf__meta_task_put(mf_meta *meta, const mf__task_record *t);
/* mf__meta_task_put() of `n` records in one transaction (all or none). */
int mf__meta_task_put_many(mf_meta *meta, const mf__task_record *const *t, size_t n);
/* A task attempt; attempt < 0 means the latest recorded attempt. */
int mf__meta_task_get(mf_meta *meta, const char *flow, const char *run_id,
                      const char *step, const char *task_id, int64_t attempt,
                      mf__task_record *out);
/* Steps of a run in order of their first recorded task; tasks of a step in
 * recording order. */
int mf__meta_step_list(mf_meta *meta, const char *flow, const char *run_id,
                       mf_strlist *out);
int mf__meta_task_list(mf_meta *meta, const char *flow, const char *run_id,
                       const char *step, mf_strlist *out);

/* Remove every record (before a rebuild), in one transaction. */
int mf__meta_clear(mf_meta *meta);

/* ---- run liveness.
 * The process that creates a run holds a POSIX record lock (fcntl F_SETLK,
 * not inherited across fork) on <dir>/locks/<Flow>.<run>.lock until it
 * finishes the run or dies. */
/* MF_OK (also when this process already holds it), MF_EBUSY when another
 * live process holds it, MF_ESTATE on a read-only index. */
int mf__meta_run_lock(mf_meta *meta, const char *flow, const char *run_id);
/* Releases the lock and removes the file; MF_ESTATE if this process does
 * not hold it. */
int mf__meta_run_unlock(mf_meta *meta, const char *flow, const char *run_id);
/* 1 if a live process holds the run's lock (this one included), 0 if not,
 * or a negative error. */
int mf__meta_run_alive(mf_meta *meta, const char *flow, const char *run_id);

#endif /* MF_META_H */
