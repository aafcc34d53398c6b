/* quota.c -- MaximumStorageSize (MB) and MaximumPatientCount, with Orthanc's two answers:
 * MaximumStorageMode "Recycle" deletes the oldest unprotected patients until the new instance
 * fits, "Reject" refuses it (SRV_FULL_STORAGE: 507 over REST, 0xA700 over C-STORE).
 *
 * DESIGN: ingest calls quota_begin() once it knows the instance is new, before noting the file
 * pending, and quota_end() after the index commit (or the failure). With no quota configured
 * both are no-ops and ingest runs fully in parallel. With a quota they hold one mutex between
 * the check and the commit, so N parallel uploads cannot all see room for one more and
 * overshoot together: the figures stay exact at the price of serialized stores, only for those
 * who asked for a quota. Recycling deletes through srv_delete() (rows in one transaction, then
 * files, with Deleted changes), the patient being stored into is never a candidate, and the
 * order is the index's (idx_oldest_patient: least recently updated first, protected patients
 * skipped). An instance larger than the whole quota is refused in both modes, as Orthanc. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "server/server.h"
#include "storage/storage.h"

static pthread_mutex_t quota_lock = PTHREAD_MUTEX_INITIALIZER;

static bool quota_on(const Srv *srv)
{
    return srv->cfg.maximum_storage_size || srv->cfg.maximum_patient_count;
}

static bool reject_mode(const Srv *srv)
{
    return srv->cfg.maximum_storage_mode && !strcasecmp(srv->cfg.maximum_storage_mode, "Reject");
}

/* With the lock held: recycles or refuses until the instance fits. */
static bool make_room(SrvError *err, Srv *srv, const char *patient_id, uint64_t size)
{
    StoError se = { 0 };
    const uint64_t max_bytes = srv->cfg.maximum_storage_size * 1024 * 1024;
    const uint64_t max_patients = srv->cfg.maximum_patient_count;
    if (max_bytes && size > max_bytes)
        return srv_fail(err, SRV_FULL_STORAGE,
                        "an instance of %llu bytes cannot fit in MaximumStorageSize (%llu MB)",
                        (unsigned long long)size, (unsigned long long)srv->cfg.maximum_storage_size);
    bool new_patient = true;
    if (max_patients) {
        IdxResource r = { 0 };
        if (idx_resource_get(&se, srv->db, IDX_PATIENT, patient_id, &r)) {
            new_patient = false;
            idx_resource_cleanup(&r);
        } else if (se.code != STO_ERR_NOT_FOUND) {
            srv_error_from_sto(err, &se);
            return false;
        }
    }
    for (unsigned recycled = 0;; recycled++) {
        IdxTotals t;
        if (!idx_totals(&se, srv->db, &t)) {
            srv_error_from_sto(err, &se);
            return false;
        }
        bool over_size = max_bytes && t.disk_size + size > max_bytes;
        bool over_count = max_patients && new_patient && t.count[IDX_PATIENT] + 1 > max_patients;
        if (!over_size && !over_count) {
            if (recycled)
                SRV_LOG_INFO("quota", "recycled %u patient(s) to make room", recycled);
            return true;
        }
        const char *what = over_size ? "MaximumStorageSize" : "MaximumPatientCount";
        if (reject_mode(srv))
            return srv_fail(err, SRV_FULL_STORAGE, "%s reached (MaximumStorageMode is Reject)", what);
        char victim[IDX_ID_LEN];
        bool found;
        if (!idx_oldest_patient(&se, srv->db, patient_id, victim, &found)) {
            srv_error_from_sto(err, &se);
            return false;
        }
        if (!found)
            return srv_fail(err, SRV_FULL_STORAGE,
                            "%s reached and no unprotected patient is left to recycle", what);
        SRV_LOG_INFO("quota", "%s reached: recycling patient %s", what, victim);
        int rl;
        char rid[IDX_ID_LEN];
        SrvError de = { 0 };
        if (!srv_delete(&de, srv, IDX_PATIENT, victim, &rl, rid) &&
            de.code != SRV_UNKNOWN_RESOURCE) { /* deleted meanwhile by a client: fine */
            *err = de;
            return false;
        }
    }
}

bool quota_begin(SrvError *err, Srv *srv, const char *patient_id, uint64_t size)
{
    if (!quota_on(srv))
        return true;
    pthread_mutex_lock(&quota_lock);
    if (make_room(err, srv, patient_id, size))
        return true;
    pthread_mutex_unlock(&quota_lock);
    return false;
}

void quota_end(Srv *srv)
{
    if (quota_on(srv))
        pthread_mutex_unlock(&quota_lock);
}
