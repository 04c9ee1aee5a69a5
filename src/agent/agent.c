/* xluo-agent: start-up, the event loop, batching and shutdown. */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/units.h"
#include "config.h"
#include "identity.h"
#include "batch.h"
#include "expo.h"
#include "inputs/exec/exec.h"
#include "inputs/exec/parse.h"
#include "inputs/system/system.h"
#include "inputs/tail/tail.h"
#include "local.h"
#include "outbox.h"
#include "shipper.h"

#define MOD "agent"
/* How long a stop waits for batches kept in memory (outbox disabled) to
 * reach the server. */
#define DRAIN_MS 5000

/* Tail positions that may be committed once the outbox is stable up to
 * record number `need`. */
struct mark_group {
    struct mark_group *next;
    uint64_t need;
    struct xl_mark *marks;
    size_t n;
};

struct xl_agent {
    struct xl_agent_cfg *cfg;
    struct xl_agent_cfg *reloaded; /* the latest config read by reload (tail inputs) */
    const char *conf_path;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sys_timer, drain_timer, flush_timer;
    struct xl_sysinput *sys;
    struct xl_tail *tail;
    struct xl_exec *exec;
    struct xl_local *local;
    struct xl_expo sys_expo;  /* the last system collection, for GET /metrics */
    struct xl_shipper shipper;
    struct xl_outbox *outbox;
    struct mark_group *marks_head, *marks_tail;
    struct xl_batch_builder batch;
    uint64_t dropped;     /* records the agent could not batch or keep */
    uint64_t collections; /* system collections since start */
    uint64_t pushed;      /* records taken by POST /v1/push */
    int64_t started_ms;
    struct xl_seq seq;
    char id[33];
    char host[256];
    char ip[64];
    int64_t drain_deadline;
    bool stopping, tail_paused;
};

/* Commit the tail positions whose lines are all stable in the outbox. */
static void commit_marks(struct xl_agent *a)
{
    uint64_t stable = xl_outbox_stable(a->outbox);
    struct mark_group *g;

    while ((g = a->marks_head) && g->need <= stable) {
        for (size_t i = 0; a->tail && i < g->n; i++)
            xl_tail_commit(a->tail, g->marks[i].file_uid, g->marks[i].end);
        a->marks_head = g->next;
        if (!a->marks_head)
            a->marks_tail = NULL;
        xl_free(g->marks);
        xl_free(g);
    }
}

/* Keep a batch's marks until everything appended so far is stable. */
static void hold_marks(struct xl_agent *a, struct xl_batch_out *out, uint64_t need)
{
    struct mark_group *g;

    if (!out->nmarks)
        return;
    if (!(g = xl_calloc(1, sizeof(*g)))) {
        /* Not fatal: a later mark of the same file covers these. */
        xl_log_rl(XL_LOG_WARN, 60, MOD, "out of memory recording tail positions");
        return;
    }
    g->need = need;
    g->marks = out->marks;
    g->n = out->nmarks;
    out->marks = NULL;
    out->nmarks = 0;
    if (a->marks_tail)
        a->marks_tail->next = g;
    else
        a->marks_head = g;
    a->marks_tail = g;
}

/* Wrap what the builder holds into a batch and put it in the outbox. */
static void flush_batch(struct xl_agent *a)
{
    struct xl_batch_out out;
    struct xl_err err = {0};
    uint64_t seq = 0, no = 0;

    uv_timer_stop(&a->flush_timer);
    if (xl_batch_empty(&a->batch))
        return;
    if (a->batch.items && xl_seq_next(&a->seq, &seq, &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "%s: batch kept for the next try", err.msg);
        return;
    }
    if (xl_batch_finish(&a->batch, a->id, seq, xl_outbox_floor(a->outbox), xl_now_ms(), &out) !=
        XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory finishing a batch: kept for the next try");
        return;
    }
    if (out.body && xl_outbox_append(a->outbox, seq, out.body, out.len, out.items,
                                     out.droppable, xl_now_ms(), &no) == XL_OK) {
        out.body = NULL; /* the outbox's now */
    } else if (out.body) {
        /* Its lines are read again after a restart (their marks go too). */
        a->dropped += out.items;
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory: batch seq %llu of %zu records dropped",
                  (unsigned long long)seq, out.items);
        xl_batch_out_cleanup(&out);
        return;
    }
    if (out.items)
        xl_log_debug(MOD, "batch seq %llu queued: %zu records, %zu bytes",
                     (unsigned long long)seq, out.items, out.len);
    hold_marks(a, &out, xl_outbox_appended(a->outbox));
    xl_batch_out_cleanup(&out);
    commit_marks(a);
    xl_shipper_kick(&a->shipper);
}

