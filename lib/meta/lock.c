/*
 * Run liveness: the process that creates a run holds a POSIX record lock
 * (fcntl F_SETLK) on <dir>/locks/<Flow>.<run>.lock until it finishes the
 * run or dies; the kernel drops the lock when the process dies, however it
 * dies, so a reader can always tell a running run from a crashed one.
 *
 * POSIX record locks are chosen because fork() children do not inherit
 * them (a task process forked by the runtime must not keep a dead
 * runtime's run alive). Their trap: closing ANY descriptor of the file
 * drops every lock this process holds on it. So a process never opens a
 * lock file it holds; a process-wide table (not per mf_meta: two handles
 * on one directory must agree) records the held locks by device and
 * inode, and one mutex orders every open/close of lock files in the
 * process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/meta_int.h"

typedef struct held_lock {
    dev_t dev;
    ino_t ino;
    int fd;
    pid_t pid;  /* entries inherited by a fork() child are not its locks */
} held_lock;

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static held_lock *g_held;
static size_t g_nheld, g_capheld;

static held_lock *held_find(dev_t dev, ino_t ino)
{
    pid_t me = getpid();
    for (size_t i = 0; i < g_nheld; i++)
        if (g_held[i].dev == dev && g_held[i].ino == ino && g_held[i].pid == me)
            return &g_held[i];
    return NULL;
}

static int held_add(dev_t dev, ino_t ino, int fd)
{
    if (g_nheld == g_capheld) {
        size_t nc = g_capheld ? g_capheld * 2 : 8;
        held_lock *nv = realloc(g_held, nc * sizeof *nv);
        if (!nv)
            return mf__error_oom();
        g_held = nv;
        g_capheld = nc;
    }
    g_held[g_nheld++] = (held_lock){ dev, ino, fd, getpid() };
    return MF_OK;
}

static void held_remove(held_lock *h)
{
    *h = g_held[--g_nheld];
}

/* <dir>/locks/<Flow>.<run>.lock; the name checks also keep the path
 * inside the directory ('/' and a leading '.' are not allowed in ids). */
static int lock_path(const mf_meta *m, const char *flow, const char *run_id, mf_buf *dir,
                     mf_buf *path)
{
    if (!flow || !run_id)
        return mf__error_set(MF_EINVAL, "run lock: NULL flow or run id");
    int rc = mf__check_flow_name(flow);
    if (rc == MF_OK)
        rc = mf__check_id("run id", run_id);
    if (rc == MF_OK && dir)
        rc = mf__buf_printf(dir, "%s/locks", m->dir);
    if (rc == MF_OK)
        rc = mf__buf_printf(path, "%s/locks/%s.%s.lock", m->dir, flow, run_id);
    return rc;
}

/* The checks that open unlock and alive, then the lock file's path; `op`
 * names the operation in messages, `doing` in the fork check. */
static int lock_prepare(mf_meta *m, const char *op, const char *doing, const char *flow,
                        const char *run_id, mf_buf *path)
{
    if (!m)
        return mf__error_set(MF_EINVAL, "%s: NULL index", op);
    int rc = mf__meta_check_pid(m, doing);
    if (rc != MF_OK)
        return rc;
    return lock_path(m, flow, run_id, NULL, path);
}

static void whole_file(struct flock *fl, short type)
{
    memset(fl, 0, sizeof *fl);
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = 0;
    fl->l_len = 0;
}

