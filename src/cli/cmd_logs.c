/* xluo: `xluo logs` — the newest log lines, oldest first like tail, and with
 * -f every new line as the server stores it (Server-Sent Events on
 * /api/v1/logs/stream, reconnecting with Last-Event-ID). */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "common/units.h"
#include "fmt.h"
#include "http.h"
#include "sse.h"

#define LOGS_DEFAULT_N 100
#define LOGS_FOLLOW_DEFAULT_N 10
#define LOGS_PAGE_MAX 10000 /* the server's largest page */
#define FOLLOW_BACKOFF_MIN_MS 500
#define FOLLOW_BACKOFF_MAX_MS 30000
#define FOLLOW_IDLE_S 45 /* the server pings every 15 s */
#define FOLLOW_ERRBODY_MAX (64u << 10)

/* Append key=time: a duration back from now as written (the server
 * resolves it), anything else as epoch ms. */
static xl_rc time_param(const struct xl_cli_ctx *c, struct xl_buf *url, const char *key,
                        const char *s, struct xl_err *err)
{
    char num[32];
    int64_t ms;
    bool rel;
    xl_rc rc;

    if ((rc = xl_cli_time_parse(s, c->now_ms, &ms, &rel, err)) != XL_OK) {
        xl_err_prefix(err, "--%s: ", key);
        return rc;
    }
    if (rel)
        return xl_cli_url_param(url, key, s);
    snprintf(num, sizeof(num), "%lld", (long long)ms);
    return xl_cli_url_param(url, key, num);
}

xl_rc xl_cli_logs_url(const struct xl_cli_ctx *c, bool stream, size_t limit, int64_t cursor,
                      struct xl_buf *url, struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    char num[32];
    xl_rc rc;

    if ((rc = xl_cli_url_start(url, a->server, stream ? "/api/v1/logs/stream" : "/api/v1/logs")) ||
        (rc = xl_cli_url_param(url, "host", a->host)) ||
        (rc = xl_cli_url_param(url, "file", a->file)) ||
        (rc = xl_cli_url_param(url, "input", a->input)) ||
        (rc = xl_cli_url_param(url, "q", a->grep)))
        goto out_url;
    if (stream)
        return XL_OK;
    if (a->since && (rc = xl_cli_url_param(url, "from", a->since)))
        goto out_url;
    if (a->from && (rc = time_param(c, url, "from", a->from, err)) != XL_OK)
        return rc == XL_EINVAL ? rc
                               : xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    if (a->to && (rc = time_param(c, url, "to", a->to, err)) != XL_OK)
        return rc == XL_EINVAL ? rc
                               : xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    snprintf(num, sizeof(num), "%zu", limit);
    if ((rc = xl_cli_url_param(url, "limit", num)))
        goto out_url;
    if (cursor > 0) {
        snprintf(num, sizeof(num), "%lld", (long long)cursor);
        if ((rc = xl_cli_url_param(url, "cursor", num)))
            goto out_url;
    }
    return XL_OK;
out_url:
    return xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
}

/* s with control characters other than tab and newline as '?'. */
static void put_clean(const char *s, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        fputc((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f ? '?' : ch, out);
    }
}

