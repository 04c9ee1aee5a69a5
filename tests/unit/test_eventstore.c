/* Unit tests: the event store (src/server/store/events.c): appends and
 * their dedup on (agent, seq, idx), every query filter, paging, field
 * conditions (parsed, evaluated by SQLite and in memory, the two agreeing),
 * retention, reopen. */
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

#include "server/store/events.h"
#include "tmpdir_test_util.h"

#define T0 ((int64_t)1763715000000)
#define AGENT_A "0123456789abcdef0123456789abcdef"
#define AGENT_B "fedcba9876543210fedcba9876543210"

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_events_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdir_teardown(state);
}

static struct xl_eventstore *open_es(const char *dir, int64_t retention)
{
    char path[512];
    struct xl_eventstore_opts o = {.path = path, .retention_ms = retention};
    struct xl_eventstore *es = NULL;
    struct xl_err err;

    snprintf(path, sizeof(path), "%s/events.db", dir);
    if (xl_eventstore_open(&o, &es, &err) != XL_OK)
        fail_msg("open %s: %s", path, err.msg);
    return es;
}

static struct xl_event_rec ev(const char *agent, const char *host, const char *type, int64_t ts,
                              const char *fields, uint64_t seq, uint32_t idx)
{
    return (struct xl_event_rec){.ts_ms = ts,
                                 .host = host,
                                 .agent_id = agent,
                                 .type = type,
                                 .fields = fields,
                                 .seq = seq,
                                 .idx = idx};
}

static void append(struct xl_eventstore *es, const struct xl_event_rec *r, size_t n, int64_t *ids)
{
    struct xl_err err;

    if (xl_eventstore_append(es, r, n, ids, &err) != XL_OK)
        fail_msg("append: %s", err.msg);
}

/* A page as "host/type@ts:fields;" text. */
struct page {
    char s[4096];
    int64_t last_id;
};

static int row_cb(void *ctx, const struct xl_event_row *r)
{
    struct page *p = ctx;
    size_t n = strlen(p->s);

    snprintf(p->s + n, sizeof(p->s) - n, "%s/%s@%lld:%s;", r->host, r->type,
             (long long)(r->ts_ms - T0), r->fields);
    p->last_id = r->id;
    return 0;
}

static const char *search(struct xl_eventstore *es, const struct xl_event_query *q, int64_t *next)
{
    static struct page p;
    struct xl_err err;

    memset(&p, 0, sizeof(p));
    if (xl_eventstore_search(es, q, row_cb, &p, next, &err) != XL_OK)
        fail_msg("search: %s", err.msg);
    return p.s;
}

static void test_append_dedup(void **state)
{
    struct xl_eventstore *es = open_es(*state, 0);
    struct xl_event_rec r[3] = {
        ev(AGENT_A, "web1", "demo", T0, "{\"n\":1}", 7, 0),
        ev(AGENT_A, "web1", "demo", T0 + 1, "{\"n\":2}", 7, 2),
        ev(AGENT_B, "db1", "demo", T0 + 2, "{\"n\":3}", 7, 0), /* another agent: new */
    };
    struct xl_event_query all = {0};
    struct xl_eventstore_stats st;
    int64_t ids[3], ids2[3];

    append(es, r, 3, ids);
    assert_true(ids[0] > 0 && ids[1] > ids[0] && ids[2] > ids[1]);
    /* The batch again: nothing new, ids 0. */
    append(es, r, 3, ids2);
    assert_true(ids2[0] == 0 && ids2[1] == 0 && ids2[2] == 0);
    assert_string_equal(search(es, &all, NULL),
                        "db1/demo@2:{\"n\":3};web1/demo@1:{\"n\":2};web1/demo@0:{\"n\":1};");
    /* seq 0 is "not numbered": never deduplicated. */
    r[0].seq = 0;
    append(es, r, 1, ids);
    append(es, r, 1, ids2);
    assert_true(ids[0] > 0 && ids2[0] > ids[0]);
    xl_eventstore_get_stats(es, &st);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.inserted, 5);
    assert_int_equal(st.duplicates, 3);
    xl_eventstore_close(es);

    /* Reopened: the rows, the dedup and the row count are still there. */
    es = open_es(*state, 0);
    r[0].seq = 7;
    append(es, r, 3, ids2);
    assert_true(ids2[0] == 0 && ids2[1] == 0 && ids2[2] == 0);
    xl_eventstore_get_stats(es, &st);
    assert_int_equal(st.rows, 5);
    xl_eventstore_close(es);
}

