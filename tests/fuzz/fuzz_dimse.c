/* fuzz_dimse.c -- the DICOM upper layer as a peer sees it: the real listener (dcm_scp_start,
 * DCMTK's dcmnet, our negotiation, command dispatch and C-STORE receive with its size limits)
 * on a loopback port, fed over TCP. The first input byte picks how the rest is sent:
 *   0: raw bytes from the first one on (A-ASSOCIATE-RQ parsing, garbage, partial PDUs);
 *   1: a valid A-ASSOCIATE-RQ first (Verification, CT storage), then the rest raw (P-DATA,
 *      A-RELEASE, A-ABORT as the fuzzer writes them);
 *   2: a valid A-ASSOCIATE-RQ, then the rest cut into P-DATA-TF PDUs, each with one PDV whose
 *      context, command/last bits and length come from the input (fragments, commands spread
 *      over PDVs, datasets without a last fragment, wrong contexts).
 * We then half-close our side and read until the listener closes. Every association must end
 * (DCMTK sees our EOF): if one is still counted 5 s later the listener hangs, and we abort.
 * C-STOREd datasets go to a store callback that only checks the Part-10 buffer's framing, so
 * the listener, not the ingest, is under test (fuzz_ingest covers that). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dicom.h"

static DcmScp *scp;
static int port;

static uint16_t on_store(void *ctx, const void *part10, size_t len, const DcmAssocInfo *info,
                         char *comment, size_t comment_size)
{
    (void)ctx; (void)info;
    const unsigned char *p = part10;
    if (len < 132 || memcmp(p + 128, "DICM", 4) != 0) abort(); /* we always write the meta */
    snprintf(comment, comment_size, "fuzz");
    return len & 1 ? 0xC000 : 0x0000;
}

static void stop(void) { dcm_scp_stop(scp, 1000); }

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t n = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &n) != 0) { perror("port"); exit(1); }
    close(s);
    return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    DcmError de = { 0 };
    if (!dcm_global_init(&de)) { fprintf(stderr, "fuzz: %s\n", de.message); exit(1); }
    port = free_port();
    DcmScpConfig cfg = {
        .port = port, .aet = "FUZZ", .timeout_s = 2, .max_associations = 64,
        .tcp_nodelay = true, .max_pdu = 16384, .max_dataset = 1 << 20, .store = on_store,
    };
    if (!dcm_scp_start(&de, &cfg, &scp)) { fprintf(stderr, "fuzz: %s\n", de.message); exit(1); }
    atexit(stop);
    return 0;
}

static size_t put_item(unsigned char *o, unsigned type, const void *data, size_t n)
{
    o[0] = (unsigned char)type;
    o[1] = 0;
    o[2] = (unsigned char)(n >> 8);
    o[3] = (unsigned char)n;
    memcpy(o + 4, data, n);
    return 4 + n;
}

/* A-ASSOCIATE-RQ: Verification (context 1) and CT Image Storage (context 3), implicit and
 * explicit little endian. */
static size_t associate_rq(unsigned char *o)
{
    unsigned char body[1024];
    size_t n = 0;
    body[n++] = 0; body[n++] = 1; body[n++] = 0; body[n++] = 0;
    memcpy(body + n, "FUZZ            ", 16); n += 16;
    memcpy(body + n, "FUZZSCU         ", 16); n += 16;
    memset(body + n, 0, 32); n += 32;
    n += put_item(body + n, 0x10, "1.2.840.10008.3.1.1.1", 21);
    static const char *const as[] = { "1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.2" };
    for (int i = 0; i < 2; i++) {
        unsigned char pc[256];
        size_t m = 0;
        pc[m++] = (unsigned char)(1 + 2 * i); pc[m++] = 0; pc[m++] = 0; pc[m++] = 0;
        m += put_item(pc + m, 0x30, as[i], strlen(as[i]));
        m += put_item(pc + m, 0x40, "1.2.840.10008.1.2", 17);
        m += put_item(pc + m, 0x40, "1.2.840.10008.1.2.1", 19);
        n += put_item(body + n, 0x20, pc, m);
    }
    unsigned char ui[64];
    size_t u = 0;
    unsigned char mp[4] = { 0, 0, 0x40, 0 };
    u += put_item(ui + u, 0x51, mp, 4);
    u += put_item(ui + u, 0x52, "1.2.3.4", 7);
    n += put_item(body + n, 0x50, ui, u);
    o[0] = 1; o[1] = 0;
    o[2] = (unsigned char)(n >> 24); o[3] = (unsigned char)(n >> 16);
    o[4] = (unsigned char)(n >> 8); o[5] = (unsigned char)n;
    memcpy(o + 6, body, n);
    return n + 6;
}

