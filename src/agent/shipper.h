/* xluo-agent: ships the outbox to the servers, registers and heartbeats.
 *
 * Up to max_in_flight batches travel at once, oldest first, each to the
 * first server in the configured order whose circuit breaker lets it
 * through:
 *   closed     requests flow; breaker_failures failures in a row open it;
 *   open       no requests for breaker_cooldown, then
 *   half-open  one probe request: success closes it, failure opens it again.
 * So the agent fails over to the next server when the preferred one keeps
 * failing, and returns to it as soon as a probe succeeds.
 * Transient failures (no answer, timeouts, 5xx, 429) put the batch back in
 * the outbox and pause sending for an exponential backoff with full jitter:
 * uniform in [0, min(retry_max_backoff, 2s * 2^attempt)]. Other 4xx answers
 * are logged with the server's detail and the batch is dropped and counted
 * (it can only be invalid data); 404/409 "unknown agent" make the agent
 * register with that server again. A batch the server has already stored is
 * acknowledged as a duplicate (docs/protocol.md): resending is always safe. */
#ifndef XL_SHIPPER_H
#define XL_SHIPPER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "httpc.h"
#include "outbox.h"

#define XL_SHIPPER_MAX_IN_FLIGHT 64

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
    unsigned max_in_flight;
    unsigned breaker_failures;
    int64_t breaker_cooldown_ms;
    int64_t started_ms;
    struct xl_outbox *outbox;
    /* There is room in flight and nothing waits in the outbox: a good
     * moment to send what the agent is still batching. */
    void (*on_idle)(void *ctx);
    /* Records the agent itself dropped (added to heartbeat stats). */
    uint64_t (*extra_dropped)(void *ctx);
    void *ctx;
};

enum xl_breaker_state { XL_BREAKER_CLOSED, XL_BREAKER_OPEN, XL_BREAKER_HALF_OPEN };

struct xl_shipper;

/* One server URL: its breaker and registration. */
struct xl_shipper_server {
    struct xl_shipper *s;
    const char *url;
    enum xl_breaker_state state;
    unsigned failures; /* in a row */
    int64_t opened_ms;
    bool probing, registered, registering;
    char *reg_body; /* the registration in flight (httpc borrows it) */
};

struct xl_shipper_stats {
    uint64_t batches_sent, records_sent;
    uint64_t batches_rejected, records_rejected; /* refused by a server as invalid */
    uint64_t duplicates;                         /* batches the server already had */
    uint64_t retries;
    unsigned in_flight;
};

struct xl_shipper_slot {
    struct xl_shipper *s;
    bool busy;
    uint64_t seq;
    size_t items;
    struct xl_shipper_server *srv;
};

struct xl_shipper {
    uv_loop_t *loop;
    struct xl_shipper_opts o;
    struct xl_httpc http;
    uv_timer_t hb_timer, retry_timer;
    struct xl_shipper_server *srv;
    size_t nsrv;
    struct xl_shipper_slot slot[XL_SHIPPER_MAX_IN_FLIGHT];
    bool waiting, closing;
    char *hb_body;
    unsigned attempt;
    struct xl_shipper_stats st;
};

xl_rc xl_shipper_start(struct xl_shipper *s, uv_loop_t *loop, const struct xl_shipper_opts *o,
                       struct xl_err *err);
/* Send what the outbox holds, as far as the window and the breakers allow
 * (call after appending). */
void xl_shipper_kick(struct xl_shipper *s);
/* True when another batch could leave right now. */
bool xl_shipper_ready(const struct xl_shipper *s);
/* True when nothing is in flight. */
bool xl_shipper_quiet(const struct xl_shipper *s);
/* True once some server has accepted this agent's registration. */
bool xl_shipper_registered(const struct xl_shipper *s);
/* The agent's delivery health (docs/delivery.md, "Health"); the breakers
 * are s->srv[0 .. nsrv). Heartbeats send it as their `stats`. */
struct xl_shipper_health {
    uint64_t batches_sent, records_sent;
    uint64_t batches_dropped, records_dropped; /* outbox full, rejected, not batched */
    uint64_t duplicates, retries;
    unsigned in_flight;
    int64_t outbox_oldest_age_ms;
    struct xl_outbox_stats outbox;
};
void xl_shipper_health(const struct xl_shipper *s, int64_t now_ms, struct xl_shipper_health *h);
/* Stop timers and abort requests (their batches stay in the outbox). Run
 * the loop afterwards to close the handles. */
void xl_shipper_stop(struct xl_shipper *s);

#endif
