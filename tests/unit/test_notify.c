/* Unit tests: alert notifications (src/server/notify/).
 *
 * Real peers inside the test: an HTTP receiver (libmicrohttpd on 127.0.0.1,
 * a random port) whose behaviour is chosen by the path (answer, fail then
 * answer, refuse, hang, vendor error), and an SMTP sink (a thread speaking
 * enough SMTP, AUTH PLAIN and LOGIN included) that records the envelope and
 * the mail. Exec channels run small /bin/sh scripts in a temp dir. Every
 * wait has a deadline; retry backoffs are milliseconds. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/units.h"
#include "server/notify/notify.h"
#include "tmpdir_test_util.h"

#define T0 1767323045678LL /* 2026-01-02T03:04:05.678Z */
#define MAX_REC 32

/* ---- small helpers ---- */

/* strcpy that cuts at cap. */
static void scopy(char *d, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);

    memcpy(d, s, n);
    d[n] = '\0';
}

static int64_t now_ms(void)
{
    return xl_mono_ms();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static void write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

/* ---- reports ---- */

struct rec {
    char channel[64];
    uint64_t id;
    unsigned attempt;
    enum xl_notify_outcome outcome;
    bool final;
    int status;
    char error[256];
    char snippet[XL_NOTIFY_SNIPPET_MAX + 1];
    int64_t duration_ms, retry_in_ms;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rec r[MAX_REC];
    size_t n;
} reps = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_report(const struct xl_notify_report *r, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&reps.mu);
    if (reps.n < MAX_REC) {
        struct rec *x = &reps.r[reps.n++];

        scopy(x->channel, sizeof(x->channel), r->channel);
        x->id = r->notification_id;
        x->attempt = r->attempt;
        x->outcome = r->outcome;
        x->final = r->final;
        x->status = r->status;
        scopy(x->error, sizeof(x->error), r->error);
        memcpy(x->snippet, r->snippet, r->snippet_len);
        x->snippet[r->snippet_len] = '\0';
        x->duration_ms = r->duration_ms;
        x->retry_in_ms = r->retry_in_ms;
    }
    pthread_cond_broadcast(&reps.cv);
    pthread_mutex_unlock(&reps.mu);
}

/* Wait (at most ms) until n reports arrived; returns how many did. */
static void dump_reports(void)
{
    for (size_t i = 0; i < reps.n; i++)
        fprintf(stderr,
                "report %zu: %s attempt %u outcome %d final %d status %d error '%s' snippet '%s'\n",
                i, reps.r[i].channel, reps.r[i].attempt, reps.r[i].outcome, reps.r[i].final,
                reps.r[i].status, reps.r[i].error, reps.r[i].snippet);
}

static size_t wait_reports(size_t n, int ms)
{
    int64_t end = now_ms() + ms;
    size_t got;

    pthread_mutex_lock(&reps.mu);
    while (reps.n < n && now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&reps.cv, &reps.mu, &ts);
    }
    got = reps.n;
    if (got < n && ms > 0)
        dump_reports();
    pthread_mutex_unlock(&reps.mu);
    return got;
}

static void reports_reset(void)
{
    pthread_mutex_lock(&reps.mu);
    reps.n = 0;
    memset(reps.r, 0, sizeof(reps.r));
    pthread_mutex_unlock(&reps.mu);
}

/* ---- the HTTP receiver ---- */

struct hit {
    char path[64];
    char token[64]; /* the X-Token header */
    char ctype[64];
    char *body;
};

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct hit hits[MAX_REC];
    size_t n;
    int flaky_left; /* /flaky answers 500 this many times */
} http = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct upload {
    struct xl_buf b;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
                              const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    struct upload *u = *con_cls;
    const char *tok, *ct;
    struct hit *h;
    int flaky;

    (void)cls;
    (void)method;
    (void)version;
    if (!u) {
        u = calloc(1, sizeof(*u));
        xl_buf_init(&u->b, 1 << 20);
        *con_cls = u;
        return MHD_YES;
    }
    if (*size) {
        xl_buf_add(&u->b, data, *size);
        *size = 0;
        return MHD_YES;
    }
    tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Token");
    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&http.mu);
    flaky = http.flaky_left > 0 ? http.flaky_left-- : 0;
    if (http.n < MAX_REC) {
        h = &http.hits[http.n++];
        scopy(h->path, sizeof(h->path), url);
        scopy(h->token, sizeof(h->token), tok ? tok : "");
        scopy(h->ctype, sizeof(h->ctype), ct ? ct : "");
        h->body = strdup(u->b.data ? u->b.data : "");
    }
    pthread_mutex_unlock(&http.mu);
    if (!strcmp(url, "/flaky") && flaky)
        return answer(c, 500, "try later", NULL);
    if (!strcmp(url, "/bad"))
        return answer(c, 400, "{\"error\":\"bad payload\"}", NULL);
    if (!strcmp(url, "/busy"))
        return answer(c, 429, "slow down", "0");
    if (!strcmp(url, "/slow")) {
        sleep_ms(600); /* longer than the channel's timeout */
        return answer(c, 200, "late", NULL);
    }
    if (!strcmp(url, "/dingerr"))
        return answer(c, 200, "{\"errcode\":310000,\"errmsg\":\"keywords not in content\"}", NULL);
    if (!strcmp(url, "/dingfast"))
        return answer(c, 200, "{\"errcode\":130101,\"errmsg\":\"send too fast\"}", NULL);
    if (!strcmp(url, "/dingok"))
        return answer(c, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", NULL);
    return answer(c, 200, "ok", NULL);
}

static void on_http_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (u) {
        xl_buf_cleanup(&u->b);
        free(u);
    }
    *con_cls = NULL;
}

static void http_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    const union MHD_DaemonInfo *di;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    http.n = 0;
    http.flaky_left = 0;
    http.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                              NULL, NULL, on_http, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_NOTIFY_COMPLETED, on_http_done, NULL,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_END);
    assert_non_null(http.d);
    di = MHD_get_daemon_info(http.d, MHD_DAEMON_INFO_BIND_PORT);
    http.port = di->port;
    assert_true(http.port > 0);
}

static void http_stop(void)
{
    MHD_stop_daemon(http.d);
    for (size_t i = 0; i < http.n; i++)
        free(http.hits[i].body);
    http.n = 0;
}

/* ---- the SMTP sink ---- */

static struct {
    int lfd, port;
    pthread_t thr;
    atomic_bool stop;
    bool advertise_auth;
    pthread_mutex_t mu;
    char helo[128], from[128], rcpt[4][128], auth_mech[16], user[64], pass[64];
    size_t n_rcpt;
    char *data;
    int mails;
} smtp = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int b64val(int c)
{
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(t, c) : NULL;
    return p ? (int)(p - t) : -1;
}

/* Decode base64 s into out (NUL-terminated); returns the length. */
static size_t unb64(const char *s, char *out, size_t cap)
{
    unsigned v = 0;
    int bits = 0;
    size_t n = 0;

    for (; *s && *s != '='; s++) {
        int d = b64val(*s);
        if (d < 0)
            continue;
        v = v << 6 | (unsigned)d;
        bits += 6;
        if (bits >= 8 && n + 1 < cap) {
            bits -= 8;
            out[n++] = (char)(v >> bits & 0xff);
        }
    }
    out[n] = '\0';
    return n;
}

