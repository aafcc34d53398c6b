/* store.c -- the SQLite backend's write path: pending uuids, storing an instance, deleting a
 * resource.
 *
 * DESIGN
 * Pending uuids. A file exists before its row. The ingest path notes the uuid as pending
 * (idx_pending_add), writes the file, then sql_store_instance clears the uuid in the same
 * transaction that adds the attachment row. A delete (or an overwrite) moves the uuids of the
 * rows it removes into pending in its transaction; the caller clears them after unlinking the
 * files. So after any crash, the only files that may be orphans (or rows that may miss their
 * file) are the pending ones: start-up checks idx_pending_list(), never the storage area.
 *
 * The hot path (idx_pending_add + idx_store_instance) runs only cached statements: usually
 * one lookup of the instance, one of its series, then inserts.
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers used by other files too ---------------------------------------------- */

bool sql_pending_op(StoError *err, SqlConn *c, SqlStmt which, const char *uuid)
{
    sqlite3_stmt *s = sql_stmt(err, c, which);
    if (!s)
        return false;
    sql_bind_text(s, 1, uuid);
    return sql_run(err, c, s, "pending");
}

bool sql_insert_change(StoError *err, SqlConn *c, const char *type, int level, const char *id,
                       const char *date, int64_t *seq)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_INSERT_CHANGE);
    if (!s)
        return false;
    sql_bind_text(s, 1, type);
    sqlite3_bind_int(s, 2, level);
    sql_bind_text(s, 3, id);
    sql_bind_text(s, 4, date);
    if (!sql_run(err, c, s, "log change"))
        return false;
    if (seq)
        *seq = sqlite3_last_insert_rowid(c->db);
    return true;
}

bool sql_set_meta(StoError *err, SqlConn *c, int64_t internal, const char *name,
                  const char *value)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_SET_META);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    sql_bind_text(s, 2, name);
    sql_bind_text(s, 3, value ? value : "");
    return sql_run(err, c, s, "set metadata");
}

bool sql_totals_add(StoError *err, SqlConn *c, const int64_t d[IDX_LEVELS], int64_t size)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_TOTALS_ADD);
    if (!s)
        return false;
    for (int i = 0; i < IDX_LEVELS; i++)
        sqlite3_bind_int64(s, i + 1, d[i]);
    sqlite3_bind_int64(s, 5, size);
    return sql_run(err, c, s, "update totals");
}

static bool insert_tags(StoError *err, SqlConn *c, int64_t internal, const IdxTag *tags,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = sql_stmt(err, c, S_INSERT_TAG);
        if (!s)
            return false;
        sqlite3_bind_int64(s, 1, internal);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)tags[i].tag);
        sql_bind_text(s, 3, tags[i].value ? tags[i].value : "");
        if (!sql_run(err, c, s, "insert tag"))
            return false;
    }
    return true;
}

static bool insert_metas(StoError *err, SqlConn *c, int64_t internal, const IdxMeta *meta,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!sql_set_meta(err, c, internal, meta[i].name, meta[i].value))
            return false;
    }
    return true;
}

/* Runs a cached statement whose only parameter is an internal ID. */
static bool run_on(StoError *err, SqlConn *c, SqlStmt which, int64_t internal, const char *what)
{
    sqlite3_stmt *s = sql_stmt(err, c, which);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    return sql_run(err, c, s, what);
}

/* ---- pending ---------------------------------------------------------------------------- */

bool sql_pending_add(StoError *err, void *be, const char *uuid)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    return sql_write_end(err, be, sql_pending_op(err, c, S_PENDING_ADD, uuid));
}

bool sql_pending_clear(StoError *err, void *be, const char *const *uuids, size_t n)
{
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = sql_pending_op(err, c, S_PENDING_DEL, uuids[i]);
    return sql_write_end(err, be, ok);
}

bool sql_pending_list(StoError *err, void *be, IdxPending **uuids, size_t *n)
{
    IdxPending *arr = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_PENDING_LIST);
    if (!s)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&arr, &cap, len, sizeof *arr)) {
            sql_nomem(err);
            goto out;
        }
        sql_copy_col(arr[len].uuid, sizeof arr[len].uuid, s, 0);
        arr[len].referenced = sqlite3_column_int(s, 1) != 0;
        len++;
    }
    if (rc != SQLITE_DONE) {
        sql_fail(err, c, "pending list");
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
    return sql_read_end(err, be, c, ok);
}

/* ---- store ------------------------------------------------------------------------------ */

static bool delete_subtree(StoError *err, SqlConn *c, int64_t internal, int lv, int64_t parent,
                           IdxDeleteResult *out);

/* Inserts a resource row under parent (-1: none); *internal is its new internal ID. */
static bool insert_resource(StoError *err, SqlConn *c, int level, const char *id,
                            int64_t parent, int64_t *internal)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_INSERT_RESOURCE);
    if (!s)
        return false;
    sqlite3_bind_int(s, 1, level);
    sql_bind_text(s, 2, id);
    if (parent < 0)
        sqlite3_bind_null(s, 3);
    else
        sqlite3_bind_int64(s, 3, parent);
    if (!sql_run(err, c, s, "insert resource"))
        return false;
    *internal = sqlite3_last_insert_rowid(c->db);
    return true;
}

