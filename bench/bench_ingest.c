/* bench_ingest: a load generator for xluo-server's ingest path.
 *
 * N simulated agents register (PUT /api/v1/agents/{id}) and then POST
 * pre-built batches to /api/v1/ingest as fast as the server acknowledges
 * them, over C keep-alive connections (one thread with one curl easy handle
 * each). Every batch body is generated before the clock starts, so the
 * generator's own CPU during the timed part is one memcpy-free send per
 * batch. Afterwards it checks that what was acknowledged is queryable: it
 * asks /api/v1/query for agg=count over the whole time range of every
 * metric name, sums the counts and compares them with the accepted total.
 *
 * Series: M metric names x L label sets per agent (the server adds the host
 * label, so there are N x M x L series in all). A batch holds T = S/(M*L)
 * scrapes of every series of one agent; batch j of an agent covers scrapes
 * j*T .. j*T+T-1, so no series ever gets the same timestamp twice and the
 * stored count must equal the accepted count exactly.
 *
 * Prints human-readable figures, then one line "RESULT {json}" for
 * bench/ingest.py. It never asserts speed; it exits non-zero only when the
 * run itself failed (server unreachable, batches rejected, counts differ). */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SEVEN_DAYS_MS (7LL * 86400 * 1000)
#define MAX_POINTS_SAFE 10000 /* below the server's default max_points */

struct opts {
    const char *url, *agent_token, *api_token;
    int agents, conns, samples, batches, names, labelsets;
    int64_t interval_ms;
    double max_seconds, query_timeout;
    bool verify;
};

struct body {
    char *data;
    size_t len;
    int nrecords;
};

struct agent {
    char id[33];
    char host[32];
    struct body *batches; /* opts.batches of them */
};

struct conn {
    int idx;
    pthread_t thread;
    CURL *curl;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    char resp[4096];
    size_t resp_len;
    /* results */
    uint64_t sent_samples, accepted, sent_bytes, requests, failed, retries;
    double *lat_ms; /* one per request */
    size_t nlat, cap_lat;
    char first_error[512];
};

static struct opts o = {
    .agents = 100, .conns = 8, .samples = 5000, .batches = 20, .names = 10, .labelsets = 10,
    .interval_ms = 10000, .max_seconds = 0, .query_timeout = 300, .verify = true,
};
static struct agent *agents;
static int64_t ts_first, ts_last; /* the range of generated timestamps */
static int scrapes_per_batch;
static pthread_barrier_t start_barrier;
static atomic_bool stop_sending;
static double t_start; /* monotonic seconds, set by connection 0 after the barrier */
static double cpu_start; /* this process's CPU seconds at t_start */

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (!p) {
        fprintf(stderr, "bench_ingest: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct conn *c = ud;
    size_t n = size * nmemb, room = sizeof(c->resp) - 1 - c->resp_len;

    if (n < room)
        room = n;
    memcpy(c->resp + c->resp_len, ptr, room);
    c->resp_len += room;
    c->resp[c->resp_len] = '\0';
    return n;
}

/* Grow-only string builder for the batch bodies. */
struct sb {
    char *p;
    size_t len, cap;
};

static void sb_reserve(struct sb *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    while (b->len + more + 1 > b->cap)
        b->cap = b->cap ? b->cap * 2 : 1 << 16;
    b->p = realloc(b->p, b->cap);
    if (!b->p) {
        fprintf(stderr, "bench_ingest: out of memory\n");
        exit(2);
    }
}

#define SB_PRINTF(b, ...)                                                    \
    do {                                                                     \
        int n_ = snprintf(NULL, 0, __VA_ARGS__);                             \
        sb_reserve((b), (size_t)n_);                                         \
        snprintf((b)->p + (b)->len, (size_t)n_ + 1, __VA_ARGS__);            \
        (b)->len += (size_t)n_;                                              \
    } while (0)

static const char *const kinds[] = {"user", "system", "idle", "iowait", "read", "write",
                                    "rx", "tx", "used", "free"};

/* Batch j of agent a: scrapes j*T .. j*T+T-1 of all its series. */
static void build_batch(int a, int j, struct body *out)
{
    struct sb b = {0};
    int nrec = 0;

    SB_PRINTF(&b, "{\"v\":1,\"agent_id\":\"%s\",\"seq\":%d,\"sent\":%" PRId64 ",\"records\":[",
              agents[a].id, j + 1, now_ms());
    for (int t = 0; t < scrapes_per_batch; t++) {
        int64_t scrape = (int64_t)j * scrapes_per_batch + t;
        int64_t ts = ts_first + scrape * o.interval_ms;
        for (int m = 0; m < o.names; m++) {
            for (int l = 0; l < o.labelsets; l++) {
                /* A slowly moving gauge per series: realistic digits. */
                double v = (double)((a * 131 + m * 17 + l * 7) % 1000) +
                           (double)((scrape * 37 + l) % 1000) / 8.0;
                SB_PRINTF(&b,
                          "%s{\"type\":\"metric\",\"ts\":%" PRId64
                          ",\"name\":\"bench_metric_%02d\",\"labels\":{\"device\":\"dev%02d\","
                          "\"kind\":\"%s\"},\"value\":%.3f}",
                          nrec ? "," : "", ts, m, l, kinds[l % 10], v);
                nrec++;
            }
        }
    }
    SB_PRINTF(&b, "]}");
    out->data = b.p;
    out->len = b.len;
    out->nrecords = nrec;
}

static void conn_init(struct conn *c)
{
    char auth[512];

    c->curl = curl_easy_init();
    if (!c->curl) {
        fprintf(stderr, "bench_ingest: curl_easy_init failed\n");
        exit(2);
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o.agent_token);
    c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, auth);
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 300L);
}

