/* store.c -- the PostgreSQL backend's write path: pending uuids, storing an instance,
 * deleting a resource. Same rules as the SQLite backend (storage/sqlite/store.c); what
 * differs is that several processes may write at once: see pg_int.h.
 *
 * A store is about ten round trips whatever the instance: the four levels are looked up in
 * one statement, tags, metadata and changes of all levels go in one statement each (arrays
 * unnested by the server).
 */
#include "storage/pg/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pending ---------------------------------------------------------------------------- */

typedef struct UuidCtx {
    const char *const *uuids;
    size_t n;
    PgStmt stmt;
} UuidCtx;

static bool run_uuids(StoError *err, PgConn *c, void *ctx)
{
    UuidCtx *u = ctx;
    for (size_t i = 0; i < u->n; i++) {
        const char *p[2] = {u->uuids[i], c->owner->owner_text};
        if (!pg_do(err, c, u->stmt, u->stmt == P_PENDING_ADD ? 2 : 1, p))
            return false;
    }
    return true;
}

bool pg_pending_add(StoError *err, void *be, const char *uuid)
{
    UuidCtx u = {&uuid, 1, P_PENDING_ADD};
    return pg_tx(err, be, false, run_uuids, &u);
}

bool pg_pending_clear(StoError *err, void *be, const char *const *uuids, size_t n)
{
    UuidCtx u = {uuids, n, P_PENDING_DEL};
    return pg_tx(err, be, n > 1, run_uuids, &u);
}

typedef struct PendingList {
    IdxPending *arr;
    size_t n;
} PendingList;

static bool list_pending(StoError *err, PgConn *c, void *ctx)
{
    PendingList *pl = ctx;
    PGresult *r = pg_run(err, c, P_PENDING_LIST, 0, NULL);
    if (!r)
        return false;
    int rows = PQntuples(r);
    free(pl->arr);
    pl->arr = rows ? calloc((size_t)rows, sizeof *pl->arr) : NULL;
    if (rows && !pl->arr) {
        PQclear(r);
        return pg_nomem(err);
    }
    for (int i = 0; i < rows; i++) {
        pg_copy(pl->arr[i].uuid, sizeof pl->arr[i].uuid, r, i, 0);
        pl->arr[i].referenced = strcmp(PQgetvalue(r, i, 1), "t") == 0;
    }
    pl->n = (size_t)rows;
    PQclear(r);
    return true;
}

bool pg_pending_list(StoError *err, void *be, IdxPending **uuids, size_t *n)
{
    PendingList pl = {0};
    if (!pg_tx(err, be, false, list_pending, &pl)) {
        free(pl.arr);
        return false;
    }
    *uuids = pl.arr;
    *n = pl.n;
    return true;
}

/* ---- store ------------------------------------------------------------------------------ */

static bool delete_subtree(StoError *err, PgConn *c, int64_t internal, int lv, int64_t parent,
                           IdxDeleteResult *out);

/* Rows of one multi-row insert: parallel arrays, sent as PostgreSQL array literals. */
typedef struct Rows {
    int64_t *ids;
    const char **a;   /* tag numbers as text, or names */
    const char **b;   /* values */
    char (*num)[12];  /* storage for tag numbers */
    size_t n, cap;
} Rows;

static bool rows_add(Rows *r, int64_t id, const char *a, const char *b)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        int64_t *ids = realloc(r->ids, cap * sizeof *ids);
        if (ids)
            r->ids = ids;
        const char **na = realloc(r->a, cap * sizeof *na);
        if (na)
            r->a = na;
        const char **nb = realloc(r->b, cap * sizeof *nb);
        if (nb)
            r->b = nb;
        if (!ids || !na || !nb)
            return false;
        r->cap = cap;
    }
    r->ids[r->n] = id;
    r->a[r->n] = a;
    r->b[r->n] = b ? b : "";
    r->n++;
    return true;
}

static void rows_free(Rows *r)
{
    free(r->ids);
    free(r->a);
    free(r->b);
    free(r->num);
    memset(r, 0, sizeof *r);
}

