/* xluo-server: the HTTP front (libmicrohttpd, thread pool + epoll).
 *
 * A route table maps method + path pattern to a handler. The layer reads
 * the body into a bounded buffer (413 beyond max_body, decided from
 * Content-Length before reading when possible), checks the bearer token the
 * route asks for, calls the handler on a worker thread and sends what it
 * put in the response. Handlers may block (they run on the pool).
 *
 * A handler may answer with a stream instead of a body (Server-Sent
 * Events): the layer pulls bytes from the stream's read callback whenever
 * the connection can take more. When the callback has nothing, the
 * connection is suspended (it holds no worker thread and costs no CPU)
 * until the owner calls xl_http_stream_wake(). */
#ifndef XL_HTTP_H
#define XL_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

struct xl_http_stream;

struct xl_http_resp {
    int status;
    struct xl_buf body;
    const char *content_type;
    unsigned retry_after; /* seconds; not 0: sent as a Retry-After header */
    /* Set (with status and content_type) to answer with a stream instead
     * of body: the layer takes this reference, even when it fails. */
    struct xl_http_stream *stream;
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
/* A request header (case-insensitive name), or NULL. */
const char *xl_http_header(struct xl_http_req *req, const char *name);
/* Every value of a repeated parameter; returns how many (at most max). */
size_t xl_http_args(struct xl_http_req *req, const char *name, const char **out, size_t max);

/* ---- Streamed responses ---- */

/* What a read callback returns besides a byte count (> 0) and 0 ("nothing
 * now": the connection waits for xl_http_stream_wake). */
#define XL_HTTP_STREAM_END ((ssize_t)-1)   /* the body is complete */
#define XL_HTTP_STREAM_ERROR ((ssize_t)-2) /* cut the connection */

/* Fill buf with at most max bytes of the body. Called on a worker thread,
 * one call at a time per stream; may block briefly (a store query). */
typedef ssize_t (*xl_http_stream_read_fn)(void *ctx, char *buf, size_t max);
/* The connection is done with the stream (the body ended, the client went
 * away, the server stops, or the response could not be queued): the owner
 * frees ctx and must drop its references. Called exactly once for a stream
 * handed to the layer in resp->stream, never for one that was not; never
 * while a read is running. */
typedef void (*xl_http_stream_free_fn)(void *ctx);

/* A new stream; the caller holds one reference. XL_ENOMEM. */
xl_rc xl_http_stream_new(xl_http_stream_read_fn read, xl_http_stream_free_fn free_fn, void *ctx,
                         struct xl_http_stream **out, struct xl_err *err);
/* Take another reference (for the owner that wakes the stream). */
struct xl_http_stream *xl_http_stream_ref(struct xl_http_stream *s);
/* Drop a reference; the memory goes with the last one. NULL is fine. */
void xl_http_stream_unref(struct xl_http_stream *s);
/* There is data (or a change) for read: call it again soon. Thread-safe,
 * never blocks on the client; cheap when the stream is not waiting. */
void xl_http_stream_wake(struct xl_http_stream *s);
/* While the stream waits for data, the server does not see the client
 * hang up; this checks the socket (without reading) and, if the client
 * has closed it, ends the stream (the free callback follows soon). Returns
 * whether the client is known to be gone. Thread-safe; a poll per call. */
bool xl_http_stream_probe(struct xl_http_stream *s);

/* Per-status request counts since start, for /metrics. */
struct xl_http_stats {
    uint64_t requests;
    uint64_t status_2xx, status_4xx, status_5xx;
    uint64_t bytes_in;
};
void xl_http_get_stats(struct xl_http *h, struct xl_http_stats *out);

#endif
