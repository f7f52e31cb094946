/* Artifacts: whole, ranged and zero-copy reads. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

MF_EXTERN(int) mf_task_artifact(mf_artifact **out, mf_task *t, const char *name)
{
    if (!out || !t || !name)
        return mf__error_set(MF_EINVAL, "mf_task_artifact: NULL argument");
    *out = NULL;
    const mf__martifact *src = NULL;
    for (size_t i = 0; i < t->man.nartifacts; i++)
        if (strcmp(t->man.artifacts[i].name, name) == 0) {
            src = &t->man.artifacts[i];
            break;
        }
    if (!src)
        return mf__error_set(MF_ENOTFOUND, "task '%s' has no artifact '%s'", t->pathspec, name);
    mf_artifact *a = calloc(1, sizeof *a);
    if (!a)
        return mf__error_oom();
    a->engine = t->engine;
    a->name = mf__strdup(src->name);
    a->encoding = mf__strdup(src->encoding);
    a->owner = mf__strdup(t->pathspec);
    a->parts = calloc(src->nparts ? src->nparts : 1, sizeof *a->parts);
    a->maps = calloc(src->nparts ? src->nparts : 1, sizeof *a->maps);
    a->zero_copy = calloc(src->nparts ? src->nparts : 1, sizeof *a->zero_copy);
    a->map_ptr = calloc(src->nparts ? src->nparts : 1, sizeof *a->map_ptr);
    if (!a->name || !a->encoding || !a->owner || !a->parts || !a->maps || !a->zero_copy ||
        !a->map_ptr)
        goto oom;
    for (uint32_t i = 0; i < src->nparts; i++) {
        a->parts[i] = src->parts[i];
        a->parts[i].inline_data = NULL;
        a->zero_copy[i] = -1;
        a->nparts = i + 1;
        if (src->parts[i].inline_data) {
            size_t n = (size_t)src->parts[i].size;
            a->parts[i].inline_data = malloc(n ? n : 1);
            if (!a->parts[i].inline_data)
                goto oom;
            memcpy(a->parts[i].inline_data, src->parts[i].inline_data, n);
        }
    }
    mf__hex(src->parts[0].key, MF_SHA256_LEN, a->key);
    *out = a;
    return MF_OK;
oom:
    mf_artifact_free(a);
    return mf__error_oom();
}

MF_EXTERN(void) mf_artifact_free(mf_artifact *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->nparts; i++) {
        if (a->maps)
            mf__mapping_free(a->maps[i]);
        free(a->parts[i].inline_data);
    }
    free(a->parts);
    free(a->maps);
    free(a->zero_copy);
    free((void *)a->map_ptr);
    free(a->name);
    free(a->encoding);
    free(a->owner);
    free(a);
}

MF_EXTERN(const char *) mf_artifact_name(const mf_artifact *a) { return a ? a->name : NULL; }
MF_EXTERN(const char *) mf_artifact_encoding(const mf_artifact *a) { return a ? a->encoding : NULL; }
MF_EXTERN(const char *) mf_artifact_key(const mf_artifact *a) { return a ? a->key : NULL; }
MF_EXTERN(uint32_t) mf_artifact_part_count(const mf_artifact *a) { return a ? a->nparts : 0; }

MF_EXTERN(uint64_t) mf_artifact_part_size(const mf_artifact *a, uint32_t part)
{
    return a && part < a->nparts ? a->parts[part].size : 0;
}

MF_EXTERN(uint64_t) mf_artifact_size(const mf_artifact *a)
{
    return mf_artifact_part_size(a, 0);
}

static int check_part(const mf_artifact *a, uint32_t part, const char *fn)
{
    if (!a)
        return mf__error_set(MF_EINVAL, "%s: artifact is NULL", fn);
    if (part >= a->nparts)
        return mf__error_set(MF_ERANGE, "artifact '%s' of task '%s' has %u parts, not %u",
                             a->name, a->owner, a->nparts, part + 1);
    return MF_OK;
}

static int wrap(const mf_artifact *a, int rc)
{
    if (rc == MF_OK)
        return rc;
    return mf__error_wrap("artifact '%s' of task '%s'", a->name, a->owner);
}

MF_EXTERN(int) mf_artifact_read(mf_artifact *a, uint32_t part, mf_buf *out)
{
    int rc = check_part(a, part, "mf_artifact_read");
    if (rc)
        return rc;
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_artifact_read: out is NULL");
    const mf__part *p = &a->parts[part];
    if (p->inline_data)
        return mf__buf_set(out, p->inline_data, (size_t)p->size);
    rc = mf__store_get(a->engine->store, p->key, out);
    if (!rc && out->size != p->size)
        rc = mf__error_set(MF_ECORRUPT, "stored value has %zu bytes, the manifest says %llu",
                           out->size, (unsigned long long)p->size);
    return wrap(a, rc);
}

/* A range of a part: MF_ERANGE past its end, `len` clamped to it. */
static int clamp_range(const mf_artifact *a, const mf__part *p, uint64_t off, uint64_t *len)
{
    if (off > p->size)
        return mf__error_set(MF_ERANGE, "artifact '%s' of task '%s': offset %llu is past its "
                             "%llu bytes", a->name, a->owner, (unsigned long long)off,
                             (unsigned long long)p->size);
    if (*len > p->size - off)
        *len = p->size - off;
    return MF_OK;
}

