/*
 * Run and task records: msgpack maps with string keys.
 *
 * Encoding is deterministic (fixed key order, smallest integer forms), so
 * the same record always yields the same bytes: the datastore copy and the
 * index copy can be compared byte for byte, and fuzzers can check that
 * decode(encode(x)) re-encodes identically.
 *
 * Decoding goes only through mf__mp_decode(), which bounds-checks every
 * declared length before msgpack-c allocates. Unknown keys are skipped so
 * an older library reads records written by a newer one of the same
 * format; a newer format number is refused with MF_EVERSION because its
 * known keys may have changed meaning.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "core/mp.h"
#include "meta/meta.h"

/* ------------------------------------------------------------ encoding */

static int pack_str(msgpack_packer *pk, const char *s)
{
    return mf__mp_pack_cstr(pk, s);
}

static int pack_key(msgpack_packer *pk, const char *key)
{
    return mf__mp_pack_cstr(pk, key);
}

/* Arrays with a non-zero count must have storage; catching it here turns a
 * caller bug into MF_EINVAL instead of a NULL dereference. */
static bool vec_ok(size_t n, const void *v)
{
    return n == 0 || v != NULL;
}

static bool strv_ok(size_t n, char *const *v)
{
    if (!vec_ok(n, v))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!v[i])
            return false;
    return true;
}

#define RUN_NKEYS 14

int mf__run_record_encode(const mf__run_record *r, mf_buf *out)
{
    if (!r || !out)
        return mf__error_set(MF_EINVAL, "run record: NULL argument");
    if (!r->flow || !r->run_id)
        return mf__error_set(MF_EINVAL, "run record: flow and run id are required");
    if (!strv_ok(r->nsys_tags, r->sys_tags) || !strv_ok(r->ntags, r->tags) ||
        !strv_ok(r->nparams, r->param_names) || !strv_ok(r->nparams, r->param_values))
        return mf__error_set(MF_EINVAL, "run record '%s/%s': NULL tag or parameter",
                             r->flow, r->run_id);

    mf__buf_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mf__mp_buf_write);

    int e = 0;
    e |= msgpack_pack_map(&pk, RUN_NKEYS);
    e |= pack_key(&pk, "format");        e |= msgpack_pack_uint32(&pk, MF_RECORD_FORMAT);
    e |= pack_key(&pk, "flow");          e |= pack_str(&pk, r->flow);
    e |= pack_key(&pk, "run_id");        e |= pack_str(&pk, r->run_id);
    e |= pack_key(&pk, "user");          e |= pack_str(&pk, r->user);
    e |= pack_key(&pk, "origin_run_id"); e |= pack_str(&pk, r->origin_run_id);
    e |= pack_key(&pk, "status");        e |= msgpack_pack_int32(&pk, r->status);
    e |= pack_key(&pk, "created_us");    e |= msgpack_pack_int64(&pk, r->created_us);
    e |= pack_key(&pk, "finished_us");   e |= msgpack_pack_int64(&pk, r->finished_us);
    e |= pack_key(&pk, "heartbeat_us");  e |= msgpack_pack_int64(&pk, r->heartbeat_us);
    e |= pack_key(&pk, "host");          e |= pack_str(&pk, r->host);
    e |= pack_key(&pk, "pid");           e |= msgpack_pack_int64(&pk, r->pid);
    e |= pack_key(&pk, "sys_tags");      e |= mf__mp_pack_strv(&pk, r->sys_tags, r->nsys_tags);
    e |= pack_key(&pk, "tags");          e |= mf__mp_pack_strv(&pk, r->tags, r->ntags);
    /* Pairs rather than a map: parameter order is part of the record. */
    e |= pack_key(&pk, "params");
    e |= msgpack_pack_array(&pk, r->nparams);
    for (size_t i = 0; i < r->nparams && !e; i++) {
        e |= msgpack_pack_array(&pk, 2);
        e |= pack_str(&pk, r->param_names[i]);
        e |= pack_str(&pk, r->param_values[i]);
    }
    if (e) {
        mf__buf_clear(out);
        return mf__error_oom();
    }
    return MF_OK;
}

#define TASK_NKEYS 12

