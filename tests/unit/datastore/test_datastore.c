/*
 * Datastore vtable contract tests, run once against the in-memory test
 * backend and once against fs, plus the registry and fs-only behaviour.
 * Process-level tests (full disk, concurrent writers) are in
 * test_datastore_procs.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "datastore/datastore.h"
#include "memstore.h"
#include "testutil.h"

/* ---- fixtures: one factory per backend */

typedef struct fixture {
    mf_datastore *ds;
    char *dir;  /* fs only: the root */
} fixture;

static int setup_mem(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(mf_test_memstore_new(&f->ds), MF_OK);
    *state = f;
    return 0;
}

static int setup_fs(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = mf_test_tmpdir("ds");
    assert_non_null(f->dir);
    assert_int_equal(mf__fs_open(&f->ds, f->dir), MF_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mf_datastore_free(f->ds);
    if (f->dir) {
        mf_test_rmrf(f->dir);
        free(f->dir);
    }
    free(f);
    return 0;
}

/* Set an object's mtime behind the backend's back (to test refreshes). */
static void age_object(fixture *f, const char *key, int64_t t)
{
    if (!f->dir) {
        assert_int_equal(mf_test_memstore_set_mtime(f->ds, key, t), MF_OK);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", f->dir, key);
    struct timespec ts[2] = { { (time_t)t, 0 }, { (time_t)t, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* ---- helpers */

static int put1(mf_datastore *ds, const char *key, const void *data, size_t len,
                uint32_t flags)
{
    mf_ds_iovec v = { data, len };
    return ds->put(ds, key, &v, 1, flags);
}

static int puts_(mf_datastore *ds, const char *key, const char *s)
{
    return put1(ds, key, s, strlen(s), 0);
}

static void assert_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
                       const void *want, size_t want_len)
{
    mf_buf b = MF_BUF_INIT;
    int rc = ds->get(ds, key, off, len, &b);
    if (rc != MF_OK)
        print_error("get '%s': %s\n", key, mf_error_last());
    assert_int_equal(rc, MF_OK);
    assert_int_equal(b.size, want_len);
    if (want_len)
        assert_memory_equal(b.ptr, want, want_len);
    if (b.ptr)
        assert_int_equal(b.ptr[b.size], '\0');
    mf_buf_dispose(&b);
}

static void assert_error_mentions(const char *needle)
{
    const char *msg = mf_error_last();
    if (!strstr(msg, needle))
        fail_msg("error message '%s' does not mention '%s'", msg, needle);
}

/* ---- contract tests */

static void test_roundtrip(void **state)
{
    fixture *f = *state;
    size_t n = 100000;
    char *data = malloc(n);
    mf_test_fill_random(data, n, 1);
    assert_int_equal(put1(f->ds, "a/b/c", data, n, 0), MF_OK);
    assert_get(f->ds, "a/b/c", 0, MF_DS_TO_END, data, n);
    /* A top-level key and keys using every allowed character. */
    assert_int_equal(puts_(f->ds, "top", "x"), MF_OK);
    assert_get(f->ds, "top", 0, MF_DS_TO_END, "x", 1);
    assert_int_equal(puts_(f->ds, "A-Z_a.z=0+9/x..y", "chars"), MF_OK);
    assert_get(f->ds, "A-Z_a.z=0+9/x..y", 0, MF_DS_TO_END, "chars", 5);
    free(data);
}

static void test_empty_object(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->ds->put(f->ds, "e/none", NULL, 0, 0), MF_OK);
    mf_ds_iovec z = { NULL, 0 };
    assert_int_equal(f->ds->put(f->ds, "e/zero", &z, 1, 0), MF_OK);
    assert_get(f->ds, "e/none", 0, MF_DS_TO_END, "", 0);
    assert_get(f->ds, "e/zero", 0, MF_DS_TO_END, "", 0);
    uint64_t size = 99;
    assert_int_equal(f->ds->exists(f->ds, "e/none", &size), MF_OK);
    assert_int_equal(size, 0);
    /* Offset 0 == size of an empty object: empty, not a range error. */
    assert_get(f->ds, "e/zero", 0, 10, "", 0);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(f->ds->get(f->ds, "e/zero", 1, 1, &b), MF_ERANGE);
    mf_buf_dispose(&b);
}

static void test_multi_iovec(void **state)
{
    fixture *f = *state;
    char big[70000];
    mf_test_fill_random(big, sizeof big, 2);
    mf_ds_iovec v[] = {
        { "head:", 5 }, { NULL, 0 }, { big, sizeof big }, { "", 0 }, { ":tail", 5 },
    };
    assert_int_equal(f->ds->put(f->ds, "m/obj", v, 5, 0), MF_OK);
    size_t n = 5 + sizeof big + 5;
    char *want = malloc(n);
    memcpy(want, "head:", 5);
    memcpy(want + 5, big, sizeof big);
    memcpy(want + 5 + sizeof big, ":tail", 5);
    assert_get(f->ds, "m/obj", 0, MF_DS_TO_END, want, n);
    free(want);
}

static void test_ranges(void **state)
{
    fixture *f = *state;
    char data[1000];
    mf_test_fill_random(data, sizeof data, 3);
    assert_int_equal(put1(f->ds, "r", data, sizeof data, 0), MF_OK);
    assert_get(f->ds, "r", 100, 200, data + 100, 200);       /* middle */
    assert_get(f->ds, "r", 900, 500, data + 900, 100);       /* clamped */
    assert_get(f->ds, "r", 5, MF_DS_TO_END, data + 5, 995);  /* to end */
    assert_get(f->ds, "r", 999, 1, data + 999, 1);           /* last byte */
    assert_get(f->ds, "r", 1000, 10, "", 0);                  /* off == size */
    assert_get(f->ds, "r", 0, 0, "", 0);                      /* zero length */
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(f->ds->get(f->ds, "r", 1001, 1, &b), MF_ERANGE);
    assert_int_equal(mf_error_last_code(), MF_ERANGE);
    assert_error_mentions("'r'");
    assert_int_equal(f->ds->get(f->ds, "r", UINT64_MAX, MF_DS_TO_END, &b), MF_ERANGE);
    assert_int_equal(f->ds->get(f->ds, "missing", 0, 1, &b), MF_ENOTFOUND);
    assert_error_mentions("missing");
    mf_buf_dispose(&b);
}

static void test_get_replaces_buffer(void **state)
{
    fixture *f = *state;
    assert_int_equal(puts_(f->ds, "g", "new"), MF_OK);
    mf_buf b = MF_BUF_INIT;
    char *old = strdup("old contents that are longer");
    b.ptr = old;
    b.size = strlen(old);
    b.reserved = b.size + 1;
    assert_int_equal(f->ds->get(f->ds, "g", 0, MF_DS_TO_END, &b), MF_OK);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.ptr, "new\0", 4);
    /* A borrowed buffer (reserved == 0) is replaced, never written to. */
    static const char borrowed[] = "borrowed";
    mf_buf_dispose(&b);
    b.ptr = (char *)borrowed;
    b.size = 8;
    b.reserved = 0;
    assert_int_equal(f->ds->get(f->ds, "g", 1, 1, &b), MF_OK);
    assert_int_equal(b.size, 1);
    assert_int_equal(b.ptr[0], 'e');
    assert_string_equal(borrowed, "borrowed");
    mf_buf_dispose(&b);
}

static void test_put_if_absent(void **state)
{
    fixture *f = *state;
    assert_int_equal(put1(f->ds, "p/k", "one", 3, MF_DS_PUT_IF_ABSENT), MF_OK);
    assert_int_equal(put1(f->ds, "p/k", "two!", 4, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    assert_int_equal(mf_error_last_code(), MF_EEXISTS);
    assert_error_mentions("p/k");
    assert_get(f->ds, "p/k", 0, MF_DS_TO_END, "one", 3);
    uint64_t size = 0;
    assert_int_equal(f->ds->exists(f->ds, "p/k", &size), MF_OK);
    assert_int_equal(size, 3);
}

static int64_t listed_mtime;
static int mtime_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    (void)size;
    if (strcmp(key, payload) == 0)
        listed_mtime = mtime;
    return 0;
}

static void test_put_if_absent_refreshes_mtime(void **state)
{
    fixture *f = *state;
    assert_int_equal(puts_(f->ds, "old/blob", "b"), MF_OK);
    age_object(f, "old/blob", 1000000);
    listed_mtime = 0;
    assert_int_equal(f->ds->list(f->ds, "old/", mtime_cb, "old/blob"), MF_OK);
    assert_int_equal(listed_mtime, 1000000);

    int64_t before = (int64_t)time(NULL);
    assert_int_equal(put1(f->ds, "old/blob", "x", 1, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    listed_mtime = 0;
    assert_int_equal(f->ds->list(f->ds, "old/", mtime_cb, "old/blob"), MF_OK);
    assert_true(listed_mtime >= before - 1);
    assert_true(listed_mtime <= (int64_t)time(NULL) + 1);
    assert_get(f->ds, "old/blob", 0, MF_DS_TO_END, "b", 1);
}

static void test_overwrite(void **state)
{
    fixture *f = *state;
    assert_int_equal(puts_(f->ds, "o/k", "first"), MF_OK);
    assert_int_equal(puts_(f->ds, "o/k", "second, longer value"), MF_OK);
    assert_get(f->ds, "o/k", 0, MF_DS_TO_END, "second, longer value", 20);
    assert_int_equal(puts_(f->ds, "o/k", "3"), MF_OK);
    assert_get(f->ds, "o/k", 0, MF_DS_TO_END, "3", 1);
    uint64_t size = 0;
    assert_int_equal(f->ds->exists(f->ds, "o/k", &size), MF_OK);
    assert_int_equal(size, 1);
}

static void test_exists(void **state)
{
    fixture *f = *state;
    uint64_t size = 42;
    assert_int_equal(f->ds->exists(f->ds, "x/y", &size), MF_ENOTFOUND);
    assert_int_equal(mf_error_last_code(), MF_ENOTFOUND);
    assert_error_mentions("x/y");
    assert_int_equal(size, 42);
    assert_int_equal(puts_(f->ds, "x/y", "12345"), MF_OK);
    assert_int_equal(f->ds->exists(f->ds, "x/y", &size), MF_OK);
    assert_int_equal(size, 5);
    assert_int_equal(f->ds->exists(f->ds, "x/y", NULL), MF_OK);
    /* A prefix of keys is not itself an object. */
    assert_int_equal(f->ds->exists(f->ds, "x", NULL), MF_ENOTFOUND);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(f->ds->get(f->ds, "x", 0, MF_DS_TO_END, &b), MF_ENOTFOUND);
    /* Looking below an object is a miss, not an error. */
    assert_int_equal(f->ds->exists(f->ds, "x/y/z", NULL), MF_ENOTFOUND);
    assert_int_equal(f->ds->get(f->ds, "x/y/z", 0, MF_DS_TO_END, &b), MF_ENOTFOUND);
    mf_buf_dispose(&b);
}

/* Collects listed keys as "key=size" lines, sorted by the test. */
typedef struct listing {
    char *items[64];
    size_t n;
    int stop_after;
    int64_t min_mtime;
} listing;

static int collect_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    listing *l = payload;
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s=%llu", key, (unsigned long long)size);
    assert_true(l->n < 64);
    l->items[l->n++] = strdup(tmp);
    if (l->min_mtime == 0 || mtime < l->min_mtime)
        l->min_mtime = mtime;
    return l->stop_after && (int)l->n >= l->stop_after;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* List `prefix` and compare with the expected "key=size" set (NULL-ended). */
static void assert_list(mf_datastore *ds, const char *prefix, ...)
{
    listing l = { 0 };
    int rc = ds->list(ds, prefix, collect_cb, &l);
    if (rc != MF_OK)
        print_error("list '%s': %s\n", prefix, mf_error_last());
    assert_int_equal(rc, MF_OK);
    qsort(l.items, l.n, sizeof l.items[0], cmp_str);
    va_list ap;
    va_start(ap, prefix);
    size_t i = 0;
    for (const char *want; (want = va_arg(ap, const char *)); i++) {
        if (i >= l.n)
            fail_msg("list '%s': missing '%s'", prefix, want);
        if (strcmp(l.items[i], want) != 0)
            fail_msg("list '%s': got '%s', want '%s'", prefix, l.items[i], want);
    }
    va_end(ap);
    if (i != l.n)
        fail_msg("list '%s': %zu extra keys, first '%s'", prefix, l.n - i, l.items[i]);
    for (size_t k = 0; k < l.n; k++)
        free(l.items[k]);
}

static void test_list_prefix(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    assert_list(ds, "", NULL);
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(puts_(ds, "data/ab/x1", "1"), MF_OK);
    assert_int_equal(puts_(ds, "data/ab/x2", "22"), MF_OK);
    assert_int_equal(puts_(ds, "data/ac/y", "333"), MF_OK);
    assert_int_equal(puts_(ds, "data/abc", "4444"), MF_OK);
    assert_int_equal(puts_(ds, "database/z", ""), MF_OK);
    assert_int_equal(puts_(ds, "other/deep/er/q", "q"), MF_OK);
    assert_int_equal(puts_(ds, "top", "t"), MF_OK);

    assert_list(ds, "", "data/ab/x1=1", "data/ab/x2=2", "data/abc=4", "data/ac/y=3",
                "database/z=0", "other/deep/er/q=1", "top=1", NULL);
    assert_list(ds, "data/", "data/ab/x1=1", "data/ab/x2=2", "data/abc=4", "data/ac/y=3",
                NULL);
    /* A prefix may end mid-component. */
    assert_list(ds, "data/a", "data/ab/x1=1", "data/ab/x2=2", "data/abc=4", "data/ac/y=3",
                NULL);
    assert_list(ds, "data/ab", "data/ab/x1=1", "data/ab/x2=2", "data/abc=4", NULL);
    assert_list(ds, "data/ab/", "data/ab/x1=1", "data/ab/x2=2", NULL);
    assert_list(ds, "data/ab/x", "data/ab/x1=1", "data/ab/x2=2", NULL);
    assert_list(ds, "data/ab/x2", "data/ab/x2=2", NULL);
    assert_list(ds, "data", "data/ab/x1=1", "data/ab/x2=2", "data/abc=4", "data/ac/y=3",
                "database/z=0", NULL);
    assert_list(ds, "other/", "other/deep/er/q=1", NULL);
    assert_list(ds, "t", "top=1", NULL);
    assert_list(ds, "top", "top=1", NULL);
    assert_list(ds, "top/", NULL);
    assert_list(ds, "nope/", NULL);
    assert_list(ds, "nope/deeper/x", NULL);
    assert_list(ds, "data/zz", NULL);

    /* mtime is the time of the write. */
    listing l = { 0 };
    assert_int_equal(ds->list(ds, "", collect_cb, &l), MF_OK);
    assert_true(l.min_mtime >= before - 1);
    assert_true(l.min_mtime <= (int64_t)time(NULL) + 1);
    for (size_t k = 0; k < l.n; k++)
        free(l.items[k]);

    /* The callback stops the listing. */
    listing s = { .stop_after = 2 };
    assert_int_equal(ds->list(ds, "", collect_cb, &s), MF_EUSER);
    assert_int_equal(s.n, 2);
    for (size_t k = 0; k < s.n; k++)
        free(s.items[k]);
}

static void test_list_invalid_prefix(void **state)
{
    fixture *f = *state;
    static const char *bad[] = { "/", "/data", "..", "../", "../x", "a/../", "a/..",
                                 ".x", "a/.x", "a//", "a b", NULL };
    listing l = { 0 };
    for (const char **p = bad; *p; p++) {
        if (f->ds->list(f->ds, *p, collect_cb, &l) != MF_EINVAL)
            fail_msg("list prefix '%s' was accepted", *p);
    }
    assert_int_equal(l.n, 0);
}

/* Deleting while listing (garbage collection does this). */
static int delete_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    mf_datastore *ds = payload;
    (void)size;
    (void)mtime;
    return ds->del(ds, key) == MF_OK ? 0 : 1;
}

static void test_delete(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    assert_int_equal(puts_(ds, "d/e/k", "v"), MF_OK);
    assert_int_equal(puts_(ds, "d/e/sibling", "s"), MF_OK);
    assert_int_equal(ds->del(ds, "d/e/k"), MF_OK);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(ds->get(ds, "d/e/k", 0, MF_DS_TO_END, &b), MF_ENOTFOUND);
    assert_int_equal(ds->exists(ds, "d/e/k", NULL), MF_ENOTFOUND);
    assert_int_equal(ds->del(ds, "d/e/k"), MF_ENOTFOUND);
    assert_int_equal(mf_error_last_code(), MF_ENOTFOUND);
    assert_error_mentions("d/e/k");
    assert_int_equal(ds->del(ds, "d/e"), MF_ENOTFOUND); /* a prefix is no object */
    assert_int_equal(ds->del(ds, "never"), MF_ENOTFOUND);
    assert_list(ds, "d/", "d/e/sibling=1", NULL);
    assert_get(ds, "d/e/sibling", 0, MF_DS_TO_END, "s", 1);
    /* Deleting the last key under a prefix, then writing there again. */
    assert_int_equal(ds->del(ds, "d/e/sibling"), MF_OK);
    assert_list(ds, "", NULL);
    assert_int_equal(puts_(ds, "d/e/again", "a"), MF_OK);
    assert_get(ds, "d/e/again", 0, MF_DS_TO_END, "a", 1);

    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "gc/%02x/blob%d", i * 13 % 256, i);
        assert_int_equal(puts_(ds, key, "x"), MF_OK);
    }
    assert_int_equal(ds->list(ds, "gc/", delete_cb, ds), MF_OK);
    assert_list(ds, "gc/", NULL);
    mf_buf_dispose(&b);
}

static const char *bad_keys[] = {
    "", "/", "/a", "a/", "a//b", ".", "..", "a/..", "../a", "a/../b", "a/./b",
    ".hidden", "a/.x", "a/b/.tmp.1.2.3", "a b", "a\\b", "a\tb", "caf\xc3\xa9", "a:b",
    "a*", "~user", NULL,
};

static void test_invalid_keys(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    mf_buf b = MF_BUF_INIT;
    for (const char **k = bad_keys; *k; k++) {
        if (mf_datastore_key_check(*k) != MF_EINVAL)
            fail_msg("key '%s' passed mf_datastore_key_check", *k);
        if (**k)
            assert_error_mentions(*k);
        /* Backends check too: they may be called directly. */
        if (put1(ds, *k, "x", 1, 0) != MF_EINVAL)
            fail_msg("put '%s' was accepted", *k);
        if (put1(ds, *k, "x", 1, MF_DS_PUT_IF_ABSENT) != MF_EINVAL)
            fail_msg("put-if-absent '%s' was accepted", *k);
        if (ds->get(ds, *k, 0, MF_DS_TO_END, &b) != MF_EINVAL)
            fail_msg("get '%s' was accepted", *k);
        if (ds->exists(ds, *k, NULL) != MF_EINVAL)
            fail_msg("exists '%s' was accepted", *k);
        if (ds->del(ds, *k) != MF_EINVAL)
            fail_msg("del '%s' was accepted", *k);
    }
    assert_int_equal(mf_datastore_key_check(NULL), MF_EINVAL);
    assert_list(ds, "", NULL); /* nothing was written */

    /* Length: 1024 bytes is fine, 1025 is not. Components of 200 bytes
     * keep within every filesystem's NAME_MAX. */
    char key[1100];
    size_t n = 0;
    while (n < 1024) {
        size_t c = 1024 - n > 200 ? 200 : 1024 - n;
        if (n) {
            key[n++] = '/';
            c--;
        }
        memset(key + n, 'k', c);
        n += c;
    }
    key[n] = '\0';
    assert_int_equal(strlen(key), 1024);
    assert_int_equal(mf_datastore_key_check(key), MF_OK);
    assert_int_equal(put1(ds, key, "long", 4, 0), MF_OK);
    assert_get(ds, key, 0, MF_DS_TO_END, "long", 4);
    assert_int_equal(ds->del(ds, key), MF_OK);
    strcat(key, "k");
    assert_int_equal(mf_datastore_key_check(key), MF_EINVAL);
    assert_int_equal(put1(ds, key, "long", 4, 0), MF_EINVAL);
    assert_int_equal(ds->get(ds, key, 0, MF_DS_TO_END, &b), MF_EINVAL);

    static const char *good[] = { "a", "a/b", "a.", "a..b", "a/b.c/d", "0", "=", "+-_",
                                  "data/ab/abcdef", NULL };
    for (const char **k = good; *k; k++)
        if (mf_datastore_key_check(*k) != MF_OK)
            fail_msg("key '%s' rejected: %s", *k, mf_error_last());
    mf_buf_dispose(&b);
}

/* Many threads on one datastore: the contract says every method may be
 * called concurrently. */
typedef struct thread_arg {
    mf_datastore *ds;
    int id;
    int failures;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    char key[64], val[64];
    mf_buf b = MF_BUF_INIT;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "t/%d/%d", a->id, i % 17);
        snprintf(val, sizeof val, "value %d %d", a->id, i);
        if (put1(a->ds, key, val, strlen(val), 0) != MF_OK)
            a->failures++;
        if (a->ds->get(a->ds, key, 0, MF_DS_TO_END, &b) != MF_OK || strcmp(b.ptr, val) != 0)
            a->failures++;
        /* A shared key everyone put-if-absents. */
        int rc = put1(a->ds, "t/shared", "same", 4, MF_DS_PUT_IF_ABSENT);
        if (rc != MF_OK && rc != MF_EEXISTS)
            a->failures++;
    }
    mf_buf_dispose(&b);
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    pthread_t th[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){ f->ds, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_get(f->ds, "t/shared", 0, MF_DS_TO_END, "same", 4);
    uint64_t size;
    assert_int_equal(f->ds->exists(f->ds, "t/7/16", &size), MF_OK);
}

/* ---- memstore hooks (other suites rely on them) */

static void test_memstore_hooks(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    mf_test_memstore_fail_next(ds, MF_EIO, 2);
    assert_int_equal(puts_(ds, "f/a", "1"), MF_EIO);
    assert_int_equal(puts_(ds, "f/a", "1"), MF_EIO);
    assert_int_equal(ds->exists(ds, "f/a", NULL), MF_ENOTFOUND);
    assert_int_equal(puts_(ds, "f/a", "1"), MF_OK);

    mf_test_memstore_fail_after(ds, MF_TEST_MEMSTORE_GET, 1, MF_EIO, 1);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(ds->get(ds, "f/a", 0, MF_DS_TO_END, &b), MF_OK);
    assert_int_equal(ds->get(ds, "f/a", 0, MF_DS_TO_END, &b), MF_EIO);
    assert_int_equal(ds->get(ds, "f/a", 0, MF_DS_TO_END, &b), MF_OK);

    assert_int_equal(mf_test_memstore_corrupt(ds, "f/a", 0, 0x01), MF_OK);
    assert_int_equal(ds->get(ds, "f/a", 0, MF_DS_TO_END, &b), MF_OK);
    assert_int_equal(b.ptr[0], '1' ^ 1);
    assert_int_equal(mf_test_memstore_corrupt(ds, "f/a", 1, 0x01), MF_ERANGE);
    assert_int_equal(mf_test_memstore_set_mtime(ds, "nope", 5), MF_ENOTFOUND);

    mf_test_memstore_set_now(ds, 12345);
    assert_int_equal(puts_(ds, "f/now", "n"), MF_OK);
    listed_mtime = 0;
    assert_int_equal(ds->list(ds, "f/", mtime_cb, "f/now"), MF_OK);
    assert_int_equal(listed_mtime, 12345);

    mf_test_memstore_stats st;
    mf_test_memstore_stats_get(ds, &st);
    assert_int_equal(st.calls[MF_TEST_MEMSTORE_PUT], 4);
    assert_int_equal(st.put_ok, 2);
    assert_int_equal(st.objects, 2);
    assert_int_equal(st.bytes_stored, 2);
    assert_int_equal(put1(ds, "f/now", "x", 1, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    mf_test_memstore_stats_reset(ds);
    mf_test_memstore_stats_get(ds, &st);
    assert_int_equal(st.calls[MF_TEST_MEMSTORE_PUT], 0);
    assert_int_equal(st.objects, 2);
    assert_null(ds->local_path);
    assert_int_equal(mf__datastore_local_path(ds, "f/a", &b), MF_ENOTSUP);
    mf_buf_dispose(&b);
}

/* ---- registry */

static int factory_frees;

static void counting_free(mf_datastore *ds)
{
    factory_frees++;
    free(ds);
}

static int mem_factory(mf_datastore **out, const char *root, void *payload)
{
    (void)root;
    if (payload)
        (*(int *)payload)++;
    return mf_test_memstore_new(out);
}

static int bad_version_factory(mf_datastore **out, const char *root, void *payload)
{
    (void)root;
    mf_datastore *ds = calloc(1, sizeof *ds);
    *ds = (mf_datastore)MF_DATASTORE_INIT;
    ds->version = (unsigned)(uintptr_t)payload;
    ds->free = counting_free;
    *out = ds;
    return MF_OK;
}

static int failing_factory(mf_datastore **out, const char *root, void *payload)
{
    (void)out;
    (void)payload;
    return mf__error_set(MF_EIO, "cannot reach '%s'", root ? root : "");
}

static void test_registry(void **state)
{
    (void)state;
    int calls = 0;
    mf_datastore *ds = (mf_datastore *)1;
    assert_int_equal(mf_datastore_open(&ds, "mock", "x"), MF_ENOTFOUND);
    assert_null(ds);
    assert_error_mentions("mock");
    assert_int_equal(mf_datastore_register("mock", mem_factory, &calls), MF_OK);
    assert_int_equal(mf_datastore_register("mock", mem_factory, NULL), MF_EEXISTS);
    assert_int_equal(mf_error_last_code(), MF_EEXISTS);
    assert_error_mentions("mock");
    assert_int_equal(mf_datastore_open(&ds, "mock", "x"), MF_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(puts_(ds, "k", "v"), MF_OK);
    mf_datastore_free(ds);
    assert_int_equal(mf_datastore_unregister("mock"), MF_OK);
    assert_int_equal(mf_datastore_unregister("mock"), MF_ENOTFOUND);
    assert_int_equal(mf_datastore_open(&ds, "mock", "x"), MF_ENOTFOUND);
    assert_int_equal(mf_datastore_open(&ds, "nope", "x"), MF_ENOTFOUND);
    /* Re-registering after unregistering works. */
    assert_int_equal(mf_datastore_register("mock", mem_factory, NULL), MF_OK);
    assert_int_equal(mf_datastore_unregister("mock"), MF_OK);

    /* Names and arguments. */
    assert_int_equal(mf_datastore_register("Bad-Name", mem_factory, NULL), MF_EINVAL);
    assert_int_equal(mf_datastore_register("", mem_factory, NULL), MF_EINVAL);
    assert_int_equal(mf_datastore_register(NULL, mem_factory, NULL), MF_EINVAL);
    assert_int_equal(mf_datastore_register("ok_name", NULL, NULL), MF_EINVAL);
    assert_int_equal(mf_datastore_open(NULL, "fs", "x"), MF_EINVAL);
    assert_int_equal(mf_datastore_open(&ds, NULL, "x"), MF_EINVAL);

    /* Built-ins: present, not replaceable, not removable. */
    assert_int_equal(mf_datastore_register("fs", mem_factory, NULL), MF_EEXISTS);
    assert_int_equal(mf_datastore_register("local", mem_factory, NULL), MF_EEXISTS);
    assert_int_equal(mf_datastore_unregister("fs"), MF_EINVAL);
    char *dir = mf_test_tmpdir("reg");
    char root[4096];
    snprintf(root, sizeof root, "%s/new/nested/root", dir);
    assert_int_equal(mf_datastore_open(&ds, "fs", root), MF_OK);
    assert_non_null(ds->local_path);
    assert_int_equal(puts_(ds, "k", "v"), MF_OK);
    mf_datastore_free(ds);
    assert_int_equal(mf_datastore_open(&ds, "local", root), MF_OK);
    assert_get(ds, "k", 0, MF_DS_TO_END, "v", 1);
    mf_datastore_free(ds);
    assert_int_equal(mf_datastore_open(&ds, "fs", ""), MF_EINVAL);
    assert_int_equal(mf_datastore_open(&ds, "fs", NULL), MF_EINVAL);
    mf_test_rmrf(dir);
    free(dir);

    /* A factory's error comes through untouched. */
    assert_int_equal(mf_datastore_register("failing", failing_factory, NULL), MF_OK);
    assert_int_equal(mf_datastore_open(&ds, "failing", "bucket"), MF_EIO);
    assert_error_mentions("bucket");
    assert_null(ds);
    assert_int_equal(mf_datastore_unregister("failing"), MF_OK);

    /* A backend built for an unknown vtable version is refused and freed. */
    assert_int_equal(mf_datastore_register("future", bad_version_factory,
                                           (void *)(uintptr_t)99), MF_OK);
    factory_frees = 0;
    assert_int_equal(mf_datastore_open(&ds, "future", "x"), MF_EVERSION);
    assert_error_mentions("invalid version 99 on mf_datastore");
    assert_null(ds);
    assert_int_equal(factory_frees, 1);
    assert_int_equal(mf_datastore_unregister("future"), MF_OK);
    /* ...and so is one lacking required methods. */
    assert_int_equal(mf_datastore_register("empty", bad_version_factory,
                                           (void *)(uintptr_t)MF_DATASTORE_VERSION), MF_OK);
    assert_int_equal(mf_datastore_open(&ds, "empty", "x"), MF_EINVAL);
    assert_int_equal(factory_frees, 2);
    assert_int_equal(mf_datastore_unregister("empty"), MF_OK);

    mf_datastore_free(NULL);
}

static void test_init(void **state)
{
    (void)state;
    mf_datastore v;
    memset(&v, 0xab, sizeof v);
    assert_int_equal(mf_datastore_init(&v, MF_DATASTORE_VERSION), MF_OK);
    assert_int_equal(v.version, MF_DATASTORE_VERSION);
    assert_null(v.free);
    assert_null(v.put);
    assert_null(v.local_path);
    assert_int_equal(mf_datastore_init(&v, 0), MF_EVERSION);
    assert_string_equal(mf_error_last(), "invalid version 0 on mf_datastore");
    assert_int_equal(mf_datastore_init(&v, 2), MF_EVERSION);
    assert_string_equal(mf_error_last(), "invalid version 2 on mf_datastore");
    assert_int_equal(mf_datastore_init(NULL, 1), MF_EINVAL);
    mf_datastore s = MF_DATASTORE_INIT;
    assert_int_equal(s.version, 1);
    assert_null(s.local_path);
}

/* ---- fs only */


static void test_fs_no_temp_files(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    char *big = malloc(3 << 20);
    mf_test_fill_random(big, 3 << 20, 4);
    assert_int_equal(put1(ds, "data/00/big", big, 3 << 20, 0), MF_OK);
    assert_int_equal(put1(ds, "data/00/big", big, 3 << 20, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    assert_int_equal(put1(ds, "data/00/big2", big, 3 << 20, MF_DS_PUT_IF_ABSENT), MF_OK);
    assert_int_equal(puts_(ds, "small", "s"), MF_OK);
    assert_int_equal(mf_test_count_dotfiles(f->dir), 0);

    /* A put that fails after writing its temp file: the key is a
     * directory on disk, so the rename fails. */
    assert_int_equal(put1(ds, "data/00", big, 1 << 20, 0), MF_EIO);
    assert_error_mentions("data/00");
    assert_int_equal(put1(ds, "data", "x", 1, MF_DS_PUT_IF_ABSENT), MF_EIO);
    /* ...or a file sits where a directory should be. */
    assert_int_equal(puts_(ds, "small/below", "x"), MF_EIO);
    assert_error_mentions("small/below");
    assert_int_equal(mf_test_count_dotfiles(f->dir), 0);
    assert_list(ds, "", "data/00/big2=3145728", "data/00/big=3145728", "small=1", NULL);
    free(big);
}

/* Deferred durability: visible at once, durable after sync; a blob cut
 * short (as by a power loss before the sync) is repaired by the next
 * content-addressed put-if-absent, while other keys keep put-if-absent's
 * "first writer wins". */
static void test_fs_deferred_sync_and_repair(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    const uint32_t blob = MF_DS_PUT_IF_ABSENT | MF_DS_PUT_DEFER_SYNC | MF_DS_PUT_CONTENT;
    assert_int_equal(put1(ds, "data/aa/one", "0123456789", 10, blob), MF_OK);
    assert_get(ds, "data/aa/one", 0, MF_DS_TO_END, "0123456789", 10);
    assert_non_null(ds->sync);
    assert_int_equal(ds->sync(ds), MF_OK);
    assert_int_equal(mf__datastore_sync(ds), MF_OK);
    assert_int_equal(mf_test_count_dotfiles(f->dir), 0);

    char path[4096];
    snprintf(path, sizeof path, "%s/data/aa/one", f->dir);
    assert_int_equal(mf_test_write_file(path, "012", 3), 0); /* cut short */
    assert_int_equal(put1(ds, "data/aa/one", "0123456789", 10, blob), MF_OK);
    assert_get(ds, "data/aa/one", 0, MF_DS_TO_END, "0123456789", 10);
    assert_int_equal(put1(ds, "data/aa/one", "0123456789", 10, blob), MF_EEXISTS);
    /* Zeroed but full-size (space reserved, data lost): also rewritten. */
    assert_int_equal(mf_test_write_file(path, "\0\0\0\0\0\0\0\0\0\0", 10), 0);
    assert_int_equal(put1(ds, "data/aa/one", "0123456789", 10, blob), MF_OK);
    assert_get(ds, "data/aa/one", 0, MF_DS_TO_END, "0123456789", 10);
    assert_int_equal(put1(ds, "data/aa/one", "0123456789", 10, blob), MF_EEXISTS);

    assert_int_equal(put1(ds, "F/1/s/1/0.manifest", "first", 5, MF_DS_PUT_IF_ABSENT), MF_OK);
    assert_int_equal(put1(ds, "F/1/s/1/0.manifest", "second!", 7, MF_DS_PUT_IF_ABSENT),
                     MF_EEXISTS);
    assert_get(ds, "F/1/s/1/0.manifest", 0, MF_DS_TO_END, "first", 5);
    assert_int_equal(mf_test_count_dotfiles(f->dir), 0);
}

static void test_fs_layout_and_local_path(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    assert_int_equal(puts_(ds, "data/ab/abcdef", "payload"), MF_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/data/ab/abcdef", f->dir);
    size_t len = 0;
    char *bytes = mf_test_read_file(path, &len);
    assert_non_null(bytes);
    assert_int_equal(len, 7);
    assert_memory_equal(bytes, "payload", 7);
    free(bytes);

    mf_buf p = MF_BUF_INIT;
    assert_non_null(ds->local_path);
    assert_int_equal(ds->local_path(ds, "data/ab/abcdef", &p), MF_OK);
    char *real = realpath(path, NULL);
    assert_string_equal(p.ptr, real);
    free(real);
    mf_buf q = MF_BUF_INIT;
    assert_int_equal(mf__datastore_local_path(ds, "data/ab/abcdef", &q), MF_OK);
    assert_string_equal(q.ptr, p.ptr);
    mf_buf_dispose(&q);
    assert_int_equal(ds->local_path(ds, "data/ab/none", &p), MF_ENOTFOUND);
    assert_int_equal(ds->local_path(ds, "data/ab", &p), MF_ENOTFOUND);
    assert_int_equal(ds->local_path(ds, "../etc/passwd", &p), MF_EINVAL);
    mf_buf_dispose(&p);

    char *rroot = realpath(f->dir, NULL);
    assert_string_equal(mf__fs_root(ds), rroot);
    free(rroot);
    mf_datastore *mem;
    assert_int_equal(mf_test_memstore_new(&mem), MF_OK);
    assert_null(mf__fs_root(mem));
    mf_datastore_free(mem);
}

static void test_fs_list_skips_foreign_files(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    assert_int_equal(puts_(ds, "data/ab/k", "k"), MF_OK);
    char path[4096];
    static const char *foreign[] = { ".hidden", "bad name", "data/.tmp.1.2.3",
                                     "data/ab/.tmp.9.9.9", "data/ab/sp ace", NULL };
    for (const char **p = foreign; *p; p++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, *p);
        assert_int_equal(mf_test_write_file(path, "x", 1), 0);
    }
    snprintf(path, sizeof path, "%s/.index", f->dir);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/.index/data.mdb", f->dir);
    assert_int_equal(mf_test_write_file(path, "x", 1), 0);
    snprintf(path, sizeof path, "%s/data/link", f->dir);
    assert_int_equal(symlink("ab/k", path), 0);
    assert_list(ds, "", "data/ab/k=1", NULL);
    assert_list(ds, "data/", "data/ab/k=1", NULL);

    /* Temp-file cleanup: only old ones go. */
    uint64_t removed = 99;
    assert_int_equal(mf__fs_clean_temps(ds, (int64_t)time(NULL) - 3600, &removed), MF_OK);
    assert_int_equal(removed, 0);
    snprintf(path, sizeof path, "%s/data/.tmp.1.2.3", f->dir);
    struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    assert_int_equal(mf__fs_clean_temps(ds, (int64_t)time(NULL) - 3600, &removed), MF_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/data/ab/.tmp.9.9.9", f->dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/.hidden", f->dir);
    assert_int_equal(access(path, F_OK), 0); /* not a temp file: untouched */
}

static void test_fs_delete_prunes_dirs(void **state)
{
    fixture *f = *state;
    mf_datastore *ds = f->ds;
    assert_int_equal(puts_(ds, "p/q/r/s", "1"), MF_OK);
    assert_int_equal(puts_(ds, "p/keep", "2"), MF_OK);
    assert_int_equal(ds->del(ds, "p/q/r/s"), MF_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/p/q", f->dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/p", f->dir);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(ds->del(ds, "p/keep"), MF_OK);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(f->dir, F_OK), 0); /* never the root */
}

static void test_fs_reopen_and_roots(void **state)
{
    fixture *f = *state;
    assert_int_equal(puts_(f->ds, "persist/k", "kept"), MF_OK);
    mf_datastore_free(f->ds);
    f->ds = NULL;
    char root[4096];
    snprintf(root, sizeof root, "file://%s", f->dir);
    assert_int_equal(mf__fs_open(&f->ds, root), MF_OK);
    assert_get(f->ds, "persist/k", 0, MF_DS_TO_END, "kept", 4);

    /* A root that cannot be a directory. */
    char file[4096];
    snprintf(file, sizeof file, "%s/persist/k/sub", f->dir);
    mf_datastore *ds = (mf_datastore *)1;
    assert_int_equal(mf__fs_open(&ds, file), MF_EIO);
    assert_null(ds);
    assert_error_mentions(file);
}

int main(void)
{
#define CONTRACT(setup)                                            \
    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),           \
    cmocka_unit_test_setup_teardown(test_empty_object, setup, teardown),        \
    cmocka_unit_test_setup_teardown(test_multi_iovec, setup, teardown),         \
    cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),              \
    cmocka_unit_test_setup_teardown(test_get_replaces_buffer, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_put_if_absent, setup, teardown),       \
    cmocka_unit_test_setup_teardown(test_put_if_absent_refreshes_mtime, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_overwrite, setup, teardown),           \
    cmocka_unit_test_setup_teardown(test_exists, setup, teardown),              \
    cmocka_unit_test_setup_teardown(test_list_prefix, setup, teardown),         \
    cmocka_unit_test_setup_teardown(test_list_invalid_prefix, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),              \
    cmocka_unit_test_setup_teardown(test_invalid_keys, setup, teardown),        \
    cmocka_unit_test_setup_teardown(test_threads, setup, teardown)

    const struct CMUnitTest memstore_tests[] = {
        CONTRACT(setup_mem),
        cmocka_unit_test_setup_teardown(test_memstore_hooks, setup_mem, teardown),
    };
    const struct CMUnitTest fs_tests[] = {
        CONTRACT(setup_fs),
        cmocka_unit_test_setup_teardown(test_fs_no_temp_files, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_layout_and_local_path, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_deferred_sync_and_repair, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_list_skips_foreign_files, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_delete_prunes_dirs, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_reopen_and_roots, setup_fs, teardown),
    };
    const struct CMUnitTest registry_tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_init),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("datastore contract: memstore", memstore_tests,
                                          NULL, NULL);
    failed += cmocka_run_group_tests_name("datastore contract: fs", fs_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("datastore registry", registry_tests, NULL, NULL);
    return failed ? 1 : 0;
}
