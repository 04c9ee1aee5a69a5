/* Unit tests: the embedded metric store (src/server/store/tsdb.c): appends,
 * queries, checkpoints, WAL replay after simulated crashes, torn tails,
 * retention, concurrency, allocation failures. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "server/store/tsdb.h"
#include "tmpdir_test_util.h"

#define HOUR ((int64_t)3600 * 1000)
#define T0 ((int64_t)1763715000000) /* a fixed base, well inside any window */

/* ---- fixtures and helpers ---- */

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_tsdb_XXXXXX");
}

static int teardown(void **state)
{
    xl_tsdb_test_hook = NULL;
    return tmpdir_teardown(state);
}

static struct xl_tsdb *open_db(const char *dir, enum xl_tsdb_sync sync)
{
    struct xl_tsdb_opts o = {.dir = dir, .sync = sync, .flush_interval_ms = HOUR};
    struct xl_tsdb *db = NULL;
    struct xl_err err;
    xl_rc rc = xl_tsdb_open(&o, &db, &err);

    if (rc != XL_OK)
        fail_msg("open %s: %s", dir, err.msg);
    return db;
}

/* Append one sample of metric `name` with labels host=h, i=idx. */
static void put(struct xl_tsdb *db, const char *name, const char *host, int idx, int64_t ts,
                double v)
{
    char ibuf[16];
    struct xl_label l[2] = {{"host", host}, {"i", ibuf}};
    struct xl_tsdb_sample s = {name, l, 2, ts, v};
    struct xl_err err;

    snprintf(ibuf, sizeof(ibuf), "%d", idx);
    if (xl_tsdb_append(db, &s, 1, &err) != XL_OK)
        fail_msg("append: %s", err.msg);
}

/* A batch of n samples: series i % nseries of metric "m", ts = base + i. */
struct batch {
    struct xl_tsdb_sample *s;
    struct xl_label *l;
    char (*buf)[24];
    size_t n;
};

static void batch_make(struct batch *b, size_t n, size_t nseries, int64_t base, double v)
{
    b->s = calloc(n, sizeof(*b->s));
    b->l = calloc(n, sizeof(*b->l) * 2);
    b->buf = calloc(n, sizeof(*b->buf));
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(b->buf[i], sizeof(b->buf[i]), "s%zu", i % nseries);
        b->l[2 * i].name = "series";
        b->l[2 * i].value = b->buf[i];
        b->l[2 * i + 1].name = "job";
        b->l[2 * i + 1].value = "test";
        b->s[i].name = "m";
        b->s[i].labels = &b->l[2 * i];
        b->s[i].nlabels = 2;
        b->s[i].ts_ms = base + (int64_t)i;
        b->s[i].value = v + (double)i;
    }
}

static void batch_free(struct batch *b)
{
    free(b->s);
    free(b->l);
    free(b->buf);
}

/* What a query returned. */
struct qseries {
    char name[64];
    char labels[256]; /* "a=x,b=y" */
    size_t n;
    int64_t *ts;
    double *v;
};

struct qres {
    size_t n;
    struct qseries s[64];
    size_t points;
};

static int collect_cb(void *ctx, const struct xl_series_result *r)
{
    struct qres *q = ctx;
    struct qseries *s;
    size_t off = 0;

    assert_true(q->n < 64);
    s = &q->s[q->n++];
    snprintf(s->name, sizeof(s->name), "%s", r->name);
    s->labels[0] = '\0';
    for (size_t i = 0; i < r->nlabels; i++)
        off += (size_t)snprintf(s->labels + off, sizeof(s->labels) - off, "%s%s=%s", i ? "," : "",
                                r->labels[i].name, r->labels[i].value);
    s->n = r->n;
    s->ts = calloc(r->n + 1, sizeof(*s->ts));
    s->v = calloc(r->n + 1, sizeof(*s->v));
    if (r->n) {
        memcpy(s->ts, r->ts, r->n * sizeof(*s->ts));
        memcpy(s->v, r->val, r->n * sizeof(*s->v));
    }
    q->points += r->n;
    return 0;
}

static void qres_free(struct qres *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->s[i].ts);
        free(q->s[i].v);
    }
    memset(q, 0, sizeof(*q));
}

static void query(struct xl_tsdb *db, const char *name, const struct xl_matcher *m, size_t nm,
                  int64_t from, int64_t to, int64_t step, enum xl_agg agg, struct qres *q)
{
    struct xl_err err;

    memset(q, 0, sizeof(*q));
    if (xl_tsdb_query(db, name, m, nm, from, to, step, agg, collect_cb, q, &err) != XL_OK)
        fail_msg("query: %s", err.msg);
}

/* Every series of metric "m" must hold exactly ts base..base+n-1 spread as
 * batch_make spreads them (series i % nseries), each once, sorted. */
