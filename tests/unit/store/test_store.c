/*
 * Unit tests of lib/store: blob format, chunking, the store over memstore
 * and fs, mapping, manifests and garbage collection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/mp.h"
#include "memstore.h"
#include "store/store_int.h"
#include "testutil.h"

#define MiB (1u << 20)

/* ------------------------------------------------------------ helpers */

/* Text-like data that zstd shrinks about 3x. */
static void fill_text(void *buf, size_t len, uint64_t seed)
{
    static const char *words[] = { "alpha ", "beta ", "gamma ", "delta ", "epsilon ",
                                   "zeta ", "eta ", "theta ", "iota ", "kappa ",
                                   "lambda ", "mu ", "nu ", "xi ", "omicron ", "pi " };
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
    char *p = buf;
    size_t i = 0;
    while (i < len) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const char *w = words[x & 15];
        size_t n = strlen(w);
        if (n > len - i)
            n = len - i;
        memcpy(p + i, w, n);
        i += n;
    }
}

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    mf_test_fill_random(p, len, seed);
    return p;
}

static uint8_t *text_bytes(size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    fill_text(p, len, seed);
    return p;
}

typedef struct env {
    mf_datastore *ds;
    mf_store *st;
    char *dir; /* fs only */
} env;

static void env_mem(env *e)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(mf_test_memstore_new(&e->ds), MF_OK);
    assert_int_equal(mf__store_new(&e->st, e->ds), MF_OK);
}

static void env_fs(env *e)
{
    memset(e, 0, sizeof *e);
    e->dir = mf_test_tmpdir("store");
    assert_non_null(e->dir);
    assert_int_equal(mf_datastore_open(&e->ds, "fs", e->dir), MF_OK);
    assert_int_equal(mf__store_new(&e->st, e->ds), MF_OK);
}

static void env_done(env *e)
{
    mf__store_free(e->st);
    mf_datastore_free(e->ds);
    if (e->dir) {
        mf_test_rmrf(e->dir);
        free(e->dir);
    }
}

static int count_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    (void)key; (void)size; (void)mtime;
    (*(size_t *)payload)++;
    return 0;
}

static size_t count_blobs(mf_datastore *ds)
{
    size_t n = 0;
    assert_int_equal(ds->list(ds, "data/", count_cb, &n), MF_OK);
    return n;
}

static void dskey_of(const uint8_t key[MF_SHA256_LEN], char out[80])
{
    mf__blob_dskey(key, out);
}

static void hex_of(const uint8_t key[MF_SHA256_LEN], char out[MF_SHA256_HEX + 1])
{
    mf__hex(key, MF_SHA256_LEN, out);
}

/* The fixed header of a stored blob. */
static mf__blob_hdr header_of(mf_datastore *ds, const uint8_t key[MF_SHA256_LEN])
{
    char k[80];
    mf_buf b = MF_BUF_INIT;
    mf__blob_hdr h;
    dskey_of(key, k);
    assert_int_equal(ds->get(ds, k, 0, 64, &b), MF_OK);
    assert_int_equal(mf__blob_hdr_decode(&h, (const uint8_t *)b.ptr, b.size, k), MF_OK);
    mf_buf_dispose(&b);
    return h;
}

static void roundtrip(mf_store *st, const uint8_t *data, size_t len, uint32_t flags)
{
    uint8_t key[MF_SHA256_LEN];
    mf_buf out = MF_BUF_INIT;
    uint64_t size = 0;
    assert_int_equal(mf__store_put(st, data, len, flags, key), MF_OK);
    assert_int_equal(mf__store_size(st, key, &size), MF_OK);
    assert_int_equal(size, len);
    assert_int_equal(mf__store_get(st, key, &out), MF_OK);
    assert_int_equal(out.size, len);
    if (len)
        assert_memory_equal(out.ptr, data, len);
    /* Single blobs are keyed by the SHA-256 of their bytes. */
    if (len <= MF_STORE_CHUNK_THRESHOLD) {
        uint8_t want[MF_SHA256_LEN];
        mf__sha256(data, len, want);
        assert_memory_equal(key, want, MF_SHA256_LEN);
    }
    mf_buf_dispose(&out);
}

/* ----------------------------------------------------- blob header */

static void test_blob_header(void **state)
{
    (void)state;
    mf__blob_hdr h = { MF__KIND_DATA, MF__CODEC_ZSTD, 64, 1000, 300, 0x1122334455667788ull };
    uint8_t b[64];
    mf__blob_hdr_encode(&h, b);
    assert_memory_equal(b, "MFBL\x01\x00\x01\x00", 8);
    assert_int_equal(mf__le32_get(b + 8), 64);
    assert_int_equal(mf__le64_get(b + 16), 1000);
    assert_int_equal(mf__le64_get(b + 24), 300);
    mf__blob_hdr d;
    assert_int_equal(mf__blob_hdr_decode(&d, b, 64, "k"), MF_OK);
    assert_int_equal(d.kind, h.kind);
    assert_int_equal(d.codec, h.codec);
    assert_int_equal(d.hdr_len, 64);
    assert_int_equal(d.raw_len, 1000);
    assert_int_equal(d.payload_len, 300);
    assert_true(d.checksum == h.checksum);
    /* Every single-bit flip of the fixed header is detected. */
    for (int bit = 0; bit < 64 * 8; bit++) {
        uint8_t c[64];
        memcpy(c, b, 64);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(mf__blob_hdr_decode(&d, c, 64, "k"), MF_ECORRUPT);
    }
    for (size_t n = 0; n < 64; n++)
        assert_int_equal(mf__blob_hdr_decode(&d, b, n, "k"), MF_ECORRUPT);
    /* A valid header of a newer version. */
    b[4] = 2;
    mf__le64_put(b + 56, mf__xxh64(b, 56, 0));
    assert_int_equal(mf__blob_hdr_decode(&d, b, 64, "k"), MF_EVERSION);
    /* Raw blobs have payload == raw length. */
    h.codec = MF__CODEC_RAW;
    mf__blob_hdr_encode(&h, b);
    assert_int_equal(mf__blob_hdr_decode(&d, b, 64, "k"), MF_ECORRUPT);
}

/* --------------------------------------------------------- chunking */

static void check_chunks(const uint8_t *data, size_t len, bool aligned)
{
    size_t off = 0, n = 0;
    while (off < len) {
        size_t c = aligned ? mf__cdc_cut_aligned(data + off, len - off)
                           : mf__cdc_cut_free(data + off, len - off);
        assert_true(c > 0 && c <= MF__CHUNK_MAX);
        if (off + c < len) {
            assert_true(c >= MF__CHUNK_MIN);
            if (aligned)
                assert_int_equal(c % MF__CHUNK_ALIGN, 0);
        }
        off += c;
        n++;
    }
    assert_int_equal(off, len);
    /* About 1 MiB on average (loose bounds: content-defined). */
    assert_true(n >= len / (3 * MiB) && n <= len / (MiB / 2) + 1);
}

