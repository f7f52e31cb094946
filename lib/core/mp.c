/* msgpack-c helpers; every decode is bounds-checked first. */
#include <stdlib.h>
#include <string.h>

#include "mp.h"

int mf__mp_decode(const void *data, size_t len, const char *what, msgpack_unpacked *out)
{
    int rc = mf__mp_check(data, len, MF_MP_MAX_DEPTH, what);
    if (rc)
        return rc;
    size_t off = 0;
    msgpack_unpacked_init(out);
    msgpack_unpack_return r = msgpack_unpack_next(out, data, len, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_unpacked_destroy(out);
        return mf__error_oom();
    }
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(out);
        return mf__error_set(MF_ECORRUPT, "%s: not a valid msgpack object",
                             what ? what : "msgpack data");
    }
    return MF_OK;
}

const msgpack_object *mf__mp_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool mf__mp_is_str(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_STR;
}

char *mf__mp_strdup(const msgpack_object *o)
{
    const char *p;
    size_t n;
    if (!o)
        return NULL;
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr;
        n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr;
        n = o->via.bin.size;
    } else {
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        mf__error_oom();
        return NULL;
    }
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

bool mf__mp_uint(const msgpack_object *o, uint64_t *out)
{
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = o->via.u64;
        return true;
    }
    return false;
}

bool mf__mp_int(const msgpack_object *o, int64_t *out)
{
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

bool mf__mp_bool(const msgpack_object *o, bool *out)
{
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *out = o->via.boolean;
    return true;
}

bool mf__mp_streq(const msgpack_object *o, const char *s)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return false;
    size_t n = strlen(s);
    return o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

int mf__mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    if (!s)
        return msgpack_pack_nil(pk);
    size_t n = strlen(s);
    int rc = msgpack_pack_str(pk, n);
    return rc ? rc : msgpack_pack_str_body(pk, s, n);
}

int mf__mp_pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
    int rc = msgpack_pack_bin(pk, len);
    return rc ? rc : msgpack_pack_bin_body(pk, data, len);
}

int mf__mp_pack_strv(msgpack_packer *pk, char *const *v, size_t n)
{
    int rc = msgpack_pack_array(pk, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = mf__mp_pack_cstr(pk, v[i]);
    return rc;
}

int mf__mp_buf_write(void *data, const char *bytes, size_t len)
{
    return mf__buf_put(data, bytes, len) == MF_OK ? 0 : -1;
}
