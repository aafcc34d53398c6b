/* index.c -- the index front: the public idx_* functions of storage.h, backend-neutral.
 *
 * DESIGN
 * An IdxDb is a backend's operations table plus that backend's private handle. Every public
 * function checks its arguments and zeroes its outputs here, once for all backends, then
 * dispatches (idx_backend.h says what a backend may assume and must guarantee). Also here:
 * the parts of a call that are not about storage at all: parsing /tools/find patterns into
 * IdxFindTerm alternatives, clamping the changes limit, calling idx_jobs_load's callback
 * after the backend has let go of its connection, and the IdxResource accessors.
 * idx_open_with() is the one place that chooses a backend.
 */
#include "storage/idx_backend.h"
#include "storage/storage_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct IdxDb {
    const IdxBackend *ops;
    void *be;
};

/* ---- helpers shared with the backends ---------------------------------------------------- */

const char *idx_level_name(int level)
{
    static const char *const NAMES[IDX_LEVELS] = {"patient", "study", "series", "instance"};
    return level >= 0 && level < IDX_LEVELS ? NAMES[level] : "resource";
}

void idx_now(char out[16])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%dT%H%M%S", &tm);
}

bool idx_lookup_result(StoError *err, int r, int level, int found, const char *id)
{
    if (r < 0)
        return false;
    if (r == 0 || (level != -1 && found != level)) {
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(level), id);
        return false;
    }
    return true;
}

bool idx_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap <= n || ncap > SIZE_MAX / elem)
        return false;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---- argument checks ------------------------------------------------------------------- */

static bool check_level(StoError *err, int level, bool any_ok)
{
    if ((level >= IDX_PATIENT && level <= IDX_INSTANCE) || (any_ok && level == -1))
        return true;
    sto_set_err(err, STO_ERR_ARG, "bad resource level %d", level);
    return false;
}

/* A level (any_ok: or -1) and a non-NULL ID. */
static bool check_ref(StoError *err, int level, bool any_ok, const char *id)
{
    if (!check_level(err, level, any_ok))
        return false;
    if (!id) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID");
        return false;
    }
    return true;
}

static bool check_db(StoError *err, const IdxDb *db)
{
    if (db)
        return true;
    sto_set_err(err, STO_ERR_ARG, "no index");
    return false;
}

static bool check_new_instance(StoError *err, const IdxNewInstance *in)
{
    for (int l = 0; l < IDX_LEVELS; l++) {
        if (!in->ids[l] || !*in->ids[l] || strlen(in->ids[l]) >= IDX_ID_LEN) {
            sto_set_err(err, STO_ERR_ARG, "bad %s ID", idx_level_name(l));
            return false;
        }
        if ((in->ntags[l] && !in->tags[l]) || (in->nmeta[l] && !in->meta[l])) {
            sto_set_err(err, STO_ERR_ARG, "NULL tags or metadata with a count");
            return false;
        }
        for (size_t i = 0; i < in->nmeta[l]; i++) {
            if (!in->meta[l][i].name) {
                sto_set_err(err, STO_ERR_ARG, "metadata without a name");
                return false;
            }
        }
    }
    if (!sto_uuid_valid(in->uuid)) {
        sto_set_err(err, STO_ERR_ARG, "malformed uuid");
        return false;
    }
    return true;
}

/* ---- open / close ---------------------------------------------------------------------- */

IdxDb *idx_open_with(StoError *err, const IdxOptions *opt)
{
    const IdxBackend *ops = NULL;
    if (!opt) {
        sto_set_err(err, STO_ERR_ARG, "no index options");
        return NULL;
    }
    switch (opt->backend) {
    case IDX_BACKEND_SQLITE:
        ops = &idx_sqlite_backend;
        break;
    case IDX_BACKEND_POSTGRESQL:
        ops = &idx_pg_backend;
        break;
    }
    if (!ops) {
        sto_set_err(err, STO_ERR_ARG, "unknown index backend %d", (int)opt->backend);
        return NULL;
    }
    IdxDb *db = calloc(1, sizeof *db);
    if (!db) {
        sto_set_err(err, STO_ERR_NOMEM, "out of memory");
        return NULL;
    }
    db->ops = ops;
    if (!(db->be = ops->open(err, opt))) {
        free(db);
        return NULL;
    }
    return db;
}

