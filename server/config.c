/* config.c -- Orthanc.json, read once at start-up.
 *
 * DESIGN: a table with one row per option (name, type, offset in Cfg, default, bounds), in
 * the manner of Redis's config.c. Loading is: defaults from the table; the file, with // and
 * block comments blanked to spaces (newlines kept, so cJSON's error offset still gives the
 * right line); every known key checked for type and range (an error names the option and its
 * line); unknown keys logged; then ORTHANC__<UPPER_SNAKE> environment variables, which win
 * over the file. Structured options (RegisteredUsers, DicomModalities, UserMetadata,
 * Dictionary) have their own parsers, shared by the file and the environment (as JSON text).
 *
 * Strictness: nothing after the top-level object but whitespace and comments; an unterminated
 * block comment is an error at its line. Errors name the line of the top-level key (found by
 * scanning the blanked text at nesting depth 1, so the same name inside an object, a string or
 * a commented-out line does not mislead). Integers must be integral and within bounds; string
 * options may have length bounds (min/max > 0) and a list of accepted values (`choices`,
 * matched case-insensitively and stored in their canonical spelling). Environment numbers are
 * plain decimal digits (no spaces, no '+'). An ORTHANC__* variable that names no option is
 * logged at warning; ORTHANC__<IGNORED_OPTION>[__...] (Orthanc plugins' settings) is not.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server/server.h"
#include "storage/storage.h"

typedef enum { CFG_INT, CFG_BOOL, CFG_STRING, CFG_U64, CFG_SPECIAL } CfgType;

typedef struct CfgCtx CfgCtx;
typedef bool (*CfgParseFn)(CfgCtx *ctx, const cJSON *value, Cfg *cfg);

typedef struct CfgOption {
    const char *name;
    CfgType type;
    size_t offset;
    long long def;       /* int, bool, u64 */
    const char *def_str; /* string */
    long long min, max;
    CfgParseFn parse;    /* CFG_SPECIAL */
} CfgOption;

struct CfgCtx {
    CfgError *err;
    const char *source; /* file name or "environment" */
    const char *text;   /* file text, for line numbers; NULL for the environment */
    const char *option;
};

