/* xluo: a write-ahead log of checksummed records in segment files: the
 * server's metric store journals appends in it (store/tsdb.c) and the agent
 * keeps its outbox in it (agent/outbox.c).
 *
 * A directory of segments NNNNNNNN.wal (decimal, increasing). Each segment
 * starts with a 16-byte header ("XLUOWAL1", le32 segment number, le32
 * CRC32C of the first 12 bytes) followed by records framed as
 *   le32 payload length | le32 CRC32C(payload) | payload.
 * What the payload means is the caller's business.
 *
 * On open every segment above `covered` (the last segment whose contents a
 * checkpoint has already stored elsewhere) is replayed in order; segments at
 * or below it are deleted. A record that is cut short, fails its CRC or that
 * the callback rejects ends its segment: the file is truncated there and the
 * dropped bytes are reported in the replay stats, never an error. Writing
 * then continues in a fresh segment.
 *
 * Not thread-safe: the caller serialises every call (tsdb.c holds its head
 * lock; the agent is one thread), except that the descriptor from xl_wal_fd() may be fdatasync'ed
 * without the lock while the caller guarantees no rotation happens. */
#ifndef XL_COMMON_WAL_H
#define XL_COMMON_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* Bytes in front of each payload (length + CRC). */
#define XL_WAL_FRAME_HDR 8
#define XL_WAL_SEG_HDR 16
/* Largest payload a record may carry. */
#define XL_WAL_MAX_RECORD ((size_t)64 << 20)

struct xl_wal;

struct xl_wal_replay_stats {
    uint64_t segments;        /* segments read */
    uint64_t records;         /* good records handed to the callback */
    uint64_t truncated_bytes; /* torn or corrupt bytes cut off */
    uint64_t truncated_segments;
    char detail[256]; /* the first cut: file, offset, reason; "" if none */
};

/* Where a record's frame starts: its segment and byte offset. */
struct xl_wal_pos {
    uint32_t seg;
    uint64_t off;
};

/* Called for each good record, in log order, with its position. Return XL_OK; XL_EPARSE marks
 * the record corrupt (the segment is cut before it, like a CRC mismatch);
 * any other code aborts the open with that error. */
typedef xl_rc (*xl_wal_record_cb)(void *ctx, const struct xl_wal_pos *pos,
                                  const uint8_t *payload, size_t len, struct xl_err *err);

/* Open the log in dir (created if missing), replay segments above covered
 * into cb, delete those at or below it, and start a new segment for writing.
 * With sync, new segments and their directory entry are fdatasync'ed.
 * st is filled (may be NULL). Errors: XL_EIO, XL_ENOMEM, or the callback's. */
xl_rc xl_wal_open(const char *dir, uint32_t covered, bool sync, xl_wal_record_cb cb, void *ctx,
                  struct xl_wal_replay_stats *st, struct xl_wal **out, struct xl_err *err);

/* Close the current segment (no sync) and free. NULL is fine. */
void xl_wal_close(struct xl_wal *w);

/* Append one record. frame points at XL_WAL_FRAME_HDR bytes of room
 * followed by the payload_len-byte payload; the header is filled in here.
 * Not synced. On error (XL_EIO, XL_ETOOBIG) nothing of the record remains
 * unless *broken is set: then the file could not be cut back and the log
 * must not be written again. */
xl_rc xl_wal_write(struct xl_wal *w, uint8_t *frame, size_t payload_len, bool *broken,
                   struct xl_err *err);

/* Where the next xl_wal_write will put its record. */
struct xl_wal_pos xl_wal_next_pos(const struct xl_wal *w);

/* Read back the payload of the record at pos (len bytes, as written) into
 * buf and check its length and CRC: XL_EPARSE if they do not match, XL_EIO
 * when the segment cannot be read. */
xl_rc xl_wal_read(const struct xl_wal *w, const struct xl_wal_pos *pos, uint8_t *buf,
                  size_t len, struct xl_err *err);

/* The current segment's descriptor, for fdatasync outside the caller's lock. */
int xl_wal_fd(const struct xl_wal *w);

/* The current segment's number. */
uint32_t xl_wal_segment(const struct xl_wal *w);

/* Bytes of records written to the current segment (header excluded). */
uint64_t xl_wal_segment_bytes(const struct xl_wal *w);

/* Bytes of all segment files on disk. */
uint64_t xl_wal_total_bytes(const struct xl_wal *w);

/* Close the current segment and start the next one (its header and
 * directory entry synced when opened with sync). The caller syncs the old
 * segment first if it needs to. On error the current segment stays in use. */
xl_rc xl_wal_rotate(struct xl_wal *w, struct xl_err *err);

/* Delete every segment numbered <= seg except the current one. */
xl_rc xl_wal_remove_upto(struct xl_wal *w, uint32_t seg, struct xl_err *err);

/* CRC32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t xl_crc32c(uint32_t crc, const void *p, size_t n);
/* The same without the CPU's CRC instruction (what other CPUs run; tests
 * compare the two). */
uint32_t xl_crc32c_portable(uint32_t crc, const void *p, size_t n);

#endif