static void check_batches(struct xl_tsdb *db, size_t nseries, int64_t base, size_t n)
{
    struct qres q;
    size_t total = 0;

    query(db, "m", NULL, 0, INT64_MIN, INT64_MAX, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, n < nseries ? n : nseries);
    for (size_t k = 0; k < q.n; k++) {
        const struct qseries *s = &q.s[k];
        size_t sidx;

        assert_int_equal(sscanf(s->labels, "job=test,series=s%zu", &sidx), 1);
        for (size_t j = 0; j < s->n; j++) {
            int64_t want = base + (int64_t)(sidx + j * nseries);

            if (s->ts[j] != want)
                fail_msg("series s%zu point %zu: ts %lld, want %lld", sidx, j, (long long)s->ts[j],
                         (long long)want);
        }
        total += s->n;
    }
    assert_int_equal(total, n);
    qres_free(&q);
}

static void stats(struct xl_tsdb *db, struct xl_tsdb_stats *st)
{
    xl_tsdb_get_stats(db, st);
}

/* The newest WAL segment of dir. */
static void last_segment(const char *dir, char *out, size_t cap)
{
    char wdir[512];
    struct dirent *de;
    char best[300] = "";
    DIR *d;

    snprintf(wdir, sizeof(wdir), "%s/wal", dir);
    assert_non_null(d = opendir(wdir));
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".wal") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(d);
    assert_true(best[0]);
    snprintf(out, cap, "%s/%s", wdir, best);
}

/* Run fn(dir) in a child that ends with _exit(0) without closing the store,
 * like a crash (process death: the page cache keeps what was written). */
static void in_child(const char *dir, void (*fn)(const char *dir))
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        fn(dir);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- basic appends and queries ---- */

static void test_append_query(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    struct xl_matcher m_eq = {"host", "a", XL_MATCH_EQ}, m_ne = {"host", "a", XL_MATCH_NE};
    struct xl_tsdb_stats st;
    struct qres q;

    for (int i = 0; i < 10; i++) {
        put(db, "cpu", "a", 0, T0 + i * 1000, i);
        put(db, "cpu", "b", 0, T0 + i * 1000, 10 * i);
        put(db, "cpu", "b", 1, T0 + i * 1000, -i);
    }
    put(db, "mem", "a", 0, T0, 1.5);
    query(db, "cpu", NULL, 0, T0, T0 + 9000, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 3);
    assert_string_equal(q.s[0].labels, "host=a,i=0");
    assert_string_equal(q.s[1].labels, "host=b,i=0");
    assert_string_equal(q.s[2].labels, "host=b,i=1");
    assert_int_equal(q.s[1].n, 10);
    assert_int_equal(q.s[1].ts[3], T0 + 3000);
    assert_true(q.s[1].v[3] == 30.0);
    qres_free(&q);
    /* Range bounds are inclusive. */
    query(db, "cpu", &m_eq, 1, T0 + 2000, T0 + 4000, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.s[0].n, 3);
    qres_free(&q);
    query(db, "cpu", &m_ne, 1, T0, T0 + 9000, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 2);
    qres_free(&q);
    /* No name: every metric. */
    query(db, NULL, &m_eq, 1, T0, T0 + 9000, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.s[0].name, "cpu");
    assert_string_equal(q.s[1].name, "mem");
    qres_free(&q);
    /* Unknown name, empty range: nothing. */
    query(db, "nope", NULL, 0, T0, T0 + 9000, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 0);
    query(db, "cpu", NULL, 0, T0 - 100, T0 - 1, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 0);
    stats(db, &st);
    assert_int_equal(st.series, 4);
    assert_int_equal(st.samples_appended, 31);
    assert_int_equal(st.head_samples, 31);
    assert_true(st.wal_bytes > 0);
    assert_true(st.wal_syncs > 0);
    xl_tsdb_close(db);
}

static void test_aggregations(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    struct {
        enum xl_agg agg;
        double want[3];
    } cases[] = {
        {XL_AGG_AVG, {1.5, 5.5, 9}}, {XL_AGG_MIN, {0, 4, 8}},   {XL_AGG_MAX, {3, 7, 10}},
        {XL_AGG_LAST, {3, 7, 9}},    {XL_AGG_SUM, {6, 22, 36}}, {XL_AGG_COUNT, {4, 4, 4}},
    };
    struct qres q;
    struct xl_err err;

    /* Points every 10 s from T0 (a multiple of 40 s), 11 of them, and one
     * more at T0 + 85 s (value 10, not the last of its bucket by time);
     * buckets of 40 s. */
    assert_int_equal(T0 % 40000, 0);
    for (int i = 0; i <= 10; i++)
        put(db, "x", "a", 0, T0 + i * 10000, i == 10 ? 9 : i);
    put(db, "x", "a", 0, T0 + 85000, 10);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        query(db, "x", NULL, 0, T0, T0 + HOUR, 40000, cases[c].agg, &q);
        assert_int_equal(q.n, 1);
        assert_int_equal(q.s[0].n, 3);
        for (int b = 0; b < 3; b++) {
            assert_int_equal(q.s[0].ts[b], T0 + b * 40000);
            if (fabs(q.s[0].v[b] - cases[c].want[b]) > 1e-9)
                fail_msg("agg %d bucket %d: %g, want %g", cases[c].agg, b, q.s[0].v[b],
                         cases[c].want[b]);
        }
        qres_free(&q);
    }
    /* Buckets align to multiples of the step, also for negative times. */
    put(db, "neg", "a", 0, -1, 1);
    put(db, "neg", "a", 0, -1000, 2);
    put(db, "neg", "a", 0, 0, 3);
    query(db, "neg", NULL, 0, INT64_MIN, INT64_MAX, 1000, XL_AGG_SUM, &q);
    assert_int_equal(q.s[0].n, 2);
    assert_int_equal(q.s[0].ts[0], -1000);
    assert_true(q.s[0].v[0] == 3);
    assert_int_equal(q.s[0].ts[1], 0);
    qres_free(&q);
    /* Bad arguments. */
    assert_int_equal(
        xl_tsdb_query(db, "x", NULL, 0, T0, T0 + 1, 0, XL_AGG_AVG, collect_cb, &q, &err),
        XL_EINVAL);
    assert_int_equal(
        xl_tsdb_query(db, "x", NULL, 0, T0 + 1, T0, 0, XL_AGG_NONE, collect_cb, &q, &err),
        XL_EINVAL);
    xl_tsdb_close(db);
}

