/* Bench: the embedded metric store (src/server/store/tsdb.c).
 *
 * Prints ingest rates (samples/s) for 1 and 2 threads appending batches of
 * 1000 samples across 10,000 series, with sync "always" (group commit) and
 * "none", by name + labels and by series ref; then query latency for one
 * series over 1 h at 10 s steps. Figures only, no assertions.
 *
 * Usage: bench_tsdb [seconds per case (3)] [dir (/tmp)] [batch size (1000)]
 *                   [wal_max_bytes (0: default 256 MiB)] */
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server/store/tsdb.h"

#define NSERIES 10000
#define BATCH_MAX 10000
#define T0 ((int64_t)1763715000000)

static double seconds = 3;
static size_t batch = 1000;
static int64_t wal_max; /* 0: the default */
static const char *base_dir = "/tmp";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char series_host[NSERIES][16], series_cpu[NSERIES][8];

struct worker {
    struct xl_tsdb *db;
    int id, nthreads;
    int by_ref;
    const uint64_t *refs;
    double stop_at;
    uint64_t samples;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct xl_tsdb_sample *s = calloc(batch, sizeof(*s));
    struct xl_tsdb_ref_sample *rs = calloc(batch, sizeof(*rs));
    struct xl_label *l = calloc(2 * batch, sizeof(*l));
    struct xl_err err;

    for (int64_t j = 0;; j++) {
        int64_t ts = T0 + (j * w->nthreads + w->id) * 10;
        size_t first = (size_t)j * batch % NSERIES;
        xl_rc rc;

        for (size_t i = 0; i < batch; i++) {
            size_t sid = (first + i) % NSERIES;

            if (w->by_ref) {
                rs[i].ref = w->refs[sid];
                rs[i].ts_ms = ts;
                rs[i].value = (double)(j % 100) + 0.25 * (double)i;
            } else {
                l[2 * i] = (struct xl_label){"host", series_host[sid]};
                l[2 * i + 1] = (struct xl_label){"cpu", series_cpu[sid]};
                s[i] = (struct xl_tsdb_sample){"bench_cpu_seconds_total", &l[2 * i], 2, ts,
                                               (double)(j % 100) + 0.25 * (double)i};
            }
        }
        rc = w->by_ref ? xl_tsdb_append_refs(w->db, rs, batch, &err)
                       : xl_tsdb_append(w->db, s, batch, &err);
        if (rc != XL_OK) {
            fprintf(stderr, "append: %s\n", err.msg);
            exit(1);
        }
        w->samples += batch;
        if ((j & 7) == 7 && now_s() >= w->stop_at)
            break;
    }
    free(s);
    free(rs);
    free(l);
    return NULL;
}

static void run_case(int nthreads, enum xl_tsdb_sync sync, int by_ref)
{
    char dir[512];
    struct xl_tsdb_opts o = {.dir = dir, .sync = sync, .wal_max_bytes = wal_max};
    static uint64_t refs[NSERIES];
    struct worker w[8];
    pthread_t th[8];
    struct xl_tsdb_stats st;
    struct xl_tsdb *db;
    struct xl_err err;
    uint64_t total = 0;
    double t0, t1, tc;

    snprintf(dir, sizeof(dir), "%s/bench_tsdb_XXXXXX", base_dir);
    if (!mkdtemp(dir) || xl_tsdb_open(&o, &db, &err) != XL_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err.msg);
        exit(1);
    }
    /* Create the series first: the steady state is what we measure. */
    for (size_t i = 0; i < NSERIES; i++) {
        struct xl_label l[2] = {{"host", series_host[i]}, {"cpu", series_cpu[i]}};

        if (xl_tsdb_series_ref(db, "bench_cpu_seconds_total", l, 2, &refs[i], &err) != XL_OK) {
            fprintf(stderr, "series: %s\n", err.msg);
            exit(1);
        }
    }
    t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct worker){db, i, nthreads, by_ref, refs, t0 + seconds, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].samples;
    }
    t1 = now_s();
    xl_tsdb_get_stats(db, &st);
    tc = now_s();
    xl_tsdb_close(db);
    tc = now_s() - tc;
    printf("append %-6s %d thread%s sync=%-6s  %6.2f M samples/s   (%llu samples, %llu fdatasync, "
           "%llu checkpoints during, close+checkpoint %.2fs)\n",
           by_ref ? "by-ref" : "labels", nthreads, nthreads > 1 ? "s" : " ",
           sync == XL_TSDB_SYNC_ALWAYS ? "always" : "none", (double)total / (t1 - t0) / 1e6,
           (unsigned long long)total, (unsigned long long)st.wal_syncs,
           (unsigned long long)st.checkpoints, tc);
    fflush(stdout);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int count_cb(void *ctx, const struct xl_series_result *r)
{
    *(size_t *)ctx += r->n;
    return 0;
}

