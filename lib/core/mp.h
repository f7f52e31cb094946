/*
 * Internal msgpack helpers over msgpack-c. Every decode goes through
 * mf__mp_decode(), which bounds-checks the input before msgpack-c allocates.
 */
#ifndef MF_MP_H
#define MF_MP_H

#include <msgpack.h>

#include "core.h"

/* Depth limit for every record we decode. It must not exceed what
 * msgpack-c's C unpacker can nest (its MSGPACK_EMBED_STACK_SIZE, 32 in
 * msgpack-c 4, which its installed headers do not expose); deeper input
 * would fail there as "no memory" instead of as corrupt. */
#define MF_MP_MAX_DEPTH 32

/* Check (mf__mp_check) and unpack exactly one object. On success `out`
 * holds it (msgpack_unpacked_destroy() when done). */
int mf__mp_decode(const void *data, size_t len, const char *what,
                  msgpack_unpacked *out);

/* Map lookup by string key; NULL if `map` is not a map or lacks the key. */
const msgpack_object *mf__mp_get(const msgpack_object *map, const char *key);

/* Typed accessors: return false when the object is missing or of another
 * type. Strings are not NUL-terminated in msgpack: use mf__mp_strdup(). */
bool mf__mp_is_str(const msgpack_object *o);
char *mf__mp_strdup(const msgpack_object *o); /* NULL if not a str/bin or on OOM */
bool mf__mp_uint(const msgpack_object *o, uint64_t *out);
bool mf__mp_int(const msgpack_object *o, int64_t *out);
bool mf__mp_bool(const msgpack_object *o, bool *out);
/* Compare a str object with a C string. */
bool mf__mp_streq(const msgpack_object *o, const char *s);

/* Packing helpers (return 0 on success like msgpack_pack_*). */
int mf__mp_pack_cstr(msgpack_packer *pk, const char *s); /* NULL packs nil */
int mf__mp_pack_bin(msgpack_packer *pk, const void *data, size_t len);
/* An array of `n` strings, each as mf__mp_pack_cstr() packs it. */
int mf__mp_pack_strv(msgpack_packer *pk, char *const *v, size_t n);

/* msgpack_packer write callback appending to the mf_buf in `data`;
 * msgpack-c only tests the result for non-zero. */
int mf__mp_buf_write(void *data, const char *bytes, size_t len);

#endif /* MF_MP_H */
