/* xluo: `xluo events` — custom events the agents sent, as a table (oldest
 * first), or with -f each new one as the server stores it (Server-Sent
 * Events on /api/v1/stream: follow.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "fmt.h"
#include "http.h"
#include "sse.h"
#include "table.h"

#define FIELDS_MAX (1u << 20)

static xl_rc events_url(const struct xl_cli_ctx *c, bool stream, struct xl_buf *url,
                        struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    xl_rc rc;

    if ((rc = xl_cli_url_start(url, a->server, stream ? "/api/v1/stream" : "/api/v1/events")) ||
        (rc = xl_cli_url_param(url, "type", stream && !a->type ? "event" : a->type)) ||
        (rc = xl_cli_url_param(url, "host", a->host)))
        goto out_url;
    for (size_t i = 0; i < a->where.n; i++)
        if ((rc = xl_cli_url_param(url, "where", a->where.v[i])))
            goto out_url;
    if (stream)
        return XL_OK;
    if ((rc = xl_cli_url_param(url, "since", a->since)) ||
        (rc = xl_cli_url_param(url, "limit", a->limit)))
        goto out_url;
    return xl_cli_url_range(url, "since", "until", a->from, a->to, c->now_ms, err);
out_url:
    return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
}

xl_rc xl_cli_events_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    return events_url(c, false, url, err);
}

xl_rc xl_cli_events_stream_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    return events_url(c, true, url, err);
}

#define EVENT_COLS 4

xl_rc xl_cli_events_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    static const char *const head[EVENT_COLS] = {"TIME", "HOST", "TYPE", "FIELDS"};
    json_t *events = json_object_get(root, "events");
    struct xl_table *t = NULL;
    struct xl_buf fields;
    xl_rc rc = XL_OK;

    xl_buf_init(&fields, FIELDS_MAX);
    if (!json_is_array(events)) {
        rc = xl_err_set(err, XL_EPROTO, "no \"events\" array");
        goto out;
    }
    if (json_array_size(events) == 0) {
        fprintf(c->out, "no events\n");
        goto out;
    }
    if (!(t = xl_table_new(EVENT_COLS)) || xl_table_add_row(t, head, EVENT_COLS) != XL_OK)
        goto out_nomem;
    /* The server sends the newest first; print them in time order. */
    for (size_t i = json_array_size(events); i > 0; i--) {
        json_t *ev = json_array_get(events, i - 1), *ts = json_object_get(ev, "ts");
        char when[48], tmp[2][64];

        if (!json_is_object(ev) || !json_is_integer(ts)) {
            rc = xl_err_set(err, XL_EPROTO, "events[%zu] is not an event", i - 1);
            goto out;
        }
        xl_cli_fmt_time(json_integer_value(ts), true, when, sizeof(when));
        if (xl_cli_kv_text(json_object_get(ev, "fields"), " ", &fields) != XL_OK)
            goto out_nomem;
        const char *cells[EVENT_COLS] = {
            when,
            xl_cli_json_text(json_object_get(ev, "host"), "-", tmp[0], sizeof(tmp[0])),
            xl_cli_json_text(json_object_get(ev, "type"), "-", tmp[1], sizeof(tmp[1])),
            fields.data,
        };
        if (xl_table_add_row(t, cells, EVENT_COLS) != XL_OK)
            goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    xl_table_free(t);
    xl_buf_cleanup(&fields);
    return rc;
}

/* One streamed event as "TIME HOST TYPE FIELDS". */
static xl_rc print_event(const struct xl_cli_ctx *c, json_t *rec, struct xl_err *err)
{
    json_t *ts = json_object_get(rec, "ts");
    const char *host = json_string_value(json_object_get(rec, "host"));
    const char *type = json_string_value(json_object_get(rec, "name"));
    struct xl_buf fields;
    char when[48];

    if (!json_is_object(rec) || !json_is_integer(ts))
        return xl_err_set(err, XL_EPROTO, "the server sent a record without \"ts\"");
    xl_buf_init(&fields, FIELDS_MAX);
    if (xl_cli_kv_text(json_object_get(rec, "fields"), " ", &fields) != XL_OK) {
        xl_buf_cleanup(&fields);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    xl_cli_fmt_time(json_integer_value(ts), true, when, sizeof(when));
    fprintf(c->out, "%s ", when);
    xl_cli_put_clean(host ? host : "-", strlen(host ? host : "-"), c->out);
    fputc(' ', c->out);
    xl_cli_put_clean(type ? type : "-", strlen(type ? type : "-"), c->out);
    fputc(' ', c->out);
    xl_cli_put_clean(fields.data, fields.len, c->out);
    fputc('\n', c->out);
    xl_buf_cleanup(&fields);
    return XL_OK;
}

xl_rc xl_cli_events_on_event(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                             struct xl_err *err)
{
    return xl_cli_follow_record(c, ev, "record", "events", print_event, err);
}

int xl_cli_events_main(const struct xl_cli_ctx *c)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_err err = {0};
    struct xl_buf url;
    int code;

    if (!a->follow)
        return xl_cli_get_and_render(c);
    if (a->since || a->from || a->to || a->limit) {
        fprintf(c->err,
                "xluo: --follow prints events as they are stored: --since, --from, --to and "
                "--limit do not apply\nusage: xluo %s\n",
                a->cmd->usage);
        return XL_CLI_EXIT_USAGE;
    }
    xl_buf_init(&url, XL_CLI_MAX_URL);
    if (xl_cli_events_stream_url(c, &url, &err) != XL_OK) {
        fprintf(c->err, "xluo: %s\n", err.msg);
        code = XL_CLI_EXIT_FAIL;
    } else {
        code = xl_cli_follow(c, url.data, NULL, xl_cli_events_on_event);
    }
    xl_buf_cleanup(&url);
    return code;
}