static void on_flush_timer(uv_timer_t *t)
{
    flush_batch(t->data);
}

/* After adding: close the batch now if it is big; at the end of this loop
 * turn if the shipper could send it right away (so a burst read in one turn
 * travels together); else when it is batch_max_age old or the shipper asks
 * for more (on_idle), whichever comes first. */
static void added(struct xl_agent *a)
{
    if (xl_batch_bytes(&a->batch) >= (size_t)a->cfg->batch_max_size)
        flush_batch(a);
    else if (xl_shipper_ready(&a->shipper))
        uv_timer_start(&a->flush_timer, on_flush_timer, 0, 0);
    else if (!uv_is_active((uv_handle_t *)&a->flush_timer))
        uv_timer_start(&a->flush_timer, on_flush_timer, (uint64_t)a->cfg->batch_max_age, 0);
}

/* Sink for the system input. */
static void emit_metric(void *ctx, const char *name, const struct xl_label *labels,
                        size_t nlabels, double value, int64_t ts_ms)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_metric(&a->batch, name, labels, nlabels, value, ts_ms) != XL_OK) {
        flush_batch(a);
        if (xl_batch_add_metric(&a->batch, name, labels, nlabels, value, ts_ms) != XL_OK) {
            a->dropped++;
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot add %s to a batch: dropped", name);
        }
    }
}

/* Sink for the exec input and the push endpoint. */
static void rec_metric(void *ctx, const char *name, const struct xl_label *labels, size_t n,
                       double value, int64_t ts_ms)
{
    emit_metric(ctx, name, labels, n, value, ts_ms);
    added(ctx);
}

static void rec_check(void *ctx, const struct xl_check_rec *c)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_check(&a->batch, c) != XL_OK) {
        flush_batch(a);
        if (xl_batch_add_check(&a->batch, c) != XL_OK) {
            a->dropped++;
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot add check %s to a batch: dropped", c->name);
        }
    }
    added(a);
}

static void rec_event(void *ctx, const char *type, const json_t *fields, const char *source,
                      int64_t ts_ms)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_event(&a->batch, type, fields, source, ts_ms) != XL_OK) {
        flush_batch(a);
        if (xl_batch_add_event(&a->batch, type, fields, source, ts_ms) != XL_OK) {
            a->dropped++;
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot add a %s event to a batch: dropped", type);
        }
    }
    added(a);
}

/* Sink for the tail input: lines, marks, backpressure. */
static void tail_line(void *ctx, const struct xl_log_line *l)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_log(&a->batch, l) == XL_OK) {
        added(a);
        return;
    }
    /* The batch is at its hard size limit (a line near max_line_bytes on top
     * of a full batch): send it and start a new one. */
    flush_batch(a);
    if (xl_batch_add_log(&a->batch, l) != XL_OK) {
        a->dropped++;
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot add a line of %s at offset %llu to a batch",
                  l->path, (unsigned long long)l->offset);
    }
    added(a);
}

static void tail_mark(void *ctx, uint64_t file_uid, uint64_t end)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_mark(&a->batch, file_uid, end) != XL_OK) {
        /* Not fatal: a later mark of the file covers this one. */
        xl_log_rl(XL_LOG_WARN, 60, MOD, "out of memory recording a tail position");
        return;
    }
    added(a);
}

static bool tail_full(void *ctx)
{
    struct xl_agent *a = ctx;

    if (xl_outbox_full(a->outbox)) {
        if (!a->tail_paused)
            xl_log_info(MOD, "outbox full: log inputs pause until the server catches up");
        a->tail_paused = true;
        return true;
    }
    return false;
}

