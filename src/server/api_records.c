/* xluo-server: the routes of checks and events (docs/api.md "Checks",
 * "Events"). Their live stream, GET /api/v1/stream, is in live.c. */
#include <string.h>

#include "common/log.h"
#include "common/units.h"
#include "server.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000

/* A store failure: 503 with the store's message. */
static void store_error(struct xl_http_resp *resp, const char *what, const struct xl_err *err)
{
    xl_log_rl(XL_LOG_ERROR, 10, "api", "%s: %s", what, err->msg);
    xl_http_error(resp, 503, "store error", "%s", err->msg);
}

/* s, or JSON null for NULL. */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* since= and until= (times), checked to be in order. */
static bool time_range(struct xl_http_req *req, struct xl_http_resp *resp, int64_t *from,
                       int64_t *to)
{
    int64_t now = xl_now_ms();

    *from = *to = 0;
    if (!xl_api_time_param(req, resp, "since", now, from) ||
        !xl_api_time_param(req, resp, "until", now, to))
        return false;
    if (*from && *to && *to < *from) {
        xl_http_error(resp, 400, "bad parameter", "until is before since");
        return false;
    }
    return true;
}

/* Collects rows into an array; failed says the page is incomplete. */
struct rows_ctx {
    json_t *arr;
    bool failed;
};

static int append_row(struct rows_ctx *rc, json_t *o)
{
    if (!o || json_array_append_new(rc->arr, o) != 0) {
        rc->failed = true;
        return 1;
    }
    return 0;
}

/* Answer {key: rows, ...extra} (extra's reference is taken), or 503 when
 * a row could not be built. */
static void answer_rows(struct xl_http_resp *resp, struct rows_ctx *rows, const char *key,
                        json_t *extra)
{
    json_t *o = NULL;

    if (!rows->failed && (o = json_object()) && json_object_set_new(o, key, rows->arr) == 0 &&
        (!extra || json_object_update(o, extra) == 0)) {
        json_decref(extra);
        xl_http_json(resp, 200, o);
        return;
    }
    if (!o) /* else json_object_set_new took the array */
        json_decref(rows->arr);
    json_decref(o);
    json_decref(extra);
    xl_http_error(resp, 503, "out of memory", "try again later");
}

/* ---- GET /api/v1/checks ---- */

/* A check is stale when no result came for STALE_RUNS of its intervals:
 * its script was removed, or its agent stopped running it. Measured on the
 * server's clock (when the last result was stored), so an agent's clock
 * skew does not make it stale. */
#define STALE_RUNS 3

static int check_cb(void *ctx, const struct xl_check_row *r)
{
    bool stale = r->has_interval && xl_now_ms() - r->received_ms > STALE_RUNS * r->interval_ms;

    return append_row(ctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:b}",
                                     "host", r->host, "agent_id", r->agent_id, "name", r->name,
                                     "state", xl_check_state_str(r->state), "output", r->output,
                                     "long_output", str_or_null(r->long_output), "exit_code",
                                     r->has_exit_code ? json_integer(r->exit_code) : json_null(),
                                     "duration_ms",
                                     r->has_duration ? json_integer(r->duration_ms) : json_null(),
                                     "source", str_or_null(r->source), "ts", (json_int_t)r->ts_ms,
                                     "since", (json_int_t)r->since_ms, "interval_ms",
                                     r->has_interval ? json_integer(r->interval_ms) : json_null(),
                                     "stale", stale));
}

void xl_api_checks(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_check_query q = {
        .host = xl_http_arg(req, "host"), .name = xl_http_arg(req, "name"), .state = -1};
    const char *state = xl_http_arg(req, "state");
    struct rows_ctx rows = {0};
    struct xl_err err = {0};
    enum xl_check_state st;

    if (state) {
        if (!xl_check_state_parse(state, &st)) {
            xl_http_error(resp, 400, "bad parameter",
                          "state=%.64s: expected ok, warning, critical or unknown", state);
            return;
        }
        q.state = (int)st;
    }
    if (!(rows.arr = json_array())) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    if (xl_checkstore_list(s->checks, &q, check_cb, &rows, &err) != XL_OK) {
        json_decref(rows.arr);
        store_error(resp, "checks", &err);
        return;
    }
    answer_rows(resp, &rows, "checks", NULL);
}

/* ---- GET /api/v1/checks/history ---- */

