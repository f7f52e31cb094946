/* Public-API tests of engines, runs, tasks and artifacts on a real
 * filesystem datastore and LMDB index, with real processes. Only the public
 * headers are used. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <metaflow.h>

#include "testutil.h"

struct fx {
    char *dir;
    char root[PATH_MAX];
    mf_engine *e;
};

static mf_engine *open_engine(const char *root)
{
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    mf_engine *e = NULL;
    o.root = root;
    int rc = mf_engine_open(&e, &o);
    if (rc)
        fail_msg("mf_engine_open: %s", mf_error_last());
    return e;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = mf_test_tmpdir("api");
    snprintf(f->root, sizeof f->root, "%s/.metaflow", f->dir);
    f->e = open_engine(f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mf_engine_free(f->e);
    mf_test_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static mf_run *new_run(mf_engine *e, const char *flow)
{
    mf_run *r = NULL;
    if (mf_run_create(&r, e, flow, NULL))
        fail_msg("mf_run_create: %s", mf_error_last());
    return r;
}

static void put_ok(mf_task *t, const char *name, const char *enc, const void *d, uint64_t n,
                   uint32_t flags)
{
    if (mf_task_put(t, name, enc, d, n, flags))
        fail_msg("mf_task_put(%s): %s", name, mf_error_last());
}

static void version_and_errors(void **state)
{
    (void)state;
    assert_int_equal(mf_version(), MF_VERSION_NUMBER);
    assert_string_equal(mf_version_string(), MF_VERSION_STRING);
    assert_string_equal(mf_strerror(MF_ENOTFOUND), "not found");
    assert_string_equal(mf_strerror(12345), "unknown error code");
    mf_error_clear();
    assert_string_equal(mf_error_last(), "no error");
    assert_int_equal(mf_error_last_code(), MF_OK);
    mf_buf b = MF_BUF_INIT;
    mf_buf_dispose(&b);
    mf_buf_dispose(NULL);
    mf_strlist_free(NULL);
    mf_engine_free(NULL);
    mf_run_free(NULL);
    mf_task_free(NULL);
    mf_artifact_free(NULL);
    assert_int_equal(mf_strlist_count(NULL), 0);
    assert_null(mf_strlist_get(NULL, 0));
}

static void run_lifecycle(void **state)
{
    struct fx *f = *state;
    const char *tags[] = {"exp:1", "team:ml", "exp:1"};
    const char *pn[] = {"alpha", "name_x"};
    const char *pv[] = {"0.5", "hello"};
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    ro.user = "alice";
    ro.tags = tags;
    ro.ntags = 3;
    ro.param_names = pn;
    ro.param_values = pv;
    ro.nparams = 2;
    mf_run *r = NULL;
    assert_int_equal(mf_run_create(&r, f->e, "HelloFlow", &ro), MF_OK);
    const char *id = mf_run_id(r);
    assert_non_null(id);
    /* Metaflow-style ids: decimal microseconds since the epoch. */
    assert_true(strlen(id) >= 16);
    assert_int_equal(strspn(id, "0123456789"), strlen(id));
    assert_string_equal(mf_run_flow(r), "HelloFlow");
    assert_string_equal(mf_run_user(r), "alice");
    assert_null(mf_run_origin(r));
    assert_true(mf_run_created_at(r) > 1700000000000000LL);
    assert_int_equal(mf_run_status_get(r), MF_RUN_RUNNING);

    mf_buf v = MF_BUF_INIT;
    assert_int_equal(mf_run_param(r, "alpha", &v), MF_OK);
    assert_string_equal(v.ptr, "0.5");
    assert_int_equal(mf_run_param(r, "beta", &v), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "beta"));
    mf_buf_dispose(&v);

    mf_strlist *l = NULL;
    assert_int_equal(mf_run_tags(r, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 5);
    assert_string_equal(mf_strlist_get(l, 0), "user:alice");
    assert_string_equal(mf_strlist_get(l, 3), "exp:1");
    assert_string_equal(mf_strlist_get(l, 4), "team:ml");
    mf_strlist_free(l);

    const char *add[] = {"stage:prod"};
    const char *rm[] = {"team:ml"};
    assert_int_equal(mf_run_tags_update(r, add, 1, rm, 1), MF_OK);
    const char *rm_sys[] = {"user:alice"};
    assert_int_equal(mf_run_tags_update(r, NULL, 0, rm_sys, 1), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "system tag 'user:alice'"));

    const char *filt[] = {"stage:prod", "exp:1"};
    assert_int_equal(mf_run_list(&l, f->e, "HelloFlow", filt, 2, 0), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    assert_string_equal(mf_strlist_get(l, 0), id);
    mf_strlist_free(l);
    const char *filt2[] = {"team:ml"};
    assert_int_equal(mf_run_list(&l, f->e, "HelloFlow", filt2, 1, 0), MF_OK);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);

    /* Not successful yet. */
    mf_run *o = NULL;
    assert_int_equal(mf_run_open(&o, f->e, "HelloFlow", "latest_successful"), MF_ENOTFOUND);
    assert_int_equal(mf_run_finish(r, MF_RUN_SUCCEEDED), MF_OK);
    assert_int_equal(mf_run_finish(r, MF_RUN_SUCCEEDED), MF_ESTATE);
    assert_int_equal(mf_run_status_get(r), MF_RUN_SUCCEEDED);
    assert_true(mf_run_finished_at(r) >= mf_run_created_at(r));

    /* A second, failed run is the latest; the first stays latest successful. */
    mf_run *r2 = new_run(f->e, "HelloFlow");
    assert_int_equal(mf_run_finish(r2, MF_RUN_FAILED), MF_OK);
    assert_int_equal(mf_run_open(&o, f->e, "HelloFlow", "latest"), MF_OK);
    assert_string_equal(mf_run_id(o), mf_run_id(r2));
    assert_int_equal(mf_run_status_get(o), MF_RUN_FAILED);
    mf_run_free(o);
    assert_int_equal(mf_run_open(&o, f->e, "HelloFlow", "latest_successful"), MF_OK);
    assert_string_equal(mf_run_id(o), id);
    mf_run_free(o);
    assert_int_equal(mf_run_list(&l, f->e, "HelloFlow", NULL, 0, 0), MF_OK);
    assert_int_equal(mf_strlist_count(l), 2);
    assert_string_equal(mf_strlist_get(l, 0), mf_run_id(r2));
    assert_string_equal(mf_strlist_get(l, 1), id);
    mf_strlist_free(l);
    assert_int_equal(mf_run_list(&l, f->e, "HelloFlow", NULL, 0, MF_LIST_SUCCESSFUL), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    mf_strlist_free(l);

    assert_int_equal(mf_flow_list(&l, f->e), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    assert_string_equal(mf_strlist_get(l, 0), "HelloFlow");
    mf_strlist_free(l);

    assert_int_equal(mf_run_open(&o, f->e, "HelloFlow", "999"), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "HelloFlow/999"));
    assert_int_equal(mf_run_open(&o, f->e, "Nope", "latest"), MF_ENOTFOUND);
    mf_run_free(r);
    mf_run_free(r2);
}

