/* xluo-server: the event store (events.h; docs/storage.md "Event store").
 *
 * Table events: id (AUTOINCREMENT, so ids only grow and stay valid as page
 * cursors), ts, host, agent_id, type, fields (JSON text), source, seq, idx.
 * UNIQUE(agent_id, seq, idx) makes a resent batch harmless (seq 0 is
 * stored as NULL, which never conflicts). Indexes (type, ts), (host, ts)
 * and (ts): SQLite appends the rowid to every index, so each is ordered by
 * (..., ts, id) and "newest first" pages need no sort.
 *
 * Locks: wmu (the write connection and its statements); queries use the
 * read pool. Counters are atomics. */
#include "events.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "sqlite.h"

#define WHO "events"
#define SCHEMA_VERSION 1
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000
#define DEL_CHUNK 5000
#define WHERE_KEY_MAX 256

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts INTEGER NOT NULL, host TEXT NOT NULL, agent_id TEXT NOT NULL, type TEXT NOT NULL,"
    " fields TEXT NOT NULL, source TEXT, seq INTEGER, idx INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events(agent_id, seq, idx);"
    "CREATE INDEX IF NOT EXISTS events_type_ts ON events(type, ts);"
    "CREATE INDEX IF NOT EXISTS events_host_ts ON events(host, ts);"
    "CREATE INDEX IF NOT EXISTS events_ts ON events(ts);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1);";

struct xl_eventstore {
    struct xl_sql_store db;
    int64_t retention_ms;
    sqlite3_stmt *st_ins;
    _Atomic uint64_t rows, inserted, duplicates, deleted, commits;
};

/* ---- field conditions ---- */

void xl_event_where_cleanup(struct xl_event_where *w)
{
    for (size_t i = 0; i < w->nkeys; i++)
        xl_free(w->keys[i]);
    xl_free(w->keys);
    xl_free(w->path);
    xl_free(w->str);
    memset(w, 0, sizeof(*w));
}

static bool key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':' || c == '-';
}

/* A number as JSON writes it (no hex, inf or nan, which strtod takes). */
static bool parse_number(const char *s, size_t n, double *out)
{
    char buf[64], *end;

    if (n == 0 || n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !strchr("+-.eE", s[i]))
            return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    *out = strtod(buf, &end);
    return *end == '\0' && errno == 0 && isfinite(*out);
}

/* The key's segments, and its SQLite JSON path with quoted labels. */
static xl_rc parse_key(const char *s, size_t n, struct xl_event_where *w, struct xl_err *err)
{
    struct xl_buf path;
    size_t cap = 0, i = 0;

    if (n == 0)
        return xl_err_set(err, XL_EINVAL, "expected KEY OP VALUE; the key is missing");
    if (n > WHERE_KEY_MAX)
        return xl_err_set(err, XL_EINVAL, "the key is over %d bytes", WHERE_KEY_MAX);
    xl_buf_init(&path, 2 * WHERE_KEY_MAX + 8);
    if (xl_buf_adds(&path, "$") != XL_OK)
        goto nomem;
    while (i <= n) {
        size_t j = i;

        while (j < n && s[j] != '.') {
            if (!key_char(s[j])) {
                xl_buf_cleanup(&path);
                return xl_err_set(err, XL_EINVAL,
                                  "key '%.*s': '%c' is not allowed (names of [A-Za-z0-9_:-] "
                                  "joined by '.')",
                                  (int)n, s, s[j]);
            }
            j++;
        }
        if (j == i) {
            xl_buf_cleanup(&path);
            return xl_err_set(err, XL_EINVAL, "key '%.*s': an empty name", (int)n, s);
        }
        if (xl_grow((void **)&w->keys, &cap, w->nkeys + 1, sizeof(*w->keys)) != 0 ||
            !(w->keys[w->nkeys] = xl_strndup(s + i, j - i)))
            goto nomem;
        w->nkeys++;
        if (xl_buf_printf(&path, ".\"%.*s\"", (int)(j - i), s + i) != XL_OK)
            goto nomem;
        i = j + 1;
    }
    w->path = xl_buf_take(&path);
    return XL_OK;
nomem:
    xl_buf_cleanup(&path);
    return xl_err_set(err, XL_ENOMEM, "out of memory");
}

