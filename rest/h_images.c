/* h_images.c -- pixel routes: /instances/{id}/frames, /frames/{n}/raw, the image views
 * (preview, rendered, image-uint8/uint16/int16, matlab, numpy) of a frame or of the first
 * frame, /pdf and /series/{id}/ordered-slices. Only maps parameters onto server/image.c. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "rest/rest_int.h"

static const struct {
    const char *name;
    int kind;
} KINDS[] = {
    { "preview", SRV_IMAGE_PREVIEW },       { "rendered", SRV_IMAGE_RENDERED },
    { "image-uint8", SRV_IMAGE_UINT8 },     { "image-uint16", SRV_IMAGE_UINT16 },
    { "image-int16", SRV_IMAGE_INT16 },     { "matlab", SRV_IMAGE_MATLAB },
    { "numpy", SRV_IMAGE_NUMPY },
};

/* Frame index from a path segment; false + 404 when not a number (as Orthanc). */
static bool frame_index(RestCall *call, const char *s, uint32_t *n)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v > UINT32_MAX) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "frame index \"%s\" is not a number", s);
        return false;
    }
    *n = (uint32_t)v;
    return true;
}

static bool arg_double(RestCall *call, const char *key, bool *present, double *out)
{
    const char *v = rest_arg(call, key);
    *present = v != NULL;
    if (!v) return true;
    char *end;
    *out = strtod(v, &end);
    if (!*v || *end) {
        rest_fail(call, SRV_BAD_PARAMETER_TYPE, "argument %s is not a number: \"%s\"", key, v);
        return false;
    }
    return true;
}

/* Accept: image/jpeg picks JPEG; PNG otherwise (default, image/png, * / *). */
static bool wants_jpeg(RestCall *call)
{
    const char *a = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "Accept");
    return a && strcasestr(a, "image/jpeg") && !strcasestr(a, "image/png");
}

static void reply_image(RestCall *call, const char *instance, uint32_t frame, int kind, bool all_frames)
{
    SrvImageRequest req = { .kind = kind, .smooth = true, .rescale = true, .all_frames = all_frames };
    req.jpeg = kind != SRV_IMAGE_MATLAB && kind != SRV_IMAGE_NUMPY && wants_jpeg(call);
    uint64_t q = 90, w = 0, h = 0;
    if (!rest_arg_u64(call, "quality", 90, &q) || !rest_arg_u64(call, "width", 0, &w) ||
        !rest_arg_u64(call, "height", 0, &h))
        return;
    if (q < 1 || q > 100) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "quality must be between 1 and 100");
        return;
    }
    if (w > 65535 || h > 65535) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "width and height must be at most 65535");
        return;
    }
    req.quality = (int)q;
    req.width = (uint32_t)w;
    req.height = (uint32_t)h;
    const char *sm = rest_arg(call, "smooth");
    if (sm) req.smooth = strcmp(sm, "0") != 0 && strcasecmp(sm, "false") != 0;
    bool hc = false, hw = false;
    if (!arg_double(call, "window-center", &hc, &req.window_center) ||
        !arg_double(call, "window-width", &hw, &req.window_width))
        return;
    req.has_window = hc && hw;
    const char *rs = rest_arg(call, "rescale");
    if (rs) req.rescale = strcmp(rs, "0") != 0 && strcasecmp(rs, "false") != 0;
    const char *cp = rest_arg(call, "compress");
    req.compress = cp && strcmp(cp, "0") != 0 && strcasecmp(cp, "false") != 0;

    SrvError e = { 0 };
    void *body = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (!image_render(&e, call->srv, instance, frame, &req, &body, &len, &mime)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_buffer(call, 200, mime, body, len);
}

/* The transfer-syntax parameter of the Accept header ("" when none): Orthanc 1.10.1 ignores
 * Accept on /raw and answers the frame as stored; an explicit transfer-syntax (as DICOMweb
 * writes it) asks for the stored syntax ("*" or its UID) or for decoded frames (.1.2.1). */
static void accept_ts(RestCall *call, char *out, size_t size)
{
    out[0] = 0;
    const char *a = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "Accept");
    const char *p = a ? strcasestr(a, "transfer-syntax") : NULL;
    if (!p) return;
    p += 15;
    while (*p == ' ') p++;
    if (*p++ != '=') return;
    while (*p == ' ' || *p == '"') p++;
    size_t n = strcspn(p, "\"; ,");
    snprintf(out, size, "%.*s", (int)n, p);
}

