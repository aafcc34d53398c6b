/* test_query.c -- the query engine (server/query.c) and the retrieve list (server/retrieve.c)
 * on a real index: instances created with dcm_create and stored through ingest_buffer, then
 * queried at every level with each matching kind; computed attributes; keys outside the main
 * tags read from the files; paging; the retrieve list's order, de-duplication and file walk. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "dicom/dicom.h"
#include "server/query.h"
#include "storage/storage.h"
#include "server/retrieve.h"

static Srv srv;

static void add(const char *pid, const char *name, const char *study, const char *date,
                const char *series, const char *modality, const char *sop, const char *thick)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "PatientID", pid);
    cJSON_AddStringToObject(t, "PatientName", name);
    cJSON_AddStringToObject(t, "StudyInstanceUID", study);
    cJSON_AddStringToObject(t, "StudyDate", date);
    cJSON_AddStringToObject(t, "SeriesInstanceUID", series);
    cJSON_AddStringToObject(t, "Modality", modality);
    cJSON_AddStringToObject(t, "SOPInstanceUID", sop);
    cJSON_AddStringToObject(t, "SliceThickness", thick);
    DcmError de = { 0 };
    void *buf = NULL;
    size_t len = 0;
    CHECK(dcm_create(&de, t, NULL, NULL, 0, &buf, &len));
    cJSON_Delete(t);
    SrvError e = { 0 };
    IngestResult r;
    IngestOrigin o = { .origin = INGEST_ORIGIN_REST };
    CHECK(ingest_buffer(&e, &srv, buf, len, &o, &r));
    free(buf);
}

typedef struct Got {
    size_t n;
    char ids[16][IDX_ID_LEN];
    char first[8][256]; /* values of the first answer */
    size_t stop_after;  /* 0: never */
} Got;

static bool collect(void *ctx, const QryAnswer *a)
{
    Got *g = ctx;
    if (g->n < 16) snprintf(g->ids[g->n], IDX_ID_LEN, "%s", a->id);
    if (g->n == 0)
        for (size_t i = 0; i < a->nvalues && i < 8; i++)
            snprintf(g->first[i], 256, "%s", a->values[i] ? a->values[i] : "(null)");
    g->n++;
    return !(g->stop_after && g->n >= g->stop_after);
}

static size_t run(int level, const QryKey *keys, size_t n, bool cs, Got *g)
{
    memset(g, 0, sizeof *g);
    QryRequest rq = { .level = level, .keys = keys, .nkeys = n, .case_sensitive_pn = cs };
    SrvError e = { 0 };
    bool complete;
    CHECK(qry_run(&e, &srv, &rq, collect, g, &complete));
    return g->n;
}

static void test_query_match(void)
{
    CHECK(qry_match("DOE*", "Doe^John", true, false));
    CHECK(!qry_match("DOE*", "Doe^John", false, false));
    CHECK(qry_match("D?e^*", "Doe^John", false, false));
    CHECK(qry_match("*", NULL, false, false));
    CHECK(!qry_match("A", NULL, false, false));
    CHECK(qry_match("1.2\\1.3", "1.3", false, false));
    CHECK(!qry_match("1.2\\1.3", "1.4", false, false));
    CHECK(qry_match("20200101-20201231", "20200615", false, true));
    CHECK(!qry_match("20200101-20201231", "20210101", false, true));
    CHECK(qry_match("-20200101", "20200101", false, true));
    CHECK(qry_match("20200101-", "20990101", false, true));
    CHECK(!qry_match("20200101-", "20190101", false, true));
    CHECK(qry_match("CT", "MR\\CT", false, false)); /* multi-valued value */
    CHECK(qry_match("*a*b*", "xxaxxbxx", false, false));
    CHECK(!qry_match("*a*b", "xxaxxbxx", false, false));
    CHECK(qry_universal("**") && qry_universal("") && !qry_universal("a*"));
}

