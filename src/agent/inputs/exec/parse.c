/* xluo-agent exec parsers: format names and detection, and the pieces
 * the three parsers share (see parse.h, parse_int.h). */
#include "parse_int.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

/* ------------------------------------------------------------ names */

static const char *const format_names[] = {
    [XL_FMT_AUTO] = "auto",
    [XL_FMT_JSON] = "json",
    [XL_FMT_NAGIOS] = "nagios",
    [XL_FMT_PROMETHEUS] = "prometheus",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *xl_exec_format_str(enum xl_exec_format f)
{
    if ((unsigned)f >= NELEM(format_names))
        return "?";
    return format_names[f];
}

bool xl_exec_format_parse(const char *s, enum xl_exec_format *out)
{
    for (size_t i = 0; s && i < NELEM(format_names); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum xl_exec_format)i;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ detection */

enum xl_exec_format xl_exec_format_detect(const char *s, size_t len)
{
    size_t i = 0, samples = 0;

    while (i < len && xl_parse_space(s[i]))
        i++;
    if (i == len)
        return XL_FMT_NAGIOS;
    if (s[i] == '{' || s[i] == '[')
        return XL_FMT_JSON;
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        const char *line = s + start;
        size_t n = end - start;

        start = end + 1;
        if (n && line[n - 1] == '\r')
            n--;
        while (n && xl_parse_blank(*line)) {
            line++;
            n--;
        }
        if (n == 0 || line[0] == '#')
            continue;
        if (!xl_prom_line_is_sample(line, n))
            return XL_FMT_NAGIOS;
        samples++;
    }
    return samples ? XL_FMT_PROMETHEUS : XL_FMT_NAGIOS;
}

/* ------------------------------------------------------------ arena */

#define BLOCK_MIN (16u << 10)

struct xl_parse_block {
    struct xl_parse_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

void *xl_parse_arena_alloc(struct xl_parse_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    struct xl_parse_block *b = a->head;
    void *p;

    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;
        if (!(b = xl_malloc(sizeof(*b) + cap)))
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    p = b->data + b->used;
    b->used += n;
    return p;
}

char *xl_parse_arena_strndup(struct xl_parse_arena *a, const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX || !(p = xl_parse_arena_alloc(a, n + 1)))
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void xl_parse_arena_cleanup(struct xl_parse_arena *a)
{
    while (a->head) {
        struct xl_parse_block *b = a->head;
        a->head = b->next;
        xl_free(b);
    }
}

/* ------------------------------------------------------------ errors */

void xl_parse_where(const char *s, size_t len, size_t off, size_t *line, size_t *byte)
{
    size_t l = 1, start = 0;

    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *byte = off - start + 1;
}

bool xl_parse_too_many(const struct xl_parse_limits *lim, size_t n, struct xl_err *err)
{
    if (!lim || lim->max_records == 0 || n < lim->max_records)
        return false;
    xl_err_set(err, XL_ETOOBIG, "more than %zu records", lim->max_records);
    return true;
}

bool xl_parse_ts_plausible(int64_t ts)
{
    return ts >= 100000000000LL && ts < 10000000000000LL;
}

void xl_parse_quote(const char *s, size_t n, char *out, size_t outlen)
{
    size_t k = 0;
    bool cut = n > XL_PARSE_QUOTE_MAX;

    if (outlen == 0)
        return;
    if (cut)
        n = XL_PARSE_QUOTE_MAX;
    for (size_t i = 0; i < n && k + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (cut && k + 4 < outlen) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}
