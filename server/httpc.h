/* httpc.h -- our HTTP client (server/httpc.c, prefix httpc_), on libcurl: what Orthanc peers
 * (server/peers.c) and DICOMweb servers (server/dwclient.c) are reached with.
 *
 * A remote (HttpcRemote) is Orthanc's description of another web server, shared by
 * "OrthancPeers" and "DicomWeb.Servers": a base URL, Basic credentials, extra headers, a client
 * certificate (CertificateFile / CertificateKeyFile / CertificateKeyPassword), a timeout. The
 * global options come from the configuration: HttpTimeout (default for a remote's 0), HttpsVerifyPeers,
 * HttpsCACertificates, HttpProxy.
 *
 * Request bodies are either a buffer or a read callback (streamed: a study never has to be in
 * memory); answers go to a capped buffer or a write callback. A client (HttpcClient) keeps one
 * curl handle so consecutive requests reuse the connection (a job's steps).
 * Threads: a client is used by one thread at a time; remotes are plain values.
 */
#ifndef MP_HTTPC_H
#define MP_HTTPC_H

#include "common/buf.h"
#include "server/server.h"

#define HTTPC_URL_LEN 1024

typedef struct HttpcRemote {
    char url[HTTPC_URL_LEN];   /* always ends with '/' */
    char *username;            /* NULL: no authentication */
    char *password;
    cJSON *headers;            /* {"Name": "value"} or NULL */
    char *cert_file, *key_file, *key_password;
    bool pkcs11;               /* accepted and shown; PKCS#11 is not supported (refused on use) */
    int timeout;               /* seconds, 0: HttpTimeout */
    cJSON *extra;              /* other keys of the object form, kept for the owner (DICOMweb's
                                  HasDelete, ChunkedTransfers, ...); NULL if none */
} HttpcRemote;

/* Orthanc's forms: [url], [url, user, password], or {"Url", "Username", "Password",
 * "HttpHeaders", "CertificateFile", "CertificateKeyFile", "CertificateKeyPassword", "Pkcs11",
 * "Timeout", ...}. Certificate files must exist (SRV_INEXISTENT_FILE otherwise, as Orthanc).
 * out is zeroed first; release with httpc_remote_cleanup() (also after a failure). */
bool httpc_remote_parse(SrvError *err, const cJSON *v, HttpcRemote *out);
void httpc_remote_cleanup(HttpcRemote *r);
bool httpc_remote_copy(SrvError *err, const HttpcRemote *src, HttpcRemote *dst);
/* Orthanc's public form (GET /peers?expand): HttpHeaders as a list of names, Password null,
 * CertificateKeyPassword null. */
cJSON *httpc_remote_public_json(const HttpcRemote *r);
/* The full form, secrets included (what is saved to disk). */
cJSON *httpc_remote_full_json(const HttpcRemote *r);

/* libcurl's global state: httpc_global_init in main before any thread (it sets libcurl up
 * only where libcurl's set-up is not thread-safe; otherwise the first client does), and
 * httpc_global_cleanup at the end. */
bool httpc_global_init(SrvError *err);
void httpc_global_cleanup(void);

typedef struct HttpcClient HttpcClient;
HttpcClient *httpc_client_new(Srv *srv);
void httpc_client_free(HttpcClient *c);

/* Streamed request body: fill buf with at most max bytes; return the count, 0 at the end,
 * (size_t)-1 on failure (the request is aborted; the callback explains through its ctx). */
typedef size_t (*HttpcReadFn)(void *ctx, char *buf, size_t max);
/* Streamed answer: false aborts the transfer. */
typedef bool (*HttpcWriteFn)(void *ctx, const char *data, size_t len);

typedef struct HttpcRequest {
    const char *method;        /* "GET", "POST", "PUT", "DELETE" */
    const char *path;          /* appended to the remote's url (no leading '/'); may carry a query */
    const char *const *headers;/* extra "Name: value" lines */
    size_t nheaders;
    /* body: a buffer, or a reader (len -1: unknown, sent chunked) */
    const void *body;
    size_t body_len;
    HttpcReadFn read;
    void *read_ctx;
    int64_t read_len;
    /* answer: write (streamed) or into HttpcResponse.body, at most max_answer bytes (0: 64 MB) */
    HttpcWriteFn write;
    void *write_ctx;
    size_t max_answer;
    /* answer headers: when set, called once per header line */
    void (*header)(void *ctx, const char *line, size_t len);
    void *header_ctx;
} HttpcRequest;

typedef struct HttpcResponse {
    long status;               /* HTTP status; 0 if no answer */
    char content_type[256];
    Buf body;                  /* when the request had no write callback; buf_free() it */
    double seconds;            /* total time */
    uint64_t sent;             /* request body bytes sent */
} HttpcResponse;

/* Performs the request. Transport failures (no connection, timeout, TLS, aborted by a
 * callback, timeout) -> false, SRV_NETWORK_PROTOCOL "libCURL error: <curl's text>". Any HTTP status -> true, resp->status set (the caller decides). resp is
 * initialised here; release with httpc_response_cleanup(). */
bool httpc_request(SrvError *err, HttpcClient *c, const HttpcRemote *r, const HttpcRequest *rq,
                   HttpcResponse *resp);
void httpc_response_cleanup(HttpcResponse *resp);

/* Convenience: GET r's path and parse the answer as JSON; a non-2xx status fails with
 * SRV_NETWORK_PROTOCOL naming it. *out is a new tree. */
bool httpc_get_json(SrvError *err, HttpcClient *c, const HttpcRemote *r, const char *path,
                    cJSON **out);

#endif
