/* h_tools.c -- Orthanc's /tools routes: find (search on main DICOM tags), lookup (a UID or ID
 * to the resources carrying it), create-dicom, now, now-local, generate-uid.
 *
 * DESIGN: /tools/find translates its body onto the one query engine (server/query.c, shared
 * with C-FIND), which matches main DICOM tags of the level and its ancestors in SQL. Matching is DICOM's, as Orthanc applies it: '*' and '?' wildcards,
 * '\\'-separated alternatives, ranges "a-b" for DA/DT/TM; PN values compare case-insensitively
 * unless "CaseSensitive": true (Orthanc's CaseSensitivePN default is false), other VRs exactly.
 * Tags outside the main DICOM tags are matched on the stored files by the query engine
 * (server/query.c), as Orthanc does.
 * /tools/create-dicom builds the file in dicom/ (dcm_create) and stores it through the one
 * ingest path, like an upload.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dicom/dicom.h"
#include "rest/rest_int.h"
#include "server/query.h"


/* ---- /tools/now, /tools/now-local, /tools/generate-uid ----------------------------------- */

static void reply_now(RestCall *call, bool local)
{
    time_t t = time(NULL);
    struct tm tm;
    if (local) localtime_r(&t, &tm);
    else gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
    rest_reply_text(call, 200, "text/plain", buf);
}

void h_tools_now(RestCall *call) { reply_now(call, false); }
void h_tools_now_local(RestCall *call) { reply_now(call, true); }

/* A "2.25." UID from 128 random bits (PS3.5 B.2), printed in decimal. */
static void uuid_uid(char out[64])
{
    char u[STO_UUID_LEN];
    sto_uuid_new(u);
    uint32_t w[4] = { 0 }; /* big-endian 32-bit words of the 128-bit number */
    int k = 0;
    for (const char *p = u; *p && k < 32; p++) {
        if (*p == '-') continue;
        int h = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        w[k / 8] = w[k / 8] << 4 | (uint32_t)h;
        k++;
    }
    char digits[48];
    int nd = 0;
    for (;;) { /* repeated division by 10 */
        uint64_t rem = 0;
        bool zero = true;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | w[i];
            w[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            if (w[i]) zero = false;
        }
        digits[nd++] = (char)('0' + rem);
        if (zero) break;
    }
    int o = snprintf(out, 64, "2.25.");
    while (nd > 0) out[o++] = digits[--nd];
    out[o] = '\0';
}

/* GET /tools/generate-uid?level=patient|study|series|instance */
void h_tools_generate_uid(RestCall *call)
{
    const char *level = rest_arg(call, "level");
    if (!level || (strcasecmp(level, "patient") && strcasecmp(level, "study") &&
                   strcasecmp(level, "series") && strcasecmp(level, "instance"))) {
        rest_fail(call, SRV_BAD_REQUEST, "argument \"level\" must be patient, study, series or instance");
        return;
    }
    char uid[64];
    if (!strcasecmp(level, "patient")) sto_uuid_new(uid); /* Orthanc: a UUID for PatientID */
    else uuid_uid(uid);
    rest_reply_text(call, 200, "text/plain", uid);
}

/* ---- /tools/find ------------------------------------------------------------------------- */

static int level_from_name(const char *s)
{
    static const char *const names[] = { "Patient", "Study", "Series", "Instance" };
    for (int l = 0; l < IDX_LEVELS; l++)
        if (s && !strcasecmp(s, names[l])) return l;
    return -1;
}

static bool json_u64(RestCall *call, const cJSON *body, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = 0;
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
        rest_fail(call, SRV_BAD_REQUEST, "\"%s\" must be a non-negative integer", key);
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* Collects the IDs of a /tools/find answer. */
typedef struct FindIds {
    char **ids;
    size_t n, cap;
    bool oom;
} FindIds;

static bool find_collect(void *ctx, const QryAnswer *a)
{
    FindIds *f = ctx;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        char **p = cap <= REST_MAX_ID_LIST / sizeof *p ? realloc(f->ids, cap * sizeof *p) : NULL;
        if (!p) {
            f->oom = true;
            return false;
        }
        f->ids = p;
        f->cap = cap;
    }
    if (!(f->ids[f->n] = strdup(a->id))) {
        f->oom = true;
        return false;
    }
    f->n++;
    return true;
}

/* POST /tools/find {Level, Query, Expand, Limit, Since, CaseSensitive}: a translation onto the
 * one query engine (server/query.c), which C-FIND uses too: tags outside the main DICOM tags
 * are matched on the stored files, as Orthanc does. */
