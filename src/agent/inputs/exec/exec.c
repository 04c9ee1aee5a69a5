/* xluo-agent exec input: scheduling, running and reading scripts (see
 * exec.h). Everything runs on the agent's loop: uv_spawn, pipes, timers. */
#define _GNU_SOURCE
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/units.h"
#include "parse.h"

#define MOD "exec"
/* Kept of stderr, for the check's text when a run fails. */
#define STDERR_KEEP 4096
/* After SIGTERM at the timeout, SIGKILL this much later. */
#define KILL_GRACE_MS 2000
/* After the script exits, how long a process it left behind may hold its
 * stdout open before the group is killed. */
#define LINGER_MS 1000
/* The first run of each script is spread over this much (or the
 * interval, if shorter), so that a directory of scripts does not start at
 * once. */
#define SPLAY_MAX_MS 5000

#define OFF(f) offsetof(struct xl_exec_cfg, f)

const struct xl_cfg_key xl_exec_cfg_keys[] = {
    {.name = "dir", .type = XL_CFG_STR, .offset = OFF(dir),
     .desc = "run every executable file in this directory (relative to the prefix); files "
             "starting with '.', ending in '~' or '.disabled' are skipped"},
    {.name = "command", .type = XL_CFG_STRLIST, .offset = OFF(command),
     .desc = "or run this one command: [path, arg, ...] (no shell)"},
    {.name = "name", .type = XL_CFG_STR, .offset = OFF(name),
     .desc = "check name of a command (default: its file name)"},
    {.name = "interval", .type = XL_CFG_DURATION, .def = "60s", .offset = OFF(interval),
     .min = 100, .max = 86400000, .desc = "how often each script runs"},
    {.name = "timeout", .type = XL_CFG_DURATION, .def = "30s", .offset = OFF(timeout),
     .min = 10, .max = 86400000,
     .desc = "then its process group gets SIGTERM, and SIGKILL 2s later"},
    {.name = "format", .type = XL_CFG_STR, .def = "auto", .offset = OFF(format),
     .choices = "auto|json|nagios|prometheus",
     .desc = "what the scripts print; auto: JSON if it starts with { or [, Prometheus text if "
             "every line is a sample or # comment, else a Nagios plugin"},
    {.name = "max_output", .type = XL_CFG_SIZE, .def = "1MiB", .offset = OFF(max_output),
     .min = 1024, .max = 64LL << 20,
     .desc = "a script printing more is killed and reported UNKNOWN"},
    {.name = "concurrency", .type = XL_CFG_INT, .def = "4", .offset = OFF(concurrency),
     .min = 1, .max = 256, .desc = "scripts of this entry running at once; others wait"},
    {.name = "user", .type = XL_CFG_STR, .offset = OFF(user),
     .desc = "run as this user when the agent runs as root (default: the agent's user)"},
    {.name = "cwd", .type = XL_CFG_STR, .offset = OFF(cwd),
     .desc = "working directory (default: the script's directory)"},
    {.name = "env", .type = XL_CFG_MAP, .offset = OFF(env),
     .desc = "environment variables added to the agent's"},
    {NULL},
};

struct entry;

struct script {
    struct entry *en;
    struct script *next;      /* the entry's list */
    struct script *qnext;     /* the entry's wait queue */
    char *path;               /* what is run (argv[0]) */
    char *name;               /* the check name */
    uv_timer_t timer;         /* its turns */
    bool queued, running, gone, seen;
    /* The current run. */
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t kill_timer;
    struct xl_buf obuf, ebuf;
    int64_t started_mono, started_ms;
    int64_t exit_status;
    int term_signal;
    bool exited, out_open, err_open, timer_open, timed_out, flooded, lingered;
    bool has_exit;            /* exit_status/term_signal are the process's */
    char *spawn_error;        /* uv_spawn failed: the check's text */
    int closing;              /* run handles not yet closed */
};

