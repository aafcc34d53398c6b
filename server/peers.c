/* peers.c -- the Orthanc peers (a server/remotes.c registry) and the store job (see peers.h).
 *
 * DESIGN: the store job walks the one retrieve path (server/retrieve.c) one instance per step; each
 * instance is one POST {peer}/instances whose body is read from the file descriptor as curl
 * asks for it (Content-Length known), or deflated on the fly into gzip (chunked) with Compress.
 * Only Transcode reads an instance whole (DCMTK converts in memory), one at a time. The first
 * instance that cannot be sent fails the whole store (as Orthanc): network error or a non-2xx
 * answer of the peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "server/peers.h"
#include "server/remotes.h"
#include "server/retrieve.h"

static Remotes *g_reg;

bool peers_init(SrvError *err, Srv *srv)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/peers.json", srv->cfg.index_dir ? srv->cfg.index_dir : srv->cfg.storage_dir);
    g_reg = remotes_open(err, "OrthancPeers", path,
                         srv->cfg.orthanc_peers_in_database ? NULL : srv->cfg.orthanc_peers);
    return g_reg != NULL;
}

void peers_cleanup(void)
{
    remotes_close(g_reg);
    g_reg = NULL;
}

bool peers_get(Srv *srv, const char *name, HttpcRemote *out)
{
    (void)srv;
    return remotes_get(g_reg, name, out);
}

cJSON *peers_list_json(bool expand) { return remotes_list_json(g_reg, expand); }

bool peers_put(SrvError *err, const char *name, const cJSON *body)
{
    return remotes_put(err, g_reg, name, body);
}

bool peers_delete(SrvError *err, const char *name)
{
    return remotes_delete(err, g_reg, name, "Unknown Orthanc peer");
}

bool peers_system(SrvError *err, Srv *srv, const HttpcRemote *peer, cJSON **out)
{
    HttpcClient *c = httpc_client_new(srv);
    if (!c) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    bool ok = httpc_get_json(err, c, peer, "system", out);
    httpc_client_free(c);
    return ok;
}

bool peers_store_straight(SrvError *err, Srv *srv, const HttpcRemote *peer, const void *body, size_t len,
                          long *status, char **answer, size_t *answer_len, char ctype[256])
{
    HttpcClient *c = httpc_client_new(srv);
    if (!c) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    const char *hdr[] = { "Content-Type: application/dicom" };
    HttpcRequest rq = { .method = "POST", .path = "instances", .headers = hdr, .nheaders = 1,
                        .body = body, .body_len = len };
    HttpcResponse resp;
    bool ok = httpc_request(err, c, peer, &rq, &resp);
    httpc_client_free(c);
    if (ok) {
        *status = resp.status;
        snprintf(ctype, 256, "%s", resp.content_type);
        *answer = buf_take(&resp.body, answer_len);
    }
    httpc_response_cleanup(&resp);
    return ok;
}

/* ---- store ------------------------------------------------------------------------------- */

struct PeerStore {
    Srv *srv;
    char name[257];
    HttpcRemote peer;
    HttpcClient *client;
    RetrieveList list;
    cJSON *parents;
    size_t next;
    uint64_t size;         /* "Size": bytes of the DICOM files (as sent, before gzip) */
    bool async, compress;
    int priority;
    char transcode[65];
};

void peers_store_free(PeerStore *s)
{
    if (!s) return;
    httpc_client_free(s->client);
    httpc_remote_cleanup(&s->peer);
    retrieve_list_cleanup(&s->list);
    cJSON_Delete(s->parents);
    free(s);
}

