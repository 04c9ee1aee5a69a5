/* xluo-agent: the outbox (see outbox.h). */
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/daemon.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/units.h"

#define MOD "outbox"
#define OB_HDR 24
/* A record's buffer: room for the WAL frame header, our header, the body. */
#define ROOM (XL_WAL_FRAME_HDR + OB_HDR)
#define RETRY_MS 1000
#define FLOOR_SAVE_MS 1000

struct rec {
    uint64_t seq;
    uint64_t no; /* append number in this process; 0 for records found at open */
    int64_t created_ms;
    uint32_t items, flags, len; /* len: body bytes as stored */
    struct xl_wal_pos pos;
    uint8_t *buf; /* ROOM + len bytes; NULL while the record is only on disk */
    bool on_disk, inflight, acked;
    bool cached; /* on disk, buf kept so that sending it needs no read */
    bool compressing; /* raw waits for (or is in) the compression job */
    char *raw;        /* the uncompressed body until then */
    size_t raw_len;
};

/* The one compression job on libuv's thread pool (records are compressed
 * one at a time, in order). */
struct job {
    uv_work_t req;
    uint64_t seq;
    const char *raw;
    size_t raw_len;
    uint8_t *out; /* ROOM + out_len bytes */
    size_t out_len;
    bool zstd;
    bool orphan; /* raw was left to the job to free (settled by close) */
};

struct xl_outbox {
    uv_loop_t *loop;
    struct xl_outbox_opts o;
    char *floor_path;
    struct xl_wal *wal; /* NULL in memory mode */
    bool broken;        /* a failed write could not be cut back: no more writes */
    /* Records not yet acknowledged, in seq order: q[head .. head + n). The
     * first `unwritten` of them are on disk (or were skipped, being
     * acknowledged before their turn); the rest wait in memory. */
    struct rec *q;
    size_t head, n, cap, unwritten;
    uint64_t next_no, written_no, synced_no, syncing_no;
    uint64_t last_seq;
    uint64_t mem_bytes, bytes; /* bytes: of records not acknowledged */
    uint64_t cache_bytes;      /* of cached records */
    size_t acked_n;            /* acknowledged records still in q (behind older ones) */
    uint32_t removed_upto;
    uv_fs_t fsreq;
    uv_timer_t timer;
    bool syncing, blocked, closing, timer_closed;
    uint64_t floor_saved;
    int64_t floor_saved_at;
    ZSTD_CCtx *cctx; /* used by the job only */
    struct job job;
    bool job_busy;
    size_t compressing; /* records waiting for compression */
    struct xl_outbox_stats st;
};

static void write_pending(struct xl_outbox *ob);
static struct rec *find_seq(struct xl_outbox *ob, uint64_t seq);

/* Forget a record's buffer (it stays on disk, or is done with). */
static void drop_buf(struct xl_outbox *ob, struct rec *r)
{
    if (r->cached)
        ob->cache_bytes -= r->len;
    r->cached = false;
    xl_free(r->buf);
    r->buf = NULL;
}

/* The record is done with: acknowledged, or dropped. Its memory goes; it
 * leaves the queue when everything before it has. */
static void mark_acked(struct xl_outbox *ob, struct rec *r)
{
    r->acked = true;
    ob->acked_n++;
    ob->bytes -= r->len;
    if (!r->on_disk && r->buf)
        ob->mem_bytes -= r->len;
    drop_buf(ob, r);
}

static struct rec *at(const struct xl_outbox *ob, size_t i)
{
    return &ob->q[ob->head + i];
}

static void notify(struct xl_outbox *ob)
{
    if (!ob->closing && ob->o.on_change)
        ob->o.on_change(ob->o.ctx);
}

static bool disk_mode(const struct xl_outbox *ob)
{
    return ob->wal && !ob->broken;
}

