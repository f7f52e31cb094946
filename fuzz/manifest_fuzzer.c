/*
 * Fuzz target: task manifest decoding (lib/store/manifest.c).
 *
 * Each input is decoded as is, then again with its trailing checksum
 * recomputed, so that mutations reach the field decoders behind the
 * checksum. Whatever decodes must re-encode deterministically.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    mf__manifest m, m2;
    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    int rc = mf__manifest_decode(&m, data, size, "fuzz");
    if (rc != MF_OK) {
        if (rc != MF_ECORRUPT && rc != MF_EVERSION && rc != MF_ENOMEM)
            abort();
        return;
    }
    /* decode -> encode -> decode -> encode is a fixed point. */
    if (mf__manifest_encode(&m, &a) != MF_OK)
        abort();
    if (mf__manifest_decode(&m2, a.ptr, a.size, "fuzz re-encoded") != MF_OK)
        abort();
    if (mf__manifest_encode(&m2, &b) != MF_OK || a.size != b.size ||
        memcmp(a.ptr, b.ptr, a.size) != 0)
        abort();
    mf__manifest_clear(&m);
    mf__manifest_clear(&m2);
    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= 15) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        uint64_t x = mf__xxh64(copy, size - 8, 0);
        for (int i = 0; i < 8; i++)
            copy[size - 8 + (size_t)i] = (uint8_t)(x >> (56 - 8 * i));
        check(copy, size);
        free(copy);
    }
    return 0;
}
