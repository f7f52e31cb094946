/*
 * Internal: the content-addressed artifact store (format v1, see
 * docs/datastore-format.md) on top of any datastore vtable.
 *
 * Key layout in the datastore:
 *   data/<h0h1>/<64 hex>                    blobs (data or chunk lists)
 *   <Flow>/<run>/_run                       run record (msgpack, lib/meta)
 *   <Flow>/<run>/<step>/<task>/<attempt>.manifest   task manifests
 *
 * Thread-safety: an mf_store may be used from many threads at once.
 */
#ifndef MF_STORE_H
#define MF_STORE_H

#include "core/core.h"
#include "metaflow/sys/datastore.h"

typedef struct mf_store mf_store;

/* Thresholds (bytes) of format v1. */
#define MF_STORE_INLINE_MAX 1024u          /* values below are inlined in manifests */
#define MF_STORE_CHUNK_THRESHOLD (4u << 20) /* values above are chunked */

/* The store does not own `ds`. */
int mf__store_new(mf_store **out, mf_datastore *ds);
void mf__store_free(mf_store *store);
mf_datastore *mf__store_datastore(mf_store *store);

/* Datastore keys of the layout above (into `out`, replacing it). */
int mf__store_blob_key(const uint8_t key[MF_SHA256_LEN], mf_buf *out);
int mf__store_run_key(const char *flow, const char *run_id, mf_buf *out);
int mf__store_manifest_key(const char *flow, const char *run_id, const char *step,
                           const char *task_id, uint32_t attempt, mf_buf *out);
/* Parse a manifest key back into its parts (false if `key` is not one). */
bool mf__store_parse_manifest_key(const char *key, mf_buf *flow, mf_buf *run_id,
                                  mf_buf *step, mf_buf *task_id, uint32_t *attempt);

/*
 * Store a value as blob(s), put-if-absent, and return its content key
 * (SHA-256 of the bytes for a single blob; for a chunked value, the
 * SHA-256 of its chunk list with the last byte complemented). `flags` takes
 * MF_PUT_RAW (never compress). Values above MF_STORE_CHUNK_THRESHOLD are
 * chunked. Inlining is the caller's decision
 * (the manifest); this always writes a blob.
 */
int mf__store_put(mf_store *store, const void *data, uint64_t len, uint32_t flags,
                  uint8_t key_out[MF_SHA256_LEN]);

/*
 * Store a value read from `read` (mf_task_put_stream) with memory bounded
 * independently of its size. The result is exactly mf__store_put()'s for
 * the same bytes and flags. A value of at most MF_STORE_STREAM_HOLD bytes
 * is only collected: `*stored` is false and `small` holds its bytes, for
 * the caller to store as it stores any buffer (inline or mf__store_put).
 * A longer one is stored: `*stored` is true, `key_out` is its key and
 * `small` is left empty. `*size_out` is the value's size either way.
 * `read` is called on this thread only. MF_EUSER when it returns < 0,
 * MF_EINVAL when it returns more than it was asked for.
 */
#define MF_STORE_STREAM_HOLD (16u << 20)
int mf__store_put_stream(mf_store *store, mf_read_cb read, void *payload, uint32_t flags,
                         mf_buf *small, bool *stored, uint8_t key_out[MF_SHA256_LEN],
                         uint64_t *size_out);

/*
 * Write bytes [off, off+len) of a value (clamped; MF_ERANGE if off > size)
 * to `write` in order, on this thread, every byte verified by its blob's
 * checksum (the chunks at the edges of a range are read whole). Chunks are
 * fetched in parallel a few at a time, so memory stays bounded whatever the
 * value's size; a value that is one blob comes in one call. `size` as for
 * mf__store_get_range(). MF_EUSER when `write` returns non-zero.
 */
int mf__store_get_stream(mf_store *store, const uint8_t key[MF_SHA256_LEN], uint64_t size,
                         uint64_t off, uint64_t len, mf_write_cb write, void *payload);

