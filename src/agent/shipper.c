/* xluo-agent: batch shipping, circuit breakers, registration and heartbeats. */
#include "shipper.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/units.h"

#define MOD "shipper"
#define BACKOFF_BASE_MS 2000

static void do_register(struct xl_shipper_server *v);

static const char *breaker_name(enum xl_breaker_state st)
{
    return st == XL_BREAKER_CLOSED ? "closed" : st == XL_BREAKER_OPEN ? "open" : "half-open";
}

/* Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]. */
static uint64_t backoff_ms(struct xl_shipper *s)
{
    uint64_t cap = (uint64_t)s->o.retry_max_backoff_ms, ceil = BACKOFF_BASE_MS;
    uint32_t r = 0;

    for (unsigned i = 0; i < s->attempt && ceil < cap; i++)
        ceil *= 2;
    if (ceil > cap)
        ceil = cap;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint32_t)rand();
    return 50 + (uint64_t)r % (ceil + 1);
}

static bool transient(long status)
{
    return status == 0 || status == 429 || status >= 500;
}

/* The first server whose breaker lets a request through; NULL if all are
 * open (then *wait_ms says when the first one turns half-open). */
static struct xl_shipper_server *pick(struct xl_shipper *s, int64_t *wait_ms)
{
    int64_t now = xl_mono_ms();

    *wait_ms = INT64_MAX;
    for (size_t i = 0; i < s->nsrv; i++) {
        struct xl_shipper_server *v = &s->srv[i];

        if (v->state == XL_BREAKER_OPEN) {
            int64_t left = v->opened_ms + s->o.breaker_cooldown_ms - now;

            if (left > 0) {
                if (left < *wait_ms)
                    *wait_ms = left;
                continue;
            }
            v->state = XL_BREAKER_HALF_OPEN;
            v->probing = false;
            xl_log_info(MOD, "%s: circuit half-open, probing", v->url);
        }
        if (v->state == XL_BREAKER_CLOSED || !v->probing)
            return v;
    }
    return NULL;
}

static void on_retry(uv_timer_t *t)
{
    struct xl_shipper *s = t->data;

    s->waiting = false;
    xl_shipper_kick(s);
}

static void wait_then_kick(struct xl_shipper *s, uint64_t ms)
{
    if (s->closing)
        return;
    s->waiting = true;
    uv_timer_start(&s->retry_timer, on_retry, ms, 0);
}

/* A request to v failed in a way worth retrying. */
static void server_failed(struct xl_shipper *s, struct xl_shipper_server *v)
{
    v->failures++;
    if (v->state == XL_BREAKER_HALF_OPEN ||
        (v->state == XL_BREAKER_CLOSED && v->failures >= s->o.breaker_failures)) {
        if (v->state == XL_BREAKER_CLOSED || s->nsrv > 1)
            xl_log_warn(MOD, "%s: circuit open after %u failures in a row; %s for %llds", v->url,
                        v->failures, s->nsrv > 1 ? "using the next server" : "waiting",
                        (long long)(s->o.breaker_cooldown_ms / 1000));
        v->state = XL_BREAKER_OPEN;
        v->opened_ms = xl_mono_ms();
    }
    v->probing = false;
    if (!s->waiting) {
        s->st.retries++;
        wait_then_kick(s, backoff_ms(s));
        s->attempt++;
    }
}

static void server_ok(struct xl_shipper *s, struct xl_shipper_server *v)
{
    if (v->state != XL_BREAKER_CLOSED)
        xl_log_info(MOD, "%s: circuit closed", v->url);
    v->state = XL_BREAKER_CLOSED;
    v->failures = 0;
    v->probing = false;
    s->attempt = 0;
}

/* The server's "detail" (or error) from an error answer, for the log. */
static void answer_detail(const char *body, size_t len, char *out, size_t outlen)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *d = j ? json_object_get(j, "detail") : NULL, *e = j ? json_object_get(j, "error") : NULL;

    snprintf(out, outlen, "%s%s%s", json_is_string(e) ? json_string_value(e) : "no detail",
             json_is_string(d) ? ": " : "", json_is_string(d) ? json_string_value(d) : "");
    json_decref(j);
}

static bool is_duplicate(const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    bool dup = json_is_true(json_object_get(j, "duplicate"));

    json_decref(j);
    return dup;
}

