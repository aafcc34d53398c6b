/* modify.c -- the modification / anonymization job ("ResourceModification") and the parsing
 * of Orthanc's options for POST /{level}/{id}/modify|anonymize.
 *
 * DESIGN
 * - A request is checked completely before any job exists: body shape, tag names, DicomVersion,
 *   Force for identifier tags, the resource. The request then becomes the job's payload.
 * - The job lists the source instances once (walking series, so each instance knows its source
 *   series and study for AnonymizedFrom/ModifiedFrom), then streams them: one step = one
 *   instance, read through the DICOM cache, cloned (the cached object is shared), modified,
 *   written to a buffer, ingested. Steps claim instances with an atomic counter, so two workers
 *   can run one job (max_parallel 2). Memory per step: the clone and its written copy; the
 *   cache holds the rest within its bound.
 * - New UIDs: "2.25." + the decimal of a UUIDv5-shaped SHA-1 of (job key | old UID). The key is
 *   random per job and saved with it, so every instance of the job agrees without a shared map
 *   (nothing grows with the study), references in sequences map like the originals, and a job
 *   restarted after a crash writes the same instances again (ingest answers AlreadyStored).
 * - Anonymization: the PS3.15 basic profile of the DicomVersion asked (2023b by default; 2021b,
 *   2017c, 2008 as Orthanc 1.10.1 applies them; dicom/), PatientID a generated UUID, PatientName
 *   "Anonymized-<8 hex>", PatientIdentityRemoved YES, and only for the plain profile (no Keep,
 *   Remove, Replace nor KeepPrivateTags, as Orthanc) DeidentificationMethod "MiniPACS 0.1.0 -
 *   PS 3.15-<edition> Table E.1-1 Basic Profile"; private tags removed unless KeepPrivateTags.
 *   Modification: new Study/Series/SOP Instance UIDs below the level modified, or below the
 *   level of an identifier replaced (PatientID, StudyInstanceUID, SeriesInstanceUID) when that
 *   is higher, as Orthanc (a modified study is a new study).
 * - Cancel: like Orthanc, instances already written stay (a canceled job is a Failure whose
 *   partial output is kept; resubmit restarts it and finds them AlreadyStored).
 * - KeepSource false: the source resource is deleted in finish(), after every instance
 *   succeeded.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

#define TAG_PATIENT_NAME 0x00100010u
#define TAG_PATIENT_ID 0x00100020u
#define TAG_STUDY_UID 0x0020000Du
#define TAG_SERIES_UID 0x0020000Eu
#define TAG_SOP_UID 0x00080018u
#define TAG_IDENTITY_REMOVED 0x00120062u
#define TAG_DEID_METHOD 0x00120063u


typedef struct ModFile {
    char id[IDX_ID_LEN];
    char series[IDX_ID_LEN];
    char study[IDX_ID_LEN];
    char patient[IDX_ID_LEN];
    int level;                 /* the level of the source resource it comes from */
} ModFile;

typedef struct ModSource {     /* a resource to modify: one, or several for the bulk routes */
    int level;
    char id[IDX_ID_LEN];
} ModSource;

/* The new resources a bulk job made (answer "Resources"), per level, without duplicates. */
typedef struct ModOutList {
    char (*ids)[IDX_ID_LEN];
    size_t n, cap;
} ModOutList;

struct ModifyRequest {
    Srv *srv;
    bool anonymize;
    bool bulk;                 /* /tools/bulk-modify|anonymize: answer every new resource */
    int level;
    char source[IDX_ID_LEN];   /* the first source (single-resource routes: the only one) */
    ModSource *sources;
    size_t nsources;
    cJSON *options;            /* the body as given (saved with the job) */
    bool async, keep_source, force, keep_private, remove_private;
    int priority;
    int uid_level;             /* new UIDs from this level down: the request's level, or higher
                                  when an identifier above it is replaced */
    char edition[8];           /* DicomVersion */
    char key[33];              /* random hex: the UID hash key */
    char transcode[65];        /* "Transcode": transfer syntax of the new files ("": kept) */
    DcmModifySpec *spec;

    ModFile *files;
    size_t nfiles;
    bool auto_patient_id, auto_patient_name; /* anonymization: generated per source patient */
    SrvError list_err;         /* listing failed: the first step reports it */
    _Atomic size_t next, done;

    pthread_mutex_t out_lock;
    bool have_out;
    char out[IDX_LEVELS][IDX_ID_LEN];
    ModOutList outs[IDX_LEVELS]; /* bulk only */
};

/* ---- UIDs ------------------------------------------------------------------------------- */

