/* dcmtk_scu.cpp -- our DICOM client: C-ECHO, C-STORE of stored files, C-FIND, C-MOVE; and the
 * C-STORE of a stored file on any association (net_store), shared with C-GET.
 *
 * DESIGN
 * - Stored files leave as they are. When the peer accepted the file's own transfer syntax, the
 *   C-STORE-RQ command is built here (group 0000, implicit little endian) and the dataset part
 *   of the file (after its meta header) is read from the descriptor (one preadv per batch of
 *   up to 64 PDVs, straight into the PDUs' places) and sent as whole PDUs with one send() per
 *   batch (net_pdus/net_send, our own P-DATA writer: DUL_WritePDVs would take two write()
 *   calls per PDV): no parse, never the whole file in memory, the bytes the peer gets are the
 *   bytes we stored. DCMTK's own DIMSE_storeUser would load the file into a dataset and write
 *   it again.
 * - Otherwise (the peer only took an uncompressed syntax for that SOP class), DCMTK parses the
 *   file, decodes it (JPEG, JPEG-LS, RLE decoders registered once) and DIMSE_storeUser sends
 *   it in the accepted syntax.
 * - Negotiation for a store: per SOP class one context with the stored syntax (when it is not
 *   an uncompressed one) and one with explicit and implicit little endian; at most 128
 *   contexts (the protocol's limit); files of classes left out fail with 0x0122.
 * - Every call uses the association's timeout for the DIMSE reads (DIMSE_NONBLOCKING); a peer
 *   that stops answering makes the call fail after timeout_s, and the association is aborted.
 * - C-FIND and C-MOVE responses are read here (read_responses), not by DIMSE_findUser/moveUser:
 *   identifiers go through net_receive_identifier, bounded and parsed whole, as the listener
 *   reads requests; a remote SCP can neither grow our memory nor hand us a truncated answer.
 */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrae.h"
#include "dcmtk/dcmdata/dcvrui.h"
#include "dcmtk/dcmdata/dcvrul.h"
#include "dcmtk/dcmdata/dcvrus.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmnet/diutil.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dicom/dcmtk_net.h"

