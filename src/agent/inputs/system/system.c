/* xluo agent: the `system` input. Each collect reads a handful of /proc
 * files into one reused buffer (open/read/close, no stdio), parses them with
 * the allocation-free parsers of proc.c, and turns counters into per-second
 * rates against the previous collect. The only state is the previous
 * counters, kept in small arrays that grow and shrink with the number of
 * CPUs, disks and interfaces. */
#include "system.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "proc.h"

#define ROOT_MAX 1024
#define FILE_INIT 4096u
#define FILE_MAX (16u << 20) /* /proc/stat of a very large host stays far below */
#define PATH_BYTES 4096
#define SECTOR_BYTES 512.0

/* find_named() looks devices up by a name stored first in the struct. */
_Static_assert(offsetof(struct xl_disk_stat, name) == 0, "disk name first");
_Static_assert(offsetof(struct xl_net_stat, name) == 0, "interface name first");

/* Current and previous readings of a list of devices; both arrays have cap
 * elements. After a collect, prev holds what was just read. */
struct pair {
    void *cur, *prev;
    size_t ncur, nprev, cap;
};

struct xl_sysinput {
    char *root;
    bool per_cpu;
    int (*statvfs_fn)(const char *path, struct statvfs *out);

    char *buf; /* the file being parsed */
    size_t len, cap;

    bool stat_ok; /* stat_prev and cpus.prev are valid */
    int64_t stat_mono;
    struct xl_proc_stat stat_prev;
    struct pair cpus; /* struct xl_cpu_times, only with per_cpu */

    bool disk_ok;
    int64_t disk_mono;
    struct pair disks; /* struct xl_disk_stat */

    bool net_ok;
    int64_t net_mono;
    struct pair nets; /* struct xl_net_stat */

    struct xl_mount *mounts;
    size_t mounts_cap;
};

/* One collect in progress. */
struct run {
    struct xl_sysinput *s;
    const struct xl_sample_sink *sink;
    int64_t ts, mono;
    size_t emitted;
    unsigned failed;
    xl_rc first_rc;
    struct xl_err *err; /* the caller's; gets the first failure */
};

static const char *const mode_names[XL_CPU_NMODES] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
};

/* Copy the options; nothing is read or allocated for state until the
 * first collect. */
struct xl_sysinput *xl_sysinput_new(const struct xl_sys_opts *o, struct xl_err *err)
{
    const char *root = o && o->root ? o->root : "";
    struct xl_sysinput *s;

    if (strlen(root) > ROOT_MAX) {
        xl_err_set(err, XL_EINVAL, "system: root longer than %d bytes", ROOT_MAX);
        return NULL;
    }
    s = xl_calloc(1, sizeof(*s));
    if (!s)
        goto out_nomem;
    s->root = xl_strdup(root);
    if (!s->root)
        goto out_free_s;
    s->per_cpu = o && o->per_cpu;
    s->statvfs_fn = o && o->statvfs_fn ? o->statvfs_fn : statvfs;
    return s;
out_free_s:
    xl_free(s);
out_nomem:
    xl_err_set(err, XL_ENOMEM, "system: out of memory");
    return NULL;
}

static void pair_cleanup(struct pair *p)
{
    xl_free(p->cur);
    xl_free(p->prev);
}

/* Free the state arrays, the file buffer and the input. */
void xl_sysinput_free(struct xl_sysinput *s)
{
    if (!s)
        return;
    pair_cleanup(&s->cpus);
    pair_cleanup(&s->disks);
    pair_cleanup(&s->nets);
    xl_free(s->mounts);
    xl_free(s->buf);
    xl_free(s->root);
    xl_free(s);
}

/* Make both arrays hold at least n elements. On failure nothing changes
 * (the arrays keep their content and cap). */
static int pair_reserve(struct pair *p, size_t n, size_t elem)
{
    size_t ncap = p->cap ? p->cap * 2 : 4;
    void *a, *b;

    if (n <= p->cap)
        return 0;
    if (ncap < n)
        ncap = n;
    a = xl_realloc(p->cur, ncap * elem);
    if (!a)
        return -1;
    p->cur = a;
    b = xl_realloc(p->prev, ncap * elem);
    if (!b)
        return -1;
    p->prev = b;
    p->cap = ncap;
    return 0;
}