static void test_query_levels(void)
{
    Got g;
    QryKey k1[] = { { 0x00100010, "doe*" }, { 0x00100020, "" } };
    CHECK(run(IDX_PATIENT, k1, 2, false, &g) == 1);
    CHECK_STR(g.first[1], "P2");
    CHECK(run(IDX_PATIENT, k1, 2, true, &g) == 0); /* CaseSensitivePN */
    QryKey k2[] = { { 0x00080020, "20200101-20201231" }, { 0x0020000d, "" },
                    { QRY_TAG_STUDY_SERIES, "" }, { QRY_TAG_STUDY_INSTANCES, "" },
                    { QRY_TAG_MODALITIES_IN_STUDY, "" }, { 0x00100010, "" },
                    { QRY_TAG_QUERY_LEVEL, "" } };
    CHECK(run(IDX_STUDY, k2, 7, false, &g) == 1);
    CHECK_STR(g.first[1], "1.1");
    CHECK_STR(g.first[2], "2");
    CHECK_STR(g.first[3], "3");
    CHECK_STR(g.first[4], "CT\\MR");
    CHECK_STR(g.first[5], "M\xc3\xbcller^Hans");
    CHECK_STR(g.first[6], "STUDY");
    QryKey k3[] = { { 0x0020000d, "1.2\\1.3" } };
    CHECK(run(IDX_STUDY, k3, 1, false, &g) == 2);
    QryKey k4[] = { { QRY_TAG_MODALITIES_IN_STUDY, "MR" }, { 0x0020000d, "" } };
    CHECK(run(IDX_STUDY, k4, 2, false, &g) == 1);
    CHECK_STR(g.first[1], "1.1");
    QryKey k5[] = { { 0x0020000e, "1.1.1" }, { QRY_TAG_SERIES_INSTANCES, "" }, { 0x00080060, "" } };
    CHECK(run(IDX_SERIES, k5, 3, false, &g) == 1);
    CHECK_STR(g.first[1], "2");
    CHECK_STR(g.first[2], "CT");
    /* instance level: a key outside the main tags, matched and answered from the file */
    QryKey k6[] = { { 0x00180050, "2.5" }, { 0x00080018, "" }, { 0x00100020, "" } };
    CHECK(run(IDX_INSTANCE, k6, 3, false, &g) == 1);
    CHECK_STR(g.first[1], "1.1.2.1");
    CHECK_STR(g.first[0], "2.5");
    CHECK_STR(g.first[2], "P1");
    QryKey k7[] = { { QRY_TAG_PATIENT_STUDIES, "" }, { QRY_TAG_PATIENT_INSTANCES, "" },
                    { 0x00100020, "P1" } };
    CHECK(run(IDX_PATIENT, k7, 3, false, &g) == 1);
    CHECK_STR(g.first[0], "2");
    CHECK_STR(g.first[1], "4");
    /* a study key at instance level constrains the ancestor */
    QryKey k8[] = { { 0x0020000d, "1.1" } };
    CHECK(run(IDX_INSTANCE, k8, 1, false, &g) == 3);
}

static void test_query_paging(void)
{
    QryKey k[] = { { 0x00080018, "" } };
    Got g;
    memset(&g, 0, sizeof g);
    QryRequest rq = { .level = IDX_INSTANCE, .keys = k, .nkeys = 1, .since = 1, .limit = 2 };
    SrvError e = { 0 };
    bool complete = true;
    CHECK(qry_run(&e, &srv, &rq, collect, &g, &complete));
    CHECK(g.n == 2 && !complete);
    CHECK_STR(g.first[0], "1.1.1.2");
    /* paging after a post-filter (file key) */
    QryKey kf[] = { { 0x00180050, "1*" } };
    memset(&g, 0, sizeof g);
    QryRequest rf = { .level = IDX_INSTANCE, .keys = kf, .nkeys = 1, .since = 1, .limit = 10 };
    CHECK(qry_run(&e, &srv, &rf, collect, &g, &complete));
    CHECK(g.n == 3 && complete);
    /* the callback stops the walk (C-CANCEL) */
    memset(&g, 0, sizeof g);
    g.stop_after = 1;
    QryRequest rc = { .level = IDX_INSTANCE, .keys = k, .nkeys = 1 };
    CHECK(qry_run(&e, &srv, &rc, collect, &g, &complete));
    CHECK(g.n == 1 && !complete);
}

