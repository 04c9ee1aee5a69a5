/* xluo-agent exec parsers: Nagios plugin output and perfdata (see
 * parse.h), after the Monitoring Plugins development guidelines:
 *
 *   TEXT OUTPUT | OPTIONAL PERFDATA
 *   LONG TEXT LINE 1
 *   LONG TEXT LINE 2 | PERFDATA LINE 2
 *   PERFDATA LINE 3
 *
 * Perfdata is a list of `'label'=value[UOM];[warn];[crit];[min];[max]`
 * separated by whitespace; warn and crit are ranges ([@]start:end, start
 * 0 when left out, ~ for minus infinity, end infinite when left out). */
#include "parse_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

enum { PV_VALUE, PV_WARN, PV_CRIT, PV_MIN, PV_MAX, PV_COUNT };

static const char *const pv_metric[PV_COUNT] = {
    "check_perf_value", "check_perf_warn", "check_perf_crit", "check_perf_min", "check_perf_max",
};
static const char *const pv_field[PV_COUNT] = {"value", "warn", "crit", "min", "max"};

struct unitdef {
    const char *uom;
    double mult;
    const char *unit; /* the label value */
};

/* Units the guidelines name (and the spellings plugins use for them);
 * sizes count in 1024s, as check_disk and check_swap do. Any other UOM is
 * kept as written, unconverted. */
static const struct unitdef units[] = {
    {"s", 1, "seconds"},
    {"ms", 1e-3, "seconds"},
    {"us", 1e-6, "seconds"},
    {"\xc2\xb5s", 1e-6, "seconds"}, /* µs */
    {"%", 1, "percent"},
    {"B", 1, "bytes"},
    {"KB", 1024.0, "bytes"},
    {"kB", 1024.0, "bytes"},
    {"KiB", 1024.0, "bytes"},
    {"MB", 1048576.0, "bytes"},
    {"MiB", 1048576.0, "bytes"},
    {"GB", 1073741824.0, "bytes"},
    {"GiB", 1073741824.0, "bytes"},
    {"TB", 1099511627776.0, "bytes"},
    {"TiB", 1099511627776.0, "bytes"},
    {"PB", 1125899906842624.0, "bytes"},
    {"PiB", 1125899906842624.0, "bytes"},
    {"c", 1, "counter"},
};

/* One checked perfdata item; strings in the arena. */
struct perf {
    struct xl_label *labels; /* check, perf, [unit], extra */
    size_t nlabels;
    double v[PV_COUNT];
    bool has[PV_COUNT];
};

struct nag {
    struct xl_parse_arena arena;
    struct perf *items;
    size_t nitems, cap;
    size_t nrecs; /* the check and every metric */
    char *longbuf;
    size_t longlen;
};

/* What an item is being checked against (for errors). */
struct pitem {
    size_t no;        /* 1-based item number */
    const char *text; /* the item as written */
    size_t len;
};

__attribute__((format(printf, 4, 5))) static xl_rc perr(const struct pitem *it, struct xl_err *err,
                                                        const char *field, const char *fmt, ...)
{
    char msg[256], q[XL_PARSE_QUOTE_MAX + 8];
    va_list ap;

    if (!err)
        return XL_EPARSE;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    xl_parse_quote(it->text, it->len, q, sizeof(q));
    return xl_err_set(err, XL_EPARSE, "perfdata item %zu ('%s'): %s%s%s", it->no, q,
                      field ? field : "", field ? ": " : "", msg);
}

/* Length of the decimal number at the start of s[0..n) ([+-]digits[.digits]
 * [e[+-]digits], at least one digit), 0 when there is none. */
static size_t scan_number(const char *s, size_t n)
{
    size_t i = 0, digits = 0;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            while (j < n && s[j] >= '0' && s[j] <= '9')
                j++;
            i = j;
        }
    }
    return i;
}

/* s[0..n) as a double; false when it does not fit one. */
static bool to_double(const char *s, size_t n, double *out)
{
    char buf[64];

    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return isfinite(*out);
}

/* A number, optionally followed by the value's own UOM (some plugins
 * repeat it on thresholds), filling all of s[0..n). */
static bool number_uom(const char *s, size_t n, const char *uom, size_t uomlen, double *out)
{
    size_t k = scan_number(s, n);

    if (k == 0 || !to_double(s, k, out))
        return false;
    return k == n || (uomlen && n - k == uomlen && memcmp(s + k, uom, uomlen) == 0);
}

