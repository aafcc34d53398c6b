/* index.c -- the SQLite index: resources, main tags, metadata, attachments, changes log,
 * running totals, pending file uuids and saved jobs.
 *
 * DESIGN
 * Connections. One write connection behind `wlock`: SQLite allows one writer at a time
 * anyway, and serializing in our own mutex means no SQLITE_BUSY dance between our threads
 * (busy_timeout still covers an outside process such as the sqlite3 shell). Beside it, a
 * pool of IDX_READERS read-only connections: a reader takes one under `rlock` (waiting on
 * `rcond` while all are lent), runs its statements inside one deferred transaction (one
 * consistent snapshot even while the writer commits), and gives it back. Each connection
 * caches its prepared statements (prepared on first use with SQLITE_PREPARE_PERSISTENT), so
 * the hot path (idx_pending_add + idx_store_instance) never re-parses SQL.
 *
 * Durability. journal_mode=WAL lets readers run during writes. synchronous=NORMAL: a commit
 * appends to the WAL without fsync; the WAL is fsync'ed at checkpoints. A committed
 * transaction survives a crash of the process (kill -9, abort): the data is in the OS page
 * cache. Only a power cut or a kernel crash can roll back the last transactions, never
 * corrupt the database. That is the trade Orthanc users get with its default settings too,
 * and it is what lets a 2-core machine index thousands of instances per second.
 *
 * Pending uuids. A file exists before its row. The ingest path notes the uuid as pending
 * (idx_pending_add), writes the file, then idx_store_instance clears the uuid in the same
 * transaction that adds the attachment row. A delete (or an overwrite) moves the uuids of
 * the rows it removes into pending in its transaction; the caller clears them after
 * unlinking the files. So after any crash, the only files that may be orphans (or rows that
 * may miss their file) are the pending ones: start-up checks idx_pending_list(), never the
 * whole storage area.
 *
 * Schema. resources is one table for the four levels with a parent link; deleting a row
 * cascades (foreign keys ON DELETE CASCADE) to its descendants and to their tags, metadata
 * and attachment. changes.seq is AUTOINCREMENT so a seq is never reused, even after the log
 * is cleared. totals is a single row kept up to date by every store and delete: statistics
 * never scan the tables. PRAGMA user_version holds IDX_SCHEMA_VERSION.
 */
#include "storage/storage.h"
#include "storage/storage_int.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDX_READERS 4

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS resources("
    "  internal_id INTEGER PRIMARY KEY,"
    "  level INTEGER NOT NULL,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  parent_id INTEGER REFERENCES resources(internal_id) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS resources_parent ON resources(parent_id);"
    "CREATE INDEX IF NOT EXISTS resources_level ON resources(level);"
    "CREATE TABLE IF NOT EXISTS main_tags("
    "  internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
    "  tag INTEGER NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY(internal_id, tag)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS metadata("
    "  internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY(internal_id, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS metadata_rev("
    "  internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  PRIMARY KEY(internal_id, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS attachments("
    "  internal_id INTEGER PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE,"
    "  uuid TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  md5 TEXT);"
    "CREATE INDEX IF NOT EXISTS attachments_uuid ON attachments(uuid);"
    "CREATE TABLE IF NOT EXISTS changes("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type TEXT NOT NULL,"
    "  level INTEGER NOT NULL,"
    "  public_id TEXT NOT NULL,"
    "  date TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pending(uuid TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS protected("
    "  internal_id INTEGER PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE);"
    "CREATE TABLE IF NOT EXISTS totals("
    "  id INTEGER PRIMARY KEY CHECK (id = 0),"
    "  patients INTEGER NOT NULL, studies INTEGER NOT NULL, series INTEGER NOT NULL,"
    "  instances INTEGER NOT NULL, disk_size INTEGER NOT NULL,"
    "  uncompressed_size INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO totals VALUES(0, 0, 0, 0, 0, 0, 0);"
    "CREATE TABLE IF NOT EXISTS jobs("
    "  id TEXT PRIMARY KEY,"
    "  json TEXT NOT NULL,"
    "  ordering INTEGER NOT NULL);";

/* Every statement, prepared once per connection on first use. */
enum {
    S_BEGIN_IMMEDIATE,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_LOOKUP,
    S_LOOKUP_FULL,
    S_INSERT_RESOURCE,
    S_INSERT_TAG,
    S_DELETE_TAGS,
    S_SET_META,
    S_DELETE_META,
    S_DELETE_ALL_META,
    S_INSERT_ATTACHMENT,
    S_GET_ATTACHMENT,
    S_INSERT_CHANGE,
    S_TOTALS_ADD,
    S_TOTALS_GET,
    S_PENDING_ADD,
    S_PENDING_DEL,
    S_PENDING_LIST,
    S_GET_TAGS,
    S_GET_CHILDREN,
    S_GET_META,
    S_LIST,
    S_INSTANCES_OF,
    S_COUNTS,
    S_COUNT_CHILDREN,
    S_GET_RESOURCE_BY_INTERNAL,
    S_DELETE_RESOURCE,
    S_CHANGES,
    S_CHANGES_LAST,
    S_CHANGES_SEQ,
    S_CHANGES_CLEAR,
    S_JOB_SAVE,
    S_JOB_DELETE,
    S_JOBS_LOAD,
    S_COUNT
};

static const char *const SQL[S_COUNT] = {
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
    [S_SET_META] = "INSERT OR REPLACE INTO metadata(internal_id, name, value) VALUES(?1, ?2, ?3)",
    [S_DELETE_META] = "DELETE FROM metadata WHERE internal_id = ?1 AND name = ?2",
    [S_DELETE_ALL_META] = "DELETE FROM metadata WHERE internal_id = ?1",
    [S_INSERT_ATTACHMENT] = "INSERT OR REPLACE INTO attachments(internal_id, uuid, size, md5)"
                            " VALUES(?1, ?2, ?3, ?4)",
    [S_GET_ATTACHMENT] = "SELECT uuid, size, md5 FROM attachments WHERE internal_id = ?1",
    [S_INSERT_CHANGE] = "INSERT INTO changes(type, level, public_id, date) VALUES(?1, ?2, ?3, ?4)",
    [S_TOTALS_ADD] = "UPDATE totals SET patients = patients + ?1, studies = studies + ?2,"
                     " series = series + ?3, instances = instances + ?4,"
                     " disk_size = disk_size + ?5, uncompressed_size = uncompressed_size + ?5"
                     " WHERE id = 0",
    [S_TOTALS_GET] = "SELECT patients, studies, series, instances, disk_size, uncompressed_size"
                     " FROM totals WHERE id = 0",
    [S_PENDING_ADD] = "INSERT OR IGNORE INTO pending(uuid) VALUES(?1)",
    [S_PENDING_DEL] = "DELETE FROM pending WHERE uuid = ?1",
    [S_PENDING_LIST] = "SELECT p.uuid, EXISTS(SELECT 1 FROM attachments a WHERE a.uuid = p.uuid)"
                       " FROM pending p",
    [S_GET_TAGS] = "SELECT tag, value FROM main_tags WHERE internal_id = ?1 ORDER BY tag",
    [S_GET_CHILDREN] = "SELECT public_id FROM resources WHERE parent_id = ?1"
                       " ORDER BY internal_id",
    [S_GET_META] = "SELECT name, value FROM metadata WHERE internal_id = ?1 ORDER BY name",
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
    [S_COUNT_CHILDREN] = "SELECT COUNT(*) FROM (SELECT 1 FROM resources WHERE parent_id = ?1"
                         " LIMIT 2)",
    [S_GET_RESOURCE_BY_INTERNAL] = "SELECT level, public_id, parent_id FROM resources"
                                   " WHERE internal_id = ?1",
    [S_DELETE_RESOURCE] = "DELETE FROM resources WHERE internal_id = ?1",
    [S_CHANGES] = "SELECT seq, type, level, public_id, date FROM changes WHERE seq > ?1"
                  " ORDER BY seq LIMIT ?2",
    [S_CHANGES_LAST] = "SELECT seq, type, level, public_id, date FROM changes"
                       " ORDER BY seq DESC LIMIT 1",
    [S_CHANGES_SEQ] = "SELECT IFNULL((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
    [S_CHANGES_CLEAR] = "DELETE FROM changes",
    [S_JOB_SAVE] = "INSERT INTO jobs(id, json, ordering) VALUES(?1, ?2,"
                   " (SELECT IFNULL(MAX(ordering), 0) + 1 FROM jobs))"
                   " ON CONFLICT(id) DO UPDATE SET json = excluded.json",
    [S_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    [S_JOBS_LOAD] = "SELECT id, json FROM jobs ORDER BY ordering",
};

typedef struct Conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
} Conn;

struct IdxDb {
    Conn writer;
    pthread_mutex_t wlock;
    Conn readers[IDX_READERS];
    int free_readers[IDX_READERS]; /* stack of indices of idle readers */
    int nfree;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
};

/* ---- errors ----------------------------------------------------------------------------- */


/* Fills err from the connection's last SQLite error; always returns false. */
static bool db_fail(StoError *err, Conn *c, const char *what)
{
    int rc = sqlite3_extended_errcode(c->db) & 0xff;
    int code = rc == SQLITE_FULL ? STO_ERR_FULL : rc == SQLITE_NOMEM ? STO_ERR_NOMEM : STO_ERR_DB;
    sto_set_err(err, code, "index %s: %s", what, sqlite3_errmsg(c->db));
    return false;
}

static bool nomem(StoError *err)
{
    sto_set_err(err, STO_ERR_NOMEM, "out of memory");
    return false;
}

/* ---- statements ------------------------------------------------------------------------- */

/* The cached statement `which` of c, reset and unbound, or NULL with err set. */
static sqlite3_stmt *stmt(StoError *err, Conn *c, int which)
{
    sqlite3_stmt *s = c->st[which];
    if (!s) {
        if (sqlite3_prepare_v3(c->db, SQL[which], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK) {
            db_fail(err, c, "prepare");
            return NULL;
        }
        c->st[which] = s;
        return s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Steps s expecting SQLITE_DONE, then resets it. */
static bool run(StoError *err, Conn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        db_fail(err, c, what);
        sqlite3_reset(s);
        return false;
    }
    sqlite3_reset(s);
    return true;
}

/* Runs a statement that takes no parameter. */
static bool exec_st(StoError *err, Conn *c, int which)
{
    sqlite3_stmt *s = stmt(err, c, which);
    return s && run(err, c, s, SQL[which]);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

static char *dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    return strdup(v ? (const char *)v : "");
}

static void now_string(char out[16])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%dT%H%M%S", &tm);
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_close(Conn *c)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

static bool conn_open(StoError *err, Conn *c, const char *path, bool writer)
{
    int flags = SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                              : SQLITE_OPEN_READONLY);
    memset(c, 0, sizeof *c);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        if (c->db)
            db_fail(err, c, "open");
        else
            nomem(err);
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
        db_fail(err, c, "pragma");
        conn_close(c);
        return false;
    }
    return true;
}

static bool create_schema(StoError *err, Conn *c)
{
    sqlite3_stmt *s = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return db_fail(err, c, "schema");
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version != 0 && version != IDX_SCHEMA_VERSION) {
        sto_set_err(err, STO_ERR_DB, "index schema version %d, expected %d", version,
                IDX_SCHEMA_VERSION);
        return false;
    }
    char sql[sizeof SCHEMA + 128];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sPRAGMA user_version=%d;COMMIT;", SCHEMA,
             IDX_SCHEMA_VERSION);
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(err, c, "schema");
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    return true;
}

