/* xluo-server: the log store: SQLite (WAL mode) with an FTS5 index.
 * logs.h says what; docs/storage.md ("Log store") says how and why.
 *
 * Tables:
 *   files    (agent_id, file_uid) -> id: the identity used for dedup
 *   srcs     (file id, host, input, path) -> id: what the filters select on
 *   logs     one row per line; UNIQUE(file, off, part) makes appends idempotent
 *   gens     generations: consecutive id ranges, each with its own
 *            contentless FTS5 table fts_<gen> over the lines of its range
 *   minutes  per (minute of ts, src): row count and the id span; gives
 *            histograms without reading rows and id bounds for time ranges
 *
 * Why generations: FTS5 gives back the space of a deleted row only when
 * the segment holding it is merged, and the oldest segments are the ones
 * merged last, so deleting the oldest rows one by one barely shrinks the
 * index (and costs a re-tokenisation each). Instead the writer starts a new
 * generation every 1/16 of max_bytes or of the retention period; retention
 * deletes rows, and drops a generation's FTS table as a whole once none of
 * its rows is left. A text search walks the generations newest first.
 *
 * Threads and locks, always taken in this order:
 *   maint_mu  one retention pass at a time
 *   qmu       the append queue (group commit: the first appender that finds
 *             nobody writing writes everything queued in one transaction)
 *   wmu       the write connection, next_id, the source cache
 *   rpool     idle read connections (searches never touch the writer;
 *             store/sqlite.c's pool, its own lock)
 *   bgmu      the background thread's wake-up
 * Counters are atomics. */
#include "logs.h"

#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/units.h"
#include "logs_query.h"
#include "sqlite.h"

#define SCHEMA_VERSION 1
#define MINUTE_MS ((int64_t)60000)
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000
#define GROUP_MAX_ROWS 100000 /* rows in one group commit */
#define DEL_CHUNK 20000       /* ids examined per retention transaction */
#define VACUUM_STEP "2048"    /* pages given back per incremental_vacuum */
#define SRC_CACHE_MAX 16384
#define ACC_MAX 16 /* (minute, src) counters kept per request */
#define CKPT_EVERY_MS 1000
#define DEFAULT_MAINTAIN_MS 10000
#define MAX_BUCKETS 1000000
#define WAL_AUTOCKPT_PAGES 16384 /* 64 MiB: the writer's fallback checkpoint */
#define ROW_OVERHEAD 64          /* bytes a row costs besides its text, roughly */
#define GENS_PER_LIMIT 16        /* generations per max_bytes or retention period */
#define GEN_MIN_BYTES ((int64_t)256 << 10)
#define GEN_MAX_BYTES ((int64_t)1 << 30)
#define GEN_DEFAULT_BYTES ((int64_t)256 << 20) /* without max_bytes */
#define GEN_MIN_MS ((int64_t)60000)

/* ---- types ---- */

struct src_ent {
    uint64_t hash;
    char *key; /* agent\0uid\0host\0input\0path */
    size_t keylen;
    int64_t src, file;
};

struct src_cache {
    struct src_ent *s; /* open addressing; key == NULL: free */
    size_t cap, n;
};

/* Per (minute, src) counts of one request, written to `minutes`. */
struct acc {
    int64_t minute, src, n, min_id, max_id;
};

/* One append call waiting in the group-commit queue. */
struct areq {
    const struct xl_log_rec *r;
    size_t n;
    int64_t *ids;
    xl_rc rc;
    struct xl_err err;
    uint64_t ins, dup;
    bool done;
    struct areq *next;
};

struct xl_logstore {
    char *path;
    int64_t retention_ms, max_bytes, maintain_ms;
    bool sync_full;

    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct areq *qhead, *qtail;
    bool writing;

    pthread_mutex_t wmu;
    sqlite3 *wdb;
    sqlite3_stmt *st_ins, *st_fts, *st_file, *st_src, *st_min, *st_gen;
    int64_t next_id;
    /* The current generation: rows with id >= gen_first go to fts_<gen_id>. */
    int64_t gen_id, gen_first, gen_created, gen_bytes, gen_add;
    int64_t gen_max_bytes, gen_max_ms; /* when to start the next one */
    struct src_cache cache;
    struct xl_buf key;
    int64_t last_src, last_file; /* the previous record's source, a fast path */
    const struct xl_log_rec *last_rec;

    struct xl_sql_pool rpool; /* read-only connections for searches */

    pthread_mutex_t maint_mu;
    sqlite3 *cdb; /* checkpoints and size figures, background thread only */

    pthread_mutex_t bgmu;
    pthread_cond_t bgcv;
    bool stop;
    pthread_t bg;
    bool bg_started;

    _Atomic uint64_t rows, bytes, file_bytes, inserted, duplicates, deleted, commits;
};

/* ---- small helpers ---- */

static xl_rc sql_fail(struct xl_err *err, sqlite3 *h, const char *what)
{
    return xl_sql_fail(err, h, "logs", what);
}

static xl_rc sql_exec(sqlite3 *h, const char *sql, struct xl_err *err)
{
    return xl_sql_exec(h, sql, "logs", err);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* One int64 from a one-row query; *null when it is NULL or there is no row. */
static xl_rc query_i64(sqlite3 *h, const char *sql, int64_t a, int64_t b, int64_t *out, bool *null,
                       struct xl_err *err)
{
    sqlite3_stmt *st;
    xl_rc rc = XL_OK;
    int r;

    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, h, sql);
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    r = sqlite3_step(st);
    *null = r != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
    *out = *null ? 0 : sqlite3_column_int64(st, 0);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = sql_fail(err, h, sql);
    sqlite3_finalize(st);
    return rc;
}

/* ---- source cache (under wmu) ---- */

static void cache_clear(struct src_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        xl_free(c->s[i].key);
    xl_free(c->s);
    memset(c, 0, sizeof(*c));
}

static struct src_ent *cache_find(struct src_cache *c, const char *key, size_t len, uint64_t h)
{
    if (!c->cap)
        return NULL;
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct src_ent *e = &c->s[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

/* Remember key -> (src, file). A failure only costs a later SQL lookup. */
static void cache_put(struct src_cache *c, const char *key, size_t len, uint64_t h, int64_t src,
                      int64_t file)
{
    struct src_ent *e;
    char *k;

    if (c->n >= SRC_CACHE_MAX)
        cache_clear(c);
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        struct src_ent *ns = xl_calloc(ncap, sizeof(*ns));

        if (!ns)
            return;
        for (size_t i = 0; i < c->cap; i++) {
            size_t j;
            if (!c->s[i].key)
                continue;
            for (j = c->s[i].hash & (ncap - 1); ns[j].key; j = (j + 1) & (ncap - 1))
                ;
            ns[j] = c->s[i];
        }
        xl_free(c->s);
        c->s = ns;
        c->cap = ncap;
    }
    if (!(k = xl_malloc(len)))
        return;
    memcpy(k, key, len);
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        e = &c->s[i];
        if (!e->key) {
            *e = (struct src_ent){h, k, len, src, file};
            c->n++;
            return;
        }
    }
}

/* ---- schema and connections ---- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL,"
    " file_uid INTEGER NOT NULL, UNIQUE(agent_id, file_uid));"
    "CREATE TABLE IF NOT EXISTS srcs(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL,"
    " host TEXT NOT NULL, input TEXT NOT NULL, path TEXT NOT NULL,"
    " UNIQUE(file_id, host, input, path));"
    "CREATE TABLE IF NOT EXISTS logs(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
    " src INTEGER NOT NULL, file INTEGER NOT NULL, off INTEGER NOT NULL, part INTEGER NOT NULL,"
    " parts INTEGER NOT NULL, filters TEXT, line TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS logs_dedup ON logs(file, off, part);"
    "CREATE TABLE IF NOT EXISTS gens(id INTEGER PRIMARY KEY, first_id INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS minutes(minute INTEGER NOT NULL, src INTEGER NOT NULL,"
    " n INTEGER NOT NULL, min_id INTEGER NOT NULL, max_id INTEGER NOT NULL,"
    " PRIMARY KEY(minute, src)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS minutes_src ON minutes(src, minute);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1), ('id_floor', 0);";

/* The path filter as SQL: fnmatch(3) without flags, so '*' also matches
 * '/' (docs/api.md "Logs"). */
