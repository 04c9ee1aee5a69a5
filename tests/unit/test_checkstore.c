/* Unit tests: the check store (src/server/store/checks.c): the state
 * machine (first result, change, same state, an older or equal result
 * ignored), the history of changes, the listing's order and filters,
 * history retention, reopen. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/store/checks.h"
#include "tmpdir_test_util.h"

#define T0 ((int64_t)1763715000000)
#define AGENT_A "0123456789abcdef0123456789abcdef"
#define AGENT_B "fedcba9876543210fedcba9876543210"

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_checks_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdir_teardown(state);
}

static struct xl_checkstore *open_cs(const char *dir, int64_t retention)
{
    char path[512];
    struct xl_checkstore_opts o = {.path = path, .history_retention_ms = retention};
    struct xl_checkstore *cs = NULL;
    struct xl_err err;

    snprintf(path, sizeof(path), "%s/checks.db", dir);
    if (xl_checkstore_open(&o, &cs, &err) != XL_OK)
        fail_msg("open %s: %s", path, err.msg);
    return cs;
}

static struct xl_check_rec rec(const char *agent, const char *host, const char *name,
                               enum xl_check_state st, int64_t ts, const char *output)
{
    return (struct xl_check_rec){
        .host = host, .agent_id = agent, .name = name, .state = st, .output = output, .ts_ms = ts};
}

static enum xl_check_outcome apply1(struct xl_checkstore *cs, struct xl_check_rec r)
{
    enum xl_check_outcome o;
    struct xl_err err;

    if (xl_checkstore_apply(cs, &r, 1, &o, &err) != XL_OK)
        fail_msg("apply: %s", err.msg);
    return o;
}

/* The listing and history as text, for compact comparisons. */
struct text {
    char s[4096];
};

static int list_cb(void *ctx, const struct xl_check_row *r)
{
    struct text *t = ctx;
    size_t n = strlen(t->s);

    snprintf(t->s + n, sizeof(t->s) - n, "%s/%s=%s@%lld/%lld:%s;", r->host, r->name,
             xl_check_state_str(r->state), (long long)(r->ts_ms - T0),
             (long long)(r->since_ms - T0), r->output);
    return 0;
}

static const char *list(struct xl_checkstore *cs, const char *host, const char *name, int state)
{
    static struct text t;
    struct xl_check_query q = {.host = host, .name = name, .state = state};
    struct xl_err err;

    t.s[0] = '\0';
    if (xl_checkstore_list(cs, &q, list_cb, &t, &err) != XL_OK)
        fail_msg("list: %s", err.msg);
    return t.s;
}

static int hist_cb(void *ctx, const struct xl_check_change *c)
{
    struct text *t = ctx;
    size_t n = strlen(t->s);

    snprintf(t->s + n, sizeof(t->s) - n, "%s/%s:%s>%s@%lld;", c->host, c->name,
             c->from ? c->from : "-", c->to, (long long)(c->ts_ms - T0));
    return 0;
}

static const char *history(struct xl_checkstore *cs, const struct xl_check_hist_query *q)
{
    static struct text t;
    struct xl_err err;

    t.s[0] = '\0';
    if (xl_checkstore_history(cs, q, hist_cb, &t, &err) != XL_OK)
        fail_msg("history: %s", err.msg);
    return t.s;
}

/* The state machine, table-driven: each step is a result and what it
 * should do, then the check's state and since. */
