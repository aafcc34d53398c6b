/* h_metadata.c -- metadata and attachments of resources, as Orthanc answers them.
 *
 * Metadata: GET /{level}/{id}/metadata (names; ?expand: {name: value}), GET/PUT/DELETE
 * /{level}/{id}/metadata/{name}. The automatic items (ReceptionDate, Origin, ...) are written
 * by ingest and are read-only here; PUT and DELETE accept only the user metadata declared in
 * "UserMetadata" (by name or number). Each item has a revision (storage: metadata_rev): GET and
 * PUT answer it as ETag "<revision>", PUT/DELETE with If-Match must name the current one
 * (409 otherwise). A change "UpdatedMetadata" is logged on PUT and DELETE, like Orthanc
 * (server/metadata.c does it).
 *
 * Attachments: the only attachment is the DICOM file ("dicom", content type 1), stored
 * uncompressed: compressed and uncompressed sizes and MD5s are equal. The MD5 is computed on
 * first demand (ingest does not hash, to stay fast) and cached in the index
 * (server/attachments.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rest/rest_int.h"


/* If-Match: "3" or 3 -> 3; absent -> -1; malformed -> -2. */
/* The revision of If-Match into *match (-1 without the header); false (400 replied) when
 * the header is malformed. */
static bool if_match(RestCall *call, int64_t *match)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "If-Match");
    *match = -1;
    if (!v) return true;
    while (*v == ' ' || *v == '"' || *v == 'W' || *v == '/') v++;
    char *end;
    long long r = strtoll(v, &end, 10);
    if (end != v && r >= 0) {
        while (*end == '"' || *end == ' ') end++;
        if (!*end) {
            *match = r;
            return true;
        }
    }
    rest_fail(call, SRV_BAD_REQUEST, "malformed If-Match header");
    return false;
}

static void set_etag(RestCall *call, int64_t revision)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", (long long)revision);
    rest_add_header(call, "ETag", etag);
}

/* GET /{level}/{id}/metadata[?expand] */
void h_metadata_list(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    SrvError e = { 0 };
    cJSON *o = srv_metadata_list(&e, call->srv, level, call->params[1], rest_arg_bool(call, "expand"));
    if (!o) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, o);
}

/* GET /{level}/{id}/metadata/{name} */
void h_metadata_get(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    char name[128];
    bool user;
    if (!srv_metadata_resolve(&call->srv->cfg, call->params[2], name, sizeof name, &user))
        snprintf(name, sizeof name, "%s", call->params[2]); /* unknown: surely absent, 404 below */
    char *value = NULL;
    int64_t rev = 0;
    SrvError e = { 0 };
    if (!srv_metadata_get(&e, call->srv, level, call->params[1], name, &value, &rev)) {
        rest_reply_error(call, &e);
        return;
    }
    set_etag(call, rev);
    rest_reply_buffer(call, 200, "text/plain; charset=utf-8", value, strlen(value));
}

static bool check_user(RestCall *call, char *name, size_t size)
{
    bool user;
    if (!srv_metadata_resolve(&call->srv->cfg, call->params[2], name, size, &user)) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "unknown metadata \"%s\" (declare it in UserMetadata)",
                  call->params[2]);
        return false;
    }
    if (!user) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "metadata \"%s\" is read-only", name);
        return false;
    }
    return true;
}

/* PUT /{level}/{id}/metadata/{name} (body: the value) */
void h_metadata_put(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    char name[128];
    if (!check_user(call, name, sizeof name)) return;
    int64_t match;
    if (!if_match(call, &match)) return;
    char *value = strndup(call->body ? call->body : "", call->body_len);
    if (!value) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    int64_t rev = 0;
    SrvError e = { 0 };
    bool ok = srv_metadata_put(&e, call->srv, level, call->params[1], name, value, match, &rev);
    free(value);
    if (!ok) {
        rest_reply_error(call, &e);
        return;
    }
    set_etag(call, rev);
    rest_reply_text(call, 200, "text/plain", "");
}

