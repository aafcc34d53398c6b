/* http.c -- libmicrohttpd glue.
 *
 * DESIGN: MHD runs its own thread pool (HttpThreadsCount, default cores x 2). The access
 * handler runs several times per request: the first call creates the RestCall (query
 * arguments, remote address, body ceiling from Content-Length, MaximumUploadSize or the JSON
 * ceiling: an oversized body is refused with 413 before a byte of it is read; the access rules
 * of auth.c: 403 for a remote peer (at once, body never read), 401 without valid credentials,
 * answered after the body was read and dropped so that the connection serves the client's
 * retry); the middle calls append
 * the body (held once, allocated to its
 * announced length; past SRV_SPOOL_THRESHOLD written to a spool file instead, see rest.h); the last call dispatches to the route table and queues the answer. The
 * RestCall dies in the completion callback, which also runs for aborted requests. Bodies go
 * to MHD with MHD_RESPMEM_MUST_FREE; stored files go as file descriptors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "rest/rest_int.h"

struct Rest {
    struct MHD_Daemon *daemon;
    Srv *srv;
    char *pem; /* SslCertificate's text while the daemon runs, NULL without TLS */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- replies ---------------------------------------------------------------------------- */

static void reset_reply(RestCall *call)
{
    free(call->resp);
    call->resp = NULL;
    call->resp_len = 0;
    if (call->resp_fd >= 0) close(call->resp_fd);
    call->resp_fd = -1;
    if (call->stream_free) call->stream_free(call->stream_cls);
    call->stream_read = NULL;
    call->stream_free = NULL;
    call->stream_cls = NULL;
}

void rest_reply_buffer(RestCall *call, int status, const char *type, char *buf, size_t len)
{
    reset_reply(call);
    call->status = status;
    call->resp_type = type;
    call->resp = buf;
    call->resp_len = len;
}

void rest_reply_text(RestCall *call, int status, const char *type, const char *text)
{
    char *copy = strdup(text);
    rest_reply_buffer(call, status, type, copy, copy ? strlen(copy) : 0);
}

