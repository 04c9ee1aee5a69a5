/* xluo-agent: the local HTTP endpoint (see local.h).
 *
 * A small HTTP/1.1 server on the agent's libuv loop: a listening uv_tcp,
 * at most CONNS_MAX connections (more are accepted and closed at once),
 * each with its own request parser (http_parse.c, request mode), an input
 * buffer and an idle timer. Requests on one connection are handled one
 * after the other: once a request is complete its handler runs and its
 * response is written, and reading stops until the write finished; then
 * the bytes of a pipelined request already read are parsed. A response
 * always has a Content-Length. A connection is closed after a response
 * marked "Connection: close" (the client asked, HTTP/1.0 without
 * keep-alive, a malformed request, a body over max_body): the write side
 * is shut down and what the client still sends is read and dropped for a
 * moment ("lingering close"), so that the client sees the answer instead
 * of a reset.
 *
 * Lifetimes follow libuv's rules: a connection's memory goes in the close
 * callback of the last of its two handles, the endpoint's once the
 * listener and every connection are closed. */
#include "local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "http_parse.h"

#define MOD "local"

#define CONNS_MAX 64
#define BACKLOG 64
/* A connection that sends nothing (or does not read its answer) for this
 * long is closed. */
#define IDLE_MS 10000
/* After the last response on a connection, what the client still sends is
 * dropped for at most this long. */
#define LINGER_MS 2000
#define IN_MAX 16384
#define METRICS_MAX (64u << 20)
#define OUT_MAX (METRICS_MAX + 4096)
/* Keep at most this much buffer memory on an idle connection. */
#define KEEP_MAX 65536

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;       /* idle, then lingering timeout */
    uv_write_t wr;          /* the response */
    uv_write_t wr_continue; /* "100 Continue" */
    uv_shutdown_t shut;
    struct xl_local *l;
    struct conn *prev, *next; /* l->conns */
    struct xl_http_parser p;
    struct xl_buf body; /* the push body, at most max_body */
    xl_rc body_rc;      /* XL_ETOOBIG or XL_ENOMEM once the body did not fit */
    struct xl_buf out;  /* the response being written */
    int handles;        /* open handles; the memory goes at 0 */
    bool head_checked;  /* 100 Continue / early 413 decided for this request */
    bool reading, writing, continuing, close_after, lingering, closing;
    bool waiting;       /* a push waits for the outbox to make it durable */
    uint64_t wait_for;  /* ... up to this record number */
    size_t accepted;    /* ... and then answers this */
    size_t in_off, in_len; /* unparsed input in in[in_off, in_len) */
    char in[IN_MAX];
};

struct xl_local {
    uv_tcp_t listener;
    size_t max_body;
    struct xl_local_ops ops;
    struct conn *conns;
    unsigned nconns; /* connections not yet freed, closing ones included */
    bool stopping, listener_closed;
};

static void process(struct conn *c);

/* ---- lifetime ---- */

static void maybe_free(struct xl_local *l)
{
    if (l->stopping && l->listener_closed && l->nconns == 0)
        xl_free(l);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct xl_local *l = c->l;

    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->nconns--;
    xl_buf_cleanup(&c->body);
    xl_buf_cleanup(&c->out);
    xl_free(c);
    maybe_free(l);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    struct conn *c = s->data;

    if (status < 0 && !c->closing)
        conn_close(c);
}

/* The last response is written: stop sending, drop what still comes until
 * the client closes or LINGER_MS pass. */
static void linger(struct conn *c)
{
    c->lingering = true;
    c->in_off = c->in_len = 0;
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;

    c->writing = false;
    if (c->out.cap > KEEP_MAX) {
        xl_buf_cleanup(&c->out);
        xl_buf_init(&c->out, OUT_MAX);
    }
    xl_buf_reset(&c->out);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        linger(c);
        process(c); /* reading resumes, to drop */
        return;
    }
    uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
    process(c);
}

