/* xluo-server: the log search text query: lexer, parser, FTS5 writer and
 * in-memory matcher. logs_query.h says what the syntax is. */
#include "logs_query.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

#define MAX_NODES (4 * XL_LOGQ_MAX_TERMS)

enum kind { K_TERM, K_AND, K_OR, K_NOT };

struct node {
    enum kind kind;
    int kid, next; /* first child, next sibling; -1: none */
    /* K_TERM: the text in q->src, its tokens in q->toks */
    size_t off, len;
    size_t tok0, ntok;
    bool prefix;
};

struct tok {
    size_t off, len; /* in q->low */
};

struct xl_logq {
    char *src; /* the query text */
    char *low; /* the same, ASCII lower-cased */
    struct node nodes[MAX_NODES];
    int nnodes, root;
    struct tok *toks;
    size_t ntoks, captoks;
    char *fts;
    bool negated;
};

enum tk { T_END, T_TERM, T_AND, T_OR, T_NOT, T_LP, T_RP };

struct parser {
    struct xl_logq *q;
    size_t len, pos;
    enum tk tk;
    size_t at;         /* byte offset of the current token */
    size_t toff, tlen; /* T_TERM: its text */
    bool prefix;
    int depth, nterms;
    struct xl_err *err;
};

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A byte that belongs to a token: ASCII letters and digits, and every byte
 * of a multi-byte UTF-8 sequence (unicode61 decides finer; see the header). */
