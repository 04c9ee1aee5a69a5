/* xluo-server: the agent registry.
 *
 * Agents register (upsert of identity), then heartbeat; any accepted batch
 * also counts as a sign of life. The registry lives in memory behind a mutex
 * and is persisted to SQLite (data/server.db): identity at once, last-seen
 * times by xl_registry_flush() (called every second), so a restart keeps
 * every agent and roughly when it was last seen. */
#ifndef XL_REGISTRY_H
#define XL_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metric.h"
#include "common/rc.h"

struct xl_registry;

struct xl_agent_info {
    const char *id;
    const char *host;
    const char *ip;
    const char *version;
    const json_t *labels; /* object of strings, may be NULL */
    int64_t heartbeat_interval_ms;
    int64_t started_ms;
};

/* A copy of what ingest needs of an agent: host and labels. */
struct xl_agent_snapshot {
    char *host;
    struct xl_label *labels; /* names and values are heap copies */
    size_t nlabels;
};

xl_rc xl_registry_open(const char *db_path, int64_t offline_after_missed,
                       struct xl_registry **out, struct xl_err *err);
void xl_registry_close(struct xl_registry *r);

xl_rc xl_registry_register(struct xl_registry *r, const struct xl_agent_info *info,
                           int64_t now_ms, struct xl_err *err);
/* Mark the agent alive at now_ms; seq (if not 0) is its last accepted batch;
 * stats (if not NULL) replaces its last reported stats. XL_ENOENT if the id
 * is not registered. */
xl_rc xl_registry_touch(struct xl_registry *r, const char *id, int64_t now_ms, uint64_t seq,
                        const json_t *stats);
/* Copy the agent's host and labels. XL_ENOENT if not registered. */
xl_rc xl_registry_snapshot(struct xl_registry *r, const char *id,
                           struct xl_agent_snapshot *out);
void xl_agent_snapshot_cleanup(struct xl_agent_snapshot *s);

/* Every agent as the API shows it (docs/api.md), sorted by host; id NULL
 * for all (returns an object {"agents": [...]}), else the one agent object
 * or NULL. */
json_t *xl_registry_json(struct xl_registry *r, const char *id, int64_t now_ms);
/* Count agents online and offline at now_ms. */
void xl_registry_counts(struct xl_registry *r, int64_t now_ms, uint64_t *online,
                        uint64_t *offline);
/* Write last-seen times changed since the last flush. */
xl_rc xl_registry_flush(struct xl_registry *r, struct xl_err *err);

#endif
