/* test_dicom.c -- unit tests of dicom/ (dicom.h) against real files: every pydicom test file
 * (the verdict of /usr/bin/dcmdump decides which must parse), pydicom's charset files (the
 * decoding of /usr/bin/python3 + pydicom is the reference), and tests/data/dicom_fixture.dcm
 * (made by tests/data/gen_dicom_fixture.py). The last case times the ingest hot path. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "tests/check.h"

#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"
#define TS_BIG "1.2.840.10008.1.2.2"
#define FIXTURE SRCDIR "/tests/data/dicom_fixture.dcm"
#define CHARSET_FILES PYDICOM_FILES "/../charset_files"

static void *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static DcmObject *parse_file(const char *path, unsigned flags, DcmError *err)
{
    size_t len = 0;
    void *buf = load(path, &len);
    DcmObject *obj = NULL;
    if (buf)
        dcm_parse(err, buf, len, flags, &obj);
    free(buf);
    return obj;
}

static bool dcmdump_reads(const char *path)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "/usr/bin/dcmdump -q '%s' >/dev/null 2>&1", path);
    return system(cmd) == 0;
}

/* First value dcmdump prints for a tag, between [ ]. */
static char *dcmdump_value(const char *path, const char *tag)
{
    char cmd[4400], line[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/dcmdump -q +P %s '%s' 2>/dev/null", tag, path);
    FILE *p = popen(cmd, "r");
    char *res = NULL;
    if (p && fgets(line, sizeof line, p)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b) {
            *b = '\0';
            res = strdup(a + 1);
        }
    }
    if (p)
        pclose(p);
    return res;
}

static char *get(const DcmObject *obj, uint32_t tag)
{
    char *v = NULL;
    DcmError e = {0};
    if (dcm_get_string(&e, obj, tag, &v) != 1)
        return NULL;
    return v;
}

