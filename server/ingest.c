/* ingest.c -- the one ingest path, shared by POST /instances, C-STORE and the jobs that
 * write modified instances.
 *
 * DESIGN: parse the header only (the pixels are checked for completeness, never copied),
 * compute Orthanc's SHA-1 IDs, answer AlreadyStored early when the instance is known (no file
 * written), else note a new uuid as pending, write the file atomically (temp name, optional
 * fsync, rename), then commit every row in one SQLite transaction that also clears the
 * pending mark. A crash between the write and the commit leaves a pending orphan that
 * srv_open() removes; nothing is ever half-written. The buffer is held once, by the caller:
 * nothing here copies it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
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
#define MAX_META 12

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

bool ingest_buffer(SrvError *err, Srv *srv, const void *buf, size_t len,
                   const IngestOrigin *origin, IngestResult *res)
{
    bool ok = false;
    DcmObject *obj = NULL;
    DcmError de = { 0 };
    Collected *c = calloc(1, sizeof *c);
    char uuid[STO_UUID_LEN] = "";
    bool pending = false;
    uint64_t t0 = metrics_clock_us(); /* orthanc_store_dicom_duration_ms */
    bool quota_held = false;

    memset(res, 0, sizeof *res);
    if (!c) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    if (len == 0) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "empty DICOM file");
        goto out;
    }
    if (!dcm_parse(&de, buf, len, DCM_PARSE_HEADER_ONLY, &obj)) {
        srv_error_from_dcm(err, &de);
        goto out;
    }
    if (!collect_main_tags(err, c, obj)) goto out;

    const char *patient_id = find_tag(c, IDX_PATIENT, TAG_PATIENT_ID);
    const char *study_uid = find_tag(c, IDX_STUDY, TAG_STUDY_UID);
    const char *series_uid = find_tag(c, IDX_SERIES, TAG_SERIES_UID);
    const char *sop_uid = find_tag(c, IDX_INSTANCE, TAG_SOP_UID);
    if (!study_uid || !*study_uid || !series_uid || !*series_uid || !sop_uid || !*sop_uid) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "missing %s",
                 !study_uid || !*study_uid     ? "StudyInstanceUID"
                 : !series_uid || !*series_uid ? "SeriesInstanceUID"
                                               : "SOPInstanceUID");
        goto out;
    }
    if (!patient_id) patient_id = "";

    /* Orthanc's IDs: SHA-1 over the chain of identifiers joined by '|'. */
    {
        size_t need = strlen(patient_id) + strlen(study_uid) + strlen(series_uid) +
                      strlen(sop_uid) + 4;
        char *key = malloc(need);
        if (!key) { srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); goto out; }
        int n = snprintf(key, need, "%s", patient_id);
        srv_sha1_id(key, (size_t)n, res->ids[IDX_PATIENT]);
        n += snprintf(key + n, need - (size_t)n, "|%s", study_uid);
        srv_sha1_id(key, (size_t)n, res->ids[IDX_STUDY]);
        n += snprintf(key + n, need - (size_t)n, "|%s", series_uid);
        srv_sha1_id(key, (size_t)n, res->ids[IDX_SERIES]);
        n += snprintf(key + n, need - (size_t)n, "|%s", sop_uid);
        srv_sha1_id(key, (size_t)n, res->ids[IDX_INSTANCE]);
        free(key);
    }

    StoError se = { 0 };
    if (!srv->cfg.overwrite_instances) {
        IdxResource r = { 0 };
        if (idx_resource_get(&se, srv->db, IDX_INSTANCE, res->ids[IDX_INSTANCE], &r)) {
            idx_resource_cleanup(&r);
            res->already_stored = true;
            ok = true;
            goto out;
        }
        if (se.code != STO_ERR_NOT_FOUND) { srv_error_from_sto(err, &se); goto out; }
    }

    /* Metadata, with Orthanc's names. */
    IdxMeta meta[IDX_LEVELS][MAX_META];
    size_t nmeta[IDX_LEVELS] = { 0 };
    char now[16];
    srv_now_iso(now);
    static const char *const origins[] = { "RestApi", "DicomProtocol", "Plugins", "Unknown" };
    int o = origin && origin->origin >= 0 && origin->origin <= 3 ? origin->origin : 3;