void rest_reply_job(RestCall *call, const char *job_id)
{
    char path[64 + JOB_ID_LEN];
    snprintf(path, sizeof path, "/jobs/%s", job_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ID", job_id);
    cJSON_AddStringToObject(o, "Path", path);
    rest_reply_json(call, 200, o);
}

cJSON *rest_job_wait(RestCall *call, const char *job_id)
{
    SrvError err = { 0 };
    cJSON *content = NULL;
    if (jobs_wait(&err, job_id, &content)) return content;
    cJSON_Delete(content);
    rest_reply_error(call, &err);
    return NULL;
}

/* A JSON answer as XML (Accept: application/xml, as Orthanc; errors stay JSON, as Orthanc's). */
static bool reply_xml(RestCall *call, int status, cJSON *json)
{
    Buf b;
    buf_init(&b, REST_MAX_REPLY);
    int rc = rest_json_to_xml(&b, json);
    cJSON_Delete(json);
    if (rc) {
        buf_free(&b);
        rest_fail_buf(call, rc, "XML answer");
        return false;
    }
    size_t n;
    char *s = buf_take(&b, &n);
    rest_reply_buffer(call, status, "application/xml; charset=utf-8", s, n);
    return true;
}

void rest_reply_json(RestCall *call, int status, cJSON *json)
{
    if (call->xml && json && status < 400) {
        reply_xml(call, status, json);
        return;
    }
    char *s = json ? cJSON_Print(json) : NULL;
    cJSON_Delete(json);
    Buf b;
    buf_init(&b, REST_MAX_REPLY);
    if (!s || buf_adopt(&b, s, strlen(s)) || buf_append(&b, "\n", 1)) { /* newline: like Orthanc */
        buf_free(&b);
        rest_reply_text(call, 500, "text/plain", "out of memory\n");
        return;
    }
    size_t n;
    s = buf_take(&b, &n);
    rest_reply_buffer(call, status, "application/json", s, n);
}

void rest_reply_fd(RestCall *call, const char *type, int fd, uint64_t size)
{
    reset_reply(call);
    call->status = 200;
    call->resp_type = type;
    call->resp_fd = fd;
    call->resp_fd_size = size;
}

void rest_reply_stream(RestCall *call, const char *type, RestStreamRead read, void (*free_fn)(void *), void *cls)
{
    reset_reply(call);
    call->status = 200;
    call->resp_type = type;
    call->stream_read = read;
    call->stream_free = free_fn;
    call->stream_cls = cls;
}

/* MHD pulls a streamed body through this; the producer's read blocks until bytes are ready. */
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    RestCall *call = cls;
    ssize_t n = call->stream_read(call->stream_cls, buf, max);
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static const char *http_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

void rest_reply_error(RestCall *call, const SrvError *err)
{
    int status = srv_error_http_status(err);
    cJSON *j = cJSON_CreateObject();
    if (err->message[0]) cJSON_AddStringToObject(j, "Details", err->message);
    cJSON_AddStringToObject(j, "HttpError", http_reason(status));
    cJSON_AddNumberToObject(j, "HttpStatus", status);
    cJSON_AddStringToObject(j, "Message", srv_error_text(err->code));
    cJSON_AddStringToObject(j, "Method", call->method);
    cJSON_AddStringToObject(j, "OrthancError", srv_error_text(err->code));
    cJSON_AddNumberToObject(j, "OrthancStatus", err->code);
    cJSON_AddStringToObject(j, "Uri", call->url);
    SRV_LOG(status >= 500 ? SRV_LOG_ERROR : SRV_LOG_INFO, "http", "%s %s -> %d %s%s%s",
            call->method, call->url, status, srv_error_text(err->code),
            err->message[0] ? ": " : "", err->message);
    rest_reply_json(call, status, j);
}

void rest_fail_buf(RestCall *call, int rc, const char *what)
{
    if (rc == BUF_TOO_LARGE) rest_fail(call, SRV_INTERNAL, "the %s exceeds its ceiling", what);
    else rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory for the %s", what);
}

void rest_fail(RestCall *call, int code, const char *fmt, ...)
{
    SrvError e = { .code = code };
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    rest_reply_error(call, &e);
}

void rest_add_header(RestCall *call, const char *name, const char *value)
{
    for (int i = 0; i < 2; i++) {
        if (call->extra_header[i][0][0]) continue;
        snprintf(call->extra_header[i][0], sizeof call->extra_header[i][0], "%s", name);
        snprintf(call->extra_header[i][1], sizeof call->extra_header[i][1], "%s", value);
        return;
    }
}

/* ---- arguments ---------------------------------------------------------------------------- */

const char *rest_arg(const RestCall *call, const char *key)
{
    for (size_t i = 0; i < call->nargs; i++)
        if (!strcmp(call->args[i].key, key)) return call->args[i].value;
    return NULL;
}

bool rest_arg_bool(const RestCall *call, const char *key)
{
    const char *v = rest_arg(call, key);
    return v && strcasecmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

bool rest_arg_u64(RestCall *call, const char *key, uint64_t def, uint64_t *out)
{
    const char *v = rest_arg(call, key);
    *out = def;
    if (!v) return true;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "argument \"%s\" must be a non-negative integer", key);
        return false;
    }
    *out = x;
    return true;
}

cJSON *rest_body_json(RestCall *call)
{
    if (call->body_len == 0) return cJSON_CreateObject();
    if (call->body_len > REST_MAX_JSON_BODY) {
        SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 413 };
        snprintf(e.message, sizeof e.message, "JSON body of %zu bytes exceeds the limit of %zu",
                 call->body_len, REST_MAX_JSON_BODY);
        rest_reply_error(call, &e);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(call->body, call->body_len);
    if (!j) rest_fail(call, SRV_BAD_JSON, "the request body is not valid JSON");
    return j;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    RestCall *call = cls;
    if (call->nargs >= REST_MAX_ARGS || !key) return MHD_YES;
    call->args[call->nargs].key = strdup(key);
    call->args[call->nargs].value = strdup(value ? value : "");
    if (call->args[call->nargs].key && call->args[call->nargs].value) call->nargs++;
    else { free(call->args[call->nargs].key); free(call->args[call->nargs].value); }
    return MHD_YES;
}

/* ---- the call's life ---------------------------------------------------------------------- */

