/* xluo: the embedded metric store: an in-memory head guarded by a
 * write-ahead log, cut at checkpoints into compressed chunks in SQLite.
 * tsdb.h says what; docs/storage.md says how and why it is crash-safe.
 *
 * Locks, always taken in this order (never the reverse):
 *   ckpt_mu   one checkpoint at a time; owns the chunk codec
 *   sql_mu    the SQLite write connection (new series, checkpoint commit)
 *   map_lock  rwlock over the series index (hash table, by-id array, names)
 *   mu        head samples, WAL writer, group-commit state, counters
 *   rpool_mu  idle read connections (leaf)
 * Series are never freed before close, so a pointer found under map_lock
 * stays valid after it is released. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "tsdb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "common/codec.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/wal.h"
#include "sqlite.h"

#define DEFAULT_FLUSH_MS ((int64_t)2 * 60 * 1000)
#define MAX_FLUSH_MS ((int64_t)366 * 24 * 3600 * 1000)
#define DEFAULT_WAL_MAX ((int64_t)256 << 20)
#define MAX_LABELS 64
#define MAX_KEY ((size_t)64 << 10)
#define REC_SAMPLES 1
/* Worst case bytes of one sample in a WAL record: id, ts delta, value. */
#define SAMPLE_MAX_ENC (2 * XL_VARINT_MAX + 8)
#define REC_HDR_MAX (XL_WAL_FRAME_HDR + 1 + XL_VARINT_MAX)
#define RCONN_IDLE_MAX 4
#define RETRY_MIN_MS 1000

void (*xl_tsdb_test_hook)(const char *point);

static void hook(const char *point)
{
    if (xl_tsdb_test_hook)
        xl_tsdb_test_hook(point);
}

struct series {
    uint64_t id;
    uint64_t hash;
    const char *key; /* name\0l1\0v1\0...: canonical, labels sorted */
    size_t keylen;
    const char *name;
    struct xl_label *labels;
    size_t nlabels;
    /* Head, under db->mu. */
    struct xl_tsdb_pt *act;
    size_t nact, capact;
    size_t pend; /* reserved by an append in progress */
    /* Frozen by the running checkpoint: set and cleared under db->mu,
     * never modified in between. */
    struct xl_tsdb_pt *frz;
    size_t nfrz;
};

struct name_ent {
    const char *name; /* borrowed from its first series */
    struct series **v;
    size_t n, cap;
};

/* Open addressing, linear probing; p == NULL marks a free slot. */
struct slot {
    uint64_t hash;
    void *p;
};

struct table {
    struct slot *s;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

struct rconn {
    sqlite3 *h;
    sqlite3_stmt *sel;
    struct xl_chunk_codec *codec;
    struct rconn *next;
};

struct xl_tsdb {
    struct xl_tsdb_opts opts;
    char *dir;
    char *db_path;
    int lock_fd;
    bool locks_init;

    pthread_mutex_t ckpt_mu;
    struct xl_chunk_codec *codec;

    pthread_mutex_t sql_mu;
    sqlite3 *wdb;
    sqlite3_stmt *st_ins_series, *st_ins_chunk, *st_del_old, *st_set_meta;

    pthread_rwlock_t map_lock;
    struct table series_tab;
    struct table name_tab;
    struct name_ent **names;
    size_t nnames, names_cap;
    struct series **by_id;
    size_t by_id_cap;
    uint64_t nseries;

    pthread_mutex_t mu;
    pthread_cond_t sync_cv;
    pthread_cond_t bg_cv;
    struct xl_wal *wal;
    uint64_t written_lsn, synced_lsn;
    bool syncing;
    bool failed;
    struct xl_err failed_err;
    bool ckpt_wanted, stop;
    uint64_t committed_seq;
    bool frozen_pending;
    uint32_t frozen_cover;
    uint64_t head_samples, frozen_samples;
    struct xl_tsdb_stats st;

    pthread_mutex_t rpool_mu;
    struct rconn *ridle;
    int nidle;

    pthread_t bg;
    bool bg_started;
    char replay_detail[256];
};

/* ---- small helpers ---- */

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Murmur3-style hash, eight bytes per step. */
static uint64_t hash_bytes(const void *data, size_t n)
{
    const uint8_t *b = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull), w;

    while (n >= 8) {
        memcpy(&w, b, 8);
        w *= 0x87c37b91114253d5ull;
        w = rotl64(w, 31);
        w *= 0x4cf5ad432745937full;
        h ^= w;
        h = rotl64(h, 27) * 5 + 0x52dce729;
        b += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, b, n);
        w *= 0x87c37b91114253d5ull;
        w = rotl64(w, 31);
        w *= 0x4cf5ad432745937full;
        h ^= w;
    }
    return fmix64(h);
}

static xl_rc sql_fail(struct xl_err *err, sqlite3 *h, const char *what)
{
    return xl_sql_fail(err, h, "tsdb", what);
}

/* ---- hash tables ---- */

/* Room for `extra` more entries at a load factor of at most 1/2. */
static xl_rc table_reserve(struct table *t, size_t extra)
{
    size_t ncap = t->cap ? t->cap : 16;
    struct slot *ns;

    while ((t->n + extra) * 2 > ncap) {
        if (ncap > SIZE_MAX / 4 / sizeof(*ns))
            return XL_ENOMEM;
        ncap *= 2;
    }
    if (ncap == t->cap)
        return XL_OK;
    if (!(ns = xl_calloc(ncap, sizeof(*ns))))
        return XL_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        size_t j;

        if (!t->s[i].p)
            continue;
        for (j = t->s[i].hash & (ncap - 1); ns[j].p; j = (j + 1) & (ncap - 1))
            ;
        ns[j] = t->s[i];
    }
    xl_free(t->s);
    t->s = ns;
    t->cap = ncap;
    return XL_OK;
}

/* Insert (room reserved, key not present). */
static void table_put(struct table *t, uint64_t hash, void *p)
{
    size_t j;

    for (j = hash & (t->cap - 1); t->s[j].p; j = (j + 1) & (t->cap - 1))
        ;
    t->s[j].hash = hash;
    t->s[j].p = p;
    t->n++;
}

static struct series *series_find(const struct table *t, uint64_t hash, const char *key, size_t len)
{
    if (!t->cap)
        return NULL;
    for (size_t j = hash & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        struct series *se = t->s[j].p;

        if (!se)
            return NULL;
        if (t->s[j].hash == hash && se->keylen == len && memcmp(se->key, key, len) == 0)
            return se;
    }
}

static struct name_ent *name_find(const struct table *t, uint64_t hash, const char *name)
{
    if (!t->cap)
        return NULL;
    for (size_t j = hash & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        struct name_ent *ne = t->s[j].p;

        if (!ne)
            return NULL;
        if (t->s[j].hash == hash && strcmp(ne->name, name) == 0)
            return ne;
    }
}

/* ---- series keys ---- */

/* A key under construction: a stack buffer, spilling to the heap. */
struct keybuf {
    char *p;
    size_t cap;
    char stack[512];
};

static void keybuf_init(struct keybuf *kb)
{
    kb->p = kb->stack;
    kb->cap = sizeof(kb->stack);
}

static void keybuf_cleanup(struct keybuf *kb)
{
    if (kb->p != kb->stack)
        xl_free(kb->p);
    keybuf_init(kb);
}

/* Build the canonical key of name + labels into kb: labels with an empty
 * value are dropped (as if absent), the rest sorted by name. */
static xl_rc build_key(struct keybuf *kb, const char *name, const struct xl_label *labels,
                       size_t nlabels, size_t *keylen, struct xl_err *err)
{
    uint8_t order[MAX_LABELS];
    size_t nlen[MAX_LABELS], vlen[MAX_LABELS];
    size_t n = 0, len, off;

    if (!name || !*name)
        return xl_err_set(err, XL_EINVAL, "empty metric name");
    if (nlabels > MAX_LABELS)
        return xl_err_set(err, XL_EINVAL, "%zu labels (at most %d)", nlabels, MAX_LABELS);
    len = strlen(name) + 1;
    for (size_t i = 0; i < nlabels; i++) {
        size_t j;

        if (!labels[i].name || !*labels[i].name)
            return xl_err_set(err, XL_EINVAL, "label %zu has no name", i);
        if (!labels[i].value || !*labels[i].value)
            continue;
        /* Insertion sort: label sets are small and usually sorted. */
        for (j = n; j > 0 && strcmp(labels[order[j - 1]].name, labels[i].name) > 0; j--)
            order[j] = order[j - 1];
        order[j] = (uint8_t)i;
        n++;
    }
    for (size_t k = 0; k < n; k++) {
        const struct xl_label *l = &labels[order[k]];

        if (k > 0 && strcmp(labels[order[k - 1]].name, l->name) == 0)
            return xl_err_set(err, XL_EINVAL, "duplicate label %s", l->name);
        nlen[k] = strlen(l->name) + 1;
        vlen[k] = strlen(l->value) + 1;
        len += nlen[k] + vlen[k];
    }
    if (len > MAX_KEY)
        return xl_err_set(err, XL_ETOOBIG, "series of %zu bytes (at most %zu)", len, MAX_KEY);
    if (len > kb->cap) {
        char *p = xl_malloc(len);

        if (!p)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        keybuf_cleanup(kb);
        kb->p = p;
        kb->cap = len;
    }
    off = strlen(name) + 1;
    memcpy(kb->p, name, off);
    for (size_t k = 0; k < n; k++) {
        memcpy(kb->p + off, labels[order[k]].name, nlen[k]);
        off += nlen[k];
        memcpy(kb->p + off, labels[order[k]].value, vlen[k]);
        off += vlen[k];
    }
    *keylen = len;
    return XL_OK;
}