static void bad_names(void **state)
{
    struct fx *f = *state;
    mf_run *r = NULL;
    assert_int_equal(mf_run_create(&r, f->e, "../x", NULL), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "flow name '../x'"));
    assert_int_equal(mf_run_create(&r, f->e, "", NULL), MF_EINVAL);
    assert_int_equal(mf_run_create(&r, f->e, "data", NULL), MF_EINVAL);
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    ro.run_id = "..";
    assert_int_equal(mf_run_create(&r, f->e, "F", &ro), MF_EINVAL);
    ro.run_id = "a/b";
    assert_int_equal(mf_run_create(&r, f->e, "F", &ro), MF_EINVAL);
    ro.run_id = NULL;
    ro.version = 7;
    assert_int_equal(mf_run_create(&r, f->e, "F", &ro), MF_EVERSION);

    r = new_run(f->e, "F");
    mf_task *t = NULL;
    assert_int_equal(mf_task_create(&t, r, "..", NULL), MF_EINVAL);
    assert_int_equal(mf_task_create(&t, r, "next", NULL), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "reserved"));
    assert_int_equal(mf_task_create(&t, r, "_x", NULL), MF_EINVAL);
    mf_task_options to = MF_TASK_OPTIONS_INIT;
    to.task_id = "../../etc";
    assert_int_equal(mf_task_create(&t, r, "start", &to), MF_EINVAL);
    assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"", "..", "a/b", "a.b", "1x", longname, "x y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mf_task_put(t, bad[i], "raw", "v", 1, 0), MF_EINVAL);
        assert_non_null(strstr(mf_error_last(), "artifact name"));
    }
    assert_int_equal(mf_task_put(t, "x", "", "v", 1, 0), MF_EINVAL);
    assert_int_equal(mf_task_put(t, "x", "has space", "v", 1, 0), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "artifact 'x'"));
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    mf_task_free(t);

    const char *bad_ps[] = {"F", "F/1/start", "F/../start/1", "F/1/start/1/x",
                            "F/1/start/1/2/3", "../F/1/start/1", "F/1/start/.."};
    for (size_t i = 0; i < sizeof bad_ps / sizeof bad_ps[0]; i++)
        assert_int_equal(mf_task_open(&t, f->e, bad_ps[i]), MF_EINVAL);
    mf_run_free(r);
}