/* Ready the connection for its next request. */
static void next_request(struct conn *c)
{
    xl_http_parser_init_request(&c->p);
    xl_buf_cleanup(&c->body);
    xl_buf_init(&c->body, c->l->max_body);
    c->body_rc = XL_OK;
    c->head_checked = false;
}

/* Write one response: status line, Content-Type, Content-Length, extra
 * header lines (each ending in CRLF, may be ""), and body unless the
 * request was HEAD. With close, "Connection: close" and the connection is
 * closed once it is written; otherwise the next request is read. */
static void respond(struct conn *c, int status, const char *type, const char *extra,
                    const char *body, size_t len, bool close)
{
    bool head = strcmp(c->p.method, "HEAD") == 0;
    const char *conn_hdr = "";
    uv_buf_t b;
    int e;

    close = close || !c->p.keep_alive || c->l->stopping;
    if (close)
        conn_hdr = "Connection: close\r\n";
    else if (c->p.minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    xl_buf_reset(&c->out);
    if (xl_buf_printf(&c->out,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                      status, reason(status), type, len, extra, conn_hdr) != XL_OK ||
        (!head && len && xl_buf_add(&c->out, body, len) != XL_OK)) {
        conn_close(c);
        return;
    }
    c->close_after = close;
    if (!close)
        next_request(c);
    b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    c->writing = true;
    if ((e = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_write)) < 0) {
        c->writing = false;
        conn_close(c);
    }
}

static void respond_json(struct conn *c, int status, json_t *obj, const char *extra, bool close)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    if (!s) {
        conn_close(c);
        return;
    }
    respond(c, status, "application/json", extra, s, strlen(s), close);
    free(s);
}

/* {"error": error, "detail": detail} */
static void respond_error(struct conn *c, int status, const char *error, const char *detail,
                          const char *extra, bool close)
{
    respond_json(c, status, json_pack("{s:s, s:s}", "error", error, "detail", detail), extra,
                 close);
}

static void respond_too_big(struct conn *c)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "the body is over %zu bytes (push max_body)", c->l->max_body);
    respond_error(c, 413, "body too large", msg, "", true);
}

/* ---- requests ---- */

/* The request target's path (the query string is not looked at). */
static bool path_is(const struct conn *c, const char *path)
{
    size_t n = strcspn(c->p.target, "?");

    return n == strlen(path) && strncmp(c->p.target, path, n) == 0;
}

static bool is_push(const struct conn *c)
{
    return strcmp(c->p.method, "POST") == 0 && path_is(c, "/v1/push");
}

static void on_body(void *ctx, const char *p, size_t n)
{
    struct conn *c = ctx;

    /* A body on another route is read and dropped. */
    if (c->body_rc != XL_OK || !is_push(c))
        return;
    c->body_rc = xl_buf_add(&c->body, p, n);
}

static void do_push(struct conn *c)
{
    struct xl_local *l = c->l;
    struct xl_err err = {0};
    size_t accepted = 0;
    uint64_t wait = 0;
    xl_rc rc;

    if (c->body_rc == XL_ETOOBIG) {
        respond_too_big(c);
        return;
    }
    if (c->body_rc != XL_OK) {
        respond_error(c, 503, "out of memory", "try again later", "", false);
        return;
    }
    rc = l->ops.push(l->ops.ctx, c->body.data ? c->body.data : "", c->body.len, &accepted, &wait,
                     &err);
    if (rc == XL_OK && wait) {
        /* Answered by xl_local_stable; reading pauses meanwhile, and so
         * does the idle timeout (a slow disk is not an idle client). */
        uv_timer_stop(&c->timer);
        c->waiting = true;
        c->wait_for = wait;
        c->accepted = accepted;
        return;
    }
    if (rc == XL_ETOOBIG)
        respond_error(c, 413, "too many records", err.msg, "", false);
    else if (rc == XL_ENOMEM)
        respond_error(c, 503, "out of memory", "try again later", "", false);
    else if (rc != XL_OK)
        respond_error(c, 400, "invalid records", err.msg, "", false);
    else
        respond_json(c, 200, json_pack("{s:I}", "accepted", (json_int_t)accepted), "", false);
}

