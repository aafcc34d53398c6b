/* h_dicomweb.c -- the DICOMweb server routes under /dicom-web/ (PS3.18; Orthanc's DICOMweb
 * plugin 1.7 is the behavioural reference): QIDO-RS searches, WADO-RS metadata, retrieval
 * (multipart/related), frames, bulk data, rendered and thumbnail images.
 * Only maps HTTP (path UIDs, query arguments, Accept, the base URL of the answers) onto
 * server/dicomweb.c, server/query.c (through it) and server/image.c. STOW-RS, WADO-URI and the
 * DICOMweb client are other files' business.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"
#include "server/dicomweb.h"

#define DW_JSON "application/dicom+json"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"

/* Content types of buffer replies live until the reply is queued, on this thread, right after
 * the handler returns (http.c). */
static _Thread_local char reply_type[160];

static const char *header(RestCall *call, const char *name)
{
    return MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, name);
}

/* false and a 404 when DicomWeb.Enable is false (as if the plugin were not loaded). */
static bool enabled(RestCall *call)
{
    if (call->srv->cfg.dicomweb.enable) return true;
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s (DicomWeb.Enable is false)", call->url);
    return false;
}

/* The base of every URL we print: scheme://host + root without its last '/'. */
static void base_url(RestCall *call, char *out, size_t size)
{
    const CfgDicomWeb *d = &call->srv->cfg.dicomweb;
    const char *proto = d->ssl ? "https" : NULL;
    if (!proto) proto = header(call, "X-Forwarded-Proto");
    if (!proto || (strcasecmp(proto, "http") && strcasecmp(proto, "https"))) proto = "http";
    const char *host = d->host[0] ? d->host : NULL;
    if (!host) host = header(call, "X-Forwarded-Host");
    if (!host) host = header(call, "Host");
    char fallback[64];
    if (!host) {
        snprintf(fallback, sizeof fallback, "localhost:%d", call->srv->cfg.http_port);
        host = fallback;
    }
    const char *root = d->public_root[0] ? d->public_root : d->root;
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/') rl--;
    /* a forwarded host may list several hops: the first is the client's */
    size_t hl = strcspn(host, ", ");
    snprintf(out, size, "%s://%.*s%.*s", proto, (int)hl, host, (int)rl, root);
}

/* ---- Accept ------------------------------------------------------------------------------ */

/* One media range of an Accept header: the type and the parameters we care about. */
typedef struct Media {
    char type[64];       /* "multipart/related", "application/dicom+json", ... */
    char part[64];       /* type="..." of a multipart */
    char ts[68];         /* transfer-syntax=... ("" when absent) */
} Media;

/* Splits the Accept header into at most cap ranges; returns the count (0 when absent). */
static size_t parse_accept(const char *accept, Media *m, size_t cap)
{
    size_t n = 0;
    if (!accept) return 0;
    const char *p = accept;
    while (*p && n < cap) {
        /* one range up to a ',' outside quotes */
        const char *e = p;
        bool q = false;
        while (*e && (q || *e != ',')) {
            if (*e == '"') q = !q;
            e++;
        }
        Media *x = &m[n];
        memset(x, 0, sizeof *x);
        const char *s = p;
        size_t tl = strcspn(s, ";,");
        if (s + tl > e) tl = (size_t)(e - s);
        while (tl && (*s == ' ' || *s == '\t')) { s++; tl--; }
        while (tl && (s[tl - 1] == ' ' || s[tl - 1] == '\t')) tl--;
        snprintf(x->type, sizeof x->type, "%.*s", (int)tl, s);
        for (const char *a = s + tl; a < e;) {
            if (*a == ';' || *a == ' ' || *a == '\t') { a++; continue; }
            const char *eq = memchr(a, '=', (size_t)(e - a));
            const char *semi = a;
            bool qq = false;
            while (semi < e && (qq || *semi != ';')) {
                if (*semi == '"') qq = !qq;
                semi++;
            }
            if (!eq || eq > semi) { a = semi; continue; }
            size_t kl = (size_t)(eq - a);
            while (kl && a[kl - 1] == ' ') kl--;
            const char *v = eq + 1;
            while (v < semi && *v == ' ') v++;
            size_t vl = (size_t)(semi - v);
            while (vl && v[vl - 1] == ' ') vl--;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') { v++; vl -= 2; }
            if (kl == 4 && !strncasecmp(a, "type", 4)) snprintf(x->part, sizeof x->part, "%.*s", (int)vl, v);
            else if (kl == 15 && !strncasecmp(a, "transfer-syntax", 15)) snprintf(x->ts, sizeof x->ts, "%.*s", (int)vl, v);
            a = semi;
        }
        n++;
        p = *e ? e + 1 : e;
    }
    return n;
}