IdxDb *idx_open(StoError *err, const char *dir)
{
    IdxOptions opt = {.backend = IDX_BACKEND_SQLITE, .dir = dir};
    return idx_open_with(err, &opt);
}

void idx_close(IdxDb *db)
{
    if (!db)
        return;
    db->ops->close(db->be);
    free(db);
}

bool idx_info(StoError *err, IdxDb *db, IdxInfo *out)
{
    memset(out, 0, sizeof *out);
    if (!check_db(err, db))
        return false;
    if (!db->ops->info(err, db->be, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    out->backend = db->ops->name;
    return true;
}

/* ---- pending, store, delete ------------------------------------------------------------- */

bool idx_pending_add(StoError *err, IdxDb *db, const char *uuid)
{
    if (!sto_uuid_valid(uuid)) {
        sto_set_err(err, STO_ERR_ARG, "malformed uuid");
        return false;
    }
    return check_db(err, db) && db->ops->pending_add(err, db->be, uuid);
}

bool idx_pending_clear(StoError *err, IdxDb *db, const char *const *uuids, size_t n)
{
    if (n == 0)
        return true;
    if (!uuids) {
        sto_set_err(err, STO_ERR_ARG, "NULL uuids");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!uuids[i]) {
            sto_set_err(err, STO_ERR_ARG, "NULL uuid");
            return false;
        }
    }
    return check_db(err, db) && db->ops->pending_clear(err, db->be, uuids, n);
}

bool idx_pending_list(StoError *err, IdxDb *db, IdxPending **uuids, size_t *n)
{
    *uuids = NULL;
    *n = 0;
    if (!check_db(err, db))
        return false;
    if (!db->ops->pending_list(err, db->be, uuids, n)) {
        *uuids = NULL;
        *n = 0;
        return false;
    }
    return true;
}

bool idx_store_instance(StoError *err, IdxDb *db, const IdxNewInstance *in, IdxStoreResult *out)
{
    memset(out, 0, sizeof *out);
    if (!check_db(err, db) || !check_new_instance(err, in))
        return false;
    if (!db->ops->store_instance(err, db->be, in, out)) {
        free(out->old_files);
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

bool idx_delete(StoError *err, IdxDb *db, int level, const char *id, IdxDeleteResult *out)
{
    memset(out, 0, sizeof *out);
    out->remaining_level = -1;
    if (!check_db(err, db) || !check_ref(err, level, true, id))
        return false;
    if (!db->ops->delete_resource(err, db->be, level, id, out)) {
        memset(out, 0, sizeof *out);
        out->remaining_level = -1;
        return false;
    }
    return true;
}

/* ---- reads ----------------------------------------------------------------------------- */

bool idx_resource_get(StoError *err, IdxDb *db, int level, const char *id, IdxResource *out)
{
    memset(out, 0, sizeof *out);
    if (!check_db(err, db) || !check_ref(err, level, true, id))
        return false;
    if (!db->ops->resource_get(err, db->be, level, id, out)) {
        idx_resource_cleanup(out);
        return false;
    }
    return true;
}

bool idx_resources_get(StoError *err, IdxDb *db, int level, const char *const *ids, size_t n,
                       unsigned what, IdxResource *out)
{
    if (n)
        memset(out, 0, n * sizeof *out);
    if (!check_db(err, db))
        return false;
    if (level < IDX_PATIENT || level > IDX_INSTANCE || (n && (!ids || !out))) {
        sto_set_err(err, STO_ERR_ARG, "bad arguments to idx_resources_get");
        return false;
    }
    if (!n)
        return true;
    if (!db->ops->resources_get(err, db->be, level, ids, n, what, out)) {
        for (size_t i = 0; i < n; i++)
            idx_resource_cleanup(&out[i]);
        return false;
    }
    return true;
}

void idx_resource_cleanup(IdxResource *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntags; i++)
        free(r->tag_values ? r->tag_values[i] : NULL);
    for (size_t i = 0; i < r->nchildren; i++)
        free(r->children ? r->children[i] : NULL);
    for (size_t i = 0; i < r->nmeta; i++) {
        free(r->meta_names ? r->meta_names[i] : NULL);
        free(r->meta_values ? r->meta_values[i] : NULL);
    }
    free(r->tag_keys);
    free(r->tag_values);
    free(r->children);
    free(r->meta_names);
    free(r->meta_values);
    memset(r, 0, sizeof *r);
}

const char *idx_resource_metadata(const IdxResource *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nmeta; i++) {
        if (strcmp(r->meta_names[i], name) == 0)
            return r->meta_values[i];
    }
    return NULL;
}

void idx_strings_free(char **strings, size_t n)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

bool idx_list(StoError *err, IdxDb *db, int level, uint64_t since, uint64_t limit, char ***ids,
              size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!check_db(err, db) || !check_level(err, level, false))
        return false;
    if (!db->ops->list(err, db->be, level, since, limit, ids, n)) {
        *ids = NULL;
        *n = 0;
        return false;
    }
    return true;
}

