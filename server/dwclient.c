/* dwclient.c -- the DICOMweb client (see dwclient.h).
 *
 * DESIGN: the servers are a server/remotes.c registry. Requests go through server/httpc.c.
 * WADO-RS answers are split as they stream by the server's one multipart parser
 * (server/multipart.c, whole-part mode): each part is gathered until its delimiter shows up,
 * then goes to ingest_buffer() (origin "Plugins", as Orthanc's plugin stores them) and its
 * buffer is reused for the next: one instance in memory at a time. STOW-RS
 * bodies are produced by a reader that walks a batch of open files (the one retrieve path's
 * list, opened with retrieve_open): part header, the file's bytes as read, CRLF, ... closing
 * delimiter; the length is known before sending (sizes taken when the files are opened).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "dicom/dicom.h"
#include "server/dwclient.h"
#include "server/multipart.h"
#include "server/remotes.h"
#include "server/retrieve.h"

static Remotes *g_reg;

bool dwc_init(SrvError *err, Srv *srv)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/dicomweb-servers.json", srv->cfg.index_dir ? srv->cfg.index_dir : srv->cfg.storage_dir);
    g_reg = remotes_open(err, "DicomWeb.Servers", path, srv->cfg.dicomweb.servers);
    return g_reg != NULL;
}

void dwc_cleanup(void)
{
    remotes_close(g_reg);
    g_reg = NULL;
}

bool dwc_get(const char *name, HttpcRemote *out) { return remotes_get(g_reg, name, out); }
cJSON *dwc_list_json(bool expand) { return remotes_list_json(g_reg, expand); }
bool dwc_put(SrvError *err, const char *name, const cJSON *body) { return remotes_put(err, g_reg, name, body); }
bool dwc_delete(SrvError *err, const char *name)
{
    if (remotes_delete(err, g_reg, name, "Inexistent server")) return true;
    if (err && err->code == SRV_INEXISTENT_ITEM) err->code = SRV_BAD_REQUEST; /* the plugin's 400 */
    return false;
}

/* ---- get / qido ----------------------------------------------------------------------------- */

/* "studies?PatientID=x&limit=3" from {"Uri": "/studies", "Arguments": {...}}. malloc'd. */
static char *build_path(SrvError *err, const cJSON *body)
{
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(body, "Uri");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(body, "Arguments");
    if (!cJSON_IsString(uri)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "A request to the DICOMweb client must provide a JSON object with the field \"Uri\" containing the URI of interest");
        return NULL;
    }
    if (args && !cJSON_IsObject(args)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Arguments\" must be an object of strings");
        return NULL;
    }
    Buf b;
    buf_init(&b, 1 << 20);
    const char *u = uri->valuestring;
    while (*u == '/') u++;
    int rc = buf_append(&b, u, strlen(u));
    char sep = strchr(u, '?') ? '&' : '?';
    for (const cJSON *a = args ? args->child : NULL; rc == BUF_OK && a; a = a->next) {
        if (!cJSON_IsString(a)) {
            buf_free(&b);
            srv_fail(err, SRV_BAD_FILE_FORMAT, "the argument \"%.100s\" must be a string", a->string);
            return NULL;
        }
        char *k = curl_easy_escape(NULL, a->string, 0), *v = curl_easy_escape(NULL, a->valuestring, 0);
        rc = k && v ? buf_printf(&b, "%c%s=%s", sep, k, v) : BUF_NOMEM;
        curl_free(k);
        curl_free(v);
        sep = '&';
    }
    if (rc != BUF_OK) {
        buf_free(&b);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "the URI is too long");
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* Extra "Name: value" lines from the body's HttpHeaders. *lines malloc'd (each too). */
static bool body_headers(SrvError *err, const cJSON *body, char ***lines, size_t *n)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(body, "HttpHeaders");
    *lines = NULL;
    *n = 0;
    if (!h) return true;
    if (!cJSON_IsObject(h)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"HttpHeaders\" must be an object of strings");
    *lines = calloc((size_t)cJSON_GetArraySize(h) + 1, sizeof **lines);
    if (!*lines) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (const cJSON *e = h->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !*e->string || strpbrk(e->string, ":\r\n") || strpbrk(e->valuestring, "\r\n"))
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "bad HTTP header \"%.100s\"", e->string);
        size_t l = strlen(e->string) + strlen(e->valuestring) + 3;
        if (!((*lines)[*n] = malloc(l))) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        snprintf((*lines)[(*n)++], l, "%s: %s", e->string, e->valuestring);
    }
    return true;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

