/* xluo-server rules: label selectors (see matcher.h). A hand-written
 * scanner over the text; every error names the byte offset where it
 * noticed the problem. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "matcher.h"

#include <pcre2.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

/* Backtracking bound per match: a pathological regex costs at most this. */
#define MATCH_LIMIT 100000u

struct scan {
    const char *s;
    size_t i;
    struct xl_err *err;
};

static void skip_ws(struct scan *sc)
{
    while (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
           sc->s[sc->i] == '\r')
        sc->i++;
}

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static xl_rc perr(struct scan *sc, size_t at, xl_rc rc, const char *what)
{
    return xl_err_set(sc->err, rc, "byte %zu: %s", at, what);
}

static xl_rc read_name(struct scan *sc, char **out)
{
    size_t start = sc->i;

    if (!name_start(sc->s[sc->i]))
        return perr(sc, start, XL_EPARSE, "expected a label name");
    while (name_char(sc->s[sc->i]))
        sc->i++;
    if (!(*out = xl_strndup(sc->s + start, sc->i - start)))
        return xl_err_set(sc->err, XL_ENOMEM, "out of memory");
    return XL_OK;
}

static xl_rc read_op(struct scan *sc, enum xl_lm_op *op)
{
    const char *p = sc->s + sc->i;

    if (p[0] == '=' && p[1] == '~')
        *op = XL_LM_RE, sc->i += 2;
    else if (p[0] == '!' && p[1] == '~')
        *op = XL_LM_NRE, sc->i += 2;
    else if (p[0] == '!' && p[1] == '=')
        *op = XL_LM_NE, sc->i += 2;
    else if (p[0] == '=')
        *op = XL_LM_EQ, sc->i += 1;
    else
        return perr(sc, sc->i, XL_EPARSE, "expected '=', '!=', '=~' or '!~'");
    return XL_OK;
}

/* A quoted value at sc->i (the quote). Escapes in "" and ''; none in ``. */
static xl_rc read_quoted(struct scan *sc, struct xl_buf *b)
{
    char q = sc->s[sc->i];
    size_t start = sc->i++;
    xl_rc rc;

    for (;;) {
        char c = sc->s[sc->i], out;
        if (!c)
            return perr(sc, start, XL_EPARSE, "unterminated quoted value");
        if (c == q) {
            sc->i++;
            return XL_OK;
        }
        out = c;
        if (c == '\\' && q != '`') {
            switch (sc->s[sc->i + 1]) {
            case '\\': out = '\\'; break;
            case '"': out = '"'; break;
            case '\'': out = '\''; break;
            case 'n': out = '\n'; break;
            case 't': out = '\t'; break;
            case 'r': out = '\r'; break;
            default:
                return perr(sc, sc->i, XL_EPARSE,
                            "unknown escape (write \\\\ for a backslash, or use `raw`)");
            }
            sc->i++;
        }
        sc->i++;
        if ((rc = xl_buf_add(b, &out, 1)) != XL_OK)
            return rc == XL_ETOOBIG ? perr(sc, start, rc, "value too long")
                                    : xl_err_set(sc->err, rc, "out of memory");
    }
}

/* An unquoted value (bare form only): up to ',' or the end, trimmed. */
static xl_rc read_bare(struct scan *sc, struct xl_buf *b)
{
    size_t start = sc->i, end;
    xl_rc rc;

    while (sc->s[sc->i] && sc->s[sc->i] != ',')
        sc->i++;
    end = sc->i;
    while (end > start && (sc->s[end - 1] == ' ' || sc->s[end - 1] == '\t'))
        end--;
    for (size_t k = start; k < end; k++) {
        if (sc->s[k] == '"' || sc->s[k] == '\'' || sc->s[k] == '`' || sc->s[k] == '{' ||
            sc->s[k] == '}')
            return perr(sc, k, XL_EPARSE, "quote or brace inside an unquoted value");
    }
    if ((rc = xl_buf_add(b, sc->s + start, end - start)) != XL_OK)
        return rc == XL_ETOOBIG ? perr(sc, start, rc, "value too long")
                                : xl_err_set(sc->err, rc, "out of memory");
    return XL_OK;
}

