/* xluo-server: HTTP layer over libmicrohttpd. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
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

struct xl_http {
    struct MHD_Daemon *mhd;
    struct xl_http_opts o;
    uint16_t port;
    _Atomic uint64_t requests, s2xx, s4xx, s5xx, bytes_in;
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

void xl_http_json(struct xl_http_resp *resp, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    resp->status = status;
    resp->content_type = "application/json";
    xl_buf_reset(&resp->body);
    if (s) {
        if (xl_buf_adds(&resp->body, s) != XL_OK || xl_buf_add(&resp->body, "\n", 1) != XL_OK) {
            resp->status = 500;
            xl_buf_reset(&resp->body);
            xl_buf_adds(&resp->body, "{\"error\":\"out of memory\"}\n");
        }
        free(s);
    } else {
        resp->status = 500;
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
    ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    if (resp->status >= 500)
        atomic_fetch_add(&h->s5xx, 1);
    else if (resp->status >= 400)
        atomic_fetch_add(&h->s4xx, 1);
    else
        atomic_fetch_add(&h->s2xx, 1);
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
    return send_resp(h, conn, &st->resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *con_cls;

    if (!st)
        return;
    req_free_params(&st->req);
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
    h->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
            (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        xl_free(h);
        return xl_err_set(err, XL_EIO, "cannot listen on %s (address in use or not local?)",
                          o->listen);
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return XL_OK;
}

void xl_http_stop(struct xl_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
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
