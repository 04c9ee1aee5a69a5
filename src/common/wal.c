/* xluo: write-ahead log segments: framing, CRC, replay with torn-tail
 * truncation, rotation. See wal.h. */
#include "common/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/alloc.h"

static const char seg_magic[8] = {'X', 'L', 'U', 'O', 'W', 'A', 'L', '1'};

struct xl_wal {
    char *dir;
    bool sync;
    int fd;
    uint32_t seg;
    uint64_t seg_bytes; /* record bytes after the segment header */
    uint64_t total_bytes;
};

/* ---- CRC32C: SSE4.2 instruction where the CPU has it, else slice-by-8 ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = c ^ xl_get_le32(p), hi = xl_get_le32(p + 4);

        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw32(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;

    while (n >= 8) {
        uint64_t w;

        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t xl_crc32c_portable(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_sw(~crc, p, n);
}

uint32_t xl_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw)
        return ~crc_hw32(~crc, p, n);
#endif
    return ~crc_sw(~crc, p, n);
}

/* ---- files ---- */

static xl_rc seg_path(const char *dir, uint32_t seg, char *buf, size_t cap, struct xl_err *err)
{
    int n = snprintf(buf, cap, "%s/%08u.wal", dir, seg);

    if (n < 0 || (size_t)n >= cap)
        return xl_err_set(err, XL_EINVAL, "wal: path too long: %s", dir);
    return XL_OK;
}

static xl_rc sync_dir(const char *dir, struct xl_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e;

    if (fd < 0)
        return xl_err_sys(err, XL_EIO, errno, "wal: open %s", dir);
    if (fsync(fd) != 0) {
        e = errno;
        close(fd);
        return xl_err_sys(err, XL_EIO, e, "wal: fsync %s", dir);
    }
    close(fd);
    return XL_OK;
}

static xl_rc write_all(int fd, const uint8_t *p, size_t n, off_t off, const char *what,
                       struct xl_err *err)
{
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, off);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return xl_err_sys(err, XL_EIO, errno, "wal: write %s", what);
        }
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return XL_OK;
}

/* Create segment seg with its header; fd returned in *fdp. */
static xl_rc seg_create(struct xl_wal *w, uint32_t seg, int *fdp, struct xl_err *err)
{
    char path[PATH_MAX];
    uint8_t hdr[XL_WAL_SEG_HDR];
    xl_rc rc;
    int fd;

    if ((rc = seg_path(w->dir, seg, path, sizeof(path), err)) != XL_OK)
        return rc;
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return xl_err_sys(err, XL_EIO, errno, "wal: create %s", path);
    memcpy(hdr, seg_magic, 8);
    xl_put_le32(hdr + 8, seg);
    xl_put_le32(hdr + 12, xl_crc32c(0, hdr, 12));
    if ((rc = write_all(fd, hdr, sizeof(hdr), 0, path, err)) != XL_OK)
        goto out_unlink;
    if (w->sync) {
        if (fdatasync(fd) != 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "wal: fdatasync %s", path);
            goto out_unlink;
        }
        if ((rc = sync_dir(w->dir, err)) != XL_OK)
            goto out_unlink;
    }
    *fdp = fd;
    return XL_OK;
out_unlink:
    close(fd);
    unlink(path);
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Numbers of the segment files in dir, sorted. */
static xl_rc list_segments(const char *dir, uint32_t **out, size_t *nout, struct xl_err *err)
{
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;

    *out = NULL;
    *nout = 0;
    if (!(d = opendir(dir)))
        return xl_err_sys(err, XL_EIO, errno, "wal: opendir %s", dir);
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        unsigned long num;
        char *end;

        if (strlen(s) != 12 || strcmp(s + 8, ".wal") != 0 || s[0] < '0' || s[0] > '9')
            continue;
        num = strtoul(s, &end, 10);
        if (end != s + 8 || num > UINT32_MAX)
            continue;
        if (xl_grow((void **)&v, &cap, n + 1, sizeof(*v)) != 0) {
            closedir(d);
            xl_free(v);
            return xl_err_set(err, XL_ENOMEM, "wal: out of memory listing %s", dir);
        }
        v[n++] = (uint32_t)num;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_u32);
    *out = v;
    *nout = n;
    return XL_OK;
}

static void note_cut(struct xl_wal_replay_stats *st, const char *path, uint64_t off,
                     uint64_t dropped, const char *why)
{
    st->truncated_bytes += dropped;
    st->truncated_segments++;
    if (!st->detail[0])
        snprintf(st->detail, sizeof(st->detail), "%.160s: %llu bytes dropped at offset %llu (%s)",
                 path, (unsigned long long)dropped, (unsigned long long)off, why);
}

/* Replay one segment; cut it at the first bad record. */
static xl_rc replay_segment(struct xl_wal *w, uint32_t seg, xl_wal_record_cb cb, void *ctx,
                            struct xl_wal_replay_stats *st, struct xl_err *err)
{
    char path[PATH_MAX];
    const char *why = NULL;
    const uint8_t *m = NULL;
    size_t map_len = 0;
    uint64_t size, off;
    struct stat sb;
    xl_rc rc;
    int fd;

