/* Unit tests for the agent's `tail` input.
 *
 * First the pieces on their own (config table, filters, multiline assembly,
 * fingerprints, the offsets file), then the whole input on a real libuv
 * loop over files in a temporary directory: a test sink records every line
 * and mark and (by default) commits each mark at once, the loop runs in
 * bounded steps until a condition holds or a deadline passes. Every
 * rotation test writes numbered lines and requires each to arrive exactly
 * once, with no (file_uid, offset, part) twice. */
#define _GNU_SOURCE /* nftw, open_memstream */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "agent/inputs/tail/filter.h"
#include "agent/inputs/tail/fingerprint.h"
#include "agent/inputs/tail/multiline.h"
#include "agent/inputs/tail/offsets.h"
#include "agent/inputs/tail/tail.h"
#include "common/alloc.h"

/* Internal (tail_int.h): is name a rotation name of base? */
bool tail_is_rotation_name(const char *base, const char *name);
#define tail_name_ok tail_is_rotation_name
#include "common/log.h"
#include "common/units.h"

/* ------------------------------------------------------------ helpers */

static struct xl_strlist mklist(const char **v, size_t n)
{
    struct xl_strlist l = {.v = (char **)v, .n = n};
    return l;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 64, FTW_DEPTH | FTW_PHYS);
}

static void write_str(const char *path, const char *mode, const char *s)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
    assert_int_equal(fclose(f), 0);
}

static void write_bytes(const char *path, const char *mode, const void *p, size_t n)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Numbered lines "L0000042 <pad>\n": index first..first+n-1. */
static void write_lines(const char *path, int first, int n)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    for (int i = first; i < first + n; i++)
        fprintf(f, "L%07d %.*s\n", i, (i * 7) % 40,
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
    assert_int_equal(fclose(f), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t n;
    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* ------------------------------------------------------------ test sink */

struct rec {
    uint64_t uid, off, end;
    uint32_t part, parts;
    char *data;
    size_t len;
    char path[256];
    char matched[256]; /* names joined with '|' */
};

struct sink {
    struct rec *v;
    size_t n, cap;
    struct xl_tail *t;
    bool autocommit;
    size_t full_at; /* full() once n reaches this (0: never) */
    bool full;
    uint64_t marks;
    uint64_t mark_uid[64], mark_end[64];
    size_t nmark_uids;
};

static void s_line(void *ctx, const struct xl_log_line *l)
{
    struct sink *s = ctx;
    struct rec *r;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    r = &s->v[s->n++];
    memset(r, 0, sizeof(*r));
    r->uid = l->file_uid;
    r->off = l->offset;
    r->end = l->end;
    r->part = l->part;
    r->parts = l->parts;
    r->len = l->len;
    r->data = malloc(l->len + 1);
    memcpy(r->data, l->data, l->len);
    r->data[l->len] = 0;
    snprintf(r->path, sizeof(r->path), "%s", l->path);
    for (size_t i = 0; i < l->nmatched; i++) {
        size_t k = strlen(r->matched);
        snprintf(r->matched + k, sizeof(r->matched) - k, "%s%s", i ? "|" : "", l->matched[i]);
    }
    assert_true(l->end > l->offset || l->len == 0);
    assert_non_null(l->input);
    if (s->full_at && s->n >= s->full_at)
        s->full = true;
}

static void s_mark(void *ctx, uint64_t uid, uint64_t end)
{
    struct sink *s = ctx;
    size_t i;

    s->marks++;
    for (i = 0; i < s->nmark_uids && s->mark_uid[i] != uid; i++)
        ;
    if (i == s->nmark_uids && i < 64) {
        s->mark_uid[i] = uid;
        s->nmark_uids++;
    }
    if (i < 64) {
        assert_true(end > s->mark_end[i] || s->mark_end[i] == 0); /* monotonic per uid */
        s->mark_end[i] = end;
    }
    if (s->autocommit)
        xl_tail_commit(s->t, uid, end); /* re-entrant on purpose */
}

static bool s_full(void *ctx)
{
    return ((struct sink *)ctx)->full;
}

static void sink_reset(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].data);
    s->n = 0;
}

static void sink_free(struct sink *s)
{
    sink_reset(s);
    free(s->v);
    s->v = NULL;
    s->cap = 0;
}

/* ------------------------------------------------------------ harness */

struct h {
    char dir[128];
    char state[160];
    uv_loop_t loop;
    uv_timer_t tick;
    struct xl_tail *t;
    struct sink s;
};

static void on_tick(uv_timer_t *t)
{
}

static void h_init(struct h *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "/tmp/xltail.XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->state, sizeof(h->state), "%s/state", h->dir);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->tick);
    uv_timer_start(&h->tick, on_tick, 2, 2); /* bounds UV_RUN_ONCE */
    h->s.autocommit = true;
}

static char *hp(struct h *h, const char *name)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", h->dir, name);
    return b;
}

/* Parse one inputs.tail[] item from YAML (with "@" replaced by the temp dir). */
static void cfg_load(struct h *h, struct xl_tail_input_cfg *cfg, const char *yaml)
{
    char text[4096], *w = text;
    struct xl_err err = {0};

    for (const char *p = yaml; *p && w < text + sizeof(text) - 200; p++) {
        if (*p == '@')
            w += snprintf(w, 200, "%s", h->dir);
        else
            *w++ = *p;
    }
    *w = 0;
    memset(cfg, 0, sizeof(*cfg));
    if (xl_cfg_load_buf(xl_tail_cfg_keys, cfg, "test.yaml", text, strlen(text), &err) != XL_OK)
        fail_msg("config: %s", err.msg);
}

static xl_rc h_start_n(struct h *h, const char **yamls, size_t n, struct xl_err *err)
{
    struct xl_tail_input_cfg cfgs[8];
    struct xl_tail_sink sink = {.line = s_line, .mark = s_mark, .full = s_full, .ctx = &h->s};
    xl_rc rc;

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        cfg_load(h, &cfgs[i], yamls[i]);
    rc = xl_tail_start(&h->loop, h->state, cfgs, n, &sink, &h->t, err);
    h->s.t = h->t;
    for (size_t i = 0; i < n; i++)
        xl_cfg_cleanup(xl_tail_cfg_keys, &cfgs[i]);
    return rc;
}

static void h_start(struct h *h, const char *yaml)
{
    struct xl_err err = {0};
    if (h_start_n(h, &yaml, 1, &err) != XL_OK)
        fail_msg("xl_tail_start: %s", err.msg);
}

static void h_reconfigure(struct h *h, const char **yamls, size_t n)
{
    struct xl_tail_input_cfg cfgs[8];
    struct xl_err err = {0};

    for (size_t i = 0; i < n; i++)
        cfg_load(h, &cfgs[i], yamls[i]);
    if (xl_tail_reconfigure(h->t, cfgs, n, &err) != XL_OK)
        fail_msg("xl_tail_reconfigure: %s", err.msg);
    for (size_t i = 0; i < n; i++)
        xl_cfg_cleanup(xl_tail_cfg_keys, &cfgs[i]);
}

typedef bool (*cond_fn)(struct h *h, void *arg);

static bool h_run_until(struct h *h, cond_fn cond, void *arg, int ms)
{
    int64_t deadline = xl_mono_ms() + ms;

    while (xl_mono_ms() < deadline) {
        uv_run(&h->loop, UV_RUN_ONCE);
        if (cond && cond(h, arg))
            return true;
    }
    return cond ? cond(h, arg) : true;
}

static void h_run_for(struct h *h, int ms)
{
    h_run_until(h, NULL, NULL, ms);
}

static bool have_n(struct h *h, void *arg)
{
    return h->s.n >= (size_t)(uintptr_t)arg;
}

/* Which numbered lines are missing (for a failure message). */
static void print_missing(struct h *h, int n)
{
    char *seen = calloc((size_t)n, 1);
    int from = -1;

    for (size_t i = 0; i < h->s.n; i++) {
        int k;
        if (sscanf(h->s.v[i].data, "L%7d", &k) == 1 && k >= 0 && k < n)
            seen[k] = 1;
    }
    for (int k = 0; k <= n; k++) {
        if (k < n && !seen[k] && from < 0)
            from = k;
        if ((k == n || seen[k]) && from >= 0) {
            print_message("missing lines %d..%d\n", from, k - 1);
            from = -1;
        }
    }
    free(seen);
}

static void h_wait_lines(struct h *h, size_t n)
{
    if (!h_run_until(h, have_n, (void *)(uintptr_t)n, 10000)) {
        print_missing(h, (int)n);
        fail_msg("timed out: %zu of %zu lines delivered", h->s.n, n);
    }
}

static void h_stop(struct h *h)
{
    if (h->t)
        xl_tail_stop(h->t);
    h->t = NULL;
    h->s.t = NULL;
    h_run_for(h, 20);
}

