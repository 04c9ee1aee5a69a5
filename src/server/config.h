/* xluo-server: configuration (conf/server.yaml). */
#ifndef XL_SERVER_CONFIG_H
#define XL_SERVER_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/config.h"

struct xl_server_store_cfg {
    char *sync;
    int64_t flush_interval;
    int64_t wal_max_size;
    int64_t retention;
};

struct xl_server_logs_cfg {
    int64_t retention;
    int64_t max_size;
};

struct xl_server_events_cfg {
    int64_t retention;
};

struct xl_server_checks_cfg {
    int64_t history_retention;
};

struct xl_server_cfg {
    char *listen;
    char *agent_token;
    char *api_token;
    char *data_dir;
    char *log_level;
    int64_t threads;
    int64_t max_body;
    int64_t max_records;
    int64_t max_sample_age;
    int64_t max_clock_skew;
    int64_t offline_after_missed;
    int64_t max_points;
    int64_t ingest_queue;
    struct xl_server_store_cfg store;
    struct xl_server_logs_cfg logs;
    struct xl_server_events_cfg events;
    struct xl_server_checks_cfg checks;
    struct xl_cfg_paths paths; /* resolved at load time, not keys */
};

extern const struct xl_cfg_key xl_server_cfg_keys[];

/* Load (path NULL: defaults) and resolve paths against prefix. */
xl_rc xl_server_cfg_load(const char *path, const char *prefix, struct xl_server_cfg **out,
                         struct xl_err *err);
void xl_server_cfg_free(struct xl_server_cfg *cfg);

#endif
