/*
 * The S3 datastore backend against a real, signature-checking S3 endpoint
 * (moto, behind the fault proxy). Run through tests/e2e/with_s3.py, which
 * sets AWS_* to the endpoint and MF_TEST_PROXY_CONTROL to the proxy's
 * control URL.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "datastore/datastore.h"
#include "datastore/s3/s3.h"
#include "testutil.h"

static char root[256];
static unsigned seq;

/* A fresh prefix per test, so tests never see each other's keys. */
static mf_datastore *open_fresh(void)
{
    snprintf(root, sizeof root, "s3://%s/t%u-%ld", getenv("MF_TEST_S3_BUCKET"), ++seq,
             (long)time(NULL));
    mf_datastore *ds = NULL;
    int rc = mf__s3_open(&ds, root);
    if (rc)
        fail_msg("open %s: %s", root, mf_error_last());
    return ds;
}

/* ---- the proxy's control API */

static void proxy(const char *method, const char *path, const char *json)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", getenv("MF_TEST_PROXY_CONTROL"), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_true(status >= 200 && status < 300);
    fclose(null);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    mf__buf_put(ud, p, size * n);
    return size * n;
}

/* The proxy's counters, as JSON text. */
static void proxy_stats(mf_buf *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s/stats", getenv("MF_TEST_PROXY_CONTROL"));
    CURL *c = curl_easy_init();
    mf__buf_clear(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
}

static void rules(const char *json) { proxy("PUT", "/rules", json); }
static void no_rules(void) { proxy("DELETE", "/rules", NULL); }

static int put1(mf_datastore *ds, const char *key, const void *p, size_t n, uint32_t flags)
{
    mf_ds_iovec v = { p, n };
    return ds->put(ds, key, &v, 1, flags);
}

/* ---- the contract */

static void test_roundtrip(void **state)
{
    (void)state;
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    uint64_t size = 0;
    const char *keys[] = { "a/b/c.txt", "x+y=z/_-.k", "data/ab/0123" };
    for (size_t i = 0; i < 3; i++) {
        char val[64];
        int n = snprintf(val, sizeof val, "value %zu of %s", i, keys[i]);
        assert_int_equal(put1(ds, keys[i], val, (size_t)n, 0), MF_OK);
        assert_int_equal(ds->get(ds, keys[i], 0, MF_DS_TO_END, &b), MF_OK);
        assert_int_equal(b.size, (size_t)n);
        assert_memory_equal(b.ptr, val, (size_t)n);
        assert_int_equal(ds->exists(ds, keys[i], &size), MF_OK);
        assert_int_equal(size, (uint64_t)n);
    }
    /* Ranges: inside, clamped, at the end, past the end. */
    assert_int_equal(ds->get(ds, "a/b/c.txt", 6, 3, &b), MF_OK);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.ptr, "0 o", 3);
    assert_int_equal(ds->get(ds, "a/b/c.txt", 15, 100, &b), MF_OK);
    assert_string_equal(b.ptr, "c.txt");
    assert_int_equal(ds->get(ds, "a/b/c.txt", 20, MF_DS_TO_END, &b), MF_OK);
    assert_int_equal(b.size, 0);
    assert_int_equal(ds->get(ds, "a/b/c.txt", 21, MF_DS_TO_END, &b), MF_ERANGE);
    /* Missing keys. */
    assert_int_equal(ds->get(ds, "nope", 0, MF_DS_TO_END, &b), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "nope"));
    assert_int_equal(ds->exists(ds, "nope", NULL), MF_ENOTFOUND);
    assert_int_equal(ds->del(ds, "nope"), MF_ENOTFOUND);
    /* An empty object. */
    assert_int_equal(put1(ds, "empty", "", 0, 0), MF_OK);
    assert_int_equal(ds->get(ds, "empty", 0, MF_DS_TO_END, &b), MF_OK);
    assert_int_equal(b.size, 0);
    assert_int_equal(ds->exists(ds, "empty", &size), MF_OK);
    assert_int_equal(size, 0);
    /* Invalid keys never reach the network. */
    assert_int_equal(put1(ds, "../x", "v", 1, 0), MF_EINVAL);
    assert_int_equal(ds->del(ds, "a/b/c.txt"), MF_OK);
    assert_int_equal(ds->exists(ds, "a/b/c.txt", NULL), MF_ENOTFOUND);
    mf_buf_dispose(&b);
    mf_datastore_free(ds);
}

