/* Unit tests: the log store (src/server/store/logs.c) and its text query
 * (logs_query.c): appends and dedup, every search filter, full-text
 * syntax, cursor paging, histograms, retention by age and size, concurrent
 * appends, reopen, allocation failures. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "server/store/logs.h"
#include "server/store/logs_query.h"
#include "tmpdir_test_util.h"

#define T0 ((int64_t)1763715000000) /* a whole minute */
#define MIN ((int64_t)60000)
#define AGENT_A "0123456789abcdef0123456789abcdef"
#define AGENT_B "fedcba9876543210fedcba9876543210"

/* ---- fixtures and helpers ---- */

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_logs_XXXXXX");
}

static int teardown(void **state)
{
    xl_alloc_fail_after(-1);
    return tmpdir_teardown(state);
}

static char *db_path(const char *dir)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/logs.db", dir);
    return path;
}

static struct xl_logstore *open_ls(const char *dir, int64_t retention, int64_t max_bytes)
{
    struct xl_logstore_opts o = {.path = db_path(dir),
                                 .retention_ms = retention,
                                 .max_bytes = max_bytes,
                                 .maintain_interval_ms = 3600000};
    struct xl_logstore *ls = NULL;
    struct xl_err err;

    if (xl_logstore_open(&o, &ls, &err) != XL_OK)
        fail_msg("open %s: %s", o.path, err.msg);
    return ls;
}

/* A record with defaults; the line is a C string. */
static struct xl_log_rec rec(const char *host, const char *input, const char *path, uint64_t uid,
                             uint64_t off, int64_t ts, const char *line)
{
    return (struct xl_log_rec){.host = host,
                               .agent_id = AGENT_A,
                               .input = input,
                               .path = path,
                               .file_uid = uid,
                               .offset = off,
                               .ts_ms = ts,
                               .line = line,
                               .len = strlen(line)};
}

static void append_ok(struct xl_logstore *ls, const struct xl_log_rec *r, size_t n, int64_t *ids)
{
    struct xl_err err;

    if (xl_logstore_append(ls, r, n, ids, &err) != XL_OK)
        fail_msg("append: %s", err.msg);
}

/* What a search returned. */
struct got {
    size_t n;
    int64_t ids[4096];
    char *lines[4096];
    struct xl_log_row first; /* strings not kept */
    char first_line[256], first_filters[256], first_host[64], first_path[256];
};

static int got_cb(void *ctx, const struct xl_log_row *r)
{
    struct got *g = ctx;

    if (g->n == 0) {
        g->first = *r;
        snprintf(g->first_line, sizeof(g->first_line), "%s", r->line);
        snprintf(g->first_filters, sizeof(g->first_filters), "%s", r->filters ? r->filters : "");
        snprintf(g->first_host, sizeof(g->first_host), "%s", r->host);
        snprintf(g->first_path, sizeof(g->first_path), "%s", r->path);
    }
    if (g->n < 4096) {
        g->ids[g->n] = r->id;
        g->lines[g->n] = strndup(r->line, r->len);
    }
    g->n++;
    return 0;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n && i < 4096; i++)
        free(g->lines[i]);
    free(g);
}

static struct got *search(struct xl_logstore *ls, struct xl_log_query q, int64_t *next)
{
    struct got *g = calloc(1, sizeof(*g));
    struct xl_err err;

    if (!q.limit)
        q.limit = 10000;
    if (xl_logstore_search(ls, &q, got_cb, g, next, &err) != XL_OK)
        fail_msg("search: %s", err.msg);
    return g;
}

static size_t count(struct xl_logstore *ls, struct xl_log_query q)
{
    struct got *g = search(ls, q, NULL);
    size_t n = g->n;

    got_free(g);
    return n;
}

/* ---- the text query ---- */

