/* pg_int.h -- the PostgreSQL index backend's private header (the files of storage/pg/).
 *
 * DESIGN
 * A pool of libpq connections (IndexConnectionsCount) behind one mutex and condition: a call
 * takes a free connection, runs its statements, gives it back. Statements are prepared once
 * per connection, on first use, from one table (PgStmt -> SQL text); only /tools/find, whose
 * text depends on its constraints, is sent unprepared.
 *
 * Transactions and several processes. Every write runs inside pg_tx(): BEGIN, the
 * operation's function, COMMIT. PostgreSQL's constraints do the coordinating between server
 * processes sharing the database: two processes creating the same patient or storing the same
 * instance at once collide on resources.public_id's UNIQUE constraint; a store racing a delete
 * of its series fails a foreign key. Such a transaction is rolled back and run again from the
 * start (its function resets its outputs), where it finds the other process's rows: the same
 * instance is stored once, and the loser answers AlreadyStored. Deadlocks and serialization
 * failures are retried the same way.
 *
 * The server away. A connection found broken (PostgreSQL restarted, network cut) is reset
 * once; if that fails the call answers STO_ERR_UNAVAILABLE at once (HTTP 503) and the next
 * call tries to reconnect again: the process reconnects by itself, and nothing half-written
 * is left since a transaction that did not COMMIT left no row (and the ingest path's pending
 * uuid removes a file written without its row at the next start).
 */
#ifndef MP_PG_INT_H
#define MP_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "storage/idx_backend.h"
#include "storage/storage_int.h"

typedef enum PgStmt {
    P_LOOKUP,            /* public_id -> internal_id, level, parent internal_id */
    P_LOOKUP_FULL,       /* public_id -> internal_id, level, parent public_id */
    P_LOOKUP_MANY,       /* public_id = ANY($1) -> public_id, internal_id, level */
    P_INSERT_RESOURCE,
    P_INSERT_TAGS,       /* unnest(internal_ids, tags, values) */
    P_DELETE_TAGS,
    P_GET_TAGS,
    P_GET_CHILDREN,
    P_LIST,
    P_INSTANCES_OF,
    P_COUNTS,
    P_COUNT_CHILDREN,
    P_NUM_CHILDREN,
    P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE,
    P_DELETE_RESOURCE,
    P_DELETE_SUBTREE_CHANGES,
    P_INSERT_ATTACHMENT,
    P_GET_ATTACHMENT,
    P_SET_MD5,
    P_TOTALS,
    P_PENDING_ADD,
    P_PENDING_ADD_MANY,
    P_PENDING_DEL,
    P_PENDING_LIST,
    P_SET_METAS,         /* unnest(internal_ids, names, values) */
    P_SET_META,
    P_DELETE_META,
    P_DELETE_ALL_META,
    P_GET_META,
    P_META_LOOKUP,
    P_SET_META_REV,
    P_INSERT_CHANGES,    /* unnest(types, levels, ids), one date; RETURNING seq */
    P_CHANGES,
    P_CHANGES_LAST,
    P_CHANGES_SEQ,
    P_CHANGES_CLEAR,
    P_PROTECT,
    P_UNPROTECT,
    P_IS_PROTECTED,
    P_OLDEST_PATIENT,
    P_UATT_GET,
    P_UATT_PUT,
    P_UATT_DEL,
    P_UATT_LIST,
    P_UATT_SUBTREE,
    P_JOB_SAVE,
    P_JOB_DELETE,
    P_JOBS_LOAD,
    P_LOOKUP_ORDERED,    /* unnest($1) WITH ORDINALITY -> ordinal, internal_id, level, parent */
    P_MANY_TAGS,         /* internal_id = ANY($1) -> internal_id, tag, value */
    P_MANY_META,
    P_MANY_CHILDREN,
    P_MANY_NCHILDREN,
    P_NOTIFY,            /* pg_notify('minipacs_invalidate', id) for each id of $1 */
    P_STABLE_CHECK,      /* a resource's row locked, its LastUpdate, a later Stable* change? */
    P_COUNT
} PgStmt;

