/* xluo-agent: start-up, the event loop, batching and shutdown. */
#include "agent.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/units.h"
#include "config.h"
#include "identity.h"
#include "inputs/system/system.h"
#include "shipper.h"

#define MOD "agent"
/* How long a stop waits for queued batches to reach the server. */
#define DRAIN_MS 5000

struct xl_agent {
    struct xl_agent_cfg *cfg;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sys_timer, drain_timer;
    struct xl_sysinput *sys;
    struct xl_shipper shipper;
    struct xl_seq seq;
    char id[33];
    char host[256];
    char ip[64];
    json_t *records; /* the batch being built */
    int64_t drain_deadline;
    bool stopping;
};

/* Sink for inputs: one metric record per sample into the current batch. */
static void emit_metric(void *ctx, const char *name, const struct xl_label *labels,
                        size_t nlabels, double value, int64_t ts_ms)
{
    struct xl_agent *a = ctx;
    json_t *rec, *l = json_object(), *v;

    for (size_t i = 0; l && i < nlabels; i++)
        json_object_set_new(l, labels[i].name, json_string(labels[i].value));
    if (value != value)
        v = json_string("NaN");
    else if (value > 1.7976931348623157e308 || value < -1.7976931348623157e308)
        v = json_string(value > 0 ? "+Inf" : "-Inf");
    else
        v = json_real(value);
    rec = json_pack("{s:s, s:I, s:s, s:o, s:o}", "type", "metric", "ts", (json_int_t)ts_ms,
                    "name", name, "labels", l, "value", v);
    if (!rec || json_array_append_new(a->records, rec) < 0)
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory building a batch (%s dropped)", name);
}

/* Wrap the records built so far into a protocol batch and queue it. */
static void flush_batch(struct xl_agent *a)
{
    struct xl_err err = {0};
    size_t n = json_array_size(a->records);
    uint64_t seq;
    json_t *batch;
    char *text;

    if (n == 0)
        return;
    if (xl_seq_next(&a->seq, &seq, &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "%s: %zu records dropped", err.msg, n);
        json_array_clear(a->records);
        return;
    }
    batch = json_pack("{s:i, s:s, s:I, s:I, s:O}", "v", 1, "agent_id", a->id, "seq",
                      (json_int_t)seq, "sent", (json_int_t)xl_now_ms(), "records", a->records);
    text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
    json_decref(batch);
    json_array_clear(a->records);
    if (!text) {
        xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory: %zu records dropped", n);
        return;
    }
    xl_log_debug(MOD, "batch seq %llu queued: %zu records, %zu bytes", (unsigned long long)seq, n,
                 strlen(text));
    /* json_dumps allocates with malloc; the shipper frees with xl_free,
     * which is free(). */
    xl_shipper_enqueue(&a->shipper, text, strlen(text), n);
}

static void on_sys_timer(uv_timer_t *t)
{
    struct xl_agent *a = t->data;
    struct xl_sample_sink sink = {.emit = emit_metric, .ctx = a};
    struct xl_err err = {0};

    if (xl_sysinput_collect(a->sys, xl_now_ms(), xl_mono_ms(), &sink, &err) != XL_OK ||
        err.msg[0])
        xl_log_rl(XL_LOG_WARN, 300, "system", "%s", err.msg);
    flush_batch(a);
}

static void close_all(struct xl_agent *a)
{
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    uv_close((uv_handle_t *)&a->sys_timer, NULL);
    uv_close((uv_handle_t *)&a->drain_timer, NULL);
    xl_shipper_stop(&a->shipper);
}

static void on_drain(uv_timer_t *t)
{
    struct xl_agent *a = t->data;

    if (xl_shipper_idle(&a->shipper) || xl_mono_ms() >= a->drain_deadline) {
        if (!xl_shipper_idle(&a->shipper))
            xl_log_warn(MOD, "stopping with %llu batches not delivered",
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

static void on_hup(uv_signal_t *h, int sig)
{
    struct xl_err err = {0};

    if (xl_log_reopen(&err) != XL_OK)
        xl_log_error(MOD, "%s", err.msg);
    xl_log_info(MOD, "SIGHUP: log reopened");
}

static xl_rc agent_open(struct xl_agent *a, struct xl_err *err)
{
    struct xl_agent_cfg *c = a->cfg;
    struct xl_sys_opts so = {.root = "", .per_cpu = c->inputs.system.per_cpu};
    struct xl_shipper_opts sh = {0};
    xl_rc rc;

    if ((rc = xl_mkdirs(c->data_path, err)) != XL_OK ||
        (rc = xl_identity_agent_id(c->data_path, a->id, err)) != XL_OK ||
        (rc = xl_seq_open(&a->seq, c->data_path, err)) != XL_OK)
        return rc;
    if (c->hostname && *c->hostname)
        snprintf(a->host, sizeof(a->host), "%s", c->hostname);
    else
        xl_identity_hostname(a->host, sizeof(a->host));
    if (c->local_ip && *c->local_ip)
        snprintf(a->ip, sizeof(a->ip), "%s", c->local_ip);
    else
        xl_identity_local_ip(c->servers.v[0], a->ip, sizeof(a->ip));
    if (!(a->records = json_array()))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
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
    if ((rc = xl_shipper_start(&a->shipper, &a->loop, &sh, err)) != XL_OK)
        return rc;
    uv_timer_init(&a->loop, &a->sys_timer);
    uv_timer_init(&a->loop, &a->drain_timer);
    a->sys_timer.data = a->drain_timer.data = a;
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

int xl_agent_run(void *cfgp, const struct xl_daemon_opts *opts)
{
    struct xl_agent a = {.cfg = cfgp};
    struct xl_err err = {0};
    enum xl_log_level lvl;
    int code = 0;

    if (!opts->debug && xl_log_level_parse(a.cfg->log_level, &lvl) == XL_OK)
        xl_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        xl_daemon_ready(opts, false, "curl_global_init failed");
        return 1;
    }
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
    json_decref(a.records);
    curl_global_cleanup();
    return code;
}
