/* Unit tests: alerting rules (src/server/rules/): rule files good and bad
 * (table-driven, asserting the file:line: field: message), a rules.d
 * directory with names unique across files, the sliding windows (every
 * aggregation, rate over a counter reset, eviction, the sample cap), the
 * counter window, and annotation templates. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "server/rules/rule.h"
#include "server/rules/template.h"
#include "server/rules/window.h"
#include "tmpdir_test_util.h"

#define T0 ((int64_t)1763715000000)

static const char good[] =
    "rules:\n"
    "  - name: high_cpu\n"
    "    kind: metric\n"
    "    metric: node_cpu_usage_ratio\n"
    "    match: '{role=\"web\"}'\n"
    "    agg: avg\n"
    "    window: 5m\n"
    "    by: [host]\n"
    "    op: '>'\n"
    "    threshold: 0.9\n"
    "    recover_below: 0.8\n"
    "    for: 2m\n"
    "    keep_firing_for: 1m\n"
    "    severity: critical\n"
    "    labels: {team: ops}\n"
    "    annotations: {summary: \"CPU {{ $value }} on {{ $labels.host }}\"}\n"
    "  - name: app_errors\n"
    "    kind: log\n"
    "    pattern: ERROR\n"
    "    window: 1m\n"
    "    op: '>='\n"
    "    threshold: 1\n"
    "    by: [host, file]\n"
    "  - name: app_timeouts\n"
    "    kind: log\n"
    "    pattern: 're:timeout after \\d+ms'\n"
    "  - name: disk_check\n"
    "    kind: check\n"
    "    check: disk_*\n"
    "    states: [warning, critical]\n"
    "    consecutive: 3\n"
    "  - name: big_orders\n"
    "    kind: event\n"
    "    event: order\n"
    "    where: ['amount>1000']\n"
    "  - name: metrics_stopped\n"
    "    kind: nodata\n"
    "    metric: node_load1\n"
    "  - name: agent_gone\n"
    "    kind: agent_down\n"
    "    for: 1m\n";

static void test_load_good(void **state)
{
    struct xl_ruleset set = {0};
    struct xl_err err;
    const struct xl_rule *r;
    const struct xl_label web[] = {{"role", "web"}, {"host", "web1"}};
    const struct xl_label db[] = {{"role", "db"}};
    bool cond, rec;
    char out[128];

    (void)state;
    if (xl_rules_load_buf("rules.d/a.yaml", good, strlen(good), &set, &err) != XL_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(set.n, 7);

    r = xl_ruleset_find(&set, "high_cpu");
    assert_non_null(r);
    assert_int_equal(r->kind, XL_RULE_METRIC);
    assert_string_equal(r->file, "rules.d/a.yaml");
    assert_int_equal(r->line, 2);
    assert_string_equal(r->metric, "node_cpu_usage_ratio");
    assert_true(xl_selector_match(r->match, web, 2));
    assert_false(xl_selector_match(r->match, db, 1));
    assert_int_equal(r->agg, XL_WAGG_AVG);
    assert_int_equal(r->window_ms, 300000);
    assert_int_equal(r->by.n, 1);
    assert_string_equal(r->by.v[0], "host");
    assert_int_equal(r->op, XL_RULE_GT);
    assert_true(r->threshold == 0.9);
    assert_true(r->has_recover && r->recover == 0.8);
    assert_int_equal(r->timing.for_ms, 120000);
    assert_int_equal(r->timing.keep_firing_for_ms, 60000);
    assert_int_equal(r->severity, XL_SEV_CRITICAL);
    assert_int_equal(r->labels.n, 1);
    assert_string_equal(r->labels.k[0], "team");
    assert_int_equal(r->annotations.n, 1);
    xl_tmpl_expand(r->annot_tmpl[0],
                   &(struct xl_tmpl_ctx){.name = r->name, .value = 0.93, .labels = web,
                                         .nlabels = 2},
                   out, sizeof(out));
    assert_string_equal(out, "CPU 0.93 on web1");
    xl_rule_cond(r, 0.95, &cond, &rec);
    assert_true(cond && !rec);
    xl_rule_cond(r, 0.85, &cond, &rec);
    assert_true(!cond && !rec);
    xl_rule_cond(r, 0.75, &cond, &rec);
    assert_true(!cond && rec);

    r = xl_ruleset_find(&set, "app_errors");
    assert_int_equal(r->kind, XL_RULE_LOG);
    assert_int_equal(r->agg, XL_WAGG_COUNT);
    assert_int_equal(r->window_ms, 60000);
    assert_int_equal(r->op, XL_RULE_GE);
    assert_int_equal(r->by.n, 2);
    assert_int_equal(r->severity, XL_SEV_WARNING);
    assert_true(xl_rule_log_match(r, "x ERROR y", 9));
    assert_false(xl_rule_log_match(r, "x error y", 9));
    xl_rule_cond(r, 0, &cond, &rec);
    assert_true(!cond && rec);

    r = xl_ruleset_find(&set, "app_timeouts");
    assert_int_equal(r->window_ms, 60000);
    assert_int_equal(r->op, XL_RULE_GE);
    assert_true(r->threshold == 1);
    assert_true(xl_rule_log_match(r, "a timeout after 30ms!", 21));
    assert_false(xl_rule_log_match(r, "a timeout after ms", 18));

    r = xl_ruleset_find(&set, "disk_check");
    assert_int_equal(r->kind, XL_RULE_CHECK);
    assert_int_equal(r->states, XL_RULE_STATE_BIT(1) | XL_RULE_STATE_BIT(2));
    assert_int_equal(r->consecutive, 3);
    assert_true(xl_rule_check_name_match(r, "disk_root"));
    assert_false(xl_rule_check_name_match(r, "load"));

    r = xl_ruleset_find(&set, "big_orders");
    assert_int_equal(r->nwhere, 1);
    {
        json_t *f = json_pack("{s:i}", "amount", 1500);
        assert_true(xl_event_where_match(&r->where[0], f));
        json_object_set_new(f, "amount", json_integer(10));
        assert_false(xl_event_where_match(&r->where[0], f));
        json_decref(f);
    }

    r = xl_ruleset_find(&set, "metrics_stopped");
    assert_int_equal(r->kind, XL_RULE_NODATA);
    assert_int_equal(r->timing.for_ms, 300000);
    r = xl_ruleset_find(&set, "agent_gone");
    assert_int_equal(r->kind, XL_RULE_AGENT_DOWN);
    assert_int_equal(r->timing.for_ms, 60000);
    assert_null(xl_ruleset_find(&set, "nope"));

    /* Loading again: every name is taken now, nothing is added. */
    assert_int_equal(xl_rules_load_buf("b.yaml", good, strlen(good), &set, &err), XL_EEXIST);
    assert_string_equal(err.msg, "b.yaml:2: rules[0].name: 'high_cpu' is already defined at "
                                 "rules.d/a.yaml:2");
    assert_int_equal(set.n, 7);
    xl_ruleset_free(&set);
    assert_int_equal(set.n, 0);
}

