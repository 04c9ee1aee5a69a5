/* xluo-server: the log store (embedded default): SQLite with FTS5.
 *
 * One row per shipped line (or multiline record, or part of a long line)
 * with host, agent, input, file path, file uid, offset, part, timestamp,
 * the matched filter names and the text; an FTS5 index over the text.
 * Appends are idempotent on (agent_id, file_uid, offset, part): a line sent
 * twice (agent restart before its checkpoint) is stored once. Retention by
 * age and by total size runs in the background. Thread-safe.
 * docs/storage.md ("Log store") describes the schema and the choices.
 *
 * The text query syntax is compiled by logs_query.h, which the live stream
 * can use to match lines in memory with the same rules. */
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
    int64_t maintain_interval_ms; /* how often retention runs; 0: 10 s */
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
    size_t len;           /* bytes of line (it may hold a NUL); set by search */
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
    bool oldest_first;     /* ascending ids instead (live catch-up after after_id);
                            * *next_cursor is then the after_id of the next page */
};

typedef int (*xl_log_row_cb)(void *ctx, const struct xl_log_row *r);
typedef int (*xl_log_bucket_cb)(void *ctx, int64_t bucket_start_ms, uint64_t count);

struct xl_logstore_stats {
    uint64_t rows;
    uint64_t bytes;          /* database size */
    uint64_t inserted;       /* since open */
    uint64_t duplicates;     /* ignored repeats since open */
    uint64_t deleted;        /* by retention since open */
    uint64_t file_bytes;     /* pages in the file, free ones included */
    uint64_t commits;        /* append transactions (a group commit is one) */
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
 * page, or 0 when there is no more. A callback returning non-zero stops the
 * search (*next_cursor then continues after the row it was given). XL_EINVAL with a message for a text
 * query that does not parse ("text: unterminated quote at byte 7"); the
 * message never holds SQLite's words. */
xl_rc xl_logstore_search(struct xl_logstore *ls, const struct xl_log_query *q,
                         xl_log_row_cb cb, void *ctx, int64_t *next_cursor, struct xl_err *err);

/* Counts of matching rows per step_ms bucket over [from_ms, to_ms]
 * (buckets aligned to multiples of step_ms; empty buckets included). */
xl_rc xl_logstore_histogram(struct xl_logstore *ls, const struct xl_log_query *q,
                            int64_t step_ms, xl_log_bucket_cb cb, void *ctx,
                            struct xl_err *err);

/* Counters; rows and bytes as of the last append or maintenance (bytes are
 * refreshed every second by the background thread). */
void xl_logstore_get_stats(struct xl_logstore *ls, struct xl_logstore_stats *out);

/* Run retention now (the background thread does it every
 * maintain_interval_ms): delete rows older than now_ms - retention_ms, then
 * the oldest rows while the size is over max_bytes (down to 90% of it), in
 * transactions of a few thousand rows so appends interleave, and give the
 * freed pages back to the file system. For tests and tools. */
xl_rc xl_logstore_maintain(struct xl_logstore *ls, int64_t now_ms, struct xl_err *err);

#endif
