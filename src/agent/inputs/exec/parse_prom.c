/* xluo-agent exec parsers: the Prometheus text exposition format 0.0.4
 * (see parse.h), with the rules of the reference parser (Go's
 * expfmt.TextParser): blanks are spaces and tabs, a sample is
 * `name [{label="value",...}] value [timestamp]`, `#` lines are comments
 * unless they are HELP or TYPE. Stricter in one place: a metric name must
 * be followed by a blank or '{'. */
#include "parse_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"

/* A cursor over one line (without its newline). */
struct cur {
    const char *s;
    size_t n;
    size_t pos;
    size_t lineno;
};

/* One parsed sample; strings and labels live in the arena. */
struct psample {
    const char *name;
    const struct xl_label *labels;
    size_t nlabels;
    double value;
    int64_t ts;
};

struct prom {
    struct xl_parse_arena arena;
    struct psample *samples;
    size_t nsamples, cap;
    struct xl_label *lab; /* the labels of the sample being read */
    size_t nlab, caplab;
};

__attribute__((format(printf, 3, 4))) static xl_rc cerr(const struct cur *c, struct xl_err *err,
                                                        const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    if (!err)
        return XL_EPARSE;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return xl_err_set(err, XL_EPARSE, "line %zu, byte %zu: %s", c->lineno, c->pos + 1, msg);
}

static bool at_end(const struct cur *c)
{
    return c->pos >= c->n;
}

static bool at(const struct cur *c, char ch)
{
    return c->pos < c->n && c->s[c->pos] == ch;
}

static void skip_blank(struct cur *c)
{
    while (c->pos < c->n && xl_parse_blank(c->s[c->pos]))
        c->pos++;
}

static bool name_start(char ch, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (colon && ch == ':');
}

/* A run of name characters at the cursor ([a-zA-Z_:][a-zA-Z0-9_:]* for
 * metrics, without ':' for labels); its length, 0 when there is none. */
static size_t read_name(struct cur *c, bool colon)
{
    size_t st = c->pos;

    if (at_end(c) || !name_start(c->s[c->pos], colon))
        return 0;
    c->pos++;
    while (c->pos < c->n &&
           (name_start(c->s[c->pos], colon) || (c->s[c->pos] >= '0' && c->s[c->pos] <= '9')))
        c->pos++;
    return c->pos - st;
}

/* Everything up to the next blank or the end of the line. */
static size_t read_token(struct cur *c)
{
    size_t st = c->pos;

    while (c->pos < c->n && !xl_parse_blank(c->s[c->pos]))
        c->pos++;
    return c->pos - st;
}

/* A float as Go's strconv.ParseFloat reads a decimal one: NaN, [+-]Inf,
 * [+-]Infinity (any case), or [+-]digits[.digits][e[+-]digits]. Overflow is
 * an error, underflow gives 0 (as in Go). */
