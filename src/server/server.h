/* xluo-server: the process that wires config, store, registry and HTTP. */
#ifndef XL_SERVER_H
#define XL_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/daemon.h"
#include "config.h"
#include "consumers.h"
#include "http.h"
#include "ingest.h"
#include "registry.h"
#include "live.h"
#include "store/checks.h"
#include "store/events.h"
#include "store/logs.h"
#include "store/tsdb.h"

enum xl_reject { XL_REJECT_PARSE, XL_REJECT_INVALID, XL_REJECT_TOOBIG, XL_REJECT_AUTH_AGENT,
                 XL_REJECT_STORE, XL_REJECT_BUSY, XL_REJECT_ENCODING, XL_REJECT_QUEUE,
                 XL_REJECT_COUNT };

struct xl_server {
    struct xl_server_cfg *cfg;
    struct xl_tsdb *tsdb;
    struct xl_logstore *logs;
    struct xl_checkstore *checks;
    struct xl_eventstore *events;
    struct xl_consumers *consumers;
    struct xl_live *live;
    struct xl_registry *reg;
    struct xl_http *http;
    char *agent_token;
    char *api_token;
    struct xl_ingest_limits limits;
    _Atomic uint64_t batches, samples, log_lines, log_duplicates;
    _Atomic uint64_t duplicate_batches; /* answered as stored before */
    _Atomic uint64_t seen_errors;       /* seqs stored but not written to ingest_seen */
    _Atomic uint64_t zstd_bodies, zstd_bytes_in, zstd_bytes_out;
    _Atomic uint64_t rejected[XL_REJECT_COUNT];
    int64_t started_ms;
};

/* Query parameters the API routes share (api_args.c). Each answers 400
 * itself, naming the parameter, and returns false when the value is bad;
 * an absent parameter leaves *out as it was. */
/* A time: integer ms since the epoch, or a duration back from now ("1h"). */
bool xl_api_time_param(struct xl_http_req *req, struct xl_http_resp *resp, const char *name,
                       int64_t now_ms, int64_t *out);
/* An integer from 1 to max. */
bool xl_api_count_param(struct xl_http_req *req, struct xl_http_resp *resp, const char *name,
                        long long max, long long *out);

/* Log routes (api_logs.c: search and histogram; live.c: the SSE stream). */
void xl_api_logs_search(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_logs_histogram(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_logs_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp);

/* Record routes (api_records.c: checks and events; live.c: the record
 * stream). */
void xl_api_checks(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_checks_history(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_events(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp);

/* Start the built-in consumers (ingest_consumers.c): metrics to the metric
 * store, log lines to the log store, check results to the check store,
 * events to the event store, each then published to live streams. */
xl_rc xl_server_consumers_start(struct xl_server *s, struct xl_err *err);

/* The routes of the HTTP API (api.c). */
extern const struct xl_http_route xl_server_routes[];

/* Run until SIGTERM/SIGINT (the daemon's run callback). */
int xl_server_run(void *cfg, const struct xl_daemon_opts *opts);

#endif