static char *json_text(const DcmObject *obj, int format, size_t max_length)
{
    DcmError e = {0};
    cJSON *j = dcm_to_json(&e, obj, format, max_length);
    if (!j)
        return NULL;
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static const cJSON *member(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *member_str(const cJSON *o, const char *k)
{
    const cJSON *m = member(o, k);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int log_count;
static void test_log(int level, const char *msg)
{
    (void)level;
    (void)msg;
    log_count++;
}

static void test_dicom_init(void)
{
    DcmError e = {0};
    dcm_set_log_fn(test_log);
    CHECK(dcm_global_init(&e));
    CHECK(e.code == DCM_OK);
}

/* Parses one file both ways, compares with dcmdump and between the two modes. */
static void check_one_file(const char *path)
{
    size_t len = 0;
    void *buf = load(path, &len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    bool expect = dcmdump_reads(path);
    DcmError e1 = {0}, e2 = {0};
    DcmObject *full = NULL, *head = NULL;
    bool ok1 = dcm_parse(&e1, buf, len, 0, &full);
    bool ok2 = dcm_parse(&e2, buf, len, DCM_PARSE_HEADER_ONLY, &head);
    if (ok1 != expect || ok2 != expect)
        fprintf(stderr, "  %s: dcmdump %s, full %s (%s), header-only %s (%s)\n", path,
                expect ? "reads" : "fails", ok1 ? "ok" : "fails", e1.message, ok2 ? "ok" : "fails",
                e2.message);
    CHECK(ok1 == expect);
    CHECK(ok2 == expect);
    if (!ok1)
        CHECK(e1.code == DCM_ERR_FORMAT && full == NULL);
    if (!ok2)
        CHECK(e2.code == DCM_ERR_FORMAT && head == NULL);
    if (ok1 && ok2) {
        char *j1 = json_text(full, DCM_JSON_FULL, 0), *j2 = json_text(head, DCM_JSON_FULL, 0);
        CHECK(j1 && j2 && strcmp(j1, j2) == 0);
        if (j1 && j2 && strcmp(j1, j2) != 0)
            fprintf(stderr, "  %s: header-only and full JSON differ\n", path);
        free(j1);
        free(j2);
        CHECK_STR(dcm_object_transfer_syntax(full), dcm_object_transfer_syntax(head));
        CHECK(dcm_object_has_meta(full) == dcm_object_has_meta(head));
        uint64_t off = dcm_object_pixel_data_offset(head);
        CHECK(off == dcm_object_pixel_data_offset(full));
        if (off) { /* PixelData's tag sits 8 or 12 bytes before its value */
            const unsigned char *b = buf;
            bool le8 = off >= 8 && b[off - 8] == 0xE0 && b[off - 7] == 0x7F && b[off - 6] == 0x10;
            bool le12 = off >= 12 && b[off - 12] == 0xE0 && b[off - 11] == 0x7F && b[off - 10] == 0x10;
            bool be12 = off >= 12 && b[off - 12] == 0x7F && b[off - 11] == 0xE0 && b[off - 9] == 0x10;
            CHECK(le8 || le12 || be12);
        }
        CHECK(dcm_object_memory(head) > 0);
        CHECK(dcm_object_memory(head) <= dcm_object_memory(full) + 4096);

        /* round trip: same dataset, as DCMTK sees it, after writing */
        void *out = NULL;
        size_t out_len = 0;
        DcmError e3 = {0};
        CHECK(dcm_write(&e3, full, NULL, &out, &out_len));
        if (out) {
            DcmObject *again = NULL;
            CHECK(dcm_parse(&e3, out, out_len, 0, &again));
            CHECK(dcm_object_has_meta(again));
            char *a = get(full, 0x00080018), *b = get(again, 0x00080018);
            CHECK((a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0));
            free(a);
            free(b);
            dcm_object_destroy(again);
            free(out);
        } else {
            fprintf(stderr, "  %s: write failed: %s\n", path, e3.message);
        }
    }
    dcm_object_destroy(full);
    dcm_object_destroy(head);
    free(buf);
}

static int check_dir(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!has_suffix(de->d_name, ".dcm"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        check_one_file(path);
        n++;
    }
    closedir(d);
    return n;
}

static void test_dicom_pydicom_files(void)
{
    CHECK(check_dir(PYDICOM_FILES) > 50);
    CHECK(check_dir(CHARSET_FILES) > 10);
}

static void test_dicom_known_values(void)
{
    const char *path = PYDICOM_FILES "/CT_small.dcm";
    DcmError e = {0};
    DcmObject *obj = parse_file(path, DCM_PARSE_HEADER_ONLY, &e);
    CHECK(obj != NULL);
    const char *tags[] = {"0010,0020", "0020,000d", "0020,000e", "0008,0018", "0008,0060"};
    uint32_t keys[] = {0x00100020, 0x0020000D, 0x0020000E, 0x00080018, 0x00080060};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *want = dcmdump_value(path, tags[i]);
        char *have = get(obj, keys[i]);
        CHECK(want != NULL);
        CHECK_STR(have, want);
        free(want);
        free(have);
    }
    CHECK_STR(dcm_object_transfer_syntax(obj), TS_EXPLICIT);
    CHECK(dcm_object_has_meta(obj));
    /* private tag names come from DCMTK's private dictionary with their creator */
    cJSON *j = dcm_to_json(&e, obj, DCM_JSON_FULL, 0);
    const cJSON *t = member(j, "0009,1001");
    CHECK_STR(member_str(t, "Name"), "FullFidelity");
    CHECK_STR(member_str(t, "PrivateCreator"), "GEMS_IDEN_01");
    CHECK_STR(member_str(member(j, "0009,0010"), "Name"), "PrivateCreator");
    CHECK(member(member(j, "0009,0010"), "PrivateCreator") == NULL);
    /* PixelData: a placeholder, as Orthanc */
    CHECK_STR(member_str(member(j, "7fe0,0010"), "Type"), "Null");
    CHECK(cJSON_IsNull(member(member(j, "7fe0,0010"), "Value")));
    CHECK(member(j, "0002,0010") == NULL);
    CHECK_STR(member_str(member(j, "0028,0010"), "Value"), "128"); /* Rows, US */
    cJSON_Delete(j);
    dcm_object_destroy(obj);
}

static void test_dicom_truncated(void)
{
    const char *bad[] = {"MR_truncated.dcm", "rtplan_truncated.dcm"};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", PYDICOM_FILES, bad[i]);
        for (unsigned flags = 0; flags <= DCM_PARSE_HEADER_ONLY; flags++) {
            DcmError e = {0};
            CHECK(parse_file(path, flags, &e) == NULL);
            CHECK(e.code == DCM_ERR_FORMAT);
        }
    }
    /* cut inside the pixels: native (CT_small) and encapsulated (JPEG2000) */
    const char *files[] = {PYDICOM_FILES "/CT_small.dcm", PYDICOM_FILES "/JPEG2000.dcm",
                           PYDICOM_FILES "/MR_small_RLE.dcm"};
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        unsigned char *buf = load(files[i], &len);
        DcmObject *obj = NULL;
        DcmError e = {0};
        CHECK(dcm_parse(&e, buf, len, DCM_PARSE_HEADER_ONLY, &obj));
        size_t off = (size_t)dcm_object_pixel_data_offset(obj);
        CHECK(off > 0 && off < len);
        dcm_object_destroy(obj);
        size_t cuts[] = {len - 1, len - 4, len - 8, (off + len) / 2, off + 4, off, off - 2, off - 6, 200};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            for (unsigned flags = 0; flags <= DCM_PARSE_HEADER_ONLY; flags++) {
                DcmError e2 = {0};
                obj = NULL;
                bool ok = dcm_parse(&e2, buf, cuts[c], flags, &obj);
                if (ok)
                    fprintf(stderr, "  %s cut at %zu (flags %u) accepted\n", files[i], cuts[c], flags);
                CHECK(!ok && e2.code == DCM_ERR_FORMAT);
                dcm_object_destroy(obj);
            }
        }
        free(buf);
    }
}

