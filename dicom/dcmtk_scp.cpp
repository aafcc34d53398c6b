/* dcmtk_scp.cpp -- the DIMSE listener: C-ECHO and C-STORE SCP on DCMTK's dcmnet.
 *
 * DESIGN
 * - One listener thread ("dicom") polls the listening socket and a self-pipe, so that
 *   dcm_scp_stop() is immediate. When a connection waits, it starts a detached thread
 *   ("dicom-N", conn_main) and waits only until that thread's ASC_receiveAssociation() has
 *   accepted it: DCMTK creates the connection through our transport layer (AcceptHook) right
 *   after accept(), which hands the socket to the handshaking list and wakes the listener. The
 *   A-ASSOCIATE-RQ is then read on the connection's thread, so an idle peer or a partial PDU
 *   holds up no one else. The listener cuts (shutdown) a handshake past handshake_s (the
 *   ACSE timeout also bounds DCMTK's reads), and past max_handshakes connections still
 *   handshaking the oldest is cut; `guard` is our own dup of the socket, so a cut never
 *   touches a descriptor number DCMTK has closed and the process reused.
 * - Negotiation, on the connection's thread: the accept callback (AE title policy), then each
 *   presentation context: the abstract syntax must be Verification or a storage SOP class
 *   DCMTK knows (and allowed by the policy), and the first proposed transfer syntax we know is
 *   accepted (the SCU's preference, so instances are stored as they arrive). Over
 *   max_associations the request is rejected (transient, "local limit exceeded"). Otherwise
 *   the association is acknowledged and served on the same thread, counted under `mu`.
 * - An association thread waits for the next command in one-second steps (ASC_dataWaiting), so
 *   it notices both its idle timeout (timeout_s without a command: A-ABORT) and a stop request.
 *   Once data waits, the command and its dataset are read with the full timeout.
 * - C-STORE: the dataset is never parsed here. We write a Part-10 preamble and meta header
 *   (transfer syntax of the presentation context, SOP class/instance of the request, our
 *   implementation UID and version, the calling AE title as source) into a growable buffer,
 *   then DIMSE_receiveDataSetInFile() appends the PDV bytes as they arrive through our own
 *   DcmConsumer (past spool_threshold bytes it moves to a spool file the server gives, so a
 *   large dataset is never held in memory): the stored dataset is bit-identical to what was sent (deflated datasets stay
 *   deflated; the one pad byte that makes a deflate stream fit even-length PDVs is dropped, as
 *   DCMTK's storescp does). The store callback (the server's ingest) parses and checks it and answers the
 *   DIMSE status; an ErrorComment rides along with failures. The buffer is reused across the
 *   instances of an association.
 * - TCP_NODELAY: DCMTK sets it on accepted sockets when the TCP_NODELAY environment variable
 *   is set at that time; we set the variable before the network is initialised and also set
 *   the option on every accepted socket ourselves.
 * - Stop: set `stopping`, wake the listener through the pipe and join it (no new
 *   associations), cut every handshake, then wait up to grace_ms for the association
 *   threads: idle ones leave at their next one-second step; busy ones finish their current
 *   work. After the grace period the remaining sockets are shut down (the blocked reads fail,
 *   the threads clean up and leave), and we wait for every connection thread to end before
 *   freeing anything.
 */
#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrma.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrlo.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dcmlayer.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/dimse.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/dcmnet/dulstruc.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <list>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <fcntl.h>
#include <zlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/uio.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dicom/dcmtk_net.h"

namespace mp {

namespace {

/* Transfer syntaxes we accept, stored as they arrive. */
const char *const k_transfer_syntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGProcess3_5TransferSyntax,
    UID_JPEGProcess6_8TransferSyntax,
    UID_JPEGProcess7_9TransferSyntax,
    UID_JPEGProcess10_12TransferSyntax,
    UID_JPEGProcess11_13TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_JPEGProcess15TransferSyntax,
    UID_JPEGProcess16_18TransferSyntax,
    UID_JPEGProcess17_19TransferSyntax,
    UID_JPEGProcess20_22TransferSyntax,
    UID_JPEGProcess21_23TransferSyntax,
    UID_JPEGProcess24_26TransferSyntax,
    UID_JPEGProcess25_27TransferSyntax,
    UID_JPEGProcess28TransferSyntax,
    UID_JPEGProcess29TransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_JPEG2000TransferSyntax,
    UID_JPEG2000Part2MulticomponentImageCompressionLosslessOnlyTransferSyntax,
    UID_JPEG2000Part2MulticomponentImageCompressionTransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_MPEG2MainProfileAtMainLevelTransferSyntax,
    UID_MPEG2MainProfileAtHighLevelTransferSyntax,
    UID_MPEG4HighProfileLevel4_1TransferSyntax,
    UID_MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax,
    UID_MPEG4HighProfileLevel4_2_For2DVideoTransferSyntax,
    UID_MPEG4HighProfileLevel4_2_For3DVideoTransferSyntax,
    UID_MPEG4StereoHighProfileLevel4_2TransferSyntax,
    UID_HEVCMainProfileLevel5_1TransferSyntax,
    UID_HEVCMain10ProfileLevel5_1TransferSyntax,
    UID_JPIPReferencedTransferSyntax,
    UID_JPIPReferencedDeflateTransferSyntax,
    UID_RFC2557MIMEEncapsulationTransferSyntax,
    UID_XMLEncodingTransferSyntax,
};

constexpr size_t k_nsyntaxes = sizeof k_transfer_syntaxes / sizeof k_transfer_syntaxes[0];
static_assert(k_nsyntaxes <= 64, "accepted syntaxes are a 64-bit mask");

/* Run-time policy (dcm_scp_set_accepted_syntaxes, dcm_scp_set_unknown_sop_class_accepted):
 * read once per presentation context while negotiating. */
std::atomic<uint64_t> g_accepted_syntaxes{k_nsyntaxes == 64 ? ~0ull : (1ull << k_nsyntaxes) - 1};
std::atomic<bool> g_unknown_sop_class_accepted{false};

/* A syntax we know and the policy accepts. */
bool accepted_transfer_syntax(const char *uid)
{
    uint64_t mask = g_accepted_syntaxes.load();
    for (size_t i = 0; i < k_nsyntaxes; i++)
        if (strcmp(k_transfer_syntaxes[i], uid) == 0) return (mask >> i) & 1;
    return false;
}

/* Storage SOP classes: DCMTK's list, looked up through a hash set built once. */
const std::unordered_set<std::string> &storage_classes()
{
    static const std::unordered_set<std::string> set = [] {
        std::unordered_set<std::string> s;
        for (int i = 0; i < numberOfDcmAllStorageSOPClassUIDs; i++)
            if (dcmAllStorageSOPClassUIDs[i]) s.insert(dcmAllStorageSOPClassUIDs[i]);
        return s;
    }();
    return set;
}

/* A growable byte buffer, DCMTK's consumer end of an output stream. Past `limit` bytes it
 * refuses the write and shuts the association's socket down (cut_fd): DCMTK answers a failed
 * write by reading the rest of the dataset until its last fragment, and a peer that never
 * sends one would keep the thread forever. */
class BufConsumer : public DcmConsumer {
public:
    ~BufConsumer() override { end_spool(); free(data_); }
    void set_limit(uint64_t limit, int cut_fd) { limit_ = limit; cut_fd_ = cut_fd; }
    bool over_limit() const { return over_; }
    OFBool good() const override { return ok_; }
    OFCondition status() const override { return ok_ ? EC_Normal : EC_MemoryExhausted; }
    OFBool isFlushed() const override { return OFTrue; }
    offile_off_t avail() const override { return ok_ ? (offile_off_t)1 << 30 : 0; }
    offile_off_t write(const void *buf, offile_off_t n) override
    {
        if (!ok_ || n <= 0) return 0;
        uint64_t total = spool_fd_ >= 0 ? spooled_ : (uint64_t)len_;
        if (limit_ && total + (uint64_t)n > limit_) {
            ok_ = false;
            over_ = true;
            if (cut_fd_ >= 0) shutdown(cut_fd_, SHUT_RDWR);
            return 0;
        }
        if (spool_fd_ < 0 && spool_at_ && total + (uint64_t)n > spool_at_ && !start_spool())
            return 0;
        if (spool_fd_ >= 0) {
            if (!write_fd(buf, (size_t)n)) return 0;
            return n;
        }
        if (!reserve(len_ + (size_t)n)) return 0;
        memcpy(data_ + len_, buf, (size_t)n);
        len_ += (size_t)n;
        return n;
    }
    void flush() override {}

