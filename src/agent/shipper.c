/* xluo-agent: batch shipping, registration and heartbeats. */
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
#define BACKOFF_BASE_MS 1000

struct xl_shipper_batch {
    struct xl_shipper_batch *next;
    struct xl_batch_out b;
};

static void kick(struct xl_shipper *s);
static void do_register(struct xl_shipper *s);

static const char *server(const struct xl_shipper *s)
{
    return s->o.servers->v[s->server_idx % s->o.servers->n];
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
    return 100 + (uint64_t)r % (ceil + 1);
}

static bool transient(long status)
{
    return status == 0 || status == 429 || status >= 500;
}

/* Retry whatever is pending after a backoff, on the next server. */
static void on_retry(uv_timer_t *t)
{
    struct xl_shipper *s = t->data;

    s->waiting = false;
    if (!s->registered)
        do_register(s);
    else
        kick(s);
}

static void schedule_retry(struct xl_shipper *s)
{
    uint64_t ms;

    if (s->closing)
        return;
    if (s->o.servers->n > 1)
        s->server_idx = (s->server_idx + 1) % s->o.servers->n;
    ms = backoff_ms(s);
    s->attempt++;
    s->st.retries++;
    s->waiting = true;
    uv_timer_start(&s->retry_timer, on_retry, ms, 0);
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

/* Remove the head batch; report its marks when acked (delivered or
 * rejected for good). */
static void pop_head(struct xl_shipper *s, bool acked, bool delivered)
{
    struct xl_shipper_batch *b = s->head;

    s->head = b->next;
    if (!s->head)
        s->tail = NULL;
    s->st.queue_batches--;
    s->st.queue_bytes -= b->b.len;
    if (acked && b->b.nmarks && s->o.on_ack)
        s->o.on_ack(s->o.ctx, b->b.marks, b->b.nmarks, delivered);
    xl_batch_out_cleanup(&b->b);
    xl_free(b);
}

static void on_ingest_done(void *ctx, long status, const char *body, size_t len,
                           const char *error)
{
    struct xl_shipper *s = ctx;
    char detail[512];

    s->sending = false;
    if (s->closing || !s->head)
        return;
    if (status == 200) {
        s->st.batches_sent++;
        s->st.records_sent += s->head->b.items;
        s->attempt = 0;
        pop_head(s, true, true);
        kick(s);
        return;
    }
    if (transient(status)) {
        xl_log_rl(XL_LOG_WARN, 30, MOD, "%s: %s%s; will retry", server(s),
                  status ? "server error " : "", status ? "" : error);
        schedule_retry(s);
        return;
    }
    answer_detail(body, len, detail, sizeof(detail));
    if (status == 409 || status == 404) {
        xl_log_info(MOD, "server does not know this agent (%s); registering again", detail);
        s->registered = false;
        do_register(s);
        return;
    }
    xl_log_error(MOD, "server rejected a batch of %zu records with %ld (%s); batch dropped",
                 s->head->b.items, status, detail);
    s->st.batches_dropped++;
    s->st.records_dropped += s->head->b.items;
    pop_head(s, true, false);
    kick(s);
}

/* Send the head batch if we may. */
static void kick(struct xl_shipper *s)
{
    struct xl_err err = {0};
    char url[2048];

    if (s->closing)
        return;
    /* Batches of marks only are acknowledged in turn, without a request. */
    while (!s->sending && s->head && !s->head->b.body)
        pop_head(s, true, true);
    if (!s->head && !s->sending) {
        if (s->o.on_idle)
            s->o.on_idle(s->o.ctx);
        return;
    }
    if (!s->registered || s->sending || s->waiting || !s->head)
        return;
    snprintf(url, sizeof(url), "%s/api/v1/ingest", server(s));
    if (xl_httpc_request(&s->http, "POST", url, s->o.token, s->head->b.body, s->head->b.len,
                         (long)s->o.request_timeout_ms, on_ingest_done, s, &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "cannot start request: %s", err.msg);
        schedule_retry(s);
        return;
    }
    s->sending = true;
}

static void on_register_done(void *ctx, long status, const char *body, size_t len,
                             const char *error)
{
    struct xl_shipper *s = ctx;
    char detail[512];

    free(s->reg_body);
    s->reg_body = NULL;
    s->registering = false;
    if (s->closing)
        return;
    if (status == 200) {
        xl_log_info(MOD, "registered with %s as %s", server(s), s->o.agent_id);
        s->registered = true;
        s->attempt = 0;
        kick(s);
        return;
    }
    if (status == 0)
        snprintf(detail, sizeof(detail), "%s", error ? error : "no answer");
    else
        answer_detail(body, len, detail, sizeof(detail));
    if (status == 401)
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "%s refused the token (%s): check `token` in the config",
                  server(s), detail);
    else
        xl_log_rl(XL_LOG_WARN, 30, MOD, "cannot register with %s: %ld %s", server(s), status,
                  detail);
    schedule_retry(s);
}