static void test_dicom_garbage(void)
{
    DcmError e = {0};
    DcmObject *obj = NULL;
    CHECK(!dcm_parse(&e, "", 0, 0, &obj) && e.code == DCM_ERR_FORMAT && obj == NULL);
    const char *texts[] = {"hello, this is not DICOM at all\n", "x", "\0\0\0\0\0\0\0\0",
                           "DICM", "{\"0010,0010\": 1}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n = i == 2 ? 8 : strlen(texts[i]);
        for (unsigned flags = 0; flags <= DCM_PARSE_HEADER_ONLY; flags++) {
            DcmError e2 = {0};
            obj = NULL;
            CHECK(!dcm_parse(&e2, texts[i], n, flags, &obj));
            CHECK(e2.code == DCM_ERR_FORMAT && obj == NULL);
        }
    }
    DcmError e3 = {0};
    CHECK(parse_file(PYDICOM_FILES "/README.txt", 0, &e3) == NULL && e3.code == DCM_ERR_FORMAT);
    /* a 128-byte preamble, "DICM", then nothing */
    unsigned char pre[132] = {0};
    memcpy(pre + 128, "DICM", 4);
    DcmError e4 = {0};
    CHECK(!dcm_parse(&e4, pre, sizeof pre, DCM_PARSE_HEADER_ONLY, &obj) && e4.code == DCM_ERR_FORMAT);
    CHECK(!dcm_parse(NULL, pre, sizeof pre, 0, &obj)); /* err may be NULL */
}

static void test_dicom_no_meta(void)
{
    struct { const char *file, *ts; bool meta; } cases[] = {
        {"ExplVR_LitEndNoMeta.dcm", TS_EXPLICIT, false},
        {"ExplVR_BigEndNoMeta.dcm", TS_BIG, false},
        {"no_meta_group_length.dcm", TS_IMPLICIT, true}, /* meta without (0002,0000) */
    };
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", PYDICOM_FILES, cases[i].file);
        DcmError e = {0};
        DcmObject *obj = parse_file(path, DCM_PARSE_HEADER_ONLY, &e);
        CHECK(obj != NULL);
        CHECK(dcm_object_has_meta(obj) == cases[i].meta);
        CHECK_STR(dcm_object_transfer_syntax(obj), cases[i].ts);
        dcm_object_destroy(obj);
    }
    /* CT_small without preamble and "DICM", with "DICM" only, then without its meta header */
    size_t len = 0;
    unsigned char *buf = load(PYDICOM_FILES "/CT_small.dcm", &len);
    DcmError e = {0};
    DcmObject *obj = NULL;
    CHECK(dcm_parse(&e, buf, len, DCM_PARSE_HEADER_ONLY, &obj));
    uint64_t off = dcm_object_pixel_data_offset(obj);
    dcm_object_destroy(obj);
    for (size_t cut = 128; cut <= 132; cut += 4) {
        obj = NULL;
        CHECK(dcm_parse(&e, buf + cut, len - cut, DCM_PARSE_HEADER_ONLY, &obj));
        CHECK(dcm_object_has_meta(obj));
        CHECK(dcm_object_pixel_data_offset(obj) == off - cut);
        char *id = get(obj, 0x00100020);
        CHECK_STR(id, "1CT1");
        free(id);
        dcm_object_destroy(obj);
    }
    /* (0002,0000) UL at 132: value at 140 = bytes of meta after it */
    uint32_t glen = buf[140] | buf[141] << 8 | buf[142] << 16 | (uint32_t)buf[143] << 24;
    size_t start = 144 + glen;
    obj = NULL;
    CHECK(dcm_parse(&e, buf + start, len - start, DCM_PARSE_HEADER_ONLY, &obj));
    CHECK(!dcm_object_has_meta(obj));
    CHECK_STR(dcm_object_transfer_syntax(obj), TS_EXPLICIT);
    CHECK(dcm_object_pixel_data_offset(obj) == off - start);
    char *id = get(obj, 0x00100020);
    CHECK_STR(id, "1CT1");
    free(id);
    dcm_object_destroy(obj);
    free(buf);
}

