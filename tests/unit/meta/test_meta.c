/* Unit tests of lib/meta: records, the LMDB index, run liveness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <msgpack.h>

#include "meta/meta.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static char *g_dir;

static int setup_dir(void **state)
{
    (void)state;
    g_dir = mf_test_tmpdir("meta");
    return g_dir ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    mf_test_rmrf(g_dir);
    free(g_dir);
    g_dir = NULL;
    return 0;
}

static char *idx_path(const char *sub)
{
    size_t n = strlen(g_dir) + strlen(sub) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", g_dir, sub);
    return p;
}

static mf_meta *open_idx(const char *sub, uint64_t map_size)
{
    char *p = idx_path(sub);
    mf_meta *m = NULL;
    int rc = mf__meta_open(&m, p, map_size, false);
    if (rc != MF_OK)
        fail_msg("open '%s': %s", p, mf_error_last());
    free(p);
    return m;
}

static char *tags_a[] = { "team:a", "x" };
static char *systags[] = { "user:alice", "runtime:dev" };
static char *pnames[] = { "alpha", "beta" };
static char *pvalues[] = { "1", "{\"k\": [1, 2]}" };

static mf__run_record mkrun(const char *flow, const char *id, int64_t created, int32_t status)
{
    mf__run_record r;
    memset(&r, 0, sizeof r);
    r.format = MF_RECORD_FORMAT;
    r.flow = (char *)flow;
    r.run_id = (char *)id;
    r.user = "alice";
    r.status = status;
    r.created_us = created;
    return r;
}

static mf__task_record mktask(const char *flow, const char *run, const char *step,
                              const char *task, uint32_t attempt, int32_t status)
{
    mf__task_record t;
    memset(&t, 0, sizeof t);
    t.format = MF_RECORD_FORMAT;
    t.flow = (char *)flow;
    t.run_id = (char *)run;
    t.step = (char *)step;
    t.task_id = (char *)task;
    t.attempt = attempt;
    t.status = status;
    return t;
}

static void assert_list(mf_strlist *l, const char *const *want, size_t n)
{
    assert_int_equal(mf_strlist_count(l), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(mf_strlist_get(l, i), want[i]);
}

static mf_strlist *run_list(mf_meta *m, const char *flow, const char *const *tags, size_t ntags,
                            uint32_t flags, size_t limit)
{
    mf_strlist *l = mf__strlist_new();
    assert_non_null(l);
    int rc = mf__meta_run_list(m, flow, tags, ntags, flags, limit, l);
    if (rc != MF_OK)
        fail_msg("run list: %s", mf_error_last());
    return l;
}

/* Bytes of a msgpack map built by the callback. */
typedef void (*pack_fn)(msgpack_packer *pk);

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static msgpack_sbuffer packed(pack_fn fn)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fn(&pk);
    return sb;
}

/* ------------------------------------------------------------ records */

static void test_run_record_roundtrip(void **state)
{
    (void)state;
    mf__run_record r = mkrun("TrainFlow", "1700000000000001", 1700000000000001, MF_RUN_SUCCEEDED);
    r.origin_run_id = "1690000000000000";
    r.finished_us = 1700000000999999;
    r.heartbeat_us = -5;
    r.host = "node-7";
    r.pid = 4242;
    r.nsys_tags = 2;
    r.sys_tags = systags;
    r.ntags = 2;
    r.tags = tags_a;
    r.nparams = 2;
    r.param_names = pnames;
    r.param_values = pvalues;

    mf_buf b = MF_BUF_INIT, b2 = MF_BUF_INIT;
    assert_int_equal(mf__run_record_encode(&r, &b), MF_OK);
    mf__run_record d;
    assert_int_equal(mf__run_record_decode(&d, b.ptr, b.size, "TrainFlow/1"), MF_OK);
    assert_int_equal(d.format, MF_RECORD_FORMAT);
    assert_string_equal(d.flow, "TrainFlow");
    assert_string_equal(d.run_id, "1700000000000001");
    assert_string_equal(d.user, "alice");
    assert_string_equal(d.origin_run_id, "1690000000000000");
    assert_int_equal(d.status, MF_RUN_SUCCEEDED);
    assert_int_equal(d.created_us, 1700000000000001);
    assert_int_equal(d.finished_us, 1700000000999999);
    assert_int_equal(d.heartbeat_us, -5);
    assert_string_equal(d.host, "node-7");
    assert_int_equal(d.pid, 4242);
    assert_int_equal(d.nsys_tags, 2);
    assert_string_equal(d.sys_tags[0], "user:alice");
    assert_string_equal(d.sys_tags[1], "runtime:dev");
    assert_int_equal(d.ntags, 2);
    assert_string_equal(d.tags[0], "team:a");
    assert_string_equal(d.tags[1], "x");
    assert_int_equal(d.nparams, 2);
    assert_string_equal(d.param_names[0], "alpha");
    assert_string_equal(d.param_values[0], "1");
    assert_string_equal(d.param_names[1], "beta");
    assert_string_equal(d.param_values[1], "{\"k\": [1, 2]}");

    /* Deterministic: the decoded record encodes to the same bytes. */
    assert_int_equal(mf__run_record_encode(&d, &b2), MF_OK);
    assert_int_equal(b.size, b2.size);
    assert_memory_equal(b.ptr, b2.ptr, b.size);
    mf__run_record_clear(&d);
    assert_null(d.flow);
    mf__run_record_clear(&d); /* twice is harmless */

    /* Optional strings absent. */
    mf__run_record m = mkrun("F", "r", 0, MF_RUN_RUNNING);
    m.user = NULL;
    assert_int_equal(mf__run_record_encode(&m, &b), MF_OK);
    assert_int_equal(mf__run_record_decode(&d, b.ptr, b.size, "F/r"), MF_OK);
    assert_null(d.user);
    assert_null(d.origin_run_id);
    assert_null(d.host);
    assert_int_equal(d.ntags, 0);
    assert_null(d.tags);
    assert_int_equal(d.nparams, 0);
    mf__run_record_clear(&d);

    /* Required strings missing: refused. */
    m.run_id = NULL;
    assert_int_equal(mf__run_record_encode(&m, &b), MF_EINVAL);
    mf_buf_dispose(&b);
    mf_buf_dispose(&b2);
}