static bool parse_users(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_modalities(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_user_metadata(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_user_content_types(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_dictionary(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_postgresql(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_dicomweb(CfgCtx *ctx, const cJSON *v, Cfg *cfg);
static bool parse_json_text(CfgCtx *ctx, const cJSON *v, Cfg *cfg);

#define OFF(f) offsetof(Cfg, f)
static const CfgOption options[] = {
    { "Name", CFG_STRING, OFF(name), 0, "MiniPACS", 0, 0, NULL },
    { "StorageDirectory", CFG_STRING, OFF(storage_dir), 0, "OrthancStorage", 1, 4096, NULL },
    { "IndexDirectory", CFG_STRING, OFF(index_dir), 0, NULL, 1, 4096, NULL },
    { "HttpPort", CFG_INT, OFF(http_port), 8042, NULL, 1, 65535, NULL },
    { "DicomPort", CFG_INT, OFF(dicom_port), 4242, NULL, 1, 65535, NULL },
    { "DicomAet", CFG_STRING, OFF(dicom_aet), 0, "ORTHANC", 1, 16, NULL },
    { "DicomCheckCalledAet", CFG_BOOL, OFF(dicom_check_called_aet), 0, NULL, 0, 1, NULL },
    { "DicomModalities", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_modalities },
    { "DicomScpTimeout", CFG_INT, OFF(dicom_scp_timeout), 30, NULL, 0, 86400, NULL },
    { "MaximumAssociations", CFG_INT, OFF(max_associations), 20, NULL, 1, 1000, NULL },
    { "DicomAlwaysAllowStore", CFG_BOOL, OFF(dicom_always_allow_store), 1, NULL, 0, 1, NULL },
    { "DicomCheckModalityHost", CFG_BOOL, OFF(dicom_check_modality_host), 0, NULL, 0, 1, NULL },
    { "DicomTcpNoDelay", CFG_BOOL, OFF(dicom_tcp_nodelay), 1, NULL, 0, 1, NULL },
    { "MaximumPduLength", CFG_INT, OFF(maximum_pdu_length), 16384, NULL, 4096, 131072, NULL },
    { "RemoteAccessAllowed", CFG_BOOL, OFF(remote_access_allowed), 0, NULL, 0, 1, NULL },
    { "AuthenticationEnabled", CFG_BOOL, OFF(authentication_enabled), 0, NULL, 0, 1, NULL },
    { "RegisteredUsers", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_users },
    { "SslEnabled", CFG_BOOL, OFF(ssl_enabled), 0, NULL, 0, 1, NULL },
    { "SslCertificate", CFG_STRING, OFF(ssl_certificate), 0, "certificate.pem", 0, 0, NULL },
    { "ConcurrentJobs", CFG_INT, OFF(concurrent_jobs), 2, NULL, 1, 64, NULL },
    { "JobsHistorySize", CFG_INT, OFF(jobs_history_size), 10, NULL, 0, 100000, NULL },
    { "SaveJobs", CFG_BOOL, OFF(save_jobs), 1, NULL, 0, 1, NULL },
    { "MaximumStorageSize", CFG_U64, OFF(maximum_storage_size), 0, NULL, 0, 1LL << 40, NULL },
    { "MaximumPatientCount", CFG_U64, OFF(maximum_patient_count), 0, NULL, 0, 1LL << 40, NULL },
    { "MaximumStorageMode", CFG_STRING, OFF(maximum_storage_mode), 0, "Recycle", 0, 0, NULL },
    { "MallocArenaMax", CFG_INT, OFF(malloc_arena_max), 5, NULL, 0, 1024, NULL },
    { "MetricsEnabled", CFG_BOOL, OFF(metrics_enabled), 1, NULL, 0, 1, NULL },
    { "HttpThreadsCount", CFG_INT, OFF(http_threads), 0, NULL, 0, 1024, NULL },
    { "HttpRequestTimeout", CFG_INT, OFF(http_timeout), 30, NULL, 1, 86400, NULL },
    { "HttpConnectionLimit", CFG_INT, OFF(http_connection_limit), 1000, NULL, 1, 100000, NULL },
    { "HttpConnectionLimitPerIp", CFG_INT, OFF(http_connection_limit_per_ip), 0, NULL, 0, 100000, NULL },
    { "MaximumUploadSize", CFG_U64, OFF(maximum_upload_size), 2048, NULL, 1, 1LL << 20, NULL },
    { "SyncStorageArea", CFG_BOOL, OFF(sync_storage), 1, NULL, 0, 1, NULL },
    { "OverwriteInstances", CFG_BOOL, OFF(overwrite_instances), 0, NULL, 0, 1, NULL },
    { "StableAge", CFG_INT, OFF(stable_age), 60, NULL, 0, 86400 * 365, NULL },
    { "DefaultEncoding", CFG_STRING, OFF(default_encoding), 0, "Latin1", 0, 0, NULL },
    { "DefaultPrivateCreator", CFG_STRING, OFF(default_private_creator), 0, "", 0, 0, NULL },
    { "Dictionary", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_dictionary },
    { "PostgreSQL", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_postgresql },
    { "DicomWeb", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_dicomweb },
    { "UserMetadata", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_user_metadata },
    { "MemoryTrimmingInterval", CFG_INT, OFF(memory_trimming_interval), 30, NULL, 0, 86400, NULL },
    { "DicomCacheSize", CFG_INT, OFF(dicom_cache_size), 128, NULL, 0, 65536, NULL },
    { "LogLevel", CFG_STRING, OFF(log_level), 0, "info", 0, 0, NULL },
    { "DicomAlwaysAllowEcho", CFG_BOOL, OFF(dicom_always_allow_echo), 1, NULL, 0, 1, NULL },
    { "DicomAlwaysAllowFind", CFG_BOOL, OFF(dicom_always_allow_find), 0, NULL, 0, 1, NULL },
    { "DicomAlwaysAllowMove", CFG_BOOL, OFF(dicom_always_allow_move), 0, NULL, 0, 1, NULL },
    { "DicomAlwaysAllowGet", CFG_BOOL, OFF(dicom_always_allow_get), 0, NULL, 0, 1, NULL },
    { "DicomScuTimeout", CFG_INT, OFF(dicom_scu_timeout), 10, NULL, 0, 86400, NULL },
    { "DicomEchoChecksFind", CFG_BOOL, OFF(dicom_echo_checks_find), 0, NULL, 0, 1, NULL },
    { "LimitFindResults", CFG_U64, OFF(limit_find_results), 0, NULL, 0, 1LL << 40, NULL },
    { "LimitFindInstances", CFG_U64, OFF(limit_find_instances), 0, NULL, 0, 1LL << 40, NULL },
    { "CaseSensitivePN", CFG_BOOL, OFF(case_sensitive_pn), 0, NULL, 0, 1, NULL },
    { "QueryRetrieveSize", CFG_INT, OFF(query_retrieve_size), 100, NULL, 1, 100000, NULL },
    { "DicomModalitiesInDatabase", CFG_BOOL, OFF(dicom_modalities_in_database), 0, NULL, 0, 1, NULL },
    { "IngestTranscoding", CFG_STRING, OFF(ingest_transcoding), 0, "", 0, 64, NULL },
    { "OhifDirectory", CFG_STRING, OFF(ohif_dir), 0, "", 0, 4096, NULL },
    { "UserContentType", CFG_SPECIAL, 0, 0, NULL, 0, 0, parse_user_content_types },
    { "StorageCompression", CFG_BOOL, OFF(storage_compression), 0, NULL, 0, 1, NULL },
    { "OrthancPeers", CFG_SPECIAL, OFF(orthanc_peers), 0, NULL, 0, 0, parse_json_text },
    { "OrthancPeersInDatabase", CFG_BOOL, OFF(orthanc_peers_in_database), 0, NULL, 0, 1, NULL },
    { "HttpTimeout", CFG_INT, OFF(http_timeout_client), 60, NULL, 0, 86400, NULL },
    { "HttpsVerifyPeers", CFG_BOOL, OFF(https_verify_peers), 1, NULL, 0, 1, NULL },
    { "HttpsCACertificates", CFG_STRING, OFF(https_ca_certificates), 0, "", 0, 4096, NULL },
    { "HttpProxy", CFG_STRING, OFF(http_proxy), 0, "", 0, 1024, NULL },
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* String options with a closed set of values ('|'-separated, canonical spelling). */
static const struct { const char *option, *choices; } choices[] = {
    { "MaximumStorageMode", "Recycle|Reject" },
    { "LogLevel", "error|warning|info|debug|verbose|trace" },
    { "DefaultEncoding", "Ascii|Utf8|Latin1|Latin2|Latin3|Latin4|Latin5|Cyrillic|Windows1251|"
                         "Arabic|Greek|Hebrew|Thai|Japanese|Chinese|Korean|JapaneseKanji|"
                         "SimplifiedChinese" },
};

/* Orthanc options an Orthanc.json may carry that this server accepts and ignores. */
static const char *const ignored[] = {
    "Plugins", "OrthancExplorerEnabled", "HttpCompressionEnabled",
    "HttpDescribeErrors", "HttpServerEnabled", "DicomServerEnabled", "StoreMD5ForAttachments",
    "LuaScripts", "LuaHeartBeatPeriod", "Worklists", "PostgreSQL", "MySQL",
    "Gdcm", "Transfers", "DicomAssociationCloseDelay", 
    "HttpVerbose", "KeepAlive", "TcpNoDelay",
    "StorageAccessOnFind", "LogExportedResources",
    "MediaArchiveSize", "StoreDicom", "LoadPrivateDictionary",
    "SynchronousCMove", "UnknownSopClassAccepted", "DeidentifyLogs", "DeidentifyLogsDicomVersion",
    "ExecuteLuaEnabled", "DicomTlsEnabled", "HttpTimeout", 
    
    "CheckRevisions", "SslVerifyPeers", "SslTrustedClientCertificates",
    "WebDavEnabled", "WebDavDeleteAllowed", "WebDavUploadAllowed", "AcceptedTransferSyntaxes",
    "IngestTranscoding", "IngestTranscodingOfUncompressed", "IngestTranscodingOfCompressed",
    "BuiltinDecoderTranscoderOrder", "DicomLossyTranscodingQuality",
    "ExtraMainDicomTags", "StorageCommitmentReportsSize",
    "TranscodeDicomProtocol", "ZipLoaderThreads", "DicomThreadsCount",
    "DatabaseServerIdentifier", "WarnOnUnimplemented",
};

static void fail_at(CfgCtx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int line_at(const char *text, const char *at)
{
    int line = 1;
    for (const char *q = text; q < at; q++)
        if (*q == '\n') line++;
    return line;
}

/* Line of the top-level key "name" in the (comment-blanked) text, 0 if not found: only keys
 * at nesting depth 1 count, so the same word in a string, a nested object or a blanked
 * comment is skipped. Falls back to the first occurrence of "name" anywhere. */
static int line_of(const char *text, const char *name)
{
    if (!text || !name) return 0;
    size_t n = strlen(name);
    int depth = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            const char *start = p + 1;
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) break;
            if (depth == 1 && (size_t)(p - start) == n && !strncmp(start, name, n)) {
                const char *q = p + 1;
                while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
                if (*q == ':') return line_at(text, start);
            }
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        }
    }
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *p = strstr(text, key);
    return p ? line_at(text, p) : 0;
}

static void fail_at(CfgCtx *ctx, int code, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ctx->err->code = code;
    int line = line_of(ctx->text, ctx->option);
    if (line)
        snprintf(ctx->err->message, sizeof ctx->err->message, "%s:%d: option \"%s\": %s",
                 ctx->source, line, ctx->option, what);
    else
        snprintf(ctx->err->message, sizeof ctx->err->message, "%s: option \"%s\": %s",
                 ctx->source, ctx->option, what);
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s ? s : "");
    SRV_ASSERT(d);
    return d;
}

/* ---- structured options ---- */

/* "PostgreSQL": Orthanc's PostgreSQL plugin section. Unknown members are ignored (the
 * plugin has more, e.g. EnableStorage, which we do not offer: files stay in StorageDirectory). */
static void pg_defaults(CfgPostgres *pg)
{
    free(pg->host); free(pg->database); free(pg->username); free(pg->password); free(pg->connection_uri);
    memset(pg, 0, sizeof *pg);
    pg->host = dup_or_die("localhost");
    pg->port = 5432;
    pg->database = dup_or_die("orthanc");
    pg->username = dup_or_die("orthanc");
    pg->password = dup_or_die("");
    pg->lock = true;
    pg->connections = 4;
    pg->retries = 10;
}

/* Structured options parsed by their owner module (OrthancPeers: server/peers.c): kept as
 * compact JSON text at the option's offset; only the outer type is checked here. */
static bool parse_json_text(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    const CfgOption *o = NULL;
    for (size_t i = 0; i < NOPTIONS && !o; i++)
        if (!strcmp(options[i].name, ctx->option)) o = &options[i];
    SRV_ASSERT(o);
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object");
        return false;
    }
    char **p = (char **)((char *)cfg + o->offset);
    free(*p);
    *p = cJSON_PrintUnformatted(v);
    SRV_ASSERT(*p);
    return true;
}

static bool parse_postgresql(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"EnableIndex\": true, \"Host\": ...}");
        return false;
    }
    CfgPostgres *pg = &cfg->pg;
    pg_defaults(pg);
    static const struct { const char *name; int type; size_t off; int lo, hi; } M[] = {
        { "EnableIndex", CFG_BOOL, offsetof(CfgPostgres, enable_index), 0, 1 },
        { "Host", CFG_STRING, offsetof(CfgPostgres, host), 0, 0 },
        { "Port", CFG_INT, offsetof(CfgPostgres, port), 1, 65535 },
        { "Database", CFG_STRING, offsetof(CfgPostgres, database), 0, 0 },
        { "Username", CFG_STRING, offsetof(CfgPostgres, username), 0, 0 },
        { "Password", CFG_STRING, offsetof(CfgPostgres, password), 0, 0 },
        { "ConnectionUri", CFG_STRING, offsetof(CfgPostgres, connection_uri), 0, 0 },
        { "Lock", CFG_BOOL, offsetof(CfgPostgres, lock), 0, 1 },
        { "IndexConnectionsCount", CFG_INT, offsetof(CfgPostgres, connections), 1, 256 },
        { "MaximumConnectionRetries", CFG_INT, offsetof(CfgPostgres, retries), 0, 3600 },
    };
    char *base = (char *)pg;
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, M[i].name);
        if (!m) continue;
        if (M[i].type == CFG_BOOL) {
            if (!cJSON_IsBool(m)) { fail_at(ctx, 3, "PostgreSQL.%s: expected a boolean", M[i].name); return false; }
            *(bool *)(base + M[i].off) = cJSON_IsTrue(m);
        } else if (M[i].type == CFG_INT) {
            if (!cJSON_IsNumber(m) || m->valuedouble < M[i].lo || m->valuedouble > M[i].hi) {
                fail_at(ctx, 3, "PostgreSQL.%s: expected an integer in %d..%d", M[i].name, M[i].lo, M[i].hi);
                return false;
            }
            *(int *)(base + M[i].off) = (int)m->valuedouble;
        } else {
            if (!cJSON_IsString(m)) { fail_at(ctx, 3, "PostgreSQL.%s: expected a string", M[i].name); return false; }
            char **dst = (char **)(base + M[i].off);
            free(*dst);
            *dst = dup_or_die(m->valuestring);
        }
    }
    return true;
}

