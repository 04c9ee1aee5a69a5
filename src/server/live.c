/* xluo-server: the live streams (docs/api.md): GET /api/v1/logs/stream
 * (log lines, with the filters of a log search and catch-up) and
 * GET /api/v1/stream (records of the kinds a subscriber names).
 *
 * Each subscriber is one streamed HTTP response (http.h) with its filters
 * and a bounded queue of encoded events. A log line may go out in two
 * forms, `event: log` on the log stream and `event: record` on the record
 * stream; each form is encoded once, for the first subscriber that wants
 * it. Publishing encodes a row once
 * (an event is shared by every queue it is in, reference-counted), appends
 * it to the queues of the subscribers it matches, dropping a queue's oldest
 * events when it is full, and wakes the subscribers that were waiting. It
 * never waits for a client: the HTTP layer pulls from the queue when the
 * client's socket can take more.
 *
 * Catch-up (Last-Event-ID or since_id): the subscriber is listed first, so
 * every row published from then on is queued; its reads then page through
 * the store (oldest first, after the client's id), and the queued events
 * whose id the replay already covered are skipped. No gap, no duplicate.
 *
 * Locks: lv->mu (the list) may be held while taking a subscriber's mu,
 * never the reverse. The HTTP layer's stream calls (wake, probe) are made
 * with no lock of ours held. */
#include "live.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/units.h"
#include "server.h"
#include "store/events.h"
#include "store/logs_query.h"

#define LIVE_MAX_LINES 10000      /* queued events per subscriber */
#define LIVE_MAX_BYTES (8u << 20) /* queued bytes per subscriber */
#define LIVE_MAX_SUBS 256         /* open streams */
#define LIVE_PING_MS 15000        /* a comment this often */
#define LIVE_TICK_MS 1000         /* how often hung-up clients are looked for */
#define LIVE_REPLAY_PAGE 1000     /* rows per store query during catch-up */
#define LIVE_OUT_MAX (64u << 20)  /* one replay page, encoded */
#define LIVE_MAX_TYPES 32         /* type= parameters of one record stream */

/* One encoded SSE event, shared by the queues it is in. */
struct live_event {
    _Atomic unsigned refs;
    int64_t id;
    size_t len;
    char *data;
};

struct sub {
    struct xl_live *lv;
    struct sub *prev, *next;       /* in lv->subs, under lv->mu */
    struct xl_http_stream *stream; /* our reference, to wake it */
    /* The filters, read only once the subscriber is listed. */
    char *host, *input, *glob, *text;
    struct xl_logq *q;
    /* A record-stream subscriber: the kinds it wants whole (bits of enum
     * xl_kind), the event types it wants, conditions on event fields. */
    bool records;
    unsigned kinds;
    char **types;
    size_t ntypes;
    struct xl_event_where *where;
    size_t nwhere;
    struct xl_logstore *store;
    /* The reader's (the HTTP layer makes one read at a time). */
    bool replaying, replay_failed;
    int64_t after_id;   /* catch-up position: the last id replayed */
    int64_t replay_max; /* queued events up to this id were replayed */
    struct xl_buf out;  /* bytes to send before the next event */
    size_t out_off;
    struct live_event *cur; /* the event being sent */
    size_t cur_off;
    /* Under mu. */
    pthread_mutex_t mu;
    struct live_event **ring; /* LIVE_MAX_LINES slots */
    size_t head, count, bytes;
    uint64_t dropped; /* lost and not yet reported */
    bool ping;        /* a ping is due */
    bool waiting;     /* the last read found nothing: wake on news */
};

struct xl_live {
    pthread_mutex_t mu; /* the list, and stop */
    pthread_cond_t cond;
    struct sub *subs;
    _Atomic uint64_t nsubs;
    _Atomic uint64_t nkind[XL_KIND_COUNT]; /* subscribers that may want each kind */
    _Atomic uint64_t dropped;              /* since start, for /metrics */
    bool stop;
    bool ticking; /* the ticker thread runs */
    pthread_t ticker;
};

/* ---- events ---- */

