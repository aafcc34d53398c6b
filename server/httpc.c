/* httpc.c -- the HTTP client on libcurl (see httpc.h).
 *
 * DESIGN: one easy handle per HttpcClient, reset before each request (curl_easy_reset keeps
 * the connection cache, so a job sending many instances to one peer reuses its connection).
 * Every option Orthanc's HttpClient sets is set here from the remote and the configuration:
 * total timeout (the remote's Timeout, else HttpTimeout), Basic credentials, extra headers,
 * client certificate and key (PEM), peer verification and CA file, proxy. Signals are off
 * (CURLOPT_NOSIGNAL) since requests run on worker threads. Answers go to a capped Buf or the
 * caller's write callback; bodies come from a buffer or the caller's read callback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "server/httpc.h"

struct HttpcClient {
    Srv *srv;
    CURL *curl;
};

/* ---- remotes ------------------------------------------------------------------------------ */

static char *dup_str(const cJSON *v)
{
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

void httpc_remote_cleanup(HttpcRemote *r)
{
    if (!r) return;
    free(r->username);
    free(r->password);
    cJSON_Delete(r->headers);
    free(r->cert_file);
    free(r->key_file);
    free(r->key_password);
    cJSON_Delete(r->extra);
    memset(r, 0, sizeof *r);
}

static bool set_url(SrvError *err, HttpcRemote *r, const char *url)
{
    size_t n = url ? strlen(url) : 0;
    if (n == 0) return srv_fail(err, SRV_BAD_FILE_FORMAT, "Empty URL");
    if (n + 2 > sizeof r->url) return srv_fail(err, SRV_BAD_FILE_FORMAT, "URL too long");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "Bad URL (only http:// and https:// are supported): %.200s", url);
    snprintf(r->url, sizeof r->url, "%s%s", url, url[n - 1] == '/' ? "" : "/");
    return true;
}

static bool file_exists(SrvError *err, const char *what, const char *path)
{
    if (path && access(path, R_OK) != 0)
        return srv_fail(err, SRV_INEXISTENT_FILE, "Cannot open %s file: %.200s", what, path);
    return true;
}

bool httpc_remote_parse(SrvError *err, const cJSON *v, HttpcRemote *r)
{
    memset(r, 0, sizeof *r);
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        const cJSON *u = cJSON_GetArrayItem(v, 0);
        if ((n != 1 && n != 3) || !cJSON_IsString(u))
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "a remote is [url], [url, username, password] or an object with \"Url\"");
        if (!set_url(err, r, u->valuestring)) return false;
        if (n == 3) {
            const cJSON *us = cJSON_GetArrayItem(v, 1), *pw = cJSON_GetArrayItem(v, 2);
            if (!cJSON_IsString(us) || !cJSON_IsString(pw))
                return srv_fail(err, SRV_BAD_FILE_FORMAT, "the username and password must be strings");
            r->username = strdup(us->valuestring);
            r->password = strdup(pw->valuestring);
            if (!r->username || !r->password) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        }
        return true;
    }
    if (!cJSON_IsObject(v))
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "a remote is [url], [url, username, password] or an object with \"Url\"");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "Url");
    if (u && !cJSON_IsString(u)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Url\" must be a string");
    if (!set_url(err, r, u ? u->valuestring : NULL)) return false;
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(v, "Username");
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(v, "Password");
    if ((us && !cJSON_IsString(us)) || (pw && !cJSON_IsString(pw) && !cJSON_IsNull(pw)))
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Username\" and \"Password\" must be strings");
    if (cJSON_IsString(us)) {
        r->username = strdup(us->valuestring);
        r->password = strdup(cJSON_IsString(pw) ? pw->valuestring : "");
        if (!r->username || !r->password) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "HttpHeaders");
    if (h) {
        if (!cJSON_IsObject(h)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"HttpHeaders\" must be an object of strings");
        for (const cJSON *e = h->child; e; e = e->next)
            if (!cJSON_IsString(e) || !*e->string || strpbrk(e->string, ":\r\n") || strpbrk(e->valuestring, "\r\n"))
                return srv_fail(err, SRV_BAD_FILE_FORMAT, "bad HTTP header \"%.100s\"", e->string);
        r->headers = cJSON_Duplicate(h, true);
    }
    static const char *const files[] = { "CertificateFile", "CertificateKeyFile", "CertificateKeyPassword" };
    char **dst[] = { &r->cert_file, &r->key_file, &r->key_password };
    for (size_t i = 0; i < 3; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, files[i]);
        if (f && !cJSON_IsString(f) && !cJSON_IsNull(f))
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"%s\" must be a string", files[i]);
        *dst[i] = dup_str(f);
    }
    if (r->key_file && !r->cert_file)
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"CertificateKeyFile\" needs \"CertificateFile\"");
    if (!file_exists(err, "certificate", r->cert_file) || !file_exists(err, "key", r->key_file)) return false;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "Pkcs11");
    if (p && !cJSON_IsBool(p)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Pkcs11\" must be true or false");
    r->pkcs11 = cJSON_IsTrue(p);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "Timeout");
    if (t && (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble > 86400))
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Timeout\" must be a number of seconds (0: HttpTimeout)");
    r->timeout = t ? (int)t->valuedouble : 0;
    static const char *const known[] = { "Url", "Username", "Password", "HttpHeaders", "CertificateFile",
                                         "CertificateKeyFile", "CertificateKeyPassword", "Pkcs11", "Timeout" };
    for (const cJSON *e = v->child; e; e = e->next) {
        bool k = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !k; i++) k = !strcmp(e->string, known[i]);
        if (k) continue;
        if (!r->extra && !(r->extra = cJSON_CreateObject())) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        cJSON_AddItemToObject(r->extra, e->string, cJSON_Duplicate(e, true));
    }
    return true;
}

