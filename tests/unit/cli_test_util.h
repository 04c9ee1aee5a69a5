/* Helpers shared by the CLI unit tests (include after <cmocka.h>). */
#ifndef XL_CLI_TEST_UTIL_H
#define XL_CLI_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/sse.h"

#define NOW 1763715010000LL /* 2025-11-21 08:50:10 UTC */

/* Captured output of a FILE * written through open_memstream. */
struct capture {
    FILE *f;
    char *data;
    size_t len;
};

static inline void cap_open(struct capture *c)
{
    c->data = NULL;
    c->len = 0;
    c->f = open_memstream(&c->data, &c->len);
    assert_non_null(c->f);
}

/* Close the stream; c->data holds the text (free with cap_free). */
static inline const char *cap_close(struct capture *c)
{
    fclose(c->f);
    c->f = NULL;
    return c->data;
}

static inline void cap_free(struct capture *c)
{
    free(c->data);
    c->data = NULL;
}

/* Parse a NULL-terminated argument list (without argv[0]). */
static inline xl_rc parse(struct xl_cli_args *a, struct xl_err *err, ...)
{
    char *argv[32] = {"xluo"};
    int argc = 1;
    va_list ap;
    char *s;

    va_start(ap, err);
    while ((s = va_arg(ap, char *)) && argc < 31)
        argv[argc++] = s;
    va_end(ap);
    xl_cli_args_init(a);
    xl_err_clear(err);
    return xl_cli_args_parse(a, argc, argv, err);
}

/* A context with the fixed clock NOW, default arguments, and out and err
 * captured. */
static inline void ctx_capture(struct xl_cli_ctx *c, struct capture *out, struct capture *err)
{
    memset(c, 0, sizeof(*c));
    xl_cli_args_init(&c->args);
    c->now_ms = NOW;
    cap_open(out);
    c->out = out->f;
    cap_open(err);
    c->err = err->f;
}

/* Drive a follow handler: record, dropped and other (a type it does not
 * know) succeed, bad (a malformed record) is XL_EPROTO, then record again
 * with --json is written as it came. What it printed must be want_out on
 * c->out and want_err on c->err. */
static inline void check_on_event(xl_cli_event_fn on_event, const struct xl_sse_event *record,
                                  const struct xl_sse_event *dropped,
                                  const struct xl_sse_event *other, const struct xl_sse_event *bad,
                                  const char *want_out, const char *want_err)
{
    struct capture out, err;
    struct xl_cli_ctx c;
    struct xl_err e = {0};
    char malformed[64];

    ctx_capture(&c, &out, &err);
    assert_int_equal(on_event(&c, record, &e), XL_OK);
    assert_int_equal(on_event(&c, dropped, &e), XL_OK);
    assert_int_equal(on_event(&c, other, &e), XL_OK);
    assert_int_equal(on_event(&c, bad, &e), XL_EPROTO);
    snprintf(malformed, sizeof(malformed), "malformed %s event", bad->type);
    assert_non_null(strstr(e.msg, malformed));
    c.args.json = true;
    assert_int_equal(on_event(&c, record, &e), XL_OK); /* verbatim */
    cap_close(&out);
    cap_close(&err);
    assert_string_equal(out.data, want_out);
    assert_string_equal(err.data, want_err);
    cap_free(&out);
    cap_free(&err);
}

/* Group setup: no server or token from the environment, UTC times. */
static inline int setup_env(void **state)
{
    unsetenv("XLUO_SERVER");
    unsetenv("XLUO_TOKEN");
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

#endif