/* "DicomWeb": the server keys of Orthanc's DICOMweb plugin; other members (Servers,
 * EnableWado, WadoRoot, MetadataWorkerThreadsCount, ...) are left to their own readers. */
static void dw_defaults(CfgDicomWeb *d)
{
    free(d->root); free(d->host); free(d->studies_metadata); free(d->series_metadata); free(d->public_root);
    free(d->servers);
    memset(d, 0, sizeof *d);
    d->enable = true;
    d->root = dup_or_die("/dicom-web/");
    d->host = dup_or_die("");
    d->qido_case_sensitive = true;
    d->studies_metadata = dup_or_die("Full");
    d->series_metadata = dup_or_die("Full");
    d->public_root = dup_or_die("");
    d->bulk_threshold = 1024;
}

static bool parse_dicomweb(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"Enable\": true, \"Root\": \"/dicom-web/\", ...}");
        return false;
    }
    CfgDicomWeb *d = &cfg->dicomweb;
    dw_defaults(d);
    static const struct { const char *name; int type; size_t off; int lo, hi; } M[] = {
        { "Enable", CFG_BOOL, offsetof(CfgDicomWeb, enable), 0, 1 },
        { "Root", CFG_STRING, offsetof(CfgDicomWeb, root), 0, 0 },
        { "Host", CFG_STRING, offsetof(CfgDicomWeb, host), 0, 0 },
        { "Ssl", CFG_BOOL, offsetof(CfgDicomWeb, ssl), 0, 1 },
        { "QidoCaseSensitive", CFG_BOOL, offsetof(CfgDicomWeb, qido_case_sensitive), 0, 1 },
        { "StudiesMetadata", CFG_STRING, offsetof(CfgDicomWeb, studies_metadata), 0, 0 },
        { "SeriesMetadata", CFG_STRING, offsetof(CfgDicomWeb, series_metadata), 0, 0 },
        { "PublicRoot", CFG_STRING, offsetof(CfgDicomWeb, public_root), 0, 0 },
        { "BulkDataThreshold", CFG_INT, offsetof(CfgDicomWeb, bulk_threshold), 0, 1 << 30 },
    };
    char *base = (char *)d;
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, M[i].name);
        if (!m) continue;
        if (M[i].type == CFG_BOOL) {
            if (!cJSON_IsBool(m)) { fail_at(ctx, 3, "DicomWeb.%s: expected a boolean", M[i].name); return false; }
            *(bool *)(base + M[i].off) = cJSON_IsTrue(m);
        } else if (M[i].type == CFG_INT) {
            if (!cJSON_IsNumber(m) || m->valuedouble < M[i].lo || m->valuedouble > M[i].hi) {
                fail_at(ctx, 3, "DicomWeb.%s: expected an integer in %d..%d", M[i].name, M[i].lo, M[i].hi);
                return false;
            }
            *(int *)(base + M[i].off) = (int)m->valuedouble;
        } else {
            if (!cJSON_IsString(m)) { fail_at(ctx, 3, "DicomWeb.%s: expected a string", M[i].name); return false; }
            char **dst = (char **)(base + M[i].off);
            free(*dst);
            *dst = dup_or_die(m->valuestring);
        }
    }
    /* Servers: the DICOMweb client's (server/dwclient.c parses each entry) */
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(v, "Servers");
    if (sv && !cJSON_IsObject(sv)) {
        fail_at(ctx, 3, "DicomWeb.Servers: expected an object {\"name\": server}");
        return false;
    }
    if (sv) SRV_ASSERT((d->servers = cJSON_PrintUnformatted(sv)));
    /* Root: one or more path segments, "/" first and last ("/dicom-web/") */
    size_t rl = strlen(d->root);
    if (rl < 3 || d->root[0] != '/' || d->root[rl - 1] != '/' || strstr(d->root, "//") || strstr(d->root, "..")) {
        fail_at(ctx, 3, "DicomWeb.Root: expected a path such as \"/dicom-web/\"");
        return false;
    }
    for (int k = 0; k < 2; k++) {
        const char *m = k ? d->series_metadata : d->studies_metadata;
        if (strcmp(m, "Full") && strcmp(m, "MainDicomTags") && strcmp(m, "Extrapolate")) {
            fail_at(ctx, 3, "DicomWeb.%s: expected \"Full\", \"MainDicomTags\" or \"Extrapolate\"",
                    k ? "SeriesMetadata" : "StudiesMetadata");
            return false;
        }
    }
    return true;
}

