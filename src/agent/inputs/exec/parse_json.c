/* xluo-agent exec parsers: JSON records (see parse.h).
 *
 * The input is read as a sequence of JSON texts, each an object or an
 * array of objects, separated by any whitespace: one object (seed 003's
 * pretty-printed demo output), one array, JSON lines, or pretty-printed
 * objects one after another all read the same way. */
#include "parse_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

enum jkind { JREC_METRIC, JREC_CHECK, JREC_EVENT };

/* One checked record; strings point into the parsed roots. */
struct jrec {
    enum jkind kind;
    const char *name; /* metric name or event type */
    struct xl_label *labels;
    size_t nlabels;
    double value;
    struct xl_check_result check;
    json_t *fields; /* events: owned */
    int64_t ts;
};

struct jparse {
    json_t **roots;
    size_t nroots, caproots;
    struct jrec *recs;
    size_t nrecs, caprecs;
    struct xl_parse_arena arena;
};

/* Where a record is: the line its JSON text starts on and, for an array
 * element, its index. */
struct jplace {
    size_t line;
    long idx; /* -1: not in an array */
};

/* Fill err with "line L: [records[i].]field: msg". */
__attribute__((format(printf, 5, 6))) static xl_rc
ferr(struct xl_err *err, xl_rc rc, const struct jplace *w, const char *field, const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    if (!err)
        return rc;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->idx >= 0)
        return xl_err_set(err, rc, "line %zu: records[%ld]%s%s: %s", w->line, w->idx,
                          field ? "." : "", field ? field : "", msg);
    if (field)
        return xl_err_set(err, rc, "line %zu: %s: %s", w->line, field, msg);
    return xl_err_set(err, rc, "line %zu: %s", w->line, msg);
}

/* `ts`: absent or null gives def, else integer milliseconds since 1970. */
static xl_rc get_ts(json_t *o, const struct jplace *w, int64_t def, int64_t *out,
                    struct xl_err *err)
{
    json_t *v = json_object_get(o, "ts");

    *out = def;
    if (!v || json_is_null(v))
        return XL_OK;
    if (!json_is_integer(v))
        return ferr(err, XL_EPARSE, w, "ts", "expected an integer (milliseconds since 1970)");
    if (!xl_parse_ts_plausible(json_integer_value(v)))
        return ferr(err, XL_EPARSE, w, "ts", "%lld is not milliseconds since 1970 (seconds?)",
                    (long long)json_integer_value(v));
    *out = json_integer_value(v);
    return XL_OK;
}

/* Every key of o must be one of keys (NULL-terminated). */
static xl_rc known_keys(json_t *o, const char *const *keys, const char *what, const char *list,
                        const struct jplace *w, struct xl_err *err)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = strcmp(k, keys[i]) == 0;
        if (!ok) {
            char q[XL_PARSE_QUOTE_MAX + 8];
            xl_parse_quote(k, strlen(k), q, sizeof(q));
            return ferr(err, XL_EPARSE, w, NULL, "unknown key \"%s\" (a %s has %s)", q, what, list);
        }
    }
    return XL_OK;
}

/* An optional string field: absent or null gives "". */
static xl_rc opt_string(json_t *o, const char *key, const struct jplace *w, const char **out,
                        size_t *len, struct xl_err *err)
{
    json_t *v = json_object_get(o, key);

    *out = "";
    *len = 0;
    if (!v || json_is_null(v))
        return XL_OK;
    if (!json_is_string(v))
        return ferr(err, XL_EPARSE, w, key, "expected a string");
    *out = json_string_value(v);
    *len = json_string_length(v);
    return XL_OK;
}

static xl_rc metric_check(struct jparse *p, json_t *o, const struct jplace *w, struct jrec *r,
                          struct xl_err *err)
{
    static const char *const keys[] = {"type", "name", "value", "labels", "ts", NULL};
    json_t *name = json_object_get(o, "name"), *value = json_object_get(o, "value");
    json_t *labels = json_object_get(o, "labels"), *v;
    const char *k;
    xl_rc rc;

