/* Internal: executors (lib/executor). */
#ifndef MF_EXECUTOR_H
#define MF_EXECUTOR_H

#include "core/core.h"
#include "metaflow/sys/executor.h"

/* The local executor's orphan watcher (watch.c): a small process forked
 * once per executor that, when this process dies (its pipe reaches EOF),
 * kills every process group registered with it and every process whose
 * environment carries MF_TASK_OWNER=<token>. */
typedef struct mf__watcher mf__watcher;
int mf__watcher_start(mf__watcher **out);
/* "MF_TASK_OWNER=<pid>.<nonce>": give it to every task process. Borrowed. */
const char *mf__watcher_env(const mf__watcher *w);
int mf__watcher_add(mf__watcher *w, int64_t pgid);
int mf__watcher_remove(mf__watcher *w, int64_t pgid);
/* Close the pipe and reap the watcher (which then kills nothing left
 * registered: callers remove every group first). Accepts NULL. */
void mf__watcher_stop(mf__watcher *w);

/* True if `ex` is the local executor. */
bool mf__executor_is_local(const mf_executor *ex);

/* Inside the event callback of an in-process attempt's MF_EXEC_EXITED: take
 * the attempt's committed task (the caller frees it), so the runtime need
 * not read back the manifest the worker just wrote. NULL when there is none
 * (a failure before the task existed, or not the local executor). */
mf_task *mf__executor_local_take(mf_executor *ex);

#endif
