/* xluo: YAML configuration driven by key tables. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "alloc.h"
#include "daemon.h"
#include "units.h"

#define FIELD(base, key) ((char *)(base) + (key)->offset)

struct loader {
    yaml_document_t *doc;
    const char *name;
    struct xl_err *err;
};

static void free_strlist(struct xl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        xl_free(l->v[i]);
    xl_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void free_kvlist(struct xl_kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        xl_free(l->k[i]);
        xl_free(l->v[i]);
    }
    xl_free(l->k);
    xl_free(l->v);
    l->k = l->v = NULL;
    l->n = 0;
}

static void free_array(const struct xl_cfg_key *key, struct xl_cfg_array *a)
{
    for (size_t i = 0; i < a->n; i++)
        xl_cfg_cleanup(key->sub, (char *)a->items + i * key->item_size);
    xl_free(a->items);
    a->items = NULL;
    a->n = 0;
}

void xl_cfg_cleanup(const struct xl_cfg_key *table, void *base)
{
    for (const struct xl_cfg_key *k = table; k->name; k++) {
        void *f = FIELD(base, k);
        switch (k->type) {
        case XL_CFG_STR:
            xl_free(*(char **)f);
            *(char **)f = NULL;
            break;
        case XL_CFG_STRLIST:
            free_strlist(f);
            break;
        case XL_CFG_MAP:
            free_kvlist(f);
            break;
        case XL_CFG_SECTION:
            xl_cfg_cleanup(k->sub, f);
            break;
        case XL_CFG_LIST:
            free_array(k, f);
            break;
        default:
            break;
        }
    }
}

static bool is_null_scalar(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

static const char *type_hint(const struct xl_cfg_key *k)
{
    switch (k->type) {
    case XL_CFG_STR: return "a string";
    case XL_CFG_INT: return "an integer";
    case XL_CFG_DOUBLE: return "a number";
    case XL_CFG_BOOL: return "true or false";
    case XL_CFG_DURATION: return "a duration like 500ms, 10s, 5m, 1h";
    case XL_CFG_SIZE: return "a size like 512, 64KiB, 1GiB";
    case XL_CFG_STRLIST: return "a list of strings";
    case XL_CFG_MAP: return "a mapping of names to strings";
    case XL_CFG_SECTION: return "a mapping";
    case XL_CFG_LIST: return "a list of mappings";
    }
    return "?";
}

static void fmt_limit(const struct xl_cfg_key *k, double v, char *out, size_t outlen)
{
    if (k->type == XL_CFG_DURATION)
        xl_duration_fmt((int64_t)v, out, outlen);
    else if (k->type == XL_CFG_SIZE)
        xl_size_fmt((int64_t)v, out, outlen);
    else
        snprintf(out, outlen, "%g", v);
}

static xl_rc check_range(const struct xl_cfg_key *k, double v, const char *text,
                         struct xl_err *err)
{
    char lo[32], hi[32];

    if ((k->min != 0 || k->max != 0) && (v < k->min || v > k->max)) {
        fmt_limit(k, k->min, lo, sizeof(lo));
        fmt_limit(k, k->max, hi, sizeof(hi));
        return xl_err_set(err, XL_ERANGE, "'%s' is out of range (allowed %s to %s)", text, lo, hi);
    }
    return XL_OK;
}

static bool in_choices(const char *choices, const char *s)
{
    size_t n = strlen(s);
    const char *p = choices;

    while (p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* Store scalar text s into field f according to k. Message without place. */
static xl_rc set_scalar(const struct xl_cfg_key *k, void *f, const char *s,
                        struct xl_err *err)
{
    char *end;
    int64_t i64;
    double d;
    xl_rc rc;

