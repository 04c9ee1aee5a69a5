/* xluo-agent tail input: one followed file, from open to forget.
 *
 * A struct tfile is a logical file: one file_uid and its offsets. Usually it
 * is one inode; after a copytruncate the logical file moves to the rotated
 * copy (its unread bytes are there) and the truncated inode becomes a new
 * logical file with a new uid. A file that leaves the input's globs (rename
 * rotation), is deleted, or is replaced is "away": it is read to its end
 * through the descriptor still open, finished after rotate_wait without
 * growth (its unterminated last line shipped), and forgotten once the sink
 * has committed its end. */
#define _GNU_SOURCE /* memrchr, memmem */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "fingerprint.h"
#include "tail_int.h"

/* ------------------------------------------------------------ hash maps */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t key_of(const struct tmap *m, const struct tfile *f)
{
    switch (m->which) {
    case MAP_UID: return mix64(f->uid);
    case MAP_INODE: return mix64(f->ino * 0x9e3779b97f4a7c15ULL ^ f->dev);
    default: return xl_tail_fp_hash(f->path, strlen(f->path));
    }
}

void tmap_init(struct tmap *m, enum tfile_map which)
{
    memset(m, 0, sizeof(*m));
    m->which = which;
}

void tmap_cleanup(struct tmap *m)
{
    xl_free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}

static int tmap_grow(struct tmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct tfile **b = xl_calloc(nb, sizeof(*b));

    if (!b)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct tfile *f = m->b[i], *next;
        for (; f; f = next) {
            size_t h = (size_t)(key_of(m, f) & (nb - 1));
            next = f->hnext[m->which];
            f->hnext[m->which] = b[h];
            b[h] = f;
        }
    }
    xl_free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Insert f (not already in m). -1 when the table could not be created; a
 * failed growth of an existing table only makes chains longer. */
int tmap_insert(struct tmap *m, struct tfile *f)
{
    size_t h;

    if ((m->n >= m->nb || !m->b) && tmap_grow(m) < 0 && !m->b)
        return -1;
    h = (size_t)(key_of(m, f) & (m->nb - 1));
    f->hnext[m->which] = m->b[h];
    m->b[h] = f;
    m->n++;
    return 0;
}

void tmap_remove(struct tmap *m, struct tfile *f)
{
    struct tfile **pp;

    if (!m->b)
        return;
    for (pp = &m->b[key_of(m, f) & (m->nb - 1)]; *pp; pp = &(*pp)->hnext[m->which]) {
        if (*pp == f) {
            *pp = f->hnext[m->which];
            f->hnext[m->which] = NULL;
            m->n--;
            return;
        }
    }
}

struct tfile *tmap_find_uid(const struct tmap *m, uint64_t uid)
{
    if (!m->b)
        return NULL;
    for (struct tfile *f = m->b[mix64(uid) & (m->nb - 1)]; f; f = f->hnext[MAP_UID])
        if (f->uid == uid)
            return f;
    return NULL;
}

struct tfile *tmap_find_inode(const struct tmap *m, const struct tinput *in, uint64_t dev,
                              uint64_t ino)
{
    if (!m->b)
        return NULL;
    for (struct tfile *f = m->b[mix64(ino * 0x9e3779b97f4a7c15ULL ^ dev) & (m->nb - 1)]; f;
         f = f->hnext[MAP_INODE])
        if (f->ino == ino && f->dev == dev && f->in == in)
            return f;
    return NULL;
}