static void test_agg_parse(void **state)
{
    enum xl_agg a;

    (void)state;
    assert_int_equal(xl_agg_parse("avg", &a), XL_OK);
    assert_int_equal(a, XL_AGG_AVG);
    assert_int_equal(xl_agg_parse("count", &a), XL_OK);
    assert_int_equal(a, XL_AGG_COUNT);
    assert_int_equal(xl_agg_parse("raw", &a), XL_OK);
    assert_int_equal(a, XL_AGG_NONE);
    assert_int_equal(xl_agg_parse("median", &a), XL_EINVAL);
    assert_int_equal(xl_agg_parse(NULL, &a), XL_EINVAL);
}

struct names_res {
    size_t n;
    char name[8][32];
    size_t count[8];
};

static int names_cb(void *ctx, const char *name, size_t nseries)
{
    struct names_res *r = ctx;

    assert_true(r->n < 8);
    snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
    r->count[r->n++] = nseries;
    return 0;
}

static int stop_after_one(void *ctx, const struct xl_series_result *r)
{
    (void)r;
    (*(int *)ctx)++;
    return 1;
}

static void test_names_series(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    struct xl_matcher m = {"host", "b", XL_MATCH_EQ}, empty = {"zone", "", XL_MATCH_EQ};
    struct xl_matcher byname = {"__name__", "up", XL_MATCH_EQ};
    struct names_res r = {0};
    struct xl_err err;
    struct qres q = {0};
    int calls = 0;

    put(db, "up", "b", 0, T0, 1);
    put(db, "up", "a", 0, T0, 1);
    put(db, "up", "a", 1, T0, 1);
    put(db, "load", "b", 0, T0, 1);
    put(db, "zz", "c", 0, T0, 1);
    assert_int_equal(xl_tsdb_names(db, NULL, 0, names_cb, &r, &err), XL_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.name[0], "load");
    assert_string_equal(r.name[1], "up");
    assert_int_equal(r.count[1], 3);
    assert_string_equal(r.name[2], "zz");
    memset(&r, 0, sizeof(r));
    assert_int_equal(xl_tsdb_names(db, &m, 1, names_cb, &r, &err), XL_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.count[0], 1);
    assert_int_equal(r.count[1], 1);
    /* A missing label equals "". */
    memset(&r, 0, sizeof(r));
    assert_int_equal(xl_tsdb_names(db, &empty, 1, names_cb, &r, &err), XL_OK);
    assert_int_equal(r.n, 3);
    /* Series listing: sorted by name then labels, no points. */
    assert_int_equal(xl_tsdb_series(db, "up", NULL, 0, collect_cb, &q, &err), XL_OK);
    assert_int_equal(q.n, 3);
    assert_string_equal(q.s[0].labels, "host=a,i=0");
    assert_string_equal(q.s[1].labels, "host=a,i=1");
    assert_string_equal(q.s[2].labels, "host=b,i=0");
    assert_int_equal(q.s[0].n, 0);
    qres_free(&q);
    assert_int_equal(xl_tsdb_series(db, NULL, &m, 1, collect_cb, &q, &err), XL_OK);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.s[0].name, "load");
    assert_string_equal(q.s[1].name, "up");
    qres_free(&q);
    assert_int_equal(xl_tsdb_series(db, NULL, &byname, 1, collect_cb, &q, &err), XL_OK);
    assert_int_equal(q.n, 3);
    qres_free(&q);
    /* A callback can stop the iteration. */
    assert_int_equal(xl_tsdb_series(db, NULL, NULL, 0, stop_after_one, &calls, &err), XL_OK);
    assert_int_equal(calls, 1);
    xl_tsdb_close(db);
}