void xl_local_stable(struct xl_local *l, uint64_t stable)
{
    struct conn *c, *next;

    for (c = l ? l->conns : NULL; c; c = next) {
        next = c->next;
        if (!c->waiting || c->closing || c->wait_for > stable)
            continue;
        c->waiting = false;
        respond_json(c, 200, json_pack("{s:I}", "accepted", (json_int_t)c->accepted), "", false);
    }
}

static void do_metrics(struct conn *c)
{
    struct xl_buf b;

    xl_buf_init(&b, METRICS_MAX);
    if (c->l->ops.metrics(c->l->ops.ctx, &b) != XL_OK)
        respond_error(c, 503, "out of memory", "try again later", "", false);
    else
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", "", b.data ? b.data : "", b.len,
                false);
    xl_buf_cleanup(&b);
}

/* A whole request was read: route it. */
static void dispatch(struct conn *c)
{
    const char *m = c->p.method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    char msg[300];

    if (is_push(c)) {
        do_push(c);
    } else if (get && path_is(c, "/healthz")) {
        json_t *o = json_pack("{s:s}", "status", "ok");

        if (o && c->l->ops.health)
            c->l->ops.health(c->l->ops.ctx, o);
        respond_json(c, 200, o, "", false);
    } else if (get && path_is(c, "/metrics")) {
        do_metrics(c);
    } else if (path_is(c, "/healthz") || path_is(c, "/metrics") || path_is(c, "/v1/push")) {
        snprintf(msg, sizeof(msg), "%s is not allowed on %.*s", m, (int)strcspn(c->p.target, "?"),
                 c->p.target);
        respond_error(c, 405, "method not allowed", msg,
                      path_is(c, "/v1/push") ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n", false);
    } else {
        snprintf(msg, sizeof(msg), "%.200s: the agent serves /healthz, /metrics, /v1/push",
                 c->p.target);
        respond_error(c, 404, "not found", msg, "", false);
    }
}

static void on_continue_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;

    c->continuing = false;
    if (status < 0 && !c->closing)
        conn_close(c);
}

/* The headers of a request with a body are in: refuse a push whose
 * Content-Length is over max_body before its body comes, or tell a client
 * that waits for it to send the body. */
static void check_head(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);

    c->head_checked = true;
    if (is_push(c) && c->p.have_length && !c->p.te && c->p.length > c->l->max_body) {
        respond_too_big(c);
        return;
    }
    if (!c->p.expect_continue || c->continuing)
        return;
    c->wr_continue.data = c;
    c->continuing = true;
    if (uv_write(&c->wr_continue, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) < 0) {
        c->continuing = false;
        conn_close(c);
    }
}

static const char *error_name(int status)
{
    switch (status) {
    case 414: return "target too long";
    case 431: return "headers too large";
    case 501: return "not implemented";
    default: return "bad request";
    }
}

