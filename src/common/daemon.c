/* xluo: daemon verbs, pidfile and daemonization. */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

enum pid_state { PID_NONE, PID_RUNNING, PID_STALE };

struct ctx {
    const struct xl_daemon_def *def;
    char prefix[PATH_MAX];
    char pidfile[PATH_MAX];
    char logfile[PATH_MAX];
    const char *conf_arg;
    int stop_timeout;
};

static int pidfile_fd = -1;

char *xl_path_join(const char *prefix, const char *path)
{
    if (path[0] == '/' || !prefix || !*prefix)
        return xl_strdup(path);
    return xl_asprintf("%s/%s", prefix, path);
}

xl_rc xl_mkdirs(const char *dir, struct xl_err *err)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);

    if (n >= sizeof(tmp))
        return xl_err_set(err, XL_EINVAL, "path too long: %s", dir);
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return xl_err_sys(err, XL_EIO, errno, "cannot create %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return xl_err_sys(err, XL_EIO, errno, "cannot create %s", tmp);
    return XL_OK;
}

/* Read the pidfile and tell whether a live daemon holds its lock. */
static enum pid_state pid_state(const struct ctx *c, pid_t *pid)
{
    char buf[32] = {0};
    int fd = open(c->pidfile, O_RDONLY | O_CLOEXEC);
    enum pid_state st;
    ssize_t n;

    *pid = 0;
    if (fd < 0)
        return PID_NONE;
    n = read(fd, buf, sizeof(buf) - 1);
    if (n > 0)
        *pid = (pid_t)atol(buf);
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
        st = PID_RUNNING;
    else
        st = PID_STALE;
    close(fd);
    return st;
}

/* Take the pidfile lock and write our pid. Held until exit. */
static xl_rc pidfile_take(const struct ctx *c, struct xl_err *err)
{
    char buf[32];
    int fd, n;

    fd = open(c->pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return xl_err_sys(err, XL_EIO, errno, "cannot open pidfile %s", c->pidfile);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return xl_err_set(err, XL_EEXIST, "already running (pidfile %s is locked)",
                              c->pidfile);
        return xl_err_sys(err, XL_EIO, e, "cannot lock pidfile %s", c->pidfile);
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return xl_err_sys(err, XL_EIO, e, "cannot write pidfile %s", c->pidfile);
    }
    pidfile_fd = fd;
    return XL_OK;
}

static void pidfile_release(const struct ctx *c)
{
    if (pidfile_fd >= 0) {
        unlink(c->pidfile);
        close(pidfile_fd);
        pidfile_fd = -1;
    }
}

/* A start-up failure is reported only after the pidfile is released, so
 * that `start` returning means `status` already says "not running". */
static char failure_msg[600];

static void notify(const struct xl_daemon_opts *opts, bool ok, const char *msg)
{
    char line[620];
    int n;

    if (opts->ready_fd < 0)
        return;
    n = snprintf(line, sizeof(line), "%s %s", ok ? "OK" : "ERR", msg ? msg : "");
    if (n > 0 && write(opts->ready_fd, line, (size_t)n) < 0)
        xl_log_warn("daemon", "cannot notify the starting process: %s", strerror(errno));
    close(opts->ready_fd);
    ((struct xl_daemon_opts *)opts)->ready_fd = -1;
}

void xl_daemon_ready(const struct xl_daemon_opts *opts, bool ok, const char *msg)
{
    if (ok)
        notify(opts, true, NULL);
    else if (!failure_msg[0])
        snprintf(failure_msg, sizeof(failure_msg), "%s", msg ? msg : "failed");
}

/* Resolve which config file to load: -c, else <prefix>/conf/<name> if it
 * exists, else none (built-in defaults). Returns a heap string or NULL. */
static char *conf_path(const struct ctx *c)
{
    char *p;

    if (c->conf_arg) {
        char *abs = realpath(c->conf_arg, NULL);
        return abs ? abs : strdup(c->conf_arg);
    }
    p = xl_asprintf("%s/conf/%s", c->prefix, c->def->conf_name);
    if (p && access(p, F_OK) != 0) {
        xl_free(p);
        return NULL;
    }
    return p;
}

static int do_check_config(const struct ctx *c)
{
    struct xl_err err = {0};
    char *path = conf_path(c);
    void *cfg = NULL;
    xl_rc rc = c->def->load(path, c->prefix, &cfg, &err);

    if (rc != XL_OK) {
        fprintf(stderr, "%s\n", err.msg);
    } else {
        printf("%s: configuration OK\n", path ? path : "(built-in defaults)");
        c->def->free_cfg(cfg);
    }
    free(path);
    return rc == XL_OK ? 0 : 1;
}

/* Load config, take the pidfile and run. In the background, report readiness
 * through ready_fd. */
