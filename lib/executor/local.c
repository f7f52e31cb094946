/*
 * The local executor: tasks as child processes (posix_spawn into a process
 * group of their own, output through pipes, exit through a pidfd), as
 * in-process C functions on a worker pool, or through a host launcher.
 * One epoll set waits for all of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api.h"
#include "executor.h"

extern char **environ;

#define LINE_MAX_BYTES (64u << 10) /* a longer line is cut into pieces */

typedef struct step_fn_entry {
    char *step;
    mf_step_fn fn;
    void *payload;
} step_fn_entry;

/* A child process attempt. */
typedef struct proc {
    uint64_t handle;
    pid_t pid;
    int pidfd;
    int fds[2];            /* stdout, stderr read ends; -1 once closed */
    mf_buf partial[2];     /* an unfinished line */
    bool exited;
    int wstatus;
    bool status_known;
    int64_t deadline;      /* monotonic us; 0: none */
    int64_t kill_at;       /* SIGKILL after SIGTERM; 0: not sent */
    bool timed_out;
    bool cancelled;
    bool registered;       /* with the watcher */
    struct proc *next;
} proc;

/* An in-process attempt. */
typedef struct job {
    uint64_t handle;
    mf_step_fn fn;
    void *payload;
    /* Spec fields, copied. */
    char *flow, *run_id, *step, *task_id, *origin_run_id;
    uint32_t attempt;
    bool is_join;
    size_t depth;
    uint32_t *fi, *fn_;
    char **fv;
    size_t ninputs;
    char **inputs;
    /* Result */
    int exit_code;
    char *message;
    mf_task *result;        /* the committed attempt, until handed over */
    struct job *next;
} job;

typedef struct local {
    mf_executor base;
    mf_engine *engine;
    int64_t grace_us;
    uint32_t nthreads;

    step_fn_entry *fns;
    size_t nfns;
    mf_launch_fn launcher;
    void *launcher_payload;
    mf_task *handoff;       /* during an EXITED callback: its committed task */

    int epfd;
    int evfd;
    uint64_t next_handle;
    proc *procs;
    size_t nprocs;
    mf__watcher *watcher;

    /* Worker pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *queue_head, *queue_tail;
    job *done_head, *done_tail;
    bool stopping;
    pthread_t *threads;
    uint32_t started_threads;
    size_t inflight_jobs;
} local;

static uint32_t local_caps(mf_executor *ex)
{
    (void)ex;
    return MF_EXEC_CAP_COMMAND | MF_EXEC_CAP_INPROC | MF_EXEC_CAP_LAUNCHER | MF_EXEC_CAP_LOGS;
}

static void local_free(mf_executor *ex);
static int local_submit(mf_executor *ex, const mf_task_spec *spec, uint64_t *handle);
static int local_poll(mf_executor *ex, int timeout_ms, mf_exec_event_cb cb, void *payload);
static int local_cancel(mf_executor *ex, uint64_t handle);
static int local_fd(mf_executor *ex)
{
    return ((local *)ex)->epfd;
}

bool mf__executor_is_local(const mf_executor *ex)
{
    return ex && ex->free == local_free;
}

mf_task *mf__executor_local_take(mf_executor *ex)
{
    if (!mf__executor_is_local(ex))
        return NULL;
    local *l = (local *)ex;
    mf_task *t = l->handoff;
    l->handoff = NULL;
    return t;
}

MF_EXTERN(int) mf_executor_init(mf_executor *ex, unsigned int version)
{
    if (!ex)
        return mf__error_set(MF_EINVAL, "mf_executor_init: executor is NULL");
    if (version != MF_EXECUTOR_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_executor", version);
    memset(ex, 0, sizeof *ex);
    ex->version = version;
    return MF_OK;
}

MF_EXTERN(void) mf_executor_free(mf_executor *ex)
{
    if (ex && ex->free)
        ex->free(ex);
}

MF_EXTERN(int) mf_local_options_init(mf_local_options *opts, unsigned int version)
{
    if (!opts)
        return mf__error_set(MF_EINVAL, "mf_local_options_init: options are NULL");
    if (version != MF_LOCAL_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_local_options", version);
    mf_local_options init = MF_LOCAL_OPTIONS_INIT;
    *opts = init;
    return MF_OK;
}

/* ------------------------------------------------------------ workers */

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->flow);
    free(j->run_id);
    free(j->step);
    free(j->task_id);
    free(j->origin_run_id);
    free(j->fi);
    free(j->fn_);
    mf__strvec_free(j->fv, j->depth);
    mf__strvec_free(j->inputs, j->ninputs);
    free(j->message);
    mf_task_free(j->result);
    free(j);
}

