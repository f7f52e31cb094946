/* Public-API tests of streamed artifacts (mf_task_put_stream,
 * mf_artifact_read_stream) on real filesystem datastores: the same keys and
 * blobs as mf_task_put, round trips and ranges, callbacks that stop, bad
 * arguments, damage, memory bounded whatever the value's size (measured in
 * a fresh process), and streams from two threads. Only the public headers
 * are used. */
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <metaflow.h>
#include <metaflow/sys/datastore.h>

#include "testutil.h"

#define MiB (1024u * 1024u)
/* The largest piece mf_artifact_read_stream hands over for values written
 * by this library (one chunk). */
#define PIECE_MAX (4u * MiB)

/* ------------------------------------------------------------ data */

/* Deterministic content, addressable by offset, so that a stream can be
 * generated on the fly (no buffer of the value's size) and the same bytes
 * put from a buffer. Each 64 KiB block is generated from (seed, block). */
enum { RANDOM, TEXT, TEXT_THEN_RANDOM, RANDOM_THEN_TEXT };
#define BLOCK (64u << 10)
#define MIX_AT (20u * MiB) /* where the mixed kinds switch */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void gen_block(int kind, uint64_t seed, uint64_t block, uint8_t *p)
{
    uint64_t off = block * BLOCK;
    if (kind == TEXT_THEN_RANDOM)
        kind = off < MIX_AT ? TEXT : RANDOM;
    else if (kind == RANDOM_THEN_TEXT)
        kind = off < MIX_AT ? RANDOM : TEXT;
    uint64_t x = mix64(seed * 0x9E3779B97F4A7C15ull + block) | 1;
    if (kind == RANDOM) {
        for (size_t i = 0; i < BLOCK; i += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            memcpy(p + i, &x, 8);
        }
        return;
    }
    /* Text-like (about 3x with zstd -1): words and numbers, as CSV. */
    static const char *words[] = { "alpha,", "beta,", "gamma,", "delta,", "epsilon,",
                                   "zeta,", "eta,", "theta,", "iota,", "kappa,",
                                   "lambda,", "mu,", "nu,", "xi,", "omicron,", "pi\n" };
    size_t i = 0;
    while (i < BLOCK) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        char tmp[32];
        int n = (x >> 8) & 1 ? snprintf(tmp, sizeof tmp, "%u,", (unsigned)(x >> 40) % 1000)
                             : snprintf(tmp, sizeof tmp, "%s", words[x & 15]);
        size_t k = (size_t)n < BLOCK - i ? (size_t)n : BLOCK - i;
        memcpy(p + i, tmp, k);
        i += k;
    }
}

/* Bytes [off, off + len) of a generated value. */
static void gen_bytes(int kind, uint64_t seed, uint64_t off, uint8_t *dst, size_t len)
{
    static __thread uint8_t blk[BLOCK];
    static __thread uint64_t cached = UINT64_MAX, cached_seed;
    static __thread int cached_kind = -1;
    while (len) {
        uint64_t b = off / BLOCK;
        if (b != cached || seed != cached_seed || kind != cached_kind) {
            gen_block(kind, seed, b, blk);
            cached = b;
            cached_seed = seed;
            cached_kind = kind;
        }
        size_t at = (size_t)(off % BLOCK);
        size_t n = BLOCK - at < len ? BLOCK - at : len;
        memcpy(dst, blk + at, n);
        dst += n;
        off += n;
        len -= n;
    }
}

static uint8_t *gen_value(int kind, uint64_t seed, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    gen_bytes(kind, seed, 0, p, len);
    return p;
}

/* ------------------------------------------------- read callback (put) */

#define STEP_JITTER 0 /* random counts: 1..16, 1..4096 or 1..cap */

typedef struct src {
    const uint8_t *data; /* the value, or NULL: generated from kind/seed */
    int kind;
    uint64_t seed;
    uint64_t size, pos;
    size_t step;         /* at most this many bytes per call; STEP_JITTER */
    uint64_t jit;
    uint64_t fail_at;    /* return fail_rc once pos reaches this */
    int64_t fail_rc;
    bool ended, called_after_end, wrong_thread, bad_cap;
    pthread_t thread;
    EVP_MD_CTX *sha;     /* if set: hash of every byte handed out */
    uint64_t calls;
} src;

static void src_init(src *s, const uint8_t *data, int kind, uint64_t seed, uint64_t size,
                     size_t step)
{
    memset(s, 0, sizeof *s);
    s->data = data;
    s->kind = kind;
    s->seed = seed;
    s->size = size;
    s->step = step;
    s->jit = seed * 7919 + 17;
    s->fail_at = UINT64_MAX;
    s->thread = pthread_self();
}

static int64_t src_read(void *buf, size_t cap, void *payload)
{
    src *s = payload;
    s->calls++;
    if (!pthread_equal(pthread_self(), s->thread))
        s->wrong_thread = true;
    if (cap == 0)
        s->bad_cap = true;
    if (s->ended) {
        s->called_after_end = true;
        return 0;
    }
    if (s->pos >= s->fail_at) {
        s->ended = true;
        return s->fail_rc;
    }
    uint64_t left = s->size - s->pos;
    if (left == 0) {
        s->ended = true;
        return 0;
    }
    size_t n = cap;
    if (s->step != STEP_JITTER) {
        if (n > s->step)
            n = s->step;
    } else {
        s->jit ^= s->jit << 13; s->jit ^= s->jit >> 7; s->jit ^= s->jit << 17;
        size_t lim = (s->jit >> 60) < 6 ? 16 : (s->jit >> 60) < 12 ? 4096 : cap;
        if (lim > cap)
            lim = cap;
        n = 1 + (size_t)((s->jit >> 8) % lim);
    }
    if (n > left)
        n = (size_t)left;
    if (s->fail_at - s->pos < n)
        n = (size_t)(s->fail_at - s->pos);
    if (s->data)
        memcpy(buf, s->data + s->pos, n);
    else
        gen_bytes(s->kind, s->seed, s->pos, buf, n);
    if (s->sha)
        EVP_DigestUpdate(s->sha, buf, n);
    s->pos += n;
    return (int64_t)n;
}