static void h_cleanup(struct h *h)
{
    h_stop(h);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    sink_free(&h->s);
    rm_rf(h->dir);
}

static struct xl_tail_stats stats(struct h *h)
{
    struct xl_tail_stats st;
    xl_tail_get_stats(h->t, &st);
    return st;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->uid != y->uid)
        return x->uid < y->uid ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return (int)x->part - (int)y->part;
}

/* Every numbered line 0..n-1 arrived exactly once; no (uid, offset, part)
 * twice; each record's text has the line's own length (end - offset - 1). */
static void check_exact(struct h *h, int n)
{
    int *seen = calloc((size_t)n, sizeof(int));
    struct rec *v = malloc((h->s.n ? h->s.n : 1) * sizeof(*v));

    for (size_t i = 0; i < h->s.n; i++) {
        const struct rec *r = &h->s.v[i];
        int k;
        if (sscanf(r->data, "L%7d", &k) != 1 || k < 0 || k >= n)
            fail_msg("unexpected line '%s'", r->data);
        seen[k]++;
        assert_int_equal(r->end - r->off, r->len + 1);
    }
    for (int k = 0; k < n; k++)
        if (seen[k] != 1)
            fail_msg("line %d delivered %d times (%zu records)", k, seen[k], h->s.n);
    memcpy(v, h->s.v, h->s.n * sizeof(*v));
    qsort(v, h->s.n, sizeof(*v), cmp_rec);
    for (size_t i = 1; i < h->s.n; i++)
        if (v[i].uid == v[i - 1].uid && v[i].off == v[i - 1].off && v[i].part == v[i - 1].part)
            fail_msg("duplicate (uid %016llx, offset %llu)", (unsigned long long)v[i].uid,
                     (unsigned long long)v[i].off);
    free(v);
    free(seen);
}

/* ------------------------------------------------------------ config table */

static void test_config_table(void **state)
{
    struct xl_tail_input_cfg c;
    struct xl_err err = {0};
    const char *y = "name: app\n"
                    "paths: [/var/log/app/*.log, /var/log/x.log]\n"
                    "exclude_paths: ['*.gz']\n"
                    "from: head\n"
                    "include: [ERROR, 're:timeout after \\d+ms']\n"
                    "exclude: [healthcheck]\n"
                    "multiline: {start: '^\\d{4}-', max_lines: 20, max_bytes: 64KiB, "
                    "flush_timeout: 500ms}\n"
                    "max_line_bytes: 1KiB\n"
                    "poll_interval: 250ms\n"
                    "rotate_wait: 1s\n";
    char *doc = NULL;
    size_t doclen = 0;
    FILE *f;

    memset(&c, 0, sizeof(c));
    assert_int_equal(xl_cfg_load_buf(xl_tail_cfg_keys, &c, "t.yaml", y, strlen(y), &err), XL_OK);
    assert_string_equal(c.name, "app");
    assert_int_equal(c.paths.n, 2);
    assert_string_equal(c.exclude_paths.v[0], "*.gz");
    assert_string_equal(c.from, "head");
    assert_string_equal(c.include.v[1], "re:timeout after \\d+ms");
    assert_string_equal(c.multiline.start, "^\\d{4}-");
    assert_int_equal(c.multiline.max_lines, 20);
    assert_int_equal(c.multiline.max_bytes, 65536);
    assert_int_equal(c.multiline.flush_timeout, 500);
    assert_int_equal(c.max_line_bytes, 1024);
    assert_int_equal(c.poll_interval, 250);
    assert_int_equal(c.rotate_wait, 1000);
    xl_cfg_cleanup(xl_tail_cfg_keys, &c);

    /* Defaults. */
    assert_int_equal(xl_cfg_load_buf(xl_tail_cfg_keys, &c, "t.yaml", "name: a\n", 8, &err), XL_OK);
    assert_string_equal(c.from, "end");
    assert_null(c.multiline.start);
    assert_int_equal(c.multiline.max_lines, 500);
    assert_int_equal(c.multiline.max_bytes, 1 << 20);
    assert_int_equal(c.multiline.flush_timeout, 2000);
    assert_int_equal(c.max_line_bytes, 65536);
    assert_int_equal(c.poll_interval, 1000);
    assert_int_equal(c.rotate_wait, 5000);
    xl_cfg_cleanup(xl_tail_cfg_keys, &c);

    /* Rejections name the line. */
    assert_int_not_equal(
        xl_cfg_load_buf(xl_tail_cfg_keys, &c, "t.yaml", "name: a\nfrom: middle\n", 21, &err),
        XL_OK);
    assert_non_null(strstr(err.msg, "t.yaml:2"));
    xl_cfg_cleanup(xl_tail_cfg_keys, &c);
    assert_int_not_equal(
        xl_cfg_load_buf(xl_tail_cfg_keys, &c, "t.yaml", "name: a\nbogus: 1\n", 17, &err), XL_OK);
    xl_cfg_cleanup(xl_tail_cfg_keys, &c);

    /* The table documents itself. */
    f = open_memstream(&doc, &doclen);
    xl_cfg_doc(xl_tail_cfg_keys, f, 0);
    fclose(f);
    assert_non_null(strstr(doc, "max_line_bytes"));
    assert_non_null(strstr(doc, "flush_timeout"));
    free(doc);
}

/* ------------------------------------------------------------ filters */

static bool run_filter(struct xl_tail_filter *f, const char *line, char *names, size_t nlen)
{
    const char *const *m;
    size_t nm;
    bool keep = xl_tail_filter_line(f, line, strlen(line), &m, &nm);

    names[0] = 0;
    for (size_t i = 0; i < nm; i++) {
        size_t k = strlen(names);
        snprintf(names + k, nlen - k, "%s%s", i ? "|" : "", m[i]);
    }
    return keep;
}

