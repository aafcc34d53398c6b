/* pg.c -- the PostgreSQL index backend: connection pool, the statement table, transactions
 * with retries, the schema, small result helpers, and the operations table. The design is
 * in pg_int.h; the operations are in store.c, read.c and meta.c beside this file.
 */
#include "storage/pg/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* True while the process that wrote `col` (an owner key) is alive: it holds its advisory
 * lock (7420, owner) on a connection of its own for its whole life; the lock goes when the
 * process dies (PostgreSQL sees its connection close). */
#define OWNER_ALIVE(col) \
    "EXISTS(SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 7420" \
    " AND l.objsubid = 2 AND l.objid::bigint = " col " AND l.granted" \
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"

/* Parameters are $1..$n, all sent as text. Every comparison of tag values uses the "C"
 * collation, so ranges and ordering are byte order whatever the database's locale (as
 * SQLite's). */
static const char *const SQL[P_COUNT] = {
    [P_LOOKUP] = "SELECT internal_id, level, parent_id FROM resources WHERE public_id = $1",
    [P_LOOKUP_FULL] = "SELECT r.internal_id, r.level, p.public_id FROM resources r"
                      " LEFT JOIN resources p ON p.internal_id = r.parent_id"
                      " WHERE r.public_id = $1",
    [P_LOOKUP_MANY] = "SELECT public_id, internal_id, level FROM resources"
                      " WHERE public_id = ANY($1::text[])",
    [P_INSERT_RESOURCE] = "INSERT INTO resources(level, public_id, parent_id)"
                          " VALUES($1, $2, $3) RETURNING internal_id",
    [P_INSERT_TAGS] = "INSERT INTO main_tags(internal_id, tag, value)"
                      " SELECT i, t, v FROM unnest($1::bigint[], $2::bigint[], $3::text[])"
                      " AS x(i, t, v)"
                      " ON CONFLICT (internal_id, tag) DO UPDATE SET value = excluded.value",
    [P_DELETE_TAGS] = "DELETE FROM main_tags WHERE internal_id = $1",
    [P_GET_TAGS] = "SELECT tag, value FROM main_tags WHERE internal_id = $1 ORDER BY tag",
    [P_GET_CHILDREN] = "SELECT public_id FROM resources WHERE parent_id = $1"
                       " ORDER BY internal_id",
    [P_LIST] = "SELECT public_id FROM resources WHERE level = $1 ORDER BY internal_id"
               " LIMIT $2 OFFSET $3",
    [P_INSTANCES_OF] = "WITH RECURSIVE sub(id, level) AS ("
                       "  SELECT $1::bigint, $2::int"
                       "  UNION ALL SELECT r.internal_id, r.level FROM resources r"
                       "  JOIN sub ON r.parent_id = sub.id WHERE sub.level < 3)"
                       " SELECT r.public_id, a.uuid, a.size FROM sub"
                       " JOIN resources r ON r.internal_id = sub.id"
                       " JOIN attachments a ON a.internal_id = sub.id"
                       " WHERE sub.level = 3 ORDER BY sub.id",
    [P_COUNTS] = "WITH RECURSIVE sub(id, level) AS ("
                 "  SELECT $1::bigint, $2::int"
                 "  UNION ALL SELECT r.internal_id, r.level FROM resources r"
                 "  JOIN sub ON r.parent_id = sub.id WHERE sub.level < 3)"
                 " SELECT count(*) FILTER (WHERE sub.level = 0), count(*) FILTER (WHERE sub.level = 1),"
                 " count(*) FILTER (WHERE sub.level = 2), count(*) FILTER (WHERE sub.level = 3),"
                 " COALESCE(SUM(a.size), 0)"
                 " FROM sub LEFT JOIN attachments a ON a.internal_id = sub.id",
    [P_NUM_CHILDREN] = "SELECT COUNT(*) FROM resources WHERE parent_id = $1",
    [P_COUNT_CHILDREN] = "SELECT COUNT(*) FROM (SELECT 1 FROM resources WHERE parent_id = $1"
                         " LIMIT 2) x",
    /* the parent of a resource being deleted is locked: a store adding a child to it waits
     * (its foreign key check takes KEY SHARE) and then fails and retries */
    [P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE] = "SELECT level, public_id, parent_id FROM resources"
                                              " WHERE internal_id = $1 FOR UPDATE",
    [P_DELETE_RESOURCE] = "DELETE FROM resources WHERE internal_id = $1",
    /* Orthanc: the change-log entries of every resource a delete removes go with it */
    [P_DELETE_SUBTREE_CHANGES] = "DELETE FROM changes WHERE public_id IN ("
                                 "WITH RECURSIVE sub(id) AS (SELECT $1::BIGINT UNION ALL"
                                 " SELECT r.internal_id FROM resources r JOIN sub ON r.parent_id = sub.id)"
                                 " SELECT r.public_id FROM resources r JOIN sub ON r.internal_id = sub.id)",
    [P_INSERT_ATTACHMENT] = "INSERT INTO attachments(internal_id, uuid, size, md5)"
                            " VALUES($1, $2, $3, $4) ON CONFLICT (internal_id) DO UPDATE"
                            " SET uuid = excluded.uuid, size = excluded.size, md5 = excluded.md5",
    [P_GET_ATTACHMENT] = "SELECT uuid, size, md5 FROM attachments WHERE internal_id = $1",
    [P_SET_MD5] = "UPDATE attachments SET md5 = $2 WHERE uuid = $1",
    /* Statistics from the tables themselves, not from a running-totals row: one row that
     * every store updates would serialize every writer of every process on its lock. */
    [P_TOTALS] = "SELECT (SELECT count(*) FROM resources WHERE level = 0),"
                 " (SELECT count(*) FROM resources WHERE level = 1),"
                 " (SELECT count(*) FROM resources WHERE level = 2),"
                 " (SELECT count(*) FROM resources WHERE level = 3),"
                 " (SELECT COALESCE(SUM(size), 0) FROM attachments)",
    /* Pending uuids carry the process that noted them (owner): recovery only takes those
     * whose owner no longer holds its advisory lock, i.e. whose process is gone. Another
     * process's upload in flight is never mistaken for an orphan. */
    [P_PENDING_ADD] = "INSERT INTO pending(uuid, owner) VALUES($1, $2) ON CONFLICT DO NOTHING",
    [P_PENDING_ADD_MANY] = "INSERT INTO pending(uuid, owner) SELECT unnest($1::text[]), $2"
                           " ON CONFLICT DO NOTHING",
    [P_PENDING_DEL] = "DELETE FROM pending WHERE uuid = $1",
    [P_PENDING_LIST] = "SELECT p.uuid, EXISTS(SELECT 1 FROM attachments a WHERE a.uuid = p.uuid)"
                       " OR EXISTS(SELECT 1 FROM user_attachments u WHERE u.uuid = p.uuid)"
                       " FROM pending p WHERE NOT " OWNER_ALIVE("p.owner"),
    [P_SET_METAS] = "INSERT INTO metadata(internal_id, name, value)"
                    " SELECT i, n, v FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(i, n, v)"
                    " ON CONFLICT (internal_id, name) DO UPDATE SET value = excluded.value",
    [P_SET_META] = "INSERT INTO metadata(internal_id, name, value) VALUES($1, $2, $3)"
                   " ON CONFLICT (internal_id, name) DO UPDATE SET value = excluded.value",
    [P_DELETE_META] = "DELETE FROM metadata WHERE internal_id = $1 AND name = $2",
    [P_DELETE_ALL_META] = "DELETE FROM metadata WHERE internal_id = $1",
    [P_GET_META] = "SELECT name, value FROM metadata WHERE internal_id = $1"
                   " ORDER BY name COLLATE \"C\"",
    [P_META_LOOKUP] = "SELECT m.value, COALESCE(r.revision, 0) FROM metadata m"
                      " LEFT JOIN metadata_rev r ON r.internal_id = m.internal_id"
                      " AND r.name = m.name"
                      " WHERE m.internal_id = $1 AND m.name = $2 FOR UPDATE OF m",
    [P_SET_META_REV] = "INSERT INTO metadata_rev(internal_id, name, revision) VALUES($1, $2, $3)"
                       " ON CONFLICT (internal_id, name) DO UPDATE SET revision = excluded.revision",
    [P_INSERT_CHANGES] = "INSERT INTO changes(type, level, public_id, date)"
                         " SELECT t, l, i, $4 FROM unnest($1::text[], $2::int[], $3::text[])"
                         " WITH ORDINALITY AS x(t, l, i, o) ORDER BY o RETURNING seq",
    [P_CHANGES] = "SELECT seq, type, level, public_id, date FROM changes WHERE seq > $1"
                  " ORDER BY seq LIMIT $2",
    [P_CHANGES_LAST] = "SELECT seq, type, level, public_id, date FROM changes"
                       " ORDER BY seq DESC LIMIT 1",
    [P_CHANGES_SEQ] = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                      " FROM changes_seq_seq",
    [P_CHANGES_CLEAR] = "DELETE FROM changes",
    [P_PROTECT] = "INSERT INTO protected(internal_id) VALUES($1) ON CONFLICT DO NOTHING",
    [P_UNPROTECT] = "DELETE FROM protected WHERE internal_id = $1",
    [P_IS_PROTECTED] = "SELECT 1 FROM protected WHERE internal_id = $1",
    [P_OLDEST_PATIENT] = "SELECT r.public_id FROM resources r"
                         " LEFT JOIN metadata m ON m.internal_id = r.internal_id"
                         " AND m.name = 'LastUpdate'"
                         " WHERE r.level = 0 AND r.public_id <> $1"
                         " AND NOT EXISTS (SELECT 1 FROM protected p"
                         " WHERE p.internal_id = r.internal_id)"
                         " ORDER BY m.value COLLATE \"C\" NULLS FIRST, r.internal_id LIMIT 1",
    /* A saved job belongs to the process that saved it last. */
    [P_UATT_GET] = "SELECT content_type, uuid, compressed_size, uncompressed_size, compressed_md5,"
                   " uncompressed_md5, compression, revision FROM user_attachments"
                   " WHERE internal_id = $1 AND content_type = $2",
    [P_UATT_PUT] = "INSERT INTO user_attachments(internal_id, content_type, uuid, compressed_size,"
                   " uncompressed_size, compressed_md5, uncompressed_md5, compression, revision)"
                   " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                   " ON CONFLICT (internal_id, content_type) DO UPDATE SET uuid = excluded.uuid,"
                   " compressed_size = excluded.compressed_size,"
                   " uncompressed_size = excluded.uncompressed_size,"
                   " compressed_md5 = excluded.compressed_md5,"
                   " uncompressed_md5 = excluded.uncompressed_md5,"
                   " compression = excluded.compression, revision = excluded.revision",
    [P_UATT_DEL] = "DELETE FROM user_attachments WHERE internal_id = $1 AND content_type = $2",
    [P_UATT_LIST] = "SELECT content_type FROM user_attachments WHERE internal_id = $1"
                    " ORDER BY content_type",
    [P_UATT_SUBTREE] = "WITH RECURSIVE sub(id) AS (SELECT $1::bigint UNION ALL"
                       " SELECT r.internal_id FROM resources r JOIN sub ON r.parent_id = sub.id)"
                       " SELECT u.uuid, u.compressed_size, r.public_id FROM user_attachments u"
                       " JOIN sub ON u.internal_id = sub.id"
                       " JOIN resources r ON r.internal_id = u.internal_id"
                       " WHERE EXISTS(SELECT 1 FROM user_attachments)",
    [P_JOB_SAVE] = "INSERT INTO jobs(id, json, owner) VALUES($1, $2, $3)"
                   " ON CONFLICT (id) DO UPDATE SET json = excluded.json, owner = excluded.owner",
    [P_JOB_DELETE] = "DELETE FROM jobs WHERE id = $1",
    /* Claims the jobs of processes that are gone (or of none): each such job is taken by
     * exactly one live process (row locks, SKIP LOCKED), in the order they were saved. */
    [P_JOBS_LOAD] = "WITH c AS (UPDATE jobs SET owner = $1 WHERE id IN ("
                    "  SELECT id FROM jobs j WHERE j.owner <> $1 AND NOT " OWNER_ALIVE("j.owner")
                    "  FOR UPDATE SKIP LOCKED) RETURNING id, json, ordering)"
                    " SELECT id, json FROM c ORDER BY ordering",
    /* idx_resources_get: the rows of all ids, then each part for all of them (read.c) */
    [P_LOOKUP_ORDERED] = "SELECT x.o, r.internal_id, r.level, p.public_id"
                         " FROM unnest($1::text[]) WITH ORDINALITY AS x(id, o)"
                         " JOIN resources r ON r.public_id = x.id"
                         " LEFT JOIN resources p ON p.internal_id = r.parent_id",
    [P_MANY_TAGS] = "SELECT internal_id, tag, value FROM main_tags"
                    " WHERE internal_id = ANY($1::bigint[]) ORDER BY internal_id, tag",
    [P_MANY_META] = "SELECT internal_id, name, value FROM metadata"
                    " WHERE internal_id = ANY($1::bigint[]) ORDER BY internal_id, name COLLATE \"C\"",
    [P_MANY_CHILDREN] = "SELECT parent_id, public_id FROM resources"
                        " WHERE parent_id = ANY($1::bigint[]) ORDER BY parent_id, internal_id",
    [P_MANY_NCHILDREN] = "SELECT parent_id, count(*) FROM resources"
                         " WHERE parent_id = ANY($1::bigint[]) GROUP BY parent_id ORDER BY parent_id",
    /* sent at COMMIT, to every process LISTENing (notify.c); one per distinct id */
    [P_NOTIFY] = "SELECT count(pg_notify('minipacs_invalidate', x)) FROM unnest($1::text[]) x",
    /* Stable* once across processes: the row lock makes two processes deciding about one
     * resource take turns; NO KEY UPDATE does not block stores adding children (KEY SHARE) */
    [P_STABLE_CHECK] = "SELECT COALESCE(m.value, ''), EXISTS(SELECT 1 FROM changes c"
                       " WHERE c.public_id = $1 AND c.type = $2"
                       " AND c.date COLLATE \"C\" > COALESCE(m.value, '') COLLATE \"C\")"
                       " FROM resources r LEFT JOIN metadata m ON m.internal_id = r.internal_id"
                       " AND m.name = 'LastUpdate' WHERE r.public_id = $1 AND r.level = $3"
                       " FOR NO KEY UPDATE OF r",
};

