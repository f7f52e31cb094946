/*
 * fs datastore across processes: a full disk (RLIMIT_FSIZE) in a child,
 * concurrent writers of overlapping keys, and a reader racing a writer.
 * Every object written here describes itself (header: magic, writer,
 * iteration, length, seed; payload: pseudo-random bytes from the seed), so
 * any torn or partial object is detected by content alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "datastore/datastore.h"
#include "testutil.h"

#define MAGIC 0x5453455453444d46ull /* "FMDSTEST" */

typedef struct obj_header {
    uint64_t magic;
    uint32_t writer;
    uint32_t iter;
    uint64_t len;   /* whole object, header included */
    uint64_t seed;
} obj_header;

/* Build a self-describing object of `len` bytes (len >= header). */
static char *make_obj(uint32_t writer, uint32_t iter, size_t len, size_t *out_len)
{
    if (len < sizeof(obj_header))
        len = sizeof(obj_header);
    char *p = malloc(len);
    obj_header h = { MAGIC, writer, iter, len, ((uint64_t)writer << 32) | iter };
    memcpy(p, &h, sizeof h);
    mf_test_fill_random(p + sizeof h, len - sizeof h, h.seed);
    *out_len = len;
    return p;
}

/* 0 when `data` is one complete object; the header comes back in `h`. */
static int check_obj(const char *data, size_t len, obj_header *h)
{
    if (len < sizeof *h)
        return -1;
    memcpy(h, data, sizeof *h);
    if (h->magic != MAGIC || h->len != len)
        return -2;
    char *want = malloc(len - sizeof *h + 1);
    mf_test_fill_random(want, len - sizeof *h, h->seed);
    int rc = memcmp(want, data + sizeof *h, len - sizeof *h) ? -3 : 0;
    free(want);
    return rc;
}


static int wait_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFSIGNALED(status))
        return 200 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* ---- full disk */

/* Child: returns the exit code (0 ok, else which check failed). */
static int fsize_child(const char *root)
{
    /* What the library asks of hosts that set RLIMIT_FSIZE. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 256 << 10, 256 << 10 };
    if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
        return 1;
    mf_datastore *ds;
    if (mf__fs_open(&ds, root) != MF_OK)
        return 2;
    size_t len;
    char *small = make_obj(0, 0, 1000, &len);
    mf_ds_iovec v = { small, len };
    if (ds->put(ds, "ok/small", &v, 1, 0) != MF_OK)
        return 3;
    /* 512 KiB: below the preallocation size, fails in the write loop. */
    char *big = make_obj(0, 1, 512 << 10, &len);
    v = (mf_ds_iovec){ big, len };
    if (ds->put(ds, "full/mid", &v, 1, 0) != MF_EIO)
        return 4;
    if (!strstr(mf_error_last(), "full/mid") || !strstr(mf_error_last(), "too large"))
        return 5; /* strerror(EFBIG): "File too large" */
    if (ds->put(ds, "full/mid2", &v, 1, MF_DS_PUT_IF_ABSENT) != MF_EIO)
        return 6;
    free(big);
    /* 4 MiB: fails when reserving space. */
    big = make_obj(0, 2, 4 << 20, &len);
    v = (mf_ds_iovec){ big, len };
    if (ds->put(ds, "full/big", &v, 1, 0) != MF_EIO)
        return 7;
    /* An overwrite that fails keeps the old object whole. */
    if (ds->put(ds, "ok/small", &v, 1, 0) != MF_EIO)
        return 8;
    if (ds->exists(ds, "full/mid", NULL) != MF_ENOTFOUND ||
        ds->exists(ds, "full/mid2", NULL) != MF_ENOTFOUND ||
        ds->exists(ds, "full/big", NULL) != MF_ENOTFOUND)
        return 9;
    mf_buf b = MF_BUF_INIT;
    obj_header h;
    if (ds->get(ds, "ok/small", 0, MF_DS_TO_END, &b) != MF_OK ||
        check_obj(b.ptr, b.size, &h) != 0 || h.iter != 0)
        return 10;
    mf_buf_dispose(&b);
    free(big);
    free(small);
    mf_datastore_free(ds);
    return 0;
}