static void test_filter_table(void **state)
{
    static const struct {
        const char *inc[3];
        const char *exc[2];
        const char *line;
        bool keep;
        const char *matched;
    } cases[] = {
        {{NULL}, {NULL}, "anything", true, ""},
        {{"ERROR"}, {NULL}, "2026 ERROR boom", true, "ERROR"},
        {{"ERROR"}, {NULL}, "2026 error boom", false, ""},
        {{"E"}, {NULL}, "xyzE", true, "E"}, /* one-byte keyword */
        {{"ERROR", "re:timeout after \\d+ms"},
         {NULL},
         "ERROR timeout after 30ms",
         true,
         "ERROR|re:timeout after \\d+ms"},
        {{"ERROR", "re:timeout after \\d+ms"},
         {NULL},
         "WARN timeout after 30ms",
         true,
         "re:timeout after \\d+ms"},
        {{"ERROR", "re:timeout after \\d+ms"}, {NULL}, "WARN timeout after xms", false, ""},
        {{"ERROR"}, {"healthcheck"}, "ERROR healthcheck failed", false, ""},
        {{NULL}, {"healthcheck"}, "GET /healthcheck", false, ""},
        {{NULL}, {"healthcheck"}, "GET /index", true, ""},
        {{"re:(?i)error"}, {NULL}, "an Error", true, "re:(?i)error"},
        {{"re:^\\d{4}-"}, {NULL}, "2026-01-01 x", true, "re:^\\d{4}-"},
        {{"re:^\\d{4}-"}, {NULL}, "x 2026-01-01", false, ""},
        {{NULL}, {"re:DEBUG|TRACE"}, "TRACE x", false, ""},
        {{"\xff\xfe"}, {NULL}, "bad \xff\xfe utf8", true, "\xff\xfe"},
        {{"re:bad"}, {NULL}, "bad \xff utf8", true, "re:bad"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *inc[3], *exc[2];
        size_t ni = 0, ne = 0;
        struct xl_strlist li, le;
        struct xl_tail_filter *f;
        struct xl_err err = {0};
        char names[256];

        while (ni < 3 && cases[i].inc[ni])
            inc[ni] = cases[i].inc[ni], ni++;
        while (ne < 2 && cases[i].exc[ne])
            exc[ne] = cases[i].exc[ne], ne++;
        li = mklist(inc, ni);
        le = mklist(exc, ne);
        assert_int_equal(xl_tail_filter_new(&li, &le, "inputs.tail[0]", &f, &err), XL_OK);
        assert_int_equal(xl_tail_filter_passes_all(f), ni == 0 && ne == 0);
        if (run_filter(f, cases[i].line, names, sizeof(names)) != cases[i].keep)
            fail_msg("case %zu: '%s' keep should be %d", i, cases[i].line, cases[i].keep);
        if (cases[i].keep && strcmp(names, cases[i].matched) != 0)
            fail_msg("case %zu: matched '%s', expected '%s'", i, names, cases[i].matched);
        xl_tail_filter_free(f);
    }
}

static void test_filter_errors(void **state)
{
    const char *inc[] = {"a", "b", "re:foo("};
    const char *exc[] = {"ok", ""};
    const char *bad_re[] = {"re:"};
    struct xl_strlist li = mklist(inc, 3), le = mklist(exc, 2), lr = mklist(bad_re, 1);
    struct xl_tail_filter *f = NULL;
    struct xl_err err = {0};

    assert_int_equal(xl_tail_filter_new(&li, NULL, "inputs.tail[1]", &f, &err), XL_EINVAL);
    assert_null(f);
    assert_string_equal(err.msg,
                        "inputs.tail[1].include[2]: re:foo(: missing closing parenthesis at "
                        "offset 4");
    assert_int_equal(xl_tail_filter_new(NULL, &le, "inputs.tail[0]", &f, &err), XL_EINVAL);
    assert_string_equal(err.msg, "inputs.tail[0].exclude[1]: empty filter");
    assert_int_equal(xl_tail_filter_new(&lr, NULL, "inputs.tail[0]", &f, &err), XL_EINVAL);
    assert_string_equal(err.msg, "inputs.tail[0].include[0]: re:: empty regex");

    /* Allocation failures are reported, never crash or leak. */
    for (long k = 0; k < 12; k++) {
        const char *ok[] = {"x", "re:y+"};
        struct xl_strlist l = mklist(ok, 2);
        xl_alloc_fail_after(k);
        xl_rc rc = xl_tail_filter_new(&l, &l, "w", &f, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK)
            xl_tail_filter_free(f);
        else
            assert_int_equal(rc, XL_ENOMEM);
    }
}

/* The buffer scan (one keyword search per occurrence) decides exactly as
 * the per-line search, on random text full of near misses. */
static void test_filter_buffer_scan(void **state)
{
    const char *inc[] = {"ER", "E", "R E", "aa", "EEEE", "re:R\\s+a"};
    const char *exc[] = {"aaaE"};
    struct xl_strlist li = mklist(inc, 6), le = mklist(exc, 1), none = mklist(NULL, 0);
    static const char alphabet[] = "aaaaER E\n";
    uint64_t x = 12345;

    for (int round = 0; round < 400; round++) {
        struct xl_tail_filter *f1, *f2;
        struct xl_err err = {0};
        char buf[600];
        size_t n = (size_t)(round % 7 == 0 ? 600 : 1 + round % 200);

        assert_int_equal(xl_tail_filter_new(&li, round & 1 ? &le : &none, "w", &f1, &err), XL_OK);
        assert_int_equal(xl_tail_filter_new(&li, round & 1 ? &le : &none, "w", &f2, &err), XL_OK);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = round % 5 == 0 ? 'E' : alphabet[x % 9];
        }
        xl_tail_filter_begin(f2, buf, n);
        for (const char *p = buf, *e = buf + n; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(e - p);
            const char *const *m1, *const *m2;
            size_t n1, n2;
            bool k1 = xl_tail_filter_line(f1, p, len, &m1, &n1);
            bool k2 = xl_tail_filter_line_in(f2, p, len, &m2, &n2);
            if (k1 != k2 || (k1 && n1 != n2))
                fail_msg("round %d: '%.*s': line %d/%zu, scan %d/%zu", round, (int)len, p, k1, n1,
                         k2, n2);
            for (size_t i = 0; k1 && i < n1; i++)
                assert_string_equal(m1[i], m2[i]);
            p += len + 1;
        }
        xl_tail_filter_free(f1);
        xl_tail_filter_free(f2);
    }
}

/* ------------------------------------------------------------ multiline */

struct mlrec {
    char text[2048];
    uint64_t off, end;
};
static struct mlrec mlrecs[64];
static size_t nmlrecs;

static void ml_cap(void *ctx, const char *data, size_t len, uint64_t off, uint64_t end)
{
    assert_true(nmlrecs < 64);
    snprintf(mlrecs[nmlrecs].text, sizeof(mlrecs[0].text), "%.*s", (int)len, data);
    mlrecs[nmlrecs].off = off;
    mlrecs[nmlrecs].end = end;
    nmlrecs++;
}

/* Feed text line by line as if read from offset 0. */
static void ml_feed(struct xl_tail_ml *m, const struct xl_tail_ml_rule *r, const char *text)
{
    uint64_t off = 0;
    const char *p = text;

    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        xl_tail_ml_add(m, r, p, len, off, off + len + 1, 0, ml_cap, NULL);
        off += len + 1;
        p = nl + 1;
    }
}

static void test_multiline_assembly(void **state)
{
    struct xl_tail_multiline_cfg cfg = {.start = "^\\d{4}-\\d\\d-\\d\\d",
                                        .max_lines = 500,
                                        .max_bytes = 1 << 20,
                                        .flush_timeout = 2000};
    struct xl_tail_ml_rule *r;
    struct xl_tail_ml m = {0};
    struct xl_err err = {0};
    const char *java = "leading garbage\n"
                       "2026-11-21 10:00:00 ERROR request failed\n"
                       "java.lang.IllegalStateException: boom\n"
                       "\tat com.example.Foo.bar(Foo.java:42)\n"
                       "\tat com.example.Main.main(Main.java:7)\n"
                       "Caused by: java.io.IOException: disk\n"
                       "\t... 2 more\n"
                       "2026-11-21 10:00:01 INFO next\n";

    assert_int_equal(xl_tail_ml_rule_new(&cfg, "inputs.tail[0]", &r, &err), XL_OK);
    nmlrecs = 0;
    ml_feed(&m, r, java);
    /* The record in progress waits for its end (timeout or next start). */
    assert_int_equal(nmlrecs, 2);
    assert_true(xl_tail_ml_pending(&m));
    xl_tail_ml_flush(&m, ml_cap, NULL);
    assert_int_equal(nmlrecs, 3);
    assert_string_equal(mlrecs[0].text, "leading garbage");
    assert_int_equal(mlrecs[0].off, 0);
    assert_int_equal(mlrecs[0].end, 16);
    assert_string_equal(mlrecs[1].text, "2026-11-21 10:00:00 ERROR request failed\n"
                                        "java.lang.IllegalStateException: boom\n"
                                        "\tat com.example.Foo.bar(Foo.java:42)\n"
                                        "\tat com.example.Main.main(Main.java:7)\n"
                                        "Caused by: java.io.IOException: disk\n"
                                        "\t... 2 more");
    assert_int_equal(mlrecs[1].off, 16);
    assert_int_equal(mlrecs[1].end, mlrecs[1].off + strlen(mlrecs[1].text) + 1);
    assert_string_equal(mlrecs[2].text, "2026-11-21 10:00:01 INFO next");
    assert_int_equal(mlrecs[2].off, mlrecs[1].end);
    assert_int_equal(mlrecs[2].end, strlen(java));
    assert_false(xl_tail_ml_pending(&m));
    xl_tail_ml_cleanup(&m);
    xl_tail_ml_rule_free(r);

    /* max_lines: cut after 3 lines; the rest starts a record of its own. */
    cfg.max_lines = 3;
    assert_int_equal(xl_tail_ml_rule_new(&cfg, "w", &r, &err), XL_OK);
    nmlrecs = 0;
    ml_feed(&m, r, "2026-01-01 a\nb\nc\nd\ne\n2026-01-02 f\n");
    xl_tail_ml_flush(&m, ml_cap, NULL);
    assert_int_equal(nmlrecs, 3);
    assert_string_equal(mlrecs[0].text, "2026-01-01 a\nb\nc");
    assert_string_equal(mlrecs[1].text, "d\ne");
    assert_string_equal(mlrecs[2].text, "2026-01-02 f");
    assert_int_equal(mlrecs[1].off, mlrecs[0].end);
    xl_tail_ml_rule_free(r);

    /* max_bytes: a line that would pass it starts a new record. */
    cfg.max_lines = 500;
    cfg.max_bytes = 64;
    assert_int_equal(xl_tail_ml_rule_new(&cfg, "w", &r, &err), XL_OK);
    nmlrecs = 0;
    ml_feed(&m, r,
            "2026-01-01 0123456789012345678901234567890\n" /* 41 */
            "continuation-0123456789\n"                    /* +1+23 = 65 > 64 */
            "more\n");
    xl_tail_ml_flush(&m, ml_cap, NULL);
    assert_int_equal(nmlrecs, 2);
    assert_string_equal(mlrecs[0].text, "2026-01-01 0123456789012345678901234567890");
    assert_string_equal(mlrecs[1].text, "continuation-0123456789\nmore");
    for (size_t i = 0; i < nmlrecs; i++)
        assert_true(strlen(mlrecs[i].text) <= 64);
    xl_tail_ml_cleanup(&m);
    xl_tail_ml_rule_free(r);

    /* Off when start is unset; a bad start regex names the key. */
    cfg.start = NULL;
    assert_int_equal(xl_tail_ml_rule_new(&cfg, "w", &r, &err), XL_OK);
    assert_null(r);
    cfg.start = "([a-";
    assert_int_equal(xl_tail_ml_rule_new(&cfg, "inputs.tail[3]", &r, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "inputs.tail[3].multiline.start: ([a-: "));
}