/* The outbox made records stable or freed space. */
static void on_outbox_change(void *ctx)
{
    struct xl_agent *a = ctx;

    commit_marks(a);
    xl_local_stable(a->local, xl_outbox_stable(a->outbox));
    if (a->tail_paused && !xl_outbox_full(a->outbox)) {
        a->tail_paused = false;
        xl_log_info(MOD, "outbox has room again: log inputs resume");
        if (a->tail)
            xl_tail_resume(a->tail);
    }
    xl_shipper_kick(&a->shipper);
}

static uint64_t extra_dropped(void *ctx)
{
    return ((struct xl_agent *)ctx)->dropped;
}

static void on_idle(void *ctx)
{
    struct xl_agent *a = ctx;

    if (!xl_batch_empty(&a->batch))
        flush_batch(a);
}

/* The agent's own health as metrics (docs/metrics.md): shipped with the
 * system input's samples, and shown on GET /metrics. */
static void emit_self(struct xl_agent *a, const struct xl_sample_sink *sk, int64_t now)
{
    /* 0 closed, 1 half-open, 2 open (docs/metrics.md). */
    static const double breaker_value[] = {
        [XL_BREAKER_CLOSED] = 0, [XL_BREAKER_HALF_OPEN] = 1, [XL_BREAKER_OPEN] = 2};
    struct xl_shipper_health h;

    xl_shipper_health(&a->shipper, now, &h);
    xl_sink_emit(sk, "xluo_agent_collections_total", NULL, 0, (double)a->collections, now);
    xl_sink_emit(sk, "xluo_agent_outbox_bytes", NULL, 0, (double)h.outbox.bytes, now);
    xl_sink_emit(sk, "xluo_agent_outbox_records", NULL, 0, (double)h.outbox.records, now);
    xl_sink_emit(sk, "xluo_agent_outbox_oldest_age_seconds", NULL, 0,
                (double)h.outbox_oldest_age_ms / 1e3, now);
    xl_sink_emit(sk, "xluo_agent_batches_sent_total", NULL, 0, (double)h.batches_sent, now);
    xl_sink_emit(sk, "xluo_agent_records_sent_total", NULL, 0, (double)h.records_sent, now);
    xl_sink_emit(sk, "xluo_agent_records_dropped_total", NULL, 0, (double)h.records_dropped, now);
    xl_sink_emit(sk, "xluo_agent_retries_total", NULL, 0, (double)h.retries, now);
    {
        struct xl_exec_stats es;

        xl_exec_stats(a->exec, &es);
        xl_sink_emit(sk, "xluo_agent_exec_runs_total", NULL, 0, (double)es.runs, now);
        xl_sink_emit(sk, "xluo_agent_exec_failed_total", NULL, 0, (double)es.failed, now);
        xl_sink_emit(sk, "xluo_agent_exec_timeouts_total", NULL, 0, (double)es.timeouts, now);
        xl_sink_emit(sk, "xluo_agent_exec_floods_total", NULL, 0, (double)es.floods, now);
        xl_sink_emit(sk, "xluo_agent_exec_skipped_total", NULL, 0, (double)es.skipped, now);
        xl_sink_emit(sk, "xluo_agent_exec_running", NULL, 0, (double)es.running, now);
        xl_sink_emit(sk, "xluo_agent_push_records_total", NULL, 0, (double)a->pushed, now);
    }
    for (size_t i = 0; i < a->shipper.nsrv; i++) {
        struct xl_label l = {.name = "server", .value = a->shipper.srv[i].url};

        xl_sink_emit(sk, "xluo_agent_breaker_state", &l, 1,
                    breaker_value[a->shipper.srv[i].state], now);
    }
}

/* Sink for the system input: the batch, and the copy GET /metrics shows. */
static void emit_sys(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                     double value, int64_t ts_ms)
{
    struct xl_agent *a = ctx;

    emit_metric(a, name, labels, nlabels, value, ts_ms);
    if (a->local && xl_expo_add(&a->sys_expo, name, labels, nlabels, value) != XL_OK)
        xl_log_rl(XL_LOG_WARN, 60, MOD, "out of memory keeping %s for /metrics", name);
}

