/* xluo-server rules: loading and validating rule files (see rule.h).
 *
 * Two passes over a file. The common config loader (common/config.c)
 * fills raw structs from the key table: types, ranges, choices, unknown
 * and duplicate keys, all with file:line. Then the same YAML is loaded as
 * a node tree once more to learn which keys each rule has and on which
 * line, so that the checks across fields (a key the kind does not take, a
 * required key missing, a bad regex or selector) name the line too. */
#define _GNU_SOURCE /* memmem */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rule.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/check.h"

#define RE_PREFIX "re:"
#define RE_PREFIX_LEN 3
#define MATCH_LIMIT 1000000u
#define FILE_MAX (4u << 20)

#define MS_S 1000.0
#define MS_D (86400.0 * 1000.0)

/* A rule as the config loader fills it. */
struct raw_rule {
    char *name, *kind, *metric, *check, *event, *match, *pattern, *agg, *op, *severity;
    int64_t window, for_, keep_firing_for, consecutive;
    double threshold, recover_below, recover_above;
    struct xl_strlist by, states, where;
    struct xl_kvlist labels, annotations;
};

struct raw_file {
    struct xl_cfg_array rules;
};

/* Key indices: the order of xl_rule_keys. */
enum {
    K_NAME, K_KIND, K_METRIC, K_CHECK, K_EVENT, K_MATCH, K_PATTERN, K_AGG, K_WINDOW, K_BY, K_OP,
    K_THRESHOLD, K_RECOVER_BELOW, K_RECOVER_ABOVE, K_FOR, K_KEEP, K_SEVERITY, K_LABELS,
    K_ANNOT, K_STATES, K_CONSECUTIVE, K_WHERE, K_COUNT
};

#define OFF(f) offsetof(struct raw_rule, f)

const struct xl_cfg_key xl_rule_keys[] = {
    {"name", XL_CFG_STR, NULL, OFF(name), .desc = "rule name, unique across files (required)"},
    {"kind", XL_CFG_STR, NULL, OFF(kind), .choices = "metric|log|check|event|nodata|agent_down",
     .desc = "what the rule watches (required)"},
    {"metric", XL_CFG_STR, NULL, OFF(metric), .desc = "metric name (metric, nodata)"},
    {"check", XL_CFG_STR, NULL, OFF(check), .desc = "check name or glob (check, nodata)"},
    {"event", XL_CFG_STR, NULL, OFF(event), .desc = "event type (event)"},
    {"match", XL_CFG_STR, NULL, OFF(match), .desc = "label selector: {host=\"web1\", env!~\"dev|test\"}"},
    {"pattern", XL_CFG_STR, NULL, OFF(pattern), .desc = "KEYWORD or re:REGEX (log)"},
    {"agg", XL_CFG_STR, "avg", OFF(agg), .choices = "avg|min|max|last|rate|count|sum",
     .desc = "aggregation over window (metric)"},
    {"window", XL_CFG_DURATION, NULL, OFF(window), 1 * MS_S, 1 * MS_D,
     .desc = "time window (metric: 5m, log and event: 1m)"},
    {"by", XL_CFG_STRLIST, NULL, OFF(by), .desc = "group by these labels; default per series"},
    {"op", XL_CFG_STR, NULL, OFF(op), .choices = ">|>=|<|<=|==|!=",
     .desc = "comparison with threshold (metric; log and event: >=)"},
    {"threshold", XL_CFG_DOUBLE, NULL, OFF(threshold), .desc = "threshold (log, event: 1)"},
    {"recover_below", XL_CFG_DOUBLE, NULL, OFF(recover_below),
     .desc = "resolve only below this (op > or >=)"},
    {"recover_above", XL_CFG_DOUBLE, NULL, OFF(recover_above),
     .desc = "resolve only above this (op < or <=)"},
    {"for", XL_CFG_DURATION, NULL, OFF(for_), 0, 7 * MS_D,
     .desc = "the condition must hold this long to fire (nodata: 5m)"},
    {"keep_firing_for", XL_CFG_DURATION, NULL, OFF(keep_firing_for), 0, 1 * MS_D,
     .desc = "stay firing this long after the condition last held"},
    {"severity", XL_CFG_STR, "warning", OFF(severity), .choices = "critical|warning|info",
     .desc = "severity"},
    {"labels", XL_CFG_MAP, NULL, OFF(labels), .desc = "labels added to the alert"},
    {"annotations", XL_CFG_MAP, NULL, OFF(annotations),
     .desc = "templates: {{ $value }} {{ $labels.NAME }} {{ $name }}"},
    {"states", XL_CFG_STRLIST, NULL, OFF(states),
     .desc = "check states that count (check: [warning, critical])"},
    {"consecutive", XL_CFG_INT, "1", OFF(consecutive), 1, 1000,
     .desc = "results in a row in those states (check)"},
    {"where", XL_CFG_STRLIST, NULL, OFF(where), .desc = "conditions on event fields (event)"},
    {NULL},
};

