/* Unit tests of the command-line client: arguments, tables, formats, URLs,
 * answers from the server, the renderers on canned JSON, and the whole
 * client against a one-shot HTTP server on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "cli/http.h"
#include "cli/table.h"
#include "common/alloc.h"

#include "cli_test_util.h"

/* A context for renderers and URL builders: fixed clock, captured out. */
static void ctx_init(struct xl_cli_ctx *c, struct capture *out)
{
    memset(c, 0, sizeof(*c));
    xl_cli_args_init(&c->args);
    c->args.server = "http://srv:21002";
    c->now_ms = NOW;
    if (out) {
        cap_open(out);
        c->out = out->f;
    }
    c->err = stderr;
}

/* ---- arguments ---- */

static void test_args_global_anywhere(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    assert_int_equal(parse(&a, &err, "--json", "metrics", "--server", "http://x:1", "--match",
                           "a=b", "--token=t", "--match", "c!=d", "--timeout", "2.5", NULL),
                     XL_OK);
    assert_true(a.json);
    assert_string_equal(a.cmd->name, "metrics");
    assert_string_equal(a.server, "http://x:1");
    assert_string_equal(a.token, "t");
    assert_int_equal(a.timeout_ms, 2500);
    assert_int_equal(a.match.n, 2);
    assert_string_equal(a.match.v[0], "a=b");
    assert_string_equal(a.match.v[1], "c!=d");
    xl_cli_args_cleanup(&a);

    assert_int_equal(parse(&a, &err, "--timeout=30s", "--server=http://y", "query", "node_load1",
                           "--since", "2h", "--step=5m", "--agg", "max", "--host", "web1", NULL),
                     XL_OK);
    assert_int_equal(a.timeout_ms, 30000);
    assert_string_equal(a.name, "node_load1");
    assert_string_equal(a.since, "2h");
    assert_string_equal(a.step, "5m");
    assert_string_equal(a.agg, "max");
    assert_string_equal(a.host, "web1");
    assert_false(a.json);
    xl_cli_args_cleanup(&a);
}

static void test_args_defaults_env(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    assert_int_equal(parse(&a, &err, "agents", NULL), XL_OK);
    assert_string_equal(a.server, "http://127.0.0.1:21002");
    assert_null(a.token);
    assert_int_equal(a.timeout_ms, 10000);
    xl_cli_args_cleanup(&a);

    setenv("XLUO_SERVER", "http://env:9", 1);
    setenv("XLUO_TOKEN", "envtok", 1);
    assert_int_equal(parse(&a, &err, "agents", NULL), XL_OK);
    assert_string_equal(a.server, "http://env:9");
    assert_string_equal(a.token, "envtok");
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "agents", "--server", "http://opt:1", NULL), XL_OK);
    assert_string_equal(a.server, "http://opt:1"); /* the option wins */
    xl_cli_args_cleanup(&a);
    setenv("XLUO_TOKEN", "", 1); /* empty: unset */
    assert_int_equal(parse(&a, &err, "agents", NULL), XL_OK);
    assert_null(a.token);
    xl_cli_args_cleanup(&a);
    unsetenv("XLUO_SERVER");
    unsetenv("XLUO_TOKEN");
}

static void test_args_help_version(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    assert_int_equal(parse(&a, &err, "--version", NULL), XL_OK);
    assert_true(a.version);
    assert_int_equal(parse(&a, &err, "-h", NULL), XL_OK);
    assert_true(a.help);
    assert_null(a.cmd);
    /* help skips the other checks: query without NAME is fine here */
    assert_int_equal(parse(&a, &err, "query", "--help", NULL), XL_OK);
    assert_true(a.help);
    assert_string_equal(a.cmd->name, "query");
    /* -- ends the options */
    assert_int_equal(parse(&a, &err, "query", "--", "--odd-name", NULL), XL_OK);
    assert_string_equal(a.name, "--odd-name");
}

struct bad_args {
    const char *argv[8];
    const char *msg; /* a part of the message */
};

static void test_args_errors(void **state)
{
    static const struct bad_args cases[] = {
        {{NULL}, "no command given"},
        {{"frobnicate", NULL}, "unknown command 'frobnicate'"},
        {{"agents", "--bogus", NULL}, "unknown option --bogus for 'agents'"},
        {{"--bogus", NULL}, "unknown option --bogus"},
        {{"--host", "a", "metrics", NULL}, "--host is an option of a command"},
        {{"agents", "--host", "a", NULL}, "unknown option --host for 'agents'"},
        {{"metrics", "--match", NULL}, "--match needs a value (SEL)"},
        {{"metrics", "--match", "nolabel", NULL}, "--match: expected label=value"},
        {{"metrics", "--match", "=v", NULL}, "--match: expected label=value"},
        {{"metrics", "--match", "!=v", NULL}, "--match: expected label=value"},
        {{"query", "x", "--since", "1x", NULL}, "--since: invalid duration '1x'"},
        {{"query", "x", "--since", "0", NULL}, "--since: the duration must be more than 0"},
        {{"query", "x", "--step", "fast", NULL}, "--step: invalid duration 'fast'"},
        {{"query", "x", "--from", "yesterday", NULL}, "--from: invalid time 'yesterday'"},
        {{"query", "x", "--to", "2026-13-01", NULL}, "--to: invalid time '2026-13-01'"},
        {{"query", "x", "--agg", "median", NULL}, "--agg: unknown aggregation 'median'"},
        {{"query", "x", "--since", "1h", "--from", "2h", NULL}, "--since and --from"},
        {{"query", NULL}, "query needs a NAME"},
        {{"query", "a", "b", NULL}, "unexpected argument 'b'"},
        {{"agents", "extra", NULL}, "unexpected argument 'extra'"},
        {{"--timeout", "soon", "agents", NULL}, "--timeout: invalid number of seconds 'soon'"},
        {{"--json=yes", "agents", NULL}, "--json takes no value"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[10] = {"xluo"};
        int argc = 1;
        struct xl_cli_args a;
        struct xl_err err;

        for (size_t j = 0; cases[i].argv[j]; j++)
            argv[argc++] = (char *)cases[i].argv[j];
        xl_cli_args_init(&a);
        xl_err_clear(&err);
        assert_int_equal(xl_cli_args_parse(&a, argc, argv, &err), XL_EINVAL);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].msg);
        xl_cli_args_cleanup(&a);
    }
}

