/* Unit tests: the store's chunk codec (src/server/store/chunk.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "server/store/chunk.h"
#include "common/codec.h"

static uint64_t rng_state = 0x1234567;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Encode, decode, compare bit for bit; returns the encoded size. */
static size_t roundtrip(const struct xl_tsdb_pt *pts, size_t n)
{
    struct xl_chunk_codec *c;
    struct xl_pt_vec out = {0};
    struct xl_buf b;
    struct xl_err err;
    size_t len;

    xl_buf_init(&b, 1 << 30);
    assert_int_equal(xl_chunk_codec_new(&c, &err), XL_OK);
    assert_int_equal(xl_chunk_encode(c, pts, n, &b, &err), XL_OK);
    /* Decoding appends: start with a point already there. */
    assert_int_equal(xl_pt_vec_reserve(&out, 1), XL_OK);
    out.p[0].ts = 42;
    out.p[0].v = 4.2;
    out.n = 1;
    assert_int_equal(xl_chunk_decode(c, b.data, b.len, &out, &err), XL_OK);
    assert_int_equal(out.n, n + 1);
    assert_int_equal(out.p[0].ts, 42);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out.p[i + 1].ts, pts[i].ts);
        assert_int_equal(xl_dbl_bits(out.p[i + 1].v), xl_dbl_bits(pts[i].v));
    }
    len = b.len;
    xl_pt_vec_cleanup(&out);
    xl_buf_cleanup(&b);
    xl_chunk_codec_free(c);
    return len;
}

static void test_regular(void **state)
{
    struct xl_tsdb_pt pts[XL_CHUNK_MAX_POINTS];
    size_t len;

    (void)state;
    for (size_t i = 0; i < XL_CHUNK_MAX_POINTS; i++) {
        pts[i].ts = 1763715000000 + (int64_t)i * 10000;
        pts[i].v = 100.0 + (double)(i % 7);
    }
    len = roundtrip(pts, XL_CHUNK_MAX_POINTS);
    /* Regular timestamps and small-range values compress well. */
    assert_true(len < XL_CHUNK_MAX_POINTS * 3);
    for (size_t i = 0; i < XL_CHUNK_MAX_POINTS; i++)
        pts[i].v = 5.0;
    len = roundtrip(pts, XL_CHUNK_MAX_POINTS);
    assert_true(len < 100);
    for (size_t n = 1; n < 20; n++)
        roundtrip(pts, n);
}

static void test_special_values(void **state)
{
    struct xl_tsdb_pt pts[] = {
        {0, 0.0},  {1, -0.0},  {2, NAN},          {3, INFINITY},       {4, -INFINITY},
        {5, -1.5}, {6, 1e308}, {7, -1e-308},      {8, 4.9e-324},       {9, NAN},
        {10, 0.1}, {11, -0.1}, {12, 123456789.0}, {13, -123456789.25}, {14, INFINITY},
        {15, 0.0},
    };
    struct xl_tsdb_pt odd[3];

    (void)state;
    roundtrip(pts, sizeof(pts) / sizeof(pts[0]));
    /* A NaN with a payload and the sign bit set. */
    odd[0].ts = 1;
    odd[0].v = xl_bits_dbl(0xfff8000000000123ull);
    odd[1].ts = 2;
    odd[1].v = xl_bits_dbl(0x7ff0000000000001ull);
    odd[2].ts = 3;
    odd[2].v = xl_bits_dbl(0x8000000000000001ull);
    roundtrip(odd, 3);
}

static void test_timestamps(void **state)
{
    struct xl_tsdb_pt pts[] = {
        {INT64_MIN, 1}, {INT64_MAX, 2},      {0, 3},  {-1, 4},
        {INT64_MAX, 5}, {INT64_MIN, 6},      {5, 7},  {5, 8},
        {-1000000, 9},  {1763715000000, 10}, {1, 11}, {1763715000001, 12},
    };
    struct xl_tsdb_pt ooo[500];

    (void)state;
    roundtrip(pts, sizeof(pts) / sizeof(pts[0]));
    /* Out of order, duplicates, negative. */
    for (size_t i = 0; i < 500; i++) {
        ooo[i].ts = (int64_t)(rnd() % 100000) - 50000;
        ooo[i].v = (double)(int64_t)rnd() / 3.0;
    }
    roundtrip(ooo, 500);
}

