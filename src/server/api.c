/* xluo-server: HTTP handlers: agent protocol (docs/protocol.md) and the
 * JSON API (docs/api.md). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/units.h"
#include "encoding.h"
#include "jarena.h"
#include "server.h"

#define MAX_MATCHERS 16

static void h_healthz(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    xl_http_json(resp, 200, json_pack("{s:s, s:s}", "status", "ok", "version", XL_VERSION));
}

/* The per-agent gauges of /metrics: one family at a time (the exposition
 * format wants a family's samples together), from the agents' stats. */
static const struct {
    const char *key, *name, *type, *help;
    double scale;
} agent_gauges[] = {
    {"outbox_bytes", "xluo_agent_outbox_bytes", "gauge",
     "Bytes in the agent's outbox, not yet acknowledged (its last heartbeat).", 1},
    {"outbox_oldest_age_ms", "xluo_agent_outbox_oldest_age_seconds", "gauge",
     "Age of the oldest record in the agent's outbox (its last heartbeat).", 1e-3},
    {"records_dropped", "xluo_agent_records_dropped_total", "counter",
     "Records the agent dropped, since it started (its last heartbeat).", 1},
};

struct agent_metrics_ctx {
    struct xl_buf *b;
    size_t gauge;
};

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void label_value(struct xl_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            xl_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            xl_buf_adds(b, "\\n");
        else
            xl_buf_add(b, v, 1);
    }
}

static void agent_metric_cb(void *ctx, const char *id, const char *host, const json_t *stats)
{
    struct agent_metrics_ctx *c = ctx;
    json_t *v = json_object_get(stats, agent_gauges[c->gauge].key);

    if (!json_is_integer(v))
        return;
    xl_buf_printf(c->b, "%s{agent_id=\"%s\",host=\"", agent_gauges[c->gauge].name, id);
    label_value(c->b, host);
    xl_buf_printf(c->b, "\"} %.15g\n",
                  (double)json_integer_value(v) * agent_gauges[c->gauge].scale);
}

static void agent_metrics(struct xl_server *s, struct xl_buf *b)
{
    struct agent_metrics_ctx c = {.b = b};

    for (c.gauge = 0; c.gauge < sizeof(agent_gauges) / sizeof(agent_gauges[0]); c.gauge++) {
        xl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", agent_gauges[c.gauge].name,
                      agent_gauges[c.gauge].help, agent_gauges[c.gauge].name,
                      agent_gauges[c.gauge].type);
        xl_registry_each_stats(s->reg, agent_metric_cb, &c);
    }
}

/* The consumers' queues and counters, and the check and event stores. */
static void store_metrics(struct xl_server *s, struct xl_buf *b)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } fams[] = {
        {"xluo_consumer_queued", "gauge", "Batch parts queued or being stored, per consumer.",
         offsetof(struct xl_consumer_stats, queued)},
        {"xluo_consumer_parts_total", "counter", "Batch parts stored (or failed), per consumer.",
         offsetof(struct xl_consumer_stats, parts)},
        {"xluo_consumer_records_total", "counter", "Records in those parts, per consumer.",
         offsetof(struct xl_consumer_stats, records)},
        {"xluo_consumer_commits_total", "counter",
         "Store calls, per consumer (a group of parts is one).",
         offsetof(struct xl_consumer_stats, commits)},
        {"xluo_consumer_errors_total", "counter", "Batch parts that failed, per consumer.",
         offsetof(struct xl_consumer_stats, errors)},
        {"xluo_consumer_busy_total", "counter",
         "Batches refused (503) because the consumer's queue was full.",
         offsetof(struct xl_consumer_stats, busy)},
    };
    struct xl_consumer_stats cst[XL_KIND_COUNT];
    struct xl_checkstore_stats cs;
    struct xl_eventstore_stats es;

    xl_consumers_get_stats(s->consumers, cst);
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        xl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fams[f].name, fams[f].help, fams[f].name,
                      fams[f].type);
        for (int k = 0; k < XL_KIND_COUNT; k++)
            xl_buf_printf(
                b, "%s{consumer=\"%s\"} %llu\n", fams[f].name, cst[k].name,
                (unsigned long long)*(const uint64_t *)((const char *)&cst[k] + fams[f].off));
    }
    xl_checkstore_get_stats(s->checks, &cs);
    xl_eventstore_get_stats(s->events, &es);
    xl_buf_printf(b,
                  "# HELP xluo_checks Checks known to the check store.\n"
                  "# TYPE xluo_checks gauge\n"
                  "xluo_checks %llu\n"
                  "# HELP xluo_check_results_total Check results stored.\n"
                  "# TYPE xluo_check_results_total counter\n"
                  "xluo_check_results_total %llu\n"
                  "# HELP xluo_check_results_ignored_total Check results no newer than the "
                  "stored one (resent), ignored.\n"
                  "# TYPE xluo_check_results_ignored_total counter\n"
                  "xluo_check_results_ignored_total %llu\n"
                  "# HELP xluo_check_state_changes_total Check state changes.\n"
                  "# TYPE xluo_check_state_changes_total counter\n"
                  "xluo_check_state_changes_total %llu\n"
                  "# HELP xluo_events_rows Events in the event store.\n"
                  "# TYPE xluo_events_rows gauge\n"
                  "xluo_events_rows %llu\n"
                  "# HELP xluo_events_stored_total Events stored.\n"
                  "# TYPE xluo_events_stored_total counter\n"
                  "xluo_events_stored_total %llu\n"
                  "# HELP xluo_events_duplicates_total Events received again and not stored "
                  "twice.\n"
                  "# TYPE xluo_events_duplicates_total counter\n"
                  "xluo_events_duplicates_total %llu\n"
                  "# HELP xluo_events_deleted_total Events deleted by retention.\n"
                  "# TYPE xluo_events_deleted_total counter\n"
                  "xluo_events_deleted_total %llu\n",
                  (unsigned long long)cs.checks, (unsigned long long)cs.results,
                  (unsigned long long)cs.ignored, (unsigned long long)cs.changes,
                  (unsigned long long)es.rows, (unsigned long long)es.inserted,
                  (unsigned long long)es.duplicates, (unsigned long long)es.deleted);
}