struct lr {
    int fd;
    char buf[8192];
    size_t len;
};

/* One CRLF line (without it) into line; false on EOF or timeout. */
static bool read_line(struct lr *r, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t n = (size_t)(nl - r->buf);
            size_t k = n && r->buf[n - 1] == '\r' ? n - 1 : n;
            if (k >= cap)
                k = cap - 1;
            memcpy(line, r->buf, k);
            line[k] = '\0';
            memmove(r->buf, nl + 1, r->len - n - 1);
            r->len -= n + 1;
            return true;
        }
        if (r->len == sizeof(r->buf))
            return false;
        ssize_t k = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
        if (k <= 0)
            return false;
        r->len += (size_t)k;
    }
}

static void say(int fd, const char *s)
{
    (void)!send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void smtp_session(int fd)
{
    struct lr r = {.fd = fd};
    char line[2048], tmp[256];
    struct xl_buf data;

    xl_buf_init(&data, 1 << 20);
    say(fd, "220 sink ESMTP\r\n");
    while (read_line(&r, line, sizeof(line))) {
        pthread_mutex_lock(&smtp.mu);
        if (!strncasecmp(line, "EHLO ", 5) || !strncasecmp(line, "HELO ", 5)) {
            scopy(smtp.helo, sizeof(smtp.helo), line + 5);
            say(fd, smtp.advertise_auth ? "250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                                        : "250-sink\r\n250 8BITMIME\r\n");
        } else if (!strncasecmp(line, "AUTH PLAIN", 10)) {
            const char *ir = line[10] == ' ' ? line + 11 : NULL;
            size_t n;
            snprintf(smtp.auth_mech, sizeof(smtp.auth_mech), "PLAIN");
            if (!ir) {
                say(fd, "334 \r\n");
                pthread_mutex_unlock(&smtp.mu);
                if (!read_line(&r, line, sizeof(line)))
                    break;
                pthread_mutex_lock(&smtp.mu);
                ir = line;
            }
            n = unb64(ir, tmp, sizeof(tmp)); /* authzid \0 user \0 pass */
            {
                const char *u = memchr(tmp, '\0', n);
                const char *p = u ? memchr(u + 1, '\0', n - (size_t)(u + 1 - tmp)) : NULL;
                scopy(smtp.user, sizeof(smtp.user), u ? u + 1 : "");
                scopy(smtp.pass, sizeof(smtp.pass), p ? p + 1 : "");
            }
            say(fd, "235 2.7.0 ok\r\n");
        } else if (!strncasecmp(line, "AUTH LOGIN", 10)) {
            snprintf(smtp.auth_mech, sizeof(smtp.auth_mech), "LOGIN");
            pthread_mutex_unlock(&smtp.mu);
            if (line[10] == ' ') {
                unb64(line + 11, tmp, sizeof(tmp));
            } else {
                say(fd, "334 VXNlcm5hbWU6\r\n");
                if (!read_line(&r, line, sizeof(line)))
                    break;
                unb64(line, tmp, sizeof(tmp));
            }
            pthread_mutex_lock(&smtp.mu);
            scopy(smtp.user, sizeof(smtp.user), tmp);
            pthread_mutex_unlock(&smtp.mu);
            say(fd, "334 UGFzc3dvcmQ6\r\n");
            if (!read_line(&r, line, sizeof(line)))
                break;
            pthread_mutex_lock(&smtp.mu);
            unb64(line, smtp.pass, sizeof(smtp.pass));
            say(fd, "235 2.7.0 ok\r\n");
        } else if (!strncasecmp(line, "MAIL FROM:", 10)) {
            scopy(smtp.from, sizeof(smtp.from), line + 10);
            smtp.n_rcpt = 0;
            say(fd, "250 ok\r\n");
        } else if (!strncasecmp(line, "RCPT TO:", 8)) {
            if (strstr(line, "reject@"))
                say(fd, "550 5.1.1 no such user\r\n");
            else if (strstr(line, "later@"))
                say(fd, "451 4.3.0 try later\r\n");
            else {
                if (smtp.n_rcpt < 4)
                    scopy(smtp.rcpt[smtp.n_rcpt++], sizeof(smtp.rcpt[0]), line + 8);
                say(fd, "250 ok\r\n");
            }
        } else if (!strcasecmp(line, "DATA")) {
            say(fd, "354 go ahead\r\n");
            pthread_mutex_unlock(&smtp.mu);
            xl_buf_reset(&data);
            while (read_line(&r, line, sizeof(line)) && strcmp(line, ".") != 0)
                xl_buf_printf(&data, "%s\n", line[0] == '.' ? line + 1 : line);
            pthread_mutex_lock(&smtp.mu);
            free(smtp.data);
            smtp.data = strdup(data.data ? data.data : "");
            smtp.mails++;
            say(fd, "250 queued\r\n");
        } else if (!strcasecmp(line, "QUIT")) {
            say(fd, "221 bye\r\n");
            pthread_mutex_unlock(&smtp.mu);
            break;
        } else {
            say(fd, "250 ok\r\n"); /* RSET, NOOP */
        }
        pthread_mutex_unlock(&smtp.mu);
    }
    xl_buf_cleanup(&data);
}

static void *smtp_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&smtp.stop)) {
        struct timeval tv = {5, 0};
        int fd = accept(smtp.lfd, NULL, NULL);

        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        smtp_session(fd);
        close(fd);
    }
    return NULL;
}

