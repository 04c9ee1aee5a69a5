/* xluo: small whole-file reads and crash-safe whole-file writes, for state
 * files (agent id, sequence, tail offsets, tokens). */
#ifndef XL_FILEIO_H
#define XL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "rc.h"

/* Replace path with data atomically: write path.tmp, fsync it, rename over
 * path, fsync the directory. After a crash path holds the old or the new
 * content, never a mix. mode applies to a newly created file. */
xl_rc xl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           struct xl_err *err);

/* Read at most len-1 bytes of path into buf, NUL-terminate, and cut at the
 * first newline when first_line is set. XL_ENOENT (err untouched) if the
 * file does not exist. */
xl_rc xl_file_read_small(const char *path, char *buf, size_t len, int first_line,
                         struct xl_err *err);

#endif