static void h_metrics(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    static const char *const reasons[XL_REJECT_COUNT] = {
        "parse", "invalid", "too_big", "unknown_agent", "store", "busy", "encoding", "queue_full"};
    struct xl_server *s = app;
    struct xl_http_stats hs;
    struct xl_tsdb_stats ts;
    struct xl_logstore_stats ls;
    struct xl_buf *b = &resp->body;
    uint64_t on, off;

    xl_http_get_stats(s->http, &hs);
    xl_tsdb_get_stats(s->tsdb, &ts);
    xl_logstore_get_stats(s->logs, &ls);
    xl_registry_counts(s->reg, xl_now_ms(), &on, &off);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    xl_buf_printf(b,
                  "# HELP xluo_build_info Version of xluo-server.\n"
                  "# TYPE xluo_build_info gauge\n"
                  "xluo_build_info{version=\"%s\"} 1\n"
                  "# HELP xluo_start_time_seconds When the server started.\n"
                  "# TYPE xluo_start_time_seconds gauge\n"
                  "xluo_start_time_seconds %.3f\n"
                  "# HELP xluo_http_requests_total HTTP requests by status class.\n"
                  "# TYPE xluo_http_requests_total counter\n"
                  "xluo_http_requests_total{code=\"2xx\"} %llu\n"
                  "xluo_http_requests_total{code=\"4xx\"} %llu\n"
                  "xluo_http_requests_total{code=\"5xx\"} %llu\n"
                  "# HELP xluo_http_received_bytes_total Request body bytes received.\n"
                  "# TYPE xluo_http_received_bytes_total counter\n"
                  "xluo_http_received_bytes_total %llu\n"
                  "# HELP xluo_ingest_batches_total Batches accepted.\n"
                  "# TYPE xluo_ingest_batches_total counter\n"
                  "xluo_ingest_batches_total %llu\n"
                  "# HELP xluo_ingest_samples_total Metric samples accepted.\n"
                  "# TYPE xluo_ingest_samples_total counter\n"
                  "xluo_ingest_samples_total %llu\n"
                  "# HELP xluo_ingest_log_lines_total Log lines stored.\n"
                  "# TYPE xluo_ingest_log_lines_total counter\n"
                  "xluo_ingest_log_lines_total %llu\n"
                  "# HELP xluo_ingest_log_duplicates_total Log lines received again and not stored twice.\n"
                  "# TYPE xluo_ingest_log_duplicates_total counter\n"
                  "xluo_ingest_log_duplicates_total %llu\n"
                  "# HELP xluo_ingest_rejected_total Batches rejected, by reason.\n"
                  "# TYPE xluo_ingest_rejected_total counter\n",
                  XL_VERSION, (double)s->started_ms / 1000.0, (unsigned long long)hs.status_2xx,
                  (unsigned long long)hs.status_4xx, (unsigned long long)hs.status_5xx,
                  (unsigned long long)hs.bytes_in, (unsigned long long)atomic_load(&s->batches),
                  (unsigned long long)atomic_load(&s->samples),
                  (unsigned long long)atomic_load(&s->log_lines),
                  (unsigned long long)atomic_load(&s->log_duplicates));
    for (int i = 0; i < XL_REJECT_COUNT; i++)
        xl_buf_printf(b, "xluo_ingest_rejected_total{reason=\"%s\"} %llu\n", reasons[i],
                      (unsigned long long)atomic_load(&s->rejected[i]));
    xl_buf_printf(b,
                  "# HELP xluo_ingest_duplicate_batches_total Batches received again after they "
                  "were stored, answered without storing anything.\n"
                  "# TYPE xluo_ingest_duplicate_batches_total counter\n"
                  "xluo_ingest_duplicate_batches_total %llu\n"
                  "# HELP xluo_ingest_seen_errors_total Batches stored whose seq could not be "
                  "recorded at once (retried every second).\n"
                  "# TYPE xluo_ingest_seen_errors_total counter\n"
                  "xluo_ingest_seen_errors_total %llu\n"
                  "# HELP xluo_ingest_zstd_bodies_total Batches received zstd-compressed.\n"
                  "# TYPE xluo_ingest_zstd_bodies_total counter\n"
                  "xluo_ingest_zstd_bodies_total %llu\n"
                  "# HELP xluo_ingest_zstd_bytes_total Bytes of zstd bodies, compressed (in) and "
                  "decompressed (out).\n"
                  "# TYPE xluo_ingest_zstd_bytes_total counter\n"
                  "xluo_ingest_zstd_bytes_total{side=\"in\"} %llu\n"
                  "xluo_ingest_zstd_bytes_total{side=\"out\"} %llu\n",
                  (unsigned long long)atomic_load(&s->duplicate_batches),
                  (unsigned long long)atomic_load(&s->seen_errors),
                  (unsigned long long)atomic_load(&s->zstd_bodies),
                  (unsigned long long)atomic_load(&s->zstd_bytes_in),
                  (unsigned long long)atomic_load(&s->zstd_bytes_out));
    xl_buf_printf(b,
                  "# HELP xluo_agents Registered agents by status.\n"
                  "# TYPE xluo_agents gauge\n"
                  "xluo_agents{status=\"online\"} %llu\n"
                  "xluo_agents{status=\"offline\"} %llu\n"
                  "# HELP xluo_tsdb_series Series in the metric store.\n"
                  "# TYPE xluo_tsdb_series gauge\n"
                  "xluo_tsdb_series %llu\n"
                  "# HELP xluo_tsdb_head_samples Samples in memory not yet in chunks.\n"
                  "# TYPE xluo_tsdb_head_samples gauge\n"
                  "xluo_tsdb_head_samples %llu\n"
                  "# HELP xluo_tsdb_wal_bytes Size of the write-ahead log.\n"
                  "# TYPE xluo_tsdb_wal_bytes gauge\n"
                  "xluo_tsdb_wal_bytes %llu\n"
                  "# HELP xluo_tsdb_checkpoints_total Head-to-chunk checkpoints.\n"
                  "# TYPE xluo_tsdb_checkpoints_total counter\n"
                  "xluo_tsdb_checkpoints_total %llu\n"
                  "# HELP xluo_tsdb_chunks Compressed chunks stored.\n"
                  "# TYPE xluo_tsdb_chunks gauge\n"
                  "xluo_tsdb_chunks %llu\n"
                  "# HELP xluo_tsdb_checkpoint_errors_total Failed checkpoints (retried).\n"
                  "# TYPE xluo_tsdb_checkpoint_errors_total counter\n"
                  "xluo_tsdb_checkpoint_errors_total %llu\n"
                  "# HELP xluo_tsdb_wal_truncated_bytes Torn or corrupt WAL bytes cut off at start-up.\n"
                  "# TYPE xluo_tsdb_wal_truncated_bytes gauge\n"
                  "xluo_tsdb_wal_truncated_bytes %llu\n"
                  "# HELP xluo_tsdb_wal_syncs_total fdatasync calls on the WAL (group commits).\n"
                  "# TYPE xluo_tsdb_wal_syncs_total counter\n"
                  "xluo_tsdb_wal_syncs_total %llu\n",
                  (unsigned long long)on, (unsigned long long)off, (unsigned long long)ts.series,
                  (unsigned long long)ts.head_samples, (unsigned long long)ts.wal_bytes,
                  (unsigned long long)ts.checkpoints, (unsigned long long)ts.chunks,
                  (unsigned long long)ts.checkpoint_errors,
                  (unsigned long long)ts.wal_truncated_bytes, (unsigned long long)ts.wal_syncs);
    xl_buf_printf(b,
                  "# HELP xluo_logs_rows Log lines in the log store.\n"
                  "# TYPE xluo_logs_rows gauge\n"
                  "xluo_logs_rows %llu\n"
                  "# HELP xluo_logs_bytes Used size of the log store (free pages excluded).\n"
                  "# TYPE xluo_logs_bytes gauge\n"
                  "xluo_logs_bytes %llu\n"
                  "# HELP xluo_logs_duplicates_total Log lines received again and not stored twice.\n"
                  "# TYPE xluo_logs_duplicates_total counter\n"
                  "xluo_logs_duplicates_total %llu\n"
                  "# HELP xluo_logs_deleted_total Log lines deleted by retention.\n"
                  "# TYPE xluo_logs_deleted_total counter\n"
                  "xluo_logs_deleted_total %llu\n",
                  (unsigned long long)ls.rows, (unsigned long long)ls.bytes,
                  (unsigned long long)ls.duplicates, (unsigned long long)ls.deleted);
    store_metrics(s, b);
    xl_buf_printf(b,
                  "# HELP xluo_live_subscribers Open live streams (logs and records).\n"
                  "# TYPE xluo_live_subscribers gauge\n"
                  "xluo_live_subscribers %llu\n"
                  "# HELP xluo_live_dropped_total Records not streamed to a client that fell "
                  "behind.\n"
                  "# TYPE xluo_live_dropped_total counter\n"
                  "xluo_live_dropped_total %llu\n",
                  (unsigned long long)xl_live_subscribers(s->live),
                  (unsigned long long)xl_live_dropped(s->live));
    agent_metrics(s, b);
}

