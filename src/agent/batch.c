/* xluo-agent: hand-encoded protocol batches. */
#include "batch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void xl_batch_init(struct xl_batch_builder *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    xl_buf_init(&b->rec, max_bytes);
}

void xl_batch_cleanup(struct xl_batch_builder *b)
{
    xl_buf_cleanup(&b->rec);
    xl_free(b->marks);
    b->marks = NULL;
    b->nmarks = b->cap_marks = 0;
}

bool xl_batch_empty(const struct xl_batch_builder *b)
{
    return b->items == 0 && b->nmarks == 0;
}

size_t xl_batch_bytes(const struct xl_batch_builder *b)
{
    return b->rec.len;
}

/* 0: copy as is; 1: escape as \u00XX; other: the escape letter. */
static const unsigned char esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 'b', 't', 'n', 1, 'f', 'r', 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    [0x5c] = '\\', [0x7f] = 1,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* True if any byte of w is < 0x20, == '"', == '\\', or >= 0x7f. */
static inline bool has_special(uint64_t w)
{
    uint64_t lt20 = (w - ONES * 0x20) & ~w;            /* high bit set where byte < 0x20 */
    uint64_t q = w ^ (ONES * '"'), bs = w ^ (ONES * '\\');
    uint64_t eq = ((q - ONES) & ~q) | ((bs - ONES) & ~bs); /* where byte == '"' or '\\' */
    uint64_t ge7f = (w + ONES * 0x01) | w;              /* high bit where byte >= 0x7f */
    return ((lt20 | eq | ge7f) & HIGHS) != 0;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if the
 * bytes there are not one (overlong, surrogate, out of range, cut). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

xl_rc xl_json_escape(struct xl_buf *buf, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    xl_rc rc;

    while (p < end) {
        unsigned char c;
        char e[8];
        size_t k;

        /* Skip 8 plain bytes at a time: none below 0x20, none '"' or '\\',
         * none 0x7f or above (those are checked one by one below). */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (has_special(w))
                break;
            p += 8;
        }
        if (p == end)
            break;
        c = *p;
        if (c < 0x80 && !esc[c]) {
            p++;
            continue;
        }
        if (c >= 0x80 && (k = utf8_seq(p, (size_t)(end - p))) != 0) {
            p += k;
            continue;
        }
        /* Flush the plain run, then write the escape. */
        if ((rc = xl_buf_add(buf, run, (size_t)(p - run))) != XL_OK)
            return rc;
        if (c >= 0x80) {
            memcpy(e, "\\\\x", 3);
            e[3] = hex[c >> 4];
            e[4] = hex[c & 15];
            k = 5;
        } else if (esc[c] == 1) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            k = 6;
        } else {
            e[0] = '\\';
            e[1] = (char)esc[c];
            k = 2;
        }
        if ((rc = xl_buf_add(buf, e, k)) != XL_OK)
            return rc;
        run = ++p;
    }
    return xl_buf_add(buf, run, (size_t)(p - run));
}

/* Close the open log record, if any. */
static xl_rc close_log(struct xl_batch_builder *b)
{
    if (!b->log_open)
        return XL_OK;
    b->log_open = false;
    return xl_buf_add(&b->rec, "]}", 2);
}

static xl_rc sep(struct xl_batch_builder *b)
{
    return b->rec.len ? xl_buf_add(&b->rec, ",", 1) : XL_OK;
}