/* Swap cur and prev after a reading was used; give memory back when the
 * list became much shorter (devices went away). */
static void pair_swap(struct pair *p, size_t elem)
{
    void *t = p->prev;
    size_t ncap = p->ncur * 2 > 4 ? p->ncur * 2 : 4;

    p->prev = p->cur;
    p->cur = t;
    p->nprev = p->ncur;
    p->ncur = 0;
    if (p->cap > 16 && p->nprev * 4 < p->cap) {
        void *a = xl_realloc(p->cur, ncap * elem), *b;

        if (!a)
            return;
        p->cur = a;
        /* cur now has ncap elements; prev keeps its larger block if it
         * cannot shrink, so ncap is the usable size either way. */
        p->cap = ncap;
        b = xl_realloc(p->prev, ncap * elem);
        if (b)
            p->prev = b;
    }
}

/* Element whose name (a char array at offset 0) is name, looking first at
 * the same index: device order in /proc rarely changes. */
static const void *find_named(const void *arr, size_t n, size_t elem, size_t hint, const char *name)
{
    const char *a = arr;

    if (hint < n && strcmp(a + hint * elem, name) == 0)
        return a + hint * elem;
    for (size_t i = 0; i < n; i++)
        if (strcmp(a + i * elem, name) == 0)
            return a + i * elem;
    return NULL;
}

/* Read <root>/proc/<rel> whole into s->buf. */
static xl_rc read_file(struct xl_sysinput *s, const char *rel, struct xl_err *err)
{
    char path[ROOT_MAX + 64];
    xl_rc rc = XL_OK;
    int fd, e;

    snprintf(path, sizeof(path), "%s/proc/%s", s->root, rel);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        return xl_err_sys(err, e == ENOENT ? XL_ENOENT : XL_EIO, e, "%s: open", path);
    }
    s->len = 0;
    for (;;) {
        ssize_t n;

        if (s->len == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : FILE_INIT;
            char *nb;

            if (ncap > FILE_MAX) {
                rc = xl_err_set(err, XL_ETOOBIG, "%s: larger than %u bytes", path, FILE_MAX);
                goto out_close;
            }
            nb = xl_realloc(s->buf, ncap);
            if (!nb) {
                rc = xl_err_set(err, XL_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
                goto out_close;
            }
            s->buf = nb;
            s->cap = ncap;
        }
        n = read(fd, s->buf + s->len, s->cap - s->len);
        if (n < 0) {
            e = errno;
            if (e == EINTR)
                continue;
            rc = xl_err_sys(err, XL_EIO, e, "%s: read", path);
            goto out_close;
        }
        if (n == 0)
            break;
        s->len += (size_t)n;
    }
out_close:
    close(fd);
    return rc;
}

static void emit(struct run *r, const char *name, const struct xl_label *l, size_t nl, double v)
{
    xl_sink_emit(r->sink, name, l, nl, v, r->ts);
    r->emitted++;
}

static void emit1(struct run *r, const char *name, const char *lname, const char *lval, double v)
{
    struct xl_label l = {lname, lval};

    emit(r, name, &l, 1, v);
}

/* Per-second rate of a counter; false (no sample) when it went backwards. */
static bool rate(uint64_t prev, uint64_t cur, double dt, double *out)
{
    if (cur < prev)
        return false;
    *out = (double)(cur - prev) / dt;
    return true;
}

static void emit_rate(struct run *r, const char *name, const char *lname, const char *lval,
                      uint64_t prev, uint64_t cur, double dt, double scale)
{
    double v;

    if (!rate(prev, cur, dt, &v))
        return;
    if (lname)
        emit1(r, name, lname, lval, v * scale);
    else
        emit(r, name, NULL, 0, v * scale);
}

/* Share of each CPU mode between two readings. cpu is the label value for a
 * single CPU (usage only), NULL for the total (usage and modes). */
