/* h_stow.c -- STOW-RS (PS3.18 10.5): POST /dicom-web/studies[/{study}] with a
 * multipart/related; type="application/dicom" body, each part one DICOM file, stored through
 * the one ingest path (ingest_buffer).
 *
 * DESIGN: the body is streamed (RestRoute.body): the multipart parser (server/multipart.c) runs
 * once, on each chunk as it arrives, and each part's bytes are written once, straight into a
 * spool file of its own in the storage area (srv_spool_open: StorageDirectory/spool/, the
 * stored files' file system; a crash leaves them to the start-up sweep), so memory does not
 * grow with the request. Only once the whole body has been read and found well formed are the
 * parts ingested, one at a time, through ingest_spool: the header is parsed from a read-only
 * mapping and the spool file becomes the stored file by a rename (fsync'ed first when
 * SyncStorageArea, as every stored file): the bytes are never copied again. A malformed or
 * hostile body (no boundary, a part that never ends, nested multiparts, more than
 * STOW_MAX_PARTS parts, oversized part headers) gets a 400, its spool files are removed and
 * nothing is stored. A finished part keeps its descriptor while fewer than STOW_OPEN_FDS are
 * open (later parts are reopened when ingested).
 * Durability (SyncStorageArea true): each part's writeback starts as soon as the part is
 * complete (while the next ones arrive), and once the body is whole every part is fsync'ed,
 * all of them, before the first one is parsed or renamed (stow_sync_parts): the first fsync
 * commits the file system's journal for the whole batch and the others find nothing left to
 * commit, where one fsync inside each ingest paid a journal commit per instance (reading the
 * mapping dirtied the next file's atime in between). Every stored file is still fsync'ed
 * before its rename and its index commit, as C-STORE's and POST /instances' are, so a 200
 * promises exactly what it did.
 * The answer is PS3.18's (application/dicom+json): RetrieveURL of the study (when the request
 * names one, or all instances are of one study), ReferencedSOPSequence (class, instance,
 * RetrieveURL) of the stored and already stored instances, FailedSOPSequence (class, instance,
 * FailureReason) of the others. Status as the standard says: 200 all stored, 202 some stored
 * and some failed, 409 none stored (each part failed: not DICOM, another study than the URL's,
 * storage full, ...), 400 malformed body, 415 not multipart/related of application/dicom.
 * FailureReason: 0xC000 cannot understand (not DICOM, or a part that is not application/dicom),
 * 0x0110 processing failure (the URL's study differs, as Orthanc's plugin), 0xA700 out of
 * resources (storage full or quota).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "rest/rest_int.h"
#include "server/multipart.h"

#define STOW_MAX_PARTS 5000           /* per request: send larger studies in several */
#define STOW_MAX_PART_HEADERS (16 * 1024)
#define STOW_OPEN_FDS 64              /* finished parts that keep their descriptor open */

#define REASON_PROCESSING 0x0110
#define REASON_OUT_OF_RESOURCES 0xA700
#define REASON_CANNOT_UNDERSTAND 0xC000

typedef struct StowPart {
    char *path;         /* its spool file (malloc'd), NULL once ingested, removed or refused */
    uint64_t len;
    int fd;             /* its descriptor while open (STOW_OPEN_FDS), else -1 */
    bool synced;        /* fsync'ed by stow_sync_parts */
    int refused;        /* FailureReason decided before ingest (a part that is not DICOM) */
} StowPart;

typedef struct Stow {
    Srv *srv;
    MpartParser *mp;
    SrvSpool cur;       /* the part being received (fd -1 between parts) */
    StowPart *parts;
    size_t nparts, cap;
    size_t nopen;       /* finished parts whose fd is still open */
    const char *study;  /* the URL's study (call->params), NULL for /studies */
} Stow;

static void stow_free(void *p)
{
    Stow *st = p;
    if (!st) return;
    mpart_destroy(st->mp);
    srv_spool_discard(&st->cur);
    for (size_t i = 0; i < st->nparts; i++) {
        if (st->parts[i].path && unlink(st->parts[i].path) != 0 && errno != ENOENT)
            SRV_LOG_WARN("http", "cannot remove %s: %s", st->parts[i].path, strerror(errno));
        if (st->parts[i].fd >= 0) close(st->parts[i].fd);
        free(st->parts[i].path);
    }
    free(st->parts);
    free(st);
}

