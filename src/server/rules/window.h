/* xluo-server rules: the sliding time windows rules evaluate over.
 *
 * struct xl_window keeps the samples (ts, value) of one series or group of
 * the last window_ms in a ring that grows on demand up to max_samples
 * (bounded memory per key); when full, the oldest sample is dropped and the
 * aggregate covers the newest max_samples. Aggregations are computed on
 * demand over the samples with ts in (now - window_ms, now]:
 *   avg min max last sum count, and rate: the per-second increase of a
 *   counter, where a value lower than the one before is a reset (the
 *   counter restarted from 0, so the increase is the new value), divided
 *   by the time between the first and last sample (no extrapolation).
 *
 * struct xl_counter_window counts events (log lines, custom events) in
 * fixed buckets: memory is a constant number of buckets however many
 * events arrive; the count covers the buckets overlapping the window, so
 * its edge is precise to one bucket (window_ms / XL_CWIN_BUCKETS, at
 * least 1s).
 *
 * Pure data structures: no locks, no clock (callers pass now_ms). */
#ifndef XL_RULES_WINDOW_H
#define XL_RULES_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define XL_WINDOW_DEFAULT_MAX 1024 /* samples per key unless told */
#define XL_CWIN_BUCKETS 60

enum xl_wagg { XL_WAGG_AVG, XL_WAGG_MIN, XL_WAGG_MAX, XL_WAGG_LAST, XL_WAGG_RATE,
               XL_WAGG_COUNT, XL_WAGG_SUM };

struct xl_wsample {
    int64_t ts;
    double v;
};

struct xl_window {
    int64_t window_ms;
    size_t max; /* ring capacity limit */
    struct xl_wsample *ring;
    size_t cap, head, n; /* head: index of the oldest */
    uint64_t dropped;    /* oldest samples pushed out by a full ring */
    uint64_t late;       /* samples older than the newest, ignored */
};

/* An empty window (no allocation). max_samples 0 means the default. */
void xl_window_init(struct xl_window *w, int64_t window_ms, size_t max_samples);
void xl_window_cleanup(struct xl_window *w);

/* Add a sample and drop those that fell out of the window before ts.
 * Samples must come in time order: one older than the newest is ignored
 * (counted in late) and XL_ERANGE returned. NaN values are kept (they
 * make avg/sum NaN, as in Prometheus). XL_ENOMEM when the ring cannot
 * grow (the sample is then lost, the window still valid). */
xl_rc xl_window_add(struct xl_window *w, int64_t ts, double v);

/* Drop the samples with ts <= now - window_ms. */
void xl_window_evict(struct xl_window *w, int64_t now_ms);

/* Aggregate the samples in (now - window_ms, now] (evicting the older
 * ones). False when there is no value: no sample (count gives 0 and
 * true), or fewer than two samples (or no time between them) for rate. */
bool xl_window_eval(struct xl_window *w, int64_t now_ms, enum xl_wagg agg, double *out);

/* Samples held now. */
size_t xl_window_len(const struct xl_window *w);

/* Newest sample's time, 0 when empty. */
int64_t xl_window_last_ts(const struct xl_window *w);

const char *xl_wagg_str(enum xl_wagg a);
/* "avg" etc. to the enum; false for an unknown name. */
bool xl_wagg_parse(const char *s, enum xl_wagg *out);

struct xl_cwin_bucket {
    int64_t idx; /* ts / bucket_ms of the counts in it; -1: empty */
    uint64_t count;
};

struct xl_counter_window {
    int64_t window_ms, bucket_ms;
    /* One more slot than the window spans: a window that does not start on
     * a bucket boundary overlaps ceil(window_ms / bucket_ms) + 1 buckets. */
    struct xl_cwin_bucket b[XL_CWIN_BUCKETS + 1];
    size_t nb; /* slots in use: ceil(window_ms / bucket_ms) + 1 */
};

/* A window of window_ms (> 0). No allocation. */
void xl_cwin_init(struct xl_counter_window *c, int64_t window_ms);
/* Count n events at ts. Events older than the window (relative to the
 * newest bucket seen) are ignored. */
void xl_cwin_add(struct xl_counter_window *c, int64_t ts, uint64_t n);
/* Events in the buckets that overlap (now - window_ms, now]. */
uint64_t xl_cwin_count(const struct xl_counter_window *c, int64_t now_ms);

#endif