    switch (k->type) {
    case XL_CFG_STR: {
        char *dup;
        if (k->choices && !in_choices(k->choices, s))
            return xl_err_set(err, XL_EINVAL, "'%s' is not one of %s", s, k->choices);
        if (!(dup = xl_strdup(s)))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        xl_free(*(char **)f);
        *(char **)f = dup;
        return XL_OK;
    }
    case XL_CFG_INT:
        errno = 0;
        i64 = strtoll(s, &end, 10);
        if (!*s || *end || errno)
            return xl_err_set(err, XL_EINVAL, "expected %s, got '%s'", type_hint(k), s);
        if ((rc = check_range(k, (double)i64, s, err)) != XL_OK)
            return rc;
        *(int64_t *)f = i64;
        return XL_OK;
    case XL_CFG_DOUBLE:
        errno = 0;
        d = strtod(s, &end);
        if (!*s || *end || errno || !isfinite(d))
            return xl_err_set(err, XL_EINVAL, "expected %s, got '%s'", type_hint(k), s);
        if ((rc = check_range(k, d, s, err)) != XL_OK)
            return rc;
        *(double *)f = d;
        return XL_OK;
    case XL_CFG_BOOL:
        if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
            *(bool *)f = true;
        else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
            *(bool *)f = false;
        else
            return xl_err_set(err, XL_EINVAL, "expected %s, got '%s'", type_hint(k), s);
        return XL_OK;
    case XL_CFG_DURATION:
    case XL_CFG_SIZE:
        rc = k->type == XL_CFG_DURATION ? xl_duration_parse(s, &i64)
                                        : xl_size_parse(s, &i64);
        if (rc != XL_OK)
            return xl_err_set(err, XL_EINVAL, "expected %s, got '%s'", type_hint(k), s);
        if ((rc = check_range(k, (double)i64, s, err)) != XL_OK)
            return rc;
        *(int64_t *)f = i64;
        return XL_OK;
    default:
        return xl_err_set(err, XL_EINVAL, "expected %s, got a scalar '%s'", type_hint(k), s);
    }
}