namespace mp {

/* ---- the P-DATA-TF writer and command sets (dcmtk_net.h) ---------------------------------- */

size_t net_max_pdv(T_ASC_Association *a)
{
    size_t n = a && a->sendPDVLength ? a->sendPDVLength : 16384;
    return n & ~(size_t)1;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The 12 bytes in front of a PDV's data: PDU type/reserved/length, PDV length/context/control. */
static void pdu_head(unsigned char *h, T_ASC_PresentationContextID pid, bool command, bool last,
                     size_t n)
{
    h[0] = 0x04;
    h[1] = 0;
    put_be32(h + 2, (uint32_t)n + 6);
    put_be32(h + 6, (uint32_t)n + 2);
    h[10] = pid;
    h[11] = (unsigned char)((command ? 1 : 0) | (last ? 2 : 0));
}

void net_pdus(std::vector<unsigned char> &out, T_ASC_PresentationContextID pid, bool command,
              const void *data, size_t len, bool last, size_t max_pdv)
{
    const unsigned char *p = (const unsigned char *)data;
    do {
        size_t n = len < max_pdv ? len : max_pdv;
        size_t at = out.size();
        out.resize(at + 12 + n);
        pdu_head(out.data() + at, pid, command, last && n == len, n);
        if (n) memcpy(out.data() + at + 12, p, n);
        p += n;
        len -= n;
    } while (len > 0);
}

bool net_send(T_ASC_Association *a, const void *data, size_t len)
{
    int fd = net_socket(a);
    if (fd < 0) {
        errno = ENOTCONN;
        return false;
    }
    const char *p = (const char *)data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

void NetCommand::put(uint16_t elem, const void *v, uint32_t n)
{
    unsigned char h[8] = { 0, 0, (unsigned char)elem, (unsigned char)(elem >> 8),
                           (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 24) };
    body_.append((const char *)h, 8);
    body_.append((const char *)v, n);
}

void NetCommand::us(uint16_t elem, uint16_t v)
{
    unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
    put(elem, b, 2);
}

void NetCommand::ui(uint16_t elem, const char *uid)
{
    std::string s(uid ? uid : "");
    if (s.size() & 1) s.push_back('\0');
    put(elem, s.data(), (uint32_t)s.size());
}

void NetCommand::ae(uint16_t elem, const char *text)
{
    std::string s(text ? text : "");
    if (s.size() & 1) s.push_back(' ');
    put(elem, s.data(), (uint32_t)s.size());
}

std::string NetCommand::bytes() const
{
    uint32_t n = (uint32_t)body_.size();
    /* (0000,0000) UL, implicit VR: tag, length 4, value */
    unsigned char h[12] = { 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0 };
    h[8] = (unsigned char)n;
    h[9] = (unsigned char)(n >> 8);
    h[10] = (unsigned char)(n >> 16);
    h[11] = (unsigned char)(n >> 24);
    return std::string((const char *)h, 12) + body_;
}

namespace {

const char *const k_uncompressed[] = { UID_LittleEndianExplicitTransferSyntax,
                                       UID_LittleEndianImplicitTransferSyntax };

bool is_uncompressed(const char *ts)
{
    return !strcmp(ts, UID_LittleEndianExplicitTransferSyntax) ||
           !strcmp(ts, UID_LittleEndianImplicitTransferSyntax) ||
           !strcmp(ts, UID_BigEndianExplicitTransferSyntax);
}

void register_decoders()
{
    static std::once_flag once;
    std::call_once(once, [] {
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
    });
}

bool pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

/* Offset of the dataset in a stored file: after "DICM" and group 0002 when there is a meta
 * header, 0 otherwise (files stored without one). */
bool dataset_offset(int fd, uint64_t size, uint64_t *off)
{
    /* The meta header is walked in a copy of the file's first 2 KB (one read: it is nearly
     * always shorter); an element past the copy is read from the file. */
    unsigned char head[2048];
    size_t have = (size_t)(size < sizeof head ? size : sizeof head);
    *off = 0;
    if (size < 132 || !pread_all(fd, head, have, 0) || memcmp(head + 128, "DICM", 4) != 0) return true;
    auto get = [&](unsigned char *b, size_t n, uint64_t p) {
        if (p + n <= have) {
            memcpy(b, head + p, n);
            return true;
        }
        return pread_all(fd, b, n, p);
    };
    unsigned char b[12];
    uint64_t p = 132;
    while (p + 8 <= size) {
        if (!get(b, 8, p)) return false;
        uint16_t group = (uint16_t)(b[0] | b[1] << 8);
        if (group != 0x0002) break;
        bool long_form = (b[4] == 'O' && (b[5] == 'B' || b[5] == 'W' || b[5] == 'F')) ||
                         (b[4] == 'S' && b[5] == 'Q') || (b[4] == 'U' && (b[5] == 'T' || b[5] == 'N'));
        uint64_t len;
        if (long_form) {
            if (p + 12 > size || !get(b, 12, p)) return false;
            len = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
            p += 12 + len;
        } else {
            len = (uint64_t)(b[6] | b[7] << 8);
            p += 8 + len;
        }
    }
    if (p > size) return false;
    *off = p;
    return true;
}

/* The C-STORE-RQ command set. */
std::string store_command(uint16_t msg_id, const char *sop_class, const char *sop_inst,
                          const char *move_aet, uint16_t move_id)
{
    NetCommand c;
    c.ui(0x0002, sop_class);
    c.us(0x0100, 0x0001);
    c.us(0x0110, msg_id);
    c.us(0x0700, 0x0000);
    c.us(0x0800, 0x0000);
    c.ui(0x1000, sop_inst);
    if (move_aet && *move_aet) {
        c.ae(0x1030, move_aet);
        c.us(0x1031, move_id);
    }
    return c.bytes();
}

/* Waits for the C-STORE-RSP of msg_id (a C-CANCEL for cancel_id on the way is noted). */
OFCondition wait_store_rsp(T_ASC_Association *a, int timeout_s, uint16_t msg_id, uint16_t *status,
                           uint16_t cancel_id, bool *canceled)
{
    for (;;) {
        T_ASC_PresentationContextID pid = 0;
        T_DIMSE_Message rsp;
        memset(&rsp, 0, sizeof rsp);
        DcmDataset *detail = nullptr;
        OFCondition c = DIMSE_receiveCommand(a, timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING,
                                             timeout_s, &pid, &rsp, &detail);
        delete detail;
        if (c.bad()) return c;
        if (rsp.CommandField == DIMSE_C_CANCEL_RQ && cancel_id &&
            rsp.msg.CCancelRQ.MessageIDBeingRespondedTo == cancel_id) {
            if (canceled) *canceled = true;
            continue;
        }
        if (rsp.CommandField != DIMSE_C_STORE_RSP ||
            rsp.msg.CStoreRSP.MessageIDBeingRespondedTo != msg_id)
            return DIMSE_BADMESSAGE;
        *status = rsp.msg.CStoreRSP.DimseStatus;
        return EC_Normal;
    }
}

/* An accepted context for class/ts; 0 if none. */
T_ASC_PresentationContextID find_context(T_ASC_Association *a, const char *cls, const char *ts)
{
    T_ASC_PresentationContextID found = 0;
    int n = ASC_countAcceptedPresentationContexts(a->params);
    (void)n;
    int total = ASC_countPresentationContexts(a->params);
    for (int i = 0; i < total && !found; i++) {
        T_ASC_PresentationContext pc;
        if (ASC_getPresentationContext(a->params, i, &pc).bad()) continue;
        if (pc.resultReason != ASC_P_ACCEPTANCE) continue;
        if (strcmp(pc.abstractSyntax, cls) != 0) continue;
        if (ts && strcmp(pc.acceptedTransferSyntax, ts) != 0) continue;
        found = pc.presentationContextID;
    }
    return found;
}

} // namespace

namespace {

/* Appends to out the PDUs of the next batch of a file's dataset: up to 64 PDVs from [pos,
 * pos + left), read by one preadv straight into their places. *n gets the bytes taken. false
 * (errno set) when the file cannot be read; out is then left as it was. */
bool frame_batch(std::vector<unsigned char> &out, int fd, T_ASC_PresentationContextID pid,
                 uint64_t pos, uint64_t left, size_t max_pdv, size_t *taken)
{
    const uint64_t batch = 64 * (uint64_t)max_pdv;
    size_t n = (size_t)(left < batch ? left : batch);
    bool final = n == left;
    size_t k = (n + max_pdv - 1) / max_pdv, base = out.size();
    out.resize(base + 12 * k + n + 1);
    struct iovec iov[64];
    for (size_t i = 0, done = 0; i < k; i++) {
        size_t c = n - done < max_pdv ? n - done : max_pdv;
        iov[i].iov_base = out.data() + base + 12 * (i + 1) + done;
        iov[i].iov_len = c;
        done += c;
    }
    ssize_t r = preadv(fd, iov, (int)k, (off_t)pos);
    if (r != (ssize_t)n) { /* short read: finish chunk by chunk */
        for (size_t i = 0, done = 0; i < k; i++) {
            if (!pread_all(fd, iov[i].iov_base, iov[i].iov_len, pos + done)) {
                int e = errno ? errno : EIO;
                out.resize(base);
                errno = e;
                return false;
            }
            done += iov[i].iov_len;
        }
    }
    size_t at = base;
    for (size_t i = 0; i < k; i++) {
        size_t c = iov[i].iov_len;
        bool last = final && i + 1 == k;
        if (last && (c & 1)) { /* deflate: pad to even length, as DCMTK does */
            out[at + 12 + c] = 0;
            c++;
        }
        pdu_head(out.data() + at, pid, false, last, c);
        at += 12 + c;
    }
    out.resize(at);
    *taken = n;
    return true;
}

/* The first batch of the file that comes next, read while the peer stores the current one
 * (its C-STORE-RSP is what we wait for: reading the next file then costs no wall time). Kept
 * per thread; used only by the same association, for the same file (device, inode, size),
 * context and PDV size. At most one batch (64 PDVs, ~1 MB with 16 KB PDUs). */
struct Staged {
    bool valid = false;
    T_ASC_Association *a = nullptr;
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t size = 0, pos = 0;
    size_t n = 0, max_pdv = 0;
    T_ASC_PresentationContextID pid = 0;
    std::vector<unsigned char> pdus;
};
thread_local Staged t_staged;

bool same_file(int fd, uint64_t size, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != size) return false;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return true;
}

void stage_next(T_ASC_Association *a, const DcmStoreFile *next, size_t max_pdv)
{
    Staged &s = t_staged;
    s.valid = false;
    if (!next || next->fd < 0) return;
    const char *ts = next->transfer_syntax ? next->transfer_syntax : "";
    T_ASC_PresentationContextID pid = find_context(a, next->sop_class_uid, ts);
    uint64_t off = 0;
    if (!pid || !dataset_offset(next->fd, next->size, &off) || off >= next->size) return;
    if (!same_file(next->fd, next->size, &s.dev, &s.ino)) return;
    s.pdus.clear();
    if (!frame_batch(s.pdus, next->fd, pid, off, next->size - off, max_pdv, &s.n)) return;
    s.a = a;
    s.size = next->size;
    s.pos = off;
    s.pid = pid;
    s.max_pdv = max_pdv;
    s.valid = true;
}

} // namespace

bool net_store(DcmError *err, T_ASC_Association *a, int timeout_s, const DcmStoreFile *f,
               const char *move_aet, uint16_t move_id, uint16_t *status, uint16_t cancel_id,
               bool *canceled, std::vector<unsigned char> *prefix)
{
    *status = 0x0122;
    const char *ts = f->transfer_syntax ? f->transfer_syntax : "";
    T_ASC_PresentationContextID pid = find_context(a, f->sop_class_uid, ts);
    uint16_t msg_id = a->nextMsgID++;
    if (pid) {
        /* the first batch may have been read while the previous file was being stored */
        size_t max_pdv = net_max_pdv(a);
        Staged &sg = t_staged;
        dev_t dev = 0;
        ino_t ino = 0;
        bool use_staged = sg.valid && sg.a == a && sg.pid == pid && sg.max_pdv == max_pdv &&
                          sg.size == f->size && same_file(f->fd, f->size, &dev, &ino) &&
                          dev == sg.dev && ino == sg.ino;
        sg.valid = false;
        uint64_t off = use_staged ? sg.pos : 0;
        if (!use_staged && !dataset_offset(f->fd, f->size, &off)) {
            *status = 0xA700; /* our file is unreadable: a failed sub-operation, not the link */
            dcm_int_log(DCM_LOG_WARNING, "dicom: stored file of %s is unreadable", f->sop_instance_uid);
            return true;
        }
        uint64_t left = f->size - off, pos = off;
        if (left == 0) return dcm_int_fail(err, DCM_ERR_FORMAT, "empty dataset");
        /* The command and the dataset as whole PDUs, read from the file straight into their
         * places (one preadv per batch) and sent with one send() per batch of up to 64 PDUs.
         * The buffers stay with the thread: no allocation (and no page faults) per file. */
        std::string cmd = store_command(msg_id, f->sop_class_uid, f->sop_instance_uid, move_aet,
                                        move_id);
        thread_local std::vector<unsigned char> out;
        out.clear();
        if (prefix) {
            out.swap(*prefix); /* the waiting PDUs first, in the same send() */
            prefix->clear();
        }
        net_pdus(out, pid, true, cmd.data(), cmd.size(), true, max_pdv);
        while (left > 0) {
            size_t n = 0;
            if (use_staged) {
                out.insert(out.end(), sg.pdus.begin(), sg.pdus.end());
                n = sg.n;
                use_staged = false;
            } else if (!frame_batch(out, f->fd, pid, pos, left, max_pdv, &n)) {
                int e = errno;
                ASC_abortAssociation(a);
                return dcm_int_fail(err, DCM_ERR_INTERNAL, "reading the stored file of %s: %s",
                                    f->sop_instance_uid, strerror(e));
            }
            pos += n;
            left -= n;
            if (!net_send(a, out.data(), out.size()))
                return dcm_int_fail(err, DCM_ERR_NETWORK, "C-STORE of %s: %s", f->sop_instance_uid,
                                    strerror(errno));
            out.clear();
        }
        if (out.capacity() > ((size_t)4 << 20)) std::vector<unsigned char>().swap(out);
        stage_next(a, f->next, max_pdv);
        if (sg.pdus.capacity() > ((size_t)4 << 20)) std::vector<unsigned char>().swap(sg.pdus);
        OFCondition c;
        c = wait_store_rsp(a, timeout_s, msg_id, status, cancel_id, canceled);
        if (c.bad()) {
            sg.valid = false;
            return dcm_int_fail(err, DCM_ERR_NETWORK, "no C-STORE response for %s: %s",
                                f->sop_instance_uid, c.text());
        }
        return true;
    }
    t_staged.valid = false;
    /* fall back to an uncompressed context, through DCMTK */
    const char *target = nullptr;
    for (const char *u : k_uncompressed)
        if ((pid = find_context(a, f->sop_class_uid, u))) { target = u; break; }
    if (prefix && !prefix->empty()) { /* the waiting PDUs leave before DCMTK writes */
        bool sent = net_send(a, prefix->data(), prefix->size());
        prefix->clear();
        if (!sent)
            return dcm_int_fail(err, DCM_ERR_NETWORK, "C-GET response: %s", strerror(errno));
    }
    if (!pid) return true; /* 0x0122: SOP class not supported by the peer */
    register_decoders();
    std::vector<unsigned char> file(f->size);
    if (!pread_all(f->fd, file.data(), f->size, 0)) {
        *status = 0xA700;
        return true;
    }
    DcmInputBufferStream in;
    in.setBuffer(file.data(), (offile_off_t)file.size());
    in.setEos();
    DcmFileFormat ff;
    ff.transferInit();
    OFCondition c = ff.read(in, EXS_Unknown, EGL_noChange);
    ff.transferEnd();
    if (c.bad()) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: cannot parse %s to transcode it: %s",
                    f->sop_instance_uid, c.text());
        *status = 0xA700;
        return true;
    }
    DcmDataset *ds = ff.getDataset();
    E_TransferSyntax want = DcmXfer(target).getXfer();
    if (ds->chooseRepresentation(want, nullptr).bad() || !ds->canWriteXfer(want)) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: cannot decode %s (%s) for a peer that takes %s only",
                    f->sop_instance_uid, ts, target);
        *status = 0x0122;
        return true;
    }
    T_DIMSE_C_StoreRQ rq;
    memset(&rq, 0, sizeof rq);
    rq.MessageID = msg_id;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, f->sop_class_uid, sizeof rq.AffectedSOPClassUID);
    OFStandard::strlcpy(rq.AffectedSOPInstanceUID, f->sop_instance_uid, sizeof rq.AffectedSOPInstanceUID);
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    rq.Priority = DIMSE_PRIORITY_MEDIUM;
    if (move_aet && *move_aet) {
        OFStandard::strlcpy(rq.MoveOriginatorApplicationEntityTitle, move_aet,
                            sizeof rq.MoveOriginatorApplicationEntityTitle);
        rq.MoveOriginatorID = move_id;
        rq.opts = O_STORE_MOVEORIGINATORAETITLE | O_STORE_MOVEORIGINATORID;
    }
    T_DIMSE_C_StoreRSP rsp;
    memset(&rsp, 0, sizeof rsp);
    DcmDataset *detail = nullptr;
    c = DIMSE_storeUser(a, pid, &rq, nullptr, ds, nullptr, nullptr,
                        timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING, timeout_s, &rsp,
                        &detail, nullptr, 0);
    delete detail;
    if (c.bad()) return dcm_int_fail(err, DCM_ERR_NETWORK, "C-STORE of %s: %s", f->sop_instance_uid, c.text());
    *status = rsp.DimseStatus;
    return true;
}