static void artifacts_round_trip(void **state)
{
    struct fx *f = *state;
    mf_run *r = new_run(f->e, "ArtFlow");
    mf_task *t = NULL;
    const char *inputs[] = {"123/start/1"};
    uint32_t fi[] = {2}, fn[] = {5};
    const char *fv[] = {"'c'"};
    mf_task_options to = MF_TASK_OPTIONS_INIT;
    to.input_paths = inputs;
    to.ninputs = 1;
    to.foreach_index = fi;
    to.foreach_nsplits = fn;
    to.foreach_value = fv;
    to.foreach_depth = 1;
    assert_int_equal(mf_task_create(&t, r, "train", &to), MF_OK);
    assert_string_equal(mf_task_id(t), "1");
    assert_int_equal(mf_task_status_get(t), MF_TASK_RUNNING);

    size_t big = 3u << 20;
    unsigned char *rnd = malloc(big);
    mf_test_fill_random(rnd, big, 7);
    char *zeros = calloc(1, 2u << 20);
    put_ok(t, "small", "json", "[1, 2, 3]", 9, 0);
    put_ok(t, "empty", "raw", "", 0, 0);
    put_ok(t, "model", "raw", rnd, big, MF_PUT_RAW);
    put_ok(t, "zeros", "raw", zeros, 2u << 20, 0);
    put_ok(t, "_private", "pickle5", "\x80\x05K\x01.", 5, 0);
    put_ok(t, "small", "json", "[1, 2, 3, 4]", 12, 0); /* replaces */
    const void *parts[] = {"\x80\x05header", rnd, rnd + 1000};
    uint64_t lens[] = {8, 2000, 500000};
    assert_int_equal(mf_task_put_parts(t, "arr", "pickle5", parts, lens, 3, 0), MF_OK);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    assert_int_equal(mf_task_put(t, "late", "raw", "x", 1, 0), MF_ESTATE);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_ESTATE);
    char ps[256];
    snprintf(ps, sizeof ps, "%s", mf_task_pathspec(t));
    mf_task_free(t);

    /* The same attempt cannot be written twice. */
    to.task_id = "1";
    assert_int_equal(mf_task_create(&t, r, "train", &to), MF_EEXISTS);

    assert_int_equal(mf_task_open(&t, f->e, ps), MF_OK);
    assert_string_equal(mf_task_step(t), "train");
    assert_int_equal(mf_task_attempt(t), 0);
    assert_int_equal(mf_task_status_get(t), MF_TASK_SUCCEEDED);
    mf_strlist *l = NULL;
    assert_int_equal(mf_task_artifacts(t, 0, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 5);
    assert_string_equal(mf_strlist_get(l, 0), "arr");
    assert_string_equal(mf_strlist_get(l, 1), "empty");
    assert_string_equal(mf_strlist_get(l, 2), "model");
    assert_string_equal(mf_strlist_get(l, 3), "small");
    assert_string_equal(mf_strlist_get(l, 4), "zeros");
    mf_strlist_free(l);
    assert_int_equal(mf_task_artifacts(t, MF_LIST_PRIVATE, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 6);
    assert_string_equal(mf_strlist_get(l, 0), "_private");
    mf_strlist_free(l);

    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    char hex[65];
    assert_int_equal(mf_task_artifact(&a, t, "small"), MF_OK);
    assert_string_equal(mf_artifact_encoding(a), "json");
    assert_int_equal(mf_artifact_size(a), 12);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_int_equal(b.size, 12);
    assert_memory_equal(b.ptr, "[1, 2, 3, 4]", 12);
    sha_hex("[1, 2, 3, 4]", 12, hex);
    assert_string_equal(mf_artifact_key(a), hex);
    assert_int_equal(mf_artifact_read_range(a, 0, 4, 100, &b), MF_OK);
    assert_int_equal(b.size, 8);
    assert_memory_equal(b.ptr, "2, 3, 4]", 8);
    assert_int_equal(mf_artifact_read_range(a, 0, 13, 1, &b), MF_ERANGE);
    assert_int_equal(mf_artifact_read(a, 1, &b), MF_ERANGE);
    mf_artifact_free(a);

    assert_int_equal(mf_task_artifact(&a, t, "empty"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_int_equal(b.size, 0);
    mf_artifact_free(a);

    assert_int_equal(mf_task_artifact(&a, t, "model"), MF_OK);
    assert_int_equal(mf_artifact_size(a), big);
    sha_hex(rnd, big, hex);
    assert_string_equal(mf_artifact_key(a), hex);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_int_equal(b.size, big);
    assert_memory_equal(b.ptr, rnd, big);
    assert_int_equal(mf_artifact_read_range(a, 0, big - 10, 100, &b), MF_OK);
    assert_int_equal(b.size, 10);
    assert_memory_equal(b.ptr, rnd + big - 10, 10);
    const void *p = NULL;
    uint64_t n = 0;
    assert_int_equal(mf_artifact_map(a, 0, &p, &n), MF_OK);
    assert_int_equal(n, big);
    assert_memory_equal(p, rnd, big);
    assert_int_equal(mf_artifact_is_zero_copy(a, 0), 1);
    mf_artifact_free(a);

    assert_int_equal(mf_task_artifact(&a, t, "zeros"), MF_OK);
    assert_int_equal(mf_artifact_map(a, 0, &p, &n), MF_OK);
    assert_int_equal(n, 2u << 20);
    assert_memory_equal(p, zeros, 2u << 20);
    mf_artifact_free(a);

    assert_int_equal(mf_task_artifact(&a, t, "arr"), MF_OK);
    assert_int_equal(mf_artifact_part_count(a), 3);
    assert_int_equal(mf_artifact_part_size(a, 2), 500000);
    assert_int_equal(mf_artifact_read(a, 1, &b), MF_OK);
    assert_memory_equal(b.ptr, rnd, 2000);
    assert_int_equal(mf_artifact_map(a, 2, &p, &n), MF_OK);
    assert_int_equal(n, 500000);
    assert_memory_equal(p, rnd + 1000, 500000);
    assert_int_equal(mf_artifact_is_zero_copy(a, 2), 1);
    mf_artifact_free(a);

    assert_int_equal(mf_task_artifact(&a, t, "missing"), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "missing"));
    mf_buf_dispose(&b);
    mf_task_free(t);

    /* Steps and tasks of the run. */
    assert_int_equal(mf_run_steps(r, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    assert_string_equal(mf_strlist_get(l, 0), "train");
    mf_strlist_free(l);
    assert_int_equal(mf_run_tasks(r, "train", &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    assert_string_equal(mf_strlist_get(l, 0), "1");
    mf_strlist_free(l);

    free(rnd);
    free(zeros);
    mf_run_finish(r, MF_RUN_SUCCEEDED);
    mf_run_free(r);
}

/* Count regular files under dir whose name does not start with '.'. */
static void count_files(const char *dir, int *visible, int *hidden)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "find '%s' -type f ! -name '.*' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", visible), 1);
    pclose(p);
    snprintf(cmd, sizeof cmd, "find '%s' -type f -name '.*' | wc -l", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", hidden), 1);
    pclose(p);
}

static void dedupe_across_runs(void **state)
{
    struct fx *f = *state;
    size_t n = 200000;
    unsigned char *d = malloc(n);
    mf_test_fill_random(d, n, 99);
    char data_dir[PATH_MAX + 8];
    snprintf(data_dir, sizeof data_dir, "%s/data", f->root);
    for (int i = 0; i < 3; i++) {
        mf_run *r = new_run(f->e, i == 2 ? "OtherFlow" : "DupFlow");
        mf_task *t = NULL;
        assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
        put_ok(t, "x", "raw", d, n, 0);
        put_ok(t, "y", "raw", d, n, 0);
        assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
        mf_task_free(t);
        mf_run_free(r);
    }
    int vis, hid;
    count_files(data_dir, &vis, &hid);
    assert_int_equal(vis, 1);
    assert_int_equal(hid, 0);
    free(d);
}

static void corrupt_blob_detected(void **state)
{
    struct fx *f = *state;
    size_t n = 100000;
    unsigned char *d = malloc(n);
    mf_test_fill_random(d, n, 5);
    mf_run *r = new_run(f->e, "CorruptFlow");
    mf_task *t = NULL;
    assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
    put_ok(t, "weights", "raw", d, n, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    char ps[256];
    snprintf(ps, sizeof ps, "%s", mf_task_pathspec(t));
    mf_task_free(t);

    char hex[65], path[PATH_MAX + 512];
    sha_hex(d, n, hex);
    snprintf(path, sizeof path, "%s/data/%.2s/%s", f->root, hex, hex);
    size_t flen = 0;
    unsigned char *blob = mf_test_read_file(path, &flen);
    assert_non_null(blob);
    blob[flen - 100] ^= 0x01;
    chmod(path, 0644);
    assert_int_equal(mf_test_write_file(path, blob, flen), 0);
    free(blob);

    assert_int_equal(mf_task_open(&t, f->e, ps), MF_OK);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_task_artifact(&a, t, "weights"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "artifact 'weights'"));
    mf_artifact_free(a);
    mf_task_free(t);
    mf_buf_dispose(&b);

    /* A stray file under data/ is not a blob and not judged. */
    char stray[PATH_MAX + 32];
    snprintf(stray, sizeof stray, "%s/data/README", f->root);
    assert_int_equal(mf_test_write_file(stray, "notes", 5), 0);
    mf_strlist *bad = NULL;
    assert_int_equal(mf_store_verify(f->e, &bad), MF_ECORRUPT);
    assert_int_equal(mf_strlist_count(bad), 1);
    assert_non_null(strstr(mf_strlist_get(bad, 0), hex));
    mf_strlist_free(bad);

    /* A damaged manifest is reported as such. */
    snprintf(path, sizeof path, "%s/%s", f->root, ps);
    char mpath[sizeof path + 16];
    snprintf(mpath, sizeof mpath, "%s/0.manifest", path);
    blob = mf_test_read_file(mpath, &flen);
    assert_non_null(blob);
    assert_int_equal(mf_test_write_file(mpath, blob, flen / 2), 0);
    free(blob);
    assert_int_equal(mf_task_open(&t, f->e, ps), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "manifest"));
    free(d);
    mf_run_free(r);
}

/* A runtime in another process, with its own engine (never the parent's):
 * it creates a run of `flow`, hands its id back through `id`, then runs
 * `work` until it is killed. Returns the child's pid. */
typedef void (*writer_fn)(mf_engine *e, mf_run *r);

static pid_t spawn_writer(const char *root, const char *flow, writer_fn work, char id[64])
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mf_engine *e = open_engine(root);
        mf_run *r = NULL;
        if (mf_run_create(&r, e, flow, NULL))
            _exit(30);
        char rid[64];
        snprintf(rid, sizeof rid, "%s", mf_run_id(r));
        if (write(ready[1], rid, sizeof rid) != (ssize_t)sizeof rid)
            _exit(31);
        work(e, r);
        _exit(32); /* work returns only when it failed */
    }
    assert_int_equal(read(ready[0], id, 64), 64);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

/* SIGKILL a writer and check it died of it. */
static void kill_writer(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
}

static void hold_forever(mf_engine *e, mf_run *r)
{
    for (;;)
        pause();
}

static void crashed_run_detected(void **state)
{
    struct fx *f = *state;
    char id[64];
    pid_t pid = spawn_writer(f->root, "CrashFlow", hold_forever, id);
    mf_run *r = NULL;
    assert_int_equal(mf_run_open(&r, f->e, "CrashFlow", id), MF_OK);
    assert_int_equal(mf_run_status_get(r), MF_RUN_RUNNING);
    kill_writer(pid);
    assert_int_equal(mf_run_status_get(r), MF_RUN_CRASHED);
    mf_run_free(r);
    /* And from a fresh engine, as another reader would. */
    mf_engine *e2 = open_engine(f->root);
    assert_int_equal(mf_run_open(&r, e2, "CrashFlow", "latest"), MF_OK);
    assert_int_equal(mf_run_status_get(r), MF_RUN_CRASHED);
    mf_run_free(r);
    mf_engine_free(e2);
}

static void full_disk_leaves_nothing(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        mf_engine *e = open_engine(f->root);
        mf_run *r = NULL;
        if (mf_run_create(&r, e, "DiskFlow", NULL))
            _exit(10);
        mf_task *t = NULL;
        if (mf_task_create(&t, r, "start", NULL))
            _exit(11);
        struct rlimit rl = {1u << 20, 1u << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        size_t n = 3u << 20;
        unsigned char *d = malloc(n);
        mf_test_fill_random(d, n, 1234);
        int rc = mf_task_put(t, "big", "raw", d, n, 0);
        if (rc != MF_EIO)
            _exit(12);
        if (!strstr(mf_error_last(), "artifact 'big'"))
            _exit(13);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    int vis, hid;
    char data_dir[PATH_MAX + 8];
    snprintf(data_dir, sizeof data_dir, "%s/data", f->root);
    count_files(data_dir, &vis, &hid);
    assert_int_equal(hid, 0);
    /* No blob of the failed value is visible (the run record is). */
    size_t n = 3u << 20;
    unsigned char *d = malloc(n);
    mf_test_fill_random(d, n, 1234);
    char hex[65], path[PATH_MAX + 128];
    sha_hex(d, n, hex);
    snprintf(path, sizeof path, "%s/data/%.2s/%s", f->root, hex, hex);
    struct stat sb;
    assert_int_equal(stat(path, &sb), -1);
    free(d);
}

/* Stores 48 MiB artifacts one after another. */
static void put_forever(mf_engine *e, mf_run *r)
{
    mf_task *t = NULL;
    if (mf_task_create(&t, r, "start", NULL))
        return;
    size_t n = 48u << 20;
    unsigned char *d = malloc(n);
    for (uint64_t i = 0; d; i++) {
        mf_test_fill_random(d, n, 1000 + i);
        char name[32];
        snprintf(name, sizeof name, "a%llu", (unsigned long long)i);
        if (mf_task_put(t, name, "raw", d, n, 0))
            return;
    }
}

/* A writer killed with SIGKILL in the middle of storing artifacts leaves
 * no visible task, no damaged blob, a run that reads as crashed, and only
 * garbage that GC removes. */
static void killed_writer_leaves_nothing(void **state)
{
    struct fx *f = *state;
    for (int round = 0; round < 3; round++) {
        char id[64];
        pid_t pid = spawn_writer(f->root, "KillFlow", put_forever, id);
        usleep(100000 + 150000 * round);
        kill_writer(pid);

        mf_run *r = NULL;
        assert_int_equal(mf_run_open(&r, f->e, "KillFlow", id), MF_OK);
        assert_int_equal(mf_run_status_get(r), MF_RUN_CRASHED);
        mf_strlist *l = NULL;
        assert_int_equal(mf_run_steps(r, &l), MF_OK);
        assert_int_equal(mf_strlist_count(l), 0);
        mf_strlist_free(l);
        char ps[256];
        snprintf(ps, sizeof ps, "KillFlow/%s/start/1", id);
        mf_task *t = NULL;
        assert_int_equal(mf_task_open(&t, f->e, ps), MF_ENOTFOUND);
        mf_run_free(r);
        /* Every visible blob is whole. */
        mf_strlist *bad = NULL;
        assert_int_equal(mf_store_verify(f->e, &bad), MF_OK);
        mf_strlist_free(bad);
    }
    /* Everything the writers left is garbage: GC takes it all. */
    mf_gc_options go = MF_GC_OPTIONS_INIT;
    mf_gc_stats gs;
    memset(&gs, 0, sizeof gs);
    gs.version = MF_GC_STATS_VERSION;
    go.grace_seconds = 0;
    assert_int_equal(mf_gc(f->e, &go, &gs), MF_OK);
    assert_int_equal(gs.live, 0);
    assert_int_equal(gs.swept, gs.blobs);
    int vis, hid;
    char data_dir[PATH_MAX + 8];
    snprintf(data_dir, sizeof data_dir, "%s/data", f->root);
    count_files(data_dir, &vis, &hid);
    assert_int_equal(vis, 0);
    assert_int_equal(hid, 0);
}

/* One engine shared by threads, each with its own run handle. */
struct thread_arg {
    mf_engine *e;
    const char *run_id;
    int idx;
    int failures;
};

static void *engine_thread(void *p)
{
    struct thread_arg *a = p;
    mf_run *r = NULL;
    if (mf_run_open(&r, a->e, "ThreadFlow", a->run_id)) {
        a->failures++;
        return NULL;
    }
    for (int i = 0; i < 25; i++) {
        mf_task *t = NULL;
        unsigned char blob[3000];
        char v[64];
        mf_test_fill_random(blob, sizeof blob, (uint64_t)(a->idx * 100 + i));
        snprintf(v, sizeof v, "thread %d task %d", a->idx, i);
        if (mf_task_create(&t, r, "work", NULL) ||
            mf_task_put(t, "v", "raw", v, strlen(v), 0) ||
            mf_task_put(t, "blob", "raw", blob, sizeof blob, 0) ||
            mf_task_commit(t, MF_TASK_SUCCEEDED))
            a->failures++;
        mf_task_free(t);
    }
    mf_run_free(r);
    return NULL;
}

static void engine_shared_by_threads(void **state)
{
    struct fx *f = *state;
    mf_run *r = new_run(f->e, "ThreadFlow");
    enum { N = 4 };
    pthread_t th[N];
    struct thread_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i].e = f->e;
        args[i].run_id = mf_run_id(r);
        args[i].idx = i;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, engine_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    mf_strlist *tasks = NULL;
    assert_int_equal(mf_run_tasks(r, "work", &tasks), MF_OK);
    assert_int_equal(mf_strlist_count(tasks), N * 25);
    /* Ids 1..100, each once. */
    int seen[N * 25 + 1] = {0};
    for (size_t i = 0; i < mf_strlist_count(tasks); i++) {
        int id = atoi(mf_strlist_get(tasks, i));
        assert_true(id >= 1 && id <= N * 25);
        seen[id]++;
    }
    for (int i = 1; i <= N * 25; i++)
        assert_int_equal(seen[i], 1);
    mf_strlist_free(tasks);
    assert_int_equal(mf_run_finish(r, MF_RUN_SUCCEEDED), MF_OK);
    mf_run_free(r);
}

/* Commits one small task after another. */
static void commit_forever(mf_engine *e, mf_run *r)
{
    for (int i = 0;; i++) {
        mf_task *t = NULL;
        char v[32];
        snprintf(v, sizeof v, "%d", i);
        if (mf_task_create(&t, r, "step", NULL) ||
            mf_task_put(t, "i", "json", v, strlen(v), 0) ||
            mf_task_commit(t, MF_TASK_SUCCEEDED))
            return;
        mf_task_free(t);
    }
}

/* Kill a writer at random points of a stream of small task commits (each
 * a manifest write plus an index transaction): the index always opens,
 * every task it lists is readable, at most the one commit in flight is
 * missing from it, and a rebuild recovers exactly what the datastore has. */
static void killed_committer_keeps_index_consistent(void **state)
{
    struct fx *f = *state;
    for (int round = 0; round < 4; round++) {
        char id[64];
        pid_t pid = spawn_writer(f->root, "CommitFlow", commit_forever, id);
        usleep(20000 + 37000 * round);
        kill_writer(pid);

        mf_engine *e = open_engine(f->root);
        mf_run *r = NULL;
        assert_int_equal(mf_run_open(&r, e, "CommitFlow", id), MF_OK);
        assert_int_equal(mf_run_status_get(r), MF_RUN_CRASHED);
        mf_strlist *tasks = NULL;
        assert_int_equal(mf_run_tasks(r, "step", &tasks), MF_OK);
        size_t indexed = mf_strlist_count(tasks);
        for (size_t i = 0; i < indexed; i++) {
            char ps[256];
            snprintf(ps, sizeof ps, "CommitFlow/%s/step/%s", id, mf_strlist_get(tasks, i));
            mf_task *t = NULL;
            assert_int_equal(mf_task_open(&t, e, ps), MF_OK);
            mf_artifact *a = NULL;
            mf_buf b = MF_BUF_INIT;
            assert_int_equal(mf_task_artifact(&a, t, "i"), MF_OK);
            assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
            assert_int_equal(atoi(b.ptr) + 1, atoi(mf_task_id(t)));
            mf_buf_dispose(&b);
            mf_artifact_free(a);
            mf_task_free(t);
        }
        mf_strlist_free(tasks);
        /* Manifests on disk: the indexed ones and at most one more. */
        char cmd[PATH_MAX + 256];
        snprintf(cmd, sizeof cmd, "find '%s/CommitFlow/%s/step' -name '*.manifest' | wc -l",
                 f->root, id);
        FILE *p = popen(cmd, "r");
        int on_disk = -1;
        assert_int_equal(fscanf(p, "%d", &on_disk), 1);
        pclose(p);
        assert_true(on_disk >= (int)indexed && on_disk <= (int)indexed + 1);
        if (getenv("MF_TEST_VERBOSE"))
            print_message("round %d: %zu indexed, %d on disk\n", round, indexed, on_disk);
        assert_int_equal(mf_index_rebuild(e), MF_OK);
        assert_int_equal(mf_run_tasks(r, "step", &tasks), MF_OK);
        assert_int_equal(mf_strlist_count(tasks), (size_t)on_disk);
        mf_strlist_free(tasks);
        mf_run_free(r);
        mf_engine_free(e);
    }
}

/* A blob whose size disagrees with the manifest is corrupt for every kind
 * of read, ranges included; a failed read leaves the buffer empty. */
static void size_mismatch_is_corrupt(void **state)
{
    struct fx *f = *state;
    unsigned char a5[5000], b3[3000];
    mf_test_fill_random(a5, sizeof a5, 51);
    mf_test_fill_random(b3, sizeof b3, 52);
    mf_run *r = new_run(f->e, "SizeFlow");
    mf_task *t = NULL;
    assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
    put_ok(t, "a", "raw", a5, sizeof a5, 0);
    put_ok(t, "b", "raw", b3, sizeof b3, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    char ha[65], hb[65], pa[PATH_MAX + 128], pb[PATH_MAX + 128];
    sha_hex(a5, sizeof a5, ha);
    sha_hex(b3, sizeof b3, hb);
    snprintf(pa, sizeof pa, "%s/data/%.2s/%s", f->root, ha, ha);
    snprintf(pb, sizeof pb, "%s/data/%.2s/%s", f->root, hb, hb);
    size_t n = 0;
    void *bytes = mf_test_read_file(pb, &n);
    assert_non_null(bytes);
    assert_int_equal(mf_test_write_file(pa, bytes, n), 0); /* a valid blob, the wrong one */
    free(bytes);
    mf_task_free(t);
    char ps[128];
    snprintf(ps, sizeof ps, "SizeFlow/%s/start/1", mf_run_id(r));
    assert_int_equal(mf_task_open(&t, f->e, ps), MF_OK);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_task_artifact(&a, t, "b"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK); /* b holds 3000 bytes now */
    assert_int_equal(b.size, 3000);
    mf_artifact_free(a);
    assert_int_equal(mf_task_artifact(&a, t, "a"), MF_OK);
    assert_int_equal(mf_artifact_read_range(a, 0, 0, 10, &b), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "the manifest says 5000"));
    assert_int_equal(b.size, 0);
    assert_int_equal(mf_artifact_read_range(a, 0, 4000, 10, &b), MF_ECORRUPT);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_ECORRUPT);
    const void *p;
    uint64_t len;
    assert_int_equal(mf_artifact_map(a, 0, &p, &len), MF_ECORRUPT);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    mf_task_free(t);

    const char *rm[] = {NULL};
    assert_int_equal(mf_run_tags_update(r, NULL, 0, rm, 1), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "is NULL"));
    mf_run_free(r);
}

