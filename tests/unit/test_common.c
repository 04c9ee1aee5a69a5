/* Unit tests: units, buffers, errors and the config loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/check.h"
#include "common/config.h"
#include "common/metric.h"
#include "common/rc.h"
#include "common/units.h"

static void test_duration(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        int64_t ms;
    } cases[] = {
        {"0", XL_OK, 0},           {"500ms", XL_OK, 500},       {"10s", XL_OK, 10000},
        {"5m", XL_OK, 300000},     {"1h", XL_OK, 3600000},      {"2d", XL_OK, 172800000},
        {"1h30m", XL_OK, 5400000}, {"1w", XL_OK, 604800000},    {"10", XL_EPARSE, 0},
        {"", XL_EPARSE, 0},        {"s", XL_EPARSE, 0},         {"5 m", XL_EPARSE, 0},
        {"-1s", XL_EPARSE, 0},     {"1y", XL_EPARSE, 0},        {"1mss", XL_EPARSE, 0},
        {"99999999999999999999s", XL_ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        xl_rc rc = xl_duration_parse(cases[i].in, &ms);
        if (rc != cases[i].rc)
            fail_msg("duration '%s': rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == XL_OK && ms != cases[i].ms)
            fail_msg("duration '%s': %lld ms, want %lld", cases[i].in, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void test_duration_fmt(void **state)
{
    char buf[32];

    xl_duration_fmt(5400000, buf, sizeof(buf));
    assert_string_equal(buf, "1h30m");
    xl_duration_fmt(250, buf, sizeof(buf));
    assert_string_equal(buf, "250ms");
    xl_duration_fmt(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
}

static void test_size(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        int64_t b;
    } cases[] = {
        {"512", XL_OK, 512},       {"64KiB", XL_OK, 65536},     {"1GiB", XL_OK, 1LL << 30},
        {"10MB", XL_OK, 10000000}, {"3 MiB", XL_OK, 3 << 20},   {"1kB", XL_OK, 1000},
        {"1XB", XL_EPARSE, 0},     {"KiB", XL_EPARSE, 0},       {"1.5GiB", XL_EPARSE, 0},
        {"99999999999TiB", XL_ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t b = -1;
        xl_rc rc = xl_size_parse(cases[i].in, &b);
        if (rc != cases[i].rc || (rc == XL_OK && b != cases[i].b))
            fail_msg("size '%s': rc %d value %lld", cases[i].in, rc, (long long)b);
    }
}

static void test_buf_limit(void **state)
{
    struct xl_buf b;

    xl_buf_init(&b, 10);
    assert_int_equal(xl_buf_adds(&b, "hello"), XL_OK);
    assert_int_equal(xl_buf_printf(&b, "%d", 12345), XL_OK);
    assert_int_equal(b.len, 10);
    assert_int_equal(xl_buf_adds(&b, "x"), XL_ETOOBIG);
    assert_string_equal(b.data, "hello12345");
    xl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    xl_buf_cleanup(&b);
}

static void test_buf_oom(void **state)
{
    struct xl_buf b;

    xl_buf_init(&b, 1 << 20);
    xl_alloc_fail_after(0);
    assert_int_equal(xl_buf_adds(&b, "x"), XL_ENOMEM);
    xl_alloc_fail_after(-1);
    assert_int_equal(b.len, 0);
    assert_int_equal(xl_buf_adds(&b, "x"), XL_OK);
    xl_buf_cleanup(&b);
}

static void test_err_prefix(void **state)
{
    struct xl_err err;

    xl_err_sys(&err, XL_EIO, 2, "cannot open %s", "x");
    assert_string_equal(err.msg, "cannot open x: No such file or directory");
    xl_err_prefix(&err, "%s:%d: ", "f.yaml", 3);
    assert_string_equal(err.msg, "f.yaml:3: cannot open x: No such file or directory");
    assert_int_equal(err.rc, XL_EIO);
    assert_int_equal(err.sys_errno, 2);
    assert_string_equal(xl_rc_str(XL_EFULL), "full");
}

static void test_names(void **state)
{
    assert_true(xl_metric_name_valid("node_cpu:rate5m"));
    assert_false(xl_metric_name_valid("1abc"));
    assert_false(xl_metric_name_valid("a-b"));
    assert_false(xl_metric_name_valid(""));
    assert_true(xl_label_name_valid("mode"));
    assert_false(xl_label_name_valid("__name__"));
    assert_false(xl_label_name_valid("a:b"));
}

/* A small table exercising every type. */
struct item {
    char *name;
    int64_t n;
};

struct sub {
    bool on;
    int64_t every;
};

struct conf {
    char *addr;
    int64_t threads;
    double ratio;
    int64_t size;
    char *mode;
    struct xl_strlist urls;
    struct xl_kvlist labels;
    struct sub sub;
    struct xl_cfg_array items;
};