static void test_dicom_fixture(void)
{
    DcmError e = {0};
    DcmObject *head = parse_file(FIXTURE, DCM_PARSE_HEADER_ONLY, &e);
    DcmObject *full = parse_file(FIXTURE, 0, &e);
    CHECK(head && full);
    if (!head || !full)
        return;
    /* dcm_get_string */
    char *v = get(head, 0x00100010);
    CHECK_STR(v, "M\xC3\xBCller^J\xC3\xBCrgen"); /* Latin-1 in the file */
    free(v);
    v = get(head, 0x00100020);
    CHECK_STR(v, "MP-0001"); /* stripped */
    free(v);
    v = get(head, 0x00080008);
    CHECK_STR(v, "ORIGINAL\\PRIMARY");
    free(v);
    v = get(head, 0x00280030);
    CHECK_STR(v, "0.5\\0.25");
    free(v);
    v = get(head, 0x00280010);
    CHECK_STR(v, "4");
    free(v);
    v = get(head, 0x00091002);
    CHECK_STR(v, "42");
    free(v);
    v = get(head, 0x00080090);
    CHECK_STR(v, ""); /* present, empty */
    free(v);
    v = get(head, 0x00280106);
    CHECK_STR(v, ""); /* US without value */
    free(v);
    char *none = (char *)"x";
    CHECK(dcm_get_string(&e, head, 0x00100030, &none) == 0 && none == NULL);
    DcmError e2 = {0};
    CHECK(dcm_get_string(&e2, head, 0x00081032, &none) == -1 && e2.code == DCM_ERR_ARG);
    DcmError e3 = {0};
    CHECK(dcm_get_string(&e3, full, 0x7FE00010, &none) == -1 && e3.code == DCM_ERR_ARG);
    CHECK(dcm_get_string(&e3, head, 0x7FE00010, &none) == 0); /* header-only: not kept */

    /* PixelData offset: where bytes 0..31 sit in the file */
    size_t len = 0;
    unsigned char *buf = load(FIXTURE, &len);
    unsigned char pix[32];
    for (int i = 0; i < 32; i++)
        pix[i] = (unsigned char)i;
    unsigned char *at = memmem(buf, len, pix, sizeof pix);
    CHECK(at && dcm_object_pixel_data_offset(head) == (uint64_t)(at - buf));
    CHECK(dcm_object_pixel_data_offset(full) == dcm_object_pixel_data_offset(head));
    free(buf);

    /* FULL */
    cJSON *j = dcm_to_json(&e, head, DCM_JSON_FULL, 256);
    CHECK(j != NULL);
    const cJSON *pn = member(j, "0010,0010");
    CHECK_STR(member_str(pn, "Name"), "PatientName");
    CHECK_STR(member_str(pn, "Type"), "String");
    CHECK_STR(member_str(pn, "Value"), "M\xC3\xBCller^J\xC3\xBCrgen");
    CHECK_STR(member_str(member(j, "0008,0090"), "Value"), "");
    CHECK_STR(member_str(member(j, "0028,0106"), "Type"), "Null");
    CHECK(cJSON_IsNull(member(member(j, "0028,0106"), "Value")));
    const cJSON *lt = member(j, "0032,4000");
    CHECK_STR(member_str(lt, "Type"), "TooLong");
    CHECK(cJSON_IsNull(member(lt, "Value")));
    const cJSON *sq = member(j, "0008,1032");
    CHECK_STR(member_str(sq, "Type"), "Sequence");
    const cJSON *items = member(sq, "Value");
    CHECK(cJSON_IsArray(items) && cJSON_GetArraySize(items) == 2);
    CHECK_STR(member_str(member(cJSON_GetArrayItem(items, 0), "0008,0104"), "Value"), "First");
    CHECK_STR(member_str(member(cJSON_GetArrayItem(items, 1), "0008,0100"), "Name"), "CodeValue");
    /* the icon's own PixelData is inside a sequence: listed, binary values are Null (Orthanc) */
    const cJSON *icon = cJSON_GetArrayItem(member(member(j, "0088,0200"), "Value"), 0);
    CHECK_STR(member_str(member(icon, "7fe0,0010"), "Type"), "Null");
    CHECK_STR(member_str(member(icon, "0028,0010"), "Value"), "2");
    const cJSON *priv = member(j, "0009,1001");
    CHECK_STR(member_str(priv, "PrivateCreator"), "MINIPACS TEST");
    CHECK_STR(member_str(priv, "Name"), "Unknown Tag & Data");
    CHECK_STR(member_str(priv, "Value"), "private value");
    CHECK_STR(member_str(member(j, "7fe0,0010"), "Name"), "PixelData");
    CHECK(member(j, "fffc,fffc") == NULL); /* after PixelData */
    cJSON_Delete(j);
    j = dcm_to_json(&e, head, DCM_JSON_FULL, 0); /* 0: no limit */
    CHECK_STR(member_str(member(j, "0032,4000"), "Type"), "String");
    CHECK(strlen(member_str(member(j, "0032,4000"), "Value")) == 300);
    cJSON_Delete(j);

    /* SIMPLIFY and SHORT */
    j = dcm_to_json(&e, head, DCM_JSON_SIMPLIFY, 256);
    CHECK_STR(member_str(j, "PatientName"), "M\xC3\xBCller^J\xC3\xBCrgen");
    CHECK_STR(member_str(j, "PatientID"), "MP-0001");
    CHECK(cJSON_IsNull(member(j, "SmallestImagePixelValue")));
    CHECK(cJSON_IsNull(member(j, "RETIRED_StudyComments")));
    CHECK(member(j, "Unknown Tag & Data") != NULL); /* every tag by name, the last one wins */
    CHECK(member(j, "0009,1001") == NULL);
    items = member(j, "ProcedureCodeSequence");
    CHECK(cJSON_IsArray(items) && cJSON_GetArraySize(items) == 2);
    CHECK_STR(member_str(cJSON_GetArrayItem(items, 1), "CodeValue"), "B2");
    CHECK(cJSON_IsNull(member(j, "PixelData")));
    cJSON_Delete(j);
    j = dcm_to_json(&e, head, DCM_JSON_SHORT, 256);
    CHECK_STR(member_str(j, "0010,0010"), "M\xC3\xBCller^J\xC3\xBCrgen");
    CHECK(cJSON_IsNull(member(j, "0032,4000")));
    CHECK_STR(member_str(cJSON_GetArrayItem(member(j, "0008,1032"), 0), "0008,0100"), "A1");
    cJSON_Delete(j);
    CHECK(dcm_to_json(&e, head, 7, 0) == NULL && e.code == DCM_ERR_ARG);

    /* header-only objects with pixels cannot be written; full ones can, in another TS */
    void *out = NULL;
    size_t out_len = 0;
    DcmError e4 = {0};
    CHECK(!dcm_write(&e4, head, NULL, &out, &out_len) && e4.code == DCM_ERR_ARG);
    const char *tss[] = {TS_BIG, TS_IMPLICIT, TS_DEFLATED, TS_EXPLICIT};
    for (size_t i = 0; i < 4; i++) {
        DcmError e5 = {0};
        CHECK(dcm_write(&e5, full, tss[i], &out, &out_len));
        DcmObject *back = NULL;
        CHECK(out && dcm_parse(&e5, out, out_len, 0, &back));
        CHECK_STR(dcm_object_transfer_syntax(back), tss[i]);
        /* implicit VR forgets the VR of unknown private tags (they come back as UN, Binary) */
        char *j1 = json_text(full, DCM_JSON_FULL, 0), *j2 = json_text(back, DCM_JSON_FULL, 0);
        if (strcmp(tss[i], TS_IMPLICIT) != 0)
            CHECK(j1 && j2 && strcmp(j1, j2) == 0);
        char *pn = get(back, 0x00100010);
        CHECK_STR(pn, "M\xC3\xBCller^J\xC3\xBCrgen");
        free(pn);
        if (strcmp(tss[i], TS_IMPLICIT) != 0 && j1 && j2 && strcmp(j1, j2) != 0)
            fprintf(stderr, "  %s:\n  %s\n  %s\n", tss[i], j1, j2);
        free(j1);
        free(j2);
        dcm_object_destroy(back);
        free(out);
        out = NULL;
    }
    DcmError e6 = {0};
    CHECK(!dcm_write(&e6, full, "1.2.3.4", &out, &out_len) && e6.code == DCM_ERR_ARG);
    dcm_object_destroy(head);
    dcm_object_destroy(full);

    /* compressed pixel data is stored as is: no transcoding */
    DcmObject *j2k = parse_file(PYDICOM_FILES "/JPEG2000.dcm", 0, &e);
    DcmError e7 = {0};
    CHECK(!dcm_write(&e7, j2k, TS_EXPLICIT, &out, &out_len) && e7.code == DCM_ERR_ARG);
    CHECK(dcm_write(&e7, j2k, "1.2.840.10008.1.2.4.91", &out, &out_len));
    free(out);
    dcm_object_destroy(j2k);
}