void h_tools_find(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(body, "Level");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(body, "Query");
    int level = cJSON_IsString(lv) ? level_from_name(lv->valuestring) : -1;
    QryKey *keys = NULL;
    size_t n = 0;
    uint64_t limit, since;
    FindIds found = { 0 };
    if (level < 0 || !cJSON_IsObject(query)) {
        rest_fail(call, SRV_BAD_REQUEST, "/tools/find needs \"Level\" (Patient, Study, Series, Instance) and \"Query\" (an object)");
        goto out;
    }
    if (!json_u64(call, body, "Limit", &limit) || !json_u64(call, body, "Since", &since)) goto out;
    bool case_sensitive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "CaseSensitive"));
    bool expand = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Expand"));
    keys = calloc((size_t)cJSON_GetArraySize(query) + 1, sizeof *keys);
    if (!keys) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    const cJSON *q;
    cJSON_ArrayForEach(q, query) {
        uint32_t tag;
        if (!dcm_tag_parse(q->string, &tag)) {
            rest_fail(call, SRV_UNKNOWN_DICOM_TAG, "unknown DICOM tag \"%s\" in Query", q->string);
            goto out;
        }
        if (!cJSON_IsString(q)) {
            rest_fail(call, SRV_BAD_REQUEST, "the value of \"%s\" in Query must be a string", q->string);
            goto out;
        }
        if (qry_universal(q->valuestring)) continue; /* matches everything */
        keys[n].tag = tag;
        keys[n++].pattern = q->valuestring;
    }
    QryRequest rq = { .level = level, .keys = keys, .nkeys = n, .case_sensitive_pn = case_sensitive,
                      .since = since, .limit = limit, .ids_only = true };
    SrvError err = { 0 };
    if (!qry_run(&err, call->srv, &rq, find_collect, &found, NULL) || found.oom) {
        if (found.oom) srv_fail(&err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        rest_reply_error(call, &err);
        goto out;
    }
    rest_reply_ids(call, level, found.ids, found.n, expand);
out:
    idx_strings_free(found.ids, found.n);
    free(keys);
    cJSON_Delete(body);
}

/* ---- /tools/lookup ------------------------------------------------------------------------ */

/* POST /tools/lookup (body: a PatientID, StudyInstanceUID, SeriesInstanceUID or
 * SOPInstanceUID) -> [{ID, Path, Type}] */
void h_tools_lookup(RestCall *call)
{
    static const uint32_t keys[IDX_LEVELS] = { 0x00100020, 0x0020000d, 0x0020000e, 0x00080018 };
    char *value = strndup(call->body ? call->body : "", call->body_len);
    if (!value) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return;
    }
    srv_strip(value);
    cJSON *a = cJSON_CreateArray();
    for (int l = 0; l < IDX_LEVELS && *value; l++) {
        IdxFindConstraint c = { .level = l, .tag = keys[l], .pattern = value };
        char **ids = NULL;
        size_t n = 0;
        StoError se = { 0 };
        if (strchr(value, '\\')) break; /* a list is not one identifier */
        if (!idx_find(&se, call->srv->db, l, &c, 1, 0, 0, &ids, &n)) {
            free(value);
            cJSON_Delete(a);
            rest_fail_sto(call, &se);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            char path[96];
            snprintf(path, sizeof path, "/%s/%s", srv_level_route(l), ids[i]);
            cJSON_AddStringToObject(o, "ID", ids[i]);
            cJSON_AddStringToObject(o, "Path", path);
            cJSON_AddStringToObject(o, "Type", srv_level_name(l));
            cJSON_AddItemToArray(a, o);
        }
        idx_strings_free(ids, n);
    }
    free(value);
    rest_reply_json(call, 200, a);
}

/* ---- /tools/create-dicom ------------------------------------------------------------------ */

static int b64(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes base64 (whitespace and padding tolerated); *out malloc'd. false if malformed. */
static bool base64_decode(const char *s, unsigned char **out, size_t *len)
{
    size_t n = strlen(s), o = 0;
    unsigned char *d = malloc(n / 4 * 3 + 4);
    if (!d) return false;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' || isspace((unsigned char)s[i])) continue;
        int v = b64((unsigned char)s[i]);
        if (v < 0) { free(d); return false; }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
        }
    }
    *out = d;
    *len = o;
    return true;
}

