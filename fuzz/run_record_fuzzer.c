/* Fuzz the run record decoder. Whatever it accepts must re-encode, and
 * decoding that encoding must give the same bytes again (the encoder is
 * deterministic and the decoder loses nothing it keeps). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mf__run_record r, r2;
    if (mf__run_record_decode(&r, data, size, "fuzz") != MF_OK)
        return 0;
    mf_buf b1 = MF_BUF_INIT, b2 = MF_BUF_INIT;
    if (mf__run_record_encode(&r, &b1) != MF_OK)
        abort();
    if (mf__run_record_decode(&r2, b1.ptr, b1.size, "fuzz re-encoded") != MF_OK)
        abort();
    if (mf__run_record_encode(&r2, &b2) != MF_OK)
        abort();
    if (b1.size != b2.size || memcmp(b1.ptr, b2.ptr, b1.size) != 0)
        abort();
    mf__run_record_clear(&r);
    mf__run_record_clear(&r2);
    mf_buf_dispose(&b1);
    mf_buf_dispose(&b2);
    return 0;
}