static int mtime_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    *(int64_t *)payload = mtime;
    return 0;
}

static int64_t list_mtime(mf_datastore *ds, const char *key)
{
    int64_t m = -1;
    assert_int_equal(ds->list(ds, key, mtime_cb, &m), MF_OK);
    return m;
}

static void test_put_if_absent(void **state)
{
    (void)state;
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put1(ds, "k", "first", 5, MF_DS_PUT_IF_ABSENT), MF_OK);
    assert_int_equal(put1(ds, "k", "second", 6, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "first");
    /* A content blob of the wrong size is damage: replaced. */
    assert_int_equal(put1(ds, "c", "short", 5, 0), MF_OK);
    assert_int_equal(put1(ds, "c", "the whole blob", 14,
                          MF_DS_PUT_IF_ABSENT | MF_DS_PUT_CONTENT), MF_OK);
    assert_int_equal(ds->get(ds, "c", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "the whole blob");
    assert_int_equal(put1(ds, "c", "the whole blob", 14,
                          MF_DS_PUT_IF_ABSENT | MF_DS_PUT_CONTENT), MF_EEXISTS);
    /* An existing object older than MF_S3_REFRESH_AGE gets a new
     * modification time (CopyObject onto itself), so that garbage
     * collection's grace period protects it again; its bytes stay. */
    mf_datastore_free(ds);
    setenv("MF_S3_REFRESH_AGE", "1", 1);
    ds = open_fresh();
    unsetenv("MF_S3_REFRESH_AGE");
    assert_int_equal(put1(ds, "k", "first", 5, 0), MF_OK);
    int64_t m0 = list_mtime(ds, "k");
    sleep(2);
    assert_int_equal(put1(ds, "k", "other", 5, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    int64_t m1 = list_mtime(ds, "k");
    assert_true(m1 >= m0 + 2);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "first");
    /* A plain put replaces. */
    assert_int_equal(put1(ds, "k", "third", 5, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "third");
    mf_buf_dispose(&b);
    mf_datastore_free(ds);
}

/* Content blobs: while new ones come in a row, put-if-absent skips its
 * HEAD (one request, If-None-Match guards the old blob); one that exists
 * brings the HEAD back. */
static void test_content_blobs_skip_head(void **state)
{
    (void)state;
    mf_datastore *ds = open_fresh();
    static uint8_t blob[100000];
    const uint32_t f = MF_DS_PUT_IF_ABSENT | MF_DS_PUT_CONTENT;
    mf__s3_stats a, b;
    char key[32];
    for (int i = 0; i < 8; i++) {
        mf_test_fill_random(blob, sizeof blob, 100 + (uint64_t)i);
        snprintf(key, sizeof key, "data/b%d", i);
        mf__s3_stats_get(ds, &a);
        assert_int_equal(put1(ds, key, blob, sizeof blob, f), MF_OK);
        mf__s3_stats_get(ds, &b);
        assert_int_equal(b.requests - a.requests, 2); /* HEAD, PUT */
    }
    mf_test_fill_random(blob, sizeof blob, 200);
    mf__s3_stats_get(ds, &a);
    assert_int_equal(put1(ds, "data/b8", blob, sizeof blob, f), MF_OK);
    mf__s3_stats_get(ds, &b);
    assert_int_equal(b.requests - a.requests, 1); /* PUT only */
    /* It exists: the PUT gets 412, a HEAD checks it; nothing replaced. */
    mf_test_fill_random(blob, sizeof blob, 100);
    mf__s3_stats_get(ds, &a);
    assert_int_equal(put1(ds, "data/b0", blob, sizeof blob, f), MF_EEXISTS);
    mf__s3_stats_get(ds, &b);
    assert_int_equal(b.requests - a.requests, 2);
    /* And the next one checks first again. */
    mf_test_fill_random(blob, sizeof blob, 300);
    mf__s3_stats_get(ds, &a);
    assert_int_equal(put1(ds, "data/b9", blob, sizeof blob, f), MF_OK);
    mf__s3_stats_get(ds, &b);
    assert_int_equal(b.requests - a.requests, 2);
    mf_buf got = MF_BUF_INIT;
    assert_int_equal(ds->get(ds, "data/b9", 0, MF_DS_TO_END, &got), MF_OK);
    assert_memory_equal(got.ptr, blob, sizeof blob);
    mf_buf_dispose(&got);
    mf_datastore_free(ds);
}

typedef struct seen {
    int n;
    uint64_t bytes;
    int with_slash;
} seen;

static int count_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    seen *s = payload;
    s->n++;
    s->bytes += size;
    assert_true(mtime > 1700000000);
    return 0;
}

static int stop_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    return ++*(int *)payload == 3;
}

static int dir_cb(const char *dir, void *payload)
{
    mf__strlist_push(payload, dir);
    return 0;
}

static void test_list_pages_and_batch_delete(void **state)
{
    (void)state;
    mf_datastore *ds = open_fresh();
    /* 1,010 keys: more than one page of ListObjectsV2. */
    enum { N = 1010 };
    char **keys = calloc(N, sizeof *keys);
    for (int i = 0; i < N; i++) {
        keys[i] = malloc(32);
        snprintf(keys[i], 32, "k%04d/%s", i, i % 2 ? "odd" : "even");
        assert_int_equal(put1(ds, keys[i], "x", 1, 0), MF_OK);
    }
    seen s = {0};
    assert_int_equal(ds->list(ds, "", count_cb, &s), MF_OK);
    assert_int_equal(s.n, N);
    assert_int_equal(s.bytes, N);
    memset(&s, 0, sizeof s);
    assert_int_equal(ds->list(ds, "k100", count_cb, &s), MF_OK);
    assert_int_equal(s.n, 10); /* k1000/ .. k1009/ */
    int stop = 0;
    assert_int_equal(ds->list(ds, "", stop_cb, &stop), MF_EUSER);
    assert_int_equal(stop, 3);
    /* 1,010 "directories": two pages of a delimiter listing. */
    mf_strlist *dirs = mf__strlist_new();
    assert_int_equal(mf__s3_list_dirs(ds, "", dir_cb, dirs), MF_OK);
    mf__strlist_sort(dirs);
    assert_int_equal(mf_strlist_count(dirs), N);
    assert_string_equal(mf_strlist_get(dirs, 0), "k0000/");
    assert_string_equal(mf_strlist_get(dirs, N - 1), "k1009/");
    mf_strlist_free(dirs);
    dirs = mf__strlist_new();
    assert_int_equal(mf__s3_list_dirs(ds, "k0007/", dir_cb, dirs), MF_OK);
    assert_int_equal(mf_strlist_count(dirs), 0); /* only a key there */
    mf_strlist_free(dirs);
    /* Batch delete (two requests: 1,000 then 10), then nothing is left. */
    uint64_t failed = 99;
    mf__s3_stats before, after;
    mf__s3_stats_get(ds, &before);
    assert_int_equal(mf__s3_delete_batch(ds, (const char *const *)keys, N, &failed), MF_OK);
    mf__s3_stats_get(ds, &after);
    assert_int_equal(failed, 0);
    assert_int_equal(after.requests - before.requests, 2);
    memset(&s, 0, sizeof s);
    assert_int_equal(ds->list(ds, "", count_cb, &s), MF_OK);
    assert_int_equal(s.n, 0);
    for (int i = 0; i < N; i++)
        free(keys[i]);
    free(keys);
    mf_datastore_free(ds);
}

/* ---- large objects: multipart up, parallel ranges down */

static void test_multipart(void **state)
{
    (void)state;
    setenv("MF_S3_MULTIPART_THRESHOLD", "5M", 1);
    setenv("MF_S3_PART_SIZE", "5M", 1);
    setenv("MF_S3_MAX_PARALLEL", "3", 1);
    mf_datastore *ds = open_fresh();
    unsetenv("MF_S3_MULTIPART_THRESHOLD");
    unsetenv("MF_S3_PART_SIZE");
    unsetenv("MF_S3_MAX_PARALLEL");
    size_t n = (23u << 20) + 12345;
    uint8_t *data = malloc(n);
    mf_test_fill_random(data, n, 7);
    /* Three pieces whose edges fall inside parts. */
    mf_ds_iovec v[3] = { { data, 1000 }, { data + 1000, 9u << 20 }, { data + 1000 + (9u << 20),
                                                                       n - 1000 - (9u << 20) } };
    mf__s3_stats a, b;
    mf__s3_stats_get(ds, &a);
    assert_int_equal(ds->put(ds, "big/blob", v, 3, MF_DS_PUT_IF_ABSENT), MF_OK);
    mf__s3_stats_get(ds, &b);
    /* HEAD, initiate, 5 parts, complete. */
    assert_int_equal(b.requests - a.requests, 8);
    assert_int_equal(b.bytes_up - a.bytes_up >= n, 1);
    assert_true(b.max_in_flight <= 3);
    uint64_t size = 0;
    assert_int_equal(ds->exists(ds, "big/blob", &size), MF_OK);
    assert_int_equal(size, n);
    mf_buf got = MF_BUF_INIT;
    assert_int_equal(ds->get(ds, "big/blob", 0, MF_DS_TO_END, &got), MF_OK);
    assert_int_equal(got.size, n);
    assert_memory_equal(got.ptr, data, n);
    /* A range across part edges, and one to the end. */
    assert_int_equal(ds->get(ds, "big/blob", (5u << 20) - 7, (6u << 20), &got), MF_OK);
    assert_int_equal(got.size, 6u << 20);
    assert_memory_equal(got.ptr, data + (5u << 20) - 7, 6u << 20);
    assert_int_equal(ds->get(ds, "big/blob", n - 100, MF_DS_TO_END, &got), MF_OK);
    assert_int_equal(got.size, 100);
    assert_memory_equal(got.ptr, data + n - 100, 100);
    assert_int_equal(put1(ds, "big/blob", data, n, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    mf_buf_dispose(&got);
    free(data);
    mf_datastore_free(ds);
}

/* ---- credentials */

static void test_wrong_secret(void **state)
{
    (void)state;
    char *good = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    const char *bad = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBADSECRET1";
    setenv("AWS_SECRET_ACCESS_KEY", bad, 1);
    mf_datastore *ds = open_fresh();
    setenv("AWS_SECRET_ACCESS_KEY", good, 1);
    mf_buf b = MF_BUF_INIT;
    int rc = put1(ds, "k", "v", 1, 0);
    assert_int_equal(rc, MF_EACCESS);
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "PUT 'k'"));
    assert_non_null(strstr(msg, "HTTP 403"));
    assert_non_null(strstr(msg, "request id"));
    assert_null(strstr(msg, bad));
    assert_null(strstr(msg, good));
    assert_null(strstr(msg, getenv("AWS_ACCESS_KEY_ID")));
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_EACCESS);
    mf_datastore_free(ds);
    free(good);
    mf_buf_dispose(&b);
}