/* Sends rows with stmt (three arrays). */
static bool rows_send(StoError *err, PgConn *c, PgStmt stmt, const Rows *r)
{
    if (r->n == 0)
        return true;
    char *ids = pg_int_array(r->ids, r->n);
    char *a = pg_text_array(r->a, r->n);
    char *b = pg_text_array(r->b, r->n);
    bool ok = ids && a && b;
    if (!ok)
        pg_nomem(err);
    else {
        const char *p[3] = {ids, a, b};
        ok = pg_do(err, c, stmt, 3, p);
    }
    free(ids);
    free(a);
    free(b);
    return ok;
}

typedef struct StoreCtx {
    const IdxNewInstance *in;
    IdxStoreResult *out;
    char now[16];
    char (*tagnum)[12]; /* text of every tag number of in, in order */
} StoreCtx;

static bool add_tags(Rows *rows, const StoreCtx *s, int level, int64_t internal)
{
    size_t base = 0;
    for (int l = 0; l < level; l++)
        base += s->in->ntags[l];
    for (size_t i = 0; i < s->in->ntags[level]; i++) {
        if (!rows_add(rows, internal, s->tagnum[base + i], s->in->tags[level][i].value))
            return false;
    }
    return true;
}

static bool insert_resource(StoError *err, PgConn *c, int level, const char *id,
                            int64_t parent, int64_t *internal)
{
    char lv[4], par[24];
    snprintf(lv, sizeof lv, "%d", level);
    snprintf(par, sizeof par, "%lld", (long long)parent);
    const char *p[3] = {lv, id, parent < 0 ? NULL : par};
    PGresult *r = pg_run(err, c, P_INSERT_RESOURCE, 3, p);
    if (!r)
        return false;
    *internal = pg_int(r, 0, 0);
    PQclear(r);
    return true;
}