static const struct xl_cfg_key file_keys[] = {
    {"rules", XL_CFG_LIST, NULL, offsetof(struct raw_file, rules), .sub = xl_rule_keys,
     .item_size = sizeof(struct raw_rule), .desc = "alerting rules"},
    {NULL},
};

#define B(k) (1u << (k))
#define COMMON (B(K_NAME) | B(K_KIND) | B(K_FOR) | B(K_KEEP) | B(K_SEVERITY) | B(K_LABELS) | \
                B(K_ANNOT))
#define COMPARE (B(K_OP) | B(K_THRESHOLD) | B(K_RECOVER_BELOW) | B(K_RECOVER_ABOVE))

/* Per kind: the keys it takes and those it needs. */
static const struct {
    const char *name;
    unsigned allowed, required;
} kinds[] = {
    [XL_RULE_METRIC] = {"metric",
                        COMMON | COMPARE | B(K_METRIC) | B(K_MATCH) | B(K_AGG) | B(K_WINDOW) |
                            B(K_BY),
                        B(K_METRIC) | B(K_OP) | B(K_THRESHOLD)},
    [XL_RULE_LOG] = {"log", COMMON | COMPARE | B(K_PATTERN) | B(K_MATCH) | B(K_WINDOW) | B(K_BY),
                     B(K_PATTERN)},
    [XL_RULE_CHECK] = {"check", COMMON | B(K_CHECK) | B(K_MATCH) | B(K_STATES) | B(K_CONSECUTIVE),
                       B(K_CHECK)},
    [XL_RULE_EVENT] = {"event",
                       COMMON | B(K_OP) | B(K_THRESHOLD) | B(K_EVENT) | B(K_MATCH) | B(K_WHERE) |
                           B(K_WINDOW) | B(K_BY),
                       B(K_EVENT)},
    [XL_RULE_NODATA] = {"nodata", COMMON | B(K_METRIC) | B(K_CHECK) | B(K_MATCH) | B(K_BY), 0},
    [XL_RULE_AGENT_DOWN] = {"agent_down", COMMON | B(K_MATCH), 0},
};

static const char *const op_names[] = {">", ">=", "<", "<=", "==", "!="};
static const char *const sev_names[] = {"critical", "warning", "info"};

/* Where each key of one rule is: 0 when the rule does not have it. */
struct lines {
    unsigned item;
    unsigned key[K_COUNT];
};

struct ctx {
    const char *file;
    size_t i; /* rule index in the file */
    const struct lines *ln;
    struct xl_err *err;
};

/* Set err to "file:line: rules[i].KEY: message"; key -1 names the rule. */
static xl_rc fail(const struct ctx *c, int key, xl_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static xl_rc fail(const struct ctx *c, int key, xl_rc rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    unsigned line = key >= 0 && c->ln->key[key] ? c->ln->key[key] : c->ln->item;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key >= 0)
        return xl_err_set(c->err, rc, "%s:%u: rules[%zu].%s: %s", c->file, line, c->i,
                          xl_rule_keys[key].name, msg);
    return xl_err_set(c->err, rc, "%s:%u: rules[%zu]: %s", c->file, line, c->i, msg);
}

