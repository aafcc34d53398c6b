/* test_server.c -- unit tests of server/ helpers: SHA-1 resource IDs (standard vectors and
 * Orthanc's ID shape), MD5 (RFC 1321 vectors), stripping, main tag tables, error mapping; and
 * the store's services for the edges (server/store.h) on a real store in a temp folder: the
 * resource JSON, walks, files, and the rules a change carries (a metadata write logs
 * UpdatedMetadata whoever calls it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_server_base64(void)
{
    size_t n = 99;
    char *d = srv_base64_decode("YWxpY2U6czNjcmV0", 16, &n);
    CHECK(d && n == 12);
    CHECK_STR(d, "alice:s3cret");
    free(d);
    d = srv_base64_decode("YQ==", 4, &n); /* padded */
    CHECK(d && n == 1 && d[0] == 'a');
    free(d);
    d = srv_base64_decode("YWI", 3, &n); /* padding left out */
    CHECK(d && n == 2 && !memcmp(d, "ab", 2));
    free(d);
    d = srv_base64_decode("YW\nJj ZA", 8, &n); /* white space skipped: "abcd" */
    CHECK(d && n == 4 && !memcmp(d, "abcd", 4));
    free(d);
    d = srv_base64_decode("-_8=", 4, &n); /* base64url: fb ff */
    CHECK(d && n == 2 && (unsigned char)d[0] == 0xfb && (unsigned char)d[1] == 0xff);
    free(d);
    d = srv_base64_decode("", 0, &n);
    CHECK(d && n == 0);
    free(d);
    CHECK(srv_base64_decode("Y!==", 4, &n) == NULL);  /* bad character */
    CHECK(srv_base64_decode("YQ=a", 4, &n) == NULL);  /* data after padding */
    CHECK(srv_base64_decode("Y", 1, &n) == NULL);     /* 6 bits: no byte */
}

static void test_server_uid_2_25(void)
{
    char uid[SRV_UID_2_25_LEN];
    uint8_t b[16];
    memset(b, 0xff, sizeof b);
    srv_uid_2_25(b, uid);
    CHECK_STR(uid, "2.25.340282366920938463463374607431768211455"); /* 2^128 - 1 */
    CHECK(strlen(uid) == SRV_UID_2_25_LEN - 1);
    memset(b, 0, sizeof b);
    srv_uid_2_25(b, uid);
    CHECK_STR(uid, "2.25.0");
    b[15] = 10;
    srv_uid_2_25(b, uid);
    CHECK_STR(uid, "2.25.10");
    /* 0x0123456789abcdef0123456789abcdef, by Python: int("0123456789abcdef" * 2, 16) */
    const uint8_t x[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
    srv_uid_2_25(x, uid);
    CHECK_STR(uid, "2.25.1512366075204170929049582354406559215");
    char r1[SRV_UID_2_25_LEN], r2[SRV_UID_2_25_LEN];
    srv_uid_2_25_random(r1);
    srv_uid_2_25_random(r2);
    CHECK(!strncmp(r1, "2.25.", 5) && strcmp(r1, r2) != 0 && strlen(r1) <= 44);
    CHECK(r1[5] != '0');
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

static bool slurp(const char *path, void **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len);
    bool ok = *buf && fread(*buf, 1, *len, f) == *len;
    fclose(f);
    return ok;
}

/* Number of changes of a type in srv_changes_json's answer. */
static int count_changes(Srv *srv, const char *type)
{
    SrvError e = { 0 };
    cJSON *o = srv_changes_json(&e, srv, 0, 1000, false);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(o, "Changes"))
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "ChangeType")), type)) n++;
    cJSON_Delete(o);
    return n;
}

