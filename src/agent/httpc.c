/* xluo-agent: libcurl multi on libuv. */
#include "httpc.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

#define RESP_MAX (1u << 20)

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct xl_httpc *c;
};

struct xl_httpc_req {
    struct xl_httpc_req *prev, *next; /* the client's list of requests in flight */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct xl_buf resp;
    xl_httpc_cb cb;
    void *ctx;
    char errbuf[CURL_ERROR_SIZE];
};

static void req_free(struct xl_httpc_req *r)
{
    curl_slist_free_all(r->headers);
    xl_free(r->body);
    xl_buf_cleanup(&r->resp);
    xl_free(r);
}

static void finish(struct xl_httpc *c, CURL *easy, CURLcode res)
{
    struct xl_httpc_req *r = NULL;
    long status = 0;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    if (res == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, easy);
    curl_easy_cleanup(easy);
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->inflight--;
    r->cb(r->ctx, status, r->resp.data ? r->resp.data : "", r->resp.len,
          res == CURLE_OK ? NULL : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(res)));
    req_free(r);
}

static void check_done(struct xl_httpc *c)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(c->multi, &left)))
        if (m->msg == CURLMSG_DONE)
            finish(c, m->easy_handle, m->data.result);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->c->multi, s->fd, flags, &s->c->running);
    check_done(s->c);
}

static void on_sock_closed(uv_handle_t *h)
{
    xl_free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct xl_httpc *c = userp;
    struct sock *s = socketp;
    int ev = 0;

    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        if (!(s = xl_calloc(1, sizeof(*s))))
            return -1;
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
            xl_free(s);
            return -1;
        }
        curl_multi_assign(c->multi, fd, s);
    }
    if (action & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct xl_httpc *c = t->data;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct xl_httpc *c = userp;

    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xl_httpc_req *r = ud;

    /* Keep what fits; a longer answer is cut, never an error. */
    xl_buf_add(&r->resp, p, size * n <= RESP_MAX - r->resp.len ? size * n : RESP_MAX - r->resp.len);
    return size * n;
}

xl_rc xl_httpc_init(struct xl_httpc *c, uv_loop_t *loop, struct xl_err *err)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    if (!(c->multi = curl_multi_init()))
        return xl_err_set(err, XL_ENOMEM, "curl_multi_init failed");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return XL_OK;
}

void xl_httpc_close(struct xl_httpc *c)
{
    if (!c->multi)
        return;
    while (c->reqs) {
        snprintf(c->reqs->errbuf, sizeof(c->reqs->errbuf), "client closed");
        finish(c, c->reqs->easy, CURLE_ABORTED_BY_CALLBACK);
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->timer, NULL);
}

xl_rc xl_httpc_request(struct xl_httpc *c, const char *method, const char *url,
                       const char *token, const char *body, size_t len, long timeout_ms,
                       xl_httpc_cb cb, void *ctx, struct xl_err *err)
{
    struct xl_httpc_req *r = xl_calloc(1, sizeof(*r));
    char auth[512];
    struct curl_slist *h;

    if (!r)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    xl_buf_init(&r->resp, RESP_MAX);
    r->cb = cb;
    r->ctx = ctx;
    if (!(r->easy = curl_easy_init()))
        goto oom;
    if (body && !(r->body = xl_strndup(body, len)))
        goto oom;
    h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h)
        r->headers = h;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        if ((h = curl_slist_append(r->headers, auth)))
            r->headers = h;
    }
    /* No "Expect: 100-continue" round trip for large bodies. */
    if ((h = curl_slist_append(r->headers, "Expect:")))
        r->headers = h;
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    if (r->body) {
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "xluo-agent");
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        curl_easy_cleanup(r->easy);
        req_free(r);
        return xl_err_set(err, XL_ENOMEM, "curl_multi_add_handle failed");
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->inflight++;
    return XL_OK;
oom:
    if (r->easy)
        curl_easy_cleanup(r->easy);
    req_free(r);
    return xl_err_set(err, XL_ENOMEM, "out of memory");
}
