/* xluo: following a Server-Sent Events stream of the server
 * (`xluo logs -f`, `xluo events -f`): one long GET, each event handed to
 * the command's callback, reconnection with backoff (and Last-Event-ID,
 * when the stream gives ids) until Ctrl-C. */
#include "cli.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "common/units.h"
#include "http.h"
#include "sse.h"

#define FOLLOW_BACKOFF_MIN_MS 500
#define FOLLOW_BACKOFF_MAX_MS 30000
#define FOLLOW_IDLE_S 45 /* the server pings every 15 s */
#define FOLLOW_ERRBODY_MAX (64u << 10)

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
}

struct follow {
    const struct xl_cli_ctx *c;
    xl_cli_event_fn on_event;
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

    f->rc = f->on_event(f->c, ev, &f->err);
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
        *retry = f->status == 429 || f->status == 500 || f->status == 502 || f->status == 503 ||
                 f->status == 504;
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

int xl_cli_follow(const struct xl_cli_ctx *c, const char *url, const char *last_id,
                  xl_cli_event_fn on_event)
{
    struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
    struct follow f = {.c = c, .on_event = on_event};
    struct xl_err err = {0};
    int64_t backoff = FOLLOW_BACKOFF_MIN_MS;
    char wait[32];
    bool retry;
    int code = XL_CLI_EXIT_OK;
    xl_rc rc;

    xl_buf_init(&f.errbody, FOLLOW_ERRBODY_MAX);
    xl_sse_init(&f.sse, follow_event, &f);
    if (last_id && *last_id && xl_sse_set_id(&f.sse, last_id) != XL_OK) {
        fprintf(c->err, "xluo: out of memory\n");
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
        rc = stream_once(&f, url, &retry, &err);
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
    return code;
}

xl_rc xl_cli_follow_record(const struct xl_cli_ctx *c, const struct xl_sse_event *ev,
                           const char *type, const char *what, xl_cli_print_fn print,
                           struct xl_err *err)
{
    json_error_t jerr;
    json_t *doc;
    xl_rc rc = XL_OK;

    if (strcmp(ev->type, type) != 0 && strcmp(ev->type, "dropped") != 0)
        return XL_OK; /* a kind of event this client does not know */
    if (strcmp(ev->type, type) == 0 && c->args.json) {
        fwrite(ev->data, 1, ev->len, c->out);
        fputc('\n', c->out);
        return XL_OK;
    }
    if (!(doc = json_loadb(ev->data, ev->len, 0, &jerr)))
        return xl_err_set(err, XL_EPROTO, "the server sent a malformed %s event: %s", ev->type,
                          jerr.text);
    if (strcmp(ev->type, type) == 0) {
        rc = print(c, doc, err);
    } else {
        fflush(c->out);
        fprintf(c->err, "xluo: the server dropped %lld %s here: this client did not keep up\n",
                (long long)json_integer_value(json_object_get(doc, "count")), what);
    }
    json_decref(doc);
    return rc;
}
