/* xluo-server: HTTP layer over libmicrohttpd. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"

/* Preferred size of one read of a stream's body. */
#define STREAM_BLOCK 16384

struct xl_http {
    struct MHD_Daemon *mhd;
    struct xl_http_opts o;
    uint16_t port;
    _Atomic uint64_t requests, s2xx, s4xx, s5xx, bytes_in;
    pthread_mutex_t streams_mu; /* guards streams and stopping */
    struct xl_http_stream *streams; /* attached to a connection */
    _Atomic bool stopping;
};

/* A streamed body. Locks: s->mu may be taken with h->streams_mu held, not
 * the other way round; MHD_suspend_connection and MHD_resume_connection
 * are called with s->mu held (MHD takes its own mutex inside them and
 * calls none of ours there). */
struct xl_http_stream {
    _Atomic unsigned refs;
    xl_http_stream_read_fn read;
    xl_http_stream_free_fn free_fn;
    void *ctx;
    struct xl_http *h;           /* set once attached */
    struct MHD_Connection *conn; /* valid while attached */
    int fd;
    struct xl_http_stream *prev, *next; /* in h->streams */
    pthread_mutex_t mu; /* guards the flags below */
    bool suspended;     /* MHD_suspend_connection called, not resumed yet */
    bool wake_pending;  /* woken while not suspended: read again first */
    _Atomic bool gone;  /* the client hung up (seen by a probe) */
};

/* Match path against pattern; fill params with copies of {} segments. */
static bool route_match(const char *pattern, const char *path, struct xl_http_req *req)
{
    const char *p = pattern, *s = path;

    req->nparams = 0;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || req->nparams == XL_HTTP_MAX_PARAMS)
                return false;
            if (!(req->params[req->nparams] = xl_strndup(s, n)))
                return false;
            req->nparams++;
            s += n;
            p += 2;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

static void req_free_params(struct xl_http_req *req)
{
    for (size_t i = 0; i < req->nparams; i++)
        xl_free(req->params[i]);
    req->nparams = 0;
}

/* Find the route; *method_ok tells a 405 from a 404. */
static const struct xl_http_route *route_find(const struct xl_http *h, struct xl_http_req *req,
                                              bool *path_known)
{
    *path_known = false;
    for (const struct xl_http_route *r = h->o.routes; r->method; r++) {
        bool m = route_match(r->pattern, req->url, req);
        if (!m) {
            req_free_params(req);
            continue;
        }
        if (strcmp(r->method, req->method) == 0)
            return r;
        *path_known = true;
        req_free_params(req);
    }
    return NULL;
}

/* Constant-time comparison of the bearer token. */
static bool token_ok(struct MHD_Connection *conn, const char *want)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    size_t n, wn;
    unsigned char diff = 0;

    if (!want || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    n = strlen(h);
    wn = strlen(want);
    if (n != wn)
        return false;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h[i] ^ want[i]);
    return diff == 0;
}

static int dump_to_buf(const char *p, size_t n, void *data)
{
    return xl_buf_add(data, p, n) == XL_OK ? 0 : -1;
}

void xl_http_json(struct xl_http_resp *resp, int status, json_t *j)
{
    resp->status = status;
    resp->content_type = "application/json";
    xl_buf_reset(&resp->body);
    /* Straight into the body: no intermediate string to copy and free. */
    if (!j || json_dump_callback(j, dump_to_buf, &resp->body, JSON_COMPACT) != 0 ||
        xl_buf_add(&resp->body, "\n", 1) != XL_OK) {
        resp->status = 500;
        xl_buf_reset(&resp->body);
        xl_buf_adds(&resp->body, "{\"error\":\"out of memory\"}\n");
    }
    json_decref(j);
}