/* ------------------------------------------------ write callback (get) */

typedef struct sink {
    const uint8_t *expect; /* the value, or NULL: do not compare */
    uint64_t expect_off;   /* where the range starts in it */
    uint64_t got, calls;
    size_t max_piece;
    uint64_t stop_at_call; /* return stop_rc on this call (1-based); 0 never */
    int stop_rc;
    bool mismatch, wrong_thread, empty_piece;
    pthread_t thread;
    EVP_MD_CTX *sha;       /* if set: hash of every byte written out */
} sink;

static void sink_init(sink *k, const uint8_t *expect, uint64_t off)
{
    memset(k, 0, sizeof *k);
    k->expect = expect;
    k->expect_off = off;
    k->thread = pthread_self();
}

static int sink_write(const void *buf, size_t len, void *payload)
{
    sink *k = payload;
    k->calls++;
    if (!pthread_equal(pthread_self(), k->thread))
        k->wrong_thread = true;
    if (len == 0)
        k->empty_piece = true;
    if (len > k->max_piece)
        k->max_piece = len;
    if (k->expect && memcmp(buf, k->expect + k->expect_off + k->got, len) != 0)
        k->mismatch = true;
    if (k->sha)
        EVP_DigestUpdate(k->sha, buf, len);
    k->got += len;
    if (k->stop_at_call && k->calls == k->stop_at_call)
        return k->stop_rc;
    return 0;
}

/* -------------------------------------------------------- fixtures */

struct fx {
    char *dir;
    char root_a[PATH_MAX], root_b[PATH_MAX];
    mf_engine *a, *b;
};

static mf_engine *open_engine(const char *root)
{
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    mf_engine *e = NULL;
    o.root = root;
    if (mf_engine_open(&e, &o))
        fail_msg("mf_engine_open: %s", mf_error_last());
    return e;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = mf_test_tmpdir("stream");
    snprintf(f->root_a, sizeof f->root_a, "%s/a/.metaflow", f->dir);
    snprintf(f->root_b, sizeof f->root_b, "%s/b/.metaflow", f->dir);
    f->a = open_engine(f->root_a);
    f->b = open_engine(f->root_b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mf_engine_free(f->a);
    mf_engine_free(f->b);
    mf_test_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static mf_task *new_task(mf_engine *e, const char *flow, mf_run **run)
{
    mf_run *r = NULL;
    mf_task *t = NULL;
    if (mf_run_create(&r, e, flow, NULL))
        fail_msg("mf_run_create: %s", mf_error_last());
    if (mf_task_create(&t, r, "start", NULL))
        fail_msg("mf_task_create: %s", mf_error_last());
    *run = r;
    return t;
}

static void put_stream_ok(mf_task *t, const char *name, src *s, uint32_t flags)
{
    int rc = mf_task_put_stream(t, name, "raw", src_read, s, flags);
    if (rc)
        fail_msg("mf_task_put_stream(%s): %s", name, mf_error_last());
    assert_false(s->called_after_end);
    assert_false(s->wrong_thread);
    assert_false(s->bad_cap);
    assert_true(s->ended);
    assert_int_equal(s->pos, s->size);
}

/* Reopen a committed task by pathspec. */
static mf_task *reopen(mf_engine *e, mf_task *t)
{
    char ps[512];
    snprintf(ps, sizeof ps, "%s", mf_task_pathspec(t));
    mf_task *o = NULL;
    if (mf_task_open(&o, e, ps))
        fail_msg("mf_task_open(%s): %s", ps, mf_error_last());
    return o;
}

static void artifact_key(mf_task *t, const char *name, char hex[65], uint64_t *size, int *zc)
{
    mf_artifact *a = NULL;
    if (mf_task_artifact(&a, t, name))
        fail_msg("mf_task_artifact(%s): %s", name, mf_error_last());
    snprintf(hex, 65, "%s", mf_artifact_key(a));
    *size = mf_artifact_size(a);
    if (zc)
        *zc = mf_artifact_size(a) ? mf_artifact_is_zero_copy(a, 0) : -1;
    mf_artifact_free(a);
}

/* ------------------------------------------------------------ tests */

/* Same bytes, same result: the key, size, blobs (byte for byte) and
 * inlining of mf_task_put, whatever the read callback's granularity. */
static void same_as_put(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint64_t size;
        int kind;
        uint32_t flags;
    } cases[] = {
        { 0, RANDOM, 0 },
        { 1, RANDOM, 0 },
        { 1023, TEXT, 0 },                     /* inlined */
        { 1023, TEXT, MF_PUT_NO_INLINE },
        { 1024, TEXT, 0 },                     /* the smallest blob */
        { 4 * MiB, RANDOM, 0 },                /* the largest single blob */
        { 4 * MiB + 1, RANDOM, 0 },            /* the smallest chunked value */
        { 4 * MiB + 1, TEXT, 0 },
        { 16 * MiB, TEXT, 0 },                 /* the most a stream collects */
        { 16 * MiB + 1, RANDOM, 0 },           /* the least it streams */
        { 40 * MiB - 12345, RANDOM, 0 },       /* aligned cuts */
        { 40 * MiB + 777, TEXT, 0 },           /* free cuts, zstd chunks */
        { 40 * MiB, TEXT, MF_PUT_RAW },        /* aligned, raw */
        { 40 * MiB, TEXT_THEN_RANDOM, 0 },     /* the mode comes from the head */
        { 44 * MiB + 5, RANDOM_THEN_TEXT, 0 },
    };
    static const size_t steps[] = { 1, 4093, MiB + 7, SIZE_MAX, STEP_JITTER };
    size_t ncases = sizeof cases / sizeof cases[0];
    size_t nsteps = sizeof steps / sizeof steps[0];

    mf_run *ra, *rb;
    mf_task *ta = new_task(f->a, "SameFlow", &ra);
    mf_task *tb = new_task(f->b, "SameFlow", &rb);
    for (size_t c = 0; c < ncases; c++) {
        size_t len = (size_t)cases[c].size;
        uint8_t *d = gen_value(cases[c].kind, c + 1, len);
        char name[32];
        snprintf(name, sizeof name, "c%zu", c);
        assert_int_equal(mf_task_put(ta, name, "raw", d, len, cases[c].flags), MF_OK);
        char want[65];
        uint64_t want_size;
        int want_zc;
        artifact_key(ta, name, want, &want_size, &want_zc);
        for (size_t g = 0; g < nsteps; g++) {
            src s;
            src_init(&s, g % 2 ? d : NULL, cases[c].kind, c + 1, len, steps[g]);
            snprintf(name, sizeof name, "c%zu_g%zu", c, g);
            put_stream_ok(tb, name, &s, cases[c].flags);
            char got[65];
            uint64_t got_size;
            int got_zc;
            artifact_key(tb, name, got, &got_size, &got_zc);
            if (strcmp(got, want) != 0)
                fail_msg("case %zu (%llu bytes, kind %d, flags %u), step %zu: key %s, "
                         "mf_task_put gives %s", c, (unsigned long long)len, cases[c].kind,
                         (unsigned)cases[c].flags, steps[g], got, want);
            assert_int_equal(got_size, want_size);
            assert_int_equal(got_zc, want_zc);
        }
        free(d);
    }
    assert_int_equal(mf_task_commit(ta, MF_TASK_SUCCEEDED), MF_OK);
    assert_int_equal(mf_task_commit(tb, MF_TASK_SUCCEEDED), MF_OK);

    /* Identical blobs, file for file and byte for byte; nothing for the
     * inlined values in either store. */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "diff -r '%s/data' '%s/data' >/dev/null", f->root_a, f->root_b);
    assert_int_equal(system(cmd), 0);

    /* The committed manifests say the same of every artifact. */
    mf_task *oa = reopen(f->a, ta), *ob = reopen(f->b, tb);
    for (size_t c = 0; c < ncases; c++) {
        char name[32], want[65], got[65];
        uint64_t ws, gs;
        snprintf(name, sizeof name, "c%zu", c);
        artifact_key(oa, name, want, &ws, NULL);
        for (size_t g = 0; g < nsteps; g++) {
            snprintf(name, sizeof name, "c%zu_g%zu", c, g);
            artifact_key(ob, name, got, &gs, NULL);
            assert_string_equal(got, want);
            assert_int_equal(gs, ws);
        }
    }
    mf_task_free(oa);
    mf_task_free(ob);
    mf_task_free(ta);
    mf_task_free(tb);
    mf_run_free(ra);
    mf_run_free(rb);
}

