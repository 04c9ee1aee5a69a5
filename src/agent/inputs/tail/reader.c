/* xluo-agent tail input: reading a file and handing over its lines.
 *
 * One buffer serves every file: a turn preads up to its size at the file's
 * read position, finds newlines with memchr and hands each complete line to
 * the filters and the sink straight from the buffer (no copy, no allocation
 * per line). The unterminated rest is not kept: the read position stays at
 * its first byte and the next pread reads it again with what follows, so a
 * file costs no memory between turns. A line longer than max_line_bytes is
 * cut into parts as soon as max_line_bytes + 1 bytes without a newline are
 * seen. With multiline on, whole lines go through the record assembler
 * (multiline.c), which copies them. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/units.h"
#include "fingerprint.h"
#include "tail_int.h"

/* Filter, then hand one line, part or record to the sink. */
/* in_buf: data lies in the read buffer given to xl_tail_filter_begin. */
static void ship(struct tfile *f, const char *data, size_t len, uint64_t off, uint64_t end,
                 uint32_t part, uint32_t parts, bool in_buf)
{
    struct tinput *in = f->in;
    struct xl_tail *t = in->t;
    struct xl_log_line l;

    l.matched = NULL;
    l.nmatched = 0;
    if (in->filter &&
        !(in_buf ? xl_tail_filter_line_in(in->filter, data, len, &l.matched, &l.nmatched)
                 : xl_tail_filter_line(in->filter, data, len, &l.matched, &l.nmatched))) {
        t->st.lines_filtered++;
        return;
    }
    l.input = in->name;
    l.path = f->path;
    l.file_uid = f->uid;
    l.offset = off;
    l.end = end;
    l.data = data;
    l.len = len;
    l.part = part;
    l.parts = parts;
    l.ts_ms = t->now_ms;
    t->sink.line(t->sink.ctx, &l);
    t->st.lines_shipped++;
    t->shipped = true;
}

static void ml_emit(void *ctx, const char *data, size_t len, uint64_t off, uint64_t end)
{
    ship(ctx, data, len, off, end, 0, 0, false);
}

void tail_ml_unlist(struct tfile *f)
{
    struct tinput *in = f->in;

    if (!f->in_ml_list)
        return;
    if (f->mlprev)
        f->mlprev->mlnext = f->mlnext;
    else
        in->ml_head = f->mlnext;
    if (f->mlnext)
        f->mlnext->mlprev = f->mlprev;
    else
        in->ml_tail = f->mlprev;
    f->mlnext = f->mlprev = NULL;
    f->in_ml_list = false;
}

/* Keep the input's list of open records ordered by last line added and its
 * timer armed while the list is not empty. */
static void ml_touch(struct tfile *f)
{
    struct tinput *in = f->in;

    tail_ml_unlist(f);
    if (!xl_tail_ml_pending(&f->ml))
        return;
    f->mlprev = in->ml_tail;
    if (in->ml_tail)
        in->ml_tail->mlnext = f;
    else
        in->ml_head = f;
    in->ml_tail = f;
    f->in_ml_list = true;
    if (!uv_is_active((uv_handle_t *)&in->ml_timer) && !in->t->stopping)
        uv_timer_start(&in->ml_timer, tail_ml_timer_cb, (uint64_t)xl_tail_ml_rule_timeout(in->ml),
                       0);
}

void tail_ml_flush(struct tfile *f)
{
    if (!xl_tail_ml_pending(&f->ml))
        return;
    f->in->t->now_ms = xl_now_ms();
    xl_tail_ml_flush(&f->ml, ml_emit, f);
    tail_ml_unlist(f);
    tfile_mark(f);
}

/* Records idle for flush_timeout are shipped; files with unread data or a
 * full sink wait (their next lines may continue the record). */
void tail_ml_timer_cb(uv_timer_t *h)
{
    struct tinput *in = h->data;
    struct xl_tail *t = in->t;
    int64_t now = (int64_t)uv_now(t->loop), ft = xl_tail_ml_rule_timeout(in->ml);
    int64_t delay = -1;
    bool skipped = false;
    struct tfile *f, *next;

    for (f = in->ml_head; f; f = next) {
        next = f->mlnext;
        if (f->ml.last_ms + ft > now) {
            delay = f->ml.last_ms + ft - now;
            break;
        }
        if (f->queued || t->paused || (t->sink.full && t->sink.full(t->sink.ctx))) {
            skipped = true;
            continue;
        }
        tail_ml_flush(f);
    }
    if (!in->ml_head || t->stopping)
        return;
    if (skipped && (delay < 0 || delay > 50))
        delay = ft < 50 ? ft : 50;
    if (delay < 1)
        delay = 1;
    uv_timer_start(&in->ml_timer, tail_ml_timer_cb, (uint64_t)delay, 0);
}