/* 128 bits of SHA-1(key|what|text), shaped as a version-5 UUID. */
static unsigned __int128 keyed_uuid(const char *key, const char *what, const char *text)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s|%s|%s", key, what, text);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    char h[IDX_ID_LEN];
    srv_sha1_id(buf, (size_t)n, h); /* 5 groups of 8 hex digits */
    unsigned __int128 v = 0;
    for (int i = 0, digits = 0; h[i] && digits < 32; i++) {
        char c = h[i];
        if (c == '-') continue;
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        digits++;
    }
    v &= ~((unsigned __int128)0xF << 76);
    v |= (unsigned __int128)5 << 76;
    v &= ~((unsigned __int128)0x3 << 62);
    v |= (unsigned __int128)0x2 << 62;
    return v;
}

static void uid_fn(void *ctx, const char *old_uid, char out[65])
{
    const ModifyRequest *rq = ctx;
    unsigned __int128 v = keyed_uuid(rq->key, "uid", old_uid);
    uint8_t b[16];
    for (int i = 15; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
    srv_uid_2_25(b, out);
}

static void uuid_text(unsigned __int128 v, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20) out[k++] = '-';
        out[k++] = hex[(unsigned)(v >> (124 - 4 * i)) & 0xF];
    }
    out[k] = '\0';
}

/* ---- the source instances ---------------------------------------------------------------- */

/* The most instances one modification lists (the file list's ceiling). */
#define MOD_MAX_INSTANCES ((size_t)10 * 1000 * 1000)

static bool add_series(SrvError *err, ModifyRequest *rq, const char *series, const char *study,
                       const char *patient, int level, Buf *files)
{
    StoError se = { 0 };
    IdxFile *f = NULL;
    size_t n = 0;
    if (!idx_instances_of(&se, rq->srv->db, IDX_SERIES, series, &f, &n)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    int rc = buf_reserve(files, n * sizeof(ModFile));
    for (size_t i = 0; !rc && i < n; i++) {
        ModFile m;
        memset(&m, 0, sizeof m);
        memcpy(m.id, f[i].id, IDX_ID_LEN);
        snprintf(m.series, sizeof m.series, "%s", series);
        snprintf(m.study, sizeof m.study, "%s", study);
        snprintf(m.patient, sizeof m.patient, "%s", patient);
        m.level = level;
        rc = buf_append(files, &m, sizeof m);
    }
    free(f);
    if (rc == BUF_TOO_LARGE)
        return srv_fail(err, SRV_BAD_REQUEST, "more than %zu instances to modify", MOD_MAX_INSTANCES);
    if (rc) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    return true;
}

static bool get_res(SrvError *err, Srv *srv, int level, const char *id, IdxResource *r)
{
    StoError se = { 0 };
    if (idx_resource_get(&se, srv->db, level, id, r)) return true;
    srv_error_from_sto(err, &se);
    return false;
}

static bool add_study(SrvError *err, ModifyRequest *rq, const IdxResource *study, int level, Buf *files)
{
    for (size_t i = 0; i < study->nchildren; i++)
        if (!add_series(err, rq, study->children[i], study->id, study->parent_id, level, files)) return false;
    return true;
}

/* Appends the instances under one source to files. */
static bool list_source(SrvError *err, ModifyRequest *rq, const ModSource *src, Buf *files)
{
    Srv *srv = rq->srv;
    IdxResource r = { 0 }, s = { 0 }, st = { 0 };
    bool ok = false;
    if (!get_res(err, srv, src->level, src->id, &r)) return false;
    switch (src->level) {
    case IDX_PATIENT:
        for (size_t i = 0; i < r.nchildren; i++) {
            if (!get_res(err, srv, IDX_STUDY, r.children[i], &st)) goto out;
            bool k = add_study(err, rq, &st, src->level, files);
            idx_resource_cleanup(&st);
            if (!k) goto out;
        }
        break;
    case IDX_STUDY:
        if (!add_study(err, rq, &r, src->level, files)) goto out;
        break;
    case IDX_SERIES:
        if (!get_res(err, srv, IDX_STUDY, r.parent_id, &st)) goto out;
        if (!add_series(err, rq, r.id, st.id, st.parent_id, src->level, files)) goto out;
        break;
    default: { /* instance */
        if (!get_res(err, srv, IDX_SERIES, r.parent_id, &s)) goto out;
        if (!get_res(err, srv, IDX_STUDY, s.parent_id, &st)) goto out;
        ModFile m;
        memset(&m, 0, sizeof m);
        memcpy(m.id, r.id, IDX_ID_LEN);
        memcpy(m.series, s.id, IDX_ID_LEN);
        memcpy(m.study, st.id, IDX_ID_LEN);
        snprintf(m.patient, sizeof m.patient, "%s", st.parent_id);
        m.level = src->level;
        if (buf_append(files, &m, sizeof m)) { srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); goto out; }
        break;
    }
    }
    ok = true;
out:
    idx_resource_cleanup(&r);
    idx_resource_cleanup(&s);
    idx_resource_cleanup(&st);
    return ok;
}