IdxDb *idx_open(StoError *err, const char *dir)
{
    char path[4096];
    IdxDb *db = NULL;
    if (!dir || !*dir) {
        sto_set_err(err, STO_ERR_ARG, "empty index directory");
        return NULL;
    }
    if (snprintf(path, sizeof path, "%s/index.sqlite", dir) >= (int)sizeof path) {
        sto_set_err(err, STO_ERR_ARG, "index directory path too long");
        return NULL;
    }
    db = calloc(1, sizeof *db);
    if (!db) {
        nomem(err);
        return NULL;
    }
    pthread_mutex_init(&db->wlock, NULL);
    pthread_mutex_init(&db->rlock, NULL);
    pthread_cond_init(&db->rcond, NULL);
    if (!conn_open(err, &db->writer, path, true))
        goto fail;
    if (!create_schema(err, &db->writer))
        goto fail;
    for (int i = 0; i < IDX_READERS; i++) {
        if (!conn_open(err, &db->readers[i], path, false))
            goto fail;
        db->free_readers[db->nfree++] = i;
    }
    return db;
fail:
    idx_close(db);
    return NULL;
}

void idx_close(IdxDb *db)
{
    if (!db)
        return;
    for (int i = 0; i < IDX_READERS; i++)
        conn_close(&db->readers[i]);
    conn_close(&db->writer); /* last: closing the last connection checkpoints the WAL */
    pthread_cond_destroy(&db->rcond);
    pthread_mutex_destroy(&db->rlock);
    pthread_mutex_destroy(&db->wlock);
    free(db);
}

/* Write transactions: lock, BEGIN IMMEDIATE ... COMMIT (or ROLLBACK), unlock. */
static Conn *write_begin(StoError *err, IdxDb *db)
{
    pthread_mutex_lock(&db->wlock);
    if (!exec_st(err, &db->writer, S_BEGIN_IMMEDIATE)) {
        pthread_mutex_unlock(&db->wlock);
        return NULL;
    }
    return &db->writer;
}

/* Commits when ok (a failed commit turns ok to false), rolls back otherwise; unlocks. */
static bool write_end(StoError *err, IdxDb *db, bool ok)
{
    Conn *c = &db->writer;
    if (ok)
        ok = exec_st(err, c, S_COMMIT);
    if (!ok && !sqlite3_get_autocommit(c->db))
        exec_st(NULL, c, S_ROLLBACK);
    pthread_mutex_unlock(&db->wlock);
    return ok;
}

/* Read transactions: borrow a reader, BEGIN (deferred) ... COMMIT, give it back. */
static Conn *read_begin(StoError *err, IdxDb *db)
{
    pthread_mutex_lock(&db->rlock);
    while (db->nfree == 0)
        pthread_cond_wait(&db->rcond, &db->rlock);
    Conn *c = &db->readers[db->free_readers[--db->nfree]];
    pthread_mutex_unlock(&db->rlock);
    if (!exec_st(err, c, S_BEGIN)) {
        pthread_mutex_lock(&db->rlock);
        db->free_readers[db->nfree++] = (int)(c - db->readers);
        pthread_cond_signal(&db->rcond);
        pthread_mutex_unlock(&db->rlock);
        return NULL;
    }
    return c;
}

static bool read_end(StoError *err, IdxDb *db, Conn *c, bool ok)
{
    /* A read-only transaction: COMMIT just ends the snapshot. */
    if (!exec_st(ok ? err : NULL, c, S_COMMIT)) {
        ok = false;
        if (!sqlite3_get_autocommit(c->db))
            exec_st(NULL, c, S_ROLLBACK);
    }
    pthread_mutex_lock(&db->rlock);
    db->free_readers[db->nfree++] = (int)(c - db->readers);
    pthread_cond_signal(&db->rcond);
    pthread_mutex_unlock(&db->rlock);
    return ok;
}

/* ---- small shared helpers ---------------------------------------------------------------- */