static void test_query_compile(void **state)
{
    static const struct {
        const char *in, *fts; /* fts NULL: an error containing `msg` */
        bool neg;
        const char *msg;
    } cases[] = {
        {"error", "\"error\"", false, NULL},
        {"ERROR timeout", "(\"ERROR\" AND \"timeout\")", false, NULL},
        {"\"timeout after\"", "\"timeout after\"", false, NULL},
        {"time*", "\"time\"*", false, NULL},
        {"\"time out\"*", "\"time out\"*", false, NULL},
        {"a OR b c", "(\"a\" OR (\"b\" AND \"c\"))", false, NULL},
        {"a AND b", "(\"a\" AND \"b\")", false, NULL},
        {"a NOT b", "((\"a\") NOT (\"b\"))", false, NULL},
        {"NOT b a", "((\"a\") NOT (\"b\"))", false, NULL},
        {"NOT b", "\"b\"", true, NULL},
        {"NOT b NOT c", "(\"b\" OR \"c\")", true, NULL},
        {"NOT NOT b", "\"b\"", false, NULL},
        {"(a OR b) NOT c", "(((\"a\" OR \"b\")) NOT (\"c\"))", false, NULL},
        {"a - b", "(\"a\" AND \"b\")", false, NULL},
        {"line:error", "\"line:error\"", false, NULL},
        {"NEAR(a b)", "(\"NEAR\" AND (\"a\" AND \"b\"))", false, NULL},
        {"x'; DROP TABLE logs; --", "(\"x';\" AND \"DROP\" AND \"TABLE\" AND \"logs;\")", false,
         NULL},
        {"and or not", "(\"and\" AND \"or\" AND \"not\")", false, NULL},
        {"\"unterminated", NULL, false, "unterminated quote at byte 0"},
        {"error OR", NULL, false, "OR at byte 6 needs a term"},
        {"OR error", NULL, false, "OR at byte 0 needs a term"},
        {"a AND", NULL, false, "AND at byte 2 needs a term"},
        {"NOT", NULL, false, "NOT at byte 0 needs"},
        {"(error", NULL, false, "missing ) for the ( at byte 0"},
        {"error)", NULL, false, "unexpected ) at byte 5"},
        {"()", NULL, false, "nothing to search for inside"},
        {"a OR NOT b", NULL, false, "NOT cannot stand alone in an OR"},
        {"", NULL, false, "nothing to search for"},
        {"  --- * ", NULL, false, "nothing to search for"},
        {"((((((((((((((((((a))))))))))))))))))", NULL, false, "nested too deep"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_logq *q = NULL;
        struct xl_err err = {0};
        xl_rc rc = xl_logq_compile(cases[i].in, &q, &err);
        bool neg;

        if (cases[i].fts) {
            if (rc != XL_OK)
                fail_msg("%s: %s", cases[i].in, err.msg);
            if (strcmp(xl_logq_fts(q, &neg), cases[i].fts) != 0 || neg != cases[i].neg)
                fail_msg("%s: got %s (negated %d), want %s (%d)", cases[i].in, xl_logq_fts(q, &neg),
                         neg, cases[i].fts, cases[i].neg);
        } else {
            if (rc != XL_EINVAL || !strstr(err.msg, cases[i].msg))
                fail_msg("%s: rc %d msg '%s', want '%s'", cases[i].in, rc, err.msg, cases[i].msg);
            assert_null(q);
        }
        xl_logq_free(q);
    }
    {
        /* Too many terms. */
        char big[1024] = "";
        struct xl_logq *q = NULL;
        struct xl_err err;

        for (int i = 0; i < XL_LOGQ_MAX_TERMS + 1; i++)
            strcat(big, "w ");
        assert_int_equal(xl_logq_compile(big, &q, &err), XL_EINVAL);
        assert_non_null(strstr(err.msg, "too many words"));
    }
}

/* ---- append and filters ---- */

static void test_append_filters(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[8];
    int64_t ids[8];
    struct xl_logstore_stats st;
    struct got *g;
    static const char nul_line[] = "before\0after";

    r[0] = rec("web1", "app", "/var/log/app/app.log", 1, 0, T0, "web1 app line one");
    r[1] = rec("web1", "app", "/var/log/app/app.log", 1, 18, T0 + 1000, "web1 app line two");
    r[2] = rec("web1", "sys", "/var/log/syslog", 2, 0, T0 + 2000, "web1 syslog");
    r[3] = rec("web2", "app", "/var/log/app/app.log", 3, 0, T0 + 3000, "web2 app line");
    r[4] = rec("web2", "app", "/var/log/app/app-2.log", 4, 0, T0 + 4 * MIN, "web2 app two");
    r[5] = rec("web2", "app", "/srv/other.txt", 5, 0, T0 + 5 * MIN, "web2 other");
    r[6] = rec("web2", "app", "/srv/other.txt", 5, 100, T0 + 5 * MIN + 1, "cut line");
    r[6].part = 2;
    r[6].parts = 3;
    r[6].filters = "ERROR\nre:timeout after \\d+ms";
    r[7] = rec("web3", "bin", "/bin.log", 6, 0, T0 + 6 * MIN, "x");
    r[7].line = nul_line;
    r[7].len = sizeof(nul_line) - 1;
    r[7].agent_id = AGENT_B;
    append_ok(ls, r, 8, ids);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ids[i], i + 1);

    assert_int_equal(count(ls, (struct xl_log_query){0}), 8);
    assert_int_equal(count(ls, (struct xl_log_query){.host = "web1"}), 3);
    assert_int_equal(count(ls, (struct xl_log_query){.host = "web"}), 0);
    assert_int_equal(count(ls, (struct xl_log_query){.input = "app"}), 6);
    assert_int_equal(count(ls, (struct xl_log_query){.host = "web2", .input = "app"}), 4);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/var/log/*"}), 5);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/var/log/app/app-?.log"}), 1);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/var/log/app/app*.log"}), 4);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "*.txt"}), 2);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/srv/[a-o]ther.txt"}), 2);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/srv/[!o]ther.txt"}), 0);
    assert_int_equal(count(ls, (struct xl_log_query){.path_glob = "/var/log"}), 0);
    assert_int_equal(count(ls, (struct xl_log_query){.from_ms = T0 + 1000, .to_ms = T0 + 3000}), 3);
    assert_int_equal(count(ls, (struct xl_log_query){.from_ms = T0 + 4 * MIN}), 4);
    assert_int_equal(count(ls, (struct xl_log_query){.to_ms = T0 + 4 * MIN - 1}), 4);
    assert_int_equal(
        count(ls, (struct xl_log_query){.from_ms = T0 + 5 * MIN + 1, .to_ms = T0 + 5 * MIN + 1}),
        1);
    assert_int_equal(count(ls, (struct xl_log_query){.from_ms = T0 + 60 * MIN}), 0);
    assert_int_equal(count(ls, (struct xl_log_query){.host = "web2",
                                                     .from_ms = T0 + 4 * MIN,
                                                     .text = "two OR other"}),
                     2);
    assert_int_equal(count(ls, (struct xl_log_query){.before_id = 4}), 3);
    assert_int_equal(count(ls, (struct xl_log_query){.after_id = 6}), 2);

    /* Every field of a row comes back. */
    g = search(ls, (struct xl_log_query){.text = "cut"}, NULL);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->first.id, 7);
    assert_int_equal(g->first.ts_ms, T0 + 5 * MIN + 1);
    assert_string_equal(g->first_host, "web2");
    assert_string_equal(g->first_path, "/srv/other.txt");
    assert_string_equal(g->first_line, "cut line");
    assert_string_equal(g->first_filters, "ERROR\nre:timeout after \\d+ms");
    assert_int_equal(g->first.file_uid, 5);
    assert_int_equal(g->first.offset, 100);
    assert_int_equal(g->first.part, 2);
    assert_int_equal(g->first.parts, 3);
    got_free(g);
    /* Newest first, and a line holding a NUL keeps its length. */
    g = search(ls, (struct xl_log_query){0}, NULL);
    assert_int_equal(g->ids[0], 8);
    assert_int_equal(g->first.len, sizeof(nul_line) - 1);
    assert_int_equal(g->ids[7], 1);
    got_free(g);
    g = search(ls, (struct xl_log_query){.oldest_first = true, .limit = 2}, NULL);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->ids[0], 1);
    assert_int_equal(g->ids[1], 2);
    got_free(g);

    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.rows, 8);
    assert_int_equal(st.inserted, 8);
    assert_int_equal(st.duplicates, 0);
    assert_true(st.bytes > 0);
    assert_int_equal(st.commits, 1);
    xl_logstore_close(ls);
}