static void event_unref(struct live_event *ev)
{
    if (ev && atomic_fetch_sub(&ev->refs, 1) == 1) {
        xl_free(ev->data);
        xl_free(ev);
    }
}

static struct live_event *event_ref(struct live_event *ev)
{
    atomic_fetch_add(&ev->refs, 1);
    return ev;
}

/* The row as search shows it (docs/api.md "Search"), or NULL. */
static json_t *row_json(const struct xl_log_row *r)
{
    size_t len = r->len ? r->len : strlen(r->line ? r->line : "");
    json_t *filters = json_array(), *line, *o;
    const char *p = r->filters;

    while (filters && p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);

        json_array_append_new(filters, json_stringn(p, n));
        p += n + (nl ? 1 : 0);
    }
    /* Lines were valid UTF-8 when ingested; a NULL here is out of memory. */
    line = json_stringn(r->line ? r->line : "", len);
    o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:o, s:o}", "id",
                  (json_int_t)r->id, "ts", (json_int_t)r->ts_ms, "host", r->host ? r->host : "",
                  "agent_id", r->agent_id ? r->agent_id : "", "input", r->input ? r->input : "",
                  "file", r->path ? r->path : "", "offset", (json_int_t)r->offset, "part",
                  (int)r->part, "parts", (int)r->parts, "line", line, "filters", filters);
    return o;
}

static int dump_to_buf(const char *p, size_t n, void *ctx)
{
    return xl_buf_add(ctx, p, n) == XL_OK ? 0 : -1;
}

/* "[id: N\n]event: TYPE\ndata: {...}\n\n" for o (whose reference it
 * takes; the id line only when id > 0), or NULL (no memory). Written
 * through a callback: jansson may allocate from a per-thread arena
 * (jarena.h), so nothing it returns may outlive the call. */
static struct live_event *event_encode(json_t *o, const char *type, int64_t id)
{
    struct live_event *ev = NULL;
    struct xl_buf b;

    xl_buf_init(&b, LIVE_MAX_BYTES);
    if (o && (id <= 0 || xl_buf_printf(&b, "id: %" PRId64 "\n", id) == XL_OK) &&
        xl_buf_printf(&b, "event: %s\ndata: ", type) == XL_OK &&
        json_dump_callback(o, dump_to_buf, &b, JSON_COMPACT) == 0 &&
        xl_buf_adds(&b, "\n\n") == XL_OK && (ev = xl_malloc(sizeof(*ev)))) {
        atomic_init(&ev->refs, 1);
        ev->id = id;
        ev->len = b.len;
        ev->data = xl_buf_take(&b);
    }
    json_decref(o);
    xl_buf_cleanup(&b);
    return ev;
}

/* The row as the log stream sends it. */
static struct live_event *event_new(const struct xl_log_row *r)
{
    return event_encode(row_json(r), "log", r->id);
}

/* The row as the record stream sends it: {"type":"log", ...the row}. */
static struct live_event *log_record_new(const struct xl_log_row *r)
{
    json_t *row = row_json(r), *o = json_pack("{s:s}", "type", "log");

    if (o && (!row || json_object_update(o, row) != 0)) {
        json_decref(o);
        o = NULL;
    }
    json_decref(row);
    return event_encode(o, "record", 0);
}

/* ---- subscribers ---- */

/* Does the log-stream subscriber s want the line? */
static bool sub_match(const struct sub *s, const struct xl_log_row *r)
{
    if (s->host && (!r->host || strcmp(s->host, r->host) != 0))
        return false;
    if (s->input && (!r->input || strcmp(s->input, r->input) != 0))
        return false;
    if (s->glob && (!r->path || fnmatch(s->glob, r->path, 0) != 0))
        return false;
    if (s->q) {
        const char *line = r->line ? r->line : "";

        return xl_logq_match(s->q, line, r->len ? r->len : strlen(line));
    }
    return true;
}

/* Does the record-stream subscriber s want a record of kind from host
 * (name and fields: an event's type and fields)? */
