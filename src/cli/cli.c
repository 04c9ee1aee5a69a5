/* xluo: the client's entry point, its subcommand table and help. */
#include "cli.h"

#include <ctype.h>
#include <string.h>

#include <curl/curl.h>

#include "common/daemon.h"
#include "common/units.h"
#include "fmt.h"
#include "http.h"
#include "table.h"

#define ARG(field) offsetof(struct xl_cli_args, field)

/* Rows that several tables share word for word. */
#define OPT_HOST                                                                                   \
    {                                                                                              \
        "--host", 0, XL_CLI_OPT_STR, ARG(host), "H", "only this host (same as --match host=H)",    \
            NULL                                                                                   \
    }
#define OPT_MATCH                                                                                  \
    {                                                                                              \
        "--match", 0, XL_CLI_OPT_LIST, ARG(match), "SEL",                                          \
            "label=value or label!=value; repeat: all must hold", xl_cli_check_selector            \
    }
#define OPT_FROM                                                                                   \
    {                                                                                              \
        "--from", 0, XL_CLI_OPT_STR, ARG(from), "T",                                               \
            "start: 1h (ago), '2026-11-21 08:00', epoch ms", xl_cli_check_time                     \
    }
#define OPT_TO                                                                                     \
    {                                                                                              \
        "--to", 0, XL_CLI_OPT_STR, ARG(to), "T", "end, the same forms (default now)",              \
            xl_cli_check_time                                                                      \
    }