static bool store_once(StoError *err, PgConn *c, void *ctx)
{
    StoreCtx *s = ctx;
    const IdxNewInstance *in = s->in;
    IdxStoreResult *out = s->out;
    int64_t ids[IDX_LEVELS] = {-1, -1, -1, -1};
    int levels[IDX_LEVELS] = {-1, -1, -1, -1};
    Rows tags = {0}, metas = {0};
    bool ok = false;
    char num[24];
    free(out->old_files);
    memset(out, 0, sizeof *out); /* a retry starts from nothing */

    /* The four levels in one lookup. */
    char *arr = pg_text_array(in->ids, IDX_LEVELS);
    if (!arr)
        return pg_nomem(err);
    const char *p1[1] = {arr};
    PGresult *r = pg_run(err, c, P_LOOKUP_MANY, 1, p1);
    free(arr);
    if (!r)
        return false;
    for (int i = 0; i < PQntuples(r); i++) {
        for (int l = 0; l < IDX_LEVELS; l++) {
            if (strcmp(PQgetvalue(r, i, 0), in->ids[l]) == 0) {
                ids[l] = pg_int(r, i, 1);
                levels[l] = (int)pg_int(r, i, 2);
            }
        }
    }
    PQclear(r);
    for (int l = 0; l < IDX_LEVELS; l++) {
        if (ids[l] >= 0 && levels[l] != l) {
            sto_set_err(err, STO_ERR_ARG, "ID %s belongs to a %s", in->ids[l],
                        idx_level_name(levels[l]));
            return false;
        }
    }
    if (ids[IDX_INSTANCE] >= 0 && !in->overwrite) {
        out->already_stored = true; /* nothing changes; the new uuid stays pending */
        return true;
    }

    if (ids[IDX_INSTANCE] >= 0) {
        /* Overwrite, as Orthanc: the old instance is deleted (with the parents it leaves
         * empty, their changes and attachments) in this transaction, then stored anew, so
         * New* changes are logged again. */
        snprintf(num, sizeof num, "%lld", (long long)ids[IDX_INSTANCE]);
        const char *pi[1] = {num};
        if (!(r = pg_run(err, c, P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE, 1, pi)))
            return false;
        bool gone = PQntuples(r) == 0;
        PQclear(r);
        if (gone) {
            /* deleted by another process since the lookup: retried as a first store */
            snprintf(c->sqlstate, sizeof c->sqlstate, "40001");
            sto_set_err(err, STO_ERR_DB, "instance %s deleted meanwhile", in->ids[IDX_INSTANCE]);
            return false;
        }
        IdxDeleteResult d = {0};
        bool deleted = delete_subtree(err, c, ids[IDX_INSTANCE], IDX_INSTANCE, ids[IDX_SERIES], &d);
        out->old_files = d.files;
        out->nold_files = d.nfiles;
        if (!deleted)
            return false;
        /* the levels below the nearest remaining ancestor are gone: created again below */
        for (int l = d.remaining_level + 1; l < IDX_LEVELS; l++)
            ids[l] = -1;
    }
    /* Create what is missing, top-down. */
    for (int l = IDX_PATIENT; l <= IDX_INSTANCE; l++) {
        if (ids[l] >= 0)
            continue;
        if (!insert_resource(err, c, l, in->ids[l], l == IDX_PATIENT ? -1 : ids[l - 1], &ids[l]))
            goto out;
        out->created[l] = true;
        if (l != IDX_INSTANCE && !add_tags(&tags, s, l, ids[l]))
            goto nomem;
    }
    if (!add_tags(&tags, s, IDX_INSTANCE, ids[IDX_INSTANCE]))
        goto nomem;
    /* Metadata: LastUpdate on patient, study and series, then what was given (a given value
     * wins: duplicates are dropped here, one statement may not touch a row twice). */
    for (int l = IDX_PATIENT; l <= IDX_INSTANCE; l++) {
        bool given_last_update = false;
        for (size_t i = 0; i < in->nmeta[l]; i++) {
            bool later = false;
            for (size_t j = i + 1; j < in->nmeta[l]; j++)
                later |= strcmp(in->meta[l][i].name, in->meta[l][j].name) == 0;
            if (strcmp(in->meta[l][i].name, "LastUpdate") == 0)
                given_last_update = true;
            if (!later && !rows_add(&metas, ids[l], in->meta[l][i].name, in->meta[l][i].value))
                goto nomem;
        }
        if (l != IDX_INSTANCE && !given_last_update && !rows_add(&metas, ids[l], "LastUpdate", s->now))
            goto nomem;
    }
    if (!rows_send(err, c, P_INSERT_TAGS, &tags) || !rows_send(err, c, P_SET_METAS, &metas))
        goto out;

    char size[24];
    snprintf(num, sizeof num, "%lld", (long long)ids[IDX_INSTANCE]);
    snprintf(size, sizeof size, "%llu", (unsigned long long)in->size);
    const char *pa[4] = {num, in->uuid, size, in->md5};
    if (!pg_do(err, c, P_INSERT_ATTACHMENT, 4, pa))
        goto out;

    /* Changes: NewInstance, then the created levels bottom-up. */
    static const char *const NEW[IDX_LEVELS] = {"NewPatient", "NewStudy", "NewSeries",
                                                "NewInstance"};
    const char *types[IDX_LEVELS], *cids[IDX_LEVELS];
    int64_t clev[IDX_LEVELS];
    size_t nch = 0;
    for (int l = IDX_INSTANCE; l >= IDX_PATIENT; l--) {
        if (l == IDX_INSTANCE || out->created[l]) {
            types[nch] = NEW[l];
            cids[nch] = in->ids[l];
            clev[nch++] = l;
        }
    }
    char *ta = pg_text_array(types, nch), *la = pg_int_array(clev, nch),
         *ia = pg_text_array(cids, nch);
    if (!ta || !la || !ia) {
        free(ta);
        free(la);
        free(ia);
        goto nomem;
    }
    const char *pc[4] = {ta, la, ia, s->now};
    r = pg_run(err, c, P_INSERT_CHANGES, 4, pc);
    free(ta);
    free(la);
    free(ia);
    if (!r)
        goto out;
    out->change_seq = pg_int(r, 0, 0);
    PQclear(r);
    const char *pu[1] = {in->uuid};
    ok = pg_do(err, c, P_PENDING_DEL, 1, pu);
    goto out;
nomem:
    pg_nomem(err);
out:
    rows_free(&tags);
    rows_free(&metas);
    return ok;
}