static bool is_tokc(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* The next token of s[*pos..len): start and length, or false at the end. */
static bool next_tok(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen)
{
    size_t i = *pos;

    while (i < len && !is_tokc((unsigned char)s[i]))
        i++;
    if (i >= len) {
        *pos = len;
        return false;
    }
    *start = i;
    while (i < len && is_tokc((unsigned char)s[i]))
        i++;
    *tlen = i - *start;
    *pos = i;
    return true;
}

static bool has_tokc(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (is_tokc((unsigned char)s[i]))
            return true;
    return false;
}

/* Advance to the next token. Words and phrases without a letter or digit
 * are skipped: the index has no token for them, so they could only ever
 * match nothing. */
static xl_rc lex(struct parser *p)
{
    const char *s = p->q->src;

    for (;;) {
        size_t start;

        while (p->pos < p->len && is_space((unsigned char)s[p->pos]))
            p->pos++;
        p->at = p->pos;
        p->prefix = false;
        if (p->pos >= p->len) {
            p->tk = T_END;
            return XL_OK;
        }
        if (s[p->pos] == '(' || s[p->pos] == ')') {
            p->tk = s[p->pos] == '(' ? T_LP : T_RP;
            p->pos++;
            return XL_OK;
        }
        if (s[p->pos] == '"') {
            const char *end = memchr(s + p->pos + 1, '"', p->len - p->pos - 1);

            if (!end)
                return xl_err_set(p->err, XL_EINVAL, "unterminated quote at byte %zu", p->at);
            p->toff = p->pos + 1;
            p->tlen = (size_t)(end - s) - p->toff;
            p->pos = (size_t)(end - s) + 1;
            while (p->pos < p->len && s[p->pos] == '*') {
                p->prefix = true;
                p->pos++;
            }
            if (!has_tokc(s + p->toff, p->tlen))
                continue;
            p->tk = T_TERM;
            return XL_OK;
        }
        start = p->pos;
        while (p->pos < p->len && !is_space((unsigned char)s[p->pos]) && s[p->pos] != '"' &&
               s[p->pos] != '(' && s[p->pos] != ')')
            p->pos++;
        p->toff = start;
        p->tlen = p->pos - start;
        if (p->tlen == 3 && memcmp(s + start, "AND", 3) == 0) {
            p->tk = T_AND;
            return XL_OK;
        }
        if (p->tlen == 2 && memcmp(s + start, "OR", 2) == 0) {
            p->tk = T_OR;
            return XL_OK;
        }
        if (p->tlen == 3 && memcmp(s + start, "NOT", 3) == 0) {
            p->tk = T_NOT;
            return XL_OK;
        }
        while (p->tlen && s[p->toff + p->tlen - 1] == '*') {
            p->prefix = true;
            p->tlen--;
        }
        if (!has_tokc(s + p->toff, p->tlen))
            continue;
        p->tk = T_TERM;
        return XL_OK;
    }
}

static int node_new(struct parser *p, enum kind k)
{
    struct node *n;

    if (p->q->nnodes >= MAX_NODES) {
        xl_err_set(p->err, XL_EINVAL, "too complex (at most %d terms)", XL_LOGQ_MAX_TERMS);
        return -1;
    }
    n = &p->q->nodes[p->q->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = k;
    n->kid = n->next = -1;
    return p->q->nnodes++;
}

/* A term node for the current T_TERM, with its tokens. */
static int term_new(struct parser *p)
{
    struct xl_logq *q = p->q;
    size_t pos = p->toff, end = p->toff + p->tlen, st, tl;
    int i;

    if (++p->nterms > XL_LOGQ_MAX_TERMS) {
        xl_err_set(p->err, XL_EINVAL, "too many words (at most %d)", XL_LOGQ_MAX_TERMS);
        return -1;
    }
    if ((i = node_new(p, K_TERM)) < 0)
        return -1;
    q->nodes[i].off = p->toff;
    q->nodes[i].len = p->tlen;
    q->nodes[i].prefix = p->prefix;
    q->nodes[i].tok0 = q->ntoks;
    while (next_tok(q->low, end, &pos, &st, &tl)) {
        if (xl_grow((void **)&q->toks, &q->captoks, q->ntoks + 1, sizeof(*q->toks)) != 0) {
            xl_err_set(p->err, XL_ENOMEM, "out of memory");
            return -1;
        }
        q->toks[q->ntoks++] = (struct tok){st, tl};
    }
    q->nodes[i].ntok = q->ntoks - q->nodes[i].tok0;
    return i;
}

/* Join a and b under a node of kind k, reusing a when it already is one
 * (so `a b c` is one AND with three children). */
static int join(struct parser *p, enum kind k, int a, int b)
{
    struct node *nodes = p->q->nodes;
    int n, last;

    if (nodes[a].kind == k) {
        n = a;
    } else {
        if ((n = node_new(p, k)) < 0)
            return -1;
        nodes[n].kid = a;
    }
    for (last = nodes[n].kid; nodes[last].next >= 0; last = nodes[last].next)
        ;
    nodes[last].next = b;
    return n;
}

static bool ends_operand(enum tk t)
{
    return t == T_END || t == T_RP || t == T_OR || t == T_AND;
}

static int parse_or(struct parser *p);

static int parse_unary(struct parser *p)
{
    int n, c;
    size_t at = p->at;

    switch (p->tk) {
    case T_NOT:
        if (++p->depth > XL_LOGQ_MAX_DEPTH)
            goto too_deep;
        if (lex(p) != XL_OK)
            return -1;
        if (ends_operand(p->tk)) {
            xl_err_set(p->err, XL_EINVAL, "NOT at byte %zu needs a word or phrase after it", at);
            return -1;
        }
        if ((c = parse_unary(p)) < 0 || (n = node_new(p, K_NOT)) < 0)
            return -1;
        p->q->nodes[n].kid = c;
        p->depth--;
        return n;
    case T_TERM:
        if ((n = term_new(p)) < 0 || lex(p) != XL_OK)
            return -1;
        return n;
    case T_LP:
        if (++p->depth > XL_LOGQ_MAX_DEPTH)
            goto too_deep;
        if (lex(p) != XL_OK)
            return -1;
        if (p->tk == T_RP) {
            xl_err_set(p->err, XL_EINVAL, "nothing to search for inside the ( at byte %zu", at);
            return -1;
        }
        if ((n = parse_or(p)) < 0)
            return -1;
        if (p->tk != T_RP) {
            xl_err_set(p->err, XL_EINVAL, "missing ) for the ( at byte %zu", at);
            return -1;
        }
        p->depth--;
        if (lex(p) != XL_OK)
            return -1;
        return n;
    case T_RP: xl_err_set(p->err, XL_EINVAL, "unexpected ) at byte %zu", at); return -1;
    default:
        xl_err_set(p->err, XL_EINVAL, "%s at byte %zu needs a term on both sides",
                   p->tk == T_OR ? "OR" : "AND", at);
        return -1;
    }
too_deep:
    xl_err_set(p->err, XL_EINVAL, "nested too deep (at most %d levels)", XL_LOGQ_MAX_DEPTH);
    return -1;
}

/* Terms side by side, or joined by AND: all must hold. */
static int parse_and(struct parser *p)
{
    int a, b;

    if ((a = parse_unary(p)) < 0)
        return -1;
    while (p->tk == T_TERM || p->tk == T_LP || p->tk == T_NOT || p->tk == T_AND) {
        if (p->tk == T_AND) {
            size_t at = p->at;
            if (lex(p) != XL_OK)
                return -1;
            if (ends_operand(p->tk)) {
                xl_err_set(p->err, XL_EINVAL, "AND at byte %zu needs a term on both sides", at);
                return -1;
            }
        }
        if ((b = parse_unary(p)) < 0 || (a = join(p, K_AND, a, b)) < 0)
            return -1;
    }
    return a;
}

static int parse_or(struct parser *p)
{
    int a, b;

    if ((a = parse_and(p)) < 0)
        return -1;
    while (p->tk == T_OR) {
        size_t at = p->at;
        if (lex(p) != XL_OK)
            return -1;
        if (ends_operand(p->tk)) {
            xl_err_set(p->err, XL_EINVAL, "OR at byte %zu needs a term on both sides", at);
            return -1;
        }
        if ((b = parse_and(p)) < 0 || (a = join(p, K_OR, a, b)) < 0)
            return -1;
    }
    return a;
}

/* ---- FTS5 expression ---- */

/* Whether node n selects lines (true) or only excludes them (a NOT, or an
 * AND of NOTs). XL_EINVAL for a NOT inside an OR. */
static xl_rc polarity(const struct xl_logq *q, int n, bool *pos, struct xl_err *err)
{
    const struct node *nd = &q->nodes[n];
    bool kp;
    xl_rc rc;

    switch (nd->kind) {
    case K_TERM: *pos = true; return XL_OK;
    case K_NOT:
        if ((rc = polarity(q, nd->kid, &kp, err)) != XL_OK)
            return rc;
        *pos = !kp;
        return XL_OK;
    case K_AND:
        *pos = false;
        for (int k = nd->kid; k >= 0; k = q->nodes[k].next) {
            if ((rc = polarity(q, k, &kp, err)) != XL_OK)
                return rc;
            *pos = *pos || kp;
        }
        return XL_OK;
    case K_OR:
        for (int k = nd->kid; k >= 0; k = q->nodes[k].next) {
            if ((rc = polarity(q, k, &kp, err)) != XL_OK)
                return rc;
            if (!kp)
                return xl_err_set(err, XL_EINVAL,
                                  "NOT cannot stand alone in an OR: write a NOT b, or "
                                  "(a NOT b) OR c");
        }
        *pos = true;
        return XL_OK;
    }
    return XL_EINVAL;
}

static xl_rc write_node(const struct xl_logq *q, int n, struct xl_buf *b);

/* Children of AND node n whose polarity is want, joined by sep. */
static xl_rc write_kids(const struct xl_logq *q, int n, bool want, const char *sep,
                        struct xl_buf *b)
{
    bool first = true, kp;
    xl_rc rc;

    if ((rc = xl_buf_adds(b, "(")) != XL_OK)
        return rc;
    for (int k = q->nodes[n].kid; k >= 0; k = q->nodes[k].next) {
        polarity(q, k, &kp, NULL);
        if (kp != want)
            continue;
        if ((!first && (rc = xl_buf_adds(b, sep)) != XL_OK) || (rc = write_node(q, k, b)) != XL_OK)
            return rc;
        first = false;
    }
    return xl_buf_adds(b, ")");
}

/* Write what node n selects, or for a negative node what it excludes. */
static xl_rc write_node(const struct xl_logq *q, int n, struct xl_buf *b)
{
    const struct node *nd = &q->nodes[n];
    bool any_pos = false, any_neg = false, kp;
    xl_rc rc;

    switch (nd->kind) {
    case K_TERM:
        if ((rc = xl_buf_add(b, "\"", 1)) != XL_OK)
            return rc;
        /* The lexer never lets a quote into a term; doubled anyway. */
        for (size_t i = 0; i < nd->len; i++) {
            const char *c = q->src + nd->off + i;
            if ((rc = xl_buf_add(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1)) != XL_OK)
                return rc;
        }
        return xl_buf_adds(b, nd->prefix ? "\"*" : "\"");
    case K_NOT: return write_node(q, nd->kid, b);
    case K_OR: return write_kids(q, n, true, " OR ", b);
    case K_AND:
        for (int k = nd->kid; k >= 0; k = q->nodes[k].next) {
            polarity(q, k, &kp, NULL);
            any_pos = any_pos || kp;
            any_neg = any_neg || !kp;
        }
        if (!any_pos)
            return write_kids(q, n, false, " OR ", b);
        if (!any_neg)
            return write_kids(q, n, true, " AND ", b);
        if ((rc = xl_buf_adds(b, "(")) != XL_OK || (rc = write_kids(q, n, true, " AND ", b)) ||
            (rc = xl_buf_adds(b, " NOT ")) || (rc = write_kids(q, n, false, " OR ", b)))
            return rc;
        return xl_buf_adds(b, ")");
    }
    return XL_EINVAL;
}

/* Parse, check polarity (a lone NOT only at the top), write the FTS5 form.
 * Errors go through a local xl_err so a parse error keeps its message. */
xl_rc xl_logq_compile(const char *text, struct xl_logq **out, struct xl_err *err)
{
    struct xl_err perr = {0};
    struct parser p = {.err = &perr};
    struct xl_logq *q;
    struct xl_buf b;
    size_t len = strlen(text);
    bool pos;
    xl_rc rc;

    *out = NULL;
    if (len > XL_LOGQ_MAX_LEN)
        return xl_err_set(err, XL_EINVAL, "longer than %d bytes", XL_LOGQ_MAX_LEN);
    if (!(q = xl_calloc(1, sizeof(*q))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    q->src = xl_strdup(text);
    q->low = xl_strdup(text);
    if (!q->src || !q->low) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < len; i++)
        q->low[i] = (char)lower((unsigned char)q->low[i]);
    p.q = q;
    p.len = len;
    if ((rc = lex(&p)) != XL_OK) {
        if (err)
            *err = perr;
        goto fail;
    }
    if (p.tk == T_END) {
        rc = xl_err_set(err, XL_EINVAL, "nothing to search for (no letters or digits)");
        goto fail;
    }
    if ((q->root = parse_or(&p)) < 0) {
        rc = perr.rc != XL_OK ? perr.rc : XL_EINVAL;
        if (err)
            *err = perr;
        goto fail;
    }
    if (p.tk != T_END) {
        rc = xl_err_set(err, XL_EINVAL, "unexpected ) at byte %zu", p.at);
        goto fail;
    }
    if ((rc = polarity(q, q->root, &pos, err)) != XL_OK)
        goto fail;
    q->negated = !pos;
    xl_buf_init(&b, 8 * XL_LOGQ_MAX_LEN + 1024);
    if ((rc = write_node(q, q->root, &b)) != XL_OK || !(q->fts = xl_buf_take(&b))) {
        xl_buf_cleanup(&b);
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    *out = q;
    return XL_OK;
fail:
    xl_logq_free(q);
    return rc;
}

/* NULL is fine. */
void xl_logq_free(struct xl_logq *q)
{
    if (!q)
        return;
    xl_free(q->src);
    xl_free(q->low);
    xl_free(q->toks);
    xl_free(q->fts);
    xl_free(q);
}

/* The expression written at compile time. */
const char *xl_logq_fts(const struct xl_logq *q, bool *negated)
{
    if (negated)
        *negated = q->negated;
    return q->fts;
}

/* ---- in-memory matching ---- */

static bool tok_eq(const char *a, size_t alen, const char *low, size_t blen, bool prefix)
{
    if (prefix ? alen < blen : alen != blen)
        return false;
    for (size_t i = 0; i < blen; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)low[i])
            return false;
    return true;
}

/* The term's tokens occur in the line one after another (a phrase); the
 * last may be a prefix. */
static bool term_match(const struct xl_logq *q, const struct node *nd, const char *line, size_t len)
{
    const struct tok *t = q->toks + nd->tok0;
    size_t pos = 0, st, tl;

    if (!nd->ntok)
        return false;
    while (next_tok(line, len, &pos, &st, &tl)) {
        size_t p2 = pos, s2 = st, l2 = tl, k = 0;

        for (;;) {
            if (!tok_eq(line + s2, l2, q->low + t[k].off, t[k].len,
                        nd->prefix && k + 1 == nd->ntok))
                break;
            if (++k == nd->ntok)
                return true;
            if (!next_tok(line, len, &p2, &s2, &l2))
                return false;
        }
    }
    return false;
}

static bool eval(const struct xl_logq *q, int n, const char *line, size_t len)
{
    const struct node *nd = &q->nodes[n];

    switch (nd->kind) {
    case K_TERM: return term_match(q, nd, line, len);
    case K_NOT: return !eval(q, nd->kid, line, len);
    case K_AND:
        for (int k = nd->kid; k >= 0; k = q->nodes[k].next)
            if (!eval(q, k, line, len))
                return false;
        return true;
    case K_OR:
        for (int k = nd->kid; k >= 0; k = q->nodes[k].next)
            if (eval(q, k, line, len))
                return true;
        return false;
    }
    return false;
}

/* Evaluate the tree against one line; allocation-free, so the live stream
 * can call it under its own locks. */
bool xl_logq_match(const struct xl_logq *q, const char *line, size_t len)
{
    return eval(q, q->root, line, len);
}
