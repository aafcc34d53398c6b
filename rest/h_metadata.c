/* h_metadata.c -- metadata and attachments of resources, as Orthanc answers them.
 *
 * Metadata: GET /{level}/{id}/metadata (names; ?expand: {name: value}), GET/PUT/DELETE
 * /{level}/{id}/metadata/{name}. The automatic items (ReceptionDate, Origin, ...) are written
 * by ingest and are read-only here; PUT and DELETE accept only the user metadata declared in
 * "UserMetadata" (by name or number) and any number 1024..65535. Each item has a revision
 * (storage: metadata_rev): GET and PUT answer Orthanc's ETag "<revision>-<md5 of the value>",
 * GET with the same If-None-Match is 304, PUT/DELETE with If-Match must name the current one
 * (409 otherwise). A change "UpdatedMetadata" is logged on PUT and DELETE, like Orthanc
 * (server/metadata.c does it).
 *
 * Attachments: the DICOM file ("dicom", content type 1, read-only here) and the user-defined
 * ones (1024..65535: PUT, DELETE, compress, uncompress), each answered with Orthanc's ETag
 * "<revision>-<uncompressed MD5>"; If-Match must name the current one (409 otherwise, 400 when
 * malformed). The rules are server/attachments.c's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rest/rest_int.h"


/* If-Match "<revision>-<md5>" (Orthanc's ETag, quotes optional) into *match and md5 (-1
 * without the header); false (400 replied, Orthanc's message) when malformed. */
static bool if_match(RestCall *call, int64_t *match, char md5[33])
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "If-Match");
    *match = -1;
    md5[0] = 0;
    int r = srv_metadata_parse_etag(v, match, md5);
    if (r >= 0) return true;
    rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE,
              "The \"if-match\" HTTP header should contain the ETag (revision followed by MD5 "
              "hash), but found: %s", v);
    return false;
}

static void set_etag(RestCall *call, int64_t revision, const char *value)
{
    char etag[SRV_ETAG_LEN];
    srv_metadata_etag(revision, value, etag);
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
    set_etag(call, rev, value);
    const char *inm = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm) { /* Orthanc: the same ETag -> 304; a malformed one -> 400 */
        int64_t r = -1;
        char md5[33], cur[33];
        if (srv_metadata_parse_etag(inm, &r, md5) < 0) {
            free(value);
            rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE,
                      "The \"if-none-match\" HTTP header should contain the ETag (revision "
                      "followed by MD5 hash), but found: %s", inm);
            return;
        }
        srv_md5_hex(value, strlen(value), cur);
        if (r == rev && !strcmp(md5, cur)) {
            free(value);
            rest_reply_text(call, 304, "text/plain", "");
            return;
        }
    }
    rest_reply_buffer(call, 200, "text/plain; charset=utf-8", value, strlen(value));
}

/* As Orthanc: an unknown name is 404 (InexistentItem); a built-in item or a number outside
 * 1024..65535 is 403 with an empty body (read-only). */
