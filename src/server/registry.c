/* xluo-server: agent registry in memory, persisted in SQLite. */
#include "registry.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"

struct agent {
    char *id, *host, *ip, *version;
    json_t *labels;
    json_t *stats;
    int64_t first_seen, last_seen, hb_ms, started;
    uint64_t last_seq;
    bool dirty;
    struct xl_seqset seen; /* stored batches, for exactly-once ingest */
    bool seen_dirty;       /* seen changed since it was last written */
};

/* Locks: db_mu (every use of db) is taken before lock (the agents), never
 * after it. Agents are never removed, so an index into agents stays valid. */
struct xl_registry {
    pthread_mutex_t lock;
    pthread_mutex_t db_mu;
    sqlite3 *db;
    sqlite3_stmt *st_seen;
    struct agent *agents;
    size_t n, cap;
    int64_t missed;
    /* Group commit of the seen sets: each change takes a ticket (seen_ver,
     * under lock); a writer writes every dirty set and marks the tickets up
     * to then as written (seen_synced, under db_mu). */
    size_t *seen_dirty; /* indexes of agents with seen_dirty set */
    size_t nseen_dirty, cap_seen_dirty;
    uint64_t seen_ver, seen_synced;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS agents ("
    " id TEXT PRIMARY KEY, host TEXT NOT NULL, ip TEXT, version TEXT, labels TEXT,"
    " first_seen INTEGER, last_seen INTEGER, heartbeat_ms INTEGER, started INTEGER,"
    " last_seq INTEGER);"
    /* One row per agent: floor and the runs of stored seqs above it
     * (seqset.h), rewritten whole when they change. */
    "CREATE TABLE IF NOT EXISTS ingest_seen ("
    " agent_id TEXT PRIMARY KEY, floor INTEGER NOT NULL, runs TEXT NOT NULL) WITHOUT ROWID;";

static void agent_cleanup(struct agent *a)
{
    xl_free(a->id);
    xl_free(a->host);
    xl_free(a->ip);
    xl_free(a->version);
    json_decref(a->labels);
    json_decref(a->stats);
    xl_seqset_cleanup(&a->seen);
}

static struct agent *find(struct xl_registry *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->agents[i].id, id) == 0)
            return &r->agents[i];
    return NULL;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static xl_rc load_all(struct xl_registry *r, struct xl_err *err)
{
    sqlite3_stmt *st;
    xl_rc rc = XL_OK;
    int s;

    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, host, ip, version, labels, first_seen, last_seen,"
                           " heartbeat_ms, started, last_seq FROM agents",
                           -1, &st, NULL) != SQLITE_OK)
        return xl_err_set(err, XL_EDB, "registry: %s", sqlite3_errmsg(r->db));
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct agent a = {0};
        if (xl_grow((void **)&r->agents, &r->cap, r->n + 1, sizeof(*r->agents)) < 0) {
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            break;
        }
        a.id = xl_strdup(col_text(st, 0));
        a.host = xl_strdup(col_text(st, 1));
        a.ip = xl_strdup(col_text(st, 2));
        a.version = xl_strdup(col_text(st, 3));
        a.labels = json_loads(col_text(st, 4), 0, NULL);
        if (!a.labels)
            a.labels = json_object();
        a.first_seen = sqlite3_column_int64(st, 5);
        a.last_seen = sqlite3_column_int64(st, 6);
        a.hb_ms = sqlite3_column_int64(st, 7);
        a.started = sqlite3_column_int64(st, 8);
        a.last_seq = (uint64_t)sqlite3_column_int64(st, 9);
        if (!a.id || !a.host || !a.ip || !a.version || !a.labels) {
            agent_cleanup(&a);
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
            break;
        }
        r->agents[r->n++] = a;
    }
    if (rc == XL_OK && s != SQLITE_DONE)
        rc = xl_err_set(err, XL_EDB, "registry: %s", sqlite3_errmsg(r->db));
    sqlite3_finalize(st);
    return rc;
}

/* The seen sets of the agents (rows of agents that are not registered any
 * more are left alone). A row that does not parse keeps its floor and
 * loses its runs: those batches count as new again, which is safe. */
