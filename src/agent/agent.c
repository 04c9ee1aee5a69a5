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
#include "inputs/system/system.h"
#include "inputs/tail/tail.h"
#include "shipper.h"

#define MOD "agent"
/* How long a stop waits for queued batches to reach the server. */
#define DRAIN_MS 5000

struct xl_agent {
    struct xl_agent_cfg *cfg;
    struct xl_agent_cfg *reloaded; /* the latest config read by reload (tail inputs) */
    const char *conf_path;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sys_timer, drain_timer, flush_timer;
    struct xl_sysinput *sys;
    struct xl_tail *tail;
    struct xl_shipper shipper;
    struct xl_batch_builder batch;
    struct xl_seq seq;
    char id[33];
    char host[256];
    char ip[64];
    int64_t drain_deadline;
    bool stopping, tail_paused;
};

/* Wrap what the builder holds into a batch and queue it. */
static void flush_batch(struct xl_agent *a)
{
    struct xl_batch_out out;
    struct xl_err err = {0};
    uint64_t seq = 0;

    uv_timer_stop(&a->flush_timer);
    if (xl_batch_empty(&a->batch))
        return;
    if (a->batch.items && xl_seq_next(&a->seq, &seq, &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "%s: batch kept for the next try", err.msg);
        return;
    }
    if (xl_batch_finish(&a->batch, a->id, seq, xl_now_ms(), &out) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory finishing a batch: kept for the next try");
        return;
    }
    if (out.items)
        xl_log_debug(MOD, "batch seq %llu queued: %zu records, %zu bytes",
                     (unsigned long long)seq, out.items, out.len);
    xl_shipper_enqueue(&a->shipper, &out);
}

static void on_flush_timer(uv_timer_t *t)
{
    flush_batch(t->data);
}

/* After adding: send now if the batch is big, soon if the shipper is idle
 * (so a burst read in one loop turn travels together), else when the
 * request in flight completes (on_idle). */
static void added(struct xl_agent *a)
{
    if (xl_batch_bytes(&a->batch) >= (size_t)a->cfg->batch_max_size)
        flush_batch(a);
    else if (xl_shipper_idle(&a->shipper) && !uv_is_active((uv_handle_t *)&a->flush_timer))
        uv_timer_start(&a->flush_timer, on_flush_timer, 0, 0);
}

/* Sink for the system input. */
static void emit_metric(void *ctx, const char *name, const struct xl_label *labels,
                        size_t nlabels, double value, int64_t ts_ms)
{
    struct xl_agent *a = ctx;

    if (xl_batch_add_metric(&a->batch, name, labels, nlabels, value, ts_ms) != XL_OK) {
        flush_batch(a);
        if (xl_batch_add_metric(&a->batch, name, labels, nlabels, value, ts_ms) != XL_OK) {
            a->shipper.st.records_dropped++;
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "cannot add %s to a batch: dropped", name);
        }
    }
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
        a->shipper.st.records_dropped++;
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

    if (xl_shipper_full(&a->shipper)) {
        a->tail_paused = true;
        return true;
    }
    return false;
}

/* The server has the lines before these marks: let tail checkpoint them. */
static void on_ack(void *ctx, const struct xl_mark *marks, size_t n, bool delivered)
{
    struct xl_agent *a = ctx;

    for (size_t i = 0; a->tail && i < n; i++)
        xl_tail_commit(a->tail, marks[i].file_uid, marks[i].end);
    if (a->tail_paused && !xl_shipper_full(&a->shipper)) {
        a->tail_paused = false;
        xl_tail_resume(a->tail);
    }
}

static void on_idle(void *ctx)
{
    struct xl_agent *a = ctx;

    if (!xl_batch_empty(&a->batch))
        flush_batch(a);
}

static void on_sys_timer(uv_timer_t *t)
{
    struct xl_agent *a = t->data;
    struct xl_sample_sink sink = {.emit = emit_metric, .ctx = a};
    struct xl_err err = {0};

    if (xl_sysinput_collect(a->sys, xl_now_ms(), xl_mono_ms(), &sink, &err) != XL_OK ||
        err.msg[0])
        xl_log_rl(XL_LOG_WARN, 300, "system", "%s", err.msg);
    added(a);
}

