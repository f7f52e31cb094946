/*
 * Internal to lib/store: blob headers, chunk lists, the chunker, codecs
 * and the worker pool. The byte layouts are documented in
 * docs/datastore-format.md; keep the two in step.
 */
#ifndef MF_STORE_INT_H
#define MF_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Little-endian fixed-width fields of the on-disk formats. */
static inline void mf__le32_put(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void mf__le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t mf__le32_get(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t mf__le64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- blob header (blob.c) */

#define MF__BLOB_MAGIC "MFBL"
#define MF__BLOB_VERSION 1
#define MF__BLOB_HDR_MIN 64u     /* the fixed part every version keeps */
#define MF__BLOB_HDR_PAGE 4096u  /* padded header of raw blobs >= one page */
/* Readers accept header lengths up to this (a later writer may pad more). */
#define MF__BLOB_HDR_MAX 65536u

enum { MF__KIND_DATA = 0, MF__KIND_CHUNKS = 1 };
enum { MF__CODEC_RAW = 0, MF__CODEC_ZSTD = 1 };

typedef struct mf__blob_hdr {
    uint8_t kind;
    uint8_t codec;
    uint32_t hdr_len;
    uint64_t raw_len;
    uint64_t payload_len;
    uint64_t checksum;  /* XXH64 (seed 0) of the payload bytes as stored */
} mf__blob_hdr;

/* Encode the 64 fixed bytes (the caller pads to hdr_len with zeros). */
void mf__blob_hdr_encode(const mf__blob_hdr *h, uint8_t out[MF__BLOB_HDR_MIN]);
/* Decode and check the fixed bytes: MF_ECORRUPT / MF_EVERSION naming
 * `what`. `len` is how many bytes are available (must be >= 64). */
int mf__blob_hdr_decode(mf__blob_hdr *h, const uint8_t *buf, size_t len,
                        const char *what);

/* ---- codecs (blob.c) */

#define MF__ZSTD_LEVEL 1
/* zstd is kept only when payload <= raw * 9 / 10 (saves >= 10%). */
#define MF__ZSTD_PAYS(raw, comp) ((comp) <= (raw) - (raw) / 10)

typedef struct mf__codec_ctx mf__codec_ctx; /* one per thread */
mf__codec_ctx *mf__codec_ctx_new(void);
void mf__codec_ctx_free(mf__codec_ctx *c);
/* Cheap test: compress a few samples at a fast level; true if the whole
 * is likely to save >= 10%. */
bool mf__codec_probe(mf__codec_ctx *c, const uint8_t *data, size_t len);
/* Compress `data` into c's buffer; *out points there (valid until the next
 * call on c). Returns MF_OK, or MF_ENOMEM / MF_ERROR. */
int mf__codec_compress(mf__codec_ctx *c, const uint8_t *data, size_t len,
                       const uint8_t **out, size_t *out_len);
/* Decompress one zstd frame of exactly raw_len bytes (content checksum
 * required); MF_ECORRUPT naming `what` on any mismatch. */
int mf__codec_decompress(mf__codec_ctx *c, const uint8_t *src, size_t src_len,
                         uint8_t *dst, size_t raw_len, const char *what);

/* ---- chunking (chunk.c) */

#define MF__CHUNK_MIN (256u << 10)
#define MF__CHUNK_AVG (1u << 20)
#define MF__CHUNK_MAX (4u << 20)
#define MF__CHUNK_ALIGN 4096u  /* cut granularity of aligned mode */
/* Readers accept chunks up to this (leeway for later writers), which also
 * bounds what a damaged list can make a reader allocate per entry. */
#define MF__CHUNK_READ_MAX (64u << 20)
#define MF__CHUNK_WINDOW 64u   /* bytes hashed before an aligned candidate */

/* Length of the next chunk of data[0..n) (n > 0): content-defined cut with
 * free cut points (for compressible data). */
size_t mf__cdc_cut_free(const uint8_t *data, size_t n);
/* Same with cut points only at multiples of MF__CHUNK_ALIGN from `data`
 * (which sits at a multiple of MF__CHUNK_ALIGN in the value); every chunk
 * but the last is a multiple of MF__CHUNK_ALIGN. */
size_t mf__cdc_cut_aligned(const uint8_t *data, size_t n);

#define MF__CL_MAGIC "MFCL"
#define MF__CL_VERSION 1
#define MF__CL_HDR 24u
#define MF__CL_ENTRY 40u
#define MF__CL_FLAG_ALIGNED 0x1u /* cut at MF__CHUNK_ALIGN multiples */

typedef struct mf__chunk_ent {
    uint8_t key[MF_SHA256_LEN];
    uint64_t len;
    uint64_t off;  /* derived on decode: offset in the value */
} mf__chunk_ent;

typedef struct mf__chunklist {
    uint64_t total;
    uint32_t flags;
    size_t n;
    mf__chunk_ent *ents;
} mf__chunklist;

int mf__chunklist_encode(const mf__chunklist *cl, mf_buf *out);
int mf__chunklist_decode(mf__chunklist *cl, const uint8_t *data, size_t len,
                         const char *what);
void mf__chunklist_clear(mf__chunklist *cl);
/* Index of the chunk holding byte `off` (< total). */
size_t mf__chunklist_find(const mf__chunklist *cl, uint64_t off);

/* ---- worker pool (pool.c)
 *
 * Runs fn(ctx, worker) on `nthreads` threads (the caller is worker 0); each
 * fn pulls jobs itself (mf__pool_next) until none are left. The first error
 * (code and the failing thread's message) is returned on the caller's
 * thread; after it, mf__pool_next() hands out no more jobs. */
typedef struct mf__pool {
    atomic_size_t next;
    size_t njobs;
    atomic_int failed;
    int err;
    char msg[512];
    pthread_mutex_t mutex;
} mf__pool;

typedef int (*mf__pool_fn)(mf__pool *pool, void *ctx, unsigned worker);
int mf__pool_run(size_t njobs, unsigned nthreads, mf__pool_fn fn, void *ctx);
/* Next job index, or SIZE_MAX when done or after a failure. */
size_t mf__pool_next(mf__pool *pool);
/* Threads to use for n independent jobs (>= 1, 2+ when n >= 2):
 * `per_cpu` per online CPU, at most 8. Jobs that block on I/O (writes with
 * fsync) want more threads than CPU-bound ones. */
#define MF__POOL_CPU 2 /* reads, maps: mostly CPU and page cache */
#define MF__POOL_IO 4  /* puts: hashing/compressing overlaps fsync waits */
unsigned mf__pool_threads(size_t njobs, unsigned per_cpu);

/* ---- the store object (store.c) */

struct mf_store {
    mf_datastore *ds;
    size_t page;           /* runtime page size */
    bool can_map;          /* ds->version >= 1 && ds->local_path */
    atomic_uint_least64_t blobs_written, bytes_written, blobs_existing;
    /* Codec contexts kept between calls: a zstd context costs an
     * allocation of its tables, which small puts should not pay. */
    pthread_mutex_t cc_lock;
    unsigned ncc;
    mf__codec_ctx *cc[8];
};

/* Ask for transparent huge pages on a large buffer about to be filled. */
void mf__advise_huge(void *p, size_t len);

mf__codec_ctx *mf__store_cc_get(mf_store *st); /* NULL: MF_ENOMEM set */
void mf__store_cc_put(mf_store *st, mf__codec_ctx *c);

/* One blob opened for reading: through a local file when the datastore
 * has one (pread straight into the destination), else ranged gets. */
typedef struct mf__bsrc {
    mf_store *st;
    char dskey[80];
    int fd;             /* -1 when not local */
    uint64_t fsize;     /* file size when local */
    mf_buf head;        /* not local: the first bytes of the object */
    bool head_all;      /* head holds the whole object */
    mf__blob_hdr h;     /* after mf__bsrc_open() */
} mf__bsrc;

/* Open a blob and read and check its header. MF_ENOTFOUND when missing. */
int mf__bsrc_open(mf__bsrc *b, mf_store *st, const uint8_t key[MF_SHA256_LEN]);
/* Exactly `len` bytes at object offset `off`; a short object is MF_ECORRUPT. */
int mf__bsrc_read(mf__bsrc *b, uint64_t off, void *dst, size_t len);
/* The whole raw content (h.raw_len bytes) into dst, verified. */
int mf__bsrc_load(mf__bsrc *b, mf__codec_ctx *cc, uint8_t *dst);
void mf__bsrc_close(mf__bsrc *b);

/* A value opened for reading: its top blob and, if chunked, the list. */
typedef struct mf__value {
    mf__bsrc top;
    bool chunked;
    mf__chunklist cl;
    uint64_t size;
} mf__value;

int mf__value_open(mf__value *v, mf_store *st, const uint8_t key[MF_SHA256_LEN]);
/* Bytes [off, off + len) (in range) into dst. Whole blobs are verified;
 * partial reads of raw blobs are not (no checksum covers a part). */
int mf__value_read(mf__value *v, uint64_t off, uint64_t len, uint8_t *dst);
void mf__value_close(mf__value *v);
/* Check a read of [off, off + *len) of an open value whose reference says
 * `size` bytes (MF_STORE_ANY_SIZE: unknown): MF_ECORRUPT for another size,
 * MF_ERANGE for an offset past the end; else clamps *len and gives MF_OK. */
int mf__value_range(const mf__value *v, uint64_t size, uint64_t off, uint64_t *len);

/* ---- writing values (store.c), shared by whole puts and streamed ones
 * (stream.c), which must store the same blobs under the same keys. */

/* Store `data` as one data blob (codec chosen per blob, put-if-absent) and
 * return its key: a value up to MF_STORE_CHUNK_THRESHOLD, or one chunk. */
int mf__blob_put_data(mf_store *st, mf__codec_ctx *cc, const uint8_t *data, size_t len,
                      bool raw_only, uint8_t key[MF_SHA256_LEN]);

/* The cut mode of a chunked value comes from probing its first
 * MF__CHUNK_PROBE_PREFIX bytes (all of a shorter value), not samples spread
 * over the whole value: a stream of unknown length can then decide exactly
 * as a buffer of the same bytes does, and both get the same key. A value
 * whose head and tail differ may so get the other mode than its whole
 * would; modes only affect dedupe and mapping, never what is read back. */
#define MF__CHUNK_PROBE_PREFIX (16u << 20)
/* `data` holds at least min(len, MF__CHUNK_PROBE_PREFIX) bytes. */
int mf__chunk_mode_aligned(mf_store *st, const uint8_t *data, uint64_t len, bool raw_only,
                           bool *aligned);
/* Write the chunk list of a value of `total` bytes cut into ents[0..n)
 * (keys and lengths) and return the value's key. */
int mf__chunklist_put(mf_store *st, const mf__chunk_ent *ents, size_t n, uint64_t total,
                      bool aligned, uint8_t key[MF_SHA256_LEN]);

/* Write one blob put-if-absent: header (hdr_len bytes, zero padded) then
 * the payload. MF_EEXISTS from the backend counts as success. */
int mf__blob_write(mf_store *st, const uint8_t key[MF_SHA256_LEN],
                   const mf__blob_hdr *h, const void *payload, bool canonical);
/* Hex key and datastore key of a blob. */
void mf__blob_dskey(const uint8_t key[MF_SHA256_LEN], char out[80]);


#endif /* MF_STORE_INT_H */
