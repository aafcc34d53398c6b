/* http.c -- libmicrohttpd glue.
 *
 * DESIGN: MHD runs its own thread pool (HttpThreadsCount, default cores x 2). The access
 * handler runs several times per request: the first call creates the RestCall (query
 * arguments, remote address, body ceiling from Content-Length: an oversized body is refused
 * with 413 before it is read); the middle calls append the body (held once, allocated to its
 * announced length); the last call dispatches to the route table and queues the answer. The
 * RestCall dies in the completion callback, which also runs for aborted requests. Bodies go
 * to MHD with MHD_RESPMEM_MUST_FREE; stored files go as file descriptors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "rest/rest_int.h"

struct Rest {
    struct MHD_Daemon *daemon;
    Srv *srv;
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

void rest_reply_json(RestCall *call, int status, cJSON *json)
{
    char *s = json ? cJSON_Print(json) : NULL;
    cJSON_Delete(json);
    if (!s) {
        rest_reply_text(call, 500, "text/plain", "out of memory\n");
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2); /* trailing newline, like Orthanc */
    if (t) { s = t; s[n++] = '\n'; s[n] = '\0'; }
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
    case 415: return "Unsupported Media Type";
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
    free(call->body);
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
    call_free(*req_cls);
    *req_cls = NULL;
}

static void split_path(RestCall *call)
{
    call->segbuf = strdup(call->url);
    if (!call->segbuf) return;
    char *save = NULL;
    for (char *s = strtok_r(call->segbuf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (call->nseg == REST_MAX_SEGMENTS) { call->nseg = 0; return; } /* no route is that deep */
        call->seg[call->nseg++] = s;
    }
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
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
    MHD_destroy_response(r);
    return ret;
}

/* Inflates a gzip body in place of the original, within the same ceiling. */
static bool gunzip_body(RestCall *call)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return false;
    size_t cap = call->body_len * 4 + 4096, len = 0;
    if (cap > call->body_max) cap = call->body_max;
    char *out = malloc(cap);
    bool ok = false;
    if (!out) goto done;
    zs.next_in = (Bytef *)call->body;
    zs.avail_in = (uInt)call->body_len;
    for (;;) {
        if (len == cap) {
            if (cap >= call->body_max) { call->body_too_large = true; goto done; }
            size_t ncap = cap * 2 > call->body_max ? call->body_max : cap * 2;
            char *t = realloc(out, ncap);
            if (!t) goto done;
            out = t;
            cap = ncap;
        }
        zs.next_out = (Bytef *)out + len;
        zs.avail_out = (uInt)(cap - len);
        int rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc == Z_STREAM_END) { ok = true; break; }
        if (rc != Z_OK && rc != Z_BUF_ERROR) goto done;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) goto done; /* truncated */
    }
done:
    inflateEnd(&zs);
    if (ok) {
        free(call->body);
        call->body = out;
        call->body_len = len;
        call->body_cap = cap;
    } else {
        free(out);
    }
    return ok;
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
    if (!call) { /* first call: set up, refuse early what we can */
        call = calloc(1, sizeof *call);
        if (!call) return MHD_NO;
        call->resp_fd = -1;
        call->srv = rest->srv;
        call->conn = conn;
        call->method = method;
        call->started_ms = now_ms();
        call->url = strdup(url);
        *req_cls = call;
        if (!call->url) return MHD_NO;
        split_path(call);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, call);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        format_ip(sa, call->remote_ip, sizeof call->remote_ip);
        if (!rest->srv->cfg.remote_access_allowed && !is_loopback(sa)) {
            SrvError e = { .code = SRV_UNAUTHORIZED, .http_status = 403 };
            snprintf(e.message, sizeof e.message, "remote access is not allowed");
            rest_reply_error(call, &e);
            return queue(call);
        }
        call->body_max = (size_t)rest->srv->cfg.maximum_upload_size * 1024 * 1024;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
        call->gzip = ce && !strcasecmp(ce, "gzip");
        if (cl) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > call->body_max) {
                rest_fail(call, SRV_BAD_REQUEST, "request body of %llu bytes exceeds the limit of %zu", n, call->body_max);
                call->status = 413;
                return queue(call);
            }
            if (n > 0) {
                call->body = malloc((size_t)n);
                if (!call->body) {
                    rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "cannot hold a body of %llu bytes", n);
                    return queue(call);
                }
                call->body_cap = (size_t)n;
            }
        }
        return MHD_YES;
    }

    if (call->queued) { /* answered at the first call: swallow the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size) { /* body chunk */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (call->body_too_large) return MHD_YES;
        if (call->body_len + n > call->body_max) {
            call->body_too_large = true;
            free(call->body);
            call->body = NULL;
            call->body_len = call->body_cap = 0;
            return MHD_YES;
        }
        if (call->body_len + n > call->body_cap) {
            size_t cap = call->body_cap ? call->body_cap * 2 : 65536;
            while (cap < call->body_len + n) cap *= 2;
            if (cap > call->body_max) cap = call->body_max;
            char *t = realloc(call->body, cap);
            if (!t) { call->body_too_large = true; return MHD_YES; }
            call->body = t;
            call->body_cap = cap;
        }
        memcpy(call->body + call->body_len, upload_data, n);
        call->body_len += n;
        return MHD_YES;
    }

    /* last call */
    if (call->body_too_large) {
        rest_fail(call, SRV_BAD_REQUEST, "request body exceeds the limit of %zu bytes", call->body_max);
        call->status = 413;
    } else if (call->gzip && call->body_len && !gunzip_body(call)) {
        if (call->body_too_large) {
            rest_fail(call, SRV_BAD_REQUEST, "inflated body exceeds the limit of %zu bytes", call->body_max);
            call->status = 413;
        } else {
            rest_fail(call, SRV_BAD_REQUEST, "the gzip body cannot be inflated");
        }
    } else {
        rest_dispatch(call);
    }
    if (!call->status) rest_fail(call, SRV_INTERNAL, "handler gave no answer");
    SRV_LOG_DEBUG("http", "%s %s -> %d (%.1f ms)", call->method, call->url, call->status,
                  now_ms() - call->started_ms);
    return queue(call);
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
    rest->daemon = MHD_start_daemon(
        flags, (uint16_t)srv->cfg.http_port, NULL, NULL, handler, rest,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.http_timeout,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_END);
    if (!rest->daemon) {
        /* Without IPv6 (some containers) dual stack fails: retry on IPv4 only. */
        flags &= ~(unsigned)MHD_USE_DUAL_STACK;
        rest->daemon = MHD_start_daemon(
            flags, (uint16_t)srv->cfg.http_port, NULL, NULL, handler, rest,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_THREAD_POOL_SIZE, threads,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.http_timeout,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
            MHD_OPTION_CONNECTION_LIMIT, 1000u,
            MHD_OPTION_END);
    }
    if (!rest->daemon) {
        free(rest);
        return srv_fail(err, SRV_INTERNAL, "cannot start the HTTP server on port %d", srv->cfg.http_port);
    }
    SRV_LOG_INFO("http", "HTTP server listening on port %d (%u threads)", srv->cfg.http_port, threads);
    *out = rest;
    return true;
}

void rest_stop(Rest *rest)
{
    if (!rest) return;
    MHD_stop_daemon(rest->daemon);
    free(rest);
}