bool dwc_request(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body, const char *accept,
                 char ctype[256], char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    char **lines = NULL;
    size_t n = 0;
    char *path = build_path(err, body);
    HttpcClient *c = NULL;
    bool ok = false;
    if (!path || !body_headers(err, body, &lines, &n)) goto out;
    char acc[256];
    snprintf(acc, sizeof acc, "Accept: %s", accept ? accept : "application/dicom+json");
    char **all = realloc(lines, (n + 2) * sizeof *all);
    if (!all) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    lines = all;
    lines[n] = strdup(acc);
    if (!lines[n]) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    n++;
    if (!(c = httpc_client_new(srv))) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    HttpcRequest rq = { .method = "GET", .path = path, .headers = (const char *const *)lines, .nheaders = n,
                        .max_answer = (size_t)srv->cfg.maximum_upload_size << 20 };
    HttpcResponse resp;
    ok = httpc_request(err, c, server, &rq, &resp);
    if (ok && (resp.status < 200 || resp.status >= 300)) { /* 404 stays a 404, as the plugin does */
        ok = srv_fail(err, resp.status == 404 ? SRV_UNKNOWN_RESOURCE : SRV_NETWORK_PROTOCOL,
                      "the DICOMweb server answered HTTP status %ld to GET %s%s", resp.status, server->url, path);
    }
    if (ok) {
        snprintf(ctype, 256, "%s", resp.content_type);
        *out = buf_take(&resp.body, len);
    }
    httpc_response_cleanup(&resp);
out:
    httpc_client_free(c);
    free_lines(lines, n);
    free(path);
    return ok;
}

static cJSON *simplify_one(const cJSON *obj)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *e = obj ? obj->child : NULL; o && e; e = e->next) {
        unsigned long tag = strtoul(e->string, NULL, 16);
        char name[128];
        dcm_tag_name((uint32_t)tag, name, sizeof name);
        cJSON *a = cJSON_CreateObject();
        if (!a) break;
        cJSON_AddNumberToObject(a, "Element", (double)(tag & 0xffff));
        cJSON_AddNumberToObject(a, "Group", (double)(tag >> 16));
        cJSON_AddStringToObject(a, "Name", strchr(name, ',') ? "Unknown Tag & Data" : name);
        const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "Value"), 0);
        const cJSON *alpha = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "Alphabetic") : NULL;
        if (cJSON_IsString(v)) cJSON_AddStringToObject(a, "Value", v->valuestring);
        else if (cJSON_IsString(alpha)) cJSON_AddStringToObject(a, "Value", alpha->valuestring);
        const cJSON *vr = cJSON_GetObjectItemCaseSensitive(e, "vr");
        if (cJSON_IsString(vr)) cJSON_AddStringToObject(a, "vr", vr->valuestring);
        cJSON_AddItemToObject(o, e->string, a);
    }
    return o;
}

void dwc_qido_simplify(cJSON *answer)
{
    if (cJSON_IsObject(answer)) { /* a single object: reshape its members */
        cJSON *n = simplify_one(answer);
        if (!n) return;
        while (answer->child) cJSON_Delete(cJSON_DetachItemViaPointer(answer, answer->child));
        while (n->child) {
            cJSON *m = cJSON_DetachItemViaPointer(n, n->child);
            cJSON_AddItemToObject(answer, m->string, m);
        }
        cJSON_Delete(n);
        return;
    }
    int count = cJSON_GetArraySize(answer);
    for (int i = 0; i < count; i++) {
        cJSON *n = simplify_one(cJSON_GetArrayItem(answer, i));
        if (n) cJSON_ReplaceItemInArray(answer, i, n);
    }
}

