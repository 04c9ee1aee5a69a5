/* Unit tests: the per-kind consumers (src/server/consumers.c) with fake
 * commit functions: parts of a batch stored in parallel, group commit of
 * what queued up, a full queue refusing the whole batch (and nothing
 * queued), a slow kind not holding up another, a failed group retried part
 * by part, the counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "server/consumers.h"

#define BAD_PART 13 /* nrec that makes a fake commit fail */

/* A fake store: counts calls and group sizes; can be made to wait at a
 * gate, and fails any group holding a part of BAD_PART records. */
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_closed;
    int waiting; /* commits waiting at the gate */
    int calls;
    size_t groups[64];
    int active, max_active; /* commits running at once, over all fakes */
};

static struct fake fakes[XL_KIND_COUNT];
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static int all_active, all_max_active;

static xl_rc fake_commit(void *ctx, struct xl_part *const *parts, size_t n, struct xl_err *err)
{
    struct fake *f = ctx;
    bool bad = false;

    pthread_mutex_lock(&all_mu);
    if (++all_active > all_max_active)
        all_max_active = all_active;
    pthread_mutex_unlock(&all_mu);
    pthread_mutex_lock(&f->mu);
    if (f->calls < 64)
        f->groups[f->calls] = n;
    f->calls++;
    f->waiting++;
    pthread_cond_broadcast(&f->cv);
    while (f->gate_closed)
        pthread_cond_wait(&f->cv, &f->mu);
    f->waiting--;
    pthread_mutex_unlock(&f->mu);
    /* Long enough that two kinds' commits overlap when run in parallel. */
    nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    pthread_mutex_lock(&all_mu);
    all_active--;
    pthread_mutex_unlock(&all_mu);
    for (size_t i = 0; i < n; i++)
        bad |= parts[i]->nrec == BAD_PART;
    return bad ? xl_err_set(err, XL_EIO, "a bad part") : XL_OK;
}

static void gate(enum xl_kind k, bool closed)
{
    pthread_mutex_lock(&fakes[k].mu);
    fakes[k].gate_closed = closed;
    pthread_cond_broadcast(&fakes[k].cv);
    pthread_mutex_unlock(&fakes[k].mu);
}

/* Wait until n commits of kind k wait at its gate. */
static void wait_at_gate(enum xl_kind k, int n)
{
    pthread_mutex_lock(&fakes[k].mu);
    while (fakes[k].waiting < n)
        pthread_cond_wait(&fakes[k].cv, &fakes[k].mu);
    pthread_mutex_unlock(&fakes[k].mu);
}

static struct xl_consumers *start(size_t queue_max)
{
    struct xl_consumer_def defs[XL_KIND_COUNT];
    static const char *const names[XL_KIND_COUNT] = {"metrics", "logs", "checks", "events"};
    struct xl_consumers *cs;
    struct xl_err err;

    all_active = all_max_active = 0;
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        memset(&fakes[k], 0, sizeof(fakes[k]));
        pthread_mutex_init(&fakes[k].mu, NULL);
        pthread_cond_init(&fakes[k].cv, NULL);
        defs[k] = (struct xl_consumer_def){names[k], fake_commit, &fakes[k], queue_max, 1000};
    }
    if (xl_consumers_start(defs, &cs, &err) != XL_OK)
        fail_msg("start: %s", err.msg);
    return cs;
}

static void stop(struct xl_consumers *cs)
{
    xl_consumers_stop(cs);
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        pthread_mutex_destroy(&fakes[k].mu);
        pthread_cond_destroy(&fakes[k].cv);
    }
}

static struct xl_part part(enum xl_kind k, size_t nrec)
{
    return (struct xl_part){.kind = k, .nrec = nrec};
}

/* One ingest request on its own thread. */
struct request {
    struct xl_consumers *cs;
    struct xl_part parts[XL_KIND_COUNT];
    size_t n;
    xl_rc rc;
    pthread_t th;
};

static void *request_main(void *arg)
{
    struct request *r = arg;
    struct xl_err err;

    r->rc = xl_consumers_store(r->cs, r->parts, r->n, &err);
    return NULL;
}

static void request_start(struct request *r, struct xl_consumers *cs, enum xl_kind k, size_t nrec)
{
    memset(r, 0, sizeof(*r));
    r->cs = cs;
    r->parts[0] = part(k, nrec);
    r->n = 1;
    pthread_create(&r->th, NULL, request_main, r);
}

