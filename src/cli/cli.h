/* xluo: the command-line client of the server's HTTP API (docs/cli.md).
 *
 * One table of subcommands drives dispatch and help. Each subcommand names
 * its options in a table {name, type, offset, metavar, help, check} that
 * fills struct xl_cli_args; a list subcommand is a URL builder (arguments ->
 * request) and a renderer (json -> text on a FILE *), so both halves are
 * testable without a server. */
#ifndef XL_CLI_H
#define XL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/rc.h"

struct xl_sse_event; /* sse.h */

#define XL_CLI_DEFAULT_SERVER "http://127.0.0.1:21002"
#define XL_CLI_DEFAULT_TIMEOUT_MS 10000
#define XL_CLI_LIMIT_MAX 10000 /* the server's largest page */

/* Exit codes (sysexits' EX_USAGE for usage errors). */
#define XL_CLI_EXIT_OK 0
#define XL_CLI_EXIT_FAIL 1   /* the server answered with an error, or garbage */
#define XL_CLI_EXIT_NOCONN 2 /* the server is unreachable or refused the token */
#define XL_CLI_EXIT_USAGE 64 /* bad command line */

/* A growing list of borrowed strings (argv elements), e.g. repeated --match. */
struct xl_cli_list {
    const char **v;
    size_t n;
    size_t cap;
};

/* Everything the command line says. Strings are borrowed from argv or the
 * environment; only the lists own their arrays (xl_cli_args_cleanup). */
struct xl_cli_args {
    /* global options */
    const char *server;
    const char *token;
    bool json;
    int64_t timeout_ms;
    bool help;
    bool version;
    /* the subcommand and its arguments */
    const struct xl_cli_cmd *cmd;
    const char *name; /* the positional argument (metric NAME, command) */
    const char *host;
    struct xl_cli_list match;
    const char *since;
    const char *from;
    const char *to;
    const char *step;
    const char *agg;
    /* logs */
    const char *file; /* glob on the path */
    const char *input;
    const char *grep;  /* full-text query */
    const char *lines; /* -n N, checked by xl_cli_check_count */
    bool follow;
    /* checks, events */
    const char *check; /* --name: a check's name */
    const char *state; /* --state */
    const char *type;  /* --type: an event type */
    struct xl_cli_list where;
    const char *limit; /* --limit N, checked by xl_cli_check_limit */
};

/* One invocation: the arguments, where output goes, and the clock (so that
 * renderers are deterministic under test). */
struct xl_cli_ctx {
    struct xl_cli_args args;
    FILE *out;
    FILE *err;
    int64_t now_ms;
};

enum xl_cli_opt_type {
    XL_CLI_OPT_FLAG,    /* bool, no value */
    XL_CLI_OPT_STR,     /* const char *, last one wins */
    XL_CLI_OPT_LIST,    /* struct xl_cli_list, repeats append */
    XL_CLI_OPT_SECONDS, /* int64_t ms: "10", "2.5", "30s", "500ms" */
};

/* Validate an option value; the message says what is wrong with it (the
 * parser prefixes the option's name). */
typedef xl_rc (*xl_cli_check_fn)(const char *value, struct xl_err *err);

/* One command-line option. The table's end is an entry with name NULL. */
struct xl_cli_opt {
    const char *name; /* "--match" */
    char short_name;  /* 'h' for -h, or 0 */
    enum xl_cli_opt_type type;
    size_t offset;         /* into struct xl_cli_args */
    const char *metavar;   /* "SEL"; NULL for flags */
    const char *help;      /* one line */
    xl_cli_check_fn check; /* NULL: any value */
};

