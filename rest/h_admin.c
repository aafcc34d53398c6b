/* h_admin.c -- Orthanc's small administration routes: /tools/log-level and the per-category
 * /tools/log-level-{category}, /tools/default-encoding, /tools/accepted-transfer-syntaxes,
 * /tools/unknown-sop-class-accepted, /tools/shutdown, /tools/reset and /exports.
 *
 * DESIGN: Orthanc's verbosities are "default", "verbose" and "trace"; ours map them on the one
 * log threshold of server/log.c (default: the configured LogLevel; verbose and trace: debug).
 * A category's verbosity is remembered and answered as set; the threshold in force is the most
 * verbose of the global one and the categories' (our log has one threshold, not one per
 * category: a verbose category makes every category verbose).
 * The encoding and the C-STORE SCP's policy are server/settings.c's (atomics in dicom/ read at
 * each parse or negotiation), so a change applies to what comes next, on every thread.
 * /tools/shutdown and /tools/reset answer first; the signal (SIGTERM, SIGHUP) is raised once
 * the answer has gone (RestCall.signal_after, raised by http.c's completion callback), and
 * main() stops every module in order (jobs saved, sockets closed); on SIGHUP it then reads the
 * configuration file again and starts them again (server/main.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"
#include "server/settings.h"

static const char *const CATEGORIES[] = { "", "generic", "plugins", "http", "sqlite", "dicom",
                                          "jobs", "lua" };
#define NCAT (sizeof CATEGORIES / sizeof CATEGORIES[0])
static _Atomic int verbosity[NCAT]; /* 0 default, 1 verbose, 2 trace */
static const char *const NAMES[] = { "default", "verbose", "trace" };

/* The category of the route: "/tools/log-level" -> 0, "/tools/log-level-http" -> 3. */
static int route_category(const RestCall *call)
{
    const char *s = call->seg[1];
    if (!strcmp(s, "log-level")) return 0;
    for (size_t i = 1; i < NCAT; i++)
        if (!strcmp(s + strlen("log-level-"), CATEGORIES[i])) return (int)i;
    return -1;
}

static void apply(Srv *srv)
{
    int most = 0;
    for (size_t i = 0; i < NCAT; i++)
        if (verbosity[i] > most) most = verbosity[i];
    srv_log_set_level(most ? "debug" : srv->cfg.log_level ? srv->cfg.log_level : "info");
}

/* The body as a string (at most size - 1 bytes; false if longer), blanks stripped. */
static bool body_word(const RestCall *call, char *out, size_t size)
{
    if (call->body_len >= size) return false;
    memcpy(out, call->body ? call->body : "", call->body_len);
    out[call->body_len] = '\0';
    srv_strip(out);
    return true;
}

static void h_log_level_get(RestCall *call)
{
    int c = route_category(call);
    if (c < 0) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown log category");
        return;
    }
    rest_reply_text(call, 200, "text/plain", NAMES[verbosity[c]]);
}

/* PUT: the body must be exactly one of the verbosities (no blanks, as Orthanc); empty answer. */
static void h_log_level_put(RestCall *call)
{
    int c = route_category(call);
    if (c < 0) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown log category");
        return;
    }
    int level = -1;
    for (int i = 0; i < 3; i++)
        if (call->body_len == strlen(NAMES[i]) && !memcmp(call->body, NAMES[i], call->body_len)) level = i;
    if (level < 0) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE,
                  "Verbosity can be \"default\", \"verbose\" or \"trace\": %.*s",
                  (int)(call->body_len > 64 ? 64 : call->body_len), call->body ? call->body : "");
        return;
    }
    verbosity[c] = level;
    apply(call->srv);
    SRV_LOG_WARN("http", "log verbosity%s%s set to %s", c ? " of " : "", CATEGORIES[c], NAMES[level]);
    rest_reply_text(call, 200, "text/plain", "");
}

/* GET /tools/default-encoding: Orthanc's name of the DefaultEncoding in force. */
static void h_default_encoding_get(RestCall *call)
{
    rest_reply_text(call, 200, "text/plain", srv_default_encoding());
}

/* PUT /tools/default-encoding: files without SpecificCharacterSet read afterwards use it. */
static void h_default_encoding_put(RestCall *call)
{
    char v[32];
    SrvError e = { 0 };
    if (!body_word(call, v, sizeof v) || !srv_set_default_encoding(&e, v)) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "unknown encoding: %.*s",
                  (int)(call->body_len > 64 ? 64 : call->body_len), call->body ? call->body : "");
        return;
    }
    SRV_LOG_WARN("http", "default encoding set to %s", srv_default_encoding());
    rest_reply_text(call, 200, "text/plain", srv_default_encoding());
}