static void on_ingest_done(void *ctx, long status, const char *body, size_t len,
                           const char *error)
{
    struct xl_shipper_slot *sl = ctx;
    struct xl_shipper *s = sl->s;
    struct xl_shipper_server *v = sl->srv;
    char detail[512];

    sl->busy = false;
    s->st.in_flight--;
    if (s->closing) {
        xl_outbox_done(s->o.outbox, sl->seq, false);
        return;
    }
    if (status == 200) {
        server_ok(s, v);
        s->st.batches_sent++;
        s->st.records_sent += sl->items;
        if (len && strstr(body, "\"duplicate\"") && is_duplicate(body, len))
            s->st.duplicates++;
        xl_outbox_done(s->o.outbox, sl->seq, true);
    } else if (transient(status)) {
        xl_outbox_done(s->o.outbox, sl->seq, false);
        if (status)
            xl_log_rl(XL_LOG_WARN, 30, MOD, "%s: server answered %ld; will retry", v->url,
                      status);
        else
            xl_log_rl(XL_LOG_WARN, 30, MOD, "%s: %s; will retry", v->url, error);
        server_failed(s, v);
    } else if (status == 409 || status == 404) {
        xl_outbox_done(s->o.outbox, sl->seq, false);
        answer_detail(body, len, detail, sizeof(detail));
        xl_log_info(MOD, "%s does not know this agent (%s); registering again", v->url, detail);
        v->registered = false;
        do_register(v);
    } else {
        answer_detail(body, len, detail, sizeof(detail));
        xl_log_error(MOD, "%s rejected batch seq %llu of %zu records with %ld (%s); batch "
                          "dropped",
                     v->url, (unsigned long long)sl->seq, sl->items, status, detail);
        s->st.batches_rejected++;
        s->st.records_rejected += sl->items;
        server_ok(s, v);
        xl_outbox_done(s->o.outbox, sl->seq, true);
    }
    xl_shipper_kick(s);
}

static struct xl_shipper_slot *free_slot(struct xl_shipper *s)
{
    for (unsigned i = 0; i < s->o.max_in_flight; i++)
        if (!s->slot[i].busy)
            return &s->slot[i];
    return NULL;
}

void xl_shipper_kick(struct xl_shipper *s)
{
    struct xl_err err = {0};
    struct xl_outbox_item it;
    struct xl_shipper_server *v;
    struct xl_shipper_slot *sl;
    char url[2048];
    int64_t wait;

    if (s->closing || s->waiting)
        return;
    while ((sl = free_slot(s))) {
        if (!(v = pick(s, &wait))) {
            /* All breakers open: wait for the first cooldown to end. A
             * probe in flight (half-open) kicks again when it completes. */
            if (wait != INT64_MAX)
                wait_then_kick(s, (uint64_t)wait);
            return;
        }
        if (!v->registered) {
            do_register(v);
            return;
        }
        if (!xl_outbox_take(s->o.outbox, &it))
            break;
        snprintf(url, sizeof(url), "%s/api/v1/ingest", v->url);
        sl->busy = true;
        sl->seq = it.seq;
        sl->items = it.items;
        sl->srv = v;
        if (v->state == XL_BREAKER_HALF_OPEN)
            v->probing = true;
        s->st.in_flight++;
        if (xl_httpc_request_encoded(&s->http, "POST", url, s->o.token, it.zstd ? "zstd" : NULL,
                                     it.body, it.len, (long)s->o.request_timeout_ms,
                                     on_ingest_done, sl, &err) != XL_OK) {
            sl->busy = false;
            s->st.in_flight--;
            xl_outbox_done(s->o.outbox, it.seq, false);
            xl_log_rl(XL_LOG_ERROR, 30, MOD, "cannot start request: %s", err.msg);
            server_failed(s, v);
            return;
        }
    }
    if (sl && s->o.on_idle)
        s->o.on_idle(s->o.ctx);
}

bool xl_shipper_ready(const struct xl_shipper *s)
{
    return !s->waiting && s->st.in_flight < s->o.max_in_flight &&
           xl_outbox_drained(s->o.outbox);
}

bool xl_shipper_quiet(const struct xl_shipper *s)
{
    return s->st.in_flight == 0;
}

bool xl_shipper_registered(const struct xl_shipper *s)
{
    for (size_t i = 0; i < s->nsrv; i++)
        if (s->srv[i].registered)
            return true;
    return false;
}