struct bad {
    const char *yaml;
    const char *msg; /* the whole message, or a prefix when it ends in '*' */
};

#define HEAD "rules:\n  - name: r\n"
#define M HEAD "    kind: metric\n    metric: m\n"

static const struct bad bads[] = {
    {"rules:\n  - kind: metric\n", "t.yaml:2: rules[0]: name: required"},
    {"rules:\n  - name: 'a b'\n    kind: log\n    pattern: x\n",
     "t.yaml:2: rules[0].name: 'a b' is not a rule name (1 to 128 of A-Z a-z 0-9 _ - . :)"},
    {HEAD, "t.yaml:2: rules[0]: kind: required (metric, log, check, event, nodata or agent_down)"},
    {HEAD "    kind: metrics\n",
     "t.yaml:3: rules[0].kind: 'metrics' is not one of metric|log|check|event|nodata|agent_down"},
    {HEAD "    kind: metric\n", "t.yaml:2: rules[0]: metric: required for kind metric"},
    {M "    op: '>'\n", "t.yaml:2: rules[0]: threshold: required for kind metric"},
    {M "    op: '=>'\n    threshold: 1\n",
     "t.yaml:5: rules[0].op: '=>' is not one of >|>=|<|<=|==|!="},
    {M "    op: '>'\n    threshold: high\n",
     "t.yaml:6: rules[0].threshold: expected a number, got 'high'"},
    {M "    op: '>'\n    threshold: 1\n    colour: red\n",
     "t.yaml:7: unknown key 'rules[0].colour' (known here: *"},
    {M "    op: '>'\n    threshold: 1\n    pattern: ERROR\n",
     "t.yaml:7: rules[0].pattern: not taken by kind metric"},
    {HEAD "    kind: log\n    pattern: x\n    agg: max\n",
     "t.yaml:5: rules[0].agg: not taken by kind log"},
    {HEAD "    kind: log\n    pattern: 're:(foo'\n",
     "t.yaml:4: rules[0].pattern: re:(foo: missing closing parenthesis at offset 4"},
    {HEAD "    kind: log\n    pattern: 're:'\n", "t.yaml:4: rules[0].pattern: empty regex"},
    {HEAD "    kind: log\n    pattern: ''\n", "t.yaml:4: rules[0].pattern: needs a value"},
    {M "    op: '>'\n    threshold: 1\n    match: '{host=~\"(x\"}'\n",
     "t.yaml:7: rules[0].match: byte 7: bad regex for label 'host': missing closing "
     "parenthesis (at regex offset 2)"},
    {M "    op: '>'\n    threshold: 1\n    match: '{host}'\n",
     "t.yaml:7: rules[0].match: byte 5: expected '=', '!=', '=~' or '!~'"},
    {M "    op: '>'\n    threshold: 1\n    window: 500ms\n",
     "t.yaml:7: rules[0].window: '500ms' is out of range (allowed 1s to 1d)"},
    {M "    op: '>'\n    threshold: 1\n    for: 8d\n",
     "t.yaml:7: rules[0].for: '8d' is out of range (allowed 0s to 7d)"},
    {M "    op: '>'\n    threshold: 1\n    for: soon\n",
     "t.yaml:7: rules[0].for: expected a duration like 500ms, 10s, 5m, 1h, got 'soon'"},
    {M "    op: '>'\n    threshold: 1\n    agg: median\n",
     "t.yaml:7: rules[0].agg: 'median' is not one of avg|min|max|last|rate|count|sum"},
    {M "    op: '>'\n    threshold: 0.9\n    recover_below: 0.95\n",
     "t.yaml:7: rules[0].recover_below: 0.95 is above the threshold 0.9"},
    {M "    op: '<'\n    threshold: 0.9\n    recover_below: 0.5\n",
     "t.yaml:7: rules[0].recover_below: needs op '>' or '>=' (recover_above goes with '<' and "
     "'<=')"},
    {M "    op: '<'\n    threshold: 10\n    recover_above: 5\n",
     "t.yaml:7: rules[0].recover_above: 5 is below the threshold 10"},
    {M "    op: '=='\n    threshold: 1\n    recover_above: 5\n",
     "t.yaml:7: rules[0].recover_above: needs op '<' or '<=' *"},
    {M "    op: '>'\n    threshold: 1\n    recover_below: 0\n    recover_above: 5\n",
     "t.yaml:8: rules[0].recover_above: give recover_below or recover_above, not both"},
    {M "    op: '>'\n    threshold: 1\n    by: [host, 'a-b']\n",
     "t.yaml:7: rules[0].by: 'a-b' is not a label name"},
    {M "    op: '>'\n    threshold: 1\n    by: [host, host]\n",
     "t.yaml:7: rules[0].by: 'host' given twice"},
    {M "    op: '>'\n    threshold: 1\n    labels: {alertname: x}\n",
     "t.yaml:7: rules[0].labels: 'alertname' is not a label name a rule may set"},
    {M "    op: '>'\n    threshold: 1\n    annotations:\n      summary: '{{ $valu }}'\n",
     "t.yaml:7: rules[0].annotations: summary: byte 3: unknown template action '$valu' "
     "(expected $value, $labels.NAME or $name)"},
    {M "    op: '>'\n    threshold: 1\n    annotations: {s: 'x {{ $value'}\n",
     "t.yaml:7: rules[0].annotations: s: byte 2: '{{' without '}}'"},
    {M "    op: '>'\n    threshold: 1\n    severity: page\n",
     "t.yaml:7: rules[0].severity: 'page' is not one of critical|warning|info"},
    {M "    op: '>'\n    threshold: 1\n    severity:\n",
     "t.yaml:7: rules[0].severity: needs a value"},
    {HEAD "    kind: metric\n    metric: '1bad'\n    op: '>'\n    threshold: 1\n",
     "t.yaml:4: rules[0].metric: '1bad' is not a metric name"},
    {HEAD "    kind: check\n    check: disk\n    states: [warning, broken]\n",
     "t.yaml:5: rules[0].states: 'broken' is not a check state (ok, warning, critical, "
     "unknown)"},
    {HEAD "    kind: check\n    check: disk\n    consecutive: 0\n",
     "t.yaml:5: rules[0].consecutive: '0' is out of range (allowed 1 to 1000)"},
    {HEAD "    kind: check\n    check: disk\n    window: 1m\n",
     "t.yaml:5: rules[0].window: not taken by kind check"},
    {HEAD "    kind: event\n    event: order\n    where: ['amount']\n",
     "t.yaml:5: rules[0].where: [0] *"},
    {HEAD "    kind: event\n", "t.yaml:2: rules[0]: event: required for kind event"},
    {HEAD "    kind: nodata\n", "t.yaml:2: rules[0]: nodata: give one of metric or check"},
    {HEAD "    kind: nodata\n    metric: a\n    check: b\n",
     "t.yaml:2: rules[0]: nodata: give one of metric or check"},
    {HEAD "    kind: agent_down\n    metric: a\n",
     "t.yaml:4: rules[0].metric: not taken by kind agent_down"},
    {"rules:\n  - name: a\n    kind: agent_down\n  - name: a\n    kind: agent_down\n",
     "t.yaml:4: rules[1].name: 'a' is already defined at t.yaml:2"},
    {"rules:\n  - name: a\n    kind: agent_down\n  - name: b\n    kind: agent_down\n"
     "    kind: log\n",
     "t.yaml:6: duplicate key 'kind'"},
    {"rules: [1]\n", "t.yaml:1: rules[0]: expected a mapping"},
    {"rule: []\n", "t.yaml:1: unknown key 'rule' (known here: rules)"},
    {"rules:\n  - name: [a\n", "t.yaml:3:1: *"},
};