static void job_run(local *l, job *j)
{
    mf_task *t = NULL;
    mf_task_options to = MF_TASK_OPTIONS_INIT;
    to.task_id = j->task_id;
    to.attempt = j->attempt;
    to.foreach_index = j->fi;
    to.foreach_nsplits = j->fn_;
    to.foreach_value = (const char *const *)j->fv;
    to.foreach_depth = j->depth;
    to.input_paths = (const char *const *)j->inputs;
    to.ninputs = j->ninputs;
    int rc = mf__task_create_ex(&t, l->engine, j->flow, j->run_id, j->step, &to,
                                MF__CREATE_NO_PROBE);
    if (rc == MF_OK) {
        t->is_join = j->is_join;
        t->inherit = true;
        if (j->origin_run_id && !(t->x.origin_run_id = mf__strdup(j->origin_run_id)))
            rc = MF_ENOMEM;
    }
    if (rc != MF_OK) {
        j->exit_code = 1;
        j->message = mf__strdup(mf_error_last());
        mf_task_free(t);
        return;
    }
    mf_error_clear();
    int urc = j->fn(t, j->payload);
    if (urc == 0) {
        if (t->writable && mf__task_commit_ex(t, MF_TASK_SUCCEEDED, MF__COMMIT_DEFER) != MF_OK) {
            j->exit_code = 1;
            j->message = mf__strdup(mf_error_last());
        }
    } else {
        j->exit_code = urc;
        const char *why = mf_error_last_code() ? mf_error_last() : NULL;
        mf_buf msg = MF_BUF_INIT;
        mf__buf_printf(&msg, "step function returned %d%s%s", urc, why ? ": " : "",
                       why ? why : "");
        /* What the step logged last says most about why. */
        const mf_buf *log = t->log[1].size ? &t->log[1] : &t->log[0];
        if (log->size) {
            mf__buf_printf(&msg, "\n  last lines of its %s:",
                           log == &t->log[1] ? "stderr" : "stdout");
            mf__log_tail(log, 10, &msg);
        }
        j->message = mf__buf_detach(&msg, NULL);
        if (t->writable) {
            /* Keep the failure with the attempt, as a process's would be. */
            t->x.failure = mf__strdup(j->message);
            t->x.has_exit = true;
            t->x.exit_code = urc;
            mf__task_commit_ex(t, MF_TASK_FAILED, MF__COMMIT_DEFER);
        }
    }
    if (t->committed)
        j->result = t; /* handed to the runtime with the exit event */
    else
        mf_task_free(t);
}

static void *worker_main(void *arg)
{
    local *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->queue_head && !l->stopping)
            pthread_cond_wait(&l->cv, &l->mu);
        if (!l->queue_head)
            break;
        job *j = l->queue_head;
        l->queue_head = j->next;
        if (!l->queue_head)
            l->queue_tail = NULL;
        pthread_mutex_unlock(&l->mu);
        job_run(l, j);
        pthread_mutex_lock(&l->mu);
        j->next = NULL;
        if (l->done_tail)
            l->done_tail->next = j;
        else
            l->done_head = j;
        l->done_tail = j;
        uint64_t one = 1;
        ssize_t wr = write(l->evfd, &one, sizeof one);
        (void)wr; /* eventfd only fails if the counter would overflow */
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int start_threads(local *l)
{
    if (l->started_threads)
        return MF_OK;
    l->threads = calloc(l->nthreads, sizeof *l->threads);
    if (!l->threads)
        return mf__error_oom();
    for (uint32_t i = 0; i < l->nthreads; i++) {
        int e = pthread_create(&l->threads[i], NULL, worker_main, l);
        if (e) {
            if (l->started_threads)
                break;
            return mf__error_errno(e, "starting worker threads", "pthread_create");
        }
        l->started_threads++;
    }
    return MF_OK;
}

