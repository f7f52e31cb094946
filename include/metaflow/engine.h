/*
 * libmetaflow - engine, runs, tasks and artifacts.
 *
 * An engine is opened on one datastore root and owns the metadata index for
 * it. Threading: an mf_engine may be shared by many threads; an mf_run,
 * mf_task or mf_artifact is used by one thread at a time. Error state is
 * per thread. Never use an engine, or anything from it, in a child after
 * fork(): open a new one in the child.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_ENGINE_H
#define METAFLOW_ENGINE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_engine mf_engine;
typedef struct mf_run mf_run;
typedef struct mf_task mf_task;
typedef struct mf_artifact mf_artifact;

/* ---------------------------------------------------------------- engine */

/** mf_engine_options.flags: open the index read-only; never create anything. */
#define MF_ENGINE_READONLY 0x1u

#define MF_ENGINE_OPTIONS_VERSION 1

typedef struct mf_engine_options {
    unsigned int version;    /**< MF_ENGINE_OPTIONS_VERSION */
    /**
     * Registered datastore name ("fs", alias "local"; "s3"). NULL: "s3" for
     * a root that starts with s3://, "fs" for another root; without a root,
     * $MF_DATASTORE, else $METAFLOW_DEFAULT_DATASTORE, else "fs".
     */
    const char *datastore;
    /**
     * Datastore root. NULL for "fs" means: $MF_DATASTORE_ROOT, else
     * $METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow (as Metaflow)
     * if set, else the nearest `.metaflow` directory in the working
     * directory or one of its parents, else `./.metaflow` (created).
     */
    const char *root;
    /** Directory of the metadata index; NULL means `<root>/.index` for "fs" (hidden from listings). */
    const char *index_dir;
    /** Initial index map size in bytes (grows on demand); 0 = 64 MiB. */
    uint64_t index_map_size;
    uint32_t flags;          /**< MF_ENGINE_* */
} mf_engine_options;

#define MF_ENGINE_OPTIONS_INIT { MF_ENGINE_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0 }

/**
 * Initialise options to their defaults (the form FFIs call).
 * @return MF_OK, MF_EVERSION.
 * @since 0.1
 */
MF_EXTERN(int) mf_engine_options_init(mf_engine_options *opts, unsigned int version);

/**
 * Open an engine.
 * @param[out] out  the engine, owned by the caller (mf_engine_free()).
 * @param[in]  opts NULL for defaults.
 * @return MF_OK, MF_EVERSION (options version), MF_ENOTFOUND (unknown
 *         datastore), MF_EIO (root or index cannot be opened, naming the
 *         path), MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_engine_open(mf_engine **out, const mf_engine_options *opts);

/**
 * Open an engine on a datastore object the caller made (for instance a
 * custom backend). The engine takes ownership of `ds` only on success.
 * `opts->datastore` and `opts->root` are ignored; `opts->index_dir` is
 * required.
 * @since 0.1
 */
MF_EXTERN(int) mf_engine_open_datastore(mf_engine **out, mf_datastore *ds,
                                        const mf_engine_options *opts);

/**
 * Free an engine; accepts NULL. Every run, task and artifact of the engine
 * must be freed first.
 * @since 0.1
 */
MF_EXTERN(void) mf_engine_free(mf_engine *engine);

/** The engine's datastore root (absolute for "fs"). Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_engine_root(const mf_engine *engine);

/**
 * Names of all flows in the index, sorted.
 * @return MF_OK, MF_EIO, MF_ECORRUPT, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_list(mf_strlist **out, mf_engine *engine);

/* ------------------------------------------------------------------- runs */

/** Run states. Values are pinned. */
typedef enum mf_run_status {
    MF_RUN_RUNNING = 0,
    MF_RUN_SUCCEEDED = 1,
    MF_RUN_FAILED = 2,
    MF_RUN_CRASHED = 3 /**< its runtime died without finishing it */
} mf_run_status;

#define MF_RUN_OPTIONS_VERSION 1

typedef struct mf_run_options {
    unsigned int version;         /**< MF_RUN_OPTIONS_VERSION */
    const char *run_id;           /**< NULL: a new Metaflow-style id */
    const char *user;             /**< NULL: $METAFLOW_USER, $USER, "unknown" */
    const char *const *tags;      /**< user tags */
    size_t ntags;
    const char *const *param_names; /**< parameter names ... */
    const char *const *param_values;/**< ... and their values (encoded by the host) */
    size_t nparams;
    const char *origin_run_id;    /**< the run this one resumes, or NULL */
} mf_run_options;

#define MF_RUN_OPTIONS_INIT { MF_RUN_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL }

/** @return MF_OK, MF_EVERSION. @since 0.1 */
MF_EXTERN(int) mf_run_options_init(mf_run_options *opts, unsigned int version);

/**
 * Create a run of `flow` in state running, held by this process: if the
 * process dies before mf_run_finish(), readers see the run as crashed.
 * The run record is written to the datastore and the index.
 * @return MF_OK, MF_EINVAL (bad flow name, run id, tag), MF_EEXISTS (run id
 *         taken), MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_create(mf_run **out, mf_engine *engine, const char *flow,
                             const mf_run_options *opts);

/**
 * Open an existing run. `run_id` may also be "latest" (newest run) or
 * "latest_successful".
 * @return MF_OK, MF_ENOTFOUND, MF_EINVAL, MF_EIO, MF_ECORRUPT, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_open(mf_run **out, mf_engine *engine, const char *flow,
                           const char *run_id);

/**
 * Finish a run created by this process with MF_RUN_SUCCEEDED or
 * MF_RUN_FAILED, and release its liveness lock.
 * @return MF_OK, MF_EINVAL, MF_ESTATE (not created by this handle or
 *         already finished), MF_EIO.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_finish(mf_run *run, int32_t status);

/** Free a run handle; accepts NULL. A created, unfinished run is left to
 * readers as crashed once this process exits. @since 0.1 */
MF_EXTERN(void) mf_run_free(mf_run *run);

/* The strings below are borrowed and valid until mf_run_free(). */
MF_EXTERN(const char *) mf_run_flow(const mf_run *run);   /**< borrowed */
MF_EXTERN(const char *) mf_run_id(const mf_run *run);     /**< borrowed */
MF_EXTERN(const char *) mf_run_user(const mf_run *run);   /**< borrowed */
/** The origin run id, or NULL. Borrowed. */
MF_EXTERN(const char *) mf_run_origin(const mf_run *run);
/** Creation and finish times, microseconds since the epoch (0 if unfinished). */
MF_EXTERN(int64_t) mf_run_created_at(const mf_run *run);
MF_EXTERN(int64_t) mf_run_finished_at(const mf_run *run);

/**
 * The run's current status (mf_run_status), read from the index; a run
 * marked running whose runtime is gone reads as MF_RUN_CRASHED.
 * @return a status >= 0, or MF_EIO, MF_ECORRUPT.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_status_get(mf_run *run);

/**
 * A parameter value into `out`.
 * @return MF_OK, MF_ENOTFOUND, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_param(const mf_run *run, const char *name, mf_buf *out);

/** Parameter names, in the order given at creation. @since 0.1 */
MF_EXTERN(int) mf_run_params(const mf_run *run, mf_strlist **out);

/**
 * Tags of a run: system tags first ("user:<name>", "runtime:...",
 * "metaflow_version:..."), then user tags, sorted.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_tags(mf_run *run, mf_strlist **out);

/**
 * Add and remove user tags in one atomic update (either list may be empty).
 * System tags cannot be removed.
 * @return MF_OK, MF_EINVAL (bad tag or a system tag), MF_EIO.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_tags_update(mf_run *run, const char *const *add, size_t nadd,
                                  const char *const *remove, size_t nremove);

/** mf_run_list() flags. */
#define MF_LIST_SUCCESSFUL 0x1u /**< only runs that succeeded */

/**
 * Run ids of a flow, newest first, that carry every tag in `tags`.
 * @return MF_OK (an empty list if the flow has no runs), MF_EINVAL,
 *         MF_EIO, MF_ECORRUPT, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_run_list(mf_strlist **out, mf_engine *engine, const char *flow,
                           const char *const *tags, size_t ntags, uint32_t flags);

/** Step names that have tasks in the run, in order of first task. @since 0.1 */
MF_EXTERN(int) mf_run_steps(mf_run *run, mf_strlist **out);

/** Task ids of a step of the run, in the order their first attempts were
 *  committed (parallel tasks finish in any order; the runtime's ids are
 *  integers that grow in scheduling order). @since 0.1 */
MF_EXTERN(int) mf_run_tasks(mf_run *run, const char *step, mf_strlist **out);

/* ------------------------------------------------------------------ tasks */

/** Task states. Values are pinned. */
typedef enum mf_task_status {
    MF_TASK_RUNNING = 0,
    MF_TASK_SUCCEEDED = 1,
    MF_TASK_FAILED = 2
} mf_task_status;

#define MF_TASK_OPTIONS_VERSION 1