/* dcm_assoc_pdu_check: a well-formed request (the items storescu sends) passes; each way of
 * lying about a length, an over-long UID where DCMTK copies into 65 bytes, and the fixed-size
 * sub-items of the wrong size are refused with a reason. */
static size_t rq_item(unsigned char *o, unsigned type, const void *v, size_t n)
{
    o[0] = (unsigned char)type;
    o[1] = 0;
    o[2] = (unsigned char)(n >> 8);
    o[3] = (unsigned char)n;
    memcpy(o + 4, v, n);
    return 4 + n;
}

/* A request body: fixed part, application context, one presentation context, user info made of
 * the given sub-items (ui, uin bytes). */
static size_t rq_body(unsigned char *o, const unsigned char *pc_sub, size_t pcn,
                      const unsigned char *ui, size_t uin)
{
    size_t n = 0;
    o[n++] = 0; o[n++] = 1; o[n++] = 0; o[n++] = 0;
    memcpy(o + n, "ORTHANC         STORESCU        ", 32); n += 32;
    memset(o + n, 0, 32); n += 32;
    n += rq_item(o + n, 0x10, "1.2.840.10008.3.1.1.1", 21);
    unsigned char pc[512];
    size_t m = 0;
    pc[m++] = 1; pc[m++] = 0; pc[m++] = 0; pc[m++] = 0;
    memcpy(pc + m, pc_sub, pcn); m += pcn;
    n += rq_item(o + n, 0x20, pc, m);
    n += rq_item(o + n, 0x50, ui, uin);
    return n;
}

