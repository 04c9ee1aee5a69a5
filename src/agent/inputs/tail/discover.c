/* xluo-agent tail input: finding files.
 *
 * A walk expands an input's globs component by component (fnmatch on
 * readdir entries, so * ? [..] work in any directory component; ** is not
 * recursive) and hands every regular file to tfile_found. Every directory it
 * reads is watched with inotify (one watch per directory, shared by the
 * inputs through a reference count): a file event (IN_MODIFY,
 * IN_CLOSE_WRITE) queues the file for reading through the path map, a
 * directory event that can matter (a created, moved or deleted name that
 * matches a glob or is a known file, or a directory) makes the input walk
 * again at the end of the event batch, and IN_Q_OVERFLOW makes every input
 * walk. The poll timer walks too, so a missed or impossible watch (no
 * inotify, watch limit reached) only delays discovery to poll_interval. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "fingerprint.h"
#include "tail_int.h"

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_DEPTH 64

bool tail_glob_has_magic(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* ------------------------------------------------------------ watched dirs */

static struct wdir *wdir_find(struct xl_tail *t, int wd, size_t *pos)
{
    size_t lo = 0, hi = t->nwdirs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->wdirs[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < t->nwdirs && t->wdirs[lo].wd == wd ? &t->wdirs[lo] : NULL;
}

static void wdir_remove_at(struct xl_tail *t, size_t pos)
{
    xl_free(t->wdirs[pos].path);
    memmove(&t->wdirs[pos], &t->wdirs[pos + 1], (t->nwdirs - pos - 1) * sizeof(*t->wdirs));
    t->nwdirs--;
}

/* One more input holds wd (for path). -1 when out of memory. */
static int wdir_ref(struct xl_tail *t, int wd, const char *path)
{
    size_t pos;
    struct wdir *w = wdir_find(t, wd, &pos);
    char *p;

    if (w) {
        w->refs++;
        return 0;
    }
    if (!(p = xl_strdup(path)))
        return -1;
    if (xl_grow((void **)&t->wdirs, &t->capwdirs, t->nwdirs + 1, sizeof(*t->wdirs)) < 0) {
        xl_free(p);
        return -1;
    }
    memmove(&t->wdirs[pos + 1], &t->wdirs[pos], (t->nwdirs - pos) * sizeof(*t->wdirs));
    t->wdirs[pos] = (struct wdir){.wd = wd, .refs = 1, .path = p};
    t->nwdirs++;
    return 0;
}

static void wdir_unref(struct xl_tail *t, int wd)
{
    size_t pos;
    struct wdir *w = wdir_find(t, wd, &pos);

    if (!w || --w->refs > 0)
        return;
    if (t->ifd >= 0)
        inotify_rm_watch(t->ifd, wd);
    wdir_remove_at(t, pos);
}

static bool has_wd(const int *v, size_t n, int wd)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == wd)
            return true;
    return false;
}

void tinput_unwatch_all(struct tinput *in)
{
    for (size_t i = 0; i < in->nwds; i++)
        wdir_unref(in->t, in->wds[i]);
    xl_free(in->wds);
    in->wds = NULL;
    in->nwds = in->capwds = 0;
}

/* ------------------------------------------------------------ walking */

struct walker {
    struct tinput *in;
    bool initial;
    bool incomplete; /* a directory could not be read: do not conclude "gone" */
    char path[PATH_MAX];
    size_t len;
    int *wds;
    size_t nwds, capwds;
};

static void watch_here(struct walker *w)
{
    struct xl_tail *t = w->in->t;
    const char *dir = w->len ? w->path : ".";
    int wd;

    if (t->ifd < 0)
        return;
    wd = inotify_add_watch(t->ifd, dir, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOSPC && !t->watch_limit_logged) {
            t->watch_limit_logged = true;
            t->st.inotify = false;
            xl_log_warn(TAIL_MOD,
                        "inotify watch limit reached at %s (sysctl fs.inotify.max_user_watches): "
                        "directories without a watch are polled every poll_interval",
                        dir);
        }
        return;
    }
    if (has_wd(w->wds, w->nwds, wd))
        return;
    /* A directory new to this input takes a reference now; the ones it
     * held before keep theirs. */
    if (!has_wd(w->in->wds, w->in->nwds, wd) && wdir_ref(t, wd, dir) < 0)
        return;
    if (xl_grow((void **)&w->wds, &w->capwds, w->nwds + 1, sizeof(*w->wds)) < 0) {
        if (!has_wd(w->in->wds, w->in->nwds, wd))
            wdir_unref(t, wd);
        return;
    }
    w->wds[w->nwds++] = wd;
}

