/* Unit tests: the exec input's parsers (src/agent/inputs/exec/parse.h).
 *
 * Table-driven: each case is an input, the parser (format) to run it
 * through, and either the exact records the sink receives, written out
 * one per line, or the error code and exact message (and then the sink
 * must have received nothing). Then format detection, allocation
 * failures and the record limits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/inputs/exec/parse.h"
#include "common/alloc.h"
#include "common/buf.h"

#define TS 1700000000000LL

/* ------------------------------------------------------------ the sink */

/* Every record as one line:
 *   M name{l="v",...} value @ts
 *   C name state "output" "long_output" @ts      (newlines as \n)
 *   E type {compact fields, in their order} @ts */
struct rec_log {
    struct xl_buf b;
    size_t n;
};

static void put_text(struct xl_buf *b, const char *s)
{
    xl_buf_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '\n')
            xl_buf_adds(b, "\\n");
        else
            xl_buf_add(b, s, 1);
    }
    xl_buf_add(b, "\"", 1);
}

static void on_metric(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                      double value, int64_t ts_ms)
{
    struct rec_log *l = ctx;

    xl_buf_printf(&l->b, "M %s{", name);
    for (size_t i = 0; i < nlabels; i++) {
        xl_buf_printf(&l->b, "%s%s=", i ? "," : "", labels[i].name);
        put_text(&l->b, labels[i].value);
    }
    xl_buf_printf(&l->b, "} %.15g @%lld\n", value, (long long)ts_ms);
    l->n++;
}

static void on_check(void *ctx, const struct xl_check_result *c)
{
    struct rec_log *l = ctx;

    xl_buf_printf(&l->b, "C %s %s ", c->name, xl_check_state_str(c->state));
    put_text(&l->b, c->output);
    xl_buf_adds(&l->b, " ");
    put_text(&l->b, c->long_output);
    xl_buf_printf(&l->b, " @%lld\n", (long long)c->ts_ms);
    l->n++;
}

static void on_event(void *ctx, const char *type, const json_t *fields, int64_t ts_ms)
{
    struct rec_log *l = ctx;
    char *js = json_dumps(fields, JSON_COMPACT); /* in the input's order */

    assert_true(json_is_object(fields));
    xl_buf_printf(&l->b, "E %s %s @%lld\n", type, js, (long long)ts_ms);
    free(js);
    l->n++;
}

enum fmt { JSON, NAGIOS, PROM };

static const struct xl_label extra1[] = {{"env", "prod"}};
static const struct xl_label extra_clash[] = {{"perf", "x"}, {"job", "node"}, {"env", "prod"}};

/* One parser run. For Nagios: exit status 0 and check name "chk" unless
 * the case says otherwise. */
struct pcase {
    const char *what;
    enum fmt fmt;
    const char *in;
    xl_rc rc;
    const char *want; /* the records, or the error message */
    int exit_status;
    const struct xl_label *extra;
    size_t nextra;
    struct xl_parse_limits lim;
};

static const struct xl_parse_limits deflim = {.max_records = 1000, .max_event_bytes = 65536};

static xl_rc run(enum fmt fmt, const char *in, size_t len, int exit_status,
                 const struct xl_label *extra, size_t nextra, const struct xl_parse_limits *lim,
                 struct rec_log *log, struct xl_err *err)
{
    struct xl_rec_sink sink = {on_metric, on_check, on_event, log};

    switch (fmt) {
    case JSON: return xl_parse_json_records(in, len, TS, lim, &sink, err);
    case NAGIOS:
        return xl_parse_nagios(in, len, exit_status, "chk", extra, nextra, TS, lim, &sink, err);
    case PROM: return xl_parse_prometheus(in, len, extra, nextra, TS, lim, &sink, err);
    }
    return XL_EINVAL;
}

static void run_cases(const struct pcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct pcase *c = &cases[i];
        const struct xl_parse_limits *lim = c->lim.max_records ? &c->lim : &deflim;
        struct rec_log log = {.n = 0};
        struct xl_err err = {0};
        xl_rc rc;

        xl_buf_init(&log.b, 1 << 20);
        rc =
            run(c->fmt, c->in, strlen(c->in), c->exit_status, c->extra, c->nextra, lim, &log, &err);
        /* Long dumps go to stderr: cmocka cuts its messages short. */
        if (rc != c->rc) {
            fprintf(stderr, "%s: rc %s (%s), want %s\nrecords:\n%s", c->what, xl_rc_str(rc),
                    err.msg, xl_rc_str(c->rc), log.b.data ? log.b.data : "");
            fail_msg("%s: wrong rc", c->what);
        }
        if (rc == XL_OK && strcmp(log.b.data ? log.b.data : "", c->want) != 0) {
            fprintf(stderr, "%s: records\n%s\nwant\n%s", c->what, log.b.data ? log.b.data : "",
                    c->want);
            fail_msg("%s: wrong records", c->what);
        }
        if (rc != XL_OK && (log.n != 0 || strcmp(err.msg, c->want) != 0))
            fail_msg("%s: error \"%s\" (%zu records), want \"%s\" and none", c->what, err.msg,
                     log.n, c->want);
        xl_buf_cleanup(&log.b);
    }
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------ JSON */

/* Seed 003's demo_cron.py: json.dumps(..., indent=4) of a dict. */
static const char seed003[] = "{\n"
                              "    \"key3\": \"value3\",\n"
                              "    \"key2\": \"value2\",\n"
                              "    \"key1\": \"value1\",\n"
                              "    \"type\": \"demo\"\n"
                              "}\n";

static void test_json_good(void **state)
{
    static const struct pcase cases[] = {
        {.what = "seed 003 demo, pretty-printed",
         .fmt = JSON,
         .in = seed003,
         .rc = XL_OK,
         .want = "E demo {\"key3\":\"value3\",\"key2\":\"value2\",\"key1\":\"value1\"} "
                 "@1700000000000\n"},
        {.what = "seed 003 demo, one line",
         .fmt = JSON,
         .in = "{\"key3\": \"value3\", \"key2\": \"value2\", \"key1\": \"value1\", \"type\": "
               "\"demo\"}",
         .rc = XL_OK,
         .want = "E demo {\"key3\":\"value3\",\"key2\":\"value2\",\"key1\":\"value1\"} "
                 "@1700000000000\n"},
        {.what = "array of every kind",
         .fmt = JSON,
         .in =
             "[{\"type\":\"metric\",\"name\":\"app_queue_depth\",\"value\":17,"
             "\"labels\":{\"queue\":\"mail\",\"prio\":\"hi\"}},\n"
             " {\"type\":\"check\",\"name\":\"db\",\"state\":\"CRITICAL\",\"output\":\"db down\","
             "\"long_output\":\"a\\nb\",\"ts\":1700000000500},\n"
             " {\"type\":\"deploy\",\"app\":\"shop\",\"version\":\"1.4.2\",\"ts\":1700000000123}]",
         .rc = XL_OK,
         .want = "M app_queue_depth{queue=\"mail\",prio=\"hi\"} 17 @1700000000000\n"
                 "C db critical \"db down\" \"a\\nb\" @1700000000500\n"
                 "E deploy {\"app\":\"shop\",\"version\":\"1.4.2\"} @1700000000123\n"},
        {.what = "JSON lines, blank lines, CRLF",
         .fmt = JSON,
         .in = "{\"type\":\"a\",\"n\":1}\r\n\r\n{\"type\":\"b\",\"n\":2}\n  \n{\"type\":\"c\"}",
         .rc = XL_OK,
         .want = "E a {\"n\":1} @1700000000000\n"
                 "E b {\"n\":2} @1700000000000\n"
                 "E c {} @1700000000000\n"},
        {.what = "pretty objects one after another",
         .fmt = JSON,
         .in = "{\n  \"type\": \"a\"\n}\n{\n  \"type\": \"b\",\n  \"x\": [1, {\"y\": null}]\n}\n",
         .rc = XL_OK,
         .want = "E a {} @1700000000000\n"
                 "E b {\"x\":[1,{\"y\":null}]} @1700000000000\n"},
        {.what = "metric values",
         .fmt = JSON,
         .in =
             "{\"type\":\"metric\",\"name\":\"a:b\",\"value\":\"NaN\"}\n"
             "{\"type\":\"metric\",\"name\":\"c\",\"value\":\"+Inf\",\"labels\":null,\"ts\":null}\n"
             "{\"type\":\"metric\",\"name\":\"d\",\"value\":\"-Inf\",\"labels\":{}}\n"
             "{\"type\":\"metric\",\"name\":\"e\",\"value\":-1.5e-3,\"labels\":{\"x\":\"\"}}\n",
         .rc = XL_OK,
         .want = "M a:b{} nan @1700000000000\n"
                 "M c{} inf @1700000000000\n"
                 "M d{} -inf @1700000000000\n"
                 "M e{x=\"\"} -0.0015 @1700000000000\n"},
        {.what = "check: output optional, state any case",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"backup\",\"state\":\"Ok\"}",
         .rc = XL_OK,
         .want = "C backup ok \"\" \"\" @1700000000000\n"},
        {.what = "event type characters",
         .fmt = JSON,
         .in = "[{\"type\":\"app.deploy:v2-x_y\",\"metric\":1}]",
         .rc = XL_OK,
         .want = "E app.deploy:v2-x_y {\"metric\":1} @1700000000000\n"},
        {.what = "empty input", .fmt = JSON, .in = "", .rc = XL_OK, .want = ""},
        {.what = "whitespace only", .fmt = JSON, .in = " \n\t\r\n", .rc = XL_OK, .want = ""},
        {.what = "empty array", .fmt = JSON, .in = "[]", .rc = XL_OK, .want = ""},
    };

    RUN(cases);
}

