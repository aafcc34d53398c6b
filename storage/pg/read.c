/* read.c -- the PostgreSQL backend's reads: a resource with its tags, children, metadata and
 * attachment (one REPEATABLE READ snapshot), lists, instances under a resource, counts,
 * totals, and /tools/find.
 */
#include "storage/pg/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies column col of every row into a malloc'd array of malloc'd strings. */
static bool strings_of(StoError *err, const PGresult *r, int col, char ***out, size_t *n)
{
    int rows = PQntuples(r);
    char **arr = rows ? calloc((size_t)rows, sizeof *arr) : NULL;
    if (rows && !arr)
        return pg_nomem(err);
    for (int i = 0; i < rows; i++) {
        if (!(arr[i] = pg_dup(r, i, col))) {
            idx_strings_free(arr, (size_t)i);
            return pg_nomem(err);
        }
    }
    *out = arr;
    *n = (size_t)rows;
    return true;
}

typedef struct GetCtx {
    int level;
    const char *id;
    IdxResource *out;
    /* pg_resources_get: */
    const char *const *ids;
    size_t n;
    unsigned what;
} GetCtx;

/* The row of id into res (NOT_FOUND when absent or of another level than asked). */
static bool get_row(StoError *err, PgConn *c, int level, const char *id, IdxResource *res)
{
    const char *p[1] = {id};
    PGresult *r = pg_run(err, c, P_LOOKUP_FULL, 1, p);
    if (!r)
        return false;
    if (PQntuples(r) == 0) {
        PQclear(r);
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown resource %s", id);
        return false;
    }
    res->internal_id = pg_int(r, 0, 0);
    res->level = (int)pg_int(r, 0, 1);
    pg_copy(res->parent_id, sizeof res->parent_id, r, 0, 2);
    snprintf(res->id, sizeof res->id, "%s", id);
    PQclear(r);
    if (level != -1 && res->level != level) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(level), id);
        return false;
    }
    return true;
}

static bool get_tags(StoError *err, PgConn *c, const char *num, IdxResource *res)
{
    const char *pi[1] = {num};
    PGresult *r = pg_run(err, c, P_GET_TAGS, 1, pi);
    if (!r)
        return false;
    int rows = PQntuples(r);
    if (rows) {
        res->tag_keys = calloc((size_t)rows, sizeof *res->tag_keys);
        res->tag_values = calloc((size_t)rows, sizeof *res->tag_values);
        if (!res->tag_keys || !res->tag_values) {
            PQclear(r);
            return pg_nomem(err);
        }
    }
    for (int i = 0; i < rows; i++) {
        res->tag_keys[i] = (uint32_t)pg_int(r, i, 0);
        if (!(res->tag_values[i] = pg_dup(r, i, 1))) {
            PQclear(r);
            return pg_nomem(err);
        }
        res->ntags++;
    }
    PQclear(r);
    return true;
}

static bool get_meta(StoError *err, PgConn *c, const char *num, IdxResource *res)
{
    const char *pi[1] = {num};
    PGresult *r = pg_run(err, c, P_GET_META, 1, pi);
    if (!r)
        return false;
    int rows = PQntuples(r);
    if (rows) {
        res->meta_names = calloc((size_t)rows, sizeof *res->meta_names);
        res->meta_values = calloc((size_t)rows, sizeof *res->meta_values);
        if (!res->meta_names || !res->meta_values) {
            PQclear(r);
            return pg_nomem(err);
        }
    }
    for (int i = 0; i < rows; i++) {
        res->meta_names[i] = pg_dup(r, i, 0);
        res->meta_values[i] = pg_dup(r, i, 1);
        res->nmeta++;
        if (!res->meta_names[i] || !res->meta_values[i]) {
            PQclear(r);
            return pg_nomem(err);
        }
    }
    PQclear(r);
    return true;
}

static bool get_children(StoError *err, PgConn *c, const char *num, bool count_only, IdxResource *res)
{
    const char *pi[1] = {num};
    PGresult *r = pg_run(err, c, count_only ? P_NUM_CHILDREN : P_GET_CHILDREN, 1, pi);
    if (!r)
        return false;
    bool ok = true;
    if (count_only)
        res->nchildren = PQntuples(r) ? (size_t)pg_int(r, 0, 0) : 0;
    else
        ok = strings_of(err, r, 0, &res->children, &res->nchildren);
    PQclear(r);
    return ok;
}