int mf__task_record_encode(const mf__task_record *t, mf_buf *out)
{
    if (!t || !out)
        return mf__error_set(MF_EINVAL, "task record: NULL argument");
    if (!t->flow || !t->run_id || !t->step || !t->task_id)
        return mf__error_set(MF_EINVAL, "task record: flow, run id, step and task id are required");
    if (!vec_ok(t->foreach_depth, t->foreach_index) ||
        !vec_ok(t->foreach_depth, t->foreach_nsplits) ||
        !strv_ok(t->ninputs, t->input_paths) || !strv_ok(t->nartifacts, t->artifact_names))
        return mf__error_set(MF_EINVAL, "task record '%s/%s/%s/%s': missing foreach, input or artifact entries",
                             t->flow, t->run_id, t->step, t->task_id);

    mf__buf_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mf__mp_buf_write);

    int e = 0;
    e |= msgpack_pack_map(&pk, TASK_NKEYS);
    e |= pack_key(&pk, "format");      e |= msgpack_pack_uint32(&pk, MF_RECORD_FORMAT);
    e |= pack_key(&pk, "flow");        e |= pack_str(&pk, t->flow);
    e |= pack_key(&pk, "run_id");      e |= pack_str(&pk, t->run_id);
    e |= pack_key(&pk, "step");        e |= pack_str(&pk, t->step);
    e |= pack_key(&pk, "task_id");     e |= pack_str(&pk, t->task_id);
    e |= pack_key(&pk, "attempt");     e |= msgpack_pack_uint32(&pk, t->attempt);
    e |= pack_key(&pk, "status");      e |= msgpack_pack_int32(&pk, t->status);
    e |= pack_key(&pk, "started_us");  e |= msgpack_pack_int64(&pk, t->started_us);
    e |= pack_key(&pk, "finished_us"); e |= msgpack_pack_int64(&pk, t->finished_us);
    /* One [index, nsplits, value] triple per level keeps a level's parts
     * together, so a damaged record cannot pair them up wrongly. */
    e |= pack_key(&pk, "foreach");
    e |= msgpack_pack_array(&pk, t->foreach_depth);
    for (size_t i = 0; i < t->foreach_depth && !e; i++) {
        e |= msgpack_pack_array(&pk, 3);
        e |= msgpack_pack_uint32(&pk, t->foreach_index[i]);
        e |= msgpack_pack_uint32(&pk, t->foreach_nsplits[i]);
        e |= pack_str(&pk, t->foreach_value ? t->foreach_value[i] : NULL);
    }
    e |= pack_key(&pk, "inputs");      e |= mf__mp_pack_strv(&pk, t->input_paths, t->ninputs);
    e |= pack_key(&pk, "artifacts");   e |= mf__mp_pack_strv(&pk, t->artifact_names, t->nartifacts);
    if (e) {
        mf__buf_clear(out);
        return mf__error_oom();
    }
    return MF_OK;
}

/* ------------------------------------------------------------ decoding */

/* Results of the field readers below. */
enum { F_OK = 0, F_TYPE = 1, F_NOMEM = 2 };

/* A msgpack str as a C string. Strings holding NUL bytes are refused: no
 * name, id or tag we write can contain one, and the C side would silently
 * truncate them. */
static int rd_str(const msgpack_object *o, bool nullable, char **out)
{
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL)
        return nullable ? F_OK : F_TYPE;
    if (o->type != MSGPACK_OBJECT_STR)
        return F_TYPE;
    size_t n = o->via.str.size;
    if (n && memchr(o->via.str.ptr, '\0', n))
        return F_TYPE;
    char *s = malloc(n + 1);
    if (!s)
        return F_NOMEM;
    if (n)
        memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *out = s;
    return F_OK;
}

static int rd_i64(const msgpack_object *o, int64_t *out)
{
    return mf__mp_int(o, out) ? F_OK : F_TYPE;
}

static int rd_i32(const msgpack_object *o, int32_t *out)
{
    int64_t v;
    if (rd_i64(o, &v) != F_OK || v < INT32_MIN || v > INT32_MAX)
        return F_TYPE;
    *out = (int32_t)v;
    return F_OK;
}

