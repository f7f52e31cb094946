/*
 * bench_store: throughput, latency, peak memory and dedupe of lib/store on
 * the fs datastore. Puts are timed as mf_task_put sees them; the sync that
 * mf_task_commit then adds (one syncfs for all the blobs) is shown apart.
 *
 *   bench_store [dir] [megabytes]     (defaults: $TMPDIR or /tmp, 200)
 *
 * Each scenario runs in a forked child so that its peak RSS (getrusage
 * ru_maxrss) is its own; the parent stays small and prints the table.
 * Reads are warm (the page cache holds what was just written).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datastore/datastore.h"
#include "store/store_int.h"

typedef struct result {
    int rc;
    double secs;
    long maxrss_kb;
    uint64_t bytes_written;
    uint64_t blobs_written;
    int zero_copy;
    double extra_secs; /* e.g. touching every page of a mapping */
    double first_secs; /* first of repeated calls */
    double sync_secs;  /* the datastore sync a task commit adds after puts */
    uint64_t checksum;
    uint8_t key[MF_SHA256_LEN];
    char err[256];
} result;

static const char *g_dir;
static size_t g_size;
static uint8_t g_key_random[MF_SHA256_LEN], g_key_text[MF_SHA256_LEN];

/* ------------------------------------------------------------ data */

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < len; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* Text-like data (about 3x with zstd -1): words from a small vocabulary
 * interleaved with numbers, like logs or CSV. */
static void fill_text(uint8_t *p, size_t len, uint64_t seed)
{
    static const char *words[] = { "alpha,", "beta,", "gamma,", "delta,", "epsilon,",
                                   "zeta,", "eta,", "theta,", "iota,", "kappa,",
                                   "lambda,", "mu,", "nu,", "xi,", "omicron,", "pi\n" };
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
    size_t i = 0;
    while (i < len) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        char tmp[32];
        int n = (x >> 8) & 1 ? snprintf(tmp, sizeof tmp, "%u,", (unsigned)(x >> 40) % 1000)
                             : snprintf(tmp, sizeof tmp, "%s", words[x & 15]);
        size_t k = (size_t)n < len - i ? (size_t)n : len - i;
        memcpy(p + i, tmp, k);
        i += k;
    }
}

static uint8_t *make_data(bool text, uint64_t seed)
{
    uint8_t *p = malloc(g_size);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    if (text)
        fill_text(p, g_size, seed);
    else
        fill_random(p, g_size, seed);
    return p;
}

/* -------------------------------------------------- a null datastore */

/* Accepts and discards every put: the store's own cost without I/O. */
static int null_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t n,
                    uint32_t flags)
{
    (void)ds; (void)key; (void)iov; (void)n; (void)flags;
    return MF_OK;
}
static int null_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len,
                    mf_buf *out)
{
    (void)ds; (void)key; (void)off; (void)len; (void)out;
    return mf__error_set(MF_ENOTFOUND, "null");
}
static int null_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    (void)ds; (void)key; (void)size;
    return MF_ENOTFOUND;
}
static int null_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb, void *p)
{
    (void)ds; (void)prefix; (void)cb; (void)p;
    return MF_OK;
}
static int null_del(mf_datastore *ds, const char *key)
{
    (void)ds; (void)key;
    return MF_ENOTFOUND;
}

/* ------------------------------------------------------- scenarios */

typedef void (*scenario_fn)(mf_store *st, result *r);

static double now_s(void)
{
    return (double)mf__mono_us() / 1e6;
}

static void finish(mf_store *st, result *r, int rc)
{
    r->rc = rc;
    if (rc != MF_OK)
        snprintf(r->err, sizeof r->err, "%s", mf_error_last());
    mf__store_stats s;
    mf__store_stats_get(st, &s);
    r->bytes_written = s.bytes_written;
    r->blobs_written = s.blobs_written;
}