static void test_dicom_assoc_pdu_check(void)
{
    unsigned char pcs[256], ui[256], body[1024];
    size_t pcn = 0, uin = 0;
    pcn += rq_item(pcs + pcn, 0x30, "1.2.840.10008.5.1.4.1.1.2", 25);
    pcn += rq_item(pcs + pcn, 0x40, "1.2.840.10008.1.2", 17);
    static const unsigned char maxlen[4] = { 0, 0, 0x40, 0 };
    uin += rq_item(ui + uin, 0x51, maxlen, 4);
    uin += rq_item(ui + uin, 0x52, "1.2.276.0.7230010.3.0.3.6.7", 27);
    unsigned char role[32] = { 0, 25 };
    memcpy(role + 2, "1.2.840.10008.5.1.4.1.1.2", 25);
    role[27] = 1; role[28] = 1;
    uin += rq_item(ui + uin, 0x54, role, 29);
    unsigned char ident[16] = { 2, 0, 0, 3, 'b', 'o', 'b', 0, 3, 'p', 'w', 'd' };
    uin += rq_item(ui + uin, 0x58, ident, 12);
    uin += rq_item(ui + uin, 0x55, "OFFIS_DCMTK_367", 15);
    char why[160] = "";
    size_t n = rq_body(body, pcs, pcn, ui, uin);
    CHECK(dcm_assoc_pdu_check(1, body, n, why, sizeof why));
    CHECK_STR(why, "");

    /* every strict prefix that cuts an item is refused (a cut at an item boundary is a
     * shorter, valid request; the fixed part needs its 68 bytes) */
    CHECK(!dcm_assoc_pdu_check(1, body, 67, why, sizeof why));
    CHECK(strstr(why, "at least 68") != NULL);
    CHECK(!dcm_assoc_pdu_check(1, body, n - 1, why, sizeof why));
    CHECK(strstr(why, "overruns") != NULL);

    /* protocol version without bit 0 */
    unsigned char b2[1024];
    memcpy(b2, body, n);
    b2[1] = 0;
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "protocol version") != NULL);

    /* an AE title of 16 spaces, or empty before a NUL (DCMTK reads up to the NUL), as the
     * called or the calling AE: the input CI's fuzzer found leaking DCMTK's lists */
    memcpy(b2, body, n);
    memset(b2 + 20, ' ', 16);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "empty calling AE title") != NULL);
    b2[20] = 0; b2[21] = 'X';
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    memcpy(b2, body, n);
    memset(b2 + 4, ' ', 16);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "empty called AE title") != NULL);
    memcpy(b2 + 4, "  X", 3); /* leading spaces are not significant: a title */
    CHECK(dcm_assoc_pdu_check(1, b2, n, why, sizeof why));

    /* a presentation context without a transfer syntax (abstract syntax only, or nothing),
     * and two user identity sub-items: DCMTK leaks on each (found by a sweep of such requests
     * against fuzz_dimse) */
    unsigned char abs_only[64];
    size_t an0 = rq_item(abs_only, 0x30, "1.2.840.10008.1.1", 17);
    n = rq_body(b2, abs_only, an0, ui, uin);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "without a transfer syntax") != NULL);
    n = rq_body(b2, abs_only, 0, ui, uin);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "without a transfer syntax") != NULL);
    {
        unsigned char two_id[64];
        size_t tn = rq_item(two_id, 0x58, ident, 12);
        tn += rq_item(two_id + tn, 0x58, ident, 12);
        n = rq_body(b2, pcs, pcn, two_id, tn);
        CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
        CHECK(strstr(why, "more than one user identity") != NULL);
    }

    /* a transfer syntax sub-item whose length runs past its presentation context: the input
     * the fuzzer found leaking DCMTK's lists */
    unsigned char bad_pc[256];
    size_t bn = 0;
    bn += rq_item(bad_pc + bn, 0x30, "1.2.840.10008.5.1.4.1.1.2", 25);
    bn += rq_item(bad_pc + bn, 0x40, "1.2.840.10008.1.2", 17);
    bad_pc[bn - 17 - 2] = 0x30; /* length 0x3011 */
    n = rq_body(b2, bad_pc, bn, ui, uin);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "sub-item 0x40") != NULL);

    /* a 65-byte abstract syntax UID */
    char uid65[66];
    memset(uid65, '1', 65);
    bn = rq_item(bad_pc, 0x30, uid65, 65);
    n = rq_body(b2, bad_pc, bn, ui, uin);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "at most 64") != NULL);

    /* a role selection whose UID length exceeds 64 (DCMTK would copy it past its buffer), and
     * one whose UID length disagrees with the item */
    unsigned char bad_ui[256], r2[80] = { 0, 70 };
    memset(r2 + 2, '1', 70);
    size_t un = rq_item(bad_ui, 0x51, maxlen, 4);
    un += rq_item(bad_ui + un, 0x54, r2, 74);
    n = rq_body(b2, pcs, pcn, bad_ui, un);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "role selection") != NULL);
    r2[1] = 10;
    un = rq_item(bad_ui, 0x54, r2, 20);
    n = rq_body(b2, pcs, pcn, bad_ui, un);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));

    /* a maximum length sub-item that is not 4 bytes, a user identity whose fields disagree
     * with the item, stray bytes after the user information's sub-items */
    static const unsigned char ml8[8] = { 0 };
    un = rq_item(bad_ui, 0x51, ml8, 8);
    n = rq_body(b2, pcs, pcn, bad_ui, un);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "maximum length") != NULL);
    unsigned char id2[16] = { 2, 0, 0, 9, 'b', 'o', 'b', 0, 3, 'p', 'w', 'd' };
    un = rq_item(bad_ui, 0x58, id2, 12);
    n = rq_body(b2, pcs, pcn, bad_ui, un);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "user identity") != NULL);
    un = rq_item(bad_ui, 0x51, maxlen, 4);
    bad_ui[un++] = 0x52; bad_ui[un++] = 0;
    n = rq_body(b2, pcs, pcn, bad_ui, un);
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "stray bytes") != NULL);

    /* an A-ASSOCIATE-AC's presentation context item in a request */
    n = rq_body(b2, pcs, pcn, ui, uin);
    b2[68 + 4 + 21] = 0x21;
    CHECK(!dcm_assoc_pdu_check(1, b2, n, why, sizeof why));
    CHECK(strstr(why, "0x21 in an A-ASSOCIATE-RQ") != NULL);

    /* A-ASSOCIATE-AC: the same body with an answer's item passes as an answer and a request's
     * item does not; a refused context's sub-items are not read (the standard says they are
     * not significant), an accepted one's are; a user identity answer is the AC form */
    CHECK(dcm_assoc_pdu_check(2, b2, n, why, sizeof why) == false); /* 0x58 in RQ form */
    size_t acui = rq_item(bad_ui, 0x51, maxlen, 4);
    static const unsigned char idans[7] = { 0, 5, 't', 'o', 'k', 'e', 'n' };
    acui += rq_item(bad_ui + acui, 0x59, idans, 7);
    unsigned char acpc[64];
    size_t an = rq_item(acpc, 0x40, "1.2.840.10008.1.2", 17);
    n = rq_body(b2, acpc, an, bad_ui, acui);
    b2[68 + 4 + 21] = 0x21;
    CHECK(dcm_assoc_pdu_check(2, b2, n, why, sizeof why));
    b2[68 + 4 + 21] = 0x20;
    CHECK(!dcm_assoc_pdu_check(2, b2, n, why, sizeof why));
    b2[68 + 4 + 21] = 0x21;
    b2[68 + 4 + 21 + 8 + 2] = 0x30; /* the transfer syntax sub-item overruns */
    CHECK(!dcm_assoc_pdu_check(2, b2, n, why, sizeof why));
    b2[68 + 4 + 21 + 6] = 3; /* ... in a context refused (abstract syntax not supported) */
    CHECK(dcm_assoc_pdu_check(2, b2, n, why, sizeof why));
    b2[68 + 4 + 21 + 8 + 2] = 0;
    bad_ui[acui - 7 + 1] = 6; /* the identity answer's field disagrees with its item */
    n = rq_body(b2, acpc, an, bad_ui, acui);
    b2[68 + 4 + 21] = 0x21;
    CHECK(!dcm_assoc_pdu_check(2, b2, n, why, sizeof why));
    CHECK(strstr(why, "user identity answer") != NULL);
    CHECK(!dcm_assoc_pdu_check(3, b2, n, why, sizeof why));
}