static void test_json_bad(void **state)
{
    static const struct pcase cases[] = {
        {.what = "missing type",
         .fmt = JSON,
         .in = "{\"key1\":\"value1\"}",
         .rc = XL_EPARSE,
         .want = "line 1: type: required (a string)"},
        {.what = "missing type, line 2",
         .fmt = JSON,
         .in = "{\"type\":\"a\"}\n{\"key1\":\"value1\"}\n",
         .rc = XL_EPARSE,
         .want = "line 2: type: required (a string)"},
        {.what = "type not a string",
         .fmt = JSON,
         .in = "{\"type\":3}",
         .rc = XL_EPARSE,
         .want = "line 1: type: expected a string"},
        {.what = "reserved type in an array",
         .fmt = JSON,
         .in = "[{\"type\":\"demo\"},\n{\"type\":\"log\",\"x\":1}]",
         .rc = XL_EPARSE,
         .want = "line 1: records[1].type: \"log\" is reserved"},
        {.what = "reserved type, any case",
         .fmt = JSON,
         .in = "{\"type\":\"Heartbeat\"}",
         .rc = XL_EPARSE,
         .want = "line 1: type: \"Heartbeat\" is reserved"},
        {.what = "reserved: event",
         .fmt = JSON,
         .in = "{\"type\":\"event\"}",
         .rc = XL_EPARSE,
         .want = "line 1: type: \"event\" is reserved"},
        {.what = "bad type characters",
         .fmt = JSON,
         .in = "{\"type\":\"my type\"}",
         .rc = XL_EPARSE,
         .want = "line 1: type: \"my type\" is not an event type (1 to 128 of A-Za-z0-9_.:-)"},
        {.what = "empty type",
         .fmt = JSON,
         .in = "{\"type\":\"\"}",
         .rc = XL_EPARSE,
         .want = "line 1: type: \"\" is not an event type (1 to 128 of A-Za-z0-9_.:-)"},
        {.what = "ts a string",
         .fmt = JSON,
         .in = "{\"type\":\"a\",\"ts\":\"now\"}",
         .rc = XL_EPARSE,
         .want = "line 1: ts: expected an integer (milliseconds since 1970)"},
        {.what = "ts a real",
         .fmt = JSON,
         .in = "{\"type\":\"a\",\"ts\":1700000000000.5}",
         .rc = XL_EPARSE,
         .want = "line 1: ts: expected an integer (milliseconds since 1970)"},
        {.what = "ts in seconds",
         .fmt = JSON,
         .in = "\n\n{\"type\":\"a\",\"ts\":1700000000}",
         .rc = XL_EPARSE,
         .want = "line 3: ts: 1700000000 is not milliseconds since 1970 (seconds?)"},
        {.what = "syntax: trailing comma",
         .fmt = JSON,
         .in = "{\"type\":\"demo\",}",
         .rc = XL_EPARSE,
         .want = "line 1, byte 16: string or '}' expected near '}'"},
        {.what = "syntax: JSON lines, line 3",
         .fmt = JSON,
         .in = "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\" \"c\"}\n",
         .rc = XL_EPARSE,
         .want = "line 3, byte 11: ':' expected near '\"c\"'"},
        {.what = "syntax: unclosed pretty object",
         .fmt = JSON,
         .in = "{\n  \"type\": \"a\",\n  \"b\": 1\n",
         .rc = XL_EPARSE,
         .want = "line 3, byte 9: '}' expected near end of file"},
        {.what = "syntax: garbage after an object",
         .fmt = JSON,
         .in = "{\"type\":\"a\"} x",
         .rc = XL_EPARSE,
         .want = "line 1, byte 14: '[' or '{' expected near 'x'"},
        {.what = "syntax: duplicate key",
         .fmt = JSON,
         .in = "{\"type\":\"a\",\"type\":\"b\"}",
         .rc = XL_EPARSE,
         .want = "line 1, byte 18: duplicate object key near '\"type\"'"},
        {.what = "not an object in an array",
         .fmt = JSON,
         .in = "[{\"type\":\"a\"}, 1]",
         .rc = XL_EPARSE,
         .want = "line 1: records[1]: expected an object"},
        {.what = "metric: bad name",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"1x\",\"value\":1}",
         .rc = XL_EPARSE,
         .want = "line 1: name: \"1x\" is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"},
        {.what = "metric: no name",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"value\":1}",
         .rc = XL_EPARSE,
         .want = "line 1: name: required (a string)"},
        {.what = "metric: no value",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"x\"}",
         .rc = XL_EPARSE,
         .want = "line 1: value: required (a number)"},
        {.what = "metric: bad value",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"x\",\"value\":\"12\"}",
         .rc = XL_EPARSE,
         .want = "line 1: value: expected a number (or \"NaN\", \"+Inf\", \"-Inf\")"},
        {.what = "metric: reserved label",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"x\",\"value\":1,\"labels\":{\"__a\":\"b\"}}",
         .rc = XL_EPARSE,
         .want =
             "line 1: labels.__a: not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"},
        {.what = "metric: label not a string",
         .fmt = JSON,
         .in = "[{\"type\":\"metric\",\"name\":\"x\",\"value\":1,\"labels\":{\"port\":80}}]",
         .rc = XL_EPARSE,
         .want = "line 1: records[0].labels.port: expected a string"},
        {.what = "metric: labels not an object",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"x\",\"value\":1,\"labels\":[\"a\"]}",
         .rc = XL_EPARSE,
         .want = "line 1: labels: expected an object of strings"},
        {.what = "metric: unknown key",
         .fmt = JSON,
         .in = "{\"type\":\"metric\",\"name\":\"x\",\"value\":1,\"lables\":{}}",
         .rc = XL_EPARSE,
         .want = "line 1: unknown key \"lables\" (a metric has name, value, labels, ts)"},
        {.what = "check: bad state",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"db\",\"state\":\"crit\"}",
         .rc = XL_EPARSE,
         .want = "line 1: state: \"crit\" is not \"ok\", \"warning\", \"critical\" or \"unknown\""},
        {.what = "check: no state",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"db\"}",
         .rc = XL_EPARSE,
         .want = "line 1: state: required (\"ok\", \"warning\", \"critical\" or \"unknown\")"},
        {.what = "check: no name",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"state\":\"ok\"}",
         .rc = XL_EPARSE,
         .want = "line 1: name: required (a string)"},
        {.what = "check: control characters in the name",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"a\\tb\",\"state\":\"ok\"}",
         .rc = XL_EPARSE,
         .want = "line 1: name: expected 1 to 200 bytes without control characters"},
        {.what = "check: output not a string",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"db\",\"state\":\"ok\",\"output\":1}",
         .rc = XL_EPARSE,
         .want = "line 1: output: expected a string"},
        {.what = "check: unknown key",
         .fmt = JSON,
         .in = "{\"type\":\"check\",\"name\":\"db\",\"state\":\"ok\",\"exit\":1}",
         .rc = XL_EPARSE,
         .want = "line 1: unknown key \"exit\" (a check has name, state, output, long_output, ts)"},
        {.what = "a good record then a bad one: nothing kept",
         .fmt = JSON,
         .in = "{\"type\":\"a\"}\n{\"type\":\"metric\",\"name\":\"x\",\"value\":true}\n",
         .rc = XL_EPARSE,
         .want = "line 2: value: expected a number (or \"NaN\", \"+Inf\", \"-Inf\")"},
        {.what = "too many records",
         .fmt = JSON,
         .in = "{\"type\":\"a\"}\n{\"type\":\"b\"}\n[{\"type\":\"c\"}]",
         .rc = XL_ETOOBIG,
         .want = "line 3: records[0]: more than 2 records",
         .lim = {.max_records = 2, .max_event_bytes = 100}},
        {.what = "event too big",
         .fmt = JSON,
         .in = "{\"type\":\"a\",\"k\":\"0123456789\"}\n{\"type\":\"a\",\"k\":"
               "\"0123456789abcdef\"}",
         .rc = XL_ETOOBIG,
         .want = "line 2: event fields take more than 20 bytes as compact JSON",
         .lim = {.max_records = 10, .max_event_bytes = 20}},
    };

    RUN(cases);
}

