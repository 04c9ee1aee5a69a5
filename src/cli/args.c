/* xluo: the client's command line, parsed from option tables. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/check.h"
#include "common/units.h"
#include "fmt.h"
#include "table.h"

#define ARG(field) offsetof(struct xl_cli_args, field)

const struct xl_cli_opt xl_cli_global_opts[] = {
    {"--server", 0, XL_CLI_OPT_STR, ARG(server), "URL",
     "the server (env XLUO_SERVER, default " XL_CLI_DEFAULT_SERVER ")", NULL},
    {"--token", 0, XL_CLI_OPT_STR, ARG(token), "T", "the server's api_token (env XLUO_TOKEN)",
     NULL},
    {"--json", 0, XL_CLI_OPT_FLAG, ARG(json), NULL,
     "print the server's JSON answer (indented) instead of a table", NULL},
    {"--timeout", 0, XL_CLI_OPT_SECONDS, ARG(timeout_ms), "SECS",
     "give up on the server after SECS seconds (default 10, 0: never)", NULL},
    {"--help", 'h', XL_CLI_OPT_FLAG, ARG(help), NULL, "show this help", NULL},
    {"--version", 0, XL_CLI_OPT_FLAG, ARG(version), NULL, "print the version", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

void xl_cli_args_init(struct xl_cli_args *a)
{
    const char *env;

    memset(a, 0, sizeof(*a));
    a->server = XL_CLI_DEFAULT_SERVER;
    a->timeout_ms = XL_CLI_DEFAULT_TIMEOUT_MS;
    if ((env = getenv("XLUO_SERVER")) && *env)
        a->server = env;
    if ((env = getenv("XLUO_TOKEN")) && *env)
        a->token = env;
}

void xl_cli_args_cleanup(struct xl_cli_args *a)
{
    xl_free(a->match.v);
    a->match.v = NULL;
    a->match.n = a->match.cap = 0;
    xl_free(a->where.v);
    a->where.v = NULL;
    a->where.n = a->where.cap = 0;
}

xl_rc xl_cli_check_duration(const char *v, struct xl_err *err)
{
    int64_t ms;

    if (xl_duration_parse(v, &ms) != XL_OK)
        return xl_err_set(err, XL_EINVAL, "invalid duration '%s' (use e.g. 30s, 5m, 1h, 2d, 1h30m)",
                          v);
    if (ms <= 0)
        return xl_err_set(err, XL_EINVAL, "the duration must be more than 0");
    return XL_OK;
}

xl_rc xl_cli_check_time(const char *v, struct xl_err *err)
{
    int64_t ms;
    bool rel;

    return xl_cli_time_parse(v, xl_now_ms(), &ms, &rel, err);
}

xl_rc xl_cli_check_selector(const char *v, struct xl_err *err)
{
    const char *eq = strchr(v, '=');

    if (!eq || eq == v || (eq == v + 1 && v[0] == '!'))
        return xl_err_set(err, XL_EINVAL, "expected label=value or label!=value, got '%s'", v);
    return XL_OK;
}

xl_rc xl_cli_check_agg(const char *v, struct xl_err *err)
{
    static const char *const aggs[] = {"avg", "min", "max", "last", "sum", "count", "raw"};

    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++)
        if (strcmp(v, aggs[i]) == 0)
            return XL_OK;
    return xl_err_set(err, XL_EINVAL,
                      "unknown aggregation '%s' (avg, min, max, last, sum, count or raw)", v);
}

xl_rc xl_cli_check_count(const char *v, struct xl_err *err)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || n > XL_CLI_LOGS_MAX_N)
        return xl_err_set(err, XL_EINVAL, "expected a number of lines from 0 to %d, got '%s'",
                          XL_CLI_LOGS_MAX_N, v);
    return XL_OK;
}

xl_rc xl_cli_check_limit(const char *v, struct xl_err *err)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || n < 1 || n > XL_CLI_LIMIT_MAX)
        return xl_err_set(err, XL_EINVAL, "expected a number from 1 to %d, got '%s'",
                          XL_CLI_LIMIT_MAX, v);
    return XL_OK;
}

xl_rc xl_cli_check_state(const char *v, struct xl_err *err)
{
    enum xl_check_state st;

    if (xl_check_state_parse(v, &st))
        return XL_OK;
    return xl_err_set(err, XL_EINVAL, "unknown state '%s' (ok, warning, critical or unknown)", v);
}

/* "10", "2.5" (seconds) or a duration with a unit ("30s", "500ms"). */
static xl_rc parse_seconds(const char *v, int64_t *ms, struct xl_err *err)
{
    char *end;
    double secs;

    if (isdigit((unsigned char)v[0])) {
        secs = strtod(v, &end);
        if (!*end && isfinite(secs) && secs < 1e9) {
            *ms = (int64_t)llround(secs * 1000);
            return XL_OK;
        }
    }
    if (xl_duration_parse(v, ms) == XL_OK)
        return XL_OK;
    return xl_err_set(err, XL_EINVAL, "invalid number of seconds '%s' (use e.g. 10, 2.5, 500ms)",
                      v);
}

/* The option in opts called arg ("--name" or "-x"), comparing only the
 * first len bytes of arg (the part before '='). */