static const struct xl_cfg_key item_keys[] = {
    {.name = "name", .type = XL_CFG_STR, .offset = offsetof(struct item, name), .desc = "n"},
    {.name = "n", .type = XL_CFG_INT, .def = "7", .offset = offsetof(struct item, n),
     .desc = "n"},
    {NULL},
};

static const struct xl_cfg_key sub_keys[] = {
    {.name = "on", .type = XL_CFG_BOOL, .def = "false", .offset = offsetof(struct sub, on),
     .desc = "on"},
    {.name = "every", .type = XL_CFG_DURATION, .def = "10s",
     .offset = offsetof(struct sub, every), .min = 1000, .max = 60000, .desc = "every"},
    {NULL},
};

static const struct xl_cfg_key keys[] = {
    {.name = "addr", .type = XL_CFG_STR, .def = "0.0.0.0:1", .offset = offsetof(struct conf, addr),
     .check = xl_cfg_check_hostport, .desc = "a"},
    {.name = "threads", .type = XL_CFG_INT, .def = "4", .offset = offsetof(struct conf, threads),
     .min = 1, .max = 64, .desc = "t"},
    {.name = "ratio", .type = XL_CFG_DOUBLE, .def = "0.5", .offset = offsetof(struct conf, ratio),
     .desc = "r"},
    {.name = "size", .type = XL_CFG_SIZE, .def = "1MiB", .offset = offsetof(struct conf, size),
     .desc = "s"},
    {.name = "mode", .type = XL_CFG_STR, .def = "a", .offset = offsetof(struct conf, mode),
     .choices = "a|bb", .desc = "m"},
    {.name = "urls", .type = XL_CFG_STRLIST, .def = "http://x,http://y",
     .offset = offsetof(struct conf, urls), .check = xl_cfg_check_urls, .desc = "u"},
    {.name = "labels", .type = XL_CFG_MAP, .offset = offsetof(struct conf, labels), .desc = "l"},
    {.name = "sub", .type = XL_CFG_SECTION, .offset = offsetof(struct conf, sub), .sub = sub_keys,
     .desc = "s"},
    {.name = "items", .type = XL_CFG_LIST, .offset = offsetof(struct conf, items),
     .sub = item_keys, .item_size = sizeof(struct item), .desc = "i"},
    {NULL},
};

static xl_rc load(const char *text, struct conf *c, struct xl_err *err)
{
    memset(c, 0, sizeof(*c));
    return xl_cfg_load_buf(keys, c, "t.yaml", text, strlen(text), err);
}

static void test_cfg_defaults(void **state)
{
    struct conf c;
    struct xl_err err = {0};

    assert_int_equal(load("", &c, &err), XL_OK);
    assert_string_equal(c.addr, "0.0.0.0:1");
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.size, 1 << 20);
    assert_int_equal(c.urls.n, 2);
    assert_string_equal(c.urls.v[1], "http://y");
    assert_int_equal(c.sub.every, 10000);
    assert_int_equal(c.items.n, 0);
    xl_cfg_cleanup(keys, &c);
}

static void test_cfg_values(void **state)
{
    struct conf c;
    struct xl_err err = {0};
    const char *y = "addr: '[::1]:80'\nthreads: 8\nratio: 0.25\nsize: 2KiB\nmode: bb\n"
                    "urls: http://only\nlabels: {role: web, dc: x}\n"
                    "sub:\n  on: yes\n  every: 1m\n"
                    "items:\n  - name: one\n  - name: two\n    n: 3\n";
    struct item *it;

    assert_int_equal(load(y, &c, &err), XL_OK);
    assert_string_equal(c.addr, "[::1]:80");
    assert_int_equal(c.threads, 8);
    assert_true(c.ratio == 0.25);
    assert_int_equal(c.size, 2048);
    assert_string_equal(c.mode, "bb");
    assert_int_equal(c.urls.n, 1);
    assert_int_equal(c.labels.n, 2);
    assert_string_equal(c.labels.k[1], "dc");
    assert_true(c.sub.on);
    assert_int_equal(c.sub.every, 60000);
    assert_int_equal(c.items.n, 2);
    it = c.items.items;
    assert_string_equal(it[0].name, "one");
    assert_int_equal(it[0].n, 7);
    assert_int_equal(it[1].n, 3);
    xl_cfg_cleanup(keys, &c);
}