/* Orders an object's members by name, as Orthanc prints its JSON (std::map). */
static void sort_members(cJSON *o)
{
    cJSON *sorted = NULL;
    while (o->child) {
        cJSON *e = o->child;
        o->child = e->next;
        cJSON **at = &sorted;
        while (*at && strcmp((*at)->string, e->string) <= 0) at = &(*at)->next;
        e->next = *at;
        *at = e;
    }
    cJSON *prev = NULL;
    for (cJSON *e = sorted; e; e = e->next) {
        e->prev = prev;
        prev = e;
    }
    if (sorted) sorted->prev = prev; /* cJSON keeps the last member in child->prev */
    o->child = sorted;
}

static cJSON *remote_json(const HttpcRemote *r, bool full)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (r->cert_file) {
        cJSON_AddStringToObject(o, "CertificateFile", r->cert_file);
        if (r->key_file) cJSON_AddStringToObject(o, "CertificateKeyFile", r->key_file);
        if (full && r->key_password) cJSON_AddStringToObject(o, "CertificateKeyPassword", r->key_password);
        else if (r->key_file) cJSON_AddNullToObject(o, "CertificateKeyPassword");
    }
    if (full) {
        cJSON_AddItemToObject(o, "HttpHeaders", r->headers ? cJSON_Duplicate(r->headers, true) : cJSON_CreateObject());
    } else {
        cJSON *names = cJSON_AddArrayToObject(o, "HttpHeaders");
        for (const cJSON *h = r->headers ? r->headers->child : NULL; names && h; h = h->next)
            cJSON_AddItemToArray(names, cJSON_CreateString(h->string));
    }
    if (r->username) {
        if (full) cJSON_AddStringToObject(o, "Password", r->password ? r->password : "");
        else cJSON_AddNullToObject(o, "Password");
    }
    cJSON_AddBoolToObject(o, "Pkcs11", r->pkcs11);
    cJSON_AddNumberToObject(o, "Timeout", r->timeout);
    cJSON_AddStringToObject(o, "Url", r->url);
    if (r->username) cJSON_AddStringToObject(o, "Username", r->username);
    for (const cJSON *e = r->extra ? r->extra->child : NULL; e; e = e->next) {
        if (full || cJSON_IsString(e)) {
            cJSON_AddItemToObject(o, e->string, cJSON_Duplicate(e, true));
        } else if (cJSON_IsBool(e)) { /* Orthanc keeps these as strings: true -> "1" */
            cJSON_AddStringToObject(o, e->string, cJSON_IsTrue(e) ? "1" : "0");
        } else {
            char *t = cJSON_PrintUnformatted(e);
            if (t) cJSON_AddStringToObject(o, e->string, t);
            free(t);
        }
    }
    sort_members(o);
    return o;
}