/* ---- registration ---- */

static void on_register_done(void *ctx, long status, const char *body, size_t len,
                             const char *error)
{
    struct xl_shipper_server *v = ctx;
    struct xl_shipper *s = v->s;
    char detail[512];

    free(v->reg_body);
    v->reg_body = NULL;
    v->registering = false;
    if (s->closing)
        return;
    if (status == 200) {
        xl_log_info(MOD, "registered with %s as %s", v->url, s->o.agent_id);
        v->registered = true;
        server_ok(s, v);
        xl_shipper_kick(s);
        return;
    }
    if (status == 0)
        snprintf(detail, sizeof(detail), "%s", error ? error : "no answer");
    else
        answer_detail(body, len, detail, sizeof(detail));
    if (status == 401)
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "%s refused the token (%s): check `token` in the config",
                  v->url, detail);
    else if (status)
        xl_log_rl(XL_LOG_WARN, 30, MOD, "cannot register with %s: %ld %s", v->url, status,
                  detail);
    else
        xl_log_rl(XL_LOG_WARN, 30, MOD, "cannot register with %s: %s", v->url, detail);
    server_failed(s, v);
}

static void do_register(struct xl_shipper_server *v)
{
    struct xl_shipper *s = v->s;
    struct xl_err err = {0};
    json_t *labels, *body;
    char url[2048], *text;

    if (v->registering || s->closing)
        return;
    labels = json_object();
    for (size_t i = 0; labels && i < s->o.labels->n; i++)
        json_object_set_new(labels, s->o.labels->k[i], json_string(s->o.labels->v[i]));
    body = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "v", 1, "agent_id",
                     s->o.agent_id, "host", s->o.host, "ip", s->o.ip, "version", XL_VERSION,
                     "labels", labels, "heartbeat_interval_ms",
                     (json_int_t)s->o.heartbeat_interval_ms, "started",
                     (json_int_t)s->o.started_ms);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(url, sizeof(url), "%s/api/v1/agents/%s", v->url, s->o.agent_id);
    if (!text || xl_httpc_request(&s->http, "PUT", url, s->o.token, text, strlen(text),
                                  (long)s->o.request_timeout_ms, on_register_done, v,
                                  &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "cannot start registration: %s",
                  text ? err.msg : "out of memory");
        free(text);
        server_failed(s, v);
        return;
    }
    v->reg_body = text;
    v->registering = true;
    if (v->state == XL_BREAKER_HALF_OPEN)
        v->probing = true;
}

/* ---- heartbeats and health ---- */

void xl_shipper_health(const struct xl_shipper *s, int64_t now_ms, struct xl_shipper_health *h)
{
    struct xl_outbox_stats *ob = &h->outbox;

    xl_outbox_stats(s->o.outbox, ob);
    h->batches_sent = s->st.batches_sent;
    h->records_sent = s->st.records_sent;
    h->batches_dropped = ob->dropped_batches + s->st.batches_rejected;
    h->records_dropped = ob->dropped_records + s->st.records_rejected +
                         (s->o.extra_dropped ? s->o.extra_dropped(s->o.ctx) : 0);
    h->duplicates = s->st.duplicates;
    h->retries = s->st.retries;
    h->in_flight = s->st.in_flight;
    h->outbox_oldest_age_ms = ob->oldest_ms ? now_ms - ob->oldest_ms : 0;
}

/* The heartbeat's `stats` (docs/protocol.md). */
static json_t *health_json(const struct xl_shipper *s)
{
    struct xl_shipper_health h;
    json_t *br = json_array();

    xl_shipper_health(s, xl_now_ms(), &h);
    for (size_t i = 0; br && i < s->nsrv; i++)
        json_array_append_new(br, json_pack("{s:s, s:s, s:i}", "server", s->srv[i].url, "state",
                                            breaker_name(s->srv[i].state), "failures",
                                            (int)s->srv[i].failures));
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:o}",
                     "batches_sent", (json_int_t)h.batches_sent, "records_sent",
                     (json_int_t)h.records_sent, "batches_dropped", (json_int_t)h.batches_dropped,
                     "records_dropped", (json_int_t)h.records_dropped, "duplicates",
                     (json_int_t)h.duplicates, "retries", (json_int_t)h.retries, "in_flight",
                     (json_int_t)h.in_flight, "outbox_records", (json_int_t)h.outbox.records,
                     "outbox_bytes", (json_int_t)h.outbox.bytes, "outbox_oldest_age_ms",
                     (json_int_t)h.outbox_oldest_age_ms, "outbox_full", h.outbox.full,
                     "outbox_write_errors", (json_int_t)h.outbox.write_errors,
                     "outbox_recovered_records", (json_int_t)h.outbox.recovered_records,
                     "outbox_corrupt_bytes", (json_int_t)h.outbox.corrupt_bytes, "breakers", br);
}