static int rd_u32(const msgpack_object *o, uint32_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return F_TYPE;
    *out = (uint32_t)o->via.u64;
    return F_OK;
}

/* An array of non-nil strings. mf__mp_check() has already bounded the
 * count by the input size, so the allocation is bounded too. */
static int rd_strv(const msgpack_object *o, char ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return F_TYPE;
    size_t n = o->via.array.size;
    if (n == 0)
        return F_OK;
    char **v = calloc(n, sizeof *v);
    if (!v)
        return F_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = rd_str(&o->via.array.ptr[i], false, &v[i]);
        if (rc != F_OK) {
            mf__strvec_free(v, i);
            return rc;
        }
    }
    *out = v;
    *nout = n;
    return F_OK;
}

/* Common head of both decoders: decode, require a map, check the format
 * before looking at anything else (a newer format may have changed what
 * the other keys mean). */
static int decode_head(const char *kind, const void *data, size_t len, const char *what,
                       msgpack_unpacked *up, uint32_t *format)
{
    if (!data && len)
        return mf__error_set(MF_EINVAL, "%s '%s': NULL data", kind, what);
    if (len == 0)
        return mf__error_set(MF_ECORRUPT, "%s '%s': empty", kind, what);
    int rc = mf__mp_decode(data, len, what, up);
    if (rc != MF_OK)
        return mf__error_wrap("%s", kind);
    const msgpack_object *root = &up->data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(up);
        return mf__error_set(MF_ECORRUPT, "%s '%s': not a map", kind, what);
    }
    const msgpack_object_kv *kv = root->via.map.ptr;
    bool found = false;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        if (mf__mp_streq(&kv[i].key, "format")) {
            if (found || rd_u32(&kv[i].val, format) != F_OK || *format == 0) {
                msgpack_unpacked_destroy(up);
                return mf__error_set(MF_ECORRUPT, "%s '%s': bad format field", kind, what);
            }
            found = true;
        }
    }
    if (!found) {
        msgpack_unpacked_destroy(up);
        return mf__error_set(MF_ECORRUPT, "%s '%s': no format field", kind, what);
    }
    if (*format > MF_RECORD_FORMAT) {
        msgpack_unpacked_destroy(up);
        return mf__error_set(MF_EVERSION, "%s '%s': format %u is newer than this library supports (%u)",
                             kind, what, (unsigned)*format, (unsigned)MF_RECORD_FORMAT);
    }
    return MF_OK;
}

/* What tells the record kinds apart; decode_record() does the rest. */
typedef struct record_kind {
    const char *name;            /* "run record", for messages */
    const char *const *keys;     /* known keys, indexed by field id */
    int nkeys;                   /* at most 32: see `seen` below */
    const int *required;         /* ids of the keys that must be present */
    size_t nrequired;
    /* Read the value of known key `id` into the record: F_OK, F_TYPE or
     * F_NOMEM. The "format" key is read by decode_head(). */
    int (*field)(void *rec, int id, const msgpack_object *v);
} record_kind;

/* Decode one record into `rec`, which the caller zeroed, and its format
 * number into `format`. On failure `rec` may hold some fields: the caller
 * clears it. */
static int decode_record(const record_kind *kind, void *rec, const void *data, size_t len,
                         const char *what, uint32_t *format)
{
    if (!what)
        what = "?";
    msgpack_unpacked up;
    int rc = decode_head(kind->name, data, len, what, &up, format);
    if (rc != MF_OK)
        return rc;

    /* Bit of each known key in the `seen` mask: a key present twice is
     * corruption (our encoder never writes one), and it would leak the
     * first value. */
    const msgpack_object *root = &up.data;
    uint32_t seen = 0;
    int frc = F_OK;
    const char *bad = NULL;
    for (uint32_t i = 0; i < root->via.map.size && frc == F_OK; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            frc = F_TYPE;
            bad = "(non-string key)";
            break;
        }
        int id = -1;
        for (int j = 0; j < kind->nkeys; j++)
            if (mf__mp_streq(k, kind->keys[j])) {
                id = j;
                break;
            }
        if (id < 0)
            continue; /* a newer writer's extra key */
        bad = kind->keys[id];
        if (seen & (1u << id)) {
            frc = F_TYPE;
            break;
        }
        seen |= 1u << id;
        frc = kind->field(rec, id, &root->via.map.ptr[i].val);
    }
    msgpack_unpacked_destroy(&up);

    if (frc == F_NOMEM)
        return mf__error_oom();
    if (frc != F_OK)
        return mf__error_set(MF_ECORRUPT, "%s '%s': bad field '%s'", kind->name, what, bad);
    for (size_t j = 0; j < kind->nrequired; j++)
        if (!(seen & (1u << kind->required[j])))
            return mf__error_set(MF_ECORRUPT, "%s '%s': missing field '%s'",
                                 kind->name, what, kind->keys[kind->required[j]]);
    return MF_OK;
}