/* Creates the missing patient/study/series rows (with their main tags) and the instance row;
 * fills ids[], out->created[] and the count deltas. */
static bool create_levels(StoError *err, SqlConn *c, const IdxNewInstance *in,
                          int64_t ids[IDX_LEVELS], IdxStoreResult *out,
                          int64_t delta[IDX_LEVELS])
{
    int lv, r;
    /* The deepest existing ancestor: usually the series, one lookup. */
    int first_missing = IDX_PATIENT;
    for (int l = IDX_SERIES; l >= IDX_PATIENT; l--) {
        r = sql_lookup(err, c, in->ids[l], &ids[l], &lv, NULL);
        if (r < 0)
            return false;
        if (r == 1) {
            if (lv != l) {
                sto_set_err(err, STO_ERR_ARG, "ID %s belongs to a %s", in->ids[l],
                            idx_level_name(lv));
                return false;
            }
            first_missing = l + 1;
            break;
        }
    }
    for (int l = IDX_PATIENT; l < IDX_INSTANCE; l++) {
        if (l < first_missing) {
            if (ids[l] < 0 && (r = sql_lookup(err, c, in->ids[l], &ids[l], &lv, NULL)) != 1) {
                if (r == 0)
                    sto_set_err(err, STO_ERR_DB, "missing %s %s", idx_level_name(l), in->ids[l]);
                return false;
            }
            continue;
        }
        if (!insert_resource(err, c, l, in->ids[l], l == IDX_PATIENT ? -1 : ids[l - 1], &ids[l]))
            return false;
        out->created[l] = true;
        delta[l] = 1;
        if (!insert_tags(err, c, ids[l], in->tags[l], in->ntags[l]))
            return false;
    }
    if (!insert_resource(err, c, IDX_INSTANCE, in->ids[IDX_INSTANCE], ids[IDX_SERIES],
                         &ids[IDX_INSTANCE]))
        return false;
    out->created[IDX_INSTANCE] = true;
    delta[IDX_INSTANCE] = 1;
    return true;
}

/* Instance tags and attachment; then metadata of every level, like Orthanc: LastUpdate on
 * patient, study and series, then the provided metadata of each level (so a provided value
 * wins), on existing levels as well as created ones. */
static bool write_instance_data(StoError *err, SqlConn *c, const IdxNewInstance *in,
                                const int64_t ids[IDX_LEVELS], const char *now)
{
    if (!insert_tags(err, c, ids[IDX_INSTANCE], in->tags[IDX_INSTANCE], in->ntags[IDX_INSTANCE]))
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_INSERT_ATTACHMENT);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, ids[IDX_INSTANCE]);
    sql_bind_text(s, 2, in->uuid);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)in->size);
    sql_bind_text(s, 4, in->md5);
    if (!sql_run(err, c, s, "insert attachment"))
        return false;
    for (int l = IDX_PATIENT; l <= IDX_INSTANCE; l++) {
        if (l != IDX_INSTANCE && !sql_set_meta(err, c, ids[l], "LastUpdate", now))
            return false;
        if (!insert_metas(err, c, ids[l], in->meta[l], in->nmeta[l]))
            return false;
    }
    return true;
}

bool sql_store_instance(StoError *err, void *be, const IdxNewInstance *in, IdxStoreResult *out)
{
    int64_t ids[IDX_LEVELS] = {-1, -1, -1, -1};
    int64_t delta[IDX_LEVELS] = {0, 0, 0, 0};
    int64_t size_delta = (int64_t)in->size;
    char now[16];
    bool ok = false;
    int lv;

    idx_now(now);
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;

    int64_t parent = -1;
    int r = sql_lookup(err, c, in->ids[IDX_INSTANCE], &ids[IDX_INSTANCE], &lv, &parent);
    if (r < 0)
        goto out;
    if (r == 1 && lv != IDX_INSTANCE) {
        sto_set_err(err, STO_ERR_ARG, "ID %s belongs to a %s", in->ids[IDX_INSTANCE],
                    idx_level_name(lv));
        goto out;
    }
    if (r == 1 && !in->overwrite) {
        out->already_stored = true;
        ok = true; /* nothing changed; the new uuid stays pending for the caller to clear */
        goto out;
    }
    if (r == 1) {
        /* Overwrite, as Orthanc: the old instance is deleted (with the parents it leaves
         * empty, their changes and attachments) in this same transaction, then stored anew,
         * so New* changes are logged again. */
        IdxDeleteResult d = { 0 };
        if (!delete_subtree(err, c, ids[IDX_INSTANCE], IDX_INSTANCE, parent, &d)) {
            free(d.files);
            goto out;
        }
        out->old_files = d.files;
        out->nold_files = d.nfiles;
    }
    if (!create_levels(err, c, in, ids, out, delta))
        goto out;
    if (!write_instance_data(err, c, in, ids, now))
        goto out;

    /* Changes: NewInstance, then the created levels bottom-up. */
    if (!sql_insert_change(err, c, "NewInstance", IDX_INSTANCE, in->ids[IDX_INSTANCE], now,
                           &out->change_seq))
        goto out;
    static const char *const NEW[IDX_LEVELS] = {"NewPatient", "NewStudy", "NewSeries", NULL};
    for (int l = IDX_SERIES; l >= IDX_PATIENT; l--) {
        if (out->created[l] && !sql_insert_change(err, c, NEW[l], l, in->ids[l], now, NULL))
            goto out;
    }
    if (!sql_totals_add(err, c, delta, size_delta))
        goto out;
    if (!sql_pending_op(err, c, S_PENDING_DEL, in->uuid))
        goto out;
    ok = true;
out:
    ok = sql_write_end(err, be, ok);
    if (!ok) {
        free(out->old_files);
        out->old_files = NULL;
        out->nold_files = 0;
    }
    return ok;
}