xl_rc xl_cli_logs_print_row(const struct xl_cli_ctx *c, json_t *row, struct xl_err *err)
{
    json_t *ts = json_object_get(row, "ts"), *line = json_object_get(row, "line");
    const char *host = json_string_value(json_object_get(row, "host"));
    const char *file = json_string_value(json_object_get(row, "file"));
    json_int_t part = json_integer_value(json_object_get(row, "part"));
    json_int_t parts = json_integer_value(json_object_get(row, "parts"));
    char when[48];

    if (!json_is_object(row) || !json_is_integer(ts) || !json_is_string(line))
        return xl_err_set(err, XL_EPROTO, "a log line without \"ts\" or \"line\"");
    if (c->args.json) {
        char *s = json_dumps(row, JSON_COMPACT);

        if (!s)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        fputs(s, c->out);
        fputc('\n', c->out);
        free(s);
        return XL_OK;
    }
    xl_cli_fmt_time(json_integer_value(ts), true, when, sizeof(when));
    fprintf(c->out, "%s ", when);
    put_clean(host ? host : "-", strlen(host ? host : "-"), c->out);
    fputc(' ', c->out);
    put_clean(file ? file : "-", strlen(file ? file : "-"), c->out);
    fputs(": ", c->out);
    if (part > 0) {
        if (parts > 0)
            fprintf(c->out, "[%lld/%lld] ", (long long)part, (long long)parts);
        else
            fprintf(c->out, "[%lld/?] ", (long long)part);
    }
    put_clean(json_string_value(line), json_string_length(line), c->out);
    fputc('\n', c->out);
    return XL_OK;
}

/* GET url and decode the answer into *root. */
static xl_rc get_json(const struct xl_cli_ctx *c, const char *url, json_t **root,
                      struct xl_err *err)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_buf body;
    long status = 0;
    xl_rc rc;

    *root = NULL;
    xl_buf_init(&body, XL_CLI_MAX_BODY);
    if ((rc = xl_cli_http_get(url, a->server, a->token, a->timeout_ms, &status, &body, err)) ==
        XL_OK)
        rc = xl_cli_decode(status, body.data, body.len, root, err);
    xl_buf_cleanup(&body);
    return rc;
}

/* The newest n matching lines, newest first, into rows (a JSON array),
 * page by page. */
static xl_rc search(const struct xl_cli_ctx *c, size_t n, json_t *rows, struct xl_err *err)
{
    struct xl_buf url;
    int64_t cursor = 0;
    xl_rc rc = XL_OK;

    xl_buf_init(&url, XL_CLI_MAX_URL);
    while (json_array_size(rows) < n) {
        size_t want = n - json_array_size(rows), i;
        json_t *root = NULL, *logs, *next, *row;

        if (want > LOGS_PAGE_MAX)
            want = LOGS_PAGE_MAX;
        xl_buf_reset(&url);
        if ((rc = xl_cli_logs_url(c, false, want, cursor, &url, err)) != XL_OK ||
            (rc = get_json(c, url.data, &root, err)) != XL_OK)
            break;
        logs = json_object_get(root, "logs");
        next = json_object_get(root, "next_cursor");
        if (!json_is_array(logs)) {
            json_decref(root);
            rc = xl_err_set(err, XL_EPROTO, "unexpected answer from the server: no \"logs\" array");
            break;
        }
        json_array_foreach(logs, i, row)
        {
            if (json_array_size(rows) < n && json_array_append(rows, row) != 0) {
                json_decref(root);
                return xl_err_set(err, XL_ENOMEM, "out of memory");
            }
        }
        cursor = json_is_integer(next) && json_array_size(logs) ? json_integer_value(next) : 0;
        json_decref(root);
        if (cursor <= 0)
            break;
    }
    xl_buf_cleanup(&url);
    return rc;
}

/* Print rows (newest first) oldest first; *max_id gets the largest id. */
static xl_rc print_rows(const struct xl_cli_ctx *c, json_t *rows, int64_t *max_id,
                        struct xl_err *err)
{
    xl_rc rc;

    for (size_t i = json_array_size(rows); i > 0; i--) {
        json_t *row = json_array_get(rows, i - 1);
        json_int_t id = json_integer_value(json_object_get(row, "id"));

        if ((rc = xl_cli_logs_print_row(c, row, err)) != XL_OK) {
            if (rc == XL_EPROTO)
                xl_err_prefix(err, "unexpected answer from the server: ");
            return rc;
        }
        if (id > *max_id)
            *max_id = id;
    }
    return XL_OK;
}

/* The id of the newest stored line, whatever it is (0 when there is none):
 * where to follow from when the backlog is empty. */
