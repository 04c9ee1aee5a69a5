/* xluo-agent: asynchronous HTTP client on the agent's libuv loop.
 *
 * http:// is spoken directly (httpc.c: HTTP/1.1, keep-alive, one idle
 * connection kept per host:port, http_parse.c reads the responses), so the
 * agent maps no TLS library. https:// goes through libcurl, which is loaded
 * with dlopen only when the first https:// request is made (httpc_curl.c).
 * Every request ends in exactly one call of its callback, also on
 * xl_httpc_close (status 0, error "client closed"). The process must ignore
 * SIGPIPE (the agent does): libuv writes with write(2). */
#ifndef XL_HTTPC_H
#define XL_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/rc.h"

/* status: the HTTP status, or 0 when no response arrived (error says why).
 * body: the response body (NUL-terminated, at most 1 MiB kept). */
typedef void (*xl_httpc_cb)(void *ctx, long status, const char *body, size_t len,
                            const char *error);

struct xl_httpc_req;
struct xl_httpc_conn;
struct xl_httpc_curl;

struct xl_httpc {
    uv_loop_t *loop;
    struct xl_httpc_req *reqs;  /* http:// requests in flight */
    struct xl_httpc_conn *idle; /* kept-alive connections, one per host:port */
    struct xl_httpc_curl *curl; /* https:// requests, NULL until the first one */
    unsigned inflight;          /* requests in flight, http:// and https:// */
    bool closed;
};

xl_rc xl_httpc_init(struct xl_httpc *c, uv_loop_t *loop, struct xl_err *err);
/* Abort requests in flight (their callbacks run) and release the handles;
 * the loop must run once more to finish closing them. */
void xl_httpc_close(struct xl_httpc *c);

/* Start method (GET, POST, PUT) on url with a bearer token (may be NULL)
 * and a JSON body (may be NULL). The body is borrowed: it must stay valid and
 * unchanged until the callback has run (batches are large; no copy is made). */
xl_rc xl_httpc_request(struct xl_httpc *c, const char *method, const char *url,
                       const char *token, const char *body, size_t len, long timeout_ms,
                       xl_httpc_cb cb, void *ctx, struct xl_err *err);

/* The same with a Content-Encoding header (e.g. "zstd") for the body. */
xl_rc xl_httpc_request_encoded(struct xl_httpc *c, const char *method, const char *url,
                               const char *token, const char *encoding, const char *body,
                               size_t len, long timeout_ms, xl_httpc_cb cb, void *ctx,
                               struct xl_err *err);

#endif