/* A part of a long line: an open multiline record ends before it. */
static void ship_part(struct tfile *f, const char *data, size_t len, uint64_t off, uint64_t end,
                      uint32_t part, uint32_t parts)
{
    if (xl_tail_ml_pending(&f->ml))
        xl_tail_ml_flush(&f->ml, ml_emit, f);
    ship(f, data, len, off, end, part, parts, true);
}

/* Hand over the complete lines (and due parts) of buf[0..n), which starts at
 * f->read_off. Returns the bytes consumed; *stop when the sink filled up. */
static size_t process(struct tfile *f, const char *buf, size_t n, bool *stop)
{
    struct tinput *in = f->in;
    struct xl_tail *t = in->t;
    const size_t max = in->max_line_bytes;
    const uint64_t base = f->read_off;
    const char *p = buf, *e = buf + n;
    const bool ml = in->ml != NULL;
    bool (*full)(void *) = t->sink.full;
    void *ctx = t->sink.ctx;
    int64_t now = ml ? (int64_t)uv_now(t->loop) : 0;
    uint64_t nlines = 0;

    if (in->filter)
        xl_tail_filter_begin(in->filter, buf, n);
    while (p < e) {
        size_t avail = (size_t)(e - p);
        const char *nl = memchr(p, '\n', avail <= max ? avail : max + 1);
        uint64_t off = base + (uint64_t)(p - buf);

        if (nl) {
            size_t len = (size_t)(nl - p);
            nlines++;
            if (f->part > 0) {
                uint32_t k = f->part + 1;
                f->part = 0;
                ship_part(f, p, len, off, off + len + 1, k, k);
            } else if (ml) {
                xl_tail_ml_add(&f->ml, in->ml, p, len, off, off + len + 1, now, ml_emit, f);
            } else {
                ship(f, p, len, off, off + len + 1, 0, 0, true);
            }
            p = nl + 1;
        } else if (avail > max) {
            /* More than max bytes and no newline: cut a part. The total is
             * known when the line's end is in the buffer. */
            const char *nl2 = memchr(p + max, '\n', avail - max);
            uint32_t total = 0;
            if (f->part == 0) {
                f->line_start = off;
                t->st.lines_split++;
            }
            f->part++;
            if (nl2)
                total = f->part - 1 + (uint32_t)(((size_t)(nl2 - p) + max - 1) / max);
            ship_part(f, p, max, off, off + max, f->part, total);
            p += max;
        } else {
            break;
        }
        if (t->shipped) {
            t->shipped = false;
            if (full && full(ctx)) {
                *stop = true;
                break;
            }
        }
    }
    t->st.lines_read += nlines;
    return (size_t)(p - buf);
}

static void read_error(struct tfile *f, int e)
{
    f->in->t->st.read_errors++;
    xl_log_rl(XL_LOG_WARN, 60, TAIL_MOD, "%s: read %s at offset %" PRIu64 ": %s (retried)",
              f->in->name, f->path, f->read_off, strerror(e));
}

/* Were the bytes just read (buf, r bytes at f->read_off) still f's
 * content? Asked after every data read: if the first bytes are still the
 * fingerprinted ones now, the data was read before any truncation, so a
 * file truncated and regrown past the read position is never read as a
 * continuation (one 1 KiB pread per read, none when reading the head,
 * which is then fingerprinted from exactly the bytes read). */
static bool head_ok(struct tfile *f, const char *buf, size_t r)
{
    if (f->read_off > 0)
        return f->fp_len == 0 || xl_tail_fp_matches(f->fd, f->fp, f->fp_len);
    if (f->fp_len > 0 && (r < f->fp_len || xl_tail_fp_hash(buf, f->fp_len) != f->fp))
        return false;
    if (f->fp_len < XL_TAIL_FP_MAX && r > f->fp_len) {
        tfile_set_fp(f, buf, r);
        tail_set_dirty(f->in->t);
    }
    return true;
}

/* Read f from its read position until EOF, the budget, or a full sink. */
enum read_status tail_read_turn(struct tfile *f, size_t budget, size_t *consumed)
{
    struct xl_tail *t = f->in->t;
    enum read_status st = READ_MORE;
    size_t total = 0;
    bool first = true;

