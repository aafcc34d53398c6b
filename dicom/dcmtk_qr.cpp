/* dcmtk_qr.cpp -- the query/retrieve SCP: C-FIND, C-MOVE and C-GET requests received by the
 * listener (dcmtk_scp.cpp hands them to qr_serve()).
 *
 * DESIGN: the identifier is read through the listener's bounded consumer (at most
 * k_identifier_max bytes, as C-STORE datasets are bounded: an endless identifier aborts the
 * association instead of growing our memory), its top-level keys turned into (tag, UTF-8) pairs
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

#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcvr.h"

#include <algorithm>

#include <chrono>
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
    std::string sop_class;      /* the request's AffectedSOPClassUID */
    bool canceled = false;
    bool broken = false;
    /* Our own writer (dcmtk_net.h): responses laid out as whole PDUs; C-FIND answers gathered
     * in `out` and sent together (one send() per ~64 KB or 20 ms instead of four write()s per
     * answer). raw is false when the context's syntax is deflated or unknown: DCMTK sends. */
    bool raw = false;
    E_TransferSyntax xfer = EXS_Unknown;
    size_t max_pdv = 16384;
    std::vector<unsigned char> out;
    std::chrono::steady_clock::time_point out_since, last_cancel_check;
    unsigned long emitted = 0;
    /* How each answer is encoded here, worked out at the first answer (the keys are the same
     * for every answer): elements in tag order with their VR. plan_ok false: some key has a
     * binary VR or the syntax is big endian, and DCMTK builds every answer instead. */
    struct Elem {
        uint32_t tag;
        int key;        /* index into the keys; -1: SpecificCharacterSet */
        char vr[3];
        bool sq;        /* an empty sequence */
        bool long_len;  /* explicit VR with a 4-byte length (UT, UC, UR, SQ) */
        char pad;
    };
    bool planned = false, plan_ok = false, explicit_vr = false;
    std::vector<Elem> plan;
    std::string enc;
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
        if (t.getGroup() == 0x0000 || t.getGroup() == 0x0002 || t.getElement() == 0x0000)
            continue; /* command/meta groups and group lengths are never keys */
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
        if (t.getGroup() == 0x0000 || t.getGroup() == 0x0002 || t.getElement() == 0x0000)
            continue; /* command/meta groups and group lengths are never keys */
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

/* Sends the answers gathered so far. false (and broken) on a network failure. */
bool flush(DcmQrOp *op)
{
    if (op->out.empty() || op->broken) return !op->broken;
    bool ok = net_send(op->a, op->out.data(), op->out.size());
    op->out.clear();
    if (op->out.capacity() > (1u << 20)) std::vector<unsigned char>().swap(op->out);
    if (!ok) op->broken = true;
    return ok;
}

/* A pending C-MOVE-RSP / C-GET-RSP (command only), sent at once. */
bool send_progress_raw(DcmQrOp *op, unsigned remaining, unsigned completed, unsigned failed,
                       unsigned warning)
{
    NetCommand c;
    c.ui(0x0002, op->sop_class.c_str());
    c.us(0x0100, op->kind == DIMSE_C_MOVE_RQ ? 0x8021 : 0x8010);
    c.us(0x0120, op->msg_id);
    c.us(0x0800, 0x0101);
    c.us(0x0900, STATUS_Pending);
    c.us(0x1020, (uint16_t)remaining);
    c.us(0x1021, (uint16_t)completed);
    c.us(0x1022, (uint16_t)failed);
    c.us(0x1023, (uint16_t)warning);
    std::string cmd = c.bytes();
    if (op->kind == DIMSE_C_GET_RQ) {
        /* C-GET: the response waits in op->out and leaves with the next sub-operation's
         * C-STORE-RQ (net_store's prefix) or before the final response: one send() and one
         * wake-up of the peer less per instance. */
        net_pdus(op->out, op->pid, true, cmd.data(), cmd.size(), true, op->max_pdv);
        return true;
    }
    std::vector<unsigned char> pdu;
    net_pdus(pdu, op->pid, true, cmd.data(), cmd.size(), true, op->max_pdv);
    if (!net_send(op->a, pdu.data(), pdu.size())) {
        op->broken = true;
        return false;
    }
    return true;
}