static void call_free(RestCall *call)
{
    if (!call) return;
    reset_reply(call);
    if (call->body_state_free) call->body_state_free(call->body_state);
    buf_free(&call->body_buf);
    if (call->body_map) munmap(call->body_map, call->body_len);
    if (call->spooled) srv_spool_discard(&call->body_spool); /* unless a handler stored it */
    free(call->url);
    free(call->segbuf);
    free(call->user);
    for (size_t i = 0; i < call->nargs; i++) {
        free(call->args[i].key);
        free(call->args[i].value);
    }
    free(call);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)conn; (void)toe;
    RestCall *call = *req_cls;
    if (call) metrics_rest_end(call->metrics_token); /* also for aborted requests */
    int sig = call ? call->signal_after : 0;
    call_free(call);
    *req_cls = NULL;
    if (sig) kill(getpid(), sig); /* /tools/shutdown, /tools/reset: main() sigwait()s for it */
}

static void split_path(RestCall *call)
{
    call->segbuf = strdup(call->url);
    if (!call->segbuf) return;
    char *save = NULL;
    for (char *s = strtok_r(call->segbuf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (call->nseg == REST_MAX_SEGMENTS) { call->nseg = 0; return; } /* no route is that deep */
        if (!strcmp(s, ".") || !strcmp(s, "..")) call->bad_path = true;
        call->seg[call->nseg++] = s;
    }
}

static void format_ip(const struct sockaddr *sa, char *out, size_t size)
{
    out[0] = '\0';
    if (!sa) return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
        else inet_ntop(AF_INET6, a, out, (socklen_t)size);
    }
}

static enum MHD_Result queue(RestCall *call)
{
    struct MHD_Response *r;
    if (call->resp_fd >= 0) {
        r = MHD_create_response_from_fd64(call->resp_fd_size, call->resp_fd);
        if (r) call->resp_fd = -1; /* MHD closes it */
    } else if (call->stream_read) {
        /* the stream lives until the call is freed (completed callback), after MHD's last read */
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256 * 1024, stream_cb, call, NULL);
    } else {
        r = MHD_create_response_from_buffer(call->resp_len, call->resp ? call->resp : (char *)"",
                                            call->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (r) call->resp = NULL; /* MHD frees it */
    }
    if (!r) return MHD_NO;
    if (call->resp_type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, call->resp_type);
    if (call->allow[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, call->allow);
    for (int i = 0; i < 2; i++)
        if (call->extra_header[i][0][0])
            MHD_add_response_header(r, call->extra_header[i][0], call->extra_header[i][1]);
    enum MHD_Result ret = MHD_queue_response(call->conn, (unsigned)call->status, r);
    call->queued = true;
    metrics_rest_duration(call->metrics_token); /* handler time, once: queue() runs once */
    MHD_destroy_response(r);
    return ret;
}

/* Inflates a gzip body in place of the original, within the same ceiling. BUF_* result in
 * call->body_rc when the inflated body does not fit (or memory runs out). */
static bool gunzip_body(RestCall *call)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return false;
    Buf out;
    buf_init(&out, call->body_buf.max);
    size_t guess = call->body_buf.len * 4 + 4096;
    bool ok = false;
    if ((call->body_rc = buf_reserve(&out, guess < out.max ? guess : out.max))) goto done;
    zs.next_in = (Bytef *)call->body_buf.data;
    zs.avail_in = (uInt)call->body_buf.len;
    for (;;) {
        if (out.len + 1 == out.cap && (call->body_rc = buf_reserve(&out, out.len))) goto done;
        zs.next_out = (Bytef *)out.data + out.len;
        zs.avail_out = (uInt)(out.cap - 1 - out.len);
        int rc = inflate(&zs, Z_NO_FLUSH);
        buf_set_len(&out, out.cap - 1 - zs.avail_out);
        if (rc == Z_STREAM_END) { ok = true; break; }
        if (rc != Z_OK && rc != Z_BUF_ERROR) goto done;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) goto done; /* truncated */
    }
done:
    inflateEnd(&zs);
    if (ok) {
        buf_free(&call->body_buf);
        call->body_buf = out;
    } else {
        buf_free(&out);
    }
    return ok;
}

/* Moves the body to a spool file (what arrived so far in memory first): past the threshold,
 * or at once when Content-Length announces a large body. false: body_rc/body_err set. */