/* Lists the instances under every source (rq->files). */
static bool list_files(SrvError *err, ModifyRequest *rq)
{
    free(rq->files);
    rq->files = NULL;
    rq->nfiles = 0;
    Buf files;
    buf_init(&files, MOD_MAX_INSTANCES * sizeof(ModFile));
    bool ok = true;
    for (size_t i = 0; ok && i < rq->nsources; i++) ok = list_source(err, rq, &rq->sources[i], &files);
    if (ok) {
        rq->nfiles = BUF_COUNT(&files, ModFile);
        rq->files = (ModFile *)(void *)buf_take(&files, NULL);
    }
    buf_free(&files);
    return ok;
}

/* ---- options ----------------------------------------------------------------------------- */

static bool is_identifier(uint32_t t)
{
    return t == TAG_PATIENT_ID || t == TAG_STUDY_UID || t == TAG_SERIES_UID || t == TAG_SOP_UID;
}

static bool bool_opt(SrvError *err, const cJSON *body, const char *name, bool def, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v) { *out = def; return true; }
    if (!cJSON_IsBool(v)) return srv_fail(err, SRV_BAD_REQUEST, "option \"%s\" must be a Boolean", name);
    *out = cJSON_IsTrue(v);
    return true;
}

static bool check_force(SrvError *err, const ModifyRequest *rq, uint32_t tag, const char *name, const char *what)
{
    if (!tag || !is_identifier(tag) || rq->force) return true;
    return srv_fail(err, SRV_BAD_REQUEST, "marking tag %s as to be %s requires the \"Force\" option", name, what);
}

/* The level whose identifier a top-level tag is (PatientID -> patient, ...), else -1. */
static int identifier_level(uint32_t t)
{
    switch (t) {
    case TAG_PATIENT_ID: return IDX_PATIENT;
    case TAG_STUDY_UID: return IDX_STUDY;
    case TAG_SERIES_UID: return IDX_SERIES;
    case TAG_SOP_UID: return IDX_INSTANCE;
    default: return -1;
    }
}