/* A new series object owning a copy of the key, labels pointing into it. */
static struct series *series_new(const char *key, size_t keylen, uint64_t hash)
{
    size_t nul = 0, nlabels;
    struct series *se;
    char *k;

    for (size_t i = 0; i < keylen; i++)
        nul += key[i] == '\0';
    nlabels = (nul - 1) / 2;
    se = xl_calloc(1, sizeof(*se) + nlabels * sizeof(struct xl_label) + keylen);
    if (!se)
        return NULL;
    se->labels = (struct xl_label *)(se + 1);
    k = (char *)(se->labels + nlabels);
    memcpy(k, key, keylen);
    se->key = k;
    se->keylen = keylen;
    se->hash = hash;
    se->name = k;
    se->nlabels = nlabels;
    k += strlen(k) + 1;
    for (size_t i = 0; i < nlabels; i++) {
        se->labels[i].name = k;
        k += strlen(k) + 1;
        se->labels[i].value = k;
        k += strlen(k) + 1;
    }
    return se;
}

static void series_free(struct series *se)
{
    if (!se)
        return;
    xl_free(se->act);
    xl_free(se->frz);
    xl_free(se);
}

static xl_rc series_validate(const struct series *se, struct xl_err *err)
{
    if (!xl_metric_name_valid(se->name))
        return xl_err_set(err, XL_EINVAL, "invalid metric name \"%s\"", se->name);
    for (size_t i = 0; i < se->nlabels; i++)
        if (!xl_label_name_valid(se->labels[i].name))
            return xl_err_set(err, XL_EINVAL, "invalid label name \"%s\"", se->labels[i].name);
    return XL_OK;
}

/* Add a series whose id is set to the index (map_lock held for writing).
 * All or nothing: XL_ENOMEM leaves the index without it. */
static xl_rc index_add(struct xl_tsdb *db, struct series *se)
{
    uint64_t nh = hash_bytes(se->name, strlen(se->name));
    struct name_ent *ne;
    size_t old;

    if (se->id >= SIZE_MAX / sizeof(*db->by_id))
        return XL_ENOMEM;
    if (se->id >= db->by_id_cap) {
        old = db->by_id_cap;
        if (xl_grow((void **)&db->by_id, &db->by_id_cap, (size_t)se->id + 1, sizeof(*db->by_id)) !=
            0)
            return XL_ENOMEM;
        memset(db->by_id + old, 0, (db->by_id_cap - old) * sizeof(*db->by_id));
    }
    if (db->by_id[se->id])
        return XL_EEXIST;
    if (table_reserve(&db->series_tab, 1) != XL_OK)
        return XL_ENOMEM;
    if (!(ne = name_find(&db->name_tab, nh, se->name))) {
        if (table_reserve(&db->name_tab, 1) != XL_OK ||
            xl_grow((void **)&db->names, &db->names_cap, db->nnames + 1, sizeof(*db->names)))
            return XL_ENOMEM;
        if (!(ne = xl_calloc(1, sizeof(*ne))))
            return XL_ENOMEM;
        ne->name = se->name;
        table_put(&db->name_tab, nh, ne);
        db->names[db->nnames++] = ne;
    }
    if (xl_grow((void **)&ne->v, &ne->cap, ne->n + 1, sizeof(*ne->v)) != 0)
        return XL_ENOMEM;
    ne->v[ne->n++] = se;
    table_put(&db->series_tab, se->hash, se);
    db->by_id[se->id] = se;
    db->nseries++;
    return XL_OK;
}

/* ---- labels as canonical JSON, for the series table ---- */

static xl_rc json_str(struct xl_buf *b, const char *s)
{
    xl_rc rc = xl_buf_add(b, "\"", 1);

    for (const char *p = s; rc == XL_OK && *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};

            rc = xl_buf_add(b, e, 2);
        } else if (c < 0x20) {
            rc = xl_buf_printf(b, "\\u%04x", c);
        } else {
            rc = xl_buf_add(b, p, 1);
        }
    }
    return rc == XL_OK ? xl_buf_add(b, "\"", 1) : rc;
}

/* {"a":"x","b":"y"}: labels sorted by name, no spaces. */
static xl_rc labels_json(const struct series *se, struct xl_buf *b)
{
    xl_rc rc;

    xl_buf_reset(b);
    if ((rc = xl_buf_add(b, "{", 1)) != XL_OK)
        return rc;
    for (size_t i = 0; i < se->nlabels; i++) {
        if ((i && (rc = xl_buf_add(b, ",", 1)) != XL_OK) ||
            (rc = json_str(b, se->labels[i].name)) != XL_OK ||
            (rc = xl_buf_add(b, ":", 1)) != XL_OK ||
            (rc = json_str(b, se->labels[i].value)) != XL_OK)
            return rc;
    }
    return xl_buf_add(b, "}", 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *parse_u4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);

        if (h < 0)
            return NULL;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return p + 4;
}

/* Parse a JSON string at p (on the opening quote) into *dst (advanced past
 * the copied bytes and a NUL). Returns the position after the closing quote
 * or NULL. Unescaping never lengthens, so dst needs strlen(input) + 1. */
