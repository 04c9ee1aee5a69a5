/* xluo-agent tail input: multiline records (stack traces and the like).
 *
 * A line matching the start regex begins a record; the lines after it that
 * do not match are appended, joined with '\n', until the next start line,
 * max_lines lines, max_bytes bytes (a line that would pass it begins a new
 * record), or flush_timeout without new data (the caller's timer calls
 * xl_tail_ml_flush). A line arriving while no record is open begins one,
 * whether it matches or not. A record's offset is its first line's, its end
 * is past its last line's newline. */
#ifndef XL_TAIL_MULTILINE_H
#define XL_TAIL_MULTILINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

struct xl_tail_multiline_cfg;

/* The compiled settings of one input. */
struct xl_tail_ml_rule;

/* A record being assembled (one per file). Zero-initialised is empty. */
struct xl_tail_ml {
    char *data;
    size_t len, cap;
    uint64_t off, end;
    uint32_t nlines;
    int64_t last_ms; /* caller's clock at the last line added */
};

typedef void (*xl_tail_ml_emit_fn)(void *ctx, const char *data, size_t len, uint64_t off,
                                   uint64_t end);

/* Compile cfg. *out is NULL (multiline off) when cfg->start is NULL or "".
 * A bad regex: XL_EINVAL, "inputs.tail[0].multiline.start: ...". */
xl_rc xl_tail_ml_rule_new(const struct xl_tail_multiline_cfg *cfg, const char *where,
                          struct xl_tail_ml_rule **out, struct xl_err *err);
void xl_tail_ml_rule_free(struct xl_tail_ml_rule *r);
int64_t xl_tail_ml_rule_timeout(const struct xl_tail_ml_rule *r);
/* True when the line begins a record. */
bool xl_tail_ml_is_start(const struct xl_tail_ml_rule *r, const char *data, size_t len);

/* Add one whole line (without its newline) spanning [off, end) of the file.
 * Records completed by it are passed to emit (synchronously). If memory runs
 * out the open record and then the line are emitted as they are: nothing is
 * lost. */
void xl_tail_ml_add(struct xl_tail_ml *m, const struct xl_tail_ml_rule *r, const char *line,
                    size_t len, uint64_t off, uint64_t end, int64_t now, xl_tail_ml_emit_fn emit,
                    void *ctx);
/* Emit the open record, if any. */
void xl_tail_ml_flush(struct xl_tail_ml *m, xl_tail_ml_emit_fn emit, void *ctx);
static inline bool xl_tail_ml_pending(const struct xl_tail_ml *m)
{
    return m->nlines > 0;
}
void xl_tail_ml_cleanup(struct xl_tail_ml *m);

#endif