static void test_args_oom(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    xl_alloc_fail_after(0);
    assert_int_equal(parse(&a, &err, "metrics", "--match", "a=b", NULL), XL_ENOMEM);
    xl_alloc_fail_after(-1);
    xl_cli_args_cleanup(&a);
}

/* ---- tables ---- */

static char *print_table(struct xl_table *t)
{
    struct capture c;

    cap_open(&c);
    assert_int_equal(xl_table_print(t, c.f), XL_OK);
    cap_close(&c);
    return c.data;
}

static void test_table_align(void **state)
{
    struct xl_table *t = xl_table_new(3);
    char *s;

    xl_table_align_right(t, 1);
    xl_table_add(t, "NAME");
    xl_table_add(t, "N");
    xl_table_add(t, "NOTE");
    xl_table_add(t, "a");
    xl_table_add(t, "12345");
    xl_table_add(t, "x");
    xl_table_addf(t, "%s-%d", "longer", 2);
    xl_table_add(t, "7");
    xl_table_add(t, ""); /* empty last cell: no trailing spaces */
    xl_table_add(t, "b");
    xl_table_add(t, NULL);
    xl_table_add(t, "last"); /* empty middle cell keeps the columns */
    assert_int_equal(xl_table_rows(t), 4);
    s = print_table(t);
    assert_string_equal(s, "NAME          N  NOTE\n"
                           "a         12345  x\n"
                           "longer-2      7\n"
                           "b                last\n");
    free(s);
    xl_table_free(t);
}

static void test_table_edges(void **state)
{
    struct xl_table *t = xl_table_new(2);
    char *s;

    xl_table_add(t, "HOST");
    xl_table_add(t, "LABELS");
    s = print_table(t); /* header only */
    assert_string_equal(s, "HOST  LABELS\n");
    free(s);
    xl_table_add(t, "h\x1b[2Jx");     /* escape sequences are defused */
    xl_table_add(t, "caf\xc3\xa9=1"); /* UTF-8: 6 code points */
    xl_table_add(t, "partial");       /* a partial last row */
    s = print_table(t);
    assert_string_equal(s, "HOST     LABELS\n"
                           "h?[2Jx   caf\xc3\xa9=1\n"
                           "partial\n");
    free(s);
    assert_int_equal(xl_table_width("caf\xc3\xa9"), 4);
    xl_table_free(t);
    xl_table_free(NULL);

    xl_alloc_fail_after(0);
    assert_null(xl_table_new(1));
    xl_alloc_fail_after(-1);
    t = xl_table_new(1);
    xl_alloc_fail_after(0);
    assert_int_equal(xl_table_add(t, "x"), XL_ENOMEM);
    xl_alloc_fail_after(-1);
    xl_table_free(t);
}

/* ---- formats ---- */

