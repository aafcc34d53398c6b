/* test_multipart.c -- the incremental multipart parser (server/multipart.c): the same body fed
 * whole, byte by byte and in every two-piece split gives the same parts; boundary look-alikes
 * inside data, preamble and epilogue, empty parts, parts without headers, folded headers,
 * transport padding; Content-Type parameters; every refusal (no boundary, bad boundary, body
 * without boundary, unterminated part, malformed boundary line, header limits, part count and
 * size limits, a callback's refusal) and that a failed parser stays failed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../check.h"
#include "server/multipart.h"

typedef struct Got {
    char data[8][256];
    size_t len[8];
    char ctype[8][64];
    char name[8][64];
    size_t nparts, ended;
    size_t refuse_at; /* part_begin refuses this part (0: never) */
} Got;

static bool g_begin(void *cls, SrvError *err, size_t index, const MpartHeader *h, size_t n)
{
    Got *g = cls;
    if (g->refuse_at && index == g->refuse_at) return srv_fail(err, SRV_BAD_REQUEST, "refused part %zu", index);
    if (g->nparts == 8) return srv_fail(err, SRV_BAD_REQUEST, "too many for the test");
    size_t i = g->nparts++;
    g->len[i] = 0;
    g->ctype[i][0] = g->name[i][0] = '\0';
    for (size_t k = 0; k < n; k++) {
        if (!strcasecmp(h[k].name, "Content-Type")) snprintf(g->ctype[i], sizeof g->ctype[i], "%s", h[k].value);
        if (!strcasecmp(h[k].name, "Content-Disposition")) mpart_param(h[k].value, "name", g->name[i], sizeof g->name[i]);
    }
    return true;
}

static bool g_data(void *cls, SrvError *err, const char *d, size_t len)
{
    Got *g = cls;
    size_t i = g->nparts - 1;
    CHECK(len > 0);
    if (g->len[i] + len > sizeof g->data[i]) return srv_fail(err, SRV_BAD_REQUEST, "test buffer");
    memcpy(g->data[i] + g->len[i], d, len);
    g->len[i] += len;
    return true;
}

static bool g_end(void *cls, SrvError *err)
{
    (void)err;
    ((Got *)cls)->ended++;
    return true;
}

static const MpartCallbacks CB = { g_begin, g_data, g_end };
#define CT "multipart/related; type=\"application/dicom\"; boundary=\"b0und\""

/* Parses body in pieces of `step` bytes (0: whole; otherwise split at `split` then whole). */
static bool parse(const char *ct, const char *body, size_t len, size_t step, const MpartLimits *lim,
                  Got *g, SrvError *err)
{
    memset(g->len, 0, sizeof g->len);
    size_t refuse = g->refuse_at;
    memset(g, 0, sizeof *g);
    g->refuse_at = refuse;
    MpartParser *p = mpart_create(err, ct, lim, &CB, g);
    if (!p) return false;
    bool ok = true;
    for (size_t off = 0; ok && off < len;) {
        size_t n = step ? (len - off < step ? len - off : step) : len;
        ok = mpart_feed(err, p, body + off, n);
        off += n;
    }
    if (ok) ok = mpart_finish(err, p);
    mpart_destroy(p);
    return ok;
}

static void test_multipart_params(void)
{
    char v[80];
    CHECK(mpart_media_type(" Multipart/Related ; boundary=x", v, sizeof v));
    CHECK_STR(v, "multipart/related");
    CHECK(mpart_param(CT, "boundary", v, sizeof v));
    CHECK_STR(v, "b0und");
    CHECK(mpart_param(CT, "TYPE", v, sizeof v));
    CHECK_STR(v, "application/dicom");
    CHECK(mpart_param("form-data; name=\"a\\\"b\"; filename=x.dcm", "name", v, sizeof v));
    CHECK_STR(v, "a\"b");
    CHECK(mpart_param("form-data; name=\"a\"; filename=x.dcm", "filename", v, sizeof v));
    CHECK_STR(v, "x.dcm");
    CHECK(!mpart_param("multipart/related; type=x", "boundary", v, sizeof v));
    CHECK(!mpart_param("multipart/related; boundary=\"unterminated", "boundary", v, sizeof v));
    CHECK(!mpart_param("a; boundary=0123456789", "boundary", v, 5)); /* too long for out */
    CHECK(!mpart_media_type("", v, sizeof v));
}