struct tfile *tmap_find_path(const struct tmap *m, const char *path)
{
    if (!m->b)
        return NULL;
    for (struct tfile *f = m->b[xl_tail_fp_hash(path, strlen(path)) & (m->nb - 1)]; f;
         f = f->hnext[MAP_PATH])
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

struct tfile *tmap_next_path(const struct tfile *f, const char *path)
{
    for (f = f->hnext[MAP_PATH]; f; f = f->hnext[MAP_PATH])
        if (strcmp(f->path, path) == 0)
            return (struct tfile *)f;
    return NULL;
}

/* ------------------------------------------------------------ helpers */

static int64_t loop_now(const struct tfile *f)
{
    return (int64_t)uv_now(f->in->t->loop);
}

/* True when path is under one of the input's globs and not excluded. */
bool tinput_path_matches(const struct tinput *in, const char *path)
{
    const char *base = strrchr(path, '/');
    bool hit = false;

    base = base ? base + 1 : path;
    for (size_t i = 0; i < in->paths.n && !hit; i++)
        hit = fnmatch(in->paths.v[i], path, FNM_PATHNAME | FNM_PERIOD) == 0;
    if (!hit)
        return false;
    for (size_t i = 0; i < in->exclude_paths.n; i++) {
        const char *p = in->exclude_paths.v[i];
        if (fnmatch(p, strchr(p, '/') ? path : base, strchr(p, '/') ? FNM_PATHNAME : 0) == 0)
            return false;
    }
    return true;
}

/* Offset just past the last newline in the file's last window bytes: where
 * `from: end` starts, so that the first line shipped is whole. */
static uint64_t end_at_line(int fd, uint64_t size, size_t window)
{
    char *buf;
    uint64_t from = size > window ? size - window : 0;
    ssize_t r;
    uint64_t at = size;

    if (size == 0 || !(buf = xl_malloc(window)))
        return size;
    r = pread(fd, buf, (size_t)(size - from), (off_t)from);
    if (r > 0) {
        const char *nl = memrchr(buf, '\n', (size_t)r);
        if (nl)
            at = from + (uint64_t)(nl - buf) + 1;
        else if (from == 0)
            at = 0; /* one unterminated line: ship it whole once it ends */
    }
    xl_free(buf);
    return at;
}

void tfile_set_path(struct tfile *f, const char *path)
{
    struct xl_tail *t = f->in->t;
    char *p;

    if (strcmp(f->path, path) == 0 || !(p = xl_strdup(path)))
        return;
    tmap_remove(&t->maps[MAP_PATH], f);
    xl_free(f->path);
    f->path = p;
    tmap_insert(&t->maps[MAP_PATH], f);
    tail_set_dirty(t);
}

/* Give the sink a mark when everything before a new, later offset has been
 * handed over: the start of the open multiline record, or of the long line
 * being cut, or the read position. */
void tfile_mark(struct tfile *f)
{
    struct xl_tail *t = f->in->t;
    uint64_t at = f->read_off;

    if (f->part > 0)
        at = f->line_start;
    if (xl_tail_ml_pending(&f->ml) && f->ml.off < at)
        at = f->ml.off;
    if (at > f->handed) {
        f->handed = at;
        t->sink.mark(t->sink.ctx, f->uid, at);
    }
}

/* ------------------------------------------------------------ open / forget */

static void fp_from_fd(struct tfile *f);

/* Follow an open fd (taken) as a logical file of in. uid 0: a new one.
 * NULL when out of memory (fd closed, logged). */
struct tfile *tfile_open(struct tinput *in, const char *path, int fd, const struct stat *st,
                         enum tfile_start how, uint64_t at, uint64_t uid)
{
    struct xl_tail *t = in->t;
    struct tfile *f = xl_calloc(1, sizeof(*f));

