/* xluo-agent: incremental parser for one HTTP/1.1 response (status line,
 * headers, a body framed by Content-Length, chunked transfer coding or the
 * end of the connection). It is fed whatever a read returned, in pieces of
 * any size down to one byte, keeps no more than one line of input, and hands
 * the body to a callback as it goes. No allocation. Used by httpc.c. */
#ifndef XL_HTTPC_PARSE_H
#define XL_HTTPC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* The longest status, header, chunk-size or trailer line accepted, and the
 * most header bytes (status line included) of one response. */
#define XL_HTTPC_LINE_MAX 8192
#define XL_HTTPC_HEADERS_MAX (64 * 1024)

/* Body bytes as they arrive; called only with n > 0. */
typedef void (*xl_httpc_body_fn)(void *ctx, const char *p, size_t n);

enum xl_httpc_pstate {
    XL_HTTPC_P_STATUS,     /* before or in the status line */
    XL_HTTPC_P_HEADER,     /* in the header lines */
    XL_HTTPC_P_BODY_LEN,   /* body framed by Content-Length */
    XL_HTTPC_P_BODY_EOF,   /* body ends when the server closes */
    XL_HTTPC_P_CHUNK_SIZE, /* chunked: the size line */
    XL_HTTPC_P_CHUNK_DATA, /* chunked: the chunk's bytes */
    XL_HTTPC_P_CHUNK_END,  /* chunked: the CRLF after the data */
    XL_HTTPC_P_TRAILER,    /* chunked: trailer lines after the last chunk */
    XL_HTTPC_P_DONE,       /* the response is complete */
    XL_HTTPC_P_ERROR,      /* malformed; feeding more is an error */
};

struct xl_httpc_parser {
    enum xl_httpc_pstate state;
    int status;       /* 100..999 once the status line is read */
    int minor;        /* HTTP/1.<minor> */
    bool keep_alive;  /* the connection may carry another request */
    bool chunked;     /* Transfer-Encoding ends in chunked */
    bool te;          /* a Transfer-Encoding header was seen */
    bool have_length; /* a Content-Length header was seen */
    uint64_t length;  /* its value */
    uint64_t left;    /* bytes left of the body or of the current chunk */
    uint64_t bytes;   /* response bytes consumed so far (all parts) */
    uint64_t body;    /* body bytes handed to the callback so far */
    size_t head_bytes;
    size_t line_len;
    char line[XL_HTTPC_LINE_MAX];
};

/* Ready the parser for a new response (also after a finished one). */
void xl_httpc_parser_init(struct xl_httpc_parser *p);

/* Consume up to n bytes of data. *used is how many were consumed: all of
 * them unless the response ended inside data (then the rest belongs to no
 * response). Body bytes go to fn(ctx, ...). XL_EPROTO, with err saying what
 * was expected and what came ("malformed response: ..."), when the input is
 * not an HTTP/1.x response; the parser then stays in XL_HTTPC_P_ERROR. */
xl_rc xl_httpc_parser_feed(struct xl_httpc_parser *p, const char *data, size_t n, size_t *used,
                           xl_httpc_body_fn fn, void *ctx, struct xl_err *err);

/* The server closed the connection. XL_OK when that ends the response (a
 * body without length); XL_EPROTO with err naming where the response was cut
 * otherwise ("connection closed before ..."). */
xl_rc xl_httpc_parser_eof(struct xl_httpc_parser *p, struct xl_err *err);

/* True once a whole response was parsed. */
static inline bool xl_httpc_parser_done(const struct xl_httpc_parser *p)
{
    return p->state == XL_HTTPC_P_DONE;
}

#endif