static bool part_begin(void *cls, SrvError *err, size_t index, const MpartHeader *h, size_t n)
{
    Stow *st = cls;
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Content-Type")) continue;
        char type[128];
        if (!mpart_media_type(h[i].value, type, sizeof type)) type[0] = '\0';
        if (!strncmp(type, "multipart/", 10))
            return srv_fail(err, SRV_BAD_REQUEST, "part %zu is itself a multipart body (%s): nested "
                            "multipart bodies are not accepted", index, type);
        if (strcmp(type, "application/dicom") != 0) refused = REASON_CANNOT_UNDERSTAND;
    }
    if (st->nparts == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        StowPart *np = realloc(st->parts, cap * sizeof *np);
        if (!np) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        st->parts = np;
        st->cap = cap;
    }
    st->parts[st->nparts++] = (StowPart){ .refused = refused, .fd = -1 };
    if (refused) return true; /* its bytes are not kept */
    if (!srv_spool_open(err, st->srv, &st->cur)) return false;
    char *path = strdup(st->cur.path);
    if (!path) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    st->parts[st->nparts - 1].path = path; /* removed by stow_free unless ingested */
    return true;
}

static bool part_data(void *cls, SrvError *err, const char *data, size_t len)
{
    Stow *st = cls;
    if (st->parts[st->nparts - 1].refused) return true; /* not kept */
    return srv_spool_write(err, &st->cur, data, len);
}

static bool part_end(void *cls, SrvError *err)
{
    (void)err;
    Stow *st = cls;
    StowPart *p = &st->parts[st->nparts - 1];
    if (p->refused) return true;
    p->len = st->cur.len;
    srv_spool_flush(st->srv, st->cur.fd, false);
    if (st->nopen < STOW_OPEN_FDS) { /* the part keeps it */
        p->fd = st->cur.fd;
        st->nopen++;
    } else {
        close(st->cur.fd); /* the file stays: the part's path owns it now */
    }
    st->cur.fd = -1;
    st->cur.path[0] = '\0';
    return true;
}

/* The body, as it arrives (RestRoute.body). */
static bool stow_body(RestCall *call, const char *data, size_t len)
{
    SrvError err = { 0 };
    Stow *st = call->body_state;
    if (!data) { /* before the body: the Content-Type decides */
        if (!call->srv->cfg.dicomweb.enable) { /* as if the plugin were not loaded */
            rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s (DicomWeb.Enable is false)", call->url);
            return false;
        }
        const char *ct = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        char media[64], type[64];
        if (!ct || !mpart_media_type(ct, media, sizeof media) || strcmp(media, "multipart/related")) {
            SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 415 };
            snprintf(e.message, sizeof e.message, "STOW-RS takes multipart/related; "
                     "type=\"application/dicom\", not %.100s", ct ? ct : "a body without Content-Type");
            rest_reply_error(call, &e);
            return false;
        }
        if (mpart_param(ct, "type", type, sizeof type) && strcasecmp(type, "application/dicom")) {
            SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 415 };
            snprintf(e.message, sizeof e.message, "STOW-RS here takes parts of type application/dicom, "
                     "not %.60s", type);
            rest_reply_error(call, &e);
            return false;
        }
        st = calloc(1, sizeof *st);
        if (!st) { rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory"); return false; }
        st->cur.fd = -1;
        st->srv = call->srv;
        st->study = call->nparams ? call->params[0] : NULL;
        call->body_state = st;
        call->body_state_free = stow_free;
        MpartLimits lim = { .max_parts = STOW_MAX_PARTS, .max_header_bytes = STOW_MAX_PART_HEADERS };
        MpartCallbacks cb = { part_begin, part_data, part_end };
        st->mp = mpart_create(&err, ct, &lim, &cb, st);
        if (!st->mp) { rest_reply_error(call, &err); return false; }
        return true;
    }
    if (!mpart_feed(&err, st->mp, data, len)) {
        rest_reply_error(call, &err);
        return false;
    }
    return true;
}

/* "http://host:port/dicom-web/" as the client sees us: DicomWeb's Ssl and Host, else
 * X-Forwarded-Proto/Host, else the request's Host; PublicRoot, else Root (as h_dicomweb.c). */