int mf__meta_run_lock_acquire(mf_meta *m, const char *flow, const char *run_id, bool *acquired)
{
    *acquired = false;
    if (!m)
        return mf__error_set(MF_EINVAL, "run lock: NULL index");
    int rc = mf__meta_check_pid(m, "locking a run");
    if (rc == MF_OK && m->readonly)
        rc = mf__error_set(MF_ESTATE, "metadata index '%s': locking a run: opened read-only", m->dir);
    if (rc != MF_OK)
        return rc;
    mf_buf dir = MF_BUF_INIT, path = MF_BUF_INIT;
    rc = lock_path(m, flow, run_id, &dir, &path);
    if (rc == MF_OK)
        rc = mf__mkdir_p(dir.ptr);
    if (rc != MF_OK)
        goto out;

    pthread_mutex_lock(&g_mutex);
    struct stat st;
    if (stat(path.ptr, &st) == 0 && held_find(st.st_dev, st.st_ino)) {
        pthread_mutex_unlock(&g_mutex);
        goto out; /* already ours */
    }
    for (;;) {
        int fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = mf__error_errno(errno, "cannot open run lock", path.ptr);
            break;
        }
        struct flock fl;
        whole_file(&fl, F_WRLCK);
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int e = errno;
            close(fd);
            if (e == EACCES || e == EAGAIN)
                rc = mf__error_set(MF_EBUSY, "run '%s/%s' is locked by another live process (%s)",
                                   flow, run_id, path.ptr);
            else
                rc = mf__error_errno(e, "cannot lock run lock", path.ptr);
            break;
        }
        /* A finishing holder unlinks the file after we opened it: our lock
         * would then be on an orphan inode nobody checks. Start over. */
        struct stat fst;
        if (fstat(fd, &fst) != 0 || stat(path.ptr, &st) != 0 ||
            fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
            close(fd);
            continue;
        }
        rc = held_add(fst.st_dev, fst.st_ino, fd);
        if (rc != MF_OK) {
            unlink(path.ptr);
            close(fd);
        } else {
            *acquired = true;
        }
        break;
    }
    pthread_mutex_unlock(&g_mutex);
out:
    mf_buf_dispose(&dir);
    mf_buf_dispose(&path);
    return rc;
}

int mf__meta_run_lock(mf_meta *m, const char *flow, const char *run_id)
{
    bool acquired;
    return mf__meta_run_lock_acquire(m, flow, run_id, &acquired);
}

int mf__meta_run_unlock(mf_meta *m, const char *flow, const char *run_id)
{
    mf_buf path = MF_BUF_INIT;
    int rc = lock_prepare(m, "run unlock", "unlocking a run", flow, run_id, &path);
    if (rc != MF_OK)
        goto out;
    pthread_mutex_lock(&g_mutex);
    struct stat st;
    held_lock *h = NULL;
    if (stat(path.ptr, &st) == 0)
        h = held_find(st.st_dev, st.st_ino);
    if (!h) {
        rc = mf__error_set(MF_ESTATE, "run '%s/%s' is not locked by this process", flow, run_id);
    } else {
        /* Unlink before closing: a checker then finds either our live lock
         * or no file, never a file left unlocked by a finished run. */
        if (unlink(path.ptr) != 0 && errno != ENOENT)
            rc = mf__error_errno(errno, "cannot remove run lock", path.ptr);
        close(h->fd);
        held_remove(h);
    }
    pthread_mutex_unlock(&g_mutex);
out:
    mf_buf_dispose(&path);
    return rc;
}

int mf__meta_run_alive(mf_meta *m, const char *flow, const char *run_id)
{
    mf_buf path = MF_BUF_INIT;
    int rc = lock_prepare(m, "run alive", "checking a run", flow, run_id, &path);
    if (rc != MF_OK)
        goto out;

    pthread_mutex_lock(&g_mutex);
    struct stat st;
    if (stat(path.ptr, &st) != 0) {
        /* No lock file: finished, or never locked. */
        rc = errno == ENOENT ? 0 : mf__error_errno(errno, "cannot check run lock", path.ptr);
    } else if (held_find(st.st_dev, st.st_ino)) {
        rc = 1;
    } else {
        /* Read-only suffices for F_GETLK, so readers on a read-only index
         * can check too. */
        int fd = open(path.ptr, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = errno == ENOENT ? 0 : mf__error_errno(errno, "cannot open run lock", path.ptr);
        } else {
            struct flock fl;
            whole_file(&fl, F_WRLCK);
            if (fcntl(fd, F_GETLK, &fl) != 0)
                rc = mf__error_errno(errno, "cannot test run lock", path.ptr);
            else
                rc = fl.l_type != F_UNLCK;
            close(fd);
        }
    }
    pthread_mutex_unlock(&g_mutex);
out:
    mf_buf_dispose(&path);
    return rc;
}
