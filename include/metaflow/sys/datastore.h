/*
 * libmetaflow - datastore backend interface (for backend authors).
 *
 * A datastore is a flat namespace of keys to immutable bytes. Keys are
 * '/'-separated relative paths of components [A-Za-z0-9._=+-]; no component
 * is empty, "." or "..", or starts with '.'; a key is at most 1024 bytes.
 * The core validates keys before calling a backend.
 *
 * Stability: this header is stable within a minor release series (0.1.x);
 * the vtable grows only by appending methods under a new version number.
 *
 * Threading: the core calls every method of one datastore from many threads
 * at once; a backend must be thread-safe. `free` is called once, when no
 * other call is in flight.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_SYS_DATASTORE_H
#define METAFLOW_SYS_DATASTORE_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mf_datastore is named in common.h; its vtable is defined here. */

/** One piece of an object written by `put`: the object is their concatenation. */
typedef struct mf_ds_iovec {
    const void *base;
    uint64_t len;
} mf_ds_iovec;

/** `put` flag: fail with MF_EEXISTS, writing nothing, if the key exists. */
#define MF_DS_PUT_IF_ABSENT 0x1u

/**
 * `put` flag: the object need not be durable when `put` returns; it must
 * be durable after the next successful `sync`. It must still be visible
 * atomically to readers at once. Backends without `sync` ignore the flag.
 */
#define MF_DS_PUT_DEFER_SYNC 0x2u

/**
 * `put` flag: the key names its content (a content-addressed blob). With
 * MF_DS_PUT_IF_ABSENT, an existing object whose size or first bytes differ
 * from the new one's is damaged (a write cut short or zeroed by a power
 * loss) and is replaced atomically instead of kept.
 */
#define MF_DS_PUT_CONTENT 0x4u

/** `get` length meaning "to the end of the object". */
#define MF_DS_TO_END UINT64_MAX

/**
 * Listing callback: one call per key under the prefix, in no set order.
 * `mtime` is seconds since the epoch of the object's last write.
 * Return 0 to go on, non-zero to stop (the listing then returns MF_EUSER).
 */
typedef int (*mf_ds_list_cb)(const char *key, uint64_t size, int64_t mtime,
                             void *payload);

#define MF_DATASTORE_VERSION 1

struct mf_datastore {
    /** MF_DATASTORE_VERSION when the backend was built. */
    unsigned int version;

    /** Release the backend. Called once. */
    void (*free)(mf_datastore *ds);

    /**
     * Write the object `key` atomically: a reader sees the old object, or
     * the whole new one, never part of it. With MF_DS_PUT_IF_ABSENT the
     * write happens only when the key does not exist (MF_EEXISTS if it
     * does); then the existing object's modification time is refreshed, so
     * that garbage collection's grace period protects a blob that a new
     * writer is about to reference again.
     * @return MF_OK, MF_EEXISTS, MF_EIO (nothing visible was written).
     */
    int (*put)(mf_datastore *ds, const char *key, const mf_ds_iovec *iov,
               size_t niov, uint32_t flags);

    /**
     * Read `len` bytes from offset `off` (MF_DS_TO_END for the rest) into
     * `out`, replacing its contents. A range past the end is clamped; an
     * offset past the end gives MF_ERANGE.
     * @return MF_OK, MF_ENOTFOUND, MF_ERANGE, MF_EIO, MF_ENOMEM.
     */
    int (*get)(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
               mf_buf *out);

    /**
     * Whether `key` exists; when it does and `size` is not NULL, its size.
     * @return MF_OK (exists), MF_ENOTFOUND, MF_EIO.
     */
    int (*exists)(mf_datastore *ds, const char *key, uint64_t *size);

    /**
     * Call `cb` for every key that starts with `prefix` ("" for all).
     * Objects being written are not listed.
     * @return MF_OK, MF_EUSER (the callback stopped), MF_EIO.
     */
    int (*list)(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb,
                void *payload);

    /**
     * Delete `key`. Deleting a missing key is MF_ENOTFOUND.
     * @return MF_OK, MF_ENOTFOUND, MF_EIO.
     */
    int (*del)(mf_datastore *ds, const char *key);

    /**
     * Optional (may be NULL): the local file that holds `key`, for backends
     * whose objects are plain files, so the core can mmap them. The file's
     * bytes are exactly the object's.
     * @return MF_OK, MF_ENOTFOUND, MF_ENOTSUP.
     */
    int (*local_path)(mf_datastore *ds, const char *key, mf_buf *path);

    /**
     * Optional (may be NULL): make every object written so far with
     * MF_DS_PUT_DEFER_SYNC durable. The core calls it before writing a task
     * manifest, so one sync covers all the blobs of a task.
     * @return MF_OK, MF_EIO.
     */
    int (*sync)(mf_datastore *ds);

    /* version 1 ends here; later versions append methods below. */
};

/** An all-zero vtable of the current version. */
#define MF_DATASTORE_INIT { MF_DATASTORE_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/**
 * Initialise a vtable: zero it and set its version.
 * @return MF_OK, MF_EVERSION (a version this library does not know).
 * @since 0.1
 */
MF_EXTERN(int) mf_datastore_init(mf_datastore *ds, unsigned int version);

/**
 * Factory for a registered backend: open the datastore at `root`
 * (backend-specific: a directory for "fs", s3://bucket/prefix for "s3").
 */
typedef int (*mf_datastore_open_cb)(mf_datastore **out, const char *root,
                                    void *payload);

/**
 * Register a backend under `name` ([a-z0-9_]+). Thread-safe.
 * @return MF_OK, MF_EEXISTS, MF_EINVAL, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_datastore_register(const char *name, mf_datastore_open_cb open,
                                     void *payload);

/** Remove a registration. @return MF_OK, MF_ENOTFOUND. @since 0.1 */
MF_EXTERN(int) mf_datastore_unregister(const char *name);

/**
 * Open a datastore through the registry ("fs" is built in).
 * @return MF_OK, MF_ENOTFOUND (no such backend), or the backend's error.
 * @since 0.1
 */
MF_EXTERN(int) mf_datastore_open(mf_datastore **out, const char *name,
                                 const char *root);

/** Free a datastore through its vtable; accepts NULL. @since 0.1 */
MF_EXTERN(void) mf_datastore_free(mf_datastore *ds);

/**
 * Check a key against the rules above.
 * @return MF_OK or MF_EINVAL naming the key and what is wrong.
 * @since 0.1
 */
MF_EXTERN(int) mf_datastore_key_check(const char *key);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_SYS_DATASTORE_H */