static const struct xl_cli_opt *opt_find(const struct xl_cli_opt *opts, const char *arg, size_t len)
{
    if (!opts)
        return NULL;
    for (const struct xl_cli_opt *o = opts; o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0)
            return o;
        if (o->short_name && len == 2 && arg[0] == '-' && arg[1] == o->short_name)
            return o;
    }
    return NULL;
}

/* Store value (NULL for flags) into the field that o names. */
static xl_rc opt_set(struct xl_cli_args *a, const struct xl_cli_opt *o, const char *value,
                     struct xl_err *err)
{
    char *field = (char *)a + o->offset;
    struct xl_cli_list *l;
    xl_rc rc;

    if (o->check && (rc = o->check(value, err)) != XL_OK)
        goto out_named;
    switch (o->type) {
    case XL_CLI_OPT_FLAG: *(bool *)field = true; break;
    case XL_CLI_OPT_STR: *(const char **)field = value; break;
    case XL_CLI_OPT_LIST:
        l = (struct xl_cli_list *)field;
        if (xl_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) != 0)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        l->v[l->n++] = value;
        break;
    case XL_CLI_OPT_SECONDS:
        if ((rc = parse_seconds(value, (int64_t *)field, err)) != XL_OK)
            goto out_named;
        break;
    }
    return XL_OK;
out_named:
    xl_err_prefix(err, "%s: ", o->name);
    return rc;
}

/* Is arg an option of some subcommand (to explain where it belongs)? */
static bool is_cmd_option(const char *arg, size_t len)
{
    for (const struct xl_cli_cmd *c = xl_cli_cmds(); c->name; c++)
        if (opt_find(c->opts, arg, len))
            return true;
    return false;
}

/* Handle the option argv[*i] (which starts with '-'), taking its value from
 * after '=' or from the next argument. */
static xl_rc parse_option(struct xl_cli_args *a, int argc, char **argv, int *i, struct xl_err *err)
{
    const char *arg = argv[*i], *eq = NULL, *value = NULL;
    const struct xl_cli_opt *o;
    size_t len = strlen(arg);

    if (arg[1] == '-' && (eq = strchr(arg, '=')))
        len = (size_t)(eq - arg);
    if (!(o = opt_find(xl_cli_global_opts, arg, len)) &&
        !(o = opt_find(a->cmd ? a->cmd->opts : NULL, arg, len))) {
        if (!a->cmd && is_cmd_option(arg, len))
            return xl_err_set(err, XL_EINVAL,
                              "%.*s is an option of a command: put it after the command", (int)len,
                              arg);
        if (a->cmd)
            return xl_err_set(err, XL_EINVAL, "unknown option %.*s for '%s'", (int)len, arg,
                              a->cmd->name);
        return xl_err_set(err, XL_EINVAL, "unknown option %.*s", (int)len, arg);
    }
    if (o->type == XL_CLI_OPT_FLAG) {
        if (eq)
            return xl_err_set(err, XL_EINVAL, "%s takes no value", o->name);
    } else if (eq) {
        value = eq + 1;
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        return xl_err_set(err, XL_EINVAL, "%s needs a value (%s)", o->name, o->metavar);
    }
    return opt_set(a, o, value, err);
}

xl_rc xl_cli_args_parse(struct xl_cli_args *a, int argc, char **argv, struct xl_err *err)
{
    bool options = true;
    xl_rc rc;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (options && strcmp(arg, "--") == 0) {
            options = false;
        } else if (options && arg[0] == '-' && arg[1]) {
            if ((rc = parse_option(a, argc, argv, &i, err)) != XL_OK)
                return rc;
        } else if (!a->cmd) {
            if (!(a->cmd = xl_cli_cmd_find(arg)))
                return xl_err_set(err, XL_EINVAL, "unknown command '%s'", arg);
        } else if (a->cmd->arg && !a->name) {
            a->name = arg;
        } else {
            return xl_err_set(err, XL_EINVAL, "unexpected argument '%s'", arg);
        }
    }
    if (a->help || a->version)
        return XL_OK;
    if (!a->cmd)
        return xl_err_set(err, XL_EINVAL, "no command given");
    if (a->cmd->arg_required && !a->name)
        return xl_err_set(err, XL_EINVAL, "%s needs a %s", a->cmd->name, a->cmd->arg);
    if (a->since && a->from)
        return xl_err_set(err, XL_EINVAL, "--since and --from say the same thing; give one");
    return XL_OK;
}

void xl_cli_opts_print(const struct xl_cli_opt *opts, FILE *out)
{
    struct xl_table *t = xl_table_new(2);

    if (!t)
        return;
    for (const struct xl_cli_opt *o = opts; o->name; o++) {
        char left[64];

        if (o->short_name)
            snprintf(left, sizeof(left), "  -%c, %s", o->short_name, o->name);
        else
            snprintf(left, sizeof(left), "  %s", o->name);
        if (o->metavar)
            snprintf(left + strlen(left), sizeof(left) - strlen(left), " %s", o->metavar);
        if (xl_table_add(t, left) != XL_OK || xl_table_add(t, o->help) != XL_OK)
            break;
    }
    xl_table_print(t, out);
    xl_table_free(t);
}