cJSON *httpc_remote_public_json(const HttpcRemote *r) { return remote_json(r, false); }
cJSON *httpc_remote_full_json(const HttpcRemote *r) { return remote_json(r, true); }

bool httpc_remote_copy(SrvError *err, const HttpcRemote *src, HttpcRemote *dst)
{
    cJSON *j = httpc_remote_full_json(src);
    if (!j) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    SrvError e2 = { 0 };
    bool ok = httpc_remote_parse(&e2, j, dst);
    cJSON_Delete(j);
    if (!ok && err) *err = e2;
    return ok;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* libcurl's global set-up (OpenSSL's with it: ~3.5 MB of resident library pages) waits for
 * the first client, so that a server that never calls a peer does not carry it. pthread_once
 * keeps it to one thread; libcurl >= 7.84 (CURL_VERSION_THREADSAFE) and OpenSSL 3 make the
 * set-up itself safe beside the other threads, so only an older libcurl is set up in main. */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_rc = CURLE_OK;
static atomic_bool g_curl_done;

static void curl_setup(void)
{
    g_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    atomic_store(&g_curl_done, g_curl_rc == CURLE_OK);
}

bool httpc_global_init(SrvError *err)
{
#ifdef CURL_VERSION_THREADSAFE
    if (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_THREADSAFE) return true;
#endif
    pthread_once(&g_curl_once, curl_setup);
    return g_curl_rc == CURLE_OK || srv_fail(err, SRV_INTERNAL, "libcurl: %s", curl_easy_strerror(g_curl_rc));
}

void httpc_global_cleanup(void)
{
    if (atomic_load(&g_curl_done)) curl_global_cleanup();
}

HttpcClient *httpc_client_new(Srv *srv)
{
    HttpcClient *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = srv;
    pthread_once(&g_curl_once, curl_setup);
    c->curl = g_curl_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (!c->curl) {
        free(c);
        return NULL;
    }
    return c;
}