static bool has(const struct ctx *c, int key)
{
    return c->ln->key[key] != 0;
}

static int str_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static bool rule_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > XL_RULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

/* The line of every key of every rule: the YAML loaded as nodes. */
static xl_rc collect_lines(const char *buf, size_t len, struct lines *ln, size_t n,
                           struct xl_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *seq = NULL;
    xl_rc rc = XL_OK;

    if (!yaml_parser_initialize(&parser))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = xl_err_set(err, XL_EPARSE, "invalid YAML"); /* the first pass parsed it */
        goto out_parser;
    }
    root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, "rules") == 0)
                seq = yaml_document_get_node(&doc, p->value);
        }
    }
    for (size_t i = 0; seq && seq->type == YAML_SEQUENCE_NODE && i < n &&
                       seq->data.sequence.items.start + i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *item = yaml_document_get_node(&doc, seq->data.sequence.items.start[i]);
        ln[i].item = (unsigned)item->start_mark.line + 1;
        if (item->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
             p < item->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            if (k->type != YAML_SCALAR_NODE)
                continue;
            for (int key = 0; key < K_COUNT; key++)
                if (strcmp((char *)k->data.scalar.value, xl_rule_keys[key].name) == 0)
                    ln[i].key[key] = (unsigned)k->start_mark.line + 1;
        }
    }
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    return rc;
}

static void rule_cleanup(struct xl_rule *r)
{
    xl_free(r->name);
    xl_free(r->file);
    xl_free(r->metric);
    xl_free(r->check);
    xl_free(r->event);
    xl_free(r->match_text);
    xl_selector_free(r->match);
    xl_free(r->pattern);
    pcre2_code_free(r->re);
    pcre2_match_data_free(r->re_md);
    for (size_t i = 0; i < r->by.n; i++)
        xl_free(r->by.v[i]);
    xl_free(r->by.v);
    for (size_t i = 0; r->annot_tmpl && i < r->annotations.n; i++)
        xl_tmpl_free(r->annot_tmpl[i]);
    xl_free(r->annot_tmpl);
    for (size_t i = 0; i < r->labels.n; i++) {
        xl_free(r->labels.k[i]);
        xl_free(r->labels.v[i]);
    }
    xl_free(r->labels.k);
    xl_free(r->labels.v);
    for (size_t i = 0; i < r->annotations.n; i++) {
        xl_free(r->annotations.k[i]);
        xl_free(r->annotations.v[i]);
    }
    xl_free(r->annotations.k);
    xl_free(r->annotations.v);
    for (size_t i = 0; i < r->nwhere; i++)
        xl_event_where_cleanup(&r->where[i]);
    xl_free(r->where);
    memset(r, 0, sizeof(*r));
}

/* Move a heap string out of the raw struct (the raw cleanup then skips it). */
static char *take(char **p)
{
    char *s = *p;

    *p = NULL;
    return s;
}

static xl_rc build_pattern(const struct ctx *c, struct xl_rule *r)
{
    int errcode;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[200];

    if (strncmp(r->pattern, RE_PREFIX, RE_PREFIX_LEN) != 0) {
        if (!*r->pattern)
            return fail(c, K_PATTERN, XL_EINVAL, "empty pattern");
        return XL_OK;
    }
    if (!r->pattern[RE_PREFIX_LEN])
        return fail(c, K_PATTERN, XL_EINVAL, "empty regex");
    r->re = pcre2_compile((PCRE2_SPTR)r->pattern + RE_PREFIX_LEN, PCRE2_ZERO_TERMINATED, 0,
                          &errcode, &erroff, NULL);
    if (!r->re) {
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return fail(c, K_PATTERN, XL_EINVAL, "%s: %s at offset %zu", r->pattern,
                    (const char *)msg, (size_t)erroff);
    }
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    if (!(r->re_md = pcre2_match_data_create(1, NULL)))
        return xl_err_set(c->err, XL_ENOMEM, "out of memory");
    return XL_OK;
}