bool pg_store_instance(StoError *err, void *be, const IdxNewInstance *in, IdxStoreResult *out)
{
    StoreCtx s = {.in = in, .out = out};
    idx_now(s.now);
    size_t ntags = 0;
    for (int l = 0; l < IDX_LEVELS; l++)
        ntags += in->ntags[l];
    s.tagnum = malloc((ntags ? ntags : 1) * sizeof *s.tagnum);
    if (!s.tagnum)
        return pg_nomem(err);
    size_t k = 0;
    for (int l = 0; l < IDX_LEVELS; l++)
        for (size_t i = 0; i < in->ntags[l]; i++)
            snprintf(s.tagnum[k++], sizeof s.tagnum[0], "%lu", (unsigned long)in->tags[l][i].tag);
    bool ok = pg_tx(err, be, true, store_once, &s);
    free(s.tagnum);
    return ok;
}

/* ---- delete ----------------------------------------------------------------------------- */

typedef struct DeleteCtx {
    int level;
    const char *id;
    IdxDeleteResult *out;
    char now[16];
} DeleteCtx;

static bool collect_files(StoError *err, PgConn *c, int64_t internal, int level,
                          IdxFile **files, size_t *n)
{
    char num[24], lv[4];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    snprintf(lv, sizeof lv, "%d", level);
    const char *p[2] = {num, lv};
    PGresult *r = pg_run(err, c, P_INSTANCES_OF, 2, p);
    if (!r)
        return false;
    int rows = PQntuples(r);
    *files = rows ? calloc((size_t)rows, sizeof **files) : NULL;
    if (rows && !*files) {
        PQclear(r);
        return pg_nomem(err);
    }
    for (int i = 0; i < rows; i++) {
        pg_copy((*files)[i].id, sizeof (*files)[i].id, r, i, 0);
        pg_copy((*files)[i].uuid, sizeof (*files)[i].uuid, r, i, 1);
        (*files)[i].size = (uint64_t)pg_int(r, i, 2);
    }
    *n = (size_t)rows;
    PQclear(r);
    return true;
}

bool pg_log_change(StoError *err, PgConn *c, const char *type, int level, const char *id,
                   const char *now)
{
    int64_t lv = level;
    char *ta = pg_text_array(&type, 1), *la = pg_int_array(&lv, 1), *ia = pg_text_array(&id, 1);
    bool ok = ta && la && ia;
    if (!ok)
        pg_nomem(err);
    else {
        const char *p[4] = {ta, la, ia, now};
        ok = pg_do(err, c, P_INSERT_CHANGES, 4, p);
    }
    free(ta);
    free(la);
    free(ia);
    return ok;
}

/* Deletes a resource and the ancestors it leaves empty, inside the caller's transaction; the
 * row itself is already locked. Files of the instances and user attachments of every row
 * removed go pending and into out->files (malloc'd; the caller frees it also on failure). */
static bool delete_subtree(StoError *err, PgConn *c, int64_t internal, int lv, int64_t parent,
                           IdxDeleteResult *out)
{
    char num[24];
    PGresult *r;
    out->remaining_level = -1;
    if (!collect_files(err, c, internal, lv, &out->files, &out->nfiles))
        return false;
    int64_t top = internal;
    while (parent >= 0) {
        snprintf(num, sizeof num, "%lld", (long long)parent);
        const char *pp[1] = {num};
        if (!(r = pg_run(err, c, P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE, 1, pp)))
            return false;
        if (PQntuples(r) == 0) {
            PQclear(r);
            break;
        }
        int plevel = (int)pg_int(r, 0, 0);
        char pid[IDX_ID_LEN];
        pg_copy(pid, sizeof pid, r, 0, 1);
        int64_t grandparent = pg_int(r, 0, 2);
        PQclear(r);
        if (!(r = pg_run(err, c, P_COUNT_CHILDREN, 1, pp)))
            return false;
        bool has_others = pg_int(r, 0, 0) > 1;
        PQclear(r);
        if (has_others) {
            out->remaining_level = plevel;
            snprintf(out->remaining_id, sizeof out->remaining_id, "%s", pid);
            break;
        }
        top = parent;
        parent = grandparent;
    }
    /* The user-defined attachments of every row removed join the files to remove. */
    if (!pg_attachment_collect(err, c, top, &out->files, &out->nfiles))
        return false;
    snprintf(num, sizeof num, "%lld", (long long)top);
    const char *pt[1] = {num};
    /* as Orthanc, the changes of every resource removed go (none is logged for the delete) */
    if (!pg_do(err, c, P_DELETE_SUBTREE_CHANGES, 1, pt) || !pg_do(err, c, P_DELETE_RESOURCE, 1, pt))
        return false;
    if (out->nfiles) {
        const char **u = malloc(out->nfiles * sizeof *u);
        if (!u)
            return pg_nomem(err);
        for (size_t i = 0; i < out->nfiles; i++)
            u[i] = out->files[i].uuid;
        char *ua = pg_text_array(u, out->nfiles);
        free(u);
        if (!ua)
            return pg_nomem(err);
        const char *p[2] = {ua, c->owner->owner_text};
        bool ok = pg_do(err, c, P_PENDING_ADD_MANY, 2, p);
        free(ua);
        if (!ok)
            return false;
        /* every process drops its copies of these instances once this commits (a delete,
         * or an overwrite's delete of the old instance) */
        const char **ids = malloc(out->nfiles * sizeof *ids);
        if (!ids)
            return pg_nomem(err);
        for (size_t i = 0; i < out->nfiles; i++)
            ids[i] = out->files[i].id;
        ok = pg_notify_invalidate(err, c, ids, out->nfiles);
        free(ids);
        if (!ok)
            return false;
    }
    return true;
}