static bool check_user(RestCall *call, char *name, size_t size)
{
    bool user;
    if (!srv_metadata_resolve(&call->srv->cfg, call->params[2], name, size, &user)) {
        const char *p = call->params[2];
        char *end;
        (void)strtol(p, &end, 10);
        if (*p && !*end) { /* a number, not a user one */
            rest_reply_text(call, 403, "text/plain", "");
            return false;
        }
        rest_fail(call, SRV_INEXISTENT_ITEM, "unknown metadata \"%s\" (declare it in UserMetadata)",
                  call->params[2]);
        return false;
    }
    if (!user) {
        rest_reply_text(call, 403, "text/plain", "");
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
    char md5[33];
    if (!if_match(call, &match, md5)) return;
    char *value = strndup(call->body ? call->body : "", call->body_len);
    if (!value) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    int64_t rev = 0;
    SrvError e = { 0 };
    bool ok = srv_metadata_put(&e, call->srv, level, call->params[1], name, value, match,
                               md5[0] ? md5 : NULL, &rev);
    if (ok) set_etag(call, rev, value);
    free(value);
    if (!ok) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", "");
}

/* DELETE /{level}/{id}/metadata/{name} */
void h_metadata_delete(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    char name[128];
    if (!check_user(call, name, sizeof name)) return;
    int64_t match;
    char md5[33];
    if (!if_match(call, &match, md5)) return;
    SrvError e = { 0 };
    if (!srv_metadata_delete(&e, call->srv, level, call->params[1], name, match, md5[0] ? md5 : NULL)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", "");
}

/* ---- attachments ------------------------------------------------------------------------ */

/* GET /{level}/{id}/attachments[?full]: names (["dicom"] and the user-defined ones), or
 * {name: content type} with ?full. */
void h_attachments_list(RestCall *call)
{
    SrvError e = { 0 };
    cJSON *a = srv_attachments_list(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1]);
    if (!a) {
        rest_reply_error(call, &e);
        return;
    }
    if (rest_arg(call, "full")) {
        cJSON *o = cJSON_CreateObject();
        const cJSON *it;
        cJSON_ArrayForEach(it, a) {
            SrvAttachment att;
            SrvError ge = { 0 };
            if (srv_attachment_get(&ge, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                                   it->valuestring, false, &att))
                cJSON_AddNumberToObject(o, it->valuestring, att.content_type);
        }
        cJSON_Delete(a);
        a = o;
    }
    rest_reply_json(call, 200, a);
}

/* ETag "<revision>-<uncompressed MD5>", as Orthanc. */
static void set_attachment_etag(RestCall *call, const SrvAttachment *a)
{
    char etag[64];
    snprintf(etag, sizeof etag, "\"%lld-%s\"", (long long)a->revision, a->md5);
    rest_add_header(call, "ETag", etag);
}

/* The attachment of the route, with its MD5 (for the ETag). Reply set on failure. */
static bool load_attachment(RestCall *call, SrvAttachment *a)
{
    SrvError e = { 0 };
    if (srv_attachment_get(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                           call->params[2], true, a))
        return true;
    rest_reply_error(call, &e);
    return false;
}

/* If-Match of an attachment: "<revision>-<md5>" (quotes optional) -> the revision, after
 * checking the MD5 against the current attachment (409 otherwise); -1 without the header.
 * false with the reply set (400 malformed, 409 mismatch, 404 absent). */
static bool attachment_if_match(RestCall *call, int64_t *match)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "If-Match");
    *match = -1;
    if (!v) return true;
    char buf[96];
    snprintf(buf, sizeof buf, "%s", v);
    char *p = buf, *end;
    while (*p == ' ' || *p == '"') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == '"' || p[n - 1] == ' ')) p[--n] = '\0';
    long long r = strtoll(p, &end, 10);
    if (end == p || *end != '-' || r < 0) {
        rest_fail(call, SRV_BAD_REQUEST, "The \"if-match\" HTTP header should contain the ETag (revision followed by MD5 hash), but found: %s", v);
        return false;
    }
    SrvAttachment a;
    SrvError e = { 0 };
    if (!srv_attachment_get(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                            call->params[2], true, &a)) {
        if (e.code == SRV_INEXISTENT_ITEM) { /* absent: never matches */
            SrvError c = { .code = SRV_BAD_SEQUENCE_OF_CALLS, .http_status = 409 };
            snprintf(c.message, sizeof c.message, "no attachment \"%s\" to match", call->params[2]);
            rest_reply_error(call, &c);
        } else {
            rest_reply_error(call, &e);
        }
        return false;
    }
    if (strcmp(end + 1, a.md5) || a.revision != r) {
        SrvError c = { .code = SRV_BAD_SEQUENCE_OF_CALLS, .http_status = 409 };
        snprintf(c.message, sizeof c.message, "the attachment is at ETag \"%lld-%s\"", (long long)a.revision, a.md5);
        rest_reply_error(call, &c);
        return false;
    }
    *match = r;
    return true;
}

/* GET /{level}/{id}/attachments/{name}: the operations, as Orthanc lists them. */
void h_attachment_ops(RestCall *call)
{
    SrvAttachment att;
    if (!load_attachment(call, &att)) return;
    static const char *const ops[] = { "compress", "compressed-data", "compressed-md5", "compressed-size",
                                       "data", "info", "is-compressed", "md5", "size", "uncompress",
                                       "verify-md5", "uuid" };
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ops[i]));
    set_attachment_etag(call, &att);
    rest_reply_json(call, 200, a);
}

