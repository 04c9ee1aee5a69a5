/* xluo: how the command-line client writes and reads times and values. */
#include "fmt.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/units.h"

void xl_cli_fmt_ago(int64_t ts_ms, int64_t now_ms, char *out, size_t outlen)
{
    int64_t d = now_ms - ts_ms;
    const char *fmt = "%llds ago";
    int64_t v;

    if (ts_ms <= 0) {
        snprintf(out, outlen, "never");
        return;
    }
    if (d <= -1000) {
        snprintf(out, outlen, "in %llds", (long long)(-d / 1000));
        return;
    }
    if (d < 0)
        d = 0;
    v = d / 1000;
    if (v >= 60) {
        v /= 60;
        fmt = "%lldm ago";
        if (v >= 60) {
            v /= 60;
            fmt = "%lldh ago";
            if (v >= 48) {
                v /= 24;
                fmt = "%lldd ago";
            }
        }
    }
    snprintf(out, outlen, fmt, (long long)v);
}

void xl_cli_fmt_bytes(int64_t bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    size_t u = 0;

    if (bytes < 1024) {
        snprintf(out, outlen, "%lld B", (long long)bytes);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    /* Rounded down, so that 1023.99 KiB does not show as 1024 KiB. */
    if (v < 10)
        snprintf(out, outlen, "%.1f %s", floor(v * 10) / 10, units[u]);
    else
        snprintf(out, outlen, "%.0f %s", floor(v), units[u]);
}

void xl_cli_fmt_duration(int64_t ms, char *out, size_t outlen)
{
    if (ms < 1000)
        snprintf(out, outlen, "%lldms", (long long)(ms < 0 ? 0 : ms));
    else if (ms < 60000)
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    else if (ms < 3600000)
        snprintf(out, outlen, "%lldm", (long long)(ms / 60000));
    else if (ms < 48 * 3600000LL)
        snprintf(out, outlen, "%lldh", (long long)(ms / 3600000));
    else
        snprintf(out, outlen, "%lldd", (long long)(ms / 86400000));
}

void xl_cli_fmt_value(double v, char *out, size_t outlen)
{
    double a = fabs(v);

    if (isnan(v))
        snprintf(out, outlen, "NaN");
    else if (isinf(v))
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        snprintf(out, outlen, "0"); /* also -0 */
    else if (a < 1e15 && (v == trunc(v) || a >= 1e5))
        snprintf(out, outlen, "%.0f", v);
    else
        snprintf(out, outlen, "%.6g", v);
}

void xl_cli_fmt_clip(const char *s, size_t max_cols, char *out, size_t outlen)
{
    size_t len = strcspn(s, "\r\n"), cols = 0, cut = len;
    bool clipped;

    if (outlen < 4) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    if (max_cols < 4)
        max_cols = 4;
    /* cut: where the code point after the first max_cols - 3 starts. */
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) == 0x80)
            continue;
        if (cols == max_cols - 3)
            cut = i;
        cols++;
    }
    clipped = cols > max_cols;
    if (clipped)
        len = cut;
    if (len + (clipped ? 3 : 0) >= outlen) {
        /* The buffer is the limit: back to the start of a code point. */
        clipped = true;
        len = outlen - 4;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(out, s, len);
    if (clipped) {
        memcpy(out + len, "...", 3);
        len += 3;
    }
    out[len] = '\0';
}

void xl_cli_put_clean(const char *s, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        fputc((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f ? '?' : ch, out);
    }
}

void xl_cli_fmt_time(int64_t ms, bool with_ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    size_t n;

    if (!localtime_r(&secs, &tm) || (n = strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm)) == 0) {
        snprintf(out, outlen, "%lld", (long long)ms);
        return;
    }
    if (with_ms)
        snprintf(out + n, outlen - n, ".%03d", frac);
}

/* Read exactly n digits at *p into *v. */
static bool digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* Parse "YYYY-MM-DD[( |T)HH:MM[:SS]]" as local time. */
static bool parse_local(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    const char *p = s;
    struct tm tm = {0};
    time_t t;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == ' ' || *p == 'T') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return false;
        if (*p == ':' && (p++, !digits(&p, 2, &sec)))
            return false;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    if ((t = mktime(&tm)) == (time_t)-1 || tm.tm_mday != d) /* 2026-02-31 */
        return false;
    *ms = (int64_t)t * 1000;
    return true;
}

xl_rc xl_cli_time_parse(const char *s, int64_t now_ms, int64_t *ms, bool *relative,
                        struct xl_err *err)
{
    int64_t v;
    size_t i;

    *relative = false;
    if (strcmp(s, "now") == 0) {
        *ms = now_ms;
        return XL_OK;
    }
    for (i = 0; isdigit((unsigned char)s[i]); i++)
        ;
    if (i > 0 && !s[i] && i <= 15) {
        *ms = strtoll(s, NULL, 10);
        return XL_OK;
    }
    if (parse_local(s, ms))
        return XL_OK;
    if (xl_duration_parse(s, &v) == XL_OK && v <= now_ms) {
        *ms = now_ms - v;
        *relative = true;
        return XL_OK;
    }
    return xl_err_set(err, XL_EINVAL,
                      "invalid time '%s' (use a duration back from now like 1h, "
                      "'2026-11-21 08:50', epoch milliseconds or 'now')",
                      s);
}

int64_t xl_cli_round_step(int64_t range_ms)
{
    static const int64_t steps[] = {
        1000,    2000,    5000,     10000,    15000,    30000,    /* seconds */
        60000,   120000,  300000,   600000,   900000,   1800000,  /* minutes */
        3600000, 7200000, 10800000, 21600000, 43200000, 86400000, /* hours, 1d */
    };
    const int64_t day = 86400000;
    int64_t need;

    need = (range_ms + XL_CLI_MAX_POINTS - 1) / XL_CLI_MAX_POINTS;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i] >= need)
            return steps[i];
    return (need + day - 1) / day * day;
}

int64_t xl_cli_default_step(int64_t range_ms)
{
    return range_ms <= 3600000 ? 0 : xl_cli_round_step(range_ms);
}

static void newline(FILE *out, int depth)
{
    fputc('\n', out);
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

void xl_cli_json_pretty(const char *s, size_t len, FILE *out)
{
    bool in_str = false, esc = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];

        if (in_str) {
            fputc(ch, out);
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
            continue;
        }
        switch (ch) {
        case ' ':
        case '\t':
        case '\n':
        case '\r': break;
        case '"':
            in_str = true;
            fputc(ch, out);
            break;
        case '{':
        case '[': {
            size_t j = i + 1;

            while (j < len && strchr(" \t\r\n", s[j]) && s[j])
                j++;
            fputc(ch, out);
            if (j < len && (s[j] == '}' || s[j] == ']')) {
                fputc(s[j], out); /* {} and [] stay on one line */
                i = j;
            } else {
                newline(out, ++depth);
            }
            break;
        }
        case '}':
        case ']':
            newline(out, --depth);
            fputc(ch, out);
            break;
        case ',':
            fputc(ch, out);
            newline(out, depth);
            break;
        case ':': fputs(": ", out); break;
        default: fputc(ch, out);
        }
    }
    fputc('\n', out);
}
