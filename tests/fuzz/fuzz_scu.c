/* fuzz_scu.c -- our DICOM client (dicom/dcmtk_scu.cpp: dcm_scu_open, _echo, _find, _move,
 * _store, _close) against a hostile SCP: a fake SCP on a loopback port, run by a helper thread,
 * answers with the fuzzer's bytes while this thread makes the real SCU calls. The reverse of
 * fuzz_dimse (a hostile SCU against our listener).
 *
 * Input: byte 0 picks the operation (bits 0-2), the way the rest is sent (bits 3-4, modulo 3),
 * the query level (bits 5-6) and whether a C-ECHO follows a successful operation (bit 7):
 *   ops: 0 C-ECHO; 1 C-FIND patient root; 2 C-FIND study root; 3 C-MOVE study root;
 *        4 C-MOVE patient root; 5 C-STORE of one file; 6 C-STORE of two files, the second
 *        staged while the first is answered (DcmStoreFile.next); 7 C-ECHO then C-FIND.
 *   modes, after the helper has read the A-ASSOCIATE-RQ:
 *   0: the rest raw (A-ASSOCIATE-AC/RJ parsing, garbage, partial PDUs);
 *   1: a valid A-ASSOCIATE-AC accepting the proposed contexts (byte 1 says how, see
 *      `associate_ac`), then the rest raw (P-DATA, A-RELEASE-RP, A-ABORT as the fuzzer writes);
 *   2: the same AC, then the rest cut into P-DATA-TF PDUs with one PDV each: [context ID]
 *      [flags: bit 0 command, bit 1 last][length, 16 bits big endian][bytes], so that command
 *      sets, responses with datasets and fragments of them reach DCMTK's parser and ours.
 * Every association proposes the same contexts (IDs 1 Verification, 3/5 FIND patient/study
 * root, 7/9 MOVE patient/study root, 11 CT storage, 13/15 secondary capture storage in RLE /
 * uncompressed), so seeds can name them.
 * After its bytes the fake SCP half-closes and reads until the SCU closes the connection (or,
 * for one value of byte 1, stays silent with the connection open: the SCU's timeout must end
 * the call).
 *
 * Invariants (abort() otherwise, so libFuzzer keeps the input):
 * - every SCU call returns within the SCU timeout (1 s) + 5 s (a watchdog thread);
 * - a failed call says why: DcmError code and message set;
 * - a C-FIND answer handed to our callback is a whole dataset: not empty (DCMTK's reader made
 *   an empty one of an answer cut inside its first element), it converts to JSON, and a copy
 *   written as a Part-10 file parses again (no truncated element, item or sequence);
 * - the SCU closes its connection once dcm_scu_close returned (no descriptor left open);
 * - no leak, no UB (ASan+UBSan build, libFuzzer's leak check per input). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dicom/dicom.h"

#define SCU_TIMEOUT_S 1
#define CALL_SLACK_MS 5000 /* on top of the SCU timeout */

/* DCMTK allocates an element's declared length (up to 4 GB) before it finds the PDV too short,
 * in command sets too; it does so with new (std::nothrow) and fails cleanly when that returns
 * NULL. Under ASan a 4 GB block costs ~1 GB of shadow writes (seconds: the watchdog would
 * fire), so here allocations above 256 MB fail, as they may on a host without overcommit:
 * DCMTK's clean failure is what runs. A throwing allocation of our own above it is still
 * reported (ASan's out-of-memory error). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=256:allocator_may_return_null=1";
}

static int listen_fd = -1;
static int listen_port;

/* ---- watchdog ------------------------------------------------------------------------------ */

static pthread_t fuzz_thread;        /* the thread making the SCU calls */
static _Atomic long long wd_deadline; /* monotonic ms; 0: no call running */
static const char *_Atomic wd_what;

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        usleep(100 * 1000);
        long long d = atomic_load(&wd_deadline);
        if (d && now_ms() > d) {
            fprintf(stderr, "fuzz_scu: %s still running %d ms after the SCU timeout\n",
                    atomic_load(&wd_what), CALL_SLACK_MS);
            /* libFuzzer's handler then prints where the fuzz thread hangs */
            pthread_kill(fuzz_thread, SIGABRT);
            sleep(5);
            abort();
        }
    }
    return NULL;
}

