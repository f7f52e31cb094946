/*
 * Task manifests: one msgpack map per task attempt (format 1, see
 * docs/datastore-format.md). Encoding is deterministic (fixed key order,
 * artifacts sorted by name) so equal manifests are equal bytes. The map
 * ends with a "check" entry, an XXH64 of every byte before it, because a
 * flipped bit inside a string still parses as msgpack.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mp.h"
#include "store_int.h"

/* "check" key (fixstr) + uint64 marker + 8 big-endian bytes. */
static const uint8_t trailer_head[7] = { 0xa5, 'c', 'h', 'e', 'c', 'k', 0xcf };
#define TRAILER_LEN 15u

/* ------------------------------------------------------------- encode */

static int pack_str(msgpack_packer *pk, const char *s)
{
    return mf__mp_pack_cstr(pk, s);
}

static int pack_key(msgpack_packer *pk, const char *k)
{
    return mf__mp_pack_cstr(pk, k);
}

static int cmp_art(const void *a, const void *b)
{
    const mf__martifact *x = *(const mf__martifact *const *)a;
    const mf__martifact *y = *(const mf__martifact *const *)b;
    return strcmp(x->name, y->name);
}

static bool is_map_header(uint8_t b)
{
    return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}

int mf__manifest_encode(const mf__manifest *m, mf_buf *out)
{
    if (!m->flow || !m->run_id || !m->step || !m->task_id)
        return mf__error_set(MF_EINVAL, "manifest: flow, run, step and task are required");
    if ((m->foreach_depth && (!m->foreach_index || !m->foreach_nsplits)) ||
        (m->ninputs && !m->input_paths) || (m->nartifacts && !m->artifacts))
        return mf__error_set(MF_EINVAL, "manifest: missing arrays");
    for (size_t i = 0; i < m->ninputs; i++)
        if (!m->input_paths[i])
            return mf__error_set(MF_EINVAL, "manifest: NULL input path");
    if (m->extra.size && (!is_map_header((uint8_t)m->extra.ptr[0]) ||
                          mf__mp_check(m->extra.ptr, m->extra.size, MF_MP_MAX_DEPTH - 1,
                                       "manifest extra") != MF_OK))
        return mf__error_set(MF_EINVAL, "manifest: 'extra' is not one msgpack map");

    /* Sort pointers, not the caller's array: encode takes a const manifest. */
    const mf__martifact **arts = malloc((m->nartifacts ? m->nartifacts : 1) * sizeof *arts);
    if (!arts)
        return mf__error_oom();
    int rc = MF_OK;
    for (size_t i = 0; i < m->nartifacts; i++) {
        const mf__martifact *a = &m->artifacts[i];
        if (!a->name || !a->encoding || a->nparts == 0 || !a->parts) {
            rc = mf__error_set(MF_EINVAL, "manifest: artifact %zu is incomplete", i);
            goto done;
        }
        arts[i] = a;
    }
    qsort(arts, m->nartifacts, sizeof *arts, cmp_art);
    for (size_t i = 1; i < m->nartifacts; i++)
        if (strcmp(arts[i - 1]->name, arts[i]->name) == 0) {
            rc = mf__error_set(MF_EINVAL, "manifest: artifact '%s' appears twice",
                               arts[i]->name);
            goto done;
        }

    mf__buf_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mf__mp_buf_write);
    int e = msgpack_pack_map(&pk, 13 + (m->extra.size ? 1 : 0));
    e = e || pack_key(&pk, "format") || msgpack_pack_uint32(&pk, MF_MANIFEST_FORMAT);
    e = e || pack_key(&pk, "flow") || pack_str(&pk, m->flow);
    e = e || pack_key(&pk, "run_id") || pack_str(&pk, m->run_id);
    e = e || pack_key(&pk, "step") || pack_str(&pk, m->step);
    e = e || pack_key(&pk, "task_id") || pack_str(&pk, m->task_id);
    e = e || pack_key(&pk, "attempt") || msgpack_pack_uint32(&pk, m->attempt);
    e = e || pack_key(&pk, "status") || msgpack_pack_int32(&pk, m->status);
    e = e || pack_key(&pk, "started_us") || msgpack_pack_int64(&pk, m->started_us);
    e = e || pack_key(&pk, "finished_us") || msgpack_pack_int64(&pk, m->finished_us);
    e = e || pack_key(&pk, "foreach") || msgpack_pack_array(&pk, m->foreach_depth);
    for (size_t i = 0; !e && i < m->foreach_depth; i++) {
        e = msgpack_pack_array(&pk, 3) || msgpack_pack_uint32(&pk, m->foreach_index[i]) ||
            msgpack_pack_uint32(&pk, m->foreach_nsplits[i]) ||
            pack_str(&pk, m->foreach_value ? m->foreach_value[i] : NULL); /* NULL: nil */
    }
    e = e || pack_key(&pk, "inputs") || mf__mp_pack_strv(&pk, m->input_paths, m->ninputs);
    e = e || pack_key(&pk, "artifacts") || msgpack_pack_array(&pk, m->nartifacts);
    for (size_t i = 0; !e && i < m->nartifacts; i++) {
        const mf__martifact *a = arts[i];
        e = msgpack_pack_map(&pk, 3) || pack_key(&pk, "name") || pack_str(&pk, a->name) ||
            pack_key(&pk, "encoding") || pack_str(&pk, a->encoding) ||
            pack_key(&pk, "parts") || msgpack_pack_array(&pk, a->nparts);
        for (uint32_t j = 0; !e && j < a->nparts; j++) {
            const mf__part *p = &a->parts[j];
            e = msgpack_pack_map(&pk, p->inline_data ? 3 : 2) || pack_key(&pk, "key") ||
                msgpack_pack_bin(&pk, MF_SHA256_LEN) ||
                msgpack_pack_bin_body(&pk, p->key, MF_SHA256_LEN) ||
                pack_key(&pk, "size") || msgpack_pack_uint64(&pk, p->size);
            if (!e && p->inline_data)
                e = pack_key(&pk, "inline") || msgpack_pack_bin(&pk, p->size) ||
                    msgpack_pack_bin_body(&pk, p->inline_data, p->size);
        }
    }
    if (!e && m->extra.size)
        e = pack_key(&pk, "extra") || mf__mp_buf_write(out, m->extra.ptr, m->extra.size);
    if (e) {
        rc = mf__error_oom();
        goto done;
    }
    /* The trailer, written by hand: a fixed 9-byte uint64 form, so the
     * reader finds the checksum at a known place. */
    uint8_t tail[TRAILER_LEN];
    memcpy(tail, trailer_head, sizeof trailer_head);
    rc = mf__buf_put(out, tail, sizeof trailer_head);
    if (rc == MF_OK) {
        uint64_t x = mf__xxh64(out->ptr, out->size, 0);
        for (int i = 0; i < 8; i++)
            tail[i] = (uint8_t)(x >> (56 - 8 * i));
        rc = mf__buf_put(out, tail, 8);
    }
