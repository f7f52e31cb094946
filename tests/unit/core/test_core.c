/* Unit tests of lib/core: buffers, string lists, names, hashing, the
 * msgpack bounds checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/core.h"
#include "core/mp.h"

static void buffers(void **state)
{
    (void)state;
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf__buf_puts(&b, "hello"), MF_OK);
    assert_int_equal(mf__buf_printf(&b, " %d %s", 42, "x"), MF_OK);
    assert_int_equal(b.size, 10);
    assert_string_equal(b.ptr, "hello 42 x");
    assert_true(b.reserved > b.size);
    mf__buf_clear(&b);
    assert_int_equal(b.size, 0);
    assert_string_equal(b.ptr, "");
    char big[10000];
    memset(big, 'z', sizeof big);
    assert_int_equal(mf__buf_set(&b, big, sizeof big), MF_OK);
    assert_int_equal(b.size, sizeof big);
    assert_int_equal(b.ptr[b.size], '\0');
    size_t n;
    char *p = mf__buf_detach(&b, &n);
    assert_int_equal(n, sizeof big);
    assert_null(b.ptr);
    free(p);
    /* A borrowed buffer is copied before it is changed. */
    char ext[] = "borrowed";
    mf_buf c = {ext, 0, 3};
    assert_int_equal(mf__buf_puts(&c, "!"), MF_OK);
    assert_string_equal(c.ptr, "bor!");
    assert_string_equal(ext, "borrowed");
    mf_buf_dispose(&c);
    mf_buf_dispose(&c);
    assert_null(c.ptr);
}

static void strlists(void **state)
{
    (void)state;
    mf_strlist *l = mf__strlist_new();
    assert_int_equal(mf__strlist_push(l, "b"), MF_OK);
    assert_int_equal(mf__strlist_push(l, "a"), MF_OK);
    assert_int_equal(mf__strlist_push(l, "b"), MF_OK);
    assert_int_equal(mf__strlist_pushn(l, "cdef", 1), MF_OK);
    mf__strlist_sort(l);
    mf__strlist_uniq(l);
    assert_int_equal(mf_strlist_count(l), 3);
    assert_string_equal(mf_strlist_get(l, 0), "a");
    assert_string_equal(mf_strlist_get(l, 2), "c");
    assert_null(mf_strlist_get(l, 3));
    assert_true(mf__strlist_contains(l, "b"));
    assert_false(mf__strlist_contains(l, "d"));
    mf_strlist_free(l);
}

static void names(void **state)
{
    (void)state;
    assert_int_equal(mf__check_flow_name("HelloFlow"), MF_OK);
    assert_int_equal(mf__check_flow_name("F_2"), MF_OK);
    const char *bad_flows[] = {"", "_x", "1F", "a-b", "a/b", "..", "data", "a b"};
    for (size_t i = 0; i < sizeof bad_flows / sizeof *bad_flows; i++) {
        assert_int_equal(mf__check_flow_name(bad_flows[i]), MF_EINVAL);
        assert_non_null(strstr(mf_error_last(), "flow name"));
    }
    assert_int_equal(mf__check_step_name("start"), MF_OK);
    assert_int_equal(mf__check_step_name("a_1"), MF_OK);
    const char *bad_steps[] = {"", "_a", "Start", "a-b", "name", "next", "input", "index", "cmd", ".."};
    for (size_t i = 0; i < sizeof bad_steps / sizeof *bad_steps; i++)
        assert_int_equal(mf__check_step_name(bad_steps[i]), MF_EINVAL);
    assert_int_equal(mf__check_step_name("next"), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "'next' is reserved"));
    assert_int_equal(mf__check_artifact_name("_private"), MF_OK);
    assert_int_equal(mf__check_artifact_name("x1"), MF_OK);
    assert_int_equal(mf__check_artifact_name("1x"), MF_EINVAL);
    char longname[300];
    memset(longname, 'a', 299);
    longname[299] = '\0';
    assert_int_equal(mf__check_artifact_name(longname), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "longer than 255"));
    assert_int_equal(mf__check_id("run id", "1700000000123456"), MF_OK);
    assert_int_equal(mf__check_id("run id", "argo-x.1_2"), MF_OK);
    assert_int_equal(mf__check_id("run id", ".."), MF_EINVAL);
    assert_int_equal(mf__check_id("run id", "a/b"), MF_EINVAL);
    assert_non_null(strstr(mf_error_last(), "run id 'a/b'"));
    assert_int_equal(mf__check_tag("key:value with space"), MF_OK);
    assert_int_equal(mf__check_tag("bad\ntag"), MF_EINVAL);
}