    bool reserve(size_t need)
    {
        if (need <= cap_) return true;
        size_t cap = cap_ ? cap_ : 64 * 1024;
        while (cap < need) cap *= 2;
        unsigned char *p = (unsigned char *)realloc(data_, cap);
        if (!p) { ok_ = false; return false; }
        data_ = p;
        cap_ = cap;
        return true;
    }
    void reset() { end_spool(); len_ = 0; ok_ = true; over_ = false; }
    /* Large datasets to a file (DcmScpConfig's spool_*); at = 0: never. Set per instance. */
    void set_spool(const DcmScpConfig *cfg, uint64_t at) { cfg_ = cfg; spool_at_ = at; }
    bool spooled() const { return spool_fd_ >= 0; }
    uint64_t spooled_size() const { return spooled_; }
    void *spool_handle() const { return spool_h_; }
    /* Ends the spool (its owner removes the file unless it stored it). */
    void end_spool()
    {
        if (spool_h_) cfg_->spool_close(cfg_->ctx, spool_h_);
        spool_h_ = nullptr;
        spool_fd_ = -1;
        spooled_ = 0;
    }
    void truncate(size_t n) { if (n < len_) len_ = n; }
    /* Gives memory back after an unusually large instance. */
    void shrink(size_t keep)
    {
        if (cap_ > keep) { free(data_); data_ = nullptr; cap_ = 0; len_ = 0; }
    }
    const unsigned char *data() const { return data_; }
    size_t size() const { return len_; }

private:
    bool write_fd(const void *buf, size_t n)
    {
        const char *p = (const char *)buf;
        while (n) {
            ssize_t w = ::write(spool_fd_, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) { ok_ = false; return false; }
            p += w;
            n -= (size_t)w;
            spooled_ += (uint64_t)w;
        }
        return true;
    }
    /* Moves what is in memory to a new spool file; later writes go there. */
    bool start_spool()
    {
        void *h = nullptr;
        int fd = cfg_->spool_open(cfg_->ctx, &h);
        if (fd < 0) { ok_ = false; return false; }
        spool_h_ = h;
        spool_fd_ = fd;
        spooled_ = 0;
        if (!write_fd(data_, len_)) return false;
        len_ = 0;
        return true;
    }
    unsigned char *data_ = nullptr;
    size_t len_ = 0, cap_ = 0;
    bool ok_ = true, over_ = false;
    const DcmScpConfig *cfg_ = nullptr;
    uint64_t spool_at_ = 0, spooled_ = 0;
    int spool_fd_ = -1;
    void *spool_h_ = nullptr;
    uint64_t limit_ = 0;
    int cut_fd_ = -1;
};

class BufOutputStream : public DcmOutputStream {
public:
    explicit BufOutputStream(BufConsumer *c) : DcmOutputStream(c) {}
};

/* Reaches DcmTransportConnection's protected getSocket() without a downcast. */
struct SocketPeek : DcmTransportConnection {
    static DcmNativeSocketType fd(DcmTransportConnection *c)
    {
        DcmNativeSocketType (DcmTransportConnection::*get)() = &SocketPeek::getSocket;
        return (c->*get)();
    }
};

int assoc_socket(T_ASC_Association *a)
{
    if (!a || !a->DULassociation) return -1;
    PRIVATE_ASSOCIATIONKEY *k = (PRIVATE_ASSOCIATIONKEY *)a->DULassociation;
    return k->connection ? (int)SocketPeek::fd(k->connection) : -1;
}

int listen_socket(T_ASC_Network *net)
{
    if (!net || !net->network) return -1;
    return (int)((PRIVATE_NETWORKKEY *)net->network)->networkSpecific.TCP.listenSocket;
}

/* --- meta header ---------------------------------------------------------------------- */

void put16(std::string &s, uint16_t v) { s.push_back((char)(v & 0xff)); s.push_back((char)(v >> 8)); }
void put32(std::string &s, uint32_t v) { put16(s, (uint16_t)(v & 0xffff)); put16(s, (uint16_t)(v >> 16)); }

/* An explicit VR little endian element of group 0002 with a short-form VR. */
void put_elem(std::string &s, uint16_t elem, const char *vr, const char *value, char pad)
{
    size_t n = strlen(value);
    size_t padded = n + (n & 1);
    put16(s, 0x0002);
    put16(s, elem);
    s.append(vr, 2);
    put16(s, (uint16_t)padded);
    s.append(value, n);
    if (n & 1) s.push_back(pad);
}

/* Preamble, "DICM" and the meta group, as PS3.10 7.1 wants it. */
void write_meta(BufConsumer &buf, const char *sop_class, const char *sop_instance,
                const char *ts, const char *source_aet)
{
    std::string body;
    put16(body, 0x0002); put16(body, 0x0001); body.append("OB", 2); put16(body, 0);
    put32(body, 2); body.push_back('\0'); body.push_back('\1');
    put_elem(body, 0x0002, "UI", sop_class, '\0');
    put_elem(body, 0x0003, "UI", sop_instance, '\0');
    put_elem(body, 0x0010, "UI", ts, '\0');
    put_elem(body, 0x0012, "UI", DCM_IMPLEMENTATION_CLASS_UID, '\0');
    put_elem(body, 0x0013, "SH", DCM_IMPLEMENTATION_VERSION_NAME, ' ');
    if (source_aet && *source_aet) put_elem(body, 0x0016, "AE", source_aet, ' ');
    std::string head(128, '\0');
    head.append("DICM", 4);
    put16(head, 0x0002); put16(head, 0x0000); head.append("UL", 2); put16(head, 4);
    put32(head, (uint32_t)body.size());
    buf.write(head.data(), (offile_off_t)head.size());
    buf.write(body.data(), (offile_off_t)body.size());
}

/* A deflated dataset is an odd-length byte stream carried in even-length PDVs: the sender pads
 * it with one byte. Returns how many trailing bytes follow the end of the deflate stream
 * (0 or 1 when well-formed; 0 when it cannot tell). */
size_t deflate_padding(const unsigned char *p, size_t n)
{
    if (n == 0 || p[n - 1] != 0) return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return 0;
    unsigned char sink[16384];
    z.next_in = const_cast<unsigned char *>(p);
    z.avail_in = (uInt)n;
    int r;
    do {
        z.next_out = sink;
        z.avail_out = sizeof sink;
        r = inflate(&z, Z_NO_FLUSH);
    } while (r == Z_OK);
    size_t left = r == Z_STREAM_END ? z.avail_in : 0;
    inflateEnd(&z);
    return left == 1 ? 1 : 0;
}

std::string trim(const char *s)
{
    std::string r(s ? s : "");
    size_t b = r.find_first_not_of(' ');
    size_t e = r.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : r.substr(b, e - b + 1);
}

} // namespace