struct entry {
    struct xl_exec *ex;
    const struct xl_exec_cfg *cfg;
    size_t index;
    char *dir;                /* resolved; NULL for a command entry */
    enum xl_exec_format fmt;
    char **envp;              /* NULL: inherit */
    char **argv;              /* a command entry's, NULL-terminated (borrowed strings) */
    bool setuid;
    uv_uid_t uid;
    uv_gid_t gid;
    struct script *scripts;
    struct script *qhead, *qtail;
    unsigned running;
    uv_timer_t scan_timer;    /* dir entries: rescan */
    bool scanning;            /* scan_timer is initialised */
};

struct xl_exec {
    uv_loop_t *loop;
    struct xl_record_sink sink;
    struct entry *entries;
    size_t n;
    struct xl_exec_stats st;
    int open_handles;         /* freed when it reaches 0 after stop */
    bool stopping;
};

static void run_next(struct entry *en);
static void maybe_free(struct xl_exec *ex);

static const struct xl_parse_limits parse_limits = {.max_records = 100000,
                                                    .max_event_bytes = 64 * 1024};

/* ---- Records ---------------------------------------------------------- */

static void emit_check(struct script *sc, enum xl_check_state state, const char *output,
                       const char *long_output)
{
    struct xl_exec *ex = sc->en->ex;
    /* What a script printed may be any bytes: shipped as valid UTF-8 of the
     * same size, so the server's limits hold (common/check.h). */
    char *out = xl_strdup(output ? output : ""), *lng = long_output ? xl_strdup(long_output) : NULL;
    struct xl_check_rec c = {
        .name = sc->name, .state = state, .output = out ? out : "(out of memory)",
        .long_output = lng,
        .exit_code = sc->has_exit && !sc->term_signal ? (int)sc->exit_status : -1,
        .duration_ms = sc->started_mono ? xl_mono_ms() - sc->started_mono : -1,
        .interval_ms = sc->en->cfg->interval,
        .source = sc->path, .ts_ms = sc->started_ms ? sc->started_ms : xl_now_ms()};

    xl_text_sanitize(out);
    xl_text_sanitize(lng);
    ex->st.runs++;
    if (state != XL_CHECK_OK)
        ex->st.failed++;
    if (ex->sink.check)
        ex->sink.check(ex->sink.ctx, &c);
    xl_free(out);
    xl_free(lng);
}

/* The parser's sink during a run: metrics and events go straight on; a
 * Nagios result is the run's own check, other checks are the script's. */
struct run_sink {
    struct script *sc;
    bool got_own;
    enum xl_check_state state;
    char *output, *long_output;
};

static void rs_metric(void *ctx, const char *name, const struct xl_label *labels, size_t n,
                      double v, int64_t ts)
{
    struct run_sink *rs = ctx;
    struct xl_exec *ex = rs->sc->en->ex;

    if (ex->sink.metric)
        ex->sink.metric(ex->sink.ctx, name, labels, n, v, ts);
}

static void rs_event(void *ctx, const char *type, const json_t *fields, int64_t ts)
{
    struct run_sink *rs = ctx;
    struct xl_exec *ex = rs->sc->en->ex;

    if (ex->sink.event)
        ex->sink.event(ex->sink.ctx, type, fields, rs->sc->path, ts);
}

static void rs_check(void *ctx, const struct xl_check_result *c)
{
    struct run_sink *rs = ctx;
    struct script *sc = rs->sc;
    struct xl_exec *ex = sc->en->ex;

    if (!rs->got_own && strcmp(c->name, sc->name) == 0) {
        rs->got_own = true;
        rs->state = c->state;
        rs->output = xl_strdup(c->output ? c->output : "");
        rs->long_output = xl_strdup(c->long_output ? c->long_output : "");
        return;
    }
    if (ex->sink.check) {
        struct xl_check_rec r = {.name = c->name, .state = c->state, .output = c->output,
                                 .long_output = c->long_output, .exit_code = -1,
                                 .duration_ms = -1, .interval_ms = sc->en->cfg->interval,
                                 .source = sc->path, .ts_ms = c->ts_ms};
        ex->sink.check(ex->sink.ctx, &r);
    }
}

