/* Unit tests for the agent's `system` input: the /proc parsers on good and
 * broken buffers (table-driven), then whole collects over the fixture hosts
 * in tests/fixtures/proc (see make_crafted.py there for what each holds). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/inputs/system/proc.h"
#include "agent/inputs/system/system.h"
#include "common/alloc.h"
#include "common/metric.h"

#define FIX XL_FIXTURES "/proc"
#define KB 1024.0
#define EPS 1e-9

/* ------------------------------------------------------------ helpers */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Every sample of the last collect, labels flattened to "k=v,k=v". */
struct sample {
    char name[80];
    char labels[512];
    double v;
    int64_t ts;
};

#define MAX_SAMPLES 4096
static struct sample samples[MAX_SAMPLES];
static size_t nsamples;

static void cap_emit(void *ctx, const char *name, const struct xl_label *l, size_t nl, double v,
                     int64_t ts)
{
    struct sample *s;
    size_t off = 0;

    (void)ctx;
    assert_true(nsamples < MAX_SAMPLES);
    assert_true(xl_metric_name_valid(name));
    s = &samples[nsamples++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->labels[0] = '\0';
    for (size_t i = 0; i < nl; i++) {
        assert_true(xl_label_name_valid(l[i].name));
        assert_non_null(l[i].value);
        off += (size_t)snprintf(s->labels + off, sizeof(s->labels) - off, "%s%s=%s", i ? "," : "",
                                l[i].name, l[i].value);
        assert_true(off < sizeof(s->labels));
    }
    s->v = v;
    s->ts = ts;
}

static const struct xl_sample_sink sink = {cap_emit, NULL};

static const struct sample *find(const char *name, const char *labels)
{
    for (size_t i = 0; i < nsamples; i++)
        if (strcmp(samples[i].name, name) == 0 && strcmp(samples[i].labels, labels) == 0)
            return &samples[i];
    return NULL;
}

static double value(const char *name, const char *labels)
{
    const struct sample *s = find(name, labels);

    if (!s)
        fail_msg("no sample %s{%s}", name, labels);
    return s->v;
}

static size_t count(const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < nsamples; i++)
        n += strcmp(samples[i].name, name) == 0;
    return n;
}

static size_t count_suffix(const char *suffix)
{
    size_t n = 0, sl = strlen(suffix);

    for (size_t i = 0; i < nsamples; i++) {
        size_t nl = strlen(samples[i].name);

        n += nl >= sl && strcmp(samples[i].name + nl - sl, suffix) == 0;
    }
    return n;
}

#define assert_near(a, b)                                                                          \
    assert_true(fabs((double)(a) - (double)(b)) <= EPS * (1 + fabs((double)(b))))

/* A table row for input that must fail with XL_EPARSE (and message m). */
#define BAD(input, m)                                                                              \
    {                                                                                              \
        .in = (input), .rc = XL_EPARSE, .msg = (m)                                                 \
    }
#define BADIN(input)                                                                               \
    {                                                                                              \
        .in = (input), .rc = XL_EPARSE                                                             \
    }

/* Whatever the input: finite values, ratios in [0, 1], no negative value,
 * one sample per series, every sample stamped with the collect's ts. */
static void check_sane(int64_t ts)
{
    for (size_t i = 0; i < nsamples; i++) {
        const struct sample *s = &samples[i];
        size_t nl = strlen(s->name);

        assert_true(isfinite(s->v));
        assert_true(s->v >= 0);
        assert_int_equal(s->ts, ts);
        if (nl > 6 && strcmp(s->name + nl - 6, "_ratio") == 0)
            assert_true(s->v <= 1.0);
        for (size_t j = i + 1; j < nsamples; j++)
            if (strcmp(s->name, samples[j].name) == 0 && strcmp(s->labels, samples[j].labels) == 0)
                fail_msg("duplicate series %s{%s}", s->name, s->labels);
    }
}

/* The input's root is a temp dir whose "proc" is a symlink to one fixture
 * snapshot, so one input can see a host at two points in time. */
static char tmproot[64];

static void use_snapshot(const char *host)
{
    char link[128], target[512];

    snprintf(link, sizeof(link), "%s/proc", tmproot);
    snprintf(target, sizeof(target), "%s/%s/proc", FIX, host);
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmproot, sizeof(tmproot), "/tmp/xl_sysinput_XXXXXX");
    return mkdtemp(tmproot) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char link[128];

    (void)state;
    snprintf(link, sizeof(link), "%s/proc", tmproot);
    unlink(link);
    return rmdir(tmproot);
}

/* statvfs stand-in: paths are looked up relative to tmproot. */
static char seen_paths[64][256];
static size_t nseen;

static int fake_statvfs(const char *path, struct statvfs *out)
{
    size_t rl = strlen(tmproot);
    const char *rel;

    assert_true(strncmp(path, tmproot, rl) == 0);
    rel = path + rl;
    if (nseen < 64)
        snprintf(seen_paths[nseen++], sizeof(seen_paths[0]), "%s", rel);
    memset(out, 0, sizeof(*out));
    out->f_bsize = out->f_frsize = 4096;
    out->f_blocks = 1000;
    out->f_bfree = out->f_bavail = 500;
    out->f_files = 100;
    out->f_ffree = 50;
    if (strcmp(rel, "/") == 0) {
        out->f_blocks = 25600000;
        out->f_bfree = 12800000;
        out->f_bavail = 11520000;
        out->f_files = 6553600;
        out->f_ffree = 6000000;
    } else if (strcmp(rel, "/mnt/Backup Disk") == 0) {
        out->f_frsize = 1024;
        out->f_bfree = out->f_bavail = 250;
    } else if (strcmp(rel, "/run/empty") == 0) {
        out->f_blocks = out->f_bfree = out->f_bavail = 0;
    } else if (strcmp(rel, "/mnt/secret") == 0) {
        errno = EACCES;
        return -1;
    }
    return 0;
}

