/* xluo-server rules: the state of one alert and how it moves.
 *
 * An alert is one rule applied to one group (series, host, file, ...). It
 * is named by a fingerprint of its labels and moves
 *
 *   inactive --cond--> pending --cond held `for`--> firing
 *      ^                  |                            |
 *      +----- !cond ------+          recovered and `keep_firing_for`
 *                                     since cond last held
 *   resolved <-------------------------------------------+
 *   resolved --cond--> pending (a new episode)
 *
 * The caller evaluates the rule and passes two booleans: cond_active (the
 * firing condition holds now) and recovered (the recovery condition holds:
 * the value is past recover_below/recover_above when the rule has one,
 * else simply !cond_active; xl_rule_cond computes both). With `for` 0 the
 * alert fires on the first step the condition holds.
 *
 * Hysteresis: a firing alert whose value sits between the recovery
 * threshold and the firing threshold (cond false, recovered false) stays
 * firing, so a value oscillating there is one alert, not one per crossing.
 * A pending alert has no hysteresis: the first step without the condition
 * sends it back to inactive, so a value crossing back and forth within
 * `for` never fires.
 *
 * struct xl_alert is plain integers and a double: store it as it is and
 * restore it after a restart; a pending alert then keeps its timer. */
#ifndef XL_RULES_ALERT_H
#define XL_RULES_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metric.h"
#include "common/rc.h"

#define XL_ALERT_MAX_LABELS 128 /* labels in one fingerprint */

enum xl_alert_state {
    XL_ALERT_INACTIVE = 0,
    XL_ALERT_PENDING = 1,
    XL_ALERT_FIRING = 2,
    XL_ALERT_RESOLVED = 3,
};

/* What one step did. Notifications are due on FIRING and RESOLVED;
 * CANCELLED is a pending alert that went back to inactive (not notified). */
enum xl_alert_transition {
    XL_ALERT_T_NONE = 0,
    XL_ALERT_T_PENDING,
    XL_ALERT_T_FIRING,
    XL_ALERT_T_RESOLVED,
    XL_ALERT_T_CANCELLED,
};

/* The serialisable state. Times are ms since the epoch, 0 for never. */
struct xl_alert {
    uint64_t fingerprint;
    int32_t state;        /* enum xl_alert_state */
    int64_t active_since; /* the condition first held in this episode */
    int64_t fired_at;     /* the alert went firing in this episode */
    int64_t last_true;    /* the condition last held */
    int64_t resolved_at;  /* the last episode resolved */
    double last_value;    /* the value of the last step */
};

/* The rule's timing. */
struct xl_alert_timing {
    int64_t for_ms;             /* the condition must hold this long to fire */
    int64_t keep_firing_for_ms; /* stay firing this long after it last held */
};

/* An inactive alert named fp. */
void xl_alert_init(struct xl_alert *a, uint64_t fp);

/* Advance a by one evaluation at now_ms and return what changed. value
 * is recorded as last_value. Steps must come in time order; a clock that
 * went back (a restored state from a faster clock) counts as no time
 * passed. */
enum xl_alert_transition xl_alert_step(struct xl_alert *a, const struct xl_alert_timing *t,
                                       int64_t now_ms, bool cond_active, bool recovered,
                                       double value);

const char *xl_alert_state_str(enum xl_alert_state s);
const char *xl_alert_transition_str(enum xl_alert_transition t);

/* The fingerprint: FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), over the alert's labels sorted by name (byte order),
 * each written as name, 0xff, value, 0xff (0xff never occurs in UTF-8, so
 * no two label sets write the same bytes). The labels are
 * `alertname=<rule>`, then group (the series' or the `by` labels), then
 * the rule's own labels, a later one replacing an earlier one of the same
 * name (alertname always stays the rule's name). A fixed function of the labels: stable across restarts, hosts and
 * versions; never change it (stored alerts are found by it). XL_ETOOBIG
 * past XL_ALERT_MAX_LABELS labels. */
xl_rc xl_alert_fingerprint(const char *rule, const struct xl_label *group, size_t ngroup,
                           const struct xl_label *extra, size_t nextra, uint64_t *out);

/* FNV-1a 64 of n bytes continuing from h (start with XL_FNV64_BASIS). */
#define XL_FNV64_BASIS 0xcbf29ce484222325ULL
uint64_t xl_fnv1a64(uint64_t h, const void *p, size_t n);

#endif
