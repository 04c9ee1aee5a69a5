/* xluo agent, system input: parsers for /proc files. No allocation, no
 * stdio streams, no regex: a line walker, a token walker and a number
 * reader over (buf, len). */
#include "proc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct lines {
    const char *buf;
    size_t len, pos;
    unsigned no;
};

struct line {
    const char *p, *end;
    unsigned no; /* 1-based */
};

struct tok {
    const char *p;
    size_t len;
};

/* Next line of the buffer, without its '\n'; the last line may lack one. */
static bool next_line(struct lines *ls, struct line *l)
{
    const char *start, *nl;
    size_t rest;

    if (ls->pos >= ls->len)
        return false;
    start = ls->buf + ls->pos;
    rest = ls->len - ls->pos;
    nl = memchr(start, '\n', rest);
    l->p = start;
    l->end = nl ? nl : start + rest;
    ls->pos += (size_t)(l->end - start) + (nl ? 1 : 0);
    l->no = ++ls->no;
    return true;
}

/* Next space- or tab-separated token of [*p, end). */
static bool next_tok(const char **p, const char *end, struct tok *t)
{
    const char *s = *p;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s >= end) {
        *p = s;
        return false;
    }
    t->p = s;
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    t->len = (size_t)(s - t->p);
    *p = s;
    return true;
}

