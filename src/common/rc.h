/* xluo: one error enum for the whole code base, and the detail beside it.
 *
 * Every fallible function returns an xl_rc. When the caller wants to know
 * more than the code (which file and line, which field, the saved errno), it
 * passes a struct xl_err that the callee fills with xl_err_set(). */
#ifndef XL_RC_H
#define XL_RC_H

#include <stdarg.h>
#include <stddef.h>

typedef enum xl_rc {
    XL_OK = 0,
    XL_ENOMEM,   /* allocation failed */
    XL_EINVAL,   /* invalid argument or value */
    XL_EPARSE,   /* input does not parse */
    XL_ERANGE,   /* value out of range */
    XL_EIO,      /* read/write/fsync failed */
    XL_ENOENT,   /* no such file, key or record */
    XL_EEXIST,   /* already exists / already running */
    XL_EFULL,    /* a bounded resource is full */
    XL_ETOOBIG,  /* input larger than its limit */
    XL_EAUTH,    /* authentication failed */
    XL_ECONN,    /* connection failed */
    XL_ETIMEOUT, /* deadline passed */
    XL_ESTATE,   /* operation not valid in this state */
    XL_EPROTO,   /* peer spoke an unexpected protocol */
    XL_EDB,      /* database error */
    XL_EAGAIN,   /* try again later */
    XL_RC_COUNT
} xl_rc;

/* Detail of the last error: the code, errno saved at the failing call (0 if
 * none) and a human message naming the place (file:line, field, offset). */
struct xl_err {
    xl_rc rc;
    int sys_errno;
    char msg[512];
};

/* A short fixed string for rc ("out of memory", ...). Never NULL. */
const char *xl_rc_str(xl_rc rc);

/* Fill err (may be NULL) with rc and a printf-style message; returns rc so
 * that `return xl_err_set(err, XL_EINVAL, "...")` reads naturally. */
xl_rc xl_err_set(struct xl_err *err, xl_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like xl_err_set, and appends ": strerror(errnum)" and keeps errnum. */
xl_rc xl_err_sys(struct xl_err *err, xl_rc rc, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix the message already in err with a printf-style context, e.g. the
 * file name: "conf/agent.yaml:3: " + "unknown key". Keeps rc and errno. */
void xl_err_prefix(struct xl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reset err to XL_OK with an empty message. */
void xl_err_clear(struct xl_err *err);

#endif