static xl_rc compile_re(struct scan *sc, struct xl_label_matcher *m, size_t at)
{
    int errcode;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[200];
    pcre2_code *re;

    re = pcre2_compile((PCRE2_SPTR)m->value, strlen(m->value),
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL, &errcode, &erroff,
                       NULL);
    if (!re) {
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return xl_err_set(sc->err, XL_EINVAL,
                          "byte %zu: bad regex for label '%s': %s (at regex offset %zu)", at,
                          m->name, (const char *)msg, (size_t)erroff);
    }
    /* Without JIT support (some architectures) the interpreter is used. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    m->re = re;
    return XL_OK;
}

static void matcher_cleanup(struct xl_label_matcher *m)
{
    xl_free(m->name);
    xl_free(m->value);
    pcre2_code_free(m->re);
}

/* One `name OP value` at sc->i into s->m[s->n]. */
static xl_rc read_matcher(struct scan *sc, struct xl_selector *s, bool braced)
{
    struct xl_label_matcher *m;
    struct xl_buf b;
    size_t vstart;
    xl_rc rc;

    if (s->n == XL_SELECTOR_MAX)
        return perr(sc, sc->i, XL_ETOOBIG, "too many matchers (at most 32)");
    m = &s->m[s->n++];
    if ((rc = read_name(sc, &m->name)) != XL_OK)
        return rc;
    skip_ws(sc);
    if ((rc = read_op(sc, &m->op)) != XL_OK)
        return rc;
    skip_ws(sc);
    vstart = sc->i;
    xl_buf_init(&b, XL_SELECTOR_VALUE_MAX);
    if (sc->s[sc->i] == '"' || sc->s[sc->i] == '\'' || sc->s[sc->i] == '`')
        rc = read_quoted(sc, &b);
    else if (braced)
        rc = perr(sc, sc->i, XL_EPARSE, "expected a quoted value");
    else
        rc = read_bare(sc, &b);
    if (rc == XL_OK && !(m->value = b.data ? xl_buf_take(&b) : xl_strdup("")))
        rc = xl_err_set(sc->err, XL_ENOMEM, "out of memory");
    xl_buf_cleanup(&b);
    if (rc == XL_OK && (m->op == XL_LM_RE || m->op == XL_LM_NRE))
        rc = compile_re(sc, m, vstart);
    return rc;
}

xl_rc xl_selector_parse(const char *text, struct xl_selector **out, struct xl_err *err)
{
    struct scan sc = {.s = text, .i = 0, .err = err};
    struct xl_selector *s;
    bool braced;
    xl_rc rc = XL_OK;

    *out = NULL;
    if (!(s = xl_calloc(1, sizeof(*s))) ||
        !(s->m = xl_calloc(XL_SELECTOR_MAX, sizeof(*s->m)))) {
        xl_free(s);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    skip_ws(&sc);
    braced = text[sc.i] == '{';
    if (!braced && name_start(text[sc.i])) {
        /* "node_load1{...}": a metric name, which rules give elsewhere. */
        size_t k = sc.i;
        while (name_char(text[k]))
            k++;
        while (text[k] == ' ')
            k++;
        if (text[k] == '{') {
            rc = perr(&sc, sc.i, XL_EPARSE, "a metric name is not taken here; give labels only");
            goto out;
        }
    }
    if (braced) {
        sc.i++;
        skip_ws(&sc);
    }
    while (text[sc.i] && !(braced && text[sc.i] == '}')) {
        if ((rc = read_matcher(&sc, s, braced)) != XL_OK)
            goto out;
        skip_ws(&sc);
        if (text[sc.i] == ',') {
            sc.i++;
            skip_ws(&sc);
        } else if (text[sc.i] && !(braced && text[sc.i] == '}')) {
            rc = perr(&sc, sc.i, XL_EPARSE, braced ? "expected ',' or '}'" : "expected ','");
            goto out;
        }
    }
    if (braced) {
        if (text[sc.i] != '}') {
            rc = perr(&sc, sc.i, XL_EPARSE, "expected '}'");
            goto out;
        }
        sc.i++;
        skip_ws(&sc);
        if (text[sc.i]) {
            rc = perr(&sc, sc.i, XL_EPARSE, "unexpected text after '}'");
            goto out;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->m[i].re) {
            if (!(s->md = pcre2_match_data_create(1, NULL)) ||
                !(s->mctx = pcre2_match_context_create(NULL))) {
                rc = xl_err_set(err, XL_ENOMEM, "out of memory");
                goto out;
            }
            pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
            break;
        }
    }
out:
    if (rc != XL_OK) {
        xl_selector_free(s);
        return rc;
    }
    *out = s;
    return XL_OK;
}

void xl_selector_free(struct xl_selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        matcher_cleanup(&s->m[i]);
    xl_free(s->m);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    xl_free(s);
}

/* 1: match, 0: no match, -1: error (the match limit): the matcher fails
 * whatever its operator. */
static int re_match(const struct xl_selector *s, const struct xl_label_matcher *m, const char *v)
{
    int rc = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, s->md, s->mctx);

    return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

bool xl_selector_match(const struct xl_selector *s, const struct xl_label *labels, size_t n)
{
    if (!s)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        const struct xl_label_matcher *m = &s->m[i];
        const char *v = "";
        bool hit;

        for (size_t k = 0; k < n; k++) {
            if (strcmp(labels[k].name, m->name) == 0) {
                v = labels[k].value;
                break;
            }
        }
        switch (m->op) {
        case XL_LM_EQ: hit = strcmp(v, m->value) == 0; break;
        case XL_LM_NE: hit = strcmp(v, m->value) != 0; break;
        case XL_LM_RE: hit = re_match(s, m, v) == 1; break;
        default: hit = re_match(s, m, v) == 0; break;
        }
        if (!hit)
            return false;
    }
    return true;
}

const char *xl_lm_op_str(enum xl_lm_op op)
{
    switch (op) {
    case XL_LM_EQ: return "=";
    case XL_LM_NE: return "!=";
    case XL_LM_RE: return "=~";
    case XL_LM_NRE: return "!~";
    }
    return "?";
}
