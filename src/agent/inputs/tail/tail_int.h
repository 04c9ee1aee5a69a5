/* xluo-agent tail input: the structures shared by its files.
 *
 *   tail.c         public entry points, the read scheduler (uv_idle), commits,
 *                  checkpoints, reconfigure, stop
 *   files.c        one followed file: open, identity, rotation, truncation,
 *                  copytruncate recovery, finishing and forgetting
 *   discover.c     glob walking and the inotify watcher
 *   reader.c       pread into the shared buffer, line splitting, long-line
 *                  parts, handing lines to filters/multiline/sink
 *   filter.c       include/exclude keywords and PCRE2 regexes
 *   multiline.c    record assembly
 *   offsets.c      the state_dir/tail-offsets file
 *   fingerprint.c  hash of a file's first bytes
 *   tail_config.c  the config table of one inputs.tail[] item
 *
 * Nothing here is thread-safe: everything runs on the agent's loop. */
#ifndef XL_TAIL_INT_H
#define XL_TAIL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "filter.h"
#include "multiline.h"
#include "offsets.h"
#include "tail.h"

#define TAIL_MOD "tail"
/* pread size; the shared buffer is at least this and > max_line_bytes. */
#define TAIL_READ_CHUNK (256u << 10)
/* Bytes one file may consume per turn before the next file gets its turn. */
#define TAIL_FILE_BUDGET (256u << 10)
/* Bytes per loop iteration over all files, then other handles run (inotify
 * events among them: they must not wait behind a slow sink). */
#define TAIL_TURN_BUDGET (512u << 10)
/* How long a name that received a file renamed out of the globs is watched
 * for that file (ms). */
#define TAIL_TRACK_MS 30000
/* First bytes of a file kept verbatim beside its fingerprint. */
#define TAIL_HEAD_SAMPLE 256

enum tfile_map { MAP_UID, MAP_INODE, MAP_PATH, MAP_COUNT };

/* One followed file (one uid). Belongs to one input; open while it is
 * followed or, once away (renamed out of the globs, deleted, replaced), until
 * its end is committed. */
struct tfile {
    struct tinput *in;
    char *path; /* current name (after a rename: the new one, from /proc) */
    uint64_t uid;
    uint64_t dev, ino;
    int fd;
    uint64_t read_off;  /* next byte to read: start of the first unconsumed line */
    uint64_t handed;    /* last mark given to the sink */
    uint64_t committed; /* acknowledged by the server */
    uint64_t size_seen; /* size at the last fstat */
    uint64_t fp;        /* hash of the first fp_len bytes */
    uint32_t fp_len;
    uint16_t head_len; /* the first bytes themselves (up to TAIL_HEAD_SAMPLE), to */
    unsigned char head[TAIL_HEAD_SAMPLE]; /* compare with copies shorter than fp_len */
    uint32_t part;                        /* parts of the current long line already emitted */
    uint64_t line_start;                  /* offset of that line (part > 0) */
    uint64_t final_end;                   /* finished: everything up to here was handed over */
    struct xl_tail_ml ml;
    int64_t last_data_ms; /* loop time of the last new bytes (or the open) */
    uint64_t seen_gen;    /* input walk generation that last saw it */
    bool queued;          /* in the ready queue */
    bool at_eof;          /* the last read found no more data */
    bool away;            /* no longer under the input's globs */
    bool deleted;         /* unlinked (nlink 0) */
    bool finished;        /* away, idle and fully handed over: waits for commit */
    bool forget;          /* close and free at the next deferred pass */
    bool in_ml_list;
    bool saved;                    /* its uid is in the offsets file */
    struct tfile *next, *prev;     /* input's files */
    struct tfile *qnext;           /* ready queue */
    struct tfile *mlnext, *mlprev; /* input's pending multiline records, oldest first */
    struct tfile *hnext[MAP_COUNT];
};