static void test_task_record_roundtrip(void **state)
{
    (void)state;
    uint32_t idx[] = { 3, 0 }, ns[] = { 10, 2 };
    char *vals[] = { "'a'", NULL };
    char *inputs[] = { "1/start/1", "1/a/2" };
    char *arts[] = { "model", "x" };
    mf__task_record t = mktask("TrainFlow", "1", "train", "17", 2, MF_TASK_FAILED);
    t.started_us = 100;
    t.finished_us = 250;
    t.foreach_depth = 2;
    t.foreach_index = idx;
    t.foreach_nsplits = ns;
    t.foreach_value = vals;
    t.ninputs = 2;
    t.input_paths = inputs;
    t.nartifacts = 2;
    t.artifact_names = arts;

    mf_buf b = MF_BUF_INIT, b2 = MF_BUF_INIT;
    assert_int_equal(mf__task_record_encode(&t, &b), MF_OK);
    mf__task_record d;
    assert_int_equal(mf__task_record_decode(&d, b.ptr, b.size, "t"), MF_OK);
    assert_string_equal(d.flow, "TrainFlow");
    assert_string_equal(d.run_id, "1");
    assert_string_equal(d.step, "train");
    assert_string_equal(d.task_id, "17");
    assert_int_equal(d.attempt, 2);
    assert_int_equal(d.status, MF_TASK_FAILED);
    assert_int_equal(d.started_us, 100);
    assert_int_equal(d.finished_us, 250);
    assert_int_equal(d.foreach_depth, 2);
    assert_int_equal(d.foreach_index[0], 3);
    assert_int_equal(d.foreach_index[1], 0);
    assert_int_equal(d.foreach_nsplits[0], 10);
    assert_int_equal(d.foreach_nsplits[1], 2);
    assert_string_equal(d.foreach_value[0], "'a'");
    assert_null(d.foreach_value[1]);
    assert_int_equal(d.ninputs, 2);
    assert_string_equal(d.input_paths[1], "1/a/2");
    assert_int_equal(d.nartifacts, 2);
    assert_string_equal(d.artifact_names[0], "model");
    assert_int_equal(mf__task_record_encode(&d, &b2), MF_OK);
    assert_int_equal(b.size, b2.size);
    assert_memory_equal(b.ptr, b2.ptr, b.size);
    mf__task_record_clear(&d);

    /* No foreach values at all. */
    t.foreach_value = NULL;
    assert_int_equal(mf__task_record_encode(&t, &b), MF_OK);
    assert_int_equal(mf__task_record_decode(&d, b.ptr, b.size, "t"), MF_OK);
    assert_null(d.foreach_value[0]);
    assert_int_equal(d.foreach_nsplits[0], 10);
    mf__task_record_clear(&d);
    mf_buf_dispose(&b);
    mf_buf_dispose(&b2);
}

static void pk_newer(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pack_s(pk, "flow"); msgpack_pack_int(pk, 7); /* a newer format may retype keys */
    pack_s(pk, "format"); msgpack_pack_uint32(pk, MF_RECORD_FORMAT + 1);
}

static void pk_unknown_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "future"); msgpack_pack_array(pk, 1); msgpack_pack_map(pk, 0);
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "status"); msgpack_pack_int(pk, 2);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
}

static void pk_no_format(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
}

static void pk_missing_run_id(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "status"); msgpack_pack_int(pk, 2);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
}

static void pk_bad_tags(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "status"); msgpack_pack_int(pk, 2);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
    pack_s(pk, "tags"); msgpack_pack_array(pk, 2); pack_s(pk, "ok"); msgpack_pack_int(pk, 3);
}

static void pk_dup_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "flow"); pack_s(pk, "G");
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "status"); msgpack_pack_int(pk, 2);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
}

static void pk_nul_in_str(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); msgpack_pack_str(pk, 3); msgpack_pack_str_body(pk, "F\0G", 3);
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "status"); msgpack_pack_int(pk, 2);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
}

static void pk_status_range(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "status"); msgpack_pack_int64(pk, (int64_t)1 << 40);
    pack_s(pk, "created_us"); msgpack_pack_int64(pk, 5);
}

static void pk_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_uint32(pk, 1);
}

static void pk_task_bad_foreach(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 8);
    pack_s(pk, "format"); msgpack_pack_uint32(pk, 1);
    pack_s(pk, "flow"); pack_s(pk, "F");
    pack_s(pk, "run_id"); pack_s(pk, "9");
    pack_s(pk, "step"); pack_s(pk, "s");
    pack_s(pk, "task_id"); pack_s(pk, "1");
    pack_s(pk, "attempt"); msgpack_pack_uint32(pk, 0);
    pack_s(pk, "status"); msgpack_pack_int(pk, 1);
    pack_s(pk, "foreach"); msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 3); msgpack_pack_uint32(pk, 0); msgpack_pack_uint32(pk, 2); msgpack_pack_nil(pk);
    msgpack_pack_array(pk, 2); msgpack_pack_uint32(pk, 1); msgpack_pack_uint32(pk, 2);
}