static void test_label_canonical(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    struct xl_label l1[] = {{"b", "2"}, {"a", "1"}, {"c", ""}};
    struct xl_label l2[] = {{"a", "1"}, {"b", "2"}};
    struct xl_label weird[] = {
        {"q", "quote\" back\\ nl\n tab\t uni \xc3\xa9 \xf0\x9f\x98\x80 \x01"}};
    struct xl_tsdb_sample s[] = {
        {"m", l1, 3, T0, 1}, {"m", l2, 2, T0 + 1, 2}, {"w", weird, 1, T0, 3}};
    struct xl_tsdb_stats st;
    struct xl_err err;
    struct qres q;

    assert_int_equal(xl_tsdb_append(db, s, 3, &err), XL_OK);
    stats(db, &st);
    assert_int_equal(st.series, 2);
    query(db, "m", NULL, 0, T0, T0 + 1, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.s[0].labels, "a=1,b=2");
    assert_int_equal(q.s[0].n, 2);
    qres_free(&q);
    xl_tsdb_close(db);
    /* The JSON in SQLite round-trips odd bytes. */
    db = open_db(*state, XL_TSDB_SYNC_NONE);
    query(db, "w", NULL, 0, T0, T0, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.s[0].labels + 2, weird[0].value);
    qres_free(&q);
    /* The same series again is found, not created. */
    assert_int_equal(xl_tsdb_append(db, &s[2], 1, &err), XL_OK);
    stats(db, &st);
    assert_int_equal(st.series, 2);
    xl_tsdb_close(db);
}

static void test_invalid_input(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    struct xl_label ok[] = {{"a", "1"}};
    struct xl_label dup[] = {{"a", "1"}, {"a", "2"}};
    struct xl_label badname[] = {{"1a", "1"}};
    struct xl_label reserved[] = {{"__x", "1"}};
    struct xl_tsdb_sample s[] = {{"m", ok, 1, T0, 1}, {"m", dup, 2, T0, 1}};
    struct xl_tsdb_sample t[] = {{"m", ok, 1, T0, 1}, {"bad-name", ok, 1, T0, 1}};
    struct xl_tsdb_sample u[] = {{"m", badname, 1, T0, 1}};
    struct xl_tsdb_sample v[] = {{"m", reserved, 1, T0, 1}};
    struct xl_tsdb_sample w[] = {{"", ok, 1, T0, 1}};
    struct xl_tsdb_stats st;
    struct xl_err err;
    struct xl_tsdb_opts o = {.dir = NULL};
    struct xl_tsdb *db2;

    assert_int_equal(xl_tsdb_append(db, s, 2, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "sample 1"));
    assert_int_equal(xl_tsdb_append(db, t, 2, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "bad-name"));
    assert_int_equal(xl_tsdb_append(db, u, 1, &err), XL_EINVAL);
    assert_int_equal(xl_tsdb_append(db, v, 1, &err), XL_EINVAL);
    assert_int_equal(xl_tsdb_append(db, w, 1, &err), XL_EINVAL);
    assert_int_equal(xl_tsdb_append(db, s, 0, &err), XL_OK);
    /* The batch is atomic: nothing of the failed ones is stored. */
    stats(db, &st);
    assert_int_equal(st.samples_appended, 0);
    assert_int_equal(st.head_samples, 0);
    /* A second store on the same dir is refused. */
    o.dir = *state;
    assert_int_equal(xl_tsdb_open(&o, &db2, &err), XL_EEXIST);
    o.dir = NULL;
    assert_int_equal(xl_tsdb_open(&o, &db2, &err), XL_EINVAL);
    xl_tsdb_close(db);
    xl_tsdb_close(NULL);
}

static void test_special_values(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    double vals[] = {NAN, INFINITY, -INFINITY, -0.0, -1e300, 4.9e-324};
    struct xl_err err;
    struct qres q;

    for (int i = 0; i < 6; i++)
        put(db, "v", "a", 0, T0 + i, vals[i]);
    for (int pass = 0; pass < 3; pass++) {
        query(db, "v", NULL, 0, T0, T0 + 10, 0, XL_AGG_NONE, &q);
        assert_int_equal(q.s[0].n, 6);
        assert_true(isnan(q.s[0].v[0]));
        for (int i = 1; i < 6; i++)
            assert_memory_equal(&q.s[0].v[i], &vals[i], sizeof(double));
        qres_free(&q);
        if (pass == 0)
            assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
        if (pass == 1) {
            xl_tsdb_close(db);
            db = open_db(*state, XL_TSDB_SYNC_NONE);
        }
    }
    /* min/max skip NaN unless that is all there is. */
    query(db, "v", NULL, 0, T0, T0 + 10, 1000, XL_AGG_MIN, &q);
    assert_true(q.s[0].v[0] == -INFINITY);
    qres_free(&q);
    query(db, "v", NULL, 0, T0, T0 + 0, 1000, XL_AGG_MAX, &q);
    assert_true(isnan(q.s[0].v[0]));
    qres_free(&q);
    xl_tsdb_close(db);
}

/* ---- duplicates and out-of-order ---- */

