/* meta.c -- the PostgreSQL backend's smaller tables: the changes log (one global sequence for
 * every process), metadata with revisions, the attachment MD5, protected patients and the
 * recycling order, saved jobs.
 */
#include "storage/pg/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- changes ---------------------------------------------------------------------------- */

typedef struct ChangeCtx {
    const char *type;
    int level;
    const char *id;
} ChangeCtx;

static bool change_once(StoError *err, PgConn *c, void *ctx)
{
    ChangeCtx *ch = ctx;
    char now[16];
    idx_now(now);
    return pg_log_change(err, c, ch->type, ch->level, ch->id, now);
}

bool pg_change_add(StoError *err, void *be, const char *type, int level, const char *id)
{
    ChangeCtx ch = {type, level, id};
    return pg_tx(err, be, false, change_once, &ch);
}

static void read_change(const PGresult *r, int row, IdxChange *ch)
{
    ch->seq = pg_int(r, row, 0);
    pg_copy(ch->type, sizeof ch->type, r, row, 1);
    ch->level = (int)pg_int(r, row, 2);
    pg_copy(ch->id, sizeof ch->id, r, row, 3);
    pg_copy(ch->date, sizeof ch->date, r, row, 4);
}

static bool last_seq(StoError *err, PgConn *c, int64_t *last)
{
    PGresult *r = pg_run(err, c, P_CHANGES_SEQ, 0, NULL);
    if (!r)
        return false;
    *last = pg_int(r, 0, 0);
    PQclear(r);
    return true;
}

typedef struct ChangesCtx {
    int64_t since;
    uint64_t limit;
    IdxChange **out;
    size_t *n;
    bool *done;
    int64_t *last;
    bool only_last;
} ChangesCtx;

static bool changes_once(StoError *err, PgConn *c, void *ctx)
{
    ChangesCtx *q = ctx;
    PGresult *r;
    if (q->only_last) {
        r = pg_run(err, c, P_CHANGES_LAST, 0, NULL);
    } else {
        char since[24], lim[24];
        snprintf(since, sizeof since, "%lld", (long long)q->since);
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)q->limit + 1); /* one more: done? */
        const char *p[2] = {since, lim};
        r = pg_run(err, c, P_CHANGES, 2, p);
    }
    if (!r)
        return false;
    size_t rows = (size_t)PQntuples(r), take = rows;
    if (!q->only_last && take > q->limit)
        take = (size_t)q->limit;
    free(*q->out);
    *q->out = take ? calloc(take, sizeof **q->out) : NULL;
    if (take && !*q->out) {
        PQclear(r);
        return pg_nomem(err);
    }
    for (size_t i = 0; i < take; i++)
        read_change(r, (int)i, &(*q->out)[i]);
    *q->n = take;
    if (q->done)
        *q->done = rows <= take;
    PQclear(r);
    if (take)
        *q->last = (*q->out)[take - 1].seq;
    else if (!last_seq(err, c, q->last))
        return false;
    return true;
}

bool pg_changes(StoError *err, void *be, int64_t since, uint64_t limit, IdxChange **out,
                size_t *n, bool *done, int64_t *last)
{
    ChangesCtx q = {since, limit, out, n, done, last, false};
    bool ok = pg_tx(err, be, true, changes_once, &q);
    if (!ok) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ok;
}

bool pg_changes_last(StoError *err, void *be, IdxChange **out, size_t *n, int64_t *last)
{
    ChangesCtx q = {0, 1, out, n, NULL, last, true};
    bool ok = pg_tx(err, be, true, changes_once, &q);
    if (!ok) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ok;
}

static bool clear_once(StoError *err, PgConn *c, void *ctx)
{
    (void)ctx;
    return pg_do(err, c, P_CHANGES_CLEAR, 0, NULL);
}

bool pg_changes_clear(StoError *err, void *be)
{
    return pg_tx(err, be, false, clear_once, NULL);
}

/* ---- metadata --------------------------------------------------------------------------- */

typedef struct MetaCtx {
    int level;
    const char *id, *name, *value;
    int64_t if_match;
    char **out_value;
    int64_t *revision;
    int op; /* 0 set, 1 get, 2 put, 3 remove */
} MetaCtx;

