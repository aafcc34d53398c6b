/* h_resources.c -- the resource routes: upload, lists, one resource, related resources,
 * delete, per-resource statistics, the stored file and its tags. JSON shapes are Orthanc's
 * (field names, types, sizes as strings where Orthanc prints strings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "rest/rest_int.h"
#include "server/dicomweb.h"


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

/* POST /instances */
void h_upload(RestCall *call)
{
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST,
                            .remote_ip = call->remote_ip[0] ? call->remote_ip : NULL,
                            .http_user = call->user };
    if (rest_upload_form(call, &origin)) return; /* multipart/form-data (h_form.c) */
    if (rest_upload_zip(call, &origin)) return; /* a ZIP of DICOM files (h_archive.c) */
    SrvSpool *spool = rest_body_spool(call); /* a large body: stored by renaming its file */
    if (spool ? !ingest_spool(&err, call->srv, spool, &origin, &res)
              : !ingest_buffer(&err, call->srv, call->body, call->body_len, &origin, &res)) {
        rest_reply_error(call, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ID", res.ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "ParentPatient", res.ids[SRV_PATIENT]);
    cJSON_AddStringToObject(o, "ParentSeries", res.ids[SRV_SERIES]);
    cJSON_AddStringToObject(o, "ParentStudy", res.ids[SRV_STUDY]);
    add_path(o, "Path", SRV_INSTANCE, res.ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "Status", res.already_stored ? "AlreadyStored" : "Success");
    SRV_LOG_INFO("http", "POST /instances from %s: %s %s", call->remote_ip, res.ids[SRV_INSTANCE],
                 res.already_stored ? "AlreadyStored" : "Success");
    rest_reply_json(call, 200, o);
}

void rest_reply_ids(RestCall *call, int level, char *const *ids, size_t n, bool expand)
{
    SrvError e = { 0 };
    cJSON *a = srv_resources_json(&e, call->srv, level, ids, n, expand);
    if (!a) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, a);
}

/* GET /patients|studies|series|instances[?expand][&since=N][&limit=N] */
void h_list(RestCall *call)
{
    int level = rest_level_from_route(call->seg[0]);
    uint64_t since, limit;
    if (!rest_arg_u64(call, "since", 0, &since) || !rest_arg_u64(call, "limit", 0, &limit)) return;
    bool expand = rest_arg_bool(call, "expand");
    if (rest_arg(call, "limit") && limit == 0) { /* Orthanc: limit=0 is an empty page */
        rest_reply_ids(call, level, NULL, 0, expand);
        return;
    }
    char **ids = NULL;
    size_t n = 0;
    SrvError e = { 0 };
    if (!srv_resource_list(&e, call->srv, level, since, limit, &ids, &n)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_ids(call, level, ids, n, expand);
    srv_strings_free(ids, n);
}

/* GET /{level}/{id} */
void h_get(RestCall *call)
{
    SrvError e = { 0 };
    cJSON *o = srv_resource_json(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1]);
    if (o) rest_reply_json(call, 200, o);
    else rest_reply_error(call, &e);
}