    if (!f || !(f->path = xl_strdup(path))) {
        xl_free(f);
        close(fd);
        xl_log_rl(XL_LOG_ERROR, 60, TAIL_MOD, "%s: out of memory opening %s", in->name, path);
        return NULL;
    }
    f->in = in;
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    f->size_seen = (uint64_t)st->st_size;
    f->uid = uid ? uid : tail_new_uid(t);
    fp_from_fd(f);
    if (how == START_END)
        at = end_at_line(fd, (uint64_t)st->st_size, in->max_line_bytes);
    else if (how == START_HEAD)
        at = 0;
    f->read_off = f->handed = f->committed = at;
    if (at > f->size_seen)
        f->size_seen = at; /* shorter than the saved offset: the check sees a truncation */
    f->last_data_ms = loop_now(f);
    f->seen_gen = in->gen;
    if (tmap_insert(&t->maps[MAP_UID], f) < 0 || tmap_insert(&t->maps[MAP_INODE], f) < 0 ||
        tmap_insert(&t->maps[MAP_PATH], f) < 0) {
        tmap_remove(&t->maps[MAP_UID], f);
        tmap_remove(&t->maps[MAP_INODE], f);
        xl_free(f->path);
        xl_free(f);
        close(fd);
        xl_log_rl(XL_LOG_ERROR, 60, TAIL_MOD, "%s: out of memory opening %s", in->name, path);
        return NULL;
    }
    f->next = in->files;
    if (in->files)
        in->files->prev = f;
    in->files = f;
    t->st.files_open++;
    xl_log_debug(TAIL_MOD, "%s: following %s from offset %" PRIu64 " (file %016" PRIx64 ")",
                 in->name, path, at, f->uid);
    tail_set_dirty(t);
    tail_enqueue(t, f);
    return f;
}

static void queue_remove(struct xl_tail *t, struct tfile *f)
{
    struct tfile *prev = NULL;

    if (!f->queued)
        return;
    for (struct tfile *q = t->qhead; q; prev = q, q = q->qnext) {
        if (q != f)
            continue;
        if (prev)
            prev->qnext = q->qnext;
        else
            t->qhead = q->qnext;
        if (t->qtail == q)
            t->qtail = prev;
        break;
    }
    f->queued = false;
    f->qnext = NULL;
}

/* Close and free f. Its pending multiline record and unterminated line are
 * not shipped: they were not committed, so a restart reads them again. */
void tfile_forget(struct tfile *f)
{
    struct tinput *in = f->in;
    struct xl_tail *t = in->t;

    queue_remove(t, f);
    tail_ml_unlist(f);
    for (int i = 0; i < MAP_COUNT; i++)
        tmap_remove(&t->maps[i], f);
    if (f->prev)
        f->prev->next = f->next;
    else
        in->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->fd >= 0) {
        close(f->fd);
        t->st.files_open--;
    }
    tfile_retire(f);
    t->gone[t->gone_pos].dev = f->dev;
    t->gone[t->gone_pos].ino = f->ino;
    t->gone_pos = (t->gone_pos + 1) % (sizeof(t->gone) / sizeof(t->gone[0]));
    xl_log_debug(TAIL_MOD, "%s: closed %s (file %016" PRIx64 ", committed %" PRIu64 ")", in->name,
                 f->path, f->uid, f->committed);
    xl_tail_ml_cleanup(&f->ml);
    xl_free(f->path);
    xl_free(f);
    tail_set_dirty(t);
}

void tfile_close_all(struct tinput *in)
{
    while (in->files)
        tfile_forget(in->files);
}

/* ------------------------------------------------------------ fingerprints */

/* Compare the first bytes with the fingerprint; extend the fingerprint when
 * it covers less than XL_TAIL_FP_MAX bytes and the file has more. False:
 * the content was replaced. The fingerprint is extended whenever the agent
 * learns of more bytes (size_seen grows), so that it covers the content
 * whose size was seen: after a truncation it is what finds the copy. */
bool tfile_fp_ok(struct tfile *f)
{
    if (f->fp_len > 0 && !xl_tail_fp_matches(f->fd, f->fp, f->fp_len))
        return false;
    if (f->fp_len < XL_TAIL_FP_MAX)
        tfile_update_fp(f);
    return true;
}

void tfile_set_fp(struct tfile *f, const void *buf, size_t n)
{
    f->fp_len = (uint32_t)(n < XL_TAIL_FP_MAX ? n : XL_TAIL_FP_MAX);
    f->fp = xl_tail_fp_hash(buf, f->fp_len);
    f->head_len = (uint16_t)(n < TAIL_HEAD_SAMPLE ? n : TAIL_HEAD_SAMPLE);
    memcpy(f->head, buf, f->head_len);
}

/* Fingerprint whatever f's first bytes are now. */
static void fp_from_fd(struct tfile *f)
{
    unsigned char buf[XL_TAIL_FP_MAX];
    ssize_t n = pread(f->fd, buf, sizeof(buf), 0);

    tfile_set_fp(f, buf, n > 0 ? (size_t)n : 0);
}