/* Turn the arguments into the request URL (in url, which is empty). */
typedef xl_rc (*xl_cli_url_fn)(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
/* Print the server's answer for a human on c->out. XL_EPROTO when the
 * document does not have the expected shape. */
typedef xl_rc (*xl_cli_render_fn)(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);
/* Run a subcommand; returns the process exit code. */
typedef int (*xl_cli_handler_fn)(const struct xl_cli_ctx *c);

/* One subcommand. The table's end is an entry with name NULL. */
struct xl_cli_cmd {
    const char *name;
    xl_cli_handler_fn handler;
    const char *usage;   /* after "xluo ": "metrics [--host H] [--match SEL]..." */
    const char *summary; /* one line for the command list */
    const char *help;    /* a paragraph for `xluo CMD --help` */
    const char *arg;     /* metavar of the positional argument, or NULL */
    bool arg_required;
    const struct xl_cli_opt *opts; /* the subcommand's own options */
    xl_cli_url_fn url;             /* for the generic GET handler */
    xl_cli_render_fn render;
};

/* ---- cli.c: entry point, subcommand table, help, the generic handler ---- */

/* Run the client with argv, printing results on out and errors on err.
 * Returns the process exit code (XL_CLI_EXIT_*). */
int xl_cli_main(int argc, char **argv, FILE *out, FILE *err);

/* The subcommand called name, or NULL. Borrowed from the static table. */
const struct xl_cli_cmd *xl_cli_cmd_find(const char *name);

/* The subcommand table, ended by an entry with name NULL. */
const struct xl_cli_cmd *xl_cli_cmds(void);

/* The generic handler: GET the URL that cmd->url builds, then print the JSON
 * (--json) or cmd->render's table. Returns the exit code. */
int xl_cli_get_and_render(const struct xl_cli_ctx *c);

/* The exit code for an error code from a request (2 for connection,
 * timeout and token problems, 64 for XL_EINVAL usage errors, else 1). */
int xl_cli_exit_code(xl_rc rc);

/* ---- args.c: the command line ---- */

/* The options every subcommand accepts, ended by a NULL name. */
extern const struct xl_cli_opt xl_cli_global_opts[];

/* Set the defaults, taking XLUO_SERVER and XLUO_TOKEN from the environment
 * when they are set and not empty. */
void xl_cli_args_init(struct xl_cli_args *a);

/* Free what the parser allocated (the lists); the strings are borrowed. */
void xl_cli_args_cleanup(struct xl_cli_args *a);

/* Parse argv[1..argc-1] into a (initialised by xl_cli_args_init). Global
 * options may come before or after the subcommand, a subcommand's own
 * options after it; `--opt=value` and `--opt value` both work; `--` ends
 * the options. XL_EINVAL (or XL_ENOMEM) with a message naming the option
 * or argument. With --help or --version no further checks are made. */
xl_rc xl_cli_args_parse(struct xl_cli_args *a, int argc, char **argv, struct xl_err *err);

/* Option checks, shared by the subcommand tables. */
xl_rc xl_cli_check_duration(const char *v, struct xl_err *err); /* > 0 */
xl_rc xl_cli_check_time(const char *v, struct xl_err *err);
xl_rc xl_cli_check_selector(const char *v, struct xl_err *err);
xl_rc xl_cli_check_agg(const char *v, struct xl_err *err);
xl_rc xl_cli_check_count(const char *v, struct xl_err *err); /* 0..XL_CLI_LOGS_MAX_N */
xl_rc xl_cli_check_limit(const char *v, struct xl_err *err); /* 1..XL_CLI_LIMIT_MAX */
xl_rc xl_cli_check_state(const char *v, struct xl_err *err); /* ok|warning|critical|unknown */

/* Print the option table as aligned "  --name META  help" lines. */
void xl_cli_opts_print(const struct xl_cli_opt *opts, FILE *out);

/* ---- the subcommands (cmd_*.c) ---- */

/* Append the label selectors of a (host=, match=...) to url. */
xl_rc xl_cli_url_filters(struct xl_buf *url, const struct xl_cli_args *a);

/* A JSON value as cell text: strings as they are, numbers and booleans
 * printed, NULL/null/missing as dflt. The result is borrowed from v or
 * written to tmp (tmplen bytes). */
const char *xl_cli_json_text(json_t *v, const char *dflt, char *tmp, size_t tmplen);

/* The members of obj as "k=v" joined by sep into b (reset first): strings
 * as they are, objects and arrays as compact JSON; "-" when empty.
 * XL_ENOMEM, XL_ETOOBIG (b's limit). */
xl_rc xl_cli_kv_text(json_t *obj, const char *sep, struct xl_buf *b);

xl_rc xl_cli_agents_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
xl_rc xl_cli_agents_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);
xl_rc xl_cli_metrics_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
xl_rc xl_cli_metrics_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);
xl_rc xl_cli_series_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
xl_rc xl_cli_series_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);
xl_rc xl_cli_query_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
xl_rc xl_cli_query_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);

