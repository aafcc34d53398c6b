/* read.c -- the SQLite backend's reads: one resource with its tags, children, metadata and
 * attachment; lists of a level; the instances under a resource; counts; running totals.
 * Each call is one read transaction on a pooled reader (one snapshot).
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool read_tags(StoError *err, SqlConn *c, IdxResource *r)
{
    size_t cap_k = 0, cap_v = 0;
    sqlite3_stmt *s = sql_stmt(err, c, S_GET_TAGS);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&r->tag_keys, &cap_k, r->ntags, sizeof *r->tag_keys) ||
            !idx_grow((void **)&r->tag_values, &cap_v, r->ntags, sizeof *r->tag_values))
            goto nomem;
        char *v = sql_dup_col(s, 1);
        if (!v)
            goto nomem;
        r->tag_keys[r->ntags] = (uint32_t)sqlite3_column_int64(s, 0);
        r->tag_values[r->ntags++] = v;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE || sql_fail(err, c, "read tags");
nomem:
    sqlite3_reset(s);
    return sql_nomem(err);
}

static bool read_children(StoError *err, SqlConn *c, IdxResource *r)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_GET_CHILDREN);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    bool ok = sql_step_strings(err, c, s, "read children", &r->children, &r->nchildren);
    sqlite3_reset(s);
    return ok;
}

static bool read_meta(StoError *err, SqlConn *c, IdxResource *r)
{
    size_t cap_n = 0, cap_v = 0;
    sqlite3_stmt *s = sql_stmt(err, c, S_GET_META);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&r->meta_names, &cap_n, r->nmeta, sizeof *r->meta_names) ||
            !idx_grow((void **)&r->meta_values, &cap_v, r->nmeta, sizeof *r->meta_values))
            goto nomem;
        char *name = sql_dup_col(s, 0);
        char *value = sql_dup_col(s, 1);
        if (!name || !value) {
            free(name);
            free(value);
            goto nomem;
        }
        r->meta_names[r->nmeta] = name;
        r->meta_values[r->nmeta++] = value;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE || sql_fail(err, c, "read metadata");
nomem:
    sqlite3_reset(s);
    return sql_nomem(err);
}

static bool read_attachment(StoError *err, SqlConn *c, IdxResource *r)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_GET_ATTACHMENT);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        sql_copy_col(r->uuid, sizeof r->uuid, s, 0);
        r->file_size = (uint64_t)sqlite3_column_int64(s, 1);
        sql_copy_col(r->md5, sizeof r->md5, s, 2);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE || sql_fail(err, c, "get attachment");
}

/* The row of id: internal ID, level, parent's public ID. NOT_FOUND if absent or of another
 * level than asked. */
static bool read_row(StoError *err, SqlConn *c, int level, const char *id, IdxResource *r)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_LOOKUP_FULL);
    if (!s)
        return false;
    sql_bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->internal_id = sqlite3_column_int64(s, 0);
        r->level = sqlite3_column_int(s, 1);
        sql_copy_col(r->parent_id, sizeof r->parent_id, s, 2);
        snprintf(r->id, sizeof r->id, "%s", id);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown resource %s", id);
        return false;
    }
    if (rc != SQLITE_ROW)
        return sql_fail(err, c, "lookup");
    if (level != -1 && r->level != level) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(level), id);
        return false;
    }
    return true;
}

bool sql_resource_get(StoError *err, void *be, int level, const char *id, IdxResource *out)
{
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = read_row(err, c, level, id, out) && read_tags(err, c, out) &&
              read_meta(err, c, out) &&
              (out->level != IDX_INSTANCE ? read_children(err, c, out)
                                          : read_attachment(err, c, out));
    ok = sql_read_end(err, be, c, ok);
    if (!ok)
        idx_resource_cleanup(out);
    return ok;
}

static bool count_children(StoError *err, SqlConn *c, IdxResource *r)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_NUM_CHILDREN);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, r->internal_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        r->nchildren = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || sql_fail(err, c, "count children");
}