/* Adds the main tags of the parent (and its ancestors) to tags, where tags lacks them. */
static bool add_parent_tags(RestCall *call, cJSON *tags, const char *parent)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, call->srv->db, -1, parent, &r)) {
        rest_fail_sto(call, &se);
        return false;
    }
    if (r.level > IDX_SERIES) { /* Orthanc: a patient, study or series */
        idx_resource_cleanup(&r);
        rest_fail(call, SRV_BAD_REQUEST, "\"Parent\" must be a patient, a study or a series");
        return false;
    }
    for (;;) {
        for (size_t i = 0; i < r.ntags; i++) {
            char key[16];
            snprintf(key, sizeof key, "%04x,%04x", r.tag_keys[i] >> 16, r.tag_keys[i] & 0xffff);
            bool present = cJSON_GetObjectItemCaseSensitive(tags, key) != NULL;
            const char *name = srv_main_tag_name(r.tag_keys[i]);
            if (name && cJSON_GetObjectItemCaseSensitive(tags, name)) present = true;
            if (!present) cJSON_AddStringToObject(tags, key, r.tag_values[i]);
        }
        if (r.level == IDX_PATIENT) break;
        char pid[IDX_ID_LEN];
        int pl = r.level - 1;
        snprintf(pid, sizeof pid, "%s", r.parent_id);
        idx_resource_cleanup(&r);
        if (!idx_resource_get(&se, call->srv->db, pl, pid, &r)) {
            rest_fail_sto(call, &se);
            return false;
        }
    }
    idx_resource_cleanup(&r);
    return true;
}

/* POST /tools/create-dicom {Tags, Content?, Parent?} -> {ID, Path} of the stored instance */
void h_tools_create_dicom(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    unsigned char *content = NULL;
    size_t content_len = 0;
    char type[64] = "";
    void *file = NULL;
    size_t file_len = 0;
    if (!body) return;
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "Tags");
    if (tags && !cJSON_IsObject(tags)) {
        rest_fail(call, SRV_BAD_REQUEST, "\"Tags\" must be an object");
        goto out;
    }
    if (!tags) {
        tags = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "Tags", tags);
    }
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(body, "Parent");
    if (cJSON_IsString(parent) && !add_parent_tags(call, tags, parent->valuestring)) goto out;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "Content");
    if (c) {
        /* "data:<type>;base64,<data>" */
        const char *s = cJSON_IsString(c) ? c->valuestring : NULL;
        const char *semi = s ? strstr(s, ";base64,") : NULL;
        if (!s || strncmp(s, "data:", 5) || !semi || (size_t)(semi - s - 5) >= sizeof type) {
            rest_fail(call, SRV_BAD_REQUEST, "\"Content\" must be a data URI: data:<mime>;base64,<data>");
            goto out;
        }
        snprintf(type, sizeof type, "%.*s", (int)(semi - s - 5), s + 5);
        if (!base64_decode(semi + 8, &content, &content_len)) {
            rest_fail(call, SRV_BAD_REQUEST, "\"Content\": malformed base64");
            goto out;
        }
    }
    DcmError de = { 0 };
    if (!dcm_create(&de, tags, type, content, content_len, &file, &file_len)) {
        SrvError e = { 0 };
        srv_error_from_dcm(&e, &de);
        rest_reply_error(call, &e);
        goto out;
    }
    SrvError err = { 0 };
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST,
                            .remote_ip = call->remote_ip[0] ? call->remote_ip : NULL,
                            .http_user = call->user };
    IngestResult res;
    if (!ingest_buffer(&err, call->srv, file, file_len, &origin, &res)) {
        rest_reply_error(call, &err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    char path[96];
    snprintf(path, sizeof path, "/instances/%s", res.ids[IDX_INSTANCE]);
    cJSON_AddStringToObject(o, "ID", res.ids[IDX_INSTANCE]);
    cJSON_AddStringToObject(o, "Path", path);
    rest_reply_json(call, 200, o);
out:
    free(file);
    free(content);
    cJSON_Delete(body);
}

static const RestRoute routes[] = {
    { "GET", "/tools/now", h_tools_now },
    { "GET", "/tools/now-local", h_tools_now_local },
    { "GET", "/tools/generate-uid", h_tools_generate_uid },
    { "POST", "/tools/find", h_tools_find },
    { "POST", "/tools/lookup", h_tools_lookup },
    { "POST", "/tools/create-dicom", h_tools_create_dicom },
};

const RestRouteTable rest_routes_tools = { routes, sizeof routes / sizeof routes[0] };
