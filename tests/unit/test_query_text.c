/* Unit tests of the text query as the live stream uses it: the search
 * syntax (store/logs_query.h) parsed once and evaluated in memory on each
 * published line. Table-driven: which lines each query matches, which
 * queries are refused, and, the point of it, that the in-memory evaluation
 * picks exactly the lines the store's full-text search returns for the
 * same query, so `xluo logs --grep Q` and `xluo logs -f --grep Q` agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "server/store/logs.h"
#include "server/store/logs_query.h"

/* The lines every query runs against; a query's expected matches are a
 * bit mask over this array. */
static const char *const lines[] = {
    /* 0 */ "2026-11-21 ERROR timeout after 30ms",
    /* 1 */ "2026-11-21 WARN disk almost full",
    /* 2 */ "2026-11-21 INFO request served in 12ms",
    /* 3 */ "error: connection refused (errno=111)",
    /* 4 */ "Errors happened: 3",
    /* 5 */ "GET /api/v1/logs?host=web1 200",
    /* 6 */ "user_id=42 logged in",
    /* 7 */ "timeouts are configured per route",
    /* 8 */ "caf\xc3\xa9 ouvert",
    /* 9 */ "",
};
#define NLINES (sizeof(lines) / sizeof(lines[0]))
#define L(i) (1u << (i))

static const struct {
    const char *q;
    unsigned want;
} match_cases[] = {
    /* words: whole words, any case, all must occur */
    {"error", L(0) | L(3)},
    {"ERROR", L(0) | L(3)},
    {"errors", L(4)},
    {"error timeout", L(0)},
    {"timeout error", L(0)},
    {"30ms", L(0)},
    {"30", 0},
    {"web1", L(5)},
    {"v1", L(5)},
    {"42", L(6)},
    {"user", L(6)}, /* '_' separates words */
    /* prefix */
    {"err*", L(0) | L(3) | L(4)},
    {"time*", L(0) | L(7)},
    {"TIMEOUT*", L(0) | L(7)},
    {"caf*", L(8)},
    /* phrases */
    {"\"timeout after\"", L(0)},
    {"\"after timeout\"", 0},
    {"\"connection refused\"", L(3)},
    {"\"api v1 logs\"", L(5)},
    {"\"almost fu\"*", L(1)},
    {"\"served in\"", L(2)},
    {"user_id", L(6)}, /* a word with separators is a phrase */
    {"api/v1", L(5)},
    /* operators */
    {"error OR warn", L(0) | L(1) | L(3)},
    {"error AND refused", L(3)},
    {"error NOT timeout", L(3)},
    {"NOT error", ~(L(0) | L(3)) & (L(NLINES) - 1)},
    {"(error OR warn) NOT disk", L(0) | L(3)},
    {"error OR warn disk", L(0) | L(1) | L(3)},
    {"(error OR info) served", L(2)},
    {"(error OR info) 30ms", L(0)},
    {"and", 0}, /* lower case: a word */
    {"caf\xc3\xa9", L(8)},
};

static unsigned mem_matches(const struct xl_logq *q)
{
    unsigned got = 0;

    for (size_t i = 0; i < NLINES; i++)
        if (xl_logq_match(q, lines[i], strlen(lines[i])))
            got |= L(i);
    return got;
}

static void test_match(void **state)
{
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        struct xl_logq *q = NULL;
        struct xl_err err = {0};
        unsigned got;

        if (xl_logq_compile(match_cases[i].q, &q, &err) != XL_OK)
            fail_msg("compile(%s): %s", match_cases[i].q, err.msg);
        got = mem_matches(q);
        if (got != match_cases[i].want)
            fail_msg("%s: matched lines %#x, want %#x", match_cases[i].q, got, match_cases[i].want);
        xl_logq_free(q);
    }
}

/* Refused queries: the stream answers 400 for them, as search does. */
static void test_refused(void **state)
{
    static const char *const bad[] = {
        "",         "   ",      "\"open", "(error",    "error)", "()",
        "error OR", "OR error", "AND",    "error AND", "NOT",    "error OR NOT warn",
        "- . /",    "\"...\"",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xl_logq *q = NULL;
        struct xl_err err = {0};

        if (xl_logq_compile(bad[i], &q, &err) != XL_EINVAL || q)
            fail_msg("compile(%s) was accepted", bad[i]);
        if (!err.msg[0])
            fail_msg("compile(%s): no message", bad[i]);
    }
}

