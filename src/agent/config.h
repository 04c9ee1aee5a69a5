/* xluo-agent: configuration (conf/agent.yaml). */
#ifndef XL_AGENT_CONFIG_H
#define XL_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct xl_agent_system_cfg {
    bool enabled;
    int64_t interval;
    bool per_cpu;
};

struct xl_agent_outbox_cfg {
    bool enabled;
    char *dir;
    int64_t max_size;
    int64_t segment_size;
    char *sync;
    int64_t metrics_backlog;
};

struct xl_agent_inputs_cfg {
    struct xl_agent_system_cfg system;
    struct xl_cfg_array tail; /* of struct xl_tail_input_cfg */
    struct xl_cfg_array exec; /* of struct xl_exec_cfg */
};

struct xl_agent_cfg {
    struct xl_strlist servers;
    char *token;
    struct xl_kvlist labels;
    char *hostname;
    char *local_ip;
    char *data_dir;
    char *log_level;
    int64_t heartbeat_interval;
    int64_t request_timeout;
    int64_t retry_max_backoff;
    int64_t batch_max_size;
    int64_t batch_max_age;
    int64_t max_in_flight;
    int64_t breaker_failures;
    int64_t breaker_cooldown;
    char *compression;
    char *listen;
    int64_t push_max_body;
    struct xl_agent_outbox_cfg outbox;
    struct xl_agent_inputs_cfg inputs;
    struct xl_cfg_paths paths; /* resolved at load time, not keys */
    char *outbox_path;         /* outbox.dir resolved against data_path */
};

extern const struct xl_cfg_key xl_agent_cfg_keys[];

xl_rc xl_agent_cfg_load(const char *path, const char *prefix, struct xl_agent_cfg **out,
                        struct xl_err *err);
void xl_agent_cfg_free(struct xl_agent_cfg *cfg);

#endif