#define META(lvl, n, v) \
    do { meta[lvl][nmeta[lvl]].name = (n); meta[lvl][nmeta[lvl]].value = (v); nmeta[lvl]++; } while (0)
    META(IDX_INSTANCE, "ReceptionDate", now);
    META(IDX_INSTANCE, "Origin", origins[o]);
    META(IDX_INSTANCE, "TransferSyntax", dcm_object_transfer_syntax(obj));
    char *sop_class = NULL;
    if (read_tag(err, c, obj, TAG_SOP_CLASS_UID, &sop_class) < 0) goto out;
    if (sop_class) META(IDX_INSTANCE, "SopClassUid", sop_class);
    const char *index = find_tag(c, IDX_INSTANCE, TAG_INSTANCE_NUMBER);
    if (!index) index = find_tag(c, IDX_INSTANCE, TAG_IMAGE_INDEX);
    if (index && *index) META(IDX_INSTANCE, "IndexInSeries", index);
    /* Orthanc's ExpectedNumberOfInstances (ServerIndex: ComputeExpectedNumberOfInstances):
     * ImagesInAcquisition x NumberOfTemporalPositions, else NumberOfSlices, else
     * CardiacNumberOfImages; only a positive integer counts. */
    char expected[24] = "";
    {
        const char *a = find_tag(c, IDX_SERIES, 0x00201002u), *t = find_tag(c, IDX_SERIES, 0x00200105u);
        const char *sl = find_tag(c, IDX_SERIES, 0x00540081u), *ca = find_tag(c, IDX_SERIES, 0x00181090u);
        long long v = 0;
        if (a && t) v = parse_count(a) * parse_count(t);
        else if (sl) v = parse_count(sl);
        else if (ca) v = parse_count(ca);
        if (v > 0) {
            snprintf(expected, sizeof expected, "%lld", v);
            META(IDX_SERIES, "ExpectedNumberOfInstances", expected);
        }
    }
    char offset[24];
    uint64_t pixel_offset = dcm_object_pixel_data_offset(obj);
    if (pixel_offset) {
        snprintf(offset, sizeof offset, "%llu", (unsigned long long)pixel_offset);
        META(IDX_INSTANCE, "PixelDataOffset", offset);
    }
    if (origin) {
        if (origin->remote_ip) META(IDX_INSTANCE, "RemoteIP", origin->remote_ip);
        if (origin->remote_aet) {
            META(IDX_INSTANCE, "RemoteAET", origin->remote_aet);
            META(IDX_SERIES, "RemoteAET", origin->remote_aet);
        }
        if (origin->called_aet) META(IDX_INSTANCE, "CalledAET", origin->called_aet);
        if (origin->http_user) META(IDX_INSTANCE, "HttpUsername", origin->http_user);
        for (int l = 0; l < IDX_LEVELS; l++)
            for (size_t i = 0; i < origin->nextra_meta[l] && nmeta[l] < MAX_META; i++)
                meta[l][nmeta[l]++] = (IdxMeta){ origin->extra_meta[l][i].name,
                                                 origin->extra_meta[l][i].value };
    }
#undef META

    /* Quotas (MaximumStorageSize / MaximumPatientCount): recycle or refuse, before writing. */
    if (!quota_begin(err, srv, res->ids[IDX_PATIENT], len)) goto out;
    quota_held = true;

    /* The file first (noted pending), then the rows. */
    sto_uuid_new(uuid);
    if (!idx_pending_add(&se, srv->db, uuid)) { srv_error_from_sto(err, &se); goto out; }
    pending = true;
    if (!sto_area_write(&se, srv->area, uuid, buf, len)) {
        srv_error_from_sto(err, &se);
        goto out;
    }

    IdxNewInstance in = { 0 };
    for (int l = 0; l < IDX_LEVELS; l++) {
        in.ids[l] = res->ids[l];
        in.tags[l] = c->tags[l];
        in.ntags[l] = c->ntags[l];
        in.meta[l] = meta[l];
        in.nmeta[l] = nmeta[l];
    }
    in.uuid = uuid;
    in.size = len;
    in.md5 = NULL; /* computed on demand: MD5 of every upload would cost a core at 1,000/s */
    in.overwrite = srv->cfg.overwrite_instances;
    IdxStoreResult sr;
    if (!idx_store_instance(&se, srv->db, &in, &sr)) {
        srv_error_from_sto(err, &se);
        goto out;
    }
    pending = false; /* the transaction cleared it, or it is ours to discard below */
    if (sr.already_stored) {
        res->already_stored = true;
        discard_file(srv, uuid);
    }
    if (sr.old_uuid[0]) {
        cache_invalidate(res->ids[IDX_INSTANCE]); /* overwritten: the cached parse is stale */
        discard_file(srv, sr.old_uuid);
    }
    if (!sr.already_stored) {
        srv_stable_touch(srv, res->ids[IDX_PATIENT], res->ids[IDX_STUDY], res->ids[IDX_SERIES]);
        if (expected[0]) { /* CompletedSeries when the series just reached its expected count */
            /* a count, not the series' list of children (that read grew with the series) */
            IdxCounts cn;
            if (idx_resource_counts(&se, srv->db, IDX_SERIES, res->ids[IDX_SERIES], &cn) &&
                cn.instances == (uint64_t)strtoll(expected, NULL, 10) &&
                !idx_change_add(&se, srv->db, "CompletedSeries", IDX_SERIES, res->ids[IDX_SERIES]))
                SRV_LOG_WARN("ingest", "cannot log CompletedSeries: %s", se.message);
        }
    }
    ok = true;

out:
    if (pending) discard_file(srv, uuid);
    if (quota_held) quota_end(srv);
    dcm_object_destroy(obj);
    if (c) collected_free(c);
    free(c);
    if (ok) metrics_store_done(t0);
    return ok;
}