/* Append "/name" (or "name" at the top of a relative pattern). */
static bool push(struct walker *w, const char *name, size_t *saved)
{
    size_t n = strlen(name);
    bool slash = w->len > 0 && w->path[w->len - 1] != '/';

    *saved = w->len;
    if (w->len + slash + n + 1 > sizeof(w->path))
        return false;
    if (slash)
        w->path[w->len++] = '/';
    memcpy(w->path + w->len, name, n + 1);
    w->len += n;
    return true;
}

static void pop(struct walker *w, size_t saved)
{
    w->len = saved;
    w->path[saved] = 0;
}

static bool excluded(const struct tinput *in, const char *path, const char *base)
{
    for (size_t i = 0; i < in->exclude_paths.n; i++) {
        const char *p = in->exclude_paths.v[i];
        bool full = strchr(p, '/') != NULL;
        if (fnmatch(p, full ? path : base, full ? FNM_PATHNAME : 0) == 0)
            return true;
    }
    return false;
}

static void found(struct walker *w, const char *base, const struct stat *st)
{
    if (!S_ISREG(st->st_mode) || excluded(w->in, w->path, base))
        return;
    tfile_found(w->in, w->path, st, w->initial);
}

static void dir_error(struct walker *w, int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return;
    w->incomplete = true;
    w->in->t->st.read_errors++;
    xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s: cannot read directory %s: %s", w->in->name,
              w->len ? w->path : ".", strerror(e));
}

/* w->path is a directory; match comps[i..n) below it. */
static void walk(struct walker *w, char **comps, size_t i, size_t n)
{
    const char *comp = comps[i];
    bool leaf = i + 1 == n;
    struct stat st;
    size_t saved;
    DIR *d;
    struct dirent *de;

    if (leaf)
        watch_here(w);
    if (!tail_glob_has_magic(comp)) {
        if (!push(w, comp, &saved))
            return;
        if (stat(w->path, &st) == 0) {
            if (leaf)
                found(w, comp, &st);
            else if (S_ISDIR(st.st_mode) && i + 1 < MAX_DEPTH)
                walk(w, comps, i + 1, n);
        } else if (!leaf) {
            dir_error(w, errno);
        }
        pop(w, saved);
        return;
    }
    if (!leaf)
        watch_here(w);
    if (!(d = opendir(w->len ? w->path : "."))) {
        dir_error(w, errno);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (fnmatch(comp, de->d_name, FNM_PERIOD) != 0)
            continue;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (!leaf && de->d_type != DT_DIR && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
            continue;
        if (!push(w, de->d_name, &saved))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0) {
            if (leaf)
                found(w, de->d_name, &st);
            else if (S_ISDIR(st.st_mode) && i + 1 < MAX_DEPTH)
                walk(w, comps, i + 1, n);
        }
        pop(w, saved);
    }
    closedir(d);
}

static void walk_pattern(struct walker *w, const char *pattern)
{
    char *copy = xl_strdup(pattern), *save = NULL;
    char *comps[MAX_DEPTH];
    size_t n = 0;

    if (!copy)
        return;
    w->len = 0;
    w->path[0] = 0;
    if (pattern[0] == '/') {
        w->path[0] = '/';
        w->path[1] = 0;
        w->len = 1;
    }
    for (char *c = strtok_r(copy, "/", &save); c && n < MAX_DEPTH; c = strtok_r(NULL, "/", &save))
        if (strcmp(c, ".") != 0)
            comps[n++] = c;
    if (n > 0)
        walk(w, comps, 0, n);
    xl_free(copy);
}

/* Walk every glob of in; then files not seen are away, and the watch set is
 * replaced by the directories read this time. */
void tinput_walk(struct tinput *in, bool initial)
{
    struct xl_tail *t = in->t;
    struct walker *w = xl_calloc(1, sizeof(*w));

    if (!w || in->walking) {
        xl_free(w);
        return;
    }
    in->walking = true;
    in->rescan_pending = false;
    in->gen++;
    t->st.rescans++;
    w->in = in;
    w->initial = initial;
    for (size_t i = 0; i < in->paths.n; i++)
        walk_pattern(w, in->paths.v[i]);
    if (!w->incomplete) {
        for (struct tfile *f = in->files; f; f = f->next)
            if (!f->away && !f->forget && f->seen_gen != in->gen)
                tfile_away(f);
    }
    for (size_t i = 0; i < in->nwds; i++)
        if (!has_wd(w->wds, w->nwds, in->wds[i]))
            wdir_unref(t, in->wds[i]);
    xl_free(in->wds);
    in->wds = w->wds;
    in->nwds = w->nwds;
    in->capwds = w->capwds;
    in->walking = false;
    xl_free(w);
}

