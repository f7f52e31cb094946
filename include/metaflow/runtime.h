/*
 * libmetaflow - running flows.
 *
 * mf_run_start() runs a validated flow to the end the way Metaflow's
 * runtime does: it schedules every task (linear, split, foreach, join,
 * switch), hands each to an executor, retries, times out and catches
 * failures, captures and persists logs, and records every task in the
 * index. mf_run_resume() re-runs a failed run, cloning what succeeded.
 *
 * How a step runs is the executor's business (metaflow/sys/executor.h for
 * backend authors). The local executor made by mf_executor_local_new()
 * runs a step (a) as an in-process C function registered with
 * mf_executor_local_set_step(), else (b) through a host launcher set with
 * mf_executor_local_set_launcher(), else (c) as the run's command (argv
 * template) in a child process of its own process group.
 *
 * Threading: a running mf_run is driven by one thread at a time (the one
 * calling mf_run_poll() or mf_run_wait()); callbacks are called on that
 * thread. In-process step functions run on worker threads, each with its
 * own mf_task.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_RUNTIME_H
#define METAFLOW_RUNTIME_H

#include "common.h"
#include "flow.h"
#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_executor mf_executor;

/* ------------------------------------------------------------ task specs */

#define MF_TASK_SPEC_VERSION 1

/**
 * Everything an executor needs to run one task attempt. Built by the
 * runtime; every pointer is borrowed and valid only during the call that
 * receives the spec (an executor copies what it keeps).
 */
typedef struct mf_task_spec {
    unsigned int version;        /**< MF_TASK_SPEC_VERSION */
    const char *flow;
    const char *run_id;
    const char *step;
    const char *task_id;
    uint32_t attempt;            /**< 0 for the first try */
    uint32_t max_attempts;       /**< tries the step is allowed in all */
    const char *pathspec;        /**< "Flow/run/step/task/attempt" */
    const char *origin_run_id;   /**< set in resumed runs, else NULL */
    /** Foreach stack, outermost first. */
    const uint32_t *foreach_index;
    const uint32_t *foreach_nsplits;
    const char *const *foreach_value;
    size_t foreach_depth;
    /** Parent tasks, "run/step/task", in the order the step sees them. */
    const char *const *input_paths;
    size_t ninputs;
    uint32_t is_join;            /**< 1 for a join step */
    /** Command to run (argv[0] searched in PATH), template expanded. */
    const char *const *argv;
    size_t argc;
    /** Environment entries "NAME=value" the task gets on top of the
     *  runtime's own environment; they include the MF_TASK_* variables of
     *  docs/task-protocol.md. */
    const char *const *env;
    size_t nenv;
    double cpu;                  /**< resources.cpu (default 1) */
    uint64_t memory_mb;          /**< resources.memory (default 4096) */
    uint32_t gpu;                /**< resources.gpu (default 0) */
    int64_t timeout_us;          /**< wall clock per attempt; 0: none */
} mf_task_spec;

/* -------------------------------------------------------- local executor */

/**
 * An in-process step: fill `task` with mf_task_put() and return 0. A
 * non-zero return fails the attempt with that value as its exit code
 * (202: do not retry); the thread's mf_error_last() message, when set, is
 * kept as the failure text. Returning without committing is the norm: the
 * runtime commits. Runs on a worker thread; never call exit() here.
 */
typedef int (*mf_step_fn)(mf_task *task, void *payload);

/**
 * A host launcher: start the task its own way (e.g. a fork server) with
 * stdout and stderr on the two given descriptors (the callee duplicates
 * what it keeps; the runtime closes them after the call), and return its
 * process id in `*pid`. The process should be a process group leader, so
 * that timeouts and cancellation reach its children. Return 0, or a
 * negative MF_E* code (the attempt then fails with the error message).
 */
typedef int (*mf_launch_fn)(const mf_task_spec *spec, int stdout_fd, int stderr_fd,
                            int64_t *pid, void *payload);

#define MF_LOCAL_OPTIONS_VERSION 1

typedef struct mf_local_options {
    unsigned int version;     /**< MF_LOCAL_OPTIONS_VERSION */
    uint32_t threads;         /**< worker threads for C steps; 0: CPU count */
    int64_t kill_grace_us;    /**< SIGTERM to SIGKILL delay; 0: 5 s */
} mf_local_options;