static int submit_job(local *l, const mf_task_spec *s, const step_fn_entry *f, uint64_t handle)
{
    int rc = start_threads(l);
    if (rc)
        return rc;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return mf__error_oom();
    j->handle = handle;
    j->fn = f->fn;
    j->payload = f->payload;
    j->attempt = s->attempt;
    j->is_join = s->is_join != 0;
    rc = MF_ENOMEM;
    if (!(j->flow = mf__strdup(s->flow)) || !(j->run_id = mf__strdup(s->run_id)) ||
        !(j->step = mf__strdup(s->step)) || !(j->task_id = mf__strdup(s->task_id)))
        goto fail;
    if (s->origin_run_id && !(j->origin_run_id = mf__strdup(s->origin_run_id)))
        goto fail;
    if (s->foreach_depth) {
        j->fi = malloc(s->foreach_depth * sizeof *j->fi);
        j->fn_ = malloc(s->foreach_depth * sizeof *j->fn_);
        if (!j->fi || !j->fn_)
            goto fail;
        memcpy(j->fi, s->foreach_index, s->foreach_depth * sizeof *j->fi);
        memcpy(j->fn_, s->foreach_nsplits, s->foreach_depth * sizeof *j->fn_);
        if (!(j->fv = mf__strv_dup(s->foreach_value, s->foreach_depth)))
            goto fail;
        j->depth = s->foreach_depth;
    }
    if (s->ninputs) {
        if (!(j->inputs = mf__strv_dup(s->input_paths, s->ninputs)))
            goto fail;
        j->ninputs = s->ninputs;
    }
    pthread_mutex_lock(&l->mu);
    if (l->queue_tail)
        l->queue_tail->next = j;
    else
        l->queue_head = j;
    l->queue_tail = j;
    l->inflight_jobs++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return MF_OK;
fail:
    job_free(j);
    return rc;
}

/* ------------------------------------------------------------ processes */

/* epoll data: handle in the high bits, which fd in the low two. */
#define EV_PIDFD 0u
#define EV_OUT 1u
#define EV_ERR 2u
#define EV_EVENTFD UINT64_MAX

static proc *find_proc(local *l, uint64_t handle)
{
    for (proc *p = l->procs; p; p = p->next)
        if (p->handle == handle)
            return p;
    return NULL;
}

/* PATH lookup in the parent (posix_spawnp does it too; doing it here
 * gives a clear error before anything is started). */
static int resolve_exe(const char *argv0, mf_buf *out)
{
    if (strchr(argv0, '/'))
        return mf__buf_set(out, argv0, strlen(argv0));
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *c = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        mf__buf_clear(out);
        int rc = n ? mf__buf_put(out, p, n) : mf__buf_puts(out, ".");
        if (!rc)
            rc = mf__buf_printf(out, "/%s", argv0);
        if (rc)
            return rc;
        struct stat st;
        if (stat(out->ptr, &st) == 0 && S_ISREG(st.st_mode) && access(out->ptr, X_OK) == 0)
            return MF_OK;
        if (!c)
            break;
        p = c + 1;
    }
    return mf__error_set(MF_ENOTFOUND, "command '%s' not found in PATH", argv0);
}

/* environ, with the spec's entries replacing same-named ones. */
static char **build_env(const mf_task_spec *s, const char *owner)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + s->nenv + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = strncmp(environ[i], "MF_TASK_OWNER=", 14) == 0;
        for (size_t j = 0; !replaced && j < s->nenv; j++)
            if (strncmp(s->env[j], environ[i], nl) == 0 && s->env[j][nl] == '=')
                replaced = true;
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < s->nenv; j++)
        env[k++] = (char *)s->env[j];
    env[k++] = (char *)owner;
    env[k] = NULL;
    return env;
}

static int ep_add(local *l, int fd, uint64_t data)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = data;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return mf__error_errno(errno, "watching a task", "epoll_ctl");
    return MF_OK;
}

static void proc_close_fd(local *l, proc *p, int i)
{
    if (p->fds[i] >= 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fds[i], NULL);
        close(p->fds[i]);
        p->fds[i] = -1;
    }
}

static void proc_free(local *l, proc *p)
{
    proc_close_fd(l, p, 0);
    proc_close_fd(l, p, 1);
    if (p->pidfd >= 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
        close(p->pidfd);
    }
    mf_buf_dispose(&p->partial[0]);
    mf_buf_dispose(&p->partial[1]);
    free(p);
}

