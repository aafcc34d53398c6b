/* test_server.c -- unit tests of server/ helpers: SHA-1 resource IDs (standard vectors and
 * Orthanc's ID shape), MD5 (RFC 1321 vectors), stripping, main tag tables, error mapping. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

static void test_server_sha1_vectors(void)
{
    char id[IDX_ID_LEN];
    srv_sha1_id("abc", 3, id);
    CHECK_STR(id, "a9993e36-4706816a-ba3e2571-7850c26c-9cd0d89d");
    srv_sha1_id("", 0, id);
    CHECK_STR(id, "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: two blocks */
    srv_sha1_id(m, strlen(m), id);
    CHECK_STR(id, "84983e44-1c3bd26e-baae4aa1-f95129e5-e54670f1");
    /* a million 'a' (FIPS 180 vector), crosses many blocks */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    srv_sha1_id(a, 1000000, id);
    free(a);
    CHECK_STR(id, "34aa973c-d4c4daa4-f61eeb2b-dbad2731-6534016f");
    CHECK(strlen(id) == IDX_ID_LEN - 1);
}

static void test_server_md5_vectors(void)
{
    char h[33];
    srv_md5_hex("", 0, h);
    CHECK_STR(h, "d41d8cd98f00b204e9800998ecf8427e");
    srv_md5_hex("abc", 3, h);
    CHECK_STR(h, "900150983cd24fb0d6963f7d28e17f72");
    const char *m = "12345678901234567890123456789012345678901234567890123456789012345678901234567890";
    srv_md5_hex(m, strlen(m), h);
    CHECK_STR(h, "57edf4a22be3c955ac49da2e2107b67a");
}

static void test_server_strip(void)
{
    char a[] = "  PAT 1  ";
    CHECK_STR(srv_strip(a), "PAT 1");
    char b[] = "1.2.3\0";
    CHECK_STR(srv_strip(b), "1.2.3");
    char c[] = "   ";
    CHECK_STR(srv_strip(c), "");
}

static void test_server_main_tags(void)
{
    size_t n;
    const SrvMainTag *t = srv_main_tags(IDX_PATIENT, &n);
    CHECK(n == 5 && t[1].tag == 0x00100020);
    CHECK_STR(srv_main_tag_name(0x0020000d), "StudyInstanceUID");
    CHECK_STR(srv_main_tag_name(0x00080018), "SOPInstanceUID");
    CHECK(srv_main_tag_name(0x7fe00010) == NULL);
    for (int l = 0; l < IDX_LEVELS; l++) {
        srv_main_tags(l, &n);
        CHECK(n > 0 && n <= 32);
    }
}

static void test_server_errors(void)
{
    SrvError e = { 0 };
    CHECK(!srv_fail(&e, SRV_UNKNOWN_RESOURCE, "x %d", 1));
    CHECK(srv_error_http_status(&e) == 404);
    CHECK_STR(e.message, "x 1");
    CHECK_STR(srv_error_text(SRV_BAD_FILE_FORMAT), "Bad file format");
    StoError se = { .code = STO_ERR_FULL };
    srv_error_from_sto(&e, &se);
    CHECK(e.code == SRV_FULL_STORAGE && srv_error_http_status(&e) == 507);
    DcmError de = { .code = DCM_ERR_FORMAT };
    srv_error_from_dcm(&e, &de);
    CHECK(e.code == SRV_BAD_FILE_FORMAT && srv_error_http_status(&e) == 400);
    CHECK_STR(srv_level_name(IDX_SERIES), "Series");
    CHECK_STR(srv_level_route(IDX_STUDY), "studies");
}

int main(void)
{
    RUN(test_server_sha1_vectors);
    RUN(test_server_md5_vectors);
    RUN(test_server_strip);
    RUN(test_server_main_tags);
    RUN(test_server_errors);
    return CHECK_DONE();
}