/* A threshold range; *has is false when it is empty or has no finite
 * bound. Its metric is the upper bound, or the lower when the upper is
 * infinite. */
static xl_rc range_parse(const struct pitem *it, const char *field, const char *s, size_t n,
                         const char *uom, size_t uomlen, double *out, bool *has, struct xl_err *err)
{
    const char *colon;
    double start = 0, end = INFINITY;
    bool start_inf = false;
    size_t i = 0;

    *has = false;
    if (n == 0)
        return XL_OK;
    if (s[0] == '@')
        i++;
    colon = memchr(s + i, ':', n - i);
    if (colon) {
        size_t sl = (size_t)(colon - (s + i)), el = n - i - sl - 1;
        if (sl == 1 && s[i] == '~')
            start_inf = true;
        else if (sl && !number_uom(s + i, sl, uom, uomlen, &start))
            goto bad;
        if (el && !number_uom(colon + 1, el, uom, uomlen, &end))
            goto bad;
    } else if (i == n || !number_uom(s + i, n - i, uom, uomlen, &end)) {
        goto bad;
    }
    if (!start_inf && start > end)
        return perr(it, err, field, "range start %g is above its end %g", start, end);
    if (isfinite(end)) {
        *out = end;
        *has = true;
    } else if (!start_inf) {
        *out = start;
        *has = true;
    }
    return XL_OK;
bad:
    return perr(it, err, field, "expected a range (10, 10:, ~:10, 10:20, @10:20)");
}

static bool uom_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '%' || c == '/' || c == '_' ||
           c >= 0x80;
}

/* The labels of an item's metrics, in the arena. */
static xl_rc item_labels(struct nag *g, struct perf *pf, const char *check_name, const char *label,
                         const char *unit, const struct xl_label *extra, size_t nextra,
                         struct xl_err *err)
{
    struct xl_label *l = xl_parse_arena_alloc(&g->arena, (3 + nextra) * sizeof(*l));
    size_t k = 0;

    if (!l)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    l[k++] = (struct xl_label){"check", check_name};
    l[k++] = (struct xl_label){"perf", label};
    if (unit)
        l[k++] = (struct xl_label){"unit", unit};
    for (size_t i = 0; i < nextra; i++) {
        bool set = false;
        for (size_t j = 0; j < k && !set; j++)
            set = strcmp(l[j].name, extra[i].name) == 0;
        if (!set)
            l[k++] = extra[i];
    }
    pf->labels = l;
    pf->nlabels = k;
    return XL_OK;
}

/* Everything after '=' of one item: value[UOM];warn;crit;min;max. */
static xl_rc item_values(struct nag *g, const struct pitem *it, const char *s, size_t n,
                         struct perf *pf, const char **unit, struct xl_err *err)
{
    const char *f[PV_COUNT] = {0}, *uom = "";
    size_t fl[PV_COUNT] = {0}, nf = 0, uomlen = 0, k;
    double mult = 1;
    xl_rc rc;

    *unit = NULL;
    for (size_t i = 0, st = 0; i <= n; i++) {
        if (i < n && s[i] != ';')
            continue;
        if (nf < PV_COUNT) {
            f[nf] = s + st;
            fl[nf] = i - st;
        } else if (i > st) {
            return perr(it, err, NULL, "more than 5 fields (value;warn;crit;min;max)");
        }
        nf++;
        st = i + 1;
    }
    if (fl[PV_VALUE] == 1 && f[PV_VALUE][0] == 'U') {
        pf->has[PV_VALUE] = false; /* unknown: no value metric */
    } else {
        if ((k = scan_number(f[PV_VALUE], fl[PV_VALUE])) == 0)
            return perr(it, err, "value", "expected a number");
        if (!to_double(f[PV_VALUE], k, &pf->v[PV_VALUE]))
            return perr(it, err, "value", "out of range");
        uom = f[PV_VALUE] + k;
        uomlen = fl[PV_VALUE] - k;
        for (size_t i = 0; i < uomlen; i++)
            if (!uom_char((unsigned char)uom[i]))
                return perr(it, err, "value", "expected a number and a unit (s, ms, %%, B, c...)");
        pf->has[PV_VALUE] = true;
    }
    if (uomlen) {
        size_t u;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
            if (strlen(units[u].uom) == uomlen && memcmp(units[u].uom, uom, uomlen) == 0)
                break;
        if (u < sizeof(units) / sizeof(units[0])) {
            mult = units[u].mult;
            *unit = units[u].unit;
        } else if (!(*unit = xl_parse_arena_strndup(&g->arena, uom, uomlen))) {
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        }
    }
    for (int i = PV_WARN; i <= PV_CRIT; i++)
        if ((rc = range_parse(it, pv_field[i], f[i], fl[i], uom, uomlen, &pf->v[i], &pf->has[i],
                              err)) != XL_OK)
            return rc;
    for (int i = PV_MIN; i <= PV_MAX; i++) {
        if (fl[i] == 0)
            continue;
        if (!number_uom(f[i], fl[i], uom, uomlen, &pf->v[i]))
            return perr(it, err, pv_field[i], "expected a number");
        pf->has[i] = true;
    }
    for (int i = 0; i < PV_COUNT; i++) {
        if (pf->has[i] && !isfinite(pf->v[i] *= mult))
            return perr(it, err, pv_field[i], "out of range in %s", *unit ? *unit : "?");
    }
    return XL_OK;
}