static void test_full_disk(void **state)
{
    (void)state;
    char *root = mf_test_tmpdir("dsfull");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fsize_child(root));
    assert_int_equal(wait_child(pid), 0);
    assert_int_equal(mf_test_count_dotfiles(root), 0);
    mf_datastore *ds;
    assert_int_equal(mf__fs_open(&ds, root), MF_OK);
    assert_int_equal(ds->exists(ds, "full/mid", NULL), MF_ENOTFOUND);
    assert_int_equal(ds->exists(ds, "ok/small", NULL), MF_OK);
    mf_datastore_free(ds);
    mf_test_rmrf(root);
    free(root);
}

/* ---- concurrent writers */

#define WRITES 200
#define SHARED_KEYS 50

/* Child `w`: 200 overwrites and put-if-absents of keys shared with the
 * other writer. Records which put-if-absent keys it won in `wins_path`. */
static int writer_child(const char *root, uint32_t w, const char *wins_path)
{
    mf_datastore *ds;
    if (mf__fs_open(&ds, root) != MF_OK)
        return 1;
    char wins[WRITES] = { 0 };
    for (uint32_t i = 0; i < WRITES; i++) {
        char key[64];
        size_t len;
        /* Sizes 1 KiB .. ~2.3 MiB, crossing the preallocation size. */
        char *obj = make_obj(w, i, 1024 + (size_t)((i * 7919u + w * 104729u) % 2400) * 1000,
                             &len);
        mf_ds_iovec v[2] = { { obj, len / 3 }, { obj + len / 3, len - len / 3 } };
        snprintf(key, sizeof key, "data/%02x/shared%d", (unsigned)(i % SHARED_KEYS) % 7,
                 (int)(i % SHARED_KEYS));
        if (ds->put(ds, key, v, 2, 0) != MF_OK)
            return 2;
        snprintf(key, sizeof key, "once/%02x/k%d", (unsigned)i % 5, (int)i);
        int rc = ds->put(ds, key, v, 2, MF_DS_PUT_IF_ABSENT);
        if (rc == MF_OK)
            wins[i] = 1;
        else if (rc != MF_EEXISTS)
            return 3;
        free(obj);
    }
    mf_datastore_free(ds);
    return mf_test_write_file(wins_path, wins, sizeof wins) == 0 ? 0 : 4;
}

typedef struct verify {
    mf_datastore *ds;
    int objects;
    int bad;
} verify;

static int verify_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    verify *v = payload;
    (void)mtime;
    mf_buf b = MF_BUF_INIT;
    obj_header h;
    if (v->ds->get(v->ds, key, 0, MF_DS_TO_END, &b) != MF_OK || b.size != size ||
        check_obj(b.ptr, b.size, &h) != 0) {
        print_error("torn object '%s'\n", key);
        v->bad++;
    }
    v->objects++;
    mf_buf_dispose(&b);
    return 0;
}