/* ---- schema ------------------------------------------------------------------------------ */

typedef struct PgSchemaStep {
    int revision;
    const char *sql;
} PgSchemaStep;

/* To change the layout: append a step, never edit a published one. */
static const PgSchemaStep STEPS[] = {
    {1, "CREATE TABLE resources("
        "  internal_id BIGSERIAL PRIMARY KEY,"
        "  level INTEGER NOT NULL,"
        "  public_id TEXT NOT NULL UNIQUE,"
        "  parent_id BIGINT REFERENCES resources(internal_id) ON DELETE CASCADE);"
        "CREATE INDEX resources_parent ON resources(parent_id);"
        "CREATE INDEX resources_level ON resources(level, internal_id);"
        "CREATE TABLE main_tags("
        "  internal_id BIGINT NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  tag BIGINT NOT NULL,"
        "  value TEXT COLLATE \"C\" NOT NULL,"
        "  PRIMARY KEY(internal_id, tag));"
        "CREATE INDEX main_tags_value ON main_tags(tag, value);"
        "CREATE TABLE metadata("
        "  internal_id BIGINT NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  value TEXT NOT NULL,"
        "  PRIMARY KEY(internal_id, name));"
        "CREATE TABLE metadata_rev("
        "  internal_id BIGINT NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  revision BIGINT NOT NULL,"
        "  PRIMARY KEY(internal_id, name));"
        "CREATE TABLE attachments("
        "  internal_id BIGINT PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  uuid TEXT NOT NULL,"
        "  size BIGINT NOT NULL,"
        "  md5 TEXT);"
        "CREATE INDEX attachments_uuid ON attachments(uuid);"
        "CREATE SEQUENCE changes_seq_seq;"
        "CREATE TABLE changes("
        "  seq BIGINT PRIMARY KEY DEFAULT nextval('changes_seq_seq'),"
        "  type TEXT NOT NULL,"
        "  level INTEGER NOT NULL,"
        "  public_id TEXT NOT NULL,"
        "  date TEXT NOT NULL);"
        "CREATE INDEX changes_public_id ON changes(public_id);"
        "CREATE TABLE pending(uuid TEXT PRIMARY KEY, owner BIGINT NOT NULL DEFAULT 0);"
        "CREATE TABLE protected("
        "  internal_id BIGINT PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE);"
        "CREATE TABLE jobs("
        "  id TEXT PRIMARY KEY,"
        "  json TEXT NOT NULL,"
        "  owner BIGINT NOT NULL DEFAULT 0,"
        "  ordering BIGSERIAL);"},
    /* user-defined attachments (content types 1024..65535) */
    {2, "CREATE TABLE user_attachments("
        "  internal_id BIGINT NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  content_type INTEGER NOT NULL,"
        "  uuid TEXT NOT NULL,"
        "  compressed_size BIGINT NOT NULL,"
        "  uncompressed_size BIGINT NOT NULL,"
        "  compressed_md5 TEXT NOT NULL,"
        "  uncompressed_md5 TEXT NOT NULL,"
        "  compression INTEGER NOT NULL,"
        "  revision BIGINT NOT NULL,"
        "  PRIMARY KEY(internal_id, content_type));"
        "CREATE INDEX user_attachments_uuid ON user_attachments(uuid);"},
    /* each study keeps the patient main tags of its own first instance (Orthanc does, so that
     * studies of different patients sharing a PatientID are told apart): copy them once */
    {3, "INSERT INTO main_tags(internal_id, tag, value)"
        " SELECT s.internal_id, t.tag, t.value FROM resources s"
        " JOIN main_tags t ON t.internal_id = s.parent_id WHERE s.level = 1"
        " ON CONFLICT DO NOTHING;"},
    /* case-folded finds (PN: lower(t.value) = lower($n), lower(t.value) LIKE 'prefix%') seek
     * instead of scanning; text_pattern_ops lets LIKE prefixes use it whatever the collation */
    {4, "CREATE INDEX main_tags_lower ON main_tags(tag, lower(value) text_pattern_ops);"},
};
#define NSTEPS (sizeof STEPS / sizeof STEPS[0])