static void smtp_start(bool auth)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    struct timeval tv = {0, 100000};

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    smtp.advertise_auth = auth;
    atomic_store(&smtp.stop, false);
    smtp.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(smtp.lfd >= 0);
    assert_int_equal(bind(smtp.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(smtp.lfd, 8), 0);
    getsockname(smtp.lfd, (struct sockaddr *)&sa, &sl);
    smtp.port = ntohs(sa.sin_port);
    /* accept wakes up to see the stop flag */
    setsockopt(smtp.lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(pthread_create(&smtp.thr, NULL, smtp_main, NULL), 0);
}

static void smtp_stop(void)
{
    atomic_store(&smtp.stop, true);
    pthread_join(smtp.thr, NULL);
    close(smtp.lfd);
    free(smtp.data);
    smtp.data = NULL;
    smtp.mails = 0;
    smtp.n_rcpt = 0;
    smtp.user[0] = smtp.pass[0] = smtp.auth_mech[0] = smtp.from[0] = '\0';
}

/* ---- fixtures ---- */

/* The notification the body tests render: two alerts of one rule, one
 * firing and one resolved. */
static struct xl_notify_msg *sample_msg(void)
{
    struct xl_notify_msg *m = xl_notify_msg_new("rule=HighCPU");
    struct xl_notify_alert *a;

    assert_non_null(m);
    assert_int_equal(xl_kvlist_add(&m->group_labels, "alertname", "HighCPU"), XL_OK);
    assert_int_equal(xl_notify_msg_add(m, XL_NOTIFY_FIRING, "HighCPU", "critical", &a), XL_OK);
    a->fingerprint = 0x1234abcdULL;
    xl_kvlist_add(&a->labels, "host", "web1");
    xl_kvlist_add(&a->labels, "job", "node");
    xl_kvlist_add(&a->annotations, "summary", "CPU above 90% on web1");
    a->value = 93.5;
    a->starts_at = T0;
    a->generator_url = xl_strdup("http://xl/rules/HighCPU");
    assert_int_equal(xl_notify_msg_add(m, XL_NOTIFY_RESOLVED, "HighCPU", "critical", &a), XL_OK);
    a->fingerprint = 0xffULL;
    xl_kvlist_add(&a->labels, "host", "web2");
    xl_kvlist_add(&a->labels, "job", "node");
    xl_kvlist_add(&a->annotations, "summary", "CPU above 90% on web2");
    a->value = 12;
    a->starts_at = T0 - 600000;
    a->ends_at = T0 + 60000;
    return m;
}

/* A message with one firing alert of the given rule. */
static struct xl_notify_msg *one_msg(const char *rule)
{
    struct xl_notify_msg *m = xl_notify_msg_new(rule);
    struct xl_notify_alert *a;

    assert_int_equal(xl_notify_msg_add(m, XL_NOTIFY_FIRING, rule, "warning", &a), XL_OK);
    a->fingerprint = 42;
    a->starts_at = T0;
    a->value = 1;
    xl_kvlist_add(&a->labels, "host", "web1");
    xl_kvlist_add(&a->annotations, "summary", "disk almost full");
    return m;
}

struct nfx {
    struct xl_notify_cfg cfg;
    struct xl_notify *nf;
    char *dir;
};

/* Load yaml (printf format) as a notify config and start delivery. */
static void start(struct nfx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void start(struct nfx *f, const char *fmt, ...)
{
    char yaml[4096];
    struct xl_err err = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(yaml, sizeof(yaml), fmt, ap);
    va_end(ap);
    memset(&f->cfg, 0, sizeof(f->cfg));
    if (xl_cfg_load_buf(xl_notify_cfg_keys, &f->cfg, "notify.yaml", yaml, strlen(yaml), &err) !=
        XL_OK)
        fail_msg("config: %s", err.msg);
    if (xl_notify_new(&f->cfg, on_report, NULL, &f->nf, &err) != XL_OK)
        fail_msg("new: %s", err.msg);
}

static void stop(struct nfx *f)
{
    xl_notify_free(f->nf);
    f->nf = NULL;
    xl_cfg_cleanup(xl_notify_cfg_keys, &f->cfg);
}

/* Send m to the channel called name. */
static xl_rc send_to(struct nfx *f, struct xl_notify_msg *m, const char *name)
{
    long i = xl_notify_channel_find(&f->cfg, name);
    size_t idx = (size_t)i;

    assert_true(i >= 0);
    return xl_notify_send(f->nf, m, &idx, 1, NULL);
}

static int setup(void **state)
{
    struct nfx *f = calloc(1, sizeof(*f));
    void *dir = NULL;

    if (tmpdir_setup(&dir, "/tmp/xl_notify_XXXXXX") != 0)
        return -1;
    f->dir = dir;
    *state = f;
    reports_reset();
    http_start();
    return 0;
}

static int teardown(void **state)
{
    struct nfx *f = *state;
    void *dir = f->dir;

    if (f->nf)
        stop(f);
    http_stop();
    tmpdir_teardown(&dir);
    free(f);
    return 0;
}

static const struct xl_notify_channel_cfg *chan(struct nfx *f, const char *name)
{
    long i = xl_notify_channel_find(&f->cfg, name);
    assert_true(i >= 0);
    return &((const struct xl_notify_channel_cfg *)f->cfg.channels.items)[i];
}

/* ---- configuration ---- */

static void test_config_load(void **state)
{
    struct xl_notify_cfg cfg = {0};
    struct xl_err err = {0};
    const struct xl_notify_channel_cfg *c;
    const struct xl_notify_route_cfg *r;
    static const char yaml[] =
        "channels:\n"
        "  - {name: hook, type: webhook, url: 'http://127.0.0.1:1/x', headers: {X-Token: s3},\n"
        "     format: slack, timeout: 2s, max_attempts: 3, backoff: 10ms, backoff_max: 1s}\n"
        "  - name: mail\n"
        "    type: email\n"
        "    smtp: smtp://mail.example:587\n"
        "    starttls: true\n"
        "    username: u\n"
        "    password: p\n"
        "    from: 'Alerts <alerts@example.com>'\n"
        "    to: [ops@example.com, dev@example.com]\n"
        "  - {name: run, type: exec, command: [/usr/local/bin/my_sender, --json]}\n"
        "routes:\n"
        "  - {match: {severity: critical}, channels: [hook, mail], continue: true}\n"
        "  - {channels: [run]}\n"
        "queue_size: 10\n";

    (void)state;
    if (xl_cfg_load_buf(xl_notify_cfg_keys, &cfg, "notify.yaml", yaml, strlen(yaml), &err))
        fail_msg("%s", err.msg);
    assert_int_equal(xl_notify_cfg_check(&cfg, &err), XL_OK);
    assert_int_equal(cfg.channels.n, 3);
    c = cfg.channels.items;
    assert_string_equal(c[0].format, "slack");
    assert_int_equal(c[0].timeout, 2000);
    assert_int_equal(c[0].backoff, 10);
    assert_int_equal(c[0].max_attempts, 3);
    assert_string_equal(xl_notify_kv_get(&c[0].headers, "X-Token"), "s3");
    assert_true(c[1].starttls);
    assert_int_equal(c[1].to.n, 2);
    assert_int_equal(c[1].max_attempts, 5); /* default */
    assert_int_equal(c[1].backoff, 1000);
    assert_true(c[1].send_resolved);
    assert_int_equal(c[2].command.n, 2);
    r = cfg.routes.items;
    assert_int_equal(cfg.routes.n, 2);
    assert_true(r[0].cont);
    assert_false(r[1].cont);
    assert_int_equal(cfg.queue_size, 10);
    assert_int_equal(cfg.workers, 2);
    xl_cfg_cleanup(xl_notify_cfg_keys, &cfg);
    {
        /* The reference documentation prints every key. */
        char *doc = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&doc, &len);
        xl_cfg_doc(xl_notify_cfg_keys, fp, 0);
        fclose(fp);
        assert_non_null(strstr(doc, "send_resolved: true"));
        assert_non_null(strstr(doc, "format: generic"));
        free(doc);
    }
}

static void test_config_errors(void **state)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"channels:\n  - {name: a, type: webhook, url: 'http://x', color: red}\n",
         "notify.yaml:2: unknown key 'channels[0].color'"},
        {"channels:\n  - {name: a, type: pager}\n",
         "notify.yaml:2: channels[0].type: 'pager' is not one of"},
        {"channels:\n  - name: a\n    type: webhook\n    timeout: 5\n",
         "notify.yaml:4: channels[0].timeout: expected a duration"},
        {"channels:\n  - {name: a, type: webhook, max_attempts: 0, url: 'http://x'}\n",
         "notify.yaml:2: channels[0].max_attempts: '0' is out of range"},
        {"channels:\n  - {name: a, type: webhook}\n",
         "notify.yaml:2: channels: channel 'a': a webhook needs 'url'"},
        {"channels:\n  - {name: a, type: webhook, url: 'ftp://x'}\n",
         "must start with http:// or https://"},
        {"channels:\n  - {name: a, type: email, smtp: 'smtp://x:25', to: [b@c]}\n",
         "an email channel needs 'from'"},
        {"channels:\n  - {name: a, type: email, smtp: 'http://x', from: a@b, to: b@c}\n",
         "must start with smtp:// or smtps://"},
        {"channels:\n  - {name: a, type: exec}\n", "an exec channel needs 'command'"},
        {"channels:\n  - {name: a, type: exec, command: [x], url: 'http://x'}\n",
         "'url' does not apply to type exec"},
        {"channels:\n  - {name: a, type: webhook, url: 'http://x', to: [b@c]}\n",
         "'to' does not apply to type webhook"},
        {"channels:\n  - {type: exec, command: [x]}\n", "channels[0]: 'name' is required"},
        {"\n\nchannels:\n  - {name: a, type: exec, command: [x]}\n  - {name: a, type: exec, "
         "command: [y]}\n",
         "notify.yaml:4: channels: channel name 'a' is used twice"},
        {"channels:\n  - {name: a, type: exec, command: [x], backoff: 2s, backoff_max: 1s}\n",
         "backoff_max is shorter than backoff"},
        {"routes:\n  - {match: {host: '=~web.*'}, channels: [a]}\n",
         "notify.yaml:2: routes[0].match: 'host: =~web.*': regular expressions are not supported"},
        {"routes:\n  - {channels: []}\n",
         "notify.yaml:2: routes[0].channels: a route needs at least one channel"},
        {"queue_size: 0\n", "notify.yaml:1: queue_size: '0' is out of range"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_notify_cfg cfg = {0};
        struct xl_err err = {0};
        xl_rc rc = xl_cfg_load_buf(xl_notify_cfg_keys, &cfg, "notify.yaml", cases[i].yaml,
                                   strlen(cases[i].yaml), &err);

        if (rc == XL_OK)
            fail_msg("case %zu loaded; want '%s'", i, cases[i].want);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, cases[i].want);
        xl_cfg_cleanup(xl_notify_cfg_keys, &cfg);
    }
    {
        /* Across sections: a route naming an unknown channel. */
        static const char yaml[] = "channels:\n  - {name: a, type: exec, command: [x]}\n"
                                   "routes:\n  - {channels: [a]}\n  - {channels: [b]}\n";
        static const char yaml2[] = "channels:\n  - {name: a, type: exec, command: [x]}\n"
                                    "routes:\n  - {match: {host: web}}\n";
        struct xl_notify_cfg cfg = {0};
        struct xl_err err = {0};
        struct xl_notify *nf = NULL;

        assert_int_equal(
            xl_cfg_load_buf(xl_notify_cfg_keys, &cfg, "n.yaml", yaml, strlen(yaml), &err), XL_OK);
        assert_int_equal(xl_notify_cfg_check(&cfg, &err), XL_EINVAL);
        assert_string_equal(err.msg, "notify.routes[1]: unknown channel 'b'");
        assert_int_equal(xl_notify_new(&cfg, NULL, NULL, &nf, &err), XL_EINVAL);
        assert_null(nf);
        xl_cfg_cleanup(xl_notify_cfg_keys, &cfg);
        /* A route without the channels key. */
        assert_int_equal(
            xl_cfg_load_buf(xl_notify_cfg_keys, &cfg, "n.yaml", yaml2, strlen(yaml2), &err), XL_OK);
        assert_int_equal(xl_notify_cfg_check(&cfg, &err), XL_EINVAL);
        assert_string_equal(err.msg, "notify.routes[0]: a route needs at least one channel");
        xl_cfg_cleanup(xl_notify_cfg_keys, &cfg);
    }
}

