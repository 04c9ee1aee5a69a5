/* Unit tests of `xluo logs`: the Server-Sent Events parser (table-driven,
 * fed in every possible split), the rendering of log lines and stream
 * events, the URLs, the options, and the whole command (search, then
 * follow with a reconnection) against a scripted HTTP server on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "cli/http.h"
#include "cli/sse.h"
#include "common/alloc.h"
#include "common/buf.h"

#include "cli_test_util.h"

/* ---- the SSE parser ---- */

/* The events seen, as "type|id|data;" each. */
static int record_event(void *ctx, const struct xl_sse_event *ev)
{
    struct xl_buf *b = ctx;

    assert_int_equal(strlen(ev->data), ev->len);
    xl_buf_printf(b, "%s|%s|%s;", ev->type, ev->id, ev->data);
    return 0;
}

static void test_sse_table(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"data: hello\n\n", "message||hello;"},
        {"data:hello\n\n", "message||hello;"},              /* no space */
        {"data:  two spaces\n\n", "message|| two spaces;"}, /* only one dropped */
        {"data: a\ndata: b\n\n", "message||a\nb;"},
        {"data\n\n", "message||;"}, /* empty data line */
        {"id: 7\nevent: log\ndata: {}\n\n", "log|7|{};"},
        {"id: 7\r\nevent: log\r\ndata: x\r\n\r\n", "log|7|x;"}, /* CRLF */
        {"id: 7\revent: log\rdata: x\r\r", "log|7|x;"},         /* CR */
        {": ping\n\n", ""},                                     /* comment only */
        {": c\ndata: x\n: c\n\n", "message||x;"},
        {"event: log\n\ndata: x\n\n", "message||x;"}, /* no data: type reset */
        {"id: 1\n\nid: 2\ndata: x\n\n", "message|2|x;"},
        {"id: 5\ndata: a\n\ndata: b\n\n", "message|5|a;message|5|b;"}, /* id persists */
        {"id\ndata: a\n\n", "message||a;"},                            /* id reset to empty */
        {"retry: 10\nfoo: bar\ndata: x\n\n", "message||x;"},           /* ignored fields */
        {"data: x\n", ""},                                             /* not dispatched yet */
        {"\xEF\xBB\xBF"
         "data: bom\n\n",
         "message||bom;"},
        {"event: dropped\ndata: {\"count\":3}\n\n", "dropped||{\"count\":3};"},
        {"data: a:b: c\n\n", "message||a:b: c;"},
        {"DATA: x\n\n", ""}, /* case-sensitive */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);

        /* Whole, then cut in two at every byte, then byte by byte. */
        for (size_t cut = 0; cut <= len + 1; cut++) {
            struct xl_buf got;
            struct xl_sse p;

            xl_buf_init(&got, 1 << 16);
            xl_sse_init(&p, record_event, &got);
            if (cut <= len) {
                assert_int_equal(xl_sse_feed(&p, cases[i].in, cut), XL_OK);
                assert_int_equal(xl_sse_feed(&p, cases[i].in + cut, len - cut), XL_OK);
            } else {
                for (size_t k = 0; k < len; k++)
                    assert_int_equal(xl_sse_feed(&p, cases[i].in + k, 1), XL_OK);
            }
            if (strcmp(got.data ? got.data : "", cases[i].want) != 0)
                fail_msg("case %zu (cut %zu): got \"%s\", want \"%s\"", i, cut,
                         got.data ? got.data : "", cases[i].want);
            xl_sse_cleanup(&p);
            xl_buf_cleanup(&got);
        }
    }
}

static void test_sse_reset_and_id(void **state)
{
    struct xl_buf got;
    struct xl_sse p;

    xl_buf_init(&got, 4096);
    xl_sse_init(&p, record_event, &got);
    assert_string_equal(xl_sse_last_id(&p), "");
    assert_int_equal(xl_sse_set_id(&p, "41"), XL_OK);
    /* A connection cut mid-event: the half event and its id are forgotten. */
    assert_int_equal(xl_sse_feed(&p, "id: 42\ndata: half", 17), XL_OK);
    assert_string_equal(xl_sse_last_id(&p), "41");
    xl_sse_reset(&p);
    assert_int_equal(xl_sse_feed(&p, "\n\ndata: whole\n\n", 15), XL_OK);
    assert_string_equal(got.data, "message|41|whole;");
    /* An event without data still moves the last id. */
    assert_int_equal(xl_sse_feed(&p, "id: 43\n\n", 8), XL_OK);
    assert_string_equal(xl_sse_last_id(&p), "43");
    xl_sse_cleanup(&p);
    xl_buf_cleanup(&got);
}

