/* xluo-server: the check store (checks.h; docs/storage.md "Check store").
 *
 * Tables:
 *   checks         one row per (agent_id, name): the last result, and
 *                  `since`, the ts of the result that entered the state
 *   check_changes  one row per state change, the first result included
 *                  (from_state NULL); indexes (ts) for retention and
 *                  (host, name, ts) for a check's history
 * States are stored as their names, so the file reads well in sqlite3.
 *
 * Locks: wmu (the write connection and its statements); queries use the
 * read pool. */
#include "checks.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/units.h"
#include "sqlite.h"

#define WHO "checks"
#define SCHEMA_VERSION 1
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000
#define DEL_CHUNK 5000

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checks(agent_id TEXT NOT NULL, name TEXT NOT NULL,"
    " host TEXT NOT NULL, state TEXT NOT NULL, output TEXT NOT NULL, long_output TEXT,"
    " exit_code INTEGER, duration_ms INTEGER, source TEXT, ts INTEGER NOT NULL,"
    " since INTEGER NOT NULL, interval_ms INTEGER, received INTEGER NOT NULL,"
    " PRIMARY KEY(agent_id, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS check_changes(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
    " agent_id TEXT NOT NULL, host TEXT NOT NULL, name TEXT NOT NULL, from_state TEXT,"
    " to_state TEXT NOT NULL, output TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS check_changes_ts ON check_changes(ts);"
    "CREATE INDEX IF NOT EXISTS check_changes_check ON check_changes(host, name, ts);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1);";

/* Severity order of the listing: critical, warning, unknown, ok. */
#define SEVERITY_SQL                                                                               \
    "CASE state WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END"

struct xl_checkstore {
    struct xl_sql_store db;
    int64_t retention_ms;
    sqlite3_stmt *st_get, *st_put, *st_change;
    _Atomic uint64_t checks, results, ignored, changes, commits;
};

xl_rc xl_checkstore_open(const struct xl_checkstore_opts *o, struct xl_checkstore **out,
                         struct xl_err *err)
{
    struct xl_checkstore *cs;
    int64_t n = 0;
    xl_rc rc;

    *out = NULL;
    if (!(cs = xl_calloc(1, sizeof(*cs))))
        return xl_err_set(err, XL_ENOMEM, WHO ": out of memory");
    cs->retention_ms = o->history_retention_ms;
    if ((rc = xl_sql_store_open(&cs->db, o->path, o->sync_full, schema_sql, SCHEMA_VERSION, WHO,
                                err)) != XL_OK)
        goto fail;
    if (sqlite3_prepare_v3(cs->db.wdb,
                           "SELECT state, ts, since FROM checks WHERE agent_id = ?1 AND name = ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &cs->st_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(cs->db.wdb,
                           "INSERT OR REPLACE INTO checks(agent_id, name, host, state, output,"
                           " long_output, exit_code, duration_ms, source, ts, since, interval_ms,"
                           " received) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                           " ?13)",
                           -1, SQLITE_PREPARE_PERSISTENT, &cs->st_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(cs->db.wdb,
                           "INSERT INTO check_changes(ts, agent_id, host, name, from_state,"
                           " to_state, output) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, SQLITE_PREPARE_PERSISTENT, &cs->st_change, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, cs->db.wdb, WHO, "prepare");
        goto fail;
    }
    if ((rc = xl_sql_store_int(&cs->db, "SELECT count(*) FROM checks", &n, err)) != XL_OK)
        goto fail;
    atomic_store(&cs->checks, (uint64_t)n);
    *out = cs;
    return XL_OK;
fail:
    xl_checkstore_close(cs);
    return rc;
}

void xl_checkstore_close(struct xl_checkstore *cs)
{
    if (!cs)
        return;
    sqlite3_finalize(cs->st_get);
    sqlite3_finalize(cs->st_put);
    sqlite3_finalize(cs->st_change);
    xl_sql_store_close(&cs->db);
    xl_free(cs);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_opt_int(sqlite3_stmt *st, int i, bool has, int64_t v)
{
    if (has)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Apply one result inside the open transaction (under wmu). */
static xl_rc apply_one(struct xl_checkstore *cs, const struct xl_check_rec *r,
                       enum xl_check_outcome *outcome, bool *is_new, struct xl_err *err)
{
    const char *to = xl_check_state_str(r->state);
    char from[16] = "";
    int64_t since = r->ts_ms;
    bool known;
    int s;

    sqlite3_bind_text(cs->st_get, 1, r->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_get, 2, r->name, -1, SQLITE_STATIC);
    s = sqlite3_step(cs->st_get);
    known = s == SQLITE_ROW;
    if (known) {
        int64_t ts = sqlite3_column_int64(cs->st_get, 1);

        snprintf(from, sizeof(from), "%s", (const char *)sqlite3_column_text(cs->st_get, 0));
        if (strcmp(from, to) == 0)
            since = sqlite3_column_int64(cs->st_get, 2);
        if (r->ts_ms <= ts) {
            sqlite3_reset(cs->st_get);
            *outcome = XL_CHECK_IGNORED;
            return XL_OK;
        }
    }
    sqlite3_reset(cs->st_get);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return xl_sql_fail(err, cs->db.wdb, WHO, "read a check");
    *is_new = !known;
    *outcome = known && strcmp(from, to) == 0 ? XL_CHECK_SAME : XL_CHECK_CHANGED;
    sqlite3_bind_text(cs->st_put, 1, r->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_put, 2, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_put, 3, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_put, 4, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_put, 5, r->output, -1, SQLITE_STATIC);
    bind_opt_text(cs->st_put, 6, r->long_output);
    bind_opt_int(cs->st_put, 7, r->has_exit_code, r->exit_code);
    bind_opt_int(cs->st_put, 8, r->has_duration, r->duration_ms);
    bind_opt_text(cs->st_put, 9, r->source);
    sqlite3_bind_int64(cs->st_put, 10, r->ts_ms);
    sqlite3_bind_int64(cs->st_put, 11, since);
    bind_opt_int(cs->st_put, 12, r->has_interval, r->interval_ms);
    sqlite3_bind_int64(cs->st_put, 13, xl_now_ms());
    s = sqlite3_step(cs->st_put);
    sqlite3_reset(cs->st_put);
    if (s != SQLITE_DONE)
        return xl_sql_fail(err, cs->db.wdb, WHO, "store a check");
    if (*outcome != XL_CHECK_CHANGED)
        return XL_OK;
    sqlite3_bind_int64(cs->st_change, 1, r->ts_ms);
    sqlite3_bind_text(cs->st_change, 2, r->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_change, 3, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_change, 4, r->name, -1, SQLITE_STATIC);
    bind_opt_text(cs->st_change, 5, known ? from : NULL);
    sqlite3_bind_text(cs->st_change, 6, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(cs->st_change, 7, r->output, -1, SQLITE_STATIC);
    s = sqlite3_step(cs->st_change);
    sqlite3_reset(cs->st_change);
    if (s != SQLITE_DONE)
        return xl_sql_fail(err, cs->db.wdb, WHO, "store a state change");
    return XL_OK;
}

xl_rc xl_checkstore_apply(struct xl_checkstore *cs, const struct xl_check_rec *r, size_t n,
                          enum xl_check_outcome *outcome, struct xl_err *err)
{
    uint64_t added = 0, applied = 0, ignored = 0, changed = 0;
    xl_rc rc;

    if (n == 0)
        return XL_OK;
    pthread_mutex_lock(&cs->db.wmu);
    if ((rc = xl_sql_exec(cs->db.wdb, "BEGIN IMMEDIATE", WHO, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        enum xl_check_outcome o = XL_CHECK_IGNORED;
        bool is_new = false;

        if ((rc = apply_one(cs, &r[i], &o, &is_new, err)) != XL_OK) {
            sqlite3_exec(cs->db.wdb, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
        if (outcome)
            outcome[i] = o;
        added += is_new;
        applied += o != XL_CHECK_IGNORED;
        ignored += o == XL_CHECK_IGNORED;
        changed += o == XL_CHECK_CHANGED;
    }
    if ((rc = xl_sql_exec(cs->db.wdb, "COMMIT", WHO, err)) != XL_OK) {
        sqlite3_exec(cs->db.wdb, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    atomic_fetch_add(&cs->commits, 1);
    atomic_fetch_add(&cs->checks, added);
    atomic_fetch_add(&cs->results, applied);
    atomic_fetch_add(&cs->ignored, ignored);
    atomic_fetch_add(&cs->changes, changed);
out:
    pthread_mutex_unlock(&cs->db.wmu);
    return rc;
}

/* Bind the text parameters of a query that are set, in order. */
static void bind_set(sqlite3_stmt *st, const char *const *v, size_t n)
{
    int k = 1;

    for (size_t i = 0; i < n; i++)
        if (v[i])
            sqlite3_bind_text(st, k++, v[i], -1, SQLITE_STATIC);
}

xl_rc xl_checkstore_list(struct xl_checkstore *cs, const struct xl_check_query *q,
                         xl_check_row_cb cb, void *ctx, struct xl_err *err)
{
    const char *state = q->state >= 0 ? xl_check_state_str((enum xl_check_state)q->state) : NULL;
    const char *params[3] = {q->host, q->name, state};
    sqlite3_stmt *st = NULL;
    sqlite3 *h = NULL;
    char sql[640];
    int r;
    xl_rc rc;

    snprintf(sql, sizeof(sql),
             "SELECT host, agent_id, name, state, output, long_output, exit_code, duration_ms,"
             " source, ts, since, interval_ms, received FROM checks WHERE 1%s%s%s ORDER BY "
             SEVERITY_SQL
             ", host, name",
             q->host ? " AND host = ?" : "", q->name ? " AND name = ?" : "",
             state ? " AND state = ?" : "");
    if ((rc = xl_sql_pool_get(&cs->db.pool, &h, err)) != XL_OK)
        return rc;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, WHO, "prepare the listing");
        goto out;
    }
    bind_set(st, params, 3);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct xl_check_row row = {
            .host = (const char *)sqlite3_column_text(st, 0),
            .agent_id = (const char *)sqlite3_column_text(st, 1),
            .name = (const char *)sqlite3_column_text(st, 2),
            .output = (const char *)sqlite3_column_text(st, 4),
            .long_output = (const char *)sqlite3_column_text(st, 5),
            .exit_code = sqlite3_column_int64(st, 6),
            .has_exit_code = sqlite3_column_type(st, 6) != SQLITE_NULL,
            .duration_ms = sqlite3_column_int64(st, 7),
            .has_duration = sqlite3_column_type(st, 7) != SQLITE_NULL,
            .source = (const char *)sqlite3_column_text(st, 8),
            .ts_ms = sqlite3_column_int64(st, 9),
            .since_ms = sqlite3_column_int64(st, 10),
            .interval_ms = sqlite3_column_int64(st, 11),
            .has_interval = sqlite3_column_type(st, 11) != SQLITE_NULL,
            .received_ms = sqlite3_column_int64(st, 12),
        };

        if (!xl_check_state_parse((const char *)sqlite3_column_text(st, 3), &row.state))
            row.state = XL_CHECK_UNKNOWN;
        if (cb(ctx, &row) != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = xl_sql_fail(err, h, WHO, "list");
out:
    sqlite3_finalize(st);
    xl_sql_pool_put(&cs->db.pool, h);
    return rc;
}

xl_rc xl_checkstore_history(struct xl_checkstore *cs, const struct xl_check_hist_query *q,
                            xl_check_change_cb cb, void *ctx, struct xl_err *err)
{
    const char *params[2] = {q->host, q->name};
    size_t limit = q->limit ? q->limit : LIMIT_DEFAULT;
    sqlite3_stmt *st = NULL;
    sqlite3 *h = NULL;
    char sql[512];
    int r, k = 1;
    xl_rc rc;

    if (limit > LIMIT_MAX)
        limit = LIMIT_MAX;
    snprintf(sql, sizeof(sql),
             "SELECT id, ts, host, agent_id, name, from_state, to_state, output"
             " FROM check_changes WHERE 1%s%s%s%s ORDER BY ts DESC, id DESC LIMIT %zu",
             q->host ? " AND host = ?" : "", q->name ? " AND name = ?" : "",
             q->from_ms ? " AND ts >= ?" : "", q->to_ms ? " AND ts <= ?" : "", limit);
    if ((rc = xl_sql_pool_get(&cs->db.pool, &h, err)) != XL_OK)
        return rc;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, WHO, "prepare the history");
        goto out;
    }
    bind_set(st, params, 2);
    k += (q->host != NULL) + (q->name != NULL);
    if (q->from_ms)
        sqlite3_bind_int64(st, k++, q->from_ms);
    if (q->to_ms)
        sqlite3_bind_int64(st, k++, q->to_ms);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct xl_check_change c = {
            .id = sqlite3_column_int64(st, 0),
            .ts_ms = sqlite3_column_int64(st, 1),
            .host = (const char *)sqlite3_column_text(st, 2),
            .agent_id = (const char *)sqlite3_column_text(st, 3),
            .name = (const char *)sqlite3_column_text(st, 4),
            .from = (const char *)sqlite3_column_text(st, 5),
            .to = (const char *)sqlite3_column_text(st, 6),
            .output = (const char *)sqlite3_column_text(st, 7),
        };

        if (cb(ctx, &c) != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = xl_sql_fail(err, h, WHO, "history");
out:
    sqlite3_finalize(st);
    xl_sql_pool_put(&cs->db.pool, h);
    return rc;
}

xl_rc xl_checkstore_maintain(struct xl_checkstore *cs, int64_t now_ms, struct xl_err *err)
{
    uint64_t total = 0;
    xl_rc rc;

    if (cs->retention_ms <= 0)
        return XL_OK;
    rc = xl_sql_store_delete_old(&cs->db,
                                 "DELETE FROM check_changes WHERE id IN (SELECT id FROM"
                                 " check_changes WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
                                 now_ms - cs->retention_ms, DEL_CHUNK, &total, err);
    if (total)
        xl_log_info(WHO, "retention deleted %llu state changes", (unsigned long long)total);
    return rc;
}

void xl_checkstore_get_stats(struct xl_checkstore *cs, struct xl_checkstore_stats *out)
{
    *out = (struct xl_checkstore_stats){
        .checks = atomic_load(&cs->checks),
        .results = atomic_load(&cs->results),
        .ignored = atomic_load(&cs->ignored),
        .changes = atomic_load(&cs->changes),
        .commits = atomic_load(&cs->commits),
    };
}