/* Parse a JSON body into *out; answers 400 itself on failure. */
static bool body_json(struct xl_http_req *req, struct xl_http_resp *resp, json_t **out)
{
    json_error_t jerr;

    *out = json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES,
                      &jerr);
    if (!*out || !json_is_object(*out)) {
        xl_http_error(resp, 400, "malformed JSON", "body:%d:%d (byte %d): %s", jerr.line,
                      jerr.column, jerr.position, *out ? "expected an object" : jerr.text);
        json_decref(*out);
        return false;
    }
    return true;
}

static const char *opt_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void h_register(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_agent_info info = {0};
    struct xl_err err = {0};
    json_t *body, *labels, *v;
    const char *k;

    if (!body_json(req, resp, &body))
        return;
    info.id = opt_str(body, "agent_id");
    info.host = opt_str(body, "host");
    info.ip = opt_str(body, "ip");
    info.version = opt_str(body, "version");
    labels = json_object_get(body, "labels");
    v = json_object_get(body, "heartbeat_interval_ms");
    info.heartbeat_interval_ms = json_is_integer(v) ? json_integer_value(v) : 10000;
    v = json_object_get(body, "started");
    info.started_ms = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!xl_agent_id_valid(req->params[0]))
        xl_http_error(resp, 400, "invalid agent id", "path: expected 32 lowercase hex characters");
    else if (!info.id || strcmp(info.id, req->params[0]) != 0)
        xl_http_error(resp, 400, "invalid registration", "agent_id: must equal the id in the path");
    else if (!info.host || !*info.host || strlen(info.host) > 253)
        xl_http_error(resp, 400, "invalid registration", "host: expected a host name");
    else if (labels && !json_is_object(labels))
        xl_http_error(resp, 400, "invalid registration", "labels: expected an object");
    else if (info.heartbeat_interval_ms < 100 || info.heartbeat_interval_ms > 86400000)
        xl_http_error(resp, 400, "invalid registration",
                      "heartbeat_interval_ms: expected 100 to 86400000");
    else {
        json_object_foreach(labels, k, v) {
            if (!xl_label_name_valid(k) || !json_is_string(v)) {
                xl_http_error(resp, 400, "invalid registration",
                              "labels.%s: expected a valid label name with a string value", k);
                goto out;
            }
        }
        info.labels = labels;
        if (xl_registry_register(s->reg, &info, xl_now_ms(), &err) != XL_OK) {
            xl_log_error("api", "register %s: %s", info.id, err.msg);
            xl_http_error(resp, 503, "registry unavailable", "%s", err.msg);
        } else {
            xl_log_info("api", "agent %s registered (host %s, ip %s, version %s)", info.id,
                        info.host, info.ip ? info.ip : "?", info.version ? info.version : "?");
            xl_http_json(resp, 200, json_pack("{s:s, s:I}", "agent_id", info.id, "server_time",
                                              (json_int_t)xl_now_ms()));
        }
    }
