/* xluo-server: what the SQLite-backed stores share: errors that name the
 * store (all of them), opening a database the same way (WAL, the sync mode
 * of store.sync, a busy timeout, the schema applied in one transaction and
 * its version checked: events.c, checks.c), further connections with a
 * store's own set-up, and a small pool of read-only connections so that
 * queries never wait for the writer (logs.c, events.c, checks.c).
 *
 * A store has one write connection, used under the store's own lock, and
 * takes read connections from its pool for queries. */
#ifndef XL_STORE_SQLITE_H
#define XL_STORE_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/rc.h"

/* XL_EDB with "<who>: <what>: <SQLite's message>". Returns XL_EDB. */
xl_rc xl_sql_fail(struct xl_err *err, sqlite3 *h, const char *who, const char *what);

/* Run statements without results. XL_EDB. */
xl_rc xl_sql_exec(sqlite3 *h, const char *sql, const char *who, struct xl_err *err);

/* Open path for writing (created when missing): journal_mode=WAL,
 * synchronous=FULL when sync_full else NORMAL, then schema (which must set
 * meta.schema_version with INSERT OR IGNORE) in one transaction, and check
 * that meta says version. *out is closed again on failure. XL_EDB. */
xl_rc xl_sql_open_write(const char *path, bool sync_full, const char *schema, int64_t version,
                        const char *who, sqlite3 **out, struct xl_err *err);

/* What a store does to each connection it opens besides the defaults
 * (functions, pragmas). Returns an SQLite result code. */
typedef int (*xl_sql_setup_fn)(sqlite3 *h);

/* Open another connection to path (read-only when ro), with a busy
 * timeout, then setup (may be NULL). XL_EDB. */
xl_rc xl_sql_open_conn(const char *path, bool ro, const char *who, xl_sql_setup_fn setup,
                       sqlite3 **out, struct xl_err *err);

/* Idle read-only connections of one database file. */
struct xl_sql_pool {
    pthread_mutex_t mu;
    const char *path; /* borrowed from the store */
    const char *who;
    xl_sql_setup_fn setup;
    struct xl_sql_conn *idle;
    int nidle;
};

/* setup (may be NULL) is run on each connection the pool opens. */
void xl_sql_pool_init(struct xl_sql_pool *p, const char *path, const char *who,
                      xl_sql_setup_fn setup);
/* Close the idle connections; every one taken must have been put back. */
void xl_sql_pool_cleanup(struct xl_sql_pool *p);
/* A read-only connection (an idle one, or a new one). XL_EDB, XL_ENOMEM. */
xl_rc xl_sql_pool_get(struct xl_sql_pool *p, sqlite3 **out, struct xl_err *err);
/* Give it back (kept idle, or closed when enough are). NULL is fine. */
void xl_sql_pool_put(struct xl_sql_pool *p, sqlite3 *h);

/* What every SQLite store holds: its file, the write connection and the
 * lock that guards it (and the store's own statements on it), and the
 * pool of read connections. Embedded in the store. */
struct xl_sql_store {
    char *path;
    const char *who;
    pthread_mutex_t wmu;
    sqlite3 *wdb;
    struct xl_sql_pool pool;
};

/* Open s (zeroed) at path: the write connection (xl_sql_open_write with
 * schema and version), the lock and the read pool. On failure s is left
 * zeroed. XL_EINVAL (no path), XL_ENOMEM, XL_EDB. */
xl_rc xl_sql_store_open(struct xl_sql_store *s, const char *path, bool sync_full,
                        const char *schema, int64_t version, const char *who, struct xl_err *err);

/* Close what xl_sql_store_open opened (the store's statements must be
 * finalized first), logging a failed close. A zeroed s is fine. */
void xl_sql_store_close(struct xl_sql_store *s);

/* The single integer that sql (a SELECT, e.g. a count) gives on the write
 * connection, into *v. XL_EDB. */
xl_rc xl_sql_store_int(struct xl_sql_store *s, const char *sql, int64_t *v, struct xl_err *err);

/* Retention: run del (a DELETE of at most ?2 rows older than ?1) with
 * before and chunk until it deletes fewer than chunk rows, one short
 * transaction per chunk under s->wmu, so that writes go on between.
 * *total gets the rows deleted, on error too. XL_EDB. */
xl_rc xl_sql_store_delete_old(struct xl_sql_store *s, const char *del, int64_t before, int chunk,
                              uint64_t *total, struct xl_err *err);

#endif
