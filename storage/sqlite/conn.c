/* conn.c -- the SQLite backend's connections, transactions and its one statement cache; the
 * backend's operations table.
 *
 * DESIGN
 * Connections. One write connection behind `wlock`: SQLite allows one writer at a time
 * anyway, and serializing in our own mutex means no SQLITE_BUSY dance between our threads
 * (busy_timeout still covers an outside process such as the sqlite3 shell). Beside it, a
 * pool of read-only connections (IdxOptions.readers, 4 by default): a reader takes one under
 * `rlock` (waiting on `rcond` while all are lent), runs its statements inside one deferred
 * transaction (one consistent snapshot even while the writer commits), and gives it back.
 *
 * Statements. Every statement of fixed text is a row of SQL[] below, keyed by SqlStmt.
 * Each connection prepares a row on first use (SQLITE_PREPARE_PERSISTENT) and keeps it until
 * it closes, so after warm-up no call re-parses SQL: `prepared` counts prepares, and
 * idx_info() reports it, which is how the tests see the cache at work.
 *
 * Durability. journal_mode=WAL lets readers run during writes. synchronous=NORMAL: a commit
 * appends to the WAL without fsync; the WAL is fsync'ed at checkpoints. A committed
 * transaction survives a crash of the process (kill -9, abort): the data is in the OS page
 * cache. Only a power cut or a kernel crash can roll back the last transactions, never
 * corrupt the database. That is the trade Orthanc users get with its default settings too,
 * and it is what lets a 2-core machine index thousands of instances per second.
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SQL[S_COUNT] = {
    [S_UATT_GET] = "SELECT content_type, uuid, compressed_size, uncompressed_size, compressed_md5,"
                   " uncompressed_md5, compression, revision FROM user_attachments"
                   " WHERE internal_id = ?1 AND content_type = ?2",
    [S_UATT_PUT] = "INSERT OR REPLACE INTO user_attachments(internal_id, content_type, uuid,"
                   " compressed_size, uncompressed_size, compressed_md5, uncompressed_md5,"
                   " compression, revision) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_UATT_DEL] = "DELETE FROM user_attachments WHERE internal_id = ?1 AND content_type = ?2",
    [S_UATT_LIST] = "SELECT content_type FROM user_attachments WHERE internal_id = ?1"
                    " ORDER BY content_type",
    [S_UATT_ANY] = "SELECT EXISTS(SELECT 1 FROM user_attachments)",
    [S_UATT_SUBTREE] = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL"
                       " SELECT r.internal_id FROM resources r JOIN sub ON r.parent_id = sub.id)"
                       " SELECT u.uuid, u.compressed_size, r.public_id FROM user_attachments u"
                       " JOIN sub ON u.internal_id = sub.id"
                       " JOIN resources r ON r.internal_id = u.internal_id",
    [S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [S_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",

    [S_LOOKUP] = "SELECT internal_id, level, parent_id FROM resources WHERE public_id = ?1",
    [S_LOOKUP_FULL] = "SELECT r.internal_id, r.level, p.public_id FROM resources r"
                      " LEFT JOIN resources p ON p.internal_id = r.parent_id"
                      " WHERE r.public_id = ?1",
    [S_INSERT_RESOURCE] = "INSERT INTO resources(level, public_id, parent_id) VALUES(?1, ?2, ?3)",
    [S_INSERT_TAG] = "INSERT OR REPLACE INTO main_tags(internal_id, tag, value) VALUES(?1, ?2, ?3)",
    [S_DELETE_TAGS] = "DELETE FROM main_tags WHERE internal_id = ?1",
    [S_GET_TAGS] = "SELECT tag, value FROM main_tags WHERE internal_id = ?1 ORDER BY tag",
    [S_GET_CHILDREN] = "SELECT public_id FROM resources WHERE parent_id = ?1"
                       " ORDER BY internal_id",
    [S_LIST] = "SELECT public_id FROM resources WHERE level = ?1 ORDER BY internal_id"
               " LIMIT ?2 OFFSET ?3",
    [S_INSTANCES_OF] = "WITH RECURSIVE sub(id, level) AS ("
                       "  SELECT ?1, ?2"
                       "  UNION ALL SELECT r.internal_id, r.level FROM resources r"
                       "  JOIN sub ON r.parent_id = sub.id WHERE sub.level < 3)"
                       " SELECT r.public_id, a.uuid, a.size FROM sub"
                       " JOIN resources r ON r.internal_id = sub.id"
                       " JOIN attachments a ON a.internal_id = sub.id"
                       " WHERE sub.level = 3 ORDER BY sub.id",
    [S_COUNTS] = "WITH RECURSIVE sub(id, level) AS ("
                 "  SELECT ?1, ?2"
                 "  UNION ALL SELECT r.internal_id, r.level FROM resources r"
                 "  JOIN sub ON r.parent_id = sub.id WHERE sub.level < 3)"
                 " SELECT IFNULL(SUM(sub.level = 0), 0), IFNULL(SUM(sub.level = 1), 0),"
                 " IFNULL(SUM(sub.level = 2), 0), IFNULL(SUM(sub.level = 3), 0),"
                 " IFNULL(SUM(a.size), 0)"
                 " FROM sub LEFT JOIN attachments a ON a.internal_id = sub.id",
    [S_NUM_CHILDREN] = "SELECT COUNT(*) FROM resources WHERE parent_id = ?1",
    [S_COUNT_CHILDREN] = "SELECT COUNT(*) FROM (SELECT 1 FROM resources WHERE parent_id = ?1"
                         " LIMIT 2)",
    [S_GET_RESOURCE_BY_INTERNAL] = "SELECT level, public_id, parent_id FROM resources"
                                   " WHERE internal_id = ?1",
    [S_DELETE_RESOURCE] = "DELETE FROM resources WHERE internal_id = ?1",
    /* Orthanc: the change-log entries of every resource a delete removes go with it */
    [S_DELETE_SUBTREE_CHANGES] = "DELETE FROM changes WHERE public_id IN ("
                                 "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL"
                                 " SELECT r.internal_id FROM resources r JOIN sub ON r.parent_id = sub.id)"
                                 " SELECT r.public_id FROM resources r JOIN sub ON r.internal_id = sub.id)",

    [S_INSERT_ATTACHMENT] = "INSERT OR REPLACE INTO attachments(internal_id, uuid, size, md5)"
                            " VALUES(?1, ?2, ?3, ?4)",
    [S_GET_ATTACHMENT] = "SELECT uuid, size, md5 FROM attachments WHERE internal_id = ?1",
    [S_SET_MD5] = "UPDATE attachments SET md5 = ?2 WHERE uuid = ?1",
    [S_TOTALS_ADD] = "UPDATE totals SET patients = patients + ?1, studies = studies + ?2,"
                     " series = series + ?3, instances = instances + ?4,"
                     " disk_size = disk_size + ?5, uncompressed_size = uncompressed_size + ?5"
                     " WHERE id = 0",
    [S_TOTALS_GET] = "SELECT patients, studies, series, instances, disk_size, uncompressed_size"
                     " FROM totals WHERE id = 0",
    [S_PENDING_ADD] = "INSERT OR IGNORE INTO pending(uuid) VALUES(?1)",
    [S_PENDING_DEL] = "DELETE FROM pending WHERE uuid = ?1",
    [S_PENDING_LIST] = "SELECT p.uuid, EXISTS(SELECT 1 FROM attachments a WHERE a.uuid = p.uuid)"
                       " OR EXISTS(SELECT 1 FROM user_attachments u WHERE u.uuid = p.uuid)"
                       " FROM pending p",

    [S_SET_META] = "INSERT OR REPLACE INTO metadata(internal_id, name, value) VALUES(?1, ?2, ?3)",
    [S_DELETE_META] = "DELETE FROM metadata WHERE internal_id = ?1 AND name = ?2",
    [S_DELETE_ALL_META] = "DELETE FROM metadata WHERE internal_id = ?1",
    [S_GET_META] = "SELECT name, value FROM metadata WHERE internal_id = ?1 ORDER BY name",
    [S_META_LOOKUP] = "SELECT m.value, IFNULL(r.revision, 0) FROM metadata m"
                      " LEFT JOIN metadata_rev r ON r.internal_id = m.internal_id"
                      " AND r.name = m.name"
                      " WHERE m.internal_id = ?1 AND m.name = ?2",
    [S_SET_META_REV] = "INSERT OR REPLACE INTO metadata_rev(internal_id, name, revision)"
                       " VALUES(?1, ?2, ?3)",

    [S_INSERT_CHANGE] = "INSERT INTO changes(type, level, public_id, date) VALUES(?1, ?2, ?3, ?4)",
    [S_CHANGES] = "SELECT seq, type, level, public_id, date FROM changes WHERE seq > ?1"
                  " ORDER BY seq LIMIT ?2",
    [S_CHANGES_LAST] = "SELECT seq, type, level, public_id, date FROM changes"
                       " ORDER BY seq DESC LIMIT 1",
    [S_CHANGES_SEQ] = "SELECT IFNULL((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
    [S_CHANGES_CLEAR] = "DELETE FROM changes",

    [S_PROTECT] = "INSERT OR IGNORE INTO protected(internal_id) VALUES(?1)",
    [S_UNPROTECT] = "DELETE FROM protected WHERE internal_id = ?1",
    [S_IS_PROTECTED] = "SELECT 1 FROM protected WHERE internal_id = ?1",
    /* Orthanc's recycling order: the patient that least recently received an instance
     * (LastUpdate, set by every store), ties by creation order. */
    [S_OLDEST_PATIENT] = "SELECT r.public_id FROM resources r"
                         " LEFT JOIN metadata m ON m.internal_id = r.internal_id"
                         " AND m.name = 'LastUpdate'"
                         " WHERE r.level = 0 AND r.public_id <> ?1"
                         " AND NOT EXISTS (SELECT 1 FROM protected p"
                         " WHERE p.internal_id = r.internal_id)"
                         " ORDER BY m.value, r.internal_id LIMIT 1",

    [S_JOB_SAVE] = "INSERT INTO jobs(id, json, ordering) VALUES(?1, ?2,"
                   " (SELECT IFNULL(MAX(ordering), 0) + 1 FROM jobs))"
                   " ON CONFLICT(id) DO UPDATE SET json = excluded.json",
    [S_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    [S_JOBS_LOAD] = "SELECT id, json FROM jobs ORDER BY ordering",
};

