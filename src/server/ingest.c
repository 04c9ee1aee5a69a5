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

void xl_ingest_batch_cleanup(struct xl_ingest_batch *b)
{
    json_decref(b->root);
    xl_free(b->metrics);
    xl_free(b->labels);
    xl_free(b->logs);
    xl_free(b->matched);
    xl_free(b->checks);
    xl_free(b->events);
    memset(b, 0, sizeof(*b));
}

/* An optional string field: absent or null leaves *out NULL. */
static xl_rc opt_string(json_t *rec, const char *key, size_t i, size_t max, const char **out,
                        size_t *len, struct xl_err *err)
{
    json_t *v = json_object_get(rec, key);

    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v))
        return XL_OK;
    if (!json_is_string(v))
        return xl_err_set(err, XL_EINVAL, "records[%zu].%s: expected a string", i, key);
    if (json_string_length(v) > max)
        return xl_err_set(err, XL_EINVAL, "records[%zu].%s: %zu bytes, the limit is %zu", i, key,
                          json_string_length(v), max);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return XL_OK;
}

/* An optional integer field in [min, max]. */
static xl_rc opt_int(json_t *rec, const char *key, size_t i, int64_t min, int64_t max, int64_t *out,
                     bool *has, struct xl_err *err)
{
    json_t *v = json_object_get(rec, key);

    *has = false;
    *out = 0;
    if (!v || json_is_null(v))
        return XL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return xl_err_set(err, XL_EINVAL, "records[%zu].%s: expected an integer from %lld to %lld",
                          i, key, (long long)min, (long long)max);
    *out = json_integer_value(v);
    *has = true;
    return XL_OK;
}

/* Validate check record i and append it to out->checks. */
static xl_rc decode_check(json_t *rec, size_t i, int64_t ts, struct xl_ingest_batch *out,
                          struct xl_err *err)
{
    json_t *name = json_object_get(rec, "name"), *state = json_object_get(rec, "state");
    struct xl_ingest_check c = {.ts_ms = ts};
    size_t olen, llen, slen;
    xl_rc rc;

    if (!json_is_string(name) || json_string_length(name) == 0 ||
        !xl_check_name_valid(json_string_value(name), json_string_length(name)))
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].name: expected the check's name (1 to %d bytes of "
                          "printable UTF-8)",
                          i, XL_CHECK_NAME_MAX);
    /* The wire spells states in lowercase only (the parser takes any case). */
    if (!json_is_string(state) || !xl_check_state_parse(json_string_value(state), &c.state) ||
        strcmp(json_string_value(state), xl_check_state_str(c.state)) != 0)
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].state: expected ok, warning, critical or unknown", i);
    c.name = json_string_value(name);
    if ((rc = opt_string(rec, "output", i, XL_CHECK_OUTPUT_MAX, &c.output, &olen, err)) ||
        (rc = opt_string(rec, "long_output", i, XL_CHECK_OUTPUT_MAX, &c.long_output, &llen, err)) ||
        (rc = opt_string(rec, "source", i, XL_SOURCE_MAX, &c.source, &slen, err)) ||
        (rc = opt_int(rec, "exit_code", i, INT32_MIN, INT32_MAX, &c.exit_code, &c.has_exit_code,
                      err)) ||
        (rc = opt_int(rec, "duration_ms", i, 0, INT64_MAX, &c.duration_ms, &c.has_duration, err)) ||
        (rc = opt_int(rec, "interval_ms", i, 1, INT64_MAX / 4, &c.interval_ms, &c.has_interval,
                      err)))
        return rc;
    if (olen + llen > XL_CHECK_OUTPUT_MAX)
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].long_output: output and long_output hold %zu bytes, the "
                          "limit is %u",
                          i, olen + llen, XL_CHECK_OUTPUT_MAX);
    if (!c.output)
        c.output = "";
    if (xl_grow((void **)&out->checks, &out->checks_cap, out->nchecks + 1, sizeof(c)) != 0)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    out->checks[out->nchecks++] = c;
    return XL_OK;
}

/* Counts the bytes of a compact dump, giving up past the limit. */
static int count_bytes(const char *p, size_t n, void *ctx)
{
    size_t *left = ctx;

    if (n > *left)
        return -1;
    *left -= n;
    return 0;
}

