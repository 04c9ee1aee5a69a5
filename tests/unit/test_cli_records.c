/* Unit tests of `xluo checks` and `xluo events`: options, URLs, the tables
 * on canned answers, the streamed events of -f, and the helpers they
 * brought (clipping a cell, fields as key=value). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "cli/sse.h"

#include "cli_test_util.h"

/* Build cmd's URL from the arguments (NULL-terminated); returns it or,
 * when building fails, "ERR: message". Free it. */
static char *url_of(xl_rc (*fn)(const struct xl_cli_ctx *, struct xl_buf *, struct xl_err *), ...)
{
    char *argv[32] = {"xluo"}, *s, *res;
    struct xl_cli_ctx c = {.now_ms = NOW};
    struct xl_err err = {0};
    struct xl_buf url;
    int argc = 1;
    va_list ap;

    va_start(ap, fn);
    while ((s = va_arg(ap, char *)) && argc < 31)
        argv[argc++] = s;
    va_end(ap);
    xl_cli_args_init(&c.args);
    if (xl_cli_args_parse(&c.args, argc, argv, &err) != XL_OK)
        fail_msg("parse: %s", err.msg);
    xl_buf_init(&url, 1 << 16);
    if (fn(&c, &url, &err) == XL_OK) {
        res = strdup(url.data);
    } else if ((res = malloc(sizeof(err.msg) + 8))) {
        snprintf(res, sizeof(err.msg) + 8, "ERR: %s", err.msg);
    }
    xl_buf_cleanup(&url);
    xl_cli_args_cleanup(&c.args);
    return res;
}

static void expect_url(char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fail_msg("got \"%s\", want \"%s\"", got, want);
    free(got);
}

static void test_urls(void **state)
{
    expect_url(url_of(xl_cli_checks_url, "checks", NULL, NULL),
               "http://127.0.0.1:21002/api/v1/checks");
    expect_url(url_of(xl_cli_checks_url, "checks", "--host", "web1", "--state", "critical",
                      "--name", "disk root", NULL),
               "http://127.0.0.1:21002/api/v1/checks?host=web1&name=disk%20root&state=critical");
    expect_url(url_of(xl_cli_checks_url, "checks", "history", "--name", "disk", "--since", "1h",
                      "--limit", "5", NULL),
               "http://127.0.0.1:21002/api/v1/checks/history?name=disk&since=1h&limit=5");
    expect_url(url_of(xl_cli_checks_url, "checks", "histroy", NULL),
               "ERR: unknown view 'histroy' of checks (history is the one)");
    expect_url(url_of(xl_cli_checks_url, "checks", "--since", "1h", NULL),
               "ERR: --since applies to 'checks history'");
    expect_url(url_of(xl_cli_checks_url, "checks", "history", "--state", "ok", NULL),
               "ERR: --state applies to the current states, not to 'checks history'");
    expect_url(url_of(xl_cli_events_url, "events", "--type", "demo", "--host", "h", "--where",
                      "n>3", "--where", "k=a b", "--since", "2h", "--limit", "10", NULL),
               "http://127.0.0.1:21002/api/v1/events?type=demo&host=h&where=n%3E3"
               "&where=k%3Da%20b&since=2h&limit=10");
    expect_url(
        url_of(xl_cli_events_url, "events", "--from", "2025-11-21 08:00", "--to", "5m", NULL),
        "http://127.0.0.1:21002/api/v1/events?since=1763712000000&until=5m");
    expect_url(url_of(xl_cli_events_stream_url, "events", "-f", "--host", "h", NULL),
               "http://127.0.0.1:21002/api/v1/stream?type=event&host=h");
    expect_url(
        url_of(xl_cli_events_stream_url, "events", "-f", "--type", "demo", "--where", "n!=1", NULL),
        "http://127.0.0.1:21002/api/v1/stream?type=demo&where=n%21%3D1");
}