static void do_put(mf_store *st, result *r, bool text, uint32_t flags)
{
    uint8_t *d = make_data(text, text ? 2 : 1);
    double t = now_s();
    int rc = mf__store_put(st, d, g_size, flags, r->key);
    r->secs = now_s() - t;
    /* What mf_task_commit adds: one sync makes the deferred blobs durable. */
    t = now_s();
    if (rc == MF_OK)
        rc = mf__datastore_sync(mf__store_datastore(st));
    r->sync_secs = now_s() - t;
    finish(st, r, rc);
    free(d);
}

static void s_put_random(mf_store *st, result *r) { do_put(st, r, false, 0); }
static void s_put_text(mf_store *st, result *r) { do_put(st, r, true, 0); }

static void do_get(mf_store *st, result *r, const uint8_t *key)
{
    mf_buf out = MF_BUF_INIT;
    double t = now_s();
    int rc = mf__store_get(st, key, &out);
    r->secs = now_s() - t;
    if (rc == MF_OK && out.size != g_size)
        rc = mf__error_set(MF_ERROR, "size mismatch");
    finish(st, r, rc);
    mf_buf_dispose(&out);
}

static void s_get_random(mf_store *st, result *r) { do_get(st, r, g_key_random); }
static void s_get_text(mf_store *st, result *r) { do_get(st, r, g_key_text); }

/* First call (what a fresh process pays, including OpenSSL's one-time
 * algorithm fetch) in extra_secs2, best of 10 in secs. */
static void do_map(mf_store *st, result *r, const uint8_t *key)
{
    int rc = MF_OK;
    r->secs = 1e9;
    for (int i = 0; rc == MF_OK && i < 10; i++) {
        mf__mapping *m = NULL;
        const void *p;
        uint64_t len;
        double t = now_s();
        rc = mf__store_map(st, key, &m, &p, &len, &r->zero_copy);
        t = now_s() - t;
        if (i == 0)
            r->first_secs = t;
        if (t < r->secs)
            r->secs = t;
        if (rc == MF_OK && i == 0) {
            /* Touch every page once: what a consumer of the bytes pays. */
            double t2 = now_s();
            uint64_t sum = 0;
            long page = sysconf(_SC_PAGESIZE);
            for (uint64_t j = 0; j < len; j += (uint64_t)page)
                sum += ((const volatile uint8_t *)p)[j];
            r->extra_secs = now_s() - t2;
            r->checksum = sum; /* keeps the loop */
        }
        mf__mapping_free(m);
    }
    finish(st, r, rc);
}

static void s_map_random(mf_store *st, result *r) { do_map(st, r, g_key_random); }
static void s_map_text(mf_store *st, result *r) { do_map(st, r, g_key_text); }

/* A single raw blob (at the chunking threshold): the map is one open,
 * one header read and one mmap. Best of 20 (the first pays page tables). */
static void s_map_single(mf_store *st, result *r)
{
    size_t n = MF_STORE_CHUNK_THRESHOLD;
    uint8_t *d = malloc(n);
    fill_random(d, n, 3);
    int rc = mf__store_put(st, d, n, MF_PUT_RAW, r->key);
    free(d);
    r->secs = 1e9;
    for (int i = 0; rc == MF_OK && i < 20; i++) {
        mf__mapping *m = NULL;
        const void *p;
        uint64_t len;
        double t = now_s();
        rc = mf__store_map(st, r->key, &m, &p, &len, &r->zero_copy);
        t = now_s() - t;
        if (t < r->secs)
            r->secs = t;
        mf__mapping_free(m);
    }
    finish(st, r, rc);
}

/* Sparse numeric data (float32, 90% zeros): the compressible data of
 * feature matrices and pruned weights. */
static void fill_sparse(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 3;
    memset(p, 0, len);
    for (size_t i = 0; i + 4 <= len; i += 4) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (x % 10 == 0) {
            float f = (float)(x >> 40) / (float)(1u << 20);
            memcpy(p + i, &f, 4);
        }
    }
}

static uint8_t g_key_sparse[MF_SHA256_LEN];

