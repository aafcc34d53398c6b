/* meta.c -- the SQLite backend's smaller tables: metadata with revisions, the attachment
 * MD5, the changes log, protected patients and the recycling order, saved jobs.
 * Every statement comes from the one cache (conn.c), rare ones included: a statement that
 * runs once per REST call costs its prepare only once per connection.
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- changes ---------------------------------------------------------------------------- */

bool sql_change_add(StoError *err, void *be, const char *type, int level, const char *id)
{
    char now[16];
    idx_now(now);
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    return sql_write_end(err, be, sql_insert_change(err, c, type, level, id, now, NULL));
}

static void read_change(sqlite3_stmt *s, IdxChange *ch)
{
    ch->seq = sqlite3_column_int64(s, 0);
    sql_copy_col(ch->type, sizeof ch->type, s, 1);
    ch->level = sqlite3_column_int(s, 2);
    sql_copy_col(ch->id, sizeof ch->id, s, 3);
    sql_copy_col(ch->date, sizeof ch->date, s, 4);
}

/* The last seq ever handed out (survives a clear: sqlite_sequence), 0 if none. */
static bool last_seq(StoError *err, SqlConn *c, int64_t *last)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_CHANGES_SEQ);
    if (!s)
        return false;
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    if (ok)
        *last = sqlite3_column_int64(s, 0);
    else
        sql_fail(err, c, "last seq");
    sqlite3_reset(s);
    return ok;
}

bool sql_changes(StoError *err, void *be, int64_t since, uint64_t limit, IdxChange **out,
                 size_t *n, bool *done, int64_t *last)
{
    IdxChange *arr = NULL;
    size_t len = 0, cap = 0;
    bool ok = false, more = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_CHANGES);
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
        if (!idx_grow((void **)&arr, &cap, len, sizeof *arr)) {
            sql_nomem(err);
            goto out;
        }
        read_change(s, &arr[len++]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sql_fail(err, c, "changes");
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
    return sql_read_end(err, be, c, ok);
}

bool sql_changes_last(StoError *err, void *be, IdxChange **out, size_t *n, int64_t *last)
{
    IdxChange *ch = NULL;
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_CHANGES_LAST);
    if (!s)
        goto out;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (!(ch = calloc(1, sizeof *ch))) {
            sql_nomem(err);
            goto out;
        }
        read_change(s, ch);
        *last = ch->seq;
    } else if (rc != SQLITE_DONE) {
        sql_fail(err, c, "last change");
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
    ok = sql_read_end(err, be, c, ok);
    if (!ok && *out) {
        free(*out);
        *out = NULL;
    }
    return ok;
}

bool sql_changes_clear(StoError *err, void *be)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    return sql_write_end(err, be, sql_exec(err, c, S_CHANGES_CLEAR));
}

/* ---- metadata --------------------------------------------------------------------------- */

bool sql_metadata_set(StoError *err, void *be, int level, const char *id, const char *name,
                      const char *value)
{
    int64_t internal;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = sql_find_resource(err, c, level, id, &internal, NULL, NULL) &&
              sql_set_meta(err, c, internal, name, value);
    return sql_write_end(err, be, ok);
}

/* Current value (malloc'd, if value) and revision of a metadata item: 1 found, 0 absent,
 * -1 error. */
static int meta_lookup(StoError *err, SqlConn *c, int64_t internal, const char *name,
                       char **value, int64_t *revision)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_META_LOOKUP);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, internal);
    sql_bind_text(s, 2, name);
    int rc = sqlite3_step(s), found = -1;
    if (rc == SQLITE_ROW) {
        if (revision)
            *revision = sqlite3_column_int64(s, 1);
        found = 1;
        if (value && !(*value = sql_dup_col(s, 0))) {
            sql_nomem(err);
            found = -1;
        }
    } else if (rc == SQLITE_DONE) {
        found = 0;
    } else {
        sql_fail(err, c, "metadata");
    }
    sqlite3_reset(s);
    return found;
}

bool sql_metadata_get(StoError *err, void *be, int level, const char *id, const char *name,
                      char **value, int64_t *revision)
{
    int64_t internal;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = false;
    if (sql_find_resource(err, c, level, id, &internal, NULL, NULL)) {
        int r = meta_lookup(err, c, internal, name, value, revision);
        if (r == 0)
            sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", name, id);
        ok = r == 1;
    }
    ok = sql_read_end(err, be, c, ok);
    if (!ok) {
        free(*value);
        *value = NULL;
    }
    return ok;
}

bool sql_metadata_put(StoError *err, void *be, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, int64_t *revision)
{
    int64_t internal, rev = 0;
    bool ok = false;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    if (!sql_find_resource(err, c, level, id, &internal, NULL, NULL))
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
    if (!sql_set_meta(err, c, internal, name, value))
        goto out;
    sqlite3_stmt *s = sql_stmt(err, c, S_SET_META_REV);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    sql_bind_text(s, 2, name);
    sqlite3_bind_int64(s, 3, rev);
    if (!sql_run(err, c, s, "metadata revision"))
        goto out;
    if (revision)
        *revision = rev;
    ok = true;
out:
    return sql_write_end(err, be, ok);
}