/* DELETE /{level}/{id} */
void h_delete(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    SrvError err = { 0 };
    int rl;
    char rid[SRV_ID_LEN];
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
    SrvCounts c;
    SrvError e = { 0 };
    if (!srv_resource_counts(&e, call->srv, level, call->params[1], &c)) {
        rest_reply_error(call, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (level < SRV_INSTANCE) cJSON_AddNumberToObject(o, "CountInstances", (double)c.instances);
    if (level < SRV_SERIES) cJSON_AddNumberToObject(o, "CountSeries", (double)c.series);
    if (level < SRV_STUDY) cJSON_AddNumberToObject(o, "CountStudies", (double)c.studies);
    rest_add_size(o, "DicomDiskSize", c.disk_size);
    rest_add_size(o, "DicomUncompressedSize", c.disk_size);
    rest_add_size(o, "DiskSize", c.disk_size);
    rest_add_size(o, "UncompressedSize", c.disk_size);
    rest_reply_json(call, 200, o);
}

/* GET /{level}/{id}/{patient|study|series|patients|studies|instances}: a parent object, or
 * the full objects of the descendants at that level. */
void h_related(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    const char *rel = call->seg[2];
    int target = !strcmp(rel, "patient") ? SRV_PATIENT
               : !strcmp(rel, "study")   ? SRV_STUDY
                                         : rest_level_from_route(rel);
    bool singular = !strcmp(rel, "patient") || !strcmp(rel, "study") || !strcmp(rel, "series");
    bool plural = target >= 0 && !strcmp(rel, srv_level_route(target));
    SrvError e = { 0 };
    if (target < level && singular) { /* walk up */
        char id[SRV_ID_LEN];
        cJSON *o = NULL;
        if (srv_resource_ancestor(&e, call->srv, level, call->params[1], target, id))
            o = srv_resource_json(&e, call->srv, target, id);
        if (o) rest_reply_json(call, 200, o);
        else rest_reply_error(call, &e);
        return;
    }
    if (target > level && plural) { /* walk down, breadth first */
        char **ids = NULL;
        size_t n = 0;
        if (!srv_resource_descendants(&e, call->srv, level, call->params[1], target, &ids, &n)) {
            rest_reply_error(call, &e);
            return;
        }
        rest_reply_ids(call, target, ids, n, true);
        srv_strings_free(ids, n);
        return;
    }
    if (srv_resource_level(&e, call->srv, call->params[1]) != level) { /* 404 first, as before */
        if (!e.code) srv_fail(&e, SRV_UNKNOWN_RESOURCE, "unknown %s", srv_level_name(level));
        rest_reply_error(call, &e);
        return;
    }
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "no %s under a %s", rel, srv_level_name(level));
}

void rest_reply_instance_file(RestCall *call, const char *instance_id)
{
    SrvError e = { 0 };
    uint64_t size;
    int fd = srv_instance_open(&e, call->srv, instance_id, &size);
    if (fd < 0) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_fd(call, "application/dicom", fd, size);
}

/* GET /instances/{id}/file */
void h_file(RestCall *call)
{
    if (rest_file_transcoded(call)) return; /* ?transcode= (h_archive.c) */
    rest_reply_instance_file(call, call->params[0]);
}

/* The tags come from the DICOM cache (server/cache.c): a pinned, shared, full-parsed object. */
static void reply_tags(RestCall *call, int format)
{
    SrvTagsOptions opt;
    uint32_t ign[32];
    if (!rest_tags_options(call, format, &opt, ign, 32)) return;
    SrvError e = { 0 };
    cJSON *j = srv_instance_tags(&e, call->srv, call->params[0], &opt);
    if (!j) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, j);
}

/* GET /instances/{id}/tags with Accept: application/dicom+json: the instance's DICOM JSON
 * (PS3.18 F.2), from the one writer DICOMweb uses (server/dicomweb.c). */
static bool reply_dicom_json(RestCall *call)
{
    const char *accept = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    if (!accept || !strstr(accept, "application/dicom+json")) return false;
    /* BulkDataURIs under the DICOMweb root, as a path ("/dicom-web/studies/.../bulk/...") */
    const CfgDicomWeb *d = &call->srv->cfg.dicomweb;
    const char *root = d->public_root && d->public_root[0] ? d->public_root : d->root ? d->root : "/dicom-web/";
    char base[256];
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/') rl--;
    snprintf(base, sizeof base, "%.*s", (int)(rl < sizeof base ? rl : sizeof base - 1), root);
    SrvError e = { 0 };
    cJSON *j = dw_instance_json(&e, call->srv, call->params[0], base);
    if (!j) {
        rest_reply_error(call, &e);
        return true;
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    else rest_reply_buffer(call, 200, "application/dicom+json", s, strlen(s));
    return true;
}

/* GET /instances/{id}/tags[?simplify|?short] */
void h_tags(RestCall *call)
{
    if (reply_dicom_json(call)) return;
    reply_tags(call, rest_tags_format(call));
}

/* GET /instances/{id}/header[?simplify|?short] */
void h_header(RestCall *call)
{
    SrvError e = { 0 };
    cJSON *j = srv_instance_header(&e, call->srv, call->params[0], rest_tags_format(call));
    if (!j) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, j);
}

/* GET /instances/{id}/simplified-tags */
void h_simplified_tags(RestCall *call) { reply_tags(call, SRV_TAGS_SIMPLIFY); }