static bool spool_body(RestCall *call)
{
    if (!srv_spool_open(&call->body_err, call->srv, &call->body_spool)) {
        call->body_rc = REST_BODY_IO;
        return false;
    }
    call->spooled = true;
    if (call->body_buf.len &&
        !srv_spool_write(&call->body_err, &call->body_spool, call->body_buf.data, call->body_buf.len)) {
        call->body_rc = REST_BODY_IO;
        return false;
    }
    buf_free(&call->body_buf);
    return true;
}

/* Appends a chunk of the body, to memory or to the spool, within the ceiling. */
static void body_append(RestCall *call, const char *data, size_t n)
{
    size_t max = call->body_buf.max; /* the ceiling, kept after a spool freed the buffer */
    if (!call->spooled) {
        /* gzip bodies are inflated in memory (gunzip_body): never spooled; nor are JSON ones
         * (their ceiling, REST_MAX_JSON_BODY, keeps them small) */
        bool may_spool = !call->gzip && max > SRV_SPOOL_THRESHOLD;
        if (!may_spool || call->body_buf.len + n <= SRV_SPOOL_THRESHOLD) {
            if ((call->body_rc = buf_append(&call->body_buf, data, n))) buf_free(&call->body_buf);
            return;
        }
        if (!spool_body(call)) return;
    }
    if (call->body_spool.len + n > max) {
        call->body_rc = BUF_TOO_LARGE;
        return;
    }
    if (!srv_spool_write(&call->body_err, &call->body_spool, data, n)) call->body_rc = REST_BODY_IO;
}

ssize_t rest_body_read(RestCall *call, uint64_t offset, void *buf, size_t max)
{
    if (call->spooled) return srv_spool_read(&call->body_spool, offset, buf, max);
    if (offset >= call->body_len) return 0;
    size_t n = call->body_len - (size_t)offset;
    if (n > max) n = max;
    memcpy(buf, call->body + offset, n);
    return (ssize_t)n;
}

SrvSpool *rest_body_spool(RestCall *call)
{
    return call->spooled && call->body_spool.path[0] ? &call->body_spool : NULL;
}