/* ---- faults: the proxy fails requests; retries must cover them */

static void test_retry_transient(void **state)
{
    (void)state;
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    mf__s3_stats a, z;
    mf__s3_stats_get(ds, &a);
    rules("[{\"action\":\"status\",\"status\":503,\"count\":2},"
          "{\"action\":\"status\",\"status\":500,\"count\":1},"
          "{\"action\":\"reset\",\"when\":\"before\",\"count\":1}]");
    assert_int_equal(put1(ds, "k1", "hello", 5, 0), MF_OK);
    no_rules();
    mf__s3_stats_get(ds, &z);
    /* Four faults: curl itself re-sends a request whose reused connection
     * was reset before any answer, so three or four are ours. */
    assert_true(z.retries - a.retries >= 3 && z.retries - a.retries <= 4);
    /* A conditional PUT whose answer is lost after S3 stored it: the
     * retry's 412 is recognised as our own write (same ETag). */
    rules("[{\"action\":\"reset\",\"when\":\"mid\",\"method\":\"PUT\",\"count\":1}]");
    assert_int_equal(put1(ds, "cond", "mine", 4, MF_DS_PUT_IF_ABSENT), MF_OK);
    no_rules();
    assert_int_equal(put1(ds, "cond", "other", 5, MF_DS_PUT_IF_ABSENT), MF_EEXISTS);
    /* A response cut mid-body is fetched again. */
    char big[100000];
    mf_test_fill_random(big, sizeof big, 3);
    assert_int_equal(put1(ds, "k2", big, sizeof big, 0), MF_OK);
    rules("[{\"action\":\"reset\",\"when\":\"mid\",\"method\":\"GET\",\"count\":2}]");
    assert_int_equal(ds->get(ds, "k2", 0, MF_DS_TO_END, &b), MF_OK);
    no_rules();
    assert_int_equal(b.size, sizeof big);
    assert_memory_equal(b.ptr, big, sizeof big);
    /* Listing pages are retried too. */
    rules("[{\"action\":\"status\",\"status\":503,\"method\":\"GET\",\"count\":1}]");
    seen s = {0};
    assert_int_equal(ds->list(ds, "", count_cb, &s), MF_OK);
    no_rules();
    assert_int_equal(s.n, 3);
    mf_buf_dispose(&b);
    mf_datastore_free(ds);
}