static void fn_fnmatch(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *pat = (const char *)sqlite3_value_text(argv[0]);
    const char *s = (const char *)sqlite3_value_text(argv[1]);

    (void)argc;
    sqlite3_result_int(ctx, pat && s && fnmatch(pat, s, 0) == 0);
}

/* ---- generations (under wmu) ---- */

/* The statement that indexes a line in the current generation. */
static xl_rc gen_prepare(struct xl_logstore *ls, struct xl_err *err)
{
    char sql[128];

    sqlite3_finalize(ls->st_fts);
    ls->st_fts = NULL;
    snprintf(sql, sizeof(sql), "INSERT INTO fts_%lld(rowid, line) VALUES(?1, ?2)",
             (long long)ls->gen_id);
    if (sqlite3_prepare_v3(ls->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &ls->st_fts, NULL) !=
        SQLITE_OK) {
        xl_rc rc = sql_fail(err, ls->wdb, "prepare index insert");
        sqlite3_finalize(ls->st_fts);
        ls->st_fts = NULL;
        return rc;
    }
    return XL_OK;
}

/* Start a generation: its FTS table and gens row, in a transaction of its
 * own; rows from next_id on go there. The FTS table is contentless: the
 * text is in logs, and a generation is only ever dropped whole. */
static xl_rc gen_new(struct xl_logstore *ls, int64_t now, struct xl_err *err)
{
    char sql[512];
    int64_t id = ls->gen_id + 1;
    xl_rc rc;

    snprintf(sql, sizeof(sql),
             "BEGIN IMMEDIATE; CREATE VIRTUAL TABLE fts_%lld USING fts5(line, content='',"
             " tokenize='unicode61', detail=full, columnsize=0);"
             " INSERT INTO fts_%lld(fts_%lld, rank) VALUES('automerge', 8);"
             " INSERT INTO gens(id, first_id, created_ms, bytes) VALUES(%lld, %lld, %lld, 0);"
             " COMMIT",
             (long long)id, (long long)id, (long long)id, (long long)id, (long long)ls->next_id,
             (long long)now);
    if ((rc = sql_exec(ls->wdb, sql, err)) != XL_OK) {
        sqlite3_exec(ls->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    ls->gen_id = id;
    ls->gen_first = ls->next_id;
    ls->gen_created = now;
    ls->gen_bytes = 0;
    return gen_prepare(ls, err);
}

/* The newest generation at open, or the first one. */
static xl_rc gen_load(struct xl_logstore *ls, struct xl_err *err)
{
    sqlite3_stmt *st;
    xl_rc rc = XL_OK;
    int r;

    if (sqlite3_prepare_v2(ls->wdb,
                           "SELECT id, first_id, created_ms, bytes FROM gens ORDER BY id DESC"
                           " LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, ls->wdb, "prepare gens");
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        ls->gen_id = sqlite3_column_int64(st, 0);
        ls->gen_first = sqlite3_column_int64(st, 1);
        ls->gen_created = sqlite3_column_int64(st, 2);
        ls->gen_bytes = sqlite3_column_int64(st, 3);
    } else if (r != SQLITE_DONE) {
        rc = sql_fail(err, ls->wdb, "read gens");
    }
    sqlite3_finalize(st);
    if (rc != XL_OK)
        return rc;
    if (r == SQLITE_DONE)
        return gen_new(ls, xl_now_ms(), err);
    return gen_prepare(ls, err);
}

/* Start the next generation when the current one has its share (1/16 of
 * max_bytes or of the retention period). A failure is logged and the
 * current one goes on: nothing is lost, retention is just coarser. */
static void gen_maybe_rotate(struct xl_logstore *ls)
{
    struct xl_err e;
    int64_t now = xl_now_ms();

    if (ls->next_id == ls->gen_first ||
        (ls->gen_bytes < ls->gen_max_bytes &&
         (!ls->gen_max_ms || now - ls->gen_created < ls->gen_max_ms)))
        return;
    if (gen_new(ls, now, &e) != XL_OK)
        xl_log_rl(XL_LOG_WARN, 60, "logs", "new generation: %s", e.msg);
}

static xl_rc open_write(struct xl_logstore *ls, struct xl_err *err)
{
    char pragmas[256];
    int64_t ver, v;
    bool null;
    xl_rc rc;

    if (sqlite3_open_v2(ls->path, &ls->wdb,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return sql_fail(err, ls->wdb, ls->path);
    sqlite3_busy_timeout(ls->wdb, 10000);
    /* auto_vacuum only takes effect before the first table exists. */
    if ((rc = sql_exec(ls->wdb, "PRAGMA auto_vacuum=INCREMENTAL", err)) ||
        (rc = sql_exec(ls->wdb, "PRAGMA journal_mode=WAL", err)))
        return rc;
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA synchronous=%s; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;"
             " PRAGMA journal_size_limit=67108864; PRAGMA wal_autocheckpoint=%d;",
             ls->sync_full ? "FULL" : "NORMAL", WAL_AUTOCKPT_PAGES);
    if ((rc = sql_exec(ls->wdb, pragmas, err)) || (rc = sql_exec(ls->wdb, "BEGIN IMMEDIATE", err)))
        return rc;
    if ((rc = sql_exec(ls->wdb, schema_sql, err)) || (rc = sql_exec(ls->wdb, "COMMIT", err))) {
        sqlite3_exec(ls->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if ((rc = query_i64(ls->wdb, "SELECT value FROM meta WHERE key = 'schema_version'", 0, 0, &ver,
                        &null, err)))
        return rc;
    if (null || ver != SCHEMA_VERSION)
        return xl_err_set(err, XL_EDB, "logs: %s: schema version %lld, expected %d", ls->path,
                          (long long)ver, SCHEMA_VERSION);
    /* Ids only grow, also after retention deleted the newest rows (id_floor
     * keeps the largest id ever deleted), so cursors and live ids stay valid. */
    if ((rc = query_i64(ls->wdb,
                        "SELECT max(coalesce((SELECT max(id) FROM logs), 0),"
                        " (SELECT value FROM meta WHERE key = 'id_floor'))",
                        0, 0, &v, &null, err)))
        return rc;
    ls->next_id = v + 1;
    if ((rc = query_i64(ls->wdb, "SELECT coalesce(sum(n), 0) FROM minutes", 0, 0, &v, &null, err)))
        return rc;
    atomic_store(&ls->rows, (uint64_t)v);
    if (sqlite3_prepare_v3(ls->wdb,
                           "INSERT INTO logs(id, ts, src, file, off, part, parts, filters, line)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                           " ON CONFLICT(file, off, part) DO NOTHING",
                           -1, SQLITE_PREPARE_PERSISTENT, &ls->st_ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ls->wdb, "UPDATE gens SET bytes = bytes + ?1 WHERE id = ?2", -1,
                           SQLITE_PREPARE_PERSISTENT, &ls->st_gen, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ls->wdb,
                           "INSERT INTO files(agent_id, file_uid) VALUES(?1, ?2)"
                           " ON CONFLICT(agent_id, file_uid) DO UPDATE SET file_uid = file_uid"
                           " RETURNING id",
                           -1, SQLITE_PREPARE_PERSISTENT, &ls->st_file, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ls->wdb,
                           "INSERT INTO srcs(file_id, host, input, path) VALUES(?1, ?2, ?3, ?4)"
                           " ON CONFLICT(file_id, host, input, path) DO UPDATE SET host = host"
                           " RETURNING id",
                           -1, SQLITE_PREPARE_PERSISTENT, &ls->st_src, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ls->wdb,
                           "INSERT INTO minutes(minute, src, n, min_id, max_id)"
                           " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(minute, src) DO UPDATE SET"
                           " n = n + excluded.n, min_id = min(min_id, excluded.min_id),"
                           " max_id = max(max_id, excluded.max_id)",
                           -1, SQLITE_PREPARE_PERSISTENT, &ls->st_min, NULL) != SQLITE_OK)
        return sql_fail(err, ls->wdb, "prepare");
    return gen_load(ls, err);
}

/* What every connection but the writer gets: the path filter function
 * and a smaller page cache. */
static int setup_conn(sqlite3 *h)
{
    int r = sqlite3_create_function(h, "xl_fnmatch", 2,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                    fn_fnmatch, NULL, NULL);

    return r != SQLITE_OK ? r : sqlite3_exec(h, "PRAGMA cache_size=-8192", NULL, NULL, NULL);
}

/* Page figures of the file (on the background connection, or any). */
static void refresh_bytes(struct xl_logstore *ls, sqlite3 *h)
{
    int64_t pages, freep, psize;
    bool null;

    if (query_i64(h, "PRAGMA page_count", 0, 0, &pages, &null, NULL) != XL_OK ||
        query_i64(h, "PRAGMA freelist_count", 0, 0, &freep, &null, NULL) != XL_OK ||
        query_i64(h, "PRAGMA page_size", 0, 0, &psize, &null, NULL) != XL_OK)
        return;
    atomic_store(&ls->bytes, (uint64_t)((pages - freep) * psize));
    atomic_store(&ls->file_bytes, (uint64_t)(pages * psize));
}

/* ---- append ---- */

/* The (src, file) ids of r's source: the previous record's, the cache's, or
 * looked up (and created) in SQLite. */
static xl_rc src_ids(struct xl_logstore *ls, const struct xl_log_rec *r, int64_t *src,
                     int64_t *file, struct xl_err *err)
{
    const struct xl_log_rec *p = ls->last_rec;
    char uid[17];
    struct src_ent *e;
    uint64_t h;
    int rs;

    if (p && p->file_uid == r->file_uid && strcmp(p->path, r->path) == 0 &&
        strcmp(p->agent_id, r->agent_id) == 0 && strcmp(p->host, r->host) == 0 &&
        strcmp(p->input, r->input) == 0) {
        *src = ls->last_src;
        *file = ls->last_file;
        return XL_OK;
    }
    snprintf(uid, sizeof(uid), "%016llx", (unsigned long long)r->file_uid);
    xl_buf_reset(&ls->key);
    if (xl_buf_add(&ls->key, r->agent_id, strlen(r->agent_id) + 1) ||
        xl_buf_add(&ls->key, uid, sizeof(uid)) ||
        xl_buf_add(&ls->key, r->host, strlen(r->host) + 1) ||
        xl_buf_add(&ls->key, r->input, strlen(r->input) + 1) ||
        xl_buf_add(&ls->key, r->path, strlen(r->path) + 1))
        return xl_err_set(err, XL_ENOMEM, "logs: out of memory");
    h = fnv1a(ls->key.data, ls->key.len);
    if ((e = cache_find(&ls->cache, ls->key.data, ls->key.len, h))) {
        *src = e->src;
        *file = e->file;
    } else {
        sqlite3_bind_text(ls->st_file, 1, r->agent_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ls->st_file, 2, (sqlite3_int64)r->file_uid);
        rs = sqlite3_step(ls->st_file);
        *file = sqlite3_column_int64(ls->st_file, 0);
        sqlite3_reset(ls->st_file);
        if (rs != SQLITE_ROW)
            return sql_fail(err, ls->wdb, "insert file");
        sqlite3_bind_int64(ls->st_src, 1, *file);
        sqlite3_bind_text(ls->st_src, 2, r->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(ls->st_src, 3, r->input, -1, SQLITE_STATIC);
        sqlite3_bind_text(ls->st_src, 4, r->path, -1, SQLITE_STATIC);
        rs = sqlite3_step(ls->st_src);
        *src = sqlite3_column_int64(ls->st_src, 0);
        sqlite3_reset(ls->st_src);
        if (rs != SQLITE_ROW)
            return sql_fail(err, ls->wdb, "insert source");
        cache_put(&ls->cache, ls->key.data, ls->key.len, h, *src, *file);
    }
    ls->last_rec = r;
    ls->last_src = *src;
    ls->last_file = *file;
    return XL_OK;
}

static xl_rc acc_flush(struct xl_logstore *ls, struct acc *acc, size_t *nacc, struct xl_err *err)
{
    sqlite3_stmt *st = ls->st_min;

    for (size_t i = 0; i < *nacc; i++) {
        int r;
        sqlite3_bind_int64(st, 1, acc[i].minute);
        sqlite3_bind_int64(st, 2, acc[i].src);
        sqlite3_bind_int64(st, 3, acc[i].n);
        sqlite3_bind_int64(st, 4, acc[i].min_id);
        sqlite3_bind_int64(st, 5, acc[i].max_id);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            return sql_fail(err, ls->wdb, "update minutes");
    }
    *nacc = 0;
    return XL_OK;
}

static xl_rc acc_add(struct xl_logstore *ls, struct acc *acc, size_t *nacc, int64_t ts, int64_t src,
                     int64_t id, struct xl_err *err)
{
    int64_t m = floor_div(ts, MINUTE_MS);
    xl_rc rc;

    for (size_t i = *nacc; i-- > 0;) {
        if (acc[i].minute == m && acc[i].src == src) {
            acc[i].n++;
            acc[i].max_id = id;
            return XL_OK;
        }
    }
    if (*nacc == ACC_MAX && (rc = acc_flush(ls, acc, nacc, err)) != XL_OK)
        return rc;
    acc[(*nacc)++] = (struct acc){m, src, 1, id, id};
    return XL_OK;
}

/* Insert one request's records into the open transaction (under wmu). */
static xl_rc insert_req(struct xl_logstore *ls, struct areq *a, struct xl_err *err)
{
    struct acc acc[ACC_MAX];
    size_t nacc = 0;
    xl_rc rc;

    a->ins = a->dup = 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct xl_log_rec *r = &a->r[i];
        sqlite3_stmt *st = ls->st_ins;
        int64_t src = 0, file = 0, id = ls->next_id;
        int s;

        if ((rc = src_ids(ls, r, &src, &file, err)) != XL_OK)
            return rc;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, r->ts_ms);
        sqlite3_bind_int64(st, 3, src);
        sqlite3_bind_int64(st, 4, file);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)r->offset);
        sqlite3_bind_int64(st, 6, r->part);
        sqlite3_bind_int64(st, 7, r->parts);
        if (r->filters && *r->filters)
            sqlite3_bind_text(st, 8, r->filters, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        sqlite3_bind_text(st, 9, r->len ? r->line : "", (int)r->len, SQLITE_STATIC);
        s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return sql_fail(err, ls->wdb, "insert line");
        if (sqlite3_changes(ls->wdb) == 0) {
            if (a->ids)
                a->ids[i] = 0;
            a->dup++;
            continue;
        }
        ls->next_id++;
        st = ls->st_fts;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, r->len ? r->line : "", (int)r->len, SQLITE_STATIC);
        s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return sql_fail(err, ls->wdb, "index line");
        if ((rc = acc_add(ls, acc, &nacc, r->ts_ms, src, id, err)) != XL_OK)
            return rc;
        if (a->ids)
            a->ids[i] = id;
        a->ins++;
        ls->gen_add += (int64_t)r->len + ROW_OVERHEAD;
    }
    return acc_flush(ls, acc, &nacc, err);
}

/* Open a write transaction, in the current generation. */
static xl_rc begin(struct xl_logstore *ls, struct xl_err *err)
{
    xl_rc rc;

    if (!ls->st_fts && (rc = gen_prepare(ls, err)) != XL_OK)
        return rc;
    ls->gen_add = 0;
    ls->last_rec = NULL;
    return sql_exec(ls->wdb, "BEGIN IMMEDIATE", err);
}

/* Count the generation's bytes and commit. */
static xl_rc commit(struct xl_logstore *ls, struct xl_err *err)
{
    int r;

    if (ls->gen_add) {
        sqlite3_bind_int64(ls->st_gen, 1, ls->gen_add);
        sqlite3_bind_int64(ls->st_gen, 2, ls->gen_id);
        r = sqlite3_step(ls->st_gen);
        sqlite3_reset(ls->st_gen);
        if (r != SQLITE_DONE)
            return sql_fail(err, ls->wdb, "update gens");
    }
    if (sqlite3_exec(ls->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, ls->wdb, "commit");
    ls->gen_bytes += ls->gen_add;
    atomic_fetch_add(&ls->commits, 1);
    return XL_OK;
}

/* Undo an open transaction: SQLite's and what this process cached of it. */
static void rollback(struct xl_logstore *ls, int64_t id0)
{
    sqlite3_exec(ls->wdb, "ROLLBACK", NULL, NULL, NULL);
    ls->next_id = id0;
    ls->last_rec = NULL;
    cache_clear(&ls->cache);
}

/* Requests grp (a list) in one transaction. If anything fails, roll back and
 * run each request in a transaction of its own, so that one bad request
 * does not fail the others. Sets every a->rc. */
static void write_group(struct xl_logstore *ls, struct areq *grp)
{
    struct xl_err e = {0};
    int64_t id0;
    struct areq *a;
    xl_rc rc;

    pthread_mutex_lock(&ls->wmu);
    gen_maybe_rotate(ls);
    id0 = ls->next_id;
    rc = begin(ls, &e);
    for (a = grp; rc == XL_OK && a; a = a->next)
        rc = insert_req(ls, a, &e);
    if (rc == XL_OK)
        rc = commit(ls, &e);
    if (rc == XL_OK) {
        for (a = grp; a; a = a->next)
            a->rc = XL_OK;
        goto out;
    }
    rollback(ls, id0);
    if (!grp->next) {
        grp->rc = rc;
        grp->err = e;
        goto out;
    }
    for (a = grp; a; a = a->next) {
        id0 = ls->next_id;
        if ((a->rc = begin(ls, &a->err)) == XL_OK &&
            (a->rc = insert_req(ls, a, &a->err)) == XL_OK && (a->rc = commit(ls, &a->err)) == XL_OK)
            continue;
        rollback(ls, id0);
    }
out:
    ls->last_rec = NULL;
    pthread_mutex_unlock(&ls->wmu);
    for (a = grp; a; a = a->next) {
        if (a->rc != XL_OK)
            continue;
        atomic_fetch_add(&ls->inserted, a->ins);
        atomic_fetch_add(&ls->duplicates, a->dup);
        atomic_fetch_add(&ls->rows, a->ins);
    }
}

static xl_rc validate(const struct xl_log_rec *r, size_t n, struct xl_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *miss = !r[i].host               ? "host"
                           : !r[i].agent_id         ? "agent_id"
                           : !r[i].input            ? "input"
                           : !r[i].path             ? "path"
                           : !r[i].line && r[i].len ? "line"
                                                    : NULL;
        if (miss)
            return xl_err_set(err, XL_EINVAL, "logs: records[%zu].%s: missing", i, miss);
        if (r[i].len > INT_MAX)
            return xl_err_set(err, XL_ETOOBIG, "logs: records[%zu].line: %zu bytes, at most %d", i,
                              r[i].len, INT_MAX);
        if (r[i].offset > INT64_MAX)
            return xl_err_set(err, XL_EINVAL, "logs: records[%zu].offset: too large", i);
    }
    return XL_OK;
}

/* Group commit: queue the request; the first caller that finds nobody
 * writing takes everything queued (up to GROUP_MAX_ROWS rows) and writes
 * it in one transaction while the others wait for their result. */
xl_rc xl_logstore_append(struct xl_logstore *ls, const struct xl_log_rec *r, size_t n, int64_t *ids,
                         struct xl_err *err)
{
    struct areq me = {.r = r, .n = n, .ids = ids};
    xl_rc rc;

    if (n == 0)
        return XL_OK;
    if ((rc = validate(r, n, err)) != XL_OK)
        return rc;
    pthread_mutex_lock(&ls->qmu);
    if (ls->qtail)
        ls->qtail->next = &me;
    else
        ls->qhead = &me;
    ls->qtail = &me;
    while (!me.done) {
        struct areq *grp, *last, *a, *next;
        size_t rows;

        if (ls->writing) {
            pthread_cond_wait(&ls->qcv, &ls->qmu);
            continue;
        }
        grp = last = ls->qhead;
        rows = grp->n;
        while (last->next && rows + last->next->n <= GROUP_MAX_ROWS) {
            last = last->next;
            rows += last->n;
        }
        ls->qhead = last->next;
        if (!ls->qhead)
            ls->qtail = NULL;
        last->next = NULL;
        ls->writing = true;
        pthread_mutex_unlock(&ls->qmu);
        write_group(ls, grp);
        pthread_mutex_lock(&ls->qmu);
        for (a = grp; a; a = next) {
            next = a->next;
            a->done = true;
        }
        ls->writing = false;
        pthread_cond_broadcast(&ls->qcv);
    }
    pthread_mutex_unlock(&ls->qmu);
    if (me.rc != XL_OK && err)
        *err = me.err;
    return me.rc;
}

/* ---- queries ---- */

struct gen {
    int64_t id, first;
};

/* A search or histogram being built: the parsed text, the generations of
 * the read transaction's snapshot, the SQL. */
struct qctx {
    const struct xl_log_query *q;
    struct xl_logq *text;
    const char *fts;
    bool negated, has_src;
    struct gen *gens;
    size_t ngens;
    struct xl_buf sql;
    sqlite3 *h;
    bool in_txn;
};

static xl_rc qctx_init(struct qctx *c, const struct xl_log_query *q, struct xl_err *err)
{
    xl_rc rc;

    memset(c, 0, sizeof(*c));
    c->q = q;
    c->has_src =
        (q->host && *q->host) || (q->input && *q->input) || (q->path_glob && *q->path_glob);
    xl_buf_init(&c->sql, 64 << 10);
    if (q->text && *q->text) {
        if ((rc = xl_logq_compile(q->text, &c->text, err)) != XL_OK) {
            if (rc == XL_EINVAL)
                xl_err_prefix(err, "text: ");
            return rc;
        }
        c->fts = xl_logq_fts(c->text, &c->negated);
    }
    return XL_OK;
}

/* Open a read transaction on h (every statement of the query sees one
 * snapshot, so a generation cannot vanish between them) and, for a text
 * query, read the generations. */
static xl_rc qctx_begin(struct qctx *c, sqlite3 *h, struct xl_err *err)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    xl_rc rc = XL_OK;
    int r;

    c->h = h;
    if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, h, "begin");
    c->in_txn = true;
    if (!c->fts)
        return XL_OK;
    if (sqlite3_prepare_v2(h, "SELECT id, first_id FROM gens ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(err, h, "prepare gens");
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (xl_grow((void **)&c->gens, &cap, c->ngens + 1, sizeof(*c->gens)) != 0) {
            rc = xl_err_set(err, XL_ENOMEM, "logs: out of memory");
            break;
        }
        c->gens[c->ngens++] =
            (struct gen){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    }
    if (rc == XL_OK && r != SQLITE_DONE)
        rc = sql_fail(err, h, "read gens");
    sqlite3_finalize(st);
    return rc;
}

static void qctx_cleanup(struct qctx *c)
{
    if (c->in_txn)
        sqlite3_exec(c->h, "COMMIT", NULL, NULL, NULL);
    xl_free(c->gens);
    xl_logq_free(c->text);
    xl_buf_cleanup(&c->sql);
}

/* The ids generation k covers, within [lo, hi]; false when none. */
static bool gen_range(const struct qctx *c, size_t k, int64_t lo, int64_t hi, int64_t *glo,
                      int64_t *ghi)
{
    *glo = c->gens[k].first > lo ? c->gens[k].first : lo;
    *ghi = k + 1 < c->ngens && c->gens[k + 1].first - 1 < hi ? c->gens[k + 1].first - 1 : hi;
    return *glo <= *ghi;
}

static xl_rc add_src_filter(struct qctx *c, const char *col)
{
    const struct xl_log_query *q = c->q;

    if (!c->has_src)
        return XL_OK;
    return xl_buf_printf(&c->sql, " AND %s IN (SELECT id FROM srcs WHERE 1%s%s%s)", col,
                         q->host && *q->host ? " AND host = :host" : "",
                         q->input && *q->input ? " AND input = :input" : "",
                         q->path_glob && *q->path_glob ? " AND xl_fnmatch(:glob, path)" : "");
}

static void bind_named(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);

    if (i)
        sqlite3_bind_int64(st, i, v);
}

static void bind_common(struct qctx *c, sqlite3_stmt *st)
{
    const struct xl_log_query *q = c->q;
    int i;

    if ((i = sqlite3_bind_parameter_index(st, ":host")))
        sqlite3_bind_text(st, i, q->host, -1, SQLITE_STATIC);
    if ((i = sqlite3_bind_parameter_index(st, ":input")))
        sqlite3_bind_text(st, i, q->input, -1, SQLITE_STATIC);
    if ((i = sqlite3_bind_parameter_index(st, ":glob")))
        sqlite3_bind_text(st, i, q->path_glob, -1, SQLITE_STATIC);
    if ((i = sqlite3_bind_parameter_index(st, ":q")))
        sqlite3_bind_text(st, i, c->fts, -1, SQLITE_STATIC);
}

/* Error of a query step: a text query FTS5 refused is the caller's
 * problem (XL_EINVAL, without SQLite's words), anything else the store's. */
static xl_rc step_fail(struct qctx *c, sqlite3 *h, struct xl_err *err)
{
    if (c->fts && sqlite3_errcode(h) == SQLITE_ERROR && strncmp(sqlite3_errmsg(h), "fts5:", 5) == 0)
        return xl_err_set(err, XL_EINVAL, "text: the full-text index cannot evaluate this query");
    return sql_fail(err, h, "search");
}

/* Bounds [*lo, *hi] on the ids of rows with ts in [from, to] (0: open) of
 * the selected sources, from the minutes table. *none when no row can
 * match. Without a time range or source filter: everything. */
static xl_rc id_bounds(struct qctx *c, int64_t from, int64_t to, int64_t *lo, int64_t *hi,
                       bool *none, struct xl_err *err)
{
    sqlite3_stmt *st;
    xl_rc rc;
    int r;

    *lo = 1;
    *hi = INT64_MAX;
    *none = false;
    if (!from && !to && !c->has_src)
        return XL_OK;
    xl_buf_reset(&c->sql);
    if ((rc = xl_buf_adds(&c->sql, "SELECT min(min_id), max(max_id) FROM minutes"
                                   " WHERE minute >= :mlo AND minute <= :mhi")) ||
        (rc = add_src_filter(c, "src")))
        return xl_err_set(err, rc, "logs: query too long");
    if (sqlite3_prepare_v2(c->h, c->sql.data, (int)c->sql.len, &st, NULL) != SQLITE_OK)
        return sql_fail(err, c->h, "prepare bounds");
    bind_common(c, st);
    bind_named(st, ":mlo", from ? floor_div(from, MINUTE_MS) : INT64_MIN);
    bind_named(st, ":mhi", to ? floor_div(to, MINUTE_MS) : INT64_MAX);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *lo = sqlite3_column_int64(st, 0);
        *hi = sqlite3_column_int64(st, 1);
    } else if (r == SQLITE_ROW || r == SQLITE_DONE) {
        *none = true;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return sql_fail(err, c->h, "bounds");
    return XL_OK;
}

/* Prepare a row scan over ids [:lo, :hi] and ts [:from, :to] of the
 * selected sources, matching the text in generation gen's index, ordered
 * by id (order NULL: unordered) with LIMIT :lim. */
static xl_rc scan_prepare(struct qctx *c, const char *cols, bool joins, int64_t gen,
                          const char *order, sqlite3_stmt **st, struct xl_err *err)
{
    struct xl_buf *b = &c->sql;
    bool pos = c->fts && !c->negated;
    const char *idcol = pos ? "x.rowid" : "l.id";
    xl_rc rc;

    xl_buf_reset(b);
    if (pos)
        rc = xl_buf_printf(b,
                           "SELECT %s FROM fts_%lld x CROSS JOIN logs l%s WHERE"
                           " x.fts_%lld MATCH :q AND l.id = x.rowid AND",
                           cols, (long long)gen,
                           joins ? " CROSS JOIN srcs s CROSS JOIN files f" : "", (long long)gen);
    else
        rc = xl_buf_printf(b, "SELECT %s FROM logs l%s WHERE", cols,
                           joins ? " CROSS JOIN srcs s CROSS JOIN files f" : "");
    if (rc == XL_OK)
        rc = xl_buf_printf(b, " %s >= :lo AND %s <= :hi AND l.ts >= :from AND l.ts <= :to", idcol,
                           idcol);
    if (rc == XL_OK && joins)
        rc = xl_buf_adds(b, " AND s.id = l.src AND f.id = s.file_id");
    if (rc == XL_OK && c->fts && c->negated)
        rc = xl_buf_printf(b,
                           " AND l.id NOT IN (SELECT rowid FROM fts_%lld WHERE fts_%lld"
                           " MATCH :q AND rowid >= :lo AND rowid <= :hi)",
                           (long long)gen, (long long)gen);
    if (rc == XL_OK)
        rc = add_src_filter(c, "l.src");
    if (rc == XL_OK && order)
        rc = xl_buf_printf(b, " ORDER BY %s %s LIMIT :lim", idcol, order);
    if (rc != XL_OK)
        return xl_err_set(err, rc, "logs: query too long");
    if (sqlite3_prepare_v2(c->h, b->data, (int)b->len, st, NULL) != SQLITE_OK)
        return sql_fail(err, c->h, "prepare search");
    bind_common(c, *st);
    return XL_OK;
}

struct search_state {
    xl_log_row_cb cb;
    void *ctx;
    size_t limit, got;
    int64_t next;
    bool done;
};

/* Rows of ids [lo, hi] in generation gen (or all, without text), up to
 * what the page still needs plus one to know if there is more. */
static xl_rc search_range(struct qctx *c, struct search_state *s, int64_t gen, int64_t lo,
                          int64_t hi, struct xl_err *err)
{
    const struct xl_log_query *q = c->q;
    sqlite3_stmt *st = NULL;
    xl_rc rc;
    int r;

    if ((rc = scan_prepare(c,
                           "l.id, l.ts, l.off, l.part, l.parts, l.filters, l.line, s.host,"
                           " s.input, s.path, f.agent_id, f.file_uid",
                           true, gen, q->oldest_first ? "ASC" : "DESC", &st, err)) != XL_OK)
        return rc;
    bind_named(st, ":lo", lo);
    bind_named(st, ":hi", hi);
    bind_named(st, ":from", q->from_ms ? q->from_ms : INT64_MIN);
    bind_named(st, ":to", q->to_ms ? q->to_ms : INT64_MAX);
    bind_named(st, ":lim", (int64_t)(s->limit - s->got) + 1);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct xl_log_row row;

        row.id = sqlite3_column_int64(st, 0);
        if (s->got == s->limit) {
            /* One more than asked: there is a next page, starting here. */
            s->next = q->oldest_first ? row.id - 1 : row.id + 1;
            s->done = true;
            break;
        }
        row.ts_ms = sqlite3_column_int64(st, 1);
        row.offset = (uint64_t)sqlite3_column_int64(st, 2);
        row.part = (uint32_t)sqlite3_column_int64(st, 3);
        row.parts = (uint32_t)sqlite3_column_int64(st, 4);
        row.filters = (const char *)sqlite3_column_text(st, 5);
        row.line = (const char *)sqlite3_column_text(st, 6);
        row.len = (size_t)sqlite3_column_bytes(st, 6);
        row.host = (const char *)sqlite3_column_text(st, 7);
        row.input = (const char *)sqlite3_column_text(st, 8);
        row.path = (const char *)sqlite3_column_text(st, 9);
        row.agent_id = (const char *)sqlite3_column_text(st, 10);
        row.file_uid = (uint64_t)sqlite3_column_int64(st, 11);
        if (!row.line || !row.host || !row.input || !row.path || !row.agent_id) {
            rc = xl_err_set(err, XL_ENOMEM, "logs: out of memory reading row %lld",
                            (long long)row.id);
            goto out;
        }
        s->got++;
        if (s->cb(s->ctx, &row) != 0) {
            s->next = row.id;
            s->done = true;
            break;
        }
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = step_fail(c, c->h, err);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Newest first (or oldest first): see logs.h. Runs on a pooled read
 * connection inside one read transaction; never waits for the writer. */
xl_rc xl_logstore_search(struct xl_logstore *ls, const struct xl_log_query *q, xl_log_row_cb cb,
                         void *ctx, int64_t *next_cursor, struct xl_err *err)
{
    struct search_state s = {.cb = cb, .ctx = ctx, .limit = q->limit ? q->limit : LIMIT_DEFAULT};
    sqlite3 *conn = NULL;
    struct qctx c;
    int64_t lo, hi, glo, ghi;
    bool none;
    xl_rc rc;

    if (next_cursor)
        *next_cursor = 0;
    if (s.limit > LIMIT_MAX)
        s.limit = LIMIT_MAX;
    if ((rc = qctx_init(&c, q, err)) != XL_OK ||
        (rc = xl_sql_pool_get(&ls->rpool, &conn, err)) != XL_OK ||
        (rc = qctx_begin(&c, conn, err)) != XL_OK ||
        (rc = id_bounds(&c, q->from_ms, q->to_ms, &lo, &hi, &none, err)) != XL_OK || none)
        goto out;
    if (q->before_id > 0 && q->before_id - 1 < hi)
        hi = q->before_id - 1;
    if (q->after_id > 0 && q->after_id + 1 > lo)
        lo = q->after_id + 1;
    if (lo > hi)
        goto out;
    if (!c.fts) {
        rc = search_range(&c, &s, 0, lo, hi, err);
    } else {
        /* Generations in id order, newest first unless asked otherwise. */
        for (size_t i = 0; rc == XL_OK && !s.done && i < c.ngens; i++) {
            size_t k = q->oldest_first ? i : c.ngens - 1 - i;
            if (gen_range(&c, k, lo, hi, &glo, &ghi))
                rc = search_range(&c, &s, c.gens[k].id, glo, ghi, err);
        }
    }
    if (rc == XL_OK && next_cursor)
        *next_cursor = s.next;
out:
    qctx_cleanup(&c);
    xl_sql_pool_put(&ls->rpool, conn);
    return rc;
}

/* Count rows with ts in [a, b] into counts[] (bucket of ts: floor(ts /
 * step) - base), generation by generation for a text query. */
static xl_rc count_rows(struct qctx *c, int64_t a, int64_t b, int64_t step, int64_t base,
                        uint64_t *counts, size_t nb, struct xl_err *err)
{
    int64_t lo, hi, glo, ghi;
    bool none;
    xl_rc rc;

    if ((rc = id_bounds(c, a, b, &lo, &hi, &none, err)) != XL_OK || none)
        return rc;
    for (size_t k = 0; k < (c->fts ? c->ngens : 1); k++) {
        sqlite3_stmt *st = NULL;
        int r;

        glo = lo;
        ghi = hi;
        if (c->fts && !gen_range(c, k, lo, hi, &glo, &ghi))
            continue;
        if ((rc = scan_prepare(c, "l.ts", false, c->fts ? c->gens[k].id : 0, NULL, &st, err)))
            return rc;
        bind_named(st, ":lo", glo);
        bind_named(st, ":hi", ghi);
        bind_named(st, ":from", a);
        bind_named(st, ":to", b);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t i = floor_div(sqlite3_column_int64(st, 0), step) - base;
            if (i >= 0 && (size_t)i < nb)
                counts[i]++;
        }
        if (r != SQLITE_DONE)
            rc = step_fail(c, c->h, err);
        sqlite3_finalize(st);
        if (rc != XL_OK)
            return rc;
    }
    return XL_OK;
}

/* Whole minutes [mlo, mhi] from the minutes table (step is a multiple of a
 * minute, so each minute falls in one bucket). */
static xl_rc count_minutes(struct qctx *c, int64_t mlo, int64_t mhi, int64_t step, int64_t base,
                           uint64_t *counts, size_t nb, struct xl_err *err)
{
    sqlite3_stmt *st = NULL;
    xl_rc rc = XL_OK;
    int r;

    xl_buf_reset(&c->sql);
    if ((rc = xl_buf_adds(&c->sql, "SELECT minute, sum(n) FROM minutes"
                                   " WHERE minute >= :mlo AND minute <= :mhi")) ||
        (rc = add_src_filter(c, "src")) || (rc = xl_buf_adds(&c->sql, " GROUP BY minute")))
        return xl_err_set(err, rc, "logs: query too long");
    if (sqlite3_prepare_v2(c->h, c->sql.data, (int)c->sql.len, &st, NULL) != SQLITE_OK)
        return sql_fail(err, c->h, "prepare histogram");
    bind_common(c, st);
    bind_named(st, ":mlo", mlo);
    bind_named(st, ":mhi", mhi);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = floor_div(sqlite3_column_int64(st, 0) * MINUTE_MS, step) - base;
        if (i >= 0 && (size_t)i < nb)
            counts[i] += (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (r != SQLITE_DONE)
        rc = sql_fail(err, c->h, "histogram");
    sqlite3_finalize(st);
    return rc;
}

/* Bucket counts over [from, to] (open ends: where the data starts and
 * ends). XL_EINVAL for a bad step or text, XL_ERANGE beyond MAX_BUCKETS. */
xl_rc xl_logstore_histogram(struct xl_logstore *ls, const struct xl_log_query *q, int64_t step_ms,
                            xl_log_bucket_cb cb, void *ctx, struct xl_err *err)
{
    sqlite3 *conn = NULL;
    struct qctx c;
    uint64_t *counts = NULL;
    int64_t from = q->from_ms, to = q->to_ms, base, nb64, v;
    size_t nb;
    bool null;
    xl_rc rc;

    if (step_ms <= 0)
        return xl_err_set(err, XL_EINVAL, "logs: histogram step must be positive");
    if ((rc = qctx_init(&c, q, err)) != XL_OK ||
        (rc = xl_sql_pool_get(&ls->rpool, &conn, err)) != XL_OK ||
        (rc = qctx_begin(&c, conn, err)) != XL_OK)
        goto out;
    /* An open end is where the data ends. */
    if (!from) {
        if ((rc = query_i64(c.h, "SELECT min(minute) FROM minutes", 0, 0, &v, &null, err)) !=
                XL_OK ||
            null)
            goto out;
        from = v * MINUTE_MS;
    }
    if (!to) {
        if ((rc = query_i64(c.h, "SELECT max(minute) FROM minutes", 0, 0, &v, &null, err)) !=
                XL_OK ||
            null)
            goto out;
        to = v * MINUTE_MS + MINUTE_MS - 1;
    }
    if (to < from) {
        rc = xl_err_set(err, XL_EINVAL, "logs: histogram: to is before from");
        goto out;
    }
    base = floor_div(from, step_ms);
    nb64 = floor_div(to, step_ms) - base + 1;
    if (nb64 > MAX_BUCKETS) {
        rc = xl_err_set(err, XL_ERANGE, "logs: histogram: %lld buckets, at most %d",
                        (long long)nb64, MAX_BUCKETS);
        goto out;
    }
    nb = (size_t)nb64;
    if (!(counts = xl_calloc(nb, sizeof(*counts)))) {
        rc = xl_err_set(err, XL_ENOMEM, "logs: out of memory");
        goto out;
    }
    if (!c.fts && step_ms % MINUTE_MS == 0) {
        /* Whole minutes inside [from, to] from the counts; the cut minutes
         * at either end by reading their rows. */
        int64_t mlo = floor_div(from + MINUTE_MS - 1, MINUTE_MS);
        int64_t mhi = floor_div(to + 1, MINUTE_MS) - 1;

        if (mlo > mhi) {
            rc = count_rows(&c, from, to, step_ms, base, counts, nb, err);
        } else {
            rc = count_minutes(&c, mlo, mhi, step_ms, base, counts, nb, err);
            if (rc == XL_OK && from < mlo * MINUTE_MS)
                rc = count_rows(&c, from, mlo * MINUTE_MS - 1, step_ms, base, counts, nb, err);
            if (rc == XL_OK && to >= (mhi + 1) * MINUTE_MS)
                rc = count_rows(&c, (mhi + 1) * MINUTE_MS, to, step_ms, base, counts, nb, err);
        }
    } else {
        rc = count_rows(&c, from, to, step_ms, base, counts, nb, err);
    }
    if (rc != XL_OK)
        goto out;
    for (size_t i = 0; i < nb; i++)
        if (cb(ctx, (base + (int64_t)i) * step_ms, counts[i]) != 0)
            break;
out:
    xl_free(counts);
    qctx_cleanup(&c);
    xl_sql_pool_put(&ls->rpool, conn);
    return rc;
}

/* ---- retention ---- */

/* Delete rows with ids [lo, hi] and ts < cutoff in the open transaction:
 * their counts in minutes, then the rows. Their FTS entries stay until the
 * generation is dropped (searches join on logs, so they are never seen).
 * *n gets how many. */
static xl_rc delete_rows(struct xl_logstore *ls, int64_t lo, int64_t hi, int64_t cutoff,
                         uint64_t *n, struct xl_err *err)
{
    static const char *const sql[] = {
        "UPDATE minutes SET n = n - d.c FROM (SELECT (ts - ((ts % 60000) + 60000) % 60000)"
        " / 60000 AS m, src, count(*) AS c FROM logs WHERE id >= ?1 AND id <= ?2 AND ts < ?3"
        " GROUP BY 1, 2) AS d WHERE minutes.minute = d.m AND minutes.src = d.src",
        "DELETE FROM minutes WHERE n <= 0",
        "DELETE FROM logs WHERE id >= ?1 AND id <= ?2 AND ts < ?3",
        "UPDATE meta SET value = max(value, ?2) WHERE key = 'id_floor'",
    };

    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st;
        int r;

        if (sqlite3_prepare_v3(ls->wdb, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK)
            return sql_fail(err, ls->wdb, "prepare retention");
        if (sqlite3_bind_parameter_count(st) >= 2) {
            sqlite3_bind_int64(st, 1, lo);
            sqlite3_bind_int64(st, 2, hi);
        }
        if (sqlite3_bind_parameter_count(st) >= 3)
            sqlite3_bind_int64(st, 3, cutoff);
        r = sqlite3_step(st);
        if (i == 2)
            *n = (uint64_t)sqlite3_changes(ls->wdb);
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
            return sql_fail(err, ls->wdb, "retention");
    }
    return XL_OK;
}

static bool stopping(struct xl_logstore *ls)
{
    bool s;

    pthread_mutex_lock(&ls->bgmu);
    s = ls->stop;
    pthread_mutex_unlock(&ls->bgmu);
    return s;
}

/* One retention transaction under wmu; then pause as long as it took, so
 * that retention never has the writer more than half the time. */
static xl_rc delete_chunk(struct xl_logstore *ls, int64_t lo, int64_t hi, int64_t cutoff,
                          uint64_t *n, struct xl_err *err)
{
    int64_t t0 = xl_mono_ms();
    xl_rc rc;

    *n = 0;
    pthread_mutex_lock(&ls->wmu);
    if ((rc = sql_exec(ls->wdb, "BEGIN IMMEDIATE", err)) == XL_OK &&
        (rc = delete_rows(ls, lo, hi, cutoff, n, err)) == XL_OK &&
        (rc = sql_exec(ls->wdb, "COMMIT", err)) == XL_OK) {
        atomic_fetch_add(&ls->deleted, *n);
        atomic_fetch_sub(&ls->rows, *n);
    } else {
        sqlite3_exec(ls->wdb, "ROLLBACK", NULL, NULL, NULL);
        *n = 0;
    }
    pthread_mutex_unlock(&ls->wmu);
    if (rc == XL_OK)
        sleep_ms(xl_mono_ms() - t0);
    return rc;
}

/* Delete rows with ids [lo, hi] and ts < cutoff, a chunk of ids at a time. */
static xl_rc delete_range(struct xl_logstore *ls, int64_t lo, int64_t hi, int64_t cutoff,
                          uint64_t *total, struct xl_err *err)
{
    while (lo <= hi && !stopping(ls)) {
        int64_t end = hi - lo < DEL_CHUNK ? hi : lo + DEL_CHUNK - 1;
        uint64_t n;
        xl_rc rc;

        if ((rc = delete_chunk(ls, lo, end, cutoff, &n, err)) != XL_OK)
            return rc;
        *total += n;
        lo = end + 1;
    }
    return XL_OK;
}

/* Drop generation gid's index with its gens row. */
static xl_rc gen_drop(struct xl_logstore *ls, int64_t gid, struct xl_err *err)
{
    char sql[160];
    xl_rc rc;

    snprintf(sql, sizeof(sql),
             "BEGIN IMMEDIATE; DROP TABLE IF EXISTS fts_%lld; DELETE FROM gens WHERE id = %lld;"
             " COMMIT",
             (long long)gid, (long long)gid);
    pthread_mutex_lock(&ls->wmu);
    if ((rc = sql_exec(ls->wdb, sql, err)) != XL_OK)
        sqlite3_exec(ls->wdb, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&ls->wmu);
    return rc;
}

/* The two oldest generations (id and first id), and the smallest row id
 * (next_id when there are no rows). *n: how many generations (0-2). */
static xl_rc oldest_gens(struct xl_logstore *ls, struct gen g[2], size_t *n, int64_t *min_id,
                         struct xl_err *err)
{
    sqlite3_stmt *st;
    bool null;
    xl_rc rc = XL_OK;
    int r;

    *n = 0;
    pthread_mutex_lock(&ls->wmu);
    if (sqlite3_prepare_v2(ls->wdb, "SELECT id, first_id FROM gens ORDER BY id LIMIT 2", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = sql_fail(err, ls->wdb, "prepare gens");
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        g[(*n)++] = (struct gen){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        rc = sql_fail(err, ls->wdb, "read gens");
        goto out;
    }
    rc = query_i64(ls->wdb, "SELECT min(id) FROM logs", 0, 0, min_id, &null, err);
    if (null)
        *min_id = ls->next_id;
out:
    pthread_mutex_unlock(&ls->wmu);
    return rc;
}

/* Drop the oldest generations none of whose rows is left. */
static xl_rc drop_empty_gens(struct xl_logstore *ls, struct xl_err *err)
{
    struct gen g[2];
    int64_t min_id;
    size_t n;
    xl_rc rc;

    while (!stopping(ls)) {
        if ((rc = oldest_gens(ls, g, &n, &min_id, err)) != XL_OK)
            return rc;
        if (n < 2 || g[1].first > min_id)
            return XL_OK;
        if ((rc = gen_drop(ls, g[0].id, err)) != XL_OK)
            return rc;
    }
    return XL_OK;
}

/* Rows with ts < cutoff. Every such row has an id at most the largest id
 * of a minute that starts before the cutoff; walk ids up to there. */
static xl_rc retain_age(struct xl_logstore *ls, int64_t cutoff, uint64_t *total, struct xl_err *err)
{
    int64_t cut_id, lo;
    bool null;
    xl_rc rc;

    pthread_mutex_lock(&ls->wmu);
    rc = query_i64(ls->wdb, "SELECT max(max_id) FROM minutes WHERE minute < ?1",
                   floor_div(cutoff + MINUTE_MS - 1, MINUTE_MS), 0, &cut_id, &null, err);
    if (rc == XL_OK && !null)
        rc = query_i64(ls->wdb, "SELECT min(id) FROM logs", 0, 0, &lo, &null, err);
    pthread_mutex_unlock(&ls->wmu);
    if (rc != XL_OK || null)
        return rc;
    return delete_range(ls, lo, cut_id, cutoff, total, err);
}

/* While the used size is over max_bytes: delete the oldest generation's
 * rows and drop its index. A generation holds about 1/16 of max_bytes, so
 * the store ends a little under the limit. */
static xl_rc retain_size(struct xl_logstore *ls, uint64_t *total, struct xl_err *err)
{
    struct gen g[2];
    int64_t min_id;
    size_t n;
    xl_rc rc = XL_OK;

    while (!stopping(ls)) {
        pthread_mutex_lock(&ls->wmu);
        refresh_bytes(ls, ls->wdb);
        pthread_mutex_unlock(&ls->wmu);
        if (atomic_load(&ls->bytes) <= (uint64_t)ls->max_bytes)
            break;
        if ((rc = oldest_gens(ls, g, &n, &min_id, err)) != XL_OK)
            break;
        if (n < 2) {
            /* All in the current generation: close it first. */
            bool empty;

            pthread_mutex_lock(&ls->wmu);
            empty = ls->next_id == min_id;
            rc = ls->next_id > ls->gen_first ? gen_new(ls, xl_now_ms(), err) : XL_OK;
            pthread_mutex_unlock(&ls->wmu);
            if (rc != XL_OK || empty)
                break;
            continue;
        }
        if ((rc = delete_range(ls, min_id, g[1].first - 1, INT64_MAX, total, err)) != XL_OK ||
            stopping(ls) || (rc = gen_drop(ls, g[0].id, err)) != XL_OK)
            break;
    }
    return rc;
}

/* Give free pages back to the file system, a step at a time. */
static xl_rc shrink(struct xl_logstore *ls, struct xl_err *err)
{
    int64_t freep;
    bool null;
    xl_rc rc = XL_OK;

    while (rc == XL_OK && !stopping(ls)) {
        int64_t t0 = xl_mono_ms();

        pthread_mutex_lock(&ls->wmu);
        rc = query_i64(ls->wdb, "PRAGMA freelist_count", 0, 0, &freep, &null, err);
        if (rc == XL_OK && freep > 0)
            rc = sql_exec(ls->wdb, "PRAGMA incremental_vacuum(" VACUUM_STEP ")", err);
        pthread_mutex_unlock(&ls->wmu);
        if (rc != XL_OK || freep <= 0)
            break;
        sleep_ms(xl_mono_ms() - t0);
    }
    return rc;
}

/* One retention pass (logs.h); serialised with the background thread's. */
xl_rc xl_logstore_maintain(struct xl_logstore *ls, int64_t now_ms, struct xl_err *err)
{
    uint64_t deleted = 0;
    xl_rc rc = XL_OK;

    pthread_mutex_lock(&ls->maint_mu);
    if (ls->retention_ms > 0)
        rc = retain_age(ls, now_ms - ls->retention_ms, &deleted, err);
    if (rc == XL_OK)
        rc = drop_empty_gens(ls, err);
    if (rc == XL_OK && ls->max_bytes > 0)
        rc = retain_size(ls, &deleted, err);
    if (rc == XL_OK)
        rc = shrink(ls, err);
    pthread_mutex_lock(&ls->wmu);
    refresh_bytes(ls, ls->wdb);
    pthread_mutex_unlock(&ls->wmu);
    pthread_mutex_unlock(&ls->maint_mu);
    if (deleted)
        xl_log_info("logs", "retention deleted %llu lines", (unsigned long long)deleted);
    return rc;
}

/* ---- background thread, open, close ---- */

static void *bg_main(void *arg)
{
    struct xl_logstore *ls = arg;
    int64_t last_maint = xl_mono_ms();
    struct xl_err err = {0};

    pthread_mutex_lock(&ls->bgmu);
    while (!ls->stop) {
        struct timespec dl;
        int log, ckpt;

        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += CKPT_EVERY_MS / 1000;
        pthread_cond_timedwait(&ls->bgcv, &ls->bgmu, &dl);
        if (ls->stop)
            break;
        pthread_mutex_unlock(&ls->bgmu);
        /* Copy the WAL into the database here rather than in a commit; the
         * writer's own autocheckpoint stays as a bound on the WAL. */
        if (sqlite3_wal_checkpoint_v2(ls->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt) !=
                SQLITE_OK &&
            sqlite3_errcode(ls->cdb) != SQLITE_BUSY)
            xl_log_rl(XL_LOG_WARN, 60, "logs", "checkpoint: %s", sqlite3_errmsg(ls->cdb));
        refresh_bytes(ls, ls->cdb);
        if (xl_mono_ms() - last_maint >= ls->maintain_ms) {
            if (xl_logstore_maintain(ls, xl_now_ms(), &err) != XL_OK)
                xl_log_rl(XL_LOG_ERROR, 60, "logs", "retention: %s", err.msg);
            last_maint = xl_mono_ms();
        }
        pthread_mutex_lock(&ls->bgmu);
    }
    pthread_mutex_unlock(&ls->bgmu);
    return NULL;
}

/* Open or create the database, load the current generation and start the
 * background thread. XL_EDB for a file that is not ours or not SQLite. */
xl_rc xl_logstore_open(const struct xl_logstore_opts *o, struct xl_logstore **out,
                       struct xl_err *err)
{
    struct xl_logstore *ls;
    xl_rc rc;

    *out = NULL;
    if (!o->path || !*o->path)
        return xl_err_set(err, XL_EINVAL, "logs: no path");
    if (sqlite3_threadsafe() == 0)
        return xl_err_set(err, XL_ESTATE, "logs: SQLite was built without thread support");
    if (!(ls = xl_calloc(1, sizeof(*ls))))
        return xl_err_set(err, XL_ENOMEM, "logs: out of memory");
    pthread_mutex_init(&ls->qmu, NULL);
    pthread_cond_init(&ls->qcv, NULL);
    pthread_mutex_init(&ls->wmu, NULL);
    pthread_mutex_init(&ls->maint_mu, NULL);
    pthread_mutex_init(&ls->bgmu, NULL);
    pthread_cond_init(&ls->bgcv, NULL);
    xl_buf_init(&ls->key, 64 << 10);
    ls->retention_ms = o->retention_ms;
    ls->max_bytes = o->max_bytes;
    ls->sync_full = o->sync_full;
    ls->maintain_ms = o->maintain_interval_ms > 0 ? o->maintain_interval_ms : DEFAULT_MAINTAIN_MS;
    ls->gen_max_bytes = o->max_bytes > 0 ? o->max_bytes / GENS_PER_LIMIT : GEN_DEFAULT_BYTES;
    if (ls->gen_max_bytes < GEN_MIN_BYTES)
        ls->gen_max_bytes = GEN_MIN_BYTES;
    if (ls->gen_max_bytes > GEN_MAX_BYTES)
        ls->gen_max_bytes = GEN_MAX_BYTES;
    ls->gen_max_ms = o->retention_ms > 0 ? o->retention_ms / GENS_PER_LIMIT : 0;
    if (ls->gen_max_ms && ls->gen_max_ms < GEN_MIN_MS)
        ls->gen_max_ms = GEN_MIN_MS;
    if (!(ls->path = xl_strdup(o->path))) {
        rc = xl_err_set(err, XL_ENOMEM, "logs: out of memory");
        goto fail;
    }
    xl_sql_pool_init(&ls->rpool, ls->path, "logs", setup_conn);
    if ((rc = open_write(ls, err)) != XL_OK ||
        (rc = xl_sql_open_conn(ls->path, false, "logs", setup_conn, &ls->cdb, err)) != XL_OK)
        goto fail;
    refresh_bytes(ls, ls->wdb);
    if (pthread_create(&ls->bg, NULL, bg_main, ls) != 0) {
        rc = xl_err_set(err, XL_ESTATE, "logs: cannot start the background thread");
        goto fail;
    }
    ls->bg_started = true;
    *out = ls;
    return XL_OK;
fail:
    xl_logstore_close(ls);
    return rc;
}

/* Stop the background thread and close every connection (SQLite copies the
 * WAL into the file as the last one closes). Appends must have returned.
 * NULL and a half-opened store are fine. */
void xl_logstore_close(struct xl_logstore *ls)
{
    if (!ls)
        return;
    if (ls->bg_started) {
        pthread_mutex_lock(&ls->bgmu);
        ls->stop = true;
        pthread_cond_signal(&ls->bgcv);
        pthread_mutex_unlock(&ls->bgmu);
        pthread_join(ls->bg, NULL);
    }
    if (ls->path)
        xl_sql_pool_cleanup(&ls->rpool);
    sqlite3_close(ls->cdb);
    sqlite3_finalize(ls->st_ins);
    sqlite3_finalize(ls->st_fts);
    sqlite3_finalize(ls->st_file);
    sqlite3_finalize(ls->st_src);
    sqlite3_finalize(ls->st_min);
    sqlite3_finalize(ls->st_gen);
    if (ls->wdb && sqlite3_close(ls->wdb) != SQLITE_OK)
        xl_log_error("logs", "close %s: %s", ls->path, sqlite3_errmsg(ls->wdb));
    cache_clear(&ls->cache);
    xl_buf_cleanup(&ls->key);
    pthread_mutex_destroy(&ls->qmu);
    pthread_cond_destroy(&ls->qcv);
    pthread_mutex_destroy(&ls->wmu);
    pthread_mutex_destroy(&ls->maint_mu);
    pthread_mutex_destroy(&ls->bgmu);
    pthread_cond_destroy(&ls->bgcv);
    xl_free(ls->path);
    xl_free(ls);
}

/* Counters, read without locks. */
void xl_logstore_get_stats(struct xl_logstore *ls, struct xl_logstore_stats *out)
{
    *out = (struct xl_logstore_stats){
        .rows = atomic_load(&ls->rows),
        .bytes = atomic_load(&ls->bytes),
        .inserted = atomic_load(&ls->inserted),
        .duplicates = atomic_load(&ls->duplicates),
        .deleted = atomic_load(&ls->deleted),
        .file_bytes = atomic_load(&ls->file_bytes),
        .commits = atomic_load(&ls->commits),
    };
}