/* ---- the SCU ------------------------------------------------------------------------------ */

/* Our SCU's connections are screened: a remote SCP's A-ASSOCIATE-AC is checked before DCMTK
 * parses it (ScreenedConnection, dcmtk_net.h). And every read waits at most the association's
 * timeout: DCMTK waits for the start of a PDU with the DIMSE timeout but reads the rest of it
 * (and an A-RELEASE-RP, an A-ABORT's close) with plain blocking reads, so a remote SCP that
 * stopped in the middle of a PDU held the call for DCMTK's socket timeout (60 s) whatever
 * DicomScuTimeout said (fuzz_scu). A read that times out fails with ETIMEDOUT and notes it in
 * *timed_out (the layer's, which outlives the connection DCMTK deletes on failure). */
class ScuConnection : public ScreenedConnection {
public:
    ScuConnection(DcmNativeSocketType sock, char *why, size_t why_size, int timeout_s, bool *timed_out)
        : ScreenedConnection(sock, why, why_size), timeout_s_(timeout_s), timed_out_(timed_out) {}

protected:
    ssize_t raw_read(void *buf, size_t nbyte) override
    {
        if (timeout_s_ > 0) {
            struct pollfd p = { (int)getSocket(), POLLIN, 0 };
            int r;
            do r = poll(&p, 1, timeout_s_ * 1000); while (r < 0 && errno == EINTR);
            if (r == 0) {
                *timed_out_ = true;
                errno = ETIMEDOUT;
                return -1;
            }
        }
        return ScreenedConnection::raw_read(buf, nbyte);
    }

private:
    int timeout_s_;
    bool *timed_out_;
};

