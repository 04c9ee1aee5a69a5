/* xluo-server: the built-in consumers (consumers.h): what storing each
 * kind of record means. Each commit function takes the parts of one or
 * more batches (a group), stores them in one call to its store, counts
 * them, and publishes what was newly stored to the live streams (live.h),
 * building stream JSON only when someone subscribed to the kind.
 *
 * These run on the consumers' threads, reading batches that live in the
 * ingest threads' jansson arenas (jarena.h): they read those trees and
 * never free into them; the JSON they build is their own. */
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "server.h"

#define METRIC_GROUP_MAX 500000 /* samples per metric store append */
#define LOG_GROUP_MAX 100000    /* lines per log store append (its own group limit) */
#define RECORD_GROUP_MAX 100000 /* checks or events per transaction */
#define FIELDS_BUF_MAX ((size_t)1 << 31)

/* ---- metrics ---- */

/* Merge the labels of the part's records with the agent's host and labels
 * (the record wins) into smp[0..nmetrics), the labels into *lab
 * (advanced; room for nlabels + agent labels + 1 per record). */
static void build_samples(const struct xl_part *p, struct xl_tsdb_sample *smp,
                          struct xl_label **lab)
{
    const struct xl_ingest_batch *b = p->batch;
    const struct xl_agent_snapshot *ag = p->agent;
    size_t extra = ag->nlabels + 1;
    struct xl_label *l = *lab;

    for (size_t i = 0; i < b->nmetrics; i++) {
        const struct xl_ingest_metric *m = &b->metrics[i];
        struct xl_label *start = l;

        memcpy(l, m->labels, m->nlabels * sizeof(*l));
        l += m->nlabels;
        for (size_t e = 0; e < extra; e++) {
            const char *n = e == 0 ? "host" : ag->labels[e - 1].name;
            const char *v = e == 0 ? ag->host : ag->labels[e - 1].value;
            bool set = false;

            for (size_t j = 0; j < m->nlabels && !set; j++)
                set = strcmp(m->labels[j].name, n) == 0;
            if (!set) {
                l->name = n;
                l->value = v;
                l++;
            }
        }
        smp[i] = (struct xl_tsdb_sample){.name = m->name,
                                         .labels = start,
                                         .nlabels = (size_t)(l - start),
                                         .ts_ms = m->ts_ms,
                                         .value = m->value};
    }
    *lab = l;
}

struct metric_pub {
    const struct xl_part *part;
    const struct xl_tsdb_sample *smp;
};

/* {"type":"metric","host","agent_id","ts","name","labels","value"}. */
static json_t *metric_json(void *ctx, size_t i)
{
    const struct metric_pub *mp = ctx;
    const struct xl_tsdb_sample *sm = &mp->smp[i];
    json_t *labels = json_object();

    for (size_t j = 0; labels && j < sm->nlabels; j++)
        json_object_set_new(labels, sm->labels[j].name, json_string(sm->labels[j].value));
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o}", "type", "metric", "host",
                     mp->part->agent->host, "agent_id", mp->part->batch->agent_id, "ts",
                     (json_int_t)sm->ts_ms, "name", sm->name, "labels", labels, "value",
                     xl_json_from_number(sm->value));
}

static void publish_metrics(struct xl_server *s, const struct xl_part *p,
                            const struct xl_tsdb_sample *smp)
{
    struct metric_pub mp = {p, smp};
    struct xl_live_rec *recs = xl_calloc(p->batch->nmetrics, sizeof(*recs));

    if (!recs) {
        xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: %zu samples not streamed",
                  p->batch->nmetrics);
        return;
    }
    for (size_t i = 0; i < p->batch->nmetrics; i++)
        recs[i].host = p->agent->host;
    xl_live_publish_records(s->live, XL_KIND_METRIC, recs, p->batch->nmetrics, metric_json, &mp);
    xl_free(recs);
}

