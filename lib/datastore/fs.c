/*
 * The filesystem datastore ("fs", alias "local").
 *
 * Layout: object `key` is the plain file <root>/<key>, byte for byte, so the
 * core can mmap it (local_path). Every operation works relative to a
 * directory fd of the root (openat and friends): no global state, no
 * chdir, and a root given as a relative path keeps working if the host
 * changes directory.
 *
 * Atomicity: put writes a temp file ".tmp.<pid>.<n>.<rand>" in the target
 * directory, fdatasyncs it, then renames it over the key (put-if-absent:
 * renameat2(RENAME_NOREPLACE), or link()+unlink() on filesystems without
 * it, so exactly one concurrent writer wins), then fsyncs the directory.
 * Readers therefore see the old file or the whole new one.
 *
 * Durability: with MF_DS_PUT_DEFER_SYNC the fdatasync and the directory
 * fsync are skipped and fs_sync() (one syncfs) makes everything durable at
 * once; the core syncs before it writes the manifest that references the
 * blobs. A power loss before that sync can leave a blob short or empty
 * (delayed allocation): MF_DS_PUT_CONTENT makes the next put-if-absent of
 * that blob see the wrong size and replace it. A crash of the process
 * alone loses nothing (the page cache survives it). Temp names start
 * with '.', which no key component may, so they never collide with keys
 * and are never listed. A writer killed mid-put leaves its temp file
 * behind; mf__fs_clean_temps() removes old ones.
 *
 * Signals: a write past RLIMIT_FSIZE raises SIGXFSZ, which kills by
 * default. The library never changes signal dispositions; hosts that set
 * RLIMIT_FSIZE must ignore SIGXFSZ, and then put gets EFBIG and reports
 * MF_EIO like a full disk.
 *
 * Keys are checked again here even though the core checks them: backends
 * can be called directly, and a key is a path on this one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "datastore.h"

typedef struct fs_ds {
    mf_datastore parent; /* first: the vtable */
    int rootfd;
    char *root;          /* absolute, for messages and local_path */
} fs_ds;

/* Retries of put's create-directory / create-temp / publish sequence,
 * which can lose races with a concurrent del pruning empty directories or
 * with garbage collection deleting an object we found. Each retry means
 * another process made progress, so a small bound suffices. */
#define PUT_RETRIES 64

/* Largest byte count handed to one read/write call: Linux transfers at
 * most 0x7ffff000 bytes per call anyway. */
#define IO_MAX ((size_t)1 << 30)

/* Objects at least this large get their space reserved up front: it
 * reports a full disk before any byte is copied and limits fragmentation. */
#define PREALLOC_MIN ((uint64_t)1 << 20)

static _Atomic unsigned long tmp_counter;

/* Tests force the link()+unlink() path of put-if-absent, which the
 * filesystems they run on would otherwise never take. */
static atomic_int force_link_fallback;

void mf__fs_test_force_link_fallback(int on)
{
    atomic_store(&force_link_fallback, on);
}

static void fs_free(mf_datastore *ds);

/* strerror() is not thread-safe; the GNU strerror_r returns the string. */
#define ERRSTR(err, tmp) strerror_r((err), (tmp), sizeof(tmp))

static int fs_error(const fs_ds *fs, int code, int err, const char *op, const char *key)
{
    char tmp[128];
    return mf__error_set(code, "fs datastore '%s': %s '%s': %s", fs->root, op, key,
                         ERRSTR(err, tmp));
}

static int fs_notfound(const fs_ds *fs, const char *key)
{
    return mf__error_set(MF_ENOTFOUND, "fs datastore '%s': object '%s' not found",
                         fs->root, key);
}

/* errno of a lookup that means "no such object": a missing file or
 * directory on the way, a file where a directory was expected. */
static bool is_absent(int err)
{
    return err == ENOENT || err == ENOTDIR;
}

/* ---- directories */

/* Open directory `dir` under the root; "" is the root itself (returned as
 * is: close with close_dir). */
