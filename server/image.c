/* image.c -- the image services of stored instances: frame count, a frame decoded and
 * rendered (preview, rendered, image-uint8/uint16/int16, matlab, numpy), the frame as stored,
 * the encapsulated PDF, and a series' slices in order.
 *
 * DESIGN: every call opens the stored file through dicom/'s image source (pixels stay on
 * disk; one frame is read and decoded), so memory is one frame plus its rendering whatever
 * the size of a multi-frame object. The semantics of each view follow Orthanc 1.10.1, except
 * where docs/compatibility.md says otherwise (RGB image-uint8/uint16, JPEG 2000 and 32-bit
 * decoding, the default window of /rendered).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

/* Error from dicom/: unsupported -> 415, missing frame -> 404, others as usual. */
static bool fail_dcm(SrvError *err, const DcmError *de)
{
    srv_error_from_dcm(err, de);
    if (de->code == DCM_ERR_UNSUPPORTED) {
        err->code = SRV_NOT_IMPLEMENTED;
        err->http_status = 415;
    } else if (de->code == DCM_ERR_MISSING) {
        err->code = SRV_INEXISTENT_ITEM;
        err->http_status = 404;
    } else if (de->code == DCM_ERR_FORMAT) {
        err->code = SRV_BAD_FILE_FORMAT;
    }
    return false;
}

/* Opens the stored file of an instance for frame access. */
static bool open_instance(SrvError *err, Srv *srv, const char *instance, DcmImageSource **src)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    *src = NULL;
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, instance, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    char path[4096];
    sto_area_path(srv->area, r.uuid, path, sizeof path);
    idx_resource_cleanup(&r);
    DcmError de = { 0 };
    if (!dcm_image_open_file(&de, path, src)) return fail_dcm(err, &de);
    return true;
}

bool image_frame_count(SrvError *err, Srv *srv, const char *instance, uint32_t *n)
{
    DcmImageSource *src = NULL;
    if (!open_instance(err, srv, instance, &src)) return false;
    DcmImageInfo info;
    DcmError de = { 0 };
    bool ok = dcm_image_info(&de, src, &info);
    dcm_image_close(src);
    if (!ok) return fail_dcm(err, &de);
    *n = info.frames;
    return true;
}

static bool little_endian_native(const char *ts)
{
    return !strcmp(ts, "1.2.840.10008.1.2.1") || !strcmp(ts, "1.2.840.10008.1.2");
}

bool image_frame_raw(SrvError *err, Srv *srv, const char *instance, uint32_t frame, const char *want_ts,
                     void **body, size_t *len, const char **mime)
{
    DcmImageSource *src = NULL;
    if (!open_instance(err, srv, instance, &src)) return false;
    DcmError de = { 0 };
    bool ok = false, decode = false;
    if (want_ts && *want_ts && strcmp(want_ts, "*") != 0) {
        DcmImageInfo info;
        if (!dcm_image_info(&de, src, &info)) {
            fail_dcm(err, &de);
            goto out;
        }
        if (little_endian_native(want_ts)) {
            /* compressed or big endian frames are decoded; little endian ones are as stored */
            decode = !little_endian_native(info.transfer_syntax);
        } else if (strcmp(want_ts, info.transfer_syntax) != 0) {
            srv_fail(err, SRV_NOT_ACCEPTABLE,
                     "frame of instance %s cannot be sent in transfer syntax %s: it is stored in %s; ask for "
                     "that one, \"*\", or 1.2.840.10008.1.2.1 (decoded)",
                     instance, want_ts, info.transfer_syntax);
            err->http_status = 406;
            goto out;
        }
    }
    if (decode) {
        DcmFrame f = { 0 };
        if (!dcm_image_frame(&de, src, frame, &f)) {
            fail_dcm(err, &de);
            goto out;
        }
        *body = f.data; /* taken */
        *len = f.len;
        *mime = "application/octet-stream";
        ok = true;
    } else {
        ok = dcm_image_frame_raw(&de, src, frame, body, len, mime);
        if (!ok) fail_dcm(err, &de);
    }
out:
    dcm_image_close(src);
    return ok;
}

bool image_pdf(SrvError *err, Srv *srv, const char *instance, void **body, size_t *len)
{
    DcmImageSource *src = NULL;
    if (!open_instance(err, srv, instance, &src)) return false;
    DcmError de = { 0 };
    bool ok = dcm_image_pdf(&de, src, body, len);
    dcm_image_close(src);
    if (!ok) {
        fail_dcm(err, &de);
        if (de.code == DCM_ERR_MISSING) err->code = SRV_BAD_REQUEST, err->http_status = 400;
    }
    return ok;
}