static void test_load_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(*bads); i++) {
        struct xl_ruleset set = {0};
        struct xl_err err;
        const char *want = bads[i].msg;
        size_t wl = strlen(want);
        bool prefix = want[wl - 1] == '*';
        xl_rc rc = xl_rules_load_buf("t.yaml", bads[i].yaml, strlen(bads[i].yaml), &set, &err);

        if (rc == XL_OK)
            fail_msg("case %zu loaded:\n%s", i, bads[i].yaml);
        if (prefix ? strncmp(err.msg, want, wl - 1) != 0 : strcmp(err.msg, want) != 0)
            fail_msg("case %zu:\n got '%s'\nwant '%s'", i, err.msg, want);
        assert_int_equal(set.n, 0);
        assert_null(set.rules);
    }
}

static void test_empty_files(void **state)
{
    struct xl_ruleset set = {0};
    struct xl_err err;

    (void)state;
    assert_int_equal(xl_rules_load_buf("e.yaml", "", 0, &set, &err), XL_OK);
    assert_int_equal(xl_rules_load_buf("e.yaml", "rules: []\n", 10, &set, &err), XL_OK);
    assert_int_equal(xl_rules_load_buf("e.yaml", "rules:\n", 7, &set, &err), XL_OK);
    assert_int_equal(set.n, 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static void test_load_dir(void **state)
{
    const char *dir = *state;
    struct xl_ruleset set = {0};
    struct xl_err err;
    char want[600];

    write_file(dir, "b.yaml", "rules:\n  - name: two\n    kind: agent_down\n");
    write_file(dir, "a.yml", "rules:\n  - name: one\n    kind: agent_down\n");
    write_file(dir, "notes.txt", "not rules");
    write_file(dir, ".hidden.yaml", "garbage: [");
    assert_int_equal(xl_rules_load_dir(dir, &set, &err), XL_OK);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.rules[0].name, "one"); /* files in name order */
    assert_string_equal(set.rules[1].name, "two");
    xl_ruleset_free(&set);

    /* The same name in two files. */
    write_file(dir, "c.yaml", "# again\nrules:\n  - name: one\n    kind: agent_down\n");
    assert_int_equal(xl_rules_load_dir(dir, &set, &err), XL_EEXIST);
    snprintf(want, sizeof(want), "%s/c.yaml:3: rules[0].name: 'one' is already defined at %s/a.yml:2",
             dir, dir);
    assert_string_equal(err.msg, want);
    assert_int_equal(set.n, 0);
    assert_null(set.rules);

    assert_int_equal(xl_rules_load_dir("/nonexistent/rules.d", &set, &err), XL_ENOENT);
}

static void test_load_alloc_failure(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        struct xl_ruleset set = {0};
        struct xl_err err;
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = xl_rules_load_buf("a.yaml", good, strlen(good), &set, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK) {
            assert_int_equal(set.n, 7);
            xl_ruleset_free(&set);
            break;
        }
        assert_int_equal(set.n, 0);
        xl_ruleset_free(&set);
    }
}