    if ((rc = known_keys(o, keys, "metric", "name, value, labels, ts", w, err)) != XL_OK)
        return rc;
    if (!json_is_string(name))
        return ferr(err, XL_EPARSE, w, "name", "required (a string)");
    if (!xl_metric_name_valid(json_string_value(name)) ||
        strlen(json_string_value(name)) != json_string_length(name)) {
        char q[XL_PARSE_QUOTE_MAX + 8];
        xl_parse_quote(json_string_value(name), json_string_length(name), q, sizeof(q));
        return ferr(err, XL_EPARSE, w, "name",
                    "\"%s\" is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", q);
    }
    if (!value)
        return ferr(err, XL_EPARSE, w, "value", "required (a number)");
    if (!xl_json_number(value, &r->value))
        return ferr(err, XL_EPARSE, w, "value",
                    "expected a number (or \"NaN\", \"+Inf\", \"-Inf\")");
    r->kind = JREC_METRIC;
    r->name = json_string_value(name);
    if (labels && !json_is_null(labels)) {
        size_t i = 0;

        if (!json_is_object(labels))
            return ferr(err, XL_EPARSE, w, "labels", "expected an object of strings");
        if (json_object_size(labels) > XL_PARSE_MAX_LABELS)
            return ferr(err, XL_EPARSE, w, "labels", "more than %d labels", XL_PARSE_MAX_LABELS);
        r->labels = xl_parse_arena_alloc(&p->arena, json_object_size(labels) * sizeof(*r->labels));
        if (!r->labels)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        json_object_foreach(labels, k, v)
        {
            char q[XL_PARSE_QUOTE_MAX + 8], field[XL_PARSE_QUOTE_MAX + 16];

            xl_parse_quote(k, strlen(k), q, sizeof(q));
            snprintf(field, sizeof(field), "labels.%s", q);
            if (!xl_label_name_valid(k))
                return ferr(err, XL_EPARSE, w, field,
                            "not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
            if (!json_is_string(v))
                return ferr(err, XL_EPARSE, w, field, "expected a string");
            r->labels[i].name = k;
            r->labels[i].value = json_string_value(v);
            i++;
        }
        r->nlabels = i;
    }
    return XL_OK;
}

static xl_rc check_check(json_t *o, const struct jplace *w, struct jrec *r, struct xl_err *err)
{
    static const char *const keys[] = {"type",        "name", "state", "output",
                                       "long_output", "ts",   NULL};
    json_t *name = json_object_get(o, "name"), *state = json_object_get(o, "state");
    size_t olen, llen;
    xl_rc rc;

    if ((rc = known_keys(o, keys, "check", "name, state, output, long_output, ts", w, err)) !=
        XL_OK)
        return rc;
    if (!json_is_string(name))
        return ferr(err, XL_EPARSE, w, "name", "required (a string)");
    if (!xl_check_name_valid(json_string_value(name), json_string_length(name)))
        return ferr(err, XL_EPARSE, w, "name", "expected 1 to %d bytes without control characters",
                    XL_CHECK_NAME_MAX);
    if (!json_is_string(state))
        return ferr(err, XL_EPARSE, w, "state",
                    "required (\"ok\", \"warning\", \"critical\" or \"unknown\")");
    if (!xl_check_state_parse(json_string_value(state), &r->check.state)) {
        char q[XL_PARSE_QUOTE_MAX + 8];
        xl_parse_quote(json_string_value(state), json_string_length(state), q, sizeof(q));
        return ferr(err, XL_EPARSE, w, "state",
                    "\"%s\" is not \"ok\", \"warning\", \"critical\" or \"unknown\"", q);
    }
    if ((rc = opt_string(o, "output", w, &r->check.output, &olen, err)) != XL_OK ||
        (rc = opt_string(o, "long_output", w, &r->check.long_output, &llen, err)) != XL_OK)
        return rc;
    if (olen + llen > XL_CHECK_OUTPUT_MAX)
        return ferr(err, XL_EPARSE, w, "output",
                    "output and long_output hold %zu bytes, more than %u", olen + llen,
                    XL_CHECK_OUTPUT_MAX);
    r->kind = JREC_CHECK;
    r->check.name = json_string_value(name);
    return XL_OK;
}

/* json_dump_callback: count bytes, give up past the limit. */
static int count_bytes(const char *buf, size_t n, void *ctx)
{
    size_t *left = ctx;

    if (n > *left)
        return -1;
    *left -= n;
    return 0;
}

static xl_rc event_check(json_t *o, const char *type, const struct jplace *w,
                         const struct xl_parse_limits *lim, struct jrec *r, struct xl_err *err)
{
    json_t *fields = json_object(), *v;
    const char *k;

    if (!fields)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "type") == 0 || strcmp(k, "ts") == 0)
            continue;
        if (json_object_set(fields, k, v) != 0) {
            json_decref(fields);
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        }
    }
    if (lim && lim->max_event_bytes) {
        size_t left = lim->max_event_bytes;
        if (json_dump_callback(fields, count_bytes, &left, JSON_COMPACT) != 0) {
            json_decref(fields);
            return ferr(err, XL_ETOOBIG, w, NULL,
                        "event fields take more than %zu bytes as compact JSON",
                        lim->max_event_bytes);
        }
    }
    r->kind = JREC_EVENT;
    r->name = type;
    r->fields = fields;
    return XL_OK;
}