static const char *json_parse_str(const char *p, char **dst)
{
    char *o = *dst;

    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned c, lo;

        if (!*p)
            return NULL;
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        switch (*p++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!(p = parse_u4(p, &c)))
                return NULL;
            if (c >= 0xd800 && c < 0xdc00 && p[0] == '\\' && p[1] == 'u' && parse_u4(p + 2, &lo) &&
                lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (c == 0)
                return NULL;
            if (c < 0x80) {
                *o++ = (char)c;
            } else if (c < 0x800) {
                *o++ = (char)(0xc0 | c >> 6);
                *o++ = (char)(0x80 | (c & 0x3f));
            } else if (c < 0x10000) {
                *o++ = (char)(0xe0 | c >> 12);
                *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *o++ = (char)(0x80 | (c & 0x3f));
            } else {
                *o++ = (char)(0xf0 | c >> 18);
                *o++ = (char)(0x80 | ((c >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *o++ = (char)(0x80 | (c & 0x3f));
            }
            break;
        default: return NULL;
        }
    }
    *o++ = '\0';
    *dst = o;
    return p + 1;
}

/* Parse a flat object of strings; storage gets the unescaped strings. */
static xl_rc labels_parse(const char *s, char *storage, struct xl_label *out, size_t *n)
{
    const char *p = s;
    char *o = storage;

    *n = 0;
    if (*p++ != '{')
        return XL_EPARSE;
    if (*p == '}')
        return p[1] ? XL_EPARSE : XL_OK;
    for (;;) {
        if (*n == MAX_LABELS)
            return XL_EPARSE;
        out[*n].name = o;
        if (!(p = json_parse_str(p, &o)) || *p++ != ':')
            return XL_EPARSE;
        out[*n].value = o;
        if (!(p = json_parse_str(p, &o)))
            return XL_EPARSE;
        (*n)++;
        if (*p == '}')
            return p[1] ? XL_EPARSE : XL_OK;
        if (*p++ != ',')
            return XL_EPARSE;
    }
}

/* ---- SQLite ---- */

static const char schema_sql[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " labels TEXT NOT NULL, UNIQUE(name, labels));"
    "CREATE TABLE IF NOT EXISTS chunks(series_id INTEGER NOT NULL, ckpt INTEGER NOT NULL,"
    " t_min INTEGER NOT NULL, t_max INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_series_tmax ON chunks(series_id, t_max);"
    "CREATE INDEX IF NOT EXISTS chunks_tmax ON chunks(t_max);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1), ('wal_covered', 0),"
    " ('ckpt_seq', 0);";

static xl_rc meta_get(struct xl_tsdb *db, const char *key, int64_t *out, struct xl_err *err)
{
    sqlite3_stmt *st = NULL;
    xl_rc rc = XL_OK;
    int r;

    if (sqlite3_prepare_v2(db->wdb, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(err, db->wdb, "prepare meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (r == SQLITE_DONE)
        rc = xl_err_set(err, XL_EDB, "tsdb: %s: meta key %s missing", db->db_path, key);
    else
        rc = sql_fail(err, db->wdb, "read meta");
    sqlite3_finalize(st);
    return rc;
}

static xl_rc sql_open_write(struct xl_tsdb *db, struct xl_err *err)
{
    int64_t ver, seq;
    xl_rc rc;

    if (sqlite3_open_v2(db->db_path, &db->wdb,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return sql_fail(err, db->wdb, db->db_path);
    sqlite3_busy_timeout(db->wdb, 10000);
    if (sqlite3_exec(db->wdb, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, db->wdb, "schema");
    /* FULL even with sync "none": a series row must never be lost while a
     * WAL record naming its id survives, or the id could be handed to
     * another series. Commits are rare (new series, checkpoints). */
    if (sqlite3_exec(db->wdb, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, db->wdb, "pragma");
    if ((rc = meta_get(db, "schema_version", &ver, err)) != XL_OK)
        return rc;
    if (ver != 1)
        return xl_err_set(err, XL_EDB, "tsdb: %s: schema version %lld, expected 1", db->db_path,
                          (long long)ver);
    if ((rc = meta_get(db, "ckpt_seq", &seq, err)) != XL_OK)
        return rc;
    db->committed_seq = (uint64_t)seq;
    if (sqlite3_prepare_v2(db->wdb,
                           "INSERT INTO series(name, labels) VALUES(?1, ?2)"
                           " ON CONFLICT(name, labels) DO UPDATE SET name = excluded.name"
                           " RETURNING id",
                           -1, &db->st_ins_series, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->wdb,
                           "INSERT INTO chunks(series_id, ckpt, t_min, t_max, n, data)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &db->st_ins_chunk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->wdb, "DELETE FROM chunks WHERE t_max < ?1", -1, &db->st_del_old,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->wdb,
                           "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &db->st_set_meta, NULL) != SQLITE_OK)
        return sql_fail(err, db->wdb, "prepare");
    return XL_OK;
}

static xl_rc sql_exec(sqlite3 *h, const char *sql, struct xl_err *err)
{
    return xl_sql_exec(h, sql, "tsdb", err);
}

static xl_rc meta_set(struct xl_tsdb *db, const char *key, int64_t v, struct xl_err *err)
{
    sqlite3_stmt *st = db->st_set_meta;
    int r;

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return sql_fail(err, db->wdb, "write meta");
    return XL_OK;
}

/* Load every series row into the index. */
static xl_rc load_series(struct xl_tsdb *db, struct xl_err *err)
{
    struct xl_label labels[MAX_LABELS];
    sqlite3_stmt *st = NULL;
    struct keybuf kb;
    char *storage = NULL;
    size_t storage_cap = 0, nl, keylen;
    xl_rc rc = XL_OK;
    int r;

    keybuf_init(&kb);
    if (sqlite3_prepare_v2(db->wdb, "SELECT id, name, labels FROM series", -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(err, db->wdb, "prepare series");
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *lj = (const char *)sqlite3_column_text(st, 2);
        size_t need = lj ? strlen(lj) + 1 : 1;
        struct series *se;

        if (!name || !lj || id <= 0) {
            rc = xl_err_set(err, XL_EDB, "tsdb: %s: series row %lld is incomplete", db->db_path,
                            (long long)id);
            goto out;
        }
        if (need > storage_cap) {
            xl_free(storage);
            storage_cap = need < 4096 ? 4096 : need;
            if (!(storage = xl_malloc(storage_cap))) {
                storage_cap = 0;
                rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory loading series");
                goto out;
            }
        }
        if (labels_parse(lj, storage, labels, &nl) != XL_OK) {
            rc = xl_err_set(err, XL_EDB, "tsdb: %s: series %lld: bad labels %s", db->db_path,
                            (long long)id, lj);
            goto out;
        }
        if ((rc = build_key(&kb, name, labels, nl, &keylen, err)) != XL_OK) {
            xl_err_prefix(err, "tsdb: %s: series %lld: ", db->db_path, (long long)id);
            goto out;
        }
        if (!(se = series_new(kb.p, keylen, hash_bytes(kb.p, keylen)))) {
            rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory loading series");
            goto out;
        }
        se->id = (uint64_t)id;
        if ((rc = index_add(db, se)) != XL_OK) {
            series_free(se);
            rc = xl_err_set(err, rc, "tsdb: series %lld: %s", (long long)id,
                            rc == XL_EEXIST ? "listed twice" : xl_rc_str(rc));
            goto out;
        }
    }
    if (r != SQLITE_DONE)
        rc = sql_fail(err, db->wdb, "read series");
out:
    sqlite3_finalize(st);
    keybuf_cleanup(&kb);
    xl_free(storage);
    return rc;
}

static xl_rc count_chunks(struct xl_tsdb *db, struct xl_err *err)
{
    sqlite3_stmt *st = NULL;
    xl_rc rc = XL_OK;

    if (sqlite3_prepare_v2(db->wdb, "SELECT count(*) FROM chunks", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, db->wdb, "prepare count");
    if (sqlite3_step(st) == SQLITE_ROW)
        db->st.chunks = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = sql_fail(err, db->wdb, "count chunks");
    sqlite3_finalize(st);
    return rc;
}

/* ---- read connections ---- */

static void rconn_close(struct rconn *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->sel);
    sqlite3_close(c->h);
    xl_chunk_codec_free(c->codec);
    xl_free(c);
}

static xl_rc rconn_get(struct xl_tsdb *db, struct rconn **out, struct xl_err *err)
{
    struct rconn *c;
    xl_rc rc;

    pthread_mutex_lock(&db->rpool_mu);
    if ((c = db->ridle)) {
        db->ridle = c->next;
        db->nidle--;
    }
    pthread_mutex_unlock(&db->rpool_mu);
    if (c) {
        *out = c;
        return XL_OK;
    }
    if (!(c = xl_calloc(1, sizeof(*c))))
        return xl_err_set(err, XL_ENOMEM, "tsdb: out of memory");
    if ((rc = xl_chunk_codec_new(&c->codec, err)) != XL_OK)
        goto out_close;
    if (sqlite3_open_v2(db->db_path, &c->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = sql_fail(err, c->h, "open read connection");
        goto out_close;
    }
    sqlite3_busy_timeout(c->h, 10000);
    if (sqlite3_prepare_v2(c->h,
                           "SELECT data FROM chunks WHERE series_id = ?1 AND t_max >= ?2"
                           " AND t_min <= ?3 AND ckpt <= ?4 ORDER BY ckpt, rowid",
                           -1, &c->sel, NULL) != SQLITE_OK) {
        rc = sql_fail(err, c->h, "prepare chunk query");
        goto out_close;
    }
    *out = c;
    return XL_OK;
out_close:
    rconn_close(c);
    return rc;
}

static void rconn_put(struct xl_tsdb *db, struct rconn *c)
{
    pthread_mutex_lock(&db->rpool_mu);
    if (db->nidle < RCONN_IDLE_MAX) {
        c->next = db->ridle;
        db->ridle = c;
        db->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&db->rpool_mu);
    rconn_close(c);
}

/* ---- WAL records ---- */

/* Payload: type, varint n, then per sample varint series id, zigzag varint
 * of the timestamp minus the previous one in the record, le64 value bits. */
static size_t encode_record(uint8_t *p0, struct series *const *ser, const struct xl_tsdb_pt *pts,
                            size_t n)
{
    uint8_t *p = p0;
    uint64_t prev = 0;

    *p++ = REC_SAMPLES;
    p = xl_put_varint(p, n);
    for (size_t i = 0; i < n; i++) {
        p = xl_put_varint(p, ser[i]->id);
        p = xl_put_varint(p, xl_zigzag((uint64_t)pts[i].ts - prev));
        prev = (uint64_t)pts[i].ts;
        xl_put_le64(p, xl_dbl_bits(pts[i].v));
        p += 8;
    }
    return (size_t)(p - p0);
}

/* Walk a record; with apply, add its samples to the head. */
static xl_rc replay_walk(struct xl_tsdb *db, const uint8_t *p, size_t len, bool apply,
                         struct xl_err *err)
{
    const uint8_t *end = p + len;
    uint64_t n, id, z, prev = 0;

    if (*p++ != REC_SAMPLES || xl_get_varint(&p, end, &n) != 0 || n == 0)
        return XL_EPARSE;
    for (uint64_t i = 0; i < n; i++) {
        struct xl_tsdb_pt pt;
        struct series *se;

        if (xl_get_varint(&p, end, &id) != 0 || xl_get_varint(&p, end, &z) != 0 || end - p < 8)
            return XL_EPARSE;
        prev += xl_unzigzag(z);
        pt.ts = (int64_t)prev;
        pt.v = xl_bits_dbl(xl_get_le64(p));
        p += 8;
        if (!apply)
            continue;
        se = id < db->by_id_cap ? db->by_id[id] : NULL;
        if (!se) {
            db->st.wal_unknown_series++;
            continue;
        }
        if (xl_grow((void **)&se->act, &se->capact, se->nact + 1, sizeof(*se->act)) != 0)
            return xl_err_set(err, XL_ENOMEM, "tsdb: out of memory replaying the WAL");
        se->act[se->nact++] = pt;
        db->head_samples++;
        db->st.wal_replayed_samples++;
    }
    return p == end ? XL_OK : XL_EPARSE;
}

static xl_rc replay_cb(void *ctx, const struct xl_wal_pos *pos, const uint8_t *payload,
                       size_t len, struct xl_err *err)
{
    struct xl_tsdb *db = ctx;
    xl_rc rc;

    (void)pos;
    /* Check the whole record first so that a bad one adds nothing. */
    if ((rc = replay_walk(db, payload, len, false, err)) != XL_OK)
        return rc;
    return replay_walk(db, payload, len, true, err);
}

/* ---- append ---- */

static void set_failed(struct xl_tsdb *db, const struct xl_err *e)
{
    if (db->failed)
        return;
    db->failed = true;
    db->failed_err = *e;
}

static xl_rc failed_rc(struct xl_tsdb *db, struct xl_err *err)
{
    return xl_err_set(err, XL_EIO, "tsdb: WAL unusable after an earlier error: %s",
                      db->failed_err.msg);
}

/* Wait (mu held) until the WAL is synced up to lsn, syncing ourselves when
 * nobody else is: one fdatasync covers every record written before it. */
static xl_rc wait_synced(struct xl_tsdb *db, uint64_t lsn, struct xl_err *err)
{
    while (!db->failed && db->synced_lsn < lsn) {
        uint64_t target;
        int fd, r, e;

        if (db->syncing) {
            pthread_cond_wait(&db->sync_cv, &db->mu);
            continue;
        }
        db->syncing = true;
        target = db->written_lsn;
        fd = xl_wal_fd(db->wal);
        pthread_mutex_unlock(&db->mu);
        r = fdatasync(fd);
        e = errno;
        pthread_mutex_lock(&db->mu);
        db->syncing = false;
        db->st.wal_syncs++;
        if (r != 0) {
            struct xl_err tmp;

            xl_err_sys(&tmp, XL_EIO, e, "fdatasync of WAL segment %u", xl_wal_segment(db->wal));
            set_failed(db, &tmp);
        } else if (target > db->synced_lsn) {
            db->synced_lsn = target;
        }
        pthread_cond_broadcast(&db->sync_cv);
    }
    if (db->synced_lsn < lsn)
        return failed_rc(db, err);
    return XL_OK;
}

/* Write one WAL record for resolved samples and add them to the head.
 * frame has REC_HDR_MAX + n * SAMPLE_MAX_ENC bytes. */
static xl_rc append_resolved(struct xl_tsdb *db, struct series **ser, const struct xl_tsdb_pt *pts,
                             size_t n, uint8_t *frame, struct xl_err *err)
{
    size_t plen = encode_record(frame + XL_WAL_FRAME_HDR, ser, pts, n);
    uint64_t lsn;
    bool broken;
    xl_rc rc = XL_OK;
    size_t i;

    if (plen > XL_WAL_MAX_RECORD)
        return xl_err_set(err, XL_ETOOBIG, "tsdb: batch of %zu samples is too large (%zu bytes)", n,
                          plen);
    pthread_mutex_lock(&db->mu);
    if (db->failed) {
        rc = failed_rc(db, err);
        goto out;
    }
    /* Reserve head room first so that nothing can fail once the record is
     * in the log. */
    for (i = 0; i < n; i++) {
        struct series *se = ser[i];

        if (se->nact + ++se->pend > se->capact &&
            xl_grow((void **)&se->act, &se->capact, se->nact + se->pend, sizeof(*se->act))) {
            rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory for the head");
            break;
        }
    }
    if (rc == XL_OK && (rc = xl_wal_write(db->wal, frame, plen, &broken, err)) != XL_OK) {
        if (broken) {
            set_failed(db, err);
            rc = XL_EIO;
        }
    }
    if (rc != XL_OK) {
        for (size_t k = 0; k < n; k++)
            ser[k]->pend = 0;
        goto out;
    }
    for (i = 0; i < n; i++) {
        struct series *se = ser[i];

        se->act[se->nact++] = pts[i];
        se->pend = 0;
    }
    db->head_samples += n;
    db->st.samples_appended += n;
    db->written_lsn += XL_WAL_FRAME_HDR + plen;
    lsn = db->written_lsn;
    if (!db->ckpt_wanted && xl_wal_segment_bytes(db->wal) >= (uint64_t)db->opts.wal_max_bytes) {
        db->ckpt_wanted = true;
        pthread_cond_signal(&db->bg_cv);
    }
    if (db->opts.sync == XL_TSDB_SYNC_ALWAYS)
        rc = wait_synced(db, lsn, err);
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* Per-call scratch: resolved series, points, and the WAL record. */
struct batch {
    struct series **ser;
    struct xl_tsdb_pt *pts;
    uint8_t *frame;
};

static xl_rc batch_alloc(struct batch *b, size_t n, struct xl_err *err)
{
    size_t per = sizeof(*b->ser) + sizeof(*b->pts) + SAMPLE_MAX_ENC;
    char *mem;

    if (n > (SIZE_MAX - REC_HDR_MAX) / per)
        return xl_err_set(err, XL_ETOOBIG, "tsdb: batch of %zu samples is too large", n);
    if (!(mem = xl_malloc(n * per + REC_HDR_MAX)))
        return xl_err_set(err, XL_ENOMEM, "tsdb: out of memory for a batch of %zu", n);
    b->pts = (struct xl_tsdb_pt *)mem;
    b->ser = (struct series **)(mem + n * sizeof(*b->pts));
    b->frame = (uint8_t *)(b->ser + n);
    return XL_OK;
}

static void batch_free(struct batch *b)
{
    xl_free(b->pts);
}

/* Create the series that resolve() did not find (ser[i] == NULL): in
 * SQLite first, then in the index, so that no WAL record can name a series
 * that is not durable. */
static xl_rc create_missing(struct xl_tsdb *db, const struct xl_tsdb_sample *s, size_t n,
                            struct series **ser, size_t nmiss, struct xl_err *err)
{
    struct table local = {0};
    struct series **nv = NULL;
    size_t nnew = 0, keylen, added = 0;
    struct xl_buf lj;
    struct keybuf kb;
    xl_rc rc = XL_OK;

    keybuf_init(&kb);
    xl_buf_init(&lj, MAX_KEY * 8);
    pthread_mutex_lock(&db->sql_mu);
    if (!(nv = xl_malloc(nmiss * sizeof(*nv))) || table_reserve(&local, nmiss) != XL_OK) {
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory creating series");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct series *se;
        uint64_t h;

        if (ser[i])
            continue;
        if ((rc = build_key(&kb, s[i].name, s[i].labels, s[i].nlabels, &keylen, err)) != XL_OK)
            goto out;
        h = hash_bytes(kb.p, keylen);
        pthread_rwlock_rdlock(&db->map_lock);
        se = series_find(&db->series_tab, h, kb.p, keylen);
        pthread_rwlock_unlock(&db->map_lock);
        if (!se && !(se = series_find(&local, h, kb.p, keylen))) {
            if (!(se = series_new(kb.p, keylen, h))) {
                rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory creating series");
                goto out;
            }
            nv[nnew++] = se;
            table_put(&local, h, se);
            if ((rc = series_validate(se, err)) != XL_OK) {
                xl_err_prefix(err, "sample %zu: ", i);
                goto out;
            }
        }
        ser[i] = se;
    }
    if ((rc = sql_exec(db->wdb, "BEGIN IMMEDIATE", err)) != XL_OK)
        goto out;
    for (size_t k = 0; k < nnew; k++) {
        sqlite3_stmt *st = db->st_ins_series;
        int r;

        if ((rc = labels_json(nv[k], &lj)) != XL_OK) {
            rc = xl_err_set(err, rc, "tsdb: labels of a new series: %s", xl_rc_str(rc));
            break;
        }
        sqlite3_bind_text(st, 1, nv[k]->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, lj.data, (int)lj.len, SQLITE_STATIC);
        r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            nv[k]->id = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (r != SQLITE_ROW) {
            rc = sql_fail(err, db->wdb, "insert series");
            break;
        }
    }
    if (rc == XL_OK)
        rc = sql_exec(db->wdb, "COMMIT", err);
    if (rc != XL_OK) {
        sqlite3_exec(db->wdb, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    pthread_rwlock_wrlock(&db->map_lock);
    for (; added < nnew; added++) {
        if ((rc = index_add(db, nv[added])) != XL_OK) {
            /* The rows stay in SQLite; the next attempt finds them by the
             * upsert and gets the same ids. */
            rc = xl_err_set(err, rc, "tsdb: indexing new series: %s", xl_rc_str(rc));
            break;
        }
    }
    pthread_rwlock_unlock(&db->map_lock);
out:
    pthread_mutex_unlock(&db->sql_mu);
    for (size_t k = added; k < nnew; k++)
        series_free(nv[k]);
    xl_free(nv);
    xl_free(local.s);
    xl_buf_cleanup(&lj);
    keybuf_cleanup(&kb);
    return rc;
}

/* Find (or create) the series of every sample. */
static xl_rc resolve(struct xl_tsdb *db, const struct xl_tsdb_sample *s, size_t n,
                     struct series **ser, struct xl_err *err)
{
    struct keybuf kb;
    size_t nmiss = 0, keylen;
    xl_rc rc = XL_OK;

    keybuf_init(&kb);
    pthread_rwlock_rdlock(&db->map_lock);
    for (size_t i = 0; i < n; i++) {
        if ((rc = build_key(&kb, s[i].name, s[i].labels, s[i].nlabels, &keylen, err)) != XL_OK) {
            xl_err_prefix(err, "sample %zu: ", i);
            break;
        }
        ser[i] = series_find(&db->series_tab, hash_bytes(kb.p, keylen), kb.p, keylen);
        nmiss += !ser[i];
    }
    pthread_rwlock_unlock(&db->map_lock);
    keybuf_cleanup(&kb);
    if (rc == XL_OK && nmiss)
        rc = create_missing(db, s, n, ser, nmiss, err);
    return rc;
}

xl_rc xl_tsdb_append(struct xl_tsdb *db, const struct xl_tsdb_sample *s, size_t n,
                     struct xl_err *err)
{
    struct batch b;
    xl_rc rc;

    if (n == 0)
        return XL_OK;
    if ((rc = batch_alloc(&b, n, err)) != XL_OK)
        return rc;
    if ((rc = resolve(db, s, n, b.ser, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        b.pts[i].ts = s[i].ts_ms;
        b.pts[i].v = s[i].value;
    }
    rc = append_resolved(db, b.ser, b.pts, n, b.frame, err);
out:
    batch_free(&b);
    return rc;
}

xl_rc xl_tsdb_series_ref(struct xl_tsdb *db, const char *name, const struct xl_label *labels,
                         size_t nlabels, uint64_t *ref, struct xl_err *err)
{
    struct xl_tsdb_sample s = {name, labels, nlabels, 0, 0};
    struct series *se;
    xl_rc rc;

    if ((rc = resolve(db, &s, 1, &se, err)) != XL_OK)
        return rc;
    *ref = se->id;
    return XL_OK;
}

xl_rc xl_tsdb_append_refs(struct xl_tsdb *db, const struct xl_tsdb_ref_sample *s, size_t n,
                          struct xl_err *err)
{
    struct batch b;
    xl_rc rc = XL_OK;

    if (n == 0)
        return XL_OK;
    if ((rc = batch_alloc(&b, n, err)) != XL_OK)
        return rc;
    pthread_rwlock_rdlock(&db->map_lock);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = s[i].ref;

        if (id >= db->by_id_cap || !(b.ser[i] = db->by_id[id])) {
            rc = xl_err_set(err, XL_ENOENT, "tsdb: sample %zu: unknown series ref %llu", i,
                            (unsigned long long)id);
            break;
        }
        b.pts[i].ts = s[i].ts_ms;
        b.pts[i].v = s[i].value;
    }
    pthread_rwlock_unlock(&db->map_lock);
    if (rc == XL_OK)
        rc = append_resolved(db, b.ser, b.pts, n, b.frame, err);
    batch_free(&b);
    return rc;
}

/* ---- sorting points ---- */

/* Stable merge sort by timestamp (tmp has room for n). */
static void sort_points(struct xl_tsdb_pt *a, struct xl_tsdb_pt *tmp, size_t n)
{
    struct xl_tsdb_pt *src = a, *dst = tmp, *t;

    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;

            while (i < mid && j < hi)
                dst[k++] = src[j].ts < src[i].ts ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

/* Sort v by time and keep only the last written point of each timestamp
 * (points are in write order on entry). */
static xl_rc sort_dedupe(struct xl_pt_vec *v, struct xl_pt_vec *tmp)
{
    size_t i, j;

    for (i = 1; i < v->n; i++)
        if (v->p[i].ts <= v->p[i - 1].ts)
            break;
    if (i >= v->n)
        return XL_OK;
    tmp->n = 0;
    if (xl_pt_vec_reserve(tmp, v->n) != XL_OK)
        return XL_ENOMEM;
    sort_points(v->p, tmp->p, v->n);
    for (i = j = 0; i < v->n; i++) {
        if (i + 1 < v->n && v->p[i + 1].ts == v->p[i].ts)
            continue;
        v->p[j++] = v->p[i];
    }
    v->n = j;
    return XL_OK;
}

/* ---- checkpoint ---- */

struct centry {
    uint64_t sid;
    int64_t tmin, tmax;
    size_t n, off, len;
};

struct ckpt_work {
    struct series **list; /* series with frozen points */
    void **tofree;
    size_t nlist;
    struct centry *ent;
    size_t nent, entcap;
    struct xl_buf blob;
    struct xl_pt_vec pts, tmp;
};

static void ckpt_work_cleanup(struct ckpt_work *w)
{
    xl_free(w->list);
    xl_free(w->tofree);
    xl_free(w->ent);
    xl_buf_cleanup(&w->blob);
    xl_pt_vec_cleanup(&w->pts);
    xl_pt_vec_cleanup(&w->tmp);
}

/* Encode every frozen series into chunks (outside all locks but ckpt_mu). */
static xl_rc ckpt_encode(struct xl_tsdb *db, struct ckpt_work *w, struct xl_err *err)
{
    xl_rc rc;

    for (size_t i = 0; i < w->nlist; i++) {
        struct series *se = w->list[i];

        w->pts.n = 0;
        if (xl_pt_vec_reserve(&w->pts, se->nfrz) != XL_OK)
            return xl_err_set(err, XL_ENOMEM, "tsdb: checkpoint: out of memory");
        memcpy(w->pts.p, se->frz, se->nfrz * sizeof(*se->frz));
        w->pts.n = se->nfrz;
        if (sort_dedupe(&w->pts, &w->tmp) != XL_OK)
            return xl_err_set(err, XL_ENOMEM, "tsdb: checkpoint: out of memory");
        for (size_t off = 0; off < w->pts.n; off += XL_CHUNK_MAX_POINTS) {
            size_t cn = w->pts.n - off < XL_CHUNK_MAX_POINTS ? w->pts.n - off : XL_CHUNK_MAX_POINTS;
            struct centry *e;

            if (xl_grow((void **)&w->ent, &w->entcap, w->nent + 1, sizeof(*w->ent)) != 0)
                return xl_err_set(err, XL_ENOMEM, "tsdb: checkpoint: out of memory");
            e = &w->ent[w->nent];
            e->sid = se->id;
            e->tmin = w->pts.p[off].ts;
            e->tmax = w->pts.p[off + cn - 1].ts;
            e->n = cn;
            e->off = w->blob.len;
            if ((rc = xl_chunk_encode(db->codec, w->pts.p + off, cn, &w->blob, err)) != XL_OK)
                return rc;
            e->len = w->blob.len - e->off;
            w->nent++;
        }
    }
    return XL_OK;
}

/* One transaction: the chunks, retention, and the WAL segment they cover. */
static xl_rc ckpt_commit(struct xl_tsdb *db, struct ckpt_work *w, bool pending, uint32_t cover,
                         uint64_t seq, uint64_t *deleted, struct xl_err *err)
{
    sqlite3_stmt *st = db->st_ins_chunk;
    xl_rc rc;

    *deleted = 0;
    if ((rc = sql_exec(db->wdb, "BEGIN IMMEDIATE", err)) != XL_OK)
        return rc;
    for (size_t i = 0; i < w->nent; i++) {
        const struct centry *e = &w->ent[i];
        int r;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)e->sid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
        sqlite3_bind_int64(st, 3, e->tmin);
        sqlite3_bind_int64(st, 4, e->tmax);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)e->n);
        sqlite3_bind_blob(st, 6, w->blob.data + e->off, (int)e->len, SQLITE_STATIC);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
            rc = sql_fail(err, db->wdb, "insert chunk");
            goto out_rollback;
        }
    }
    if (db->opts.retention_ms > 0) {
        int64_t now = now_ms(CLOCK_REALTIME), cut;

        if (__builtin_sub_overflow(now, db->opts.retention_ms, &cut))
            cut = INT64_MIN;
        sqlite3_bind_int64(db->st_del_old, 1, cut);
        if (sqlite3_step(db->st_del_old) != SQLITE_DONE) {
            sqlite3_reset(db->st_del_old);
            rc = sql_fail(err, db->wdb, "retention");
            goto out_rollback;
        }
        sqlite3_reset(db->st_del_old);
        *deleted = (uint64_t)sqlite3_changes(db->wdb);
    }
    if (pending && ((rc = meta_set(db, "wal_covered", cover, err)) != XL_OK ||
                    (rc = meta_set(db, "ckpt_seq", (int64_t)seq, err)) != XL_OK))
        goto out_rollback;
    hook("checkpoint:before-commit");
    if ((rc = sql_exec(db->wdb, "COMMIT", err)) != XL_OK)
        goto out_rollback;
    return XL_OK;
out_rollback:
    sqlite3_exec(db->wdb, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Sync (mu held) and rotate the WAL so that the frozen head is exactly the
 * content of the segments up to the old one. */
static xl_rc ckpt_rotate(struct xl_tsdb *db, struct xl_err *err)
{
    xl_rc rc;

    while (db->syncing)
        pthread_cond_wait(&db->sync_cv, &db->mu);
    if (db->failed)
        return failed_rc(db, err);
    if (db->opts.sync == XL_TSDB_SYNC_ALWAYS && db->synced_lsn < db->written_lsn) {
        if (fdatasync(xl_wal_fd(db->wal)) != 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "tsdb: fdatasync of WAL segment %u",
                            xl_wal_segment(db->wal));
            set_failed(db, err);
            return rc;
        }
        db->st.wal_syncs++;
    }
    if ((rc = xl_wal_rotate(db->wal, err)) != XL_OK)
        return rc;
    db->synced_lsn = db->written_lsn;
    pthread_cond_broadcast(&db->sync_cv);
    return XL_OK;
}

static xl_rc checkpoint(struct xl_tsdb *db, struct xl_err *err)
{
    struct ckpt_work w = {0};
    uint64_t seq, deleted = 0;
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    uint32_t cover = 0;
    bool pending;
    xl_rc rc = XL_OK;

    xl_buf_init(&w.blob, SIZE_MAX / 4);
    pthread_mutex_lock(&db->ckpt_mu);
    pthread_rwlock_rdlock(&db->map_lock);
    if (db->nseries && (!(w.list = xl_malloc(db->nseries * sizeof(*w.list))) ||
                        !(w.tofree = xl_malloc(db->nseries * sizeof(*w.tofree))))) {
        pthread_rwlock_unlock(&db->map_lock);
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: checkpoint: out of memory");
        goto out;
    }
    pthread_mutex_lock(&db->mu);
    if (!db->frozen_pending && db->head_samples > 0) {
        if ((rc = ckpt_rotate(db, err)) != XL_OK) {
            pthread_mutex_unlock(&db->mu);
            pthread_rwlock_unlock(&db->map_lock);
            goto out;
        }
        for (size_t id = 0; id < db->by_id_cap; id++) {
            struct series *se = db->by_id[id];

            if (!se || !se->nact)
                continue;
            se->frz = se->act;
            se->nfrz = se->nact;
            se->act = NULL;
            se->nact = se->capact = 0;
        }
        db->frozen_pending = true;
        db->frozen_cover = xl_wal_segment(db->wal) - 1;
        db->frozen_samples = db->head_samples;
        db->head_samples = 0;
    }
    pending = db->frozen_pending;
    cover = db->frozen_cover;
    if (!pending && db->opts.retention_ms == 0) {
        /* Nothing to store, nothing to expire. */
        pthread_mutex_unlock(&db->mu);
        pthread_rwlock_unlock(&db->map_lock);
        goto out;
    }
    seq = db->committed_seq + 1;
    if (pending)
        for (size_t id = 0; id < db->by_id_cap; id++)
            if (db->by_id[id] && db->by_id[id]->nfrz)
                w.list[w.nlist++] = db->by_id[id];
    pthread_mutex_unlock(&db->mu);
    pthread_rwlock_unlock(&db->map_lock);
    hook("checkpoint:swapped");

    if ((rc = ckpt_encode(db, &w, err)) != XL_OK)
        goto out;
    pthread_mutex_lock(&db->sql_mu);
    rc = ckpt_commit(db, &w, pending, cover, seq, &deleted, err);
    pthread_mutex_unlock(&db->sql_mu);
    if (rc != XL_OK)
        goto out;
    hook("checkpoint:committed");

    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < w.nlist; i++) {
        w.tofree[i] = w.list[i]->frz;
        w.list[i]->frz = NULL;
        w.list[i]->nfrz = 0;
    }
    if (pending) {
        db->committed_seq = seq;
        db->frozen_pending = false;
        db->frozen_samples = 0;
        db->st.checkpoints++;
        db->st.chunks += w.nent;
    }
    db->st.chunks = db->st.chunks >= deleted ? db->st.chunks - deleted : 0;
    db->st.chunks_deleted += deleted;
    db->st.last_checkpoint_ms = (uint64_t)(now_ms(CLOCK_MONOTONIC) - t0);
    if (pending)
        rc = xl_wal_remove_upto(db->wal, cover, err);
    pthread_mutex_unlock(&db->mu);
    for (size_t i = 0; i < w.nlist; i++)
        xl_free(w.tofree[i]);
    if (rc != XL_OK) {
        /* The chunks are committed; a segment left behind is deleted at the
         * next checkpoint or open. Not a failed checkpoint. */
        rc = XL_OK;
    }
    hook("checkpoint:done");
out:
    pthread_mutex_unlock(&db->ckpt_mu);
    ckpt_work_cleanup(&w);
    return rc;
}

xl_rc xl_tsdb_checkpoint(struct xl_tsdb *db, struct xl_err *err)
{
    xl_rc rc = checkpoint(db, err);

    if (rc != XL_OK) {
        pthread_mutex_lock(&db->mu);
        db->st.checkpoint_errors++;
        pthread_mutex_unlock(&db->mu);
    }
    return rc;
}

/* The background thread: checkpoint every flush interval, or sooner when
 * an append finds the WAL segment past wal_max_bytes. Failures are counted,
 * logged (rate-limited) and retried with a growing delay. */
static void *bg_main(void *arg)
{
    struct xl_tsdb *db = arg;
    int64_t retry = RETRY_MIN_MS, next = now_ms(CLOCK_MONOTONIC) + db->opts.flush_interval_ms;

    pthread_mutex_lock(&db->mu);
    while (!db->stop) {
        struct xl_err e;
        xl_rc rc;

        while (!db->stop && !db->ckpt_wanted) {
            int64_t now = now_ms(CLOCK_MONOTONIC);
            struct timespec ts;

            if (now >= next)
                break;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (next - now) / 1000;
            ts.tv_nsec += ((next - now) % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
        }
        if (db->stop)
            break;
        db->ckpt_wanted = false;
        pthread_mutex_unlock(&db->mu);
        rc = xl_tsdb_checkpoint(db, &e);
        if (rc != XL_OK) {
            xl_log_rl(XL_LOG_WARN, 60, "tsdb", "checkpoint failed (retrying in %llds): %s",
                      (long long)(retry / 1000), e.msg);
            next = now_ms(CLOCK_MONOTONIC) + retry;
            retry = retry * 2 < db->opts.flush_interval_ms ? retry * 2 : db->opts.flush_interval_ms;
        } else {
            retry = RETRY_MIN_MS;
            next = now_ms(CLOCK_MONOTONIC) + db->opts.flush_interval_ms;
        }
        pthread_mutex_lock(&db->mu);
        if (rc != XL_OK)
            db->ckpt_wanted = false; /* wait for the retry delay */
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* ---- open / close ---- */

static xl_rc mkdir_p(const char *dir, struct xl_err *err)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return xl_err_set(err, XL_EINVAL, "tsdb: bad data dir \"%s\"", dir);
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return xl_err_sys(err, XL_EIO, errno, "tsdb: mkdir %s", path);
            *p = c;
            if (!c)
                break;
        }
    }
    return XL_OK;
}

static void db_free(struct xl_tsdb *db)
{
    struct rconn *c;

    if (!db)
        return;
    xl_wal_close(db->wal);
    sqlite3_finalize(db->st_ins_series);
    sqlite3_finalize(db->st_ins_chunk);
    sqlite3_finalize(db->st_del_old);
    sqlite3_finalize(db->st_set_meta);
    if (db->wdb)
        sqlite3_close(db->wdb);
    while ((c = db->ridle)) {
        db->ridle = c->next;
        rconn_close(c);
    }
    for (size_t i = 0; i < db->by_id_cap; i++)
        series_free(db->by_id[i]);
    for (size_t i = 0; i < db->nnames; i++) {
        xl_free(db->names[i]->v);
        xl_free(db->names[i]);
    }
    xl_free(db->names);
    xl_free(db->by_id);
    xl_free(db->series_tab.s);
    xl_free(db->name_tab.s);
    xl_chunk_codec_free(db->codec);
    if (db->locks_init) {
        pthread_mutex_destroy(&db->ckpt_mu);
        pthread_mutex_destroy(&db->sql_mu);
        pthread_rwlock_destroy(&db->map_lock);
        pthread_mutex_destroy(&db->mu);
        pthread_cond_destroy(&db->sync_cv);
        pthread_cond_destroy(&db->bg_cv);
        pthread_mutex_destroy(&db->rpool_mu);
    }
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    xl_free(db->db_path);
    xl_free(db->dir);
    xl_free(db);
}

static xl_rc locks_init(struct xl_tsdb *db, struct xl_err *err)
{
    pthread_rwlockattr_t ra;
    pthread_condattr_t ca;

    if (pthread_condattr_init(&ca) != 0 || pthread_rwlockattr_init(&ra) != 0)
        return xl_err_set(err, XL_ENOMEM, "tsdb: lock attributes");
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
#ifdef __GLIBC__
    /* Appenders hold the read side back to back; without this a thread
     * creating a series could wait for ever. No read lock is ever taken
     * twice by one thread, so writer preference cannot deadlock. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_mutex_init(&db->ckpt_mu, NULL);
    pthread_mutex_init(&db->sql_mu, NULL);
    pthread_rwlock_init(&db->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->sync_cv, NULL);
    pthread_cond_init(&db->bg_cv, &ca);
    pthread_mutex_init(&db->rpool_mu, NULL);
    pthread_condattr_destroy(&ca);
    db->locks_init = true;
    return XL_OK;
}

xl_rc xl_tsdb_open(const struct xl_tsdb_opts *opts, struct xl_tsdb **out, struct xl_err *err)
{
    struct xl_wal_replay_stats rs;
    struct xl_tsdb *db;
    char *wal_dir = NULL;
    int64_t covered;
    xl_rc rc;

    *out = NULL;
    if (!opts || !opts->dir || !*opts->dir)
        return xl_err_set(err, XL_EINVAL, "tsdb: no data dir");
    if (opts->flush_interval_ms < 0 || opts->wal_max_bytes < 0 || opts->retention_ms < 0)
        return xl_err_set(err, XL_EINVAL, "tsdb: negative interval, size or retention");
    if (opts->sync != XL_TSDB_SYNC_ALWAYS && opts->sync != XL_TSDB_SYNC_NONE)
        return xl_err_set(err, XL_EINVAL, "tsdb: unknown sync policy %d", (int)opts->sync);
    if (!(db = xl_calloc(1, sizeof(*db))))
        return xl_err_set(err, XL_ENOMEM, "tsdb: out of memory");
    db->lock_fd = -1;
    db->opts = *opts;
    if (!db->opts.flush_interval_ms)
        db->opts.flush_interval_ms = DEFAULT_FLUSH_MS;
    if (db->opts.flush_interval_ms > MAX_FLUSH_MS)
        db->opts.flush_interval_ms = MAX_FLUSH_MS;
    if (!db->opts.wal_max_bytes)
        db->opts.wal_max_bytes = DEFAULT_WAL_MAX;
    if ((rc = locks_init(db, err)) != XL_OK)
        goto out_free;
    if (!(db->dir = xl_strdup(opts->dir)) ||
        !(db->db_path = xl_asprintf("%s/metrics.db", opts->dir)) ||
        !(wal_dir = xl_asprintf("%s/wal", opts->dir))) {
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory");
        goto out_free;
    }
    db->opts.dir = db->dir;
    if ((rc = mkdir_p(db->dir, err)) != XL_OK)
        goto out_free;
    {
        char lock_path[PATH_MAX];

        snprintf(lock_path, sizeof(lock_path), "%s/LOCK", db->dir);
        db->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (db->lock_fd < 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "tsdb: open %s", lock_path);
            goto out_free;
        }
        if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK
                     ? xl_err_set(err, XL_EEXIST, "tsdb: %s is in use by another store", db->dir)
                     : xl_err_sys(err, XL_EIO, errno, "tsdb: flock %s", lock_path);
            goto out_free;
        }
    }
    if ((rc = xl_chunk_codec_new(&db->codec, err)) != XL_OK)
        goto out_free;
    if ((rc = sql_open_write(db, err)) != XL_OK || (rc = load_series(db, err)) != XL_OK ||
        (rc = count_chunks(db, err)) != XL_OK ||
        (rc = meta_get(db, "wal_covered", &covered, err)) != XL_OK)
        goto out_free;
    if (covered < 0 || covered >= UINT32_MAX) {
        rc = xl_err_set(err, XL_EDB, "tsdb: %s: wal_covered %lld out of range", db->db_path,
                        (long long)covered);
        goto out_free;
    }
    rc = xl_wal_open(wal_dir, (uint32_t)covered, db->opts.sync == XL_TSDB_SYNC_ALWAYS, replay_cb,
                     db, &rs, &db->wal, err);
    if (rc != XL_OK)
        goto out_free;
    db->st.wal_replayed_records = rs.records;
    db->st.wal_truncated_bytes = rs.truncated_bytes;
    db->st.wal_truncated_segments = rs.truncated_segments;
    memcpy(db->replay_detail, rs.detail, sizeof(db->replay_detail));
    db->replay_detail[sizeof(db->replay_detail) - 1] = '\0';
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0) {
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: cannot start the checkpoint thread");
        goto out_free;
    }
    db->bg_started = true;
    xl_free(wal_dir);
    *out = db;
    return XL_OK;
out_free:
    xl_free(wal_dir);
    db_free(db);
    return rc;
}

void xl_tsdb_close(struct xl_tsdb *db)
{
    struct xl_err e;

    if (!db)
        return;
    if (db->bg_started) {
        pthread_mutex_lock(&db->mu);
        db->stop = true;
        pthread_cond_signal(&db->bg_cv);
        pthread_mutex_unlock(&db->mu);
        pthread_join(db->bg, NULL);
    }
    if (checkpoint(db, &e) != XL_OK)
        xl_log_warn("tsdb", "final checkpoint failed, the WAL keeps the data: %s", e.msg);
    db_free(db);
}

/* ---- queries ---- */

static const char *label_get(const struct series *se, const char *name)
{
    if (strcmp(name, "__name__") == 0)
        return se->name;
    for (size_t i = 0; i < se->nlabels; i++)
        if (strcmp(se->labels[i].name, name) == 0)
            return se->labels[i].value;
    return "";
}

static bool series_matches(const struct series *se, const struct xl_matcher *m, size_t nm)
{
    for (size_t i = 0; i < nm; i++) {
        bool eq = strcmp(label_get(se, m[i].name), m[i].value ? m[i].value : "") == 0;

        if (eq != (m[i].op == XL_MATCH_EQ))
            return false;
    }
    return true;
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);

    if (c)
        return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static xl_rc check_matchers(const struct xl_matcher *m, size_t nm, struct xl_err *err)
{
    if (nm && !m)
        return xl_err_set(err, XL_EINVAL, "tsdb: matchers missing");
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].name || !*m[i].name)
            return xl_err_set(err, XL_EINVAL, "tsdb: matcher %zu has no label name", i);
        if (m[i].op != XL_MATCH_EQ && m[i].op != XL_MATCH_NE)
            return xl_err_set(err, XL_EINVAL, "tsdb: matcher %zu: unknown operator", i);
    }
    return XL_OK;
}

/* The series named `name` (NULL: all) that match, sorted by key. */
static xl_rc select_series(struct xl_tsdb *db, const char *name, const struct xl_matcher *m,
                           size_t nm, struct series ***out, size_t *nout, struct xl_err *err)
{
    struct series **v = NULL, *const *cand = NULL;
    size_t n = 0, ncand = 0;
    xl_rc rc = XL_OK;

    *out = NULL;
    *nout = 0;
    if ((rc = check_matchers(m, nm, err)) != XL_OK)
        return rc;
    pthread_rwlock_rdlock(&db->map_lock);
    if (name) {
        struct name_ent *ne = name_find(&db->name_tab, hash_bytes(name, strlen(name)), name);

        if (ne) {
            cand = ne->v;
            ncand = ne->n;
        }
    } else {
        cand = db->by_id;
        ncand = db->by_id_cap;
    }
    if (ncand && !(v = xl_malloc(ncand * sizeof(*v)))) {
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: out of memory");
        goto out;
    }
    for (size_t i = 0; i < ncand; i++)
        if (cand[i] && series_matches(cand[i], m, nm))
            v[n++] = cand[i];
out:
    pthread_rwlock_unlock(&db->map_lock);
    if (rc == XL_OK) {
        if (n > 1)
            qsort(v, n, sizeof(*v), cmp_series);
        *out = v;
        *nout = n;
    }
    return rc;
}

struct name_count {
    const char *name;
    size_t n;
};

static int cmp_name_count(const void *a, const void *b)
{
    return strcmp(((const struct name_count *)a)->name, ((const struct name_count *)b)->name);
}

xl_rc xl_tsdb_names(struct xl_tsdb *db, const struct xl_matcher *m, size_t nm, xl_tsdb_name_cb cb,
                    void *ctx, struct xl_err *err)
{
    struct name_count *v = NULL;
    size_t n = 0;
    xl_rc rc;

    if ((rc = check_matchers(m, nm, err)) != XL_OK)
        return rc;
    pthread_rwlock_rdlock(&db->map_lock);
    if (db->nnames && !(v = xl_malloc(db->nnames * sizeof(*v)))) {
        pthread_rwlock_unlock(&db->map_lock);
        return xl_err_set(err, XL_ENOMEM, "tsdb: out of memory");
    }
    for (size_t i = 0; i < db->nnames; i++) {
        const struct name_ent *ne = db->names[i];
        size_t c = 0;

        for (size_t k = 0; k < ne->n; k++)
            c += series_matches(ne->v[k], m, nm);
        if (c) {
            v[n].name = ne->name;
            v[n++].n = c;
        }
    }
    pthread_rwlock_unlock(&db->map_lock);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_name_count);
    for (size_t i = 0; i < n; i++)
        if (cb(ctx, v[i].name, v[i].n))
            break;
    xl_free(v);
    return XL_OK;
}

xl_rc xl_tsdb_series(struct xl_tsdb *db, const char *name, const struct xl_matcher *m, size_t nm,
                     xl_tsdb_series_cb cb, void *ctx, struct xl_err *err)
{
    struct series **v;
    size_t n;
    xl_rc rc;

    if ((rc = select_series(db, name, m, nm, &v, &n, err)) != XL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct xl_series_result r = {v[i]->name, v[i]->labels, v[i]->nlabels, NULL, NULL, 0};

        if (cb(ctx, &r))
            break;
    }
    xl_free(v);
    return XL_OK;
}

/* floor(ts / step) * step, clamped at INT64_MIN. */
static int64_t bucket_of(int64_t ts, int64_t step)
{
    int64_t r = ts % step, b;

    if (r < 0)
        r += step;
    if (__builtin_sub_overflow(ts, r, &b))
        return INT64_MIN;
    return b;
}

struct qstate {
    struct xl_pt_vec c, h, tmp;
    int64_t *ts;
    double *val;
    size_t rcap;
};

static void qstate_cleanup(struct qstate *q)
{
    xl_pt_vec_cleanup(&q->c);
    xl_pt_vec_cleanup(&q->h);
    xl_pt_vec_cleanup(&q->tmp);
    xl_free(q->ts);
    xl_free(q->val);
}

static void copy_range(struct xl_pt_vec *dst, const struct xl_tsdb_pt *src, size_t n, int64_t from,
                       int64_t to)
{
    for (size_t i = 0; i < n; i++)
        if (src[i].ts >= from && src[i].ts <= to)
            dst->p[dst->n++] = src[i];
}

/* Every point of se in [from, to], sorted, one per timestamp, into q->c. */
static xl_rc gather(struct xl_tsdb *db, struct rconn *conn, struct series *se, int64_t from,
                    int64_t to, struct qstate *q, struct xl_err *err)
{
    sqlite3_stmt *st = conn->sel;
    uint64_t seq;
    xl_rc rc = XL_OK;
    int r;

    q->c.n = q->h.n = 0;
    /* The head first, then the chunks up to the checkpoint it saw: points
     * a concurrent checkpoint moves are in one of the two, never lost. */
    pthread_mutex_lock(&db->mu);
    seq = db->committed_seq;
    if (xl_pt_vec_reserve(&q->h, se->nfrz + se->nact) != XL_OK) {
        pthread_mutex_unlock(&db->mu);
        return xl_err_set(err, XL_ENOMEM, "tsdb: query: out of memory");
    }
    copy_range(&q->h, se->frz, se->nfrz, from, to);
    copy_range(&q->h, se->act, se->nact, from, to);
    pthread_mutex_unlock(&db->mu);

    sqlite3_bind_int64(st, 1, (sqlite3_int64)se->id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)seq);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0), start = q->c.n, j = start;

        if ((rc = xl_chunk_decode(conn->codec, blob, len, &q->c, err)) != XL_OK) {
            xl_err_prefix(err, "tsdb: series %llu: ", (unsigned long long)se->id);
            goto out;
        }
        for (size_t i = start; i < q->c.n; i++)
            if (q->c.p[i].ts >= from && q->c.p[i].ts <= to)
                q->c.p[j++] = q->c.p[i];
        q->c.n = j;
    }
    if (r != SQLITE_DONE) {
        rc = sql_fail(err, conn->h, "read chunks");
        goto out;
    }
    if (xl_pt_vec_reserve(&q->c, q->h.n) != XL_OK) {
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: query: out of memory");
        goto out;
    }
    if (q->h.n)
        memcpy(q->c.p + q->c.n, q->h.p, q->h.n * sizeof(*q->h.p));
    q->c.n += q->h.n;
    if (sort_dedupe(&q->c, &q->tmp) != XL_OK)
        rc = xl_err_set(err, XL_ENOMEM, "tsdb: query: out of memory");
out:
    sqlite3_reset(st);
    return rc;
}

/* Reduce q->c into q->ts / q->val; returns the number of points. */
static size_t aggregate(struct qstate *q, int64_t step, enum xl_agg agg)
{
    size_t n = 0, i = 0;

    while (i < q->c.n) {
        int64_t b = agg == XL_AGG_NONE ? q->c.p[i].ts : bucket_of(q->c.p[i].ts, step);
        double acc = q->c.p[i].v;
        size_t cnt = 1;

        for (i++; agg != XL_AGG_NONE && i < q->c.n && bucket_of(q->c.p[i].ts, step) == b; i++) {
            double v = q->c.p[i].v;

            switch (agg) {
            case XL_AGG_AVG:
            case XL_AGG_SUM: acc += v; break;
            case XL_AGG_MIN:
                if (v < acc || isnan(acc))
                    acc = v;
                break;
            case XL_AGG_MAX:
                if (v > acc || isnan(acc))
                    acc = v;
                break;
            case XL_AGG_LAST: acc = v; break;
            default: break;
            }
            cnt++;
        }
        if (agg == XL_AGG_AVG)
            acc /= (double)cnt;
        else if (agg == XL_AGG_COUNT)
            acc = (double)cnt;
        q->ts[n] = b;
        q->val[n++] = acc;
    }
    return n;
}

xl_rc xl_tsdb_query(struct xl_tsdb *db, const char *name, const struct xl_matcher *m, size_t nm,
                    int64_t from_ms, int64_t to_ms, int64_t step_ms, enum xl_agg agg,
                    xl_tsdb_series_cb cb, void *ctx, struct xl_err *err)
{
    struct qstate q = {0};
    struct rconn *conn = NULL;
    struct series **v = NULL;
    size_t n = 0;
    xl_rc rc;

    if ((unsigned)agg > XL_AGG_COUNT)
        return xl_err_set(err, XL_EINVAL, "tsdb: unknown aggregation %d", (int)agg);
    if (agg != XL_AGG_NONE && step_ms <= 0)
        return xl_err_set(err, XL_EINVAL, "tsdb: step must be positive with an aggregation");
    if (from_ms > to_ms)
        return xl_err_set(err, XL_EINVAL, "tsdb: from %lld is after to %lld", (long long)from_ms,
                          (long long)to_ms);
    if ((rc = select_series(db, name, m, nm, &v, &n, err)) != XL_OK)
        return rc;
    if (n && (rc = rconn_get(db, &conn, err)) != XL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct xl_series_result r;

        if ((rc = gather(db, conn, v[i], from_ms, to_ms, &q, err)) != XL_OK)
            goto out;
        if (!q.c.n)
            continue;
        if (q.c.n > q.rcap) {
            int64_t *t;
            double *d;

            if (!(t = xl_realloc(q.ts, q.c.n * sizeof(*q.ts)))) {
                rc = xl_err_set(err, XL_ENOMEM, "tsdb: query: out of memory");
                goto out;
            }
            q.ts = t;
            if (!(d = xl_realloc(q.val, q.c.n * sizeof(*q.val)))) {
                rc = xl_err_set(err, XL_ENOMEM, "tsdb: query: out of memory");
                goto out;
            }
            q.val = d;
            q.rcap = q.c.n;
        }
        r.name = v[i]->name;
        r.labels = v[i]->labels;
        r.nlabels = v[i]->nlabels;
        r.ts = q.ts;
        r.val = q.val;
        r.n = aggregate(&q, step_ms, agg);
        if (cb(ctx, &r))
            break;
    }
out:
    if (conn)
        rconn_put(db, conn);
    qstate_cleanup(&q);
    xl_free(v);
    return rc;
}

void xl_tsdb_get_stats(struct xl_tsdb *db, struct xl_tsdb_stats *out)
{
    pthread_rwlock_rdlock(&db->map_lock);
    pthread_mutex_lock(&db->mu);
    *out = db->st;
    out->series = db->nseries;
    out->head_samples = db->head_samples + db->frozen_samples;
    out->wal_bytes = xl_wal_total_bytes(db->wal);
    pthread_mutex_unlock(&db->mu);
    pthread_rwlock_unlock(&db->map_lock);
}

const char *xl_tsdb_replay_detail(struct xl_tsdb *db)
{
    return db->replay_detail;
}

xl_rc xl_agg_parse(const char *s, enum xl_agg *out)
{
    static const struct {
        const char *name;
        enum xl_agg agg;
    } tab[] = {{"raw", XL_AGG_NONE}, {"none", XL_AGG_NONE},  {"avg", XL_AGG_AVG},
               {"min", XL_AGG_MIN},  {"max", XL_AGG_MAX},    {"last", XL_AGG_LAST},
               {"sum", XL_AGG_SUM},  {"count", XL_AGG_COUNT}};

    for (size_t i = 0; s && i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strcmp(s, tab[i].name) == 0) {
            *out = tab[i].agg;
            return XL_OK;
        }
    }
    return XL_EINVAL;
}