    if ((rc = seg_path(w->dir, seg, path, sizeof(path), err)) != XL_OK)
        return rc;
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
        return xl_err_sys(err, XL_EIO, errno, "wal: open %s", path);
    if (fstat(fd, &sb) != 0) {
        rc = xl_err_sys(err, XL_EIO, errno, "wal: stat %s", path);
        goto out;
    }
    size = (uint64_t)sb.st_size;
    st->segments++;
    if (size > 0) {
        map_len = (size_t)size;
        m = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            m = NULL;
            map_len = 0;
            rc = xl_err_sys(err, XL_EIO, errno, "wal: mmap %s", path);
            goto out;
        }
    }
    if (size < XL_WAL_SEG_HDR || memcmp(m, seg_magic, 8) != 0 || xl_get_le32(m + 8) != seg ||
        xl_get_le32(m + 12) != xl_crc32c(0, m, 12)) {
        /* Never got its header: nothing in it was acknowledged. */
        note_cut(st, path, 0, size, "bad segment header");
        if (unlink(path) != 0)
            rc = xl_err_sys(err, XL_EIO, errno, "wal: unlink %s", path);
        goto out;
    }
    off = XL_WAL_SEG_HDR;
    while (off < size) {
        uint64_t len;

        if (size - off < XL_WAL_FRAME_HDR) {
            why = "torn record header";
            break;
        }
        len = xl_get_le32(m + off);
        if (len == 0 || len > XL_WAL_MAX_RECORD) {
            why = "bad record length";
            break;
        }
        if (len > size - off - XL_WAL_FRAME_HDR) {
            why = "torn record";
            break;
        }
        if (xl_crc32c(0, m + off + XL_WAL_FRAME_HDR, len) != xl_get_le32(m + off + 4)) {
            why = "CRC mismatch";
            break;
        }
        rc = cb(ctx, &(struct xl_wal_pos){.seg = seg, .off = off}, m + off + XL_WAL_FRAME_HDR,
                len, err);
        if (rc == XL_EPARSE) {
            why = "record rejected";
            break;
        }
        if (rc != XL_OK)
            goto out;
        st->records++;
        off += XL_WAL_FRAME_HDR + len;
    }
    if (why) {
        note_cut(st, path, off, size - off, why);
        if (ftruncate(fd, (off_t)off) != 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "wal: truncate %s", path);
            goto out;
        }
        if (w->sync && fdatasync(fd) != 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "wal: fdatasync %s", path);
            goto out;
        }
        size = off;
    }
    w->total_bytes += size;
    rc = XL_OK;
out:
    if (m)
        munmap((void *)m, map_len);
    close(fd);
    return rc;
}

xl_rc xl_wal_open(const char *dir, uint32_t covered, bool sync, xl_wal_record_cb cb, void *ctx,
                  struct xl_wal_replay_stats *st, struct xl_wal **out, struct xl_err *err)
{
    struct xl_wal_replay_stats dummy;
    char path[PATH_MAX];
    uint32_t *segs = NULL, next = covered;
    size_t nsegs = 0;
    struct xl_wal *w;
    xl_rc rc;

    *out = NULL;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof(*st));
    if (!(w = xl_calloc(1, sizeof(*w))))
        return xl_err_set(err, XL_ENOMEM, "wal: out of memory");
    w->fd = -1;
    w->sync = sync;
    if (!(w->dir = xl_strdup(dir))) {
        rc = xl_err_set(err, XL_ENOMEM, "wal: out of memory");
        goto out_free;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = xl_err_sys(err, XL_EIO, errno, "wal: mkdir %s", dir);
        goto out_free;
    }
    if ((rc = list_segments(dir, &segs, &nsegs, err)) != XL_OK)
        goto out_free;
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i] <= covered) {
            /* Left over by a checkpoint that committed but died before
             * deleting: its samples are in the chunks already. */
            if ((rc = seg_path(dir, segs[i], path, sizeof(path), err)) != XL_OK)
                goto out_free;
            if (unlink(path) != 0 && errno != ENOENT) {
                rc = xl_err_sys(err, XL_EIO, errno, "wal: unlink %s", path);
                goto out_free;
            }
            continue;
        }
        if ((rc = replay_segment(w, segs[i], cb, ctx, st, err)) != XL_OK)
            goto out_free;
        next = segs[i];
    }
    if (next == UINT32_MAX) {
        rc = xl_err_set(err, XL_ERANGE, "wal: segment numbers exhausted in %s", dir);
        goto out_free;
    }
    w->seg = next + 1;
    if ((rc = seg_create(w, w->seg, &w->fd, err)) != XL_OK)
        goto out_free;
    w->total_bytes += XL_WAL_SEG_HDR;
    xl_free(segs);
    *out = w;
    return XL_OK;