/* Check one record and append it to p->recs. */
static xl_rc rec_check(struct jparse *p, json_t *o, const struct jplace *w, int64_t ts,
                       const struct xl_parse_limits *lim, struct xl_err *err)
{
    json_t *type = json_object_get(o, "type");
    struct jrec r = {0};
    const char *t;
    xl_rc rc;

    if (!json_is_object(o))
        return ferr(err, XL_EPARSE, w, NULL, "expected an object");
    if (xl_parse_too_many(lim, p->nrecs, err))
        return ferr(err, XL_ETOOBIG, w, NULL, "more than %zu records", lim->max_records);
    if (!type)
        return ferr(err, XL_EPARSE, w, "type", "required (a string)");
    if (!json_is_string(type))
        return ferr(err, XL_EPARSE, w, "type", "expected a string");
    t = json_string_value(type);
    if ((rc = get_ts(o, w, ts, &r.ts, err)) != XL_OK)
        return rc;
    if (strcmp(t, "metric") == 0) {
        rc = metric_check(p, o, w, &r, err);
    } else if (strcmp(t, "check") == 0) {
        rc = check_check(o, w, &r, err);
        r.check.ts_ms = r.ts;
    } else if (xl_event_type_valid(t) && strlen(t) == json_string_length(type)) {
        rc = event_check(o, t, w, lim, &r, err);
    } else {
        char q[XL_PARSE_QUOTE_MAX + 8];
        xl_parse_quote(t, json_string_length(type), q, sizeof(q));
        if (xl_event_type_reserved(t))
            return ferr(err, XL_EPARSE, w, "type", "\"%s\" is reserved", q);
        return ferr(err, XL_EPARSE, w, "type",
                    "\"%s\" is not an event type (1 to %d of A-Za-z0-9_.:-)", q, XL_EVENT_TYPE_MAX);
    }
    if (rc != XL_OK)
        return rc;
    if (xl_grow((void **)&p->recs, &p->caprecs, p->nrecs + 1, sizeof(*p->recs)) != 0) {
        json_decref(r.fields);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    p->recs[p->nrecs++] = r;
    return XL_OK;
}

/* Read every JSON text of s and check its records into p. */
static xl_rc json_check(struct jparse *p, const char *s, size_t len, int64_t ts,
                        const struct xl_parse_limits *lim, struct xl_err *err)
{
    size_t off = 0, line = 1;
    xl_rc rc;

    for (;;) {
        json_error_t je;
        json_t *v;
        struct jplace w;

        while (off < len && xl_parse_space(s[off])) {
            if (s[off] == '\n')
                line++;
            off++;
        }
        if (off == len)
            return XL_OK;
        v = json_loadb(s + off, len - off, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
        if (!v) {
            size_t eline, ebyte, at = off + (je.position > 0 ? (size_t)je.position - 1 : 0);

            if (json_error_code(&je) == json_error_out_of_memory)
                return xl_err_set(err, XL_ENOMEM, "out of memory");
            xl_parse_where(s, len, at, &eline, &ebyte);
            return xl_err_set(err, XL_EPARSE, "line %zu, byte %zu: %s", eline, ebyte, je.text);
        }
        if (xl_grow((void **)&p->roots, &p->caproots, p->nroots + 1, sizeof(*p->roots)) != 0) {
            json_decref(v);
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        }
        p->roots[p->nroots++] = v;
        w.line = line;
        w.idx = -1;
        if (json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v); i++) {
                w.idx = (long)i;
                if ((rc = rec_check(p, json_array_get(v, i), &w, ts, lim, err)) != XL_OK)
                    return rc;
            }
        } else if ((rc = rec_check(p, v, &w, ts, lim, err)) != XL_OK) {
            return rc;
        }
        for (size_t end = off + (size_t)je.position; off < end; off++)
            if (s[off] == '\n')
                line++;
    }
}

/* Check every record (the parsed texts and event fields kept), then hand
 * them to the sink (parse.h). */
xl_rc xl_parse_json_records(const char *s, size_t len, int64_t ts,
                            const struct xl_parse_limits *lim, const struct xl_rec_sink *sink,
                            struct xl_err *err)
{
    struct jparse p = {0};
    xl_rc rc;

    if ((rc = json_check(&p, s, len, ts, lim, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < p.nrecs; i++) {
        const struct jrec *r = &p.recs[i];

        if (r->kind == JREC_METRIC && sink->metric)
            sink->metric(sink->ctx, r->name, r->labels, r->nlabels, r->value, r->ts);
        else if (r->kind == JREC_CHECK && sink->check)
            sink->check(sink->ctx, &r->check);
        else if (r->kind == JREC_EVENT && sink->event)
            sink->event(sink->ctx, r->name, r->fields, r->ts);
    }
out:
    for (size_t i = 0; i < p.nrecs; i++)
        json_decref(p.recs[i].fields);
    for (size_t i = 0; i < p.nroots; i++)
        json_decref(p.roots[i]);
    xl_free(p.recs);
    xl_free(p.roots);
    xl_parse_arena_cleanup(&p.arena);
    return rc;
}