/* ---- errors and statements -------------------------------------------------------------- */

bool sql_fail(StoError *err, SqlConn *c, const char *what)
{
    int rc = sqlite3_extended_errcode(c->db) & 0xff;
    int code = rc == SQLITE_FULL ? STO_ERR_FULL : rc == SQLITE_NOMEM ? STO_ERR_NOMEM : STO_ERR_DB;
    sto_set_err(err, code, "index %s: %s", what, sqlite3_errmsg(c->db));
    return false;
}

bool sql_nomem(StoError *err)
{
    sto_set_err(err, STO_ERR_NOMEM, "out of memory");
    return false;
}

void sql_count_prepare(SqlConn *c)
{
    atomic_fetch_add_explicit(&c->owner->prepared, 1, memory_order_relaxed);
}

sqlite3_stmt *sql_stmt(StoError *err, SqlConn *c, SqlStmt which)
{
    sqlite3_stmt *s = c->st[which];
    if (!s) {
        if (sqlite3_prepare_v3(c->db, SQL[which], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK) {
            sql_fail(err, c, "prepare");
            return NULL;
        }
        sql_count_prepare(c);
        c->st[which] = s;
        return s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

bool sql_run(StoError *err, SqlConn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        sql_fail(err, c, what);
        sqlite3_reset(s);
        return false;
    }
    sqlite3_reset(s);
    return true;
}

bool sql_exec(StoError *err, SqlConn *c, SqlStmt which)
{
    sqlite3_stmt *s = sql_stmt(err, c, which);
    return s && sql_run(err, c, s, SQL[which]);
}

void sql_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

void sql_copy_col(char *dst, size_t size, sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

char *sql_dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    return strdup(v ? (const char *)v : "");
}

bool sql_step_strings(StoError *err, SqlConn *c, sqlite3_stmt *s, const char *what,
                      char ***ids, size_t *n)
{
    char **arr = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&arr, &cap, len, sizeof *arr) || !(arr[len] = sql_dup_col(s, 0))) {
            idx_strings_free(arr, len);
            return sql_nomem(err);
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        sql_fail(err, c, what);
        idx_strings_free(arr, len);
        return false;
    }
    *ids = arr;
    *n = len;
    return true;
}

