/* xluo-agent: a small HTTP/1.1 client on libuv (see httpc.h).
 *
 * A request goes through: name lookup (uv_getaddrinfo; skipped for numeric
 * hosts and for a kept-alive connection), connect (each address in turn,
 * within the connect timeout), one uv_write of the header block and the
 * body, and the response read with http_parse.c. A uv_timer per request
 * enforces the connect timeout and then the whole-request timeout.
 *
 * Lifetimes follow libuv's rules: a request's memory goes in its timer's
 * close callback, a connection's in its TCP handle's. A request that
 * finishes (answer, error, timeout, xl_httpc_close) leaves every list and
 * calls its callback at once; a connection that served it either goes back
 * to the idle list (one per host:port) or is closed. Idle connections keep
 * reading so that a server closing them is noticed; a request that finds
 * its reused connection closed before any response byte is retried once
 * on a new connection. */
#include "httpc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "httpc_curl.h"
#include "http_parse.h"

#define RESP_MAX (1u << 20)
/* Connecting gets at most this long, less when the request has less. */
#define CONNECT_MAX_MS 10000
/* An idle connection older than this is not reused (curl's default). */
#define IDLE_MAX_MS 118000
#define ADDRS_MAX 8
#define READ_BUF 16384
#define HOST_MAX 256
#define ORIGIN_MAX (HOST_MAX + 10) /* "[host]:port" */
#define HEAD_MAX (16 * 1024)

struct xl_httpc_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct xl_httpc *c;
    struct xl_httpc_req *req;   /* the request it serves; NULL when idle */
    struct xl_httpc_conn *next; /* in c->idle */
    struct xl_http_parser p;
    char origin[ORIGIN_MAX]; /* "host:port": the idle list's key */
    uint64_t idle_since;     /* loop time it went idle */
    unsigned served;         /* responses read on it */
    bool connected, writing, closing;
    char rbuf[READ_BUF];
};

/* A name lookup outlives its request when the request ends first: the
 * request then only clears req. */
struct resolve {
    uv_getaddrinfo_t gai;
    struct xl_httpc_req *req;
};

struct xl_httpc_req {
    struct xl_httpc_req *prev, *next; /* c->reqs */
    struct xl_httpc *c;
    uv_timer_t timer; /* deadline; the request is freed in its close callback */
    struct resolve *dns;
    struct xl_httpc_conn *conn;
    char *head; /* method, path and headers */
    size_t head_len;
    const char *body; /* the caller's body (borrowed until the callback), or NULL */
    size_t body_len;
    char host[HOST_MAX]; /* without brackets */
    int port;
    char origin[ORIGIN_MAX];
    struct sockaddr_storage addrs[ADDRS_MAX];
    int naddrs, addr_i;
    int last_uverr; /* the last connect error, for the message */
    struct xl_buf resp;
    uint64_t deadline, connect_deadline; /* loop time; 0 = none */
    long timeout_ms, connect_ms;
    bool retried, oom;
    xl_httpc_cb cb;
    void *ctx;
    char error[320];
};

static void start(struct xl_httpc_req *r);

xl_rc xl_httpc_init(struct xl_httpc *c, uv_loop_t *loop, struct xl_err *err)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    return XL_OK;
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    xl_free(h->data);
}

static void idle_remove(struct xl_httpc *c, struct xl_httpc_conn *k)
{
    for (struct xl_httpc_conn **pp = &c->idle; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            k->next = NULL;
            return;
        }
    }
}

/* Close k (detached from any request and from the idle list). A pending
 * connect or write gets UV_ECANCELED and does nothing. */