static void test_concurrent_writers(void **state)
{
    mf__fs_test_force_link_fallback(state && *state ? 1 : 0);
    char *dir = mf_test_tmpdir("dsconc");
    char root[4096], wins_path[2][4096];
    snprintf(root, sizeof root, "%s/root", dir);
    pid_t pid[2];
    for (uint32_t w = 0; w < 2; w++) {
        snprintf(wins_path[w], sizeof wins_path[w], "%s/wins%u", dir, w);
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0)
            _exit(writer_child(root, w, wins_path[w]));
    }
    for (int w = 0; w < 2; w++)
        assert_int_equal(wait_child(pid[w]), 0);

    mf_datastore *ds;
    assert_int_equal(mf__fs_open(&ds, root), MF_OK);
    verify v = { ds, 0, 0 };
    assert_int_equal(ds->list(ds, "", verify_cb, &v), MF_OK);
    assert_int_equal(v.bad, 0);
    assert_int_equal(v.objects, SHARED_KEYS + WRITES);
    assert_int_equal(mf_test_count_dotfiles(root), 0);

    /* put-if-absent: exactly one winner per key, and its bytes stayed. */
    size_t n0, n1;
    char *w0 = mf_test_read_file(wins_path[0], &n0);
    char *w1 = mf_test_read_file(wins_path[1], &n1);
    assert_non_null(w0);
    assert_non_null(w1);
    assert_int_equal(n0, WRITES);
    assert_int_equal(n1, WRITES);
    int won[2] = { 0, 0 };
    for (int i = 0; i < WRITES; i++) {
        if (w0[i] + w1[i] != 1)
            fail_msg("key once/k%d: %d winners", i, w0[i] + w1[i]);
        char key[64];
        snprintf(key, sizeof key, "once/%02x/k%d", (unsigned)i % 5, i);
        mf_buf b = MF_BUF_INIT;
        obj_header h;
        assert_int_equal(ds->get(ds, key, 0, MF_DS_TO_END, &b), MF_OK);
        assert_int_equal(check_obj(b.ptr, b.size, &h), 0);
        assert_int_equal(h.writer, w0[i] ? 0 : 1);
        assert_int_equal(h.iter, i);
        won[h.writer]++;
        mf_buf_dispose(&b);
    }
    print_message("put-if-absent wins: writer0 %d, writer1 %d\n", won[0], won[1]);
    free(w0);
    free(w1);
    mf_datastore_free(ds);
    mf_test_rmrf(dir);
    free(dir);
    mf__fs_test_force_link_fallback(0);
}

/* The same on filesystems without renameat2(RENAME_NOREPLACE). */
static void test_concurrent_writers_link_fallback(void **state)
{
    static int on = 1;
    (void)state;
    void *p = &on;
    test_concurrent_writers(&p);
}

/* ---- a reader never sees a partial object */

static int rewriter_child(const char *root)
{
    mf_datastore *ds;
    if (mf__fs_open(&ds, root) != MF_OK)
        return 1;
    for (uint32_t i = 1; i <= WRITES; i++) {
        size_t len;
        char *obj = make_obj(1, i, (64 << 10) + (size_t)(i * 7919u % 2000) * 1000, &len);
        mf_ds_iovec v = { obj, len };
        if (ds->put(ds, "hot/obj", &v, 1, 0) != MF_OK)
            return 2;
        free(obj);
    }
    mf_datastore_free(ds);
    return 0;
}

static void test_reader_never_sees_partial(void **state)
{
    (void)state;
    char *root = mf_test_tmpdir("dsread");
    mf_datastore *ds;
    assert_int_equal(mf__fs_open(&ds, root), MF_OK);
    size_t len;
    char *first = make_obj(0, 0, 100000, &len);
    mf_ds_iovec v = { first, len };
    assert_int_equal(ds->put(ds, "hot/obj", &v, 1, 0), MF_OK);
    free(first);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(rewriter_child(root));

    int reads = 0, bad = 0, status = 0;
    uint32_t last = 0, changes = 0;
    mf_buf b = MF_BUF_INIT;
    for (;;) {
        int done = waitpid(pid, &status, WNOHANG) == pid;
        obj_header h;
        int rc = ds->get(ds, "hot/obj", 0, MF_DS_TO_END, &b);
        if (rc != MF_OK || check_obj(b.ptr, b.size, &h) != 0) {
            print_error("read %d: rc %d, %s\n", reads, rc, mf_error_last());
            bad++;
        } else if (h.iter != last) {
            last = h.iter;
            changes++;
        }
        reads++;
        if (done)
            break;
    }
    mf_buf_dispose(&b);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    print_message("%d reads saw %u versions, none partial\n", reads, changes);
    assert_int_equal(bad, 0);
    assert_int_equal(last, WRITES);
    assert_int_equal(mf_test_count_dotfiles(root), 0);
    mf_datastore_free(ds);
    mf_test_rmrf(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_concurrent_writers_link_fallback),
        cmocka_unit_test(test_reader_never_sees_partial),
    };
    return cmocka_run_group_tests_name("datastore fs processes", tests, NULL, NULL);
}