static void on_sys_timer(uv_timer_t *t)
{
    struct xl_agent *a = t->data;
    struct xl_sample_sink sink = {.emit = emit_sys, .ctx = a};
    struct xl_sample_sink self = {.emit = emit_metric, .ctx = a};
    struct xl_err err = {0};
    int64_t now = xl_now_ms();

    xl_expo_reset(&a->sys_expo);
    if (a->sys && (xl_sysinput_collect(a->sys, now, xl_mono_ms(), &sink, &err) != XL_OK ||
                   err.msg[0]))
        xl_log_rl(XL_LOG_WARN, 300, "system", "%s", err.msg);
    a->collections++;
    emit_self(a, &self, now);
    added(a);
}

/* ---- The local endpoint (local.h) ---- */

static void expo_emit(void *ctx, const char *name, const struct xl_label *labels, size_t n,
                      double value, int64_t ts_ms)
{
    (void)ts_ms;
    xl_expo_add(ctx, name, labels, n, value);
}

static xl_rc local_metrics(void *ctx, struct xl_buf *out)
{
    struct xl_agent *a = ctx;
    struct xl_expo self;
    struct xl_sample_sink sk = {.emit = expo_emit, .ctx = &self};
    const struct xl_expo *sets[2] = {&a->sys_expo, &self};
    xl_rc rc;

    xl_expo_init(&self);
    emit_self(a, &sk, xl_now_ms());
    rc = xl_expo_render(sets, 2, out);
    xl_expo_cleanup(&self);
    return rc;
}

static void local_health(void *ctx, json_t *o)
{
    struct xl_agent *a = ctx;
    struct xl_shipper_health h;
    int64_t now = xl_now_ms();

    xl_shipper_health(&a->shipper, now, &h);
    json_object_set_new(o, "agent_id", json_string(a->id));
    json_object_set_new(o, "host", json_string(a->host));
    json_object_set_new(o, "version", json_string(XL_VERSION));
    json_object_set_new(o, "uptime_ms", json_integer(now - a->started_ms));
    json_object_set_new(o, "registered", json_boolean(xl_shipper_registered(&a->shipper)));
    json_object_set_new(o, "outbox_records", json_integer((json_int_t)h.outbox.records));
    json_object_set_new(o, "outbox_bytes", json_integer((json_int_t)h.outbox.bytes));
}

/* Count what the parser hands over, then pass it on. */
struct push_count {
    struct xl_agent *a;
    size_t n;
};

static void pc_metric(void *ctx, const char *name, const struct xl_label *labels, size_t n,
                      double value, int64_t ts_ms)
{
    struct push_count *pc = ctx;
    pc->n++;
    rec_metric(pc->a, name, labels, n, value, ts_ms);
}

static void pc_check(void *ctx, const struct xl_check_result *c)
{
    struct push_count *pc = ctx;
    struct xl_check_rec r = {.name = c->name, .state = c->state, .output = c->output,
                             .long_output = c->long_output, .exit_code = -1,
                             .duration_ms = -1, .interval_ms = -1, .source = "push",
                             .ts_ms = c->ts_ms};

    pc->n++;
    rec_check(pc->a, &r);
}

static void pc_event(void *ctx, const char *type, const json_t *fields, int64_t ts_ms)
{
    struct push_count *pc = ctx;
    pc->n++;
    rec_event(pc->a, type, fields, "push", ts_ms);
}

/* A push is answered once its records are durable in the outbox (at once
 * when the outbox is in memory only): flush them into a batch now and
 * wait for that batch's number. */
static xl_rc local_push(void *ctx, const char *body, size_t len, size_t *accepted,
                        uint64_t *wait, struct xl_err *err)
{
    static const struct xl_parse_limits lim = {.max_records = 100000,
                                               .max_event_bytes = 64 * 1024};
    struct push_count pc = {.a = ctx};
    struct xl_rec_sink sink = {.metric = pc_metric, .check = pc_check, .event = pc_event,
                               .ctx = &pc};
    xl_rc rc = xl_parse_json_records(body, len, xl_now_ms(), &lim, &sink, err);

    *accepted = pc.n;
    pc.a->pushed += pc.n;
    if (rc == XL_OK && pc.n)
        /* Answered as delivered: never dropped as a metrics-only batch. */
        pc.a->batch.keep = true;
    if (rc == XL_OK && pc.n && xl_outbox_durable(pc.a->outbox)) {
        flush_batch(pc.a);
        if (xl_outbox_stable(pc.a->outbox) < xl_outbox_appended(pc.a->outbox))
            *wait = xl_outbox_appended(pc.a->outbox);
    }
    return rc;
}

