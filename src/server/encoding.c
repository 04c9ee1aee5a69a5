/* xluo-server: decoding of compressed request bodies (see encoding.h). */
#include "encoding.h"

#include <string.h>
#include <strings.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/alloc.h"

/* Smallest window limit, whatever max: frames compressed from a stream of
 * unknown size (zstd's default window at level 3 is 2 MiB) must pass even
 * when max_body is small. */
#define WINDOW_LOG_MIN 23
/* zstd's own ceiling on 64-bit (ZSTD_WINDOWLOG_MAX_64, not in the stable API). */
#define WINDOW_LOG_MAX 31

xl_rc xl_encoding_parse(const char *header, enum xl_encoding *out)
{
    size_t n;

    *out = XL_ENC_IDENTITY;
    if (!header)
        return XL_OK;
    while (*header == ' ' || *header == '\t')
        header++;
    n = strlen(header);
    while (n && (header[n - 1] == ' ' || header[n - 1] == '\t'))
        n--;
    if (n == 0 || (n == 8 && strncasecmp(header, "identity", 8) == 0))
        return XL_OK;
    if (n == 4 && strncasecmp(header, "zstd", 4) == 0) {
        *out = XL_ENC_ZSTD;
        return XL_OK;
    }
    return XL_EINVAL;
}

/* log2 of the largest window accepted for content of at most max bytes. */
static int window_log_max(size_t max)
{
    int wlog = WINDOW_LOG_MIN;

    while (wlog < WINDOW_LOG_MAX && ((size_t)1 << wlog) < max)
        wlog++;
    return wlog;
}

xl_rc xl_zstd_decompress(const void *src, size_t n, size_t max, struct xl_buf *out,
                         struct xl_err *err)
{
    ZSTD_inBuffer in = {src, n, 0};
    size_t chunk_len = ZSTD_DStreamOutSize(), ret = 0, total = 0;
    ZSTD_DCtx *d;
    char *chunk;
    xl_rc rc = XL_OK;

    if (n == 0)
        return xl_err_set(err, XL_EPARSE, "zstd: empty body, expected a zstd frame");
    d = ZSTD_createDCtx();
    chunk = xl_malloc(chunk_len);
    if (!d || !chunk) {
        rc = xl_err_set(err, XL_ENOMEM, "zstd: out of memory");
        goto out;
    }
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, window_log_max(max)))) {
        rc = xl_err_set(err, XL_ENOMEM, "zstd: cannot set the window limit");
        goto out;
    }
    for (;;) {
        ZSTD_outBuffer ob = {chunk, chunk_len, 0};
        size_t at = in.pos;

        ret = ZSTD_decompressStream(d, &ob, &in);
        if (ZSTD_isError(ret)) {
            switch (ZSTD_getErrorCode(ret)) {
            case ZSTD_error_frameParameter_windowTooLarge:
                rc = xl_err_set(err, XL_ETOOBIG,
                                "zstd: the frame at byte %zu needs a window over the %zu byte "
                                "limit",
                                at, (size_t)1 << window_log_max(max));
                break;
            case ZSTD_error_memory_allocation:
                rc = xl_err_set(err, XL_ENOMEM, "zstd: out of memory");
                break;
            default:
                rc = xl_err_set(err, XL_EPARSE, "zstd: %s (input byte %zu of %zu)",
                                ZSTD_getErrorName(ret), at, n);
            }
            goto out;
        }
        if (ob.pos) {
            if (ob.pos > max - total) {
                rc = xl_err_set(err, XL_ETOOBIG,
                                "zstd: the decompressed body is over max_body (%zu bytes)", max);
                goto out;
            }
            if ((rc = xl_buf_add(out, chunk, ob.pos)) != XL_OK) {
                rc = xl_err_set(err, rc, "zstd: %s",
                                rc == XL_ETOOBIG ? "the decompressed body is too large"
                                                 : xl_rc_str(rc));
                goto out;
            }
            total += ob.pos;
        }
        /* Done when every input byte is in and the decoder stopped short
         * of filling the chunk (it has nothing more to give). */
        if (in.pos == in.size && ob.pos < ob.size)
            break;
    }
    if (ret != 0)
        rc = xl_err_set(err, XL_EPARSE,
                        "zstd: truncated: the body ends inside a frame "
                        "(%zu bytes)",
                        n);
out:
    ZSTD_freeDCtx(d);
    xl_free(chunk);
    return rc;
}