/* Room for one more record at the back. */
static xl_rc reserve(struct xl_outbox *ob)
{
    struct rec *q;
    size_t cap;

    if (ob->head + ob->n < ob->cap)
        return XL_OK;
    if (ob->head > 0 && ob->head >= ob->n) {
        memmove(ob->q, ob->q + ob->head, ob->n * sizeof(*ob->q));
        ob->head = 0;
        return XL_OK;
    }
    cap = ob->cap ? ob->cap * 2 : 64;
    if (!(q = xl_realloc(ob->q, cap * sizeof(*q))))
        return XL_ENOMEM;
    ob->q = q;
    ob->cap = cap;
    return XL_OK;
}

/* ---- the floor ---- */

uint64_t xl_outbox_floor(const struct xl_outbox *ob)
{
    return ob->n ? at(ob, 0)->seq : ob->last_seq + 1;
}

static void save_floor(struct xl_outbox *ob, bool now)
{
    uint64_t floor = xl_outbox_floor(ob);
    struct xl_err err = {0};
    char text[32];
    int64_t t = xl_mono_ms();
    int len;

    if (!ob->floor_path || floor == ob->floor_saved ||
        (!now && t - ob->floor_saved_at < FLOOR_SAVE_MS))
        return;
    len = snprintf(text, sizeof(text), "%" PRIu64 "\n", floor);
    if (xl_file_write_atomic(ob->floor_path, text, (size_t)len, 0644, &err) != XL_OK) {
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s (acknowledged batches may be sent again after a "
                                        "restart; the server drops them)",
                  err.msg);
        return;
    }
    ob->floor_saved = floor;
    ob->floor_saved_at = t;
}

/* ---- durability ---- */

static void free_all(struct xl_outbox *ob)
{
    for (size_t i = 0; i < ob->n; i++) {
        xl_free(at(ob, i)->buf);
        xl_free(at(ob, i)->raw);
    }
    xl_free(ob->q);
    xl_wal_close(ob->wal);
    ZSTD_freeCCtx(ob->cctx);
    xl_free(ob->floor_path);
    xl_free(ob);
}

static void maybe_free(struct xl_outbox *ob)
{
    if (ob->closing && ob->timer_closed && !ob->syncing && !ob->job_busy)
        free_all(ob);
}

static void start_sync(struct xl_outbox *ob);

static void on_synced(uv_fs_t *req)
{
    struct xl_outbox *ob = req->data;
    ssize_t r = req->result;

    uv_fs_req_cleanup(req);
    ob->syncing = false;
    if (ob->closing) {
        maybe_free(ob);
        return;
    }
    if (r < 0) {
        ob->st.write_errors++;
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "fdatasync of the outbox failed: %s; records wait "
                                         "for the next sync",
                  uv_strerror((int)r));
    } else if (ob->syncing_no > ob->synced_no) {
        ob->synced_no = ob->syncing_no;
        notify(ob);
    }
    write_pending(ob); /* a rotation may have waited for this sync */
    if (r >= 0)
        start_sync(ob);
}

static void start_sync(struct xl_outbox *ob)
{
    int r;

    if (ob->syncing || !ob->wal || ob->synced_no >= ob->written_no)
        return;
    ob->syncing_no = ob->written_no;
    ob->fsreq.data = ob;
    if ((r = uv_fs_fdatasync(ob->loop, &ob->fsreq, xl_wal_fd(ob->wal), on_synced)) < 0) {
        xl_log_rl(XL_LOG_ERROR, 30, MOD, "cannot start fdatasync: %s", uv_strerror(r));
        return;
    }
    ob->syncing = true;
}

/* Everything written is durable now (blocking; for rotation and close). */
static bool sync_now(struct xl_outbox *ob, struct xl_err *err)
{
    if (!ob->o.sync || ob->synced_no >= ob->written_no)
        return true;
    if (fdatasync(xl_wal_fd(ob->wal)) != 0) {
        xl_err_sys(err, XL_EIO, errno, "outbox: fdatasync");
        return false;
    }
    ob->synced_no = ob->written_no;
    return true;
}

uint64_t xl_outbox_appended(const struct xl_outbox *ob)
{
    return ob->next_no;
}