typedef struct mf_task_options {
    unsigned int version;     /**< MF_TASK_OPTIONS_VERSION */
    const char *task_id;      /**< NULL: the run's next integer id */
    uint32_t attempt;         /**< retry count, 0 first */
    /** Foreach stack, outermost first: index, number of splits and a short
     *  text of the value at each level. */
    const uint32_t *foreach_index;
    const uint32_t *foreach_nsplits;
    const char *const *foreach_value;
    size_t foreach_depth;
    /** Pathspecs ("run/step/task") of the parent tasks. */
    const char *const *input_paths;
    size_t ninputs;
} mf_task_options;

#define MF_TASK_OPTIONS_INIT { MF_TASK_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, 0, NULL, 0 }

/** @return MF_OK, MF_EVERSION. @since 0.1 */
MF_EXTERN(int) mf_task_options_init(mf_task_options *opts, unsigned int version);

/**
 * Start a task attempt of `step` in `run` for writing artifacts.
 * Nothing is visible to readers until mf_task_commit().
 * @return MF_OK, MF_EINVAL (bad step name or task id), MF_EEXISTS (that
 *         attempt was already committed), MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_create(mf_task **out, mf_run *run, const char *step,
                              const mf_task_options *opts);

/** mf_task_put() flags. */
#define MF_PUT_RAW 0x1u      /**< never compress (so the value can be mapped) */
#define MF_PUT_NO_INLINE 0x2u /**< store as a blob even when small */

/**
 * Store an artifact of the task: named bytes with an encoding tag the
 * library does not interpret ("pickle5", "msgpack", "raw", "json", ...).
 * The bytes go to the content-addressed store now; the name becomes
 * visible with mf_task_commit(). Putting a name again replaces it.
 * @param name [A-Za-z_][A-Za-z0-9_]*, at most 255 bytes.
 * @param encoding 1 to 63 printable ASCII bytes.
 * @return MF_OK, MF_EINVAL (naming the artifact), MF_ESTATE (task
 *         committed or read-only), MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_put(mf_task *task, const char *name, const char *encoding,
                           const void *data, uint64_t len, uint32_t flags);

/**
 * Store an artifact made of several parts: part 0 is the main value,
 * parts 1.. are out-of-band buffers (pickle protocol 5). Every part is
 * content-addressed on its own; out-of-band parts are stored raw so they
 * can be mapped zero-copy.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_put_parts(mf_task *task, const char *name,
                                 const char *encoding, const void *const *parts,
                                 const uint64_t *lens, uint32_t nparts,
                                 uint32_t flags);

/**
 * Read callback of mf_task_put_stream(): fill up to `cap` bytes of `buf`
 * (`cap` > 0) with the next bytes of the value.
 * @param[out] buf     where to put the bytes; valid only during the call.
 * @param[in]  payload the `payload` given to mf_task_put_stream().
 * @return the count of bytes put in `buf` (1 .. `cap`; fewer than `cap` is
 *         fine), 0 at the end of the value, or a negative value to abort
 *         (the put then fails with MF_EUSER).
 * @since 0.1
 */
typedef int64_t (*mf_read_cb)(void *buf, size_t cap, void *payload);

/**
 * Store an artifact whose bytes come from a callback, for values larger
 * than memory. The value is cut, hashed, compressed and written while it is
 * read, by the same pool of threads as mf_task_put(), through a window of
 * about (threads + 2) x 4 MiB, at most 40 MiB, whatever the value's size
 * (plus the threads' compression buffers and the value's chunk list, about
 * 50 bytes per MiB). The result is exactly that of mf_task_put() with the
 * same bytes and flags: the same content key, blobs and manifest entry
 * (values under 1 KiB are inlined unless MF_PUT_NO_INLINE).
 * @param[in] name     as mf_task_put().
 * @param[in] encoding as mf_task_put().
 * @param[in] read     called on the calling thread, in order, until it
 *                     returns 0 or a negative value, never after that.
 *                     It may call libmetaflow, but not on `task`.
 * @param[in] payload  passed to `read` as is.
 * @param[in] flags    MF_PUT_RAW, MF_PUT_NO_INLINE, as mf_task_put().
 * @return MF_OK, MF_EINVAL (naming the artifact: bad name or encoding, NULL
 *         `read`, or `read` returned more than `cap`), MF_ESTATE (task
 *         committed or read-only), MF_EUSER (`read` returned a negative
 *         value), MF_EIO, MF_ENOMEM.
 * @note On failure nothing visible changes: the name is not added (an
 *       earlier put of it stays). Blobs already written are left to mf_gc().
 * @since 0.1
 */
MF_EXTERN(int) mf_task_put_stream(mf_task *task, const char *name, const char *encoding,
                                  mf_read_cb read, void *payload, uint32_t flags);