/* ------------------------------------------------------------ renames
 *
 * A file can be renamed out of the globs before any walk saw it (logrotate
 * running while the agent is busy: app.log created, written and renamed to
 * app.log.1 between two looks). The walk cannot know the file belonged to
 * the input; the MOVED_FROM/MOVED_TO pair can. Known files take their new
 * name from the pair (so that the view follows the events in order); a file
 * unknown to an input that moves from a name under its globs (or from a name
 * already tracked) to a name outside them is tracked, and opened from its
 * head at the end of the event batch if its inode is still unknown. */

static bool track_remove(struct xl_tail *t, const struct tinput *in, const char *path)
{
    bool found = false;

    for (size_t i = t->ntracks; i-- > 0;) {
        struct ttrack *k = &t->tracks[i];
        if ((in && k->in != in) || (path && strcmp(k->path, path) != 0))
            continue;
        xl_free(k->path);
        t->tracks[i] = t->tracks[--t->ntracks];
        found = true;
    }
    return found;
}

void tail_tracks_drop(struct xl_tail *t, const struct tinput *in)
{
    track_remove(t, in, NULL);
    if (!in) {
        xl_free(t->tracks);
        t->tracks = NULL;
        t->captracks = 0;
        for (size_t i = 0; i < t->nmoves; i++)
            xl_free(t->moves[i].from);
        t->nmoves = 0;
    }
}

static void track_add(struct xl_tail *t, struct tinput *in, const char *path)
{
    char *p;

    if (t->ntracks >= 256) { /* bounded: drop the oldest */
        xl_free(t->tracks[0].path);
        memmove(&t->tracks[0], &t->tracks[1], (t->ntracks - 1) * sizeof(*t->tracks));
        t->ntracks--;
    }
    if (!(p = xl_strdup(path)) ||
        xl_grow((void **)&t->tracks, &t->captracks, t->ntracks + 1, sizeof(*t->tracks)) < 0) {
        xl_free(p);
        return;
    }
    t->tracks[t->ntracks++] =
        (struct ttrack){.in = in, .path = p, .until = (int64_t)uv_now(t->loop) + TAIL_TRACK_MS};
}

static void moved(struct xl_tail *t, const char *from, const char *to)
{
    struct tfile *hit[16];
    size_t n = 0;

    for (struct tfile *f = tmap_find_path(&t->maps[MAP_PATH], from); f && n < 16;
         f = tmap_next_path(f, from))
        hit[n++] = f;
    for (size_t i = 0; i < n; i++)
        tfile_set_path(hit[i], to);
    for (struct tinput *in = t->inputs; in; in = in->next) {
        bool known = false, was_tracked = track_remove(t, in, from);
        for (size_t i = 0; i < n && !known; i++)
            known = hit[i]->in == in;
        if (known || tinput_path_matches(in, to))
            continue;
        if (was_tracked || tinput_path_matches(in, from))
            track_add(t, in, to);
    }
}

/* Open the file a track points at as an away file of its input. false:
 * keep the track (the name holds another file now: renamed on). */
static bool track_open(struct xl_tail *t, struct ttrack *k, const struct stat *st)
{
    struct stat fst;
    struct tfile *f;
    int fd = open(k->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        t->st.read_errors++;
        xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s: open %s: %s", k->in->name, k->path,
                  strerror(errno));
        return true;
    }
    if (fstat(fd, &fst) != 0 || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
        close(fd);
        return false;
    }
    if ((f = tfile_open(k->in, k->path, fd, &fst, START_HEAD, 0, 0)) != NULL) {
        f->away = true;
        t->st.rotations++;
        xl_log_info(TAIL_MOD,
                    "%s: %s was rotated away before it was read: reading it from the "
                    "head",
                    k->in->name, k->path);
    }
    return true;
}

/* After an event batch (and its walks): open the tracked files still
 * unknown; a name whose file is known (or opened now) is no longer tracked;
 * a name without a file waits for the next batch until its track expires. */