static void base_url(RestCall *call, char *out, size_t size)
{
    const CfgDicomWeb *d = &call->srv->cfg.dicomweb;
    const char *proto = d->ssl ? "https" : MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
    if (!proto || (strcasecmp(proto, "http") && strcasecmp(proto, "https")))
        proto = call->srv->cfg.ssl_enabled ? "https" : "http";
    const char *host = d->host && d->host[0] ? d->host : NULL;
    if (!host) host = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "X-Forwarded-Host");
    if (!host) host = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    char fallback[32];
    if (!host || !*host || strpbrk(host, "/\\\"<> ")) {
        snprintf(fallback, sizeof fallback, "localhost:%d", call->srv->cfg.http_port);
        host = fallback;
    }
    const char *root = d->public_root && d->public_root[0] ? d->public_root : d->root;
    if (!root || !*root) root = "/dicom-web/";
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/') rl--;
    size_t hl = strcspn(host, ", "); /* a forwarded host may list several hops */
    snprintf(out, size, "%s://%.*s%.*s/", proto, (int)hl, host, (int)rl, root);
}

static void add_str(cJSON *o, const char *tag, const char *vr, const char *value)
{
    cJSON *e = cJSON_AddObjectToObject(o, tag);
    if (!e) return;
    cJSON_AddStringToObject(e, "vr", vr);
    if (value && *value) {
        cJSON *a = cJSON_AddArrayToObject(e, "Value");
        if (a) cJSON_AddItemToArray(a, cJSON_CreateString(value));
    }
}

static int failure_reason(const SrvError *e, const IngestResult *res, const char *study)
{
    if (e->code == SRV_FULL_STORAGE) return REASON_OUT_OF_RESOURCES;
    if (study && res->study_uid[0] && strcmp(study, res->study_uid)) return REASON_PROCESSING;
    if (!res->sop_uid[0]) return REASON_CANNOT_UNDERSTAND; /* not even parsed */
    return REASON_PROCESSING;
}

/* SyncStorageArea: every part fsync'ed before any is ingested (see the top). A part whose
 * fsync fails is left unsynced: its ingest fsyncs again and reports the failure. */