static void test_fmt_ago(void **state)
{
    static const struct {
        int64_t ago_ms;
        const char *want;
    } cases[] = {
        {0, "0s ago"},
        {999, "0s ago"},
        {3000, "3s ago"},
        {59999, "59s ago"},
        {60000, "1m ago"},
        {125000, "2m ago"},
        {3599999, "59m ago"},
        {3600000, "1h ago"},
        {47 * 3600000LL, "47h ago"},
        {48 * 3600000LL, "2d ago"},
        {400 * 86400000LL, "400d ago"},
        {-500, "0s ago"},
        {-5000, "in 5s"},
    };
    char out[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xl_cli_fmt_ago(NOW - cases[i].ago_ms, NOW, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
    xl_cli_fmt_ago(0, NOW, out, sizeof(out));
    assert_string_equal(out, "never");
}

static void test_fmt_bytes_and_duration(void **state)
{
    static const struct {
        int64_t v;
        const char *bytes, *duration;
    } cases[] = {
        {0, "0 B", "0ms"},
        {999, "999 B", "999ms"},
        {1023, "1023 B", "1s"},
        {1024, "1.0 KiB", "1s"},
        {1536, "1.5 KiB", "1s"},
        {10239, "9.9 KiB", "10s"},
        {10240, "10 KiB", "10s"},
        {59999, "58 KiB", "59s"},
        {60000, "58 KiB", "1m"},
        {1048575, "1023 KiB", "17m"},
        {1048576, "1.0 MiB", "17m"},
        {3600000, "3.4 MiB", "1h"},
        {47 * 3600000LL, "161 MiB", "47h"},
        {48 * 3600000LL, "164 MiB", "2d"},
        {5LL << 30, "5.0 GiB", "62d"},
        {3LL << 40, "3.0 TiB", "38177d"},
    };
    char out[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xl_cli_fmt_bytes(cases[i].v, out, sizeof(out));
        if (strcmp(out, cases[i].bytes) != 0)
            fail_msg("bytes %lld: '%s', want '%s'", (long long)cases[i].v, out, cases[i].bytes);
        xl_cli_fmt_duration(cases[i].v, out, sizeof(out));
        if (strcmp(out, cases[i].duration) != 0)
            fail_msg("duration %lld: '%s', want '%s'", (long long)cases[i].v, out,
                     cases[i].duration);
    }
}

static void test_fmt_value(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-42, "-42"},
        {0.41, "0.41"},
        {0.1 + 0.2, "0.3"},
        {3.14159265, "3.14159"},
        {1234567, "1234567"},
        {123456789012345, "123456789012345"},
        {1e15, "1e+15"},
        {2.5e20, "2.5e+20"},
        {1234567.89, "1234568"},
        {12345.678, "12345.7"},
        {0.000012, "1.2e-05"},
        {-0.5, "-0.5"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xl_cli_fmt_value(cases[i].v, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: %g gave '%s', want '%s'", i, cases[i].v, out, cases[i].want);
    }
    xl_cli_fmt_value(NAN, out, sizeof(out));
    assert_string_equal(out, "NaN");
    xl_cli_fmt_value(INFINITY, out, sizeof(out));
    assert_string_equal(out, "+Inf");
    xl_cli_fmt_value(-INFINITY, out, sizeof(out));
    assert_string_equal(out, "-Inf");
}

static void test_fmt_time(void **state)
{
    char out[48];

    xl_cli_fmt_time(NOW, false, out, sizeof(out));
    assert_string_equal(out, "2025-11-21 08:50:10");
    xl_cli_fmt_time(NOW + 123, true, out, sizeof(out));
    assert_string_equal(out, "2025-11-21 08:50:10.123");
}

static void test_time_parse(void **state)
{
    struct xl_err err;
    int64_t ms;
    bool rel;

    assert_int_equal(xl_cli_time_parse("1h", NOW, &ms, &rel, &err), XL_OK);
    assert_true(rel);
    assert_int_equal(ms, NOW - 3600000);
    assert_int_equal(xl_cli_time_parse("now", NOW, &ms, &rel, &err), XL_OK);
    assert_false(rel);
    assert_int_equal(ms, NOW);
    assert_int_equal(xl_cli_time_parse("1763715000000", NOW, &ms, &rel, &err), XL_OK);
    assert_false(rel);
    assert_int_equal(ms, 1763715000000LL);
    assert_int_equal(xl_cli_time_parse("2025-11-21 08:50", NOW, &ms, &rel, &err), XL_OK);
    assert_int_equal(ms, 1763715000000LL);
    assert_int_equal(xl_cli_time_parse("2025-11-21T08:50:10", NOW, &ms, &rel, &err), XL_OK);
    assert_int_equal(ms, NOW);
    assert_int_equal(xl_cli_time_parse("2025-11-21", NOW, &ms, &rel, &err), XL_OK);
    assert_int_equal(ms, 1763683200000LL);
    assert_int_equal(xl_cli_time_parse("2025-02-30", NOW, &ms, &rel, &err), XL_EINVAL);
    assert_int_equal(xl_cli_time_parse("2025-11-21 8:50", NOW, &ms, &rel, &err), XL_EINVAL);
    assert_int_equal(xl_cli_time_parse("", NOW, &ms, &rel, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "invalid time ''"));
}

static void test_default_step(void **state)
{
    static const struct {
        int64_t range;
        int64_t step;
    } cases[] = {
        {60000, 0},
        {3600000, 0},                /* up to an hour: raw */
        {3600001, 60000},            /* 30.0s per point -> 1m */
        {2 * 3600000LL, 60000},      /* exactly 120 points */
        {6 * 3600000LL, 300000},     /* 3m -> 5m */
        {24 * 3600000LL, 900000},    /* 12m -> 15m */
        {7 * 86400000LL, 7200000},   /* 84m -> 2h */
        {30 * 86400000LL, 21600000}, /* 6h */
        {365 * 86400000LL, 4 * 86400000LL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t s = xl_cli_default_step(cases[i].range);
        assert_int_equal(s, cases[i].step);
        if (s)
            assert_true(cases[i].range / s <= XL_CLI_MAX_POINTS);
    }
    assert_int_equal(xl_cli_round_step(1800000), 15000);
}

static void test_json_pretty(void **state)
{
    const char *in = "{\"a\":[1,2.50,{}],\"b\" : {\"c\":\"x, {y}: \\\"z\\\"\"},\"d\":[]}";
    struct capture c;

    cap_open(&c);
    xl_cli_json_pretty(in, strlen(in), c.f);
    assert_string_equal(cap_close(&c), "{\n"
                                       "  \"a\": [\n"
                                       "    1,\n"
                                       "    2.50,\n"
                                       "    {}\n"
                                       "  ],\n"
                                       "  \"b\": {\n"
                                       "    \"c\": \"x, {y}: \\\"z\\\"\"\n"
                                       "  },\n"
                                       "  \"d\": []\n"
                                       "}\n");
    cap_free(&c);
}

/* ---- URLs ---- */

static void test_url_escape(void **state)
{
    struct xl_buf u;

    xl_buf_init(&u, XL_CLI_MAX_URL);
    assert_int_equal(xl_cli_url_start(&u, "http://h:1//", "/api/v1/series"), XL_OK);
    assert_int_equal(xl_cli_url_param(&u, "name", "a b&c=d/\xc3\xa9"), XL_OK);
    assert_int_equal(xl_cli_url_param(&u, "skip", NULL), XL_OK);
    assert_int_equal(xl_cli_url_param(&u, "match", "mode!=idle"), XL_OK);
    assert_string_equal(
        u.data, "http://h:1/api/v1/series?name=a%20b%26c%3Dd%2F%C3%A9&match=mode%21%3Didle");
    xl_buf_cleanup(&u);

    xl_buf_init(&u, XL_CLI_MAX_URL);
    assert_int_equal(xl_cli_url_start(&u, "10.0.0.1:21002", "/api/v1/agents"), XL_OK);
    assert_string_equal(u.data, "http://10.0.0.1:21002/api/v1/agents");
    xl_buf_cleanup(&u);

    xl_buf_init(&u, 16); /* the maximum holds */
    assert_int_equal(xl_cli_url_start(&u, "http://a-long-host", "/x"), XL_ETOOBIG);
    xl_buf_cleanup(&u);
}

/* Build cmd's URL for the arguments argv (NULL-ended) at the fixed clock. */
static void check_url(const char *want, ...)
{
    char *argv[32] = {"xluo", "--server", "http://srv:21002/"};
    struct xl_cli_ctx c;
    struct xl_err err = {0};
    struct xl_buf u;
    int argc = 3;
    va_list ap;
    char *s;

    va_start(ap, want);
    while ((s = va_arg(ap, char *)))
        argv[argc++] = s;
    va_end(ap);
    ctx_init(&c, NULL);
    assert_int_equal(xl_cli_args_parse(&c.args, argc, argv, &err), XL_OK);
    xl_buf_init(&u, XL_CLI_MAX_URL);
    assert_int_equal(c.args.cmd->url(&c, &u, &err), XL_OK);
    assert_string_equal(u.data, want);
    xl_buf_cleanup(&u);
    xl_cli_args_cleanup(&c.args);
}

static void test_url_commands(void **state)
{
    check_url("http://srv:21002/api/v1/agents", "agents", NULL);
    check_url("http://srv:21002/api/v1/metrics", "metrics", NULL);
    check_url("http://srv:21002/api/v1/metrics?host=web%201&match=a%3Db&match=c%21%3Dd", "metrics",
              "--host", "web 1", "--match", "a=b", "--match", "c!=d", NULL);
    check_url("http://srv:21002/api/v1/series?name=node_cpu&match=mode%3Duser", "series",
              "node_cpu", "--match", "mode=user", NULL);
    check_url("http://srv:21002/api/v1/series", "series", NULL);
    /* an hour or less: raw samples, the server's defaults */
    check_url("http://srv:21002/api/v1/query?name=node_load1", "query", "node_load1", NULL);
    check_url("http://srv:21002/api/v1/query?name=node_load1&from=30m", "query", "node_load1",
              "--since", "30m", NULL);
    /* longer: about 120 round buckets, averaged */
    check_url("http://srv:21002/api/v1/query?name=node_load1&host=web1&from=1d&step=15m&agg=avg",
              "query", "node_load1", "--host", "web1", "--since", "1d", NULL);
    check_url("http://srv:21002/api/v1/query?name=x&from=6h&step=5m&agg=max", "query", "x",
              "--since", "6h", "--agg", "max", NULL);
    /* an aggregation over a short range gets a step too */
    check_url("http://srv:21002/api/v1/query?name=x&from=30m&step=15s&agg=min", "query", "x",
              "--since", "30m", "--agg", "min", NULL);
    check_url("http://srv:21002/api/v1/query?name=x&from=2d&agg=raw", "query", "x", "--since", "2d",
              "--agg", "raw", NULL);
    check_url("http://srv:21002/api/v1/query?name=x&from=2d&step=1m", "query", "x", "--since", "2d",
              "--step", "1m", NULL);
    /* absolute times become epoch ms (TZ=UTC) */
    check_url("http://srv:21002/api/v1/query?name=x&from=1763683200000&to=1763686800000", "query",
              "x", "--from", "2025-11-21", "--to", "2025-11-21 01:00", NULL);
    check_url("http://srv:21002/api/v1/query?name=x&from=3h&to=1h&step=1m&agg=avg", "query", "x",
              "--from", "3h", "--to", "1h", NULL);
}

static void test_url_empty_range(void **state)
{
    char *argv[] = {"xluo", "query", "x", "--from", "1h", "--to", "2h"};
    struct xl_cli_ctx c;
    struct xl_err err = {0};
    struct xl_buf u;

    ctx_init(&c, NULL);
    assert_int_equal(xl_cli_args_parse(&c.args, 7, argv, &err), XL_OK);
    xl_buf_init(&u, XL_CLI_MAX_URL);
    assert_int_equal(xl_cli_query_url(&c, &u, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "range is empty"));
    xl_buf_cleanup(&u);
    xl_cli_args_cleanup(&c.args);
}

/* ---- answers ---- */

static void test_decode(void **state)
{
    struct xl_err err;
    json_t *root;
    const char *b;

    b = "{\"agents\":[]}";
    assert_int_equal(xl_cli_decode(200, b, strlen(b), &root, &err), XL_OK);
    assert_true(json_is_object(root));
    json_decref(root);

    b = "{\"error\":\"unauthorized\",\"detail\":\"bad token\"}";
    assert_int_equal(xl_cli_decode(401, b, strlen(b), &root, &err), XL_EAUTH);
    assert_null(root);
    assert_string_equal(err.msg, "the server rejected the token (set --token or XLUO_TOKEN)");
    assert_int_equal(xl_cli_exit_code(XL_EAUTH), 2);

    b = "{\"error\":\"bad request\",\"detail\":\"step: too many points, use a larger step\"}";
    assert_int_equal(xl_cli_decode(400, b, strlen(b), &root, &err), XL_EINVAL);
    assert_string_equal(err.msg,
                        "bad request: step: too many points, use a larger step (HTTP 400)");
    assert_int_equal(xl_cli_decode(500, "{\"error\":\"store failed\"}", 24, &root, &err),
                     XL_EPROTO);
    assert_string_equal(err.msg, "store failed (HTTP 500)");
    assert_int_equal(xl_cli_exit_code(XL_EPROTO), 1);

    b = "<html>\n<h1>Bad Gateway</h1></html>";
    assert_int_equal(xl_cli_decode(502, b, strlen(b), &root, &err), XL_EPROTO);
    assert_string_equal(err.msg,
                        "the server answered HTTP 502: <html> <h1>Bad Gateway</h1></html>");
    assert_int_equal(xl_cli_decode(404, "", 0, &root, &err), XL_ENOENT);
    assert_string_equal(err.msg, "the server answered HTTP 404");

    b = "{\"agents\": [";
    assert_int_equal(xl_cli_decode(200, b, strlen(b), &root, &err), XL_EPROTO);
    assert_non_null(strstr(err.msg, "the server sent malformed JSON: "));
    assert_int_equal(xl_cli_decode(200, "[1]", 3, &root, &err), XL_EPROTO);
    assert_string_equal(err.msg, "the server sent JSON that is not an object");
}

/* ---- renderers on canned documents ---- */

/* Render doc with cmd's renderer; returns the output (free it). */
static char *render(const char *cmd, const char *name, const char *doc, xl_rc want_rc,
                    struct xl_err *err)
{
    struct xl_cli_ctx c;
    struct capture out;
    json_error_t jerr;
    json_t *root = json_loads(doc, 0, &jerr);

    if (!root)
        fail_msg("bad test JSON: %s", jerr.text);
    ctx_init(&c, &out);
    c.args.name = name;
    assert_int_equal(xl_cli_cmd_find(cmd)->render(&c, root, err), want_rc);
    json_decref(root);
    cap_close(&out);
    return out.data;
}

static void test_render_agents(void **state)
{
    const char *doc =
        "{\"agents\": ["
        "{\"id\": \"3f0c9a1be2d44c55\", \"host\": \"db1\", \"ip\": \"10.0.0.7\", "
        " \"version\": \"0.1.0\", \"labels\": {\"role\": \"db\", \"dc\": \"par\"}, "
        " \"status\": \"offline\", \"first_seen\": 1763700000000, \"last_seen\": 1763714890000},"
        "{\"id\": \"77aa\", \"host\": \"web1\", \"ip\": \"10.0.0.5\", \"version\": \"0.1.0\","
        " \"labels\": {}, \"status\": \"online\", \"last_seen\": 1763715007000}"
        "]}";
    struct xl_err err;
    char *s;

    const char *health =
        "{\"agents\": ["
        "{\"id\": \"aa\", \"host\": \"a\", \"status\": \"online\", \"last_seen\": 1763715007000,"
        " \"stats\": {\"outbox_bytes\": 1572864, \"outbox_oldest_age_ms\": 125000,"
        " \"records_dropped\": 12, \"breakers\": []}},"
        "{\"id\": \"bb\", \"host\": \"b\", \"status\": \"online\", \"last_seen\": 1763715007000,"
        " \"stats\": {\"outbox_bytes\": 0, \"outbox_oldest_age_ms\": 0, \"records_dropped\": 0}},"
        "{\"id\": \"cc\", \"host\": \"c\", \"status\": \"online\", \"last_seen\": 1763715007000,"
        " \"stats\": {\"outbox_bytes\": \"lots\", \"outbox_oldest_age_ms\": -5}},"
        "{\"id\": \"dd\", \"host\": \"d\", \"status\": \"online\", \"last_seen\": 1763715007000,"
        " \"stats\": null}"
        "]}";

    s = render("agents", NULL, doc, XL_OK, &err);
    assert_string_equal(s,
                        "HOST  ID        IP        VERSION  STATUS   LAST SEEN  OUTBOX  BACKLOG  "
                        "DROPPED  LABELS\n"
                        "db1   3f0c9a1b  10.0.0.7  0.1.0    offline  2m ago          -        -  "
                        "      -  role=db,dc=par\n"
                        "web1  77aa      10.0.0.5  0.1.0    online   3s ago          -        -  "
                        "      -  -\n");
    free(s);
    /* the health columns: from stats, "-" when unknown; BACKLOG "-" when empty */
    s = render("agents", NULL, health, XL_OK, &err);
    assert_string_equal(
        s, "HOST  ID  IP  VERSION  STATUS  LAST SEEN   OUTBOX  BACKLOG  DROPPED  LABELS\n"
           "a     aa  -   -        online  3s ago     1.5 MiB       2m       12  -\n"
           "b     bb  -   -        online  3s ago         0 B        -        0  -\n"
           "c     cc  -   -        online  3s ago           -        -        -  -\n"
           "d     dd  -   -        online  3s ago           -        -        -  -\n");
    free(s);
    s = render("agents", NULL, "{\"agents\": []}", XL_OK, &err);
    assert_string_equal(s, "no agents\n");
    free(s);
    s = render("agents", NULL, "{\"hosts\": []}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "no \"agents\" array");
    free(s);
    s = render("agents", NULL, "{\"agents\": [1]}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "agents[0] is not an object");
    free(s);
}

static void test_render_metrics(void **state)
{
    const char *doc = "{\"metrics\": [{\"name\": \"node_cpu_usage_ratio\", \"series\": 16},"
                      "{\"name\": \"node_load1\", \"series\": 1}]}";
    struct xl_err err;
    char *s;

    s = render("metrics", NULL, doc, XL_OK, &err);
    assert_string_equal(s, "NAME                  SERIES\n"
                           "node_cpu_usage_ratio      16\n"
                           "node_load1                 1\n");
    free(s);
    s = render("metrics", NULL, "{\"metrics\": []}", XL_OK, &err);
    assert_string_equal(s, "no metrics\n");
    free(s);
}

static void test_render_series(void **state)
{
    const char *doc =
        "{\"series\": ["
        "{\"name\": \"node_cpu\", \"labels\": {\"mode\": \"user\", \"host\": \"web1\"}},"
        "{\"name\": \"node_cpu\", \"labels\": {\"host\": \"web2\", \"mode\": \"system\", "
        "\"cpu\": \"0\"}}]}";
    struct xl_err err;
    char *s;

    s = render("series", "node_cpu", doc, XL_OK, &err);
    assert_string_equal(s, "HOST  CPU  MODE\n"
                           "web1  -    user\n"
                           "web2  0    system\n");
    free(s);
    s = render("series", NULL, doc, XL_OK, &err); /* no NAME: a NAME column */
    assert_string_equal(s, "NAME      HOST  CPU  MODE\n"
                           "node_cpu  web1  -    user\n"
                           "node_cpu  web2  0    system\n");
    free(s);
    s = render("series", "up", "{\"series\": [{\"name\": \"up\", \"labels\": {}}]}", XL_OK, &err);
    assert_string_equal(s, "NAME\nup\n");
    free(s);
    s = render("series", "x", "{\"series\": []}", XL_OK, &err);
    assert_string_equal(s, "no series\n");
    free(s);
}

static void test_render_query(void **state)
{
    const char *doc = "{\"name\": \"node_load1\", \"from\": 1763711410000, \"to\": 1763715010000,"
                      " \"step\": 60000, \"agg\": \"avg\", \"series\": ["
                      "{\"labels\": {\"host\": \"web1\"}, \"points\": [[1763714940000, 0.41], "
                      "[1763715000000, 12]]},"
                      "{\"labels\": {\"host\": \"web2\", \"role\": \"a\\\"b\"}, \"points\": "
                      "[[1763715000000, 1234567], [1763715060000, null]]},"
                      "{\"labels\": {}, \"points\": []}]}";
    const char *raw = "{\"name\": \"up\", \"step\": 0, \"agg\": \"raw\", \"series\": ["
                      "{\"labels\": {\"host\": \"h\"}, \"points\": [[1763714940250, 1],"
                      " [1763714950000, 1e-7]]}]}";
    struct xl_err err;
    char *s;

    s = render("query", "node_load1", doc, XL_OK, &err);
    assert_string_equal(s, "node_load1{host=\"web1\"}  (avg, step 1m)\n"
                           "TIME                 VALUE\n"
                           "2025-11-21 08:49:00   0.41\n"
                           "2025-11-21 08:50:00     12\n"
                           "\n"
                           "node_load1{host=\"web2\",role=\"a\\\"b\"}  (avg, step 1m)\n"
                           "TIME                   VALUE\n"
                           "2025-11-21 08:50:00  1234567\n"
                           "2025-11-21 08:51:00      NaN\n"
                           "\n"
                           "node_load1  (avg, step 1m)\n"
                           "no points\n");
    free(s);
    s = render("query", "up", raw, XL_OK, &err);
    assert_string_equal(s, "up{host=\"h\"}\n"
                           "TIME                     VALUE\n"
                           "2025-11-21 08:49:00.250      1\n"
                           "2025-11-21 08:49:10.000  1e-07\n");
    free(s);
    /* The server writes non-finite values as strings (docs/api.md). */
    s = render("query", "up",
               "{\"name\": \"up\", \"step\": 0, \"agg\": \"raw\", \"series\": ["
               "{\"labels\": {}, \"points\": [[1763714940000, \"NaN\"], [1763714950000, "
               "\"+Inf\"], [1763714960000, \"-Inf\"]]}]}",
               XL_OK, &err);
    assert_non_null(s);
    assert_non_null(strstr(s, "08:49:00    NaN\n"));
    assert_non_null(strstr(s, "+Inf\n"));
    assert_non_null(strstr(s, "-Inf\n"));
    free(s);
    s = render("query", "x", "{\"series\": []}", XL_OK, &err);
    assert_string_equal(s, "no data\n");
    free(s);
    s = render("query", "x", "{\"series\": [{\"labels\": {}, \"points\": [[1, \"a\"]]}]}",
               XL_EPROTO, &err);
    assert_string_equal(err.msg, "series[0].points[0] is not [time, value]");
    free(s);
}

/* Every allocation failing in turn: an error or a table, never a crash
 * or a leak (the ASan build checks the leaks). */
static void test_render_oom(void **state)
{
    static const struct {
        const char *cmd;
        const char *doc;
    } cases[] = {
        {"agents",
         "{\"agents\": [{\"id\": \"abc\", \"host\": \"h\", \"labels\": {\"a\": \"b\"},"
         " \"last_seen\": 1763715000000, \"stats\": {\"outbox_bytes\": 5000,"
         " \"outbox_oldest_age_ms\": 3000, \"records_dropped\": 1}}, {\"host\": \"g\"}]}"},
        {"metrics", "{\"metrics\": [{\"name\": \"up\", \"series\": 1}]}"},
        {"series", "{\"series\": [{\"name\": \"up\", \"labels\": {\"b\": \"1\", \"a\": \"2\"}},"
                   " {\"name\": \"up\", \"labels\": {\"c\": \"3\"}}]}"},
        {"query", "{\"series\": [{\"labels\": {\"a\": \"b\"}, \"points\": [[1763715000000, 1],"
                  " [1763715060000, 2]]}]}"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool done = false;

        for (long n = 0; n < 200 && !done; n++) {
            struct xl_err err = {0};
            struct xl_cli_ctx c;
            struct capture out;
            json_t *root = json_loads(cases[i].doc, 0, NULL);
            xl_rc rc;

            assert_non_null(root);
            ctx_init(&c, &out);
            xl_alloc_fail_after(n);
            rc = xl_cli_cmd_find(cases[i].cmd)->render(&c, root, &err);
            xl_alloc_fail_after(-1);
            if (rc == XL_OK)
                done = true;
            else
                assert_int_equal(rc, XL_ENOMEM);
            json_decref(root);
            cap_close(&out);
            cap_free(&out);
        }
        assert_true(done);
    }
}

/* ---- the whole client against a one-shot HTTP server ---- */

struct fake {
    int fd;
    int port;
    const char *response;
    char request[4096];
    pthread_t thread;
};

/* Accept one connection, keep the request head, send the canned response. */
static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    size_t n = 0;
    int c = accept(f->fd, NULL, NULL);

    if (c < 0)
        return NULL;
    while (n + 1 < sizeof(f->request)) {
        ssize_t k = read(c, f->request + n, sizeof(f->request) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        f->request[n] = '\0';
        if (strstr(f->request, "\r\n\r\n"))
            break;
    }
    if (write(c, f->response, strlen(f->response)) < 0)
        perror("write");
    close(c);
    return NULL;
}

/* Listen on a random loopback port; serve one response in a thread. */
static void fake_start(struct fake *f, const char *response)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    memset(f->request, 0, sizeof(f->request));
    f->response = response;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->fd, 1), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &len), 0);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->fd);
}