static xl_rc build_lists(const struct ctx *c, struct xl_rule *r, struct raw_rule *raw)
{
    xl_rc rc;

    r->by = raw->by;
    memset(&raw->by, 0, sizeof(raw->by));
    if (r->by.n > XL_RULE_MAX_BY)
        return fail(c, K_BY, XL_ERANGE, "at most %d labels", XL_RULE_MAX_BY);
    for (size_t i = 0; i < r->by.n; i++) {
        if (!xl_label_name_valid(r->by.v[i]))
            return fail(c, K_BY, XL_EINVAL, "'%s' is not a label name", r->by.v[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->by.v[k], r->by.v[i]) == 0)
                return fail(c, K_BY, XL_EINVAL, "'%s' given twice", r->by.v[i]);
    }
    r->labels = raw->labels;
    memset(&raw->labels, 0, sizeof(raw->labels));
    if (r->labels.n > XL_RULE_MAX_LABELS)
        return fail(c, K_LABELS, XL_ERANGE, "at most %d labels", XL_RULE_MAX_LABELS);
    for (size_t i = 0; i < r->labels.n; i++) {
        if (!xl_label_name_valid(r->labels.k[i]) || strcmp(r->labels.k[i], "alertname") == 0)
            return fail(c, K_LABELS, XL_EINVAL, "'%s' is not a label name a rule may set",
                        r->labels.k[i]);
    }
    r->annotations = raw->annotations;
    memset(&raw->annotations, 0, sizeof(raw->annotations));
    if (r->annotations.n > XL_RULE_MAX_ANNOT)
        return fail(c, K_ANNOT, XL_ERANGE, "at most %d annotations", XL_RULE_MAX_ANNOT);
    if (r->annotations.n &&
        !(r->annot_tmpl = xl_calloc(r->annotations.n, sizeof(*r->annot_tmpl))))
        return xl_err_set(c->err, XL_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->annotations.n; i++) {
        struct xl_err e;
        if ((rc = xl_tmpl_parse(r->annotations.v[i], &r->annot_tmpl[i], &e)) != XL_OK)
            return fail(c, K_ANNOT, rc, "%s: %s", r->annotations.k[i], e.msg);
    }
    if (raw->where.n > XL_EVENT_WHERE_MAX)
        return fail(c, K_WHERE, XL_ERANGE, "at most %d conditions", XL_EVENT_WHERE_MAX);
    if (raw->where.n && !(r->where = xl_calloc(raw->where.n, sizeof(*r->where))))
        return xl_err_set(c->err, XL_ENOMEM, "out of memory");
    for (size_t i = 0; i < raw->where.n; i++) {
        struct xl_err e;
        if ((rc = xl_event_where_parse(raw->where.v[i], &r->where[i], &e)) != XL_OK)
            return fail(c, K_WHERE, rc, "[%zu] %s", i, e.msg);
        r->nwhere = i + 1;
    }
    return XL_OK;
}

static xl_rc build_compare(const struct ctx *c, struct xl_rule *r, const struct raw_rule *raw)
{
    bool below = has(c, K_RECOVER_BELOW), above = has(c, K_RECOVER_ABOVE);

    if (below && above)
        return fail(c, K_RECOVER_ABOVE, XL_EINVAL, "give recover_below or recover_above, not both");
    if (below) {
        if (r->op != XL_RULE_GT && r->op != XL_RULE_GE)
            return fail(c, K_RECOVER_BELOW, XL_EINVAL,
                        "needs op '>' or '>=' (recover_above goes with '<' and '<=')");
        if (raw->recover_below > r->threshold)
            return fail(c, K_RECOVER_BELOW, XL_EINVAL, "%g is above the threshold %g",
                        raw->recover_below, r->threshold);
        r->has_recover = true;
        r->recover = raw->recover_below;
    }
    if (above) {
        if (r->op != XL_RULE_LT && r->op != XL_RULE_LE)
            return fail(c, K_RECOVER_ABOVE, XL_EINVAL,
                        "needs op '<' or '<=' (recover_below goes with '>' and '>=')");
        if (raw->recover_above < r->threshold)
            return fail(c, K_RECOVER_ABOVE, XL_EINVAL, "%g is below the threshold %g",
                        raw->recover_above, r->threshold);
        r->has_recover = true;
        r->recover = raw->recover_above;
    }
    return XL_OK;
}