static int spawn_proc(local *l, const mf_task_spec *s, proc *p)
{
    int out[2] = { -1, -1 }, err[2] = { -1, -1 };
    int rc = MF_OK;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        rc = mf__error_errno(errno, "creating task pipes", s->pathspec);
        goto done;
    }
    if (l->launcher) {
        int64_t pid = 0;
        rc = l->launcher(s, out[1], err[1], &pid, l->launcher_payload);
        if (rc == MF_OK && pid <= 0)
            rc = mf__error_set(MF_EINVAL, "task '%s': the launcher reported no process id",
                               s->pathspec);
        if (rc) {
            if (rc > 0)
                rc = mf__error_set(MF_EUSER, "task '%s': the launcher failed (%d)", s->pathspec,
                                   rc);
            goto done;
        }
        p->pid = (pid_t)pid;
    } else {
        if (s->argc == 0 || !s->argv || !s->argv[0]) {
            rc = mf__error_set(MF_EINVAL, "task '%s': no command to run (set a command "
                               "template in the start options, a \"command\" step attribute, "
                               "or an in-process step function)", s->pathspec);
            goto done;
        }
        mf_buf exe = MF_BUF_INIT;
        if ((rc = resolve_exe(s->argv[0], &exe)) != MF_OK) {
            mf_buf_dispose(&exe);
            mf__error_wrap("task '%s'", s->pathspec);
            goto done;
        }
        char **envp = build_env(s, mf__watcher_env(l->watcher));
        char **argv = calloc(s->argc + 1, sizeof *argv);
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        posix_spawnattr_setpgroup(&at, 0);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&at, &none);
        /* Default dispositions in the child, whatever the host ignores. */
        sigset_t dflt;
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGPIPE);
        sigaddset(&dflt, SIGINT);
        sigaddset(&dflt, SIGTERM);
        sigaddset(&dflt, SIGCHLD);
        posix_spawnattr_setsigdefault(&at, &dflt);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        if (!envp || !argv) {
            rc = mf__error_oom();
        } else {
            for (size_t i = 0; i < s->argc; i++)
                argv[i] = (char *)s->argv[i];
            pid_t pid;
            int e = posix_spawn(&pid, exe.ptr, &fa, &at, argv, envp);
            if (e)
                rc = mf__error_set(MF_EIO, "task '%s': cannot start '%s': %s", s->pathspec,
                                   exe.ptr, strerror(e));
            else
                p->pid = pid;
        }
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        free(envp);
        free(argv);
        mf_buf_dispose(&exe);
        if (rc)
            goto done;
    }
    /* From here the process runs: whatever fails, it must be watched. */
    if (mf__watcher_add(l->watcher, p->pid) == MF_OK)
        p->registered = true;
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pidfd < 0 && errno == ESRCH && l->launcher) {
        /* A launcher's process (not our child) already ended and was
         * reaped by its parent: its exit status is unknown; its output and
         * manifest tell the rest. */
        p->exited = true;
        kill(-p->pid, SIGKILL); /* whatever it left behind in its group */
        if (p->registered) {
            mf__watcher_remove(l->watcher, p->pid);
            p->registered = false;
        }
    } else if (p->pidfd < 0) {
        rc = mf__error_errno(errno, "watching task process", s->pathspec);
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        if (p->registered)
            mf__watcher_remove(l->watcher, p->pid);
        goto done;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    p->fds[0] = out[0];
    p->fds[1] = err[0];
    out[0] = err[0] = -1;
    uint64_t base = p->handle << 2;
    if ((p->pidfd < 0 || (rc = ep_add(l, p->pidfd, base | EV_PIDFD)) == MF_OK) &&
        (rc = ep_add(l, p->fds[0], base | EV_OUT)) == MF_OK)
        rc = ep_add(l, p->fds[1], base | EV_ERR);
    if (s->timeout_us > 0)
        p->deadline = mf__mono_us() + s->timeout_us;
    if (rc) { /* cannot watch it: stop it now, report at the next poll */
        kill(-p->pid, SIGKILL);
        p->cancelled = true;
        rc = MF_OK;
    }
done:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return rc;
}

static const step_fn_entry *find_fn(local *l, const char *step)
{
    for (size_t i = 0; i < l->nfns; i++)
        if (strcmp(l->fns[i].step, step) == 0)
            return &l->fns[i];
    return NULL;
}

