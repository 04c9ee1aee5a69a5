/* Helpers shared by the CLI unit tests (include after <cmocka.h>). */
#ifndef XL_CLI_TEST_UTIL_H
#define XL_CLI_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

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