/* DELETE /{level}/{id}/metadata/{name} */
void h_metadata_delete(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    char name[128];
    if (!check_user(call, name, sizeof name)) return;
    int64_t match;
    if (!if_match(call, &match)) return;
    SrvError e = { 0 };
    if (!srv_metadata_delete(&e, call->srv, level, call->params[1], name, match)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", "");
}

/* ---- attachments ------------------------------------------------------------------------ */

/* GET /{level}/{id}/attachments: ["dicom"] for an instance, [] otherwise. */
void h_attachments_list(RestCall *call)
{
    SrvError e = { 0 };
    cJSON *a = srv_attachments_list(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1]);
    if (!a) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, a);
}

/* The attachment of the route, with its MD5 computed if needed. Reply set on failure. */
static bool load_attachment(RestCall *call, SrvAttachment *a, bool need_md5)
{
    SrvError e = { 0 };
    if (srv_attachment_get(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                           call->params[2], need_md5, a))
        return true;
    rest_reply_error(call, &e);
    return false;
}

/* GET /{level}/{id}/attachments/{name}: the operations, as Orthanc lists them. */
void h_attachment_ops(RestCall *call)
{
    SrvAttachment att;
    if (!load_attachment(call, &att, false)) return;
    static const char *const ops[] = { "compressed-data", "compressed-md5", "compressed-size",
                                       "data", "info", "is-compressed", "md5", "size", "verify-md5" };
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ops[i]));
    rest_reply_json(call, 200, a);
}

/* GET /{level}/{id}/attachments/{name}/{op} */
void h_attachment_get(RestCall *call)
{
    const char *op = call->seg[4];
    bool md5 = !strcmp(op, "md5") || !strcmp(op, "compressed-md5") || !strcmp(op, "info");
    if (strcmp(op, "data") && strcmp(op, "compressed-data") && strcmp(op, "size") &&
        strcmp(op, "compressed-size") && strcmp(op, "is-compressed") && !md5) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown attachment operation \"%s\"", op);
        return;
    }
    SrvAttachment r;
    if (!load_attachment(call, &r, md5)) return;
    char text[64];
    if (!strcmp(op, "data") || !strcmp(op, "compressed-data")) {
        rest_reply_instance_file(call, call->params[1]);
        return;
    }
    if (!strcmp(op, "info")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "CompressedMD5", r.md5);
        cJSON_AddNumberToObject(o, "CompressedSize", (double)r.size);
        cJSON_AddNumberToObject(o, "ContentType", 1);
        cJSON_AddStringToObject(o, "UncompressedMD5", r.md5);
        cJSON_AddNumberToObject(o, "UncompressedSize", (double)r.size);
        cJSON_AddStringToObject(o, "Uuid", r.uuid);
        rest_reply_json(call, 200, o);
        return;
    }
    if (md5) snprintf(text, sizeof text, "%s", r.md5);
    else if (!strcmp(op, "is-compressed")) snprintf(text, sizeof text, "0");
    else snprintf(text, sizeof text, "%llu", (unsigned long long)r.size);
    rest_reply_text(call, 200, "text/plain", text);
}

/* POST /{level}/{id}/attachments/{name}/verify-md5: recomputes the file's MD5 and compares it
 * with the cached one (computing it first if none was). */
void h_attachment_verify(RestCall *call)
{
    SrvError e = { 0 };
    if (!srv_attachment_verify(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                               call->params[2])) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

static const RestRoute routes[] = {
    { "GET", "/{level}/{id}/metadata", h_metadata_list },
    { "GET", "/{level}/{id}/metadata/{name}", h_metadata_get },
    { "PUT", "/{level}/{id}/metadata/{name}", h_metadata_put },
    { "DELETE", "/{level}/{id}/metadata/{name}", h_metadata_delete },
    { "GET", "/{level}/{id}/attachments", h_attachments_list },
    { "GET", "/{level}/{id}/attachments/{name}", h_attachment_ops },
    { "GET", "/{level}/{id}/attachments/{name}/{op}", h_attachment_get },
    { "POST", "/{level}/{id}/attachments/{name}/verify-md5", h_attachment_verify },
};

const RestRouteTable rest_routes_metadata = { routes, sizeof routes / sizeof routes[0] };