static void test_options(void **state)
{
    struct xl_cli_args a;
    struct xl_err err;

    assert_int_equal(parse(&a, &err, "checks", "--state", "bad", NULL), XL_EINVAL);
    assert_string_equal(err.msg, "--state: unknown state 'bad' (ok, warning, critical or unknown)");
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "checks", "--state", "WARNING", NULL), XL_OK);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "events", "--limit", "0", NULL), XL_EINVAL);
    assert_string_equal(err.msg, "--limit: expected a number from 1 to 10000, got '0'");
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "events", "--limit", "10001", NULL), XL_EINVAL);
    xl_cli_args_cleanup(&a);
    assert_int_equal(parse(&a, &err, "checks", "history", "extra", NULL), XL_EINVAL);
    assert_string_equal(err.msg, "unexpected argument 'extra'");
    xl_cli_args_cleanup(&a);
}

/* Render doc with cmd's renderer (the positional argument name); returns
 * the output (free it). */
static char *render(const char *cmd, const char *name, const char *doc, xl_rc want,
                    struct xl_err *e)
{
    struct capture out, err;
    struct xl_cli_ctx c;
    json_error_t jerr;
    json_t *root = json_loads(doc, 0, &jerr);

    if (!root)
        fail_msg("bad test JSON: %s", jerr.text);
    ctx_capture(&c, &out, &err);
    c.args.name = name;
    assert_int_equal(xl_cli_cmd_find(cmd)->render(&c, root, e), want);
    json_decref(root);
    cap_close(&out);
    cap_close(&err);
    cap_free(&err);
    return out.data;
}