#define NELEMS(a) (sizeof (a) / sizeof (a)[0])

enum {
    RK_FORMAT, RK_FLOW, RK_RUN_ID, RK_USER, RK_ORIGIN, RK_STATUS, RK_CREATED,
    RK_FINISHED, RK_HEARTBEAT, RK_HOST, RK_PID, RK_SYS_TAGS, RK_TAGS, RK_PARAMS
};
static const char *const run_keys[] = {
    "format", "flow", "run_id", "user", "origin_run_id", "status", "created_us",
    "finished_us", "heartbeat_us", "host", "pid", "sys_tags", "tags", "params"
};
static const int run_required[] = { RK_FLOW, RK_RUN_ID, RK_STATUS, RK_CREATED };

static int rd_params(const msgpack_object *o, mf__run_record *r)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return F_TYPE;
    size_t n = o->via.array.size;
    if (n == 0)
        return F_OK;
    r->param_names = calloc(n, sizeof(char *));
    r->param_values = calloc(n, sizeof(char *));
    if (!r->param_names || !r->param_values)
        return F_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *p = &o->via.array.ptr[i];
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 2)
            return F_TYPE;
        /* Count as we go so clear() frees exactly what was filled. */
        r->nparams = i + 1;
        int rc = rd_str(&p->via.array.ptr[0], false, &r->param_names[i]);
        if (rc == F_OK)
            rc = rd_str(&p->via.array.ptr[1], false, &r->param_values[i]);
        if (rc != F_OK)
            return rc;
    }
    return F_OK;
}

static int run_field(void *rec, int id, const msgpack_object *v)
{
    mf__run_record *r = rec;
    switch (id) {
    case RK_FLOW:      return rd_str(v, false, &r->flow);
    case RK_RUN_ID:    return rd_str(v, false, &r->run_id);
    case RK_USER:      return rd_str(v, true, &r->user);
    case RK_ORIGIN:    return rd_str(v, true, &r->origin_run_id);
    case RK_STATUS:    return rd_i32(v, &r->status);
    case RK_CREATED:   return rd_i64(v, &r->created_us);
    case RK_FINISHED:  return rd_i64(v, &r->finished_us);
    case RK_HEARTBEAT: return rd_i64(v, &r->heartbeat_us);
    case RK_HOST:      return rd_str(v, true, &r->host);
    case RK_PID:       return rd_i64(v, &r->pid);
    case RK_SYS_TAGS:  return rd_strv(v, &r->sys_tags, &r->nsys_tags);
    case RK_TAGS:      return rd_strv(v, &r->tags, &r->ntags);
    case RK_PARAMS:    return rd_params(v, r);
    }
    return F_OK;
}

static const record_kind run_kind = {
    "run record", run_keys, (int)NELEMS(run_keys), run_required, NELEMS(run_required), run_field
};

int mf__run_record_decode(mf__run_record *r, const void *data, size_t len, const char *what)
{
    if (!r)
        return mf__error_set(MF_EINVAL, "run record: NULL output");
    memset(r, 0, sizeof *r);
    int rc = decode_record(&run_kind, r, data, len, what, &r->format);
    if (rc != MF_OK)
        mf__run_record_clear(r);
    return rc;
}

