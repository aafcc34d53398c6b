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
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
    DcmStoreFile sf, next;
    retrieve_store_file(f, &sf, &next);
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

/* ---- parallel C-MOVE (the destination's ParallelAssociations > 1) ------------------------
 * The C-MOVE thread keeps its own sub-association and its duties (pending responses, C-CANCEL);
 * workers each open one more association to the destination (DCMTK associations are not
 * thread-safe: one per thread, never shared) and all take the next instance from one atomic
 * cursor. Counts are shared atomics. A cancel or a network failure anywhere sets `stop`; a
 * worker that cannot open its association logs it and leaves the work to the others.
 * Release before join: a receiver serving one association at a time keeps the workers' requests
 * in its backlog until ours is released, so the C-MOVE thread releases its association as soon
 * as the cursor is exhausted, then waits for the workers (which find nothing left and release
 * at once). */
typedef struct MovePar {
    Srv *srv;
    const RetrieveList *list;
    const DcmScuParams *params; /* shared read-only; arrays live until every worker is joined */
    const char *move_aet;
    uint16_t move_id;
    atomic_size_t next;          /* the cursor over list->items */
    atomic_size_t completed, failed, warning;
    atomic_bool stop;            /* cancel or network failure: nobody takes another instance */
    atomic_bool network_failed;
    atomic_int opened;           /* worker associations that were accepted */
    pthread_mutex_t lock;        /* guards active, changes; cond signals them */
    pthread_cond_t cond;
    int active;                  /* workers still running */
    unsigned long changes;       /* instances finished by workers */
} MovePar;

/* Pending C-MOVE response with the shared totals (the C-MOVE thread only). false: cancel or a
 * broken requesting association. */
static bool par_progress(MovePar *mp, DcmQrOp *op)
{
    size_t c = atomic_load(&mp->completed), f = atomic_load(&mp->failed),
           w = atomic_load(&mp->warning);
    size_t done = c + f + w;
    return dcm_qr_progress(op, (unsigned)(mp->list->n - done), (unsigned)c, (unsigned)f, (unsigned)w);
}

/* Takes instances until the cursor is exhausted or stop; op non-NULL on the C-MOVE thread
 * (reports after each instance). Returns false on a cancel seen by op. */
static bool par_loop(MovePar *mp, SendCtx *sc, DcmQrOp *op)
{
    RetrieveSink sink = { send_file, NULL, sc };
    size_t n = mp->list->n;
    /* each thread takes one instance ahead, so the sink reads it while the peer stores the
     * current one (an instance taken but not sent when stop comes is never sent) */
    size_t i = atomic_load(&mp->stop) ? n : atomic_fetch_add(&mp->next, 1);
    while (i < n && !atomic_load(&mp->stop)) {
        size_t next = atomic_fetch_add(&mp->next, 1);
        SrvError err = { 0 };
        int r = retrieve_send(&err, mp->srv, mp->list, i, next, &sink);
        i = next;
        if (r == RETRIEVE_ABORT) {
            SRV_LOG_WARN("dicom", "C-MOVE sub-association to %s: %s", mp->params->remote_aet,
                         err.message);
            atomic_store(&mp->network_failed, true);
            atomic_store(&mp->stop, true);
            break;
        }
        atomic_fetch_add(r == RETRIEVE_SENT ? &mp->completed
                         : r == RETRIEVE_WARNING ? &mp->warning : &mp->failed, 1);
        if (op) {
            if (!par_progress(mp, op)) {
                atomic_store(&mp->stop, true);
                return false;
            }
        } else {
            pthread_mutex_lock(&mp->lock);
            mp->changes++;
            pthread_cond_signal(&mp->cond);
            pthread_mutex_unlock(&mp->lock);
        }
    }
    return true;
}

static void *par_worker(void *arg)
{
    MovePar *mp = arg;
    srv_thread_name("move-sub");
    if (!atomic_load(&mp->stop) && atomic_load(&mp->next) < mp->list->n) {
        DcmError de = { 0 };
        DcmScu *scu = dcm_scu_open(&de, mp->params);
        if (!scu) {
            SRV_LOG_INFO("dicom", "C-MOVE: an extra association to %s (%s:%d) could not be opened, "
                         "the others carry the work: %s", mp->params->remote_aet, mp->params->host,
                         mp->params->port, de.message);
        } else {
            atomic_fetch_add(&mp->opened, 1);
            SendCtx sc = { NULL, scu, mp->move_aet, mp->move_id, false, { 0 } };
            par_loop(mp, &sc, NULL);
            dcm_scu_close(scu); /* released at once when nothing was left */
        }
    }
    pthread_mutex_lock(&mp->lock);
    mp->active--;
    pthread_cond_signal(&mp->cond);
    pthread_mutex_unlock(&mp->lock);
    return NULL;
}

