/*
 * libmetaflow - executor backend interface (for backend authors).
 *
 * An executor runs task attempts that the runtime hands it as
 * mf_task_spec (metaflow/runtime.h) and reports what becomes of them.
 * The local executor (mf_executor_local_new()) implements this; the Batch
 * and Kubernetes executors use the same vtable.
 *
 * Stability: this header is stable within a minor release series (0.1.x);
 * the vtable grows only by appending methods under a new version number.
 *
 * Threading: the runtime calls every method from the one thread that
 * drives the run (mf_run_poll()), never concurrently for one executor;
 * `poll` delivers events through its callback on that same thread. An
 * executor may run work on threads of its own.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_SYS_EXECUTOR_H
#define METAFLOW_SYS_EXECUTOR_H

#include "../runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What an executor can do (`capabilities`). */
#define MF_EXEC_CAP_COMMAND 0x1u  /**< runs spec->argv */
#define MF_EXEC_CAP_INPROC 0x2u   /**< runs in-process step functions */
#define MF_EXEC_CAP_LAUNCHER 0x4u /**< starts tasks through a host launcher */
#define MF_EXEC_CAP_REMOTE 0x8u   /**< tasks run on other machines (reach the
                                       datastore themselves; no local pids) */
#define MF_EXEC_CAP_LOGS 0x10u    /**< reports task output (MF_EXEC_OUTPUT) */

/** Event types. Values are pinned. */
typedef enum mf_exec_event_type {
    MF_EXEC_STARTED = 1, /**< the attempt is running (pid known for local) */
    MF_EXEC_OUTPUT = 2,  /**< one line of output */
    MF_EXEC_EXITED = 3   /**< the attempt ended; the last event of a handle */
} mf_exec_event_type;

typedef struct mf_exec_event {
    unsigned int version;    /**< 1 */
    int32_t type;            /**< mf_exec_event_type */
    uint64_t handle;         /**< from `submit` */
    /* MF_EXEC_STARTED */
    int64_t pid;             /**< process id, or 0 (in-process, remote) */
    /* MF_EXEC_OUTPUT: one line without its newline; `data` is borrowed. */
    int32_t stream;          /**< mf_log_stream */
    int64_t timestamp_us;
    const char *data;
    size_t len;
    /* MF_EXEC_EXITED */
    int32_t exit_code;       /**< 0 success; -1 killed by a signal or unknown */
    int32_t signal;          /**< terminating signal, or 0 */
    uint32_t timed_out;      /**< 1 when the executor killed it for its timeout */
    const char *message;     /**< why it failed (borrowed), or NULL */
} mf_exec_event;

/** Receives events inside `poll`. */
typedef void (*mf_exec_event_cb)(const mf_exec_event *event, void *payload);

#define MF_EXECUTOR_VERSION 1

/** Embed as the first member of your executor. */
struct mf_executor {
    unsigned int version; /**< MF_EXECUTOR_VERSION */

    /** Free the executor. Called once, by mf_executor_free(); no task is
     *  running then (the runtime cancelled and drained them). */
    void (*free)(mf_executor *ex);

    /** MF_EXEC_CAP_* bits. */
    uint32_t (*capabilities)(mf_executor *ex);

    /**
     * Start one attempt. Copy what you keep of `spec`. `*handle` (never 0)
     * names it in events and `cancel`. An attempt that cannot start may
     * return an error (the runtime fails the attempt with its message) or
     * report MF_EXEC_EXITED later.
     */
    int (*submit)(mf_executor *ex, const mf_task_spec *spec, uint64_t *handle);

    /**
     * Deliver pending events through `cb`, waiting at most `timeout_ms`
     * for the first (0: do not wait; < 0: until one comes). Enforce
     * spec->timeout_us here or remotely.
     * @return number of events delivered, or a negative MF_E* code.
     */
    int (*poll)(mf_executor *ex, int timeout_ms, mf_exec_event_cb cb, void *payload);

    /** Stop an attempt (SIGTERM, then SIGKILL after a grace period for
     *  local processes). Its MF_EXEC_EXITED event still follows. */
    int (*cancel)(mf_executor *ex, uint64_t handle);

    /** Optional (may be NULL): a descriptor readable when `poll` has
     *  events, for the host's event loop. */
    int (*fd)(mf_executor *ex);
};

/** Static initializer: version set, every method NULL. */
#define MF_EXECUTOR_INIT { MF_EXECUTOR_VERSION, NULL, NULL, NULL, NULL, NULL, NULL }

/**
 * Initialize an executor struct: zero it and set its version.
 * @return MF_OK, MF_EVERSION (unknown version), MF_EINVAL.
 */
MF_EXTERN(int) mf_executor_init(mf_executor *ex, unsigned int version);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_SYS_EXECUTOR_H */
