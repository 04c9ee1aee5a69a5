/* xluo-agent: the Prometheus text exposition of the agent's local
 * GET /metrics (docs/exec.md "Local endpoint"): the host metrics of the
 * last collection and the agent's own counters.
 *
 * A set holds copies of samples; rendering groups them by name (one
 * # TYPE line per family: counter for names ending in _total, else gauge)
 * in the text format 0.0.4. */
#ifndef XL_EXPO_H
#define XL_EXPO_H

#include <stddef.h>

#include "common/buf.h"
#include "common/metric.h"

struct xl_expo_sample;

struct xl_expo {
    struct xl_expo_sample *v;
    size_t n, cap;
};

void xl_expo_init(struct xl_expo *e);
void xl_expo_cleanup(struct xl_expo *e);
/* Forget the samples, keep the memory. */
void xl_expo_reset(struct xl_expo *e);
/* Copy one sample in. XL_ENOMEM. */
xl_rc xl_expo_add(struct xl_expo *e, const char *name, const struct xl_label *labels,
                  size_t nlabels, double value);
/* Append the samples of every set to out, grouped by name. */
xl_rc xl_expo_render(const struct xl_expo *const *sets, size_t nsets, struct xl_buf *out);

#endif
