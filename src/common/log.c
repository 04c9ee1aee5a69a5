/* xluo: logging to stderr or a reopenable file. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloc.h"

enum xl_log_level xl_log_level_cur = XL_LOG_INFO;

static int log_fd = STDERR_FILENO;
static char *log_path;
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

xl_rc xl_log_level_parse(const char *s, enum xl_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum xl_log_level)i;
            return XL_OK;
        }
    }
    return XL_EINVAL;
}

void xl_log_set_level(enum xl_log_level lvl)
{
    xl_log_level_cur = lvl;
}

static xl_rc open_fd(const char *path, int *fd, struct xl_err *err)
{
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (*fd < 0)
        return xl_err_sys(err, XL_EIO, errno, "cannot open log file %s", path);
    return XL_OK;
}

xl_rc xl_log_open(const char *path, struct xl_err *err)
{
    char *p;
    int fd;
    xl_rc rc;

    if ((rc = open_fd(path, &fd, err)) != XL_OK)
        return rc;
    if (!(p = xl_strdup(path))) {
        close(fd);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    xl_log_close();
    log_path = p;
    log_fd = fd;
    return XL_OK;
}

xl_rc xl_log_reopen(struct xl_err *err)
{
    int fd, old;
    xl_rc rc;

    if (!log_path)
        return XL_OK;
    if ((rc = open_fd(log_path, &fd, err)) != XL_OK)
        return rc;
    /* dup2 swaps the descriptor atomically for concurrent writers. */
    old = log_fd;
    if (dup2(fd, old) < 0) {
        close(fd);
        return xl_err_sys(err, XL_EIO, errno, "dup2 on log file");
    }
    close(fd);
    return XL_OK;
}

void xl_log_close(void)
{
    if (log_path) {
        close(log_fd);
        xl_free(log_path);
        log_path = NULL;
        log_fd = STDERR_FILENO;
    }
}

static void log_vwrite(enum xl_log_level lvl, const char *module, unsigned long suppressed,
                       const char *fmt, va_list ap);

void xl_log_write(enum xl_log_level lvl, const char *module, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(lvl, module, 0, fmt, ap);
    va_end(ap);
}

void xl_log_write_sup(enum xl_log_level lvl, const char *module, unsigned long suppressed,
                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(lvl, module, suppressed, fmt, ap);
    va_end(ap);
}

static void log_vwrite(enum xl_log_level lvl, const char *module, unsigned long suppressed,
                       const char *fmt, va_list ap)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s [%s] ",
                 (int)(tv.tv_usec / 1000), level_names[lvl], module);
    if (k > 0)
        n += (size_t)k;
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (k > 0)
        n += (size_t)k;
    if (suppressed && n < sizeof(line)) {
        k = snprintf(line + n, sizeof(line) - n, " (%lu similar suppressed)", suppressed);
        if (k > 0)
            n += (size_t)k;
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line: O_APPEND keeps concurrent lines whole. A failed
     * log write has nowhere to be reported, so it is ignored. */
    if (write(log_fd, line, n) < 0)
        return;
}

bool xl_log_rl_pass(struct xl_log_rl *rl, int secs, unsigned long *suppressed)
{
    time_t now = time(NULL);
    bool pass = false;

    pthread_mutex_lock(&rl_lock);
    if (rl->last == 0 || now - rl->last >= secs) {
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->last = now;
        pass = true;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&rl_lock);
    return pass;
}