/* ---- resource lookups (every file needs them) ---------------------------------------- */

int sql_lookup(StoError *err, SqlConn *c, const char *id, int64_t *internal, int *level,
               int64_t *parent)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_LOOKUP);
    if (!s)
        return -1;
    sql_bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *internal = sqlite3_column_int64(s, 0);
        *level = sqlite3_column_int(s, 1);
        if (parent)
            *parent = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 2);
        sqlite3_reset(s);
        return 1;
    }
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return 0;
    }
    sql_fail(err, c, "lookup");
    sqlite3_reset(s);
    return -1;
}

bool sql_find_resource(StoError *err, SqlConn *c, int level, const char *id, int64_t *internal,
                       int *found_level, int64_t *parent)
{
    int lv = -1;
    int r = sql_lookup(err, c, id, internal, &lv, parent); /* before lv is read */
    if (!idx_lookup_result(err, r, level, lv, id))
        return false;
    if (found_level)
        *found_level = lv;
    return true;
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_close(SqlConn *c)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

static bool conn_open(StoError *err, SqlDb *db, SqlConn *c, const char *path, bool writer)
{
    int flags = SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                              : SQLITE_OPEN_READONLY);
    memset(c, 0, sizeof *c);
    c->owner = db;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        if (c->db)
            sql_fail(err, c, "open");
        else
            sql_nomem(err);
        conn_close(c);
        return false;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    const char *pragmas = writer ? "PRAGMA journal_mode=WAL;"
                                   "PRAGMA synchronous=NORMAL;"
                                   "PRAGMA foreign_keys=ON;"
                                   "PRAGMA temp_store=MEMORY;"
                                   "PRAGMA cache_size=-16000;"
                                 : "PRAGMA foreign_keys=ON;"
                                   "PRAGMA temp_store=MEMORY;"
                                   "PRAGMA cache_size=-8000;";
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(err, c, "pragma");
        conn_close(c);
        return false;
    }
    return true;
}