static void on_heartbeat_done(void *ctx, long status, const char *body, size_t len,
                              const char *error)
{
    struct xl_shipper_server *v = ctx;
    struct xl_shipper *s = v->s;

    (void)body;
    (void)len;
    free(s->hb_body);
    s->hb_body = NULL;
    if (s->closing)
        return;
    if (status == 404) {
        xl_log_info(MOD, "%s forgot this agent; registering again", v->url);
        v->registered = false;
        do_register(v);
    } else if (status != 200) {
        xl_log_rl(XL_LOG_WARN, 60, MOD, "heartbeat to %s failed: %ld %s", v->url, status,
                  error ? error : "");
    }
}

static void on_heartbeat(uv_timer_t *t)
{
    struct xl_shipper *s = t->data;
    struct xl_shipper_server *v;
    struct xl_err err = {0};
    char url[2048], *text;
    json_t *body;
    int64_t wait;

    /* One heartbeat at a time: a slow server does not collect a pile. */
    if (s->hb_body || !(v = pick(s, &wait)) || !v->registered)
        return;
    body = json_pack("{s:i, s:I, s:o}", "v", 1, "ts", (json_int_t)xl_now_ms(), "stats",
                     health_json(s));
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(url, sizeof(url), "%s/api/v1/agents/%s/heartbeat", v->url, s->o.agent_id);
    if (!text || xl_httpc_request(&s->http, "POST", url, s->o.token, text, strlen(text),
                                  (long)s->o.request_timeout_ms, on_heartbeat_done, v,
                                  &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot send heartbeat: %s",
                  text ? err.msg : "out of memory");
        free(text);
        return;
    }
    s->hb_body = text;
}

xl_rc xl_shipper_start(struct xl_shipper *s, uv_loop_t *loop, const struct xl_shipper_opts *o,
                       struct xl_err *err)
{
    xl_rc rc;

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->o = *o;
    if (s->o.max_in_flight < 1)
        s->o.max_in_flight = 1;
    if (s->o.max_in_flight > XL_SHIPPER_MAX_IN_FLIGHT)
        s->o.max_in_flight = XL_SHIPPER_MAX_IN_FLIGHT;
    if (s->o.breaker_failures < 1)
        s->o.breaker_failures = 1;
    if (!(s->srv = xl_calloc(o->servers->n, sizeof(*s->srv))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    s->nsrv = o->servers->n;
    for (size_t i = 0; i < s->nsrv; i++) {
        s->srv[i].s = s;
        s->srv[i].url = o->servers->v[i];
    }
    for (unsigned i = 0; i < XL_SHIPPER_MAX_IN_FLIGHT; i++)
        s->slot[i].s = s;
    if ((rc = xl_httpc_init(&s->http, loop, err)) != XL_OK) {
        xl_free(s->srv);
        s->srv = NULL;
        return rc;
    }
    uv_timer_init(loop, &s->hb_timer);
    uv_timer_init(loop, &s->retry_timer);
    s->hb_timer.data = s->retry_timer.data = s;
    uv_timer_start(&s->hb_timer, on_heartbeat, (uint64_t)o->heartbeat_interval_ms,
                   (uint64_t)o->heartbeat_interval_ms);
    do_register(&s->srv[0]);
    return XL_OK;
}

void xl_shipper_stop(struct xl_shipper *s)
{
    s->closing = true;
    uv_timer_stop(&s->hb_timer);
    uv_timer_stop(&s->retry_timer);
    uv_close((uv_handle_t *)&s->hb_timer, NULL);
    uv_close((uv_handle_t *)&s->retry_timer, NULL);
    /* Requests in flight end here; their batches stay in the outbox. */
    xl_httpc_close(&s->http);
    xl_free(s->srv);
    s->srv = NULL;
    s->nsrv = 0;
}
