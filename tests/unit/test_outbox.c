/* Unit tests: the agent's outbox (src/agent/outbox.c) on a real directory
 * and a real libuv loop. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zstd.h>

#include "agent/outbox.h"
#include "common/alloc.h"

struct fx {
    char dir[64];
    char obdir[96];
    uv_loop_t loop;
    struct xl_outbox *ob;
    unsigned changes;
};

static void on_change(void *ctx)
{
    ((struct fx *)ctx)->changes++;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/xl_outbox_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->obdir, sizeof(f->obdir), "%s/outbox", f->dir);
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static void ob_close(struct fx *f)
{
    xl_outbox_close(f->ob);
    f->ob = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->ob)
        ob_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void ob_open(struct fx *f, bool disk, uint64_t max_size, uint64_t mem_max, int level)
{
    struct xl_outbox_opts o = {.dir = disk ? f->obdir : NULL, .max_size = max_size,
                               .segment_size = 4096, .sync = true, .mem_max = mem_max,
                               .zstd_level = level, .on_change = on_change, .ctx = f};
    struct xl_err err = {0};

    assert_int_equal(xl_outbox_open(&f->loop, &o, &f->ob, &err), XL_OK);
}

/* A body that compresses: seq repeated. */
static size_t body_for(uint64_t seq, char *buf, size_t cap)
{
    size_t n = 0;

    while (n + 40 < cap && n < 2000)
        n += (size_t)snprintf(buf + n, cap - n, "{\"seq\":%llu,\"line\":\"hello\"},",
                              (unsigned long long)seq);
    return n;
}

static uint64_t append(struct fx *f, uint64_t seq, bool droppable)
{
    char *body = malloc(4096);
    size_t len = body_for(seq, body, 4096);
    uint64_t no = 0;

    assert_int_equal(xl_outbox_append(f->ob, seq, body, len, 3, droppable, 1000 + (int64_t)seq,
                                      &no),
                     XL_OK);
    /* Let compression (thread pool) and writes finish. */
    while (uv_run(&f->loop, UV_RUN_ONCE))
        ;
    return no;
}

/* Take the next record and check that its body is the one appended. */
static uint64_t take_check(struct fx *f)
{
    struct xl_outbox_item it;
    char want[4096], got[4096];
    size_t wlen, glen;

    assert_true(xl_outbox_take(f->ob, &it));
    wlen = body_for(it.seq, want, sizeof(want));
    if (it.zstd) {
        glen = ZSTD_decompress(got, sizeof(got), it.body, it.len);
        assert_false(ZSTD_isError(glen));
    } else {
        memcpy(got, it.body, it.len);
        glen = it.len;
    }
    assert_int_equal(glen, wlen);
    assert_memory_equal(got, want, wlen);
    assert_int_equal(it.items, 3);
    return it.seq;
}

