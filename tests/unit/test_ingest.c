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
#define CHK(f) "{\"type\":\"check\",\"ts\":1763715000000," f "}"
#define EVT(f) "{\"type\":\"event\",\"ts\":1763715000000," f "}"
#define NAME10 "abcdefghij"
#define NAME201 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 \
    NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 "x"
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
        /* check records */
        {REC(CHK("\"name\":\"\",\"state\":\"ok\"")), XL_EINVAL, "records[0].name: expected the check's name"},
        {REC(CHK("\"state\":\"ok\"")), XL_EINVAL, "records[0].name"},
        {REC(CHK("\"name\":\"a\\nb\",\"state\":\"ok\"")), XL_EINVAL, "printable"},
        {REC(CHK("\"name\":\"a\\u0085b\",\"state\":\"ok\"")), XL_EINVAL, "printable"},
        {REC(CHK("\"name\":\"" NAME201 "\",\"state\":\"ok\"")), XL_EINVAL, "1 to 200 bytes"},
        {REC(CHK("\"name\":\"x\"")), XL_EINVAL, "records[0].state: expected ok, warning, critical or unknown"},
        {REC(CHK("\"name\":\"x\",\"state\":\"OK\"")), XL_EINVAL, "records[0].state"},
        {REC(CHK("\"name\":\"x\",\"state\":\"down\"")), XL_EINVAL, "records[0].state"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"output\":3")), XL_EINVAL, "records[0].output: expected a string"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"long_output\":[]")), XL_EINVAL, "records[0].long_output"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"exit_code\":\"2\"")), XL_EINVAL, "records[0].exit_code: expected an integer"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"exit_code\":4294967296")), XL_EINVAL, "records[0].exit_code"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"duration_ms\":-1")), XL_EINVAL, "records[0].duration_ms"},
        {REC(CHK("\"name\":\"x\",\"state\":\"ok\",\"source\":true")), XL_EINVAL, "records[0].source"},
        /* event records */
        {REC(EVT("\"fields\":{}")), XL_EINVAL, "records[0].name: expected the event type"},
        {REC(EVT("\"name\":\"\",\"fields\":{}")), XL_EINVAL, "records[0].name"},
        {REC(EVT("\"name\":\"metric\",\"fields\":{}")), XL_EINVAL, "records[0].name"},
        {REC(EVT("\"name\":\"job_run\",\"fields\":{}")), XL_EINVAL, "records[0].name"},
        {REC(EVT("\"name\":\"a/b\",\"fields\":{}")), XL_EINVAL, "records[0].name"},
        {REC(EVT("\"name\":\"x\"")), XL_EINVAL, "records[0].fields: expected an object"},
        {REC(EVT("\"name\":\"x\",\"fields\":[1]")), XL_EINVAL, "records[0].fields: expected an object"},
        {REC(EVT("\"name\":\"x\",\"fields\":{},\"source\":1")), XL_EINVAL, "records[0].source"},
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

static void test_checks_events(void **state)
{
    struct xl_ingest_batch b;
    struct xl_err err = {0};
    const char *body = REC(
        CHK("\"name\":\"disk_root\",\"state\":\"warning\",\"output\":\"DISK WARNING\","
            "\"long_output\":\"l2\",\"exit_code\":1,\"duration_ms\":35,"
            "\"source\":\"conf/cron.d/check_disk\"") ","
        EVT("\"name\":\"demo\",\"fields\":{\"key1\":\"value1\",\"n\":3},"
            "\"source\":\"conf/cron.d/demo_cron.py\"") ","
        CHK("\"name\":\"caf\u00e9 \u2713\",\"state\":\"unknown\""));

    assert_int_equal(decode(body, &b, &err), XL_OK);
    assert_int_equal(b.nchecks, 2);
    assert_int_equal(b.nevents, 1);
    assert_int_equal(b.nmetrics, 0);
    assert_string_equal(b.checks[0].name, "disk_root");
    assert_int_equal(b.checks[0].state, XL_CHECK_WARNING);
    assert_string_equal(b.checks[0].output, "DISK WARNING");
    assert_string_equal(b.checks[0].long_output, "l2");
    assert_true(b.checks[0].has_exit_code && b.checks[0].exit_code == 1);
    assert_true(b.checks[0].has_duration && b.checks[0].duration_ms == 35);
    assert_string_equal(b.checks[0].source, "conf/cron.d/check_disk");
    assert_int_equal(b.checks[0].ts_ms, 1763715000000LL);
    /* Optional fields absent: output "", the rest unset. */
    assert_string_equal(b.checks[1].name, "caf\u00e9 \u2713");
    assert_int_equal(b.checks[1].state, XL_CHECK_UNKNOWN);
    assert_string_equal(b.checks[1].output, "");
    assert_null(b.checks[1].long_output);
    assert_null(b.checks[1].source);
    assert_false(b.checks[1].has_exit_code || b.checks[1].has_duration);
    assert_string_equal(b.events[0].name, "demo");
    assert_int_equal(b.events[0].idx, 1);
    assert_true(json_is_object(b.events[0].fields));
    assert_int_equal(json_integer_value(json_object_get(b.events[0].fields, "n")), 3);
    assert_string_equal(b.events[0].source, "conf/cron.d/demo_cron.py");
    xl_ingest_batch_cleanup(&b);
}

/* fields: at most 64 KiB as compact JSON (spaces in the body do not count). */
static void test_event_fields_limit(void **state)
{
    static char body[80 << 10];
    struct xl_ingest_batch b;
    struct xl_err err = {0};
    char pad[(64 << 10) - 8 + 1]; /* {"p":"...."}: 8 bytes + the padding, exactly 64 KiB */
    const char *head = "{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":1,\"records\":[{\"type\":"
                       "\"event\",\"ts\":1763715000000,\"name\":\"e\",\"fields\":{  \"p\" :  \"";

    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(body, sizeof(body), "%s%s\"}}]}", head, pad);
    assert_int_equal(decode(body, &b, &err), XL_OK);
    xl_ingest_batch_cleanup(&b);
    snprintf(body, sizeof(body), "%s%sy\"}}]}", head, pad);
    assert_int_equal(decode(body, &b, &err), XL_EINVAL);
    assert_non_null(strstr(err.msg, "records[0].fields: more than 65536 bytes"));
}

/* max_records counts check and event records like the others. */
static void test_records_limit(void **state)
{
    struct xl_ingest_batch b;
    struct xl_err err = {0};
    const char *c = CHK("\"name\":\"x\",\"state\":\"ok\"");
    const char *e = EVT("\"name\":\"x\",\"fields\":{}");
    char body[2048];

    snprintf(body, sizeof(body), "{\"v\":1,\"agent_id\":\"" AID "\",\"seq\":1,\"records\":[%s,%s,%s,%s]}",
             c, e, c, e);
    assert_int_equal(decode(body, &b, &err), XL_ETOOBIG);
    assert_non_null(strstr(err.msg, "4 records, the limit is 3"));
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
        cmocka_unit_test(test_checks_events),
        cmocka_unit_test(test_event_fields_limit),
        cmocka_unit_test(test_records_limit),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_agent_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
