/* Unit tests: the alert state machine (src/server/rules/alert.c), driven
 * by table-driven sequences of (t, value) through a rule's comparison
 * (xl_rule_cond) with the expected transition at each step: for,
 * recovery thresholds, keep_firing_for, flapping, restore after a
 * restart; and the fingerprint's stability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/rules/alert.h"
#include "server/rules/rule.h"

#define T0 ((int64_t)1763715000000)
/* FNV-1a 64 of alertname=high_cpu,host=web1,role=web,team=ops, checked
 * against an independent implementation (Python). */
#define PINNED_FP 0x77188d3612f823c1ULL
#define S(x) ((int64_t)(x) * 1000)

enum { NONE = XL_ALERT_T_NONE, PEND = XL_ALERT_T_PENDING, FIRE = XL_ALERT_T_FIRING,
       RES = XL_ALERT_T_RESOLVED, CANC = XL_ALERT_T_CANCELLED };

struct step {
    int64_t t; /* seconds after T0 */
    double v;
    int want;       /* transition */
    int state;      /* state after */
};

struct seq {
    const char *what;
    enum xl_rule_op op;
    double threshold;
    bool has_recover;
    double recover;
    int64_t for_s, keep_s;
    struct step steps[16];
    size_t n;
};

#define P XL_ALERT_PENDING
#define F XL_ALERT_FIRING
#define I XL_ALERT_INACTIVE
#define R XL_ALERT_RESOLVED

static const struct seq seqs[] = {
    {"for: fires after the condition held 2m", XL_RULE_GT, 0.9, false, 0, 120, 0,
     {{0, 0.5, NONE, I}, {10, 0.95, PEND, P}, {70, 0.95, NONE, P}, {129, 0.99, NONE, P},
      {130, 0.99, FIRE, F}, {140, 0.99, NONE, F}, {150, 0.5, RES, R}, {160, 0.5, NONE, R}},
     8},
    {"for 0 fires on the first step", XL_RULE_GT, 0.9, false, 0, 0, 0,
     {{0, 0.95, FIRE, F}, {10, 0.95, NONE, F}, {20, 0.1, RES, R}, {30, 0.95, FIRE, F}},
     4},
    {"pending that stops holding is cancelled, never notified", XL_RULE_GT, 0.9, false, 0, 60,
     0,
     {{0, 0.95, PEND, P}, {30, 0.5, CANC, I}, {40, 0.5, NONE, I}, {50, 0.95, PEND, P},
      {100, 0.95, NONE, P}, {110, 0.95, FIRE, F}},
     6},
    {"flapping across the threshold within for never fires", XL_RULE_GT, 0.9, false, 0, 60, 0,
     {{0, 0.95, PEND, P}, {15, 0.85, CANC, I}, {30, 0.95, PEND, P}, {45, 0.85, CANC, I},
      {60, 0.95, PEND, P}, {75, 0.85, CANC, I}, {90, 0.95, PEND, P}, {105, 0.85, CANC, I},
      {120, 0.95, PEND, P}, {135, 0.85, CANC, I}},
     10},
    {"hysteresis: oscillating between recover and threshold stays one alert", XL_RULE_GT, 0.9,
     true, 0.8, 0, 0,
     {{0, 0.95, FIRE, F}, {10, 0.85, NONE, F}, {20, 0.95, NONE, F}, {30, 0.85, NONE, F},
      {40, 0.91, NONE, F}, {50, 0.81, NONE, F}, {60, 0.8, NONE, F}, {70, 0.79, RES, R},
      {80, 0.85, NONE, R}, {90, 0.95, FIRE, F}},
     10},
    {"without hysteresis the same series resolves and fires again", XL_RULE_GT, 0.9, false, 0,
     0, 0,
     {{0, 0.95, FIRE, F}, {10, 0.85, RES, R}, {20, 0.95, FIRE, F}, {30, 0.85, RES, R}},
     4},
    {"keep_firing_for: resolves only 60s after the condition last held", XL_RULE_GT, 0.9, false,
     0, 0, 60,
     {{0, 0.95, FIRE, F}, {10, 0.5, NONE, F}, {50, 0.5, NONE, F}, {60, 0.95, NONE, F},
      {100, 0.5, NONE, F}, {119, 0.5, NONE, F}, {120, 0.5, RES, R}},
     7},
    {"keep_firing_for and hysteresis: both needed", XL_RULE_GT, 0.9, true, 0.8, 0, 30,
     {{0, 0.95, FIRE, F}, {10, 0.85, NONE, F}, {40, 0.85, NONE, F}, {50, 0.7, RES, R}},
     4},
    {"keep_firing_for counts from the last true, recovery seen early", XL_RULE_GT, 0.9, true,
     0.8, 0, 30,
     {{0, 0.95, FIRE, F}, {10, 0.7, NONE, F}, {20, 0.95, NONE, F}, {35, 0.7, NONE, F},
      {49, 0.85, NONE, F}, {50, 0.7, RES, R}},
     6},
    {"recover_above with op <", XL_RULE_LT, 10, true, 20, 30, 0,
     {{0, 5, PEND, P}, {30, 5, FIRE, F}, {40, 15, NONE, F}, {50, 9, NONE, F}, {60, 19, NONE, F},
      {70, 21, RES, R}},
     6},
    {"NaN: not the condition, and recovered", XL_RULE_GE, 1, false, 0, 0, 0,
     {{0, 1, FIRE, F}, {10, NAN, RES, R}},
     2},
    {"pending across a gap in evaluation fires at the next step", XL_RULE_GE, 1, false, 0, 60, 0,
     {{0, 3, PEND, P}, {600, 3, FIRE, F}},
     2},
    {"== and !=", XL_RULE_EQ, 0, false, 0, 10, 0,
     {{0, 1, NONE, I}, {10, 0, PEND, P}, {20, 0, FIRE, F}, {30, 1, RES, R}},
     4},
};

