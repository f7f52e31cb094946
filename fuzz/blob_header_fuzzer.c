/*
 * Fuzz target: blob parsing (lib/store): the header decoder, then the
 * whole read path (get, ranged get, size, map, verify) over a datastore
 * holding the input as one blob. A second pass repairs the header and
 * payload checksums so that mutations reach the codec and chunk-list code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A read-only datastore of one object under every blob key. */
typedef struct one_ds {
    mf_datastore base;
    const uint8_t *data;
    size_t size;
} one_ds;

static int one_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t n,
                   uint32_t flags)
{
    (void)ds; (void)key; (void)iov; (void)n; (void)flags;
    return mf__error_set(MF_EIO, "read-only");
}

static int one_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
                   mf_buf *out)
{
    one_ds *o = (one_ds *)ds;
    (void)key;
    if (off > o->size)
        return mf__error_set(MF_ERANGE, "past the end");
    if (len > o->size - off)
        len = o->size - off;
    return mf__buf_set(out, o->data + off, (size_t)len);
}

static int one_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    one_ds *o = (one_ds *)ds;
    (void)key;
    if (size)
        *size = o->size;
    return MF_OK;
}

static int one_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb, void *p)
{
    (void)ds; (void)prefix; (void)cb; (void)p;
    return MF_OK;
}

static int one_del(mf_datastore *ds, const char *key)
{
    (void)ds; (void)key;
    return MF_ENOTFOUND;
}

static void run(const uint8_t *data, size_t size)
{
    mf__blob_hdr h;
    (void)mf__blob_hdr_decode(&h, data, size, "fuzz");

    one_ds o;
    mf_datastore_init(&o.base, MF_DATASTORE_VERSION);
    o.base.put = one_put;
    o.base.get = one_get;
    o.base.exists = one_exists;
    o.base.list = one_list;
    o.base.del = one_del;
    o.data = data;
    o.size = size;
    mf_store *st;
    if (mf__store_new(&st, &o.base) != MF_OK)
        return;
    /* The key a chunk list must hash to, so that lists get parsed. */
    uint8_t key[MF_SHA256_LEN] = { 0 };
    uint32_t hl = size >= MF__BLOB_HDR_MIN ? mf__le32_get(data + 8) : 0;
    if (hl && hl <= size)
        mf__sha256(data + hl, size - hl, key);
    mf_buf out = MF_BUF_INIT;
    uint64_t vsize = 0;
    /* Values claiming more than 64 MiB are skipped: reading them would
     * allocate what they claim (legitimately), which is not a bug. */
    if (mf__store_size(st, key, &vsize) == MF_OK && vsize <= (64u << 20)) {
        (void)mf__store_get(st, key, &out);
        (void)mf__store_get_range(st, key, MF_STORE_ANY_SIZE, vsize / 3, 100, &out);
        (void)mf__store_get_range(st, key, MF_STORE_ANY_SIZE, vsize, 1, &out);
        mf__mapping *m = NULL;
        const void *p;
        uint64_t len;
        if (mf__store_map(st, key, &m, &p, &len, NULL) == MF_OK && len != vsize)
            abort();
        mf__mapping_free(m);
        char k[80];
        mf__blob_dskey(key, k);
        (void)mf__store_verify_blob(st, k);
    }
    mf_buf_dispose(&out);
    mf__store_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    if (size < MF__BLOB_HDR_MIN)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    uint32_t hl = mf__le32_get(copy + 8);
    if (hl <= size)
        mf__le64_put(copy + 32, mf__xxh64(copy + hl, size - hl, 0));
    mf__le64_put(copy + 56, mf__xxh64(copy, 56, 0));
    run(copy, size);
    free(copy);
    return 0;
}