static void conn_close(struct xl_httpc_conn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    k->req = NULL;
    uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

/* The request is done with its connection: keep it for the next request
 * to the same origin when the response allows that, else close it. */
static void conn_release(struct xl_httpc_req *r, bool reusable)
{
    struct xl_httpc_conn *k = r->conn;
    struct xl_httpc *c = r->c;

    r->conn = NULL;
    if (!k)
        return;
    k->req = NULL;
    if (reusable && !c->closed) {
        for (struct xl_httpc_conn *i = c->idle; i; i = i->next)
            if (strcmp(i->origin, k->origin) == 0)
                reusable = false;
    }
    if (!reusable) {
        conn_close(k);
        return;
    }
    k->idle_since = uv_now(c->loop);
    k->next = c->idle;
    c->idle = k;
}

/* ---- finishing a request ---- */

static void on_req_closed(uv_handle_t *h)
{
    struct xl_httpc_req *r = h->data;

    xl_free(r->head);
    xl_buf_cleanup(&r->resp);
    xl_free(r);
}

/* End r: out of every list, its connection released (reusable: back to
 * the idle list), then its callback, once. error NULL means success. */
static void finish(struct xl_httpc_req *r, long status, const char *error, bool reusable)
{
    struct xl_httpc *c = r->c;

    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->inflight--;
    if (r->dns) {
        r->dns->req = NULL;
        uv_cancel((uv_req_t *)&r->dns->gai);
        r->dns = NULL;
    }
    conn_release(r, reusable && !error);
    uv_timer_stop(&r->timer);
    if (error && error != r->error)
        snprintf(r->error, sizeof(r->error), "%s", error);
    if (error)
        r->cb(r->ctx, 0, "", 0, r->error);
    else
        r->cb(r->ctx, status, r->resp.data ? r->resp.data : "", r->resp.len, NULL);
    uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static void finishf(struct xl_httpc_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void finishf(struct xl_httpc_req *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    finish(r, 0, r->error, false);
}

/* A human message for a libuv error on r's connection. */
static void uv_error_msg(struct xl_httpc_req *r, int uverr, const char *op, char *out, size_t cap)
{
    switch (uverr) {
    case UV_ECONNREFUSED: snprintf(out, cap, "connection refused (%s)", r->origin); break;
    case UV_ECONNRESET: snprintf(out, cap, "connection reset by peer (%s)", r->origin); break;
    case UV_EPIPE:
        snprintf(out, cap, "connection closed by peer while sending the request (%s)", r->origin);
        break;
    default: snprintf(out, cap, "%s %s: %s", op, r->origin, uv_strerror(uverr));
    }
}

/* The connection of r failed: uverr (0 if none) and msg (NULL: made from
 * uverr and op).
 * A reused connection that failed before any byte of the answer was most
 * likely closed by the server while idle: try once more on a new one. */
static void conn_failed(struct xl_httpc_req *r, int uverr, const char *op, const char *msg)
{
    struct xl_httpc_conn *k = r->conn;
    char buf[sizeof(r->error)];

    if (k && k->served > 0 && k->p.bytes == 0 && !r->retried &&
        (uverr == UV_EOF || uverr == UV_ECONNRESET || uverr == UV_EPIPE ||
         uverr == UV_ECONNABORTED)) {
        r->retried = true;
        conn_release(r, false);
        r->connect_deadline = uv_now(r->c->loop) + (uint64_t)r->connect_ms;
        if (r->deadline && r->connect_deadline > r->deadline)
            r->connect_deadline = r->deadline;
        start(r);
        return;
    }
    if (!msg) {
        uv_error_msg(r, uverr, op, buf, sizeof(buf));
        msg = buf;
    }
    finish(r, 0, msg, false);
}

/* ---- response ---- */

static void on_body(void *ctx, const char *p, size_t n)
{
    struct xl_httpc_req *r = ctx;
    size_t room = RESP_MAX - r->resp.len;

    /* Keep what fits; a longer answer is cut, never an error. The rest is
     * still read, so the connection stays usable. */
    if (n > room)
        n = room;
    if (n && !r->oom && xl_buf_add(&r->resp, p, n) != XL_OK)
        r->oom = true;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct xl_httpc_conn *k = h->data;

    *buf = uv_buf_init(k->rbuf, sizeof(k->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct xl_httpc_conn *k = s->data;
    struct xl_httpc_req *r = k->req;
    struct xl_err err = {0};
    size_t used = 0;

    if (k->closing || nread == 0)
        return;
    if (!r) {
        /* Idle: the server closed it, or sent what nobody asked for. */
        idle_remove(k->c, k);
        conn_close(k);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_failed(r, (int)nread, "reading from", NULL);
        } else if (xl_http_parser_eof(&k->p, &err) == XL_OK) {
            k->served++;
            finish(r, k->p.status, NULL, false);
        } else {
            conn_failed(r, k->p.bytes ? 0 : UV_EOF, "reading from", err.msg);
        }
        return;
    }
    if (xl_http_parser_feed(&k->p, buf->base, (size_t)nread, &used, on_body, r, &err) != XL_OK) {
        finish(r, 0, err.msg, false);
        return;
    }
    if (r->oom) {
        finish(r, 0, "out of memory reading the response", false);
        return;
    }
    if (xl_http_parser_done(&k->p)) {
        k->served++;
        /* Not reusable: the server said so, it sent more than the answer,
         * or it answered before taking the whole request. */
        finish(r, k->p.status, NULL, k->p.keep_alive && used == (size_t)nread && !k->writing);
    }
}

/* ---- request ---- */

static void on_deadline(uv_timer_t *t)
{
    struct xl_httpc_req *r = t->data;
    bool connecting = !r->conn || !r->conn->connected;

    if (connecting && (!r->deadline || r->connect_deadline < r->deadline))
        finishf(r, "connect to %s timed out after %ld ms", r->origin, r->connect_ms);
    else
        finishf(r, "timed out after %ld ms", r->timeout_ms);
}

/* Make r's timer fire at loop time `when` (at once if that has passed). */
static void arm(struct xl_httpc_req *r, uint64_t when)
{
    uint64_t now = uv_now(r->c->loop);

    uv_timer_start(&r->timer, on_deadline, when > now ? when - now : 0, 0);
}

static void on_write(uv_write_t *w, int status)
{
    struct xl_httpc_conn *k = w->data;

    k->writing = false;
    if (k->closing || !k->req || status == 0)
        return;
    conn_failed(k->req, status, "sending to", NULL);
}

/* Send r's request on its connection (connected, reading). */
static void send_request(struct xl_httpc_req *r)
{
    struct xl_httpc_conn *k = r->conn;
    uv_buf_t bufs[2] = {uv_buf_init(r->head, (unsigned)r->head_len),
                        uv_buf_init((char *)r->body, (unsigned)r->body_len)};
    int e;

    xl_http_parser_init_response(&k->p);
    if (r->deadline)
        arm(r, r->deadline);
    else
        uv_timer_stop(&r->timer);
    k->writing = true;
    if ((e = uv_write(&k->write, (uv_stream_t *)&k->tcp, bufs, r->body_len ? 2 : 1, on_write)) <
        0) {
        k->writing = false;
        conn_failed(r, e, "sending to", NULL);
    }
}

static void connect_next(struct xl_httpc_req *r);

static void on_connect(uv_connect_t *creq, int status)
{
    struct xl_httpc_conn *k = creq->data;
    struct xl_httpc_req *r = k->req;
    int e;

    if (k->closing || !r)
        return;
    if (status < 0) {
        r->last_uverr = status;
        r->addr_i++;
        conn_release(r, false);
        connect_next(r);
        return;
    }
    k->connected = true;
    uv_tcp_nodelay(&k->tcp, 1);
    if ((e = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read)) < 0) {
        conn_failed(r, e, "reading from", NULL);
        return;
    }
    send_request(r);
}

/* Connect to r's next address; when none is left, fail with the last
 * error. */
static void connect_next(struct xl_httpc_req *r)
{
    struct xl_httpc_conn *k;
    char msg[sizeof(r->error)];
    int e;

    for (; r->addr_i < r->naddrs; r->addr_i++) {
        if (!(k = xl_calloc(1, sizeof(*k)))) {
            finishf(r, "out of memory");
            return;
        }
        k->c = r->c;
        snprintf(k->origin, sizeof(k->origin), "%s", r->origin);
        k->tcp.data = k->connect.data = k->write.data = k;
        if ((e = uv_tcp_init(r->c->loop, &k->tcp)) < 0) {
            xl_free(k);
            finishf(r, "cannot make a socket: %s", uv_strerror(e));
            return;
        }
        k->req = r;
        r->conn = k;
        e = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&r->addrs[r->addr_i],
                           on_connect);
        if (e == 0)
            return;
        r->last_uverr = e;
        conn_release(r, false);
    }
    uv_error_msg(r, r->last_uverr ? r->last_uverr : UV_EADDRNOTAVAIL, "cannot connect to", msg,
                 sizeof(msg));
    finish(r, 0, msg, false);
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct resolve *d = gai->data;
    struct xl_httpc_req *r = d->req;

    xl_free(d);
    if (!r) {
        uv_freeaddrinfo(res);
        return;
    }
    r->dns = NULL;
    if (status < 0) {
        finishf(r, "cannot resolve host \"%s\": %s", r->host, uv_strerror(status));
        return;
    }
    r->naddrs = r->addr_i = 0;
    for (struct addrinfo *a = res; a && r->naddrs < ADDRS_MAX; a = a->ai_next) {
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
            a->ai_addrlen <= sizeof(r->addrs[0]))
            memcpy(&r->addrs[r->naddrs++], a->ai_addr, a->ai_addrlen);
    }
    uv_freeaddrinfo(res);
    if (r->naddrs == 0) {
        finishf(r, "cannot resolve host \"%s\": no IPv4 or IPv6 address", r->host);
        return;
    }
    connect_next(r);
}

/* Take the idle connection to r's origin, if there is a fresh one. */
static struct xl_httpc_conn *idle_take(struct xl_httpc_req *r)
{
    struct xl_httpc *c = r->c;

    for (struct xl_httpc_conn *k = c->idle; k; k = k->next) {
        if (strcmp(k->origin, r->origin) != 0)
            continue;
        idle_remove(c, k);
        if (uv_now(c->loop) - k->idle_since > IDLE_MAX_MS) {
            conn_close(k);
            return NULL;
        }
        return k;
    }
    return NULL;
}

/* Get r a connection: an idle one to its origin (unless this is the retry),
 * or a new one, looking the name up first when it is not numeric. */
static void start(struct xl_httpc_req *r)
{
    struct xl_httpc_conn *k = r->retried ? NULL : idle_take(r);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[8];
    int e;

    if (k) {
        k->req = r;
        r->conn = k;
        send_request(r);
        return;
    }
    arm(r, r->connect_deadline);
    r->addr_i = 0;
    if (r->naddrs) {
        connect_next(r);
        return;
    }
    if (!(r->dns = xl_calloc(1, sizeof(*r->dns)))) {
        finishf(r, "out of memory");
        return;
    }
    r->dns->req = r;
    r->dns->gai.data = r->dns;
    snprintf(port, sizeof(port), "%d", r->port);
    hints.ai_flags = AI_ADDRCONFIG;
    if ((e = uv_getaddrinfo(r->c->loop, &r->dns->gai, on_resolved, r->host, port, &hints)) < 0) {
        xl_free(r->dns);
        r->dns = NULL;
        finishf(r, "cannot resolve host \"%s\": %s", r->host, uv_strerror(e));
    }
}

/* The first step of a request runs from the loop, so that its callback is
 * never called before xl_httpc_request has returned. */
static void on_kickoff(uv_timer_t *t)
{
    start(t->data);
}

/* ---- URL and header block ---- */

struct url {
    bool https;
    char host[HOST_MAX];
    int port;
    bool ipv6;
    const char *path; /* from the first '/' or '?', up to '#' */
    size_t path_len;
};

/* Split url into scheme, host, port and path. XL_EINVAL with the reason. */
static xl_rc url_parse(const char *url, struct url *u, struct xl_err *err)
{
    const char *p = url, *host, *host_end, *end;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        u->port = 80;
    } else if (strncasecmp(p, "https://", 8) == 0) {
        u->https = true;
        return XL_OK;
    } else {
        return xl_err_set(err, XL_EINVAL, "URL \"%s\": only http:// and https:// are supported",
                          url);
    }
    end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(end - p)))
        return xl_err_set(err, XL_EINVAL, "URL \"%s\": user:password@ is not supported", url);
    if (*p == '[') {
        host = p + 1;
        if (!(host_end = memchr(host, ']', (size_t)(end - host))))
            return xl_err_set(err, XL_EINVAL, "URL \"%s\": missing ']'", url);
        p = host_end + 1;
        u->ipv6 = true;
    } else {
        host = p;
        host_end = memchr(host, ':', (size_t)(end - host));
        if (!host_end)
            host_end = end;
        p = host_end;
    }
    n = (size_t)(host_end - host);
    if (n == 0 || n >= sizeof(u->host))
        return xl_err_set(err, XL_EINVAL, "URL \"%s\": bad host", url);
    memcpy(u->host, host, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u->host[i] <= 0x20 || u->host[i] == 0x7f)
            return xl_err_set(err, XL_EINVAL, "URL \"%s\": bad host", url);
    if (p < end) {
        long port = 0;

        if (*p++ != ':' || p == end)
            return xl_err_set(err, XL_EINVAL, "URL \"%s\": bad port", url);
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
                return xl_err_set(err, XL_EINVAL, "URL \"%s\": bad port", url);
        }
        if (port == 0)
            return xl_err_set(err, XL_EINVAL, "URL \"%s\": bad port", url);
        u->port = (int)port;
    }
    u->path = end;
    u->path_len = strcspn(end, "#");
    for (size_t i = 0; i < u->path_len; i++)
        if ((unsigned char)u->path[i] <= 0x20 || u->path[i] == 0x7f)
            return xl_err_set(err, XL_EINVAL, "URL \"%s\": space or control byte in the path", url);
    return XL_OK;
}

