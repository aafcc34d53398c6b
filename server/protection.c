/* protection.c -- protected patients (Orthanc's PUT /patients/{id}/protected): never
 * recycled by MaximumStorageSize / MaximumPatientCount (server/quota.c). */
#include "server/server.h"
#include "storage/storage.h"

bool srv_patient_is_protected(SrvError *err, Srv *srv, const char *patient_id, bool *on)
{
    StoError se = { 0 };
    if (idx_patient_is_protected(&se, srv->db, patient_id, on)) return true;
    srv_error_from_sto(err, &se);
    return false;
}

bool srv_patient_set_protected(SrvError *err, Srv *srv, const char *patient_id, bool on)
{
    StoError se = { 0 };
    if (!idx_patient_set_protected(&se, srv->db, patient_id, on)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    SRV_LOG_INFO("protection", "patient %s %s", patient_id, on ? "protected" : "unprotected");
    return true;
}
