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

/* The "output" member of obj cut to XL_CLI_CHECKS_OUTPUT_COLS for its cell. */
static void output_cell(json_t *obj, char *out, size_t outlen)
{
    char tmp[64];

    xl_cli_fmt_clip(xl_cli_json_text(json_object_get(obj, "output"), "", tmp, sizeof(tmp)),
                    XL_CLI_CHECKS_OUTPUT_COLS, out, outlen);
}

#define CHECK_COLS 5

/* HOST NAME STATE SINCE OUTPUT: the header, then a row per check. */
static xl_rc add_states(const struct xl_cli_ctx *c, struct xl_table *t, json_t *checks,
                        struct xl_err *err)
{
    static const char *const head[CHECK_COLS] = {"HOST", "NAME", "STATE", "SINCE", "OUTPUT"};
    json_t *ck;
    size_t i;

    if (xl_table_add_row(t, head, CHECK_COLS) != XL_OK)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    json_array_foreach(checks, i, ck)
    {
        char tmp[2][64], state[48], since[32], output[4 * XL_CLI_CHECKS_OUTPUT_COLS + 4];
        json_t *s = json_object_get(ck, "since");

        if (!json_is_object(ck))
            return xl_err_set(err, XL_EPROTO, "checks[%zu] is not an object", i);
        if (json_is_integer(s))
            xl_cli_fmt_ago(json_integer_value(s), c->now_ms, since, sizeof(since));
        else
            snprintf(since, sizeof(since), "-");
        output_cell(ck, output, sizeof(output));
        snprintf(state, sizeof(state), "%s%s",
                 xl_cli_json_text(json_object_get(ck, "state"), "-", NULL, 0),
                 json_is_true(json_object_get(ck, "stale")) ? " (stale)" : "");
        const char *cells[CHECK_COLS] = {
            xl_cli_json_text(json_object_get(ck, "host"), "-", tmp[0], sizeof(tmp[0])),
            xl_cli_json_text(json_object_get(ck, "name"), "-", tmp[1], sizeof(tmp[1])),
            state,
            since,
            output,
        };
        if (xl_table_add_row(t, cells, CHECK_COLS) != XL_OK)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    return XL_OK;
}

#define CHANGE_COLS 6

/* TIME HOST NAME FROM TO OUTPUT: the header, then a row per change. */
static xl_rc add_changes(struct xl_table *t, json_t *changes, struct xl_err *err)
{
    static const char *const head[CHANGE_COLS] = {"TIME", "HOST", "NAME", "FROM", "TO", "OUTPUT"};

    if (xl_table_add_row(t, head, CHANGE_COLS) != XL_OK)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    /* The server sends the newest first; print them in time order. */
    for (size_t i = json_array_size(changes); i > 0; i--) {
        json_t *ch = json_array_get(changes, i - 1), *ts = json_object_get(ch, "ts");
        char tmp[2][64], when[48], output[4 * XL_CLI_CHECKS_OUTPUT_COLS + 4];

        if (!json_is_object(ch) || !json_is_integer(ts))
            return xl_err_set(err, XL_EPROTO, "changes[%zu] is not a state change", i - 1);
        xl_cli_fmt_time(json_integer_value(ts), false, when, sizeof(when));
        output_cell(ch, output, sizeof(output));
        const char *cells[CHANGE_COLS] = {
            when,
            xl_cli_json_text(json_object_get(ch, "host"), "-", tmp[0], sizeof(tmp[0])),
            xl_cli_json_text(json_object_get(ch, "name"), "-", tmp[1], sizeof(tmp[1])),
            xl_cli_json_text(json_object_get(ch, "from"), "-", NULL, 0),
            xl_cli_json_text(json_object_get(ch, "to"), "-", NULL, 0),
            output,
        };
        if (xl_table_add_row(t, cells, CHANGE_COLS) != XL_OK)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    return XL_OK;
}

xl_rc xl_cli_checks_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    bool hist = is_history(&c->args);
    const char *key = hist ? "changes" : "checks";
    json_t *arr = json_object_get(root, key);
    struct xl_table *t;
    xl_rc rc;

    if (!json_is_array(arr))
        return xl_err_set(err, XL_EPROTO, "no \"%s\" array", key);
    if (json_array_size(arr) == 0) {
        fprintf(c->out, hist ? "no state changes\n" : "no checks\n");
        return XL_OK;
    }
    if (!(t = xl_table_new(hist ? CHANGE_COLS : CHECK_COLS)))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    rc = hist ? add_changes(t, arr, err) : add_states(c, t, arr, err);
    if (rc == XL_OK)
        rc = xl_table_print(t, c->out);
    xl_table_free(t);
    return rc;
}