static void call_begin(const char *what)
{
    atomic_store(&wd_what, what);
    atomic_store(&wd_deadline, now_ms() + SCU_TIMEOUT_S * 1000 + CALL_SLACK_MS);
}

static bool verbose; /* FUZZ_SCU_VERBOSE=1: each call's result and time on stderr */

static void call_end(void)
{
    long long d = atomic_exchange(&wd_deadline, 0);
    if (verbose)
        fprintf(stderr, "fuzz_scu: %s took %lld ms\n", atomic_load(&wd_what),
                now_ms() - (d - SCU_TIMEOUT_S * 1000 - CALL_SLACK_MS));
}

/* ---- a stored file to send ------------------------------------------------------------------ */

typedef struct Out {
    unsigned char *b;
    size_t n, cap;
} Out;

static void out_put(Out *o, const void *p, size_t n)
{
    if (n == 0) return;
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 256;
        o->b = realloc(o->b, o->cap);
        if (!o->b) abort();
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

/* One explicit VR little endian element; `len` even. */
static void put_elem(Out *o, uint16_t g, uint16_t e, const char *vr, const void *v, uint32_t len)
{
    unsigned char h[12] = { (unsigned char)g, (unsigned char)(g >> 8), (unsigned char)e,
                            (unsigned char)(e >> 8), (unsigned char)vr[0], (unsigned char)vr[1] };
    bool longform = !strcmp(vr, "OB") || !strcmp(vr, "SQ") || !strcmp(vr, "UN");
    if (longform) {
        h[8] = (unsigned char)len; h[9] = (unsigned char)(len >> 8);
        h[10] = (unsigned char)(len >> 16); h[11] = (unsigned char)(len >> 24);
        out_put(o, h, 12);
    } else {
        h[6] = (unsigned char)len; h[7] = (unsigned char)(len >> 8);
        out_put(o, h, 8);
    }
    out_put(o, v, len);
}

static void put_text(Out *o, uint16_t g, uint16_t e, const char *vr, const char *s)
{
    char b[80];
    size_t n = strlen(s);
    memcpy(b, s, n);
    if (n & 1) b[n++] = !strcmp(vr, "UI") ? '\0' : ' ';
    put_elem(o, g, e, vr, b, (uint32_t)n);
}

#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define SC_CLASS "1.2.840.10008.5.1.4.1.1.7"
#define EXPLICIT_LE "1.2.840.10008.1.2.1"
#define RLE_TS "1.2.840.10008.1.2.5"

/* A small Part-10 file (no pixel data) in an unlinked temporary file. */
static DcmStoreFile make_file(const char *cls, const char *inst, const char *ts, size_t blob)
{
    Out o = { 0 }, meta = { 0 };
    static const unsigned char version[2] = { 0, 1 };
    put_elem(&meta, 2, 1, "OB", version, 2);
    put_text(&meta, 2, 2, "UI", cls);
    put_text(&meta, 2, 3, "UI", inst);
    put_text(&meta, 2, 0x10, "UI", ts);
    put_text(&meta, 2, 0x12, "UI", "1.2.3.4");
    unsigned char pre[132] = { 0 };
    memcpy(pre + 128, "DICM", 4);
    out_put(&o, pre, 132);
    uint32_t ml = (uint32_t)meta.n;
    put_elem(&o, 2, 0, "UL", &ml, 4);
    out_put(&o, meta.b, meta.n);
    put_text(&o, 8, 0x16, "UI", cls);
    put_text(&o, 8, 0x18, "UI", inst);
    put_text(&o, 8, 0x60, "CS", "OT");
    put_text(&o, 0x10, 0x10, "PN", "Fuzz^Scu");
    put_text(&o, 0x10, 0x20, "LO", "FUZZSCU");
    put_text(&o, 0x20, 0x0d, "UI", "1.2.826.0.1.3680043.2.1125.1");
    put_text(&o, 0x20, 0x0e, "UI", "1.2.826.0.1.3680043.2.1125.2");
    unsigned char *b = calloc(1, blob);
    if (!b) abort();
    for (size_t i = 0; i < blob; i++) b[i] = (unsigned char)i;
    put_elem(&o, 0x0009, 0x0010, "LO", "FUZZ", 4);
    put_elem(&o, 0x0009, 0x1001, "OB", b, (uint32_t)blob);
    free(b);
    free(meta.b);
    char path[] = "/tmp/fuzz_scu.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); exit(1); }
    unlink(path);
    if (write(fd, o.b, o.n) != (ssize_t)o.n) { perror("write"); exit(1); }
    DcmStoreFile f = { .fd = fd, .size = o.n, .sop_class_uid = cls, .sop_instance_uid = inst,
                       .transfer_syntax = ts, .next = NULL };
    free(o.b);
    return f;
}

static DcmStoreFile file_ct, file_sc;

/* ---- the fake SCP ---------------------------------------------------------------------------- */

typedef struct Peer {
    const uint8_t *data; /* the fuzzer's bytes after byte 0 */
    size_t size;
    int mode;
    _Atomic bool scu_over; /* set by the fuzz thread once its SCU calls returned */
    _Atomic bool done;     /* the SCU closed the connection (or none came) */
} Peer;

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static void put_item(Out *o, unsigned type, const void *v, size_t n)
{
    unsigned char h[4] = { (unsigned char)type, 0 };
    put_be16(h + 2, (unsigned)n);
    out_put(o, h, 4);
    out_put(o, v, n);
}

/* Reads exactly n bytes within ms; false on EOF, error or time out. */
static bool read_full(int s, unsigned char *b, size_t n, int ms)
{
    long long end = now_ms() + ms;
    size_t got = 0;
    while (got < n) {
        long long left = end - now_ms();
        struct pollfd p = { s, POLLIN, 0 };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) return false;
        ssize_t r = recv(s, b + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

/* The A-ASSOCIATE-AC for the request rq (body of n bytes), accepting every proposed context
 * with one of its transfer syntaxes. flags (byte 1 of the modes that send one):
 *   bit 0: accept the last proposed transfer syntax instead of the first;
 *   bit 1: refuse every second context (result 3, abstract syntax not supported);
 *   bits 2-3: the maximum length we announce: 16384, 0 (unlimited), flags >> 4 (tiny), 2^32-1;
 *   exactly 0xF0: the fake SCP then stays silent after its bytes, without closing (rare: each
 *   such input costs the SCU timeout, 1 s).
 * false if the request cannot be read (then only raw bytes are sent). */
static bool associate_ac(const unsigned char *rq, size_t n, unsigned flags, Out *ac)
{
    if (n < 68) return false;
    Out body = { 0 };
    unsigned char fixed[68] = { 0, 1 };
    memcpy(fixed + 4, rq + 4, 32); /* called and calling AE titles, as the request has them */
    out_put(&body, fixed, 68);
    put_item(&body, 0x10, "1.2.840.10008.3.1.1.1", 21);
    size_t at = 68, k = 0;
    while (at + 4 <= n) {
        unsigned type = rq[at], len = be16(rq + at + 2);
        if (at + 4 + len > n) break;
        const unsigned char *v = rq + at + 4;
        if (type == 0x20 && len >= 4) {
            const unsigned char *ts = NULL;
            unsigned tslen = 0;
            for (size_t s = 4; s + 4 <= len;) {
                unsigned st = v[s], sl = be16(v + s + 2);
                if (s + 4 + sl > len) break;
                if (st == 0x40 && (!ts || (flags & 1))) { ts = v + s + 4; tslen = sl; }
                s += 4 + sl;
            }
            bool refuse = (flags & 2) && (k & 1);
            Out pc = { 0 };
            unsigned char head[4] = { v[0], 0, (unsigned char)(refuse ? 3 : 0), 0 };
            out_put(&pc, head, 4);
            if (ts) put_item(&pc, 0x40, ts, tslen);
            else put_item(&pc, 0x40, "1.2.840.10008.1.2", 17);
            put_item(&body, 0x21, pc.b, pc.n);
            free(pc.b);
            k++;
        }
        at += 4 + len;
    }
    Out ui = { 0 };
    unsigned char ml[4];
    static const uint32_t lengths[4] = { 16384, 0, 0, 0xFFFFFFFFu };
    put_be32(ml, ((flags >> 2) & 3) == 2 ? flags >> 4 : lengths[(flags >> 2) & 3]);
    put_item(&ui, 0x51, ml, 4);
    put_item(&ui, 0x52, "1.2.826.0.1.3680043.2.1125.9", 28);
    put_item(&ui, 0x55, "FUZZSCP", 7);
    put_item(&body, 0x50, ui.b, ui.n);
    free(ui.b);
    unsigned char h[6] = { 2, 0 };
    put_be32(h + 2, (uint32_t)body.n);
    out_put(ac, h, 6);
    out_put(ac, body.b, body.n);
    free(body.b);
    return true;
}

/* Mode 2: the input cut into P-DATA-TF PDUs of one PDV each. */
static void pdata_pdus(const uint8_t *d, size_t n, Out *o)
{
    size_t i = 0;
    while (i + 4 <= n) {
        unsigned ctx = d[i], fl = d[i + 1] & 3;
        size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
        i += 4;
        if (len > n - i) len = n - i;
        unsigned char h[12] = { 4, 0 };
        put_be32(h + 2, (uint32_t)(len + 6));
        put_be32(h + 6, (uint32_t)(len + 2));
        h[10] = (unsigned char)ctx;
        h[11] = (unsigned char)fl;
        out_put(o, h, 12);
        out_put(o, d + i, len);
        i += len;
    }
}

/* Sends o while reading (and dropping) what the SCU sends, so neither side can block the other
 * on a full socket; then half-closes (unless hold: then it says nothing more, a silent peer the
 * SCU's timeout must end) and reads until the SCU closes. */
static void exchange(int s, const Out *o, bool hold, long long end)
{
    size_t sent = 0;
    bool wr_open = true;
    char buf[65536];
    for (;;) {
        if (wr_open && sent == o->n && !hold) {
            shutdown(s, SHUT_WR);
            wr_open = false;
        }
        long long left = end - now_ms();
        if (left <= 0) return;
        struct pollfd p = { s, (short)(POLLIN | (wr_open && sent < o->n ? POLLOUT : 0)), 0 };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t g = recv(s, buf, sizeof buf, MSG_DONTWAIT);
            if (g == 0) return; /* the SCU closed: done */
            if (g < 0 && errno != EAGAIN && errno != EINTR) return;
        }
        if (wr_open && (p.revents & POLLOUT)) {
            ssize_t w = send(s, o->b + sent, o->n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) wr_open = false; /* peer gone */
        }
    }
}

/* The connection of the SCU, or -1 once the SCU calls are over without one (its connect
 * completes before dcm_scu_open returns, so it is in the backlog by then). */
static int accept_scu(Peer *pe)
{
    for (;;) {
        bool last = atomic_load(&pe->scu_over);
        struct pollfd lp = { listen_fd, POLLIN, 0 };
        if (poll(&lp, 1, last ? 0 : 10) > 0) return accept(listen_fd, NULL, NULL);
        if (last) return -1;
    }
}

static void *fake_scp(void *arg)
{
    Peer *pe = arg;
    int s = accept_scu(pe);
    if (s >= 0) {
        long long end = now_ms() + 60 * 1000; /* the watchdog fires long before */
        Out o = { 0 };
        unsigned char h[6];
        static unsigned char rq[65536];
        size_t rqn = 0;
        if (read_full(s, h, 6, 5000) && h[0] == 1 && be32(h + 2) <= sizeof rq &&
            read_full(s, rq, be32(h + 2), 5000))
            rqn = be32(h + 2);
        const uint8_t *d = pe->data;
        size_t n = pe->size;
        bool hold = false;
        if (pe->mode > 0 && n > 0 && rqn && associate_ac(rq, rqn, d[0], &o)) {
            hold = d[0] == 0xF0;
            d++;
            n--;
            if (pe->mode == 1) out_put(&o, d, n);
            else pdata_pdus(d, n, &o);
        } else {
            out_put(&o, d, n);
        }
        exchange(s, &o, hold, end);
        free(o.b);
        close(s);
    }
    atomic_store(&pe->done, true);
    return NULL;
}

/* ---- the SCU side ------------------------------------------------------------------------------ */

static void check_failure(const char *what, const DcmError *e)
{
    if (verbose) fprintf(stderr, "fuzz_scu: %s: %s\n", what, e->message);
    if (e->code == 0 || e->message[0] == '\0') {
        fprintf(stderr, "fuzz_scu: %s failed without an error (code %d, \"%s\")\n", what, e->code,
                e->message);
        abort();
    }
}

/* A C-FIND answer must be a whole dataset. */
static void on_answer(void *ctx, const DcmObject *obj)
{
    int *answers = ctx;
    (*answers)++;
    if (verbose) fprintf(stderr, "fuzz_scu: C-FIND answer %d\n", *answers);
    if (!obj) { fprintf(stderr, "fuzz_scu: NULL C-FIND answer\n"); abort(); }
    DcmError e = { 0 };
    cJSON *j = dcm_to_json(&e, obj, DCM_JSON_FULL, 0);
    if (!j) {
        fprintf(stderr, "fuzz_scu: a C-FIND answer does not convert to JSON: %s\n", e.message);
        abort();
    }
    bool empty = cJSON_GetArraySize(j) == 0;
    cJSON_Delete(j);
    if (empty) { fprintf(stderr, "fuzz_scu: an empty C-FIND answer\n"); abort(); }
    DcmObject *copy = NULL, *again = NULL;
    void *buf = NULL;
    size_t len = 0;
    if (!dcm_object_clone(&e, obj, &copy)) {
        fprintf(stderr, "fuzz_scu: cannot copy a C-FIND answer: %s\n", e.message);
        abort();
    }
    if (!dcm_write(&e, copy, EXPLICIT_LE, &buf, &len)) {
        fprintf(stderr, "fuzz_scu: cannot write a C-FIND answer: %s\n", e.message);
        abort();
    }
    if (!dcm_parse(&e, buf, len, 0, &again)) {
        fprintf(stderr, "fuzz_scu: a C-FIND answer, written, does not parse: %s\n", e.message);
        abort();
    }
    dcm_object_destroy(again);
    dcm_object_destroy(copy);
    free(buf);
}

static const char *const store_classes[] = { CT_CLASS, SC_CLASS };
static const char *const store_syntaxes[] = { EXPLICIT_LE, RLE_TS };

static bool do_find(DcmScu *scu, int model, int level)
{
    static const DcmQrKey keys[] = { { 0x00100010, "*" }, { 0x00100020, "" }, { 0x0020000d, "" },
                                     { 0x00080060, NULL } };
    DcmError e = { 0 };
    uint16_t st = 0;
    int answers = 0;
    call_begin("dcm_scu_find");
    bool ok = dcm_scu_find(&e, scu, model, level, keys, 4, on_answer, &answers, &st);
    call_end();
    if (!ok) check_failure("dcm_scu_find", &e);
    else if (verbose) fprintf(stderr, "fuzz_scu: dcm_scu_find: ok\n");
    return ok;
}

static bool do_echo(DcmScu *scu)
{
    DcmError e = { 0 };
    call_begin("dcm_scu_echo");
    bool ok = dcm_scu_echo(&e, scu);
    call_end();
    if (!ok) check_failure("dcm_scu_echo", &e);
    else if (verbose) fprintf(stderr, "fuzz_scu: dcm_scu_echo: ok\n");
    return ok;
}

static bool do_move(DcmScu *scu, int model, int level)
{
    static const DcmQrKey keys[] = { { 0x0020000d, "1.2.3" }, { 0x0020000e, "1.2.3.4" } };
    DcmError e = { 0 };
    uint16_t st = 0;
    DcmQrCounts c = { 0 };
    call_begin("dcm_scu_move");
    bool ok = dcm_scu_move(&e, scu, model, level, keys, 2, "DEST", &st, &c);
    call_end();
    if (!ok) check_failure("dcm_scu_move", &e);
    else if (verbose) fprintf(stderr, "fuzz_scu: dcm_scu_move: ok\n");
    return ok;
}

static bool do_store(DcmScu *scu, const DcmStoreFile *f)
{
    DcmError e = { 0 };
    uint16_t st = 0;
    call_begin("dcm_scu_store");
    bool ok = dcm_scu_store(&e, scu, f, "MOVER", 7, &st);
    call_end();
    if (!ok) check_failure("dcm_scu_store", &e);
    else if (verbose) fprintf(stderr, "fuzz_scu: dcm_scu_store: ok\n");
    return ok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    signal(SIGPIPE, SIG_IGN);
    verbose = getenv("FUZZ_SCU_VERBOSE") != NULL;
    DcmError de = { 0 };
    if (!dcm_global_init(&de)) { fprintf(stderr, "fuzz: %s\n", de.message); exit(1); }
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t n = sizeof a;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &n) != 0 || listen(listen_fd, 4) != 0) {
        perror("fuzz_scu: listen");
        exit(1);
    }
    listen_port = ntohs(a.sin_port);
    file_ct = make_file(CT_CLASS, "1.2.826.0.1.3680043.2.1125.3", EXPLICIT_LE, 3000);
    file_sc = make_file(SC_CLASS, "1.2.826.0.1.3680043.2.1125.4", RLE_TS, 100);
    fuzz_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) != 0) abort();
    pthread_detach(t);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024) return 0;
    unsigned b0 = data[0];
    int op = b0 & 7, mode = (int)((b0 >> 3) & 3) % 3, level = (b0 >> 5) & 3;
    bool then_echo = b0 & 0x80;
    Peer pe = { .data = data + 1, .size = size - 1, .mode = mode };
    pthread_t t;
    if (pthread_create(&t, NULL, fake_scp, &pe) != 0) abort();

    DcmScuParams p = { .local_aet = "FUZZSCU", .remote_aet = "FUZZSCP", .host = "127.0.0.1",
                       .port = listen_port, .timeout_s = SCU_TIMEOUT_S,
                       .services = DCM_SCU_ECHO | DCM_SCU_FIND | DCM_SCU_MOVE | DCM_SCU_STORE,
                       .store_classes = store_classes, .store_syntaxes = store_syntaxes,
                       .nstore = 2 };
    DcmError e = { 0 };
    call_begin("dcm_scu_open");
    DcmScu *scu = dcm_scu_open(&e, &p);
    call_end();
    if (!scu) {
        check_failure("dcm_scu_open", &e);
    } else {
        bool ok = false;
        switch (op) {
        case 0: ok = do_echo(scu); break;
        case 1: ok = do_find(scu, DCM_QR_PATIENT_ROOT, level); break;
        case 2: ok = do_find(scu, DCM_QR_STUDY_ROOT, level); break;
        case 3: ok = do_move(scu, DCM_QR_STUDY_ROOT, level); break;
        case 4: ok = do_move(scu, DCM_QR_PATIENT_ROOT, level); break;
        case 5: ok = do_store(scu, &file_ct); break;
        case 6: {
            DcmStoreFile first = file_ct;
            first.next = &file_sc;
            ok = do_store(scu, &first) && do_store(scu, &file_sc);
            break;
        }
        default: ok = do_echo(scu) && do_find(scu, DCM_QR_STUDY_ROOT, level); break;
        }
        if (ok && then_echo) do_echo(scu);
        call_begin("dcm_scu_close");
        dcm_scu_close(scu);
        call_end();
    }
    /* Our side has closed: the fake SCP must see it soon. */
    atomic_store(&pe.scu_over, true);
    long long end = now_ms() + CALL_SLACK_MS;
    while (!atomic_load(&pe.done)) {
        if (now_ms() > end) {
            fprintf(stderr, "fuzz_scu: the SCU's connection is still open %d ms after "
                            "dcm_scu_close\n", CALL_SLACK_MS);
            abort();
        }
        usleep(1000);
    }
    pthread_join(t, NULL);
    return 0;
}