static void s_put_sparse(mf_store *st, result *r)
{
    uint8_t *d = malloc(g_size);
    fill_sparse(d, g_size, 4);
    double t = now_s();
    int rc = mf__store_put(st, d, g_size, 0, r->key);
    r->secs = now_s() - t;
    finish(st, r, rc);
    free(d);
}

static void s_get_sparse(mf_store *st, result *r) { do_get(st, r, g_key_sparse); }

static void s_range(mf_store *st, result *r)
{
    int rc = MF_OK;
    r->secs = 1e9;
    for (int i = 0; rc == MF_OK && i < 10; i++) {
        mf_buf out = MF_BUF_INIT;
        double t = now_s();
        rc = mf__store_get_range(st, g_key_random, MF_STORE_ANY_SIZE,
                                 g_size / 2 + (size_t)i * 4096, 1u << 20, &out);
        t = now_s() - t;
        if (i == 0)
            r->first_secs = t;
        if (t < r->secs)
            r->secs = t;
        mf_buf_dispose(&out);
    }
    finish(st, r, rc);
}

/* Re-save with 1% of the bytes changed in place. */
static void do_resave(mf_store *st, result *r, bool text, bool scattered)
{
    uint8_t *d = make_data(text, text ? 2 : 1);
    size_t change = g_size / 100;
    if (!scattered) {
        fill_random(d + g_size / 2, change, 77);
    } else {
        /* Four edits of a quarter each, spread over the value. */
        for (int i = 0; i < 4; i++)
            fill_random(d + g_size / 5 * (size_t)(i + 1), change / 4, 78 + (uint64_t)i);
    }
    double t = now_s();
    int rc = mf__store_put(st, d, g_size, 0, r->key);
    r->secs = now_s() - t;
    finish(st, r, rc);
    free(d);
}

static void s_resave_contig(mf_store *st, result *r) { do_resave(st, r, false, false); }
static void s_resave_scatter(mf_store *st, result *r) { do_resave(st, r, false, true); }
static void s_resave_text(mf_store *st, result *r) { do_resave(st, r, true, false); }

static mf_datastore null_ds;

static void s_put_random_null(mf_store *st, result *r)
{
    (void)st;
    mf_store *ns;
    mf__store_new(&ns, &null_ds);
    do_put(ns, r, false, 0);
    mf__store_free(ns);
}

static void s_put_text_null(mf_store *st, result *r)
{
    (void)st;
    mf_store *ns;
    mf__store_new(&ns, &null_ds);
    do_put(ns, r, true, 0);
    mf__store_free(ns);
}

/* Run fn in a child with its own store on g_dir. */
static result run(scenario_fn fn)
{
    result r;
    memset(&r, 0, sizeof r);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        mf_datastore *ds;
        mf_store *st;
        if (mf_datastore_open(&ds, "fs", g_dir) != MF_OK || mf__store_new(&st, ds) != MF_OK) {
            r.rc = MF_ERROR;
            snprintf(r.err, sizeof r.err, "%s", mf_error_last());
        } else {
            fn(st, &r);
            mf__store_free(st);
            mf_datastore_free(ds);
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r.maxrss_kb = ru.ru_maxrss;
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n != (ssize_t)sizeof r) {
        fprintf(stderr, "scenario child failed\n");
        exit(2);
    }
    if (r.rc != MF_OK) {
        fprintf(stderr, "scenario failed: %s\n", r.err);
        exit(2);
    }
    return r;
}

static double mbps(double secs)
{
    return secs > 0 ? (double)g_size / 1e6 / secs : 0;
}

