/* Unit tests: compressed request bodies (src/server/encoding.c): which
 * Content-Encoding values are spoken, zstd frames decoded whole, bounded,
 * and every kind of bad input named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "common/alloc.h"
#include "server/encoding.h"

/* zstd of src[0..n) into a new heap buffer; *out_n its size. */
static char *compress(const void *src, size_t n, int level, size_t *out_n)
{
    size_t cap = ZSTD_compressBound(n), r;
    char *dst = malloc(cap);

    assert_non_null(dst);
    r = ZSTD_compress(dst, cap, src, n, level);
    assert_false(ZSTD_isError(r));
    *out_n = r;
    return dst;
}

static xl_rc decompress(const void *src, size_t n, size_t max, struct xl_buf *out,
                        struct xl_err *err)
{
    xl_buf_init(out, max);
    return xl_zstd_decompress(src, n, max, out, err);
}

static void test_parse(void **state)
{
    static const struct {
        const char *h;
        xl_rc rc;
        enum xl_encoding enc;
    } cases[] = {
        {NULL, XL_OK, XL_ENC_IDENTITY},        {"", XL_OK, XL_ENC_IDENTITY},
        {"identity", XL_OK, XL_ENC_IDENTITY},  {" Identity ", XL_OK, XL_ENC_IDENTITY},
        {"zstd", XL_OK, XL_ENC_ZSTD},          {"\tZSTD ", XL_OK, XL_ENC_ZSTD},
        {"gzip", XL_EINVAL, XL_ENC_IDENTITY},  {"zstd, gzip", XL_EINVAL, XL_ENC_IDENTITY},
        {"zstdx", XL_EINVAL, XL_ENC_IDENTITY}, {"br", XL_EINVAL, XL_ENC_IDENTITY},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum xl_encoding enc = XL_ENC_ZSTD;
        xl_rc rc = xl_encoding_parse(cases[i].h, &enc);
        if (rc != cases[i].rc || (rc == XL_OK && enc != cases[i].enc))
            fail_msg("case %zu '%s': rc %d enc %d", i, cases[i].h ? cases[i].h : "(null)", rc, enc);
    }
}

static void test_round_trip(void **state)
{
    const char *json = "{\"v\":1,\"agent_id\":\"0123456789abcdef0123456789abcdef\",\"seq\":1,"
                       "\"records\":[]}";
    size_t n, n2, len = strlen(json);
    char *z = compress(json, len, 3, &n), *two;
    struct xl_buf out;
    struct xl_err err = {0};
    /* a skippable frame: magic 0x184D2A50 (little endian), size 3, data */
    static const char skip[] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};

    assert_int_equal(decompress(z, n, 1 << 20, &out, &err), XL_OK);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, json, len);
    xl_buf_cleanup(&out);

    /* two frames and a skippable one: one body, the contents end to end */
    two = malloc(2 * n + sizeof(skip));
    memcpy(two, z, n);
    memcpy(two + n, skip, sizeof(skip));
    memcpy(two + n + sizeof(skip), z, n);
    n2 = 2 * n + sizeof(skip);
    assert_int_equal(decompress(two, n2, 1 << 20, &out, &err), XL_OK);
    assert_int_equal(out.len, 2 * len);
    assert_memory_equal(out.data + len, json, len);
    xl_buf_cleanup(&out);
    free(two);
    free(z);
}

/* Content larger than the decoder's output block, exactly at the limit and
 * one byte over it. */
static void test_limit(void **state)
{
    size_t big = 3 * ZSTD_DStreamOutSize() + 17, n;
    char *plain = malloc(big), *z;
    struct xl_buf out;
    struct xl_err err = {0};

    for (size_t i = 0; i < big; i++)
        plain[i] = (char)('a' + i % 7);
    z = compress(plain, big, 3, &n);
    assert_true(n < big / 100);
    assert_int_equal(decompress(z, n, big, &out, &err), XL_OK);
    assert_int_equal(out.len, big);
    assert_memory_equal(out.data, plain, big);
    xl_buf_cleanup(&out);

    assert_int_equal(decompress(z, n, big - 1, &out, &err), XL_ETOOBIG);
    assert_true(out.len <= big - 1);
    {
        char want[128];
        snprintf(want, sizeof(want), "zstd: the decompressed body is over max_body (%zu bytes)",
                 big - 1);
        assert_string_equal(err.msg, want);
    }
    xl_buf_cleanup(&out);
    free(z);
    free(plain);
}

