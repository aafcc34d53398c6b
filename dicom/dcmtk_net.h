/* dcmtk_net.h -- what dcmtk_scp.cpp (the listener), dcmtk_qr.cpp (query/retrieve SCP) and
 * dcmtk_scu.cpp (SCU, C-STORE of stored files) share. C++ only, private to dicom/. */
#ifndef MP_DCMTK_NET_H
#define MP_DCMTK_NET_H

#ifndef __cplusplus
#error "dcmtk_net.h is C++ only"
#endif

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dimse.h"

#include "dicom/dicom_int.h"

namespace mp {

#ifndef DCM_CATCH
#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }
#endif

/* C-STORE of a stored file on association a, on the context that fits it: its stored
 * transfer syntax (sent raw from the file, PDV by PDV) or else an uncompressed one (parsed,
 * converted). false: network failure (err set; the association is unusable). Otherwise
 * *status is the peer's, or 0x0122 when no context fits (nothing sent).
 * cancel_id != 0 (C-GET): a C-CANCEL-RQ for that message arriving while we wait for the
 * C-STORE-RSP sets *canceled. */
bool net_store(DcmError *err, T_ASC_Association *a, int timeout_s, const DcmStoreFile *f,
               const char *move_aet, uint16_t move_id, uint16_t *status, uint16_t cancel_id,
               bool *canceled);

/* For the listener's negotiation: true if uid is a Q/R information model we serve, with
 * *needs the DCM_SCP_ALLOW_* bit it needs. */
bool qr_abstract_syntax(const char *uid, unsigned *needs);
/* The listener's dispatch of a C-FIND/C-MOVE/C-GET request (ctx: the listener's callback
 * context). false: abort the association (network failure). */
bool qr_serve(void *ctx, const DcmAssocInfo &info, T_ASC_Association *a,
              T_ASC_PresentationContextID pid, T_DIMSE_Message &msg, int timeout_s);
/* true when handlers were installed (dcm_scp_set_qr) for that service bit. */
bool qr_offered(unsigned service);

} // namespace mp

#endif