static bool parse_users(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"user\": \"password\"}");
        return false;
    }
    for (size_t i = 0; i < cfg->nusers; i++) { free(cfg->users[i].name); free(cfg->users[i].password); }
    free(cfg->users);
    cfg->nusers = (size_t)cJSON_GetArraySize(v);
    cfg->users = calloc(cfg->nusers ? cfg->nusers : 1, sizeof *cfg->users);
    SRV_ASSERT(cfg->users);
    size_t i = 0;
    for (const cJSON *u = v->child; u; u = u->next, i++) {
        if (!cJSON_IsString(u)) {
            cfg->nusers = i;
            fail_at(ctx, 3, "the password of \"%s\" must be a string", u->string);
            return false;
        }
        cfg->users[i].name = dup_or_die(u->string);
        cfg->users[i].password = dup_or_die(u->valuestring);
    }
    return true;
}

bool cfg_parallel_associations(const cJSON *x, int *out)
{
    *out = 1;
    if (!x) return true;
    if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble > CFG_MAX_PARALLEL_ASSOCIATIONS ||
        x->valuedouble != (double)(int)x->valuedouble)
        return false;
    *out = (int)x->valuedouble;
    return true;
}

/* ---- one modality (shared with server/modality.c) ---- */

/* Orthanc 1.10's manufacturers: the current names, then the obsolete ones it still reads
 * (mapped, as there, to the name it shows). Exact case. */
static const struct { const char *name, *canonical; } manufacturers[] = {
    { "Generic", "Generic" },
    { "GenericNoWildcardInDates", "GenericNoWildcardInDates" },
    { "GenericNoUniversalWildcard", "GenericNoUniversalWildcard" },
    { "Vitrea", "Vitrea" },
    { "GE", "GE" },
    { "AgfaImpax", "GenericNoWildcardInDates" },
    { "SyngoVia", "GenericNoWildcardInDates" },
    { "EFilm2", "Generic" },
    { "MedInria", "Generic" },
    { "ClearCanvas", "Generic" },
    { "Dcm4Chee", "Generic" },
};

/* An integral value that fits an int (JSON's integers as Orthanc's JsonCpp reads them). */
static bool is_int(double d) { return d >= INT_MIN && d <= INT_MAX && d == (double)(int)d; }

/* Orthanc's port rule: an integer, or a string holding one (optional sign, digits only), in
 * 1..65534 (ParameterOutOfRange with the value); anything else is BadFileFormat. */
static bool modality_port(SrvError *err, const cJSON *x, int *out)
{
    double d;
    if (cJSON_IsNumber(x)) {
        d = x->valuedouble;
        if (!is_int(d)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
    } else if (cJSON_IsString(x)) {
        const char *s = x->valuestring;
        const char *digits = s + (*s == '+' || *s == '-');
        if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 10)
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
        d = strtod(s, NULL);
        if (d < INT_MIN || d > INT_MAX) return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
    } else {
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
    }
    if (d < 1 || d > 65534)
        return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE,
                        "A TCP port number must be in range [1..65534], but found: %d", (int)d);
    *out = (int)d;
    return true;
}