/* Builds rq->spec from rq->options (already checked for shape when called from restore). */
static bool build_spec(SrvError *err, ModifyRequest *rq)
{
    const cJSON *body = rq->options;
    DcmError de = { 0 };
    rq->spec = dcm_modify_spec_new(&de, rq->anonymize, uid_fn, rq);
    if (!rq->spec) { srv_error_from_dcm(err, &de); return false; }
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(body, "Keep");
    const cJSON *remove = cJSON_GetObjectItemCaseSensitive(body, "Remove");
    const cJSON *replace = cJSON_GetObjectItemCaseSensitive(body, "Replace");
    const cJSON *creator = cJSON_GetObjectItemCaseSensitive(body, "PrivateCreator");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(body, "DicomVersion");
    if (keep && !cJSON_IsArray(keep)) return srv_fail(err, SRV_BAD_REQUEST, "\"Keep\" must be an array of tags");
    if (remove && !cJSON_IsArray(remove)) return srv_fail(err, SRV_BAD_REQUEST, "\"Remove\" must be an array of tags");
    if (replace && !cJSON_IsObject(replace)) return srv_fail(err, SRV_BAD_REQUEST, "\"Replace\" must be an object");
    if (cJSON_IsString(creator)) dcm_modify_spec_private_creator(rq->spec, creator->valuestring);
    if (rq->anonymize && cJSON_IsString(version) && !dcm_modify_spec_edition(&de, rq->spec, version->valuestring))
        return srv_fail(err, SRV_BAD_REQUEST, "%s", de.message);
    snprintf(rq->edition, sizeof rq->edition, "%s",
             rq->anonymize && cJSON_IsString(version) ? version->valuestring : "2023b");
    rq->uid_level = rq->level;
    const cJSON *it;
    uint32_t t;
    cJSON_ArrayForEach(it, keep) {
        if (!cJSON_IsString(it)) return srv_fail(err, SRV_BAD_REQUEST, "\"Keep\" must be an array of strings");
        if (!dcm_modify_spec_keep_path(&de, rq->spec, it->valuestring, &t))
            return srv_fail(err, SRV_BAD_REQUEST, "Keep: %s", de.message);
        if (!check_force(err, rq, t, it->valuestring, "kept")) return false;
    }
    cJSON_ArrayForEach(it, remove) {
        if (!cJSON_IsString(it)) return srv_fail(err, SRV_BAD_REQUEST, "\"Remove\" must be an array of strings");
        uint32_t top;
        DcmError pe = { 0 };
        /* parse once on a scratch spec to learn the top tag before the keep/remove check */
        DcmModifySpec *scratch = dcm_modify_spec_new(&pe, false, NULL, NULL);
        if (!scratch) { srv_error_from_dcm(err, &pe); return false; }
        bool ok = dcm_modify_spec_remove_path(&pe, scratch, it->valuestring, &top);
        dcm_modify_spec_free(scratch);
        if (!ok) return srv_fail(err, SRV_BAD_REQUEST, "Remove: %s", pe.message);
        if (!check_force(err, rq, top, it->valuestring, "removed")) return false;
        if (top && dcm_modify_spec_touches(rq->spec, top))
            return srv_fail(err, SRV_BAD_REQUEST, "tag %s cannot be both kept and removed", it->valuestring);
        if (!dcm_modify_spec_remove_path(&de, rq->spec, it->valuestring, &t)) { srv_error_from_dcm(err, &de); return false; }
    }
    cJSON_ArrayForEach(it, replace) {
        if (!cJSON_IsString(it) && !cJSON_IsNumber(it) && !cJSON_IsArray(it) && !cJSON_IsNull(it))
            return srv_fail(err, SRV_BAD_REQUEST, "\"Replace\": the value of %s must be a string or an array", it->string);
        uint32_t top = 0;
        if (dcm_tag_parse(it->string, &top) && dcm_modify_spec_touches(rq->spec, top))
            return srv_fail(err, SRV_BAD_REQUEST, "tag %s is already kept or removed", it->string);
        if (!dcm_modify_spec_replace_json(&de, rq->spec, it->string, it, &top))
            return srv_fail(err, SRV_BAD_REQUEST, "\"Replace\": %s", de.message);
        if (!check_force(err, rq, top, it->string, "replaced")) return false;
        /* a new identifier makes a new resource at its level: new UIDs below it too */
        int l = identifier_level(top);
        if (l >= 0 && l < rq->uid_level) rq->uid_level = l;
    }
    if (rq->anonymize) {
        dcm_modify_spec_private(rq->spec, rq->keep_private);
        /* DeidentificationMethod only for the plain profile, as Orthanc */
        bool plain = !cJSON_GetArraySize(keep) && !cJSON_GetArraySize(remove) &&
                     !cJSON_GetArraySize(replace) && !rq->keep_private;
        /* PatientID / PatientName: per source patient, in modify_one() */
        rq->auto_patient_id = !dcm_modify_spec_touches(rq->spec, TAG_PATIENT_ID);
        rq->auto_patient_name = !dcm_modify_spec_touches(rq->spec, TAG_PATIENT_NAME);
        if (!dcm_modify_spec_touches(rq->spec, TAG_IDENTITY_REMOVED))
            dcm_modify_spec_replace(&de, rq->spec, TAG_IDENTITY_REMOVED, "YES");
        if (plain) {
            char method[128];
            snprintf(method, sizeof method, "%s %s - PS 3.15-%s Table E.1-1 Basic Profile", MP_NAME,
                     MP_VERSION, rq->edition);
            dcm_modify_spec_replace(&de, rq->spec, TAG_DEID_METHOD, method);
        }
    } else {
        if (rq->remove_private) dcm_modify_spec_private(rq->spec, false);
        static const uint32_t uids[] = { TAG_STUDY_UID, TAG_SERIES_UID, TAG_SOP_UID };
        static const int from_level[] = { IDX_STUDY, IDX_SERIES, IDX_INSTANCE };
        for (int i = 0; i < 3; i++)
            if (rq->uid_level <= from_level[i] && !dcm_modify_spec_touches(rq->spec, uids[i]))
                dcm_modify_spec_remap(&de, rq->spec, uids[i]);
        if (rq->level == IDX_PATIENT && !dcm_modify_spec_touches(rq->spec, TAG_PATIENT_ID))
            return srv_fail(err, SRV_BAD_REQUEST, "modifying a patient requires replacing its PatientID");
    }
    return true;
}

