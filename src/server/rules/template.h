/* xluo-server rules: annotation templates.
 *
 *   "CPU {{ $value }} on {{ $labels.host }} ({{ $name }})"
 *
 * Three actions, spaces inside the braces optional: `$value` (the value
 * that made the alert: integral values without a fraction, others with
 * 6 significant digits, NaN/+Inf/-Inf by name), `$labels.NAME` (the
 * alert's label, "" when it has none) and `$name` (the rule name).
 * Anything else between `{{` and `}}` is an error at load time, so a typo
 * never reaches a notification. Text outside actions is copied; a lone
 * `{` or `}` is text. */
#ifndef XL_RULES_TEMPLATE_H
#define XL_RULES_TEMPLATE_H

#include <stddef.h>

#include "common/metric.h"
#include "common/rc.h"

#define XL_TMPL_MAX_PARTS 64 /* actions + literal runs in one template */

struct xl_tmpl;

/* What the actions expand to. Strings borrowed. */
struct xl_tmpl_ctx {
    const char *name; /* rule name */
    double value;
    const struct xl_label *labels;
    size_t nlabels;
};

/* Compile src into *out (free with xl_tmpl_free). Errors name the byte
 * offset: "byte 4: unknown template action '$valu' (expected $value,
 * $labels.NAME or $name)", "byte 0: '{{' without '}}'". XL_EPARSE,
 * XL_ETOOBIG, XL_ENOMEM. */
xl_rc xl_tmpl_parse(const char *src, struct xl_tmpl **out, struct xl_err *err);
void xl_tmpl_free(struct xl_tmpl *t);

/* Expand t into out (cap bytes, always NUL-terminated when cap > 0),
 * snprintf style: returns the length the whole expansion has, which is
 * >= cap when it was cut. */
size_t xl_tmpl_expand(const struct xl_tmpl *t, const struct xl_tmpl_ctx *ctx, char *out,
                      size_t cap);

/* $value's formatting, exposed for the notifications' own use. */
void xl_tmpl_fmt_value(double v, char *out, size_t cap);

#endif
