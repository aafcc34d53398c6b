/* h_resources.c -- the resource routes: upload, lists, one resource, related resources,
 * delete, per-resource statistics, the stored file and its tags. JSON shapes are Orthanc's
 * (field names, types, sizes as strings where Orthanc prints strings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/dicom.h"
#include "rest/rest_int.h"


static char *resource_path(int level, const char *id)
{
    char buf[96];
    snprintf(buf, sizeof buf, "/%s/%s", srv_level_route(level), id);
    return strdup(buf);
}

static void add_path(cJSON *o, const char *key, int level, const char *id)
{
    char *p = resource_path(level, id);
    cJSON_AddStringToObject(o, key, p ? p : "");
    free(p);
}

cJSON *rest_main_tags_json(const IdxResource *r)
{
    cJSON *tags = cJSON_CreateObject();
    for (size_t i = 0; i < r->ntags; i++) {
        const char *name = srv_main_tag_name(r->tag_keys[i]);
        char key[16];
        if (!name) {
            snprintf(key, sizeof key, "%04x,%04x", r->tag_keys[i] >> 16, r->tag_keys[i] & 0xffff);
            name = key;
        }
        cJSON_AddStringToObject(tags, name, r->tag_values[i]);
    }
    return tags;
}

/* "20261125T204400" (UTC) -> time_t; 0 if malformed. */
static time_t parse_iso(const char *s)
{
    struct tm tm = { 0 };
    if (!s || sscanf(s, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static cJSON *children_json(const IdxResource *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < r->nchildren; i++) cJSON_AddItemToArray(a, cJSON_CreateString(r->children[i]));
    return a;
}

static void add_int_or_null(cJSON *o, const char *key, const char *value)
{
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (value && *value && !*end) cJSON_AddNumberToObject(o, key, (double)v);
    else cJSON_AddNullToObject(o, key);
}

static cJSON *resource_to_json(RestCall *call, const IdxResource *r, bool *ok)
{
    Srv *srv = call->srv;
    cJSON *o = cJSON_CreateObject();
    const char *v;
    *ok = true;
    if ((v = idx_resource_metadata(r, "AnonymizedFrom"))) cJSON_AddStringToObject(o, "AnonymizedFrom", v);
    if (r->level == IDX_SERIES) {
        v = idx_resource_metadata(r, "ExpectedNumberOfInstances");
        add_int_or_null(o, "ExpectedNumberOfInstances", v);
    }
    if (r->level == IDX_INSTANCE) {
        cJSON_AddNumberToObject(o, "FileSize", (double)r->file_size);
        cJSON_AddStringToObject(o, "FileUuid", r->uuid);
    }
    cJSON_AddStringToObject(o, "ID", r->id);
    if (r->level == IDX_INSTANCE) add_int_or_null(o, "IndexInSeries", idx_resource_metadata(r, "IndexInSeries"));
    if (r->level == IDX_SERIES) cJSON_AddItemToObject(o, "Instances", children_json(r));
    if (r->level == IDX_PATIENT) {
        bool prot = false;
        StoError se = { 0 };
        if (!idx_patient_is_protected(&se, srv->db, r->id, &prot)) prot = false;
        cJSON_AddBoolToObject(o, "IsProtected", prot);
    }
    if (r->level != IDX_INSTANCE) {
        const char *lu = idx_resource_metadata(r, "LastUpdate");
        time_t t = parse_iso(lu);
        /* the stability thread knows (server/stable.c); LastUpdate + StableAge if not running */
        bool stable = srv->stable ? !srv_stable_is_unstable(srv, r->level, r->id)
                                  : t && time(NULL) - t >= srv->cfg.stable_age;
        cJSON_AddBoolToObject(o, "IsStable", stable);
        cJSON_AddStringToObject(o, "LastUpdate", lu ? lu : "");
    }
    cJSON_AddItemToObject(o, "MainDicomTags", rest_main_tags_json(r));
    if ((v = idx_resource_metadata(r, "ModifiedFrom"))) cJSON_AddStringToObject(o, "ModifiedFrom", v);
    static const char *const parent_key[] = { NULL, "ParentPatient", "ParentStudy", "ParentSeries" };
    if (r->level > IDX_PATIENT) cJSON_AddStringToObject(o, parent_key[r->level], r->parent_id);
    if (r->level == IDX_STUDY) {
        IdxResource p = { 0 };
        StoError se = { 0 };
        if (idx_resource_get(&se, srv->db, IDX_PATIENT, r->parent_id, &p)) {
            cJSON_AddItemToObject(o, "PatientMainDicomTags", rest_main_tags_json(&p));
            idx_resource_cleanup(&p);
        } else {
            cJSON_AddItemToObject(o, "PatientMainDicomTags", cJSON_CreateObject());
        }
        cJSON_AddItemToObject(o, "Series", children_json(r));
    }
    if (r->level == IDX_SERIES) {
        v = idx_resource_metadata(r, "ExpectedNumberOfInstances");
        long expected = v ? strtol(v, NULL, 10) : 0;
        const char *status = "Unknown";
        if (expected > 0)
            status = (long)r->nchildren == expected ? "Complete"
                     : (long)r->nchildren < expected ? "Missing" : "Inconsistent";
        cJSON_AddStringToObject(o, "Status", status);
    }
    if (r->level == IDX_PATIENT) cJSON_AddItemToObject(o, "Studies", children_json(r));
    cJSON_AddStringToObject(o, "Type", srv_level_name(r->level));
    return o;
}

cJSON *rest_resource_json(RestCall *call, int level, const char *id, bool *ok)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, call->srv->db, level, id, &r)) {
        *ok = false;
        rest_fail_sto(call, &se);
        return NULL;
    }
    cJSON *j = resource_to_json(call, &r, ok);
    idx_resource_cleanup(&r);
    return j;
}

