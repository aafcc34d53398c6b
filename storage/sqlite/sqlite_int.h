/* sqlite_int.h -- shared by the files of the SQLite index backend (storage/sqlite/), private.
 *
 * Files, one concern each:
 *   conn.c     connections (one writer behind a mutex, a pool of readers), transactions,
 *              errors, the statement cache, open/close/info and the operations table
 *   schema.c   the schema: its revisions and the steps that upgrade an older index
 *   store.c    pending uuids, storing an instance, deleting a resource (the write path)
 *   read.c     resource read-back, lists, instances under a resource, counts, totals
 *   find.c     /tools/find: SQL assembled with sqlite3_str from parsed constraints
 *   meta.c     metadata (with revisions), attachment MD5, changes log, protection and the
 *              recycling order, saved jobs
 * Every statement of fixed text is in the table of conn.c (enum SqlStmt), prepared once per
 * connection on first use and reused; only find.c prepares a statement per call, because
 * its text depends on the constraints.
 */
#ifndef MP_SQLITE_INT_H
#define MP_SQLITE_INT_H

#include "storage/idx_backend.h"
#include "storage/storage_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#define SQL_READERS_DEFAULT 4
#define SQL_READERS_MAX 32

/* Every statement of fixed text, prepared once per connection (conn.c holds the SQL). */
typedef enum SqlStmt {
    S_BEGIN_IMMEDIATE,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    /* resources */
    S_LOOKUP,
    S_LOOKUP_FULL,
    S_INSERT_RESOURCE,
    S_INSERT_TAG,
    S_DELETE_TAGS,
    S_GET_TAGS,
    S_GET_CHILDREN,
    S_LIST,
    S_INSTANCES_OF,
    S_COUNTS,
    S_COUNT_CHILDREN,
    S_NUM_CHILDREN,
    S_GET_RESOURCE_BY_INTERNAL,
    S_DELETE_RESOURCE,
    S_DELETE_SUBTREE_CHANGES,
    /* attachments, totals, pending */
    S_INSERT_ATTACHMENT,
    S_GET_ATTACHMENT,
    S_SET_MD5,
    S_TOTALS_ADD,
    S_TOTALS_GET,
    S_PENDING_ADD,
    S_PENDING_DEL,
    S_PENDING_LIST,
    /* metadata */
    S_SET_META,
    S_DELETE_META,
    S_DELETE_ALL_META,
    S_GET_META,
    S_META_LOOKUP,
    S_SET_META_REV,
    /* changes */
    S_INSERT_CHANGE,
    S_CHANGES,
    S_CHANGES_LAST,
    S_CHANGES_SEQ,
    S_CHANGES_CLEAR,
    /* protection */
    S_PROTECT,
    S_UNPROTECT,
    S_IS_PROTECTED,
    S_OLDEST_PATIENT,
    /* user-defined attachments */
    S_UATT_GET,
    S_UATT_PUT,
    S_UATT_DEL,
    S_UATT_LIST,
    S_UATT_ANY,
    S_UATT_SUBTREE,
    /* jobs */
    S_JOB_SAVE,
    S_JOB_DELETE,
    S_JOBS_LOAD,
    S_COUNT
} SqlStmt;

typedef struct SqlConn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct SqlDb *owner;
} SqlConn;

typedef struct SqlDb {
    SqlConn writer;
    pthread_mutex_t wlock;
    SqlConn *readers;
    int nreaders;
    int *free_readers; /* stack of indices of idle readers */
    int nfree;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    int schema_revision;
    _Atomic uint64_t prepared; /* statements prepared, all connections */
} SqlDb;

/* ---- conn.c ---------------------------------------------------------------------------- */

/* Fills err from the connection's last SQLite error; always returns false. */
bool sql_fail(StoError *err, SqlConn *c, const char *what);
bool sql_nomem(StoError *err);
/* The cached statement `which` of c, reset and unbound, or NULL with err set. */
sqlite3_stmt *sql_stmt(StoError *err, SqlConn *c, SqlStmt which);
/* Steps s expecting SQLITE_DONE, then resets it. */
bool sql_run(StoError *err, SqlConn *c, sqlite3_stmt *s, const char *what);
/* Prepares and runs a cached statement that takes no parameter. */
bool sql_exec(StoError *err, SqlConn *c, SqlStmt which);
/* Counts a prepare done outside the cache (find.c). */
void sql_count_prepare(SqlConn *c);

void sql_bind_text(sqlite3_stmt *s, int i, const char *v); /* NULL binds NULL */
void sql_copy_col(char *dst, size_t size, sqlite3_stmt *s, int col);
char *sql_dup_col(sqlite3_stmt *s, int col); /* malloc'd, "" for NULL; NULL = no memory */
/* Steps s to its end collecting column 0 as malloc'd strings (idx_strings_free). */
bool sql_step_strings(StoError *err, SqlConn *c, sqlite3_stmt *s, const char *what,
                      char ***ids, size_t *n);

/* Write transaction: lock, BEGIN IMMEDIATE. NULL with err set (and unlocked) on failure. */
SqlConn *sql_write_begin(StoError *err, SqlDb *db);
/* Commits when ok (a failed commit turns ok false), rolls back otherwise; unlocks. */
bool sql_write_end(StoError *err, SqlDb *db, bool ok);
/* Read transaction: borrow a reader, BEGIN (one snapshot) ... COMMIT, give it back. */
SqlConn *sql_read_begin(StoError *err, SqlDb *db);
bool sql_read_end(StoError *err, SqlDb *db, SqlConn *c, bool ok);

