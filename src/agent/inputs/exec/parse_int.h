/* xluo-agent exec parsers: what their files share (see parse.h).
 *
 *   parse.c         format names and detection, the arena, error places,
 *                   the limits (check states and event types:
 *                   common/check.c)
 *   parse_json.c    JSON records (objects, arrays, JSON lines)
 *   parse_nagios.c  Nagios plugin output and perfdata
 *   parse_prom.c    Prometheus text exposition format 0.0.4
 *
 * Every parser runs in two passes: the first checks the whole input and
 * builds the records (in an arena), the second only calls the sink, so a
 * sink never sees part of an input that turned out to be broken. */
#ifndef XL_EXEC_PARSE_INT_H
#define XL_EXEC_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* Bytes shown of a piece of input quoted in an error message. */
#define XL_PARSE_QUOTE_MAX 48

/* The server rejects a whole batch over these (docs/protocol.md), so
 * records are held to them here, where the error can name the line: labels
 * per sample; a check's name and output (common/check.h). */
#define XL_PARSE_MAX_LABELS 64

/* Memory for one parse: many small allocations freed at once. */
struct xl_parse_arena {
    struct xl_parse_block *head;
};

/* n bytes aligned for any type, NULL when out of memory. Lives until
 * xl_parse_arena_cleanup. */
void *xl_parse_arena_alloc(struct xl_parse_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n) in the arena, NULL when out of memory. */
char *xl_parse_arena_strndup(struct xl_parse_arena *a, const char *s, size_t n);
/* Free every block; the arena is empty (and reusable) afterwards. */
void xl_parse_arena_cleanup(struct xl_parse_arena *a);

/* The place of byte off (0-based) of s: line (1-based) and byte in that
 * line (1-based). A newline belongs to the line it ends. */
void xl_parse_where(const char *s, size_t len, size_t off, size_t *line, size_t *byte);

/* Would one more record pass lim->max_records when n are already kept?
 * Fills err (XL_ETOOBIG) and returns true when it would. */
bool xl_parse_too_many(const struct xl_parse_limits *lim, size_t n, struct xl_err *err);

/* Is ts plausibly milliseconds since 1970 (1973 to 2286)? Catches
 * seconds written where milliseconds belong. */
bool xl_parse_ts_plausible(int64_t ts);

/* Copy s[0..n) into out (outlen bytes) for an error message: cut at
 * XL_PARSE_QUOTE_MAX bytes with "...", control bytes as '?'. */
void xl_parse_quote(const char *s, size_t n, char *out, size_t outlen);

static inline bool xl_parse_blank(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool xl_parse_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* parse_prom.c: is line[0..n) a sample line (syntax only: names, braces,
 * quotes and escapes, value, timestamp; duplicate labels not checked)? */
bool xl_prom_line_is_sample(const char *line, size_t n);

#endif