/* The perfdata items of s[0..n) (part of a line) into g->items. */
static xl_rc perf_segment(struct nag *g, const char *s, size_t n, size_t *itemno,
                          const char *check_name, const struct xl_label *extra, size_t nextra,
                          const struct xl_parse_limits *lim, struct xl_err *err)
{
    size_t i = 0;
    xl_rc rc;

    for (;;) {
        struct pitem it;
        struct perf pf = {0};
        size_t start, end, lstart, lend, vstart, metrics = 0;
        const char *unit;
        char *label;
        bool quoted = false;

        while (i < n && xl_parse_space(s[i]))
            i++;
        if (i == n)
            return XL_OK;
        start = i;
        it.no = ++*itemno;
        it.text = s + start;
        for (end = start; end < n && !xl_parse_space(s[end]); end++)
            ;
        it.len = end - start;
        if (s[i] == '\'') {
            quoted = true;
            lstart = ++i;
            for (;; i++) {
                if (i == n) {
                    it.len = n - start;
                    return perr(&it, err, "label", "expected a closing quote");
                }
                if (s[i] == '\'' && i + 1 < n && s[i + 1] == '\'')
                    i++;
                else if (s[i] == '\'')
                    break;
            }
            lend = i++;
            for (end = i; end < n && !xl_parse_space(s[end]); end++)
                ;
            it.len = end - start;
        } else {
            lstart = i;
            while (i < n && s[i] != '=' && !xl_parse_space(s[i]))
                i++;
            lend = i;
        }
        if (i == n || s[i] != '=')
            return perr(&it, err, NULL, "expected '=' after the label");
        if (lend == lstart)
            return perr(&it, err, "label", "empty");
        vstart = ++i;
        while (i < n && !xl_parse_space(s[i]))
            i++;

        /* The label without its quotes, '' read as '. */
        if (!(label = xl_parse_arena_alloc(&g->arena, lend - lstart + 1)))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        {
            size_t k = 0;
            for (size_t j = lstart; j < lend; j++) {
                label[k++] = s[j];
                if (quoted && s[j] == '\'')
                    j++;
            }
            label[k] = '\0';
        }
        if ((rc = item_values(g, &it, s + vstart, i - vstart, &pf, &unit, err)) != XL_OK ||
            (rc = item_labels(g, &pf, check_name, label, unit, extra, nextra, err)) != XL_OK)
            return rc;
        for (int k = 0; k < PV_COUNT; k++)
            metrics += pf.has[k];
        if (lim && lim->max_records && g->nrecs + metrics > lim->max_records)
            return xl_err_set(err, XL_ETOOBIG, "perfdata item %zu: more than %zu records", it.no,
                              lim->max_records);
        g->nrecs += metrics;
        if (xl_grow((void **)&g->items, &g->cap, g->nitems + 1, sizeof(*g->items)) != 0)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        g->items[g->nitems++] = pf;
    }
}

/* s[0..n) without the whitespace at its ends. */
static void trim(const char **s, size_t *n, bool left)
{
    while (left && *n && xl_parse_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && xl_parse_space((*s)[*n - 1]))
        (*n)--;
}

/* Cut n to at most max bytes, not inside a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* One line of long text, right-trimmed; leading empty lines dropped. */
static void long_add(struct nag *g, const char *s, size_t n)
{
    trim(&s, &n, false);
    if (g->longlen == 0 && n == 0)
        return;
    if (g->longlen)
        g->longbuf[g->longlen++] = '\n';
    memcpy(g->longbuf + g->longlen, s, n);
    g->longlen += n;
}

