/* xluo-server: the HTTP front (libmicrohttpd, thread pool + epoll).
 *
 * A route table maps method + path pattern to a handler. The layer reads
 * the body into a bounded buffer (413 beyond max_body, decided from
 * Content-Length before reading when possible), checks the bearer token the
 * route asks for, calls the handler on a worker thread and sends what it
 * put in the response. Handlers may block (they run on the pool). */
#ifndef XL_HTTP_H
#define XL_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

struct MHD_Connection;
struct xl_http;

enum xl_http_auth { XL_AUTH_NONE, XL_AUTH_AGENT, XL_AUTH_API };

#define XL_HTTP_MAX_PARAMS 4

struct xl_http_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    struct xl_buf body;
    bool too_big;
    char *params[XL_HTTP_MAX_PARAMS]; /* {} segments of the route pattern */
    size_t nparams;
};

struct xl_http_resp {
    int status;
    struct xl_buf body;
    const char *content_type;
};

typedef void (*xl_http_handler)(void *app, struct xl_http_req *req, struct xl_http_resp *resp);

struct xl_http_route {
    const char *method;  /* "GET", "POST", "PUT" */
    const char *pattern; /* "/api/v1/agents/{}/heartbeat": {} matches one segment */
    enum xl_http_auth auth;
    xl_http_handler handler;
};

struct xl_http_opts {
    const char *listen; /* host:port */
    unsigned threads;
    size_t max_body;
    const char *agent_token;
    const char *api_token;
    const struct xl_http_route *routes; /* terminated by {NULL} */
    void *app;
};

xl_rc xl_http_start(const struct xl_http_opts *o, struct xl_http **out, struct xl_err *err);
/* Stop accepting, finish requests in flight, free. NULL is fine. */
void xl_http_stop(struct xl_http *h);
/* The port actually bound (useful with port 0). */
uint16_t xl_http_port(const struct xl_http *h);

/* Response helpers. xl_http_json takes the reference to j. */
void xl_http_json(struct xl_http_resp *resp, int status, json_t *j);
void xl_http_error(struct xl_http_resp *resp, int status, const char *error, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* Query parameters: the first value of name, or NULL. */
const char *xl_http_arg(struct xl_http_req *req, const char *name);
/* Every value of a repeated parameter; returns how many (at most max). */
size_t xl_http_args(struct xl_http_req *req, const char *name, const char **out, size_t max);

/* Per-status request counts since start, for /metrics. */
struct xl_http_stats {
    uint64_t requests;
    uint64_t status_2xx, status_4xx, status_5xx;
    uint64_t bytes_in;
};
void xl_http_get_stats(struct xl_http *h, struct xl_http_stats *out);

#endif
