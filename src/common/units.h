/* xluo: the units operators write in configs and on the command line:
 * durations `500ms 10s 5m 1h 2d 1h30m` and sizes `512 64KiB 1GiB 10MB`. */
#ifndef XL_UNITS_H
#define XL_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"

/* Parse a duration into milliseconds. "0" is accepted; any other number
 * needs a unit (ms s m h d w). XL_EPARSE on anything else, XL_ERANGE on
 * overflow. */
xl_rc xl_duration_parse(const char *s, int64_t *ms);
/* Parse a size into bytes: a plain integer is bytes; units B, KiB MiB GiB
 * TiB (1024) and kB KB MB GB TB (1000). */
xl_rc xl_size_parse(const char *s, int64_t *bytes);
/* Format ms as the shortest exact duration ("1h30m", "250ms", "0s"). */
void xl_duration_fmt(int64_t ms, char *out, size_t outlen);
/* A size as the config writes it: the largest unit that divides it
 * exactly ("64KiB", "1GiB", "1000"). */
void xl_size_fmt(int64_t bytes, char *out, size_t outlen);

/* A time argument as APIs take it: integer milliseconds since the epoch,
 * or a duration back from now_ms ("1h" is an hour ago). */
xl_rc xl_time_arg_parse(const char *s, int64_t now_ms, int64_t *out_ms);

/* Wall clock in milliseconds since the epoch, and a monotonic clock in ms. */
int64_t xl_now_ms(void);
int64_t xl_mono_ms(void);

#endif