/* ------------------------------------------------------------ fingerprints */

static void test_fingerprint(void **state)
{
    char dir[] = "/tmp/xltailfp.XXXXXX", path[64], big[3000];
    uint64_t h, h2;
    uint32_t got;
    int fd;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/f", dir);
    /* FNV-1a 64 reference values. */
    assert_true(xl_tail_fp_hash("", 0) == 0xcbf29ce484222325ULL);
    assert_true(xl_tail_fp_hash("a", 1) == 0xaf63dc4c8601ec8cULL);

    write_str(path, "w", "short\n");
    fd = open(path, O_RDONLY);
    assert_int_equal(xl_tail_fp_read(fd, XL_TAIL_FP_MAX, &h, &got, NULL), XL_OK);
    assert_int_equal(got, 6); /* fewer bytes than asked: the count is kept */
    assert_true(h == xl_tail_fp_hash("short\n", 6));
    assert_true(xl_tail_fp_matches(fd, h, got));
    close(fd);

    /* Growing keeps the fingerprint of the first 6 bytes valid. */
    memset(big, 'x', sizeof(big));
    write_bytes(path, "a", big, sizeof(big));
    fd = open(path, O_RDONLY);
    assert_true(xl_tail_fp_matches(fd, h, 6));
    assert_int_equal(xl_tail_fp_read(fd, XL_TAIL_FP_MAX, &h2, &got, NULL), XL_OK);
    assert_int_equal(got, XL_TAIL_FP_MAX);
    close(fd);

    /* Rewritten (even with the same size): no match. Shorter: no match. */
    write_str(path, "w", "SHORT\n");
    fd = open(path, O_RDONLY);
    assert_false(xl_tail_fp_matches(fd, h, 6));
    close(fd);
    write_str(path, "w", "sh");
    fd = open(path, O_RDONLY);
    assert_false(xl_tail_fp_matches(fd, h, 6));
    close(fd);
    rm_rf(dir);
}

/* ------------------------------------------------------------ offsets file */

static void test_offsets_roundtrip(void **state)
{
    char dir[] = "/tmp/xltailoff.XXXXXX", path[64], tmp[64];
    struct xl_tail_offset v[3] = {
        {.uid = 0x9f2c01d4a7b3e865ULL,
         .dev = 2049,
         .ino = 1234567,
         .fp = 0x0123456789abcdefULL,
         .fp_len = 1024,
         .offset = 81920,
         .input = "app",
         .path = "/var/log/app.log"},
        {.uid = 1,
         .dev = 0,
         .ino = 0,
         .fp = 0,
         .fp_len = 0,
         .offset = 0,
         .input = "we%ird name",
         .path = "/tmp/a b\n%c\t.log"},
        {.uid = UINT64_MAX,
         .dev = UINT64_MAX,
         .ino = UINT64_MAX,
         .fp = UINT64_MAX,
         .fp_len = 7,
         .offset = (uint64_t)INT64_MAX,
         .input = "app",
         .path = "/x/ünï.log"},
    };
    const char *inputs[] = {"app", "we%ird name", "idle"};
    struct xl_tail_offsets o;
    struct xl_err err = {0};
    struct stat st;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tail-offsets", dir);
    snprintf(tmp, sizeof(tmp), "%s/tail-offsets.tmp", dir);
    /* Missing file: empty set. */
    assert_int_equal(xl_tail_offsets_load(path, &o, &err), XL_OK);
    assert_int_equal(o.n, 0);
    assert_int_equal(xl_tail_offsets_save(path, tmp, v, 3, inputs, 3, &err), XL_OK);
    assert_int_not_equal(stat(tmp, &st), 0); /* renamed away */
    assert_int_equal(xl_tail_offsets_load(path, &o, &err), XL_OK);
    assert_int_equal(o.n, 3);
    assert_int_equal(o.inputs.n, 3);
    assert_string_equal(o.inputs.v[1], "we%ird name");
    for (size_t i = 0; i < 3; i++) {
        assert_true(o.v[i].uid == v[i].uid);
        assert_true(o.v[i].dev == v[i].dev);
        assert_true(o.v[i].ino == v[i].ino);
        assert_true(o.v[i].fp == v[i].fp);
        assert_int_equal(o.v[i].fp_len, v[i].fp_len);
        assert_true(o.v[i].offset == v[i].offset);
        assert_string_equal(o.v[i].input, v[i].input);
        assert_string_equal(o.v[i].path, v[i].path);
    }
    xl_tail_offsets_cleanup(&o);

    /* Replacing is atomic: a failed save leaves the old file. */
    {
        char badtmp[80];
        snprintf(badtmp, sizeof(badtmp), "%s/no/such/dir/tmp", dir);
        assert_int_equal(xl_tail_offsets_save(path, badtmp, v, 1, inputs, 1, &err), XL_EIO);
        assert_non_null(strstr(err.msg, badtmp));
        assert_int_equal(xl_tail_offsets_load(path, &o, &err), XL_OK);
        assert_int_equal(o.n, 3);
        xl_tail_offsets_cleanup(&o);
    }
    rm_rf(dir);
}

static void test_offsets_damaged(void **state)
{
    static const struct {
        const char *text;
        const char *msg; /* after "PATH:" */
    } cases[] = {
        {"", "1: empty file"},
        {"garbage\n", "1: not a tail offsets file"},
        {"xluo-tail-offsets 1\ninput app\n", "3: truncated: no end line"},
        {"xluo-tail-offsets 1\ninput app\nfile 0000000000000001 1 2 0000000000000000 0 5 app "
         "/x\nend 1 1",
         "4: truncated: the last line has no newline"},
        {"xluo-tail-offsets 1\nfile 0000000000000001 1 2 0000000000000000 0 5 app\nend 0 1\n",
         "2: file: expected 8 fields"},
        {"xluo-tail-offsets 1\nfile 00000000000000zz 1 2 0000000000000000 0 5 app /x\nend 0 1\n",
         "2: file_uid: expected 16 hex digits"},
        {"xluo-tail-offsets 1\nfile 0000000000000001 1 2 0000000000000000 2000 5 app /x\nend 0 "
         "1\n",
         "2: fingerprint bytes: expected 0 to 1024"},
        {"xluo-tail-offsets 1\nfile 0000000000000001 1 2 0000000000000000 0 -5 app /x\nend 0 1\n",
         "2: offset: expected a decimal number"},
        {"xluo-tail-offsets 1\nfile 0000000000000001 1 2 0000000000000000 0 5 app /x%zz\nend 0 "
         "1\n",
         "2: path: bad %-escape"},
        {"xluo-tail-offsets 1\ninput app\nend 1 1\n",
         "3: end: the file lists 1 inputs and 0 files"},
        {"xluo-tail-offsets 1\nend 0 0\ninput app\n", "3: data after the end line"},
        {"xluo-tail-offsets 1\nwhat is this\nend 0 0\n", "2: unknown line"},
        {"xluo-tail-offsets 1\ninput a\n\0\0\0\nend 1 0\n", "3: NUL byte"},
    };
    char dir[] = "/tmp/xltailoff.XXXXXX", path[64], prefix[80];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tail-offsets", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_tail_offsets o;
        struct xl_err err = {0};
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].msg, "NUL"))
            len = strlen("xluo-tail-offsets 1\ninput a\n") + 4 + strlen("end 1 0\n");
        write_bytes(path, "w", cases[i].text, len);
        if (xl_tail_offsets_load(path, &o, &err) != XL_EPARSE)
            fail_msg("case %zu: loaded", i);
        snprintf(prefix, sizeof(prefix), "%s:%s", path, cases[i].msg);
        if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, err.msg, prefix);
        assert_int_equal(o.n, 0);
    }
    rm_rf(dir);
}

/* ------------------------------------------------------------ reading */