static bool check_level(StoError *err, int level, bool any_ok)
{
    if ((level >= IDX_PATIENT && level <= IDX_INSTANCE) || (any_ok && level == -1))
        return true;
    sto_set_err(err, STO_ERR_ARG, "bad resource level %d", level);
    return false;
}

static const char *const LEVEL_NAMES[IDX_LEVELS] = {"patient", "study", "series", "instance"};

/* Looks up a public ID. Returns 1 found, 0 absent, -1 error. parent: -1 if none. */
static int lookup(StoError *err, Conn *c, const char *id, int64_t *internal, int *level,
                  int64_t *parent)
{
    sqlite3_stmt *s = stmt(err, c, S_LOOKUP);
    if (!s)
        return -1;
    bind_text(s, 1, id);
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
    db_fail(err, c, "lookup");
    sqlite3_reset(s);
    return -1;
}

/* Like lookup(), but absence or a level mismatch (level != -1) fills NOT_FOUND. */
static bool find(StoError *err, Conn *c, int level, const char *id, int64_t *internal,
                 int *found_level, int64_t *parent)
{
    int lv = -1;
    int r = lookup(err, c, id, internal, &lv, parent);
    if (r < 0)
        return false;
    if (r == 0 || (level != -1 && lv != level)) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", level >= 0 ? LEVEL_NAMES[level] :
                "resource", id);
        return false;
    }
    if (found_level)
        *found_level = lv;
    return true;
}

static bool insert_change(StoError *err, Conn *c, const char *type, int level, const char *id,
                          const char *date, int64_t *seq)
{
    sqlite3_stmt *s = stmt(err, c, S_INSERT_CHANGE);
    if (!s)
        return false;
    bind_text(s, 1, type);
    sqlite3_bind_int(s, 2, level);
    bind_text(s, 3, id);
    bind_text(s, 4, date);
    if (!run(err, c, s, "log change"))
        return false;
    if (seq)
        *seq = sqlite3_last_insert_rowid(c->db);
    return true;
}

static bool set_meta(StoError *err, Conn *c, int64_t internal, const char *name,
                     const char *value)
{
    sqlite3_stmt *s = stmt(err, c, S_SET_META);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    bind_text(s, 2, name);
    bind_text(s, 3, value ? value : "");
    return run(err, c, s, "set metadata");
}

static bool insert_tags(StoError *err, Conn *c, int64_t internal, const IdxTag *tags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = stmt(err, c, S_INSERT_TAG);
        if (!s)
            return false;
        sqlite3_bind_int64(s, 1, internal);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)tags[i].tag);
        bind_text(s, 3, tags[i].value ? tags[i].value : "");
        if (!run(err, c, s, "insert tag"))
            return false;
    }
    return true;
}

static bool insert_metas(StoError *err, Conn *c, int64_t internal, const IdxMeta *meta,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!meta[i].name) {
            sto_set_err(err, STO_ERR_ARG, "metadata without a name");
            return false;
        }
        if (!set_meta(err, c, internal, meta[i].name, meta[i].value))
            return false;
    }
    return true;
}

static bool totals_add(StoError *err, Conn *c, const int64_t d[IDX_LEVELS], int64_t size)
{
    sqlite3_stmt *s = stmt(err, c, S_TOTALS_ADD);
    if (!s)
        return false;
    for (int i = 0; i < IDX_LEVELS; i++)
        sqlite3_bind_int64(s, i + 1, d[i]);
    sqlite3_bind_int64(s, 5, size);
    return run(err, c, s, "update totals");
}

static bool pending_op(StoError *err, Conn *c, int which, const char *uuid)
{
    sqlite3_stmt *s = stmt(err, c, which);
    if (!s)
        return false;
    bind_text(s, 1, uuid);
    return run(err, c, s, "pending");
}

/* ---- pending ---------------------------------------------------------------------------- */

bool idx_pending_add(StoError *err, IdxDb *db, const char *uuid)
{
    if (!sto_uuid_valid(uuid)) {
        sto_set_err(err, STO_ERR_ARG, "malformed uuid");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    return write_end(err, db, pending_op(err, c, S_PENDING_ADD, uuid));
}

bool idx_pending_clear(StoError *err, IdxDb *db, const char *const *uuids, size_t n)
{
    if (n == 0)
        return true;
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = pending_op(err, c, S_PENDING_DEL, uuids[i]);
    return write_end(err, db, ok);
}

bool idx_pending_list(StoError *err, IdxDb *db, IdxPending **uuids, size_t *n)
{
    IdxPending *arr = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    *uuids = NULL;
    *n = 0;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = stmt(err, c, S_PENDING_LIST);
    if (!s)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            IdxPending *p = realloc(arr, ncap * sizeof *p);
            if (!p) {
                nomem(err);
                goto out;
            }
            arr = p;
            cap = ncap;
        }
        copy_col(arr[len].uuid, sizeof arr[len].uuid, s, 0);
        arr[len].referenced = sqlite3_column_int(s, 1) != 0;
        len++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(err, c, "pending list");
        goto out;
    }
    *uuids = arr;
    *n = len;
    arr = NULL;
    ok = true;
out:
    if (s)
        sqlite3_reset(s);
    free(arr);
    return read_end(err, db, c, ok);
}

/* ---- store ------------------------------------------------------------------------------ */

static bool check_new_instance(StoError *err, const IdxNewInstance *in)
{
    for (int l = 0; l < IDX_LEVELS; l++) {
        if (!in->ids[l] || !*in->ids[l] || strlen(in->ids[l]) >= IDX_ID_LEN) {
            sto_set_err(err, STO_ERR_ARG, "bad %s ID", LEVEL_NAMES[l]);
            return false;
        }
        if ((in->ntags[l] && !in->tags[l]) || (in->nmeta[l] && !in->meta[l])) {
            sto_set_err(err, STO_ERR_ARG, "NULL tags or metadata with a count");
            return false;
        }
    }
    if (!sto_uuid_valid(in->uuid)) {
        sto_set_err(err, STO_ERR_ARG, "malformed uuid");
        return false;
    }
    return true;
}

/* Replaces the attachment, tags and metadata of an existing instance. */
static bool overwrite_instance(StoError *err, Conn *c, const IdxNewInstance *in,
                               int64_t internal, IdxStoreResult *out, int64_t *size_delta)
{
    sqlite3_stmt *s = stmt(err, c, S_GET_ATTACHMENT);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        copy_col(out->old_uuid, sizeof out->old_uuid, s, 0);
        *size_delta -= sqlite3_column_int64(s, 1);
    } else if (rc != SQLITE_DONE) {
        db_fail(err, c, "get attachment");
        sqlite3_reset(s);
        return false;
    }
    sqlite3_reset(s);
    if (strcmp(out->old_uuid, in->uuid) == 0)
        out->old_uuid[0] = '\0'; /* same file re-indexed: nothing to remove */
    if (out->old_uuid[0] && !pending_op(err, c, S_PENDING_ADD, out->old_uuid))
        return false;

    if (!(s = stmt(err, c, S_DELETE_TAGS)))
        return false;
    sqlite3_bind_int64(s, 1, internal);
    if (!run(err, c, s, "delete tags"))
        return false;
    if (!(s = stmt(err, c, S_DELETE_ALL_META)))
        return false;
    sqlite3_bind_int64(s, 1, internal);
    return run(err, c, s, "delete metadata");
}