void mf__run_record_clear(mf__run_record *r)
{
    if (!r)
        return;
    free(r->flow);
    free(r->run_id);
    free(r->user);
    free(r->origin_run_id);
    free(r->host);
    mf__strvec_free(r->sys_tags, r->nsys_tags);
    mf__strvec_free(r->tags, r->ntags);
    /* rd_params() may leave the arrays allocated with fewer filled slots;
     * calloc made the rest NULL, so freeing nparams entries is exact. */
    mf__strvec_free(r->param_names, r->nparams);
    mf__strvec_free(r->param_values, r->nparams);
    memset(r, 0, sizeof *r);
}

enum {
    TK_FORMAT, TK_FLOW, TK_RUN_ID, TK_STEP, TK_TASK_ID, TK_ATTEMPT, TK_STATUS,
    TK_STARTED, TK_FINISHED, TK_FOREACH, TK_INPUTS, TK_ARTIFACTS
};
static const char *const task_keys[] = {
    "format", "flow", "run_id", "step", "task_id", "attempt", "status",
    "started_us", "finished_us", "foreach", "inputs", "artifacts"
};
static const int task_required[] = { TK_FLOW, TK_RUN_ID, TK_STEP, TK_TASK_ID,
                                     TK_ATTEMPT, TK_STATUS };

static int rd_foreach(const msgpack_object *o, mf__task_record *t)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return F_TYPE;
    size_t n = o->via.array.size;
    if (n == 0)
        return F_OK;
    t->foreach_index = calloc(n, sizeof(uint32_t));
    t->foreach_nsplits = calloc(n, sizeof(uint32_t));
    t->foreach_value = calloc(n, sizeof(char *));
    if (!t->foreach_index || !t->foreach_nsplits || !t->foreach_value)
        return F_NOMEM;
    t->foreach_depth = n;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3)
            return F_TYPE;
        int rc = rd_u32(&e->via.array.ptr[0], &t->foreach_index[i]);
        if (rc == F_OK)
            rc = rd_u32(&e->via.array.ptr[1], &t->foreach_nsplits[i]);
        if (rc == F_OK)
            rc = rd_str(&e->via.array.ptr[2], true, &t->foreach_value[i]);
        if (rc != F_OK)
            return rc;
    }
    return F_OK;
}

static int task_field(void *rec, int id, const msgpack_object *v)
{
    mf__task_record *t = rec;
    switch (id) {
    case TK_FLOW:      return rd_str(v, false, &t->flow);
    case TK_RUN_ID:    return rd_str(v, false, &t->run_id);
    case TK_STEP:      return rd_str(v, false, &t->step);
    case TK_TASK_ID:   return rd_str(v, false, &t->task_id);
    case TK_ATTEMPT:   return rd_u32(v, &t->attempt);
    case TK_STATUS:    return rd_i32(v, &t->status);
    case TK_STARTED:   return rd_i64(v, &t->started_us);
    case TK_FINISHED:  return rd_i64(v, &t->finished_us);
    case TK_FOREACH:   return rd_foreach(v, t);
    case TK_INPUTS:    return rd_strv(v, &t->input_paths, &t->ninputs);
    case TK_ARTIFACTS: return rd_strv(v, &t->artifact_names, &t->nartifacts);
    }
    return F_OK;
}

static const record_kind task_kind = {
    "task record", task_keys, (int)NELEMS(task_keys), task_required, NELEMS(task_required),
    task_field
};

int mf__task_record_decode(mf__task_record *t, const void *data, size_t len, const char *what)
{
    if (!t)
        return mf__error_set(MF_EINVAL, "task record: NULL output");
    memset(t, 0, sizeof *t);
    int rc = decode_record(&task_kind, t, data, len, what, &t->format);
    if (rc != MF_OK)
        mf__task_record_clear(t);
    return rc;
}

void mf__task_record_clear(mf__task_record *t)
{
    if (!t)
        return;
    free(t->flow);
    free(t->run_id);
    free(t->step);
    free(t->task_id);
    free(t->foreach_index);
    free(t->foreach_nsplits);
    mf__strvec_free(t->foreach_value, t->foreach_depth);
    mf__strvec_free(t->input_paths, t->ninputs);
    mf__strvec_free(t->artifact_names, t->nartifacts);
    memset(t, 0, sizeof *t);
}