out:
    json_decref(body);
}

static void h_heartbeat(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_err err = {0};
    json_t *body, *stats;
    xl_rc rc;

    if (!body_json(req, resp, &body))
        return;
    stats = json_object_get(body, "stats");
    if (stats && (rc = xl_registry_stats_check(stats, &err)) != XL_OK)
        xl_http_error(resp, rc == XL_ETOOBIG ? 413 : 400, "invalid heartbeat", "%s", err.msg);
    else if (xl_registry_touch(s->reg, req->params[0], xl_now_ms(), 0, stats) != XL_OK)
        xl_http_error(resp, 404, "unknown agent", "agent %.64s is not registered; register first",
                      req->params[0]);
    else
        xl_http_json(resp, 200, json_pack("{s:I}", "server_time", (json_int_t)xl_now_ms()));
    json_decref(body);
}

/* What ingest() decided; the answer is built from it after the arena
 * scope has ended. */
struct ingest_result {
    struct xl_server *server;
    int status;
    const char *error;
    char detail[600];
    size_t accepted;
    uint64_t seq;
    bool duplicate;       /* 200: stored before, nothing stored now */
    unsigned retry_after; /* 503 busy: come back in this many seconds */
};

static void fail(struct ingest_result *r, int status, const char *error, const char *detail)
{
    r->status = status;
    r->error = error;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static void busy(struct ingest_result *res, enum xl_reject why, const char *detail)
{
    atomic_fetch_add(&res->server->rejected[why], 1);
    res->status = 503;
    res->error = "busy";
    res->retry_after = 1;
    snprintf(res->detail, sizeof(res->detail), "%s", detail);
}

/* Store a new batch: one part per kind of record it holds, each stored by
 * its consumer (consumers.h), all in parallel; returns when all are done.
 * A full consumer queue refuses the whole batch (503 busy). */
static xl_rc store_batch(struct xl_server *s, const struct xl_ingest_batch *b,
                         const struct xl_agent_snapshot *ag, struct ingest_result *res)
{
    const size_t counts[XL_KIND_COUNT] = {[XL_KIND_METRIC] = b->nmetrics,
                                          [XL_KIND_LOG] = b->nlogs,
                                          [XL_KIND_CHECK] = b->nchecks,
                                          [XL_KIND_EVENT] = b->nevents};
    struct xl_part parts[XL_KIND_COUNT];
    struct xl_err err = {0};
    size_t n = 0;
    xl_rc rc;

    for (int k = 0; k < XL_KIND_COUNT; k++)
        if (counts[k])
            parts[n++] = (struct xl_part){
                .kind = (enum xl_kind)k, .batch = b, .agent = ag, .nrec = counts[k]};
    rc = xl_consumers_store(s->consumers, parts, n, &err);
    if (rc == XL_EFULL) {
        busy(res, XL_REJECT_QUEUE, err.msg);
        return rc;
    }
    if (rc != XL_OK) {
        fail(res, 503, "store unavailable", err.msg);
        return rc;
    }
    /* A part that failed fails the batch; the agent sends it again, and
     * the parts stored meanwhile are not stored twice: the metric store
     * keeps the last write per timestamp, the log and event stores drop
     * repeats, the check store ignores results no newer than its own. */
    for (size_t i = 0; i < n; i++) {
        if (parts[i].rc == XL_OK)
            continue;
        atomic_fetch_add(&s->rejected[XL_REJECT_STORE], 1);
        xl_log_rl(XL_LOG_ERROR, 10, "ingest", "%s store append failed: %s",
                  xl_kind_name(parts[i].kind), parts[i].err.msg);
        fail(res, 503, "store unavailable", parts[i].err.msg);
        return parts[i].rc;
    }
    return XL_OK;
}

/* Decode, deduplicate by (agent, seq), store, record the seq (see
 * docs/protocol.md "Exactly once": data first, then the seq, then 200). */
static void ingest(struct xl_server *s, struct xl_http_req *req, struct ingest_result *res)
{
    struct xl_ingest_batch b;
    struct xl_agent_snapshot ag;
    struct xl_err err = {0};
    enum xl_seq_state state;
    xl_rc rc;

    rc = xl_ingest_decode(req->body.data ? req->body.data : "", req->body.len, &s->limits,
                          xl_now_ms(), &b, &err);
    switch (rc) {
    case XL_OK:
        break;
    case XL_ETOOBIG:
        atomic_fetch_add(&s->rejected[XL_REJECT_TOOBIG], 1);
        fail(res, 413, "batch too large", err.msg);
        return;
    case XL_EINVAL:
        atomic_fetch_add(&s->rejected[XL_REJECT_INVALID], 1);
        fail(res, 422, "invalid record", err.msg);
        return;
    case XL_EPROTO:
        atomic_fetch_add(&s->rejected[XL_REJECT_PARSE], 1);
        fail(res, 400, "unsupported protocol version", err.msg);
        return;
    case XL_ENOMEM:
        fail(res, 503, "out of memory", "try again later");
        return;
    default:
        atomic_fetch_add(&s->rejected[XL_REJECT_PARSE], 1);
        fail(res, 400, "malformed batch", err.msg);
        return;
    }
    res->seq = b.seq;
    switch (xl_registry_batch_begin(s->reg, b.agent_id, b.seq, b.floor, xl_now_ms(), &state)) {
    case XL_OK:
        break;
    case XL_ENOENT:
        goto unknown;
    case XL_EFULL:
        snprintf(err.msg, sizeof(err.msg), "agent %s has too many batches being stored: retry",
                 b.agent_id);
        busy(res, XL_REJECT_BUSY, err.msg);
        goto out_batch;
    default:
        fail(res, 503, "out of memory", "try again later");
        goto out_batch;
    }
    if (state == XL_SEQ_DONE) {
        atomic_fetch_add(&s->duplicate_batches, 1);
        res->status = 200;
        res->duplicate = true;
        goto out_batch;
    }
    if (state == XL_SEQ_BUSY) {
        snprintf(err.msg, sizeof(err.msg),
                 "batch %llu of agent %s is being stored by another request: retry",
                 (unsigned long long)b.seq, b.agent_id);
        busy(res, XL_REJECT_BUSY, err.msg);
        goto out_batch;
    }
    if ((rc = xl_registry_snapshot(s->reg, b.agent_id, &ag)) != XL_OK) {
        xl_registry_batch_end(s->reg, b.agent_id, b.seq, false, 0, NULL);
        if (rc == XL_ENOENT)
            goto unknown;
        fail(res, 503, "out of memory", "try again later");
        goto out_batch;
    }
    rc = store_batch(s, &b, &ag, res);
    xl_agent_snapshot_cleanup(&ag);
    if (xl_registry_batch_end(s->reg, b.agent_id, b.seq, rc == XL_OK, xl_now_ms(), &err) != XL_OK &&
        rc == XL_OK) {
        /* Stored all the same; a resend is deduplicated by the stores. */
        atomic_fetch_add(&s->seen_errors, 1);
        xl_log_rl(XL_LOG_ERROR, 10, "ingest", "batch %llu of %s stored, its seq not recorded: %s",
                  (unsigned long long)b.seq, b.agent_id, err.msg);
    }
    if (rc != XL_OK)
        goto out_batch;
    atomic_fetch_add(&s->batches, 1);
    res->status = 200;
    res->accepted = b.nmetrics + b.nlogs + b.nchecks + b.nevents;
    goto out_batch;
unknown:
    atomic_fetch_add(&s->rejected[XL_REJECT_AUTH_AGENT], 1);
    snprintf(err.msg, sizeof(err.msg), "agent %s is not registered; register first", b.agent_id);
    fail(res, 409, "unknown agent", err.msg);
out_batch:
    xl_ingest_batch_cleanup(&b);
}

/* Replace the received body by its decoded content when it came with a
 * Content-Encoding, so that ingest reads req->body either way. Answers
 * the request itself (415, 413, 400) and returns false when it cannot. */
static bool decode_body(struct xl_server *s, struct xl_http_req *req, struct xl_http_resp *resp)
{
    const char *ce = xl_http_header(req, "Content-Encoding");
    size_t max = (size_t)s->cfg->max_body;
    struct xl_err err = {0};
    enum xl_encoding enc;
    struct xl_buf plain;
    xl_rc rc;

    if (xl_encoding_parse(ce, &enc) != XL_OK) {
        atomic_fetch_add(&s->rejected[XL_REJECT_ENCODING], 1);
        xl_http_error(resp, 415, "unsupported content encoding",
                      "Content-Encoding: %.64s is not supported (supported: %s)", ce,
                      XL_ENCODINGS_SUPPORTED);
        return false;
    }
    if (enc == XL_ENC_IDENTITY)
        return true;
    xl_buf_init(&plain, max);
    rc = xl_zstd_decompress(req->body.data, req->body.len, max, &plain, &err);
    if (rc != XL_OK) {
        xl_buf_cleanup(&plain);
        if (rc == XL_ETOOBIG) {
            atomic_fetch_add(&s->rejected[XL_REJECT_TOOBIG], 1);
            xl_http_error(resp, 413, "body too large", "%s", err.msg);
        } else if (rc == XL_EPARSE) {
            atomic_fetch_add(&s->rejected[XL_REJECT_ENCODING], 1);
            xl_http_error(resp, 400, "malformed batch", "%s", err.msg);
        } else {
            xl_http_error(resp, 503, "out of memory", "try again later");
        }
        return false;
    }
    atomic_fetch_add(&s->zstd_bodies, 1);
    atomic_fetch_add(&s->zstd_bytes_in, req->body.len);
    atomic_fetch_add(&s->zstd_bytes_out, plain.len);
    xl_buf_cleanup(&req->body);
    req->body = plain;
    return true;
}

static void h_ingest(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct ingest_result res = {.server = app};

    if (!decode_body(app, req, resp))
        return;
    /* The decoded tree lives in this thread's arena (jarena.h) and is gone
     * when ingest() returns; the answer is built after the scope. */
    xl_jarena_begin();
    ingest(app, req, &res);
    xl_jarena_end();
    if (res.status == 200 && res.duplicate)
        xl_http_json(resp, 200,
                     json_pack("{s:i, s:I, s:b}", "accepted", 0, "seq", (json_int_t)res.seq,
                               "duplicate", 1));
    else if (res.status == 200)
        xl_http_json(resp, 200, json_pack("{s:I, s:I}", "accepted", (json_int_t)res.accepted,
                                          "seq", (json_int_t)res.seq));
    else
        xl_http_error(resp, res.status, res.error, "%s", res.detail);
    resp->retry_after = res.retry_after;
}

static void h_agents(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    json_t *j = xl_registry_json(s->reg, NULL, xl_now_ms());

    if (!j)
        xl_http_error(resp, 503, "out of memory", "try again later");
    else
        xl_http_json(resp, 200, j);
}

static void h_agent(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    json_t *j = xl_registry_json(s->reg, req->params[0], xl_now_ms());

    if (!j)
        xl_http_error(resp, 404, "not found", "no agent with id %.64s", req->params[0]);
    else
        xl_http_json(resp, 200, j);
}

/* Matchers from host= and repeated match= parameters. Strings point into
 * bufs (the caller's) and the request. Answers 400 itself on error. */
static bool parse_matchers(struct xl_http_req *req, struct xl_http_resp *resp,
                           struct xl_matcher *m, size_t *nm, char bufs[][256])
{
    const char *sel[MAX_MATCHERS];
    const char *host = xl_http_arg(req, "host");
    size_t n = xl_http_args(req, "match", sel, MAX_MATCHERS);

    *nm = 0;
    if (host) {
        m[0] = (struct xl_matcher){.name = "host", .value = host, .op = XL_MATCH_EQ};
        *nm = 1;
    }
    for (size_t i = 0; i < n && *nm < MAX_MATCHERS; i++) {
        const char *ne = strstr(sel[i], "!="), *eq = strchr(sel[i], '=');
        const char *op = ne && ne < eq ? ne : eq;
        size_t klen;

        if (!op || op == sel[i]) {
            xl_http_error(resp, 400, "bad selector",
                          "match=%.128s: expected label=value or label!=value", sel[i]);
            return false;
        }
        klen = (size_t)(op - sel[i]);
        if (klen >= 256) {
            xl_http_error(resp, 400, "bad selector", "match: label name too long");
            return false;
        }
        memcpy(bufs[*nm], sel[i], klen);
        bufs[*nm][klen] = '\0';
        m[*nm].name = bufs[*nm];
        m[*nm].op = op == ne ? XL_MATCH_NE : XL_MATCH_EQ;
        m[*nm].value = op + (op == ne ? 2 : 1);
        (*nm)++;
    }
    return true;
}

static int name_cb(void *ctx, const char *name, size_t nseries)
{
    json_array_append_new(ctx, json_pack("{s:s, s:I}", "name", name, "series", (json_int_t)nseries));
    return 0;
}

static void h_metric_names(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_matcher m[MAX_MATCHERS];
    char bufs[MAX_MATCHERS][256];
    struct xl_err err = {0};
    size_t nm;
    json_t *arr;

    if (!parse_matchers(req, resp, m, &nm, bufs))
        return;
    arr = json_array();
    if (xl_tsdb_names(s->tsdb, m, nm, name_cb, arr, &err) != XL_OK) {
        json_decref(arr);
        xl_http_error(resp, 503, "store error", "%s", err.msg);
        return;
    }
    xl_http_json(resp, 200, json_pack("{s:o}", "metrics", arr));
}

static json_t *labels_json(const struct xl_series_result *r)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < r->nlabels; i++)
        json_object_set_new(o, r->labels[i].name, json_string(r->labels[i].value));
    return o;
}