bool idx_store_instance(StoError *err, IdxDb *db, const IdxNewInstance *in, IdxStoreResult *out)
{
    int64_t ids[IDX_LEVELS] = {-1, -1, -1, -1};
    int64_t delta[IDX_LEVELS] = {0, 0, 0, 0};
    int64_t size_delta = (int64_t)in->size;
    char now[16];
    bool ok = false;
    int lv;

    memset(out, 0, sizeof *out);
    if (!check_new_instance(err, in))
        return false;
    now_string(now);

    Conn *c = write_begin(err, db);
    if (!c)
        return false;

    int r = lookup(err, c, in->ids[IDX_INSTANCE], &ids[IDX_INSTANCE], &lv, NULL);
    if (r < 0)
        goto out;
    if (r == 1 && lv != IDX_INSTANCE) {
        sto_set_err(err, STO_ERR_ARG, "ID %s belongs to a %s", in->ids[IDX_INSTANCE],
                LEVEL_NAMES[lv]);
        goto out;
    }
    if (r == 1 && !in->overwrite) {
        out->already_stored = true;
        ok = true; /* nothing changed; the new uuid stays pending for the caller to clear */
        goto out;
    }

    if (r == 1) {
        if (!overwrite_instance(err, c, in, ids[IDX_INSTANCE], out, &size_delta))
            goto out;
        /* Ancestors exist (an instance never outlives its series): fetch their ids. */
        for (int l = IDX_SERIES; l >= IDX_PATIENT; l--) {
            if ((r = lookup(err, c, in->ids[l], &ids[l], &lv, NULL)) != 1) {
                if (r == 0)
                    sto_set_err(err, STO_ERR_DB, "instance %s has no %s", in->ids[IDX_INSTANCE],
                            LEVEL_NAMES[l]);
                goto out;
            }
        }
    } else {
        /* Find the deepest existing ancestor: usually the series, one lookup. */
        int first_missing = IDX_PATIENT;
        for (int l = IDX_SERIES; l >= IDX_PATIENT; l--) {
            r = lookup(err, c, in->ids[l], &ids[l], &lv, NULL);
            if (r < 0)
                goto out;
            if (r == 1) {
                if (lv != l) {
                    sto_set_err(err, STO_ERR_ARG, "ID %s belongs to a %s", in->ids[l],
                            LEVEL_NAMES[lv]);
                    goto out;
                }
                first_missing = l + 1;
                break;
            }
        }
        for (int l = IDX_PATIENT; l < IDX_INSTANCE; l++) {
            if (l < first_missing) {
                if (ids[l] < 0 && (r = lookup(err, c, in->ids[l], &ids[l], &lv, NULL)) != 1) {
                    if (r == 0)
                        sto_set_err(err, STO_ERR_DB, "missing %s %s", LEVEL_NAMES[l], in->ids[l]);
                    goto out;
                }
                continue;
            }
            sqlite3_stmt *s = stmt(err, c, S_INSERT_RESOURCE);
            if (!s)
                goto out;
            sqlite3_bind_int(s, 1, l);
            bind_text(s, 2, in->ids[l]);
            if (l == IDX_PATIENT)
                sqlite3_bind_null(s, 3);
            else
                sqlite3_bind_int64(s, 3, ids[l - 1]);
            if (!run(err, c, s, "insert resource"))
                goto out;
            ids[l] = sqlite3_last_insert_rowid(c->db);
            out->created[l] = true;
            delta[l] = 1;
            if (!insert_tags(err, c, ids[l], in->tags[l], in->ntags[l]))
                goto out;
        }
        sqlite3_stmt *s = stmt(err, c, S_INSERT_RESOURCE);
        if (!s)
            goto out;
        sqlite3_bind_int(s, 1, IDX_INSTANCE);
        bind_text(s, 2, in->ids[IDX_INSTANCE]);
        sqlite3_bind_int64(s, 3, ids[IDX_SERIES]);
        if (!run(err, c, s, "insert instance"))
            goto out;
        ids[IDX_INSTANCE] = sqlite3_last_insert_rowid(c->db);
        out->created[IDX_INSTANCE] = true;
        delta[IDX_INSTANCE] = 1;
    }

    /* Instance tags, attachment; then metadata of every level, like Orthanc: LastUpdate on
     * patient, study and series, then the provided metadata of each level (so a provided
     * value wins), on existing levels as well as created ones. */
    if (!insert_tags(err, c, ids[IDX_INSTANCE], in->tags[IDX_INSTANCE], in->ntags[IDX_INSTANCE]))
        goto out;
    sqlite3_stmt *s = stmt(err, c, S_INSERT_ATTACHMENT);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, ids[IDX_INSTANCE]);
    bind_text(s, 2, in->uuid);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)in->size);
    bind_text(s, 4, in->md5);
    if (!run(err, c, s, "insert attachment"))
        goto out;
    for (int l = IDX_PATIENT; l <= IDX_INSTANCE; l++) {
        if (l != IDX_INSTANCE && !set_meta(err, c, ids[l], "LastUpdate", now))
            goto out;
        if (!insert_metas(err, c, ids[l], in->meta[l], in->nmeta[l]))
            goto out;
    }

    /* Changes: NewInstance, then the created levels bottom-up. */
    if (!insert_change(err, c, "NewInstance", IDX_INSTANCE, in->ids[IDX_INSTANCE], now,
                       &out->change_seq))
        goto out;
    static const char *const NEW[IDX_LEVELS] = {"NewPatient", "NewStudy", "NewSeries", NULL};
    for (int l = IDX_SERIES; l >= IDX_PATIENT; l--) {
        if (out->created[l] && !insert_change(err, c, NEW[l], l, in->ids[l], now, NULL))
            goto out;
    }

    if (!totals_add(err, c, delta, size_delta))
        goto out;
    if (!pending_op(err, c, S_PENDING_DEL, in->uuid))
        goto out;
    ok = true;
out:
    ok = write_end(err, db, ok);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok;
}

/* ---- resource read-back ------------------------------------------------------------------ */

void idx_resource_cleanup(IdxResource *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntags; i++)
        free(r->tag_values ? r->tag_values[i] : NULL);
    for (size_t i = 0; i < r->nchildren; i++)
        free(r->children ? r->children[i] : NULL);
    for (size_t i = 0; i < r->nmeta; i++) {
        free(r->meta_names ? r->meta_names[i] : NULL);
        free(r->meta_values ? r->meta_values[i] : NULL);
    }
    free(r->tag_keys);
    free(r->tag_values);
    free(r->children);
    free(r->meta_names);
    free(r->meta_values);
    memset(r, 0, sizeof *r);
}

/* Grows an array of `elem`-sized items so that index n fits. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static bool read_tags(StoError *err, Conn *c, IdxResource *r)
{
    size_t cap_k = 0, cap_v = 0;
    sqlite3_stmt *s = stmt(err, c, S_GET_TAGS);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!grow((void **)&r->tag_keys, &cap_k, r->ntags, sizeof *r->tag_keys) ||
            !grow((void **)&r->tag_values, &cap_v, r->ntags, sizeof *r->tag_values))
            goto nomem;
        char *v = dup_col(s, 1);
        if (!v)
            goto nomem;
        r->tag_keys[r->ntags] = (uint32_t)sqlite3_column_int64(s, 0);
        r->tag_values[r->ntags++] = v;
    }
    if (rc != SQLITE_DONE) {
        db_fail(err, c, "read tags");
        sqlite3_reset(s);
        return false;
    }
    sqlite3_reset(s);
    return true;
nomem:
    sqlite3_reset(s);
    return nomem(err);
}

/* Steps s to its end, collecting column 0 of every row as a malloc'd string; on success
 * *ids / *n are the caller's (idx_strings_free), on failure nothing is left allocated. */
static bool step_strings(StoError *err, Conn *c, sqlite3_stmt *s, const char *what, char ***ids,
                         size_t *n)
{
    char **arr = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!grow((void **)&arr, &cap, len, sizeof *arr) || !(arr[len] = dup_col(s, 0))) {
            nomem(err);
            idx_strings_free(arr, len);
            return false;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(err, c, what);
        idx_strings_free(arr, len);
        return false;
    }
    *ids = arr;
    *n = len;
    return true;
}