/* Extend the fingerprint to the bytes the file has now (the caller has
 * checked that the bytes it covers are unchanged). */
void tfile_update_fp(struct tfile *f)
{
    unsigned char buf[XL_TAIL_FP_MAX];
    ssize_t n = pread(f->fd, buf, sizeof(buf), 0);

    if (n > 0 && (size_t)n > f->fp_len) {
        tfile_set_fp(f, buf, (size_t)n);
        tail_set_dirty(f->in->t);
    }
}

/* ------------------------------------------------------------ away, truncation */

/* Where f's inode is now: its new name, or deleted. */
static void locate(struct tfile *f)
{
    char link[64], target[4096];
    ssize_t n;
    static const char suffix[] = " (deleted)";
    struct stat st;

    if (fstat(f->fd, &st) == 0 && st.st_nlink == 0)
        f->deleted = true;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", f->fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = 0;
    if ((size_t)n > sizeof(suffix) - 1 && strcmp(target + n - (sizeof(suffix) - 1), suffix) == 0) {
        f->deleted = true;
        return;
    }
    if (!f->deleted)
        tfile_set_path(f, target);
}

/* f is no longer under the globs (renamed out, deleted, or its name now
 * holds another file): read it to the end through the open descriptor. */
void tfile_away(struct tfile *f)
{
    char old[4096];

    if (f->away || f->fd < 0)
        return;
    snprintf(old, sizeof(old), "%s", f->path);
    f->away = true;
    locate(f);
    if (f->deleted) {
        xl_log_info(TAIL_MOD, "%s: %s was deleted; reading what is left (%" PRIu64 " bytes read)",
                    f->in->name, f->path, f->read_off);
    } else {
        f->in->t->st.rotations++;
        xl_log_info(TAIL_MOD, "%s: %s rotated (now %s); reading it to the end", f->in->name, old,
                    f->path);
    }
    f->at_eof = false;
    tail_enqueue(f->in->t, f);
}

struct candidate {
    char path[4096];
    struct stat st;
    int fd;
    bool same_inode;
};

/* Look in dir for the file with inode (dev, ino) and the fingerprint, or,
 * when allow_copy, any other file with the fingerprint and more than
 * min_size bytes (a copy); the most recently modified copy wins. The
 * candidate's fd is open on success (caller closes). skip_name: the file
 * being replaced. */
static bool find_beside(const char *dir, const char *skip_name, uint64_t dev, uint64_t ino,
                        uint64_t fp, uint32_t fp_len, bool allow_copy, uint64_t min_size,
                        struct candidate *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;

    out->fd = -1;
    if (!d)
        return false;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        int fd;
        bool same;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (skip_name && strcmp(de->d_name, skip_name) == 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        same = (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
        if (!same && (!allow_copy || (uint64_t)st.st_size <= min_size || fp_len == 0 ||
                      (uint64_t)st.st_size < fp_len))
            continue;
        if (!same && found && (out->same_inode || st.st_mtim.tv_sec < out->st.st_mtim.tv_sec))
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (!xl_tail_fp_matches(fd, fp, fp_len)) {
            close(fd);
            continue;
        }
        if (out->fd >= 0)
            close(out->fd);
        fstat(fd, &out->st);
        out->fd = fd;
        out->same_inode = same;
        snprintf(out->path, sizeof(out->path), "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
        found = true;
        if (same)
            break;
    }
    closedir(d);
    return found;
}

static void split_dir(const char *path, char *dir, size_t dirlen, const char **base)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        snprintf(dir, dirlen, ".");
        *base = path;
    } else {
        snprintf(dir, dirlen, "%.*s", (int)(slash == path ? 1 : slash - path), path);
        *base = slash + 1;
    }
}

static void change_uid(struct tfile *f)
{
    struct xl_tail *t = f->in->t;

    tmap_remove(&t->maps[MAP_UID], f);
    f->uid = tail_new_uid(t);
    f->saved = false;
    tmap_insert(&t->maps[MAP_UID], f);
}

