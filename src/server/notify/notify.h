/* xluo-server: alert notifications (issue 6; wiring to the alert engine is
 * in progress, see docs/notify.md).
 *
 * A notification (struct xl_notify_msg) is a group of alerts that go out in
 * one message. Channels are configured under `notify:` (webhook with a
 * generic or vendor body, email over SMTP, exec of a command); routes pick
 * the channels for a set of labels. xl_notify_send queues one delivery per
 * channel; worker threads deliver them, retrying transient failures with
 * exponential backoff, and report every attempt to a callback.
 *
 * Lifecycle: xl_notify_new starts the workers, xl_notify_free drains the
 * queue for at most drain_timeout, aborts what is still in flight and
 * reports the rest as dropped. */
#ifndef XL_NOTIFY_H
#define XL_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/rc.h"

/* Most channels in one notify config (route results are bounded by it). */
#define XL_NOTIFY_MAX_CHANNELS 64
/* Longest response (or exec output tail) kept for a report. */
#define XL_NOTIFY_SNIPPET_MAX 1024

/* ---- configuration (the `notify:` section of server.yaml) ---- */

struct xl_notify_channel_cfg {
    char *name;
    char *type; /* webhook|email|exec */
    /* webhook */
    char *url;
    struct xl_kvlist headers;
    char *format; /* generic|slack|dingtalk|wecom|feishu|feishu_card */
    /* email */
    char *smtp; /* smtp://host:port or smtps://host:port */
    bool starttls;
    char *auth; /* any|plain|login */
    char *username;
    char *password;
    char *from;
    struct xl_strlist to;
    /* exec */
    struct xl_strlist command; /* argv; no shell */
    /* every type */
    int64_t timeout;      /* ms, one attempt */
    int64_t max_attempts; /* attempts in all, >= 1 */
    int64_t backoff;      /* ms before the 2nd attempt, doubled each time */
    int64_t backoff_max;  /* ms, the longest wait between attempts */
    int64_t max_alerts;   /* alerts written into one message; the rest counted */
    bool send_resolved;
};

struct xl_notify_route_cfg {
    struct xl_kvlist match;     /* label: value | "!=value" | "==value" */
    struct xl_strlist channels; /* channel names */
    bool cont;                  /* `continue`: keep looking after a match */
};

struct xl_notify_cfg {
    struct xl_cfg_array channels; /* struct xl_notify_channel_cfg */
    struct xl_cfg_array routes;   /* struct xl_notify_route_cfg */
    int64_t queue_size;           /* deliveries waiting or retrying, at most */
    int64_t workers;
    int64_t drain_timeout; /* ms xl_notify_free waits for the queue */
};

/* The table of the `notify:` section. Channel items are checked as a whole
 * (required keys per type, keys of another type) by the table; checks
 * across sections (routes naming channels) by xl_notify_cfg_check. */
extern const struct xl_cfg_key xl_notify_cfg_keys[];

/* Checks that need the whole section: unique channel names, routes naming
 * known channels. Called by xl_notify_new; the integrating config loader
 * calls it too so that `check-config` reports it. XL_EINVAL with a message
 * naming notify.routes[i] or notify.channels[i]. */
xl_rc xl_notify_cfg_check(const struct xl_notify_cfg *cfg, struct xl_err *err);

/* ---- notifications ---- */

enum xl_notify_status {
    XL_NOTIFY_FIRING = 0,
    XL_NOTIFY_RESOLVED,
};

struct xl_notify_alert {
    enum xl_notify_status status;
    uint64_t fingerprint;
    char *rule;     /* rule name, written as label alertname */
    char *severity; /* NULL: none; written as label severity */
    struct xl_kvlist labels;
    struct xl_kvlist annotations; /* summary, description, ... */
    double value;                 /* NaN: none */
    int64_t starts_at;            /* ms since the epoch */
    int64_t ends_at;              /* ms; 0 while firing */
    char *generator_url;          /* NULL: none */
};

/* A notification: the alerts of one group, sent as one message. Reference
 * counted because every channel's delivery holds it; immutable once sent. */
struct xl_notify_msg {
    uint64_t id; /* 0: xl_notify_send assigns one */
    char *group_key;
    struct xl_kvlist group_labels;
    struct xl_notify_alert *alerts;
    size_t n_alerts;
    int refs; /* internal */
};

/* A new empty notification with one reference. NULL when out of memory. */
struct xl_notify_msg *xl_notify_msg_new(const char *group_key);
/* Append an alert with copies of rule and severity (severity may be NULL);
 * *out points at it, for the caller to fill the rest (with
 * xl_kvlist_add (common/config.h) for labels and annotations, xl_strdup for strings).
 * The pointer is valid until the next add. XL_ENOMEM. */