static void test_stall_then_retry(void **state)
{
    (void)state;
    setenv("MF_S3_STALL_TIMEOUT", "1", 1);
    mf_datastore *ds = open_fresh();
    unsetenv("MF_S3_STALL_TIMEOUT");
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put1(ds, "k", "stalled", 7, 0), MF_OK);
    rules("[{\"action\":\"stall\",\"seconds\":4,\"method\":\"GET\",\"count\":1}]");
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    no_rules();
    assert_string_equal(b.ptr, "stalled");
    mf__s3_stats st;
    mf__s3_stats_get(ds, &st);
    assert_int_equal(st.retries, 1);
    mf_buf_dispose(&b);
    mf_datastore_free(ds);
}

static void test_faults_never_stop(void **state)
{
    (void)state;
    setenv("MF_S3_RETRIES", "3", 1);
    setenv("MF_S3_MULTIPART_THRESHOLD", "5M", 1);
    setenv("MF_S3_PART_SIZE", "5M", 1);
    mf_datastore *ds = open_fresh();
    unsetenv("MF_S3_RETRIES");
    unsetenv("MF_S3_MULTIPART_THRESHOLD");
    unsetenv("MF_S3_PART_SIZE");
    /* Every PUT fails: the put gives up after 1 + 3 attempts, and says so. */
    rules("[{\"action\":\"status\",\"status\":503,\"method\":\"PUT\"}]");
    assert_int_equal(put1(ds, "doomed", "v", 1, 0), MF_EIO);
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "S3 PUT 'doomed'"));
    assert_non_null(strstr(msg, "HTTP 503 SlowDown"));
    assert_non_null(strstr(msg, "request id"));
    assert_non_null(strstr(msg, "after 4 attempts"));
    /* A multipart upload whose third part never goes through leaves
     * nothing behind: no object, no upload in progress. */
    no_rules();
    size_t n = 12u << 20;
    uint8_t *data = malloc(n);
    mf_test_fill_random(data, n, 11);
    rules("[{\"action\":\"status\",\"status\":500,\"path\":\"partNumber=3\"}]");
    assert_int_equal(put1(ds, "half", data, n, 0), MF_EIO);
    assert_non_null(strstr(mf_error_last(), "UploadPart 'half'"));
    no_rules();
    assert_int_equal(ds->exists(ds, "half", NULL), MF_ENOTFOUND);
    free(data);
    mf_datastore_free(ds);
}

