/* metadata.c -- metadata of resources, as Orthanc's REST API handles them. The automatic
 * items (ReceptionDate, Origin, ...) are written by ingest and are read-only; put and delete
 * accept only the user metadata declared in "UserMetadata" (by name or number). Each item has
 * a revision (Orthanc's ETag / If-Match). Every put and delete logs an "UpdatedMetadata"
 * change, here, so that no caller can forget it. */
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
    return false;
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
                      const char *value, int64_t if_match, int64_t *revision)
{
    StoError se = { 0 };
    if (!idx_metadata_put(&se, srv->db, level, id, name, value, if_match, revision)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    log_updated(srv, level, id);
    return true;
}

bool srv_metadata_delete(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                         int64_t if_match)
{
    StoError se = { 0 };
    if (!idx_metadata_remove(&se, srv->db, level, id, name, if_match)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    log_updated(srv, level, id);
    return true;
}