static xl_rc load_seen(struct xl_registry *r, struct xl_err *err)
{
    sqlite3_stmt *st;
    struct xl_err e;
    xl_rc rc = XL_OK;
    int s;

    if (sqlite3_prepare_v2(r->db, "SELECT agent_id, floor, runs FROM ingest_seen", -1, &st, NULL) !=
        SQLITE_OK)
        return xl_err_set(err, XL_EDB, "registry: ingest_seen: %s", sqlite3_errmsg(r->db));
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct agent *a = find(r, col_text(st, 0));
        uint64_t floor = (uint64_t)sqlite3_column_int64(st, 1);

        if (!a)
            continue;
        if ((rc = xl_seqset_load(&a->seen, floor, col_text(st, 2), &e)) == XL_ENOMEM) {
            xl_err_set(err, XL_ENOMEM, "out of memory");
            break;
        }
        if (rc != XL_OK) {
            xl_log_warn("registry", "ingest_seen of agent %s: %s (kept the floor %llu only)", a->id,
                        e.msg, (unsigned long long)floor);
            xl_seqset_cleanup(&a->seen);
            a->seen.floor = floor;
            rc = XL_OK;
        }
    }
    if (rc == XL_OK && s != SQLITE_DONE)
        rc = xl_err_set(err, XL_EDB, "registry: ingest_seen: %s", sqlite3_errmsg(r->db));
    sqlite3_finalize(st);
    return rc;
}

xl_rc xl_registry_open(const char *db_path, int64_t offline_after_missed,
                       struct xl_registry **out, struct xl_err *err)
{
    struct xl_registry *r = xl_calloc(1, sizeof(*r));
    char *msg = NULL;
    xl_rc rc;

    if (!r)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->db_mu, NULL);
    r->missed = offline_after_missed;
    if (sqlite3_open_v2(db_path, &r->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = xl_err_set(err, XL_EDB, "%s: %s", db_path,
                        r->db ? sqlite3_errmsg(r->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, 5000);
    if (sqlite3_exec(r->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        rc = xl_err_set(err, XL_EDB, "%s: %s", db_path, msg ? msg : "schema");
        sqlite3_free(msg);
        goto fail;
    }
    if (sqlite3_prepare_v3(r->db,
                           "INSERT INTO ingest_seen (agent_id, floor, runs) VALUES (?,?,?)"
                           " ON CONFLICT (agent_id) DO UPDATE SET floor = excluded.floor,"
                           " runs = excluded.runs",
                           -1, SQLITE_PREPARE_PERSISTENT, &r->st_seen, NULL) != SQLITE_OK) {
        rc = xl_err_set(err, XL_EDB, "%s: %s", db_path, sqlite3_errmsg(r->db));
        goto fail;
    }
    if ((rc = load_all(r, err)) != XL_OK || (rc = load_seen(r, err)) != XL_OK)
        goto fail;
    *out = r;
    return XL_OK;
fail:
    xl_registry_close(r);
    return rc;
}

void xl_registry_close(struct xl_registry *r)
{
    if (!r)
        return;
    if (r->db)
        xl_registry_flush(r, NULL);
    for (size_t i = 0; i < r->n; i++)
        agent_cleanup(&r->agents[i]);
    xl_free(r->agents);
    xl_free(r->seen_dirty);
    sqlite3_finalize(r->st_seen);
    sqlite3_close(r->db);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->db_mu);
    xl_free(r);
}

static xl_rc persist(struct xl_registry *r, const struct agent *a, struct xl_err *err)
{
    sqlite3_stmt *st;
    char *labels = json_dumps(a->labels, JSON_COMPACT | JSON_SORT_KEYS);
    json_malloc_t jmalloc;
    json_free_t jfree;
    xl_rc rc = XL_OK;

    /* jansson's string goes back to jansson's allocator (see jarena.h). */
    json_get_alloc_funcs(&jmalloc, &jfree);
    if (sqlite3_prepare_v2(r->db,
                           "INSERT OR REPLACE INTO agents (id, host, ip, version, labels,"
                           " first_seen, last_seen, heartbeat_ms, started, last_seq)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        jfree(labels);
        return xl_err_set(err, XL_EDB, "registry: %s", sqlite3_errmsg(r->db));
    }
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, labels ? labels : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, a->first_seen);
    sqlite3_bind_int64(st, 7, a->last_seen);
    sqlite3_bind_int64(st, 8, a->hb_ms);
    sqlite3_bind_int64(st, 9, a->started);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)a->last_seq);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = xl_err_set(err, XL_EDB, "registry: %s", sqlite3_errmsg(r->db));
    sqlite3_finalize(st);
    jfree(labels);
    return rc;
}

