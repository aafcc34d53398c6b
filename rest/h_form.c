/* h_form.c -- POST /instances with a multipart/form-data body: what a browser sends for an
 * <input type="file" multiple> form (Orthanc Explorer's uploader, plain HTML forms).
 *
 * DESIGN: as Orthanc 1.10.1, each part is handled as if it had been POSTed alone to
 * /instances (its bytes stored through the one ingest path, whatever the part's name or
 * type), and the answer is an empty 200; the first part that cannot be stored ends the request
 * with that error (the parts before it stay stored, as Orthanc's). The body has been received
 * whole by http.c (held, or spooled past SRV_SPOOL_THRESHOLD); it is read back with
 * rest_body_read() in 64 KB pieces and fed to the one multipart parser (server/multipart.c).
 * A part's bytes go to memory up to SRV_SPOOL_THRESHOLD and past it to a spool file, which
 * ingest_spool() adopts (a rename): memory stays bounded whatever the part sizes. Limits:
 * FORM_MAX_PARTS parts, 16 KB of headers per part, the body itself by MaximumUploadSize.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "rest/rest_int.h"
#include "server/multipart.h"

#define FORM_MAX_PARTS 10000
#define FORM_READ (64 * 1024)

typedef struct Form {
    Srv *srv;
    const IngestOrigin *origin;
    Buf mem;            /* the current part while it is small */
    SrvSpool spool;     /* the current part once it is large (fd -1: none) */
    bool spooled;
    size_t stored;      /* parts stored */
} Form;

static void part_reset(Form *f)
{
    buf_free(&f->mem);
    buf_init(&f->mem, SRV_SPOOL_THRESHOLD);
    if (f->spooled) srv_spool_discard(&f->spool);
    f->spooled = false;
}

static bool part_begin(void *cls, SrvError *err, size_t index, const MpartHeader *h, size_t n)
{
    (void)err; (void)index; (void)h; (void)n;
    part_reset(cls);
    return true;
}

static bool part_data(void *cls, SrvError *err, const char *data, size_t len)
{
    Form *f = cls;
    if (!f->spooled && f->mem.len + len <= SRV_SPOOL_THRESHOLD) {
        int rc = buf_append(&f->mem, data, len);
        if (rc) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory for a form part");
        return true;
    }
    if (!f->spooled) {
        if (!srv_spool_open(err, f->srv, &f->spool)) return false;
        f->spooled = true;
        if (f->mem.len && !srv_spool_write(err, &f->spool, f->mem.data, f->mem.len)) return false;
        buf_free(&f->mem);
    }
    return srv_spool_write(err, &f->spool, data, len);
}

static bool part_end(void *cls, SrvError *err)
{
    Form *f = cls;
    IngestResult res;
    bool ok = f->spooled ? ingest_spool(err, f->srv, &f->spool, f->origin, &res)
                         : ingest_buffer(err, f->srv, f->mem.data ? f->mem.data : "", f->mem.len,
                                         f->origin, &res);
    if (!ok) return false;
    f->stored++;
    SRV_LOG_INFO("http", "POST /instances (form part %zu): %s %s", f->stored, res.ids[SRV_INSTANCE],
                 res.already_stored ? "AlreadyStored" : "Success");
    part_reset(f);
    return true;
}

bool rest_upload_form(RestCall *call, const IngestOrigin *origin)
{
    const char *ct = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char media[32];
    if (!ct || !mpart_media_type(ct, media, sizeof media) || strcmp(media, "multipart/form-data"))
        return false;
    SrvError err = { 0 };
    Form f = { .srv = call->srv, .origin = origin };
    buf_init(&f.mem, SRV_SPOOL_THRESHOLD);
    MpartLimits lim = { .max_parts = FORM_MAX_PARTS };
    MpartCallbacks cb = { part_begin, part_data, part_end };
    MpartParser *mp = mpart_create(&err, ct, &lim, &cb, &f);
    char *chunk = mp ? malloc(FORM_READ) : NULL;
    bool ok = chunk != NULL;
    if (mp && !chunk) srv_fail(&err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (uint64_t off = 0; ok;) {
        ssize_t n = rest_body_read(call, off, chunk, FORM_READ);
        if (n < 0) { ok = srv_fail(&err, SRV_CANNOT_WRITE_FILE, "cannot read the request body back"); break; }
        if (n == 0) break;
        ok = mpart_feed(&err, mp, chunk, (size_t)n);
        off += (uint64_t)n;
    }
    if (ok) ok = mpart_finish(&err, mp);
    free(chunk);
    mpart_destroy(mp);
    part_reset(&f);
    buf_free(&f.mem);
    if (!ok) {
        if (f.stored) SRV_LOG_WARN("http", "POST /instances (form): %zu part(s) stored before the failure", f.stored);
        rest_reply_error(call, &err);
        return true;
    }
    rest_reply_buffer(call, 200, NULL, NULL, 0); /* Orthanc: an empty 200 */
    return true;
}