static void close_all(struct xl_agent *a)
{
    struct xl_err err = {0};

    flush_batch(a);
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    uv_close((uv_handle_t *)&a->sys_timer, NULL);
    uv_close((uv_handle_t *)&a->drain_timer, NULL);
    uv_close((uv_handle_t *)&a->flush_timer, NULL);
    xl_local_stop(a->local);
    a->local = NULL;
    /* Requests in flight end; their batches stay in the outbox. */
    xl_shipper_stop(&a->shipper);
    /* The outbox syncs and reports what is stable: those positions are
     * committed before the tail checkpoint. */
    xl_outbox_close(a->outbox);
    a->outbox = NULL;
    if (a->tail) {
        if (xl_tail_checkpoint(a->tail, &err) != XL_OK)
            xl_log_error(MOD, "tail checkpoint: %s", err.msg);
        xl_tail_stop(a->tail);
        a->tail = NULL;
    }
}

static void on_drain(uv_timer_t *t)
{
    struct xl_agent *a = t->data;

    struct xl_outbox_stats st;
    bool done;

    flush_batch(a);
    xl_outbox_stats(a->outbox, &st);
    /* On disk the backlog simply waits for the next start. */
    done = xl_outbox_durable(a->outbox) || !st.records ||
           !xl_shipper_registered(&a->shipper) || xl_mono_ms() >= a->drain_deadline;
    if (!done)
        return;
    if (st.records && xl_outbox_durable(a->outbox))
        xl_log_info(MOD, "stopping; %llu batches wait in the outbox for the next start",
                    (unsigned long long)st.records);
    else if (st.records)
        xl_log_warn(MOD, "stopping with %llu batches not delivered (the outbox is disabled; "
                         "log lines among them are read again at the next start, metrics "
                         "are lost)",
                    (unsigned long long)st.records);
    uv_timer_stop(t);
    close_all(a);
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
    struct xl_agent *a = h->data;

    if (a->stopping)
        return;
    a->stopping = true;
    xl_log_info(MOD, "signal %d: stopping", sig);
    uv_timer_stop(&a->sys_timer);
    /* Running scripts are killed; what they printed is not reported. */
    xl_exec_stop(a->exec);
    a->exec = NULL;
    a->drain_deadline = xl_mono_ms() + DRAIN_MS;
    uv_timer_start(&a->drain_timer, on_drain, 0, 100);
}

/* SIGHUP: reopen the log, re-read the config and apply what can change
 * without a restart (the tail and exec inputs). */