xl_rc xl_registry_register(struct xl_registry *r, const struct xl_agent_info *info,
                           int64_t now_ms, struct xl_err *err)
{
    struct agent *a, fresh = {0};
    xl_rc rc;

    fresh.id = xl_strdup(info->id);
    fresh.host = xl_strdup(info->host);
    fresh.ip = xl_strdup(info->ip ? info->ip : "");
    fresh.version = xl_strdup(info->version ? info->version : "");
    fresh.labels = info->labels ? json_deep_copy(info->labels) : json_object();
    if (!fresh.id || !fresh.host || !fresh.ip || !fresh.version || !fresh.labels) {
        agent_cleanup(&fresh);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    }
    fresh.hb_ms = info->heartbeat_interval_ms;
    fresh.started = info->started_ms;
    fresh.first_seen = fresh.last_seen = now_ms;

    pthread_mutex_lock(&r->db_mu);
    pthread_mutex_lock(&r->lock);
    if ((a = find(r, info->id))) {
        fresh.first_seen = a->first_seen;
        fresh.last_seq = a->last_seq;
        fresh.stats = a->stats;
        a->stats = NULL;
        xl_seqset_move(&fresh.seen, &a->seen);
        fresh.seen_dirty = a->seen_dirty;
        agent_cleanup(a);
        *a = fresh;
    } else if (xl_grow((void **)&r->agents, &r->cap, r->n + 1, sizeof(*r->agents)) < 0) {
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_unlock(&r->db_mu);
        agent_cleanup(&fresh);
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    } else {
        a = &r->agents[r->n++];
        *a = fresh;
    }
    rc = persist(r, a, err);
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&r->db_mu);
    return rc;
}

xl_rc xl_registry_touch(struct xl_registry *r, const char *id, int64_t now_ms, uint64_t seq,
                        const json_t *stats)
{
    struct agent *a;

    pthread_mutex_lock(&r->lock);
    if (!(a = find(r, id))) {
        pthread_mutex_unlock(&r->lock);
        return XL_ENOENT;
    }
    if (now_ms > a->last_seen)
        a->last_seen = now_ms;
    if (seq > a->last_seq)
        a->last_seq = seq;
    if (stats) {
        json_t *copy = json_deep_copy(stats);
        if (copy) {
            json_decref(a->stats);
            a->stats = copy;
        }
    }
    a->dirty = true;
    pthread_mutex_unlock(&r->lock);
    return XL_OK;
}

static int count_bytes(const char *p, size_t n, void *ctx)
{
    size_t *total = ctx;

    *total += n;
    return *total > XL_AGENT_STATS_MAX ? -1 : 0; /* stop early when over */
}

xl_rc xl_registry_stats_check(const json_t *stats, struct xl_err *err)
{
    size_t n = 0;

    if (!json_is_object(stats))
        return xl_err_set(err, XL_EINVAL, "stats: expected an object");
    if (json_dump_callback(stats, count_bytes, &n, JSON_COMPACT) != 0 || n > XL_AGENT_STATS_MAX)
        return xl_err_set(err, XL_ETOOBIG, "stats: over %d bytes as JSON, the limit",
                          XL_AGENT_STATS_MAX);
    return XL_OK;
}

void xl_agent_snapshot_cleanup(struct xl_agent_snapshot *s)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        xl_free((char *)s->labels[i].name);
        xl_free((char *)s->labels[i].value);
    }
    xl_free(s->labels);
    xl_free(s->host);
    memset(s, 0, sizeof(*s));
}