static void test_multipart_splits(void)
{
    /* preamble, a part whose data holds look-alikes of the delimiter, an empty part, a part
     * without headers, folded header, transport padding, epilogue */
    static const char body[] =
        "preamble --b0und not at line start\r\n"
        "--b0und\r\nContent-Type: application/dicom\r\nContent-Disposition: form-data;\r\n name=\"one\"\r\n\r\n"
        "AB\r\n--b0un\r\n--b0undX-no\r\n-b0und\r\nCD\r\n"
        "--b0und  \t\r\nContent-Type: text/plain\r\n\r\n\r\n"
        "--b0und\r\n\r\nlast\r\n"
        "--b0und--\r\nepilogue --b0und\r\n";
    size_t len = sizeof body - 1;
    const char *first = "AB\r\n--b0un\r\n--b0undX-no\r\n-b0und\r\nCD";
    /* --b0undX is a delimiter followed by "X": RFC 2046 says a boundary must not appear in
     * data, so this body is malformed at that point; check that first, then without it. */
    Got g;
    SrvError e = { 0 };
    CHECK(!parse(CT, body, len, 0, NULL, &g, &e));
    CHECK(strstr(e.message, "malformed boundary line") != NULL);

    static const char body2[] =
        "preamble --b0und not at line start\r\n"
        "--b0und\r\nContent-Type: application/dicom\r\nContent-Disposition: form-data;\r\n name=\"one\"\r\n\r\n"
        "AB\r\n--b0un\r\n-b0und\r\n--b0un d\r\nCD\r\n"
        "--b0und  \t\r\nContent-Type: text/plain\r\n\r\n\r\n"
        "--b0und\r\n\r\nlast\r\n"
        "--b0und--\r\nepilogue --b0und\r\n";
    len = sizeof body2 - 1;
    first = "AB\r\n--b0un\r\n-b0und\r\n--b0un d\r\nCD";
    size_t steps[] = { 0, 1, 2, 3, 7, 64 };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        memset(&e, 0, sizeof e);
        bool ok = parse(CT, body2, len, steps[s], NULL, &g, &e);
        CHECK(ok);
        if (!ok) { fprintf(stderr, "  step %zu: %s\n", steps[s], e.message); continue; }
        CHECK(g.nparts == 3 && g.ended == 3);
        CHECK(g.len[0] == strlen(first) && !memcmp(g.data[0], first, g.len[0]));
        CHECK_STR(g.ctype[0], "application/dicom");
        CHECK_STR(g.name[0], "one");
        CHECK(g.len[1] == 0);
        CHECK_STR(g.ctype[1], "text/plain");
        CHECK(g.len[2] == 4 && !memcmp(g.data[2], "last", 4));
        CHECK_STR(g.ctype[2], "");
    }
    /* every two-piece split */
    for (size_t cut = 1; cut < len; cut++) {
        MpartParser *p = mpart_create(&e, CT, NULL, &CB, &g);
        memset(&g, 0, sizeof g);
        bool ok = mpart_feed(&e, p, body2, cut) && mpart_feed(&e, p, body2 + cut, len - cut) && mpart_finish(&e, p);
        mpart_destroy(p);
        CHECK(ok && g.nparts == 3 && g.len[0] == strlen(first) && !memcmp(g.data[0], first, g.len[0]));
    }
    /* the body opens with the boundary (no preamble, no CRLF before it) */
    static const char body3[] = "--b0und\r\n\r\nx\r\n--b0und--";
    CHECK(parse(CT, body3, sizeof body3 - 1, 1, NULL, &g, &e) && g.nparts == 1 && g.len[0] == 1);
    /* a closing delimiter only: no part, well formed */
    CHECK(parse(CT, "--b0und--\r\n", 11, 0, NULL, &g, &e) && g.nparts == 0);
}

