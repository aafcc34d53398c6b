/* h_tools.c -- Orthanc's /tools routes: find (search on main DICOM tags), lookup (a UID or ID
 * to the resources carrying it), create-dicom, now, now-local, generate-uid.
 *
 * DESIGN: the search is server/find.c's (srv_find, a translation onto the one query engine of
 * server/query.c, shared with C-FIND: main DICOM tags in SQL, other tags on the stored files);
 * /tools/create-dicom decodes the request (Tags, Parent, the Content data URI) and lets
 * server/create.c build the file and store it through the one ingest path, like an upload.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rest/rest_int.h"


/* ---- /tools/now, /tools/now-local, /tools/generate-uid ----------------------------------- */

static void reply_now(RestCall *call, bool local)
{
    time_t t = time(NULL);
    struct tm tm;
    if (local) localtime_r(&t, &tm);
    else gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
    rest_reply_text(call, 200, "text/plain", buf);
}

void h_tools_now(RestCall *call) { reply_now(call, false); }
void h_tools_now_local(RestCall *call) { reply_now(call, true); }

/* GET /tools/generate-uid?level=patient|study|series|instance */
void h_tools_generate_uid(RestCall *call)
{
    const char *level = rest_arg(call, "level");
    if (!level || (strcasecmp(level, "patient") && strcasecmp(level, "study") &&
                   strcasecmp(level, "series") && strcasecmp(level, "instance"))) {
        rest_fail(call, SRV_BAD_REQUEST, "argument \"level\" must be patient, study, series or instance");
        return;
    }
    char uid[64];
    if (!strcasecmp(level, "patient")) srv_uuid_new(uid); /* Orthanc: a UUID for PatientID */
    else srv_uid_2_25_random(uid);
    rest_reply_text(call, 200, "text/plain", uid);
}

/* ---- /tools/find ------------------------------------------------------------------------- */

static int level_from_name(const char *s)
{
    static const char *const names[] = { "Patient", "Study", "Series", "Instance" };
    for (int l = 0; l < SRV_LEVELS; l++)
        if (s && !strcasecmp(s, names[l])) return l;
    return -1;
}

static bool json_u64(RestCall *call, const cJSON *body, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = 0;
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
        rest_fail(call, SRV_BAD_REQUEST, "\"%s\" must be a non-negative integer", key);
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* POST /tools/find {Level, Query, Expand, Limit, Since, CaseSensitive}: a translation onto the
 * one query engine (server/query.c), which C-FIND uses too: tags outside the main DICOM tags
 * are matched on the stored files, as Orthanc does. */
void h_tools_find(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(body, "Level");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(body, "Query");
    int level = cJSON_IsString(lv) ? level_from_name(lv->valuestring) : -1;
    uint64_t limit, since;
    if (level < 0 || !cJSON_IsObject(query)) {
        rest_fail(call, SRV_BAD_REQUEST, "/tools/find needs \"Level\" (Patient, Study, Series, Instance) and \"Query\" (an object)");
        goto out;
    }
    if (!json_u64(call, body, "Limit", &limit) || !json_u64(call, body, "Since", &since)) goto out;
    bool case_sensitive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "CaseSensitive"));
    bool expand = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Expand"));
    char **ids = NULL;
    size_t nids = 0;
    SrvError e = { 0 };
    if (!srv_find(&e, call->srv, level, query, case_sensitive, since, limit, &ids, &nids)) {
        rest_reply_error(call, &e);
        goto out;
    }
    int format = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Full")) ? REST_TAGS_FULL
                 : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Short")) ? REST_TAGS_SHORT
                                                                               : REST_TAGS_NAMES;
    if (expand && format != REST_TAGS_NAMES) { /* tags as "gggg,eeee" keys */
        cJSON *a = srv_resources_json(&e, call->srv, level, ids, nids, true);
        srv_strings_free(ids, nids);
        if (!a) {
            rest_reply_error(call, &e);
            goto out;
        }
        cJSON *it;
        cJSON_ArrayForEach(it, a) rest_main_tags_format(it, format);
        rest_reply_json(call, 200, a);
        goto out;
    }
    rest_reply_ids(call, level, ids, nids, expand);
    srv_strings_free(ids, nids);
out:
    cJSON_Delete(body);
}

/* ---- /tools/lookup ------------------------------------------------------------------------ */

/* POST /tools/lookup (body: a PatientID, StudyInstanceUID, SeriesInstanceUID or
 * SOPInstanceUID) -> [{ID, Path, Type}] */
void h_tools_lookup(RestCall *call)
{
    char *value = strndup(call->body ? call->body : "", call->body_len);
    if (!value) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    srv_strip(value);
    SrvError e = { 0 };
    cJSON *a = srv_lookup(&e, call->srv, value);
    free(value);
    if (!a) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, a);
}