int pg_schema_latest(void) { return STEPS[NSTEPS - 1].revision; }

static bool exec_text(StoError *err, PGconn *conn, const char *sql, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        sto_set_err(err, STO_ERR_DB, "PostgreSQL %s: %s", what, PQerrorMessage(conn));
    PQclear(r);
    return ok;
}

/* Creates or upgrades the schema, in one transaction, under an advisory lock so that several
 * processes starting together on a new database do not both create it. */
bool pg_schema_apply(StoError *err, PGconn *conn, int *revision)
{
    int from = 0;
    char sql[160];
    if (!exec_text(err, conn, "BEGIN", "schema") ||
        !exec_text(err, conn, "SELECT pg_advisory_xact_lock(7420001)", "schema lock") ||
        !exec_text(err, conn, "CREATE TABLE IF NOT EXISTS minipacs_schema(revision INTEGER NOT NULL)",
                   "schema"))
        goto fail;
    PGresult *r = PQexec(conn, "SELECT revision FROM minipacs_schema");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        sto_set_err(err, STO_ERR_DB, "PostgreSQL schema revision: %s", PQerrorMessage(conn));
        PQclear(r);
        goto fail;
    }
    bool has_row = PQntuples(r) > 0;
    if (has_row)
        from = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (from > pg_schema_latest()) {
        sto_set_err(err, STO_ERR_DB, "index schema revision %d is newer than this server's %d",
                    from, pg_schema_latest());
        goto fail;
    }
    for (size_t i = 0; i < NSTEPS; i++) {
        if (STEPS[i].revision <= from)
            continue;
        if (!exec_text(err, conn, STEPS[i].sql, "schema step"))
            goto fail;
    }
    snprintf(sql, sizeof sql, has_row ? "UPDATE minipacs_schema SET revision = %d"
                                      : "INSERT INTO minipacs_schema VALUES(%d)",
             pg_schema_latest());
    if (!exec_text(err, conn, sql, "schema revision") || !exec_text(err, conn, "COMMIT", "schema"))
        goto fail;
    *revision = pg_schema_latest();
    return true;
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    return false;
}