/* Read [off, off + len) through the stream and check it against d. */
static void check_range(mf_artifact *a, uint32_t part, const uint8_t *d, uint64_t size,
                        uint64_t off, uint64_t len, bool chunked)
{
    sink k;
    uint64_t want = off > size ? 0 : len > size - off ? size - off : len;
    sink_init(&k, d, off);
    int rc = mf_artifact_read_stream(a, part, off, len, sink_write, &k);
    if (off > size) {
        assert_int_equal(rc, MF_ERANGE);
        assert_non_null(strstr(mf_error_last(), mf_artifact_name(a)));
        assert_int_equal(k.calls, 0);
        return;
    }
    if (rc)
        fail_msg("read_stream(%s, %llu, %llu): %s", mf_artifact_name(a),
                 (unsigned long long)off, (unsigned long long)len, mf_error_last());
    assert_int_equal(k.got, want);
    assert_false(k.mismatch);
    assert_false(k.wrong_thread);
    assert_false(k.empty_piece);
    if (want == 0)
        assert_int_equal(k.calls, 0);
    else if (!chunked)
        assert_int_equal(k.calls, 1);
    else
        assert_true(k.max_piece <= PIECE_MAX);
}

static void round_trip_and_ranges(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *name;
        uint64_t size;
        int kind;
        uint32_t flags;
        bool chunked;
    } vals[] = {
        { "big", 40 * MiB + 5, RANDOM, 0, true },   /* through the ring */
        { "text", 24 * MiB, TEXT, 0, true },        /* zstd chunks */
        { "rawtext", 20 * MiB + 9, TEXT, MF_PUT_RAW, true },
        { "mid", 10 * MiB, RANDOM, 0, true },       /* collected, then chunked */
        { "single", 3 * MiB, TEXT, 0, false },      /* one zstd blob */
        { "single_raw", 3 * MiB + 1, RANDOM, 0, false },
        { "tiny", 100, TEXT, 0, false },            /* inline */
        { "empty", 0, TEXT, 0, false },
    };
    size_t nvals = sizeof vals / sizeof vals[0];
    uint8_t *d[sizeof vals / sizeof vals[0]];
    mf_run *r;
    mf_task *t = new_task(f->a, "TripFlow", &r);
    for (size_t i = 0; i < nvals; i++) {
        d[i] = gen_value(vals[i].kind, 100 + i, (size_t)vals[i].size);
        src s;
        src_init(&s, NULL, vals[i].kind, 100 + i, vals[i].size, STEP_JITTER);
        put_stream_ok(t, vals[i].name, &s, vals[i].flags);
    }
    /* Out-of-band parts read as well (part 1 is raw and chunked). */
    const void *parts[] = { "hdr", d[0] + 3 };
    uint64_t lens[] = { 3, 5 * MiB };
    assert_int_equal(mf_task_put_parts(t, "parts", "pickle5", parts, lens, 2, 0), MF_OK);

    /* Readable before the commit, from the task being written. */
    mf_artifact *a = NULL;
    assert_int_equal(mf_task_artifact(&a, t, "big"), MF_OK);
    check_range(a, 0, d[0], vals[0].size, 0, UINT64_MAX, true);
    mf_artifact_free(a);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);

    mf_task *o = reopen(f->a, t);
    uint64_t x = 12345;
    for (size_t i = 0; i < nvals; i++) {
        assert_int_equal(mf_task_artifact(&a, o, vals[i].name), MF_OK);
        uint64_t n = vals[i].size;
        assert_int_equal(mf_artifact_size(a), n);
        bool ch = vals[i].chunked;
        check_range(a, 0, d[i], n, 0, UINT64_MAX, ch);
        check_range(a, 0, d[i], n, 0, n, ch);
        check_range(a, 0, d[i], n, 0, 0, ch);
        check_range(a, 0, d[i], n, n, 5, ch);       /* at the end: nothing */
        check_range(a, 0, d[i], n, n + 1, 1, ch);   /* past it: MF_ERANGE */
        if (n) {
            check_range(a, 0, d[i], n, 0, 1, ch);
            check_range(a, 0, d[i], n, n - 1, 10, ch);
            check_range(a, 0, d[i], n, n / 2, 5 * MiB, ch);
            check_range(a, 0, d[i], n, n / 3, UINT64_MAX, ch);
        }
        for (int j = 0; n && j < 12; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            uint64_t off = x % n;
            uint64_t len = (x >> 32) % (j % 3 == 0 ? 4096 : 9 * MiB);
            check_range(a, 0, d[i], n, off, len, ch);
        }
        /* The whole value equals what mf_artifact_read gives. */
        mf_buf b = MF_BUF_INIT;
        assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
        assert_int_equal(b.size, n);
        assert_true(n == 0 || memcmp(b.ptr, d[i], (size_t)n) == 0);
        mf_buf_dispose(&b);
        mf_artifact_free(a);
    }
    assert_int_equal(mf_task_artifact(&a, o, "parts"), MF_OK);
    check_range(a, 0, (const uint8_t *)"hdr", 3, 1, UINT64_MAX, false);
    check_range(a, 1, d[0] + 3, 5 * MiB, 0, UINT64_MAX, true);
    check_range(a, 1, d[0] + 3, 5 * MiB, 4 * MiB - 5, 100, true);
    sink k;
    sink_init(&k, NULL, 0);
    assert_int_equal(mf_artifact_read_stream(a, 2, 0, 1, sink_write, &k), MF_ERANGE);
    assert_int_equal(k.calls, 0);
    mf_artifact_free(a);
    mf_task_free(o);
    mf_task_free(t);
    for (size_t i = 0; i < nvals; i++)
        free(d[i]);
    mf_run_free(r);
}