/* Split the lines into status text, long text and perfdata, check every
 * perfdata item, then hand the check and the metrics to the sink (parse.h). */
xl_rc xl_parse_nagios(const char *s, size_t len, int exit_status, const char *check_name,
                      const struct xl_label *extra, size_t nextra, int64_t ts,
                      const struct xl_parse_limits *lim, const struct xl_rec_sink *sink,
                      struct xl_err *err)
{
    static const char truncated[] = " [truncated]";
    struct nag g = {0};
    struct xl_check_result cr = {.name = check_name, .ts_ms = ts};
    const char *out = "";
    size_t outlen = 0, itemno = 0, lineno = 0;
    bool in_perf = false;
    char *outbuf;
    xl_rc rc = XL_OK;

    if (!check_name || !xl_check_name_valid(check_name, strlen(check_name)))
        return xl_err_set(err, XL_EINVAL,
                          "nagios: the check name must have 1 to %d bytes of UTF-8 without "
                          "control characters",
                          XL_CHECK_NAME_MAX);
    if (nextra > XL_PARSE_MAX_LABELS - 3)
        return xl_err_set(err, XL_EINVAL, "nagios: more than %d extra labels",
                          XL_PARSE_MAX_LABELS - 3);
    if (xl_parse_too_many(lim, 0, err))
        return XL_ETOOBIG;
    g.nrecs = 1;
    cr.state = exit_status >= 0 && exit_status < XL_CHECK_STATES ? (enum xl_check_state)exit_status
                                                                 : XL_CHECK_UNKNOWN;
    if (!(g.longbuf = xl_parse_arena_alloc(&g.arena, len + 1))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        const char *line = s + start, *bar;
        size_t n = end - start;

        start = end + 1;
        lineno++;
        if (in_perf) {
            rc = perf_segment(&g, line, n, &itemno, check_name, extra, nextra, lim, err);
        } else {
            bar = memchr(line, '|', n);
            if (lineno == 1) {
                out = line;
                outlen = bar ? (size_t)(bar - line) : n;
            } else {
                long_add(&g, line, bar ? (size_t)(bar - line) : n);
            }
            if (bar) {
                in_perf = lineno > 1;
                rc = perf_segment(&g, bar + 1, n - (size_t)(bar + 1 - line), &itemno, check_name,
                                  extra, nextra, lim, err);
            }
        }
        if (rc != XL_OK)
            goto out;
    }

    /* The status text and long text, within what the server takes. */
    trim(&out, &outlen, true);
    while (g.longlen && xl_parse_space(g.longbuf[g.longlen - 1]))
        g.longlen--;
    if (outlen == 0) {
        out = "(no output)";
        outlen = strlen(out);
    }
    if (outlen + g.longlen > XL_CHECK_OUTPUT_MAX) {
        size_t room = XL_CHECK_OUTPUT_MAX - (sizeof(truncated) - 1);

        if (outlen > room) {
            outlen = cut_utf8(out, outlen, room);
            g.longlen = 0;
        } else {
            g.longlen = cut_utf8(g.longbuf, g.longlen, room - outlen);
        }
        if (!(outbuf = xl_parse_arena_alloc(&g.arena, outlen + sizeof(truncated)))) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(outbuf, out, outlen);
        outbuf[outlen] = '\0';
        if (g.longlen) { /* the mark goes where the text was cut */
            memcpy(g.longbuf + g.longlen, truncated, sizeof(truncated) - 1);
            g.longlen += sizeof(truncated) - 1;
        } else {
            memcpy(outbuf + outlen, truncated, sizeof(truncated));
        }
    } else if (!(outbuf = xl_parse_arena_strndup(&g.arena, out, outlen))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    g.longbuf[g.longlen] = '\0';
    cr.output = outbuf;
    cr.long_output = g.longbuf;

    if (sink->check)
        sink->check(sink->ctx, &cr);
    for (size_t i = 0; sink->metric && i < g.nitems; i++) {
        const struct perf *pf = &g.items[i];
        for (int k = 0; k < PV_COUNT; k++)
            if (pf->has[k])
                sink->metric(sink->ctx, pv_metric[k], pf->labels, pf->nlabels, pf->v[k], ts);
    }
out:
    xl_free(g.items);
    xl_parse_arena_cleanup(&g.arena);
    return rc;
}
