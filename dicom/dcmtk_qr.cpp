/* dcmtk_qr.cpp -- the query/retrieve SCP: C-FIND, C-MOVE and C-GET requests received by the
 * listener (dcmtk_scp.cpp hands them to qr_serve()).
 *
 * DESIGN: the identifier is read into memory, its top-level keys turned into (tag, UTF-8) pairs
 * (converted from its SpecificCharacterSet), and the server's handler (dcm_scp_set_qr) is
 * called on the association's thread. The handler answers through the DcmQrOp: dcm_qr_emit()
 * sends one C-FIND pending response (an identifier in UTF-8, "ISO_IR 192"), dcm_qr_progress()
 * one C-MOVE/C-GET pending response with the counts, dcm_qr_get_store() one C-GET
 * sub-operation on this association. Before each pending response we look for a C-CANCEL-RQ
 * without blocking; once seen, the op refuses further answers and the final status becomes
 * Cancel (0xFE00). The final response is sent here with the handler's status.
 */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrcs.h"

#include <cstring>
#include <string>
#include <vector>

#include "dicom/dcmtk_net.h"

namespace mp {

static DcmQrHandlers g_qr; /* set before the listener starts, read-only afterwards */

extern "C" void dcm_scp_set_qr(const DcmQrHandlers *h)
{
    if (h) g_qr = *h;
    else memset(&g_qr, 0, sizeof g_qr);
}

bool qr_offered(unsigned service)
{
    switch (service) {
    case DCM_SCP_ALLOW_FIND: return g_qr.find != nullptr;
    case DCM_SCP_ALLOW_MOVE: return g_qr.move != nullptr;
    case DCM_SCP_ALLOW_GET: return g_qr.get != nullptr;
    default: return false;
    }
}

bool qr_abstract_syntax(const char *uid, unsigned *needs)
{
    static const struct { const char *uid; unsigned need; } k[] = {
        { UID_FINDPatientRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_FIND },
        { UID_FINDStudyRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_FIND },
        { UID_MOVEPatientRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_MOVE },
        { UID_MOVEStudyRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_MOVE },
        { UID_GETPatientRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_GET },
        { UID_GETStudyRootQueryRetrieveInformationModel, DCM_SCP_ALLOW_GET },
    };
    for (auto &e : k)
        if (!strcmp(e.uid, uid)) {
            *needs = e.need;
            return qr_offered(e.need);
        }
    return false;
}

struct DcmQrOp {
    T_ASC_Association *a = nullptr;
    T_ASC_PresentationContextID pid = 0;
    int timeout_s = 0;
    int kind = 0; /* DIMSE_C_FIND_RQ, DIMSE_C_MOVE_RQ, DIMSE_C_GET_RQ */
    T_DIMSE_Message *msg = nullptr;
    uint16_t msg_id = 0;
    bool canceled = false;
    bool broken = false;
};

namespace {

int model_of(const char *uid)
{
    return strstr(uid, ".1.2.1.") ? DCM_QR_PATIENT_ROOT : DCM_QR_STUDY_ROOT;
}

int level_of(DcmDataset *ds)
{
    OFString v;
    if (ds->findAndGetOFString(DCM_QueryRetrieveLevel, v).bad()) return -1;
    size_t b = v.find_first_not_of(' '), e = v.find_last_not_of(' ');
    if (b == OFString_npos) return -1;
    std::string s(v.c_str() + b, e - b + 1);
    if (s == "PATIENT") return 0;
    if (s == "STUDY") return 1;
    if (s == "SERIES") return 2;
    if (s == "IMAGE" || s == "INSTANCE") return 3;
    return -1;
}

/* Identifier -> keys (strings owned by `store`). */
void keys_of(DcmDataset *ds, std::vector<std::string> &store, std::vector<DcmQrKey> &keys)
{
    OFString cs;
    std::string charset;
    if (ds->findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).good()) charset = cs.c_str();
    unsigned long n = ds->card();
    store.reserve(n);
    for (unsigned long i = 0; i < n; i++) {
        DcmElement *e = ds->getElement(i);
        if (!e) continue;
        DcmTag t = e->getTag();
        uint32_t tag = (uint32_t)t.getGroup() << 16 | t.getElement();
        if (t.getGroup() == 0x0000 || t.getGroup() == 0x0002) continue;
        if (e->ident() == EVR_SQ) {
            store.emplace_back("");
            continue; /* sequence keys are not matched */
        }
        char *raw = nullptr;
        Uint32 len = 0;
        std::string v;
        if (e->getLength() > 0 && e->isaString() && e->getString(raw).good() && raw) {
            len = (Uint32)strlen(raw);
            v = dcm_int_to_utf8(charset, raw, len, t.getEVR() == EVR_PN);
            size_t b = v.find_first_not_of(' '), en = v.find_last_not_of(' ');
            v = b == std::string::npos ? std::string() : v.substr(b, en - b + 1);
        } else if (e->getLength() > 0 && !e->isaString()) {
            OFString s;
            if (e->getOFStringArray(s).good()) v = s.c_str();
        }
        store.push_back(v);
        keys.push_back({ tag, nullptr });
    }
    /* strings are stable now (no more push_back): point the keys at them */
    size_t k = 0;
    for (unsigned long i = 0, s = 0; i < n && k < keys.size(); i++) {
        DcmElement *e = ds->getElement(i);
        if (!e) continue;
        DcmTag t = e->getTag();
        if (t.getGroup() == 0x0000 || t.getGroup() == 0x0002) continue;
        if (e->ident() == EVR_SQ) { s++; continue; }
        keys[k++].value = store[s++].c_str();
    }
}

/* true when a C-CANCEL-RQ for this operation is waiting (consumed). */
bool cancel_waiting(DcmQrOp *op)
{
    if (op->canceled) return true;
    if (!ASC_dataWaiting(op->a, 0)) return false;
    OFCondition c = DIMSE_checkForCancelRQ(op->a, op->pid, op->msg_id);
    if (c == EC_Normal) {
        op->canceled = true;
        return true;
    }
    if (c != DIMSE_NODATAAVAILABLE) op->broken = true;
    return op->broken;
}

void put_key(DcmDataset &ds, const DcmQrKey &k)
{
    DcmTag tag((Uint16)(k.tag >> 16), (Uint16)(k.tag & 0xffff));
    if (tag.getEVR() == EVR_UNKNOWN || tag.getEVR() == EVR_UN || tag.getEVR() == EVR_SQ) {
        if (tag.getEVR() == EVR_SQ) ds.insertEmptyElement(tag);
        return;
    }
    if (!k.value) {
        ds.insertEmptyElement(tag);
        return;
    }
    if (ds.putAndInsertString(tag, k.value).bad()) ds.insertEmptyElement(tag);
}

} // namespace