static int decode_run_bytes(pack_fn fn, const char *what)
{
    msgpack_sbuffer sb = packed(fn);
    mf__run_record d;
    int rc = mf__run_record_decode(&d, sb.data, sb.size, what);
    if (rc == MF_OK) {
        assert_string_equal(d.flow, "F");
        mf__run_record_clear(&d);
    } else {
        assert_null(d.flow);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void test_record_hostile(void **state)
{
    (void)state;
    /* map32 declaring 0x0c454545 entries in 7 bytes: msgpack-c alone would
     * allocate ~17 GB. */
    static const unsigned char bomb[] = { 0xdf, 0x0c, 0x45, 0x45, 0x45, 0x45, 0x45 };
    mf__run_record r;
    mf__task_record t;
    assert_int_equal(mf__run_record_decode(&r, bomb, sizeof bomb, "bomb"), MF_ECORRUPT);
    assert_int_equal(mf__task_record_decode(&t, bomb, sizeof bomb, "bomb"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "bomb"));
    assert_int_equal(mf__run_record_decode(&r, "", 0, "empty"), MF_ECORRUPT);
    assert_int_equal(mf__run_record_decode(&r, NULL, 0, "null"), MF_ECORRUPT);

    /* Every strict prefix of a valid record is refused, with no leak. */
    mf__run_record full = mkrun("F", "123", 9, MF_RUN_FAILED);
    full.ntags = 2;
    full.tags = tags_a;
    full.nparams = 2;
    full.param_names = pnames;
    full.param_values = pvalues;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__run_record_encode(&full, &b), MF_OK);
    for (size_t n = 0; n < b.size; n++)
        assert_int_equal(mf__run_record_decode(&r, b.ptr, n, "F/123"), MF_ECORRUPT);
    /* Trailing garbage too. */
    assert_int_equal(mf__buf_put(&b, "\xc0", 1), MF_OK);
    assert_int_equal(mf__run_record_decode(&r, b.ptr, b.size, "F/123"), MF_ECORRUPT);

    uint32_t idx[] = { 1 }, ns[] = { 4 };
    char *vals[] = { "v" };
    mf__task_record tt = mktask("F", "1", "s", "2", 1, 1);
    tt.foreach_depth = 1;
    tt.foreach_index = idx;
    tt.foreach_nsplits = ns;
    tt.foreach_value = vals;
    assert_int_equal(mf__task_record_encode(&tt, &b), MF_OK);
    for (size_t n = 0; n < b.size; n++)
        assert_int_equal(mf__task_record_decode(&t, b.ptr, n, "F/1/s/2"), MF_ECORRUPT);
    /* A task record is no run record and vice versa. */
    assert_int_equal(mf__run_record_decode(&r, b.ptr, b.size, "x"), MF_ECORRUPT);
    mf_buf_dispose(&b);

    assert_int_equal(decode_run_bytes(pk_newer, "F/new"), MF_EVERSION);
    assert_non_null(strstr(mf_error_last(), "F/new"));
    assert_int_equal(decode_run_bytes(pk_unknown_key, "F/9"), MF_OK);
    assert_int_equal(decode_run_bytes(pk_no_format, "F/9"), MF_ECORRUPT);
    assert_int_equal(decode_run_bytes(pk_missing_run_id, "F/9"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "run_id"));
    assert_int_equal(decode_run_bytes(pk_bad_tags, "F/9"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "tags"));
    assert_int_equal(decode_run_bytes(pk_dup_key, "F/9"), MF_ECORRUPT);
    assert_int_equal(decode_run_bytes(pk_nul_in_str, "F/9"), MF_ECORRUPT);
    assert_int_equal(decode_run_bytes(pk_status_range, "F/9"), MF_ECORRUPT);
    assert_int_equal(decode_run_bytes(pk_array, "F/9"), MF_ECORRUPT);

    msgpack_sbuffer sb = packed(pk_task_bad_foreach);
    assert_int_equal(mf__task_record_decode(&t, sb.data, sb.size, "F/9/s/1"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "foreach"));
    assert_null(t.foreach_index);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------ runs */

static void test_run_insert(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    mf__run_record r = mkrun("HelloFlow", "r1", 1000, MF_RUN_RUNNING);
    r.nsys_tags = 2;
    r.sys_tags = systags;
    r.nparams = 2;
    r.param_names = pnames;
    r.param_values = pvalues;
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    assert_string_equal(r.run_id, "r1");
    assert_int_equal(mf__meta_run_insert(m, &r), MF_EEXISTS);
    assert_non_null(strstr(mf_error_last(), "HelloFlow/r1"));

    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "HelloFlow", "r1", &g), MF_OK);
    assert_string_equal(g.run_id, "r1");
    assert_int_equal(g.created_us, 1000);
    assert_int_equal(g.nparams, 2);
    assert_string_equal(g.param_values[1], pvalues[1]);
    assert_string_equal(g.sys_tags[0], "user:alice");
    mf__run_record_clear(&g);
    assert_int_equal(mf__meta_run_get(m, "HelloFlow", "nope", &g), MF_ENOTFOUND);
    assert_int_equal(mf__meta_run_get(m, "Other", "r1", &g), MF_ENOTFOUND);

    /* Allocated ids: the creation time in microseconds, unique. */
    mf__run_record a = mkrun("HelloFlow", NULL, 0, MF_RUN_RUNNING);
    int64_t before = mf__now_us();
    assert_int_equal(mf__meta_run_insert(m, &a), MF_OK);
    assert_non_null(a.run_id);
    char want[32];
    snprintf(want, sizeof want, "%" PRId64, a.created_us);
    assert_string_equal(a.run_id, want);
    assert_true(a.created_us >= before);
    mf__run_record b = mkrun("HelloFlow", NULL, 0, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert(m, &b), MF_OK);
    assert_string_not_equal(a.run_id, b.run_id);
    assert_true(b.created_us > a.created_us);
    free(a.run_id);
    free(b.run_id);

    /* Bad names are refused before touching the index. */
    mf__run_record bad = mkrun("9Flow", "x", 1, 0);
    assert_int_equal(mf__meta_run_insert(m, &bad), MF_EINVAL);
    bad = mkrun("F", "../x", 1, 0);
    assert_int_equal(mf__meta_run_insert(m, &bad), MF_EINVAL);

    mf_strlist *fl = mf__strlist_new();
    assert_int_equal(mf__meta_flow_list(m, fl), MF_OK);
    const char *wantf[] = { "HelloFlow" };
    assert_list(fl, wantf, 1);
    mf_strlist_free(fl);
    mf__meta_close(m);
}

static void test_flow_list_sorted(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    const char *flows[] = { "Zeta", "Alpha", "Mid", "Alpha2" };
    for (int i = 0; i < 4; i++) {
        mf__run_record r = mkrun(flows[i], "1", 1, 0);
        assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
        r.run_id = "2";
        assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    }
    mf_strlist *fl = mf__strlist_new();
    assert_int_equal(mf__meta_flow_list(m, fl), MF_OK);
    const char *want[] = { "Alpha", "Alpha2", "Mid", "Zeta" };
    assert_list(fl, want, 4);
    mf_strlist_free(fl);
    mf__meta_close(m);
}

