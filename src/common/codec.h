/* xluo: byte-level helpers shared by the store's on-disk formats (WAL
 * records, chunks): little-endian fixed-width integers, LEB128 varints and
 * zigzag. Everything is static inline and works on unsigned arithmetic, so
 * that any int64 round-trips without undefined behaviour. */
#ifndef XL_COMMON_CODEC_H
#define XL_COMMON_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Longest varint of a uint64_t. */
#define XL_VARINT_MAX 10

static inline void xl_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t xl_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void xl_put_le64(uint8_t *p, uint64_t v)
{
    xl_put_le32(p, (uint32_t)v);
    xl_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t xl_get_le64(const uint8_t *p)
{
    return (uint64_t)xl_get_le32(p) | (uint64_t)xl_get_le32(p + 4) << 32;
}

static inline uint64_t xl_dbl_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double xl_bits_dbl(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Signed (as two's complement in a uint64_t) to zigzag: small magnitudes of
 * either sign become small unsigned numbers. */
static inline uint64_t xl_zigzag(uint64_t v)
{
    return (v << 1) ^ (0 - (v >> 63));
}

static inline uint64_t xl_unzigzag(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

/* Write v at p (which has room for XL_VARINT_MAX bytes); returns the end. */
static inline uint8_t *xl_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Read a varint from [*pp, end). Returns 0 and advances *pp, or -1 when the
 * input ends early or the varint is longer than 10 bytes. */
static inline int xl_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    unsigned shift = 0;

    while (p < end) {
        uint8_t b = *p++;

        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
        shift += 7;
        if (shift > 63)
            return -1;
    }
    return -1;
}

#endif