bool idx_instances_of(StoError *err, IdxDb *db, int level, const char *id, IdxFile **files,
                      size_t *n)
{
    *files = NULL;
    *n = 0;
    if (!check_db(err, db) || !check_ref(err, level, true, id))
        return false;
    if (!db->ops->instances_of(err, db->be, level, id, files, n)) {
        *files = NULL;
        *n = 0;
        return false;
    }
    return true;
}

bool idx_resource_counts(StoError *err, IdxDb *db, int level, const char *id, IdxCounts *out)
{
    memset(out, 0, sizeof *out);
    if (!check_db(err, db) || !check_ref(err, level, true, id))
        return false;
    if (!db->ops->resource_counts(err, db->be, level, id, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

bool idx_totals(StoError *err, IdxDb *db, IdxTotals *out)
{
    memset(out, 0, sizeof *out);
    if (!check_db(err, db))
        return false;
    if (!db->ops->totals(err, db->be, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

/* ---- find ------------------------------------------------------------------------------ */

/* Parsed constraints: terms[] and all their alternatives point into one copy of the
 * patterns (split in place at '\\' and, for ranges, at the first '-'). */
typedef struct FindQuery {
    IdxFindTerm *terms;
    IdxMatch *matches;
    char *text;
} FindQuery;

static void find_query_free(FindQuery *q)
{
    free(q->terms);
    free(q->matches);
    free(q->text);
}

static bool find_query_parse(StoError *err, int level, const IdxFindConstraint *c, size_t n,
                             FindQuery *q)
{
    size_t nmatch = 0, textlen = 0;
    memset(q, 0, sizeof *q);
    for (size_t i = 0; i < n; i++) {
        if (!c[i].pattern || c[i].level < 0 || c[i].level > level) {
            sto_set_err(err, STO_ERR_ARG, "bad find constraint");
            return false;
        }
        nmatch++;
        for (const char *p = c[i].pattern; *p; p++)
            nmatch += *p == '\\';
        textlen += strlen(c[i].pattern) + 1;
    }
    q->terms = calloc(n ? n : 1, sizeof *q->terms);
    q->matches = calloc(nmatch ? nmatch : 1, sizeof *q->matches);
    q->text = malloc(textlen ? textlen : 1);
    if (!q->terms || !q->matches || !q->text) {
        find_query_free(q);
        sto_set_err(err, STO_ERR_NOMEM, "out of memory");
        return false;
    }
    char *t = q->text;
    IdxMatch *m = q->matches;
    for (size_t i = 0; i < n; i++) {
        IdxFindTerm *term = &q->terms[i];
        term->depth = level - c[i].level;
        term->tag = c[i].tag;
        term->case_insensitive = c[i].case_insensitive;
        term->match = m;
        size_t len = strlen(c[i].pattern);
        memcpy(t, c[i].pattern, len + 1);
        for (char *alt = t;;) {
            char *end = strchr(alt, '\\');
            if (end)
                *end = '\0';
            char *dash = c[i].range ? strchr(alt, '-') : NULL;
            if (dash) {
                *dash = '\0';
                m->kind = IDX_MATCH_RANGE;
                m->text = *alt ? alt : NULL;
                m->high = dash[1] ? dash + 1 : NULL;
            } else {
                bool literal = c[i].literal_list && (end || alt != t);
                m->kind = !literal && strpbrk(alt, "*?") ? IDX_MATCH_WILDCARD : IDX_MATCH_EQUAL;
                m->text = alt;
            }
            m++;
            term->nmatch++;
            if (!end)
                break;
            alt = end + 1;
        }
        t += len + 1;
    }
    return true;
}

bool idx_find(StoError *err, IdxDb *db, int level, const IdxFindConstraint *c, size_t n,
              uint64_t since, uint64_t limit, char ***ids, size_t *nids)
{
    FindQuery q;
    *ids = NULL;
    *nids = 0;
    if (!check_db(err, db) || !check_level(err, level, false))
        return false;
    if (n && !c) {
        sto_set_err(err, STO_ERR_ARG, "NULL find constraints");
        return false;
    }
    if (!find_query_parse(err, level, c, n, &q))
        return false;
    bool ok = db->ops->find(err, db->be, level, q.terms, n, since, limit, ids, nids);
    find_query_free(&q);
    if (!ok) {
        *ids = NULL;
        *nids = 0;
    }
    return ok;
}

/* ---- changes --------------------------------------------------------------------------- */

bool idx_change_add(StoError *err, IdxDb *db, const char *type, int level, const char *id)
{
    if (!type || strlen(type) >= sizeof ((IdxChange *)0)->type || !id ||
        strlen(id) >= IDX_ID_LEN) {
        sto_set_err(err, STO_ERR_ARG, "bad change type or ID");
        return false;
    }
    return check_db(err, db) && check_level(err, level, false) &&
           db->ops->change_add(err, db->be, type, level, id);
}

bool idx_changes(StoError *err, IdxDb *db, int64_t since, uint64_t limit, IdxChange **out,
                 size_t *n, bool *done, int64_t *last)
{
    *out = NULL;
    *n = 0;
    *done = true;
    *last = 0;
    if (!check_db(err, db))
        return false;
    if (limit == 0)
        limit = 100;
    if (limit > 1000000)
        limit = 1000000;
    if (!db->ops->changes(err, db->be, since, limit, out, n, done, last)) {
        *out = NULL;
        *n = 0;
        *done = true;
        *last = 0;
        return false;
    }
    return true;
}

bool idx_changes_last(StoError *err, IdxDb *db, IdxChange **out, size_t *n, int64_t *last)
{
    *out = NULL;
    *n = 0;
    *last = 0;
    if (!check_db(err, db))
        return false;
    if (!db->ops->changes_last(err, db->be, out, n, last)) {
        *out = NULL;
        *n = 0;
        *last = 0;
        return false;
    }
    return true;
}

bool idx_changes_clear(StoError *err, IdxDb *db)
{
    return check_db(err, db) && db->ops->changes_clear(err, db->be);
}

/* ---- metadata -------------------------------------------------------------------------- */

static bool check_meta_args(StoError *err, int level, const char *id, const char *name)
{
    if (!check_level(err, level, true))
        return false;
    if (!id || !name) {
        sto_set_err(err, STO_ERR_ARG, "NULL ID or name");
        return false;
    }
    return true;
}

bool idx_metadata_set(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value)
{
    if (!check_db(err, db) || !check_meta_args(err, level, id, name))
        return false;
    if (!value) {
        sto_set_err(err, STO_ERR_ARG, "NULL metadata value");
        return false;
    }
    return db->ops->metadata_set(err, db->be, level, id, name, value);
}

bool idx_metadata_delete(StoError *err, IdxDb *db, int level, const char *id, const char *name)
{
    return check_db(err, db) && check_meta_args(err, level, id, name) &&
           db->ops->metadata_remove(err, db->be, level, id, name, -1);
}

bool idx_metadata_get(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      char **value, int64_t *revision)
{
    *value = NULL;
    if (!check_db(err, db) || !check_meta_args(err, level, id, name))
        return false;
    if (!db->ops->metadata_get(err, db->be, level, id, name, value, revision)) {
        *value = NULL;
        return false;
    }
    return true;
}

bool idx_metadata_put(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, int64_t *revision)
{
    if (!check_db(err, db) || !check_meta_args(err, level, id, name))
        return false;
    if (!value) {
        sto_set_err(err, STO_ERR_ARG, "NULL metadata value");
        return false;
    }
    return db->ops->metadata_put(err, db->be, level, id, name, value, if_match, revision);
}

bool idx_metadata_remove(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                         int64_t if_match)
{
    return check_db(err, db) && check_meta_args(err, level, id, name) &&
           db->ops->metadata_remove(err, db->be, level, id, name, if_match);
}

bool idx_attachment_set_md5(StoError *err, IdxDb *db, const char *uuid, const char *md5)
{
    if (!uuid || !md5 || strlen(md5) != 32) {
        sto_set_err(err, STO_ERR_ARG, "bad uuid or MD5");
        return false;
    }
    return check_db(err, db) && db->ops->attachment_set_md5(err, db->be, uuid, md5);
}

/* ---- protection ------------------------------------------------------------------------ */

static bool attachment_args(StoError *err, int level, const char *id, int content_type)
{
    if (!id || level < -1 || level > IDX_INSTANCE || content_type < 1024 || content_type > 65535) {
        sto_set_err(err, STO_ERR_ARG, "bad attachment arguments (content type %d)", content_type);
        return false;
    }
    return true;
}

bool idx_attachment_put(StoError *err, IdxDb *db, int level, const char *id,
                        const IdxAttachment *a, int64_t if_match, int64_t *revision,
                        char old_uuid[STO_UUID_LEN])
{
    old_uuid[0] = '\0';
    *revision = 0;
    if (!a || !attachment_args(err, level, id, a->content_type) || !check_db(err, db))
        return false;
    if (!sto_uuid_valid(a->uuid) || (a->compression != IDX_COMPRESSION_NONE &&
                                      a->compression != IDX_COMPRESSION_ZLIB)) {
        sto_set_err(err, STO_ERR_ARG, "bad attachment (uuid or compression)");
        return false;
    }
    bool ok = db->ops->attachment_put(err, db->be, level, id, a, if_match, revision, old_uuid);
    if (!ok) {
        old_uuid[0] = '\0';
        *revision = 0;
    }
    return ok;
}

bool idx_attachment_get(StoError *err, IdxDb *db, int level, const char *id, int content_type,
                        IdxAttachment *out)
{
    memset(out, 0, sizeof *out);
    if (!attachment_args(err, level, id, content_type) || !check_db(err, db))
        return false;
    bool ok = db->ops->attachment_get(err, db->be, level, id, content_type, out);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok;
}

bool idx_attachment_list(StoError *err, IdxDb *db, int level, const char *id, int **types,
                         size_t *n)
{
    *types = NULL;
    *n = 0;
    if (!attachment_args(err, level, id, 1024) || !check_db(err, db))
        return false;
    return db->ops->attachment_list(err, db->be, level, id, types, n);
}

bool idx_attachment_remove(StoError *err, IdxDb *db, int level, const char *id, int content_type,
                           int64_t if_match, char old_uuid[STO_UUID_LEN])
{
    old_uuid[0] = '\0';
    if (!attachment_args(err, level, id, content_type) || !check_db(err, db))
        return false;
    bool ok = db->ops->attachment_remove(err, db->be, level, id, content_type, if_match, old_uuid);
    if (!ok)
        old_uuid[0] = '\0';
    return ok;
}

bool idx_set_main_tags(StoError *err, IdxDb *db, int level, const char *id, const IdxTag *tags,
                       size_t n)
{
    if (!id || (n && !tags) || level < IDX_PATIENT || level > IDX_INSTANCE) {
        sto_set_err(err, STO_ERR_ARG, "bad arguments to idx_set_main_tags");
        return false;
    }
    return check_db(err, db) && db->ops->set_main_tags(err, db->be, level, id, tags, n);
}

bool idx_patient_set_protected(StoError *err, IdxDb *db, const char *patient_id, bool on)
{
    if (!patient_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL patient ID");
        return false;
    }
    return check_db(err, db) && db->ops->patient_set_protected(err, db->be, patient_id, on);
}

bool idx_patient_is_protected(StoError *err, IdxDb *db, const char *patient_id, bool *out)
{
    if (!patient_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL patient ID");
        return false;
    }
    return check_db(err, db) && db->ops->patient_is_protected(err, db->be, patient_id, out);
}

bool idx_oldest_patient(StoError *err, IdxDb *db, const char *exclude_id, char out[IDX_ID_LEN],
                        bool *found)
{
    *found = false;
    out[0] = '\0';
    if (!check_db(err, db))
        return false;
    if (!db->ops->oldest_patient(err, db->be, exclude_id ? exclude_id : "", out, found)) {
        *found = false;
        out[0] = '\0';
        return false;
    }
    return true;
}

/* ---- jobs ------------------------------------------------------------------------------ */

bool idx_job_save(StoError *err, IdxDb *db, const char *job_id, const char *json)
{
    if (!job_id || !json) {
        sto_set_err(err, STO_ERR_ARG, "NULL job ID or content");
        return false;
    }
    return check_db(err, db) && db->ops->job_save(err, db->be, job_id, json);
}

bool idx_job_delete(StoError *err, IdxDb *db, const char *job_id)
{
    if (!job_id) {
        sto_set_err(err, STO_ERR_ARG, "NULL job ID");
        return false;
    }
    return check_db(err, db) && db->ops->job_delete(err, db->be, job_id);
}

bool idx_jobs_load(StoError *err, IdxDb *db,
                   void (*fn)(void *ctx, const char *id, const char *json), void *ctx)
{
    char **rows = NULL;
    size_t n = 0;
    if (!check_db(err, db) || !db->ops->jobs_load(err, db->be, &rows, &n))
        return false;
    /* The backend has let go of its connection: fn may call back into the index. */
    if (fn) {
        for (size_t i = 0; i + 1 < n; i += 2)
            fn(ctx, rows[i], rows[i + 1]);
    }
    idx_strings_free(rows, n);
    return true;
}

bool idx_jobs_claim(StoError *err, IdxDb *db,
                   void (*fn)(void *ctx, const char *id, const char *json), void *ctx)
{
    char **rows = NULL;
    size_t n = 0;
    if (!check_db(err, db))
        return false;
    if (!db->ops->jobs_claim)
        return true; /* one process per index: nobody else's jobs to take over */
    if (!db->ops->jobs_claim(err, db->be, &rows, &n))
        return false;
    /* The backend has let go of its connection: fn may call back into the index. */
    if (fn) {
        for (size_t i = 0; i + 1 < n; i += 2)
            fn(ctx, rows[i], rows[i + 1]);
    }
    idx_strings_free(rows, n);
    return true;
}

bool idx_shared(const IdxDb *db)
{
    return db && db->ops->shared;
}

bool idx_invalidations(StoError *err, IdxDb *db, int timeout_ms, char ***ids, size_t *n,
                       bool *all)
{
    if (!ids || !n || !all) {
        sto_set_err(err, STO_ERR_ARG, "no output");
        return false;
    }
    *ids = NULL;
    *n = 0;
    *all = false;
    if (!check_db(err, db))
        return false;
    if (!db->ops->invalidations)
        return true; /* one process: it invalidates its own copies as it changes things */
    if (!db->ops->invalidations(err, db->be, timeout_ms < 0 ? 0 : timeout_ms, ids, n, all)) {
        *ids = NULL;
        *n = 0;
        return false;
    }
    return true;
}

bool idx_change_add_stable(StoError *err, IdxDb *db, const char *type, int level,
                           const char *id, int stable_age, bool *logged, int *wait_s)
{
    if (!logged || !wait_s) {
        sto_set_err(err, STO_ERR_ARG, "no output");
        return false;
    }
    *logged = false;
    *wait_s = 0;
    if (!type || strlen(type) >= sizeof ((IdxChange *)0)->type || !id ||
        strlen(id) >= IDX_ID_LEN) {
        sto_set_err(err, STO_ERR_ARG, "bad change type or ID");
        return false;
    }
    if (!check_db(err, db) || !check_level(err, level, false))
        return false;
    if (!db->ops->change_add_stable) {
        /* one process: its own unstable list is the whole truth */
        IdxResource r = { 0 };
        bool found = db->ops->resource_get(err, db->be, level, id, &r);
        idx_resource_cleanup(&r);
        if (!found)
            return false;
        if (!db->ops->change_add(err, db->be, type, level, id))
            return false;
        *logged = true;
        return true;
    }
    if (!db->ops->change_add_stable(err, db->be, type, level, id, stable_age < 0 ? 0 : stable_age,
                                    logged, wait_s)) {
        *logged = false;
        *wait_s = 0;
        return false;
    }
    return true;
}