/* ---- errors ------------------------------------------------------------------------------ */

bool pg_nomem(StoError *err)
{
    sto_set_err(err, STO_ERR_NOMEM, "out of memory");
    return false;
}

static bool conn_bad(PgConn *c)
{
    return !c->conn || PQstatus(c->conn) != CONNECTION_OK;
}

/* Fills err from a failed result: UNAVAILABLE when the connection is gone, DB otherwise;
 * remembers the SQLSTATE for pg_tx's retry decision. */
static void result_fail(StoError *err, PgConn *c, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    /* Class 08 (connection exception), 57P01-03 (admin shutdown, crash shutdown, cannot
     * connect now): the server is away. */
    if (conn_bad(c) || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0))) {
        c->broken = true;
        sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable (%s): %s",
                    what, c->conn ? PQerrorMessage(c->conn) : "no connection");
        return;
    }
    sto_set_err(err, STO_ERR_DB, "PostgreSQL %s: %s", what,
                r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(c->conn));
}

/* ---- statements -------------------------------------------------------------------------- */

static bool ensure_prepared(StoError *err, PgDb *db, PgConn *c, PgStmt which)
{
    if (c->prepared[which])
        return true;
    char name[16];
    snprintf(name, sizeof name, "mp%d", (int)which);
    PGresult *r = PQprepare(c->conn, name, SQL[which], 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        result_fail(err, c, r, "prepare");
    PQclear(r);
    if (ok) {
        c->prepared[which] = true;
        atomic_fetch_add(&db->prepared, 1);
    }
    return ok;
}

static PGresult *check_result(StoError *err, PgConn *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        c->sqlstate[0] = '\0';
        return r;
    }
    result_fail(err, c, r, what);
    PQclear(r);
    return NULL;
}