static void test_last_write_wins(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_NONE);
    struct xl_err err;
    struct qres q;

    put(db, "d", "a", 0, T0 + 5000, 1);
    put(db, "d", "a", 0, T0 + 1000, 1);
    put(db, "d", "a", 0, T0 + 3000, 1);
    put(db, "d", "a", 0, T0 + 1000, 2); /* overwrite in the head */
    query(db, "d", NULL, 0, T0, T0 + HOUR, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.s[0].n, 3);
    assert_int_equal(q.s[0].ts[0], T0 + 1000);
    assert_true(q.s[0].v[0] == 2);
    assert_int_equal(q.s[0].ts[2], T0 + 5000);
    qres_free(&q);
    assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
    put(db, "d", "a", 0, T0 + 1000, 3); /* overwrite a chunk from the head */
    put(db, "d", "a", 0, T0 + 2000, 3); /* out of order against the chunk */
    query(db, "d", NULL, 0, T0, T0 + HOUR, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.s[0].n, 4);
    assert_true(q.s[0].v[0] == 3);
    assert_int_equal(q.s[0].ts[1], T0 + 2000);
    qres_free(&q);
    assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
    put(db, "d", "a", 0, T0 + 1000, 4);
    assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
    /* Now three chunks hold T0+1000; the newest wins, also after reopen. */
    for (int pass = 0; pass < 2; pass++) {
        query(db, "d", NULL, 0, T0, T0 + HOUR, 0, XL_AGG_NONE, &q);
        assert_int_equal(q.s[0].n, 4);
        assert_true(q.s[0].v[0] == 4);
        qres_free(&q);
        xl_tsdb_close(db);
        db = open_db(*state, XL_TSDB_SYNC_NONE);
    }
    xl_tsdb_close(db);
}

/* ---- persistence ---- */

static void test_reopen(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    struct xl_tsdb_stats st;
    struct xl_err err;
    struct batch b;

    /* 5000 samples over 7 series: more than one chunk per series. */
    batch_make(&b, 5000, 7, T0, 0);
    assert_int_equal(xl_tsdb_append(db, b.s, b.n, &err), XL_OK);
    xl_tsdb_close(db);
    db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    stats(db, &st);
    assert_int_equal(st.series, 7);
    assert_int_equal(st.head_samples, 0); /* close checkpointed everything */
    assert_int_equal(st.wal_replayed_samples, 0);
    assert_true(st.chunks >= 7);
    check_batches(db, 7, T0, 5000);
    xl_tsdb_close(db);
    batch_free(&b);
}

static void child_append(const char *dir)
{
    struct xl_tsdb *db = open_db(dir, XL_TSDB_SYNC_ALWAYS);
    struct xl_err err;
    struct batch b;

    for (int k = 0; k < 4; k++) {
        batch_make(&b, 250, 10, T0 + k * 250, 0);
        if (xl_tsdb_append(db, b.s, b.n, &err) != XL_OK)
            _exit(1);
        batch_free(&b);
    }
}

static void test_crash_replay(void **state)
{
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;

    in_child(*state, child_append);
    db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    stats(db, &st);
    assert_int_equal(st.wal_replayed_records, 4);
    assert_int_equal(st.wal_replayed_samples, 1000);
    assert_int_equal(st.wal_truncated_bytes, 0);
    assert_string_equal(xl_tsdb_replay_detail(db), "");
    assert_int_equal(st.series, 10);
    check_batches(db, 10, T0, 1000);
    xl_tsdb_close(db);
    /* Crash again after the first clean close: still exactly once. */
    in_child(*state, child_append);
    db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    check_batches(db, 10, T0, 1000); /* same timestamps: overwrites */
    xl_tsdb_close(db);
    db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    check_batches(db, 10, T0, 1000);
    xl_tsdb_close(db);
}

static void child_append_ckpt_append(const char *dir)
{
    struct xl_tsdb *db = open_db(dir, XL_TSDB_SYNC_NONE);
    struct xl_err err;
    struct batch b;

    batch_make(&b, 600, 10, T0, 0);
    if (xl_tsdb_append(db, b.s, b.n, &err) != XL_OK)
        _exit(1);
    batch_free(&b);
    if (xl_tsdb_checkpoint(db, &err) != XL_OK)
        _exit(2);
    batch_make(&b, 400, 10, T0 + 600, 0);
    if (xl_tsdb_append(db, b.s, b.n, &err) != XL_OK)
        _exit(1);
    batch_free(&b);
}

static void test_checkpoint_then_crash(void **state)
{
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;

    in_child(*state, child_append_ckpt_append);
    db = open_db(*state, XL_TSDB_SYNC_NONE);
    stats(db, &st);
    assert_int_equal(st.wal_replayed_samples, 400);
    assert_true(st.chunks >= 10);
    check_batches(db, 10, T0, 1000);
    xl_tsdb_close(db);
}

static const char *crash_point;

static void crash_hook(const char *point)
{
    if (crash_point && strcmp(point, crash_point) == 0)
        _exit(0);
}

static void child_crash_in_checkpoint(const char *dir)
{
    struct xl_tsdb *db = open_db(dir, XL_TSDB_SYNC_ALWAYS);
    struct xl_err err;
    struct batch b;

    batch_make(&b, 500, 10, T0, 0);
    if (xl_tsdb_append(db, b.s, b.n, &err) != XL_OK)
        _exit(1);
    batch_free(&b);
    xl_tsdb_test_hook = crash_hook;
    (void)xl_tsdb_checkpoint(db, &err);
    _exit(3); /* the hook did not fire */
}

