/* attach.c -- the PostgreSQL backend's user-defined attachments (table user_attachments,
 * schema revision 2): put with revisions and pending uuids in one transaction (the row locked
 * by the lookup so two puts serialize), get, list, remove, and the collection of a subtree's
 * attachment files for delete (store.c). */
#include "storage/pg/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct AttCtx {
    int level;
    const char *id;
    int type;
    const IdxAttachment *in;
    int64_t if_match;
    int64_t *revision;
    char *old_uuid;
    IdxAttachment *out;
    int **types;
    size_t *n;
} AttCtx;

/* 1 found (into out), 0 absent, -1 error. */
static int lookup(StoError *err, PgConn *c, const char *num, int type, IdxAttachment *out)
{
    char t[16];
    snprintf(t, sizeof t, "%d", type);
    const char *p[2] = {num, t};
    PGresult *r = pg_run(err, c, P_UATT_GET, 2, p);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found) {
        out->content_type = (int)pg_int(r, 0, 0);
        pg_copy(out->uuid, sizeof out->uuid, r, 0, 1);
        out->compressed_size = (uint64_t)pg_int(r, 0, 2);
        out->uncompressed_size = (uint64_t)pg_int(r, 0, 3);
        pg_copy(out->compressed_md5, sizeof out->compressed_md5, r, 0, 4);
        pg_copy(out->uncompressed_md5, sizeof out->uncompressed_md5, r, 0, 5);
        out->compression = (int)pg_int(r, 0, 6);
        out->revision = pg_int(r, 0, 7);
    }
    PQclear(r);
    return found;
}

/* Finds the resource (its row locked for writers) into num. */
static bool find(StoError *err, PgConn *c, AttCtx *a, char num[24], bool lock)
{
    int64_t internal;
    if (!pg_find_resource(err, c, a->level, a->id, &internal, NULL, NULL))
        return false;
    snprintf(num, 24, "%lld", (long long)internal);
    if (!lock)
        return true;
    const char *p[1] = {num};
    PGresult *r = pg_run(err, c, P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE, 1, p);
    if (!r)
        return false;
    bool gone = PQntuples(r) == 0;
    PQclear(r);
    if (gone)
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(a->level), a->id);
    return !gone;
}

static bool put_once(StoError *err, PgConn *c, void *ctx)
{
    AttCtx *a = ctx;
    char num[24];
    IdxAttachment old = {0};
    a->old_uuid[0] = '\0';
    if (!find(err, c, a, num, true))
        return false;
    int r = lookup(err, c, num, a->in->content_type, &old);
    if (r < 0)
        return false;
    if (a->if_match >= 0 && (r == 0 || old.revision != a->if_match)) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of attachment %d is %s, not %lld",
                    a->in->content_type, r == 0 ? "none (absent)" : "another",
                    (long long)a->if_match);
        return false;
    }
    int64_t rev = r == 1 ? old.revision + 1 : 0;
    char type[16], cs[24], us[24], comp[8], rv[24];
    snprintf(type, sizeof type, "%d", a->in->content_type);
    snprintf(cs, sizeof cs, "%llu", (unsigned long long)a->in->compressed_size);
    snprintf(us, sizeof us, "%llu", (unsigned long long)a->in->uncompressed_size);
    snprintf(comp, sizeof comp, "%d", a->in->compression);
    snprintf(rv, sizeof rv, "%lld", (long long)rev);
    const char *p[9] = {num, type, a->in->uuid, cs, us, a->in->compressed_md5,
                        a->in->uncompressed_md5, comp, rv};
    const char *pu[1] = {a->in->uuid};
    if (!pg_do(err, c, P_UATT_PUT, 9, p) || !pg_do(err, c, P_PENDING_DEL, 1, pu))
        return false;
    if (r == 1 && strcmp(old.uuid, a->in->uuid)) {
        const char *po[2] = {old.uuid, c->owner->owner_text};
        if (!pg_do(err, c, P_PENDING_ADD, 2, po))
            return false;
        snprintf(a->old_uuid, STO_UUID_LEN, "%s", old.uuid);
    }
    *a->revision = rev;
    return true;
}

bool pg_attachment_put(StoError *err, void *be, int level, const char *id,
                       const IdxAttachment *in, int64_t if_match, int64_t *revision,
                       char old_uuid[STO_UUID_LEN])
{
    AttCtx a = {.level = level, .id = id, .in = in, .if_match = if_match, .revision = revision,
                .old_uuid = old_uuid};
    return pg_tx(err, be, true, put_once, &a);
}