/* ---- full-text ---- */

static const char *const fts_lines[] = {
    "2026-11-21 ERROR timeout after 30ms", /* 1 */
    "connection Timeout from 10.0.0.5",    /* 2 */
    "INFO request served in 12ms",         /* 3 */
    "ERROR disk full on /var/lib",         /* 4 */
    "warning: Timeouts are increasing",    /* 5 */
    "user alice logged in",                /* 6 */
    "ERROR: user bob failed login",        /* 7 */
    "r\xc3\xa9sum\xc3\xa9 uploaded",       /* 8: résumé */
};
#define NFTS (sizeof(fts_lines) / sizeof(fts_lines[0]))

static struct xl_logstore *fts_store(const char *dir)
{
    struct xl_logstore *ls = open_ls(dir, 0, 0);
    struct xl_log_rec r[NFTS];

    for (size_t i = 0; i < NFTS; i++)
        r[i] = rec("h", "in", "/f", 1, i * 100, T0 + (int64_t)i, fts_lines[i]);
    append_ok(ls, r, NFTS, NULL);
    return ls;
}

/* The set of line numbers (1-based, as a bit mask) a text query finds. */
static unsigned fts_mask(struct xl_logstore *ls, const char *text)
{
    struct got *g = search(ls, (struct xl_log_query){.text = text}, NULL);
    unsigned m = 0;

    for (size_t i = 0; i < g->n; i++)
        m |= 1u << g->ids[i];
    got_free(g);
    return m;
}

#define B(x) (1u << (x))