/* A string member (absent: *out untouched unless required) no longer than max bytes. */
static bool modality_string(SrvError *err, const cJSON *o, const char *key, bool required, size_t max,
                            const char **out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x && !required) return true;
    if (!cJSON_IsString(x)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "String value expected in field: %s", key);
    if (strlen(x->valuestring) > max) /* ours: Orthanc has no limit */
        return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "%s is longer than %zu characters", key, max);
    *out = x->valuestring;
    return true;
}

static bool modality_manufacturer(SrvError *err, const char *name, const char **out)
{
    for (size_t i = 0; i < sizeof manufacturers / sizeof manufacturers[0]; i++)
        if (!strcmp(name, manufacturers[i].name)) {
            *out = manufacturers[i].canonical;
            return true;
        }
    return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "Unknown modality manufacturer: \"%s\"", name);
}

bool cfg_modality_parse(SrvError *err, const cJSON *v, CfgModality *out)
{
    const char *aet = NULL, *host = NULL, *manufacturer = "Generic", *local_aet = NULL;
    CfgModality m = { .allow_echo = true, .allow_find = true, .allow_move = true, .allow_get = true,
                      .allow_store = true, .allow_find_worklist = true, .allow_n_action = true,
                      .allow_event_report = true, .allow_transcoding = true, .parallel = 1 };
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        const cJSON *a = cJSON_GetArrayItem(v, 0), *h = cJSON_GetArrayItem(v, 1);
        const cJSON *p = cJSON_GetArrayItem(v, 2), *man = cJSON_GetArrayItem(v, 3);
        if ((n != 3 && n != 4) || !cJSON_IsString(a) || !cJSON_IsString(h) ||
            (!cJSON_IsString(p) && !cJSON_IsNumber(p)) || (n == 4 && !cJSON_IsString(man)))
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
        if (strlen(a->valuestring) >= CFG_MODALITY_AET_MAX || strlen(h->valuestring) >= CFG_MODALITY_HOST_MAX)
            return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "AET or host too long");
        aet = a->valuestring;
        host = h->valuestring;
        if (!modality_port(err, p, &m.port)) return false;
        if (n == 4 && !modality_manufacturer(err, man->valuestring, &manufacturer)) return false;
    } else if (cJSON_IsObject(v)) {
        if (!modality_string(err, v, "AET", true, CFG_MODALITY_AET_MAX - 1, &aet) ||
            !modality_string(err, v, "Host", true, CFG_MODALITY_HOST_MAX - 1, &host))
            return false;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "Port");
        if (!p) return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
        if (!modality_port(err, p, &m.port)) return false;
        const char *man = NULL;
        if (!modality_string(err, v, "Manufacturer", false, 64, &man)) return false;
        if (man && !modality_manufacturer(err, man, &manufacturer)) return false;
        /* AllowStorageCommitment last: it sets both of its flags whatever they said, as Orthanc */
        static const char *const flags[] = { "AllowEcho", "AllowFind", "AllowFindWorklist", "AllowGet",
                                             "AllowMove", "AllowStore", "AllowNAction", "AllowEventReport",
                                             "AllowTranscoding", "UseDicomTls", "AllowStorageCommitment" };
        bool commitment = true;
        bool *dst[] = { &m.allow_echo, &m.allow_find, &m.allow_find_worklist, &m.allow_get, &m.allow_move,
                        &m.allow_store, &m.allow_n_action, &m.allow_event_report, &m.allow_transcoding,
                        &m.use_dicom_tls, &commitment };
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, flags[f]);
            if (!b) continue;
            if (!cJSON_IsBool(b)) return srv_fail(err, SRV_BAD_FILE_FORMAT, "Boolean value expected in field: %s", flags[f]);
            *dst[f] = cJSON_IsTrue(b);
            if (dst[f] == &commitment) m.allow_n_action = m.allow_event_report = commitment;
        }
        if (!modality_string(err, v, "LocalAet", false, CFG_MODALITY_AET_MAX - 1, &local_aet)) return false;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "Timeout");
        if (t) {
            if (!cJSON_IsNumber(t) || !is_int(t->valuedouble))
                return srv_fail(err, SRV_BAD_FILE_FORMAT, "Integer value expected in field: Timeout");
            if (t->valuedouble < 0)
                return srv_fail(err, SRV_BAD_FILE_FORMAT, "Unsigned integer value expected in field: Timeout");
            m.timeout = (int)t->valuedouble;
        }
        if (!cfg_parallel_associations(cJSON_GetObjectItemCaseSensitive(v, "ParallelAssociations"), &m.parallel))
            return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "ParallelAssociations must be an integer from 1 to %d",
                            CFG_MAX_PARALLEL_ASSOCIATIONS);
    } else {
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", "");
    }
    m.aet = dup_or_die(aet);
    m.host = dup_or_die(host);
    m.manufacturer = dup_or_die(manufacturer);
    m.local_aet = local_aet && *local_aet ? dup_or_die(local_aet) : NULL;
    *out = m;
    return true;
}

void cfg_modality_free(CfgModality *m)
{
    free(m->name);
    free(m->aet);
    free(m->host);
    free(m->manufacturer);
    free(m->local_aet);
    memset(m, 0, sizeof *m);
}

static bool parse_modalities(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"name\": [\"AET\", \"host\", port]}");
        return false;
    }
    for (size_t i = 0; i < cfg->nmodalities; i++) cfg_modality_free(&cfg->modalities[i]);
    free(cfg->modalities);
    cfg->nmodalities = 0;
    size_t n = (size_t)cJSON_GetArraySize(v);
    cfg->modalities = calloc(n ? n : 1, sizeof *cfg->modalities);
    SRV_ASSERT(cfg->modalities);
    for (const cJSON *m = v->child; m; m = m->next) {
        SrvError e = { 0 };
        CfgModality d;
        if (!cfg_modality_parse(&e, m, &d)) {
            fail_at(ctx, 3, "modality \"%s\": %s", m->string,
                    e.message[0] ? e.message
                                 : "must be [AET, host, port(, manufacturer)] or {\"AET\", \"Host\", \"Port\", ...}"
                                   " with a port 1-65534");
            return false;
        }
        d.name = dup_or_die(m->string);
        cfg->modalities[cfg->nmodalities++] = d;
    }
    return true;
}