static int series_cb(void *ctx, const struct xl_series_result *r)
{
    json_array_append_new(ctx, json_pack("{s:s, s:o}", "name", r->name, "labels", labels_json(r)));
    return 0;
}

static void h_series(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_matcher m[MAX_MATCHERS];
    char bufs[MAX_MATCHERS][256];
    struct xl_err err = {0};
    size_t nm;
    json_t *arr;

    if (!parse_matchers(req, resp, m, &nm, bufs))
        return;
    arr = json_array();
    if (xl_tsdb_series(s->tsdb, xl_http_arg(req, "name"), m, nm, series_cb, arr, &err) != XL_OK) {
        json_decref(arr);
        xl_http_error(resp, 503, "store error", "%s", err.msg);
        return;
    }
    xl_http_json(resp, 200, json_pack("{s:o}", "series", arr));
}

struct query_ctx {
    json_t *arr;
    int64_t max_points;
    bool too_many;
};

static const char *const agg_names[] = {
    [XL_AGG_NONE] = "raw", [XL_AGG_AVG] = "avg",     [XL_AGG_MIN] = "min",     [XL_AGG_MAX] = "max",
    [XL_AGG_LAST] = "last", [XL_AGG_SUM] = "sum",    [XL_AGG_COUNT] = "count",
};

