/* create.c -- /tools/create-dicom: a new instance from JSON tags (and optional content: an
 * image, a PDF), completed with the main tags of its parent, built in dicom/ (dcm_create) and
 * stored through the one ingest path, like an upload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/server.h"
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

bool srv_create_dicom(SrvError *err, Srv *srv, cJSON *tags, const char *parent,
                      const char *private_creator, const char *mime, const void *content, size_t content_len,
                      const IngestOrigin *origin, IngestResult *res)
{
    if (parent && !add_parent_tags(err, srv, tags, parent)) return false;
    void *file = NULL;
    size_t file_len = 0;
    DcmError de = { 0 };
    if (!dcm_create_ex(&de, tags, private_creator, mime ? mime : "", content, content_len, &file,
                       &file_len)) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    bool ok = ingest_buffer(err, srv, file, file_len, origin, res);
    free(file);
    return ok;
}