PGresult *pg_run(StoError *err, PgConn *c, PgStmt which, int n, const char *const *params)
{
    if (!ensure_prepared(err, c->owner, c, which))
        return NULL;
    char name[16];
    snprintf(name, sizeof name, "mp%d", (int)which);
    return check_result(err, c, PQexecPrepared(c->conn, name, n, params, NULL, NULL, 0), name);
}

bool pg_do(StoError *err, PgConn *c, PgStmt which, int n, const char *const *params)
{
    PGresult *r = pg_run(err, c, which, n, params);
    PQclear(r);
    return r != NULL;
}

PGresult *pg_run_text(StoError *err, PgConn *c, const char *sql, int n,
                      const char *const *params)
{
    return check_result(err, c, PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0),
                        "query");
}

/* ---- the pool ---------------------------------------------------------------------------- */

static bool conn_open(StoError *err, PgDb *db, PgConn *c)
{
    if (c->conn)
        PQfinish(c->conn);
    memset(c->prepared, 0, sizeof c->prepared);
    c->broken = false;
    c->conn = PQconnectdb(db->conninfo);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable: %s",
                    PQerrorMessage(c->conn));
        c->broken = true;
        return false;
    }
    /* Quiet NOTICEs; no statement runs forever. */
    PQclear(PQexec(c->conn, "SET client_min_messages = warning"));
    return true;
}