static void cpu_ratios(struct run *r, const struct xl_cpu_times *a, const struct xl_cpu_times *b,
                       const char *cpu)
{
    uint64_t d[XL_CPU_NMODES], tot = 0;
    double busy;

    for (int m = 0; m < XL_CPU_NMODES; m++) {
        if (b->t[m] < a->t[m])
            return;
        d[m] = b->t[m] - a->t[m];
        tot += d[m];
    }
    if (tot == 0)
        return;
    busy = (double)(tot - d[XL_CPU_IDLE] - d[XL_CPU_IOWAIT]) / (double)tot;
    if (cpu) {
        emit1(r, "node_cpu_usage_ratio", "cpu", cpu, busy);
        return;
    }
    emit(r, "node_cpu_usage_ratio", NULL, 0, busy);
    for (int m = 0; m < XL_CPU_NMODES; m++)
        emit1(r, "node_cpu_mode_ratio", "mode", mode_names[m], (double)d[m] / (double)tot);
}

static double seconds_since(int64_t prev_mono, int64_t mono)
{
    return (double)(mono - prev_mono) / 1000.0;
}

static xl_rc collect_stat(struct run *r, struct xl_err *err)
{
    struct xl_sysinput *s = r->s;
    struct xl_cpu_times *cur;
    struct xl_proc_stat st;
    size_t ncpu;
    xl_rc rc;

    if ((rc = read_file(s, "stat", err)) != XL_OK)
        return rc;
    rc = xl_proc_parse_stat(s->buf, s->len, &st, s->cpus.cur, s->per_cpu ? s->cpus.cap : 0, &ncpu,
                            err);
    if (rc == XL_OK && s->per_cpu && ncpu > s->cpus.cap) {
        if (pair_reserve(&s->cpus, ncpu, sizeof(struct xl_cpu_times)) != 0)
            return xl_err_set(err, XL_ENOMEM, "proc/stat: out of memory for %zu CPUs", ncpu);
        rc = xl_proc_parse_stat(s->buf, s->len, &st, s->cpus.cur, s->cpus.cap, &ncpu, err);
    }
    if (rc != XL_OK)
        return rc;

    emit(r, "node_cpu_count", NULL, 0, (double)ncpu);
    emit(r, "node_procs_running", NULL, 0, (double)st.procs_running);
    emit(r, "node_procs_blocked", NULL, 0, (double)st.procs_blocked);
    cur = s->cpus.cur;
    if (s->per_cpu)
        s->cpus.ncur = ncpu;
    if (s->stat_ok && r->mono > s->stat_mono) {
        double dt = seconds_since(s->stat_mono, r->mono);

        cpu_ratios(r, &s->stat_prev.total, &st.total, NULL);
        emit_rate(r, "node_context_switches_per_second", NULL, NULL, s->stat_prev.ctxt, st.ctxt, dt,
                  1.0);
        emit_rate(r, "node_forks_per_second", NULL, NULL, s->stat_prev.processes, st.processes, dt,
                  1.0);
        for (size_t i = 0; i < s->cpus.ncur; i++) {
            const struct xl_cpu_times *prev = s->cpus.prev, *p = NULL;
            char id[16];

            if (i < s->cpus.nprev && prev[i].id == cur[i].id)
                p = &prev[i];
            for (size_t j = 0; !p && j < s->cpus.nprev; j++)
                if (prev[j].id == cur[i].id)
                    p = &prev[j];
            if (!p)
                continue;
            snprintf(id, sizeof(id), "%u", cur[i].id);
            cpu_ratios(r, p, &cur[i], id);
        }
    }
    s->stat_prev = st;
    s->stat_mono = r->mono;
    s->stat_ok = true;
    if (s->per_cpu)
        pair_swap(&s->cpus, sizeof(struct xl_cpu_times));
    return XL_OK;
}