/* The first line of stderr, for messages ("" if none). */
static const char *stderr_head(struct script *sc, char *line, size_t cap)
{
    const char *s = sc->ebuf.data ? sc->ebuf.data : "";
    size_t n;

    while (*s == '\n' || *s == ' ')
        s++;
    n = strcspn(s, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(line, s, n);
    line[n] = '\0';
    return line;
}

/* How the run ended, when that is the story: "exited with status 2",
 * "killed by signal 9". */
static void status_text(struct script *sc, char *out, size_t cap)
{
    char head[256];

    if (sc->term_signal)
        snprintf(out, cap, "killed by signal %d (%s)", sc->term_signal,
                 strsignal(sc->term_signal));
    else
        snprintf(out, cap, "exited with status %lld", (long long)sc->exit_status);
    stderr_head(sc, head, sizeof(head));
    if (*head)
        snprintf(out + strlen(out), cap - strlen(out), ": %s", head);
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

/* The run is over and every handle of it closed: make records of it. */
static void report(struct script *sc)
{
    const char *s = sc->obuf.data ? sc->obuf.data : "";
    size_t len = sc->obuf.len;
    struct run_sink rs = {.sc = sc};
    struct xl_rec_sink sink = {.metric = rs_metric, .check = rs_check, .event = rs_event,
                               .ctx = &rs};
    enum xl_exec_format fmt = sc->en->fmt;
    struct xl_err err = {0};
    char text[1280], unit[32];
    xl_rc rc;

    if (sc->spawn_error) {
        sc->started_mono = 0;
        emit_check(sc, XL_CHECK_UNKNOWN, sc->spawn_error, NULL);
        xl_free(sc->spawn_error);
        sc->spawn_error = NULL;
        return;
    }
    if (sc->timed_out) {
        sc->en->ex->st.timeouts++;
        xl_duration_fmt(sc->en->cfg->timeout, unit, sizeof(unit));
        snprintf(text, sizeof(text), "timed out after %s: process group killed", unit);
        emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
        return;
    }
    if (sc->flooded) {
        sc->en->ex->st.floods++;
        xl_size_fmt(sc->en->cfg->max_output, unit, sizeof(unit));
        snprintf(text, sizeof(text), "printed more than max_output (%s): killed", unit);
        emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
        return;
    }
    if (fmt == XL_FMT_AUTO)
        fmt = xl_exec_format_detect(s, len);
    if (fmt == XL_FMT_NAGIOS && sc->term_signal) {
        status_text(sc, text, sizeof(text));
        emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
        return;
    }
    switch (fmt) {
    case XL_FMT_NAGIOS:
        rc = xl_parse_nagios(s, len, (int)sc->exit_status, sc->name, NULL, 0, sc->started_ms,
                             &parse_limits, &sink, &err);
        break;
    case XL_FMT_PROMETHEUS:
        rc = xl_parse_prometheus(s, len, NULL, 0, sc->started_ms, &parse_limits, &sink, &err);
        break;
    default:
        rc = xl_parse_json_records(s, len, sc->started_ms, &parse_limits, &sink, &err);
        break;
    }
    if (rc != XL_OK) {
        char st[640] = "";
        if (sc->term_signal || sc->exit_status)
            status_text(sc, st, sizeof(st));
        snprintf(text, sizeof(text), "output is not valid %s: %s%s%s", xl_exec_format_str(fmt),
                 err.msg, *st ? "; " : "", st);
        emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
    } else if (rs.got_own && fmt == XL_FMT_NAGIOS && blank(s, len) &&
               (sc->exit_status || sc->ebuf.len)) {
        /* A plugin that said nothing on stdout: say how it ended. */
        status_text(sc, text, sizeof(text));
        emit_check(sc, rs.state, text, NULL);
    } else if (rs.got_own) {
        emit_check(sc, rs.state, rs.output, rs.long_output);
    } else if (sc->term_signal || sc->exit_status) {
        status_text(sc, text, sizeof(text));
        emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
    } else {
        snprintf(text, sizeof(text), "ran (%s output, %zu bytes)", xl_exec_format_str(fmt), len);
        emit_check(sc, XL_CHECK_OK, text, NULL);
    }
    xl_free(rs.output);
    xl_free(rs.long_output);
}

/* ---- Running ---------------------------------------------------------- */

static void script_free(struct script *sc)
{
    xl_buf_cleanup(&sc->obuf);
    xl_buf_cleanup(&sc->ebuf);
    xl_free(sc->path);
    xl_free(sc->name);
    xl_free(sc);
}

static void on_script_timer_close(uv_handle_t *h)
{
    struct script *sc = h->data;
    struct xl_exec *ex = sc->en->ex;

    script_free(sc);
    ex->open_handles--;
    maybe_free(ex);
}

/* Unlink sc from its entry and close its timer; freed in the callback. Not
 * while it runs (run_done calls this for scripts marked gone). */
static void script_drop(struct script *sc)
{
    struct script **pp = &sc->en->scripts;

    while (*pp && *pp != sc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = sc->next;
    sc->en->ex->st.scripts--;
    uv_close((uv_handle_t *)&sc->timer, on_script_timer_close);
}

static void kill_group(struct script *sc, int sig)
{
    if (sc->proc.pid > 0 && kill(-sc->proc.pid, sig) != 0 && errno != ESRCH)
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s: kill: %s", sc->name, strerror(errno));
}

static void run_handle_closed(uv_handle_t *h)
{
    struct script *sc = h->data;
    struct entry *en = sc->en;
    struct xl_exec *ex = en->ex;

    ex->open_handles--;
    if (--sc->closing > 0)
        return;
    sc->running = false;
    en->running--;
    ex->st.running--;
    if (!ex->stopping)
        report(sc);
    xl_buf_reset(&sc->obuf);
    xl_buf_reset(&sc->ebuf);
    if (sc->gone || ex->stopping)
        script_drop(sc);
    if (!ex->stopping)
        run_next(en);
    maybe_free(ex);
}

static void close_run_handle(struct script *sc, uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, run_handle_closed);
}

/* Close the run's handles once the process has exited and both pipes are
 * at EOF (or given up on). */
static void maybe_finish(struct script *sc)
{
    if (!sc->exited || sc->out_open || sc->err_open)
        return;
    close_run_handle(sc, (uv_handle_t *)&sc->kill_timer, &sc->timer_open);
    if (!uv_is_closing((uv_handle_t *)&sc->proc))
        uv_close((uv_handle_t *)&sc->proc, run_handle_closed);
}

static void stop_reading(struct script *sc)
{
    close_run_handle(sc, (uv_handle_t *)&sc->out, &sc->out_open);
    close_run_handle(sc, (uv_handle_t *)&sc->err, &sc->err_open);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct script *sc = t->data;

    if (sc->exited) {
        /* Something it started still holds the pipes. */
        sc->lingered = true;
        kill_group(sc, SIGKILL);
        stop_reading(sc);
        maybe_finish(sc);
    } else if (!sc->timed_out) {
        sc->timed_out = true;
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s: timed out after %lld ms: killing its process group",
                  sc->name, (long long)sc->en->cfg->timeout);
        kill_group(sc, SIGTERM);
        uv_timer_start(&sc->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    } else {
        kill_group(sc, SIGKILL);
        stop_reading(sc);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct script *sc = p->data;

    sc->exited = sc->has_exit = true;
    sc->exit_status = status;
    sc->term_signal = sig;
    if ((sc->out_open || sc->err_open) && sc->timer_open)
        uv_timer_start(&sc->kill_timer, on_kill_timer, LINGER_MS, 0);
    maybe_finish(sc);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char chunk[65536];

    (void)h;
    (void)hint;
    /* One loop thread: a static chunk, copied into the run's buffer. */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct script *sc = st->data;
    bool is_out = st == (uv_stream_t *)&sc->out;

    if (n < 0) {
        if (is_out)
            close_run_handle(sc, (uv_handle_t *)&sc->out, &sc->out_open);
        else
            close_run_handle(sc, (uv_handle_t *)&sc->err, &sc->err_open);
        maybe_finish(sc);
        return;
    }
    if (!is_out) {
        size_t room = STDERR_KEEP - sc->ebuf.len;
        xl_buf_add(&sc->ebuf, buf->base, (size_t)n < room ? (size_t)n : room);
        return;
    }
    if (xl_buf_add(&sc->obuf, buf->base, (size_t)n) != XL_OK && !sc->flooded) {
        sc->flooded = true;
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s: more than max_output on stdout: killing it",
                  sc->name);
        kill_group(sc, SIGKILL);
        stop_reading(sc);
        maybe_finish(sc);
    }
}

/* A turn that cannot start a process still ends in a check result. */
static void fail_now(struct script *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_now(struct script *sc, const char *fmt, ...)
{
    char text[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sc->has_exit = false;
    sc->started_mono = 0;
    sc->started_ms = xl_now_ms();
    emit_check(sc, XL_CHECK_UNKNOWN, text, NULL);
}

/* Start sc now. Returns false if it could not (reported as a check). */
static bool spawn(struct script *sc)
{
    struct entry *en = sc->en;
    struct xl_exec *ex = en->ex;
    const struct xl_exec_cfg *c = en->cfg;
    uv_process_options_t o = {0};
    uv_stdio_container_t io[3];
    char *one[2] = {sc->path, NULL}, **argv, *cwd = NULL, *slash;
    struct stat stt;
    int r;

    if (stat(sc->path, &stt) != 0) {
        fail_now(sc, "cannot run %s: %s", sc->path, strerror(errno));
        return false;
    }
    if (!S_ISREG(stt.st_mode) || !(stt.st_mode & 0111)) {
        fail_now(sc, "%s is not executable (mode %04o): chmod +x it, or rename it *.disabled",
                 sc->path, (unsigned)(stt.st_mode & 07777));
        return false;
    }
    argv = en->dir ? one : en->argv;
    if (c->cwd && *c->cwd) {
        cwd = c->cwd;
    } else if ((slash = strrchr(sc->path, '/')) && slash != sc->path) {
        cwd = xl_strndup(sc->path, (size_t)(slash - sc->path));
    }
    uv_pipe_init(ex->loop, &sc->out, 0);
    uv_pipe_init(ex->loop, &sc->err, 0);
    uv_timer_init(ex->loop, &sc->kill_timer);
    sc->out.data = sc->err.data = sc->kill_timer.data = sc->proc.data = sc;
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&sc->out;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)&sc->err;
    o.exit_cb = on_exit_cb;
    o.file = argv[0];
    o.args = argv;
    o.env = en->envp;
    o.cwd = cwd;
    o.stdio = io;
    o.stdio_count = 3;
    /* Its own session and process group, so that a timeout kills all. */
    o.flags = UV_PROCESS_DETACHED;
    if (en->setuid) {
        o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = en->uid;
        o.gid = en->gid;
    }
    sc->exited = sc->has_exit = sc->timed_out = sc->flooded = sc->lingered = false;
    sc->exit_status = 0;
    sc->term_signal = 0;
    sc->started_mono = xl_mono_ms();
    sc->started_ms = xl_now_ms();
    r = uv_spawn(ex->loop, &sc->proc, &o);
    if (cwd != c->cwd)
        xl_free(cwd);
    /* Four handles now, whatever uv_spawn did (a failed spawn still needs
     * its process handle closed): each run_handle_closed counts one. */
    sc->out_open = sc->err_open = sc->timer_open = true;
    sc->closing = 4;
    ex->open_handles += 4;
    sc->running = true;
    en->running++;
    ex->st.running++;
    if (r != 0) {
        char text[600];

        snprintf(text, sizeof(text), "cannot run %s: %s", sc->path, uv_strerror(r));
        sc->spawn_error = xl_strdup(text);
        sc->exited = true;
        stop_reading(sc);
        maybe_finish(sc);
        return false;
    }
    uv_read_start((uv_stream_t *)&sc->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&sc->err, on_alloc, on_read);
    uv_timer_start(&sc->kill_timer, on_kill_timer, (uint64_t)c->timeout, 0);
    return true;
}

/* Start waiting scripts while the entry has room. */
static void run_next(struct entry *en)
{
    struct script *sc;

    while (en->qhead && en->running < (unsigned)en->cfg->concurrency) {
        sc = en->qhead;
        en->qhead = sc->qnext;
        if (!en->qhead)
            en->qtail = NULL;
        sc->qnext = NULL;
        sc->queued = false;
        if (sc->gone) {
            script_drop(sc);
            continue;
        }
        spawn(sc);
    }
}

static void on_turn(uv_timer_t *t)
{
    struct script *sc = t->data;
    struct entry *en = sc->en;

    if (sc->running || sc->queued) {
        en->ex->st.skipped++;
        xl_log_rl(XL_LOG_WARN, 60, MOD, "%s: still %s from its last turn: this one is skipped",
                  sc->name, sc->running ? "running" : "waiting to run");
        return;
    }
    sc->queued = true;
    if (en->qtail)
        en->qtail->qnext = sc;
    else
        en->qhead = sc;
    en->qtail = sc;
    run_next(en);
}

/* A stable spread of first turns: FNV-1a of the path. */
static uint64_t splay(const char *path, int64_t interval)
{
    uint64_t h = 1469598103934665603ULL, span = (uint64_t)(interval < SPLAY_MAX_MS ? interval : SPLAY_MAX_MS);

    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return span ? h % span : 0;
}

static struct script *script_add(struct entry *en, const char *path, const char *name)
{
    struct script *sc = xl_calloc(1, sizeof(*sc));

    if (!sc || !(sc->path = xl_strdup(path)) || !(sc->name = xl_strdup(name))) {
        if (sc)
            script_free(sc);
        return NULL;
    }
    sc->en = en;
    xl_buf_init(&sc->obuf, (size_t)en->cfg->max_output);
    xl_buf_init(&sc->ebuf, STDERR_KEEP);
    uv_timer_init(en->ex->loop, &sc->timer);
    sc->timer.data = sc;
    en->ex->open_handles++;
    en->ex->st.scripts++;
    sc->next = en->scripts;
    en->scripts = sc;
    uv_timer_start(&sc->timer, on_turn, splay(path, en->cfg->interval),
                   (uint64_t)en->cfg->interval);
    return sc;
}

/* Files of a scripts directory that are not scripts. */
static bool skipped_name(const char *n)
{
    size_t len = strlen(n);

    return n[0] == '.' || (len && n[len - 1] == '~') || fnmatch("*.disabled", n, 0) == 0 ||
           fnmatch("*.dpkg-*", n, 0) == 0 || fnmatch("*.rpm*", n, 0) == 0 ||
           fnmatch("*.swp", n, 0) == 0;
}

/* Sync the entry's scripts with its directory: new files get a timer,
 * files gone are dropped (after their run, if one is going). */
static void scan(struct entry *en)
{
    struct script *sc, *next;
    struct dirent *de;
    DIR *d = opendir(en->dir);

    if (!d) {
        xl_log_rl(XL_LOG_WARN, 300, MOD, "inputs.exec[%zu]: %s: %s", en->index, en->dir,
                  strerror(errno));
        return;
    }
    for (sc = en->scripts; sc; sc = sc->next)
        sc->seen = false;
    while ((de = readdir(d))) {
        struct stat st;
        char *path;

        if (skipped_name(de->d_name))
            continue;
        if (!(path = xl_path_join(en->dir, de->d_name)))
            break;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            xl_free(path);
            continue;
        }
        for (sc = en->scripts; sc && strcmp(sc->path, path) != 0; sc = sc->next)
            ;
        if (!sc && !xl_check_name_valid(de->d_name, strlen(de->d_name))) {
            /* Its results could not be shipped: say so instead. */
            xl_log_rl(XL_LOG_WARN, 300, MOD,
                      "%s: skipped: a script's file name is its check name, which must be 1 to "
                      "%d bytes of UTF-8 without control characters",
                      path, XL_CHECK_NAME_MAX);
            xl_free(path);
            continue;
        }
        if (!sc && !(sc = script_add(en, path, de->d_name)))
            xl_log_rl(XL_LOG_ERROR, 60, MOD, "out of memory adding %s", path);
        else if (sc)
            sc->seen = true;
        xl_free(path);
    }
    closedir(d);
    for (sc = en->scripts; sc; sc = next) {
        next = sc->next;
        if (sc->seen || sc->gone)
            continue;
        xl_log_info(MOD, "%s is gone: no longer run", sc->path);
        sc->gone = true;
        uv_timer_stop(&sc->timer);
        if (!sc->running && !sc->queued)
            script_drop(sc);
    }
}

static void on_scan(uv_timer_t *t)
{
    scan(t->data);
}

static void on_scan_close(uv_handle_t *h)
{
    struct entry *en = h->data;
    struct xl_exec *ex = en->ex;

    ex->open_handles--;
    maybe_free(ex);
}

/* The environment: the agent's, then the entry's env, then for another
 * user HOME, USER and LOGNAME. NULL (inherit) when nothing changes. */
static xl_rc build_env(struct entry *en, const struct passwd *pw)
{
    extern char **environ;
    const struct xl_kvlist *kv = &en->cfg->env;
    size_t n = 0, cap;
    char **v;

    if (!kv->n && !pw)
        return XL_OK;
    while (environ[n])
        n++;
    cap = n + kv->n + 4;
    if (!(v = xl_calloc(cap, sizeof(*v))))
        return XL_ENOMEM;
    en->envp = v;
    n = 0;
    for (char **e = environ; *e; e++) {
        bool over = false;
        size_t klen = strcspn(*e, "=");

        for (size_t i = 0; i < kv->n && !over; i++)
            over = strlen(kv->k[i]) == klen && strncmp(kv->k[i], *e, klen) == 0;
        if (pw && !over)
            over = (klen == 4 && strncmp(*e, "HOME", 4) == 0) ||
                   (klen == 4 && strncmp(*e, "USER", 4) == 0) ||
                   (klen == 7 && strncmp(*e, "LOGNAME", 7) == 0);
        if (!over && !(v[n++] = xl_strdup(*e)))
            return XL_ENOMEM;
    }
    for (size_t i = 0; i < kv->n; i++)
        if (!(v[n++] = xl_asprintf("%s=%s", kv->k[i], kv->v[i])))
            return XL_ENOMEM;
    if (pw && (!(v[n++] = xl_asprintf("HOME=%s", pw->pw_dir)) ||
               !(v[n++] = xl_asprintf("USER=%s", pw->pw_name)) ||
               !(v[n++] = xl_asprintf("LOGNAME=%s", pw->pw_name))))
        return XL_ENOMEM;
    return XL_OK;
}

static xl_rc entry_init(struct xl_exec *ex, struct entry *en, const char *prefix,
                        struct xl_err *err)
{
    const struct xl_exec_cfg *c = en->cfg;
    struct passwd *pw = NULL;
    const char *base, *name;
    xl_rc rc;

    if (!!(c->dir && *c->dir) == !!c->command.n)
        return xl_err_set(err, XL_EINVAL, "inputs.exec[%zu]: give either dir or command",
                          en->index);
    if (!xl_exec_format_parse(c->format, &en->fmt))
        return xl_err_set(err, XL_EINVAL, "inputs.exec[%zu]: format: unknown '%s'", en->index,
                          c->format);
    if (c->user && *c->user) {
        if (!(pw = getpwnam(c->user)))
            return xl_err_set(err, XL_EINVAL, "inputs.exec[%zu]: user: no such user '%s'",
                              en->index, c->user);
        if (geteuid() == 0) {
            en->setuid = true;
            en->uid = pw->pw_uid;
            en->gid = pw->pw_gid;
        } else {
            xl_log_warn(MOD, "inputs.exec[%zu]: user '%s' ignored: the agent does not run as "
                             "root, scripts run as the agent's user",
                        en->index, c->user);
            pw = NULL;
        }
    }
    if ((rc = build_env(en, pw)) != XL_OK)
        return xl_err_set(err, rc, "out of memory");
    if (c->command.n) {
        if (c->command.v[0][0] != '/')
            return xl_err_set(err, XL_EINVAL,
                              "inputs.exec[%zu]: command: '%s' must be an absolute path",
                              en->index, c->command.v[0]);
        base = strrchr(c->command.v[0], '/');
        if (!(en->argv = xl_calloc(c->command.n + 1, sizeof(*en->argv))))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        memcpy(en->argv, c->command.v, c->command.n * sizeof(*en->argv));
        name = c->name && *c->name ? c->name : base + 1;
        if (!xl_check_name_valid(name, strlen(name)))
            return xl_err_set(err, XL_EINVAL,
                              "inputs.exec[%zu]: name: '%s' is not a check name (1 to %d bytes "
                              "of UTF-8 without control characters)",
                              en->index, name, XL_CHECK_NAME_MAX);
        if (!script_add(en, c->command.v[0], name))
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        return XL_OK;
    }
    if (c->dir[0] == '/')
        en->dir = xl_strdup(c->dir);
    else
        en->dir = xl_path_join(prefix, c->dir);
    if (!en->dir)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    {
        struct stat st;
        if (stat(en->dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return xl_err_set(err, XL_EINVAL, "inputs.exec[%zu]: dir: %s is not a directory",
                              en->index, en->dir);
    }
    uv_timer_init(ex->loop, &en->scan_timer);
    en->scan_timer.data = en;
    en->scanning = true;
    ex->open_handles++;
    scan(en);
    uv_timer_start(&en->scan_timer, on_scan, (uint64_t)c->interval, (uint64_t)c->interval);
    return XL_OK;
}

xl_rc xl_exec_start(uv_loop_t *loop, const char *prefix, const struct xl_exec_cfg *cfgs,
                    size_t n, const struct xl_record_sink *sink, struct xl_exec **out,
                    struct xl_err *err)
{
    struct xl_exec *ex = xl_calloc(1, sizeof(*ex));
    xl_rc rc = XL_OK;

    *out = NULL;
    if (!ex || !(ex->entries = xl_calloc(n ? n : 1, sizeof(*ex->entries)))) {
        xl_free(ex);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    ex->loop = loop;
    ex->sink = *sink;
    ex->n = n;
    for (size_t i = 0; i < n && rc == XL_OK; i++) {
        ex->entries[i] = (struct entry){.ex = ex, .cfg = &cfgs[i], .index = i};
        rc = entry_init(ex, &ex->entries[i], prefix, err);
    }
    if (rc != XL_OK) {
        xl_exec_stop(ex);
        return rc;
    }
    *out = ex;
    return XL_OK;
}

static void maybe_free(struct xl_exec *ex)
{
    if (!ex->stopping || ex->open_handles > 0)
        return;
    for (size_t i = 0; i < ex->n; i++) {
        struct entry *en = &ex->entries[i];

        for (char **e = en->envp; e && *e; e++)
            xl_free(*e);
        xl_free(en->envp);
        xl_free(en->argv);
        xl_free(en->dir);
    }
    xl_free(ex->entries);
    xl_free(ex);
}

void xl_exec_stop(struct xl_exec *ex)
{
    if (!ex || ex->stopping)
        return;
    ex->stopping = true;
    for (size_t i = 0; i < ex->n; i++) {
        struct entry *en = &ex->entries[i];
        struct script *sc, *next;

        if (en->scanning)
            uv_close((uv_handle_t *)&en->scan_timer, on_scan_close);
        en->qhead = en->qtail = NULL;
        for (sc = en->scripts; sc; sc = next) {
            next = sc->next;
            if (sc->running) {
                /* Dropped when its handles are closed. The process handle
                 * stays open until the exit callback: libuv reaps only
                 * children whose handle is open (no zombie per reload). */
                kill_group(sc, SIGKILL);
                stop_reading(sc);
                close_run_handle(sc, (uv_handle_t *)&sc->kill_timer, &sc->timer_open);
                maybe_finish(sc);
            } else {
                script_drop(sc);
            }
        }
    }
    maybe_free(ex);
}

void xl_exec_stats(const struct xl_exec *ex, struct xl_exec_stats *out)
{
    if (ex)
        *out = ex->st;
    else
        memset(out, 0, sizeof(*out));
}