static bool tok_is(const struct tok *t, const char *lit)
{
    size_t n = strlen(lit);

    return t->len == n && memcmp(t->p, lit, n) == 0;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';

        if (d > 9)
            return false;
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "12", "0.10", "359.95": what the kernel prints for loadavg and uptime.
 * Hand-rolled because strtod needs a NUL and depends on the locale. */
static bool parse_fixed(const char *s, size_t n, double *out)
{
    const char *dot = memchr(s, '.', n);
    size_t ilen = dot ? (size_t)(dot - s) : n;
    uint64_t ip = 0, fp = 0;
    double scale = 1.0;

    if (ilen == 0 || !parse_u64(s, ilen, &ip))
        return false;
    if (dot) {
        size_t flen = n - ilen - 1;

        if (flen == 0 || flen > 18 || !parse_u64(dot + 1, flen, &fp))
            return false;
        for (size_t i = 0; i < flen; i++)
            scale *= 10.0;
    }
    *out = (double)ip + (double)fp / scale;
    return true;
}

/* Read the numeric tokens left on the line: the first max go into v, the
 * count of all of them is returned. *bad is set when a token is not a
 * number (reading stops there). */
static size_t read_u64s(const char **p, const char *end, uint64_t *v, size_t max, bool *bad)
{
    struct tok t;
    size_t k = 0;
    uint64_t x;

    *bad = false;
    while (next_tok(p, end, &t)) {
        if (!parse_u64(t.p, t.len, &x)) {
            *bad = true;
            break;
        }
        if (k < max)
            v[k] = x;
        k++;
    }
    return k;
}

__attribute__((format(printf, 4, 5))) static xl_rc perr(struct xl_err *err, const char *file,
                                                        unsigned line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
        return xl_err_set(err, XL_EPARSE, "%s:%u: %s", file, line, msg);
    return xl_err_set(err, XL_EPARSE, "%s: %s", file, msg);
}

/* A token for an error message: at most 40 bytes of it. */
#define TOKF "%.*s"
#define TOKA(t) (int)((t).len > 40 ? 40 : (t).len), (t).p

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- /proc/stat ---- */

enum {
    HAVE_CPU = 1 << 0,
    HAVE_CTXT = 1 << 1,
    HAVE_PROCESSES = 1 << 2,
    HAVE_RUNNING = 1 << 3,
    HAVE_BLOCKED = 1 << 4,
    HAVE_STAT_ALL = (1 << 5) - 1,
};

static const struct {
    const char *key;
    size_t off;
    unsigned bit;
} stat_keys[] = {
    {"ctxt", offsetof(struct xl_proc_stat, ctxt), HAVE_CTXT},
    {"processes", offsetof(struct xl_proc_stat, processes), HAVE_PROCESSES},
    {"procs_running", offsetof(struct xl_proc_stat, procs_running), HAVE_RUNNING},
    {"procs_blocked", offsetof(struct xl_proc_stat, procs_blocked), HAVE_BLOCKED},
};

static xl_rc stat_cpu_line(const struct line *l, const struct tok *w, const char *p,
                           struct xl_cpu_times *ct, struct xl_err *err)
{
    uint64_t id = 0;
    size_t k;
    bool bad;

    if (w->len > 3 && (!parse_u64(w->p + 3, w->len - 3, &id) || id > UINT_MAX))
        return perr(err, "proc/stat", l->no, "bad cpu name \"" TOKF "\"", TOKA(*w));
    k = read_u64s(&p, l->end, ct->t, XL_CPU_NMODES, &bad);
    if (bad)
        return perr(err, "proc/stat", l->no, "non-numeric field after " TOKF, TOKA(*w));
    if (k < XL_CPU_NMODES)
        return perr(err, "proc/stat", l->no, "expected at least %d numbers after " TOKF ", got %zu",
                    XL_CPU_NMODES, TOKA(*w), k);
    ct->id = (unsigned)id;
    return XL_OK;
}

/* /proc/stat: cpu lines, ctxt, processes, procs_*; other lines (intr,
 * softirq, btime) are skipped without being tokenized. */
xl_rc xl_proc_parse_stat(const char *buf, size_t len, struct xl_proc_stat *st,
                         struct xl_cpu_times *cpus, size_t max_cpus, size_t *ncpu,
                         struct xl_err *err)
{
    struct lines ls = {buf, len, 0, 0};
    struct xl_cpu_times scratch;
    unsigned have = 0;
    struct line l;
    size_t nc = 0;
    xl_rc rc;

    memset(st, 0, sizeof(*st));
    *ncpu = 0;
    while (next_line(&ls, &l)) {
        const char *p = l.p;
        struct tok w;

        if (!next_tok(&p, l.end, &w))
            continue;
        if (w.len >= 3 && memcmp(w.p, "cpu", 3) == 0) {
            struct xl_cpu_times *ct = &st->total;

            if (w.len > 3)
                ct = nc < max_cpus ? &cpus[nc] : &scratch;
            if ((rc = stat_cpu_line(&l, &w, p, ct, err)) != XL_OK)
                return rc;
            if (w.len == 3)
                have |= HAVE_CPU;
            else
                nc++;
            continue;
        }
        for (size_t i = 0; i < sizeof(stat_keys) / sizeof(stat_keys[0]); i++) {
            struct tok v;

            if (!tok_is(&w, stat_keys[i].key))
                continue;
            if (!next_tok(&p, l.end, &v) ||
                !parse_u64(v.p, v.len, (uint64_t *)((char *)st + stat_keys[i].off)))
                return perr(err, "proc/stat", l.no, "expected a number after %s", stat_keys[i].key);
            have |= stat_keys[i].bit;
            break;
        }
    }
    *ncpu = nc;
    if (!(have & HAVE_CPU))
        return perr(err, "proc/stat", 0, "no \"cpu\" line");
    for (size_t i = 0; i < sizeof(stat_keys) / sizeof(stat_keys[0]); i++)
        if (!(have & stat_keys[i].bit))
            return perr(err, "proc/stat", 0, "no \"%s\" line", stat_keys[i].key);
    return XL_OK;
}

/* ---- /proc/meminfo ---- */

static const struct {
    const char *key;
    size_t off;
    bool required;
} mem_keys[] = {
    {"MemTotal", offsetof(struct xl_proc_meminfo, total), true},
    {"MemFree", offsetof(struct xl_proc_meminfo, free), true},
    {"MemAvailable", offsetof(struct xl_proc_meminfo, available), false},
    {"Buffers", offsetof(struct xl_proc_meminfo, buffers), true},
    {"Cached", offsetof(struct xl_proc_meminfo, cached), true},
    {"SwapTotal", offsetof(struct xl_proc_meminfo, swap_total), true},
    {"SwapFree", offsetof(struct xl_proc_meminfo, swap_free), true},
};
#define NMEMKEYS (sizeof(mem_keys) / sizeof(mem_keys[0]))

/* /proc/meminfo: only the keys of mem_keys are parsed, strictly; other
 * lines are ignored. */
xl_rc xl_proc_parse_meminfo(const char *buf, size_t len, struct xl_proc_meminfo *out,
                            struct xl_err *err)
{
    struct lines ls = {buf, len, 0, 0};
    unsigned have = 0;
    struct line l;

    memset(out, 0, sizeof(*out));
    while (next_line(&ls, &l)) {
        const char *colon = memchr(l.p, ':', (size_t)(l.end - l.p));
        const char *p;
        struct tok v, unit;
        uint64_t x;
        size_t i;

        if (!colon)
            continue;
        for (i = 0; i < NMEMKEYS; i++) {
            size_t kl = strlen(mem_keys[i].key);

            if ((size_t)(colon - l.p) == kl && memcmp(l.p, mem_keys[i].key, kl) == 0)
                break;
        }
        if (i == NMEMKEYS)
            continue;
        p = colon + 1;
        if (!next_tok(&p, l.end, &v) || !parse_u64(v.p, v.len, &x))
            return perr(err, "proc/meminfo", l.no, "expected a number after %s:", mem_keys[i].key);
        if (next_tok(&p, l.end, &unit)) {
            if (!tok_is(&unit, "kB"))
                return perr(err, "proc/meminfo", l.no,
                            "unknown unit \"" TOKF "\" after %s:", TOKA(unit), mem_keys[i].key);
            if (x > UINT64_MAX / 1024)
                return perr(err, "proc/meminfo", l.no, "%s: value too large", mem_keys[i].key);
            x *= 1024;
        }
        *(uint64_t *)((char *)out + mem_keys[i].off) = x;
        have |= 1u << i;
    }
    for (size_t i = 0; i < NMEMKEYS; i++)
        if (mem_keys[i].required && !(have & (1u << i)))
            return perr(err, "proc/meminfo", 0, "no %s line", mem_keys[i].key);
    if (!(have & (1u << 2))) {
        out->available = out->free + out->buffers + out->cached;
        if (out->available > out->total)
            out->available = out->total;
        out->available_estimated = true;
    }
    return XL_OK;
}

/* ---- /proc/loadavg, /proc/uptime ---- */

/* /proc/loadavg: the three averages and running/total threads. */
xl_rc xl_proc_parse_loadavg(const char *buf, size_t len, struct xl_proc_loadavg *out,
                            struct xl_err *err)
{
    const char *p = buf, *end = buf + len, *slash;
    double *loads[3] = {&out->load1, &out->load5, &out->load15};
    struct tok t;

    memset(out, 0, sizeof(*out));
    if (len && memchr(buf, '\n', len))
        end = memchr(buf, '\n', len);
    for (int i = 0; i < 3; i++)
        if (!next_tok(&p, end, &t) || !parse_fixed(t.p, t.len, loads[i]))
            return perr(err, "proc/loadavg", 1, "expected 3 load averages");
    if (!next_tok(&p, end, &t) || !(slash = memchr(t.p, '/', t.len)) ||
        !parse_u64(t.p, (size_t)(slash - t.p), &out->threads_running) ||
        !parse_u64(slash + 1, t.len - (size_t)(slash - t.p) - 1, &out->threads_total))
        return perr(err, "proc/loadavg", 1, "expected running/total after the load averages");
    return XL_OK;
}

/* /proc/uptime: seconds since boot. */
xl_rc xl_proc_parse_uptime(const char *buf, size_t len, double *uptime_s, struct xl_err *err)
{
    const char *p = buf, *end = buf + len;
    struct tok t;

    if (len && memchr(buf, '\n', len))
        end = memchr(buf, '\n', len);
    if (!next_tok(&p, end, &t) || !parse_fixed(t.p, t.len, uptime_s))
        return perr(err, "proc/uptime", 1, "expected seconds since boot");
    return XL_OK;
}

/* ---- /proc/diskstats ---- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool prefixed_number(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(name, prefix, n) == 0 && all_digits(name + n);
}

/* Whole, non-virtual block device? Decided on the name alone, so that it
 * works on fixtures without /sys. */
bool xl_proc_disk_wanted(const char *name)
{
    static const char *const virt[] = {"loop", "ram", "zram", "fd"};
    size_t n = strlen(name), d = n;
    const char *q;
    size_t letters = 0;

    for (size_t i = 0; i < sizeof(virt) / sizeof(virt[0]); i++)
        if (prefixed_number(name, virt[i]))
            return false;
    while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
        d--;
    if (d == n || d == 0)
        return true;
    /* nvme0n1p1, mmcblk0p2, nbd0p1, md0p1 */
    if (d >= 2 && name[d - 1] == 'p' && name[d - 2] >= '0' && name[d - 2] <= '9')
        return false;
    /* sda1, hdb2, vdc3, xvda1 */
    if (strncmp(name, "xvd", 3) == 0)
        q = name + 3;
    else if (strncmp(name, "sd", 2) == 0 || strncmp(name, "hd", 2) == 0 ||
             strncmp(name, "vd", 2) == 0)
        q = name + 2;
    else
        return true;
    while (q[letters] >= 'a' && q[letters] <= 'z')
        letters++;
    return !(letters > 0 && q + letters == name + d);
}

/* /proc/diskstats: every line is checked, wanted devices are stored. */
xl_rc xl_proc_parse_diskstats(const char *buf, size_t len, struct xl_disk_stat *out, size_t max,
                              size_t *n, struct xl_err *err)
{
    struct lines ls = {buf, len, 0, 0};
    struct line l;
    size_t k = 0;

    *n = 0;
    while (next_line(&ls, &l)) {
        const char *p = l.p;
        struct tok maj, min, name;
        uint64_t v[11], x;
        char nm[32];
        size_t cnt;
        bool bad;

        if (!next_tok(&p, l.end, &maj))
            continue;
        if (!parse_u64(maj.p, maj.len, &x) || !next_tok(&p, l.end, &min) ||
            !parse_u64(min.p, min.len, &x) || !next_tok(&p, l.end, &name))
            return perr(err, "proc/diskstats", l.no, "expected major, minor and device name");
        if (name.len >= sizeof(nm))
            return perr(err, "proc/diskstats", l.no, "device name longer than %zu bytes",
                        sizeof(nm) - 1);
        cnt = read_u64s(&p, l.end, v, 11, &bad);
        if (bad || cnt < 11)
            return perr(err, "proc/diskstats", l.no,
                        "expected at least 11 numbers after " TOKF ", got %zu%s", TOKA(name), cnt,
                        bad ? " and a non-number" : "");
        memcpy(nm, name.p, name.len);
        nm[name.len] = '\0';
        if (!xl_proc_disk_wanted(nm))
            continue;
        if (k < max) {
            struct xl_disk_stat *d = &out[k];

            memcpy(d->name, nm, name.len + 1);
            d->reads = v[0];
            d->read_sectors = v[2];
            d->writes = v[4];
            d->write_sectors = v[6];
            d->io_ticks_ms = v[9];
        }
        k++;
    }
    *n = k;
    return XL_OK;
}

/* ---- /proc/net/dev ---- */

/* Column of each kept counter among the 16 numbers of a line. */
static const unsigned net_cols[XL_NET_NCOUNTERS] = {0, 1, 2, 3, 8, 9, 10, 11};

/* /proc/net/dev: two header lines, then "name: 16 counters". */
xl_rc xl_proc_parse_netdev(const char *buf, size_t len, struct xl_net_stat *out, size_t max,
                           size_t *n, struct xl_err *err)
{
    struct lines ls = {buf, len, 0, 0};
    struct line l;
    size_t k = 0;

    *n = 0;
    while (next_line(&ls, &l)) {
        const char *p = l.p, *colon;
        uint64_t v[16];
        size_t cnt, nl;
        bool bad;

        if (l.no <= 2)
            continue; /* the two header lines */
        while (p < l.end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == l.end)
            continue;
        /* Interface names cannot contain ':' or white space (dev_valid_name);
         * old kernels print "eth0:123" with no space after the colon. */
        colon = memchr(p, ':', (size_t)(l.end - p));
        if (!colon)
            return perr(err, "proc/net/dev", l.no, "expected \"interface:\"");
        nl = (size_t)(colon - p);
        if (nl == 0 || nl >= sizeof(out->name))
            return perr(err, "proc/net/dev", l.no, "interface name of %zu bytes (1 to %zu)", nl,
                        sizeof(out->name) - 1);
        if (memchr(p, ' ', nl) || memchr(p, '\t', nl))
            return perr(err, "proc/net/dev", l.no, "white space in interface name");
        {
            const char *q = colon + 1;

            cnt = read_u64s(&q, l.end, v, 16, &bad);
        }
        if (bad || cnt < 16)
            return perr(err, "proc/net/dev", l.no, "expected 16 numbers after %.*s:, got %zu%s",
                        (int)nl, p, cnt, bad ? " and a non-number" : "");
        if (k < max) {
            struct xl_net_stat *s = &out[k];

            memcpy(s->name, p, nl);
            s->name[nl] = '\0';
            for (int i = 0; i < XL_NET_NCOUNTERS; i++)
                s->c[i] = v[net_cols[i]];
        }
        k++;
    }
    if (ls.no < 2)
        return perr(err, "proc/net/dev", 0, "missing the two header lines");
    *n = k;
    return XL_OK;
}

/* ---- /proc/mounts ---- */

/* /proc/mounts: six fields a line; the entries point into buf. */
xl_rc xl_proc_parse_mounts(const char *buf, size_t len, struct xl_mount *out, size_t max, size_t *n,
                           struct xl_err *err)
{
    struct lines ls = {buf, len, 0, 0};
    struct line l;
    size_t k = 0;

    *n = 0;
    while (next_line(&ls, &l)) {
        const char *p = l.p;
        struct tok t[6];
        int nt = 0;

        while (nt < 6 && next_tok(&p, l.end, &t[nt]))
            nt++;
        if (nt == 0)
            continue;
        if (nt < 6)
            return perr(err, "proc/mounts", l.no, "expected 6 fields, got %d", nt);
        if (k < max) {
            struct xl_mount *m = &out[k];

            m->dev = t[0].p;
            m->dev_len = t[0].len;
            m->mnt = t[1].p;
            m->mnt_len = t[1].len;
            m->fstype = t[2].p;
            m->fstype_len = t[2].len;
            m->dev_hash = fnv1a(m->dev, m->dev_len);
            m->mnt_hash = fnv1a(m->mnt, m->mnt_len);
            m->skip = false;
        }
        k++;
    }
    *n = k;
    return XL_OK;
}

static const char *const pseudo_fs[] = {
    "autofs",          "binfmt_misc", "bpf",       "cgroup",   "cgroup2", "configfs",
    "debugfs",         "devpts",      "devtmpfs",  "efivarfs", "fusectl", "fuse.lxcfs",
    "fuse.gvfsd-fuse", "fuse.portal", "hugetlbfs", "mqueue",   "nfsd",    "nsfs",
    "overlay",         "proc",        "pstore",    "ramfs",    "rootfs",  "rpc_pipefs",
    "securityfs",      "selinuxfs",   "squashfs",  "erofs",    "sysfs",   "tracefs",
    "devfs",           "usbfs",       "xenfs",     "sockfs",   "pipefs",  "cpuset",
};

/* fstype in pseudo_fs? */
bool xl_proc_fs_is_pseudo(const char *fstype, size_t len)
{
    for (size_t i = 0; i < sizeof(pseudo_fs) / sizeof(pseudo_fs[0]); i++)
        if (strlen(pseudo_fs[i]) == len && memcmp(pseudo_fs[i], fstype, len) == 0)
            return true;
    return false;
}

static bool same(const char *a, size_t al, uint32_t ah, const char *b, size_t bl, uint32_t bh)
{
    return ah == bh && al == bl && memcmp(a, b, al) == 0;
}

/* The mount point is dir or below it. */
static bool under(const struct xl_mount *m, const char *dir)
{
    size_t n = strlen(dir);

    return m->mnt_len >= n && memcmp(m->mnt, dir, n) == 0 && (m->mnt_len == n || m->mnt[n] == '/');
}

/* Skip pseudo, hidden and bind-mounted entries. O(n^2) on hashes, which
 * stays well under a millisecond for thousands of mounts. */
void xl_proc_mounts_select(struct xl_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct xl_mount *c = &m[i];
        bool has_dev = memchr(c->dev, '/', c->dev_len) != NULL;

        c->skip = false;
        /* A later mount on the same point hides the earlier ones. */
        for (size_t j = 0; j < i; j++)
            if (!m[j].skip &&
                same(m[j].mnt, m[j].mnt_len, m[j].mnt_hash, c->mnt, c->mnt_len, c->mnt_hash))
                m[j].skip = true;
        if (xl_proc_fs_is_pseudo(c->fstype, c->fstype_len) || under(c, "/proc") ||
            under(c, "/sys")) {
            c->skip = true;
            continue;
        }
        if (!has_dev)
            continue;
        for (size_t j = 0; j < i; j++)
            if (!m[j].skip &&
                same(m[j].dev, m[j].dev_len, m[j].dev_hash, c->dev, c->dev_len, c->dev_hash)) {
                c->skip = true;
                break;
            }
    }
}

/* Decode \ooo escapes (three octal digits, at most \377). */
bool xl_proc_unescape(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;

    if (outsz == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            c = (unsigned char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
                                (s[i + 3] - '0'));
            i += 3;
        }
        if (o + 1 >= outsz)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* Replace each byte not part of a valid UTF-8 sequence with '?'. */
void xl_proc_utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (*p) {
        unsigned char c = *p;
        unsigned char lo = 0x80, hi = 0xBF;
        int need;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3;
        else
            need = 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        {
            int i;

            for (i = 1; i <= need; i++) {
                unsigned char lb = i == 1 ? lo : 0x80, hb = i == 1 ? hi : 0xBF;

                if (p[i] < lb || p[i] > hb)
                    break;
            }
            if (need == 0 || i <= need) {
                *p++ = '?';
                continue;
            }
            p += need + 1;
        }
    }
}
