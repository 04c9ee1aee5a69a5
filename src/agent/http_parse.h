/* xluo-agent: incremental parser for one HTTP/1.x message, in one of two
 * modes chosen at init:
 *   response  status line, headers, a body framed by Content-Length,
 *             chunked transfer coding or the end of the connection (the
 *             client, httpc.c);
 *   request   request line "METHOD SP target SP HTTP/1.x" into bounded
 *             fields, headers, a body framed by Content-Length or chunked
 *             transfer coding, none without either (the local endpoint,
 *             local.c).
 * Both modes share the header, body and chunk machinery. The parser is fed
 * whatever a read returned, in pieces of any size down to one byte, keeps
 * no more than one line of input, and hands the body to a callback as it
 * goes. It stops at the end of one message, so pipelined requests are read
 * one after the other. No allocation. */
#ifndef XL_HTTP_PARSE_H
#define XL_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* The longest start, header, chunk-size or trailer line accepted, and the
 * most header bytes (start line included) of one message. */
#define XL_HTTP_LINE_MAX 8192
#define XL_HTTP_HEADERS_MAX (64 * 1024)
/* Request mode: the longest method and request target. */
#define XL_HTTP_METHOD_MAX 16
#define XL_HTTP_TARGET_MAX 2048

/* Body bytes as they arrive; called only with n > 0. */
typedef void (*xl_http_body_fn)(void *ctx, const char *p, size_t n);

enum xl_http_pstate {
    XL_HTTP_P_START,      /* before or in the status or request line */
    XL_HTTP_P_HEADER,     /* in the header lines */
    XL_HTTP_P_BODY_LEN,   /* body framed by Content-Length */
    XL_HTTP_P_BODY_EOF,   /* response body ends when the server closes */
    XL_HTTP_P_CHUNK_SIZE, /* chunked: the size line */
    XL_HTTP_P_CHUNK_DATA, /* chunked: the chunk's bytes */
    XL_HTTP_P_CHUNK_END,  /* chunked: the CRLF after the data */
    XL_HTTP_P_TRAILER,    /* chunked: trailer lines after the last chunk */
    XL_HTTP_P_DONE,       /* the message is complete */
    XL_HTTP_P_ERROR,      /* malformed; feeding more is an error */
};

struct xl_http_parser {
    enum xl_http_pstate state;
    bool request; /* the mode: parsing a request (else a response) */
    /* Response: the status code (100..999) once the status line is read.
     * Request: 0, or after an error the status to answer with (400; 414
     * for a target over XL_HTTP_TARGET_MAX; 431 for headers over the
     * limits; 501 for a transfer coding other than chunked). */
    int status;
    int minor;                           /* HTTP/1.<minor> */
    bool keep_alive;                     /* the connection may carry another message */
    bool chunked;                        /* Transfer-Encoding ends in chunked */
    bool te;                             /* a Transfer-Encoding header was seen */
    bool have_length;                    /* a Content-Length header was seen */
    bool expect_continue;                /* request: "Expect: 100-continue" (HTTP/1.1) */
    uint64_t length;                     /* the Content-Length */
    uint64_t left;                       /* bytes left of the body or of the current chunk */
    uint64_t bytes;                      /* message bytes consumed so far (all parts) */
    uint64_t body;                       /* body bytes handed to the callback so far */
    char method[XL_HTTP_METHOD_MAX + 1]; /* request: "GET", NUL-terminated */
    char target[XL_HTTP_TARGET_MAX + 1]; /* request: "/metrics?x=1" */
    size_t head_bytes;
    size_t line_len;
    char line[XL_HTTP_LINE_MAX];
};

/* Ready the parser for a new response, or a new request (also after a
 * finished one: pipelined requests each get a fresh init). */
void xl_http_parser_init_response(struct xl_http_parser *p);
void xl_http_parser_init_request(struct xl_http_parser *p);

/* Consume up to n bytes of data. *used is how many were consumed: all of
 * them unless the message ended inside data (the rest belongs to the next
 * message, or to none). Body bytes go to fn(ctx, ...). XL_EPROTO, with err
 * saying what was expected and what came ("malformed response: ..." or
 * "malformed request: ..."), when the input is not an HTTP/1.x message of
 * the mode; the parser then stays in XL_HTTP_P_ERROR (in request mode with
 * p->status the status to answer). */
xl_rc xl_http_parser_feed(struct xl_http_parser *p, const char *data, size_t n, size_t *used,
                          xl_http_body_fn fn, void *ctx, struct xl_err *err);

/* The peer closed the connection. XL_OK when that ends the message (a
 * response body without length); XL_ECONN when nothing at all came;
 * XL_EPROTO with err naming where the message was cut otherwise
 * ("connection closed before ..."). */
xl_rc xl_http_parser_eof(struct xl_http_parser *p, struct xl_err *err);

/* True once a whole message was parsed. */
static inline bool xl_http_parser_done(const struct xl_http_parser *p)
{
    return p->state == XL_HTTP_P_DONE;
}

/* True once the start line and headers were parsed (the body, if any, may
 * still be coming): a server decides on 100 Continue or an early 413 here. */
static inline bool xl_http_parser_headers_done(const struct xl_http_parser *p)
{
    return p->state != XL_HTTP_P_START && p->state != XL_HTTP_P_HEADER &&
           p->state != XL_HTTP_P_ERROR;
}

#endif
