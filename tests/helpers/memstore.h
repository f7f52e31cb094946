/*
 * An in-memory mf_datastore for tests: the reference implementation of the
 * datastore contract (metaflow/sys/datastore.h), plus hooks that let tests
 * inject failures, age objects for GC tests and count calls.
 *
 * Thread-safety: every function here, and every vtable method, may be called
 * from many threads at once (one mutex per store). The listing callback is
 * called without the mutex held, on a snapshot taken when `list` starts, so
 * a callback may call back into the store (GC deleting while listing).
 *
 * Keys are validated with mf_datastore_key_check() like the core does, so a
 * test that reaches the vtable with a bad key gets MF_EINVAL, as with fs.
 * `local_path` is NULL: the memstore has no files, which also exercises the
 * core's path for backends without it.
 */
#ifndef MF_TEST_MEMSTORE_H
#define MF_TEST_MEMSTORE_H

#include <stdint.h>

#include "metaflow/sys/datastore.h"

/* A new empty store; free it with mf_datastore_free() (or ds->free(ds)).
 * Returns MF_OK or MF_ENOMEM. */
int mf_test_memstore_new(mf_datastore **out);

/* Operations that failure injection and counters refer to. */
typedef enum mf_test_memstore_op {
    MF_TEST_MEMSTORE_PUT = 0,
    MF_TEST_MEMSTORE_GET,
    MF_TEST_MEMSTORE_EXISTS,
    MF_TEST_MEMSTORE_LIST,
    MF_TEST_MEMSTORE_DEL,
    MF_TEST_MEMSTORE_NOPS
} mf_test_memstore_op;

/* Make the next `n` puts fail with `code` (e.g. MF_EIO) without storing
 * anything. n == 0 cancels. Validation failures (MF_EINVAL) are reported
 * before injected ones and do not consume them. */
void mf_test_memstore_fail_next(mf_datastore *ds, int code, unsigned n);

/* Same for any operation. Failing puts write nothing, failing deletes
 * delete nothing; a failing list calls the callback for nothing. */
void mf_test_memstore_fail_next_op(mf_datastore *ds, mf_test_memstore_op op,
                                   int code, unsigned n);

/* Make the first `after` puts succeed, then the next `n` fail with `code`:
 * "the third chunk upload fails". */
void mf_test_memstore_fail_after(mf_datastore *ds, mf_test_memstore_op op,
                                 unsigned after, int code, unsigned n);

/* Set the modification time (seconds since the epoch) of `key`, to age a
 * blob past a GC grace period. MF_OK or MF_ENOTFOUND. */
int mf_test_memstore_set_mtime(mf_datastore *ds, const char *key, int64_t mtime);

/* Fixed clock for new writes (and put-if-absent refreshes): 0 (the default)
 * means the real clock, time(NULL). */
void mf_test_memstore_set_now(mf_datastore *ds, int64_t now);

/* Calls per operation since creation or the last reset, counting failed
 * ones, and the bytes written by successful puts. */
typedef struct mf_test_memstore_stats {
    uint64_t calls[MF_TEST_MEMSTORE_NOPS];
    uint64_t put_ok;          /* puts that stored an object */
    uint64_t put_eexists;     /* put-if-absent calls that found the key */
    uint64_t bytes_put;       /* bytes stored by successful puts */
    uint64_t objects;         /* objects currently stored */
    uint64_t bytes_stored;    /* their total size */
} mf_test_memstore_stats;

void mf_test_memstore_stats_get(mf_datastore *ds, mf_test_memstore_stats *out);
void mf_test_memstore_stats_reset(mf_datastore *ds);

/* Overwrite one byte of a stored object in place (bypassing atomic put), to
 * test corruption detection. MF_OK, MF_ENOTFOUND, MF_ERANGE. */
int mf_test_memstore_corrupt(mf_datastore *ds, const char *key, uint64_t off,
                             uint8_t xor_mask);

#endif /* MF_TEST_MEMSTORE_H */
