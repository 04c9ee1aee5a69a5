/* xluo-server: the live log stream (GET /api/v1/logs/stream, docs/api.md).
 *
 * Each subscriber is one streamed HTTP response (http.h) with its filters
 * and a bounded queue of encoded events. Publishing encodes a row once
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
#include "store/logs_query.h"

#define LIVE_MAX_LINES 10000      /* queued events per subscriber */
#define LIVE_MAX_BYTES (8u << 20) /* queued bytes per subscriber */
#define LIVE_MAX_SUBS 256         /* open streams */
#define LIVE_PING_MS 15000        /* a comment this often */
#define LIVE_TICK_MS 1000         /* how often hung-up clients are looked for */
#define LIVE_REPLAY_PAGE 1000     /* rows per store query during catch-up */
#define LIVE_OUT_MAX (64u << 20)  /* one replay page, encoded */

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
    _Atomic uint64_t dropped; /* since start, for /metrics */
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

/* "id: N\nevent: log\ndata: {...}\n\n" for the row, or NULL (no memory).
 * Written through a callback: on the ingest path jansson allocates from a
 * per-thread arena (jarena.h), so nothing it returns may outlive the call. */
static struct live_event *event_new(const struct xl_log_row *r)
{
    json_t *o = row_json(r);
    struct live_event *ev = NULL;
    struct xl_buf b;

    xl_buf_init(&b, LIVE_MAX_BYTES);
    if (o && xl_buf_printf(&b, "id: %" PRId64 "\nevent: log\ndata: ", r->id) == XL_OK &&
        json_dump_callback(o, dump_to_buf, &b, JSON_COMPACT) == 0 &&
        xl_buf_adds(&b, "\n\n") == XL_OK && (ev = xl_malloc(sizeof(*ev)))) {
        atomic_init(&ev->refs, 1);
        ev->id = r->id;
        ev->len = b.len;
        ev->data = xl_buf_take(&b);
    }
    json_decref(o);
    xl_buf_cleanup(&b);
    return ev;
}

/* ---- subscribers ---- */

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

void xl_live_publish(struct xl_live *lv, const struct xl_log_row *rows, size_t n)
{
    struct live_event **ev;
    struct xl_http_stream **wake = NULL;
    size_t nwake = 0, cap = 0;

    if (!lv || n == 0 || atomic_load(&lv->nsubs) == 0)
        return;
    if (!(ev = xl_calloc(n, sizeof(*ev)))) {
        xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: %zu lines not streamed", n);
        return;
    }
    pthread_mutex_lock(&lv->mu);
    for (struct sub *s = lv->subs; s; s = s->next) {
        bool any = false, w;

        for (size_t i = 0; i < n; i++) {
            if (!sub_match(s, &rows[i]))
                continue;
            /* Encoded once, for the first subscriber that wants it. */
            if (!ev[i] && !(ev[i] = event_new(&rows[i]))) {
                xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: a line was not streamed");
                continue;
            }
            pthread_mutex_lock(&s->mu);
            sub_push(s, ev[i]);
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
    for (size_t i = 0; i < n; i++)
        event_unref(ev[i]);
    xl_free(ev);
}

uint64_t xl_live_subscribers(struct xl_live *lv)
{
    return lv ? atomic_load(&lv->nsubs) : 0;
}

uint64_t xl_live_dropped(struct xl_live *lv)
{
    return lv ? atomic_load(&lv->dropped) : 0;
}

/* ---- GET /api/v1/logs/stream ---- */

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

/* The subscriber for the request's filters; answers 4xx itself. */
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
    if (!(s = xl_calloc(1, sizeof(*s)))) {
        xl_http_error(resp, 503, "out of memory", "try again later");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    xl_buf_init(&s->out, LIVE_OUT_MAX);
    if (!(s->ring = xl_calloc(LIVE_MAX_LINES, sizeof(*s->ring))))
        goto out_nomem;
    s->lv = srv->live;
    s->store = srv->logs;
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
    /* Sent first, so that the client sees the answer's headers at once. */
    if (xl_buf_adds(&s->out, ": connected\n\n") != XL_OK)
        goto out_nomem;
    return s;
out_nomem:
    sub_destroy(s);
    xl_http_error(resp, 503, "out of memory", "try again later");
    return NULL;
}

void xl_api_logs_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *srv = app;
    struct xl_live *lv = srv->live;
    struct xl_http_stream *stream;
    struct xl_err err = {0};
    struct sub *s;

    if (atomic_load(&lv->nsubs) >= LIVE_MAX_SUBS) {
        xl_http_error(resp, 503, "too many streams",
                      "%d live streams are open, the most the server keeps", LIVE_MAX_SUBS);
        return;
    }
    if (!(s = sub_from_req(srv, req, resp)))
        return;
    if (xl_http_stream_new(sub_read, sub_free, s, &stream, &err) != XL_OK) {
        sub_destroy(s);
        xl_http_error(resp, 503, "out of memory", "try again later");
        return;
    }
    s->stream = xl_http_stream_ref(stream);
    /* Listed before the catch-up reads the store: nothing falls between. */
    pthread_mutex_lock(&lv->mu);
    s->next = lv->subs;
    if (lv->subs)
        lv->subs->prev = s;
    lv->subs = s;
    atomic_fetch_add(&lv->nsubs, 1);
    pthread_mutex_unlock(&lv->mu);
    xl_log_debug("live", "stream opened (host %s, input %s, file %s, q %s, since %s)",
                 s->host ? s->host : "*", s->input ? s->input : "*", s->glob ? s->glob : "*",
                 s->text ? s->text : "-", s->replaying ? "yes" : "no");
    resp->status = 200;
    resp->content_type = "text/event-stream; charset=utf-8";
    resp->stream = stream; /* the layer takes this reference; sub_free unlists */
}