static void test_server_store_services(void)
{
    char dir[] = "/tmp/mp-test-store.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    Srv srv = { 0 };
    CfgError ce = { 0 };
    CHECK(cfg_load(&ce, NULL, &srv.cfg));
    free(srv.cfg.storage_dir);
    free(srv.cfg.index_dir);
    srv.cfg.storage_dir = strdup(dir);
    srv.cfg.index_dir = strdup(dir);
    srv.cfg.sync_storage = false;
    SrvError e = { 0 };
    CHECK(srv_open(&e, &srv));
    void *buf = NULL;
    size_t len = 0;
    CHECK(slurp(SRCDIR "/tests/data/dicom_fixture.dcm", &buf, &len));
    IngestResult res;
    CHECK(ingest_buffer(&e, &srv, buf, len, NULL, &res) && !res.already_stored);

    /* reads: JSON, lists, walks, counts, the file */
    cJSON *j = srv_resource_json(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY]);
    CHECK(j && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Type")), "Study"));
    CHECK(j && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ParentPatient")), res.ids[SRV_PATIENT]));
    cJSON_Delete(j);
    e = (SrvError){ 0 };
    CHECK(!srv_resource_json(&e, &srv, SRV_SERIES, res.ids[SRV_STUDY]) && srv_error_http_status(&e) == 404);
    CHECK(srv_resource_level(&e, &srv, res.ids[SRV_SERIES]) == SRV_SERIES);
    char **ids = NULL;
    size_t n = 0;
    CHECK(srv_resource_list(&e, &srv, SRV_INSTANCE, 0, 0, &ids, &n) && n == 1 &&
          !strcmp(ids[0], res.ids[SRV_INSTANCE]));
    srv_strings_free(ids, n);
    CHECK(srv_resource_descendants(&e, &srv, SRV_PATIENT, res.ids[SRV_PATIENT], SRV_INSTANCE, &ids, &n) &&
          n == 1 && !strcmp(ids[0], res.ids[SRV_INSTANCE]));
    srv_strings_free(ids, n);
    char up[SRV_ID_LEN];
    CHECK(srv_resource_ancestor(&e, &srv, SRV_INSTANCE, res.ids[SRV_INSTANCE], SRV_PATIENT, up) &&
          !strcmp(up, res.ids[SRV_PATIENT]));
    SrvCounts c;
    CHECK(srv_resource_counts(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY], &c) && c.instances == 1 &&
          c.disk_size == len);
    SrvTotals t;
    CHECK(srv_totals(&e, &srv, &t) && t.count[SRV_PATIENT] == 1 && t.disk_size == len);
    uint64_t size = 0;
    int fd = srv_instance_open(&e, &srv, res.ids[SRV_INSTANCE], &size);
    CHECK(fd >= 0 && size == len);
    if (fd >= 0) close(fd);
    void *back = NULL;
    size_t blen = 0;
    CHECK(srv_instance_read(&e, &srv, res.ids[SRV_INSTANCE], &back, &blen) && blen == len &&
          !memcmp(back, buf, len));
    free(back);

    /* the rule lives in the service: a metadata write logs UpdatedMetadata */
    int before = count_changes(&srv, "UpdatedMetadata");
    int64_t rev = -1;
    CHECK(srv_metadata_put(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY], "Note", "x", -1, NULL, &rev) && rev == 0);
    CHECK(count_changes(&srv, "UpdatedMetadata") == before + 1);
    char *v = NULL;
    CHECK(srv_metadata_get(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY], "Note", &v, &rev) && v && !strcmp(v, "x"));
    free(v);
    e = (SrvError){ 0 };
    CHECK(!srv_metadata_put(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY], "Note", "y", 5, NULL, &rev) &&
          srv_error_http_status(&e) == 409);
    CHECK(count_changes(&srv, "UpdatedMetadata") == before + 1); /* refused: nothing logged */
    CHECK(srv_metadata_delete(&e, &srv, SRV_STUDY, res.ids[SRV_STUDY], "Note", -1, NULL));
    CHECK(count_changes(&srv, "UpdatedMetadata") == before + 2);

    /* attachments, protection */
    SrvAttachment a;
    CHECK(srv_attachment_get(&e, &srv, SRV_INSTANCE, res.ids[SRV_INSTANCE], "dicom", true, &a) &&
          a.size == len && strlen(a.md5) == 32);
    CHECK(srv_attachment_verify(&e, &srv, SRV_INSTANCE, res.ids[SRV_INSTANCE], "1"));
    bool on = true;
    CHECK(srv_patient_is_protected(&e, &srv, res.ids[SRV_PATIENT], &on) && !on);
    CHECK(srv_patient_set_protected(&e, &srv, res.ids[SRV_PATIENT], true));
    CHECK(srv_patient_is_protected(&e, &srv, res.ids[SRV_PATIENT], &on) && on);

    /* tags through the cache, and a bad tag name */
    SrvTagsOptions opt = { .format = SRV_TAGS_SHORT, .max_length = SRV_TAGS_TOO_LONG };
    j = srv_instance_tags(&e, &srv, res.ids[SRV_INSTANCE], &opt);
    CHECK(j && cJSON_GetObjectItem(j, "0008,0018"));
    cJSON_Delete(j);
    uint32_t tag;
    CHECK(srv_tag_parse("PatientName", &tag) && tag == 0x00100010u && !srv_tag_parse("NoSuchTag", &tag));

    /* clearing the log keeps Last */
    CHECK(srv_changes_clear(&e, &srv));
    j = srv_changes_json(&e, &srv, 0, 0, true);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "Changes")) == 0 &&
          cJSON_GetObjectItem(j, "Last")->valuedouble > 0);
    cJSON_Delete(j);

    int rl;
    char rid[SRV_ID_LEN];
    CHECK(srv_delete(&e, &srv, SRV_PATIENT, res.ids[SRV_PATIENT], &rl, rid) && rl == -1);
    CHECK(srv_totals(&e, &srv, &t) && t.count[SRV_INSTANCE] == 0);
    free(buf);
    srv_close(&srv);
    cfg_cleanup(&srv.cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(test_server_sha1_vectors);
    RUN(test_server_md5_vectors);
    RUN(test_server_base64);
    RUN(test_server_uid_2_25);
    RUN(test_server_strip);
    RUN(test_server_main_tags);
    RUN(test_server_errors);
    RUN(test_server_store_services);
    return CHECK_DONE();
}