static int query_cb(void *ctx, const struct xl_series_result *r)
{
    struct query_ctx *q = ctx;
    json_t *pts;

    if ((int64_t)r->n > q->max_points) {
        q->too_many = true;
        return 1;
    }
    pts = json_array();
    for (size_t i = 0; pts && i < r->n; i++)
        json_array_append_new(
            pts, json_pack("[I, o]", (json_int_t)r->ts[i], xl_json_from_number(r->val[i])));
    json_array_append_new(q->arr, json_pack("{s:s, s:o, s:o}", "name", r->name, "labels",
                                            labels_json(r), "points", pts));
    return 0;
}

static void h_query(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    struct xl_server *s = app;
    struct xl_matcher m[MAX_MATCHERS];
    char bufs[MAX_MATCHERS][256];
    struct xl_err err = {0};
    const char *name = xl_http_arg(req, "name"), *p;
    struct query_ctx q = {.max_points = s->cfg->max_points};
    int64_t now = xl_now_ms(), from = now - 3600000, to = now, step = 0;
    enum xl_agg agg = XL_AGG_NONE;
    size_t nm;

    if (!name || !xl_metric_name_valid(name)) {
        xl_http_error(resp, 400, "bad parameter", "name: a metric name is required");
        return;
    }
    if (!parse_matchers(req, resp, m, &nm, bufs))
        return;
    if (!xl_api_time_param(req, resp, "from", now, &from) ||
        !xl_api_time_param(req, resp, "to", now, &to))
        return;
    if ((p = xl_http_arg(req, "step"))) {
        if (xl_duration_parse(p, &step) != XL_OK || step <= 0) {
            xl_http_error(resp, 400, "bad parameter", "step=%.64s: expected a duration like 1m", p);
            return;
        }
        agg = XL_AGG_AVG;
    }
    if ((p = xl_http_arg(req, "agg"))) {
        if (strcmp(p, "raw") == 0) {
            agg = XL_AGG_NONE;
        } else if (xl_agg_parse(p, &agg) != XL_OK) {
            xl_http_error(resp, 400, "bad parameter",
                          "agg=%.64s: expected avg, min, max, last, sum, count or raw", p);
            return;
        }
    }
    if (agg != XL_AGG_NONE && step == 0) {
        xl_http_error(resp, 400, "bad parameter", "agg=%s needs a step", p);
        return;
    }
    if (to < from) {
        xl_http_error(resp, 400, "bad parameter", "to is before from");
        return;
    }
    if (step && (to - from) / step > s->cfg->max_points) {
        xl_http_error(resp, 400, "too many points",
                      "the range holds %lld steps, over max_points %lld: use a larger step",
                      (long long)((to - from) / step), (long long)s->cfg->max_points);
        return;
    }
    q.arr = json_array();
    if (xl_tsdb_query(s->tsdb, name, m, nm, from, to, step, agg, query_cb, &q, &err) != XL_OK) {
        json_decref(q.arr);
        xl_http_error(resp, 503, "store error", "%s", err.msg);
        return;
    }
    if (q.too_many) {
        json_decref(q.arr);
        xl_http_error(resp, 400, "too many points",
                      "a series has over max_points %lld raw samples in range: add step=",
                      (long long)s->cfg->max_points);
        return;
    }
    xl_http_json(resp, 200,
                 json_pack("{s:s, s:I, s:I, s:I, s:s, s:o}", "name", name, "from",
                           (json_int_t)from, "to", (json_int_t)to, "step", (json_int_t)step,
                           "agg", agg_names[agg],
                           "series", q.arr));
}