static bool get_once(StoError *err, PgConn *c, void *ctx)
{
    GetCtx *g = ctx;
    IdxResource *res = g->out;
    idx_resource_cleanup(res);
    if (!get_row(err, c, g->level, g->id, res))
        return false;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)res->internal_id);
    if (!get_tags(err, c, num, res) || !get_meta(err, c, num, res))
        return false;
    if (res->level != IDX_INSTANCE)
        return get_children(err, c, num, false, res);
    const char *pi[1] = {num};
    PGresult *r = pg_run(err, c, P_GET_ATTACHMENT, 1, pi);
    if (!r)
        return false;
    if (PQntuples(r) > 0) {
        pg_copy(res->uuid, sizeof res->uuid, r, 0, 0);
        res->file_size = (uint64_t)pg_int(r, 0, 1);
        pg_copy(res->md5, sizeof res->md5, r, 0, 2);
    }
    PQclear(r);
    return true;
}

/* ---- several resources in a constant number of round trips ------------------------------ */

/* A resource asked for: its internal ID and its place in the caller's arrays. */
typedef struct Pos {
    int64_t internal;
    size_t i;
} Pos;

static int pos_cmp(const void *a, const void *b)
{
    const Pos *x = a, *y = b;
    return x->internal < y->internal ? -1 : x->internal > y->internal;
}

/* Fills one resource from rows [r0, r1) of a result whose column 0 is the internal ID. */
typedef bool (*FillFn)(StoError *err, const PGresult *r, int r0, int r1, IdxResource *res);

static bool fill_tags(StoError *err, const PGresult *r, int r0, int r1, IdxResource *res)
{
    size_t n = (size_t)(r1 - r0);
    res->tag_keys = calloc(n, sizeof *res->tag_keys);
    res->tag_values = calloc(n, sizeof *res->tag_values);
    if (!res->tag_keys || !res->tag_values)
        return pg_nomem(err);
    for (int i = r0; i < r1; i++) {
        res->tag_keys[res->ntags] = (uint32_t)pg_int(r, i, 1);
        if (!(res->tag_values[res->ntags] = pg_dup(r, i, 2)))
            return pg_nomem(err);
        res->ntags++;
    }
    return true;
}

static bool fill_meta(StoError *err, const PGresult *r, int r0, int r1, IdxResource *res)
{
    size_t n = (size_t)(r1 - r0);
    res->meta_names = calloc(n, sizeof *res->meta_names);
    res->meta_values = calloc(n, sizeof *res->meta_values);
    if (!res->meta_names || !res->meta_values)
        return pg_nomem(err);
    for (int i = r0; i < r1; i++) {
        res->meta_names[res->nmeta] = pg_dup(r, i, 1);
        res->meta_values[res->nmeta] = pg_dup(r, i, 2);
        res->nmeta++;
        if (!res->meta_names[res->nmeta - 1] || !res->meta_values[res->nmeta - 1])
            return pg_nomem(err);
    }
    return true;
}

static bool fill_children(StoError *err, const PGresult *r, int r0, int r1, IdxResource *res)
{
    res->children = calloc((size_t)(r1 - r0), sizeof *res->children);
    if (!res->children)
        return pg_nomem(err);
    for (int i = r0; i < r1; i++) {
        if (!(res->children[res->nchildren] = pg_dup(r, i, 1)))
            return pg_nomem(err);
        res->nchildren++;
    }
    return true;
}

static bool fill_nchildren(StoError *err, const PGresult *r, int r0, int r1, IdxResource *res)
{
    (void)err, (void)r1;
    res->nchildren = (size_t)pg_int(r, r0, 1);
    return true;
}

/* Runs stmt on the internal IDs and hands each ID's rows (ordered by ID) to fn, for every
 * place that asked for that resource. */
static bool fill_all(StoError *err, PgConn *c, PgStmt stmt, const char *idarr, const Pos *pos,
                     size_t npos, IdxResource *out, FillFn fn)
{
    const char *p[1] = {idarr};
    PGresult *r = pg_run(err, c, stmt, 1, p);
    if (!r)
        return false;
    int rows = PQntuples(r);
    bool ok = true;
    for (int i = 0; ok && i < rows;) {
        int64_t id = pg_int(r, i, 0);
        int j = i + 1;
        while (j < rows && pg_int(r, j, 0) == id)
            j++;
        size_t lo = 0, hi = npos; /* first place with this ID */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (pos[mid].internal < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = lo; ok && k < npos && pos[k].internal == id; k++)
            ok = fn(err, r, i, j, &out[pos[k].i]);
        i = j;
    }
    PQclear(r);
    return ok;
}