static int stop_event(void *ctx, const struct xl_sse_event *ev)
{
    (*(int *)ctx)++;
    return 1;
}

static void test_sse_errors(void **state)
{
    struct xl_sse p;
    int calls = 0;
    char *big;

    /* The callback stops the parse. */
    xl_sse_init(&p, stop_event, &calls);
    assert_int_equal(xl_sse_feed(&p, "data: a\n\ndata: b\n\n", 18), XL_ESTATE);
    assert_int_equal(calls, 1);
    xl_sse_cleanup(&p);
    /* A line longer than the maximum. */
    big = malloc(XL_SSE_MAX_LINE + 1);
    assert_non_null(big);
    memset(big, 'x', XL_SSE_MAX_LINE + 1);
    xl_sse_init(&p, stop_event, &calls);
    assert_int_equal(xl_sse_feed(&p, big, XL_SSE_MAX_LINE), XL_OK);
    assert_int_equal(xl_sse_feed(&p, big, 1), XL_ETOOBIG);
    xl_sse_cleanup(&p);
    free(big);
}

/* ---- rendering ---- */

static void test_print_row(void **state)
{
    static const struct {
        const char *row;
        bool json;
        xl_rc rc;
        const char *want;
    } cases[] = {
        {"{\"id\":1,\"ts\":1763715010123,\"host\":\"web1\",\"file\":\"/var/log/a.log\","
         "\"line\":\"ERROR timeout\",\"part\":0,\"parts\":0}",
         false, XL_OK, "2025-11-21 08:50:10.123 web1 /var/log/a.log: ERROR timeout\n"},
        {"{\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\",\"line\":\"a\\u001b[31mred\\tx\"}",
         false, XL_OK, "2025-11-21 08:50:10.000 h f: a?[31mred\tx\n"},
        {"{\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\",\"line\":\"trace\\n  at x\"}", false,
         XL_OK, "2025-11-21 08:50:10.000 h f: trace\n  at x\n"},
        {"{\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\",\"line\":\"p\",\"part\":2,\"parts\":"
         "3}",
         false, XL_OK, "2025-11-21 08:50:10.000 h f: [2/3] p\n"},
        {"{\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\",\"line\":\"p\",\"part\":1,\"parts\":"
         "0}",
         false, XL_OK, "2025-11-21 08:50:10.000 h f: [1/?] p\n"},
        {"{\"ts\":1763715010000,\"line\":\"no host\"}", false, XL_OK,
         "2025-11-21 08:50:10.000 - -: no host\n"},
        {"{\"ts\":1763715010000,\"line\":\"x\",\"id\":3}", true, XL_OK,
         "{\"ts\":1763715010000,\"line\":\"x\",\"id\":3}\n"},
        {"{\"ts\":\"soon\",\"line\":\"x\"}", false, XL_EPROTO, ""},
        {"{\"ts\":1}", false, XL_EPROTO, ""},
        {"[1]", false, XL_EPROTO, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct capture out, err;
        struct xl_cli_ctx c;
        struct xl_err e = {0};
        json_t *row = json_loads(cases[i].row, 0, NULL);

        assert_non_null(row);
        ctx_capture(&c, &out, &err);
        c.args.json = cases[i].json;
        assert_int_equal(xl_cli_logs_print_row(&c, row, &e), cases[i].rc);
        cap_close(&out);
        cap_close(&err);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, out.data, cases[i].want);
        json_decref(row);
        cap_free(&out);
        cap_free(&err);
    }
}

static void test_on_event(void **state)
{
    const char *row =
        "{\"id\":9,\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\",\"line\":\"hi\"}";
    struct xl_sse_event log = {"log", row, strlen(row), "9"};
    struct xl_sse_event dropped = {"dropped", "{\"count\":120}", 13, "9"};
    struct xl_sse_event other = {"message", "whatever", 8, ""};
    struct xl_sse_event bad = {"log", "{nope", 5, ""};

    check_on_event(xl_cli_logs_on_event, &log, &dropped, &other, &bad,
                   "2025-11-21 08:50:10.000 h f: hi\n"
                   "{\"id\":9,\"ts\":1763715010000,\"host\":\"h\",\"file\":\"f\","
                   "\"line\":\"hi\"}\n",
                   "xluo: the server dropped 120 lines here: this client did not keep up\n");
}