struct PgDb;
typedef struct PgConn {
    struct PgDb *owner;    /* the pool it belongs to */
    PGconn *conn;
    bool prepared[P_COUNT];
    char sqlstate[6];      /* of the last failed statement, "" if none */
    bool broken;           /* the connection failed: reset before the next use */
} PgConn;

typedef struct PgDb {
    char *conninfo;
    int nconns;
    PgConn *conns;
    bool *busy;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int retries;           /* transaction retries on conflicts */
    PGconn *lock_conn;     /* holds this process's advisory locks for its whole life, and
                              LISTENs for invalidations (notify.c); made again when lost */
    pthread_mutex_t listen_lock; /* lock_conn after open */
    bool lock_exclusive;   /* "Lock": true, taken again on reconnect */
    int64_t owner;         /* this process's key in pending.owner (advisory lock 7420, owner) */
    char owner_text[24];
    int revision;
    _Atomic uint64_t prepared;
} PgDb;

/* ---- pg.c: connections, statements, transactions, helpers -------------------------------- */

/* Runs a prepared statement with text parameters (NULL = SQL NULL). Returns the result
 * (PQclear() it) or NULL with err set (and c->sqlstate / c->broken updated). */
PGresult *pg_run(StoError *err, PgConn *c, PgStmt which, int n, const char *const *params);
/* The same for a statement that returns nothing worth reading. */
bool pg_do(StoError *err, PgConn *c, PgStmt which, int n, const char *const *params);
/* Runs SQL text with parameters, unprepared (find). */
PGresult *pg_run_text(StoError *err, PgConn *c, const char *sql, int n,
                      const char *const *params);

typedef bool (*PgTxFn)(StoError *err, PgConn *c, void *ctx);
/* Runs fn on a pooled connection: inside BEGIN/COMMIT when write (or a multi-statement
 * read: snapshot), retried from the start on a unique/foreign-key violation, a deadlock or a
 * serialization failure (several processes), STO_ERR_UNAVAILABLE when the server is away. */
bool pg_tx(StoError *err, PgDb *db, bool transaction, PgTxFn fn, void *ctx);

/* Appends a PostgreSQL array literal of n texts ({"a","b\"c"}) to a malloc'd buffer. */
char *pg_text_array(const char *const *v, size_t n);
char *pg_int_array(const int64_t *v, size_t n);
/* Copies the text of a cell ("" for NULL) into dst. */
void pg_copy(char *dst, size_t size, const PGresult *r, int row, int col);
char *pg_dup(const PGresult *r, int row, int col); /* malloc'd; NULL: no memory */
int64_t pg_int(const PGresult *r, int row, int col);
bool pg_nomem(StoError *err);

/* Looks a public ID up: 1 found, 0 absent, -1 error. */
int pg_lookup(StoError *err, PgConn *c, const char *id, int64_t *internal, int *level,
              int64_t *parent);
/* Like pg_lookup, but absence or another level (level != -1) is NOT_FOUND. */
bool pg_find_resource(StoError *err, PgConn *c, int level, const char *id, int64_t *internal,
                      int *lv, int64_t *parent);

bool pg_schema_apply(StoError *err, PGconn *conn, int *revision);
int pg_schema_latest(void);

/* Logs one change in the connection's transaction (store.c; meta.c's change_add too). */
bool pg_log_change(StoError *err, PgConn *c, const char *type, int level, const char *id,
                   const char *now);

/* notify.c: tells every process (LISTEN minipacs_invalidate) that these instances were
 * deleted or overwritten, when the connection's transaction commits. */
bool pg_notify_invalidate(StoError *err, PgConn *c, const char *const *ids, size_t n);
/* Takes the process's advisory locks on lock_conn (again, after a lost connection) and
 * LISTENs. false with err set when the server cannot be reached or a lock is taken. */
bool pg_listen_setup(StoError *err, PgDb *db);