static void test_random(void **state)
{
    struct xl_tsdb_pt *pts = calloc(XL_CHUNK_MAX_POINTS, sizeof(*pts));

    (void)state;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rnd() % XL_CHUNK_MAX_POINTS;
        int64_t t = (int64_t)(rnd() >> 2);

        for (size_t i = 0; i < n; i++) {
            t += (int64_t)(rnd() % 20000) - 2000;
            pts[i].ts = t;
            switch (rnd() % 4) {
            case 0: pts[i].v = xl_bits_dbl(rnd()); break;
            case 1: pts[i].v = (double)(rnd() % 1000); break;
            case 2: pts[i].v = i ? pts[i - 1].v : 1.0; break;
            default: pts[i].v = (double)(rnd() % 100000) / 1000.0; break;
            }
        }
        roundtrip(pts, n);
    }
    free(pts);
}

/* Corrupt input must fail cleanly (or decode to something), never crash. */
static void test_corrupt(void **state)
{
    struct xl_tsdb_pt pts[300];
    struct xl_chunk_codec *c;
    struct xl_pt_vec out = {0};
    struct xl_buf b;
    struct xl_err err;

    (void)state;
    for (size_t i = 0; i < 300; i++) {
        pts[i].ts = 1000 * (int64_t)i;
        pts[i].v = (double)(rnd() % 1000) / 7.0;
    }
    xl_buf_init(&b, 1 << 20);
    assert_int_equal(xl_chunk_codec_new(&c, &err), XL_OK);
    assert_int_equal(xl_chunk_encode(c, pts, 300, &b, &err), XL_OK);
    for (size_t cut = 0; cut < b.len; cut++) {
        out.n = 0;
        assert_int_not_equal(xl_chunk_decode(c, b.data, cut, &out, &err), XL_OK);
        assert_int_equal(out.n, 0);
    }
    for (int round = 0; round < 2000; round++) {
        char *copy = malloc(b.len);

        memcpy(copy, b.data, b.len);
        copy[rnd() % b.len] ^= (char)(1u << (rnd() % 8));
        out.n = 0;
        (void)xl_chunk_decode(c, copy, b.len, &out, &err);
        free(copy);
    }
    assert_int_equal(xl_chunk_decode(c, "\x07zz", 3, &out, &err), XL_EPARSE);
    assert_int_equal(xl_chunk_encode(c, pts, 0, &b, &err), XL_EINVAL);
    xl_pt_vec_cleanup(&out);
    xl_buf_cleanup(&b);
    xl_chunk_codec_free(c);
}

static void test_alloc_failure(void **state)
{
    struct xl_tsdb_pt pts[200];
    struct xl_chunk_codec *c = NULL;
    struct xl_pt_vec out = {0};
    struct xl_buf b;
    struct xl_err err;
    xl_rc rc;
    long k;

    (void)state;
    for (size_t i = 0; i < 200; i++) {
        pts[i].ts = 1000 * (int64_t)i;
        pts[i].v = (double)i;
    }
    for (k = 0;; k++) {
        xl_alloc_fail_after(k);
        rc = xl_chunk_codec_new(&c, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
        assert_null(c);
    }
    xl_chunk_codec_free(c);
    for (k = 0;; k++) {
        assert_int_equal(xl_chunk_codec_new(&c, &err), XL_OK);
        xl_buf_init(&b, 1 << 20);
        out.n = 0;
        xl_alloc_fail_after(k);
        rc = xl_chunk_encode(c, pts, 200, &b, &err);
        if (rc == XL_OK)
            rc = xl_chunk_decode(c, b.data, b.len, &out, &err);
        xl_alloc_fail_after(-1);
        xl_buf_cleanup(&b);
        xl_chunk_codec_free(c);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
    }
    assert_int_equal(out.n, 200);
    xl_pt_vec_cleanup(&out);
}

static void test_varint(void **state)
{
    uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX - 1, UINT64_MAX};
    uint8_t buf[XL_VARINT_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        const uint8_t *p = buf;
        uint8_t *end = xl_put_varint(buf, vals[i]);
        uint64_t v;

        assert_int_equal(xl_get_varint(&p, end, &v), 0);
        assert_true(p == end);
        assert_true(v == vals[i]);
        p = buf;
        assert_int_equal(xl_get_varint(&p, end - 1, &v), -1);
        assert_true(xl_unzigzag(xl_zigzag(vals[i])) == vals[i]);
    }
    assert_true(xl_zigzag((uint64_t)-1) == 1);
    assert_true(xl_zigzag(1) == 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular),    cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_timestamps), cmocka_unit_test(test_random),
        cmocka_unit_test(test_corrupt),    cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_varint),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