void xl_http_error(struct xl_http_resp *resp, int status, const char *error, const char *fmt,
                   ...)
{
    char detail[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    xl_http_json(resp, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

const char *xl_http_arg(struct xl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *xl_http_header(struct xl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct args_ctx {
    const char *name;
    const char **out;
    size_t max, n;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct args_ctx *c = cls;

    if (value && strcmp(key, c->name) == 0 && c->n < c->max)
        c->out[c->n++] = value;
    return MHD_YES;
}

size_t xl_http_args(struct xl_http_req *req, const char *name, const char **out, size_t max)
{
    struct args_ctx c = {.name = name, .out = out, .max = max};

    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &c);
    return c.n;
}

/* Set on a worker thread between ending the stream of a client that hung
 * up and the end of its connection, which MHD logs as an error. */
static _Thread_local bool closing_gone_stream;

xl_rc xl_http_stream_new(xl_http_stream_read_fn read, xl_http_stream_free_fn free_fn, void *ctx,
                         struct xl_http_stream **out, struct xl_err *err)
{
    struct xl_http_stream *s = xl_calloc(1, sizeof(*s));

    if (!s)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    atomic_init(&s->refs, 1);
    s->read = read;
    s->free_fn = free_fn;
    s->ctx = ctx;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return XL_OK;
}

struct xl_http_stream *xl_http_stream_ref(struct xl_http_stream *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void xl_http_stream_unref(struct xl_http_stream *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&s->mu);
    xl_free(s);
}

void xl_http_stream_wake(struct xl_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    } else {
        s->wake_pending = true;
    }
    pthread_mutex_unlock(&s->mu);
}

bool xl_http_stream_probe(struct xl_http_stream *s)
{
    bool gone;
    char c;

    pthread_mutex_lock(&s->mu);
    /* Only while suspended: MHD does not touch the socket then, and
     * MSG_PEEK leaves any bytes where they are. 0 is an orderly close. */
    if (s->suspended && s->fd >= 0) {
        ssize_t n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            atomic_store(&s->gone, true);
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
    }
    gone = atomic_load(&s->gone);
    pthread_mutex_unlock(&s->mu);
    return gone;
}

/* MHD's content reader: ask the stream; with nothing to send, suspend the
 * connection (returning 0 without suspending would make MHD call again at
 * once, a busy loop) until xl_http_stream_wake resumes it. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct xl_http_stream *s = cls;
    ssize_t n;

    for (;;) {
        /* A client that hung up: end the body; MHD then fails to send its
         * end on this thread, says so (to on_mhd_log) and closes. */
        if (atomic_load(&s->gone)) {
            closing_gone_stream = true;
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (atomic_load(&s->h->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        n = s->read(s->ctx, buf, max);
        if (n > 0)
            return n;
        if (n == XL_HTTP_STREAM_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_lock(&s->mu);
        if (s->wake_pending) {
            s->wake_pending = false;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        /* Checked under s->mu so that xl_http_stop, which sets stopping
         * and then resumes every suspended stream, cannot miss this one. */
        if (atomic_load(&s->h->stopping)) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        MHD_suspend_connection(s->conn);
        s->suspended = true;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
}

/* MHD is done with the response (and so with the connection's use of the
 * stream): detach, let the owner free its side, drop the layer's ref. */
static void stream_done(void *cls)
{
    struct xl_http_stream *s = cls;
    struct xl_http *h = s->h;

    closing_gone_stream = false;
    pthread_mutex_lock(&h->streams_mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_unlock(&h->streams_mu);
    s->free_fn(s->ctx);
    xl_http_stream_unref(s);
}

/* The layer was handed a stream it will not serve. */
static void stream_refuse(struct xl_http_stream *s)
{
    s->free_fn(s->ctx);
    xl_http_stream_unref(s);
}

static void count_status(struct xl_http *h, int status)
{
    if (status >= 500)
        atomic_fetch_add(&h->s5xx, 1);
    else if (status >= 400)
        atomic_fetch_add(&h->s4xx, 1);
    else
        atomic_fetch_add(&h->s2xx, 1);
}

static enum MHD_Result send_resp(struct xl_http *h, struct MHD_Connection *conn,
                                 struct xl_http_resp *resp);

/* Queue resp->stream as a chunked body of unknown length. */
static enum MHD_Result send_stream(struct xl_http *h, struct MHD_Connection *conn,
                                   struct xl_http_resp *resp)
{
    struct xl_http_stream *s = resp->stream;
    const union MHD_ConnectionInfo *ci;
    struct MHD_Response *r;
    enum MHD_Result ret;

    resp->stream = NULL;
    pthread_mutex_lock(&h->streams_mu);
    if (atomic_load(&h->stopping)) {
        pthread_mutex_unlock(&h->streams_mu);
        stream_refuse(s);
        xl_http_error(resp, 503, "shutting down", "the server is stopping");
        return send_resp(h, conn, resp);
    }
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->h = h;
    s->conn = conn;
    s->fd = ci ? ci->connect_fd : -1;
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    pthread_mutex_unlock(&h->streams_mu);
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_reader, s,
                                          stream_done);
    if (!r) {
        stream_done(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/octet-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
    ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r); /* MHD keeps its own reference; stream_done runs with the last */
    count_status(h, resp->status);
    return ret;
}

static enum MHD_Result send_resp(struct xl_http *h, struct MHD_Connection *conn,
                                 struct xl_http_resp *resp)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(resp->body.len, resp->body.data ? resp->body.data : "",
                                        MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    if (resp->status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (resp->retry_after) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%u", resp->retry_after);
        MHD_add_response_header(r, "Retry-After", secs);
    }
    ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    count_status(h, resp->status);
    return ret;
}

/* Decide early (before the body is read) whether the request is refused. */
static bool refuse_early(struct xl_http *h, struct xl_http_req *req,
                         const struct xl_http_route *route, bool path_known,
                         struct xl_http_resp *resp)
{
    const char *cl;

    if (!route) {
        if (path_known)
            xl_http_error(resp, 405, "method not allowed", "%s %s", req->method, req->url);
        else
            xl_http_error(resp, 404, "not found", "no route for %s %s", req->method, req->url);
        return true;
    }
    if (route->auth != XL_AUTH_NONE &&
        !token_ok(req->conn, route->auth == XL_AUTH_AGENT ? h->o.agent_token : h->o.api_token)) {
        xl_http_error(resp, 401, "unauthorized",
                      "missing or wrong bearer token (this route needs the %s token)",
                      route->auth == XL_AUTH_AGENT ? "agent" : "api");
        return true;
    }
    cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > h->o.max_body) {
        xl_http_error(resp, 413, "body too large", "Content-Length %s is over max_body (%zu bytes)",
                      cl, h->o.max_body);
        return true;
    }
    return false;
}

struct conn_state {
    struct xl_http_req req;
    const struct xl_http_route *route;
    struct xl_http_resp resp;
    bool refused;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct xl_http *h = cls;
    struct conn_state *st = *con_cls;
    bool path_known;

    if (!st) {
        if (!(st = xl_calloc(1, sizeof(*st))))
            return MHD_NO;
        st->req.conn = conn;
        st->req.method = method;
        st->req.url = url;
        xl_buf_init(&st->req.body, h->o.max_body);
        xl_buf_init(&st->resp.body, SIZE_MAX / 2);
        st->resp.status = 500;
        *con_cls = st;
        atomic_fetch_add(&h->requests, 1);
        st->route = route_find(h, &st->req, &path_known);
        st->refused = refuse_early(h, &st->req, st->route, path_known, &st->resp);
        if (st->refused)
            return send_resp(h, conn, &st->resp);
        return MHD_YES;
    }
    if (*upload_data_size) {
        atomic_fetch_add(&h->bytes_in, *upload_data_size);
        if (!st->req.too_big &&
            xl_buf_add(&st->req.body, upload_data, *upload_data_size) != XL_OK)
            st->req.too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->refused)
        return MHD_YES;
    if (st->req.too_big)
        xl_http_error(&st->resp, 413, "body too large", "body is over max_body (%zu bytes)",
                      h->o.max_body);
    else
        st->route->handler(h->o.app, &st->req, &st->resp);
    if (st->resp.stream)
        return send_stream(h, conn, &st->resp);
    return send_resp(h, conn, &st->resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *con_cls;

    if (!st)
        return;
    req_free_params(&st->req);
    if (st->resp.stream) /* never queued */
        stream_refuse(st->resp.stream);
    xl_buf_cleanup(&st->req.body);
    xl_buf_cleanup(&st->resp.body);
    xl_free(st);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* MHD complains that it cannot end the body of a stream whose client
     * hung up (see stream_reader): expected, so not a warning. */
    if (closing_gone_stream) {
        xl_log_debug("http", "%s", msg);
        return;
    }
    xl_log_rl(XL_LOG_WARN, 10, "http", "%s", msg);
}

xl_rc xl_http_start(const struct xl_http_opts *o, struct xl_http **out, struct xl_err *err)
{
    struct xl_http *h;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char host[256], portstr[8];
    uint16_t port;
    const union MHD_DaemonInfo *info;
    xl_rc rc;
    int grc;

    if ((rc = xl_hostport_split(o->listen, host, sizeof(host), &port, err)) != XL_OK)
        return rc;
    snprintf(portstr, sizeof(portstr), "%u", port);
    if ((grc = getaddrinfo(*host ? host : NULL, portstr, &hints, &ai)) != 0)
        return xl_err_set(err, XL_EINVAL, "listen %s: %s", o->listen, gai_strerror(grc));
    if (!(h = xl_calloc(1, sizeof(*h)))) {
        freeaddrinfo(ai);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    h->o = *o;
    pthread_mutex_init(&h->streams_mu, NULL);
    /* Before the threads start: handlers (/metrics) read it. */
    *out = h;
    h->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
            MHD_ALLOW_SUSPEND_RESUME |
            (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        *out = NULL;
        pthread_mutex_destroy(&h->streams_mu);
        xl_free(h);
        return xl_err_set(err, XL_EIO, "cannot listen on %s (address in use or not local?)",
                          o->listen);
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return XL_OK;
}

/* MHD must not be stopped with a suspended connection: refuse new
 * streams, then resume every waiting one (its next read ends it). The
 * resumes happen outside streams_mu, on references, like any wake. */
static void streams_end(struct xl_http *h)
{
    struct xl_http_stream **v = NULL, *s;
    size_t n = 0, cap = 0;

    pthread_mutex_lock(&h->streams_mu);
    atomic_store(&h->stopping, true);
    for (s = h->streams; s; s = s->next) {
        if (xl_grow((void **)&v, &cap, n + 1, sizeof(*v)) == 0)
            v[n++] = xl_http_stream_ref(s);
        else
            xl_http_stream_wake(s); /* out of memory: s->mu after streams_mu is allowed */
    }
    pthread_mutex_unlock(&h->streams_mu);
    for (size_t i = 0; i < n; i++) {
        xl_http_stream_wake(v[i]);
        xl_http_stream_unref(v[i]);
    }
    xl_free(v);
}

void xl_http_stop(struct xl_http *h)
{
    if (!h)
        return;
    streams_end(h);
    MHD_stop_daemon(h->mhd);
    pthread_mutex_destroy(&h->streams_mu);
    xl_free(h);
}

uint16_t xl_http_port(const struct xl_http *h)
{
    return h->port;
}

void xl_http_get_stats(struct xl_http *h, struct xl_http_stats *out)
{
    out->requests = atomic_load(&h->requests);
    out->status_2xx = atomic_load(&h->s2xx);
    out->status_4xx = atomic_load(&h->s4xx);
    out->status_5xx = atomic_load(&h->s5xx);
    out->bytes_in = atomic_load(&h->bytes_in);
}
