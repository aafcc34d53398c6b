/* h_system.c -- /system, /statistics and /changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"

/* GET /system */
void h_system(RestCall *call)
{
    const Cfg *cfg = &call->srv->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ApiVersion", MP_API_VERSION);
    cJSON_AddBoolToObject(o, "CheckRevisions", 0);
    cJSON_AddNullToObject(o, "DatabaseBackendPlugin");
    cJSON_AddNumberToObject(o, "DatabaseVersion", IDX_SCHEMA_VERSION);
    cJSON_AddStringToObject(o, "DicomAet", cfg->dicom_aet);
    cJSON_AddNumberToObject(o, "DicomPort", cfg->dicom_port);
    cJSON_AddNumberToObject(o, "HttpPort", cfg->http_port);
    cJSON_AddBoolToObject(o, "IsHttpServerSecure", cfg->ssl_enabled || !cfg->remote_access_allowed ||
                                                       cfg->authentication_enabled);
    cJSON_AddNumberToObject(o, "MaximumPatientCount", (double)cfg->maximum_patient_count);
    cJSON_AddStringToObject(o, "MaximumStorageMode", cfg->maximum_storage_mode ? cfg->maximum_storage_mode : "Recycle");
    cJSON_AddNumberToObject(o, "MaximumStorageSize", (double)cfg->maximum_storage_size);
    cJSON_AddStringToObject(o, "Name", cfg->name);
    cJSON_AddBoolToObject(o, "OverwriteInstances", cfg->overwrite_instances);
    cJSON_AddBoolToObject(o, "PluginsEnabled", 0);
    cJSON_AddStringToObject(o, "ServerName", MP_NAME);
    cJSON_AddStringToObject(o, "ServerVersion", MP_VERSION);
    cJSON_AddNullToObject(o, "StorageAreaPlugin");
    cJSON_AddBoolToObject(o, "StorageCompression", 0);
    cJSON *um = cJSON_CreateObject();
    for (size_t i = 0; i < cfg->nuser_metadata; i++)
        cJSON_AddNumberToObject(um, cfg->user_metadata[i].name, cfg->user_metadata[i].number);
    cJSON_AddItemToObject(o, "UserMetadata", um);
    /* The Orthanc version whose REST API this server answers like (ApiVersion 18). */
    cJSON_AddStringToObject(o, "Version", "1.10.1");
    rest_reply_json(call, 200, o);
}


/* GET /statistics: running totals, no scan. */
void h_statistics(RestCall *call)
{
    IdxTotals t;
    StoError se = { 0 };
    if (!idx_totals(&se, call->srv->db, &t)) {
        rest_fail_sto(call, &se);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "CountInstances", (double)t.count[IDX_INSTANCE]);
    cJSON_AddNumberToObject(o, "CountPatients", (double)t.count[IDX_PATIENT]);
    cJSON_AddNumberToObject(o, "CountSeries", (double)t.count[IDX_SERIES]);
    cJSON_AddNumberToObject(o, "CountStudies", (double)t.count[IDX_STUDY]);
    rest_add_size(o, "TotalDiskSize", t.disk_size);
    rest_add_size(o, "TotalUncompressedSize", t.uncompressed_size);
    rest_reply_json(call, 200, o);
}

/* GET /changes[?since=N][&limit=N][&last] */
void h_changes(RestCall *call)
{
    uint64_t since, limit;
    if (!rest_arg_u64(call, "since", 0, &since) || !rest_arg_u64(call, "limit", 100, &limit)) return;
    if (limit == 0 || limit > 10000) limit = limit ? 10000 : 100;
    IdxChange *ch = NULL;
    size_t n = 0;
    bool done = true;
    int64_t last = 0;
    StoError se = { 0 };
    bool ok = rest_arg(call, "last") ? idx_changes_last(&se, call->srv->db, &ch, &n, &last)
                                     : idx_changes(&se, call->srv->db, (int64_t)since, limit, &ch, &n, &done, &last);
    if (!ok) {
        rest_fail_sto(call, &se);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        char path[96];
        cJSON_AddStringToObject(c, "ChangeType", ch[i].type);
        cJSON_AddStringToObject(c, "Date", ch[i].date);
        cJSON_AddStringToObject(c, "ID", ch[i].id);
        snprintf(path, sizeof path, "/%s/%s", srv_level_route(ch[i].level), ch[i].id);
        cJSON_AddStringToObject(c, "Path", path);
        cJSON_AddStringToObject(c, "ResourceType", srv_level_name(ch[i].level));
        cJSON_AddNumberToObject(c, "Seq", (double)ch[i].seq);
        cJSON_AddItemToArray(a, c);
    }
    free(ch);
    cJSON_AddItemToObject(o, "Changes", a);
    cJSON_AddBoolToObject(o, "Done", done);
    cJSON_AddNumberToObject(o, "Last", (double)last);
    rest_reply_json(call, 200, o);
}

/* DELETE /changes */
void h_changes_delete(RestCall *call)
{
    StoError se = { 0 };
    if (!idx_changes_clear(&se, call->srv->db)) {
        rest_fail_sto(call, &se);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}