static void test_multipart_refusals(void)
{
    Got g;
    SrvError e = { 0 };
    CHECK(!mpart_create(&e, "multipart/related; type=x", NULL, &CB, &g));
    CHECK(e.code == SRV_BAD_REQUEST && strstr(e.message, "boundary"));
    CHECK(!mpart_create(&e, "multipart/related; boundary=\"\"", NULL, &CB, &g));
    CHECK(!mpart_create(&e, "multipart/related; boundary=\"ends with space \"", NULL, &CB, &g));
    char longb[120] = "multipart/related; boundary=";
    memset(longb + strlen(longb), 'a', 71);
    CHECK(!mpart_create(&e, longb, NULL, &CB, &g));

    memset(&e, 0, sizeof e);
    CHECK(!parse(CT, "no boundary here", 16, 0, NULL, &g, &e) && strstr(e.message, "no multipart boundary"));
    CHECK(!parse(CT, "--b0und\r\n\r\nendless data", 24, 3, NULL, &g, &e) && strstr(e.message, "ends inside part 1"));
    CHECK(!parse(CT, "--b0und\r\nContent-Type: x\r\n", 26, 0, NULL, &g, &e) && strstr(e.message, "headers of part 1"));
    CHECK(!parse(CT, "--b0und", 7, 0, NULL, &g, &e) && strstr(e.message, "closing"));
    CHECK(!parse(CT, "--b0undjunk\r\n\r\n", 15, 0, NULL, &g, &e) && strstr(e.message, "malformed boundary line"));
    CHECK(!parse(CT, "--b0und\r\nno colon\r\n\r\nx\r\n--b0und--", 32, 0, NULL, &g, &e) && strstr(e.message, "malformed header"));
    CHECK(!parse(CT, "--b0und\r\n folded first\r\n\r\nx\r\n--b0und--", 37, 0, NULL, &g, &e) && strstr(e.message, "blank"));

    /* limits */
    static const char three[] = "--b0und\r\n\r\n1\r\n--b0und\r\n\r\n22\r\n--b0und\r\n\r\n333\r\n--b0und--";
    MpartLimits lim = { .max_parts = 2 };
    CHECK(!parse(CT, three, sizeof three - 1, 0, &lim, &g, &e) && strstr(e.message, "more than 2 parts"));
    lim = (MpartLimits){ .max_part_bytes = 2 };
    CHECK(!parse(CT, three, sizeof three - 1, 1, &lim, &g, &e) && strstr(e.message, "part 3 is larger than 2 bytes"));
    lim = (MpartLimits){ .max_header_bytes = 32 };
    char big[256];
    int n = snprintf(big, sizeof big, "--b0und\r\nX-Long: %s\r\n\r\nx\r\n--b0und--", "0123456789012345678901234567890123456789");
    CHECK(!parse(CT, big, (size_t)n, 0, &lim, &g, &e) && strstr(e.message, "headers exceed 32 bytes"));
    CHECK(!parse(CT, big, (size_t)n, 1, &lim, &g, &e) && strstr(e.message, "headers exceed 32 bytes"));
    /* 64 header lines are fine, 65 are not */
    char many[4096] = "--b0und\r\n";
    for (int i = 0; i < 65; i++) strcat(many, "A: b\r\n");
    strcat(many, "\r\nx\r\n--b0und--");
    CHECK(!parse(CT, many, strlen(many), 0, NULL, &g, &e) && strstr(e.message, "more than 64 header lines"));

    /* a callback's refusal stops the parser with its message; later calls fail the same way */
    g.refuse_at = 2;
    MpartParser *p = mpart_create(&e, CT, NULL, &CB, &g);
    CHECK(p && !mpart_feed(&e, p, three, sizeof three - 1) && strstr(e.message, "refused part 2"));
    memset(&e, 0, sizeof e);
    CHECK(!mpart_feed(&e, p, "x", 1) && strstr(e.message, "refused part 2"));
    memset(&e, 0, sizeof e);
    CHECK(!mpart_finish(&e, p) && strstr(e.message, "refused part 2"));
    mpart_destroy(p);
    mpart_destroy(NULL);
}

/* Parts larger than the window: data arrives in several part_data calls, nothing is lost. */
typedef struct Big { size_t got, calls; bool good; } Big;
static bool big_data(void *cls, SrvError *err, const char *d, size_t len)
{
    (void)err;
    Big *b = cls;
    for (size_t i = 0; i < len; i++)
        if (d[i] != (char)('a' + (b->got + i) % 26)) b->good = false;
    b->got += len;
    b->calls++;
    return true;
}

/* whole mode: the big part checks itself and zeroes the expected size */
static bool big_part(void *ctx, SrvError *err, size_t index, const char *d, size_t len)
{
    (void)err;
    size_t *want = ctx;
    bool good = index == 1 && len == *want;
    for (size_t i = 0; good && i < len; i++) good = d[i] == (char)('a' + i % 23);
    if (good) *want = 0;
    return good || srv_fail(err, SRV_BAD_REQUEST, "big part differs");
}

static void test_multipart_large(void)
{
    size_t size = 300 * 1000;
    char *body = malloc(size + 100);
    size_t n = (size_t)sprintf(body, "--b0und\r\n\r\n");
    for (size_t i = 0; i < size; i++) body[n + i] = (char)('a' + i % 26);
    n += size;
    n += (size_t)sprintf(body + n, "\r\n--b0und--");
    MpartCallbacks cb = { .part_data = big_data };
    size_t steps[] = { n, 4096, 65536 + 3 };
    for (size_t s = 0; s < 3; s++) {
        Big b = { .good = true };
        SrvError e = { 0 };
        MpartParser *p = mpart_create(&e, CT, NULL, &cb, &b);
        bool ok = p != NULL;
        for (size_t off = 0; ok && off < n; off += steps[s])
            ok = mpart_feed(&e, p, body + off, n - off < steps[s] ? n - off : steps[s]);
        ok = ok && mpart_finish(&e, p) && mpart_count(p) == 1;
        mpart_destroy(p);
        CHECK(ok && b.good && b.got == size && b.calls > 1);
    }
    free(body);
}

/* Whole-part mode (the DICOMweb client's WADO-RS answers): parts handed complete, whatever
 * the chunking; a near-delimiter stays data; the part ceiling; malformed streams refused. */
