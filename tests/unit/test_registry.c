/* Unit tests: the agent registry (src/server/registry.c): which batches are
 * stored, across a reopen (the ingest_seen table), from several threads at
 * once; heartbeat stats. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "server/registry.h"
#include "server/seqset.h"
#include "tmpdir_test_util.h"

#define T0 ((int64_t)1763715000000)
#define AID "0123456789abcdef0123456789abcdef"
#define BID "fedcba9876543210fedcba9876543210"

static int setup(void **state)
{
    return tmpdir_setup(state, "/tmp/xl_registry_XXXXXX");
}

static int teardown(void **state)
{
    xl_alloc_fail_after(-1);
    return tmpdir_teardown(state);
}

static const char *db_path(const char *dir)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/server.db", dir);
    return path;
}

static struct xl_registry *open_reg(const char *dir)
{
    struct xl_registry *r = NULL;
    struct xl_err err = {0};

    if (xl_registry_open(db_path(dir), 3, &r, &err) != XL_OK)
        fail_msg("open: %s", err.msg);
    return r;
}

static void register_agent(struct xl_registry *r, const char *id, const char *host)
{
    struct xl_agent_info info = {
        .id = id, .host = host, .ip = "10.0.0.1", .version = "t", .heartbeat_interval_ms = 1000};
    struct xl_err err = {0};

    if (xl_registry_register(r, &info, T0, &err) != XL_OK)
        fail_msg("register %s: %s", id, err.msg);
}

static enum xl_seq_state begin(struct xl_registry *r, const char *id, uint64_t seq, uint64_t floor)
{
    enum xl_seq_state st;

    assert_int_equal(xl_registry_batch_begin(r, id, seq, floor, T0, &st), XL_OK);
    return st;
}

/* A new batch stored: begin says new, end records it. */
static void store(struct xl_registry *r, const char *id, uint64_t seq, uint64_t floor)
{
    struct xl_err err = {0};

    assert_int_equal(begin(r, id, seq, floor), XL_SEQ_NEW);
    if (xl_registry_batch_end(r, id, seq, true, T0 + 1000, &err) != XL_OK)
        fail_msg("end %llu: %s", (unsigned long long)seq, err.msg);
}