/* Hash table of files with an intrusive chain (tfile.hnext[which]). */
struct tmap {
    struct tfile **b;
    size_t nb, n;
    enum tfile_map which;
};

/* One configured input. */
struct tinput {
    struct xl_tail *t;
    char *name;
    char where[48]; /* "inputs.tail[3]" for messages */
    struct xl_strlist paths, exclude_paths;
    bool from_head;
    size_t max_line_bytes;
    int64_t poll_interval, rotate_wait;
    struct xl_tail_filter *filter;
    struct xl_tail_ml_rule *ml; /* NULL: multiline off */
    uv_timer_t poll_timer, ml_timer;
    int handles_open;
    bool has_history;    /* the state file knew this input: unknown files are new */
    bool rescan_pending; /* a directory event asked for a walk */
    bool walking;
    uint64_t gen;
    int *wds; /* inotify watches this input holds (unique) */
    size_t nwds, capwds;
    struct tfile *files;
    struct tfile *ml_head, *ml_tail;
    struct tinput *next;
    bool removed;
    int64_t started_ms; /* wall clock: files born before are not its rotations */
};

/* A MOVED_FROM waiting for its MOVED_TO (same cookie). */
struct tmove {
    uint32_t cookie;
    char *from;
};

/* A name that holds a file renamed out of an input's globs before the input
 * ever opened it: opened (from its head) once the event batch is done. */
struct ttrack {
    struct tinput *in;
    char *path;
    int64_t until;
};

/* The fingerprint of content an input has read under a uid it no longer
 * has (restarted after a truncation, forgotten): a copy of it is not a
 * generation the input never saw. */
struct tretired {
    const struct tinput *in;
    uint64_t fp;
    uint32_t fp_len;
    uint16_t head_len;
    unsigned char head[TAIL_HEAD_SAMPLE];
};

/* A watched directory. */
struct wdir {
    int wd;
    int refs; /* inputs holding it */
    char *path;
};

struct xl_tail {
    uv_loop_t *loop;
    char *state_path, *state_tmp;
    struct xl_tail_sink sink;
    struct tinput *inputs;
    struct tmap maps[MAP_COUNT];

    struct tfile *qhead, *qtail; /* ready queue */
    uv_idle_t idle;
    bool idle_on;
    bool paused;   /* sink full */
    bool deferred; /* files to forget or inputs to rescan */
    bool shipped;  /* a line went to the sink since full() was last asked */
    bool stopping;
    int handles_open;

    uv_timer_t ckpt_timer;
    bool dirty;
    int64_t last_ckpt_ms;

    int ifd; /* inotify, -1 when unavailable */
    uv_poll_t ipoll;
    bool ipoll_on;
    bool watch_limit_logged;
    struct wdir *wdirs; /* sorted by wd */
    size_t nwdirs, capwdirs;
    struct tmove moves[16];
    size_t nmoves;
    struct ttrack *tracks;
    size_t ntracks, captracks;
    int64_t ckpt_failed_ms; /* a synchronous checkpoint failed then */
    struct {
        uint64_t dev, ino;
    } gone[256]; /* files forgotten lately (ring) */
    size_t gone_pos;
    struct tretired retired[64]; /* ring */
    size_t retired_pos;

    char *rbuf; /* shared read buffer */
    size_t rcap;
    int64_t now_ms; /* wall clock of the chunk being handed over */

    struct xl_tail_offsets saved; /* loaded at start, claimed by the first walks */
    struct xl_tail_offset *ckpt;  /* scratch for checkpoints */
    size_t ckpt_cap;

    struct xl_tail_stats st;
};

/* ---- tail.c */
void tail_enqueue(struct xl_tail *t, struct tfile *f);
void tail_kick(struct xl_tail *t); /* start the idle handle if there is work */
void tail_set_dirty(struct xl_tail *t);
/* Write the offsets file now, so that new uids are on disk before their
 * first line ships (a kill -9 must not give a file a second uid). At most
 * one failed attempt a second. */