static xl_rc metrics_commit(void *ctx, struct xl_part *const *parts, size_t n, struct xl_err *err)
{
    struct xl_server *s = ctx;
    struct xl_tsdb_sample *smp = NULL;
    struct xl_label *lab = NULL, *lp;
    size_t total = 0, nlab = 0, off = 0;
    xl_rc rc;

    for (size_t k = 0; k < n; k++) {
        const struct xl_ingest_batch *b = parts[k]->batch;

        total += b->nmetrics;
        for (size_t i = 0; i < b->nmetrics; i++)
            nlab += b->metrics[i].nlabels + parts[k]->agent->nlabels + 1;
    }
    smp = xl_calloc(total ? total : 1, sizeof(*smp));
    lab = xl_calloc(nlab ? nlab : 1, sizeof(*lab));
    if (!smp || !lab) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    lp = lab;
    for (size_t k = 0; k < n; k++) {
        build_samples(parts[k], smp + off, &lp);
        off += parts[k]->batch->nmetrics;
    }
    if ((rc = xl_tsdb_append(s->tsdb, smp, total, err)) != XL_OK)
        goto out;
    atomic_fetch_add(&s->samples, total);
    if (xl_live_wants(s->live, XL_KIND_METRIC)) {
        off = 0;
        for (size_t k = 0; k < n; k++) {
            publish_metrics(s, parts[k], smp + off);
            off += parts[k]->batch->nmetrics;
        }
    }
out:
    xl_free(smp);
    xl_free(lab);
    return rc;
}

/* ---- logs ---- */

static xl_rc logs_commit(void *ctx, struct xl_part *const *parts, size_t n, struct xl_err *err)
{
    struct xl_server *s = ctx;
    struct xl_log_rec *recs = NULL;
    struct xl_log_row *rows = NULL;
    int64_t *ids = NULL;
    size_t total = 0, j = 0, nnew = 0;
    xl_rc rc;

    for (size_t k = 0; k < n; k++)
        total += parts[k]->batch->nlogs;
    recs = xl_calloc(total ? total : 1, sizeof(*recs));
    rows = xl_calloc(total ? total : 1, sizeof(*rows));
    ids = xl_calloc(total ? total : 1, sizeof(*ids));
    if (!recs || !rows || !ids) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const struct xl_ingest_batch *b = parts[k]->batch;

        for (size_t i = 0; i < b->nlogs; i++) {
            const struct xl_ingest_log *l = &b->logs[i];

            recs[j++] = (struct xl_log_rec){.host = parts[k]->agent->host,
                                            .agent_id = b->agent_id,
                                            .input = l->input,
                                            .path = l->file,
                                            .file_uid = l->file_uid,
                                            .offset = l->offset,
                                            .part = l->part,
                                            .parts = l->parts,
                                            .ts_ms = l->ts_ms,
                                            .line = l->text,
                                            .len = l->len,
                                            .filters = l->matched};
        }
    }
    if ((rc = xl_logstore_append(s->logs, recs, total, ids, err)) != XL_OK)
        goto out;
    /* Repeats of lines stored before are not published again. */
    for (size_t i = 0; i < total; i++) {
        if (!ids[i])
            continue;
        rows[nnew++] = (struct xl_log_row){.id = ids[i],
                                           .ts_ms = recs[i].ts_ms,
                                           .host = recs[i].host,
                                           .agent_id = recs[i].agent_id,
                                           .input = recs[i].input,
                                           .path = recs[i].path,
                                           .line = recs[i].line,
                                           .len = recs[i].len,
                                           .filters = recs[i].filters,
                                           .file_uid = recs[i].file_uid,
                                           .offset = recs[i].offset,
                                           .part = recs[i].part,
                                           .parts = recs[i].parts};
    }
    atomic_fetch_add(&s->log_lines, nnew);
    atomic_fetch_add(&s->log_duplicates, total - nnew);
    if (nnew)
        xl_live_publish(s->live, rows, nnew);
out:
    xl_free(recs);
    xl_free(rows);
    xl_free(ids);
    return rc;
}

/* ---- checks ---- */

struct check_pub {
    const struct xl_check_rec *recs;
    const size_t *idx; /* published record -> recs index */
};

/* The result as on the wire, with host and agent_id:
 * {"type":"check","host","agent_id","ts","name","state","output",
 *  ["long_output"], ["exit_code"], ["duration_ms"], ["source"]}. */