static bool parse_user_metadata(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"Name\": number}");
        return false;
    }
    for (size_t i = 0; i < cfg->nuser_metadata; i++) free(cfg->user_metadata[i].name);
    free(cfg->user_metadata);
    cfg->nuser_metadata = 0;
    size_t n = (size_t)cJSON_GetArraySize(v);
    cfg->user_metadata = calloc(n ? n : 1, sizeof *cfg->user_metadata);
    SRV_ASSERT(cfg->user_metadata);
    for (const cJSON *m = v->child; m; m = m->next) {
        if (!cJSON_IsNumber(m) || m->valuedouble < 1024 || m->valuedouble > 65535 ||
            m->valuedouble != (double)(int)m->valuedouble) {
            fail_at(ctx, 3, "user metadata \"%s\" needs a number from 1024 to 65535", m->string);
            return false;
        }
        cfg->user_metadata[cfg->nuser_metadata].name = dup_or_die(m->string);
        cfg->user_metadata[cfg->nuser_metadata++].number = m->valueint;
    }
    return true;
}

static void free_user_content_types(Cfg *cfg)
{
    for (size_t i = 0; i < cfg->nuser_content_types; i++) {
        free(cfg->user_content_types[i].name);
        free(cfg->user_content_types[i].mime);
    }
    free(cfg->user_content_types);
    cfg->user_content_types = NULL;
    cfg->nuser_content_types = 0;
}

static bool parse_user_content_types(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"Name\": number or [number, \"mime type\"]}");
        return false;
    }
    free_user_content_types(cfg);
    size_t n = (size_t)cJSON_GetArraySize(v);
    cfg->user_content_types = calloc(n ? n : 1, sizeof *cfg->user_content_types);
    SRV_ASSERT(cfg->user_content_types);
    for (const cJSON *m = v->child; m; m = m->next) {
        const cJSON *num = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 0) : m;
        const cJSON *mime = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 1) : NULL;
        if (!cJSON_IsNumber(num) || num->valuedouble < 1024 || num->valuedouble > 65535 ||
            num->valuedouble != (double)(int)num->valuedouble || (mime && !cJSON_IsString(mime))) {
            fail_at(ctx, 3, "user content type \"%s\" needs a number from 1024 to 65535 "
                    "(optionally [number, \"mime type\"])", m->string);
            return false;
        }
        CfgUserContentType *t = &cfg->user_content_types[cfg->nuser_content_types++];
        t->name = dup_or_die(m->string);
        t->number = num->valueint;
        t->mime = dup_or_die(mime ? mime->valuestring : "application/octet-stream");
    }
    return true;
}

static bool parse_dictionary(CfgCtx *ctx, const cJSON *v, Cfg *cfg)
{
    if (!cJSON_IsObject(v)) {
        fail_at(ctx, 3, "expected an object {\"gggg,eeee\": [VR, Name, min, max, creator]}");
        return false;
    }
    for (size_t i = 0; i < cfg->ndictionary; i++) {
        free(cfg->dictionary[i].vr); free(cfg->dictionary[i].name); free(cfg->dictionary[i].private_creator);
    }
    free(cfg->dictionary);
    cfg->ndictionary = 0;
    size_t n = (size_t)cJSON_GetArraySize(v);
    cfg->dictionary = calloc(n ? n : 1, sizeof *cfg->dictionary);
    SRV_ASSERT(cfg->dictionary);
    for (const cJSON *d = v->child; d; d = d->next) {
        unsigned g, e;
        char tail;
        const cJSON *vr = cJSON_GetArrayItem(d, 0), *name = cJSON_GetArrayItem(d, 1);
        if (strlen(d->string) != 9 || sscanf(d->string, "%4x,%4x%c", &g, &e, &tail) != 2 ||
            !cJSON_IsArray(d) || !cJSON_IsString(vr) || strlen(vr->valuestring) != 2 ||
            !isupper((unsigned char)vr->valuestring[0]) ||
            !isupper((unsigned char)vr->valuestring[1]) || !cJSON_IsString(name) ||
            !*name->valuestring) {
            fail_at(ctx, 3, "entry \"%s\" must be \"gggg,eeee\": [VR, Name, ...]", d->string);
            return false;
        }
        const cJSON *mn0 = cJSON_GetArrayItem(d, 2), *mx0 = cJSON_GetArrayItem(d, 3);
        const cJSON *pc0 = cJSON_GetArrayItem(d, 4);
        bool bad_min = mn0 && (!cJSON_IsNumber(mn0) || mn0->valuedouble < 0 || mn0->valuedouble > 1e6 ||
                               mn0->valuedouble != (double)(int)mn0->valuedouble);
        bool bad_max = mx0 && (!cJSON_IsNumber(mx0) || mx0->valuedouble < 0 || mx0->valuedouble > 1e6 ||
                               mx0->valuedouble != (double)(int)mx0->valuedouble);
        if (bad_min || bad_max || (pc0 && !cJSON_IsString(pc0)) || cJSON_GetArraySize(d) > 5) {
            fail_at(ctx, 3, "entry \"%s\": multiplicities must be integers >= 0 (max 0 = "
                    "unbounded), the private creator a string", d->string);
            return false;
        }
        CfgDictEntry *x = &cfg->dictionary[cfg->ndictionary++];
        x->tag = (uint32_t)(g << 16 | e);
        x->vr = dup_or_die(vr->valuestring);
        x->name = dup_or_die(name->valuestring);
        const cJSON *mn = cJSON_GetArrayItem(d, 2), *mx = cJSON_GetArrayItem(d, 3), *pc = cJSON_GetArrayItem(d, 4);
        x->min_multiplicity = cJSON_IsNumber(mn) ? mn->valueint : 1;
        x->max_multiplicity = cJSON_IsNumber(mx) ? mx->valueint : 1;
        if (x->max_multiplicity == 0) x->max_multiplicity = -1; /* Orthanc's 0 = arbitrary */
        x->private_creator = cJSON_IsString(pc) ? dup_or_die(pc->valuestring) : NULL;
    }
    return true;
}

