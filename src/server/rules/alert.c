/* xluo-server rules: the alert state machine and fingerprints (see
 * alert.h). */
#include "alert.h"

#include <string.h>

void xl_alert_init(struct xl_alert *a, uint64_t fp)
{
    memset(a, 0, sizeof(*a));
    a->fingerprint = fp;
    a->state = XL_ALERT_INACTIVE;
}

static int64_t since(int64_t now, int64_t then)
{
    return now > then ? now - then : 0;
}

enum xl_alert_transition xl_alert_step(struct xl_alert *a, const struct xl_alert_timing *t,
                                       int64_t now_ms, bool cond_active, bool recovered,
                                       double value)
{
    a->last_value = value;
    if (cond_active)
        a->last_true = now_ms;
    switch ((enum xl_alert_state)a->state) {
    case XL_ALERT_INACTIVE:
    case XL_ALERT_RESOLVED:
        if (!cond_active)
            return XL_ALERT_T_NONE;
        a->active_since = now_ms;
        a->fired_at = 0;
        if (t->for_ms <= 0) {
            a->state = XL_ALERT_FIRING;
            a->fired_at = now_ms;
            return XL_ALERT_T_FIRING;
        }
        a->state = XL_ALERT_PENDING;
        return XL_ALERT_T_PENDING;
    case XL_ALERT_PENDING:
        if (!cond_active) {
            a->state = XL_ALERT_INACTIVE;
            a->active_since = 0;
            return XL_ALERT_T_CANCELLED;
        }
        if (since(now_ms, a->active_since) < t->for_ms)
            return XL_ALERT_T_NONE;
        a->state = XL_ALERT_FIRING;
        a->fired_at = now_ms;
        return XL_ALERT_T_FIRING;
    case XL_ALERT_FIRING:
        if (cond_active || !recovered)
            return XL_ALERT_T_NONE;
        if (since(now_ms, a->last_true) < t->keep_firing_for_ms)
            return XL_ALERT_T_NONE;
        a->state = XL_ALERT_RESOLVED;
        a->resolved_at = now_ms;
        return XL_ALERT_T_RESOLVED;
    }
    /* A corrupt stored state: start over. */
    a->state = XL_ALERT_INACTIVE;
    a->active_since = a->fired_at = 0;
    return XL_ALERT_T_NONE;
}

const char *xl_alert_state_str(enum xl_alert_state s)
{
    switch (s) {
    case XL_ALERT_INACTIVE: return "inactive";
    case XL_ALERT_PENDING: return "pending";
    case XL_ALERT_FIRING: return "firing";
    case XL_ALERT_RESOLVED: return "resolved";
    }
    return "?";
}

const char *xl_alert_transition_str(enum xl_alert_transition t)
{
    switch (t) {
    case XL_ALERT_T_NONE: return "none";
    case XL_ALERT_T_PENDING: return "pending";
    case XL_ALERT_T_FIRING: return "firing";
    case XL_ALERT_T_RESOLVED: return "resolved";
    case XL_ALERT_T_CANCELLED: return "cancelled";
    }
    return "?";
}

uint64_t xl_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

xl_rc xl_alert_fingerprint(const char *rule, const struct xl_label *group, size_t ngroup,
                           const struct xl_label *extra, size_t nextra, uint64_t *out)
{
    struct xl_label all[XL_ALERT_MAX_LABELS];
    size_t n = 0;
    const unsigned char sep = 0xff;
    uint64_t h = XL_FNV64_BASIS;

    /* Later sources replace earlier names: alertname, group, extra. */
    const struct xl_label an = {"alertname", rule};
    const struct xl_label *src[3] = {&an, group, extra};
    size_t nsrc[3] = {1, ngroup, nextra};

    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < nsrc[s]; i++) {
            const struct xl_label *l = &src[s][i];
            size_t k;
            for (k = 0; k < n && strcmp(all[k].name, l->name) != 0; k++)
                ;
            if (k == n) {
                if (n == XL_ALERT_MAX_LABELS)
                    return XL_ETOOBIG;
                n++;
            }
            all[k] = *l;
        }
    }
    /* alertname was first and is replaced only if a label is named so;
     * keep it the rule's name whatever the labels say. */
    all[0].value = rule;
    /* Insertion sort: label sets are small. */
    for (size_t i = 1; i < n; i++) {
        struct xl_label x = all[i];
        size_t j = i;
        for (; j > 0 && strcmp(all[j - 1].name, x.name) > 0; j--)
            all[j] = all[j - 1];
        all[j] = x;
    }
    for (size_t i = 0; i < n; i++) {
        h = xl_fnv1a64(h, all[i].name, strlen(all[i].name));
        h = xl_fnv1a64(h, &sep, 1);
        h = xl_fnv1a64(h, all[i].value, strlen(all[i].value));
        h = xl_fnv1a64(h, &sep, 1);
    }
    *out = h;
    return XL_OK;
}
