/* attach.c -- the SQLite backend's user-defined attachments (table user_attachments, schema
 * revision 9): put with revisions and pending uuids in one transaction, get, list, remove,
 * and the collection of a subtree's attachment files for delete (store.c). */
#include "storage/sqlite/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the attachment row of (internal, type): 1 found, 0 absent, -1 error. */
static int uatt_lookup(StoError *err, SqlConn *c, int64_t internal, int type, IdxAttachment *out)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_UATT_GET);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, type);
    int rc = sqlite3_step(s), found = -1;
    if (rc == SQLITE_ROW) {
        out->content_type = sqlite3_column_int(s, 0);
        sql_copy_col(out->uuid, sizeof out->uuid, s, 1);
        out->compressed_size = (uint64_t)sqlite3_column_int64(s, 2);
        out->uncompressed_size = (uint64_t)sqlite3_column_int64(s, 3);
        sql_copy_col(out->compressed_md5, sizeof out->compressed_md5, s, 4);
        sql_copy_col(out->uncompressed_md5, sizeof out->uncompressed_md5, s, 5);
        out->compression = sqlite3_column_int(s, 6);
        out->revision = sqlite3_column_int64(s, 7);
        found = 1;
    } else if (rc == SQLITE_DONE) {
        found = 0;
    } else {
        sql_fail(err, c, "attachment");
    }
    sqlite3_reset(s);
    return found;
}

bool sql_attachment_put(StoError *err, void *be, int level, const char *id,
                        const IdxAttachment *a, int64_t if_match, int64_t *revision,
                        char old_uuid[STO_UUID_LEN])
{
    int64_t internal;
    IdxAttachment old = {0};
    bool ok = false;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    if (!sql_find_resource(err, c, level, id, &internal, NULL, NULL))
        goto out;
    int r = uatt_lookup(err, c, internal, a->content_type, &old);
    if (r < 0)
        goto out;
    if (if_match >= 0 && (r == 0 || old.revision != if_match)) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of attachment %d is %s, not %lld",
                    a->content_type, r == 0 ? "none (absent)" : "another", (long long)if_match);
        goto out;
    }
    int64_t rev = r == 1 ? old.revision + 1 : 0;
    sqlite3_stmt *s = sql_stmt(err, c, S_UATT_PUT);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, a->content_type);
    sql_bind_text(s, 3, a->uuid);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)a->compressed_size);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)a->uncompressed_size);
    sql_bind_text(s, 6, a->compressed_md5);
    sql_bind_text(s, 7, a->uncompressed_md5);
    sqlite3_bind_int(s, 8, a->compression);
    sqlite3_bind_int64(s, 9, rev);
    if (!sql_run(err, c, s, "put attachment") || !sql_pending_op(err, c, S_PENDING_DEL, a->uuid))
        goto out;
    if (r == 1 && strcmp(old.uuid, a->uuid)) {
        if (!sql_pending_op(err, c, S_PENDING_ADD, old.uuid))
            goto out;
        snprintf(old_uuid, STO_UUID_LEN, "%s", old.uuid);
    }
    *revision = rev;
    ok = true;
out:
    return sql_write_end(err, be, ok);
}

bool sql_attachment_get(StoError *err, void *be, int level, const char *id, int content_type,
                        IdxAttachment *out)
{
    int64_t internal;
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    if (sql_find_resource(err, c, level, id, &internal, NULL, NULL)) {
        int r = uatt_lookup(err, c, internal, content_type, out);
        if (r == 0)
            sto_set_err(err, STO_ERR_NOT_FOUND, "no attachment %d on %s", content_type, id);
        ok = r == 1;
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_attachment_list(StoError *err, void *be, int level, const char *id, int **types,
                         size_t *n)
{
    int64_t internal;
    bool ok = false;
    size_t cap = 0;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    if (!sql_find_resource(err, c, level, id, &internal, NULL, NULL))
        goto out;
    sqlite3_stmt *s = sql_stmt(err, c, S_UATT_LIST);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)types, &cap, *n, sizeof **types)) {
            sql_nomem(err);
            sqlite3_reset(s);
            goto out;
        }
        (*types)[(*n)++] = sqlite3_column_int(s, 0);
    }
    if (rc != SQLITE_DONE)
        sql_fail(err, c, "list attachments");
    sqlite3_reset(s);
    ok = rc == SQLITE_DONE;
out:
    if (!ok) {
        free(*types);
        *types = NULL;
        *n = 0;
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_attachment_remove(StoError *err, void *be, int level, const char *id, int content_type,
                           int64_t if_match, char old_uuid[STO_UUID_LEN])
{
    int64_t internal;
    IdxAttachment old = {0};
    bool ok = false;
    SqlConn *c = sql_write_begin(err, be);
    if (!c)
        return false;
    if (!sql_find_resource(err, c, level, id, &internal, NULL, NULL))
        goto out;
    int r = uatt_lookup(err, c, internal, content_type, &old);
    if (r <= 0) {
        if (r == 0)
            sto_set_err(err, STO_ERR_NOT_FOUND, "no attachment %d on %s", content_type, id);
        goto out;
    }
    if (if_match >= 0 && old.revision != if_match) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of attachment %d is not %lld", content_type,
                    (long long)if_match);
        goto out;
    }
    sqlite3_stmt *s = sql_stmt(err, c, S_UATT_DEL);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, content_type);
    if (!sql_run(err, c, s, "remove attachment") || !sql_pending_op(err, c, S_PENDING_ADD, old.uuid))
        goto out;
    snprintf(old_uuid, STO_UUID_LEN, "%s", old.uuid);
    ok = true;
out:
    return sql_write_end(err, be, ok);
}

bool sql_attachment_collect(StoError *err, SqlConn *c, int64_t internal, IdxFile **files,
                            size_t *n)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_UATT_ANY); /* the common case: none at all, no walk */
    if (!s)
        return false;
    int rc = sqlite3_step(s);
    bool any = rc == SQLITE_ROW && sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return sql_fail(err, c, "any attachment");
    if (!any)
        return true;
    if (!(s = sql_stmt(err, c, S_UATT_SUBTREE)))
        return false;
    sqlite3_bind_int64(s, 1, internal);
    size_t cap = *n; /* the array holds exactly *n: grow from there */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n >= cap) {
            size_t ncap = cap ? cap * 2 : 8;
            IdxFile *f = realloc(*files, ncap * sizeof *f);
            if (!f) {
                sqlite3_reset(s);
                return sql_nomem(err);
            }
            *files = f;
            cap = ncap;
        }
        IdxFile *f = &(*files)[(*n)++];
        memset(f, 0, sizeof *f);
        sql_copy_col(f->uuid, sizeof f->uuid, s, 0);
        f->size = (uint64_t)sqlite3_column_int64(s, 1);
        sql_copy_col(f->id, sizeof f->id, s, 2);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE || sql_fail(err, c, "collect attachments");
}