/* ---- the operations, by file ------------------------------------------------------------- */
/* store.c */
bool pg_pending_add(StoError *err, void *be, const char *uuid);
bool pg_pending_clear(StoError *err, void *be, const char *const *uuids, size_t n);
bool pg_pending_list(StoError *err, void *be, IdxPending **uuids, size_t *n);
bool pg_store_instance(StoError *err, void *be, const IdxNewInstance *in, IdxStoreResult *out);
bool pg_delete_resource(StoError *err, void *be, int level, const char *id,
                        IdxDeleteResult *out);
/* read.c */
bool pg_resource_get(StoError *err, void *be, int level, const char *id, IdxResource *out);
bool pg_resources_get(StoError *err, void *be, int level, const char *const *ids, size_t n,
                      unsigned what, IdxResource *out);
bool pg_list(StoError *err, void *be, int level, uint64_t since, uint64_t limit, char ***ids,
             size_t *n);
bool pg_instances_of(StoError *err, void *be, int level, const char *id, IdxFile **files,
                     size_t *n);
bool pg_resource_counts(StoError *err, void *be, int level, const char *id, IdxCounts *out);
bool pg_totals(StoError *err, void *be, IdxTotals *out);
bool pg_find(StoError *err, void *be, int level, const IdxFindTerm *terms, size_t nterms,
             uint64_t since, uint64_t limit, char ***ids, size_t *n);
/* meta.c */
bool pg_change_add(StoError *err, void *be, const char *type, int level, const char *id);
bool pg_changes(StoError *err, void *be, int64_t since, uint64_t limit, IdxChange **out,
                size_t *n, bool *done, int64_t *last);
bool pg_changes_last(StoError *err, void *be, IdxChange **out, size_t *n, int64_t *last);
bool pg_changes_clear(StoError *err, void *be);
bool pg_metadata_set(StoError *err, void *be, int level, const char *id, const char *name,
                     const char *value);
bool pg_metadata_get(StoError *err, void *be, int level, const char *id, const char *name,
                     char **value, int64_t *revision);
bool pg_metadata_put(StoError *err, void *be, int level, const char *id, const char *name,
                     const char *value, int64_t if_match, int64_t *revision);
bool pg_metadata_remove(StoError *err, void *be, int level, const char *id, const char *name,
                        int64_t if_match);
bool pg_attachment_set_md5(StoError *err, void *be, const char *uuid, const char *md5);
bool pg_attachment_put(StoError *err, void *be, int level, const char *id,
                       const IdxAttachment *a, int64_t if_match, int64_t *revision,
                       char old_uuid[STO_UUID_LEN]);
bool pg_attachment_get(StoError *err, void *be, int level, const char *id, int content_type,
                       IdxAttachment *out);
bool pg_attachment_list(StoError *err, void *be, int level, const char *id, int **types,
                        size_t *n);
bool pg_attachment_remove(StoError *err, void *be, int level, const char *id, int content_type,
                          int64_t if_match, char old_uuid[STO_UUID_LEN]);
/* Appends to *files (exactly *n long) the user attachments of the subtree of `internal`. */
bool pg_attachment_collect(StoError *err, PgConn *c, int64_t internal, IdxFile **files,
                           size_t *n);
bool pg_set_main_tags(StoError *err, void *be, int level, const char *id, const IdxTag *tags,
                      size_t n);
bool pg_patient_set_protected(StoError *err, void *be, const char *patient_id, bool on);
bool pg_patient_is_protected(StoError *err, void *be, const char *patient_id, bool *out);
bool pg_oldest_patient(StoError *err, void *be, const char *exclude_id, char out[IDX_ID_LEN],
                       bool *found);
bool pg_job_save(StoError *err, void *be, const char *job_id, const char *json);
bool pg_job_delete(StoError *err, void *be, const char *job_id);
bool pg_jobs_load(StoError *err, void *be, char ***rows, size_t *n);
/* notify.c */
bool pg_invalidations(StoError *err, void *be, int timeout_ms, char ***ids, size_t *n,
                      bool *all);
bool pg_change_add_stable(StoError *err, void *be, const char *type, int level,
                          const char *id, int stable_age, bool *logged, int *wait_s);

#endif