/* ---- retrieve and stow -------------------------------------------------------------------- */

enum { KIND_RETRIEVE = 0, KIND_STOW = 1 };
#define STOW_BATCH 32

typedef struct WadoRes {
    char *study, *series, *instance;
} WadoRes;

struct DwcTransfer {
    int kind;
    Srv *srv;
    HttpcRemote server;
    HttpcClient *client;
    char **headers;          /* the body's HttpHeaders */
    size_t nheaders;
    bool async;
    int priority;
    size_t next;             /* next resource (retrieve) / item (stow) */
    uint64_t network;        /* bytes received / sent */
    size_t count;            /* instances received / sent */
    WadoRes *res;            /* retrieve */
    size_t nres;
    RetrieveList list;       /* stow */
};

void dwc_transfer_free(DwcTransfer *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nres; i++) {
        free(t->res[i].study);
        free(t->res[i].series);
        free(t->res[i].instance);
    }
    free(t->res);
    retrieve_list_cleanup(&t->list);
    free_lines(t->headers, t->nheaders);
    httpc_client_free(t->client);
    httpc_remote_cleanup(&t->server);
    free(t);
}

static DwcTransfer *transfer_new(SrvError *err, int kind, Srv *srv, const HttpcRemote *server, const cJSON *body)
{
    DwcTransfer *t = calloc(1, sizeof *t);
    if (!t || !(t->client = httpc_client_new(srv)) || !httpc_remote_copy(err, server, &t->server)) {
        dwc_transfer_free(t);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    t->kind = kind;
    t->srv = srv;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "Asynchronous");
    const cJSON *sy = cJSON_GetObjectItemCaseSensitive(body, "Synchronous");
    t->async = cJSON_IsTrue(a) || cJSON_IsFalse(sy);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(body, "Priority");
    if (cJSON_IsNumber(pr)) t->priority = (int)pr->valuedouble;
    if (!body_headers(err, body, &t->headers, &t->nheaders)) {
        dwc_transfer_free(t);
        return NULL;
    }
    return t;
}

static char *dup_uid(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && *v->valuestring ? strdup(v->valuestring) : NULL;
}

static bool uid_ok(const char *s)
{
    return !s || (strlen(s) <= 64 && strspn(s, "0123456789.") == strlen(s));
}

DwcTransfer *dwc_retrieve_new(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(body, "Resources");
    if (!cJSON_IsObject(body) || !cJSON_IsArray(res)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "The body must be a JSON object with an array \"Resources\" of {\"Study\", \"Series\", \"Instance\"}");
        return NULL;
    }
    DwcTransfer *t = transfer_new(err, KIND_RETRIEVE, srv, server, body);
    if (!t) return NULL;
    size_t n = (size_t)cJSON_GetArraySize(res);
    t->res = calloc(n ? n : 1, sizeof *t->res);
    if (!t->res) {
        dwc_transfer_free(t);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        WadoRes *w = &t->res[t->nres++];
        w->study = dup_uid(r, "Study");
        w->series = dup_uid(r, "Series");
        w->instance = dup_uid(r, "Instance");
        if (!cJSON_IsObject(r) || !w->study) {
            dwc_transfer_free(t);
            srv_fail(err, SRV_BAD_FILE_FORMAT, "Missing \"Study\" field in the body");
            return NULL;
        }
        if ((w->instance && !w->series) || !uid_ok(w->study) || !uid_ok(w->series) || !uid_ok(w->instance)) {
            dwc_transfer_free(t);
            srv_fail(err, SRV_BAD_FILE_FORMAT, "a resource is {\"Study\": uid[, \"Series\": uid[, \"Instance\": uid]]} (UIDs of digits and dots)");
            return NULL;
        }
    }
    return t;
}

