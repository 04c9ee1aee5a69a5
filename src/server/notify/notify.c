/* xluo-server: notifications, routing and the delivery queue.
 *
 * The queue holds deliveries (one notification for one channel) waiting
 * for their time: new ones are due at once, failed ones after their
 * backoff. Workers take the earliest due delivery, make one attempt, report
 * it, and put it back when it is to be retried. A delivery in flight still
 * counts against queue_size, so a retry always finds its place. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/units.h"
#include "notify_int.h"

#define MOD "notify"

/* ---- notifications ---- */

struct xl_notify_msg *xl_notify_msg_new(const char *group_key)
{
    struct xl_notify_msg *m = xl_calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (group_key && !(m->group_key = xl_strdup(group_key))) {
        xl_free(m);
        return NULL;
    }
    m->refs = 1;
    return m;
}

const char *xl_notify_kv_get(const struct xl_kvlist *l, const char *k)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->k[i], k) == 0)
            return l->v[i];
    return NULL;
}

static void kv_free(struct xl_kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        xl_free(l->k[i]);
        xl_free(l->v[i]);
    }
    xl_free(l->k);
    xl_free(l->v);
}

xl_rc xl_notify_msg_add(struct xl_notify_msg *m, enum xl_notify_status status, const char *rule,
                        const char *severity, struct xl_notify_alert **out)
{
    struct xl_notify_alert *v, *a;

    if (!(v = xl_realloc(m->alerts, (m->n_alerts + 1) * sizeof(*v))))
        return XL_ENOMEM;
    m->alerts = v;
    a = &v[m->n_alerts];
    memset(a, 0, sizeof(*a));
    a->status = status;
    a->value = NAN;
    if (!(a->rule = xl_strdup(rule ? rule : "")) ||
        (severity && !(a->severity = xl_strdup(severity)))) {
        xl_free(a->rule);
        return XL_ENOMEM;
    }
    m->n_alerts++;
    *out = a;
    return XL_OK;
}

void xl_notify_msg_ref(struct xl_notify_msg *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void xl_notify_msg_unref(struct xl_notify_msg *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < m->n_alerts; i++) {
        struct xl_notify_alert *a = &m->alerts[i];

        xl_free(a->rule);
        xl_free(a->severity);
        xl_free(a->generator_url);
        kv_free(&a->labels);
        kv_free(&a->annotations);
    }
    xl_free(m->alerts);
    xl_free(m->group_key);
    kv_free(&m->group_labels);
    xl_free(m);
}

/* ---- routing ---- */