/* UIDs in the order of their numeric components (Orthanc's order of its enumeration). */
static int cmp_uid(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    while (*a && *b) {
        unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
        if (x != y) return x < y ? -1 : 1;
        if (*a == '.') a++;
        if (*b == '.') b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static void reply_syntaxes(RestCall *call)
{
    uint64_t mask = srv_scp_accepted_syntaxes();
    const char *uids[64];
    size_t n = 0;
    const char *uid;
    for (size_t i = 0; (uid = srv_scp_syntax(i)) && n < 64; i++)
        if ((mask >> i) & 1) uids[n++] = uid;
    qsort(uids, n, sizeof uids[0], cmp_uid);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(uids[i]));
    rest_reply_json(call, 200, a);
}

/* GET /tools/accepted-transfer-syntaxes: the UIDs the C-STORE SCP accepts. */
static void h_syntaxes_get(RestCall *call) { reply_syntaxes(call); }

/* PUT /tools/accepted-transfer-syntaxes: a JSON array of UIDs or one UID as text, wildcards
 * allowed; answers the syntaxes now accepted. */
static void h_syntaxes_put(RestCall *call)
{
    uint64_t mask = 0;
    bool ok = true;
    cJSON *j = call->body_len ? cJSON_ParseWithLength(call->body, call->body_len) : NULL;
    if (cJSON_IsArray(j)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j) ok = ok && cJSON_IsString(it) && srv_scp_syntax_pattern(it->valuestring, &mask);
    } else if (cJSON_IsString(j)) {
        ok = srv_scp_syntax_pattern(j->valuestring, &mask);
    } else if (j) { /* other JSON (a bare UID reads as a number, as in Orthanc) */
        ok = false;
    } else { /* not JSON: one pattern as text */
        char *v = strndup(call->body ? call->body : "", call->body_len);
        ok = v && srv_scp_syntax_pattern(v, &mask);
        free(v);
    }
    cJSON_Delete(j);
    if (!ok) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "expected a JSON list of transfer syntax UIDs, or one "
                  "(wildcards * and ? allowed)");
        return;
    }
    srv_scp_set_accepted_syntaxes(mask);
    SRV_LOG_WARN("http", "accepted transfer syntaxes changed (%d now)", __builtin_popcountll(mask));
    reply_syntaxes(call);
}

static void h_unknown_sop_get(RestCall *call)
{
    rest_reply_text(call, 200, "text/plain", srv_scp_unknown_sop_class_accepted() ? "1" : "0");
}

/* PUT /tools/unknown-sop-class-accepted: "1"/"true" or "0"/"false". */
static void h_unknown_sop_put(RestCall *call)
{
    char v[16];
    int on = -1;
    if (body_word(call, v, sizeof v)) {
        if (!strcmp(v, "1") || !strcmp(v, "true")) on = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false")) on = 0;
    }
    if (on < 0) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "Boolean value expected");
        return;
    }
    srv_scp_set_unknown_sop_class_accepted(on);
    SRV_LOG_WARN("http", "unknown SOP classes %s", on ? "accepted" : "refused");
    rest_reply_text(call, 200, "text/plain", "");
}

/* POST /tools/shutdown: answered, then the same clean stop as SIGTERM. */
static void h_shutdown(RestCall *call)
{
    SRV_LOG_WARN("http", "shutdown requested through the REST API");
    rest_reply_text(call, 200, "application/json", "{}");
    call->signal_after = SIGTERM;
}

/* POST /tools/reset: answered, then every module stopped and started again with the
 * configuration file read again (main.c, on SIGHUP). */
static void h_reset(RestCall *call)
{
    SRV_LOG_WARN("http", "reset requested through the REST API");
    rest_reply_text(call, 200, "application/json", "{}");
    call->signal_after = SIGHUP;
}

/* GET /exports: {Exports, Done, Last}; nothing is recorded (Orthanc with LogExportedResources
 * false, its default). DELETE /exports clears that empty log. */
static void h_exports(RestCall *call)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "Done", true);
    cJSON_AddItemToObject(o, "Exports", cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "Last", 0);
    rest_reply_json(call, 200, o);
}

static void h_exports_delete(RestCall *call) { rest_reply_text(call, 200, "text/plain", ""); }

static const RestRoute routes[] = {
    { "GET", "/tools/log-level", h_log_level_get },
    { "PUT", "/tools/log-level", h_log_level_put },
    { "GET", "/tools/log-level-generic", h_log_level_get },
    { "PUT", "/tools/log-level-generic", h_log_level_put },
    { "GET", "/tools/log-level-plugins", h_log_level_get },
    { "PUT", "/tools/log-level-plugins", h_log_level_put },
    { "GET", "/tools/log-level-http", h_log_level_get },
    { "PUT", "/tools/log-level-http", h_log_level_put },
    { "GET", "/tools/log-level-sqlite", h_log_level_get },
    { "PUT", "/tools/log-level-sqlite", h_log_level_put },
    { "GET", "/tools/log-level-dicom", h_log_level_get },
    { "PUT", "/tools/log-level-dicom", h_log_level_put },
    { "GET", "/tools/log-level-jobs", h_log_level_get },
    { "PUT", "/tools/log-level-jobs", h_log_level_put },
    { "GET", "/tools/log-level-lua", h_log_level_get },
    { "PUT", "/tools/log-level-lua", h_log_level_put },
    { "GET", "/tools/default-encoding", h_default_encoding_get },
    { "PUT", "/tools/default-encoding", h_default_encoding_put },
    { "GET", "/tools/accepted-transfer-syntaxes", h_syntaxes_get },
    { "PUT", "/tools/accepted-transfer-syntaxes", h_syntaxes_put },
    { "GET", "/tools/unknown-sop-class-accepted", h_unknown_sop_get },
    { "PUT", "/tools/unknown-sop-class-accepted", h_unknown_sop_put },
    { "POST", "/tools/shutdown", h_shutdown },
    { "POST", "/tools/reset", h_reset },
    { "GET", "/exports", h_exports },
    { "DELETE", "/exports", h_exports_delete },
};

const RestRouteTable rest_routes_admin = { routes, sizeof routes / sizeof routes[0] };