static PgConn *pool_take(StoError *err, PgDb *db)
{
    pthread_mutex_lock(&db->lock);
    int i;
    for (;;) {
        for (i = 0; i < db->nconns && db->busy[i]; i++)
            ;
        if (i < db->nconns)
            break;
        pthread_cond_wait(&db->cond, &db->lock);
    }
    db->busy[i] = true;
    pthread_mutex_unlock(&db->lock);
    PgConn *c = &db->conns[i];
    if ((c->broken || conn_bad(c)) && !conn_open(err, db, c)) {
        pthread_mutex_lock(&db->lock);
        db->busy[i] = false;
        pthread_cond_signal(&db->cond);
        pthread_mutex_unlock(&db->lock);
        return NULL;
    }
    return c;
}

static void pool_give(PgDb *db, PgConn *c)
{
    pthread_mutex_lock(&db->lock);
    db->busy[c - db->conns] = false;
    pthread_cond_signal(&db->cond);
    pthread_mutex_unlock(&db->lock);
}

/* Retry only what another process's concurrent transaction can cause. */
static bool retryable(const PgConn *c)
{
    return strcmp(c->sqlstate, "23505") == 0 ||  /* unique_violation */
           strcmp(c->sqlstate, "23503") == 0 ||  /* foreign_key_violation */
           strcmp(c->sqlstate, "40001") == 0 ||  /* serialization_failure */
           strcmp(c->sqlstate, "40P01") == 0;    /* deadlock_detected */
}