static int open_dir(const fs_ds *fs, const char *dir)
{
    if (!*dir)
        return fs->rootfd;
    return openat(fs->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void close_dir(const fs_ds *fs, int fd)
{
    if (fd >= 0 && fd != fs->rootfd)
        close(fd);
}

/* fsync the directory holding `path` (relative to the root), so a new
 * entry in it survives a crash. */
static int sync_parent(const fs_ds *fs, const char *path)
{
    char parent[MF__DS_KEY_MAX + 1];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    memcpy(parent, path, n);
    parent[n] = '\0';
    int fd = open_dir(fs, parent);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close_dir(fs, fd);
    return rc;
}

/* mkdir -p `dir` under the root, deepest first: usually only the last
 * component is missing, so one mkdirat does it. Losing a race to another
 * creator (EEXIST) is success; a concurrent del may remove a parent we just
 * made, which shows up as ENOENT and makes the caller retry. A new
 * directory is made durable (its parent fsynced) unless `deferred`: then
 * the datastore's next sync covers it, as it covers the deferred object.
 * Returns 0 or -errno. */
static int mkdir_p(const fs_ds *fs, const char *dir, bool deferred)
{
    if (mkdirat(fs->rootfd, dir, 0777) != 0) {
        if (errno == EEXIST)
            return 0;
        if (errno != ENOENT)
            return -errno;
        const char *slash = strrchr(dir, '/');
        if (!slash)
            return -ENOENT;
        char parent[MF__DS_KEY_MAX + 1];
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = '\0';
        int r = mkdir_p(fs, parent, deferred);
        if (r < 0)
            return r;
        if (mkdirat(fs->rootfd, dir, 0777) != 0)
            return errno == EEXIST ? 0 : -errno;
    }
    return deferred ? 0 : sync_parent(fs, dir);
}

/* Split `key` into its directory ("" at top level) and base name. */
static const char *split_key(const char *key, char dir[MF__DS_KEY_MAX + 1])
{
    const char *slash = strrchr(key, '/');
    if (!slash) {
        dir[0] = '\0';
        return key;
    }
    size_t n = (size_t)(slash - key);
    memcpy(dir, key, n);
    dir[n] = '\0';
    return slash + 1;
}

/* ---- put */

/* Write all of `iov` at offset 0 of `fd` without copying: pwritev straight
 * from the caller's memory, resuming after short writes and EINTR. Returns
 * 0 or -errno. */
static int write_all(int fd, const mf_ds_iovec *iov, size_t niov)
{
    struct iovec v[64];
    size_t i = 0;       /* current piece */
    uint64_t in = 0;    /* bytes of it already written */
    off_t pos = 0;

    for (;;) {
        while (i < niov && iov[i].len == in) {
            i++;
            in = 0;
        }
        if (i == niov)
            return 0;
        int n = 0;
        size_t batch = 0;
        uint64_t skip = in;
        for (size_t j = i; j < niov && n < 64 && batch < IO_MAX; j++, skip = 0) {
            uint64_t l = iov[j].len - skip;
            if (l == 0)
                continue;
            if (l > IO_MAX - batch)
                l = IO_MAX - batch;
            v[n].iov_base = (char *)iov[j].base + skip;
            v[n].iov_len = (size_t)l;
            n++;
            batch += (size_t)l;
        }
        ssize_t w = pwritev(fd, v, n, pos);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO; /* no progress and no error: do not spin */
        pos += w;
        uint64_t left = (uint64_t)w;
        while (left > 0) {
            uint64_t rem = iov[i].len - in;
            if (left >= rem) {
                left -= rem;
                i++;
                in = 0;
            } else {
                in += left;
                left = 0;
            }
        }
    }
}

/* Refresh the mtime of an existing object so that garbage collection's
 * grace period protects it for the writer about to reference it again.
 * Returns 0, -ENOENT (it vanished: GC won, the caller writes it again),
 * or 0 for other failures: the refresh is best effort (a shared store may
 * hold files we may not touch), and the object is there. */
static int refresh_mtime(int dirfd, const char *name)
{
    if (utimensat(dirfd, name, NULL, 0) < 0 && is_absent(errno))
        return -ENOENT;
    return 0;
}

/* Put-if-absent found `name`: refresh its mtime (so GC's grace period
 * covers the writer about to reference it again) and report MF_EEXISTS, or
 * -ENOENT when it vanished meanwhile and the put should retry. Closes
 * `dirfd`. */
static int already_exists(const fs_ds *fs, int dirfd, const char *name, const char *key)
{
    int r = refresh_mtime(dirfd, name);
    close_dir(fs, dirfd);
    if (r == -ENOENT)
        return r;
    return mf__error_set(MF_EEXISTS, "fs datastore '%s': object '%s' already exists",
                         fs->root, key);
}

/* Does the object `name` have exactly `size` bytes? */
static bool object_has_size(int dirfd, const char *name, uint64_t size)
{
    struct stat st;
    return fstatat(dirfd, name, &st, 0) == 0 && (uint64_t)st.st_size == size;
}

/* Does the object `name` start with the first bytes (up to 4 KiB) of the
 * object about to be written? Under MF_DS_PUT_CONTENT the key names the
 * content, so any difference means damage (zeros left by a power loss). */
static bool object_starts_with(int dirfd, const char *name, const mf_ds_iovec *iov,
                               size_t niov)
{
    uint8_t want[4096], got[4096];
    size_t n = 0;
    for (size_t i = 0; i < niov && n < sizeof want; i++) {
        size_t take = iov[i].len < sizeof want - n ? (size_t)iov[i].len : sizeof want - n;
        if (take)
            memcpy(want + n, iov[i].base, take);
        n += take;
    }
    if (n == 0)
        return true;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = pread(fd, got, n, 0);
    close(fd);
    return r == (ssize_t)n && memcmp(want, got, n) == 0;
}

/* Make every deferred write durable: one syncfs() flushes the data and the
 * directory entries of all of them, instead of two fsyncs per object. */
static int fs_sync(mf_datastore *ds)
{
    fs_ds *fs = (fs_ds *)ds;
    if (syncfs(fs->rootfd) < 0)
        return fs_error(fs, MF_EIO, errno, "sync", "");
    return MF_OK;
}

/* Is `name` in `dirfd` an existing object (regular file)? */
static bool object_exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, 0) == 0 && S_ISREG(st.st_mode);
}

