/* Unit tests: the stored seqs of an agent (src/server/seqset.c): floor,
 * runs, busy marks, the run limit, text form, and a random comparison with
 * a plain array of flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "server/seqset.h"

/* The runs as text, for compact assertions: "floor|lo-hi,lo-hi". */
static const char *show(const struct xl_seqset *s)
{
    static char out[4096];
    struct xl_buf b;

    xl_buf_init(&b, 1 << 20);
    if (xl_seqset_format(s, &b) != XL_OK)
        fail_msg("format failed");
    snprintf(out, sizeof(out), "%llu|%s", (unsigned long long)s->floor, b.data ? b.data : "");
    xl_buf_cleanup(&b);
    return out;
}

static void add(struct xl_seqset *s, uint64_t seq)
{
    bool changed;

    assert_int_equal(xl_seqset_add(s, seq, &changed), XL_OK);
}

/* Sorted, apart, above the floor: what every operation must keep. */
static void check_invariants(const struct xl_seqset *s)
{
    uint64_t low = s->floor ? s->floor : 1;

    for (size_t i = 0; i < s->nruns; i++) {
        if (s->runs[i].lo > s->runs[i].hi)
            fail_msg("run %zu: %llu > %llu", i, (unsigned long long)s->runs[i].lo,
                     (unsigned long long)s->runs[i].hi);
        if (i == 0 && s->runs[i].lo <= low)
            fail_msg("run 0 starts at %llu, not above the floor %llu",
                     (unsigned long long)s->runs[i].lo, (unsigned long long)s->floor);
        if (i > 0 && s->runs[i].lo <= s->runs[i - 1].hi + 1)
            fail_msg("runs %zu and %zu touch or overlap", i - 1, i);
    }
    if (s->nruns > XL_SEQSET_MAX_RUNS)
        fail_msg("%zu runs, over the limit", s->nruns);
}

static void test_in_order_is_one_number(void **state)
{
    struct xl_seqset s;
    enum xl_seq_state st;

    xl_seqset_init(&s);
    assert_int_equal(xl_seqset_state(&s, 1), XL_SEQ_NEW);
    for (uint64_t q = 1; q <= 1000; q++) {
        assert_int_equal(xl_seqset_begin(&s, q, &st), XL_OK);
        assert_int_equal(st, XL_SEQ_NEW);
        assert_int_equal(xl_seqset_state(&s, q), XL_SEQ_BUSY);
        assert_true(xl_seqset_end(&s, q, true));
        assert_int_equal(xl_seqset_state(&s, q), XL_SEQ_DONE);
    }
    assert_string_equal(show(&s), "1001|");
    assert_int_equal(s.nbusy, 0);
    assert_int_equal(xl_seqset_state(&s, 1001), XL_SEQ_NEW);
    xl_seqset_cleanup(&s);
}

static void test_out_of_order_and_gaps(void **state)
{
    struct xl_seqset s;

    xl_seqset_init(&s);
    add(&s, 3);
    add(&s, 5);
    assert_string_equal(show(&s), "0|3-3,5-5");
    add(&s, 4);
    assert_string_equal(show(&s), "0|3-5");
    add(&s, 1);
    assert_string_equal(show(&s), "2|3-5");
    assert_int_equal(xl_seqset_state(&s, 2), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_state(&s, 4), XL_SEQ_DONE);
    add(&s, 2);
    assert_string_equal(show(&s), "6|");
    /* an agent restart skips the rest of its reserved block: one run */
    for (uint64_t q = 1001; q <= 1100; q++)
        add(&s, q);
    assert_string_equal(show(&s), "6|1001-1100");
    add(&s, 1050); /* again: nothing changes */
    assert_string_equal(show(&s), "6|1001-1100");
    assert_int_equal(xl_seqset_state(&s, 7), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_state(&s, 1000), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_state(&s, 1101), XL_SEQ_NEW);
    check_invariants(&s);
    xl_seqset_cleanup(&s);
}

static void test_seq_zero_is_not_tracked(void **state)
{
    struct xl_seqset s;
    enum xl_seq_state st;

    xl_seqset_init(&s);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xl_seqset_begin(&s, 0, &st), XL_OK);
        assert_int_equal(st, XL_SEQ_NEW);
        assert_int_equal(s.nbusy, 0);
        assert_false(xl_seqset_end(&s, 0, true));
    }
    add(&s, 1);
    assert_string_equal(show(&s), "2|");
    assert_int_equal(xl_seqset_state(&s, 0), XL_SEQ_NEW);
    xl_seqset_cleanup(&s);
}