static void test_chunker(void **state)
{
    (void)state;
    size_t len = 64 * MiB + 123;
    uint8_t *r = random_bytes(len, 1);
    uint8_t *t = text_bytes(len, 2);
    check_chunks(r, len, true);
    check_chunks(r, len, false);
    check_chunks(t, len, false);
    /* Short tails are one chunk. */
    assert_int_equal(mf__cdc_cut_free(r, 1000), 1000);
    assert_int_equal(mf__cdc_cut_aligned(r, MF__CHUNK_MIN), MF__CHUNK_MIN);
    /* Zeros never match the content condition: max-size chunks. */
    uint8_t *z = calloc(1, 9 * MiB);
    assert_int_equal(mf__cdc_cut_aligned(z, 9 * MiB) % MF__CHUNK_ALIGN, 0);
    free(z);
    free(r);
    free(t);
}

static void test_chunklist(void **state)
{
    (void)state;
    mf__chunk_ent ents[3];
    for (int i = 0; i < 3; i++) {
        memset(ents[i].key, i + 1, MF_SHA256_LEN);
        ents[i].len = (uint64_t)(i + 1) * 1000;
    }
    mf__chunklist cl = { 6000, MF__CL_FLAG_ALIGNED, 3, ents }, d;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__chunklist_encode(&cl, &b), MF_OK);
    assert_int_equal(b.size, MF__CL_HDR + 3 * MF__CL_ENTRY);
    assert_memory_equal(b.ptr, "MFCL\x01\x00\x00\x00", 8);
    assert_int_equal(mf__chunklist_decode(&d, (uint8_t *)b.ptr, b.size, "k"), MF_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.total, 6000);
    assert_int_equal(d.ents[2].off, 3000);
    assert_int_equal(mf__chunklist_find(&d, 0), 0);
    assert_int_equal(mf__chunklist_find(&d, 999), 0);
    assert_int_equal(mf__chunklist_find(&d, 1000), 1);
    assert_int_equal(mf__chunklist_find(&d, 5999), 2);
    mf__chunklist_clear(&d);
    for (size_t n = 0; n < b.size; n++)
        assert_int_equal(mf__chunklist_decode(&d, (uint8_t *)b.ptr, n, "k"), MF_ECORRUPT);
    /* Lengths that do not add up, a zero length, a huge count. */
    uint8_t *p = (uint8_t *)b.ptr;
    mf__le64_put(p + 8, 6001);
    assert_int_equal(mf__chunklist_decode(&d, p, b.size, "k"), MF_ECORRUPT);
    mf__le64_put(p + 8, 6000);
    mf__le64_put(p + MF__CL_HDR + 32, 0);
    assert_int_equal(mf__chunklist_decode(&d, p, b.size, "k"), MF_ECORRUPT);
    mf__le32_put(p + 16, 0xffffffffu);
    assert_int_equal(mf__chunklist_decode(&d, p, b.size, "k"), MF_ECORRUPT);
    mf__le32_put(p + 4, 2);
    assert_int_equal(mf__chunklist_decode(&d, p, b.size, "k"), MF_EVERSION);
    mf_buf_dispose(&b);
}

/* ------------------------------------------------------------- keys */

static void test_keys(void **state)
{
    (void)state;
    uint8_t key[MF_SHA256_LEN];
    mf_buf b = MF_BUF_INIT, f = MF_BUF_INIT, r = MF_BUF_INIT, s = MF_BUF_INIT,
           t = MF_BUF_INIT;
    for (int i = 0; i < MF_SHA256_LEN; i++)
        key[i] = (uint8_t)(0xab + i);
    assert_int_equal(mf__store_blob_key(key, &b), MF_OK);
    assert_string_equal(b.ptr,
        "data/ab/abacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9ca");
    assert_int_equal(mf_datastore_key_check(b.ptr), MF_OK);
    assert_int_equal(mf__store_run_key("Flow", "12", &b), MF_OK);
    assert_string_equal(b.ptr, "Flow/12/_run");
    assert_int_equal(mf__store_manifest_key("Flow", "12", "start", "3", 2, &b), MF_OK);
    assert_string_equal(b.ptr, "Flow/12/start/3/2.manifest");
    uint32_t a = 99;
    assert_true(mf__store_parse_manifest_key(b.ptr, &f, &r, &s, &t, &a));
    assert_string_equal(f.ptr, "Flow");
    assert_string_equal(r.ptr, "12");
    assert_string_equal(s.ptr, "start");
    assert_string_equal(t.ptr, "3");
    assert_int_equal(a, 2);
    assert_true(mf__store_parse_manifest_key("F/r/s/t/4294967295.manifest", NULL, NULL,
                                             NULL, NULL, &a));
    assert_int_equal(a, 4294967295u);
    static const char *bad[] = { "F/r/s/t/4294967296.manifest", "F/r/s/t/01.manifest",
                                 "F/r/s/t/.manifest", "F/r/s/t/x.manifest",
                                 "F/r/s/1.manifest", "F/r/s/t/u/1.manifest",
                                 "F//s/t/1.manifest", "F/r/s/t/1.manifes",
                                 "data/r/s/t/1.manifest", "F/r/s/t/1", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mf__store_parse_manifest_key(bad[i], NULL, NULL, NULL, NULL, &a));
    mf_buf_dispose(&b);
    mf_buf_dispose(&f);
    mf_buf_dispose(&r);
    mf_buf_dispose(&s);
    mf_buf_dispose(&t);
}

/* -------------------------------------------------------- round trips */

static void run_roundtrips(env *e)
{
    static const size_t sizes[] = { 0, 1, 1024, MiB, 20 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *r = random_bytes(sizes[i], i + 10);
        uint8_t *t = text_bytes(sizes[i], i + 20);
        roundtrip(e->st, r, sizes[i], 0);
        roundtrip(e->st, t, sizes[i], 0);
        roundtrip(e->st, t, sizes[i], MF_PUT_RAW);
        free(r);
        free(t);
    }
    /* Just above the chunking threshold, and not a page multiple. */
    uint8_t *r = random_bytes(MF_STORE_CHUNK_THRESHOLD + 1, 5);
    roundtrip(e->st, r, MF_STORE_CHUNK_THRESHOLD + 1, 0);
    roundtrip(e->st, r, MF_STORE_CHUNK_THRESHOLD, 0);
    free(r);
}

static void test_roundtrip_mem(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    run_roundtrips(&e);
    env_done(&e);
}

static void test_roundtrip_fs(void **state)
{
    (void)state;
    env e;
    env_fs(&e);
    run_roundtrips(&e);
    env_done(&e);
}