xl_rc xl_event_where_parse(const char *s, struct xl_event_where *w, struct xl_err *err)
{
    static const struct {
        const char *text;
        enum xl_where_op op;
    } ops[] = {{"!=", XL_WHERE_NE}, {">=", XL_WHERE_GE}, {"<=", XL_WHERE_LE},
               {"=", XL_WHERE_EQ},  {">", XL_WHERE_GT},  {"<", XL_WHERE_LT}};
    const char *p = strpbrk(s, "=!<>"), *k, *ke, *v, *ve;
    size_t oplen = 0;
    xl_rc rc;

    memset(w, 0, sizeof(*w));
    if (!p)
        return xl_err_set(err, XL_EINVAL,
                          "'%.128s': expected KEY OP VALUE with OP one of = != > >= < <=", s);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strncmp(p, ops[i].text, strlen(ops[i].text)) == 0) {
            w->op = ops[i].op;
            oplen = strlen(ops[i].text);
            break;
        }
    }
    if (!oplen)
        return xl_err_set(err, XL_EINVAL, "'%.128s': '!' must be followed by '='", s);
    for (k = s; k < p && isspace((unsigned char)*k); k++)
        ;
    for (ke = p; ke > k && isspace((unsigned char)ke[-1]); ke--)
        ;
    for (v = p + oplen; *v && isspace((unsigned char)*v); v++)
        ;
    for (ve = v + strlen(v); ve > v && isspace((unsigned char)ve[-1]); ve--)
        ;
    if ((rc = parse_key(k, (size_t)(ke - k), w, err)) != XL_OK)
        goto fail;
    if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
        w->kind = XL_WHERE_STR;
        w->str = xl_strndup(v + 1, (size_t)(ve - v - 2));
    } else if (ve - v == 4 && strncmp(v, "true", 4) == 0) {
        w->kind = XL_WHERE_BOOL;
        w->b = true;
    } else if (ve - v == 5 && strncmp(v, "false", 5) == 0) {
        w->kind = XL_WHERE_BOOL;
        w->b = false;
    } else if (parse_number(v, (size_t)(ve - v), &w->num)) {
        w->kind = XL_WHERE_NUM;
    } else {
        w->kind = XL_WHERE_STR;
        w->str = xl_strndup(v, (size_t)(ve - v));
    }
    if (w->kind == XL_WHERE_STR && !w->str) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    return XL_OK;
fail:
    xl_event_where_cleanup(w);
    return rc;
}

/* The comparison's outcome for an ordering c (<0, 0, >0). */
static bool op_holds(enum xl_where_op op, int c)
{
    switch (op) {
    case XL_WHERE_EQ: return c == 0;
    case XL_WHERE_NE: return c != 0;
    case XL_WHERE_GT: return c > 0;
    case XL_WHERE_GE: return c >= 0;
    case XL_WHERE_LT: return c < 0;
    case XL_WHERE_LE: return c <= 0;
    }
    return false;
}

bool xl_event_where_match(const struct xl_event_where *w, const json_t *fields)
{
    const json_t *v = fields;
    int c;

    for (size_t i = 0; v && i < w->nkeys; i++)
        v = json_is_object(v) ? json_object_get(v, w->keys[i]) : NULL;
    switch (w->kind) {
    case XL_WHERE_NUM:
        if (!json_is_number(v))
            return w->op == XL_WHERE_NE;
        c = json_number_value(v) < w->num ? -1 : json_number_value(v) > w->num;
        break;
    case XL_WHERE_BOOL:
        if (!json_is_boolean(v))
            return w->op == XL_WHERE_NE;
        c = (int)json_is_true(v) - (int)w->b;
        break;
    default: {
        /* SQLite's BINARY collation: memcmp, then the shorter first. */
        size_t n, m = strlen(w->str);

        if (!json_is_string(v))
            return w->op == XL_WHERE_NE;
        n = json_string_length(v);
        c = memcmp(json_string_value(v), w->str, n < m ? n : m);
        if (c == 0)
            c = n < m ? -1 : n > m;
        break;
    }
    }
    return op_holds(w->op, c);
}

/* Append the SQL of w (its parameters numbered from *np on, advanced). */
static xl_rc where_sql(struct xl_buf *sql, const struct xl_event_where *w, int *np)
{
    static const char *const opsql[] = {"=", "=", ">", ">=", "<", "<="};
    static const char *const types[] = {"IN ('integer', 'real')", "= 'text'",
                                        "IN ('true', 'false')"};
    int path = (*np)++, val = (*np)++;

    return xl_buf_printf(sql,
                         " AND %s ifnull(json_type(fields, ?%d) %s AND"
                         " json_extract(fields, ?%d) %s ?%d, 0)",
                         w->op == XL_WHERE_NE ? "NOT" : "", path, types[w->kind], path,
                         opsql[w->op], val);
}

static void where_bind(sqlite3_stmt *st, const struct xl_event_where *w, int *np)
{
    int path = (*np)++, val = (*np)++;

    sqlite3_bind_text(st, path, w->path, -1, SQLITE_STATIC);
    if (w->kind == XL_WHERE_NUM)
        sqlite3_bind_double(st, val, w->num);
    else if (w->kind == XL_WHERE_BOOL)
        sqlite3_bind_int(st, val, w->b);
    else
        sqlite3_bind_text(st, val, w->str, -1, SQLITE_STATIC);
}