/* POST /instances */
void h_upload(RestCall *call)
{
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST,
                            .remote_ip = call->remote_ip[0] ? call->remote_ip : NULL,
                            .http_user = call->user };
    if (!ingest_buffer(&err, call->srv, call->body, call->body_len, &origin, &res)) {
        rest_reply_error(call, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ID", res.ids[IDX_INSTANCE]);
    cJSON_AddStringToObject(o, "ParentPatient", res.ids[IDX_PATIENT]);
    cJSON_AddStringToObject(o, "ParentSeries", res.ids[IDX_SERIES]);
    cJSON_AddStringToObject(o, "ParentStudy", res.ids[IDX_STUDY]);
    add_path(o, "Path", IDX_INSTANCE, res.ids[IDX_INSTANCE]);
    cJSON_AddStringToObject(o, "Status", res.already_stored ? "AlreadyStored" : "Success");
    SRV_LOG_INFO("http", "POST /instances from %s: %s %s", call->remote_ip, res.ids[IDX_INSTANCE],
                 res.already_stored ? "AlreadyStored" : "Success");
    rest_reply_json(call, 200, o);
}

void rest_reply_ids(RestCall *call, int level, char *const *ids, size_t n, bool expand)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!expand) {
            cJSON_AddItemToArray(a, cJSON_CreateString(ids[i]));
            continue;
        }
        bool ok;
        cJSON *o = rest_resource_json(call, level, ids[i], &ok);
        if (ok) cJSON_AddItemToArray(a, o);
        else call->status = 0; /* deleted meanwhile: skip it */
    }
    rest_reply_json(call, 200, a);
}

/* GET /patients|studies|series|instances[?expand][&since=N][&limit=N] */
void h_list(RestCall *call)
{
    int level = rest_level_from_route(call->seg[0]);
    uint64_t since, limit;
    if (!rest_arg_u64(call, "since", 0, &since) || !rest_arg_u64(call, "limit", 0, &limit)) return;
    bool expand = rest_arg_bool(call, "expand");
    char **ids = NULL;
    size_t n = 0;
    StoError se = { 0 };
    if (!idx_list(&se, call->srv->db, level, since, limit, &ids, &n)) {
        rest_fail_sto(call, &se);
        return;
    }
    rest_reply_ids(call, level, ids, n, expand);
    idx_strings_free(ids, n);
}