/* Turn raw rule c->i into r, checking what the table could not. */
static xl_rc build_rule(const struct ctx *c, struct raw_rule *raw, struct xl_rule *r)
{
    enum xl_rule_kind kind;
    xl_rc rc;
    int v;

    if (!has(c, K_NAME) || !raw->name)
        return fail(c, -1, XL_EINVAL, "name: required");
    if (!rule_name_valid(raw->name))
        return fail(c, K_NAME, XL_EINVAL,
                    "'%.140s' is not a rule name (1 to 128 of A-Z a-z 0-9 _ - . :)", raw->name);
    if (!has(c, K_KIND) || !raw->kind)
        return fail(c, -1, XL_EINVAL, "kind: required (metric, log, check, event, nodata or "
                                      "agent_down)");
    for (v = 0; strcmp(kinds[v].name, raw->kind) != 0; v++)
        ;
    kind = (enum xl_rule_kind)v;
    for (int k = 0; k < K_COUNT; k++) {
        if (has(c, k) && !(kinds[kind].allowed & B(k)))
            return fail(c, k, XL_EINVAL, "not taken by kind %s", kinds[kind].name);
        if (!has(c, k) && (kinds[kind].required & B(k)))
            return fail(c, -1, XL_EINVAL, "%s: required for kind %s", xl_rule_keys[k].name,
                        kinds[kind].name);
    }
    for (int k = 0; k < K_COUNT; k++) {
        /* `key: ~` or `key:` leaves a string NULL: say so rather than
         * fall back to the default silently. */
        if (has(c, k) && xl_rule_keys[k].type == XL_CFG_STR &&
            !*(char **)((char *)raw + xl_rule_keys[k].offset))
            return fail(c, k, XL_EINVAL, "needs a value");
    }
    if (kind == XL_RULE_NODATA && has(c, K_METRIC) == has(c, K_CHECK))
        return fail(c, -1, XL_EINVAL, "nodata: give one of metric or check");

    r->kind = kind;
    r->name = take(&raw->name);
    r->metric = take(&raw->metric);
    r->check = take(&raw->check);
    r->event = take(&raw->event);
    r->match_text = take(&raw->match);
    r->pattern = take(&raw->pattern);
    if (r->metric && !xl_metric_name_valid(r->metric))
        return fail(c, K_METRIC, XL_EINVAL, "'%.200s' is not a metric name", r->metric);
    if ((r->check && !*r->check) || (r->event && !*r->event))
        return fail(c, r->check ? K_CHECK : K_EVENT, XL_EINVAL, "empty name");
    if (r->match_text) {
        struct xl_err e;
        if ((rc = xl_selector_parse(r->match_text, &r->match, &e)) != XL_OK)
            return fail(c, K_MATCH, rc, "%s", e.msg);
    }
    if (r->pattern && (rc = build_pattern(c, r)) != XL_OK)
        return rc;

    /* Defaults that depend on the kind. */
    r->agg = XL_WAGG_COUNT;
    if (kind == XL_RULE_METRIC)
        (void)xl_wagg_parse(raw->agg, &r->agg);
    r->window_ms = has(c, K_WINDOW) ? raw->window : kind == XL_RULE_METRIC ? 300000 : 60000;
    r->op = XL_RULE_GE;
    r->threshold = 1;
    if (has(c, K_OP))
        r->op = (enum xl_rule_op)str_index(op_names, 6, raw->op);
    if (has(c, K_THRESHOLD))
        r->threshold = raw->threshold;
    if (kind == XL_RULE_METRIC || kind == XL_RULE_LOG) {
        if ((rc = build_compare(c, r, raw)) != XL_OK)
            return rc;
    }
    r->timing.for_ms = has(c, K_FOR) ? raw->for_ : kind == XL_RULE_NODATA ? 300000 : 0;
    r->timing.keep_firing_for_ms = raw->keep_firing_for;
    r->severity = (enum xl_rule_severity)str_index(sev_names, 3, raw->severity);
    r->consecutive = raw->consecutive;
    if (kind == XL_RULE_CHECK) {
        if (!has(c, K_STATES))
            r->states = XL_RULE_STATE_BIT(XL_CHECK_WARNING) | XL_RULE_STATE_BIT(XL_CHECK_CRITICAL);
        for (size_t i = 0; i < raw->states.n; i++) {
            enum xl_check_state st;
            if (!xl_check_state_parse(raw->states.v[i], &st))
                return fail(c, K_STATES, XL_EINVAL,
                            "'%.64s' is not a check state (ok, warning, critical, unknown)",
                            raw->states.v[i]);
            r->states |= XL_RULE_STATE_BIT(st);
        }
        if (!r->states)
            return fail(c, K_STATES, XL_EINVAL, "give at least one state");
    }
    return build_lists(c, r, raw);
}