static void test_read_boundaries(void **state)
{
    struct h h;
    char line[200];
    FILE *f;
    const int lens[] = {0, 1, 15, 16, 17, 31, 32, 33, 48, 0};
    const size_t n = sizeof(lens) / sizeof(lens[0]);

    h_init(&h);
    f = fopen(hp(&h, "a.log"), "w");
    for (size_t i = 0; i < n; i++) {
        memset(line, 'a' + (int)i, (size_t)lens[i]);
        line[lens[i]] = '\n';
        fwrite(line, 1, (size_t)lens[i] + 1, f);
    }
    fclose(f);
    h_start(&h,
            "name: t\npaths: ['@/a.log']\nfrom: head\nmax_line_bytes: 16\npoll_interval: 50ms\n");
    /* 0,1,15,16 whole; 17 -> 2 parts; 31,32 -> 2; 33,48 -> 3; 0 whole */
    h_wait_lines(&h, 4 + 2 + 2 + 2 + 3 + 3 + 1);
    h_run_for(&h, 30);
    assert_int_equal(h.s.n, 17);
    {
        size_t k = 0;
        uint64_t off = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = (size_t)lens[i], parts = len <= 16 ? 0 : (len + 15) / 16;
            for (size_t p = 0; p < (parts ? parts : 1); p++, k++) {
                struct rec *r = &h.s.v[k];
                size_t plen = parts ? (p + 1 < parts ? 16 : len - 16 * (parts - 1)) : len;
                assert_int_equal(r->off, off);
                assert_int_equal(r->len, plen);
                assert_int_equal(r->part, parts ? p + 1 : 0);
                assert_int_equal(r->parts, parts); /* whole line in the buffer: total known */
                for (size_t j = 0; j < plen; j++)
                    assert_int_equal(r->data[j], 'a' + (int)i);
                off += plen;
                if (!parts || p + 1 == parts)
                    off++; /* the newline */
                assert_int_equal(r->end, off);
            }
        }
    }
    assert_int_equal(stats(&h).lines_split, 5);
    assert_int_equal(stats(&h).lines_read, n);
    h_cleanup(&h);
}

static void test_read_1mib_line(void **state)
{
    struct h h;
    size_t len = 1 << 20;
    char *big = malloc(len + 1), *joined = malloc(len + 1);
    size_t at = 0;

    h_init(&h);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + (i * 31 + i / 7) % 26);
    big[len] = '\n';
    write_str(hp(&h, "a.log"), "w", "before\n");
    write_bytes(hp(&h, "a.log"), "a", big, len + 1);
    write_str(hp(&h, "a.log"), "a", "after\n");
    h_start(&h, "name: t\npaths: ['@/a.log']\nfrom: head\n");
    h_wait_lines(&h, 1 + 16 + 1);
    assert_string_equal(h.s.v[0].data, "before");
    for (size_t k = 1; k <= 16; k++) {
        struct rec *r = &h.s.v[k];
        assert_int_equal(r->part, k);
        assert_true(r->parts == 0 || r->parts == 16);
        assert_int_equal(r->off, 7 + at);
        assert_int_equal(r->len, 65536);
        memcpy(joined + at, r->data, r->len);
        at += r->len;
    }
    assert_int_equal(h.s.v[16].parts, 16); /* the last part knows the total */
    assert_int_equal(h.s.v[16].end, 7 + len + 1);
    assert_int_equal(at, len);
    assert_memory_equal(joined, big, len);
    assert_string_equal(h.s.v[17].data, "after");
    assert_int_equal(stats(&h).lines_split, 1);
    h_cleanup(&h);
    free(big);
    free(joined);
}

/* A line cut into parts across reads: its first parts cannot know the
 * total; the last one can. */
static void test_read_long_line_growing(void **state)
{
    struct h h;
    char buf[100];

    h_init(&h);
    memset(buf, 'x', sizeof(buf));
    write_bytes(hp(&h, "a.log"), "w", buf, 40);
    h_start(&h, "name: t\npaths: ['@/a.log']\nfrom: head\nmax_line_bytes: 16\n");
    h_wait_lines(&h, 2); /* 40 bytes: parts 1, 2 of 16 (the rest waits) */
    h_run_for(&h, 30);
    assert_int_equal(h.s.n, 2);
    assert_int_equal(h.s.v[0].parts, 0);
    write_bytes(hp(&h, "a.log"), "a", buf, 10);
    write_str(hp(&h, "a.log"), "a", "\n");
    h_wait_lines(&h, 4); /* 50 bytes: 16 16 16 2 */
    assert_int_equal(h.s.v[3].part, 4);
    assert_int_equal(h.s.v[3].parts, 4);
    assert_int_equal(h.s.v[3].len, 2);
    assert_int_equal(h.s.v[3].end, 51);
    h_cleanup(&h);
}

static void test_unterminated_last_line(void **state)
{
    struct h h;

    h_init(&h);
    write_str(hp(&h, "a.log"), "w", "one\ntwo\nthr");
    h_start(&h,
            "name: t\npaths: ['@/a.log']\nfrom: head\npoll_interval: 20ms\nrotate_wait: 50ms\n");
    h_wait_lines(&h, 2);
    h_run_for(&h, 100);
    assert_int_equal(h.s.n, 2); /* a live file's partial line waits for its newline */
    write_str(hp(&h, "a.log"), "a", "ee\nfou");
    h_wait_lines(&h, 3);
    assert_string_equal(h.s.v[2].data, "three");
    assert_int_equal(h.s.v[2].off, 8);
    /* Rotated away: after rotate_wait the rest is shipped as the last line. */
    assert_int_equal(rename(hp(&h, "a.log"), hp(&h, "a.log.1")), 0);
    h_wait_lines(&h, 4);
    assert_string_equal(h.s.v[3].data, "fou");
    assert_int_equal(h.s.v[3].off, 14);
    assert_int_equal(h.s.v[3].end, 17);
    /* Committed: the file is closed and forgotten. */
    {
        bool closed = false;
        for (int i = 0; i < 200 && !closed; i++) {
            h_run_for(&h, 10);
            closed = stats(&h).files_open == 0;
        }
        assert_true(closed);
    }
    h_cleanup(&h);
}

static void test_filters_in_pipeline(void **state)
{
    struct h h;

    h_init(&h);
    write_str(hp(&h, "a.log"), "w",
              "INFO fine\nERROR bad\nWARN timeout after 30ms\nERROR healthcheck\nERROR timeout "
              "after 5ms\n");
    h_start(&h, "name: t\npaths: ['@/a.log']\nfrom: head\ninclude: [ERROR, 're:timeout after "
                "\\d+ms']\nexclude: [healthcheck]\n");
    h_wait_lines(&h, 3);
    h_run_for(&h, 30);
    assert_int_equal(h.s.n, 3);
    assert_string_equal(h.s.v[0].data, "ERROR bad");
    assert_string_equal(h.s.v[0].matched, "ERROR");
    assert_string_equal(h.s.v[1].matched, "re:timeout after \\d+ms");
    assert_string_equal(h.s.v[2].matched, "ERROR|re:timeout after \\d+ms");
    assert_int_equal(stats(&h).lines_filtered, 2);
    assert_int_equal(stats(&h).lines_read, 5);
    /* Marks cover the filtered lines too: everything was committed. */
    assert_int_equal(h.s.mark_end[0], file_size(hp(&h, "a.log")));
    h_cleanup(&h);
}

static void test_multiline_in_pipeline(void **state)
{
    struct h h;
    int64_t t0;

    h_init(&h);
    write_str(
        hp(&h, "a.log"), "w",
        "2026-11-21 ERROR x\n\tat a\n\tat b\n2026-11-21 INFO y\n2026-11-21 ERROR z\n\tat c\n");
    h_start(&h, "name: t\npaths: ['@/a.log']\nfrom: head\nmultiline: {start: '^\\d{4}-', "
                "flush_timeout: 150ms}\n");
    h_wait_lines(&h, 2);
    t0 = xl_mono_ms();
    assert_string_equal(h.s.v[0].data, "2026-11-21 ERROR x\n\tat a\n\tat b");
    assert_int_equal(h.s.v[0].off, 0);
    assert_int_equal(h.s.v[0].end, 31);
    assert_string_equal(h.s.v[1].data, "2026-11-21 INFO y");
    /* The last record is open; marks stop at its first line. */
    assert_int_equal(h.s.mark_end[0], h.s.v[1].end);
    /* More of it arrives before the timeout. */
    write_str(hp(&h, "a.log"), "a", "\tat d\n");
    h_wait_lines(&h, 3);
    assert_true(xl_mono_ms() - t0 >= 100);
    assert_string_equal(h.s.v[2].data, "2026-11-21 ERROR z\n\tat c\n\tat d");
    assert_int_equal(h.s.v[2].end, file_size(hp(&h, "a.log")));
    assert_int_equal(h.s.mark_end[0], file_size(hp(&h, "a.log")));
    h_cleanup(&h);
}

/* ------------------------------------------------------------ discovery */