class ScuLayer : public DcmTransportLayer {
public:
    char bad_ac[160] = ""; /* why the answer was refused unparsed */
    int timeout_s = 0;     /* DcmScuParams.timeout_s, for each read */
    bool timed_out = false; /* a read waited timeout_s in vain */
    DcmTransportConnection *createConnection(DcmNativeSocketType sock, OFBool secure) override
    {
        if (secure) return nullptr;
        return new (std::nothrow) ScuConnection(sock, bad_ac, sizeof bad_ac, timeout_s, &timed_out);
    }
};

struct DcmScu {
    T_ASC_Network *net = nullptr;
    T_ASC_Association *a = nullptr;
    int timeout_s = 0;
    bool broken = false;
    ScuLayer layer; /* outlives net (dropped before the DcmScu is deleted) */
};

namespace {

const char *find_model(int model)
{
    return model == DCM_QR_PATIENT_ROOT ? UID_FINDPatientRootQueryRetrieveInformationModel
                                        : UID_FINDStudyRootQueryRetrieveInformationModel;
}
const char *move_model(int model)
{
    return model == DCM_QR_PATIENT_ROOT ? UID_MOVEPatientRootQueryRetrieveInformationModel
                                        : UID_MOVEStudyRootQueryRetrieveInformationModel;
}

T_DIMSE_BlockingMode mode(const DcmScu *s)
{
    return s->timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING;
}

const char *level_name(int level)
{
    switch (level) {
    case 0: return "PATIENT";
    case 1: return "STUDY";
    case 2: return "SERIES";
    default: return "IMAGE";
    }
}

/* The identifier of a query: keys in UTF-8, QueryRetrieveLevel. */
bool build_identifier(DcmError *err, DcmDataset &ds, int level, const DcmQrKey *keys, size_t n)
{
    ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
    ds.putAndInsertString(DCM_QueryRetrieveLevel, level_name(level));
    for (size_t i = 0; i < n; i++) {
        DcmTag tag((Uint16)(keys[i].tag >> 16), (Uint16)(keys[i].tag & 0xffff));
        if (keys[i].tag == 0x00080052 || keys[i].tag == 0x00080005) continue;
        if (tag.getEVR() == EVR_SQ || tag.getEVR() == EVR_UNKNOWN || tag.getEVR() == EVR_UN) {
            if (tag.getEVR() == EVR_SQ) {
                ds.insertEmptyElement(tag);
                continue;
            }
            return dcm_int_fail(err, DCM_ERR_ARG, "unknown tag (%04x,%04x) in a query",
                                keys[i].tag >> 16, keys[i].tag & 0xffff);
        }
        OFCondition c = ds.putAndInsertString(tag, keys[i].value ? keys[i].value : "");
        if (c.bad())
            return dcm_int_fail(err, DCM_ERR_ARG, "bad value for (%04x,%04x): %s",
                                keys[i].tag >> 16, keys[i].tag & 0xffff, c.text());
    }
    return true;
}

bool net_fail(DcmError *err, DcmScu *s, const char *what, const OFCondition &c)
{
    s->broken = true;
    if (c == DIMSE_NODATAAVAILABLE || s->layer.timed_out)
        return dcm_int_fail(err, DCM_ERR_NETWORK, "%s: timeout (DicomScuTimeout %d s)", what, s->timeout_s);
    return dcm_int_fail(err, DCM_ERR_NETWORK, "%s: %s", what, c.text());
}

} // namespace

