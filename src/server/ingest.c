/* xluo-server: batch decoding and validation. */
#include "ingest.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"

bool xl_agent_id_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == XL_AGENT_ID_LEN;
}

bool xl_json_number(const json_t *v, double *out)
{
    const char *s;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Inf") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}

void xl_batch_cleanup(struct xl_batch *b)
{
    json_decref(b->root);
    xl_free(b->metrics);
    xl_free(b->labels);
    memset(b, 0, sizeof(*b));
}

/* Validate one metric record i and fill m; labels go to *lab (advanced). */
static xl_rc decode_metric(json_t *rec, size_t i, int64_t ts, struct xl_ingest_metric *m,
                           struct xl_label **lab, struct xl_err *err)
{
    json_t *name = json_object_get(rec, "name");
    json_t *labels = json_object_get(rec, "labels");
    json_t *value = json_object_get(rec, "value");
    const char *k;
    json_t *v;

    if (!json_is_string(name) || !xl_metric_name_valid(json_string_value(name)))
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].name: expected a metric name matching "
                          "[a-zA-Z_:][a-zA-Z0-9_:]*",
                          i);
    if (!value || !xl_json_number(value, &m->value))
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].value: expected a number (or \"NaN\", \"+Inf\", \"-Inf\")",
                          i);
    m->name = json_string_value(name);
    m->ts_ms = ts;
    m->labels = *lab;
    m->nlabels = 0;
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels))
            return xl_err_set(err, XL_EINVAL, "records[%zu].labels: expected an object", i);
        json_object_foreach(labels, k, v) {
            if (!xl_label_name_valid(k))
                return xl_err_set(err, XL_EINVAL,
                                  "records[%zu].labels.%s: label names match "
                                  "[a-zA-Z_][a-zA-Z0-9_]* and do not start with __",
                                  i, k);
            if (!json_is_string(v))
                return xl_err_set(err, XL_EINVAL, "records[%zu].labels.%s: expected a string",
                                  i, k);
            m->labels[m->nlabels].name = k;
            m->labels[m->nlabels].value = json_string_value(v);
            m->nlabels++;
        }
    }
    *lab += m->nlabels;
    return XL_OK;
}

xl_rc xl_ingest_decode(const char *body, size_t len, const struct xl_ingest_limits *lim,
                       int64_t now_ms, struct xl_batch *out, struct xl_err *err)
{
    json_error_t jerr;
    json_t *root, *v, *records, *rec;
    struct xl_label *lab;
    size_t nrec, nlab = 0, i;
    xl_rc rc;

    memset(out, 0, sizeof(*out));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return xl_err_set(err, XL_EPARSE, "body:%d:%d (byte %d): %s", jerr.line, jerr.column,
                          jerr.position, jerr.text);
    out->root = root;
    if (!json_is_object(root)) {
        rc = xl_err_set(err, XL_EPARSE, "body: expected a JSON object");
        goto fail;
    }
    v = json_object_get(root, "v");
    if (!json_is_integer(v)) {
        rc = xl_err_set(err, XL_EPARSE, "v: expected the protocol version (1)");
        goto fail;
    }
    if (json_integer_value(v) != XL_PROTO_VERSION) {
        rc = xl_err_set(err, XL_EPROTO, "v: protocol version %lld is not supported (1 is)",
                        (long long)json_integer_value(v));
        goto fail;
    }
    v = json_object_get(root, "agent_id");
    if (!json_is_string(v) || !xl_agent_id_valid(json_string_value(v))) {
        rc = xl_err_set(err, XL_EPARSE, "agent_id: expected 32 lowercase hex characters");
        goto fail;
    }
    out->agent_id = json_string_value(v);
    v = json_object_get(root, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        rc = xl_err_set(err, XL_EPARSE, "seq: expected a non-negative integer");
        goto fail;
    }
    out->seq = (uint64_t)json_integer_value(v);
    v = json_object_get(root, "sent");
    out->sent_ms = json_is_integer(v) ? json_integer_value(v) : 0;
    records = json_object_get(root, "records");
    if (!json_is_array(records)) {
        rc = xl_err_set(err, XL_EPARSE, "records: expected an array");
        goto fail;
    }
    nrec = json_array_size(records);
    if (nrec > lim->max_records) {
        rc = xl_err_set(err, XL_ETOOBIG, "records: %zu records, the limit is %zu", nrec,
                        lim->max_records);
        goto fail;
    }
    /* Size the label storage first: one pass, no per-record allocation. */
    json_array_foreach(records, i, rec) {
        json_t *l = json_object_get(rec, "labels");
        if (json_is_object(l))
            nlab += json_object_size(l);
    }
    out->metrics = xl_calloc(nrec ? nrec : 1, sizeof(*out->metrics));
    out->labels = xl_calloc(nlab ? nlab : 1, sizeof(*out->labels));
    if (!out->metrics || !out->labels) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    lab = out->labels;
    json_array_foreach(records, i, rec) {
        json_t *type, *ts;
        const char *t;
        int64_t tsv;

        if (!json_is_object(rec)) {
            rc = xl_err_set(err, XL_EINVAL, "records[%zu]: expected an object", i);
            goto fail;
        }
        type = json_object_get(rec, "type");
        if (!json_is_string(type)) {
            rc = xl_err_set(err, XL_EINVAL, "records[%zu].type: required (a string)", i);
            goto fail;
        }
        ts = json_object_get(rec, "ts");
        if (!json_is_integer(ts)) {
            rc = xl_err_set(err, XL_EINVAL,
                            "records[%zu].ts: expected integer milliseconds since the epoch", i);
            goto fail;
        }
        tsv = json_integer_value(ts);
        if (tsv < now_ms - lim->max_age_ms || tsv > now_ms + lim->max_skew_ms) {
            rc = xl_err_set(err, XL_EINVAL,
                            "records[%zu].ts: %lld is outside the accepted window "
                            "(now-%llds .. now+%llds)",
                            i, (long long)tsv, (long long)(lim->max_age_ms / 1000),
                            (long long)(lim->max_skew_ms / 1000));
            goto fail;
        }
        t = json_string_value(type);
        if (strcmp(t, "metric") != 0) {
            rc = xl_err_set(err, XL_EINVAL,
                            "records[%zu].type: unknown record type '%.64s' (known: metric)", i, t);
            goto fail;
        }
        if ((rc = decode_metric(rec, i, tsv, &out->metrics[out->nmetrics], &lab, err)) != XL_OK)
            goto fail;
        out->nmetrics++;
    }
    return XL_OK;
fail:
    xl_batch_cleanup(out);
    return rc;
}
