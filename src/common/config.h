/* xluo: table-driven YAML configuration (Fluent Bit's config map idea).
 *
 * Each module declares its keys once, in a table of struct xl_cfg_key: name,
 * type, default (written as in YAML), where the value lives in the module's
 * struct, limits and one line of description. The same table
 *   - fills the struct with defaults (xl_cfg_defaults),
 *   - loads a YAML file or buffer over them, rejecting unknown keys, wrong
 *     types and out-of-range values with `file:line: message`,
 *   - frees what it allocated (xl_cfg_cleanup),
 *   - prints the reference documentation (xl_cfg_doc).
 */
#ifndef XL_CONFIG_H
#define XL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rc.h"

enum xl_cfg_type {
    XL_CFG_STR,      /* char * (heap, may be NULL when no default) */
    XL_CFG_INT,      /* int64_t */
    XL_CFG_DOUBLE,   /* double */
    XL_CFG_BOOL,     /* bool */
    XL_CFG_DURATION, /* int64_t milliseconds: 500ms 10s 5m */
    XL_CFG_SIZE,     /* int64_t bytes: 64KiB 1GiB */
    XL_CFG_STRLIST,  /* struct xl_strlist: [a, b] (a lone scalar is a list of one) */
    XL_CFG_MAP,      /* struct xl_kvlist: {k: v} of scalars, order kept */
    XL_CFG_SECTION,  /* nested struct fields at offset, described by .sub */
    XL_CFG_LIST,     /* struct xl_cfg_array of item_size structs described by .sub */
};

struct xl_strlist {
    char **v;
    size_t n;
};

struct xl_kvlist {
    char **k;
    char **v;
    size_t n;
};

struct xl_cfg_array {
    void *items; /* n structs of the key's item_size */
    size_t n;
};

struct xl_cfg_key;

/* Extra validation after a value is stored: field points at the value in
 * the struct. Return non-OK with err's message set to what was expected;
 * the loader adds file:line. */
typedef xl_rc (*xl_cfg_check_fn)(const void *field, struct xl_err *err);

struct xl_cfg_key {
    const char *name;
    enum xl_cfg_type type;
    const char *def;     /* default as YAML scalar text; NULL: empty/zero */
    size_t offset;       /* offsetof(struct, field) */
    double min, max;     /* numeric limits; both 0: unbounded */
    const char *choices; /* STR: allowed values "a|b|c"; NULL: any */
    const struct xl_cfg_key *sub; /* SECTION and LIST: the nested table */
    size_t item_size;             /* LIST: sizeof the item struct */
    xl_cfg_check_fn check;
    const char *desc;
};

/* Append copies of k and v to l. XL_ENOMEM leaves l as it was. */
xl_rc xl_kvlist_add(struct xl_kvlist *l, const char *k, const char *v);

/* Set every key of table to its default in base. */
xl_rc xl_cfg_defaults(const struct xl_cfg_key *table, void *base, struct xl_err *err);

/* Defaults, then the YAML document in buf (name is used in messages). On
 * error base holds what was loaded so far; call xl_cfg_cleanup either way. */
xl_rc xl_cfg_load_buf(const struct xl_cfg_key *table, void *base, const char *name,
                      const char *buf, size_t len, struct xl_err *err);

/* Defaults, then the YAML file at path. */
xl_rc xl_cfg_load_file(const struct xl_cfg_key *table, void *base, const char *path,
                       struct xl_err *err);

/* Defaults, then the YAML file at path if path is not NULL. */
xl_rc xl_cfg_load(const struct xl_cfg_key *table, void *base, const char *path,
                  struct xl_err *err);

/* Where a daemon keeps its files: the absolute prefix and its data dir
 * (data_dir resolved against the prefix unless absolute). */
struct xl_cfg_paths {
    char *prefix;
    char *data_path;
};
xl_rc xl_cfg_paths_resolve(struct xl_cfg_paths *p, const char *prefix, const char *data_dir,
                           struct xl_err *err);
void xl_cfg_paths_cleanup(struct xl_cfg_paths *p);

/* Free everything the loader allocated in base. */
void xl_cfg_cleanup(const struct xl_cfg_key *table, void *base);

/* Print the table as commented YAML with defaults and descriptions. */
void xl_cfg_doc(const struct xl_cfg_key *table, FILE *out, int indent);

/* Common checks. */
xl_rc xl_cfg_check_hostport(const void *field, struct xl_err *err);
xl_rc xl_cfg_check_urls(const void *field, struct xl_err *err);

/* Split "host:port" (or "[v6]:port", or ":port" for any host). host gets
 * "" for none. XL_EINVAL with a message otherwise. */
xl_rc xl_hostport_split(const char *s, char *host, size_t hostlen, uint16_t *port,
                        struct xl_err *err);

#endif