static void sql_close(void *be)
{
    SqlDb *db = be;
    if (!db)
        return;
    for (int i = 0; i < db->nreaders; i++)
        conn_close(&db->readers[i]);
    conn_close(&db->writer); /* last: closing the last connection checkpoints the WAL */
    pthread_cond_destroy(&db->rcond);
    pthread_mutex_destroy(&db->rlock);
    pthread_mutex_destroy(&db->wlock);
    free(db->readers);
    free(db->free_readers);
    free(db);
}

static void *sql_open(StoError *err, const IdxOptions *opt)
{
    char path[4096];
    if (!opt->dir || !*opt->dir) {
        sto_set_err(err, STO_ERR_ARG, "empty index directory");
        return NULL;
    }
    if (opt->readers < 0 || opt->readers > SQL_READERS_MAX) {
        sto_set_err(err, STO_ERR_ARG, "index readers must be 0..%d", SQL_READERS_MAX);
        return NULL;
    }
    if (snprintf(path, sizeof path, "%s/index.sqlite", opt->dir) >= (int)sizeof path) {
        sto_set_err(err, STO_ERR_ARG, "index directory path too long");
        return NULL;
    }
    SqlDb *db = calloc(1, sizeof *db);
    if (!db) {
        sql_nomem(err);
        return NULL;
    }
    int nreaders = opt->readers ? opt->readers : SQL_READERS_DEFAULT;
    pthread_mutex_init(&db->wlock, NULL);
    pthread_mutex_init(&db->rlock, NULL);
    pthread_cond_init(&db->rcond, NULL);
    db->readers = calloc((size_t)nreaders, sizeof *db->readers);
    db->free_readers = calloc((size_t)nreaders, sizeof *db->free_readers);
    if (!db->readers || !db->free_readers) {
        sql_nomem(err);
        goto fail;
    }
    if (!conn_open(err, db, &db->writer, path, true))
        goto fail;
    if (!sql_schema_apply(err, &db->writer, &db->schema_revision))
        goto fail;
    for (int i = 0; i < nreaders; i++) {
        if (!conn_open(err, db, &db->readers[i], path, false))
            goto fail;
        db->nreaders++;
        db->free_readers[db->nfree++] = i;
    }
    return db;
fail:
    sql_close(db);
    return NULL;
}