/* Limits: nesting and length are bounded, the evaluation never recurses
 * without end. */
static void test_limits(void **state)
{
    char deep[256], longq[XL_LOGQ_MAX_LEN + 2];
    struct xl_logq *q = NULL;
    size_t n = 0;

    for (int i = 0; i < 100; i++)
        deep[n++] = '(';
    deep[n++] = 'a';
    for (int i = 0; i < 100; i++)
        deep[n++] = ')';
    deep[n] = '\0';
    assert_int_equal(xl_logq_compile(deep, &q, NULL), XL_EINVAL);
    memset(longq, 'a', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    assert_int_equal(xl_logq_compile(longq, &q, NULL), XL_EINVAL);
    assert_null(q);
}

/* Allocation failures: XL_ENOMEM, nothing leaked (ASan), then success. */
static void test_oom(void **state)
{
    for (long n = 0; n < 64; n++) {
        struct xl_logq *q = NULL;
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = xl_logq_compile("(error OR \"time out\") NOT disk* x", &q, NULL);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK) {
            assert_true(xl_logq_match(q, "time out x", 10));
            xl_logq_free(q);
            return;
        }
        assert_int_equal(rc, XL_ENOMEM);
        assert_null(q);
    }
    fail_msg("the compile never succeeded");
}

/* ---- the same answers as the store's search ---- */

struct store_fixture {
    char dir[64];
    struct xl_logstore *ls;
};

static int store_setup(void **state)
{
    static struct store_fixture f;
    struct xl_logstore_opts o = {0};
    struct xl_log_rec recs[NLINES];
    struct xl_err err = {0};
    char path[128];

    snprintf(f.dir, sizeof(f.dir), "/tmp/xl-test-qtext-XXXXXX");
    if (!mkdtemp(f.dir))
        return -1;
    snprintf(path, sizeof(path), "%s/logs.db", f.dir);
    o.path = path;
    if (xl_logstore_open(&o, &f.ls, &err) != XL_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    for (size_t i = 0; i < NLINES; i++)
        recs[i] = (struct xl_log_rec){.host = "h",
                                      .agent_id = "0123456789abcdef0123456789abcdef",
                                      .input = "app",
                                      .path = "/var/log/app.log",
                                      .file_uid = 1,
                                      .offset = i * 100,
                                      .ts_ms = 1763715010000 + (int64_t)i,
                                      .line = lines[i],
                                      .len = strlen(lines[i])};
    if (xl_logstore_append(f.ls, recs, NLINES, NULL, &err) != XL_OK) {
        fprintf(stderr, "append: %s\n", err.msg);
        return -1;
    }
    *state = &f;
    return 0;
}

static int store_teardown(void **state)
{
    struct store_fixture *f = *state;
    char cmd[128];

    xl_logstore_close(f->ls);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int collect_row(void *ctx, const struct xl_log_row *r)
{
    unsigned *got = ctx;

    for (size_t i = 0; i < NLINES; i++)
        if (r->len == strlen(lines[i]) && memcmp(r->line, lines[i], r->len) == 0)
            *got |= L(i);
    return 0;
}

static void test_agrees_with_search(void **state)
{
    struct store_fixture *f = *state;

    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        struct xl_log_query lq = {.text = match_cases[i].q, .limit = 1000};
        struct xl_logq *q = NULL;
        struct xl_err err = {0};
        unsigned mem, store = 0;

        assert_int_equal(xl_logq_compile(match_cases[i].q, &q, &err), XL_OK);
        mem = mem_matches(q);
        xl_logq_free(q);
        if (xl_logstore_search(f->ls, &lq, collect_row, &store, NULL, &err) != XL_OK)
            fail_msg("search(%s): %s", match_cases[i].q, err.msg);
        if (mem != store)
            fail_msg("%s: in memory %#x, search %#x", match_cases[i].q, mem, store);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_oom),
        cmocka_unit_test_setup_teardown(test_agrees_with_search, store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