/* ---- open, close ---- */

xl_rc xl_eventstore_open(const struct xl_eventstore_opts *o, struct xl_eventstore **out,
                         struct xl_err *err)
{
    struct xl_eventstore *es;
    int64_t n = 0;
    xl_rc rc;

    *out = NULL;
    if (!(es = xl_calloc(1, sizeof(*es))))
        return xl_err_set(err, XL_ENOMEM, WHO ": out of memory");
    es->retention_ms = o->retention_ms;
    if ((rc = xl_sql_store_open(&es->db, o->path, o->sync_full, schema_sql, SCHEMA_VERSION, WHO,
                                err)) != XL_OK)
        goto fail;
    if (sqlite3_prepare_v3(es->db.wdb,
                           "INSERT INTO events(ts, host, agent_id, type, fields, source, seq, idx)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                           " ON CONFLICT(agent_id, seq, idx) DO NOTHING",
                           -1, SQLITE_PREPARE_PERSISTENT, &es->st_ins, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, es->db.wdb, WHO, "prepare");
        goto fail;
    }
    if ((rc = xl_sql_store_int(&es->db, "SELECT count(*) FROM events", &n, err)) != XL_OK)
        goto fail;
    atomic_store(&es->rows, (uint64_t)n);
    *out = es;
    return XL_OK;
fail:
    xl_eventstore_close(es);
    return rc;
}

void xl_eventstore_close(struct xl_eventstore *es)
{
    if (!es)
        return;
    sqlite3_finalize(es->st_ins);
    xl_sql_store_close(&es->db);
    xl_free(es);
}

/* ---- append ---- */