/* The rows of all ids in one statement, then each part asked for (tags, metadata, children)
 * in one statement for all of them: at most 4 round trips whatever n. */
static bool get_many_once(StoError *err, PgConn *c, void *ctx)
{
    GetCtx *g = ctx;
    for (size_t i = 0; i < g->n; i++)
        idx_resource_cleanup(&g->out[i]); /* a retried transaction starts over */
    char *arr = pg_text_array(g->ids, g->n), *idarr = NULL; /* NULL ids match nothing */
    Pos *pos = calloc(g->n ? g->n : 1, sizeof *pos);
    int64_t *internals = calloc(g->n ? g->n : 1, sizeof *internals);
    PGresult *r = NULL;
    bool ok = false;
    size_t npos = 0;
    if (!arr || !pos || !internals) {
        pg_nomem(err);
        goto out;
    }
    const char *p[1] = {arr};
    if (!(r = pg_run(err, c, P_LOOKUP_ORDERED, 1, p)))
        goto out;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t o = pg_int(r, row, 0) - 1;
        int lv = (int)pg_int(r, row, 2);
        if (o < 0 || (size_t)o >= g->n || !g->ids[o] || (g->level != -1 && lv != g->level))
            continue; /* of another level: left zeroed, as an absent one */
        IdxResource *res = &g->out[o];
        res->internal_id = pg_int(r, row, 1);
        res->level = lv;
        pg_copy(res->parent_id, sizeof res->parent_id, r, row, 3);
        snprintf(res->id, sizeof res->id, "%s", g->ids[o]);
        pos[npos].internal = res->internal_id;
        pos[npos].i = (size_t)o;
        internals[npos++] = res->internal_id;
    }
    PQclear(r);
    r = NULL;
    ok = true;
    if (npos == 0)
        goto out;
    qsort(pos, npos, sizeof *pos, pos_cmp);
    if (!(idarr = pg_int_array(internals, npos))) {
        ok = pg_nomem(err);
        goto out;
    }
    bool kids = g->level != IDX_INSTANCE && (g->what & (IDX_GET_CHILDREN | IDX_GET_NCHILDREN));
    ok = (!(g->what & IDX_GET_TAGS) ||
          fill_all(err, c, P_MANY_TAGS, idarr, pos, npos, g->out, fill_tags)) &&
         (!(g->what & IDX_GET_META) ||
          fill_all(err, c, P_MANY_META, idarr, pos, npos, g->out, fill_meta)) &&
         (!kids || ((g->what & IDX_GET_CHILDREN)
                        ? fill_all(err, c, P_MANY_CHILDREN, idarr, pos, npos, g->out, fill_children)
                        : fill_all(err, c, P_MANY_NCHILDREN, idarr, pos, npos, g->out,
                                   fill_nchildren)));
out:
    PQclear(r);
    free(arr);
    free(idarr);
    free(pos);
    free(internals);
    return ok;
}

bool pg_resources_get(StoError *err, void *be, int level, const char *const *ids, size_t n,
                      unsigned what, IdxResource *out)
{
    GetCtx g = {.level = level, .ids = ids, .n = n, .what = what, .out = out};
    return pg_tx(err, be, true, get_many_once, &g);
}

bool pg_resource_get(StoError *err, void *be, int level, const char *id, IdxResource *out)
{
    GetCtx g = {.level = level, .id = id, .out = out};
    bool ok = pg_tx(err, be, true, get_once, &g);
    if (!ok)
        idx_resource_cleanup(out);
    return ok;
}

typedef struct ListCtx {
    int level;
    uint64_t since, limit;
    char ***ids;
    size_t *n;
} ListCtx;

static bool list_once(StoError *err, PgConn *c, void *ctx)
{
    ListCtx *l = ctx;
    char lv[4], lim[24], off[24];
    snprintf(lv, sizeof lv, "%d", l->level);
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)(l->limit > INT64_MAX ? INT64_MAX : l->limit));
    snprintf(off, sizeof off, "%llu", (unsigned long long)(l->since > INT64_MAX ? INT64_MAX : l->since));
    const char *p[3] = {lv, l->limit ? lim : NULL, off}; /* LIMIT NULL: no limit */
    PGresult *r = pg_run(err, c, P_LIST, 3, p);
    if (!r)
        return false;
    bool ok = strings_of(err, r, 0, l->ids, l->n);
    PQclear(r);
    return ok;
}

