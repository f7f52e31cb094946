/*
 * Fuzz target: chunk-list decoding (lib/store/chunk.c). A list that
 * decodes must be self-consistent and re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mf__chunklist cl;
    int rc = mf__chunklist_decode(&cl, data, size, "fuzz");
    if (rc != MF_OK) {
        if (rc != MF_ECORRUPT && rc != MF_EVERSION && rc != MF_ENOMEM)
            abort();
        return 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < cl.n; i++) {
        if (cl.ents[i].off != off || cl.ents[i].len == 0)
            abort();
        if (mf__chunklist_find(&cl, off) != i ||
            mf__chunklist_find(&cl, off + cl.ents[i].len - 1) != i)
            abort();
        off += cl.ents[i].len;
    }
    if (off != cl.total)
        abort();
    mf_buf b = MF_BUF_INIT;
    if (mf__chunklist_encode(&cl, &b) != MF_OK || b.size != size ||
        memcmp(b.ptr, data, size) != 0)
        abort();
    mf_buf_dispose(&b);
    mf__chunklist_clear(&cl);
    return 0;
}
