/* xluo-agent: https:// through a dlopen'ed libcurl (see httpc_curl.h).
 *
 * This is the agent's former HTTP client: curl's multi interface with its
 * sockets watched by uv_poll and its timeout by a uv_timer. Nothing here
 * calls libcurl directly; every call goes through `api`, filled by dlsym, so
 * the agent binary has no link-time dependency on libcurl. */
#include "httpc_curl.h"

#include <curl/curl.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

#define RESP_MAX (1u << 20)
#define DEFAULT_LIB "libcurl.so.4"
/* Debian's GnuTLS flavour (libcurl3-gnutls) has the same ABI. */
#define FALLBACK_LIB "libcurl-gnutls.so.4"

/* The libcurl functions used, by name. */
static struct curl_api {
    CURLcode (*global_init)(long flags);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *e);
    const char *(*easy_strerror)(CURLcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} api;

static bool api_loaded;
static const char *lib_name = DEFAULT_LIB;

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct xl_httpc_curl *h;
};

struct creq {
    struct creq *prev, *next; /* the requests in flight */
    CURL *easy;
    struct curl_slist *headers;
    const char *body; /* borrowed until the callback */
    struct xl_buf resp;
    xl_httpc_cb cb;
    void *ctx;
    char errbuf[CURL_ERROR_SIZE];
};

struct xl_httpc_curl {
    struct xl_httpc *c;
    struct creq *reqs;
    CURLM *multi;
    uv_timer_t timer;
    int running;
};

void xl_httpc_curl_set_lib(const char *name)
{
    lib_name = name ? name : DEFAULT_LIB;
}

/* dlopen libcurl and look up every function in `api`, once per process
 * (the library is never unloaded: OpenSSL does not support that well). A
 * failed load is tried again at the next request. */
static xl_rc api_load(struct xl_err *err)
{
    const struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"curl_global_init", (void **)&api.global_init},
        {"curl_multi_init", (void **)&api.multi_init},
        {"curl_multi_setopt", (void **)&api.multi_setopt},
        {"curl_multi_cleanup", (void **)&api.multi_cleanup},
        {"curl_multi_add_handle", (void **)&api.multi_add_handle},
        {"curl_multi_remove_handle", (void **)&api.multi_remove_handle},
        {"curl_multi_socket_action", (void **)&api.multi_socket_action},
        {"curl_multi_assign", (void **)&api.multi_assign},
        {"curl_multi_info_read", (void **)&api.multi_info_read},
        {"curl_easy_init", (void **)&api.easy_init},
        {"curl_easy_setopt", (void **)&api.easy_setopt},
        {"curl_easy_getinfo", (void **)&api.easy_getinfo},
        {"curl_easy_cleanup", (void **)&api.easy_cleanup},
        {"curl_easy_strerror", (void **)&api.easy_strerror},
        {"curl_slist_append", (void **)&api.slist_append},
        {"curl_slist_free_all", (void **)&api.slist_free_all},
    };
    void *lib;

    if (api_loaded)
        return XL_OK;
    lib = dlopen(lib_name, RTLD_NOW | RTLD_LOCAL);
    if (!lib && strcmp(lib_name, DEFAULT_LIB) == 0)
        lib = dlopen(FALLBACK_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return xl_err_set(err, XL_ENOENT,
                          "https needs libcurl4 (apt install libcurl4): cannot load %s: %s",
                          lib_name, dlerror());
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if (!(*syms[i].slot = dlsym(lib, syms[i].name))) {
            memset(&api, 0, sizeof(api));
            dlclose(lib);
            return xl_err_set(err, XL_ENOENT,
                              "https needs libcurl4 (apt install libcurl4): %s has no %s", lib_name,
                              syms[i].name);
        }
    }
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        memset(&api, 0, sizeof(api));
        return xl_err_set(err, XL_ENOENT, "https: curl_global_init failed");
    }
    api_loaded = true;
    return XL_OK;
}

static void req_free(struct creq *r)
{
    api.slist_free_all(r->headers);
    xl_buf_cleanup(&r->resp);
    xl_free(r);
}

static void finish(struct xl_httpc_curl *h, CURL *easy, CURLcode res)
{
    struct creq *r = NULL;
    long status = 0;

    api.easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    if (res == CURLE_OK)
        api.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    api.multi_remove_handle(h->multi, easy);
    api.easy_cleanup(easy);
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->c->inflight--;
    r->cb(r->ctx, status, r->resp.data ? r->resp.data : "", r->resp.len,
          res == CURLE_OK ? NULL : (r->errbuf[0] ? r->errbuf : api.easy_strerror(res)));
    req_free(r);
}

