/* xluo: growable byte buffer with a hard maximum (curl's dynbuf idea).
 * The data is always NUL-terminated so it can be used as a string. */
#ifndef XL_BUF_H
#define XL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "rc.h"

struct xl_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* the buffer never holds more than max bytes */
};

/* Initialise an empty buffer that may grow to max bytes. No allocation. */
void xl_buf_init(struct xl_buf *b, size_t max);
/* Free the memory; the buffer may be reused after xl_buf_init. */
void xl_buf_cleanup(struct xl_buf *b);
/* Drop the content, keep the memory. */
void xl_buf_reset(struct xl_buf *b);
/* Append n bytes. XL_ETOOBIG when len+n would pass max, XL_ENOMEM. The
 * buffer is unchanged on error. */
xl_rc xl_buf_add(struct xl_buf *b, const void *p, size_t n);
xl_rc xl_buf_adds(struct xl_buf *b, const char *s);
xl_rc xl_buf_printf(struct xl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
xl_rc xl_buf_vprintf(struct xl_buf *b, const char *fmt, va_list ap);
/* Hand the heap data to the caller (who frees it with xl_free) and leave
 * the buffer empty. Returns NULL for an empty, never-grown buffer. */
char *xl_buf_take(struct xl_buf *b);

#endif
