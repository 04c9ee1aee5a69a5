/* xluo-server: the event store (SQLite, data/events.db).
 *
 * One row per custom event record (docs/protocol.md "Events"): time, host,
 * agent, type, the fields as JSON text, the source. Appends are idempotent
 * on (agent_id, seq, idx), the record's place in its batch, so a batch sent
 * again stores nothing twice. Queries select by type, host, time range and
 * conditions on fields (`key OP value`), newest first, in pages. Retention
 * by age. Thread-safe. docs/storage.md ("Event store") says why it looks
 * like this.
 *
 * The field conditions are parsed here once and evaluated either by SQLite
 * (json_extract, for queries) or in memory (xl_event_where_match, for the
 * live stream) with the same rules. */
#ifndef XL_EVENTSTORE_H
#define XL_EVENTSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define XL_EVENT_WHERE_MAX 16 /* conditions per query or stream */

struct xl_eventstore_opts {
    const char *path;     /* SQLite file, e.g. data/events.db */
    int64_t retention_ms; /* xl_eventstore_maintain deletes older events; 0 keeps all */
    bool sync_full;       /* fsync every commit (PRAGMA synchronous=FULL) */
};

/* One event to store. Strings borrowed during the call. */
struct xl_event_rec {
    int64_t ts_ms;
    const char *host, *agent_id, *type;
    const char *fields; /* a JSON object as text */
    const char *source; /* NULL: none */
    uint64_t seq;       /* the batch's seq; 0: not numbered, never deduplicated */
    uint32_t idx;       /* the record's index in the batch */
};

/* A stored event, as a query returns it (borrowed during the callback). */
struct xl_event_row {
    int64_t id, ts_ms;
    const char *host, *agent_id, *type, *fields, *source; /* source may be NULL */
};

enum xl_where_op { XL_WHERE_EQ, XL_WHERE_NE, XL_WHERE_GT, XL_WHERE_GE, XL_WHERE_LT, XL_WHERE_LE };
enum xl_where_kind { XL_WHERE_NUM, XL_WHERE_STR, XL_WHERE_BOOL };

/* One condition `key OP value` on an event's fields. */
struct xl_event_where {
    char **keys; /* the key's path: "a.b" is {"a", "b"} */
    size_t nkeys;
    char *path; /* the same as an SQLite JSON path: $."a"."b" */
    enum xl_where_op op;
    enum xl_where_kind kind;
    double num;
    char *str;
    bool b;
};

/* Parse "KEY OP VALUE": KEY is one or more names of [A-Za-z0-9_:-]
 * separated by '.' (nested objects), OP one of = != > >= < <=, VALUE a
 * number (compared with numeric fields), true or false (with booleans),
 * else a string (with string fields; "..." quotes force a string). Spaces
 * around KEY and VALUE are dropped. XL_EINVAL with a message, XL_ENOMEM.
 * On success the caller cleans w up. */
xl_rc xl_event_where_parse(const char *s, struct xl_event_where *w, struct xl_err *err);
void xl_event_where_cleanup(struct xl_event_where *w);

/* Does the fields object satisfy w? A field that is missing or of another
 * kind than the value satisfies only `!=` (which is "not =" in every case).
 * The same rules as the query's SQL. */
bool xl_event_where_match(const struct xl_event_where *w, const json_t *fields);

/* What to look for; every field optional (NULL / 0). */
struct xl_event_query {
    const char *type;
    const char *host;
    int64_t from_ms, to_ms; /* ts range, inclusive; 0: open */
    const struct xl_event_where *where;
    size_t nwhere;
    int64_t before_id; /* the page after this event (older than it); 0: newest */
    size_t limit;      /* default 100, at most 10000 */
};

typedef int (*xl_event_row_cb)(void *ctx, const struct xl_event_row *r);

struct xl_eventstore_stats {
    uint64_t rows;       /* stored now */
    uint64_t inserted;   /* since open */
    uint64_t duplicates; /* repeats ignored since open */
    uint64_t deleted;    /* by retention since open */
    uint64_t commits;
};

struct xl_eventstore;

xl_rc xl_eventstore_open(const struct xl_eventstore_opts *o, struct xl_eventstore **out,
                         struct xl_err *err);
/* NULL is fine. Appends and queries must have returned. */
void xl_eventstore_close(struct xl_eventstore *es);

/* Store n events in one transaction: all or none; durable (per sync_full)
 * on XL_OK. ids (may be NULL) gets each event's id, or 0 for one stored
 * before (same agent, seq and idx). XL_EDB. */
xl_rc xl_eventstore_append(struct xl_eventstore *es, const struct xl_event_rec *r, size_t n,
                           int64_t *ids, struct xl_err *err);

/* Matching events, newest first (by ts, then id). *next_before (may be
 * NULL) gets the before_id of the next page, or 0 when there is no more.
 * A callback returning non-zero stops. XL_ENOENT when before_id names no
 * stored event (deleted by retention); XL_EDB. */
xl_rc xl_eventstore_search(struct xl_eventstore *es, const struct xl_event_query *q,
                           xl_event_row_cb cb, void *ctx, int64_t *next_before, struct xl_err *err);

/* Delete events older than now_ms - retention_ms, a few thousand per
 * transaction. The server calls it every minute. */
xl_rc xl_eventstore_maintain(struct xl_eventstore *es, int64_t now_ms, struct xl_err *err);

void xl_eventstore_get_stats(struct xl_eventstore *es, struct xl_eventstore_stats *out);

#endif