static int local_submit(mf_executor *ex, const mf_task_spec *s, uint64_t *handle)
{
    local *l = (local *)ex;
    if (!s || !handle || s->version != MF_TASK_SPEC_VERSION)
        return mf__error_set(MF_EINVAL, "local executor: bad task spec");
    uint64_t h = ++l->next_handle;
    const step_fn_entry *f = find_fn(l, s->step);
    if (f) {
        int rc = submit_job(l, s, f, h);
        if (rc == MF_OK)
            *handle = h;
        return rc;
    }
    if (!l->watcher) {
        int rc = mf__watcher_start(&l->watcher);
        if (rc)
            return rc;
    }
    proc *p = calloc(1, sizeof *p);
    if (!p)
        return mf__error_oom();
    p->handle = h;
    p->pidfd = p->fds[0] = p->fds[1] = -1;
    int rc = spawn_proc(l, s, p);
    if (rc) {
        proc_free(l, p);
        return rc;
    }
    p->next = l->procs;
    l->procs = p;
    l->nprocs++;
    *handle = h;
    return MF_OK;
}

static void kill_group(proc *p, int sig)
{
    if (kill(-p->pid, sig) != 0 && errno == ESRCH)
        kill(p->pid, sig); /* a launcher's process may not lead a group */
}

static int local_cancel(mf_executor *ex, uint64_t handle)
{
    local *l = (local *)ex;
    proc *p = find_proc(l, handle);
    if (!p)
        return MF_OK; /* in-process steps cannot be stopped; they finish */
    if (!p->exited && !p->kill_at) {
        kill_group(p, SIGTERM);
        p->kill_at = mf__mono_us() + l->grace_us;
    }
    p->cancelled = true;
    return MF_OK;
}