static void hashing(void **state)
{
    (void)state;
    /* Published XXH64 values (seed 0). */
    assert_true(mf__xxh64("", 0, 0) == 0xef46db3751d8e999ull);
    assert_true(mf__xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
    char zeros[100] = {0};
    assert_true(mf__xxh64(zeros, 100, 0) == 0x17bb1103c92c502full);
    char xs[1000];
    memset(xs, 'x', sizeof xs);
    assert_true(mf__xxh64(xs, 1000, 0) == 0x4cb9a3b69cb700e1ull);
    assert_true(mf__xxh64("abc", 3, 1) != mf__xxh64("abc", 3, 0));

    uint8_t md[MF_SHA256_LEN];
    char hex[MF_SHA256_HEX + 1];
    assert_int_equal(mf__sha256("abc", 3, md), MF_OK);
    mf__hex(md, sizeof md, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mf__sha256_ctx *c = mf__sha256_begin();
    assert_non_null(c);
    mf__sha256_update(c, "a", 1);
    mf__sha256_update(c, "bc", 2);
    uint8_t md2[MF_SHA256_LEN];
    assert_int_equal(mf__sha256_end(c, md2), MF_OK);
    assert_memory_equal(md, md2, sizeof md);
    uint8_t back[MF_SHA256_LEN];
    assert_int_equal(mf__unhex(hex, back, sizeof back), MF_OK);
    assert_memory_equal(back, md, sizeof md);
    assert_int_equal(mf__unhex("zz", back, 1), MF_EINVAL);
    assert_int_equal(mf__unhex("abc", back, 1), MF_EINVAL);
}

static void mp_check_hostile(void **state)
{
    (void)state;
    /* The 7-byte map32 that makes msgpack-c 4.0.0 allocate ~17 GB. */
    static const unsigned char bomb[] = {0xdf, 0x0c, 0x45, 0x45, 0x45, 0x45, 0x45};
    assert_int_equal(mf__mp_check(bomb, sizeof bomb, 32, "bomb"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "bomb"));
    msgpack_unpacked u;
    assert_int_equal(mf__mp_decode(bomb, sizeof bomb, "bomb", &u), MF_ECORRUPT);
    /* str32 claiming 4 GB. */
    static const unsigned char bigstr[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    assert_int_equal(mf__mp_check(bigstr, sizeof bigstr, 32, "s"), MF_ECORRUPT);
    /* array32 of 2^32-1 nils with 3 present. */
    static const unsigned char bigarr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0, 0xc0};
    assert_int_equal(mf__mp_check(bigarr, sizeof bigarr, 32, "a"), MF_ECORRUPT);
    /* Deep nesting. */
    unsigned char deep[100];
    memset(deep, 0x91, sizeof deep);
    deep[99] = 0xc0;
    assert_int_equal(mf__mp_check(deep, sizeof deep, 32, "deep"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "deeper"));
    assert_int_equal(mf__mp_check(deep, sizeof deep, 64, "deep"), MF_ECORRUPT);
    assert_int_equal(mf__mp_check(deep + 70, 30, 32, "deep"), MF_OK);
    /* An empty innermost container counts as a level too (33 levels). */
    unsigned char deep_empty[33];
    memset(deep_empty, 0x91, 32);
    deep_empty[32] = 0x90;
    assert_int_equal(mf__mp_check(deep_empty, 33, MF_MP_MAX_DEPTH, "deep"), MF_ECORRUPT);
    assert_int_equal(mf__mp_decode(deep_empty, 33, "deep", &u), MF_ECORRUPT);
    assert_int_equal(mf__mp_decode(deep_empty + 1, 32, "deep", &u), MF_OK);
    msgpack_unpacked_destroy(&u);
    /* Reserved byte 0xc1, trailing garbage, truncation. */
    static const unsigned char c1[] = {0xc1};
    assert_int_equal(mf__mp_check(c1, 1, 32, "x"), MF_ECORRUPT);
    static const unsigned char trailing[] = {0x01, 0x02};
    assert_int_equal(mf__mp_check(trailing, 2, 32, "x"), MF_ECORRUPT);
    assert_non_null(strstr(mf_error_last(), "unexpected bytes"));
    assert_int_equal(mf__mp_check(NULL, 0, 32, "empty"), MF_ECORRUPT);

    /* Valid data of every type passes and decodes. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    mf__mp_pack_cstr(&pk, "s");
    mf__mp_pack_cstr(&pk, "hello");
    mf__mp_pack_cstr(&pk, "u");
    msgpack_pack_uint64(&pk, 1ull << 40);
    mf__mp_pack_cstr(&pk, "i");
    msgpack_pack_int64(&pk, -5);
    mf__mp_pack_cstr(&pk, "b");
    msgpack_pack_true(&pk);
    mf__mp_pack_cstr(&pk, "bin");
    mf__mp_pack_bin(&pk, "\0\1\2", 3);
    mf__mp_pack_cstr(&pk, "arr");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_float(&pk, 2.5f);
    msgpack_pack_nil(&pk);
    assert_int_equal(mf__mp_decode(sb.data, sb.size, "ok", &u), MF_OK);
    const msgpack_object *root = &u.data;
    uint64_t uv;
    int64_t iv;
    bool bv;
    assert_true(mf__mp_streq(mf__mp_get(root, "s"), "hello"));
    assert_true(mf__mp_uint(mf__mp_get(root, "u"), &uv));
    assert_true(uv == 1ull << 40);
    assert_true(mf__mp_int(mf__mp_get(root, "i"), &iv));
    assert_int_equal(iv, -5);
    assert_true(mf__mp_bool(mf__mp_get(root, "b"), &bv));
    assert_true(bv);
    char *s = mf__mp_strdup(mf__mp_get(root, "bin"));
    assert_memory_equal(s, "\0\1\2", 3);
    free(s);
    assert_null(mf__mp_get(root, "missing"));
    assert_false(mf__mp_uint(mf__mp_get(root, "s"), &uv));
    msgpack_unpacked_destroy(&u);
    /* Every truncation of valid data is rejected. */
    for (size_t n = 0; n < sb.size; n++)
        assert_int_equal(mf__mp_check(sb.data, n, 32, "trunc"), MF_ECORRUPT);
    msgpack_sbuffer_destroy(&sb);
}

static void errors(void **state)
{
    (void)state;
    assert_int_equal(mf__error_set(MF_EIO, "disk %s", "full"), MF_EIO);
    assert_string_equal(mf_error_last(), "disk full");
    assert_int_equal(mf_error_last_code(), MF_EIO);
    assert_int_equal(mf__error_wrap("artifact '%s'", "x"), MF_EIO);
    assert_string_equal(mf_error_last(), "artifact 'x': disk full");
    assert_int_equal(mf__error_errno(2, "cannot open", "/p"), MF_ENOTFOUND);
    assert_non_null(strstr(mf_error_last(), "cannot open '/p'"));
    mf_error_clear();
    assert_string_equal(mf_error_last(), "no error");
    for (int c = 0; c >= -16; c--)
        assert_string_not_equal(mf_strerror(c), "unknown error code");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buffers),
        cmocka_unit_test(strlists),
        cmocka_unit_test(names),
        cmocka_unit_test(hashing),
        cmocka_unit_test(mp_check_hostile),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