/* Publish the written temp file as `name` without replacing an existing
 * object. Returns 0, -EEXIST, or -errno. The temp name is gone afterwards
 * unless an error other than EEXIST is returned. */
static int publish_noreplace(int dirfd, const char *tmp, const char *name)
{
    int err = EINVAL;
    if (!atomic_load(&force_link_fallback)) {
        if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0)
            return 0;
        err = errno;
    }
    if (err == EEXIST) {
        unlinkat(dirfd, tmp, 0);
        return -EEXIST;
    }
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP)
        return -err;
    /* No RENAME_NOREPLACE here (older kernels, some network and FUSE
     * filesystems): link() fails with EEXIST atomically too, at the cost
     * of a second name to remove. */
    if (linkat(dirfd, tmp, dirfd, name, 0) < 0) {
        err = errno;
        if (err == EEXIST)
            unlinkat(dirfd, tmp, 0);
        return -err;
    }
    unlinkat(dirfd, tmp, 0);
    return 0;
}

static int fs_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov,
                  size_t niov, uint32_t flags)
{
    fs_ds *fs = (fs_ds *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    if (niov > 0 && !iov)
        return mf__error_set(MF_EINVAL, "fs datastore '%s': put '%s': NULL iovec",
                             fs->root, key);
    uint64_t total = 0;
    for (size_t i = 0; i < niov; i++) {
        if (iov[i].len > 0 && !iov[i].base)
            return mf__error_set(MF_EINVAL, "fs datastore '%s': put '%s': NULL iovec base",
                                 fs->root, key);
        if (total + iov[i].len < total || total + iov[i].len > (uint64_t)INT64_MAX)
            return mf__error_set(MF_EINVAL, "fs datastore '%s': put '%s': object too large",
                                 fs->root, key);
        total += iov[i].len;
    }
    const bool if_absent = flags & MF_DS_PUT_IF_ABSENT;
    const bool defer = flags & MF_DS_PUT_DEFER_SYNC;
    const bool content = flags & MF_DS_PUT_CONTENT;
    char dir[MF__DS_KEY_MAX + 1];
    const char *name = split_key(key, dir);

    for (int attempt = 0;; attempt++) {
        if (attempt >= PUT_RETRIES)
            return mf__error_set(MF_EIO,
                                 "fs datastore '%s': put '%s': gave up after %d attempts "
                                 "racing with concurrent deletes", fs->root, key, attempt);
        int dirfd = open_dir(fs, dir);
        if (dirfd < 0) {
            int err = errno;
            if (err != ENOENT)
                return fs_error(fs, MF_EIO, err, "put: open directory of", key);
            int r = mkdir_p(fs, dir, defer);
            if (r < 0 && r != -ENOENT)
                return fs_error(fs, MF_EIO, -r, "put: create directory of", key);
            continue;
        }

        /* Content-addressed writers put-if-absent the same blob over and
         * over: answer from one stat instead of writing the bytes again. */
        bool repair = false;
        if (if_absent && object_exists_at(dirfd, name)) {
            if (content && (!object_has_size(dirfd, name, total) ||
                            !object_starts_with(dirfd, name, iov, niov))) {
                /* A blob cut short by a power loss before its sync: write
                 * it again and replace it atomically. */
                repair = true;
            } else {
                int r = already_exists(fs, dirfd, name, key);
                if (r == -ENOENT)
                    continue;
                return r;
            }
        }

        char tmp[80];
        snprintf(tmp, sizeof tmp, ".tmp.%ld.%lu.%08lx", (long)getpid(),
                 (unsigned long)atomic_fetch_add(&tmp_counter, 1),
                 (unsigned long)(((uintptr_t)&tmp >> 4) ^ (uintptr_t)mf__mono_us()) &
                     0xffffffffUL);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            int err = errno;
            close_dir(fs, dirfd);
            /* ENOENT: a concurrent del pruned the (empty) directory after
             * we opened it; EEXIST: a name clash. Both: try again. */
            if (err == ENOENT || err == EEXIST)
                continue;
            return fs_error(fs, MF_EIO, err, "put: create temp file for", key);
        }

        const char *op = "put: write";
        int r = 0;
        /* KEEP_SIZE: a file whose bytes never reached the disk (deferred
         * sync, then a power loss) must not come back full-size and zero. */
        if (total >= PREALLOC_MIN &&
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total) < 0) {
            int err = errno;
            /* Not every filesystem can reserve space; only a definite
             * "it will not fit" is an error. */
            if (err == ENOSPC || err == EFBIG || err == EDQUOT || err == EIO) {
                r = -err;
                op = "put: reserve space for";
            }
        }
        if (r == 0)
            r = write_all(fd, iov, niov);
        if (r == 0 && !defer && fdatasync(fd) < 0) {
            r = -errno;
            op = "put: sync";
        }
        if (close(fd) < 0 && r == 0) {
            r = -errno; /* NFS reports deferred write errors here */
            op = "put: close";
        }
        if (r < 0) {
            unlinkat(dirfd, tmp, 0);
            close_dir(fs, dirfd);
            return fs_error(fs, MF_EIO, -r, op, key);
        }

        if (if_absent && !repair) {
            r = publish_noreplace(dirfd, tmp, name);
            if (r == -EEXIST && !object_exists_at(dirfd, name)) {
                /* Not an object: a directory of longer keys ("a" when
                 * "a/b" exists), which this layout cannot hold both of. */
                close_dir(fs, dirfd);
                return fs_error(fs, MF_EIO, EISDIR, "put: publish", key);
            }
            if (r == -EEXIST) {
                /* Lost the race to another writer of the same key. */
                r = already_exists(fs, dirfd, name, key);
                if (r == -ENOENT)
                    continue;
                return r;
            }
        } else {
            r = renameat(dirfd, tmp, dirfd, name) < 0 ? -errno : 0;
        }
        if (r < 0) {
            unlinkat(dirfd, tmp, 0);
            close_dir(fs, dirfd);
            if (r == -ENOENT)
                continue; /* directory pruned under us: the temp is gone too */
            return fs_error(fs, MF_EIO, -r, "put: rename temp file to", key);
        }
        /* The rename is durable only once the directory is synced. The
         * object is visible already; failing here means "not durable",
         * and the caller retrying the put is harmless. */
        r = !defer && fsync(dirfd) < 0 ? -errno : 0;
        close_dir(fs, dirfd);
        if (r < 0)
            return fs_error(fs, MF_EIO, -r, "put: sync directory of", key);
        return MF_OK;
    }
}