static bool get_once(StoError *err, PgConn *c, void *ctx)
{
    AttCtx *a = ctx;
    char num[24];
    memset(a->out, 0, sizeof *a->out);
    if (!find(err, c, a, num, false))
        return false;
    int r = lookup(err, c, num, a->type, a->out);
    if (r == 0)
        sto_set_err(err, STO_ERR_NOT_FOUND, "no attachment %d on %s", a->type, a->id);
    return r == 1;
}

bool pg_attachment_get(StoError *err, void *be, int level, const char *id, int content_type,
                       IdxAttachment *out)
{
    AttCtx a = {.level = level, .id = id, .type = content_type, .out = out};
    return pg_tx(err, be, true, get_once, &a);
}

static bool list_once(StoError *err, PgConn *c, void *ctx)
{
    AttCtx *a = ctx;
    char num[24];
    free(*a->types);
    *a->types = NULL;
    *a->n = 0;
    if (!find(err, c, a, num, false))
        return false;
    const char *p[1] = {num};
    PGresult *r = pg_run(err, c, P_UATT_LIST, 1, p);
    if (!r)
        return false;
    int rows = PQntuples(r);
    if (rows && !(*a->types = malloc((size_t)rows * sizeof **a->types))) {
        PQclear(r);
        return pg_nomem(err);
    }
    for (int i = 0; i < rows; i++)
        (*a->types)[i] = (int)pg_int(r, i, 0);
    *a->n = (size_t)rows;
    PQclear(r);
    return true;
}

bool pg_attachment_list(StoError *err, void *be, int level, const char *id, int **types,
                        size_t *n)
{
    AttCtx a = {.level = level, .id = id, .types = types, .n = n};
    bool ok = pg_tx(err, be, true, list_once, &a);
    if (!ok) {
        free(*types);
        *types = NULL;
        *n = 0;
    }
    return ok;
}

static bool remove_once(StoError *err, PgConn *c, void *ctx)
{
    AttCtx *a = ctx;
    char num[24];
    IdxAttachment old = {0};
    a->old_uuid[0] = '\0';
    if (!find(err, c, a, num, true))
        return false;
    int r = lookup(err, c, num, a->type, &old);
    if (r <= 0) {
        if (r == 0)
            sto_set_err(err, STO_ERR_NOT_FOUND, "no attachment %d on %s", a->type, a->id);
        return false;
    }
    if (a->if_match >= 0 && old.revision != a->if_match) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of attachment %d is not %lld", a->type,
                    (long long)a->if_match);
        return false;
    }
    char type[16];
    snprintf(type, sizeof type, "%d", a->type);
    const char *p[2] = {num, type};
    const char *po[2] = {old.uuid, c->owner->owner_text};
    if (!pg_do(err, c, P_UATT_DEL, 2, p) || !pg_do(err, c, P_PENDING_ADD, 2, po))
        return false;
    snprintf(a->old_uuid, STO_UUID_LEN, "%s", old.uuid);
    return true;
}

bool pg_attachment_remove(StoError *err, void *be, int level, const char *id, int content_type,
                          int64_t if_match, char old_uuid[STO_UUID_LEN])
{
    AttCtx a = {.level = level, .id = id, .type = content_type, .if_match = if_match,
                .old_uuid = old_uuid};
    return pg_tx(err, be, true, remove_once, &a);
}

bool pg_attachment_collect(StoError *err, PgConn *c, int64_t internal, IdxFile **files,
                           size_t *n)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    const char *p[1] = {num};
    PGresult *r = pg_run(err, c, P_UATT_SUBTREE, 1, p);
    if (!r)
        return false;
    int rows = PQntuples(r);
    if (rows) {
        IdxFile *f = realloc(*files, (*n + (size_t)rows) * sizeof *f);
        if (!f) {
            PQclear(r);
            return pg_nomem(err);
        }
        *files = f;
        for (int i = 0; i < rows; i++) {
            IdxFile *x = &f[*n + (size_t)i];
            memset(x, 0, sizeof *x);
            pg_copy(x->uuid, sizeof x->uuid, r, i, 0);
            x->size = (uint64_t)pg_int(r, i, 1);
            pg_copy(x->id, sizeof x->id, r, i, 2);
        }
        *n += (size_t)rows;
    }
    PQclear(r);
    return true;
}