/* GET /{level}/{id} */
void h_get(RestCall *call)
{
    bool ok;
    cJSON *o = rest_resource_json(call, rest_level_from_route(call->params[0]), call->params[1], &ok);
    if (ok) rest_reply_json(call, 200, o);
}

/* DELETE /{level}/{id} */
void h_delete(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    SrvError err = { 0 };
    int rl;
    char rid[IDX_ID_LEN];
    if (!srv_delete(&err, call->srv, level, call->params[1], &rl, rid)) {
        rest_reply_error(call, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (rl < 0) {
        cJSON_AddNullToObject(o, "RemainingAncestor");
    } else {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "ID", rid);
        add_path(a, "Path", rl, rid);
        cJSON_AddStringToObject(a, "Type", srv_level_name(rl));
        cJSON_AddItemToObject(o, "RemainingAncestor", a);
    }
    rest_reply_json(call, 200, o);
}

/* Orthanc prints sizes as a string of bytes plus an integer "<key>MB". */
void rest_add_size(cJSON *o, const char *key, uint64_t bytes)
{
    char buf[32], mb[64];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)bytes);
    cJSON_AddStringToObject(o, key, buf);
    snprintf(mb, sizeof mb, "%sMB", key);
    cJSON_AddNumberToObject(o, mb, (double)(bytes / (1024 * 1024)));
}

/* GET /{level}/{id}/statistics */
void h_statistics_resource(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    IdxCounts c;
    StoError se = { 0 };
    if (!idx_resource_counts(&se, call->srv->db, level, call->params[1], &c)) {
        rest_fail_sto(call, &se);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (level < IDX_INSTANCE) cJSON_AddNumberToObject(o, "CountInstances", (double)c.instances);
    if (level < IDX_SERIES) cJSON_AddNumberToObject(o, "CountSeries", (double)c.series);
    if (level < IDX_STUDY) cJSON_AddNumberToObject(o, "CountStudies", (double)c.studies);
    rest_add_size(o, "DicomDiskSize", c.disk_size);
    rest_add_size(o, "DicomUncompressedSize", c.disk_size);
    rest_add_size(o, "DiskSize", c.disk_size);
    rest_add_size(o, "UncompressedSize", c.disk_size);
    rest_reply_json(call, 200, o);
}

/* Appends copies of n IDs to an array of char * (BUF_* result; the copies already appended
 * stay owned by the array). */
static int append_ids(Buf *ids, char *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *id = strdup(src[i]);
        if (!id) return BUF_NOMEM;
        int rc = buf_append(ids, &id, sizeof id);
        if (rc) {
            free(id);
            return rc;
        }
    }
    return BUF_OK;
}

static void free_ids(Buf *ids)
{
    for (size_t i = 0; i < BUF_COUNT(ids, char *); i++) free(BUF_AT(ids, char *, i));
    buf_free(ids);
}

/* GET /{level}/{id}/{patient|study|series|patients|studies|instances}: a parent object, or
 * the full objects of the descendants at that level. */
