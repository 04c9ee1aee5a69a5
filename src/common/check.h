/* xluo: names both sides agree on for check results and custom events
 * (docs/protocol.md): the four check states and what an event type may
 * be. */
#ifndef XL_CHECK_H
#define XL_CHECK_H

#include <stdbool.h>
#include <stddef.h>

enum xl_check_state { XL_CHECK_OK = 0, XL_CHECK_WARNING = 1, XL_CHECK_CRITICAL = 2,
                      XL_CHECK_UNKNOWN = 3 };
#define XL_CHECK_STATES 4
#define XL_EVENT_TYPE_MAX 128
/* Limits of a check result both sides enforce (docs/protocol.md). */
#define XL_CHECK_NAME_MAX 200
#define XL_CHECK_OUTPUT_MAX (64u << 10) /* output + long_output, bytes */

/* "ok", "warning", "critical", "unknown". */
const char *xl_check_state_str(enum xl_check_state s);
/* Parse a state name, case-insensitively ("OK", "warning"). False when s
 * is none of the four. */
bool xl_check_state_parse(const char *s, enum xl_check_state *out);

/* A check name: 1..XL_CHECK_NAME_MAX bytes of valid UTF-8 without C0 or
 * C1 control characters or DEL. */
bool xl_check_name_valid(const char *s, size_t len);

/* Replace, in place, every byte of s that is not part of valid UTF-8, and
 * every control character but newline and tab, by '?': check output from
 * a script goes on the wire at the same size it has here. */
void xl_text_sanitize(char *s);

/* An event type: 1..128 bytes of [A-Za-z0-9_.:-], and not one of the
 * record kinds the server reserves (metric, log, check, event, heartbeat,
 * job_run; in any case). */
bool xl_event_type_valid(const char *s);
/* Is s one of those reserved kinds (any case)? For error messages. */
bool xl_event_type_reserved(const char *s);

#endif
