/* Unit tests: the agent's HTTP/1.x parser (src/agent/http_parse.c), in
 * both modes: responses (the client, httpc.c) and requests (the local
 * endpoint, local.c).
 *
 * Table-driven: each message is fed whole, one byte at a time, three bytes
 * at a time and split at every position. Then the limits, the end of the
 * connection at each point, and pipelined requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/http_parse.h"

/* ---- responses ---- */

struct pcase {
    const char *name;
    const char *in;
    int status;       /* 0: expect an error */
    const char *body; /* expected body; error substring when status is 0 */
    bool keep_alive;
    bool needs_eof; /* the body ends with the connection */
};

#define OK(name, in, status, body, keep_alive)                                                     \
    {                                                                                              \
        name, in, status, body, keep_alive, false                                                  \
    }
#define OK_EOF(name, in, body)                                                                     \
    {                                                                                              \
        name, in, 200, body, false, true                                                           \
    }
#define BAD(name, in, msg)                                                                         \
    {                                                                                              \
        name, in, 0, msg, false, false                                                             \
    }

static const struct pcase pcases[] = {
    OK("content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true),
    OK("no reason phrase", "HTTP/1.1 204\r\n\r\n", 204, "", true),
    OK("bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", true),
    OK("chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3;ext=1\r\nhel\r\nA\r\nlo, world!\r\n0\r\nX-Trailer: t\r\n\r\n",
       200, "hello, world!", true),
    OK("chunked, upper-case hex",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
       "1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
       200, "0123456789abcdef0123456789abcde", true),
    OK("connection close", "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad",
       500, "bad", false),
    OK("connection: keep-alive, close",
       "HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 0\r\n\r\n", 200, "",
       false),
    OK("http/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", false),
    OK("http/1.0 keep-alive",
       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200, "x", true),
    OK_EOF("body until close", "HTTP/1.1 200 OK\r\n\r\nuntil the end", "until the end"),
    OK_EOF("unknown transfer coding: until close",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", "zz"),
    OK("interim 100",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 201,
       "ok", true),
    OK("304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304, "", true),
    OK("te and cl: te wins, no reuse",
       "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nok\r\n0\r\n\r\n",
       200, "ok", false),
    OK("folded header skipped", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\n1",
       200, "1", true),
    BAD("bad protocol", "HTTX/1.1 200 OK\r\n\r\n", "expected status line"),
    BAD("http/2", "HTTP/2 200\r\n\r\n", "expected status line"),
    BAD("short status", "HTTP/1.1 20\r\n\r\n", "expected status line"),
    BAD("status not numeric", "HTTP/1.1 2x0 OK\r\n\r\n", "expected status line"),
    BAD("status below 100", "HTTP/1.1 099 OK\r\n\r\n", "status code from 100"),
    BAD("header without colon", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "expected header line"),
    BAD("bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "decimal Content-Length"),
    BAD("two content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "one Content-Length"),
    BAD("bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "hexadecimal chunk size"),
    BAD("no CRLF after chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n",
        "CRLF after the chunk data"),
};

struct pout {
    char body[256];
    size_t len;
};

static void pbody(void *ctx, const char *p, size_t n)
{
    struct pout *o = ctx;

    assert_true(n > 0);
    assert_true(o->len + n < sizeof(o->body));
    memcpy(o->body + o->len, p, n);
    o->len += n;
}

/* Feed c->in in pieces: the first `split` bytes, then `step` bytes at a
 * time (0: the rest at once). Checks the outcome against c. */
static void parse_case(const struct pcase *c, size_t split, size_t step)
{
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    size_t n = strlen(c->in), off = 0, used;
    xl_rc rc = XL_OK;

    xl_http_parser_init_response(&p);
    while (off < n && rc == XL_OK && !xl_http_parser_done(&p)) {
        size_t k = off == 0 && split ? split : (step ? step : n - off);

        if (k > n - off)
            k = n - off;
        rc = xl_http_parser_feed(&p, c->in + off, k, &used, pbody, &o, &err);
        if (rc == XL_OK && !xl_http_parser_done(&p) && used != k)
            fail_msg("%s: consumed %zu of %zu without finishing", c->name, used, k);
        off += used;
    }
    if (rc == XL_OK && c->needs_eof) {
        assert_false(xl_http_parser_done(&p));
        rc = xl_http_parser_eof(&p, &err);
    }
    if (c->status == 0) {
        if (rc != XL_EPROTO || !strstr(err.msg, c->body))
            fail_msg("%s (split %zu step %zu): want error \"%s\", got rc %d \"%s\"", c->name, split,
                     step, c->body, rc, err.msg);
        assert_non_null(strstr(err.msg, "malformed response"));
        return;
    }
    if (rc != XL_OK)
        fail_msg("%s (split %zu step %zu): %s", c->name, split, step, err.msg);
    assert_true(xl_http_parser_done(&p));
    assert_int_equal(off, n);
    assert_int_equal(p.status, c->status);
    o.body[o.len] = '\0';
    if (strcmp(o.body, c->body) != 0)
        fail_msg("%s: body \"%s\", want \"%s\"", c->name, o.body, c->body);
    if (p.keep_alive != c->keep_alive)
        fail_msg("%s: keep_alive %d, want %d", c->name, p.keep_alive, c->keep_alive);
}

static void test_parser_table(void **state)
{
    for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
        size_t n = strlen(pcases[i].in);

        parse_case(&pcases[i], 0, 0);
        parse_case(&pcases[i], 0, 1);
        parse_case(&pcases[i], 0, 3);
        for (size_t s = 1; s < n; s++)
            parse_case(&pcases[i], s, 0);
    }
}

static void test_parser_leftover_and_eof(void **state)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    size_t used;

    /* Bytes after a complete response are left unconsumed. */
    xl_http_parser_init_response(&p);
    assert_int_equal(xl_http_parser_feed(&p, two, strlen(two), &used, pbody, &o, &err), XL_OK);
    assert_true(xl_http_parser_done(&p));
    assert_int_equal(used, strlen(two) - strlen("HTTP/1.1"));

    /* EOF before anything: the server did not answer (retryable). */
    xl_http_parser_init_response(&p);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_ECONN);
    assert_non_null(strstr(err.msg, "without answering"));

    /* EOF in the headers, in a sized body, in a chunked body. */
    xl_http_parser_init_response(&p);
    xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &used, pbody, &o, &err);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "expected the end of the headers"));

    o.len = 0;
    xl_http_parser_init_response(&p);
    xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 41, &used, pbody, &o,
                        &err);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "expected 9 body bytes"));

    o.len = 0;
    xl_http_parser_init_response(&p);
    xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab", 52,
                        &used, pbody, &o, &err);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "last chunk"));
}