/* ---- windows ---- */

#define S(x) ((int64_t)(x) * 1000)

static double eval(struct xl_window *w, int64_t now, enum xl_wagg a)
{
    double v = -12345;

    if (!xl_window_eval(w, now, a, &v))
        return NAN;
    return v;
}

static void test_window_aggs(void **state)
{
    struct xl_window w;
    static const double vals[] = {3, 1, 4, 1, 5};

    (void)state;
    xl_window_init(&w, S(60), 0);
    assert_true(isnan(eval(&w, T0, XL_WAGG_AVG)));
    assert_true(eval(&w, T0, XL_WAGG_COUNT) == 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(xl_window_add(&w, T0 + S(10 * i), vals[i]), XL_OK);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_AVG) == 14.0 / 5);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_MIN) == 1);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_MAX) == 5);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_LAST) == 5);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_SUM) == 14);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_COUNT) == 5);
    assert_int_equal(xl_window_last_ts(&w), T0 + S(40));

    /* Eviction: the window is (now - 60s, now]. At +60s the sample at 0
     * is out (ts <= now - window); at +100s only the one at +40 is left. */
    assert_true(eval(&w, T0 + S(59), XL_WAGG_COUNT) == 5);
    assert_true(eval(&w, T0 + S(60), XL_WAGG_COUNT) == 4);
    assert_true(eval(&w, T0 + S(60), XL_WAGG_MAX) == 5);
    assert_true(eval(&w, T0 + S(60), XL_WAGG_SUM) == 11);
    assert_true(eval(&w, T0 + S(99), XL_WAGG_COUNT) == 1);
    assert_true(eval(&w, T0 + S(100), XL_WAGG_COUNT) == 0);
    assert_true(isnan(eval(&w, T0 + S(100), XL_WAGG_LAST)));
    assert_int_equal(xl_window_len(&w), 0);

    /* Out of order: ignored and counted. */
    assert_int_equal(xl_window_add(&w, T0 + S(200), 1), XL_OK);
    assert_int_equal(xl_window_add(&w, T0 + S(199), 2), XL_ERANGE);
    assert_int_equal(w.late, 1);
    assert_true(eval(&w, T0 + S(200), XL_WAGG_SUM) == 1);
    xl_window_cleanup(&w);

    /* A NaN does not hide min/max, and makes the average NaN. */
    xl_window_init(&w, S(60), 0);
    xl_window_add(&w, T0, NAN);
    xl_window_add(&w, T0 + 1, 2);
    assert_true(eval(&w, T0 + 1, XL_WAGG_MIN) == 2);
    assert_true(isnan(eval(&w, T0 + 1, XL_WAGG_AVG)));
    xl_window_cleanup(&w);
}

