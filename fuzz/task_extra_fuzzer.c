/* Fuzz the decoder of a manifest's runtime fields (the "extra" map: foreach
 * count and values, switch case, failure, origin). Whatever it accepts must
 * re-encode, and decoding that encoding must give the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mf_buf in = MF_BUF_INIT, b1 = MF_BUF_INIT, b2 = MF_BUF_INIT;
    mf__task_extra x, x2;
    if (mf__buf_set(&in, data, size) != MF_OK)
        return 0;
    if (mf__task_extra_decode(&x, &in, "fuzz") != MF_OK) {
        mf_buf_dispose(&in);
        return 0;
    }
    if (mf__task_extra_encode(&x, &b1) != MF_OK)
        abort();
    if (mf__task_extra_decode(&x2, &b1, "fuzz re-encoded") != MF_OK)
        abort();
    if (mf__task_extra_encode(&x2, &b2) != MF_OK)
        abort();
    if (b1.size != b2.size || (b1.size && memcmp(b1.ptr, b2.ptr, b1.size) != 0))
        abort();
    mf__task_extra_clear(&x);
    mf__task_extra_clear(&x2);
    mf_buf_dispose(&in);
    mf_buf_dispose(&b1);
    mf_buf_dispose(&b2);
    return 0;
}
