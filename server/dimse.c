/* dimse.c -- glue between the DIMSE listener (dicom/dcmtk_scp.cpp) and the store.
 *
 * DESIGN: the listener knows nothing of our configuration or storage; this file builds its
 * configuration from Cfg and hands it three callbacks:
 * - accept: Orthanc's association policy. DicomCheckCalledAet: the called AE title must be
 *   DicomAet (case-insensitive, as Orthanc without StrictAetComparison). Calling AE titles:
 *   C-ECHO is always allowed (Orthanc's DicomAlwaysAllowEcho default); C-STORE is allowed when
 *   DicomAlwaysAllowStore is true, else only for a modality of DicomModalities with that AET
 *   (and, with DicomCheckModalityHost, that host). An association offering only storage from
 *   an unknown AET is then rejected ("calling AE title not recognized").
 * - store: ingest_buffer() with the DICOM origin (calling AET, peer IP, called AET), the one
 *   ingest path REST also takes; SrvError codes become DIMSE statuses (see status_of()).
 *   A duplicate is a success, as in Orthanc.
 * - thread_start: names the listener's threads in our log.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dicom/dicom.h"
#include "server/server.h"

static DcmScp *g_scp; /* set by dimse_start, cleared by dimse_stop (main thread) */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* guards g_scp for dimse_stats */

static const CfgModality *find_modality(const Cfg *cfg, const char *aet, const char *host)
{
    for (size_t i = 0; i < cfg->nmodalities; i++) {
        const CfgModality *m = &cfg->modalities[i];
        if (!m->aet || strcasecmp(m->aet, aet) != 0) continue;
        if (cfg->dicom_check_modality_host && (!m->host || strcmp(m->host, host) != 0))
            continue;
        return m;
    }
    return NULL;
}

static unsigned on_accept(void *ctx, const DcmAssocInfo *info, int *reject, char *reason,
                          size_t reason_size)
{
    Srv *srv = ctx;
    const Cfg *cfg = &srv->cfg;
    if (cfg->dicom_check_called_aet && strcasecmp(info->called_aet, cfg->dicom_aet) != 0) {
        *reject = DCM_SCP_REJECT_CALLED_AET;
        snprintf(reason, reason_size, "called AE title \"%s\" is not ours (\"%s\")",
                 info->called_aet, cfg->dicom_aet);
        return 0;
    }
    unsigned allow = DCM_SCP_ALLOW_ECHO;
    if (cfg->dicom_always_allow_store || find_modality(cfg, info->calling_aet, info->peer_host))
        allow |= DCM_SCP_ALLOW_STORE;
    else
        snprintf(reason, reason_size,
                 "C-STORE refused: AET \"%s\" at %s is not in DicomModalities%s",
                 info->calling_aet, info->peer_host,
                 cfg->dicom_check_modality_host ? " (host checked)" : "");
    return allow;
}

/* SrvError -> DIMSE status (PS3.4 B.2.3 and Orthanc's choices). */
static uint16_t status_of(int code)
{
    switch (code) {
    case SRV_FULL_STORAGE:
    case SRV_NOT_ENOUGH_MEMORY:
        return 0xA700; /* Refused: out of resources */
    case SRV_BAD_FILE_FORMAT:
    case SRV_CORRUPTED_FILE:
    case SRV_INEXISTENT_TAG:
    case SRV_BAD_REQUEST:
        return 0xC000; /* Error: cannot understand */
    case SRV_CANNOT_WRITE_FILE:
    case SRV_DATABASE:
        return 0xA701; /* Refused: out of resources, unable to store */
    default:
        return 0x0110; /* Processing failure */
    }
}

static uint16_t on_store(void *ctx, const void *part10, size_t len, const DcmAssocInfo *info,
                         char *comment, size_t comment_size)
{
    Srv *srv = ctx;
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { 0 };
    origin.origin = INGEST_ORIGIN_DICOM;
    origin.remote_ip = info->peer_host;
    origin.remote_aet = info->calling_aet;
    origin.called_aet = info->called_aet;
    if (!ingest_buffer(&err, srv, part10, len, &origin, &res)) {
        uint16_t st = status_of(err.code);
        snprintf(comment, comment_size, "%s", err.message[0] ? err.message : srv_error_text(err.code));
        if (err.code == SRV_FULL_STORAGE || err.code == SRV_CANNOT_WRITE_FILE ||
            err.code == SRV_DATABASE)
            SRV_LOG_ERROR("dicom", "C-STORE %s from %s@%s: %s -> status 0x%04X",
                          info->sop_instance_uid, info->calling_aet, info->peer_host,
                          err.message, st);
        else
            SRV_LOG_WARN("dicom", "C-STORE %s from %s@%s refused: %s -> status 0x%04X",
                         info->sop_instance_uid, info->calling_aet, info->peer_host,
                         err.message, st);
        return st;
    }
    SRV_LOG_DEBUG("dicom", "stored %s (%s) from %s@%s%s", res.ids[IDX_INSTANCE],
                  info->sop_instance_uid, info->calling_aet, info->peer_host,
                  res.already_stored ? " (already stored)" : "");
    return 0x0000;
}

static void on_thread_start(void *ctx, const char *name)
{
    (void)ctx;
    srv_thread_name(name);
}

bool dimse_start(SrvError *err, Srv *srv)
{
    const Cfg *cfg = &srv->cfg;
    DcmScpConfig sc = {
        .port = cfg->dicom_port,
        .aet = cfg->dicom_aet,
        .timeout_s = cfg->dicom_scp_timeout,
        .max_associations = cfg->max_associations,
        .tcp_nodelay = cfg->dicom_tcp_nodelay,
        .max_pdu = 0,
        .ctx = srv,
        .accept = on_accept,
        .store = on_store,
        .thread_start = on_thread_start,
    };
    DcmError de = { 0 };
    DcmScp *scp = NULL;
    if (!dcm_scp_start(&de, &sc, &scp)) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    pthread_mutex_lock(&g_lock);
    g_scp = scp;
    pthread_mutex_unlock(&g_lock);
    SRV_LOG_DEBUG("dicom", "listening on port %d as %s (timeout %d s, at most %d associations%s)",
                  cfg->dicom_port, cfg->dicom_aet, cfg->dicom_scp_timeout,
                  cfg->max_associations, cfg->dicom_tcp_nodelay ? ", TCP_NODELAY" : "");
    return true;
}

void dimse_stop(void)
{
    pthread_mutex_lock(&g_lock);
    DcmScp *scp = g_scp;
    g_scp = NULL;
    pthread_mutex_unlock(&g_lock);
    dcm_scp_stop(scp, 5000); /* NULL is fine; logs its own summary */
}

bool dimse_stats(SrvDimseStats *out)
{
    DcmScpStats st;
    pthread_mutex_lock(&g_lock);
    bool running = g_scp != NULL;
    if (running) dcm_scp_stats(g_scp, &st);
    pthread_mutex_unlock(&g_lock);
    if (!running) return false;
    out->associations = st.associations;
    out->rejected = st.rejected;
    out->stored = st.stored;
    out->store_failures = st.store_failures;
    out->active = st.active;
    return true;
}