static void test_state_machine(void **state)
{
    static const struct {
        enum xl_check_state st;
        int64_t ts;
        enum xl_check_outcome want;
        const char *after; /* the listing afterwards */
    } steps[] = {
        {XL_CHECK_OK, 1000, XL_CHECK_CHANGED, "h/c=ok@1000/1000:r0;"}, /* first */
        {XL_CHECK_OK, 2000, XL_CHECK_SAME, "h/c=ok@2000/1000:r1;"},    /* same */
        {XL_CHECK_WARNING, 3000, XL_CHECK_CHANGED, "h/c=warning@3000/3000:r2;"},
        {XL_CHECK_CRITICAL, 2500, XL_CHECK_IGNORED, "h/c=warning@3000/3000:r2;"}, /* older */
        {XL_CHECK_CRITICAL, 3000, XL_CHECK_IGNORED, "h/c=warning@3000/3000:r2;"}, /* equal */
        {XL_CHECK_WARNING, 4000, XL_CHECK_SAME, "h/c=warning@4000/3000:r5;"},
        {XL_CHECK_OK, 5000, XL_CHECK_CHANGED, "h/c=ok@5000/5000:r6;"},
    };
    struct xl_checkstore *cs = open_cs(*state, 0);
    struct xl_check_hist_query all = {0};
    struct xl_checkstore_stats st;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char out[8];
        enum xl_check_outcome o;

        snprintf(out, sizeof(out), "r%zu", i);
        o = apply1(cs, rec(AGENT_A, "h", "c", steps[i].st, T0 + steps[i].ts, out));
        if (o != steps[i].want)
            fail_msg("step %zu: outcome %d, want %d", i, o, steps[i].want);
        assert_string_equal(list(cs, NULL, NULL, -1), steps[i].after);
    }
    /* History: newest first, the first result a change from nothing. */
    assert_string_equal(history(cs, &all),
                        "h/c:warning>ok@5000;h/c:ok>warning@3000;h/c:->ok@1000;");
    xl_checkstore_get_stats(cs, &st);
    assert_int_equal(st.checks, 1);
    assert_int_equal(st.results, 5);
    assert_int_equal(st.ignored, 2);
    assert_int_equal(st.changes, 3);
    xl_checkstore_close(cs);
}

/* Several results in one call, applied in order; kept across a reopen. */
static void test_batch_and_fields(void **state)
{
    struct xl_checkstore *cs = open_cs(*state, 0);
    struct xl_check_rec r[3] = {
        rec(AGENT_A, "web1", "disk", XL_CHECK_OK, T0 + 1, "a"),
        rec(AGENT_A, "web1", "disk", XL_CHECK_CRITICAL, T0 + 2, "b"),
        rec(AGENT_A, "web1", "disk", XL_CHECK_OK, T0 + 1, "resent"),
    };
    enum xl_check_outcome o[3];
    struct xl_err err;

    assert_int_equal(xl_checkstore_apply(cs, r, 3, o, &err), XL_OK);
    assert_int_equal(o[0], XL_CHECK_CHANGED);
    assert_int_equal(o[1], XL_CHECK_CHANGED);
    assert_int_equal(o[2], XL_CHECK_IGNORED);
    assert_string_equal(list(cs, NULL, NULL, -1), "web1/disk=critical@2/2:b;");
    xl_checkstore_close(cs);

    /* Reopened: all still there. */
    cs = open_cs(*state, 0);
    assert_string_equal(list(cs, "web1", "disk", XL_CHECK_CRITICAL), "web1/disk=critical@2/2:b;");
    xl_checkstore_close(cs);
}

static int fields_cb(void *ctx, const struct xl_check_row *r)
{
    assert_string_equal(r->long_output, "more");
    assert_true(r->has_exit_code && r->exit_code == 2);
    assert_true(r->has_duration && r->duration_ms == 35);
    assert_string_equal(r->source, "conf/cron.d/check_disk");
    assert_string_equal(r->agent_id, AGENT_A);
    (*(int *)ctx)++;
    return 0;
}

static void test_optional_fields(void **state)
{
    struct xl_checkstore *cs = open_cs(*state, 0);
    struct xl_check_rec r = rec(AGENT_A, "web1", "disk", XL_CHECK_CRITICAL, T0, "b");
    struct xl_check_query q = {.state = -1};
    struct xl_err err;
    int n = 0;

    r.long_output = "more";
    r.has_exit_code = true;
    r.exit_code = 2;
    r.has_duration = true;
    r.duration_ms = 35;
    r.source = "conf/cron.d/check_disk";
    apply1(cs, r);
    assert_int_equal(xl_checkstore_list(cs, &q, fields_cb, &n, &err), XL_OK);
    assert_int_equal(n, 1);
    xl_checkstore_close(cs);
}