static void run_until_stable(struct fx *f, uint64_t no)
{
    for (int i = 0; i < 1000 && xl_outbox_stable(f->ob) < no; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(xl_outbox_stable(f->ob) >= no);
}

/* Records survive a restart; those below the floor do not come back;
 * bodies round-trip through zstd. */
static void test_restart(void **state)
{
    struct fx *f = *state;
    struct xl_outbox_stats st;
    uint64_t no = 0;

    ob_open(f, true, 1 << 20, 1 << 20, 1);
    for (uint64_t seq = 10; seq < 20; seq++)
        no = append(f, seq, false);
    run_until_stable(f, no);
    assert_int_equal(xl_outbox_floor(f->ob), 10);
    /* Send three; acknowledge the first and the third. */
    assert_int_equal(take_check(f), 10);
    assert_int_equal(take_check(f), 11);
    assert_int_equal(take_check(f), 12);
    xl_outbox_done(f->ob, 12, true);
    assert_int_equal(xl_outbox_floor(f->ob), 10);
    xl_outbox_done(f->ob, 10, true);
    assert_int_equal(xl_outbox_floor(f->ob), 11);
    xl_outbox_done(f->ob, 11, false); /* back in line, first again */
    assert_int_equal(take_check(f), 11);
    xl_outbox_stats(f->ob, &st);
    assert_int_equal(st.records, 8);
    assert_true(st.stored_bytes < st.raw_bytes / 4);
    ob_close(f);

    ob_open(f, true, 1 << 20, 1 << 20, 1);
    xl_outbox_stats(f->ob, &st);
    /* From the floor on: 12 was acknowledged but is above the floor, so it
     * goes again (the server recognises it as a duplicate). */
    assert_int_equal(st.recovered_records, 9);
    assert_int_equal(st.corrupt_bytes, 0);
    assert_int_equal(xl_outbox_floor(f->ob), 11);
    for (uint64_t seq = 11; seq < 20; seq++)
        assert_int_equal(take_check(f), seq);
    assert_false(xl_outbox_take(f->ob, &(struct xl_outbox_item){0}));
    for (uint64_t seq = 11; seq < 20; seq++)
        xl_outbox_done(f->ob, seq, true);
    assert_true(xl_outbox_drained(f->ob));
    assert_int_equal(xl_outbox_floor(f->ob), 20);
    ob_close(f);

    ob_open(f, true, 1 << 20, 1 << 20, 1);
    xl_outbox_stats(f->ob, &st);
    assert_int_equal(st.records, 0);
}

/* A torn last record (power loss) is cut off and reported; what was before
 * it is kept. */
static void test_torn_tail(void **state)
{
    struct fx *f = *state;
    struct xl_outbox_stats st;
    char path[160];
    struct stat sb;
    FILE *fp;
    uint64_t no = 0;

    ob_open(f, true, 1 << 20, 1 << 20, 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        no = append(f, seq, false);
    run_until_stable(f, no);
    ob_close(f);
    snprintf(path, sizeof(path), "%s/00000001.wal", f->obdir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 10), 0);
    assert_non_null(fp = fopen(path, "ab"));
    fputs("garbage", fp);
    fclose(fp);

    ob_open(f, true, 1 << 20, 1 << 20, 0);
    xl_outbox_stats(f->ob, &st);
    assert_int_equal(st.recovered_records, 2);
    assert_true(st.corrupt_bytes > 0);
    assert_int_equal(take_check(f), 1);
    assert_int_equal(take_check(f), 2);
    assert_false(xl_outbox_take(f->ob, &(struct xl_outbox_item){0}));
}

/* A record that no longer reads back (bit rot after open) is dropped,
 * counted, and the next one is sent. */
static void test_corrupt_record(void **state)
{
    struct fx *f = *state;
    struct xl_outbox_stats st;
    char path[160];
    uint64_t no = 0;
    FILE *fp;

    ob_open(f, true, 1 << 20, 1 << 20, 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        no = append(f, seq, false);
    run_until_stable(f, no);
    ob_close(f);
    ob_open(f, true, 1 << 20, 1 << 20, 0);
    snprintf(path, sizeof(path), "%s/00000001.wal", f->obdir);
    assert_non_null(fp = fopen(path, "r+b"));
    fseek(fp, 16 + 8 + 24 + 5, SEEK_SET); /* inside the first record's body */
    fputc('#', fp);
    fclose(fp);
    assert_int_equal(take_check(f), 2);
    xl_outbox_stats(f->ob, &st);
    assert_int_equal(st.dropped_batches, 1);
    assert_int_equal(st.dropped_records, 3);
}

/* Beyond max_size records wait in memory and the outbox says full; beyond
 * mem_max the oldest metrics-only records go, counted, never log records.
 * Acknowledgements make room and the waiting records are written. */
static void test_full(void **state)
{
    struct fx *f = *state;
    struct xl_outbox_stats st;
    uint64_t no = 0, seq;

    ob_open(f, true, 6000, 4096, 0);
    for (seq = 1; seq <= 3; seq++)
        no = append(f, seq, false); /* logs: ~2 KiB each */
    assert_true(xl_outbox_full(f->ob));
    assert_true(xl_outbox_stable(f->ob) < no);
    for (; seq <= 8; seq++)
        append(f, seq, true); /* metrics */
    xl_outbox_stats(f->ob, &st);
    assert_true(st.dropped_batches >= 3);
    assert_true(st.mem_bytes <= 4096 + 2100);
    /* Acknowledge what is on disk: the log record waiting in memory goes to
     * disk and becomes stable. */
    while (xl_outbox_stable(f->ob) < no) {
        uint64_t s = take_check(f);

        xl_outbox_done(f->ob, s, true);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    run_until_stable(f, no);
    xl_outbox_stats(f->ob, &st);
    assert_true(st.dropped_records == st.dropped_batches * 3);
}

/* In memory: records are stable only once acknowledged; full at max_size. */
static void test_memory(void **state)
{
    struct fx *f = *state;
    uint64_t a, b;

    ob_open(f, false, 4096, 0, 1);
    a = append(f, 5, false);
    b = append(f, 6, false);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(xl_outbox_stable(f->ob), a - 1);
    assert_false(xl_outbox_durable(f->ob));
    assert_int_equal(take_check(f), 5);
    assert_int_equal(take_check(f), 6);
    xl_outbox_done(f->ob, 6, true);
    assert_int_equal(xl_outbox_stable(f->ob), a - 1);
    xl_outbox_done(f->ob, 5, true);
    assert_int_equal(xl_outbox_stable(f->ob), b);
    assert_int_equal(xl_outbox_floor(f->ob), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