static int change_cb(void *ctx, const struct xl_check_change *c)
{
    return append_row(ctx,
                      json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:s}", "host", c->host, "agent_id",
                                c->agent_id, "name", c->name, "ts", (json_int_t)c->ts_ms, "from",
                                str_or_null(c->from), "to", c->to, "output", c->output));
}

void xl_api_checks_history(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_check_hist_query q = {.host = xl_http_arg(req, "host"),
                                    .name = xl_http_arg(req, "name")};
    struct rows_ctx rows = {0};
    struct xl_err err = {0};
    long long limit = LIMIT_DEFAULT;

    if (!time_range(req, resp, &q.from_ms, &q.to_ms) ||
        !xl_api_count_param(req, resp, "limit", LIMIT_MAX, &limit))
        return;
    q.limit = (size_t)limit;
    if (!(rows.arr = json_array())) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    if (xl_checkstore_history(s->checks, &q, change_cb, &rows, &err) != XL_OK) {
        json_decref(rows.arr);
        store_error(resp, "check history", &err);
        return;
    }
    answer_rows(resp, &rows, "changes", NULL);
}

/* ---- GET /api/v1/events ---- */

static int event_cb(void *ctx, const struct xl_event_row *r)
{
    json_error_t jerr;
    /* Stored as compact JSON by ingest; should it not parse, it is
     * shown as a string rather than failing the page. */
    json_t *fields = json_loads(r->fields, JSON_DECODE_ANY, &jerr);

    if (!fields)
        fields = json_string(r->fields);
    return append_row(ctx, json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:o}", "id", (json_int_t)r->id,
                                     "ts", (json_int_t)r->ts_ms, "host", r->host, "agent_id",
                                     r->agent_id, "type", r->type, "fields", fields, "source",
                                     str_or_null(r->source)));
}

void xl_api_events(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_event_query q = {.type = xl_http_arg(req, "type"), .host = xl_http_arg(req, "host")};
    struct xl_event_where where[XL_EVENT_WHERE_MAX];
    const char *wv[XL_EVENT_WHERE_MAX + 1];
    size_t nw = xl_http_args(req, "where", wv, XL_EVENT_WHERE_MAX + 1);
    struct rows_ctx rows = {0};
    struct xl_err err = {0};
    long long limit = LIMIT_DEFAULT, before = 0;
    int64_t next = 0;
    xl_rc rc;

    if (q.type && !xl_event_type_valid(q.type)) {
        xl_http_error(resp, 400, "bad parameter",
                      "type=%.140s: expected an event type (1 to %d characters of "
                      "[A-Za-z0-9_.:-]); leave it out for every type",
                      q.type, XL_EVENT_TYPE_MAX);
        return;
    }
    if (nw > XL_EVENT_WHERE_MAX) {
        xl_http_error(resp, 400, "bad parameter", "where: at most %d conditions",
                      XL_EVENT_WHERE_MAX);
        return;
    }
    if (!time_range(req, resp, &q.from_ms, &q.to_ms) ||
        !xl_api_count_param(req, resp, "limit", LIMIT_MAX, &limit) ||
        !xl_api_count_param(req, resp, "before", INT64_MAX, &before))
        return;
    q.limit = (size_t)limit;
    q.before_id = before;
    for (q.nwhere = 0; q.nwhere < nw; q.nwhere++) {
        if ((rc = xl_event_where_parse(wv[q.nwhere], &where[q.nwhere], &err)) != XL_OK) {
            if (rc == XL_ENOMEM)
                xl_http_error(resp, 503, "out of memory", "try again later");
            else
                xl_http_error(resp, 400, "bad parameter", "where=%.140s: %s", wv[q.nwhere],
                              err.msg);
            goto out;
        }
    }
    q.where = where;
    if (!(rows.arr = json_array())) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        goto out;
    }
    if ((rc = xl_eventstore_search(s->events, &q, event_cb, &rows, &next, &err)) != XL_OK) {
        json_decref(rows.arr);
        if (rc == XL_ENOENT)
            xl_http_error(resp, 400, "bad parameter", "before=%lld: %s", before, err.msg);
        else
            store_error(resp, "events", &err);
        goto out;
    }
    answer_rows(resp, &rows, "events",
                json_pack("{s:o}", "next_before", next ? json_integer(next) : json_null()));
out:
    for (size_t i = 0; i < q.nwhere; i++)
        xl_event_where_cleanup(&where[i]);
}