xl_rc xl_registry_snapshot(struct xl_registry *r, const char *id, struct xl_agent_snapshot *out)
{
    struct agent *a;
    const char *k;
    json_t *v;
    xl_rc rc = XL_OK;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->lock);
    if (!(a = find(r, id))) {
        rc = XL_ENOENT;
        goto out;
    }
    out->host = xl_strdup(a->host);
    out->labels = xl_calloc(json_object_size(a->labels) + 1, sizeof(*out->labels));
    if (!out->host || !out->labels) {
        rc = XL_ENOMEM;
        goto out;
    }
    json_object_foreach(a->labels, k, v) {
        struct xl_label *l = &out->labels[out->nlabels];
        if (!json_is_string(v))
            continue;
        l->name = xl_strdup(k);
        l->value = xl_strdup(json_string_value(v));
        out->nlabels++;
        if (!l->name || !l->value) {
            rc = XL_ENOMEM;
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&r->lock);
    if (rc != XL_OK)
        xl_agent_snapshot_cleanup(out);
    return rc;
}

static bool online(const struct xl_registry *r, const struct agent *a, int64_t now_ms)
{
    int64_t hb = a->hb_ms > 0 ? a->hb_ms : 10000;
    return now_ms - a->last_seen <= hb * r->missed;
}

static json_t *agent_json(const struct xl_registry *r, const struct agent *a, int64_t now_ms)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
                          a->id, "host", a->host, "ip", a->ip, "version", a->version, "labels",
                          a->labels, "status", online(r, a, now_ms) ? "online" : "offline",
                          "first_seen", (json_int_t)a->first_seen, "last_seen",
                          (json_int_t)a->last_seen, "heartbeat_interval_ms",
                          (json_int_t)a->hb_ms, "started", (json_int_t)a->started, "last_seq",
                          (json_int_t)a->last_seq);
    if (j)
        json_object_set_new(j, "stats", a->stats ? json_incref(a->stats) : json_null());
    return j;
}

static int by_host(const void *x, const void *y)
{
    const struct agent *a = *(const struct agent *const *)x, *b = *(const struct agent *const *)y;
    int c = strcmp(a->host, b->host);
    return c ? c : strcmp(a->id, b->id);
}

json_t *xl_registry_json(struct xl_registry *r, const char *id, int64_t now_ms)
{
    json_t *res = NULL, *arr;
    struct agent **order;

    pthread_mutex_lock(&r->lock);
    if (id) {
        struct agent *a = find(r, id);
        res = a ? agent_json(r, a, now_ms) : NULL;
        goto out;
    }
    if (!(order = xl_calloc(r->n + 1, sizeof(*order))))
        goto out;
    for (size_t i = 0; i < r->n; i++)
        order[i] = &r->agents[i];
    qsort(order, r->n, sizeof(*order), by_host);
    arr = json_array();
    for (size_t i = 0; arr && i < r->n; i++)
        json_array_append_new(arr, agent_json(r, order[i], now_ms));
    xl_free(order);
    res = arr ? json_pack("{s:o}", "agents", arr) : NULL;
out:
    pthread_mutex_unlock(&r->lock);
    return res;
}

void xl_registry_each_stats(struct xl_registry *r, xl_registry_stats_fn fn, void *ctx)
{
    struct agent **order;
    size_t n = 0;

    pthread_mutex_lock(&r->lock);
    if ((order = xl_calloc(r->n + 1, sizeof(*order)))) {
        for (size_t i = 0; i < r->n; i++)
            if (r->agents[i].stats)
                order[n++] = &r->agents[i];
        qsort(order, n, sizeof(*order), by_host);
        for (size_t i = 0; i < n; i++)
            fn(ctx, order[i]->id, order[i]->host, order[i]->stats);
        xl_free(order);
    }
    pthread_mutex_unlock(&r->lock);
}

void xl_registry_counts(struct xl_registry *r, int64_t now_ms, uint64_t *on, uint64_t *off)
{
    *on = *off = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        if (online(r, &r->agents[i], now_ms))
            (*on)++;
        else
            (*off)++;
    }
    pthread_mutex_unlock(&r->lock);
}

/* One seen set to write: taken under lock, written under db_mu alone. */
struct seen_row {
    size_t idx;
    char id[64];
    uint64_t floor;
    size_t runs; /* offset of its NUL-terminated runs text in the texts buffer */
};

