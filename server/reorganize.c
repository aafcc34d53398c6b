/* reorganize.c -- Orthanc's POST /studies/{id}/split and /studies/{id}/merge, as jobs
 * ("SplitStudy", "MergeStudy"), synchronous unless asked otherwise, as Orthanc 1.10.1.
 *
 * Split: the instances of the "Series" and "Instances" given (all of the study) are copied into
 * a new study: new Study/Series/SOP Instance UIDs, "Replace"/"Remove" applied (tags of the
 * patient and study modules only); "KeepSource" false (the default) deletes the copied
 * instances afterwards. Merge: the instances of the "Resources" given (studies, series or
 * instances of other studies) are copied into the target study: its patient and study main tags
 * replace theirs, new Series and SOP Instance UIDs; "KeepSource" false deletes the sources.
 *
 * DESIGN: one job type for both (a flag), on the same pieces as /modify (server/modify.c):
 * each instance is read through the DICOM cache, cloned, changed by a DcmModifySpec, written
 * and stored through the one ingest path. New UIDs are a keyed hash of the old ones (key random
 * per job, saved with it), so the instances of one series stay together, and a job restarted
 * after a crash writes the same instances again (AlreadyStored). "Permissive": an instance that
 * fails is counted in FailedInstancesCount and stays; the job goes on. The request is checked whole
 * before any job exists (400/404 as Orthanc). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

#define TAG_STUDY_UID 0x0020000Du
#define TAG_SERIES_UID 0x0020000Eu
#define TAG_SOP_UID 0x00080018u
#define MAX_INSTANCES ((size_t)10 * 1000 * 1000)

struct Reorg {
    Srv *srv;
    bool merge;
    char study[IDX_ID_LEN];   /* split: the source study; merge: the target */
    cJSON *options;           /* the body as given (saved with the job) */
    char key[33];             /* the UID hash key */
    bool keep_source, async;
    bool permissive;          /* a failing instance is counted, the job goes on */
    int priority;
    DcmModifySpec *spec;
    char **ids;               /* the instances to copy */
    size_t n;
    _Atomic bool *copied;     /* per instance: copied (only those leave with KeepSource false) */
    _Atomic size_t next, done, failed;
    pthread_mutex_t lock;
    char target[IDX_ID_LEN];  /* split: the new study, once its first instance is stored */
    char target_uid[65];
};

/* ---- options ---------------------------------------------------------------------------- */

/* The tags of the patient and study modules that split may replace or remove: the main tags
 * of both levels (StudyInstanceUID excepted: the new study gets a new one) and the other
 * attributes of PS3.3's Patient (C.7-1) and General/Patient Study (C.7-3, C.7-4a) modules. */
static bool module_tag(uint32_t tag)
{
    static const uint32_t extra[] = {
        0x00100021, 0x00100022, 0x00100032, 0x00101000, 0x00101001, 0x00101010, 0x00101020,
        0x00101030, 0x00102160, 0x00104000, 0x00102180, 0x001021b0, 0x00080090, 0x00081030,
        0x00080050, 0x00080020, 0x00080030, 0x00200010, 0x00081060, 0x00321032, 0x00321060,
        0x00081080, 0x00102000, 0x00380010, 0x00380500, 0x00100200, 0x00100201,
    };
    if (tag == TAG_STUDY_UID) return false;
    for (int l = IDX_PATIENT; l <= IDX_STUDY; l++) {
        size_t n;
        const SrvMainTag *t = srv_main_tags(l, &n);
        for (size_t i = 0; i < n; i++)
            if (t[i].tag == tag) return true;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (extra[i] == tag) return true;
    return false;
}

static bool bool_opt(SrvError *err, const cJSON *body, const char *name, bool def, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v) { *out = def; return true; }
    if (!cJSON_IsBool(v)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "Boolean value expected in field: %s", name);
    *out = cJSON_IsTrue(v);
    return true;
}

/* A field that must be absent or a list of strings. */
static bool strings_opt(SrvError *err, const cJSON *body, const char *name, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name), *it;
    *out = v;
    if (!v) return true;
    bool ok = cJSON_IsArray(v);
    cJSON_ArrayForEach(it, v) ok = ok && cJSON_IsString(it);
    return ok || srv_fail(err, SRV_BAD_FILE_FORMAT, "List of strings expected in field: %s", name);
}