static bool read_children(StoError *err, Conn *c, IdxResource *r)
{
    sqlite3_stmt *s = stmt(err, c, S_GET_CHILDREN);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    bool ok = step_strings(err, c, s, "read children", &r->children, &r->nchildren);
    sqlite3_reset(s);
    return ok;
}

static bool read_meta(StoError *err, Conn *c, IdxResource *r)
{
    size_t cap_n = 0, cap_v = 0;
    sqlite3_stmt *s = stmt(err, c, S_GET_META);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!grow((void **)&r->meta_names, &cap_n, r->nmeta, sizeof *r->meta_names) ||
            !grow((void **)&r->meta_values, &cap_v, r->nmeta, sizeof *r->meta_values))
            goto nomem;
        char *name = dup_col(s, 0);
        char *value = dup_col(s, 1);
        if (!name || !value) {
            free(name);
            free(value);
            goto nomem;
        }
        r->meta_names[r->nmeta] = name;
        r->meta_values[r->nmeta++] = value;
    }
    if (rc != SQLITE_DONE) {
        db_fail(err, c, "read metadata");
        sqlite3_reset(s);
        return false;
    }
    sqlite3_reset(s);
    return true;
nomem:
    sqlite3_reset(s);
    return nomem(err);
}

bool idx_resource_get(StoError *err, IdxDb *db, int level, const char *id, IdxResource *out)
{
    bool ok = false;
    memset(out, 0, sizeof *out);
    if (!check_level(err, level, true))
        return false;
    if (!id) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID");
        return false;
    }
    Conn *c = read_begin(err, db);
    if (!c)
        return false;

    sqlite3_stmt *s = stmt(err, c, S_LOOKUP_FULL);
    if (!s)
        goto out;
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->internal_id = sqlite3_column_int64(s, 0);
        out->level = sqlite3_column_int(s, 1);
        copy_col(out->parent_id, sizeof out->parent_id, s, 2);
        snprintf(out->id, sizeof out->id, "%s", id);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            sto_set_err(err, STO_ERR_NOT_FOUND, "unknown resource %s", id);
        else
            db_fail(err, c, "lookup");
        goto out;
    }
    if (level != -1 && out->level != level) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", LEVEL_NAMES[level], id);
        goto out;
    }
    if (!read_tags(err, c, out) || !read_meta(err, c, out))
        goto out;
    if (out->level != IDX_INSTANCE) {
        if (!read_children(err, c, out))
            goto out;
    } else {
        if (!(s = stmt(err, c, S_GET_ATTACHMENT)))
            goto out;
        sqlite3_bind_int64(s, 1, out->internal_id);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            copy_col(out->uuid, sizeof out->uuid, s, 0);
            out->file_size = (uint64_t)sqlite3_column_int64(s, 1);
            copy_col(out->md5, sizeof out->md5, s, 2);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            db_fail(err, c, "get attachment");
            goto out;
        }
    }
    ok = true;
out:
    ok = read_end(err, db, c, ok);
    if (!ok)
        idx_resource_cleanup(out);
    return ok;
}

const char *idx_resource_metadata(const IdxResource *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nmeta; i++) {
        if (strcmp(r->meta_names[i], name) == 0)
            return r->meta_values[i];
    }
    return NULL;
}

/* ---- lists ------------------------------------------------------------------------------ */

void idx_strings_free(char **strings, size_t n)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

bool idx_list(StoError *err, IdxDb *db, int level, uint64_t since, uint64_t limit, char ***ids,
              size_t *n)
{
    bool ok = false;
    *ids = NULL;
    *n = 0;
    if (!check_level(err, level, false))
        return false;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = stmt(err, c, S_LIST);
    if (!s)
        goto out;
    sqlite3_bind_int(s, 1, level);
    sqlite3_bind_int64(s, 2, limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 3, since > INT64_MAX ? INT64_MAX : (sqlite3_int64)since);
    ok = step_strings(err, c, s, "list", ids, n);
out:
    if (s)
        sqlite3_reset(s);
    return read_end(err, db, c, ok);
}

/* Collects the instances under internal/level on c (reader or writer). */
static bool collect_instances(StoError *err, Conn *c, int64_t internal, int level,
                              IdxFile **files, size_t *n)
{
    IdxFile *arr = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s = stmt(err, c, S_INSTANCES_OF);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, level);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!grow((void **)&arr, &cap, len, sizeof *arr)) {
            sqlite3_reset(s);
            free(arr);
            return nomem(err);
        }
        copy_col(arr[len].id, sizeof arr[len].id, s, 0);
        copy_col(arr[len].uuid, sizeof arr[len].uuid, s, 1);
        arr[len].size = (uint64_t)sqlite3_column_int64(s, 2);
        len++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(arr);
        return db_fail(err, c, "instances");
    }
    *files = arr;
    *n = len;
    return true;
}

bool idx_instances_of(StoError *err, IdxDb *db, int level, const char *id, IdxFile **files,
                      size_t *n)
{
    int64_t internal;
    int lv;
    *files = NULL;
    *n = 0;
    if (!check_level(err, level, true))
        return false;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    bool ok = find(err, c, level, id, &internal, &lv, NULL) &&
              collect_instances(err, c, internal, lv, files, n);
    ok = read_end(err, db, c, ok);
    if (!ok) {
        free(*files);
        *files = NULL;
        *n = 0;
    }
    return ok;
}

/* Counts per level (including the resource itself) and total file size under internal. */
static bool subtree_counts(StoError *err, Conn *c, int64_t internal, int level,
                           int64_t counts[IDX_LEVELS], int64_t *size)
{
    sqlite3_stmt *s = stmt(err, c, S_COUNTS);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, level);
    if (sqlite3_step(s) != SQLITE_ROW) {
        db_fail(err, c, "counts");
        sqlite3_reset(s);
        return false;
    }
    for (int i = 0; i < IDX_LEVELS; i++)
        counts[i] = sqlite3_column_int64(s, i);
    *size = sqlite3_column_int64(s, 4);
    sqlite3_reset(s);
    return true;
}

bool idx_resource_counts(StoError *err, IdxDb *db, int level, const char *id, IdxCounts *out)
{
    int64_t internal, counts[IDX_LEVELS], size = 0;
    int lv;
    memset(out, 0, sizeof *out);
    if (!check_level(err, level, true))
        return false;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    bool ok = find(err, c, level, id, &internal, &lv, NULL) &&
              subtree_counts(err, c, internal, lv, counts, &size);
    if (ok) {
        out->studies = (uint64_t)counts[IDX_STUDY];
        out->series = (uint64_t)counts[IDX_SERIES];
        out->instances = (uint64_t)counts[IDX_INSTANCE];
        out->disk_size = (uint64_t)size;
    }
    return read_end(err, db, c, ok);
}

/* ---- delete ----------------------------------------------------------------------------- */

