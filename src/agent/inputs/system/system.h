/* xluo agent: the `system` input. Host metrics (CPU, memory, load, file
 * systems, disk and network I/O, processes, uptime) read from /proc and
 * statvfs(3). The metric names, units and skip rules are listed in
 * docs/metrics.md. */
#ifndef XL_AGENT_INPUT_SYSTEM_H
#define XL_AGENT_INPUT_SYSTEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "common/metric.h"
#include "common/rc.h"

struct xl_sys_opts {
    const char *root; /* "" for the real host; else a directory holding proc/... fixtures */
    bool per_cpu;     /* also emit per-CPU usage (label cpu="N"); default false */
    /* statvfs replacement for tests; NULL = statvfs(3) */
    int (*statvfs_fn)(const char *path, struct statvfs *out);
};

struct xl_sysinput;

/* Create the input. o may be NULL (real host, no per-CPU metrics); o->root
 * is copied. Nothing is read yet. XL_EINVAL for a root longer than 1024
 * bytes, XL_ENOMEM. The caller frees the result with xl_sysinput_free. */
struct xl_sysinput *xl_sysinput_new(const struct xl_sys_opts *o, struct xl_err *err);

/* Read everything once and emit samples through sink, stamped ts_ms (wall clock).
 * mono_ms is a monotonic clock reading used for rates (per-second values are
 * computed against the previous collect; the first collect emits no rates). A reader
 * that fails (file missing/unparseable) is reported in err but the others still emit;
 * return XL_OK if at least something was emitted. err is cleared first, so after
 * XL_OK err->rc != XL_OK means "partial": err->msg names the first failing file
 * (and counts the others). Not thread-safe: one collect at a time per input. */
xl_rc xl_sysinput_collect(struct xl_sysinput *s, int64_t ts_ms, int64_t mono_ms,
                          const struct xl_sample_sink *sink, struct xl_err *err);

/* Free the input and its state. NULL is fine. */
void xl_sysinput_free(struct xl_sysinput *s);

#endif