/* Take every dirty seen set (lock held): rows and texts are the caller's,
 * the agents are clean afterwards. XL_ENOMEM leaves them dirty. */
static xl_rc seen_take(struct xl_registry *r, struct seen_row **rows, size_t *nrows,
                       struct xl_buf *texts)
{
    struct seen_row *v;
    xl_rc rc;

    *rows = NULL;
    *nrows = 0;
    if (!r->nseen_dirty)
        return XL_OK;
    if (!(v = xl_calloc(r->nseen_dirty, sizeof(*v))))
        return XL_ENOMEM;
    for (size_t i = 0; i < r->nseen_dirty; i++) {
        struct agent *a = &r->agents[r->seen_dirty[i]];
        v[i].idx = r->seen_dirty[i];
        snprintf(v[i].id, sizeof(v[i].id), "%s", a->id);
        v[i].floor = a->seen.floor;
        v[i].runs = texts->len;
        if ((rc = xl_seqset_format(&a->seen, texts)) != XL_OK ||
            (rc = xl_buf_add(texts, "", 1)) != XL_OK) {
            xl_free(v);
            return rc;
        }
    }
    for (size_t i = 0; i < r->nseen_dirty; i++)
        r->agents[r->seen_dirty[i]].seen_dirty = false;
    *rows = v;
    *nrows = r->nseen_dirty;
    r->nseen_dirty = 0;
    return XL_OK;
}

/* Mark agent idx's seen set as to be written (lock held). When the dirty
 * list cannot grow, the next change or flush of that agent catches up. */
static void seen_mark(struct xl_registry *r, size_t idx)
{
    struct agent *a = &r->agents[idx];

    if (a->seen_dirty)
        return;
    if (xl_grow((void **)&r->seen_dirty, &r->cap_seen_dirty, r->nseen_dirty + 1,
                sizeof(*r->seen_dirty)) < 0)
        return;
    r->seen_dirty[r->nseen_dirty++] = idx;
    a->seen_dirty = true;
}

/* Put rows back on the dirty list after a failed write (lock held). */
static void seen_remark(struct xl_registry *r, const struct seen_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        seen_mark(r, rows[i].idx);
}