static int run_daemon(const struct ctx *c, bool foreground, bool debug, int ready_fd)
{
    struct xl_daemon_opts opts = {.prefix = c->prefix, .foreground = foreground,
                                  .debug = debug, .ready_fd = ready_fd};
    struct xl_err err = {0};
    char *path = conf_path(c), *rundir = NULL;
    void *cfg = NULL;
    int code = 1;

    opts.conf_path = path;
    if (debug)
        xl_log_set_level(XL_LOG_DEBUG);
    if (c->def->load(path, c->prefix, &cfg, &err) != XL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        xl_daemon_ready(&opts, false, err.msg);
        goto out;
    }
    rundir = xl_asprintf("%s/run", c->prefix);
    if (!rundir || xl_mkdirs(rundir, &err) != XL_OK || pidfile_take(c, &err) != XL_OK) {
        if (!foreground)
            xl_log_error("daemon", "%s", err.msg);
        else
            fprintf(stderr, "%s: %s\n", c->def->name, err.msg);
        xl_daemon_ready(&opts, false, err.msg);
        goto out_cfg;
    }
    xl_log_info("daemon", "%s %s starting (pid %ld, prefix %s, config %s)", c->def->name,
                XL_VERSION, (long)getpid(), c->prefix, path ? path : "built-in defaults");
    code = c->def->run(cfg, &opts);
    xl_log_info("daemon", "%s stopped (exit %d)", c->def->name, code);
    pidfile_release(c);
out_cfg:
    c->def->free_cfg(cfg);
out:
    /* Still waiting parent: the run ended before it said it was ready. */
    notify(&opts, false, failure_msg[0] ? failure_msg : "exited during start-up; see the log");
    xl_free(rundir);
    free(path);
    return code;
}

static int do_start(const struct ctx *c)
{
    struct xl_err err = {0};
    char logdir[PATH_MAX + 8], msg[600];
    int fds[2];
    pid_t pid, dpid;
    ssize_t n;

    if (pid_state(c, &dpid) == PID_RUNNING) {
        fprintf(stderr, "%s: already running (pid %ld)\n", c->def->name, (long)dpid);
        return 1;
    }
    snprintf(logdir, sizeof(logdir), "%s/log", c->prefix);
    if (xl_mkdirs(logdir, &err) != XL_OK) {
        fprintf(stderr, "%s: %s\n", c->def->name, err.msg);
        return 1;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        perror("pipe");
        return 1;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        int null;
        close(fds[0]);
        if (setsid() < 0)
            _exit(1);
        if ((pid = fork()) != 0)
            _exit(pid < 0 ? 1 : 0);
        umask(022);
        if (xl_log_open(c->logfile, &err) != XL_OK) {
            n = write(fds[1], "ERR ", 4);
            n = write(fds[1], err.msg, strlen(err.msg));
            (void)n;
            _exit(1);
        }
        if ((null = open("/dev/null", O_RDWR)) >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO)
                close(null);
        }
        _exit(run_daemon(c, false, false, fds[1]));
    }
    close(fds[1]);
    waitpid(pid, NULL, 0);
    n = read(fds[0], msg, sizeof(msg) - 1);
    close(fds[0]);
    msg[n > 0 ? n : 0] = '\0';
    if (n >= 2 && strncmp(msg, "OK", 2) == 0) {
        pid_state(c, &dpid);
        printf("%s started (pid %ld, log %s)\n", c->def->name, (long)dpid, c->logfile);
        return 0;
    }
    fprintf(stderr, "%s: failed to start: %s\n", c->def->name,
            n > 4 ? msg + 4 : "exited without a reason; see the log");
    fprintf(stderr, "log: %s\n", c->logfile);
    return 1;
}

/* True while pid exists and is not a zombie (a zombie has finished; in a
 * container nobody may ever reap it). */
static bool process_alive(pid_t pid)
{
    char path[64], buf[256], *p;
    ssize_t n;
    int fd;

    if (kill(pid, 0) < 0 && errno == ESRCH)
        return false;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno != ENOENT;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static int do_stop(const struct ctx *c)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    pid_t pid, dpid;
    int waited_ms = 0;

    switch (pid_state(c, &pid)) {
    case PID_NONE:
        printf("%s: not running\n", c->def->name);
        return 0;
    case PID_STALE:
        printf("%s: not running (removed stale pidfile %s naming pid %ld)\n", c->def->name,
               c->pidfile, (long)pid);
        unlink(c->pidfile);
        return 0;
    case PID_RUNNING:
        break;
    }
    if (pid <= 0 || kill(pid, SIGTERM) < 0) {
        fprintf(stderr, "%s: cannot signal pid %ld: %s\n", c->def->name, (long)pid,
                strerror(errno));
        return 1;
    }
    while (pid_state(c, &dpid) == PID_RUNNING || process_alive(pid)) {
        if (waited_ms >= c->stop_timeout * 1000) {
            fprintf(stderr, "%s: pid %ld did not stop within %ds\n", c->def->name, (long)pid,
                    c->stop_timeout);
            return 1;
        }
        nanosleep(&ts, NULL);
        waited_ms += 20;
    }
    printf("%s stopped\n", c->def->name);
    return 0;
}

