/* xluo-server: the log store (embedded default): SQLite with FTS5.
 *
 * One row per shipped line (or multiline record, or part of a long line)
 * with host, agent, input, file path, file uid, offset, part, timestamp,
 * the matched filter names and the text; an FTS5 index over the text.
 * Appends are idempotent on (agent_id, file_uid, offset, part): a line sent
 * twice (agent restart before its checkpoint) is stored once. Retention by
 * age and by total size runs in the background. Thread-safe. */
#ifndef XL_LOGSTORE_H
#define XL_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

struct xl_logstore_opts {
    const char *path;     /* SQLite file, e.g. data/logs.db */
    int64_t retention_ms; /* delete rows older than this; 0 keeps all */
    int64_t max_bytes;    /* delete the oldest rows beyond this size; 0: no limit */
    bool sync_full;       /* fsync every commit (PRAGMA synchronous=FULL) */
};

/* One line to store. Strings borrowed during the call; line need not be
 * NUL-terminated. */
struct xl_log_rec {
    const char *host;
    const char *agent_id;
    const char *input;
    const char *path;
    uint64_t file_uid;
    uint64_t offset;
    uint32_t part, parts;
    int64_t ts_ms;
    const char *line;
    size_t len;
    const char *filters;  /* matched filter names joined by '\n'; NULL or "" for none */
};

/* A stored line, as search returns it (borrowed during the callback). */
struct xl_log_row {
    int64_t id;           /* increasing in insertion order; the cursor */
    int64_t ts_ms;
    const char *host, *agent_id, *input, *path, *line, *filters;
    uint64_t file_uid, offset;
    uint32_t part, parts;
};

/* What to look for. Every field optional (NULL / 0). */
struct xl_log_query {
    const char *host;      /* exact */
    const char *path_glob; /* fnmatch(3) glob on the path, e.g. "/var/log/app-*"; see api.md */
    const char *input;     /* exact */
    int64_t from_ms, to_ms;/* ts range, inclusive; 0: unbounded */
    const char *text;      /* full-text query: words, "phrases", AND, OR, NOT, prefix* */
    int64_t before_id;     /* cursor: only rows with id < before_id; 0: from the newest */
    int64_t after_id;      /* only rows with id > after_id (used by live catch-up) */
    size_t limit;          /* most rows (default 100, at most 10000) */
};

typedef int (*xl_log_row_cb)(void *ctx, const struct xl_log_row *r);
typedef int (*xl_log_bucket_cb)(void *ctx, int64_t bucket_start_ms, uint64_t count);

struct xl_logstore_stats {
    uint64_t rows;
    uint64_t bytes;          /* database size */
    uint64_t inserted;       /* since open */
    uint64_t duplicates;     /* ignored repeats since open */
    uint64_t deleted;        /* by retention since open */
};

struct xl_logstore;

xl_rc xl_logstore_open(const struct xl_logstore_opts *o, struct xl_logstore **out,
                       struct xl_err *err);
void xl_logstore_close(struct xl_logstore *ls);

/* Store n records in one transaction: all or none. Durable (per sync_full)
 * on XL_OK. ids (may be NULL) gets each record's row id, or 0 for a
 * duplicate that was already stored (so that it is not published twice). */
xl_rc xl_logstore_append(struct xl_logstore *ls, const struct xl_log_rec *r, size_t n,
                         int64_t *ids, struct xl_err *err);

/* Newest first. *next_cursor (may be NULL) gets the before_id for the next
 * page, or 0 when there is no more. XL_EINVAL with a message for a text
 * query FTS5 cannot parse ("text: syntax error near ..."). */
xl_rc xl_logstore_search(struct xl_logstore *ls, const struct xl_log_query *q,
                         xl_log_row_cb cb, void *ctx, int64_t *next_cursor, struct xl_err *err);

/* Counts of matching rows per step_ms bucket over [from_ms, to_ms]
 * (buckets aligned to multiples of step_ms; empty buckets included). */
xl_rc xl_logstore_histogram(struct xl_logstore *ls, const struct xl_log_query *q,
                            int64_t step_ms, xl_log_bucket_cb cb, void *ctx,
                            struct xl_err *err);

void xl_logstore_get_stats(struct xl_logstore *ls, struct xl_logstore_stats *out);

#endif