/* Write rows (db_mu held), in one transaction unless in_txn (the caller's). */
static xl_rc seen_write(struct xl_registry *r, const struct seen_row *rows, size_t n,
                        const struct xl_buf *texts, bool in_txn, struct xl_err *err)
{
    xl_rc rc = XL_OK;

    if (!n)
        return XL_OK;
    if (!in_txn && n > 1 && sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return xl_err_set(err, XL_EDB, "registry: ingest_seen: %s", sqlite3_errmsg(r->db));
    for (size_t i = 0; i < n && rc == XL_OK; i++) {
        sqlite3_bind_text(r->st_seen, 1, rows[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(r->st_seen, 2, (sqlite3_int64)rows[i].floor);
        sqlite3_bind_text(r->st_seen, 3, texts->data + rows[i].runs, -1, SQLITE_STATIC);
        if (sqlite3_step(r->st_seen) != SQLITE_DONE)
            rc = xl_err_set(err, XL_EDB, "registry: ingest_seen: %s", sqlite3_errmsg(r->db));
        sqlite3_reset(r->st_seen);
        sqlite3_clear_bindings(r->st_seen);
    }
    if (!in_txn && n > 1) {
        if (rc == XL_OK && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = xl_err_set(err, XL_EDB, "registry: ingest_seen: %s", sqlite3_errmsg(r->db));
        if (rc != XL_OK)
            sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* Make sure the change with this ticket is in the database: the first
 * thread to get db_mu writes every set changed so far, the others find
 * their ticket written when they get it (group commit). */
static xl_rc seen_sync(struct xl_registry *r, uint64_t ticket, struct xl_err *err)
{
    struct seen_row *rows = NULL;
    struct xl_buf texts;
    size_t n = 0;
    uint64_t upto;
    xl_rc rc = XL_OK;

    xl_buf_init(&texts, SIZE_MAX / 2);
    pthread_mutex_lock(&r->db_mu);
    if (r->seen_synced >= ticket)
        goto out;
    pthread_mutex_lock(&r->lock);
    upto = r->seen_ver;
    rc = seen_take(r, &rows, &n, &texts);
    pthread_mutex_unlock(&r->lock);
    if (rc != XL_OK) {
        rc = xl_err_set(err, rc, "registry: ingest_seen: %s", xl_rc_str(rc));
        goto out;
    }
    if ((rc = seen_write(r, rows, n, &texts, false, err)) != XL_OK) {
        pthread_mutex_lock(&r->lock);
        seen_remark(r, rows, n);
        pthread_mutex_unlock(&r->lock);
    }
    /* Also after a failure: the sets are dirty again and the next flush
     * retries; the waiting threads need not each try on their own. */
    r->seen_synced = upto;
out:
    pthread_mutex_unlock(&r->db_mu);
    xl_free(rows);
    xl_buf_cleanup(&texts);
    return rc;
}

xl_rc xl_registry_batch_begin(struct xl_registry *r, const char *id, uint64_t seq, uint64_t floor,
                              int64_t now_ms, enum xl_seq_state *state)
{
    struct agent *a;
    xl_rc rc;

    pthread_mutex_lock(&r->lock);
    if (!(a = find(r, id))) {
        rc = XL_ENOENT;
        goto out;
    }
    if (xl_seqset_raise_floor(&a->seen, floor))
        seen_mark(r, (size_t)(a - r->agents));
    if ((rc = xl_seqset_begin(&a->seen, seq, state)) != XL_OK)
        goto out;
    if (*state == XL_SEQ_DONE && now_ms > a->last_seen) {
        a->last_seen = now_ms; /* a resend is a sign of life too */
        a->dirty = true;
    }
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

xl_rc xl_registry_batch_end(struct xl_registry *r, const char *id, uint64_t seq, bool stored,
                            int64_t now_ms, struct xl_err *err)
{
    struct agent *a;
    uint64_t ticket = 0;

    pthread_mutex_lock(&r->lock);
    if (!(a = find(r, id))) {
        pthread_mutex_unlock(&r->lock);
        return xl_err_set(err, XL_ENOENT, "agent %s is not registered", id);
    }
    if (xl_seqset_end(&a->seen, seq, stored)) {
        seen_mark(r, (size_t)(a - r->agents));
        ticket = ++r->seen_ver;
    }
    if (stored) {
        if (now_ms > a->last_seen)
            a->last_seen = now_ms;
        if (seq > a->last_seq)
            a->last_seq = seq;
        a->dirty = true;
    }
    pthread_mutex_unlock(&r->lock);
    return ticket ? seen_sync(r, ticket, err) : XL_OK;
}

xl_rc xl_registry_flush(struct xl_registry *r, struct xl_err *err)
{
    struct seen_row *rows = NULL;
    struct xl_buf texts;
    size_t nrows = 0;
    xl_rc rc = XL_OK;
    bool any = false;

    xl_buf_init(&texts, SIZE_MAX / 2);
    pthread_mutex_lock(&r->db_mu);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n && rc == XL_OK; i++) {
        if (!r->agents[i].dirty)
            continue;
        if (!any) {
            sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
            any = true;
        }
        if ((rc = persist(r, &r->agents[i], err)) == XL_OK)
            r->agents[i].dirty = false;
    }
    if (rc == XL_OK && r->nseen_dirty) {
        uint64_t upto = r->seen_ver;

        if (!any) {
            sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
            any = true;
        }
        if (seen_take(r, &rows, &nrows, &texts) != XL_OK)
            rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        else if ((rc = seen_write(r, rows, nrows, &texts, true, err)) == XL_OK)
            r->seen_synced = upto;
    }
    if (any &&
        sqlite3_exec(r->db, rc == XL_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        rc == XL_OK)
        rc = xl_err_set(err, XL_EDB, "registry: commit: %s", sqlite3_errmsg(r->db));
    if (rc != XL_OK) {
        /* Rolled back: everything written here is to be written again. */
        for (size_t i = 0; i < r->n; i++)
            r->agents[i].dirty = true;
        seen_remark(r, rows, nrows);
    }
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&r->db_mu);
    xl_free(rows);
    xl_buf_cleanup(&texts);
    return rc;
}