done:
    free(arts);
    if (rc != MF_OK)
        mf__buf_clear(out);
    return rc;
}

/* ------------------------------------------------------------- decode */

static bool get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!mf__mp_uint(o, &v) || v > max)
        return false;
    *out = v;
    return true;
}

static bool get_int(const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    if (!mf__mp_int(o, &v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A str without NUL bytes, as a C string; false if absent or invalid. */
static bool get_str(const msgpack_object *o, char **out)
{
    if (!o || o->type != MSGPACK_OBJECT_STR ||
        memchr(o->via.str.ptr, 0, o->via.str.size) != NULL)
        return false;
    char *s = malloc(o->via.str.size + 1);
    if (!s)
        return false;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return true;
}

static const msgpack_object *get_array(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = mf__mp_get(map, key);
    return o && o->type == MSGPACK_OBJECT_ARRAY ? o : NULL;
}

static int decode_part(mf__part *p, const msgpack_object *o)
{
    const msgpack_object *k = mf__mp_get(o, "key");
    const msgpack_object *in = mf__mp_get(o, "inline");
    if (!k || k->type != MSGPACK_OBJECT_BIN || k->via.bin.size != MF_SHA256_LEN ||
        !get_uint(mf__mp_get(o, "size"), (uint64_t)INT64_MAX, &p->size))
        return MF_ECORRUPT;
    memcpy(p->key, k->via.bin.ptr, MF_SHA256_LEN);
    if (!in)
        return MF_OK;
    if (in->type != MSGPACK_OBJECT_BIN || in->via.bin.size != p->size)
        return MF_ECORRUPT;
    uint8_t h[MF_SHA256_LEN];
    if (mf__sha256(in->via.bin.ptr, in->via.bin.size, h) != MF_OK ||
        memcmp(h, p->key, MF_SHA256_LEN) != 0)
        return MF_ECORRUPT;
    p->inline_data = malloc(p->size ? p->size : 1);
    if (!p->inline_data)
        return MF_ENOMEM;
    memcpy(p->inline_data, in->via.bin.ptr, p->size);
    return MF_OK;
}

static int decode_artifact(mf__martifact *a, const msgpack_object *o)
{
    const msgpack_object *parts = get_array(o, "parts");
    if (!get_str(mf__mp_get(o, "name"), &a->name) ||
        !get_str(mf__mp_get(o, "encoding"), &a->encoding) || !parts || parts->via.array.size == 0)
        return MF_ECORRUPT;
    a->parts = calloc(parts->via.array.size, sizeof *a->parts);
    if (!a->parts)
        return MF_ENOMEM;
    a->nparts = parts->via.array.size;
    for (uint32_t i = 0; i < a->nparts; i++) {
        int rc = decode_part(&a->parts[i], &parts->via.array.ptr[i]);
        if (rc != MF_OK)
            return rc;
    }
    return MF_OK;
}

static int decode_body(mf__manifest *m, const msgpack_object *root)
{
    uint64_t u;
    int64_t i64;
    if (!get_str(mf__mp_get(root, "flow"), &m->flow) ||
        !get_str(mf__mp_get(root, "run_id"), &m->run_id) ||
        !get_str(mf__mp_get(root, "step"), &m->step) ||
        !get_str(mf__mp_get(root, "task_id"), &m->task_id))
        return MF_ECORRUPT;
    if (!get_uint(mf__mp_get(root, "attempt"), UINT32_MAX, &u))
        return MF_ECORRUPT;
    m->attempt = (uint32_t)u;
    if (!get_int(mf__mp_get(root, "status"), INT32_MIN, INT32_MAX, &i64))
        return MF_ECORRUPT;
    m->status = (int32_t)i64;
    if (!get_int(mf__mp_get(root, "started_us"), INT64_MIN, INT64_MAX, &m->started_us) ||
        !get_int(mf__mp_get(root, "finished_us"), INT64_MIN, INT64_MAX, &m->finished_us))
        return MF_ECORRUPT;

    const msgpack_object *fe = get_array(root, "foreach");
    const msgpack_object *in = get_array(root, "inputs");
    const msgpack_object *arts = get_array(root, "artifacts");
    if (!fe || !in || !arts)
        return MF_ECORRUPT;
    /* Counts are bounded by the input size (mf__mp_check), so these
     * allocations are at most a small multiple of it. */
    size_t n = fe->via.array.size;
    if (n) {
        m->foreach_index = calloc(n, sizeof *m->foreach_index);
        m->foreach_nsplits = calloc(n, sizeof *m->foreach_nsplits);
        m->foreach_value = calloc(n, sizeof *m->foreach_value);
        if (!m->foreach_index || !m->foreach_nsplits || !m->foreach_value)
            return MF_ENOMEM;
        m->foreach_depth = n;
    }
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &fe->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3)
            return MF_ECORRUPT;
        uint64_t idx, ns;
        if (!get_uint(&e->via.array.ptr[0], UINT32_MAX, &idx) ||
            !get_uint(&e->via.array.ptr[1], UINT32_MAX, &ns))
            return MF_ECORRUPT;
        m->foreach_index[i] = (uint32_t)idx;
        m->foreach_nsplits[i] = (uint32_t)ns;
        const msgpack_object *v = &e->via.array.ptr[2];
        if (v->type != MSGPACK_OBJECT_NIL && !get_str(v, &m->foreach_value[i]))
            return MF_ECORRUPT;
    }
    n = in->via.array.size;
    if (n) {
        m->input_paths = calloc(n, sizeof *m->input_paths);
        if (!m->input_paths)
            return MF_ENOMEM;
        m->ninputs = n;
    }
    for (size_t i = 0; i < n; i++)
        if (!get_str(&in->via.array.ptr[i], &m->input_paths[i]))
            return MF_ECORRUPT;
    n = arts->via.array.size;
    if (n) {
        m->artifacts = calloc(n, sizeof *m->artifacts);
        if (!m->artifacts)
            return MF_ENOMEM;
        m->nartifacts = n;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = decode_artifact(&m->artifacts[i], &arts->via.array.ptr[i]);
        if (rc != MF_OK)
            return rc;
        /* Sorted and unique, as every writer produces them: lookups rely on it. */
        if (i && strcmp(m->artifacts[i - 1].name, m->artifacts[i].name) >= 0)
            return MF_ECORRUPT;
    }
    const msgpack_object *extra = mf__mp_get(root, "extra");
    if (extra) {
        if (extra->type != MSGPACK_OBJECT_MAP)
            return MF_ECORRUPT;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &m->extra, mf__mp_buf_write);
        if (msgpack_pack_object(&pk, *extra) != 0)
            return MF_ENOMEM;
    }
    return MF_OK;
}

