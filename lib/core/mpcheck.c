/* A bounds-checking msgpack walker that runs before msgpack-c's unpacker.
 *
 * msgpack-c sizes its allocations from the counts and lengths an input
 * declares, so hostile input of a few bytes can ask for gigabytes. This walk
 * allocates nothing: it proves that every declared length fits in the bytes
 * that are present and that every pending container element could still be
 * at least one byte, which bounds what the unpacker will allocate by a small
 * multiple of the input size. */
#include <string.h>

#include "core.h"

#define MP_STACK_MAX 64

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int mf__mp_check(const void *data, size_t len, unsigned max_depth, const char *what)
{
    static const uint8_t none[1];
    if (!data && len)
        return mf__error_set(MF_EINVAL, "%s: NULL data", what ? what : "msgpack data");
    /* Never offset a NULL pointer (undefined behaviour). */
    const uint8_t *start = data ? data : none, *p = start, *end = p + len;
    uint64_t stack[MP_STACK_MAX]; /* elements still expected per open container */
    unsigned depth = 0;
    uint64_t pending = 1;         /* elements still expected in all */
    uint64_t top = 1;             /* elements expected at the current level */
    if (!what)
        what = "msgpack data";
    if (max_depth > MP_STACK_MAX)
        max_depth = MP_STACK_MAX;

    while (pending > 0) {
        /* Pop finished containers. */
        while (top == 0) {
            if (depth == 0)
                goto done;
            top = stack[--depth];
        }
        if (p >= end)
            return mf__error_set(MF_ECORRUPT, "%s: truncated at byte %zu", what,
                                 (size_t)(p - start));
        uint8_t b = *p++;
        top--;
        pending--;
        uint64_t skip = 0;   /* payload bytes to skip */
        uint64_t count = 0;  /* child elements to expect */
        bool container = false;
        size_t avail = (size_t)(end - p);
        unsigned lenbytes = 0;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            count = 2u * (b & 0x0f);
            container = true;
        } else if (b >= 0x90 && b <= 0x9f) {
            count = b & 0x0f;
            container = true;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;         /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;         /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;         /* bin32, str32 */
            case 0xc7: lenbytes = 1; skip = 1; break;          /* ext8 (+type) */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;                         /* float32 */
            case 0xcb: skip = 8; break;                         /* float64 */
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                         /* fixext1 */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2; container = true; break;  /* array16 */
            case 0xdd: lenbytes = 4; container = true; break;  /* array32 */
            case 0xde: lenbytes = 2; container = true; break;  /* map16 */
            case 0xdf: lenbytes = 4; container = true; break;  /* map32 */
            default:
                return mf__error_set(MF_ECORRUPT, "%s: invalid type byte 0x%02x at byte %zu",
                                     what, b, (size_t)(p - 1 - start));
            }
            if (lenbytes) {
                if (avail < lenbytes)
                    return mf__error_set(MF_ECORRUPT, "%s: truncated length at byte %zu",
                                         what, (size_t)(p - start));
                uint64_t n = be(p, lenbytes);
                p += lenbytes;
                avail -= lenbytes;
                if (container)
                    count = (b == 0xde || b == 0xdf) ? 2 * n : n;
                else
                    skip += n;
            }
        }
        if (skip > avail)
            return mf__error_set(MF_ECORRUPT,
                                 "%s: length %llu at byte %zu runs past the end (%zu bytes left)",
                                 what, (unsigned long long)skip, (size_t)(p - start), avail);
        p += skip;
        /* Empty containers count too: msgpack-c's unpacker limits the
         * nesting of every container, and would fail as "no memory". */
        if (container && depth + 1 > max_depth)
            return mf__error_set(MF_ECORRUPT, "%s: nested deeper than %u levels",
                                 what, max_depth);
        if (container && count > 0) {
            if (pending + count > (uint64_t)(end - p))
                return mf__error_set(MF_ECORRUPT,
                                     "%s: container of %llu elements at byte %zu needs more "
                                     "than the %zu bytes left",
                                     what, (unsigned long long)count,
                                     (size_t)(p - start), (size_t)(end - p));
            if (depth + 1 > max_depth)
                return mf__error_set(MF_ECORRUPT, "%s: nested deeper than %u levels",
                                     what, max_depth);
            stack[depth++] = top;
            top = count;
            pending += count;
        }
    }
done:
    if (p != end)
        return mf__error_set(MF_ECORRUPT, "%s: %zu unexpected bytes after the object",
                             what, (size_t)(end - p));
    return MF_OK;
}
