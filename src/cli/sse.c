/* xluo: incremental Server-Sent Events parser. */
#include "sse.h"

#include <string.h>

void xl_sse_init(struct xl_sse *p, xl_sse_event_fn cb, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->ctx = ctx;
    xl_buf_init(&p->line, XL_SSE_MAX_LINE);
    xl_buf_init(&p->data, XL_SSE_MAX_LINE);
    xl_buf_init(&p->type, 256);
    xl_buf_init(&p->id, 256);
    xl_buf_init(&p->last, 256);
}

void xl_sse_cleanup(struct xl_sse *p)
{
    xl_buf_cleanup(&p->line);
    xl_buf_cleanup(&p->data);
    xl_buf_cleanup(&p->type);
    xl_buf_cleanup(&p->id);
    xl_buf_cleanup(&p->last);
}

void xl_sse_reset(struct xl_sse *p)
{
    xl_buf_reset(&p->line);
    xl_buf_reset(&p->data);
    xl_buf_reset(&p->type);
    p->after_cr = false;
    p->started = false;
    p->bom = 0;
    /* An id seen in an event that never completed does not count. */
    xl_buf_reset(&p->id);
    xl_buf_add(&p->id, p->last.data ? p->last.data : "", p->last.len);
}

xl_rc xl_sse_set_id(struct xl_sse *p, const char *id)
{
    xl_rc rc;

    xl_buf_reset(&p->id);
    xl_buf_reset(&p->last);
    if ((rc = xl_buf_adds(&p->id, id)) != XL_OK)
        return rc;
    return xl_buf_adds(&p->last, id);
}

const char *xl_sse_last_id(const struct xl_sse *p)
{
    return p->last.data ? p->last.data : "";
}

/* The empty line: hand the event over, if it has data. */
static xl_rc dispatch(struct xl_sse *p)
{
    struct xl_sse_event ev;
    xl_rc rc;
    int stop;

    /* The id of an event counts once the event is complete (even one
     * without data). Cannot grow past the id buffer's own limit. */
    xl_buf_reset(&p->last);
    if ((rc = xl_buf_add(&p->last, p->id.data ? p->id.data : "", p->id.len)) != XL_OK)
        return rc;
    if (p->data.len == 0) {
        xl_buf_reset(&p->type);
        return XL_OK;
    }
    p->data.data[--p->data.len] = '\0'; /* the last '\n' */
    ev.type = p->type.len ? p->type.data : "message";
    ev.data = p->data.data;
    ev.len = p->data.len;
    ev.id = xl_sse_last_id(p);
    stop = p->cb(p->ctx, &ev);
    xl_buf_reset(&p->data);
    xl_buf_reset(&p->type);
    return stop ? XL_ESTATE : XL_OK;
}

/* One complete line (without its end) in p->line. */
static xl_rc process_line(struct xl_sse *p)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len, flen, vlen;
    const char *colon, *v;
    xl_rc rc = XL_OK;

    if (n == 0)
        return dispatch(p);
    if (l[0] == ':') {
        p->comments++;
        return XL_OK;
    }
    colon = memchr(l, ':', n);
    flen = colon ? (size_t)(colon - l) : n;
    v = colon ? colon + 1 : l + n;
    if (colon && v < l + n && *v == ' ')
        v++;
    vlen = (size_t)(l + n - v);
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if ((rc = xl_buf_add(&p->data, v, vlen)) == XL_OK)
            rc = xl_buf_add(&p->data, "\n", 1);
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        xl_buf_reset(&p->type);
        rc = xl_buf_add(&p->type, v, vlen);
    } else if (flen == 2 && memcmp(l, "id", 2) == 0) {
        if (!memchr(v, '\0', vlen)) {
            xl_buf_reset(&p->id);
            rc = xl_buf_add(&p->id, v, vlen);
        }
    }
    /* retry and unknown fields: ignored */
    return rc;
}

xl_rc xl_sse_feed(struct xl_sse *p, const char *buf, size_t n)
{
    size_t i = 0;
    xl_rc rc;

    /* A UTF-8 byte order mark may open the stream, even cut in pieces. */
    while (!p->started && i < n) {
        if ((unsigned char)buf[i] == (unsigned char)"\xEF\xBB\xBF"[p->bom]) {
            i++;
            if (++p->bom == 3)
                p->started = true;
            continue;
        }
        p->started = true;
        /* Bytes that began like a BOM and were not one: keep them. */
        if (p->bom && (rc = xl_buf_add(&p->line, "\xEF\xBB\xBF", p->bom)) != XL_OK)
            return rc;
    }
    while (i < n) {
        const char *start = buf + i;
        size_t k = 0;

        if (p->after_cr) {
            p->after_cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        while (i + k < n && start[k] != '\n' && start[k] != '\r')
            k++;
        if ((rc = xl_buf_add(&p->line, start, k)) != XL_OK)
            return rc;
        i += k;
        if (i == n)
            break; /* the line goes on in the next chunk */
        p->after_cr = buf[i] == '\r';
        i++;
        rc = process_line(p);
        xl_buf_reset(&p->line);
        if (rc != XL_OK)
            return rc;
    }
    return XL_OK;
}