static json_t *check_json(void *ctx, size_t i)
{
    const struct check_pub *cp = ctx;
    const struct xl_check_rec *r = &cp->recs[cp->idx[i]];
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "type", "check", "host", r->host,
                          "agent_id", r->agent_id, "ts", (json_int_t)r->ts_ms, "name", r->name,
                          "state", xl_check_state_str(r->state), "output", r->output);

    if (o && r->long_output)
        json_object_set_new(o, "long_output", json_string(r->long_output));
    if (o && r->has_exit_code)
        json_object_set_new(o, "exit_code", json_integer(r->exit_code));
    if (o && r->has_duration)
        json_object_set_new(o, "duration_ms", json_integer(r->duration_ms));
    if (o && r->has_interval)
        json_object_set_new(o, "interval_ms", json_integer(r->interval_ms));
    if (o && r->source)
        json_object_set_new(o, "source", json_string(r->source));
    return o;
}

static void publish_checks(struct xl_server *s, const struct xl_check_rec *recs,
                           const enum xl_check_outcome *out, size_t n)
{
    struct xl_live_rec *lr = xl_calloc(n, sizeof(*lr));
    size_t *idx = xl_calloc(n, sizeof(*idx)), m = 0;
    struct check_pub cp = {recs, idx};

    if (!lr || !idx) {
        xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: %zu check results not streamed", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (out[i] == XL_CHECK_IGNORED)
            continue;
        lr[m].host = recs[i].host;
        idx[m++] = i;
    }
    xl_live_publish_records(s->live, XL_KIND_CHECK, lr, m, check_json, &cp);
out:
    xl_free(lr);
    xl_free(idx);
}

static xl_rc checks_commit(void *ctx, struct xl_part *const *parts, size_t n, struct xl_err *err)
{
    struct xl_server *s = ctx;
    struct xl_check_rec *recs = NULL;
    enum xl_check_outcome *out = NULL;
    size_t total = 0, j = 0, applied = 0;
    xl_rc rc;

    for (size_t k = 0; k < n; k++)
        total += parts[k]->batch->nchecks;
    recs = xl_calloc(total ? total : 1, sizeof(*recs));
    out = xl_calloc(total ? total : 1, sizeof(*out));
    if (!recs || !out) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const struct xl_ingest_batch *b = parts[k]->batch;

        for (size_t i = 0; i < b->nchecks; i++) {
            const struct xl_ingest_check *c = &b->checks[i];

            recs[j++] = (struct xl_check_rec){.host = parts[k]->agent->host,
                                              .agent_id = b->agent_id,
                                              .name = c->name,
                                              .state = c->state,
                                              .output = c->output,
                                              .long_output = c->long_output,
                                              .source = c->source,
                                              .exit_code = c->exit_code,
                                              .duration_ms = c->duration_ms,
                                              .has_exit_code = c->has_exit_code,
                                              .has_duration = c->has_duration,
                                              .interval_ms = c->interval_ms,
                                              .has_interval = c->has_interval,
                                              .ts_ms = c->ts_ms};
        }
    }
    if ((rc = xl_checkstore_apply(s->checks, recs, total, out, err)) != XL_OK)
        goto done;
    for (size_t i = 0; i < total; i++)
        applied += out[i] != XL_CHECK_IGNORED;
    if (applied && xl_live_wants(s->live, XL_KIND_CHECK))
        publish_checks(s, recs, out, total);
done:
    xl_free(recs);
    xl_free(out);
    return rc;
}

/* ---- events ---- */

static int dump_to_buf(const char *p, size_t n, void *ctx)
{
    return xl_buf_add(ctx, p, n) == XL_OK ? 0 : -1;
}

struct event_pub {
    const struct xl_event_rec *recs;
    const struct xl_ingest_event **evs; /* the decoded records, for their fields */
    const int64_t *ids;
    const size_t *idx; /* published record -> recs index */
};

/* The event as on the wire, with id, host and agent_id:
 * {"type":"event","id","host","agent_id","ts","name","fields",["source"]}.
 * fields is the decoded tree, borrowed: set with a reference (not _new),
 * so that the object's end gives it back and never frees the tree, which
 * belongs to the ingest thread's arena. */
static json_t *event_json(void *ctx, size_t i)
{
    const struct event_pub *ep = ctx;
    size_t k = ep->idx[i];
    const struct xl_event_rec *r = &ep->recs[k];
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:s}", "type", "event", "id",
                          (json_int_t)ep->ids[k], "host", r->host, "agent_id", r->agent_id, "ts",
                          (json_int_t)r->ts_ms, "name", r->type);

    if (o && json_object_set(o, "fields", (json_t *)ep->evs[k]->fields) != 0) {
        json_decref(o);
        return NULL;
    }
    if (o && r->source)
        json_object_set_new(o, "source", json_string(r->source));
    return o;
}