/* ---- routing ---- */

static void test_route(void **state)
{
    static const char yaml[] =
        "channels:\n"
        "  - {name: pager, type: exec, command: [x]}\n"
        "  - {name: chat, type: exec, command: [x]}\n"
        "  - {name: mail, type: exec, command: [x]}\n"
        "  - {name: bang, type: exec, command: [x]}\n"
        "routes:\n"
        "  - {match: {severity: critical, env: prod}, channels: [pager, chat], continue: true}\n"
        "  - {match: {team: '==!=db'}, channels: [bang]}\n"
        "  - {match: {team: '!=db'}, channels: [chat, mail]}\n"
        "  - {channels: [mail]}\n";
    struct xl_notify_cfg cfg = {0};
    struct xl_kvlist l = {0};
    struct xl_err err = {0};
    size_t out[8], n;

    (void)state;
    assert_int_equal(xl_cfg_load_buf(xl_notify_cfg_keys, &cfg, "n.yaml", yaml, strlen(yaml), &err),
                     XL_OK);
    /* critical prod, team absent: route 0 (continue), route 1 ("" != db). */
    xl_kvlist_add(&l, "severity", "critical");
    xl_kvlist_add(&l, "env", "prod");
    n = xl_notify_route(&cfg, &l, out, 8);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 2);
    /* The cap is respected. */
    assert_int_equal(xl_notify_route(&cfg, &l, out, 2), 2);
    xl_kvlist_add(&l, "team", "db"); /* route 2 fails now; route 1 wants "!=db" literally */
    free(l.v[0]);
    l.v[0] = strdup("warning"); /* route 0 fails */
    n = xl_notify_route(&cfg, &l, out, 8);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 2); /* the catch-all */
    free(l.v[2]);
    l.v[2] = strdup("!=db");
    n = xl_notify_route(&cfg, &l, out, 8);
    assert_int_equal(n, 1); /* '==!=db' is equality with "!=db" */
    assert_int_equal(out[0], 3);
    for (size_t i = 0; i < l.n; i++) {
        free(l.k[i]);
        free(l.v[i]);
    }
    free(l.k);
    free(l.v);
    assert_int_equal(xl_notify_channel_find(&cfg, "bang"), 3);
    assert_int_equal(xl_notify_channel_find(&cfg, "nope"), -1);
    xl_cfg_cleanup(xl_notify_cfg_keys, &cfg);
}

/* ---- bodies ---- */

static const struct xl_notify_channel_cfg render_ch = {
    .name = "ops", .format = "generic", .max_alerts = 20, .send_resolved = true};

static void check_body(const char *format, const char *want)
{
    struct xl_notify_channel_cfg ch = render_ch;
    struct xl_notify_msg *m = sample_msg();
    struct xl_buf b;

    ch.format = (char *)format;
    xl_buf_init(&b, 1 << 20);
    assert_int_equal(xl_notify_render_body(&ch, m, &b), XL_OK);
    if (strcmp(b.data, want) != 0)
        fail_msg("%s body:\n got %s\nwant %s", format, b.data, want);
    xl_buf_cleanup(&b);
    xl_notify_msg_unref(m);
}

