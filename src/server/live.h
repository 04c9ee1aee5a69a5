/* xluo-server: live fan-out of new records to subscribers (Server-Sent
 * Events on GET /api/v1/logs/stream for `xluo logs -f`, and on
 * GET /api/v1/stream for records of any kind, `xluo events -f`).
 *
 * The consumers publish what they stored. A log-stream subscriber has the
 * same filters as a log search (host, path glob, input, text) evaluated in
 * memory; a record-stream subscriber names the kinds it wants (metric, log,
 * check, event, or event types) and optionally a host and conditions on
 * event fields. Each has a bounded queue: a subscriber that cannot keep up
 * loses its oldest records and is told how many (an SSE event "dropped"),
 * never slows ingest. Publishing a kind nobody subscribed to costs one
 * atomic load (xl_live_wants). Thread-safe. */
#ifndef XL_LIVE_H
#define XL_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <stdbool.h>

#include "consumers.h"
#include "store/logs.h"

struct xl_live;

xl_rc xl_live_new(struct xl_live **out, struct xl_err *err);
/* Close every subscriber stream and free. NULL is fine. */
void xl_live_free(struct xl_live *lv);

/* Called by ingest after the rows are durable; rows[i].id are the ids the
 * store gave them (0 if unknown). Never blocks on a subscriber. */
void xl_live_publish(struct xl_live *lv, const struct xl_log_row *rows, size_t n);

/* Is any subscriber open that may want records of kind? One atomic load:
 * check it before building what xl_live_publish_records needs. */
bool xl_live_wants(struct xl_live *lv, enum xl_kind kind);

/* What subscribers select a stored record by. Borrowed during the call. */
struct xl_live_rec {
    const char *host;
    const char *name;     /* events: the event type; else NULL */
    const json_t *fields; /* events: for the where= conditions; else NULL */
};

/* The record's JSON object as the stream sends it (a new reference, or
 * NULL when out of memory). Called at most once per record, only for
 * records some subscriber wants, on the publishing thread. */
typedef json_t *(*xl_live_json_fn)(void *ctx, size_t i);

/* Publish n stored records of kind (not log: xl_live_publish) to the
 * record-stream subscribers that want them. Never blocks on a subscriber. */
void xl_live_publish_records(struct xl_live *lv, enum xl_kind kind, const struct xl_live_rec *recs,
                             size_t n, xl_live_json_fn json, void *ctx);

/* Open streams now (both routes). */
uint64_t xl_live_subscribers(struct xl_live *lv);
/* Lines dropped from the queues of clients that fell behind, since start. */
uint64_t xl_live_dropped(struct xl_live *lv);

/* The routes GET /api/v1/logs/stream (xl_api_logs_stream) and
 * GET /api/v1/stream (xl_api_stream) are declared in server.h and live in
 * live.c. */

#endif