/* ---- MATLAB text ---- */
#define MATLAB_MAX ((size_t)1 << 31) /* a 65535 x 65535 frame prints to about 20 GB: refused */

static void txt_num(Buf *t, int64_t v) { buf_printf(t, "%lld ", (long long)v); }

/* Orthanc's MATLAB text: double([ a b ; c d ]) for gray, permute(reshape(...)) for RGB. */
static bool to_matlab(SrvError *err, const DcmFrame *f, void **body, size_t *len)
{
    Buf t;
    buf_init(&t, MATLAB_MAX);
    size_t n = (size_t)f->width * f->height;
    if (f->channels == 1) {
        buf_append(&t, "double([ ", 9);
        for (uint32_t y = 0; y < f->height; y++) {
            if (y) buf_append(&t, "; ", 2);
            for (uint32_t x = 0; x < f->width; x++) txt_num(&t, dcm_frame_sample(f, (size_t)y * f->width + x, 0));
        }
        buf_append(&t, "])", 2);
    } else {
        buf_append(&t, "double(permute(reshape([ ", 25);
        for (size_t i = 0; i < n; i++)
            for (unsigned c = 0; c < f->channels; c++) txt_num(&t, dcm_frame_sample(f, i, c));
        buf_printf(&t, "], [ 3 %u %u ]), [ 3 2 1 ]))", f->width, f->height);
    }
    /* a failed append leaves the text short: check that the closing bracket made it */
    if (!t.len || t.data[t.len - 1] != ')') {
        buf_free(&t);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "the MATLAB text of this frame is too large");
    }
    *body = buf_take(&t, len);
    return true;
}

/* 16-bit gray/RGB frame with values clamped to [lo, hi] (two's complement when lo < 0). */
static bool clamp16(SrvError *err, const DcmFrame *f, int64_t lo, int64_t hi, DcmFrame *out)
{
    size_t n = (size_t)f->width * f->height * f->channels;
    uint16_t *d = malloc(n * 2 + 1);
    if (!d) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t v = dcm_frame_sample(f, i / f->channels, i % f->channels);
        v = v < lo ? lo : v > hi ? hi : v;
        d[i] = (uint16_t)v; /* int16: two's complement bit pattern */
    }
    *out = *f;
    out->data = d;
    out->len = n * 2;
    out->bytes = 2;
    out->is_signed = lo < 0;
    return true;
}

/* ---- NumPy .npy (and .npz through libarchive) ---- */

static const char *npy_dtype(const DcmFrame *f, bool rescale)
{
    if (rescale) return "<f4";
    switch (f->bytes) {
    case 1: return f->is_signed ? "|i1" : "|u1";
    case 2: return f->is_signed ? "<i2" : "<u2";
    default: return f->is_signed ? "<i4" : "<u4";
    }
}

/* Appends frame values in the npy element type. */
static void npy_values(const DcmFrame *f, bool rescale, double slope, double icpt, uint8_t *out)
{
    size_t n = (size_t)f->width * f->height * f->channels;
    if (rescale) {
        float *o = (float *)out;
        for (size_t i = 0; i < n; i++) o[i] = (float)(dcm_frame_sample(f, i / f->channels, i % f->channels) * slope + icpt);
    } else {
        memcpy(out, f->data, n * f->bytes);
    }
}

static la_ssize_t grow_write(struct archive *a, void *u, const void *buf, size_t n)
{
    (void)a;
    return buf_append(u, buf, n) == BUF_OK ? (la_ssize_t)n : -1;
}

/* Wraps an .npy in a ZIP holding "arr_0" (numpy.load reads it as an .npz, as Orthanc's). */
static bool npz_wrap(SrvError *err, void **body, size_t *len)
{
    Buf g;
    buf_init(&g, *len + (1u << 20)); /* stored entry + headers */
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    bool ok = false;
    if (!a || !e) goto out;
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_set_options(a, "zip:compression=deflate") != ARCHIVE_OK ||
        archive_write_open(a, &g, NULL, grow_write, NULL) != ARCHIVE_OK)
        goto out;
    archive_entry_set_pathname(e, "arr_0");
    archive_entry_set_size(e, (la_int64_t)*len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, *body, *len) != (la_ssize_t)*len ||
        archive_write_close(a) != ARCHIVE_OK)
        goto out;
    ok = true;