extern "C" bool dcm_qr_emit(DcmQrOp *op, const DcmQrKey *keys, size_t n)
{
    try {
        if (op->broken || cancel_waiting(op)) return false;
        DcmDataset ds;
        ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
        for (size_t i = 0; i < n; i++)
            if (keys[i].tag != 0x00080005) put_key(ds, keys[i]);
        T_DIMSE_C_FindRSP rsp;
        memset(&rsp, 0, sizeof rsp);
        rsp.DimseStatus = STATUS_Pending;
        OFCondition c = DIMSE_sendFindResponse(op->a, op->pid, &op->msg->msg.CFindRQ, &rsp, &ds, nullptr);
        if (c.bad()) {
            op->broken = true;
            return false;
        }
        return true;
    } catch (...) {
        op->broken = true;
        return false;
    }
}

extern "C" bool dcm_qr_progress(DcmQrOp *op, unsigned remaining, unsigned completed,
                                unsigned failed, unsigned warning)
{
    try {
        if (op->broken || cancel_waiting(op)) return false;
        OFCondition c;
        if (op->kind == DIMSE_C_MOVE_RQ) {
            T_DIMSE_C_MoveRSP rsp;
            memset(&rsp, 0, sizeof rsp);
            rsp.DimseStatus = STATUS_Pending;
            rsp.NumberOfRemainingSubOperations = (DIC_US)remaining;
            rsp.NumberOfCompletedSubOperations = (DIC_US)completed;
            rsp.NumberOfFailedSubOperations = (DIC_US)failed;
            rsp.NumberOfWarningSubOperations = (DIC_US)warning;
            rsp.opts = O_MOVE_NUMBEROFREMAININGSUBOPERATIONS | O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS |
                       O_MOVE_NUMBEROFFAILEDSUBOPERATIONS | O_MOVE_NUMBEROFWARNINGSUBOPERATIONS;
            c = DIMSE_sendMoveResponse(op->a, op->pid, &op->msg->msg.CMoveRQ, &rsp, nullptr, nullptr);
        } else {
            T_DIMSE_C_GetRSP rsp;
            memset(&rsp, 0, sizeof rsp);
            rsp.DimseStatus = STATUS_Pending;
            rsp.NumberOfRemainingSubOperations = (DIC_US)remaining;
            rsp.NumberOfCompletedSubOperations = (DIC_US)completed;
            rsp.NumberOfFailedSubOperations = (DIC_US)failed;
            rsp.NumberOfWarningSubOperations = (DIC_US)warning;
            rsp.opts = O_GET_NUMBEROFREMAININGSUBOPERATIONS | O_GET_NUMBEROFCOMPLETEDSUBOPERATIONS |
                       O_GET_NUMBEROFFAILEDSUBOPERATIONS | O_GET_NUMBEROFWARNINGSUBOPERATIONS;
            c = DIMSE_sendGetResponse(op->a, op->pid, &op->msg->msg.CGetRQ, &rsp, nullptr, nullptr);
        }
        if (c.bad()) {
            op->broken = true;
            return false;
        }
        return true;
    } catch (...) {
        op->broken = true;
        return false;
    }
}

extern "C" uint16_t dcm_qr_message_id(const DcmQrOp *op)
{
    return op->msg_id;
}