bool string_vr(const char *vr)
{
    static const char *const k[] = { "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
                                     "SH", "ST", "TM", "UI", "UC", "UR", "UT" };
    for (const char *v : k)
        if (vr[0] == v[0] && vr[1] == v[1]) return true;
    return false;
}

/* Works out op->plan from the first answer's keys (see DcmQrOp). */
void plan_answers(DcmQrOp *op, const DcmQrKey *keys, size_t n)
{
    op->planned = true;
    op->plan_ok = false;
    if (op->xfer != EXS_LittleEndianImplicit && op->xfer != EXS_LittleEndianExplicit) return;
    op->explicit_vr = op->xfer == EXS_LittleEndianExplicit;
    op->plan.clear();
    op->plan.push_back({ 0x00080005, -1, "CS", false, false, ' ' });
    for (size_t i = 0; i < n; i++) {
        if (keys[i].tag == 0x00080005) continue;
        DcmTag tag((Uint16)(keys[i].tag >> 16), (Uint16)(keys[i].tag & 0xffff));
        DcmEVR evr = tag.getEVR();
        if (evr == EVR_UNKNOWN || evr == EVR_UN) continue; /* put_key leaves them out too */
        DcmQrOp::Elem e = { keys[i].tag, (int)i, "", false, false, ' ' };
        if (evr == EVR_SQ) {
            e.sq = true;
            e.long_len = true;
            memcpy(e.vr, "SQ", 3);
        } else {
            const char *name = DcmVR(evr).getValidVRName();
            if (!name || strlen(name) != 2 || !string_vr(name)) return; /* binary: DCMTK's job */
            memcpy(e.vr, name, 3);
            e.long_len = !strcmp(name, "UT") || !strcmp(name, "UC") || !strcmp(name, "UR");
            e.pad = !strcmp(name, "UI") ? '\0' : ' ';
        }
        op->plan.push_back(e);
    }
    std::stable_sort(op->plan.begin(), op->plan.end(),
                     [](const DcmQrOp::Elem &a, const DcmQrOp::Elem &b) { return a.tag < b.tag; });
    for (size_t i = 1; i < op->plan.size(); i++)
        if (op->plan[i].tag == op->plan[i - 1].tag) return; /* duplicate key: DCMTK's job */
    op->plan_ok = true;
}

void put_le16(std::string &s, uint16_t v)
{
    s.push_back((char)(v & 0xff));
    s.push_back((char)(v >> 8));
}

void put_le32(std::string &s, uint32_t v)
{
    put_le16(s, (uint16_t)(v & 0xffff));
    put_le16(s, (uint16_t)(v >> 16));
}

/* One answer's identifier, encoded by op->plan into op->enc. false: a value too long for its
 * VR's length field (DCMTK then builds this answer). */
bool encode_answer(DcmQrOp *op, const DcmQrKey *keys)
{
    std::string &s = op->enc;
    s.clear();
    for (const DcmQrOp::Elem &e : op->plan) {
        const char *v = e.key < 0 ? "ISO_IR 192" : e.sq ? nullptr : keys[e.key].value;
        size_t n = v ? strlen(v) : 0;
        size_t padded = n + (n & 1);
        put_le16(s, (uint16_t)(e.tag >> 16));
        put_le16(s, (uint16_t)(e.tag & 0xffff));
        if (op->explicit_vr) {
            s.append(e.vr, 2);
            if (e.long_len) {
                put_le16(s, 0);
                put_le32(s, (uint32_t)padded);
            } else {
                if (padded > 0xfffe) return false;
                put_le16(s, (uint16_t)padded);
            }
        } else {
            if (padded > 0xfffffffeu) return false;
            put_le32(s, (uint32_t)padded);
        }
        if (n) s.append(v, n);
        if (n & 1) s.push_back(e.pad);
    }
    return true;
}