out:
    if (e) archive_entry_free(e);
    if (a) archive_write_free(a);
    if (!ok) {
        buf_free(&g);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "cannot build the .npz");
    }
    free(*body);
    *body = buf_take(&g, len);
    return true;
}

/* The numpy answer for frames [first, first + count) (count 0: a single frame, no leading
 * frame axis). */
static bool to_numpy(SrvError *err, DcmImageSource *src, const DcmImageInfo *info, uint32_t first, uint32_t count,
                     const SrvImageRequest *req, void **body, size_t *len)
{
    uint32_t nframes = count ? count : 1;
    DcmFrame f = { 0 };
    DcmError de = { 0 };
    uint8_t *buf = NULL;
    size_t hdr = 0, per = 0, total = 0;
    for (uint32_t k = 0; k < nframes; k++) {
        if (!dcm_image_frame(&de, src, first + k, &f)) {
            free(buf);
            return fail_dcm(err, &de);
        }
        bool rescale = req->rescale && f.channels == 1;
        if (!buf) {
            char shape[96], h[256];
            if (count)
                snprintf(shape, sizeof shape, "(%u, %u, %u, %u)", count, f.height, f.width, f.channels);
            else
                snprintf(shape, sizeof shape, "(%u, %u, %u)", f.height, f.width, f.channels);
            int hl = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                              npy_dtype(&f, rescale), shape);
            size_t pad = 64 - ((size_t)10 + (size_t)hl + 1) % 64;
            if (pad == 64) pad = 0;
            hdr = 10 + (size_t)hl + pad + 1;
            per = (size_t)f.width * f.height * f.channels * (rescale ? 4 : f.bytes);
            total = hdr + per * nframes;
            buf = malloc(total);
            if (!buf) {
                dcm_frame_cleanup(&f);
                return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            }
            memcpy(buf, "\x93NUMPY\x01\x00", 8);
            uint16_t hlen = (uint16_t)(hdr - 10);
            buf[8] = (uint8_t)(hlen & 0xff);
            buf[9] = (uint8_t)(hlen >> 8);
            memcpy(buf + 10, h, (size_t)hl);
            memset(buf + 10 + hl, ' ', pad);
            buf[hdr - 1] = '\n';
        } else if ((size_t)f.width * f.height * f.channels * (rescale ? 4 : f.bytes) != per) {
            dcm_frame_cleanup(&f);
            free(buf);
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "frames of different sizes");
        }
        npy_values(&f, rescale, info->slope, info->intercept, buf + hdr + per * k);
        dcm_frame_cleanup(&f);
    }
    *body = buf;
    *len = total;
    if (req->compress) return npz_wrap(err, body, len);
    return true;
}