static const struct xl_cli_opt no_opts[] = {
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct xl_cli_opt filter_opts[] = {
    OPT_HOST,
    OPT_MATCH,
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct xl_cli_opt query_opts[] = {
    OPT_HOST,
    OPT_MATCH,
    {"--since", 0, XL_CLI_OPT_STR, ARG(since), "DUR", "from DUR ago until now (default 1h)",
     xl_cli_check_duration},
    OPT_FROM,
    OPT_TO,
    {"--step", 0, XL_CLI_OPT_STR, ARG(step), "DUR", "one point per DUR bucket (e.g. 1m, 5m)",
     xl_cli_check_duration},
    {"--agg", 0, XL_CLI_OPT_STR, ARG(agg), "A",
     "avg|min|max|last|sum|count per bucket, or raw samples", xl_cli_check_agg},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct xl_cli_opt logs_opts[] = {
    {"--host", 0, XL_CLI_OPT_STR, ARG(host), "H", "only lines from host H", NULL},
    {"--file", 0, XL_CLI_OPT_STR, ARG(file), "GLOB",
     "only files whose path matches GLOB (* ? [...]; * also matches /)", NULL},
    {"--input", 0, XL_CLI_OPT_STR, ARG(input), "NAME", "only lines of the agents' tail input NAME",
     NULL},
    {"--grep", 0, XL_CLI_OPT_STR, ARG(grep), "Q",
     "only lines that match Q: words, \"a phrase\", prefix*, AND, OR, NOT", NULL},
    {"--since", 0, XL_CLI_OPT_STR, ARG(since), "DUR", "from DUR ago (default 1h)",
     xl_cli_check_duration},
    OPT_FROM,
    OPT_TO,
    {"--lines", 'n', XL_CLI_OPT_STR, ARG(lines), "N",
     "the newest N lines (default 100, with --follow 10; 0: none)", xl_cli_check_count},
    {"--follow", 'f', XL_CLI_OPT_FLAG, ARG(follow), NULL,
     "then print new lines as they are stored, until Ctrl-C", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct xl_cli_opt checks_opts[] = {
    {"--host", 0, XL_CLI_OPT_STR, ARG(host), "H", "only checks of host H", NULL},
    {"--name", 0, XL_CLI_OPT_STR, ARG(check), "N", "only the check called N", NULL},
    {"--state", 0, XL_CLI_OPT_STR, ARG(state), "S",
     "only checks in state S: ok, warning, critical or unknown", xl_cli_check_state},
    {"--since", 0, XL_CLI_OPT_STR, ARG(since), "DUR", "history: changes from DUR ago on",
     xl_cli_check_duration},
    {"--limit", 0, XL_CLI_OPT_STR, ARG(limit), "N", "history: the newest N changes (default 100)",
     xl_cli_check_limit},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct xl_cli_opt events_opts[] = {
    {"--type", 0, XL_CLI_OPT_STR, ARG(type), "T", "only events of type T (default: every type)",
     NULL},
    {"--host", 0, XL_CLI_OPT_STR, ARG(host), "H", "only events from host H", NULL},
    {"--where", 0, XL_CLI_OPT_LIST, ARG(where), "COND",
     "a field condition KEY OP VALUE, OP one of = != > >= < <=; repeat: all must hold", NULL},
    {"--since", 0, XL_CLI_OPT_STR, ARG(since), "DUR", "from DUR ago (default: all kept)",
     xl_cli_check_duration},
    OPT_FROM,
    OPT_TO,
    {"--limit", 0, XL_CLI_OPT_STR, ARG(limit), "N", "the newest N events (default 100)",
     xl_cli_check_limit},
    {"--follow", 'f', XL_CLI_OPT_FLAG, ARG(follow), NULL,
     "print events as they are stored, until Ctrl-C", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static int help_main(const struct xl_cli_ctx *c);

static const struct xl_cli_cmd cmds[] = {
    {"agents", xl_cli_get_and_render, "agents", "list the agents and whether they are online",
     "One line per agent known to the server, sorted by host: its id (first 8\n"
     "characters), address, version, status, when it was last heard from, what\n"
     "waits in its outbox (OUTBOX: bytes, BACKLOG: age of the oldest record), the\n"
     "records it dropped and its labels. --json shows all the agent reported.",
     NULL, false, no_opts, xl_cli_agents_url, xl_cli_agents_render},
    {"metrics", xl_cli_get_and_render, "metrics [--host H] [--match SEL]...",
     "list metric names and how many series each has",
     "One line per metric name with the number of series (label sets) that match\n"
     "the selectors, sorted by name.",
     NULL, false, filter_opts, xl_cli_metrics_url, xl_cli_metrics_render},
    {"series", xl_cli_get_and_render, "series [NAME] [--host H] [--match SEL]...",
     "list the label sets of a metric",
     "One line per series of metric NAME (of every metric when NAME is left out),\n"
     "one column per label name.",
     "NAME", false, filter_opts, xl_cli_series_url, xl_cli_series_render},
    {"query", xl_cli_get_and_render,
     "query NAME [--host H] [--match SEL]... [--since DUR | --from T] [--to T]\n"
     "       [--step DUR] [--agg A]",
     "print the points of a metric over a time range",
     "For each series of metric NAME, a line with its labels, then one TIME (local)\n"
     "and VALUE line per point. The range is the last hour unless --since or\n"
     "--from/--to say otherwise. Without --step, a range of up to an hour shows\n"
     "every stored sample (agg raw); a longer range is cut into at most about 120\n"
     "buckets of a round step (1m, 5m, 15m, 1h, ...) averaged (agg avg, or the\n"
     "--agg given).",
     "NAME", true, query_opts, xl_cli_query_url, xl_cli_query_render},
    {"logs", xl_cli_logs_main,
     "logs [--host H] [--file GLOB] [--input NAME] [--grep Q]\n"
     "       [--since DUR | --from T] [--to T] [-n N] [-f]",
     "print log lines, or follow them as they come",
     "The newest N matching log lines of the range (the last hour unless --since\n"
     "or --from/--to say otherwise), oldest first like tail, one per line:\n"
     "TIME HOST FILE: LINE. With --follow, then every new matching line as the\n"
     "server stores it, reconnecting (and catching up, without duplicates) when\n"
     "the connection drops, until Ctrl-C. --json prints each line's JSON object\n"
     "on one line.",
     NULL, false, logs_opts, NULL, NULL},
    {"checks", xl_cli_get_and_render,
     "checks [--host H] [--name N] [--state S]\n"
     "       xluo checks history [--host H] [--name N] [--since DUR] [--limit N]",
     "show the state of the agents' checks, or their state changes",
     "One line per check (a host's check of that name), most severe first\n"
     "(critical, warning, unknown, ok), then by host and name: HOST NAME STATE,\n"
     "SINCE (when it entered its state) and the first line of its last OUTPUT.\n"
     "'checks history' lists the state changes instead, oldest first: TIME HOST\n"
     "NAME FROM TO OUTPUT (FROM is - for a check's first result).",
     "history", false, checks_opts, xl_cli_checks_url, xl_cli_checks_render},
    {"events", xl_cli_events_main,
     "events [--type T] [--host H] [--where COND]... [--since DUR | --from T]\n"
     "       [--to T] [--limit N] [-f]",
     "list custom events, or follow them as they come",
     "The newest matching events (100 unless --limit says otherwise), oldest\n"
     "first: TIME HOST TYPE FIELDS, the fields as key=value. --where selects on\n"
     "fields: a number compares numerically with numeric fields, true or false\n"
     "with booleans, anything else (or \"quoted\") as text; 'a.b' reaches into an\n"
     "object; != also holds when the field is missing. With --follow, every new\n"
     "matching event as the server stores it, one per line, until Ctrl-C (none\n"
     "from before; events stored while the connection is down are not shown:\n"
     "list them without -f). --json prints the server's JSON (with -f, each\n"
     "event's on one line).",
     NULL, false, events_opts, xl_cli_events_url, xl_cli_events_render},
    {"help", help_main, "help [COMMAND]", "show the help of a command", NULL, "COMMAND", false,
     no_opts, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL},
};

const struct xl_cli_cmd *xl_cli_cmds(void)
{
    return cmds;
}

const struct xl_cli_cmd *xl_cli_cmd_find(const char *name)
{
    for (const struct xl_cli_cmd *c = cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int xl_cli_exit_code(xl_rc rc)
{
    switch (rc) {
    case XL_OK: return XL_CLI_EXIT_OK;
    case XL_ECONN:
    case XL_ETIMEOUT:
    case XL_EAUTH: return XL_CLI_EXIT_NOCONN;
    default: return XL_CLI_EXIT_FAIL;
    }
}

static void usage_global(FILE *out)
{
    struct xl_table *t = xl_table_new(2);

    fprintf(out, "usage: xluo [OPTIONS] COMMAND [ARGS]\n\n"
                 "The command-line client of the xluo server.\n\ncommands:\n");
    for (const struct xl_cli_cmd *c = cmds; t && c->name; c++) {
        char left[32];

        snprintf(left, sizeof(left), "  %s", c->name);
        if (xl_table_add(t, left) != XL_OK || xl_table_add(t, c->summary) != XL_OK)
            break;
    }
    if (t)
        xl_table_print(t, out);
    xl_table_free(t);
    fprintf(out, "\noptions (before or after the command):\n");
    xl_cli_opts_print(xl_cli_global_opts, out);
    fprintf(out, "\n'xluo COMMAND --help' shows a command's options. Exit status: 0 ok,\n"
                 "1 the server answered with an error, 2 the server is unreachable or\n"
                 "rejected the token, 64 usage error.\n");
}

static void usage_cmd(const struct xl_cli_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: xluo %s\n\n%c%s.\n", cmd->usage, toupper((unsigned char)cmd->summary[0]),
            cmd->summary + 1);
    if (cmd->help)
        fprintf(out, "\n%s\n", cmd->help);
    if (cmd->opts && cmd->opts[0].name) {
        fprintf(out, "\noptions:\n");
        xl_cli_opts_print(cmd->opts, out);
    }
    fprintf(out, "\nglobal options:\n");
    xl_cli_opts_print(xl_cli_global_opts, out);
}

/* `xluo help [COMMAND]`. */
static int help_main(const struct xl_cli_ctx *c)
{
    const struct xl_cli_cmd *cmd = NULL;

    if (c->args.name && !(cmd = xl_cli_cmd_find(c->args.name))) {
        fprintf(c->err, "xluo: unknown command '%s'\n\n", c->args.name);
        usage_global(c->err);
        return XL_CLI_EXIT_USAGE;
    }
    if (cmd)
        usage_cmd(cmd, c->out);
    else
        usage_global(c->out);
    return XL_CLI_EXIT_OK;
}

int xl_cli_get_and_render(const struct xl_cli_ctx *c)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_err err = {0};
    struct xl_buf url, body;
    json_t *root = NULL;
    long status = 0;
    xl_rc rc;

    xl_buf_init(&url, XL_CLI_MAX_URL);
    xl_buf_init(&body, XL_CLI_MAX_BODY);
    if ((rc = a->cmd->url(c, &url, &err)) != XL_OK)
        goto out;
    if ((rc = xl_cli_http_get(url.data, a->server, a->token, a->timeout_ms, &status, &body,
                              &err)) != XL_OK)
        goto out;
    if ((rc = xl_cli_decode(status, body.data, body.len, &root, &err)) != XL_OK)
        goto out;
    if (a->json) {
        xl_cli_json_pretty(body.data, body.len, c->out);
    } else if ((rc = a->cmd->render(c, root, &err)) != XL_OK) {
        if (rc == XL_EPROTO)
            xl_err_prefix(&err, "unexpected answer from the server: ");
        goto out;
    }
    if (fflush(c->out) != 0 || ferror(c->out))
        rc = xl_err_set(&err, XL_EIO, "cannot write the output");
out:
    if (rc != XL_OK) {
        if (!err.msg[0])
            xl_err_set(&err, rc, "%s", xl_rc_str(rc));
        fprintf(c->err, "xluo: %s\n", err.msg);
    }
    json_decref(root);
    xl_buf_cleanup(&body);
    xl_buf_cleanup(&url);
    return rc == XL_EINVAL && status == 0 ? XL_CLI_EXIT_USAGE : xl_cli_exit_code(rc);
}

int xl_cli_main(int argc, char **argv, FILE *out, FILE *errf)
{
    struct xl_cli_ctx c = {.out = out, .err = errf};
    struct xl_err err = {0};
    int code;
    xl_rc rc;

    xl_cli_args_init(&c.args);
    c.now_ms = xl_now_ms();
    if ((rc = xl_cli_args_parse(&c.args, argc, argv, &err)) == XL_ENOMEM) {
        fprintf(errf, "xluo: %s\n", err.msg);
        code = XL_CLI_EXIT_FAIL;
        goto out;
    } else if (rc != XL_OK) {
        fprintf(errf, "xluo: %s\n", err.msg);
        if (c.args.cmd)
            fprintf(errf, "usage: xluo %s\n(xluo %s --help for more)\n", c.args.cmd->usage,
                    c.args.cmd->name);
        else
            fprintf(errf, "usage: xluo [OPTIONS] COMMAND [ARGS]\n(xluo --help for more)\n");
        code = XL_CLI_EXIT_USAGE;
        goto out;
    }
    if (c.args.version) {
        fprintf(out, "xluo %s\n", XL_VERSION);
        code = XL_CLI_EXIT_OK;
    } else if (c.args.help) {
        if (c.args.cmd && c.args.cmd->handler != help_main)
            usage_cmd(c.args.cmd, out);
        else
            help_main(&c);
        code = XL_CLI_EXIT_OK;
    } else {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(errf, "xluo: cannot initialise libcurl\n");
            code = XL_CLI_EXIT_FAIL;
            goto out;
        }
        code = c.args.cmd->handler(&c);
        curl_global_cleanup();
    }
out:
    xl_cli_args_cleanup(&c.args);
    return code;
}