static void test_fts_queries(void **state)
{
    struct xl_logstore *ls = fts_store(*state);
    static const struct {
        const char *q;
        unsigned want;
    } cases[] = {
        {"error", B(1) | B(4) | B(7)},
        {"ERROR timeout", B(1)},
        {"Error AND timeout", B(1)},
        {"\"timeout after\"", B(1)},
        {"\"after timeout\"", 0},
        {"timeout OR disk", B(1) | B(2) | B(4)},
        {"error NOT disk", B(1) | B(7)},
        {"error AND NOT disk", B(1) | B(7)},
        {"NOT error", B(2) | B(3) | B(5) | B(6) | B(8)},
        {"NOT error NOT timeout", B(3) | B(5) | B(6) | B(8)},
        {"timeout*", B(1) | B(2) | B(5)},
        {"TIME*", B(1) | B(2) | B(5)},
        {"TIMEOUT", B(1) | B(2)},
        {"10.0.0.5", B(2)},
        {"10.0.0.6", 0},
        {"user AND (alice OR bob)", B(6) | B(7)},
        {"(error OR warning) NOT disk", B(1) | B(5) | B(7)},
        {"error -", B(1) | B(4) | B(7)},
        {"\"ERROR: user\"", B(7)},
        {"/var/lib", B(4)},
        {"resume", B(8)},
        {"line:error", 0},
        {"x'; DROP TABLE logs; --", 0},
        {"\"served in\"*", B(3)},
        {"\"served i\"*", B(3)},
        {"log*", B(6) | B(7)},
    };
    static const char *const bad[] = {"\"open", "a OR", "(a", "a)", "a OR NOT b", "---"};
    struct xl_err err;
    struct got g = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned m = fts_mask(ls, cases[i].q);
        if (m != cases[i].want)
            fail_msg("q=%s: got %#x want %#x", cases[i].q, m, cases[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xl_log_query q = {.text = bad[i]};
        memset(&err, 0, sizeof(err));
        assert_int_equal(xl_logstore_search(ls, &q, got_cb, &g, NULL, &err), XL_EINVAL);
        assert_int_equal(g.n, 0);
        if (strncmp(err.msg, "text: ", 6) != 0 || strstr(err.msg, "sqlite") ||
            strstr(err.msg, "fts5"))
            fail_msg("q=%s: message %s", bad[i], err.msg);
        assert_int_equal(xl_logstore_histogram(ls, &q, 60000, NULL, NULL, &err), XL_EINVAL);
    }
    xl_logstore_close(ls);
}

/* The in-memory matcher (for the live stream) agrees with the index on
 * ASCII text. */
static void test_match_agrees(void **state)
{
    struct xl_logstore *ls = fts_store(*state);
    static const char *const qs[] = {
        "error",
        "ERROR timeout",
        "\"timeout after\"",
        "\"after timeout\"",
        "timeout OR disk",
        "error NOT disk",
        "NOT error",
        "timeout*",
        "TIME*",
        "10.0.0.5",
        "\"10.0\"*",
        "user AND (alice OR bob)",
        "(error OR warning) NOT disk",
        "\"ERROR: user\"",
        "log*",
        "NOT (error OR user)",
        "l*",
        "\"served i\"*",
        "ms",
        "30ms",
    };

    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        struct xl_logq *q;
        struct xl_err err;
        unsigned mem = 0, idx = fts_mask(ls, qs[i]);

        assert_int_equal(xl_logq_compile(qs[i], &q, &err), XL_OK);
        for (size_t l = 0; l < NFTS - 1; l++) /* the last line is not ASCII */
            if (xl_logq_match(q, fts_lines[l], strlen(fts_lines[l])))
                mem |= 1u << (l + 1);
        idx &= ~B(NFTS);
        if (mem != idx)
            fail_msg("q=%s: memory %#x index %#x", qs[i], mem, idx);
        xl_logq_free(q);
    }
    xl_logstore_close(ls);
}

/* ---- dedup ---- */

static void test_duplicates(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[4], d[6];
    int64_t ids[6];
    struct xl_logstore_stats st;

    r[0] = rec("h", "in", "/a.log", 7, 0, T0, "one");
    r[1] = rec("h", "in", "/a.log", 7, 4, T0, "two");
    r[2] = rec("h", "in", "/a.log", 7, 8, T0, "three part 1");
    r[2].part = 1;
    r[3] = rec("h", "in", "/a.log", 7, 8, T0, "three part 2");
    r[3].part = 2;
    append_ok(ls, r, 4, ids);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[3], 4);
    /* The same batch again: stored once. */
    append_ok(ls, r, 4, ids);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ids[i], 0);
    /* After a rename (same file id, new path), from another host name:
     * still the same line. Another agent or another file id: new lines. A
     * repeat inside one batch: the first wins. */
    d[0] = rec("h2", "in2", "/a.log.1", 7, 4, T0 + 5, "two again");
    d[1] = rec("h", "in", "/a.log", 8, 4, T0, "other file");
    d[2] = rec("h", "in", "/a.log", 7, 4, T0, "other agent");
    d[2].agent_id = AGENT_B;
    d[3] = rec("h", "in", "/a.log", 7, 12, T0, "new");
    d[4] = rec("h", "in", "/a.log", 7, 12, T0, "new repeated");
    d[5] = rec("h", "in", "/a.log", 7, 8, T0, "part 3");
    d[5].part = 3;
    append_ok(ls, d, 6, ids);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 6);
    assert_int_equal(ids[3], 7);
    assert_int_equal(ids[4], 0);
    assert_int_equal(ids[5], 8);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.rows, 8);
    assert_int_equal(st.inserted, 8);
    assert_int_equal(st.duplicates, 6);
    assert_int_equal(count(ls, (struct xl_log_query){0}), 8);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "again OR repeated"}), 0);
    /* NULL ids is fine. */
    append_ok(ls, d, 6, NULL);
    xl_logstore_close(ls);
}

/* ---- paging ---- */

static void page_all(struct xl_logstore *ls, struct xl_log_query q, size_t want, bool asc)
{
    char *seen = calloc(20000, 1);
    size_t total = 0;
    int64_t cursor = 0, prev = asc ? 0 : INT64_MAX;

    q.oldest_first = asc;
    for (int pages = 0;; pages++) {
        struct got *g;
        int64_t next;

        if (asc)
            q.after_id = cursor;
        else
            q.before_id = cursor;
        g = search(ls, q, &next);
        assert_true(g->n <= q.limit);
        for (size_t i = 0; i < g->n; i++) {
            assert_true(asc ? g->ids[i] > prev : g->ids[i] < prev);
            prev = g->ids[i];
            assert_false(seen[g->ids[i]]);
            seen[g->ids[i]] = 1;
        }
        total += g->n;
        /* A full page has a next cursor unless nothing more matches. */
        if (!next) {
            got_free(g);
            break;
        }
        assert_int_equal(g->n, q.limit);
        cursor = next;
        got_free(g);
        assert_true(pages < 20000);
    }
    assert_int_equal(total, want);
    free(seen);
}