void httpc_client_free(HttpcClient *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

typedef struct Xfer {
    const HttpcRequest *rq;
    HttpcResponse *resp;
    const char *mem;      /* buffer body */
    size_t mem_left;
    bool read_failed;
    bool write_failed;
    bool too_large;
} Xfer;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    Xfer *x = ud;
    size_t max = size * nitems, n;
    if (x->rq->read) {
        n = x->rq->read(x->rq->read_ctx, buf, max);
        if (n == (size_t)-1) {
            x->read_failed = true;
            return CURL_READFUNC_ABORT;
        }
    } else {
        n = x->mem_left < max ? x->mem_left : max;
        memcpy(buf, x->mem, n);
        x->mem += n;
        x->mem_left -= n;
    }
    x->resp->sent += n;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    Xfer *x = ud;
    size_t n = size * nmemb;
    if (x->rq->write) {
        if (!x->rq->write(x->rq->write_ctx, data, n)) {
            x->write_failed = true;
            return 0;
        }
        return n;
    }
    int rc = buf_append(&x->resp->body, data, n);
    if (rc != BUF_OK) {
        x->too_large = rc == BUF_TOO_LARGE;
        x->write_failed = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
    Xfer *x = ud;
    size_t n = size * nitems;
    if (x->rq->header) x->rq->header(x->rq->header_ctx, data, n);
    return n;
}

void httpc_response_cleanup(HttpcResponse *resp)
{
    if (resp) buf_free(&resp->body);
}

bool httpc_request(SrvError *err, HttpcClient *c, const HttpcRemote *r, const HttpcRequest *rq,
                   HttpcResponse *resp)
{
    memset(resp, 0, sizeof *resp);
    buf_init(&resp->body, rq->max_answer ? rq->max_answer : (size_t)64 << 20);
    if (r->pkcs11) return srv_fail(err, SRV_NOT_IMPLEMENTED, "PKCS#11 authentication is not supported");
    const Cfg *cfg = &c->srv->cfg;
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    bool ok = false;
    Xfer x = { .rq = rq, .resp = resp, .mem = rq->body, .mem_left = rq->body_len };
    size_t ulen = strlen(r->url) + strlen(rq->path ? rq->path : "") + 1;
    url = malloc(ulen);
    if (!url) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    snprintf(url, ulen, "%s%s", r->url, rq->path ? rq->path : "");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    long timeout = r->timeout > 0 ? r->timeout : cfg->http_timeout_client;
    if (timeout > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout > 0 && timeout < 30 ? timeout : 30L);
    if (r->username) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, r->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (r->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, r->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        if (r->key_file) {
            curl_easy_setopt(h, CURLOPT_SSLKEY, r->key_file);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (r->key_password) curl_easy_setopt(h, CURLOPT_KEYPASSWD, r->key_password);
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg->https_verify_peers ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg->https_verify_peers ? 2L : 0L);
    if (cfg->https_ca_certificates && *cfg->https_ca_certificates)
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->https_ca_certificates);
    if (cfg->http_proxy && *cfg->http_proxy) curl_easy_setopt(h, CURLOPT_PROXY, cfg->http_proxy);
    for (const cJSON *e = r->headers ? r->headers->child : NULL; e; e = e->next) {
        char line[2048];
        snprintf(line, sizeof line, "%s: %s", e->string, e->valuestring);
        struct curl_slist *n = curl_slist_append(hdrs, line);
        if (!n) {
            srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    for (size_t i = 0; i < rq->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, rq->headers[i]);
        if (!n) {
            srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    /* no "Expect: 100-continue" round trip before bodies (Orthanc's server answers it, but a
     * second wait per instance costs) */
    struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
    if (n) hdrs = n;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    const char *m = rq->method ? rq->method : "GET";
    bool has_body = rq->read || rq->body;
    if (!strcmp(m, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(m, "POST") || !strcmp(m, "PUT")) {
        if (!strcmp(m, "POST")) curl_easy_setopt(h, CURLOPT_POST, 1L);
        else curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        int64_t len = rq->read ? rq->read_len : (int64_t)rq->body_len;
        if (!has_body) len = 0;
        if (!strcmp(m, "POST")) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        else curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &resp->seconds);
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
    if (rc != CURLE_OK) {
        if (x.read_failed) srv_fail(err, SRV_NETWORK_PROTOCOL, "the request body could not be read");
        else if (x.too_large) srv_fail(err, SRV_NETWORK_PROTOCOL, "the answer of %s exceeds %zu bytes", url, resp->body.max);
        else if (rc == CURLE_OPERATION_TIMEDOUT) /* NetworkProtocol, as Orthanc reports it */
            srv_fail(err, SRV_NETWORK_PROTOCOL, "libCURL error: Timeout was reached (%lds)", timeout);
        else srv_fail(err, SRV_NETWORK_PROTOCOL, "libCURL error: %s", curl_easy_strerror(rc));
        SRV_LOG_INFO("httpc", "%s %s: %s%s%s", m, url, curl_easy_strerror(rc), ebuf[0] ? " - " : "", ebuf);
        goto out;
    }
    SRV_LOG_DEBUG("httpc", "%s %s -> %ld (%.3f s)", m, url, resp->status, resp->seconds);
    ok = true;
out:
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    free(url);
    return ok;
}

bool httpc_get_json(SrvError *err, HttpcClient *c, const HttpcRemote *r, const char *path, cJSON **out)
{
    *out = NULL;
    HttpcRequest rq = { .method = "GET", .path = path };
    HttpcResponse resp;
    if (!httpc_request(err, c, r, &rq, &resp)) {
        httpc_response_cleanup(&resp);
        return false;
    }
    bool ok;
    if (resp.status < 200 || resp.status >= 300)
        ok = srv_fail(err, SRV_NETWORK_PROTOCOL, "%s%s answered HTTP status %ld", r->url, path, resp.status);
    else if (!(*out = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len)))
        ok = srv_fail(err, SRV_NETWORK_PROTOCOL, "%s%s did not answer JSON", r->url, path);
    else
        ok = true;
    httpc_response_cleanup(&resp);
    return ok;
}