/* Read what a pipe has; emit whole lines. EOF closes it. */
static void drain(local *l, proc *p, int i, mf_exec_event_cb cb, void *payload, int *count)
{
    char buf[65536];
    for (;;) {
        if (p->fds[i] < 0)
            return;
        ssize_t n = read(p->fds[i], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        mf_exec_event ev;
        memset(&ev, 0, sizeof ev);
        ev.version = 1;
        ev.type = MF_EXEC_OUTPUT;
        ev.handle = p->handle;
        ev.stream = i + 1;
        ev.timestamp_us = mf__now_us();
        mf_buf *part = &p->partial[i];
        if (n <= 0) { /* EOF or error: flush the last line */
            if (part->size) {
                ev.data = part->ptr;
                ev.len = part->size;
                cb(&ev, payload);
                (*count)++;
                mf__buf_clear(part);
            }
            proc_close_fd(l, p, i);
            return;
        }
        size_t off = 0;
        while (off < (size_t)n) {
            char *nl = memchr(buf + off, '\n', (size_t)n - off);
            size_t len = nl ? (size_t)(nl - (buf + off)) : (size_t)n - off;
            if (!nl && part->size + len < LINE_MAX_BYTES) {
                mf__buf_put(part, buf + off, len);
                break;
            }
            if (part->size) {
                mf__buf_put(part, buf + off, len);
                ev.data = part->ptr;
                ev.len = part->size;
            } else {
                ev.data = buf + off;
                ev.len = len;
            }
            cb(&ev, payload);
            (*count)++;
            mf__buf_clear(part);
            off += len + (nl ? 1 : 0);
        }
    }
}

static void reap(local *l, proc *p)
{
    (void)l;
    if (p->exited)
        return;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return; /* not yet (the pidfd said so, but be sure) */
    p->exited = true;
    if (r == p->pid) {
        p->status_known = true;
        p->wstatus = st;
    }
    /* The task is over; so is everything it started. */
    kill(-p->pid, SIGKILL);
}

static void emit_exit(local *l, proc *p, mf_exec_event_cb cb, void *payload, int *count)
{
    mf_exec_event ev;
    memset(&ev, 0, sizeof ev);
    ev.version = 1;
    ev.type = MF_EXEC_EXITED;
    ev.handle = p->handle;
    ev.timed_out = p->timed_out;
    if (!p->status_known) {
        ev.exit_code = -1;
        ev.message = "exit status unknown (not a child of the runtime)";
    } else if (WIFSIGNALED(p->wstatus)) {
        ev.exit_code = -1;
        ev.signal = WTERMSIG(p->wstatus);
    } else {
        ev.exit_code = WEXITSTATUS(p->wstatus);
    }
    if (p->timed_out)
        ev.message = "timed out";
    if (p->registered)
        mf__watcher_remove(l->watcher, p->pid);
    cb(&ev, payload);
    (*count)++;
}

static void finish_procs(local *l, mf_exec_event_cb cb, void *payload, int *count)
{
    proc **pp = &l->procs;
    while (*pp) {
        proc *p = *pp;
        if (p->exited) {
            /* The group was killed at exit: what is left in the pipes is all. */
            drain(l, p, 0, cb, payload, count);
            drain(l, p, 1, cb, payload, count);
        }
        if (p->exited && p->fds[0] < 0 && p->fds[1] < 0) {
            *pp = p->next;
            l->nprocs--;
            emit_exit(l, p, cb, payload, count);
            proc_free(l, p);
            continue;
        }
        pp = &p->next;
    }
}

static void check_deadlines(local *l, int64_t now)
{
    for (proc *p = l->procs; p; p = p->next) {
        if (p->exited)
            continue;
        if (p->deadline && now >= p->deadline && !p->kill_at) {
            p->timed_out = true;
            kill_group(p, SIGTERM);
            p->kill_at = now + l->grace_us;
        } else if (p->kill_at && now >= p->kill_at) {
            kill_group(p, SIGKILL);
            p->kill_at = INT64_MAX; /* sent */
        }
    }
}

static int next_wait_ms(local *l, int timeout_ms, int64_t now)
{
    int64_t best = timeout_ms < 0 ? INT64_MAX : (int64_t)timeout_ms * 1000;
    for (proc *p = l->procs; p; p = p->next) {
        if (p->exited)
            continue;
        int64_t at = p->kill_at && p->kill_at != INT64_MAX ? p->kill_at
                   : (!p->kill_at && p->deadline) ? p->deadline : 0;
        if (at && at - now < best)
            best = at - now > 0 ? at - now : 0;
    }
    if (best == INT64_MAX)
        return -1;
    return (int)((best + 999) / 1000);
}

static void deliver_jobs(local *l, mf_exec_event_cb cb, void *payload, int *count)
{
    uint64_t v;
    ssize_t r = read(l->evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&l->mu);
    job *j = l->done_head;
    l->done_head = l->done_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (j) {
        job *next = j->next;
        mf_exec_event ev;
        memset(&ev, 0, sizeof ev);
        ev.version = 1;
        ev.type = MF_EXEC_EXITED;
        ev.handle = j->handle;
        ev.exit_code = j->exit_code;
        ev.message = j->message;
        l->handoff = j->result;
        j->result = NULL;
        cb(&ev, payload);
        mf_task_free(l->handoff); /* not taken */
        l->handoff = NULL;
        (*count)++;
        pthread_mutex_lock(&l->mu);
        l->inflight_jobs--;
        pthread_mutex_unlock(&l->mu);
        job_free(j);
        j = next;
    }
}

static int local_poll(mf_executor *ex, int timeout_ms, mf_exec_event_cb cb, void *payload)
{
    local *l = (local *)ex;
    int count = 0;
    int64_t start = mf__mono_us();
    for (;;) {
        int64_t now = mf__mono_us();
        check_deadlines(l, now);
        int left = timeout_ms;
        if (timeout_ms > 0) {
            int64_t spent = (now - start) / 1000;
            left = spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
        }
        int wait = count ? 0 : next_wait_ms(l, left, now);
        struct epoll_event evs[64];
        int n = epoll_wait(l->epfd, evs, 64, wait);
        if (n < 0 && errno != EINTR)
            return mf__error_errno(errno, "waiting for tasks", "epoll_wait");
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            if (d == EV_EVENTFD) {
                deliver_jobs(l, cb, payload, &count);
                continue;
            }
            proc *p = find_proc(l, d >> 2);
            if (!p)
                continue;
            unsigned which = (unsigned)(d & 3);
            if (which == EV_PIDFD) {
                reap(l, p);
                if (p->exited && p->pidfd >= 0) {
                    epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
                    close(p->pidfd);
                    p->pidfd = -1;
                }
            } else {
                drain(l, p, (int)which - 1, cb, payload, &count);
            }
        }
        finish_procs(l, cb, payload, &count);
        if (count || timeout_ms == 0)
            return count;
        if (timeout_ms > 0 && mf__mono_us() - start >= (int64_t)timeout_ms * 1000)
            return 0;
    }
}