static bool sql_info(StoError *err, void *be, IdxInfo *out)
{
    (void)err;
    SqlDb *db = be;
    out->schema_revision = db->schema_revision;
    out->statements_prepared = atomic_load_explicit(&db->prepared, memory_order_relaxed);
    return true;
}

/* ---- transactions ----------------------------------------------------------------------- */

SqlConn *sql_write_begin(StoError *err, SqlDb *db)
{
    pthread_mutex_lock(&db->wlock);
    if (!sql_exec(err, &db->writer, S_BEGIN_IMMEDIATE)) {
        pthread_mutex_unlock(&db->wlock);
        return NULL;
    }
    return &db->writer;
}

bool sql_write_end(StoError *err, SqlDb *db, bool ok)
{
    SqlConn *c = &db->writer;
    if (ok)
        ok = sql_exec(err, c, S_COMMIT);
    if (!ok && !sqlite3_get_autocommit(c->db))
        sql_exec(NULL, c, S_ROLLBACK);
    pthread_mutex_unlock(&db->wlock);
    return ok;
}

static void reader_give_back(SqlDb *db, SqlConn *c)
{
    pthread_mutex_lock(&db->rlock);
    db->free_readers[db->nfree++] = (int)(c - db->readers);
    pthread_cond_signal(&db->rcond);
    pthread_mutex_unlock(&db->rlock);
}

SqlConn *sql_read_begin(StoError *err, SqlDb *db)
{
    pthread_mutex_lock(&db->rlock);
    while (db->nfree == 0)
        pthread_cond_wait(&db->rcond, &db->rlock);
    SqlConn *c = &db->readers[db->free_readers[--db->nfree]];
    pthread_mutex_unlock(&db->rlock);
    if (!sql_exec(err, c, S_BEGIN)) {
        reader_give_back(db, c);
        return NULL;
    }
    return c;
}

bool sql_read_end(StoError *err, SqlDb *db, SqlConn *c, bool ok)
{
    /* A read-only transaction: COMMIT just ends the snapshot. */
    if (!sql_exec(ok ? err : NULL, c, S_COMMIT)) {
        ok = false;
        if (!sqlite3_get_autocommit(c->db))
            sql_exec(NULL, c, S_ROLLBACK);
    }
    reader_give_back(db, c);
    return ok;
}

/* ---- the operations table --------------------------------------------------------------- */

const IdxBackend idx_sqlite_backend = {
    .name = "sqlite",
    .open = sql_open,
    .close = sql_close,
    .info = sql_info,
    .pending_add = sql_pending_add,
    .pending_clear = sql_pending_clear,
    .pending_list = sql_pending_list,
    .store_instance = sql_store_instance,
    .delete_resource = sql_delete_resource,
    .resource_get = sql_resource_get,
    .resources_get = sql_resources_get,
    .list = sql_list,
    .instances_of = sql_instances_of,
    .resource_counts = sql_resource_counts,
    .totals = sql_totals,
    .find = sql_find,
    .change_add = sql_change_add,
    .changes = sql_changes,
    .changes_last = sql_changes_last,
    .changes_clear = sql_changes_clear,
    .metadata_set = sql_metadata_set,
    .metadata_get = sql_metadata_get,
    .metadata_put = sql_metadata_put,
    .metadata_remove = sql_metadata_remove,
    .attachment_set_md5 = sql_attachment_set_md5,
    .patient_set_protected = sql_patient_set_protected,
    .set_main_tags = sql_set_main_tags,
    .attachment_put = sql_attachment_put,
    .attachment_get = sql_attachment_get,
    .attachment_list = sql_attachment_list,
    .attachment_remove = sql_attachment_remove,
    .patient_is_protected = sql_patient_is_protected,
    .oldest_patient = sql_oldest_patient,
    .job_save = sql_job_save,
    .job_delete = sql_job_delete,
    .jobs_load = sql_jobs_load,
};