/* Event fields are the object's own values (not copies), in its order. */
static void test_json_event_fields(void **state)
{
    struct rec_log log = {.n = 0};
    struct xl_err err = {0};
    const char *in =
        "{\"z\":1,\"type\":\"t\",\"a\":{\"b\":[true]},\"ts\":1700000000001,\"m\":\"x\"}";

    xl_buf_init(&log.b, 1 << 20);
    assert_int_equal(run(JSON, in, strlen(in), 0, NULL, 0, &deflim, &log, &err), XL_OK);
    assert_string_equal(log.b.data,
                        "E t {\"z\":1,\"a\":{\"b\":[true]},\"m\":\"x\"} @1700000000001\n");
    xl_buf_cleanup(&log.b);
}

/* ------------------------------------------------------------ Nagios */

#define LBL(perf) "check=\"chk\",perf=\"" perf "\""

static const char disk_multiline[] =
    "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
    "/ 15272 MB (77%);\n"
    "/boot 68 MB (69%);\n"
    "/home 69357 MB (27%);\n"
    "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
    "/home=69357MB;253404;253409;0;253414 \n"
    "/var/log=818MB;970;975;0;980\n";

static void test_nagios_good(void **state)
{
    static const struct pcase cases[] = {
        {.what = "check_load",
         .fmt = NAGIOS,
         .in = "OK - load average: 0.15, 0.10, 0.05|load1=0.150;15.000;30.000;0; "
               "load5=0.100;10.000;25.000;0; load15=0.050;5.000;20.000;0;\n",
         .rc = XL_OK,
         .want =
             "C chk ok \"OK - load average: 0.15, 0.10, 0.05\" \"\" @1700000000000\n"
             "M check_perf_value{" LBL(
                 "load1") "} 0.15 @1700000000000\n"
                          "M check_perf_warn{" LBL(
                              "load1") "} 15 @1700000000000\n"
                                       "M check_perf_crit{" LBL(
                                           "load1") "} 30 @1700000000000\n"
                                                    "M check_perf_min{" LBL(
                                                        "load1") "} 0 @1700000000000\n"
                                                                 "M check_perf_value{" LBL(
                                                                     "load5") "} 0.1 "
                                                                              "@1700000000000\n"
                                                                              "M "
                                                                              "check_perf_"
                                                                              "warn{" LBL(
                                                                                  "load5") "} 10 "
                                                                                           "@170000"
                                                                                           "0000000"
                                                                                           "\n"
                                                                                           "M "
                                                                                           "check_"
                                                                                           "perf_"
                                                                                           "crit"
                                                                                           "{" LBL(
                                                                                               "loa"
                                                                                               "d5") "} 25 @1700000000000\n"
                                                                                                     "M check_perf_min{" LBL(
                                                                                                         "load5") "} 0 @1700000000000\n"
                                                                                                                  "M check_perf_value{" LBL(
                                                                                                                      "load15") "} 0.05 @1700000000000\n"
                                                                                                                                "M check_perf_warn{" LBL(
                                                                                                                                    "load15") "} 5 @1700000000000\n"
                                                                                                                                              "M check_perf_crit{" LBL(
                                                                                                                                                  "load15") "} 20 @1700000000000\n"
                                                                                                                                                            "M check_perf_min{" LBL(
                                                                                                                                                                "load15") "} 0 @1700000000000\n"},
        {.what = "guidelines: long text, perfdata on later lines",
         .fmt = NAGIOS,
         .in = disk_multiline,
         .rc = XL_OK,
         .want = "C chk ok \"DISK OK - free space: / 3326 MB (56%);\" \"/ 15272 MB (77%);\\n"
                 "/boot 68 MB (69%);\\n/home 69357 MB (27%);\\n/var/log 819 MB (84%);\" "
                 "@1700000000000\n"
                 "M check_perf_value{" LBL("/") ",unit=\"bytes\"} 2771386368 @1700000000000\n"
                                                "M check_perf_warn{" LBL(
                                                    "/") ",unit=\"bytes\"} 6236930048 "
                                                         "@1700000000000\n"
                                                         "M check_perf_crit{" LBL(
                                                             "/") ",unit=\"bytes\"} 6247415808 "
                                                                  "@1700000000000\n"
                                                                  "M check_perf_min{" LBL(
                                                                      "/") ",unit=\"bytes\"} 0 "
                                                                           "@1700000000000\n"
                                                                           "M check_perf_max{" LBL("/") ",unit=\"bytes\"} "
                                                                                                        "6257901568 "
                                                                                                        "@1700000000000\n"
                                                                                                        "M "
                                                                                                        "check_perf_"
                                                                                                        "value{" LBL(
                                                                                                            "/boo"
                                                                                                            "t") ",unit=\"bytes\"} 71303168 @1700000000000\n"
                                                                                                                 "M check_perf_warn{" LBL("/boot") ",unit=\"bytes\"} 92274688 @1700000000000\n"
                                                                                                                                                   "M check_perf_crit{" LBL("/boot") ",unit=\"bytes\"} 97517568 @1700000000000\n"
                                                                                                                                                                                     "M check_perf_min{" LBL("/boot") ",unit=\"bytes\"} 0 @1700000000000\n"
                                                                                                                                                                                                                      "M check_perf_max{" LBL("/boot") ",unit=\"bytes\"} 102760448 @1700000000000\n"
                                                                                                                                                                                                                                                       "M check_perf_value{" LBL(
                                                                                                                                                                                                                                                           "/home") ",unit=\"bytes\"} 72726085632 @1700000000000\n"
                                                                                                                                                                                                                                                                    "M check_perf_warn{" LBL("/home") ",unit=\"bytes\"} 265713352704 @1700000000000\n"
                                                                                                                                                                                                                                                                                                      "M check_perf_crit{" LBL("/home") ",unit=\"bytes\"} 265718595584 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                        "M check_perf_min{" LBL(
                                                                                                                                                                                                                                                                                                                                            "/home") ",unit=\"bytes\"} 0 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                     "M check_perf_max{" LBL("/home") ",unit=\"bytes\"} 265723838464 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                      "M check_perf_value{" LBL("/var/log") ",unit=\"bytes\"} 857735168 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                                                            "M check_perf_warn{" LBL("/var/log") ",unit=\"bytes\"} 1017118720 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                 "M check_perf_crit{" LBL("/var/log") ",unit=\"bytes\"} 1022361600 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "M check_perf_min{" LBL(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "/var/log") ",unit=\"bytes\"} 0 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "M check_perf_max{" LBL(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "/var/log") ",unit=\"bytes\"} 1027604480 @1700000000000\n"},
        {.what = "quoted labels with spaces and quotes",
         .fmt = NAGIOS,
         .in = "OK | 'C:\\ used %'=45%;80;90;0;100 'it''s'=1 'a b'=2c ''''=3\n",
         .rc = XL_OK,
         .want =
             "C chk ok \"OK\" \"\" @1700000000000\n"
             "M check_perf_value{" LBL(
                 "C:\\ used %") ",unit=\"percent\"} 45 @1700000000000\n"
                                "M check_perf_warn{" LBL(
                                    "C:\\ used %") ",unit=\"percent\"} 80 @1700000000000\n"
                                                   "M check_perf_crit{" LBL(
                                                       "C:\\ used %") ",unit=\"percent\"} 90 "
                                                                      "@1700000000000\n"
                                                                      "M check_perf_min{" LBL(
                                                                          "C:\\ used %") ",unit="
                                                                                         "\"percent"
                                                                                         "\"} 0 "
                                                                                         "@17000000"
                                                                                         "00000\n"
                                                                                         "M "
                                                                                         "check_"
                                                                                         "perf_"
                                                                                         "max{" LBL(
                                                                                             "C:\\ "
                                                                                             "used "
                                                                                             "%") ",unit=\"percent\"} 100 @1700000000000\n"
                                                                                                  "M check_perf_value{" LBL(
                                                                                                      "it's") "} 1 @1700000000000\n"
                                                                                                              "M check_perf_value{" LBL(
                                                                                                                  "a b") ",unit=\"counter\"} 2 @1700000000000\n"
                                                                                                                         "M check_perf_value{" LBL(
                                                                                                                             "'") "} 3 @1700000000000\n"},
        {.what = "missing and empty fields",
         .fmt = NAGIOS,
         .in = "OK|a=1 b=2;; c=3;;;; d=4;5 e=5;;6 f=6;;;;7",
         .rc = XL_OK,
         .want =
             "C chk ok \"OK\" \"\" @1700000000000\n"
             "M check_perf_value{" LBL(
                 "a") "} 1 @1700000000000\n"
                      "M check_perf_value{" LBL(
                          "b") "} 2 @1700000000000\n"
                               "M check_perf_value{" LBL(
                                   "c") "} 3 @1700000000000\n"
                                        "M check_perf_value{" LBL(
                                            "d") "} 4 @1700000000000\n"
                                                 "M check_perf_warn{" LBL(
                                                     "d") "} 5 @1700000000000\n"
                                                          "M check_perf_value{" LBL(
                                                              "e") "} 5 @1700000000000\n"
                                                                   "M check_perf_crit{" LBL(
                                                                       "e") "} 6 @1700000000000\n"
                                                                            "M "
                                                                            "check_perf_value{" LBL(
                                                                                "f") "} 6 "
                                                                                     "@170000000000"
                                                                                     "0\n"
                                                                                     "M "
                                                                                     "check_perf_"
                                                                                     "max{" LBL(
                                                                                         "f") "} 7 "
                                                                                              "@170"
                                                                                              "0000"
                                                                                              "0000"
                                                                                              "00"
                                                                                              "\n"},
        {.what = "units",
         .fmt = NAGIOS,
         .in = "PING OK|rta=0.034000ms;3000.000000;5000.000000;0.000000 pl=0%;80;100;0 "
               "time=2s sz=1KB big=2TB lat=250us b=512B n=7c sig=-67dBm t=5ms;10ms;20ms",
         .rc = XL_OK,
         .want = "C chk ok \"PING OK\" \"\" @1700000000000\n"
                 "M check_perf_value{" LBL(
                     "rta") ",unit=\"seconds\"} 3.4e-05 @1700000000000\n"
                            "M check_perf_warn{" LBL(
                                "rta") ",unit=\"seconds\"} 3 @1700000000000\n"
                                       "M check_perf_crit{" LBL(
                                           "rta") ",unit=\"seconds\"} 5 @1700000000000\n"
                                                  "M check_perf_min{" LBL("rta") ",unit="
                                                                                 "\"seconds\"} 0 "
                                                                                 "@1700000000000\n"
                                                                                 "M "
                                                                                 "check_perf_"
                                                                                 "value{" LBL(
                                                                                     "pl") ",unit="
                                                                                           "\"perce"
                                                                                           "nt"
                                                                                           "\"} 0 "
                                                                                           "@170000"
                                                                                           "00"
                                                                                           "00000\n"
                                                                                           "M "
                                                                                           "check_"
                                                                                           "perf_"
                                                                                           "warn"
                                                                                           "{" LBL("pl") ",unit=\"percent\"} "
                                                                                                         "80 @1700000000000\n"
                                                                                                         "M "
                                                                                                         "check_perf_crit{" LBL("pl") ",unit=\"percent\"} 100 @1700000000000\n"
                                                                                                                                      "M check_perf_min{" LBL(
                                                                                                                                          "pl") ",unit=\"percent\"} 0 @1700000000000\n"
                                                                                                                                                "M check_perf_value{" LBL("time") ",unit=\"seconds\"} 2 @1700000000000\n"
                                                                                                                                                                                  "M check_perf_value{" LBL("sz") ",unit=\"bytes\"} 1024 @1700000000000\n"
                                                                                                                                                                                                                  "M check_perf_value{" LBL("big") ",unit=\"bytes\"} 2199023255552 @1700000000000\n"
                                                                                                                                                                                                                                                   "M check_perf_value{" LBL("lat") ",unit=\"seconds\"} 0.00025 @1700000000000\n"
                                                                                                                                                                                                                                                                                    "M check_perf_value{" LBL("b") ",unit=\"bytes\"} 512 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                   "M check_perf_value{" LBL(
                                                                                                                                                                                                                                                                                                                       "n") ",unit=\"counter\"} 7 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                            "M check_perf_value{" LBL("sig") ",unit=\"dBm\"} -67 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                             "M check_perf_value{" LBL("t") ",unit=\"seconds\"} 0.005 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                            "M check_perf_warn{" LBL(
                                                                                                                                                                                                                                                                                                                                                                                                "t") ",unit=\"seconds\"} 0.01 @1700000000000\n"
                                                                                                                                                                                                                                                                                                                                                                                                     "M check_perf_crit{" LBL(
                                                                                                                                                                                                                                                                                                                                                                                                         "t") ",unit=\"seconds\"} 0.02 @1700000000000\n"},
        {.what = "negative numbers, decimals, exponents",
         .fmt = NAGIOS,
         .in = "TEMP WARNING|temp=-5.5;-10:;-20:;-40;60 x=1e3;2E-1 y=+.5;;;-1.5e+2 z=7.",
         .rc = XL_OK,
         .want =
             "C chk ok \"TEMP WARNING\" \"\" @1700000000000\n"
             "M check_perf_value{" LBL(
                 "temp") "} -5.5 @1700000000000\n"
                         "M check_perf_warn{" LBL(
                             "temp") "} -10 @1700000000000\n"
                                     "M check_perf_crit{" LBL(
                                         "temp") "} -20 @1700000000000\n"
                                                 "M check_perf_min{" LBL(
                                                     "temp") "} -40 @1700000000000\n"
                                                             "M check_perf_max{" LBL(
                                                                 "temp") "} 60 @1700000000000\n"
                                                                         "M check_perf_value{" LBL(
                                                                             "x") "} 1000 "
                                                                                  "@1700000000000\n"
                                                                                  "M "
                                                                                  "check_perf_"
                                                                                  "warn{" LBL(
                                                                                      "x") "} 0.2 "
                                                                                           "@170000"
                                                                                           "0000000"
                                                                                           "\n"
                                                                                           "M "
                                                                                           "check_"
                                                                                           "perf_"
                                                                                           "value"
                                                                                           "{" LBL(
                                                                                               "y") "} 0.5 @1700000000000\n"
                                                                                                    "M check_perf_min{" LBL(
                                                                                                        "y") "} -150 @1700000000000\n"
                                                                                                             "M check_perf_value{" LBL(
                                                                                                                 "z") "} 7 @1700000000000\n"},
        {.what = "U: unknown value skipped, the rest kept",
         .fmt = NAGIOS,
         .in = "PING CRITICAL - Packet loss = 100%|rta=U;100;200;0 pl=100%;20;60;0",
         .rc = XL_OK,
         .want =
             "C chk critical \"PING CRITICAL - Packet loss = 100%\" \"\" @1700000000000\n"
             "M check_perf_warn{" LBL(
                 "rta") "} 100 @1700000000000\n"
                        "M check_perf_crit{" LBL(
                            "rta") "} 200 @1700000000000\n"
                                   "M check_perf_min{" LBL(
                                       "rta") "} 0 @1700000000000\n"
                                              "M check_perf_value{" LBL(
                                                  "pl") ",unit=\"percent\"} 100 @1700000000000\n"
                                                        "M check_perf_warn{" LBL(
                                                            "pl") ",unit=\"percent\"} 20 "
                                                                  "@1700000000000\n"
                                                                  "M check_perf_crit{" LBL(
                                                                      "pl") ",unit=\"percent\"} 60 "
                                                                            "@1700000000000\n"
                                                                            "M check_perf_min{" LBL(
                                                                                "pl") ",unit="
                                                                                      "\"percent\"}"
                                                                                      " 0 "
                                                                                      "@17000000000"
                                                                                      "00\n",
         .exit_status = 2},
        {.what = "ranges",
         .fmt = NAGIOS,
         .in = "R|a=5;~:10;@20:30 b=5;10:;~: c=5;:7;@~:3 d=5;@10;10:20",
         .rc = XL_OK,
         .want =
             "C chk unknown \"R\" \"\" @1700000000000\n"
             "M check_perf_value{" LBL(
                 "a") "} 5 @1700000000000\n"
                      "M check_perf_warn{" LBL(
                          "a") "} 10 @1700000000000\n"
                               "M check_perf_crit{" LBL(
                                   "a") "} 30 @1700000000000\n"
                                        "M check_perf_value{" LBL(
                                            "b") "} 5 @1700000000000\n"
                                                 "M check_perf_warn{" LBL(
                                                     "b") "} 10 @1700000000000\n"
                                                          "M check_perf_value{" LBL(
                                                              "c") "} 5 @1700000000000\n"
                                                                   "M check_perf_warn{" LBL(
                                                                       "c") "} 7 @1700000000000\n"
                                                                            "M "
                                                                            "check_perf_crit{" LBL(
                                                                                "c") "} 3 "
                                                                                     "@170000000000"
                                                                                     "0\n"
                                                                                     "M "
                                                                                     "check_perf_"
                                                                                     "value{" LBL(
                                                                                         "d") "} 5 "
                                                                                              "@170"
                                                                                              "0000"
                                                                                              "0000"
                                                                                              "00\n"
                                                                                              "M "
                                                                                              "chec"
                                                                                              "k_"
                                                                                              "perf"
                                                                                              "_war"
                                                                                              "n"
                                                                                              "{" LBL(
                                                                                                  "d") "} 10 @1700000000000\n"
                                                                                                       "M check_perf_crit{" LBL(
                                                                                                           "d") "} 20 @1700000000000\n",
         .exit_status = 3},
        {.what = "exit status 7: unknown",
         .fmt = NAGIOS,
         .in = "something odd\n",
         .rc = XL_OK,
         .want = "C chk unknown \"something odd\" \"\" @1700000000000\n",
         .exit_status = 7},
        {.what = "exit status -1: unknown",
         .fmt = NAGIOS,
         .in = "killed",
         .rc = XL_OK,
         .want = "C chk unknown \"killed\" \"\" @1700000000000\n",
         .exit_status = -1},
        {.what = "exit status 1: warning",
         .fmt = NAGIOS,
         .in = "  WARNING - disk 85%  \r\n",
         .rc = XL_OK,
         .want = "C chk warning \"WARNING - disk 85%\" \"\" @1700000000000\n",
         .exit_status = 1},
        {.what = "empty output",
         .fmt = NAGIOS,
         .in = "",
         .rc = XL_OK,
         .want = "C chk ok \"(no output)\" \"\" @1700000000000\n"},
        {.what = "blank output",
         .fmt = NAGIOS,
         .in = " \n\t\n",
         .rc = XL_OK,
         .want = "C chk ok \"(no output)\" \"\" @1700000000000\n"},
        {.what = "perfdata only",
         .fmt = NAGIOS,
         .in = "|a=1",
         .rc = XL_OK,
         .want = "C chk ok \"(no output)\" \"\" @1700000000000\n"
                 "M check_perf_value{" LBL("a") "} 1 @1700000000000\n"},
        {.what = "long text: leading blank lines dropped, inner kept, trailing trimmed",
         .fmt = NAGIOS,
         .in = "OK\n\n\n  first  \n\nsecond\r\n\n \n",
         .rc = XL_OK,
         .want = "C chk ok \"OK\" \"  first\\n\\nsecond\" @1700000000000\n"},
        {.what = "perfdata starting on line 2, continuing",
         .fmt = NAGIOS,
         .in = "OK\n| a=1\nb=2 'c d'=3\n",
         .rc = XL_OK,
         .want = "C chk ok \"OK\" \"\" @1700000000000\n"
                 "M check_perf_value{" LBL("a") "} 1 @1700000000000\n"
                                                "M check_perf_value{" LBL(
                                                    "b") "} 2 @1700000000000\n"
                                                         "M check_perf_value{" LBL(
                                                             "c d") "} 3 @1700000000000\n"},
        {.what = "extra labels, ours win",
         .fmt = NAGIOS,
         .in = "OK|a=1s",
         .rc = XL_OK,
         .want = "C chk ok \"OK\" \"\" @1700000000000\n"
                 "M check_perf_value{" LBL("a") ",unit=\"seconds\",job=\"node\",env=\"prod\"} 1 "
                                                "@1700000000000\n",
         .extra = extra_clash,
         .nextra = 3},
    };

    RUN(cases);
}

static void test_nagios_bad(void **state)
{
    static const struct pcase cases[] = {
        {.what = "value not a number",
         .fmt = NAGIOS,
         .in = "OK|load1=0.1 load5=x",
         .rc = XL_EPARSE,
         .want = "perfdata item 2 ('load5=x'): value: expected a number"},
        {.what = "no '='",
         .fmt = NAGIOS,
         .in = "OK|a",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a'): expected '=' after the label"},
        {.what = "space before '='",
         .fmt = NAGIOS,
         .in = "OK|a =1",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a'): expected '=' after the label"},
        {.what = "unclosed quote",
         .fmt = NAGIOS,
         .in = "OK|'abc=1 x=2",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 (''abc=1 x=2'): label: expected a closing quote"},
        {.what = "text after a quoted label",
         .fmt = NAGIOS,
         .in = "OK|'a'b=1",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 (''a'b=1'): expected '=' after the label"},
        {.what = "empty label",
         .fmt = NAGIOS,
         .in = "OK|=1",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('=1'): label: empty"},
        {.what = "empty quoted label",
         .fmt = NAGIOS,
         .in = "OK|''=1",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('''=1'): label: empty"},
        {.what = "no value",
         .fmt = NAGIOS,
         .in = "OK|a=;1",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=;1'): value: expected a number"},
        {.what = "too big in bytes",
         .fmt = NAGIOS,
         .in = "OK|a=1e300PB",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1e300PB'): value: out of range in bytes"},
        {.what = "too many fields",
         .fmt = NAGIOS,
         .in = "OK|a=1;2;3;4;5;6",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1;2;3;4;5;6'): more than 5 fields (value;warn;crit;min;max)"},
        {.what = "bad warn",
         .fmt = NAGIOS,
         .in = "OK|a=1;x",
         .rc = XL_EPARSE,
         .want =
             "perfdata item 1 ('a=1;x'): warn: expected a range (10, 10:, ~:10, 10:20, @10:20)"},
        {.what = "lone @",
         .fmt = NAGIOS,
         .in = "OK|a=1;;@",
         .rc = XL_EPARSE,
         .want =
             "perfdata item 1 ('a=1;;@'): crit: expected a range (10, 10:, ~:10, 10:20, @10:20)"},
        {.what = "lone ~",
         .fmt = NAGIOS,
         .in = "OK|a=1;~",
         .rc = XL_EPARSE,
         .want =
             "perfdata item 1 ('a=1;~'): warn: expected a range (10, 10:, ~:10, 10:20, @10:20)"},
        {.what = "range upside down",
         .fmt = NAGIOS,
         .in = "OK|a=1;20:10",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1;20:10'): warn: range start 20 is above its end 10"},
        {.what = "bad min",
         .fmt = NAGIOS,
         .in = "OK|a=1;;;z",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1;;;z'): min: expected a number"},
        {.what = "bad max",
         .fmt = NAGIOS,
         .in = "OK|a=1;;;;1:2",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1;;;;1:2'): max: expected a number"},
        {.what = "two dots",
         .fmt = NAGIOS,
         .in = "OK|a=1.2.3",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1.2.3'): value: expected a number and a unit (s, ms, %, B, "
                 "c...)"},
        {.what = "comma decimal",
         .fmt = NAGIOS,
         .in = "OK|a=0,5",
         .rc = XL_EPARSE,
         .want =
             "perfdata item 1 ('a=0,5'): value: expected a number and a unit (s, ms, %, B, c...)"},
        {.what = "threshold in another unit",
         .fmt = NAGIOS,
         .in = "OK|a=1ms;5MB",
         .rc = XL_EPARSE,
         .want = "perfdata item 1 ('a=1ms;5MB'): warn: expected a range (10, 10:, ~:10, 10:20, "
                 "@10:20)"},
        {.what = "later line: the third item",
         .fmt = NAGIOS,
         .in = "OK|a=1\nlong text\nmore | b=2\nc 3\n",
         .rc = XL_EPARSE,
         .want = "perfdata item 3 ('c'): expected '=' after the label"},
        {.what = "too many records",
         .fmt = NAGIOS,
         .in = "OK|a=1;2 b=3;4",
         .rc = XL_ETOOBIG,
         .want = "perfdata item 2: more than 4 records",
         .lim = {.max_records = 4}},
    };

    RUN(cases);
}

/* Output beyond what the server takes is cut, with a mark. */
static void test_nagios_long(void **state)
{
    struct rec_log log = {.n = 0};
    struct xl_err err = {0};
    size_t n = 100000;
    char *in = xl_malloc(n + 1);
    const char *p;

    xl_buf_init(&log.b, 1 << 20);
    memset(in, 'x', n);
    memcpy(in, "OK first|a=1\n", 13);
    in[n] = '\0';
    assert_int_equal(run(NAGIOS, in, n, 0, NULL, 0, &deflim, &log, &err), XL_OK);
    assert_int_equal(log.n, 2);
    p = strstr(log.b.data, "\" \"xxx");
    assert_non_null(p);
    assert_non_null(strstr(p, "x [truncated]\" @"));
    /* output + long_output: the server's 64 KiB. */
    assert_int_equal(strstr(p, " [truncated]") - (p + 3) + strlen("OK first") +
                         strlen(" [truncated]"),
                     64 << 10);

    /* A first line alone over the limit. */
    xl_buf_reset(&log.b);
    log.n = 0;
    memset(in, 'y', n);
    assert_int_equal(run(NAGIOS, in, n, 0, NULL, 0, &deflim, &log, &err), XL_OK);
    assert_non_null(strstr(log.b.data, "y [truncated]\" \"\" @"));
    xl_buf_cleanup(&log.b);
    xl_free(in);
}

static void test_nagios_name(void **state)
{
    struct xl_rec_sink sink = {0};
    struct xl_err err = {0};

    assert_int_equal(xl_parse_nagios("OK", 2, 0, NULL, NULL, 0, TS, &deflim, &sink, &err),
                     XL_EINVAL);
    assert_int_equal(xl_parse_nagios("OK", 2, 0, "", NULL, 0, TS, &deflim, &sink, &err), XL_EINVAL);
    assert_int_equal(xl_parse_nagios("OK", 2, 0, "a\tb", NULL, 0, TS, &deflim, &sink, &err),
                     XL_EINVAL);
    assert_string_equal(err.msg, "nagios: the check name must have 1 to 200 bytes of UTF-8 "
                                 "without control characters");
    assert_int_equal(xl_parse_nagios("OK", 2, 0, "a\xc2\x85", NULL, 0, TS, &deflim, &sink, &err),
                     XL_EINVAL);
    /* Callbacks left NULL skip their records. */
    assert_int_equal(xl_parse_nagios("OK|a=1", 6, 0, "c", NULL, 0, TS, &deflim, &sink, &err),
                     XL_OK);
}

/* ------------------------------------------------------------ Prometheus */

static const char prom_docs[] =
    "# HELP http_requests_total The total number of HTTP requests.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
    "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
    "\n"
    "# Escaping in label values:\n"
    "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
    "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
    "\n"
    "# Minimalistic line:\n"
    "metric_without_timestamp_and_labels 12.47\n"
    "\n"
    "# A weird metric from after the epoch:\n"
    "something_weird{problem=\"division by zero\"} +Inf 1700000000001\n"
    "\n"
    "# A histogram, which has a pretty complex representation in the text format:\n"
    "# HELP http_request_duration_seconds A histogram of the request duration.\n"
    "# TYPE http_request_duration_seconds histogram\n"
    "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
    "http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n"
    "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
    "http_request_duration_seconds_sum 53423\n"
    "http_request_duration_seconds_count 144320\n"
    "\n"
    "# Finally a summary, which has a complex representation, too:\n"
    "# HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n"
    "# TYPE rpc_duration_seconds summary\n"
    "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
    "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
    "rpc_duration_seconds_sum 1.7560473e+07\n"
    "rpc_duration_seconds_count 2693\n";

static void test_prom_good(void **state)
{
    static const struct pcase cases[] = {
        {.what = "the format's own example",
         .fmt = PROM,
         .in = prom_docs,
         .rc = XL_OK,
         .want = "M http_requests_total{method=\"post\",code=\"200\"} 1027 @1395066363000\n"
                 "M http_requests_total{method=\"post\",code=\"400\"} 3 @1395066363000\n"
                 "M msdos_file_access_time_seconds{path=\"C:\\DIR\\FILE.TXT\",error=\"Cannot find "
                 "file:\\n\"FILE.TXT\"\"} 1458255915 @1700000000000\n"
                 "M metric_without_timestamp_and_labels{} 12.47 @1700000000000\n"
                 "M something_weird{problem=\"division by zero\"} inf @1700000000001\n"
                 "M http_request_duration_seconds_bucket{le=\"0.05\"} 24054 @1700000000000\n"
                 "M http_request_duration_seconds_bucket{le=\"0.1\"} 33444 @1700000000000\n"
                 "M http_request_duration_seconds_bucket{le=\"+Inf\"} 144320 @1700000000000\n"
                 "M http_request_duration_seconds_sum{} 53423 @1700000000000\n"
                 "M http_request_duration_seconds_count{} 144320 @1700000000000\n"
                 "M rpc_duration_seconds{quantile=\"0.01\"} 3102 @1700000000000\n"
                 "M rpc_duration_seconds{quantile=\"0.99\"} 76656 @1700000000000\n"
                 "M rpc_duration_seconds_sum{} 17560473 @1700000000000\n"
                 "M rpc_duration_seconds_count{} 2693 @1700000000000\n"},
        {.what = "special values",
         .fmt = PROM,
         .in = "a NaN\nb -Inf\nc +Inf\nd Inf\ne nan\nf -infinity\ng 1e-400\nh -0\ni .5\nj 5.\n",
         .rc = XL_OK,
         .want = "M a{} nan @1700000000000\n"
                 "M b{} -inf @1700000000000\n"
                 "M c{} inf @1700000000000\n"
                 "M d{} inf @1700000000000\n"
                 "M e{} nan @1700000000000\n"
                 "M f{} -inf @1700000000000\n"
                 "M g{} 0 @1700000000000\n"
                 "M h{} -0 @1700000000000\n"
                 "M i{} 0.5 @1700000000000\n"
                 "M j{} 5 @1700000000000\n"},
        {.what = "blanks, tabs, empty braces, trailing comma, CRLF",
         .fmt = PROM,
         .in = "  \t\n  up 1\r\nx {} 2\ny{ a = \"1\" ,\tb=\"2\", } 3 "
               "\t\nz{a=\"\"}\t4\t1700000000002 \n",
         .rc = XL_OK,
         .want = "M up{} 1 @1700000000000\n"
                 "M x{} 2 @1700000000000\n"
                 "M y{a=\"1\",b=\"2\"} 3 @1700000000000\n"
                 "M z{a=\"\"} 4 @1700000000002\n"},
        {.what = "comments of every kind",
         .fmt = PROM,
         .in = "#!/bin/sh\n#\n# \n#HELP a\n# HELP a help with \\\\ and \\n\n# TYPE a gauge\n"
               "# TYPE b Counter\n# TYPE c\n# other text { \"\na 1\n",
         .rc = XL_OK,
         .want = "M a{} 1 @1700000000000\n"},
        {.what = "escapes and UTF-8 in label values",
         .fmt = PROM,
         .in = "m{a=\"x\\\\y\",b=\"q\\\"q\",c=\"l1\\nl2\",d=\"caf\xc3\xa9 {}, =\"} 1\n",
         .rc = XL_OK,
         .want =
             "M m{a=\"x\\y\",b=\"q\"q\",c=\"l1\\nl2\",d=\"caf\xc3\xa9 {}, =\"} 1 @1700000000000\n"},
        {.what = "extra labels unless the sample sets them",
         .fmt = PROM,
         .in = "a 1\nb{env=\"dev\"} 2\nc{perf=\"p\"} 3\n",
         .rc = XL_OK,
         .want = "M a{perf=\"x\",job=\"node\",env=\"prod\"} 1 @1700000000000\n"
                 "M b{env=\"dev\",perf=\"x\",job=\"node\"} 2 @1700000000000\n"
                 "M c{perf=\"p\",job=\"node\",env=\"prod\"} 3 @1700000000000\n",
         .extra = extra_clash,
         .nextra = 3},
        {.what = "names with colons",
         .fmt = PROM,
         .in = "job:rate5m:sum{_x=\"1\"} 1\n:a 2\n",
         .rc = XL_OK,
         .want = "M job:rate5m:sum{_x=\"1\"} 1 @1700000000000\n"
                 "M :a{} 2 @1700000000000\n"},
        {.what = "empty", .fmt = PROM, .in = "", .rc = XL_OK, .want = ""},
        {.what = "no trailing newline",
         .fmt = PROM,
         .in = "a 1",
         .rc = XL_OK,
         .want = "M a{} 1 @1700000000000\n"},
    };

    RUN(cases);
}

static void test_prom_bad(void **state)
{
    static const struct pcase cases[] = {
        {.what = "missing value",
         .fmt = PROM,
         .in = "foo\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 4: expected a value"},
        {.what = "missing value after labels",
         .fmt = PROM,
         .in = "ok 1\nfoo{a=\"b\"}  \n",
         .rc = XL_EPARSE,
         .want = "line 2, byte 13: expected a value"},
        {.what = "unclosed brace",
         .fmt = PROM,
         .in = "foo{a=\"b\" 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 11: expected ',' or '}' after the label value"},
        {.what = "unclosed brace at the end",
         .fmt = PROM,
         .in = "foo{a=\"b\",",
         .rc = XL_EPARSE,
         .want = "line 1, byte 11: expected a label name or '}'"},
        {.what = "unclosed quote",
         .fmt = PROM,
         .in = "foo{a=\"b} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 12: expected '\"' to close the label value"},
        {.what = "name starts with a digit",
         .fmt = PROM,
         .in = "1foo 2\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 1: expected a metric name"},
        {.what = "dash in a name",
         .fmt = PROM,
         .in = "foo-bar 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 4: expected '{' or a blank after the metric name"},
        {.what = "label name starts with a digit",
         .fmt = PROM,
         .in = "foo{1a=\"b\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: expected a label name"},
        {.what = "no '='",
         .fmt = PROM,
         .in = "\n\nfoo{a \"b\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 3, byte 7: expected '=' after label name"},
        {.what = "value not quoted",
         .fmt = PROM,
         .in = "foo{a=b} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 7: expected '\"' to start the label value"},
        {.what = "bad escape",
         .fmt = PROM,
         .in = "foo{a=\"\\t\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 8: invalid escape in a label value (\\\\, \\\" or \\n)"},
        {.what = "duplicate label",
         .fmt = PROM,
         .in = "foo{a=\"1\",b=\"2\",a=\"3\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 17: duplicate label name 'a'"},
        {.what = "reserved label",
         .fmt = PROM,
         .in = "foo{__name__=\"x\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: label name '__name__' is reserved (starts with __)"},
        {.what = "bad value",
         .fmt = PROM,
         .in = "foo 1,5\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: expected a number as the value, got '1,5'"},
        {.what = "hex value",
         .fmt = PROM,
         .in = "foo 0x10\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: expected a number as the value, got '0x10'"},
        {.what = "signed NaN",
         .fmt = PROM,
         .in = "foo +NaN\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: expected a number as the value, got '+NaN'"},
        {.what = "overflow",
         .fmt = PROM,
         .in = "foo 1e999\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 5: expected a number as the value, got '1e999'"},
        {.what = "bad timestamp",
         .fmt = PROM,
         .in = "foo 1 12.5\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 7: expected a timestamp (integer milliseconds), got '12.5'"},
        {.what = "timestamp in seconds",
         .fmt = PROM,
         .in = "foo 1 1700000000\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 7: timestamp 1700000000 is not milliseconds since 1970 (seconds?)"},
        {.what = "before the epoch",
         .fmt = PROM,
         .in = "foo 1 -3982045\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 7: timestamp -3982045 is not milliseconds since 1970 (seconds?)"},
        {.what = "text after the timestamp",
         .fmt = PROM,
         .in = "foo 1 1700000000000 x\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 21: expected the end of the line after the timestamp"},
        {.what = "unknown TYPE",
         .fmt = PROM,
         .in = "# TYPE foo bogus\nfoo 1\n",
         .rc = XL_EPARSE,
         .want =
             "line 1, byte 12: unknown metric type 'bogus' (counter, gauge, histogram, summary or "
             "untyped)"},
        {.what = "TYPE with a bad name",
         .fmt = PROM,
         .in = "# TYPE foo-bar gauge\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 11: expected a metric name after # TYPE"},
        {.what = "HELP with a bad escape",
         .fmt = PROM,
         .in = "# HELP foo a \\t b\n",
         .rc = XL_EPARSE,
         .want = "line 1, byte 14: invalid escape in HELP text (\\\\ or \\n)"},
        {.what = "escape \\0",
         .fmt = PROM,
         .in = "x{a=\"\\\\\"} 1\ny{a=\"\\0\"} 1\n",
         .rc = XL_EPARSE,
         .want = "line 2, byte 6: invalid escape in a label value (\\\\, \\\" or \\n)"},
        {.what = "good lines then a broken one: nothing kept",
         .fmt = PROM,
         .in = "a 1\nb 2\nc{\n",
         .rc = XL_EPARSE,
         .want = "line 3, byte 3: expected a label name or '}'"},
        {.what = "too many records",
         .fmt = PROM,
         .in = "a 1\n# x\nb 2\n\nc 3\n",
         .rc = XL_ETOOBIG,
         .want = "line 5: more than 2 records",
         .lim = {.max_records = 2}},
    };

    RUN(cases);
}

/* A NUL byte inside a label value is refused (it would cut the string). */
static void test_prom_nul(void **state)
{
    static const char in[] = "x{a=\"b\0c\"} 1\n";
    struct rec_log log = {.n = 0};
    struct xl_err err = {0};

    xl_buf_init(&log.b, 1 << 20);
    assert_int_equal(run(PROM, in, sizeof(in) - 1, 0, NULL, 0, &deflim, &log, &err), XL_EPARSE);
    assert_string_equal(err.msg, "line 1, byte 7: NUL byte in a label value");
    assert_int_equal(log.n, 0);
    xl_buf_cleanup(&log.b);
}

/* More than 64 labels with the extra ones: the server would refuse it. */
static void test_prom_label_limit(void **state)
{
    struct rec_log log = {.n = 0};
    struct xl_err err = {0};
    struct xl_buf in;

    xl_buf_init(&in, 1 << 20);
    xl_buf_adds(&in, "m{");
    for (int i = 0; i < 64; i++)
        xl_buf_printf(&in, "l%d=\"v\",", i);
    xl_buf_adds(&in, "} 1\n");
    xl_buf_init(&log.b, 1 << 20);
    assert_int_equal(run(PROM, in.data, in.len, 0, NULL, 0, &deflim, &log, &err), XL_OK);
    assert_int_equal(log.n, 1);
    assert_int_equal(run(PROM, in.data, in.len, 0, extra1, 1, &deflim, &log, &err), XL_EPARSE);
    assert_string_equal(err.msg, "line 1, byte 1: more than 64 labels with the input's own");
    xl_buf_cleanup(&log.b);
    xl_buf_cleanup(&in);
}

/* ------------------------------------------------------------ detection */

static void test_detect(void **state)
{
    static const struct {
        const char *in;
        enum xl_exec_format want;
    } cases[] = {
        {"", XL_FMT_NAGIOS},
        {" \n\t\n", XL_FMT_NAGIOS},
        {seed003, XL_FMT_JSON},
        {"\n  [{\"type\":\"a\"}]", XL_FMT_JSON},
        {"{broken", XL_FMT_JSON},
        {"OK - load average: 0.15|load1=0.15", XL_FMT_NAGIOS},
        {disk_multiline, XL_FMT_NAGIOS},
        {"DISK OK - free space", XL_FMT_NAGIOS},
        {prom_docs, XL_FMT_PROMETHEUS},
        {"up 1\n", XL_FMT_PROMETHEUS},
        {"  x{a=\"b\"} 1 1700000000000\r\n", XL_FMT_PROMETHEUS},
        {"# HELP x y\n# TYPE x gauge\n", XL_FMT_NAGIOS}, /* no sample */
        {"up 1\nOK then\n", XL_FMT_NAGIOS},
        {"up 1\nup{a=\"b} 1\n", XL_FMT_NAGIOS},
        {"foo{a=\"1\",a=\"2\"} 1\n", XL_FMT_PROMETHEUS}, /* the parser says why */
        {"CRITICAL - 5 errors\n", XL_FMT_NAGIOS},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum xl_exec_format got = xl_exec_format_detect(cases[i].in, strlen(cases[i].in));
        if (got != cases[i].want)
            fail_msg("detect '%s': %s, want %s", cases[i].in, xl_exec_format_str(got),
                     xl_exec_format_str(cases[i].want));
    }
}

static void test_names(void **state)
{
    enum xl_exec_format f;
    enum xl_check_state s;

    for (int i = XL_FMT_AUTO; i <= XL_FMT_PROMETHEUS; i++) {
        assert_true(xl_exec_format_parse(xl_exec_format_str(i), &f));
        assert_int_equal(f, i);
    }
    assert_false(xl_exec_format_parse("yaml", &f));
    assert_false(xl_exec_format_parse(NULL, &f));
    assert_true(xl_check_state_parse("CRITICAL", &s) && s == XL_CHECK_CRITICAL);
    assert_false(xl_check_state_parse("crit", &s));
    assert_true(xl_event_type_valid("demo"));
    assert_false(xl_event_type_valid("job_run"));
}

/* ------------------------------------------------------------ faults */

/* Every allocation failing in turn: XL_ENOMEM and an untouched sink, or
 * success with every record; never a leak (ASan) or a crash. */
static void test_oom(void **state)
{
    static const struct {
        enum fmt fmt;
        const char *in;
    } inputs[] = {
        {JSON, "[{\"type\":\"metric\",\"name\":\"a\",\"value\":1,\"labels\":{\"x\":\"y\"}},"
               "{\"type\":\"check\",\"name\":\"c\",\"state\":\"ok\"},{\"type\":\"e\",\"f\":1}]"},
        {NAGIOS, "OK|'a b'=1ms;2;3;0;10 x=5dBm\nlong\n"},
        {PROM, "# TYPE a gauge\na{x=\"1\",y=\"a\\nb\"} 1\nb 2\n"},
    };

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t want = 0;
        bool ok = false;

        for (long k = 0; !ok && k < 1000; k++) {
            struct rec_log log = {.n = 0};
            struct xl_err err = {0};
            xl_rc rc;

            xl_alloc_fail_after(k);
            rc = run(inputs[i].fmt, inputs[i].in, strlen(inputs[i].in), 0, extra1, 1, &deflim, &log,
                     &err);
            xl_alloc_fail_after(-1);
            if (rc == XL_OK) {
                ok = true;
                want = log.n;
            } else {
                assert_int_equal(rc, XL_ENOMEM);
                assert_int_equal(log.n, 0);
            }
            xl_buf_cleanup(&log.b);
        }
        assert_true(ok);
        assert_int_equal(want, i == 0 ? 3 : i == 1 ? 7 : 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_good),
        cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_json_event_fields),
        cmocka_unit_test(test_nagios_good),
        cmocka_unit_test(test_nagios_bad),
        cmocka_unit_test(test_nagios_long),
        cmocka_unit_test(test_nagios_name),
        cmocka_unit_test(test_prom_good),
        cmocka_unit_test(test_prom_bad),
        cmocka_unit_test(test_prom_nul),
        cmocka_unit_test(test_prom_label_limit),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
