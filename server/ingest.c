/* ingest.c -- the one ingest path, shared by POST /instances, C-STORE and the jobs that
 * write modified instances.
 *
 * DESIGN: one function per step, called in order by ingest_buffer(): parse_file (header
 * only: the pixels are checked for completeness, never copied), compute_ids (Orthanc's SHA-1
 * IDs), check_known (AlreadyStored early, no file written), collect_metadata, write_file
 * (quotas, a new uuid noted pending, the file written atomically: temp name, optional fsync,
 * rename), commit_index (every row in one SQLite transaction that also clears the pending
 * mark), after_commit (overwrite clean-up, stability, CompletedSeries). The Ingest struct
 * carries what a step leaves for the next. A crash between the write and the commit leaves a pending orphan that
 * srv_open() removes; nothing is ever half-written. The buffer is held once, by the caller:
 * nothing here copies it. ingest_spool() runs the same steps on a large upload's spool file
 * (mapped read-only; write_file renames the file into place instead of writing it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dicom/dicom.h"
#include "server/dicomweb.h"
#include "server/server.h"
#include "storage/storage.h"

#define TAG_PATIENT_ID 0x00100020u
#define TAG_STUDY_UID 0x0020000du
#define TAG_SERIES_UID 0x0020000eu
#define TAG_SOP_UID 0x00080018u
#define TAG_SOP_CLASS_UID 0x00080016u
#define TAG_INSTANCE_NUMBER 0x00200013u
#define TAG_IMAGE_INDEX 0x00541330u

#define MAX_TAGS 32 /* per level; the largest table (series) has 22 */
#define MAX_META 16

typedef struct Collected {
    IdxTag tags[IDX_LEVELS][MAX_TAGS];
    size_t ntags[IDX_LEVELS];
    char *owned[IDX_LEVELS * MAX_TAGS + 8]; /* every string we malloc'd, freed at the end */
    size_t nowned;
} Collected;

static void collected_free(Collected *c)
{
    for (size_t i = 0; i < c->nowned; i++) free(c->owned[i]);
    c->nowned = 0;
}

/* Reads a tag (stripped) into *out; keeps the string in c for freeing. 1 present, 0 absent,
 * -1 error. */
static int read_tag(SrvError *err, Collected *c, const DcmObject *obj, uint32_t tag, char **out)
{
    DcmError de = { 0 };
    char *v = NULL;
    int r = dcm_get_string(&de, obj, tag, &v);
    if (r < 0) {
        /* A binary or sequence element where text is expected: treat as absent. */
        if (de.code == DCM_ERR_ARG) { *out = NULL; return 0; }
        srv_error_from_dcm(err, &de);
        return -1;
    }
    if (r == 0) { *out = NULL; return 0; }
    SRV_ASSERT(c->nowned < sizeof c->owned / sizeof c->owned[0]);
    c->owned[c->nowned++] = v;
    *out = srv_strip(v);
    return 1;
}

static bool collect_main_tags(SrvError *err, Collected *c, const DcmObject *obj)
{
    for (int level = 0; level < IDX_LEVELS; level++) {
        size_t n;
        const SrvMainTag *t = srv_main_tags(level, &n);
        SRV_ASSERT(n <= MAX_TAGS);
        c->ntags[level] = 0;
        for (size_t i = 0; i < n; i++) {
            char *v;
            int r = read_tag(err, c, obj, t[i].tag, &v);
            if (r < 0) return false;
            if (r == 0) continue;
            c->tags[level][c->ntags[level]].tag = t[i].tag;
            c->tags[level][c->ntags[level]].value = v;
            c->ntags[level]++;
        }
    }
    /* The study keeps its own copy of the patient tags (as Orthanc: studies of different
     * patients that share a PatientID keep their names; queries above the patient level match
     * the copy). */
    for (size_t i = 0; i < c->ntags[IDX_PATIENT]; i++) {
        SRV_ASSERT(c->ntags[IDX_STUDY] < MAX_TAGS);
        c->tags[IDX_STUDY][c->ntags[IDX_STUDY]++] = c->tags[IDX_PATIENT][i];
    }
    return true;
}

/* A non-negative integer value, or -1 (so that a product with it is not positive). */
static long long parse_count(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ') end++;
    return end != s && !*end && v >= 0 && v < 1000000000 ? v : -1;
}

static const char *find_tag(const Collected *c, int level, uint32_t tag)
{
    for (size_t i = 0; i < c->ntags[level]; i++)
        if (c->tags[level][i].tag == tag) return c->tags[level][i].value;
    return NULL;
}