static bool delete_once(StoError *err, PgConn *c, void *ctx)
{
    DeleteCtx *d = ctx;
    IdxDeleteResult *out = d->out;
    free(out->files);
    memset(out, 0, sizeof *out);
    out->remaining_level = -1;
    int64_t internal, parent = -1;
    int lv;
    char num[24];
    if (!pg_find_resource(err, c, d->level, d->id, &internal, &lv, &parent))
        return false;
    /* Lock the row itself first: two deletes of one resource serialize here. */
    snprintf(num, sizeof num, "%lld", (long long)internal);
    const char *pi[1] = {num};
    PGresult *r = pg_run(err, c, P_GET_RESOURCE_BY_INTERNAL_FOR_UPDATE, 1, pi);
    if (!r)
        return false;
    bool gone = PQntuples(r) == 0;
    PQclear(r);
    if (gone) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(d->level), d->id);
        return false;
    }
    return delete_subtree(err, c, internal, lv, parent, out);
}

bool pg_delete_resource(StoError *err, void *be, int level, const char *id,
                        IdxDeleteResult *out)
{
    DeleteCtx d = {.level = level, .id = id, .out = out};
    idx_now(d.now);
    bool ok = pg_tx(err, be, true, delete_once, &d);
    if (!ok) {
        free(out->files);
        out->files = NULL;
        out->nfiles = 0;
    }
    return ok;
}

/* ---- reconstruct: main tags replaced ---------------------------------------------------- */

typedef struct TagsCtx {
    int level;
    const char *id;
    const IdxTag *tags;
    size_t n;
} TagsCtx;

static bool set_tags_once(StoError *err, PgConn *c, void *ctx)
{
    TagsCtx *t = ctx;
    int64_t internal;
    if (!pg_find_resource(err, c, t->level, t->id, &internal, NULL, NULL))
        return false;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    const char *pi[1] = {num};
    if (!pg_do(err, c, P_DELETE_TAGS, 1, pi))
        return false;
    Rows rows = {0};
    char (*tagnum)[12] = t->n ? calloc(t->n, sizeof *tagnum) : NULL;
    bool ok = !t->n || tagnum;
    for (size_t i = 0; ok && i < t->n; i++) {
        snprintf(tagnum[i], sizeof tagnum[i], "%u", (unsigned)t->tags[i].tag);
        ok = rows_add(&rows, internal, tagnum[i], t->tags[i].value);
    }
    if (!ok)
        pg_nomem(err);
    else
        ok = rows_send(err, c, P_INSERT_TAGS, &rows);
    rows_free(&rows);
    free(tagnum);
    return ok;
}

bool pg_set_main_tags(StoError *err, void *be, int level, const char *id, const IdxTag *tags,
                      size_t n)
{
    TagsCtx t = {level, id, tags, n};
    return pg_tx(err, be, true, set_tags_once, &t);
}