bool pg_list(StoError *err, void *be, int level, uint64_t since, uint64_t limit, char ***ids,
             size_t *n)
{
    ListCtx l = {level, since, limit, ids, n};
    return pg_tx(err, be, false, list_once, &l);
}

typedef struct UnderCtx {
    int level;
    const char *id;
    IdxFile **files;
    size_t *n;
    IdxCounts *counts;
} UnderCtx;

static bool under_once(StoError *err, PgConn *c, void *ctx)
{
    UnderCtx *u = ctx;
    int64_t internal;
    int lv;
    if (!pg_find_resource(err, c, u->level, u->id, &internal, &lv, NULL))
        return false;
    char num[24], lvs[4];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    snprintf(lvs, sizeof lvs, "%d", lv);
    const char *p[2] = {num, lvs};
    PGresult *r = pg_run(err, c, u->files ? P_INSTANCES_OF : P_COUNTS, 2, p);
    if (!r)
        return false;
    if (u->files) {
        int rows = PQntuples(r);
        free(*u->files);
        *u->files = rows ? calloc((size_t)rows, sizeof **u->files) : NULL;
        if (rows && !*u->files) {
            PQclear(r);
            return pg_nomem(err);
        }
        for (int i = 0; i < rows; i++) {
            pg_copy((*u->files)[i].id, sizeof (*u->files)[i].id, r, i, 0);
            pg_copy((*u->files)[i].uuid, sizeof (*u->files)[i].uuid, r, i, 1);
            (*u->files)[i].size = (uint64_t)pg_int(r, i, 2);
        }
        *u->n = (size_t)rows;
    } else {
        u->counts->studies = (uint64_t)pg_int(r, 0, 1);
        u->counts->series = (uint64_t)pg_int(r, 0, 2);
        u->counts->instances = (uint64_t)pg_int(r, 0, 3);
        u->counts->disk_size = (uint64_t)pg_int(r, 0, 4);
    }
    PQclear(r);
    return true;
}

bool pg_instances_of(StoError *err, void *be, int level, const char *id, IdxFile **files,
                     size_t *n)
{
    UnderCtx u = {level, id, files, n, NULL};
    bool ok = pg_tx(err, be, true, under_once, &u);
    if (!ok) {
        free(*files);
        *files = NULL;
        *n = 0;
    }
    return ok;
}

bool pg_resource_counts(StoError *err, void *be, int level, const char *id, IdxCounts *out)
{
    UnderCtx u = {level, id, NULL, NULL, out};
    return pg_tx(err, be, true, under_once, &u);
}

static bool totals_once(StoError *err, PgConn *c, void *ctx)
{
    IdxTotals *t = ctx;
    PGresult *r = pg_run(err, c, P_TOTALS, 0, NULL);
    if (!r)
        return false;
    for (int l = 0; l < IDX_LEVELS; l++)
        t->count[l] = (uint64_t)pg_int(r, 0, l);
    t->disk_size = t->uncompressed_size = (uint64_t)pg_int(r, 0, 4);
    PQclear(r);
    return true;
}

bool pg_totals(StoError *err, void *be, IdxTotals *out)
{
    return pg_tx(err, be, false, totals_once, out);
}

/* ---- find --------------------------------------------------------------------------------- */

/* A growable SQL text with its parameters. */
typedef struct Query {
    char *sql;
    size_t len, cap;
    const char **params;
    char **owned;      /* LIKE patterns we made */
    int n, cap_p, nowned;
    bool nomem;
} Query;