static void concurrent_writers(void **state)
{
    struct fx *f = *state;
    enum { WRITERS = 2, TASKS = 40 };
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            mf_engine *e = open_engine(f->root);
            mf_run *r = NULL;
            if (mf_run_create(&r, e, "ConcFlow", NULL))
                _exit(20);
            for (int i = 0; i < TASKS; i++) {
                mf_task *t = NULL;
                char v[64];
                unsigned char blob[5000];
                mf_test_fill_random(blob, sizeof blob, (uint64_t)i); /* shared across writers */
                snprintf(v, sizeof v, "writer %d task %d", w, i);
                if (mf_task_create(&t, r, "work", NULL) ||
                    mf_task_put(t, "v", "raw", v, strlen(v), 0) ||
                    mf_task_put(t, "blob", "raw", blob, sizeof blob, 0) ||
                    mf_task_commit(t, MF_TASK_SUCCEEDED))
                    _exit(21);
                mf_task_free(t);
            }
            if (mf_run_finish(r, MF_RUN_SUCCEEDED))
                _exit(22);
            mf_run_free(r);
            mf_engine_free(e);
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int st;
        waitpid(pids[w], &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    mf_strlist *runs = NULL;
    assert_int_equal(mf_run_list(&runs, f->e, "ConcFlow", NULL, 0, MF_LIST_SUCCESSFUL), MF_OK);
    assert_int_equal(mf_strlist_count(runs), WRITERS);
    for (size_t k = 0; k < WRITERS; k++) {
        mf_run *r = NULL;
        assert_int_equal(mf_run_open(&r, f->e, "ConcFlow", mf_strlist_get(runs, k)), MF_OK);
        mf_strlist *tasks = NULL;
        assert_int_equal(mf_run_tasks(r, "work", &tasks), MF_OK);
        assert_int_equal(mf_strlist_count(tasks), TASKS);
        for (size_t i = 0; i < TASKS; i++) {
            char ps[256];
            snprintf(ps, sizeof ps, "ConcFlow/%s/work/%s", mf_run_id(r), mf_strlist_get(tasks, i));
            mf_task *t = NULL;
            assert_int_equal(mf_task_open(&t, f->e, ps), MF_OK);
            mf_artifact *a = NULL;
            mf_buf b = MF_BUF_INIT;
            assert_int_equal(mf_task_artifact(&a, t, "blob"), MF_OK);
            assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
            assert_int_equal(b.size, 5000);
            mf_buf_dispose(&b);
            mf_artifact_free(a);
            mf_task_free(t);
        }
        mf_strlist_free(tasks);
        mf_run_free(r);
    }
    mf_strlist_free(runs);
}

static void index_rebuild_and_gc(void **state)
{
    struct fx *f = *state;
    size_t n = 300000;
    unsigned char *d = malloc(n);
    mf_test_fill_random(d, n, 42);
    mf_run *r = new_run(f->e, "RebuildFlow");
    char id[64];
    snprintf(id, sizeof id, "%s", mf_run_id(r));
    for (int i = 0; i < 3; i++) {
        mf_task *t = NULL;
        assert_int_equal(mf_task_create(&t, r, i == 0 ? "start" : "end", NULL), MF_OK);
        put_ok(t, "d", "raw", d, n, 0);
        assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
        mf_task_free(t);
    }
    assert_int_equal(mf_run_finish(r, MF_RUN_SUCCEEDED), MF_OK);
    mf_run_free(r);
    /* An uncommitted task's blob is an orphan. */
    r = new_run(f->e, "RebuildFlow");
    mf_task *t = NULL;
    assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
    unsigned char *orphan = malloc(n);
    mf_test_fill_random(orphan, n, 43);
    put_ok(t, "o", "raw", orphan, n, 0);
    mf_task_free(t);
    assert_int_equal(mf_run_finish(r, MF_RUN_FAILED), MF_OK);
    mf_run_free(r);

    /* Throw the index away and rebuild it from the datastore. */
    mf_engine_free(f->e);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/.index'", f->root);
    assert_int_equal(system(cmd), 0);
    f->e = open_engine(f->root);
    mf_strlist *l = NULL;
    assert_int_equal(mf_run_list(&l, f->e, "RebuildFlow", NULL, 0, 0), MF_OK);
    assert_int_equal(mf_strlist_count(l), 0);
    mf_strlist_free(l);
    assert_int_equal(mf_index_rebuild(f->e), MF_OK);
    assert_int_equal(mf_run_list(&l, f->e, "RebuildFlow", NULL, 0, MF_LIST_SUCCESSFUL), MF_OK);
    assert_int_equal(mf_strlist_count(l), 1);
    assert_string_equal(mf_strlist_get(l, 0), id);
    mf_strlist_free(l);
    assert_int_equal(mf_run_open(&r, f->e, "RebuildFlow", id), MF_OK);
    assert_int_equal(mf_run_status_get(r), MF_RUN_SUCCEEDED);
    assert_int_equal(mf_run_steps(r, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 2);
    assert_string_equal(mf_strlist_get(l, 0), "start");
    assert_string_equal(mf_strlist_get(l, 1), "end");
    mf_strlist_free(l);
    assert_int_equal(mf_run_tasks(r, "end", &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 2);
    assert_string_equal(mf_strlist_get(l, 0), "2");
    assert_string_equal(mf_strlist_get(l, 1), "3");
    mf_strlist_free(l);
    /* New task ids continue after the rebuilt ones. */
    assert_int_equal(mf_task_create(&t, r, "end", NULL), MF_OK);
    assert_string_equal(mf_task_id(t), "4");
    mf_task_free(t);
    mf_run_free(r);

    /* GC: the orphan goes (grace 0), the live blob stays readable. */
    mf_gc_options go = MF_GC_OPTIONS_INIT;
    mf_gc_stats gs;
    memset(&gs, 0, sizeof gs);
    gs.version = MF_GC_STATS_VERSION;
    go.grace_seconds = 0;
    go.flags = MF_GC_DRY_RUN;
    assert_int_equal(mf_gc(f->e, &go, &gs), MF_OK);
    assert_int_equal(gs.swept, 1);
    assert_int_equal(gs.live, 1);
    go.flags = 0;
    assert_int_equal(mf_gc(f->e, &go, &gs), MF_OK);
    assert_int_equal(gs.swept, 1);
    assert_int_equal(gs.manifests, 3);
    char ps[256];
    snprintf(ps, sizeof ps, "RebuildFlow/%s/start/1", id);
    assert_int_equal(mf_task_open(&t, f->e, ps), MF_OK);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_task_artifact(&a, t, "d"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_memory_equal(b.ptr, d, n);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    mf_task_free(t);
    mf_strlist *bad = NULL;
    assert_int_equal(mf_store_verify(f->e, &bad), MF_OK);
    assert_int_equal(mf_strlist_count(bad), 0);
    mf_strlist_free(bad);
    free(d);
    free(orphan);
}

/* A read-only engine reads what a writer made and refuses to write. */
static void readonly_engine(void **state)
{
    struct fx *f = *state;
    mf_run *r = new_run(f->e, "RoFlow");
    mf_task *t = NULL;
    assert_int_equal(mf_task_create(&t, r, "start", NULL), MF_OK);
    put_ok(t, "x", "json", "42", 2, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    mf_task_free(t);
    char id[64];
    snprintf(id, sizeof id, "%s", mf_run_id(r));
    assert_int_equal(mf_run_finish(r, MF_RUN_SUCCEEDED), MF_OK);
    mf_run_free(r);

    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.root = f->root;
    o.flags = MF_ENGINE_READONLY;
    mf_engine *ro = NULL;
    assert_int_equal(mf_engine_open(&ro, &o), MF_OK);
    assert_int_equal(mf_run_open(&r, ro, "RoFlow", "latest_successful"), MF_OK);
    assert_string_equal(mf_run_id(r), id);
    assert_int_equal(mf_run_status_get(r), MF_RUN_SUCCEEDED);
    assert_int_equal(mf_task_create(&t, r, "end", NULL), MF_ESTATE);
    assert_non_null(strstr(mf_error_last(), "read-only"));
    mf_run_free(r);
    assert_int_equal(mf_run_create(&r, ro, "RoFlow", NULL), MF_ESTATE);
    assert_int_equal(mf_index_rebuild(ro), MF_ESTATE);
    assert_int_equal(mf_gc(ro, NULL, NULL), MF_ESTATE);
    char ps[128];
    snprintf(ps, sizeof ps, "RoFlow/%s/start/1", id);
    assert_int_equal(mf_task_open(&t, ro, ps), MF_OK);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_task_artifact(&a, t, "x"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_int_equal(b.size, 2);
    assert_memory_equal(b.ptr, "42", 2);
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    mf_task_free(t);
    mf_engine_free(ro);

    /* Read-only never creates: a missing root is an error naming it. */
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/nowhere", f->dir);
    o.root = missing;
    assert_int_equal(mf_engine_open(&ro, &o), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "nowhere"));
    struct stat st;
    assert_int_equal(stat(missing, &st), -1);
}

static void default_root_discovery(void **state)
{
    struct fx *f = *state;
    char cwd[PATH_MAX], sub[PATH_MAX + 16], expect[PATH_MAX + 16];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(sub, sizeof sub, "%s/a/b", f->dir);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
    assert_int_equal(system(cmd), 0);
    unsetenv("METAFLOW_DATASTORE_SYSROOT_LOCAL");
    assert_int_equal(chdir(sub), 0);
    mf_engine *e = NULL;
    /* Walks up to the existing <dir>/.metaflow. */
    assert_int_equal(mf_engine_open(&e, NULL), MF_OK);
    char real[PATH_MAX];
    assert_non_null(realpath(f->root, real));
    assert_string_equal(mf_engine_root(e), real);
    mf_engine_free(e);
    /* The environment variable wins: its .metaflow, as Metaflow. */
    snprintf(expect, sizeof expect, "%s/elsewhere", f->dir);
    setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", expect, 1);
    assert_int_equal(mf_engine_open(&e, NULL), MF_OK);
    snprintf(expect, sizeof expect, "%s/elsewhere/.metaflow", f->dir);
    assert_non_null(realpath(expect, real));
    assert_string_equal(mf_engine_root(e), real);
    mf_engine_free(e);
    /* The exact root the runtime hands its tasks wins over both. */
    snprintf(expect, sizeof expect, "%s/exact", f->dir);
    setenv("MF_DATASTORE_ROOT", expect, 1);
    assert_int_equal(mf_engine_open(&e, NULL), MF_OK);
    assert_non_null(realpath(expect, real));
    assert_string_equal(mf_engine_root(e), real);
    mf_engine_free(e);
    unsetenv("MF_DATASTORE_ROOT");
    unsetenv("METAFLOW_DATASTORE_SYSROOT_LOCAL");
    assert_int_equal(chdir(cwd), 0);

    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.datastore = "nosuch";
    o.root = f->dir;
    assert_int_equal(mf_engine_open(&e, &o), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "nosuch"));
    o.datastore = NULL;
    o.version = 9;
    assert_int_equal(mf_engine_open(&e, &o), MF_EVERSION);
    assert_null(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_and_errors),
        cmocka_unit_test_setup_teardown(run_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(artifacts_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(dedupe_across_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_blob_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(crashed_run_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(full_disk_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_writer_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_committer_keeps_index_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(size_mismatch_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_shared_by_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(index_rebuild_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(readonly_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(default_root_discovery, setup, teardown),
    };
    return cmocka_run_group_tests_name("api-engine", tests, NULL, NULL);
}