static void test_dicom_dictionary(void)
{
    DcmError e = {0};
    CHECK(dcm_dictionary_add(&e, 0x00091001, "LO", "MinipacsPrivate", 1, 1, "MINIPACS TEST"));
    CHECK(!dcm_dictionary_add(&e, 0x00091003, "ZZ", "Bad", 1, 1, "MINIPACS TEST") && e.code == DCM_ERR_ARG);
    DcmObject *obj = parse_file(FIXTURE, DCM_PARSE_HEADER_ONLY, &e);
    cJSON *j = dcm_to_json(&e, obj, DCM_JSON_FULL, 0);
    CHECK_STR(member_str(member(j, "0009,1001"), "Name"), "MinipacsPrivate");
    cJSON_Delete(j);
    j = dcm_to_json(&e, obj, DCM_JSON_SIMPLIFY, 0);
    CHECK_STR(member_str(j, "MinipacsPrivate"), "private value");
    cJSON_Delete(j);
    dcm_object_destroy(obj);
}

/* PatientName of every charset file, compared with pydicom's decoding. */
static void test_dicom_charsets(void)
{
    const char *script =
        "import sys, glob, os, pydicom\n"
        "for f in sorted(glob.glob(sys.argv[1] + '/*.dcm')):\n"
        "    d = pydicom.dcmread(f)\n"
        "    if 'PatientName' in d:\n"
        "        print(os.path.basename(f) + '\\t' + str(d.PatientName).strip())\n";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"$MP_PY\" '%s' 2>/dev/null", CHARSET_FILES);
    setenv("MP_PY", script, 1);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char line[2048];
    int n = 0;
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", CHARSET_FILES, line);
        DcmError e = {0};
        DcmObject *obj = parse_file(path, DCM_PARSE_HEADER_ONLY, &e);
        char *v = obj ? get(obj, 0x00100010) : NULL;
        /* pydicom drops empty trailing name groups ("A^B=" prints "A^B"); the value keeps them */
        size_t vl = v ? strlen(v) : 0;
        while (vl > 0 && (v[vl - 1] == '=' || v[vl - 1] == '^'))
            v[--vl] = '\0';
        if (!v || strcmp(v, tab + 1) != 0)
            fprintf(stderr, "  %s: pydicom \"%s\", ours \"%s\"\n", line, tab + 1, v ? v : "(null)");
        CHECK_STR(v, tab + 1);
        free(v);
        dcm_object_destroy(obj);
        n++;
    }
    if (p)
        pclose(p);
    CHECK(n >= 10);
    /* and the one the brief names */
    DcmError e = {0};
    DcmObject *obj = parse_file(CHARSET_FILES "/chrH31.dcm", 0, &e);
    char *v = get(obj, 0x00100010);
    CHECK_STR(v, "Yamada^Tarou=\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E="
                 "\xE3\x82\x84\xE3\x81\xBE\xE3\x81\xA0^\xE3\x81\x9F\xE3\x82\x8D\xE3\x81\x86");
    free(v);
    dcm_object_destroy(obj);
}

/* Many readers on one object (the cache shares pinned objects). */
static void *reader(void *arg)
{
    DcmObject *obj = arg;
    intptr_t bad = 0;
    for (int i = 0; i < 200; i++) {
        char *v = get(obj, 0x00100010);
        bad += !v;
        free(v);
        DcmError e = {0};
        cJSON *j = dcm_to_json(&e, obj, i % 3, 256);
        bad += !j;
        cJSON_Delete(j);
    }
    return (void *)bad;
}