static void test_window_rate(void **state)
{
    struct xl_window w;

    (void)state;
    xl_window_init(&w, S(300), 0);
    assert_true(isnan(eval(&w, T0, XL_WAGG_RATE)));
    xl_window_add(&w, T0, 100);
    assert_true(isnan(eval(&w, T0, XL_WAGG_RATE))); /* one sample: no rate */
    xl_window_add(&w, T0 + S(10), 150);
    assert_true(eval(&w, T0 + S(10), XL_WAGG_RATE) == 5);
    xl_window_add(&w, T0 + S(20), 250);
    assert_true(eval(&w, T0 + S(20), XL_WAGG_RATE) == 7.5);
    /* Reset: the counter restarted and counted 30 since. */
    xl_window_add(&w, T0 + S(30), 30);
    /* increases 50 + 100 + 30 = 180 over 30 s */
    assert_true(eval(&w, T0 + S(30), XL_WAGG_RATE) == 6);
    xl_window_add(&w, T0 + S(40), 90);
    assert_true(eval(&w, T0 + S(40), XL_WAGG_RATE) == 240.0 / 40);
    /* A flat counter has rate 0. */
    xl_window_cleanup(&w);
    xl_window_init(&w, S(300), 0);
    xl_window_add(&w, T0, 7);
    xl_window_add(&w, T0 + S(60), 7);
    assert_true(eval(&w, T0 + S(60), XL_WAGG_RATE) == 0);
    /* Two samples at the same time: no time, no rate. */
    xl_window_cleanup(&w);
    xl_window_init(&w, S(300), 0);
    xl_window_add(&w, T0, 1);
    xl_window_add(&w, T0, 2);
    assert_true(isnan(eval(&w, T0, XL_WAGG_RATE)));
    xl_window_cleanup(&w);
}