/* One request; returns the HTTP status (0 on a transport error). */
static long conn_send(struct conn *c, const char *method, const char *path, const char *body,
                      size_t len)
{
    char url[1024];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", o.url, path);
    c->resp_len = 0;
    c->resp[0] = '\0';
    c->errbuf[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (curl_easy_perform(c->curl) != CURLE_OK) {
        snprintf(c->resp, sizeof(c->resp), "transport: %s", c->errbuf);
        return 0;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void note_error(struct conn *c, const char *what, long status)
{
    c->failed++;
    if (!c->first_error[0])
        snprintf(c->first_error, sizeof(c->first_error), "%s: %ld %.400s", what, status,
                 c->resp);
}

static void register_agent(struct conn *c, int a)
{
    char body[512], path[128];
    long st;
    int n;

    n = snprintf(body, sizeof(body),
                 "{\"v\":1,\"agent_id\":\"%s\",\"host\":\"%s\",\"ip\":\"127.0.0.1\","
                 "\"version\":\"bench\",\"labels\":{\"role\":\"bench\"},"
                 "\"heartbeat_interval_ms\":600000,\"started\":%" PRId64 "}",
                 agents[a].id, agents[a].host, now_ms());
    snprintf(path, sizeof(path), "/api/v1/agents/%s", agents[a].id);
    for (int attempt = 0; attempt < 50; attempt++) {
        st = conn_send(c, "PUT", path, body, (size_t)n);
        if (st == 200)
            return;
        if (st != 0 && st != 503 && st != 429)
            break;
        usleep(100000);
    }
    note_error(c, "register", st);
    fprintf(stderr, "bench_ingest: %s\n", c->first_error);
    exit(1);
}

static void lat_push(struct conn *c, double ms)
{
    if (c->nlat == c->cap_lat) {
        c->cap_lat = c->cap_lat ? c->cap_lat * 2 : 1024;
        c->lat_ms = realloc(c->lat_ms, c->cap_lat * sizeof(double));
        if (!c->lat_ms) {
            fprintf(stderr, "bench_ingest: out of memory\n");
            exit(2);
        }
    }
    c->lat_ms[c->nlat++] = ms;
}

/* Connection c owns agents c, c+C, c+2C, ...: one agent's batches always
 * travel on one connection, in order, so its seq is strictly increasing. */
static void *conn_main(void *arg)
{
    struct conn *c = arg;

    conn_init(c);
    for (int a = c->idx; a < o.agents; a += o.conns) {
        register_agent(c, a);
        agents[a].batches = xmalloc((size_t)o.batches * sizeof(struct body));
        for (int j = 0; j < o.batches; j++)
            build_batch(a, j, &agents[a].batches[j]);
    }
    pthread_barrier_wait(&start_barrier);
    if (c->idx == 0) {
        t_start = mono_s();
        cpu_start = cpu_s();
        printf("MARK start\n"); /* bench/ingest.py snapshots the server here */
        fflush(stdout);
    }
    pthread_barrier_wait(&start_barrier);
    for (int j = 0; j < o.batches && !atomic_load(&stop_sending); j++) {
        for (int a = c->idx; a < o.agents && !atomic_load(&stop_sending); a += o.conns) {
            struct body *b = &agents[a].batches[j];
            long st = 0;
            for (int attempt = 0; attempt < 100; attempt++) {
                double t0 = mono_s();
                st = conn_send(c, "POST", "/api/v1/ingest", b->data, b->len);
                lat_push(c, (mono_s() - t0) * 1000.0);
                c->requests++;
                c->sent_bytes += b->len;
                if (st != 0 && st != 503 && st != 429)
                    break;
                c->retries++;
                usleep(50000);
            }
            c->sent_samples += (uint64_t)b->nrecords;
            if (st == 200) {
                const char *p = strstr(c->resp, "\"accepted\":");
                c->accepted += p ? strtoull(p + 11, NULL, 10) : 0;
            } else {
                note_error(c, "ingest", st);
            }
            if (o.max_seconds > 0 && mono_s() - t_start > o.max_seconds)
                atomic_store(&stop_sending, true);
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    size_t i;

    if (!n)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

struct query_result {
    uint64_t count;
    size_t series;
    bool ok;
    char error[1024];
};

static size_t on_grow(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct sb *b = ud;
    size_t n = size * nmemb;

    sb_reserve(b, n);
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* Sum agg=count over [ts_first, ts_last] for every metric name. */
static void query_counts(CURL *q, struct query_result *r)
{
    /* One bucket covers the whole range; alignment makes it at most two. */
    int64_t step = ts_last - ts_first + 1;
    char url[1024], auth[512];
    struct curl_slist *h;

    memset(r, 0, sizeof(*r));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o.api_token);
    h = curl_slist_append(NULL, auth);
    r->ok = true;
    for (int m = 0; m < o.names && r->ok; m++) {
        struct sb b = {0};
        json_t *root, *series, *s;
        json_error_t jerr;
        long status = 0;
        size_t i;

        snprintf(url, sizeof(url),
                 "%s/api/v1/query?name=bench_metric_%02d&match=role=bench&from=%" PRId64
                 "&to=%" PRId64 "&step=%" PRId64 "ms&agg=count",
                 o.url, m, ts_first, ts_last, step);
        curl_easy_setopt(q, CURLOPT_URL, url);
        curl_easy_setopt(q, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(q, CURLOPT_WRITEFUNCTION, on_grow);
        curl_easy_setopt(q, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(q, CURLOPT_TIMEOUT, 120L);
        if (curl_easy_perform(q) != CURLE_OK) {
            snprintf(r->error, sizeof(r->error), "query transport error");
            r->ok = false;
            free(b.p);
            break;
        }
        curl_easy_getinfo(q, CURLINFO_RESPONSE_CODE, &status);
        root = status == 200 && b.p ? json_loadb(b.p, b.len, 0, &jerr) : NULL;
        if (!root) {
            snprintf(r->error, sizeof(r->error), "query bench_metric_%02d: %ld %.300s", m, status,
                     b.p ? b.p : "");
            r->ok = false;
            free(b.p);
            break;
        }
        series = json_object_get(root, "series");
        json_array_foreach(series, i, s) {
            json_t *pts = json_object_get(s, "points"), *pt;
            size_t k;
            r->series++;
            json_array_foreach(pts, k, pt) {
                r->count += (uint64_t)json_number_value(json_array_get(pt, 1));
            }
        }
        json_decref(root);
        free(b.p);
    }
    curl_slist_free_all(h);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ingest -u URL -a AGENT_TOKEN -k API_TOKEN [options]\n"
            "  -n N   simulated agents (100)\n"
            "  -c C   concurrent connections (8)\n"
            "  -s S   samples per batch (5000; rounded down to whole scrapes)\n"
            "  -b B   batches per agent (20), all generated before timing\n"
            "  -m M   metric names per agent (10)\n"
            "  -l L   label sets per metric name (10)\n"
            "  -i MS  milliseconds between scrapes of a series (10000)\n"
            "  -d SEC stop sending after SEC seconds (0: send everything)\n"
            "  -w SEC give up waiting for the data to be queryable after SEC (300)\n"
            "  -Q     skip the queryable check\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct conn *conns;
    uint64_t sent = 0, accepted = 0, bytes = 0, requests = 0, failed = 0, retries = 0;
    double elapsed, t_ack, gen_cpu, *lat, t_queryable = -1, first_query_s = -1;
    size_t nlat = 0, k = 0;
    struct query_result qr = {0};
    const char *first_error = "";
    unsigned rnd;
    int ch, per_batch_series;

    while ((ch = getopt(argc, argv, "u:a:k:n:c:s:b:m:l:i:d:w:Q")) != -1) {
        switch (ch) {
        case 'u': o.url = optarg; break;
        case 'a': o.agent_token = optarg; break;
        case 'k': o.api_token = optarg; break;
        case 'n': o.agents = atoi(optarg); break;
        case 'c': o.conns = atoi(optarg); break;
        case 's': o.samples = atoi(optarg); break;
        case 'b': o.batches = atoi(optarg); break;
        case 'm': o.names = atoi(optarg); break;
        case 'l': o.labelsets = atoi(optarg); break;
        case 'i': o.interval_ms = atoll(optarg); break;
        case 'd': o.max_seconds = atof(optarg); break;
        case 'w': o.query_timeout = atof(optarg); break;
        case 'Q': o.verify = false; break;
        default: usage();
        }
    }
    if (!o.url || !o.agent_token || (o.verify && !o.api_token) || o.agents < 1 ||
        o.conns < 1 || o.batches < 1 || o.names < 1 || o.names > 100 || o.labelsets < 1 ||
        o.interval_ms < 1)
        usage();
    if (o.conns > o.agents)
        o.conns = o.agents;
    per_batch_series = o.names * o.labelsets;
    scrapes_per_batch = o.samples / per_batch_series;
    if (scrapes_per_batch < 1) {
        fprintf(stderr, "bench_ingest: -s %d is below one scrape (%d series)\n", o.samples,
                per_batch_series);
        return 2;
    }
    /* All timestamps within the last 6 days (the server takes 7), ending a
     * minute before now; the scrape interval shrinks if it must. */
    {
        int64_t scrapes = (int64_t)o.batches * scrapes_per_batch;
        int64_t span = 6LL * 86400 * 1000;
        if (scrapes * o.interval_ms > span)
            o.interval_ms = span / scrapes > 0 ? span / scrapes : 1;
        ts_last = now_ms() - 60000;
        ts_first = ts_last - (scrapes - 1) * o.interval_ms;
        if (ts_first < now_ms() - SEVEN_DAYS_MS + 3600000) {
            fprintf(stderr, "bench_ingest: too many scrapes for the accepted window\n");
            return 2;
        }
    }

    curl_global_init(CURL_GLOBAL_ALL);
    agents = calloc((size_t)o.agents, sizeof(*agents));
    conns = calloc((size_t)o.conns, sizeof(*conns));
    if (!agents || !conns)
        return 2;
    rnd = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    for (int a = 0; a < o.agents; a++) {
        snprintf(agents[a].id, sizeof(agents[a].id), "%08x%024x", rnd, (unsigned)a);
        snprintf(agents[a].host, sizeof(agents[a].host), "bench-%04d", a);
    }
    printf("bench_ingest: %d agents x %d series (%d names x %d label sets), %d batches of %d "
           "samples each, %d connections\n",
           o.agents, per_batch_series, o.names, o.labelsets, o.batches,
           scrapes_per_batch * per_batch_series, o.conns);
    printf("generating %" PRIu64 " samples...\n",
           (uint64_t)o.agents * (uint64_t)o.batches * (uint64_t)scrapes_per_batch *
               (uint64_t)per_batch_series);
    fflush(stdout);

    pthread_barrier_init(&start_barrier, NULL, (unsigned)o.conns);
    for (int i = 0; i < o.conns; i++) {
        conns[i].idx = i;
        if (pthread_create(&conns[i].thread, NULL, conn_main, &conns[i]) != 0) {
            fprintf(stderr, "bench_ingest: pthread_create failed\n");
            return 2;
        }
    }
    for (int i = 0; i < o.conns; i++)
        pthread_join(conns[i].thread, NULL);
    t_ack = mono_s();
    elapsed = t_ack - t_start;
    gen_cpu = cpu_s() - cpu_start;
    printf("MARK acked\n");
    fflush(stdout);

    for (int i = 0; i < o.conns; i++) {
        sent += conns[i].sent_samples;
        accepted += conns[i].accepted;
        bytes += conns[i].sent_bytes;
        requests += conns[i].requests;
        failed += conns[i].failed;
        retries += conns[i].retries;
        nlat += conns[i].nlat;
        if (!*first_error && conns[i].first_error[0])
            first_error = conns[i].first_error;
    }
    lat = xmalloc((nlat ? nlat : 1) * sizeof(double));
    for (int i = 0; i < o.conns; i++) {
        memcpy(lat + k, conns[i].lat_ms, conns[i].nlat * sizeof(double));
        k += conns[i].nlat;
    }
    qsort(lat, nlat, sizeof(double), cmp_double);

    if (o.verify) {
        CURL *q = curl_easy_init();
        double deadline = t_ack + o.query_timeout;
        for (;;) {
            double q0 = mono_s();
            query_counts(q, &qr);
            if (first_query_s < 0)
                first_query_s = mono_s() - q0;
            if (qr.ok && qr.count == accepted) {
                t_queryable = mono_s() - t_ack;
                break;
            }
            if (!qr.ok || mono_s() > deadline)
                break;
            usleep(100000);
        }
        curl_easy_cleanup(q);
    }

    printf("samples sent      %" PRIu64 " in %" PRIu64 " requests (%" PRIu64 " retried, %" PRIu64
           " failed)\n",
           sent, requests, retries, failed);
    printf("samples accepted  %" PRIu64 "\n", accepted);
    printf("elapsed           %.2f s (first request to last ack)\n", elapsed);
    printf("throughput        %.0f samples/s, %.1f MiB/s of JSON (%.0f bytes/sample)\n",
           (double)accepted / elapsed, (double)bytes / elapsed / 1048576.0,
           sent ? (double)bytes / (double)sent : 0.0);
    printf("request latency   p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", pct(lat, nlat, 0.50),
           pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0.0);
    printf("generator CPU     %.2f s while sending (%.0f %% of one core)\n", gen_cpu,
           100.0 * gen_cpu / elapsed);
    if (*first_error)
        printf("first error       %s\n", first_error);
    if (o.verify) {
        if (t_queryable >= 0)
            printf("queryable         all %" PRIu64 " samples in %zu series, %.3f s after the "
                   "last ack (one count pass over all names: %.3f s)\n",
                   qr.count, qr.series, t_queryable, first_query_s);
        else
            printf("queryable         NO: stored count %" PRIu64 " in %zu series, accepted %" PRIu64
                   "%s%s\n",
                   qr.count, qr.series, accepted, qr.error[0] ? "; " : "", qr.error);
    }
    printf("RESULT {\"agents\":%d,\"conns\":%d,\"batch_samples\":%d,\"sent\":%" PRIu64
           ",\"accepted\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"retries\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"elapsed_s\":%.4f,\"samples_per_s\":%.1f,\"mib_per_s\":%.3f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"verified\":%s,\"stored\":%" PRIu64
           ",\"series\":%zu,\"queryable_s\":%.4f,\"count_query_s\":%.4f,\"gen_cpu_s\":%.3f}\n",
           o.agents, o.conns, scrapes_per_batch * per_batch_series, sent, accepted, requests,
           retries, failed, bytes, elapsed, (double)accepted / elapsed,
           (double)bytes / elapsed / 1048576.0, pct(lat, nlat, 0.50), pct(lat, nlat, 0.99),
           nlat ? lat[nlat - 1] : 0.0,
           o.verify ? (t_queryable >= 0 ? "true" : "false") : "null", qr.count, qr.series,
           t_queryable, first_query_s, gen_cpu);
    fflush(stdout);
    return (failed || (o.verify && t_queryable < 0)) ? 1 : 0;
}