static void test_discovery_globs(void **state)
{
    struct h h;
    char p[512];

    h_init(&h);
    mkdir(hp(&h, "svc1"), 0755);
    mkdir(hp(&h, "svc2"), 0755);
    mkdir(hp(&h, "other"), 0755);
    write_str(hp(&h, "svc1/app.log"), "w", "old line\n");
    write_str(hp(&h, "svc1/app.log.gz"), "w", "compressed\n");
    write_str(hp(&h, "other/app.log"), "w", "not matched\n");
    write_str(hp(&h, "svc2/.hidden.log"), "w", "hidden\n");
    h_start(&h,
            "name: t\npaths: ['@/svc*/*.log*']\nexclude_paths: ['*.gz']\npoll_interval: 200ms\n");
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 0); /* from: end for files present at start */
    assert_int_equal(stats(&h).files_open, 1);
    write_str(hp(&h, "svc1/app.log"), "a", "new line\n");
    h_wait_lines(&h, 1);
    assert_string_equal(h.s.v[0].data, "new line");
    /* Created after start, in a directory that exists and in a new one:
     * read from the head. */
    write_str(hp(&h, "svc2/b.log"), "w", "b1\nb2\n");
    mkdir(hp(&h, "svc3"), 0755);
    write_str(hp(&h, "svc3/c.log"), "w", "c1\n");
    h_wait_lines(&h, 4);
    h_run_for(&h, 300); /* a poll too */
    assert_int_equal(h.s.n, 4);
    for (size_t i = 1; i < h.s.n; i++) {
        assert_true(h.s.v[i].data[0] == 'b' || h.s.v[i].data[0] == 'c');
        snprintf(p, sizeof(p), "%s", h.s.v[i].path);
        assert_null(strstr(p, ".gz"));
    }
    assert_int_equal(stats(&h).files_open, 3);
    assert_true(stats(&h).inotify);
    assert_true(stats(&h).watches >= 3);
    h_cleanup(&h);
}

static void test_discovery_1000_files(void **state)
{
    struct h h;
    char name[64];

    h_init(&h);
    mkdir(hp(&h, "many"), 0755);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "many/f%04d.log", i);
        write_lines(hp(&h, name), i * 3, 3);
    }
    h_start(&h, "name: t\npaths: ['@/many/*.log']\nfrom: head\npoll_interval: 100ms\n");
    h_wait_lines(&h, 3000);
    for (int i = 1000; i < 1010; i++) {
        snprintf(name, sizeof(name), "many/f%04d.log", i);
        write_lines(hp(&h, name), i * 3, 3);
    }
    h_wait_lines(&h, 3030);
    h_run_for(&h, 50);
    check_exact(&h, 3030);
    assert_int_equal(stats(&h).files_open, 1010);
    h_cleanup(&h);
}

/* ------------------------------------------------------------ rotation */

static void test_rename_rotation_while_writing(void **state)
{
    struct h h;
    int next = 0;
    char rot[64];

    h_init(&h);
    write_lines(hp(&h, "app.log"), next, 10);
    next += 10;
    h_start(&h,
            "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 30ms\nrotate_wait: 50ms\n");
    for (int round = 0; round < 30; round++) {
        write_lines(hp(&h, "app.log"), next, 37);
        next += 37;
        h_run_for(&h, round % 3); /* sometimes the agent lags behind */
        if (round % 5 == 4) {
            /* logrotate's rename: app.log -> app.log.N, writer goes on in
             * the old file a little, then reopens app.log. */
            snprintf(rot, sizeof(rot), "app.log.%d", round);
            assert_int_equal(rename(hp(&h, "app.log"), hp(&h, rot)), 0);
            write_lines(hp(&h, rot), next, 5);
            next += 5;
            write_lines(hp(&h, "app.log"), next, 3);
            next += 3;
        }
    }
    h_wait_lines(&h, (size_t)next);
    h_run_for(&h, 100);
    check_exact(&h, next);
    assert_true(stats(&h).rotations >= 6);
    {
        bool closed = false;
        for (int i = 0; i < 200 && !closed; i++) {
            h_run_for(&h, 10);
            closed = stats(&h).files_open == 1;
        }
        assert_true(closed); /* rotated files committed and closed */
    }
    h_cleanup(&h);
}

/* Rotations faster than the agent looks: generation 2 is created, written
 * and renamed away before any walk could see it; inotify's rename pairs
 * still lead to it. */
static void test_rotated_before_read(void **state)
{
    struct h h;

    h_init(&h);
    write_str(hp(&h, "app.log"), "w", "");
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 1s\n");
    h_run_for(&h, 20);
    write_lines(hp(&h, "app.log"), 0, 10);
    assert_int_equal(rename(hp(&h, "app.log"), hp(&h, "app.log.1")), 0);
    write_lines(hp(&h, "app.log"), 10, 10);
    assert_int_equal(rename(hp(&h, "app.log.1"), hp(&h, "app.log.2")), 0);
    assert_int_equal(rename(hp(&h, "app.log"), hp(&h, "app.log.1")), 0);
    write_lines(hp(&h, "app.log"), 20, 10);
    h_wait_lines(&h, 30);
    h_run_for(&h, 50);
    check_exact(&h, 30);
    assert_int_equal(stats(&h).files_open, 3);
    h_cleanup(&h);
}

static void test_copytruncate(void **state)
{
    struct h h;
    uint64_t uid0;
    struct xl_tail_stats st;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 100);
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 1s\n");
    h_wait_lines(&h, 100);
    uid0 = h.s.v[0].uid;
    /* While the agent is not looking: more lines, then logrotate's
     * copytruncate, then the application writes on (less than was read). */
    write_lines(hp(&h, "app.log"), 100, 50);
    copy_file(hp(&h, "app.log"), hp(&h, "app.log.1"));
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 150, 10);
    h_wait_lines(&h, 160);
    h_run_for(&h, 50);
    check_exact(&h, 160);
    for (size_t i = 0; i < h.s.n; i++) {
        int k;
        sscanf(h.s.v[i].data, "L%7d", &k);
        if (k < 150)
            assert_true(h.s.v[i].uid == uid0); /* the original's uid and offsets */
        else
            assert_true(h.s.v[i].uid != uid0); /* new content, new uid */
        if (k >= 100 && k < 150)
            assert_non_null(strstr(h.s.v[i].path, "app.log.1"));
    }
    st = stats(&h);
    assert_int_equal(st.rotations, 1);
    assert_true(st.copytruncate_recovered_bytes > 0);
    assert_int_equal(st.bytes_lost, 0);
    h_cleanup(&h);
}

/* copytruncate twice before the agent looks: the first copy is found by
 * the fingerprint of what was read, the second (a generation never read)
 * because it was written beside the file under a rotation name. Older
 * rotations from before the start are left alone. */
static void test_copytruncate_unseen_generation(void **state)
{
    struct h h;

    h_init(&h);
    write_lines(hp(&h, "app.log.3"), 900000, 5); /* last week's: never read */
    usleep(20000);
    write_lines(hp(&h, "app.log"), 0, 40);
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 1s\n");
    h_wait_lines(&h, 40);
    write_lines(hp(&h, "app.log"), 40, 20);
    copy_file(hp(&h, "app.log"), hp(&h, "app.log.1"));
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 60, 30);
    assert_int_equal(rename(hp(&h, "app.log.1"), hp(&h, "app.log.2")), 0);
    copy_file(hp(&h, "app.log"), hp(&h, "app.log.1"));
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 90, 10);
    h_wait_lines(&h, 100);
    h_run_for(&h, 100);
    check_exact(&h, 100);
    h_cleanup(&h);
}

/* Everything was read when the copy was made: the copy holds nothing new
 * and is not read again (its first bytes are those of content read under
 * the uid the file had before the truncation). */
static void test_copytruncate_all_read(void **state)
{
    struct h h;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 100);
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 1s\n");
    h_wait_lines(&h, 100);
    copy_file(hp(&h, "app.log"), hp(&h, "app.log.1"));
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 100, 200); /* regrown past the read position */
    h_wait_lines(&h, 300);
    h_run_for(&h, 200);
    check_exact(&h, 300);
    assert_int_equal(stats(&h).bytes_lost, 0);
    h_cleanup(&h);
}

static void test_rotation_names(void **state)
{
    assert_true(tail_name_ok("app.log", "app.log.1"));
    assert_true(tail_name_ok("app.log", "app.log.12"));
    assert_true(tail_name_ok("app.log", "app.log-20261121"));
    assert_true(tail_name_ok("app.log", "app.log.2026-11-21"));
    assert_true(tail_name_ok("app.log", "app.log-2026_11_21.3"));
    assert_false(tail_name_ok("app.log", "app.log"));
    assert_false(tail_name_ok("app.log", "app.log."));
    assert_false(tail_name_ok("app.log", "app.log.1.gz"));
    assert_false(tail_name_ok("app.log", "app.log.err"));
    assert_false(tail_name_ok("app.log", "app.logx1"));
    assert_false(tail_name_ok("app.log", "other.log.1"));
}

/* The truncated file grew past the read position before the agent looked:
 * only the first bytes tell. */
static void test_copytruncate_regrown(void **state)
{
    struct h h;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 40);
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 1s\n");
    h_wait_lines(&h, 40);
    write_lines(hp(&h, "app.log"), 40, 20);
    copy_file(hp(&h, "app.log"), hp(&h, "app.log.1"));
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 60, 200);
    h_wait_lines(&h, 260);
    h_run_for(&h, 50);
    check_exact(&h, 260);
    assert_true(stats(&h).copytruncate_recovered_bytes > 0);
    h_cleanup(&h);
}

