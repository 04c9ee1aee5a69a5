/* Unit tests: the agent's hand-encoded batches decode with the server's
 * decoder to exactly what went in (the two sides of docs/protocol.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/batch.h"
#include "common/alloc.h"
#include "common/units.h"
#include "server/ingest.h"

#define AID "0123456789abcdef0123456789abcdef"

static const struct xl_ingest_limits lim = {
    .max_records = 100000, .max_age_ms = 86400000, .max_skew_ms = 600000};

static void decode_ok(const struct xl_batch_out *o, struct xl_ingest_batch *b)
{
    struct xl_err err = {0};
    xl_rc rc = xl_ingest_decode(o->body, o->len, &lim, xl_now_ms(), b, &err);

    if (rc != XL_OK)
        fail_msg("decode: %s\n%s", err.msg, o->body);
}

static void escape(const char *in, size_t n, const char *want)
{
    struct xl_buf b;

    xl_buf_init(&b, 1 << 20);
    assert_int_equal(xl_json_escape(&b, in, n), XL_OK);
    if (strcmp(b.data ? b.data : "", want) != 0)
        fail_msg("escape: got '%s', want '%s'", b.data, want);
    xl_buf_cleanup(&b);
}

static void test_escape(void **state)
{
    escape("plain", 5, "plain");
    escape("a\"b\\c", 5, "a\\\"b\\\\c");
    escape("t\tn\nr\r", 6, "t\\tn\\nr\\r");
    escape("\x01\x1f", 2, "\\u0001\\u001f");
    escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    escape("\xff", 1, "\\\\xff");
    escape("\xc3", 1, "\\\\xc3");                 /* cut sequence */
    escape("\xc0\xaf", 2, "\\\\xc0\\\\xaf");      /* overlong */
    escape("\xed\xa0\x80", 3, "\\\\xed\\\\xa0\\\\x80"); /* surrogate */
    escape("a\0b", 3, "a\\u0000b");
    escape("", 0, "");
}

/* Byte-at-a-time reference: escapes exactly the bytes the protocol names. */
static void ref_escape(const unsigned char *s, size_t n, struct xl_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        size_t k = 0;
        if (c >= 0x80) {
            /* same validation rules as batch.c, written plainly */
            if (c >= 0xc2 && c <= 0xdf && i + 1 < n && (s[i + 1] & 0xc0) == 0x80)
                k = 2;
            else if (c >= 0xe0 && c <= 0xef && i + 2 < n && (s[i + 1] & 0xc0) == 0x80 &&
                     (s[i + 2] & 0xc0) == 0x80 && !(c == 0xe0 && s[i + 1] < 0xa0) &&
                     !(c == 0xed && s[i + 1] > 0x9f))
                k = 3;
            else if (c >= 0xf0 && c <= 0xf4 && i + 3 < n && (s[i + 1] & 0xc0) == 0x80 &&
                     (s[i + 2] & 0xc0) == 0x80 && (s[i + 3] & 0xc0) == 0x80 &&
                     !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] > 0x8f))
                k = 4;
            if (k) {
                xl_buf_add(out, s + i, k);
                i += k - 1;
            } else {
                xl_buf_printf(out, "\\\\x%02x", c);
            }
        } else if (c == '"' || c == '\\') {
            xl_buf_printf(out, "\\%c", c);
        } else if (c == '\n') {
            xl_buf_adds(out, "\\n");
        } else if (c == '\t') {
            xl_buf_adds(out, "\\t");
        } else if (c == '\r') {
            xl_buf_adds(out, "\\r");
        } else if (c == '\b') {
            xl_buf_adds(out, "\\b");
        } else if (c == '\f') {
            xl_buf_adds(out, "\\f");
        } else if (c < 0x20 || c == 0x7f) {
            xl_buf_printf(out, "\\u%04x", c);
        } else {
            xl_buf_add(out, &c, 1);
        }
    }
}