static bool parse_options(SrvError *err, ModifyRequest *rq)
{
    const cJSON *body = rq->options;
    if (!cJSON_IsObject(body)) return srv_fail(err, SRV_BAD_REQUEST, "the body must be a JSON object");
    bool sync = true;
    if (!bool_opt(err, body, "Force", false, &rq->force) ||
        !bool_opt(err, body, "KeepPrivateTags", false, &rq->keep_private) ||
        !bool_opt(err, body, "RemovePrivateTags", false, &rq->remove_private) ||
        !bool_opt(err, body, "KeepSource", true, &rq->keep_source) ||
        !bool_opt(err, body, "Asynchronous", false, &rq->async) ||
        !bool_opt(err, body, "Synchronous", !rq->async, &sync))
        return false;
    rq->async = !sync;
    bool permissive = false;
    if (!bool_opt(err, body, "Permissive", false, &permissive)) return false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "Priority");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
            return srv_fail(err, SRV_BAD_REQUEST, "option \"Priority\" must be an integer");
        rq->priority = v->valueint;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "Transcode");
    if (v) {
        if (!cJSON_IsString(v) || !srv_transcode_supported(v->valuestring))
            return srv_fail(err, SRV_BAD_REQUEST, "option \"Transcode\": cannot write transfer syntax \"%s\"",
                            cJSON_IsString(v) ? v->valuestring : "?");
        snprintf(rq->transcode, sizeof rq->transcode, "%s", v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "DicomVersion");
    if (v && rq->anonymize && !cJSON_IsString(v))
        return srv_fail(err, SRV_BAD_REQUEST, "option \"DicomVersion\" must be a string");
    v = cJSON_GetObjectItemCaseSensitive(body, "PrivateCreator");
    if (v && !cJSON_IsString(v)) return srv_fail(err, SRV_BAD_REQUEST, "option \"PrivateCreator\" must be a string");
    return build_spec(err, rq);
}

static ModifyRequest *rq_alloc(Srv *srv)
{
    ModifyRequest *rq = calloc(1, sizeof *rq);
    if (!rq) return NULL;
    rq->srv = srv;
    pthread_mutex_init(&rq->out_lock, NULL);
    return rq;
}

void modify_request_free(ModifyRequest *rq)
{
    if (!rq) return;
    dcm_modify_spec_free(rq->spec);
    cJSON_Delete(rq->options);
    free(rq->files);
    free(rq->sources);
    for (int l = 0; l < IDX_LEVELS; l++) free(rq->outs[l].ids);
    pthread_mutex_destroy(&rq->out_lock);
    free(rq);
}

static bool set_sources(ModifyRequest *rq, int level, const char *const *ids, size_t n)
{
    free(rq->sources);
    rq->sources = calloc(n ? n : 1, sizeof *rq->sources);
    if (!rq->sources) return false;
    for (size_t i = 0; i < n; i++) {
        rq->sources[i].level = level;
        snprintf(rq->sources[i].id, IDX_ID_LEN, "%s", ids[i]);
    }
    rq->nsources = n;
    return true;
}

static void new_key(char key[33])
{
    char u[STO_UUID_LEN];
    sto_uuid_new(u); /* random v4 */
    int k = 0;
    for (int i = 0; u[i] && k < 32; i++)
        if (u[i] != '-') key[k++] = u[i];
    key[k] = '\0';
}