xl_rc xl_eventstore_append(struct xl_eventstore *es, const struct xl_event_rec *r, size_t n,
                           int64_t *ids, struct xl_err *err)
{
    sqlite3_stmt *st = es->st_ins;
    uint64_t ins = 0;
    xl_rc rc;

    if (n == 0)
        return XL_OK;
    pthread_mutex_lock(&es->db.wmu);
    if ((rc = xl_sql_exec(es->db.wdb, "BEGIN IMMEDIATE", WHO, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, r[i].ts_ms);
        sqlite3_bind_text(st, 2, r[i].host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r[i].agent_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r[i].type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r[i].fields, -1, SQLITE_STATIC);
        if (r[i].source)
            sqlite3_bind_text(st, 6, r[i].source, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        if (r[i].seq)
            sqlite3_bind_int64(st, 7, (sqlite3_int64)r[i].seq);
        else
            sqlite3_bind_null(st, 7);
        sqlite3_bind_int64(st, 8, r[i].idx);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = xl_sql_fail(err, es->db.wdb, WHO, "insert");
            sqlite3_reset(st);
            sqlite3_exec(es->db.wdb, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
        sqlite3_reset(st);
        if (sqlite3_changes(es->db.wdb) > 0) {
            ins++;
            if (ids)
                ids[i] = sqlite3_last_insert_rowid(es->db.wdb);
        } else if (ids) {
            ids[i] = 0;
        }
    }
    sqlite3_clear_bindings(st);
    if ((rc = xl_sql_exec(es->db.wdb, "COMMIT", WHO, err)) != XL_OK) {
        sqlite3_exec(es->db.wdb, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    atomic_fetch_add(&es->commits, 1);
    atomic_fetch_add(&es->rows, ins);
    atomic_fetch_add(&es->inserted, ins);
    atomic_fetch_add(&es->duplicates, n - ins);
out:
    pthread_mutex_unlock(&es->db.wmu);
    return rc;
}

/* ---- search ---- */

xl_rc xl_eventstore_search(struct xl_eventstore *es, const struct xl_event_query *q,
                           xl_event_row_cb cb, void *ctx, int64_t *next_before, struct xl_err *err)
{
    size_t limit = q->limit ? q->limit : LIMIT_DEFAULT, n = 0;
    int64_t cur_ts = 0;
    sqlite3_stmt *st = NULL;
    sqlite3 *h = NULL;
    struct xl_buf sql;
    int np = 1, r;
    xl_rc rc;

    if (next_before)
        *next_before = 0;
    if (limit > LIMIT_MAX)
        limit = LIMIT_MAX;
    xl_buf_init(&sql, 64 << 10);
    if ((rc = xl_sql_pool_get(&es->db.pool, &h, err)) != XL_OK)
        goto out;
    if (q->before_id) {
        if (sqlite3_prepare_v2(h, "SELECT ts FROM events WHERE id = ?1", -1, &st, NULL) !=
            SQLITE_OK) {
            rc = xl_sql_fail(err, h, WHO, "prepare");
            goto out;
        }
        sqlite3_bind_int64(st, 1, q->before_id);
        r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            cur_ts = sqlite3_column_int64(st, 0);
        } else {
            rc = r == SQLITE_DONE
                     ? xl_err_set(err, XL_ENOENT, "no event %lld (deleted by retention?)",
                                  (long long)q->before_id)
                     : xl_sql_fail(err, h, WHO, "read the cursor");
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (xl_buf_adds(&sql, "SELECT id, ts, host, agent_id, type, fields, source FROM events"
                          " WHERE 1") != XL_OK ||
        (q->type && xl_buf_printf(&sql, " AND type = ?%d", np++) != XL_OK) ||
        (q->host && xl_buf_printf(&sql, " AND host = ?%d", np++) != XL_OK) ||
        (q->from_ms && xl_buf_printf(&sql, " AND ts >= ?%d", np++) != XL_OK) ||
        (q->to_ms && xl_buf_printf(&sql, " AND ts <= ?%d", np++) != XL_OK) ||
        (q->before_id && xl_buf_printf(&sql, " AND (ts < ?%d OR (ts = ?%d AND id < ?%d))", np, np,
                                       np + 1) != XL_OK)) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    if (q->before_id)
        np += 2;
    for (size_t i = 0; i < q->nwhere; i++) {
        if (where_sql(&sql, &q->where[i], &np) != XL_OK) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (xl_buf_printf(&sql, " ORDER BY ts DESC, id DESC LIMIT ?%d", np) != XL_OK) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    if (sqlite3_prepare_v2(h, sql.data, -1, &st, NULL) != SQLITE_OK) {
        rc = xl_sql_fail(err, h, WHO, "prepare the query");
        goto out;
    }
    np = 1;
    if (q->type)
        sqlite3_bind_text(st, np++, q->type, -1, SQLITE_STATIC);
    if (q->host)
        sqlite3_bind_text(st, np++, q->host, -1, SQLITE_STATIC);
    if (q->from_ms)
        sqlite3_bind_int64(st, np++, q->from_ms);
    if (q->to_ms)
        sqlite3_bind_int64(st, np++, q->to_ms);
    if (q->before_id) {
        sqlite3_bind_int64(st, np++, cur_ts);
        sqlite3_bind_int64(st, np++, q->before_id);
    }
    for (size_t i = 0; i < q->nwhere; i++)
        where_bind(st, &q->where[i], &np);
    /* One row more than the page says whether there is a next one. */
    sqlite3_bind_int64(st, np, (sqlite3_int64)limit + 1);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct xl_event_row row = {
            .id = sqlite3_column_int64(st, 0),
            .ts_ms = sqlite3_column_int64(st, 1),
            .host = (const char *)sqlite3_column_text(st, 2),
            .agent_id = (const char *)sqlite3_column_text(st, 3),
            .type = (const char *)sqlite3_column_text(st, 4),
            .fields = (const char *)sqlite3_column_text(st, 5),
            .source = (const char *)sqlite3_column_text(st, 6),
        };

        if (n == limit)
            break; /* the row of the next page: *next_before stays at the last one */
        n++;
        if (cb(ctx, &row) != 0) {
            /* The caller stops here: the next page starts after this row. */
            if (next_before)
                *next_before = row.id;
            goto out;
        }
        if (next_before)
            *next_before = row.id;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = xl_sql_fail(err, h, WHO, "query");
        goto out;
    }
    /* No row beyond the page: there is no next one. */
    if (r == SQLITE_DONE && next_before)
        *next_before = 0;
out:
    sqlite3_finalize(st);
    xl_sql_pool_put(&es->db.pool, h);
    xl_buf_cleanup(&sql);
    return rc;
}

/* ---- retention, stats ---- */

xl_rc xl_eventstore_maintain(struct xl_eventstore *es, int64_t now_ms, struct xl_err *err)
{
    uint64_t total = 0;
    xl_rc rc;

    if (es->retention_ms <= 0)
        return XL_OK;
    rc = xl_sql_store_delete_old(&es->db,
                                 "DELETE FROM events WHERE id IN (SELECT id FROM events"
                                 " WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
                                 now_ms - es->retention_ms, DEL_CHUNK, &total, err);
    atomic_fetch_sub(&es->rows, total);
    atomic_fetch_add(&es->deleted, total);
    if (total)
        xl_log_info(WHO, "retention deleted %llu events", (unsigned long long)total);
    return rc;
}

void xl_eventstore_get_stats(struct xl_eventstore *es, struct xl_eventstore_stats *out)
{
    *out = (struct xl_eventstore_stats){
        .rows = atomic_load(&es->rows),
        .inserted = atomic_load(&es->inserted),
        .duplicates = atomic_load(&es->duplicates),
        .deleted = atomic_load(&es->deleted),
        .commits = atomic_load(&es->commits),
    };
}
