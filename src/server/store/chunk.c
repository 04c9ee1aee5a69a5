/* xluo: chunk encoding: delta-of-delta varint timestamps, Gorilla XOR
 * values, optionally zstd over both. See chunk.h for the layout. */
#include "chunk.h"

#include <string.h>

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: our allocator */
#include <zstd.h>
#include <zstd_errors.h>

#include "common/codec.h"
#include "common/alloc.h"

enum { FMT_RAW = 1, FMT_ZSTD = 2 };

/* Bodies shorter than this are never worth a zstd frame. */
#define ZSTD_MIN_BODY 48
#define ZSTD_LEVEL 1
/* Largest raw body a chunk may claim (corruption guard for the decoder). */
#define RAW_MAX ((size_t)64 << 20)

struct xl_chunk_codec {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw; /* raw body scratch */
    size_t raw_cap;
    uint8_t *z; /* compressed scratch */
    size_t z_cap;
};

xl_rc xl_pt_vec_reserve(struct xl_pt_vec *v, size_t extra)
{
    if (extra > SIZE_MAX - v->n)
        return XL_ENOMEM;
    if (xl_grow((void **)&v->p, &v->cap, v->n + extra, sizeof(*v->p)) != 0)
        return XL_ENOMEM;
    return XL_OK;
}