static int64_t read_too_much(void *buf, size_t cap, void *payload)
{
    (void)payload;
    memset(buf, 'x', cap);
    return (int64_t)cap + 1;
}

/* A read callback that stops fails the put with MF_EUSER and adds
 * nothing: an earlier value of the name stays, a new name is absent. */
static void put_abort(void **state)
{
    struct fx *f = *state;
    mf_run *r;
    mf_task *t = new_task(f->a, "AbortFlow", &r);
    assert_int_equal(mf_task_put(t, "kept", "json", "[1]", 3, 0), MF_OK);
    /* Stopping at once, in the inline range, in a single blob, while
     * collecting a chunked value and while streaming through the ring. */
    static const uint64_t at[] = { 0, 100, 2 * MiB, 10 * MiB, 30 * MiB, 30 * MiB };
    static const size_t step[] = { STEP_JITTER, STEP_JITTER, STEP_JITTER, STEP_JITTER,
                                   STEP_JITTER, 3 * MiB };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        src s;
        src_init(&s, NULL, i % 2 ? TEXT : RANDOM, 7, 64 * MiB, step[i]);
        s.fail_at = at[i];
        s.fail_rc = -(int64_t)i - 1;
        const char *name = i % 2 ? "kept" : "absent";
        assert_int_equal(mf_task_put_stream(t, name, "raw", src_read, &s, 0), MF_EUSER);
        assert_int_equal(mf_error_last_code(), MF_EUSER);
        assert_non_null(strstr(mf_error_last(), name));
        assert_non_null(strstr(mf_error_last(), mf_task_pathspec(t)));
        assert_non_null(strstr(mf_error_last(), "read callback"));
        assert_false(s.called_after_end);
        assert_int_equal(s.pos, at[i]);
    }
    /* More than asked for is a bug in the callback, named as such. */
    assert_int_equal(mf_task_put_stream(t, "absent", "raw", read_too_much, NULL, 0),
                     MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "absent"));

    /* The task goes on: a later stream of the same name succeeds. */
    src s;
    src_init(&s, NULL, RANDOM, 8, 5 * MiB, 4096);
    put_stream_ok(t, "later", &s, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    mf_task *o = reopen(f->a, t);
    mf_strlist *l = NULL;
    assert_int_equal(mf_task_artifacts(o, 0, &l), MF_OK);
    assert_int_equal(mf_strlist_count(l), 2);
    assert_string_equal(mf_strlist_get(l, 0), "kept");
    assert_string_equal(mf_strlist_get(l, 1), "later");
    mf_strlist_free(l);
    mf_artifact *a = NULL;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_task_artifact(&a, o, "kept"), MF_OK);
    assert_int_equal(mf_artifact_read(a, 0, &b), MF_OK);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.ptr, "[1]", 3);
    mf_artifact_free(a);
    mf_buf_dispose(&b);

    /* What the aborted puts wrote is garbage, collected as such; what the
     * commit references stays readable. */
    mf_gc_options go = MF_GC_OPTIONS_INIT;
    mf_gc_stats gs;
    memset(&gs, 0, sizeof gs);
    gs.version = MF_GC_STATS_VERSION;
    go.grace_seconds = 0;
    assert_int_equal(mf_gc(f->a, &go, &gs), MF_OK);
    assert_true(gs.swept > 0);
    assert_int_equal(mf_task_artifact(&a, o, "later"), MF_OK);
    uint8_t *d = gen_value(RANDOM, 8, 5 * MiB);
    check_range(a, 0, d, 5 * MiB, 0, UINT64_MAX, true);
    free(d);
    mf_artifact_free(a);
    mf_task_free(o);
    mf_task_free(t);
    mf_run_free(r);
}

