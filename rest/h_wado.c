/* h_wado.c -- WADO-URI (PS3.18 chapter 9, formerly WADO): GET /wado?requestType=WADO
 * &studyUID=&seriesUID=&objectUID=[&contentType=][&frameNumber=][&rows=][&columns=]
 * [&windowCenter=&windowWidth=][&imageQuality=], as Orthanc's DICOMweb plugin serves it.
 *
 * DESIGN: the instance is found in the index by its UIDs (srv_find at instance level: the
 * study and series UIDs given must be its own, else 404); application/dicom answers the stored
 * file as is (a file descriptor, never read into memory); image/jpeg (the standard's default)
 * and image/png are rendered by server/image.c like /instances/{id}/frames/{n}/rendered (the
 * file's window unless windowCenter/windowWidth are given; rows/columns bound the size;
 * imageQuality is the JPEG quality). contentType may list several types: the first one we
 * produce is used. Errors are Orthanc's JSON: 400 for a missing objectUID, a requestType other
 * than WADO, a malformed UID or number, a contentType we cannot produce; 404 for an unknown
 * instance or frame. Not done: transferSyntax (the stored syntax is sent), anonymize, region,
 * annotation, presentation states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"

/* A DICOM UID: digits and dots, at most 64 characters. */
static bool valid_uid(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '.') return false;
    return true;
}

static bool uid_arg(RestCall *call, const char *key, bool required, const char **out)
{
    const char *v = rest_arg(call, key);
    *out = v && *v ? v : NULL;
    if (!*out) {
        if (required) rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: argument %s is required", key);
        return !required;
    }
    if (!valid_uid(v)) {
        rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: %s is not a DICOM UID: \"%.80s\"", key, v);
        return false;
    }
    return true;
}

static bool num_arg(RestCall *call, const char *key, double lo, double hi, bool *present, double *out)
{
    const char *v = rest_arg(call, key);
    *present = v && *v;
    if (!*present) return true;
    char *end;
    *out = strtod(v, &end);
    if (*end || *out < lo || *out > hi) {
        rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: %s must be a number in [%g, %g], not \"%.40s\"",
                  key, lo, hi, v);
        return false;
    }
    return true;
}

/* 0 DICOM, 1 JPEG, 2 PNG; -1 (and a 400) when no listed type can be produced. */
static int pick_type(RestCall *call)
{
    const char *ct = rest_arg(call, "contentType");
    if (!ct || !*ct) return 1; /* PS3.18: image/jpeg by default */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ct);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        char *semi = strchr(t, ';');
        if (semi) *semi = '\0';
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ') t[--n] = '\0';
        if (!strcasecmp(t, "application/dicom")) return 0;
        if (!strcasecmp(t, "image/jpeg") || !strcasecmp(t, "image/*") || !strcmp(t, "*/*")) return 1;
        if (!strcasecmp(t, "image/png")) return 2;
    }
    rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: contentType \"%.100s\" is not supported "
              "(application/dicom, image/jpeg, image/png)", ct);
    return -1;
}

/* GET /wado */
static void h_wado(RestCall *call)
{
    const char *rt = rest_arg(call, "requestType");
    if (!rt || strcmp(rt, "WADO") != 0) {
        rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: requestType must be WADO");
        return;
    }
    const char *study, *series, *object;
    if (!uid_arg(call, "objectUID", true, &object) || !uid_arg(call, "studyUID", false, &study) ||
        !uid_arg(call, "seriesUID", false, &series))
        return;
    int type = pick_type(call);
    if (type < 0) return;
    bool has_frame, has_rows, has_cols, has_wc, has_ww, has_q;
    double frame = 1, rows = 0, cols = 0, wc = 0, ww = 0, q = 90;
    if (!num_arg(call, "frameNumber", 1, 1e9, &has_frame, &frame) ||
        !num_arg(call, "rows", 1, 65535, &has_rows, &rows) ||
        !num_arg(call, "columns", 1, 65535, &has_cols, &cols) ||
        !num_arg(call, "windowCenter", -1e12, 1e12, &has_wc, &wc) ||
        !num_arg(call, "windowWidth", 0, 1e12, &has_ww, &ww) ||
        !num_arg(call, "imageQuality", 1, 100, &has_q, &q))
        return;
    if (has_wc != has_ww) {
        rest_fail(call, SRV_BAD_REQUEST, "WADO-URI: windowCenter and windowWidth go together");
        return;
    }

    cJSON *query = cJSON_CreateObject();
    if (!query) { rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory"); return; }
    cJSON_AddStringToObject(query, "SOPInstanceUID", object);
    if (study) cJSON_AddStringToObject(query, "StudyInstanceUID", study);
    if (series) cJSON_AddStringToObject(query, "SeriesInstanceUID", series);
    SrvError e = { 0 };
    char **ids = NULL;
    size_t n = 0;
    bool found = srv_find(&e, call->srv, SRV_INSTANCE, query, true, 0, 2, &ids, &n);
    cJSON_Delete(query);
    if (!found) { rest_reply_error(call, &e); return; }
    if (n == 0) {
        srv_strings_free(ids, n);
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "WADO-URI: no instance %s%s%s%s%s", object,
                  study ? " in study " : "", study ? study : "", series ? " series " : "", series ? series : "");
        return;
    }
    char id[SRV_ID_LEN];
    snprintf(id, sizeof id, "%s", ids[0]);
    srv_strings_free(ids, n);

    if (type == 0) {
        rest_reply_instance_file(call, id);
        return;
    }
    SrvImageRequest req = { .kind = SRV_IMAGE_RENDERED, .jpeg = type == 1, .quality = (int)q,
                            .width = (uint32_t)cols, .height = (uint32_t)rows, .smooth = true,
                            .has_window = has_wc, .window_center = wc, .window_width = ww };
    void *body = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (!image_render(&e, call->srv, id, (uint32_t)frame - 1, &req, &body, &len, &mime)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_buffer(call, 200, mime, body, len);
}

static const RestRoute routes[] = {
    { "GET", "/wado", h_wado },
};

const RestRouteTable rest_routes_wado = { routes, sizeof routes / sizeof routes[0] };