/* Run the client with the arguments after argv[0]; returns the exit code
 * and the captured stdout and stderr. */
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

#define HTTP_OK(body)                                                                              \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" body

static void test_main_ok(void **state)
{
    struct capture out, err;
    struct fake f;
    char server[64];

    fake_start(&f, HTTP_OK("{\"metrics\":[{\"name\":\"up\",\"series\":2}]}"));
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
    assert_int_equal(run(&out, &err,
                         (char *[]){"metrics", "--server", server, "--match", "role=web app",
                                    "--token", "s3cret", NULL}),
                     0);
    fake_stop(&f);
    assert_string_equal(out.data, "NAME  SERIES\nup         2\n");
    assert_string_equal(err.data, "");
    assert_non_null(strstr(f.request, "GET /api/v1/metrics?match=role%3Dweb%20app HTTP/1.1\r\n"));
    assert_non_null(strstr(f.request, "\r\nAuthorization: Bearer s3cret\r\n"));
    cap_free(&out);
    cap_free(&err);

    fake_start(&f, HTTP_OK("{\"agents\":[],\"n\":1.10}"));
    snprintf(server, sizeof(server), "127.0.0.1:%d/", f.port);
    assert_int_equal(run(&out, &err, (char *[]){"--json", "--server", server, "agents", NULL}), 0);
    fake_stop(&f);
    assert_string_equal(out.data, "{\n  \"agents\": [],\n  \"n\": 1.10\n}\n");
    assert_null(strstr(f.request, "Authorization"));
    cap_free(&out);
    cap_free(&err);
}