/* Validate event record i and append it to out->events. */
static xl_rc decode_event(json_t *rec, size_t i, int64_t ts, struct xl_ingest_batch *out,
                          struct xl_err *err)
{
    json_t *name = json_object_get(rec, "name"), *fields = json_object_get(rec, "fields");
    struct xl_ingest_event e = {.ts_ms = ts, .idx = (uint32_t)i};
    size_t left = XL_EVENT_FIELDS_MAX, slen;
    xl_rc rc;

    if (!json_is_string(name) || !xl_event_type_valid(json_string_value(name)))
        return xl_err_set(err, XL_EINVAL,
                          "records[%zu].name: expected the event type: 1 to %d characters of "
                          "[A-Za-z0-9_.:-], not metric, log, check, event, heartbeat or job_run",
                          i, XL_EVENT_TYPE_MAX);
    if (!json_is_object(fields))
        return xl_err_set(err, XL_EINVAL, "records[%zu].fields: expected an object", i);
    if (json_dump_callback(fields, count_bytes, &left, JSON_COMPACT) != 0)
        return xl_err_set(err, XL_EINVAL, "records[%zu].fields: more than %u bytes as compact JSON",
                          i, XL_EVENT_FIELDS_MAX);
    if ((rc = opt_string(rec, "source", i, XL_SOURCE_MAX, &e.source, &slen, err)) != XL_OK)
        return rc;
    e.name = json_string_value(name);
    e.fields = fields;
    if (xl_grow((void **)&out->events, &out->events_cap, out->nevents + 1, sizeof(e)) != 0)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    out->events[out->nevents++] = e;
    return XL_OK;
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

static bool hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (i == 16)
            return false;
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *out = v;
    return i == 16;
}

