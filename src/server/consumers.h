/* xluo-server: the consumers of ingested records, one per record kind.
 *
 * Each consumer is a thread with its own bounded queue that stores one
 * kind of record (metrics in the metric store, log lines in the log store,
 * check results in the check store, events in the event store), so the
 * kinds are stored in parallel and a slow store only holds up the batches
 * that carry its kind.
 *
 * The ingest handler splits a decoded batch into parts, one per kind it
 * holds, and hands them over with xl_consumers_store(), which queues every
 * part or none (XL_EFULL: a queue is full, the batch is answered 503 busy)
 * and waits until every part is stored or failed. A part points into the
 * batch, which stays alive and unchanged while the handler waits: its
 * strings live in the handler thread's jansson arena (jarena.h), which a
 * consumer may read but must never free or decref into; what a consumer
 * builds with jansson is its own (plain malloc, no arena on its thread).
 *
 * A consumer takes every part queued (up to group_max_records records, at
 * least one part) and commits them in one call (group commit: one fsync
 * for all); when such a group fails, each part is tried again alone, so
 * one bad part fails only its own batch. */
#ifndef XL_CONSUMERS_H
#define XL_CONSUMERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"
#include "ingest.h"
#include "registry.h"

enum xl_kind { XL_KIND_METRIC, XL_KIND_LOG, XL_KIND_CHECK, XL_KIND_EVENT, XL_KIND_COUNT };

/* "metric", "log", "check", "event": the record type on the wire. */
const char *xl_kind_name(enum xl_kind k);

struct xl_ticket;

/* The records of one kind of one batch. */
struct xl_part {
    enum xl_kind kind;
    const struct xl_ingest_batch *batch;   /* borrowed until stored */
    const struct xl_agent_snapshot *agent; /* borrowed until stored */
    size_t nrec;                           /* its records, for group sizes and counters */
    /* Set by the consumer once the part is done. */
    xl_rc rc;
    struct xl_err err;
    /* The queue's. */
    struct xl_ticket *ticket;
    struct xl_part *next;
};

/* Store parts[0..n) of one kind, all or nothing; durable on XL_OK. Called
 * on the consumer's thread. */
typedef xl_rc (*xl_consumer_commit_fn)(void *ctx, struct xl_part *const *parts, size_t n,
                                       struct xl_err *err);

struct xl_consumer_def {
    const char *name; /* "metrics": its label on /metrics and in messages */
    xl_consumer_commit_fn commit;
    void *ctx;
    size_t queue_max;         /* parts queued or being stored, at most (>= 1) */
    size_t group_max_records; /* records in one commit (a bigger part goes alone) */
};

struct xl_consumer_stats {
    const char *name;
    uint64_t queued;  /* parts queued or being stored now */
    uint64_t parts;   /* parts stored since start */
    uint64_t records; /* their records */
    uint64_t commits; /* commit calls (a group is one) */
    uint64_t errors;  /* parts that failed */
    uint64_t busy;    /* parts refused because the queue was full */
};

struct xl_consumers;

/* Start one thread per kind (defs[kind]). XL_ENOMEM, XL_ESTATE. */
xl_rc xl_consumers_start(const struct xl_consumer_def defs[XL_KIND_COUNT],
                         struct xl_consumers **out, struct xl_err *err);
/* Store what is queued, stop the threads, free. Nothing may be storing.
 * NULL is fine. */
void xl_consumers_stop(struct xl_consumers *cs);

/* Queue parts[0..n) (at most one per kind) and wait until each is done;
 * then parts[i].rc and .err say how it went. XL_EFULL when a consumer's
 * queue is full (err names it): nothing was queued. Called by ingest, on
 * an HTTP worker thread; blocks while the parts are stored. */
xl_rc xl_consumers_store(struct xl_consumers *cs, struct xl_part *parts, size_t n,
                         struct xl_err *err);

/* Counters of each consumer, by kind. */
void xl_consumers_get_stats(struct xl_consumers *cs, struct xl_consumer_stats out[XL_KIND_COUNT]);

#endif