static xl_rc dup_check(const struct xl_ruleset *set, const struct xl_rule *fresh, size_t n,
                       const struct xl_rule *r, size_t i, const struct lines *ln,
                       struct xl_err *err)
{
    const struct xl_rule *prev = NULL;

    for (size_t k = 0; k < set->n && !prev; k++)
        if (strcmp(set->rules[k].name, r->name) == 0)
            prev = &set->rules[k];
    for (size_t k = 0; k < n && !prev; k++)
        if (strcmp(fresh[k].name, r->name) == 0)
            prev = &fresh[k];
    if (!prev)
        return XL_OK;
    return xl_err_set(err, XL_EEXIST, "%s:%u: rules[%zu].name: '%s' is already defined at %s:%u",
                      r->file, ln->key[K_NAME], i, r->name, prev->file, prev->line);
}

xl_rc xl_rules_load_buf(const char *name, const char *buf, size_t len, struct xl_ruleset *set,
                        struct xl_err *err)
{
    struct raw_file raw;
    struct lines *ln = NULL;
    struct xl_rule *fresh = NULL, *grown;
    size_t n = 0, nraw;
    xl_rc rc;

    memset(&raw, 0, sizeof(raw));
    if ((rc = xl_cfg_load_buf(file_keys, &raw, name, buf, len, err)) != XL_OK)
        goto out;
    nraw = raw.rules.n;
    if (nraw == 0)
        goto out;
    if (set->n + nraw > XL_RULES_MAX) {
        rc = xl_err_set(err, XL_ERANGE, "%s: more than %d rules in all", name, XL_RULES_MAX);
        goto out;
    }
    if (!(ln = xl_calloc(nraw, sizeof(*ln))) || !(fresh = xl_calloc(nraw, sizeof(*fresh)))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = collect_lines(buf, len, ln, nraw, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < nraw; i++) {
        struct ctx c = {.file = name, .i = i, .ln = &ln[i], .err = err};
        struct xl_rule *r = &fresh[i];

        n = i + 1;
        r->line = ln[i].item;
        if (!(r->file = xl_strdup(name))) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = build_rule(&c, &((struct raw_rule *)raw.rules.items)[i], r)) != XL_OK)
            goto out;
        if ((rc = dup_check(set, fresh, i, r, i, &ln[i], err)) != XL_OK)
            goto out;
    }
    if (!(grown = xl_realloc(set->rules, (set->n + n) * sizeof(*grown)))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(grown + set->n, fresh, n * sizeof(*grown));
    set->rules = grown;
    set->n += n;
    n = 0; /* the set owns them now */
out:
    for (size_t i = 0; i < n; i++)
        rule_cleanup(&fresh[i]);
    xl_free(fresh);
    xl_free(ln);
    xl_cfg_cleanup(file_keys, &raw);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool rule_file_name(const char *n)
{
    size_t len = strlen(n);

    if (n[0] == '.')
        return false;
    return (len > 5 && strcmp(n + len - 5, ".yaml") == 0) ||
           (len > 4 && strcmp(n + len - 4, ".yml") == 0);
}

static xl_rc load_file(const char *path, struct xl_ruleset *set, struct xl_err *err)
{
    FILE *fp;
    struct xl_buf b;
    char chunk[8192];
    size_t got;
    xl_rc rc = XL_OK;

    if (!(fp = fopen(path, "rb")))
        return xl_err_sys(err, XL_ENOENT, errno, "%s: cannot open", path);
    xl_buf_init(&b, FILE_MAX);
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if ((rc = xl_buf_add(&b, chunk, got)) != XL_OK) {
            xl_err_set(err, rc, "%s: %s", path,
                       rc == XL_ETOOBIG ? "larger than 4 MiB" : "out of memory");
            goto out;
        }
    }
    if (ferror(fp)) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: read error", path);
        goto out;
    }
    rc = xl_rules_load_buf(path, b.data ? b.data : "", b.len, set, err);