/* The sub-operations over scu (the C-MOVE thread's, open; closed here) plus up to nworkers more
 * associations. */
static uint16_t run_parallel(Srv *srv, DcmQrOp *op, DcmScu *scu, const DcmScuParams *p,
                             const RetrieveList *list, int nworkers, DcmQrCounts *counts,
                             const DcmAssocInfo *info)
{
    MovePar mp = { .srv = srv, .list = list, .params = p, .move_aet = info->calling_aet,
                   .move_id = dcm_qr_message_id(op) };
    atomic_init(&mp.next, 0);
    atomic_init(&mp.completed, 0);
    atomic_init(&mp.failed, 0);
    atomic_init(&mp.warning, 0);
    atomic_init(&mp.stop, false);
    atomic_init(&mp.network_failed, false);
    atomic_init(&mp.opened, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    SRV_ASSERT(pthread_mutex_init(&mp.lock, NULL) == 0 && pthread_cond_init(&mp.cond, &ca) == 0);
    pthread_condattr_destroy(&ca);

    bool canceled = !dcm_qr_progress(op, (unsigned)list->n, 0, 0, 0);
    pthread_t tids[CFG_MAX_PARALLEL_ASSOCIATIONS];
    int started = 0;
    for (int k = 0; !canceled && k < nworkers; k++) {
        pthread_mutex_lock(&mp.lock);
        mp.active++;
        pthread_mutex_unlock(&mp.lock);
        int e = pthread_create(&tids[started], NULL, par_worker, &mp);
        if (e != 0) {
            SRV_LOG_WARN("dicom", "C-MOVE: cannot start a sub-association thread: %s", strerror(e));
            pthread_mutex_lock(&mp.lock);
            mp.active--;
            pthread_mutex_unlock(&mp.lock);
            break;
        }
        started++;
    }
    SendCtx sc = { op, scu, info->calling_aet, mp.move_id, false, { 0 } };
    if (!canceled && !par_loop(&mp, &sc, op)) canceled = true;
    if (canceled) atomic_store(&mp.stop, true);
    /* release before join (see above) */
    dcm_scu_close(scu);

    /* the workers' progress, reported as it comes; a C-CANCEL is seen with it */
    unsigned long seen = 0;
    pthread_mutex_lock(&mp.lock);
    while (mp.active > 0) {
        if (mp.changes == seen) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&mp.cond, &mp.lock, &ts);
        }
        if (mp.changes != seen && mp.active > 0) {
            seen = mp.changes;
            pthread_mutex_unlock(&mp.lock);
            if (!canceled && !par_progress(&mp, op)) {
                canceled = true;
                atomic_store(&mp.stop, true);
            }
            pthread_mutex_lock(&mp.lock);
        }
    }
    pthread_mutex_unlock(&mp.lock);
    for (int k = 0; k < started; k++) pthread_join(tids[k], NULL);
    pthread_cond_destroy(&mp.cond);
    pthread_mutex_destroy(&mp.lock);

    bool net = atomic_load(&mp.network_failed);
    size_t c = atomic_load(&mp.completed), w = atomic_load(&mp.warning), f = atomic_load(&mp.failed);
    if (net) f = list->n - c - w; /* the rest could not be sent */
    counts->completed = (unsigned)c;
    counts->failed = (unsigned)f;
    counts->warning = (unsigned)w;
    SRV_LOG_INFO("dicom", "C-MOVE for %s@%s: %zu instance(s), %zu sent, %zu warning, %zu failed%s%s"
                 " (%d of %d association(s))", info->calling_aet, info->peer_host, list->n, c, w, f,
                 canceled ? ", canceled" : "", net ? ", stopped on a network error" : "",
                 1 + atomic_load(&mp.opened), 1 + started);
    if (canceled) return 0xFE00;
    if (net) return 0xA702;
    if (f || w) return 0xB000;
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
    /* ParallelAssociations: workers open the same associations, so the arrays stay */
    int nworkers = m.parallel > 1 ? m.parallel - 1 : 0;
    if ((size_t)nworkers > list.n - 1) nworkers = (int)(list.n - 1);
    if (!scu || nworkers == 0) {
        free(classes);
        free(syntaxes);
        classes = syntaxes = NULL;
    }
    if (!scu) {
        SRV_LOG_WARN("dicom", "C-MOVE from %s@%s to %s (%s:%d): %s", info->calling_aet,
                     info->peer_host, m.aet, m.host, m.port, de.message);
        counts->failed = (unsigned)list.n;
        retrieve_list_cleanup(&list);
        return 0xA702;
    }
    if (nworkers > 0) {
        st = run_parallel(srv, op, scu, &p, &list, nworkers, counts, info);
        free(classes);
        free(syntaxes);
        retrieve_list_cleanup(&list);
        return st;
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