static void close_all(struct xl_agent *a)
{
    struct xl_err err = {0};

    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    uv_close((uv_handle_t *)&a->sys_timer, NULL);
    uv_close((uv_handle_t *)&a->drain_timer, NULL);
    uv_close((uv_handle_t *)&a->flush_timer, NULL);
    if (a->tail) {
        if (xl_tail_checkpoint(a->tail, &err) != XL_OK)
            xl_log_error(MOD, "tail checkpoint: %s", err.msg);
        xl_tail_stop(a->tail);
        a->tail = NULL;
    }
    xl_shipper_stop(&a->shipper);
}

static void on_drain(uv_timer_t *t)
{
    struct xl_agent *a = t->data;

    flush_batch(a);
    if (xl_shipper_idle(&a->shipper) || !a->shipper.registered ||
        xl_mono_ms() >= a->drain_deadline) {
        if (!xl_shipper_idle(&a->shipper))
            xl_log_warn(MOD, "stopping with %llu batches not delivered (log lines among them "
                             "are read again at the next start)",
                        (unsigned long long)a->shipper.st.queue_batches);
        uv_timer_stop(t);
        close_all(a);
    }
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
    struct xl_agent *a = h->data;

    if (a->stopping)
        return;
    a->stopping = true;
    xl_log_info(MOD, "signal %d: stopping (sending what is queued, up to %ds)", sig,
                DRAIN_MS / 1000);
    uv_timer_stop(&a->sys_timer);
    a->drain_deadline = xl_mono_ms() + DRAIN_MS;
    uv_timer_start(&a->drain_timer, on_drain, 0, 100);
}

/* SIGHUP: reopen the log, re-read the config and apply what can change
 * without a restart (the tail inputs). */
static void on_hup(uv_signal_t *h, int sig)
{
    struct xl_agent *a = h->data;
    struct xl_agent_cfg *cfg = NULL;
    struct xl_err err = {0};
    struct xl_cfg_array *tail;

    if (xl_log_reopen(&err) != XL_OK)
        xl_log_error(MOD, "%s", err.msg);
    if (!a->conf_path) {
        xl_log_info(MOD, "SIGHUP: log reopened (no config file to re-read)");
        return;
    }
    if (xl_agent_cfg_load(a->conf_path, a->cfg->paths.prefix, &cfg, &err) != XL_OK) {
        xl_log_error(MOD, "reload: %s; keeping the running configuration", err.msg);
        return;
    }
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
    xl_agent_cfg_free(a->reloaded);
    a->reloaded = cfg;
    xl_log_info(MOD, "reload: %zu tail inputs applied (other changes need a restart)", tail->n);
    return;
fail:
    xl_log_error(MOD, "reload: %s; keeping the running tail inputs", err.msg);
    xl_agent_cfg_free(cfg);
}

static xl_rc agent_open(struct xl_agent *a, struct xl_err *err)
{
    struct xl_agent_cfg *c = a->cfg;
    struct xl_sys_opts so = {.root = "", .per_cpu = c->inputs.system.per_cpu};
    struct xl_shipper_opts sh = {0};
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
    sh.servers = &c->servers;
    sh.token = c->token;
    sh.agent_id = a->id;
    sh.host = a->host;
    sh.ip = a->ip;
    sh.labels = &c->labels;
    sh.heartbeat_interval_ms = c->heartbeat_interval;
    sh.request_timeout_ms = c->request_timeout;
    sh.retry_max_backoff_ms = c->retry_max_backoff;
    sh.queue_max = (size_t)c->queue_max;
    sh.started_ms = xl_now_ms();
    sh.on_ack = on_ack;
    sh.on_idle = on_idle;
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
    if (c->inputs.system.enabled) {
        if (!(a->sys = xl_sysinput_new(&so, err)))
            return err && err->rc ? err->rc : XL_ENOMEM;
        uv_timer_start(&a->sys_timer, on_sys_timer, 0, (uint64_t)c->inputs.system.interval);
    }
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
    struct xl_agent a = {.cfg = cfgp, .conf_path = opts->conf_path};
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
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    xl_daemon_ready(opts, true, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
out:
    uv_loop_close(&a.loop);
    xl_sysinput_free(a.sys);
    xl_seq_close(&a.seq);
    xl_batch_cleanup(&a.batch);
    xl_agent_cfg_free(a.reloaded);
    return code;
}