static void test_run_order_and_filters(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    char *t_x[] = { "x" }, *t_xy[] = { "x", "y" }, *t_y[] = { "y" };
    char *sys_bob[] = { "user:bob" };
    struct { const char *id; int64_t t; int32_t st; char **tags; size_t nt; } runs[] = {
        { "a", 100, MF_RUN_SUCCEEDED, t_x, 1 },
        { "b", 300, MF_RUN_FAILED, t_xy, 2 },
        { "c", 200, MF_RUN_SUCCEEDED, t_y, 1 },
        { "d", 400, MF_RUN_RUNNING, NULL, 0 },
        { "e", -50, MF_RUN_SUCCEEDED, t_xy, 2 },   /* negative times order too */
        { "f10", 250, MF_RUN_FAILED, NULL, 0 },    /* ties: higher id first */
        { "f9", 250, MF_RUN_FAILED, NULL, 0 },
        { "f1", 250, MF_RUN_FAILED, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        mf__run_record r = mkrun("F", runs[i].id, runs[i].t, runs[i].st);
        r.tags = runs[i].tags;
        r.ntags = runs[i].nt;
        r.sys_tags = sys_bob;
        r.nsys_tags = i % 2;
        assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    }
    /* A second flow with a name that extends the first must not leak in. */
    mf__run_record other = mkrun("F2", "zz", 1000, MF_RUN_SUCCEEDED);
    assert_int_equal(mf__meta_run_insert(m, &other), MF_OK);

    mf_strlist *l = run_list(m, "F", NULL, 0, 0, 0);
    const char *all[] = { "d", "b", "f9", "f10", "f1", "c", "a", "e" };
    assert_list(l, all, 8);
    mf_strlist_free(l);

    l = run_list(m, "F", NULL, 0, 0, 1);
    const char *latest[] = { "d" };
    assert_list(l, latest, 1);
    mf_strlist_free(l);

    l = run_list(m, "F", NULL, 0, MF_LIST_SUCCESSFUL, 1);
    const char *latest_ok[] = { "c" };
    assert_list(l, latest_ok, 1);
    mf_strlist_free(l);

    l = run_list(m, "F", NULL, 0, MF_LIST_SUCCESSFUL, 0);
    const char *ok[] = { "c", "a", "e" };
    assert_list(l, ok, 3);
    mf_strlist_free(l);

    const char *fx[] = { "x" };
    l = run_list(m, "F", fx, 1, 0, 0);
    const char *with_x[] = { "b", "a", "e" };
    assert_list(l, with_x, 3);
    mf_strlist_free(l);

    const char *fxy[] = { "y", "x" };
    l = run_list(m, "F", fxy, 2, 0, 0);
    const char *with_xy[] = { "b", "e" };
    assert_list(l, with_xy, 2);
    mf_strlist_free(l);

    l = run_list(m, "F", fxy, 2, MF_LIST_SUCCESSFUL, 0);
    const char *with_xy_ok[] = { "e" };
    assert_list(l, with_xy_ok, 1);
    mf_strlist_free(l);

    /* System tags filter too: odd insert positions carry user:bob. */
    const char *fbob[] = { "user:bob" };
    l = run_list(m, "F", fbob, 1, 0, 0);
    const char *bob[] = { "d", "b", "f10", "f1" };
    assert_list(l, bob, 4);
    mf_strlist_free(l);

    const char *fnone[] = { "x", "nope" };
    l = run_list(m, "F", fnone, 2, 0, 0);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);
    /* A tag that is a prefix of a stored tag does not match. */
    const char *fpre[] = { "user:bo" };
    l = run_list(m, "F", fpre, 1, 0, 0);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);

    l = run_list(m, "NoSuchFlow", NULL, 0, 0, 0);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);
    mf__meta_close(m);
}

static void test_run_put_updates(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    mf__run_record r = mkrun("F", "r1", 100, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    mf__run_record r2 = mkrun("F", "r2", 200, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert(m, &r2), MF_OK);

    /* Finish r1 and tag it. */
    r.status = MF_RUN_SUCCEEDED;
    r.finished_us = 150;
    r.tags = tags_a;
    r.ntags = 2;
    assert_int_equal(mf__meta_run_put(m, &r), MF_OK);
    mf_strlist *l = run_list(m, "F", NULL, 0, MF_LIST_SUCCESSFUL, 1);
    const char *w1[] = { "r1" };
    assert_list(l, w1, 1);
    mf_strlist_free(l);
    const char *fx[] = { "x" };
    l = run_list(m, "F", fx, 1, 0, 0);
    assert_list(l, w1, 1);
    mf_strlist_free(l);

    /* Created time changed (rebuild): moves, never duplicates. */
    r.created_us = 300;
    assert_int_equal(mf__meta_run_put(m, &r), MF_OK);
    l = run_list(m, "F", NULL, 0, 0, 0);
    const char *w2[] = { "r1", "r2" };
    assert_list(l, w2, 2);
    mf_strlist_free(l);

    /* Remove the tag. */
    r.ntags = 0;
    r.tags = NULL;
    assert_int_equal(mf__meta_run_put(m, &r), MF_OK);
    l = run_list(m, "F", fx, 1, 0, 0);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);

    /* Put of a new run inserts it, and its flow. */
    mf__run_record n = mkrun("G", "9", 5, MF_RUN_FAILED);
    assert_int_equal(mf__meta_run_put(m, &n), MF_OK);
    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "G", "9", &g), MF_OK);
    assert_int_equal(g.status, MF_RUN_FAILED);
    mf__run_record_clear(&g);
    assert_int_equal(mf__meta_run_get(m, "F", "r1", &g), MF_OK);
    assert_int_equal(g.status, MF_RUN_SUCCEEDED);
    assert_int_equal(g.created_us, 300);
    assert_int_equal(g.finished_us, 150);
    mf__run_record_clear(&g);
    mf__meta_close(m);
}

