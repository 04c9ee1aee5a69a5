/* Bench: the log store (src/server/store/logs.c).
 *
 * 1. Append throughput: 200-byte lines in batches of 1000 and 10000, sync
 *    FULL and NORMAL, 1 and 2 threads (each thread its own files), each
 *    case on a fresh database for a few seconds: lines/s, MiB/s of line
 *    text, commits (group commits show as fewer commits than batches),
 *    bytes on disk per line.
 * 2. Where the time goes: the same rows through plain SQLite (no FTS, no
 *    dedup index; then with the dedup index), one thread, NORMAL.
 * 3. Query latency over 1,000,000 rows: word, rare word, phrase, prefix,
 *    NOT, with filters, the newest page, paging deep, histograms.
 * Figures only, no assertions.
 *
 * Usage: bench_logstore [seconds per case (3)] [dir (/tmp)] [rows for queries (1000000)] */
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/units.h"
#include "server/store/logs.h"

#define LINE_LEN 200
#define NLINES 65536 /* distinct lines, cycled */
#define NWORDS 4096
#define BATCH_MAX 10000

static double seconds = 3;
static const char *base_dir = "/tmp";
static long query_rows = 1000000;
static char (*lines)[LINE_LEN + 1];
static char words[NWORDS][12];
static int64_t t_base;
static double ts_step = 3.6; /* ms between lines: 1,000,000 lines span an hour */

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

static uint64_t rng = 88172645463325252ull;

static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Lines that look like application logs: a timestamp, a level (ERROR in
 * 1 of 16), a component, a request id, words of a 4096-word vocabulary
 * with a skewed frequency, padded to 200 bytes. */
static void make_lines(void)
{
    static const char *const levels[] = {"INFO", "INFO", "INFO",  "INFO",  "INFO",  "INFO",
                                         "INFO", "INFO", "DEBUG", "DEBUG", "DEBUG", "DEBUG",
                                         "WARN", "WARN", "WARN",  "ERROR"};

    for (int i = 0; i < NWORDS; i++) {
        int n = 3 + (int)(xorshift() % 8);
        for (int j = 0; j < n; j++)
            words[i][j] = (char)('a' + xorshift() % 26);
        words[i][n] = '\0';
    }
    lines = calloc(NLINES, sizeof(*lines));
    for (int i = 0; i < NLINES; i++) {
        char *p = lines[i];
        int n = snprintf(p, LINE_LEN + 1,
                         "2026-11-21T08:%02d:%02d.%03dZ %s [worker-%d] req=%08x ip=10.0.%d.%d ",
                         i / 60 % 60, i % 60, i % 1000, levels[i % 16], i % 8, (unsigned)xorshift(),
                         i % 256, (i * 7) % 256);
        while (n < LINE_LEN) {
            /* Squaring skews toward low indexes: a few frequent words. */
            uint64_t r = xorshift() % NWORDS;
            const char *w = words[r * r / NWORDS];
            n += snprintf(p + n, (size_t)(LINE_LEN + 1 - n), "%s ", w);
        }
        p[LINE_LEN] = '\0';
    }
}

static void fresh_dir(char *out, size_t n)
{
    snprintf(out, n, "%s/xl_bench_logs_XXXXXX", base_dir);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(1);
    }
}

static struct xl_logstore *open_store(const char *dir, bool sync_full)
{
    char path[600];
    struct xl_logstore_opts o = {
        .path = path, .sync_full = sync_full, .maintain_interval_ms = 3600000};
    struct xl_logstore *ls;
    struct xl_err err;

    snprintf(path, sizeof(path), "%s/logs.db", dir);
    if (xl_logstore_open(&o, &ls, &err) != XL_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    return ls;
}

static off_t dir_bytes(const char *dir)
{
    static const char *const files[] = {"logs.db", "logs.db-wal"};
    off_t total = 0;

    for (size_t i = 0; i < 2; i++) {
        char p[600];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (stat(p, &sb) == 0)
            total += sb.st_size;
    }
    return total;
}

struct worker {
    struct xl_logstore *ls;
    int id;
    size_t batch;
    double stop_at;
    long max_lines; /* 0: until stop_at */
    uint64_t lines;
};

static const char *const hosts[] = {"web1", "web2", "db1", "cache1"};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct xl_log_rec *r = calloc(w->batch, sizeof(*r));
    char path[64];
    struct xl_err err;
    uint64_t off = 0;