bool pg_tx(StoError *err, PgDb *db, bool transaction, PgTxFn fn, void *ctx)
{
    for (int attempt = 0;; attempt++) {
        StoError e = {0};
        PgConn *c = pool_take(&e, db);
        if (!c) {
            if (err)
                *err = e;
            return false;
        }
        bool ok = true;
        if (transaction) {
            PGresult *r = check_result(&e, c, PQexec(c->conn, "BEGIN"), "begin");
            ok = r != NULL;
            PQclear(r);
        }
        if (ok)
            ok = fn(&e, c, ctx);
        if (transaction && ok) {
            PGresult *r = check_result(&e, c, PQexec(c->conn, "COMMIT"), "commit");
            ok = r != NULL;
            PQclear(r);
        } else if (transaction && !c->broken) {
            PQclear(PQexec(c->conn, "ROLLBACK"));
        }
        bool again = !ok && retryable(c) && attempt < db->retries;
        bool reconnect = !ok && c->broken && attempt == 0;
        pool_give(db, c);
        if (ok)
            return true;
        if (again) {
            usleep((useconds_t)(1000 * (1 + attempt)));
            continue;
        }
        if (reconnect)
            continue; /* one immediate reconnect: a restarted server is back at once */
        if (err)
            *err = e;
        return false;
    }
}

/* ---- helpers ----------------------------------------------------------------------------- */

char *pg_text_array(const char *const *v, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 3 + 2 * strlen(v[i] ? v[i] : "");
    char *out = malloc(len), *p = out;
    if (!out)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *s = v[i] ? v[i] : ""; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

char *pg_int_array(const int64_t *v, size_t n)
{
    char *out = malloc(3 + n * 21), *p = out;
    if (!out)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, i ? ",%lld" : "%lld", (long long)v[i]);
    *p++ = '}';
    *p = '\0';
    return out;
}