out_free:
    xl_free(segs);
    xl_wal_close(w);
    return rc;
}

void xl_wal_close(struct xl_wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    xl_free(w->dir);
    xl_free(w);
}

xl_rc xl_wal_write(struct xl_wal *w, uint8_t *frame, size_t payload_len, bool *broken,
                   struct xl_err *err)
{
    off_t off = (off_t)(XL_WAL_SEG_HDR + w->seg_bytes);
    size_t len = XL_WAL_FRAME_HDR + payload_len;
    xl_rc rc;

    *broken = false;
    if (payload_len == 0 || payload_len > XL_WAL_MAX_RECORD)
        return xl_err_set(err, XL_ETOOBIG, "wal: record of %zu bytes (1..%zu)", payload_len,
                          XL_WAL_MAX_RECORD);
    xl_put_le32(frame, (uint32_t)payload_len);
    xl_put_le32(frame + 4, xl_crc32c(0, frame + XL_WAL_FRAME_HDR, payload_len));
    if ((rc = write_all(w->fd, frame, len, off, "segment", err)) != XL_OK) {
        /* Cut off whatever part made it so that the next record follows the
         * last good one. */
        if (ftruncate(w->fd, off) != 0)
            *broken = true;
        return rc;
    }
    w->seg_bytes += len;
    w->total_bytes += len;
    return XL_OK;
}

struct xl_wal_pos xl_wal_next_pos(const struct xl_wal *w)
{
    return (struct xl_wal_pos){.seg = w->seg, .off = XL_WAL_SEG_HDR + w->seg_bytes};
}

xl_rc xl_wal_read(const struct xl_wal *w, const struct xl_wal_pos *pos, uint8_t *buf,
                  size_t len, struct xl_err *err)
{
    char path[PATH_MAX];
    uint8_t hdr[XL_WAL_FRAME_HDR];
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {buf, len}};
    ssize_t k;
    xl_rc rc;
    int fd = -1, e;

    if (pos->seg == w->seg) {
        fd = w->fd;
    } else {
        if ((rc = seg_path(w->dir, pos->seg, path, sizeof(path), err)) != XL_OK)
            return rc;
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return xl_err_sys(err, XL_EIO, errno, "wal: open %s", path);
    }
    do
        k = preadv(fd, iov, 2, (off_t)pos->off);
    while (k < 0 && errno == EINTR);
    e = errno;
    if (fd != w->fd)
        close(fd);
    if (k < 0)
        return xl_err_sys(err, XL_EIO, e, "wal: read segment %u at %llu", pos->seg,
                          (unsigned long long)pos->off);
    if ((size_t)k != sizeof(hdr) + len || xl_get_le32(hdr) != len ||
        xl_get_le32(hdr + 4) != xl_crc32c(0, buf, len))
        return xl_err_set(err, XL_EPARSE,
                          "wal: segment %u offset %llu: record is short or fails its CRC",
                          pos->seg, (unsigned long long)pos->off);
    return XL_OK;
}

int xl_wal_fd(const struct xl_wal *w)
{
    return w->fd;
}

uint32_t xl_wal_segment(const struct xl_wal *w)
{
    return w->seg;
}

uint64_t xl_wal_segment_bytes(const struct xl_wal *w)
{
    return w->seg_bytes;
}

uint64_t xl_wal_total_bytes(const struct xl_wal *w)
{
    return w->total_bytes;
}

xl_rc xl_wal_rotate(struct xl_wal *w, struct xl_err *err)
{
    xl_rc rc;
    int fd;

    if (w->seg == UINT32_MAX)
        return xl_err_set(err, XL_ERANGE, "wal: segment numbers exhausted");
    if ((rc = seg_create(w, w->seg + 1, &fd, err)) != XL_OK)
        return rc;
    close(w->fd);
    w->fd = fd;
    w->seg++;
    w->seg_bytes = 0;
    w->total_bytes += XL_WAL_SEG_HDR;
    return XL_OK;
}

xl_rc xl_wal_remove_upto(struct xl_wal *w, uint32_t seg, struct xl_err *err)
{
    char path[PATH_MAX];
    uint32_t *segs;
    size_t nsegs;
    struct stat sb;
    xl_rc rc;

    if ((rc = list_segments(w->dir, &segs, &nsegs, err)) != XL_OK)
        return rc;
    for (size_t i = 0; i < nsegs && segs[i] <= seg; i++) {
        if (segs[i] == w->seg)
            continue;
        if ((rc = seg_path(w->dir, segs[i], path, sizeof(path), err)) != XL_OK)
            break;
        if (stat(path, &sb) == 0 && (uint64_t)sb.st_size <= w->total_bytes)
            w->total_bytes -= (uint64_t)sb.st_size;
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = xl_err_sys(err, XL_EIO, errno, "wal: unlink %s", path);
            break;
        }
    }
    xl_free(segs);
    return rc;
}