uint64_t xl_outbox_stable(const struct xl_outbox *ob)
{
    uint64_t durable = 0;
    size_t lo = 0, hi = ob->n;

    if (ob->wal)
        durable = ob->o.sync ? ob->synced_no : ob->written_no;
    /* The first record appended after `durable`: numbers grow along the
     * queue (records found at open have 0 and come first). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (at(ob, mid)->no <= durable)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < ob->n; lo++)
        if (!at(ob, lo)->acked)
            return at(ob, lo)->no - 1;
    return ob->next_no;
}

/* ---- writing ---- */

static void on_timer(uv_timer_t *t)
{
    struct xl_outbox *ob = t->data;

    ob->blocked = false;
    write_pending(ob);
    notify(ob);
}

static void write_failed(struct xl_outbox *ob, const struct xl_err *err, bool broken)
{
    ob->st.write_errors++;
    if (broken) {
        ob->broken = true;
        xl_log_error(MOD, "%s, and the partial record could not be cut off: the outbox takes no "
                          "more writes until the agent restarts (records wait in memory)",
                     err->msg);
        return;
    }
    xl_log_rl(XL_LOG_ERROR, 30, MOD, "%s: outbox full; new records wait in memory (up to %" PRIu64
                                     " bytes) and log inputs pause until a write succeeds "
                                     "(retried every second)",
              err->msg, ob->o.mem_max);
    ob->blocked = true;
    uv_timer_start(&ob->timer, on_timer, RETRY_MS, 0);
}

/* Write the records waiting in memory, in order, while there is room. */
static void write_pending(struct xl_outbox *ob)
{
    struct xl_err err = {0};
    uint64_t written = ob->written_no;
    bool broken;

    if (!disk_mode(ob) || ob->blocked || ob->closing)
        return;
    while (ob->unwritten < ob->n) {
        struct rec *r = at(ob, ob->unwritten);
        size_t plen = OB_HDR + r->len;

        if (r->acked) { /* acknowledged (or dropped) before its turn */
            ob->unwritten++;
            continue;
        }
        if (r->compressing)
            break;
        if (xl_wal_total_bytes(ob->wal) + XL_WAL_FRAME_HDR + plen > ob->o.max_size &&
            ob->unwritten > 0) {
            xl_log_rl(XL_LOG_WARN, 60, MOD, "outbox full (%" PRIu64 " bytes of max_size %" PRIu64
                                            "): log inputs pause until the server catches up",
                      xl_wal_total_bytes(ob->wal), ob->o.max_size);
            break;
        }
        if (xl_wal_segment_bytes(ob->wal) >= ob->o.segment_size && !ob->syncing) {
            /* The old segment's records must be durable before its
             * descriptor goes. */
            if (!sync_now(ob, &err) || xl_wal_rotate(ob->wal, &err) != XL_OK) {
                write_failed(ob, &err, false);
                break;
            }
        }
        r->pos = xl_wal_next_pos(ob->wal);
        if (xl_wal_write(ob->wal, r->buf, plen, &broken, &err) != XL_OK) {
            write_failed(ob, &err, broken);
            break;
        }
        r->on_disk = true;
        ob->written_no = r->no;
        ob->unwritten++;
        ob->mem_bytes -= r->len;
        /* Keep the newly written record in memory while the cache has room:
         * when the server keeps up it is sent without being read back. */
        if (!r->inflight && ob->cache_bytes + r->len <= ob->o.mem_max) {
            r->cached = true;
            ob->cache_bytes += r->len;
        } else if (!r->inflight) {
            drop_buf(ob, r);
        }
    }
    if (ob->written_no == written)
        return;
    if (ob->o.sync)
        start_sync(ob);
    else
        notify(ob);
}

/* While records waiting in memory exceed the limit, drop the oldest
 * metrics-only one; log lines are never dropped (tail pauses instead). */
static void enforce_mem(struct xl_outbox *ob)
{
    uint64_t limit = ob->wal ? ob->o.mem_max : ob->o.max_size;
    size_t i = ob->unwritten;

    while (ob->mem_bytes > limit) {
        struct rec *r = NULL;

        for (; i < ob->n; i++) {
            r = at(ob, i);
            if ((r->flags & XL_OB_DROPPABLE) && !r->inflight && !r->acked && !r->compressing)
                break;
        }
        if (i >= ob->n)
            return;
        ob->st.dropped_batches++;
        ob->st.dropped_records += r->items;
        xl_log_rl(XL_LOG_WARN, 30, MOD, "outbox full: dropping the oldest waiting metrics batch "
                                        "(%" PRIu32 " samples); see records_dropped",
                  r->items);
        mark_acked(ob, r);
    }
}

/* Give r its stored form: buf with our header, the body compressed or not. */
static void settle(struct xl_outbox *ob, struct rec *r, uint8_t *buf, size_t blen, bool zstd)
{
    uint8_t *h = buf + XL_WAL_FRAME_HDR;

    if (zstd)
        r->flags |= XL_OB_ZSTD;
    xl_put_le64(h, r->seq);
    xl_put_le64(h + 8, (uint64_t)r->created_ms);
    xl_put_le32(h + 16, r->items);
    xl_put_le32(h + 20, r->flags);
    r->buf = buf;
    r->len = (uint32_t)blen;
    ob->mem_bytes += blen;
    ob->bytes += blen;
    ob->st.raw_bytes += r->raw_len;
    ob->st.stored_bytes += blen;
    if (ob->job_busy && r->raw == ob->job.raw)
        ob->job.orphan = true; /* the job still reads it */
    else
        xl_free(r->raw);
    r->raw = NULL;
    if (r->compressing)
        ob->compressing--;
    r->compressing = false;
}

/* Compress (or copy) raw into a new record buffer; thread-safe with its
 * own cctx. NULL without memory. */
static uint8_t *pack(ZSTD_CCtx *cctx, int level, const char *raw, size_t len, size_t *blen,
                     bool *zstd)
{
    size_t cap = ROOM + (cctx ? ZSTD_compressBound(len) : len);
    uint8_t *buf = malloc(cap);

    *zstd = false;
    *blen = len;
    if (!buf)
        return NULL;
    if (cctx) {
        size_t z = ZSTD_compressCCtx(cctx, buf + ROOM, cap - ROOM, raw, len, level);

        if (!ZSTD_isError(z) && z < len) {
            uint8_t *small = realloc(buf, ROOM + z);

            *zstd = true;
            *blen = z;
            return small ? small : buf;
        }
    }
    memcpy(buf + ROOM, raw, len);
    return buf;
}

static void job_work(uv_work_t *req)
{
    struct xl_outbox *ob = req->data;
    struct job *j = &ob->job;

    j->out = pack(ob->cctx, ob->o.zstd_level, j->raw, j->raw_len, &j->out_len, &j->zstd);
}

static void start_job(struct xl_outbox *ob);

static void job_done(uv_work_t *req, int status)
{
    struct xl_outbox *ob = req->data;
    struct job *j = &ob->job;
    struct rec *r = find_seq(ob, j->seq);

    (void)status;
    ob->job_busy = false;
    if (j->orphan)
        xl_free((void *)j->raw);
    if (!r || !r->compressing || !j->out) {
        /* Settled meanwhile by close, or no memory: close copes (below). */
        free(j->out);
        if (r && r->compressing && !ob->closing)
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory compressing batch seq %" PRIu64
                                             "; retrying",
                      j->seq);
    } else {
        settle(ob, r, j->out, j->out_len, j->zstd);
    }
    if (ob->closing) {
        maybe_free(ob);
        return;
    }
    write_pending(ob);
    enforce_mem(ob);
    start_job(ob);
    notify(ob);
}

