/* xluo: how the command-line client writes and reads times and values. */
#ifndef XL_CLI_FMT_H
#define XL_CLI_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc.h"

/* The time of ts_ms relative to now_ms: "3s ago", "2m ago", "5h ago" (up to
 * 47h), "3d ago"; "in 5s" for a time more than a second ahead (clock skew);
 * "never" for ts_ms <= 0. */
void xl_cli_fmt_ago(int64_t ts_ms, int64_t now_ms, char *out, size_t outlen);

/* A size in bytes for a human: "512 B", "4.0 KiB", "12 MiB", "1.5 GiB"
 * (binary units, one decimal below 10, none from 10 on). */
void xl_cli_fmt_bytes(int64_t bytes, char *out, size_t outlen);

/* A duration in one unit, rounded down: "250ms", "3s", "2m", "5h" (up to
 * 47h), "3d". */
void xl_cli_fmt_duration(int64_t ms, char *out, size_t outlen);

/* A sample value, compact: integers (and anything of magnitude 1e5..1e15)
 * without exponent or fraction, the rest as %.6g; "NaN", "+Inf", "-Inf". */
void xl_cli_fmt_value(double v, char *out, size_t outlen);

/* The first line of s cut to at most max_cols code points for a table
 * cell, "..." ending a cut one, into out (outlen bytes; the cut is on a
 * code point boundary). */
void xl_cli_fmt_clip(const char *s, size_t max_cols, char *out, size_t outlen);

/* Write s[0..n) on out with control characters other than tab and newline
 * as '?', so that data from the server cannot drive the terminal. */
void xl_cli_put_clean(const char *s, size_t n, FILE *out);

/* ms since the epoch as local time "2026-11-21 08:50:00", with ".123"
 * appended when with_ms. */
void xl_cli_fmt_time(int64_t ms, bool with_ms, char *out, size_t outlen);

/* Parse a time argument (--from, --to):
 *   a duration back from now ("1h", "30m")  -> *relative = true
 *   "now"                                   -> now_ms
 *   integer milliseconds since the epoch
 *   local "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" (a 'T' may separate)
 * Sets *ms to the absolute time. XL_EINVAL with a message otherwise. */
xl_rc xl_cli_time_parse(const char *s, int64_t now_ms, int64_t *ms, bool *relative,
                        struct xl_err *err);

/* The smallest round step (1s, 2s, 5s, ..., 1m, 2m, 5m, ..., 1h, ..., 1d,
 * then whole days) that cuts range_ms into at most XL_CLI_MAX_POINTS
 * buckets. */
#define XL_CLI_MAX_POINTS 120
int64_t xl_cli_round_step(int64_t range_ms);

/* The step to ask for when the user gave none: 0 (raw samples) for ranges
 * up to an hour, else xl_cli_round_step(range_ms). */
int64_t xl_cli_default_step(int64_t range_ms);

/* Re-indent the valid JSON text s[0..len) by two spaces per level, keeping
 * every token (numbers included) byte for byte; ends with a newline. */
void xl_cli_json_pretty(const char *s, size_t len, FILE *out);

#endif