static void test_bandwidth_limit(void **state)
{
    (void)state;
    setenv("MF_S3_MAX_BANDWIDTH", "1M", 1);
    mf_datastore *ds = open_fresh();
    unsetenv("MF_S3_MAX_BANDWIDTH");
    size_t n = 3u << 20;
    uint8_t *data = malloc(n);
    mf_test_fill_random(data, n, 5);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(put1(ds, "slow", data, n, 0), MF_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* 3 MiB at 1 MiB/s cannot take less than ~2.9 s (a lower bound only). */
    assert_true(s >= 2.5);
    free(data);
    mf_datastore_free(ds);
}

/* Every request of the tests above went through the proxy, which checked
 * x-amz-content-sha256 against the body (as AWS does; moto does not). */
static void test_payload_hashes_checked(void **state)
{
    (void)state;
    mf_buf st = MF_BUF_INIT;
    proxy_stats(&st);
    assert_non_null(strstr(st.ptr, "\"hash_mismatches\": 0,"));
    const char *n = strstr(st.ptr, "\"hash_checked\": ");
    assert_non_null(n);
    assert_true(strtoul(n + strlen("\"hash_checked\": "), NULL, 10) > 1000);
    mf_buf_dispose(&st);
}

/* One of the proxy's counters. */
static uint64_t proxy_stat(const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\": ", name);
    mf_buf st = MF_BUF_INIT;
    proxy_stats(&st);
    const char *n = strstr(st.ptr, key);
    if (!n)
        fail_msg("no %s in the proxy's stats", name);
    uint64_t v = strtoull(n + strlen(key), NULL, 10);
    mf_buf_dispose(&st);
    return v;
}