/* Removes a file we wrote and drops its pending mark; logs but does not fail. */
static void discard_file(Srv *srv, const char *uuid)
{
    StoError se = { 0 };
    if (!sto_area_remove(&se, srv->area, uuid)) {
        SRV_LOG_WARN("ingest", "cannot remove %s: %s", uuid, se.message);
        return; /* stays pending: start-up retries */
    }
    const char *u = uuid;
    if (!idx_pending_clear(&se, srv->db, &u, 1))
        SRV_LOG_WARN("ingest", "cannot clear pending %s: %s", uuid, se.message);
}

/* One ingest in progress: what each step reads and leaves for the next. */
typedef struct Ingest {
    Srv *srv;
    /* The bytes: held by the caller (a buffer, or a read-only mapping of the spool file),
     * stored as given. With a spool, write_file() adopts its file instead of writing buf. */
    const void *buf;
    size_t len;
    SrvSpool *spool;
    const IngestOrigin *origin;
    IngestResult *res;
    DcmObject *obj;                   /* header-only parse */
    Collected *c;                     /* main tags of each level */
    IdxMeta meta[IDX_LEVELS][MAX_META];
    size_t nmeta[IDX_LEVELS];
    char now[16], expected[24], offset[24]; /* strings the metadata point to */
    char *dicomweb;                   /* the instance's DICOM JSON (server/dicomweb.c), or NULL */
    char uuid[STO_UUID_LEN];          /* the new file; "" until chosen */
    bool pending;                     /* uuid is in the pending list and ours to discard */
    bool quota_held;                  /* quota_begin succeeded: quota_end at the end */
} Ingest;

/* Step 1: parse the header (pixels walked, not copied) and collect the main tags. */
static bool parse_file(SrvError *err, Ingest *in)
{
    DcmError de = { 0 };
    if (in->len == 0) return srv_fail(err, SRV_BAD_FILE_FORMAT, "empty DICOM file");
    if (!dcm_parse(&de, in->buf, in->len, DCM_PARSE_HEADER_ONLY, &in->obj)) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    return collect_main_tags(err, in->c, in->obj);
}

/* Step 2: the identifiers must be there; Orthanc's IDs are SHA-1s over their chain joined by
 * '|' (patient; patient|study; ...). */
static bool compute_ids(SrvError *err, Ingest *in)
{
    const Collected *c = in->c;
    const char *patient_id = find_tag(c, IDX_PATIENT, TAG_PATIENT_ID);
    const char *study_uid = find_tag(c, IDX_STUDY, TAG_STUDY_UID);
    const char *series_uid = find_tag(c, IDX_SERIES, TAG_SERIES_UID);
    const char *sop_uid = find_tag(c, IDX_INSTANCE, TAG_SOP_UID);
    if (!study_uid || !*study_uid || !series_uid || !*series_uid || !sop_uid || !*sop_uid)
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "missing %s",
                        !study_uid || !*study_uid     ? "StudyInstanceUID"
                        : !series_uid || !*series_uid ? "SeriesInstanceUID"
                                                      : "SOPInstanceUID");
    IngestResult *res = in->res;
    snprintf(res->study_uid, sizeof res->study_uid, "%s", study_uid);
    snprintf(res->series_uid, sizeof res->series_uid, "%s", series_uid);
    snprintf(res->sop_uid, sizeof res->sop_uid, "%s", sop_uid);
    char *sop_class = NULL;
    if (read_tag(err, in->c, in->obj, TAG_SOP_CLASS_UID, &sop_class) < 0) return false;
    if (sop_class) snprintf(res->sop_class_uid, sizeof res->sop_class_uid, "%s", sop_class);
    const char *expect = in->origin ? in->origin->expect_study_uid : NULL;
    if (expect && strcmp(expect, study_uid) != 0)
        return srv_fail(err, SRV_BAD_REQUEST, "StudyInstanceUID %.64s is not the study %.64s of the request",
                        study_uid, expect);
    if (!patient_id) patient_id = "";
    const char *parts[IDX_LEVELS] = { patient_id, study_uid, series_uid, sop_uid };
    size_t need = strlen(patient_id) + strlen(study_uid) + strlen(series_uid) + strlen(sop_uid) + 4;
    char *key = malloc(need);
    if (!key) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    int n = 0;
    for (int l = 0; l < IDX_LEVELS; l++) {
        n += snprintf(key + n, need - (size_t)n, l ? "|%s" : "%s", parts[l]);
        srv_sha1_id(key, (size_t)n, in->res->ids[l]);
    }
    free(key);
    return true;
}