#define MF_LOCAL_OPTIONS_INIT { MF_LOCAL_OPTIONS_VERSION, 0, 0 }

/** @return MF_OK, MF_EVERSION. */
MF_EXTERN(int) mf_local_options_init(mf_local_options *opts, unsigned int version);

/**
 * Create the local executor for `engine` (which must outlive it).
 * @return MF_OK, MF_EVERSION, MF_EINVAL, MF_ENOMEM, MF_EIO.
 */
MF_EXTERN(int) mf_executor_local_new(mf_executor **out, mf_engine *engine,
                                     const mf_local_options *opts);

/**
 * Run `step` as the in-process function `fn` (NULL removes it).
 * @return MF_OK, MF_EINVAL, MF_ENOTSUP (not the local executor), MF_ENOMEM.
 */
MF_EXTERN(int) mf_executor_local_set_step(mf_executor *executor, const char *step,
                                          mf_step_fn fn, void *payload);

/** Start command tasks through `fn` instead of fork/exec (NULL: fork/exec).
 *  @return MF_OK, MF_EINVAL, MF_ENOTSUP. */
MF_EXTERN(int) mf_executor_local_set_launcher(mf_executor *executor, mf_launch_fn fn,
                                              void *payload);

/** Free an executor; accepts NULL. Not while a run uses it. */
MF_EXTERN(void) mf_executor_free(mf_executor *executor);

/* ------------------------------------------------------------ running */

/** Output streams of a task. */
typedef enum mf_log_stream {
    MF_LOG_STDOUT = 1,
    MF_LOG_STDERR = 2
} mf_log_stream;

/** One line of task output as it arrives. All pointers are borrowed for
 *  the call. `text` has no trailing newline. */
typedef struct mf_log_line {
    unsigned int version;      /**< 1 */
    const char *step;
    const char *task_id;
    uint32_t attempt;
    int32_t stream;            /**< mf_log_stream */
    int64_t timestamp_us;      /**< when the line was read */
    const char *text;
    size_t len;
} mf_log_line;

typedef void (*mf_log_cb)(const mf_log_line *line, void *payload);

/** What happened to a task (mf_run_event.type). Values are pinned. */
typedef enum mf_run_event_type {
    MF_EVENT_TASK_STARTED = 1,    /**< an attempt was handed to the executor */
    MF_EVENT_TASK_SUCCEEDED = 2,  /**< an attempt succeeded */
    MF_EVENT_TASK_FAILED = 3,     /**< an attempt failed (a retry may follow) */
    MF_EVENT_TASK_RETRYING = 4,   /**< a new attempt is scheduled */
    MF_EVENT_TASK_CAUGHT = 5,     /**< the last attempt failed; @catch stored it */
    MF_EVENT_TASK_CLONED = 6,     /**< resume: taken over from the origin run */
    MF_EVENT_RUN_FINISHED = 7     /**< the run reached its final status */
} mf_run_event_type;

typedef struct mf_run_event {
    unsigned int version;       /**< 1 */
    int32_t type;               /**< mf_run_event_type */
    const char *step;           /**< NULL for MF_EVENT_RUN_FINISHED */
    const char *task_id;
    uint32_t attempt;
    int32_t exit_code;          /**< -1 when killed by a signal or unknown */
    int32_t signal;             /**< 0 if none */
    int32_t run_status;         /**< mf_run_status, for MF_EVENT_RUN_FINISHED */
    const char *message;        /**< failure text, or NULL */
} mf_run_event;

typedef void (*mf_run_event_cb)(const mf_run_event *event, void *payload);

#define MF_START_OPTIONS_VERSION 1

