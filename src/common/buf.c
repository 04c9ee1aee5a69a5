/* xluo: bounded growable buffer. */
#include "buf.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

void xl_buf_init(struct xl_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void xl_buf_cleanup(struct xl_buf *b)
{
    xl_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void xl_buf_reset(struct xl_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
static xl_rc reserve(struct xl_buf *b, size_t n)
{
    size_t need, ncap;
    char *p;

    if (n > b->max || b->len > b->max - n)
        return XL_ETOOBIG;
    need = b->len + n + 1;
    if (need <= b->cap)
        return XL_OK;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    if (!(p = xl_realloc(b->data, ncap)))
        return XL_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return XL_OK;
}

xl_rc xl_buf_add(struct xl_buf *b, const void *p, size_t n)
{
    xl_rc rc = reserve(b, n);

    if (rc != XL_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return XL_OK;
}

xl_rc xl_buf_adds(struct xl_buf *b, const char *s)
{
    return xl_buf_add(b, s, strlen(s));
}

xl_rc xl_buf_vprintf(struct xl_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    xl_rc rc;
    int n;

    /* Format once into the free space; only when it does not fit, grow and
     * format again. */
    va_copy(ap2, ap);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return XL_EINVAL;
    if ((size_t)n < room) {
        if ((size_t)n > b->max - b->len) {
            b->data[b->len] = '\0';
            return XL_ETOOBIG;
        }
        b->len += (size_t)n;
        return XL_OK;
    }
    if ((rc = reserve(b, (size_t)n)) != XL_OK) {
        if (b->data)
            b->data[b->len] = '\0';
        return rc;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return XL_OK;
}

xl_rc xl_buf_printf(struct xl_buf *b, const char *fmt, ...)
{
    va_list ap;
    xl_rc rc;

    va_start(ap, fmt);
    rc = xl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *xl_buf_take(struct xl_buf *b)
{
    char *p = b->data;

    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