static bool any_type(const char *t) { return !*t || !strcmp(t, "*/*") || !strcmp(t, "*"); }

/* ---- QIDO-RS ------------------------------------------------------------------------------ */

static bool qido_param(const char *key)
{
    static const char *const P[] = { "limit", "offset", "fuzzymatching", "includefield" };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++)
        if (!strcmp(P[i], key)) return true;
    return false;
}

/* A tag in a QIDO argument: a keyword ("PatientName") or 8 hex digits ("00100010"). */
static bool qido_tag(const char *s, uint32_t *tag)
{
    size_t n = strlen(s);
    if (n == 8 && strspn(s, "0123456789abcdefABCDEF") == 8) {
        *tag = (uint32_t)strtoul(s, NULL, 16);
        return true;
    }
    if (strchr(s, '.')) return false; /* sequence paths are not matched */
    return srv_tag_parse(s, tag);
}

static void h_qido(RestCall *call)
{
    if (!enabled(call)) return;
    /* level from the last segment; UIDs from the path */
    const char *last = call->seg[call->nseg - 1];
    DwQuery q = { 0 };
    q.level = !strcmp(last, "studies") ? SRV_STUDY : !strcmp(last, "series") ? SRV_SERIES : SRV_INSTANCE;
    if (call->nparams >= 1) q.study_uid = call->params[0];
    if (call->nparams >= 2) q.series_uid = call->params[1];
    DwMatch match[REST_MAX_ARGS];
    uint32_t include[256];
    size_t nmatch = 0, ninclude = 0;
    for (size_t i = 0; i < call->nargs; i++) {
        const char *k = call->args[i].key, *v = call->args[i].value;
        if (!strcmp(k, "includefield")) {
            /* comma-separated, repeatable; "all" */
            char *copy = strdup(v);
            if (!copy) { rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory"); return; }
            char *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ') t++;
                if (!strcmp(t, "all")) { q.include_all = true; continue; }
                uint32_t tag;
                if (!qido_tag(t, &tag)) {
                    rest_fail(call, SRV_BAD_REQUEST, "includefield: unknown attribute \"%s\"", t);
                    free(copy);
                    return;
                }
                if (ninclude < sizeof include / sizeof include[0]) include[ninclude++] = tag;
            }
            free(copy);
        } else if (!strcmp(k, "fuzzymatching")) {
            q.fuzzy = !strcmp(v, "true");
        } else if (qido_param(k)) {
            /* limit/offset below */
        } else {
            uint32_t tag;
            if (!qido_tag(k, &tag)) {
                rest_fail(call, SRV_BAD_REQUEST, "unknown query parameter or attribute \"%s\"", k);
                return;
            }
            match[nmatch].tag = tag;
            match[nmatch].value = v;
            nmatch++;
        }
    }
    if (!rest_arg_u64(call, "limit", 0, &q.limit) || !rest_arg_u64(call, "offset", 0, &q.offset)) return;
    q.match = match;
    q.nmatch = nmatch;
    q.include = include;
    q.ninclude = ninclude;
    char base[512];
    base_url(call, base, sizeof base);
    q.base = base;
    Buf out;
    buf_init(&out, REST_MAX_REPLY);
    SrvError e = { 0 };
    if (!dw_qido(&e, call->srv, &q, &out)) {
        buf_free(&out);
        rest_reply_error(call, &e);
        return;
    }
    size_t len = 0;
    char *body = buf_take(&out, &len);
    rest_reply_buffer(call, 200, DW_JSON, body, len);
}

/* ---- resources from the path -------------------------------------------------------------- */

/* The level named by the path (the deepest UID given) and its ID; false with the reply set. */
static bool path_resource(RestCall *call, size_t nuids, int *level, char id[SRV_ID_LEN])
{
    static const int L[] = { SRV_STUDY, SRV_SERIES, SRV_INSTANCE };
    *level = L[nuids - 1];
    SrvError e = { 0 };
    if (!dw_resolve(&e, call->srv, *level, call->params[0], nuids >= 2 ? call->params[1] : NULL,
                    nuids >= 3 ? call->params[2] : NULL, id)) {
        rest_reply_error(call, &e);
        return false;
    }
    return true;
}