static bool offset_of(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Validate log record i and append its lines to out->logs; joined filter
 * names go to *mp (advanced). */
static xl_rc decode_log(json_t *rec, size_t i, int64_t ts, struct xl_ingest_batch *out, char **mp,
                        struct xl_err *err)
{
    json_t *input = json_object_get(rec, "input"), *file = json_object_get(rec, "file");
    json_t *fid = json_object_get(rec, "file_id"), *lines = json_object_get(rec, "lines"), *ln;
    uint64_t uid;
    size_t j;

    if (!json_is_string(input) || !json_string_length(input))
        return xl_err_set(err, XL_EINVAL, "records[%zu].input: expected the input name", i);
    if (!json_is_string(file) || !json_string_length(file))
        return xl_err_set(err, XL_EINVAL, "records[%zu].file: expected the file path", i);
    if (!json_is_string(fid) || !hex16(json_string_value(fid), &uid))
        return xl_err_set(err, XL_EINVAL, "records[%zu].file_id: expected 16 lowercase hex "
                                          "characters", i);
    if (!json_is_array(lines))
        return xl_err_set(err, XL_EINVAL, "records[%zu].lines: expected an array", i);
    json_array_foreach(lines, j, ln) {
        struct xl_ingest_log *l = &out->logs[out->nlogs];
        json_t *t = json_object_get(ln, "t"), *m = json_object_get(ln, "m");
        json_t *p = json_object_get(ln, "p"), *name;
        size_t k;

        if (!json_is_object(ln))
            return xl_err_set(err, XL_EINVAL, "records[%zu].lines[%zu]: expected an object", i, j);
        if (!offset_of(json_object_get(ln, "o"), &l->offset) ||
            !offset_of(json_object_get(ln, "e"), &l->end) || l->end < l->offset)
            return xl_err_set(err, XL_EINVAL,
                              "records[%zu].lines[%zu]: expected offsets o <= e (integers >= 0)",
                              i, j);
        if (!json_is_string(t))
            return xl_err_set(err, XL_EINVAL, "records[%zu].lines[%zu].t: expected a string", i, j);
        l->text = json_string_value(t);
        l->len = json_string_length(t);
        l->part = l->parts = 0;
        if (p) {
            json_int_t a, b;
            if (!json_is_array(p) || json_array_size(p) != 2 ||
                !json_is_integer(json_array_get(p, 0)) || !json_is_integer(json_array_get(p, 1)))
                return xl_err_set(err, XL_EINVAL,
                                  "records[%zu].lines[%zu].p: expected [part, parts]", i, j);
            a = json_integer_value(json_array_get(p, 0));
            b = json_integer_value(json_array_get(p, 1));
            if (a < 1 || a > 1000000 || b < 0 || (b && a > b) || b > 1000000)
                return xl_err_set(err, XL_EINVAL,
                                  "records[%zu].lines[%zu].p: need 1 <= part <= parts (or parts 0)",
                                  i, j);
            l->part = (uint32_t)a;
            l->parts = (uint32_t)b;
        }
        l->matched = *mp;
        if (m) {
            if (!json_is_array(m))
                return xl_err_set(err, XL_EINVAL, "records[%zu].lines[%zu].m: expected an array",
                                  i, j);
            json_array_foreach(m, k, name) {
                if (!json_is_string(name))
                    return xl_err_set(err, XL_EINVAL,
                                      "records[%zu].lines[%zu].m[%zu]: expected a string", i, j, k);
                if (k)
                    *(*mp)++ = '\n';
                memcpy(*mp, json_string_value(name), json_string_length(name));
                *mp += json_string_length(name);
            }
        }
        *(*mp)++ = '\0';
        l->input = json_string_value(input);
        l->file = json_string_value(file);
        l->file_uid = uid;
        l->ts_ms = ts;
        out->nlogs++;
    }
    return XL_OK;
}

xl_rc xl_ingest_decode(const char *body, size_t len, const struct xl_ingest_limits *lim,
                       int64_t now_ms, struct xl_ingest_batch *out, struct xl_err *err)
{
    json_error_t jerr;
    json_t *root, *v, *records, *rec;
    struct xl_label *lab;
    size_t nrec, nlab = 0, nlines = 0, nlogrecs = 0, mbytes = 0, i;
    char *mp;
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
    v = json_object_get(root, "floor");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        rc = xl_err_set(err, XL_EPARSE, "floor: expected a non-negative integer");
        goto fail;
    }
    out->floor = v ? (uint64_t)json_integer_value(v) : 0;
    if (out->floor > out->seq) {
        rc = xl_err_set(err, XL_EPARSE,
                        "floor: %llu is above seq %llu (no seq below the floor may be sent)",
                        (unsigned long long)out->floor, (unsigned long long)out->seq);
        goto fail;
    }
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
    /* Size the storage first: one pass, no per-record allocation. */
    json_array_foreach(records, i, rec) {
        json_t *l = json_object_get(rec, "labels"), *lines = json_object_get(rec, "lines"), *ln;
        size_t j;
        if (json_is_object(l))
            nlab += json_object_size(l);
        if (!json_is_array(lines))
            continue;
        nlogrecs++;
        nlines += json_array_size(lines);
        json_array_foreach(lines, j, ln) {
            json_t *m = json_object_get(ln, "m"), *name;
            size_t k;
            mbytes++;
            json_array_foreach(m, k, name)
                mbytes += json_string_length(name) + 1;
        }
    }
    if (nrec - nlogrecs + nlines > lim->max_records) {
        rc = xl_err_set(err, XL_ETOOBIG, "records: %zu records and lines, the limit is %zu",
                        nrec - nlogrecs + nlines, lim->max_records);
        goto fail;
    }
    out->metrics = xl_calloc(nrec ? nrec : 1, sizeof(*out->metrics));
    out->labels = xl_calloc(nlab ? nlab : 1, sizeof(*out->labels));
    out->logs = xl_calloc(nlines ? nlines : 1, sizeof(*out->logs));
    out->matched = xl_malloc(mbytes ? mbytes : 1);
    if (!out->metrics || !out->labels || !out->logs || !out->matched) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    lab = out->labels;
    mp = out->matched;
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
        if (strcmp(t, "metric") == 0) {
            rc = decode_metric(rec, i, tsv, &out->metrics[out->nmetrics], &lab, err);
            if (rc != XL_OK)
                goto fail;
            out->nmetrics++;
        } else if (strcmp(t, "log") == 0) {
            if ((rc = decode_log(rec, i, tsv, out, &mp, err)) != XL_OK)
                goto fail;
        } else if (strcmp(t, "check") == 0) {
            if ((rc = decode_check(rec, i, tsv, out, err)) != XL_OK)
                goto fail;
        } else if (strcmp(t, "event") == 0) {
            if ((rc = decode_event(rec, i, tsv, out, err)) != XL_OK)
                goto fail;
        } else {
            rc = xl_err_set(err, XL_EINVAL,
                            "records[%zu].type: unknown record type '%.64s' (known: metric, log, "
                            "check, event)",
                            i, t);
            goto fail;
        }
    }
    return XL_OK;
fail:
    xl_ingest_batch_cleanup(out);
    return rc;
}
