/* xluo-agent: asynchronous HTTP client: libcurl's multi interface driven by
 * the agent's libuv loop (sockets watched with uv_poll, curl's timeout with a
 * uv_timer). Every request ends in exactly one call of its callback, also on
 * xl_httpc_close (status 0, error "client closed"). */
#ifndef XL_HTTPC_H
#define XL_HTTPC_H

#include <curl/curl.h>
#include <stddef.h>
#include <uv.h>

#include "common/rc.h"

/* status: the HTTP status, or 0 when no response arrived (error says why).
 * body: the response body (NUL-terminated, at most 1 MiB kept). */
typedef void (*xl_httpc_cb)(void *ctx, long status, const char *body, size_t len,
                            const char *error);

struct xl_httpc_req;

struct xl_httpc {
    uv_loop_t *loop;
    struct xl_httpc_req *reqs; /* in flight */
    CURLM *multi;
    uv_timer_t timer;
    int running;
    unsigned inflight;
};

xl_rc xl_httpc_init(struct xl_httpc *c, uv_loop_t *loop, struct xl_err *err);
/* Abort requests in flight (their callbacks run) and release the handles;
 * the loop must run once more to finish closing them. */
void xl_httpc_close(struct xl_httpc *c);

/* Start method (GET, POST, PUT) on url with a bearer token (may be NULL)
 * and a JSON body (copied; may be NULL). */
xl_rc xl_httpc_request(struct xl_httpc *c, const char *method, const char *url,
                       const char *token, const char *body, size_t len, long timeout_ms,
                       xl_httpc_cb cb, void *ctx, struct xl_err *err);

#endif