bool idx_delete(StoError *err, IdxDb *db, int level, const char *id, IdxDeleteResult *out)
{
    int64_t internal, parent, counts[IDX_LEVELS], size = 0;
    int lv;
    char now[16];
    bool ok = false;

    memset(out, 0, sizeof *out);
    out->remaining_level = -1;
    if (!check_level(err, level, true))
        return false;
    now_string(now);
    Conn *c = write_begin(err, db);
    if (!c)
        return false;

    if (!find(err, c, level, id, &internal, &lv, &parent))
        goto out;
    if (!collect_instances(err, c, internal, lv, &out->files, &out->nfiles))
        goto out;
    if (!subtree_counts(err, c, internal, lv, counts, &size))
        goto out;
    if (!insert_change(err, c, "Deleted", lv, id, now, NULL))
        goto out;

    /* Climb while the parent has no other child: it goes too. */
    int64_t top = internal;
    while (parent >= 0) {
        sqlite3_stmt *s = stmt(err, c, S_COUNT_CHILDREN);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 1, parent);
        if (sqlite3_step(s) != SQLITE_ROW) {
            db_fail(err, c, "count children");
            sqlite3_reset(s);
            goto out;
        }
        int64_t nchildren = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);

        if (!(s = stmt(err, c, S_GET_RESOURCE_BY_INTERNAL)))
            goto out;
        sqlite3_bind_int64(s, 1, parent);
        if (sqlite3_step(s) != SQLITE_ROW) {
            if (err)
                db_fail(err, c, "parent");
            sqlite3_reset(s);
            goto out;
        }
        int plevel = sqlite3_column_int(s, 0);
        char pid[IDX_ID_LEN];
        copy_col(pid, sizeof pid, s, 1);
        int64_t grandparent = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1
                                                                      : sqlite3_column_int64(s, 2);
        sqlite3_reset(s);

        if (nchildren > 1) {
            out->remaining_level = plevel;
            snprintf(out->remaining_id, sizeof out->remaining_id, "%s", pid);
            break;
        }
        if (plevel >= 0 && plevel < IDX_LEVELS)
            counts[plevel]++;
        if (!insert_change(err, c, "Deleted", plevel, pid, now, NULL))
            goto out;
        top = parent;
        parent = grandparent;
    }

    /* One DELETE: foreign keys cascade to descendants, tags, metadata and attachments. */
    sqlite3_stmt *s = stmt(err, c, S_DELETE_RESOURCE);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, top);
    if (!run(err, c, s, "delete"))
        goto out;
    for (size_t i = 0; i < out->nfiles; i++) {
        if (!pending_op(err, c, S_PENDING_ADD, out->files[i].uuid))
            goto out;
    }
    for (int i = 0; i < IDX_LEVELS; i++)
        counts[i] = -counts[i];
    if (!totals_add(err, c, counts, -size))
        goto out;
    ok = true;
out:
    ok = write_end(err, db, ok);
    if (!ok) {
        free(out->files);
        memset(out, 0, sizeof *out);
        out->remaining_level = -1;
    }
    return ok;
}

/* ---- totals ----------------------------------------------------------------------------- */

bool idx_totals(StoError *err, IdxDb *db, IdxTotals *out)
{
    memset(out, 0, sizeof *out);
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = stmt(err, c, S_TOTALS_GET);
    if (s) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            for (int i = 0; i < IDX_LEVELS; i++)
                out->count[i] = (uint64_t)sqlite3_column_int64(s, i);
            out->disk_size = (uint64_t)sqlite3_column_int64(s, 4);
            out->uncompressed_size = (uint64_t)sqlite3_column_int64(s, 5);
            ok = true;
        } else {
            db_fail(err, c, "totals");
        }
        sqlite3_reset(s);
    }
    return read_end(err, db, c, ok);
}

/* ---- changes ---------------------------------------------------------------------------- */

bool idx_change_add(StoError *err, IdxDb *db, const char *type, int level, const char *id)
{
    char now[16];
    if (!type || strlen(type) >= sizeof ((IdxChange *)0)->type || !id ||
        strlen(id) >= IDX_ID_LEN) {
        sto_set_err(err, STO_ERR_ARG, "bad change type or ID");
        return false;
    }
    if (!check_level(err, level, false))
        return false;
    now_string(now);
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    return write_end(err, db, insert_change(err, c, type, level, id, now, NULL));
}

static void read_change(sqlite3_stmt *s, IdxChange *ch)
{
    ch->seq = sqlite3_column_int64(s, 0);
    copy_col(ch->type, sizeof ch->type, s, 1);
    ch->level = sqlite3_column_int(s, 2);
    copy_col(ch->id, sizeof ch->id, s, 3);
    copy_col(ch->date, sizeof ch->date, s, 4);
}

/* The last seq ever handed out (survives a clear), 0 if none. */
static bool last_seq(StoError *err, Conn *c, int64_t *last)
{
    sqlite3_stmt *s = stmt(err, c, S_CHANGES_SEQ);
    if (!s)
        return false;
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    if (ok)
        *last = sqlite3_column_int64(s, 0);
    else
        db_fail(err, c, "last seq");
    sqlite3_reset(s);
    return ok;
}

bool idx_changes(StoError *err, IdxDb *db, int64_t since, uint64_t limit, IdxChange **out,
                 size_t *n, bool *done, int64_t *last)
{
    IdxChange *arr = NULL;
    size_t len = 0, cap = 0;
    bool ok = false, more = false;
    *out = NULL;
    *n = 0;
    *done = true;
    *last = 0;
    if (limit == 0)
        limit = 100;
    if (limit > 1000000)
        limit = 1000000;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = stmt(err, c, S_CHANGES);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit + 1); /* one more tells "not done" */
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == limit) {
            more = true;
            break;
        }
        if (!grow((void **)&arr, &cap, len, sizeof *arr)) {
            nomem(err);
            goto out;
        }
        read_change(s, &arr[len++]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(err, c, "changes");
        goto out;
    }
    sqlite3_reset(s);
    if (len > 0)
        *last = arr[len - 1].seq;
    else if (!last_seq(err, c, last))
        goto out;
    *done = !more;
    *out = arr;
    *n = len;
    arr = NULL;
    ok = true;
out:
    if (s)
        sqlite3_reset(s);
    free(arr);
    return read_end(err, db, c, ok);
}

bool idx_changes_last(StoError *err, IdxDb *db, IdxChange **out, size_t *n, int64_t *last)
{
    IdxChange *ch = NULL;
    bool ok = false;
    *out = NULL;
    *n = 0;
    *last = 0;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = stmt(err, c, S_CHANGES_LAST);
    if (!s)
        goto out;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (!(ch = calloc(1, sizeof *ch))) {
            nomem(err);
            goto out;
        }
        read_change(s, ch);
        *last = ch->seq;
    } else if (rc != SQLITE_DONE) {
        db_fail(err, c, "last change");
        goto out;
    }
    sqlite3_reset(s);
    if (!ch && !last_seq(err, c, last))
        goto out;
    *out = ch;
    *n = ch ? 1 : 0;
    ch = NULL;
    ok = true;
out:
    if (s)
        sqlite3_reset(s);
    free(ch);
    return read_end(err, db, c, ok);
}

bool idx_changes_clear(StoError *err, IdxDb *db)
{
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    return write_end(err, db, exec_st(err, c, S_CHANGES_CLEAR));
}

/* ---- metadata --------------------------------------------------------------------------- */

bool idx_metadata_set(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value)
{
    int64_t internal;
    if (!check_level(err, level, true))
        return false;
    if (!id || !name || !value) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID, name or value");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    bool ok = find(err, c, level, id, &internal, NULL, NULL) &&
              set_meta(err, c, internal, name, value);
    return write_end(err, db, ok);
}

bool idx_metadata_delete(StoError *err, IdxDb *db, int level, const char *id, const char *name)
{
    int64_t internal;
    bool ok = false;
    if (!check_level(err, level, true))
        return false;
    if (!id || !name) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID or name");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    if (!find(err, c, level, id, &internal, NULL, NULL))
        goto out;
    sqlite3_stmt *s = stmt(err, c, S_DELETE_META);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    bind_text(s, 2, name);
    if (!run(err, c, s, "delete metadata"))
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", name, id);
        goto out;
    }
    ok = true;
out:
    return write_end(err, db, ok);
}

/* ---- jobs ------------------------------------------------------------------------------- */