PeerStore *peers_store_new(SrvError *err, Srv *srv, const char *name, const HttpcRemote *peer,
                           const cJSON *body)
{
    PeerStore *s = calloc(1, sizeof *s);
    RetrieveResource *rr = NULL;
    if (!s || !(s->parents = cJSON_CreateArray()) || !(s->client = httpc_client_new(srv)) ||
        !httpc_remote_copy(err, peer, &s->peer)) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto fail;
    }
    s->srv = srv;
    snprintf(s->name, sizeof s->name, "%s", name);
    const cJSON *res = body;
    if (cJSON_IsObject(body)) {
        res = cJSON_GetObjectItemCaseSensitive(body, "Resources");
        s->async = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Asynchronous")) ||
                   cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "Synchronous"));
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(body, "Priority");
        if (cJSON_IsNumber(pr)) s->priority = (int)pr->valuedouble;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "Compress");
        if (c && !cJSON_IsBool(c)) {
            srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Compress\" must be true or false");
            goto fail;
        }
        s->compress = cJSON_IsTrue(c);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "Transcode");
        if (t && (!cJSON_IsString(t) || strlen(t->valuestring) >= sizeof s->transcode ||
                  !srv_transcode_supported(t->valuestring))) {
            srv_fail(err, SRV_BAD_REQUEST, "\"Transcode\" must name a transfer syntax this server writes");
            goto fail;
        }
        if (t) snprintf(s->transcode, sizeof s->transcode, "%s", t->valuestring);
    }
    size_t n = cJSON_IsArray(res) ? (size_t)cJSON_GetArraySize(res) : cJSON_IsString(res) ? 1 : 0;
    if (!cJSON_IsArray(res) && !cJSON_IsString(res)) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "the body must name resources: an ID, a list of IDs, or {\"Resources\": [...]}");
        goto fail;
    }
    rr = calloc(n ? n : 1, sizeof *rr);
    if (!rr) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *it = cJSON_IsArray(res) ? cJSON_GetArrayItem(res, (int)i) : res;
        if (!cJSON_IsString(it) || !srv_is_orthanc_id(it->valuestring)) {
            srv_fail(err, SRV_BAD_FILE_FORMAT, "This string is not a valid Orthanc identifier: %.100s",
                     cJSON_IsString(it) ? it->valuestring : "(not a string)");
            goto fail;
        }
        rr[i].level = -1;
        rr[i].id = it->valuestring;
        cJSON_AddItemToArray(s->parents, cJSON_CreateString(it->valuestring));
    }
    if (n && !retrieve_list(err, srv, rr, n, &s->list)) goto fail;
    free(rr);
    s->size = s->list.total_size;
    return s;
fail:
    free(rr);
    peers_store_free(s);
    return NULL;
}

bool peers_store_async(const PeerStore *s) { return s->async; }

/* The body of one instance: its file (fd) or a transcoded buffer, gzip'ed or not. */
typedef struct Body {
    int fd;
    const char *mem;
    size_t mem_left;
    bool gzip, eof;
    z_stream z;
    unsigned char in[65536];
    bool failed;
} Body;

static size_t src_read(Body *b, void *dst, size_t max)
{
    if (b->mem) {
        size_t n = b->mem_left < max ? b->mem_left : max;
        memcpy(dst, b->mem, n);
        b->mem += n;
        b->mem_left -= n;
        return n;
    }
    for (;;) {
        ssize_t r = read(b->fd, dst, max);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            b->failed = true;
            return (size_t)-1;
        }
        return (size_t)r;
    }
}

static size_t body_read(void *ctx, char *buf, size_t max)
{
    Body *b = ctx;
    if (!b->gzip) return src_read(b, buf, max);
    b->z.next_out = (unsigned char *)buf;
    b->z.avail_out = (uInt)(max > (1u << 30) ? (1u << 30) : max);
    while (b->z.avail_out > 0) {
        if (b->z.avail_in == 0 && !b->eof) {
            size_t n = src_read(b, b->in, sizeof b->in);
            if (n == (size_t)-1) return (size_t)-1;
            b->eof = n == 0;
            b->z.next_in = b->in;
            b->z.avail_in = (uInt)n;
        }
        int rc = deflate(&b->z, b->eof ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            b->failed = true;
            return (size_t)-1;
        }
        if (rc == Z_BUF_ERROR && b->eof) break;
    }
    return (size_t)((char *)b->z.next_out - buf);
}

typedef struct Sink {
    PeerStore *s;
} Sink;

