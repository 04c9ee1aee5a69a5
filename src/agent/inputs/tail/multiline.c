/* xluo-agent tail input: multiline record assembly (see multiline.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "multiline.h"

#include <pcre2.h>
#include <string.h>

#include "common/alloc.h"
#include "tail.h"

/* A record buffer larger than this is given back after the record ships. */
#define KEEP_CAP (64u << 10)

struct xl_tail_ml_rule {
    pcre2_code *re;
    bool jit;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    size_t max_lines, max_bytes;
    int64_t flush_timeout;
};

/* Compile the start regex; limits of 0 or less fall back to the defaults. */
xl_rc xl_tail_ml_rule_new(const struct xl_tail_multiline_cfg *cfg, const char *where,
                          struct xl_tail_ml_rule **out, struct xl_err *err)
{
    struct xl_tail_ml_rule *r;
    int errcode;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[256];

    *out = NULL;
    if (!cfg->start || !*cfg->start)
        return XL_OK;
    if (!(r = xl_calloc(1, sizeof(*r))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    r->re =
        pcre2_compile((PCRE2_SPTR)cfg->start, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
    if (!r->re) {
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        xl_tail_ml_rule_free(r);
        return xl_err_set(err, XL_EINVAL, "%s.multiline.start: %s: %s at offset %zu", where,
                          cfg->start, (const char *)msg, (size_t)erroff);
    }
    r->jit = pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
    r->md = pcre2_match_data_create(1, NULL);
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->md || !r->mctx) {
        xl_tail_ml_rule_free(r);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    pcre2_set_match_limit(r->mctx, 1000000u);
    r->max_lines = cfg->max_lines > 0 ? (size_t)cfg->max_lines : 500;
    r->max_bytes = cfg->max_bytes > 0 ? (size_t)cfg->max_bytes : (1u << 20);
    r->flush_timeout = cfg->flush_timeout > 0 ? cfg->flush_timeout : 2000;
    *out = r;
    return XL_OK;
}

void xl_tail_ml_rule_free(struct xl_tail_ml_rule *r)
{
    if (!r)
        return;
    pcre2_code_free(r->re);
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    xl_free(r);
}

int64_t xl_tail_ml_rule_timeout(const struct xl_tail_ml_rule *r)
{
    return r ? r->flush_timeout : 0;
}

bool xl_tail_ml_is_start(const struct xl_tail_ml_rule *r, const char *data, size_t len)
{
    int rc;

    if (r->jit)
        rc = pcre2_jit_match(r->re, (PCRE2_SPTR)data, len, 0, 0, r->md, r->mctx);
    else
        rc = pcre2_match(r->re, (PCRE2_SPTR)data, len, 0, 0, r->md, r->mctx);
    return rc >= 0;
}

void xl_tail_ml_flush(struct xl_tail_ml *m, xl_tail_ml_emit_fn emit, void *ctx)
{
    if (m->nlines == 0)
        return;
    emit(ctx, m->data, m->len, m->off, m->end);
    m->len = 0;
    m->nlines = 0;
    if (m->cap > KEEP_CAP) {
        xl_free(m->data);
        m->data = NULL;
        m->cap = 0;
    }
}

static bool reserve(struct xl_tail_ml *m, size_t need)
{
    size_t ncap;
    char *p;

    if (need <= m->cap)
        return true;
    ncap = m->cap ? m->cap : 1024;
    while (ncap < need)
        ncap *= 2;
    if (!(p = xl_realloc(m->data, ncap)))
        return false;
    m->data = p;
    m->cap = ncap;
    return true;
}

void xl_tail_ml_add(struct xl_tail_ml *m, const struct xl_tail_ml_rule *r, const char *line,
                    size_t len, uint64_t off, uint64_t end, int64_t now, xl_tail_ml_emit_fn emit,
                    void *ctx)
{
    bool start = xl_tail_ml_is_start(r, line, len);

    if (m->nlines > 0 && (start || m->len + 1 + len > r->max_bytes))
        xl_tail_ml_flush(m, emit, ctx);
    if (m->nlines == 0) {
        if (!reserve(m, len + 1)) {
            emit(ctx, line, len, off, end);
            return;
        }
        memcpy(m->data, line, len);
        m->len = len;
        m->off = off;
    } else {
        if (!reserve(m, m->len + 1 + len + 1)) {
            xl_tail_ml_flush(m, emit, ctx);
            emit(ctx, line, len, off, end);
            return;
        }
        m->data[m->len++] = '\n';
        memcpy(m->data + m->len, line, len);
        m->len += len;
    }
    m->end = end;
    m->nlines++;
    m->last_ms = now;
    if (m->nlines >= r->max_lines)
        xl_tail_ml_flush(m, emit, ctx);
}

void xl_tail_ml_cleanup(struct xl_tail_ml *m)
{
    xl_free(m->data);
    memset(m, 0, sizeof(*m));
}