/* ---- /tools/create-dicom ------------------------------------------------------------------ */

/* POST /tools/create-dicom {Tags, Content?, Parent?} -> {ID, Path} of the stored instance */
void h_tools_create_dicom(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    unsigned char *content = NULL;
    size_t content_len = 0;
    char type[64] = "";
    if (!body) return;
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "Tags");
    if (tags && !cJSON_IsObject(tags)) {
        rest_fail(call, SRV_BAD_REQUEST, "\"Tags\" must be an object");
        goto out;
    }
    if (!tags) { /* Orthanc's legacy body: the tags at top level, beside the options */
        static const char *const options[] = { "Content", "Parent", "PrivateCreator",
                                               "InterpretBinaryTags", "Force" };
        tags = cJSON_CreateObject();
        for (cJSON *m = body->child; m;) {
            cJSON *next = m->next;
            bool option = false;
            for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
                option = option || !strcmp(m->string, options[i]);
            if (!option) cJSON_AddItemToObject(tags, m->string, cJSON_DetachItemViaPointer(body, m));
            m = next;
        }
        cJSON_AddItemToObject(body, "Tags", tags);
    }
    const cJSON *creator = cJSON_GetObjectItemCaseSensitive(body, "PrivateCreator");
    if (creator && !cJSON_IsString(creator)) {
        rest_fail(call, SRV_BAD_REQUEST, "\"PrivateCreator\" must be a string");
        goto out;
    }
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(body, "Parent");
    const cJSON *ib = cJSON_GetObjectItemCaseSensitive(body, "InterpretBinaryTags");
    if (ib && !cJSON_IsBool(ib)) {
        rest_fail(call, SRV_BAD_REQUEST, "\"InterpretBinaryTags\" must be a Boolean");
        goto out;
    }
    bool interpret = !ib || cJSON_IsTrue(ib); /* Orthanc's default: true */
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "Content");
    SrvError err = { 0 };
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST,
                            .remote_ip = call->remote_ip[0] ? call->remote_ip : NULL,
                            .http_user = call->user };
    const char *parent_id = cJSON_IsString(parent) ? parent->valuestring : NULL;
    const char *creator_s = creator ? creator->valuestring : NULL;
    if (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 0) c = NULL; /* Orthanc: as no content */
    if (cJSON_IsArray(c)) { /* several contents: one series, answered as {ID, Path, Status} */
        char series[SRV_ID_LEN];
        if (!srv_create_dicom_series(&err, call->srv, tags, parent_id, creator_s, interpret, c,
                                     &origin, series)) {
            rest_reply_error(call, &err);
            goto out;
        }
        cJSON *o = cJSON_CreateObject();
        char path[96];
        snprintf(path, sizeof path, "/series/%s", series);
        cJSON_AddStringToObject(o, "ID", series);
        cJSON_AddStringToObject(o, "Path", path);
        cJSON_AddStringToObject(o, "Status", "Success");
        rest_reply_json(call, 200, o);
        goto out;
    }
    if (c && !srv_data_uri_decode(&err, cJSON_IsString(c) ? c->valuestring : NULL, type, sizeof type,
                                  &content, &content_len)) {
        rest_reply_error(call, &err);
        goto out;
    }
    IngestResult res;
    if (!srv_create_dicom(&err, call->srv, tags, parent_id, creator_s, interpret, type, content,
                          content_len, &origin, &res)) {
        rest_reply_error(call, &err);
        goto out;
    }
    /* as Orthanc 1.10.1: the answer of an upload */
    cJSON *o = cJSON_CreateObject();
    char path[96];
    snprintf(path, sizeof path, "/instances/%s", res.ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "ID", res.ids[SRV_INSTANCE]);
    cJSON_AddStringToObject(o, "ParentPatient", res.ids[SRV_PATIENT]);
    cJSON_AddStringToObject(o, "ParentSeries", res.ids[SRV_SERIES]);
    cJSON_AddStringToObject(o, "ParentStudy", res.ids[SRV_STUDY]);
    cJSON_AddStringToObject(o, "Path", path);
    cJSON_AddStringToObject(o, "Status", res.already_stored ? "AlreadyStored" : "Success");
    rest_reply_json(call, 200, o);
out:
    free(content);
    cJSON_Delete(body);
}

static const RestRoute routes[] = {
    { "GET", "/tools/now", h_tools_now },
    { "GET", "/tools/now-local", h_tools_now_local },
    { "GET", "/tools/generate-uid", h_tools_generate_uid },
    { "POST", "/tools/find", h_tools_find },
    { "POST", "/tools/lookup", h_tools_lookup },
    { "POST", "/tools/create-dicom", h_tools_create_dicom },
};

const RestRouteTable rest_routes_tools = { routes, sizeof routes / sizeof routes[0] };
