/* xluo: `xluo metrics` (metric names) and `xluo series` (label sets). */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "http.h"
#include "table.h"

xl_rc xl_cli_url_filters(struct xl_buf *url, const struct xl_cli_args *a)
{
    xl_rc rc;

    if ((rc = xl_cli_url_param(url, "host", a->host)) != XL_OK)
        return rc;
    for (size_t i = 0; i < a->match.n; i++)
        if ((rc = xl_cli_url_param(url, "match", a->match.v[i])) != XL_OK)
            return rc;
    return XL_OK;
}

xl_rc xl_cli_metrics_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    xl_rc rc;

    if ((rc = xl_cli_url_start(url, c->args.server, "/api/v1/metrics")) != XL_OK ||
        (rc = xl_cli_url_filters(url, &c->args)) != XL_OK)
        return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

xl_rc xl_cli_metrics_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    json_t *metrics = json_object_get(root, "metrics"), *m;
    struct xl_table *t = NULL;
    size_t i;
    xl_rc rc = XL_OK;

    if (!json_is_array(metrics))
        return xl_err_set(err, XL_EPROTO, "no \"metrics\" array");
    if (json_array_size(metrics) == 0) {
        fprintf(c->out, "no metrics\n");
        return XL_OK;
    }
    if (!(t = xl_table_new(2)))
        goto out_nomem;
    xl_table_align_right(t, 1);
    if (xl_table_add(t, "NAME") != XL_OK || xl_table_add(t, "SERIES") != XL_OK)
        goto out_nomem;
    json_array_foreach(metrics, i, m)
    {
        char tmp[2][64];

        if (!json_is_object(m)) {
            rc = xl_err_set(err, XL_EPROTO, "metrics[%zu] is not an object", i);
            goto out;
        }
        if (xl_table_add(t, xl_cli_json_text(json_object_get(m, "name"), "-", tmp[0], 64)) !=
                XL_OK ||
            xl_table_add(t, xl_cli_json_text(json_object_get(m, "series"), "-", tmp[1], 64)) !=
                XL_OK)
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

xl_rc xl_cli_series_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err)
{
    xl_rc rc;

    if ((rc = xl_cli_url_start(url, c->args.server, "/api/v1/series")) != XL_OK ||
        (rc = xl_cli_url_param(url, "name", c->args.name)) != XL_OK ||
        (rc = xl_cli_url_filters(url, &c->args)) != XL_OK)
        return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

/* Label columns: "host" first, then by name. */
static int label_cmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    bool ha = strcmp(a, "host") == 0, hb = strcmp(b, "host") == 0;

    if (ha != hb)
        return ha ? -1 : 1;
    return strcmp(a, b);
}

/* Collect the distinct label names of every series (borrowed from the
 * document) into *names, sorted by label_cmp. */
static xl_rc label_names(json_t *series, const char ***names, size_t *n)
{
    size_t cap = 0, i;
    json_t *s, *labels, *v;
    const char *k;

    *names = NULL;
    *n = 0;
    json_array_foreach(series, i, s)
    {
        labels = json_object_get(s, "labels");
        json_object_foreach(labels, k, v)
        {
            size_t j;

            for (j = 0; j < *n && strcmp((*names)[j], k) != 0; j++)
                ;
            if (j < *n)
                continue;
            if (xl_grow((void **)names, &cap, *n + 1, sizeof(**names)) != 0)
                return XL_ENOMEM;
            (*names)[(*n)++] = k;
        }
    }
    if (*n > 1)
        qsort(*names, *n, sizeof(**names), label_cmp);
    return XL_OK;
}

/* Upper-case copy of s as a header cell. */
static xl_rc add_header(struct xl_table *t, const char *s)
{
    char *up = xl_strdup(s);
    xl_rc rc;

    if (!up)
        return XL_ENOMEM;
    for (char *p = up; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    rc = xl_table_add(t, up);
    xl_free(up);
    return rc;
}

xl_rc xl_cli_series_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err)
{
    json_t *series = json_object_get(root, "series"), *s;
    const char **names = NULL;
    struct xl_table *t = NULL;
    size_t n = 0, i;
    bool with_name;
    xl_rc rc = XL_OK;

    if (!json_is_array(series))
        return xl_err_set(err, XL_EPROTO, "no \"series\" array");
    if (json_array_size(series) == 0) {
        fprintf(c->out, "no series\n");
        return XL_OK;
    }
    json_array_foreach(series, i, s)
    {
        if (!json_is_object(s))
            return xl_err_set(err, XL_EPROTO, "series[%zu] is not an object", i);
    }
    if (label_names(series, &names, &n) != XL_OK)
        goto out_nomem;
    with_name = !c->args.name || n == 0;
    if (!(t = xl_table_new(n + with_name)))
        goto out_nomem;
    if (with_name && xl_table_add(t, "NAME") != XL_OK)
        goto out_nomem;
    for (size_t j = 0; j < n; j++)
        if (add_header(t, names[j]) != XL_OK)
            goto out_nomem;
    json_array_foreach(series, i, s)
    {
        json_t *labels = json_object_get(s, "labels");
        char tmp[64];

        if (with_name &&
            xl_table_add(t, xl_cli_json_text(json_object_get(s, "name"), "-", tmp, 64)) != XL_OK)
            goto out_nomem;
        for (size_t j = 0; j < n; j++)
            if (xl_table_add(t, xl_cli_json_text(json_object_get(labels, names[j]), "-", tmp,
                                                 sizeof(tmp))) != XL_OK)
                goto out_nomem;
    }
    rc = xl_table_print(t, c->out);
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    xl_table_free(t);
    xl_free(names);
    return rc;
}