static void test_window_cap(void **state)
{
    struct xl_window w;

    (void)state;
    xl_window_init(&w, S(3600), 10);
    for (int i = 0; i < 25; i++)
        assert_int_equal(xl_window_add(&w, T0 + S(i), i), XL_OK);
    assert_int_equal(xl_window_len(&w), 10);
    assert_true(w.cap <= 10);
    assert_int_equal(w.dropped, 15);
    /* The newest ten: 15..24. */
    assert_true(eval(&w, T0 + S(24), XL_WAGG_MIN) == 15);
    assert_true(eval(&w, T0 + S(24), XL_WAGG_MAX) == 24);
    assert_true(eval(&w, T0 + S(24), XL_WAGG_RATE) == 1);
    /* Eviction across the ring's wrap point. */
    assert_true(eval(&w, T0 + S(3600 + 20), XL_WAGG_COUNT) == 4);
    assert_int_equal(xl_window_add(&w, T0 + S(3600 + 30), 99), XL_OK);
    assert_true(eval(&w, T0 + S(3600 + 30), XL_WAGG_LAST) == 99);
    assert_true(eval(&w, T0 + S(3600 + 30), XL_WAGG_COUNT) == 1);
    xl_window_cleanup(&w);

    /* Allocation failure: the sample is lost, the window still works. */
    xl_window_init(&w, S(60), 0);
    xl_alloc_fail_after(0);
    assert_int_equal(xl_window_add(&w, T0, 1), XL_ENOMEM);
    xl_alloc_fail_after(-1);
    assert_int_equal(xl_window_len(&w), 0);
    assert_int_equal(xl_window_add(&w, T0, 1), XL_OK);
    assert_true(eval(&w, T0, XL_WAGG_LAST) == 1);
    xl_window_cleanup(&w);
}

