/* Unit tests: label selectors (src/server/rules/matcher.c): both syntaxes,
 * every operator, quoting and escapes, missing labels, anchored regexes,
 * and parse errors with their byte offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "server/rules/matcher.h"

static const struct xl_label web1[] = {
    {"host", "web1"}, {"role", "web"}, {"path", "/var/log/app.log"}, {"env", "prod"}};
static const struct xl_label db1[] = {{"host", "db1"}, {"role", "db"}, {"env", "dev"}};

struct mcase {
    const char *sel;
    bool web1, db1;
};

static void test_match_table(void **state)
{
    static const struct mcase cases[] = {
        {"{}", true, true},
        {"", true, true},
        {"  { }  ", true, true},
        {"{host=\"web1\"}", true, false},
        {"{host='web1'}", true, false},
        {"{host=`web1`}", true, false},
        {"{role!=\"db\"}", true, false},
        {"{path=~\"/var/log/.*\"}", true, false},
        {"{env!~\"dev|test\"}", true, false},
        {"{env=~\"dev|test\"}", false, true},
        {"{host=\"web1\", role!=\"db\", path=~\"/var/log/.*\", env!~\"dev|test\"}", true, false},
        {"{host=\"web1\",}", true, false},
        /* Anchored at both ends, like Prometheus. */
        {"{host=~\"web\"}", false, false},
        {"{host=~\"web.*\"}", true, false},
        {"{host=~\".*1\"}", true, true},
        {"{host=~\"eb1\"}", false, false},
        /* A missing label is "". */
        {"{path=\"\"}", false, true},
        {"{path!=\"\"}", true, false},
        {"{path=~\".*\"}", true, true},
        {"{nosuch!=\"x\"}", true, true},
        {"{nosuch=\"x\"}", false, false},
        /* Bare form. */
        {"host=web1", true, false},
        {"host = web1 , role!=db", true, false},
        {"role=~w.*", true, false},
        {"env!~dev|test", true, false},
        {"host=\"db1\"", false, true},
        {"host=", false, false},
        /* Several matchers on one label. */
        {"{host=~\".*1\", host!=\"db1\"}", true, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct xl_selector *s = NULL;
        struct xl_err err;

        if (xl_selector_parse(cases[i].sel, &s, &err) != XL_OK)
            fail_msg("%s: %s", cases[i].sel, err.msg);
        if (xl_selector_match(s, web1, 4) != cases[i].web1 ||
            xl_selector_match(s, db1, 3) != cases[i].db1)
            fail_msg("case %zu %s: want web1=%d db1=%d", i, cases[i].sel, cases[i].web1,
                     cases[i].db1);
        xl_selector_free(s);
    }
    assert_true(xl_selector_match(NULL, web1, 4));
}

static void test_escapes(void **state)
{
    struct xl_selector *s;
    struct xl_err err;
    const struct xl_label l[] = {{"msg", "a\"b\\c\nd"}, {"re", "x.y"}};

    (void)state;
    assert_int_equal(xl_selector_parse("{msg=\"a\\\"b\\\\c\\nd\"}", &s, &err), XL_OK);
    assert_int_equal(s->n, 1);
    assert_string_equal(s->m[0].value, "a\"b\\c\nd");
    assert_true(xl_selector_match(s, l, 2));
    xl_selector_free(s);
    /* A regex escape: doubled in "", as is in raw strings. */
    assert_int_equal(xl_selector_parse("{re=~\"x\\\\.y\"}", &s, &err), XL_OK);
    assert_true(xl_selector_match(s, l, 2));
    xl_selector_free(s);
    assert_int_equal(xl_selector_parse("{re=~`x\\.y`}", &s, &err), XL_OK);
    assert_string_equal(s->m[0].value, "x\\.y");
    assert_true(xl_selector_match(s, l, 2));
    xl_selector_free(s);
    assert_int_equal(xl_selector_parse("{re=~`x\\.z`}", &s, &err), XL_OK);
    assert_false(xl_selector_match(s, l, 2));
    assert_string_equal(xl_lm_op_str(s->m[0].op), "=~");
    xl_selector_free(s);
}

struct ecase {
    const char *sel;
    xl_rc rc;
    const char *msg; /* a prefix of the message */
};

static void test_errors(void **state)
{
    static const struct ecase cases[] = {
        {"{host}", XL_EPARSE, "byte 5: expected '=', '!=', '=~' or '!~'"},
        {"{host=web1}", XL_EPARSE, "byte 6: expected a quoted value"},
        {"{host=\"web1\"", XL_EPARSE, "byte 12: expected '}'"},
        {"{host=\"web1", XL_EPARSE, "byte 6: unterminated quoted value"},
        {"{host=\"a\" role=\"b\"}", XL_EPARSE, "byte 10: expected ',' or '}'"},
        {"{host=\"a\"} x", XL_EPARSE, "byte 11: unexpected text after '}'"},
        {"{1host=\"a\"}", XL_EPARSE, "byte 1: expected a label name"},
        {"{host=\"\\d\"}", XL_EPARSE, "byte 7: unknown escape"},
        {"{path=~\"(a\"}", XL_EINVAL,
         "byte 7: bad regex for label 'path': missing closing parenthesis (at regex offset 2)"},
        {"{a=\"1\", b!~\"[\"}", XL_EINVAL, "byte 11: bad regex for label 'b'"},
        {"node_load1{host=\"a\"}", XL_EPARSE, "byte 0: a metric name is not taken here"},
        {"host=we\"b", XL_EPARSE, "byte 7: quote or brace inside an unquoted value"},
        {"=a", XL_EPARSE, "byte 0: expected a label name"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct xl_selector *s = (struct xl_selector *)1;
        struct xl_err err;
        xl_rc rc = xl_selector_parse(cases[i].sel, &s, &err);

        if (rc != cases[i].rc || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s: got rc %d '%s', want '%s'", cases[i].sel, rc,
                     rc == XL_OK ? "" : err.msg, cases[i].msg);
        assert_null(s);
    }
}

static void test_limits(void **state)
{
    char big[40 * 12] = "{";
    struct xl_selector *s;
    struct xl_err err;

    (void)state;
    for (int i = 0; i < 33; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "l%d=\"v\",", i);
    strcat(big, "}");
    assert_int_equal(xl_selector_parse(big, &s, &err), XL_ETOOBIG);
    assert_non_null(strstr(err.msg, "too many matchers"));
}

/* Every allocation failing in turn: an error, never a leak or a crash. */
static void test_alloc_failure(void **state)
{
    const char *sel = "{host=\"web1\", path=~\"/var/.*\", env!~\"dev\"}";

    (void)state;
    for (long n = 0;; n++) {
        struct xl_selector *s = NULL;
        struct xl_err err;
        xl_rc rc;

        xl_alloc_fail_after(n);
        rc = xl_selector_parse(sel, &s, &err);
        xl_alloc_fail_after(-1);
        if (rc == XL_OK) {
            assert_true(xl_selector_match(s, web1, 4));
            xl_selector_free(s);
            break;
        }
        assert_int_equal(rc, XL_ENOMEM);
        assert_null(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