/* Compress the oldest record that waits for it, off the loop thread. */
static void start_job(struct xl_outbox *ob)
{
    if (ob->job_busy || ob->closing || !ob->compressing)
        return;
    for (size_t i = ob->unwritten; i < ob->n; i++) {
        struct rec *r = at(ob, i);

        if (!r->compressing)
            continue;
        ob->job = (struct job){.seq = r->seq, .raw = r->raw, .raw_len = r->raw_len};
        ob->job.req.data = ob;
        if (uv_queue_work(ob->loop, &ob->job.req, job_work, job_done) == 0)
            ob->job_busy = true;
        return;
    }
}

/* Settle every record still waiting for compression, here and now (close). */
static void settle_all(struct xl_outbox *ob)
{
    for (size_t i = ob->unwritten; i < ob->n && ob->compressing; i++) {
        struct rec *r = at(ob, i);
        uint8_t *buf;
        size_t blen;
        bool zstd;

        if (!r->compressing)
            continue;
        /* Not ob->cctx: the job may be using it right now. */
        buf = pack(NULL, 0, r->raw, r->raw_len, &blen, &zstd);
        if (buf) {
            settle(ob, r, buf, blen, zstd);
        } else {
            /* Lines come back at the next start (their positions did not
             * move); metrics are lost. */
            ob->st.dropped_batches++;
            ob->st.dropped_records += r->items;
            xl_log_error(MOD, "out of memory at stop: batch seq %" PRIu64 " of %" PRIu32
                              " records not kept",
                         r->seq, r->items);
        }
    }
}

