/* h_archive.c -- ZIP downloads: /{patients,studies,series}/{id}/archive and /media (GET, or
 * POST with options), /tools/create-archive and /tools/create-media (Resources, Synchronous /
 * Asynchronous, Priority, Transcode), /jobs/{id}/archive; ZIP uploads to POST /instances;
 * /instances/{id}/file?transcode=. Maps parameters onto server/archive.c and
 * server/transcode.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"
#include "server/archive.h"

static ssize_t stream_read(void *cls, char *buf, size_t max) { return archive_stream_read(cls, buf, max); }
static void stream_free(void *cls) { archive_stream_close(cls); }

/* Options of a POST (may be NULL for GET): Synchronous/Asynchronous, Priority, Transcode. */
typedef struct Options {
    bool async;
    int priority;
    const char *transcode;
} Options;

static bool parse_options(RestCall *call, const cJSON *body, Options *o)
{
    memset(o, 0, sizeof *o);
    if (!body) return true;
    const cJSON *sync = cJSON_GetObjectItemCaseSensitive(body, "Synchronous");
    const cJSON *async = cJSON_GetObjectItemCaseSensitive(body, "Asynchronous");
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(body, "Priority");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(body, "Transcode");
    if ((sync && !cJSON_IsBool(sync)) || (async && !cJSON_IsBool(async)) || (prio && !cJSON_IsNumber(prio)) ||
        (tc && !cJSON_IsString(tc))) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "Synchronous/Asynchronous must be booleans, Priority a number, "
                                             "Transcode a transfer syntax UID");
        return false;
    }
    o->async = (async && cJSON_IsTrue(async)) || (sync && cJSON_IsFalse(sync));
    o->priority = prio ? (int)prio->valuedouble : 0;
    if (tc) {
        if (!srv_transcode_supported(tc->valuestring)) {
            rest_fail(call, SRV_BAD_REQUEST, "Transcode: cannot write transfer syntax \"%s\"", tc->valuestring);
            return false;
        }
        o->transcode = tc->valuestring;
    }
    return true;
}

static void start(RestCall *call, const RetrieveResource *res, size_t n, bool media, const Options *o,
                  const char *filename)
{
    ArchiveRequest req = { .resources = res, .n = n, .media = media, .transcode = o->transcode };
    SrvError e = { 0 };
    if (o->async) {
        char id[JOB_ID_LEN];
        if (!archive_job_submit(&e, call->srv, &req, o->priority, id)) {
            rest_reply_error(call, &e);
            return;
        }
        rest_reply_job(call, id);
        return;
    }
    ArchiveStream *s = NULL;
    if (!archive_stream_open(&e, call->srv, &req, &s)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_stream(call, "application/zip", stream_read, stream_free, s);
    char cd[128];
    snprintf(cd, sizeof cd, "filename=\"%s\"", filename);
    rest_add_header(call, "Content-Disposition", cd);
}

/* {GET,POST} /{level}/{id}/archive|media */
static void h_resource_archive(RestCall *call)
{
    int level = rest_level_from_route(call->seg[0]);
    if (level < 0 || level == SRV_INSTANCE) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s", call->url);
        return;
    }
    bool media = !strcmp(call->seg[call->nseg - 1], "media");
    cJSON *body = NULL;
    if (!strcmp(call->method, "POST") && !(body = rest_body_json(call))) return;
    Options o;
    if (!parse_options(call, body, &o)) {
        cJSON_Delete(body);
        return;
    }
    RetrieveResource r = { .level = level, .id = call->params[1] };
    char filename[SRV_ID_LEN + 8];
    snprintf(filename, sizeof filename, "%s.zip", call->params[1]);
    start(call, &r, 1, media, &o, filename);
    cJSON_Delete(body);
}

/* POST /tools/create-archive, /tools/create-media, /tools/create-media-extended:
 * {"Resources": [ids of any level], "Synchronous": true, "Transcode": "..."}, or a bare array */