/* Does s hold only bytes allowed in a header value (no CR, LF, NUL)? */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    return true;
}

static bool method_ok(const char *m)
{
    if (!*m)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

/* Fill r's header block. */
static xl_rc head_build(struct xl_httpc_req *r, const char *method, const struct url *u,
                        const char *token, const char *encoding, const char *body,
                        struct xl_err *err)
{
    struct xl_buf b;
    xl_rc rc;

    xl_buf_init(&b, HEAD_MAX + (token ? strlen(token) : 0));
    rc = xl_buf_printf(&b, "%s %s%.*s HTTP/1.1\r\nHost: %s%s%s", method,
                       u->path_len && u->path[0] == '/' ? "" : "/", (int)u->path_len, u->path,
                       u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "");
    if (rc == XL_OK && u->port != 80)
        rc = xl_buf_printf(&b, ":%d", u->port);
    if (rc == XL_OK)
        rc = xl_buf_adds(&b, "\r\nUser-Agent: xluo-agent\r\nAccept: */*\r\n"
                             "Content-Type: application/json\r\n");
    if (rc == XL_OK && token)
        rc = xl_buf_printf(&b, "Authorization: Bearer %s\r\n", token);
    if (rc == XL_OK && encoding)
        rc = xl_buf_printf(&b, "Content-Encoding: %s\r\n", encoding);
    if (rc == XL_OK && (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0))
        rc = xl_buf_printf(&b, "Content-Length: %zu\r\n", r->body_len);
    if (rc == XL_OK)
        rc = xl_buf_adds(&b, "\r\n");
    if (rc != XL_OK) {
        xl_buf_cleanup(&b);
        if (rc == XL_ETOOBIG)
            return xl_err_set(err, rc, "request headers longer than %d bytes (URL too long)",
                              HEAD_MAX);
        return xl_err_set(err, rc, "out of memory");
    }
    r->head_len = b.len;
    r->head = xl_buf_take(&b);
    return XL_OK;
}

xl_rc xl_httpc_request(struct xl_httpc *c, const char *method, const char *url, const char *token,
                       const char *body, size_t len, long timeout_ms, xl_httpc_cb cb, void *ctx,
                       struct xl_err *err)
{
    return xl_httpc_request_encoded(c, method, url, token, NULL, body, len, timeout_ms, cb, ctx,
                                    err);
}

xl_rc xl_httpc_request_encoded(struct xl_httpc *c, const char *method, const char *url,
                               const char *token, const char *encoding, const char *body,
                               size_t len, long timeout_ms, xl_httpc_cb cb, void *ctx,
                               struct xl_err *err)
{
    struct xl_httpc_req *r;
    struct url u;
    xl_rc rc;

    if (c->closed)
        return xl_err_set(err, XL_ESTATE, "HTTP client closed");
    if (!method_ok(method))
        return xl_err_set(err, XL_EINVAL, "bad HTTP method \"%s\"", method);
    if (token && !header_safe(token))
        return xl_err_set(err, XL_EINVAL, "the token holds a control character");
    if (encoding && !header_safe(encoding))
        return xl_err_set(err, XL_EINVAL, "the content encoding holds a control character");
    if (len > UINT32_MAX)
        return xl_err_set(err, XL_ETOOBIG, "request body of %zu bytes", len);
    if ((rc = url_parse(url, &u, err)) != XL_OK)
        return rc;
    if (u.https) {
        if (!c->curl && (rc = xl_httpc_curl_new(c, &c->curl, err)) != XL_OK)
            return rc;
        return xl_httpc_curl_request(c->curl, method, url, token, encoding, body, len, timeout_ms,
                                     cb, ctx, err);
    }

    if (!(r = xl_calloc(1, sizeof(*r))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    r->c = c;
    r->cb = cb;
    r->ctx = ctx;
    xl_buf_init(&r->resp, RESP_MAX);
    memcpy(r->host, u.host, sizeof(r->host));
    r->port = u.port;
    snprintf(r->origin, sizeof(r->origin), "%s%s%s:%d", u.ipv6 ? "[" : "", u.host,
             u.ipv6 ? "]" : "", u.port);
    r->body = body;
    r->body_len = body ? len : 0;
    if ((rc = head_build(r, method, &u, token, encoding, body, err)) != XL_OK)
        goto out_free;
    if (uv_ip4_addr(u.host, u.port, (struct sockaddr_in *)&r->addrs[0]) == 0 ||
        uv_ip6_addr(u.host, u.port, (struct sockaddr_in6 *)&r->addrs[0]) == 0)
        r->naddrs = 1;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    r->connect_ms = timeout_ms > 0 && timeout_ms < CONNECT_MAX_MS ? timeout_ms : CONNECT_MAX_MS;
    r->connect_deadline = uv_now(c->loop) + (uint64_t)r->connect_ms;
    if (r->timeout_ms)
        r->deadline = uv_now(c->loop) + (uint64_t)r->timeout_ms;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->inflight++;
    /* From here on every failure reaches the callback. */
    uv_timer_start(&r->timer, on_kickoff, 0, 0);
    return XL_OK;
out_free:
    xl_free(r->head);
    xl_free(r);
    return rc;
}

void xl_httpc_close(struct xl_httpc *c)
{
    c->closed = true;
    while (c->reqs)
        finish(c->reqs, 0, "client closed", false);
    while (c->idle) {
        struct xl_httpc_conn *k = c->idle;

        c->idle = k->next;
        conn_close(k);
    }
    xl_httpc_curl_free(c->curl);
    c->curl = NULL;
}
