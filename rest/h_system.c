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
    cJSON_AddNumberToObject(o, "DatabaseVersion", srv_database_version());
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
    SrvTotals t;
    SrvError e = { 0 };
    if (!srv_totals(&e, call->srv, &t)) {
        rest_reply_error(call, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "CountInstances", (double)t.count[SRV_INSTANCE]);
    cJSON_AddNumberToObject(o, "CountPatients", (double)t.count[SRV_PATIENT]);
    cJSON_AddNumberToObject(o, "CountSeries", (double)t.count[SRV_SERIES]);
    cJSON_AddNumberToObject(o, "CountStudies", (double)t.count[SRV_STUDY]);
    rest_add_size(o, "TotalDiskSize", t.disk_size);
    rest_add_size(o, "TotalUncompressedSize", t.uncompressed_size);
    rest_reply_json(call, 200, o);
}

/* GET /changes[?since=N][&limit=N][&last] */
void h_changes(RestCall *call)
{
    uint64_t since, limit;
    if (!rest_arg_u64(call, "since", 0, &since) || !rest_arg_u64(call, "limit", 100, &limit)) return;
    bool empty_page = limit == 0 && rest_arg(call, "limit") && !rest_arg(call, "last");
    if (limit == 0 || limit > 10000) limit = limit ? 10000 : 100;
    SrvError e = { 0 };
    cJSON *o = srv_changes_json(&e, call->srv, (int64_t)since, limit,
                                rest_arg(call, "last") != NULL || empty_page);
    if (!o) {
        rest_reply_error(call, &e);
        return;
    }
    if (empty_page) { /* limit=0, as Orthanc: no change, not done, Last = the latest change */
        cJSON_ReplaceItemInObject(o, "Changes", cJSON_CreateArray());
        cJSON_ReplaceItemInObject(o, "Done", cJSON_CreateFalse());
    }
    rest_reply_json(call, 200, o);
}

/* DELETE /changes */
void h_changes_delete(RestCall *call)
{
    SrvError e = { 0 };
    if (!srv_changes_clear(&e, call->srv)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}