bool image_render(SrvError *err, Srv *srv, const char *instance, uint32_t frame, const SrvImageRequest *req,
                  void **body, size_t *len, const char **mime)
{
    DcmImageSource *src = NULL;
    DcmError de = { 0 };
    DcmImageInfo info;
    DcmFrame f = { 0 }, out = { 0 };
    bool ok = false, have_out = false;
    *body = NULL;
    *len = 0;
    if (!open_instance(err, srv, instance, &src)) return false;
    if (!dcm_image_info(&de, src, &info)) {
        fail_dcm(err, &de);
        goto out;
    }
    if (req->kind == SRV_IMAGE_NUMPY) {
        *mime = "application/octet-stream";
        ok = req->all_frames ? to_numpy(err, src, &info, 0, info.frames, req, body, len)
                             : to_numpy(err, src, &info, frame, 0, req, body, len);
        goto out;
    }
    if (!dcm_image_frame(&de, src, frame, &f)) {
        fail_dcm(err, &de);
        goto out;
    }
    if (req->kind == SRV_IMAGE_MATLAB) {
        *mime = "text/plain";
        ok = to_matlab(err, &f, body, len);
        goto out;
    }
    DcmRender r = { .slope = 1.0, .intercept = 0.0 };
    switch (req->kind) {
    case SRV_IMAGE_PREVIEW:
        r.mode = f.channels == 3 && f.bytes == 1 ? DCM_RENDER_WINDOW : DCM_RENDER_STRETCH;
        break;
    case SRV_IMAGE_RENDERED:
        r.mode = f.channels == 3 && f.bytes > 1 ? DCM_RENDER_WINDOW_FORCE : DCM_RENDER_WINDOW;
        r.slope = info.slope;
        r.intercept = info.intercept;
        if (req->has_window) {
            r.window_center = req->window_center;
            r.window_width = req->window_width;
        } else if (info.has_window && f.channels == 1) {
            r.window_center = info.window_center;
            r.window_width = info.window_width;
        }
        r.width = req->width;
        r.height = req->height;
        r.smooth = req->smooth;
        break;
    case SRV_IMAGE_UINT8:
        r.mode = DCM_RENDER_CLAMP;
        break;
    case SRV_IMAGE_UINT16:
    case SRV_IMAGE_INT16:
        if (req->jpeg) {
            srv_fail(err, SRV_NOT_ACCEPTABLE, "16-bit images are only available as PNG");
            err->http_status = 406;
            goto out;
        }
        if (req->kind == SRV_IMAGE_INT16 && f.channels != 1) {
            srv_fail(err, SRV_NOT_IMPLEMENTED, "image-int16 is for grayscale images only");
            err->http_status = 415;
            goto out;
        }
        ok = req->kind == SRV_IMAGE_UINT16 ? clamp16(err, &f, 0, 65535, &out) : clamp16(err, &f, -32768, 32767, &out);
        if (!ok) goto out;
        ok = false;
        have_out = true;
        break;
    default:
        srv_fail(err, SRV_INTERNAL, "unknown image kind %d", req->kind);
        goto out;
    }
    if (!have_out) {
        if (req->kind == SRV_IMAGE_UINT8 && f.bytes == 1 && !f.is_signed) {
            out = f; /* already 8 bits */
            f.data = NULL;
        } else if (!dcm_frame_render(&de, &f, &r, &out)) {
            fail_dcm(err, &de);
            goto out;
        }
        have_out = true;
    }
    if (req->jpeg) {
        *mime = "image/jpeg";
        ok = dcm_frame_encode_jpeg(&de, &out, req->quality, body, len);
    } else {
        *mime = "image/png";
        ok = dcm_frame_encode_png(&de, &out, body, len);
    }
    if (!ok) fail_dcm(err, &de);
out:
    if (have_out) dcm_frame_cleanup(&out);
    dcm_frame_cleanup(&f);
    dcm_image_close(src);
    return ok;
}

/* ---- /series/{id}/ordered-slices ---- */

typedef struct Slice {
    char id[IDX_ID_LEN];
    uint32_t frames;
    double pos[3];
    bool has_geom;
    double normal[3];
    long instance_number;
    bool has_number;
    double key;
} Slice;

static int parse_doubles(const char *s, double *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        double v = strtod(s, &end);
        if (end == s) return -1;
        out[n++] = v;
        s = end;
        while (*s == ' ') s++;
        if (*s == '\\') s++;
        else if (*s) return -1;
    }
    return n;
}

static int cmp_slice(const void *a, const void *b)
{
    const Slice *x = a, *y = b;
    if (x->key < y->key) return -1;
    if (x->key > y->key) return 1;
    return strcmp(x->id, y->id);
}

