/* xluo agent, system input: pure parsers for the /proc files it reads.
 *
 * Each parser takes the whole file content as (buf, len) (no NUL needed),
 * allocates nothing and fills caller-provided structs. Parsers that produce
 * a list take (out, max, &n): at most max entries are stored and *n is set
 * to the number the file holds, so a caller whose array was too small grows
 * it to *n and parses the same buffer again (snprintf-style).
 * Errors are XL_EPARSE with "proc/<file>:<line>: <what>" in err. */
#ifndef XL_AGENT_INPUT_SYSTEM_PROC_H
#define XL_AGENT_INPUT_SYSTEM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* CPU time modes in /proc/stat order; guest and guest_nice are already
 * included in user and nice by the kernel, so they are not kept. */
enum xl_cpu_mode {
    XL_CPU_USER,
    XL_CPU_NICE,
    XL_CPU_SYSTEM,
    XL_CPU_IDLE,
    XL_CPU_IOWAIT,
    XL_CPU_IRQ,
    XL_CPU_SOFTIRQ,
    XL_CPU_STEAL,
    XL_CPU_NMODES
};

/* One "cpu" or "cpuN" line, in USER_HZ ticks. id is N (unused for the total). */
struct xl_cpu_times {
    uint64_t t[XL_CPU_NMODES];
    unsigned id;
};

struct xl_proc_stat {
    struct xl_cpu_times total; /* the "cpu " line */
    uint64_t ctxt;             /* context switches since boot */
    uint64_t processes;        /* forks since boot */
    uint64_t procs_running;
    uint64_t procs_blocked;
};

struct xl_proc_meminfo { /* all in bytes */
    uint64_t total, free, available, buffers, cached;
    uint64_t swap_total, swap_free;
    bool available_estimated; /* no MemAvailable (kernel < 3.14): free+buffers+cached */
};

struct xl_proc_loadavg {
    double load1, load5, load15;
    uint64_t threads_running, threads_total;
};

/* One whole block device from /proc/diskstats. name is the first member
 * (the input's state lookup relies on it). Sectors are 512 bytes. */
struct xl_disk_stat {
    char name[32];
    uint64_t reads, read_sectors, writes, write_sectors, io_ticks_ms;
};

enum xl_net_counter {
    XL_NET_RX_BYTES,
    XL_NET_RX_PACKETS,
    XL_NET_RX_ERRS,
    XL_NET_RX_DROP,
    XL_NET_TX_BYTES,
    XL_NET_TX_PACKETS,
    XL_NET_TX_ERRS,
    XL_NET_TX_DROP,
    XL_NET_NCOUNTERS
};

/* One interface from /proc/net/dev. name is the first member. */
struct xl_net_stat {
    char name[16]; /* IFNAMSIZ: up to 15 bytes */
    uint64_t c[XL_NET_NCOUNTERS];
};

/* One /proc/mounts line. The strings point into the parsed buffer and are
 * still octal-escaped (\040 for a space): decode with xl_proc_unescape. */
struct xl_mount {
    const char *dev, *mnt, *fstype;
    size_t dev_len, mnt_len, fstype_len;
    uint32_t dev_hash, mnt_hash; /* FNV-1a of dev and mnt, to compare quickly */
    bool skip;                   /* set by xl_proc_mounts_select */
};

/* Parse /proc/stat: the total "cpu" line into st->total, the per-CPU lines
 * into cpus (max_cpus of them, *ncpu = how many the file has; cpus may be
 * NULL when max_cpus is 0), and ctxt, processes, procs_running,
 * procs_blocked. Each cpu line needs at least 8 numbers (user..steal). */
xl_rc xl_proc_parse_stat(const char *buf, size_t len, struct xl_proc_stat *st,
                         struct xl_cpu_times *cpus, size_t max_cpus, size_t *ncpu,
                         struct xl_err *err);

/* Parse /proc/meminfo (kB values, returned in bytes). MemTotal, MemFree,
 * Buffers, Cached, SwapTotal and SwapFree are required. */
xl_rc xl_proc_parse_meminfo(const char *buf, size_t len, struct xl_proc_meminfo *out,
                            struct xl_err *err);

/* Parse /proc/loadavg: "0.10 0.06 0.01 1/87 4454". */
xl_rc xl_proc_parse_loadavg(const char *buf, size_t len, struct xl_proc_loadavg *out,
                            struct xl_err *err);

/* Parse /proc/uptime: the first number, seconds since boot. */
xl_rc xl_proc_parse_uptime(const char *buf, size_t len, double *uptime_s, struct xl_err *err);

/* Parse /proc/diskstats, keeping only the devices xl_proc_disk_wanted
 * accepts (every line is still checked). */
xl_rc xl_proc_parse_diskstats(const char *buf, size_t len, struct xl_disk_stat *out, size_t max,
                              size_t *n, struct xl_err *err);

/* True for a whole block device worth reporting: partitions (sda1, vdb2,
 * xvda1, nvme0n1p1, mmcblk0p2, any "<digit>p<digits>" suffix) and the
 * virtual loop*, ram*, zram*, fd* devices are not; dm-*, md* are kept. */
bool xl_proc_disk_wanted(const char *name);

/* Parse /proc/net/dev (two header lines, then "name: 16 counters"). */
xl_rc xl_proc_parse_netdev(const char *buf, size_t len, struct xl_net_stat *out, size_t max,
                           size_t *n, struct xl_err *err);

/* Split /proc/mounts into entries pointing into buf (which must outlive
 * them). Every line needs 6 fields. skip is set to false. */
xl_rc xl_proc_parse_mounts(const char *buf, size_t len, struct xl_mount *out, size_t max, size_t *n,
                           struct xl_err *err);

/* Mark the mounts not to report: pseudo file systems (xl_proc_fs_is_pseudo),
 * anything mounted on or under /proc or /sys, mounts hidden by a later mount on the same mount
 * point, and repeats of a device already reported (bind mounts: the first mount point wins). Only
 * devices containing a '/' (/dev/sda1, server:/export, //host/share) are
 * deduplicated: "tmpfs" or "none" name no device. */
void xl_proc_mounts_select(struct xl_mount *m, size_t n);

/* True for a file system type with no disk space to report (proc, sysfs,
 * cgroup, overlay, squashfs, ...; the list is in docs/metrics.md). tmpfs
 * is not pseudo. */
bool xl_proc_fs_is_pseudo(const char *fstype, size_t len);

/* Decode the octal escapes of /proc/mounts (\040 space, \011 tab, \012
 * newline, \134 backslash) from (s, n) into out (NUL-terminated). Returns
 * false when out (outsz bytes) is too small. */
bool xl_proc_unescape(const char *s, size_t n, char *out, size_t outsz);

/* Make s valid UTF-8 in place (label values must be): each byte that is not
 * part of a valid sequence becomes '?'. */
void xl_proc_utf8_fix(char *s);

#endif
