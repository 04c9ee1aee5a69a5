/* A network sink for the log-collection benchmark (bench/logs.py): it
 * receives what a log shipper sends and only counts it, so that what is
 * measured is the shipper.
 *
 *   bench_sink --http PORT [--tcp PORT]
 *
 * --http: a minimal xluo server (libmicrohttpd, one internal thread, epoll)
 * that answers what xluo-agent needs: PUT /api/v1/agents/{id} and
 * POST /api/v1/agents/{id}/heartbeat with 200, and POST /api/v1/ingest with
 * 200 {"accepted":N,"seq":S}, where S is the batch's seq parsed from the
 * body's prefix and N the number of log lines in the body. GET /count
 * answers the running totals as JSON.
 *
 * How lines are counted: the body is scanned once as it arrives, in the
 * chunks libmicrohttpd hands over, for the 5 bytes {"o": (memchr for '{',
 * memcmp to confirm; a match across two chunks is found with the last 4
 * bytes of the previous chunk). Every line of a `log` record is the object
 * {"o":OFFSET,...} (docs/protocol.md) and a '"' inside a JSON string is
 * always escaped as \", so the pattern cannot occur inside a line's text:
 * the count is exact without parsing the JSON. A body sent with
 * Content-Encoding: zstd is decompressed as it streams in and counted the
 * same way.
 *
 * --tcp: a plain TCP listener (one thread per connection, 1 MiB reads) that
 * counts newlines: what rsyslog's omfwd sends with the default LF framing.
 *
 * Timestamps in /count are CLOCK_MONOTONIC in ns, the clock of Python's
 * time.monotonic(), so the driver can time the run to the last arrival.
 * SIGTERM or SIGINT prints the totals and exits. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define PAT "{\"o\":"
#define PAT_LEN 5
#define HEAD_MAX 256
#define TCP_BUF (1 << 20)

struct totals {
    atomic_uint_fast64_t lines, batches, body_bytes, other_requests;
    atomic_uint_fast64_t first_ns, last_ns; /* first and last ingest answered */
    atomic_uint_fast64_t tcp_lines, tcp_bytes, tcp_conns;
    atomic_uint_fast64_t tcp_first_ns, tcp_last_ns;
};

static struct totals tot;

enum route { R_OTHER, R_INGEST, R_AGENT };

/* Per request state, from the first call of the handler to the answer. */
struct req {
    enum route route;
    char head[HEAD_MAX + 1]; /* the body's first bytes, for "seq" */
    size_t headlen;
    char carry[PAT_LEN - 1]; /* the last bytes seen, for a match across chunks */
    size_t ncarry;
    uint64_t lines, bytes;
    ZSTD_DCtx *dz; /* Content-Encoding: zstd */
    bool bad;      /* the zstd frame did not decode */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Occurrences of PAT in p[0..n). */
static uint64_t count_pat(const char *p, size_t n)
{
    const char *end = p + n;
    uint64_t c = 0;

    while ((size_t)(end - p) >= PAT_LEN) {
        const char *q = memchr(p, '{', (size_t)(end - p) - (PAT_LEN - 1));
        if (!q)
            break;
        if (memcmp(q, PAT, PAT_LEN) == 0)
            c++;
        p = q + 1;
    }
    return c;
}

/* Count the lines in one more chunk of a body, including a pattern that
 * starts in the previous chunk and ends in this one. */
static void feed(struct req *r, const char *p, size_t n)
{
    char join[2 * (PAT_LEN - 1)];
    size_t k = n < PAT_LEN - 1 ? n : PAT_LEN - 1, tail;

    if (r->headlen < HEAD_MAX) {
        size_t h = n < HEAD_MAX - r->headlen ? n : HEAD_MAX - r->headlen;
        memcpy(r->head + r->headlen, p, h);
        r->headlen += h;
        r->head[r->headlen] = '\0';
    }
    /* A match in join is at most 8 bytes long, so it starts in the carry. */
    memcpy(join, r->carry, r->ncarry);
    memcpy(join + r->ncarry, p, k);
    r->lines += count_pat(join, r->ncarry + k);
    r->lines += count_pat(p, n);
    r->bytes += n;
    /* New carry: the last PAT_LEN-1 bytes of everything so far. */
    if (n >= PAT_LEN - 1) {
        memcpy(r->carry, p + n - (PAT_LEN - 1), PAT_LEN - 1);
        r->ncarry = PAT_LEN - 1;
    } else {
        tail = r->ncarry + n > PAT_LEN - 1 ? r->ncarry + n - (PAT_LEN - 1) : 0;
        memcpy(join, r->carry, r->ncarry);
        memcpy(join + r->ncarry, p, n);
        r->ncarry = r->ncarry + n - tail;
        memcpy(r->carry, join + tail, r->ncarry);
    }
}

/* Decompress one more chunk of a zstd body and count what comes out. */
static void feed_zstd(struct req *r, const char *p, size_t n)
{
    static _Thread_local char out[1 << 18];
    ZSTD_inBuffer in = {p, n, 0};

    ZSTD_outBuffer o;

    /* Until the input is used up and the output did not fill: a full
     * output may mean more is waiting inside the decoder. */
    do {
        o = (ZSTD_outBuffer){out, sizeof(out), 0};
        if (ZSTD_isError(ZSTD_decompressStream(r->dz, &o, &in)))
            r->bad = true;
        else if (o.pos)
            feed(r, out, o.pos);
    } while (!r->bad && (in.pos < in.size || o.pos == o.size));
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *json)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void update_min(atomic_uint_fast64_t *v, uint64_t x)
{
    uint_fast64_t cur = atomic_load(v);

    while ((cur == 0 || x < cur) && !atomic_compare_exchange_weak(v, &cur, x))
        ;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct req *r = *con_cls;
    char out[512];

    (void)cls;
    (void)version;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r))))
            return MHD_NO;
        const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");

        if (!strcmp(method, "POST") && !strcmp(url, "/api/v1/ingest"))
            r->route = R_INGEST;
        if (enc && !strcmp(enc, "zstd") && !(r->dz = ZSTD_createDCtx()))
            return MHD_NO;
        else if (!strncmp(url, "/api/v1/agents/", 15))
            r->route = R_AGENT;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->route == R_INGEST && r->dz)
            feed_zstd(r, upload_data, *upload_size);
        else if (r->route == R_INGEST)
            feed(r, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->route == R_INGEST && r->bad)
        return answer(c, MHD_HTTP_BAD_REQUEST, "{\"error\":\"malformed batch\"}");
    if (r->route == R_INGEST) {
        const char *s = strstr(r->head, "\"seq\":");
        unsigned long long seq = s ? strtoull(s + 6, NULL, 10) : 0;
        uint64_t now = mono_ns();

        atomic_fetch_add(&tot.lines, r->lines);
        atomic_fetch_add(&tot.batches, 1);
        atomic_fetch_add(&tot.body_bytes, r->bytes);
        update_min(&tot.first_ns, now);
        atomic_store(&tot.last_ns, now);
        snprintf(out, sizeof(out), "{\"accepted\":%llu,\"seq\":%llu}",
                 (unsigned long long)r->lines, seq);
        return answer(c, MHD_HTTP_OK, out);
    }
    if (r->route == R_AGENT) {
        atomic_fetch_add(&tot.other_requests, 1);
        snprintf(out, sizeof(out), "{\"server_time\":%llu}", (unsigned long long)wall_ms());
        return answer(c, MHD_HTTP_OK, out);
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/count")) {
        snprintf(out, sizeof(out),
                 "{\"lines\":%llu,\"batches\":%llu,\"body_bytes\":%llu,\"other_requests\":%llu,"
                 "\"first_ns\":%llu,\"last_ns\":%llu,\"tcp_lines\":%llu,\"tcp_bytes\":%llu,"
                 "\"tcp_conns\":%llu,\"tcp_first_ns\":%llu,\"tcp_last_ns\":%llu}",
                 (unsigned long long)tot.lines, (unsigned long long)tot.batches,
                 (unsigned long long)tot.body_bytes, (unsigned long long)tot.other_requests,
                 (unsigned long long)tot.first_ns, (unsigned long long)tot.last_ns,
                 (unsigned long long)tot.tcp_lines, (unsigned long long)tot.tcp_bytes,
                 (unsigned long long)tot.tcp_conns, (unsigned long long)tot.tcp_first_ns,
                 (unsigned long long)tot.tcp_last_ns);
        return answer(c, MHD_HTTP_OK, out);
    }
    return answer(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls)
        ZSTD_freeDCtx(((struct req *)*con_cls)->dz);
    free(*con_cls);
    *con_cls = NULL;
}