static xl_rc newest_id(const struct xl_cli_ctx *c, int64_t *id, struct xl_err *err)
{
    struct xl_buf url;
    json_t *root = NULL;
    xl_rc rc;

    *id = 0;
    xl_buf_init(&url, XL_CLI_MAX_URL);
    if ((rc = xl_cli_url_start(&url, c->args.server, "/api/v1/logs")) ||
        (rc = xl_cli_url_param(&url, "from", "0")) || (rc = xl_cli_url_param(&url, "limit", "1"))) {
        rc = xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
        goto out;
    }
    if ((rc = get_json(c, url.data, &root, err)) != XL_OK)
        goto out;
    *id =
        json_integer_value(json_object_get(json_array_get(json_object_get(root, "logs"), 0), "id"));
out:
    json_decref(root);
    xl_buf_cleanup(&url);
    return rc;
}

xl_rc xl_cli_logs_on_event(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                           struct xl_err *err)
{
    json_error_t jerr;
    json_t *doc;
    xl_rc rc = XL_OK;

    if (strcmp(ev->type, "log") != 0 && strcmp(ev->type, "dropped") != 0)
        return XL_OK; /* a kind of event this client does not know */
    if (strcmp(ev->type, "log") == 0 && c->args.json) {
        fwrite(ev->data, 1, ev->len, c->out);
        fputc('\n', c->out);
        return XL_OK;
    }
    if (!(doc = json_loadb(ev->data, ev->len, 0, &jerr)))
        return xl_err_set(err, XL_EPROTO, "the server sent a malformed %s event: %s", ev->type,
                          jerr.text);
    if (strcmp(ev->type, "log") == 0) {
        rc = xl_cli_logs_print_row(c, doc, err);
    } else {
        fflush(c->out);
        fprintf(c->err, "xluo: the server dropped %lld lines here: this client did not keep up\n",
                (long long)json_integer_value(json_object_get(doc, "count")));
    }
    json_decref(doc);
    return rc;
}

/* ---- follow ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
}

struct follow {
    const struct xl_cli_ctx *c;
    CURL *h;
    struct xl_sse sse;
    long status;
    struct xl_buf errbody;
    bool got_bytes; /* something came on this connection */
    xl_rc rc;       /* why we stopped the transfer ourselves */
    struct xl_err err;
};

static int follow_event(void *ctx, const struct xl_sse_event *ev)
{
    struct follow *f = ctx;

    f->rc = xl_cli_logs_on_event(f->c, ev, &f->err);
    return f->rc != XL_OK;
}

static size_t follow_data(char *p, size_t size, size_t n, void *ud)
{
    struct follow *f = ud;
    size_t len = size * n;
    xl_rc rc;

    if (!f->status)
        curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) {
        size_t room = f->errbody.max - f->errbody.len;

        xl_buf_add(&f->errbody, p, len < room ? len : room);
        return len;
    }
    f->got_bytes = true;
    rc = xl_sse_feed(&f->sse, p, len);
    if (rc == XL_ESTATE)
        return 0; /* f->rc and f->err say why */
    if (rc != XL_OK) {
        f->rc = xl_err_set(&f->err, rc, "the server sent an event of more than %u MiB",
                           XL_SSE_MAX_LINE >> 20);
        return 0;
    }
    if (fflush(f->c->out) != 0 || ferror(f->c->out)) {
        f->rc = xl_err_set(&f->err, XL_EIO, "cannot write the output");
        return 0;
    }
    return len;
}

static int follow_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    return interrupted ? 1 : 0;
}

/* One connection to the stream, until it ends. *retry says whether to
 * connect again (the connection failed or ended) or give up (an answer
 * that will not change, or an error of ours); err says what happened. */
