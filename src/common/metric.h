/* xluo: metric samples as they flow from inputs to outputs, and the
 * Prometheus naming rules both sides enforce.
 *
 * Names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * (names starting with "__" are reserved). Values are any UTF-8. */
#ifndef XL_METRIC_H
#define XL_METRIC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xl_label {
    const char *name;
    const char *value;
};

/* Where an input puts its samples. emit() copies what it needs; the caller
 * keeps ownership of every string. ts_ms is wall-clock milliseconds. */
struct xl_sample_sink {
    void (*emit)(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                 double value, int64_t ts_ms);
    void *ctx;
};

static inline void xl_sink_emit(const struct xl_sample_sink *s, const char *name,
                                const struct xl_label *labels, size_t nlabels, double value,
                                int64_t ts_ms)
{
    s->emit(s->ctx, name, labels, nlabels, value, ts_ms);
}

/* A sample value from JSON: a number, or one of the strings "NaN", "+Inf",
 * "-Inf", "Inf" (how the protocol and the API write non-finite values). */
bool xl_json_number(const json_t *v, double *out);
/* The reverse: a JSON number, or "NaN", "+Inf", "-Inf" (JSON has no
 * literal for them). A new reference, NULL when out of memory. */
json_t *xl_json_from_number(double v);

bool xl_metric_name_valid(const char *s);
bool xl_label_name_valid(const char *s);

#endif