MF_EXTERN(int) mf_artifact_read_range(mf_artifact *a, uint32_t part, uint64_t off,
                                      uint64_t len, mf_buf *out)
{
    int rc = check_part(a, part, "mf_artifact_read_range");
    if (rc)
        return rc;
    if (!out)
        return mf__error_set(MF_EINVAL, "mf_artifact_read_range: out is NULL");
    const mf__part *p = &a->parts[part];
    if ((rc = clamp_range(a, p, off, &len)) != MF_OK)
        return rc;
    if (p->inline_data)
        return mf__buf_set(out, p->inline_data + off, (size_t)len);
    /* Whole reads and maps compare the stored size with the manifest's;
     * a range must too, or a damaged store would read short. */
    return wrap(a, mf__store_get_range(a->engine->store, p->key, p->size, off, len, out));
}

MF_EXTERN(int) mf_artifact_read_stream(mf_artifact *a, uint32_t part, uint64_t off,
                                       uint64_t len, mf_write_cb write, void *payload)
{
    int rc = check_part(a, part, "mf_artifact_read_stream");
    if (rc)
        return rc;
    if (!write)
        return mf__error_set(MF_EINVAL, "artifact '%s' of task '%s': the write callback is NULL",
                             a->name, a->owner);
    const mf__part *p = &a->parts[part];
    if ((rc = clamp_range(a, p, off, &len)) != MF_OK)
        return rc;
    if (!p->inline_data)
        return wrap(a, mf__store_get_stream(a->engine->store, p->key, p->size, off, len, write,
                                            payload));
    if (len == 0)
        return MF_OK;
    int w = write(p->inline_data + off, (size_t)len, payload);
    if (w != 0)
        return mf__error_set(MF_EUSER, "artifact '%s' of task '%s': the write callback stopped "
                             "the read (returned %d)", a->name, a->owner, w);
    return MF_OK;
}

MF_EXTERN(int) mf_artifact_map(mf_artifact *a, uint32_t part, const void **ptr, uint64_t *len)
{
    int rc = check_part(a, part, "mf_artifact_map");
    if (rc)
        return rc;
    if (!ptr || !len)
        return mf__error_set(MF_EINVAL, "mf_artifact_map: NULL output");
    const mf__part *p = &a->parts[part];
    if (p->inline_data) {
        /* Inline values already live in memory the artifact owns. */
        *ptr = p->inline_data;
        *len = p->size;
        a->zero_copy[part] = 0;
        return MF_OK;
    }
    if (!a->maps[part]) {
        const void *mp = NULL;
        uint64_t ml = 0;
        int zc = 0;
        rc = mf__store_map(a->engine->store, p->key, &a->maps[part], &mp, &ml, &zc);
        if (rc)
            return wrap(a, rc);
        if (ml != p->size) {
            mf__mapping_free(a->maps[part]);
            a->maps[part] = NULL;
            return wrap(a, mf__error_set(MF_ECORRUPT,
                                         "stored value has %llu bytes, the manifest says %llu",
                                         (unsigned long long)ml, (unsigned long long)p->size));
        }
        a->zero_copy[part] = zc;
        a->map_ptr[part] = mp;
    }
    *ptr = a->map_ptr[part];
    *len = a->parts[part].size;
    return MF_OK;
}

MF_EXTERN(int) mf_artifact_is_zero_copy(mf_artifact *a, uint32_t part)
{
    const void *p;
    uint64_t n;
    int rc = mf_artifact_map(a, part, &p, &n);
    if (rc)
        return rc;
    return a->zero_copy[part] > 0 ? 1 : 0;
}
