/* xluo: compressed chunks of (timestamp, value) points, the unit the metric
 * store keeps in SQLite.
 *
 * Encoding (docs/storage.md has the picture):
 *   byte 0    format: 1 = raw body follows, 2 = varint raw length + a zstd
 *             frame of the raw body (used when it is smaller)
 *   raw body  varint n; timestamps as zigzag varints: t0, t1-t0, then
 *             delta-of-deltas; then the values as a Gorilla XOR bit stream
 *             (MSB first, padded to a byte).
 * Points may be in any order (out-of-order timestamps are just negative
 * deltas); every double, NaN payloads included, round-trips bit for bit. */
#ifndef XL_STORE_CHUNK_H
#define XL_STORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

/* At most this many points per chunk (the store cuts longer runs). */
#define XL_CHUNK_MAX_POINTS 1024
/* Decoding refuses chunks claiming more than this (corruption guard). */
#define XL_CHUNK_DECODE_MAX_POINTS (1u << 20)

struct xl_tsdb_pt {
    int64_t ts;
    double v;
};

/* A growable array of points. Zero-initialised is empty. */
struct xl_pt_vec {
    struct xl_tsdb_pt *p;
    size_t n;
    size_t cap;
};

/* Make room for `extra` more points. XL_ENOMEM leaves v unchanged. */
xl_rc xl_pt_vec_reserve(struct xl_pt_vec *v, size_t extra);
/* Free the points; v is empty afterwards. */
void xl_pt_vec_cleanup(struct xl_pt_vec *v);

struct xl_chunk_codec;

/* A codec holds the zstd contexts and scratch space; one per thread (not
 * thread-safe). Its allocations, zstd's included, go through xl_malloc. */
xl_rc xl_chunk_codec_new(struct xl_chunk_codec **out, struct xl_err *err);
void xl_chunk_codec_free(struct xl_chunk_codec *c);

/* Encode n points (1..XL_CHUNK_DECODE_MAX_POINTS, any order) and append the
 * chunk to out. XL_ENOMEM / XL_ETOOBIG from the buffer, XL_EIO from zstd. */
xl_rc xl_chunk_encode(struct xl_chunk_codec *c, const struct xl_tsdb_pt *pts, size_t n,
                      struct xl_buf *out, struct xl_err *err);

/* Decode a chunk and append its points, in encoded order, to out.
 * XL_EPARSE (with the byte offset) on a malformed chunk, XL_ENOMEM. */
xl_rc xl_chunk_decode(struct xl_chunk_codec *c, const void *data, size_t len, struct xl_pt_vec *out,
                      struct xl_err *err);

#endif
