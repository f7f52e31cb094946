/* Fuzz the msgpack bounds checker: whatever it accepts, msgpack-c must
 * unpack without error and with an allocation bounded by the input. */
#include <stdint.h>
#include <stdlib.h>

#include "core/mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_unpacked u;
    if (mf__mp_decode(data, size, "fuzz input", &u) == MF_OK)
        msgpack_unpacked_destroy(&u);
    return 0;
}
