/*
 * The orphan watcher. Task processes live in process groups of their own
 * (so a timeout can kill a task and everything it started), which also
 * means nothing kills them when the runtime dies. The watcher is forked
 * once per local executor and blocks reading a pipe from it; the kernel
 * closes the pipe when the runtime dies, however it dies. The watcher then
 * kills every registered group and, to also catch a task that died between
 * being spawned and being registered, or that left its group, every process
 * whose environment names this executor (MF_TASK_OWNER).
 *
 * The child of fork() in a threaded process may only make async-signal-safe
 * calls, so everything it needs is allocated before the fork and it uses
 * raw system calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"

#define WATCH_MAX 65536 /* process groups registered at once */

struct mf__watcher {
    pid_t pid;
    int fd;             /* write end */
    char env[64];       /* MF_TASK_OWNER=<pid>.<nonce> */
};

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Does /proc/<pid>/environ hold `needle` as one NUL-terminated entry? */
static int environ_has(const char *pid, const char *needle, size_t nlen, char *buf, size_t cap)
{
    char path[64];
    size_t p = 0;
    const char *a = "/proc/", *b = "/environ";
    while (*a)
        path[p++] = *a++;
    for (const char *s = pid; *s && p < 40; s++)
        path[p++] = *s;
    while (*b)
        path[p++] = *b++;
    path[p] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* The marker is an entry of its own: match it at an entry start. */
    size_t have = 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] == 0) {
                if (i - start == nlen && memcmp(buf + start, needle, nlen) == 0)
                    found = 1;
                start = i + 1;
            }
        }
        if (found)
            break;
        /* Keep the unfinished entry (if it can still match). */
        if (have - start > nlen) {
            have = 0;
        } else {
            memmove(buf, buf + start, have - start);
            have -= start;
        }
    }
    close(fd);
    return found;
}

static void kill_marked(const char *needle, size_t nlen, char *buf, size_t cap)
{
    /* Several passes: a process may fork while we look. */
    for (int pass = 0; pass < 3; pass++) {
        int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return;
        char dents[8192];
        int killed = 0;
        for (;;) {
            long n = syscall(SYS_getdents64, dfd, dents, sizeof dents);
            if (n <= 0)
                break;
            for (long off = 0; off < n;) {
                struct linux_dirent64 *d = (struct linux_dirent64 *)(dents + off);
                off += d->d_reclen;
                if (d->d_name[0] < '1' || d->d_name[0] > '9')
                    continue;
                if (environ_has(d->d_name, needle, nlen, buf, cap)) {
                    long v = 0;
                    for (const char *s = d->d_name; *s >= '0' && *s <= '9'; s++)
                        v = v * 10 + (*s - '0');
                    if (v != (long)getpid()) {
                        kill((pid_t)v, SIGKILL);
                        killed++;
                    }
                }
            }
        }
        close(dfd);
        if (!killed)
            return;
    }
}

static _Noreturn void watcher_main(int rfd, int64_t *groups, char *buf, size_t cap,
                                   const char *needle)
{
    /* Ctrl-C reaches the whole foreground group; the watcher must outlive
     * the runtime it watches, not die with it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    /* Keep only the pipe: inherited descriptors (task pipes, the index)
     * must not be held open by us. */
    if (rfd != 3) {
        dup2(rfd, 3);
        rfd = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);
    close(0);
    close(1);
    close(2);
    size_t n = 0;
    int64_t msg;
    for (;;) {
        ssize_t r = read(rfd, &msg, sizeof msg);
        if (r == (ssize_t)sizeof msg) {
            if (msg > 0 && n < WATCH_MAX) {
                groups[n++] = msg;
            } else if (msg < 0) {
                for (size_t i = 0; i < n; i++)
                    if (groups[i] == -msg) {
                        groups[i] = groups[--n];
                        break;
                    }
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break; /* EOF: the runtime is gone (or stopped us) */
    }
    for (size_t i = 0; i < n; i++)
        kill((pid_t)-groups[i], SIGKILL);
    kill_marked(needle, strlen(needle), buf, cap);
    _exit(0);
}

int mf__watcher_start(mf__watcher **out)
{
    *out = NULL;
    mf__watcher *w = calloc(1, sizeof *w);
    int64_t *groups = malloc(WATCH_MAX * sizeof *groups);
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    if (!w || !groups || !buf) {
        free(w);
        free(groups);
        free(buf);
        return mf__error_oom();
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(w->env, sizeof w->env, "MF_TASK_OWNER=%ld.%lx", (long)getpid(),
             (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20) ^ (long)(uintptr_t)w));
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int rc = mf__error_errno(errno, "creating the orphan watcher's pipe", "pipe");
        free(w);
        free(groups);
        free(buf);
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int rc = mf__error_errno(errno, "starting the orphan watcher", "fork");
        close(p[0]);
        close(p[1]);
        free(w);
        free(groups);
        free(buf);
        return rc;
    }
    if (pid == 0) {
        close(p[1]);
        watcher_main(p[0], groups, buf, cap, w->env);
    }
    close(p[0]);
    free(groups);
    free(buf);
    w->pid = pid;
    w->fd = p[1];
    *out = w;
    return MF_OK;
}

const char *mf__watcher_env(const mf__watcher *w) { return w->env; }

static int send_msg(mf__watcher *w, int64_t v)
{
    for (;;) {
        ssize_t r = write(w->fd, &v, sizeof v);
        if (r == (ssize_t)sizeof v)
            return MF_OK;
        if (r < 0 && errno == EINTR)
            continue;
        return mf__error_errno(r < 0 ? errno : EIO, "talking to the orphan watcher", "pipe");
    }
}

int mf__watcher_add(mf__watcher *w, int64_t pgid) { return send_msg(w, pgid); }
int mf__watcher_remove(mf__watcher *w, int64_t pgid) { return send_msg(w, -pgid); }

void mf__watcher_stop(mf__watcher *w)
{
    if (!w)
        return;
    close(w->fd);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    free(w);
}
