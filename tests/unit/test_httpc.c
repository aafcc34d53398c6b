/* test_httpc.c -- the HTTP client's remote descriptions (Orthanc's peer forms) and the
 * streaming multipart/related splitter of the DICOMweb client (fed whole, byte by byte and in
 * odd chunks; malformed streams and oversized parts refused). Network behaviour is tested
 * end to end by tests/integration/93_peers.sh and 93_dicomweb_client.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "server/dwclient.h"
#include "server/httpc.h"

static void test_httpc_remote_forms(void)
{
    SrvError e = { 0 };
    HttpcRemote r;
    cJSON *j = cJSON_Parse("[\"http://h:1\", \"u\", \"p\"]");
    CHECK(httpc_remote_parse(&e, j, &r));
    CHECK_STR(r.url, "http://h:1/");
    CHECK_STR(r.username, "u");
    cJSON *pub = httpc_remote_public_json(&r);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(pub, "Password")));
    cJSON_Delete(pub);
    HttpcRemote c;
    CHECK(httpc_remote_copy(&e, &r, &c));
    CHECK_STR(c.password, "p");
    httpc_remote_cleanup(&c);
    httpc_remote_cleanup(&r);
    cJSON_Delete(j);

    j = cJSON_Parse("{\"Url\": \"https://h/dw\", \"HttpHeaders\": {\"A\": \"1\"}, \"HasDelete\": true, \"Timeout\": 3}");
    CHECK(httpc_remote_parse(&e, j, &r));
    CHECK_STR(r.url, "https://h/dw/");
    CHECK(r.timeout == 3 && r.username == NULL);
    pub = httpc_remote_public_json(&r);
    CHECK_STR(cJSON_GetObjectItem(pub, "HasDelete")->valuestring, "1"); /* as Orthanc shows it */
    CHECK_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(pub, "HttpHeaders"), 0)->valuestring, "A");
    CHECK(cJSON_GetObjectItem(pub, "Password") == NULL);
    cJSON_Delete(pub);
    httpc_remote_cleanup(&r);
    cJSON_Delete(j);

    const char *bad[] = { "{\"Username\": \"x\"}", "[\"ftp://h/\"]", "[\"http://h/\", \"u\"]", "42",
                          "{\"Url\": \"http://h/\", \"HttpHeaders\": {\"A\\r\\nB\": \"x\"}}",
                          "{\"Url\": \"http://h/\", \"CertificateFile\": \"/nonexistent/c.pem\"}",
                          "{\"Url\": \"http://h/\", \"Timeout\": -1}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = cJSON_Parse(bad[i]);
        memset(&e, 0, sizeof e);
        CHECK(!httpc_remote_parse(&e, j, &r));
        CHECK(e.code == SRV_BAD_FILE_FORMAT || e.code == SRV_INEXISTENT_FILE);
        httpc_remote_cleanup(&r);
        cJSON_Delete(j);
    }
}

typedef struct Parts {
    char got[8][64];
    size_t len[8];
    int n;
} Parts;

static bool on_part(void *ctx, SrvError *err, const char *d, size_t len)
{
    (void)err;
    Parts *p = ctx;
    if (p->n < 8 && len < 64) {
        memcpy(p->got[p->n], d, len);
        p->len[p->n] = len;
    }
    p->n++;
    return true;
}

/* Feeds s in chunks of `chunk` bytes (0: whole); returns parts and whether it ended right. */
static bool split(const char *ct, const char *s, size_t len, size_t chunk, size_t max, Parts *p)
{
    memset(p, 0, sizeof *p);
    DwcSplitter *sp = dwc_splitter_new(ct, max, on_part, p);
    if (!sp) return false;
    SrvError e = { 0 };
    bool ok = true;
    for (size_t off = 0; ok && off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        ok = dwc_splitter_feed(&e, sp, s + off, n);
        off += n;
    }
    ok = ok && dwc_splitter_finish(&e, sp);
    dwc_splitter_free(sp);
    return ok;
}

static void test_dwc_splitter(void)
{
    const char *ct = "multipart/related; type=\"application/dicom\"; boundary=\"b0undary\"";
    static const char body[] = "preamble\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\n"
                               "first\r\n--b0und\r\n--b0undary  \r\nContent-Type: application/dicom\r\n"
                               "Content-Length: 6\r\n\r\nsecond\r\n--b0undary--\r\nepilogue";
    size_t chunks[] = { 0, 1, 2, 3, 7, 13 };
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        Parts p;
        CHECK(split(ct, body, sizeof body - 1, chunks[c], 1000, &p));
        CHECK(p.n == 2);
        CHECK(p.len[0] == 14 && !memcmp(p.got[0], "first\r\n--b0und", 14)); /* a near-delimiter stays data */
        CHECK(p.len[1] == 6 && !memcmp(p.got[1], "second", 6));
    }
    /* the first delimiter at the very start, no part headers, unquoted boundary */
    static const char b2[] = "--xy\r\n\r\nA\r\n--xy--";
    Parts p;
    CHECK(split("multipart/related; boundary=xy", b2, sizeof b2 - 1, 1, 100, &p));
    CHECK(p.n == 1 && p.len[0] == 1 && p.got[0][0] == 'A');
    /* refused: not multipart, no boundary, no closing delimiter, text after a delimiter, too large */
    CHECK(dwc_splitter_new("application/dicom", 100, on_part, &p) == NULL);
    CHECK(dwc_splitter_new("multipart/related; type=x", 100, on_part, &p) == NULL);
    static const char open_end[] = "--xy\r\n\r\nA\r\n--xy\r\n\r\nB";
    CHECK(!split("multipart/related; boundary=xy", open_end, sizeof open_end - 1, 0, 100, &p));
    static const char junk[] = "--xy junk\r\n\r\nA\r\n--xy--";
    CHECK(!split("multipart/related; boundary=xy", junk, sizeof junk - 1, 0, 100, &p));
    char big[600];
    memcpy(big, "--xy\r\n\r\n", 8);
    memset(big + 8, 'z', sizeof big - 8);
    CHECK(!split("multipart/related; boundary=xy", big, sizeof big, 50, 10, &p)); /* part cap 10 (+ slack) */
}

int main(void)
{
    RUN(test_httpc_remote_forms);
    RUN(test_dwc_splitter);
    return CHECK_DONE();
}
