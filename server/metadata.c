/* metadata.c -- metadata of resources, as Orthanc's REST API handles them. The automatic
 * items (ReceptionDate, Origin, ...) are written by ingest and are read-only; put and delete
 * accept only the user metadata declared in "UserMetadata" (by name or number). Each item has
 * a revision (Orthanc's ETag / If-Match). Every put and delete logs an "UpdatedMetadata"
 * change, here, so that no caller can forget it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/dicomweb.h"
#include "server/server.h"
#include "storage/storage.h"

/* Orthanc's numbers of its built-in metadata (MetadataType in Enumerations.h). */
static const struct { int number; const char *name; } BUILTIN[] = {
    { 1, "IndexInSeries" },      { 2, "ReceptionDate" },   { 3, "RemoteAET" },
    { 4, "ExpectedNumberOfInstances" }, { 5, "ModifiedFrom" }, { 6, "AnonymizedFrom" },
    { 7, "LastUpdate" },         { 8, "Origin" },          { 9, "TransferSyntax" },
    { 10, "SopClassUid" },       { 11, "RemoteIP" },       { 12, "CalledAET" },
    { 13, "HttpUsername" },      { 14, "PixelDataOffset" },
};

bool srv_metadata_resolve(const Cfg *cfg, const char *in, char *out, size_t size, bool *user)
{
    char *end;
    long num = strtol(in, &end, 10);
    bool numeric = *in && !*end;
    *user = false;
    for (size_t i = 0; i < cfg->nuser_metadata; i++) {
        if ((numeric && cfg->user_metadata[i].number == num) || !strcmp(cfg->user_metadata[i].name, in)) {
            snprintf(out, size, "%s", cfg->user_metadata[i].name);
            *user = true;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof BUILTIN / sizeof BUILTIN[0]; i++) {
        if ((numeric && BUILTIN[i].number == num) || !strcmp(BUILTIN[i].name, in)) {
            snprintf(out, size, "%s", BUILTIN[i].name);
            return true;
        }
    }
    if (numeric && num >= 1024 && num <= 65535) { /* Orthanc: any user number, undeclared */
        snprintf(out, size, "%ld", num);
        *user = true;
        return true;
    }
    return false;
}

void srv_metadata_etag(int64_t revision, const char *value, char out[SRV_ETAG_LEN])
{
    char md5[33];
    srv_md5_hex(value, strlen(value), md5);
    snprintf(out, SRV_ETAG_LEN, "\"%lld-%s\"", (long long)revision, md5);
}

int srv_metadata_parse_etag(const char *in, int64_t *revision, char md5[33])
{
    if (!in) return 0;
    while (*in == ' ') in++;
    size_t n = strlen(in);
    while (n && in[n - 1] == ' ') n--;
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
        in++;
        n -= 2;
    }
    char buf[96];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, in, n);
    buf[n] = 0;
    char *dash = strchr(buf, '-');
    if (!dash || dash == buf || strlen(dash + 1) != 32) return -1;
    *dash = 0;
    char *end;
    long long r = strtoll(buf, &end, 10);
    if (*end || r < 0) return -1;
    for (const char *h = dash + 1; *h; h++)
        if (!strchr("0123456789abcdefABCDEF", *h)) return -1;
    *revision = r;
    for (int i = 0; i < 32; i++) md5[i] = (char)tolower((unsigned char)dash[1 + i]);
    md5[32] = 0;
    return 1;
}

/* An If-Match of md5 (with its revision in if_match) on the current item: a value that differs
 * is a conflict (409), as a revision that differs; an absent item has nothing to match. */
static bool check_md5(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                      int64_t *if_match, const char *if_match_md5)
{
    if (!if_match_md5 || *if_match < 0) return true;
    char *cur = NULL;
    int64_t rev = 0;
    StoError se = { 0 };
    if (!idx_metadata_get(&se, srv->db, level, id, name, &cur, &rev)) {
        if (se.code != STO_ERR_NOT_FOUND) {
            srv_error_from_sto(err, &se);
            return false;
        }
        *if_match = -1; /* Orthanc: nothing to compare with, the item is written */
        return true;
    }
    char md5[33];
    srv_md5_hex(cur, strlen(cur), md5);
    free(cur);
    if (rev != *if_match || strcmp(md5, if_match_md5))
        return srv_fail(err, SRV_REVISION, "A bad revision number was provided, which might "
                                           "indicate conflict between multiple writers");
    return true;
}

cJSON *srv_metadata_list(SrvError *err, Srv *srv, int level, const char *id, bool expand)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    cJSON *o = expand ? cJSON_CreateObject() : cJSON_CreateArray();
    for (size_t i = 0; i < r.nmeta; i++) {
        if (!strcmp(r.meta_names[i], DW_METADATA_NAME)) continue; /* internal: DICOMweb's JSON */
        if (expand) cJSON_AddStringToObject(o, r.meta_names[i], r.meta_values[i]);
        else cJSON_AddItemToArray(o, cJSON_CreateString(r.meta_names[i]));
    }
    idx_resource_cleanup(&r);
    return o;
}

bool srv_metadata_get(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                      char **value, int64_t *revision)
{
    StoError se = { 0 };
    if (idx_metadata_get(&se, srv->db, level, id, name, value, revision)) return true;
    srv_error_from_sto(err, &se);
    return false;
}

static void log_updated(Srv *srv, int level, const char *id)
{
    SrvError e = { 0 };
    if (!srv_change_log(&e, srv, "UpdatedMetadata", level, id))
        SRV_LOG_WARN("metadata", "cannot log UpdatedMetadata: %s", e.message);
}

bool srv_metadata_put(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, const char *if_match_md5,
                      int64_t *revision)
{
    StoError se = { 0 };
    if (!check_md5(err, srv, level, id, name, &if_match, if_match_md5)) return false;
    if (!idx_metadata_put(&se, srv->db, level, id, name, value, if_match, revision)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    log_updated(srv, level, id);
    return true;
}

bool srv_metadata_delete(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                         int64_t if_match, const char *if_match_md5)
{
    StoError se = { 0 };
    if (!check_md5(err, srv, level, id, name, &if_match, if_match_md5)) return false;
    if (!idx_metadata_remove(&se, srv->db, level, id, name, if_match)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    log_updated(srv, level, id);
    return true;
}
