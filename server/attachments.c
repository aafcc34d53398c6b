/* attachments.c -- the attachments of resources. The only one is the DICOM file of an
 * instance ("dicom", content type 1), stored uncompressed: compressed and uncompressed sizes
 * and MD5s are equal. The MD5 is computed on first demand (ingest does not hash, to stay
 * fast) and cached in the index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "storage/storage.h"

cJSON *srv_attachments_list(SrvError *err, Srv *srv, int level, const char *id)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    idx_resource_cleanup(&r);
    cJSON *a = cJSON_CreateArray();
    if (level == IDX_INSTANCE) cJSON_AddItemToArray(a, cJSON_CreateString("dicom"));
    return a;
}

/* The MD5 of a stored file into md5. */
static bool hash_file(SrvError *err, Srv *srv, const char *uuid, char md5[33])
{
    void *buf = NULL;
    size_t len = 0;
    StoError se = { 0 };
    if (!sto_area_read(&se, srv->area, uuid, &buf, &len)) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
        return false;
    }
    srv_md5_hex(buf, len, md5);
    free(buf);
    return true;
}

bool srv_attachment_get(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                        bool with_md5, SrvAttachment *out)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    memset(out, 0, sizeof *out);
    if (!idx_resource_get(&se, srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    if (level != IDX_INSTANCE || (strcmp(name, "dicom") && strcmp(name, "1"))) {
        idx_resource_cleanup(&r);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "no attachment \"%s\"", name);
    }
    snprintf(out->uuid, sizeof out->uuid, "%s", r.uuid);
    out->size = r.file_size;
    snprintf(out->md5, sizeof out->md5, "%s", r.md5);
    idx_resource_cleanup(&r);
    if (with_md5 && !out->md5[0]) {
        if (!hash_file(err, srv, out->uuid, out->md5)) return false;
        if (!idx_attachment_set_md5(&se, srv->db, out->uuid, out->md5))
            SRV_LOG_WARN("attachments", "cannot cache the MD5 of %s: %s", out->uuid, se.message);
    }
    return true;
}

bool srv_attachment_verify(SrvError *err, Srv *srv, int level, const char *id,
                           const char *name)
{
    SrvAttachment a;
    if (!srv_attachment_get(err, srv, level, id, name, true, &a)) return false;
    char md5[33];
    SrvError e = { 0 };
    if (!hash_file(&e, srv, a.uuid, md5)) { /* as before: the storage error as it is */
        *err = e;
        if (err->code == SRV_INEXISTENT_FILE) err->code = SRV_UNKNOWN_RESOURCE;
        return false;
    }
    if (strcmp(md5, a.md5)) return srv_fail(err, SRV_CORRUPTED_FILE, "the MD5 of the stored file does not match");
    return true;
}