static bool seen(const char *rel)
{
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen_paths[i], rel) == 0)
            return true;
    return false;
}

static struct xl_sysinput *new_input(bool per_cpu)
{
    struct xl_sys_opts o = {tmproot, per_cpu, fake_statvfs};
    struct xl_err err;
    struct xl_sysinput *s = xl_sysinput_new(&o, &err);

    assert_non_null(s);
    return s;
}

/* One collect of a snapshot; fails the test on any reader error. */
static void collect_ok(struct xl_sysinput *s, const char *host, int64_t ts, int64_t mono)
{
    struct xl_err err;
    xl_rc rc;

    use_snapshot(host);
    nsamples = 0;
    nseen = 0;
    rc = xl_sysinput_collect(s, ts, mono, &sink, &err);
    if (rc != XL_OK || err.rc != XL_OK)
        fail_msg("collect %s: %s", host, err.msg);
    check_sane(ts);
}

/* ------------------------------------------------------------ /proc/stat */

struct stat_case {
    const char *in;
    xl_rc rc;
    const char *msg; /* prefix of err.msg */
    size_t ncpu;
    uint64_t user, ctxt;
};

static void test_parse_stat_table(void **state)
{
    static const struct stat_case cases[] = {
        {"cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nctxt 5\nprocesses 6\n"
         "procs_running 1\nprocs_blocked 0\n",
         XL_OK, NULL, 1, 1, 5},
        /* 2.6.11 style: 8 numbers, no guest; no trailing newline */
        {"cpu 10 0 3 4 5 6 7 8\ncpu0 10 0 3 4 5 6 7 8\ncpu1 0 0 0 0 0 0 0 0\nctxt 7\n"
         "processes 6\nprocs_running 1\nprocs_blocked 0",
         XL_OK, NULL, 2, 10, 7},
        /* an offline CPU leaves a hole in the numbering */
        {"cpu 1 1 1 1 1 1 1 1 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\ncpu2 1 1 1 1 1 1 1 1 0 0\n"
         "intr 1 2 3\nctxt 18446744073709551615\nbtime 1\nprocesses 6\nprocs_running 1\n"
         "procs_blocked 0\n",
         XL_OK, NULL, 2, 1, UINT64_MAX},
        BAD("cpu  1530 0 991 68879 295 0 29 6 0 0\ncpu0 410 0 369",
            "proc/stat:2: expected at least 8 numbers after cpu0, got 3"),
        BAD("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 x 4 5 6 7 8 9 10\n",
            "proc/stat:2: non-numeric field after cpu0"),
        BAD("cpu  1 2 3 4 5 6 7 8 9 10\ncpuX 1 2 3 4 5 6 7 8 9 10\n",
            "proc/stat:2: bad cpu name \"cpuX\""),
        BAD("cpu  1 2 3 4 5 6 7 8 9 10\nctxt\n", "proc/stat:2: expected a number after ctxt"),
        BAD("cpu  1 2 3 4 5 6 7 8 9 10\nctxt 99999999999999999999999\n",
            "proc/stat:2: expected a number after ctxt"),
        BAD("cpu  1 2 3 4 5 6 7 8 9 10\nprocesses 6\nprocs_running 1\nprocs_blocked 0\n",
            "proc/stat: no \"ctxt\" line"),
        BAD("ctxt 1\nprocesses 6\n", "proc/stat: no \"cpu\" line"),
        BAD("", "proc/stat: no \"cpu\" line"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct stat_case *c = &cases[i];
        struct xl_cpu_times cpus[4];
        struct xl_proc_stat st;
        struct xl_err err;
        size_t ncpu;
        xl_rc rc;

        xl_err_clear(&err);
        rc = xl_proc_parse_stat(c->in, strlen(c->in), &st, cpus, 4, &ncpu, &err);
        if (rc != c->rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
        if (c->msg) {
            if (strncmp(err.msg, c->msg, strlen(c->msg)) != 0)
                fail_msg("case %zu: msg \"%s\"", i, err.msg);
            continue;
        }
        assert_int_equal(ncpu, c->ncpu);
        assert_int_equal(st.total.t[XL_CPU_USER], c->user);
        assert_int_equal(st.ctxt, c->ctxt);
    }
}

static void test_parse_stat_fixtures(void **state)
{
    struct xl_cpu_times cpus[64];
    struct xl_proc_stat st;
    struct xl_err err;
    size_t len, ncpu;
    char *buf;

    (void)state;
    buf = slurp(FIX "/vm2/proc/stat", &len);
    assert_int_equal(xl_proc_parse_stat(buf, len, &st, cpus, 64, &ncpu, &err), XL_OK);
    assert_int_equal(ncpu, 2);
    assert_int_equal(st.total.t[XL_CPU_USER], cpus[0].t[XL_CPU_USER] + cpus[1].t[XL_CPU_USER]);
    assert_int_equal(cpus[1].id, 1);
    free(buf);

    buf = slurp(FIX "/big64/proc/stat", &len);
    /* too small an array: the count still tells how many there are */
    assert_int_equal(xl_proc_parse_stat(buf, len, &st, cpus, 3, &ncpu, &err), XL_OK);
    assert_int_equal(ncpu, 64);
    assert_int_equal(xl_proc_parse_stat(buf, len, &st, NULL, 0, &ncpu, &err), XL_OK);
    assert_int_equal(ncpu, 64);
    assert_int_equal(xl_proc_parse_stat(buf, len, &st, cpus, 64, &ncpu, &err), XL_OK);
    assert_int_equal(cpus[63].id, 63);
    assert_int_equal(st.procs_running, 7);
    assert_int_equal(st.procs_blocked, 2);
    assert_int_equal(st.processes, 7654321);
    /* every proper prefix of the file that cuts a cpu line fails cleanly */
    for (size_t cut = 0; cut < 400; cut++) {
        xl_rc rc = xl_proc_parse_stat(buf, cut, &st, cpus, 64, &ncpu, &err);

        assert_int_equal(rc, XL_EPARSE);
    }
    free(buf);
}

/* ------------------------------------------------------------ meminfo */

struct mem_case {
    const char *in;
    xl_rc rc;
    const char *msg;
    double total, available, swap_total;
    bool estimated;
};

#define MEM_BASE "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\n"

static void test_parse_meminfo_table(void **state)
{
    static const struct mem_case cases[] = {
        {MEM_BASE "MemAvailable: 500 kB\nSwapTotal: 64 kB\nSwapFree: 32 kB\n", XL_OK, NULL,
         1000 * KB, 500 * KB, 64 * KB, false},
        /* kernel < 3.14: no MemAvailable, estimated as free + buffers + cached */
        {MEM_BASE "SwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n", XL_OK, NULL, 1000 * KB,
         130 * KB, 0, true},
        BAD("MemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
            "proc/meminfo: no MemTotal line"),
        BAD(MEM_BASE "SwapTotal: lots kB\n", "proc/meminfo:5: expected a number after SwapTotal:"),
        BAD(MEM_BASE "SwapTotal:", "proc/meminfo:5: expected a number after SwapTotal:"),
        BAD(MEM_BASE "SwapTotal: 5 MB\n", "proc/meminfo:5: unknown unit \"MB\" after SwapTotal:"),
        BAD(MEM_BASE "SwapTotal: 18446744073709551615 kB\n",
            "proc/meminfo:5: SwapTotal: value too large"),
        BAD("", "proc/meminfo: no MemTotal line"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mem_case *c = &cases[i];
        struct xl_proc_meminfo m;
        struct xl_err err;
        xl_rc rc;

        xl_err_clear(&err);
        rc = xl_proc_parse_meminfo(c->in, strlen(c->in), &m, &err);
        if (rc != c->rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
        if (c->msg) {
            if (strncmp(err.msg, c->msg, strlen(c->msg)) != 0)
                fail_msg("case %zu: msg \"%s\"", i, err.msg);
            continue;
        }
        assert_near(m.total, c->total);
        assert_near(m.available, c->available);
        assert_near(m.swap_total, c->swap_total);
        assert_int_equal(m.available_estimated, c->estimated);
    }
}

/* ------------------------------------------------------------ loadavg, uptime */

static void test_parse_loadavg_uptime(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        double l1, l15;
        uint64_t threads;
    } la[] = {
        {"0.10 0.06 0.01 1/87 4454\n", XL_OK, 0.10, 0.01, 87},
        {"123.45 99.00 7 12/34567 1", XL_OK, 123.45, 7, 34567},
        BADIN("0.10 0.06\n"),
        BADIN("0.10 0.06 0.01\n"),
        BADIN("0.10 0.06 0.01 187 4454\n"),
        BADIN("0.10 0.06 0.01 1/ 4454\n"),
        BADIN("a b c 1/2 3\n"),
        BADIN("0. 0.06 0.01 1/87 4454\n"),
        BADIN(""),
    };
    static const struct {
        const char *in;
        xl_rc rc;
        double up;
    } up[] = {
        {"359.95 688.79\n", XL_OK, 359.95},
        {"12 3", XL_OK, 12},
        BADIN("\n"),
        BADIN("-1.0 2\n"),
        BADIN(".5 2\n"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(la) / sizeof(la[0]); i++) {
        struct xl_proc_loadavg l;
        struct xl_err err;
        xl_rc rc = xl_proc_parse_loadavg(la[i].in, strlen(la[i].in), &l, &err);

        if (rc != la[i].rc)
            fail_msg("loadavg case %zu: rc %d", i, rc);
        if (rc != XL_OK) {
            assert_true(strncmp(err.msg, "proc/loadavg:1: ", 16) == 0);
            continue;
        }
        assert_near(l.load1, la[i].l1);
        assert_near(l.load15, la[i].l15);
        assert_int_equal(l.threads_total, la[i].threads);
    }
    for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
        struct xl_err err;
        double v = -1;
        xl_rc rc = xl_proc_parse_uptime(up[i].in, strlen(up[i].in), &v, &err);

        if (rc != up[i].rc)
            fail_msg("uptime case %zu: rc %d", i, rc);
        if (rc == XL_OK)
            assert_near(v, up[i].up);
        else
            assert_string_equal(err.msg, "proc/uptime:1: expected seconds since boot");
    }
}

/* ------------------------------------------------------------ diskstats */

static void test_disk_wanted(void **state)
{
    static const struct {
        const char *name;
        bool want;
    } cases[] = {
        {"sda", true},       {"sda1", false},        {"sdaa", true},    {"sdaa12", false},
        {"vda", true},       {"vdb3", false},        {"xvda", true},    {"xvda1", false},
        {"hdc", true},       {"hdc5", false},        {"nvme0n1", true}, {"nvme0n1p1", false},
        {"nvme10n12", true}, {"nvme10n12p3", false}, {"mmcblk0", true}, {"mmcblk0p2", false},
        {"dm-0", true},      {"dm-12", true},        {"md0", true},     {"md127", true},
        {"md0p1", false},    {"nbd0", true},         {"nbd0p1", false}, {"loop0", false},
        {"loop12", false},   {"ram0", false},        {"zram0", false},  {"fd0", false},
        {"sr0", true},       {"loopback", true},     {"sdp", true},     {"sdp1", false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (xl_proc_disk_wanted(cases[i].name) != cases[i].want)
            fail_msg("%s: expected %d", cases[i].name, cases[i].want);
}

static void test_parse_diskstats(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        const char *msg;
        size_t n;
    } cases[] = {
        /* kernel 4.18+ (15 numbers), 2.6 (11), 5.5+ (17) on one page */
        {"   8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
         "   8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n"
         " 259 0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
         XL_OK, NULL, 2},
        {"\n\n", XL_OK, NULL, 0},
        BAD("   8 0 sda 1 2 3 4 5\n",
            "proc/diskstats:1: expected at least 11 numbers after sda, got 5"),
        BAD("   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n   8 1 sda1 1 2 3 x 5 6 7 8 9 10 11\n",
            "proc/diskstats:2: expected at least 11 numbers after sda1, got 3 and a non-number"),
        BAD("   8 0\n", "proc/diskstats:1: expected major, minor and device name"),
        BAD("   8 x sda 1 2 3 4 5 6 7 8 9 10 11\n",
            "proc/diskstats:1: expected major, minor and device name"),
        BAD("   8 0 abcdefghijklmnopqrstuvwxyz0123456 1 2 3 4 5 6 7 8 9 10 11\n",
            "proc/diskstats:1: device name longer than 31 bytes"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_disk_stat d[4];
        struct xl_err err;
        size_t n;
        xl_rc rc = xl_proc_parse_diskstats(cases[i].in, strlen(cases[i].in), d, 4, &n, &err);

        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
        if (cases[i].msg) {
            assert_string_equal(err.msg, cases[i].msg);
            continue;
        }
        assert_int_equal(n, cases[i].n);
    }
    {
        struct xl_disk_stat d[16];
        struct xl_err err;
        size_t n, len;
        char *buf = slurp(FIX "/big64/proc/diskstats", &len);
        const char *want[] = {"nvme0n1", "sda", "dm-0", "dm-1", "md0", "sr0"};

        assert_int_equal(xl_proc_parse_diskstats(buf, len, d, 16, &n, &err), XL_OK);
        assert_int_equal(n, 6);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(d[i].name, want[i]);
        assert_int_equal(d[0].reads, 5000000);
        assert_int_equal(d[0].read_sectors, 800000000);
        assert_int_equal(d[0].writes, 7000000);
        assert_int_equal(d[0].write_sectors, 600000000);
        assert_int_equal(d[0].io_ticks_ms, 1000000);
        assert_int_equal(xl_proc_parse_diskstats(buf, len, d, 2, &n, &err), XL_OK);
        assert_int_equal(n, 6);
        free(buf);
    }
}

/* ------------------------------------------------------------ net/dev */

#define NET_HDR                                                                                    \
    "Inter-|   Receive                                                |  Transmit\n"               \
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "     \
    "drop fifo colls carrier compressed\n"

static void test_parse_netdev(void **state)
{
    static const struct {
        const char *in;
        xl_rc rc;
        const char *msg;
        size_t n;
        const char *name0;
        uint64_t tx_bytes0;
    } cases[] = {
        {NET_HDR "    lo:    3267      29    0    0    0     0          0         0     3267      "
                 "29    0    0    0     0       0          0\n",
         XL_OK, NULL, 1, "lo", 3267},
        /* 2.4-era: no space after the colon; a 15-byte name; odd bytes */
        {NET_HDR "  eth0:12345678901 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                 "enx0123456789ab: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                 "we#ird.name-\xc3\xbc: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
         XL_OK, NULL, 3, "eth0", 9},
        {NET_HDR, XL_OK, NULL, 0, NULL, 0},
        BAD(NET_HDR "  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            "proc/net/dev:3: expected \"interface:\""),
        BAD(NET_HDR "  eth0: 1 2 3 4 5 6 7 8\n",
            "proc/net/dev:3: expected 16 numbers after eth0:, got 8"),
        BAD(NET_HDR "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n",
            "proc/net/dev:3: expected 16 numbers after eth0:, got 15 and a non-number"),
        BAD(NET_HDR "  abcdefghijklmnop: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            "proc/net/dev:3: interface name of 16 bytes (1 to 15)"),
        BAD(NET_HDR "  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            "proc/net/dev:3: interface name of 0 bytes (1 to 15)"),
        BAD("Inter-|   Receive  |  Transmit\n", "proc/net/dev: missing the two header lines"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_net_stat d[4];
        struct xl_err err;
        size_t n;
        xl_rc rc = xl_proc_parse_netdev(cases[i].in, strlen(cases[i].in), d, 4, &n, &err);

        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
        if (cases[i].msg) {
            assert_string_equal(err.msg, cases[i].msg);
            continue;
        }
        assert_int_equal(n, cases[i].n);
        if (n) {
            assert_string_equal(d[0].name, cases[i].name0);
            assert_int_equal(d[0].c[XL_NET_TX_BYTES], cases[i].tx_bytes0);
        }
        if (i == 1) {
            assert_int_equal(d[0].c[XL_NET_RX_BYTES], 12345678901ull);
            assert_string_equal(d[1].name, "enx0123456789ab");
            assert_int_equal(d[1].c[XL_NET_RX_DROP], 4);
            assert_int_equal(d[1].c[XL_NET_TX_DROP], 12);
            assert_string_equal(d[2].name, "we#ird.name-\xc3\xbc");
        }
    }
}

/* ------------------------------------------------------------ mounts */

static void test_unescape(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/mnt/My\\040Disk", "/mnt/My Disk"},
        {"/a\\011b\\012c\\134d", "/a\tb\nc\\d"},
        {"/trailing\\04", "/trailing\\04"}, /* incomplete escape stays as is */
        {"/not\\999octal", "/not\\999octal"},
        {"/x\\", "/x\\"},
        {"", ""},
    };
    char out[64], tiny[4];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(xl_proc_unescape(cases[i].in, strlen(cases[i].in), out, sizeof(out)));
        assert_string_equal(out, cases[i].out);
    }
    assert_false(xl_proc_unescape("/abcd", 5, tiny, sizeof(tiny)));
    assert_true(xl_proc_unescape("/a\\040", 6, tiny, sizeof(tiny)));
    assert_string_equal(tiny, "/a ");
}

static void test_fs_pseudo(void **state)
{
    static const char *const pseudo[] = {
        "proc", "sysfs",  "cgroup",  "cgroup2",    "devpts", "devtmpfs",  "overlay", "squashfs",
        "nsfs", "autofs", "tracefs", "fuse.lxcfs", "bpf",    "hugetlbfs", "ramfs",   "rpc_pipefs"};
    static const char *const real[] = {"ext4", "xfs", "btrfs",      "vfat",  "tmpfs", "nfs4",
                                       "cifs", "zfs", "fuse.sshfs", "exfat", "ext",   "proc2"};

    (void)state;
    for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
        assert_true(xl_proc_fs_is_pseudo(pseudo[i], strlen(pseudo[i])));
    for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++)
        assert_false(xl_proc_fs_is_pseudo(real[i], strlen(real[i])));
}

static void test_parse_mounts_select(void **state)
{
    static const char in[] = "proc /proc proc rw 0 0\n"
                             "/dev/sda1 / ext4 rw 0 0\n"
                             "tmpfs /run tmpfs rw 0 0\n"
                             "tmpfs /tmp tmpfs rw 0 0\n"         /* other tmpfs: kept */
                             "/dev/sda1 /srv/bind ext4 rw 0 0\n" /* bind mount */
                             "/dev/sdb1 /mnt/a\\040b ext4 rw 0 0\n"
                             "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n" /* under /sys */
                             "/dev/sdc1 /data xfs rw 0 0\n"
                             "/dev/sdd1 /data xfs rw 0 0\n" /* hides sdc1 */
                             "/dev/sde1 /x ext4 rw 0 0\n"
                             "proc /x proc rw 0 0\n" /* hides sde1 */
                             "\n";
    static const bool want_skip[] = {true, false, false, false, true, false,
                                     true, true,  false, true,  true};
    struct xl_mount m[16];
    struct xl_err err;
    size_t n;

    (void)state;
    assert_int_equal(xl_proc_parse_mounts(in, strlen(in), m, 16, &n, &err), XL_OK);
    assert_int_equal(n, 11);
    assert_int_equal(m[5].mnt_len, strlen("/mnt/a\\040b"));
    xl_proc_mounts_select(m, n);
    for (size_t i = 0; i < n; i++)
        if (m[i].skip != want_skip[i])
            fail_msg("mount %zu (%.*s): skip %d", i, (int)m[i].mnt_len, m[i].mnt, m[i].skip);

    assert_int_equal(xl_proc_parse_mounts(in, strlen(in), m, 2, &n, &err), XL_OK);
    assert_int_equal(n, 11);
    {
        static const char bad[] = "/dev/sda1 / ext4 rw 0 0\n/dev/sda2 /b ext4\n";

        assert_int_equal(xl_proc_parse_mounts(bad, strlen(bad), m, 16, &n, &err), XL_EPARSE);
    }
    assert_string_equal(err.msg, "proc/mounts:2: expected 6 fields, got 3");
}

static void test_utf8_fix(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"eth0", "eth0"},
        {"wg-\xc3\xbc", "wg-\xc3\xbc"},
        {"bad\xffname", "bad?name"},
        {"cut\xc3", "cut?"},
        {"\xe2\x82\xac", "\xe2\x82\xac"},           /* euro sign */
        {"\xed\xa0\x80", "???"},                    /* surrogate */
        {"\xc0\xaf", "??"},                         /* overlong */
        {"\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!"}, /* emoji */
        {"\xf4\x90\x80\x80", "????"},               /* above U+10FFFF */
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        xl_proc_utf8_fix(buf);
        assert_string_equal(buf, cases[i].out);
    }
}

/* ------------------------------------------------------------ whole collects */

static const char *const rate_suffixes[] = {"_per_second", "node_cpu_usage_ratio",
                                            "node_cpu_mode_ratio", "_io_util_ratio"};

static size_t count_rates(void)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof(rate_suffixes) / sizeof(rate_suffixes[0]); i++)
        n += count_suffix(rate_suffixes[i]);
    return n;
}

static void test_collect_vm2_real(void **state)
{
    struct xl_sysinput *s = new_input(false);

    (void)state;
    collect_ok(s, "vm2", 1700000000000, 5000);
    assert_int_equal(count_rates(), 0);
    assert_near(value("node_cpu_count", ""), 2);
    assert_near(value("node_memory_total_bytes", ""), 24684084 * KB);
    assert_near(value("node_swap_total_bytes", ""), 0);
    assert_near(value("node_swap_used_ratio", ""), 0);
    assert_near(value("node_processes_pids", ""), 5);
    assert_true(value("node_processes_threads", "") > 0);
    assert_true(value("node_uptime_seconds", "") > 0);
    /* / on vda, and /dev/shm once although mounted twice; the tmpfs on
     * /sys/fs/cgroup is under /sys */
    assert_int_equal(count("node_filesystem_size_bytes"), 2);
    assert_non_null(find("node_filesystem_size_bytes", "device=/dev/vda,mountpoint=/,fstype=ext4"));
    assert_non_null(
        find("node_filesystem_size_bytes", "device=tmpfs,mountpoint=/dev/shm,fstype=tmpfs"));

    collect_ok(s, "vm2-t1", 1700000010000, 15000);
    /* only vda: the loop and zram devices are skipped */
    assert_int_equal(count("node_disk_io_util_ratio"), 1);
    assert_true(value("node_disk_written_bytes_per_second", "device=vda") > 0);
    assert_int_equal(count("node_network_receive_bytes_per_second"), 4);
    assert_true(value("node_cpu_usage_ratio", "") > 0);
    assert_int_equal(count("node_cpu_mode_ratio"), 8);
    {
        double sum = 0;

        for (size_t i = 0; i < nsamples; i++)
            if (strcmp(samples[i].name, "node_cpu_mode_ratio") == 0)
                sum += samples[i].v;
        assert_near(sum, 1.0);
    }
    xl_sysinput_free(s);
}

static void test_collect_big64_rates(void **state)
{
    struct xl_sysinput *s = new_input(false);
    static const struct {
        const char *name, *labels;
        double v;
    } want[] = {
        {"node_cpu_usage_ratio", "", 1 - 40950.0 / 64000},
        {"node_cpu_mode_ratio", "mode=user", 13500.0 / 64000},
        {"node_cpu_mode_ratio", "mode=nice", 0},
        {"node_cpu_mode_ratio", "mode=system", 6400.0 / 64000},
        {"node_cpu_mode_ratio", "mode=idle", 37800.0 / 64000},
        {"node_cpu_mode_ratio", "mode=iowait", 3150.0 / 64000},
        {"node_cpu_mode_ratio", "mode=irq", 630.0 / 64000},
        {"node_cpu_mode_ratio", "mode=softirq", 1260.0 / 64000},
        {"node_cpu_mode_ratio", "mode=steal", 1260.0 / 64000},
        {"node_cpu_count", "", 64},
        {"node_context_switches_per_second", "", 12345},
        {"node_forks_per_second", "", 50},
        {"node_procs_running", "", 7},
        {"node_procs_blocked", "", 2},
        {"node_processes_pids", "", 5},
        {"node_processes_threads", "", 2345},
        {"node_uptime_seconds", "", 1234577.89},
        {"node_load1", "", 12.5},
        {"node_load5", "", 10.25},
        {"node_load15", "", 8},
        {"node_memory_total_bytes", "", 268435456 * KB},
        {"node_memory_available_bytes", "", 201326592 * KB},
        {"node_memory_used_bytes", "", 67108864 * KB},
        {"node_memory_used_ratio", "", 0.25},
        {"node_memory_free_bytes", "", 150994944 * KB},
        {"node_memory_buffers_bytes", "", 1048576 * KB},
        {"node_memory_cached_bytes", "", 41943040 * KB},
        {"node_swap_total_bytes", "", 8388608 * KB},
        {"node_swap_used_bytes", "", 2097152 * KB},
        {"node_swap_used_ratio", "", 0.25},
        {"node_disk_read_bytes_per_second", "device=nvme0n1", 10485760},
        {"node_disk_written_bytes_per_second", "device=nvme0n1", 2097152},
        {"node_disk_reads_per_second", "device=nvme0n1", 100},
        {"node_disk_writes_per_second", "device=nvme0n1", 50},
        {"node_disk_io_util_ratio", "device=nvme0n1", 0.25},
        {"node_disk_read_bytes_per_second", "device=dm-0", 419430.4},
        {"node_disk_written_bytes_per_second", "device=dm-0", 4194304},
        {"node_disk_reads_per_second", "device=dm-0", 25},
        {"node_disk_writes_per_second", "device=dm-0", 200},
        {"node_disk_io_util_ratio", "device=dm-0", 1.0}, /* 10.5 s busy in 10 s: capped */
        {"node_disk_reads_per_second", "device=dm-1", 0},
        {"node_disk_io_util_ratio", "device=sr0", 0},
        {"node_network_receive_bytes_per_second", "interface=enp129s0f1np1", 1250000},
        {"node_network_receive_packets_per_second", "interface=enp129s0f1np1", 1000},
        {"node_network_receive_errors_per_second", "interface=enp129s0f1np1", 1},
        {"node_network_receive_drops_per_second", "interface=enp129s0f1np1", 0.5},
        {"node_network_transmit_bytes_per_second", "interface=enp129s0f1np1", 250000},
        {"node_network_transmit_packets_per_second", "interface=enp129s0f1np1", 500},
        {"node_network_transmit_errors_per_second", "interface=enp129s0f1np1", 0},
        {"node_network_transmit_drops_per_second", "interface=enp129s0f1np1", 0.1},
        {"node_network_receive_bytes_per_second", "interface=enx0123456789ab", 100},
        {"node_network_receive_bytes_per_second", "interface=lo", 0},
        {"node_network_receive_bytes_per_second", "interface=wg.vpn-\xc3\xbc", 0},
        {"node_network_receive_bytes_per_second", "interface=bad?name", 0},
        {"node_network_transmit_bytes_per_second", "interface=odd#if_1.2", 0},
        {"node_filesystem_size_bytes", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4",
         25600000 * 4096.0},
        {"node_filesystem_avail_bytes", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4",
         11520000 * 4096.0},
        {"node_filesystem_used_bytes", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4",
         12800000 * 4096.0},
        {"node_filesystem_used_ratio", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4",
         12800000.0 / (12800000 + 11520000)},
        {"node_filesystem_files", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4", 6553600},
        {"node_filesystem_files_free", "device=/dev/mapper/vg0-root,mountpoint=/,fstype=ext4",
         6000000},
        {"node_filesystem_size_bytes", "device=/dev/sda1,mountpoint=/mnt/Backup Disk,fstype=ext4",
         1024000},
        {"node_filesystem_used_ratio", "device=/dev/sda1,mountpoint=/mnt/Backup Disk,fstype=ext4",
         0.75},
        {"node_filesystem_used_ratio",
         "device=/dev/sdb1,mountpoint=/media/usb\ttab\\slash,fstype=vfat", 0.5},
        {"node_filesystem_used_ratio", "device=/dev/mapper/vg0-data,mountpoint=/data,fstype=xfs",
         0.5},
        {"node_filesystem_used_ratio", "device=nas01:/export/home,mountpoint=/home,fstype=nfs4",
         0.5},
        {"node_filesystem_used_ratio", "device=tmpfs,mountpoint=/tmp,fstype=tmpfs", 0.5},
    };

    (void)state;
    collect_ok(s, "big64", 1700000000000, 1000);
    assert_int_equal(count_rates(), 0);
    assert_near(value("node_uptime_seconds", ""), 1234567.89);
    collect_ok(s, "big64-t1", 1700000010000, 11000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct sample *smp = find(want[i].name, want[i].labels);

        if (!smp)
            fail_msg("no sample %s{%s}", want[i].name, want[i].labels);
        if (fabs(smp->v - want[i].v) > EPS * (1 + fabs(want[i].v)))
            fail_msg("%s{%s} = %.10g, want %.10g", want[i].name, want[i].labels, smp->v, want[i].v);
    }
    /* disks: nvme0n1, dm-0, dm-1, sr0. sda went backwards (reset), nvme1n1
     * is new, md0 went away; partitions, loop, ram and zram never show. */
    assert_int_equal(count("node_disk_io_util_ratio"), 4);
    assert_int_equal(count("node_disk_read_bytes_per_second"), 4);
    assert_null(find("node_disk_reads_per_second", "device=sda"));
    assert_null(find("node_disk_io_util_ratio", "device=sda"));
    assert_null(find("node_disk_reads_per_second", "device=nvme1n1"));
    /* interfaces: the bridge's counters restarted, veth9z8y7x6 is new */
    assert_int_equal(count("node_network_receive_bytes_per_second"), 6);
    assert_null(find("node_network_receive_bytes_per_second", "interface=br-3f2a9c1d7e6b"));
    assert_null(find("node_network_receive_bytes_per_second", "interface=veth9z8y7x6"));
    /* file systems: 11 real ones; bind mounts, pseudo, /sys, a 0-block tmpfs,
     * the hidden first /tmp and an unreadable mount are left out */
    assert_int_equal(count("node_filesystem_size_bytes"), 11);
    assert_int_equal(count("node_filesystem_files_free"), 11);
    assert_null(find("node_filesystem_size_bytes",
                     "device=/dev/mapper/vg0-data,mountpoint=/srv/nfs/data,fstype=xfs"));
    assert_true(seen("/mnt/secret"));
    assert_true(seen("/media/usb\ttab\\slash"));
    assert_true(seen("/run/empty"));
    assert_false(seen("/proc"));
    assert_false(seen("/srv/nfs/data"));
    /* no per-CPU series unless asked */
    assert_int_equal(count("node_cpu_usage_ratio"), 1);
    xl_sysinput_free(s);
}

static void test_collect_counters_backwards(void **state)
{
    struct xl_sysinput *s = new_input(true);

    (void)state;
    collect_ok(s, "big64-t1", 1700000000000, 1000);
    collect_ok(s, "big64", 1700000010000, 11000);
    /* cpu, ctxt, forks all went down: no ratio, no rate */
    assert_int_equal(count("node_cpu_usage_ratio"), 0);
    assert_int_equal(count("node_cpu_mode_ratio"), 0);
    assert_int_equal(count("node_context_switches_per_second"), 0);
    assert_int_equal(count("node_forks_per_second"), 0);
    assert_null(find("node_disk_reads_per_second", "device=nvme0n1"));
    assert_null(find("node_disk_io_util_ratio", "device=dm-0"));
    assert_null(find("node_network_receive_bytes_per_second", "interface=enp129s0f1np1"));
    /* the counters that did not go down still give rates; gauges are there */
    assert_near(value("node_network_transmit_errors_per_second", "interface=enp129s0f1np1"), 0);
    assert_non_null(find("node_disk_reads_per_second", "device=sda"));
    assert_near(value("node_memory_used_ratio", ""), 0.25);

    /* a monotonic clock that stands still or goes back gives no rates */
    collect_ok(s, "big64-t1", 1700000020000, 11000);
    assert_int_equal(count_rates(), 0);
    collect_ok(s, "big64", 1700000030000, 500);
    assert_int_equal(count_rates(), 0);
    assert_true(nsamples > 0);
    xl_sysinput_free(s);
}

static void test_collect_per_cpu(void **state)
{
    struct xl_sysinput *s = new_input(true);
    char label[16];

    (void)state;
    collect_ok(s, "big64", 1700000000000, 1000);
    assert_int_equal(count("node_cpu_usage_ratio"), 0);
    collect_ok(s, "big64-t1", 1700000010000, 11000);
    assert_int_equal(count("node_cpu_usage_ratio"), 65);
    assert_near(value("node_cpu_usage_ratio", "cpu=3"), 1.0);
    for (int i = 0; i < 64; i++) {
        if (i == 3)
            continue;
        snprintf(label, sizeof(label), "cpu=%d", i);
        assert_near(value("node_cpu_usage_ratio", label), 0.35);
    }
    /* the CPU count changes: 64 -> 2 -> 64 (arrays shrink and grow) */
    collect_ok(s, "vm2", 1700000020000, 21000);
    assert_near(value("node_cpu_count", ""), 2);
    collect_ok(s, "vm2-t1", 1700000030000, 31000);
    assert_int_equal(count("node_cpu_usage_ratio"), 3);
    collect_ok(s, "big64-t1", 1700000040000, 41000);
    assert_near(value("node_cpu_count", ""), 64);
    xl_sysinput_free(s);
}

static void test_collect_pi4_noswap(void **state)
{
    struct xl_sysinput *s = new_input(false);

    (void)state;
    collect_ok(s, "pi4", 1700000000000, 1000);
    assert_near(value("node_swap_total_bytes", ""), 0);
    assert_near(value("node_swap_used_bytes", ""), 0);
    assert_near(value("node_swap_used_ratio", ""), 0);
    assert_near(value("node_memory_used_bytes", ""), (3884084 - 2764120) * KB);
    assert_near(value("node_cpu_count", ""), 4);
    assert_near(value("node_processes_pids", ""), 3);
    /* /dev/sda1 mounted twice: reported once, at its first mount point */
    assert_int_equal(count("node_filesystem_size_bytes"), 4);
    assert_non_null(find("node_filesystem_size_bytes",
                         "device=/dev/sda1,mountpoint=/mnt/My Photos 2024,fstype=exfat"));
    collect_ok(s, "pi4", 1700000010000, 11000);
    assert_int_equal(count("node_disk_io_util_ratio"), 2); /* mmcblk0, sda */
    assert_near(value("node_disk_io_util_ratio", "device=mmcblk0"), 0);
    assert_near(value("node_network_receive_bytes_per_second", "interface=docker0"), 0);
    assert_int_equal(count("node_cpu_usage_ratio"), 0); /* same snapshot twice: 0 ticks */
    xl_sysinput_free(s);
}

static void test_collect_partial_failure(void **state)
{
    struct xl_sysinput *s = new_input(false);
    struct xl_err err;
    xl_rc rc;

    (void)state;
    use_snapshot("broken");
    nsamples = 0;
    rc = xl_sysinput_collect(s, 1700000000000, 1000, &sink, &err);
    assert_int_equal(rc, XL_OK);
    assert_int_equal(err.rc, XL_EPARSE);
    assert_string_equal(err.msg, "proc/stat:2: expected at least 8 numbers after cpu0, got 3 "
                                 "(and 1 more system readers failed)");
    check_sane(1700000000000);
    assert_int_equal(count("node_cpu_count"), 0);
    assert_int_equal(count("node_memory_total_bytes"), 0);
    assert_near(value("node_load1", ""), 0.32);
    assert_near(value("node_processes_threads", ""), 92);
    assert_near(value("node_processes_pids", ""), 1);
    xl_sysinput_free(s);
}

static void test_collect_missing_root(void **state)
{
    struct xl_sys_opts o = {"/nonexistent/xl_sysinput", false, NULL};
    struct xl_err err;
    struct xl_sysinput *s;
    char longroot[1100];

    (void)state;
    s = xl_sysinput_new(&o, &err);
    assert_non_null(s);
    nsamples = 0;
    assert_int_equal(xl_sysinput_collect(s, 1, 1, &sink, &err), XL_ENOENT);
    assert_int_equal(nsamples, 0);
    assert_non_null(strstr(err.msg, "/nonexistent/xl_sysinput/proc/stat: open: "));
    assert_non_null(strstr(err.msg, "(and 7 more system readers failed)"));
    assert_int_equal(xl_sysinput_collect(s, 1, 1, NULL, &err), XL_EINVAL);
    assert_int_equal(xl_sysinput_collect(NULL, 1, 1, &sink, NULL), XL_EINVAL);
    xl_sysinput_free(s);
    xl_sysinput_free(NULL);

    memset(longroot, 'a', sizeof(longroot) - 1);
    longroot[sizeof(longroot) - 1] = '\0';
    o.root = longroot;
    assert_null(xl_sysinput_new(&o, &err));
    assert_int_equal(err.rc, XL_EINVAL);
}

/* Allocation failing at every point: no crash, no leak (ASan), and the
 * input keeps working once memory is back. */
static void test_collect_alloc_failures(void **state)
{
    (void)state;
    for (long n = 0; n < 40; n++) {
        struct xl_sys_opts o = {tmproot, true, fake_statvfs};
        struct xl_sysinput *s;
        struct xl_err err;

        xl_alloc_fail_after(n);
        s = xl_sysinput_new(&o, &err);
        if (!s) {
            xl_alloc_fail_after(-1);
            assert_int_equal(err.rc, XL_ENOMEM);
            continue;
        }
        use_snapshot("big64");
        nsamples = 0;
        (void)xl_sysinput_collect(s, 1, 1000, &sink, &err);
        use_snapshot("big64-t1");
        nsamples = 0;
        (void)xl_sysinput_collect(s, 2, 11000, &sink, &err);
        xl_alloc_fail_after(-1);
        collect_ok(s, "big64", 3, 21000);
        collect_ok(s, "big64-t1", 4, 31000);
        assert_near(value("node_cpu_usage_ratio", "cpu=3"), 1.0);
        xl_sysinput_free(s);
    }
}

/* The real host, through the real statvfs. */
static void test_collect_real_host(void **state)
{
    struct xl_sys_opts o = {"", true, NULL};
    struct xl_err err;
    struct xl_sysinput *s;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    (void)state;
    s = xl_sysinput_new(&o, &err);
    assert_non_null(s);
    nsamples = 0;
    assert_int_equal(xl_sysinput_collect(s, 10, 1000, &sink, &err), XL_OK);
    if (err.rc != XL_OK)
        print_message("real host: %s\n", err.msg);
    check_sane(10);
    assert_true(value("node_memory_total_bytes", "") > 0);
    assert_near(value("node_cpu_count", ""), (double)ncpu);
    assert_true(value("node_processes_pids", "") >= 1);
    usleep(20000);
    nsamples = 0;
    assert_int_equal(xl_sysinput_collect(s, 20, 1020, &sink, &err), XL_OK);
    check_sane(20);
    xl_sysinput_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat_table),
        cmocka_unit_test(test_parse_stat_fixtures),
        cmocka_unit_test(test_parse_meminfo_table),
        cmocka_unit_test(test_parse_loadavg_uptime),
        cmocka_unit_test(test_disk_wanted),
        cmocka_unit_test(test_parse_diskstats),
        cmocka_unit_test(test_parse_netdev),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_fs_pseudo),
        cmocka_unit_test(test_parse_mounts_select),
        cmocka_unit_test(test_utf8_fix),
        cmocka_unit_test(test_collect_vm2_real),
        cmocka_unit_test(test_collect_big64_rates),
        cmocka_unit_test(test_collect_counters_backwards),
        cmocka_unit_test(test_collect_per_cpu),
        cmocka_unit_test(test_collect_pi4_noswap),
        cmocka_unit_test(test_collect_partial_failure),
        cmocka_unit_test(test_collect_missing_root),
        cmocka_unit_test(test_collect_alloc_failures),
        cmocka_unit_test(test_collect_real_host),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