DwcTransfer *dwc_stow_new(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(body, "Resources");
    if (!cJSON_IsObject(body) || !cJSON_IsArray(res)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "A request to the DICOMweb STOW-RS client must provide a JSON object with the field \"Resources\" containing an array of resources to be sent");
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(res);
    RetrieveResource *rr = calloc(n ? n : 1, sizeof *rr);
    if (!rr) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(res, (int)i);
        if (!cJSON_IsString(it)) {
            free(rr);
            srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Resources\" must list Orthanc identifiers (strings)");
            return NULL;
        }
        rr[i].level = -1;
        rr[i].id = it->valuestring;
    }
    DwcTransfer *t = transfer_new(err, KIND_STOW, srv, server, body);
    if (t && n && !retrieve_list(err, srv, rr, n, &t->list)) {
        dwc_transfer_free(t);
        t = NULL;
    }
    free(rr);
    return t;
}

bool dwc_transfer_async(const DwcTransfer *t) { return t->async; }

/* -- retrieve: one resource */

typedef struct Pull {
    DwcTransfer *t;
    MpartParser *sp;
    char ctype[256];
    SrvError err;     /* the parser's or ingest's failure */
    bool failed;
    bool ingest_failed; /* err is ingest's (else a malformed answer) */
    long status;        /* of the answer being received (its status line) */
    uint64_t max_part;
} Pull;

/* A malformed answer is the remote's fault: 500 NetworkProtocol, not our 400. */
static void answer_error(Pull *p)
{
    if (p->ingest_failed || p->err.code == SRV_NOT_ENOUGH_MEMORY) return;
    char msg[sizeof p->err.message];
    snprintf(msg, sizeof msg, "%s", p->err.message);
    srv_fail(&p->err, SRV_NETWORK_PROTOCOL, "malformed multipart answer from the DICOMweb server: %s", msg);
}

static void pull_header(void *ctx, const char *line, size_t len)
{
    Pull *p = ctx;
    if (len > 13 && !strncasecmp(line, "Content-Type:", 13)) {
        const char *v = line + 13;
        size_t n = len - 13;
        while (n && (*v == ' ' || *v == '\t')) v++, n--;
        while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
        snprintf(p->ctype, sizeof p->ctype, "%.*s", (int)n, v);
    } else if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        p->ctype[0] = '\0'; /* a new answer (after a 100 Continue or a redirect) */
        const char *sp = memchr(line, ' ', len);
        p->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
}

static bool pull_part(void *ctx, SrvError *err, size_t index, const char *data, size_t len)
{
    (void)index;
    Pull *p = ctx;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_PLUGINS };
    IngestResult res;
    if (!ingest_buffer(err, p->t->srv, data, len, &origin, &res)) {
        p->ingest_failed = true;
        return false;
    }
    p->t->count++;
    return true;
}

static bool pull_write(void *ctx, const char *data, size_t len)
{
    Pull *p = ctx;
    p->t->network += len;
    if (p->status < 200 || p->status >= 300) return true; /* an error's body: the status says it */
    if (!p->sp) {
        char media[64];
        MpartLimits lim = { .max_header_bytes = 64 * 1024, .max_part_bytes = p->max_part };
        SrvError e = { 0 };
        if (mpart_media_type(p->ctype, media, sizeof media) && !strncmp(media, "multipart/", 10))
            p->sp = mpart_create_whole(&e, p->ctype, &lim, pull_part, p);
        if (!p->sp) {
            srv_fail(&p->err, SRV_NETWORK_PROTOCOL, "the DICOMweb server did not answer multipart/related with a boundary (Content-Type: %.100s)", p->ctype);
            p->failed = true;
            return false;
        }
    }
    if (!mpart_feed(&p->err, p->sp, data, len)) {
        answer_error(p);
        p->failed = true;
        return false;
    }
    return true;
}

