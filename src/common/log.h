/* xluo: process-wide logging.
 *
 * Lines look like `2026-11-21T08:50:01.123Z WARN  [shipper] message`. The
 * destination is stderr until xl_log_open() names a file; xl_log_reopen()
 * (from SIGHUP) reopens that file for logrotate. The level is tested before
 * the arguments are evaluated. Thread-safe: each line is one write(2). */
#ifndef XL_LOG_H
#define XL_LOG_H

#include <stdbool.h>
#include <time.h>

#include "rc.h"

enum xl_log_level {
    XL_LOG_ERROR = 0,
    XL_LOG_WARN,
    XL_LOG_INFO,
    XL_LOG_DEBUG,
};

extern enum xl_log_level xl_log_level_cur;

/* Parse "error|warn|info|debug". */
xl_rc xl_log_level_parse(const char *s, enum xl_log_level *out);
void xl_log_set_level(enum xl_log_level lvl);
/* Log to path (appending) instead of stderr. */
xl_rc xl_log_open(const char *path, struct xl_err *err);
/* Reopen the file given to xl_log_open (after logrotate moved it). Safe to
 * call from the event loop after a SIGHUP; no-op when logging to stderr. */
xl_rc xl_log_reopen(struct xl_err *err);
void xl_log_close(void);

void xl_log_write(enum xl_log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define XL_LOG(lvl, mod, ...)                                                  \
    do {                                                                       \
        if ((lvl) <= xl_log_level_cur)                                         \
            xl_log_write((lvl), (mod), __VA_ARGS__);                           \
    } while (0)

#define xl_log_error(mod, ...) XL_LOG(XL_LOG_ERROR, mod, __VA_ARGS__)
#define xl_log_warn(mod, ...) XL_LOG(XL_LOG_WARN, mod, __VA_ARGS__)
#define xl_log_info(mod, ...) XL_LOG(XL_LOG_INFO, mod, __VA_ARGS__)
#define xl_log_debug(mod, ...) XL_LOG(XL_LOG_DEBUG, mod, __VA_ARGS__)

/* Rate-limited variant for errors that can repeat in a loop: at most one line
 * per `secs` seconds per call site; the number suppressed is appended. */
struct xl_log_rl {
    time_t last;
    unsigned long suppressed;
};
bool xl_log_rl_pass(struct xl_log_rl *rl, int secs, unsigned long *suppressed);

#define xl_log_rl(lvl, secs, mod, ...)                                         \
    do {                                                                       \
        static struct xl_log_rl rl_;                                           \
        unsigned long sup_;                                                    \
        if ((lvl) <= xl_log_level_cur && xl_log_rl_pass(&rl_, (secs), &sup_))  \
            xl_log_write_sup((lvl), (mod), sup_, __VA_ARGS__);                 \
    } while (0)

/* xl_log_write with " (N similar suppressed)" appended when N > 0. */
void xl_log_write_sup(enum xl_log_level lvl, const char *module, unsigned long suppressed,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