struct Assoc;
struct Conn;

/* ---- ScreenedConnection (dcmtk_net.h) --------------------------------------------------- */

ssize_t ScreenedConnection::read(void *buf, size_t nbyte)
{
    ssize_t r = raw_read(buf, nbyte);
    if (r > 0 && !screened_ && !screen((const unsigned char *)buf, (size_t)r)) {
        errno = EPROTO;
        return -1;
    }
    return r;
}

bool ScreenedConnection::screen(const unsigned char *b, size_t n)
{
    static const size_t max_pdu = 1u << 20; /* 128 contexts of 8 syntaxes are ~80 KB */
    size_t i = 0;
    for (; i < n && seen_ < 6; i++) head_[seen_++] = b[i];
    if (seen_ < 6) return true;
    if (head_[0] != 0x01 && head_[0] != 0x02) { screened_ = true; return true; } /* DCMTK's */
    size_t len = (size_t)head_[2] << 24 | (size_t)head_[3] << 16 | (size_t)head_[4] << 8 | head_[5];
    if (len > max_pdu) return refuse(head_[0] == 0x01 ? "an A-ASSOCIATE-RQ over 1 MB" : "an A-ASSOCIATE-AC over 1 MB");
    size_t take = std::min(n - i, len - body_.size());
    body_.insert(body_.end(), b + i, b + i + take);
    if (body_.size() < len) return true;
    screened_ = true;
    char why[160];
    bool ok = dcm_assoc_pdu_check(head_[0], body_.data(), body_.size(), why, sizeof why);
    std::vector<unsigned char>().swap(body_);
    return ok ? true : refuse(why);
}

bool ScreenedConnection::refuse(const char *why)
{
    screened_ = true;
    if (why_ && why_size_) snprintf(why_, why_size_, "%s", why);
    static const unsigned char abort_pdu[10] = { 0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6 };
    ssize_t w = send((int)getSocket(), abort_pdu, sizeof abort_pdu, MSG_NOSIGNAL);
    (void)w; /* the peer may be gone already: nothing else to tell it */
    return false;
}

/* A TCP connection that counts what it reads against a budget the association thread sets
 * (0: none). DCMTK buffers a command set in memory as it arrives, however many fragments the
 * peer sends; with a budget armed around DIMSE_receiveCommand() a peer that never ends its
 * command gets a failed read (and an A-ABORT) instead of our memory. */
class MeteredConnection : public ScreenedConnection {
public:
    /* over_flag (may be NULL) is set when a read is refused; it outlives the connection, which
     * DCMTK deletes as soon as the failed read closes the transport. bad_rq: see
     * ScreenedConnection. */
    MeteredConnection(DcmNativeSocketType sock, bool *over_flag, char *bad_rq, size_t bad_size)
        : ScreenedConnection(sock, bad_rq, bad_size), flag_(over_flag) {}
    ~MeteredConnection() override { free(ahead_); }
    void arm(uint64_t budget) { budget_ = budget; used_ = 0; over_ = false; }
    bool over() const { return over_; }
    ssize_t read(void *buf, size_t nbyte) override
    {
        if (budget_ && used_ >= budget_) {
            over_ = true;
            if (flag_) *flag_ = true;
            errno = EMSGSIZE;
            return -1;
        }
        ssize_t r = ScreenedConnection::read(buf, nbyte);
        if (r > 0) used_ += (uint64_t)r;
        return r;
    }

    /* Bytes already read ahead count as data waiting: DCMTK asks before each read */
    OFBool networkDataAvailable(int timeout) override
    {
        return ahead_pos_ < ahead_len_ ? OFTrue : DcmTCPConnection::networkDataAvailable(timeout);
    }
    OFBool isTransparentConnection() override { return OFFalse; } /* it buffers */

private:
    /* DCMTK reads each PDU as a 6-byte header then its body, with a poll before each read:
     * at the default 16 KB PDU a 512 KB C-STORE took ~70 reads and ~70 polls. One readv fills
     * the caller's buffer and reads up to k_ahead more bytes aside, served to the next reads
     * without a system call (about 8x fewer calls per dataset). The caller's bytes go straight
     * to its buffer, so a PDU body is copied only when it was read ahead. */
    static const size_t k_ahead = 64 * 1024;
    ssize_t raw_read(void *buf, size_t nbyte) override
    {
        if (ahead_pos_ < ahead_len_) {
            size_t n = std::min(nbyte, ahead_len_ - ahead_pos_);
            memcpy(buf, ahead_ + ahead_pos_, n);
            ahead_pos_ += n;
            if (ahead_pos_ == ahead_len_) ahead_pos_ = ahead_len_ = 0;
            return (ssize_t)n;
        }
        if (!ahead_ && !(ahead_ = (unsigned char *)malloc(k_ahead))) return DcmTCPConnection::read(buf, nbyte);
        struct iovec v[2] = { { buf, nbyte }, { ahead_, k_ahead } };
        ssize_t r = readv((int)getSocket(), v, 2);
        if (r <= (ssize_t)nbyte) return r;
        ahead_pos_ = 0;
        ahead_len_ = (size_t)r - nbyte;
        return (ssize_t)nbyte;
    }

    uint64_t budget_ = 0, used_ = 0;
    bool over_ = false;
    bool *flag_;
    unsigned char *ahead_ = nullptr; /* k_ahead bytes, allocated at the first read */
    size_t ahead_pos_ = 0, ahead_len_ = 0;
};

/* The association's connection when it is one of ours and still there. DCMTK deletes the
 * connection when the transport closes (peer's A-ABORT, EOF), so the pointer is looked up
 * each time, never kept. */
static MeteredConnection *metered(T_ASC_Association *a)
{
    if (!a || !a->DULassociation) return nullptr;
    PRIVATE_ASSOCIATIONKEY *k = (PRIVATE_ASSOCIATIONKEY *)a->DULassociation;
    return k->connection ? dynamic_cast<MeteredConnection *>(k->connection) : nullptr;
}

/* DCMTK creates each accepted connection through the network's transport layer, on the thread
 * that called ASC_receiveAssociation() and right after accept(): this is where a connection
 * thread learns its socket (and tells the listener that the accept is done). */
class AcceptHook : public DcmTransportLayer {
public:
    DcmTransportConnection *createConnection(DcmNativeSocketType sock, OFBool secure) override;
};

struct DcmScp {
    DcmScpConfig cfg {};
    std::string aet;
    T_ASC_Network *net = nullptr;
    AcceptHook hook;
    int wake[2] = { -1, -1 };
    pthread_t listener {};
    bool listener_started = false;
    std::atomic<bool> stopping { false };
    int handshake_s = 10;        /* from accept to the end of negotiation */
    unsigned max_handshakes = 32; /* connections still handshaking; past it the oldest is cut */

    std::mutex mu;               /* guards everything below */
    std::condition_variable cv;  /* signalled when a thread ends or an accept is done */
    uint32_t threads = 0;        /* connection threads running (handshaking or associated) */
    uint32_t active = 0;         /* negotiated associations (MaximumAssociations) */
    std::set<Assoc *> live;
    std::list<Conn *> handshaking; /* accept order: oldest first */
    uint64_t accepts_started = 0, accepts_done = 0;

