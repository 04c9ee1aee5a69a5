/* xluo-agent tail input: a file's fingerprint, the hash of its first bytes.
 *
 * Device + inode name a file only while it exists: after a delete the inode
 * is reused. The fingerprint tells the same file from a new one with the same
 * inode (restart), and finds a file's rotated copy (copytruncate). It is the
 * FNV-1a 64 hash of the first XL_TAIL_FP_MAX bytes, or of all bytes when the
 * file is shorter; the number hashed is kept beside it so that the check later
 * hashes the same bytes. */
#ifndef XL_TAIL_FINGERPRINT_H
#define XL_TAIL_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define XL_TAIL_FP_MAX 1024u

/* FNV-1a 64 of len bytes. */
uint64_t xl_tail_fp_hash(const void *data, size_t len);

/* Hash the first min(want, XL_TAIL_FP_MAX) bytes of fd (pread, the file
 * position is not used). *got is how many bytes there were (fewer than want
 * when the file is shorter). XL_EIO with errno in err on a read error. */
xl_rc xl_tail_fp_read(int fd, uint32_t want, uint64_t *hash, uint32_t *got, struct xl_err *err);

/* True when fd's first fp_len bytes hash to fp (false when the file is now
 * shorter than fp_len or cannot be read). */
bool xl_tail_fp_matches(int fd, uint64_t fp, uint32_t fp_len);

#endif
