/* Unit tests: batch decoding and validation (docs/protocol.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "server/ingest.h"

#define NOW 1763715000000LL
#define AID "0123456789abcdef0123456789abcdef"

static const struct xl_ingest_limits lim = {
    .max_records = 3, .max_age_ms = 86400000, .max_skew_ms = 600000};

static xl_rc decode(const char *body, struct xl_ingest_batch *b, struct xl_err *err)
{
    return xl_ingest_decode(body, strlen(body), &lim, NOW, b, err);
}

static void test_good(void **state)
{
    struct xl_ingest_batch b;
    struct xl_err err = {0};
    const char *body =
        "{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":7,\"sent\":1,\"records\":["
        "{\"type\":\"metric\",\"ts\":1763715000000,\"name\":\"a_b\",\"labels\":{\"x\":\"1\",\"y\":\"2\"},\"value\":1.5},"
        "{\"type\":\"metric\",\"ts\":1763714999000,\"name\":\"c\",\"value\":\"-Inf\"},"
        "{\"type\":\"metric\",\"ts\":1763714999000,\"name\":\"d\",\"labels\":null,\"value\":3}]}";

    assert_int_equal(decode(body, &b, &err), XL_OK);
    assert_string_equal(b.agent_id, AID);
    assert_int_equal(b.seq, 7);
    assert_int_equal(b.nmetrics, 3);
    assert_string_equal(b.metrics[0].name, "a_b");
    assert_int_equal(b.metrics[0].nlabels, 2);
    assert_string_equal(b.metrics[0].labels[1].value, "2");
    assert_true(b.metrics[0].value == 1.5);
    assert_true(isinf(b.metrics[1].value) && b.metrics[1].value < 0);
    assert_int_equal(b.metrics[1].nlabels, 0);
    assert_true(b.metrics[2].value == 3.0);
    assert_int_equal(b.metrics[1].ts_ms, 1763714999000LL);
    xl_ingest_batch_cleanup(&b);
}

/* floor: optional, 0 when absent, at most seq. */
static void test_floor(void **state)
{
    struct xl_ingest_batch b;
    struct xl_err err = {0};

    assert_int_equal(decode("{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":9,\"records\":[]}", &b,
                            &err),
                     XL_OK);
    assert_int_equal(b.floor, 0);
    xl_ingest_batch_cleanup(&b);
    assert_int_equal(decode("{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":9,\"floor\":9,"
                            "\"records\":[]}",
                            &b, &err),
                     XL_OK);
    assert_int_equal(b.seq, 9);
    assert_int_equal(b.floor, 9);
    xl_ingest_batch_cleanup(&b);
}