out:
    xl_buf_cleanup(&b);
    fclose(fp);
    return rc;
}

xl_rc xl_rules_load_dir(const char *dir, struct xl_ruleset *set, struct xl_err *err)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    xl_rc rc = XL_OK;

    if (!(d = opendir(dir)))
        return xl_err_sys(err, XL_ENOENT, errno, "%s: cannot open directory", dir);
    while ((de = readdir(d))) {
        char *s;
        if (!rule_file_name(de->d_name))
            continue;
        if (xl_grow((void **)&names, &cap, n + 1, sizeof(*names)) < 0 ||
            !(s = xl_asprintf("%s/%s", dir, de->d_name))) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            goto out;
        }
        names[n++] = s;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && rc == XL_OK; i++)
        rc = load_file(names[i], set, err);
out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        xl_free(names[i]);
    xl_free(names);
    if (rc != XL_OK)
        xl_ruleset_free(set);
    return rc;
}

void xl_ruleset_free(struct xl_ruleset *set)
{
    for (size_t i = 0; i < set->n; i++)
        rule_cleanup(&set->rules[i]);
    xl_free(set->rules);
    set->rules = NULL;
    set->n = 0;
}

const struct xl_rule *xl_ruleset_find(const struct xl_ruleset *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->rules[i].name, name) == 0)
            return &set->rules[i];
    return NULL;
}

static bool compare(enum xl_rule_op op, double v, double t)
{
    switch (op) {
    case XL_RULE_GT: return v > t;
    case XL_RULE_GE: return v >= t;
    case XL_RULE_LT: return v < t;
    case XL_RULE_LE: return v <= t;
    case XL_RULE_EQ: return v == t;
    case XL_RULE_NE: return v != t;
    }
    return false;
}

void xl_rule_cond(const struct xl_rule *r, double value, bool *cond, bool *recovered)
{
    if (isnan(value)) {
        *cond = false;
        *recovered = true;
        return;
    }
    *cond = compare(r->op, value, r->threshold);
    if (!r->has_recover)
        *recovered = !*cond;
    else if (r->op == XL_RULE_GT || r->op == XL_RULE_GE)
        *recovered = value < r->recover;
    else
        *recovered = value > r->recover;
}

bool xl_rule_log_match(const struct xl_rule *r, const char *line, size_t len)
{
    int rc;

    if (!r->pattern)
        return true;
    if (!r->re)
        return memmem(line, len, r->pattern, strlen(r->pattern)) != NULL;
    rc = pcre2_match(r->re, (PCRE2_SPTR)line, len, 0, 0, r->re_md, NULL);
    return rc >= 0;
}

bool xl_rule_check_name_match(const struct xl_rule *r, const char *name)
{
    return r->check && fnmatch(r->check, name, 0) == 0;
}

const char *xl_rule_kind_str(enum xl_rule_kind k)
{
    return (unsigned)k < sizeof(kinds) / sizeof(*kinds) ? kinds[k].name : "?";
}

const char *xl_rule_op_str(enum xl_rule_op op)
{
    return (unsigned)op < 6 ? op_names[op] : "?";
}

const char *xl_rule_severity_str(enum xl_rule_severity s)
{
    return (unsigned)s < 3 ? sev_names[s] : "?";
}