static bool meta_once(StoError *err, PgConn *c, void *ctx)
{
    MetaCtx *m = ctx;
    int64_t internal;
    if (!pg_find_resource(err, c, m->level, m->id, &internal, NULL, NULL))
        return false;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    if (m->op == 0) {
        const char *p[3] = {num, m->name, m->value ? m->value : ""};
        return pg_do(err, c, P_SET_META, 3, p);
    }
    const char *pl[2] = {num, m->name};
    PGresult *r = pg_run(err, c, P_META_LOOKUP, 2, pl);
    if (!r)
        return false;
    bool found = PQntuples(r) > 0;
    int64_t rev = found ? pg_int(r, 0, 1) : 0;
    if (m->op == 1) {
        if (found) {
            free(*m->out_value);
            *m->out_value = pg_dup(r, 0, 0);
            if (m->revision)
                *m->revision = rev;
        }
        PQclear(r);
        if (!found) {
            sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", m->name, m->id);
            return false;
        }
        return *m->out_value ? true : pg_nomem(err);
    }
    PQclear(r);
    if (m->op == 3 && !found) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "no metadata %s on %s", m->name, m->id);
        return false;
    }
    if (m->if_match >= 0 && (!found || rev != m->if_match)) {
        sto_set_err(err, STO_ERR_CONFLICT, "revision of %s is %s, not %lld", m->name,
                    found ? "another" : "none (absent)", (long long)m->if_match);
        return false;
    }
    if (m->op == 3)
        return pg_do(err, c, P_DELETE_META, 2, pl); /* the revision row stays, as in SQLite */
    /* put: first set is revision 0, each later put +1; an item removed and set again
     * starts over at 0 (as the SQLite backend: the revision is the item's, not the name's) */
    rev = found ? rev + 1 : 0;
    char revs[24];
    snprintf(revs, sizeof revs, "%lld", (long long)rev);
    const char *ps[3] = {num, m->name, m->value ? m->value : ""};
    const char *pr[3] = {num, m->name, revs};
    if (!pg_do(err, c, P_SET_META, 3, ps) || !pg_do(err, c, P_SET_META_REV, 3, pr))
        return false;
    if (m->revision)
        *m->revision = rev;
    return true;
}

bool pg_metadata_set(StoError *err, void *be, int level, const char *id, const char *name,
                     const char *value)
{
    MetaCtx m = {level, id, name, value, -1, NULL, NULL, 0};
    return pg_tx(err, be, true, meta_once, &m);
}

bool pg_metadata_get(StoError *err, void *be, int level, const char *id, const char *name,
                     char **value, int64_t *revision)
{
    MetaCtx m = {level, id, name, NULL, -1, value, revision, 1};
    bool ok = pg_tx(err, be, true, meta_once, &m);
    if (!ok) {
        free(*value);
        *value = NULL;
    }
    return ok;
}

bool pg_metadata_put(StoError *err, void *be, int level, const char *id, const char *name,
                     const char *value, int64_t if_match, int64_t *revision)
{
    MetaCtx m = {level, id, name, value, if_match, NULL, revision, 2};
    return pg_tx(err, be, true, meta_once, &m);
}

bool pg_metadata_remove(StoError *err, void *be, int level, const char *id, const char *name,
                        int64_t if_match)
{
    MetaCtx m = {level, id, name, NULL, if_match, NULL, NULL, 3};
    return pg_tx(err, be, true, meta_once, &m);
}

typedef struct TwoCtx {
    PgStmt stmt;
    const char *a, *b;
} TwoCtx;

static bool two_once(StoError *err, PgConn *c, void *ctx)
{
    TwoCtx *t = ctx;
    const char *p[2] = {t->a, t->b};
    return pg_do(err, c, t->stmt, t->b ? 2 : 1, p);
}

bool pg_attachment_set_md5(StoError *err, void *be, const char *uuid, const char *md5)
{
    TwoCtx t = {P_SET_MD5, uuid, md5};
    return pg_tx(err, be, false, two_once, &t);
}

