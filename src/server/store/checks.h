/* xluo-server: the check store (SQLite, data/checks.db).
 *
 * Keeps the current state of every check (agent_id, name): its last
 * result and since when it has been in its state, and a history of state
 * changes. A result no newer than the current one (ts <=) is ignored, so a
 * batch sent again changes nothing; the first result of a check is a
 * change from no state. History rows older than the retention are deleted
 * by xl_checkstore_maintain. Thread-safe. docs/storage.md ("Check store").
 */
#ifndef XL_CHECKSTORE_H
#define XL_CHECKSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"
#include "server/ingest.h"

struct xl_checkstore_opts {
    const char *path;             /* SQLite file, e.g. data/checks.db */
    int64_t history_retention_ms; /* delete older state changes; 0 keeps all */
    bool sync_full;               /* fsync every commit */
};

/* One check result to apply. Strings borrowed during the call. */
struct xl_check_rec {
    const char *host, *agent_id, *name;
    enum xl_check_state state;
    const char *output;      /* not NULL */
    const char *long_output; /* NULL: none */
    const char *source;      /* NULL: none */
    int64_t exit_code, duration_ms, interval_ms;
    bool has_exit_code, has_duration, has_interval;
    int64_t ts_ms;
};

/* What applying a result did. */
enum xl_check_outcome {
    XL_CHECK_IGNORED, /* no newer than the current result */
    XL_CHECK_SAME,    /* the same state: the result replaces the last one */
    XL_CHECK_CHANGED, /* a new state (or the first result): a history row */
};

/* A check's current state (borrowed during the callback). */
struct xl_check_row {
    const char *host, *agent_id, *name;
    enum xl_check_state state;
    const char *output, *long_output, *source; /* long_output, source may be NULL */
    int64_t exit_code, duration_ms, interval_ms;
    bool has_exit_code, has_duration, has_interval;
    int64_t ts_ms, since_ms;
    int64_t received_ms; /* when the server stored the last result (its clock) */
};

/* One state change (borrowed during the callback). from is NULL for the
 * first result of a check. */
struct xl_check_change {
    int64_t id, ts_ms;
    const char *host, *agent_id, *name, *from, *to, *output;
};

struct xl_check_query {
    const char *host, *name; /* exact; NULL: any */
    int state;               /* an enum xl_check_state, or -1 for any */
};

struct xl_check_hist_query {
    const char *host, *name;
    int64_t from_ms, to_ms; /* inclusive; 0: open */
    size_t limit;           /* default 100, at most 10000 */
};

typedef int (*xl_check_row_cb)(void *ctx, const struct xl_check_row *r);
typedef int (*xl_check_change_cb)(void *ctx, const struct xl_check_change *c);

struct xl_checkstore_stats {
    uint64_t checks;  /* checks known */
    uint64_t results; /* results applied since open (ignored ones excluded) */
    uint64_t ignored; /* results no newer than the current one */
    uint64_t changes; /* state changes since open */
    uint64_t commits;
};

struct xl_checkstore;

xl_rc xl_checkstore_open(const struct xl_checkstore_opts *o, struct xl_checkstore **out,
                         struct xl_err *err);
void xl_checkstore_close(struct xl_checkstore *cs);

/* Apply n results in order, in one transaction: all or none; durable on
 * XL_OK. outcome (may be NULL) gets what each one did. XL_EDB. */
xl_rc xl_checkstore_apply(struct xl_checkstore *cs, const struct xl_check_rec *r, size_t n,
                          enum xl_check_outcome *outcome, struct xl_err *err);

/* The current states, most severe first (critical, warning, unknown, ok),
 * then by host and name. A callback returning non-zero stops. XL_EDB. */
xl_rc xl_checkstore_list(struct xl_checkstore *cs, const struct xl_check_query *q,
                         xl_check_row_cb cb, void *ctx, struct xl_err *err);

/* State changes, newest first. XL_EDB. */
xl_rc xl_checkstore_history(struct xl_checkstore *cs, const struct xl_check_hist_query *q,
                            xl_check_change_cb cb, void *ctx, struct xl_err *err);

/* Delete history older than now_ms - history_retention_ms. */
xl_rc xl_checkstore_maintain(struct xl_checkstore *cs, int64_t now_ms, struct xl_err *err);

void xl_checkstore_get_stats(struct xl_checkstore *cs, struct xl_checkstore_stats *out);

#endif