static bool sub_wants(const struct sub *s, enum xl_kind kind, const char *host, const char *name,
                      const json_t *fields)
{
    if (!s->records)
        return false;
    if (!(s->kinds & (1u << kind))) {
        bool named = false;

        for (size_t i = 0; kind == XL_KIND_EVENT && name && !named && i < s->ntypes; i++)
            named = strcmp(s->types[i], name) == 0;
        if (!named)
            return false;
    }
    if (s->host && (!host || strcmp(s->host, host) != 0))
        return false;
    for (size_t i = 0; i < s->nwhere; i++)
        if (!fields || !xl_event_where_match(&s->where[i], fields))
            return false;
    return true;
}

/* The kinds s may want, as bits (for the per-kind subscriber counts). */
static unsigned sub_kinds(const struct sub *s)
{
    if (!s->records)
        return 1u << XL_KIND_LOG;
    return s->kinds | (s->ntypes ? 1u << XL_KIND_EVENT : 0);
}

static void count_kinds(struct xl_live *lv, const struct sub *s, int delta)
{
    unsigned bits = sub_kinds(s);

    for (int k = 0; k < XL_KIND_COUNT; k++)
        if (bits & (1u << k))
            atomic_fetch_add(&lv->nkind[k], (uint64_t)(int64_t)delta);
}

/* Append ev to the queue (a reference is taken), dropping the oldest
 * events while the queue is over its limits. Under s->mu. */
static void sub_push(struct sub *s, struct live_event *ev)
{
    while (s->count > 0 && (s->count == LIVE_MAX_LINES || s->bytes + ev->len > LIVE_MAX_BYTES)) {
        struct live_event *old = s->ring[s->head];

        s->head = (s->head + 1) % LIVE_MAX_LINES;
        s->count--;
        s->bytes -= old->len;
        s->dropped++;
        atomic_fetch_add(&s->lv->dropped, 1);
        event_unref(old);
    }
    s->ring[(s->head + s->count) % LIVE_MAX_LINES] = event_ref(ev);
    s->count++;
    s->bytes += ev->len;
}

/* The oldest queued event (the caller owns the reference), or NULL. Under
 * s->mu. */
static struct live_event *sub_pop(struct sub *s)
{
    struct live_event *ev;

    if (s->count == 0)
        return NULL;
    ev = s->ring[s->head];
    s->head = (s->head + 1) % LIVE_MAX_LINES;
    s->count--;
    s->bytes -= ev->len;
    return ev;
}

static void sub_destroy(struct sub *s)
{
    struct live_event *ev;

    if (!s)
        return;
    while ((ev = sub_pop(s)))
        event_unref(ev);
    event_unref(s->cur);
    xl_free(s->ring);
    xl_buf_cleanup(&s->out);
    xl_logq_free(s->q);
    xl_free(s->host);
    xl_free(s->input);
    xl_free(s->glob);
    xl_free(s->text);
    for (size_t i = 0; i < s->ntypes; i++)
        xl_free(s->types[i]);
    xl_free(s->types);
    for (size_t i = 0; i < s->nwhere; i++)
        xl_event_where_cleanup(&s->where[i]);
    xl_free(s->where);
    xl_http_stream_unref(s->stream);
    pthread_mutex_destroy(&s->mu);
    xl_free(s);
}

