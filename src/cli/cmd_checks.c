/* xluo: `xluo checks` — the current state of every check, most severe
 * first; `xluo checks history` — their state changes. */
#include "cli.h"

#include <string.h>

#include "fmt.h"
#include "http.h"
#include "table.h"

static bool is_history(const struct xl_cli_args *a)
{
    return a->name && strcmp(a->name, "history") == 0;
}

xl_rc xl_cli_checks_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    bool hist = is_history(a);
    xl_rc rc;

    if (a->name && !hist)
        return xl_err_set(err, XL_EINVAL, "unknown view '%s' of checks (history is the one)",
                          a->name);
    if (!hist && (a->since || a->limit))
        return xl_err_set(err, XL_EINVAL, "%s applies to 'checks history'",
                          a->since ? "--since" : "--limit");
    if (hist && a->state)
        return xl_err_set(err, XL_EINVAL,
                          "--state applies to the current states, not to "
                          "'checks history'");
    if ((rc = xl_cli_url_start(url, a->server,
                               hist ? "/api/v1/checks/history" : "/api/v1/checks")) != XL_OK ||
        (rc = xl_cli_url_param(url, "host", a->host)) != XL_OK ||
        (rc = xl_cli_url_param(url, "name", a->check)) != XL_OK ||
        (rc = xl_cli_url_param(url, "state", a->state)) != XL_OK ||
        (rc = xl_cli_url_param(url, "since", a->since)) != XL_OK ||
        (rc = xl_cli_url_param(url, "limit", a->limit)) != XL_OK)
        return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

/* Add cells to t; XL_ENOMEM. */
static xl_rc add_cells(struct xl_table *t, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (xl_table_add(t, cells[i]) != XL_OK)
            return XL_ENOMEM;
    return XL_OK;
}

#define CHECK_COLS 5

static xl_rc render_states(const struct xl_cli_ctx *c, json_t *checks, struct xl_err *err)
{
    static const char *const head[CHECK_COLS] = {"HOST", "NAME", "STATE", "SINCE", "OUTPUT"};
    struct xl_table *t;
    json_t *ck;
    size_t i;
    xl_rc rc;

    if (json_array_size(checks) == 0) {
        fprintf(c->out, "no checks\n");
        return XL_OK;
    }
    if (!(t = xl_table_new(CHECK_COLS)) || add_cells(t, head, CHECK_COLS) != XL_OK)
        goto out_nomem;
    json_array_foreach(checks, i, ck)
    {
        char tmp[3][64], since[32], output[4 * XL_CLI_CHECKS_OUTPUT_COLS + 4];
        json_t *s = json_object_get(ck, "since");

        if (!json_is_object(ck)) {
            xl_table_free(t);
            return xl_err_set(err, XL_EPROTO, "checks[%zu] is not an object", i);
        }
        if (json_is_integer(s))
            xl_cli_fmt_ago(json_integer_value(s), c->now_ms, since, sizeof(since));
        else
            snprintf(since, sizeof(since), "-");
        xl_cli_fmt_clip(xl_cli_json_text(json_object_get(ck, "output"), "", tmp[2], sizeof(tmp[2])),
                        XL_CLI_CHECKS_OUTPUT_COLS, output, sizeof(output));
        const char *cells[CHECK_COLS] = {
            xl_cli_json_text(json_object_get(ck, "host"), "-", tmp[0], sizeof(tmp[0])),
            xl_cli_json_text(json_object_get(ck, "name"), "-", tmp[1], sizeof(tmp[1])),
            xl_cli_json_text(json_object_get(ck, "state"), "-", NULL, 0),
            since,
            output,
        };
        if (add_cells(t, cells, CHECK_COLS) != XL_OK)
            goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    xl_table_free(t);
    return rc;
out_nomem:
    xl_table_free(t);
    return xl_err_set(err, XL_ENOMEM, "out of memory");
}

#define CHANGE_COLS 6

static xl_rc render_changes(const struct xl_cli_ctx *c, json_t *changes, struct xl_err *err)
{
    static const char *const head[CHANGE_COLS] = {"TIME", "HOST", "NAME", "FROM", "TO", "OUTPUT"};
    struct xl_table *t;
    xl_rc rc;

    if (json_array_size(changes) == 0) {
        fprintf(c->out, "no state changes\n");
        return XL_OK;
    }
    if (!(t = xl_table_new(CHANGE_COLS)) || add_cells(t, head, CHANGE_COLS) != XL_OK)
        goto out_nomem;
    /* The server sends the newest first; print them in time order. */
    for (size_t i = json_array_size(changes); i > 0; i--) {
        json_t *ch = json_array_get(changes, i - 1), *ts = json_object_get(ch, "ts");
        char tmp[3][64], when[48], output[4 * XL_CLI_CHECKS_OUTPUT_COLS + 4];

        if (!json_is_object(ch) || !json_is_integer(ts)) {
            xl_table_free(t);
            return xl_err_set(err, XL_EPROTO, "changes[%zu] is not a state change", i - 1);
        }
        xl_cli_fmt_time(json_integer_value(ts), false, when, sizeof(when));
        xl_cli_fmt_clip(xl_cli_json_text(json_object_get(ch, "output"), "", tmp[2], sizeof(tmp[2])),
                        XL_CLI_CHECKS_OUTPUT_COLS, output, sizeof(output));
        const char *cells[CHANGE_COLS] = {
            when,
            xl_cli_json_text(json_object_get(ch, "host"), "-", tmp[0], sizeof(tmp[0])),
            xl_cli_json_text(json_object_get(ch, "name"), "-", tmp[1], sizeof(tmp[1])),
            xl_cli_json_text(json_object_get(ch, "from"), "-", NULL, 0),
            xl_cli_json_text(json_object_get(ch, "to"), "-", NULL, 0),
            output,
        };
        if (add_cells(t, cells, CHANGE_COLS) != XL_OK)
            goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    xl_table_free(t);
    return rc;
out_nomem:
    xl_table_free(t);
    return xl_err_set(err, XL_ENOMEM, "out of memory");
}

xl_rc xl_cli_checks_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    const char *key = is_history(&c->args) ? "changes" : "checks";
    json_t *arr = json_object_get(root, key);

    if (!json_is_array(arr))
        return xl_err_set(err, XL_EPROTO, "no \"%s\" array", key);
    return is_history(&c->args) ? render_changes(c, arr, err) : render_states(c, arr, err);
}