/* Read a whole value, verifying checksums (MF_ECORRUPT naming the key). */
int mf__store_get(mf_store *store, const uint8_t key[MF_SHA256_LEN], mf_buf *out);

/* Read bytes [off, off+len) of a value (clamped; MF_ERANGE if off > size).
 * `size` is the value's size as its reference records it (MF_STORE_ANY_SIZE
 * if unknown): a stored value of another size is MF_ECORRUPT, as for whole
 * reads. `out` is left empty on failure. */
#define MF_STORE_ANY_SIZE UINT64_MAX
int mf__store_get_range(mf_store *store, const uint8_t key[MF_SHA256_LEN], uint64_t size,
                        uint64_t off, uint64_t len, mf_buf *out);

/* Size of a stored value (from its header or chunk list). */
int mf__store_size(mf_store *store, const uint8_t key[MF_SHA256_LEN], uint64_t *size);

/*
 * Map a value as one contiguous read-only region. Zero-copy (file mmap)
 * when every blob is raw, its payload page-aligned, and the datastore has
 * local_path; otherwise the value is read (verified) into an anonymous
 * mapping made read-only. `zero_copy` (may be NULL) tells which.
 */
typedef struct mf__mapping mf__mapping;
int mf__store_map(mf_store *store, const uint8_t key[MF_SHA256_LEN],
                  mf__mapping **out, const void **ptr, uint64_t *len,
                  int *zero_copy);
void mf__mapping_free(mf__mapping *map);

/* Counters since mf__store_new(), for tests and benchmarks. */
typedef struct mf__store_stats {
    uint64_t blobs_written;  /* puts that created a blob */
    uint64_t bytes_written;  /* their object sizes, headers included */
    uint64_t blobs_existing; /* put-if-absent found the blob already there */
} mf__store_stats;
void mf__store_stats_get(mf_store *store, mf__store_stats *out);

/* Verify one blob by datastore key ("data/ab/..."): header, checksum,
 * and for a chunk list that its chunks exist. MF_OK or MF_ECORRUPT. */
int mf__store_verify_blob(mf_store *store, const char *ds_key);

/* Garbage collection over the whole datastore (see mf_gc()). */
int mf__store_gc(mf_store *store, int64_t grace_seconds, uint32_t flags,
                 mf_gc_stats *stats);

/* ---- task manifests (lib/store/manifest.c) */

typedef struct mf__part {
    uint8_t key[MF_SHA256_LEN]; /* SHA-256 content key (also for inline values) */
    uint64_t size;              /* bytes of the value */
    /* malloc'ed bytes when inlined, else NULL. An inlined empty value has
     * a non-NULL inline_data (1 byte allocated) so that it reads as
     * inlined. On decode the key is checked against the SHA-256 of the
     * inline bytes. */
    uint8_t *inline_data;
} mf__part;

typedef struct mf__martifact {
    char *name;
    char *encoding;
    uint32_t nparts;
    mf__part *parts;
} mf__martifact;

#define MF_MANIFEST_FORMAT 1

typedef struct mf__manifest {
    uint32_t format;            /* MF_MANIFEST_FORMAT */
    char *flow, *run_id, *step, *task_id;
    uint32_t attempt;
    int32_t status;             /* mf_task_status */
    int64_t started_us, finished_us;
    size_t foreach_depth;
    uint32_t *foreach_index, *foreach_nsplits;
    char **foreach_value;
    size_t ninputs;
    char **input_paths;
    size_t nartifacts;
    mf__martifact *artifacts;   /* sorted by name, unique */
    /* A msgpack map of runtime fields (transition taken, foreach
     * cardinality, exception, ...) kept verbatim; empty when absent. */
    mf_buf extra;
} mf__manifest;

int mf__manifest_encode(const mf__manifest *m, mf_buf *out);
/* Decode with full bounds checking; MF_ECORRUPT / MF_EVERSION naming `what`. */
int mf__manifest_decode(mf__manifest *m, const void *data, size_t len, const char *what);
void mf__manifest_clear(mf__manifest *m); /* frees everything, zeroes */

#endif /* MF_STORE_H */