bool idx_job_save(StoError *err, IdxDb *db, const char *job_id, const char *json)
{
    if (!job_id || !json) {
        sto_set_err(err, STO_ERR_ARG, "NULL job ID or content");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = stmt(err, c, S_JOB_SAVE);
    if (s) {
        bind_text(s, 1, job_id);
        bind_text(s, 2, json);
        ok = run(err, c, s, "save job");
    }
    return write_end(err, db, ok);
}

bool idx_job_delete(StoError *err, IdxDb *db, const char *job_id)
{
    if (!job_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL job ID");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    return write_end(err, db, pending_op(err, c, S_JOB_DELETE, job_id));
}

bool idx_jobs_load(StoError *err, IdxDb *db,
                   void (*fn)(void *ctx, const char *id, const char *json), void *ctx)
{
    /* Rows are copied out first so that fn runs without a connection held (it may well
     * call back into the index). */
    char **rows = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = stmt(err, c, S_JOBS_LOAD);
    if (!s)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!grow((void **)&rows, &cap, len + 1, sizeof *rows)) {
            nomem(err);
            goto out;
        }
        rows[len] = dup_col(s, 0);
        rows[len + 1] = dup_col(s, 1);
        len += 2;
        if (!rows[len - 2] || !rows[len - 1]) {
            nomem(err);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(err, c, "load jobs");
        goto out;
    }
    ok = true;
out:
    if (s)
        sqlite3_reset(s);
    ok = read_end(err, db, c, ok);
    if (ok && fn) {
        for (size_t i = 0; i + 1 < len; i += 2)
            fn(ctx, rows[i], rows[i + 1]);
    }
    idx_strings_free(rows, len);
    return ok;
}

/* ---- metadata revisions, attachment MD5, find ------------------------------------------
 * These run rarely (REST calls, not ingest): their statements are prepared per call. */

static sqlite3_stmt *adhoc(StoError *err, Conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_fail(err, c, "prepare");
        return NULL;
    }
    return s;
}

/* Current value (malloc'd, may be NULL) and revision of a metadata item: 1 found, 0 absent,
 * -1 error. */
static int meta_lookup(StoError *err, Conn *c, int64_t internal, const char *name, char **value,
                       int64_t *revision)
{
    sqlite3_stmt *s = adhoc(err, c, "SELECT m.value, IFNULL(r.revision, 0) FROM metadata m"
                                    " LEFT JOIN metadata_rev r ON r.internal_id = m.internal_id"
                                    " AND r.name = m.name"
                                    " WHERE m.internal_id = ?1 AND m.name = ?2");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, internal);
    bind_text(s, 2, name);
    int rc = sqlite3_step(s), found = -1;
    if (rc == SQLITE_ROW) {
        if (revision)
            *revision = sqlite3_column_int64(s, 1);
        found = 1;
        if (value && !(*value = dup_col(s, 0))) {
            nomem(err);
            found = -1;
        }
    } else if (rc == SQLITE_DONE) {
        found = 0;
    } else {
        db_fail(err, c, "metadata");
    }
    sqlite3_finalize(s);
    return found;
}

bool idx_metadata_get(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      char **value, int64_t *revision)
{
    int64_t internal;
    *value = NULL;
    if (!check_level(err, level, true))
        return false;
    if (!id || !name) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID or name");
        return false;
    }
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    bool ok = false;
    if (find(err, c, level, id, &internal, NULL, NULL)) {
        int r = meta_lookup(err, c, internal, name, value, revision);
        if (r == 0)
            sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", name, id);
        ok = r == 1;
    }
    return read_end(err, db, c, ok);
}

bool idx_metadata_put(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, int64_t *revision)
{
    int64_t internal, rev = 0;
    if (!check_level(err, level, true))
        return false;
    if (!id || !name || !value) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID, name or value");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    bool ok = false;
    if (!find(err, c, level, id, &internal, NULL, NULL))
        goto out;
    int r = meta_lookup(err, c, internal, name, NULL, &rev);
    if (r < 0)
        goto out;
    if (if_match >= 0 && (r == 0 || rev != if_match)) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of %s is %s, not %lld", name,
                r == 0 ? "none (absent)" : "another", (long long)if_match);
        goto out;
    }
    rev = r == 1 ? rev + 1 : 0;
    if (!set_meta(err, c, internal, name, value))
        goto out;
    sqlite3_stmt *s = adhoc(err, c, "INSERT OR REPLACE INTO metadata_rev(internal_id, name, revision)"
                                    " VALUES(?1, ?2, ?3)");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    bind_text(s, 2, name);
    sqlite3_bind_int64(s, 3, rev);
    ok = sqlite3_step(s) == SQLITE_DONE || db_fail(err, c, "metadata revision");
    sqlite3_finalize(s);
    if (ok && revision)
        *revision = rev;
out:
    return write_end(err, db, ok);
}

bool idx_metadata_remove(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                         int64_t if_match)
{
    int64_t internal, rev = 0;
    if (!check_level(err, level, true))
        return false;
    if (!id || !name) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID or name");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    bool ok = false;
    if (!find(err, c, level, id, &internal, NULL, NULL))
        goto out;
    int r = meta_lookup(err, c, internal, name, NULL, &rev);
    if (r < 0)
        goto out;
    if (r == 0) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", name, id);
        goto out;
    }
    if (if_match >= 0 && rev != if_match) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of %s is not %lld", name, (long long)if_match);
        goto out;
    }
    sqlite3_stmt *s = adhoc(err, c, "DELETE FROM metadata WHERE internal_id = ?1 AND name = ?2;");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    bind_text(s, 2, name);
    ok = sqlite3_step(s) == SQLITE_DONE || db_fail(err, c, "delete metadata");
    sqlite3_finalize(s);
    if (!ok)
        goto out;
    /* the revision row stays: a later PUT goes on counting, as Orthanc's revisions do */
out:
    return write_end(err, db, ok);
}

bool idx_attachment_set_md5(StoError *err, IdxDb *db, const char *uuid, const char *md5)
{
    if (!uuid || !md5 || strlen(md5) != 32) {
        sto_set_err(err, STO_ERR_ARG, "bad uuid or MD5");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = adhoc(err, c, "UPDATE attachments SET md5 = ?2 WHERE uuid = ?1");
    bool ok = false;
    if (s) {
        bind_text(s, 1, uuid);
        bind_text(s, 2, md5);
        ok = sqlite3_step(s) == SQLITE_DONE || db_fail(err, c, "set MD5");
        sqlite3_finalize(s);
    }
    return write_end(err, db, ok);
}

/* Appends to a growable SQL string; false when out of memory. */
typedef struct Sql {
    char *s;
    size_t len, cap;
} Sql;

static bool sql_add(Sql *q, const char *text)
{
    size_t n = strlen(text);
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *p = realloc(q->s, cap);
        if (!p)
            return false;
        q->s = p;
        q->cap = cap;
    }
    memcpy(q->s + q->len, text, n + 1);
    q->len += n;
    return true;
}

/* DICOM wildcards to GLOB: '*' and '?' stay, GLOB's own '[' is escaped as "[[]". */
static char *glob_of(const char *p, bool lower)
{
    size_t n = strlen(p);
    char *g = malloc(n * 3 + 1), *o = g;
    if (!g)
        return NULL;
    for (; *p; p++) {
        char ch = *p;
        if (lower && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch == '[') {
            memcpy(o, "[[]", 3);
            o += 3;
        } else {
            *o++ = ch;
        }
    }
    *o = '\0';
    return g;
}