/* /raw.gz: the frame in gzip format (as Orthanc). Replaces *body; false with the reply sent. */
static bool gzip_body(RestCall *call, void **body, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    uLong cap = compressBound((uLong)*len) + 32;
    unsigned char *out = malloc(cap);
    bool ok = out && deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (ok) {
        z.next_in = *body;
        z.avail_in = (uInt)*len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
        deflateEnd(&z);
    }
    free(*body);
    *body = NULL;
    if (!ok) {
        free(out);
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "cannot compress the frame");
        return false;
    }
    *body = out;
    *len = z.total_out;
    return true;
}

static int kind_of(const char *name)
{
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (!strcmp(KINDS[i].name, name)) return KINDS[i].kind;
    return -1;
}

/* GET /instances/{id}/frames/{n}/{kind} and /frames/{n}/raw */
static void h_frame_view(RestCall *call)
{
    uint32_t n;
    if (!frame_index(call, call->params[1], &n)) return;
    const char *what = call->seg[call->nseg - 1];
    if (!strcmp(what, "raw") || !strcmp(what, "raw.gz")) {
        char ts[68];
        accept_ts(call, ts, sizeof ts);
        SrvError e = { 0 };
        void *body = NULL;
        size_t len = 0;
        const char *mime = NULL;
        if (!image_frame_raw(&e, call->srv, call->params[0], n, ts, &body, &len, &mime)) {
            rest_reply_error(call, &e);
            return;
        }
        if (what[3] == '.' && !gzip_body(call, &body, &len)) return;
        rest_reply_buffer(call, 200, what[3] == '.' ? "application/gzip" : mime, body, len);
        return;
    }
    int kind = kind_of(what);
    if (kind < 0) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s", call->url);
        return;
    }
    reply_image(call, call->params[0], n, kind, false);
}

/* GET /instances/{id}/{kind}: the first frame (numpy: every frame) */
static void h_instance_view(RestCall *call)
{
    int kind = kind_of(call->seg[call->nseg - 1]);
    reply_image(call, call->params[0], 0, kind, kind == SRV_IMAGE_NUMPY);
}

/* GET /instances/{id}/frames */
static void h_frames(RestCall *call)
{
    SrvError e = { 0 };
    uint32_t n = 0;
    if (!image_frame_count(&e, call->srv, call->params[0], &n)) {
        rest_reply_error(call, &e);
        return;
    }
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(i));
    rest_reply_json(call, 200, a);
}

/* GET /instances/{id}/pdf */
static void h_pdf(RestCall *call)
{
    SrvError e = { 0 };
    void *body = NULL;
    size_t len = 0;
    if (!image_pdf(&e, call->srv, call->params[0], &body, &len)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_buffer(call, 200, "application/pdf", body, len);
}

/* GET /series/{id}/ordered-slices */
static void h_ordered_slices(RestCall *call)
{
    SrvError e = { 0 };
    cJSON *j = image_ordered_slices(&e, call->srv, call->params[0]);
    if (!j) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, j);
}

static const RestRoute routes[] = {
    { "GET", "/instances/{id}/frames", h_frames },
    { "GET", "/instances/{id}/frames/{n}/raw", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/raw.gz", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/preview", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/rendered", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/image-uint8", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/image-uint16", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/image-int16", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/matlab", h_frame_view },
    { "GET", "/instances/{id}/frames/{n}/numpy", h_frame_view },
    { "GET", "/instances/{id}/preview", h_instance_view },
    { "GET", "/instances/{id}/rendered", h_instance_view },
    { "GET", "/instances/{id}/image-uint8", h_instance_view },
    { "GET", "/instances/{id}/image-uint16", h_instance_view },
    { "GET", "/instances/{id}/image-int16", h_instance_view },
    { "GET", "/instances/{id}/matlab", h_instance_view },
    { "GET", "/instances/{id}/numpy", h_instance_view },
    { "GET", "/instances/{id}/pdf", h_pdf },
    { "GET", "/series/{id}/ordered-slices", h_ordered_slices },
};

const RestRouteTable rest_routes_images = { routes, sizeof routes / sizeof routes[0] };
