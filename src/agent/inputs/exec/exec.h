/* xluo-agent exec input: scripts and plugins run on intervals
 * (docs/exec.md).
 *
 * Each inputs.exec[] entry is either a directory (every executable file in
 * it, rescanned on each interval, seed 003's cron/ dir) or one command. A
 * script runs in its own process group with stdin on /dev/null; its stdout
 * is read up to max_output, its stderr's head is kept for error messages.
 * A run that passes its timeout gets SIGTERM, then SIGKILL 2 s later, for
 * the whole group; a run that floods stdout is killed at once; a run that
 * is still going when its next turn comes is skipped (counted). None of it
 * blocks the agent's loop or another script.
 *
 * Every run ends in one check result named after the script: for Nagios
 * plugins their own state and text, for JSON and Prometheus output OK when
 * it exited 0 and parsed, else UNKNOWN with the reason (exit status, signal,
 * timeout, the parse error with its line). Records in the output (metrics,
 * events, checks) go to the sink. */
#ifndef XL_EXEC_H
#define XL_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/records.h"
#include "common/config.h"

/* One inputs.exec[] item. */
struct xl_exec_cfg {
    char *name;                /* command entries: the check name (default: argv[0]'s base) */
    char *dir;                 /* a directory of scripts ... */
    struct xl_strlist command; /* ... or one command: argv, no shell */
    int64_t interval;
    int64_t timeout;
    char *format;              /* auto | json | nagios | prometheus */
    int64_t max_output;
    int64_t concurrency;
    char *user;
    char *cwd;
    struct xl_kvlist env;
};

extern const struct xl_cfg_key xl_exec_cfg_keys[];

struct xl_exec_stats {
    uint64_t runs;      /* runs finished */
    uint64_t failed;    /* runs whose check was not OK */
    uint64_t timeouts;  /* runs killed at their timeout */
    uint64_t floods;    /* runs killed for output over max_output */
    uint64_t skipped;   /* turns skipped: the previous run was still going */
    uint64_t running;   /* processes now */
    uint64_t scripts;   /* scripts known now */
};

struct xl_exec;

/* Check the entries (dir xor command, format, user exists, dir exists)
 * and start their timers. prefix resolves relative dirs. The sink gets
 * records on the loop thread. XL_EINVAL names the entry: "inputs.exec[1]:
 * user: no such user 'nagois'". */
xl_rc xl_exec_start(uv_loop_t *loop, const char *prefix, const struct xl_exec_cfg *cfgs,
                    size_t n, const struct xl_record_sink *sink, struct xl_exec **out,
                    struct xl_err *err);
/* Kill running scripts (SIGKILL to their groups), close every handle and
 * free once they are closed. NULL is fine. */
void xl_exec_stop(struct xl_exec *ex);
void xl_exec_stats(const struct xl_exec *ex, struct xl_exec_stats *out);

#endif