/**
 * Commit the attempt: write its manifest atomically (status, artifacts)
 * and record it in the index. After this the task is read-only.
 * @param status MF_TASK_SUCCEEDED or MF_TASK_FAILED.
 * @return MF_OK, MF_EINVAL, MF_ESTATE, MF_EEXISTS (another writer committed
 *         the same attempt), MF_EIO.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_commit(mf_task *task, int32_t status);

/**
 * Open a committed task for reading. `pathspec` is "Flow/run/step/task"
 * (the latest attempt) or "Flow/run/step/task/attempt".
 * @return MF_OK, MF_EINVAL, MF_ENOTFOUND, MF_ECORRUPT (manifest damaged),
 *         MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_open(mf_task **out, mf_engine *engine, const char *pathspec);

/** Free a task; accepts NULL. An uncommitted task leaves nothing visible. @since 0.1 */
MF_EXTERN(void) mf_task_free(mf_task *task);

MF_EXTERN(const char *) mf_task_pathspec(const mf_task *task); /**< "Flow/run/step/task", borrowed */
MF_EXTERN(const char *) mf_task_id(const mf_task *task);       /**< borrowed */
MF_EXTERN(const char *) mf_task_step(const mf_task *task);     /**< borrowed */
MF_EXTERN(uint32_t) mf_task_attempt(const mf_task *task);
/** mf_task_status of a committed task, MF_TASK_RUNNING while writing. */
MF_EXTERN(int) mf_task_status_get(const mf_task *task);

/** Artifact names of the task, sorted; names starting with '_' only with
 *  MF_LIST_PRIVATE. @since 0.1 */
#define MF_LIST_PRIVATE 0x2u
MF_EXTERN(int) mf_task_artifacts(const mf_task *task, uint32_t flags, mf_strlist **out);

/**
 * Open an artifact of a task (committed, or put earlier in this one).
 * @return MF_OK, MF_ENOTFOUND (naming artifact and task), MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_task_artifact(mf_artifact **out, mf_task *task, const char *name);

/* -------------------------------------------------------------- artifacts */

/** Free an artifact; accepts NULL. Unmaps every pointer from mf_artifact_map(). @since 0.1 */
MF_EXTERN(void) mf_artifact_free(mf_artifact *artifact);

MF_EXTERN(const char *) mf_artifact_name(const mf_artifact *artifact);     /**< borrowed */
MF_EXTERN(const char *) mf_artifact_encoding(const mf_artifact *artifact); /**< borrowed */
/** Hex content key of part 0: identical bytes, identical key. The SHA-256 of
 *  the bytes for values up to 4 MiB; larger values are keyed by their chunk
 *  list (docs/datastore-format.md). Borrowed. */
MF_EXTERN(const char *) mf_artifact_key(const mf_artifact *artifact);
/** Number of parts (1 + out-of-band buffers). */
MF_EXTERN(uint32_t) mf_artifact_part_count(const mf_artifact *artifact);
/** Size in bytes of a part (0 if out of range). */
MF_EXTERN(uint64_t) mf_artifact_part_size(const mf_artifact *artifact, uint32_t part);
/** Size of part 0. */
MF_EXTERN(uint64_t) mf_artifact_size(const mf_artifact *artifact);

/**
 * Copy a whole part into `out`, verifying its checksum.
 * @return MF_OK, MF_ERANGE (no such part), MF_ECORRUPT (naming the
 *         artifact), MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_artifact_read(mf_artifact *artifact, uint32_t part, mf_buf *out);

/**
 * Copy bytes [off, off + len) of a part (clamped to its end) into `out`.
 * @return MF_OK, MF_ERANGE (off past the end), MF_ECORRUPT, MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_artifact_read_range(mf_artifact *artifact, uint32_t part,
                                      uint64_t off, uint64_t len, mf_buf *out);

/**
 * Write callback of mf_artifact_read_stream(): consume `len` bytes (> 0).
 * @param[in] buf     the bytes; valid only during the call.
 * @param[in] payload the `payload` given to mf_artifact_read_stream().
 * @return 0 to go on, non-zero to stop (the read then fails with MF_EUSER).
 * @since 0.1
 */
typedef int (*mf_write_cb)(const void *buf, size_t len, void *payload);

