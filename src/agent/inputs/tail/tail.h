/* xluo-agent: the `tail` input: follow log files, filter lines, ship them,
 * lose nothing.
 *
 * Any number of inputs, each a set of paths/globs with its filters. Files
 * are found by inotify on the directories of the globs (polling fallback
 * when inotify is unavailable, its watch limit is hit, or its queue
 * overflows: then a full rescan, so no file is missed). A file is known by
 * device + inode plus a fingerprint of its first bytes (to tell a reused
 * inode from the same file); each file the agent has ever read gets a
 * 64-bit file_uid that stays with it across renames and restarts, and is
 * what the server deduplicates on together with the offset.
 *
 * Positions: lines are handed to the sink; the sink later calls
 * xl_tail_commit(uid, offset) once the server has acknowledged everything
 * up to offset. Only committed offsets are checkpointed (state_dir/
 * tail-offsets, written atomically), so a restart or kill -9 resumes at or
 * before the last acknowledged byte: lines may be sent again, never lost,
 * and the server drops the repeats by (agent, file_uid, offset, part).
 *
 * Rotation: rename+create (the old file is read to its end through the fd
 * still open, however long that takes), copytruncate (when the file
 * shrinks below the read position, a file beside it with the same leading
 * fingerprint is looked for and the unread part is read from it, shipped
 * under the original's uid and offsets), delete (read to the end through
 * the open fd), truncation, and files replaced while the agent was stopped
 * (different inode or fingerprint: read from the head as a new file).
 *
 * Backpressure: while sink->full() is true no file is read; reading resumes
 * where it stopped after xl_tail_resume().
 */
#ifndef XL_TAIL_H
#define XL_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/rc.h"

/* One configured input (conf/agent.yaml: inputs.tail[]). Filled by the
 * config table xl_tail_cfg_keys (tail_config.c). */
struct xl_tail_multiline_cfg {
    char *start;         /* PCRE2 regex matching the first line of a record; NULL: off */
    int64_t max_lines;   /* a record is cut after this many lines (default 500) */
    int64_t max_bytes;   /* ... or this many bytes (default 1MiB) */
    int64_t flush_timeout; /* ms: an unfinished record is shipped after this (default 2s) */
};

struct xl_tail_input_cfg {
    char *name;                   /* required, unique: names the input in records */
    struct xl_strlist paths;      /* files and globs (*, ?, [..] in the last component
                                     and in directory components) */
    struct xl_strlist exclude_paths; /* globs of files never read (e.g. *.gz) */
    char *from;                   /* "end" (default) or "head": for files present at start */
    struct xl_strlist include;    /* filters: "KEYWORD" (substring) or "re:REGEX" (PCRE2) */
    struct xl_strlist exclude;    /* same syntax; a line matching any exclude is dropped */
    struct xl_tail_multiline_cfg multiline;
    int64_t max_line_bytes;       /* longer lines are split into parts (default 64KiB) */
    int64_t poll_interval;        /* ms: rescan globs/stat files this often (default 1s)
                                     also when inotify works, as a safety net */
    int64_t rotate_wait;          /* ms: a renamed-away or deleted file read to its end is
                                     kept open this long for late writes before its
                                     unterminated last line is shipped (default 5s) */
};

extern const struct xl_cfg_key xl_tail_cfg_keys[]; /* for one list item */

/* A line (or a multiline record, or one part of a long line) to ship.
 * Everything is borrowed for the duration of the callback. */
struct xl_log_line {
    const char *input;        /* input name */
    const char *path;         /* the file's path when it was read */
    uint64_t file_uid;
    uint64_t offset;          /* byte offset of the first byte of data in the file */
    uint64_t end;             /* offset just past this line's newline (or part end) */
    const char *data;         /* without the trailing newline; may contain invalid UTF-8
                                 and, for multiline records, '\n' */
    size_t len;
    const char *const *matched; /* names (the filter text) of include filters that
                                   matched; nmatched 0 when the input has no include */
    size_t nmatched;
    uint32_t part, parts;     /* 1-based part of a split line; 0, 0 when whole.
                                 parts is 0 for all but the last part when the total is
                                 not known yet (then the last part has part == parts) */
    int64_t ts_ms;            /* when it was read (wall clock) */
};

struct xl_tail_sink {
    void (*line)(void *ctx, const struct xl_log_line *l);
    /* Everything of file uid before end has been handed over (lines shipped
     * or filtered out). The sink commits it once the lines before are acked. */
    void (*mark)(void *ctx, uint64_t file_uid, uint64_t end);
    /* True while the sink cannot take more: reading pauses. */
    bool (*full)(void *ctx);
    void *ctx;
};

struct xl_tail_stats {
    uint64_t files_open;
    uint64_t lines_read;
    uint64_t lines_shipped;   /* handed to the sink after filters */
    uint64_t bytes_read;
    uint64_t lines_split;     /* long lines cut into parts */
    uint64_t rotations;       /* renames, copytruncates and truncations seen */
    uint64_t copytruncate_recovered_bytes; /* read from a rotated copy */
    uint64_t rescans;         /* full rescans (inotify overflow, poll) */
    uint64_t lines_filtered;  /* dropped by include/exclude */
    uint64_t bytes_lost;      /* unread bytes of files truncated with no copy found */
    uint64_t read_errors;     /* open/read failures (retried at the next poll) */
    uint64_t watches;         /* directories watched with inotify */
    bool inotify;             /* false: polling only (no inotify or its watch limit hit) */
};

struct xl_tail;

/* Validate cfg (filters compile, multiline regex compiles, names unique,
 * `from` valid) and start following. Errors name the input and the filter:
 * "inputs.tail[1].include[2]: re:foo(: missing closing parenthesis at
 * offset 4". */
xl_rc xl_tail_start(uv_loop_t *loop, const char *state_dir, const struct xl_tail_input_cfg *inputs,
                    size_t n, const struct xl_tail_sink *sink, struct xl_tail **out,
                    struct xl_err *err);

/* Replace the set of inputs (reload): inputs kept by name keep their files
 * and positions; removed ones stop; new ones start (from their `from`). */
xl_rc xl_tail_reconfigure(struct xl_tail *t, const struct xl_tail_input_cfg *inputs, size_t n,
                          struct xl_err *err);

/* The server acknowledged file uid up to end: checkpoint it (written to
 * disk within a second, and at stop). A rotated-away file whose end is
 * committed is closed and forgotten. */
void xl_tail_commit(struct xl_tail *t, uint64_t file_uid, uint64_t end);

/* The sink has room again. */
void xl_tail_resume(struct xl_tail *t);

/* Write the checkpoint now (called at shutdown). */
xl_rc xl_tail_checkpoint(struct xl_tail *t, struct xl_err *err);

void xl_tail_get_stats(const struct xl_tail *t, struct xl_tail_stats *out);

/* Checkpoint, close every handle, free t once the loop has closed them. */
void xl_tail_stop(struct xl_tail *t);

/* Test hook: when true at xl_tail_start, inotify is not used, as when
 * inotify_init fails (polling only). */
extern bool xl_tail_no_inotify;

#endif