static bool go_float(const char *s, size_t n, double *out)
{
    char buf[128], *end;
    const char *t;
    double v;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "nan") == 0) {
        *out = NAN;
        return true;
    }
    t = buf + (buf[0] == '+' || buf[0] == '-');
    if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0) {
        *out = buf[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    /* Only what a decimal float may hold: no hex, no "nan(...)". */
    if (strspn(buf, "0123456789.eE+-") != n || !strpbrk(buf, "0123456789"))
        return false;
    errno = 0;
    v = strtod(buf, &end);
    if (*end || (errno == ERANGE && isinf(v)))
        return false;
    *out = v;
    return true;
}

/* A timestamp: a decimal int64 with an optional sign (Go's ParseInt). */
static bool go_int(const char *s, size_t n, int64_t *out)
{
    char buf[32], *end;
    size_t sign = n && (s[0] == '+' || s[0] == '-');
    long long v;

    if (n == sign || n >= sizeof(buf))
        return false;
    for (size_t i = sign; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (*end || errno == ERANGE)
        return false;
    *out = v;
    return true;
}

/* The label value at the cursor (just after its opening quote), up to the
 * closing quote, which is consumed. When out is set, the value with its
 * escapes (\\ \" \n) undone goes to a new string in the arena. */
static xl_rc label_value(struct prom *p, struct cur *c, const char **out, struct xl_err *err)
{
    size_t st = c->pos, k = 0;
    char *v;

    for (;;) {
        if (at_end(c))
            return cerr(c, err, "expected '\"' to close the label value");
        if (c->s[c->pos] == '"')
            break;
        if (c->s[c->pos] == '\0')
            return cerr(c, err, "NUL byte in a label value");
        if (c->s[c->pos] == '\\') {
            if (c->pos + 1 >= c->n ||
                (c->s[c->pos + 1] != '\\' && c->s[c->pos + 1] != '"' && c->s[c->pos + 1] != 'n'))
                return cerr(c, err, "invalid escape in a label value (\\\\, \\\" or \\n)");
            c->pos++;
        }
        c->pos++;
    }
    c->pos++;
    if (!out)
        return XL_OK;
    if (!(v = xl_parse_arena_alloc(&p->arena, c->pos - st)))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    for (size_t i = st; i < c->pos - 1; i++) {
        char ch = c->s[i];
        if (ch == '\\') {
            ch = c->s[++i];
            if (ch == 'n')
                ch = '\n';
        }
        v[k++] = ch;
    }
    v[k] = '\0';
    *out = v;
    return XL_OK;
}

/* The labels at the cursor (just after '{'), up to and with '}'. When p
 * is set they are kept in p->lab, else only the syntax is checked. */
static xl_rc labels_parse(struct prom *p, struct cur *c, struct xl_err *err)
{
    xl_rc rc;

    for (;;) {
        size_t npos, nn;
        const char *value = NULL;

        skip_blank(c);
        if (at(c, '}')) {
            c->pos++;
            return XL_OK;
        }
        npos = c->pos;
        if ((nn = read_name(c, false)) == 0)
            return cerr(c, err,
                        at_end(c) ? "expected a label name or '}'" : "expected a label name");
        skip_blank(c);
        if (!at(c, '='))
            return cerr(c, err, "expected '=' after label name");
        c->pos++;
        skip_blank(c);
        if (!at(c, '"'))
            return cerr(c, err, "expected '\"' to start the label value");
        c->pos++;
        if ((rc = label_value(p, c, p ? &value : NULL, err)) != XL_OK)
            return rc;
        if (p) {
            const char *name;
            size_t at_name = c->pos;

            c->pos = npos;
            if (nn >= 2 && c->s[npos] == '_' && c->s[npos + 1] == '_')
                return cerr(c, err, "label name '%.*s' is reserved (starts with __)", (int)nn,
                            c->s + npos);
            for (size_t i = 0; i < p->nlab; i++)
                if (strlen(p->lab[i].name) == nn && memcmp(p->lab[i].name, c->s + npos, nn) == 0)
                    return cerr(c, err, "duplicate label name '%.*s'", (int)nn, c->s + npos);
            if (p->nlab == XL_PARSE_MAX_LABELS)
                return cerr(c, err, "more than %d labels", XL_PARSE_MAX_LABELS);
            c->pos = at_name;
            if (!(name = xl_parse_arena_strndup(&p->arena, c->s + npos, nn)) ||
                xl_grow((void **)&p->lab, &p->caplab, p->nlab + 1, sizeof(*p->lab)) != 0)
                return xl_err_set(err, XL_ENOMEM, "out of memory");
            p->lab[p->nlab].name = name;
            p->lab[p->nlab].value = value;
            p->nlab++;
        }
        skip_blank(c);
        if (at(c, ',')) {
            c->pos++;
            continue;
        }
        if (at(c, '}')) {
            c->pos++;
            return XL_OK;
        }
        return cerr(c, err, "expected ',' or '}' after the label value");
    }
}

/* One sample line, the cursor on its first non-blank byte. With p set,
 * the sample (its labels merged with extra) goes to out; without, only the
 * syntax is checked (format detection). */
static xl_rc sample_parse(struct prom *p, struct cur *c, const struct xl_label *extra,
                          size_t nextra, int64_t ts, struct psample *out, struct xl_err *err)
{
    char q[XL_PARSE_QUOTE_MAX + 8];
    size_t npos = c->pos, nn, tok, tn;
    double value;
    xl_rc rc;

    if ((nn = read_name(c, true)) == 0)
        return cerr(c, err, "expected a metric name");
    if (!at_end(c) && !at(c, '{') && !xl_parse_blank(c->s[c->pos]))
        return cerr(c, err, "expected '{' or a blank after the metric name");
    skip_blank(c);
    if (p)
        p->nlab = 0;
    if (at(c, '{')) {
        c->pos++;
        if ((rc = labels_parse(p, c, err)) != XL_OK)
            return rc;
        skip_blank(c);
    }
    if (at_end(c))
        return cerr(c, err, "expected a value");
    tok = c->pos;
    tn = read_token(c);
    if (!go_float(c->s + tok, tn, &value)) {
        xl_parse_quote(c->s + tok, tn, q, sizeof(q));
        c->pos = tok;
        return cerr(c, err, "expected a number as the value, got '%s'", q);
    }
    skip_blank(c);
    if (!at_end(c)) {
        tok = c->pos;
        tn = read_token(c);
        if (!go_int(c->s + tok, tn, &ts)) {
            xl_parse_quote(c->s + tok, tn, q, sizeof(q));
            c->pos = tok;
            return cerr(c, err, "expected a timestamp (integer milliseconds), got '%s'", q);
        }
        if (p && !xl_parse_ts_plausible(ts)) {
            c->pos = tok;
            return cerr(c, err, "timestamp %lld is not milliseconds since 1970 (seconds?)",
                        (long long)ts);
        }
        skip_blank(c);
        if (!at_end(c))
            return cerr(c, err, "expected the end of the line after the timestamp");
    }
    if (!p)
        return XL_OK;

    /* The sample's labels, then each extra label the sample does not set. */
    {
        struct xl_label *all;
        size_t k = p->nlab;

        if (!(all = xl_parse_arena_alloc(&p->arena, (p->nlab + nextra) * sizeof(*all))))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        if (p->nlab)
            memcpy(all, p->lab, p->nlab * sizeof(*all));
        for (size_t i = 0; i < nextra; i++) {
            bool set = false;
            for (size_t j = 0; j < p->nlab && !set; j++)
                set = strcmp(p->lab[j].name, extra[i].name) == 0;
            if (!set)
                all[k++] = extra[i];
        }
        if (k > XL_PARSE_MAX_LABELS) {
            c->pos = npos;
            return cerr(c, err, "more than %d labels with the input's own", XL_PARSE_MAX_LABELS);
        }
        if (!(out->name = xl_parse_arena_strndup(&p->arena, c->s + npos, nn)))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        out->labels = all;
        out->nlabels = k;
        out->value = value;
        out->ts = ts;
    }
    return XL_OK;
}

/* For format detection (parse_int.h): syntax only, nothing kept. */
bool xl_prom_line_is_sample(const char *line, size_t n)
{
    struct cur c = {.s = line, .n = n, .lineno = 1};

    skip_blank(&c);
    return sample_parse(NULL, &c, NULL, 0, 0, NULL, NULL) == XL_OK;
}

/* A `#` line: HELP and TYPE are checked (a metric name, HELP's escapes,
 * a known TYPE), anything else is a comment. */
static xl_rc comment_parse(struct cur *c, struct xl_err *err)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    size_t kw, kn, st, n;
    bool help;

    c->pos++; /* '#' */
    skip_blank(c);
    kw = c->pos;
    kn = read_token(c);
    if (kn != 4 || (memcmp(c->s + kw, "HELP", 4) != 0 && memcmp(c->s + kw, "TYPE", 4) != 0))
        return XL_OK;
    help = c->s[kw] == 'H';
    skip_blank(c);
    if (at_end(c))
        return XL_OK;
    if (read_name(c, true) == 0 || (!at_end(c) && !xl_parse_blank(c->s[c->pos])))
        return cerr(c, err, "expected a metric name after # %s", help ? "HELP" : "TYPE");
    skip_blank(c);
    if (at_end(c))
        return XL_OK;
    if (help) {
        for (; c->pos < c->n; c->pos++) {
            if (c->s[c->pos] != '\\')
                continue;
            if (c->pos + 1 >= c->n || (c->s[c->pos + 1] != '\\' && c->s[c->pos + 1] != 'n'))
                return cerr(c, err, "invalid escape in HELP text (\\\\ or \\n)");
            c->pos++;
        }
        return XL_OK;
    }
    st = c->pos;
    n = c->n - st;
    while (n && xl_parse_blank(c->s[st + n - 1]))
        n--;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == n && strncasecmp(c->s + st, types[i], n) == 0)
            return XL_OK;
    {
        char q[XL_PARSE_QUOTE_MAX + 8];
        xl_parse_quote(c->s + st, n, q, sizeof(q));
        return cerr(c, err,
                    "unknown metric type '%s' (counter, gauge, histogram, summary or untyped)", q);
    }
}