cJSON *image_ordered_slices(SrvError *err, Srv *srv, const char *series)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, IDX_SERIES, series, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    size_t n = r.nchildren;
    Slice *sl = calloc(n ? n : 1, sizeof *sl);
    if (!sl) {
        idx_resource_cleanup(&r);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    bool all_geom = n > 1, all_number = true;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        IdxResource ir = { 0 };
        if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, r.children[i], &ir)) continue; /* deleted meanwhile */
        Slice *s = &sl[k++];
        snprintf(s->id, sizeof s->id, "%s", ir.id);
        s->frames = 1;
        double orient[6];
        int npos = -1, nori = -1;
        for (size_t t = 0; t < ir.ntags; t++) {
            const char *v = ir.tag_values[t];
            switch (ir.tag_keys[t]) {
            case 0x00280008: { long f = strtol(v, NULL, 10); s->frames = f > 0 ? (uint32_t)f : 1; break; }
            case 0x00200032: npos = parse_doubles(v, s->pos, 3); break;
            case 0x00200037: nori = parse_doubles(v, orient, 6); break;
            case 0x00200013: {
                char *end;
                s->instance_number = strtol(v, &end, 10);
                s->has_number = *v && !*end;
                break;
            }
            }
        }
        if (npos == 3 && nori == 6) {
            s->has_geom = true;
            s->normal[0] = orient[1] * orient[5] - orient[2] * orient[4];
            s->normal[1] = orient[2] * orient[3] - orient[0] * orient[5];
            s->normal[2] = orient[0] * orient[4] - orient[1] * orient[3];
        }
        all_geom = all_geom && s->has_geom;
        all_number = all_number && s->has_number;
        idx_resource_cleanup(&ir);
    }
    idx_resource_cleanup(&r);
    n = k;
    /* Volume: every slice has a position and the same normal, and positions differ */
    bool volume = all_geom && n > 1;
    for (size_t i = 1; volume && i < n; i++)
        for (int c = 0; c < 3; c++)
            if (fabs(sl[i].normal[c] - sl[0].normal[c]) > 1e-4) volume = false;
    if (volume) {
        for (size_t i = 0; i < n; i++)
            sl[i].key = sl[i].pos[0] * sl[0].normal[0] + sl[i].pos[1] * sl[0].normal[1] + sl[i].pos[2] * sl[0].normal[2];
        for (size_t i = 1; volume && i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (fabs(sl[i].key - sl[j].key) < 1e-6) { volume = false; break; }
    }
    if (!volume) {
        if (!all_number && n > 1) {
            free(sl);
            srv_fail(err, SRV_BAD_REQUEST, "cannot order the slices: neither positions nor instance numbers");
            return NULL;
        }
        for (size_t i = 0; i < n; i++) sl[i].key = (double)sl[i].instance_number;
    }
    qsort(sl, n, sizeof *sl, cmp_slice);
    cJSON *o = cJSON_CreateObject(), *dicom = cJSON_CreateArray(), *slices = cJSON_CreateArray(),
          *shortl = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "/instances/%s/file", sl[i].id);
        cJSON_AddItemToArray(dicom, cJSON_CreateString(buf));
        for (uint32_t f = 0; f < sl[i].frames; f++) {
            snprintf(buf, sizeof buf, "/instances/%s/frames/%u", sl[i].id, f);
            cJSON_AddItemToArray(slices, cJSON_CreateString(buf));
        }
        cJSON *s = cJSON_CreateArray();
        cJSON_AddItemToArray(s, cJSON_CreateString(sl[i].id));
        cJSON_AddItemToArray(s, cJSON_CreateNumber(0));
        cJSON_AddItemToArray(s, cJSON_CreateNumber(sl[i].frames));
        cJSON_AddItemToArray(shortl, s);
    }
    cJSON_AddItemToObject(o, "Dicom", dicom);
    cJSON_AddItemToObject(o, "Slices", slices);
    cJSON_AddItemToObject(o, "SlicesShort", shortl);
    cJSON_AddStringToObject(o, "Type", volume ? "Volume" : "Sequence");
    free(sl);
    return o;
}

/* Frames of one instance for DICOMweb (/frames/{list}): the file is opened once; each frame is
 * handed to fn as stored (decode false: native bytes or the compressed fragments joined) or
 * decoded (native little-endian samples, interleaved). Frame numbers are from 0. */
bool image_frames(SrvError *err, Srv *srv, const char *instance, const uint32_t *frames, size_t n,
                  bool decode, SrvFrameFn fn, void *ctx)
{
    DcmImageSource *src = NULL;
    if (!open_instance(err, srv, instance, &src)) return false;
    bool ok = true;
    DcmImageInfo info;
    DcmError de = { 0 };
    if (!dcm_image_info(&de, src, &info)) {
        ok = fail_dcm(err, &de);
        goto out;
    }
    for (size_t i = 0; i < n && ok; i++) {
        if (frames[i] >= info.frames) {
            ok = srv_fail(err, SRV_INEXISTENT_ITEM, "instance %s has no frame %u (it has %u)", instance,
                          (unsigned)frames[i] + 1, (unsigned)info.frames);
            err->http_status = 404;
            break;
        }
        if (decode) {
            DcmFrame f = { 0 };
            if (!dcm_image_frame(&de, src, frames[i], &f)) {
                ok = fail_dcm(err, &de);
                break;
            }
            ok = fn(ctx, err, frames[i], f.data, f.len, "application/octet-stream");
            dcm_frame_cleanup(&f);
        } else {
            void *body = NULL;
            size_t len = 0;
            const char *mime = NULL;
            if (!dcm_image_frame_raw(&de, src, frames[i], &body, &len, &mime)) {
                ok = fail_dcm(err, &de);
                break;
            }
            ok = fn(ctx, err, frames[i], body, len, mime);
            free(body);
        }
    }
out:
    dcm_image_close(src);
    return ok;
}
