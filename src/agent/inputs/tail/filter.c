/* xluo-agent tail input: include/exclude filters (see filter.h). Keywords
 * are found with memmem (glibc's two-way search with a vectorised first-byte
 * scan); regexes are PCRE2 with the JIT, sharing one match data block. */
#define _GNU_SOURCE /* memrchr, memmem */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "filter.h"

#include <pcre2.h>
#include <string.h>

#include "common/alloc.h"

#define RE_PREFIX "re:"
#define RE_PREFIX_LEN 3
/* Backtracking bound per match: a pathological regex costs at most this. */
#define MATCH_LIMIT 1000000u

struct fentry {
    char *name;     /* as written: reported in matched[] */
    const char *kw; /* keyword (points into name) */
    size_t kwlen;
    size_t rare;    /* index of the byte memchr looks for (see kw_find) */
    pcre2_code *re; /* NULL for a keyword */
    bool jit;
    /* Buffer scan (xl_tail_filter_begin): the next occurrence at or after
     * the last line asked about; NULL: none left in the buffer. */
    const char *next;
    bool next_valid;
};

struct xl_tail_filter {
    struct fentry *inc, *exc;
    size_t ninc, nexc;
    const char **matched; /* ninc slots */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint64_t errors;
    const char *scan_end; /* end of the buffer given to xl_tail_filter_begin */
};

/* Log text is mostly lowercase letters, digits and spaces: a keyword byte
 * outside those (an upper-case letter, punctuation) is a better memchr
 * target than its first byte. */
static size_t rare_index(const char *kw, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)kw[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' '))
            return i;
    }
    return 0;
}

/* Find kw in h[0..n): memchr (vectorised) for its rarest byte, memcmp to
 * confirm. When that byte turns out to be common here, glibc's memmem
 * (two-way, no bad cases) finishes the search. */
static const char *kw_find(const struct fentry *e, const char *h, size_t n)
{
    const char *p, *last;
    const char c = e->kw[e->rare];
    unsigned misses = 0;

    if (e->kwlen > n)
        return NULL;
    last = h + (n - e->kwlen); /* last possible start */
    for (p = h + e->rare; p <= last + e->rare;) {
        const char *hit = memchr(p, c, (size_t)(last + e->rare - p) + 1);
        if (!hit)
            return NULL;
        if (memcmp(hit - e->rare, e->kw, e->kwlen) == 0)
            return hit - e->rare;
        p = hit + 1;
        if (++misses > 16)
            return memmem(p - e->rare, (size_t)(h + n - (p - e->rare)), e->kw, e->kwlen);
    }
    return NULL;
}

static void entry_cleanup(struct fentry *e)
{
    pcre2_code_free(e->re);
    xl_free(e->name);
}

/* Compile one entry. what is "include" or "exclude", i its index. */
static xl_rc entry_init(struct fentry *e, const char *text, const char *where, const char *what,
                        size_t i, struct xl_err *err)
{
    int errcode;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[256];

    if (!(e->name = xl_strdup(text)))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    if (strncmp(text, RE_PREFIX, RE_PREFIX_LEN) != 0) {
        e->kw = e->name;
        e->kwlen = strlen(text);
        e->rare = rare_index(e->kw, e->kwlen);
        if (e->kwlen == 0)
            return xl_err_set(err, XL_EINVAL, "%s.%s[%zu]: empty filter", where, what, i);
        return XL_OK;
    }
    if (!text[RE_PREFIX_LEN])
        return xl_err_set(err, XL_EINVAL, "%s.%s[%zu]: %s: empty regex", where, what, i, text);
    e->re = pcre2_compile((PCRE2_SPTR)text + RE_PREFIX_LEN, PCRE2_ZERO_TERMINATED, 0, &errcode,
                          &erroff, NULL);
    if (!e->re) {
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return xl_err_set(err, XL_EINVAL, "%s.%s[%zu]: %s: %s at offset %zu", where, what, i, text,
                          (const char *)msg, (size_t)erroff);
    }
    /* Without JIT support (some architectures) the interpreter is used. */
    e->jit = pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE) == 0;
    return XL_OK;
}

