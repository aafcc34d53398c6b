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
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/modality.h"
#include "server/query.h"
#include "server/retrieve.h"
#include "server/server.h"
#include "storage/storage.h"

static DcmScp *g_scp; /* set by dimse_start, cleared by dimse_stop (main thread) */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* guards g_scp for dimse_stats */

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
    SrvModality m;
    bool known = modality_by_aet(srv, info->calling_aet, info->peer_host, &m);
    unsigned allow = 0;
    if (cfg->dicom_always_allow_echo || (known && m.allow_echo)) allow |= DCM_SCP_ALLOW_ECHO;
    if (cfg->dicom_always_allow_store || (known && m.allow_store)) allow |= DCM_SCP_ALLOW_STORE;
    if (cfg->dicom_always_allow_find || (known && m.allow_find)) allow |= DCM_SCP_ALLOW_FIND;
    if (cfg->dicom_always_allow_move || (known && m.allow_move)) allow |= DCM_SCP_ALLOW_MOVE;
    if (cfg->dicom_always_allow_get || (known && m.allow_get)) allow |= DCM_SCP_ALLOW_GET;
    if (allow != (DCM_SCP_ALLOW_ECHO | DCM_SCP_ALLOW_STORE | DCM_SCP_ALLOW_FIND |
                  DCM_SCP_ALLOW_MOVE | DCM_SCP_ALLOW_GET))
        snprintf(reason, reason_size, "%s%s%s%s%s refused: AET \"%s\" at %s is %s%s",
                 allow & DCM_SCP_ALLOW_ECHO ? "" : "C-ECHO ",
                 allow & DCM_SCP_ALLOW_STORE ? "" : "C-STORE ",
                 allow & DCM_SCP_ALLOW_FIND ? "" : "C-FIND ",
                 allow & DCM_SCP_ALLOW_MOVE ? "" : "C-MOVE ",
                 allow & DCM_SCP_ALLOW_GET ? "" : "C-GET",
                 info->calling_aet, info->peer_host,
                 known ? "a modality without that Allow flag" : "not in DicomModalities",
                 cfg->dicom_check_modality_host ? " (host checked)" : "");
    if (allow == 0) *reject = DCM_SCP_REJECT_CALLING_AET;
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

static uint16_t store_result(const SrvError *err, bool ok, const IngestResult *res,
                             const DcmAssocInfo *info, char *comment, size_t comment_size);

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
    bool ok = ingest_buffer(&err, srv, part10, len, &origin, &res);
    return store_result(&err, ok, &res, info, comment, comment_size);
}

/* The DIMSE status of an ingest, logged. */
static uint16_t store_result(const SrvError *errp, bool ok, const IngestResult *res,
                             const DcmAssocInfo *info, char *comment, size_t comment_size)
{
    SrvError err = *errp;
    if (!ok) {
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
    SRV_LOG_DEBUG("dicom", "stored %s (%s) from %s@%s%s", res->ids[IDX_INSTANCE],
                  info->sop_instance_uid, info->calling_aet, info->peer_host,
                  res->already_stored ? " (already stored)" : "");
    return 0x0000;
}

/* Large datasets: the listener writes them to a spool file (server/spool.c) and ingest_spool
 * adopts it, as for a large REST body. */
static int on_spool_open(void *ctx, void **handle)
{
    Srv *srv = ctx;
    SrvError err = { 0 };
    SrvSpool *sp = malloc(sizeof *sp);
    if (!sp) return -1;
    if (!srv_spool_open(&err, srv, sp)) {
        SRV_LOG_ERROR("dicom", "cannot spool a large C-STORE dataset: %s", err.message);
        free(sp);
        return -1;
    }
    *handle = sp;
    return sp->fd;
}

static void on_spool_close(void *ctx, void *handle)
{
    (void)ctx;
    srv_spool_discard(handle);
    free(handle);
}

static uint16_t on_store_spool(void *ctx, void *handle, uint64_t len, const DcmAssocInfo *info,
                               char *comment, size_t comment_size)
{
    Srv *srv = ctx;
    SrvSpool *sp = handle;
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_DICOM, .remote_ip = info->peer_host,
                            .remote_aet = info->calling_aet, .called_aet = info->called_aet };
    sp->len = len; /* written by the listener through the descriptor */
    bool ok = ingest_spool(&err, srv, sp, &origin, &res);
    return store_result(&err, ok, &res, info, comment, comment_size);
}

