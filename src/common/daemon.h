/* xluo: the daemon verbs shared by xluo-agent and xluo-server.
 *
 *   start         daemonize, write run/<name>.pid, refuse when running; the
 *                 parent waits until the child says it is ready (or why not)
 *   stop          SIGTERM, wait up to --timeout, report
 *   restart       stop, then start
 *   status        exit 0 running, 3 not running, 1 stale pidfile
 *   reload        SIGHUP: reopen logs, re-read what can change at run time
 *   run           foreground, log to stderr (for systemd)
 *   debug         foreground, debug level
 *   version       print the version
 *   check-config  load the config; print the first error as file:line
 *
 * The running daemon holds an flock on its pidfile: a pidfile that exists but
 * is not locked is stale, whatever pid it names. */
#ifndef XL_DAEMON_H
#define XL_DAEMON_H

#include <stdbool.h>
#include <stdio.h>

#include "rc.h"

#define XL_VERSION "0.1.0"

struct xl_daemon_opts {
    const char *prefix;    /* absolute prefix dir holding conf/ log/ run/ data/ */
    const char *conf_path; /* config file actually loaded, NULL: built-in defaults */
    bool foreground;
    bool debug;
    int ready_fd;          /* internal: pipe to the waiting `start` parent, -1 */
};

struct xl_daemon_def {
    const char *name;      /* "xluo-agent" */
    const char *conf_name; /* "agent.yaml", looked up in <prefix>/conf/ */
    const char *summary;   /* one line for --help */
    /* Load and validate the config (path NULL: defaults). */
    xl_rc (*load)(const char *path, const char *prefix, void **cfg, struct xl_err *err);
    void (*free_cfg)(void *cfg);
    /* Print the configuration reference (`help-config`). */
    void (*doc)(FILE *out);
    /* Run until a stop signal; call xl_daemon_ready once serving. Returns the
     * process exit code. */
    int (*run)(void *cfg, const struct xl_daemon_opts *opts);
};

/* Parse argv, perform the verb, return the exit code for main(). */
int xl_daemon_main(const struct xl_daemon_def *def, int argc, char **argv);

/* Tell a waiting `start` that initialisation finished: ok, or the error that
 * stops the daemon (printed by the parent). No-op in the foreground. */
void xl_daemon_ready(const struct xl_daemon_opts *opts, bool ok, const char *msg);

/* Create dir and its parents (mode 0755). */
xl_rc xl_mkdirs(const char *dir, struct xl_err *err);

/* Join prefix and a relative path (absolute paths are kept). Caller frees. */
char *xl_path_join(const char *prefix, const char *path);

#endif
