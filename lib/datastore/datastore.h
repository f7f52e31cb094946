/*
 * Internal: the datastore registry and the built-in backends.
 *
 * The public vtable and registry API is include/metaflow/sys/datastore.h;
 * this header adds what other subsystems and tests reach directly.
 */
#ifndef MF_DATASTORE_INTERNAL_H
#define MF_DATASTORE_INTERNAL_H

#include "core/core.h"
#include "metaflow/sys/datastore.h"

/* The longest key, in bytes (the header's rule). */
#define MF__DS_KEY_MAX 1024u

/*
 * Check a listing prefix: "" or the start of a valid key, so that it can
 * never name a path outside the datastore. Every complete component (those
 * followed by '/') obeys the key rules; the last, possibly partial, one
 * uses key characters and does not start with '.'; a trailing '/' is
 * allowed. MF_OK or MF_EINVAL naming the prefix.
 */
int mf__datastore_prefix_check(const char *prefix);

/*
 * Whether a vtable may be called: known version, NULL-free required
 * methods. MF_OK or MF_EVERSION / MF_EINVAL naming `what` (the backend).
 * Optional methods (local_path) are checked by the caller at use.
 */
int mf__datastore_check(const mf_datastore *ds, const char *what);

/*
 * Call the optional `local_path` method the way the core must: only when
 * the vtable's version has it and it is not NULL. Returns what the backend
 * returns, or MF_ENOTSUP (no local files) without touching `path`.
 */
int mf__datastore_local_path(mf_datastore *ds, const char *key, mf_buf *path);

/* Call the optional `sync` method when the backend has it (MF_OK when it
 * does not: its writes are durable when put returns). */
int mf__datastore_sync(mf_datastore *ds);

/*
 * The filesystem backend ("fs", alias "local"). `root` is a directory,
 * created with its parents when missing ("file://" prefix accepted). Objects
 * are plain files <root>/<key> whose bytes are exactly the object's, so
 * local_path() is implemented and the core may mmap them; files and
 * directories whose names start with '.' are never listed (temp files of
 * writes in progress are ".tmp.*").
 *
 * Hosts that set RLIMIT_FSIZE must ignore SIGXFSZ (the library never
 * changes signal dispositions): then a write past the limit fails with
 * EFBIG, which put() reports as MF_EIO, instead of killing the process.
 *
 * Thread- and process-safe: any number of threads and processes may use the
 * same root at once; put is atomic (temp file, fsync, rename) and
 * put-if-absent has exactly one winner (renameat2 RENAME_NOREPLACE, or
 * link()+unlink() where the filesystem lacks it).
 *
 * Returns MF_OK, MF_EINVAL (empty root), MF_EIO (cannot create or open
 * root), MF_ENOMEM.
 */
int mf__fs_open(mf_datastore **out, const char *root);

/* The absolute root of an fs datastore (borrowed, lives as long as `ds`),
 * or NULL when `ds` is not an fs datastore. */
const char *mf__fs_root(const mf_datastore *ds);

/*
 * Remove temp files (".tmp.*") older than `older_than` seconds (since the
 * epoch) left by writers that died mid-put. Safe while writers run as long
 * as `older_than` is well in the past (a live put's temp file is recent).
 * `removed` (may be NULL) counts them. MF_OK, MF_EINVAL (not fs), MF_EIO.
 */
int mf__fs_clean_temps(mf_datastore *ds, int64_t older_than, uint64_t *removed);

/* Tests only: make put-if-absent use link()+unlink() instead of
 * renameat2(RENAME_NOREPLACE), as on filesystems without the latter.
 * Process-wide; inherited by fork(). */
void mf__fs_test_force_link_fallback(int on);

#endif /* MF_DATASTORE_INTERNAL_H */