static void test_escape_matches_reference(void **state)
{
    static const unsigned char alphabet[] = "abcXYZ019 ,.:{}\"\\\n\t\x01\x1f\x7f\x80\xbf\xc3"
                                            "\xa9\xe2\x82\xac\xed\xa0\xf0\x9f\x98\xff";
    unsigned char in[64];
    uint32_t seed = 12345;

    for (int round = 0; round < 200000; round++) {
        struct xl_buf a, b;
        size_t n;
        seed = seed * 1103515245u + 12345u;
        n = (seed >> 16) % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly plain text, like real logs, so the 8-byte path runs */
            in[i] = (seed >> 16) % 4 ? (unsigned char)('a' + (seed >> 20) % 26)
                                     : alphabet[(seed >> 18) % (sizeof(alphabet) - 1)];
        }
        xl_buf_init(&a, 1 << 20);
        xl_buf_init(&b, 1 << 20);
        assert_int_equal(xl_json_escape(&a, (const char *)in, n), XL_OK);
        ref_escape(in, n, &b);
        if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
            fail_msg("round %d: '%s' != reference '%s'", round, a.data ? a.data : "",
                     b.data ? b.data : "");
        xl_buf_cleanup(&a);
        xl_buf_cleanup(&b);
    }
}

static void test_round_trip(void **state)
{
    struct xl_batch_builder bb;
    struct xl_batch_out o;
    struct xl_ingest_batch b;
    struct xl_label labels[] = {{"mode", "us\"er"}, {"dev", "sda"}};
    const char *matched[] = {"ERROR", "re:\\d+"};
    int64_t now = xl_now_ms();
    struct xl_log_line l1 = {.input = "app", .path = "/var/log/a b.log", .file_uid = 0xabc,
                             .offset = 0, .end = 12, .data = "line \xff one", .len = 10,
                             .matched = matched, .nmatched = 2, .ts_ms = now};
    struct xl_log_line l2 = l1, l3 = l1;

    l2.offset = 12;
    l2.end = 20;
    l2.data = "two\ttab";
    l2.len = 7;
    l2.nmatched = 0;
    l3.file_uid = 0xdef;
    l3.part = 1;
    l3.parts = 0;
    xl_batch_init(&bb, 1 << 20);
    assert_true(xl_batch_empty(&bb));
    assert_int_equal(xl_batch_add_metric(&bb, "node_load1", NULL, 0, 0.5, now), XL_OK);
    assert_int_equal(xl_batch_add_log(&bb, &l1), XL_OK);
    assert_int_equal(xl_batch_add_log(&bb, &l2), XL_OK); /* same record */
    assert_int_equal(xl_batch_add_log(&bb, &l3), XL_OK); /* new record */
    assert_int_equal(xl_batch_add_metric(&bb, "m", labels, 2, NAN, now), XL_OK);
    assert_int_equal(xl_batch_add_mark(&bb, 0xabc, 20), XL_OK);
    assert_int_equal(xl_batch_finish(&bb, AID, 42, 0, now, &o), XL_OK);
    assert_true(xl_batch_empty(&bb));
    assert_false(o.droppable);
    assert_int_equal(o.items, 5);
    assert_int_equal(o.nmarks, 1);
    assert_int_equal(o.marks[0].end, 20);

    decode_ok(&o, &b);
    assert_int_equal(b.seq, 42);
    assert_int_equal(b.nmetrics, 2);
    assert_int_equal(b.nlogs, 3);
    assert_string_equal(b.metrics[1].labels[0].value, "us\"er");
    assert_true(isnan(b.metrics[1].value));
    assert_string_equal(b.logs[0].text, "line \\xff one");
    assert_string_equal(b.logs[0].file, "/var/log/a b.log");
    assert_string_equal(b.logs[0].matched, "ERROR\nre:\\d+");
    assert_int_equal(b.logs[0].file_uid, 0xabc);
    assert_string_equal(b.logs[1].text, "two\ttab");
    assert_int_equal(b.logs[1].offset, 12);
    assert_int_equal(b.logs[1].end, 20);
    assert_int_equal(b.logs[2].file_uid, 0xdef);
    assert_int_equal(b.logs[2].part, 1);
    xl_ingest_batch_cleanup(&b);
    xl_batch_out_cleanup(&o);

    /* Metrics only: droppable. Marks only: no body. */
    assert_int_equal(xl_batch_add_metric(&bb, "x", NULL, 0, 1, now), XL_OK);
    assert_int_equal(xl_batch_finish(&bb, AID, 43, 0, now, &o), XL_OK);
    assert_true(o.droppable);
    decode_ok(&o, &b);
    xl_ingest_batch_cleanup(&b);
    xl_batch_out_cleanup(&o);
    assert_int_equal(xl_batch_add_mark(&bb, 1, 5), XL_OK);
    assert_int_equal(xl_batch_add_mark(&bb, 1, 9), XL_OK); /* same file: replaces */
    assert_int_equal(xl_batch_finish(&bb, AID, 0, 0, now, &o), XL_OK);
    assert_null(o.body);
    assert_int_equal(o.nmarks, 1);
    assert_int_equal(o.marks[0].end, 9);
    xl_batch_out_cleanup(&o);
    xl_batch_cleanup(&bb);
}

