/* xluo: `xluo agents` — the agents the server knows. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "fmt.h"
#include "http.h"
#include "table.h"

const char *xl_cli_json_text(json_t *v, const char *dflt, char *tmp, size_t tmplen)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(tmp, tmplen, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_real(v)) {
        xl_cli_fmt_value(json_real_value(v), tmp, tmplen);
        return tmp;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (v && !json_is_null(v))
        return "?";
    return dflt;
}

xl_rc xl_cli_agents_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    xl_rc rc = xl_cli_url_start(url, c->args.server, "/api/v1/agents");

    if (rc != XL_OK)
        return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

xl_rc xl_cli_kv_text(json_t *obj, const char *sep, struct xl_buf *b)
{
    const char *k;
    json_t *v;
    char tmp[64];
    xl_rc rc = XL_OK;

    xl_buf_reset(b);
    json_object_foreach(obj, k, v)
    {
        if ((rc = xl_buf_printf(b, "%s%s=", b->len ? sep : "", k)) != XL_OK)
            return rc;
        if (json_is_object(v) || json_is_array(v)) {
            char *j = json_dumps(v, JSON_COMPACT);

            rc = j ? xl_buf_adds(b, j) : XL_ENOMEM;
            free(j);
        } else {
            rc = xl_buf_adds(b, xl_cli_json_text(v, "null", tmp, sizeof(tmp)));
        }
        if (rc != XL_OK)
            return rc;
    }
    return b->len ? XL_OK : xl_buf_adds(b, "-");
}

/* stats.<key> of an agent as a non-negative integer, or false when the
 * agent reported none (an old agent, or no heartbeat since the server
 * started). */
static bool stat_int(json_t *ag, const char *key, int64_t *out)
{
    json_t *v = json_object_get(json_object_get(ag, "stats"), key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* The health columns: OUTBOX (bytes waiting in the agent), BACKLOG (age of
 * the oldest of them; "-" when nothing waits), DROPPED (records lost). */
static void health_cells(json_t *ag, char outbox[32], char backlog[32], char dropped[32])
{
    int64_t v;

    snprintf(outbox, 32, "-");
    snprintf(backlog, 32, "-");
    snprintf(dropped, 32, "-");
    if (stat_int(ag, "outbox_bytes", &v))
        xl_cli_fmt_bytes(v, outbox, 32);
    if (stat_int(ag, "outbox_oldest_age_ms", &v) && v > 0)
        xl_cli_fmt_duration(v, backlog, 32);
    if (stat_int(ag, "records_dropped", &v))
        snprintf(dropped, 32, "%lld", (long long)v);
}

#define NCOLS 10

xl_rc xl_cli_agents_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    static const char *const head[NCOLS] = {"HOST",      "ID",     "IP",      "VERSION", "STATUS",
                                            "LAST SEEN", "OUTBOX", "BACKLOG", "DROPPED", "LABELS"};
    json_t *agents = json_object_get(root, "agents"), *ag;
    struct xl_table *t = NULL;
    struct xl_buf labels;
    size_t i;
    xl_rc rc = XL_OK;

    xl_buf_init(&labels, 1u << 20);
    if (!json_is_array(agents)) {
        rc = xl_err_set(err, XL_EPROTO, "no \"agents\" array");
        goto out;
    }
    if (json_array_size(agents) == 0) {
        fprintf(c->out, "no agents\n");
        goto out;
    }
    if (!(t = xl_table_new(NCOLS)))
        goto out_nomem;
    for (i = 6; i <= 8; i++)
        xl_table_align_right(t, i);
    if (xl_table_add_row(t, head, NCOLS) != XL_OK)
        goto out_nomem;
    json_array_foreach(agents, i, ag)
    {
        char ago[32], id[9], tmp[5][64], outbox[32], backlog[32], dropped[32];
        json_t *seen = json_object_get(ag, "last_seen");

        if (!json_is_object(ag)) {
            rc = xl_err_set(err, XL_EPROTO, "agents[%zu] is not an object", i);
            goto out;
        }
        snprintf(id, sizeof(id), "%s",
                 xl_cli_json_text(json_object_get(ag, "id"), "-", tmp[0], sizeof(tmp[0])));
        if (json_is_number(seen))
            xl_cli_fmt_ago((int64_t)json_number_value(seen), c->now_ms, ago, sizeof(ago));
        else
            snprintf(ago, sizeof(ago), "never");
        if (xl_cli_kv_text(json_object_get(ag, "labels"), ",", &labels) != XL_OK)
            goto out_nomem;
        health_cells(ag, outbox, backlog, dropped);
        const char *cells[NCOLS] = {
            xl_cli_json_text(json_object_get(ag, "host"), "-", tmp[1], sizeof(tmp[1])),
            id,
            xl_cli_json_text(json_object_get(ag, "ip"), "-", tmp[2], sizeof(tmp[2])),
            xl_cli_json_text(json_object_get(ag, "version"), "-", tmp[3], sizeof(tmp[3])),
            xl_cli_json_text(json_object_get(ag, "status"), "-", tmp[4], sizeof(tmp[4])),
            ago,
            outbox,
            backlog,
            dropped,
            labels.data,
        };
        if (xl_table_add_row(t, cells, NCOLS) != XL_OK)
            goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    xl_table_free(t);
    xl_buf_cleanup(&labels);
    return rc;
}