static void test_bad_input(void **state)
{
    const char *json = "{\"v\":1,\"records\":[\"some text that compresses some text\"]}";
    size_t n;
    char *z = compress(json, strlen(json), 19, &n);
    struct xl_buf out;
    struct xl_err err = {0};

    assert_int_equal(decompress("", 0, 1024, &out, &err), XL_EPARSE);
    assert_string_equal(err.msg, "zstd: empty body, expected a zstd frame");
    xl_buf_cleanup(&out);

    assert_int_equal(decompress(json, strlen(json), 1024, &out, &err), XL_EPARSE);
    assert_non_null(strstr(err.msg, "zstd: Unknown frame descriptor (input byte 0 of"));
    xl_buf_cleanup(&out);

    /* cut inside the frame */
    assert_int_equal(decompress(z, n - 3, 1024, &out, &err), XL_EPARSE);
    assert_non_null(strstr(err.msg, "zstd: truncated: the body ends inside a frame"));
    xl_buf_cleanup(&out);

    /* a frame and then garbage */
    {
        char *tail = malloc(n + 4);
        memcpy(tail, z, n);
        memcpy(tail + n, "junk", 4);
        assert_int_equal(decompress(tail, n + 4, 1024, &out, &err), XL_EPARSE);
        assert_non_null(strstr(err.msg, "zstd: "));
        xl_buf_cleanup(&out);
        free(tail);
    }

    /* a flipped bit in the compressed data: corrupt (or a checksum error) */
    {
        int errors = 0;
        for (size_t i = 6; i < n; i++) {
            char *bad = malloc(n);
            memcpy(bad, z, n);
            bad[i] ^= 0x10;
            xl_rc rc = decompress(bad, n, 1024, &out, &err);
            if (rc != XL_OK) {
                assert_int_equal(rc, XL_EPARSE);
                assert_non_null(strstr(err.msg, "zstd: "));
                errors++;
            }
            xl_buf_cleanup(&out);
            free(bad);
        }
        assert_true(errors > 0);
    }
    free(z);
}

/* A frame written as a stream of unknown size announces its window; one
 * over the limit is refused before anything is allocated for it. */
static void test_window_limit(void **state)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    char src[256], dst[1024];
    ZSTD_inBuffer in = {src, sizeof(src), 0};
    ZSTD_outBuffer ob = {dst, sizeof(dst), 0};
    struct xl_buf out;
    struct xl_err err = {0};

    memset(src, 'x', sizeof(src));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 27)));
    assert_false(ZSTD_isError(ZSTD_compressStream2(c, &ob, &in, ZSTD_e_continue)));
    in = (ZSTD_inBuffer){src, 0, 0};
    assert_int_equal(ZSTD_compressStream2(c, &ob, &in, ZSTD_e_end), 0);
    ZSTD_freeCCtx(c);

    assert_int_equal(decompress(dst, ob.pos, 1024, &out, &err), XL_ETOOBIG);
    assert_non_null(strstr(err.msg, "needs a window over the 8388608 byte limit"));
    xl_buf_cleanup(&out);
    /* with max_body at 128 MiB the same frame is fine */
    assert_int_equal(decompress(dst, ob.pos, (size_t)128 << 20, &out, &err), XL_OK);
    assert_int_equal(out.len, sizeof(src));
    xl_buf_cleanup(&out);
}

static void test_oom(void **state)
{
    const char *json = "{\"v\":1}";
    size_t n;
    char *z = compress(json, strlen(json), 3, &n);
    struct xl_buf out;
    struct xl_err err = {0};

    for (long k = 0; k < 5; k++) {
        xl_alloc_fail_after(k);
        xl_rc rc = decompress(z, n, 1024, &out, &err);
        xl_alloc_fail_after(-1);
        assert_true(rc == XL_ENOMEM || rc == XL_OK);
        if (rc == XL_ENOMEM)
            assert_non_null(strstr(err.msg, "zstd: "));
        xl_buf_cleanup(&out);
    }
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_limit),        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_window_limit), cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