/* ---- URLs and options ---- */

static void test_urls(void **state)
{
    struct xl_cli_args a;
    struct xl_cli_ctx c = {.now_ms = NOW};
    struct xl_err err;
    struct xl_buf url;

    assert_int_equal(parse(&a, &err, "logs", "--server", "h:1", "--host", "web1", "--file",
                           "/var/log/*.log", "--input", "app", "--grep", "error OR \"time out\"",
                           "--since", "2h", "-n", "5", NULL),
                     XL_OK);
    c.args = a;
    xl_buf_init(&url, 1 << 16);
    assert_int_equal(xl_cli_logs_url(&c, false, 5, 0, &url, &err), XL_OK);
    assert_string_equal(url.data, "http://h:1/api/v1/logs?host=web1&file=%2Fvar%2Flog%2F%2A.log"
                                  "&input=app&q=error%20OR%20%22time%20out%22&from=2h&limit=5");
    xl_buf_reset(&url);
    assert_int_equal(xl_cli_logs_url(&c, false, 10000, 1041, &url, &err), XL_OK);
    assert_non_null(strstr(url.data, "&limit=10000&cursor=1041"));
    xl_buf_reset(&url);
    assert_int_equal(xl_cli_logs_url(&c, true, 0, 0, &url, &err), XL_OK);
    assert_string_equal(url.data, "http://h:1/api/v1/logs/stream?host=web1&file=%2Fvar%2Flog%2F"
                                  "%2A.log&input=app&q=error%20OR%20%22time%20out%22");
    xl_cli_args_cleanup(&a);

    /* Absolute times are sent as epoch ms, durations as written. */
    assert_int_equal(parse(&a, &err, "logs", "--from", "2025-11-21 08:00", "--to", "5m", NULL),
                     XL_OK);
    c.args = a;
    xl_buf_reset(&url);
    assert_int_equal(xl_cli_logs_url(&c, false, 100, 0, &url, &err), XL_OK);
    assert_string_equal(url.data, "http://127.0.0.1:21002/api/v1/logs?from=1763712000000&to=5m"
                                  "&limit=100");
    xl_cli_args_cleanup(&a);
    xl_buf_cleanup(&url);
}

static void test_options(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    assert_int_equal(parse(&a, &err, "logs", "-f", "-n", "0", NULL), XL_OK);
    assert_true(a.follow);
    assert_string_equal(a.lines, "0");
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "logs", "--lines=100000", "--follow", NULL), XL_OK);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "logs", "-n", "-1", NULL), XL_EINVAL);
    assert_non_null(strstr(err.msg, "--lines: expected a number of lines"));
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "logs", "-n", "100001", NULL), XL_EINVAL);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "logs", "-n", "12x", NULL), XL_EINVAL);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "logs", "--since", "1h", "--from", "2h", NULL), XL_EINVAL);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "--file", "x", "logs", NULL), XL_EINVAL);
    assert_non_null(strstr(err.msg, "put it after the command"));
    xl_cli_args_cleanup(&a);
}

/* ---- the whole command against a scripted server ---- */

/* Serves one canned response per connection, in order, keeping each
 * request head. */
struct script {
    int fd, port;
    const char *responses[8];
    size_t n;
    char requests[8][4096];
    bool served_short; /* the client stopped asking early */
    pthread_t thread;
};

static void *script_serve(void *arg)
{
    struct script *s = arg;

    for (size_t i = 0; i < s->n; i++) {
        char *req = s->requests[i];
        size_t got = 0;
        int c = accept(s->fd, NULL, NULL);

        if (c < 0) {
            s->served_short = true;
            return NULL;
        }
        while (got + 1 < sizeof(s->requests[i])) {
            ssize_t k = read(c, req + got, sizeof(s->requests[i]) - 1 - got);
            if (k <= 0)
                break;
            got += (size_t)k;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        if (write(c, s->responses[i], strlen(s->responses[i])) < 0)
            perror("write");
        close(c);
    }
    return NULL;
}

static void script_start(struct script *s, const char **responses)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    memset(s, 0, sizeof(*s));
    while (responses[s->n])
        s->responses[s->n] = responses[s->n], s->n++;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    /* A client that makes fewer requests than scripted fails the test
     * instead of hanging it: accept gives up after 10 s. */
    assert_int_equal(setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){.tv_sec = 10},
                                sizeof(struct timeval)),
                     0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, script_serve, s), 0);
}