/* The ingest_seen row of an agent as "floor|runs", straight from the file. */
static const char *row(const char *dir, const char *id)
{
    static char out[1024];
    sqlite3 *db;
    sqlite3_stmt *st;

    snprintf(out, sizeof(out), "none");
    assert_int_equal(sqlite3_open(db_path(dir), &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT floor, runs FROM ingest_seen WHERE agent_id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof(out), "%lld|%s", (long long)sqlite3_column_int64(st, 0),
                 (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void test_duplicates_across_reopen(void **state)
{
    struct xl_registry *r = open_reg(*state);
    json_t *j;

    register_agent(r, AID, "web1");
    store(r, AID, 1, 0);
    store(r, AID, 2, 0);
    store(r, AID, 5, 0);
    assert_int_equal(begin(r, AID, 2, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 5, 0), XL_SEQ_DONE);
    /* written before batch_end returned, not at the next flush */
    assert_string_equal(row(*state, AID), "3|5-5");
    /* seq 0 is never tracked */
    assert_int_equal(begin(r, AID, 0, 0), XL_SEQ_NEW);
    assert_int_equal(xl_registry_batch_end(r, AID, 0, true, T0, NULL), XL_OK);
    assert_int_equal(begin(r, AID, 0, 0), XL_SEQ_NEW);
    j = xl_registry_json(r, AID, T0 + 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "last_seq")), 5);
    assert_true(json_is_null(json_object_get(j, "stats")));
    json_decref(j);
    xl_registry_close(r);

    r = open_reg(*state);
    assert_int_equal(begin(r, AID, 1, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 2, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 5, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 3, 0), XL_SEQ_NEW); /* now busy */
    assert_int_equal(begin(r, AID, 3, 0), XL_SEQ_BUSY);
    assert_int_equal(xl_registry_batch_end(r, AID, 3, false, T0, NULL), XL_OK);
    store(r, AID, 3, 0);
    store(r, AID, 4, 0);
    assert_string_equal(row(*state, AID), "6|");
    /* re-registering keeps what was stored */
    register_agent(r, AID, "web1-renamed");
    assert_int_equal(begin(r, AID, 4, 0), XL_SEQ_DONE);
    xl_registry_close(r);
}

static void test_floor_prunes(void **state)
{
    struct xl_registry *r = open_reg(*state);

    register_agent(r, AID, "web1");
    store(r, AID, 1000, 0); /* an agent restart skipped 1..999 */
    store(r, AID, 1001, 0);
    store(r, AID, 1005, 0);
    assert_string_equal(row(*state, AID), "0|1000-1001,1005-1005");
    /* the agent promises nothing below 1003 comes again */
    assert_int_equal(begin(r, AID, 1003, 1003), XL_SEQ_NEW);
    assert_int_equal(begin(r, AID, 7, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 1002, 0), XL_SEQ_DONE);
    assert_int_equal(xl_registry_batch_end(r, AID, 1003, true, T0, NULL), XL_OK);
    assert_string_equal(row(*state, AID), "1004|1005-1005");
    store(r, AID, 1004, 1004);
    assert_string_equal(row(*state, AID), "1006|");
    /* a floor that came with a duplicate is written at the next flush */
    assert_int_equal(begin(r, AID, 1005, 1005), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 1005, 2000), XL_SEQ_DONE);
    assert_string_equal(row(*state, AID), "1006|");
    assert_int_equal(xl_registry_flush(r, NULL), XL_OK);
    assert_string_equal(row(*state, AID), "2000|");
    xl_registry_close(r);
    r = open_reg(*state);
    assert_int_equal(begin(r, AID, 1999, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 2000, 0), XL_SEQ_NEW);
    xl_registry_close(r);
}

static void test_unknown_agent_and_bad_row(void **state)
{
    struct xl_registry *r = open_reg(*state);
    enum xl_seq_state st;
    struct xl_err err = {0};
    sqlite3 *db;

    assert_int_equal(xl_registry_batch_begin(r, BID, 1, 0, T0, &st), XL_ENOENT);
    assert_int_equal(xl_registry_batch_end(r, BID, 1, true, T0, &err), XL_ENOENT);
    register_agent(r, AID, "web1");
    store(r, AID, 1, 0);
    xl_registry_close(r);
    /* a row that does not parse keeps its floor, loses its runs */
    assert_int_equal(sqlite3_open(db_path(*state), &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE ingest_seen SET floor = 10, runs = 'garbage'", NULL, NULL, NULL),
        SQLITE_OK);
    /* a row of an agent that is not registered is ignored */
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO ingest_seen VALUES ('" BID "', 5, '7-9')", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    r = open_reg(*state);
    assert_int_equal(begin(r, AID, 9, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, AID, 10, 0), XL_SEQ_NEW);
    assert_int_equal(xl_registry_batch_begin(r, BID, 8, 0, T0, &st), XL_ENOENT);
    xl_registry_close(r);
}

struct worker {
    struct xl_registry *r;
    const char *id;
    uint64_t first, n, step;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (uint64_t i = 0; i < w->n; i++) {
        uint64_t seq = w->first + i * w->step;
        enum xl_seq_state st;

        if (xl_registry_batch_begin(w->r, w->id, seq, 0, T0, &st) != XL_OK || st != XL_SEQ_NEW ||
            xl_registry_batch_end(w->r, w->id, seq, true, T0, NULL) != XL_OK)
            w->failures++;
    }
    return NULL;
}

/* Threads storing interleaved seqs of two agents: every seq is recorded
 * (grouped writes lose none), and the rows say so after a reopen. Fewer
 * seqs per agent (480) than a set keeps runs (XL_SEQSET_MAX_RUNS): however
 * far one thread lags, nothing is forgotten by the bound (a thread that
 * lags 400 seqs behind leaves one run per seq the others stored). */
static void test_concurrent_group_commit(void **state)
{
    enum { THREADS = 4, PER = 120, TOTAL = THREADS * PER };
    struct xl_registry *r = open_reg(*state);
    struct worker w[2 * THREADS];
    pthread_t th[2 * THREADS];
    char want[32];

    _Static_assert(TOTAL < XL_SEQSET_MAX_RUNS, "the bound could forget seqs");
    register_agent(r, AID, "a");
    register_agent(r, BID, "b");
    for (int i = 0; i < 2 * THREADS; i++) {
        w[i] = (struct worker){.r = r,
                               .id = i % 2 ? BID : AID,
                               .first = (uint64_t)(i / 2) + 1,
                               .n = PER,
                               .step = THREADS};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 2 * THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    snprintf(want, sizeof(want), "%d|", TOTAL + 1);
    assert_string_equal(row(*state, AID), want);
    assert_string_equal(row(*state, BID), want);
    xl_registry_close(r);
    r = open_reg(*state);
    assert_int_equal(begin(r, AID, TOTAL, 0), XL_SEQ_DONE);
    assert_int_equal(begin(r, BID, TOTAL + 1, 0), XL_SEQ_NEW);
    xl_registry_close(r);
}

struct stats_seen {
    char text[1024];
};

static void stats_cb(void *ctx, const char *id, const char *host, const json_t *stats)
{
    struct stats_seen *s = ctx;
    size_t n = strlen(s->text);

    snprintf(s->text + n, sizeof(s->text) - n, "%s:%lld;", host,
             (long long)json_integer_value(json_object_get(stats, "outbox_bytes")));
}

static void test_stats(void **state)
{
    struct xl_registry *r = open_reg(*state);
    struct stats_seen seen = {{0}};
    struct xl_err err = {0};
    json_t *st, *big, *j;
    char key[32];

    register_agent(r, AID, "web1");
    register_agent(r, BID, "db1");
    st = json_pack("{s:I, s:I, s:[{s:s, s:s, s:i}]}", "outbox_bytes", (json_int_t)4096,
                   "records_dropped", (json_int_t)3, "breakers", "server", "http://a:1", "state",
                   "open", "failures", 4);
    assert_int_equal(xl_registry_stats_check(st, &err), XL_OK);
    assert_int_equal(xl_registry_touch(r, AID, T0, 0, st), XL_OK);
    json_decref(st);
    j = xl_registry_json(r, AID, T0);
    st = json_object_get(j, "stats");
    assert_int_equal(json_integer_value(json_object_get(st, "outbox_bytes")), 4096);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(st, "breakers"), 0), "state")),
                        "open");
    json_decref(j);
    xl_registry_each_stats(r, stats_cb, &seen);
    assert_string_equal(seen.text, "web1:4096;"); /* db1 reported none */

    st = json_array();
    assert_int_equal(xl_registry_stats_check(st, &err), XL_EINVAL);
    assert_string_equal(err.msg, "stats: expected an object");
    json_decref(st);
    big = json_object();
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "key_%d", i);
        json_object_set_new(big, key, json_integer(i));
    }
    assert_int_equal(xl_registry_stats_check(big, &err), XL_ETOOBIG);
    assert_non_null(strstr(err.msg, "16384"));
    json_decref(big);
    xl_registry_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicates_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_floor_prunes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_agent_and_bad_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
