/* xluo-agent: builds protocol batches (docs/protocol.md) by hand-encoding
 * records into one growing buffer: no per-record allocation, one pass over
 * each log line to escape it. Log lines of the same file read back to back
 * share one `log` record.
 *
 * Marks ride with the batch: (file_uid, end) pairs that the tail input may
 * commit once this batch and every one before it are stable in the outbox
 * (durable on disk, or acknowledged by the server). */
#ifndef XL_BATCH_H
#define XL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metric.h"
#include "inputs/tail/tail.h"
#include "records.h"

struct xl_mark {
    uint64_t file_uid;
    uint64_t end;
};

struct xl_batch_builder {
    struct xl_buf rec;       /* the records, comma separated */
    size_t items;            /* metric samples + log lines */
    bool keep;               /* logs, checks, events: the batch is never dropped */
    struct xl_mark *marks;
    size_t nmarks, cap_marks;
    /* The log record being extended. */
    bool log_open;
    uint64_t log_uid;
    int64_t log_ts;
    const char *log_input;   /* compared by pointer: the tail input's name */
};

/* A finished batch: the body, its size, and the marks it carries. */
struct xl_batch_out {
    char *body;              /* heap, NULL for a batch of marks only */
    size_t len;
    size_t items;
    bool droppable;          /* metrics only: may be dropped when the outbox is full */
    struct xl_mark *marks;   /* heap (may be NULL) */
    size_t nmarks;
};

void xl_batch_init(struct xl_batch_builder *b, size_t max_bytes);
void xl_batch_cleanup(struct xl_batch_builder *b);
bool xl_batch_empty(const struct xl_batch_builder *b);
size_t xl_batch_bytes(const struct xl_batch_builder *b);

xl_rc xl_batch_add_metric(struct xl_batch_builder *b, const char *name,
                          const struct xl_label *labels, size_t nlabels, double value,
                          int64_t ts_ms);
xl_rc xl_batch_add_log(struct xl_batch_builder *b, const struct xl_log_line *l);
/* A check result and a custom event (docs/protocol.md). The event's
 * fields are written as compact JSON. XL_ETOOBIG when the batch is full. */
xl_rc xl_batch_add_check(struct xl_batch_builder *b, const struct xl_check_rec *c);
xl_rc xl_batch_add_event(struct xl_batch_builder *b, const char *type, const json_t *fields,
                         const char *source, int64_t ts_ms);
xl_rc xl_batch_add_mark(struct xl_batch_builder *b, uint64_t file_uid, uint64_t end);

/* Wrap what was added into a batch with this identity and reset the
 * builder. floor: the lowest seq the agent may still send (docs/protocol.md). XL_ENOMEM leaves the builder as it was. */
xl_rc xl_batch_finish(struct xl_batch_builder *b, const char *agent_id, uint64_t seq,
                      uint64_t floor, int64_t sent_ms, struct xl_batch_out *out);
void xl_batch_out_cleanup(struct xl_batch_out *o);

/* Append s[0..n) to buf as the inside of a JSON string: ", \ and control
 * characters escaped, bytes that are not valid UTF-8 written as the text
 * \xHH (docs/protocol.md). */
xl_rc xl_json_escape(struct xl_buf *buf, const char *s, size_t n);

#endif