static void on_hup(uv_signal_t *h, int sig)
{
    struct xl_agent *a = h->data;
    struct xl_agent_cfg *cfg = NULL;
    struct xl_err err = {0};
    struct xl_cfg_array *tail;
    struct xl_record_sink rs = {.metric = rec_metric, .check = rec_check, .event = rec_event,
                                .ctx = a};
    struct xl_exec *exec = NULL;

    if (xl_log_reopen(&err) != XL_OK)
        xl_log_error(MOD, "%s", err.msg);
    if (!a->conf_path || a->stopping) {
        xl_log_info(MOD, "SIGHUP: log reopened (%s)",
                    a->stopping ? "stopping" : "no config file to re-read");
        return;
    }
    if (xl_agent_cfg_load(a->conf_path, a->cfg->paths.prefix, &cfg, &err) != XL_OK) {
        xl_log_error(MOD, "reload: %s; keeping the running configuration", err.msg);
        return;
    }
    /* The new scripts start beside the old ones, which stop once the rest
     * of the reload has worked: a bad config changes nothing. */
    if (cfg->inputs.exec.n && xl_exec_start(&a->loop, a->cfg->paths.prefix, cfg->inputs.exec.items,
                                            cfg->inputs.exec.n, &rs, &exec, &err) != XL_OK)
        goto fail;
    tail = &cfg->inputs.tail;
    if (!a->tail) {
        struct xl_tail_sink sink = {.line = tail_line, .mark = tail_mark, .full = tail_full,
                                    .ctx = a};
        if (tail->n &&
            xl_tail_start(&a->loop, a->cfg->paths.data_path, tail->items, tail->n, &sink, &a->tail,
                          &err) != XL_OK)
            goto fail;
    } else if (xl_tail_reconfigure(a->tail, tail->items, tail->n, &err) != XL_OK) {
        goto fail;
    }
    /* Scripts running now are killed; the new set starts on its own turns. */
    xl_exec_stop(a->exec);
    a->exec = exec;
    xl_agent_cfg_free(a->reloaded);
    a->reloaded = cfg;
    xl_log_info(MOD, "reload: %zu tail and %zu exec inputs applied (other changes need a restart)",
                tail->n, cfg->inputs.exec.n);
    return;
fail:
    xl_log_error(MOD, "reload: %s; keeping the running tail and exec inputs", err.msg);
    xl_exec_stop(exec);
    xl_agent_cfg_free(cfg);
}

static xl_rc agent_open(struct xl_agent *a, struct xl_err *err)
{
    struct xl_agent_cfg *c = a->cfg;
    struct xl_sys_opts so = {.root = "", .per_cpu = c->inputs.system.per_cpu};
    struct xl_shipper_opts sh = {0};
    struct xl_outbox_opts ob = {0};
    xl_rc rc;

    if ((rc = xl_mkdirs(c->paths.data_path, err)) != XL_OK ||
        (rc = xl_identity_agent_id(c->paths.data_path, a->id, err)) != XL_OK ||
        (rc = xl_seq_open(&a->seq, c->paths.data_path, err)) != XL_OK)
        return rc;
    if (c->hostname && *c->hostname)
        snprintf(a->host, sizeof(a->host), "%s", c->hostname);
    else
        xl_identity_hostname(a->host, sizeof(a->host));
    if (c->local_ip && *c->local_ip)
        snprintf(a->ip, sizeof(a->ip), "%s", c->local_ip);
    else
        xl_identity_local_ip(c->servers.v[0], a->ip, sizeof(a->ip));
    xl_batch_init(&a->batch, (size_t)c->batch_max_size + (size_t)(2 << 20));
    if (!c->token || !*c->token)
        xl_log_warn(MOD, "no token in the config: the server will refuse this agent unless "
                         "it runs without one");
    ob.dir = c->outbox.enabled ? c->outbox_path : NULL;
    ob.max_size = (uint64_t)c->outbox.max_size;
    ob.segment_size = (uint64_t)c->outbox.segment_size;
    ob.sync = strcmp(c->outbox.sync, "always") == 0;
    ob.mem_max = (uint64_t)c->outbox.metrics_backlog;
    ob.zstd_level = strcmp(c->compression, "zstd") == 0 ? 1 : 0;
    ob.on_change = on_outbox_change;
    ob.ctx = a;
    if ((rc = xl_outbox_open(&a->loop, &ob, &a->outbox, err)) != XL_OK)
        return rc;
    sh.servers = &c->servers;
    sh.token = c->token;
    sh.agent_id = a->id;
    sh.host = a->host;
    sh.ip = a->ip;
    sh.labels = &c->labels;
    sh.heartbeat_interval_ms = c->heartbeat_interval;
    sh.request_timeout_ms = c->request_timeout;
    sh.retry_max_backoff_ms = c->retry_max_backoff;
    sh.max_in_flight = (unsigned)c->max_in_flight;
    sh.breaker_failures = (unsigned)c->breaker_failures;
    sh.breaker_cooldown_ms = c->breaker_cooldown;
    sh.started_ms = xl_now_ms();
    sh.outbox = a->outbox;
    sh.on_idle = on_idle;
    sh.extra_dropped = extra_dropped;
    sh.ctx = a;
    if ((rc = xl_shipper_start(&a->shipper, &a->loop, &sh, err)) != XL_OK)
        return rc;
    uv_timer_init(&a->loop, &a->sys_timer);
    uv_timer_init(&a->loop, &a->drain_timer);
    uv_timer_init(&a->loop, &a->flush_timer);
    a->sys_timer.data = a->drain_timer.data = a->flush_timer.data = a;
    if (c->inputs.tail.n) {
        struct xl_tail_sink sink = {.line = tail_line, .mark = tail_mark, .full = tail_full,
                                    .ctx = a};
        if ((rc = xl_tail_start(&a->loop, c->paths.data_path, c->inputs.tail.items, c->inputs.tail.n,
                                &sink, &a->tail, err)) != XL_OK)
            return rc;
    }
    if (c->inputs.exec.n) {
        struct xl_record_sink rs = {.metric = rec_metric, .check = rec_check,
                                    .event = rec_event, .ctx = a};
        if ((rc = xl_exec_start(&a->loop, c->paths.prefix, c->inputs.exec.items,
                                c->inputs.exec.n, &rs, &a->exec, err)) != XL_OK)
            return rc;
    }
    if (c->listen && *c->listen) {
        struct xl_local_ops lo = {.health = local_health, .metrics = local_metrics,
                                  .push = local_push, .ctx = a};
        struct xl_err lerr = {0};
        /* Not fatal: collecting and shipping matter more than the endpoint. */
        if (xl_local_start(&a->loop, c->listen, (size_t)c->push_max_body, &lo, &a->local,
                           &lerr) != XL_OK)
            xl_log_error(MOD, "%s; running without the local endpoint", lerr.msg);
    }
    if (c->inputs.system.enabled && !(a->sys = xl_sysinput_new(&so, err)))
        return err && err->rc ? err->rc : XL_ENOMEM;
    /* Without the system input the timer still ships the agent's own
     * metrics. */
    uv_timer_start(&a->sys_timer, on_sys_timer, 0, (uint64_t)c->inputs.system.interval);
    uv_signal_init(&a->loop, &a->sig_term);
    uv_signal_init(&a->loop, &a->sig_int);
    uv_signal_init(&a->loop, &a->sig_hup);
    a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
    uv_signal_start(&a->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&a->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&a->sig_hup, on_hup, SIGHUP);
    xl_log_info(MOD, "agent %s on %s (%s), servers: %s%s", a->id, a->host, a->ip,
                c->servers.v[0], c->servers.n > 1 ? " (+ failover)" : "");
    return XL_OK;
}

