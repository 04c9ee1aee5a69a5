/* xluo: durations, sizes and clocks. */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct unit {
    const char *name;
    int64_t mult;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    {"d", 86400000}, {"w", 604800000}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"B", 1},
    {"KiB", 1LL << 10}, {"MiB", 1LL << 20}, {"GiB", 1LL << 30}, {"TiB", 1LL << 40},
    {"kB", 1000}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
    {"TB", 1000000000000LL},
    {NULL, 0},
};

/* Read one `<digits>` group starting at *p; XL_EPARSE if none. */
static xl_rc read_number(const char **p, int64_t *out)
{
    int64_t v = 0;

    if (!isdigit((unsigned char)**p))
        return XL_EPARSE;
    while (isdigit((unsigned char)**p)) {
        if (v > (INT64_MAX - 9) / 10)
            return XL_ERANGE;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return XL_OK;
}

/* Match the longest unit name at *p (so "ms" wins over "m"). */
static const struct unit *read_unit(const char **p, const struct unit *units)
{
    const struct unit *best = NULL;
    size_t best_len = 0;

    for (const struct unit *u = units; u->name; u++) {
        size_t n = strlen(u->name);
        if (n > best_len && strncmp(*p, u->name, n) == 0 &&
            !isalpha((unsigned char)(*p)[n])) {
            best = u;
            best_len = n;
        }
    }
    *p += best_len;
    return best;
}

xl_rc xl_duration_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int64_t total = 0, v;
    xl_rc rc;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return XL_OK;
    }
    if (!*p)
        return XL_EPARSE;
    while (*p) {
        const struct unit *u;

        if ((rc = read_number(&p, &v)) != XL_OK)
            return rc;
        if (!(u = read_unit(&p, duration_units)))
            return XL_EPARSE;
        if (v > (INT64_MAX - total) / u->mult)
            return XL_ERANGE;
        total += v * u->mult;
    }
    *ms = total;
    return XL_OK;
}

xl_rc xl_size_parse(const char *s, int64_t *bytes)
{
    const char *p = s;
    const struct unit *u;
    int64_t v;
    xl_rc rc;

    if ((rc = read_number(&p, &v)) != XL_OK)
        return rc;
    if (!*p) {
        *bytes = v;
        return XL_OK;
    }
    while (*p == ' ')
        p++;
    if (!(u = read_unit(&p, size_units)) || *p)
        return XL_EPARSE;
    if (v > INT64_MAX / u->mult)
        return XL_ERANGE;
    *bytes = v * u->mult;
    return XL_OK;
}

void xl_duration_fmt(int64_t ms, char *out, size_t outlen)
{
    static const struct unit order[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
    };
    size_t n = 0;

    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && n < outlen; i++) {
        int64_t q = ms / order[i].mult;
        if (q) {
            int k = snprintf(out + n, outlen - n, "%lld%s", (long long)q, order[i].name);
            if (k > 0)
                n += (size_t)k;
            ms -= q * order[i].mult;
        }
    }
}

void xl_size_fmt(int64_t bytes, char *out, size_t outlen)
{
    static const char *const names[] = {"", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t i = 0;

    while (bytes != 0 && bytes % 1024 == 0 && i + 1 < sizeof(names) / sizeof(names[0])) {
        bytes /= 1024;
        i++;
    }
    snprintf(out, outlen, "%lld%s", (long long)bytes, names[i]);
}

xl_rc xl_time_arg_parse(const char *s, int64_t now_ms, int64_t *out_ms)
{
    char *end;
    long long v;
    int64_t d;
    xl_rc rc;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s && !*end && !errno) {
        *out_ms = v;
        return XL_OK;
    }
    if ((rc = xl_duration_parse(s, &d)) != XL_OK)
        return rc;
    *out_ms = now_ms - d;
    return XL_OK;
}

int64_t xl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t xl_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