/* One TCP connection: count newlines until the peer closes. */
static void *tcp_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(TCP_BUF);
    ssize_t n;

    atomic_fetch_add(&tot.tcp_conns, 1);
    while (buf && ((n = read(fd, buf, TCP_BUF)) > 0 || (n < 0 && errno == EINTR))) {
        const char *p = buf, *end = buf + (n > 0 ? n : 0);
        uint64_t c = 0;

        while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
            c++;
            p++;
        }
        if (c) {
            uint64_t now = mono_ns();
            update_min(&tot.tcp_first_ns, now);
            atomic_store(&tot.tcp_last_ns, now);
        }
        atomic_fetch_add(&tot.tcp_lines, c);
        atomic_fetch_add(&tot.tcp_bytes, (uint64_t)(n > 0 ? n : 0));
    }
    free(buf);
    close(fd);
    return NULL;
}

static void *tcp_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        pthread_t th;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("bench_sink: accept");
            return NULL;
        }
        if (pthread_create(&th, NULL, tcp_conn, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}

static int tcp_listen(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
        perror("bench_sink: tcp listen");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    unsigned http_port = 0, tcp_port = 0;
    struct MHD_Daemon *d;
    struct sockaddr_in a = {.sin_family = AF_INET};
    sigset_t set;
    pthread_t th;
    int sig, lfd = -1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--http") && i + 1 < argc)
            http_port = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--tcp") && i + 1 < argc)
            tcp_port = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s --http PORT [--tcp PORT]\n", argv[0]);
            return 2;
        }
    }
    if (!http_port) {
        fprintf(stderr, "bench_sink: --http PORT is required\n");
        return 2;
    }
    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (tcp_port) {
        if ((lfd = tcp_listen(tcp_port)) < 0)
            return 1;
        if (pthread_create(&th, NULL, tcp_accept, (void *)(intptr_t)lfd) != 0)
            return 1;
        pthread_detach(th);
    }
    a.sin_port = htons((uint16_t)http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                         (uint16_t)http_port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1 << 20),
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_sink: cannot listen on 127.0.0.1:%u\n", http_port);
        return 1;
    }
    printf("bench_sink: http 127.0.0.1:%u%s\n", http_port, tcp_port ? " tcp" : "");
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    printf("bench_sink: %llu lines in %llu batches (%llu body bytes); tcp: %llu lines, "
           "%llu bytes, %llu connections\n",
           (unsigned long long)tot.lines, (unsigned long long)tot.batches,
           (unsigned long long)tot.body_bytes, (unsigned long long)tot.tcp_lines,
           (unsigned long long)tot.tcp_bytes, (unsigned long long)tot.tcp_conns);
    return 0;
}