void pg_copy(char *dst, size_t size, const PGresult *r, int row, int col)
{
    snprintf(dst, size, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

char *pg_dup(const PGresult *r, int row, int col)
{
    return strdup(PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? -1 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int pg_lookup(StoError *err, PgConn *c, const char *id, int64_t *internal, int *level,
              int64_t *parent)
{
    PGresult *r = pg_run(err, c, P_LOOKUP, 1, &id);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found) {
        *internal = pg_int(r, 0, 0);
        if (level)
            *level = (int)pg_int(r, 0, 1);
        if (parent)
            *parent = pg_int(r, 0, 2);
    }
    PQclear(r);
    return found;
}

bool pg_find_resource(StoError *err, PgConn *c, int level, const char *id, int64_t *internal,
                      int *lv, int64_t *parent)
{
    int l = -1;
    int r = pg_lookup(err, c, id, internal, &l, parent); /* before l is read */
    if (!idx_lookup_result(err, r, level, l, id))
        return false;
    if (lv)
        *lv = l;
    return true;
}

/* ---- open, close, info --------------------------------------------------------------------- */

static void pg_close(void *be)
{
    PgDb *db = be;
    if (!db)
        return;
    for (int i = 0; i < db->nconns; i++)
        if (db->conns[i].conn)
            PQfinish(db->conns[i].conn);
    if (db->lock_conn)
        PQfinish(db->lock_conn);
    pthread_mutex_destroy(&db->listen_lock);
    pthread_mutex_destroy(&db->lock);
    pthread_cond_destroy(&db->cond);
    free(db->conns);
    free(db->busy);
    free(db->conninfo);
    free(db);
}

static void *pg_open(StoError *err, const IdxOptions *opt)
{
    if (!opt->pg_conninfo) {
        sto_set_err(err, STO_ERR_ARG, "no PostgreSQL connection parameters");
        return NULL;
    }
    PgDb *db = calloc(1, sizeof *db);
    if (!db) {
        pg_nomem(err);
        return NULL;
    }
    pthread_mutex_init(&db->lock, NULL);
    pthread_mutex_init(&db->listen_lock, NULL);
    pthread_cond_init(&db->cond, NULL);
    db->nconns = opt->pg_connections > 0 ? opt->pg_connections : 4;
    db->retries = 20;
    db->conninfo = strdup(opt->pg_conninfo);
    db->conns = calloc((size_t)db->nconns, sizeof *db->conns);
    db->busy = calloc((size_t)db->nconns, sizeof *db->busy);
    if (!db->conninfo || !db->conns || !db->busy) {
        pg_nomem(err);
        goto fail;
    }
    for (int i = 0; i < db->nconns; i++)
        db->conns[i].owner = db;
    /* The first connection, with retries: a database container may still be starting. */
    int tries = opt->pg_connect_retries > 0 ? opt->pg_connect_retries : 1;
    for (int i = 0; i < tries; i++) {
        if (conn_open(err, db, &db->conns[0]))
            break;
        if (i + 1 < tries)
            sleep(1);
    }
    if (db->conns[0].broken)
        goto fail;
    if (!pg_schema_apply(err, db->conns[0].conn, &db->revision))
        goto fail;
    /* This process's own advisory lock (7420, owner), held by a connection kept for the
     * process's life: while it is held, our pending uuids are ours. A random owner that
     * another live process already holds is drawn again. */
    db->lock_conn = PQconnectdb(db->conninfo);
    if (PQstatus(db->lock_conn) != CONNECTION_OK) {
        sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable: %s",
                    PQerrorMessage(db->lock_conn));
        goto fail;
    }
    for (int i = 0; i < 100 && !db->owner; i++) {
        unsigned r32 = 0;
        FILE *f = fopen("/dev/urandom", "rb");
        if (f) {
            if (fread(&r32, sizeof r32, 1, f) != 1)
                r32 = 0;
            fclose(f);
        }
        int64_t owner = 1 + (int64_t)(((unsigned)getpid() * 2654435761u) ^ r32) % 2000000000;
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(7420, %lld)", (long long)owner);
        PGresult *r = PQexec(db->lock_conn, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0)
            db->owner = owner;
        PQclear(r);
    }
    if (!db->owner) {
        sto_set_err(err, STO_ERR_DB, "cannot take this process's PostgreSQL advisory lock");
        goto fail;
    }
    snprintf(db->owner_text, sizeof db->owner_text, "%lld", (long long)db->owner);
    /* Orthanc's "Lock": one process owns the database for its whole life. Then LISTEN. */
    db->lock_exclusive = opt->pg_lock;
    if (!pg_listen_setup(err, db))
        goto fail;
    return db;
fail:
    pg_close(db);
    return NULL;
}

static bool pg_info(StoError *err, void *be, IdxInfo *out)
{
    (void)err;
    PgDb *db = be;
    out->schema_revision = db->revision;
    out->statements_prepared = atomic_load(&db->prepared);
    return true;
}

const IdxBackend idx_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .info = pg_info,
    .pending_add = pg_pending_add,
    .pending_clear = pg_pending_clear,
    .pending_list = pg_pending_list,
    .store_instance = pg_store_instance,
    .delete_resource = pg_delete_resource,
    .resource_get = pg_resource_get,
    .resources_get = pg_resources_get,
    .list = pg_list,
    .instances_of = pg_instances_of,
    .resource_counts = pg_resource_counts,
    .totals = pg_totals,
    .find = pg_find,
    .change_add = pg_change_add,
    .changes = pg_changes,
    .changes_last = pg_changes_last,
    .changes_clear = pg_changes_clear,
    .metadata_set = pg_metadata_set,
    .metadata_get = pg_metadata_get,
    .metadata_put = pg_metadata_put,
    .metadata_remove = pg_metadata_remove,
    .attachment_set_md5 = pg_attachment_set_md5,
    .patient_set_protected = pg_patient_set_protected,
    .set_main_tags = pg_set_main_tags,
    .attachment_put = pg_attachment_put,
    .attachment_get = pg_attachment_get,
    .attachment_list = pg_attachment_list,
    .attachment_remove = pg_attachment_remove,
    .patient_is_protected = pg_patient_is_protected,
    .oldest_patient = pg_oldest_patient,
    .job_save = pg_job_save,
    .job_delete = pg_job_delete,
    .jobs_load = pg_jobs_load,
    .jobs_claim = pg_jobs_load, /* the same claim: at start and every few seconds after */
    .invalidations = pg_invalidations,
    .change_add_stable = pg_change_add_stable,
    .shared = true,
};