/* Two processes allocate 500 run ids each in the same index. */
static void test_run_ids_two_processes(void **state)
{
    (void)state;
    char *dir = idx_path("shared");
    mf_meta *m = NULL;
    assert_int_equal(mf__meta_open(&m, dir, 0, false), MF_OK);
    mf__meta_close(m);

    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            mf_meta *cm = NULL;
            int ok = mf__meta_open(&cm, dir, 0, false) == MF_OK;
            for (int i = 0; i < 500 && ok; i++) {
                mf__run_record r = mkrun("RaceFlow", NULL, 0, MF_RUN_RUNNING);
                ok = mf__meta_run_insert(cm, &r) == MF_OK;
                if (!ok)
                    fprintf(stderr, "child insert: %s\n", mf_error_last());
                free(r.run_id);
            }
            mf__meta_close(cm);
            _exit(ok ? 0 : 1);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(mf__meta_open(&m, dir, 0, true), MF_OK);
    mf_strlist *l = run_list(m, "RaceFlow", NULL, 0, 0, 0);
    assert_int_equal(mf_strlist_count(l), 1000);
    mf_strlist *s = mf__strlist_new();
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(mf__strlist_push(s, mf_strlist_get(l, i)), MF_OK);
    mf__strlist_sort(s);
    mf__strlist_uniq(s);
    assert_int_equal(mf_strlist_count(s), 1000);
    /* Newest first: created times never increase down the list. */
    int64_t prev = INT64_MAX;
    for (size_t i = 0; i < 1000; i++) {
        mf__run_record g;
        assert_int_equal(mf__meta_run_get(m, "RaceFlow", mf_strlist_get(l, i), &g), MF_OK);
        assert_true(g.created_us <= prev);
        prev = g.created_us;
        mf__run_record_clear(&g);
    }
    mf_strlist_free(s);
    mf_strlist_free(l);
    mf__meta_close(m);
    free(dir);
}

/* ------------------------------------------------------------ tasks */

static void test_task_ids(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    mf_buf b = MF_BUF_INIT;
    char want[16];
    for (int i = 1; i <= 25; i++) {
        assert_int_equal(mf__meta_task_id_next(m, "F", "1", &b), MF_OK);
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(b.ptr, want);
    }
    /* Counters are per run. */
    assert_int_equal(mf__meta_task_id_next(m, "F", "2", &b), MF_OK);
    assert_string_equal(b.ptr, "1");
    assert_int_equal(mf__meta_task_id_next(m, "G", "1", &b), MF_OK);
    assert_string_equal(b.ptr, "1");

    /* A task recorded with an explicit numeric id moves the counter on. */
    mf__task_record t = mktask("F", "2", "start", "40", 0, MF_TASK_SUCCEEDED);
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    assert_int_equal(mf__meta_task_id_next(m, "F", "2", &b), MF_OK);
    assert_string_equal(b.ptr, "41");
    /* ... and never back. */
    t.task_id = "7";
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    assert_int_equal(mf__meta_task_id_next(m, "F", "2", &b), MF_OK);
    assert_string_equal(b.ptr, "42");
    mf_buf_dispose(&b);
    mf__meta_close(m);
}

static void test_task_put_get(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    char *arts[] = { "a", "b" };
    mf__task_record t = mktask("F", "1", "train", "3", 0, MF_TASK_FAILED);
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    t.attempt = 2;
    t.status = MF_TASK_SUCCEEDED;
    t.nartifacts = 2;
    t.artifact_names = arts;
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    t.attempt = 1;
    t.nartifacts = 0;
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    /* Neighbours that share prefixes. */
    mf__task_record n = mktask("F", "1", "train", "30", 7, MF_TASK_SUCCEEDED);
    assert_int_equal(mf__meta_task_put(m, &n), MF_OK);
    n = mktask("F", "1", "train2", "3", 9, MF_TASK_SUCCEEDED);
    assert_int_equal(mf__meta_task_put(m, &n), MF_OK);

    mf__task_record g;
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", -1, &g), MF_OK);
    assert_int_equal(g.attempt, 2);
    assert_int_equal(g.status, MF_TASK_SUCCEEDED);
    assert_int_equal(g.nartifacts, 2);
    assert_string_equal(g.artifact_names[1], "b");
    mf__task_record_clear(&g);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", 0, &g), MF_OK);
    assert_int_equal(g.attempt, 0);
    assert_int_equal(g.status, MF_TASK_FAILED);
    mf__task_record_clear(&g);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", 1, &g), MF_OK);
    assert_int_equal(g.attempt, 1);
    assert_int_equal(g.nartifacts, 0);
    mf__task_record_clear(&g);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", 3, &g), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "F/1/train/3"));
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", (int64_t)1 << 33, &g), MF_ENOTFOUND);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "4", -1, &g), MF_ENOTFOUND);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train2", "30", -1, &g), MF_ENOTFOUND);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "30", -1, &g), MF_OK);
    assert_int_equal(g.attempt, 7);
    mf__task_record_clear(&g);
    /* The last task of the whole index: latest lookup falls off the end. */
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train2", "3", -1, &g), MF_OK);
    assert_int_equal(g.attempt, 9);
    mf__task_record_clear(&g);

    /* Replacing an attempt. */
    t.attempt = 0;
    t.status = MF_TASK_SUCCEEDED;
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    assert_int_equal(mf__meta_task_get(m, "F", "1", "train", "3", 0, &g), MF_OK);
    assert_int_equal(g.status, MF_TASK_SUCCEEDED);
    mf__task_record_clear(&g);

    /* Attempts do not repeat a task in the task list. */
    mf_strlist *l = mf__strlist_new();
    assert_int_equal(mf__meta_task_list(m, "F", "1", "train", l), MF_OK);
    const char *want[] = { "3", "30" };
    assert_list(l, want, 2);
    mf_strlist_free(l);

    mf__task_record bad = mktask("F", "1", "st/ep", "3", 0, 0);
    assert_int_equal(mf__meta_task_put(m, &bad), MF_EINVAL);

    /* Names too long for an LMDB key are refused up front, whichever of
     * the task's keys is the longest (with a short task id, the step's
     * task-order key). */
    char flow[256], run[129], step[119];
    memset(flow, 'F', 255); flow[255] = '\0';
    memset(run, '7', 128); run[128] = '\0';
    memset(step, 's', 118); step[118] = '\0';
    mf__task_record lng = mktask(flow, run, step, "1", 0, 0);
    assert_int_equal(mf__meta_task_put(m, &lng), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "too long"));
    mf__meta_close(m);
}