/* ---- get, exists, local_path */

static int fs_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
                  mf_buf *out)
{
    fs_ds *fs = (fs_ds *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    if (!out)
        return mf__error_set(MF_EINVAL, "fs datastore '%s': get '%s': NULL buffer",
                             fs->root, key);
    int fd = openat(fs->rootfd, key, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (is_absent(err))
            return fs_notfound(fs, key);
        return fs_error(fs, MF_EIO, err, "get: open", key);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return fs_error(fs, MF_EIO, err, "get: stat", key);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd); /* a directory of other keys is not an object */
        return fs_notfound(fs, key);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (off > size) {
        close(fd);
        return mf__error_set(MF_ERANGE,
                             "fs datastore '%s': offset %llu past the end of '%s' (%llu bytes)",
                             fs->root, (unsigned long long)off, key,
                             (unsigned long long)size);
    }
    uint64_t n = size - off;
    if (len < n)
        n = len;
    if (n >= SIZE_MAX) {
        close(fd);
        return mf__error_set(MF_ENOMEM, "fs datastore '%s': get '%s': %llu bytes do not fit "
                             "in memory", fs->root, key, (unsigned long long)n);
    }
    /* Read straight into the caller's buffer: no staging copy. */
    out->size = 0;
    rc = mf__buf_grow(out, (size_t)n);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (n >= PREALLOC_MIN)
        posix_fadvise(fd, (off_t)off, (off_t)n, POSIX_FADV_SEQUENTIAL);
    size_t got = 0;
    while (got < n) {
        size_t want = (size_t)n - got;
        if (want > IO_MAX)
            want = IO_MAX;
        ssize_t r = pread(fd, out->ptr + got, want, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            close(fd);
            out->ptr[0] = '\0';
            return fs_error(fs, MF_EIO, err, "get: read", key);
        }
        if (r == 0) {
            /* Objects are replaced by rename, never truncated in place, so
             * a short file means someone edited it behind our back. */
            close(fd);
            out->ptr[0] = '\0';
            return mf__error_set(MF_EIO, "fs datastore '%s': get '%s': file shrank while "
                                 "being read (modified outside the datastore?)",
                                 fs->root, key);
        }
        got += (size_t)r;
    }
    close(fd);
    out->size = (size_t)n;
    out->ptr[n] = '\0';
    return MF_OK;
}

static int fs_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    fs_ds *fs = (fs_ds *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstatat(fs->rootfd, key, &st, 0) < 0) {
        int err = errno;
        if (is_absent(err))
            return fs_notfound(fs, key);
        return fs_error(fs, MF_EIO, err, "exists: stat", key);
    }
    if (!S_ISREG(st.st_mode))
        return fs_notfound(fs, key);
    if (size)
        *size = (uint64_t)st.st_size;
    return MF_OK;
}

