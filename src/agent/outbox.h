/* xluo-agent: the outbox, where every batch waits until the server has
 * acknowledged it.
 *
 * On disk (the default) it is a write-ahead log (common/wal.h) in
 * data/outbox/: segment files of records framed with a length and a CRC32C.
 * A record is one protocol batch (docs/protocol.md), zstd-compressed when
 * that makes it smaller, behind a 24-byte header:
 *   le64 seq | le64 created_ms | le32 items | le32 flags
 * Records are compressed (on libuv's thread pool, so that the loop goes on
 * reading) and written in the order they are appended; with sync each write
 * is followed by an fdatasync (run on libuv's thread pool, so a slow disk
 * never stalls the loop; writes that land meanwhile share the next one).
 * A record is *stable* once it is durable (synced, or written when sync is
 * off) or acknowledged: the agent commits tail positions only up to stable
 * records (xl_outbox_stable), so a crash loses nothing that was read.
 *
 * Acknowledged records leave from the front; a segment whose records are
 * all acknowledged is deleted. outbox/floor holds the lowest sequence
 * number not yet acknowledged (rewritten at most once a second: a stale
 * floor only makes the agent resend batches the server then recognises as
 * duplicates). At open, every segment is read back: records below the floor
 * are skipped, the rest are sent again, and a torn or corrupt tail (power
 * loss) is cut off and reported with its file and offset.
 *
 * Written records also stay in memory while they fit in mem_max bytes, so
 * that when the server keeps up a batch is sent without being read back.
 *
 * Without a directory the outbox is in memory only (outbox.enabled: false):
 * the same queue, nothing written, records stable once acknowledged.
 *
 * When full (max_size on disk, or writes failing: disk full, I/O errors)
 * new records wait in memory, up to mem_max bytes; beyond that the oldest
 * waiting metrics-only records are dropped and counted. Records with log
 * lines are never dropped: the tail input pauses while xl_outbox_full()
 * says so. Writes are retried every second. */
#ifndef XL_OUTBOX_H
#define XL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/rc.h"
#include "common/wal.h"

/* Record flags (stored). */
#define XL_OB_ZSTD 1u      /* the body is a zstd frame */
#define XL_OB_DROPPABLE 2u /* metrics only: may be dropped while waiting in memory */

struct xl_outbox_opts {
    const char *dir;       /* NULL: in memory only */
    uint64_t max_size;     /* bytes of segment files (in memory: of records) */
    uint64_t segment_size; /* start a new segment file past this */
    bool sync;             /* fdatasync each write before it counts as stable */
    uint64_t mem_max;      /* records waiting in memory for the disk; also the cache */
    int zstd_level;        /* 0: store and send bodies uncompressed */
    /* Called when more records became stable, or space was freed. */
    void (*on_change)(void *ctx);
    void *ctx;
};

struct xl_outbox_stats {
    uint64_t records, bytes; /* waiting for an acknowledgement (bytes as stored) */
    int64_t oldest_ms;       /* created_ms of the oldest waiting record, 0 if none */
    uint64_t mem_bytes;      /* of those, held in memory and not on disk */
    uint64_t dropped_batches, dropped_records; /* metrics dropped while full */
    uint64_t write_errors;
    uint64_t recovered_records; /* found at open and sent again */
    uint64_t corrupt_bytes;     /* cut off at open (torn or corrupt) */
    uint64_t raw_bytes, stored_bytes; /* appended, before and after compression */
    bool full;
};

/* One record handed to the shipper: valid until xl_outbox_done(seq). */
struct xl_outbox_item {
    uint64_t seq;
    const char *body;
    size_t len;
    size_t items;
    bool zstd;
};

struct xl_outbox;

xl_rc xl_outbox_open(uv_loop_t *loop, const struct xl_outbox_opts *o, struct xl_outbox **out,
                     struct xl_err *err);
/* Sync what was written, save the floor and free; handles close when the
 * loop runs again. NULL is fine. */
void xl_outbox_close(struct xl_outbox *ob);

/* Take a finished batch body (heap; the outbox owns it from here) as
 * record seq. With compression it is compressed on libuv's thread pool,
 * one batch at a time, and written when that is done. *no is set to the
 * record's append number, for xl_outbox_stable. Fails only without memory
 * (XL_ENOMEM: nothing kept, body still the caller's). */
xl_rc xl_outbox_append(struct xl_outbox *ob, uint64_t seq, char *body, size_t len, size_t items,
                       bool droppable, int64_t now_ms, uint64_t *no);

/* How many records were appended since open (the last append number). */
uint64_t xl_outbox_appended(const struct xl_outbox *ob);

/* Records appended with a number <= this are durable or acknowledged. */
uint64_t xl_outbox_stable(const struct xl_outbox *ob);

/* The lowest seq that may still be sent (see docs/protocol.md "floor"). */
uint64_t xl_outbox_floor(const struct xl_outbox *ob);

/* The oldest record neither in flight nor acknowledged, now marked in
 * flight; false if there is none (or it cannot be read: logged, dropped). */
bool xl_outbox_take(struct xl_outbox *ob, struct xl_outbox_item *it);

/* The record in flight is acknowledged (or rejected for good) when acked,
 * else it goes back to wait for another try, ahead of newer ones. */
void xl_outbox_done(struct xl_outbox *ob, uint64_t seq, bool acked);

/* True when new log lines should wait (tail pauses). */
bool xl_outbox_full(const struct xl_outbox *ob);

/* Nothing waits to be sent (records in flight may remain). */
bool xl_outbox_drained(const struct xl_outbox *ob);

/* True when the outbox keeps records on disk. */
bool xl_outbox_durable(const struct xl_outbox *ob);

void xl_outbox_stats(const struct xl_outbox *ob, struct xl_outbox_stats *st);

#endif