static void test_cfg_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"threads: 8\nbogus: 1\n", "t.yaml:2: unknown key 'bogus'"},
        {"threads: 65\n", "t.yaml:1: threads: '65' is out of range (allowed 1 to 64)"},
        {"threads: many\n", "t.yaml:1: threads: expected an integer, got 'many'"},
        {"sub:\n  every: 500ms\n", "t.yaml:2: sub.every: '500ms' is out of range (allowed 1s to 1m)"},
        {"sub:\n  every: x\n", "t.yaml:2: sub.every: expected a duration"},
        {"sub:\n  on: maybe\n", "sub.on: expected true or false"},
        {"sub:\n  nope: 1\n", "t.yaml:2: unknown key 'sub.nope'"},
        {"mode: c\n", "t.yaml:1: mode: 'c' is not one of a|bb"},
        {"urls: [ftp://x]\n", "t.yaml:1: urls: 'ftp://x' must start with http"},
        {"addr: nohost\n", "t.yaml:1: addr: expected host:port"},
        {"labels: [a]\n", "t.yaml:1: labels: expected a mapping"},
        {"items:\n  - 3\n", "t.yaml:2: items[0]: expected a mapping"},
        {"items:\n  - name: a\n  - bad: 1\n", "t.yaml:3: unknown key 'items[1].bad'"},
        {"threads: 1\nthreads: 2\n", "t.yaml:2: duplicate key 'threads'"},
        {"[1, 2]\n", "t.yaml:1: the top level must be a mapping"},
        {"threads: [\n", "t.yaml:2:1: "},
        {"sub: 3\n", "t.yaml:1: sub: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf c;
        struct xl_err err = {0};
        xl_rc rc = load(cases[i].yaml, &c, &err);
        if (rc == XL_OK || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: rc %d, message '%s', want '%s'", i, rc, err.msg, cases[i].msg);
        xl_cfg_cleanup(keys, &c);
    }
}

static void test_cfg_oom(void **state)
{
    const char *y = "labels: {a: b}\nitems:\n  - name: x\n";

    /* Fail each allocation in turn: always an error, never a crash or leak. */
    for (long n = 0; n < 200; n++) {
        struct conf c;
        struct xl_err err = {0};
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = load(y, &c, &err);
        xl_alloc_fail_after(-1);
        xl_cfg_cleanup(keys, &c);
        if (rc == XL_OK)
            return;
        assert_int_equal(rc, XL_ENOMEM);
    }
    fail_msg("still failing after 200 allocations");
}

static void test_hostport(void **state)
{
    char host[64];
    uint16_t port;

    assert_int_equal(xl_hostport_split("127.0.0.1:21002", host, sizeof(host), &port, NULL), XL_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 21002);
    assert_int_equal(xl_hostport_split(":80", host, sizeof(host), &port, NULL), XL_OK);
    assert_string_equal(host, "");
    assert_int_equal(xl_hostport_split("[::1]:9", host, sizeof(host), &port, NULL), XL_OK);
    assert_string_equal(host, "::1");
    assert_int_not_equal(xl_hostport_split("h:99999", host, sizeof(host), &port, NULL), XL_OK);
    assert_int_not_equal(xl_hostport_split("h", host, sizeof(host), &port, NULL), XL_OK);
    assert_int_not_equal(xl_hostport_split("h:", host, sizeof(host), &port, NULL), XL_OK);
}

/* Check names and sanitised text: the rules both sides share. */
static void test_check_text(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } names[] = {
        {"disk_root", true}, {"检查 磁盘", true}, {"", false}, {"a\tb", false},
        {"a\nb", false},      {"a\x7f", false}, {"a\xc2\x85" "b", false}, /* U+0085 */
        {"a\xc2\xa0" "b", true}, {"\xff", false}, {"\xe4\xb8", false}, /* cut */
        {"\xed\xa0\x80", false},                                  /* a surrogate */
    };
    char long_name[XL_CHECK_NAME_MAX + 2];
    char text[] = "ok\tfine\n\xff\x01" "caf\xc3\xa9 \xc2\x85" "end\xe4\xb8";

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (xl_check_name_valid(names[i].s, strlen(names[i].s)) != names[i].ok)
            fail_msg("name %zu ('%s'): expected %s", i, names[i].s, names[i].ok ? "valid" : "not");
    memset(long_name, 'a', sizeof(long_name));
    assert_true(xl_check_name_valid(long_name, XL_CHECK_NAME_MAX));
    assert_false(xl_check_name_valid(long_name, XL_CHECK_NAME_MAX + 1));
    xl_text_sanitize(text);
    assert_string_equal(text, "ok\tfine\n??caf\xc3\xa9 ??end??");
    xl_text_sanitize(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),    cmocka_unit_test(test_duration_fmt),
        cmocka_unit_test(test_size),        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_buf_oom),     cmocka_unit_test(test_err_prefix),
        cmocka_unit_test(test_names),       cmocka_unit_test(test_cfg_defaults),
        cmocka_unit_test(test_cfg_values),  cmocka_unit_test(test_cfg_errors),
        cmocka_unit_test(test_cfg_oom),     cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_check_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