static void test_body_generic(void **state)
{
    (void)state;
    check_body(
        "generic",
        "{\"version\":\"1\",\"groupKey\":\"rule=HighCPU\",\"truncatedAlerts\":0,"
        "\"status\":\"firing\",\"receiver\":\"ops\",\"groupLabels\":{\"alertname\":\"HighCPU\"},"
        "\"commonLabels\":{\"alertname\":\"HighCPU\",\"severity\":\"critical\",\"job\":\"node\"},"
        "\"commonAnnotations\":{},"
        "\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighCPU\","
        "\"severity\":\"critical\",\"host\":\"web1\",\"job\":\"node\"},"
        "\"annotations\":{\"summary\":\"CPU above 90% on web1\"},"
        "\"startsAt\":\"2026-01-02T03:04:05.678Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"http://xl/rules/HighCPU\",\"fingerprint\":\"000000001234abcd\","
        "\"value\":93.5},"
        "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"HighCPU\",\"severity\":\"critical\","
        "\"host\":\"web2\",\"job\":\"node\"},\"annotations\":{\"summary\":\"CPU above 90% on "
        "web2\"},"
        "\"startsAt\":\"2026-01-02T02:54:05.678Z\",\"endsAt\":\"2026-01-02T03:05:05.678Z\","
        "\"generatorURL\":\"\",\"fingerprint\":\"00000000000000ff\",\"value\":12.0}]}");
}

static void test_body_slack(void **state)
{
    (void)state;
    check_body(
        "slack",
        "{\"text\":\"[FIRING:1] HighCPU\",\"attachments\":["
        "{\"color\":\"danger\",\"title\":\"[FIRING] HighCPU (critical)\","
        "\"title_link\":\"http://xl/rules/HighCPU\",\"fallback\":\"[FIRING] HighCPU (critical)\","
        "\"text\":\"*summary:* CPU above 90% on web1\\n*value:* 93.5\\n"
        "*labels:* host=web1, job=node\\n*started:* 2026-01-02T03:04:05Z\\n"
        "*source:* http://xl/rules/HighCPU\",\"ts\":1767323045},"
        "{\"color\":\"good\",\"title\":\"[RESOLVED] HighCPU (critical)\","
        "\"fallback\":\"[RESOLVED] HighCPU (critical)\","
        "\"text\":\"*summary:* CPU above 90% on web2\\n*value:* 12\\n"
        "*labels:* host=web2, job=node\\n*started:* 2026-01-02T02:54:05Z\\n"
        "*ended:* 2026-01-02T03:05:05Z\",\"ts\":1767322445}]}");
}

static void test_body_dingtalk(void **state)
{
    (void)state;
    check_body(
        "dingtalk",
        "{\"msgtype\":\"markdown\",\"markdown\":{\"title\":\"[FIRING:1] HighCPU\","
        "\"text\":\"### [FIRING:1] HighCPU\\n\\n"
        "#### [FIRING] HighCPU (critical)\\n- summary: CPU above 90% on web1\\n- value: 93.5\\n"
        "- labels: host=web1, job=node\\n- started: 2026-01-02T03:04:05Z\\n"
        "- source: http://xl/rules/HighCPU\\n\\n"
        "#### [RESOLVED] HighCPU (critical)\\n- summary: CPU above 90% on web2\\n- value: 12\\n"
        "- labels: host=web2, job=node\\n- started: 2026-01-02T02:54:05Z\\n"
        "- ended: 2026-01-02T03:05:05Z\\n\"}}");
}

static void test_body_wecom(void **state)
{
    (void)state;
    check_body("wecom",
               "{\"msgtype\":\"markdown\",\"markdown\":{\"content\":\"### [FIRING:1] HighCPU\\n\\n"
               "**HighCPU** <font color=\\\"warning\\\">FIRING</font> critical\\n"
               "> summary: CPU above 90% on web1\\n> value: 93.5\\n> labels: host=web1, job=node\\n"
               "> started: 2026-01-02T03:04:05Z\\n> source: http://xl/rules/HighCPU\\n\\n"
               "**HighCPU** <font color=\\\"info\\\">RESOLVED</font> critical\\n"
               "> summary: CPU above 90% on web2\\n> value: 12\\n> labels: host=web2, job=node\\n"
               "> started: 2026-01-02T02:54:05Z\\n> ended: 2026-01-02T03:05:05Z\\n\"}}");
}

static void test_body_feishu(void **state)
{
    (void)state;
    check_body("feishu",
               "{\"msg_type\":\"text\",\"content\":{\"text\":\"[FIRING:1] HighCPU\\n\\n"
               "[FIRING] HighCPU (critical)\\n  summary: CPU above 90% on web1\\n  value: 93.5\\n"
               "  labels: host=web1, job=node\\n  started: 2026-01-02T03:04:05Z\\n"
               "  source: http://xl/rules/HighCPU\\n\\n"
               "[RESOLVED] HighCPU (critical)\\n  summary: CPU above 90% on web2\\n  value: 12\\n"
               "  labels: host=web2, job=node\\n  started: 2026-01-02T02:54:05Z\\n"
               "  ended: 2026-01-02T03:05:05Z\\n\"}}");
    check_body("feishu_card",
               "{\"msg_type\":\"interactive\",\"card\":{\"config\":{\"wide_screen_mode\":true},"
               "\"header\":{\"title\":{\"tag\":\"plain_text\",\"content\":\"[FIRING:1] HighCPU\"},"
               "\"template\":\"red\"},\"elements\":[{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\","
               "\"content\":\"**[FIRING] HighCPU** (critical)\\nsummary: CPU above 90% on web1\\n"
               "value: 93.5\\nlabels: host=web1, job=node\\nstarted: 2026-01-02T03:04:05Z\\n"
               "source: http://xl/rules/HighCPU\\n\\n"
               "**[RESOLVED] HighCPU** (critical)\\nsummary: CPU above 90% on web2\\nvalue: 12\\n"
               "labels: host=web2, job=node\\nstarted: 2026-01-02T02:54:05Z\\n"
               "ended: 2026-01-02T03:05:05Z\\n\"}}]}}");
}

/* max_alerts, send_resolved and the limits of each vendor. */
static void test_body_limits(void **state)
{
    struct xl_notify_channel_cfg ch = render_ch;
    struct xl_notify_msg *m = xl_notify_msg_new("g");
    struct xl_notify_alert *a;
    struct xl_buf b;

    (void)state;
    xl_buf_init(&b, 1 << 20);
    for (int i = 0; i < 30; i++) {
        char host[64];
        snprintf(host, sizeof(host), "host-%02d-%s", i, "padding-padding-padding-padding");
        assert_int_equal(xl_notify_msg_add(m, i < 25 ? XL_NOTIFY_FIRING : XL_NOTIFY_RESOLVED,
                                           "DiskFull", "warning", &a),
                         XL_OK);
        xl_kvlist_add(&a->labels, "host", host);
        xl_kvlist_add(&a->annotations, "description",
                         "the disk is almost full; clean up or grow it: 注意");
        a->starts_at = T0;
    }
    ch.max_alerts = 5;
    assert_int_equal(xl_notify_render_generic(&ch, m, &b), XL_OK);
    assert_non_null(strstr(b.data, "\"truncatedAlerts\":25,"));
    xl_buf_reset(&b);
    ch.send_resolved = false;
    assert_int_equal(xl_notify_render_text(&ch, m, &b), XL_OK);
    assert_non_null(strstr(b.data, "[FIRING:25] DiskFull\n"));
    assert_non_null(strstr(b.data, "... and 20 more\n")); /* the 5 resolved are not counted */
    assert_null(strstr(b.data, "RESOLVED"));
    xl_buf_reset(&b);
    ch.max_alerts = 1000;
    ch.send_resolved = true;
    ch.format = "wecom";
    assert_int_equal(xl_notify_render_body(&ch, m, &b), XL_OK);
    {
        json_t *j = json_loads(b.data, 0, NULL); /* still valid JSON (UTF-8 cut cleanly) */
        const char *content;
        assert_non_null(j);
        content = json_string_value(json_object_get(json_object_get(j, "markdown"), "content"));
        assert_non_null(content);
        assert_true(strlen(content) <= 4096);
        assert_true(strlen(content) > 4000);
        json_decref(j);
    }
    xl_buf_reset(&b);
    /* Subject of a mail: the resolved count when nothing fires. */
    for (size_t i = 0; i < m->n_alerts; i++)
        m->alerts[i].status = XL_NOTIFY_RESOLVED;
    assert_int_equal(xl_notify_render_subject(m, &b), XL_OK);
    assert_string_equal(b.data, "[RESOLVED:30] DiskFull");
    xl_buf_cleanup(&b);
    xl_notify_msg_unref(m);
}