static void test_floor(void **state)
{
    struct xl_seqset s;

    xl_seqset_init(&s);
    add(&s, 10);
    add(&s, 11);
    add(&s, 12);
    add(&s, 20);
    add(&s, 30);
    assert_false(xl_seqset_raise_floor(&s, 0));
    /* a floor inside a run takes the run */
    assert_true(xl_seqset_raise_floor(&s, 11));
    assert_string_equal(show(&s), "13|20-20,30-30");
    assert_int_equal(xl_seqset_state(&s, 5), XL_SEQ_DONE);
    assert_int_equal(xl_seqset_state(&s, 13), XL_SEQ_NEW);
    /* a floor just below a run folds it */
    assert_true(xl_seqset_raise_floor(&s, 20));
    assert_string_equal(show(&s), "21|30-30");
    /* lower floors are ignored */
    assert_false(xl_seqset_raise_floor(&s, 15));
    assert_string_equal(show(&s), "21|30-30");
    /* a floor above every run drops them */
    assert_true(xl_seqset_raise_floor(&s, 40));
    assert_string_equal(show(&s), "40|");
    /* below the floor is done, stored or not */
    add(&s, 39);
    assert_string_equal(show(&s), "40|");
    assert_int_equal(xl_seqset_state(&s, 39), XL_SEQ_DONE);
    xl_seqset_cleanup(&s);
}

static void test_busy(void **state)
{
    struct xl_seqset s;
    enum xl_seq_state st;

    xl_seqset_init(&s);
    assert_int_equal(xl_seqset_begin(&s, 7, &st), XL_OK);
    assert_int_equal(st, XL_SEQ_NEW);
    /* a second copy while the first is being stored */
    assert_int_equal(xl_seqset_begin(&s, 7, &st), XL_OK);
    assert_int_equal(st, XL_SEQ_BUSY);
    /* the first copy failed: the next one is new again */
    assert_false(xl_seqset_end(&s, 7, false));
    assert_int_equal(xl_seqset_state(&s, 7), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_begin(&s, 7, &st), XL_OK);
    assert_int_equal(st, XL_SEQ_NEW);
    /* the agent gave up on 7 and promised a floor above it meanwhile */
    assert_true(xl_seqset_raise_floor(&s, 8));
    assert_false(xl_seqset_end(&s, 7, true));
    assert_string_equal(show(&s), "8|");
    assert_int_equal(s.nbusy, 0);
    /* at most XL_SEQSET_MAX_BUSY at once */
    for (uint64_t q = 100; q < 100 + XL_SEQSET_MAX_BUSY; q++) {
        assert_int_equal(xl_seqset_begin(&s, q, &st), XL_OK);
        assert_int_equal(st, XL_SEQ_NEW);
    }
    assert_int_equal(xl_seqset_begin(&s, 99, &st), XL_EFULL);
    assert_int_equal(xl_seqset_state(&s, 99), XL_SEQ_NEW);
    assert_false(xl_seqset_end(&s, 100, false));
    assert_int_equal(xl_seqset_begin(&s, 99, &st), XL_OK);
    xl_seqset_cleanup(&s);
}

static void test_run_limit_forgets_the_lowest(void **state)
{
    struct xl_seqset s;

    xl_seqset_init(&s);
    /* 3, 5, 7, ...: every one a run of its own */
    for (uint64_t i = 0; i < XL_SEQSET_MAX_RUNS + 10; i++)
        add(&s, 3 + 2 * i);
    assert_int_equal(s.nruns, XL_SEQSET_MAX_RUNS);
    check_invariants(&s);
    /* the ten lowest are forgotten: new again (stored again if resent) */
    assert_int_equal(xl_seqset_state(&s, 3), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_state(&s, 3 + 2 * 9), XL_SEQ_NEW);
    assert_int_equal(xl_seqset_state(&s, 3 + 2 * 10), XL_SEQ_DONE);
    assert_int_equal(xl_seqset_state(&s, 3 + 2 * (XL_SEQSET_MAX_RUNS + 9)), XL_SEQ_DONE);
    /* a seq below every run at the limit is forgotten at once */
    add(&s, 2 + 2 * 5);
    assert_int_equal(s.nruns, XL_SEQSET_MAX_RUNS);
    assert_int_equal(xl_seqset_state(&s, 2 + 2 * 5), XL_SEQ_NEW);
    xl_seqset_cleanup(&s);
}

