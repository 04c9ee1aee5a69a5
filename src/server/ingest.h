/* xluo-server: decoding and validation of agent batches (docs/protocol.md).
 *
 * xl_ingest_decode is a pure function of the body (the fuzz target
 * tests/fuzz/fuzz_ingest.c drives it): it parses, checks every field and
 * every record, and either fills a batch or names the first problem. */
#ifndef XL_INGEST_H
#define XL_INGEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "common/metric.h"
#include "common/rc.h"

#define XL_PROTO_VERSION 1
#define XL_AGENT_ID_LEN 32

struct xl_ingest_limits {
    size_t max_records;
    int64_t max_age_ms;  /* oldest accepted ts = now - max_age_ms */
    int64_t max_skew_ms; /* newest accepted ts = now + max_skew_ms */
};

struct xl_ingest_metric {
    const char *name;
    struct xl_label *labels; /* points into the batch's label array */
    size_t nlabels;
    int64_t ts_ms;
    double value;
};

/* One log line of a `log` record (docs/protocol.md). */
struct xl_ingest_log {
    const char *input;
    const char *file;
    uint64_t file_uid;
    uint64_t offset, end;
    const char *text;
    size_t len;
    const char *matched; /* filter names joined by '\n', "" for none */
    uint32_t part, parts;
    int64_t ts_ms;
};

/* Limits of check and event records (docs/protocol.md "Checks", "Events"). */
#define XL_EVENT_FIELDS_MAX (64u << 10) /* fields as compact JSON */
#define XL_SOURCE_MAX 4096

/* One `check` record: the result of a check run by the agent. */
struct xl_ingest_check {
    int64_t ts_ms;
    const char *name;
    enum xl_check_state state;
    const char *output;      /* "" when absent */
    const char *long_output; /* NULL when absent */
    const char *source;      /* NULL when absent */
    int64_t exit_code, duration_ms, interval_ms;
    bool has_exit_code, has_duration, has_interval;
};

/* One `event` record: a custom event of type `name`. */
struct xl_ingest_event {
    int64_t ts_ms;
    const char *name;
    const json_t *fields; /* an object, borrowed from the batch's root */
    const char *source;   /* NULL when absent */
    uint32_t idx;         /* the record's index in the batch (dedup key) */
};

/* A decoded batch. Every string points into root, which the batch owns. */
struct xl_ingest_batch {
    json_t *root;
    const char *agent_id;
    uint64_t seq;
    uint64_t floor; /* the agent sends no seq below it again; 0 when absent */
    int64_t sent_ms;
    struct xl_ingest_metric *metrics;
    size_t nmetrics;
    struct xl_label *labels; /* storage for every record's labels */
    struct xl_ingest_log *logs;
    size_t nlogs;
    char *matched; /* storage for the joined filter names */
    struct xl_ingest_check *checks;
    size_t nchecks, checks_cap;
    struct xl_ingest_event *events;
    size_t nevents, events_cap;
};

/* Decode body. max_records limits the records, each log line counting as
 * one (a log record counts as its lines). Errors: XL_EPARSE (not JSON, or
 * the envelope is wrong: 400),
 * XL_EPROTO (unsupported version: 400), XL_ETOOBIG (too many records: 413),
 * XL_EINVAL (a record is invalid: 422). err names the place: "body:1:57"
 * for JSON syntax, "records[12].ts" for fields. On error out is empty. */
xl_rc xl_ingest_decode(const char *body, size_t len, const struct xl_ingest_limits *lim,
                       int64_t now_ms, struct xl_ingest_batch *out, struct xl_err *err);
void xl_ingest_batch_cleanup(struct xl_ingest_batch *b);

/* Check an agent id: 32 lowercase hex characters. */
bool xl_agent_id_valid(const char *s);

/* Check states and event types: common/check.h (both sides). */

#endif