static void test_step_task_order(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    /* Recording order, not name order. */
    const char *steps[] = { "start", "fan", "b", "join", "end" };
    char id[16];
    int next = 1;
    for (int s = 0; s < 5; s++) {
        int ntask = s == 1 ? 12 : 1;
        for (int i = 0; i < ntask; i++) {
            /* Fan tasks are recorded out of id order. */
            int tid = s == 1 ? next + (11 - i) : next;
            snprintf(id, sizeof id, "%d", tid);
            mf__task_record t = mktask("F", "7", steps[s], id, 0, MF_TASK_SUCCEEDED);
            assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
            t.attempt = 1; /* a retry keeps the task's place */
            assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
        }
        next += ntask;
    }
    /* Another run's steps do not mix in. */
    mf__task_record o = mktask("F", "70", "aaa", "1", 0, 0);
    assert_int_equal(mf__meta_task_put(m, &o), MF_OK);

    mf_strlist *l = mf__strlist_new();
    assert_int_equal(mf__meta_step_list(m, "F", "7", l), MF_OK);
    assert_list(l, steps, 5);
    mf_strlist_free(l);

    l = mf__strlist_new();
    assert_int_equal(mf__meta_task_list(m, "F", "7", "fan", l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 12);
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "%d", 2 + 11 - i);
        assert_string_equal(mf_strlist_get(l, (size_t)i), id);
    }
    mf_strlist_free(l);

    l = mf__strlist_new();
    assert_int_equal(mf__meta_task_list(m, "F", "7", "nope", l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 0);
    assert_int_equal(mf__meta_step_list(m, "F", "8", l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);
    mf__meta_close(m);
}

/* ------------------------------------------------------------ map, open */

static void test_map_growth(void **state)
{
    (void)state;
    mf_meta *m = open_idx("small", 64 * 1024);
    uint64_t first = mf__meta_map_size(m);
    assert_true(first <= 64 * 1024);
    char big[3000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *names[] = { "p" }, *values[] = { big };
    char id[32], tid[32];
    for (int i = 0; i < 800; i++) {
        snprintf(id, sizeof id, "run%04d", i);
        mf__run_record r = mkrun("GrowFlow", id, 1000 + i, i % 3 == 0 ? MF_RUN_SUCCEEDED : MF_RUN_FAILED);
        r.nparams = 1;
        r.param_names = names;
        r.param_values = values;
        int rc = mf__meta_run_insert(m, &r);
        if (rc != MF_OK)
            fail_msg("insert %d: %s", i, mf_error_last());
        snprintf(tid, sizeof tid, "%d", i + 1);
        mf__task_record t = mktask("GrowFlow", "run0000", "s", tid, 0, 1);
        assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    }
    uint64_t last = mf__meta_map_size(m);
    /* 64 KiB to at least 2 MiB: five doublings or more (values this big
     * also take LMDB overflow pages). */
    assert_true(last >= first * 32);

    mf_strlist *l = run_list(m, "GrowFlow", NULL, 0, 0, 0);
    assert_int_equal(mf_strlist_count(l), 800);
    assert_string_equal(mf_strlist_get(l, 0), "run0799");
    assert_string_equal(mf_strlist_get(l, 799), "run0000");
    mf_strlist_free(l);
    for (int i = 0; i < 800; i += 37) {
        snprintf(id, sizeof id, "run%04d", i);
        mf__run_record g;
        assert_int_equal(mf__meta_run_get(m, "GrowFlow", id, &g), MF_OK);
        assert_string_equal(g.param_values[0], big);
        mf__run_record_clear(&g);
    }
    l = mf__strlist_new();
    assert_int_equal(mf__meta_task_list(m, "GrowFlow", "run0000", "s", l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 800);
    mf_strlist_free(l);
    mf__meta_close(m);

    /* Reopening with the tiny size still reads and writes everything. */
    m = open_idx("small", 64 * 1024);
    assert_true(mf__meta_map_size(m) >= last / 2);
    mf__run_record r = mkrun("GrowFlow", "after", 99999, MF_RUN_SUCCEEDED);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    l = run_list(m, "GrowFlow", NULL, 0, 0, 2);
    const char *want[] = { "after", "run0799" };
    assert_list(l, want, 2);
    mf_strlist_free(l);
    mf__meta_close(m);
}

/* A reader process keeps reading while this one grows the map. */
static void test_map_growth_other_reader(void **state)
{
    (void)state;
    char *dir = idx_path("grow2");
    mf_meta *m = NULL;
    assert_int_equal(mf__meta_open(&m, dir, 64 * 1024, false), MF_OK);
    mf__run_record r = mkrun("F", "seed", 1, MF_RUN_SUCCEEDED);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);

    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(go[1]);
        mf_meta *rm = NULL;
        int ok = mf__meta_open(&rm, dir, 64 * 1024, true) == MF_OK;
        char c;
        /* Read until the parent closes the pipe, then once more. */
        int flags = fcntl(go[0], F_GETFL);
        fcntl(go[0], F_SETFL, flags | O_NONBLOCK);
        size_t seen = 0;
        for (;;) {
            ssize_t n = read(go[0], &c, 1);
            mf_strlist *l = mf__strlist_new();
            ok = ok && mf__meta_run_list(rm, "F", NULL, 0, 0, 0, l) == MF_OK;
            if (!ok)
                fprintf(stderr, "reader: %s\n", mf_error_last());
            ok = ok && mf_strlist_count(l) >= seen;
            seen = mf_strlist_count(l);
            mf_strlist_free(l);
            if (n == 0 || !ok)
                break;
        }
        mf__meta_close(rm);
        _exit(ok && seen == 1001 ? 0 : 1);
    }
    close(go[0]);
    char big[1500];
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *names[] = { "p" }, *values[] = { big };
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "r%d", i);
        mf__run_record x = mkrun("F", id, 10 + i, MF_RUN_FAILED);
        x.nparams = 1;
        x.param_names = names;
        x.param_values = values;
        assert_int_equal(mf__meta_run_insert(m, &x), MF_OK);
    }
    close(go[1]);
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    mf__meta_close(m);
    free(dir);
}

typedef struct thr_arg {
    mf_meta *m;
    int id;
    int ok;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    char id[32];
    a->ok = 1;
    for (int i = 0; i < 300 && a->ok; i++) {
        if (a->id < 2) {
            snprintf(id, sizeof id, "t%d-%d", a->id, i);
            mf__run_record r = mkrun("T", id, i * 2 + a->id, MF_RUN_RUNNING);
            r.nsys_tags = 2;
            r.sys_tags = systags;
            a->ok = mf__meta_run_insert(a->m, &r) == MF_OK;
        } else {
            mf_strlist *l = mf__strlist_new();
            a->ok = mf__meta_run_list(a->m, "T", NULL, 0, 0, 5, l) == MF_OK;
            mf_strlist_free(l);
        }
    }
    return NULL;
}

