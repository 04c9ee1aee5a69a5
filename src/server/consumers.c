/* xluo-server: per-kind consumer threads with bounded queues (consumers.h).
 *
 * Locks: a consumer's mu guards its queue, pending count and stop flag;
 * xl_consumers_store takes the mus of the kinds it queues in ascending kind
 * order (consumer threads only ever hold their own). A ticket's mu guards
 * its count of parts not yet done. */
#include "consumers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

/* One request's wait for its parts. */
struct xl_ticket {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
};

struct consumer {
    struct xl_consumer_def def;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct xl_part *head, *tail;
    size_t pending; /* queued + being stored */
    bool stop;
    struct xl_part **group; /* queue_max slots, the thread's */
    _Atomic uint64_t parts, records, commits, errors, busy;
};

struct xl_consumers {
    struct consumer c[XL_KIND_COUNT];
};

static const char *const kind_names[XL_KIND_COUNT] = {"metric", "log", "check", "event"};

const char *xl_kind_name(enum xl_kind k)
{
    return (unsigned)k < XL_KIND_COUNT ? kind_names[k] : "?";
}

/* Mark p done; its ticket's waiter may return (and free p) from here on. */
static void part_done(struct xl_part *p)
{
    struct xl_ticket *t = p->ticket;

    pthread_mutex_lock(&t->mu);
    if (--t->pending == 0)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Commit a group; when it fails and holds several parts, each alone. */
static void commit_group(struct consumer *c, struct xl_part **g, size_t n)
{
    struct xl_err err = {0};
    uint64_t recs = 0, failed = 0;
    xl_rc rc;

    for (size_t i = 0; i < n; i++)
        recs += g[i]->nrec;
    rc = c->def.commit(c->def.ctx, g, n, &err);
    atomic_fetch_add(&c->commits, 1);
    if (rc == XL_OK || n == 1) {
        for (size_t i = 0; i < n; i++) {
            g[i]->rc = rc;
            g[i]->err = err;
        }
        failed = rc == XL_OK ? 0 : 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            xl_err_clear(&g[i]->err);
            g[i]->rc = c->def.commit(c->def.ctx, &g[i], 1, &g[i]->err);
            atomic_fetch_add(&c->commits, 1);
            failed += g[i]->rc != XL_OK;
        }
    }
    if (failed)
        xl_log_rl(XL_LOG_ERROR, 10, "consumers", "%s: %llu of %zu parts failed: %s", c->def.name,
                  (unsigned long long)failed, n, rc != XL_OK ? err.msg : g[0]->err.msg);
    atomic_fetch_add(&c->parts, n);
    atomic_fetch_add(&c->records, recs);
    atomic_fetch_add(&c->errors, failed);
}

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        size_t n = 0, recs = 0;

        while (!c->head && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->head)
            break;
        /* Everything queued, up to the group's size; at least one part. */
        while (c->head && n < c->def.queue_max &&
               (n == 0 || recs + c->head->nrec <= c->def.group_max_records)) {
            struct xl_part *p = c->head;

            c->head = p->next;
            if (!c->head)
                c->tail = NULL;
            recs += p->nrec;
            c->group[n++] = p;
        }
        pthread_mutex_unlock(&c->mu);
        commit_group(c, c->group, n);
        pthread_mutex_lock(&c->mu);
        c->pending -= n;
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < n; i++)
            part_done(c->group[i]);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

xl_rc xl_consumers_start(const struct xl_consumer_def defs[XL_KIND_COUNT],
                         struct xl_consumers **out, struct xl_err *err)
{
    struct xl_consumers *cs = xl_calloc(1, sizeof(*cs));
    int e;

    *out = NULL;
    if (!cs)
        return xl_err_set(err, XL_ENOMEM, "consumers: out of memory");
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];

        c->def = defs[k];
        if (c->def.queue_max == 0)
            c->def.queue_max = 1;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
    }
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];

        if (!(c->group = xl_calloc(c->def.queue_max, sizeof(*c->group)))) {
            xl_consumers_stop(cs);
            return xl_err_set(err, XL_ENOMEM, "consumers: out of memory");
        }
        if ((e = pthread_create(&c->thread, NULL, consumer_main, c)) != 0) {
            xl_consumers_stop(cs);
            return xl_err_sys(err, XL_ESTATE, e, "consumers: cannot start the %s thread",
                              defs[k].name);
        }
        c->started = true;
    }
    *out = cs;
    return XL_OK;
}

void xl_consumers_stop(struct xl_consumers *cs)
{
    if (!cs)
        return;
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];

        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];

        if (c->started)
            pthread_join(c->thread, NULL);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        xl_free(c->group);
    }
    xl_free(cs);
}

xl_rc xl_consumers_store(struct xl_consumers *cs, struct xl_part *parts, size_t n,
                         struct xl_err *err)
{
    struct xl_part *by_kind[XL_KIND_COUNT] = {0};
    struct xl_ticket t = {.pending = n};
    int k, full = -1;

    for (size_t i = 0; i < n; i++) {
        if ((unsigned)parts[i].kind >= XL_KIND_COUNT || by_kind[parts[i].kind])
            return xl_err_set(err, XL_EINVAL, "consumers: part %zu: a bad or repeated kind", i);
        by_kind[parts[i].kind] = &parts[i];
    }
    if (n == 0)
        return XL_OK;
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    /* All queues or none: lock them (in kind order), look, then queue. */
    for (k = 0; k < XL_KIND_COUNT; k++) {
        if (!by_kind[k])
            continue;
        pthread_mutex_lock(&cs->c[k].mu);
        if (full < 0 && cs->c[k].pending >= cs->c[k].def.queue_max)
            full = k;
    }
    for (k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];
        struct xl_part *p = by_kind[k];

        if (!p)
            continue;
        if (full < 0) {
            p->ticket = &t;
            p->next = NULL;
            p->rc = XL_OK;
            if (c->tail)
                c->tail->next = p;
            else
                c->head = p;
            c->tail = p;
            c->pending++;
            pthread_cond_signal(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (full >= 0) {
        atomic_fetch_add(&cs->c[full].busy, 1);
        pthread_mutex_destroy(&t.mu);
        pthread_cond_destroy(&t.cv);
        return xl_err_set(err, XL_EFULL, "the %s consumer has %zu batches queued, its limit",
                          cs->c[full].def.name, cs->c[full].def.queue_max);
    }
    pthread_mutex_lock(&t.mu);
    while (t.pending > 0)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
    return XL_OK;
}

void xl_consumers_get_stats(struct xl_consumers *cs, struct xl_consumer_stats out[XL_KIND_COUNT])
{
    for (int k = 0; k < XL_KIND_COUNT; k++) {
        struct consumer *c = &cs->c[k];

        pthread_mutex_lock(&c->mu);
        out[k].queued = c->pending;
        pthread_mutex_unlock(&c->mu);
        out[k].name = c->def.name;
        out[k].parts = atomic_load(&c->parts);
        out[k].records = atomic_load(&c->records);
        out[k].commits = atomic_load(&c->commits);
        out[k].errors = atomic_load(&c->errors);
        out[k].busy = atomic_load(&c->busy);
    }
}