static void publish_events(struct xl_server *s, struct event_pub *ep, size_t n)
{
    struct xl_live_rec *lr = xl_calloc(n, sizeof(*lr));
    size_t *idx = xl_calloc(n, sizeof(*idx)), m = 0;

    if (!lr || !idx) {
        xl_log_rl(XL_LOG_WARN, 10, "live", "out of memory: %zu events not streamed", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ep->ids[i])
            continue;
        lr[m] = (struct xl_live_rec){ep->recs[i].host, ep->recs[i].type, ep->evs[i]->fields};
        idx[m++] = i;
    }
    ep->idx = idx;
    xl_live_publish_records(s->live, XL_KIND_EVENT, lr, m, event_json, ep);
out:
    xl_free(lr);
    xl_free(idx);
}

static xl_rc events_commit(void *ctx, struct xl_part *const *parts, size_t n, struct xl_err *err)
{
    struct xl_server *s = ctx;
    struct xl_event_rec *recs = NULL;
    const struct xl_ingest_event **evs = NULL;
    size_t *offs = NULL, total = 0, j = 0, nnew = 0;
    int64_t *ids = NULL;
    struct xl_buf fields;
    xl_rc rc;

    xl_buf_init(&fields, FIELDS_BUF_MAX);
    for (size_t k = 0; k < n; k++)
        total += parts[k]->batch->nevents;
    recs = xl_calloc(total ? total : 1, sizeof(*recs));
    evs = xl_calloc(total ? total : 1, sizeof(*evs));
    offs = xl_calloc(total ? total : 1, sizeof(*offs));
    ids = xl_calloc(total ? total : 1, sizeof(*ids));
    if (!recs || !evs || !offs || !ids) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    /* The fields as compact JSON text, one after the other (NUL-separated). */
    for (size_t k = 0; k < n; k++) {
        const struct xl_ingest_batch *b = parts[k]->batch;

        for (size_t i = 0; i < b->nevents; i++, j++) {
            const struct xl_ingest_event *e = &b->events[i];

            offs[j] = fields.len;
            if (json_dump_callback(e->fields, dump_to_buf, &fields, JSON_COMPACT) != 0 ||
                xl_buf_add(&fields, "", 1) != XL_OK) {
                rc = xl_err_set(err, XL_ENOMEM, "out of memory");
                goto out;
            }
            evs[j] = e;
            recs[j] = (struct xl_event_rec){.ts_ms = e->ts_ms,
                                            .host = parts[k]->agent->host,
                                            .agent_id = b->agent_id,
                                            .type = e->name,
                                            .source = e->source,
                                            .seq = b->seq,
                                            .idx = e->idx};
        }
    }
    for (size_t i = 0; i < total; i++)
        recs[i].fields = fields.data + offs[i];
    if ((rc = xl_eventstore_append(s->events, recs, total, ids, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < total; i++)
        nnew += ids[i] != 0;
    if (nnew && xl_live_wants(s->live, XL_KIND_EVENT)) {
        struct event_pub ep = {.recs = recs, .evs = evs, .ids = ids};

        publish_events(s, &ep, total);
    }
out:
    xl_buf_cleanup(&fields);
    xl_free(recs);
    xl_free(evs);
    xl_free(offs);
    xl_free(ids);
    return rc;
}

xl_rc xl_server_consumers_start(struct xl_server *s, struct xl_err *err)
{
    size_t q = (size_t)s->cfg->ingest_queue;
    const struct xl_consumer_def defs[XL_KIND_COUNT] = {
        [XL_KIND_METRIC] = {"metrics", metrics_commit, s, q, METRIC_GROUP_MAX},
        [XL_KIND_LOG] = {"logs", logs_commit, s, q, LOG_GROUP_MAX},
        [XL_KIND_CHECK] = {"checks", checks_commit, s, q, RECORD_GROUP_MAX},
        [XL_KIND_EVENT] = {"events", events_commit, s, q, RECORD_GROUP_MAX},
    };

    return xl_consumers_start(defs, &s->consumers, err);
}