static void test_dedupe(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint8_t *a = random_bytes(1000, 1);
    uint8_t *big = random_bytes(20 * MiB, 2);
    uint8_t k1[MF_SHA256_LEN], k2[MF_SHA256_LEN];
    assert_int_equal(mf__store_put(e.st, a, 1000, 0, k1), MF_OK);
    size_t n = count_blobs(e.ds);
    assert_int_equal(n, 1);
    assert_int_equal(mf__store_put(e.st, a, 1000, 0, k2), MF_OK);
    assert_memory_equal(k1, k2, MF_SHA256_LEN);
    assert_int_equal(count_blobs(e.ds), 1);
    /* Chunked: same key, no new blob the second time. */
    assert_int_equal(mf__store_put(e.st, big, 20 * MiB, 0, k1), MF_OK);
    n = count_blobs(e.ds);
    assert_true(n >= 1 + 1 + 5); /* small blob, chunk list, >= 5 chunks */
    mf__store_stats s1, s2;
    mf__store_stats_get(e.st, &s1);
    assert_int_equal(mf__store_put(e.st, big, 20 * MiB, 0, k2), MF_OK);
    mf__store_stats_get(e.st, &s2);
    assert_memory_equal(k1, k2, MF_SHA256_LEN);
    assert_int_equal(count_blobs(e.ds), n);
    assert_int_equal(s2.blobs_written, s1.blobs_written);
    assert_int_equal(s2.blobs_existing - s1.blobs_existing, n - 1);
    free(a);
    free(big);
    env_done(&e);
}

static void test_codec_choice(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint8_t key[MF_SHA256_LEN];
    uint8_t *r = random_bytes(MiB, 1);
    uint8_t *z = calloc(1, MiB);
    mf__blob_hdr h;

    assert_int_equal(mf__store_put(e.st, r, MiB, 0, key), MF_OK);
    h = header_of(e.ds, key);
    assert_int_equal(h.codec, MF__CODEC_RAW);
    assert_int_equal(h.hdr_len, 4096); /* payload page-aligned */
    assert_int_equal(h.kind, MF__KIND_DATA);

    assert_int_equal(mf__store_put(e.st, z, MiB, 0, key), MF_OK);
    h = header_of(e.ds, key);
    assert_int_equal(h.codec, MF__CODEC_ZSTD);
    assert_int_equal(h.hdr_len, 64);
    assert_true(h.payload_len < MiB / 100);

    z[0] = 1; /* a different value, or it would dedupe to the zstd blob */
    assert_int_equal(mf__store_put(e.st, z, MiB, MF_PUT_RAW, key), MF_OK);
    h = header_of(e.ds, key);
    assert_int_equal(h.codec, MF__CODEC_RAW);

    /* Small values: 64-byte header. */
    assert_int_equal(mf__store_put(e.st, r, 100, 0, key), MF_OK);
    h = header_of(e.ds, key);
    assert_int_equal(h.codec, MF__CODEC_RAW);
    assert_int_equal(h.hdr_len, 64);

    /* Chunked compressible: the top blob is a chunk list, chunks zstd. */
    uint8_t *t = text_bytes(20 * MiB, 3);
    assert_int_equal(mf__store_put(e.st, t, 20 * MiB, 0, key), MF_OK);
    h = header_of(e.ds, key);
    assert_int_equal(h.kind, MF__KIND_CHUNKS);
    mf__value v;
    assert_int_equal(mf__value_open(&v, e.st, key), MF_OK);
    assert_true(v.chunked);
    assert_int_equal(v.cl.flags & MF__CL_FLAG_ALIGNED, 0);
    for (size_t i = 0; i < v.cl.n; i++)
        assert_int_equal(header_of(e.ds, v.cl.ents[i].key).codec, MF__CODEC_ZSTD);
    mf__value_close(&v);
    free(t);
    free(r);
    free(z);
    env_done(&e);
}

/* ------------------------------------------------------- corruption */

static void expect_corrupt(mf_store *st, const uint8_t key[MF_SHA256_LEN],
                           const char *name_in_msg)
{
    mf_buf out = MF_BUF_INIT;
    assert_int_equal(mf__store_get(st, key, &out), MF_ECORRUPT);
    if (!strstr(mf_error_last(), name_in_msg))
        fail_msg("message '%s' does not name '%s'", mf_error_last(), name_in_msg);
    assert_int_equal(out.size, 0);
    mf_buf_dispose(&out);
}

static void test_corruption(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint8_t key[MF_SHA256_LEN];
    char k[80], hex[MF_SHA256_HEX + 1];
    static const struct { size_t len; bool text; } cases[] = {
        { 100, false }, { MiB, false }, { MiB, true } };
    for (size_t c = 0; c < 3; c++) {
        uint8_t *d = cases[c].text ? text_bytes(cases[c].len, c) : random_bytes(cases[c].len, c);
        assert_int_equal(mf__store_put(e.st, d, cases[c].len, 0, key), MF_OK);
        dskey_of(key, k);
        hex_of(key, hex);
        mf__blob_hdr h = header_of(e.ds, key);
        /* header bit, then payload bit (first, last byte) */
        const uint64_t offs[] = { 20, h.hdr_len, h.hdr_len + h.payload_len - 1 };
        for (int i = 0; i < 3; i++) {
            assert_int_equal(mf_test_memstore_corrupt(e.ds, k, offs[i], 0x10), MF_OK);
            expect_corrupt(e.st, key, hex);
            assert_int_equal(mf__store_verify_blob(e.st, k), MF_ECORRUPT);
            assert_int_equal(mf_test_memstore_corrupt(e.ds, k, offs[i], 0x10), MF_OK);
            roundtrip(e.st, d, cases[c].len, 0);
            assert_int_equal(mf__store_verify_blob(e.st, k), MF_OK);
        }
        /* Truncated (by one byte, and to the header), then extended. */
        mf_buf all = MF_BUF_INIT;
        assert_int_equal(e.ds->get(e.ds, k, 0, MF_DS_TO_END, &all), MF_OK);
        const uint64_t lens[] = { all.size - 1, h.hdr_len, 10, all.size + 1 };
        for (int i = 0; i < 4; i++) {
            char *copy = calloc(1, lens[i]);
            memcpy(copy, all.ptr, lens[i] < all.size ? lens[i] : all.size);
            mf_ds_iovec iov = { copy, lens[i] };
            assert_int_equal(e.ds->put(e.ds, k, &iov, 1, 0), MF_OK);
            expect_corrupt(e.st, key, hex);
            free(copy);
        }
        mf_ds_iovec iov = { all.ptr, all.size };
        assert_int_equal(e.ds->put(e.ds, k, &iov, 1, 0), MF_OK);
        mf_buf_dispose(&all);
        free(d);
    }
    env_done(&e);
}