static uint64_t credential_fetches(void)
{
    return proxy_stat("credential_fetches");
}

/* One thread's PUT then GET of its own key. */
typedef struct par_job {
    mf_datastore *ds;
    int n;
    int rc;
} par_job;

static void *par_put_get(void *arg)
{
    par_job *j = arg;
    char key[32], val[32];
    mf_buf b = MF_BUF_INIT;
    snprintf(key, sizeof key, "par/%d", j->n);
    snprintf(val, sizeof val, "value %d", j->n);
    j->rc = put1(j->ds, key, val, strlen(val), 0);
    if (j->rc == MF_OK)
        j->rc = j->ds->get(j->ds, key, 0, MF_DS_TO_END, &b);
    if (j->rc == MF_OK && (b.size != strlen(val) || memcmp(b.ptr, val, b.size) != 0))
        j->rc = MF_ECORRUPT;
    mf_buf_dispose(&b);
    return NULL;
}

/* Container credentials (what AWS Batch jobs get): temporary keys of a
 * role assumed in moto, served by the proxy's control port. They sign
 * real requests; within MF_S3_CREDENTIALS_REFRESH of their expiry they
 * are fetched again before each request. */
static void test_container_credentials(void **state)
{
    (void)state;
    char url[512];
    snprintf(url, sizeof url, "%s/container-credentials", getenv("MF_TEST_PROXY_CONTROL"));
    char *id = strdup(getenv("AWS_ACCESS_KEY_ID")), *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    mf_buf b = MF_BUF_INIT;

    uint64_t f0 = credential_fetches();
    mf_datastore *ds = open_fresh();
    assert_int_equal(put1(ds, "k", "temporary", 9, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "temporary");
    assert_int_equal(credential_fetches() - f0, 1); /* an hour left: no refresh */
    /* A HEAD refused with 400 (no body to say ExpiredToken): the
     * credentials are fetched again and the HEAD tried once more. */
    rules("[{\"action\":\"status\",\"status\":400,\"method\":\"HEAD\",\"count\":1}]");
    f0 = credential_fetches();
    assert_int_equal(ds->exists(ds, "k", NULL), MF_OK);
    assert_int_equal(credential_fetches() - f0, 1);
    /* ... but such a guess fetches at most once a minute: 403 is also
     * S3's answer to a HEAD on a missing key without s3:ListBucket */
    rules("[{\"action\":\"status\",\"status\":403,\"method\":\"HEAD\"}]");
    f0 = credential_fetches();
    for (int i = 0; i < 5; i++)
        assert_int_equal(ds->exists(ds, "k", NULL), MF_EACCESS);
    assert_int_equal(credential_fetches() - f0, 0);
    no_rules();
    mf_datastore_free(ds);

    /* Credentials that expire within the window are fetched anew. */
    setenv("MF_S3_CREDENTIALS_REFRESH", "86400", 1);
    f0 = credential_fetches();
    ds = open_fresh();
    assert_int_equal(put1(ds, "k", "again", 5, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "again");
    assert_int_equal(credential_fetches() - f0, 3); /* open, PUT, GET */
    mf_datastore_free(ds);

    /* A slow endpoint (1 s an answer) and credentials always due for
     * renewal: one thread fetches while the others go on signing with the
     * keys that still work, so 16 requests from 8 threads need far fewer
     * than 16 fetches (one each, one after another, if they waited). */
    snprintf(url, sizeof url, "%s/container-credentials?delay=1",
             getenv("MF_TEST_PROXY_CONTROL"));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    ds = open_fresh();
    f0 = credential_fetches();
    enum { NT = 8 };
    pthread_t th[NT];
    par_job jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (par_job){ ds, i, MF_ERROR };
        assert_int_equal(pthread_create(&th[i], NULL, par_put_get, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, MF_OK);
    }
    uint64_t fetches = credential_fetches() - f0;
    assert_true(fetches >= 1);
    assert_true(fetches <= 8);
    mf_datastore_free(ds);

    /* S3 takes the keys for expired (with an hour left by the clock)
     * while 8 threads use them: the first thread told fetches, and the
     * others wait for it rather than sign again with the keys S3 refuses;
     * every request then succeeds. */
    unsetenv("MF_S3_CREDENTIALS_REFRESH");
    ds = open_fresh();
    rules("[{\"action\":\"expire\",\"method\":\"PUT\",\"count\":1}]");
    f0 = credential_fetches();
    for (int i = 0; i < NT; i++) {
        jobs[i] = (par_job){ ds, 100 + i, MF_ERROR };
        assert_int_equal(pthread_create(&th[i], NULL, par_put_get, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, MF_OK);
    }
    no_rules();
    fetches = credential_fetches() - f0;
    assert_true(fetches >= 1);
    assert_true(fetches <= NT);
    mf_datastore_free(ds);

    unsetenv("MF_S3_CREDENTIALS_REFRESH");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    setenv("AWS_ACCESS_KEY_ID", id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    free(id);
    free(secret);
    mf_buf_dispose(&b);
}

/* A profile that assumes a role (role_arn + source_profile, as
 * cross-account setups do): STS AssumeRole at moto, signed with the
 * source profile's keys and checked by moto; the role's temporary keys
 * then sign every S3 request. */
static void test_assume_role_profile(void **state)
{
    (void)state;
    char conf[2048], path[512];
    char *id = strdup(getenv("AWS_ACCESS_KEY_ID")), *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    char *saved_conf = strdup(getenv("AWS_CONFIG_FILE"));
    snprintf(path, sizeof path, "%s/aws-config", getenv("HOME"));
    snprintf(conf, sizeof conf,
             "[profile dev]\nrole_arn = %s\nsource_profile = base\nrole_session_name = mf-e2e\n"
             "[profile base]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
             "[profile wrong]\nrole_arn = %s\nsource_profile = badkeys\n"
             "[profile badkeys]\naws_access_key_id = %s\naws_secret_access_key = sEcReTwrong\n",
             getenv("MF_TEST_ROLE_ARN"), id, secret, getenv("MF_TEST_ROLE_ARN"), id);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(conf, fp);
    assert_int_equal(fclose(fp), 0);
    setenv("AWS_CONFIG_FILE", path, 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_PROFILE", "dev", 1);

    uint64_t calls = proxy_stat("assume_role_calls"), temp = proxy_stat("temporary_signed");
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put1(ds, "k", "as a role", 9, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "as a role");
    assert_int_equal(proxy_stat("assume_role_calls") - calls, 1);
    assert_true(proxy_stat("temporary_signed") - temp >= 2); /* the PUT and the GET */
    mf_datastore_free(ds);

    /* a source whose secret is wrong: moto refuses the AssumeRole call */
    setenv("AWS_PROFILE", "wrong", 1);
    ds = NULL;
    assert_int_equal(mf__s3_open(&ds, root), MF_EACCESS);
    assert_null(ds);
    const char *msg = mf_error_last();
    assert_non_null(strstr(msg, "assume-role (profile 'wrong'): STS AssumeRole at"));
    assert_non_null(strstr(msg, "(HTTP 403)"));
    assert_null(strstr(msg, "sEcReT"));
    assert_null(strstr(msg, secret));

    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", saved_conf, 1);
    setenv("AWS_ACCESS_KEY_ID", id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    unlink(path);
    free(id);
    free(secret);
    free(saved_conf);
    mf_buf_dispose(&b);
}

/* Metaflow's METAFLOW_S3_ENDPOINT_URL alone: an IP endpoint, so path-style
 * addressing (a virtual host "bucket.127.0.0.1" would not resolve). */
static void test_metaflow_endpoint(void **state)
{
    (void)state;
    char *aws = strdup(getenv("AWS_ENDPOINT_URL")), *aws_s3 = strdup(getenv("AWS_ENDPOINT_URL_S3"));
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    setenv("METAFLOW_S3_ENDPOINT_URL", aws_s3, 1);
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put1(ds, "k", "path style", 10, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "path style");
    mf_datastore_free(ds);
    mf_buf_dispose(&b);
    unsetenv("METAFLOW_S3_ENDPOINT_URL");
    setenv("AWS_ENDPOINT_URL", aws, 1);
    setenv("AWS_ENDPOINT_URL_S3", aws_s3, 1);
    free(aws);
    free(aws_s3);
}

static void test_bad_settings(void **state)
{
    (void)state;
    mf_datastore *ds = NULL;
    setenv("MF_S3_MAX_PARALLEL", "lots", 1);
    assert_int_equal(mf__s3_open(&ds, "s3://bucket/x"), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "MF_S3_MAX_PARALLEL"));
    unsetenv("MF_S3_MAX_PARALLEL");
    assert_int_equal(mf__s3_open(&ds, "/not/s3"), MF_EINVAL);
    assert_int_equal(mf__s3_open(&ds, "s3://b"), MF_EINVAL);
    assert_int_equal(mf__s3_open(&ds, "s3://bucket/../up"), MF_EINVAL);
    assert_null(ds);
    /* Registered as a built-in backend. */
    assert_int_equal(mf_datastore_open(&ds, "s3", "s3://bucket/pre/fix/"), MF_OK);
    assert_true(mf__s3_is(ds));
    mf_datastore_free(ds);
}

/* ---- TLS (run with with_s3.py --tls: the endpoint is https with a
 * self-signed certificate that AWS_CA_BUNDLE names) */

static void test_tls_verified(void **state)
{
    (void)state;
    assert_int_equal(strncmp(getenv("AWS_ENDPOINT_URL_S3"), "https://", 8), 0);
    mf_datastore *ds = open_fresh();
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put1(ds, "k", "over tls", 8, 0), MF_OK);
    assert_int_equal(ds->get(ds, "k", 0, MF_DS_TO_END, &b), MF_OK);
    assert_string_equal(b.ptr, "over tls");
    mf_buf_dispose(&b);
    mf_datastore_free(ds);
}

static void test_tls_untrusted_certificate(void **state)
{
    (void)state;
    /* Without the CA bundle the certificate is not trusted: refused at
     * once (never retried), naming the problem. */
    char *ca = strdup(getenv("AWS_CA_BUNDLE"));
    unsetenv("AWS_CA_BUNDLE");
    mf_datastore *ds = open_fresh();
    setenv("AWS_CA_BUNDLE", ca, 1);
    mf__s3_stats st;
    assert_int_equal(put1(ds, "k", "v", 1, 0), MF_EIO);
    assert_non_null(strstr(mf_error_last(), "certificate"));
    assert_non_null(strstr(mf_error_last(), "S3 PUT 'k'"));
    mf__s3_stats_get(ds, &st);
    assert_int_equal(st.requests, 1);
    mf_datastore_free(ds);
    free(ca);
}

int main(int argc, char **argv)
{
    if (!getenv("MF_TEST_PROXY_CONTROL") || !getenv("MF_TEST_S3_BUCKET")) {
        fprintf(stderr, "run through tests/e2e/with_s3.py\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc > 1 && strcmp(argv[1], "--tls") == 0) {
        const struct CMUnitTest tls[] = {
            cmocka_unit_test(test_tls_verified),
            cmocka_unit_test(test_tls_untrusted_certificate),
        };
        int rc = cmocka_run_group_tests(tls, NULL, NULL);
        curl_global_cleanup();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_put_if_absent),
        cmocka_unit_test(test_content_blobs_skip_head),
        cmocka_unit_test(test_list_pages_and_batch_delete),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_container_credentials),
        cmocka_unit_test(test_assume_role_profile),
        cmocka_unit_test(test_metaflow_endpoint),
        cmocka_unit_test(test_retry_transient),
        cmocka_unit_test(test_stall_then_retry),
        cmocka_unit_test(test_faults_never_stop),
        cmocka_unit_test(test_bandwidth_limit),
        cmocka_unit_test(test_payload_hashes_checked),
        cmocka_unit_test(test_bad_settings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
