/* xluo-server rules: label selectors, Prometheus style.
 *
 *   {host="web1", role!="db", path=~"/var/log/.*", env!~"dev|test"}
 *   host=web1,role!=db                      (the bare form the CLI takes)
 *
 * A selector is a list of matchers that must all hold. Operators: `=` `!=`
 * `=~` `!~`. Regexes are PCRE2, anchored at both ends (`=~"web"` does not
 * match "web1"; write `=~"web.*"`), like Prometheus. As in Prometheus a
 * label the set does not have counts as the empty string: `env!="prod"`
 * matches a series without `env`, `env=""` selects series without it.
 *
 * Values: "double quoted" with the escapes \\ \" \' \n \t \r, 'single
 * quoted' (same escapes) or `raw` (no escapes). The bare form also takes
 * unquoted values, which end at the next ',' (spaces around are dropped).
 * `{}` and "" are selectors with no matcher: they match every label set.
 * A metric name before `{` is not taken: rules name the metric in their
 * own field.
 *
 * The tsdb has its own struct xl_matcher (= and != only, for queries);
 * this module is the full syntax, used by the rule engine. */
#ifndef XL_RULES_MATCHER_H
#define XL_RULES_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/metric.h"
#include "common/rc.h"

#define XL_SELECTOR_MAX 32            /* matchers in one selector */
#define XL_SELECTOR_VALUE_MAX 4096    /* bytes of one value */

enum xl_lm_op { XL_LM_EQ, XL_LM_NE, XL_LM_RE, XL_LM_NRE };

/* One `name OP value`. re is the compiled regex (a pcre2_code *) for =~ and
 * !~, NULL otherwise. */
struct xl_label_matcher {
    char *name;
    char *value;
    enum xl_lm_op op;
    void *re;
};

struct xl_selector {
    struct xl_label_matcher *m;
    size_t n;
    void *md;   /* pcre2_match_data shared by the regexes: one thread at a time */
    void *mctx; /* pcre2_match_context with the match limit */
};

/* Parse text into a new selector (*out, freed with xl_selector_free).
 * Errors name the byte offset in text: "byte 14: expected '=', '!=', '=~'
 * or '!~'", "byte 21: bad regex for label 'path': missing closing
 * parenthesis (at regex offset 3)". XL_EPARSE, XL_EINVAL (a bad regex),
 * XL_ETOOBIG (too many matchers, value too long), XL_ENOMEM. */
xl_rc xl_selector_parse(const char *text, struct xl_selector **out, struct xl_err *err);
void xl_selector_free(struct xl_selector *s);

/* Does the label set (any order, names unique) satisfy every matcher? A
 * NULL selector matches everything. Not thread-safe for one selector
 * (the regexes share match data). A regex that hits PCRE2's match limit
 * makes its matcher fail, for =~ and !~ alike. */
bool xl_selector_match(const struct xl_selector *s, const struct xl_label *labels, size_t n);

/* The operator as written: "=", "!=", "=~", "!~". */
const char *xl_lm_op_str(enum xl_lm_op op);

#endif