static xl_rc collect_meminfo(struct run *r, struct xl_err *err)
{
    struct xl_proc_meminfo m;
    uint64_t used, swap_used;
    xl_rc rc;

    if ((rc = read_file(r->s, "meminfo", err)) != XL_OK)
        return rc;
    if ((rc = xl_proc_parse_meminfo(r->s->buf, r->s->len, &m, err)) != XL_OK)
        return rc;
    used = m.total > m.available ? m.total - m.available : 0;
    swap_used = m.swap_total > m.swap_free ? m.swap_total - m.swap_free : 0;
    emit(r, "node_memory_total_bytes", NULL, 0, (double)m.total);
    emit(r, "node_memory_available_bytes", NULL, 0, (double)m.available);
    emit(r, "node_memory_used_bytes", NULL, 0, (double)used);
    emit(r, "node_memory_used_ratio", NULL, 0, m.total ? (double)used / (double)m.total : 0.0);
    emit(r, "node_memory_free_bytes", NULL, 0, (double)m.free);
    emit(r, "node_memory_buffers_bytes", NULL, 0, (double)m.buffers);
    emit(r, "node_memory_cached_bytes", NULL, 0, (double)m.cached);
    emit(r, "node_swap_total_bytes", NULL, 0, (double)m.swap_total);
    emit(r, "node_swap_used_bytes", NULL, 0, (double)swap_used);
    emit(r, "node_swap_used_ratio", NULL, 0,
         m.swap_total ? (double)swap_used / (double)m.swap_total : 0.0);
    return XL_OK;
}

static xl_rc collect_loadavg(struct run *r, struct xl_err *err)
{
    struct xl_proc_loadavg la;
    xl_rc rc;

    if ((rc = read_file(r->s, "loadavg", err)) != XL_OK)
        return rc;
    if ((rc = xl_proc_parse_loadavg(r->s->buf, r->s->len, &la, err)) != XL_OK)
        return rc;
    emit(r, "node_load1", NULL, 0, la.load1);
    emit(r, "node_load5", NULL, 0, la.load5);
    emit(r, "node_load15", NULL, 0, la.load15);
    emit(r, "node_processes_threads", NULL, 0, (double)la.threads_total);
    return XL_OK;
}

static xl_rc collect_uptime(struct run *r, struct xl_err *err)
{
    double up;
    xl_rc rc;

    if ((rc = read_file(r->s, "uptime", err)) != XL_OK)
        return rc;
    if ((rc = xl_proc_parse_uptime(r->s->buf, r->s->len, &up, err)) != XL_OK)
        return rc;
    emit(r, "node_uptime_seconds", NULL, 0, up);
    return XL_OK;
}

static xl_rc collect_diskstats(struct run *r, struct xl_err *err)
{
    struct xl_sysinput *s = r->s;
    const size_t elem = sizeof(struct xl_disk_stat);
    struct xl_disk_stat *cur;
    size_t n;
    xl_rc rc;

    if ((rc = read_file(s, "diskstats", err)) != XL_OK)
        return rc;
    rc = xl_proc_parse_diskstats(s->buf, s->len, s->disks.cur, s->disks.cap, &n, err);
    if (rc == XL_OK && n > s->disks.cap) {
        if (pair_reserve(&s->disks, n, elem) != 0)
            return xl_err_set(err, XL_ENOMEM, "proc/diskstats: out of memory for %zu devices", n);
        rc = xl_proc_parse_diskstats(s->buf, s->len, s->disks.cur, s->disks.cap, &n, err);
    }
    if (rc != XL_OK)
        return rc;
    s->disks.ncur = n;
    cur = s->disks.cur;
    if (s->disk_ok && r->mono > s->disk_mono) {
        double dt = seconds_since(s->disk_mono, r->mono);

        for (size_t i = 0; i < n; i++) {
            const struct xl_disk_stat *p =
                find_named(s->disks.prev, s->disks.nprev, elem, i, cur[i].name);
            const struct xl_disk_stat *c = &cur[i];
            char dev[sizeof(c->name)];
            double util;

            if (!p)
                continue;
            memcpy(dev, c->name, sizeof(dev));
            xl_proc_utf8_fix(dev);
            emit_rate(r, "node_disk_read_bytes_per_second", "device", dev, p->read_sectors,
                      c->read_sectors, dt, SECTOR_BYTES);
            emit_rate(r, "node_disk_written_bytes_per_second", "device", dev, p->write_sectors,
                      c->write_sectors, dt, SECTOR_BYTES);
            emit_rate(r, "node_disk_reads_per_second", "device", dev, p->reads, c->reads, dt, 1.0);
            emit_rate(r, "node_disk_writes_per_second", "device", dev, p->writes, c->writes, dt,
                      1.0);
            /* io_ticks is milliseconds busy; it can run slightly ahead of
             * the wall clock, so the share is capped at 1. */
            if (rate(p->io_ticks_ms, c->io_ticks_ms, dt * 1000.0, &util))
                emit1(r, "node_disk_io_util_ratio", "device", dev, util > 1.0 ? 1.0 : util);
        }
    }
    s->disk_mono = r->mono;
    s->disk_ok = true;
    pair_swap(&s->disks, elem);
    return XL_OK;
}