/* Threads share one handle while the map grows under them. */
static void test_threads(void **state)
{
    (void)state;
    mf_meta *m = open_idx("thr", 64 * 1024);
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){ m, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].ok);
    }
    mf_strlist *l = run_list(m, "T", NULL, 0, 0, 0);
    assert_int_equal(mf_strlist_count(l), 600);
    mf_strlist_free(l);
    mf__meta_close(m);
}

static void test_open_readonly(void **state)
{
    (void)state;
    char *missing = idx_path("no/such/index");
    mf_meta *m = (mf_meta *)1;
    int rc = mf__meta_open(&m, missing, 0, true);
    assert_true(rc == MF_ENOTFOUND || rc == MF_EIO);
    assert_null(m);
    assert_non_null(strstr(mf_error_last(), missing));
    /* Readonly never creates it. */
    struct stat st;
    assert_int_not_equal(stat(missing, &st), 0);
    free(missing);

    /* An existing directory that holds no index. */
    char *empty = idx_path("emptydir");
    assert_int_equal(mkdir(empty, 0755), 0);
    rc = mf__meta_open(&m, empty, 0, true);
    assert_true(rc == MF_ENOTFOUND || rc == MF_EIO);
    assert_non_null(strstr(mf_error_last(), empty));
    free(empty);

    /* mkdir -p when writable. */
    m = open_idx("deep/er/idx", 0);
    mf__run_record r = mkrun("F", "1", 1, MF_RUN_SUCCEEDED);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    mf__meta_close(m);

    char *p = idx_path("deep/er/idx");
    assert_int_equal(mf__meta_open(&m, p, 0, true), MF_OK);
    free(p);
    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "F", "1", &g), MF_OK);
    mf__run_record_clear(&g);
    r.run_id = "2";
    assert_int_equal(mf__meta_run_insert(m, &r), MF_ESTATE);
    assert_int_equal(mf__meta_run_put(m, &r), MF_ESTATE);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__meta_task_id_next(m, "F", "1", &b), MF_ESTATE);
    assert_int_equal(mf__meta_clear(m), MF_ESTATE);
    assert_int_equal(mf__meta_run_lock(m, "F", "1"), MF_ESTATE);
    mf__meta_close(m);
    mf__meta_close(NULL);
}

static void test_clear(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    mf__run_record r = mkrun("F", "1", 1, MF_RUN_SUCCEEDED);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    mf__task_record t = mktask("F", "1", "start", "1", 0, 1);
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__meta_task_id_next(m, "F", "1", &b), MF_OK);
    assert_string_equal(b.ptr, "2");

    assert_int_equal(mf__meta_clear(m), MF_OK);
    mf_strlist *l = mf__strlist_new();
    assert_int_equal(mf__meta_flow_list(m, l), MF_OK);
    assert_int_equal(mf__meta_run_list(m, "F", NULL, 0, 0, 0, l), MF_OK);
    assert_int_equal(mf__meta_step_list(m, "F", "1", l), MF_OK);
    assert_int_equal(mf__meta_task_list(m, "F", "1", "start", l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);
    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "F", "1", &g), MF_ENOTFOUND);
    mf__task_record tg;
    assert_int_equal(mf__meta_task_get(m, "F", "1", "start", "1", -1, &tg), MF_ENOTFOUND);
    assert_int_equal(mf__meta_task_id_next(m, "F", "1", &b), MF_OK);
    assert_string_equal(b.ptr, "1");
    /* Usable again (same id re-inserted). */
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    mf_buf_dispose(&b);
    mf__meta_close(m);
}

/* A damaged record in the file reads as MF_ECORRUPT naming the key. */
static void test_corrupt_record(void **state)
{
    (void)state;
    char *dir = idx_path("corrupt");
    mf_meta *m = NULL;
    assert_int_equal(mf__meta_open(&m, dir, 0, false), MF_OK);
    mf__run_record r = mkrun("F", "bad", 50, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    mf__task_record t = mktask("F", "bad", "start", "1", 0, 1);
    assert_int_equal(mf__meta_task_put(m, &t), MF_OK);
    mf__meta_close(m);

    /* Overwrite the records behind the library's back. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi runs, tasks;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, dir, 0, 0664), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "runs", 0, &runs), 0);
    assert_int_equal(mdb_dbi_open(txn, "tasks", 0, &tasks), 0);
    static const unsigned char bomb[] = { 0xdf, 0x0c, 0x45, 0x45, 0x45, 0x45, 0x45 };
    MDB_val k = { 5, "F\0bad" }, v = { sizeof bomb, (void *)bomb };
    assert_int_equal(mdb_put(txn, runs, &k, &v, 0), 0);
    unsigned char tk[] = "F\0bad\0start\0" "1\0\0\0\0\0";
    MDB_val k2 = { sizeof tk - 1, tk }, v2 = { 3, "\x93\x01\x02" };
    assert_int_equal(mdb_put(txn, tasks, &k2, &v2, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(mf__meta_open(&m, dir, 0, false), MF_OK);
    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "F", "bad", &g), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "F/bad"));
    assert_non_null(strstr(mf_error_last(), dir));
    mf__task_record tg;
    assert_int_equal(mf__meta_task_get(m, "F", "bad", "start", "1", -1, &tg), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "F/bad/start/1/0"));
    /* A put over the damaged record still succeeds and the listing keeps a
     * single entry for the run. */
    r.status = MF_RUN_FAILED;
    if (mf__meta_run_put(m, &r) != MF_OK)
        fail_msg("put: %s", mf_error_last());
    mf_strlist *l = run_list(m, "F", NULL, 0, 0, 0);
    const char *want[] = { "bad" };
    assert_list(l, want, 1);
    mf_strlist_free(l);
    assert_int_equal(mf__meta_run_get(m, "F", "bad", &g), MF_OK);
    assert_int_equal(g.status, MF_RUN_FAILED);
    mf__run_record_clear(&g);
    mf__meta_close(m);
    free(dir);
}

/* ------------------------------------------------------------ liveness, fork */

static char *lock_file(const char *idx, const char *flow, const char *run)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s/locks/%s.%s.lock", g_dir, idx, flow, run);
    return p;
}