static void test_paging(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[3000];
    char(*txt)[32] = calloc(3000, 32);

    for (int i = 0; i < 3000; i++) {
        snprintf(txt[i], 32, "line %d %s", i, i % 3 == 0 ? "fizz" : "plain");
        r[i] =
            rec(i % 2 ? "odd" : "even", "in", "/p.log", 1, (uint64_t)i * 32, T0 + i * 100, txt[i]);
    }
    append_ok(ls, r, 1000, NULL);
    append_ok(ls, r + 1000, 2000, NULL);
    page_all(ls, (struct xl_log_query){.limit = 7}, 3000, false);
    page_all(ls, (struct xl_log_query){.limit = 1000}, 3000, false);
    page_all(ls, (struct xl_log_query){.limit = 3000}, 3000, false);
    page_all(ls, (struct xl_log_query){.limit = 10000}, 3000, false);
    page_all(ls, (struct xl_log_query){.limit = 13, .text = "fizz"}, 1000, false);
    page_all(ls, (struct xl_log_query){.limit = 13, .text = "NOT fizz"}, 2000, false);
    page_all(ls, (struct xl_log_query){.limit = 50, .text = "fizz", .host = "odd"}, 500, false);
    page_all(
        ls,
        (struct xl_log_query){.limit = 9, .host = "even", .from_ms = T0 + 1000, .to_ms = T0 + 1999},
        5, false);
    page_all(ls, (struct xl_log_query){.limit = 11}, 3000, true);
    page_all(ls, (struct xl_log_query){.limit = 11, .text = "fizz"}, 1000, true);
    page_all(ls,
             (struct xl_log_query){
                 .limit = 1, .text = "plain", .host = "even", .from_ms = T0, .to_ms = T0 + 2000},
             7, false);
    free(txt);
    xl_logstore_close(ls);
}

/* ---- histogram ---- */

struct hist {
    size_t n;
    int64_t start[2000];
    uint64_t cnt[2000];
};

static int hist_cb(void *ctx, int64_t start, uint64_t c)
{
    struct hist *h = ctx;

    if (h->n < 2000) {
        h->start[h->n] = start;
        h->cnt[h->n] = c;
    }
    h->n++;
    return 0;
}

/* Histogram of q with step compared to counting each bucket with search. */
static void check_hist(struct xl_logstore *ls, struct xl_log_query q, int64_t step)
{
    struct hist *h = calloc(1, sizeof(*h));
    struct xl_err err;
    int64_t first = q.from_ms / step * step;

    if (xl_logstore_histogram(ls, &q, step, hist_cb, h, &err) != XL_OK)
        fail_msg("histogram: %s", err.msg);
    assert_int_equal(h->n, (size_t)((q.to_ms / step * step - first) / step + 1));
    for (size_t i = 0; i < h->n; i++) {
        struct xl_log_query b = q;
        size_t want;

        assert_int_equal(h->start[i], first + (int64_t)i * step);
        b.from_ms = h->start[i] < q.from_ms ? q.from_ms : h->start[i];
        b.to_ms = h->start[i] + step - 1 > q.to_ms ? q.to_ms : h->start[i] + step - 1;
        want = count(ls, b);
        if (h->cnt[i] != want)
            fail_msg("step %lld bucket %zu (%lld): %llu, want %zu (text %s host %s)",
                     (long long)step, i, (long long)h->start[i], (unsigned long long)h->cnt[i],
                     want, q.text ? q.text : "-", q.host ? q.host : "-");
    }
    free(h);
}