typedef struct mf_start_options {
    unsigned int version;          /**< MF_START_OPTIONS_VERSION */
    const char *run_id;            /**< NULL: a new Metaflow-style id */
    const char *user;              /**< NULL: $METAFLOW_USER, $USER */
    const char *const *tags;
    size_t ntags;
    const char *const *param_names;
    const char *const *param_values;
    size_t nparams;
    uint32_t max_workers;          /**< tasks at once; 0: 16 */
    uint32_t max_num_splits;       /**< widest foreach; 0: 100 */
    uint64_t max_log_size;         /**< bytes per stream per attempt; 0: 10 MiB */
    /** Executor (borrowed; must outlive the run; serves one run at a
     *  time). NULL: a local executor with default options, owned by the
     *  run. */
    mf_executor *executor;
    /** Command template of command tasks; "{step}", "{run_id}",
     *  "{task_id}", "{retry_count}", "{max_user_code_retries}",
     *  "{input_paths}", "{split_index}", "{flow}" and "{pathspec}" are
     *  replaced in each argument. A step attribute "command" (a /bin/sh
     *  -c string, same placeholders) overrides it per step. */
    const char *const *command;
    size_t ncommand;
    mf_log_cb log_cb;              /**< live task output, or NULL */
    void *log_payload;
    mf_run_event_cb event_cb;      /**< task and run events, or NULL */
    void *event_payload;
    /** Resume only: the step from which everything is re-run (NULL: only
     *  what failed or did not run). */
    const char *resume_step;
} mf_start_options;

#define MF_START_OPTIONS_INIT \
    { MF_START_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, 0, 0, 0, 0, \
      NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL }

/** @return MF_OK, MF_EVERSION. */
MF_EXTERN(int) mf_start_options_init(mf_start_options *opts, unsigned int version);

/**
 * Start a new run of `flow` (validated here if it is not) and schedule
 * its `start` task. Returns at once; drive the run with mf_run_poll() or
 * mf_run_wait(). The flow is copied.
 * @return MF_OK, MF_EGRAPH (naming the problem), MF_EINVAL, MF_EVERSION,
 *         MF_ESTATE (read-only engine), MF_EIO, MF_ENOMEM.
 */
MF_EXTERN(int) mf_run_start(mf_run **out, mf_engine *engine, const mf_flow *flow,
                            const mf_start_options *opts);

/**
 * Start a new run that resumes `origin_run_id` of the same flow: every
 * task that succeeded there is cloned by reference (no data copied), in
 * scheduling order, unless it is at or after `opts->resume_step` or one
 * of its inputs ran again; the rest run again. Parameters come from the
 * origin run.
 * @return as mf_run_start(), and MF_ENOTFOUND for an unknown origin run,
 *         MF_EBUSY when the origin run is still running.
 */
MF_EXTERN(int) mf_run_resume(mf_run **out, mf_engine *engine, const mf_flow *flow,
                             const char *origin_run_id, const mf_start_options *opts);

/**
 * Make progress: handle what the executor reported, start ready tasks,
 * waiting at most `timeout_ms` (0: do not wait; < 0: until something
 * happens).
 * @return 1 while the run goes on, 0 once it has finished (then
 *         mf_run_status_get() is final), or a negative MF_E* code.
 */
MF_EXTERN(int) mf_run_poll(mf_run *run, int timeout_ms);

/**
 * A descriptor that is readable when mf_run_poll() has work (task output
 * or exits, results made durable), for hosts with their own event loop;
 * -1 for a run this process does not drive, a finished run, or an
 * executor without a descriptor. Timeouts and retry delays are timers, not
 * descriptors: wait with a timeout of at most 50 ms while tasks run.
 * Borrowed: valid until the run finishes or is freed.
 */
MF_EXTERN(int) mf_run_fd(const mf_run *run);

/**
 * Poll until the run finishes.
 * @return MF_OK when it succeeded; MF_EFAILED when it failed, with
 *         mf_error_last() naming the step, task, attempt, exit code or
 *         signal and the last lines of that task's log; other MF_E* codes
 *         when the runtime itself failed.
 */
MF_EXTERN(int) mf_run_wait(mf_run *run);

/**
 * Stop a running run: kill its tasks (SIGTERM, then SIGKILL) and finish
 * it as failed. mf_run_free() of a running run does the same.
 * @return MF_OK, MF_ESTATE (not running in this process).
 */
MF_EXTERN(int) mf_run_cancel(mf_run *run);

/**
 * Why the run failed, as mf_run_wait() reported it; NULL while running
 * or after success. Borrowed: valid until the next call on the run.
 */
MF_EXTERN(const char *) mf_run_failure(const mf_run *run);

/* ------------------------------------------------------- inside a task */

