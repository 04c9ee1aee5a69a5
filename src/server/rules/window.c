/* xluo-server rules: sliding windows (see window.h). */
#include "window.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"

static const char *const wagg_names[] = {"avg", "min", "max", "last", "rate", "count", "sum"};

void xl_window_init(struct xl_window *w, int64_t window_ms, size_t max_samples)
{
    memset(w, 0, sizeof(*w));
    w->window_ms = window_ms;
    w->max = max_samples ? max_samples : XL_WINDOW_DEFAULT_MAX;
}

void xl_window_cleanup(struct xl_window *w)
{
    xl_free(w->ring);
    w->ring = NULL;
    w->cap = w->n = w->head = 0;
}

static struct xl_wsample *at(const struct xl_window *w, size_t i)
{
    return &w->ring[(w->head + i) % w->cap];
}

void xl_window_evict(struct xl_window *w, int64_t now_ms)
{
    int64_t cut = now_ms - w->window_ms;

    while (w->n && at(w, 0)->ts <= cut) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
}

/* Double the ring (up to max), oldest first at index 0 afterwards. */
static xl_rc grow(struct xl_window *w)
{
    size_t ncap = w->cap ? w->cap * 2 : 8;
    struct xl_wsample *r;

    if (ncap > w->max)
        ncap = w->max;
    if (!(r = xl_malloc(ncap * sizeof(*r))))
        return XL_ENOMEM;
    for (size_t i = 0; i < w->n; i++)
        r[i] = *at(w, i);
    xl_free(w->ring);
    w->ring = r;
    w->cap = ncap;
    w->head = 0;
    return XL_OK;
}

xl_rc xl_window_add(struct xl_window *w, int64_t ts, double v)
{
    xl_rc rc;

    if (w->n && ts < at(w, w->n - 1)->ts) {
        w->late++;
        return XL_ERANGE;
    }
    xl_window_evict(w, ts);
    if (w->n == w->cap) {
        if (w->cap < w->max) {
            if ((rc = grow(w)) != XL_OK)
                return rc;
        } else {
            w->head = (w->head + 1) % w->cap;
            w->n--;
            w->dropped++;
        }
    }
    *at(w, w->n) = (struct xl_wsample){.ts = ts, .v = v};
    w->n++;
    return XL_OK;
}

bool xl_window_eval(struct xl_window *w, int64_t now_ms, enum xl_wagg agg, double *out)
{
    double acc = 0, prev = 0;

    xl_window_evict(w, now_ms);
    if (agg == XL_WAGG_COUNT) {
        *out = (double)w->n;
        return true;
    }
    if (w->n == 0)
        return false;
    switch (agg) {
    case XL_WAGG_LAST:
        *out = at(w, w->n - 1)->v;
        return true;
    case XL_WAGG_MIN:
    case XL_WAGG_MAX:
        acc = at(w, 0)->v;
        for (size_t i = 1; i < w->n; i++) {
            double v = at(w, i)->v;
            if (isnan(acc) || (agg == XL_WAGG_MIN ? v < acc : v > acc))
                acc = v;
        }
        *out = acc;
        return true;
    case XL_WAGG_SUM:
    case XL_WAGG_AVG:
        for (size_t i = 0; i < w->n; i++)
            acc += at(w, i)->v;
        *out = agg == XL_WAGG_AVG ? acc / (double)w->n : acc;
        return true;
    case XL_WAGG_RATE: {
        int64_t span = at(w, w->n - 1)->ts - at(w, 0)->ts;
        if (w->n < 2 || span <= 0)
            return false;
        prev = at(w, 0)->v;
        for (size_t i = 1; i < w->n; i++) {
            double v = at(w, i)->v;
            acc += v >= prev ? v - prev : v; /* lower: the counter was reset */
            prev = v;
        }
        *out = acc / ((double)span / 1000.0);
        return true;
    }
    default:
        return false;
    }
}

size_t xl_window_len(const struct xl_window *w)
{
    return w->n;
}

int64_t xl_window_last_ts(const struct xl_window *w)
{
    return w->n ? at(w, w->n - 1)->ts : 0;
}

const char *xl_wagg_str(enum xl_wagg a)
{
    return (unsigned)a < sizeof(wagg_names) / sizeof(*wagg_names) ? wagg_names[a] : "?";
}

bool xl_wagg_parse(const char *s, enum xl_wagg *out)
{
    for (size_t i = 0; i < sizeof(wagg_names) / sizeof(*wagg_names); i++) {
        if (strcmp(s, wagg_names[i]) == 0) {
            *out = (enum xl_wagg)i;
            return true;
        }
    }
    return false;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void xl_cwin_init(struct xl_counter_window *c, int64_t window_ms)
{
    memset(c, 0, sizeof(*c));
    if (window_ms < 1)
        window_ms = 1;
    c->window_ms = window_ms;
    c->bucket_ms = (window_ms + XL_CWIN_BUCKETS - 1) / XL_CWIN_BUCKETS;
    if (c->bucket_ms < 1000)
        c->bucket_ms = 1000;
    c->nb = (size_t)((window_ms + c->bucket_ms - 1) / c->bucket_ms) + 1;
    for (size_t i = 0; i < c->nb; i++)
        c->b[i].idx = -1;
}

void xl_cwin_add(struct xl_counter_window *c, int64_t ts, uint64_t n)
{
    int64_t idx = floor_div(ts, c->bucket_ms);
    struct xl_cwin_bucket *b;

    if (idx < 0)
        return;
    b = &c->b[idx % (int64_t)c->nb];
    if (b->idx > idx)
        return; /* the slot holds a newer bucket: this one left the window */
    if (b->idx < idx) {
        b->idx = idx;
        b->count = 0;
    }
    b->count += n;
}

uint64_t xl_cwin_count(const struct xl_counter_window *c, int64_t now_ms)
{
    int64_t lo = floor_div(now_ms - c->window_ms + 1, c->bucket_ms);
    int64_t hi = floor_div(now_ms, c->bucket_ms);
    uint64_t sum = 0;

    for (size_t i = 0; i < c->nb; i++) {
        if (c->b[i].idx >= lo && c->b[i].idx <= hi)
            sum += c->b[i].count;
    }
    return sum;
}