/* Looks up a public ID. Returns 1 found, 0 absent, -1 error. parent: -1 if none. */
int sql_lookup(StoError *err, SqlConn *c, const char *id, int64_t *internal, int *level,
               int64_t *parent);
/* Like sql_lookup(), but absence or a level mismatch (level != -1) fills NOT_FOUND. */
bool sql_find_resource(StoError *err, SqlConn *c, int level, const char *id, int64_t *internal,
                       int *found_level, int64_t *parent);

/* ---- schema.c -------------------------------------------------------------------------- */

/* The revision a new index gets and an older one is upgraded to (the last step's). */
int sql_schema_latest(void);
/* Creates the schema in an empty database, or upgrades an older one step by step, in one
 * transaction; refuses a newer one. *revision: the revision now stored. */
bool sql_schema_apply(StoError *err, SqlConn *c, int *revision);

/* ---- store.c --------------------------------------------------------------------------- */

bool sql_pending_op(StoError *err, SqlConn *c, SqlStmt which, const char *uuid);
bool sql_insert_change(StoError *err, SqlConn *c, const char *type, int level, const char *id,
                       const char *date, int64_t *seq);
bool sql_set_meta(StoError *err, SqlConn *c, int64_t internal, const char *name,
                  const char *value);
bool sql_totals_add(StoError *err, SqlConn *c, const int64_t d[IDX_LEVELS], int64_t size);

bool sql_pending_add(StoError *err, void *be, const char *uuid);
bool sql_pending_clear(StoError *err, void *be, const char *const *uuids, size_t n);
bool sql_pending_list(StoError *err, void *be, IdxPending **uuids, size_t *n);
bool sql_store_instance(StoError *err, void *be, const IdxNewInstance *in, IdxStoreResult *out);
bool sql_delete_resource(StoError *err, void *be, int level, const char *id,
                         IdxDeleteResult *out);

/* ---- read.c ---------------------------------------------------------------------------- */

bool sql_collect_instances(StoError *err, SqlConn *c, int64_t internal, int level,
                           IdxFile **files, size_t *n);
bool sql_subtree_counts(StoError *err, SqlConn *c, int64_t internal, int level,
                        int64_t counts[IDX_LEVELS], int64_t *size);

bool sql_resource_get(StoError *err, void *be, int level, const char *id, IdxResource *out);
bool sql_resources_get(StoError *err, void *be, int level, const char *const *ids, size_t n,
                       unsigned what, IdxResource *out);
bool sql_list(StoError *err, void *be, int level, uint64_t since, uint64_t limit, char ***ids,
              size_t *n);
bool sql_instances_of(StoError *err, void *be, int level, const char *id, IdxFile **files,
                      size_t *n);
bool sql_resource_counts(StoError *err, void *be, int level, const char *id, IdxCounts *out);
bool sql_totals(StoError *err, void *be, IdxTotals *out);

/* ---- find.c ---------------------------------------------------------------------------- */

bool sql_find(StoError *err, void *be, int level, const IdxFindTerm *terms, size_t nterms,
              uint64_t since, uint64_t limit, char ***ids, size_t *n);

/* ---- meta.c ---------------------------------------------------------------------------- */

bool sql_change_add(StoError *err, void *be, const char *type, int level, const char *id);
bool sql_changes(StoError *err, void *be, int64_t since, uint64_t limit, IdxChange **out,
                 size_t *n, bool *done, int64_t *last);
bool sql_changes_last(StoError *err, void *be, IdxChange **out, size_t *n, int64_t *last);
bool sql_changes_clear(StoError *err, void *be);
bool sql_metadata_set(StoError *err, void *be, int level, const char *id, const char *name,
                      const char *value);
bool sql_metadata_get(StoError *err, void *be, int level, const char *id, const char *name,
                      char **value, int64_t *revision);
bool sql_metadata_put(StoError *err, void *be, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, int64_t *revision);
bool sql_metadata_remove(StoError *err, void *be, int level, const char *id, const char *name,
                         int64_t if_match);
bool sql_attachment_set_md5(StoError *err, void *be, const char *uuid, const char *md5);
bool sql_attachment_put(StoError *err, void *be, int level, const char *id,
                        const IdxAttachment *a, int64_t if_match, int64_t *revision,
                        char old_uuid[STO_UUID_LEN]);
bool sql_attachment_get(StoError *err, void *be, int level, const char *id, int content_type,
                        IdxAttachment *out);
bool sql_attachment_list(StoError *err, void *be, int level, const char *id, int **types,
                         size_t *n);
bool sql_attachment_remove(StoError *err, void *be, int level, const char *id, int content_type,
                           int64_t if_match, char old_uuid[STO_UUID_LEN]);
/* Appends to *files the user attachments of the subtree of `internal` (itself included). */
bool sql_attachment_collect(StoError *err, SqlConn *c, int64_t internal, IdxFile **files,
                            size_t *n);
bool sql_set_main_tags(StoError *err, void *be, int level, const char *id, const IdxTag *tags,
                       size_t n);
bool sql_patient_set_protected(StoError *err, void *be, const char *patient_id, bool on);
bool sql_patient_is_protected(StoError *err, void *be, const char *patient_id, bool *out);
bool sql_oldest_patient(StoError *err, void *be, const char *exclude_id, char out[IDX_ID_LEN],
                        bool *found);
bool sql_job_save(StoError *err, void *be, const char *job_id, const char *json);
bool sql_job_delete(StoError *err, void *be, const char *job_id);
bool sql_jobs_load(StoError *err, void *be, char ***rows, size_t *n);

#endif