static xl_rc strlist_push(struct xl_strlist *l, const char *s, struct xl_err *err)
{
    char **v;
    char *dup = xl_strdup(s);

    if (!dup || !(v = xl_realloc(l->v, (l->n + 1) * sizeof(*v)))) {
        xl_free(dup);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    v[l->n++] = dup;
    l->v = v;
    return XL_OK;
}

xl_rc xl_kvlist_add(struct xl_kvlist *l, const char *k, const char *v)
{
    char **nk, **nv;
    char *dk = xl_strdup(k), *dv = xl_strdup(v);

    if (!dk || !dv)
        goto oom;
    if (!(nk = xl_realloc(l->k, (l->n + 1) * sizeof(*nk))))
        goto oom;
    l->k = nk;
    if (!(nv = xl_realloc(l->v, (l->n + 1) * sizeof(*nv))))
        goto oom;
    l->v = nv;
    l->k[l->n] = dk;
    l->v[l->n] = dv;
    l->n++;
    return XL_OK;
oom:
    xl_free(dk);
    xl_free(dv);
    return XL_ENOMEM;
}

static xl_rc kvlist_push(struct xl_kvlist *l, const char *k, const char *v,
                         struct xl_err *err)
{
    if (xl_kvlist_add(l, k, v) != XL_OK)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    return XL_OK;
}

static xl_rc load_mapping(struct loader *ld, const struct xl_cfg_key *table, void *base,
                          yaml_node_t *node, const char *path);

static xl_rc errat(struct loader *ld, yaml_node_t *node, xl_rc rc)
{
    xl_err_prefix(ld->err, "%s:%lu: ", ld->name, (unsigned long)node->start_mark.line + 1);
    return rc;
}

static const char *scalar(yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static xl_rc load_value(struct loader *ld, const struct xl_cfg_key *k, void *base,
                        yaml_node_t *v, const char *path)
{
    void *f = FIELD(base, k);
    xl_rc rc;

    switch (k->type) {
    case XL_CFG_SECTION:
        if (v->type == YAML_SCALAR_NODE && is_null_scalar(scalar(v)))
            return XL_OK;
        if (v->type != YAML_MAPPING_NODE)
            break;
        return load_mapping(ld, k->sub, f, v, path);
    case XL_CFG_STRLIST: {
        struct xl_strlist *l = f;
        free_strlist(l);
        if (v->type == YAML_SCALAR_NODE)
            return is_null_scalar(scalar(v)) ? XL_OK : strlist_push(l, scalar(v), ld->err);
        if (v->type != YAML_SEQUENCE_NODE)
            break;
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(ld->doc, *it);
            if (e->type != YAML_SCALAR_NODE) {
                xl_err_set(ld->err, XL_EINVAL, "%s: list items must be strings", path);
                return errat(ld, e, XL_EINVAL);
            }
            if ((rc = strlist_push(l, scalar(e), ld->err)) != XL_OK)
                return rc;
        }
        goto checked;
    }
    case XL_CFG_MAP: {
        struct xl_kvlist *l = f;
        free_kvlist(l);
        if (v->type == YAML_SCALAR_NODE && is_null_scalar(scalar(v)))
            return XL_OK;
        if (v->type != YAML_MAPPING_NODE)
            break;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
             p < v->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
            if (kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE) {
                xl_err_set(ld->err, XL_EINVAL, "%s: values must be strings", path);
                return errat(ld, kn, XL_EINVAL);
            }
            for (size_t i = 0; i < l->n; i++) {
                if (strcmp(l->k[i], scalar(kn)) == 0) {
                    xl_err_set(ld->err, XL_EINVAL, "%s: duplicate key '%s'", path, scalar(kn));
                    return errat(ld, kn, XL_EINVAL);
                }
            }
            if ((rc = kvlist_push(l, scalar(kn), scalar(vn), ld->err)) != XL_OK)
                return rc;
        }
        goto checked;
    }
    case XL_CFG_LIST: {
        struct xl_cfg_array *a = f;
        size_t n;
        free_array(k, a);
        if (v->type == YAML_SCALAR_NODE && is_null_scalar(scalar(v)))
            return XL_OK;
        if (v->type != YAML_SEQUENCE_NODE)
            break;
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (!(a->items = xl_calloc(n ? n : 1, k->item_size)))
            return xl_err_set(ld->err, XL_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *e = yaml_document_get_node(ld->doc, v->data.sequence.items.start[i]);
            void *item = (char *)a->items + i * k->item_size;
            char ipath[300];
            a->n = i + 1;
            if ((rc = xl_cfg_defaults(k->sub, item, ld->err)) != XL_OK)
                return rc;
            snprintf(ipath, sizeof(ipath), "%.256s[%zu]", path, i);
            if (e->type != YAML_MAPPING_NODE) {
                xl_err_set(ld->err, XL_EINVAL, "%s: expected a mapping", ipath);
                return errat(ld, e, XL_EINVAL);
            }
            if ((rc = load_mapping(ld, k->sub, item, e, ipath)) != XL_OK)
                return rc;
        }
        goto checked;
    }
    default:
        if (v->type != YAML_SCALAR_NODE)
            break;
        if (is_null_scalar(scalar(v)) && k->type == XL_CFG_STR) {
            xl_free(*(char **)f);
            *(char **)f = NULL;
            return XL_OK;
        }
        if ((rc = set_scalar(k, f, scalar(v), ld->err)) != XL_OK) {
            xl_err_prefix(ld->err, "%s: ", path);
            return errat(ld, v, rc);
        }
        goto checked;
    }
    xl_err_set(ld->err, XL_EINVAL, "%s: expected %s", path, type_hint(k));
    return errat(ld, v, XL_EINVAL);
checked:
    if (k->check && (rc = k->check(f, ld->err)) != XL_OK) {
        xl_err_prefix(ld->err, "%s: ", path);
        return errat(ld, v, rc);
    }
    return XL_OK;
}

static xl_rc load_mapping(struct loader *ld, const struct xl_cfg_key *table, void *base,
                          yaml_node_t *node, const char *path)
{
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        const struct xl_cfg_key *k;
        char kpath[256];
        xl_rc rc;

        if (kn->type != YAML_SCALAR_NODE) {
            xl_err_set(ld->err, XL_EINVAL, "keys must be plain names");
            return errat(ld, kn, XL_EINVAL);
        }
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(ld->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE && strcmp(scalar(prev), scalar(kn)) == 0) {
                xl_err_set(ld->err, XL_EINVAL, "duplicate key '%s'", scalar(kn));
                return errat(ld, kn, XL_EINVAL);
            }
        }
        snprintf(kpath, sizeof(kpath), "%s%s%s", path, *path ? "." : "", scalar(kn));
        for (k = table; k->name; k++)
            if (strcmp(k->name, scalar(kn)) == 0)
                break;
        if (!k->name) {
            char known[256];
            size_t n = 0;
            known[0] = '\0';
            for (const struct xl_cfg_key *q = table; q->name && n < sizeof(known); q++) {
                int w = snprintf(known + n, sizeof(known) - n, "%s%s", n ? ", " : "", q->name);
                if (w > 0)
                    n += (size_t)w;
            }
            xl_err_set(ld->err, XL_EINVAL, "unknown key '%s' (known here: %s)", kpath, known);
            return errat(ld, kn, XL_EINVAL);
        }
        if ((rc = load_value(ld, k, base, vn, kpath)) != XL_OK)
            return rc;
    }
    return XL_OK;
}