static void script_stop(struct script *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
    assert_false(s->served_short);
}

static int run(struct capture *out, struct capture *err, char **args)
{
    char *argv[32] = {"xluo"};
    int argc = 1, code;

    while (*args)
        argv[argc++] = *args++;
    cap_open(out);
    cap_open(err);
    code = xl_cli_main(argc, argv, out->f, err->f);
    cap_close(out);
    cap_close(err);
    return code;
}

#define JSON_OK(body)                                                                              \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" body
#define ROW(id, ts, line)                                                                          \
    "{\"id\":" #id ",\"ts\":" #ts ",\"host\":\"web1\",\"file\":\"/l\",\"line\":\"" line "\"}"

/* Two pages, newest first, printed oldest first. */
static void test_main_search(void **state)
{
    static const char *responses[] = {
        JSON_OK("{\"logs\":[" ROW(9, 1763715010003, "c") "," ROW(8, 1763715010002,
                                                                 "b") "],"
                                                                      "\"next_cursor\":8}"),
        JSON_OK("{\"logs\":[" ROW(7, 1763715010001, "a") "],\"next_cursor\":null}"),
        NULL,
    };
    struct capture out, err;
    struct script s;
    char server[64];

    script_start(&s, responses);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(run(&out, &err,
                         (char *[]){"logs", "--server", server, "--token", "t", "-n", "5", "--host",
                                    "web1", NULL}),
                     0);
    script_stop(&s);
    assert_string_equal(out.data, "2025-11-21 08:50:10.001 web1 /l: a\n"
                                  "2025-11-21 08:50:10.002 web1 /l: b\n"
                                  "2025-11-21 08:50:10.003 web1 /l: c\n");
    assert_string_equal(err.data, "");
    assert_non_null(strstr(s.requests[0], "GET /api/v1/logs?host=web1&limit=5 HTTP/1.1\r\n"));
    assert_non_null(strstr(s.requests[1], "GET /api/v1/logs?host=web1&limit=3&cursor=8 "));
    cap_free(&out);
    cap_free(&err);
}

static void test_main_search_errors(void **state)
{
    static const char *bad_query[] = {
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"error\":\"bad query\",\"detail\":\"q: unterminated quote at byte 0\"}",
        NULL,
    };
    static const char *empty[] = {JSON_OK("{\"logs\":[],\"next_cursor\":null}"), NULL};
    static const char *garbage[] = {JSON_OK("{\"logs\":[{\"ts\":\"x\"}]}"), NULL};
    struct capture out, err;
    struct script s;
    char server[64];

    script_start(&s, bad_query);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(run(&out, &err, (char *[]){"logs", "--server", server, "--grep", "\"", NULL}),
                     1);
    script_stop(&s);
    assert_string_equal(err.data, "xluo: bad query: q: unterminated quote at byte 0 (HTTP 400)\n");
    cap_free(&out);
    cap_free(&err);

    script_start(&s, empty);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(run(&out, &err, (char *[]){"logs", "--server", server, NULL}), 0);
    script_stop(&s);
    assert_string_equal(out.data, "no log lines\n");
    cap_free(&out);
    cap_free(&err);

    script_start(&s, garbage);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(run(&out, &err, (char *[]){"logs", "--server", server, NULL}), 1);
    script_stop(&s);
    assert_non_null(strstr(err.data, "unexpected answer from the server"));
    cap_free(&out);
    cap_free(&err);

    /* Usage: --to with --follow. */
    assert_int_equal(run(&out, &err, (char *[]){"logs", "-f", "--to", "5m", NULL}), 64);
    assert_non_null(strstr(err.data, "--to and --follow"));
    cap_free(&out);
    cap_free(&err);
}

/* The backlog, then a stream that is cut, then a reconnection that carries
 * the last id and is refused: lines once each, the notes on stderr. */