static void test_liveness_own(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 0);
    assert_int_equal(mf__meta_run_lock(m, "F", "1"), MF_OK);
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 1);
    /* Asking again must not drop the lock (no open/close of the file). */
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 1);
    assert_int_equal(mf__meta_run_lock(m, "F", "1"), MF_OK);

    /* Another process sees it alive, and cannot take it. */
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        mf_meta *cm = NULL;
        int code = 0;
        char *p = idx_path("idx");
        if (mf__meta_open(&cm, p, 0, false) != MF_OK)
            code = 10;
        else if (mf__meta_run_alive(cm, "F", "1") != 1)
            code = 11;
        else if (mf__meta_run_lock(cm, "F", "1") != MF_EBUSY)
            code = 12;
        else if (mf__meta_run_unlock(cm, "F", "1") != MF_ESTATE)
            code = 13;
        mf__meta_close(cm);
        free(p);
        _exit(code);
    }
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The child's open/close of the file did not drop our lock. */
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 1);

    char *lf = lock_file("idx", "F", "1");
    struct stat sst;
    assert_int_equal(stat(lf, &sst), 0);
    assert_int_equal(mf__meta_run_unlock(m, "F", "1"), MF_OK);
    assert_int_not_equal(stat(lf, &sst), 0);
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 0);
    assert_int_equal(mf__meta_run_unlock(m, "F", "1"), MF_ESTATE);
    free(lf);

    /* A second handle in this process agrees (the table is per process). */
    assert_int_equal(mf__meta_run_lock(m, "F", "2"), MF_OK);
    char *p = idx_path("idx");
    mf_meta *ro = NULL;
    assert_int_equal(mf__meta_open(&ro, p, 0, true), MF_OK);
    assert_int_equal(mf__meta_run_alive(ro, "F", "2"), 1);
    mf__meta_close(ro);
    assert_int_equal(mf__meta_run_alive(m, "F", "2"), 1);
    assert_int_equal(mf__meta_run_unlock(m, "F", "2"), MF_OK);
    free(p);

    assert_int_equal(mf__meta_run_alive(m, "F", "../x"), MF_EINVAL);
    mf__meta_close(m);
}

static void test_liveness_killed_child(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(ready[0]);
        mf_meta *cm = NULL;
        char *p = idx_path("idx");
        char c = 'n';
        if (mf__meta_open(&cm, p, 0, false) == MF_OK) {
            mf__run_record r = mkrun("KillFlow", NULL, 0, MF_RUN_RUNNING);
            if (mf__meta_run_insert_locked(cm, &r) == MF_OK && strlen(r.run_id) < 30) {
                c = 'y';
                (void)!write(ready[1], &c, 1);
                (void)!write(ready[1], r.run_id, strlen(r.run_id) + 1);
                for (;;)
                    pause();
            }
        }
        (void)!write(ready[1], &c, 1);
        _exit(1);
    }
    close(ready[1]);
    char c = 0, id[32] = { 0 };
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    size_t n = 0;
    while (n < sizeof id - 1 && read(ready[0], &id[n], 1) == 1 && id[n])
        n++;
    close(ready[0]);

    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "KillFlow", id, &g), MF_OK);
    assert_int_equal(g.status, MF_RUN_RUNNING);
    mf__run_record_clear(&g);
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", id), 1);
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", id), 1);

    assert_int_equal(kill(kid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", id), 0);
    /* A stale lock file is left; the run can be locked again. */
    char *lf = lock_file("idx", "KillFlow", id);
    struct stat sst;
    assert_int_equal(stat(lf, &sst), 0);
    free(lf);
    assert_int_equal(mf__meta_run_lock(m, "KillFlow", id), MF_OK);
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", id), 1);
    assert_int_equal(mf__meta_run_unlock(m, "KillFlow", id), MF_OK);

    /* insert_locked in this process; a taken id fails without a lock. */
    mf__run_record r = mkrun("KillFlow", "mine", 5, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert_locked(m, &r), MF_OK);
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", "mine"), 1);
    assert_int_equal(mf__meta_run_unlock(m, "KillFlow", "mine"), MF_OK);
    assert_int_equal(mf__meta_run_insert_locked(m, &r), MF_EEXISTS);
    assert_int_equal(mf__meta_run_alive(m, "KillFlow", "mine"), 0);
    mf__meta_close(m);
}

static void test_use_after_fork(void **state)
{
    (void)state;
    mf_meta *m = open_idx("idx", 0);
    mf__run_record r = mkrun("F", "1", 1, MF_RUN_RUNNING);
    assert_int_equal(mf__meta_run_insert(m, &r), MF_OK);
    assert_int_equal(mf__meta_run_lock(m, "F", "1"), MF_OK);

    /* A read transaction of the parent's stays open across the fork. */
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        int code = 0;
        mf__run_record g;
        mf_strlist *l = mf__strlist_new();
        mf_buf b = MF_BUF_INIT;
        if (mf__meta_run_get(m, "F", "1", &g) != MF_ESTATE)
            code = 1;
        else if (!strstr(mf_error_last(), "fork"))
            code = 2;
        else if (mf__meta_run_list(m, "F", NULL, 0, 0, 0, l) != MF_ESTATE)
            code = 3;
        else if (mf__meta_run_insert(m, &r) != MF_ESTATE)
            code = 4;
        else if (mf__meta_task_id_next(m, "F", "1", &b) != MF_ESTATE)
            code = 5;
        else if (mf__meta_run_alive(m, "F", "1") != MF_ESTATE)
            code = 6;
        else if (mf__meta_clear(m) != MF_ESTATE)
            code = 7;
        mf_strlist_free(l);
        /* Closing in the child must leave the parent's index alone. */
        mf__meta_close(m);
        _exit(code);
    }
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The parent still works, still holds its lock. */
    mf__run_record g;
    assert_int_equal(mf__meta_run_get(m, "F", "1", &g), MF_OK);
    mf__run_record_clear(&g);
    assert_int_equal(mf__meta_run_alive(m, "F", "1"), 1);
    assert_int_equal(mf__meta_run_unlock(m, "F", "1"), MF_OK);
    mf__meta_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_record_roundtrip),
        cmocka_unit_test(test_task_record_roundtrip),
        cmocka_unit_test(test_record_hostile),
        cmocka_unit_test_setup_teardown(test_run_insert, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flow_list_sorted, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_order_and_filters, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_put_updates, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_ids_two_processes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_task_ids, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_task_put_get, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_step_task_order, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_map_growth, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_map_growth_other_reader, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_threads, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_readonly, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_clear, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_record, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_liveness_own, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_liveness_killed_child, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_use_after_fork, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