xl_rc xl_cfg_defaults(const struct xl_cfg_key *table, void *base, struct xl_err *err)
{
    xl_rc rc;

    for (const struct xl_cfg_key *k = table; k->name; k++) {
        void *f = FIELD(base, k);
        switch (k->type) {
        case XL_CFG_SECTION:
            if ((rc = xl_cfg_defaults(k->sub, f, err)) != XL_OK)
                return rc;
            break;
        case XL_CFG_STRLIST:
            memset(f, 0, sizeof(struct xl_strlist));
            if (k->def) {
                /* A default list is written "a,b". */
                char *copy = xl_strdup(k->def), *save = NULL;
                if (!copy)
                    return xl_err_set(err, XL_ENOMEM, "out of memory");
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                    if ((rc = strlist_push(f, t, err)) != XL_OK) {
                        xl_free(copy);
                        return rc;
                    }
                }
                xl_free(copy);
            }
            break;
        case XL_CFG_MAP:
            memset(f, 0, sizeof(struct xl_kvlist));
            break;
        case XL_CFG_LIST:
            memset(f, 0, sizeof(struct xl_cfg_array));
            break;
        case XL_CFG_STR:
            *(char **)f = NULL;
            /* fall through */
        default:
            if (k->type == XL_CFG_INT || k->type == XL_CFG_DURATION || k->type == XL_CFG_SIZE)
                *(int64_t *)f = 0;
            else if (k->type == XL_CFG_DOUBLE)
                *(double *)f = 0;
            else if (k->type == XL_CFG_BOOL)
                *(bool *)f = false;
            if (k->def && (rc = set_scalar(k, f, k->def, err)) != XL_OK) {
                xl_err_prefix(err, "built-in default of %s: ", k->name);
                return rc;
            }
        }
    }
    return XL_OK;
}

xl_rc xl_cfg_load_buf(const struct xl_cfg_key *table, void *base, const char *name,
                      const char *buf, size_t len, struct xl_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct loader ld = {.doc = &doc, .name = name, .err = err};
    xl_rc rc;

    if ((rc = xl_cfg_defaults(table, base, err)) != XL_OK)
        return rc;
    if (!yaml_parser_initialize(&parser))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = xl_err_set(err, XL_EPARSE, "%s:%lu:%lu: %s%s%s", name,
                        (unsigned long)parser.problem_mark.line + 1,
                        (unsigned long)parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "invalid YAML",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        goto out_parser;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root || (root->type == YAML_SCALAR_NODE && is_null_scalar(scalar(root))))
        rc = XL_OK; /* an empty file means every default */
    else if (root->type != YAML_MAPPING_NODE)
        rc = errat(&ld, root, xl_err_set(err, XL_EINVAL, "the top level must be a mapping of keys"));
    else
        rc = load_mapping(&ld, table, base, root, "");
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    return rc;
}

xl_rc xl_cfg_load_file(const struct xl_cfg_key *table, void *base, const char *path,
                       struct xl_err *err)
{
    FILE *fp;
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    xl_rc rc;

    if (!(fp = fopen(path, "rb")))
        return xl_err_sys(err, XL_ENOENT, errno, "%s: cannot open", path);
    for (;;) {
        if (len + 4096 > cap && xl_grow((void **)&data, &cap, len + 4096, 1) < 0) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            goto out;
        }
        n = fread(data + len, 1, cap - len, fp);
        len += n;
        if (n == 0)
            break;
        if (len > (16u << 20)) {
            rc = xl_err_set(err, XL_ETOOBIG, "%s: larger than 16 MiB", path);
            goto out;
        }
    }
    if (ferror(fp)) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: read error", path);
        goto out;
    }
    rc = xl_cfg_load_buf(table, base, path, data ? data : "", len, err);
