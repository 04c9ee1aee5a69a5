/* xluo: `xluo logs` — the newest log lines, oldest first like tail, and with
 * -f every new line as the server stores it (Server-Sent Events on
 * /api/v1/logs/stream, reconnecting with Last-Event-ID: follow.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "http.h"
#include "sse.h"

#define LOGS_DEFAULT_N 100
#define LOGS_FOLLOW_DEFAULT_N 10
#define LOGS_PAGE_MAX 10000 /* the server's largest page */

xl_rc xl_cli_logs_url(const struct xl_cli_ctx *c, bool stream, size_t limit, int64_t cursor,
                      struct xl_buf *url, struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    char num[32];
    xl_rc rc;

    if ((rc = xl_cli_url_start(url, a->server, stream ? "/api/v1/logs/stream" : "/api/v1/logs")) ||
        (rc = xl_cli_url_param(url, "host", a->host)) ||
        (rc = xl_cli_url_param(url, "file", a->file)) ||
        (rc = xl_cli_url_param(url, "input", a->input)) ||
        (rc = xl_cli_url_param(url, "q", a->grep)))
        goto out_url;
    if (stream)
        return XL_OK;
    if (a->since && (rc = xl_cli_url_param(url, "from", a->since)))
        goto out_url;
    if ((rc = xl_cli_url_range(url, "from", "to", a->from, a->to, c->now_ms, err)) != XL_OK)
        return rc;
    snprintf(num, sizeof(num), "%zu", limit);
    if ((rc = xl_cli_url_param(url, "limit", num)))
        goto out_url;
    if (cursor > 0) {
        snprintf(num, sizeof(num), "%lld", (long long)cursor);
        if ((rc = xl_cli_url_param(url, "cursor", num)))
            goto out_url;
    }
    return XL_OK;
out_url:
    return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
}

xl_rc xl_cli_logs_print_row(const struct xl_cli_ctx *c, json_t *row, struct xl_err *err)
{
    json_t *ts = json_object_get(row, "ts"), *line = json_object_get(row, "line");
    const char *host = json_string_value(json_object_get(row, "host"));
    const char *file = json_string_value(json_object_get(row, "file"));
    json_int_t part = json_integer_value(json_object_get(row, "part"));
    json_int_t parts = json_integer_value(json_object_get(row, "parts"));
    char when[48];

    if (!json_is_object(row) || !json_is_integer(ts) || !json_is_string(line))
        return xl_err_set(err, XL_EPROTO, "a log line without \"ts\" or \"line\"");
    if (c->args.json) {
        char *s = json_dumps(row, JSON_COMPACT);

        if (!s)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        fputs(s, c->out);
        fputc('\n', c->out);
        free(s);
        return XL_OK;
    }
    xl_cli_fmt_time(json_integer_value(ts), true, when, sizeof(when));
    fprintf(c->out, "%s ", when);
    xl_cli_put_clean(host ? host : "-", strlen(host ? host : "-"), c->out);
    fputc(' ', c->out);
    xl_cli_put_clean(file ? file : "-", strlen(file ? file : "-"), c->out);
    fputs(": ", c->out);
    if (part > 0) {
        if (parts > 0)
            fprintf(c->out, "[%lld/%lld] ", (long long)part, (long long)parts);
        else
            fprintf(c->out, "[%lld/?] ", (long long)part);
    }
    xl_cli_put_clean(json_string_value(line), json_string_length(line), c->out);
    fputc('\n', c->out);
    return XL_OK;
}

/* GET url and decode the answer into *root. */
static xl_rc get_json(const struct xl_cli_ctx *c, const char *url, json_t **root,
                      struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_buf body;
    long status = 0;
    xl_rc rc;

    *root = NULL;
    xl_buf_init(&body, XL_CLI_MAX_BODY);
    if ((rc = xl_cli_http_get(url, a->server, a->token, a->timeout_ms, &status, &body, err)) ==
        XL_OK)
        rc = xl_cli_decode(status, body.data, body.len, root, err);
    xl_buf_cleanup(&body);
    return rc;
}

/* The newest n matching lines, newest first, into rows (a JSON array),
 * page by page. */
static xl_rc search(const struct xl_cli_ctx *c, size_t n, json_t *rows, struct xl_err *err)
{
    struct xl_buf url;
    int64_t cursor = 0;
    xl_rc rc = XL_OK;

    xl_buf_init(&url, XL_CLI_MAX_URL);
    while (json_array_size(rows) < n) {
        size_t want = n - json_array_size(rows), i;
        json_t *root = NULL, *logs, *next, *row;

        if (want > LOGS_PAGE_MAX)
            want = LOGS_PAGE_MAX;
        xl_buf_reset(&url);
        if ((rc = xl_cli_logs_url(c, false, want, cursor, &url, err)) != XL_OK ||
            (rc = get_json(c, url.data, &root, err)) != XL_OK)
            break;
        logs = json_object_get(root, "logs");
        next = json_object_get(root, "next_cursor");
        if (!json_is_array(logs)) {
            json_decref(root);
            rc = xl_err_set(err, XL_EPROTO, "unexpected answer from the server: no \"logs\" array");
            break;
        }
        json_array_foreach(logs, i, row)
        {
            if (json_array_size(rows) < n && json_array_append(rows, row) != 0) {
                json_decref(root);
                return xl_err_set(err, XL_ENOMEM, "out of memory");
            }
        }
        cursor = json_is_integer(next) && json_array_size(logs) ? json_integer_value(next) : 0;
        json_decref(root);
        if (cursor <= 0)
            break;
    }
    xl_buf_cleanup(&url);
    return rc;
}