/* 413, with HttpStatus 413 in the JSON too. */
static void too_large(RestCall *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void too_large(RestCall *call, const char *fmt, ...)
{
    SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 413 };
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    rest_reply_error(call, &e);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
    (void)version;
    Rest *rest = cls;
    RestCall *call = *req_cls;

    static _Thread_local bool named;
    if (!named) {
        srv_thread_name("http");
        named = true;
    }
    if (!call) { /* normally made by uri_seen() */
        call = calloc(1, sizeof *call);
        if (!call) return MHD_NO;
        call->resp_fd = -1;
        *req_cls = call;
    }
    if (!call->set_up) { /* first call: set up, refuse early what we can */
        call->set_up = true;
        call->srv = rest->srv;
        call->conn = conn;
        call->method = method;
        call->started_ms = now_ms();
        call->url = strdup(url);
        *req_cls = call;
        call->metrics_token = metrics_rest_begin(); /* ended in completed() */
        if (!call->url) return MHD_NO;
        split_path(call);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, call);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        format_ip(sa, call->remote_ip, sizeof call->remote_ip);
        size_t body_max = (size_t)rest->srv->cfg.maximum_upload_size * 1024 * 1024;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        call->gzip = ce && !strcasecmp(ce, "gzip");
        /* As Orthanc: the Accept header cut at ';', an item equal to application/xml asks XML
         * answers, one equal to application/json JSON again (the last one wins). */
        const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        for (const char *p = accept; p && *p;) {
            size_t n = strcspn(p, ";");
            if (n == 15 && !strncmp(p, "application/xml", 15)) call->xml = true;
            if (n == 16 && !strncmp(p, "application/json", 16)) call->xml = false;
            p += n + (p[n] ? 1 : 0);
        }
        /* A body announced as JSON has the (smaller) JSON ceiling from the start. */
        if (ct && !strncasecmp(ct, "application/json", 16) && body_max > REST_MAX_JSON_BODY)
            body_max = REST_MAX_JSON_BODY;
        buf_init(&call->body_buf, body_max);
        unsigned long long announced = 0;
        bool bad_length = false;
        if (cl) {
            char *end;
            errno = 0;
            announced = strtoull(cl, &end, 10);
            bad_length = errno || end == cl || announced > body_max;
        }
        if (!rest_auth_admit(call, sa)) {
            /* 401: the answer waits for the end of the body, read and dropped (never kept nor
             * parsed), so that the connection stays usable for the client's retry with
             * credentials (httplib2, browsers, .NET, Java send the first try without). A client
             * waiting for "100 Continue" sends no body: answered at once; so is a body
             * announced above the limit (MHD then closes the connection). A 403 (remote peer
             * not allowed: no retry can succeed) is answered at once, its body never read. */
            call->refused = true;
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if (call->status != 401 || bad_length || (expect && !strcasecmp(expect, "100-continue")))
                return queue(call);
            return MHD_YES;
        }
        /* Orthanc's method faking: X-HTTP-Method-Override on any request, or ?_method= on a
         * GET; only PUT and DELETE (another value: 400 with no body, as Orthanc). */
        const char *ov = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-HTTP-Method-Override");
        if (!ov && !strcmp(method, "GET")) ov = rest_arg(call, "_method");
        if (ov && *ov) {
            if (!strcasecmp(ov, "PUT")) call->method = "PUT";
            else if (!strcasecmp(ov, "DELETE")) call->method = "DELETE";
            else {
                SRV_LOG_INFO("http", "%s %s: unknown method override \"%.32s\"", method, url, ov);
                rest_reply_buffer(call, 400, NULL, NULL, 0);
                return queue(call);
            }
        }
        if (call->query_args > REST_MAX_QUERY_ARGS) {
            SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 414 };
            snprintf(e.message, sizeof e.message,
                     "the query string has %zu arguments, more than the limit of %d",
                     call->query_args, REST_MAX_QUERY_ARGS);
            rest_reply_error(call, &e);
            return queue(call);
        }
        /* A route that streams its body (RestRoute.body) gets it chunk by chunk, not held. */
        RestBodyFn body_fn = call->bad_path ? NULL : rest_body_route_find(call);
        if (body_fn) {
            if (bad_length) {
                too_large(call, "request body of %s bytes exceeds the limit of %zu bytes", cl, body_max);
                return queue(call);
            }
            if (call->gzip) {
                SrvError e = { .code = SRV_BAD_REQUEST, .http_status = 415 };
                snprintf(e.message, sizeof e.message, "Content-Encoding gzip is not accepted on %s", url);
                rest_reply_error(call, &e);
                return queue(call);
            }
            call->body_fn = body_fn;
            if (!call->body_fn(call, NULL, 0)) return queue(call);
            return MHD_YES;
        }
        if (cl) {
            unsigned long long n = announced;
            if (bad_length) {
                too_large(call, "request body of %s bytes exceeds the limit of %zu bytes", cl,
                          body_max);
                return queue(call);
            }
            /* large: written to a spool file as it arrives (never held in memory) */
            if (n > SRV_SPOOL_THRESHOLD && !call->gzip) {
                if (!spool_body(call)) {
                    rest_reply_error(call, &call->body_err);
                    return queue(call);
                }
                return MHD_YES;
            }
            /* held once: allocated to its announced length */
            if (n > 0 && buf_reserve(&call->body_buf, (size_t)n)) {
                rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "cannot hold a body of %llu bytes", n);
                return queue(call);
            }
        }
        return MHD_YES;
    }

    if (call->queued) { /* answered at the first call: swallow the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size && call->refused) { /* refused: drop the body, within the limit */
        call->discarded += *upload_data_size;
        *upload_data_size = 0;
        return call->discarded > call->body_buf.max ? MHD_NO : MHD_YES; /* MHD_NO: close */
    }

    if (*upload_data_size && call->body_fn) { /* body chunk of a streaming route */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (call->body_failed) return MHD_YES; /* refused: swallow the rest */
        call->body_seen += n;
        if (call->body_seen > call->body_buf.max) {
            too_large(call, "request body exceeds the limit of %zu bytes", call->body_buf.max);
            call->body_failed = true;
        } else if (!call->body_fn(call, upload_data, n)) {
            call->body_failed = true;
        }
        return MHD_YES;
    }

    if (*upload_data_size) { /* body chunk */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (call->body_rc) return MHD_YES; /* already refused: swallow the rest */
        body_append(call, upload_data, n);
        if (call->body_rc && call->spooled) srv_spool_discard(&call->body_spool); /* refused: drop it now */
        return MHD_YES;
    }

    /* last call */
    if (call->refused) return queue(call); /* the 401 / 403 prepared at the first call */
    if (call->body_failed) {
        /* the streaming route's error reply is set */
    } else if (call->body_rc == BUF_TOO_LARGE) {
        too_large(call, "request body exceeds the limit of %zu bytes", call->body_buf.max);
    } else if (call->body_rc == REST_BODY_IO) {
        rest_reply_error(call, &call->body_err);
    } else if (call->body_rc) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory while receiving the body");
    } else if (call->gzip && call->body_buf.len && !gunzip_body(call)) {
        if (call->body_rc == BUF_TOO_LARGE)
            too_large(call, "inflated body exceeds the limit of %zu bytes", call->body_buf.max);
        else if (call->body_rc)
            rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory while inflating the body");
        else
            rest_fail(call, SRV_BAD_REQUEST, "the gzip body cannot be inflated");
    } else if (call->bad_path) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s", call->url);
    } else if (call->spooled && call->body_spool.len > SIZE_MAX) {
        too_large(call, "request body too large for this platform");
    } else if (call->spooled && call->body_spool.len &&
               (call->body_map = mmap(NULL, (size_t)call->body_spool.len, PROT_READ, MAP_SHARED,
                                      call->body_spool.fd, 0)) == MAP_FAILED) {
        call->body_map = NULL;
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "cannot map the body's spool file: %s", strerror(errno));
    } else {
        call->body = call->spooled ? call->body_map : call->body_buf.data;
        call->body_len = call->spooled ? (size_t)call->body_spool.len : call->body_buf.len;
        rest_dispatch(call);
    }
    if (!call->status) rest_fail(call, SRV_INTERNAL, "handler gave no answer");
    SRV_LOG_DEBUG("http", "%s %s -> %d (%.1f ms)", call->method, call->url, call->status,
                  now_ms() - call->started_ms);
    return queue(call);
}

