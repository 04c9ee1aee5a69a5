/* Unit tests: the store's write-ahead log (src/server/store/wal.c). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/wal.h"
#include "tmpdir_test_util.h"

struct rec_log {
    size_t n;
    size_t len[64];
    uint8_t data[64][128];
    int reject_at; /* -1: none */
};

static xl_rc collect(void *ctx, const struct xl_wal_pos *pos, const uint8_t *p, size_t len,
                     struct xl_err *err)
{
    struct rec_log *l = ctx;

    (void)pos;
    (void)err;
    if ((int)l->n == l->reject_at)
        return XL_EPARSE;
    assert_true(l->n < 64 && len <= 128);
    l->len[l->n] = len;
    memcpy(l->data[l->n], p, len);
    l->n++;
    return XL_OK;
}

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_wal_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdir_teardown(state);
}

/* Write records "rec-0".."rec-(n-1)" into a fresh log and close it. */
static uint32_t write_records(const char *dir, uint32_t covered, int n)
{
    struct xl_wal *w;
    struct xl_err err;
    uint8_t frame[XL_WAL_FRAME_HDR + 64];
    uint32_t seg;
    bool broken;

    assert_int_equal(xl_wal_open(dir, covered, true, collect, &(struct rec_log){.reject_at = -1},
                                 NULL, &w, &err),
                     XL_OK);
    for (int i = 0; i < n; i++) {
        int len = snprintf((char *)frame + XL_WAL_FRAME_HDR, 64, "rec-%d", i);

        assert_int_equal(xl_wal_write(w, frame, (size_t)len, &broken, &err), XL_OK);
    }
    seg = xl_wal_segment(w);
    xl_wal_close(w);
    return seg;
}

static void seg_file(const char *dir, uint32_t seg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%08u.wal", dir, seg);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(xl_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(xl_crc32c(0, "", 0), 0);
    /* Incremental equals one-shot. */
    assert_int_equal(xl_crc32c(xl_crc32c(0, "12345", 5), "6789", 4), 0xe3069283u);
    assert_int_equal(xl_crc32c_portable(0, "123456789", 9), 0xe3069283u);
    {
        uint8_t buf[1031];

        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)(i * 7 + 3);
        for (size_t off = 0; off < 9; off++)
            for (size_t n = 0; n < sizeof(buf) - off; n += 13)
                assert_int_equal(xl_crc32c(5, buf + off, n), xl_crc32c_portable(5, buf + off, n));
    }
}

static void test_replay(void **state)
{
    const char *dir = *state;
    struct xl_wal_replay_stats st;
    struct rec_log log = {.reject_at = -1};
    struct xl_wal *w;
    struct xl_err err;
    uint32_t seg;

    seg = write_records(dir, 0, 5);
    assert_int_equal(seg, 1);
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    assert_int_equal(log.n, 5);
    assert_memory_equal(log.data[3], "rec-3", 5);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.truncated_bytes, 0);
    assert_string_equal(st.detail, "");
    assert_int_equal(xl_wal_segment(w), 2);
    assert_int_equal(xl_wal_rotate(w, &err), XL_OK);
    assert_int_equal(xl_wal_segment(w), 3);
    assert_int_equal(xl_wal_remove_upto(w, 2, &err), XL_OK);
    xl_wal_close(w);
    /* Segment 1 is gone, 3 (empty) stays. */
    memset(&log, 0, sizeof(log));
    log.reject_at = -1;
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    assert_int_equal(log.n, 0);
    assert_int_equal(xl_wal_segment(w), 4);
    xl_wal_close(w);
}