static void test_chunked_damage(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint8_t key[MF_SHA256_LEN];
    char lk[80], ck[80], chex[MF_SHA256_HEX + 1];
    uint8_t *d = random_bytes(20 * MiB, 9);
    assert_int_equal(mf__store_put(e.st, d, 20 * MiB, 0, key), MF_OK);
    mf__value v;
    assert_int_equal(mf__value_open(&v, e.st, key), MF_OK);
    assert_true(v.chunked && v.cl.n >= 5);
    assert_true(v.cl.flags & MF__CL_FLAG_ALIGNED);
    dskey_of(key, lk);
    dskey_of(v.cl.ents[2].key, ck);
    hex_of(v.cl.ents[2].key, chex);

    /* A flipped payload byte of one chunk. */
    assert_int_equal(mf_test_memstore_corrupt(e.ds, ck, 4096 + 5, 1), MF_OK);
    expect_corrupt(e.st, key, chex);
    assert_int_equal(mf_test_memstore_corrupt(e.ds, ck, 4096 + 5, 1), MF_OK);

    /* A flipped byte of the chunk list itself. */
    assert_int_equal(mf_test_memstore_corrupt(e.ds, lk, 64 + 30, 1), MF_OK);
    hex_of(key, chex);
    expect_corrupt(e.st, key, chex);
    assert_int_equal(mf_test_memstore_corrupt(e.ds, lk, 64 + 30, 1), MF_OK);
    assert_int_equal(mf__store_verify_blob(e.st, lk), MF_OK);

    /* A missing chunk. */
    mf_buf saved = MF_BUF_INIT;
    assert_int_equal(e.ds->get(e.ds, ck, 0, MF_DS_TO_END, &saved), MF_OK);
    assert_int_equal(e.ds->del(e.ds, ck), MF_OK);
    hex_of(v.cl.ents[2].key, chex);
    expect_corrupt(e.st, key, chex);
    assert_non_null(strstr(mf_error_last(), "missing"));
    assert_int_equal(mf__store_verify_blob(e.st, lk), MF_ECORRUPT);
    /* Ranges that avoid the chunk still read. */
    mf_buf out = MF_BUF_INIT;
    assert_int_equal(mf__store_get_range(e.st, key, MF_STORE_ANY_SIZE, 0, 1000, &out), MF_OK);
    assert_memory_equal(out.ptr, d, 1000);
    assert_int_equal(mf__store_get_range(e.st, key, MF_STORE_ANY_SIZE, v.cl.ents[2].off, 10,
                                         &out),
                     MF_ECORRUPT);
    mf_ds_iovec iov = { saved.ptr, saved.size };
    assert_int_equal(e.ds->put(e.ds, ck, &iov, 1, 0), MF_OK);
    roundtrip(e.st, d, 20 * MiB, 0);

    /* A missing value. */
    uint8_t nokey[MF_SHA256_LEN] = { 1 };
    assert_int_equal(mf__store_get(e.st, nokey, &out), MF_ENOTFOUND);
    mf_buf_dispose(&out);
    mf_buf_dispose(&saved);
    mf__value_close(&v);
    free(d);
    env_done(&e);
}

static void test_put_failure(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint8_t key[MF_SHA256_LEN];
    uint8_t *d = random_bytes(20 * MiB, 4);
    mf_test_memstore_fail_after(e.ds, MF_TEST_MEMSTORE_PUT, 2, MF_EIO, 1);
    assert_int_equal(mf__store_put(e.st, d, 20 * MiB, 0, key), MF_EIO);
    assert_int_equal(mf__store_put(e.st, d, 20 * MiB, 0, key), MF_OK);
    roundtrip(e.st, d, 20 * MiB, 0);
    mf_test_memstore_fail_next(e.ds, MF_EIO, 1);
    assert_int_equal(mf__store_put(e.st, d, 10, 0, key), MF_EIO);
    free(d);
    env_done(&e);
}

/* Many threads putting and reading the same and different values through
 * one store: every value must read back intact, shared blobs stored once. */
typedef struct conc_arg {
    mf_store *st;
    const uint8_t *shared;
    size_t shared_len;
    uint64_t seed;
    int rc;
    uint8_t key[MF_SHA256_LEN];
} conc_arg;

static void *conc_main(void *p)
{
    conc_arg *a = p;
    size_t own_len = 6 * MiB + (size_t)a->seed * 1000;
    uint8_t *own = malloc(own_len);
    uint8_t k[MF_SHA256_LEN];
    mf_buf out = MF_BUF_INIT;
    mf_test_fill_random(own, own_len, a->seed);
    a->rc = mf__store_put(a->st, a->shared, a->shared_len, 0, a->key);
    if (a->rc == MF_OK)
        a->rc = mf__store_put(a->st, own, own_len, 0, k);
    if (a->rc == MF_OK)
        a->rc = mf__store_get(a->st, k, &out);
    if (a->rc == MF_OK && (out.size != own_len || memcmp(out.ptr, own, own_len) != 0))
        a->rc = MF_ERROR;
    if (a->rc == MF_OK)
        a->rc = mf__store_get(a->st, a->key, &out);
    if (a->rc == MF_OK &&
        (out.size != a->shared_len || memcmp(out.ptr, a->shared, a->shared_len) != 0))
        a->rc = MF_ERROR;
    mf_buf_dispose(&out);
    free(own);
    return NULL;
}

/* A blob cut short after its write (a power loss before the commit's sync)
 * is rewritten by the next put of the same value, compressed or raw, and
 * the value reads back whole. */
static void test_short_blob_repaired(void **state)
{
    (void)state;
    for (int text = 0; text < 2; text++) {
        env e;
        env_fs(&e);
        size_t len = 1 * MiB;
        uint8_t *d = text ? text_bytes(len, 31) : random_bytes(len, 31);
        uint8_t key[MF_SHA256_LEN];
        assert_int_equal(mf__store_put(e.st, d, len, 0, key), MF_OK);
        char hex[MF_SHA256_HEX + 1], path[4096];
        mf__hex(key, MF_SHA256_LEN, hex);
        snprintf(path, sizeof path, "%s/data/%.2s/%s", e.dir, hex, hex);
        size_t flen = 0;
        uint8_t *blob = mf_test_read_file(path, &flen);
        assert_non_null(blob);
        assert_int_equal(mf_test_write_file(path, blob, flen / 3), 0);
        free(blob);
        mf_buf out = MF_BUF_INIT;
        assert_int_equal(mf__store_get(e.st, key, &out), MF_ECORRUPT);
        mf__store_stats s0, s1;
        mf__store_stats_get(e.st, &s0);
        uint8_t key2[MF_SHA256_LEN];
        assert_int_equal(mf__store_put(e.st, d, len, 0, key2), MF_OK);
        assert_memory_equal(key, key2, MF_SHA256_LEN);
        mf__store_stats_get(e.st, &s1);
        assert_int_equal(s1.blobs_written - s0.blobs_written, 1);
        assert_int_equal(mf__store_get(e.st, key, &out), MF_OK);
        assert_int_equal(out.size, len);
        assert_memory_equal(out.ptr, d, len);
        /* A whole blob is not written again. */
        assert_int_equal(mf__store_put(e.st, d, len, 0, key2), MF_OK);
        mf__store_stats_get(e.st, &s0);
        assert_int_equal(s0.blobs_written, s1.blobs_written);
        mf_buf_dispose(&out);
        free(d);
        env_done(&e);
    }
}

/* A data value equal to a chunk list's bytes gets a key of its own, so
 * neither can shadow the other. */