static void local_free(mf_executor *ex)
{
    local *l = (local *)ex;
    if (!l)
        return;
    /* Nothing should run now; make sure of it. */
    for (proc *p = l->procs; p; p = p->next)
        if (!p->exited) {
            kill_group(p, SIGKILL);
            waitpid(p->pid, NULL, 0);
            if (p->registered)
                mf__watcher_remove(l->watcher, p->pid);
        }
    while (l->procs) {
        proc *p = l->procs;
        l->procs = p->next;
        proc_free(l, p);
    }
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (uint32_t i = 0; i < l->started_threads; i++)
        pthread_join(l->threads[i], NULL);
    free(l->threads);
    for (job *j = l->queue_head, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (job *j = l->done_head, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    mf__watcher_stop(l->watcher);
    for (size_t i = 0; i < l->nfns; i++)
        free(l->fns[i].step);
    free(l->fns);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->evfd >= 0)
        close(l->evfd);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

MF_EXTERN(int) mf_executor_local_new(mf_executor **out, mf_engine *engine,
                                     const mf_local_options *opts)
{
    if (!out || !engine)
        return mf__error_set(MF_EINVAL, "mf_executor_local_new: NULL argument");
    *out = NULL;
    if (opts && opts->version != MF_LOCAL_OPTIONS_VERSION)
        return mf__error_set(MF_EVERSION, "invalid version %u on mf_local_options",
                             opts->version);
    local *l = calloc(1, sizeof *l);
    if (!l)
        return mf__error_oom();
    mf_executor_init(&l->base, MF_EXECUTOR_VERSION);
    l->base.free = local_free;
    l->base.capabilities = local_caps;
    l->base.submit = local_submit;
    l->base.poll = local_poll;
    l->base.cancel = local_cancel;
    l->base.fd = local_fd;
    l->engine = engine;
    l->grace_us = opts && opts->kill_grace_us > 0 ? opts->kill_grace_us : 5000000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    l->nthreads = opts && opts->threads ? opts->threads : (uint32_t)(ncpu > 0 ? ncpu : 1);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = MF_OK;
    if (l->epfd < 0 || l->evfd < 0)
        rc = mf__error_errno(errno, "creating the local executor", "epoll");
    if (!rc)
        rc = ep_add(l, l->evfd, EV_EVENTFD);
    if (rc) {
        local_free(&l->base);
        return rc;
    }
    *out = &l->base;
    return MF_OK;
}

MF_EXTERN(int) mf_executor_local_set_step(mf_executor *ex, const char *step, mf_step_fn fn,
                                          void *payload)
{
    if (!ex || !step)
        return mf__error_set(MF_EINVAL, "mf_executor_local_set_step: NULL argument");
    if (!mf__executor_is_local(ex))
        return mf__error_set(MF_ENOTSUP, "step functions need the local executor");
    int rc = mf__check_step_name(step);
    if (rc)
        return rc;
    local *l = (local *)ex;
    for (size_t i = 0; i < l->nfns; i++)
        if (strcmp(l->fns[i].step, step) == 0) {
            if (fn) {
                l->fns[i].fn = fn;
                l->fns[i].payload = payload;
            } else {
                free(l->fns[i].step);
                l->fns[i] = l->fns[--l->nfns];
            }
            return MF_OK;
        }
    if (!fn)
        return MF_OK;
    step_fn_entry *n = realloc(l->fns, (l->nfns + 1) * sizeof *n);
    if (!n)
        return mf__error_oom();
    l->fns = n;
    if (!(n[l->nfns].step = mf__strdup(step)))
        return MF_ENOMEM;
    n[l->nfns].fn = fn;
    n[l->nfns].payload = payload;
    l->nfns++;
    return MF_OK;
}

MF_EXTERN(int) mf_executor_local_set_launcher(mf_executor *ex, mf_launch_fn fn, void *payload)
{
    if (!ex)
        return mf__error_set(MF_EINVAL, "mf_executor_local_set_launcher: executor is NULL");
    if (!mf__executor_is_local(ex))
        return mf__error_set(MF_ENOTSUP, "launchers need the local executor");
    local *l = (local *)ex;
    l->launcher = fn;
    l->launcher_payload = payload;
    return MF_OK;
}