/* Every followed file (and every rotated one until its end is acknowledged)
 * holds a descriptor: allow as many as the hard limit does. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            xl_log_warn(MOD, "cannot raise the open file limit: %s", strerror(errno));
    }
}

int xl_agent_run(void *cfgp, const struct xl_daemon_opts *opts)
{
    struct xl_agent a = {.cfg = cfgp, .conf_path = opts->conf_path, .started_ms = xl_now_ms()};
    struct xl_err err = {0};
    enum xl_log_level lvl;
    int code = 0;

    if (!opts->debug && xl_log_level_parse(a.cfg->log_level, &lvl) == XL_OK)
        xl_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    uv_loop_init(&a.loop);
    if (agent_open(&a, &err) != XL_OK) {
        xl_log_error(MOD, "%s", err.msg);
        xl_daemon_ready(opts, false, err.msg);
        code = 1;
        /* Close whatever was opened; handles not yet initialised are left. */
        if (a.shipper.loop)
            xl_shipper_stop(&a.shipper);
        xl_exec_stop(a.exec);
        xl_local_stop(a.local);
        xl_outbox_close(a.outbox);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    xl_daemon_ready(opts, true, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
out:
    uv_loop_close(&a.loop);
    xl_sysinput_free(a.sys);
    xl_expo_cleanup(&a.sys_expo);
    xl_seq_close(&a.seq);
    xl_batch_cleanup(&a.batch);
    while (a.marks_head) {
        struct mark_group *g = a.marks_head;

        a.marks_head = g->next;
        xl_free(g->marks);
        xl_free(g);
    }
    xl_agent_cfg_free(a.reloaded);
    return code;
}