/* f's inode shrank below what was read, or its first bytes changed. Look
 * beside it for the rotated copy (same first bytes, more than read_off
 * bytes): if found, f (uid, offsets, open record) moves to the copy and the
 * truncated inode becomes a new file read from its head. Otherwise f starts
 * again at 0 under a new uid and the unread bytes are reported lost. */
void tfile_truncated(struct tfile *f, const char *why)
{
    struct tinput *in = f->in;
    struct xl_tail *t = in->t;
    char dir[4096];
    const char *base;
    struct candidate c;
    struct stat now;
    uint64_t lost;

    t->st.rotations++;
    if (fstat(f->fd, &now) < 0)
        memset(&now, 0, sizeof(now));
    if (!why)
        why = (uint64_t)now.st_size < f->size_seen ? "was truncated"
                                                   : "was replaced (its first bytes changed)";
    split_dir(f->path, dir, sizeof(dir), &base);
    if (find_beside(dir, base, UINT64_MAX, UINT64_MAX, f->fp, f->fp_len, true, f->read_off, &c)) {
        if (!tmap_find_inode(&t->maps[MAP_INODE], in, (uint64_t)c.st.st_dev,
                             (uint64_t)c.st.st_ino)) {
            struct stat trunc_st = now;
            int trunc_fd = f->fd;
            char trunc_path[4096];
            uint64_t unread = (uint64_t)c.st.st_size - f->read_off;

            lost =
                f->size_seen > (uint64_t)c.st.st_size ? f->size_seen - (uint64_t)c.st.st_size : 0;
            snprintf(trunc_path, sizeof(trunc_path), "%s", f->path);
            tmap_remove(&t->maps[MAP_INODE], f);
            f->fd = c.fd;
            f->dev = (uint64_t)c.st.st_dev;
            f->ino = (uint64_t)c.st.st_ino;
            f->size_seen = (uint64_t)c.st.st_size;
            tmap_insert(&t->maps[MAP_INODE], f);
            tfile_set_path(f, c.path);
            f->away = !tinput_path_matches(in, c.path);
            f->at_eof = false;
            f->finished = false;
            t->st.copytruncate_recovered_bytes += unread;
            xl_log_info(TAIL_MOD,
                        "%s: %s %s: reading its %" PRIu64 " unread bytes from the copy %s",
                        in->name, trunc_path, why, unread, c.path);
            if (lost) {
                t->st.bytes_lost += lost;
                xl_log_warn(TAIL_MOD,
                            "%s: %s: %" PRIu64 " bytes written after the copy %s was made and "
                            "before the truncation are lost (copytruncate race)",
                            in->name, trunc_path, lost, c.path);
            }
            tail_enqueue(t, f);
            tfile_open(in, trunc_path, trunc_fd, &trunc_st, START_HEAD, 0, 0);
            return;
        }
        xl_log_info(TAIL_MOD, "%s: %s %s; its copy %s is followed as a file of its own", in->name,
                    f->path, why, c.path);
        close(c.fd);
        lost = 0;
    } else {
        lost = f->size_seen > f->read_off ? f->size_seen - f->read_off : 0;
    }
    /* Restart the inode from 0 as new content. What was read is shipped. */
    tfile_retire(f);
    tail_ml_flush(f);
    f->part = 0;
    tfile_mark(f);
    if (lost) {
        t->st.bytes_lost += lost;
        xl_log_warn(TAIL_MOD,
                    "%s: %s %s (size %lld, read to %" PRIu64 ") and no rotated copy with the "
                    "same first bytes was found beside it: %" PRIu64 " unread bytes are lost",
                    in->name, f->path, why, (long long)now.st_size, f->read_off, lost);
    } else {
        xl_log_info(TAIL_MOD, "%s: %s %s: reading it again from the start", in->name, f->path, why);
    }
    change_uid(f);
    f->read_off = f->handed = f->committed = 0;
    f->size_seen = (uint64_t)now.st_size;
    f->at_eof = false;
    f->finished = false;
    fp_from_fd(f);
    tail_set_dirty(t);
    tail_enqueue(t, f);
}