/* ---- cmd_checks.c: `xluo checks`, `xluo checks history` ---- */

#define XL_CLI_CHECKS_OUTPUT_COLS 60 /* longest OUTPUT cell, in characters */

/* /api/v1/checks, or /api/v1/checks/history for the positional "history". */
xl_rc xl_cli_checks_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
/* HOST NAME STATE SINCE OUTPUT, or for history TIME HOST NAME FROM TO
 * OUTPUT (oldest first). */
xl_rc xl_cli_checks_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);

/* ---- cmd_events.c: `xluo events` ---- */

/* `xluo events`: a table of events, or with -f each new one as it comes. */
int xl_cli_events_main(const struct xl_cli_ctx *c);
/* /api/v1/events for the arguments, and /api/v1/stream for -f (type=event
 * without --type). */
xl_rc xl_cli_events_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
xl_rc xl_cli_events_stream_url(const struct xl_cli_ctx *c, struct xl_buf *url, struct xl_err *err);
/* TIME HOST TYPE FIELDS, oldest first. */
xl_rc xl_cli_events_render(const struct xl_cli_ctx *c, json_t *root, struct xl_err *err);
/* One streamed SSE event: a "record" printed as a line (its JSON with
 * --json), a "dropped" noted on c->err, others ignored. */
xl_rc xl_cli_events_on_event(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                             struct xl_err *err);

/* ---- follow.c: following a stream of Server-Sent Events ---- */

/* Handle one event of a followed stream; an error stops following. */
typedef xl_rc (*xl_cli_event_fn)(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                                 struct xl_err *err);

/* GET the stream at url and hand each event to on_event until Ctrl-C
 * (or an error of on_event, or an answer that retrying will not change),
 * reconnecting with backoff when the connection fails or ends. Each
 * connection sends Last-Event-ID: the last id the stream gave, or last_id
 * (NULL or "": none) before it gave any. Returns the exit code. */
int xl_cli_follow(const struct xl_cli_ctx *c, const char *url, const char *last_id,
                  xl_cli_event_fn on_event);

/* Print one record (a decoded JSON object) for a human. XL_EPROTO when it
 * does not have the expected shape. */
typedef xl_rc (*xl_cli_print_fn)(const struct xl_cli_ctx *c, json_t *rec, struct xl_err *err);

/* The event handler of a stream of records: an event of type `type` is a
 * record, printed by print (with --json, its data as it came); a "dropped"
 * one is noted on c->err as "the server dropped N <what> here"; others are
 * ignored. XL_EPROTO for an event that is not JSON, or print's error. */
xl_rc xl_cli_follow_record(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                           const char *type, const char *what, xl_cli_print_fn print,
                           struct xl_err *err);

/* ---- cmd_logs.c: `xluo logs`, search and follow ---- */

#define XL_CLI_LOGS_MAX_N 100000 /* most lines -n may ask for */

/* `xluo logs`: the newest lines, oldest first; with -f, then every new one. */
int xl_cli_logs_main(const struct xl_cli_ctx *c);

/* The search URL (/api/v1/logs: filters, time range, limit, and cursor when
 * > 0) or, when stream, the stream URL (/api/v1/logs/stream: filters only). */
xl_rc xl_cli_logs_url(const struct xl_cli_ctx *c, bool stream, size_t limit, int64_t cursor,
                      struct xl_buf *url, struct xl_err *err);

/* One log line for a human: "TIME HOST FILE: LINE" (local time with ms;
 * "[P/N] " before a part of a cut line; control characters but tab and
 * newline as '?'); with --json the row's JSON on one line. XL_EPROTO when
 * row is not a log line object. */
xl_rc xl_cli_logs_print_row(const struct xl_cli_ctx *c, json_t *row, struct xl_err *err);

/* Follow-mode state machine pieces, exposed for tests: handle one SSE
 * event (a "log" is printed, a "dropped" noted on c->err). */
xl_rc xl_cli_logs_on_event(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                           struct xl_err *err);

#endif