long xl_notify_channel_find(const struct xl_notify_cfg *cfg, const char *name)
{
    const struct xl_notify_channel_cfg *c = cfg->channels.items;

    for (size_t i = 0; i < cfg->channels.n; i++)
        if (c[i].name && strcmp(c[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* One matcher: "v" or "==v" equal, "!=v" not equal; absent labels are "". */
static bool matches(const char *want, const char *have)
{
    if (strncmp(want, "!=", 2) == 0)
        return strcmp(want + 2, have) != 0;
    if (strncmp(want, "==", 2) == 0)
        want += 2;
    return strcmp(want, have) == 0;
}

size_t xl_notify_route(const struct xl_notify_cfg *cfg, const struct xl_kvlist *labels, size_t *out,
                       size_t cap)
{
    const struct xl_notify_route_cfg *r = cfg->routes.items;
    size_t n = 0;

    for (size_t i = 0; i < cfg->routes.n; i++) {
        bool all = true;

        for (size_t j = 0; j < r[i].match.n && all; j++) {
            const char *have = xl_notify_kv_get(labels, r[i].match.k[j]);
            all = matches(r[i].match.v[j], have ? have : "");
        }
        if (!all)
            continue;
        for (size_t j = 0; j < r[i].channels.n; j++) {
            long c = xl_notify_channel_find(cfg, r[i].channels.v[j]);
            bool dup = false;

            for (size_t k = 0; k < n && !dup; k++)
                dup = out[k] == (size_t)c;
            if (c >= 0 && !dup && n < cap)
                out[n++] = (size_t)c;
        }
        if (!r[i].cont)
            break;
    }
    return n;
}

/* ---- delivery ---- */

struct job {
    struct xl_notify_msg *msg;
    size_t channel;
    unsigned attempts; /* made so far */
    int64_t due;       /* monotonic ms */
};

struct xl_notify {
    const struct xl_notify_cfg *cfg;
    xl_notify_report_fn cb;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers: a job is queued, or stopping */
    pthread_cond_t idle; /* xl_notify_free: the queue emptied */
    struct job *q;       /* queued jobs, unordered */
    size_t n, in_flight, cap;
    bool stopping;
    atomic_bool abort; /* drain time over: give up in-flight attempts */
    uint64_t next_id;
    pthread_t *thr;
    size_t n_thr;
};

static const struct xl_notify_channel_cfg *channel(const struct xl_notify *nf, size_t i)
{
    return &((const struct xl_notify_channel_cfg *)nf->cfg->channels.items)[i];
}

static void report(struct xl_notify *nf, const struct job *j, const struct xl_notify_result *res,
                   bool final, int64_t duration, int64_t retry_in)
{
    struct xl_notify_report r = {
        .channel = channel(nf, j->channel)->name,
        .msg = j->msg,
        .notification_id = j->msg->id,
        .attempt = j->attempts,
        .outcome = res->outcome,
        .final = final,
        .status = res->status,
        .error = res->error,
        .snippet = res->snippet,
        .snippet_len = res->snippet_len,
        .duration_ms = duration,
        .retry_in_ms = retry_in,
    };

    if (res->outcome != XL_NOTIFY_OK && final)
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s: notification %llu not delivered after %u attempts: %s",
                  r.channel, (unsigned long long)r.notification_id, j->attempts, res->error);
    if (nf->cb)
        nf->cb(&r, nf->ctx);
}

/* backoff * 2^(attempts-1), at most backoff_max; a peer's Retry-After
 * lengthens it (within backoff_max). */
static int64_t backoff_ms(const struct xl_notify_channel_cfg *ch, unsigned attempts,
                          int64_t retry_after)
{
    int64_t d = ch->backoff;

    for (unsigned i = 1; i < attempts && d < ch->backoff_max; i++)
        d *= 2;
    if (retry_after > d)
        d = retry_after;
    return d < ch->backoff_max ? d : ch->backoff_max;
}

static void attempt(struct xl_notify *nf, struct job *j, struct xl_notify_result *res)
{
    const struct xl_notify_channel_cfg *ch = channel(nf, j->channel);

    if (!strcmp(ch->type, "webhook"))
        xl_notify_webhook_deliver(ch, j->msg, &nf->abort, res);
    else if (!strcmp(ch->type, "email"))
        xl_notify_email_deliver(ch, j->msg, &nf->abort, res);
    else
        xl_notify_exec_deliver(ch, j->msg, &nf->abort, res);
}

/* The index of the earliest job, or n when none. */
static size_t earliest(const struct xl_notify *nf)
{
    size_t best = nf->n;

    for (size_t i = 0; i < nf->n; i++)
        if (best == nf->n || nf->q[i].due < nf->q[best].due)
            best = i;
    return best;
}

static void wait_until(struct xl_notify *nf, int64_t due_mono)
{
    struct timespec ts;
    int64_t wait = due_mono - xl_mono_ms();

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&nf->wake, &nf->mu, &ts);
}

static void *worker(void *arg)
{
    struct xl_notify *nf = arg;
    struct xl_notify_result *res = xl_malloc(sizeof(*res));

    pthread_mutex_lock(&nf->mu);
    while (res && !atomic_load(&nf->abort)) {
        size_t i = earliest(nf);
        const struct xl_notify_channel_cfg *ch;
        struct job j;
        int64_t t0, now = xl_mono_ms(), retry_in = 0;
        bool final;

        if (i == nf->n) {
            if (nf->stopping)
                break;
            pthread_cond_wait(&nf->wake, &nf->mu);
            continue;
        }
        if (nf->q[i].due > now) {
            wait_until(nf, nf->q[i].due);
            continue;
        }
        j = nf->q[i];
        nf->q[i] = nf->q[--nf->n];
        nf->in_flight++;
        pthread_mutex_unlock(&nf->mu);

        ch = channel(nf, j.channel);
        memset(res, 0, sizeof(*res));
        j.attempts++;
        t0 = xl_mono_ms();
        attempt(nf, &j, res);
        final = res->outcome != XL_NOTIFY_TRANSIENT || j.attempts >= (unsigned)ch->max_attempts;
        if (!final) {
            retry_in = backoff_ms(ch, j.attempts, res->retry_after_ms);
            j.due = xl_mono_ms() + retry_in;
        }
        report(nf, &j, res, final, xl_mono_ms() - t0, retry_in);

        pthread_mutex_lock(&nf->mu);
        nf->in_flight--;
        if (final)
            xl_notify_msg_unref(j.msg);
        else
            nf->q[nf->n++] = j; /* its place was kept by in_flight */
        if (!nf->n && !nf->in_flight)
            pthread_cond_broadcast(&nf->idle);
        pthread_cond_broadcast(&nf->wake); /* a retry may be the earliest now */
    }
    pthread_mutex_unlock(&nf->mu);
    xl_free(res);
    return NULL;
}

xl_rc xl_notify_new(const struct xl_notify_cfg *cfg, xl_notify_report_fn cb, void *ctx,
                    struct xl_notify **out, struct xl_err *err)
{
    struct xl_notify *nf;
    pthread_condattr_t ca;
    sigset_t block, old;
    xl_rc rc;

    if ((rc = xl_notify_cfg_check(cfg, err)) != XL_OK)
        return rc;
    if (!(nf = xl_calloc(1, sizeof(*nf))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    nf->cfg = cfg;
    nf->cb = cb;
    nf->ctx = ctx;
    nf->cap = (size_t)cfg->queue_size;
    nf->next_id = 1;
    atomic_init(&nf->abort, false);
    if (!(nf->q = xl_calloc(nf->cap, sizeof(*nf->q))) ||
        !(nf->thr = xl_calloc((size_t)cfg->workers, sizeof(*nf->thr)))) {
        xl_free(nf->q);
        xl_free(nf);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&nf->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&nf->wake, &ca);
    pthread_cond_init(&nf->idle, &ca);
    pthread_condattr_destroy(&ca);
    /* Workers take no signals: the daemon's signal handling stays on the
     * main thread, and a command closing its stdin cannot SIGPIPE us. */
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (; nf->n_thr < (size_t)cfg->workers; nf->n_thr++) {
        if (pthread_create(&nf->thr[nf->n_thr], NULL, worker, nf) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            xl_notify_free(nf);
            return xl_err_set(err, XL_EIO, "cannot start the notify workers");
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = nf;
    return XL_OK;
}

xl_rc xl_notify_send(struct xl_notify *nf, struct xl_notify_msg *msg, const size_t *channels,
                     size_t n, struct xl_err *err)
{
    bool any_firing = false;
    int64_t now = xl_mono_ms();
    xl_rc rc = XL_OK;

    for (size_t i = 0; i < n; i++)
        if (channels[i] >= nf->cfg->channels.n)
            return xl_err_set(err, XL_EINVAL, "no channel %zu", channels[i]);
    for (size_t i = 0; i < msg->n_alerts && !any_firing; i++)
        any_firing = msg->alerts[i].status == XL_NOTIFY_FIRING;
    pthread_mutex_lock(&nf->mu);
    if (nf->stopping) {
        rc = xl_err_set(err, XL_ESTATE, "notifications are stopping");
        goto out;
    }
    if (nf->n + nf->in_flight + n > nf->cap) {
        rc = xl_err_set(err, XL_EFULL, "notify queue full (%zu deliveries)", nf->cap);
        goto out;
    }
    if (!msg->id)
        msg->id = nf->next_id++;
    for (size_t i = 0; i < n; i++) {
        if (!any_firing && !channel(nf, channels[i])->send_resolved)
            continue;
        xl_notify_msg_ref(msg);
        nf->q[nf->n++] = (struct job){.msg = msg, .channel = channels[i], .due = now};
    }
    pthread_cond_broadcast(&nf->wake);
out:
    pthread_mutex_unlock(&nf->mu);
    return rc;
}

size_t xl_notify_pending(struct xl_notify *nf)
{
    size_t n;

    pthread_mutex_lock(&nf->mu);
    n = nf->n + nf->in_flight;
    pthread_mutex_unlock(&nf->mu);
    return n;
}

void xl_notify_free(struct xl_notify *nf)
{
    int64_t deadline;

    if (!nf)
        return;
    pthread_mutex_lock(&nf->mu);
    nf->stopping = true;
    deadline = xl_mono_ms() + nf->cfg->drain_timeout;
    pthread_cond_broadcast(&nf->wake);
    while ((nf->n || nf->in_flight) && xl_mono_ms() < deadline) {
        struct timespec ts;
        int64_t left = deadline - xl_mono_ms();

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&nf->idle, &nf->mu, &ts);
    }
    atomic_store(&nf->abort, true);
    pthread_cond_broadcast(&nf->wake);
    pthread_mutex_unlock(&nf->mu);
    for (size_t i = 0; i < nf->n_thr; i++)
        pthread_join(nf->thr[i], NULL);
    /* What is left never went out. */
    for (size_t i = 0; i < nf->n; i++) {
        struct xl_notify_result res = {.outcome = XL_NOTIFY_DROPPED};

        snprintf(res.error, sizeof(res.error), "dropped at shutdown after %u attempts",
                 nf->q[i].attempts);
        report(nf, &nf->q[i], &res, true, 0, 0);
        xl_notify_msg_unref(nf->q[i].msg);
    }
    pthread_cond_destroy(&nf->wake);
    pthread_cond_destroy(&nf->idle);
    pthread_mutex_destroy(&nf->mu);
    curl_global_cleanup();
    xl_free(nf->q);
    xl_free(nf->thr);
    xl_free(nf);
}