/* Step 3: with OverwriteInstances false, an instance already stored is answered AlreadyStored
 * before anything is written. *known set; false only on an index error. */
static bool check_known(SrvError *err, Ingest *in, bool *known)
{
    *known = false;
    if (in->srv->cfg.overwrite_instances) return true;
    StoError se = { 0 };
    IdxResource r = { 0 };
    if (idx_resource_get(&se, in->srv->db, IDX_INSTANCE, in->res->ids[IDX_INSTANCE], &r)) {
        idx_resource_cleanup(&r);
        *known = true;
        return true;
    }
    if (se.code != STO_ERR_NOT_FOUND) {
        srv_error_from_sto(err, &se);
        return false;
    }
    return true;
}

/* Step 4: the metadata of each level, with Orthanc's names. */
static bool collect_metadata(SrvError *err, Ingest *in)
{
    const Collected *c = in->c;
    const IngestOrigin *origin = in->origin;
    srv_now_iso(in->now);
    static const char *const origins[] = { "RestApi", "DicomProtocol", "Plugins", "Unknown" };
    int o = origin && origin->origin >= 0 && origin->origin <= 3 ? origin->origin : 3;
#define META(lvl, n, v) \
    do { in->meta[lvl][in->nmeta[lvl]].name = (n); in->meta[lvl][in->nmeta[lvl]].value = (v); \
         in->nmeta[lvl]++; } while (0)
    META(IDX_INSTANCE, "ReceptionDate", in->now);
    META(IDX_INSTANCE, "Origin", origins[o]);
    META(IDX_INSTANCE, "TransferSyntax", dcm_object_transfer_syntax(in->obj));
    char *sop_class = NULL;
    if (read_tag(err, in->c, in->obj, TAG_SOP_CLASS_UID, &sop_class) < 0) return false;
    if (sop_class) META(IDX_INSTANCE, "SopClassUid", sop_class);
    const char *index = find_tag(c, IDX_INSTANCE, TAG_INSTANCE_NUMBER);
    if (!index) index = find_tag(c, IDX_INSTANCE, TAG_IMAGE_INDEX);
    if (index && *index) META(IDX_INSTANCE, "IndexInSeries", index);
    /* Orthanc's ExpectedNumberOfInstances (ServerIndex: ComputeExpectedNumberOfInstances):
     * ImagesInAcquisition x NumberOfTemporalPositions, else NumberOfSlices, else
     * CardiacNumberOfImages; only a positive integer counts. */
    {
        const char *a = find_tag(c, IDX_SERIES, 0x00201002u), *t = find_tag(c, IDX_SERIES, 0x00200105u);
        const char *sl = find_tag(c, IDX_SERIES, 0x00540081u), *ca = find_tag(c, IDX_SERIES, 0x00181090u);
        long long v = 0;
        if (a && t) v = parse_count(a) * parse_count(t);
        else if (sl) v = parse_count(sl);
        else if (ca) v = parse_count(ca);
        if (v > 0) {
            snprintf(in->expected, sizeof in->expected, "%lld", v);
            META(IDX_SERIES, "ExpectedNumberOfInstances", in->expected);
        }
    }
    /* Orthanc: the offset of PixelData's element header, for Part-10 files only */
    uint64_t pixel_offset = dcm_object_has_meta(in->obj) ? dcm_object_pixel_data_header_offset(in->obj) : 0;
    if (pixel_offset) {
        snprintf(in->offset, sizeof in->offset, "%llu", (unsigned long long)pixel_offset);
        META(IDX_INSTANCE, "PixelDataOffset", in->offset);
    }
    /* WADO-RS metadata served from the index, never from the files (server/dicomweb.c) */
    in->dicomweb = dw_ingest_json(in->srv, in->obj, find_tag(c, IDX_STUDY, TAG_STUDY_UID),
                                  find_tag(c, IDX_SERIES, TAG_SERIES_UID), find_tag(c, IDX_INSTANCE, TAG_SOP_UID));
    if (in->dicomweb) META(IDX_INSTANCE, DW_METADATA_NAME, in->dicomweb);
    if (origin) {
        /* As Orthanc: what came through the REST API has RemoteAET "" (instance and series)
         * and HttpUsername, "" without authentication. */
        bool rest = origin->origin == INGEST_ORIGIN_REST;
        const char *aet = origin->remote_aet ? origin->remote_aet : rest ? "" : NULL;
        const char *user = origin->http_user ? origin->http_user : rest ? "" : NULL;
        if (origin->remote_ip) META(IDX_INSTANCE, "RemoteIP", origin->remote_ip);
        if (aet) {
            META(IDX_INSTANCE, "RemoteAET", aet);
            META(IDX_SERIES, "RemoteAET", aet);
        }
        if (origin->called_aet) META(IDX_INSTANCE, "CalledAET", origin->called_aet);
        if (user) META(IDX_INSTANCE, "HttpUsername", user);
        for (int l = 0; l < IDX_LEVELS; l++)
            for (size_t i = 0; i < origin->nextra_meta[l] && in->nmeta[l] < MAX_META; i++)
                META(l, origin->extra_meta[l][i].name, origin->extra_meta[l][i].value);
    }
#undef META
    return true;
}