xl_rc xl_notify_msg_add(struct xl_notify_msg *m, enum xl_notify_status status, const char *rule,
                        const char *severity, struct xl_notify_alert **out);
/* The value of k in l, NULL when absent. */
const char *xl_notify_kv_get(const struct xl_kvlist *l, const char *k);
void xl_notify_msg_ref(struct xl_notify_msg *m);
/* Drop a reference; the last one frees. NULL is fine. Thread-safe. */
void xl_notify_msg_unref(struct xl_notify_msg *m);

/* ---- bodies (also used by the tests; the delivery uses them) ---- */

/* The generic JSON body (Alertmanager-like), also what exec channels get on
 * stdin, into out. XL_ENOMEM, XL_ETOOBIG (out's maximum). */
xl_rc xl_notify_render_generic(const struct xl_notify_channel_cfg *ch,
                               const struct xl_notify_msg *m, struct xl_buf *out);
/* The body for ch's format (generic, slack, dingtalk, wecom, feishu,
 * feishu_card). */
xl_rc xl_notify_render_body(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            struct xl_buf *out);
/* The subject line and the plain-text body of a mail or a chat message. */
xl_rc xl_notify_render_subject(const struct xl_notify_msg *m, struct xl_buf *out);
xl_rc xl_notify_render_text(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            struct xl_buf *out);

/* ---- routing ---- */

/* The channels (indices into cfg->channels) for an alert with labels: the
 * routes in order; a route matches when every matcher does (an absent label
 * is ""); the first match ends the walk unless it says continue. Each
 * channel appears once. Returns the count written to out (at most cap). */
size_t xl_notify_route(const struct xl_notify_cfg *cfg, const struct xl_kvlist *labels, size_t *out,
                       size_t cap);
/* The index of the channel called name, -1 when none. */
long xl_notify_channel_find(const struct xl_notify_cfg *cfg, const char *name);

/* ---- delivery ---- */

enum xl_notify_outcome {
    XL_NOTIFY_OK = 0,
    XL_NOTIFY_TRANSIENT, /* will be retried unless final */
    XL_NOTIFY_PERMANENT, /* not retried */
    XL_NOTIFY_DROPPED,   /* never delivered: shut down while queued or in flight */
};

/* One attempt of one delivery. Everything is borrowed for the call. */
struct xl_notify_report {
    const char *channel;
    const struct xl_notify_msg *msg;
    uint64_t notification_id;
    unsigned attempt; /* 1, 2, ...; 0 for a delivery dropped before any attempt */
    enum xl_notify_outcome outcome;
    bool final;          /* no further attempt follows */
    int status;          /* HTTP status, SMTP reply code or exit code; 0: none */
    const char *error;   /* what failed, "" when ok */
    const char *snippet; /* response body / command output tail, <= 1 KiB */
    size_t snippet_len;
    int64_t duration_ms;
    int64_t retry_in_ms; /* when not final: the wait before the next attempt */
};

/* Called for every attempt from a worker thread, and for deliveries dropped
 * at shutdown from xl_notify_free's thread: must be thread-safe and quick,
 * and must not call xl_notify_send or xl_notify_free. */
typedef void (*xl_notify_report_fn)(const struct xl_notify_report *r, void *ctx);

struct xl_notify;

/* Check cfg and start the workers. cfg is borrowed and must outlive the
 * handle; cb (may be NULL) gets every report. XL_EINVAL (config), XL_ENOMEM,
 * XL_EIO (thread). */
xl_rc xl_notify_new(const struct xl_notify_cfg *cfg, xl_notify_report_fn cb, void *ctx,
                    struct xl_notify **out, struct xl_err *err);

/* Queue msg for each of the n channels (indices into cfg->channels, as
 * xl_notify_route returns). Takes one reference per queued delivery; the
 * caller keeps its own. All or nothing: XL_EFULL when the queue has not
 * room for all of them, XL_EINVAL for a bad index, XL_ESTATE once
 * stopping. A channel that does not send resolved notifications is skipped
 * when every alert is resolved. */
xl_rc xl_notify_send(struct xl_notify *nf, struct xl_notify_msg *msg, const size_t *channels,
                     size_t n, struct xl_err *err);

/* Deliveries queued or in flight now. */
size_t xl_notify_pending(struct xl_notify *nf);

/* Stop: wait up to drain_timeout for the queue to empty (retries included),
 * then abort what is in flight, report the rest as dropped and free. NULL
 * is fine. */
void xl_notify_free(struct xl_notify *nf);

#endif