static void test_covered_deleted(void **state)
{
    const char *dir = *state;
    struct rec_log log = {.reject_at = -1};
    struct xl_wal *w;
    struct xl_err err;
    char path[512];

    write_records(dir, 0, 3); /* segment 1 */
    write_records(dir, 0, 0); /* replays 1, writes nothing into 2 */
    log.n = 0;
    assert_int_equal(xl_wal_open(dir, 1, true, collect, &log, NULL, &w, &err), XL_OK);
    assert_int_equal(log.n, 0);
    xl_wal_close(w);
    seg_file(dir, 1, path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
}

/* Cut the file short at every length inside the last record: the first
 * records survive, the cut is reported, and a second open is clean. */
static void test_torn_tail(void **state)
{
    const char *dir = *state;
    struct xl_wal_replay_stats st;
    struct rec_log log;
    struct xl_wal *w;
    struct xl_err err;
    char path[512];
    struct stat sb;
    off_t full;

    write_records(dir, 0, 3);
    seg_file(dir, 1, path, sizeof(path));
    assert_int_equal(stat(path, &sb), 0);
    full = sb.st_size;
    /* Each record is 8 + 5 bytes; cut inside the third. */
    for (off_t cut = full - 1; cut > full - 13; cut -= 4) {
        assert_int_equal(truncate(path, cut), 0);
        memset(&log, 0, sizeof(log));
        log.reject_at = -1;
        assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
        xl_wal_close(w);
        assert_int_equal(log.n, 2);
        assert_int_equal(st.truncated_bytes, (uint64_t)(cut - (full - 13)));
        assert_int_equal(st.truncated_segments, 1);
        assert_non_null(strstr(st.detail, "00000001.wal"));
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_size, full - 13);
        /* Clean now. */
        memset(&log, 0, sizeof(log));
        log.reject_at = -1;
        assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
        xl_wal_close(w);
        assert_int_equal(log.n, 2);
        assert_int_equal(st.truncated_bytes, 0);
        /* Put a third record back for the next round: rewrite segment 1. */
        for (uint32_t s = 1; s < 10; s++) {
            char p2[512];

            seg_file(dir, s, p2, sizeof(p2));
            unlink(p2);
        }
        write_records(dir, 0, 3);
    }
}

static void flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_corrupt_record(void **state)
{
    const char *dir = *state;
    struct xl_wal_replay_stats st;
    struct rec_log log = {.reject_at = -1};
    struct xl_wal *w;
    struct xl_err err;
    char path[512];

    write_records(dir, 0, 4);
    seg_file(dir, 1, path, sizeof(path));
    /* Payload byte of record 2 (0-based): header 16 + 2 * 13 + 8 + 1. */
    flip(path, 16 + 2 * 13 + 9);
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    xl_wal_close(w);
    assert_int_equal(log.n, 2);
    assert_int_equal(st.truncated_bytes, 26);
    assert_non_null(strstr(st.detail, "CRC"));
}

static void test_bad_length_and_header(void **state)
{
    const char *dir = *state;
    struct xl_wal_replay_stats st;
    struct rec_log log = {.reject_at = -1};
    struct xl_wal *w;
    struct xl_err err;
    char path[512];
    int fd;

    write_records(dir, 0, 2);
    seg_file(dir, 1, path, sizeof(path));
    /* A zeroed tail (length 0) is a torn record, not an empty one. */
    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), 12);
    close(fd);
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    xl_wal_close(w);
    assert_int_equal(log.n, 2);
    assert_int_equal(st.truncated_bytes, 12);
    /* Segment 2 was created empty; break its header. */
    seg_file(dir, 2, path, sizeof(path));
    flip(path, 3);
    memset(&log, 0, sizeof(log));
    log.reject_at = -1;
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    xl_wal_close(w);
    assert_int_equal(log.n, 2);
    assert_int_equal(st.truncated_bytes, 16);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_rejected_record(void **state)
{
    const char *dir = *state;
    struct xl_wal_replay_stats st;
    struct rec_log log = {.reject_at = 1};
    struct xl_wal *w;
    struct xl_err err;

    write_records(dir, 0, 3);
    assert_int_equal(xl_wal_open(dir, 0, true, collect, &log, &st, &w, &err), XL_OK);
    xl_wal_close(w);
    assert_int_equal(log.n, 1);
    assert_int_equal(st.truncated_bytes, 26);
}

static void test_alloc_failure(void **state)
{
    const char *dir = *state;
    struct rec_log log;
    struct xl_wal *w = NULL;
    struct xl_err err;
    xl_rc rc;

    write_records(dir, 0, 3);
    for (long k = 0;; k++) {
        memset(&log, 0, sizeof(log));
        log.reject_at = -1;
        xl_alloc_fail_after(k);
        rc = xl_wal_open(dir, 0, false, collect, &log, NULL, &w, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK)
            break;
        assert_int_equal(rc, XL_ENOMEM);
        assert_null(w);
    }
    assert_int_equal(log.n, 3);
    xl_wal_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_covered_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_length_and_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