    *consumed = 0;
    if (f->fd < 0 || f->forget)
        return READ_EOF;
    if (!f->saved)
        tail_save_now(t);
    t->now_ms = xl_now_ms();
    while (total < budget) {
        ssize_t r;
        size_t c;
        bool stop = false;

        if (t->sink.full && t->sink.full(t->sink.ctx)) {
            st = READ_PAUSED;
            break;
        }
        r = pread(f->fd, t->rbuf, t->rcap, (off_t)f->read_off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            read_error(f, errno);
            st = READ_ERROR;
            break;
        }
        if (r == 0) {
            st = READ_EOF;
            if (first) {
                /* Woken with nothing to read: shrunk? */
                tfile_check(f, false);
            }
            break;
        }
        first = false;
        if (!f->away && !head_ok(f, t->rbuf, (size_t)r)) {
            tfile_truncated(f, NULL);
            tail_enqueue(t, f);
            break;
        }
        if (f->read_off + (uint64_t)r > f->size_seen)
            f->size_seen = f->read_off + (uint64_t)r;
        c = process(f, t->rbuf, (size_t)r, &stop);
        f->read_off += c;
        total += c;
        if (stop) {
            st = READ_PAUSED;
            break;
        }
        if ((size_t)r < t->rcap) {
            st = READ_EOF;
            break;
        }
    }
    t->st.bytes_read += total;
    *consumed = total;
    if (total > 0) {
        f->last_data_ms = (int64_t)uv_now(t->loop);
        f->finished = false;
        if (f->in->ml)
            ml_touch(f);
        if (f->fp_len < XL_TAIL_FP_MAX && f->size_seen > f->fp_len && !f->away && f->read_off > 0 &&
            !tfile_fp_ok(f)) {
            tfile_truncated(f, NULL);
            return st;
        }
    }
    f->at_eof = st == READ_EOF;
    tfile_mark(f);
    return st;
}

/* f is away and idle: ship its open record and its unterminated last line
 * (end = the file's end), then wait for the commit of everything. */
void tail_read_finish(struct tfile *f)
{
    struct tinput *in = f->in;
    struct xl_tail *t = in->t;
    size_t consumed;
    ssize_t r;

    if (tail_read_turn(f, TAIL_FILE_BUDGET, &consumed) != READ_EOF || consumed > 0 || f->forget)
        return; /* more came, or the sink is full: the next poll tries again */
    r = pread(f->fd, t->rbuf, t->rcap, (off_t)f->read_off);
    if (r < 0 || memchr(t->rbuf, '\n', r > 0 ? (size_t)r : 0))
        return;
    t->now_ms = xl_now_ms();
    if (r > 0) {
        uint64_t off = f->read_off;
        if (in->filter)
            xl_tail_filter_begin(in->filter, t->rbuf, (size_t)r);
        t->st.lines_read++;
        if (f->part > 0) {
            uint32_t k = f->part + 1;
            f->part = 0;
            ship_part(f, t->rbuf, (size_t)r, off, off + (uint64_t)r, k, k);
        } else if (in->ml) {
            xl_tail_ml_add(&f->ml, in->ml, t->rbuf, (size_t)r, off, off + (uint64_t)r,
                           (int64_t)uv_now(t->loop), ml_emit, f);
        } else {
            ship(f, t->rbuf, (size_t)r, off, off + (uint64_t)r, 0, 0, true);
        }
        f->read_off += (uint64_t)r;
        t->st.bytes_read += (uint64_t)r;
    }
    if (xl_tail_ml_pending(&f->ml))
        xl_tail_ml_flush(&f->ml, ml_emit, f);
    tail_ml_unlist(f);
    f->part = 0;
    f->finished = true;
    f->final_end = f->read_off;
    tfile_mark(f);
    xl_log_debug(TAIL_MOD, "%s: %s read to its end (%" PRIu64 " bytes)", in->name, f->path,
                 f->read_off);
}

/* Make the shared buffer hold a line of max_line_bytes and its newline,
 * with room to spare so that long lines do not mean tiny reads. */
xl_rc tail_grow_buffer(struct xl_tail *t, size_t max_line_bytes, struct xl_err *err)
{
    size_t need = max_line_bytes + 1 > TAIL_READ_CHUNK / 2
                      ? max_line_bytes + 1 + TAIL_READ_CHUNK / 2
                      : TAIL_READ_CHUNK;
    char *p;

    if (need <= t->rcap)
        return XL_OK;
    if (!(p = xl_realloc(t->rbuf, need)))
        return xl_err_set(err, XL_ENOMEM, "out of memory (read buffer of %zu bytes)", need);
    t->rbuf = p;
    t->rcap = need;
    return XL_OK;
}