/* ---- delete ----------------------------------------------------------------------------- */

/* The parent row of a resource being deleted: its level, public ID, own parent (-1: none)
 * and whether it has other children than the one being deleted. */
static bool parent_info(StoError *err, SqlConn *c, int64_t parent, int *plevel,
                        char pid[IDX_ID_LEN], int64_t *grandparent, bool *has_others)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_COUNT_CHILDREN);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, parent);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sql_fail(err, c, "count children");
        sqlite3_reset(s);
        return false;
    }
    *has_others = sqlite3_column_int64(s, 0) > 1;
    sqlite3_reset(s);

    if (!(s = sql_stmt(err, c, S_GET_RESOURCE_BY_INTERNAL)))
        return false;
    sqlite3_bind_int64(s, 1, parent);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sql_fail(err, c, "parent");
        sqlite3_reset(s);
        return false;
    }
    *plevel = sqlite3_column_int(s, 0);
    sql_copy_col(pid, IDX_ID_LEN, s, 1);
    *grandparent = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    return true;
}

/* Deletes a resource and the ancestors it leaves empty inside the caller's transaction: the
 * changes of every row removed, the rows (foreign keys cascade), totals; the files of every
 * instance and the user attachments go pending and are listed in out->files (malloc'd, the
 * caller frees it also on failure). */
static bool delete_subtree(StoError *err, SqlConn *c, int64_t internal, int lv, int64_t parent,
                           IdxDeleteResult *out)
{
    int64_t counts[IDX_LEVELS], size = 0;
    out->remaining_level = -1;
    if (!sql_collect_instances(err, c, internal, lv, &out->files, &out->nfiles) ||
        !sql_subtree_counts(err, c, internal, lv, counts, &size))
        return false;

    /* Climb while the parent has no other child: it goes too. */
    int64_t top = internal;
    while (parent >= 0) {
        int plevel;
        char pid[IDX_ID_LEN];
        int64_t grandparent;
        bool has_others;
        if (!parent_info(err, c, parent, &plevel, pid, &grandparent, &has_others))
            return false;
        if (has_others) {
            out->remaining_level = plevel;
            snprintf(out->remaining_id, sizeof out->remaining_id, "%s", pid);
            break;
        }
        if (plevel >= 0 && plevel < IDX_LEVELS)
            counts[plevel]++;
        top = parent;
        parent = grandparent;
    }

    /* The user-defined attachments of every row removed join the files to remove. */
    if (!sql_attachment_collect(err, c, top, &out->files, &out->nfiles))
        return false;
    /* As Orthanc, the changes of every resource removed go (none is logged for the delete);
     * then one DELETE: foreign keys cascade to descendants, tags, metadata and attachments. */
    if (!run_on(err, c, S_DELETE_SUBTREE_CHANGES, top, "delete changes") ||
        !run_on(err, c, S_DELETE_RESOURCE, top, "delete"))
        return false;
    for (size_t i = 0; i < out->nfiles; i++) {
        if (!sql_pending_op(err, c, S_PENDING_ADD, out->files[i].uuid))
            return false;
    }
    for (int i = 0; i < IDX_LEVELS; i++)
        counts[i] = -counts[i];
    return sql_totals_add(err, c, counts, -size);
}

bool sql_delete_resource(StoError *err, void *be, int level, const char *id,
                         IdxDeleteResult *out)
{
    int64_t internal, parent;
    int lv;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = sql_find_resource(err, c, level, id, &internal, &lv, &parent) &&
              delete_subtree(err, c, internal, lv, parent, out);
    ok = sql_write_end(err, be, ok);
    if (!ok) {
        free(out->files);
        out->files = NULL;
        out->nfiles = 0;
    }
    return ok;
}

/* ---- reconstruct: main tags replaced ---------------------------------------------------- */

bool sql_set_main_tags(StoError *err, void *be, int level, const char *id, const IdxTag *tags,
                       size_t n)
{
    int64_t internal;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    bool ok = sql_find_resource(err, c, level, id, &internal, NULL, NULL) &&
              run_on(err, c, S_DELETE_TAGS, internal, "delete tags") &&
              insert_tags(err, c, internal, tags, n);
    return sql_write_end(err, be, ok);
}