/* ---- webhook delivery ---- */

static void test_webhook_ok(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = sample_msg();
    struct xl_buf want;

    start(f,
          "channels:\n"
          "  - {name: hook, type: webhook, url: 'http://127.0.0.1:%d/hook',"
          " headers: {X-Token: s3cret}}\n",
          http.port);
    assert_int_equal(send_to(f, m, "hook"), XL_OK);
    assert_int_equal(wait_reports(1, 3000), 1);
    assert_int_equal(reps.r[0].outcome, XL_NOTIFY_OK);
    assert_true(reps.r[0].final);
    assert_int_equal(reps.r[0].attempt, 1);
    assert_int_equal(reps.r[0].status, 200);
    assert_string_equal(reps.r[0].snippet, "ok");
    assert_string_equal(reps.r[0].channel, "hook");
    assert_int_equal(reps.r[0].id, 1);
    assert_int_equal(m->id, 1);
    pthread_mutex_lock(&http.mu);
    assert_int_equal(http.n, 1);
    assert_string_equal(http.hits[0].path, "/hook");
    assert_string_equal(http.hits[0].token, "s3cret");
    assert_string_equal(http.hits[0].ctype, "application/json");
    xl_buf_init(&want, 1 << 20);
    assert_int_equal(xl_notify_render_generic(chan(f, "hook"), m, &want), XL_OK);
    assert_string_equal(http.hits[0].body, want.data);
    xl_buf_cleanup(&want);
    pthread_mutex_unlock(&http.mu);
    xl_notify_msg_unref(m);
    stop(f);
}

static void test_webhook_retry(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = one_msg("Flaky");

    http.flaky_left = 2;
    start(f,
          "channels:\n"
          "  - {name: hook, type: webhook, url: 'http://127.0.0.1:%d/flaky',"
          " backoff: 20ms, backoff_max: 30ms, max_attempts: 5}\n",
          http.port);
    assert_int_equal(send_to(f, m, "hook"), XL_OK);
    xl_notify_msg_unref(m); /* the queue holds its own reference */
    assert_int_equal(wait_reports(3, 3000), 3);
    assert_int_equal(reps.r[0].outcome, XL_NOTIFY_TRANSIENT);
    assert_false(reps.r[0].final);
    assert_int_equal(reps.r[0].status, 500);
    assert_string_equal(reps.r[0].snippet, "try later");
    assert_string_equal(reps.r[0].error, "HTTP 500");
    assert_int_equal(reps.r[0].retry_in_ms, 20);
    assert_int_equal(reps.r[1].attempt, 2);
    assert_int_equal(reps.r[1].retry_in_ms, 30); /* 40, capped */
    assert_int_equal(reps.r[2].attempt, 3);
    assert_int_equal(reps.r[2].outcome, XL_NOTIFY_OK);
    assert_true(reps.r[2].final);
    assert_int_equal(http.n, 3);
    stop(f);
}

static void test_webhook_permanent(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = one_msg("Bad");

    start(
        f,
        "channels:\n"
        "  - {name: bad, type: webhook, url: 'http://127.0.0.1:%d/bad', backoff: 10ms}\n"
        "  - {name: ding, type: webhook, format: dingtalk, url: 'http://127.0.0.1:%d/dingerr',"
        " backoff: 10ms}\n"
        "  - {name: dingok, type: webhook, format: dingtalk, url: 'http://127.0.0.1:%d/dingok'}\n",
        http.port, http.port, http.port);
    assert_int_equal(send_to(f, m, "bad"), XL_OK);
    assert_int_equal(wait_reports(1, 3000), 1);
    assert_int_equal(reps.r[0].outcome, XL_NOTIFY_PERMANENT);
    assert_true(reps.r[0].final);
    assert_int_equal(reps.r[0].status, 400);
    assert_string_equal(reps.r[0].snippet, "{\"error\":\"bad payload\"}");
    assert_int_equal(send_to(f, m, "ding"), XL_OK);
    assert_int_equal(wait_reports(2, 3000), 2);
    assert_int_equal(reps.r[1].outcome, XL_NOTIFY_PERMANENT);
    assert_int_equal(reps.r[1].status, 200);
    assert_string_equal(reps.r[1].error, "dingtalk answered error 310000: keywords not in content");
    assert_int_equal(send_to(f, m, "dingok"), XL_OK);
    assert_int_equal(wait_reports(3, 3000), 3);
    assert_int_equal(reps.r[2].outcome, XL_NOTIFY_OK);
    sleep_ms(50); /* nothing is retried */
    assert_int_equal(wait_reports(4, 0), 3);
    assert_int_equal(http.n, 3);
    xl_notify_msg_unref(m);
    stop(f);
}

static void test_webhook_transient_kinds(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = one_msg("Kinds");
    int64_t t0;

    start(f,
          "workers: 3\n"
          "channels:\n"
          "  - {name: slow, type: webhook, url: 'http://127.0.0.1:%d/slow', timeout: 100ms,"
          " max_attempts: 2, backoff: 10ms}\n"
          "  - {name: busy, type: webhook, url: 'http://127.0.0.1:%d/busy', max_attempts: 1}\n"
          "  - {name: fast, type: webhook, format: dingtalk,"
          " url: 'http://127.0.0.1:%d/dingfast', max_attempts: 1}\n"
          "  - {name: refused, type: webhook, url: 'http://127.0.0.1:1/x', max_attempts: 1}\n",
          http.port, http.port, http.port);
    t0 = now_ms();
    assert_int_equal(send_to(f, m, "slow"), XL_OK);
    assert_int_equal(send_to(f, m, "busy"), XL_OK);
    assert_int_equal(send_to(f, m, "fast"), XL_OK);
    assert_int_equal(send_to(f, m, "refused"), XL_OK);
    assert_int_equal(wait_reports(5, 4000), 5);
    assert_true(now_ms() - t0 < 2000);
    for (size_t i = 0; i < 5; i++) {
        struct rec *r = &reps.r[i];

        assert_int_equal(r->outcome, XL_NOTIFY_TRANSIENT);
        if (!strcmp(r->channel, "slow")) {
            assert_string_equal(r->error, "no answer within 100 ms");
            assert_true(r->duration_ms >= 90 && r->duration_ms < 1000);
            assert_true(r->final == (r->attempt == 2));
        } else if (!strcmp(r->channel, "busy")) {
            assert_int_equal(r->status, 429);
            assert_true(r->final); /* max_attempts 1 */
        } else if (!strcmp(r->channel, "fast")) {
            assert_non_null(strstr(r->error, "130101"));
        } else {
            assert_string_equal(r->channel, "refused");
            assert_int_equal(r->status, 0);
            assert_true(r->error[0] != '\0');
        }
    }
    xl_notify_msg_unref(m);
    stop(f);
}