static void q_add(Query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void q_add(Query *q, const char *fmt, ...)
{
    if (q->nomem)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (q->len + (size_t)need + 1 > q->cap) {
        size_t cap = (q->cap ? q->cap * 2 : 512) + (size_t)need;
        char *s = realloc(q->sql, cap);
        if (!s) {
            q->nomem = true;
            return;
        }
        q->sql = s;
        q->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(q->sql + q->len, q->cap - q->len, fmt, ap);
    va_end(ap);
    q->len += (size_t)need;
}

/* Adds a parameter; returns its number. */
static int q_param(Query *q, const char *v, bool owned)
{
    if (q->n == q->cap_p) {
        int cap = q->cap_p ? q->cap_p * 2 : 16;
        const char **p = realloc(q->params, (size_t)cap * sizeof *p);
        char **o = realloc(q->owned, (size_t)cap * sizeof *o);
        if (p)
            q->params = p;
        if (o)
            q->owned = o;
        if (!p || !o) {
            q->nomem = true;
            if (owned)
                free((char *)v);
            return 1;
        }
        q->cap_p = cap;
    }
    q->params[q->n++] = v;
    if (owned)
        q->owned[q->nowned++] = (char *)v;
    return q->n;
}

/* DICOM wildcards to a LIKE pattern: '*' -> '%', '?' -> '_', LIKE's own '%', '_' and the
 * escape character '\' escaped. */
static char *like_pattern(const char *w)
{
    char *out = malloc(2 * strlen(w) + 1), *p = out;
    if (!out)
        return NULL;
    for (; *w; w++) {
        if (*w == '*')
            *p++ = '%';
        else if (*w == '?')
            *p++ = '_';
        else {
            if (*w == '%' || *w == '_' || *w == '\\')
                *p++ = '\\';
            *p++ = *w;
        }
    }
    *p = '\0';
    return out;
}

static void emit_match(Query *q, const IdxMatch *m, bool ci)
{
    const char *col = ci ? "lower(t.value)" : "t.value";
    switch (m->kind) {
    case IDX_MATCH_RANGE:
        q_add(q, "(true");
        if (m->text)
            q_add(q, " AND t.value >= $%d", q_param(q, m->text, false));
        if (m->high)
            q_add(q, " AND t.value <= ($%d || chr(127))", q_param(q, m->high, false));
        q_add(q, ")");
        break;
    case IDX_MATCH_WILDCARD: {
        char *pat = like_pattern(m->text);
        if (!pat) {
            q->nomem = true;
            return;
        }
        q_add(q, ci ? "%s LIKE lower($%d)" : "%s LIKE $%d", col, q_param(q, pat, true));
        break;
    }
    case IDX_MATCH_EQUAL:
        q_add(q, ci ? "%s = lower($%d)" : "%s = $%d", col, q_param(q, m->text, false));
        break;
    }
}

typedef struct FindCtx {
    Query *q;
    char ***ids;
    size_t *n;
} FindCtx;

static bool find_once(StoError *err, PgConn *c, void *ctx)
{
    FindCtx *f = ctx;
    PGresult *r = pg_run_text(err, c, f->q->sql, f->q->n, f->q->params);
    if (!r)
        return false;
    bool ok = strings_of(err, r, 0, f->ids, f->n);
    PQclear(r);
    return ok;
}

bool pg_find(StoError *err, void *be, int level, const IdxFindTerm *terms, size_t nterms,
             uint64_t since, uint64_t limit, char ***ids, size_t *n)
{
    Query q = {0};
    q_add(&q, "SELECT r0.public_id FROM resources r0");
    for (int d = 1; d <= level; d++)
        q_add(&q, " JOIN resources r%d ON r%d.internal_id = r%d.parent_id", d, d, d - 1);
    q_add(&q, " WHERE r0.level = %d", level);
    for (size_t i = 0; i < nterms; i++) {
        const IdxFindTerm *t = &terms[i];
        q_add(&q, " AND EXISTS(SELECT 1 FROM main_tags t WHERE t.internal_id = r%d.internal_id"
                  " AND t.tag = %lld AND (", t->depth, (long long)t->tag);
        for (size_t j = 0; j < t->nmatch; j++) {
            if (j)
                q_add(&q, " OR ");
            emit_match(&q, &t->match[j], t->case_insensitive);
        }
        q_add(&q, "))");
    }
    q_add(&q, " ORDER BY r0.internal_id");
    if (limit && limit <= INT64_MAX)
        q_add(&q, " LIMIT %llu", (unsigned long long)limit);
    if (since)
        q_add(&q, " OFFSET %llu", (unsigned long long)(since > INT64_MAX ? INT64_MAX : since));
    bool ok;
    if (q.nomem)
        ok = pg_nomem(err);
    else {
        FindCtx f = {&q, ids, n};
        ok = pg_tx(err, be, false, find_once, &f);
    }
    for (int i = 0; i < q.nowned; i++)
        free(q.owned[i]);
    free(q.owned);
    free(q.params);
    free(q.sql);
    return ok;
}