static void run_seq(const struct seq *q)
{
    struct xl_rule r;
    struct xl_alert a;
    struct xl_alert_timing t = {.for_ms = S(q->for_s), .keep_firing_for_ms = S(q->keep_s)};

    memset(&r, 0, sizeof(r));
    r.op = q->op;
    r.threshold = q->threshold;
    r.has_recover = q->has_recover;
    r.recover = q->recover;
    xl_alert_init(&a, 42);
    for (size_t i = 0; i < q->n; i++) {
        const struct step *s = &q->steps[i];
        bool cond, rec;
        enum xl_alert_transition tr;

        xl_rule_cond(&r, s->v, &cond, &rec);
        tr = xl_alert_step(&a, &t, T0 + S(s->t), cond, rec, s->v);
        if ((int)tr != s->want || a.state != s->state)
            fail_msg("%s: step %zu (t=%llds v=%g): got %s/%s, want %s/%s", q->what, i,
                     (long long)s->t, s->v, xl_alert_transition_str(tr),
                     xl_alert_state_str(a.state), xl_alert_transition_str(s->want),
                     xl_alert_state_str(s->state));
        if (!isnan(s->v))
            assert_true(a.last_value == s->v);
    }
}

static void test_sequences(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seqs) / sizeof(*seqs); i++)
        run_seq(&seqs[i]);
}

static void test_timestamps(void **state)
{
    struct xl_alert a;
    struct xl_alert_timing t = {.for_ms = S(60), .keep_firing_for_ms = 0};

    (void)state;
    xl_alert_init(&a, 7);
    assert_int_equal(xl_alert_step(&a, &t, T0, true, false, 2), XL_ALERT_T_PENDING);
    assert_int_equal(a.active_since, T0);
    assert_int_equal(a.last_true, T0);
    assert_int_equal(xl_alert_step(&a, &t, T0 + S(60), true, false, 3), XL_ALERT_T_FIRING);
    assert_int_equal(a.fired_at, T0 + S(60));
    assert_int_equal(a.active_since, T0);
    assert_int_equal(xl_alert_step(&a, &t, T0 + S(90), false, true, 0), XL_ALERT_T_RESOLVED);
    assert_int_equal(a.resolved_at, T0 + S(90));
    assert_int_equal(a.last_true, T0 + S(60));
    assert_true(a.last_value == 0);
    assert_int_equal(a.fingerprint, 7);
    /* A new episode starts its own timers. */
    assert_int_equal(xl_alert_step(&a, &t, T0 + S(100), true, false, 5), XL_ALERT_T_PENDING);
    assert_int_equal(a.active_since, T0 + S(100));
    assert_int_equal(a.fired_at, 0);
}

/* The state is a plain struct: a copy (as stored and loaded after a
 * restart) keeps a pending timer. */
static void test_restore(void **state)
{
    struct xl_alert a, b;
    struct xl_alert_timing t = {.for_ms = S(120)};
    unsigned char bytes[sizeof(a)];

    (void)state;
    xl_alert_init(&a, 99);
    assert_int_equal(xl_alert_step(&a, &t, T0, true, false, 1), XL_ALERT_T_PENDING);
    assert_int_equal(xl_alert_step(&a, &t, T0 + S(60), true, false, 1), XL_ALERT_T_NONE);
    memcpy(bytes, &a, sizeof(a));
    memcpy(&b, bytes, sizeof(b));
    assert_int_equal(b.state, XL_ALERT_PENDING);
    assert_int_equal(xl_alert_step(&b, &t, T0 + S(119), true, false, 1), XL_ALERT_T_NONE);
    assert_int_equal(xl_alert_step(&b, &t, T0 + S(120), true, false, 1), XL_ALERT_T_FIRING);
    /* A clock behind the stored times counts as no time passed. */
    xl_alert_init(&a, 1);
    a.state = XL_ALERT_PENDING;
    a.active_since = T0 + S(1000);
    assert_int_equal(xl_alert_step(&a, &t, T0, true, false, 1), XL_ALERT_T_NONE);
    /* A corrupt state resets to inactive. */
    a.state = 17;
    assert_int_equal(xl_alert_step(&a, &t, T0, true, false, 1), XL_ALERT_T_NONE);
    assert_int_equal(a.state, XL_ALERT_INACTIVE);
}