static void uid_fn(void *ctx, const char *old_uid, char out[65])
{
    const Reorg *rq = ctx;
    char buf[256], h[IDX_ID_LEN];
    int n = snprintf(buf, sizeof buf, "%s|uid|%s", rq->key, old_uid);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    srv_sha1_id(buf, (size_t)n, h); /* 40 hex digits in 5 groups: the first 32 make 128 bits */
    uint8_t b[16];
    int k = 0;
    for (int i = 0; h[i] && k < 32; i++) {
        if (h[i] == '-') continue;
        unsigned v = (unsigned)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
        if (k % 2 == 0) b[k / 2] = (uint8_t)(v << 4);
        else b[k / 2] |= (uint8_t)v;
        k++;
    }
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x50); /* shaped as a version-5 UUID */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    srv_uid_2_25(b, out);
}

static bool list_add(SrvError *err, Buf *ids, const char *id)
{
    for (size_t i = 0; i < BUF_COUNT(ids, char *); i++) /* once each (small lists) */
        if (!strcmp(BUF_AT(ids, char *, i), id)) return true;
    char *s = strdup(id);
    int rc = s ? buf_append(ids, &s, sizeof s) : BUF_NOMEM;
    if (rc == BUF_OK) return true;
    free(s);
    return srv_fail(err, rc == BUF_NOMEM ? SRV_NOT_ENOUGH_MEMORY : SRV_BAD_REQUEST, "too many instances");
}

static bool add_instances_of(SrvError *err, Srv *srv, int level, const char *id, Buf *ids)
{
    char **v = NULL;
    size_t n = 0;
    if (!srv_resource_instances(err, srv, level, id, &v, &n)) return false;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) ok = list_add(err, ids, v[i]);
    srv_strings_free(v, n);
    return ok;
}

/* The study of a resource (itself for a study). */
static bool study_of(SrvError *err, Srv *srv, int level, const char *id, char out[IDX_ID_LEN])
{
    if (level == IDX_STUDY) {
        snprintf(out, IDX_ID_LEN, "%s", id);
        return true;
    }
    return srv_resource_ancestor(err, srv, level, id, IDX_STUDY, out);
}

/* The instances to copy, each checked (split: inside the study; merge: outside it). */
static bool list_instances(SrvError *err, Reorg *rq)
{
    Buf ids;
    buf_init(&ids, MAX_INSTANCES * sizeof(char *));
    bool ok = false;
    const cJSON *series = NULL, *instances = NULL, *resources = NULL, *it;
    if (rq->merge) {
        if (!strings_opt(err, rq->options, "Resources", &resources)) goto out;
        if (!resources) {
            srv_fail(err, SRV_BAD_FILE_FORMAT, "List of strings expected in field: Resources");
            goto out;
        }
    } else {
        if (!strings_opt(err, rq->options, "Series", &series) ||
            !strings_opt(err, rq->options, "Instances", &instances))
            goto out;
        if (!series && !instances) {
            srv_fail(err, SRV_BAD_REQUEST, "Both the \"Series\" and the \"Instances\" fields are missing");
            goto out;
        }
    }
    for (int pass = 0; pass < 3; pass++) {
        const cJSON *list = pass == 0 ? resources : pass == 1 ? series : instances;
        cJSON_ArrayForEach(it, list) {
            const char *id = it->valuestring;
            SrvError le = { 0 };
            int level = rq->merge ? srv_resource_level(&le, rq->srv, id) : pass == 1 ? IDX_SERIES : IDX_INSTANCE;
            char study[IDX_ID_LEN];
            if (level < IDX_STUDY || !study_of(&le, rq->srv, level, id, study)) {
                if (le.code && le.code != SRV_UNKNOWN_RESOURCE) { *err = le; goto out; }
                if (rq->merge)
                    srv_fail(err, SRV_UNKNOWN_RESOURCE, "Cannot merge an unknown resource (or a patient): %s", id);
                else
                    srv_fail(err, SRV_UNKNOWN_RESOURCE, "This %s does not belong to the study to be split: %s",
                             pass == 1 ? "series" : "instance", id);
                goto out;
            }
            bool inside = !strcmp(study, rq->study);
            if (rq->merge && inside) {
                srv_fail(err, SRV_UNKNOWN_RESOURCE, "Cannot merge a study into the same study: %s", id);
                goto out;
            }
            if (!rq->merge && !inside) {
                srv_fail(err, SRV_UNKNOWN_RESOURCE, "This %s does not belong to the study to be split: %s",
                         pass == 1 ? "series" : "instance", id);
                goto out;
            }
            if (!add_instances_of(err, rq->srv, level, id, &ids)) goto out;
        }
    }
    rq->n = BUF_COUNT(&ids, char *);
    rq->ids = (char **)(void *)buf_take(&ids, NULL);
    rq->copied = calloc(rq->n ? rq->n : 1, sizeof *rq->copied);
    if (!rq->copied) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        for (size_t i = 0; i < BUF_COUNT(&ids, char *); i++) free(BUF_AT(&ids, char *, i));
        buf_free(&ids);
    }
    return ok;
}