/* The poll's look at one file: deleted? shrunk? replaced? grown? */
void tfile_check(struct tfile *f, bool fp_too)
{
    struct stat st;

    if (f->fd < 0 || f->forget)
        return;
    if (fstat(f->fd, &st) < 0) {
        f->in->t->st.read_errors++;
        xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s: fstat %s: %s", f->in->name, f->path,
                  strerror(errno));
        return;
    }
    if (st.st_nlink == 0 && !f->away)
        tfile_away(f);
    if ((uint64_t)st.st_size < f->size_seen) {
        tfile_truncated(f, "was truncated");
        return;
    }
    if ((fp_too || ((uint64_t)st.st_size > f->size_seen && f->fp_len < XL_TAIL_FP_MAX)) &&
        !f->away && !tfile_fp_ok(f)) {
        tfile_truncated(f, NULL);
        return;
    }
    if ((uint64_t)st.st_size > f->size_seen || ((uint64_t)st.st_size > f->read_off && !f->at_eof)) {
        f->size_seen = (uint64_t)st.st_size;
        tail_enqueue(f->in->t, f);
    }
}

/* Away files: finish after rotate_wait without growth, forget once the
 * finished end is committed. */
void tfile_idle_checks(struct tfile *f, int64_t now)
{
    struct xl_tail *t = f->in->t;

    if (!f->away || f->forget)
        return;
    if (!f->finished && f->at_eof && !f->queued && !t->paused &&
        now - f->last_data_ms >= f->in->rotate_wait)
        tail_read_finish(f);
    if (f->finished && f->committed >= f->final_end) {
        f->forget = true;
        t->deferred = true;
        tail_kick(t);
    }
}

/* ------------------------------------------------------------ discovery results */

static bool path_is(const char *path, uint64_t dev, uint64_t ino)
{
    struct stat st;

    return stat(path, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

static struct xl_tail_offset *saved_by_inode(struct xl_tail *t, const struct tinput *in,
                                             uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < t->saved.n; i++) {
        struct xl_tail_offset *e = &t->saved.v[i];
        if (!e->claimed && e->dev == dev && e->ino == ino && strcmp(e->input, in->name) == 0)
            return e;
    }
    return NULL;
}

/* The walk found path (stat st) under the input's globs. */
void tfile_found(struct tinput *in, const char *path, const struct stat *st, bool initial)
{
    struct xl_tail *t = in->t;
    struct tfile *f =
        tmap_find_inode(&t->maps[MAP_INODE], in, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    struct xl_tail_offset *e;
    struct stat fst;
    enum tfile_start how;
    int fd;

    if (f) {
        f->seen_gen = in->gen;
        if (f->forget)
            return;
        /* Renamed within the globs: take the new name, unless the old one
         * is still a name of this inode (hard links, symlinks). */
        if (strcmp(f->path, path) != 0 && (f->away || !path_is(f->path, f->dev, f->ino)))
            tfile_set_path(f, path);
        if (f->away && !f->deleted) {
            f->away = false;
            f->finished = false;
            tail_enqueue(t, f);
        }
        if ((uint64_t)st->st_size != f->size_seen)
            tail_enqueue(t, f);
        return;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            t->st.read_errors++;
            xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s: open %s: %s (retried at the next poll)",
                      in->name, path, strerror(errno));
        }
        return;
    }
    if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode)) {
        close(fd);
        return;
    }
    if (fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
        /* Replaced between the stat and the open: the next walk sees it. */
        close(fd);
        in->rescan_pending = true;
        t->deferred = true;
        return;
    }
    e = t->saved.n ? saved_by_inode(t, in, (uint64_t)fst.st_dev, (uint64_t)fst.st_ino) : NULL;
    if (e && xl_tail_fp_matches(fd, e->fp, e->fp_len)) {
        e->claimed = 1;
        f = tfile_open(in, path, fd, &fst, START_AT, e->offset, e->uid);
        if (f) {
            f->fp = e->fp, f->fp_len = e->fp_len;  /* the saved one: checked, extended later */
            if ((uint64_t)fst.st_size < e->offset) /* truncated while stopped: find the copy */
                tfile_truncated(f, "was truncated while the agent was stopped");
        }
        return;
    }
    if (e)
        xl_log_info(TAIL_MOD,
                    "%s: %s is a new file with the inode of one read before (its "
                    "first bytes differ): reading it from the head",
                    in->name, path);
    how = START_HEAD;
    if (initial && !in->has_history && !in->from_head)
        how = START_END;
    tfile_open(in, path, fd, &fst, how, 0, 0);
}