static void test_crash_in_checkpoint(void **state)
{
    static const char *points[] = {"checkpoint:swapped", "checkpoint:before-commit",
                                   "checkpoint:committed", "checkpoint:done"};
    struct xl_tsdb *db;
    struct xl_err err;
    struct batch b;

    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        char sub[600];

        snprintf(sub, sizeof(sub), "%s/p%zu", (const char *)*state, i);
        crash_point = points[i];
        in_child(sub, child_crash_in_checkpoint);
        crash_point = NULL;
        db = open_db(sub, XL_TSDB_SYNC_ALWAYS);
        check_batches(db, 10, T0, 500);
        /* More data, another checkpoint, a reopen: still exactly once. */
        batch_make(&b, 500, 10, T0 + 500, 0);
        assert_int_equal(xl_tsdb_append(db, b.s, b.n, &err), XL_OK);
        batch_free(&b);
        assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
        check_batches(db, 10, T0, 1000);
        xl_tsdb_close(db);
        db = open_db(sub, XL_TSDB_SYNC_ALWAYS);
        check_batches(db, 10, T0, 1000);
        xl_tsdb_close(db);
    }
}

static void cut_file(const char *path, off_t by)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - by), 0);
}

static void flip_byte(const char *path, off_t from_end)
{
    struct stat sb;
    uint8_t c;
    int fd;

    assert_int_equal(stat(path, &sb), 0);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, sb.st_size - from_end), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, sb.st_size - from_end), 1);
    close(fd);
}

static void test_torn_tail(void **state)
{
    char sub[600], seg[1024];
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;

    for (int mode = 0; mode < 3; mode++) {
        snprintf(sub, sizeof(sub), "%s/t%d", (const char *)*state, mode);
        in_child(sub, child_append); /* 4 records of 250 samples */
        last_segment(sub, seg, sizeof(seg));
        if (mode == 0)
            cut_file(seg, 7); /* mid-record */
        else if (mode == 1)
            flip_byte(seg, 100); /* inside the last record's payload */
        else {
            struct stat sb;

            /* Leave 4 bytes of the last record's frame header. The four
             * records have the same size. */
            assert_int_equal(stat(seg, &sb), 0);
            cut_file(seg, (sb.st_size - 16) / 4 - 4);
        }
        db = open_db(sub, XL_TSDB_SYNC_ALWAYS);
        stats(db, &st);
        assert_int_equal(st.wal_replayed_records, 3);
        assert_true(st.wal_truncated_bytes > 0);
        assert_int_equal(st.wal_truncated_segments, 1);
        assert_non_null(strstr(xl_tsdb_replay_detail(db), ".wal"));
        check_batches(db, 10, T0, 750);
        xl_tsdb_close(db);
        /* The cut is not reported again. */
        db = open_db(sub, XL_TSDB_SYNC_ALWAYS);
        stats(db, &st);
        assert_int_equal(st.wal_truncated_bytes, 0);
        check_batches(db, 10, T0, 750);
        xl_tsdb_close(db);
    }
}

static void child_two_segments(const char *dir)
{
    struct xl_tsdb *db = open_db(dir, XL_TSDB_SYNC_NONE);
    struct xl_err err;
    struct batch b;

    batch_make(&b, 300, 10, T0, 0);
    if (xl_tsdb_append(db, b.s, b.n, &err) != XL_OK)
        _exit(1);
    batch_free(&b);
    xl_tsdb_test_hook = crash_hook; /* crash right after the rotation */
    crash_point = "checkpoint:swapped";
    (void)xl_tsdb_checkpoint(db, &err);
}

/* A corrupt record in an older segment: its tail is dropped, the later
 * segments are still replayed. */
static void test_corrupt_middle_segment(void **state)
{
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;
    char seg[1024];

    in_child(*state, child_two_segments); /* samples in segment 1 */
    crash_point = NULL;
    xl_tsdb_test_hook = NULL;
    in_child(*state, child_append); /* replays 1, writes segment 3 */
    /* Corrupt the 300-sample record of segment 1. */
    snprintf(seg, sizeof(seg), "%s/wal/00000001.wal", (const char *)*state);
    flip_byte(seg, 5);
    db = open_db(*state, XL_TSDB_SYNC_NONE);
    stats(db, &st);
    assert_int_equal(st.wal_truncated_segments, 1);
    assert_int_equal(st.wal_replayed_samples, 1000);
    check_batches(db, 10, T0, 1000);
    xl_tsdb_close(db);
}

/* ---- background checkpoints and retention ---- */

static void wait_for_checkpoint(struct xl_tsdb *db, uint64_t n)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    struct xl_tsdb_stats st;

    for (int i = 0; i < 1000; i++) {
        stats(db, &st);
        if (st.checkpoints >= n)
            return;
        nanosleep(&ts, NULL);
    }
    fail_msg("no background checkpoint within 10 s");
}