static int fs_local_path(mf_datastore *ds, const char *key, mf_buf *path)
{
    fs_ds *fs = (fs_ds *)ds;
    int rc = fs_exists(ds, key, NULL);
    if (rc < 0)
        return rc;
    if (!path)
        return mf__error_set(MF_EINVAL, "fs datastore '%s': local_path '%s': NULL buffer",
                             fs->root, key);
    mf__buf_clear(path);
    return mf__buf_printf(path, "%s/%s", fs->root, key);
}

/* ---- listing */

typedef struct walk {
    const fs_ds *fs;
    bool temps;           /* visit temp files instead of objects */
    int64_t older_than;   /* temps: only those older */
    uint64_t removed;     /* temps: how many were removed */
    mf_ds_list_cb cb;     /* objects */
    void *payload;
    char key[MF__DS_KEY_MAX + 2];
} walk;

static bool valid_component(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '=' ||
              c == '+' || c == '-'))
            return false;
    }
    return true;
}

/* Walk directory `dirfd` (consumed) whose key prefix is w->key[0..klen).
 * Entries of this directory must start with `name_prefix` (only at the top
 * of a listing whose prefix ends mid-component). Returns MF_OK, MF_EUSER,
 * or an error. Directories that vanish mid-walk (concurrent del) are
 * skipped: the listing is of keys that exist at some point during it. */