xl_rc xl_outbox_append(struct xl_outbox *ob, uint64_t seq, char *body, size_t len, size_t items,
                       bool droppable, int64_t now_ms, uint64_t *no)
{
    struct rec *r;

    if (len > UINT32_MAX - ROOM || reserve(ob) != XL_OK)
        return XL_ENOMEM;
    r = &ob->q[ob->head + ob->n++];
    *r = (struct rec){.seq = seq, .no = ++ob->next_no, .created_ms = now_ms,
                      .items = (uint32_t)items, .flags = droppable ? XL_OB_DROPPABLE : 0,
                      .raw = body, .raw_len = len};
    *no = r->no;
    ob->last_seq = seq;
    if (ob->cctx) {
        /* Compressed on the thread pool: the loop goes on reading. */
        r->compressing = true;
        ob->compressing++;
        start_job(ob);
        return XL_OK;
    }
    {
        size_t blen;
        bool zstd;
        uint8_t *buf = pack(NULL, 0, body, len, &blen, &zstd);

        if (!buf) {
            ob->n--;
            ob->next_no--;
            r->raw = NULL;
            return XL_ENOMEM;
        }
        settle(ob, r, buf, blen, zstd);
    }
    write_pending(ob);
    enforce_mem(ob);
    return XL_OK;
}

/* ---- sending ---- */

/* Remove acknowledged records from the front; delete segments left with
 * none. */
static void pop_acked(struct xl_outbox *ob)
{
    struct xl_err err = {0};
    uint32_t lowest;
    bool popped = false;

    while (ob->n && at(ob, 0)->acked) {
        ob->acked_n--;
        if (ob->unwritten)
            ob->unwritten--;
        ob->head++;
        ob->n--;
        popped = true;
    }
    if (!ob->n)
        ob->head = 0;
    if (!popped || !ob->wal)
        return;
    lowest = xl_wal_segment(ob->wal);
    for (size_t i = 0; i < ob->unwritten; i++)
        if (at(ob, i)->on_disk) {
            lowest = at(ob, i)->pos.seg;
            break;
        }
    if (lowest > ob->removed_upto + 1) {
        if (xl_wal_remove_upto(ob->wal, lowest - 1, &err) != XL_OK)
            xl_log_rl(XL_LOG_WARN, 60, MOD, "%s", err.msg);
        else
            ob->removed_upto = lowest - 1;
    }
    save_floor(ob, false);
}