/* ---- scalar options ---- */

static const char *choices_of(const char *option)
{
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++)
        if (!strcmp(choices[i].option, option)) return choices[i].choices;
    return NULL;
}

/* true if option takes any value or `value` is one of its choices; then `out` is the canonical
 * spelling ("" when the option has no choices). */
static bool pick_choice(const char *option, const char *value, char *out, size_t size)
{
    out[0] = '\0';
    const char *list = choices_of(option);
    if (!list) return true;
    size_t n = strlen(value);
    for (const char *c = list; *c;) {
        size_t len = strcspn(c, "|");
        if (len == n && !strncasecmp(c, value, n) && len < size) {
            memcpy(out, c, len);
            out[len] = '\0';
            return true;
        }
        c += len;
        if (*c == '|') c++;
    }
    return false;
}

static bool set_option(CfgCtx *ctx, const CfgOption *o, const cJSON *v, Cfg *cfg)
{
    char *base = (char *)cfg;
    ctx->option = o->name;
    switch (o->type) {
    case CFG_INT:
    case CFG_U64: {
        double d;
        if (cJSON_IsNumber(v)) d = v->valuedouble;
        else { fail_at(ctx, 3, "expected a number"); return false; }
        if (d < (double)o->min || d > (double)o->max || d != (double)(long long)d) {
            fail_at(ctx, 3, "expected an integer from %lld to %lld", o->min, o->max);
            return false;
        }
        if (o->type == CFG_INT) *(int *)(base + o->offset) = (int)d;
        else *(uint64_t *)(base + o->offset) = (uint64_t)d;
        return true;
    }
    case CFG_BOOL:
        if (!cJSON_IsBool(v)) { fail_at(ctx, 3, "expected true or false"); return false; }
        *(bool *)(base + o->offset) = cJSON_IsTrue(v);
        if (o->offset == OFF(authentication_enabled)) cfg->authentication_explicit = true;
        return true;
    case CFG_STRING: {
        if (!cJSON_IsString(v)) { fail_at(ctx, 3, "expected a string"); return false; }
        const char *value = v->valuestring;
        size_t len = strlen(value);
        if (o->max > 0 && (len < (size_t)o->min || len > (size_t)o->max)) {
            fail_at(ctx, 3, "expected %lld to %lld characters, got %zu", o->min, o->max, len);
            return false;
        }
        char canonical[64];
        if (!pick_choice(o->name, value, canonical, sizeof canonical)) {
            fail_at(ctx, 3, "\"%.40s\" is not one of %s", value, choices_of(o->name));
            return false;
        }
        if (canonical[0]) value = canonical;
        char **p = (char **)(base + o->offset);
        free(*p);
        *p = dup_or_die(value);
        return true;
    }
    case CFG_SPECIAL:
        return o->parse(ctx, v, cfg);
    }
    return false;
}

/* "DicomAet" -> "DICOM_AET", "HttpThreadsCount" -> "HTTP_THREADS_COUNT". */
TESTABLE void cfg_env_name(const char *option, char *out, size_t size)
{
    if (!strcmp(option, "PostgreSQL")) { /* one word in Orthanc's images: ORTHANC__POSTGRESQL */
        snprintf(out, size, "ORTHANC__POSTGRESQL");
        return;
    }
    size_t n = (size_t)snprintf(out, size, "ORTHANC__");
    for (size_t i = 0; option[i] && n + 2 < size; i++) {
        char c = option[i];
        if (i > 0 && isupper((unsigned char)c) &&
            (islower((unsigned char)option[i - 1]) || isdigit((unsigned char)option[i - 1]) ||
             (option[i + 1] && islower((unsigned char)option[i + 1]) &&
              isupper((unsigned char)option[i - 1]))))
            out[n++] = '_';
        out[n++] = (char)toupper((unsigned char)c);
    }
    out[n] = '\0';
}

/* Converts an environment value to the cJSON the option expects. */
static cJSON *env_value(const CfgOption *o, const char *s)
{
    switch (o->type) {
    case CFG_INT:
    case CFG_U64: {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
            return NULL; /* strtoll would skip spaces and take '+' */
        long long x = strtoll(s, &end, 10);
        if (*end || errno) return NULL;
        return cJSON_CreateNumber((double)x);
    }
    case CFG_BOOL:
        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes")) return cJSON_CreateTrue();
        if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no")) return cJSON_CreateFalse();
        return NULL;
    case CFG_STRING:
        return cJSON_CreateString(s);
    case CFG_SPECIAL:
        return cJSON_Parse(s);
    }
    return NULL;
}

/* Replaces comments with spaces, keeping newlines and string contents. Returns -1, or the
 * offset of a block comment that is never closed. */
TESTABLE long cfg_blank_comments(char *s)
{
    bool in_string = false;
    for (char *p = s; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_string = false;
        } else if (*p == '"') {
            in_string = true;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n') *p++ = ' ';
            if (!*p) break;
        } else if (p[0] == '/' && p[1] == '*') {
            long start = (long)(p - s);
            *p++ = ' ';
            *p = ' ';
            while (p[1] && !(p[1] == '*' && p[2] == '/')) { p++; if (*p != '\n') *p = ' '; }
            if (p[1]) { p[1] = ' '; p[2] = ' '; p += 2; }
            else return start;
        }
    }
    return -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            *len = fread(buf, 1, (size_t)n, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static void set_defaults(Cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char *base = (char *)cfg;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const CfgOption *o = &options[i];
        switch (o->type) {
        case CFG_INT: *(int *)(base + o->offset) = (int)o->def; break;
        case CFG_U64: *(uint64_t *)(base + o->offset) = (uint64_t)o->def; break;
        case CFG_BOOL: *(bool *)(base + o->offset) = o->def != 0; break;
        case CFG_STRING: *(char **)(base + o->offset) = o->def_str ? dup_or_die(o->def_str) : NULL; break;
        case CFG_SPECIAL: break;
        }
    }
    pg_defaults(&cfg->pg);
    dw_defaults(&cfg->dicomweb);
}

static const CfgOption *find_option(const char *name)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (!strcmp(options[i].name, name)) return &options[i];
    return NULL;
}

static bool is_ignored(const char *name)
{
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (!strcmp(ignored[i], name)) return true;
    return false;
}