static bool retrieve_one(SrvError *err, DwcTransfer *t, const WadoRes *w)
{
    char path[512];
    if (w->instance) snprintf(path, sizeof path, "studies/%s/series/%s/instances/%s", w->study, w->series, w->instance);
    else if (w->series) snprintf(path, sizeof path, "studies/%s/series/%s", w->study, w->series);
    else snprintf(path, sizeof path, "studies/%s", w->study);
    const cJSON *univ = t->server.extra ? cJSON_GetObjectItemCaseSensitive(t->server.extra, "HasWadoRsUniversalTransferSyntax") : NULL;
    bool any_ts = !(cJSON_IsFalse(univ) || (cJSON_IsString(univ) && (!strcmp(univ->valuestring, "0") || !strcasecmp(univ->valuestring, "false"))));
    const char *accept = any_ts ? "Accept: multipart/related; type=\"application/dicom\"; transfer-syntax=*"
                                : "Accept: multipart/related; type=\"application/dicom\"";
    const char **hdr = calloc(t->nheaders + 1, sizeof *hdr);
    if (!hdr) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (size_t i = 0; i < t->nheaders; i++) hdr[i] = t->headers[i];
    hdr[t->nheaders] = accept;
    Pull p = { .t = t, .max_part = (uint64_t)t->srv->cfg.maximum_upload_size << 20 };
    HttpcRequest rq = { .method = "GET", .path = path, .headers = hdr, .nheaders = t->nheaders + 1,
                        .write = pull_write, .write_ctx = &p, .header = pull_header, .header_ctx = &p };
    HttpcResponse resp;
    size_t before = t->count;
    bool ok = httpc_request(err, t->client, &t->server, &rq, &resp);
    free(hdr);
    if (p.failed) {
        *err = p.err;
        ok = false;
    } else if (ok && (resp.status < 200 || resp.status >= 300)) {
        ok = srv_fail(err, SRV_NETWORK_PROTOCOL, "the DICOMweb server answered HTTP status %ld to GET %s%s",
                      resp.status, t->server.url, path);
    } else if (ok && !p.sp) {
        ok = srv_fail(err, SRV_NETWORK_PROTOCOL, "the DICOMweb server answered no body to GET %s%s", t->server.url, path);
    } else if (ok && !mpart_finish(&p.err, p.sp)) {
        answer_error(&p);
        *err = p.err;
        ok = false;
    }
    if (ok) SRV_LOG_INFO("dwclient", "WADO-RS %s%s: %zu instance(s) stored", t->server.url, path, t->count - before);
    mpart_destroy(p.sp);
    httpc_response_cleanup(&resp);
    return ok;
}

/* -- stow: one batch */

typedef struct Push {
    DwcTransfer *t;
    char boundary[40];
    size_t from, to, cur; /* items [from, to); cur: the one being written */
    int *fds;
    uint64_t *sizes;
    int phase;            /* 0 part header, 1 file bytes, 2 CRLF after the part, 3 closing, 4 end */
    char head[256];
    size_t head_len, head_off;
    uint64_t file_left;
    SrvError err;
    bool failed;
} Push;

static void push_head(Push *p)
{
    if (p->cur < p->to) {
        p->head_len = (size_t)snprintf(p->head, sizeof p->head,
                                       "--%s\r\nContent-Type: application/dicom\r\nContent-Length: %llu\r\n\r\n",
                                       p->boundary, (unsigned long long)p->sizes[p->cur - p->from]);
        p->phase = 0;
    } else {
        p->head_len = (size_t)snprintf(p->head, sizeof p->head, "--%s--\r\n", p->boundary);
        p->phase = 3;
    }
    p->head_off = 0;
}