static struct rec *find_seq(struct xl_outbox *ob, uint64_t seq)
{
    size_t lo = 0, hi = ob->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (at(ob, mid)->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ob->n && at(ob, lo)->seq == seq ? at(ob, lo) : NULL;
}

bool xl_outbox_take(struct xl_outbox *ob, struct xl_outbox_item *it)
{
    struct xl_err err = {0};

    for (size_t i = 0; i < ob->n; i++) {
        struct rec *r = at(ob, i);

        if (r->inflight || r->acked || r->compressing)
            continue;
        if (!r->buf) {
            uint8_t *buf = xl_malloc(ROOM + r->len);

            if (!buf)
                return false;
            if (xl_wal_read(ob->wal, &r->pos, buf + XL_WAL_FRAME_HDR, OB_HDR + r->len, &err) !=
                XL_OK) {
                xl_free(buf);
                xl_log_error(MOD, "batch seq %" PRIu64 ": %s; %" PRIu32 " records lost", r->seq,
                             err.msg, r->items);
                ob->st.dropped_batches++;
                ob->st.dropped_records += r->items;
                mark_acked(ob, r);
                continue;
            }
            r->buf = buf;
        }
        if (r->cached) {
            r->cached = false;
            ob->cache_bytes -= r->len;
        }
        r->inflight = true;
        it->seq = r->seq;
        it->body = (const char *)r->buf + ROOM;
        it->len = r->len;
        it->items = r->items;
        it->zstd = (r->flags & XL_OB_ZSTD) != 0;
        return true;
    }
    pop_acked(ob);
    return false;
}

void xl_outbox_done(struct xl_outbox *ob, uint64_t seq, bool acked)
{
    struct rec *r = find_seq(ob, seq);

    if (!r || !r->inflight)
        return;
    r->inflight = false;
    if (acked) {
        mark_acked(ob, r);
        pop_acked(ob);
        write_pending(ob);
        notify(ob);
    } else if (r->on_disk) {
        drop_buf(ob, r); /* read again for the next try */
    }
}

bool xl_outbox_full(const struct xl_outbox *ob)
{
    /* Two batches waiting for compression: the reader is ahead of it. */
    if (ob->compressing >= 2)
        return true;
    if (!ob->wal)
        return ob->mem_bytes >= ob->o.max_size;
    /* Records past the written ones that are not being compressed wait
     * for room on disk. */
    return ob->blocked || ob->broken || ob->mem_bytes >= ob->o.mem_max ||
           ob->n - ob->unwritten > ob->compressing;
}

bool xl_outbox_drained(const struct xl_outbox *ob)
{
    for (size_t i = 0; i < ob->n; i++)
        if (!at(ob, i)->inflight && !at(ob, i)->acked)
            return false;
    return true;
}

bool xl_outbox_durable(const struct xl_outbox *ob)
{
    return ob->wal != NULL;
}

void xl_outbox_stats(const struct xl_outbox *ob, struct xl_outbox_stats *st)
{
    *st = ob->st;
    st->records = ob->n - ob->acked_n;
    st->bytes = ob->bytes;
    st->mem_bytes = ob->mem_bytes;
    st->oldest_ms = ob->n ? at(ob, 0)->created_ms : 0;
    st->full = xl_outbox_full(ob);
}

/* ---- open and close ---- */

/* A record found at open: skip it below the floor, else queue it again. */
static xl_rc replay_cb(void *ctx, const struct xl_wal_pos *pos, const uint8_t *p, size_t len,
                       struct xl_err *err)
{
    struct xl_outbox *ob = ctx;
    uint64_t seq;
    struct rec *r;