static void test_dicom_threads(void)
{
    DcmError e = {0};
    DcmObject *obj = parse_file(PYDICOM_FILES "/MR_small_bigendian.dcm", 0, &e);
    CHECK(obj != NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, reader, obj);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        CHECK(r == NULL);
    }
    dcm_object_destroy(obj);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Ingest's hot path on a 512x512 16-bit CT, and a large multi-frame that must not be copied. */
static void test_dicom_perf(void)
{
    char dir[] = "/tmp/test_dicom_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *script =
        "import sys, pydicom\n"
        "from pydicom.uid import ExplicitVRLittleEndian\n"
        "d = pydicom.dcmread(sys.argv[1])\n"
        "d.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian\n"
        "d.is_little_endian = True; d.is_implicit_VR = False\n"
        "d.Rows = 512; d.Columns = 512\n"
        "d.PixelData = bytes(512 * 512 * 2)\n"
        "d.save_as(sys.argv[2] + '/ct.dcm')\n"
        "e = pydicom.dcmread(sys.argv[2] + '/ct.dcm')\n"
        "e.remove_private_tags()\n"
        "e.save_as(sys.argv[2] + '/ct_nopriv.dcm')\n"
        "d.NumberOfFrames = 400\n"
        "d.PixelData = bytes(512 * 512 * 2 * 400)\n"
        "d.save_as(sys.argv[2] + '/big.dcm')\n";
    setenv("MP_PY", script, 1);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"$MP_PY\" '%s/CT_small.dcm' '%s'", PYDICOM_FILES, dir);
    CHECK(system(cmd) == 0);

    static const uint32_t tags[40] = {
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101010, 0x00080020, 0x00080030,
        0x00080050, 0x00081030, 0x00080090, 0x0020000D, 0x00200010, 0x00080060, 0x0008103E,
        0x0020000E, 0x00200011, 0x00180015, 0x00180050, 0x00080018, 0x00200013, 0x00200032,
        0x00200037, 0x00280010, 0x00280011, 0x00280100, 0x00280030, 0x00080016, 0x00080070,
        0x00081090, 0x00080080, 0x00081010, 0x00200012, 0x00200052, 0x00201041, 0x00080008,
        0x00280002, 0x00280004, 0x00280101, 0x00280103, 0x00080005};
    /* CT_small's header has ~100 GE private elements, whose dictionary look-ups dominate
     * DCMTK's time; the second file is the same without them */
    const char *names[] = {"ct.dcm", "ct_nopriv.dcm"};
    char path[4096];
    size_t len = 0;
    void *buf = NULL;
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        buf = load(path, &len);
        CHECK(buf && len > 500000);
        const int rounds = 2000;
        int found = 0;
        double t0 = now_us();
        for (int r = 0; r < rounds; r++) {
            DcmObject *obj = NULL;
            DcmError e = {0};
            if (!dcm_parse(&e, buf, len, DCM_PARSE_HEADER_ONLY, &obj)) {
                CHECK(0);
                break;
            }
            for (int i = 0; i < 40; i++) {
                char *v = NULL;
                found += dcm_get_string(&e, obj, tags[i], &v) == 1;
                free(v);
            }
            dcm_object_destroy(obj);
        }
        double per = (now_us() - t0) / rounds;
        CHECK(found > rounds * 30);
        double t1 = now_us();
        for (int r = 0; r < 200; r++) {
            DcmObject *obj = NULL;
            dcm_parse(NULL, buf, len, 0, &obj);
            dcm_object_destroy(obj);
        }
        double per_full = (now_us() - t1) / 200;
        fprintf(stderr, "  perf: %s (%zu bytes), header-only parse + 40 dcm_get_string: %.1f us/file "
                "(full parse alone: %.1f us)\n", names[f], len, per, per_full);
        free(buf);
    }

    snprintf(path, sizeof path, "%s/big.dcm", dir);
    buf = load(path, &len);
    CHECK(buf && len > 200000000);
    DcmObject *obj = NULL;
    DcmError e = {0};
    double t2 = now_us();
    CHECK(dcm_parse(&e, buf, len, DCM_PARSE_HEADER_ONLY, &obj));
    double big_us = now_us() - t2;
    CHECK(dcm_object_memory(obj) < 1000000); /* the pixels were not copied */
    CHECK(dcm_object_pixel_data_offset(obj) > 0);
    fprintf(stderr, "  perf: %zu-byte multi-frame, header-only parse: %.1f us, object %zu bytes\n",
            len, big_us, dcm_object_memory(obj));
    dcm_object_destroy(obj);
    /* one byte short: rejected without reading the pixels */
    obj = NULL;
    CHECK(!dcm_parse(&e, buf, len - 1, DCM_PARSE_HEADER_ONLY, &obj) && e.code == DCM_ERR_FORMAT);
    free(buf);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(test_dicom_init);
    RUN(test_dicom_pydicom_files);
    RUN(test_dicom_known_values);
    RUN(test_dicom_truncated);
    RUN(test_dicom_garbage);
    RUN(test_dicom_no_meta);
    RUN(test_dicom_fixture);
    RUN(test_dicom_charsets);
    RUN(test_dicom_threads);
    RUN(test_dicom_dictionary);
    RUN(test_dicom_assoc_pdu_check);
    RUN(test_dicom_perf);
    return CHECK_DONE();
}