/* ---- query/retrieve ------------------------------------------------------------------- */

typedef struct FindCtx {
    DcmQrOp *op;
    const DcmQrKey *keys;
    size_t n;
    DcmQrKey *out;
} FindCtx;

static bool on_answer(void *ctx, const QryAnswer *a)
{
    FindCtx *fc = ctx;
    for (size_t i = 0; i < fc->n; i++) {
        fc->out[i].tag = fc->keys[i].tag;
        fc->out[i].value = a->values[i];
    }
    return dcm_qr_emit(fc->op, fc->out, fc->n);
}

/* Identifier keys -> engine keys (the same order). */
static QryKey *qry_keys(const DcmQrKey *keys, size_t n)
{
    QryKey *k = calloc(n ? n : 1, sizeof *k);
    for (size_t i = 0; k && i < n; i++) {
        k[i].tag = keys[i].tag;
        k[i].pattern = keys[i].value;
    }
    return k;
}

static uint16_t on_find(void *ctx, const DcmAssocInfo *info, int model, int level,
                        const DcmQrKey *keys, size_t n, DcmQrOp *op)
{
    Srv *srv = ctx;
    if (level < 0 || (model == DCM_QR_STUDY_ROOT && level == IDX_PATIENT)) {
        SRV_LOG_WARN("dicom", "C-FIND from %s@%s: bad QueryRetrieveLevel", info->calling_aet, info->peer_host);
        return 0xA900; /* identifier does not match SOP class */
    }
    QryKey *qk = qry_keys(keys, n);
    DcmQrKey *out = calloc(n ? n : 1, sizeof *out);
    if (!qk || !out) {
        free(qk);
        free(out);
        return 0xA700;
    }
    QryRequest rq = { .level = level, .keys = qk, .nkeys = n,
                      .case_sensitive_pn = srv->cfg.case_sensitive_pn,
                      .limit = level == IDX_INSTANCE ? srv->cfg.limit_find_instances
                                                     : srv->cfg.limit_find_results };
    FindCtx fc = { op, keys, n, out };
    SrvError err = { 0 };
    bool complete = true;
    uint16_t st = 0x0000;
    if (!qry_run(&err, srv, &rq, on_answer, &fc, &complete)) {
        SRV_LOG_WARN("dicom", "C-FIND from %s@%s failed: %s", info->calling_aet, info->peer_host, err.message);
        st = 0xC000;
    } else if (!complete) {
        SRV_LOG_INFO("dicom", "C-FIND from %s@%s stopped early (cancel or Limit*)", info->calling_aet,
                     info->peer_host);
        st = 0xFE00;
    }
    free(qk);
    free(out);
    return st;
}

/* Collects answer IDs (IDX_ID_LEN bytes each) into a capped array. */
static bool collect_id(void *ctx, const QryAnswer *a)
{
    char id[IDX_ID_LEN] = { 0 };
    snprintf(id, sizeof id, "%s", a->id);
    return buf_append(ctx, id, sizeof id) == BUF_OK;
}

