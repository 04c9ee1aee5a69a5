/* xluo: the metric store (embedded default).
 *
 * Layout, after Prometheus' head block:
 *   - head: every series' recent samples in memory, guarded by
 *   - a write-ahead log (data/wal/NNNNNNNN.wal, length + CRC framed
 *     records); an append returns only once its WAL record is durable
 *     (sync "always": fdatasync with group commit across threads);
 *   - blocks: at each checkpoint (flush_interval or wal_max_bytes) the head's
 *     samples are cut into compressed chunks (delta-of-delta timestamps, XOR
 *     values, zstd) stored in SQLite (data/metrics.db, WAL mode) with the
 *     series index; then old WAL segments are deleted.
 * On open, the WAL is replayed into the head; a torn last record is cut off
 * and reported. Queries merge chunks and head. Retention deletes chunks
 * older than retention.
 *
 * A series is a metric name plus a set of labels; order of labels on input
 * does not matter. All functions are thread-safe. */
#ifndef XL_TSDB_H
#define XL_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metric.h"
#include "common/rc.h"

enum xl_tsdb_sync {
    XL_TSDB_SYNC_ALWAYS, /* fdatasync before append returns (group commit) */
    XL_TSDB_SYNC_NONE,   /* write(2) only: survives a process crash, not power loss */
};

struct xl_tsdb_opts {
    const char *dir;           /* created if missing */
    enum xl_tsdb_sync sync;
    int64_t flush_interval_ms; /* head → chunks at least this often (default 2m) */
    int64_t wal_max_bytes;     /* ... or when the WAL grows past this (default 256MiB) */
    int64_t retention_ms;      /* drop chunks older than this; 0 keeps all */
};

struct xl_tsdb_sample {
    const char *name;
    const struct xl_label *labels;
    size_t nlabels;
    int64_t ts_ms;
    double value;
};

enum xl_match_op { XL_MATCH_EQ, XL_MATCH_NE };

struct xl_matcher {
    const char *name;  /* label name */
    const char *value;
    enum xl_match_op op;
};

enum xl_agg { XL_AGG_NONE, XL_AGG_AVG, XL_AGG_MIN, XL_AGG_MAX, XL_AGG_LAST, XL_AGG_SUM,
              XL_AGG_COUNT };

/* One series of a result. Points are sorted by time; borrowed, valid only
 * during the callback. */
struct xl_series_result {
    const char *name;
    const struct xl_label *labels; /* sorted by name */
    size_t nlabels;
    const int64_t *ts;
    const double *val;
    size_t n;
};

/* Return non-zero to stop the iteration (the call then returns XL_OK). */
typedef int (*xl_tsdb_series_cb)(void *ctx, const struct xl_series_result *r);
typedef int (*xl_tsdb_name_cb)(void *ctx, const char *name, size_t nseries);

struct xl_tsdb_stats {
    uint64_t series;
    uint64_t head_samples;
    uint64_t samples_appended; /* since open */
    uint64_t wal_bytes;
    uint64_t checkpoints;
    uint64_t chunks;
    /* Added: */
    uint64_t wal_syncs;              /* fdatasync calls by appenders (group commits) */
    uint64_t wal_replayed_records;   /* at open */
    uint64_t wal_replayed_samples;   /* at open */
    uint64_t wal_truncated_bytes;    /* torn/corrupt WAL bytes cut off at open */
    uint64_t wal_truncated_segments; /* segments that were cut at open */
    uint64_t wal_unknown_series;     /* replayed samples naming no known series (skipped) */
    uint64_t checkpoint_errors;      /* failed checkpoints (retried later) */
    uint64_t last_checkpoint_ms;     /* duration of the last successful checkpoint */
    uint64_t chunks_deleted;         /* by retention, since open */
};

struct xl_tsdb;

xl_rc xl_tsdb_open(const struct xl_tsdb_opts *opts, struct xl_tsdb **out, struct xl_err *err);
/* Checkpoint the head and close. NULL is fine. */
void xl_tsdb_close(struct xl_tsdb *db);

/* Append n samples atomically (all or none in the WAL). Durable per the sync
 * policy when it returns XL_OK. Samples may arrive out of order per series. */
xl_rc xl_tsdb_append(struct xl_tsdb *db, const struct xl_tsdb_sample *s, size_t n,
                     struct xl_err *err);

/* Cut the head into chunks now (also runs by itself per the options). */
xl_rc xl_tsdb_checkpoint(struct xl_tsdb *db, struct xl_err *err);

/* Metric names with their series count, of series matching all matchers,
 * sorted by name. */
xl_rc xl_tsdb_names(struct xl_tsdb *db, const struct xl_matcher *m, size_t nm,
                    xl_tsdb_name_cb cb, void *ctx, struct xl_err *err);

/* Series (no points: r->n == 0) with this name (NULL: any) matching all
 * matchers, sorted by name then labels. */
xl_rc xl_tsdb_series(struct xl_tsdb *db, const char *name, const struct xl_matcher *m,
                     size_t nm, xl_tsdb_series_cb cb, void *ctx, struct xl_err *err);

/* Points of each matching series in [from_ms, to_ms]. With agg NONE the raw
 * samples; otherwise one point per step_ms bucket that has samples, stamped
 * with the bucket start (buckets aligned to multiples of step_ms).
 * Series without a point in the range are left out; series come sorted by
 * name then labels. Where a series has several samples with one timestamp,
 * the last written wins. */
xl_rc xl_tsdb_query(struct xl_tsdb *db, const char *name, const struct xl_matcher *m,
                    size_t nm, int64_t from_ms, int64_t to_ms, int64_t step_ms,
                    enum xl_agg agg, xl_tsdb_series_cb cb, void *ctx, struct xl_err *err);

void xl_tsdb_get_stats(struct xl_tsdb *db, struct xl_tsdb_stats *out);

/* What replaying the WAL at open cut off ("wal/00000003.wal: 37 bytes
 * dropped at offset 1234 (CRC mismatch)"), or "" when the log was clean.
 * Borrowed, valid until close; meant for one log line at startup. */
const char *xl_tsdb_replay_detail(struct xl_tsdb *db);

/* Fast path for callers that see the same series again and again: resolve
 * (creating it if new) the series of name + labels once, then append by
 * reference. A ref is the series id, stable for the life of the data dir. */
xl_rc xl_tsdb_series_ref(struct xl_tsdb *db, const char *name, const struct xl_label *labels,
                         size_t nlabels, uint64_t *ref, struct xl_err *err);

struct xl_tsdb_ref_sample {
    uint64_t ref; /* from xl_tsdb_series_ref */
    int64_t ts_ms;
    double value;
};

/* Like xl_tsdb_append, by reference. XL_ENOENT for an unknown ref (nothing
 * appended). */
xl_rc xl_tsdb_append_refs(struct xl_tsdb *db, const struct xl_tsdb_ref_sample *s, size_t n,
                          struct xl_err *err);

/* Test hook: when set, called at named points of a checkpoint
 * ("checkpoint:swapped", "checkpoint:before-commit", "checkpoint:committed",
 * "checkpoint:done") so that a test can simulate a crash there (_exit). */
extern void (*xl_tsdb_test_hook)(const char *point);

xl_rc xl_agg_parse(const char *s, enum xl_agg *out);

#endif
