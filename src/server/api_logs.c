/* xluo-server: log search and histogram (docs/api.md "Logs"). The live
 * stream is in live.c. */
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/units.h"
#include "server.h"
#include "store/logs_query.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000
#define DEFAULT_RANGE_MS ((int64_t)3600 * 1000)

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The filters common to search and histogram, into q (strings borrowed from
 * the request). Answers 400 itself and returns false on a bad one. */
static bool parse_filters(struct xl_http_req *req, struct xl_http_resp *resp,
                          struct xl_log_query *q)
{
    int64_t now = xl_now_ms();
    struct xl_logq *text;
    struct xl_err err = {0};
    const char *p;

    q->host = xl_http_arg(req, "host");
    q->input = xl_http_arg(req, "input");
    q->path_glob = xl_http_arg(req, "file");
    q->from_ms = now - DEFAULT_RANGE_MS;
    q->to_ms = now;
    if (!xl_api_time_param(req, resp, "from", now, &q->from_ms) ||
        !xl_api_time_param(req, resp, "to", now, &q->to_ms))
        return false;
    /* 0 means "open" to the store; the API always has a bounded range. */
    if (q->from_ms == 0)
        q->from_ms = 1;
    if (q->to_ms == 0)
        q->to_ms = 1;
    if (q->to_ms < q->from_ms) {
        xl_http_error(resp, 400, "bad parameter", "to is before from");
        return false;
    }
    if ((p = xl_http_arg(req, "q")) && *p) {
        /* Compiled here too, so that a bad query is told apart from a store
         * failure and named as the parameter the user wrote. */
        if (xl_logq_compile(p, &text, &err) != XL_OK) {
            if (err.rc == XL_ENOMEM)
                xl_http_error(resp, 503, "out of memory", "try again later");
            else
                xl_http_error(resp, 400, "bad query", "q: %s", err.msg);
            return false;
        }
        xl_logq_free(text);
        q->text = p;
    }
    return true;
}

/* Store failures: a query the index refused is the client's (400). */
static void store_error(struct xl_http_resp *resp, xl_rc rc, const struct xl_err *err)
{
    if (rc == XL_EINVAL || rc == XL_ERANGE) {
        xl_http_error(resp, 400, "bad query", "%s", err->msg);
        return;
    }
    xl_log_rl(XL_LOG_ERROR, 10, "api", "log search: %s", err->msg);
    xl_http_error(resp, 503, "store error", "%s", err->msg);
}

/* The '\n'-joined filter names as a JSON array. */
static json_t *filters_json(const char *f)
{
    json_t *a = json_array();

    while (a && f && *f) {
        const char *nl = strchr(f, '\n');
        size_t n = nl ? (size_t)(nl - f) : strlen(f);

        json_array_append_new(a, json_stringn(f, n));
        f += n + (nl ? 1 : 0);
    }
    return a;
}

/* The line as a JSON string. The agent writes bytes that are not UTF-8
 * as \xHH and ingest checks, so a stored line is valid UTF-8; should one
 * not be (a database written by something else), it is escaped the same
 * way rather than failing the page. */
static json_t *line_json(const char *p, size_t len)
{
    json_t *j = json_stringn(p, len);
    struct xl_buf b;

    if (j)
        return j;
    xl_buf_init(&b, len * 4 + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x80 ? xl_buf_add(&b, p + i, 1) : xl_buf_printf(&b, "\\x%02x", c)) != XL_OK)
            break;
    }
    j = json_stringn(b.data ? b.data : "", b.len);
    xl_buf_cleanup(&b);
    return j;
}

struct rows_ctx {
    json_t *arr;
    bool failed; /* out of memory: the page is incomplete */
};

static int row_cb(void *ctx, const struct xl_log_row *r)
{
    struct rows_ctx *rc = ctx;
    json_t *o =
        json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id",
                  (json_int_t)r->id, "ts", (json_int_t)r->ts_ms, "host", r->host, "agent_id",
                  r->agent_id, "input", r->input, "file", r->path, "offset", (json_int_t)r->offset,
                  "part", (json_int_t)r->part, "parts", (json_int_t)r->parts, "line",
                  line_json(r->line, r->len), "filters", filters_json(r->filters));

    if (!o || json_array_append_new(rc->arr, o) != 0) {
        rc->failed = true;
        return 1;
    }
    return 0;
}

void xl_api_logs_search(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_log_query q = {0};
    struct xl_err err = {0};
    long long v = LIMIT_DEFAULT, cursor = 0;
    int64_t next = 0;
    struct rows_ctx rows = {0};
    xl_rc rc;

    if (!parse_filters(req, resp, &q))
        return;
    /* The cursor is the id of the newest line of the next page. */
    if (!xl_api_count_param(req, resp, "limit", LIMIT_MAX, &v) ||
        !xl_api_count_param(req, resp, "cursor", INT64_MAX - 1, &cursor))
        return;
    q.limit = (size_t)v;
    if (cursor)
        q.before_id = cursor + 1;
    if (!(rows.arr = json_array())) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    if ((rc = xl_logstore_search(s->logs, &q, row_cb, &rows, &next, &err)) != XL_OK) {
        json_decref(rows.arr);
        store_error(resp, rc, &err);
        return;
    }
    if (rows.failed) {
        /* The page would be cut without saying so. */
        json_decref(rows.arr);
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    xl_http_json(resp, 200,
                 json_pack("{s:o, s:o}", "logs", rows.arr, "next_cursor",
                           next ? json_integer((json_int_t)(next - 1)) : json_null()));
}

struct hist_ctx {
    json_t *arr;
};

static int bucket_cb(void *ctx, int64_t start, uint64_t count)
{
    struct hist_ctx *h = ctx;

    return json_array_append_new(h->arr,
                                 json_pack("[I, I]", (json_int_t)start, (json_int_t)count)) != 0;
}

void xl_api_logs_histogram(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_log_query q = {0};
    struct hist_ctx h;
    struct xl_err err = {0};
    int64_t step, nb;
    const char *p;
    xl_rc rc;

    if (!parse_filters(req, resp, &q))
        return;
    if (!(p = xl_http_arg(req, "step"))) {
        xl_http_error(resp, 400, "bad parameter", "step: required, a duration like 1m");
        return;
    }
    if (xl_duration_parse(p, &step) != XL_OK || step <= 0) {
        xl_http_error(resp, 400, "bad parameter", "step=%.64s: expected a duration like 1m", p);
        return;
    }
    nb = floor_div(q.to_ms, step) - floor_div(q.from_ms, step) + 1;
    if (nb > s->cfg->max_points) {
        xl_http_error(resp, 400, "too many points",
                      "the range holds %lld steps, over max_points %lld: use a larger step",
                      (long long)nb, (long long)s->cfg->max_points);
        return;
    }
    if (!(h.arr = json_array())) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    if ((rc = xl_logstore_histogram(s->logs, &q, step, bucket_cb, &h, &err)) != XL_OK) {
        json_decref(h.arr);
        store_error(resp, rc, &err);
        return;
    }
    if ((int64_t)json_array_size(h.arr) != nb) {
        json_decref(h.arr);
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    xl_http_json(resp, 200,
                 json_pack("{s:I, s:I, s:I, s:o}", "from", (json_int_t)q.from_ms, "to",
                           (json_int_t)q.to_ms, "step", (json_int_t)step, "buckets", h.arr));
}