static void test_errors(void **state)
{
#define REC(x) "{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":1,\"records\":[" x "]}"
#define LOGH "{\"type\":\"log\",\"ts\":1763715000000,\"input\":\"app\",\"file\":\"/var/log/a\",\"file_id\":\"00000000000000ff\",\"lines\":["
#define LOG(l) LOGH "{" l "},{" l "}]}"
#define LOG1(l) LOGH "{" l "}]}"
#define M(extra) "{\"type\":\"metric\",\"ts\":1763715000000,\"name\":\"m\",\"value\":1" extra "}"
    static const struct {
        const char *body;
        xl_rc rc;
        const char *msg;
    } cases[] = {
        {"", XL_EPARSE, "body:"},
        {"{\"v\":1,", XL_EPARSE, "body:1:"},
        {"[]", XL_EPARSE, "expected a JSON object"},
        {"{\"v\":2,\"agent_id\":\"" AID "\",\"seq\":1,\"records\":[]}", XL_EPROTO, "version 2"},
        {"{\"agent_id\":\"" AID "\",\"seq\":1,\"records\":[]}", XL_EPARSE, "v: expected"},
        {"{\"v\":1,\"agent_id\":\"ABC\",\"seq\":1,\"records\":[]}", XL_EPARSE, "agent_id"},
        {"{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":-1,\"records\":[]}", XL_EPARSE, "seq"},
        {"{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":1,\"records\":{}}", XL_EPARSE, "records: expected an array"},
        {"{\"v\":1,\"v\":1}", XL_EPARSE, "duplicate"},
        {"{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":5,\"floor\":-1,\"records\":[]}", XL_EPARSE,
         "floor: expected a non-negative integer"},
        {"{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":5,\"floor\":\"3\",\"records\":[]}", XL_EPARSE,
         "floor: expected a non-negative integer"},
        {"{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":5,\"floor\":6,\"records\":[]}", XL_EPARSE,
         "floor: 6 is above seq 5"},
        {REC(M("") "," M("") "," M("") "," M("")), XL_ETOOBIG, "4 records, the limit is 3"},
        {REC("3"), XL_EINVAL, "records[0]: expected an object"},
        {REC(M("") ",{\"ts\":1763715000000}"), XL_EINVAL, "records[1].type: required"},
        {REC("{\"type\":\"trace\",\"ts\":1763715000000}"), XL_EINVAL, "unknown record type 'trace'"},
        {REC(LOG("\"o\":0,\"e\":4,\"t\":\"abc\"") "," LOG("\"o\":0,\"e\":4,\"t\":\"abc\"")),
         XL_ETOOBIG, "4 records and lines, the limit is 3"},
        {REC("{\"type\":\"log\",\"ts\":1763715000000}"), XL_EINVAL, "records[0].input"},
        {REC("{\"type\":\"log\",\"ts\":1763715000000,\"input\":\"a\",\"file\":\"/f\",\"file_id\":\"XYZ\",\"lines\":[]}"),
         XL_EINVAL, "records[0].file_id"},
        {REC(LOG1("\"o\":5,\"e\":4,\"t\":\"x\"")), XL_EINVAL, "records[0].lines[0]: expected offsets"},
        {REC(LOG1("\"o\":0,\"e\":4")), XL_EINVAL, "records[0].lines[0].t"},
        {REC(LOG1("\"o\":0,\"e\":4,\"t\":\"x\",\"p\":[3,2]")), XL_EINVAL, "records[0].lines[0].p"},
        {REC(LOG1("\"o\":0,\"e\":4,\"t\":\"x\",\"m\":[1]")), XL_EINVAL, "records[0].lines[0].m[0]"},
        {REC("{\"type\":\"metric\",\"name\":\"m\",\"value\":1}"), XL_EINVAL, "records[0].ts"},
        {REC("{\"type\":\"metric\",\"ts\":1.5,\"name\":\"m\",\"value\":1}"), XL_EINVAL, "records[0].ts"},
        {REC("{\"type\":\"metric\",\"ts\":5,\"name\":\"m\",\"value\":1}"), XL_EINVAL, "5 is outside"},
        {REC("{\"type\":\"metric\",\"ts\":1763716000000,\"name\":\"m\",\"value\":1}"), XL_EINVAL, "outside"},
        {REC("{\"type\":\"metric\",\"ts\":1763715000000,\"name\":\"m-x\",\"value\":1}"), XL_EINVAL, "records[0].name"},
        {REC("{\"type\":\"metric\",\"ts\":1763715000000,\"name\":\"m\"}"), XL_EINVAL, "records[0].value"},
        {REC("{\"type\":\"metric\",\"ts\":1763715000000,\"name\":\"m\",\"value\":true}"), XL_EINVAL, "records[0].value"},
        {REC(M(",\"labels\":[]")), XL_EINVAL, "records[0].labels: expected an object"},
        {REC(M(",\"labels\":{\"a b\":\"x\"}")), XL_EINVAL, "records[0].labels.a b"},
        {REC(M(",\"labels\":{\"a\":1}")), XL_EINVAL, "records[0].labels.a: expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xl_ingest_batch b;
        struct xl_err err = {0};
        xl_rc rc = decode(cases[i].body, &b, &err);
        if (rc != cases[i].rc || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: rc %d '%s', want rc %d '%s'", i, rc, err.msg, cases[i].rc,
                     cases[i].msg);
        assert_null(b.root);
    }
}

static void test_logs(void **state)
{
    struct xl_ingest_batch b;
    struct xl_err err = {0};
    const char *body = REC(LOGH "{\"o\":10,\"e\":20,\"t\":\"ERROR x\",\"m\":[\"ERROR\",\"re:x\"]},"
                               "{\"o\":20,\"e\":30,\"t\":\"part\",\"p\":[2,2]}]}," M(""));

    assert_int_equal(decode(body, &b, &err), XL_OK);
    assert_int_equal(b.nlogs, 2);
    assert_int_equal(b.nmetrics, 1);
    assert_string_equal(b.logs[0].input, "app");
    assert_string_equal(b.logs[0].file, "/var/log/a");
    assert_int_equal(b.logs[0].file_uid, 255);
    assert_int_equal(b.logs[0].offset, 10);
    assert_int_equal(b.logs[0].end, 20);
    assert_string_equal(b.logs[0].text, "ERROR x");
    assert_string_equal(b.logs[0].matched, "ERROR\nre:x");
    assert_string_equal(b.logs[1].matched, "");
    assert_int_equal(b.logs[1].part, 2);
    assert_int_equal(b.logs[1].parts, 2);
    xl_ingest_batch_cleanup(&b);
}

static void test_oom(void **state)
{
    const char *body = REC(M(",\"labels\":{\"a\":\"1\"}") "," M(""));

    for (long n = 0; n < 100; n++) {
        struct xl_ingest_batch b;
        struct xl_err err = {0};
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = decode(body, &b, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK) {
            assert_int_equal(b.nmetrics, 2);
            xl_ingest_batch_cleanup(&b);
            return;
        }
        assert_int_equal(rc, XL_ENOMEM);
    }
    fail_msg("still failing after 100 allocations");
}

static void test_agent_id(void **state)
{
    assert_true(xl_agent_id_valid(AID));
    assert_false(xl_agent_id_valid("0123456789ABCDEF0123456789abcdef"));
    assert_false(xl_agent_id_valid("0123"));
    assert_false(xl_agent_id_valid(AID "0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_agent_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