static xl_rc stream_once(struct follow *f, const char *url, bool *retry, struct xl_err *err)
{
    const struct xl_cli_args *a = &f->c->args;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *tmp;
    char *auth = NULL, *last = NULL;
    json_t *root = NULL;
    CURLcode code;
    xl_rc rc = XL_OK;

    *retry = false;
    if (!(f->h = curl_easy_init()))
        return xl_err_set(err, XL_ENOMEM, "cannot start a transfer (curl_easy_init)");
    if (!(tmp = curl_slist_append(hdrs, "Accept: text/event-stream")))
        goto out_nomem;
    hdrs = tmp;
    if (a->token && *a->token) {
        if (!(auth = xl_asprintf("Authorization: Bearer %s", a->token)) ||
            !(tmp = curl_slist_append(hdrs, auth)))
            goto out_nomem;
        hdrs = tmp;
    }
    if (*xl_sse_last_id(&f->sse)) {
        if (!(last = xl_asprintf("Last-Event-ID: %s", xl_sse_last_id(&f->sse))) ||
            !(tmp = curl_slist_append(hdrs, last)))
            goto out_nomem;
        hdrs = tmp;
    }
    curl_easy_setopt(f->h, CURLOPT_URL, url);
    curl_easy_setopt(f->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(f->h, CURLOPT_USERAGENT, "xluo/" XL_VERSION);
    curl_easy_setopt(f->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(f->h, CURLOPT_WRITEFUNCTION, follow_data);
    curl_easy_setopt(f->h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(f->h, CURLOPT_XFERINFOFUNCTION, follow_progress);
    curl_easy_setopt(f->h, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(f->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(f->h, CURLOPT_CONNECTTIMEOUT_MS, (long)a->timeout_ms);
    /* No overall timeout: a stream is long. A silent one is dead. */
    curl_easy_setopt(f->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(f->h, CURLOPT_LOW_SPEED_TIME, (long)FOLLOW_IDLE_S);
    curl_easy_setopt(f->h, CURLOPT_TCP_KEEPALIVE, 1L);
    code = curl_easy_perform(f->h);
    if (interrupted)
        goto out;
    if (f->rc != XL_OK) {
        rc = f->rc;
        *err = f->err;
        goto out;
    }
    if (f->status && f->status != 200) {
        rc = xl_cli_decode(f->status, f->errbody.data, f->errbody.len, &root, err);
        if (rc == XL_OK) /* a 2xx other than 200: not a stream */
            rc = xl_err_set(err, XL_EPROTO, "the server answered HTTP %ld without a stream",
                            f->status);
        /* Overload (503 "too many streams", 429), a proxy whose server
         * restarts (502, 504), a passing failure (500): try again. */
        *retry = f->status == 429 || f->status == 500 || f->status == 502 ||
                 f->status == 503 || f->status == 504;
        goto out;
    }
    *retry = true;
    if (code == CURLE_OK)
        rc = xl_err_set(err, XL_ECONN, "the server closed the stream");
    else if (code == CURLE_OPERATION_TIMEDOUT && f->got_bytes)
        rc = xl_err_set(err, XL_ETIMEOUT, "the stream was silent for %ds", FOLLOW_IDLE_S);
    else
        rc = xl_err_set(err, XL_ECONN, "the stream from %s failed: %s", a->server,
                        errbuf[0] ? errbuf : curl_easy_strerror(code));
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    json_decref(root);
    if (auth) {
        memset(auth, 0, strlen(auth)); /* the token */
        xl_free(auth);
    }
    xl_free(last);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(f->h);
    f->h = NULL;
    return rc;
}

/* Sleep ms, or less when interrupted. */
static void pause_ms(int64_t ms)
{
    while (ms > 0 && !interrupted) {
        struct timespec ts = {0, 50 * 1000000L};

        if (ms < 50)
            ts.tv_nsec = (long)ms * 1000000L;
        nanosleep(&ts, NULL);
        ms -= 50;
    }
}

/* Print every new line from after since_id until Ctrl-C. Returns the exit
 * code. */
static int follow(const struct xl_cli_ctx *c, int64_t since_id)
{
    struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
    struct follow f = {.c = c};
    struct xl_err err = {0};
    struct xl_buf url;
    int64_t backoff = FOLLOW_BACKOFF_MIN_MS;
    char id[32], wait[32];
    bool retry;
    int code = XL_CLI_EXIT_OK;
    xl_rc rc;

    xl_buf_init(&url, XL_CLI_MAX_URL);
    xl_buf_init(&f.errbody, FOLLOW_ERRBODY_MAX);
    xl_sse_init(&f.sse, follow_event, &f);
    snprintf(id, sizeof(id), "%lld", (long long)since_id);
    if ((rc = xl_cli_logs_url(c, true, 0, 0, &url, &err)) != XL_OK ||
        (rc = xl_sse_set_id(&f.sse, id)) != XL_OK) {
        fprintf(c->err, "xluo: %s\n", rc == XL_ENOMEM ? "out of memory" : err.msg);
        code = XL_CLI_EXIT_FAIL;
        goto out;
    }
    interrupted = 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (;;) {
        f.status = 0;
        f.got_bytes = false;
        f.rc = XL_OK;
        xl_buf_reset(&f.errbody);
        xl_sse_reset(&f.sse);
        xl_err_clear(&err);
        rc = stream_once(&f, url.data, &retry, &err);
        fflush(c->out);
        if (interrupted)
            break;
        if (!retry) {
            fprintf(c->err, "xluo: %s\n", err.msg[0] ? err.msg : xl_rc_str(rc));
            code = xl_cli_exit_code(rc);
            break;
        }
        if (f.got_bytes)
            backoff = FOLLOW_BACKOFF_MIN_MS;
        xl_duration_fmt(backoff, wait, sizeof(wait));
        fprintf(c->err, "xluo: %s; reconnecting in %s\n", err.msg, wait);
        pause_ms(backoff);
        if (interrupted)
            break;
        backoff = backoff * 2 > FOLLOW_BACKOFF_MAX_MS ? FOLLOW_BACKOFF_MAX_MS : backoff * 2;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    xl_sse_cleanup(&f.sse);
    xl_buf_cleanup(&f.errbody);
    xl_buf_cleanup(&url);
    return code;
}

int xl_cli_logs_main(const struct xl_cli_ctx *c)
{
    const struct xl_cli_args *a = &c->args;
    struct xl_err err = {0};
    size_t n = a->follow ? LOGS_FOLLOW_DEFAULT_N : LOGS_DEFAULT_N;
    json_t *rows = NULL;
    int64_t max_id = 0;
    xl_rc rc = XL_OK;

    if (a->follow && a->to) {
        fprintf(c->err,
                "xluo: --to and --follow do not go together: following has no end\n"
                "usage: xluo %s\n",
                a->cmd->usage);
        return XL_CLI_EXIT_USAGE;
    }
    if (a->lines)
        n = (size_t)strtoull(a->lines, NULL, 10);
    if (!(rows = json_array())) {
        rc = xl_err_set(&err, XL_ENOMEM, "out of memory");
        goto out;
    }
    if (n > 0 && ((rc = search(c, n, rows, &err)) != XL_OK ||
                  (rc = print_rows(c, rows, &max_id, &err)) != XL_OK))
        goto out;
    if (!a->follow) {
        if (json_array_size(rows) == 0 && !a->json)
            fprintf(c->out, "no log lines\n");
        if (fflush(c->out) != 0 || ferror(c->out))
            rc = xl_err_set(&err, XL_EIO, "cannot write the output");
        goto out;
    }
    fflush(c->out);
    /* Follow from the last line shown, or from the newest stored line:
     * every line stored later comes, none twice. */
    if (max_id == 0 && (rc = newest_id(c, &max_id, &err)) != XL_OK)
        goto out;
    json_decref(rows);
    return follow(c, max_id);
out:
    if (rc != XL_OK)
        fprintf(c->err, "xluo: %s\n", err.msg[0] ? err.msg : xl_rc_str(rc));
    json_decref(rows);
    return xl_cli_exit_code(rc);
}