static size_t push_read(void *ctx, char *buf, size_t max)
{
    Push *p = ctx;
    size_t done = 0;
    while (done < max && p->phase != 4) {
        if (p->phase == 0 || p->phase == 2 || p->phase == 3) {
            size_t n = p->head_len - p->head_off;
            if (n > max - done) n = max - done;
            memcpy(buf + done, p->head + p->head_off, n);
            p->head_off += n;
            done += n;
            if (p->head_off < p->head_len) break;
            if (p->phase == 0) {
                p->phase = 1;
                p->file_left = p->sizes[p->cur - p->from];
            } else if (p->phase == 2) {
                p->cur++;
                push_head(p);
            } else {
                p->phase = 4;
            }
        } else { /* file bytes */
            if (p->file_left == 0) {
                p->phase = 2;
                p->head_len = 2;
                p->head_off = 0;
                memcpy(p->head, "\r\n", 2);
                continue;
            }
            size_t want = max - done;
            if (want > p->file_left) want = (size_t)p->file_left;
            ssize_t r = read(p->fds[p->cur - p->from], buf + done, want);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                srv_fail(&p->err, SRV_NETWORK_PROTOCOL, "cannot read the file of instance %s",
                         p->t->list.items[p->cur].id);
                p->failed = true;
                return (size_t)-1;
            }
            done += (size_t)r;
            p->file_left -= (uint64_t)r;
        }
    }
    return done;
}

/* Checks a STOW-RS answer: every instance in ReferencedSOPSequence, none failed. */
static bool stow_answer_ok(SrvError *err, DwcTransfer *t, const HttpcResponse *resp, size_t sent)
{
    if (resp->status != 200 && resp->status != 202)
        return srv_fail(err, SRV_NETWORK_PROTOCOL, "the DICOMweb server answered HTTP status %ld to STOW-RS of %zu instance(s)",
                        resp->status, sent);
    cJSON *j = resp->body.len ? cJSON_ParseWithLength(resp->body.data, resp->body.len) : NULL;
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(j, "00081198");
    const cJSON *fv = cJSON_GetObjectItemCaseSensitive(failed, "Value");
    int nf = cJSON_GetArraySize(fv);
    cJSON_Delete(j);
    (void)t;
    if (nf > 0 || resp->status == 202)
        return srv_fail(err, SRV_NETWORK_PROTOCOL, "the DICOMweb server refused %d of %zu instance(s) (STOW-RS)",
                        nf > 0 ? nf : 1, sent);
    return true;
}

static bool stow_batch(SrvError *err, DwcTransfer *t)
{
    size_t from = t->next, to = from + STOW_BATCH < t->list.n ? from + STOW_BATCH : t->list.n;
    Push p = { .t = t, .from = from, .to = to, .cur = from };
    p.fds = malloc((to - from) * sizeof *p.fds);
    p.sizes = malloc((to - from) * sizeof *p.sizes);
    bool ok = p.fds && p.sizes;
    size_t opened = 0;
    uint64_t total = 0;
    if (!ok) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    char rnd[SRV_UUID_LEN];
    srv_uuid_new(rnd);
    snprintf(p.boundary, sizeof p.boundary, "%s", rnd);
    for (size_t i = from; ok && i < to; i++) {
        int fd = retrieve_open(err, t->srv, &t->list.items[i], &p.sizes[i - from]);
        if (fd < 0) {
            ok = false;
            break;
        }
        p.fds[opened++] = fd;
        char h[256];
        total += (uint64_t)snprintf(h, sizeof h, "--%s\r\nContent-Type: application/dicom\r\nContent-Length: %llu\r\n\r\n",
                                    p.boundary, (unsigned long long)p.sizes[i - from]) + p.sizes[i - from] + 2;
    }
    if (ok) {
        char h[64];
        total += (uint64_t)snprintf(h, sizeof h, "--%s--\r\n", p.boundary);
        push_head(&p);
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: multipart/related; type=\"application/dicom\"; boundary=%s", p.boundary);
        const char **hdr = calloc(t->nheaders + 2, sizeof *hdr);
        if (!hdr) {
            ok = srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        } else {
            for (size_t i = 0; i < t->nheaders; i++) hdr[i] = t->headers[i];
            hdr[t->nheaders] = ct;
            hdr[t->nheaders + 1] = "Accept: application/dicom+json";
            HttpcRequest rq = { .method = "POST", .path = "studies", .headers = hdr, .nheaders = t->nheaders + 2,
                                .read = push_read, .read_ctx = &p, .read_len = (int64_t)total, .max_answer = 64 << 20 };
            HttpcResponse resp;
            ok = httpc_request(err, t->client, &t->server, &rq, &resp);
            if (p.failed) {
                *err = p.err;
                ok = false;
            }
            if (ok) ok = stow_answer_ok(err, t, &resp, to - from);
            if (ok) {
                t->network += resp.sent;
                t->count += to - from;
                t->next = to;
            }
            httpc_response_cleanup(&resp);
            free(hdr);
        }
    }
    for (size_t i = 0; i < opened; i++) close(p.fds[i]);
    free(p.fds);
    free(p.sizes);
    return ok;
}