static bool load_file(CfgError *err, const char *path, Cfg *cfg)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        err->code = 1;
        snprintf(err->message, sizeof err->message, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = false;
    cJSON *root = NULL;
    long open_comment = cfg_blank_comments(text);
    if (open_comment >= 0) {
        err->code = 2;
        snprintf(err->message, sizeof err->message, "%s:%d: comment never closed (missing */)",
                 path, line_at(text, text + open_comment));
        goto out;
    }
    if (strlen(text) != len) {
        err->code = 2;
        snprintf(err->message, sizeof err->message, "%s:%d: NUL byte in the file", path,
                 line_at(text, text + strlen(text)));
        goto out;
    }
    /* require_null_terminated: only whitespace may follow the top-level value */
    const char *end = NULL;
    root = cJSON_ParseWithOpts(text, &end, true);
    if (!root || !cJSON_IsObject(root)) {
        const char *at = root ? text : (end ? end : cJSON_GetErrorPtr());
        if (!at || at < text || at > text + len) at = text;
        err->code = 2;
        snprintf(err->message, sizeof err->message, "%s:%d: %s", path, line_at(text, at),
                 root ? "the top level must be a JSON object" : "malformed JSON");
        goto out;
    }
    CfgCtx ctx = { .err = err, .source = path, .text = text };
    for (const cJSON *item = root->child; item; item = item->next) {
        const CfgOption *o = find_option(item->string);
        if (o) {
            if (!set_option(&ctx, o, item, cfg)) goto out;
        } else if (!is_ignored(item->string)) {
            SRV_LOG_WARN("config", "%s:%d: unknown option \"%s\" ignored", path,
                         line_of(text, item->string), item->string);
        }
    }
    ok = true;
out:
    cJSON_Delete(root);
    free(text);
    return ok;
}

/* Warns about ORTHANC__* variables that name no option (a typo would otherwise be silent).
 * ORTHANC__<IGNORED>[__<sub>] (settings of Orthanc plugins, say) pass quietly. */
static void check_env_names(void)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "ORTHANC__", 9)) continue;
        size_t len = strcspn(*e, "=");
        const char *sub = strstr(*e + 9, "__");
        size_t head = sub && (size_t)(sub - *e) < len ? (size_t)(sub - *e) : len;
        char name[96];
        bool known = false, quiet = false;
        for (size_t i = 0; i < NOPTIONS && !known && !quiet; i++) {
            cfg_env_name(options[i].name, name, sizeof name);
            known = strlen(name) == len && !strncmp(name, *e, len);
            /* a member of a section in Orthanc's nested style (ORTHANC__DICOM_WEB__ENABLE) */
            quiet = options[i].type == CFG_SPECIAL && head < len && strlen(name) == head && !strncmp(name, *e, head);
        }
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0] && !known && !quiet; i++) {
            cfg_env_name(ignored[i], name, sizeof name);
            quiet = strlen(name) == head && !strncmp(name, *e, head);
        }
        if (!known && !quiet)
            SRV_LOG_WARN("config", "environment variable %.*s names no option: ignored",
                         (int)(len > 80 ? 80 : len), *e);
    }
}

static bool load_env(CfgError *err, Cfg *cfg)
{
    check_env_names();
    CfgCtx ctx = { .err = err, .source = "environment" };
    for (size_t i = 0; i < NOPTIONS; i++) {
        char name[96];
        cfg_env_name(options[i].name, name, sizeof name);
        const char *s = getenv(name);
        if (!s) continue;
        cJSON *v = env_value(&options[i], s);
        ctx.option = options[i].name;
        if (!v) {
            err->code = 3;
            snprintf(err->message, sizeof err->message, "environment %s=\"%.60s\": not a valid %s for option \"%s\"",
                     name, s, options[i].type == CFG_BOOL ? "boolean" : options[i].type == CFG_SPECIAL ? "JSON value" : "integer",
                     options[i].name);
            return false;
        }
        bool ok = set_option(&ctx, &options[i], v, cfg);
        cJSON_Delete(v);
        if (!ok) {
            char inner[256];
            memcpy(inner, err->message, sizeof inner);
            snprintf(err->message, sizeof err->message, "%.180s (from %.60s)", inner, name);
            return false;
        }
    }
    return true;
}

bool cfg_load(CfgError *err, const char *path, Cfg *out)
{
    set_defaults(out);
    if (path && !load_file(err, path, out)) goto fail;
    if (!load_env(err, out)) goto fail;
    if (!out->index_dir) out->index_dir = dup_or_die(out->storage_dir);
    if (!out->authentication_explicit) out->authentication_enabled = out->remote_access_allowed;
    return true;
fail:
    cfg_cleanup(out);
    return false;
}

void cfg_cleanup(Cfg *cfg)
{
    char *base = (char *)cfg;
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].type == CFG_STRING) free(*(char **)(base + options[i].offset));
    for (size_t i = 0; i < cfg->nusers; i++) { free(cfg->users[i].name); free(cfg->users[i].password); }
    free(cfg->users);
    for (size_t i = 0; i < cfg->nmodalities; i++) cfg_modality_free(&cfg->modalities[i]);
    free(cfg->modalities);
    for (size_t i = 0; i < cfg->ndictionary; i++) {
        free(cfg->dictionary[i].vr); free(cfg->dictionary[i].name); free(cfg->dictionary[i].private_creator);
    }
    free(cfg->dictionary);
    for (size_t i = 0; i < cfg->nuser_metadata; i++) free(cfg->user_metadata[i].name);
    free(cfg->user_metadata);
    free(cfg->pg.host); free(cfg->pg.database); free(cfg->pg.username); free(cfg->pg.password);
    free(cfg->pg.connection_uri);
    free_user_content_types(cfg);
    free(cfg->dicomweb.root); free(cfg->dicomweb.host); free(cfg->dicomweb.studies_metadata);
    free(cfg->dicomweb.series_metadata); free(cfg->dicomweb.public_root); free(cfg->dicomweb.servers);
    free(cfg->orthanc_peers);
    memset(cfg, 0, sizeof *cfg);
}

/* For the unit test: the option names in table order. */
TESTABLE const char *cfg_option_name(size_t i) { return i < NOPTIONS ? options[i].name : NULL; }
TESTABLE bool cfg_option_ignored(const char *name) { return is_ignored(name); }