/* Start or stop reading: a connection reads while it waits for a request
 * or drops input after its last response, not while an answer is written
 * (pipelined requests wait in the kernel meanwhile). */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_reading(struct conn *c)
{
    bool want = !c->closing && (c->lingering || (!c->writing && !c->waiting && !c->close_after));

    if (want == c->reading)
        return;
    if (want && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    if (!want)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

/* Parse what was read; run each complete request, one at a time. */
static void process(struct conn *c)
{
    struct xl_err err = {0};

    while (!c->closing && !c->lingering && !c->writing && !c->waiting && !c->close_after) {
        size_t used = 0;
        xl_rc rc = xl_http_parser_feed(&c->p, c->in + c->in_off, c->in_len - c->in_off, &used,
                                       on_body, c, &err);

        c->in_off += used;
        if (rc != XL_OK) {
            respond_error(c, c->p.status ? c->p.status : 400, error_name(c->p.status), err.msg, "",
                          true);
            break;
        }
        if (c->body_rc == XL_ETOOBIG) {
            respond_too_big(c);
            break;
        }
        if (xl_http_parser_done(&c->p)) {
            dispatch(c);
            continue;
        }
        if (xl_http_parser_headers_done(&c->p) && !c->head_checked) {
            check_head(c);
            continue;
        }
        break; /* all input used: wait for more */
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    set_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)hint;
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof(c->in) - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        /* The client closed (or reset): whatever request was partly read
         * is dropped with the connection. */
        conn_close(c);
        return;
    }
    if (c->lingering) {
        c->in_len = c->in_off = 0;
        return;
    }
    c->in_len += (size_t)nread;
    uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
    process(c);
}

/* ---- listening ---- */

static void on_rejected_closed(uv_handle_t *h)
{
    xl_free(h);
}

/* Over CONNS_MAX (or out of memory): accept and close at once, so the
 * client sees the connection end instead of waiting in the backlog. */
static void reject_connection(uv_stream_t *server)
{
    uv_tcp_t *t = xl_malloc(sizeof(*t));

    xl_log_rl(XL_LOG_WARN, 60, MOD, "%d connections open: closing a new one", CONNS_MAX);
    if (!t)
        return;
    uv_tcp_init(server->loop, t);
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct xl_local *l = server->data;
    struct conn *c;

    if (status < 0) {
        xl_log_rl(XL_LOG_WARN, 60, MOD, "accept: %s", uv_strerror(status));
        return;
    }
    if (l->nconns >= CONNS_MAX || !(c = xl_calloc(1, sizeof(*c)))) {
        reject_connection(server);
        return;
    }
    c->l = l;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    xl_buf_init(&c->body, l->max_body);
    xl_buf_init(&c->out, OUT_MAX);
    xl_http_parser_init_request(&c->p);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
    set_reading(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct xl_local *l = h->data;

    l->listener_closed = true;
    maybe_free(l);
}

xl_rc xl_local_start(uv_loop_t *loop, const char *addr, size_t max_body,
                     const struct xl_local_ops *ops, struct xl_local **out, struct xl_err *err)
{
    struct xl_local *l;
    struct sockaddr_storage ss = {0};
    socklen_t sslen;
    char host[256];
    uint16_t port;
    int fd, one = 1, e;
    xl_rc rc;

    *out = NULL;
    if ((rc = xl_hostport_split(addr, host, sizeof(host), &port, err)) != XL_OK)
        return rc;
    if (!*host)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        sslen = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        sslen = sizeof(struct sockaddr_in6);
    } else {
        return xl_err_set(err, XL_EINVAL, "listen: '%s' is not an IP address", host);
    }
    if (!(l = xl_calloc(1, sizeof(*l))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    l->max_body = max_body;
    l->ops = *ops;
    /* The socket is made, bound and listening before libuv sees it, so a
     * failure needs no handle to close. */
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, BACKLOG) < 0) {
        e = errno;
        if (fd >= 0)
            close(fd);
        xl_free(l);
        return xl_err_sys(err, XL_EIO, e, "listen: cannot listen on %s", addr);
    }
    uv_tcp_init(loop, &l->listener);
    l->listener.data = l;
    if ((e = uv_tcp_open(&l->listener, fd)) < 0)
        close(fd);
    if (e < 0 || (e = uv_listen((uv_stream_t *)&l->listener, BACKLOG, on_connection)) < 0) {
        /* l goes in the handle's close callback (which closes fd). */
        l->stopping = true;
        uv_close((uv_handle_t *)&l->listener, on_listener_closed);
        return xl_err_sys(err, XL_EIO, -e, "listen: cannot listen on %s", addr);
    }
    *out = l;
    return XL_OK;
}

void xl_local_stop(struct xl_local *l)
{
    if (!l)
        return;
    l->stopping = true;
    uv_close((uv_handle_t *)&l->listener, on_listener_closed);
    for (struct conn *c = l->conns; c; c = c->next)
        conn_close(c);
}