static void resolve_tracks(struct xl_tail *t)
{
    int64_t now = (int64_t)uv_now(t->loop);

    for (size_t i = t->ntracks; i-- > 0;) {
        struct ttrack *k = &t->tracks[i];
        struct stat st;
        bool done;

        if (stat(k->path, &st) != 0 || !S_ISREG(st.st_mode))
            done = now >= k->until;
        else if (tmap_find_inode(&t->maps[MAP_INODE], k->in, (uint64_t)st.st_dev,
                                 (uint64_t)st.st_ino))
            done = true;
        else
            done = track_open(t, k, &st);
        if (!done)
            continue;
        xl_free(k->path);
        t->tracks[i] = t->tracks[--t->ntracks];
    }
}

/* ------------------------------------------------------------ inotify */

static bool name_may_match(const struct tinput *in, const char *name)
{
    for (size_t i = 0; i < in->paths.n; i++) {
        const char *slash = strrchr(in->paths.v[i], '/');
        const char *last = slash ? slash + 1 : in->paths.v[i];
        if (fnmatch(last, name, FNM_PERIOD) == 0)
            return true;
    }
    return false;
}

static void rescan_holders(struct xl_tail *t, int wd, const char *name, bool isdir,
                           const char *path)
{
    for (struct tinput *in = t->inputs; in; in = in->next) {
        if (!has_wd(in->wds, in->nwds, wd) || in->rescan_pending)
            continue;
        if (!name || isdir || name_may_match(in, name)) {
            in->rescan_pending = true;
            continue;
        }
        for (struct tfile *f = tmap_find_path(&t->maps[MAP_PATH], path); f;
             f = tmap_next_path(f, path)) {
            if (f->in == in) {
                in->rescan_pending = true;
                break;
            }
        }
    }
}

/* An unknown file name was written and closed in directory dir: if it is
 * a rotation name of a file an input follows there, look for copies of
 * generations that input never saw (files.c). */
static void written_beside(struct xl_tail *t, int wd, const char *dir, const char *name)
{
    size_t dl = strlen(dir);

    for (struct tinput *in = t->inputs; in; in = in->next) {
        if (!has_wd(in->wds, in->nwds, wd))
            continue;
        for (struct tfile *f = in->files; f; f = f->next) {
            const char *base;
            if (strncmp(f->path, dir, dl) != 0 || f->path[dl] != '/')
                continue;
            base = f->path + dl + 1;
            if (strchr(base, '/') || !tail_is_rotation_name(base, name))
                continue;
            tfile_scan_generations(in, dir, base);
            break;
        }
    }
}

static void handle_event(struct xl_tail *t, const struct inotify_event *ev)
{
    char path[PATH_MAX];
    size_t pos;
    struct wdir *d;

    if (ev->mask & IN_Q_OVERFLOW) {
        xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s",
                  "inotify queue overflow: rescanning every input");
        for (struct tinput *in = t->inputs; in; in = in->next) {
            in->rescan_pending = true;
            for (struct tfile *f = in->files; f; f = f->next)
                tail_enqueue(t, f);
        }
        return;
    }
    if (!(d = wdir_find(t, ev->wd, &pos)))
        return;
    if (ev->mask & IN_IGNORED) {
        /* The directory is gone; the walk drops it from the inputs. */
        rescan_holders(t, ev->wd, NULL, true, NULL);
        for (struct tinput *in = t->inputs; in; in = in->next) {
            for (size_t i = 0; i < in->nwds; i++) {
                if (in->wds[i] == ev->wd) {
                    in->wds[i] = in->wds[--in->nwds];
                    break;
                }
            }
        }
        wdir_remove_at(t, pos);
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        rescan_holders(t, ev->wd, NULL, true, NULL);
        return;
    }
    if (!ev->len || !ev->name[0])
        return;
    snprintf(path, sizeof(path), "%s%s%s", d->path,
             d->path[0] && d->path[strlen(d->path) - 1] != '/' ? "/" : "", ev->name);
    if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) {
        struct tfile *hit[16];
        size_t n = 0;
        for (struct tfile *f = tmap_find_path(&t->maps[MAP_PATH], path); f && n < 16;
             f = tmap_next_path(f, path))
            hit[n++] = f;
        for (size_t i = 0; i < n; i++) {
            struct tfile *f = hit[i];
            struct stat st;
            if (f->forget)
                continue;
            /* The size is followed here, not when the reader gets to the
             * file: a shrink (copytruncate) is seen at once, so that the
             * copy is found before the next rotation, even when the reader
             * lags behind. */
            if (fstat(f->fd, &st) == 0) {
                if ((uint64_t)st.st_size < f->size_seen) {
                    tfile_truncated(f, "was truncated");
                    continue;
                }
                if ((uint64_t)st.st_size > f->size_seen && !f->away) {
                    /* Only a size of our content is remembered: the first
                     * bytes are checked (and the fingerprint extended to
                     * cover them) before it is. */
                    if (!tfile_fp_ok(f)) {
                        tfile_truncated(f, NULL);
                        continue;
                    }
                    f->size_seen = (uint64_t)st.st_size;
                }
            }
            f->at_eof = false;
            tail_enqueue(t, f);
        }
    }
    if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
        rescan_holders(t, ev->wd, ev->name, (ev->mask & IN_ISDIR) != 0, path);
    if ((ev->mask & IN_MOVED_FROM) && !(ev->mask & IN_ISDIR)) {
        char *from = xl_strdup(path);
        if (from) {
            if (t->nmoves == sizeof(t->moves) / sizeof(t->moves[0])) {
                xl_free(t->moves[0].from);
                memmove(&t->moves[0], &t->moves[1], (t->nmoves - 1) * sizeof(t->moves[0]));
                t->nmoves--;
            }
            t->moves[t->nmoves++] = (struct tmove){.cookie = ev->cookie, .from = from};
        }
    }
    if ((ev->mask & IN_MOVED_TO) && !(ev->mask & IN_ISDIR)) {
        for (size_t i = 0; i < t->nmoves; i++) {
            if (t->moves[i].cookie != ev->cookie)
                continue;
            moved(t, t->moves[i].from, path);
            xl_free(t->moves[i].from);
            t->moves[i] = t->moves[--t->nmoves];
            break;
        }
    }
    if ((ev->mask & IN_DELETE) && !(ev->mask & IN_ISDIR))
        track_remove(t, NULL, path);
    if ((ev->mask & IN_CLOSE_WRITE) && !tmap_find_path(&t->maps[MAP_PATH], path))
        written_beside(t, ev->wd, d->path, ev->name);
}