/* ---- exec ---- */

static void test_exec(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = sample_msg();
    char save[256], fail[256], hang[256], out[256];
    struct xl_buf want;
    char *got;
    int64_t t0;

    snprintf(save, sizeof(save), "%s/save.sh", f->dir);
    snprintf(fail, sizeof(fail), "%s/fail.sh", f->dir);
    snprintf(hang, sizeof(hang), "%s/hang.sh", f->dir);
    snprintf(out, sizeof(out), "%s/stdin.json", f->dir);
    write_script(save, "cat > \"$1\"; echo delivered");
    write_script(fail, "echo 'smtp relay down' >&2; exit 3");
    write_script(hang, "sleep 30");
    start(f,
          "workers: 3\n"
          "channels:\n"
          "  - {name: save, type: exec, command: [%s, %s]}\n"
          "  - {name: fail, type: exec, command: [%s], backoff: 10ms, max_attempts: 3}\n"
          "  - {name: hang, type: exec, command: [%s], timeout: 200ms, max_attempts: 1}\n"
          "  - {name: nope, type: exec, command: [%s/missing]}\n",
          save, out, fail, hang, f->dir);
    t0 = now_ms();
    assert_int_equal(send_to(f, m, "save"), XL_OK);
    assert_int_equal(send_to(f, m, "fail"), XL_OK);
    assert_int_equal(send_to(f, m, "hang"), XL_OK);
    assert_int_equal(send_to(f, m, "nope"), XL_OK);
    assert_int_equal(wait_reports(6, 5000), 6);
    assert_true(now_ms() - t0 < 3000);
    for (size_t i = 0, fails = 0; i < 6; i++) {
        struct rec *r = &reps.r[i];

        if (!strcmp(r->channel, "save")) {
            assert_int_equal(r->outcome, XL_NOTIFY_OK);
            assert_int_equal(r->status, 0);
            assert_string_equal(r->snippet, "delivered\n");
        } else if (!strcmp(r->channel, "fail")) {
            assert_int_equal(r->outcome, XL_NOTIFY_TRANSIENT);
            assert_int_equal(r->status, 3);
            assert_int_equal(r->attempt, ++fails);
            assert_true(r->final == (fails == 3));
            assert_string_equal(r->error, "exited with status 3");
            assert_string_equal(r->snippet, "smtp relay down\n");
        } else if (!strcmp(r->channel, "hang")) {
            assert_int_equal(r->outcome, XL_NOTIFY_TRANSIENT);
            assert_true(r->final);
            assert_string_equal(r->error, "timed out after 200 ms: process group killed");
            assert_true(r->duration_ms >= 190 && r->duration_ms < 1500);
        } else {
            assert_string_equal(r->channel, "nope");
            assert_int_equal(r->outcome, XL_NOTIFY_PERMANENT);
            assert_non_null(strstr(r->error, "No such file"));
        }
    }
    got = read_file(out);
    assert_non_null(got);
    xl_buf_init(&want, 1 << 20);
    assert_int_equal(xl_notify_render_generic(chan(f, "save"), m, &want), XL_OK);
    assert_string_equal(got, want.data);
    xl_buf_cleanup(&want);
    free(got);
    xl_notify_msg_unref(m);
    stop(f);
}

/* A command that exits without reading a large stdin (EPIPE, no SIGPIPE)
 * and one that prints more than the snippet keeps. */
static void test_exec_pipes(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = xl_notify_msg_new("big");
    struct xl_notify_alert *a;
    char quick[256], chatty[256];

    for (int i = 0; i < 2000; i++) {
        xl_notify_msg_add(m, XL_NOTIFY_FIRING, "Big", NULL, &a);
        xl_kvlist_add(&a->annotations, "description",
                         "a long annotation so that stdin is more than a pipe holds ....");
    }
    snprintf(quick, sizeof(quick), "%s/quick.sh", f->dir);
    snprintf(chatty, sizeof(chatty), "%s/chatty.sh", f->dir);
    write_script(quick, "exit 0");
    write_script(chatty,
                 "cat >/dev/null; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done");
    start(f,
          "channels:\n"
          "  - {name: quick, type: exec, command: [%s], max_alerts: 1000}\n"
          "  - {name: chatty, type: exec, command: [%s], max_alerts: 1000}\n",
          quick, chatty);
    assert_int_equal(send_to(f, m, "quick"), XL_OK);
    assert_int_equal(send_to(f, m, "chatty"), XL_OK);
    assert_int_equal(wait_reports(2, 5000), 2);
    for (size_t i = 0; i < 2; i++) {
        struct rec *r = &reps.r[i];

        assert_int_equal(r->outcome, XL_NOTIFY_OK);
        if (!strcmp(r->channel, "chatty")) {
            size_t n = strlen(r->snippet);
            assert_int_equal(n, XL_NOTIFY_SNIPPET_MAX);
            assert_string_equal(r->snippet + n - 9, "line-299\n"); /* the tail */
        }
    }
    xl_notify_msg_unref(m);
    stop(f);
}

/* ---- queue, drain, resolved ---- */

static void test_queue_bound_and_drop(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = one_msg("Q");
    char hang[256];
    size_t idx[2];
    struct xl_err err = {0};
    int64_t t0;
    size_t dropped = 0;

    snprintf(hang, sizeof(hang), "%s/hang.sh", f->dir);
    write_script(hang, "sleep 30");
    start(f,
          "queue_size: 3\nworkers: 1\ndrain_timeout: 100ms\n"
          "channels:\n"
          "  - {name: a, type: exec, command: [%s], timeout: 5m}\n"
          "  - {name: b, type: exec, command: [%s], timeout: 5m}\n",
          hang, hang);
    idx[0] = 0;
    idx[1] = 1;
    assert_int_equal(xl_notify_send(f->nf, m, idx, 2, &err), XL_OK);
    /* 2 of 3 used (one in flight counts): 2 more do not fit, all or nothing */
    assert_int_equal(xl_notify_send(f->nf, m, idx, 2, &err), XL_EFULL);
    assert_string_equal(err.msg, "notify queue full (3 deliveries)");
    assert_int_equal(xl_notify_pending(f->nf), 2);
    assert_int_equal(xl_notify_send(f->nf, m, idx, 1, &err), XL_OK);
    assert_int_equal(xl_notify_pending(f->nf), 3);
    idx[0] = 7;
    assert_int_equal(xl_notify_send(f->nf, m, idx, 1, &err), XL_EINVAL);
    assert_int_equal(m->refs, 4);
    /* Free: 100 ms of drain, then the one in flight is aborted and the two
     * queued are dropped; every delivery is reported once. */
    t0 = now_ms();
    xl_notify_free(f->nf);
    f->nf = NULL;
    assert_true(now_ms() - t0 < 1500);
    assert_int_equal(wait_reports(3, 0), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(reps.r[i].outcome, XL_NOTIFY_DROPPED);
        assert_true(reps.r[i].final);
        dropped += reps.r[i].attempt == 0;
    }
    assert_int_equal(dropped, 2);
    assert_int_equal(m->refs, 1);
    xl_notify_msg_unref(m);
    xl_cfg_cleanup(xl_notify_cfg_keys, &f->cfg);
}