static void test_render_checks(void **state)
{
    const char *doc =
        "{\"checks\": ["
        "{\"host\":\"db1\",\"agent_id\":\"a\",\"name\":\"pg\",\"state\":\"critical\","
        "\"output\":\"PG CRITICAL - refused\\nsecond line\",\"long_output\":null,"
        "\"exit_code\":2,\"duration_ms\":3,\"source\":null,\"ts\":1763715000000,"
        "\"since\":1763714890000},"
        "{\"host\":\"web1\",\"agent_id\":\"b\",\"name\":\"disk_root\",\"state\":\"ok\","
        "\"output\":\"DISK OK - free space: / 9000 MB (90%) on a very long line that goes on "
        "and on\",\"ts\":1763715000000,\"since\":1763700000000}"
        "]}";
    struct xl_err err;
    char *s;

    s = render("checks", NULL, doc, XL_OK, &err);
    assert_string_equal(
        s, "HOST  NAME       STATE     SINCE   OUTPUT\n"
           "db1   pg         critical  2m ago  PG CRITICAL - refused\n"
           "web1  disk_root  ok        4h ago  DISK OK - free space: / 9000 MB (90%) on a very "
           "long line...\n");
    free(s);
    s = render("checks", NULL, "{\"checks\": []}", XL_OK, &err);
    assert_string_equal(s, "no checks\n");
    free(s);
    s = render("checks", NULL, "{\"changes\": []}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "no \"checks\" array");
    free(s);
    s = render("checks", NULL, "{\"checks\": [3]}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "checks[0] is not an object");
    free(s);
}

static void test_render_history(void **state)
{
    const char *doc =
        "{\"changes\": ["
        "{\"host\":\"web1\",\"agent_id\":\"b\",\"name\":\"disk\",\"ts\":1763715000000,"
        "\"from\":\"ok\",\"to\":\"warning\",\"output\":\"DISK WARNING\"},"
        "{\"host\":\"web1\",\"agent_id\":\"b\",\"name\":\"disk\",\"ts\":1763714000000,"
        "\"from\":null,\"to\":\"ok\",\"output\":\"\"}"
        "]}";
    struct xl_err err;
    char *s;

    s = render("checks", "history", doc, XL_OK, &err);
    assert_string_equal(s, "TIME                 HOST  NAME  FROM  TO       OUTPUT\n"
                           "2025-11-21 08:33:20  web1  disk  -     ok\n"
                           "2025-11-21 08:50:00  web1  disk  ok    warning  DISK WARNING\n");
    free(s);
    s = render("checks", "history", "{\"changes\": []}", XL_OK, &err);
    assert_string_equal(s, "no state changes\n");
    free(s);
    s = render("checks", "history", "{\"changes\": [{\"ts\":\"x\"}]}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "changes[0] is not a state change");
    free(s);
}

static void test_render_events(void **state)
{
    const char *doc =
        "{\"events\": ["
        "{\"id\":2,\"ts\":1763715001000,\"host\":\"web1\",\"agent_id\":\"a\",\"type\":\"demo\","
        "\"fields\":{\"key1\":\"value1\",\"n\":3,\"deep\":{\"x\":[1,2]},\"ok\":true,\"z\":null},"
        "\"source\":null},"
        "{\"id\":1,\"ts\":1763715000000,\"host\":\"db1\",\"agent_id\":\"b\",\"type\":\"deploy\","
        "\"fields\":{},\"source\":\"s\"}"
        "], \"next_before\": null}";
    struct xl_err err;
    char *s;

    s = render("events", NULL, doc, XL_OK, &err);
    assert_string_equal(s, "TIME                     HOST  TYPE    FIELDS\n"
                           "2025-11-21 08:50:00.000  db1   deploy  -\n"
                           "2025-11-21 08:50:01.000  web1  demo    key1=value1 n=3 "
                           "deep={\"x\":[1,2]} ok=true z=null\n");
    free(s);
    s = render("events", NULL, "{\"events\": [], \"next_before\": null}", XL_OK, &err);
    assert_string_equal(s, "no events\n");
    free(s);
    s = render("events", NULL, "{\"events\": [{}]}", XL_EPROTO, &err);
    assert_string_equal(err.msg, "events[0] is not an event");
    free(s);
}

static void test_events_on_event(void **state)
{
    const char *rec = "{\"type\":\"event\",\"id\":5,\"host\":\"web1\",\"agent_id\":\"a\","
                      "\"ts\":1763715010123,\"name\":\"demo\",\"fields\":{\"k\":\"v\\u001b\"}}";
    struct xl_sse_event record = {"record", rec, strlen(rec), ""};
    struct xl_sse_event dropped = {"dropped", "{\"count\":7}", 11, ""};
    struct xl_sse_event other = {"log", "{}", 2, ""};
    struct xl_sse_event bad = {"record", "{", 1, ""};

    check_on_event(xl_cli_events_on_event, &record, &dropped, &other, &bad,
                   "2025-11-21 08:50:10.123 web1 demo k=v?\n"
                   "{\"type\":\"event\",\"id\":5,"
                   "\"host\":\"web1\",\"agent_id\":\"a\",\"ts\":1763715010123,\"name\":"
                   "\"demo\",\"fields\":{\"k\":\"v\\u001b\"}}\n",
                   "xluo: the server dropped 7 events here: this client did not keep up\n");
}

/* -f with options that only make sense for a listing is a usage error. */
static void test_follow_usage(void **state)
{
    char *argv[] = {"xluo", "events", "-f", "--since", "1h", NULL};
    struct capture out, err;
    int code;

    cap_open(&out);
    cap_open(&err);
    code = xl_cli_main(5, argv, out.f, err.f);
    cap_close(&out);
    cap_close(&err);
    assert_int_equal(code, XL_CLI_EXIT_USAGE);
    assert_non_null(strstr(err.data, "--since, --from, --to and --limit do not apply"));
    cap_free(&out);
    cap_free(&err);
}

static void test_clip(void **state)
{
    static const struct {
        const char *in;
        size_t cols, outlen;
        const char *want;
    } cases[] = {
        {"short", 10, 64, "short"},
        {"exactly10!", 10, 64, "exactly10!"},
        {"eleven char", 10, 64, "eleven ..."},
        {"first line\nsecond", 40, 64, "first line"},
        {"crlf\r\nx", 40, 64, "crlf"},
        {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, 64, "\xc3\xa9\xc3\xa9..."},
        {"abcdefghij", 40, 8, "abcd..."},                   /* the buffer is the limit */
        {"\xc3\xa9\xc3\xa9\xc3\xa9", 40, 6, "\xc3\xa9..."}, /* never half a character */
        {"", 10, 64, ""},
        {"abc", 10, 2, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];

        xl_cli_fmt_clip(cases[i].in, cases[i].cols, out, cases[i].outlen);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),          cmocka_unit_test(test_options),
        cmocka_unit_test(test_render_checks), cmocka_unit_test(test_render_history),
        cmocka_unit_test(test_render_events), cmocka_unit_test(test_events_on_event),
        cmocka_unit_test(test_follow_usage),  cmocka_unit_test(test_clip),
    };
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