ModifyRequest *modify_request_new(SrvError *err, Srv *srv, int level, const char *id,
                                  const cJSON *body, bool anonymize)
{
    ModifyRequest *rq = rq_alloc(srv);
    if (!rq) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    rq->anonymize = anonymize;
    rq->level = level;
    snprintf(rq->source, sizeof rq->source, "%s", id);
    if (!set_sources(rq, level, &id, 1)) {
        modify_request_free(rq);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    new_key(rq->key);
    rq->options = body ? cJSON_Duplicate(body, 1) : cJSON_CreateObject();
    if (!rq->options || !parse_options(err, rq) || !list_files(err, rq)) {
        modify_request_free(rq);
        return NULL;
    }
    return rq;
}

static int level_from_name(const char *name)
{
    static const char *const names[IDX_LEVELS] = { "patient", "study", "series", "instance" };
    for (int l = 0; l < IDX_LEVELS; l++)
        if (!strcasecmp(name, names[l])) return l;
    return -1;
}

ModifyRequest *modify_request_new_bulk(SrvError *err, Srv *srv, const cJSON *body, bool anonymize)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(body, "Resources");
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(body, "Level"), *it;
    if (!cJSON_IsObject(body) || !cJSON_IsArray(res) || cJSON_GetArraySize(res) == 0) {
        srv_fail(err, SRV_BAD_REQUEST, "\"Resources\" must be a non-empty array of resource IDs");
        return NULL;
    }
    int level = -1;
    if (lv && (!cJSON_IsString(lv) || (level = level_from_name(lv->valuestring)) < 0)) {
        srv_fail(err, SRV_BAD_REQUEST, "\"Level\" must be Patient, Study, Series or Instance");
        return NULL;
    }
    ModifyRequest *rq = rq_alloc(srv);
    if (!rq || !(rq->sources = calloc((size_t)cJSON_GetArraySize(res), sizeof *rq->sources))) {
        modify_request_free(rq);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    rq->anonymize = anonymize;
    rq->bulk = true;
    /* each resource at its own level; the UIDs renewed follow "Level", else the highest level
     * among the resources */
    int top = IDX_INSTANCE;
    cJSON_ArrayForEach(it, res) {
        IdxResource r = { 0 };
        if (!cJSON_IsString(it)) {
            srv_fail(err, SRV_BAD_REQUEST, "\"Resources\" must be an array of strings");
            modify_request_free(rq);
            return NULL;
        }
        if (!get_res(err, srv, -1, it->valuestring, &r)) {
            modify_request_free(rq);
            return NULL;
        }
        rq->sources[rq->nsources].level = r.level;
        snprintf(rq->sources[rq->nsources++].id, IDX_ID_LEN, "%s", r.id);
        if (r.level < top) top = r.level;
        idx_resource_cleanup(&r);
    }
    rq->level = level >= 0 ? level : top;
    snprintf(rq->source, sizeof rq->source, "%s", rq->sources[0].id);
    new_key(rq->key);
    rq->options = cJSON_Duplicate(body, 1);
    if (!rq->options || !parse_options(err, rq) || !list_files(err, rq)) {
        if (!rq->options) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        modify_request_free(rq);
        return NULL;
    }
    return rq;
}

bool modify_request_async(const ModifyRequest *rq) { return rq->async; }
int modify_request_priority(const ModifyRequest *rq) { return rq->priority; }

/* ---- one instance ------------------------------------------------------------------------ */

/* Reads (through the cache), clones and modifies instance i; writes it into *buf. */
static bool modify_one(SrvError *err, ModifyRequest *rq, size_t i, void **buf, size_t *len)
{
    CacheEntry *ce = cache_acquire(err, rq->srv, rq->files[i].id);
    if (!ce) return false;
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    bool ok = dcm_object_clone(&de, cache_object(ce), &obj);
    cache_release(ce);
    ok = ok && dcm_modify(&de, obj, rq->spec);
    if (ok && (rq->auto_patient_id || rq->auto_patient_name)) {
        /* an anonymized patient per source patient, the same for all its instances */
        char pid[37], name[32];
        uuid_text(keyed_uuid(rq->key, "patient", rq->files[i].patient), pid);
        snprintf(name, sizeof name, "Anonymized-%.8s", pid);
        DcmModifySpec *ps = dcm_modify_spec_new(&de, false, NULL, NULL);
        ok = ps && (!rq->auto_patient_id || dcm_modify_spec_replace(&de, ps, TAG_PATIENT_ID, pid)) &&
             (!rq->auto_patient_name || dcm_modify_spec_replace(&de, ps, TAG_PATIENT_NAME, name)) &&
             dcm_modify(&de, obj, ps);
        dcm_modify_spec_free(ps);
    }
    ok = ok && dcm_write(&de, obj, NULL, buf, len);
    dcm_object_destroy(obj);
    if (!ok) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    if (rq->transcode[0]) { /* server/transcode.c */
        void *t = NULL;
        size_t tl = 0;
        ok = srv_transcode(err, *buf, *len, rq->transcode, &t, &tl);
        free(*buf);
        *buf = ok ? t : NULL;
        *len = ok ? tl : 0;
    }
    return ok;
}

/* Adds id to the list unless present (instances are new each time: not searched). */
static bool out_add(ModOutList *o, const char *id, bool unique)
{
    if (!unique)
        for (size_t i = 0; i < o->n; i++)
            if (!strcmp(o->ids[i], id)) return true;
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        void *t = realloc(o->ids, nc * sizeof *o->ids);
        if (!t) return false;
        o->ids = t;
        o->cap = nc;
    }
    snprintf(o->ids[o->n++], IDX_ID_LEN, "%s", id);
    return true;
}

static bool process(SrvError *err, ModifyRequest *rq, size_t i)
{
    void *buf = NULL;
    size_t len = 0;
    if (!modify_one(err, rq, i, &buf, &len)) return false;
    const ModFile *f = &rq->files[i];
    const char *name = rq->anonymize ? "AnonymizedFrom" : "ModifiedFrom";
    SrvMeta meta[IDX_LEVELS] = {
        { name, f->patient }, { name, f->study }, { name, f->series }, { name, f->id },
    };
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST };
    for (int l = f->level; l < IDX_LEVELS; l++) {
        origin.extra_meta[l] = &meta[l];
        origin.nextra_meta[l] = 1;
    }
    IngestResult res;
    bool ok = ingest_buffer(err, rq->srv, buf, len, &origin, &res);
    free(buf);
    if (!ok) return false;
    pthread_mutex_lock(&rq->out_lock);
    if (!rq->have_out) {
        memcpy(rq->out, res.ids, sizeof rq->out);
        rq->have_out = true;
    }
    bool ok2 = true;
    if (rq->bulk)
        for (int l = 0; l < IDX_LEVELS && ok2; l++) ok2 = out_add(&rq->outs[l], res.ids[l], l == IDX_INSTANCE);
    pthread_mutex_unlock(&rq->out_lock);
    if (!ok2) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    return true;
}