    for (long b = 0;; b++) {
        /* A file per 100,000 lines, like a rotating log. */
        for (size_t i = 0; i < w->batch; i++) {
            uint64_t k = w->lines + i;
            snprintf(path, sizeof(path), "/var/log/app/app-%d-%llu.log", w->id,
                     (unsigned long long)(k / 100000));
            r[i] = (struct xl_log_rec){.host = hosts[(w->id + k / 100000) % 4],
                                       .agent_id = "0123456789abcdef0123456789abcdef",
                                       .input = (k / 100000) % 2 ? "app" : "sys",
                                       .path =
                                           i == 0 || k % 100000 == 0 ? strdup(path) : r[i - 1].path,
                                       .file_uid = (uint64_t)w->id << 32 | k / 100000,
                                       .offset = off,
                                       .ts_ms = t_base + (int64_t)((double)k * ts_step),
                                       .line = lines[(k * 7919 + (uint64_t)w->id) % NLINES],
                                       .len = LINE_LEN};
            off += LINE_LEN + 1;
        }
        if (xl_logstore_append(w->ls, r, w->batch, NULL, &err) != XL_OK) {
            fprintf(stderr, "append: %s\n", err.msg);
            exit(1);
        }
        for (size_t i = 0; i < w->batch; i++)
            if (i == 0 || r[i].path != r[i - 1].path)
                free((char *)r[i].path);
        w->lines += w->batch;
        if (w->max_lines ? (long)w->lines >= w->max_lines : now_s() >= w->stop_at)
            break;
    }
    free(r);
    return NULL;
}

static void bench_append(size_t batch, bool sync_full, int nthreads)
{
    char dir[512];
    struct xl_logstore *ls;
    struct worker w[2];
    pthread_t t[2];
    struct xl_logstore_stats st;
    uint64_t total = 0;
    double t0, dt;

    fresh_dir(dir, sizeof(dir));
    ls = open_store(dir, sync_full);
    t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct worker){ls, i, batch, t0 + seconds, 0, 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        total += w[i].lines;
    }
    dt = now_s() - t0;
    xl_logstore_get_stats(ls, &st);
    xl_logstore_close(ls);
    printf("| %5zu | %-6s | %d | %9.0f | %6.1f | %7llu | %5.0f |\n", batch,
           sync_full ? "FULL" : "NORMAL", nthreads, (double)total / dt,
           (double)total * LINE_LEN / dt / 1048576.0, (unsigned long long)st.commits,
           (double)dir_bytes(dir) / (double)total);
    fflush(stdout);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The same rows through plain SQLite: what the table alone costs, then
 * with the dedup index. One thread, batches of 10000, NORMAL. */