/* Number of UIDs in the path before the segment `what` (metadata, rendered, ...). */
static size_t uids_before(RestCall *call)
{
    /* /dicom-web/studies/S[/series/X[/instances/I]]/... */
    size_t n = 0;
    for (size_t i = 1; i + 1 < call->nseg; i += 2) {
        if (!strcmp(call->seg[i], "studies") || !strcmp(call->seg[i], "series") ||
            !strcmp(call->seg[i], "instances"))
            n++;
        else
            break;
    }
    return n > 3 ? 3 : n;
}

/* ---- WADO-RS metadata ------------------------------------------------------------------------ */

typedef struct StreamReply {
    DwStream *s;
    char type[160];
} StreamReply;

static ssize_t stream_read(void *cls, char *buf, size_t max)
{
    return dw_stream_read(((StreamReply *)cls)->s, buf, max);
}

static void stream_free(void *cls)
{
    StreamReply *r = cls;
    dw_stream_free(r->s);
    free(r);
}

static void reply_stream(RestCall *call, DwStream *s, const char *type)
{
    StreamReply *r = calloc(1, sizeof *r);
    if (!r) {
        dw_stream_free(s);
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    r->s = s;
    snprintf(r->type, sizeof r->type, "%s", type);
    rest_reply_stream(call, r->type, stream_read, stream_free, r);
}

static void h_metadata(RestCall *call)
{
    if (!enabled(call)) return;
    int level;
    char id[SRV_ID_LEN];
    if (!path_resource(call, uids_before(call), &level, id)) return;
    char base[512];
    base_url(call, base, sizeof base);
    SrvError e = { 0 };
    DwStream *s = dw_metadata_open(&e, call->srv, level, id, base);
    if (!s) {
        rest_reply_error(call, &e);
        return;
    }
    reply_stream(call, s, DW_JSON);
}

/* ---- WADO-RS retrieve ----------------------------------------------------------------------- */

static void not_acceptable(RestCall *call, const char *what)
{
    SrvError e = { 0 };
    srv_fail(&e, SRV_NOT_ACCEPTABLE, "%s", what);
    e.http_status = 406;
    rest_reply_error(call, &e);
}

static void h_retrieve(RestCall *call)
{
    if (!enabled(call)) return;
    Media m[16];
    size_t nm = parse_accept(header(call, "Accept"), m, 16);
    const char *ts = TS_EXPLICIT_LE; /* PS3.18 8.7.3.5.2: the default of application/dicom */
    bool ok = nm == 0;
    for (size_t i = 0; i < nm && !ok; i++) {
        if (any_type(m[i].type)) { ok = true; break; }
        if (!strcasecmp(m[i].type, "multipart/related") &&
            (!m[i].part[0] || !strcasecmp(m[i].part, "application/dicom"))) {
            if (m[i].ts[0] && strcmp(m[i].ts, "*") != 0 && !srv_transcode_supported(m[i].ts)) continue;
            ts = m[i].ts[0] ? m[i].ts : TS_EXPLICIT_LE;
            ok = true;
        }
    }
    if (!ok) {
        not_acceptable(call, "only multipart/related; type=\"application/dicom\" with a transfer syntax "
                             "this server writes can be returned");
        return;
    }
    int level;
    char id[SRV_ID_LEN];
    if (!path_resource(call, uids_before(call), &level, id)) return;
    char boundary[72];
    dw_boundary(boundary);
    SrvError e = { 0 };
    DwStream *s = dw_retrieve_open(&e, call->srv, level, id, ts, boundary);
    if (!s) {
        rest_reply_error(call, &e);
        return;
    }
    char type[160];
    snprintf(type, sizeof type, "multipart/related; type=\"application/dicom\"; boundary=%s", boundary);
    reply_stream(call, s, type);
}

/* ---- frames ----------------------------------------------------------------------------------- */

typedef struct FramesOut {
    Buf body;
    const char *boundary;
    const char *ts;     /* transfer syntax of the parts */
    bool decoded;
} FramesOut;

static bool frame_part(void *ctx, SrvError *err, uint32_t frame, const void *data, size_t len, const char *mime)
{
    (void)frame;
    FramesOut *o = ctx;
    const char *type = o->decoded || !strcmp(mime, "application/octet-stream") ? "application/octet-stream" : mime;
    int rc = buf_printf(&o->body, "--%s\r\nContent-Type: %s; transfer-syntax=%s\r\nContent-Length: %zu\r\n"
                        "MIME-Version: 1.0\r\n\r\n", o->boundary, type, o->ts, len);
    if (rc == BUF_OK) rc = buf_append(&o->body, data, len);
    if (rc == BUF_OK) rc = buf_append(&o->body, "\r\n", 2);
    if (rc != BUF_OK) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "frames do not fit in memory");
    return true;
}