static int send_file(void *ctx, SrvError *err, const RetrieveFile *f)
{
    PeerStore *s = ((Sink *)ctx)->s;
    void *whole = NULL, *conv = NULL;
    size_t whole_len = 0, conv_len = 0;
    Body *b = calloc(1, sizeof *b);
    int result = RETRIEVE_ABORT;
    if (!b) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return RETRIEVE_ABORT;
    }
    b->fd = f->fd;
    int64_t len = (int64_t)f->item->size;
    if (s->transcode[0] && strcmp(s->transcode, f->item->transfer_syntax) != 0) {
        if (!retrieve_read(err, f, &whole, &whole_len)) goto out;
        if (!srv_transcode(err, whole, whole_len, s->transcode, &conv, &conv_len)) {
            SRV_LOG_WARN("peers", "instance %s cannot be transcoded to %s (%s): sent as stored",
                         f->item->id, s->transcode, err->message);
            memset(err, 0, sizeof *err);
            b->mem = whole;
            b->mem_left = whole_len;
        } else {
            b->mem = conv;
            b->mem_left = conv_len;
            s->size = s->size - f->item->size + conv_len;
        }
        len = (int64_t)b->mem_left;
    }
    if (s->compress) {
        if (deflateInit2(&b->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "zlib: cannot start deflate");
            goto out;
        }
        b->gzip = true;
        len = -1;
    }
    const char *hdr[] = { "Content-Type: application/dicom", "Content-Encoding: gzip" };
    HttpcRequest rq = { .method = "POST", .path = "instances", .headers = hdr, .nheaders = s->compress ? 2 : 1,
                        .read = body_read, .read_ctx = b, .read_len = len, .max_answer = 1 << 20 };
    HttpcResponse resp;
    bool ok = httpc_request(err, s->client, &s->peer, &rq, &resp);
    if (ok && (resp.status < 200 || resp.status >= 300)) {
        srv_fail(err, SRV_NETWORK_PROTOCOL, "Cannot send DICOM to remote peer: %s (instance %s: HTTP status %ld)",
                 s->name, f->item->id, resp.status);
        ok = false;
    }
    if (!ok && b->failed) srv_fail(err, SRV_NETWORK_PROTOCOL, "cannot read the file of instance %s", f->item->id);
    httpc_response_cleanup(&resp);
    result = ok ? RETRIEVE_SENT : RETRIEVE_ABORT;
out:
    if (b->gzip) deflateEnd(&b->z);
    free(b);
    free(whole);
    free(conv);
    return result;
}

/* Sends items [next, next + count). */
static bool store_some(SrvError *err, PeerStore *s, size_t count)
{
    RetrieveList part = s->list;
    part.n = s->next + count < s->list.n ? s->next + count : s->list.n;
    Sink k = { s };
    RetrieveSink sink = { send_file, NULL, &k };
    RetrieveStats st;
    bool ok = retrieve_run(err, s->srv, &part, s->next, &sink, &st, NULL);
    if (ok && st.failed) /* a file missing on disk */
        ok = srv_fail(err, SRV_INEXISTENT_FILE, "the file of an instance to send is missing");
    if (ok) s->next = part.n;
    return ok;
}

cJSON *peers_store_result(const PeerStore *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddBoolToObject(o, "Compress", s->compress);
    cJSON_AddStringToObject(o, "Description", "REST API");
    cJSON_AddNumberToObject(o, "FailedInstancesCount", 0);
    cJSON_AddNumberToObject(o, "InstancesCount", (double)s->list.n);
    if (cJSON_GetArraySize(s->parents) > 0)
        cJSON_AddItemToObject(o, "ParentResources", cJSON_Duplicate(s->parents, true));
    cJSON *p = cJSON_AddArrayToObject(o, "Peer");
    cJSON_AddItemToArray(p, cJSON_CreateString(s->peer.url));
    if (s->peer.username) {
        cJSON_AddItemToArray(p, cJSON_CreateString(s->peer.username));
        cJSON_AddItemToArray(p, cJSON_CreateString("")); /* the password is not shown */
    }
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)s->size);
    cJSON_AddStringToObject(o, "Size", size);
    cJSON_AddNumberToObject(o, "SizeMB", (double)(s->size >> 20));
    if (s->transcode[0]) cJSON_AddStringToObject(o, "Transcode", s->transcode);
    return o;
}

bool peers_store_run(SrvError *err, PeerStore *s)
{
    return store_some(err, s, s->list.n);
}

static int job_step(void *p, SrvError *err)
{
    PeerStore *s = p;
    if (s->next >= s->list.n) return JOB_STEP_DONE;
    if (!store_some(err, s, 1)) return JOB_STEP_FAILURE;
    return s->next >= s->list.n ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}

static double job_progress(void *p)
{
    PeerStore *s = p;
    return s->list.n ? (double)s->next / (double)s->list.n : 1.0;
}

static cJSON *job_content(void *p) { return peers_store_result(p); }

static void job_reset(void *p)
{
    PeerStore *s = p;
    s->next = 0;
    s->size = s->list.total_size;
}

static void job_free(void *p) { peers_store_free(p); }

const JobType peers_store_job_type = {
    .name = "OrthancPeerStore",
    .max_parallel = 1,
    .step = job_step,
    .finish = NULL,
    .progress = job_progress,
    .content = job_content,
    .serialize = NULL, /* not saved: a restart does not resend (as DicomModalityStore) */
    .reset = job_reset,
    .free = job_free,
    .unserialize = NULL,
};

bool peers_store_submit(SrvError *err, PeerStore *s, char job_id[JOB_ID_LEN])
{
    return jobs_submit(err, &peers_store_job_type, s, s->priority, job_id);
}