bool idx_find(StoError *err, IdxDb *db, int level, const IdxFindConstraint *cons, size_t ncons,
              uint64_t since, uint64_t limit, char ***ids, size_t *n)
{
    Sql q = { 0 };
    char **binds = NULL;
    size_t nb = 0;
    bool ok = false;
    sqlite3_stmt *s = NULL;
    Conn *c = NULL;
    char buf[256];
    *ids = NULL;
    *n = 0;
    if (!check_level(err, level, false))
        return false;
    /* every constraint can bind at most (number of '\\'-separated values) * 2 strings */
    size_t maxb = 0;
    for (size_t i = 0; i < ncons; i++) {
        if (!cons[i].pattern || cons[i].level < 0 || cons[i].level > level) {
            sto_set_err(err, STO_ERR_ARG, "bad find constraint");
            return false;
        }
        maxb += 2;
        for (const char *p = cons[i].pattern; *p; p++)
            maxb += *p == '\\' ? 2 : 0;
    }
    binds = calloc(maxb + 1, sizeof *binds);
    if (!binds)
        return nomem(err);
    /* r0 is the resource searched, r1 its parent, ... */
    bool okq = sql_add(&q, "SELECT r0.public_id FROM resources r0");
    for (int d = 1; d <= level; d++) {
        snprintf(buf, sizeof buf, " JOIN resources r%d ON r%d.internal_id = r%d.parent_id", d, d,
                 d - 1);
        okq = okq && sql_add(&q, buf);
    }
    snprintf(buf, sizeof buf, " WHERE r0.level = %d", level);
    okq = okq && sql_add(&q, buf);
    for (size_t i = 0; i < ncons && okq; i++) {
        const IdxFindConstraint *k = &cons[i];
        int d = level - k->level;
        const char *col = k->case_insensitive ? "lower(t.value)" : "t.value";
        snprintf(buf, sizeof buf,
                 " AND EXISTS(SELECT 1 FROM main_tags t WHERE t.internal_id = r%d.internal_id"
                 " AND t.tag = %lld AND (", d, (long long)k->tag);
        okq = sql_add(&q, buf);
        /* values separated by '\\' are alternatives */
        const char *p = k->pattern;
        bool first = true;
        for (;;) {
            const char *end = strchr(p, '\\');
            size_t vl = end ? (size_t)(end - p) : strlen(p);
            char *v = strndup(p, vl);
            if (!v) {
                okq = false;
                break;
            }
            okq = okq && sql_add(&q, first ? "" : " OR ");
            first = false;
            char *dash = k->range ? strchr(v, '-') : NULL;
            if (dash) {
                *dash = '\0';
                char *lo = v, *hi = dash + 1;
                snprintf(buf, sizeof buf, "(1");
                okq = okq && sql_add(&q, buf);
                if (*lo) {
                    binds[nb++] = strdup(lo);
                    snprintf(buf, sizeof buf, " AND t.value >= ?%zu", nb);
                    okq = okq && sql_add(&q, buf);
                }
                if (*hi) {
                    /* "-20201231" includes the whole last day for DT values */
                    size_t hl = strlen(hi);
                    char *h = malloc(hl + 2);
                    if (h) {
                        memcpy(h, hi, hl);
                        h[hl] = '\x7f';
                        h[hl + 1] = '\0';
                    }
                    binds[nb++] = h;
                    snprintf(buf, sizeof buf, " AND t.value <= ?%zu", nb);
                    okq = okq && sql_add(&q, buf);
                }
                okq = okq && sql_add(&q, ")");
            } else if (strpbrk(v, "*?")) {
                binds[nb++] = glob_of(v, k->case_insensitive);
                snprintf(buf, sizeof buf, "%s GLOB ?%zu", col, nb);
                okq = okq && sql_add(&q, buf);
            } else {
                binds[nb++] = strdup(v);
                snprintf(buf, sizeof buf, k->case_insensitive ? "lower(t.value) = lower(?%zu)"
                                                               : "t.value = ?%zu", nb);
                okq = okq && sql_add(&q, buf);
            }
            free(v);
            if (!end)
                break;
            p = end + 1;
        }
        okq = okq && sql_add(&q, "))");
    }
    snprintf(buf, sizeof buf, " ORDER BY r0.internal_id LIMIT %lld OFFSET %lld",
             limit == 0 || limit > INT64_MAX ? -1LL : (long long)limit,
             since > INT64_MAX ? (long long)INT64_MAX : (long long)since);
    okq = okq && sql_add(&q, buf);
    for (size_t i = 0; i < nb; i++)
        okq = okq && binds[i];
    if (!okq) {
        nomem(err);
        goto out_nodb;
    }
    c = read_begin(err, db);
    if (!c)
        goto out_nodb;
    if (!(s = adhoc(err, c, q.s)))
        goto out;
    for (size_t i = 0; i < nb; i++)
        bind_text(s, (int)i + 1, binds[i]);
    ok = step_strings(err, c, s, "find", ids, n);
out:
    sqlite3_finalize(s);
    ok = read_end(err, db, c, ok);
out_nodb:
    for (size_t i = 0; i < nb; i++)
        free(binds[i]);
    free(binds);
    free(q.s);
    return ok;
}

/* ---- protected patients and the recycling order (MaximumStorageSize, MaximumPatientCount)
 * Rare calls (a PUT, or a store over quota): statements are prepared per call. The recycling
 * order is Orthanc's: the patient that least recently received an instance comes first
 * (patient LastUpdate, set by every store; ties by creation order). */

static sqlite3_stmt *prepare_once(StoError *err, Conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_fail(err, c, "prepare");
        return NULL;
    }
    return s;
}

bool idx_patient_set_protected(StoError *err, IdxDb *db, const char *patient_id, bool on)
{
    int64_t internal;
    bool ok = false;
    sqlite3_stmt *s = NULL;
    if (!patient_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL patient ID");
        return false;
    }
    Conn *c = write_begin(err, db);
    if (!c)
        return false;
    if (!find(err, c, IDX_PATIENT, patient_id, &internal, NULL, NULL))
        goto out;
    s = prepare_once(err, c, on ? "INSERT OR IGNORE INTO protected(internal_id) VALUES(?1)"
                                : "DELETE FROM protected WHERE internal_id = ?1");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    if (sqlite3_step(s) != SQLITE_DONE) {
        db_fail(err, c, "protect");
        goto out;
    }
    ok = true;
out:
    sqlite3_finalize(s);
    return write_end(err, db, ok);
}

bool idx_patient_is_protected(StoError *err, IdxDb *db, const char *patient_id, bool *out)
{
    int64_t internal;
    bool ok = false;
    sqlite3_stmt *s = NULL;
    if (!patient_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL patient ID");
        return false;
    }
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    if (!find(err, c, IDX_PATIENT, patient_id, &internal, NULL, NULL))
        goto out;
    s = prepare_once(err, c, "SELECT 1 FROM protected WHERE internal_id = ?1");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(err, c, "protected");
        goto out;
    }
    *out = rc == SQLITE_ROW;
    ok = true;
out:
    sqlite3_finalize(s);
    return read_end(err, db, c, ok);
}

bool idx_oldest_patient(StoError *err, IdxDb *db, const char *exclude_id, char out[IDX_ID_LEN],
                        bool *found)
{
    bool ok = false;
    *found = false;
    out[0] = '\0';
    Conn *c = read_begin(err, db);
    if (!c)
        return false;
    sqlite3_stmt *s = prepare_once(
        err, c,
        "SELECT r.public_id FROM resources r"
        " LEFT JOIN metadata m ON m.internal_id = r.internal_id AND m.name = 'LastUpdate'"
        " WHERE r.level = 0 AND r.public_id <> ?1"
        " AND NOT EXISTS (SELECT 1 FROM protected p WHERE p.internal_id = r.internal_id)"
        " ORDER BY m.value, r.internal_id LIMIT 1");
    if (!s)
        goto out;
    bind_text(s, 1, exclude_id ? exclude_id : "");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        copy_col(out, IDX_ID_LEN, s, 0);
        *found = true;
    } else if (rc != SQLITE_DONE) {
        db_fail(err, c, "oldest patient");
        goto out;
    }
    ok = true;
out:
    sqlite3_finalize(s);
    return read_end(err, db, c, ok);
}
