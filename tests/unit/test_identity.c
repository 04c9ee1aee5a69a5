/* Unit tests: agent id, batch sequence, URL parsing, local IP detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "agent/identity.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/xl-identity-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void test_agent_id_stable(void **state)
{
    char a[33], b[33], path[128];
    FILE *f;

    assert_int_equal(xl_identity_agent_id(dir, a, NULL), XL_OK);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_int_equal(xl_identity_agent_id(dir, b, NULL), XL_OK);
    assert_string_equal(a, b);
    /* A damaged id file is an error that says how to recover, not a new id. */
    snprintf(path, sizeof(path), "%s/agent-id", dir);
    f = fopen(path, "w");
    fputs("not-an-id\n", f);
    fclose(f);
    {
        struct xl_err err = {0};
        assert_int_equal(xl_identity_agent_id(dir, b, &err), XL_EPARSE);
        assert_non_null(strstr(err.msg, "remove the file"));
    }
    unlink(path);
}

static void test_seq_grows_across_restarts(void **state)
{
    struct xl_seq s;
    uint64_t v, last = 0;

    assert_int_equal(xl_seq_open(&s, dir, NULL), XL_OK);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(xl_seq_next(&s, &v, NULL), XL_OK);
        assert_true(v > last);
        last = v;
    }
    /* No close: as after kill -9. The next run starts after every number
     * handed out. */
    xl_seq_close(&s);
    assert_int_equal(xl_seq_open(&s, dir, NULL), XL_OK);
    assert_int_equal(xl_seq_next(&s, &v, NULL), XL_OK);
    assert_true(v > last);
    xl_seq_close(&s);
}

static void test_url_hostport(void **state)
{
    static const struct {
        const char *url, *host, *port;
    } ok[] = {
        {"http://127.0.0.1:21002", "127.0.0.1", "21002"},
        {"http://example.com/x/y", "example.com", "80"},
        {"https://example.com", "example.com", "443"},
        {"http://[::1]:9/path", "::1", "9"},
        {"http://h:1?q", "h", "1"},
    };
    static const char *const bad[] = {"nourl", "http://", "http://:80", "http://[::1", "http://h:/"};
    char host[64], port[16];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(xl_url_hostport(ok[i].url, host, sizeof(host), port, sizeof(port)), XL_OK);
        assert_string_equal(host, ok[i].host);
        assert_string_equal(port, ok[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (xl_url_hostport(bad[i], host, sizeof(host), port, sizeof(port)) == XL_OK)
            fail_msg("'%s' parsed", bad[i]);
}

static void test_local_ip(void **state)
{
    char ip[64];
    struct in_addr a;

    /* Loopback server: the route's source address is loopback. */
    xl_identity_local_ip("http://127.0.0.1:21002", ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");
    /* An unresolvable server falls back to an interface address: always a
     * valid IPv4 address. */
    xl_identity_local_ip("http://no-such-host.invalid:1", ip, sizeof(ip));
    assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
    xl_identity_local_ip(NULL, ip, sizeof(ip));
    assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_id_stable),
        cmocka_unit_test(test_seq_grows_across_restarts),
        cmocka_unit_test(test_url_hostport),
        cmocka_unit_test(test_local_ip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