static bool has_rotations(struct h *h, void *arg)
{
    return stats(h).rotations >= (uint64_t)(uintptr_t)arg;
}

static void test_truncation_no_copy(void **state)
{
    struct h h;
    uint64_t uid0;
    off_t lag_bytes;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 100);
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 30ms\n");
    h_wait_lines(&h, 100);
    uid0 = h.s.v[0].uid;
    /* Plain truncation after everything was read: nothing lost. */
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 100, 10);
    h_wait_lines(&h, 110);
    assert_true(h.s.v[100].uid != uid0);
    assert_int_equal(h.s.v[100].off, 0);
    assert_int_equal(stats(&h).bytes_lost, 0);
    check_exact(&h, 110);

    /* Truncated while the agent lags (sink full): the bytes it knew were
     * there and had not read are reported lost. */
    h.s.full_at = h.s.n + 5;
    write_lines(hp(&h, "app.log"), 110, 50);
    h_wait_lines(&h, 115);
    h_run_for(&h, 100); /* a poll sees the size */
    lag_bytes = file_size(hp(&h, "app.log")) - (off_t)h.s.v[h.s.n - 1].end;
    assert_int_equal(truncate(hp(&h, "app.log"), 0), 0);
    write_lines(hp(&h, "app.log"), 160, 3);
    assert_true(h_run_until(&h, has_rotations, (void *)(uintptr_t)2, 5000));
    h.s.full = false;
    h.s.full_at = 0;
    xl_tail_resume(h.t);
    h_wait_lines(&h, 118);
    h_run_for(&h, 50);
    assert_int_equal(stats(&h).bytes_lost, lag_bytes);
    {
        int k;
        sscanf(h.s.v[h.s.n - 1].data, "L%7d", &k);
        assert_int_equal(k, 162);
        assert_int_equal(h.s.v[h.s.n - 1].off,
                         file_size(hp(&h, "app.log")) - (off_t)h.s.v[h.s.n - 1].len - 1);
    }
    h_cleanup(&h);
}

static void test_delete_with_unread_data(void **state)
{
    struct h h;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 2000);
    h.s.full_at = 100;
    h_start(&h,
            "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 30ms\nrotate_wait: 30ms\n");
    h_wait_lines(&h, 100);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 100); /* paused by the sink */
    assert_int_equal(unlink(hp(&h, "app.log")), 0);
    h_run_for(&h, 100);
    h.s.full = false;
    h.s.full_at = 0;
    xl_tail_resume(h.t);
    h_wait_lines(&h, 2000);
    check_exact(&h, 2000);
    {
        bool closed = false;
        for (int i = 0; i < 200 && !closed; i++) {
            h_run_for(&h, 10);
            closed = stats(&h).files_open == 0;
        }
        assert_true(closed);
    }
    h_cleanup(&h);
}

/* Backpressure: the sink fills every 50 lines; resume lets it go on, and
 * nothing is skipped or repeated. */
static void test_backpressure(void **state)
{
    struct h h;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 1000);
    h.s.full_at = 50;
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\n");
    for (int64_t deadline = xl_mono_ms() + 10000; h.s.n < 1000 && xl_mono_ms() < deadline;) {
        h_run_for(&h, 2);
        if (h.s.full) {
            assert_int_equal(h.s.n % 50, 0);
            h.s.full = false;
            h.s.full_at = h.s.n + 50;
            xl_tail_resume(h.t);
        }
    }
    check_exact(&h, 1000);
    for (size_t i = 0; i < h.s.n; i++) {
        int k;
        sscanf(h.s.v[i].data, "L%7d", &k);
        assert_int_equal(k, (int)i); /* in order */
    }
    h_cleanup(&h);
}

/* Without inotify everything still works, at poll_interval. */
static void test_polling_only(void **state)
{
    struct h h;
    int next = 0;

    h_init(&h);
    xl_tail_no_inotify = true;
    write_lines(hp(&h, "app.log"), next, 10);
    next += 10;
    h_start(&h, "name: t\npaths: ['@/*.log']\nfrom: head\npoll_interval: 20ms\n"
                "rotate_wait: 30ms\n");
    xl_tail_no_inotify = false;
    assert_false(stats(&h).inotify);
    h_wait_lines(&h, 10);
    for (int round = 0; round < 6; round++) {
        write_lines(hp(&h, "app.log"), next, 20);
        next += 20;
        h_run_for(&h, round * 7 % 30);
        if (round % 2 == 1) {
            char rot[32];
            snprintf(rot, sizeof(rot), "app.log.%d", round);
            assert_int_equal(rename(hp(&h, "app.log"), hp(&h, rot)), 0);
        }
    }
    write_lines(hp(&h, "b.log"), next, 5);
    next += 5;
    h_wait_lines(&h, (size_t)next);
    h_run_for(&h, 50);
    check_exact(&h, next);
    h_cleanup(&h);
}

/* A writer process appends numbered lines as fast as it can and rotates the
 * file every few thousand lines, alternating rename+reopen and copytruncate
 * (done between two of its own writes, so only the agent's side can lose
 * anything), while the sink keeps filling up for a few milliseconds. After
 * each rotation the writer waits until the first line of the new file was
 * delivered (go_fd): no agent can follow a file rotated away before it ever
 * saw it; everything else runs at full speed. */
static void writer_main(const char *dir, int n, int every, int go_fd)
{
    char path[512], rot[512];
    int fd, gen = 0;

    snprintf(path, sizeof(path), "%s/app.log", dir);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    for (int i = 0; i < n; i++) {
        char line[128], go;
        int len = snprintf(line, sizeof(line), "L%07d %.*s\n", i, (i * 7) % 40,
                           "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        if (write(fd, line, (size_t)len) != len)
            _exit(1);
        if (i > 0 && i % every == 0 && read(go_fd, &go, 1) != 1)
            _exit(4);
        if (i % every == every - 1) {
            snprintf(rot, sizeof(rot), "%s/app.log.%d", dir, ++gen);
            if (gen % 2) {
                if (rename(path, rot) != 0)
                    _exit(2);
                close(fd);
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
            } else {
                copy_file(path, rot);
                if (ftruncate(fd, 0) != 0)
                    _exit(3);
            }
        }
        if (i % 500 == 0)
            usleep(200);
    }
    close(fd);
    _exit(0);
}

static void test_rotation_stress(void **state)
{
    struct h h;
    const int n = 60000, every = 7000;
    pid_t pid;
    int status, go[2];
    int64_t deadline;
    size_t scanned = 0;

    h_init(&h);
    write_str(hp(&h, "app.log"), "w", "");
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\npoll_interval: 50ms\n"
                "rotate_wait: 200ms\n");
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        writer_main(h.dir, n, every, go[0]);
    }
    close(go[0]);
    deadline = xl_mono_ms() + 60000;
    while (h.s.n < (size_t)n && xl_mono_ms() < deadline) {
        h_run_for(&h, 3);
        for (; scanned < h.s.n; scanned++) {
            int k;
            if (sscanf(h.s.v[scanned].data, "L%7d", &k) == 1 && k > 0 && k % every == 0)
                assert_int_equal(write(go[1], "g", 1), 1);
        }
        if (h.s.full) {
            h.s.full = false;
            h.s.full_at = h.s.n + 1 + (size_t)(rand() % 3000);
            xl_tail_resume(h.t);
        } else if (rand() % 4 == 0) {
            h.s.full_at = h.s.n + (size_t)(rand() % 3000); /* lag behind for a while */
        }
    }
    close(go[1]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    h.s.full_at = 0;
    h.s.full = false;
    xl_tail_resume(h.t);
    h_wait_lines(&h, (size_t)n);
    h_run_for(&h, 100);
    check_exact(&h, n);
    assert_int_equal(stats(&h).bytes_lost, 0);
    assert_true(stats(&h).rotations >= 8);
    h_cleanup(&h);
}

/* ------------------------------------------------------------ restarts */