bool sql_metadata_remove(StoError *err, void *be, int level, const char *id, const char *name,
                         int64_t if_match)
{
    int64_t internal, rev = 0;
    bool ok = false;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    if (!sql_find_resource(err, c, level, id, &internal, NULL, NULL))
        goto out;
    int r = meta_lookup(err, c, internal, name, NULL, &rev);
    if (r < 0)
        goto out;
    if (r == 0) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", name, id);
        goto out;
    }
    if (if_match >= 0 && rev != if_match) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of %s is not %lld", name,
                    (long long)if_match);
        goto out;
    }
    sqlite3_stmt *s = sql_stmt(err, c, S_DELETE_META);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    sql_bind_text(s, 2, name);
    /* the revision row stays until the next put, which starts the item again at 0 */
    ok = sql_run(err, c, s, "delete metadata");
out:
    return sql_write_end(err, be, ok);
}

bool sql_attachment_set_md5(StoError *err, void *be, const char *uuid, const char *md5)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = sql_stmt(err, c, S_SET_MD5);
    if (s) {
        sql_bind_text(s, 1, uuid);
        sql_bind_text(s, 2, md5);
        ok = sql_run(err, c, s, "set MD5");
    }
    return sql_write_end(err, be, ok);
}

/* ---- protected patients and the recycling order (MaximumStorageSize, MaximumPatientCount) */

bool sql_patient_set_protected(StoError *err, void *be, const char *patient_id, bool on)
{
    int64_t internal;
    bool ok = false;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    if (sql_find_resource(err, c, IDX_PATIENT, patient_id, &internal, NULL, NULL)) {
        sqlite3_stmt *s = sql_stmt(err, c, on ? S_PROTECT : S_UNPROTECT);
        if (s) {
            sqlite3_bind_int64(s, 1, internal);
            ok = sql_run(err, c, s, "protect");
        }
    }
    return sql_write_end(err, be, ok);
}

bool sql_patient_is_protected(StoError *err, void *be, const char *patient_id, bool *out)
{
    int64_t internal;
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    if (sql_find_resource(err, c, IDX_PATIENT, patient_id, &internal, NULL, NULL)) {
        sqlite3_stmt *s = sql_stmt(err, c, S_IS_PROTECTED);
        if (s) {
            sqlite3_bind_int64(s, 1, internal);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
                *out = rc == SQLITE_ROW;
                ok = true;
            } else {
                sql_fail(err, c, "protected");
            }
            sqlite3_reset(s);
        }
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_oldest_patient(StoError *err, void *be, const char *exclude_id, char out[IDX_ID_LEN],
                        bool *found)
{
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_OLDEST_PATIENT);
    if (s) {
        sql_bind_text(s, 1, exclude_id);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            sql_copy_col(out, IDX_ID_LEN, s, 0);
            *found = true;
            ok = true;
        } else if (rc == SQLITE_DONE) {
            ok = true;
        } else {
            sql_fail(err, c, "oldest patient");
        }
        sqlite3_reset(s);
    }
    return sql_read_end(err, be, c, ok);
}

/* ---- jobs ------------------------------------------------------------------------------- */

bool sql_job_save(StoError *err, void *be, const char *job_id, const char *json)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = sql_stmt(err, c, S_JOB_SAVE);
    if (s) {
        sql_bind_text(s, 1, job_id);
        sql_bind_text(s, 2, json);
        ok = sql_run(err, c, s, "save job");
    }
    return sql_write_end(err, be, ok);
}

bool sql_job_delete(StoError *err, void *be, const char *job_id)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = sql_stmt(err, c, S_JOB_DELETE);
    if (s) {
        sql_bind_text(s, 1, job_id);
        ok = sql_run(err, c, s, "delete job");
    }
    return sql_write_end(err, be, ok);
}

bool sql_jobs_load(StoError *err, void *be, char ***rows_out, size_t *n)
{
    char **rows = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_JOBS_LOAD);
    if (!s)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&rows, &cap, len + 1, sizeof *rows)) {
            sql_nomem(err);
            goto out;
        }
        rows[len] = sql_dup_col(s, 0);
        rows[len + 1] = sql_dup_col(s, 1);
        len += 2;
        if (!rows[len - 2] || !rows[len - 1]) {
            sql_nomem(err);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        sql_fail(err, c, "load jobs");
        goto out;
    }
    ok = true;
out:
    if (s)
        sqlite3_reset(s);
    ok = sql_read_end(err, be, c, ok);
    if (ok) {
        *rows_out = rows;
        *n = len;
    } else {
        idx_strings_free(rows, len);
    }
    return ok;
}
