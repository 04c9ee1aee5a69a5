/* xluo-server: the agent registry.
 *
 * Agents register (upsert of identity), then heartbeat; any accepted batch
 * also counts as a sign of life. The registry lives in memory behind a mutex
 * and is persisted to SQLite (data/server.db): identity at once, last-seen
 * times by xl_registry_flush() (called every second), so a restart keeps
 * every agent and roughly when it was last seen.
 *
 * It also knows which batches of each agent are stored (seqset.h), for
 * exactly-once ingest (docs/protocol.md): xl_registry_batch_begin before a
 * batch is stored, xl_registry_batch_end after. Those sets are written to
 * the table ingest_seen before xl_registry_batch_end returns (grouped with
 * other threads' changes; synchronous=NORMAL), so they survive a restart.
 *
 * The stats of the agents' last heartbeats are kept in memory only. */
#ifndef XL_REGISTRY_H
#define XL_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metric.h"
#include "common/rc.h"
#include "seqset.h"

/* Largest stats object a heartbeat may carry, as compact JSON. */
#define XL_AGENT_STATS_MAX 16384

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
/* Check a heartbeat's stats before xl_registry_touch: an object of at most
 * XL_AGENT_STATS_MAX bytes as compact JSON. XL_EINVAL (not an object),
 * XL_ETOOBIG, with err saying which. */
xl_rc xl_registry_stats_check(const json_t *stats, struct xl_err *err);
/* Call fn for every agent that has reported stats, sorted by host, with
 * the registry locked (fn must not call the registry; stats is borrowed). */
typedef void (*xl_registry_stats_fn)(void *ctx, const char *id, const char *host,
                                     const json_t *stats);
void xl_registry_each_stats(struct xl_registry *r, xl_registry_stats_fn fn, void *ctx);

/* Before storing batch seq of agent id: apply the agent's promise that no
 * seq below floor comes again (a lower floor than before is ignored), then
 * say in *state whether the batch is new (it is then busy until
 * xl_registry_batch_end), stored already (XL_SEQ_DONE; counted as a sign
 * of life) or being stored by another request (XL_SEQ_BUSY). Seq 0 is
 * always new and never tracked. XL_ENOENT (not registered), XL_EFULL (too
 * many batches of this agent busy), XL_ENOMEM; *state is unset then. */
xl_rc xl_registry_batch_begin(struct xl_registry *r, const char *id, uint64_t seq, uint64_t floor,
                              int64_t now_ms, enum xl_seq_state *state);
/* End a batch begun as new. stored: its records are durable; the seq is
 * recorded as stored and written to the database before this returns, and
 * the agent's last-seen time and last seq move on. !stored: only the busy
 * mark goes (the agent will send it again). XL_EDB (err says why) when the
 * write failed: the record is kept in memory and written at the next flush;
 * the batch is stored all the same (a resend after a crash meanwhile is
 * stored again, which the stores' own dedup makes harmless). */
xl_rc xl_registry_batch_end(struct xl_registry *r, const char *id, uint64_t seq, bool stored,
                            int64_t now_ms, struct xl_err *err);

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
/* Write last-seen times and seen sets changed since the last flush. */
xl_rc xl_registry_flush(struct xl_registry *r, struct xl_err *err);

#endif