/* GET /{level}/{id}/attachments/{name}/{op} */
void h_attachment_get(RestCall *call)
{
    const char *op = call->seg[4];
    static const char *const known[] = { "data", "compressed-data", "size", "compressed-size", "md5",
                                         "compressed-md5", "is-compressed", "info" };
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok = ok || !strcmp(op, known[i]);
    if (!ok) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown attachment operation \"%s\"", op);
        return;
    }
    SrvAttachment r;
    if (!load_attachment(call, &r)) return;
    set_attachment_etag(call, &r);
    const char *inm = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm) { /* the client's copy is current: 304, as Orthanc */
        char want[64], got[64];
        snprintf(want, sizeof want, "%lld-%s", (long long)r.revision, r.md5);
        snprintf(got, sizeof got, "%s", inm[0] == '"' ? inm + 1 : inm);
        size_t gl = strlen(got);
        if (gl && got[gl - 1] == '"') got[gl - 1] = '\0';
        if (!strcmp(got, want)) {
            rest_reply_buffer(call, 304, NULL, NULL, 0);
            return;
        }
    }
    char text[64];
    if (!strcmp(op, "data") || !strcmp(op, "compressed-data")) {
        if (r.content_type == 1) {
            rest_reply_instance_file(call, call->params[1]);
            return;
        }
        void *buf = NULL;
        size_t len = 0;
        SrvError e = { 0 };
        bool raw = !strcmp(op, "compressed-data");
        if (!srv_attachment_read(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                                 call->params[2], raw, &buf, &len, NULL)) {
            rest_reply_error(call, &e);
            return;
        }
        rest_reply_buffer(call, 200, raw ? "application/octet-stream" : r.mime, buf, len);
        return;
    }
    if (!strcmp(op, "info")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "CompressedMD5", r.compressed_md5);
        cJSON_AddNumberToObject(o, "CompressedSize", (double)r.compressed_size);
        cJSON_AddNumberToObject(o, "ContentType", r.content_type);
        cJSON_AddStringToObject(o, "UncompressedMD5", r.md5);
        cJSON_AddNumberToObject(o, "UncompressedSize", (double)r.size);
        cJSON_AddStringToObject(o, "Uuid", r.uuid);
        rest_reply_json(call, 200, o);
        return;
    }
    if (!strcmp(op, "md5")) snprintf(text, sizeof text, "%s", r.md5);
    else if (!strcmp(op, "compressed-md5")) snprintf(text, sizeof text, "%s", r.compressed_md5);
    else if (!strcmp(op, "is-compressed")) snprintf(text, sizeof text, "%d", r.compressed ? 1 : 0);
    else if (!strcmp(op, "size")) snprintf(text, sizeof text, "%llu", (unsigned long long)r.size);
    else snprintf(text, sizeof text, "%llu", (unsigned long long)r.compressed_size);
    rest_reply_text(call, 200, "text/plain", text);
}

/* PUT /{level}/{id}/attachments/{name} (body: the content) -> {} with the new ETag */
void h_attachment_put(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    int64_t match, rev = 0;
    SrvError e = { 0 };
    char md5[33];
    if (!attachment_if_match(call, &match)) return;
    if (!srv_attachment_put(&e, call->srv, level, call->params[1], call->params[2], call->body ? call->body : "",
                            call->body_len, match, &rev, md5)) {
        if (e.code == SRV_PARAMETER_OUT_OF_RANGE && e.http_status == 403) {
            rest_reply_buffer(call, 403, NULL, NULL, 0); /* as Orthanc: no body */
            return;
        }
        rest_reply_error(call, &e);
        return;
    }
    SrvAttachment a = { .revision = rev };
    snprintf(a.md5, sizeof a.md5, "%s", md5);
    set_attachment_etag(call, &a);
    rest_reply_json(call, 200, cJSON_CreateObject());
}

/* DELETE /{level}/{id}/attachments/{name} */
void h_attachment_delete(RestCall *call)
{
    int64_t match;
    SrvError e = { 0 };
    if (!attachment_if_match(call, &match)) return;
    if (!srv_attachment_delete(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                               call->params[2], match)) {
        if (e.code == SRV_PARAMETER_OUT_OF_RANGE && e.http_status == 403) {
            rest_reply_buffer(call, 403, NULL, NULL, 0);
            return;
        }
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", "");
}

/* POST /{level}/{id}/attachments/{name}/compress|uncompress -> {} */
static void attachment_compress(RestCall *call, bool on)
{
    SrvError e = { 0 };
    if (!srv_attachment_compress(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1],
                                 call->params[2], on)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

void h_attachment_compress(RestCall *call) { attachment_compress(call, true); }
void h_attachment_uncompress(RestCall *call) { attachment_compress(call, false); }

/* POST /{level}/{id}/attachments/{name}/verify-md5: recomputes the file's MD5 and compares it
 * with the recorded one (computing it first if none was). */
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
    { "PUT", "/{level}/{id}/attachments/{name}", h_attachment_put },
    { "DELETE", "/{level}/{id}/attachments/{name}", h_attachment_delete },
    { "POST", "/{level}/{id}/attachments/{name}/verify-md5", h_attachment_verify },
    { "POST", "/{level}/{id}/attachments/{name}/compress", h_attachment_compress },
    { "POST", "/{level}/{id}/attachments/{name}/uncompress", h_attachment_uncompress },
};

const RestRouteTable rest_routes_metadata = { routes, sizeof routes / sizeof routes[0] };