static int count_sink(void *ctx, SrvError *err, const RetrieveFile *f)
{
    (void)err;
    size_t *n = ctx;
    void *buf;
    size_t len;
    SrvError e = { 0 };
    if (!retrieve_read(&e, f, &buf, &len)) return RETRIEVE_FAILED;
    bool dicm = len > 132 && memcmp((char *)buf + 128, "DICM", 4) == 0;
    free(buf);
    (*n)++;
    return dicm ? RETRIEVE_SENT : RETRIEVE_FAILED;
}

static void test_retrieve_list(void)
{
    SrvError e = { 0 };
    Got g;
    QryKey k[] = { { 0x0020000d, "1.1" } };
    CHECK(run(IDX_STUDY, k, 1, false, &g) == 1);
    QryKey ks[] = { { 0x0020000e, "1.1.2" } };
    Got gs;
    CHECK(run(IDX_SERIES, ks, 1, false, &gs) == 1);
    RetrieveResource res[] = { { IDX_SERIES, gs.ids[0] }, { IDX_STUDY, g.ids[0] } };
    RetrieveList l;
    CHECK(retrieve_list(&e, &srv, res, 2, &l));
    CHECK(l.n == 3); /* the series' instance is listed once */
    CHECK_STR(l.items[0].sop_instance_uid, "1.1.2.1");
    CHECK_STR(l.items[0].transfer_syntax, "1.2.840.10008.1.2.1");
    CHECK(strlen(l.items[0].sop_class_uid) > 10 && l.items[0].size > 0);
    size_t n = 0;
    RetrieveSink sink = { count_sink, NULL, &n };
    RetrieveStats st;
    CHECK(retrieve_run(&e, &srv, &l, 0, &sink, &st, NULL));
    CHECK(n == 3 && st.completed == 3 && st.failed == 0 && st.total == 3);
    retrieve_list_cleanup(&l);
    RetrieveResource bad[] = { { IDX_STUDY, "nope" } };
    CHECK(!retrieve_list(&e, &srv, bad, 1, &l) && e.code == SRV_UNKNOWN_RESOURCE);
}

int main(void)
{
    char dir[] = "/tmp/mp-test-query.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    DcmError de = { 0 };
    dcm_global_init(&de);
    CfgError ce = { 0 };
    CHECK(cfg_load(&ce, NULL, &srv.cfg));
    free(srv.cfg.storage_dir);
    free(srv.cfg.index_dir);
    srv.cfg.storage_dir = strdup(dir);
    srv.cfg.index_dir = strdup(dir);
    srv.cfg.sync_storage = false;
    SrvError e = { 0 };
    CHECK(srv_open(&e, &srv));
    add("P1", "M\xc3\xbcller^Hans", "1.1", "20200615", "1.1.1", "CT", "1.1.1.1", "1.0");
    add("P1", "M\xc3\xbcller^Hans", "1.1", "20200615", "1.1.1", "CT", "1.1.1.2", "1.5");
    add("P1", "M\xc3\xbcller^Hans", "1.1", "20200615", "1.1.2", "MR", "1.1.2.1", "2.5");
    add("P1", "M\xc3\xbcller^Hans", "1.2", "20190101", "1.2.1", "CT", "1.2.1.1", "1.0");
    add("P2", "Doe^Jane", "1.3", "20210101", "1.3.1", "US", "1.3.1.1", "1.0");

    RUN(test_query_match);
    RUN(test_query_levels);
    RUN(test_query_paging);
    RUN(test_retrieve_list);

    srv_close(&srv);
    cfg_cleanup(&srv.cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return CHECK_DONE();
}