    std::atomic<uint64_t> next_id { 0 };
    std::atomic<uint64_t> n_assoc { 0 }, n_rejected { 0 }, n_stored { 0 }, n_failed { 0 };
    std::atomic<uint64_t> n_handshake_cut { 0 };
};

/* One accepted connection, from the accept to the end of its thread. */
struct Conn {
    DcmScp *scp = nullptr;
    uint64_t id = 0;
    bool accept_signalled = false;  /* accepts_done counted for this one */
    int guard = -1;                 /* our dup of the socket while handshaking (shutdown target) */
    bool cut = false;               /* shut down by the listener: timeout, cap or stop */
    const char *cut_why = "";
    std::chrono::steady_clock::time_point deadline;
    char host[64] = "";
    bool read_over = false; /* the metered connection refused a read (see MeteredConnection) */
    char bad_rq[160] = "";  /* why the A-ASSOCIATE-RQ was refused unparsed (MeteredConnection) */
};

struct Assoc {
    DcmScp *scp = nullptr;
    T_ASC_Association *a = nullptr;
    uint64_t id = 0;
    std::string calling, called, host;
    int fd = -1;
    bool *read_over = nullptr; /* the connection's Conn::read_over */
    uint64_t stored = 0, failed = 0, echoes = 0;
};

/* Bytes a command set may take on the wire (C-STORE-RQ and friends are a few hundred; the
 * PDU that carries the end of the command may also start the dataset). */
const uint64_t k_command_budget = 256 * 1024;

int net_socket(T_ASC_Association *a)
{
    return assoc_socket(a);
}

bool net_receive_identifier(T_ASC_Association *a, int timeout_s, uint64_t limit, DcmDataset **out,
                            bool *too_large, OFCondition *cond)
{
    *out = nullptr;
    *too_large = false;
    BufConsumer buf;
    buf.set_limit(limit, assoc_socket(a));
    BufOutputStream os(&buf);
    T_ASC_PresentationContextID pid = 0;
    *cond = DIMSE_receiveDataSetInFile(a, timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING,
                                       timeout_s, &pid, &os, nullptr, nullptr);
    if (buf.over_limit()) {
        *too_large = true;
        return false;
    }
    if (cond->bad()) return false;
    if (!buf.good()) {
        *cond = EC_MemoryExhausted;
        return false;
    }
    T_ASC_PresentationContext pc;
    memset(&pc, 0, sizeof pc);
    *cond = ASC_findAcceptedPresentationContext(a->params, pid, &pc);
    if (cond->bad()) return false;
    E_TransferSyntax xfer = DcmXfer(pc.acceptedTransferSyntax).getXfer();
    if (xfer == EXS_Unknown) xfer = EXS_LittleEndianImplicit;
    DcmInputBufferStream in;
    in.setBuffer(buf.data(), (offile_off_t)buf.size());
    in.setEos();
    DcmDataset *ds = new DcmDataset;
    ds->transferInit();
    *cond = ds->read(in, xfer, EGL_noChange);
    ds->transferEnd();
    if (cond->bad()) {
        delete ds;
        return false;
    }
    *out = ds;
    return true;
}

namespace {

void call_thread_start(DcmScp *scp, const char *name)
{
    char n[16];
    snprintf(n, sizeof n, "%s", name);
    pthread_setname_np(pthread_self(), n);
    if (scp->cfg.thread_start) scp->cfg.thread_start(scp->cfg.ctx, name);
}

void drop_assoc(T_ASC_Association **a)
{
    if (!*a) return;
    ASC_dropSCPAssociation(*a);
    ASC_destroyAssociation(a);
    *a = nullptr;
}

void reject(T_ASC_Association *a, T_ASC_RejectParametersResult result,
            T_ASC_RejectParametersSource source, T_ASC_RejectParametersReason reason)
{
    T_ASC_RejectParameters rej = { result, source, reason };
    OFCondition c = ASC_rejectAssociation(a, &rej);
    if (c.bad()) dcm_int_log(DCM_LOG_DEBUG, "dicom: cannot send A-ASSOCIATE-RJ: %s", c.text());
    /* The A-ASSOCIATE-RJ is on the wire. Closing our side now means the drop that follows does
     * not wait (on the listener thread, up to the ACSE timeout) for a peer that never closes
     * its own: one such peer would otherwise stall every new association. */
    int fd = assoc_socket(a);
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
}

/* --- the association thread ------------------------------------------------------------ */

/* timeout_s 0 means no timeout: blocking reads. */
T_DIMSE_BlockingMode dimse_mode(const DcmScp *scp)
{
    return scp->cfg.timeout_s > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING;
}

uint16_t handle_store(Assoc *as, T_ASC_PresentationContextID pid, T_DIMSE_C_StoreRQ &rq,
                      BufConsumer &buf, bool *fatal)
{
    DcmScp *scp = as->scp;
    T_ASC_PresentationContext pc;
    memset(&pc, 0, sizeof pc);
    char comment[128] = "";
    uint16_t status = STATUS_Success;
    *fatal = false;

    if (rq.DataSetType == DIMSE_DATASET_NULL) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: C-STORE without dataset from %s@%s",
                    as->calling.c_str(), as->host.c_str());
        status = 0xC000;
        snprintf(comment, sizeof comment, "no dataset");
    } else {
        OFCondition c = ASC_findAcceptedPresentationContext(as->a->params, pid, &pc);
        const char *ts = c.good() ? pc.acceptedTransferSyntax : UID_LittleEndianImplicitTransferSyntax;
        buf.reset();
        bool may_spool = scp->cfg.spool_open && scp->cfg.store_spool && scp->cfg.spool_close &&
                         strcmp(ts, UID_DeflatedExplicitVRLittleEndianTransferSyntax) != 0;
        buf.set_spool(&scp->cfg, may_spool ? scp->cfg.spool_threshold : 0);
        write_meta(buf, rq.AffectedSOPClassUID, rq.AffectedSOPInstanceUID, ts,
                   as->calling.c_str());
        size_t meta_len = buf.size();
        BufOutputStream out(&buf);
        T_ASC_PresentationContextID data_pid = 0;
        c = DIMSE_receiveDataSetInFile(as->a, dimse_mode(scp), scp->cfg.timeout_s, &data_pid,
                                       &out, nullptr, nullptr);
        if (buf.over_limit()) {
            dcm_int_log(DCM_LOG_WARNING,
                        "dicom: C-STORE %s from %s@%s: dataset larger than %llu bytes (MaximumUploadSize), association aborted",
                        rq.AffectedSOPInstanceUID, as->calling.c_str(), as->host.c_str(),
                        (unsigned long long)scp->cfg.max_dataset);
            *fatal = true;
            buf.end_spool(); /* nothing stored: the file goes */
            return 0;
        }
        if (c.bad()) {
            dcm_int_log(DCM_LOG_WARNING, "dicom: receiving a dataset from %s@%s failed: %s",
                        as->calling.c_str(), as->host.c_str(), c.text());
            *fatal = true;
            buf.end_spool();
            return 0;
        }
        if (buf.good() && strcmp(ts, UID_DeflatedExplicitVRLittleEndianTransferSyntax) == 0)
            buf.truncate(buf.size() - deflate_padding(buf.data() + meta_len, buf.size() - meta_len));
        if (!buf.good()) {
            status = 0xA700;
            snprintf(comment, sizeof comment, "out of memory");
        } else if (strcmp(pc.abstractSyntax, rq.AffectedSOPClassUID) != 0) {
            status = 0x0122; /* SOP class not supported on this context */
            snprintf(comment, sizeof comment, "SOP class differs from the presentation context");
        } else {
            DcmAssocInfo info = { as->id, as->calling.c_str(), as->called.c_str(),
                                  as->host.c_str(), rq.AffectedSOPClassUID,
                                  rq.AffectedSOPInstanceUID, ts };
            status = buf.spooled()
                         ? scp->cfg.store_spool(scp->cfg.ctx, buf.spool_handle(), buf.spooled_size(),
                                                &info, comment, sizeof comment)
                         : scp->cfg.store(scp->cfg.ctx, buf.data(), buf.size(), &info, comment,
                                          sizeof comment);
        }
        buf.end_spool();
        buf.shrink(64u << 20);
    }

    T_DIMSE_C_StoreRSP rsp;
    memset(&rsp, 0, sizeof rsp);
    rsp.MessageIDBeingRespondedTo = rq.MessageID;
    rsp.DimseStatus = status;
    rsp.DataSetType = DIMSE_DATASET_NULL;
    OFStandard::strlcpy(rsp.AffectedSOPClassUID, rq.AffectedSOPClassUID, sizeof rsp.AffectedSOPClassUID);
    OFStandard::strlcpy(rsp.AffectedSOPInstanceUID, rq.AffectedSOPInstanceUID, sizeof rsp.AffectedSOPInstanceUID);
    rsp.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
    if (rq.opts & O_STORE_RQ_BLANK_PADDING) rsp.opts |= O_STORE_RSP_BLANK_PADDING;

    DcmDataset *detail = nullptr;
    if (status != STATUS_Success && comment[0]) {
        detail = new DcmDataset;
        comment[64] = '\0'; /* ErrorComment is LO: 64 characters */
        detail->putAndInsertString(DCM_ErrorComment, comment);
    }
    OFCondition c = DIMSE_sendStoreResponse(as->a, pid, &rq, &rsp, detail);
    delete detail;
    if (c.bad()) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: cannot send C-STORE-RSP to %s@%s: %s",
                    as->calling.c_str(), as->host.c_str(), c.text());
        *fatal = true;
    }
    return status;
}

