/* xluo-server: the configuration table. */
#include "config.h"

#include <stddef.h>

#include "common/alloc.h"
#include "common/daemon.h"

#define OFF(f) offsetof(struct xl_server_cfg, f)
#define SOFF(f) offsetof(struct xl_server_store_cfg, f)

static const struct xl_cfg_key store_keys[] = {
    {.name = "sync", .type = XL_CFG_STR, .def = "always", .offset = SOFF(sync),
     .choices = "always|none",
     .desc = "always: a batch is acknowledged after fdatasync (group commit); "
             "none: after write(2) only (survives a crash of the server, not of the host)"},
    {.name = "flush_interval", .type = XL_CFG_DURATION, .def = "2m",
     .offset = SOFF(flush_interval), .min = 1000, .max = 86400000,
     .desc = "move in-memory samples into compressed chunks at least this often"},
    {.name = "wal_max_size", .type = XL_CFG_SIZE, .def = "256MiB",
     .offset = SOFF(wal_max_size), .min = 1 << 20, .max = 1LL << 40,
     .desc = "... or when the write-ahead log grows past this"},
    {.name = "retention", .type = XL_CFG_DURATION, .def = "30d", .offset = SOFF(retention),
     .desc = "delete samples older than this (0 keeps everything)"},
    {NULL},
};

static const struct xl_cfg_key logs_keys[] = {
    {.name = "retention", .type = XL_CFG_DURATION, .def = "7d",
     .offset = offsetof(struct xl_server_logs_cfg, retention),
     .desc = "delete log lines older than this (0 keeps everything)"},
    {.name = "max_size", .type = XL_CFG_SIZE, .def = "10GiB",
     .offset = offsetof(struct xl_server_logs_cfg, max_size), .max = 1LL << 50,
     .desc = "delete the oldest log lines when the log store grows past this (0: no limit)"},
    {NULL},
};

static const struct xl_cfg_key events_keys[] = {
    {.name = "retention", .type = XL_CFG_DURATION, .def = "30d",
     .offset = offsetof(struct xl_server_events_cfg, retention),
     .desc = "delete events older than this (0 keeps everything)"},
    {NULL},
};

static const struct xl_cfg_key checks_keys[] = {
    {.name = "history_retention", .type = XL_CFG_DURATION, .def = "30d",
     .offset = offsetof(struct xl_server_checks_cfg, history_retention),
     .desc = "delete check state changes older than this (0 keeps everything); "
             "current states are kept"},
    {NULL},
};

const struct xl_cfg_key xl_server_cfg_keys[] = {
    {.name = "listen", .type = XL_CFG_STR, .def = "0.0.0.0:21002", .offset = OFF(listen),
     .check = xl_cfg_check_hostport, .desc = "address for agents, the API and the dashboard"},
    {.name = "agent_token", .type = XL_CFG_STR, .offset = OFF(agent_token),
     .desc = "token agents present; empty: generated once into data/agent_token"},
    {.name = "api_token", .type = XL_CFG_STR, .offset = OFF(api_token),
     .desc = "token the CLI and API clients present; empty: generated once into data/api_token"},
    {.name = "data_dir", .type = XL_CFG_STR, .def = "data", .offset = OFF(data_dir),
     .desc = "where the store lives, relative to the prefix"},
    {.name = "log_level", .type = XL_CFG_STR, .def = "info", .offset = OFF(log_level),
     .choices = "error|warn|info|debug", .desc = "log verbosity"},
    {.name = "threads", .type = XL_CFG_INT, .def = "4", .offset = OFF(threads), .min = 1,
     .max = 256, .desc = "HTTP worker threads"},
    {.name = "max_body", .type = XL_CFG_SIZE, .def = "16MiB", .offset = OFF(max_body),
     .min = 1024, .max = 1LL << 30, .desc = "largest request body accepted (413 beyond)"},
    {.name = "max_records", .type = XL_CFG_INT, .def = "100000", .offset = OFF(max_records),
     .min = 1, .max = 10000000, .desc = "most records in one batch (413 beyond)"},
    {.name = "max_sample_age", .type = XL_CFG_DURATION, .def = "7d",
     .offset = OFF(max_sample_age), .min = 60000, .max = 3153600000000.0,
     .desc = "records older than this are rejected (422)"},
    {.name = "max_clock_skew", .type = XL_CFG_DURATION, .def = "10m",
     .offset = OFF(max_clock_skew), .min = 0, .max = 86400000,
     .desc = "records further than this in the future are rejected (422)"},
    {.name = "offline_after_missed", .type = XL_CFG_INT, .def = "3",
     .offset = OFF(offline_after_missed), .min = 1, .max = 1000,
     .desc = "an agent is offline after this many missed heartbeats"},
    {.name = "max_points", .type = XL_CFG_INT, .def = "11000", .offset = OFF(max_points),
     .min = 10, .max = 10000000, .desc = "most points per series a query may return"},
    {.name = "ingest_queue", .type = XL_CFG_INT, .def = "16", .offset = OFF(ingest_queue),
     .min = 1, .max = 4096,
     .desc = "per record type, batches waiting to be stored or being stored; beyond, "
             "ingest answers 503 busy (below threads, a slow store cannot hold every worker)"},
    {.name = "store", .type = XL_CFG_SECTION, .offset = OFF(store), .sub = store_keys,
     .desc = "the embedded metric store"},
    {.name = "logs", .type = XL_CFG_SECTION, .offset = OFF(logs), .sub = logs_keys,
     .desc = "the embedded log store (SQLite FTS5); durability follows store.sync"},
    {.name = "events", .type = XL_CFG_SECTION, .offset = OFF(events), .sub = events_keys,
     .desc = "the event store (SQLite, data/events.db); durability follows store.sync"},
    {.name = "checks", .type = XL_CFG_SECTION, .offset = OFF(checks), .sub = checks_keys,
     .desc = "the check store (SQLite, data/checks.db); durability follows store.sync"},
    {NULL},
};

xl_rc xl_server_cfg_load(const char *path, const char *prefix, struct xl_server_cfg **out,
                         struct xl_err *err)
{
    struct xl_server_cfg *cfg = xl_calloc(1, sizeof(*cfg));
    xl_rc rc;

    if (!cfg)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    rc = xl_cfg_load(xl_server_cfg_keys, cfg, path, err);
    if (rc != XL_OK)
        goto fail;
    if ((rc = xl_cfg_paths_resolve(&cfg->paths, prefix, cfg->data_dir, err)) != XL_OK)
        goto fail;
    *out = cfg;
    return XL_OK;
fail:
    xl_server_cfg_free(cfg);
    return rc;
}

void xl_server_cfg_free(struct xl_server_cfg *cfg)
{
    if (!cfg)
        return;
    xl_cfg_cleanup(xl_server_cfg_keys, cfg);
    xl_cfg_paths_cleanup(&cfg->paths);
    xl_free(cfg);
}