static int walk_dir(walk *w, int dirfd, size_t klen, const char *name_prefix)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        int err = errno;
        close(dirfd);
        w->key[klen] = '\0';
        return fs_error(w->fs, MF_EIO, err, "list: open directory", w->key);
    }
    size_t plen = strlen(name_prefix);
    int rc = MF_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0) {
                int err = errno;
                w->key[klen] = '\0';
                rc = fs_error(w->fs, MF_EIO, err, "list: read directory", w->key);
            }
            break;
        }
        const char *name = de->d_name;
        bool dot = name[0] == '.';
        if (dot && (!w->temps || strncmp(name, ".tmp.", 5) != 0))
            continue; /* ".", "..", hidden files; temps unless asked for */
        if (!dot && (strncmp(name, name_prefix, plen) != 0 || !valid_component(name)))
            continue; /* not under the prefix, or cannot be a key */
        size_t nlen = strlen(name);
        size_t sep = klen ? 1 : 0;
        if (klen + sep + nlen > MF__DS_KEY_MAX)
            continue;
        if (sep)
            w->key[klen] = '/';
        memcpy(w->key + klen + sep, name, nlen + 1);
        size_t nklen = klen + sep + nlen;

        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (is_absent(errno))
                continue;
            rc = fs_error(w->fs, MF_EIO, errno, "list: stat", w->key);
            break;
        }
        if (S_ISDIR(st.st_mode) && !dot) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (is_absent(errno))
                    continue;
                rc = fs_error(w->fs, MF_EIO, errno, "list: open directory", w->key);
                break;
            }
            rc = walk_dir(w, sub, nklen, "");
            if (rc < 0)
                break;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue; /* symlinks, sockets: not objects */
        if (dot) {
            if ((int64_t)st.st_mtime < w->older_than &&
                unlinkat(dirfd, name, 0) == 0)
                w->removed++;
            continue;
        }
        if (w->temps)
            continue;
        if (w->cb(w->key, (uint64_t)st.st_size, (int64_t)st.st_mtime, w->payload) != 0) {
            w->key[nklen] = '\0';
            rc = mf__error_set(MF_EUSER, "fs datastore '%s': listing stopped by the "
                               "callback at '%s'", w->fs->root, w->key);
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Start a walk at the directory part of `prefix`. */
static int walk_prefix(walk *w, const char *prefix)
{
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) : 0;
    memcpy(w->key, prefix, dlen);
    w->key[dlen] = '\0';
    int fd = open_dir(w->fs, w->key);
    if (fd == w->fs->rootfd)
        fd = openat(w->fs->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (is_absent(errno))
            return MF_OK; /* nothing under this prefix */
        return fs_error(w->fs, MF_EIO, errno, "list: open directory", w->key);
    }
    return walk_dir(w, fd, dlen, slash ? slash + 1 : prefix);
}

static int fs_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb, void *payload)
{
    fs_ds *fs = (fs_ds *)ds;
    if (!prefix)
        prefix = "";
    int rc = mf__datastore_prefix_check(prefix);
    if (rc < 0)
        return rc;
    if (!cb)
        return mf__error_set(MF_EINVAL, "fs datastore '%s': list '%s': NULL callback",
                             fs->root, prefix);
    walk *w = calloc(1, sizeof *w);
    if (!w)
        return mf__error_oom();
    w->fs = fs;
    w->cb = cb;
    w->payload = payload;
    rc = walk_prefix(w, prefix);
    free(w);
    return rc;
}