extern "C" bool dcm_qr_get_store(DcmError *err, DcmQrOp *op, const DcmStoreFile *f, uint16_t *status)
{
    try {
        if (op->broken) return dcm_int_fail(err, DCM_ERR_NETWORK, "association failed");
        bool canceled = false;
        if (!net_store(err, op->a, op->timeout_s, f, nullptr, 0, status, op->msg_id, &canceled)) {
            op->broken = true;
            return false;
        }
        if (canceled) op->canceled = true;
        return true;
    }
    DCM_CATCH(err, false)
}

bool qr_serve(void *ctx, const DcmAssocInfo &info, T_ASC_Association *a,
              T_ASC_PresentationContextID pid, T_DIMSE_Message &msg, int timeout_s)
{
    DcmQrOp op;
    op.a = a;
    op.pid = pid;
    op.timeout_s = timeout_s;
    op.kind = msg.CommandField;
    op.msg = &msg;
    const char *as = "";
    switch (msg.CommandField) {
    case DIMSE_C_FIND_RQ: op.msg_id = msg.msg.CFindRQ.MessageID; as = msg.msg.CFindRQ.AffectedSOPClassUID; break;
    case DIMSE_C_MOVE_RQ: op.msg_id = msg.msg.CMoveRQ.MessageID; as = msg.msg.CMoveRQ.AffectedSOPClassUID; break;
    case DIMSE_C_GET_RQ: op.msg_id = msg.msg.CGetRQ.MessageID; as = msg.msg.CGetRQ.AffectedSOPClassUID; break;
    default: return false;
    }
    DcmDataset *ds = nullptr;
    T_ASC_PresentationContextID data_pid = 0;
    OFCondition c = DIMSE_receiveDataSetInMemory(a, timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING,
                                                 timeout_s, &data_pid, &ds, nullptr, nullptr);
    if (c.bad()) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: reading a query identifier from %s@%s failed: %s",
                    info.calling_aet, info.peer_host, c.text());
        delete ds;
        return false;
    }
    uint16_t status = 0xC000;
    DcmQrCounts counts = { 0, 0, 0 };
    try {
        std::vector<std::string> store;
        std::vector<DcmQrKey> keys;
        keys_of(ds, store, keys);
        int model = model_of(as);
        int level = level_of(ds);
        if (msg.CommandField == DIMSE_C_FIND_RQ && g_qr.find)
            status = g_qr.find(ctx, &info, model, level, keys.data(), keys.size(), &op);
        else if (msg.CommandField == DIMSE_C_MOVE_RQ && g_qr.move)
            status = g_qr.move(ctx, &info, model, level, keys.data(), keys.size(),
                               msg.msg.CMoveRQ.MoveDestination, &op, &counts);
        else if (msg.CommandField == DIMSE_C_GET_RQ && g_qr.get)
            status = g_qr.get(ctx, &info, model, level, keys.data(), keys.size(), &op, &counts);
    } catch (...) {
        status = 0xA700;
    }
    delete ds;
    if (op.broken) return false;
    if (op.canceled) status = 0xFE00;
    if (msg.CommandField == DIMSE_C_FIND_RQ) {
        T_DIMSE_C_FindRSP rsp;
        memset(&rsp, 0, sizeof rsp);
        rsp.DimseStatus = status;
        c = DIMSE_sendFindResponse(a, pid, &msg.msg.CFindRQ, &rsp, nullptr, nullptr);
    } else if (msg.CommandField == DIMSE_C_MOVE_RQ) {
        T_DIMSE_C_MoveRSP rsp;
        memset(&rsp, 0, sizeof rsp);
        rsp.DimseStatus = status;
        rsp.NumberOfCompletedSubOperations = (DIC_US)counts.completed;
        rsp.NumberOfFailedSubOperations = (DIC_US)counts.failed;
        rsp.NumberOfWarningSubOperations = (DIC_US)counts.warning;
        rsp.opts = O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS | O_MOVE_NUMBEROFFAILEDSUBOPERATIONS |
                   O_MOVE_NUMBEROFWARNINGSUBOPERATIONS;
        c = DIMSE_sendMoveResponse(a, pid, &msg.msg.CMoveRQ, &rsp, nullptr, nullptr);
    } else {
        T_DIMSE_C_GetRSP rsp;
        memset(&rsp, 0, sizeof rsp);
        rsp.DimseStatus = status;
        rsp.NumberOfCompletedSubOperations = (DIC_US)counts.completed;
        rsp.NumberOfFailedSubOperations = (DIC_US)counts.failed;
        rsp.NumberOfWarningSubOperations = (DIC_US)counts.warning;
        rsp.opts = O_GET_NUMBEROFCOMPLETEDSUBOPERATIONS | O_GET_NUMBEROFFAILEDSUBOPERATIONS |
                   O_GET_NUMBEROFWARNINGSUBOPERATIONS;
        c = DIMSE_sendGetResponse(a, pid, &msg.msg.CGetRQ, &rsp, nullptr, nullptr);
    }
    return c.good();
}

} // namespace mp