extern "C" DcmScu *dcm_scu_open(DcmError *err, const DcmScuParams *p)
{
    DcmScu *s = nullptr;
    T_ASC_Parameters *params = nullptr;
    try {
        if (!p || !p->host || !p->remote_aet || !p->local_aet || p->port <= 0 || p->port > 65535) {
            dcm_int_fail(err, DCM_ERR_ARG, "bad SCU parameters");
            return nullptr;
        }
        s = new DcmScu;
        s->timeout_s = p->timeout_s;
        s->layer.timeout_s = p->timeout_s;
        int acse = p->timeout_s > 0 ? p->timeout_s : 30;
        OFCondition c = ASC_initializeNetwork(NET_REQUESTOR, 0, acse, &s->net);
        if (c.bad()) {
            dcm_int_fail(err, DCM_ERR_NETWORK, "cannot initialize the network: %s", c.text());
            goto fail;
        }
        c = ASC_setTransportLayer(s->net, &s->layer, 0);
        if (c.bad()) {
            dcm_int_fail(err, DCM_ERR_NETWORK, "cannot set the transport layer: %s", c.text());
            goto fail;
        }
        c = ASC_createAssociationParameters(&params, ASC_DEFAULTMAXPDU);
        if (c.bad()) {
            dcm_int_fail(err, DCM_ERR_NOMEM, "association parameters: %s", c.text());
            goto fail;
        }
        ASC_setAPTitles(params, p->local_aet, p->remote_aet, nullptr);
        {
            char peer[300];
            snprintf(peer, sizeof peer, "%s:%d", p->host, p->port);
            ASC_setPresentationAddresses(params, OFStandard::getHostName().c_str(), peer);
        }
        {
            int id = 1;
            auto add = [&](const char *as, const char *const *ts, int nts) -> bool {
                if (id > 255) return false;
                OFCondition cc = ASC_addPresentationContext(params, (T_ASC_PresentationContextID)id, as,
                                                            const_cast<const char **>(ts), nts);
                if (cc.bad()) return false;
                id += 2;
                return true;
            };
            const char *unc[] = { UID_LittleEndianExplicitTransferSyntax,
                                  UID_LittleEndianImplicitTransferSyntax };
            if (p->services & DCM_SCU_ECHO) add(UID_VerificationSOPClass, unc, 2);
            if (p->services & DCM_SCU_FIND) {
                add(UID_FINDPatientRootQueryRetrieveInformationModel, unc, 2);
                add(UID_FINDStudyRootQueryRetrieveInformationModel, unc, 2);
            }
            if (p->services & DCM_SCU_MOVE) {
                add(UID_MOVEPatientRootQueryRetrieveInformationModel, unc, 2);
                add(UID_MOVEStudyRootQueryRetrieveInformationModel, unc, 2);
            }
            if (p->services & DCM_SCU_STORE) {
                std::map<std::string, std::vector<std::string>> classes; /* class -> compressed syntaxes */
                std::vector<std::string> order;
                for (size_t i = 0; i < p->nstore; i++) {
                    std::string cls = p->store_classes[i] ? p->store_classes[i] : "";
                    if (cls.empty()) continue;
                    auto it = classes.find(cls);
                    if (it == classes.end()) {
                        it = classes.emplace(cls, std::vector<std::string>()).first;
                        order.push_back(cls);
                    }
                    const char *ts = p->store_syntaxes && p->store_syntaxes[i] ? p->store_syntaxes[i] : "";
                    if (*ts && (!is_uncompressed(ts) || !strcmp(ts, UID_BigEndianExplicitTransferSyntax))) {
                        bool have = false;
                        for (auto &x : it->second) have = have || x == ts;
                        if (!have) it->second.push_back(ts);
                    }
                }
                for (auto &cls : order) {
                    for (auto &ts : classes[cls]) {
                        const char *one[] = { ts.c_str() };
                        add(cls.c_str(), one, 1);
                    }
                    add(cls.c_str(), unc, 2);
                }
            }
        }
        c = ASC_requestAssociation(s->net, params, &s->a);
        if (c.bad()) {
            if (c == DUL_ASSOCIATIONREJECTED) {
                T_ASC_RejectParameters rej;
                ASC_getRejectParameters(params, &rej);
                OFString text;
                ASC_printRejectParameters(text, &rej);
                dcm_int_fail(err, DCM_ERR_NETWORK, "association rejected by %s@%s:%d: %s",
                             p->remote_aet, p->host, p->port, text.c_str());
            } else if (s->layer.bad_ac[0]) {
                dcm_int_fail(err, DCM_ERR_NETWORK, "malformed A-ASSOCIATE-AC from %s@%s:%d: %s",
                             p->remote_aet, p->host, p->port, s->layer.bad_ac);
            } else if (s->layer.timed_out) {
                dcm_int_fail(err, DCM_ERR_NETWORK, "cannot associate with %s@%s:%d: timeout (DicomScuTimeout %d s)",
                             p->remote_aet, p->host, p->port, p->timeout_s);
            } else {
                dcm_int_fail(err, DCM_ERR_NETWORK, "cannot associate with %s@%s:%d: %s",
                             p->remote_aet, p->host, p->port, c.text());
            }
            if (s->a) { ASC_destroyAssociation(&s->a); params = nullptr; }
            goto fail;
        }
        params = nullptr; /* owned by the association now */
        if (ASC_countAcceptedPresentationContexts(s->a->params) == 0) {
            dcm_int_fail(err, DCM_ERR_NETWORK, "%s@%s:%d accepted none of the proposed services",
                         p->remote_aet, p->host, p->port);
            ASC_releaseAssociation(s->a);
            goto fail;
        }
        return s;
    } catch (const std::bad_alloc &) {
        dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    } catch (...) {
        dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error opening an association");
    }
fail:
    if (params) ASC_destroyAssociationParameters(&params);
    if (s) {
        if (s->a) ASC_destroyAssociation(&s->a);
        if (s->net) ASC_dropNetwork(&s->net);
        delete s;
    }
    return nullptr;
}