int mf__fs_clean_temps(mf_datastore *ds, int64_t older_than, uint64_t *removed)
{
    if (removed)
        *removed = 0;
    if (!mf__fs_root(ds))
        return mf__error_set(MF_EINVAL, "mf__fs_clean_temps: not an fs datastore");
    walk *w = calloc(1, sizeof *w);
    if (!w)
        return mf__error_oom();
    w->fs = (const fs_ds *)ds;
    w->temps = true;
    w->older_than = older_than;
    int rc = walk_prefix(w, "");
    if (removed)
        *removed = w->removed;
    free(w);
    return rc;
}

/* ---- del */

static int fs_del(mf_datastore *ds, const char *key)
{
    fs_ds *fs = (fs_ds *)ds;
    int rc = mf_datastore_key_check(key);
    if (rc < 0)
        return rc;
    if (unlinkat(fs->rootfd, key, 0) < 0) {
        int err = errno;
        if (is_absent(err) || err == EISDIR)
            return fs_notfound(fs, key);
        return fs_error(fs, MF_EIO, err, "del: unlink", key);
    }
    /* Prune directories left empty, so GC of blobs does not leave
     * thousands of empty data/xx directories. Best effort: ENOTEMPTY (or a
     * concurrent put recreating them) just stops it; put retries if its
     * directory disappears under it. */
    char path[MF__DS_KEY_MAX + 1];
    size_t len = strlen(key);
    memcpy(path, key, len + 1);
    for (;;) {
        char *slash = strrchr(path, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (unlinkat(fs->rootfd, path, AT_REMOVEDIR) < 0)
            break;
    }
    return MF_OK;
}

/* ---- open / free */

static void fs_free(mf_datastore *ds)
{
    fs_ds *fs = (fs_ds *)ds;
    if (!fs)
        return;
    if (fs->rootfd >= 0)
        close(fs->rootfd);
    free(fs->root);
    free(fs);
}

const char *mf__fs_root(const mf_datastore *ds)
{
    if (!ds || ds->free != fs_free)
        return NULL;
    return ((const fs_ds *)ds)->root;
}

int mf__fs_open(mf_datastore **out, const char *root)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "fs datastore: NULL out");
    *out = NULL;
    if (root && strncmp(root, "file://", 7) == 0)
        root += 7;
    if (!root || !*root)
        return mf__error_set(MF_EINVAL, "fs datastore: empty root directory");

    char tmp[128];
    int r = mf__mkdir_p(root);
    if (r == MF_ENOMEM)
        return r;
    if (r < 0) /* the message names the directory that could not be made */
        return mf__error_wrap("fs datastore: cannot create root '%s'", root);
    fs_ds *fs = calloc(1, sizeof *fs);
    if (!fs)
        return mf__error_oom();
    fs->rootfd = -1;
    int rc = mf_datastore_init(&fs->parent, MF_DATASTORE_VERSION);
    if (rc < 0) {
        free(fs);
        return rc;
    }
    fs->parent.free = fs_free;
    fs->parent.put = fs_put;
    fs->parent.get = fs_get;
    fs->parent.exists = fs_exists;
    fs->parent.list = fs_list;
    fs->parent.del = fs_del;
    fs->parent.local_path = fs_local_path;
    fs->parent.sync = fs_sync;

    fs->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->rootfd < 0) {
        int err = errno;
        fs_free(&fs->parent);
        return mf__error_set(MF_EIO, "fs datastore: cannot open root '%s': %s", root,
                             ERRSTR(err, tmp));
    }
    fs->root = realpath(root, NULL);
    if (!fs->root) {
        int err = errno;
        fs_free(&fs->parent);
        if (err == ENOMEM)
            return mf__error_oom();
        return mf__error_set(MF_EIO, "fs datastore: cannot resolve root '%s': %s", root,
                             ERRSTR(err, tmp));
    }
    *out = &fs->parent;
    return MF_OK;
}