static void test_chunklist_key_separate(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    size_t len = 30 * MiB;
    uint8_t *d = random_bytes(len, 41);
    uint8_t key[MF_SHA256_LEN], key2[MF_SHA256_LEN], sha[MF_SHA256_LEN];
    assert_int_equal(mf__store_put(e.st, d, len, 0, key), MF_OK);
    char dskey[80];
    mf__blob_dskey(key, dskey);
    mf_buf blob = MF_BUF_INIT;
    assert_int_equal(e.ds->get(e.ds, dskey, 0, MF_DS_TO_END, &blob), MF_OK);
    mf__blob_hdr h;
    assert_int_equal(mf__blob_hdr_decode(&h, (const uint8_t *)blob.ptr, blob.size, dskey), MF_OK);
    assert_int_equal(h.kind, MF__KIND_CHUNKS);
    assert_int_equal(h.codec, MF__CODEC_RAW);
    const uint8_t *list = (const uint8_t *)blob.ptr + h.hdr_len;
    size_t list_len = (size_t)h.raw_len;
    /* The chunk list's key is its SHA-256 with the last byte complemented. */
    assert_int_equal(mf__sha256(list, list_len, sha), MF_OK);
    sha[MF_SHA256_LEN - 1] ^= 0xff;
    assert_memory_equal(sha, key, MF_SHA256_LEN);
    /* The same bytes as a data value: another key, both read back. */
    assert_int_equal(mf__store_put(e.st, list, list_len, 0, key2), MF_OK);
    assert_memory_not_equal(key, key2, MF_SHA256_LEN);
    assert_int_equal(mf__sha256(list, list_len, sha), MF_OK);
    assert_memory_equal(sha, key2, MF_SHA256_LEN);
    mf_buf out = MF_BUF_INIT;
    assert_int_equal(mf__store_get(e.st, key2, &out), MF_OK);
    assert_int_equal(out.size, list_len);
    assert_memory_equal(out.ptr, list, list_len);
    assert_int_equal(mf__store_get(e.st, key, &out), MF_OK);
    assert_int_equal(out.size, len);
    assert_memory_equal(out.ptr, d, len);
    char dskey2[80];
    mf__blob_dskey(key2, dskey2);
    assert_int_equal(mf__store_verify_blob(e.st, dskey), MF_OK);
    assert_int_equal(mf__store_verify_blob(e.st, dskey2), MF_OK);
    mf_buf_dispose(&out);
    mf_buf_dispose(&blob);
    free(d);
    env_done(&e);
}

static void test_concurrent(void **state)
{
    (void)state;
    env e;
    env_fs(&e);
    size_t len = 12 * MiB;
    uint8_t *shared = text_bytes(len, 11);
    pthread_t t[4];
    conc_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (conc_arg){ e.st, shared, len, (uint64_t)i + 1, -1, { 0 } };
        assert_int_equal(pthread_create(&t[i], NULL, conc_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, MF_OK);
        assert_memory_equal(a[i].key, a[0].key, MF_SHA256_LEN);
    }
    /* The shared value's blobs exist once: putting it again adds none. */
    size_t n = count_blobs(e.ds);
    uint8_t k[MF_SHA256_LEN];
    assert_int_equal(mf__store_put(e.st, shared, len, 0, k), MF_OK);
    assert_int_equal(count_blobs(e.ds), n);
    free(shared);
    env_done(&e);
}

/* ----------------------------------------------------------- ranges */

static void check_range(mf_store *st, const uint8_t key[MF_SHA256_LEN], const uint8_t *d,
                        uint64_t size, uint64_t off, uint64_t len)
{
    mf_buf out = MF_BUF_INIT;
    assert_int_equal(mf__store_get_range(st, key, MF_STORE_ANY_SIZE, off, len, &out), MF_OK);
    uint64_t want = off + len > size ? size - off : len;
    assert_int_equal(out.size, want);
    if (want)
        assert_memory_equal(out.ptr, d + off, want);
    mf_buf_dispose(&out);
}

static void run_ranges(env *e, bool text)
{
    uint64_t size = 20 * MiB + 777;
    uint8_t *d = text ? text_bytes(size, 5) : random_bytes(size, 5);
    uint8_t key[MF_SHA256_LEN];
    assert_int_equal(mf__store_put(e->st, d, size, 0, key), MF_OK);
    mf__value v;
    assert_int_equal(mf__value_open(&v, e->st, key), MF_OK);
    assert_true(v.chunked && v.cl.n >= 3);
    for (size_t i = 1; i < v.cl.n; i++) {
        uint64_t b = v.cl.ents[i].off;
        check_range(e->st, key, d, size, b - 1, 2);     /* straddles */
        check_range(e->st, key, d, size, b - 100, 1);   /* just before */
        check_range(e->st, key, d, size, b, 1);         /* just after */
    }
    /* Across three chunks, the whole value, clamped tail, empty at end. */
    check_range(e->st, key, d, size, v.cl.ents[1].off - 10,
                v.cl.ents[2].len + 20);
    check_range(e->st, key, d, size, 0, UINT64_MAX);
    check_range(e->st, key, d, size, size - 5, 100);
    check_range(e->st, key, d, size, size, 10);
    mf_buf out = MF_BUF_INIT;
    assert_int_equal(mf__store_get_range(e->st, key, MF_STORE_ANY_SIZE, size + 1, 1, &out),
                     MF_ERANGE);
    /* Single blobs, raw and zstd. */
    assert_int_equal(mf__store_put(e->st, d, MiB, 0, key), MF_OK);
    check_range(e->st, key, d, MiB, 12345, 54321);
    check_range(e->st, key, d, MiB, MiB - 1, 54321);
    assert_int_equal(mf__store_get_range(e->st, key, MF_STORE_ANY_SIZE, MiB + 1, 1, &out),
                     MF_ERANGE);
    mf_buf_dispose(&out);
    mf__value_close(&v);
    free(d);
}

static void test_ranges(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    run_ranges(&e, false);
    run_ranges(&e, true);
    env_done(&e);
    env_fs(&e);
    run_ranges(&e, false);
    run_ranges(&e, true);
    env_done(&e);
}

/* ---------------------------------------------------------- mapping */

/* Permissions of the mapping holding `p`, from /proc/self/maps ("r--s"). */
static void perms_of(const void *p, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    strcpy(perms, "????");
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char pr[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, pr) == 3 &&
            (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            memcpy(perms, pr, 5);
            break;
        }
    }
    fclose(f);
}

/* Every page of [p, p + len) is readable and none writable. */
static void assert_read_only(const void *p, uint64_t len, bool shared_file)
{
    long page = sysconf(_SC_PAGESIZE);
    for (uint64_t off = 0; off < len; off += (uint64_t)page * 64) {
        char perms[5];
        perms_of((const char *)p + off, perms);
        assert_int_equal(perms[0], 'r');
        assert_int_equal(perms[1], '-');
        assert_int_equal(perms[3], shared_file ? 's' : 'p');
    }
}