/* Step 5: quotas (MaximumStorageSize / MaximumPatientCount: recycle or refuse), then the file
 * under a new uuid noted pending first, written atomically. */
static bool write_file(SrvError *err, Ingest *in)
{
    if (!quota_begin(err, in->srv, in->res->ids[IDX_PATIENT], in->len)) return false;
    in->quota_held = true;
    StoError se = { 0 };
    sto_uuid_new(in->uuid);
    if (!idx_pending_add(&se, in->srv->db, in->uuid)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    in->pending = true;
    if (in->spool) { /* a rename: the bytes are already on disk, written once */
        if (!sto_area_spool_adopt(&se, in->srv->area, in->uuid, in->spool->fd, in->spool->path,
                                  in->spool->synced)) {
            srv_error_from_sto(err, &se);
            return false;
        }
        in->spool->path[0] = '\0'; /* now the stored file: discard_file's, not the spool's */
        return true;
    }
    if (!sto_area_write(&se, in->srv->area, in->uuid, in->buf, in->len)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    return true;
}

/* Step 6: every row in one transaction, which also clears the pending mark. */
static bool commit_index(SrvError *err, Ingest *in, IdxStoreResult *sr)
{
    IdxNewInstance ni = { 0 };
    for (int l = 0; l < IDX_LEVELS; l++) {
        ni.ids[l] = in->res->ids[l];
        ni.tags[l] = in->c->tags[l];
        ni.ntags[l] = in->c->ntags[l];
        ni.meta[l] = in->meta[l];
        ni.nmeta[l] = in->nmeta[l];
    }
    ni.uuid = in->uuid;
    ni.size = in->len;
    ni.md5 = NULL; /* computed on demand: MD5 of every upload would cost a core at 1,000/s */
    ni.overwrite = in->srv->cfg.overwrite_instances;
    StoError se = { 0 };
    if (!idx_store_instance(&se, in->srv->db, &ni, sr)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    in->pending = false; /* the transaction cleared it, or it is discarded below */
    return true;
}

/* Step 7: what follows a commit: drop our file if it raced with the same instance, drop the
 * file and cached parse an overwrite replaced, start the stability clock, log CompletedSeries
 * when the series just reached its expected count. Logs, never fails. */
static void after_commit(Ingest *in, const IdxStoreResult *sr)
{
    Srv *srv = in->srv;
    IngestResult *res = in->res;
    if (sr->already_stored) {
        res->already_stored = true;
        discard_file(srv, in->uuid);
    }
    if (sr->nold_files)
        cache_invalidate(res->ids[IDX_INSTANCE]); /* overwritten: the cached parse is stale */
    for (size_t i = 0; i < sr->nold_files; i++) /* the old instance's file and attachments */
        if (strcmp(sr->old_files[i].uuid, in->uuid) != 0)
            discard_file(srv, sr->old_files[i].uuid);
    if (sr->already_stored) return;
    srv_stable_touch(srv, res->ids[IDX_PATIENT], res->ids[IDX_STUDY], res->ids[IDX_SERIES]);
    if (in->expected[0]) {
        /* a count, not the series' list of children (that read grew with the series) */
        StoError se = { 0 };
        IdxCounts cn;
        if (idx_resource_counts(&se, srv->db, IDX_SERIES, res->ids[IDX_SERIES], &cn) &&
            cn.instances == (uint64_t)strtoll(in->expected, NULL, 10) &&
            !idx_change_add(&se, srv->db, "CompletedSeries", IDX_SERIES, res->ids[IDX_SERIES]))
            SRV_LOG_WARN("ingest", "cannot log CompletedSeries: %s", se.message);
    }
}

static bool ingest_run(SrvError *err, Srv *srv, const void *buf, size_t len, SrvSpool *spool,
                       const IngestOrigin *origin, IngestResult *res)
{
    {   /* IngestTranscoding (server/transcode.c): ingest the converted file instead */
        void *t = NULL;
        size_t tl = 0;
        if (transcode_on_ingest(srv, buf, len, &t, &tl)) {
            bool done = ingest_buffer(err, srv, t, tl, origin, res); /* already in the syntax: no loop */
            free(t);
            return done;
        }
    }
    uint64_t t0 = metrics_clock_us(); /* orthanc_store_dicom_duration_ms */
    memset(res, 0, sizeof *res);
    Ingest *in = calloc(1, sizeof *in);
    Collected *c = calloc(1, sizeof *c);
    if (!in || !c) {
        free(in);
        free(c);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    *in = (Ingest){ .srv = srv, .buf = buf, .len = len, .spool = spool, .origin = origin, .res = res,
                    .c = c };
    bool ok = false, known = false;
    IdxStoreResult sr;
    if (!parse_file(err, in) || !compute_ids(err, in) || !check_known(err, in, &known)) goto out;
    if (known) {
        res->already_stored = true;
        ok = true;
        goto out;
    }
    if (!collect_metadata(err, in) || !write_file(err, in) || !commit_index(err, in, &sr)) goto out;
    after_commit(in, &sr);
    free(sr.old_files);
    ok = true;
out:
    if (in->pending) discard_file(srv, in->uuid);
    if (in->quota_held) quota_end(srv);
    dcm_object_destroy(in->obj);
    free(in->dicomweb);
    collected_free(c);
    free(c);
    free(in);
    if (ok) metrics_store_done(t0);
    return ok;
}

/* ---- Reconstruct: the main tags read again from the stored file ------------------------- */

bool ingest_reconstruct(SrvError *err, Srv *srv, const char *instance_id, bool upper)
{
    char ids[IDX_LEVELS][IDX_ID_LEN];
    snprintf(ids[IDX_INSTANCE], sizeof ids[IDX_INSTANCE], "%s", instance_id);
    if (upper) {
        for (int l = IDX_PATIENT; l < IDX_INSTANCE; l++)
            if (!srv_resource_ancestor(err, srv, IDX_INSTANCE, instance_id, l, ids[l])) return false;
    }
    cache_invalidate(instance_id); /* read the file again, as Orthanc does */
    CacheEntry *ce = cache_acquire(err, srv, instance_id);
    if (!ce) return false;
    Collected *c = calloc(1, sizeof *c);
    bool ok = false;
    if (!c) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    if (!collect_main_tags(err, c, cache_object(ce))) goto out;
    for (int l = upper ? IDX_PATIENT : IDX_INSTANCE; l < IDX_LEVELS; l++) {
        StoError se = { 0 };
        if (!idx_set_main_tags(&se, srv->db, l, ids[l], c->tags[l], c->ntags[l])) {
            srv_error_from_sto(err, &se);
            goto out;
        }
    }
    ok = true;
out:
    if (c) collected_free(c);
    free(c);
    cache_release(ce);
    return ok;
}

bool ingest_buffer(SrvError *err, Srv *srv, const void *buf, size_t len,
                   const IngestOrigin *origin, IngestResult *res)
{
    return ingest_run(err, srv, buf, len, NULL, origin, res);
}

/* The spool is mapped read-only for the steps that read bytes: parse_file touches the header's
 * pages and the pixel data's item headers, never the pixels, so RSS grows by the header, not
 * by the file (the mapping is file-backed: no copy, pages shared with the page cache). */
bool ingest_spool(SrvError *err, Srv *srv, SrvSpool *sp, const IngestOrigin *origin,
                  IngestResult *res)
{
    if (sp->fd < 0 || !sp->path[0]) return srv_fail(err, SRV_INTERNAL, "no spool file to ingest");
    if (sp->len == 0) return srv_fail(err, SRV_BAD_FILE_FORMAT, "empty DICOM file");
    if (sp->len > SIZE_MAX) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "file too large to map");
    void *map = mmap(NULL, (size_t)sp->len, PROT_READ, MAP_SHARED, sp->fd, 0);
    if (map == MAP_FAILED)
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "cannot map the upload's spool file: %s",
                        strerror(errno));
    bool ok = ingest_run(err, srv, map, (size_t)sp->len, sp, origin, res);
    munmap(map, (size_t)sp->len);
    return ok;
}