/* The HTTP layer is done with the stream: unlist and free. */
static void sub_free(void *ctx)
{
    struct sub *s = ctx;
    struct xl_live *lv = s->lv;

    pthread_mutex_lock(&lv->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        lv->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    atomic_fetch_sub(&lv->nsubs, 1);
    count_kinds(lv, s, -1);
    pthread_mutex_unlock(&lv->mu);
    xl_log_debug("live", "stream closed (%" PRIu64 " left)", atomic_load(&lv->nsubs));
    sub_destroy(s);
}

static int replay_row(void *ctx, const struct xl_log_row *r)
{
    struct sub *s = ctx;
    struct live_event *ev;
    xl_rc rc;

    /* The store applied the same filters; the text query too. */
    if (!(ev = event_new(r))) {
        s->replay_failed = true;
        return -1;
    }
    rc = xl_buf_add(&s->out, ev->data, ev->len);
    event_unref(ev);
    if (rc != XL_OK) {
        s->replay_failed = true;
        return -1;
    }
    if (r->id > s->after_id)
        s->after_id = r->id;
    return 0;
}

/* One page of catch-up into s->out. When the store has no more, the
 * stream goes live: queued events the replay covered are skipped. */
static xl_rc replay_page(struct sub *s, struct xl_err *err)
{
    struct xl_log_query q = {.host = s->host,
                             .input = s->input,
                             .path_glob = s->glob,
                             .text = s->text,
                             .after_id = s->after_id,
                             .limit = LIVE_REPLAY_PAGE,
                             .oldest_first = true};
    int64_t next = 0, before = s->after_id;
    xl_rc rc;

    s->replay_failed = false;
    rc = xl_logstore_search(s->store, &q, replay_row, s, &next, err);
    if (rc != XL_OK)
        return rc;
    /* Going live now would leave a gap: end the stream instead (the
     * client reconnects from the last id it got). */
    if (s->replay_failed)
        return xl_err_set(err, XL_ENOMEM, "out of memory encoding line %" PRId64, s->after_id + 1);
    if (next == 0 || s->after_id == before) {
        s->replaying = false;
        s->replay_max = s->after_id;
    }
    return XL_OK;
}

/* Copy what is pending (s->out, then s->cur) into buf[*n..max). */
static void drain_pending(struct sub *s, char *buf, size_t max, size_t *n)
{
    size_t k;

    if (s->out_off < s->out.len) {
        k = s->out.len - s->out_off;
        if (k > max - *n)
            k = max - *n;
        memcpy(buf + *n, s->out.data + s->out_off, k);
        *n += k;
        s->out_off += k;
        if (s->out_off == s->out.len) {
            xl_buf_reset(&s->out);
            s->out_off = 0;
        }
    }
    if (s->cur && *n < max) {
        k = s->cur->len - s->cur_off;
        if (k > max - *n)
            k = max - *n;
        memcpy(buf + *n, s->cur->data + s->cur_off, k);
        *n += k;
        s->cur_off += k;
        if (s->cur_off == s->cur->len) {
            event_unref(s->cur);
            s->cur = NULL;
        }
    }
}

/* The stream's read callback: pending bytes, catch-up pages, a dropped
 * notice, queued events, a ping; 0 (and waiting) when there is nothing. */
static ssize_t sub_read(void *ctx, char *buf, size_t max)
{
    struct sub *s = ctx;
    struct xl_err err = {0};
    size_t n = 0;

    while (n < max) {
        if (s->out_off < s->out.len || s->cur) {
            drain_pending(s, buf, max, &n);
            continue;
        }
        if (s->replaying) {
            if (replay_page(s, &err) != XL_OK) {
                xl_log_rl(XL_LOG_WARN, 10, "live", "catch-up after id %" PRId64 " failed: %s",
                          s->after_id, err.msg);
                return n > 0 ? (ssize_t)n : XL_HTTP_STREAM_ERROR;
            }
            continue;
        }
        pthread_mutex_lock(&s->mu);
        if (s->dropped) {
            /* Cannot fail: out is empty and far below its limit. */
            xl_buf_printf(&s->out, "event: dropped\ndata: {\"count\":%" PRIu64 "}\n\n", s->dropped);
            s->dropped = 0;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        while ((s->cur = sub_pop(s)) && s->cur->id > 0 && s->cur->id <= s->replay_max) {
            event_unref(s->cur); /* the catch-up sent it */
            s->cur = NULL;
        }
        if (s->cur) {
            s->cur_off = 0;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (s->ping) {
            s->ping = false;
            xl_buf_adds(&s->out, ": ping\n\n");
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (n == 0)
            s->waiting = true;
        pthread_mutex_unlock(&s->mu);
        break;
    }
    return (ssize_t)n;
}

/* ---- the ticker: pings, and clients that hung up while idle ---- */

/* Collect references to the streams of subscribers that wait (and, when
 * ping, mark a ping due on every subscriber). Under lv->mu. */
static size_t collect_waiting(struct xl_live *lv, bool ping, struct xl_http_stream ***out)
{
    struct xl_http_stream **v = NULL;
    size_t n = 0, cap = 0;

    for (struct sub *s = lv->subs; s; s = s->next) {
        bool w;

        pthread_mutex_lock(&s->mu);
        if (ping)
            s->ping = true;
        w = s->waiting;
        pthread_mutex_unlock(&s->mu);
        if (w && xl_grow((void **)&v, &cap, n + 1, sizeof(*v)) == 0)
            v[n++] = xl_http_stream_ref(s->stream);
    }
    *out = v;
    return n;
}

static void *ticker_main(void *arg)
{
    struct xl_live *lv = arg;
    int64_t next_ping = xl_mono_ms() + LIVE_PING_MS;

    pthread_mutex_lock(&lv->mu);
    while (!lv->stop) {
        struct xl_http_stream **v;
        struct timespec until;
        bool ping;
        size_t n;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += LIVE_TICK_MS / 1000;
        pthread_cond_timedwait(&lv->cond, &lv->mu, &until);
        if (lv->stop)
            break;
        ping = xl_mono_ms() >= next_ping;
        if (ping)
            next_ping = xl_mono_ms() + LIVE_PING_MS;
        n = collect_waiting(lv, ping, &v);
        pthread_mutex_unlock(&lv->mu);
        for (size_t i = 0; i < n; i++) {
            /* A probe first: a hung-up client is ended, not pinged. */
            if (!xl_http_stream_probe(v[i]) && ping)
                xl_http_stream_wake(v[i]);
            xl_http_stream_unref(v[i]);
        }
        xl_free(v);
        pthread_mutex_lock(&lv->mu);
    }
    pthread_mutex_unlock(&lv->mu);
    return NULL;
}

/* ---- the module ---- */

xl_rc xl_live_new(struct xl_live **out, struct xl_err *err)
{
    struct xl_live *lv = xl_calloc(1, sizeof(*lv));
    int e;

    if (!lv)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    pthread_mutex_init(&lv->mu, NULL);
    pthread_cond_init(&lv->cond, NULL);
    if ((e = pthread_create(&lv->ticker, NULL, ticker_main, lv)) != 0) {
        xl_live_free(lv);
        return xl_err_sys(err, XL_ENOMEM, e, "live stream: cannot start a thread");
    }
    lv->ticking = true;
    *out = lv;
    return XL_OK;
}

void xl_live_free(struct xl_live *lv)
{
    if (!lv)
        return;
    if (lv->ticking) {
        pthread_mutex_lock(&lv->mu);
        lv->stop = true;
        pthread_cond_signal(&lv->cond);
        pthread_mutex_unlock(&lv->mu);
        pthread_join(lv->ticker, NULL);
    }
    /* The HTTP layer is stopped first (server.c), which ends every stream
     * and so frees every subscriber; none should be left. */
    if (lv->subs)
        xl_log_warn("live", "%" PRIu64 " subscribers left at shutdown", atomic_load(&lv->nsubs));
    pthread_cond_destroy(&lv->cond);
    pthread_mutex_destroy(&lv->mu);
    xl_free(lv);
}

/* Which subscribers want record i, and in which form (0: the log stream's,
 * 1: the record stream's); and the encoding of record i in a form. */
typedef bool (*pub_match_fn)(void *ctx, const struct sub *s, size_t i, int *form);
typedef struct live_event *(*pub_encode_fn)(void *ctx, size_t i, int form);

/* Queue n records to the subscribers that want them, each form of each
 * record encoded once; wake the subscribers that were waiting. */
static void fan_out(struct xl_live *lv, size_t n, pub_match_fn match, pub_encode_fn encode,
                    void *ctx)
{
    struct live_event **ev; /* [form * n + i] */
    struct xl_http_stream **wake = NULL;
    size_t nwake = 0, cap = 0;

    if (!(ev = xl_calloc(2 * n, sizeof(*ev)))) {
        xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: %zu records not streamed", n);
        return;
    }
    pthread_mutex_lock(&lv->mu);
    for (struct sub *s = lv->subs; s; s = s->next) {
        bool any = false, w;

        for (size_t i = 0; i < n; i++) {
            struct live_event **e;
            int form = 0;

            if (!match(ctx, s, i, &form))
                continue;
            e = &ev[(size_t)form * n + i];
            /* Encoded once, for the first subscriber that wants it. */
            if (!*e && !(*e = encode(ctx, i, form))) {
                xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: a record was not streamed");
                continue;
            }
            pthread_mutex_lock(&s->mu);
            sub_push(s, *e);
            pthread_mutex_unlock(&s->mu);
            any = true;
        }
        if (!any)
            continue;
        pthread_mutex_lock(&s->mu);
        w = s->waiting;
        s->waiting = false;
        pthread_mutex_unlock(&s->mu);
        if (w && xl_grow((void **)&wake, &cap, nwake + 1, sizeof(*wake)) == 0)
            wake[nwake++] = xl_http_stream_ref(s->stream);
        else if (w) /* out of memory: wake in place */
            xl_http_stream_wake(s->stream);
    }
    pthread_mutex_unlock(&lv->mu);
    for (size_t i = 0; i < nwake; i++) {
        xl_http_stream_wake(wake[i]);
        xl_http_stream_unref(wake[i]);
    }
    xl_free(wake);
    for (size_t i = 0; i < 2 * n; i++)
        event_unref(ev[i]);
    xl_free(ev);
}

static bool log_match(void *ctx, const struct sub *s, size_t i, int *form)
{
    const struct xl_log_row *r = (const struct xl_log_row *)ctx + i;

    *form = s->records;
    return s->records ? sub_wants(s, XL_KIND_LOG, r->host, NULL, NULL) : sub_match(s, r);
}

static struct live_event *log_encode(void *ctx, size_t i, int form)
{
    const struct xl_log_row *r = (const struct xl_log_row *)ctx + i;

    return form ? log_record_new(r) : event_new(r);
}

void xl_live_publish(struct xl_live *lv, const struct xl_log_row *rows, size_t n)
{
    if (!lv || n == 0 || atomic_load(&lv->nkind[XL_KIND_LOG]) == 0)
        return;
    fan_out(lv, n, log_match, log_encode, (void *)rows);
}

bool xl_live_wants(struct xl_live *lv, enum xl_kind kind)
{
    return lv && (unsigned)kind < XL_KIND_COUNT && atomic_load(&lv->nkind[kind]) > 0;
}

struct rec_pub {
    enum xl_kind kind;
    const struct xl_live_rec *recs;
    xl_live_json_fn json;
    void *ctx;
};

static bool rec_match(void *ctx, const struct sub *s, size_t i, int *form)
{
    const struct rec_pub *p = ctx;

    *form = 1;
    return sub_wants(s, p->kind, p->recs[i].host, p->recs[i].name, p->recs[i].fields);
}

static struct live_event *rec_encode(void *ctx, size_t i, int form)
{
    const struct rec_pub *p = ctx;

    return event_encode(p->json(p->ctx, i), "record", 0);
}

void xl_live_publish_records(struct xl_live *lv, enum xl_kind kind, const struct xl_live_rec *recs,
                             size_t n, xl_live_json_fn json, void *ctx)
{
    struct rec_pub p = {kind, recs, json, ctx};

    if (!xl_live_wants(lv, kind) || n == 0)
        return;
    fan_out(lv, n, rec_match, rec_encode, &p);
}

uint64_t xl_live_subscribers(struct xl_live *lv)
{
    return lv ? atomic_load(&lv->nsubs) : 0;
}

uint64_t xl_live_dropped(struct xl_live *lv)
{
    return lv ? atomic_load(&lv->dropped) : 0;
}

/* ---- the routes ---- */

/* A non-negative decimal id. */
static bool parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno || v < 0)
        return false;
    *out = v;
    return true;
}

/* A subscriber with no filters yet, or NULL (answered 503). */
static struct sub *sub_new(struct xl_server *srv, struct xl_http_resp *resp)
{
    struct sub *s = xl_calloc(1, sizeof(*s));

    if (!s) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    xl_buf_init(&s->out, LIVE_OUT_MAX);
    s->lv = srv->live;
    s->store = srv->logs;
    /* Sent first, so that the client sees the answer's headers at once. */
    if (!(s->ring = xl_calloc(LIVE_MAX_LINES, sizeof(*s->ring))) ||
        xl_buf_adds(&s->out, ": connected\n\n") != XL_OK) {
        sub_destroy(s);
        xl_http_error(resp, 503, "out of memory", "try again later");
        return NULL;
    }
    return s;
}

/* Answer the request with s's stream and list s: it gets every record
 * published from now on. Takes s, even when it fails. */
static void sub_open(struct xl_live *lv, struct sub *s, struct xl_http_resp *resp)
{
    struct xl_http_stream *stream;
    struct xl_err err = {0};

    if (xl_http_stream_new(sub_read, sub_free, s, &stream, &err) != XL_OK) {
        sub_destroy(s);
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    s->stream = xl_http_stream_ref(stream);
    /* Listed before a catch-up reads the store: nothing falls between. */
    pthread_mutex_lock(&lv->mu);
    s->next = lv->subs;
    if (lv->subs)
        lv->subs->prev = s;
    lv->subs = s;
    atomic_fetch_add(&lv->nsubs, 1);
    count_kinds(lv, s, 1);
    pthread_mutex_unlock(&lv->mu);
    resp->status = 200;
    resp->content_type = "text/event-stream; charset=utf-8";
    resp->stream = stream; /* the layer takes this reference; sub_free unlists */
}

static bool too_many_streams(struct xl_live *lv, struct xl_http_resp *resp)
{
    if (atomic_load(&lv->nsubs) < LIVE_MAX_SUBS)
        return false;
    xl_http_error(resp, 503, "too many streams",
                  "%d live streams are open, the most the server keeps", LIVE_MAX_SUBS);
    return true;
}

/* GET /api/v1/logs/stream: the log-stream subscriber for the request's
 * filters; answers 4xx itself. */
static struct sub *sub_from_req(struct xl_server *srv, struct xl_http_req *req,
                                struct xl_http_resp *resp)
{
    const char *host = xl_http_arg(req, "host"), *input = xl_http_arg(req, "input");
    const char *glob = xl_http_arg(req, "file"), *text = xl_http_arg(req, "q");
    const char *since = xl_http_header(req, "Last-Event-ID");
    const char *what = "Last-Event-ID";
    struct xl_err err = {0};
    struct sub *s;
    int64_t since_id = 0;
    xl_rc rc;

    if (xl_http_arg(req, "from") || xl_http_arg(req, "to")) {
        xl_http_error(resp, 400, "bad parameter",
                      "from, to: the stream sends lines as they are stored; search for the past");
        return NULL;
    }
    /* The header (a reconnecting EventSource) wins over the URL it reuses. */
    if (!since || !*since) {
        since = xl_http_arg(req, "since_id");
        what = "since_id";
    }
    if (since && *since && !parse_id(since, &since_id)) {
        xl_http_error(resp, 400, "bad parameter", "%s=%.64s: expected a log line id (an integer)",
                      what, since);
        return NULL;
    }
    if (!(s = sub_new(srv, resp)))
        return NULL;
    if ((host && *host && !(s->host = xl_strdup(host))) ||
        (input && *input && !(s->input = xl_strdup(input))) ||
        (glob && *glob && !(s->glob = xl_strdup(glob))))
        goto out_nomem;
    if (text && *text) {
        if ((rc = xl_logq_compile(text, &s->q, &err)) == XL_ENOMEM)
            goto out_nomem;
        if (rc != XL_OK) {
            xl_http_error(resp, 400, "bad query", "q: %s", err.msg);
            sub_destroy(s);
            return NULL;
        }
        if (!(s->text = xl_strdup(text)))
            goto out_nomem;
    }
    if (since && *since) {
        s->replaying = true;
        s->after_id = since_id;
        s->replay_max = since_id;
    }
    return s;
out_nomem:
    sub_destroy(s);
    xl_http_error(resp, 503, "out of memory", "try again later");
    return NULL;
}

void xl_api_logs_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *srv = app;
    struct sub *s;

    if (too_many_streams(srv->live, resp) || !(s = sub_from_req(srv, req, resp)))
        return;
    xl_log_debug("live", "stream opened (host %s, input %s, file %s, q %s, since %s)",
                 s->host ? s->host : "*", s->input ? s->input : "*", s->glob ? s->glob : "*",
                 s->text ? s->text : "-", s->replaying ? "yes" : "no");
    sub_open(srv->live, s, resp);
}

/* GET /api/v1/stream: the record-stream subscriber for the request's
 * type=, host= and where= parameters; answers 4xx itself. */
static struct sub *rec_sub_from_req(struct xl_server *srv, struct xl_http_req *req,
                                    struct xl_http_resp *resp)
{
    const char *types[LIVE_MAX_TYPES + 1], *where[XL_EVENT_WHERE_MAX + 1];
    const char *host = xl_http_arg(req, "host");
    size_t nt = xl_http_args(req, "type", types, LIVE_MAX_TYPES + 1);
    size_t nw = xl_http_args(req, "where", where, XL_EVENT_WHERE_MAX + 1);
    struct xl_err err = {0};
    struct sub *s;
    xl_rc rc;

    if (nt == 0) {
        xl_http_error(resp, 400, "bad parameter",
                      "type: required: metric, log, check, event or an event type (repeat "
                      "type= for several)");
        return NULL;
    }
    if (nt > LIVE_MAX_TYPES || nw > XL_EVENT_WHERE_MAX) {
        xl_http_error(resp, 400, "bad parameter", "%s: at most %d",
                      nt > LIVE_MAX_TYPES ? "type" : "where",
                      nt > LIVE_MAX_TYPES ? LIVE_MAX_TYPES : XL_EVENT_WHERE_MAX);
        return NULL;
    }
    if (!(s = sub_new(srv, resp)))
        return NULL;
    s->records = true;
    if (!(s->types = xl_calloc(nt, sizeof(*s->types))) ||
        (nw && !(s->where = xl_calloc(nw, sizeof(*s->where)))) ||
        (host && *host && !(s->host = xl_strdup(host))))
        goto out_nomem;
    for (size_t i = 0; i < nt; i++) {
        int k;

        for (k = 0; k < XL_KIND_COUNT; k++)
            if (strcmp(types[i], xl_kind_name((enum xl_kind)k)) == 0)
                break;
        if (k < XL_KIND_COUNT) {
            s->kinds |= 1u << k;
        } else if (xl_event_type_valid(types[i])) {
            if (!(s->types[s->ntypes++] = xl_strdup(types[i])))
                goto out_nomem;
        } else {
            xl_http_error(resp, 400, "bad parameter",
                          "type=%.140s: expected metric, log, check, event or an event type "
                          "(1 to %d characters of [A-Za-z0-9_.:-])",
                          types[i], XL_EVENT_TYPE_MAX);
            goto out_fail;
        }
    }
    if (nw && (s->kinds & ~(1u << XL_KIND_EVENT))) {
        xl_http_error(resp, 400, "bad parameter",
                      "where: conditions on fields select events: ask only for events "
                      "(type=event or event types)");
        goto out_fail;
    }
    for (size_t i = 0; i < nw; i++) {
        if ((rc = xl_event_where_parse(where[i], &s->where[i], &err)) == XL_ENOMEM)
            goto out_nomem;
        if (rc != XL_OK) {
            xl_http_error(resp, 400, "bad parameter", "where=%.140s: %s", where[i], err.msg);
            goto out_fail;
        }
        s->nwhere++;
    }
    return s;
out_nomem:
    xl_http_error(resp, 503, "out of memory", "try again later");
out_fail:
    sub_destroy(s);
    return NULL;
}

void xl_api_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *srv = app;
    struct sub *s;

    if (too_many_streams(srv->live, resp) || !(s = rec_sub_from_req(srv, req, resp)))
        return;
    xl_log_debug("live", "record stream opened (kinds 0x%x, %zu event types, host %s)", s->kinds,
                 s->ntypes, s->host ? s->host : "*");
    sub_open(srv->live, s, resp);
}