static void test_wagg_names(void **state)
{
    enum xl_wagg a;

    (void)state;
    for (int i = XL_WAGG_AVG; i <= XL_WAGG_SUM; i++) {
        assert_true(xl_wagg_parse(xl_wagg_str((enum xl_wagg)i), &a));
        assert_int_equal(a, i);
    }
    assert_false(xl_wagg_parse("median", &a));
}

static void test_counter_window(void **state)
{
    struct xl_counter_window c;

    (void)state;
    xl_cwin_init(&c, S(60));
    assert_int_equal(c.bucket_ms, 1000);
    assert_int_equal(xl_cwin_count(&c, T0), 0);
    xl_cwin_add(&c, T0, 1);
    xl_cwin_add(&c, T0 + 500, 2);
    xl_cwin_add(&c, T0 + S(30), 10);
    assert_int_equal(xl_cwin_count(&c, T0 + S(30)), 13);
    assert_int_equal(xl_cwin_count(&c, T0 + S(60) - 1), 13);
    /* The bucket of T0 leaves once the window no longer overlaps it. */
    assert_int_equal(xl_cwin_count(&c, T0 + S(60)), 13);
    assert_int_equal(xl_cwin_count(&c, T0 + S(61)), 10);
    /* Precise to a bucket: (30s, 90s] overlaps the bucket [30s, 31s). */
    assert_int_equal(xl_cwin_count(&c, T0 + S(90)), 10);
    assert_int_equal(xl_cwin_count(&c, T0 + S(91)), 0);
    /* Slots are reused: a burst a window later replaces old counts. */
    xl_cwin_add(&c, T0 + S(120), 5);
    assert_int_equal(xl_cwin_count(&c, T0 + S(120)), 5);
    /* Too old for the window: ignored. */
    xl_cwin_add(&c, T0 + S(30), 100);
    assert_int_equal(xl_cwin_count(&c, T0 + S(120)), 5);
    /* Heavy traffic costs no memory: a million events, one bucket. */
    for (int i = 0; i < 1000; i++)
        xl_cwin_add(&c, T0 + S(121), 1000);
    assert_int_equal(xl_cwin_count(&c, T0 + S(121)), 1000005);

    /* A long window: 60 buckets of a minute. */
    xl_cwin_init(&c, S(3600));
    assert_int_equal(c.bucket_ms, 60000);
    assert_int_equal(c.nb, 61);
    for (int i = 0; i < 120; i++)
        xl_cwin_add(&c, T0 + S(60 * i), 1);
    assert_int_equal(xl_cwin_count(&c, T0 + S(60 * 119)), 61);
}

/* ---- templates ---- */