static void stow_sync_parts(Stow *st)
{
    for (int pass = 0; pass < 2; pass++) /* every part's data written, then every part fsync'ed */
        for (size_t i = 0; i < st->nparts; i++) {
            StowPart *p = &st->parts[i];
            if (!p->path || !p->len) continue;
            int fd = p->fd >= 0 ? p->fd : open(p->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            if (pass == 0) {
                srv_spool_flush(st->srv, fd, true);
            } else {
                SrvError se = { 0 };
                p->synced = srv_spool_sync(&se, st->srv, fd);
                if (!p->synced) SRV_LOG_WARN("http", "STOW-RS part %zu: %s", i + 1, se.message);
            }
            if (fd != p->fd) close(fd);
        }
}

/* POST /dicom-web/studies and /dicom-web/studies/{study}: the body has been spooled. */
static void h_stow(RestCall *call)
{
    Stow *st = call->body_state;
    SrvError err = { 0 };
    if (!st) { rest_fail(call, SRV_INTERNAL, "STOW-RS: no body state"); return; }
    if (!mpart_finish(&err, st->mp)) { rest_reply_error(call, &err); return; }
    if (!st->nparts) { rest_fail(call, SRV_BAD_REQUEST, "the multipart body holds no part"); return; }

    if (call->srv->cfg.sync_storage) stow_sync_parts(st);
    char base[512];
    base_url(call, base, sizeof base);
    cJSON *answer = cJSON_CreateObject();
    cJSON *ok_items = cJSON_CreateArray(), *bad_items = cJSON_CreateArray();
    if (!answer || !ok_items || !bad_items) {
        cJSON_Delete(answer); cJSON_Delete(ok_items); cJSON_Delete(bad_items);
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST,
                            .remote_ip = call->remote_ip[0] ? call->remote_ip : NULL,
                            .http_user = call->user, .expect_study_uid = st->study };
    size_t stored = 0, failed = 0;
    char first_study[SRV_DICOM_UID_LEN] = "";
    bool one_study = true;
    for (size_t i = 0; i < st->nparts; i++) {
        StowPart *p = &st->parts[i];
        IngestResult res;
        memset(&res, 0, sizeof res);
        SrvError e = { 0 };
        bool ok = false;
        if (p->refused) {
            srv_fail(&e, SRV_BAD_FILE_FORMAT, "part %zu is not application/dicom", i + 1);
        } else if (p->len == 0) {
            srv_fail(&e, SRV_BAD_FILE_FORMAT, "part %zu is empty", i + 1);
        } else {
            SrvSpool sp = { .fd = p->fd >= 0 ? p->fd : open(p->path, O_RDWR | O_CLOEXEC), .len = p->len,
                            .synced = p->synced };
            p->fd = -1; /* sp's now */
            snprintf(sp.path, sizeof sp.path, "%s", p->path);
            if (sp.fd < 0)
                srv_fail(&e, SRV_CANNOT_WRITE_FILE, "cannot open the spool of part %zu: %s", i + 1, strerror(errno));
            else
                ok = ingest_spool(&e, call->srv, &sp, &origin, &res);
            srv_spool_discard(&sp); /* removes it unless it became the stored file */
            free(p->path);
            p->path = NULL;
        }
        cJSON *item = cJSON_CreateObject();
        if (!item) continue;
        add_str(item, "00081150", "UI", res.sop_class_uid);
        add_str(item, "00081155", "UI", res.sop_uid);
        if (ok) {
            char url[1024];
            snprintf(url, sizeof url, "%sstudies/%s/series/%s/instances/%s", base, res.study_uid,
                     res.series_uid, res.sop_uid);
            add_str(item, "00081190", "UR", url);
            cJSON_AddItemToArray(ok_items, item);
            stored++;
            if (!first_study[0]) snprintf(first_study, sizeof first_study, "%s", res.study_uid);
            else if (strcmp(first_study, res.study_uid)) one_study = false;
        } else {
            cJSON *r = cJSON_AddObjectToObject(item, "00081197");
            if (r) {
                cJSON_AddStringToObject(r, "vr", "US");
                cJSON *a = cJSON_AddArrayToObject(r, "Value");
                if (a) cJSON_AddItemToArray(a, cJSON_CreateNumber(failure_reason(&e, &res, st->study)));
            }
            cJSON_AddItemToArray(bad_items, item);
            failed++;
            SRV_LOG_INFO("http", "STOW-RS part %zu of %zu refused: %s", i + 1, st->nparts, e.message);
        }
    }
    const char *study = st->study ? st->study : (stored && one_study ? first_study : NULL);
    if (study) {
        char url[1024];
        snprintf(url, sizeof url, "%sstudies/%s", base, study);
        add_str(answer, "00081190", "UR", url);
    }
    cJSON *seq = cJSON_AddObjectToObject(answer, "00081198");
    if (seq) {
        cJSON_AddStringToObject(seq, "vr", "SQ");
        if (failed) { cJSON_AddItemToObject(seq, "Value", bad_items); bad_items = NULL; }
    }
    seq = cJSON_AddObjectToObject(answer, "00081199");
    if (seq) {
        cJSON_AddStringToObject(seq, "vr", "SQ");
        if (stored) { cJSON_AddItemToObject(seq, "Value", ok_items); ok_items = NULL; }
    }
    cJSON_Delete(ok_items);
    cJSON_Delete(bad_items);
    int status = !failed ? 200 : stored ? 202 : 409;
    SRV_LOG_INFO("http", "STOW-RS from %s: %zu stored, %zu failed -> %d", call->remote_ip, stored, failed, status);
    rest_reply_json(call, status, answer);
    if (call->status == status) call->resp_type = "application/dicom+json";
}

static const RestRoute routes[] = {
    { "POST", "/dicom-web/studies", h_stow },
    { "POST", "/dicom-web/studies/{study}", h_stow },
};
static const RestBodyRoute body_routes[] = {
    { "POST", "/dicom-web/studies", stow_body },
    { "POST", "/dicom-web/studies/{study}", stow_body },
};

const RestRouteTable rest_routes_stow = { routes, sizeof routes / sizeof routes[0] };
const RestBodyRouteTable rest_body_routes_stow = { body_routes, sizeof body_routes / sizeof body_routes[0] };
