/* transcode.c -- changing the transfer syntax of instances: /instances/{id}/file?transcode=,
 * the Transcode option of /modify and of archives, IngestTranscoding, and (for the DICOM
 * senders) a stored syntax the peer does not accept. The work is DCMTK's (dcm_transcode);
 * this file maps its errors and reads stored files. */
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

static bool fail_dcm(SrvError *err, const DcmError *de)
{
    srv_error_from_dcm(err, de);
    if (de->code == DCM_ERR_UNSUPPORTED) {
        err->code = SRV_NOT_IMPLEMENTED;
        err->http_status = 415;
    }
    return false;
}

bool srv_transcode_supported(const char *ts)
{
    return ts && dcm_transcode_supported(ts);
}

bool srv_transcode(SrvError *err, const void *buf, size_t len, const char *ts, void **out, size_t *outlen)
{
    DcmError de = { 0 };
    if (!dcm_transcode(&de, buf, len, ts, 90, out, outlen)) return fail_dcm(err, &de);
    return true;
}

bool srv_transcode_instance(SrvError *err, Srv *srv, const char *instance, const char *ts, void **out,
                            size_t *outlen)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, instance, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    void *buf = NULL;
    size_t len = 0;
    bool ok = sto_area_read(&se, srv->area, r.uuid, &buf, &len);
    idx_resource_cleanup(&r);
    if (!ok) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
        return false;
    }
    ok = srv_transcode(err, buf, len, ts, out, outlen);
    free(buf);
    return ok;
}

bool transcode_on_ingest(Srv *srv, const void *buf, size_t len, void **out, size_t *outlen)
{
    const char *ts = srv->cfg.ingest_transcoding;
    if (!ts || !*ts) return false;
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    if (!dcm_parse(&de, buf, len, DCM_PARSE_HEADER_ONLY, &obj)) return false; /* ingest says why */
    bool same = strcmp(dcm_object_transfer_syntax(obj), ts) == 0 && dcm_object_has_meta(obj);
    dcm_object_destroy(obj);
    if (same) return false;
    if (!dcm_transcode(&de, buf, len, ts, 90, out, outlen)) {
        SRV_LOG_WARN("ingest", "IngestTranscoding to %s failed, stored as received: %s", ts, de.message);
        return false;
    }
    return true;
}
