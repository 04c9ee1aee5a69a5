/* xluo-agent: the configuration table. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "common/metric.h"
#include "inputs/exec/exec.h"
#include "inputs/tail/tail.h"

#define OFF(f) offsetof(struct xl_agent_cfg, f)

static const struct xl_cfg_key system_keys[] = {
    {.name = "enabled", .type = XL_CFG_BOOL, .def = "true",
     .offset = offsetof(struct xl_agent_system_cfg, enabled),
     .desc = "collect host metrics (cpu, memory, load, filesystems, disks, network, processes)"},
    {.name = "interval", .type = XL_CFG_DURATION, .def = "10s",
     .offset = offsetof(struct xl_agent_system_cfg, interval), .min = 100, .max = 86400000,
     .desc = "how often"},
    {.name = "per_cpu", .type = XL_CFG_BOOL, .def = "false",
     .offset = offsetof(struct xl_agent_system_cfg, per_cpu),
     .desc = "also report usage per CPU"},
    {NULL},
};

#define OB(f) offsetof(struct xl_agent_outbox_cfg, f)

static const struct xl_cfg_key outbox_keys[] = {
    {.name = "enabled", .type = XL_CFG_BOOL, .def = "true", .offset = OB(enabled),
     .desc = "keep batches on disk until the server acknowledges them; false: in memory only "
             "(lost when the agent stops)"},
    {.name = "dir", .type = XL_CFG_STR, .def = "outbox", .offset = OB(dir),
     .desc = "where, relative to data_dir (or absolute)"},
    {.name = "max_size", .type = XL_CFG_SIZE, .def = "256MiB", .offset = OB(max_size),
     .min = 1 << 20, .max = 1LL << 42,
     .desc = "largest backlog; when full, log inputs pause and metric batches wait in memory "
             "(metrics_backlog)"},
    {.name = "segment_size", .type = XL_CFG_SIZE, .def = "16MiB", .offset = OB(segment_size),
     .min = 65536, .max = 1LL << 32, .desc = "size of one outbox file"},
    {.name = "sync", .type = XL_CFG_STR, .def = "always", .offset = OB(sync),
     .choices = "always|none",
     .desc = "always: fdatasync each write before tail positions move past it (survives power "
             "loss); none: leave it to the kernel (survives agent crashes only)"},
    {.name = "metrics_backlog", .type = XL_CFG_SIZE, .def = "4MiB",
     .offset = OB(metrics_backlog), .min = 65536, .max = 1LL << 32,
     .desc = "batches kept in memory while the outbox cannot take them; beyond it the oldest "
             "metric batches are dropped and counted"},
    {NULL},
};

static const struct xl_cfg_key inputs_keys[] = {
    {.name = "system", .type = XL_CFG_SECTION,
     .offset = offsetof(struct xl_agent_inputs_cfg, system), .sub = system_keys,
     .desc = "host metrics from /proc and statvfs"},
    {.name = "tail", .type = XL_CFG_LIST, .offset = offsetof(struct xl_agent_inputs_cfg, tail),
     .sub = xl_tail_cfg_keys, .item_size = sizeof(struct xl_tail_input_cfg),
     .desc = "log files to follow (docs/tail.md); `xluo-agent reload` applies changes"},
    {.name = "exec", .type = XL_CFG_LIST, .offset = offsetof(struct xl_agent_inputs_cfg, exec),
     .sub = xl_exec_cfg_keys, .item_size = sizeof(struct xl_exec_cfg),
     .desc = "scripts and plugins run on intervals: JSON records, Nagios plugins, Prometheus "
             "text (docs/exec.md)"},
    {NULL},
};

static xl_rc check_labels(const void *field, struct xl_err *err)
{
    const struct xl_kvlist *l = field;

    for (size_t i = 0; i < l->n; i++)
        if (!xl_label_name_valid(l->k[i]) || strcmp(l->k[i], "host") == 0)
            return xl_err_set(err, XL_EINVAL,
                              "'%s' is not a usable label name ([a-zA-Z_][a-zA-Z0-9_]*, not "
                              "starting with __, not 'host')",
                              l->k[i]);
    return XL_OK;
}

static xl_rc check_listen(const void *field, struct xl_err *err)
{
    const char *const *s = field;

    return *s && **s ? xl_cfg_check_hostport(field, err) : XL_OK;
}

const struct xl_cfg_key xl_agent_cfg_keys[] = {
    {.name = "servers", .type = XL_CFG_STRLIST, .def = "http://127.0.0.1:21002",
     .offset = OFF(servers), .check = xl_cfg_check_urls,
     .desc = "server URLs in failover order"},
    {.name = "token", .type = XL_CFG_STR, .offset = OFF(token),
     .desc = "the server's agent_token"},
    {.name = "labels", .type = XL_CFG_MAP, .offset = OFF(labels), .check = check_labels,
     .desc = "labels added to everything this agent sends, e.g. {role: web}"},
    {.name = "hostname", .type = XL_CFG_STR, .offset = OFF(hostname),
     .desc = "host name to report (default: gethostname)"},
    {.name = "local_ip", .type = XL_CFG_STR, .offset = OFF(local_ip),
     .desc = "IP to report (default: the source address used to reach the server)"},
    {.name = "data_dir", .type = XL_CFG_STR, .def = "data", .offset = OFF(data_dir),
     .desc = "agent id and state, relative to the prefix"},
    {.name = "log_level", .type = XL_CFG_STR, .def = "info", .offset = OFF(log_level),
     .choices = "error|warn|info|debug", .desc = "log verbosity"},
    {.name = "heartbeat_interval", .type = XL_CFG_DURATION, .def = "10s",
     .offset = OFF(heartbeat_interval), .min = 1000, .max = 3600000,
     .desc = "how often the agent tells the server it is alive"},
    {.name = "request_timeout", .type = XL_CFG_DURATION, .def = "30s",
     .offset = OFF(request_timeout), .min = 100, .max = 600000,
     .desc = "give up on one HTTP request after this long"},
    {.name = "retry_max_backoff", .type = XL_CFG_DURATION, .def = "60s",
     .offset = OFF(retry_max_backoff), .min = 100, .max = 3600000,
     .desc = "longest wait between retries (exponential with full jitter: 2s, 4s, 8s ...)"},
    {.name = "batch_max_size", .type = XL_CFG_SIZE, .def = "1MiB", .offset = OFF(batch_max_size),
     .min = 4096, .max = 64 << 20,
     .desc = "a batch is closed once it is this big (before compression)"},
    {.name = "batch_max_age", .type = XL_CFG_DURATION, .def = "1s", .offset = OFF(batch_max_age),
     .min = 0, .max = 600000,
     .desc = "... or this old, or as soon as the shipper has nothing else to send"},
    {.name = "max_in_flight", .type = XL_CFG_INT, .def = "4", .offset = OFF(max_in_flight),
     .min = 1, .max = 64, .desc = "batches sent at once"},
    {.name = "breaker_failures", .type = XL_CFG_INT, .def = "5",
     .offset = OFF(breaker_failures), .min = 1, .max = 1000,
     .desc = "failures in a row that open a server's circuit breaker (then the next server "
             "is used)"},
    {.name = "breaker_cooldown", .type = XL_CFG_DURATION, .def = "30s",
     .offset = OFF(breaker_cooldown), .min = 100, .max = 3600000,
     .desc = "how long an open breaker waits before one probe request (success closes it, "
             "and the agent returns to that server)"},
    {.name = "compression", .type = XL_CFG_STR, .def = "zstd", .offset = OFF(compression),
     .choices = "zstd|none", .desc = "how batches are stored in the outbox and sent"},
    {.name = "listen", .type = XL_CFG_STR, .def = "127.0.0.1:21001", .offset = OFF(listen),
     .check = check_listen,
     .desc = "local HTTP endpoint: GET /healthz, GET /metrics, POST /v1/push (docs/exec.md); "
             "\"\" turns it off"},
    {.name = "push_max_body", .type = XL_CFG_SIZE, .def = "1MiB", .offset = OFF(push_max_body),
     .min = 1024, .max = 64 << 20, .desc = "largest body POST /v1/push takes"},
    {.name = "outbox", .type = XL_CFG_SECTION, .offset = OFF(outbox), .sub = outbox_keys,
     .desc = "batches waiting for the server's acknowledgement (docs/delivery.md)"},
    {.name = "inputs", .type = XL_CFG_SECTION, .offset = OFF(inputs), .sub = inputs_keys,
     .desc = "what the agent collects"},
    {NULL},
};

xl_rc xl_agent_cfg_load(const char *path, const char *prefix, struct xl_agent_cfg **out,
                        struct xl_err *err)
{
    struct xl_agent_cfg *cfg = xl_calloc(1, sizeof(*cfg));
    xl_rc rc;

    if (!cfg)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    rc = xl_cfg_load(xl_agent_cfg_keys, cfg, path, err);
    if (rc != XL_OK)
        goto fail;
    if (cfg->servers.n == 0) {
        rc = xl_err_set(err, XL_EINVAL, "%s: servers: at least one server URL is needed",
                        path ? path : "(defaults)");
        goto fail;
    }
    if ((rc = xl_cfg_paths_resolve(&cfg->paths, prefix, cfg->data_dir, err)) != XL_OK)
        goto fail;
    if (!(cfg->outbox_path = xl_path_join(cfg->paths.data_path, cfg->outbox.dir))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    *out = cfg;
    return XL_OK;
fail:
    xl_agent_cfg_free(cfg);
    return rc;
}

void xl_agent_cfg_free(struct xl_agent_cfg *cfg)
{
    if (!cfg)
        return;
    xl_cfg_cleanup(xl_agent_cfg_keys, cfg);
    xl_cfg_paths_cleanup(&cfg->paths);
    free(cfg->outbox_path);
    xl_free(cfg);
}