    if (len < OB_HDR)
        return xl_err_set(err, XL_EPARSE, "record shorter than its header");
    seq = xl_get_le64(p);
    if (seq < ob->floor_saved)
        return XL_OK;
    if (ob->n && seq <= at(ob, ob->n - 1)->seq)
        return xl_err_set(err, XL_EPARSE, "sequence number %" PRIu64 " out of order", seq);
    if (reserve(ob) != XL_OK)
        return xl_err_set(err, XL_ENOMEM, "outbox: out of memory reading the backlog");
    r = &ob->q[ob->head + ob->n++];
    *r = (struct rec){.seq = seq, .created_ms = (int64_t)xl_get_le64(p + 8),
                      .items = xl_get_le32(p + 16), .flags = xl_get_le32(p + 20),
                      .len = (uint32_t)(len - OB_HDR), .pos = *pos, .on_disk = true};
    ob->bytes += r->len;
    ob->last_seq = seq;
    return XL_OK;
}

static xl_rc open_disk(struct xl_outbox *ob, const char *dir, struct xl_err *err)
{
    struct xl_wal_replay_stats rst;
    char text[32];
    xl_rc rc;

    if ((rc = xl_mkdirs(dir, err)) != XL_OK)
        return rc;
    if (!(ob->floor_path = xl_path_join(dir, "floor")))
        return xl_err_set(err, XL_ENOMEM, "outbox: out of memory");
    rc = xl_file_read_small(ob->floor_path, text, sizeof(text), 1, err);
    if (rc == XL_OK)
        ob->floor_saved = strtoull(text, NULL, 10);
    else if (rc != XL_ENOENT)
        return rc;
    if ((rc = xl_wal_open(dir, 0, ob->o.sync, replay_cb, ob, &rst, &ob->wal, err)) !=
        XL_OK) {
        xl_err_prefix(err, "outbox %s", dir);
        return rc;
    }
    ob->unwritten = ob->n;
    ob->st.recovered_records = ob->n;
    ob->st.corrupt_bytes = rst.truncated_bytes;
    if (rst.detail[0])
        xl_log_warn(MOD, "%s; %" PRIu64 " bytes cut off in all (a torn write from a crash or "
                         "power loss; what was before it is kept)",
                    rst.detail, rst.truncated_bytes);
    if (ob->n)
        xl_log_info(MOD, "%zu batches from before the restart will be sent (seq %" PRIu64
                         "..%" PRIu64 ")",
                    ob->n, at(ob, 0)->seq, ob->last_seq);
    /* Segments holding only acknowledged records. */
    ob->removed_upto = 0;
    {
        uint32_t lowest = ob->n ? at(ob, 0)->pos.seg : xl_wal_segment(ob->wal);

        if (lowest > 1 && xl_wal_remove_upto(ob->wal, lowest - 1, err) == XL_OK)
            ob->removed_upto = lowest - 1;
    }
    return XL_OK;
}

xl_rc xl_outbox_open(uv_loop_t *loop, const struct xl_outbox_opts *o, struct xl_outbox **out,
                     struct xl_err *err)
{
    struct xl_outbox *ob = xl_calloc(1, sizeof(*ob));
    xl_rc rc;

    *out = NULL;
    if (!ob)
        return xl_err_set(err, XL_ENOMEM, "outbox: out of memory");
    ob->loop = loop;
    ob->o = *o;
    ob->o.dir = NULL; /* the caller's string: not kept */
    if (o->zstd_level && !(ob->cctx = ZSTD_createCCtx())) {
        free_all(ob);
        return xl_err_set(err, XL_ENOMEM, "outbox: out of memory");
    }
    if (o->dir) {
        if ((rc = open_disk(ob, o->dir, err)) != XL_OK) {
            free_all(ob);
            return rc;
        }
        ob->floor_saved_at = xl_mono_ms();
    }
    uv_timer_init(loop, &ob->timer);
    ob->timer.data = ob;
    *out = ob;
    return XL_OK;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct xl_outbox *ob = h->data;

    ob->timer_closed = true;
    maybe_free(ob);
}

void xl_outbox_close(struct xl_outbox *ob)
{
    struct xl_err err = {0};

    if (!ob)
        return;
    settle_all(ob);
    write_pending(ob);
    if (ob->wal && !ob->syncing && !sync_now(ob, &err))
        xl_log_error(MOD, "%s", err.msg);
    if (ob->wal && ob->syncing && ob->o.sync && fdatasync(xl_wal_fd(ob->wal)) == 0)
        ob->synced_no = ob->written_no;
    notify(ob); /* last chance to commit what is now durable */
    save_floor(ob, true);
    ob->closing = true;
    uv_timer_stop(&ob->timer);
    uv_close((uv_handle_t *)&ob->timer, on_timer_closed);
}