static void do_register(struct xl_shipper *s)
{
    struct xl_err err = {0};
    json_t *labels = json_object(), *body;
    char url[2048], *text;

    if (s->registering || s->closing)
        return;
    for (size_t i = 0; labels && i < s->o.labels->n; i++)
        json_object_set_new(labels, s->o.labels->k[i], json_string(s->o.labels->v[i]));
    body = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "v", 1, "agent_id",
                     s->o.agent_id, "host", s->o.host, "ip", s->o.ip, "version", XL_VERSION,
                     "labels", labels, "heartbeat_interval_ms",
                     (json_int_t)s->o.heartbeat_interval_ms, "started",
                     (json_int_t)s->o.started_ms);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(url, sizeof(url), "%s/api/v1/agents/%s", server(s), s->o.agent_id);
    if (!text || xl_httpc_request(&s->http, "PUT", url, s->o.token, text, strlen(text),
                                  (long)s->o.request_timeout_ms, on_register_done, s,
                                  &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "cannot start registration: %s",
                  text ? err.msg : "out of memory");
        free(text);
        schedule_retry(s);
        return;
    }
    s->reg_body = text;
    s->registering = true;
}

static void on_heartbeat_done(void *ctx, long status, const char *body, size_t len,
                              const char *error)
{
    struct xl_shipper *s = ctx;

    free(s->hb_body);
    s->hb_body = NULL;
    if (s->closing)
        return;
    if (status == 404) {
        xl_log_info(MOD, "server forgot this agent; registering again");
        s->registered = false;
        do_register(s);
    } else if (status != 200) {
        xl_log_rl(XL_LOG_WARN, 60, MOD, "heartbeat to %s failed: %ld %s", server(s), status,
                  error ? error : "");
    }
}

static void on_heartbeat(uv_timer_t *t)
{
    struct xl_shipper *s = t->data;
    struct xl_err err = {0};
    char url[2048], *text;
    json_t *body;

    /* One heartbeat at a time: a slow server does not collect a pile. */
    if (!s->registered || s->hb_body)
        return;
    body = json_pack("{s:i, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "v", 1, "ts",
                     (json_int_t)xl_now_ms(), "stats", "batches_sent",
                     (json_int_t)s->st.batches_sent, "records_sent",
                     (json_int_t)s->st.records_sent, "batches_dropped",
                     (json_int_t)s->st.batches_dropped, "records_dropped",
                     (json_int_t)s->st.records_dropped, "retries", (json_int_t)s->st.retries,
                     "queue_batches", (json_int_t)s->st.queue_batches, "queue_bytes",
                     (json_int_t)s->st.queue_bytes);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(url, sizeof(url), "%s/api/v1/agents/%s/heartbeat", server(s), s->o.agent_id);
    if (!text || xl_httpc_request(&s->http, "POST", url, s->o.token, text, strlen(text),
                                  (long)s->o.request_timeout_ms, on_heartbeat_done, s,
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
    if ((rc = xl_httpc_init(&s->http, loop, err)) != XL_OK)
        return rc;
    uv_timer_init(loop, &s->hb_timer);
    uv_timer_init(loop, &s->retry_timer);
    s->hb_timer.data = s->retry_timer.data = s;
    uv_timer_start(&s->hb_timer, on_heartbeat, (uint64_t)o->heartbeat_interval_ms,
                   (uint64_t)o->heartbeat_interval_ms);
    do_register(s);
    return XL_OK;
}

/* Drop the oldest droppable batch that is not in flight; false if none. */
static bool drop_one(struct xl_shipper *s)
{
    struct xl_shipper_batch *prev = s->sending ? s->head : NULL;
    struct xl_shipper_batch *v = prev ? prev->next : s->head;

    while (v && !v->b.droppable) {
        prev = v;
        v = v->next;
    }
    if (!v)
        return false;
    xl_log_rl(XL_LOG_WARN, 30, MOD, "queue full (%zu bytes): dropping the oldest metrics batch "
                                    "of %zu records",
              s->o.queue_max, v->b.items);
    s->st.batches_dropped++;
    s->st.records_dropped += v->b.items;
    if (prev)
        prev->next = v->next;
    else
        s->head = v->next;
    if (s->tail == v)
        s->tail = prev;
    s->st.queue_batches--;
    s->st.queue_bytes -= v->b.len;
    xl_batch_out_cleanup(&v->b);
    xl_free(v);
    return true;
}

void xl_shipper_enqueue(struct xl_shipper *s, struct xl_batch_out *out)
{
    struct xl_shipper_batch *b = xl_calloc(1, sizeof(*b));

    if (!b) {
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "out of memory: %zu records dropped", out->items);
        s->st.batches_dropped++;
        s->st.records_dropped += out->items;
        xl_batch_out_cleanup(out);
        return;
    }
    while (s->st.queue_bytes + out->len > s->o.queue_max && drop_one(s))
        ;
    b->b = *out;
    memset(out, 0, sizeof(*out));
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    s->st.queue_batches++;
    s->st.queue_bytes += b->b.len;
    kick(s);
}

bool xl_shipper_idle(const struct xl_shipper *s)
{
    return !s->head && !s->sending;
}

bool xl_shipper_full(const struct xl_shipper *s)
{
    return s->st.queue_bytes >= s->o.queue_max;
}

void xl_shipper_stop(struct xl_shipper *s)
{
    s->closing = true;
    uv_timer_stop(&s->hb_timer);
    uv_timer_stop(&s->retry_timer);
    uv_close((uv_handle_t *)&s->hb_timer, NULL);
    uv_close((uv_handle_t *)&s->retry_timer, NULL);
    xl_httpc_close(&s->http);
    /* Undelivered batches are freed without acknowledging their marks: the
     * tail input reads those lines again at the next start. */
    while (s->head) {
        s->st.batches_dropped++;
        s->st.records_dropped += s->head->b.items;
        pop_head(s, false, false);
    }
    if (s->st.records_dropped)
        xl_log_info(MOD, "%llu records in total could not be delivered",
                    (unsigned long long)s->st.records_dropped);
}
