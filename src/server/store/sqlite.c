/* xluo-server: shared SQLite plumbing of the stores (sqlite.h). */
#include "sqlite.h"

#include <stdio.h>

#include "common/alloc.h"
#include "common/log.h"

#define POOL_IDLE_MAX 4
#define BUSY_TIMEOUT_MS 10000

struct xl_sql_conn {
    sqlite3 *h;
    struct xl_sql_conn *next;
};

xl_rc xl_sql_fail(struct xl_err *err, sqlite3 *h, const char *who, const char *what)
{
    return xl_err_set(err, XL_EDB, "%s: %s: %s", who, what, h ? sqlite3_errmsg(h) : "no handle");
}

xl_rc xl_sql_exec(sqlite3 *h, const char *sql, const char *who, struct xl_err *err)
{
    if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return xl_sql_fail(err, h, who, sql);
    return XL_OK;
}

xl_rc xl_sql_open_write(const char *path, bool sync_full, const char *schema, int64_t version,
                        const char *who, sqlite3 **out, struct xl_err *err)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    char pragmas[160];
    xl_rc rc;

    *out = NULL;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, who, path);
        goto fail;
    }
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA temp_store=MEMORY;"
             " PRAGMA journal_size_limit=67108864;",
             sync_full ? "FULL" : "NORMAL");
    if ((rc = xl_sql_exec(h, pragmas, who, err)) != XL_OK ||
        (rc = xl_sql_exec(h, "BEGIN IMMEDIATE", who, err)) != XL_OK)
        goto fail;
    if ((rc = xl_sql_exec(h, schema, who, err)) != XL_OK ||
        (rc = xl_sql_exec(h, "COMMIT", who, err)) != XL_OK) {
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    if (sqlite3_prepare_v2(h, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, who, "read the schema version");
        goto fail;
    }
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != version) {
        rc = xl_err_set(err, XL_EDB, "%s: %s: schema version %lld, expected %lld", who, path,
                        (long long)sqlite3_column_int64(st, 0), (long long)version);
        goto fail;
    }
    sqlite3_finalize(st);
    *out = h;
    return XL_OK;
fail:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return rc;
}

xl_rc xl_sql_open_conn(const char *path, bool ro, const char *who, xl_sql_setup_fn setup,
                       sqlite3 **out, struct xl_err *err)
{
    sqlite3 *h = NULL;
    xl_rc rc;

    *out = NULL;
    if (sqlite3_open_v2(path, &h,
                        (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, who, ro ? "open a read connection" : "open a connection");
        sqlite3_close(h);
        return rc;
    }
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    if (setup && setup(h) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, who, "set up a connection");
        sqlite3_close(h);
        return rc;
    }
    *out = h;
    return XL_OK;
}

void xl_sql_pool_init(struct xl_sql_pool *p, const char *path, const char *who,
                      xl_sql_setup_fn setup)
{
    pthread_mutex_init(&p->mu, NULL);
    p->path = path;
    p->who = who;
    p->setup = setup;
    p->idle = NULL;
    p->nidle = 0;
}

void xl_sql_pool_cleanup(struct xl_sql_pool *p)
{
    while (p->idle) {
        struct xl_sql_conn *c = p->idle;

        p->idle = c->next;
        sqlite3_close(c->h);
        xl_free(c);
    }
    p->nidle = 0;
    pthread_mutex_destroy(&p->mu);
}

xl_rc xl_sql_pool_get(struct xl_sql_pool *p, sqlite3 **out, struct xl_err *err)
{
    struct xl_sql_conn *c;

    pthread_mutex_lock(&p->mu);
    if ((c = p->idle)) {
        p->idle = c->next;
        p->nidle--;
    }
    pthread_mutex_unlock(&p->mu);
    if (c) {
        *out = c->h;
        xl_free(c);
        return XL_OK;
    }
    return xl_sql_open_conn(p->path, true, p->who, p->setup, out, err);
}

void xl_sql_pool_put(struct xl_sql_pool *p, sqlite3 *h)
{
    struct xl_sql_conn *c;

    if (!h)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->nidle < POOL_IDLE_MAX && (c = xl_malloc(sizeof(*c)))) {
        c->h = h;
        c->next = p->idle;
        p->idle = c;
        p->nidle++;
        h = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    sqlite3_close(h);
}

xl_rc xl_sql_store_open(struct xl_sql_store *s, const char *path, bool sync_full,
                        const char *schema, int64_t version, const char *who, struct xl_err *err)
{
    xl_rc rc;

    if (!path || !*path)
        return xl_err_set(err, XL_EINVAL, "%s: no path", who);
    if (!(s->path = xl_strdup(path)))
        return xl_err_set(err, XL_ENOMEM, "%s: out of memory", who);
    s->who = who;
    pthread_mutex_init(&s->wmu, NULL);
    xl_sql_pool_init(&s->pool, s->path, who, NULL);
    if ((rc = xl_sql_open_write(s->path, sync_full, schema, version, who, &s->wdb, err)) != XL_OK) {
        xl_sql_store_close(s);
        return rc;
    }
    return XL_OK;
}

void xl_sql_store_close(struct xl_sql_store *s)
{
    if (!s->path)
        return;
    xl_sql_pool_cleanup(&s->pool);
    if (s->wdb && sqlite3_close(s->wdb) != SQLITE_OK)
        xl_log_error(s->who, "close %s: %s", s->path, sqlite3_errmsg(s->wdb));
    pthread_mutex_destroy(&s->wmu);
    xl_free(s->path);
    *s = (struct xl_sql_store){0};
}

xl_rc xl_sql_store_int(struct xl_sql_store *s, const char *sql, int64_t *v, struct xl_err *err)
{
    sqlite3_stmt *st = NULL;
    xl_rc rc = XL_OK;

    if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = xl_sql_fail(err, s->wdb, s->who, "prepare");
    else
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

xl_rc xl_sql_store_delete_old(struct xl_sql_store *s, const char *del, int64_t before, int chunk,
                              uint64_t *total, struct xl_err *err)
{
    sqlite3_stmt *st = NULL;
    int changed;
    xl_rc rc = XL_OK;

    *total = 0;
    pthread_mutex_lock(&s->wmu);
    if (sqlite3_prepare_v2(s->wdb, del, -1, &st, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, s->wdb, s->who, "prepare retention");
        pthread_mutex_unlock(&s->wmu);
        return rc;
    }
    pthread_mutex_unlock(&s->wmu);
    do {
        pthread_mutex_lock(&s->wmu);
        sqlite3_bind_int64(st, 1, before);
        sqlite3_bind_int(st, 2, chunk);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = xl_sql_fail(err, s->wdb, s->who, "retention");
        changed = rc == XL_OK ? sqlite3_changes(s->wdb) : 0;
        sqlite3_reset(st);
        pthread_mutex_unlock(&s->wmu);
        *total += (uint64_t)changed;
    } while (rc == XL_OK && changed == chunk);
    pthread_mutex_lock(&s->wmu);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}