/* Check every line into p->samples; nothing is emitted here. */
static xl_rc prom_check(struct prom *p, const char *s, size_t len, const struct xl_label *extra,
                        size_t nextra, int64_t ts, const struct xl_parse_limits *lim,
                        struct xl_err *err)
{
    size_t lineno = 0;
    xl_rc rc;

    for (size_t start = 0; start < len;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        struct cur c = {.s = s + start, .n = end - start, .lineno = ++lineno};

        start = end + 1;
        if (c.n && c.s[c.n - 1] == '\r')
            c.n--;
        skip_blank(&c);
        if (at_end(&c))
            continue;
        if (at(&c, '#')) {
            if ((rc = comment_parse(&c, err)) != XL_OK)
                return rc;
            continue;
        }
        if (xl_parse_too_many(lim, p->nsamples, err)) {
            xl_err_prefix(err, "line %zu: ", lineno);
            return XL_ETOOBIG;
        }
        if (xl_grow((void **)&p->samples, &p->cap, p->nsamples + 1, sizeof(*p->samples)) != 0)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        if ((rc = sample_parse(p, &c, extra, nextra, ts, &p->samples[p->nsamples], err)) != XL_OK)
            return rc;
        p->nsamples++;
    }
    return XL_OK;
}

/* Check every line into samples, then hand them to the sink (parse.h). */
xl_rc xl_parse_prometheus(const char *s, size_t len, const struct xl_label *extra, size_t nextra,
                          int64_t ts, const struct xl_parse_limits *lim,
                          const struct xl_rec_sink *sink, struct xl_err *err)
{
    struct prom p = {0};
    xl_rc rc;

    if ((rc = prom_check(&p, s, len, extra, nextra, ts, lim, err)) != XL_OK)
        goto out;
    for (size_t i = 0; sink->metric && i < p.nsamples; i++) {
        const struct psample *m = &p.samples[i];
        sink->metric(sink->ctx, m->name, m->labels, m->nlabels, m->value, m->ts);
    }
out:
    xl_free(p.samples);
    xl_free(p.lab);
    xl_parse_arena_cleanup(&p.arena);
    return rc;
}