static void test_drain_and_resolved(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = one_msg("Drain"), *res = one_msg("Drain");
    struct xl_err err = {0};

    start(f,
          "drain_timeout: 3s\n"
          "channels:\n"
          "  - {name: a, type: webhook, url: 'http://127.0.0.1:%d/a'}\n"
          "  - {name: quiet, type: webhook, url: 'http://127.0.0.1:%d/q', send_resolved: false}\n",
          http.port, http.port);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_to(f, m, "a"), XL_OK);
    res->alerts[0].status = XL_NOTIFY_RESOLVED;
    res->alerts[0].ends_at = T0 + 1000;
    assert_int_equal(send_to(f, res, "quiet"), XL_OK); /* skipped: nothing fires */
    assert_int_equal(res->refs, 1);
    xl_notify_free(f->nf); /* waits for the five */
    f->nf = NULL;
    assert_int_equal(wait_reports(5, 0), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(reps.r[i].outcome, XL_NOTIFY_OK);
        assert_string_equal(reps.r[i].channel, "a");
    }
    assert_int_equal(http.n, 5);
    xl_cfg_cleanup(xl_notify_cfg_keys, &f->cfg);
    (void)err;
    xl_notify_msg_unref(m);
    xl_notify_msg_unref(res);
}

/* ---- email ---- */

static void check_mail(const char *subject_line)
{
    pthread_mutex_lock(&smtp.mu);
    assert_int_equal(smtp.mails, 1);
    assert_string_equal(smtp.from, "<alerts@example.com>");
    assert_int_equal(smtp.n_rcpt, 2);
    assert_string_equal(smtp.rcpt[0], "<ops@example.com>");
    assert_string_equal(smtp.rcpt[1], "<dev@example.com>");
    assert_non_null(strstr(smtp.data, "\nFrom: Alerts <alerts@example.com>\n"));
    assert_non_null(strstr(smtp.data, "\nTo: ops@example.com, Dev <dev@example.com>\n"));
    assert_non_null(strstr(smtp.data, subject_line));
    assert_non_null(strstr(smtp.data, "\nContent-Type: text/plain; charset=utf-8\n"));
    /* the body after the blank line */
    assert_non_null(strstr(smtp.data, "\n\n[FIRING:1] HighCPU\n\n[FIRING] HighCPU (critical)\n"
                                      "  summary: CPU above 90% on web1\n  value: 93.5\n"));
    assert_non_null(strstr(smtp.data, "  ended: 2026-01-02T03:05:05Z\n"));
    pthread_mutex_unlock(&smtp.mu);
}

static void test_email(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = sample_msg();

    smtp_start(false);
    start(f,
          "channels:\n"
          "  - {name: mail, type: email, smtp: 'smtp://127.0.0.1:%d',"
          " from: 'Alerts <alerts@example.com>', to: [ops@example.com, 'Dev <dev@example.com>']}\n"
          "  - {name: reject, type: email, smtp: 'smtp://127.0.0.1:%d',"
          " from: alerts@example.com, to: [reject@example.com], backoff: 10ms}\n"
          "  - {name: later, type: email, smtp: 'smtp://127.0.0.1:%d',"
          " from: alerts@example.com, to: [later@example.com], backoff: 10ms, max_attempts: 2}\n",
          smtp.port, smtp.port, smtp.port);
    assert_int_equal(send_to(f, m, "mail"), XL_OK);
    assert_int_equal(wait_reports(1, 5000), 1);
    assert_int_equal(reps.r[0].outcome, XL_NOTIFY_OK);
    assert_int_equal(reps.r[0].status, 250);
    check_mail("\nSubject: [FIRING:1] HighCPU\n");
    pthread_mutex_lock(&smtp.mu);
    assert_string_equal(smtp.auth_mech, ""); /* not offered, not configured */
    pthread_mutex_unlock(&smtp.mu);
    assert_int_equal(send_to(f, m, "reject"), XL_OK);
    assert_int_equal(wait_reports(2, 5000), 2);
    assert_int_equal(reps.r[1].outcome, XL_NOTIFY_PERMANENT);
    assert_int_equal(reps.r[1].status, 550);
    assert_true(reps.r[1].final);
    assert_int_equal(send_to(f, m, "later"), XL_OK);
    assert_int_equal(wait_reports(4, 5000), 4);
    assert_int_equal(reps.r[2].outcome, XL_NOTIFY_TRANSIENT);
    assert_int_equal(reps.r[2].status, 451);
    assert_false(reps.r[2].final);
    assert_true(reps.r[3].final);
    stop(f);
    smtp_stop();
    xl_notify_msg_unref(m);
}

static void test_email_auth(void **state)
{
    struct nfx *f = *state;
    struct xl_notify_msg *m = sample_msg();
    static const char *const mech[] = {"plain", "login"};

    free(m->alerts[0].rule);
    m->alerts[0].rule = xl_strdup("CPU 过高");
    free(m->alerts[1].rule);
    m->alerts[1].rule = xl_strdup("CPU 过高");
    for (size_t i = 0; i < 2; i++) {
        reports_reset();
        smtp_start(true);
        start(f,
              "channels:\n"
              "  - {name: mail, type: email, smtp: 'smtp://127.0.0.1:%d', auth: %s,"
              " username: 'robot@example.com', password: 'pa ss:w0rd',"
              " from: 'alerts@example.com', to: [ops@example.com]}\n",
              smtp.port, mech[i]);
        assert_int_equal(send_to(f, m, "mail"), XL_OK);
        assert_int_equal(wait_reports(1, 5000), 1);
        if (reps.r[0].outcome != XL_NOTIFY_OK)
            fail_msg("%s: %s", mech[i], reps.r[0].error);
        pthread_mutex_lock(&smtp.mu);
        assert_string_equal(smtp.auth_mech, i == 0 ? "PLAIN" : "LOGIN");
        assert_string_equal(smtp.user, "robot@example.com");
        assert_string_equal(smtp.pass, "pa ss:w0rd");
        /* the UTF-8 subject is RFC 2047 encoded: "[FIRING:1] CPU 过高" */
        assert_non_null(strstr(smtp.data, "\nSubject: =?UTF-8?B?W0ZJUklORzoxXSBDUFUg6L+H6auY?=\n"));
        pthread_mutex_unlock(&smtp.mu);
        stop(f);
        smtp_stop();
    }
    xl_notify_msg_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_body_generic),
        cmocka_unit_test(test_body_slack),
        cmocka_unit_test(test_body_dingtalk),
        cmocka_unit_test(test_body_wecom),
        cmocka_unit_test(test_body_feishu),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test_setup_teardown(test_webhook_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_transient_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_pipes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_and_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email_auth, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