static bool dcm_fail(SrvError *err, const DcmError *de)
{
    srv_error_from_dcm(err, de);
    return false;
}

/* split: Replace / Remove checked (patient and study modules only) into the spec. */
static bool split_spec(SrvError *err, Reorg *rq)
{
    DcmError de = { 0 };
    const cJSON *replace = cJSON_GetObjectItemCaseSensitive(rq->options, "Replace");
    const cJSON *remove = NULL, *it;
    if (replace && !cJSON_IsObject(replace))
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "Associative array expected in field: Replace");
    if (!strings_opt(err, rq->options, "Remove", &remove)) return false;
    cJSON_ArrayForEach(it, replace) {
        uint32_t tag;
        if (!dcm_tag_parse(it->string, &tag))
            return srv_fail(err, SRV_UNKNOWN_DICOM_TAG, "Unknown DICOM tag: \"%s\"", it->string);
        char name[80];
        dcm_tag_name(tag, name, sizeof name);
        if (!module_tag(tag))
            return srv_fail(err, SRV_BAD_REQUEST, "Cannot modify the following tag while splitting a study (not in the patient/study modules): %s (%04x,%04x)",
                            name, tag >> 16, tag & 0xFFFF);
        if (!cJSON_IsString(it)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "Replace: the value of %s must be a string", name);
        if (!dcm_modify_spec_replace(&de, rq->spec, tag, it->valuestring)) return dcm_fail(err, &de);
    }
    cJSON_ArrayForEach(it, remove) {
        uint32_t tag;
        if (!dcm_tag_parse(it->valuestring, &tag))
            return srv_fail(err, SRV_UNKNOWN_DICOM_TAG, "Unknown DICOM tag: \"%s\"", it->valuestring);
        char name[80];
        dcm_tag_name(tag, name, sizeof name);
        if (!module_tag(tag))
            return srv_fail(err, SRV_BAD_REQUEST, "Cannot modify the following tag while splitting a study (not in the patient/study modules): %s (%04x,%04x)",
                            name, tag >> 16, tag & 0xFFFF);
        if (!dcm_modify_spec_remove(&de, rq->spec, tag)) return dcm_fail(err, &de);
    }
    return dcm_modify_spec_remap(&de, rq->spec, TAG_STUDY_UID) || dcm_fail(err, &de);
}

/* merge: the target's patient and study main tags replace those of the merged instances. */
static bool merge_spec(SrvError *err, Reorg *rq)
{
    DcmError de = { 0 };
    StoError se = { 0 };
    IdxResource r[2] = { { 0 }, { 0 } };
    bool ok = false;
    if (!idx_resource_get(&se, rq->srv->db, IDX_STUDY, rq->study, &r[1]) ||
        !idx_resource_get(&se, rq->srv->db, IDX_PATIENT, r[1].parent_id, &r[0])) {
        srv_error_from_sto(err, &se);
        goto out;
    }
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < r[k].ntags; i++)
            if (!dcm_modify_spec_replace(&de, rq->spec, r[k].tag_keys[i], r[k].tag_values[i])) {
                dcm_fail(err, &de);
                goto out;
            }
    ok = true;
out:
    idx_resource_cleanup(&r[0]);
    idx_resource_cleanup(&r[1]);
    return ok;
}

