/* Unit tests: the agent's HTTP client (src/agent/httpc.c); its response
 * parser is tested in test_http_parse.c.
 *
 * The client talks to a small HTTP server inside the test: a thread with
 * blocking sockets on 127.0.0.1 and a random port, one thread per
 * connection, whose behaviour is chosen by the request path (answer,
 * chunked, 1.5 MiB, close, hang, reset, garbage, one byte at a time ...).
 * It counts the connections it accepted, so keep-alive reuse and the retry
 * on a connection the server closed can be checked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/httpc.h"
#include "agent/httpc_curl.h"
#include "common/alloc.h"

#define MiB (1u << 20)
#define BIG_LEN (MiB + MiB / 2)
#define CONNS_MAX 64

/* ---- the test server ---- */

struct srv {
    int lfd, port;
    pthread_t accept_thr;
    atomic_int accepts, closed, stop;
    pthread_mutex_t mu;
    int fds[CONNS_MAX]; /* -1 once the connection's thread closed it */
    pthread_t thr[CONNS_MAX];
    int n;
    char last[8192]; /* the last request's head */
    size_t last_body;
};

struct sconn {
    struct srv *s;
    int fd, idx;
};

static struct srv srv;

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Read one request: head into *head (NUL-terminated), body into *body
 * (malloc'ed). False on EOF or error. */
static bool read_request(int fd, char *head, size_t cap, char **body, size_t *blen)
{
    size_t n = 0, clen = 0, have;
    char *end = NULL, *cl;

    *body = NULL;
    *blen = 0;
    while (!end) {
        ssize_t k;

        if (n + 1 >= cap)
            return false;
        if ((k = recv(fd, head + n, cap - n - 1, 0)) <= 0)
            return false;
        n += (size_t)k;
        head[n] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    end += 4;
    if ((cl = strstr(head, "\r\nContent-Length:")))
        clen = strtoul(cl + 17, NULL, 10);
    have = n - (size_t)(end - head);
    *body = malloc(clen + 1);
    memcpy(*body, end, have < clen ? have : clen);
    while (have < clen) {
        ssize_t k = recv(fd, *body + have, clen - have, 0);

        if (k <= 0) {
            free(*body);
            *body = NULL;
            return false;
        }
        have += (size_t)k;
    }
    *end = '\0';
    *blen = clen;
    return true;
}

static void respond(int fd, int status, const char *body, size_t len)
{
    char head[256];

    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n", status, len);
    send_str(fd, head);
    send_all(fd, body, len);
}

/* One connection: answer requests by path until the client closes or a
 * path says to stop. */
static void *conn_main(void *arg)
{
    struct sconn *sc = arg;
    struct srv *s = sc->s;
    int fd = sc->fd, nreq = 0, one = 1;
    char head[8192], path[256], *body;
    size_t blen;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    while (read_request(fd, head, sizeof(head), &body, &blen)) {
        nreq++;
        pthread_mutex_lock(&s->mu);
        snprintf(s->last, sizeof(s->last), "%s", head);
        s->last_body = blen;
        pthread_mutex_unlock(&s->mu);
        if (sscanf(head, "%*s %255s", path) != 1)
            path[0] = '\0';
        path[strcspn(path, "?")] = '\0';
        if (strcmp(path, "/len") == 0) {
            respond(fd, 200, "hello", 5);
        } else if (strcmp(path, "/echo") == 0) {
            respond(fd, 200, body, blen);
        } else if (strncmp(path, "/status/", 8) == 0) {
            respond(fd, atoi(path + 8), "{\"error\":\"no\"}", 14);
        } else if (strcmp(path, "/chunked") == 0) {
            send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n");
        } else if (strcmp(path, "/big") == 0) {
            char *b = malloc(BIG_LEN);

            for (size_t i = 0; i < BIG_LEN; i++)
                b[i] = (char)('a' + i % 26);
            respond(fd, 200, b, BIG_LEN);
            free(b);
        } else if (strcmp(path, "/drop") == 0 && nreq > 1) {
            free(body);
            break; /* a reused connection: closed without an answer */
        } else if (strcmp(path, "/drop") == 0) {
            respond(fd, 200, "fresh", 5);
        } else if (strcmp(path, "/dropall") == 0) {
            free(body);
            break;
        } else if (strcmp(path, "/closeidle") == 0) {
            respond(fd, 200, "bye", 3);
            free(body);
            break;
        } else if (strcmp(path, "/hang") == 0) {
            char c;

            while (recv(fd, &c, 1, 0) > 0)
                ;
            free(body);
            break;
        } else if (strcmp(path, "/bad") == 0) {
            send_str(fd, "HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        } else if (strcmp(path, "/slow") == 0) {
            static const char r[] = "HTTP/1.1 200 OK\r\nX-Split: every byte\r\n"
                                    "Content-Length: 4\r\n\r\nslow";

            /* One send per byte, paced so that the client's reads see
             * them apart (this is pacing, not waiting for a condition). */
            for (size_t i = 0; i < sizeof(r) - 1; i++) {
                send_all(fd, r + i, 1);
                usleep(300);
            }
        } else if (strcmp(path, "/eof") == 0) {
            send_str(fd, "HTTP/1.1 200 OK\r\n\r\nuntil close");
            free(body);
            break;
        } else if (strcmp(path, "/100") == 0) {
            send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else if (strcmp(path, "/reset") == 0) {
            struct linger lg = {1, 0};

            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            free(body);
            break;
        } else {
            respond(fd, 404, "?", 1);
        }
        free(body);
    }
    pthread_mutex_lock(&s->mu);
    close(fd);
    s->fds[sc->idx] = -1;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->closed, 1);
    free(sc);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct srv *s = arg;

    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        struct sconn *sc;

        if (fd < 0 || atomic_load(&s->stop)) {
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        atomic_fetch_add(&s->accepts, 1);
        sc = calloc(1, sizeof(*sc));
        sc->s = s;
        sc->fd = fd;
        pthread_mutex_lock(&s->mu);
        assert_true(s->n < CONNS_MAX);
        sc->idx = s->n;
        s->fds[s->n] = fd;
        pthread_create(&s->thr[s->n], NULL, conn_main, sc);
        s->n++;
        pthread_mutex_unlock(&s->mu);
    }
}

static void srv_start(struct srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    assert_true((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->accept_thr, NULL, accept_main, s);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->accept_thr, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        if (s->fds[i] >= 0)
            shutdown(s->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n; i++)
        pthread_join(s->thr[i], NULL);
    pthread_mutex_destroy(&s->mu);
}

static void srv_last(char *out, size_t cap, size_t *body)
{
    pthread_mutex_lock(&srv.mu);
    snprintf(out, cap, "%s", srv.last);
    *body = srv.last_body;
    pthread_mutex_unlock(&srv.mu);
}

/* ---- the client side ---- */

struct res {
    int calls;
    long status;
    char *body; /* a copy */
    size_t len;
    bool nul;
    char error[512];
};

static uv_loop_t loop;
static struct xl_httpc cli;
static char url_buf[512];

static const char *url(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", srv.port, path);
    return url_buf;
}

static void on_done(void *ctx, long status, const char *body, size_t len, const char *error)
{
    struct res *r = ctx;

    r->calls++;
    r->status = status;
    free(r->body);
    r->body = malloc(len + 1);
    memcpy(r->body, body, len + 1);
    r->len = len;
    r->nul = body[len] == '\0';
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static void on_expire(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Run the loop until *calls reaches want or ms pass. */
static bool run_until(int *calls, int want, uint64_t ms)
{
    uv_timer_t t;
    bool expired = false;

    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_expire, ms, 0);
    while (*calls < want && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *calls >= want;
}

/* Run one request to completion. */
static void do_req(const char *method, const char *u, const char *token, const char *body,
                   size_t len, long timeout_ms, struct res *r)
{
    struct xl_err err = {0};
    int before = r->calls;

    if (xl_httpc_request(&cli, method, u, token, body, len, timeout_ms, on_done, r, &err) != XL_OK)
        fail_msg("request %s %s: %s", method, u, err.msg);
    assert_int_equal(r->calls, before); /* never called before the request returns */
    if (!run_until(&r->calls, before + 1, 10000))
        fail_msg("no answer to %s %s within 10 s", method, u);
    assert_int_equal(r->calls, before + 1);
    assert_true(r->nul);
}

static void wait_closed(int n)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&srv.closed) < n) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("server connections closed: %d, want %d", atomic_load(&srv.closed), n);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void on_guard(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int setup(void **state)
{
    struct xl_err err = {0};

    srv_start(&srv);
    uv_loop_init(&loop);
    assert_int_equal(xl_httpc_init(&cli, &loop, &err), XL_OK);
    return 0;
}

/* Close the client; every handle must be closed by then (uv_loop_close),
 * with a guard so that a leaked handle fails instead of hanging. */
static int teardown(void **state)
{
    uv_timer_t guard;

    xl_httpc_close(&cli);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 10000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    srv_stop(&srv);
    return 0;
}

static void res_free(struct res *r)
{
    free(r->body);
    r->body = NULL;
}

static void test_content_length(void **state)
{
    struct res r = {0};
    char head[8192], want[64];
    size_t blen;

    do_req("GET", url("/len"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.error, "");
    srv_last(head, sizeof(head), &blen);
    assert_non_null(strstr(head, "GET /len HTTP/1.1\r\n"));
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    assert_non_null(strstr(head, want));
    assert_non_null(strstr(head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(head, "\r\nUser-Agent: xluo-agent\r\n"));
    assert_null(strstr(head, "Authorization"));
    assert_null(strstr(head, "Content-Length"));

    do_req("GET", url("/status/409"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.body, "{\"error\":\"no\"}");
    res_free(&r);
}

static void test_methods_token_body(void **state)
{
    struct res r = {0};
    char head[8192];
    size_t blen, n = 3 * MiB;
    char *big = malloc(n);

    do_req("POST", url("/echo?x=1"), "s3cret", "{\"a\":1}", 7, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":1}");
    srv_last(head, sizeof(head), &blen);
    assert_non_null(strstr(head, "POST /echo?x=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(head, "\r\nAuthorization: Bearer s3cret\r\n"));
    assert_non_null(strstr(head, "\r\nContent-Length: 7\r\n"));
    assert_int_equal(blen, 7);

    /* A 3 MiB body goes out whole; the 3 MiB echo is kept up to 1 MiB. */
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('0' + i % 10);
    do_req("PUT", url("/echo"), NULL, big, n, 10000, &r);
    assert_int_equal(r.status, 200);
    srv_last(head, sizeof(head), &blen);
    assert_non_null(strstr(head, "PUT /echo HTTP/1.1\r\n"));
    assert_int_equal(blen, n);
    assert_int_equal(r.len, MiB);
    assert_memory_equal(r.body, big, MiB);

    /* PUT without a body still says Content-Length: 0. */
    do_req("PUT", url("/echo"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    srv_last(head, sizeof(head), &blen);
    assert_non_null(strstr(head, "\r\nContent-Length: 0\r\n"));
    assert_int_equal(atomic_load(&srv.accepts), 1);
    free(big);
    res_free(&r);
}

static void test_chunked(void **state)
{
    struct res r = {0};

    do_req("GET", url("/chunked"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    do_req("GET", url("/100"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    assert_int_equal(atomic_load(&srv.accepts), 1);
    res_free(&r);
}

static void test_big_body_capped_connection_reused(void **state)
{
    struct res r = {0};

    do_req("GET", url("/big"), NULL, NULL, 0, 10000, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, MiB);
    for (size_t i = 0; i < MiB; i++)
        if (r.body[i] != (char)('a' + i % 26))
            fail_msg("body byte %zu", i);
    do_req("GET", url("/len"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(atomic_load(&srv.accepts), 1);
    res_free(&r);
}

static void test_keepalive_reuse(void **state)
{
    struct res r = {0};

    for (int i = 0; i < 10; i++) {
        do_req(i % 2 ? "POST" : "GET", url(i % 2 ? "/echo" : "/len"), "t", i % 2 ? "{}" : NULL,
               i % 2 ? 2 : 0, 5000, &r);
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(atomic_load(&srv.accepts), 1);
    assert_int_equal(cli.inflight, 0);
    res_free(&r);
}

static void test_server_closes_idle(void **state)
{
    struct res r = {0};

    do_req("GET", url("/closeidle"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "bye");
    wait_closed(1); /* the server has closed the kept-alive connection */
    do_req("GET", url("/len"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(atomic_load(&srv.accepts), 2);
    res_free(&r);
}

static void test_retry_once_on_reused(void **state)
{
    struct res r = {0};

    /* The reused connection is dropped without an answer: one retry on a
     * new connection, which answers. */
    do_req("GET", url("/len"), NULL, NULL, 0, 5000, &r);
    do_req("POST", url("/drop"), NULL, "{}", 2, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "fresh");
    assert_int_equal(atomic_load(&srv.accepts), 2);

    /* A new connection dropped without an answer is not retried. */
    do_req("GET", url("/dropall"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "without answering"));
    /* /dropall reused the "fresh" connection, was retried on a third one,
     * which was dropped too: 3 connections, no more. */
    assert_int_equal(atomic_load(&srv.accepts), 3);
    res_free(&r);
}

/* A port nobody listens on: bound, then closed. */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_refused(void **state)
{
    struct res r = {0};
    char u[128];

    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", dead_port());
    do_req("POST", u, "t", "{}", 2, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, 0);
    assert_non_null(strstr(r.error, "connection refused (127.0.0.1:"));

    /* A numeric IPv6 host (refused, or no IPv6 here: either way status 0
     * and the address in the message). */
    snprintf(u, sizeof(u), "http://[::1]:%d/x", dead_port());
    do_req("GET", u, NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    if (!strstr(r.error, "[::1]:"))
        fail_msg("%s", r.error);
    res_free(&r);
}

static void test_timeout(void **state)
{
    struct res r = {0};

    do_req("GET", url("/hang"), NULL, NULL, 0, 300, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.error, "timed out after 300 ms");
    wait_closed(1); /* the client closed the connection */
    res_free(&r);
}

static void test_malformed_reset_eof(void **state)
{
    struct res r = {0};

    do_req("GET", url("/bad"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "malformed response: expected status line"));
    assert_non_null(strstr(r.error, "HTTX/1.1 200 OK"));

    do_req("GET", url("/reset"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "connection reset by peer"));

    do_req("GET", url("/eof"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "until close");
    res_free(&r);
}

static void test_byte_by_byte(void **state)
{
    struct res r = {0};

    do_req("GET", url("/slow"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slow");
    do_req("GET", url("/len"), NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&srv.accepts), 1);
    res_free(&r);
}

static void test_name_lookup(void **state)
{
    struct res r = {0};
    char u[128];

    /* localhost may resolve to ::1 first, where nobody listens: the next
     * address is tried. */
    snprintf(u, sizeof(u), "http://localhost:%d/len", srv.port);
    do_req("GET", u, NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");

    do_req("GET", "http://no-such-host.invalid/x", NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "cannot resolve host \"no-such-host.invalid\""));
    res_free(&r);
}

static void test_bad_requests(void **state)
{
    static const char *const bad[] = {
        "ftp://127.0.0.1/x",    "http://127.0.0.1:99999/x",
        "http://127.0.0.1:/x",  "http://user:pw@host/x",
        "http://[::1/x",        "http:///x",
        "http://127.0.0.1/a b", "127.0.0.1/x",
    };
    struct xl_err err = {0};
    struct res r = {0};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (xl_httpc_request(&cli, "GET", bad[i], NULL, NULL, 0, 1000, on_done, &r, &err) !=
            XL_EINVAL)
            fail_msg("%s: accepted", bad[i]);
    }
    assert_int_equal(xl_httpc_request(&cli, "GET", url("/x"), "a\r\nX-Evil: 1", NULL, 0, 1000,
                                      on_done, &r, &err),
                     XL_EINVAL);
    assert_int_equal(
        xl_httpc_request(&cli, "GE T", url("/x"), NULL, NULL, 0, 1000, on_done, &r, &err),
        XL_EINVAL);
    {
        char *long_url = malloc(20100);

        snprintf(long_url, 20100, "http://127.0.0.1/%020000d", 0);
        assert_int_equal(
            xl_httpc_request(&cli, "GET", long_url, NULL, NULL, 0, 1000, on_done, &r, &err),
            XL_ETOOBIG);
        free(long_url);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
    assert_int_equal(cli.inflight, 0);
}

static void test_https_needs_libcurl(void **state)
{
    struct xl_err err = {0};
    struct res r = {0};
    char u[128];

    xl_httpc_curl_set_lib("libxluo-no-such-curl.so.4");
    assert_int_equal(xl_httpc_request(&cli, "GET", "https://127.0.0.1/x", NULL, NULL, 0, 1000,
                                      on_done, &r, &err),
                     XL_ENOENT);
    assert_non_null(strstr(err.msg, "https needs libcurl4 (apt install libcurl4)"));
    xl_httpc_curl_set_lib(NULL);

    /* With libcurl there, https:// goes through it (curl's message). */
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/len", dead_port());
    do_req("GET", u, NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.status, 0);
    if (!strstr(r.error, "onnect"))
        fail_msg("curl's error: %s", r.error);
    res_free(&r);
}

static void test_close_in_flight(void **state)
{
    struct xl_err err = {0};
    struct res r[6] = {{0}};
    char u[128];

    for (int i = 0; i < 3; i++)
        assert_int_equal(
            xl_httpc_request(&cli, "POST", url("/hang"), "t", "{}", 2, 30000, on_done, &r[i], &err),
            XL_OK);
    snprintf(u, sizeof(u), "http://localhost:%d/hang", srv.port);
    assert_int_equal(xl_httpc_request(&cli, "GET", u, NULL, NULL, 0, 30000, on_done, &r[3], &err),
                     XL_OK);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/hang", srv.port);
    assert_int_equal(xl_httpc_request(&cli, "GET", u, NULL, NULL, 0, 30000, on_done, &r[4], &err),
                     XL_OK);
    assert_int_equal(cli.inflight, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].calls, 0);
    /* Let them connect. */
    {
        struct timespec t0, t;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (atomic_load(&srv.accepts) < 3) {
            uv_run(&loop, UV_RUN_NOWAIT);
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 10)
                fail_msg("accepts %d", atomic_load(&srv.accepts));
            usleep(1000);
        }
    }
    /* One that has not even started when the client closes. */
    assert_int_equal(
        xl_httpc_request(&cli, "GET", url("/hang"), NULL, NULL, 0, 30000, on_done, &r[5], &err),
        XL_OK);
    assert_int_equal(cli.inflight, 6);
    xl_httpc_close(&cli);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_string_equal(r[i].error, "client closed");
    }
    assert_int_equal(cli.inflight, 0);
    assert_int_equal(
        xl_httpc_request(&cli, "GET", url("/len"), NULL, NULL, 0, 1000, on_done, &r[0], &err),
        XL_ESTATE);
    /* Closing finishes on the loop; no callback runs a second time. */
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        res_free(&r[i]);
    }
}

/* Fault injection: whichever allocation fails, a request either fails to
 * start (no callback) or ends in exactly one callback. */
static void test_alloc_failures(void **state)
{
    int started = 0;

    for (long n = 0; n < 40; n++) {
        struct xl_err err = {0};
        struct res r = {0};
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = xl_httpc_request(&cli, "POST", url(n % 2 ? "/echo" : "/chunked"), "t", "{}", 2, 5000,
                              on_done, &r, &err);
        if (rc == XL_OK) {
            started++;
            run_until(&r.calls, 1, 10000);
            assert_int_equal(r.calls, 1);
            if (r.status == 0)
                assert_true(r.error[0] != '\0');
        } else {
            assert_int_equal(rc, XL_ENOMEM);
        }
        xl_alloc_fail_after(-1);
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_int_equal(r.calls, rc == XL_OK ? 1 : 0);
        res_free(&r);
    }
    assert_true(started > 0);
}

int main(void)
{
    /* libuv writes with write(2): a peer that closed would kill the test
     * with SIGPIPE. The agent ignores it too (agent.c). */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods_token_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_body_capped_connection_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closes_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_once_on_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_reset_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        /* before anything else loads libcurl in this process */
        cmocka_unit_test_setup_teardown(test_https_needs_libcurl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