static void test_histogram(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[2000];
    char(*txt)[32] = calloc(2000, 32);
    struct hist *h = calloc(1, sizeof(*h));
    struct xl_log_query q;
    struct xl_err err;
    uint64_t sum = 0;

    /* 2000 lines over ~33 minutes, with a gap of empty minutes, ts a bit
     * out of order. */
    for (int i = 0; i < 2000; i++) {
        int64_t ts = T0 + (int64_t)i * 1000 + (i % 7) * 300;
        if (i >= 1000 && i < 1400)
            ts += 10 * MIN;
        snprintf(txt[i], 32, "%s %d", i % 5 ? "ok" : "bad", i);
        r[i] = rec(i % 3 ? "a" : "b", "in", "/h.log", 1, (uint64_t)i * 32, ts, txt[i]);
    }
    append_ok(ls, r, 2000, NULL);
    q = (struct xl_log_query){.from_ms = T0 - 90000, .to_ms = T0 + 2700 * 1000 + 123};
    check_hist(ls, q, MIN);
    check_hist(ls, q, 5 * MIN);
    check_hist(ls, q, 10000);
    check_hist(ls, q, 7777);
    q.from_ms = T0 + 12345;
    q.to_ms = T0 + 20 * MIN + 999;
    check_hist(ls, q, MIN);
    check_hist(ls, q, 2 * MIN);
    q.host = "b";
    check_hist(ls, q, MIN);
    q.text = "bad";
    check_hist(ls, q, MIN);
    q.text = "NOT bad";
    check_hist(ls, q, 30000);
    q.host = NULL;
    q.from_ms = T0 + 100;
    q.to_ms = T0 + 200;
    check_hist(ls, q, MIN);
    /* Everything, with open ends. */
    q = (struct xl_log_query){0};
    assert_int_equal(xl_logstore_histogram(ls, &q, MIN, hist_cb, h, &err), XL_OK);
    for (size_t i = 0; i < h->n; i++)
        sum += h->cnt[i];
    assert_int_equal(sum, 2000);
    assert_true(h->cnt[20] == 0); /* the gap */
    /* Bad arguments. */
    q = (struct xl_log_query){.from_ms = T0, .to_ms = T0 + 1000};
    assert_int_equal(xl_logstore_histogram(ls, &q, 0, hist_cb, h, &err), XL_EINVAL);
    q.to_ms = T0 + 100000000000;
    assert_int_equal(xl_logstore_histogram(ls, &q, 1, hist_cb, h, &err), XL_ERANGE);
    q.to_ms = T0 - 1;
    assert_int_equal(xl_logstore_histogram(ls, &q, 1000, hist_cb, h, &err), XL_EINVAL);
    free(h);
    free(txt);
    xl_logstore_close(ls);
}

/* ---- retention ---- */

/* SQLite's integrity check, and FTS5's on every generation's index. */
static void check_integrity(const char *dir)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    char *msg = NULL, sql[128];
    int64_t gens[256];
    int n = 0;

    assert_int_equal(sqlite3_open_v2(db_path(dir), &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT id FROM gens", -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && n < 256)
        gens[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql), "INSERT INTO fts_%lld(fts_%lld) VALUES('integrity-check')",
                 (long long)gens[i], (long long)gens[i]);
        if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
            fail_msg("fts integrity of generation %lld: %s", (long long)gens[i], msg);
    }
    if (sqlite3_exec(h, "PRAGMA integrity_check", NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("integrity: %s", msg);
    sqlite3_close(h);
}

static void test_retention_age(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 24 * 60 * MIN, 0);
    struct xl_log_rec r[3000];
    char(*txt)[32] = calloc(3000, 32);
    struct xl_logstore_stats st;
    struct xl_err err;
    int64_t now = T0 + 48 * 60 * MIN, ids[3000];

    /* 2000 lines two days old, then 1000 recent ones; two old ones arrive
     * late, behind recent lines. */
    for (int i = 0; i < 3000; i++) {
        int64_t ts = i < 2000 ? T0 + i : now - 1000 + i;
        snprintf(txt[i], 32, "%s %d", i < 2000 ? "ancient" : "fresh", i);
        r[i] = rec("h", "in", "/r.log", 1, (uint64_t)i * 32, ts, txt[i]);
    }
    r[2500].ts_ms = T0 + 5;
    snprintf(txt[2500], 32, "ancient late");
    append_ok(ls, r, 3000, ids);
    assert_int_equal(xl_logstore_maintain(ls, now, &err), XL_OK);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.deleted, 2001);
    assert_int_equal(st.rows, 999);
    assert_int_equal(count(ls, (struct xl_log_query){0}), 999);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "ancient"}), 0);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "fresh"}), 999);
    assert_int_equal(count(ls, (struct xl_log_query){.to_ms = now - 25 * 60 * MIN}), 0);
    /* Nothing more to do. */
    assert_int_equal(xl_logstore_maintain(ls, now, &err), XL_OK);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.deleted, 2001);
    xl_logstore_close(ls);
    check_integrity(*state);
    /* Everything expires; ids keep growing after a reopen. */
    ls = open_ls(*state, 24 * 60 * MIN, 0);
    assert_int_equal(xl_logstore_maintain(ls, now + 48 * 60 * MIN, &err), XL_OK);
    assert_int_equal(count(ls, (struct xl_log_query){0}), 0);
    xl_logstore_close(ls);
    ls = open_ls(*state, 0, 0);
    r[0].offset = 1000000;
    append_ok(ls, r, 1, ids);
    assert_int_equal(ids[0], 3001);
    xl_logstore_close(ls);
    free(txt);
}

