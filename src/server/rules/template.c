/* xluo-server rules: annotation templates (see template.h). Parsed once
 * into literal runs and actions; expansion only copies. */
#include "template.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

enum part_kind { PART_TEXT, PART_VALUE, PART_NAME, PART_LABEL };

struct part {
    enum part_kind kind;
    char *s; /* PART_TEXT: the text; PART_LABEL: the label name */
};

struct xl_tmpl {
    struct part p[XL_TMPL_MAX_PARTS];
    size_t n;
};

static xl_rc add_part(struct xl_tmpl *t, enum part_kind kind, const char *s, size_t len,
                      size_t at, struct xl_err *err)
{
    if (t->n == XL_TMPL_MAX_PARTS)
        return xl_err_set(err, XL_ETOOBIG, "byte %zu: too many parts (at most %d)", at,
                          XL_TMPL_MAX_PARTS);
    if (s && !(t->p[t->n].s = xl_strndup(s, len)))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    t->p[t->n++].kind = kind;
    return XL_OK;
}

static bool label_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* The action between open (at "{{") and close (at "}}"). */
static xl_rc parse_action(struct xl_tmpl *t, const char *src, size_t open, size_t close,
                          struct xl_err *err)
{
    size_t a = open + 2, b = close, len;

    while (a < b && src[a] == ' ')
        a++;
    while (b > a && src[b - 1] == ' ')
        b--;
    len = b - a;
    if (len == 6 && strncmp(src + a, "$value", 6) == 0)
        return add_part(t, PART_VALUE, NULL, 0, a, err);
    if (len == 5 && strncmp(src + a, "$name", 5) == 0)
        return add_part(t, PART_NAME, NULL, 0, a, err);
    if (len > 8 && strncmp(src + a, "$labels.", 8) == 0) {
        for (size_t i = a + 8; i < b; i++) {
            if (!label_char(src[i], i == a + 8))
                return xl_err_set(err, XL_EPARSE, "byte %zu: bad label name in '%.*s'", i,
                                  (int)len, src + a);
        }
        return add_part(t, PART_LABEL, src + a + 8, len - 8, a, err);
    }
    return xl_err_set(err, XL_EPARSE,
                      "byte %zu: unknown template action '%.*s' (expected $value, "
                      "$labels.NAME or $name)",
                      a, (int)(len > 64 ? 64 : len), src + a);
}

xl_rc xl_tmpl_parse(const char *src, struct xl_tmpl **out, struct xl_err *err)
{
    struct xl_tmpl *t = xl_calloc(1, sizeof(*t));
    size_t i = 0, text = 0;
    xl_rc rc = XL_OK;

    *out = NULL;
    if (!t)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    while (src[i]) {
        const char *close;
        if (src[i] == '}' && src[i + 1] == '}') {
            rc = xl_err_set(err, XL_EPARSE, "byte %zu: '}}' without '{{'", i);
            goto out;
        }
        if (src[i] != '{' || src[i + 1] != '{') {
            i++;
            continue;
        }
        if (i > text && (rc = add_part(t, PART_TEXT, src + text, i - text, text, err)) != XL_OK)
            goto out;
        if (!(close = strstr(src + i + 2, "}}"))) {
            rc = xl_err_set(err, XL_EPARSE, "byte %zu: '{{' without '}}'", i);
            goto out;
        }
        if ((rc = parse_action(t, src, i, (size_t)(close - src), err)) != XL_OK)
            goto out;
        i = text = (size_t)(close - src) + 2;
    }
    if (i > text)
        rc = add_part(t, PART_TEXT, src + text, i - text, text, err);
out:
    if (rc != XL_OK) {
        xl_tmpl_free(t);
        return rc;
    }
    *out = t;
    return XL_OK;
}

void xl_tmpl_free(struct xl_tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        xl_free(t->p[i].s);
    xl_free(t);
}

void xl_tmpl_fmt_value(double v, char *out, size_t cap)
{
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, "%sInf", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.6g", v);
}

/* Copy s into out at *len, counting what does not fit. */
static void put(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);

    if (*len + 1 < cap) {
        size_t room = cap - 1 - *len;
        memcpy(out + *len, s, n < room ? n : room);
    }
    *len += n;
}

size_t xl_tmpl_expand(const struct xl_tmpl *t, const struct xl_tmpl_ctx *ctx, char *out,
                      size_t cap)
{
    size_t len = 0;
    char num[32];

    for (size_t i = 0; t && i < t->n; i++) {
        const struct part *p = &t->p[i];
        switch (p->kind) {
        case PART_TEXT:
            put(out, cap, &len, p->s);
            break;
        case PART_VALUE:
            xl_tmpl_fmt_value(ctx->value, num, sizeof(num));
            put(out, cap, &len, num);
            break;
        case PART_NAME:
            put(out, cap, &len, ctx->name ? ctx->name : "");
            break;
        case PART_LABEL:
            for (size_t k = 0; k < ctx->nlabels; k++) {
                if (strcmp(ctx->labels[k].name, p->s) == 0) {
                    put(out, cap, &len, ctx->labels[k].value);
                    break;
                }
            }
            break;
        }
    }
    if (cap)
        out[len < cap ? len : cap - 1] = '\0';
    return len;
}
