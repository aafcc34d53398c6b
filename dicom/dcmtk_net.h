/* dcmtk_net.h -- what dcmtk_scp.cpp (the listener), dcmtk_qr.cpp (query/retrieve SCP) and
 * dcmtk_scu.cpp (SCU, C-STORE of stored files) share. C++ only, private to dicom/. */
#ifndef MP_DCMTK_NET_H
#define MP_DCMTK_NET_H

#ifndef __cplusplus
#error "dcmtk_net.h is C++ only"
#endif

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dcmlayer.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/dimse.h"

#include "dicom/dicom_int.h"

#include <string>
#include <vector>

namespace mp {

#ifndef DCM_CATCH
#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }
#endif

/* ---- the first PDU checked before DCMTK parses it ---------------------------------------
 * A TCP connection that copies the first PDU aside as DCMTK reads it and, when it is an
 * A-ASSOCIATE-RQ (the listener's connections) or -AC (our SCU's), runs dcm_assoc_pdu_check
 * before handing over the read that completes it: DCMTK 3.6.7 leaks on a malformed request or
 * answer and copies some UIDs unchecked (see dicom/assoc_check.c). A refused PDU gets an
 * A-ABORT (service provider, invalid PDU parameter value), its reason goes to why (why_size
 * bytes, may be NULL; it must outlive the connection, which DCMTK deletes when the failed read
 * closes the transport), and the read fails. Defined in dcmtk_scp.cpp. */
class ScreenedConnection : public DcmTCPConnection {
public:
    ScreenedConnection(DcmNativeSocketType sock, char *why, size_t why_size)
        : DcmTCPConnection(sock), why_(why), why_size_(why_size) {}
    ssize_t read(void *buf, size_t nbyte) override;

protected:
    /* The socket read under the screen (the SCP's metered connection reads ahead) */
    virtual ssize_t raw_read(void *buf, size_t nbyte) { return DcmTCPConnection::read(buf, nbyte); }

private:
    bool screen(const unsigned char *b, size_t n);
    bool refuse(const char *why);
    char *why_;
    size_t why_size_;
    bool screened_ = false;
    unsigned char head_[6] = { 0 };
    size_t seen_ = 0;
    std::vector<unsigned char> body_;
};

/* ---- our own P-DATA-TF writer -----------------------------------------------------------
 * DCMTK's DUL_WritePDVs sends each PDV as its own PDU in two write() calls (its 12-byte head,
 * then its data): with TCP_NODELAY two segments and two wake-ups of the peer per PDU. Our hot
 * paths (the datasets of C-MOVE/C-GET sub-operations, C-FIND answers) lay whole PDUs out in
 * one buffer instead and hand it to the socket in one send(). Only the sending side is ours:
 * DCMTK still reads everything, and its association state does not change on P-DATA. */

/* The association's socket, or -1 (no connection). */
int net_socket(T_ASC_Association *a);
/* Largest PDV data length the peer takes (even). */
size_t net_max_pdv(T_ASC_Association *a);
/* Appends to out the PDUs that carry len bytes of one message part (command or dataset) on
 * context pid: one PDV per PDU, at most max_pdv bytes each; `last` marks the final fragment
 * of that part. */
void net_pdus(std::vector<unsigned char> &out, T_ASC_PresentationContextID pid, bool command,
              const void *data, size_t len, bool last, size_t max_pdv);
/* Sends len bytes on the association's socket (all of them, MSG_NOSIGNAL). false on failure
 * (errno set; the association is then unusable). */
bool net_send(T_ASC_Association *a, const void *data, size_t len);

/* A command set (group 0000, implicit VR little endian, as every command): elements appended
 * in ascending order, the group length put in front by bytes(). */
class NetCommand {
public:
    void us(uint16_t elem, uint16_t v);
    void ui(uint16_t elem, const char *uid);  /* padded with NUL to even length */
    void ae(uint16_t elem, const char *text); /* padded with a space */
    std::string bytes() const;

private:
    void put(uint16_t elem, const void *v, uint32_t n);
    std::string body_;
};

/* C-STORE of a stored file on association a, on the context that fits it: its stored
 * transfer syntax (sent raw from the file, PDV by PDV) or else an uncompressed one (parsed,
 * converted). false: network failure (err set; the association is unusable). Otherwise
 * *status is the peer's, or 0x0122 when no context fits (nothing sent).
 * cancel_id != 0 (C-GET): a C-CANCEL-RQ for that message arriving while we wait for the
 * C-STORE-RSP sets *canceled.
 * prefix (C-GET, may be null): whole PDUs waiting to be sent on this association (the pending
 * C-GET-RSP of the previous sub-operation); they leave first, in the same send() as the
 * C-STORE-RQ, and prefix is emptied. */
bool net_store(DcmError *err, T_ASC_Association *a, int timeout_s, const DcmStoreFile *f,
               const char *move_aet, uint16_t move_id, uint16_t *status, uint16_t cancel_id,
               bool *canceled, std::vector<unsigned char> *prefix = nullptr);

/* Largest C-FIND/C-MOVE/C-GET identifier we take (bytes on the wire). Real identifiers are a
 * few hundred bytes; a long UID list a few hundred KB. */
const uint64_t k_identifier_max = 4u << 20;

/* Reads the dataset that follows a command (a query/retrieve identifier) through the bounded
 * consumer the C-STORE path uses, then parses it in its presentation context's transfer
 * syntax. Past `limit` bytes the association's socket is shut down (a peer that never sends
 * the last fragment cannot keep us reading) and *too_large is set. false: *cond says why
 * (network, parse); *out is a new dataset (caller deletes) on success. */
bool net_receive_identifier(T_ASC_Association *a, int timeout_s, uint64_t limit, DcmDataset **out,
                            bool *too_large, OFCondition *cond);

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