/* Adds one C-FIND pending response (command, then the identifier in `data`) to op->out. */
void add_find_rsp(DcmQrOp *op, const void *data, size_t len)
{
    NetCommand cmd;
    cmd.ui(0x0002, op->sop_class.c_str());
    cmd.us(0x0100, 0x8020);
    cmd.us(0x0120, op->msg_id);
    cmd.us(0x0800, 0x0001);
    cmd.us(0x0900, STATUS_Pending);
    std::string cb = cmd.bytes();
    if (op->out.empty()) op->out_since = std::chrono::steady_clock::now();
    net_pdus(op->out, op->pid, true, cb.data(), cb.size(), true, op->max_pdv);
    net_pdus(op->out, op->pid, false, data, len, true, op->max_pdv);
}

/* A C-FIND pending answer added to op->out: false when it cannot be encoded here (then DCMTK
 * sends it). */
bool add_answer_raw(DcmQrOp *op, DcmDataset &ds)
{
    Uint32 len = ds.getLength(op->xfer, EET_ExplicitLength);
    std::vector<unsigned char> buf((size_t)len + 16);
    DcmOutputBufferStream os(buf.data(), (offile_off_t)buf.size());
    ds.transferInit();
    OFCondition c = ds.write(os, op->xfer, EET_ExplicitLength, nullptr, EGL_recalcGL, EPD_withoutPadding);
    ds.transferEnd();
    if (c.bad()) return false;
    void *data = nullptr;
    offile_off_t dlen = 0;
    os.flushBuffer(data, dlen);
    add_find_rsp(op, data, (size_t)dlen);
    return true;
}

} // namespace

extern "C" bool dcm_qr_emit(DcmQrOp *op, const DcmQrKey *keys, size_t n)
{
    try {
        if (op->broken) return false;
        /* C-CANCEL: looked for before the first answer, then every 2 ms (a poll per answer
         * would cost more than the answer) */
        auto now = std::chrono::steady_clock::now();
        if (op->emitted == 0 || now - op->last_cancel_check >= std::chrono::milliseconds(2)) {
            op->last_cancel_check = now;
            if (cancel_waiting(op)) return false;
        } else if (op->canceled) {
            return false;
        }
        op->emitted++;
        if (op->raw && !op->planned) plan_answers(op, keys, n);
        if (op->raw && op->plan_ok && encode_answer(op, keys)) {
            add_find_rsp(op, op->enc.data(), op->enc.size());
            if (op->out.size() >= (64u << 10) ||
                now - op->out_since >= std::chrono::milliseconds(20))
                return flush(op);
            return true;
        }
        DcmDataset ds;
        ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
        for (size_t i = 0; i < n; i++)
            if (keys[i].tag != 0x00080005) put_key(ds, keys[i]);
        if (op->raw && add_answer_raw(op, ds)) {
            if (op->out.size() >= (64u << 10) ||
                now - op->out_since >= std::chrono::milliseconds(20))
                return flush(op);
            return true;
        }
        if (!flush(op)) return false;
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
        if (op->raw) return send_progress_raw(op, remaining, completed, failed, warning);
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
        if (!net_store(err, op->a, op->timeout_s, f, nullptr, 0, status, op->msg_id, &canceled,
                       op->raw ? &op->out : nullptr)) {
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
    op.sop_class = as;
    {
        T_ASC_PresentationContext pc;
        memset(&pc, 0, sizeof pc);
        if (ASC_findAcceptedPresentationContext(a->params, pid, &pc).good()) {
            DcmXfer xf(pc.acceptedTransferSyntax);
            op.xfer = xf.getXfer();
            op.raw = op.xfer != EXS_Unknown && xf.getStreamCompression() == ESC_none &&
                     net_socket(a) >= 0;
        }
        op.max_pdv = net_max_pdv(a);
    }
    DcmDataset *ds = nullptr;
    bool too_large = false;
    OFCondition c;
    if (!net_receive_identifier(a, timeout_s, k_identifier_max, &ds, &too_large, &c)) {
        if (too_large)
            dcm_int_log(DCM_LOG_WARNING,
                        "dicom: query/retrieve identifier from %s@%s larger than %llu bytes, association aborted",
                        info.calling_aet, info.peer_host, (unsigned long long)k_identifier_max);
        else
            dcm_int_log(DCM_LOG_WARNING, "dicom: reading a query identifier from %s@%s failed: %s",
                        info.calling_aet, info.peer_host, c.text());
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
    flush(&op);
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