bool modify_instance(SrvError *err, ModifyRequest *rq, void **buf, size_t *len)
{
    if (rq->nfiles != 1) return srv_fail(err, SRV_INTERNAL, "not an instance");
    return modify_one(err, rq, 0, buf, len);
}

/* ---- the job type ------------------------------------------------------------------------ */

static int job_step(void *p, SrvError *err)
{
    ModifyRequest *rq = p;
    if (rq->list_err.code) {
        *err = rq->list_err;
        return JOB_STEP_FAILURE;
    }
    size_t i = atomic_fetch_add(&rq->next, 1);
    if (i >= rq->nfiles) return JOB_STEP_DONE;
    if (!process(err, rq, i)) {
        SRV_LOG_WARN("jobs", "modification of instance %s failed: %s", rq->files[i].id, err->message);
        return JOB_STEP_FAILURE;
    }
    atomic_fetch_add(&rq->done, 1);
    return i + 1 >= rq->nfiles ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}

static bool job_finish(void *p, SrvError *err)
{
    ModifyRequest *rq = p;
    if (rq->keep_source) return true;
    int rl;
    char rid[IDX_ID_LEN];
    SrvError e = { 0 };
    for (size_t i = 0; i < rq->nsources; i++) {
        memset(&e, 0, sizeof e);
        if (!srv_delete(&e, rq->srv, rq->sources[i].level, rq->sources[i].id, &rl, rid) &&
            e.code != SRV_UNKNOWN_RESOURCE) {
            *err = e;
            return false;
        }
    }
    return true;
}

static double job_progress(void *p)
{
    ModifyRequest *rq = p;
    return rq->nfiles ? (double)atomic_load(&rq->done) / (double)rq->nfiles : 0;
}

static void add_output(cJSON *o, ModifyRequest *rq)
{
    pthread_mutex_lock(&rq->out_lock);
    if (rq->have_out) {
        char path[96];
        snprintf(path, sizeof path, "/%s/%s", srv_level_route(rq->level), rq->out[rq->level]);
        cJSON_AddStringToObject(o, "ID", rq->out[rq->level]);
        cJSON_AddStringToObject(o, "Path", path);
        cJSON_AddStringToObject(o, "PatientID", rq->out[IDX_PATIENT]);
        cJSON_AddStringToObject(o, "Type", srv_level_name(rq->level));
    }
    pthread_mutex_unlock(&rq->out_lock);
}

/* Bulk: {"Resources": [{ID, Path, Type}]}, instances first, then series, studies, patients. */
static void add_bulk_output(cJSON *o, ModifyRequest *rq)
{
    cJSON *a = cJSON_AddArrayToObject(o, "Resources");
    pthread_mutex_lock(&rq->out_lock);
    for (int l = IDX_LEVELS - 1; l >= 0; l--)
        for (size_t i = 0; i < rq->outs[l].n; i++) {
            char path[96];
            cJSON *r = cJSON_CreateObject();
            snprintf(path, sizeof path, "/%s/%s", srv_level_route(l), rq->outs[l].ids[i]);
            cJSON_AddStringToObject(r, "ID", rq->outs[l].ids[i]);
            cJSON_AddStringToObject(r, "Path", path);
            cJSON_AddStringToObject(r, "Type", srv_level_name(l));
            cJSON_AddItemToArray(a, r);
        }
    pthread_mutex_unlock(&rq->out_lock);
}

static cJSON *job_content(void *p)
{
    ModifyRequest *rq = p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Description", "REST API");
    cJSON_AddNumberToObject(o, "FailedInstancesCount", 0);
    if (!rq->bulk) add_output(o, rq);
    cJSON_AddNumberToObject(o, "InstancesCount", (double)rq->nfiles);
    cJSON_AddBoolToObject(o, "IsAnonymization", rq->anonymize);
    if (rq->bulk) {
        add_bulk_output(o, rq);
    } else {
        cJSON *parents = cJSON_AddArrayToObject(o, "ParentResources");
        cJSON_AddItemToArray(parents, cJSON_CreateString(rq->source));
    }
    return o;
}