/* Most severe first, then host, then name; filters. Checks are per agent:
 * the same name on two agents is two checks. */
static void test_order_and_filters(void **state)
{
    struct xl_checkstore *cs = open_cs(*state, 0);

    apply1(cs, rec(AGENT_A, "web1", "load", XL_CHECK_OK, T0, "o"));
    apply1(cs, rec(AGENT_A, "web1", "disk", XL_CHECK_WARNING, T0, "w"));
    apply1(cs, rec(AGENT_B, "db1", "pg", XL_CHECK_UNKNOWN, T0, "u"));
    apply1(cs, rec(AGENT_B, "db1", "disk", XL_CHECK_CRITICAL, T0, "c"));
    apply1(cs, rec(AGENT_B, "db1", "load", XL_CHECK_OK, T0, "o"));
    apply1(cs, rec(AGENT_A, "web1", "apache", XL_CHECK_CRITICAL, T0, "c"));
    assert_string_equal(list(cs, NULL, NULL, -1),
                        "db1/disk=critical@0/0:c;web1/apache=critical@0/0:c;"
                        "web1/disk=warning@0/0:w;db1/pg=unknown@0/0:u;"
                        "db1/load=ok@0/0:o;web1/load=ok@0/0:o;");
    assert_string_equal(list(cs, "db1", NULL, -1),
                        "db1/disk=critical@0/0:c;db1/pg=unknown@0/0:u;db1/load=ok@0/0:o;");
    assert_string_equal(list(cs, NULL, "load", -1), "db1/load=ok@0/0:o;web1/load=ok@0/0:o;");
    assert_string_equal(list(cs, NULL, NULL, XL_CHECK_CRITICAL),
                        "db1/disk=critical@0/0:c;web1/apache=critical@0/0:c;");
    assert_string_equal(list(cs, "nohost", NULL, -1), "");
    xl_checkstore_close(cs);
}

static void test_history_filters_and_retention(void **state)
{
    struct xl_checkstore *cs = open_cs(*state, 10000);
    struct xl_check_hist_query q = {0};
    struct xl_err err;

    for (int i = 0; i < 6; i++)
        apply1(cs, rec(AGENT_A, "web1", i % 2 ? "a" : "b",
                       i % 4 < 2 ? XL_CHECK_OK : XL_CHECK_WARNING, T0 + i * 1000, "x"));
    /* a: ok@1000, warning@3000, ok@5000; b: ok@0, warning@2000, ok@4000 */
    assert_string_equal(history(cs, &q), "web1/a:warning>ok@5000;web1/b:warning>ok@4000;"
                                         "web1/a:ok>warning@3000;web1/b:ok>warning@2000;"
                                         "web1/a:->ok@1000;web1/b:->ok@0;");
    q.name = "a";
    assert_string_equal(history(cs, &q),
                        "web1/a:warning>ok@5000;web1/a:ok>warning@3000;web1/a:->ok@1000;");
    q.from_ms = T0 + 2000;
    q.to_ms = T0 + 4000;
    assert_string_equal(history(cs, &q), "web1/a:ok>warning@3000;");
    q = (struct xl_check_hist_query){.limit = 2};
    assert_string_equal(history(cs, &q), "web1/a:warning>ok@5000;web1/b:warning>ok@4000;");
    q = (struct xl_check_hist_query){.host = "db1"};
    assert_string_equal(history(cs, &q), "");
    /* Retention 10 s at T0 + 13.5 s: changes before T0 + 3.5 s go; the
     * current states stay. */
    assert_int_equal(xl_checkstore_maintain(cs, T0 + 13500, &err), XL_OK);
    q = (struct xl_check_hist_query){0};
    assert_string_equal(history(cs, &q), "web1/a:warning>ok@5000;web1/b:warning>ok@4000;");
    assert_string_equal(list(cs, NULL, NULL, -1), "web1/a=ok@5000/5000:x;web1/b=ok@4000/4000:x;");
    xl_checkstore_close(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_filters_and_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