static const char *const net_names[XL_NET_NCOUNTERS] = {
    "node_network_receive_bytes_per_second",   "node_network_receive_packets_per_second",
    "node_network_receive_errors_per_second",  "node_network_receive_drops_per_second",
    "node_network_transmit_bytes_per_second",  "node_network_transmit_packets_per_second",
    "node_network_transmit_errors_per_second", "node_network_transmit_drops_per_second",
};

static xl_rc collect_netdev(struct run *r, struct xl_err *err)
{
    struct xl_sysinput *s = r->s;
    const size_t elem = sizeof(struct xl_net_stat);
    struct xl_net_stat *cur;
    size_t n;
    xl_rc rc;

    if ((rc = read_file(s, "net/dev", err)) != XL_OK)
        return rc;
    rc = xl_proc_parse_netdev(s->buf, s->len, s->nets.cur, s->nets.cap, &n, err);
    if (rc == XL_OK && n > s->nets.cap) {
        if (pair_reserve(&s->nets, n, elem) != 0)
            return xl_err_set(err, XL_ENOMEM, "proc/net/dev: out of memory for %zu interfaces", n);
        rc = xl_proc_parse_netdev(s->buf, s->len, s->nets.cur, s->nets.cap, &n, err);
    }
    if (rc != XL_OK)
        return rc;
    s->nets.ncur = n;
    cur = s->nets.cur;
    if (s->net_ok && r->mono > s->net_mono) {
        double dt = seconds_since(s->net_mono, r->mono);

        for (size_t i = 0; i < n; i++) {
            const struct xl_net_stat *p =
                find_named(s->nets.prev, s->nets.nprev, elem, i, cur[i].name);
            char ifname[sizeof(cur[i].name)];

            if (!p)
                continue;
            memcpy(ifname, cur[i].name, sizeof(ifname));
            xl_proc_utf8_fix(ifname);
            for (int k = 0; k < XL_NET_NCOUNTERS; k++)
                emit_rate(r, net_names[k], "interface", ifname, p->c[k], cur[i].c[k], dt, 1.0);
        }
    }
    s->net_mono = r->mono;
    s->net_ok = true;
    pair_swap(&s->nets, elem);
    return XL_OK;
}

/* statvfs one selected mount and emit its samples; false when skipped. */
static bool filesystem_one(struct run *r, const struct xl_mount *m)
{
    struct xl_sysinput *s = r->s;
    char dev[1024], mnt[PATH_BYTES], fstype[64], path[ROOT_MAX + PATH_BYTES];
    struct xl_label l[3] = {{"device", dev}, {"mountpoint", mnt}, {"fstype", fstype}};
    uint64_t frsize, size, freeb, avail, used;
    struct statvfs vfs;

    if (!xl_proc_unescape(m->dev, m->dev_len, dev, sizeof(dev)) ||
        !xl_proc_unescape(m->mnt, m->mnt_len, mnt, sizeof(mnt)) ||
        !xl_proc_unescape(m->fstype, m->fstype_len, fstype, sizeof(fstype)))
        return false;
    if ((size_t)snprintf(path, sizeof(path), "%s%s", s->root, mnt) >= sizeof(path))
        return false;
    /* Mounts the agent may not look into (EACCES) or that went away
     * meanwhile are not errors of the input: they are left out. */
    if (s->statvfs_fn(path, &vfs) != 0 || vfs.f_blocks == 0)
        return false;
    frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
    size = (uint64_t)vfs.f_blocks * frsize;
    freeb = (uint64_t)vfs.f_bfree * frsize;
    avail = (uint64_t)vfs.f_bavail * frsize;
    used = size > freeb ? size - freeb : 0;
    xl_proc_utf8_fix(dev);
    xl_proc_utf8_fix(mnt);
    xl_proc_utf8_fix(fstype);
    emit(r, "node_filesystem_size_bytes", l, 3, (double)size);
    emit(r, "node_filesystem_avail_bytes", l, 3, (double)avail);
    emit(r, "node_filesystem_used_bytes", l, 3, (double)used);
    /* As df(1) "Use%": space reserved for root counts as neither. */
    emit(r, "node_filesystem_used_ratio", l, 3,
         used + avail ? (double)used / (double)(used + avail) : 0.0);
    emit(r, "node_filesystem_files", l, 3, (double)vfs.f_files);
    emit(r, "node_filesystem_files_free", l, 3, (double)vfs.f_ffree);
    return true;
}