static bool parse(SrvError *err, Reorg *rq)
{
    const cJSON *body = rq->options;
    bool sync = true;   /* set by bool_opt; initialised for -O3's maybe-uninitialized */
    if (!cJSON_IsObject(body)) return srv_fail(err, SRV_BAD_REQUEST, "The body must contain a JSON object");
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, rq->srv->db, IDX_STUDY, rq->study, &r))
        return srv_fail(err, se.code == STO_ERR_NOT_FOUND ? SRV_UNKNOWN_RESOURCE : SRV_DATABASE,
                        "Cannot %s unknown study %s", rq->merge ? "merge into" : "split", rq->study);
    idx_resource_cleanup(&r);
    if (!bool_opt(err, body, "KeepSource", false, &rq->keep_source) ||
        !bool_opt(err, body, "Permissive", false, &rq->permissive) ||
        !bool_opt(err, body, "Asynchronous", false, &rq->async) ||
        !bool_opt(err, body, "Synchronous", !rq->async, &sync))
        return false;
    rq->async = !sync;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "Priority");
    if (p && !cJSON_IsNumber(p)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "Integer value expected in field: Priority");
    rq->priority = p ? p->valueint : 0;
    DcmError de = { 0 };
    rq->spec = dcm_modify_spec_new(&de, false, uid_fn, rq);
    if (!rq->spec) return dcm_fail(err, &de);
    if (!dcm_modify_spec_remap(&de, rq->spec, TAG_SERIES_UID) ||
        !dcm_modify_spec_remap(&de, rq->spec, TAG_SOP_UID))
        return dcm_fail(err, &de);
    if (!(rq->merge ? merge_spec(err, rq) : split_spec(err, rq))) return false;
    return list_instances(err, rq);
}

void reorg_free(Reorg *rq)
{
    if (!rq) return;
    dcm_modify_spec_free(rq->spec);
    cJSON_Delete(rq->options);
    srv_strings_free(rq->ids, rq->n);
    free((void *)rq->copied);
    pthread_mutex_destroy(&rq->lock);
    free(rq);
}

static void new_key(char key[33])
{
    char u[STO_UUID_LEN];
    sto_uuid_new(u);
    int k = 0;
    for (int i = 0; u[i] && k < 32; i++)
        if (u[i] != '-') key[k++] = u[i];
    key[k] = '\0';
}

static Reorg *reorg_build(SrvError *err, Srv *srv, bool merge, const char *study, const cJSON *body,
                          const char *key)
{
    Reorg *rq = calloc(1, sizeof *rq);
    if (!rq) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&rq->lock, NULL);
    rq->srv = srv;
    rq->merge = merge;
    snprintf(rq->study, sizeof rq->study, "%s", study);
    if (key) snprintf(rq->key, sizeof rq->key, "%s", key);
    else new_key(rq->key);
    rq->options = cJSON_Duplicate(body, 1);
    if (!rq->options) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        reorg_free(rq);
        return NULL;
    }
    if (!parse(err, rq)) {
        reorg_free(rq);
        return NULL;
    }
    if (!merge) { /* the new study's UID, known before any instance is written */
        IdxResource r = { 0 };
        StoError se = { 0 };
        if (idx_resource_get(&se, srv->db, IDX_STUDY, study, &r)) {
            for (size_t i = 0; i < r.ntags; i++)
                if (r.tag_keys[i] == TAG_STUDY_UID) uid_fn(rq, r.tag_values[i], rq->target_uid);
            idx_resource_cleanup(&r);
        }
    }
    return rq;
}

Reorg *reorg_new(SrvError *err, Srv *srv, bool merge, const char *study, const cJSON *body)
{
    return reorg_build(err, srv, merge, study, body, NULL);
}

bool reorg_async(const Reorg *rq) { return rq->async; }

/* ---- the job ----------------------------------------------------------------------------- */

static bool copy_one(SrvError *err, Reorg *rq, const char *id)
{
    CacheEntry *ce = cache_acquire(err, rq->srv, id);
    if (!ce) return false;
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    void *buf = NULL;
    size_t len = 0;
    bool ok = dcm_object_clone(&de, cache_object(ce), &obj);
    cache_release(ce);
    ok = ok && dcm_modify(&de, obj, rq->spec) && dcm_write(&de, obj, NULL, &buf, &len);
    dcm_object_destroy(obj);
    if (!ok) return dcm_fail(err, &de);
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST };
    IngestResult res;
    ok = ingest_buffer(err, rq->srv, buf, len, &origin, &res);
    free(buf);
    if (ok && !rq->merge) {
        pthread_mutex_lock(&rq->lock);
        if (!rq->target[0]) snprintf(rq->target, sizeof rq->target, "%s", res.ids[IDX_STUDY]);
        pthread_mutex_unlock(&rq->lock);
    }
    return ok;
}

