/* xluo-server: live fan-out of new records to subscribers (Server-Sent
 * Events on GET /api/v1/logs/stream, `xluo logs -f`).
 *
 * Ingest publishes every stored log line; each subscriber has the same
 * filters as a search (host, path glob, input, text) evaluated in memory,
 * and a bounded queue: a subscriber that cannot keep up loses its oldest
 * lines and is told how many (an SSE event "dropped"), never slows ingest.
 * Thread-safe. */
#ifndef XL_LIVE_H
#define XL_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "store/logs.h"

struct xl_live;

xl_rc xl_live_new(struct xl_live **out, struct xl_err *err);
/* Close every subscriber stream and free. NULL is fine. */
void xl_live_free(struct xl_live *lv);

/* Called by ingest after the rows are durable; rows[i].id are the ids the
 * store gave them (0 if unknown). Never blocks on a subscriber. */
void xl_live_publish(struct xl_live *lv, const struct xl_log_row *rows, size_t n);

/* Open streams now. */
uint64_t xl_live_subscribers(struct xl_live *lv);
/* Lines dropped from the queues of clients that fell behind, since start. */
uint64_t xl_live_dropped(struct xl_live *lv);

/* The route GET /api/v1/logs/stream, xl_api_logs_stream, is declared in
 * server.h and lives in live.c. */

#endif