/* MHD_OPTION_URI_LOG_CALLBACK: runs when the request line has arrived, before MHD files the
 * query arguments in the connection's memory pool. It makes the RestCall and counts the
 * arguments; past REST_MAX_QUERY_ARGS it empties the query string (the byte after '?' becomes
 * NUL, in MHD's own line buffer, which it hands us as const but parses after this call), so
 * that the pool cannot run out on arguments and the handler can answer 414. */
static void *uri_seen(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls; (void)conn;
    RestCall *call = calloc(1, sizeof *call);
    if (!call) return NULL;
    call->resp_fd = -1;
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (q && q[1]) {
        size_t n = 1;
        for (const char *p = q + 1; *p; p++)
            if (*p == '&') n++;
        call->query_args = n;
        if (n > REST_MAX_QUERY_ARGS) ((char *)q)[1] = '\0';
    }
    return call;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    SRV_LOG_WARN("http", "%s", msg);
}

/* Percent-decoding of the path and arguments (MHD's), except that a decoded NUL ("%00") becomes
 * 0x01 instead of cutting the string short: "/instances/<id>%00/file" must not reach the
 * handler as "/instances/<id>". No route or ID contains 0x01, so such a path is 404. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls; (void)conn;
    size_t n = MHD_http_unescape(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0') s[i] = '\x01';
    return n;
}

/* Reads the whole PEM file (certificate and private key, as Orthanc's SslCertificate). */
static char *read_pem(SrvError *err, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        srv_fail(err, SRV_INEXISTENT_FILE, "SslCertificate %s: %s", path, strerror(errno));
        return NULL;
    }
    Buf b;
    buf_init(&b, (size_t)1 << 20); /* a PEM is a few KB */
    for (;;) {
        int rc = buf_reserve(&b, 4096);
        if (rc == BUF_TOO_LARGE) {
            srv_fail(err, SRV_BAD_FILE_FORMAT, "SslCertificate %s is too large", path);
            goto fail;
        }
        if (rc) { srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); goto fail; }
        size_t n = fread(b.data + b.len, 1, b.cap - 1 - b.len, f);
        buf_set_len(&b, b.len + n);
        if (n == 0) break;
    }
    if (ferror(f)) { srv_fail(err, SRV_INEXISTENT_FILE, "cannot read SslCertificate %s", path); goto fail; }
    fclose(f);
    char *buf = buf_take(&b, NULL);
    if (!strstr(buf, "-----BEGIN CERTIFICATE-----") || !strstr(buf, "PRIVATE KEY-----")) {
        srv_fail(err, SRV_BAD_FILE_FORMAT,
                 "SslCertificate %s must hold a PEM certificate and its private key", path);
        free(buf);
        return NULL;
    }
    return buf;