/* After the first walks: files known to the state file but not found under
 * the globs were renamed or copied away while the agent was stopped. Find
 * them beside their old name (same inode and first bytes; or, after a
 * copytruncate, another file with the same first bytes) and read them on
 * from the committed offset. The saved set is freed. */
void tfile_resolve_saved(struct xl_tail *t)
{
    for (size_t i = 0; i < t->saved.n; i++) {
        struct xl_tail_offset *e = &t->saved.v[i];
        struct tinput *in;
        char dir[4096];
        const char *base;
        struct candidate c;
        struct tfile *f;

        if (e->claimed)
            continue;
        for (in = t->inputs; in && strcmp(in->name, e->input) != 0; in = in->next)
            ;
        if (!in)
            continue;
        split_dir(e->path, dir, sizeof(dir), &base);
        if (!find_beside(dir, NULL, e->dev, e->ino, e->fp, e->fp_len, true, e->offset, &c)) {
            xl_log_info(TAIL_MOD,
                        "%s: %s (file %016" PRIx64 ") is gone: deleted, replaced or moved away "
                        "while the agent was stopped",
                        in->name, e->path, e->uid);
            continue;
        }
        if (tmap_find_inode(&t->maps[MAP_INODE], in, (uint64_t)c.st.st_dev,
                            (uint64_t)c.st.st_ino)) {
            close(c.fd);
            continue;
        }
        e->claimed = 1;
        xl_log_info(TAIL_MOD,
                    "%s: %s (file %016" PRIx64 ") is now %s: reading on from offset %" PRIu64,
                    in->name, e->path, e->uid, c.path, e->offset);
        f = tfile_open(in, c.path, c.fd, &c.st, START_AT, e->offset, e->uid);
        if (f && !tinput_path_matches(in, c.path)) {
            f->away = true;
            t->st.rotations++;
        }
    }
    xl_tail_offsets_cleanup(&t->saved);
}

/* ------------------------------------------------------------ unseen generations
 *
 * copytruncate faster than the agent looks (several rotations between two
 * loop iterations) leaves copies of generations the agent never read: the
 * truncation it detects only leads to the copy of the content it knew.
 * When a rotation-named file is written beside a followed file, the files
 * of that naming born since the input started are examined: one the input
 * does not know (by inode, or as a file it forgot), whose first bytes are
 * not those of a file it knows (the copy of a followed file's current
 * content is linked when the truncation is seen) and that looks like text
 * (no NUL byte, no compression magic) is a generation never seen: it is
 * read from its head as a rotated file. */

/* name is base followed by [.-] and then only digits, '.', '-', '_':
 * app.log.1, app.log-20261121, app.log.2026-11-21 (not app.log.1.gz). */