static void row(const char *name, const result *r, const char *note)
{
    printf("%-34s %10.1f %10.1f %9.0f %10.2f %s\n", name, r->secs * 1e3, mbps(r->secs),
           (double)r->maxrss_kb / 1024.0, (double)r->bytes_written / 1e6, note);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    g_size = (size_t)(argc > 2 ? atof(argv[2]) : 200) * 1000000u;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench_store.XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    g_dir = dir;
    mf_datastore_init(&null_ds, MF_DATASTORE_VERSION);
    null_ds.put = null_put;
    null_ds.get = null_get;
    null_ds.exists = null_exists;
    null_ds.list = null_list;
    null_ds.del = null_del;

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("lib/store benchmark: %zu MB values, fs datastore at %s, %ld CPUs, page %ld\n",
           g_size / 1000000, dir, ncpu, sysconf(_SC_PAGESIZE));
    printf("%-34s %10s %10s %9s %10s %s\n", "scenario", "ms", "MB/s", "RSS MiB",
           "new MB", "notes");

    char note[128];
    result r;
    r = run(s_put_random_null);
    row("put random (null datastore)", &r, "hash+chunk only");
    r = run(s_put_text_null);
    row("put compressible (null datastore)", &r, "hash+chunk+zstd only");

    r = run(s_put_random);
    memcpy(g_key_random, r.key, sizeof r.key);
    snprintf(note, sizeof note, "%llu blobs; + commit sync %.0f ms = %.0f MB/s durable",
             (unsigned long long)r.blobs_written, r.sync_secs * 1e3,
             mbps(r.secs + r.sync_secs));
    row("put random (fs)", &r, note);
    r = run(s_put_random);
    row("put random again (dedupe)", &r, "");
    r = run(s_get_random);
    row("get random (verified copy)", &r, "");
    r = run(s_map_random);
    snprintf(note, sizeof note, "zero_copy=%d, best of 10 %.0f us, first %.0f us; "
             "touch all pages %.1f ms", r.zero_copy, r.secs * 1e6, r.first_secs * 1e6,
             r.extra_secs * 1e3);
    row("map random", &r, note);
    r = run(s_map_single);
    snprintf(note, sizeof note, "4 MiB single raw blob, best of 20: %.0f us, zero_copy=%d",
             r.secs * 1e6, r.zero_copy);
    printf("%-34s %10.3f %10s %9.0f %10s %s\n", "map single blob", r.secs * 1e3, "-",
           (double)r.maxrss_kb / 1024.0, "-", note);
    r = run(s_range);
    snprintf(note, sizeof note, "1 MiB at the middle: best of 10 %.0f us, first %.0f us",
             r.secs * 1e6, r.first_secs * 1e6);
    row("get_range random", &r, note);

    r = run(s_put_text);
    memcpy(g_key_text, r.key, sizeof r.key);
    snprintf(note, sizeof note, "%llu blobs, ratio %.2f; + commit sync %.0f ms",
             (unsigned long long)r.blobs_written,
             (double)g_size / (double)(r.bytes_written ? r.bytes_written : 1),
             r.sync_secs * 1e3);
    row("put compressible (fs)", &r, note);
    r = run(s_get_text);
    row("get compressible", &r, "");
    r = run(s_map_text);
    snprintf(note, sizeof note, "zero_copy=%d (decompressed copy), best of 10", r.zero_copy);
    row("map compressible", &r, note);

    r = run(s_put_sparse);
    memcpy(g_key_sparse, r.key, sizeof r.key);
    snprintf(note, sizeof note, "90%% zeros float32, ratio %.2f",
             (double)g_size / (double)(r.bytes_written ? r.bytes_written : 1));
    row("put sparse (fs)", &r, note);
    r = run(s_get_sparse);
    row("get sparse", &r, "");

    r = run(s_resave_contig);
    snprintf(note, sizeof note, "1%% = %zu MB contiguous, %llu new blobs", g_size / 100000000,
             (unsigned long long)r.blobs_written);
    row("re-save random, 1% contiguous", &r, note);
    r = run(s_resave_scatter);
    snprintf(note, sizeof note, "4 edits of 0.25%%, %llu new blobs",
             (unsigned long long)r.blobs_written);
    row("re-save random, 1% in 4 places", &r, note);
    r = run(s_resave_text);
    snprintf(note, sizeof note, "%llu new blobs", (unsigned long long)r.blobs_written);
    row("re-save compressible, 1% contig.", &r, note);

    printf("(MB = 10^6 bytes; RSS = peak of the scenario's process, data buffer "
           "included; new MB = bytes of blobs newly written)\n");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