static void test_parser_limits(void **state)
{
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    char *line = malloc(XL_HTTP_LINE_MAX + 64);
    size_t used;
    xl_rc rc = XL_OK;

    /* A header line longer than the limit. */
    xl_http_parser_init_response(&p);
    xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\nX-Long: ", 26, &used, pbody, &o, &err);
    memset(line, 'a', XL_HTTP_LINE_MAX + 64);
    rc = xl_http_parser_feed(&p, line, XL_HTTP_LINE_MAX + 64, &used, pbody, &o, &err);
    assert_int_equal(rc, XL_EPROTO);
    assert_non_null(strstr(err.msg, "line of at most 8192 bytes"));

    /* Too many header bytes in total. */
    xl_http_parser_init_response(&p);
    rc = xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &used, pbody, &o, &err);
    for (int i = 0; i < 100 && rc == XL_OK; i++) {
        int n = snprintf(line, 1100, "X-H%d: %01000d\r\n", i, 0);

        rc = xl_http_parser_feed(&p, line, (size_t)n, &used, pbody, &o, &err);
    }
    assert_int_equal(rc, XL_EPROTO);
    assert_non_null(strstr(err.msg, "65536 bytes of headers"));

    /* Content-Length beyond 2^53. */
    xl_http_parser_init_response(&p);
    rc = xl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n", 53,
                             &used, pbody, &o, &err);
    assert_int_equal(rc, XL_EPROTO);
    free(line);
}

/* ---- requests ---- */

struct rcase {
    const char *name;
    const char *in;
    int status;         /* 0: expect success; else the status to answer */
    const char *method; /* error substring when status is set */
    const char *target;
    const char *body;
    bool keep_alive;
    bool expect_continue;
};

