/* xluo-server: start-up, the signal loop and shutdown. */
#include "jarena.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/units.h"

#define MAINTAIN_EVERY_MS 60000

/* Use the configured token, or the one kept in data/<file>, or make one and
 * keep it there (mode 0600) so that a server is never left open. */
static xl_rc load_token(const char *configured, const char *data, const char *file, char **out,
                        struct xl_err *err)
{
    char path[4096], buf[128];
    unsigned char rnd[24];
    xl_rc rc;

    if (configured && *configured) {
        *out = xl_strdup(configured);
        return *out ? XL_OK : xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof(path), "%s/%s", data, file);
    rc = xl_file_read_small(path, buf, sizeof(buf), 1, err);
    if (rc == XL_OK) {
        if (!buf[0])
            return xl_err_set(err, XL_EIO, "%s: empty token file", path);
        *out = xl_strdup(buf);
        return *out ? XL_OK : xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    if (rc != XL_ENOENT)
        return rc;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return xl_err_sys(err, XL_EIO, errno, "getrandom");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
    buf[2 * sizeof(rnd)] = '\n';
    if ((rc = xl_file_write_atomic(path, buf, 2 * sizeof(rnd) + 1, 0600, err)) != XL_OK)
        return rc;
    buf[2 * sizeof(rnd)] = '\0';
    xl_log_warn("server", "%s is not set in the config: generated one in %s", file, path);
    *out = xl_strdup(buf);
    return *out ? XL_OK : xl_err_set(err, XL_ENOMEM, "out of memory");
}

static xl_rc server_open(struct xl_server *s, struct xl_err *err)
{
    struct xl_server_cfg *c = s->cfg;
    struct xl_tsdb_opts to = {0};
    struct xl_http_opts ho = {0};
    char *path;
    xl_rc rc;

    if ((rc = xl_mkdirs(c->paths.data_path, err)) != XL_OK)
        return rc;
    if ((rc = load_token(c->agent_token, c->paths.data_path, "agent_token", &s->agent_token, err)) ||
        (rc = load_token(c->api_token, c->paths.data_path, "api_token", &s->api_token, err)))
        return rc;
    if (!(path = xl_path_join(c->paths.data_path, "server.db")))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    rc = xl_registry_open(path, c->offline_after_missed, &s->reg, err);
    xl_free(path);
    if (rc != XL_OK)
        return rc;
    if (!(path = xl_path_join(c->paths.data_path, "metrics")))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    to.dir = path;
    to.sync = strcmp(c->store.sync, "none") == 0 ? XL_TSDB_SYNC_NONE : XL_TSDB_SYNC_ALWAYS;
    to.flush_interval_ms = c->store.flush_interval;
    to.wal_max_bytes = c->store.wal_max_size;
    to.retention_ms = c->store.retention;
    rc = xl_tsdb_open(&to, &s->tsdb, err);
    xl_free(path);
    if (rc != XL_OK)
        return rc;
    if (*xl_tsdb_replay_detail(s->tsdb))
        xl_log_warn("server", "metric store recovered from a torn write-ahead log: %s",
                    xl_tsdb_replay_detail(s->tsdb));
    if (!(path = xl_path_join(c->paths.data_path, "logs.db")))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    {
        struct xl_logstore_opts lo = {.path = path,
                                      .retention_ms = c->logs.retention,
                                      .max_bytes = c->logs.max_size,
                                      .sync_full = to.sync == XL_TSDB_SYNC_ALWAYS};
        rc = xl_logstore_open(&lo, &s->logs, err);
    }
    xl_free(path);
    if (rc != XL_OK)
        return rc;
    if (!(path = xl_path_join(c->paths.data_path, "checks.db")))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    {
        struct xl_checkstore_opts co = {.path = path,
                                        .history_retention_ms = c->checks.history_retention,
                                        .sync_full = to.sync == XL_TSDB_SYNC_ALWAYS};
        rc = xl_checkstore_open(&co, &s->checks, err);
    }
    xl_free(path);
    if (rc != XL_OK)
        return rc;
    if (!(path = xl_path_join(c->paths.data_path, "events.db")))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    {
        struct xl_eventstore_opts eo = {.path = path,
                                        .retention_ms = c->events.retention,
                                        .sync_full = to.sync == XL_TSDB_SYNC_ALWAYS};
        rc = xl_eventstore_open(&eo, &s->events, err);
    }
    xl_free(path);
    if (rc != XL_OK || (rc = xl_live_new(&s->live, err)) != XL_OK ||
        (rc = xl_server_consumers_start(s, err)) != XL_OK)
        return rc;
    s->limits.max_records = (size_t)c->max_records;
    s->limits.max_age_ms = c->max_sample_age;
    s->limits.max_skew_ms = c->max_clock_skew;
    ho.listen = c->listen;
    ho.threads = (unsigned)c->threads;
    ho.max_body = (size_t)c->max_body;
    ho.agent_token = s->agent_token;
    ho.api_token = s->api_token;
    ho.routes = xl_server_routes;
    ho.app = s;
    return xl_http_start(&ho, &s->http, err);
}

static void server_close(struct xl_server *s)
{
    struct xl_err err = {0};

    /* Stop taking requests first, so that nothing is acknowledged after the
     * store is closed; the store's close checkpoints the head. The
     * consumers go on until the last ingest request has its answer. */
    xl_http_stop(s->http);
    xl_consumers_stop(s->consumers);
    if (s->reg && xl_registry_flush(s->reg, &err) != XL_OK)
        xl_log_error("server", "registry flush: %s", err.msg);
    xl_registry_close(s->reg);
    xl_live_free(s->live);
    xl_logstore_close(s->logs);
    xl_checkstore_close(s->checks);
    xl_eventstore_close(s->events);
    xl_tsdb_close(s->tsdb);
    xl_free(s->agent_token);
    xl_free(s->api_token);
}

/* Retention of the event store and of the check history (the log and
 * metric stores run their own). */
static void maintain(struct xl_server *s)
{
    struct xl_err err = {0};

    if (xl_eventstore_maintain(s->events, xl_now_ms(), &err) != XL_OK)
        xl_log_rl(XL_LOG_ERROR, 600, "server", "event retention: %s", err.msg);
    if (xl_checkstore_maintain(s->checks, xl_now_ms(), &err) != XL_OK)
        xl_log_rl(XL_LOG_ERROR, 600, "server", "check history retention: %s", err.msg);
}

int xl_server_run(void *cfgp, const struct xl_daemon_opts *opts)
{
    struct xl_server s = {.cfg = cfgp, .started_ms = xl_now_ms()};
    struct xl_err err = {0};
    struct timespec tick = {1, 0};
    int64_t last_maint = xl_mono_ms();
    enum xl_log_level lvl;
    sigset_t set;
    int sig, code = 0;

    if (!opts->debug && xl_log_level_parse(s.cfg->log_level, &lvl) == XL_OK)
        xl_log_set_level(lvl);
    xl_jarena_install();
    /* Block the signals we wait for before any thread exists, so every
     * thread inherits the mask and only sigtimedwait below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (server_open(&s, &err) != XL_OK) {
        xl_log_error("server", "%s", err.msg);
        if (opts->foreground && opts->ready_fd < 0)
            fprintf(stderr, "xluo-server: %s\n", err.msg);
        xl_daemon_ready(opts, false, err.msg);
        code = 1;
        goto out;
    }
    xl_log_info("server", "listening on %s (port %u), data in %s", s.cfg->listen,
                xl_http_port(s.http), s.cfg->paths.data_path);
    xl_daemon_ready(opts, true, NULL);
    for (;;) {
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            xl_log_info("server", "signal %d: shutting down", sig);
            break;
        }
        if (sig == SIGHUP) {
            if (xl_log_reopen(&err) != XL_OK)
                xl_log_error("server", "%s", err.msg);
            xl_log_info("server", "SIGHUP: log reopened");
        }
        if (xl_registry_flush(s.reg, &err) != XL_OK)
            xl_log_rl(XL_LOG_ERROR, 60, "server", "registry: %s", err.msg);
        if (xl_mono_ms() - last_maint >= MAINTAIN_EVERY_MS) {
            maintain(&s);
            last_maint = xl_mono_ms();
        }
    }
out:
    server_close(&s);
    return code;
}