static void fill(struct xl_eventstore *es)
{
    const struct xl_event_rec r[] = {
        ev(AGENT_A, "web1", "demo", T0 + 0, "{\"n\":3,\"s\":\"abc\",\"ok\":true}", 1, 0),
        ev(AGENT_A, "web1", "deploy", T0 + 1000, "{\"version\":\"1.2\"}", 1, 1),
        ev(AGENT_A, "web1", "demo", T0 + 2000, "{\"n\":10,\"s\":\"abd\",\"ok\":false}", 1, 2),
        ev(AGENT_B, "db1", "demo", T0 + 3000, "{\"n\":\"7\",\"deep\":{\"x\":1}}", 1, 0),
        ev(AGENT_B, "db1", "demo", T0 + 3000, "{\"n\":7.5}", 1, 1),
        /* arrived late: an older ts, a newer id */
        ev(AGENT_A, "web1", "demo", T0 - 5000, "{\"n\":-1}", 2, 0),
    };

    append(es, r, sizeof(r) / sizeof(r[0]), NULL);
}

static void test_filters_and_paging(void **state)
{
    struct xl_eventstore *es = open_es(*state, 0);
    struct xl_event_query q = {0};
    int64_t next, ids[1];
    char seen[4096] = "";
    struct xl_err err;

    fill(es);
    /* Newest first by ts (then id), whatever the arrival order. */
    assert_string_equal(
        search(es, &q, &next),
        "db1/demo@3000:{\"n\":7.5};db1/demo@3000:{\"n\":\"7\",\"deep\":{\"x\":1}};"
        "web1/demo@2000:{\"n\":10,\"s\":\"abd\",\"ok\":false};"
        "web1/deploy@1000:{\"version\":\"1.2\"};"
        "web1/demo@0:{\"n\":3,\"s\":\"abc\",\"ok\":true};web1/demo@-5000:{\"n\":-1};");
    assert_int_equal(next, 0);
    q.type = "deploy";
    assert_string_equal(search(es, &q, NULL), "web1/deploy@1000:{\"version\":\"1.2\"};");
    q = (struct xl_event_query){.host = "db1"};
    assert_string_equal(
        search(es, &q, NULL),
        "db1/demo@3000:{\"n\":7.5};db1/demo@3000:{\"n\":\"7\",\"deep\":{\"x\":1}};");
    q = (struct xl_event_query){.type = "demo", .host = "web1", .from_ms = T0, .to_ms = T0 + 2000};
    assert_string_equal(search(es, &q, NULL),
                        "web1/demo@2000:{\"n\":10,\"s\":\"abd\",\"ok\":false};"
                        "web1/demo@0:{\"n\":3,\"s\":\"abc\",\"ok\":true};");
    /* Pages of 2 cover everything once, in order (ties on ts included). */
    q = (struct xl_event_query){.limit = 2};
    for (int pages = 0;; pages++) {
        const char *p = search(es, &q, &next);

        assert_true(pages < 4);
        strcat(seen, p);
        if (!next)
            break;
        q.before_id = next;
    }
    q = (struct xl_event_query){0};
    assert_string_equal(seen, search(es, &q, NULL));
    /* A cursor that names no event. */
    q.before_id = 9999;
    assert_int_equal(xl_eventstore_search(es, &q, row_cb, &(struct page){0}, &next, &err),
                     XL_ENOENT);
    assert_non_null(strstr(err.msg, "no event 9999"));
    /* A new event gets a larger id. */
    append(
        es,
        &(struct xl_event_rec){
            .ts_ms = T0, .host = "h", .agent_id = AGENT_A, .type = "t", .fields = "{}", .seq = 3},
        1, ids);
    assert_int_equal(ids[0], 7);
    xl_eventstore_close(es);
}