static xl_rc entries_init(struct fentry **out, size_t *nout, const struct xl_strlist *l,
                          const char *where, const char *what, struct xl_err *err)
{
    xl_rc rc;

    *nout = 0;
    if (!l || l->n == 0)
        return XL_OK;
    if (!(*out = xl_calloc(l->n, sizeof(**out))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        *nout = i + 1;
        if ((rc = entry_init(&(*out)[i], l->v[i], where, what, i, err)) != XL_OK)
            return rc;
    }
    return XL_OK;
}

/* Compile every entry; on error everything built so far is freed. */
xl_rc xl_tail_filter_new(const struct xl_strlist *include, const struct xl_strlist *exclude,
                         const char *where, struct xl_tail_filter **out, struct xl_err *err)
{
    struct xl_tail_filter *f = xl_calloc(1, sizeof(*f));
    xl_rc rc;

    *out = NULL;
    if (!f)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    if ((rc = entries_init(&f->inc, &f->ninc, include, where, "include", err)) != XL_OK ||
        (rc = entries_init(&f->exc, &f->nexc, exclude, where, "exclude", err)) != XL_OK)
        goto out_free;
    if (f->ninc && !(f->matched = xl_calloc(f->ninc, sizeof(*f->matched)))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out_free;
    }
    if (!(f->md = pcre2_match_data_create(1, NULL)) ||
        !(f->mctx = pcre2_match_context_create(NULL))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out_free;
    }
    pcre2_set_match_limit(f->mctx, MATCH_LIMIT);
    *out = f;
    return XL_OK;
out_free:
    xl_tail_filter_free(f);
    return rc;
}

void xl_tail_filter_free(struct xl_tail_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ninc; i++)
        entry_cleanup(&f->inc[i]);
    for (size_t i = 0; i < f->nexc; i++)
        entry_cleanup(&f->exc[i]);
    xl_free(f->inc);
    xl_free(f->exc);
    xl_free(f->matched);
    pcre2_match_data_free(f->md);
    pcre2_match_context_free(f->mctx);
    xl_free(f);
}

bool xl_tail_filter_passes_all(const struct xl_tail_filter *f)
{
    return !f || (f->ninc == 0 && f->nexc == 0);
}

uint64_t xl_tail_filter_errors(const struct xl_tail_filter *f)
{
    return f ? f->errors : 0;
}

static bool entry_match(struct xl_tail_filter *f, const struct fentry *e, const char *data,
                        size_t len)
{
    int rc;

    if (!e->re)
        return kw_find(e, data, len) != NULL;
    if (e->jit)
        rc = pcre2_jit_match(e->re, (PCRE2_SPTR)data, len, 0, 0, f->md, f->mctx);
    else
        rc = pcre2_match(e->re, (PCRE2_SPTR)data, len, 0, 0, f->md, f->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        f->errors++;
    return false;
}

/* A keyword inside [data, data+len), which lies in the buffer being
 * scanned at or after every line asked about before: the occurrence found
 * for an earlier line is reused until the scan passes it, so a keyword on
 * one line in ten costs one search per ten lines, not ten. */
static bool entry_match_in(struct xl_tail_filter *f, struct fentry *e, const char *data, size_t len)
{
    if (e->re)
        return entry_match(f, e, data, len);
    if (!e->next_valid || (e->next && e->next < data)) {
        size_t rest = (size_t)(f->scan_end - data);
        e->next = kw_find(e, data, rest);
        e->next_valid = true;
    }
    return e->next && e->next + e->kwlen <= data + len;
}

void xl_tail_filter_begin(struct xl_tail_filter *f, const char *buf, size_t len)
{
    if (!f)
        return;
    f->scan_end = buf + len;
    for (size_t i = 0; i < f->ninc; i++)
        f->inc[i].next_valid = false;
    for (size_t i = 0; i < f->nexc; i++)
        f->exc[i].next_valid = false;
}

/* Excludes first: a dropped line costs no include search. Every include is
 * tried so that all matching names are reported. */
static bool filter_line(struct xl_tail_filter *f, const char *data, size_t len, bool in_buf,
                        const char *const **matched, size_t *nmatched)
{
    size_t n = 0;

    *nmatched = 0;
    *matched = NULL;
    if (!f)
        return true;
    for (size_t i = 0; i < f->nexc; i++)
        if (in_buf ? entry_match_in(f, &f->exc[i], data, len)
                   : entry_match(f, &f->exc[i], data, len))
            return false;
    if (f->ninc == 0)
        return true;
    for (size_t i = 0; i < f->ninc; i++)
        if (in_buf ? entry_match_in(f, &f->inc[i], data, len)
                   : entry_match(f, &f->inc[i], data, len))
            f->matched[n++] = f->inc[i].name;
    *matched = f->matched;
    *nmatched = n;
    return n > 0;
}

bool xl_tail_filter_line(struct xl_tail_filter *f, const char *data, size_t len,
                         const char *const **matched, size_t *nmatched)
{
    return filter_line(f, data, len, false, matched, nmatched);
}

bool xl_tail_filter_line_in(struct xl_tail_filter *f, const char *data, size_t len,
                            const char *const **matched, size_t *nmatched)
{
    return filter_line(f, data, len, true, matched, nmatched);
}