static off_t file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_retention_size(void **state)
{
    const int64_t max = 2 << 20;
    struct xl_logstore *ls = open_ls(*state, 0, max);
    struct xl_log_rec r[1000];
    char(*txt)[200] = calloc(1000, 200);
    struct xl_logstore_stats st;
    struct xl_err err;
    off_t before, after;
    int64_t ids[1000];

    /* About 6 MiB of 200-byte lines, no retention pass yet. */
    for (int b = 0; b < 30; b++) {
        for (int i = 0; i < 1000; i++) {
            int k = b * 1000 + i;
            snprintf(txt[i], 200, "batch%d line %d %s", b, k,
                     "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
                     "tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam "
                     "quis nostrud exercitation ullamco");
            r[i] = rec("h", "in", "/s.log", 1, (uint64_t)k * 200, T0 + k, txt[i]);
        }
        append_ok(ls, r, 1000, ids);
    }
    /* Closing copies the WAL into the file. */
    xl_logstore_close(ls);
    before = file_size(db_path(*state));
    ls = open_ls(*state, 0, max);
    for (int pass = 0; pass < 3; pass++)
        assert_int_equal(xl_logstore_maintain(ls, T0, &err), XL_OK);
    xl_logstore_get_stats(ls, &st);
    assert_true(st.deleted > 0);
    fprintf(stderr, "size retention: %lld bytes before, %llu after, %llu rows kept\n",
            (long long)before, (unsigned long long)st.bytes, (unsigned long long)st.rows);
    assert_true(st.bytes <= (uint64_t)max);
    assert_true(st.bytes >= (uint64_t)max / 2);
    assert_int_equal(st.rows + st.deleted, 30000);
    /* The newest lines are the ones kept, without gaps. */
    assert_int_equal(count(ls, (struct xl_log_query){0}), st.rows);
    assert_int_equal(count(ls, (struct xl_log_query){.after_id = 30000 - (int64_t)st.rows}),
                     st.rows);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "batch29"}), 1000);
    xl_logstore_close(ls);
    after = file_size(db_path(*state));
    if (!(after < before / 2 && after <= max + (1 << 20)))
        fail_msg("file %lld bytes before, %lld after (max %lld)", (long long)before,
                 (long long)after, (long long)max);
    check_integrity(*state);
    free(txt);
}

/* ---- concurrency ---- */

#define WRITERS 4
#define BATCHES 40
#define PER_BATCH 250

struct writer {
    struct xl_logstore *ls;
    int id;
    int64_t *ids;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct xl_log_rec *r = calloc(PER_BATCH, sizeof(*r));
    char(*txt)[48] = calloc(PER_BATCH, 48);
    static const char *const hosts[WRITERS] = {"w0", "w1", "w2", "w3"};
    struct xl_err err;

    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER_BATCH; i++) {
            int k = b * PER_BATCH + i;
            snprintf(txt[i], 48, "writer%d line %d", w->id, k);
            r[i] = rec(hosts[w->id], "in", "/c.log", (uint64_t)w->id, (uint64_t)k * 48, T0 + k,
                       txt[i]);
        }
        /* Every other batch is sent twice, like an agent retrying. */
        if (xl_logstore_append(w->ls, r, PER_BATCH, w->ids + b * PER_BATCH, &err) != XL_OK ||
            (b % 2 && xl_logstore_append(w->ls, r, PER_BATCH, NULL, &err) != XL_OK)) {
            fprintf(stderr, "append: %s\n", err.msg);
            abort();
        }
    }
    free(r);
    free(txt);
    return NULL;
}

static int stop_reader;

static void *reader_main(void *arg)
{
    struct xl_logstore *ls = arg;

    while (!__atomic_load_n(&stop_reader, __ATOMIC_ACQUIRE)) {
        struct got *g = calloc(1, sizeof(*g));
        struct xl_log_query q = {.text = "line", .limit = 50};
        struct xl_err err;

        if (xl_logstore_search(ls, &q, got_cb, g, NULL, &err) != XL_OK) {
            fprintf(stderr, "search: %s\n", err.msg);
            abort();
        }
        got_free(g);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void test_concurrent(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct writer w[WRITERS];
    pthread_t t[WRITERS], rd;
    int64_t *all = calloc(WRITERS * BATCHES * PER_BATCH, sizeof(*all));
    const size_t total = WRITERS * BATCHES * PER_BATCH;
    struct xl_logstore_stats st;

    stop_reader = 0;
    assert_int_equal(pthread_create(&rd, NULL, reader_main, ls), 0);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){ls, i, all + (size_t)i * BATCHES * PER_BATCH};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&stop_reader, 1, __ATOMIC_RELEASE);
    pthread_join(rd, NULL);
    qsort(all, total, sizeof(*all), cmp_i64);
    for (size_t i = 0; i < total; i++)
        assert_int_equal(all[i], (int64_t)i + 1);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.rows, total);
    assert_int_equal(st.duplicates, total / 2);
    assert_true(st.commits <= WRITERS * BATCHES * 3 / 2); /* at most one per call */
    assert_int_equal(count(ls, (struct xl_log_query){.host = "w2", .limit = 10000}),
                     BATCHES * PER_BATCH);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "writer3"}), BATCHES * PER_BATCH);
    xl_logstore_close(ls);
    check_integrity(*state);
    free(all);
}

/* ---- reopen, sync, bad input ---- */