bool sql_resources_get(StoError *err, void *be, int level, const char *const *ids, size_t n,
                       unsigned what, IdxResource *out)
{
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        IdxResource *r = &out[i];
        StoError e = {0};
        if (!ids[i] || !read_row(&e, c, level, ids[i], r)) {
            idx_resource_cleanup(r);
            if (ids[i] && e.code != STO_ERR_NOT_FOUND) {
                *err = e;
                ok = false;
            }
            continue; /* absent: left zeroed */
        }
        ok = (!(what & IDX_GET_TAGS) || read_tags(err, c, r)) &&
             (!(what & IDX_GET_META) || read_meta(err, c, r));
        if (ok && level != IDX_INSTANCE) {
            if (what & IDX_GET_CHILDREN)
                ok = read_children(err, c, r);
            else if (what & IDX_GET_NCHILDREN)
                ok = count_children(err, c, r);
        }
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_list(StoError *err, void *be, int level, uint64_t since, uint64_t limit, char ***ids,
              size_t *n)
{
    bool ok = false;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    sqlite3_stmt *s = sql_stmt(err, c, S_LIST);
    if (s) {
        sqlite3_bind_int(s, 1, level);
        sqlite3_bind_int64(s, 2, limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit);
        sqlite3_bind_int64(s, 3, since > INT64_MAX ? INT64_MAX : (sqlite3_int64)since);
        ok = sql_step_strings(err, c, s, "list", ids, n);
        sqlite3_reset(s);
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_collect_instances(StoError *err, SqlConn *c, int64_t internal, int level,
                           IdxFile **files, size_t *n)
{
    IdxFile *arr = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s = sql_stmt(err, c, S_INSTANCES_OF);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, level);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!idx_grow((void **)&arr, &cap, len, sizeof *arr)) {
            sqlite3_reset(s);
            free(arr);
            return sql_nomem(err);
        }
        sql_copy_col(arr[len].id, sizeof arr[len].id, s, 0);
        sql_copy_col(arr[len].uuid, sizeof arr[len].uuid, s, 1);
        arr[len].size = (uint64_t)sqlite3_column_int64(s, 2);
        len++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(arr);
        return sql_fail(err, c, "instances");
    }
    *files = arr;
    *n = len;
    return true;
}

bool sql_instances_of(StoError *err, void *be, int level, const char *id, IdxFile **files,
                      size_t *n)
{
    int64_t internal;
    int lv;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = sql_find_resource(err, c, level, id, &internal, &lv, NULL) &&
              sql_collect_instances(err, c, internal, lv, files, n);
    ok = sql_read_end(err, be, c, ok);
    if (!ok)
        free(*files);
    return ok;
}

bool sql_subtree_counts(StoError *err, SqlConn *c, int64_t internal, int level,
                        int64_t counts[IDX_LEVELS], int64_t *size)
{
    sqlite3_stmt *s = sql_stmt(err, c, S_COUNTS);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, internal);
    sqlite3_bind_int(s, 2, level);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sql_fail(err, c, "counts");
        sqlite3_reset(s);
        return false;
    }
    for (int i = 0; i < IDX_LEVELS; i++)
        counts[i] = sqlite3_column_int64(s, i);
    *size = sqlite3_column_int64(s, 4);
    sqlite3_reset(s);
    return true;
}

bool sql_resource_counts(StoError *err, void *be, int level, const char *id, IdxCounts *out)
{
    int64_t internal, counts[IDX_LEVELS], size = 0;
    int lv;
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = sql_find_resource(err, c, level, id, &internal, &lv, NULL) &&
              sql_subtree_counts(err, c, internal, lv, counts, &size);
    if (ok) {
        out->studies = (uint64_t)counts[IDX_STUDY];
        out->series = (uint64_t)counts[IDX_SERIES];
        out->instances = (uint64_t)counts[IDX_INSTANCE];
        out->disk_size = (uint64_t)size;
    }
    return sql_read_end(err, be, c, ok);
}

bool sql_totals(StoError *err, void *be, IdxTotals *out)
{
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    bool ok = false;
    sqlite3_stmt *s = sql_stmt(err, c, S_TOTALS_GET);
    if (s) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            for (int i = 0; i < IDX_LEVELS; i++)
                out->count[i] = (uint64_t)sqlite3_column_int64(s, i);
            out->disk_size = (uint64_t)sqlite3_column_int64(s, 4);
            out->uncompressed_size = (uint64_t)sqlite3_column_int64(s, 5);
            ok = true;
        } else {
            sql_fail(err, c, "totals");
        }
        sqlite3_reset(s);
    }
    return sql_read_end(err, be, c, ok);
}
