/* xluo: `xluo query` — the points of a metric over a time range. */
#include "cli.h"
#include "common/metric.h"

#include <math.h>
#include <string.h>

#include "common/units.h"
#include "fmt.h"
#include "http.h"
#include "table.h"

/* Append key=time, passing a duration back from now as written (the
 * server resolves it against its clock) and anything else as epoch ms. */
static xl_rc time_param(struct xl_buf *url, const char *key, const char *s, int64_t ms,
                        bool relative)
{
    char num[32];

    if (relative)
        return xl_cli_url_param(url, key, s);
    snprintf(num, sizeof(num), "%lld", (long long)ms);
    return xl_cli_url_param(url, key, num);
}

xl_rc xl_cli_query_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    int64_t from = c->now_ms - 3600000, to = c->now_ms, ms;
    bool from_rel = false, to_rel = false;
    const char *agg = a->agg, *step = a->step;
    char step_buf[32];
    xl_rc rc;

    if (a->since) {
        if (xl_duration_parse(a->since, &ms) != XL_OK)
            return xl_err_set(err, XL_EINVAL, "--since: invalid duration '%s'", a->since);
        from = c->now_ms - ms;
        from_rel = true;
    } else if (a->from &&
               (rc = xl_cli_time_parse(a->from, c->now_ms, &from, &from_rel, err)) != XL_OK) {
        xl_err_prefix(err, "--from: ");
        return rc;
    }
    if (a->to && (rc = xl_cli_time_parse(a->to, c->now_ms, &to, &to_rel, err)) != XL_OK) {
        xl_err_prefix(err, "--to: ");
        return rc;
    }
    if (from >= to)
        return xl_err_set(err, XL_EINVAL, "the range is empty: the start is not before the end");
    if (!step && !(agg && strcmp(agg, "raw") == 0)) {
        /* Many points over a long range: ask for round buckets. */
        int64_t s = agg ? xl_cli_round_step(to - from) : xl_cli_default_step(to - from);

        if (s > 0) {
            xl_duration_fmt(s, step_buf, sizeof(step_buf));
            step = step_buf;
            if (!agg)
                agg = "avg";
        }
    }
    if ((rc = xl_cli_url_start(url, a->server, "/api/v1/query")) != XL_OK ||
        (rc = xl_cli_url_param(url, "name", a->name)) != XL_OK ||
        (rc = xl_cli_url_filters(url, a)) != XL_OK ||
        (a->since && (rc = xl_cli_url_param(url, "from", a->since)) != XL_OK) ||
        (a->from && (rc = time_param(url, "from", a->from, from, from_rel)) != XL_OK) ||
        (a->to && (rc = time_param(url, "to", a->to, to, to_rel)) != XL_OK) ||
        (rc = xl_cli_url_param(url, "step", step)) != XL_OK ||
        (rc = xl_cli_url_param(url, "agg", agg)) != XL_OK)
        return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

/* The series' heading: name{k="v",k="v"} and, for buckets, "(avg, step 1m)". */
static void series_heading(json_t *root, json_t *labels, const char *dflt_name, FILE *out)
{
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *agg = json_string_value(json_object_get(root, "agg"));
    json_t *step = json_object_get(root, "step"), *v;
    const char *k, *sep = "{";
    char tmp[64];

    fputs(name ? name : dflt_name ? dflt_name : "", out);
    json_object_foreach(labels, k, v)
    {
        const char *text = xl_cli_json_text(v, "", tmp, sizeof(tmp));

        fprintf(out, "%s%s=\"", sep, k);
        for (const char *p = text; *p; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', out);
            fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
        }
        fputc('"', out);
        sep = ",";
    }
    if (*sep == ',')
        fputc('}', out);
    if (json_is_integer(step) && json_integer_value(step) > 0) {
        char d[32];

        xl_duration_fmt(json_integer_value(step), d, sizeof(d));
        fprintf(out, "  (%s, step %s)", agg ? agg : "avg", d);
    }
    fputc('\n', out);
}

/* Check that every point is [time, value] and whether any time has
 * milliseconds (then every time shows them). */
static xl_rc check_points(json_t *points, size_t si, bool *with_ms, struct xl_err *err)
{
    json_t *p;
    size_t i;

    *with_ms = false;
    if (!json_is_array(points))
        return xl_err_set(err, XL_EPROTO, "series[%zu] has no \"points\" array", si);
    json_array_foreach(points, i, p)
    {
        json_t *ts = json_array_get(p, 0), *v = json_array_get(p, 1);

        double d;

        if (!json_is_number(ts) || !(xl_json_number(v, &d) || json_is_null(v)))
            return xl_err_set(err, XL_EPROTO, "series[%zu].points[%zu] is not [time, value]", si,
                              i);
        if ((int64_t)json_number_value(ts) % 1000 != 0)
            *with_ms = true;
    }
    return XL_OK;
}

/* One series: heading, then the TIME/VALUE table. */
static xl_rc render_series(const struct xl_cli_ctx *c, json_t *root, json_t *s, size_t si,
                           struct xl_err *err)
{
    json_t *points = json_object_get(s, "points"), *p;
    struct xl_table *t = NULL;
    bool with_ms;
    size_t i;
    xl_rc rc;

    if ((rc = check_points(points, si, &with_ms, err)) != XL_OK)
        return rc;
    series_heading(root, json_object_get(s, "labels"), c->args.name, c->out);
    if (json_array_size(points) == 0) {
        fprintf(c->out, "no points\n");
        return XL_OK;
    }
    if (!(t = xl_table_new(2)))
        goto out_nomem;
    xl_table_align_right(t, 1);
    if (xl_table_add(t, "TIME") != XL_OK || xl_table_add(t, "VALUE") != XL_OK)
        goto out_nomem;
    json_array_foreach(points, i, p)
    {
        json_t *v = json_array_get(p, 1);
        char when[48], val[48];

        xl_cli_fmt_time((int64_t)json_number_value(json_array_get(p, 0)), with_ms, when,
                        sizeof(when));
        double d = NAN;

        xl_json_number(v, &d); /* null stays NaN */
        xl_cli_fmt_value(d, val, sizeof(val));
        if (xl_table_add(t, when) != XL_OK || xl_table_add(t, val) != XL_OK)
            goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    xl_table_free(t);
    return rc;
}

xl_rc xl_cli_query_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    json_t *series = json_object_get(root, "series"), *s;
    size_t i;
    xl_rc rc;

    if (!json_is_array(series))
        return xl_err_set(err, XL_EPROTO, "no \"series\" array");
    if (json_array_size(series) == 0) {
        fprintf(c->out, "no data\n");
        return XL_OK;
    }
    json_array_foreach(series, i, s)
    {
        if (!json_is_object(s))
            return xl_err_set(err, XL_EPROTO, "series[%zu] is not an object", i);
        if (i > 0)
            fputc('\n', c->out);
        if ((rc = render_series(c, root, s, i, err)) != XL_OK)
            return rc;
    }
    return XL_OK;
}