void xl_pt_vec_cleanup(struct xl_pt_vec *v)
{
    xl_free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

static void *zstd_alloc(void *opaque, size_t n)
{
    (void)opaque;
    return xl_malloc(n);
}

static void zstd_free(void *opaque, void *p)
{
    (void)opaque;
    xl_free(p);
}

static const ZSTD_customMem zstd_mem = {zstd_alloc, zstd_free, NULL};

/* Grow a scratch byte buffer to at least n bytes (contents not kept). */
static int scratch(uint8_t **buf, size_t *cap, size_t n)
{
    uint8_t *p;

    if (n <= *cap)
        return 0;
    if (n < 4096)
        n = 4096;
    if (!(p = xl_malloc(n)))
        return -1;
    xl_free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

xl_rc xl_chunk_codec_new(struct xl_chunk_codec **out, struct xl_err *err)
{
    struct xl_chunk_codec *c;

    *out = NULL;
    if (!(c = xl_calloc(1, sizeof(*c))))
        return xl_err_set(err, XL_ENOMEM, "chunk codec: out of memory");
    c->cctx = ZSTD_createCCtx_advanced(zstd_mem);
    c->dctx = ZSTD_createDCtx_advanced(zstd_mem);
    if (!c->cctx || !c->dctx) {
        xl_chunk_codec_free(c);
        return xl_err_set(err, XL_ENOMEM, "chunk codec: out of memory (zstd)");
    }
    *out = c;
    return XL_OK;
}

void xl_chunk_codec_free(struct xl_chunk_codec *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    xl_free(c->raw);
    xl_free(c->z);
    xl_free(c);
}

/* MSB-first bit writer into a buffer the caller sized. */
struct bitw {
    uint8_t *p;
    uint64_t acc; /* the low `nacc` bits are pending */
    unsigned nacc;
};

static inline void bw_put(struct bitw *w, uint64_t v, unsigned n)
{
    if (n > 56) {
        bw_put(w, v >> 32, n - 32);
        v &= 0xffffffffu;
        n = 32;
    }
    v &= ((uint64_t)1 << n) - 1;
    w->acc = (w->acc << n) | v;
    w->nacc += n;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        *w->p++ = (uint8_t)(w->acc >> w->nacc);
    }
}

static inline void bw_flush(struct bitw *w)
{
    if (w->nacc)
        *w->p++ = (uint8_t)(w->acc << (8 - w->nacc));
    w->nacc = 0;
}

struct bitr {
    const uint8_t *p, *end;
    uint64_t acc;
    unsigned nacc;
};

static inline int br_get(struct bitr *r, unsigned n, uint64_t *out)
{
    uint64_t hi;

    if (n > 56) {
        if (br_get(r, n - 32, &hi) != 0 || br_get(r, 32, out) != 0)
            return -1;
        *out |= hi << 32;
        return 0;
    }
    while (r->nacc < n) {
        if (r->p >= r->end)
            return -1;
        r->acc = (r->acc << 8) | *r->p++;
        r->nacc += 8;
    }
    r->nacc -= n;
    *out = (r->acc >> r->nacc) & (((uint64_t)1 << n) - 1);
    return 0;
}

/* Raw body of n points into buf (room for 24 + 20 * n bytes); returns its
 * length. */
static size_t encode_raw(const struct xl_tsdb_pt *pts, size_t n, uint8_t *buf)
{
    uint8_t *p = buf;
    uint64_t prev_ts = 0, prev_delta = 0, prev_v, x;
    unsigned plz = 255, ptz = 0, lz, tz, len;
    struct bitw w;

    p = xl_put_varint(p, n);
    for (size_t i = 0; i < n; i++) {
        uint64_t t = (uint64_t)pts[i].ts;

        if (i == 0) {
            p = xl_put_varint(p, xl_zigzag(t));
        } else {
            uint64_t delta = t - prev_ts;

            p = xl_put_varint(p, xl_zigzag(i == 1 ? delta : delta - prev_delta));
            prev_delta = delta;
        }
        prev_ts = t;
    }
    w.p = p;
    w.acc = 0;
    w.nacc = 0;
    prev_v = xl_dbl_bits(pts[0].v);
    bw_put(&w, prev_v, 64);
    for (size_t i = 1; i < n; i++) {
        uint64_t cur = xl_dbl_bits(pts[i].v);

        x = cur ^ prev_v;
        prev_v = cur;
        if (x == 0) {
            bw_put(&w, 0, 1);
            continue;
        }
        lz = (unsigned)__builtin_clzll(x);
        tz = (unsigned)__builtin_ctzll(x);
        if (lz > 31)
            lz = 31;
        if (plz != 255 && lz >= plz && tz >= ptz) {
            bw_put(&w, 2, 2);
            bw_put(&w, x >> ptz, 64 - plz - ptz);
        } else {
            len = 64 - lz - tz;
            bw_put(&w, 3, 2);
            bw_put(&w, lz, 5);
            bw_put(&w, len - 1, 6);
            bw_put(&w, x >> tz, len);
            plz = lz;
            ptz = tz;
        }
    }
    bw_flush(&w);
    return (size_t)(w.p - buf);
}

xl_rc xl_chunk_encode(struct xl_chunk_codec *c, const struct xl_tsdb_pt *pts, size_t n,
                      struct xl_buf *out, struct xl_err *err)
{
    uint8_t hdr[1 + XL_VARINT_MAX];
    size_t raw_len, z_len, hdr_len;
    xl_rc rc;

    if (n == 0 || n > XL_CHUNK_DECODE_MAX_POINTS)
        return xl_err_set(err, XL_EINVAL, "chunk: %zu points (1..%u)", n,
                          XL_CHUNK_DECODE_MAX_POINTS);
    if (scratch(&c->raw, &c->raw_cap, 24 + 20 * n) != 0)
        return xl_err_set(err, XL_ENOMEM, "chunk: out of memory");
    raw_len = encode_raw(pts, n, c->raw);
    if (raw_len >= ZSTD_MIN_BODY) {
        size_t bound = ZSTD_compressBound(raw_len);

        if (scratch(&c->z, &c->z_cap, bound) != 0)
            return xl_err_set(err, XL_ENOMEM, "chunk: out of memory");
        z_len = ZSTD_compressCCtx(c->cctx, c->z, c->z_cap, c->raw, raw_len, ZSTD_LEVEL);
        if (ZSTD_isError(z_len))
            return xl_err_set(
                err, ZSTD_getErrorCode(z_len) == ZSTD_error_memory_allocation ? XL_ENOMEM : XL_EIO,
                "chunk: zstd: %s", ZSTD_getErrorName(z_len));
        hdr[0] = FMT_ZSTD;
        hdr_len = (size_t)(xl_put_varint(hdr + 1, raw_len) - hdr);
        if (hdr_len + z_len < 1 + raw_len) {
            if ((rc = xl_buf_add(out, hdr, hdr_len)) != XL_OK ||
                (rc = xl_buf_add(out, c->z, z_len)) != XL_OK)
                return xl_err_set(err, rc, "chunk: output buffer: %s", xl_rc_str(rc));
            return XL_OK;
        }
    }
    hdr[0] = FMT_RAW;
    if ((rc = xl_buf_add(out, hdr, 1)) != XL_OK || (rc = xl_buf_add(out, c->raw, raw_len)) != XL_OK)
        return xl_err_set(err, rc, "chunk: output buffer: %s", xl_rc_str(rc));
    return XL_OK;
}

static xl_rc bad(struct xl_err *err, const uint8_t *base, const uint8_t *at, const char *what)
{
    return xl_err_set(err, XL_EPARSE, "chunk: %s at body byte %td", what, at - base);
}

/* Decode a raw body [p, end) and append its points to out. */
static xl_rc decode_raw(const uint8_t *body, const uint8_t *end, struct xl_pt_vec *out,
                        struct xl_err *err)
{
    const uint8_t *p = body;
    uint64_t n, z, t = 0, delta = 0, prev_v, bits, x;
    unsigned plz = 255, ptz = 0, len;
    struct xl_tsdb_pt *dst;
    struct bitr r;

    if (xl_get_varint(&p, end, &n) != 0)
        return bad(err, body, p, "truncated point count");
    if (n == 0 || n > XL_CHUNK_DECODE_MAX_POINTS)
        return bad(err, body, p, "implausible point count");
    /* Each point takes at least one timestamp byte: a cheap bound before
     * allocating for a corrupt count. */
    if (n > (uint64_t)(end - p))
        return bad(err, body, p, "point count larger than the chunk");
    if (xl_pt_vec_reserve(out, (size_t)n) != XL_OK)
        return xl_err_set(err, XL_ENOMEM, "chunk: out of memory for %llu points",
                          (unsigned long long)n);
    dst = out->p + out->n;
    for (uint64_t i = 0; i < n; i++) {
        if (xl_get_varint(&p, end, &z) != 0)
            return bad(err, body, p, "truncated timestamp");
        z = xl_unzigzag(z);
        if (i == 0) {
            t = z;
        } else {
            delta = i == 1 ? z : delta + z;
            t += delta;
        }
        dst[i].ts = (int64_t)t;
    }
    r.p = p;
    r.end = end;
    r.acc = 0;
    r.nacc = 0;
    if (br_get(&r, 64, &prev_v) != 0)
        return bad(err, body, r.p, "truncated first value");
    dst[0].v = xl_bits_dbl(prev_v);
    for (uint64_t i = 1; i < n; i++) {
        if (br_get(&r, 1, &bits) != 0)
            return bad(err, body, r.p, "truncated value");
        if (bits == 0) {
            dst[i].v = xl_bits_dbl(prev_v);
            continue;
        }
        if (br_get(&r, 1, &bits) != 0)
            return bad(err, body, r.p, "truncated value");
        if (bits == 0) {
            if (plz == 255)
                return bad(err, body, r.p, "value reuses a missing window");
            len = 64 - plz - ptz;
            if (br_get(&r, len, &x) != 0)
                return bad(err, body, r.p, "truncated value");
            x <<= ptz;
        } else {
            uint64_t lz, l1;

            if (br_get(&r, 5, &lz) != 0 || br_get(&r, 6, &l1) != 0)
                return bad(err, body, r.p, "truncated value header");
            len = (unsigned)l1 + 1;
            if (lz + len > 64)
                return bad(err, body, r.p, "value window out of range");
            plz = (unsigned)lz;
            ptz = 64 - plz - len;
            if (br_get(&r, len, &x) != 0)
                return bad(err, body, r.p, "truncated value");
            x = len == 64 ? x : x << ptz;
        }
        prev_v ^= x;
        dst[i].v = xl_bits_dbl(prev_v);
    }
    if (r.p != end)
        return bad(err, body, r.p, "trailing bytes");
    out->n += (size_t)n;
    return XL_OK;
}

xl_rc xl_chunk_decode(struct xl_chunk_codec *c, const void *data, size_t len, struct xl_pt_vec *out,
                      struct xl_err *err)
{
    const uint8_t *p = data, *end = p + len;
    uint64_t raw_len;
    size_t got;

    if (len < 2)
        return xl_err_set(err, XL_EPARSE, "chunk: %zu bytes is too short", len);
    switch (p[0]) {
    case FMT_RAW: return decode_raw(p + 1, end, out, err);
    case FMT_ZSTD:
        p++;
        if (xl_get_varint(&p, end, &raw_len) != 0 || raw_len == 0 || raw_len > RAW_MAX)
            return xl_err_set(err, XL_EPARSE, "chunk: bad raw length at byte 1");
        if (scratch(&c->raw, &c->raw_cap, (size_t)raw_len) != 0)
            return xl_err_set(err, XL_ENOMEM, "chunk: out of memory");
        got = ZSTD_decompressDCtx(c->dctx, c->raw, (size_t)raw_len, p, (size_t)(end - p));
        if (ZSTD_isError(got)) {
            if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
                return xl_err_set(err, XL_ENOMEM, "chunk: zstd: out of memory");
            return xl_err_set(err, XL_EPARSE, "chunk: zstd: %s", ZSTD_getErrorName(got));
        }
        if (got != raw_len)
            return xl_err_set(err, XL_EPARSE, "chunk: zstd body is %zu bytes, header says %llu",
                              got, (unsigned long long)raw_len);
        return decode_raw(c->raw, c->raw + got, out, err);
    default: return xl_err_set(err, XL_EPARSE, "chunk: unknown format %u at byte 0", p[0]);
    }
}
