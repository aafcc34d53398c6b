/* h_ohif.c -- the OHIF Viewer (v3) at /ohif/, on this server's DICOMweb routes.
 *
 * DESIGN: the viewer is npm's @ohif/app build (dist/), fetched by scripts/ohif.sh into a folder
 * git ignores and served from disk as it is, except for two files made here:
 * - index.html: the npm build links everything from "/" (href="/app.bundle.css",
 *   window.PUBLIC_URL = '/'); those absolute links get the /ohif/ prefix as the file is served.
 *   (The bundles' webpack public path, a constant in the code, was set by scripts/ohif.sh.)
 * - app-config.js: generated from the configuration, never the package's (which points at
 *   public demo servers): router base name /ohif, one DICOMweb data source on the page's own
 *   origin at DicomWeb's Root (so the browser sends the same credentials it used for the page),
 *   WADO-URI at /wado, STOW for uploads, no investigational-use dialog and no first-visit tour
 *   (both would cover the viewport).
 * Any other path under /ohif/ is a file of dist/ (with an ETag; 304 on If-None-Match); a path
 * whose last segment has no dot is a route of the single-page application (/ohif/viewer,
 * /ohif/viewer/dicomweb, ...) and gets index.html. Without the folder, /ohif/ answers a 404
 * HTML page saying how to get it. The files sit behind the same access rules as the API.
 *
 * The folder: OhifDirectory; when empty, <binary's folder>/../share/minipacs/ohif (an installed
 * layout, the Docker image), else the source tree's third_party/ohif/dist (a developer build).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "rest/rest_int.h"

#ifndef MINIPACS_OHIF_SOURCE_DIR
#define MINIPACS_OHIF_SOURCE_DIR "third_party/ohif/dist"
#endif

#define OHIF_PREFIX "/ohif/"
#define OHIF_MAX_INDEX ((size_t)1 << 20) /* index.html is ~10 KB */

static pthread_once_t dir_once = PTHREAD_ONCE_INIT;
static char ohif_dir[PATH_MAX]; /* "" when absent */
static const Cfg *dir_cfg;

static bool has_index(const char *dir)
{
    char p[PATH_MAX + 16];
    struct stat st;
    return snprintf(p, sizeof p, "%s/index.html", dir) < (int)sizeof p && stat(p, &st) == 0 &&
           S_ISREG(st.st_mode);
}

static void find_dir(void)
{
    const char *conf = dir_cfg->ohif_dir;
    if (conf && conf[0]) { /* configured: used as is, even if absent (the 404 page names it) */
        snprintf(ohif_dir, sizeof ohif_dir, "%s", conf);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char cand[PATH_MAX];
            if (strlen(exe) < sizeof cand - 32 &&
                snprintf(cand, sizeof cand, "%s/../share/minipacs/ohif", exe) < (int)sizeof cand &&
                has_index(cand)) {
                snprintf(ohif_dir, sizeof ohif_dir, "%s", cand);
                return;
            }
        }
    }
    if (has_index(MINIPACS_OHIF_SOURCE_DIR))
        snprintf(ohif_dir, sizeof ohif_dir, "%s", MINIPACS_OHIF_SOURCE_DIR);
}

static const char *get_dir(const Cfg *cfg)
{
    dir_cfg = cfg;
    pthread_once(&dir_once, find_dir);
    return ohif_dir;
}

/* Where the browser finds the DICOMweb routes: DicomWeb's PublicRoot, else its Root
 * ("/dicom-web/"). */
static const char *dicomweb_root(const Cfg *cfg)
{
    const CfgDicomWeb *d = &cfg->dicomweb;
    if (d->public_root && d->public_root[0]) return d->public_root;
    return d->root && d->root[0] ? d->root : "/dicom-web/";
}

static void reply_missing(RestCall *call, const char *dir)
{
    Buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_printf(&b,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>OHIF Viewer not installed</title></head>\n<body>\n"
        "<h1>The OHIF Viewer is not installed</h1>\n"
        "<p>This server serves the OHIF Viewer at <code>/ohif/</code> from a folder that is not "
        "part of the source tree (it is about 200 MB). It was looked for in %s.</p>\n"
        "<p>To get it, run <code>scripts/ohif.sh</code> (or <code>scripts/deps.sh</code>) in the "
        "source tree: it fetches npm's <code>@ohif/app</code> into "
        "<code>third_party/ohif/dist</code>. Or point the <code>OhifDirectory</code> option "
        "(environment <code>ORTHANC__OHIF_DIRECTORY</code>) at such a folder. The Docker image "
        "includes it.</p>\n</body></html>\n",
        dir[0] ? dir : "<code>OhifDirectory</code> (empty), <code>../share/minipacs/ohif</code> "
                       "beside the binary and the source tree's <code>third_party/ohif/dist</code>");
    if (rc) {
        buf_free(&b);
        rest_fail_buf(call, rc, "404 page");
        return;
    }
    size_t n;
    char *s = buf_take(&b, &n);
    rest_reply_buffer(call, 404, "text/html; charset=utf-8", s, n);
    SRV_LOG_INFO("http", "%s %s -> 404: the OHIF Viewer is not installed", call->method, call->url);
}