void tail_save_now(struct xl_tail *t);
/* A handle of t (or of one of its inputs) finished closing. */
void tail_handle_closed(struct xl_tail *t);
uint64_t tail_new_uid(struct xl_tail *t);

/* ---- maps (files.c) */
void tmap_init(struct tmap *m, enum tfile_map which);
void tmap_cleanup(struct tmap *m);
int tmap_insert(struct tmap *m, struct tfile *f);
void tmap_remove(struct tmap *m, struct tfile *f);
struct tfile *tmap_find_uid(const struct tmap *m, uint64_t uid);
struct tfile *tmap_find_inode(const struct tmap *m, const struct tinput *in, uint64_t dev,
                              uint64_t ino);
/* First file with this path (any input); iterate with tmap_next_path. */
struct tfile *tmap_find_path(const struct tmap *m, const char *path);
struct tfile *tmap_next_path(const struct tfile *f, const char *path);

/* ---- files.c */
enum tfile_start { START_HEAD, START_END, START_AT };
struct tfile *tfile_open(struct tinput *in, const char *path, int fd, const struct stat *st,
                         enum tfile_start how, uint64_t at, uint64_t uid);
void tfile_forget(struct tfile *f);
void tfile_set_path(struct tfile *f, const char *path);
void tfile_check(struct tfile *f, bool fp_too);
void tfile_away(struct tfile *f);
/* why: "was truncated"...; NULL: told from the size. */
void tfile_truncated(struct tfile *f, const char *why);
bool tfile_fp_ok(struct tfile *f);
void tfile_update_fp(struct tfile *f);
/* Fingerprint f from buf, its first n bytes. */
void tfile_set_fp(struct tfile *f, const void *buf, size_t n);
/* Remember f's fingerprint as content read by its input (see tretired);
 * in NULL: forget those of an input being removed. */
void tfile_retire(struct tfile *f);
void tail_retired_drop(struct xl_tail *t, const struct tinput *in);
void tfile_idle_checks(struct tfile *f, int64_t now);
void tfile_mark(struct tfile *f);
void tfile_close_all(struct tinput *in);
/* Files found by the first walk: resume or start them (saved state). */
void tfile_found(struct tinput *in, const char *path, const struct stat *st, bool initial);
void tfile_resolve_saved(struct xl_tail *t);
/* A rotation-named file (base.1, base-20261121) was written in dir: read
 * copies made there of generations of base the input never saw. */
void tfile_scan_generations(struct tinput *in, const char *dir, const char *base);
bool tail_is_rotation_name(const char *base, const char *name);
bool tinput_path_matches(const struct tinput *in, const char *path);

/* ---- discover.c */
xl_rc tail_watch_start(struct xl_tail *t);
void tail_watch_stop(struct xl_tail *t);
/* Walk the input's globs: found files are passed to tfile_found; files of the
 * input not seen go away. initial: files present now start at `from`. */
void tinput_walk(struct tinput *in, bool initial);
void tinput_unwatch_all(struct tinput *in);
/* Forget the rename tracks of in (NULL: all). */
void tail_tracks_drop(struct xl_tail *t, const struct tinput *in);
bool tail_glob_has_magic(const char *s);

/* ---- reader.c */
enum read_status { READ_EOF, READ_MORE, READ_PAUSED, READ_ERROR };
enum read_status tail_read_turn(struct tfile *f, size_t budget, size_t *consumed);
/* Ship the pending multiline record (if any). */
void tail_ml_flush(struct tfile *f);
/* The file is finished: ship the pending record and the unterminated rest. */
void tail_read_finish(struct tfile *f);
void tail_ml_unlist(struct tfile *f);
void tail_ml_timer_cb(uv_timer_t *h);
xl_rc tail_grow_buffer(struct xl_tail *t, size_t max_line_bytes, struct xl_err *err);

#endif
