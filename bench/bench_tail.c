/* Benchmark of the agent's `tail` input alone: a generated file of ~200-byte
 * lines (10 % contain the keyword ERROR) read from the head into a sink that
 * only counts, once without a filter and once with `include: [ERROR]`. Each
 * run is a child process, so its peak RSS is its own. The file is generated
 * once, read once to warm the page cache, then tailed from the cache (what
 * an agent following files that are being written sees).
 *
 *   bench_tail [--size-mib N] [--dir DIR] [--keep]
 *
 * Prints, per run: MiB/s, lines/s, CPU seconds per GiB, peak RSS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent/inputs/tail/tail.h"
#include "common/log.h"
#include "common/units.h"

struct counter {
    uint64_t lines, bytes, end, target;
    struct xl_tail *t;
};

static void c_line(void *ctx, const struct xl_log_line *l)
{
    struct counter *c = ctx;
    c->lines++;
    c->bytes += l->len;
}

static void c_mark(void *ctx, uint64_t uid, uint64_t end)
{
    struct counter *c = ctx;
    c->end = end;
    xl_tail_commit(c->t, uid, end);
}

static bool c_full(void *ctx)
{
    return false;
}

static double now_s(void)
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

/* Lines like "2026-11-21T08:50:01.123Z INFO [worker-7] request 12345 done in
 * 17ms user=u123 path=/api/v1/items/..." padded to about 200 bytes. */
static int generate(const char *path, uint64_t size)
{
    static const char *words[] = {"alpha", "bravo", "charlie", "delta",  "echo", "foxtrot",
                                  "golf",  "hotel", "india",   "juliet", "kilo", "lima"};
    FILE *f = fopen(path, "w");
    char line[512];
    uint64_t written = 0, n = 0, x = 88172645463325252ULL;

    if (!f)
        return -1;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    while (written < size) {
        int len;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        len = snprintf(line, sizeof(line),
                       "2026-11-21T08:%02u:%02u.%03uZ %s [worker-%u] request %llu %s in %ums "
                       "user=u%u path=/api/v1/items/%llu/%s/%s status=%u bytes=%u "
                       "trace=%016llx",
                       (unsigned)(n / 60000 % 60), (unsigned)(n / 1000 % 60), (unsigned)(n % 1000),
                       n % 10 == 3 ? "ERROR" : "INFO ", (unsigned)(x % 64), (unsigned long long)n,
                       n % 10 == 3 ? "failed" : "done", (unsigned)(x % 997), (unsigned)(x % 100000),
                       (unsigned long long)(x % 1000000), words[x % 12], words[(x >> 8) % 12],
                       200 + (unsigned)(x % 300), (unsigned)(x % 65536), (unsigned long long)x);
        while (len < 199)
            line[len++] = ' ';
        line[len++] = '\n';
        if (fwrite(line, 1, (size_t)len, f) != (size_t)len) {
            fclose(f);
            return -1;
        }
        written += (uint64_t)len;
        n++;
    }
    return fclose(f);
}

/* Read the file once so that the runs find it in the page cache. */
static void warm(const char *path)
{
    char buf[64 * 1024];
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    close(fd);
}

static int run(const char *dir, const char *file, uint64_t size, const char *include)
{
    struct xl_tail_input_cfg cfg;
    struct xl_err err = {0};
    struct counter c = {.target = size};
    struct xl_tail_sink sink = {.line = c_line, .mark = c_mark, .full = c_full, .ctx = &c};
    char state[4096], yaml[8192];
    uv_loop_t loop;
    double t0, c0, secs, cpu;
    struct rusage ru;
    struct xl_tail_stats st;

    snprintf(state, sizeof(state), "%s/state-%d", dir, (int)getpid());
    snprintf(yaml, sizeof(yaml), "name: bench\npaths: ['%s']\nfrom: head\n%s%s%s", file,
             include ? "include: [" : "", include ? include : "", include ? "]\n" : "");
    memset(&cfg, 0, sizeof(cfg));
    if (xl_cfg_load_buf(xl_tail_cfg_keys, &cfg, "bench", yaml, strlen(yaml), &err) != XL_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    uv_loop_init(&loop);
    t0 = now_s();
    c0 = cpu_s();
    if (xl_tail_start(&loop, state, &cfg, 1, &sink, &c.t, &err) != XL_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return 1;
    }
    while (c.end < size)
        uv_run(&loop, UV_RUN_ONCE);
    secs = now_s() - t0;
    cpu = cpu_s() - c0;
    xl_tail_get_stats(c.t, &st);
    xl_tail_stop(c.t);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    xl_cfg_cleanup(xl_tail_cfg_keys, &cfg);
    getrusage(RUSAGE_SELF, &ru);
    printf("%-22s %8.0f MiB/s %11.0f lines/s shipped %10llu  CPU %.3f s/GiB  peak RSS %.1f MiB\n",
           include ? include : "no filter", (double)size / (1 << 20) / secs,
           (double)st.lines_read / secs, (unsigned long long)c.lines,
           cpu / ((double)size / (1 << 30)), (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
    snprintf(yaml, sizeof(yaml), "%s/tail-offsets", state);
    unlink(yaml);
    rmdir(state);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t mib = 1024;
    const char *dir = "/tmp/xl-bench-tail";
    bool keep = false;
    char file[4096];
    struct stat st;
    const char *runs[] = {NULL, "ERROR"};

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size-mib") && i + 1 < argc)
            mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = true;
        else {
            fprintf(stderr, "usage: %s [--size-mib N] [--dir DIR] [--keep]\n", argv[0]);
            return 2;
        }
    }
    xl_log_set_level(XL_LOG_WARN);
    mkdir(dir, 0755);
    snprintf(file, sizeof(file), "%s/bench.log", dir);
    if (stat(file, &st) != 0 || (uint64_t)st.st_size < mib << 20) {
        printf("generating %llu MiB in %s ...\n", (unsigned long long)mib, file);
        if (generate(file, mib << 20) != 0) {
            fprintf(stderr, "%s: %s\n", file, strerror(errno));
            return 1;
        }
    }
    stat(file, &st);
    warm(file); /* measure the input, not the disk: page cache, as on a busy host */
    printf("tail bench: %s, %.0f MiB, ~200-byte lines, 10%% contain ERROR\n", file,
           (double)st.st_size / (1 << 20));
    fflush(stdout);
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        pid_t pid = fork();
        int status;
        if (pid == 0)
            _exit(run(dir, file, (uint64_t)st.st_size, runs[i]));
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    }
    if (!keep)
        unlink(file);
    return 0;
}