static void bench_plain(bool dedup)
{
    char dir[512], path[600];
    sqlite3 *h;
    sqlite3_stmt *st;
    uint64_t n = 0;
    double t0, dt;

    fresh_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/plain.db", dir);
    sqlite3_open(path, &h);
    sqlite3_exec(h,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;"
                 "CREATE TABLE logs(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, src INTEGER NOT"
                 " NULL, file INTEGER NOT NULL, off INTEGER NOT NULL, part INTEGER NOT NULL,"
                 " parts INTEGER NOT NULL, filters TEXT, line TEXT NOT NULL);",
                 NULL, NULL, NULL);
    if (dedup)
        sqlite3_exec(h, "CREATE UNIQUE INDEX logs_dedup ON logs(file, off, part)", NULL, NULL,
                     NULL);
    sqlite3_prepare_v2(h,
                       "INSERT INTO logs(id, ts, src, file, off, part, parts, filters, line)"
                       " VALUES(?1, ?2, 1, 1, ?3, 0, 0, NULL, ?4) ON CONFLICT DO NOTHING",
                       -1, &st, NULL);
    t0 = now_s();
    while (now_s() < t0 + seconds) {
        sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < BATCH_MAX; i++, n++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)n + 1);
            sqlite3_bind_int64(st, 2, t_base + (int64_t)n / 100);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)n * (LINE_LEN + 1));
            sqlite3_bind_text(st, 4, lines[(n * 7919) % NLINES], LINE_LEN, SQLITE_STATIC);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    }
    dt = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(h);
    printf("| plain SQLite table%s | %9.0f | %6.1f |\n", dedup ? " + dedup index" : "",
           (double)n / dt, (double)n * LINE_LEN / dt / 1048576.0);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_cb(void *ctx, const struct xl_log_row *r)
{
    (void)r;
    (*(size_t *)ctx)++;
    return 0;
}

