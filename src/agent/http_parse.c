/* xluo-agent: incremental HTTP/1.x response and request parser (see
 * http_parse.h).
 *
 * Lines (status or request line, headers, chunk sizes, trailers) are
 * collected in p->line, one at a time, so a message may arrive split
 * anywhere; body bytes are passed through without copying. Bare LF is
 * accepted as a line end, as most clients and servers do. The two modes
 * differ only in the start line, in how a body without framing is read (a
 * response: until the close; a request: there is none) and in interim
 * responses; headers and chunks are the same code. */
#include "http_parse.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Content-Length and chunk sizes above this are refused (2^53). */
#define LENGTH_MAX (UINT64_C(1) << 53)

/* Only the fields that matter are cleared: the line buffer is not, which
 * keeps a re-init between pipelined requests cheap. */
static void init(struct xl_http_parser *p, bool request)
{
    memset(p, 0, offsetof(struct xl_http_parser, line));
    p->state = XL_HTTP_P_START;
    p->request = request;
}

void xl_http_parser_init_response(struct xl_http_parser *p)
{
    init(p, false);
}

void xl_http_parser_init_request(struct xl_http_parser *p)
{
    init(p, true);
}

static const char *kind(const struct xl_http_parser *p)
{
    return p->request ? "request" : "response";
}

/* Quote up to 40 bytes of s for an error message, with non-printable bytes
 * as \xNN, into out. */