static xl_rc collect_filesystems(struct run *r, struct xl_err *err)
{
    struct xl_sysinput *s = r->s;
    size_t n;
    xl_rc rc;

    if ((rc = read_file(s, "mounts", err)) != XL_OK)
        return rc;
    rc = xl_proc_parse_mounts(s->buf, s->len, s->mounts, s->mounts_cap, &n, err);
    if (rc == XL_OK && n > s->mounts_cap) {
        void *p = s->mounts;
        size_t cap = s->mounts_cap;

        if (xl_grow(&p, &cap, n, sizeof(*s->mounts)) != 0)
            return xl_err_set(err, XL_ENOMEM, "proc/mounts: out of memory for %zu mounts", n);
        s->mounts = p;
        s->mounts_cap = cap;
        rc = xl_proc_parse_mounts(s->buf, s->len, s->mounts, s->mounts_cap, &n, err);
    }
    if (rc != XL_OK)
        return rc;
    xl_proc_mounts_select(s->mounts, n);
    for (size_t i = 0; i < n; i++)
        if (!s->mounts[i].skip)
            filesystem_one(r, &s->mounts[i]);
    return XL_OK;
}

/* Processes are the numeric directories of /proc (threads are not listed). */
static xl_rc collect_procs(struct run *r, struct xl_err *err)
{
    char path[ROOT_MAX + 8];
    struct dirent *de;
    uint64_t n = 0;
    DIR *d;
    int e;

    snprintf(path, sizeof(path), "%s/proc", r->s->root);
    d = opendir(path);
    if (!d) {
        e = errno;
        return xl_err_sys(err, e == ENOENT ? XL_ENOENT : XL_EIO, e, "%s: opendir", path);
    }
    while ((de = readdir(d)) != NULL) {
        const char *c = de->d_name;

        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        while (*c >= '0' && *c <= '9')
            c++;
        if (*c == '\0' && c != de->d_name)
            n++;
    }
    closedir(d);
    emit(r, "node_processes_pids", NULL, 0, (double)n);
    return XL_OK;
}

static void record_failure(struct run *r, const struct xl_err *e)
{
    if (r->failed++ != 0)
        return;
    r->first_rc = e->rc;
    if (r->err)
        *r->err = *e;
}

/* Run every reader; a failing reader does not stop the others. The first
 * failure goes to err, the count of the others is appended to its message. */
xl_rc xl_sysinput_collect(struct xl_sysinput *s, int64_t ts_ms, int64_t mono_ms,
                          const struct xl_sample_sink *sink, struct xl_err *err)
{
    static xl_rc (*const readers[])(struct run *, struct xl_err *) = {
        collect_stat,      collect_meminfo, collect_loadavg,     collect_uptime,
        collect_diskstats, collect_netdev,  collect_filesystems, collect_procs,
    };
    struct run r = {s, sink, ts_ms, mono_ms, 0, 0, XL_OK, err};
    struct xl_err e;

    xl_err_clear(err);
    if (!s || !sink || !sink->emit)
        return xl_err_set(err, XL_EINVAL, "system: collect without an input or a sink");
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        xl_err_clear(&e);
        if (readers[i](&r, &e) != XL_OK)
            record_failure(&r, &e);
    }
    if (r.failed > 1 && err) {
        size_t ml = strnlen(err->msg, sizeof(err->msg));

        snprintf(err->msg + ml, sizeof(err->msg) - ml, " (and %u more system readers failed)",
                 r.failed - 1);
    }
    if (r.emitted == 0 && r.failed)
        return r.first_rc;
    return XL_OK;
}
