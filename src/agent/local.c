/* xluo-agent: the local HTTP endpoint (see local.h). */
#include "local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"

#define MOD "local"

struct xl_local {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    size_t max_body;
    struct xl_local_ops ops;
    int closing;
};

/* A request's body as it arrives. */
struct upload {
    struct xl_buf body;
    bool too_big;
};

static void schedule(struct xl_local *l);

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_json(struct MHD_Connection *c, unsigned status, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);

    json_decref(obj);
    if (!s)
        return MHD_NO;
    return answer(c, status, "application/json", s, strlen(s));
}

static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned status,
                                    const char *error, const char *detail)
{
    return answer_json(c, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct xl_local *l = cls;
    struct upload *up = *con_cls;
    struct xl_err err = {0};

    (void)version;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/push") == 0) {
        size_t accepted = 0;
        json_t *o;
        xl_rc rc;

        if (!up) {
            if (!(up = xl_calloc(1, sizeof(*up))))
                return MHD_NO;
            xl_buf_init(&up->body, l->max_body);
            *con_cls = up;
            return MHD_YES;
        }
        if (*upload_size) {
            if (!up->too_big && xl_buf_add(&up->body, upload_data, *upload_size) != XL_OK)
                up->too_big = true;
            *upload_size = 0;
            return MHD_YES;
        }
        if (up->too_big) {
            snprintf(err.msg, sizeof(err.msg), "the body is over %zu bytes (push max_body)",
                     l->max_body);
            return answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large", err.msg);
        }
        rc = l->ops.push(l->ops.ctx, up->body.data ? up->body.data : "", up->body.len,
                         &accepted, &err);
        if (rc == XL_ETOOBIG)
            return answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too many records", err.msg);
        if (rc == XL_ENOMEM)
            return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory",
                                "try again later");
        if (rc != XL_OK)
            return answer_error(c, MHD_HTTP_BAD_REQUEST, "invalid records", err.msg);
        o = json_pack("{s:I}", "accepted", (json_int_t)accepted);
        return answer_json(c, MHD_HTTP_OK, o);
    }
    if (*upload_size) {
        /* A body on another route: ignore it, answer at the end. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        json_t *o = json_pack("{s:s}", "status", "ok");

        if (o && l->ops.health)
            l->ops.health(l->ops.ctx, o);
        return answer_json(c, MHD_HTTP_OK, o);
    }
    if (strcmp(url, "/metrics") == 0 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        struct xl_buf b;

        xl_buf_init(&b, 64 << 20);
        if (l->ops.metrics(l->ops.ctx, &b) != XL_OK) {
            xl_buf_cleanup(&b);
            return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory",
                                "try again later");
        }
        if (!b.data && xl_buf_adds(&b, "") != XL_OK)
            return MHD_NO;
        size_t len = b.len;
        return answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", xl_buf_take(&b),
                      len);
    }
    if (!strcmp(url, "/healthz") || !strcmp(url, "/metrics") || !strcmp(url, "/v1/push")) {
        snprintf(err.msg, sizeof(err.msg), "%s is not allowed on %s", method, url);
        return answer_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", err.msg);
    }
    snprintf(err.msg, sizeof(err.msg), "%.200s: the agent serves /healthz, /metrics, /v1/push",
             url);
    return answer_error(c, MHD_HTTP_NOT_FOUND, "not found", err.msg);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (up) {
        xl_buf_cleanup(&up->body);
        xl_free(up);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    xl_log_rl(XL_LOG_WARN, 60, MOD, "%s", msg);
}

static void run_mhd(struct xl_local *l)
{
    MHD_run(l->mhd);
    schedule(l);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

/* Arm the timer for MHD's next deadline (connection timeouts). */
static void schedule(struct xl_local *l)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (MHD_get_timeout(l->mhd, &ms) == MHD_YES)
        uv_timer_start(&l->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&l->timer);
}

xl_rc xl_local_start(uv_loop_t *loop, const char *addr, size_t max_body,
                     const struct xl_local_ops *ops, struct xl_local **out, struct xl_err *err)
{
    struct xl_local *l;
    struct sockaddr_storage ss = {0};
    char host[256];
    uint16_t port;
    const union MHD_DaemonInfo *info;
    xl_rc rc;

    *out = NULL;
    if ((rc = xl_hostport_split(addr, host, sizeof(host), &port, err)) != XL_OK)
        return rc;
    if (!*host)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    } else {
        return xl_err_set(err, XL_EINVAL, "listen: '%s' is not an IP address", host);
    }
    if (!(l = xl_calloc(1, sizeof(*l))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    l->max_body = max_body;
    l->ops = *ops;
    l->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), port,
        NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        l, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)10, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!l->mhd) {
        int e = errno;
        xl_free(l);
        return xl_err_sys(err, XL_EIO, e, "listen: cannot listen on %s", addr);
    }
    info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(loop, &l->poll, info->epoll_fd);
    uv_timer_init(loop, &l->timer);
    l->poll.data = l->timer.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_poll);
    schedule(l);
    *out = l;
    return XL_OK;
}

static void on_close(uv_handle_t *h)
{
    struct xl_local *l = h->data;

    if (--l->closing == 0) {
        MHD_stop_daemon(l->mhd);
        xl_free(l);
    }
}

void xl_local_stop(struct xl_local *l)
{
    if (!l)
        return;
    l->closing = 2;
    uv_close((uv_handle_t *)&l->poll, on_close);
    uv_close((uv_handle_t *)&l->timer, on_close);
}