static void on_inotify(uv_poll_t *h, int status, int events)
{
    struct xl_tail *t = h->data;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t n = read(t->ifd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN)
                xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "inotify read: %s", strerror(errno));
            break;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            handle_event(t, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
    /* A MOVED_FROM without its MOVED_TO left the watched directories. */
    for (size_t i = 0; i < t->nmoves; i++)
        xl_free(t->moves[i].from);
    t->nmoves = 0;
    for (struct tinput *in = t->inputs; in; in = in->next)
        if (in->rescan_pending)
            tinput_walk(in, false);
    if (t->ntracks)
        resolve_tracks(t);
    tail_kick(t);
}

bool xl_tail_no_inotify;

xl_rc tail_watch_start(struct xl_tail *t)
{
    t->ifd = xl_tail_no_inotify ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (xl_tail_no_inotify) {
        xl_log_info(TAIL_MOD, "%s", "inotify off (test hook): polling");
        return XL_OK;
    }
    if (t->ifd < 0) {
        xl_log_warn(TAIL_MOD, "inotify unavailable (%s): files are found and read by polling",
                    strerror(errno));
        return XL_OK;
    }
    if (uv_poll_init(t->loop, &t->ipoll, t->ifd) != 0) {
        close(t->ifd);
        t->ifd = -1;
        xl_log_warn(TAIL_MOD, "%s", "cannot poll the inotify descriptor: polling files instead");
        return XL_OK;
    }
    t->ipoll.data = t;
    t->ipoll_on = true;
    t->handles_open++;
    t->st.inotify = true;
    uv_poll_start(&t->ipoll, UV_READABLE, on_inotify);
    return XL_OK;
}

static void on_ipoll_closed(uv_handle_t *h)
{
    struct xl_tail *t = h->data;

    close(t->ifd);
    t->ifd = -1;
    tail_handle_closed(t);
}

void tail_watch_stop(struct xl_tail *t)
{
    tail_tracks_drop(t, NULL);
    for (size_t i = 0; i < t->nwdirs; i++)
        xl_free(t->wdirs[i].path);
    xl_free(t->wdirs);
    t->wdirs = NULL;
    t->nwdirs = t->capwdirs = 0;
    if (t->ipoll_on) {
        t->ipoll_on = false;
        uv_close((uv_handle_t *)&t->ipoll, on_ipoll_closed);
    } else if (t->ifd >= 0) {
        close(t->ifd);
        t->ifd = -1;
    }
}
