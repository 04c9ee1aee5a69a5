/* Unit tests: the agent's Prometheus exposition (GET /metrics) groups
 * samples by family with one TYPE line each and escapes label values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/expo.h"

static void test_render(void **state)
{
    struct xl_expo a, b;
    struct xl_buf out;
    const struct xl_expo *sets[2] = {&a, &b};
    struct xl_label cpu0 = {"cpu", "0"}, cpu1 = {"cpu", "1"};
    struct xl_label odd[2] = {{"path", "C:\\\\tmp"}, {"note", "say \"hi\"\nbye"}};

    (void)state;
    xl_expo_init(&a);
    xl_expo_init(&b);
    xl_buf_init(&out, 1 << 20);
    assert_int_equal(xl_expo_add(&a, "node_cpu_usage_ratio", &cpu0, 1, 0.25), XL_OK);
    assert_int_equal(xl_expo_add(&a, "node_load1", NULL, 0, 1.5), XL_OK);
    assert_int_equal(xl_expo_add(&a, "node_cpu_usage_ratio", &cpu1, 1, 0.5), XL_OK);
    assert_int_equal(xl_expo_add(&b, "xluo_agent_retries_total", NULL, 0, 3), XL_OK);
    assert_int_equal(xl_expo_add(&b, "odd", odd, 2, NAN), XL_OK);
    assert_int_equal(xl_expo_add(&b, "inf", NULL, 0, -INFINITY), XL_OK);
    assert_int_equal(xl_expo_render(sets, 2, &out), XL_OK);
    assert_string_equal(out.data,
                        "# TYPE inf gauge\n"
                        "inf -Inf\n"
                        "# TYPE node_cpu_usage_ratio gauge\n"
                        "node_cpu_usage_ratio{cpu=\"0\"} 0.25\n"
                        "node_cpu_usage_ratio{cpu=\"1\"} 0.5\n"
                        "# TYPE node_load1 gauge\n"
                        "node_load1 1.5\n"
                        "# TYPE odd gauge\n"
                        "odd{path=\"C:\\\\\\\\tmp\",note=\"say \\\"hi\\\"\\nbye\"} NaN\n"
                        "# TYPE xluo_agent_retries_total counter\n"
                        "xluo_agent_retries_total 3\n");
    /* Reset keeps nothing of the old samples. */
    xl_expo_reset(&a);
    xl_expo_reset(&b);
    xl_buf_reset(&out);
    assert_int_equal(xl_expo_render(sets, 2, &out), XL_OK);
    assert_int_equal(out.len, 0);
    xl_buf_cleanup(&out);
    xl_expo_cleanup(&a);
    xl_expo_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