static cJSON *job_serialize(void *p)
{
    ModifyRequest *rq = p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "Anonymize", rq->anonymize);
    cJSON_AddNumberToObject(o, "Level", rq->level);
    cJSON_AddStringToObject(o, "Source", rq->source);
    cJSON_AddBoolToObject(o, "Bulk", rq->bulk);
    cJSON *srcs = cJSON_AddArrayToObject(o, "Sources");
    for (size_t i = 0; i < rq->nsources; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "Level", rq->sources[i].level);
        cJSON_AddStringToObject(x, "ID", rq->sources[i].id);
        cJSON_AddItemToArray(srcs, x);
    }
    cJSON_AddStringToObject(o, "Key", rq->key);
    cJSON_AddNumberToObject(o, "InstancesCount", (double)rq->nfiles);
    cJSON_AddItemToObject(o, "Options", cJSON_Duplicate(rq->options, 1));
    cJSON *out = cJSON_CreateArray();
    pthread_mutex_lock(&rq->out_lock);
    if (rq->have_out)
        for (int l = 0; l < IDX_LEVELS; l++) cJSON_AddItemToArray(out, cJSON_CreateString(rq->out[l]));
    pthread_mutex_unlock(&rq->out_lock);
    cJSON_AddItemToObject(o, "Output", out);
    return o;
}

static void job_reset(void *p)
{
    ModifyRequest *rq = p;
    memset(&rq->list_err, 0, sizeof rq->list_err);
    if (!list_files(&rq->list_err, rq) && !rq->list_err.code) rq->list_err.code = SRV_INTERNAL;
    atomic_store(&rq->next, 0);
    atomic_store(&rq->done, 0);
    pthread_mutex_lock(&rq->out_lock);
    rq->have_out = false;
    for (int l = 0; l < IDX_LEVELS; l++) rq->outs[l].n = 0;
    pthread_mutex_unlock(&rq->out_lock);
}

static void job_free(void *p) { modify_request_free(p); }

static void *job_unserialize(SrvError *err, Srv *srv, const cJSON *j)
{
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(j, "Source");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "Key");
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(j, "Level");
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(j, "Options");
    if (!cJSON_IsString(source) || !cJSON_IsString(key) || !cJSON_IsNumber(level) ||
        level->valueint < 0 || level->valueint >= IDX_LEVELS || !cJSON_IsObject(options)) {
        srv_fail(err, SRV_BAD_JSON, "malformed saved modification job");
        return NULL;
    }
    ModifyRequest *rq = rq_alloc(srv);
    if (!rq) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    rq->anonymize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "Anonymize"));
    rq->level = level->valueint;
    snprintf(rq->source, sizeof rq->source, "%s", source->valuestring);
    snprintf(rq->key, sizeof rq->key, "%s", key->valuestring);
    rq->bulk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "Bulk"));
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(j, "Sources"), *x;
    const char *one = rq->source;
    bool ok = cJSON_GetArraySize(srcs) > 0 ? set_sources(rq, rq->level, NULL, 0) : set_sources(rq, rq->level, &one, 1);
    if (ok && cJSON_GetArraySize(srcs) > 0) {
        free(rq->sources);
        rq->sources = calloc((size_t)cJSON_GetArraySize(srcs), sizeof *rq->sources);
        ok = rq->sources != NULL;
        cJSON_ArrayForEach(x, srcs) {
            if (!ok) break;
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(x, "Level"), *id = cJSON_GetObjectItemCaseSensitive(x, "ID");
            if (!cJSON_IsNumber(l) || l->valueint < 0 || l->valueint >= IDX_LEVELS || !cJSON_IsString(id)) {
                ok = false;
                break;
            }
            rq->sources[rq->nsources].level = l->valueint;
            snprintf(rq->sources[rq->nsources++].id, IDX_ID_LEN, "%s", id->valuestring);
        }
    }
    rq->options = cJSON_Duplicate(options, 1);
    if (!ok || !rq->options || !parse_options(err, rq)) {
        if (!ok) srv_fail(err, SRV_BAD_JSON, "malformed saved modification job");
        modify_request_free(rq);
        return NULL;
    }
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "InstancesCount");
    /* For Content only: the list itself is rebuilt by reset() before any step runs again. */
    if (cJSON_IsNumber(count) && count->valuedouble >= 0) rq->nfiles = (size_t)count->valuedouble;
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "Output");
    if (cJSON_GetArraySize(out) == IDX_LEVELS) {
        for (int l = 0; l < IDX_LEVELS; l++)
        {
            const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(out, l));
            snprintf(rq->out[l], IDX_ID_LEN, "%s", v ? v : "");
        }
        rq->have_out = true;
    }
    return rq;
}

const JobType modify_job_type = {
    .name = "ResourceModification",
    .max_parallel = 2,
    .step = job_step,
    .finish = job_finish,
    .progress = job_progress,
    .content = job_content,
    .serialize = job_serialize,
    .reset = job_reset,
    .free = job_free,
    .unserialize = job_unserialize,
};

bool modify_submit(SrvError *err, ModifyRequest *rq, char job_id[JOB_ID_LEN])
{
    return jobs_submit(err, &modify_job_type, rq, rq->priority, job_id);
}