/* KEY OP VALUE: what parses and how, what does not and why. */
static void test_where_parse(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        const char *path;
        enum xl_where_op op;
        enum xl_where_kind kind;
        const char *str; /* or the message */
    } cases[] = {
        {"n=3", XL_OK, "$.\"n\"", XL_WHERE_EQ, XL_WHERE_NUM, NULL},
        {" n >= -1.5e2 ", XL_OK, "$.\"n\"", XL_WHERE_GE, XL_WHERE_NUM, NULL},
        {"a.b-c:d!=x y", XL_OK, "$.\"a\".\"b-c:d\"", XL_WHERE_NE, XL_WHERE_STR, "x y"},
        {"k<=\"3\"", XL_OK, "$.\"k\"", XL_WHERE_LE, XL_WHERE_STR, "3"},
        {"k>0x10", XL_OK, "$.\"k\"", XL_WHERE_GT, XL_WHERE_STR, "0x10"},
        {"k<inf", XL_OK, "$.\"k\"", XL_WHERE_LT, XL_WHERE_STR, "inf"},
        {"ok=true", XL_OK, "$.\"ok\"", XL_WHERE_EQ, XL_WHERE_BOOL, NULL},
        {"k=", XL_OK, "$.\"k\"", XL_WHERE_EQ, XL_WHERE_STR, ""},
        {"k==1", XL_OK, "$.\"k\"", XL_WHERE_EQ, XL_WHERE_STR, "=1"},
        {"novalue", XL_EINVAL, NULL, 0, 0, "expected KEY OP VALUE"},
        {"=1", XL_EINVAL, NULL, 0, 0, "the key is missing"},
        {"a!1", XL_EINVAL, NULL, 0, 0, "'!' must be followed by '='"},
        {"a b=1", XL_EINVAL, NULL, 0, 0, "' ' is not allowed"},
        {"a\"=1", XL_EINVAL, NULL, 0, 0, "'\"' is not allowed"},
        {"a..b=1", XL_EINVAL, NULL, 0, 0, "an empty name"},
        {".a=1", XL_EINVAL, NULL, 0, 0, "an empty name"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_event_where w;
        struct xl_err err = {0};
        xl_rc rc = xl_event_where_parse(cases[i].in, &w, &err);

        if (rc != cases[i].rc)
            fail_msg("case %zu '%s': rc %d (%s)", i, cases[i].in, rc, err.msg);
        if (rc != XL_OK) {
            if (!strstr(err.msg, cases[i].str))
                fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].str);
            continue;
        }
        assert_string_equal(w.path, cases[i].path);
        assert_int_equal(w.op, cases[i].op);
        assert_int_equal(w.kind, cases[i].kind);
        if (cases[i].str)
            assert_string_equal(w.str, cases[i].str);
        xl_event_where_cleanup(&w);
    }
}

