/* xluo-server: request bodies sent compressed (Content-Encoding), see
 * docs/protocol.md "Compression".
 *
 * Pure functions of their input, so unit tests and fuzzing drive them
 * directly; the handler swaps the decoded body in for the received one. */
#ifndef XL_ENCODING_H
#define XL_ENCODING_H

#include <stddef.h>

#include "common/buf.h"
#include "common/rc.h"

enum xl_encoding { XL_ENC_IDENTITY, XL_ENC_ZSTD };

/* What the encodings the server decodes are called, for error details. */
#define XL_ENCODINGS_SUPPORTED "identity, zstd"

/* The encoding a Content-Encoding header names: NULL, "" and "identity"
 * are identity, "zstd" is zstd (any case, spaces around ignored). XL_EINVAL
 * for anything else (gzip, a list such as "zstd, gzip", ...). */
xl_rc xl_encoding_parse(const char *header, enum xl_encoding *out);

/* Decompress the zstd frames of src[0..n) (one or more, skippable frames
 * allowed) and append the content to out, which takes at most max bytes in
 * all. Streaming: the content is never held beyond max + one block, and the
 * decoder refuses frames whose window is over max(max, 8 MiB).
 *   XL_ETOOBIG: the content (or the window a frame asks for) is over max;
 *   XL_EPARSE:  not zstd, corrupt, or ends inside a frame;
 *   XL_ENOMEM.
 * err says "zstd: ..." with what went wrong and where (input byte). out
 * may hold part of the content after an error. */
xl_rc xl_zstd_decompress(const void *src, size_t n, size_t max, struct xl_buf *out,
                         struct xl_err *err);

#endif