static int bucket_cb(void *ctx, int64_t start, uint64_t c)
{
    (void)start;
    *(uint64_t *)ctx += c;
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Latency of one query shape: median and p99 over runs. */
static void time_query(struct xl_logstore *ls, const char *what, struct xl_log_query q,
                       int64_t hist_step, int runs)
{
    double *lat = calloc((size_t)runs, sizeof(double));
    size_t rows = 0;
    uint64_t total = 0;
    int64_t next = 0;
    struct xl_err err;

    for (int i = 0; i < runs; i++) {
        double t0 = now_s();
        xl_rc rc;

        rows = 0;
        total = 0;
        rc = hist_step ? xl_logstore_histogram(ls, &q, hist_step, bucket_cb, &total, &err)
                       : xl_logstore_search(ls, &q, count_cb, &rows, &next, &err);
        if (rc != XL_OK) {
            fprintf(stderr, "%s: %s\n", what, err.msg);
            exit(1);
        }
        lat[i] = (now_s() - t0) * 1e3;
    }
    qsort(lat, (size_t)runs, sizeof(double), cmp_d);
    printf("| %-44s | %8llu | %8.2f | %8.2f |\n", what,
           (unsigned long long)(hist_step ? total : rows), lat[runs / 2],
           lat[runs * 99 / 100 < runs ? runs * 99 / 100 : runs - 1]);
    fflush(stdout);
    free(lat);
}

static void bench_queries(void)
{
    char dir[512];
    struct xl_logstore *ls;
    struct worker w;
    struct xl_logstore_stats st;
    double t0, dt;
    int64_t t_end = t_base + (int64_t)((double)query_rows * ts_step);
    /* Word j of the skewed vocabulary is in about 1 line of 400 for j = 4000. */
    const char *rare = words[4000], *common = words[0];
    struct xl_err err;
    char phrase[64], prefix[16], notq[64];

    fresh_dir(dir, sizeof(dir));
    ls = open_store(dir, false);
    t0 = now_s();
    w = (struct worker){ls, 0, BATCH_MAX, 0, query_rows, 0};
    worker_main(&w);
    dt = now_s() - t0;
    xl_logstore_maintain(ls, xl_now_ms(), &err); /* refreshes the size figures */
    xl_logstore_get_stats(ls, &st);
    printf("\nfilled %ld rows in %.1f s (%.0f lines/s); %.1f MiB used, %.0f bytes/line\n\n",
           query_rows, dt, (double)query_rows / dt, (double)st.bytes / 1048576.0,
           (double)st.bytes / (double)query_rows);
    snprintf(phrase, sizeof(phrase), "\"ERROR [worker-7]\"");
    snprintf(prefix, sizeof(prefix), "%.3s*", rare);
    snprintf(notq, sizeof(notq), "ERROR NOT %s", common);
    printf("| query (newest page of 100 unless said) | rows | median ms | p99 ms |\n"
           "|---|---:|---:|---:|\n");
    time_query(ls, "no filter", (struct xl_log_query){.limit = 100}, 0, 200);
    time_query(ls, "word ERROR (1 line in 16)", (struct xl_log_query){.text = "ERROR"}, 0, 200);
    time_query(ls, "frequent word", (struct xl_log_query){.text = common}, 0, 200);
    time_query(ls, "rare word", (struct xl_log_query){.text = rare}, 0, 50);
    time_query(ls, "phrase \"ERROR [worker-7]\"", (struct xl_log_query){.text = phrase}, 0, 200);
    time_query(ls, "prefix (3 letters of the rare word)*", (struct xl_log_query){.text = prefix}, 0,
               50);
    time_query(ls, "ERROR NOT frequent-word", (struct xl_log_query){.text = notq}, 0, 50);
    time_query(ls, "NOT ERROR", (struct xl_log_query){.text = "NOT ERROR"}, 0, 20);
    time_query(ls, "word absent from every line", (struct xl_log_query){.text = "zzzzzz"}, 0, 50);
    time_query(ls, "host=web2 (1/4 of lines)", (struct xl_log_query){.host = "web2"}, 0, 200);
    time_query(ls, "ERROR, file glob, last 10% of time",
               (struct xl_log_query){.text = "ERROR",
                                     .path_glob = "/var/log/app/app-0-9*",
                                     .from_ms = t_end - (t_end - t_base) / 10},
               0, 100);
    time_query(ls, "time range in the oldest 1%, no text",
               (struct xl_log_query){.from_ms = t_base, .to_ms = t_base + (t_end - t_base) / 100},
               0, 100);
    time_query(ls, "ERROR in the oldest 1% of time",
               (struct xl_log_query){
                   .text = "ERROR", .from_ms = t_base, .to_ms = t_base + (t_end - t_base) / 100},
               0, 100);
    time_query(ls, "page of 10000, ERROR", (struct xl_log_query){.text = "ERROR", .limit = 10000},
               0, 20);
    time_query(ls, "histogram 1 h, step 1 min, no text",
               (struct xl_log_query){.from_ms = t_base, .to_ms = t_base + 3600 * 1000 - 1}, 60000,
               50);
    time_query(ls, "histogram 1 h, step 1 min, host=web2",
               (struct xl_log_query){
                   .host = "web2", .from_ms = t_base + 1234, .to_ms = t_base + 3600 * 1000 - 1},
               60000, 50);
    time_query(ls, "histogram 1 h, step 1 min, ERROR",
               (struct xl_log_query){
                   .text = "ERROR", .from_ms = t_base, .to_ms = t_base + 3600 * 1000 - 1},
               60000, 5);
    time_query(ls, "histogram all, step 10 s, host=web1",
               (struct xl_log_query){.host = "web1", .from_ms = t_base, .to_ms = t_end}, 10000, 5);
    xl_logstore_close(ls);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    static const size_t batches[] = {1000, 10000};

    if (argc > 1)
        seconds = atof(argv[1]);
    if (argc > 2)
        base_dir = argv[2];
    if (argc > 3)
        query_rows = atol(argv[3]);
    if (query_rows > 0)
        ts_step = 3600000.0 / (double)query_rows;
    t_base = xl_now_ms() / 60000 * 60000 - 2 * 3600 * 1000;
    make_lines();
    printf("append: %d-byte lines, %.0f s per case\n\n", LINE_LEN, seconds);
    printf("| batch | sync | threads | lines/s | MiB/s | commits | disk bytes/line |\n"
           "|---:|---|---:|---:|---:|---:|---:|\n");
    for (size_t b = 0; b < 2; b++)
        for (int s = 1; s >= 0; s--)
            for (int t = 1; t <= 2; t++)
                bench_append(batches[b], s, t);
    printf("\n| baseline, batches of 10000, NORMAL | lines/s | MiB/s |\n|---|---:|---:|\n");
    bench_plain(false);
    bench_plain(true);
    if (query_rows > 0)
        bench_queries();
    free(lines);
    return 0;
}