/**
 * In a task process started by the runtime: open the engine and the task
 * described by the MF_TASK_* environment variables (docs/task-protocol.md)
 * for writing. Both are the caller's to free (task first).
 * @return MF_OK, MF_ENOTFOUND (not in a task process), MF_EINVAL, and the
 *         errors of mf_engine_open() and mf_task_create().
 */
MF_EXTERN(int) mf_task_from_env(mf_task **task_out, mf_engine **engine_out);

/** Number of parent tasks of a task being written or read. */
MF_EXTERN(size_t) mf_task_input_count(const mf_task *task);

/** The i-th parent as "run/step/task", NULL when out of range. Borrowed. */
MF_EXTERN(const char *) mf_task_input(const mf_task *task, size_t i);

/** Open the i-th parent task for reading (mf_task_free() it).
 *  @return MF_OK, MF_ERANGE, and the errors of mf_task_open(). */
MF_EXTERN(int) mf_task_input_open(mf_task **out, mf_task *task, size_t i);

/** Foreach depth of the task, and the index / number of splits / value
 *  text at a level (0 outermost). Out of range: 0, 0, NULL. */
MF_EXTERN(size_t) mf_task_foreach_depth(const mf_task *task);
MF_EXTERN(uint32_t) mf_task_foreach_index(const mf_task *task, size_t level);
MF_EXTERN(uint32_t) mf_task_foreach_nsplits(const mf_task *task, size_t level);
MF_EXTERN(const char *) mf_task_foreach_value(const mf_task *task, size_t level);

/**
 * Put artifact `name` of the committed task `source` into the writable
 * `task` by reference: the same content, nothing read or copied (joins
 * merging their inputs' artifacts).
 * @return MF_OK, MF_EINVAL, MF_ENOTFOUND (source has no such artifact),
 *         MF_ESTATE (task not writable or source not committed), MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_put_ref(mf_task *task, const char *name, const mf_task *source);

/**
 * For a foreach step: the number of items of its foreach variable, and
 * optionally a short text of each (`values` may be NULL; each is cut to
 * 64 bytes). The runtime starts one child task per item.
 * @return MF_OK, MF_EINVAL, MF_ESTATE (not writable), MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_set_foreach(mf_task *task, uint64_t count,
                                   const char *const *values);

/**
 * For a switch step: the value of its condition variable; the runtime
 * follows the case equal to it.
 * @return MF_OK, MF_EINVAL, MF_ESTATE, MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_set_switch(mf_task *task, const char *case_value);

/**
 * Append text to the task's own log (in-process steps, whose stdout is
 * the host's). Lines are timestamped and persisted at commit.
 * @return MF_OK, MF_EINVAL, MF_ESTATE, MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_log_write(mf_task *task, int32_t stream, const char *text,
                                 size_t len);

/** mf_task_log_read() flags. */
#define MF_LOG_TIMESTAMPS 0x1u /**< each line starts with its ISO 8601 UTC time */

/**
 * The persisted log of the task's attempt (the one the handle holds) for
 * one stream, lines joined by '\n'. A task that logged nothing reads as
 * empty.
 * @return MF_OK, MF_EINVAL, MF_ECORRUPT, MF_EIO, MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_log_read(mf_task *task, int32_t stream, uint32_t flags,
                                mf_buf *out);

/**
 * End a task as failed, saying why: `text` (an exception and its
 * traceback, say) is kept with the attempt, where mf_task_failure() and the
 * runtime's failure message find it. Commits the attempt with
 * MF_TASK_FAILED; its artifacts are not kept.
 * @return MF_OK, MF_EINVAL, MF_ESTATE (not writable), and the errors of
 *         mf_task_commit().
 */
MF_EXTERN(int) mf_task_fail(mf_task *task, const char *text);

/**
 * For a committed task: its failure text (exception, exit code or
 * signal, log tail) when it failed or was caught; MF_ENOTFOUND when it
 * has none. For a task the runtime cloned: origin pathspec with
 * mf_task_origin().
 * @return MF_OK, MF_ENOTFOUND, MF_ENOMEM.
 */
MF_EXTERN(int) mf_task_failure(const mf_task *task, mf_buf *out);

/** "run/step/task" of the origin task a resumed task was cloned from,
 *  NULL otherwise. Borrowed. */
MF_EXTERN(const char *) mf_task_origin(const mf_task *task);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_RUNTIME_H */