/* The resources a C-MOVE/C-GET identifier designates, listed as files. */
static uint16_t resolve(Srv *srv, const DcmAssocInfo *info, int level, const DcmQrKey *keys,
                        size_t n, RetrieveList *list)
{
    memset(list, 0, sizeof *list);
    if (level < 0) return 0xA900;
    QryKey *qk = qry_keys(keys, n);
    Buf ids;
    buf_init(&ids, (size_t)1 << 30);
    RetrieveResource *res = NULL;
    uint16_t st = 0x0000;
    /* only keys with a value constrain; the answer values are not needed */
    QryRequest rq = { .level = level, .keys = qk, .nkeys = n, .ids_only = true,
                      .case_sensitive_pn = srv->cfg.case_sensitive_pn };
    SrvError err = { 0 };
    bool complete = true;
    if (!qk || !qry_run(&err, srv, &rq, collect_id, &ids, &complete) || !complete) {
        SRV_LOG_WARN("dicom", "retrieve from %s@%s: cannot resolve the identifier: %s",
                     info->calling_aet, info->peer_host, err.message[0] ? err.message : "out of memory");
        st = 0xA700;
        goto out;
    }
    size_t nres = BUF_COUNT(&ids, char[IDX_ID_LEN]);
    res = calloc(nres ? nres : 1, sizeof *res);
    if (!res) {
        st = 0xA700;
        goto out;
    }
    for (size_t i = 0; i < nres; i++) {
        res[i].level = level;
        res[i].id = ids.data + i * IDX_ID_LEN;
    }
    if (!retrieve_list(&err, srv, res, nres, list)) {
        SRV_LOG_WARN("dicom", "retrieve from %s@%s: %s", info->calling_aet, info->peer_host, err.message);
        st = 0xA700;
    }
out:
    free(res);
    buf_free(&ids);
    free(qk);
    return st;
}

typedef struct SendCtx {
    DcmQrOp *op;
    DcmScu *scu;          /* C-MOVE: the sub-association; NULL for C-GET */
    const char *move_aet;
    uint16_t move_id;
    bool network_failed;
    SrvError net_err;
} SendCtx;

static int status_kind(uint16_t st)
{
    if (st == 0x0000) return RETRIEVE_SENT;
    if ((st & 0xF000) == 0xB000) return RETRIEVE_WARNING;
    return RETRIEVE_FAILED;
}

static int send_file(void *ctx, SrvError *err, const RetrieveFile *f)
{
    SendCtx *sc = ctx;
    DcmStoreFile next = { f->next_fd, f->next_size, f->next ? f->next->sop_class_uid : NULL,
                          f->next ? f->next->sop_instance_uid : NULL,
                          f->next ? f->next->transfer_syntax : NULL, NULL };
    DcmStoreFile sf = { f->fd, f->item->size, f->item->sop_class_uid, f->item->sop_instance_uid,
                        f->item->transfer_syntax, f->next && f->next_fd >= 0 ? &next : NULL };
    DcmError de = { 0 };
    uint16_t st = 0;
    bool ok = sc->scu ? dcm_scu_store(&de, sc->scu, &sf, sc->move_aet, sc->move_id, &st)
                      : dcm_qr_get_store(&de, sc->op, &sf, &st);
    if (!ok) {
        srv_error_from_dcm(err, &de);
        sc->network_failed = true;
        sc->net_err = *err;
        return RETRIEVE_ABORT;
    }
    if (st != 0x0000)
        SRV_LOG_WARN("dicom", "sub-operation C-STORE of %s answered 0x%04X", f->item->id, st);
    return status_kind(st);
}

static bool send_progress(void *ctx, const RetrieveStats *st)
{
    SendCtx *sc = ctx;
    size_t done = st->completed + st->failed + st->warning;
    return dcm_qr_progress(sc->op, (unsigned)(st->total - done), (unsigned)st->completed,
                           (unsigned)st->failed, (unsigned)st->warning);
}

static uint16_t run_subops(Srv *srv, SendCtx *sc, const RetrieveList *list, DcmQrCounts *counts,
                           const DcmAssocInfo *info, const char *what)
{
    RetrieveSink sink = { send_file, send_progress, sc };
    RetrieveStats st = { 0 };
    SrvError err = { 0 };
    bool canceled = false;
    if (list->n > 0 && !dcm_qr_progress(sc->op, (unsigned)list->n, 0, 0, 0)) canceled = true;
    bool ok = canceled || retrieve_run(&err, srv, list, 0, &sink, &st, &canceled);
    if (!ok && sc->network_failed) {
        size_t done = st.completed + st.warning;
        st.failed = list->n - done; /* the rest could not be sent */
    }
    counts->completed = (unsigned)st.completed;
    counts->failed = (unsigned)st.failed;
    counts->warning = (unsigned)st.warning;
    SRV_LOG_INFO("dicom", "%s for %s@%s: %zu instance(s), %zu sent, %zu warning, %zu failed%s%s",
                 what, info->calling_aet, info->peer_host, list->n, st.completed, st.warning,
                 st.failed, canceled ? ", canceled" : "", ok ? "" : ", stopped on a network error");
    if (canceled) return 0xFE00;
    if (!ok) return 0xA702; /* refused: unable to perform sub-operations */
    if (st.failed || st.warning) return 0xB000;
    return 0x0000;
}