static void test_limit_keeps_batch_valid(void **state)
{
    struct xl_batch_builder bb;
    struct xl_batch_out o;
    struct xl_ingest_batch b;
    char big[3000];
    struct xl_log_line l = {.input = "i", .path = "/p", .file_uid = 1, .data = big,
                            .len = sizeof(big), .ts_ms = xl_now_ms()};
    int added = 0;

    memset(big, 'x', sizeof(big));
    xl_batch_init(&bb, 10000);
    for (int i = 0; i < 10; i++) {
        l.offset = (uint64_t)i * sizeof(big);
        l.end = l.offset + sizeof(big);
        if (xl_batch_add_log(&bb, &l) == XL_OK)
            added++;
        else
            break;
    }
    assert_int_equal(added, 3);
    /* The failed add left nothing half-written. */
    assert_int_equal(xl_batch_finish(&bb, AID, 1, 0, xl_now_ms(), &o), XL_OK);
    decode_ok(&o, &b);
    assert_int_equal(b.nlogs, 3);
    xl_ingest_batch_cleanup(&b);
    xl_batch_out_cleanup(&o);
    xl_batch_cleanup(&bb);
}

/* Checks and events written by the agent decode to what went in, and
 * make the batch one that is never dropped. */
static void test_checks_and_events(void **state)
{
    struct xl_batch_builder bb;
    struct xl_batch_out o;
    struct xl_ingest_batch b;
    int64_t now = xl_now_ms();
    json_t *fields = json_pack("{s:s, s:i, s:[i,i]}", "key1", "v\"1\n\xe4\xb8\xad", "n", 3,
                               "list", 1, 2);
    struct xl_check_rec c = {.name = "check_disk", .state = XL_CHECK_WARNING,
                             .output = "DISK WARNING - / 91%", .long_output = "line2\nline3",
                             .exit_code = 1, .duration_ms = 35, .interval_ms = 60000,
                             .source = "/etc/cron.d/x", .ts_ms = now};
    struct xl_check_rec bare = {.name = "pushed", .state = XL_CHECK_OK, .output = NULL,
                                .exit_code = -1, .duration_ms = -1, .interval_ms = -1,
                                .ts_ms = now};

    (void)state;
    xl_batch_init(&bb, 1 << 20);
    assert_int_equal(xl_batch_add_check(&bb, &c), XL_OK);
    assert_int_equal(xl_batch_add_event(&bb, "demo", fields, "push", now), XL_OK);
    assert_int_equal(xl_batch_add_check(&bb, &bare), XL_OK);
    assert_int_equal(xl_batch_finish(&bb, AID, 7, 1, now, &o), XL_OK);
    assert_false(o.droppable);
    assert_int_equal(o.items, 3);
    decode_ok(&o, &b);
    assert_int_equal(b.nchecks, 2);
    assert_int_equal(b.nevents, 1);
    assert_string_equal(b.checks[0].name, "check_disk");
    assert_int_equal(b.checks[0].state, XL_CHECK_WARNING);
    assert_string_equal(b.checks[0].output, "DISK WARNING - / 91%");
    assert_string_equal(b.checks[0].long_output, "line2\nline3");
    assert_string_equal(b.checks[0].source, "/etc/cron.d/x");
    assert_true(b.checks[0].has_exit_code && b.checks[0].exit_code == 1);
    assert_true(b.checks[0].has_duration && b.checks[0].duration_ms == 35);
    assert_true(b.checks[0].has_interval && b.checks[0].interval_ms == 60000);
    assert_false(b.checks[1].has_interval);
    assert_false(b.checks[1].has_exit_code);
    assert_false(b.checks[1].has_duration);
    assert_null(b.checks[1].source);
    assert_string_equal(b.events[0].name, "demo");
    assert_string_equal(b.events[0].source, "push");
    assert_true(json_equal((json_t *)b.events[0].fields, fields));
    xl_ingest_batch_cleanup(&b);
    xl_batch_out_cleanup(&o);
    xl_batch_cleanup(&bb);
    json_decref(fields);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_matches_reference),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_limit_keeps_batch_valid),
        cmocka_unit_test(test_checks_and_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