/* "1,3,5" (1-based) -> 0-based numbers; false and a 400 when malformed. */
static bool frame_list(RestCall *call, const char *s, uint32_t *out, size_t cap, size_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > UINT32_MAX || (*end && *end != ',') || *n == cap) {
            rest_fail(call, SRV_BAD_REQUEST, "bad frame list \"%s\" (frames are numbered from 1)", s);
            return false;
        }
        out[(*n)++] = (uint32_t)(v - 1);
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        rest_fail(call, SRV_BAD_REQUEST, "empty frame list");
        return false;
    }
    return true;
}

/* The transfer syntax a compressed frame's MIME type stands for, checked against the stored
 * one ("" when the stored syntax is native). */
static void h_frames(RestCall *call)
{
    if (!enabled(call)) return;
    uint32_t frames[256];
    size_t nframes = 0;
    if (!frame_list(call, call->params[3], frames, 256, &nframes)) return;
    int level;
    char id[SRV_ID_LEN];
    if (!path_resource(call, 3, &level, id)) return;
    SrvError e = { 0 };
    char stored[68];
    if (!dw_instance_syntax(&e, call->srv, id, stored)) {
        rest_reply_error(call, &e);
        return;
    }
    bool stored_native = !strcmp(stored, "1.2.840.10008.1.2") || !strcmp(stored, "1.2.840.10008.1.2.1") ||
                         !strcmp(stored, "1.2.840.10008.1.2.2") || !strcmp(stored, "1.2.840.10008.1.2.1.99");
    Media m[16];
    size_t nm = parse_accept(header(call, "Accept"), m, 16);
    /* default: application/octet-stream, uncompressed (PS3.18 8.7.3.5.3) */
    bool decode = !stored_native, ok = nm == 0;
    const char *ts = TS_EXPLICIT_LE;
    for (size_t i = 0; i < nm && !ok; i++) {
        const char *part = m[i].part;
        if (any_type(m[i].type)) { ok = true; break; }
        if (strcasecmp(m[i].type, "multipart/related")) continue;
        if (!part[0] || !strcasecmp(part, "application/octet-stream")) {
            if (!strcmp(m[i].ts, "*")) { decode = false; ts = stored_native ? TS_EXPLICIT_LE : stored; ok = true; }
            else if (!m[i].ts[0] || !strcmp(m[i].ts, TS_EXPLICIT_LE)) { decode = !stored_native; ts = TS_EXPLICIT_LE; ok = true; }
            else if (!strcmp(m[i].ts, stored)) { decode = false; ts = stored; ok = true; }
        } else if (!stored_native && (!m[i].ts[0] || !strcmp(m[i].ts, "*") || !strcmp(m[i].ts, stored))) {
            /* image/jpeg, image/jls, image/jp2...: the stored bitstream when its type fits */
            const char *want = part;
            bool fits = (!strcasecmp(want, "image/jpeg") && strstr(stored, "1.2.840.10008.1.2.4.5") == stored) ||
                        (!strcasecmp(want, "image/jpeg") && strstr(stored, "1.2.840.10008.1.2.4.7") == stored) ||
                        (!strcasecmp(want, "image/jls") && (!strcmp(stored, "1.2.840.10008.1.2.4.80") || !strcmp(stored, "1.2.840.10008.1.2.4.81"))) ||
                        ((!strcasecmp(want, "image/jp2") || !strcasecmp(want, "image/jpx")) && strstr(stored, "1.2.840.10008.1.2.4.9") == stored) ||
                        (!strcasecmp(want, "image/dicom-rle") && !strcmp(stored, "1.2.840.10008.1.2.5"));
            if (fits) { decode = false; ts = stored; ok = true; }
        }
    }
    if (!ok) {
        not_acceptable(call, "the frames cannot be returned in any of the accepted media types");
        return;
    }
    char boundary[72];
    dw_boundary(boundary);
    FramesOut o = { .boundary = boundary, .ts = ts, .decoded = decode };
    buf_init(&o.body, REST_MAX_REPLY);
    int fast = stored_native ? dw_frames_native(&e, call->srv, id, frames, nframes, frame_part, &o) : 0;
    if (fast < 0 || (fast == 0 && !image_frames(&e, call->srv, id, frames, nframes, decode, frame_part, &o))) {
        buf_free(&o.body);
        rest_reply_error(call, &e);
        return;
    }
    if (buf_printf(&o.body, "--%s--\r\n", boundary) != BUF_OK) {
        buf_free(&o.body);
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    snprintf(reply_type, sizeof reply_type, "multipart/related; type=\"application/octet-stream\"; boundary=%s",
             boundary);
    size_t len = 0;
    char *body = buf_take(&o.body, &len);
    rest_reply_buffer(call, 200, reply_type, body, len);
}

/* ---- bulk data --------------------------------------------------------------------------------- */

static void h_bulk(RestCall *call)
{
    if (!enabled(call)) return;
    int level;
    char id[SRV_ID_LEN];
    if (!path_resource(call, 3, &level, id)) return;
    /* segments after "bulk": tags (GGGGEEEE) and item numbers */
    size_t at = 0;
    for (size_t i = 0; i < call->nseg; i++)
        if (!strcmp(call->seg[i], "bulk") || !strcmp(call->seg[i], "bulkdata")) at = i + 1;
    const char *path[REST_MAX_SEGMENTS];
    size_t npath = 0;
    for (size_t i = at; i < call->nseg; i++) path[npath++] = call->seg[i];
    SrvError e = { 0 };
    SrvContent c = { 0 };
    if (!srv_instance_content(&e, call->srv, id, path, npath, &c)) {
        rest_reply_error(call, &e);
        return;
    }
    /* Native PixelData is one item "0" in /content (as Orthanc); its BulkDataURI names the
     * element itself: serve that item's bytes. */
    if (c.list && npath == 1 && !strcasecmp(path[0], "7fe00010") && npath < REST_MAX_SEGMENTS &&
        cJSON_GetArraySize(c.list) == 1 && cJSON_IsString(cJSON_GetArrayItem(c.list, 0)) &&
        !strcmp(cJSON_GetArrayItem(c.list, 0)->valuestring, "0")) {
        srv_content_cleanup(&c);
        path[npath++] = "0";
        if (!srv_instance_content(&e, call->srv, id, path, npath, &c)) {
            rest_reply_error(call, &e);
            return;
        }
    }
    if (c.list) {
        srv_content_cleanup(&c);
        rest_fail(call, SRV_BAD_REQUEST, "%s is not a value", call->url);
        return;
    }
    char boundary[72];
    dw_boundary(boundary);
    Buf b;
    buf_init(&b, REST_MAX_REPLY);
    int rc = buf_printf(&b, "--%s\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n"
                        "MIME-Version: 1.0\r\n\r\n", boundary, c.len);
    if (rc == BUF_OK && c.len) rc = buf_append(&b, c.data, c.len);
    if (rc == BUF_OK) rc = buf_printf(&b, "\r\n--%s--\r\n", boundary);
    srv_content_cleanup(&c);
    if (rc != BUF_OK) {
        buf_free(&b);
        rest_fail_buf(call, rc, "bulk data");
        return;
    }
    snprintf(reply_type, sizeof reply_type, "multipart/related; type=\"application/octet-stream\"; boundary=%s",
             boundary);
    size_t len = 0;
    char *body = buf_take(&b, &len);
    rest_reply_buffer(call, 200, reply_type, body, len);
}

/* ---- rendered / thumbnail ---------------------------------------------------------------------- */

static void h_rendered(RestCall *call)
{
    if (!enabled(call)) return;
    bool thumb = !strcmp(call->seg[call->nseg - 1], "thumbnail");
    bool on_frame = call->nseg >= 2 && call->nparams == 4;
    uint32_t frame = 0;
    if (on_frame) {
        uint32_t fl[1];
        size_t n = 0;
        if (!frame_list(call, call->params[3], fl, 1, &n)) return;
        frame = fl[0];
    }
    size_t nuids = on_frame ? 3 : uids_before(call);
    int level;
    char id[SRV_ID_LEN];
    if (!path_resource(call, nuids, &level, id)) return;
    SrvError e = { 0 };
    char inst[SRV_ID_LEN];
    if (!dw_representative_instance(&e, call->srv, level, id, inst)) {
        rest_reply_error(call, &e);
        return;
    }
    /* JPEG unless PNG is preferred (PS3.18: image/jpeg is the default rendered type) */
    const char *accept = header(call, "Accept");
    bool png = accept && strcasestr(accept, "image/png") &&
               (!strcasestr(accept, "image/jpeg") || strcasestr(accept, "image/png") < strcasestr(accept, "image/jpeg"));
    if (accept && !png && !strcasestr(accept, "image/jpeg") && !strstr(accept, "*/*") && !strstr(accept, "image/*")) {
        not_acceptable(call, "rendered images are image/jpeg or image/png");
        return;
    }
    SrvImageRequest req = { .kind = SRV_IMAGE_RENDERED, .jpeg = !png, .quality = 90, .smooth = true };
    uint64_t q = 90;
    if (!rest_arg_u64(call, "quality", 90, &q)) return;
    if (q < 1 || q > 100) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "quality must be between 1 and 100");
        return;
    }
    req.quality = (int)q;
    const char *vp = rest_arg(call, "viewport");
    if (vp) {
        unsigned w = 0, h = 0;
        if (sscanf(vp, "%u,%u", &w, &h) != 2 || w == 0 || h == 0 || w > 65535 || h > 65535) {
            rest_fail(call, SRV_BAD_REQUEST, "viewport must be width,height");
            return;
        }
        req.width = w;
        req.height = h;
    } else if (thumb) {
        req.width = req.height = 128;
    }
    const char *win = rest_arg(call, "window");
    if (win) {
        double c, w;
        if (sscanf(win, "%lf,%lf", &c, &w) != 2) {
            rest_fail(call, SRV_BAD_REQUEST, "window must be center,width[,function]");
            return;
        }
        req.has_window = true;
        req.window_center = c;
        req.window_width = w;
    }
    void *body = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (!image_render(&e, call->srv, inst, frame, &req, &body, &len, &mime)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_buffer(call, 200, mime, body, len);
}

