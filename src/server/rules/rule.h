/* xluo-server rules: alerting rules, loaded from YAML files
 * (the *.yaml files of conf/rules.d, each `rules: [...]`; docs/rules.md is the
 * reference). Loading validates everything a rule says (keys allowed for
 * its kind, regexes, selectors, templates, `where` conditions, ranges,
 * names unique across files) and reports the first problem as
 * `file:line: rules[i].field: message`. A loaded rule is immutable and
 * holds everything compiled, ready for the evaluator. */
#ifndef XL_RULES_RULE_H
#define XL_RULES_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/metric.h"
#include "common/rc.h"
#include "server/rules/alert.h"
#include "server/rules/matcher.h"
#include "server/rules/template.h"
#include "server/rules/window.h"
#include "server/store/events.h"

#define XL_RULES_MAX 10000     /* rules in a set */
#define XL_RULE_MAX_BY 16      /* `by` labels */
#define XL_RULE_MAX_LABELS 32  /* `labels` */
#define XL_RULE_MAX_ANNOT 16   /* `annotations` */
#define XL_RULE_NAME_MAX 128

enum xl_rule_kind { XL_RULE_METRIC, XL_RULE_LOG, XL_RULE_CHECK, XL_RULE_EVENT, XL_RULE_NODATA,
                    XL_RULE_AGENT_DOWN };
enum xl_rule_op { XL_RULE_GT, XL_RULE_GE, XL_RULE_LT, XL_RULE_LE, XL_RULE_EQ, XL_RULE_NE };
enum xl_rule_severity { XL_SEV_CRITICAL, XL_SEV_WARNING, XL_SEV_INFO };

/* Check states as a bit mask: 1 << XL_CHECK_... of common/check.h order
 * ok=0 warning=1 critical=2 unknown=3. */
#define XL_RULE_STATE_BIT(s) (1u << (s))

struct xl_rule {
    char *name;
    enum xl_rule_kind kind;
    char *file; /* where it was defined */
    unsigned line;

    char *metric;              /* metric, nodata (or check) */
    char *check;               /* check, nodata: a check name or fnmatch(3) glob */
    char *event;               /* event: the event type */
    char *match_text;          /* the selector as written, NULL: none */
    struct xl_selector *match; /* NULL: every label set */

    char *pattern;  /* log: "KEYWORD" or "re:REGEX" as written */
    void *re;       /* log: compiled pcre2_code for re:, NULL for a keyword */
    void *re_md;    /* its match data: one thread at a time */

    enum xl_wagg agg;  /* metric; log and event count matches */
    int64_t window_ms; /* metric, log, event */
    struct xl_strlist by; /* group labels; n == 0: per series */

    enum xl_rule_op op; /* metric, log, event */
    double threshold;
    bool has_recover;   /* recover_below (for > >=) or recover_above (< <=) */
    double recover;

    struct xl_alert_timing timing; /* for, keep_firing_for */
    enum xl_rule_severity severity;
    struct xl_kvlist labels;
    struct xl_kvlist annotations;
    struct xl_tmpl **annot_tmpl; /* annotations.n compiled templates */

    unsigned states;       /* check: XL_RULE_STATE_BIT mask */
    int64_t consecutive;   /* check: results in a row */
    struct xl_event_where *where; /* event */
    size_t nwhere;
};

struct xl_ruleset {
    struct xl_rule *rules;
    size_t n;
};

/* Load the YAML document in buf (name is used in messages) and append its
 * rules to set (zeroed, or filled by earlier loads: names must be unique
 * across them). All or nothing: on error set is unchanged. XL_EPARSE
 * (YAML), XL_EINVAL, XL_ERANGE (a value), XL_EEXIST (a duplicate name),
 * XL_ENOMEM. */
xl_rc xl_rules_load_buf(const char *name, const char *buf, size_t len, struct xl_ruleset *set,
                        struct xl_err *err);

/* Load every *.yaml and *.yml file of dir, in name order, into set (which
 * must be empty). On error set is freed and left empty. A missing dir is
 * XL_ENOENT; an empty one is an empty set. */
xl_rc xl_rules_load_dir(const char *dir, struct xl_ruleset *set, struct xl_err *err);

/* Free every rule; the set is empty afterwards and may be reused. */
void xl_ruleset_free(struct xl_ruleset *set);

/* The rule called name, NULL if none. Borrowed. */
const struct xl_rule *xl_ruleset_find(const struct xl_ruleset *set, const char *name);

/* Evaluate rule's comparison for value: *cond the firing condition
 * (value OP threshold), *recovered the recovery condition (value below
 * recover_below / above recover_above when the rule has one, else
 * !*cond). NaN holds neither condition but counts as recovered. */
void xl_rule_cond(const struct xl_rule *r, double value, bool *cond, bool *recovered);

/* Does a log line (len bytes) match a log rule's pattern? Keyword: byte
 * substring; re: PCRE2 search (unanchored), PCRE2's default match limit
 * counting as no match. Not thread-safe for one rule. */
bool xl_rule_log_match(const struct xl_rule *r, const char *line, size_t len);

/* Does a check named name match a check rule's (or nodata's) check glob? */
bool xl_rule_check_name_match(const struct xl_rule *r, const char *name);

const char *xl_rule_kind_str(enum xl_rule_kind k);
const char *xl_rule_op_str(enum xl_rule_op op);
const char *xl_rule_severity_str(enum xl_rule_severity s);

/* The key table of one rule (for documentation: xl_cfg_doc). */
extern const struct xl_cfg_key xl_rule_keys[];

#endif
