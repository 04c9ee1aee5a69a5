/* xluo-agent: Prometheus text exposition (see expo.h). */
#include "expo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct xl_expo_sample {
    char *name;
    struct xl_label *labels; /* names and values in one block with the array */
    size_t nlabels;
    double value;
};

void xl_expo_init(struct xl_expo *e)
{
    memset(e, 0, sizeof(*e));
}

void xl_expo_reset(struct xl_expo *e)
{
    for (size_t i = 0; i < e->n; i++) {
        xl_free(e->v[i].name);
        xl_free(e->v[i].labels);
    }
    e->n = 0;
}

void xl_expo_cleanup(struct xl_expo *e)
{
    xl_expo_reset(e);
    xl_free(e->v);
    memset(e, 0, sizeof(*e));
}

xl_rc xl_expo_add(struct xl_expo *e, const char *name, const struct xl_label *labels,
                  size_t nlabels, double value)
{
    struct xl_expo_sample *s;
    size_t bytes = nlabels * sizeof(struct xl_label);
    char *p;

    for (size_t i = 0; i < nlabels; i++)
        bytes += strlen(labels[i].name) + strlen(labels[i].value) + 2;
    if (xl_grow((void **)&e->v, &e->cap, e->n + 1, sizeof(*e->v)) < 0)
        return XL_ENOMEM;
    s = &e->v[e->n];
    s->labels = nlabels ? xl_malloc(bytes) : NULL;
    if ((nlabels && !s->labels) || !(s->name = xl_strdup(name))) {
        xl_free(s->labels);
        return XL_ENOMEM;
    }
    p = (char *)(s->labels + nlabels);
    for (size_t i = 0; i < nlabels; i++) {
        size_t nl = strlen(labels[i].name) + 1, vl = strlen(labels[i].value) + 1;

        s->labels[i].name = memcpy(p, labels[i].name, nl);
        p += nl;
        s->labels[i].value = memcpy(p, labels[i].value, vl);
        p += vl;
    }
    s->nlabels = nlabels;
    s->value = value;
    e->n++;
    return XL_OK;
}

/* Label values escape \, " and newline. */
static xl_rc add_label_value(struct xl_buf *b, const char *v)
{
    xl_rc rc = XL_OK;

    for (const char *run = v;; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;

        if (!esc && *v)
            continue;
        if ((rc = xl_buf_add(b, run, (size_t)(v - run))) != XL_OK || !*v)
            return rc;
        if ((rc = xl_buf_adds(b, esc)) != XL_OK)
            return rc;
        run = v + 1;
    }
}

static xl_rc add_sample(struct xl_buf *b, const struct xl_expo_sample *s)
{
    xl_rc rc;

    if ((rc = xl_buf_adds(b, s->name)) != XL_OK)
        return rc;
    for (size_t i = 0; i < s->nlabels; i++)
        if ((rc = xl_buf_printf(b, "%c%s=\"", i ? ',' : '{', s->labels[i].name)) ||
            (rc = add_label_value(b, s->labels[i].value)) || (rc = xl_buf_add(b, "\"", 1)))
            return rc;
    if (s->nlabels && (rc = xl_buf_add(b, "}", 1)) != XL_OK)
        return rc;
    if (isnan(s->value))
        return xl_buf_adds(b, " NaN\n");
    if (isinf(s->value))
        return xl_buf_adds(b, s->value > 0 ? " +Inf\n" : " -Inf\n");
    return xl_buf_printf(b, " %.17g\n", s->value);
}

struct ref {
    const struct xl_expo_sample *s;
    size_t order;
};

static int by_name(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = strcmp(x->s->name, y->s->name);

    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

xl_rc xl_expo_render(const struct xl_expo *const *sets, size_t nsets, struct xl_buf *out)
{
    size_t total = 0, k = 0;
    struct ref *refs;
    xl_rc rc = XL_OK;

    for (size_t i = 0; i < nsets; i++)
        total += sets[i]->n;
    if (!total)
        return XL_OK;
    if (!(refs = xl_calloc(total, sizeof(*refs))))
        return XL_ENOMEM;
    for (size_t i = 0; i < nsets; i++)
        for (size_t j = 0; j < sets[i]->n; j++, k++)
            refs[k] = (struct ref){&sets[i]->v[j], k};
    /* Stable by the order tie-break: series keep the order they came in. */
    qsort(refs, total, sizeof(*refs), by_name);
    for (size_t i = 0; i < total && rc == XL_OK; i++) {
        const char *name = refs[i].s->name;

        if ((i == 0 || strcmp(name, refs[i - 1].s->name) != 0) &&
            (rc = xl_buf_printf(out, "# TYPE %s %s\n", name,
                                ends_with(name, "_total") ? "counter" : "gauge")) != XL_OK)
            break;
        rc = add_sample(out, refs[i].s);
    }
    xl_free(refs);
    return rc;
}