static void test_fingerprint(void **state)
{
    const struct xl_label g1[] = {{"host", "web1"}, {"role", "web"}};
    const struct xl_label g2[] = {{"role", "web"}, {"host", "web1"}};
    const struct xl_label g3[] = {{"host", "web2"}, {"role", "web"}};
    const struct xl_label ex[] = {{"team", "ops"}};
    const struct xl_label ex_role[] = {{"role", "web"}, {"team", "ops"}};
    const struct xl_label sneaky[] = {{"alertname", "other"}};
    const struct xl_label split1[] = {{"a", "bc"}};
    const struct xl_label split2[] = {{"ab", "c"}};
    uint64_t a, b, c;

    (void)state;
    /* Known values: changing the function breaks every stored alert. */
    assert_int_equal(xl_fnv1a64(XL_FNV64_BASIS, "", 0), 0xcbf29ce484222325ULL);
    assert_int_equal(xl_fnv1a64(XL_FNV64_BASIS, "a", 1), 0xaf63dc4c8601ec8cULL);
    assert_int_equal(xl_fnv1a64(XL_FNV64_BASIS, "foobar", 6), 0x85944171f73967e8ULL);
    assert_int_equal(xl_alert_fingerprint("high_cpu", NULL, 0, NULL, 0, &a), XL_OK);
    /* "alertname" 0xff "high_cpu" 0xff */
    b = XL_FNV64_BASIS;
    b = xl_fnv1a64(b, "alertname\xffhigh_cpu\xff", sizeof("alertname\xffhigh_cpu\xff") - 1);
    assert_int_equal(a, b);

    /* Order of the labels does not matter. */
    assert_int_equal(xl_alert_fingerprint("high_cpu", g1, 2, ex, 1, &a), XL_OK);
    assert_int_equal(xl_alert_fingerprint("high_cpu", g2, 2, ex, 1, &b), XL_OK);
    assert_int_equal(a, b);
    /* Same labels from group or rule: the same set, the same alert. */
    assert_int_equal(xl_alert_fingerprint("high_cpu", g1, 2, ex_role, 2, &c), XL_OK);
    assert_int_equal(a, c);
    /* Everything else differs. */
    assert_int_equal(xl_alert_fingerprint("high_cpu", g3, 2, ex, 1, &c), XL_OK);
    assert_true(a != c);
    assert_int_equal(xl_alert_fingerprint("high_mem", g1, 2, ex, 1, &c), XL_OK);
    assert_true(a != c);
    assert_int_equal(xl_alert_fingerprint("high_cpu", g1, 2, NULL, 0, &c), XL_OK);
    assert_true(a != c);
    assert_int_equal(xl_alert_fingerprint("r", split1, 1, NULL, 0, &b), XL_OK);
    assert_int_equal(xl_alert_fingerprint("r", split2, 1, NULL, 0, &c), XL_OK);
    assert_true(b != c);
    /* alertname stays the rule's name. */
    assert_int_equal(xl_alert_fingerprint("r", sneaky, 1, NULL, 0, &b), XL_OK);
    assert_int_equal(xl_alert_fingerprint("r", NULL, 0, NULL, 0, &c), XL_OK);
    assert_int_equal(b, c);
    /* The pinned value for one full set (stable across builds). */
    assert_int_equal(xl_alert_fingerprint("high_cpu", g1, 2, ex, 1, &a), XL_OK);
#define FULL "alertname\xffhigh_cpu\xffhost\xffweb1\xffrole\xffweb\xffteam\xffops\xff"
    b = xl_fnv1a64(XL_FNV64_BASIS, FULL, sizeof(FULL) - 1);
    /* And the number itself, so a change of the byte layout shows too. */
    assert_int_equal(a, PINNED_FP);
    assert_int_equal(a, b);
}

static void test_fingerprint_too_many(void **state)
{
    static struct xl_label many[XL_ALERT_MAX_LABELS];
    static char names[XL_ALERT_MAX_LABELS][8];
    uint64_t fp;

    (void)state;
    for (int i = 0; i < XL_ALERT_MAX_LABELS; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        many[i] = (struct xl_label){names[i], "v"};
    }
    assert_int_equal(xl_alert_fingerprint("r", many, XL_ALERT_MAX_LABELS - 1, NULL, 0, &fp),
                     XL_OK);
    assert_int_equal(xl_alert_fingerprint("r", many, XL_ALERT_MAX_LABELS, NULL, 0, &fp),
                     XL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_fingerprint_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