static void test_main_follow(void **state)
{
    static const char *responses[] = {
        JSON_OK("{\"logs\":[" ROW(7, 1763715010001, "old") "],\"next_cursor\":7}"),
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        ": connected\n\n"
        "id: 8\nevent: log\ndata: " ROW(8, 1763715010002,
                                        "new") "\n\n"
                                               "event: dropped\ndata: {\"count\":2}\n\n"
                                               ": ping\n\n"
                                               "id: 9\nevent: log\ndata: " ROW(
                                                   9, 1763715010003,
                                                   "newer") "\n\n"
                                                            "id: 10\nevent: log\ndata: {\"half",
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"error\":\"unauthorized\",\"detail\":\"x\"}",
        NULL,
    };
    struct capture out, err;
    struct script s;
    char server[64];

    script_start(&s, responses);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(run(&out, &err,
                         (char *[]){"logs", "-f", "-n", "1", "--server", server, "--token", "tk",
                                    "--grep", "x", NULL}),
                     2);
    script_stop(&s);
    assert_string_equal(out.data, "2025-11-21 08:50:10.001 web1 /l: old\n"
                                  "2025-11-21 08:50:10.002 web1 /l: new\n"
                                  "2025-11-21 08:50:10.003 web1 /l: newer\n");
    assert_string_equal(err.data,
                        "xluo: the server dropped 2 lines here: this client did not keep up\n"
                        "xluo: the server closed the stream; reconnecting in 500ms\n"
                        "xluo: the server rejected the token (set --token or XLUO_TOKEN)\n");
    assert_non_null(strstr(s.requests[0], "GET /api/v1/logs?q=x&limit=1 "));
    assert_non_null(strstr(s.requests[1], "GET /api/v1/logs/stream?q=x HTTP/1.1\r\n"));
    assert_non_null(strstr(s.requests[1], "\r\nLast-Event-ID: 7\r\n"));
    assert_non_null(strstr(s.requests[1], "\r\nAccept: text/event-stream\r\n"));
    assert_non_null(strstr(s.requests[1], "\r\nAuthorization: Bearer tk\r\n"));
    assert_non_null(strstr(s.requests[2], "\r\nLast-Event-ID: 9\r\n"));
    cap_free(&out);
    cap_free(&err);
}

/* An empty backlog: follow from the newest stored line (a query without
 * filters), so nothing stored meanwhile is missed; --json prints the
 * server's objects as they are. */
static void test_main_follow_empty_backlog(void **state)
{
    static const char *responses[] = {
        JSON_OK("{\"logs\":[],\"next_cursor\":null}"),
        JSON_OK("{\"logs\":[" ROW(41, 1763715010001, "other") "],\"next_cursor\":40}"),
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        "id: 42\nevent: log\ndata: " ROW(42, 1763715010002, "new") "\n\n",
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"error\":\"bad query\",\"detail\":\"q: nope\"}",
        NULL,
    };
    struct capture out, err;
    struct script s;
    char server[64];

    script_start(&s, responses);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", s.port);
    assert_int_equal(
        run(&out, &err,
            (char *[]){"logs", "--follow", "--json", "--server", server, "--host", "db", NULL}),
        1);
    script_stop(&s);
    assert_string_equal(out.data, ROW(42, 1763715010002, "new") "\n");
    assert_non_null(strstr(s.requests[0], "GET /api/v1/logs?host=db&limit=10 "));
    assert_non_null(strstr(s.requests[1], "GET /api/v1/logs?from=0&limit=1 "));
    assert_non_null(strstr(s.requests[2], "\r\nLast-Event-ID: 41\r\n"));
    assert_non_null(strstr(s.requests[3], "\r\nLast-Event-ID: 42\r\n"));
    assert_non_null(strstr(err.data, "xluo: bad query: q: nope (HTTP 400)\n"));
    cap_free(&out);
    cap_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_table),
        cmocka_unit_test(test_sse_reset_and_id),
        cmocka_unit_test(test_sse_errors),
        cmocka_unit_test(test_print_row),
        cmocka_unit_test(test_on_event),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_main_search),
        cmocka_unit_test(test_main_search_errors),
        cmocka_unit_test(test_main_follow),
        cmocka_unit_test(test_main_follow_empty_backlog),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