static const char *content_type(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".js", "application/javascript" }, { ".mjs", "application/javascript" },
        { ".css", "text/css" }, { ".html", "text/html; charset=utf-8" },
        { ".json", "application/json" }, { ".wasm", "application/wasm" },
        { ".svg", "image/svg+xml" }, { ".png", "image/png" }, { ".ico", "image/x-icon" },
        { ".jpg", "image/jpeg" }, { ".gif", "image/gif" }, { ".woff2", "font/woff2" },
        { ".woff", "font/woff" }, { ".ttf", "font/ttf" }, { ".xml", "application/xml" },
        { ".txt", "text/plain" }, { ".map", "application/json" }, { ".onnx", "application/octet-stream" },
    };
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

static bool not_modified(RestCall *call, const char *etag)
{
    const char *inm = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    return inm && strstr(inm, etag);
}

static void add_cache_headers(RestCall *call, const char *etag)
{
    rest_add_header(call, MHD_HTTP_HEADER_ETAG, etag);
    rest_add_header(call, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

/* Appends src[0..n) to b with every absolute link ( ="/x or ='/x ) given the /ohif/ prefix,
 * and window.PUBLIC_URL = '/' made '/ohif/'. A "//" (another origin) is left alone. */
TESTABLE int ohif_rewrite_index(Buf *b, const char *src, size_t n)
{
    size_t plen = strlen(OHIF_PREFIX);
    for (size_t i = 0; i < n; i++) {
        int rc;
        if ((src[i] == '=' || (src[i] == ' ' && i > 0 && src[i - 1] == '=')) && i + 2 < n &&
            (src[i + 1] == '"' || src[i + 1] == '\'') && src[i + 2] == '/' &&
            (i + 3 >= n || src[i + 3] != '/')) {
            /* =" / ... : copy =" then the prefix instead of the single slash */
            if ((rc = buf_append(b, src + i, 2)) || (rc = buf_append(b, OHIF_PREFIX, plen)))
                return rc;
            i += 2;
            continue;
        }
        if ((rc = buf_append(b, src + i, 1))) return rc;
    }
    return 0;
}

static bool read_small(const char *path, size_t max, char **out, size_t *len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = false;
    char *buf = NULL;
    if (fstat(fd, st) || !S_ISREG(st->st_mode) || (size_t)st->st_size > max) goto out;
    buf = malloc((size_t)st->st_size + 1);
    if (!buf) goto out;
    size_t got = 0;
    while (got < (size_t)st->st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) goto out;
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
    buf = NULL;
    ok = true;
out:
    free(buf);
    close(fd);
    return ok;
}

static void reply_index(RestCall *call, const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/index.html", dir);
    char *src = NULL;
    size_t n = 0;
    struct stat st;
    if (!read_small(path, OHIF_MAX_INDEX, &src, &n, &st)) {
        reply_missing(call, dir);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"i%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    if (not_modified(call, etag)) {
        free(src);
        rest_reply_buffer(call, 304, NULL, NULL, 0);
        add_cache_headers(call, etag);
        return;
    }
    Buf b;
    buf_init(&b, OHIF_MAX_INDEX * 2);
    int rc = ohif_rewrite_index(&b, src, n);
    free(src);
    if (rc) {
        buf_free(&b);
        rest_fail_buf(call, rc, "OHIF index page");
        return;
    }
    char *s = buf_take(&b, &n);
    rest_reply_buffer(call, 200, "text/html; charset=utf-8", s, n);
    add_cache_headers(call, etag);
}

/* A JavaScript string literal (JSON's quoting is valid JavaScript). */
static int append_js_string(Buf *b, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *q = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!q) return BUF_NOMEM;
    int rc = buf_append(b, q, strlen(q));
    free(q);
    return rc;
}

/* app-config.js: see the top comment. The roots are absolute URLs on the page's origin
 * (computed in the browser), without a trailing slash, as OHIF expects. */
TESTABLE int ohif_app_config(Buf *b, const char *root)
{
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/') rl--;
    char trimmed[512];
    snprintf(trimmed, sizeof trimmed, "%.*s", (int)rl, root);
    int rc;
    if ((rc = buf_printf(b, "/* Generated by the server (rest/h_ohif.c): OHIF on this server's "
                            "DICOMweb routes. */\n(function () {\n  var origin = window.location.origin;\n"
                            "  var root = origin + ")) ||
        (rc = append_js_string(b, trimmed)))
        return rc;
    return buf_printf(b, ";\n"
        "  window.config = {\n"
        "    routerBasename: '/ohif',\n"
        "    showStudyList: true,\n"
        "    extensions: [],\n"
        "    modes: [],\n"
        "    /* no first-visit tour over the viewport */\n"
        "    customizationService: [{ 'ohif.tours': { $set: [] } }],\n"
        "    investigationalUseDialog: { option: 'never' },\n"
        "    maxNumberOfWebWorkers: 3,\n"
        "    showWarningMessageForCrossOrigin: false,\n"
        "    showCPUFallbackMessage: true,\n"
        "    showLoadingIndicator: true,\n"
        "    strictZSpacingForVolumeViewport: true,\n"
        "    groupEnabledModesFirst: true,\n"
        "    maxNumRequests: { interaction: 100, thumbnail: 75, prefetch: 25 },\n"
        "    defaultDataSourceName: 'dicomweb',\n"
        "    dataSources: [{\n"
        "      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',\n"
        "      sourceName: 'dicomweb',\n"
        "      configuration: {\n"
        "        friendlyName: 'MiniPACS',\n"
        "        name: 'minipacs',\n"
        "        wadoUriRoot: origin + '/wado',\n"
        "        qidoRoot: root,\n"
        "        wadoRoot: root,\n"
        "        qidoSupportsIncludeField: false,\n"
        "        supportsReject: false,\n"
        "        dicomUploadEnabled: true,\n"
        "        imageRendering: 'wadors',\n"
        "        thumbnailRendering: 'wadors',\n"
        "        enableStudyLazyLoad: true,\n"
        "        supportsFuzzyMatching: false,\n"
        "        supportsWildcard: true,\n"
        "        omitQuotationForMultipartRequest: true,\n"
        "        bulkDataURI: { enabled: true, relativeResolution: 'studies' }\n"
        "      }\n"
        "    }]\n"
        "  };\n"
        "})();\n");
}

static void reply_app_config(RestCall *call)
{
    Buf b;
    buf_init(&b, 64 * 1024);
    int rc = ohif_app_config(&b, dicomweb_root(&call->srv->cfg));
    if (rc) {
        buf_free(&b);
        rest_fail_buf(call, rc, "OHIF configuration");
        return;
    }
    size_t n;
    char *s = buf_take(&b, &n);
    rest_reply_buffer(call, 200, "application/javascript", s, n);
    rest_add_header(call, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

static void h_ohif(RestCall *call);

/* GET /ohif (redirected to /ohif/) and /ohif/ (the router matches both to "/ohif") */
static void h_ohif_root(RestCall *call)
{
    if (call->url[strlen(call->url) - 1] == '/') {
        h_ohif(call);
        return;
    }
    rest_reply_text(call, 302, "text/plain", "");
    rest_add_header(call, MHD_HTTP_HEADER_LOCATION, "ohif/"); /* relative: keeps a proxy prefix */
}

/* GET /ohif/ and /ohif/<path> */
static void h_ohif(RestCall *call)
{
    const char *dir = get_dir(&call->srv->cfg);
    if (call->nseg == 2 && !strcmp(call->seg[1], "app-config.js")) {
        reply_app_config(call); /* works without the folder too: it is ours */
        return;
    }
    if (!dir[0] || !has_index(dir)) {
        reply_missing(call, dir);
        return;
    }
    if (call->nseg == 1 || (call->nseg == 2 && !strcmp(call->seg[1], "index.html"))) {
        reply_index(call, dir);
        return;
    }
    /* a file of dist/: segments after "ohif" (router.c refused "." and ".."; no hidden files) */
    char path[PATH_MAX];
    size_t len = (size_t)snprintf(path, sizeof path, "%s", dir);
    for (size_t i = 1; i < call->nseg; i++) {
        const char *s = call->seg[i];
        if (s[0] == '.' || strchr(s, '\x01')) {
            rest_fail(call, SRV_UNKNOWN_RESOURCE, "no such file in the OHIF Viewer: %s", call->url);
            return;
        }
        int w = snprintf(path + len, sizeof path - len, "/%s", s);
        if (w < 0 || (size_t)w >= sizeof path - len) {
            rest_fail(call, SRV_UNKNOWN_RESOURCE, "no such file in the OHIF Viewer: %s", call->url);
            return;
        }
        len += (size_t)w;
    }
    const char *last = call->seg[call->nseg - 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (!strchr(last, '.')) reply_index(call, dir); /* a client-side route */
        else rest_fail(call, SRV_UNKNOWN_RESOURCE, "no such file in the OHIF Viewer: %s", call->url);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    if (not_modified(call, etag)) {
        close(fd);
        rest_reply_buffer(call, 304, NULL, NULL, 0);
    } else {
        rest_reply_fd(call, content_type(last), fd, (uint64_t)st.st_size);
    }
    add_cache_headers(call, etag);
}

static const RestRoute routes[] = {
    { "GET", "/ohif", h_ohif_root },
    { "GET", "/ohif/*", h_ohif },
};

const RestRouteTable rest_routes_ohif = { routes, sizeof routes / sizeof routes[0] };