typedef struct Parts {
    char got[8][64];
    size_t len[8];
    size_t index[8];
    int n;
} Parts;

static bool on_part(void *ctx, SrvError *err, size_t index, const char *d, size_t len)
{
    (void)err;
    Parts *p = ctx;
    if (p->n < 8 && len < 64) {
        memcpy(p->got[p->n], d, len);
        p->len[p->n] = len;
        p->index[p->n] = index;
    }
    p->n++;
    return true;
}

static bool split(const char *ct, const char *s, size_t len, size_t chunk, uint64_t max, Parts *p)
{
    memset(p, 0, sizeof *p);
    SrvError e = { 0 };
    MpartLimits lim = { .max_part_bytes = max };
    MpartParser *sp = mpart_create_whole(&e, ct, &lim, on_part, p);
    if (!sp) return false;
    bool ok = true;
    for (size_t off = 0; ok && off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        ok = mpart_feed(&e, sp, s + off, n);
        off += n;
    }
    ok = ok && mpart_finish(&e, sp);
    CHECK(ok || e.message[0]);
    mpart_destroy(sp);
    return ok;
}

static void test_multipart_whole(void)
{
    const char *ct = "multipart/related; type=\"application/dicom\"; boundary=\"b0undary\"";
    static const char body[] = "preamble\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\n"
                               "first\r\n--b0und\r\n--b0undary  \r\nContent-Type: application/dicom\r\n"
                               "Content-Length: 6\r\n\r\nsecond\r\n--b0undary--\r\nepilogue";
    size_t chunks[] = { 0, 1, 2, 3, 7, 13 };
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        Parts p;
        CHECK(split(ct, body, sizeof body - 1, chunks[c], 1000, &p));
        CHECK(p.n == 2 && p.index[0] == 1 && p.index[1] == 2);
        CHECK(p.len[0] == 14 && !memcmp(p.got[0], "first\r\n--b0und", 14)); /* a near-delimiter stays data */
        CHECK(p.len[1] == 6 && !memcmp(p.got[1], "second", 6));
    }
    /* the first delimiter at the very start, no part headers, unquoted boundary, an empty part */
    static const char b2[] = "--xy\r\n\r\nA\r\n--xy\r\n\r\n\r\n--xy--";
    Parts p;
    CHECK(split("multipart/related; boundary=xy", b2, sizeof b2 - 1, 1, 100, &p));
    CHECK(p.n == 2 && p.len[0] == 1 && p.got[0][0] == 'A' && p.len[1] == 0);
    /* a part larger than a first buffer (64 KB), fed in odd chunks, comes back whole */
    size_t big_n = 200 * 1000;
    char *big = malloc(big_n + 64);
    size_t n = (size_t)sprintf(big, "--xy\r\n\r\n");
    for (size_t i = 0; i < big_n; i++) big[n + i] = (char)('a' + i % 23);
    n += big_n;
    n += (size_t)sprintf(big + n, "\r\n--xy--");
    SrvError e = { 0 };
    MpartLimits lim = { .max_part_bytes = big_n };
    MpartParser *sp = mpart_create_whole(&e, "multipart/related; boundary=xy", &lim, big_part, &big_n);
    bool ok = sp != NULL;
    for (size_t off = 0; ok && off < n; off += 4093) ok = mpart_feed(&e, sp, big + off, n - off < 4093 ? n - off : 4093);
    CHECK(ok && mpart_finish(&e, sp) && big_n == 0);
    mpart_destroy(sp);
    /* one byte over the ceiling */
    big_n = 200 * 1000;
    CHECK(!split("multipart/related; boundary=xy", big, n, 4096, big_n - 1, &p));
    free(big);
    /* refused: no boundary, no ceiling, no closing delimiter, text after a delimiter */
    CHECK(mpart_create_whole(&e, "multipart/related; type=x", &lim, on_part, &p) == NULL);
    MpartLimits none = { 0 };
    CHECK(mpart_create_whole(&e, "multipart/related; boundary=xy", &none, on_part, &p) == NULL);
    static const char open_end[] = "--xy\r\n\r\nA\r\n--xy\r\n\r\nB";
    CHECK(!split("multipart/related; boundary=xy", open_end, sizeof open_end - 1, 0, 100, &p));
    CHECK(p.n == 1); /* the complete first part was handed out */
    static const char junk[] = "--xy junk\r\n\r\nA\r\n--xy--";
    CHECK(!split("multipart/related; boundary=xy", junk, sizeof junk - 1, 0, 100, &p));
}

int main(void)
{
    RUN(test_multipart_params);
    RUN(test_multipart_splits);
    RUN(test_multipart_refusals);
    RUN(test_multipart_large);
    RUN(test_multipart_whole);
    return CHECK_DONE();
}
