/* xluo-server: the process that wires config, store, registry and HTTP. */
#ifndef XL_SERVER_H
#define XL_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/daemon.h"
#include "config.h"
#include "http.h"
#include "ingest.h"
#include "registry.h"
#include "live.h"
#include "store/logs.h"
#include "store/tsdb.h"

enum xl_reject { XL_REJECT_PARSE, XL_REJECT_INVALID, XL_REJECT_TOOBIG, XL_REJECT_AUTH_AGENT,
                 XL_REJECT_STORE, XL_REJECT_BUSY, XL_REJECT_ENCODING, XL_REJECT_COUNT };

struct xl_server {
    struct xl_server_cfg *cfg;
    struct xl_tsdb *tsdb;
    struct xl_logstore *logs;
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

/* Log routes (api_logs.c: search and histogram; live.c: the SSE stream). */
void xl_api_logs_search(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_logs_histogram(void *app, struct xl_http_req *req, struct xl_http_resp *resp);
void xl_api_logs_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp);

/* The routes of the HTTP API (api.c). */
extern const struct xl_http_route xl_server_routes[];

/* Run until SIGTERM/SIGINT (the daemon's run callback). */
int xl_server_run(void *cfg, const struct xl_daemon_opts *opts);

#endif
