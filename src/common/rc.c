/* xluo: error codes and their detail. */
#include "rc.h"

#include <stdio.h>
#include <string.h>

static const char *const rc_names[XL_RC_COUNT] = {
    [XL_OK] = "ok",
    [XL_ENOMEM] = "out of memory",
    [XL_EINVAL] = "invalid value",
    [XL_EPARSE] = "parse error",
    [XL_ERANGE] = "value out of range",
    [XL_EIO] = "I/O error",
    [XL_ENOENT] = "not found",
    [XL_EEXIST] = "already exists",
    [XL_EFULL] = "full",
    [XL_ETOOBIG] = "too big",
    [XL_EAUTH] = "authentication failed",
    [XL_ECONN] = "connection failed",
    [XL_ETIMEOUT] = "timed out",
    [XL_ESTATE] = "invalid state",
    [XL_EPROTO] = "protocol error",
    [XL_EDB] = "database error",
    [XL_EAGAIN] = "try again",
};

const char *xl_rc_str(xl_rc rc)
{
    if ((unsigned)rc >= XL_RC_COUNT)
        return "unknown error";
    return rc_names[rc];
}

xl_rc xl_err_set(struct xl_err *err, xl_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return rc;
    err->rc = rc;
    err->sys_errno = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

xl_rc xl_err_sys(struct xl_err *err, xl_rc rc, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (!err)
        return rc;
    err->rc = rc;
    err->sys_errno = errnum;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    n = strlen(err->msg);
    if (errnum && n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
    return rc;
}

void xl_err_prefix(struct xl_err *err, const char *fmt, ...)
{
    char prefix[256];
    size_t plen, mlen;
    va_list ap;
    int n;

    if (!err)
        return;
    va_start(ap, fmt);
    n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    plen = strlen(prefix);
    mlen = strnlen(err->msg, sizeof(err->msg) - 1);
    if (plen + mlen > sizeof(err->msg) - 1)
        mlen = sizeof(err->msg) - 1 - plen;
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
}

void xl_err_clear(struct xl_err *err)
{
    if (!err)
        return;
    err->rc = XL_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}
