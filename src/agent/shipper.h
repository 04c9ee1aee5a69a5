/* xluo-agent: ships batches to the server, registers and heartbeats.
 *
 * Batches wait in a FIFO bounded by queue_max bytes: when it is full the
 * oldest metrics-only batch is dropped and its records counted in
 * records_dropped; batches with log lines are never dropped: the tail input
 * stops reading instead (xl_shipper_full). One batch is in flight at a time,
 * so the server sees an agent's batches in seq order, and on_ack reports
 * each batch's marks in that order. A batch of marks only is acknowledged
 * when it reaches the head of the queue, with no request.
 * Transient failures (connection errors, timeouts, 5xx, 429) retry the same
 * batch with exponential backoff and full jitter (1s, 2s, 4s ... up to
 * retry_max_backoff) on the next server URL in the list; other 4xx answers
 * are logged with the server's detail and the batch is dropped and counted.
 * 404/409 "unknown agent" make the agent register again. */
#ifndef XL_SHIPPER_H
#define XL_SHIPPER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "common/config.h"
#include "httpc.h"

struct xl_shipper_opts {
    const struct xl_strlist *servers;
    const char *token;
    const char *agent_id;
    const char *host;
    const char *ip;
    const struct xl_kvlist *labels;
    int64_t heartbeat_interval_ms;
    int64_t request_timeout_ms;
    int64_t retry_max_backoff_ms;
    size_t queue_max;
    int64_t started_ms;
    /* A batch was accepted by the server (delivered) or given up for good
     * (rejected as invalid: not delivered); its marks may be committed. Not
     * called for batches dropped from a full queue or at stop. */
    void (*on_ack)(void *ctx, const struct xl_mark *marks, size_t nmarks, bool delivered);
    /* Nothing is queued or in flight: a good moment to send what is pending. */
    void (*on_idle)(void *ctx);
    void *ctx;
};

struct xl_shipper_stats {
    uint64_t batches_sent;
    uint64_t records_sent;
    uint64_t batches_dropped; /* rejected by the server or pushed out of a full queue */
    uint64_t records_dropped;
    uint64_t retries;
    uint64_t queue_batches;
    uint64_t queue_bytes;
    bool registered;
};

struct xl_shipper_batch;

struct xl_shipper {
    uv_loop_t *loop;
    struct xl_shipper_opts o;
    struct xl_httpc http;
    uv_timer_t hb_timer, retry_timer;
    struct xl_shipper_batch *head, *tail;
    bool registered, registering, sending, waiting, closing;
    char *reg_body, *hb_body; /* bodies of the requests in flight (httpc borrows them) */
    size_t server_idx;
    unsigned attempt;
    struct xl_shipper_stats st;
};

xl_rc xl_shipper_start(struct xl_shipper *s, uv_loop_t *loop, const struct xl_shipper_opts *o,
                       struct xl_err *err);
/* Queue a finished batch; the shipper takes what *b holds (b is emptied). */
void xl_shipper_enqueue(struct xl_shipper *s, struct xl_batch_out *b);
/* True when nothing waits to be sent and nothing is in flight. */
bool xl_shipper_idle(const struct xl_shipper *s);
/* True when the queue holds queue_max bytes or more (inputs that must not
 * drop, like tail, pause). */
bool xl_shipper_full(const struct xl_shipper *s);
/* Stop timers and abort requests; queued batches are freed (counted as
 * dropped). Run the loop afterwards to close the handles. */
void xl_shipper_stop(struct xl_shipper *s);

#endif