out:
    xl_free(data);
    fclose(fp);
    return rc;
}

xl_rc xl_cfg_load(const struct xl_cfg_key *table, void *base, const char *path,
                  struct xl_err *err)
{
    return path ? xl_cfg_load_file(table, base, path, err) : xl_cfg_defaults(table, base, err);
}

xl_rc xl_cfg_paths_resolve(struct xl_cfg_paths *p, const char *prefix, const char *data_dir,
                           struct xl_err *err)
{
    const char *pre = prefix ? prefix : ".";

    xl_cfg_paths_cleanup(p);
    p->prefix = xl_strdup(pre);
    p->data_path = xl_path_join(pre, data_dir);
    if (!p->prefix || !p->data_path) {
        xl_cfg_paths_cleanup(p);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    return XL_OK;
}

void xl_cfg_paths_cleanup(struct xl_cfg_paths *p)
{
    xl_free(p->prefix);
    xl_free(p->data_path);
    p->prefix = p->data_path = NULL;
}

void xl_cfg_doc(const struct xl_cfg_key *table, FILE *out, int indent)
{
    for (const struct xl_cfg_key *k = table; k->name; k++) {
        fprintf(out, "%*s# %s", indent, "", k->desc ? k->desc : "");
        if (k->choices)
            fprintf(out, " (one of %s)", k->choices);
        if (k->min != 0 || k->max != 0) {
            char lo[32], hi[32];

            fmt_limit(k, k->min, lo, sizeof(lo));
            fmt_limit(k, k->max, hi, sizeof(hi));
            fprintf(out, " (%s to %s)", lo, hi);
        }
        fputc('\n', out);
        switch (k->type) {
        case XL_CFG_SECTION:
            fprintf(out, "%*s%s:\n", indent, "", k->name);
            xl_cfg_doc(k->sub, out, indent + 2);
            break;
        case XL_CFG_LIST:
            fprintf(out, "%*s%s:            # a list; each item has:\n", indent, "", k->name);
            fprintf(out, "%*s  -\n", indent, "");
            xl_cfg_doc(k->sub, out, indent + 4);
            break;
        case XL_CFG_STRLIST:
            fprintf(out, "%*s%s: [%s]\n", indent, "", k->name, k->def ? k->def : "");
            break;
        case XL_CFG_MAP:
            fprintf(out, "%*s%s: {}\n", indent, "", k->name);
            break;
        default:
            fprintf(out, "%*s%s: %s\n", indent, "", k->name, k->def ? k->def : "");
        }
    }
}

xl_rc xl_hostport_split(const char *s, char *host, size_t hostlen, uint16_t *port,
                        struct xl_err *err)
{
    const char *colon, *h = s, *hend;
    char *end;
    long p;

    if (*s == '[') {
        if (!(hend = strchr(s, ']')) || hend[1] != ':')
            return xl_err_set(err, XL_EINVAL, "expected [ipv6]:port, got '%s'", s);
        h = s + 1;
        colon = hend + 1;
    } else {
        if (!(colon = strrchr(s, ':')))
            return xl_err_set(err, XL_EINVAL, "expected host:port, got '%s'", s);
        hend = colon;
    }
    if ((size_t)(hend - h) >= hostlen)
        return xl_err_set(err, XL_EINVAL, "host too long in '%s'", s);
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535)
        return xl_err_set(err, XL_EINVAL, "port must be 0 to 65535 in '%s'", s);
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    *port = (uint16_t)p;
    return XL_OK;
}

xl_rc xl_cfg_check_hostport(const void *field, struct xl_err *err)
{
    const char *s = *(char *const *)field;
    char host[256];
    uint16_t port;

    if (!s)
        return xl_err_set(err, XL_EINVAL, "an address host:port is required");
    return xl_hostport_split(s, host, sizeof(host), &port, err);
}

xl_rc xl_cfg_check_urls(const void *field, struct xl_err *err)
{
    const struct xl_strlist *l = field;

    for (size_t i = 0; i < l->n; i++) {
        if (strncmp(l->v[i], "http://", 7) && strncmp(l->v[i], "https://", 8))
            return xl_err_set(err, XL_EINVAL, "'%s' must start with http:// or https://",
                              l->v[i]);
    }
    return XL_OK;
}
