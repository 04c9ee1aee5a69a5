/* xluo-agent tail input: fingerprints (see fingerprint.h). */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "fingerprint.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* FNV-1a: simple, stable across versions (it is stored in the offsets file)
 * and fast enough for at most 1 KiB. */
uint64_t xl_tail_fp_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = FNV_OFFSET;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Read up to want bytes from offset 0 (short reads retried until EOF). */
xl_rc xl_tail_fp_read(int fd, uint32_t want, uint64_t *hash, uint32_t *got, struct xl_err *err)
{
    unsigned char buf[XL_TAIL_FP_MAX];
    size_t n = 0;

    if (want > XL_TAIL_FP_MAX)
        want = XL_TAIL_FP_MAX;
    while (n < want) {
        ssize_t r = pread(fd, buf + n, want - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return xl_err_sys(err, XL_EIO, errno, "fingerprint read");
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *hash = xl_tail_fp_hash(buf, n);
    *got = (uint32_t)n;
    return XL_OK;
}

bool xl_tail_fp_matches(int fd, uint64_t fp, uint32_t fp_len)
{
    uint64_t h;
    uint32_t got;

    if (xl_tail_fp_read(fd, fp_len, &h, &got, NULL) != XL_OK)
        return false;
    return got == fp_len && h == fp;
}