/* Print rows (newest first) oldest first; *max_id gets the largest id. */
static xl_rc print_rows(const struct xl_cli_ctx *c, json_t *rows, int64_t *max_id,
                        struct xl_err *err)
{
    xl_rc rc;

    for (size_t i = json_array_size(rows); i > 0; i--) {
        json_t *row = json_array_get(rows, i - 1);
        json_int_t id = json_integer_value(json_object_get(row, "id"));

        if ((rc = xl_cli_logs_print_row(c, row, err)) != XL_OK) {
            if (rc == XL_EPROTO)
                xl_err_prefix(err, "unexpected answer from the server: ");
            return rc;
        }
        if (id > *max_id)
            *max_id = id;
    }
    return XL_OK;
}

/* The id of the newest stored line, whatever it is (0 when there is none):
 * where to follow from when the backlog is empty. */
static xl_rc newest_id(const struct xl_cli_ctx *c, int64_t *id, struct xl_err *err)
{
    struct xl_buf url;
    json_t *root = NULL;
    xl_rc rc;

    *id = 0;
    xl_buf_init(&url, XL_CLI_MAX_URL);
    if ((rc = xl_cli_url_start(&url, c->args.server, "/api/v1/logs")) ||
        (rc = xl_cli_url_param(&url, "from", "0")) || (rc = xl_cli_url_param(&url, "limit", "1"))) {
        rc = xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
        goto out;
    }
    if ((rc = get_json(c, url.data, &root, err)) != XL_OK)
        goto out;
    *id =
        json_integer_value(json_object_get(json_array_get(json_object_get(root, "logs"), 0), "id"));
out:
    json_decref(root);
    xl_buf_cleanup(&url);
    return rc;
}

xl_rc xl_cli_logs_on_event(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                           struct xl_err *err)
{
    return xl_cli_follow_record(c, ev, "log", "lines", xl_cli_logs_print_row, err);
}

/* Print every new line from after since_id until Ctrl-C. Returns the exit
 * code. */
static int follow(const struct xl_cli_ctx *c, int64_t since_id)
{
    struct xl_err err = {0};
    struct xl_buf url;
    char id[32];
    int code;
    xl_rc rc;

    xl_buf_init(&url, XL_CLI_MAX_URL);
    snprintf(id, sizeof(id), "%lld", (long long)since_id);
    if ((rc = xl_cli_logs_url(c, true, 0, 0, &url, &err)) != XL_OK) {
        fprintf(c->err, "xluo: %s\n", rc == XL_ENOMEM ? "out of memory" : err.msg);
        code = XL_CLI_EXIT_FAIL;
    } else {
        code = xl_cli_follow(c, url.data, id, xl_cli_logs_on_event);
    }
    xl_buf_cleanup(&url);
    return code;
}

int xl_cli_logs_main(const struct xl_cli_ctx *c)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_err err = {0};
    size_t n = a->follow ? LOGS_FOLLOW_DEFAULT_N : LOGS_DEFAULT_N;
    json_t *rows = NULL;
    int64_t max_id = 0;
    xl_rc rc = XL_OK;

    if (a->follow && a->to) {
        fprintf(c->err,
                "xluo: --to and --follow do not go together: following has no end\n"
                "usage: xluo %s\n",
                a->cmd->usage);
        return XL_CLI_EXIT_USAGE;
    }
    if (a->lines)
        n = (size_t)strtoull(a->lines, NULL, 10);
    if (!(rows = json_array())) {
        rc = xl_err_set(&err, XL_ENOMEM, "out of memory");
        goto out;
    }
    if (n > 0 && ((rc = search(c, n, rows, &err)) != XL_OK ||
                  (rc = print_rows(c, rows, &max_id, &err)) != XL_OK))
        goto out;
    if (!a->follow) {
        if (json_array_size(rows) == 0 && !a->json)
            fprintf(c->out, "no log lines\n");
        if (fflush(c->out) != 0 || ferror(c->out))
            rc = xl_err_set(&err, XL_EIO, "cannot write the output");
        goto out;
    }
    fflush(c->out);
    /* Follow from the last line shown, or from the newest stored line:
     * every line stored later comes, none twice. */
    if (max_id == 0 && (rc = newest_id(c, &max_id, &err)) != XL_OK)
        goto out;
    json_decref(rows);
    return follow(c, max_id);
out:
    if (rc != XL_OK)
        fprintf(c->err, "xluo: %s\n", err.msg[0] ? err.msg : xl_rc_str(rc));
    json_decref(rows);
    return xl_cli_exit_code(rc);
}