static void test_map(void **state)
{
    (void)state;
    env e;
    env_fs(&e);
    uint64_t size = 20 * MiB;
    uint8_t *r = random_bytes(size, 6);
    uint8_t *t = text_bytes(size, 7);
    uint8_t key[MF_SHA256_LEN];
    mf__mapping *m;
    const void *p;
    uint64_t len;
    int zc = -1;

    assert_int_equal(mf__store_put(e.st, r, size, MF_PUT_RAW, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 1);
    assert_int_equal(len, size);
    assert_memory_equal(p, r, size);
    assert_read_only(p, len, true);
    mf__mapping_free(m);

    /* Not a page multiple, default flags, single raw blob. */
    assert_int_equal(mf__store_put(e.st, r, size - 1000, 0, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 1);
    assert_memory_equal(p, r, size - 1000);
    mf__mapping_free(m);
    assert_int_equal(mf__store_put(e.st, r, 3 * MiB + 5, 0, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 1);
    assert_int_equal(len, 3 * MiB + 5);
    assert_memory_equal(p, r, len);
    mf__mapping_free(m);

    /* Compressible: copied, verified, read-only. */
    assert_int_equal(mf__store_put(e.st, t, size, 0, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 0);
    assert_int_equal(len, size);
    assert_memory_equal(p, t, size);
    assert_read_only(p, len, false);
    mf__mapping_free(m);

    /* Small and empty values. */
    assert_int_equal(mf__store_put(e.st, r, 100, 0, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 0);
    assert_memory_equal(p, r, 100);
    mf__mapping_free(m);
    assert_int_equal(mf__store_put(e.st, r, 0, 0, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(len, 0);
    assert_non_null(p);
    mf__mapping_free(m);
    env_done(&e);

    /* Without local files nothing is zero-copy, but the bytes are right. */
    env_mem(&e);
    assert_int_equal(mf__store_put(e.st, r, size, MF_PUT_RAW, key), MF_OK);
    assert_int_equal(mf__store_map(e.st, key, &m, &p, &len, &zc), MF_OK);
    assert_int_equal(zc, 0);
    assert_memory_equal(p, r, size);
    assert_read_only(p, len, false);
    mf__mapping_free(m);
    env_done(&e);
    free(r);
    free(t);
}

/* --------------------------------------------------- partial re-save */

static void test_resave(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    uint64_t size = 40 * MiB;
    uint8_t *d = random_bytes(size, 8);
    uint8_t k1[MF_SHA256_LEN], k2[MF_SHA256_LEN];
    assert_int_equal(mf__store_put(e.st, d, size, 0, k1), MF_OK);
    /* 1% changed in place, contiguously, in the middle. */
    mf_test_fill_random(d + size / 2, size / 100, 99);
    mf__store_stats s1, s2;
    mf__store_stats_get(e.st, &s1);
    assert_int_equal(mf__store_put(e.st, d, size, 0, k2), MF_OK);
    mf__store_stats_get(e.st, &s2);
    assert_memory_not_equal(k1, k2, MF_SHA256_LEN);
    uint64_t fresh = s2.bytes_written - s1.bytes_written;
    print_message("re-save of 40 MiB with 1%% changed stored %llu bytes in %llu blobs\n",
                  (unsigned long long)fresh,
                  (unsigned long long)(s2.blobs_written - s1.blobs_written));
    /* The changed 400 KiB spans at most 2 chunks of at most 4 MiB. */
    assert_true(fresh <= 8 * MiB + 64 * 1024);
    roundtrip(e.st, d, size, 0);

    /* Compressible data with 1% changed: also only a few chunks. */
    uint8_t *t = text_bytes(size, 9);
    assert_int_equal(mf__store_put(e.st, t, size, 0, k1), MF_OK);
    fill_text(t + size / 3, size / 100, 1234);
    mf__store_stats_get(e.st, &s1);
    assert_int_equal(mf__store_put(e.st, t, size, 0, k2), MF_OK);
    mf__store_stats_get(e.st, &s2);
    assert_true(s2.blobs_written - s1.blobs_written <= 4);
    free(t);
    free(d);
    env_done(&e);
}

/* --------------------------------------------------------- manifests */

static void make_part(mf__part *p, const void *data, size_t len, bool inl)
{
    memset(p, 0, sizeof *p);
    mf__sha256(data, len, p->key);
    p->size = len;
    if (inl) {
        p->inline_data = malloc(len ? len : 1);
        memcpy(p->inline_data, data, len);
    }
}

static void make_manifest(mf__manifest *m)
{
    memset(m, 0, sizeof *m);
    m->format = MF_MANIFEST_FORMAT;
    m->flow = strdup("Flow");
    m->run_id = strdup("1700000000");
    m->step = strdup("train");
    m->task_id = strdup("7");
    m->attempt = 2;
    m->status = MF_TASK_SUCCEEDED;
    m->started_us = -5;
    m->finished_us = INT64_MAX;
    m->foreach_depth = 2;
    m->foreach_index = calloc(2, sizeof(uint32_t));
    m->foreach_nsplits = calloc(2, sizeof(uint32_t));
    m->foreach_value = calloc(2, sizeof(char *));
    m->foreach_index[0] = 1;
    m->foreach_nsplits[0] = 3;
    m->foreach_value[0] = strdup("b");
    m->foreach_index[1] = UINT32_MAX;
    m->foreach_nsplits[1] = UINT32_MAX;
    m->ninputs = 1;
    m->input_paths = calloc(1, sizeof(char *));
    m->input_paths[0] = strdup("1700000000/start/1");
    /* Deliberately unsorted: encode sorts. */
    m->nartifacts = 3;
    m->artifacts = calloc(3, sizeof *m->artifacts);
    const char *names[] = { "zeta", "alpha", "_private" };
    for (int i = 0; i < 3; i++) {
        mf__martifact *a = &m->artifacts[i];
        a->name = strdup(names[i]);
        a->encoding = strdup("pickle5");
        a->nparts = i == 1 ? 2 : 1;
        a->parts = calloc(a->nparts, sizeof *a->parts);
        make_part(&a->parts[0], names[i], strlen(names[i]), i != 0);
        if (a->nparts == 2)
            make_part(&a->parts[1], "", 0, true);
    }
    /* extra = {"next": ["a", "b"]} */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "next", 4);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_str_with_body(&pk, "b", 1);
    mf__buf_set(&m->extra, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Recompute the trailing checksum after editing an encoded manifest. */
static void fix_check(uint8_t *p, size_t len)
{
    uint64_t x = mf__xxh64(p, len - 8, 0);
    for (int i = 0; i < 8; i++)
        p[len - 8 + (size_t)i] = (uint8_t)(x >> (56 - 8 * i));
}

static void test_manifest_roundtrip(void **state)
{
    (void)state;
    mf__manifest m, d;
    make_manifest(&m);
    mf_buf b = MF_BUF_INIT, b2 = MF_BUF_INIT;
    assert_int_equal(mf__manifest_encode(&m, &b), MF_OK);
    assert_int_equal(mf__manifest_decode(&d, b.ptr, b.size, "F/m"), MF_OK);
    assert_int_equal(d.format, 1);
    assert_string_equal(d.flow, "Flow");
    assert_string_equal(d.run_id, "1700000000");
    assert_string_equal(d.step, "train");
    assert_string_equal(d.task_id, "7");
    assert_int_equal(d.attempt, 2);
    assert_int_equal(d.status, MF_TASK_SUCCEEDED);
    assert_true(d.started_us == -5 && d.finished_us == INT64_MAX);
    assert_int_equal(d.foreach_depth, 2);
    assert_int_equal(d.foreach_index[1], UINT32_MAX);
    assert_string_equal(d.foreach_value[0], "b");
    assert_null(d.foreach_value[1]);
    assert_int_equal(d.ninputs, 1);
    assert_string_equal(d.input_paths[0], "1700000000/start/1");
    assert_int_equal(d.nartifacts, 3);
    assert_string_equal(d.artifacts[0].name, "_private");
    assert_string_equal(d.artifacts[1].name, "alpha");
    assert_string_equal(d.artifacts[2].name, "zeta");
    assert_int_equal(d.artifacts[1].nparts, 2);
    assert_non_null(d.artifacts[1].parts[1].inline_data);
    assert_int_equal(d.artifacts[1].parts[1].size, 0);
    assert_memory_equal(d.artifacts[1].parts[0].inline_data, "alpha", 5);
    assert_null(d.artifacts[2].parts[0].inline_data);
    assert_memory_equal(d.artifacts[2].parts[0].key, m.artifacts[0].parts[0].key, 32);
    assert_int_equal(d.extra.size, m.extra.size);
    assert_memory_equal(d.extra.ptr, m.extra.ptr, m.extra.size);
    /* Deterministic: decode + encode gives the same bytes. */
    assert_int_equal(mf__manifest_encode(&d, &b2), MF_OK);
    assert_int_equal(b2.size, b.size);
    assert_memory_equal(b2.ptr, b.ptr, b.size);
    mf__manifest_clear(&d);
    assert_null(d.flow);
    mf__manifest_clear(&d); /* twice is fine */

    /* Duplicates do not encode. */
    free(m.artifacts[2].name);
    m.artifacts[2].name = strdup("zeta");
    assert_int_equal(mf__manifest_encode(&m, &b2), MF_EINVAL);
    mf__manifest_clear(&m);
    mf_buf_dispose(&b);
    mf_buf_dispose(&b2);
}

/* A manifest map with an unknown key and valid checksum. */
static void test_manifest_forward_compat(void **state)
{
    (void)state;
    mf__manifest m, d;
    make_manifest(&m);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__manifest_encode(&m, &b), MF_OK);
    /* Rewrite: map header 0x8e (14 entries) -> 0x8f, and insert
     * "zz_future": 42 before the trailer. */
    uint8_t *p = (uint8_t *)b.ptr;
    assert_int_equal(p[0], 0x8e);
    mf_buf n = MF_BUF_INIT;
    uint8_t first = 0x8f;
    mf__buf_put(&n, &first, 1);
    mf__buf_put(&n, p + 1, b.size - 1 - 15);
    const uint8_t add[] = { 0xa9, 'z', 'z', '_', 'f', 'u', 't', 'u', 'r', 'e', 42 };
    mf__buf_put(&n, add, sizeof add);
    mf__buf_put(&n, p + b.size - 15, 15);
    fix_check((uint8_t *)n.ptr, n.size);
    assert_int_equal(mf__manifest_decode(&d, n.ptr, n.size, "m"), MF_OK);
    assert_int_equal(d.nartifacts, 3);
    mf__manifest_clear(&d);
    /* A newer format number: MF_EVERSION, whatever follows. */
    size_t fpos = 1 + 7; /* after 0x8f and "format" fixstr */
    assert_int_equal(((uint8_t *)n.ptr)[fpos], 1);
    ((uint8_t *)n.ptr)[fpos] = 2;
    assert_int_equal(mf__manifest_decode(&d, n.ptr, n.size, "m"), MF_EVERSION);
    fix_check((uint8_t *)n.ptr, n.size);
    assert_int_equal(mf__manifest_decode(&d, n.ptr, n.size, "m"), MF_EVERSION);
    mf_buf_dispose(&n);
    mf_buf_dispose(&b);
    mf__manifest_clear(&m);
}

static void test_manifest_hostile(void **state)
{
    (void)state;
    mf__manifest m, d;
    make_manifest(&m);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__manifest_encode(&m, &b), MF_OK);
    uint8_t *p = (uint8_t *)b.ptr;
    /* Every truncation. */
    for (size_t n = 0; n < b.size; n++) {
        int rc = mf__manifest_decode(&d, p, n, "m");
        assert_int_equal(rc, MF_ECORRUPT);
    }
    /* Every single-bit flip is caught (structure or checksum); the format
     * byte may read as a newer version. */
    for (size_t bit = 0; bit < b.size * 8; bit++) {
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = mf__manifest_decode(&d, p, b.size, "m");
        if (rc != MF_ECORRUPT && rc != MF_EVERSION)
            fail_msg("bit %zu: rc %d", bit, rc);
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Hostile headers: map32 / array32 / str32 / bin32 declaring huge sizes. */
    static const uint8_t h1[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0 };
    static const uint8_t h2[] = { 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0 };
    static const uint8_t h3[] = { 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a' };
    static const uint8_t h4[] = { 0xc6, 0xff, 0xff, 0xff, 0xf0, 'a' };
    assert_int_equal(mf__manifest_decode(&d, h1, sizeof h1, "m"), MF_ECORRUPT);
    assert_int_equal(mf__manifest_decode(&d, h2, sizeof h2, "m"), MF_ECORRUPT);
    assert_int_equal(mf__manifest_decode(&d, h3, sizeof h3, "m"), MF_ECORRUPT);
    assert_int_equal(mf__manifest_decode(&d, h4, sizeof h4, "m"), MF_ECORRUPT);
    assert_int_equal(mf__manifest_decode(&d, "", 0, "m"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "m"));
    /* Valid checksum, bad content: artifacts out of order. */
    mf__manifest_clear(&m);
    make_manifest(&m);
    mf_buf_dispose(&b);
    assert_int_equal(mf__manifest_encode(&m, &b), MF_OK);
    p = (uint8_t *)b.ptr;
    char *z = memmem(p, b.size, "_private", 8);
    assert_non_null(z);
    z[0] = 'z'; /* "zprivate" now sorts after "alpha" and "zeta"? "zp" > "ze" */
    fix_check(p, b.size);
    assert_int_equal(mf__manifest_decode(&d, p, b.size, "m"), MF_ECORRUPT);
    z[0] = '_';
    /* Inline bytes that do not match their key. */
    char *al = memmem(p, b.size, "\xc4\x05" "alpha", 7);
    assert_non_null(al);
    al[2] = 'A';
    fix_check(p, b.size);
    assert_int_equal(mf__manifest_decode(&d, p, b.size, "m"), MF_ECORRUPT);
    al[2] = 'a';
    fix_check(p, b.size);
    assert_int_equal(mf__manifest_decode(&d, p, b.size, "m"), MF_OK);
    mf__manifest_clear(&d);
    /* A NUL inside a name. */
    char *fl = memmem(p, b.size, "Flow", 4);
    fl[1] = '\0';
    fix_check(p, b.size);
    assert_int_equal(mf__manifest_decode(&d, p, b.size, "m"), MF_ECORRUPT);
    mf_buf_dispose(&b);
    mf__manifest_clear(&m);
}

/* --------------------------------------------------------------- gc */

/* A manifest referencing `n` values by key (not inlined). */
static void put_manifest(mf_datastore *ds, const char *task, const uint8_t (*keys)[32],
                         size_t n)
{
    mf__manifest m;
    memset(&m, 0, sizeof m);
    m.format = MF_MANIFEST_FORMAT;
    m.flow = "GcFlow";
    m.run_id = "1";
    m.step = "start";
    m.task_id = (char *)task;
    m.nartifacts = n;
    mf__martifact arts[8];
    mf__part parts[8];
    char names[8][8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "a%zu", i);
        memset(&parts[i], 0, sizeof parts[i]);
        memcpy(parts[i].key, keys[i], 32);
        parts[i].size = 1;
        arts[i] = (mf__martifact){ names[i], "raw", 1, &parts[i] };
    }
    m.artifacts = arts;
    mf_buf b = MF_BUF_INIT, k = MF_BUF_INIT;
    assert_int_equal(mf__manifest_encode(&m, &b), MF_OK);
    assert_int_equal(mf__store_manifest_key("GcFlow", "1", "start", task, 0, &k), MF_OK);
    mf_ds_iovec iov = { b.ptr, b.size };
    assert_int_equal(ds->put(ds, k.ptr, &iov, 1, 0), MF_OK);
    mf_buf_dispose(&b);
    mf_buf_dispose(&k);
}

typedef struct aging {
    env *e;
    int64_t mtime;
} aging;

static void set_mtime(env *e, const char *key, int64_t mtime)
{
    if (!e->dir) {
        assert_int_equal(mf_test_memstore_set_mtime(e->ds, key, mtime), MF_OK);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", e->dir, key);
    struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int age_cb(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    (void)size; (void)mtime;
    aging *a = payload;
    set_mtime(a->e, key, a->mtime);
    return 0;
}

static void age_all(env *e, int64_t mtime)
{
    aging a = { e, mtime };
    assert_int_equal(e->ds->list(e->ds, "data/", age_cb, &a), MF_OK);
}

static bool blob_exists(env *e, const uint8_t key[32])
{
    char k[80];
    dskey_of(key, k);
    return e->ds->exists(e->ds, k, NULL) == MF_OK;
}

static void run_gc(env *e)
{
    int64_t old = (int64_t)time(NULL) - 7200;
    uint8_t keys[6][32];
    uint8_t *small = random_bytes(5000, 1);
    uint8_t *big = random_bytes(12 * MiB, 2);
    uint8_t *orphan_big = text_bytes(12 * MiB, 3);
    uint8_t *young = random_bytes(3000, 4);
    uint8_t *revived = random_bytes(2000, 5);
    assert_int_equal(mf__store_put(e->st, small, 5000, 0, keys[0]), MF_OK);
    assert_int_equal(mf__store_put(e->st, big, 12 * MiB, 0, keys[1]), MF_OK);
    assert_int_equal(mf__store_put(e->st, orphan_big, 12 * MiB, 0, keys[2]), MF_OK);
    assert_int_equal(mf__store_put(e->st, revived, 2000, 0, keys[4]), MF_OK);
    put_manifest(e->ds, "1", (const uint8_t (*)[32])keys, 2);
    size_t total = count_blobs(e->ds);
    age_all(e, old);
    /* Written after aging: young. */
    assert_int_equal(mf__store_put(e->st, young, 3000, 0, keys[3]), MF_OK);
    /* An old orphan a new writer puts again: refreshed, survives. */
    assert_int_equal(mf__store_put(e->st, revived, 2000, 0, keys[5]), MF_OK);
    total++;

    mf__value v;
    assert_int_equal(mf__value_open(&v, e->st, keys[1]), MF_OK);
    size_t live = 2 + v.cl.n;
    mf__value orphan;
    assert_int_equal(mf__value_open(&orphan, e->st, keys[2]), MF_OK);
    size_t swept = 1 + orphan.cl.n;
    assert_int_equal(total, live + swept + 2);

    mf_gc_stats s = { MF_GC_STATS_VERSION, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(mf__store_gc(e->st, 3600, MF_GC_DRY_RUN, &s), MF_OK);
    assert_int_equal(s.manifests, 1);
    assert_int_equal(s.blobs, total);
    assert_int_equal(s.live, live);
    assert_int_equal(s.young, 2);
    assert_int_equal(s.swept, swept);
    assert_true(s.bytes_swept > 0);
    assert_int_equal(count_blobs(e->ds), total);

    /* A manifest that cannot be decoded: nothing is deleted. */
    mf_ds_iovec bad = { "\x81\xa1x", 3 };
    assert_int_equal(e->ds->put(e->ds, "GcFlow/1/start/9/0.manifest", &bad, 1, 0), MF_OK);
    assert_int_equal(mf__store_gc(e->st, 3600, 0, &s), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "GcFlow/1/start/9/0.manifest"));
    assert_int_equal(count_blobs(e->ds), total);
    assert_int_equal(e->ds->del(e->ds, "GcFlow/1/start/9/0.manifest"), MF_OK);

    memset(&s, 0, sizeof s);
    s.version = MF_GC_STATS_VERSION;
    assert_int_equal(mf__store_gc(e->st, 3600, 0, &s), MF_OK);
    assert_int_equal(s.swept, swept);
    assert_int_equal(count_blobs(e->ds), total - swept);
    assert_true(blob_exists(e, keys[0]));
    assert_true(blob_exists(e, keys[1]));
    for (size_t i = 0; i < v.cl.n; i++)
        assert_true(blob_exists(e, v.cl.ents[i].key));
    assert_false(blob_exists(e, keys[2]));
    for (size_t i = 0; i < orphan.cl.n; i++)
        assert_false(blob_exists(e, orphan.cl.ents[i].key));
    assert_true(blob_exists(e, keys[3]));
    assert_true(blob_exists(e, keys[4]));
    roundtrip(e->st, big, 12 * MiB, 0);

    /* Grace 0: the young orphans go too; live values never. */
    assert_int_equal(mf__store_gc(e->st, 0, 0, &s), MF_OK);
    assert_int_equal(s.swept, 2);
    assert_int_equal(s.live, live);
    assert_false(blob_exists(e, keys[3]));
    roundtrip(e->st, small, 5000, 0);
    assert_int_equal(mf__store_gc(e->st, 0, 0, NULL), MF_OK);

    mf__value_close(&v);
    mf__value_close(&orphan);
    free(small);
    free(big);
    free(orphan_big);
    free(young);
    free(revived);
}

static void test_gc_mem(void **state)
{
    (void)state;
    env e;
    env_mem(&e);
    run_gc(&e);
    env_done(&e);
}

static void test_gc_fs(void **state)
{
    (void)state;
    env e;
    env_fs(&e);
    run_gc(&e);
    env_done(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_header),
        cmocka_unit_test(test_chunker),
        cmocka_unit_test(test_chunklist),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_roundtrip_mem),
        cmocka_unit_test(test_roundtrip_fs),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_codec_choice),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_chunked_damage),
        cmocka_unit_test(test_put_failure),
        cmocka_unit_test(test_short_blob_repaired),
        cmocka_unit_test(test_chunklist_key_separate),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_resave),
        cmocka_unit_test(test_manifest_roundtrip),
        cmocka_unit_test(test_manifest_forward_compat),
        cmocka_unit_test(test_manifest_hostile),
        cmocka_unit_test(test_gc_mem),
        cmocka_unit_test(test_gc_fs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