/* One series with 1 h of samples every second: the first 50 min in chunks
 * (several checkpoints), the last 10 min in the head; 9,999 other series
 * beside it. */
static void run_query(void)
{
    char dir[512];
    struct xl_tsdb_opts o = {.dir = dir, .sync = XL_TSDB_SYNC_NONE};
    static const struct {
        const char *what;
        int64_t step;
        enum xl_agg agg;
    } cases[] = {{"1h, step 10s, avg", 10000, XL_AGG_AVG},
                 {"1h, step 10s, max", 10000, XL_AGG_MAX},
                 {"1h, raw (3600 points)", 0, XL_AGG_NONE}};
    struct xl_tsdb_ref_sample *rs = calloc(NSERIES, sizeof(*rs));
    static uint64_t refs[NSERIES];
    struct xl_matcher m[2] = {{"host", "host-0000", XL_MATCH_EQ}, {"cpu", "0", XL_MATCH_EQ}};
    struct xl_tsdb *db;
    struct xl_err err;
    double lat[500];
    uint64_t appended = 0;

    snprintf(dir, sizeof(dir), "%s/bench_tsdb_XXXXXX", base_dir);
    if (!mkdtemp(dir) || xl_tsdb_open(&o, &db, &err) != XL_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < NSERIES; i++) {
        struct xl_label li[2] = {{"host", series_host[i]}, {"cpu", series_cpu[i]}};

        xl_tsdb_series_ref(db, "bench_cpu_seconds_total", li, 2, &refs[i], &err);
    }
    for (int64_t sec = 0; sec < 3600; sec++) {
        for (size_t i = 0; i < NSERIES; i++)
            rs[i] = (struct xl_tsdb_ref_sample){refs[i], T0 + sec * 1000, (double)(sec % 60)};
        /* Only every 10th second for the other series, to keep it short. */
        appended += sec % 10 ? 1 : NSERIES;
        if (xl_tsdb_append_refs(db, rs, sec % 10 ? 1 : NSERIES, &err) != XL_OK) {
            fprintf(stderr, "append: %s\n", err.msg);
            exit(1);
        }
        if (sec % 600 == 599 && sec < 3000)
            xl_tsdb_checkpoint(db, &err);
    }
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = 0, points = 0;

        for (int k = 0; k < 500; k++) {
            double t = now_s();

            points = 0;
            xl_tsdb_query(db, "bench_cpu_seconds_total", m, 2, T0, T0 + 3599999, cases[c].step,
                          cases[c].agg, count_cb, &points, &err);
            lat[n++] = now_s() - t;
        }
        qsort(lat, n, sizeof(lat[0]), cmp_dbl);
        printf("query %-24s %4zu points  median %7.1f us  p99 %7.1f us\n", cases[c].what, points,
               lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
    }
    xl_tsdb_close(db);
    {
        char path[600];
        struct stat sb;

        snprintf(path, sizeof(path), "%s/metrics.db", dir);
        if (stat(path, &sb) == 0)
            printf("metrics.db after close: %.1f MiB for %llu samples in %d series (%.2f "
                   "bytes/sample, SQLite overhead included)\n",
                   (double)sb.st_size / 1048576.0, (unsigned long long)appended, NSERIES,
                   (double)sb.st_size / (double)appended);
    }
    free(rs);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    if (argc > 2)
        base_dir = argv[2];
    if (argc > 3)
        batch = (size_t)atol(argv[3]);
    if (argc > 4)
        wal_max = atoll(argv[4]);
    if (batch < 1 || batch > BATCH_MAX)
        batch = 1000;
    for (int i = 0; i < NSERIES; i++) {
        snprintf(series_host[i], sizeof(series_host[i]), "host-%04d", i / 10);
        snprintf(series_cpu[i], sizeof(series_cpu[i]), "%d", i % 10);
    }
    printf("bench_tsdb: %d series, batches of %zu, %.1fs per case, dir %s, wal_max_bytes %lld\n",
           NSERIES, batch, seconds, base_dir, (long long)wal_max);
    for (int by_ref = 0; by_ref < 2; by_ref++)
        for (int sync = 0; sync < 2; sync++)
            for (int nt = 1; nt <= 4; nt *= 2)
                if (nt < 4 || sync == 0)
                    run_case(nt, sync ? XL_TSDB_SYNC_NONE : XL_TSDB_SYNC_ALWAYS, by_ref);
    run_query();
    return 0;
}