/**
 * Write bytes [off, off + len) of a part to a callback, in order, without
 * holding the part in memory: the chunks of a large value are fetched and
 * verified in parallel a few at a time (at most about (threads + 2) x 4 MiB
 * in flight) whatever its size. Every byte passed to `write` has been
 * checked against its blob's checksum, as by mf_artifact_read(); the chunks
 * at the edges of a range are read whole for that.
 * @param[in] off     first byte.
 * @param[in] len     byte count, clamped to the part's end; UINT64_MAX
 *                    (MF_DS_TO_END) for the rest of the part.
 * @param[in] write   called on the calling thread with consecutive pieces
 *                    of the range: one call for an inline or single-blob
 *                    value, one per chunk (at most 4 MiB as this library
 *                    writes them) for a chunked one; never for an empty
 *                    range. It may call libmetaflow, but not on `artifact`.
 * @param[in] payload passed to `write` as is.
 * @return MF_OK, MF_EINVAL (NULL artifact or `write`), MF_ERANGE (no such
 *         part, or `off` past the end), MF_EUSER (`write` returned
 *         non-zero), MF_ECORRUPT (naming the artifact), MF_EIO, MF_ENOMEM.
 * @note A failure can come after part of the range was written.
 * @since 0.1
 */
MF_EXTERN(int) mf_artifact_read_stream(mf_artifact *artifact, uint32_t part,
                                       uint64_t off, uint64_t len,
                                       mf_write_cb write, void *payload);

/**
 * Borrow a part's bytes without copying: one contiguous, read-only mapping.
 * On a filesystem datastore raw blobs (even chunked ones) are mapped from
 * their files; other values are loaded once into memory owned by the
 * artifact. Raw mapped blobs are not checksummed here (use
 * mf_artifact_read() to verify).
 * @param[out] ptr the bytes; valid until mf_artifact_free(). Writing
 *             through it is undefined (the pages are read-only).
 * @return MF_OK, MF_ERANGE, MF_ECORRUPT, MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_artifact_map(mf_artifact *artifact, uint32_t part,
                               const void **ptr, uint64_t *len);

/** 1 when mf_artifact_map() of the part maps files without copying, else 0. @since 0.1 */
MF_EXTERN(int) mf_artifact_is_zero_copy(mf_artifact *artifact, uint32_t part);

/* --------------------------------------------------------- maintenance */

#define MF_GC_OPTIONS_VERSION 1
#define MF_GC_DRY_RUN 0x1u

typedef struct mf_gc_options {
    unsigned int version;  /**< MF_GC_OPTIONS_VERSION */
    int64_t grace_seconds; /**< blobs younger than this are kept; < 0: 3600 */
    uint32_t flags;        /**< MF_GC_* */
} mf_gc_options;

#define MF_GC_OPTIONS_INIT { MF_GC_OPTIONS_VERSION, -1, 0 }

MF_EXTERN(int) mf_gc_options_init(mf_gc_options *opts, unsigned int version);

#define MF_GC_STATS_VERSION 1

/** Filled by mf_gc(); set `version` before the call. */
typedef struct mf_gc_stats {
    unsigned int version;
    uint64_t manifests;    /**< manifests read in the mark phase */
    uint64_t blobs;        /**< blobs seen in the sweep */
    uint64_t live;         /**< blobs referenced */
    uint64_t young;        /**< unreferenced but within the grace period */
    uint64_t swept;        /**< blobs deleted (or that would be, dry run) */
    uint64_t bytes_swept;
} mf_gc_stats;

/**
 * Garbage-collect the content store: mark every blob reachable from a
 * manifest, then delete unreferenced blobs older than the grace period.
 * @param stats may be NULL.
 * @return MF_OK, MF_EVERSION, MF_ECORRUPT (a manifest cannot be read: GC
 *         stops without deleting anything), MF_EIO.
 * @since 0.1
 */
MF_EXTERN(int) mf_gc(mf_engine *engine, const mf_gc_options *opts, mf_gc_stats *stats);

/**
 * Rebuild the metadata index from the run records and manifests in the
 * datastore (the source of truth).
 * @return MF_OK, MF_ECORRUPT, MF_EIO, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_index_rebuild(mf_engine *engine);

/**
 * Bring the index up to date with the datastore. For a remote datastore
 * (S3) the index is a local cache: this reads the runs that are new or not
 * finished in the index from the datastore, so runs and tasks other
 * machines wrote become visible. A read-only engine on a remote datastore
 * does this when it opens. For "fs" the index is always current: MF_OK.
 * @return MF_OK, MF_ECORRUPT, MF_EIO, MF_EACCESS, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_index_refresh(mf_engine *engine);

/**
 * Verify every blob in the store (headers, checksums, chunk lists).
 * @param bad_out optional: keys of the damaged blobs.
 * @return MF_OK (all good), MF_ECORRUPT (some damaged), MF_EIO.
 * @since 0.1
 */
MF_EXTERN(int) mf_store_verify(mf_engine *engine, mf_strlist **bad_out);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_ENGINE_H */