static void check_done(struct xl_httpc_curl *h)
{
    CURLMsg *m;
    int left;

    while ((m = api.multi_info_read(h->multi, &left)))
        if (m->msg == CURLMSG_DONE)
            finish(h, m->easy_handle, m->data.result);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    api.multi_socket_action(s->h->multi, s->fd, flags, &s->h->running);
    check_done(s->h);
}

static void on_sock_closed(uv_handle_t *p)
{
    xl_free(p->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct xl_httpc_curl *h = userp;
    struct sock *s = socketp;
    int ev = 0;

    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            api.multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        if (!(s = xl_calloc(1, sizeof(*s))))
            return -1;
        s->fd = fd;
        s->h = h;
        s->poll.data = s;
        if (uv_poll_init_socket(h->c->loop, &s->poll, fd) < 0) {
            xl_free(s);
            return -1;
        }
        api.multi_assign(h->multi, fd, s);
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
    struct xl_httpc_curl *h = t->data;

    api.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &h->running);
    check_done(h);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct xl_httpc_curl *h = userp;

    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct creq *r = ud;

    /* Keep what fits; a longer answer is cut, never an error. */
    xl_buf_add(&r->resp, p, size * n <= RESP_MAX - r->resp.len ? size * n : RESP_MAX - r->resp.len);
    return size * n;
}

xl_rc xl_httpc_curl_new(struct xl_httpc *c, struct xl_httpc_curl **out, struct xl_err *err)
{
    struct xl_httpc_curl *h;
    xl_rc rc;

    if ((rc = api_load(err)) != XL_OK)
        return rc;
    if (!(h = xl_calloc(1, sizeof(*h))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    h->c = c;
    if (!(h->multi = api.multi_init())) {
        xl_free(h);
        return xl_err_set(err, XL_ENOMEM, "curl_multi_init failed");
    }
    api.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    api.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    api.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    api.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(c->loop, &h->timer);
    h->timer.data = h;
    *out = h;
    return XL_OK;
}

static void on_timer_closed(uv_handle_t *t)
{
    xl_free(t->data);
}

void xl_httpc_curl_free(struct xl_httpc_curl *h)
{
    if (!h)
        return;
    while (h->reqs) {
        snprintf(h->reqs->errbuf, sizeof(h->reqs->errbuf), "client closed");
        finish(h, h->reqs->easy, CURLE_ABORTED_BY_CALLBACK);
    }
    api.multi_cleanup(h->multi);
    h->multi = NULL;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

xl_rc xl_httpc_curl_request(struct xl_httpc_curl *h, const char *method, const char *url,
                            const char *token, const char *encoding, const char *body,
                            size_t len, long timeout_ms,
                            xl_httpc_cb cb, void *ctx, struct xl_err *err)
{
    struct creq *r = xl_calloc(1, sizeof(*r));
    struct curl_slist *l;
    char *auth = NULL;

    if (!r)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    xl_buf_init(&r->resp, RESP_MAX);
    r->cb = cb;
    r->ctx = ctx;
    if (!(r->easy = api.easy_init()))
        goto oom;
    r->body = body;
    if (!(r->headers = api.slist_append(NULL, "Content-Type: application/json")))
        goto oom;
    if (token) {
        if (!(auth = xl_asprintf("Authorization: Bearer %s", token)))
            goto oom;
        if (!(l = api.slist_append(r->headers, auth)))
            goto oom;
        r->headers = l;
        xl_free(auth);
        auth = NULL;
    }
    if (encoding) {
        if (!(auth = xl_asprintf("Content-Encoding: %s", encoding)))
            goto oom;
        if (!(l = api.slist_append(r->headers, auth)))
            goto oom;
        r->headers = l;
        xl_free(auth);
        auth = NULL;
    }
    /* No "Expect: 100-continue" round trip for large bodies. */
    if (!(l = api.slist_append(r->headers, "Expect:")))
        goto oom;
    r->headers = l;
    api.easy_setopt(r->easy, CURLOPT_URL, url);
    api.easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    api.easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    if (r->body) {
        api.easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
        api.easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    api.easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
    api.easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    api.easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    api.easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    api.easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    api.easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    api.easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https");
    api.easy_setopt(r->easy, CURLOPT_USERAGENT, "xluo-agent");
    if (api.multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        api.easy_cleanup(r->easy);
        req_free(r);
        return xl_err_set(err, XL_ENOMEM, "curl_multi_add_handle failed");
    }
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->c->inflight++;
    return XL_OK;
oom:
    xl_free(auth);
    if (r->easy)
        api.easy_cleanup(r->easy);
    req_free(r);
    return xl_err_set(err, XL_ENOMEM, "out of memory");
}