/* DicomWeb.Root other than "/dicom-web/": a path under it is routed as if it were under
 * /dicom-web/ (the route table's spelling), and /dicom-web/ itself is then unknown. */
void rest_dicomweb_root(RestCall *call)
{
    const char *root = call->srv->cfg.dicomweb.root;
    if (!root || !strcmp(root, "/dicom-web/")) return;
    char segs[256];
    snprintf(segs, sizeof segs, "%s", root);
    char *save = NULL;
    size_t k = 0;
    bool under = true;
    for (char *p = strtok_r(segs, "/", &save); p; p = strtok_r(NULL, "/", &save), k++)
        if (k >= call->nseg || strcmp(p, call->seg[k]) != 0) under = false;
    if (k == 0) return;
    if (under) {
        call->seg[0] = (char *)"dicom-web";
        for (size_t i = 1; i + k - 1 < call->nseg; i++) call->seg[i] = call->seg[i + k - 1];
        call->nseg -= k - 1;
    } else if (call->nseg > 0 && !strcmp(call->seg[0], "dicom-web")) {
        call->seg[0] = (char *)"dicom-web-is-not-the-root";
    }
}

static const RestRoute routes[] = {
    { "GET", "/dicom-web/studies", h_qido },
    { "GET", "/dicom-web/series", h_qido },
    { "GET", "/dicom-web/instances", h_qido },
    { "GET", "/dicom-web/studies/{s}/series", h_qido },
    { "GET", "/dicom-web/studies/{s}/instances", h_qido },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances", h_qido },
    { "GET", "/dicom-web/studies/{s}", h_retrieve },
    { "GET", "/dicom-web/studies/{s}/series/{x}", h_retrieve },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}", h_retrieve },
    { "GET", "/dicom-web/studies/{s}/metadata", h_metadata },
    { "GET", "/dicom-web/studies/{s}/series/{x}/metadata", h_metadata },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/metadata", h_metadata },
    { "GET", "/dicom-web/studies/{s}/rendered", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/rendered", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/rendered", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/frames/{f}/rendered", h_rendered },
    { "GET", "/dicom-web/studies/{s}/thumbnail", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/thumbnail", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/thumbnail", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/frames/{f}/thumbnail", h_rendered },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/frames/{f}", h_frames },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/bulk/*", h_bulk },
    { "GET", "/dicom-web/studies/{s}/series/{x}/instances/{i}/bulkdata/*", h_bulk },
};

const RestRouteTable rest_routes_dicomweb = { routes, sizeof routes / sizeof routes[0] };