/* Acknowledges at once what was read on fd (TCP_QUICKACK). A request whose dataset follows
 * its command (C-STORE, C-FIND, C-MOVE, C-GET) arrives as two writes from most peers; with
 * Nagle's algorithm on the peer's side (Python sockets, any client without TCP_NODELAY) the
 * second one, the dataset, waits until the first is acknowledged, and Linux delays that ACK by
 * 40 ms once the connection looks interactive (we answered the previous request): every
 * C-FIND on a reused association took 40 ms more than its work (strace: the identifier came
 * 42 ms after the command). The option is not sticky (the kernel goes back to delayed ACKs as
 * we answer), so it is set after each such command. */
void ack_now(int fd)
{
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* Runs one association to its end; returns a word for the log. */
const char *serve(Assoc *as)
{
    DcmScp *scp = as->scp;
    BufConsumer buf;
    /* + the meta header we write in front (well under 1 KB) */
    buf.set_limit(scp->cfg.max_dataset ? scp->cfg.max_dataset + 4096 : 0, as->fd);
    int idle = 0;
    for (;;) {
        if (!ASC_dataWaiting(as->a, 1)) {
            if (scp->stopping.load()) {
                ASC_abortAssociation(as->a);
                return "aborted at shutdown";
            }
            if (scp->cfg.timeout_s > 0 && ++idle >= scp->cfg.timeout_s) {
                ASC_abortAssociation(as->a);
                return "aborted: idle timeout";
            }
            continue;
        }
        idle = 0;
        T_ASC_PresentationContextID pid = 0;
        T_DIMSE_Message msg;
        memset(&msg, 0, sizeof msg);
        MeteredConnection *mc = metered(as->a);
        if (as->read_over) *as->read_over = false;
        if (mc) mc->arm(k_command_budget + 2 * (scp->cfg.max_pdu ? scp->cfg.max_pdu : ASC_MAXIMUMPDUSIZE));
        OFCondition c = DIMSE_receiveCommand(as->a, dimse_mode(scp), scp->cfg.timeout_s, &pid,
                                             &msg, nullptr);
        mc = metered(as->a); /* gone if the transport closed meanwhile */
        bool command_too_long = (mc && mc->over()) || (as->read_over && *as->read_over);
        if (mc) mc->arm(0);
        if (command_too_long) {
            dcm_int_log(DCM_LOG_WARNING,
                        "dicom: association %llu with %s@%s: command set longer than %llu bytes, association aborted",
                        (unsigned long long)as->id, as->calling.c_str(), as->host.c_str(),
                        (unsigned long long)k_command_budget);
            ASC_abortAssociation(as->a);
            return "aborted: command too long";
        }
        if (c == DUL_PEERREQUESTEDRELEASE) {
            ASC_acknowledgeRelease(as->a);
            return "released";
        }
        if (c == DUL_PEERABORTEDASSOCIATION) return "aborted by peer";
        if (c == DIMSE_NODATAAVAILABLE) {
            ASC_abortAssociation(as->a);
            return "aborted: timeout inside a command";
        }
        if (c.bad()) {
            dcm_int_log(DCM_LOG_WARNING, "dicom: association %llu with %s@%s: %s",
                        (unsigned long long)as->id, as->calling.c_str(), as->host.c_str(),
                        c.text());
            ASC_abortAssociation(as->a);
            return "aborted on error";
        }
        if (msg.CommandField == DIMSE_C_STORE_RQ || msg.CommandField == DIMSE_C_FIND_RQ ||
            msg.CommandField == DIMSE_C_MOVE_RQ || msg.CommandField == DIMSE_C_GET_RQ)
            ack_now(as->fd);
        switch (msg.CommandField) {
        case DIMSE_C_ECHO_RQ:
            as->echoes++;
            c = DIMSE_sendEchoResponse(as->a, pid, &msg.msg.CEchoRQ, STATUS_Success, nullptr);
            if (c.bad()) {
                ASC_abortAssociation(as->a);
                return "aborted: cannot answer C-ECHO";
            }
            break;
        case DIMSE_C_STORE_RQ: {
            bool fatal = false;
            uint16_t st = handle_store(as, pid, msg.msg.CStoreRQ, buf, &fatal);
            if (fatal) {
                ASC_abortAssociation(as->a);
                return "aborted on a network error";
            }
            if (st == STATUS_Success) { as->stored++; scp->n_stored++; }
            else { as->failed++; scp->n_failed++; }
            break;
        }
        case DIMSE_C_FIND_RQ:
        case DIMSE_C_MOVE_RQ:
        case DIMSE_C_GET_RQ: {
            DcmAssocInfo info = { as->id, as->calling.c_str(), as->called.c_str(),
                                  as->host.c_str(), "", "", "" };
            if (!qr_serve(scp->cfg.ctx, info, as->a, pid, msg, scp->cfg.timeout_s)) {
                ASC_abortAssociation(as->a);
                return "aborted during a query/retrieve";
            }
            break;
        }
        case DIMSE_C_CANCEL_RQ:
            break; /* a C-CANCEL after its operation ended: nothing to stop */
        default:
            dcm_int_log(DCM_LOG_WARNING,
                        "dicom: unsupported DIMSE command 0x%04x from %s@%s, aborting",
                        (unsigned)msg.CommandField, as->calling.c_str(), as->host.c_str());
            ASC_abortAssociation(as->a);
            return "aborted: unsupported command";
        }
    }
}

/* Runs a negotiated association to its end, then forgets it. */
void run_assoc(Assoc *as)
{
    DcmScp *scp = as->scp;
    const char *how = "ended";
    try {
        how = serve(as);
    } catch (...) {
        how = "aborted: internal error";
        ASC_abortAssociation(as->a);
    }
    dcm_int_log(DCM_LOG_INFO, "dicom: association %llu %s -> %s from %s %s: %llu stored, %llu failed, %llu echo",
                (unsigned long long)as->id, as->calling.c_str(), as->called.c_str(),
                as->host.c_str(), how, (unsigned long long)as->stored,
                (unsigned long long)as->failed, (unsigned long long)as->echoes);
    {
        std::lock_guard<std::mutex> g(scp->mu);
        scp->live.erase(as);
        as->fd = -1;
    }
    drop_assoc(&as->a);
    delete as;
    std::lock_guard<std::mutex> g(scp->mu);
    scp->active--;
    scp->cv.notify_all();
}

/* --- negotiation, on the connection's thread ---------------------------------------------- */

/* Answers the association request: A-ASSOCIATE-RJ (and nullptr; `a` is dropped) or
 * A-ASSOCIATE-AC and the association to serve, counted in active/live. */
Assoc *negotiate(DcmScp *scp, T_ASC_Association *a, uint64_t id)
{
    char calling[64] = "", called[64] = "", host[128] = "", ctxname[128] = "";
    ASC_getAPTitles(a->params, calling, sizeof calling, called, sizeof called, nullptr, 0);
    ASC_getPresentationAddresses(a->params, host, sizeof host, nullptr, 0);
    ASC_getApplicationContextName(a->params, ctxname, sizeof ctxname);
    std::string scalling = trim(calling), scalled = trim(called);
    DcmAssocInfo info = { id, scalling.c_str(), scalled.c_str(), host, "", "", "" };

    if (strcmp(ctxname, UID_StandardApplicationContext) != 0) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: rejected association from %s@%s: application context %s",
                    scalling.c_str(), host, ctxname);
        reject(a, ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
               ASC_REASON_SU_APPCONTEXTNAMENOTSUPPORTED);
        scp->n_rejected++;
        drop_assoc(&a);
        return nullptr;
    }
    if (scp->stopping.load()) {
        reject(a, ASC_RESULT_REJECTEDTRANSIENT, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
               ASC_REASON_SP_PRES_TEMPORARYCONGESTION);
        scp->n_rejected++;
        drop_assoc(&a);
        return nullptr;
    }
    char reason[256] = "";
    int why = DCM_SCP_REJECT_NO_REASON;
    unsigned allow = scp->cfg.accept ? scp->cfg.accept(scp->cfg.ctx, &info, &why, reason, sizeof reason)
                                     : (DCM_SCP_ALLOW_ECHO | DCM_SCP_ALLOW_STORE);
    if (allow == 0) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: rejected association from AET %s at %s (called %s): %s",
                    scalling.c_str(), host, scalled.c_str(), reason[0] ? reason : "refused");
        reject(a, ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
               why == DCM_SCP_REJECT_CALLED_AET    ? ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED
               : why == DCM_SCP_REJECT_CALLING_AET ? ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED
                                                   : ASC_REASON_SU_NOREASON);
        scp->n_rejected++;
        drop_assoc(&a);
        return nullptr;
    }

    const auto &classes = storage_classes();
    int n = ASC_countPresentationContexts(a->params);
    int accepted = 0, refused_by_policy = 0;
    for (int i = 0; i < n; i++) {
        T_ASC_PresentationContext pc;
        if (ASC_getPresentationContext(a->params, i, &pc).bad()) continue;
        bool echo = strcmp(pc.abstractSyntax, UID_VerificationSOPClass) == 0;
        bool store = !echo && classes.count(pc.abstractSyntax) > 0;
        unsigned qr_need = 0;
        bool qr = !echo && !store && qr_abstract_syntax(pc.abstractSyntax, &qr_need);
        /* UnknownSopClassAccepted: any other abstract syntax is taken as a storage class */
        if (!echo && !store && !qr && g_unknown_sop_class_accepted.load()) store = true;
        /* a storage context with the SCP role for us to play as SCU: C-GET's sub-operations */
        bool get_role = store && (pc.proposedRole == ASC_SC_ROLE_SCP || pc.proposedRole == ASC_SC_ROLE_SCUSCP);
        if ((echo && !(allow & DCM_SCP_ALLOW_ECHO)) || (qr && !(allow & qr_need)) ||
            (store && !(allow & DCM_SCP_ALLOW_STORE) && !(get_role && (allow & DCM_SCP_ALLOW_GET)))) {
            refused_by_policy++;
            ASC_refusePresentationContext(a->params, pc.presentationContextID,
                                          ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        if (!echo && !store && !qr) {
            ASC_refusePresentationContext(a->params, pc.presentationContextID,
                                          ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        const char *ts = nullptr;
        for (int j = 0; j < pc.transferSyntaxCount && !ts; j++)
            if (accepted_transfer_syntax(pc.proposedTransferSyntaxes[j]))
                ts = pc.proposedTransferSyntaxes[j];
        if (!ts) {
            ASC_refusePresentationContext(a->params, pc.presentationContextID,
                                          ASC_P_TRANSFERSYNTAXESNOTSUPPORTED);
            continue;
        }
        T_ASC_SC_ROLE role = get_role ? pc.proposedRole : ASC_SC_ROLE_DEFAULT;
        if (ASC_acceptPresentationContext(a->params, pc.presentationContextID, ts, role).good())
            accepted++;
    }
    if (accepted > 0 && refused_by_policy > 0)
        dcm_int_log(DCM_LOG_WARNING, "dicom: association from AET %s at %s (called %s): %d context(s) refused: %s",
                    scalling.c_str(), host, scalled.c_str(), refused_by_policy,
                    reason[0] ? reason : "not allowed for this AET");
    if (accepted == 0 && refused_by_policy > 0) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: rejected association from AET %s at %s (called %s): %s",
                    scalling.c_str(), host, scalled.c_str(),
                    reason[0] ? reason : "storage not allowed for this AET");
        reject(a, ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
               ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED);
        scp->n_rejected++;
        drop_assoc(&a);
        return nullptr;
    }

    Assoc *as = new Assoc;
    as->scp = scp;
    as->a = a;
    as->id = id;
    as->calling = scalling;
    as->called = scalled;
    as->host = host;
    as->fd = assoc_socket(a);
    {
        std::lock_guard<std::mutex> g(scp->mu);
        if (scp->active >= (uint32_t)scp->cfg.max_associations) {
            dcm_int_log(DCM_LOG_WARNING,
                        "dicom: rejected association from AET %s at %s: %d associations already running (MaximumAssociations)",
                        scalling.c_str(), host, scp->cfg.max_associations);
            reject(a, ASC_RESULT_REJECTEDTRANSIENT, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                   ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
            scp->n_rejected++;
            delete as;
            drop_assoc(&a);
            return nullptr;
        }
        scp->active++;
        scp->live.insert(as);
    }
    if (scp->cfg.tcp_nodelay && as->fd >= 0) {
        int one = 1;
        setsockopt(as->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    OFCondition c = ASC_acknowledgeAssociation(a);
    if (c.bad()) {
        dcm_int_log(DCM_LOG_WARNING, "dicom: cannot acknowledge association from %s@%s: %s",
                    scalling.c_str(), host, c.text());
        {
            std::lock_guard<std::mutex> g(scp->mu);
            scp->live.erase(as);
            scp->active--;
        }
        delete as;
        drop_assoc(&a);
        return nullptr;
    }
    scp->n_assoc++;
    dcm_int_log(DCM_LOG_DEBUG, "dicom: association %llu from AET %s at %s (called %s), %d contexts accepted",
                (unsigned long long)id, scalling.c_str(), host, scalled.c_str(), accepted);
    return as;
}

/* --- connections: accepted by DCMTK on their own thread --------------------------------- */

/* The connection this thread is accepting (read by AcceptHook::createConnection). */
thread_local Conn *t_conn = nullptr;

/* Counts the accept of c as done (once), so that the listener polls the port again. */
void accept_done(Conn *c)
{
    std::lock_guard<std::mutex> g(c->scp->mu);
    if (c->accept_signalled) return;
    c->accept_signalled = true;
    c->scp->accepts_done++;
    c->scp->cv.notify_all();
}

/* Shuts a handshaking connection down (under mu): DCMTK's pending read fails at once. */
void cut_handshake(Conn *c, const char *why)
{
    if (c->cut || c->guard < 0) return;
    c->cut = true;
    c->cut_why = why;
    shutdown(c->guard, SHUT_RDWR);
}

/* The connection leaves the handshaking list (negotiated, refused or failed). */
void handshake_end(Conn *c)
{
    std::lock_guard<std::mutex> g(c->scp->mu);
    if (c->guard < 0) return;
    c->scp->handshaking.remove(c);
    close(c->guard);
    c->guard = -1;
}

void *conn_main(void *arg)
{
    Conn *c = (Conn *)arg;
    DcmScp *scp = c->scp;
    char name[16];
    snprintf(name, sizeof name, "dicom-%llu", (unsigned long long)c->id);
    call_thread_start(scp, name);
    long max_pdu = scp->cfg.max_pdu ? (long)scp->cfg.max_pdu : ASC_MAXIMUMPDUSIZE;
    T_ASC_Association *a = nullptr;
    Assoc *as = nullptr;
    try {
        t_conn = c;
        OFCondition cond = ASC_receiveAssociation(scp->net, &a, max_pdu, nullptr, nullptr, OFFalse,
                                                  DUL_NOBLOCK, 1);
        t_conn = nullptr;
        accept_done(c); /* also when DCMTK failed before its accept */
        if (cond.bad()) {
            bool cut;
            const char *why;
            {
                std::lock_guard<std::mutex> g(scp->mu);
                cut = c->cut;
                why = c->cut_why;
            }
            if (cut)
                dcm_int_log(DCM_LOG_INFO, "dicom: connection %llu from %s closed: %s",
                            (unsigned long long)c->id, c->host[0] ? c->host : "?", why);
            else if (c->bad_rq[0])
                dcm_int_log(DCM_LOG_WARNING, "dicom: connection %llu from %s aborted: malformed A-ASSOCIATE-RQ: %s",
                            (unsigned long long)c->id, c->host[0] ? c->host : "?", c->bad_rq);
            else if (cond != DUL_NOASSOCIATIONREQUEST)
                dcm_int_log(DCM_LOG_INFO, "dicom: connection %llu from %s dropped before an association: %s",
                            (unsigned long long)c->id, c->host[0] ? c->host : "?", cond.text());
            handshake_end(c);
            drop_assoc(&a);
        } else {
            handshake_end(c);
            /* DCMTK reports its own read timeout on the first PDU as success with empty
             * parameters (ARTIM expired): there is no request to answer. */
            char ctxname[128] = "";
            ASC_getApplicationContextName(a->params, ctxname, sizeof ctxname);
            if (!ctxname[0]) {
                dcm_int_log(DCM_LOG_INFO, "dicom: connection %llu from %s closed: no association request within %d s",
                            (unsigned long long)c->id, c->host[0] ? c->host : "?", scp->handshake_s);
                drop_assoc(&a);
            } else {
                as = negotiate(scp, a, c->id);
                if (as) as->read_over = &c->read_over;
            }
        }
        if (as) run_assoc(as);
    } catch (...) {
        t_conn = nullptr;
        accept_done(c);
        handshake_end(c);
        dcm_int_log(DCM_LOG_ERROR, "dicom: internal error on connection %llu", (unsigned long long)c->id);
        if (!as) drop_assoc(&a);
    }
    delete c;
    /* Last touch of scp: after this, dcm_scp_stop may free it. */
    std::lock_guard<std::mutex> g(scp->mu);
    scp->threads--;
    scp->cv.notify_all();
    return nullptr;
}

/* Starts a thread for the connection waiting on the port and waits (briefly) until it has
 * accepted it, so that the next poll does not see the same connection again. */
void start_connection(DcmScp *scp, int lfd)
{
    Conn *c = new Conn;
    c->scp = scp;
    c->id = ++scp->next_id;
    uint64_t ticket;
    {
        std::lock_guard<std::mutex> g(scp->mu);
        ticket = ++scp->accepts_started;
        scp->threads++;
    }
    pthread_t th;
    pthread_attr_t attr;
    bool spawned = false;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        spawned = pthread_create(&th, &attr, conn_main, c) == 0;
        pthread_attr_destroy(&attr);
    }
    std::unique_lock<std::mutex> lk(scp->mu);
    if (!spawned) {
        scp->threads--;
        scp->accepts_done++;
        lk.unlock();
        delete c;
        dcm_int_log(DCM_LOG_ERROR, "dicom: cannot start a thread for a new connection: closing it");
        int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) close(fd);
        usleep(100 * 1000);
        return;
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (scp->accepts_done < ticket && !scp->stopping.load() &&
           scp->cv.wait_until(lk, until) != std::cv_status::timeout) {}
}

/* Cuts handshakes past their deadline; returns the milliseconds until the next deadline
 * (at most 1000). */
int enforce_deadlines(DcmScp *scp)
{
    auto now = std::chrono::steady_clock::now();
    long next = 1000;
    std::lock_guard<std::mutex> g(scp->mu);
    for (Conn *c : scp->handshaking) {
        if (c->cut) continue;
        long left = (long)std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - now).count();
        if (left <= 0) {
            dcm_int_log(DCM_LOG_WARNING, "dicom: connection %llu from %s: handshake timed out after %d s, closing it",
                        (unsigned long long)c->id, c->host, scp->handshake_s);
            cut_handshake(c, "handshake timed out");
            scp->n_handshake_cut++;
        } else if (left < next) {
            next = left;
        }
    }
    return (int)next + 1;
}

void *listener_main(void *arg)
{
    DcmScp *scp = (DcmScp *)arg;
    call_thread_start(scp, "dicom");
    int lfd = listen_socket(scp->net);
    while (!scp->stopping.load()) {
        int wait_ms = enforce_deadlines(scp);
        struct pollfd p[2] = { { lfd, POLLIN, 0 }, { scp->wake[0], POLLIN, 0 } };
        int r = poll(p, 2, wait_ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            dcm_int_log(DCM_LOG_ERROR, "dicom: poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents) break;
        if (p[0].revents & POLLIN) start_connection(scp, lfd);
    }
    return nullptr;
}

} // namespace

DcmTransportConnection *AcceptHook::createConnection(DcmNativeSocketType sock, OFBool secure)
{
    Conn *c = t_conn;
    if (c) {
        DcmScp *scp = c->scp;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername((int)sock, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->host, sizeof c->host);
            else if (ss.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->host, sizeof c->host);
        }
        std::lock_guard<std::mutex> g(scp->mu);
        c->guard = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
        c->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(scp->handshake_s);
        if (c->guard >= 0) {
            /* Past the cap, the oldest handshake goes: a flood of idle sockets cannot keep a
             * real peer out for longer than it takes to open max_handshakes more. */
            size_t open = 0;
            for (Conn *o : scp->handshaking) if (!o->cut) open++;
            if (open >= scp->max_handshakes) {
                for (Conn *o : scp->handshaking) {
                    if (o->cut) continue;
                    dcm_int_log(DCM_LOG_WARNING,
                                "dicom: %u handshakes in progress: closing the oldest (connection %llu from %s)",
                                scp->max_handshakes, (unsigned long long)o->id, o->host);
                    cut_handshake(o, "too many handshakes in progress");
                    scp->n_handshake_cut++;
                    break;
                }
            }
            scp->handshaking.push_back(c);
        }
        if (scp->stopping.load()) cut_handshake(c, "server stopping");
        if (!c->accept_signalled) {
            c->accept_signalled = true;
            scp->accepts_done++;
            scp->cv.notify_all();
        }
    }
    if (c && !secure) {
        return new (std::nothrow) MeteredConnection(sock, &c->read_over, c->bad_rq, sizeof c->bad_rq);
    }
    return DcmTransportLayer::createConnection(sock, secure);
}


extern "C" bool dcm_scp_start(DcmError *err, const DcmScpConfig *cfg, DcmScp **out)
{
    *out = nullptr;
    if (!cfg || cfg->port <= 0 || cfg->port > 65535 || !cfg->store || cfg->timeout_s < 0 ||
        cfg->max_associations < 1)
        return dcm_int_fail(err, DCM_ERR_ARG, "bad DICOM listener configuration");
    DcmScp *scp = nullptr;
    try {
        scp = new DcmScp;
        scp->cfg = *cfg;
        scp->aet = cfg->aet ? cfg->aet : "";
        scp->cfg.aet = scp->aet.c_str();
        (void)storage_classes(); /* built before threads */
        dcmDisableGethostbyaddr.set(OFTrue); /* peer host = its IP, no reverse DNS per association */
        if (cfg->tcp_nodelay) {
            setenv("TCP_NODELAY", "1", 1);
            dcm_int_log(DCM_LOG_DEBUG, "dicom: TCP_NODELAY=1 set for DCMTK's sockets");
        }
        if (pipe2(scp->wake, O_CLOEXEC) != 0) {
            delete scp;
            return dcm_int_fail(err, DCM_ERR_INTERNAL, "pipe: %s", strerror(errno));
        }
        scp->handshake_s = cfg->timeout_s > 0 && cfg->timeout_s < 10 ? cfg->timeout_s : 10;
        scp->max_handshakes = cfg->max_handshakes ? cfg->max_handshakes : 32;
        /* The ACSE timeout bounds DCMTK's wait for the first PDU (and its reads during the
         * handshake); the listener also cuts a handshake at handshake_s in total. */
        OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, cfg->port, scp->handshake_s, &scp->net);
        if (c.bad()) {
            close(scp->wake[0]);
            close(scp->wake[1]);
            delete scp;
            return dcm_int_fail(err, DCM_ERR_NETWORK, "cannot listen on DICOM port %d: %s",
                                cfg->port, c.text());
        }
        int lfd = listen_socket(scp->net);
        if (lfd >= 0) {
            fcntl(lfd, F_SETFD, FD_CLOEXEC);
            /* Non-blocking: a connection that vanished between poll and accept must not block
             * the connection thread in accept() (it gets EAGAIN and ends). */
            fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
        }
        c = ASC_setTransportLayer(scp->net, &scp->hook, 0);
        if (c.bad()) {
            ASC_dropNetwork(&scp->net);
            close(scp->wake[0]);
            close(scp->wake[1]);
            delete scp;
            return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot set the DICOM transport layer: %s", c.text());
        }
        if (pthread_create(&scp->listener, nullptr, listener_main, scp) != 0) {
            ASC_dropNetwork(&scp->net);
            close(scp->wake[0]);
            close(scp->wake[1]);
            delete scp;
            return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot start the DICOM listener thread");
        }
        scp->listener_started = true;
        *out = scp;
        return true;
    }
    catch (const std::bad_alloc &) { delete scp; return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); }
    catch (...) { delete scp; return dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error starting the DICOM listener"); }
}

extern "C" void dcm_scp_stop(DcmScp *scp, unsigned grace_ms)
{
    if (!scp) return;
    try {
        scp->stopping.store(true);
        if (scp->listener_started) {
            ssize_t w;
            do w = write(scp->wake[1], "x", 1); while (w < 0 && errno == EINTR);
            pthread_join(scp->listener, nullptr);
        }
        std::unique_lock<std::mutex> lk(scp->mu);
        /* Connections still handshaking have nothing worth waiting for. */
        for (Conn *c : scp->handshaking) cut_handshake(c, "server stopping");
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
        while (scp->active > 0 && scp->cv.wait_until(lk, deadline) != std::cv_status::timeout) {}
        if (scp->active > 0)
            dcm_int_log(DCM_LOG_WARNING, "dicom: aborting %u association(s) still running at shutdown",
                        scp->active);
        /* Until every connection thread has left: cut what remains (a thread that was between
         * its handshake and negotiation when the stop began registers late). */
        while (scp->threads > 0) {
            for (Conn *c : scp->handshaking) cut_handshake(c, "server stopping");
            for (Assoc *as : scp->live)
                if (as->fd >= 0) shutdown(as->fd, SHUT_RDWR);
            scp->cv.wait_for(lk, std::chrono::milliseconds(200));
        }
        lk.unlock();
        dcm_int_log(DCM_LOG_INFO,
                    "dicom: listener stopped: %llu associations, %llu rejected, %llu stored, %llu refused",
                    (unsigned long long)scp->n_assoc.load(), (unsigned long long)scp->n_rejected.load(),
                    (unsigned long long)scp->n_stored.load(), (unsigned long long)scp->n_failed.load());
    } catch (...) {
        dcm_int_log(DCM_LOG_ERROR, "dicom: internal error while stopping the listener");
    }
    ASC_dropNetwork(&scp->net);
    close(scp->wake[0]);
    close(scp->wake[1]);
    delete scp;
}

extern "C" void dcm_scp_stats(const DcmScp *scp, DcmScpStats *out)
{
    memset(out, 0, sizeof *out);
    if (!scp) return;
    out->associations = scp->n_assoc.load();
    out->rejected = scp->n_rejected.load();
    out->stored = scp->n_stored.load();
    out->store_failures = scp->n_failed.load();
    DcmScp *s = const_cast<DcmScp *>(scp);
    std::lock_guard<std::mutex> g(s->mu);
    out->active = s->active;
}

extern "C" const char *dcm_scp_known_syntax(size_t i)
{
    return i < k_nsyntaxes ? k_transfer_syntaxes[i] : nullptr;
}

extern "C" uint64_t dcm_scp_accepted_syntaxes(void) { return g_accepted_syntaxes.load(); }

extern "C" void dcm_scp_set_accepted_syntaxes(uint64_t mask)
{
    g_accepted_syntaxes.store(k_nsyntaxes == 64 ? mask : mask & ((1ull << k_nsyntaxes) - 1));
}

extern "C" bool dcm_scp_unknown_sop_class_accepted(void) { return g_unknown_sop_class_accepted.load(); }

extern "C" void dcm_scp_set_unknown_sop_class_accepted(bool on) { g_unknown_sop_class_accepted.store(on); }

} // namespace mp