bool tail_is_rotation_name(const char *base, const char *name)
{
    size_t n = strlen(base);

    if (strncmp(name, base, n) != 0 || (name[n] != '.' && name[n] != '-') || !name[n + 1])
        return false;
    for (const char *p = name + n + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool gone_recently(const struct xl_tail *t, uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < sizeof(t->gone) / sizeof(t->gone[0]); i++)
        if (t->gone[i].ino == ino && t->gone[i].dev == dev && ino)
            return true;
    return false;
}

static bool looks_like_text(const unsigned char *p, size_t n)
{
    static const unsigned char gz[] = {0x1f, 0x8b}, xz[] = {0xfd, '7', 'z', 'X', 'Z'},
                               zst[] = {0x28, 0xb5, 0x2f, 0xfd};

    if ((n >= 2 && !memcmp(p, gz, 2)) || (n >= 5 && !memcmp(p, xz, 5)) ||
        (n >= 4 && !memcmp(p, zst, 4)) || (n >= 3 && !memcmp(p, "BZh", 3)))
        return false;
    return memchr(p, 0, n) == NULL;
}

/* False when head (n bytes) starts with the fingerprinted bytes of a file
 * of in: a copy of content the input knows. A head shorter than a file's
 * fingerprint (a small file, or a copy still being written) is compared
 * with the first bytes kept verbatim. */
static bool same_head(const unsigned char *head, size_t n, uint64_t fp, uint32_t fp_len,
                      const unsigned char *sample, size_t sample_len)
{
    size_t m = n < sample_len ? n : sample_len;

    if (fp_len == 0)
        return false;
    if (n >= fp_len)
        return xl_tail_fp_hash(head, fp_len) == fp;
    return m == 0 || memcmp(head, sample, m) == 0;
}

static bool head_new(const struct tinput *in, const unsigned char *head, size_t n)
{
    const struct xl_tail *t = in->t;

    for (const struct tfile *f = in->files; f; f = f->next)
        if (same_head(head, n, f->fp, f->fp_len, f->head, f->head_len))
            return false;
    for (size_t i = 0; i < sizeof(t->retired) / sizeof(t->retired[0]); i++) {
        const struct tretired *r = &t->retired[i];
        if (r->in == in && same_head(head, n, r->fp, r->fp_len, r->head, r->head_len))
            return false;
    }
    return true;
}

void tfile_retire(struct tfile *f)
{
    struct xl_tail *t = f->in->t;
    struct tretired *r = &t->retired[t->retired_pos];

    if (f->fp_len == 0)
        return;
    r->in = f->in;
    r->fp = f->fp;
    r->fp_len = f->fp_len;
    r->head_len = f->head_len;
    memcpy(r->head, f->head, f->head_len);
    t->retired_pos = (t->retired_pos + 1) % (sizeof(t->retired) / sizeof(t->retired[0]));
}

void tail_retired_drop(struct xl_tail *t, const struct tinput *in)
{
    for (size_t i = 0; i < sizeof(t->retired) / sizeof(t->retired[0]); i++)
        if (t->retired[i].in == in)
            t->retired[i].in = NULL;
}

void tfile_scan_generations(struct tinput *in, const char *dir, const char *base)
{
    struct xl_tail *t = in->t;
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        struct statx sx;
        struct stat st;
        unsigned char head[XL_TAIL_FP_MAX];
        char path[4096];
        ssize_t n;
        struct tfile *f;
        int fd;

        if (!tail_is_rotation_name(base, de->d_name))
            continue;
        if (statx(dirfd(d), de->d_name, 0, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0 ||
            !(sx.stx_mask & STATX_BTIME) || !S_ISREG(sx.stx_mode) ||
            (int64_t)sx.stx_btime.tv_sec * 1000 + sx.stx_btime.tv_nsec / 1000000 < in->started_ms)
            continue;
        if (tmap_find_inode(&t->maps[MAP_INODE], in,
                            (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino) ||
            gone_recently(t, (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino))
            continue;
        snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
        if (tinput_path_matches(in, path))
            continue; /* under the globs: the walk's */
        if ((fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = pread(fd, head, sizeof(head), 0);
        if (n <= 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_ino != sx.stx_ino ||
            !looks_like_text(head, (size_t)n) || !head_new(in, head, (size_t)n)) {
            close(fd);
            continue;
        }
        if ((f = tfile_open(in, path, fd, &st, START_HEAD, 0, 0)) != NULL) {
            f->away = true;
            t->st.rotations++;
            xl_log_info(TAIL_MOD,
                        "%s: %s is a copy of a generation of %s/%s that was rotated "
                        "before it was read: reading it from the head",
                        in->name, path, dir, base);
        }
    }
    closedir(d);
}