static int do_status(const struct ctx *c)
{
    pid_t pid;

    switch (pid_state(c, &pid)) {
    case PID_RUNNING:
        printf("%s is running (pid %ld)\n", c->def->name, (long)pid);
        return 0;
    case PID_STALE:
        printf("%s is not running but pidfile %s remains (pid %ld)\n", c->def->name,
               c->pidfile, (long)pid);
        return 1;
    default:
        printf("%s is not running\n", c->def->name);
        return 3;
    }
}

static int do_reload(const struct ctx *c)
{
    pid_t pid;

    if (pid_state(c, &pid) != PID_RUNNING) {
        fprintf(stderr, "%s: not running\n", c->def->name);
        return 3;
    }
    if (kill(pid, SIGHUP) < 0) {
        fprintf(stderr, "%s: cannot signal pid %ld: %s\n", c->def->name, (long)pid,
                strerror(errno));
        return 1;
    }
    printf("%s: reload signalled (pid %ld)\n", c->def->name, (long)pid);
    return 0;
}

static void usage(const struct xl_daemon_def *def, FILE *out)
{
    fprintf(out,
            "%s %s: %s\n\n"
            "Usage: %s [-c FILE] [-p PREFIX] COMMAND\n\n"
            "Commands:\n"
            "  start         start in the background (pidfile in PREFIX/run)\n"
            "  stop          stop the running daemon (SIGTERM, waits --timeout)\n"
            "  restart       stop, then start\n"
            "  status        exit 0 running, 3 not running, 1 stale pidfile\n"
            "  reload        re-read the config and reopen logs (SIGHUP)\n"
            "  run           run in the foreground, log to stderr (for systemd)\n"
            "  debug         like run, with debug logging\n"
            "  check-config  validate the config, print the first error as file:line\n"
            "  help-config   print every config key with its default\n"
            "  version       print the version\n\n"
            "Options:\n"
            "  -c, --config FILE   config file (default PREFIX/conf/%s if present,\n"
            "                      else built-in defaults)\n"
            "  -p, --prefix DIR    directory holding conf/ log/ run/ data/ (default .)\n"
            "  -t, --timeout SECS  how long stop waits (default 30)\n"
            "  -h, --help          this help\n",
            def->name, XL_VERSION, def->summary, def->name, def->conf_name);
}

int xl_daemon_main(const struct xl_daemon_def *def, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"prefix", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0},
    };
    struct ctx c = {.def = def, .stop_timeout = 30};
    const char *prefix = ".", *verb;
    int opt, code;

    while ((opt = getopt_long(argc, argv, "c:p:t:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': c.conf_arg = optarg; break;
        case 'p': prefix = optarg; break;
        case 't': c.stop_timeout = atoi(optarg) > 0 ? atoi(optarg) : 30; break;
        case 'h': usage(def, stdout); return 0;
        case 'V': printf("%s %s\n", def->name, XL_VERSION); return 0;
        default: usage(def, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(def, stderr);
        return 2;
    }
    verb = argv[optind];
    if (strcmp(verb, "version") == 0) {
        printf("%s %s\n", def->name, XL_VERSION);
        return 0;
    }
    if (strcmp(verb, "help-config") == 0) {
        def->doc(stdout);
        return 0;
    }
    if (!realpath(prefix, c.prefix)) {
        struct xl_err err;
        if (xl_mkdirs(prefix, &err) != XL_OK || !realpath(prefix, c.prefix)) {
            fprintf(stderr, "%s: prefix %s: %s\n", def->name, prefix, strerror(errno));
            return 1;
        }
    }
    snprintf(c.pidfile, sizeof(c.pidfile), "%.*s/run/%s.pid", PATH_MAX - 64, c.prefix,
             def->name);
    snprintf(c.logfile, sizeof(c.logfile), "%.*s/log/%s.log", PATH_MAX - 64, c.prefix,
             def->name);

    if (strcmp(verb, "start") == 0)
        return do_start(&c);
    if (strcmp(verb, "stop") == 0)
        return do_stop(&c);
    if (strcmp(verb, "restart") == 0) {
        if ((code = do_stop(&c)) != 0)
            return code;
        return do_start(&c);
    }
    if (strcmp(verb, "status") == 0)
        return do_status(&c);
    if (strcmp(verb, "reload") == 0)
        return do_reload(&c);
    if (strcmp(verb, "run") == 0)
        return run_daemon(&c, true, false, -1);
    if (strcmp(verb, "debug") == 0)
        return run_daemon(&c, true, true, -1);
    if (strcmp(verb, "check-config") == 0)
        return do_check_config(&c);
    fprintf(stderr, "%s: unknown command '%s'\n\n", def->name, verb);
    usage(def, stderr);
    return 2;
}