static void test_restart_resume(void **state)
{
    struct h h;
    uint64_t uid0, resume_at;
    const char *cfg = "name: t\npaths: ['@/app.log']\nfrom: end\npoll_interval: 30ms\n"
                      "rotate_wait: 30ms\n";

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 5); /* before the first start: skipped (from: end) */
    h.s.autocommit = false;
    h_start(&h, cfg);
    h_run_for(&h, 30);
    write_lines(hp(&h, "app.log"), 5, 100);
    h_wait_lines(&h, 100);
    uid0 = h.s.v[0].uid;
    assert_int_equal(h.s.v[0].off, file_size(hp(&h, "app.log")) - (h.s.v[99].end - h.s.v[0].off));
    /* The server acknowledged up to line 50 only. */
    resume_at = h.s.v[45].end;
    xl_tail_commit(h.t, uid0, resume_at);
    h_stop(&h);

    /* Agent down: lines keep coming. */
    write_lines(hp(&h, "app.log"), 105, 20);
    sink_reset(&h.s);
    h.s.autocommit = true;
    h_start(&h, cfg);
    h_wait_lines(&h, 105 - 51 + 20);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 105 - 51 + 20);
    assert_true(h.s.v[0].uid == uid0);
    assert_int_equal(h.s.v[0].off, resume_at);
    {
        int k;
        sscanf(h.s.v[0].data, "L%7d", &k);
        assert_int_equal(k, 51);
    }
    h_stop(&h);

    /* Rotated while the agent was down: the old file is found beside its
     * old name and read on from its committed offset; the new file is read
     * from its head (the input ran before: nothing is skipped). */
    write_lines(hp(&h, "app.log"), 125, 7);
    assert_int_equal(rename(hp(&h, "app.log"), hp(&h, "app.log.1")), 0);
    write_lines(hp(&h, "app.log"), 132, 4);
    sink_reset(&h.s);
    h_start(&h, cfg);
    h_wait_lines(&h, 11);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 11);
    for (size_t i = 0; i < h.s.n; i++) {
        int k;
        sscanf(h.s.v[i].data, "L%7d", &k);
        assert_true(k >= 125 && k < 136);
        assert_true((k < 132) == (h.s.v[i].uid == uid0));
    }
    h_stop(&h);

    /* Replaced while down (deleted, a new file written in its place):
     * read from the head as a new file. */
    unlink(hp(&h, "app.log.1"));
    unlink(hp(&h, "app.log"));
    write_lines(hp(&h, "app.log"), 200, 3);
    sink_reset(&h.s);
    h_start(&h, cfg);
    h_wait_lines(&h, 3);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 3);
    assert_true(h.s.v[0].uid != uid0);
    assert_int_equal(h.s.v[0].off, 0);
    h_cleanup(&h);
}

/* The same inode, content rewritten while the agent was down (fingerprint
 * differs): a new file. */
static void test_restart_same_inode_new_content(void **state)
{
    struct h h;
    uint64_t uid0;
    const char *cfg = "name: t\npaths: ['@/app.log']\nfrom: head\n";
    FILE *f;

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 20);
    h_start(&h, cfg);
    h_wait_lines(&h, 20);
    uid0 = h.s.v[0].uid;
    h_stop(&h);
    f = fopen(hp(&h, "app.log"), "r+"); /* same inode */
    fprintf(f, "X");
    fclose(f);
    sink_reset(&h.s);
    h_start(&h, cfg);
    h_wait_lines(&h, 20);
    assert_true(h.s.v[0].uid != uid0);
    assert_int_equal(h.s.v[0].off, 0);
    h_cleanup(&h);
}

static void test_start_errors(void **state)
{
    struct h h;
    struct xl_err err = {0};
    const char *dup[] = {"name: a\npaths: [/x]\n", "name: a\npaths: [/y]\n"};
    const char *nopath[] = {"name: a\n"};
    const char *noname[] = {"paths: [/x]\n"};
    const char *badre[] = {"name: a\npaths: [/x]\n",
                           "name: b\npaths: [/x]\ninclude: [a, b, 're:foo(']\n"};
    const char *badml[] = {"name: a\npaths: [/x]\nmultiline: {start: '(x'}\n"};

    h_init(&h);
    assert_int_equal(h_start_n(&h, dup, 2, &err), XL_EINVAL);
    assert_string_equal(err.msg, "inputs.tail[1]: name 'a' is already used by inputs.tail[0]");
    assert_int_equal(h_start_n(&h, nopath, 1, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "inputs.tail[0] (a): paths"));
    assert_int_equal(h_start_n(&h, noname, 1, &err), XL_EINVAL);
    assert_string_equal(err.msg, "inputs.tail[0]: name is required");
    assert_int_equal(h_start_n(&h, badre, 2, &err), XL_EINVAL);
    assert_string_equal(err.msg,
                        "inputs.tail[1].include[2]: re:foo(: missing closing parenthesis at "
                        "offset 4");
    assert_int_equal(h_start_n(&h, badml, 1, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "inputs.tail[0].multiline.start: (x: "));
    /* A damaged offsets file stops the start, naming file and line. */
    mkdir(h.state, 0755);
    write_str(hp(&h, "state/tail-offsets"), "w", "xluo-tail-offsets 1\ninput a\n");
    assert_int_equal(h_start_n(&h, dup, 1, &err), XL_EPARSE);
    assert_non_null(strstr(err.msg, "state/tail-offsets:3: truncated"));
    assert_null(h.t);
    h_cleanup(&h);
}

/* ------------------------------------------------------------ reconfigure */

static void test_reconfigure(void **state)
{
    struct h h;
    const char *a = "name: a\npaths: ['@/a.log']\nfrom: head\n";
    const char *a2 = "name: a\npaths: ['@/a.log']\nfrom: head\ninclude: [keep]\n";
    const char *b = "name: b\npaths: ['@/b.log']\nfrom: head\n";
    const char *two[] = {b, a2};
    const char *only_b[] = {b};

    h_init(&h);
    write_str(hp(&h, "a.log"), "w", "a1\na2\n");
    write_str(hp(&h, "b.log"), "w", "b1\n");
    h_start(&h, a);
    h_wait_lines(&h, 2);
    h_reconfigure(&h, two, 2);
    h_wait_lines(&h, 3);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 3); /* a kept its position: nothing read again */
    assert_string_equal(h.s.v[2].data, "b1");
    write_str(hp(&h, "a.log"), "a", "drop\nkeep this\n");
    h_wait_lines(&h, 4);
    h_run_for(&h, 30);
    assert_int_equal(h.s.n, 4); /* the new filter applies */
    assert_string_equal(h.s.v[3].data, "keep this");
    assert_string_equal(h.s.v[3].matched, "keep");
    assert_int_equal(stats(&h).files_open, 2);
    h_reconfigure(&h, only_b, 1);
    assert_int_equal(stats(&h).files_open, 1);
    write_str(hp(&h, "a.log"), "a", "keep gone\n");
    write_str(hp(&h, "b.log"), "a", "b2\n");
    h_wait_lines(&h, 5);
    h_run_for(&h, 50);
    assert_int_equal(h.s.n, 5);
    assert_string_equal(h.s.v[4].data, "b2");
    h_cleanup(&h);
}

/* The checkpoint is written within a second of a commit, and holds the
 * committed offset (not what was read). */
static void test_checkpoint_written(void **state)
{
    struct h h;
    struct xl_tail_offsets o;
    struct xl_err err = {0};
    char path[512];

    h_init(&h);
    write_lines(hp(&h, "app.log"), 0, 10);
    h.s.autocommit = false;
    h_start(&h, "name: t\npaths: ['@/app.log']\nfrom: head\n");
    h_wait_lines(&h, 10);
    xl_tail_commit(h.t, h.s.v[0].uid, h.s.v[3].end);
    h_run_for(&h, 1100);
    snprintf(path, sizeof(path), "%s/tail-offsets", h.state);
    assert_int_equal(xl_tail_offsets_load(path, &o, &err), XL_OK);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.v[0].offset, h.s.v[3].end);
    assert_true(o.v[0].uid == h.s.v[0].uid);
    assert_non_null(strstr(o.v[0].path, "app.log"));
    assert_string_equal(o.inputs.v[0], "t");
    xl_tail_offsets_cleanup(&o);
    h_cleanup(&h);
}

static int group_setup(void **state)
{
    xl_log_set_level(getenv("XL_TEST_DEBUG") ? XL_LOG_DEBUG : XL_LOG_ERROR);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_table),
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_filter_errors),
        cmocka_unit_test(test_filter_buffer_scan),
        cmocka_unit_test(test_multiline_assembly),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_offsets_roundtrip),
        cmocka_unit_test(test_offsets_damaged),
        cmocka_unit_test(test_read_boundaries),
        cmocka_unit_test(test_read_1mib_line),
        cmocka_unit_test(test_read_long_line_growing),
        cmocka_unit_test(test_unterminated_last_line),
        cmocka_unit_test(test_filters_in_pipeline),
        cmocka_unit_test(test_multiline_in_pipeline),
        cmocka_unit_test(test_discovery_globs),
        cmocka_unit_test(test_discovery_1000_files),
        cmocka_unit_test(test_rename_rotation_while_writing),
        cmocka_unit_test(test_rotated_before_read),
        cmocka_unit_test(test_copytruncate),
        cmocka_unit_test(test_copytruncate_regrown),
        cmocka_unit_test(test_copytruncate_unseen_generation),
        cmocka_unit_test(test_copytruncate_all_read),
        cmocka_unit_test(test_rotation_names),
        cmocka_unit_test(test_truncation_no_copy),
        cmocka_unit_test(test_delete_with_unread_data),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_polling_only),
        cmocka_unit_test(test_rotation_stress),
        cmocka_unit_test(test_restart_resume),
        cmocka_unit_test(test_restart_same_inode_new_content),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_checkpoint_written),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