static const char *quote(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n && i < 40 && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    if (n > 40 && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static xl_rc fail(struct xl_http_parser *p, struct xl_err *err, const char *expected,
                  const char *got, size_t n)
{
    char q[256];

    p->state = XL_HTTP_P_ERROR;
    if (p->request && p->status == 0)
        p->status = 400;
    if (got)
        return xl_err_set(err, XL_EPROTO, "malformed %s: expected %s, got \"%s\"", kind(p),
                          expected, quote(got, n, q, sizeof(q)));
    return xl_err_set(err, XL_EPROTO, "malformed %s: expected %s", kind(p), expected);
}

/* Request mode: fail, and have the server answer with status. */
static xl_rc reject(struct xl_http_parser *p, struct xl_err *err, int status, const char *expected,
                    const char *got, size_t n)
{
    if (p->request)
        p->status = status;
    return fail(p, err, expected, got, n);
}

static bool is_token_char(char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* "HTTP/1.x NNN[ reason]" */
static xl_rc parse_status(struct xl_http_parser *p, const char *s, size_t n, struct xl_err *err)
{
    static const char expected[] = "status line \"HTTP/1.x NNN reason\"";

    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return fail(p, err, expected, s, n);
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return fail(p, err, expected, s, n);
    if (n > 12 && s[12] != ' ')
        return fail(p, err, expected, s, n);
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->status < 100)
        return fail(p, err, "a status code from 100 to 999", s, n);
    p->keep_alive = p->minor >= 1;
    p->state = XL_HTTP_P_HEADER;
    return XL_OK;
}

/* "METHOD SP target SP HTTP/1.x", each part within its bound. */
static xl_rc parse_request_line(struct xl_http_parser *p, const char *s, size_t n,
                                struct xl_err *err)
{
    static const char expected[] = "request line \"METHOD /target HTTP/1.x\"";
    const char *sp1 = memchr(s, ' ', n), *t, *sp2, *v;
    size_t ml, tl, vl;

    if (!sp1 || sp1 == s)
        return fail(p, err, expected, s, n);
    ml = (size_t)(sp1 - s);
    for (size_t i = 0; i < ml; i++)
        if (!is_token_char(s[i]))
            return fail(p, err, expected, s, n);
    if (ml > XL_HTTP_METHOD_MAX)
        return reject(p, err, 400, "a method of at most 16 bytes", s, n);
    t = sp1 + 1;
    if (!(sp2 = memchr(t, ' ', n - ml - 1)) || sp2 == t)
        return fail(p, err, expected, s, n);
    tl = (size_t)(sp2 - t);
    if (tl > XL_HTTP_TARGET_MAX)
        return reject(p, err, 414, "a request target of at most 2048 bytes", s, n);
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return fail(p, err, expected, s, n);
    v = sp2 + 1;
    vl = n - (size_t)(v - s);
    if (vl != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9')
        return fail(p, err, expected, s, n);
    memcpy(p->method, s, ml);
    p->method[ml] = '\0';
    memcpy(p->target, t, tl);
    p->target[tl] = '\0';
    p->minor = v[7] - '0';
    p->keep_alive = p->minor >= 1;
    p->state = XL_HTTP_P_HEADER;
    return XL_OK;
}

/* Is tok one of the comma-separated, case-insensitive tokens of v? With
 * last, only the last token counts (Transfer-Encoding). */
static bool has_token(const char *v, size_t n, const char *tok, bool last)
{
    size_t tl = strlen(tok), i = 0;
    bool found = false;

    while (i < n) {
        size_t b, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        b = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == b)
            continue;
        found = e - b == tl && strncasecmp(v + b, tok, tl) == 0;
        if (found && !last)
            return true;
    }
    return found;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

static xl_rc parse_header(struct xl_http_parser *p, const char *s, size_t n, struct xl_err *err)
{
    const char *colon = memchr(s, ':', n), *v;
    size_t nl, vl;

    /* An obsolete folded continuation line: none of the headers read here
     * is ever folded, so it is skipped. */
    if (s[0] == ' ' || s[0] == '\t')
        return XL_OK;
    if (!colon || colon == s)
        return fail(p, err, "header line \"Name: value\"", s, n);
    nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if (!is_token_char(s[i]))
            return fail(p, err, "header line \"Name: value\"", s, n);
    v = colon + 1;
    vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;

    if (name_is(s, nl, "Content-Length")) {
        uint64_t len = 0;

        if (vl == 0 || vl > 16)
            return fail(p, err, "a decimal Content-Length", v, vl);
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(p, err, "a decimal Content-Length", v, vl);
            len = len * 10 + (uint64_t)(v[i] - '0');
        }
        if (len > LENGTH_MAX)
            return fail(p, err, "a Content-Length below 2^53", v, vl);
        if (p->have_length && len != p->length)
            return fail(p, err, "one Content-Length, got a second, different one", v, vl);
        p->have_length = true;
        p->length = len;
    } else if (name_is(s, nl, "Transfer-Encoding")) {
        bool only_chunked = !p->te && vl == 7 && strncasecmp(v, "chunked", 7) == 0;

        p->chunked = has_token(v, vl, "chunked", true);
        p->te = true;
        /* A request body must be chunked, and nothing else is decoded
         * here (RFC 9112 6.1: 400 when chunked is not last; 501 for a
         * coding the server does not know). */
        if (p->request && !p->chunked)
            return fail(p, err, "Transfer-Encoding: chunked", v, vl);
        if (p->request && !only_chunked)
            return reject(p, err, 501, "no transfer coding but chunked", v, vl);
    } else if (p->request && name_is(s, nl, "Expect")) {
        if (vl == 12 && strncasecmp(v, "100-continue", 12) == 0)
            p->expect_continue = true;
    } else if (name_is(s, nl, "Connection")) {
        if (has_token(v, vl, "close", false))
            p->keep_alive = false;
        else if (has_token(v, vl, "keep-alive", false))
            p->keep_alive = true;
    }
    return XL_OK;
}

/* The empty line after the headers: decide how the body is framed. */
static void end_of_headers(struct xl_http_parser *p)
{
    if (p->request) {
        /* HTTP/1.0 clients do not wait for a 100 (RFC 9110 10.1.1). */
        if (p->minor == 0)
            p->expect_continue = false;
        if (p->te) {
            /* Both: the length is ignored and the connection not reused
             * (RFC 9112 6.3). */
            if (p->have_length)
                p->keep_alive = false;
            p->state = XL_HTTP_P_CHUNK_SIZE;
        } else if (p->have_length && p->length) {
            p->left = p->length;
            p->state = XL_HTTP_P_BODY_LEN;
        } else {
            p->state = XL_HTTP_P_DONE;
        }
        return;
    }
    if (p->status < 200 && p->status != 101) {
        /* An interim response (100 Continue, 103 Early Hints): the real
         * one follows. */
        p->state = XL_HTTP_P_START;
        p->have_length = p->te = p->chunked = false;
        p->length = 0;
        return;
    }
    if (p->status == 101) {
        /* Switching protocols: nothing more of HTTP on this connection. */
        p->keep_alive = false;
        p->state = XL_HTTP_P_DONE;
    } else if (p->status == 204 || p->status == 304) {
        p->state = XL_HTTP_P_DONE;
    } else if (p->te) {
        /* Transfer-Encoding wins over Content-Length (RFC 9112 6.3); a
         * response with both is suspect, so its connection is not reused. */
        if (p->have_length)
            p->keep_alive = false;
        if (p->chunked) {
            p->state = XL_HTTP_P_CHUNK_SIZE;
        } else {
            p->keep_alive = false;
            p->state = XL_HTTP_P_BODY_EOF;
        }
    } else if (p->have_length) {
        p->left = p->length;
        p->state = p->length ? XL_HTTP_P_BODY_LEN : XL_HTTP_P_DONE;
    } else {
        p->keep_alive = false;
        p->state = XL_HTTP_P_BODY_EOF;
    }
}

/* "1a2b[;ext]" */
static xl_rc parse_chunk_size(struct xl_http_parser *p, const char *s, size_t n, struct xl_err *err)
{
    static const char expected[] = "a hexadecimal chunk size";
    uint64_t size = 0;
    size_t i = 0;

    for (; i < n; i++) {
        char ch = s[i];
        int d;

        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            d = ch - 'A' + 10;
        else
            break;
        size = size * 16 + (uint64_t)d;
        if (size > LENGTH_MAX)
            return fail(p, err, "a chunk size below 2^53", s, n);
    }
    if (i == 0)
        return fail(p, err, expected, s, n);
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && s[i] != ';')
        return fail(p, err, expected, s, n);
    if (size == 0) {
        p->state = XL_HTTP_P_TRAILER;
    } else {
        p->left = size;
        p->state = XL_HTTP_P_CHUNK_DATA;
    }
    return XL_OK;
}

/* One complete line (without its line end) in the current state. */
static xl_rc parse_line(struct xl_http_parser *p, const char *s, size_t n, struct xl_err *err)
{
    switch (p->state) {
    case XL_HTTP_P_START:
        /* Stray empty lines before a start line are tolerated. */
        if (n == 0)
            return XL_OK;
        return p->request ? parse_request_line(p, s, n, err) : parse_status(p, s, n, err);
    case XL_HTTP_P_HEADER:
        if (n == 0) {
            end_of_headers(p);
            return XL_OK;
        }
        return parse_header(p, s, n, err);
    case XL_HTTP_P_CHUNK_SIZE: return parse_chunk_size(p, s, n, err);
    case XL_HTTP_P_CHUNK_END:
        if (n != 0)
            return fail(p, err, "CRLF after the chunk data", s, n);
        p->state = XL_HTTP_P_CHUNK_SIZE;
        return XL_OK;
    case XL_HTTP_P_TRAILER:
        if (n == 0)
            p->state = XL_HTTP_P_DONE;
        return XL_OK;
    default: return fail(p, err, "no line here (parser state)", s, n);
    }
}

static bool in_head(const struct xl_http_parser *p)
{
    return p->state == XL_HTTP_P_START || p->state == XL_HTTP_P_HEADER;
}

xl_rc xl_http_parser_feed(struct xl_http_parser *p, const char *data, size_t n, size_t *used,
                          xl_http_body_fn fn, void *ctx, struct xl_err *err)
{
    size_t i = 0;
    xl_rc rc = XL_OK;

    while (i < n && p->state != XL_HTTP_P_DONE) {
        if (p->state == XL_HTTP_P_ERROR) {
            rc = xl_err_set(err, XL_EPROTO, "malformed %s: data after a parse error", kind(p));
            break;
        }
        if (p->state == XL_HTTP_P_BODY_LEN || p->state == XL_HTTP_P_CHUNK_DATA ||
            p->state == XL_HTTP_P_BODY_EOF) {
            size_t k = n - i;

            if (p->state != XL_HTTP_P_BODY_EOF && k > p->left)
                k = (size_t)p->left;
            fn(ctx, data + i, k);
            i += k;
            p->body += k;
            if (p->state == XL_HTTP_P_BODY_EOF)
                continue;
            p->left -= k;
            if (p->left == 0)
                p->state = p->state == XL_HTTP_P_BODY_LEN ? XL_HTTP_P_DONE : XL_HTTP_P_CHUNK_END;
            continue;
        }
        /* A line-oriented state: collect up to the LF. */
        const char *lf = memchr(data + i, '\n', n - i);
        size_t k = lf ? (size_t)(lf - (data + i)) : n - i;
        size_t len;

        if (p->line_len + k > sizeof(p->line) - 1) {
            if (p->request && p->state == XL_HTTP_P_START)
                rc = reject(p, err, 414, "a request target of at most 2048 bytes", p->line,
                            p->line_len);
            else if (p->request && p->state == XL_HTTP_P_HEADER)
                rc = reject(p, err, 431, "a line of at most 8192 bytes", p->line, p->line_len);
            else
                rc = fail(p, err, "a line of at most 8192 bytes", p->line, p->line_len);
            break;
        }
        if (in_head(p) && (p->head_bytes += k + (lf ? 1 : 0)) > XL_HTTP_HEADERS_MAX) {
            rc = reject(p, err, p->request ? 431 : 0, "at most 65536 bytes of headers", NULL, 0);
            break;
        }
        memcpy(p->line + p->line_len, data + i, k);
        p->line_len += k;
        i += k;
        if (!lf)
            break;
        i++; /* the LF */
        len = p->line_len;
        if (len && p->line[len - 1] == '\r')
            len--;
        p->line_len = 0;
        if ((rc = parse_line(p, p->line, len, err)) != XL_OK)
            break;
    }
    p->bytes += i;
    *used = i;
    return rc;
}

xl_rc xl_http_parser_eof(struct xl_http_parser *p, struct xl_err *err)
{
    switch (p->state) {
    case XL_HTTP_P_DONE: return XL_OK;
    case XL_HTTP_P_BODY_EOF: p->state = XL_HTTP_P_DONE; return XL_OK;
    case XL_HTTP_P_START:
        if (p->bytes == 0)
            return xl_err_set(err, XL_ECONN,
                              p->request ? "client closed the connection before a request"
                                         : "server closed the connection without answering");
        /* fall through */
    case XL_HTTP_P_HEADER:
        p->state = XL_HTTP_P_ERROR;
        return xl_err_set(err, XL_EPROTO,
                          "malformed %s: expected the end of the headers, the "
                          "connection closed after %llu bytes",
                          kind(p), (unsigned long long)p->bytes);
    case XL_HTTP_P_BODY_LEN:
        p->state = XL_HTTP_P_ERROR;
        return xl_err_set(err, XL_EPROTO,
                          "malformed %s: expected %llu body bytes, the connection "
                          "closed after %llu",
                          kind(p), (unsigned long long)p->length, (unsigned long long)p->body);
    case XL_HTTP_P_ERROR: return xl_err_set(err, XL_EPROTO, "malformed %s", kind(p));
    default:
        p->state = XL_HTTP_P_ERROR;
        return xl_err_set(err, XL_EPROTO,
                          "malformed %s: expected the last chunk of a chunked body, "
                          "the connection closed after %llu body bytes",
                          kind(p), (unsigned long long)p->body);
    }
}