/* Every condition selects the same events in SQL and in memory. */
static void test_where_sql_and_memory_agree(void **state)
{
    static const char *const fields[] = {
        "{\"n\":3,\"s\":\"abc\",\"ok\":true}",
        "{\"n\":10,\"s\":\"abd\",\"ok\":false}",
        "{\"n\":\"7\",\"deep\":{\"x\":1}}",
        "{\"n\":7.5,\"s\":\"ab\"}",
        "{\"n\":-1,\"s\":\"\"}",
        "{}",
        "{\"deep\":{\"x\":\"1\"}}",
        "{\"n\":null,\"s\":\"b\"}",
    };
    static const char *const conds[] = {
        "n=3",     "n!=3",     "n>3",      "n>=7.5",  "n<7",      "n<=-1",     "n=7",
        "n=\"7\"", "n!=\"7\"", "s=abc",    "s>ab",    "s<abd",    "s>=",       "s!=abc",
        "ok=true", "ok!=true", "ok=false", "ok<true", "deep.x=1", "deep.x!=1", "deep.x=\"1\"",
        "nope=1",  "nope!=1",  "s=1",      "n>abc",
    };
    size_t nf = sizeof(fields) / sizeof(fields[0]);
    struct xl_eventstore *es = open_es(*state, 0);
    struct xl_event_rec r[8];
    json_t *parsed[8];

    for (size_t i = 0; i < nf; i++) {
        r[i] = ev(AGENT_A, "h", "t", T0 + (int64_t)i, fields[i], 1, (uint32_t)i);
        parsed[i] = json_loads(fields[i], 0, NULL);
        assert_non_null(parsed[i]);
    }
    append(es, r, nf, NULL);
    for (size_t c = 0; c < sizeof(conds) / sizeof(conds[0]); c++) {
        struct xl_event_where w;
        struct xl_event_query q = {0};
        struct xl_err err;
        char want[4096] = "";

        assert_int_equal(xl_event_where_parse(conds[c], &w, &err), XL_OK);
        for (size_t i = nf; i > 0; i--) {
            if (xl_event_where_match(&w, parsed[i - 1])) {
                size_t n = strlen(want);
                snprintf(want + n, sizeof(want) - n, "h/t@%zu:%s;", i - 1, fields[i - 1]);
            }
        }
        q.where = &w;
        q.nwhere = 1;
        if (strcmp(search(es, &q, NULL), want) != 0)
            fail_msg("'%s': SQL gives %s, memory %s", conds[c], search(es, &q, NULL), want);
        xl_event_where_cleanup(&w);
    }
    for (size_t i = 0; i < nf; i++)
        json_decref(parsed[i]);
    xl_eventstore_close(es);
}

/* Conditions that are easy to get wrong, spelled out. */
static void test_where_semantics(void **state)
{
    static const struct {
        const char *cond, *fields;
        bool want;
    } cases[] = {
        {"n=3", "{\"n\":3}", true},
        {"n=3", "{\"n\":3.0}", true},
        {"n=3", "{\"n\":\"3\"}", false}, /* a number compares with numbers only */
        {"n=\"3\"", "{\"n\":\"3\"}", true},
        {"n>2", "{\"n\":\"9\"}", false},
        {"n!=3", "{}", true}, /* != is "not =" */
        {"n>2", "{}", false},
        {"s>a", "{\"s\":\"b\"}", true},
        {"s<b", "{\"s\":\"ab\"}", true},
        {"ok=true", "{\"ok\":1}", false},
        {"a.b=1", "{\"a\":{\"b\":1}}", true},
        {"a.b=1", "{\"a\":[1]}", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_event_where w;
        struct xl_err err;
        json_t *f = json_loads(cases[i].fields, 0, NULL);

        assert_int_equal(xl_event_where_parse(cases[i].cond, &w, &err), XL_OK);
        if (xl_event_where_match(&w, f) != cases[i].want)
            fail_msg("case %zu: %s on %s", i, cases[i].cond, cases[i].fields);
        xl_event_where_cleanup(&w);
        json_decref(f);
    }
}

static void test_retention(void **state)
{
    struct xl_eventstore *es = open_es(*state, 10000);
    struct xl_event_query q = {0};
    struct xl_eventstore_stats st;
    struct xl_err err;

    fill(es);
    /* At T0 + 12 s, events before T0 + 2 s go. */
    assert_int_equal(xl_eventstore_maintain(es, T0 + 12000, &err), XL_OK);
    assert_string_equal(search(es, &q, NULL),
                        "db1/demo@3000:{\"n\":7.5};db1/demo@3000:{\"n\":\"7\",\"deep\":{\"x\":1}};"
                        "web1/demo@2000:{\"n\":10,\"s\":\"abd\",\"ok\":false};");
    xl_eventstore_get_stats(es, &st);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.deleted, 3);
    xl_eventstore_close(es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_paging, setup, teardown),
        cmocka_unit_test(test_where_parse),
        cmocka_unit_test_setup_teardown(test_where_sql_and_memory_agree, setup, teardown),
        cmocka_unit_test(test_where_semantics),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