static void test_reopen(void **state)
{
    struct xl_logstore_opts o = {.path = db_path(*state), .sync_full = true};
    struct xl_logstore *ls;
    struct xl_log_rec r[2];
    struct xl_logstore_stats st;
    struct xl_err err;
    int64_t ids[2];

    assert_int_equal(xl_logstore_open(&o, &ls, &err), XL_OK);
    r[0] = rec("h", "in", "/o.log", 9, 0, T0, "kept across restarts");
    r[1] = rec("h", "in", "/o.log", 9, 21, T0 + 1, "second");
    append_ok(ls, r, 2, ids);
    xl_logstore_close(ls);
    ls = open_ls(*state, 0, 0);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.rows, 2);
    assert_int_equal(count(ls, (struct xl_log_query){.text = "restarts"}), 1);
    append_ok(ls, r, 2, ids);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 0);
    r[1].offset = 99;
    append_ok(ls, r + 1, 1, ids);
    assert_int_equal(ids[0], 3);
    xl_logstore_close(ls);
    /* A second store on a file that is not a database fails cleanly. */
    {
        char bad[600];
        FILE *f;
        snprintf(bad, sizeof(bad), "%s/bad.db", (char *)*state);
        f = fopen(bad, "w");
        fputs("this is not a database, just text long enough to have a header..........."
              "..........................................................",
              f);
        fclose(f);
        o.path = bad;
        assert_int_equal(xl_logstore_open(&o, &ls, &err), XL_EDB);
        assert_null(ls);
    }
}

static void test_bad_input(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[2];
    struct xl_err err;
    struct xl_logstore_stats st;

    r[0] = rec("h", "in", "/b.log", 1, 0, T0, "good");
    r[1] = rec("h", "in", "/b.log", 1, 5, T0, "no host");
    r[1].host = NULL;
    assert_int_equal(xl_logstore_append(ls, r, 2, NULL, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "records[1].host"));
    r[1] = rec("h", "in", "/b.log", 1, UINT64_MAX, T0, "huge offset");
    assert_int_equal(xl_logstore_append(ls, r, 2, NULL, &err), XL_EINVAL);
    /* All or nothing: the good line was not stored either time. */
    assert_int_equal(count(ls, (struct xl_log_query){0}), 0);
    assert_int_equal(xl_logstore_append(ls, r, 0, NULL, &err), XL_OK);
    xl_logstore_get_stats(ls, &st);
    assert_int_equal(st.rows, 0);
    xl_logstore_close(ls);
}

/* ---- allocation failures ---- */

static void test_alloc_failure(void **state)
{
    struct xl_logstore *ls = open_ls(*state, 0, 0);
    struct xl_log_rec r[3];
    int64_t ids[3];
    int64_t next_uid = 100;

    for (long k = 0; k < 40; k++) {
        struct xl_err err;
        struct got *g = calloc(1, sizeof(*g));
        struct xl_log_query q = {.text = "alpha OR \"beta gamma\"", .host = "h", .limit = 5};
        struct hist h = {0};
        xl_rc rc;

        /* A new source each time, so the cache and the SQL lookup run. */
        r[0] = rec("h", "in", "/f.log", (uint64_t)next_uid, 0, T0, "alpha one");
        r[1] = rec("h", "in", "/f.log", (uint64_t)next_uid, 10, T0, "beta gamma two");
        r[2] = rec("h", "in2", "/g.log", (uint64_t)next_uid + 1, 0, T0, "delta");
        next_uid += 2;
        xl_alloc_fail_after(k);
        rc = xl_logstore_append(ls, r, 3, ids, &err);
        xl_alloc_fail_after(-1);
        assert_true(rc == XL_OK || rc == XL_ENOMEM);
        xl_alloc_fail_after(k);
        rc = xl_logstore_search(ls, &q, got_cb, g, NULL, &err);
        xl_alloc_fail_after(-1);
        assert_true(rc == XL_OK || rc == XL_ENOMEM);
        xl_alloc_fail_after(k);
        rc = xl_logstore_histogram(ls, &q, MIN, hist_cb, &h, &err);
        xl_alloc_fail_after(-1);
        assert_true(rc == XL_OK || rc == XL_ENOMEM);
        got_free(g);
        {
            struct xl_logq *lq = NULL;
            xl_alloc_fail_after(k);
            rc = xl_logq_compile("a OR (b NOT c) \"d e\"*", &lq, &err);
            xl_alloc_fail_after(-1);
            assert_true(rc == XL_OK || rc == XL_ENOMEM);
            xl_logq_free(lq);
        }
    }
    /* Every append was all or nothing: each one stored 0 or 3 lines. */
    {
        size_t a = count(ls, (struct xl_log_query){.text = "alpha"});
        size_t b = count(ls, (struct xl_log_query){.text = "beta"});
        size_t d = count(ls, (struct xl_log_query){.text = "delta"});
        assert_int_equal(a, b);
        assert_int_equal(a, d);
        assert_true(a > 0);
    }
    xl_logstore_close(ls);
    /* Open under allocation failure. */
    for (long k = 0; k < 8; k++) {
        struct xl_logstore_opts o = {.path = db_path(*state)};
        struct xl_logstore *l2 = NULL;
        struct xl_err err;
        xl_rc rc;

        xl_alloc_fail_after(k);
        rc = xl_logstore_open(&o, &l2, &err);
        xl_alloc_fail_after(-1);
        assert_true(rc == XL_OK || rc == XL_ENOMEM);
        xl_logstore_close(l2);
    }
    check_integrity(*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_compile),
        cmocka_unit_test_setup_teardown(test_append_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fts_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_agrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
