/* create.c -- /tools/create-dicom: a new instance from JSON tags (and optional content: an
 * image, a PDF), completed with the main tags of its parent, built in dicom/ (dcm_create) and
 * stored through the one ingest path, like an upload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/server.h"
#include "server/store.h"
#include "storage/storage.h"

/* Adds the main tags of the parent (and its ancestors) to tags, where tags lacks them. */
static bool add_parent_tags(SrvError *err, Srv *srv, cJSON *tags, const char *parent)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, -1, parent, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    if (r.level > IDX_SERIES) { /* Orthanc: a patient, study or series */
        idx_resource_cleanup(&r);
        return srv_fail(err, SRV_BAD_REQUEST, "\"Parent\" must be a patient, a study or a series");
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
        if (!idx_resource_get(&se, srv->db, pl, pid, &r)) {
            srv_error_from_sto(err, &se);
            return false;
        }
    }
    idx_resource_cleanup(&r);
    return true;
}

bool srv_data_uri_decode(SrvError *err, const char *s, char *type, size_t type_size,
                         unsigned char **bytes, size_t *len)
{
    const char *semi = s ? strstr(s, ";base64,") : NULL;
    if (!s || strncmp(s, "data:", 5) || !semi || (size_t)(semi - s - 5) >= type_size)
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Content\" must be a data URI: data:<mime>;base64,<data>");
    snprintf(type, type_size, "%.*s", (int)(semi - s - 5), s + 5);
    *bytes = srv_base64_decode(semi + 8, strlen(semi + 8), len);
    if (!*bytes) return srv_fail(err, SRV_BAD_FILE_FORMAT, "\"Content\": malformed base64");
    return true;
}

/* The tag named key (a name or "gggg,eeee") present in tags? */
static bool has_tag(const cJSON *tags, const char *name, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(tags, name) || cJSON_GetObjectItemCaseSensitive(tags, key);
}

static void set_tag(cJSON *tags, const char *name, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(tags, key);
    cJSON_DeleteItemFromObjectCaseSensitive(tags, name);
    cJSON_AddStringToObject(tags, name, value);
}

static bool create_one(SrvError *err, Srv *srv, const cJSON *tags, const char *private_creator,
                       bool interpret_binary, const char *mime, const void *content,
                       size_t content_len, const IngestOrigin *origin, IngestResult *res)
{
    void *file = NULL;
    size_t file_len = 0;
    DcmError de = { 0 };
    if (!dcm_create_ex(&de, tags, private_creator, interpret_binary, mime ? mime : "", content,
                       content_len, &file, &file_len)) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    bool ok = ingest_buffer(err, srv, file, file_len, origin, res);
    free(file);
    return ok;
}

bool srv_create_dicom_series(SrvError *err, Srv *srv, cJSON *tags, const char *parent,
                             const char *private_creator, bool interpret_binary, const cJSON *items,
                             const IngestOrigin *origin, char series_id[SRV_ID_LEN])
{
    int n = cJSON_GetArraySize(items);
    if (n <= 0) return srv_fail(err, SRV_BAD_REQUEST, "\"Content\" is an empty array: no payload");
    if (parent && !add_parent_tags(err, srv, tags, parent)) return false;
    /* one patient, study and series for every instance: generated here once when absent */
    char uid[SRV_UID_2_25_LEN > 64 ? SRV_UID_2_25_LEN : 64], num[24];
    if (!has_tag(tags, "PatientID", "0010,0020")) {
        srv_uuid_new(uid);
        set_tag(tags, "PatientID", "0010,0020", uid);
    }
    if (!has_tag(tags, "StudyInstanceUID", "0020,000d")) {
        srv_uid_2_25_random(uid);
        set_tag(tags, "StudyInstanceUID", "0020,000d", uid);
    }
    if (!has_tag(tags, "SeriesInstanceUID", "0020,000e")) {
        srv_uid_2_25_random(uid);
        set_tag(tags, "SeriesInstanceUID", "0020,000e", uid);
    }
    snprintf(num, sizeof num, "%d", n);
    set_tag(tags, "ImagesInAcquisition", "0020,1002", num);
    set_tag(tags, "NumberOfTemporalPositions", "0020,0105", "1");
    series_id[0] = '\0';
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const cJSON *item = cJSON_GetArrayItem(items, i);
        const cJSON *payload = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "Content") : item;
        const cJSON *extra = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "Tags") : NULL;
        if (!cJSON_IsString(payload) || (extra && !cJSON_IsObject(extra))) {
            ok = srv_fail(err, SRV_CREATE_DICOM_USE_CONTENT, "item %d of \"Content\" must be a data "
                          "URI or an object {\"Content\": <data URI>, \"Tags\": {...}}", i);
            break;
        }
        cJSON *t = cJSON_Duplicate(tags, 1);
        if (!t) { ok = srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); break; }
        const cJSON *m;
        cJSON_ArrayForEach(m, extra)
        {
            cJSON_DeleteItemFromObjectCaseSensitive(t, m->string);
            cJSON_AddItemToObject(t, m->string, cJSON_Duplicate(m, 1));
        }
        snprintf(num, sizeof num, "%d", i + 1);
        set_tag(t, "InstanceNumber", "0020,0013", num);
        set_tag(t, "ImageIndex", "0054,1330", num);
        char type[64];
        unsigned char *bytes = NULL;
        size_t len = 0;
        IngestResult res;
        ok = srv_data_uri_decode(err, payload->valuestring, type, sizeof type, &bytes, &len) &&
             create_one(err, srv, t, private_creator, interpret_binary, type, bytes, len, origin, &res);
        free(bytes);
        cJSON_Delete(t);
        if (ok && !series_id[0]) snprintf(series_id, SRV_ID_LEN, "%s", res.ids[SRV_SERIES]);
    }
    if (!ok && series_id[0]) { /* as Orthanc: nothing of the series is left */
        SrvError de = { 0 };
        int rl;
        char rid[SRV_ID_LEN];
        if (!srv_delete(&de, srv, SRV_SERIES, series_id, &rl, rid))
            SRV_LOG_WARN("http", "create-dicom: cannot remove the partial series %s: %s", series_id, de.message);
    }
    return ok;
}

bool srv_create_dicom(SrvError *err, Srv *srv, cJSON *tags, const char *parent,
                      const char *private_creator, bool interpret_binary, const char *mime,
                      const void *content, size_t content_len, const IngestOrigin *origin,
                      IngestResult *res)
{
    if (parent && !add_parent_tags(err, srv, tags, parent)) return false;
    return create_one(err, srv, tags, private_creator, interpret_binary, mime, content, content_len,
                      origin, res);
}