extern "C" void dcm_scu_close(DcmScu *s)
{
    if (!s) return;
    try {
        if (s->a) {
            if (s->broken) ASC_abortAssociation(s->a);
            else if (ASC_releaseAssociation(s->a).bad()) ASC_abortAssociation(s->a);
            ASC_destroyAssociation(&s->a);
        }
        if (s->net) ASC_dropNetwork(&s->net);
    } catch (...) {
    }
    delete s;
}

extern "C" bool dcm_scu_echo(DcmError *err, DcmScu *s)
{
    try {
        DIC_US id = s->a->nextMsgID++;
        DIC_US st = 0;
        DcmDataset *detail = nullptr;
        OFCondition c = DIMSE_echoUser(s->a, id, mode(s), s->timeout_s, &st, &detail);
        delete detail;
        if (c.bad()) return net_fail(err, s, "C-ECHO", c);
        if (st != 0) return dcm_int_fail(err, DCM_ERR_NETWORK, "C-ECHO answered status 0x%04x", st);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_scu_store(DcmError *err, DcmScu *s, const DcmStoreFile *f,
                              const char *move_aet, uint16_t move_id, uint16_t *status)
{
    try {
        if (s->broken) return dcm_int_fail(err, DCM_ERR_NETWORK, "association already failed");
        if (!net_store(err, s->a, s->timeout_s, f, move_aet, move_id, status, 0, nullptr)) {
            s->broken = true;
            return false;
        }
        return true;
    }
    DCM_CATCH(err, false)
}

namespace {

/* The responses to a C-FIND-RQ or C-MOVE-RQ we sent (msg_id), read until a final one. DCMTK's
 * DIMSE_findUser/DIMSE_moveUser are not used: they read each answer's identifier with
 * DIMSE_receiveDataSetInMemory, which has no size limit (a peer that keeps sending fragments
 * grows our memory for as long as it likes) and takes a dataset cut inside an element as
 * complete (the partial element is dropped, or kept with a value never received), so a
 * truncated answer reached the caller as a well-formed one. Here every identifier goes through
 * net_receive_identifier: at most k_identifier_max bytes, parsed whole, refused when cut.
 * Pending statuses: 0xFF00, 0xFF01 for C-FIND (with an identifier, read even when the command
 * says none, as DCMTK does), 0xFF00 for C-MOVE (counts only). Which responses carry an
 * identifier is DCMTK's choice too (peers get DataSetType wrong): a pending C-FIND always, a
 * final C-FIND never, a final C-MOVE when its command says so (the failed instances: read and
 * dropped).
 * answer: called with each pending C-FIND identifier that is not empty (NULL for C-MOVE). *final gets the last
 * response's command. false: err set, the association is unusable. */
bool read_responses(DcmError *err, DcmScu *s, const char *what, T_DIMSE_Command field,
                    uint16_t msg_id, void (*answer)(void *ctx, const DcmObject *obj), void *ctx,
                    T_DIMSE_Message *final)
{
    for (;;) {
        T_ASC_PresentationContextID pid = 0;
        T_DIMSE_Message rsp;
        memset(&rsp, 0, sizeof rsp);
        DcmDataset *detail = nullptr;
        OFCondition c = DIMSE_receiveCommand(s->a, mode(s), s->timeout_s, &pid, &rsp, &detail);
        delete detail;
        if (c.bad()) return net_fail(err, s, what, c);
        if (rsp.CommandField != field) {
            s->broken = true;
            return dcm_int_fail(err, DCM_ERR_NETWORK, "%s: unexpected response command 0x%04x",
                                what, (unsigned)rsp.CommandField);
        }
        bool find = field == DIMSE_C_FIND_RSP;
        uint16_t answered = find ? rsp.msg.CFindRSP.MessageIDBeingRespondedTo
                                 : rsp.msg.CMoveRSP.MessageIDBeingRespondedTo;
        if (answered != msg_id) {
            s->broken = true;
            return dcm_int_fail(err, DCM_ERR_NETWORK, "%s: response to message %u (expected %u)",
                                what, (unsigned)answered, (unsigned)msg_id);
        }
        uint16_t st = find ? rsp.msg.CFindRSP.DimseStatus : rsp.msg.CMoveRSP.DimseStatus;
        bool pending = st == 0xFF00 || (find && st == 0xFF01);
        T_DIMSE_DataSetType dst = find ? rsp.msg.CFindRSP.DataSetType : rsp.msg.CMoveRSP.DataSetType;
        if (find ? pending : !pending && dst != DIMSE_DATASET_NULL) {
            DcmDataset *ids = nullptr;
            bool too_large = false;
            if (!net_receive_identifier(s->a, s->timeout_s, k_identifier_max, &ids, &too_large, &c)) {
                if (too_large) {
                    s->broken = true;
                    return dcm_int_fail(err, DCM_ERR_NETWORK, "%s: a response identifier larger than %llu bytes",
                                        what, (unsigned long long)k_identifier_max);
                }
                return net_fail(err, s, find ? "C-FIND answer" : "C-MOVE response identifier", c);
            }
            std::unique_ptr<DcmDataset> owned(ids);
            /* an empty identifier answers nothing (it is what DCMTK made of an answer cut
             * inside its first element): not handed on */
            if (find && pending && answer && ids->card() > 0) {
                std::unique_ptr<DcmFileFormat> ff(new DcmFileFormat(ids));
                DcmObject *obj = dcm_int_object_from(std::move(ff));
                answer(ctx, obj);
                dcm_object_destroy(obj);
            }
        }
        if (!pending) {
            *final = rsp;
            return true;
        }
    }
}

} // namespace

extern "C" bool dcm_scu_find(DcmError *err, DcmScu *s, int model, int level, const DcmQrKey *keys,
                             size_t n, void (*answer)(void *ctx, const DcmObject *obj), void *ctx,
                             uint16_t *status)
{
    try {
        if (s->broken) return dcm_int_fail(err, DCM_ERR_NETWORK, "association already failed");
        const char *as = find_model(model);
        T_ASC_PresentationContextID pid = ASC_findAcceptedPresentationContextID(s->a, as);
        if (!pid) return dcm_int_fail(err, DCM_ERR_NETWORK, "the peer does not accept C-FIND (%s)",
                                      model == DCM_QR_PATIENT_ROOT ? "Patient Root" : "Study Root");
        DcmDataset ds;
        if (!build_identifier(err, ds, level, keys, n)) return false;
        T_DIMSE_Message rq;
        memset(&rq, 0, sizeof rq);
        rq.CommandField = DIMSE_C_FIND_RQ;
        T_DIMSE_C_FindRQ &fr = rq.msg.CFindRQ;
        fr.MessageID = s->a->nextMsgID++;
        OFStandard::strlcpy(fr.AffectedSOPClassUID, as, sizeof fr.AffectedSOPClassUID);
        fr.DataSetType = DIMSE_DATASET_PRESENT;
        fr.Priority = DIMSE_PRIORITY_MEDIUM;
        OFCondition c = DIMSE_sendMessageUsingMemoryData(s->a, pid, &rq, nullptr, &ds, nullptr, nullptr);
        if (c.bad()) return net_fail(err, s, "C-FIND", c);
        T_DIMSE_Message rsp;
        if (!read_responses(err, s, "C-FIND", DIMSE_C_FIND_RSP, fr.MessageID, answer, ctx, &rsp))
            return false;
        *status = rsp.msg.CFindRSP.DimseStatus;
        if (*status != 0x0000 && *status != 0xFE00)
            return dcm_int_fail(err, DCM_ERR_NETWORK, "C-FIND failed with status 0x%04x", *status);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_scu_move(DcmError *err, DcmScu *s, int model, int level, const DcmQrKey *keys,
                             size_t n, const char *dest_aet, uint16_t *status, DcmQrCounts *counts)
{
    try {
        if (s->broken) return dcm_int_fail(err, DCM_ERR_NETWORK, "association already failed");
        const char *as = move_model(model);
        T_ASC_PresentationContextID pid = ASC_findAcceptedPresentationContextID(s->a, as);
        if (!pid) return dcm_int_fail(err, DCM_ERR_NETWORK, "the peer does not accept C-MOVE (%s)",
                                      model == DCM_QR_PATIENT_ROOT ? "Patient Root" : "Study Root");
        DcmDataset ds;
        if (!build_identifier(err, ds, level, keys, n)) return false;
        T_DIMSE_Message rq;
        memset(&rq, 0, sizeof rq);
        rq.CommandField = DIMSE_C_MOVE_RQ;
        T_DIMSE_C_MoveRQ &mr = rq.msg.CMoveRQ;
        mr.MessageID = s->a->nextMsgID++;
        OFStandard::strlcpy(mr.AffectedSOPClassUID, as, sizeof mr.AffectedSOPClassUID);
        OFStandard::strlcpy(mr.MoveDestination, dest_aet, sizeof mr.MoveDestination);
        mr.DataSetType = DIMSE_DATASET_PRESENT;
        mr.Priority = DIMSE_PRIORITY_MEDIUM;
        OFCondition c = DIMSE_sendMessageUsingMemoryData(s->a, pid, &rq, nullptr, &ds, nullptr, nullptr);
        if (c.bad()) return net_fail(err, s, "C-MOVE", c);
        T_DIMSE_Message last;
        if (!read_responses(err, s, "C-MOVE", DIMSE_C_MOVE_RSP, mr.MessageID, nullptr, nullptr, &last))
            return false;
        const T_DIMSE_C_MoveRSP &rsp = last.msg.CMoveRSP;
        *status = rsp.DimseStatus;
        if (counts) {
            counts->completed = rsp.NumberOfCompletedSubOperations;
            counts->failed = rsp.NumberOfFailedSubOperations;
            counts->warning = rsp.NumberOfWarningSubOperations;
        }
        if (rsp.DimseStatus != 0x0000 && rsp.DimseStatus != 0xB000)
            return dcm_int_fail(err, DCM_ERR_NETWORK, "C-MOVE failed with status 0x%04x%s",
                                rsp.DimseStatus,
                                rsp.DimseStatus == 0xA801 ? " (move destination unknown)" : "");
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