const struct xl_http_route xl_server_routes[] = {
    {"GET", "/healthz", XL_AUTH_NONE, h_healthz},
    {"GET", "/metrics", XL_AUTH_NONE, h_metrics},
    {"PUT", "/api/v1/agents/{}", XL_AUTH_AGENT, h_register},
    {"POST", "/api/v1/agents/{}/heartbeat", XL_AUTH_AGENT, h_heartbeat},
    {"POST", "/api/v1/ingest", XL_AUTH_AGENT, h_ingest},
    {"GET", "/api/v1/agents", XL_AUTH_API, h_agents},
    {"GET", "/api/v1/agents/{}", XL_AUTH_API, h_agent},
    {"GET", "/api/v1/metrics", XL_AUTH_API, h_metric_names},
    {"GET", "/api/v1/series", XL_AUTH_API, h_series},
    {"GET", "/api/v1/query", XL_AUTH_API, h_query},
    {"GET", "/api/v1/logs", XL_AUTH_API, xl_api_logs_search},
    {"GET", "/api/v1/logs/histogram", XL_AUTH_API, xl_api_logs_histogram},
    {"GET", "/api/v1/logs/stream", XL_AUTH_API, xl_api_logs_stream},
    {"GET", "/api/v1/checks", XL_AUTH_API, xl_api_checks},
    {"GET", "/api/v1/checks/history", XL_AUTH_API, xl_api_checks_history},
    {"GET", "/api/v1/events", XL_AUTH_API, xl_api_events},
    {"GET", "/api/v1/stream", XL_AUTH_API, xl_api_stream},
    {NULL, NULL, XL_AUTH_NONE, NULL},
};