static void test_background_checkpoint(void **state)
{
    struct xl_tsdb_opts o = {
        .dir = *state, .sync = XL_TSDB_SYNC_NONE, .flush_interval_ms = HOUR, .wal_max_bytes = 4096};
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;
    struct xl_err err;
    struct batch b;
    char seg[1024];

    assert_int_equal(xl_tsdb_open(&o, &db, &err), XL_OK);
    batch_make(&b, 1000, 10, T0, 0); /* one record well past 4 KiB */
    assert_int_equal(xl_tsdb_append(db, b.s, b.n, &err), XL_OK);
    batch_free(&b);
    wait_for_checkpoint(db, 1);
    stats(db, &st);
    assert_true(st.chunks >= 10);
    check_batches(db, 10, T0, 1000);
    /* The covered segment is gone: the only one left is the new, empty one. */
    last_segment(*state, seg, sizeof(seg));
    assert_non_null(strstr(seg, "00000002.wal"));
    assert_int_equal(st.wal_bytes, 16);
    xl_tsdb_close(db);

    o.flush_interval_ms = 50;
    o.wal_max_bytes = 0;
    assert_int_equal(xl_tsdb_open(&o, &db, &err), XL_OK);
    batch_make(&b, 100, 10, T0 + 1000, 0);
    assert_int_equal(xl_tsdb_append(db, b.s, b.n, &err), XL_OK);
    batch_free(&b);
    wait_for_checkpoint(db, 1);
    check_batches(db, 10, T0, 1100);
    xl_tsdb_close(db);
}

static void test_retention(void **state)
{
    struct xl_tsdb_opts o = {.dir = *state,
                             .sync = XL_TSDB_SYNC_NONE,
                             .flush_interval_ms = HOUR,
                             .retention_ms = 24 * HOUR};
    int64_t now = (int64_t)time(NULL) * 1000;
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;
    struct xl_err err;
    struct qres q;

    assert_int_equal(xl_tsdb_open(&o, &db, &err), XL_OK);
    put(db, "old", "a", 0, now - 10 * 24 * HOUR, 1);
    put(db, "old", "a", 0, now - 9 * 24 * HOUR, 1);
    put(db, "mixed", "a", 0, now - 10 * 24 * HOUR, 1);
    assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
    put(db, "mixed", "a", 0, now - HOUR, 2);
    assert_int_equal(xl_tsdb_checkpoint(db, &err), XL_OK);
    stats(db, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.chunks_deleted, 2);
    query(db, "old", NULL, 0, INT64_MIN, INT64_MAX, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 0);
    query(db, "mixed", NULL, 0, INT64_MIN, INT64_MAX, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.s[0].n, 1);
    assert_true(q.s[0].v[0] == 2);
    qres_free(&q);
    xl_tsdb_close(db);
    assert_int_equal(xl_tsdb_open(&o, &db, &err), XL_OK);
    stats(db, &st);
    assert_int_equal(st.chunks, 1);
    /* Series stay listed even when their data expired. */
    assert_int_equal(st.series, 2);
    xl_tsdb_close(db);
}

/* ---- series refs ---- */

static void test_series_ref(void **state)
{
    struct xl_tsdb *db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    struct xl_label l[] = {{"host", "a"}};
    struct xl_label l2[] = {{"host", "b"}};
    struct xl_tsdb_ref_sample rs[3];
    uint64_t r1, r1b, r2;
    struct xl_err err;
    struct qres q;

    assert_int_equal(xl_tsdb_series_ref(db, "m", l, 1, &r1, &err), XL_OK);
    assert_int_equal(xl_tsdb_series_ref(db, "m", l, 1, &r1b, &err), XL_OK);
    assert_int_equal(xl_tsdb_series_ref(db, "m", l2, 1, &r2, &err), XL_OK);
    assert_true(r1 == r1b);
    assert_true(r1 != r2);
    rs[0] = (struct xl_tsdb_ref_sample){r1, T0, 1};
    rs[1] = (struct xl_tsdb_ref_sample){r2, T0, 2};
    rs[2] = (struct xl_tsdb_ref_sample){r1, T0 + 1, 3};
    assert_int_equal(xl_tsdb_append_refs(db, rs, 3, &err), XL_OK);
    rs[1].ref = 12345;
    assert_int_equal(xl_tsdb_append_refs(db, rs, 3, &err), XL_ENOENT);
    xl_tsdb_close(db);
    db = open_db(*state, XL_TSDB_SYNC_ALWAYS);
    assert_int_equal(xl_tsdb_series_ref(db, "m", l, 1, &r1b, &err), XL_OK);
    assert_true(r1 == r1b); /* stable across restarts */
    query(db, "m", NULL, 0, T0, T0 + 1, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.n, 2);
    assert_int_equal(q.points, 3);
    qres_free(&q);
    xl_tsdb_close(db);
}

/* ---- concurrency ---- */

struct writer {
    struct xl_tsdb *db;
    int id;
    int batches;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct xl_err err;
    struct batch b;