static void test_main_errors(void **state)
{
    static const struct {
        const char *response;
        int code;
        const char *msg;
    } cases[] = {
        {"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n"
         "{\"error\":\"unauthorized\",\"detail\":\"missing token\"}",
         2, "xluo: the server rejected the token (set --token or XLUO_TOKEN)\n"},
        {"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
         "{\"error\":\"bad parameter\",\"detail\":\"match: expected label=value\"}",
         1, "xluo: bad parameter: match: expected label=value (HTTP 400)\n"},
        {"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\noops", 1,
         "xluo: the server answered HTTP 500: oops\n"},
        {HTTP_OK("{\"agents\": [{]}"), 1, "xluo: the server sent malformed JSON: "},
        {HTTP_OK("{\"agents\": 3}"), 1,
         "xluo: unexpected answer from the server: no \"agents\" array\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct capture out, err;
        struct fake f;
        char server[64];

        fake_start(&f, cases[i].response);
        snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
        assert_int_equal(run(&out, &err, (char *[]){"agents", "--server", server, NULL}),
                         cases[i].code);
        fake_stop(&f);
        if (strncmp(err.data, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: stderr '%s', want '%s'", i, err.data, cases[i].msg);
        assert_string_equal(out.data, "");
        cap_free(&out);
        cap_free(&err);
    }
}

static void test_main_unreachable(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    struct capture out, err;
    char server[64], want[200];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was free a moment ago: nothing listens there */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    setenv("XLUO_SERVER", server, 1);
    assert_int_equal(run(&out, &err, (char *[]){"agents", NULL}), 2);
    unsetenv("XLUO_SERVER");
    snprintf(want, sizeof(want),
             "xluo: cannot reach the server at %s: Connection refused "
             "(set --server or XLUO_SERVER)\n",
             server);
    assert_string_equal(err.data, want);
    cap_free(&out);
    cap_free(&err);
}

static void test_main_usage(void **state)
{
    struct capture out, err;

    assert_int_equal(run(&out, &err, (char *[]){"--version", NULL}), 0);
    assert_string_equal(out.data, "xluo 0.1.0\n");
    cap_free(&out);
    cap_free(&err);

    assert_int_equal(run(&out, &err, (char *[]){"query", "x", "--since", "soon", NULL}), 64);
    assert_string_equal(out.data, "");
    assert_non_null(strstr(err.data, "xluo: --since: invalid duration 'soon'"));
    assert_non_null(strstr(err.data, "usage: xluo query NAME"));
    cap_free(&out);
    cap_free(&err);

    assert_int_equal(run(&out, &err, (char *[]){NULL}), 64);
    assert_non_null(strstr(err.data, "xluo: no command given"));
    cap_free(&out);
    cap_free(&err);

    /* help: global, per command, and through `help` */
    assert_int_equal(run(&out, &err, (char *[]){"--help", NULL}), 0);
    for (const struct xl_cli_cmd *c = xl_cli_cmds(); c->name; c++)
        assert_non_null(strstr(out.data, c->summary));
    cap_free(&out);
    cap_free(&err);
    assert_int_equal(run(&out, &err, (char *[]){"query", "-h", NULL}), 0);
    assert_non_null(strstr(out.data, "usage: xluo query NAME"));
    assert_non_null(strstr(out.data, "--agg A"));
    assert_non_null(strstr(out.data, "at most about 120"));
    cap_free(&out);
    cap_free(&err);
    assert_int_equal(run(&out, &err, (char *[]){"help", "series", NULL}), 0);
    assert_non_null(strstr(out.data, "usage: xluo series"));
    cap_free(&out);
    cap_free(&err);
    assert_int_equal(run(&out, &err, (char *[]){"help", "nope", NULL}), 64);
    cap_free(&out);
    cap_free(&err);

    /* no line of any help ends in a space */
    assert_int_equal(run(&out, &err, (char *[]){"query", "--help", NULL}), 0);
    assert_null(strstr(out.data, " \n"));
    cap_free(&out);
    cap_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_global_anywhere),
        cmocka_unit_test(test_args_defaults_env),
        cmocka_unit_test(test_args_help_version),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_args_oom),
        cmocka_unit_test(test_table_align),
        cmocka_unit_test(test_table_edges),
        cmocka_unit_test(test_fmt_ago),
        cmocka_unit_test(test_fmt_value),
        cmocka_unit_test(test_fmt_bytes_and_duration),
        cmocka_unit_test(test_fmt_time),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_default_step),
        cmocka_unit_test(test_json_pretty),
        cmocka_unit_test(test_url_escape),
        cmocka_unit_test(test_url_commands),
        cmocka_unit_test(test_url_empty_range),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_render_agents),
        cmocka_unit_test(test_render_metrics),
        cmocka_unit_test(test_render_series),
        cmocka_unit_test(test_render_query),
        cmocka_unit_test(test_render_oom),
        cmocka_unit_test(test_main_ok),
        cmocka_unit_test(test_main_errors),
        cmocka_unit_test(test_main_unreachable),
        cmocka_unit_test(test_main_usage),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