static void test_templates(void **state)
{
    static const struct {
        const char *src;
        double v;
        const char *want;
    } cases[] = {
        {"CPU {{ $value }} on {{ $labels.host }}", 0.934, "CPU 0.934 on web1"},
        {"{{$value}}|{{$name}}|{{ $labels.nope }}|", 3, "3|high_cpu||"},
        {"big {{ $value }}", 1234567, "big 1234567"},
        {"tiny {{ $value }}", 1.0 / 3, "tiny 0.333333"},
        {"{{ $value }} {{ $value }}", NAN, "NaN NaN"},
        {"{{ $value }}", INFINITY, "+Inf"},
        {"{{ $value }}", -INFINITY, "-Inf"},
        {"plain { text } here", 0, "plain { text } here"},
        {"", 0, ""},
        {"{{ $labels.role }}{{ $labels.host }}", 0, "webweb1"},
    };
    const struct xl_label l[] = {{"host", "web1"}, {"role", "web"}};
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct xl_tmpl *t;
        struct xl_err err;
        struct xl_tmpl_ctx ctx = {.name = "high_cpu", .value = cases[i].v, .labels = l,
                                  .nlabels = 2};
        if (xl_tmpl_parse(cases[i].src, &t, &err) != XL_OK)
            fail_msg("%s: %s", cases[i].src, err.msg);
        assert_int_equal(xl_tmpl_expand(t, &ctx, out, sizeof(out)), strlen(cases[i].want));
        assert_string_equal(out, cases[i].want);
        xl_tmpl_free(t);
    }
}

static void test_template_bounds_and_errors(void **state)
{
    static const struct {
        const char *src;
        const char *msg;
    } bad[] = {
        {"{{ $valu }}", "byte 3: unknown template action '$valu' (expected $value, "
                        "$labels.NAME or $name)"},
        {"x {{ $labels. }}", "byte 5: unknown template action '$labels.' (expected $value, "
                             "$labels.NAME or $name)"},
        {"{{ $labels.a-b }}", "byte 12: bad label name in '$labels.a-b'"},
        {"{{ .Value }}", "byte 3: unknown template action '.Value' *"},
        {"ab {{ $value", "byte 3: '{{' without '}}'"},
        {"ab }} x", "byte 3: '}}' without '{{'"},
        {"{{ $value | humanize }}", "byte 3: unknown template action *"},
    };
    struct xl_tmpl *t;
    struct xl_err err;
    char out[8], big[400];
    struct xl_tmpl_ctx ctx = {.name = "n", .value = 123456789};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        size_t wl = strlen(bad[i].msg);
        bool prefix = bad[i].msg[wl - 1] == '*';
        assert_int_equal(xl_tmpl_parse(bad[i].src, &t, &err), XL_EPARSE);
        if (prefix ? strncmp(err.msg, bad[i].msg, wl - 1) != 0 : strcmp(err.msg, bad[i].msg))
            fail_msg("%s:\n got '%s'\nwant '%s'", bad[i].src, err.msg, bad[i].msg);
    }
    /* Bounded: cut, NUL-terminated, the full length returned. */
    assert_int_equal(xl_tmpl_parse("value={{ $value }}!", &t, &err), XL_OK);
    assert_int_equal(xl_tmpl_expand(t, &ctx, out, sizeof(out)), 16);
    assert_string_equal(out, "value=1");
    assert_int_equal(xl_tmpl_expand(t, &ctx, out, 1), 16);
    assert_string_equal(out, "");
    assert_int_equal(xl_tmpl_expand(t, &ctx, NULL, 0), 16);
    xl_tmpl_free(t);
    /* Too many parts. */
    big[0] = '\0';
    for (int i = 0; i < XL_TMPL_MAX_PARTS / 2 + 1; i++)
        strcat(big, "x{{$name}}");
    assert_int_equal(xl_tmpl_parse(big, &t, &err), XL_ETOOBIG);
}

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_rules_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdir_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_bad),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test_setup_teardown(test_load_dir, setup, teardown),
        cmocka_unit_test(test_load_alloc_failure),
        cmocka_unit_test(test_window_aggs),
        cmocka_unit_test(test_window_rate),
        cmocka_unit_test(test_window_cap),
        cmocka_unit_test(test_wagg_names),
        cmocka_unit_test(test_counter_window),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_template_bounds_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