/* A write callback that stops fails the read with MF_EUSER; nothing is
 * written after that, and the artifact reads normally afterwards. */
static void read_abort(void **state)
{
    struct fx *f = *state;
    mf_run *r;
    mf_task *t = new_task(f->a, "StopFlow", &r);
    uint8_t *d = gen_value(TEXT, 3, 30 * MiB);
    src s;
    src_init(&s, d, TEXT, 3, 30 * MiB, SIZE_MAX);
    put_stream_ok(t, "big", &s, 0);
    assert_int_equal(mf_task_put(t, "small", "raw", "abc", 3, 0), MF_OK);
    assert_int_equal(mf_task_put(t, "one", "raw", d, 2 * MiB, 0), MF_OK);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    mf_task *o = reopen(f->a, t);
    const struct {
        const char *name;
        const uint8_t *bytes;
        uint64_t stop_at;
    } cases[] = { { "big", d, 1 }, { "big", d, 3 }, { "small", (const uint8_t *)"abc", 1 },
                  { "one", d, 1 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mf_artifact *a = NULL;
        assert_int_equal(mf_task_artifact(&a, o, cases[i].name), MF_OK);
        sink k;
        sink_init(&k, cases[i].bytes, 0);
        k.stop_at_call = cases[i].stop_at;
        k.stop_rc = 42;
        assert_int_equal(mf_artifact_read_stream(a, 0, 0, UINT64_MAX, sink_write, &k),
                         MF_EUSER);
        assert_int_equal(k.calls, cases[i].stop_at);
        assert_false(k.mismatch);
        assert_non_null(strstr(mf_error_last(), cases[i].name));
        assert_non_null(strstr(mf_error_last(), "write callback"));
        /* And then it reads normally. */
        check_range(a, 0, cases[i].bytes, mf_artifact_size(a), 0, UINT64_MAX,
                    strcmp(cases[i].name, "big") == 0);
        mf_artifact_free(a);
    }
    mf_task_free(o);
    mf_task_free(t);
    free(d);
    mf_run_free(r);
}

static void bad_arguments(void **state)
{
    struct fx *f = *state;
    mf_run *r;
    mf_task *t = new_task(f->a, "BadFlow", &r);
    src s;
    src_init(&s, NULL, TEXT, 1, 10, SIZE_MAX);
    assert_int_equal(mf_task_put_stream(NULL, "x", "raw", src_read, &s, 0), MF_EINVAL);
    assert_int_equal(mf_task_put_stream(t, "1bad", "raw", src_read, &s, 0), MF_EINVAL);
    assert_int_equal(mf_task_put_stream(t, NULL, "raw", src_read, &s, 0), MF_EINVAL);
    assert_int_equal(mf_task_put_stream(t, "x", "", src_read, &s, 0), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'x'"));
    assert_int_equal(mf_task_put_stream(t, "x", "bad enc", src_read, &s, 0), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'x'"));
    assert_int_equal(mf_task_put_stream(t, "x", "raw", NULL, &s, 0), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'x'"));
    assert_int_equal(s.calls, 0); /* nothing was read for any of these */
    put_stream_ok(t, "x", &s, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    /* A committed task, and a task opened for reading, take nothing. */
    src_init(&s, NULL, TEXT, 1, 10, SIZE_MAX);
    assert_int_equal(mf_task_put_stream(t, "y", "raw", src_read, &s, 0), MF_ESTATE);
    assert_non_null(strstr(mf_error_last(), "'y'"));
    mf_task *o = reopen(f->a, t);
    assert_int_equal(mf_task_put_stream(o, "y", "raw", src_read, &s, 0), MF_ESTATE);
    assert_int_equal(s.calls, 0);

    mf_artifact *a = NULL;
    sink k;
    sink_init(&k, NULL, 0);
    assert_int_equal(mf_artifact_read_stream(NULL, 0, 0, 1, sink_write, &k), MF_EINVAL);
    assert_int_equal(mf_task_artifact(&a, o, "x"), MF_OK);
    assert_int_equal(mf_artifact_read_stream(a, 0, 0, 1, NULL, &k), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'x'"));
    assert_int_equal(mf_artifact_read_stream(a, 1, 0, 1, sink_write, &k), MF_ERANGE);
    assert_int_equal(mf_artifact_read_stream(a, 0, 11, 1, sink_write, &k), MF_ERANGE);
    assert_non_null(strstr(mf_error_last(), "'x'"));
    assert_int_equal(k.calls, 0);
    mf_artifact_free(a);
    mf_task_free(o);
    mf_task_free(t);
    mf_run_free(r);
}

/* Damage in a chunk is found by a streamed read, also by a range that
 * touches only a few of its bytes (edge chunks are verified whole). */
static void damage_detected(void **state)
{
    struct fx *f = *state;
    mf_run *r;
    mf_task *t = new_task(f->a, "DamageFlow", &r);
    size_t n = 20 * MiB;
    uint8_t *d = gen_value(RANDOM, 11, n);
    src s;
    src_init(&s, d, RANDOM, 11, n, MiB);
    put_stream_ok(t, "w", &s, 0);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);

    /* A raw chunk's payload starts at byte 4096 of its file: find one and
     * where its bytes sit in the value. */
    char cmd[PATH_MAX + 128], path[PATH_MAX];
    snprintf(cmd, sizeof cmd, "find '%s/data' -type f -size +512k | head -1", f->root_a);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(path, sizeof path, p));
    pclose(p);
    path[strcspn(path, "\n")] = 0;
    size_t flen = 0;
    uint8_t *blob = mf_test_read_file(path, &flen);
    assert_non_null(blob);
    assert_true(flen > 4096 + 1024);
    uint8_t *at = memmem(d, n, blob + 4096, 1024);
    assert_non_null(at);
    uint64_t coff = (uint64_t)(at - d);
    blob[4096 + 200] ^= 0x40;
    chmod(path, 0644);
    assert_int_equal(mf_test_write_file(path, blob, flen), 0);
    free(blob);

    mf_task *o = reopen(f->a, t);
    mf_artifact *a = NULL;
    assert_int_equal(mf_task_artifact(&a, o, "w"), MF_OK);
    sink k;
    sink_init(&k, NULL, 0);
    assert_int_equal(mf_artifact_read_stream(a, 0, 0, UINT64_MAX, sink_write, &k),
                     MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "artifact 'w'"));
    /* Nothing of the damaged chunk or after it was written out. */
    assert_true(k.got <= coff);
    sink_init(&k, NULL, 0);
    assert_int_equal(mf_artifact_read_stream(a, 0, coff + 3000, 10, sink_write, &k),
                     MF_ECORRUPT);
    assert_int_equal(k.calls, 0);
    /* A range that misses the chunk reads fine. */
    if (coff >= 100)
        check_range(a, 0, d, n, 0, 100, true);
    mf_artifact_free(a);
    mf_task_free(o);
    mf_task_free(t);
    free(d);
    mf_run_free(r);
}

/* --------------------------------------------------- memory bound */

/* kB from /proc/self/status ("VmHWM", "VmRSS"). */
static long status_kb(const char *field)
{
    FILE *fp = fopen("/proc/self/status", "r");
    if (!fp)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    fclose(fp);
    return v;
}

#define STREAM_MIB 300u

/* In a fresh process (exec'd, so its peak RSS is its own): stream
 * STREAM_MIB of incompressible and of compressible data in and out, check
 * the bytes, print the baseline and peak RSS. */
static int memory_child(const char *root)
{
    mf_engine *e = open_engine(root);
    mf_run *r = NULL;
    mf_task *t = NULL;
    if (mf_run_create(&r, e, "MemFlow", NULL) || mf_task_create(&t, r, "start", NULL))
        return 10;
    long rss0 = status_kb("VmRSS"), hwm0 = status_kb("VmHWM");
    uint64_t size = (uint64_t)STREAM_MIB * MiB + 12345;
    const int kinds[2] = { RANDOM, TEXT };
    unsigned char in[2][32], out[2][32];
    for (int i = 0; i < 2; i++) {
        src s;
        src_init(&s, NULL, kinds[i], 77 + i, size, 3 * MiB + 1);
        s.sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
        if (mf_task_put_stream(t, i ? "text" : "random", "raw", src_read, &s, 0)) {
            fprintf(stderr, "put_stream: %s\n", mf_error_last());
            return 11;
        }
        EVP_DigestFinal_ex(s.sha, in[i], NULL);
        EVP_MD_CTX_free(s.sha);
    }
    if (mf_task_commit(t, MF_TASK_SUCCEEDED))
        return 12;
    long hwm_put = status_kb("VmHWM");
    for (int i = 0; i < 2; i++) {
        mf_artifact *a = NULL;
        if (mf_task_artifact(&a, t, i ? "text" : "random"))
            return 13;
        sink k;
        sink_init(&k, NULL, 0);
        k.sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(k.sha, EVP_sha256(), NULL);
        if (mf_artifact_read_stream(a, 0, 0, UINT64_MAX, sink_write, &k)) {
            fprintf(stderr, "read_stream: %s\n", mf_error_last());
            return 14;
        }
        EVP_DigestFinal_ex(k.sha, out[i], NULL);
        EVP_MD_CTX_free(k.sha);
        if (k.got != size || memcmp(in[i], out[i], 32) != 0)
            return 15;
        mf_artifact_free(a);
    }
    long hwm1 = status_kb("VmHWM");
    printf("rss0=%ld hwm0=%ld hwm_put=%ld hwm1=%ld\n", rss0, hwm0, hwm_put, hwm1);
    fflush(stdout);
    mf_task_free(t);
    mf_run_free(r);
    mf_engine_free(e);
    return 0;
}

static void memory_bounded(void **state)
{
    struct fx *f = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        /* Under ASan, freed blocks wait in a quarantine of up to 256 MB
         * before reuse, which RSS would count as the library's; a small
         * one keeps the figure about the library (no effect elsewhere). */
        const char *ao = getenv("ASAN_OPTIONS");
        char opts[2048];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", ao ? ao : "",
                 ao && *ao ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        char *argv[] = { "test_stream", "--memory-child", f->root_a, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(pfd[1]);
    char out[512] = "";
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(pfd[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    close(pfd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("memory child failed (status 0x%x): %s", st, out);
    long rss0, hwm0, hwm_put, hwm1;
    assert_int_equal(sscanf(out, "rss0=%ld hwm0=%ld hwm_put=%ld hwm1=%ld", &rss0, &hwm0,
                            &hwm_put, &hwm1), 4);
    long growth_kb = hwm1 - rss0;
    print_message("streamed 2 x %u MiB in and out: RSS %ld kB before, peak %ld kB after "
                  "the puts, %ld kB after the reads: growth %.1f MB\n", STREAM_MIB, rss0,
                  hwm_put, hwm1, growth_kb * 1024.0 / 1e6);
    assert_true(growth_kb * 1024.0 < 200e6);
}

/* ---------------------------------------------------- slow backend */

/* A backend like S3 seen from the store: blob puts and gets take a while
 * (jittered, so they finish out of order) and there is no local_path, so
 * reads go through ranged gets. It counts how many of each overlap. */
typedef struct slowds {
    mf_datastore base; /* first: the engine sees an mf_datastore */
    mf_datastore *inner;
    atomic_int puts, max_puts, gets, max_gets;
    atomic_uint seq;
} slowds;

static void slow_pause(slowds *d, const char *key, atomic_int *cur, atomic_int *max)
{
    if (strncmp(key, "data/", 5) != 0)
        return;
    int now = atomic_fetch_add(cur, 1) + 1;
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now))
        ;
    /* 2-22 ms, and one in eight 150 ms more: the oldest chunk in flight
     * is often still there when the window is full. */
    unsigned i = atomic_fetch_add(&d->seq, 1), x = i * 2654435761u;
    usleep(2000 + (x >> 16) % 20000 + (i % 8 == 3 ? 150000 : 0));
}

static int slow_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t n,
                    uint32_t flags)
{
    slowds *d = (slowds *)ds;
    slow_pause(d, key, &d->puts, &d->max_puts);
    int rc = d->inner->put(d->inner, key, iov, n, flags);
    if (strncmp(key, "data/", 5) == 0)
        atomic_fetch_sub(&d->puts, 1);
    return rc;
}

static int slow_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len, mf_buf *out)
{
    slowds *d = (slowds *)ds;
    slow_pause(d, key, &d->gets, &d->max_gets);
    int rc = d->inner->get(d->inner, key, off, len, out);
    if (strncmp(key, "data/", 5) == 0)
        atomic_fetch_sub(&d->gets, 1);
    return rc;
}

static int slow_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    slowds *d = (slowds *)ds;
    return d->inner->exists(d->inner, key, size);
}

static int slow_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb, void *payload)
{
    slowds *d = (slowds *)ds;
    return d->inner->list(d->inner, prefix, cb, payload);
}

static int slow_del(mf_datastore *ds, const char *key)
{
    slowds *d = (slowds *)ds;
    return d->inner->del(d->inner, key);
}

static int slow_sync(mf_datastore *ds)
{
    slowds *d = (slowds *)ds;
    return d->inner->sync ? d->inner->sync(d->inner) : MF_OK;
}

static void slow_free(mf_datastore *ds)
{
    slowds *d = (slowds *)ds;
    mf_datastore_free(d->inner);
    free(d);
}

static mf_engine *open_slow(const char *root, const char *index_dir, slowds **out)
{
    slowds *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(mf_datastore_init(&d->base, MF_DATASTORE_VERSION), MF_OK);
    if (mf_datastore_open(&d->inner, "fs", root))
        fail_msg("mf_datastore_open: %s", mf_error_last());
    d->base.free = slow_free;
    d->base.put = slow_put;
    d->base.get = slow_get;
    d->base.exists = slow_exists;
    d->base.list = slow_list;
    d->base.del = slow_del;
    d->base.sync = slow_sync;
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.index_dir = index_dir;
    mf_engine *e = NULL;
    if (mf_engine_open_datastore(&e, &d->base, &o))
        fail_msg("mf_engine_open_datastore: %s", mf_error_last());
    *out = d;
    return e;
}

/* Writers slower than the reader fill the window: the stream then waits
 * for the oldest chunks (stored out of order) before it reuses their room,
 * and must still store the bytes mf_task_put stores; reads are fetched
 * several at a time and written out in order. */
static void slow_backend(void **state)
{
    struct fx *f = *state;
    char root[PATH_MAX + 16], idx[PATH_MAX + 16];
    snprintf(root, sizeof root, "%s/slow", f->dir);
    snprintf(idx, sizeof idx, "%s/slow-index", f->dir);
    assert_int_equal(mkdir(root, 0755), 0);
    slowds *d = NULL;
    mf_engine *e = open_slow(root, idx, &d);
    mf_run *r;
    mf_task *t = new_task(e, "SlowFlow", &r);
    static const struct {
        uint64_t size;
        int kind;
        size_t step;
    } vals[] = { { 90 * MiB + 1, RANDOM, SIZE_MAX }, { 70 * MiB, TEXT, 1 * MiB } };
    char want[2][65];
    for (int i = 0; i < 2; i++) {
        src s;
        src_init(&s, NULL, vals[i].kind, 31 + i, vals[i].size, vals[i].step);
        put_stream_ok(t, i ? "v1" : "v0", &s, 0);
        /* The reference: mf_task_put of the same bytes on plain fs. */
        mf_run *rb;
        mf_task *tb = new_task(f->b, "SlowFlow", &rb);
        uint8_t *v = gen_value(vals[i].kind, 31 + i, (size_t)vals[i].size);
        assert_int_equal(mf_task_put(tb, "v", "raw", v, vals[i].size, 0), MF_OK);
        free(v);
        uint64_t ws;
        artifact_key(tb, "v", want[i], &ws, NULL);
        mf_task_free(tb);
        mf_run_free(rb);
    }
    assert_true(atomic_load(&d->max_puts) >= 2);
    assert_int_equal(mf_task_commit(t, MF_TASK_SUCCEEDED), MF_OK);
    mf_task *o = reopen(e, t);
    for (int i = 0; i < 2; i++) {
        char got[65];
        uint64_t gs;
        artifact_key(o, i ? "v1" : "v0", got, &gs, NULL);
        assert_string_equal(got, want[i]);
        assert_int_equal(gs, vals[i].size);
        mf_artifact *a = NULL;
        assert_int_equal(mf_task_artifact(&a, o, i ? "v1" : "v0"), MF_OK);
        uint8_t *v = gen_value(vals[i].kind, 31 + i, (size_t)vals[i].size);
        check_range(a, 0, v, vals[i].size, 0, UINT64_MAX, true);
        check_range(a, 0, v, vals[i].size, 13 * MiB + 5, 20 * MiB, true);
        free(v);
        mf_artifact_free(a);
    }
    assert_true(atomic_load(&d->max_gets) >= 2);
    print_message("slow backend: up to %d blob puts and %d blob gets at once\n",
                  atomic_load(&d->max_puts), atomic_load(&d->max_gets));
    mf_task_free(o);
    mf_task_free(t);
    mf_run_free(r);
    mf_engine_free(e);
}

/* ---------------------------------------------------- two threads */

typedef struct tjob {
    mf_task *t;
    int kind;
    uint64_t seed, size;
    int rc;
    char err[512];
    unsigned char in[32], out[32];
} tjob;

static void *stream_thread(void *arg)
{
    tjob *j = arg;
    src s;
    src_init(&s, NULL, j->kind, j->seed, j->size, j->kind == TEXT ? 65536 : STEP_JITTER);
    s.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
    j->rc = mf_task_put_stream(j->t, "v", "raw", src_read, &s, 0);
    EVP_DigestFinal_ex(s.sha, j->in, NULL);
    EVP_MD_CTX_free(s.sha);
    if (!j->rc && (s.wrong_thread || s.called_after_end))
        j->rc = -1000;
    mf_artifact *a = NULL;
    if (!j->rc)
        j->rc = mf_task_artifact(&a, j->t, "v");
    if (!j->rc) {
        sink k;
        sink_init(&k, NULL, 0);
        k.sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(k.sha, EVP_sha256(), NULL);
        j->rc = mf_artifact_read_stream(a, 0, 0, UINT64_MAX, sink_write, &k);
        EVP_DigestFinal_ex(k.sha, j->out, NULL);
        EVP_MD_CTX_free(k.sha);
        if (!j->rc && (k.got != j->size || k.wrong_thread))
            j->rc = -1001;
    }
    if (j->rc)
        snprintf(j->err, sizeof j->err, "%s", mf_error_last());
    mf_artifact_free(a);
    return NULL;
}

static void two_threads(void **state)
{
    struct fx *f = *state;
    mf_run *r;
    mf_task *t0 = new_task(f->a, "ThreadFlow", &r);
    mf_task *t1 = NULL;
    assert_int_equal(mf_task_create(&t1, r, "start", NULL), MF_OK);
    tjob j[2] = { { t0, RANDOM, 21, 45 * MiB + 3, 0, "", {0}, {0} },
                  { t1, TEXT, 22, 37 * MiB, 0, "", {0}, {0} } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, stream_thread, &j[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (j[i].rc)
            fail_msg("thread %d: %d: %s", i, j[i].rc, j[i].err);
        assert_memory_equal(j[i].in, j[i].out, 32);
    }
    assert_int_equal(mf_task_commit(t0, MF_TASK_SUCCEEDED), MF_OK);
    assert_int_equal(mf_task_commit(t1, MF_TASK_SUCCEEDED), MF_OK);
    /* Each stream kept its own bytes and key: mf_task_put agrees. */
    mf_run *rb;
    mf_task *tb = new_task(f->b, "ThreadFlow", &rb);
    for (int i = 0; i < 2; i++) {
        uint8_t *d = gen_value(j[i].kind, j[i].seed, (size_t)j[i].size);
        assert_int_equal(mf_task_put(tb, i ? "v1" : "v0", "raw", d, j[i].size, 0), MF_OK);
        free(d);
        char want[65], got[65];
        uint64_t ws, gs;
        artifact_key(tb, i ? "v1" : "v0", want, &ws, NULL);
        artifact_key(i ? t1 : t0, "v", got, &gs, NULL);
        assert_string_equal(got, want);
    }
    mf_task_free(tb);
    mf_run_free(rb);
    mf_task_free(t0);
    mf_task_free(t1);
    mf_run_free(r);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--memory-child") == 0)
        return memory_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_as_put, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip_and_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(put_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(read_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(damage_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(two_threads, setup, teardown),
    };
    return cmocka_run_group_tests_name("api-stream", tests, NULL, NULL);
}