void h_related(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    const char *rel = call->seg[2];
    int target = !strcmp(rel, "patient") ? IDX_PATIENT
               : !strcmp(rel, "study")   ? IDX_STUDY
                                         : rest_level_from_route(rel);
    bool singular = !strcmp(rel, "patient") || !strcmp(rel, "study") || !strcmp(rel, "series");
    bool plural = target >= 0 && !strcmp(rel, srv_level_route(target));
    StoError se = { 0 };
    IdxResource r = { 0 };
    if (!idx_resource_get(&se, call->srv->db, level, call->params[1], &r)) {
        rest_fail_sto(call, &se);
        return;
    }
    if (target < level && singular) { /* walk up */
        char id[IDX_ID_LEN];
        while (r.level > target) {
            snprintf(id, sizeof id, "%s", r.parent_id);
            int l = r.level - 1;
            idx_resource_cleanup(&r);
            if (!idx_resource_get(&se, call->srv->db, l, id, &r)) {
                rest_fail_sto(call, &se);
                return;
            }
        }
        bool ok;
        cJSON *o = resource_to_json(call, &r, &ok);
        idx_resource_cleanup(&r);
        rest_reply_json(call, 200, o);
        return;
    }
    if (target > level && plural) { /* walk down, breadth first */
        Buf ids, next;
        buf_init(&ids, REST_MAX_ID_LIST);
        buf_init(&next, REST_MAX_ID_LIST);
        int rc = append_ids(&ids, r.children, r.nchildren);
        idx_resource_cleanup(&r);
        for (int cur = level + 1; !rc && cur < target; cur++) {
            for (size_t i = 0; !rc && i < BUF_COUNT(&ids, char *); i++) {
                IdxResource c = { 0 };
                if (idx_resource_get(&se, call->srv->db, cur, BUF_AT(&ids, char *, i), &c)) {
                    rc = append_ids(&next, c.children, c.nchildren);
                    idx_resource_cleanup(&c);
                }
            }
            free_ids(&ids);
            ids = next;
            buf_init(&next, REST_MAX_ID_LIST);
        }
        free_ids(&next);
        if (rc) {
            free_ids(&ids);
            rest_fail_buf(call, rc, "list of descendants");
            return;
        }
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < BUF_COUNT(&ids, char *); i++) {
            bool ok;
            cJSON *o = rest_resource_json(call, target, BUF_AT(&ids, char *, i), &ok);
            if (ok) cJSON_AddItemToArray(a, o);
            else call->status = 0;
        }
        free_ids(&ids);
        rest_reply_json(call, 200, a);
        return;
    }
    idx_resource_cleanup(&r);
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "no %s under a %s", rel, srv_level_name(level));
}

void rest_reply_stored_file(RestCall *call, const char *uuid)
{
    StoError se = { 0 };
    uint64_t size;
    int fd = sto_area_open_fd(&se, call->srv->area, uuid, &size);
    if (fd < 0) {
        SrvError e = { 0 };
        srv_error_from_sto(&e, &se);
        if (se.code == STO_ERR_NOT_FOUND) e.code = SRV_INEXISTENT_FILE;
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_fd(call, "application/dicom", fd, size);
}

/* GET /instances/{id}/file */
void h_file(RestCall *call)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, call->srv->db, IDX_INSTANCE, call->params[0], &r)) {
        rest_fail_sto(call, &se);
        return;
    }
    rest_reply_stored_file(call, r.uuid);
    idx_resource_cleanup(&r);
}

/* The tags come from the DICOM cache (server/cache.c): a pinned, shared, full-parsed object. */
static void reply_tags(RestCall *call, int format)
{
    size_t max_length, nign;
    uint32_t ign[32];
    if (!rest_ignore_length(call, &max_length, ign, 32, &nign)) return;
    SrvError e = { 0 };
    CacheEntry *ce = cache_acquire(&e, call->srv, call->params[0]);
    if (!ce) {
        rest_reply_error(call, &e);
        return;
    }
    DcmError de = { 0 };
    cJSON *j = dcm_to_json_ex(&de, cache_object(ce), format, max_length, ign, nign);
    cache_release(ce);
    if (!j) {
        srv_error_from_dcm(&e, &de);
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, j);
}

/* GET /instances/{id}/tags[?simplify|?short] */
void h_tags(RestCall *call)
{
    int format = rest_arg_bool(call, "simplify") ? DCM_JSON_SIMPLIFY
               : rest_arg_bool(call, "short")    ? DCM_JSON_SHORT
                                                 : DCM_JSON_FULL;
    reply_tags(call, format);
}

/* GET /instances/{id}/simplified-tags */
void h_simplified_tags(RestCall *call) { reply_tags(call, DCM_JSON_SIMPLIFY); }