static void send_all(int s, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(s, c, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the listener closed: fine, it may refuse what we send */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads until EOF (or error), at most `ms`. */
static void drain(int s, int ms)
{
    char buf[65536];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) return;
        struct pollfd p = { s, POLLIN, 0 };
        if (poll(&p, 1, (int)left) <= 0) return;
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0) return;
    }
}

/* Reads one PDU header and body (the A-ASSOCIATE-AC/RJ); false if none came. */
static bool read_pdu(int s)
{
    unsigned char h[6];
    size_t got = 0;
    while (got < 6) {
        struct pollfd p = { s, POLLIN, 0 };
        if (poll(&p, 1, 5000) <= 0) return false;
        ssize_t r = recv(s, h + got, 6 - got, 0);
        if (r <= 0) return false;
        got += (size_t)r;
    }
    uint32_t n = (uint32_t)h[2] << 24 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 8 | h[5];
    char buf[4096];
    while (n) {
        struct pollfd p = { s, POLLIN, 0 };
        if (poll(&p, 1, 5000) <= 0) return false;
        ssize_t r = recv(s, buf, n < sizeof buf ? n : sizeof buf, 0);
        if (r <= 0) return false;
        n -= (uint32_t)r;
    }
    return h[0] == 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024) return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) abort();
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); abort(); }
    bool associated = true;
    if (mode == 0) {
        send_all(s, data, size);
    } else {
        unsigned char rq[1024];
        send_all(s, rq, associate_rq(rq));
        associated = read_pdu(s);
        if (associated && mode == 1) {
            send_all(s, data, size);
        } else if (associated) {
            /* [ctx][flags][len hi][len lo] then len bytes, repeated */
            size_t i = 0;
            unsigned char pdu[6 + 6 + 65536];
            while (i + 4 <= size) {
                unsigned ctx = data[i], flags = data[i + 1] & 3;
                size_t len = (size_t)data[i + 2] << 8 | data[i + 3];
                i += 4;
                if (len > size - i) len = size - i;
                size_t pdv = len + 2;
                pdu[0] = 4; pdu[1] = 0;
                uint32_t pl = (uint32_t)(pdv + 4);
                pdu[2] = (unsigned char)(pl >> 24); pdu[3] = (unsigned char)(pl >> 16);
                pdu[4] = (unsigned char)(pl >> 8); pdu[5] = (unsigned char)pl;
                pdu[6] = (unsigned char)(pdv >> 24); pdu[7] = (unsigned char)(pdv >> 16);
                pdu[8] = (unsigned char)(pdv >> 8); pdu[9] = (unsigned char)pdv;
                pdu[10] = (unsigned char)ctx; pdu[11] = (unsigned char)flags;
                memcpy(pdu + 12, data + i, len);
                send_all(s, pdu, 12 + len);
                i += len;
            }
        }
    }
    shutdown(s, SHUT_WR);
    drain(s, 10000);
    close(s);
    /* the association must be over shortly after our EOF */
    for (int i = 0; i < 500; i++) {
        DcmScpStats st;
        dcm_scp_stats(scp, &st);
        if (st.active == 0) return 0;
        usleep(10000);
    }
    fprintf(stderr, "fuzz_dimse: an association is still running 5 s after the peer left\n");
    abort();
}