static uint16_t on_move(void *ctx, const DcmAssocInfo *info, int model, int level,
                        const DcmQrKey *keys, size_t n, const char *dest_aet, DcmQrOp *op,
                        DcmQrCounts *counts)
{
    (void)model;
    Srv *srv = ctx;
    SrvModality m;
    char dest[65];
    snprintf(dest, sizeof dest, "%s", dest_aet);
    srv_strip(dest);
    if (!modality_by_aet(srv, dest, NULL, &m)) {
        SRV_LOG_WARN("dicom", "C-MOVE from %s@%s to unknown destination \"%s\" refused (0xA801)",
                     info->calling_aet, info->peer_host, dest);
        return 0xA801;
    }
    RetrieveList list;
    uint16_t st = resolve(srv, info, level, keys, n, &list);
    if (st != 0x0000) return st;
    if (list.n == 0) {
        retrieve_list_cleanup(&list);
        return 0x0000;
    }
    const char **classes = calloc(list.n, sizeof *classes);
    const char **syntaxes = calloc(list.n, sizeof *syntaxes);
    if (!classes || !syntaxes) {
        free(classes);
        free(syntaxes);
        retrieve_list_cleanup(&list);
        return 0xA700;
    }
    for (size_t i = 0; i < list.n; i++) {
        classes[i] = list.items[i].sop_class_uid;
        syntaxes[i] = list.items[i].transfer_syntax;
    }
    DcmScuParams p = { m.local_aet[0] ? m.local_aet : srv->cfg.dicom_aet, m.aet, m.host, m.port,
                       m.timeout ? m.timeout : srv->cfg.dicom_scu_timeout, DCM_SCU_STORE,
                       classes, syntaxes, list.n };
    DcmError de = { 0 };
    DcmScu *scu = dcm_scu_open(&de, &p);
    free(classes);
    free(syntaxes);
    if (!scu) {
        SRV_LOG_WARN("dicom", "C-MOVE from %s@%s to %s (%s:%d): %s", info->calling_aet,
                     info->peer_host, m.aet, m.host, m.port, de.message);
        counts->failed = (unsigned)list.n;
        retrieve_list_cleanup(&list);
        return 0xA702;
    }
    SendCtx sc = { op, scu, info->calling_aet, dcm_qr_message_id(op), false, { 0 } };
    st = run_subops(srv, &sc, &list, counts, info, "C-MOVE");
    dcm_scu_close(scu);
    retrieve_list_cleanup(&list);
    return st;
}

static uint16_t on_get(void *ctx, const DcmAssocInfo *info, int model, int level,
                       const DcmQrKey *keys, size_t n, DcmQrOp *op, DcmQrCounts *counts)
{
    (void)model;
    Srv *srv = ctx;
    RetrieveList list;
    uint16_t st = resolve(srv, info, level, keys, n, &list);
    if (st != 0x0000) return st;
    SendCtx sc = { op, NULL, NULL, 0, false, { 0 } };
    st = list.n ? run_subops(srv, &sc, &list, counts, info, "C-GET") : 0x0000;
    retrieve_list_cleanup(&list);
    return st;
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
        .max_pdu = (unsigned)cfg->maximum_pdu_length,
        .max_dataset = cfg->maximum_upload_size * 1024 * 1024,
        .ctx = srv,
        .accept = on_accept,
        .store = on_store,
        .thread_start = on_thread_start,
        .spool_threshold = SRV_SPOOL_THRESHOLD,
        .spool_open = on_spool_open,
        .store_spool = on_store_spool,
        .spool_close = on_spool_close,
    };
    DcmError de = { 0 };
    DcmScp *scp = NULL;
    DcmQrHandlers qr = { on_find, on_move, on_get };
    dcm_scp_set_qr(&qr);
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