static int job_step(void *p, SrvError *err)
{
    Reorg *rq = p;
    size_t i = atomic_fetch_add(&rq->next, 1);
    if (i >= rq->n) return JOB_STEP_DONE;
    if (!copy_one(err, rq, rq->ids[i])) {
        SRV_LOG_WARN("jobs", "%s: instance %s failed: %s", rq->merge ? "merge" : "split", rq->ids[i], err->message);
        atomic_fetch_add(&rq->failed, 1);
        if (!rq->permissive) return JOB_STEP_FAILURE;
        memset(err, 0, sizeof *err); /* Permissive: counted, the job goes on */
    } else {
        atomic_store(&rq->copied[i], true);
    }
    atomic_fetch_add(&rq->done, 1);
    return i + 1 >= rq->n ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}

static bool job_finish(void *p, SrvError *err)
{
    Reorg *rq = p;
    if (rq->keep_source) return true;
    for (size_t i = 0; i < rq->n; i++) {
        if (!atomic_load(&rq->copied[i])) continue; /* failed (Permissive): stays */
        int rl;
        char rid[IDX_ID_LEN];
        SrvError e = { 0 };
        if (!srv_delete(&e, rq->srv, IDX_INSTANCE, rq->ids[i], &rl, rid) && e.code != SRV_UNKNOWN_RESOURCE) {
            *err = e;
            return false;
        }
    }
    return true;
}

static double job_progress(void *p)
{
    Reorg *rq = p;
    return rq->n ? (double)atomic_load(&rq->done) / (double)rq->n : 1;
}

static cJSON *job_content(void *p)
{
    Reorg *rq = p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Description", "REST API");
    cJSON_AddNumberToObject(o, "FailedInstancesCount", (double)atomic_load(&rq->failed));
    cJSON_AddNumberToObject(o, "InstancesCount", (double)rq->n);
    pthread_mutex_lock(&rq->lock);
    if (rq->merge) cJSON_AddStringToObject(o, "TargetStudy", rq->study);
    else if (rq->target[0]) cJSON_AddStringToObject(o, "TargetStudy", rq->target);
    pthread_mutex_unlock(&rq->lock);
    if (!rq->merge) cJSON_AddStringToObject(o, "TargetStudyUID", rq->target_uid);
    return o;
}

static cJSON *job_serialize(void *p)
{
    Reorg *rq = p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Study", rq->study);
    cJSON_AddStringToObject(o, "Key", rq->key);
    cJSON_AddItemToObject(o, "Options", cJSON_Duplicate(rq->options, 1));
    return o;
}

static void job_reset(void *p)
{
    Reorg *rq = p;
    atomic_store(&rq->next, 0);
    atomic_store(&rq->done, 0);
    atomic_store(&rq->failed, 0);
    for (size_t i = 0; i < rq->n; i++) atomic_store(&rq->copied[i], false);
}

static void job_free(void *p) { reorg_free(p); }

static void *unserialize(SrvError *err, Srv *srv, const cJSON *j, bool merge)
{
    const cJSON *study = cJSON_GetObjectItemCaseSensitive(j, "Study");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "Key");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(j, "Options");
    if (!cJSON_IsString(study) || !cJSON_IsString(key) || !cJSON_IsObject(opt)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "malformed saved %s job", merge ? "merge" : "split");
        return NULL;
    }
    return reorg_build(err, srv, merge, study->valuestring, opt, key->valuestring);
}

static void *split_unserialize(SrvError *err, Srv *srv, const cJSON *j) { return unserialize(err, srv, j, false); }
static void *merge_unserialize(SrvError *err, Srv *srv, const cJSON *j) { return unserialize(err, srv, j, true); }

const JobType split_job_type = {
    .name = "SplitStudy",
    .max_parallel = 2,
    .step = job_step,
    .finish = job_finish,
    .progress = job_progress,
    .content = job_content,
    .serialize = job_serialize,
    .reset = job_reset,
    .free = job_free,
    .unserialize = split_unserialize,
};

const JobType merge_job_type = {
    .name = "MergeStudy",
    .max_parallel = 2,
    .step = job_step,
    .finish = job_finish,
    .progress = job_progress,
    .content = job_content,
    .serialize = job_serialize,
    .reset = job_reset,
    .free = job_free,
    .unserialize = merge_unserialize,
};

bool reorg_submit(SrvError *err, Reorg *rq, char job_id[JOB_ID_LEN])
{
    return jobs_submit(err, rq->merge ? &merge_job_type : &split_job_type, rq, rq->priority, job_id);
}