/* ---- protection and recycling ----------------------------------------------------------- */

typedef struct ProtCtx {
    const char *id;
    bool on;
    bool *out;
} ProtCtx;

static bool prot_once(StoError *err, PgConn *c, void *ctx)
{
    ProtCtx *p = ctx;
    int64_t internal;
    if (!pg_find_resource(err, c, IDX_PATIENT, p->id, &internal, NULL, NULL))
        return false;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)internal);
    const char *pi[1] = {num};
    if (!p->out)
        return pg_do(err, c, p->on ? P_PROTECT : P_UNPROTECT, 1, pi);
    PGresult *r = pg_run(err, c, P_IS_PROTECTED, 1, pi);
    if (!r)
        return false;
    *p->out = PQntuples(r) > 0;
    PQclear(r);
    return true;
}

bool pg_patient_set_protected(StoError *err, void *be, const char *patient_id, bool on)
{
    ProtCtx p = {patient_id, on, NULL};
    return pg_tx(err, be, true, prot_once, &p);
}

bool pg_patient_is_protected(StoError *err, void *be, const char *patient_id, bool *out)
{
    ProtCtx p = {patient_id, false, out};
    return pg_tx(err, be, true, prot_once, &p);
}

typedef struct OldestCtx {
    const char *exclude;
    char *out;
    bool *found;
} OldestCtx;

static bool oldest_once(StoError *err, PgConn *c, void *ctx)
{
    OldestCtx *o = ctx;
    const char *p[1] = {o->exclude ? o->exclude : ""};
    PGresult *r = pg_run(err, c, P_OLDEST_PATIENT, 1, p);
    if (!r)
        return false;
    *o->found = PQntuples(r) > 0;
    if (*o->found)
        pg_copy(o->out, IDX_ID_LEN, r, 0, 0);
    PQclear(r);
    return true;
}

bool pg_oldest_patient(StoError *err, void *be, const char *exclude_id, char out[IDX_ID_LEN],
                       bool *found)
{
    OldestCtx o = {exclude_id, out, found};
    return pg_tx(err, be, false, oldest_once, &o);
}

/* ---- saved jobs ------------------------------------------------------------------------- */

static bool job_save_once(StoError *err, PgConn *c, void *ctx)
{
    const char **v = ctx;
    const char *p[3] = {v[0], v[1], c->owner->owner_text};
    return pg_do(err, c, P_JOB_SAVE, 3, p);
}

bool pg_job_save(StoError *err, void *be, const char *job_id, const char *json)
{
    const char *v[2] = {job_id, json};
    return pg_tx(err, be, false, job_save_once, v);
}

bool pg_job_delete(StoError *err, void *be, const char *job_id)
{
    TwoCtx t = {P_JOB_DELETE, job_id, NULL};
    return pg_tx(err, be, false, two_once, &t);
}

typedef struct JobsCtx {
    char ***rows;
    size_t *n;
} JobsCtx;

static bool jobs_once(StoError *err, PgConn *c, void *ctx)
{
    JobsCtx *j = ctx;
    const char *p[1] = {c->owner->owner_text};
    PGresult *r = pg_run(err, c, P_JOBS_LOAD, 1, p);
    if (!r)
        return false;
    int rows = PQntuples(r);
    char **arr = rows ? calloc((size_t)rows * 2, sizeof *arr) : NULL;
    if (rows && !arr) {
        PQclear(r);
        return pg_nomem(err);
    }
    for (int i = 0; i < rows; i++) {
        arr[2 * i] = pg_dup(r, i, 0);
        arr[2 * i + 1] = pg_dup(r, i, 1);
        if (!arr[2 * i] || !arr[2 * i + 1]) {
            idx_strings_free(arr, (size_t)rows * 2);
            PQclear(r);
            return pg_nomem(err);
        }
    }
    PQclear(r);
    *j->rows = arr;
    *j->n = (size_t)rows * 2;
    return true;
}

bool pg_jobs_load(StoError *err, void *be, char ***rows, size_t *n)
{
    JobsCtx j = {rows, n};
    return pg_tx(err, be, false, jobs_once, &j);
}