    for (int k = 0; k < w->batches; k++) {
        /* Writer w owns timestamps T0 + (k * nwriters + w) * 200 + i. */
        batch_make(&b, 200, 10, T0 + (int64_t)(k * 4 + w->id) * 200, 0);
        if (xl_tsdb_append(w->db, b.s, b.n, &err) != XL_OK)
            fail_msg("append: %s", err.msg);
        batch_free(&b);
    }
    return NULL;
}

static void *checkpointer_main(void *arg)
{
    struct xl_tsdb *db = arg;
    struct timespec ts = {0, 2 * 1000 * 1000};
    struct xl_err err;
    struct qres q;

    for (int i = 0; i < 15; i++) {
        if (xl_tsdb_checkpoint(db, &err) != XL_OK)
            fail_msg("checkpoint: %s", err.msg);
        query(db, "m", NULL, 0, INT64_MIN, INT64_MAX, 1000, XL_AGG_COUNT, &q);
        /* Never more points than written; duplicates would show here. */
        for (size_t k = 0; k < q.n; k++)
            for (size_t j = 0; j < q.s[k].n; j++)
                assert_true(q.s[k].v[j] <= 100);
        qres_free(&q);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    for (int sync = 0; sync < 2; sync++) {
        struct xl_tsdb *db = open_db(*state, sync ? XL_TSDB_SYNC_NONE : XL_TSDB_SYNC_ALWAYS);
        struct writer w[4];
        pthread_t th[4], ck;
        struct xl_tsdb_stats st;

        for (int i = 0; i < 4; i++) {
            w[i] = (struct writer){db, i, 25};
            pthread_create(&th[i], NULL, writer_main, &w[i]);
        }
        pthread_create(&ck, NULL, checkpointer_main, db);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        pthread_join(ck, NULL);
        stats(db, &st);
        assert_int_equal(st.samples_appended, 4 * 25 * 200);
        if (sync == 0)
            assert_true(st.wal_syncs > 0 && st.wal_syncs <= 100);
        check_batches(db, 10, T0, 4 * 25 * 200);
        xl_tsdb_close(db);
        db = open_db(*state, XL_TSDB_SYNC_NONE);
        check_batches(db, 10, T0, 4 * 25 * 200);
        xl_tsdb_close(db);
    }
}

/* ---- allocation failures ---- */

static void test_alloc_failure(void **state)
{
    struct xl_tsdb_stats st;
    struct xl_tsdb *db = NULL;
    struct xl_err err;
    struct batch b;
    struct qres q;
    size_t expect = 0;
    xl_rc rc;
    long k;

    /* Open fails cleanly at every allocation until it succeeds. */
    db = open_db(*state, XL_TSDB_SYNC_NONE);
    put(db, "other", "a", 0, T0, 1);
    xl_tsdb_close(db);
    db = NULL;
    in_child(*state, child_append); /* something to replay */
    for (k = 0;; k++) {
        struct xl_tsdb_opts o = {.dir = *state, .flush_interval_ms = HOUR};

        xl_alloc_fail_after(k);
        rc = xl_tsdb_open(&o, &db, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
        assert_null(db);
    }
    check_batches(db, 10, T0, 1000);
    /* Appends of new series and of known ones: all or nothing. */
    for (int round = 0; round < 2; round++) {
        batch_make(&b, 300, round ? 10 : 30, T0 + 1000 + round * 300, 0);
        for (k = 0;; k++) {
            xl_alloc_fail_after(k);
            rc = xl_tsdb_append(db, b.s, b.n, &err);
            xl_alloc_fail_after(-1);
            stats(db, &st);
            if (rc == XL_OK)
                break;
            assert_int_equal(rc, XL_ENOMEM);
            assert_int_equal(st.samples_appended, expect);
        }
        expect += 300;
        assert_int_equal(st.samples_appended, expect);
        batch_free(&b);
    }
    /* Queries and checkpoints. */
    for (k = 0;; k++) {
        memset(&q, 0, sizeof(q));
        xl_alloc_fail_after(k);
        rc = xl_tsdb_query(db, "m", NULL, 0, INT64_MIN, INT64_MAX, 0, XL_AGG_NONE, collect_cb, &q,
                           &err);
        xl_alloc_fail_after(-1);
        qres_free(&q);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
    }
    for (k = 0;; k++) {
        xl_alloc_fail_after(k);
        rc = xl_tsdb_checkpoint(db, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
    }
    stats(db, &st);
    assert_int_equal(st.head_samples, 0);
    xl_tsdb_close(db);
    db = open_db(*state, XL_TSDB_SYNC_NONE);
    stats(db, &st);
    assert_int_equal(st.series, 31); /* "other" and the 30 of batch_make */
    query(db, "m", NULL, 0, INT64_MIN, INT64_MAX, 0, XL_AGG_NONE, &q);
    assert_int_equal(q.points, 1000 + 600);
    qres_free(&q);
    xl_tsdb_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregations, setup, teardown),
        cmocka_unit_test(test_agg_parse),
        cmocka_unit_test_setup_teardown(test_names_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_write_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_then_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_in_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