#define ROK(name, in, method, target, body, keep_alive, expect_continue)                           \
    {                                                                                              \
        name, in, 0, method, target, body, keep_alive, expect_continue                             \
    }
#define RBAD(name, in, status, msg)                                                                \
    {                                                                                              \
        name, in, status, msg, NULL, NULL, false, false                                            \
    }

static const struct rcase rcases[] = {
    ROK("get", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET", "/healthz", "", true,
        false),
    ROK("head with query", "HEAD /metrics?x=1&y=%20 HTTP/1.1\r\n\r\n", "HEAD", "/metrics?x=1&y=%20",
        "", true, false),
    ROK("post content-length",
        "POST /v1/push HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
        "{\"type\":\"a\"}\n",
        "POST", "/v1/push", "{\"type\":\"a\"}\n", true, false),
    ROK("post chunked",
        "POST /v1/push HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=v\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "POST", "/v1/push", "hello, world", true, false),
    ROK("chunked, case-insensitive",
        "POST /p HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "POST", "/p",
        "ok", true, false),
    ROK("post without length has no body", "POST /v1/push HTTP/1.1\r\n\r\n", "POST", "/v1/push", "",
        true, false),
    ROK("content-length 0", "POST /v1/push HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST",
        "/v1/push", "", true, false),
    ROK("expect 100-continue",
        "POST /v1/push HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n{}", "POST",
        "/v1/push", "{}", true, true),
    ROK("expect ignored in http/1.0",
        "POST /v1/push HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", "POST",
        "/v1/push", "{}", false, false),
    ROK("connection close", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET", "/", "", false,
        false),
    ROK("http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", "GET", "/", "", false, false),
    ROK("http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", "",
        true, false),
    ROK("te and cl: te wins, no reuse",
        "POST /p HTTP/1.1\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nok\r\n0\r\n\r\n",
        "POST", "/p", "ok", false, false),
    ROK("bare LF, empty line first", "\r\nGET /x HTTP/1.1\nHost: a\n\n", "GET", "/x", "", true,
        false),
    ROK("16-byte method", "ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", "ABCDEFGHIJKLMNOP", "/", "", true,
        false),
    RBAD("garbage", "GARBAGE\r\n\r\n", 400, "expected request line"),
    RBAD("no version", "GET /x\r\n\r\n", 400, "expected request line"),
    RBAD("two spaces", "GET  /x HTTP/1.1\r\n\r\n", 400, "expected request line"),
    RBAD("http/2", "GET /x HTTP/2.0\r\n\r\n", 400, "expected request line"),
    RBAD("trailing words", "GET /x HTTP/1.1 please\r\n\r\n", 400, "expected request line"),
    RBAD("bad method", "G(T /x HTTP/1.1\r\n\r\n", 400, "expected request line"),
    RBAD("control byte in target", "GET /a\x01z HTTP/1.1\r\n\r\n", 400, "expected request line"),
    RBAD("17-byte method", "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", 400, "method of at most 16"),
    RBAD("a response", "HTTP/1.1 200 OK\r\n\r\n", 400, "expected request line"),
    RBAD("header without colon", "GET / HTTP/1.1\r\nno colon\r\n\r\n", 400, "expected header line"),
    RBAD("bad content-length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400,
         "decimal Content-Length"),
    RBAD("two content-lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         400, "one Content-Length"),
    RBAD("bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400,
         "hexadecimal chunk size"),
    RBAD("no CRLF after chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
         400, "CRLF after the chunk data"),
    RBAD("transfer coding not chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
         "Transfer-Encoding: chunked"),
    RBAD("transfer coding besides chunked",
         "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "no transfer coding but chunked"),
};

/* Feed c->in like parse_case and check the request against c. */
static void request_case(const struct rcase *c, size_t split, size_t step)
{
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    size_t n = strlen(c->in), off = 0, used;
    xl_rc rc = XL_OK;

    xl_http_parser_init_request(&p);
    while (off < n && rc == XL_OK && !xl_http_parser_done(&p)) {
        size_t k = off == 0 && split ? split : (step ? step : n - off);

        if (k > n - off)
            k = n - off;
        rc = xl_http_parser_feed(&p, c->in + off, k, &used, pbody, &o, &err);
        if (rc == XL_OK && !xl_http_parser_done(&p) && used != k)
            fail_msg("%s: consumed %zu of %zu without finishing", c->name, used, k);
        off += used;
    }
    if (c->status) {
        if (rc != XL_EPROTO || !strstr(err.msg, c->method) || p.status != c->status)
            fail_msg("%s (split %zu step %zu): want %d \"%s\", got rc %d status %d \"%s\"", c->name,
                     split, step, c->status, c->method, rc, p.status, err.msg);
        assert_non_null(strstr(err.msg, "malformed request"));
        return;
    }
    if (rc != XL_OK)
        fail_msg("%s (split %zu step %zu): %s", c->name, split, step, err.msg);
    if (!xl_http_parser_done(&p))
        fail_msg("%s (split %zu step %zu): not done", c->name, split, step);
    assert_int_equal(off, n);
    assert_string_equal(p.method, c->method);
    assert_string_equal(p.target, c->target);
    o.body[o.len] = '\0';
    if (strcmp(o.body, c->body) != 0)
        fail_msg("%s: body \"%s\", want \"%s\"", c->name, o.body, c->body);
    if (p.keep_alive != c->keep_alive)
        fail_msg("%s: keep_alive %d, want %d", c->name, p.keep_alive, c->keep_alive);
    if (p.expect_continue != c->expect_continue)
        fail_msg("%s: expect_continue %d, want %d", c->name, p.expect_continue, c->expect_continue);
}

static void test_request_table(void **state)
{
    for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
        size_t n = strlen(rcases[i].in);

        request_case(&rcases[i], 0, 0);
        request_case(&rcases[i], 0, 1);
        request_case(&rcases[i], 0, 3);
        for (size_t s = 1; s < n; s++)
            request_case(&rcases[i], s, 0);
    }
}

/* Several requests in one buffer: each feed stops at the end of one, the
 * rest is the next one's; fed whole and one byte at a time. */
static void test_request_pipelined(void **state)
{
    static const char in[] = "GET /healthz HTTP/1.1\r\n\r\n"
                             "POST /v1/push HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                             "POST /v1/push HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nde\r\n0\r\n\r\n"
                             "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    static const struct {
        const char *method, *target, *body;
        bool keep_alive;
    } want[] = {
        {"GET", "/healthz", "", true},
        {"POST", "/v1/push", "abc", true},
        {"POST", "/v1/push", "de", true},
        {"HEAD", "/metrics", "", false},
    };

    for (size_t step = 0; step <= 1; step++) {
        struct xl_http_parser p;
        struct xl_err err = {0};
        size_t n = strlen(in), off = 0, seen = 0;

        while (off < n) {
            struct pout o = {0};

            xl_http_parser_init_request(&p);
            while (off < n && !xl_http_parser_done(&p)) {
                size_t k = step ? 1 : n - off, used = 0;

                assert_int_equal(xl_http_parser_feed(&p, in + off, k, &used, pbody, &o, &err),
                                 XL_OK);
                off += used;
            }
            assert_true(xl_http_parser_done(&p));
            assert_true(seen < 4);
            assert_string_equal(p.method, want[seen].method);
            assert_string_equal(p.target, want[seen].target);
            o.body[o.len] = '\0';
            assert_string_equal(o.body, want[seen].body);
            assert_int_equal(p.keep_alive, want[seen].keep_alive);
            seen++;
        }
        assert_int_equal(seen, 4);
    }
}

/* The end of the headers is visible before the body (100 Continue). */
static void test_request_headers_done(void **state)
{
    static const char head[] =
        "POST /v1/push HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    size_t used;

    xl_http_parser_init_request(&p);
    assert_int_equal(xl_http_parser_feed(&p, head, strlen(head) - 1, &used, pbody, &o, &err),
                     XL_OK);
    assert_false(xl_http_parser_headers_done(&p));
    assert_int_equal(xl_http_parser_feed(&p, "\n", 1, &used, pbody, &o, &err), XL_OK);
    assert_true(xl_http_parser_headers_done(&p));
    assert_false(xl_http_parser_done(&p));
    assert_true(p.expect_continue);
    assert_true(p.have_length);
    assert_int_equal(p.length, 4);
    assert_int_equal(xl_http_parser_feed(&p, "body", 4, &used, pbody, &o, &err), XL_OK);
    assert_true(xl_http_parser_done(&p));
    assert_int_equal(o.len, 4);
}

static void test_request_limits_and_eof(void **state)
{
    struct xl_http_parser p;
    struct xl_err err = {0};
    struct pout o = {0};
    char *buf = malloc(XL_HTTP_LINE_MAX + 128);
    size_t used;
    xl_rc rc = XL_OK;
    int n;

    /* A target of exactly XL_HTTP_TARGET_MAX bytes, and one more. */
    for (int extra = 0; extra <= 1; extra++) {
        buf[0] = '/';
        memset(buf + 1, 'a', XL_HTTP_TARGET_MAX - 1 + extra);
        n = snprintf(buf + XL_HTTP_TARGET_MAX + extra, 64, " HTTP/1.1\r\n\r\n");
        n += XL_HTTP_TARGET_MAX + extra;
        xl_http_parser_init_request(&p);
        rc = xl_http_parser_feed(&p, "GET ", 4, &used, pbody, &o, &err);
        rc = rc ? rc : xl_http_parser_feed(&p, buf, (size_t)n, &used, pbody, &o, &err);
        if (!extra) {
            assert_int_equal(rc, XL_OK);
            assert_true(xl_http_parser_done(&p));
            assert_int_equal(strlen(p.target), XL_HTTP_TARGET_MAX);
        } else {
            assert_int_equal(rc, XL_EPROTO);
            assert_int_equal(p.status, 414);
            assert_non_null(strstr(err.msg, "target of at most 2048 bytes"));
        }
    }

    /* A request line past the line limit: 414 before its end is seen. */
    xl_http_parser_init_request(&p);
    memset(buf, 'a', XL_HTTP_LINE_MAX + 64);
    buf[0] = '/';
    rc = xl_http_parser_feed(&p, "GET ", 4, &used, pbody, &o, &err);
    rc = rc ? rc : xl_http_parser_feed(&p, buf, XL_HTTP_LINE_MAX + 64, &used, pbody, &o, &err);
    assert_int_equal(rc, XL_EPROTO);
    assert_int_equal(p.status, 414);

    /* A header line past the limit, and too many header bytes: 431. */
    xl_http_parser_init_request(&p);
    rc = xl_http_parser_feed(&p, "GET / HTTP/1.1\r\nX-Long: ", 24, &used, pbody, &o, &err);
    rc = rc ? rc : xl_http_parser_feed(&p, buf, XL_HTTP_LINE_MAX + 64, &used, pbody, &o, &err);
    assert_int_equal(rc, XL_EPROTO);
    assert_int_equal(p.status, 431);

    xl_http_parser_init_request(&p);
    rc = xl_http_parser_feed(&p, "GET / HTTP/1.1\r\n", 16, &used, pbody, &o, &err);
    for (int i = 0; i < 100 && rc == XL_OK; i++) {
        n = snprintf(buf, 1100, "X-H%d: %01000d\r\n", i, 0);
        rc = xl_http_parser_feed(&p, buf, (size_t)n, &used, pbody, &o, &err);
    }
    assert_int_equal(rc, XL_EPROTO);
    assert_int_equal(p.status, 431);
    assert_non_null(strstr(err.msg, "65536 bytes of headers"));

    /* Feeding after an error stays an error. */
    assert_int_equal(xl_http_parser_feed(&p, "x", 1, &used, pbody, &o, &err), XL_EPROTO);

    /* EOF: before anything, in the headers, in a body. */
    xl_http_parser_init_request(&p);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_ECONN);
    assert_non_null(strstr(err.msg, "before a request"));
    xl_http_parser_init_request(&p);
    xl_http_parser_feed(&p, "GET / HTTP/1.1\r\n", 16, &used, pbody, &o, &err);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "malformed request: expected the end of the headers"));
    xl_http_parser_init_request(&p);
    xl_http_parser_feed(&p, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 40, &used, pbody, &o,
                        &err);
    assert_int_equal(xl_http_parser_eof(&p, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "expected 5 body bytes"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_table),
        cmocka_unit_test(test_parser_leftover_and_eof),
        cmocka_unit_test(test_parser_limits),
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_request_headers_done),
        cmocka_unit_test(test_request_limits_and_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