static void test_parts_in_parallel(void **state)
{
    struct xl_consumers *cs = start(4);
    struct xl_part p[4] = {part(XL_KIND_METRIC, 5), part(XL_KIND_LOG, 2), part(XL_KIND_CHECK, 1),
                           part(XL_KIND_EVENT, 3)};
    struct xl_consumer_stats st[XL_KIND_COUNT];
    struct xl_err err;

    assert_int_equal(xl_consumers_store(cs, p, 4, &err), XL_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(p[i].rc, XL_OK);
    /* Each commit sleeps 50 ms; they ran side by side. */
    assert_true(all_max_active >= 2);
    xl_consumers_get_stats(cs, st);
    assert_string_equal(st[XL_KIND_LOG].name, "logs");
    assert_int_equal(st[XL_KIND_METRIC].parts, 1);
    assert_int_equal(st[XL_KIND_METRIC].records, 5);
    assert_int_equal(st[XL_KIND_EVENT].records, 3);
    assert_int_equal(st[XL_KIND_CHECK].queued, 0);
    /* A repeated kind is a caller's mistake. */
    p[1].kind = XL_KIND_METRIC;
    assert_int_equal(xl_consumers_store(cs, p, 2, &err), XL_EINVAL);
    assert_int_equal(xl_consumers_store(cs, p, 0, &err), XL_OK);
    stop(cs);
}

/* What queues while a commit runs goes in the next one, together. */
static void test_group_commit(void **state)
{
    struct xl_consumers *cs = start(8);
    struct request r[4];

    gate(XL_KIND_LOG, true);
    request_start(&r[0], cs, XL_KIND_LOG, 1);
    wait_at_gate(XL_KIND_LOG, 1);
    for (int i = 1; i < 4; i++)
        request_start(&r[i], cs, XL_KIND_LOG, 1);
    /* Until the three are queued (the first is being stored). */
    for (;;) {
        struct xl_consumer_stats st[XL_KIND_COUNT];

        xl_consumers_get_stats(cs, st);
        if (st[XL_KIND_LOG].queued == 4)
            break;
        nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    gate(XL_KIND_LOG, false);
    for (int i = 0; i < 4; i++) {
        pthread_join(r[i].th, NULL);
        assert_int_equal(r[i].rc, XL_OK);
        assert_int_equal(r[i].parts[0].rc, XL_OK);
    }
    assert_int_equal(fakes[XL_KIND_LOG].calls, 2);
    assert_int_equal(fakes[XL_KIND_LOG].groups[0], 1);
    assert_int_equal(fakes[XL_KIND_LOG].groups[1], 3);
    stop(cs);
}

/* A consumer that is stuck: its queue fills and refuses more, whole
 * batches are refused without queueing any part, and the other kinds go
 * on. */
static void test_full_queue_and_slow_kind(void **state)
{
    struct xl_consumers *cs = start(1);
    struct xl_part mixed[2] = {part(XL_KIND_METRIC, 1), part(XL_KIND_EVENT, 1)};
    struct xl_part ev = part(XL_KIND_EVENT, 1), m = part(XL_KIND_METRIC, 1);
    struct xl_consumer_stats st[XL_KIND_COUNT];
    struct request slow;
    struct xl_err err = {0};

    gate(XL_KIND_EVENT, true);
    request_start(&slow, cs, XL_KIND_EVENT, 1);
    wait_at_gate(XL_KIND_EVENT, 1);
    /* The event queue is full: refused at once. */
    assert_int_equal(xl_consumers_store(cs, &ev, 1, &err), XL_EFULL);
    assert_non_null(strstr(err.msg, "the events consumer has 1 batches queued"));
    /* A batch with metrics and events: refused whole, no metric stored. */
    assert_int_equal(xl_consumers_store(cs, mixed, 2, &err), XL_EFULL);
    assert_int_equal(fakes[XL_KIND_METRIC].calls, 0);
    /* Metrics alone are stored while events are stuck. */
    assert_int_equal(xl_consumers_store(cs, &m, 1, &err), XL_OK);
    assert_int_equal(m.rc, XL_OK);
    assert_int_equal(fakes[XL_KIND_METRIC].calls, 1);
    xl_consumers_get_stats(cs, st);
    assert_int_equal(st[XL_KIND_EVENT].busy, 2);
    assert_int_equal(st[XL_KIND_EVENT].queued, 1);
    assert_int_equal(st[XL_KIND_METRIC].busy, 0);
    gate(XL_KIND_EVENT, false);
    pthread_join(slow.th, NULL);
    assert_int_equal(slow.rc, XL_OK);
    /* Room again. */
    assert_int_equal(xl_consumers_store(cs, mixed, 2, &err), XL_OK);
    stop(cs);
}

/* A failed group is tried again part by part: only the bad part fails. */
static void test_failed_group_split(void **state)
{
    struct xl_consumers *cs = start(8);
    struct xl_consumer_stats st[XL_KIND_COUNT];
    struct request r[4];

    gate(XL_KIND_CHECK, true);
    request_start(&r[0], cs, XL_KIND_CHECK, 1);
    wait_at_gate(XL_KIND_CHECK, 1);
    request_start(&r[1], cs, XL_KIND_CHECK, 2);
    request_start(&r[2], cs, XL_KIND_CHECK, BAD_PART);
    request_start(&r[3], cs, XL_KIND_CHECK, 4);
    for (;;) {
        xl_consumers_get_stats(cs, st);
        if (st[XL_KIND_CHECK].queued == 4)
            break;
        nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    gate(XL_KIND_CHECK, false);
    for (int i = 0; i < 4; i++) {
        pthread_join(r[i].th, NULL);
        assert_int_equal(r[i].rc, XL_OK);
        assert_int_equal(r[i].parts[0].rc, i == 2 ? XL_EIO : XL_OK);
    }
    assert_non_null(strstr(r[2].parts[0].err.msg, "a bad part"));
    /* The first alone, the group of three, then each of the three. */
    assert_int_equal(fakes[XL_KIND_CHECK].calls, 5);
    xl_consumers_get_stats(cs, st);
    assert_int_equal(st[XL_KIND_CHECK].parts, 4);
    assert_int_equal(st[XL_KIND_CHECK].records, 1 + 2 + BAD_PART + 4);
    assert_int_equal(st[XL_KIND_CHECK].errors, 1);
    assert_int_equal(st[XL_KIND_CHECK].commits, 5);
    stop(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_in_parallel),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_full_queue_and_slow_kind),
        cmocka_unit_test(test_failed_group_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