fail:
    fclose(f);
    buf_free(&b);
    return NULL;
}

bool rest_start(SrvError *err, Srv *srv, Rest **out)
{
    Rest *rest = calloc(1, sizeof *rest);
    if (!rest) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    rest->srv = srv;
    unsigned threads = srv->cfg.http_threads > 0 ? (unsigned)srv->cfg.http_threads
                                                 : (unsigned)sysconf(_SC_NPROCESSORS_ONLN) * 2;
    if (threads < 1) threads = 2;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_DUAL_STACK;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
    struct MHD_OptionItem opts[16];
    size_t n = 0;
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) }
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL);
    OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
    /* HttpRequestTimeout: a connection idle that long (headers or body not coming) is closed */
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.http_timeout, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL);
    /* HttpConnectionLimit / HttpConnectionLimitPerIp: past them MHD closes the new
     * connection at accept */
    OPT(MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv->cfg.http_connection_limit, NULL);
    if (srv->cfg.http_connection_limit_per_ip > 0)
        OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)srv->cfg.http_connection_limit_per_ip, NULL);
    OPT(MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL);
    OPT(MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_seen, NULL);
    /* The per-connection pool holds the request line, the headers and one record per query
     * argument (MHD's default of 32 KB ran out at ~500 arguments and the client got no answer
     * at all). 256 KB holds REST_MAX_QUERY_ARGS arguments with room for the headers and the
     * answer; a longer line gets MHD's own 414. Pages are only touched as they are used. */
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024, NULL);
    if (srv->cfg.ssl_enabled) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            free(rest);
            return srv_fail(err, SRV_NOT_IMPLEMENTED,
                            "SslEnabled: this libmicrohttpd was built without TLS");
        }
        rest->pem = read_pem(err, srv->cfg.ssl_certificate);
        if (!rest->pem) { free(rest); return false; }
        flags |= MHD_USE_TLS;
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, rest->pem);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, rest->pem);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    rest->daemon = MHD_start_daemon(flags, (uint16_t)srv->cfg.http_port, NULL, NULL, handler, rest,
                                    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!rest->daemon) {
        /* Without IPv6 (some containers) dual stack fails: retry on IPv4 only. */
        flags &= ~(unsigned)MHD_USE_DUAL_STACK;
        rest->daemon = MHD_start_daemon(flags, (uint16_t)srv->cfg.http_port, NULL, NULL, handler,
                                        rest, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    }
    if (!rest->daemon) {
        free(rest->pem);
        free(rest);
        return srv_fail(err, SRV_INTERNAL, "cannot start the HTTP%s server on port %d",
                        srv->cfg.ssl_enabled ? "S" : "", srv->cfg.http_port);
    }
    SRV_LOG_INFO("http", "HTTP%s server listening on port %d (%u threads%s%s)",
                 srv->cfg.ssl_enabled ? "S" : "", srv->cfg.http_port, threads,
                 srv->cfg.remote_access_allowed ? ", remote access" : ", local only",
                 srv->cfg.authentication_enabled ? ", authentication" : "");
    if (srv->cfg.remote_access_allowed && !srv->cfg.authentication_enabled)
        SRV_LOG_WARN("http", "remote access is allowed without authentication");
    *out = rest;
    return true;
}

void rest_stop(Rest *rest)
{
    if (!rest) return;
    MHD_stop_daemon(rest->daemon);
    if (rest->pem) explicit_bzero(rest->pem, strlen(rest->pem)); /* holds the private key */
    free(rest->pem);
    free(rest);
}