int mf__manifest_decode(mf__manifest *m, const void *data, size_t len, const char *what)
{
    memset(m, 0, sizeof *m);
    if (!what)
        what = "manifest";
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = mf__mp_decode(data, len, what, &u);
    if (rc != MF_OK)
        return rc;
    const msgpack_object *root = &u.data;
    uint64_t format;
    if (root->type != MSGPACK_OBJECT_MAP) {
        rc = mf__error_set(MF_ECORRUPT, "%s: not a msgpack map", what);
        goto done;
    }
    const msgpack_object *f = mf__mp_get(root, "format");
    if (!f || f->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f->via.u64 == 0) {
        rc = mf__error_set(MF_ECORRUPT, "%s: missing format number", what);
        goto done;
    }
    format = f->via.u64;
    /* A newer format may change anything after the format number,
     * including the trailer, so the version is checked first. */
    if (format > MF_MANIFEST_FORMAT) {
        rc = mf__error_set(MF_EVERSION, "%s: format %llu is newer than this library (%d)",
                           what, (unsigned long long)format, MF_MANIFEST_FORMAT);
        goto done;
    }
    const uint8_t *p = data;
    uint64_t stored = 0;
    if (len >= TRAILER_LEN)
        for (int i = 0; i < 8; i++)
            stored = (stored << 8) | p[len - 8 + (size_t)i];
    if (len < TRAILER_LEN ||
        memcmp(p + len - TRAILER_LEN, trailer_head, sizeof trailer_head) != 0 ||
        mf__xxh64(p, len - 8, 0) != stored) {
        rc = mf__error_set(MF_ECORRUPT, "%s: checksum mismatch", what);
        goto done;
    }
    m->format = (uint32_t)format;
    rc = decode_body(m, root);
    if (rc == MF_ECORRUPT)
        rc = mf__error_set(MF_ECORRUPT, "%s: invalid or missing field", what);
    else if (rc == MF_ENOMEM)
        rc = mf__error_oom();
done:
    msgpack_unpacked_destroy(&u);
    if (rc != MF_OK)
        mf__manifest_clear(m);
    return rc;
}

void mf__manifest_clear(mf__manifest *m)
{
    if (!m)
        return;
    free(m->flow);
    free(m->run_id);
    free(m->step);
    free(m->task_id);
    for (size_t i = 0; m->foreach_value && i < m->foreach_depth; i++)
        free(m->foreach_value[i]);
    free(m->foreach_index);
    free(m->foreach_nsplits);
    free(m->foreach_value);
    for (size_t i = 0; m->input_paths && i < m->ninputs; i++)
        free(m->input_paths[i]);
    free(m->input_paths);
    for (size_t i = 0; m->artifacts && i < m->nartifacts; i++) {
        mf__martifact *a = &m->artifacts[i];
        free(a->name);
        free(a->encoding);
        for (uint32_t j = 0; a->parts && j < a->nparts; j++)
            free(a->parts[j].inline_data);
        free(a->parts);
    }
    free(m->artifacts);
    mf_buf_dispose(&m->extra);
    memset(m, 0, sizeof *m);
}