static xl_rc add_value(struct xl_buf *buf, double v)
{
    if (isnan(v))
        return xl_buf_adds(buf, "\"NaN\"");
    if (isinf(v))
        return xl_buf_adds(buf, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    return xl_buf_printf(buf, "%.17g", v);
}

/* `,"key":"escaped value"` when v is set. */
static xl_rc add_str_field(struct xl_buf *buf, const char *key, const char *v)
{
    xl_rc rc;

    if (!v)
        return XL_OK;
    if ((rc = xl_buf_printf(buf, ",\"%s\":\"", key)) ||
        (rc = xl_json_escape(buf, v, strlen(v))))
        return rc;
    return xl_buf_add(buf, "\"", 1);
}

/* Undo a record that did not fit. */
static xl_rc undo_record(struct xl_batch_builder *b, size_t undo, bool was_open, xl_rc rc)
{
    b->rec.len = undo;
    if (b->rec.data)
        b->rec.data[undo] = '\0';
    b->log_open = was_open;
    return rc;
}

xl_rc xl_batch_add_metric(struct xl_batch_builder *b, const char *name,
                          const struct xl_label *labels, size_t nlabels, double value,
                          int64_t ts_ms)
{
    size_t undo = b->rec.len;
    bool was_open = b->log_open;
    xl_rc rc;

    if ((rc = close_log(b)) || (rc = sep(b)) ||
        (rc = xl_buf_printf(&b->rec, "{\"type\":\"metric\",\"ts\":%lld,\"name\":\"",
                            (long long)ts_ms)) ||
        (rc = xl_json_escape(&b->rec, name, strlen(name))) ||
        (rc = xl_buf_adds(&b->rec, "\",\"labels\":{")))
        goto fail;
    for (size_t i = 0; i < nlabels; i++) {
        if ((rc = xl_buf_adds(&b->rec, i ? ",\"" : "\"")) ||
            (rc = xl_json_escape(&b->rec, labels[i].name, strlen(labels[i].name))) ||
            (rc = xl_buf_adds(&b->rec, "\":\"")) ||
            (rc = xl_json_escape(&b->rec, labels[i].value, strlen(labels[i].value))) ||
            (rc = xl_buf_add(&b->rec, "\"", 1)))
            goto fail;
    }
    if ((rc = xl_buf_adds(&b->rec, "},\"value\":")) || (rc = add_value(&b->rec, value)) ||
        (rc = xl_buf_add(&b->rec, "}", 1)))
        goto fail;
    b->items++;
    return XL_OK;
fail:
    return undo_record(b, undo, was_open, rc);
}

/* Decimal digits of v into the end of tmp[24]; returns where they start. */
static char *u64_dec(uint64_t v, char *tmp)
{
    char *p = tmp + 24;

    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    return p;
}

/* `{"o":<offset>,"e":<end>,"t":"` without printf: this runs once per line. */
static xl_rc add_line_head(struct xl_buf *buf, uint64_t offset, uint64_t end)
{
    char out[80], tmp[24], *d;
    size_t n = 0, k;

    memcpy(out, "{\"o\":", 5);
    n = 5;
    d = u64_dec(offset, tmp);
    k = (size_t)(tmp + 24 - d);
    memcpy(out + n, d, k);
    n += k;
    memcpy(out + n, ",\"e\":", 5);
    n += 5;
    d = u64_dec(end, tmp);
    k = (size_t)(tmp + 24 - d);
    memcpy(out + n, d, k);
    n += k;
    memcpy(out + n, ",\"t\":\"", 6);
    n += 6;
    return xl_buf_add(buf, out, n);
}

xl_rc xl_batch_add_log(struct xl_batch_builder *b, const struct xl_log_line *l)
{
    size_t undo = b->rec.len;
    bool was_open = b->log_open;
    xl_rc rc;

    if (b->log_open && (b->log_uid != l->file_uid || b->log_input != l->input ||
                        b->log_ts != l->ts_ms)) {
        if ((rc = close_log(b)) != XL_OK)
            goto fail;
    }
    if (!b->log_open) {
        if ((rc = sep(b)) ||
            (rc = xl_buf_printf(&b->rec, "{\"type\":\"log\",\"ts\":%lld,\"input\":\"",
                                (long long)l->ts_ms)) ||
            (rc = xl_json_escape(&b->rec, l->input, strlen(l->input))) ||
            (rc = xl_buf_adds(&b->rec, "\",\"file\":\"")) ||
            (rc = xl_json_escape(&b->rec, l->path, strlen(l->path))) ||
            (rc = xl_buf_printf(&b->rec, "\",\"file_id\":\"%016llx\",\"lines\":[",
                                (unsigned long long)l->file_uid)))
            goto fail;
        b->log_open = true;
        b->log_uid = l->file_uid;
        b->log_input = l->input;
        b->log_ts = l->ts_ms;
    } else if ((rc = xl_buf_add(&b->rec, ",", 1)) != XL_OK) {
        goto fail;
    }
    if ((rc = add_line_head(&b->rec, l->offset, l->end)) ||
        (rc = xl_json_escape(&b->rec, l->data, l->len)) || (rc = xl_buf_add(&b->rec, "\"", 1)))
        goto fail;
    if (l->nmatched) {
        for (size_t i = 0; i < l->nmatched; i++)
            if ((rc = xl_buf_adds(&b->rec, i ? ",\"" : ",\"m\":[\"")) ||
                (rc = xl_json_escape(&b->rec, l->matched[i], strlen(l->matched[i]))) ||
                (rc = xl_buf_add(&b->rec, "\"", 1)))
                goto fail;
        if ((rc = xl_buf_add(&b->rec, "]", 1)) != XL_OK)
            goto fail;
    }
    if (l->part && (rc = xl_buf_printf(&b->rec, ",\"p\":[%u,%u]", l->part, l->parts)))
        goto fail;
    if ((rc = xl_buf_add(&b->rec, "}", 1)) != XL_OK)
        goto fail;
    b->items++;
    b->keep = true;
    return XL_OK;
fail:
    return undo_record(b, undo, was_open, rc);
}

xl_rc xl_batch_add_check(struct xl_batch_builder *b, const struct xl_check_rec *c)
{
    size_t undo = b->rec.len;
    bool was_open = b->log_open;
    xl_rc rc;

    if ((rc = close_log(b)) || (rc = sep(b)) ||
        (rc = xl_buf_printf(&b->rec, "{\"type\":\"check\",\"ts\":%lld,\"state\":\"%s\"",
                            (long long)c->ts_ms, xl_check_state_str(c->state))) ||
        (rc = add_str_field(&b->rec, "name", c->name)) ||
        (rc = add_str_field(&b->rec, "output", c->output ? c->output : "")) ||
        (rc = add_str_field(&b->rec, "long_output",
                            c->long_output && *c->long_output ? c->long_output : NULL)) ||
        (rc = add_str_field(&b->rec, "source", c->source)) ||
        (c->exit_code >= 0 && (rc = xl_buf_printf(&b->rec, ",\"exit_code\":%d", c->exit_code))) ||
        (c->duration_ms >= 0 &&
         (rc = xl_buf_printf(&b->rec, ",\"duration_ms\":%lld", (long long)c->duration_ms))) ||
        (c->interval_ms > 0 &&
         (rc = xl_buf_printf(&b->rec, ",\"interval_ms\":%lld", (long long)c->interval_ms))) ||
        (rc = xl_buf_add(&b->rec, "}", 1)))
        return undo_record(b, undo, was_open, rc);
    b->items++;
    b->keep = true;
    return XL_OK;
}

xl_rc xl_batch_add_event(struct xl_batch_builder *b, const char *type, const json_t *fields,
                         const char *source, int64_t ts_ms)
{
    size_t undo = b->rec.len;
    bool was_open = b->log_open;
    char *js = json_dumps(fields, JSON_COMPACT | JSON_ENSURE_ASCII);
    xl_rc rc;

    if (!js)
        return XL_ENOMEM;
    if ((rc = close_log(b)) || (rc = sep(b)) ||
        (rc = xl_buf_printf(&b->rec, "{\"type\":\"event\",\"ts\":%lld", (long long)ts_ms)) ||
        (rc = add_str_field(&b->rec, "name", type)) ||
        (rc = add_str_field(&b->rec, "source", source)) ||
        (rc = xl_buf_adds(&b->rec, ",\"fields\":")) || (rc = xl_buf_adds(&b->rec, js)) ||
        (rc = xl_buf_add(&b->rec, "}", 1))) {
        free(js);
        return undo_record(b, undo, was_open, rc);
    }
    free(js);
    b->items++;
    b->keep = true;
    return XL_OK;
}

xl_rc xl_batch_add_mark(struct xl_batch_builder *b, uint64_t file_uid, uint64_t end)
{
    /* Several marks of one file in a batch: only the last counts. */
    if (b->nmarks && b->marks[b->nmarks - 1].file_uid == file_uid) {
        b->marks[b->nmarks - 1].end = end;
        return XL_OK;
    }
    if (xl_grow((void **)&b->marks, &b->cap_marks, b->nmarks + 1, sizeof(*b->marks)) < 0)
        return XL_ENOMEM;
    b->marks[b->nmarks++] = (struct xl_mark){file_uid, end};
    return XL_OK;
}

xl_rc xl_batch_finish(struct xl_batch_builder *b, const char *agent_id, uint64_t seq,
                      uint64_t floor, int64_t sent_ms, struct xl_batch_out *out)
{
    char head[200];
    int hn;

    memset(out, 0, sizeof(*out));
    if (b->items) {
        hn = snprintf(head, sizeof(head),
                      "{\"v\":1,\"agent_id\":\"%s\",\"seq\":%llu,\"floor\":%llu,\"sent\":%lld,"
                      "\"records\":[",
                      agent_id, (unsigned long long)seq, (unsigned long long)floor,
                      (long long)sent_ms);
        out->len = (size_t)hn + b->rec.len + (b->log_open ? 2 : 0) + 2;
        if (!(out->body = xl_malloc(out->len + 1)))
            return XL_ENOMEM;
        memcpy(out->body, head, (size_t)hn);
        memcpy(out->body + hn, b->rec.data, b->rec.len);
        memcpy(out->body + hn + b->rec.len, b->log_open ? "]}]}" : "]}", b->log_open ? 4 : 2);
        out->body[out->len] = '\0';
    }
    out->items = b->items;
    out->droppable = !b->keep && b->nmarks == 0;
    out->marks = b->marks;
    out->nmarks = b->nmarks;
    b->marks = NULL;
    b->nmarks = b->cap_marks = 0;
    xl_buf_reset(&b->rec);
    b->items = 0;
    b->keep = false;
    b->log_open = false;
    return XL_OK;
}

void xl_batch_out_cleanup(struct xl_batch_out *o)
{
    xl_free(o->body);
    xl_free(o->marks);
    memset(o, 0, sizeof(*o));
}