static void test_text_form(void **state)
{
    static const struct {
        uint64_t floor;
        const char *text, *want; /* want NULL: XL_EPARSE */
    } cases[] = {
        {0, "", "0|"},
        {7, "", "7|"},
        {7, "9-12,20-20", "7|9-12,20-20"},
        {7, "8-12,20-20", "7|8-12,20-20"},
        {7, "7-12,20-20", "13|20-20"},   /* starts at the floor: folded */
        {7, "3-12,20-20", "13|20-20"},   /* reaches below the floor */
        {7, "1-2,4-5,30-40", "7|30-40"}, /* wholly below: dropped */
        {0, "1-5,7-7", "6|7-7"},
        {0, "2-5", "0|2-5"},
        {0, "x", NULL},
        {0, "1-2,", NULL},
        {0, ",1-2", NULL},
        {0, "5-3", NULL},
        {0, "3-4,1-2", NULL}, /* not ascending */
        {0, "3-4,5-6", NULL}, /* touching: never written so */
        {0, "3-4;7-8", NULL},
        {0, "3", NULL},
        {0, "1-18446744073709551615", NULL},
        {0, "99999999999999999999-1", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_seqset s;
        struct xl_err err = {0};
        xl_rc rc;

        xl_seqset_init(&s);
        add(&s, 1000); /* replaced by the load */
        rc = xl_seqset_load(&s, cases[i].floor, cases[i].text, &err);
        if (cases[i].want) {
            if (rc != XL_OK)
                fail_msg("case %zu '%s': %s", i, cases[i].text, err.msg);
            if (strcmp(show(&s), cases[i].want) != 0)
                fail_msg("case %zu '%s': got %s, want %s", i, cases[i].text, show(&s),
                         cases[i].want);
            check_invariants(&s);
        } else {
            if (rc != XL_EPARSE || !strstr(err.msg, "seq runs: byte "))
                fail_msg("case %zu '%s': rc %d '%s', want a parse error", i, cases[i].text, rc,
                         err.msg);
            assert_int_equal(s.nruns, 0);
        }
        xl_seqset_cleanup(&s);
    }
}

/* Random adds and floors against an array of flags; the text form loads
 * back to the same set. */
static void test_random_against_flags(void **state)
{
    enum { N = 400 };
    unsigned seed = 12345;

    for (int round = 0; round < 200; round++) {
        bool done[N + 2] = {false};
        uint64_t floor = 0;
        struct xl_seqset s, back;
        struct xl_buf b;
        struct xl_err err;

        xl_seqset_init(&s);
        xl_seqset_init(&back);
        for (int op = 0; op < 300; op++) {
            uint64_t q = (uint64_t)(rand_r(&seed) % N) + 1;

            if (rand_r(&seed) % 20 == 0) {
                xl_seqset_raise_floor(&s, q);
                if (q > floor)
                    floor = q;
            } else {
                add(&s, q);
                done[q] = true;
            }
            check_invariants(&s);
        }
        for (uint64_t q = 1; q <= N + 1; q++) {
            bool want = q < floor || done[q];
            if ((xl_seqset_state(&s, q) == XL_SEQ_DONE) != want)
                fail_msg("round %d seq %llu: %s, want %s", round, (unsigned long long)q,
                         want ? "new" : "done", want ? "done" : "new");
        }
        xl_buf_init(&b, 1 << 20);
        assert_int_equal(xl_seqset_format(&s, &b), XL_OK);
        assert_int_equal(xl_seqset_load(&back, s.floor, b.data ? b.data : "", &err), XL_OK);
        assert_string_equal(show(&back), show(&s));
        xl_buf_cleanup(&b);
        xl_seqset_cleanup(&back);
        xl_seqset_cleanup(&s);
    }
}

static void test_oom(void **state)
{
    struct xl_seqset s;
    enum xl_seq_state st;
    bool changed;

    xl_seqset_init(&s);
    xl_alloc_fail_after(0);
    assert_int_equal(xl_seqset_add(&s, 5, &changed), XL_ENOMEM);
    assert_false(changed);
    assert_int_equal(xl_seqset_begin(&s, 5, &st), XL_ENOMEM);
    assert_int_equal(xl_seqset_state(&s, 5), XL_SEQ_NEW);
    /* no allocation needed: folding into the floor */
    assert_int_equal(xl_seqset_add(&s, 1, &changed), XL_OK);
    assert_true(changed);
    /* end() of a seq whose run cannot be made: simply not recorded */
    assert_false(xl_seqset_end(&s, 9, true));
    assert_int_equal(xl_seqset_state(&s, 9), XL_SEQ_NEW);
    xl_alloc_fail_after(-1);
    assert_string_equal(show(&s), "2|");
    xl_seqset_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_is_one_number),
        cmocka_unit_test(test_out_of_order_and_gaps),
        cmocka_unit_test(test_seq_zero_is_not_tracked),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_run_limit_forgets_the_lowest),
        cmocka_unit_test(test_text_form),
        cmocka_unit_test(test_random_against_flags),
        cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
