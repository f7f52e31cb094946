/*
 * Internal: the runtime (lib/runtime). One mf__rt drives one run: a table
 * of tasks, a ready queue, joins waiting for their inputs, retries waiting
 * for their delay, and the executor's events.
 */
#ifndef MF_RT_H
#define MF_RT_H

#include "api/api.h"
#include "executor/executor.h"
#include "graph/graph.h"

/* One level of split nesting of a task: which task opened it, at which
 * branch (static split) or index (foreach). */
typedef struct rt_frame {
    size_t split_task;   /* index in rt->tasks */
    uint32_t index;
    uint32_t n;
    bool foreach;
    char *value;         /* foreach: short text of the item ("" if unknown) */
} rt_frame;

enum rt_state {
    T_NEW = 0,     /* made, not queued */
    T_WAITING,     /* retry delay */
    T_READY,
    T_RUNNING,
    T_DONE,        /* succeeded (or caught, or cloned) */
    T_FAILED       /* failed for good */
};

typedef struct rt_task {
    size_t step;
    char *task_id;
    uint32_t attempt;
    uint32_t max_attempts;
    int state;
    size_t nframes;
    rt_frame *frames;
    size_t ninputs;
    char **inputs;          /* "run/step/task" */
    size_t *input_tasks;    /* rt indices of the inputs */
    uint64_t handle;
    int64_t ready_at;       /* T_WAITING: monotonic us */
    bool cloned;
    uint32_t occurrence;    /* resume matching: n-th task of its step+stack */

    char *inputs_file;      /* input paths handed over in a file, removed after */

    /* The current attempt's output (command tasks). */
    mf_buf log[2];
    uint64_t dropped[2];

    /* Result of the last attempt. */
    uint64_t foreach_count;
    bool has_foreach_count;
    size_t nforeach_values;
    char **foreach_values;
    char *switch_case;

    /* Join bookkeeping when this task opens a split. */
    size_t join_expected;
    size_t join_arrived;
    size_t *join_slots;     /* SIZE_MAX until that branch/index arrives */
} rt_task;

/* An attempt that ended, waiting for the batch's sync and index write. */
typedef struct rt_done {
    size_t task;
    mf_task *result;        /* the committed attempt, read back */
    int exit_code, signal;
    bool timed_out;
    char *message;
} rt_done;

/* A batch of ended attempts on its way through the committer. */
typedef struct rt_batch {
    rt_done *v;
    size_t n;
    int rc;                 /* of the sync and index write */
    char *err;              /* its message (errors are per thread) */
    struct rt_batch *next;
} rt_batch;

typedef struct rt_committer rt_committer;

typedef struct origin_entry {
    char *key;              /* step|i,j,..|occurrence */
    char *task_id;
    bool ok;
} origin_entry;

struct mf__rt {
    mf_run *run;
    mf_engine *engine;
    mf_flow *flow;            /* own validated copy */
    mf_executor *ex;
    bool own_ex;
    uint32_t caps;

    uint32_t max_workers, max_num_splits;
    uint64_t max_log_size;
    char **command;
    size_t ncommand;
    mf_log_cb log_cb;
    void *log_payload;
    mf_run_event_cb event_cb;
    void *event_payload;

    rt_task **tasks;
    size_t ntasks, cap;
    size_t *ready;            /* FIFO ring of task indices */
    size_t ready_head, ready_len, ready_cap;
    size_t running;
    size_t waiting;
    /* handle -> task (open addressing) */
    uint64_t *hkeys;
    size_t *hvals;
    size_t hcap, hcount;

    uint64_t next_id, id_left; /* reserved task ids */

    rt_done *done;
    size_t ndone, done_cap;
    rt_committer *committer;
    size_t batches_inflight;
    int epfd;                 /* executor fd + committer fd, for waiting */

    bool failing;             /* fail fast: no new tasks */
    bool finished;
    int32_t final_status;
    char *failure;            /* why the run failed */
    int64_t last_heartbeat;
    size_t end_done;          /* tasks of `end` that succeeded */

    /* Resume */
    char *origin_run_id;
    bool *forced;             /* per step: re-run (resume_step and after) */
    origin_entry *origin;
    size_t norigin;
    /* occurrence counters: key "step|stack" -> count (small linear map) */
    char **occ_keys;
    uint32_t *occ_vals;
    size_t nocc, occ_cap;
};

/* A task's foreach stack (its foreach frames) as arrays; values borrowed. */
typedef struct rt_stack {
    uint32_t *index, *nsplits;
    const char **value;
    size_t depth;
} rt_stack;

/* schedule.c */
int mf__rt_foreach_stack(const rt_task *t, rt_stack *out);
void mf__rt_stack_clear(rt_stack *s);
int mf__rt_new_task(mf__rt *rt, size_t step, const rt_frame *frames, size_t nframes,
                    const size_t *inputs, size_t ninputs, size_t *out);
int mf__rt_succeeded(mf__rt *rt, size_t task);
/* The ready queue (a ring): push at the back, or at the front for retries;
 * pop from the front (only when ready_len > 0). */
int mf__rt_ready_push(mf__rt *rt, size_t task, bool front);
size_t mf__rt_ready_pop(mf__rt *rt);
void mf__rt_task_free(rt_task *t);
/* Stop the run: remember why (first failure wins), cancel what runs. */
void mf__rt_fail(mf__rt *rt, const char *why);

/* spec.c: build and submit the attempt of a ready task. */
int mf__rt_launch(mf__rt *rt, size_t task);

/* resume.c */
int mf__rt_resume_prepare(mf__rt *rt, const char *resume_step);
/* If the task can be cloned from the origin run, clone it: MF_OK and
 * *cloned = true (with *result its new committed attempt). */
int mf__rt_try_clone(mf__rt *rt, size_t task, bool *cloned, mf_task **result);
/* Key of a task for resume matching (malloc'ed). */
char *mf__rt_match_key(const mf__rt *rt, const char *step, const uint32_t *idx, size_t depth,
                       uint32_t occurrence);

/* commit.c: the committer thread */
int mf__rt_committer_start(mf__rt *rt);
void mf__rt_committer_stop(mf__rt *rt);     /* drains what was pushed */
int mf__rt_committer_fd(const mf__rt *rt);  /* readable when a batch is back */
int mf__rt_committer_push(mf__rt *rt, rt_done *v, size_t n); /* takes v */
rt_batch *mf__rt_committer_take(mf__rt *rt); /* batches back, in order */
void mf__rt_batch_free(rt_batch *b);         /* a list */

/* runtime.c */
/* A writable attempt of a task, committed by the runtime on its behalf
 * (commands without a manifest, failures, @catch, clones). */
int mf__rt_runtime_task(mf__rt *rt, const rt_task *t, uint32_t attempt, mf_task **out);
int mf__rt_take_result(mf__rt *rt, size_t ti, mf_task *res);
void mf__rt_event(mf__rt *rt, int type, const rt_task *t, int exit_code, int sig,
                  const char *message);
const char *mf__rt_step_name(const mf__rt *rt, size_t step);
int mf__rt_done_push(mf__rt *rt, size_t task, mf_task *result, int exit_code, int sig,
                     bool timed_out, const char *message);

#endif