static void h_create(RestCall *call)
{
    bool media = strstr(call->seg[call->nseg - 1], "media") != NULL;
    cJSON *body = rest_body_json(call);
    if (!body) return;
    const cJSON *list = cJSON_IsArray(body) ? body : cJSON_GetObjectItemCaseSensitive(body, "Resources");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "\"Resources\" must be a non-empty list of resource IDs");
        cJSON_Delete(body);
        return;
    }
    Options o;
    if (!parse_options(call, cJSON_IsObject(body) ? body : NULL, &o)) {
        cJSON_Delete(body);
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(list), k = 0;
    RetrieveResource *res = calloc(n, sizeof *res);
    if (!res) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        cJSON_Delete(body);
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (!cJSON_IsString(it)) {
            rest_fail(call, SRV_BAD_FILE_FORMAT, "\"Resources\" must hold resource IDs (strings)");
            free(res);
            cJSON_Delete(body);
            return;
        }
        res[k].level = -1;
        res[k++].id = it->valuestring;
    }
    start(call, res, n, media, &o, "archive.zip");
    free(res);
    cJSON_Delete(body);
}

/* GET /jobs/{id}/archive */
static void h_job_archive(RestCall *call)
{
    SrvError e = { 0 };
    int fd = -1;
    uint64_t size = 0;
    if (!archive_job_output(&e, call->params[0], &fd, &size)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_fd(call, "application/zip", fd, size);
    rest_add_header(call, "Content-Disposition", "filename=\"archive.zip\"");
}

/* ZIP body of POST /instances: one answer per stored instance, as Orthanc's JSON array. */
typedef struct ZipCtx {
    cJSON *answers;
} ZipCtx;

static void zip_each(void *ctx, const IngestResult *res)
{
    ZipCtx *z = ctx;
    cJSON *o = cJSON_CreateObject();
    char path[96];
    snprintf(path, sizeof path, "/instances/%s", res->ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "ID", res->ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "ParentPatient", res->ids[SRV_PATIENT]);
    cJSON_AddStringToObject(o, "ParentSeries", res->ids[SRV_SERIES]);
    cJSON_AddStringToObject(o, "ParentStudy", res->ids[SRV_STUDY]);
    cJSON_AddStringToObject(o, "Path", path);
    cJSON_AddStringToObject(o, "Status", res->already_stored ? "AlreadyStored" : "Success");
    cJSON_AddItemToArray(z->answers, o);
}

bool rest_upload_zip(RestCall *call, const IngestOrigin *origin)
{
    if (!archive_is_zip(call->body, call->body_len)) return false;
    ZipCtx z = { .answers = cJSON_CreateArray() };
    SrvError e = { 0 };
    uint64_t max_total = (uint64_t)call->srv->cfg.maximum_upload_size << 20;
    if (!archive_ingest_zip(&e, call->srv, call->body, call->body_len, max_total, origin, zip_each, &z)) {
        cJSON_Delete(z.answers);
        rest_reply_error(call, &e);
        return true;
    }
    rest_reply_json(call, 200, z.answers);
    return true;
}

/* GET /instances/{id}/file?transcode=<uid> (without the argument: h_file, the bytes as stored) */
bool rest_file_transcoded(RestCall *call)
{
    const char *ts = rest_arg(call, "transcode");
    if (!ts) return false;
    SrvError e = { 0 };
    void *out = NULL;
    size_t len = 0;
    if (!srv_transcode_instance(&e, call->srv, call->params[0], ts, &out, &len)) {
        rest_reply_error(call, &e);
        return true;
    }
    rest_reply_buffer(call, 200, "application/dicom", out, len);
    return true;
}

static const RestRoute routes[] = {
    { "GET", "/{level}/{id}/archive", h_resource_archive },
    { "POST", "/{level}/{id}/archive", h_resource_archive },
    { "GET", "/{level}/{id}/media", h_resource_archive },
    { "POST", "/{level}/{id}/media", h_resource_archive },
    { "POST", "/tools/create-archive", h_create },
    { "POST", "/tools/create-media", h_create },
    { "POST", "/tools/create-media-extended", h_create },
    { "GET", "/jobs/{id}/archive", h_job_archive },
};

const RestRouteTable rest_routes_archive = { routes, sizeof routes / sizeof routes[0] };