static bool step_one(SrvError *err, DwcTransfer *t)
{
    if (t->kind == KIND_RETRIEVE) {
        if (!retrieve_one(err, t, &t->res[t->next])) return false;
        t->next++;
        return true;
    }
    return stow_batch(err, t);
}

static size_t total_of(const DwcTransfer *t) { return t->kind == KIND_RETRIEVE ? t->nres : t->list.n; }

bool dwc_transfer_run(SrvError *err, DwcTransfer *t)
{
    while (t->next < total_of(t))
        if (!step_one(err, t)) return false;
    return true;
}

cJSON *dwc_transfer_result(const DwcTransfer *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char n[32], mb[32];
    snprintf(n, sizeof n, "%zu", t->count);
    snprintf(mb, sizeof mb, "%llu", (unsigned long long)(t->network >> 20));
    if (t->kind == KIND_RETRIEVE) { /* Orthanc's plugin writes these numbers as strings */
        cJSON_AddStringToObject(o, "NetworkUsageMB", mb);
        cJSON_AddStringToObject(o, "ReceivedInstancesCount", n);
    } else {
        cJSON_AddStringToObject(o, "InstancesCount", n);
        cJSON_AddStringToObject(o, "NetworkSizeMB", mb);
    }
    return o;
}

static int job_step(void *p, SrvError *err)
{
    DwcTransfer *t = p;
    if (t->next >= total_of(t)) return JOB_STEP_DONE;
    if (!step_one(err, t)) return JOB_STEP_FAILURE;
    return t->next >= total_of(t) ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}

static double job_progress(void *p)
{
    DwcTransfer *t = p;
    size_t n = total_of(t);
    return n ? (double)t->next / (double)n : 1.0;
}

static cJSON *job_content(void *p) { return dwc_transfer_result(p); }

static void job_reset(void *p)
{
    DwcTransfer *t = p;
    t->next = 0;
    t->count = 0;
    t->network = 0;
}

static void job_free(void *p) { dwc_transfer_free(p); }

const JobType dwc_retrieve_job_type = {
    .name = "DicomWebWadoRetrieveClient", .max_parallel = 1, .step = job_step, .progress = job_progress,
    .content = job_content, .reset = job_reset, .free = job_free,
};
const JobType dwc_stow_job_type = {
    .name = "DicomWebStowClient", .max_parallel = 1, .step = job_step, .progress = job_progress,
    .content = job_content, .reset = job_reset, .free = job_free,
};

bool dwc_transfer_submit(SrvError *err, DwcTransfer *t, char job_id[JOB_ID_LEN])
{
    return jobs_submit(err, t->kind == KIND_RETRIEVE ? &dwc_retrieve_job_type : &dwc_stow_job_type, t,
                       t->priority, job_id);
}
