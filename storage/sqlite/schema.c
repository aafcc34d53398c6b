/* schema.c -- the SQLite index schema, the one place it is written: its revisions and the
 * steps from one to the next.
 *
 * DESIGN
 * resources is one table for the four levels with a parent link; deleting a row cascades
 * (foreign keys ON DELETE CASCADE) to its descendants and to their tags, metadata and
 * attachment. changes.seq is AUTOINCREMENT so a seq is never reused, even after the log is
 * cleared. totals is a single row kept up to date by every store and delete: statistics
 * never scan the tables.
 *
 * Revisions. PRAGMA user_version holds the revision of the layout. STEPS[i] brings an index
 * from revision STEPS[i].revision - 1 (or from nothing, for the first) to STEPS[i].revision.
 * A new index runs every step; an older one runs the steps above its revision; all in one
 * transaction, so an upgrade that fails leaves the file as it was. An index of a newer
 * revision than ours is refused rather than guessed at. The first revision is 6 because the
 * first release stamped Orthanc's DatabaseVersion (6) into user_version; 7 and 8 add tables
 * that releases before revisioning created on the fly, hence their IF NOT EXISTS.
 * To change the layout: append a step (ALTER TABLE, CREATE INDEX, a data migration), never
 * edit a published one.
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdio.h>

typedef struct SchemaStep {
    int revision;
    const char *sql;
} SchemaStep;

static const SchemaStep STEPS[] = {
    {6, "CREATE TABLE IF NOT EXISTS resources("
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
        "CREATE TABLE IF NOT EXISTS totals("
        "  id INTEGER PRIMARY KEY CHECK (id = 0),"
        "  patients INTEGER NOT NULL, studies INTEGER NOT NULL, series INTEGER NOT NULL,"
        "  instances INTEGER NOT NULL, disk_size INTEGER NOT NULL,"
        "  uncompressed_size INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO totals VALUES(0, 0, 0, 0, 0, 0, 0);"
        "CREATE TABLE IF NOT EXISTS jobs("
        "  id TEXT PRIMARY KEY,"
        "  json TEXT NOT NULL,"
        "  ordering INTEGER NOT NULL);"},
    /* metadata revisions (ETag / If-Match) */
    {7, "CREATE TABLE IF NOT EXISTS metadata_rev("
        "  internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  revision INTEGER NOT NULL,"
        "  PRIMARY KEY(internal_id, name)) WITHOUT ROWID;"},
    /* protected patients */
    {8, "CREATE TABLE IF NOT EXISTS protected("
        "  internal_id INTEGER PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE);"},
    /* user-defined attachments (content types 1024..65535) */
    {9, "CREATE TABLE IF NOT EXISTS user_attachments("
        "  internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,"
        "  content_type INTEGER NOT NULL,"
        "  uuid TEXT NOT NULL,"
        "  compressed_size INTEGER NOT NULL,"
        "  uncompressed_size INTEGER NOT NULL,"
        "  compressed_md5 TEXT NOT NULL,"
        "  uncompressed_md5 TEXT NOT NULL,"
        "  compression INTEGER NOT NULL,"
        "  revision INTEGER NOT NULL,"
        "  PRIMARY KEY(internal_id, content_type)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS user_attachments_uuid ON user_attachments(uuid);"},
    /* each study keeps the patient main tags of its own first instance (Orthanc does, so that
     * studies of different patients sharing a PatientID are told apart): copy them once */
    {10, "INSERT OR IGNORE INTO main_tags(internal_id, tag, value)"
         " SELECT s.internal_id, t.tag, t.value FROM resources s"
         " JOIN main_tags t ON t.internal_id = s.parent_id WHERE s.level = 1;"},
    /* a delete removes the changes of the resources it removes (as Orthanc) */
    {11, "CREATE INDEX IF NOT EXISTS changes_public_id ON changes(public_id);"},
    /* finds on main tags seek instead of scanning every resource of the level (find.c):
     * lower(value) serves both case-folded and exact matches */
    {12, "CREATE INDEX IF NOT EXISTS main_tags_lower ON main_tags(tag, lower(value));"},
};

#define NSTEPS (sizeof STEPS / sizeof STEPS[0])


int sql_schema_latest(void)
{
    return STEPS[NSTEPS - 1].revision;
}

static bool exec_sql(StoError *err, SqlConn *c, const char *sql, const char *what)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, c, what);
    return true;
}

static bool read_revision(StoError *err, SqlConn *c, int *revision)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return sql_fail(err, c, "schema revision");
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    if (ok)
        *revision = sqlite3_column_int(s, 0);
    else
        sql_fail(err, c, "schema revision");
    sqlite3_finalize(s);
    return ok;
}

bool sql_schema_apply(StoError *err, SqlConn *c, int *revision)
{
    int from = 0;
    char sql[64];
    /* Read the revision inside the write transaction: two processes opening one new file
     * cannot both create the schema. */
    if (!exec_sql(err, c, "BEGIN IMMEDIATE", "schema"))
        return false;
    if (!read_revision(err, c, &from))
        goto fail;
    if (from > sql_schema_latest()) {
        sto_set_err(err, STO_ERR_DB, "index schema revision %d is newer than this server's %d",
                    from, sql_schema_latest());
        goto fail;
    }
    if (from != 0 && from < STEPS[0].revision) {
        sto_set_err(err, STO_ERR_DB, "index schema revision %d is unknown (oldest is %d)", from,
                    STEPS[0].revision);
        goto fail;
    }
    for (size_t i = 0; i < NSTEPS; i++) {
        if (STEPS[i].revision <= from)
            continue;
        if (!exec_sql(err, c, STEPS[i].sql, "schema step"))
            goto fail;
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", STEPS[i].revision);
        if (!exec_sql(err, c, sql, "schema revision"))
            goto fail;
    }
    if (!exec_sql(err, c, "COMMIT", "schema"))
        goto fail;
    *revision = sql_schema_latest();
    return true;
fail:
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}
