/* scu.c -- our DICOM client services on remote modalities (see modality.h): C-ECHO, C-STORE of
 * resources (synchronously or as a "DicomModalityStore" job, through the one retrieve path),
 * C-FIND kept as a query (/queries) and C-MOVE (of a query's answers, or of given keys).
 *
 * DESIGN: the store job sends one instance per step over one association opened at the first
 * step and closed by finish (or on failure); a network failure fails the job with the
 * association's message. Queries live in memory, at most QueryRetrieveSize (the oldest goes),
 * each holding its answers as Orthanc's /tags JSON; one mutex guards the list, and a query is
 * copied out (JSON duplicated) before any network call.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dicom/dicom.h"
#include "server/modality.h"
#include "server/retrieve.h"
#include "server/scu.h"
#include "storage/storage.h"

static int timeout_of(const Srv *srv, const SrvModality *m)
{
    return m->timeout ? m->timeout : srv->cfg.dicom_scu_timeout;
}

static const char *local_aet(const Srv *srv, const SrvModality *m)
{
    return m->local_aet[0] ? m->local_aet : srv->cfg.dicom_aet;
}

static bool net_fail(SrvError *err, const DcmError *de)
{
    return srv_fail(err, SRV_NETWORK_PROTOCOL, "%s", de->message);
}

/* We have no DICOM TLS: a modality with UseDicomTls gets no association rather than a clear
 * one (Orthanc without TLS settings refuses too, with BadSequenceOfCalls). */
static bool tls_refused(SrvError *err, const SrvModality *m)
{
    if (!m->use_dicom_tls) return false;
    srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "DICOM TLS is not supported: modality with AET %s has UseDicomTls", m->aet);
    if (err) err->http_status = 500;
    return true;
}

static void ignore_answer(void *ctx, const struct DcmObject *obj)
{
    (void)ctx;
    (void)obj;
}

bool scu_echo(SrvError *err, Srv *srv, const SrvModality *m, int timeout_s, bool check_find)
{
    if (tls_refused(err, m)) return false;
    DcmScuParams p = { local_aet(srv, m), m->aet, m->host, m->port,
                       timeout_s ? timeout_s : timeout_of(srv, m), DCM_SCU_ECHO, NULL, NULL, 0 };
    DcmError de = { 0 };
    DcmScu *s = dcm_scu_open(&de, &p);
    if (!s) return net_fail(err, &de);
    bool ok = dcm_scu_echo(&de, s);
    dcm_scu_close(s);
    if (!ok) return net_fail(err, &de);
    if (!check_find) return true;
    /* Orthanc's CheckFind: a study-level C-FIND for a made-up Study Instance UID (no answer
     * expected), over a second association, since ours propose only what they will use */
    char uid[SRV_UID_2_25_LEN];
    srv_uid_2_25_random(uid);
    DcmQrKey key = { 0x0020000d, uid };
    p.services = DCM_SCU_FIND;
    s = dcm_scu_open(&de, &p);
    uint16_t st = 0;
    ok = s && dcm_scu_find(&de, s, DCM_QR_STUDY_ROOT, IDX_STUDY, &key, 1, ignore_answer, NULL, &st);
    dcm_scu_close(s);
    if (!ok) {
        SRV_LOG_INFO("scu", "echo to %s: C-FIND check failed: %s", m->aet, de.message);
        return srv_fail(err, SRV_DICOM_FIND_UNAVAILABLE, "Remote AET is %s", m->aet);
    }
    return true;
}

/* ---- store ------------------------------------------------------------------------------ */

struct ScuStore {
    Srv *srv;
    SrvModality m;
    RetrieveList list;
    cJSON *parents;          /* the resources asked, as given */
    size_t next;             /* next item to send */
    size_t failed;
    DcmScu *scu;
    char move_aet[65];
    uint16_t move_id;
    bool async;
    int priority;
};

void scu_store_free(ScuStore *s)
{
    if (!s) return;
    dcm_scu_close(s->scu);
    retrieve_list_cleanup(&s->list);
    cJSON_Delete(s->parents);
    free(s);
}

ScuStore *scu_store_new(SrvError *err, Srv *srv, const SrvModality *m, const cJSON *body)
{
    ScuStore *s = calloc(1, sizeof *s);
    if (!s) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    s->srv = srv;
    s->m = *m;
    const cJSON *res = body;
    if (cJSON_IsObject(body)) {
        res = cJSON_GetObjectItem(body, "Resources");
        s->async = cJSON_IsTrue(cJSON_GetObjectItem(body, "Asynchronous")) ||
                   cJSON_IsFalse(cJSON_GetObjectItem(body, "Synchronous"));
        const cJSON *pr = cJSON_GetObjectItem(body, "Priority");
        if (cJSON_IsNumber(pr)) s->priority = (int)pr->valuedouble;
        const cJSON *ma = cJSON_GetObjectItem(body, "MoveOriginatorAet");
        if (cJSON_IsString(ma)) snprintf(s->move_aet, sizeof s->move_aet, "%s", ma->valuestring);
        const cJSON *mi = cJSON_GetObjectItem(body, "MoveOriginatorID");
        if (cJSON_IsNumber(mi)) s->move_id = (uint16_t)mi->valuedouble;
    }
    /* Orthanc's rules and errors (all BadFileFormat): an ID, a list of IDs, or an object
     * whose "Resources" is a list; an empty list stores nothing */
    const char *bad = NULL;
    if (cJSON_IsObject(body) && !res) bad = "Missing field in JSON: \"Resources\"";
    else if (cJSON_IsObject(body) && !cJSON_IsArray(res)) bad = "JSON field \"Resources\" must contain an array";
    else if (!cJSON_IsArray(res) && !cJSON_IsString(res)) bad = "Must provide a JSON object, or a JSON array of strings";
    if (bad) {
        scu_store_free(s);
        srv_fail(err, SRV_BAD_FILE_FORMAT, "%s", bad);
        return NULL;
    }
    s->parents = cJSON_CreateArray();
    size_t n = cJSON_IsArray(res) ? (size_t)cJSON_GetArraySize(res) : 1;
    RetrieveResource *rr = calloc(n ? n : 1, sizeof *rr);
    if (!s->parents || !rr) {
        free(rr);
        scu_store_free(s);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *it = cJSON_IsArray(res) ? cJSON_GetArrayItem(res, (int)i) : res;
        if (!cJSON_IsString(it) || !srv_is_orthanc_id(it->valuestring)) {
            free(rr);
            scu_store_free(s);
            if (!cJSON_IsString(it))
                srv_fail(err, SRV_BAD_FILE_FORMAT, "Resources to be exported must be specified as a JSON array of strings");
            else
                srv_fail(err, SRV_BAD_FILE_FORMAT, "This string is not a valid Orthanc identifier: %.100s", it->valuestring);
            return NULL;
        }
        rr[i].level = -1;
        rr[i].id = it->valuestring;
        cJSON_AddItemToArray(s->parents, cJSON_CreateString(it->valuestring));
    }
    bool ok = n == 0 || retrieve_list(err, srv, rr, n, &s->list);
    free(rr);
    if (!ok) {
        scu_store_free(s);
        return NULL;
    }
    return s;
}

bool scu_store_async(const ScuStore *s) { return s->async; }
int scu_store_priority(const ScuStore *s) { return s->priority; }

/* Opens the association for every SOP class / syntax of the list. */
static bool store_open(SrvError *err, ScuStore *s)
{
    if (s->scu) return true;
    if (tls_refused(err, &s->m)) return false;
    size_t n = s->list.n;
    const char **cls = calloc(n ? n : 1, sizeof *cls), **ts = calloc(n ? n : 1, sizeof *ts);
    if (!cls || !ts) {
        free(cls);
        free(ts);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        cls[i] = s->list.items[i].sop_class_uid;
        ts[i] = s->list.items[i].transfer_syntax;
    }
    DcmScuParams p = { local_aet(s->srv, &s->m), s->m.aet, s->m.host, s->m.port,
                       timeout_of(s->srv, &s->m), DCM_SCU_STORE, cls, ts, n };
    DcmError de = { 0 };
    s->scu = dcm_scu_open(&de, &p);
    free(cls);
    free(ts);
    return s->scu || net_fail(err, &de);
}

typedef struct StoreSink {
    ScuStore *s;
    bool network_failed;
} StoreSink;

static int store_file(void *ctx, SrvError *err, const RetrieveFile *f)
{
    StoreSink *k = ctx;
    DcmStoreFile sf, next;
    retrieve_store_file(f, &sf, &next);
    DcmError de = { 0 };
    uint16_t st = 0;
    if (!dcm_scu_store(&de, k->s->scu, &sf, k->s->move_aet[0] ? k->s->move_aet : NULL,
                       k->s->move_id, &st)) {
        k->network_failed = true;
        net_fail(err, &de);
        return RETRIEVE_ABORT;
    }
    if (st != 0 && (st & 0xF000) != 0xB000) {
        SRV_LOG_WARN("scu", "C-STORE of %s to %s answered 0x%04X", f->item->id, k->s->m.aet, st);
        return RETRIEVE_FAILED;
    }
    return st ? RETRIEVE_WARNING : RETRIEVE_SENT;
}

/* Sends items [s->next, s->next + count). */
static bool store_some(SrvError *err, ScuStore *s, size_t count)
{
    if (s->next >= s->list.n) return true; /* nothing (left) to send: no association */
    if (!store_open(err, s)) return false;
    RetrieveList part = s->list;
    part.n = s->next + count < s->list.n ? s->next + count : s->list.n;
    StoreSink k = { s, false };
    RetrieveSink sink = { store_file, NULL, &k };
    RetrieveStats st;
    bool ok = retrieve_run(err, s->srv, &part, s->next, &sink, &st, NULL);
    s->failed += st.failed;
    s->next = part.n;
    if (!ok) {
        dcm_scu_close(s->scu);
        s->scu = NULL;
    }
    return ok;
}

cJSON *scu_store_result(const ScuStore *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "Description", "REST API");
    cJSON_AddNumberToObject(o, "FailedInstancesCount", (double)s->failed);
    cJSON_AddNumberToObject(o, "InstancesCount", (double)s->list.n);
    cJSON_AddStringToObject(o, "LocalAet", local_aet(s->srv, &s->m));
    if (cJSON_GetArraySize(s->parents)) /* Orthanc leaves it out when there were none */
        cJSON_AddItemToObject(o, "ParentResources", cJSON_Duplicate(s->parents, true));
    cJSON_AddStringToObject(o, "RemoteAet", s->m.aet);
    return o;
}

bool scu_store_run(SrvError *err, ScuStore *s)
{
    bool ok = store_some(err, s, s->list.n);
    dcm_scu_close(s->scu);
    s->scu = NULL;
    if (ok && s->failed)
        return srv_fail(err, SRV_NETWORK_PROTOCOL, "%zu of %zu instance(s) refused by %s", s->failed,
                        s->list.n, s->m.aet);
    return ok;
}

static int job_step(void *p, SrvError *err)
{
    ScuStore *s = p;
    if (s->next >= s->list.n) return JOB_STEP_DONE;
    if (!store_some(err, s, 1)) return JOB_STEP_FAILURE;
    return s->next >= s->list.n ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}

static bool job_finish(void *p, SrvError *err)
{
    ScuStore *s = p;
    dcm_scu_close(s->scu);
    s->scu = NULL;
    if (s->failed)
        return srv_fail(err, SRV_NETWORK_PROTOCOL, "%zu of %zu instance(s) refused by %s", s->failed,
                        s->list.n, s->m.aet);
    return true;
}

static double job_progress(void *p)
{
    ScuStore *s = p;
    return s->list.n ? (double)s->next / (double)s->list.n : 1.0;
}

static cJSON *job_content(void *p) { return scu_store_result(p); }

static void job_reset(void *p)
{
    ScuStore *s = p;
    dcm_scu_close(s->scu);
    s->scu = NULL;
    s->next = 0;
    s->failed = 0;
}

static void job_free(void *p) { scu_store_free(p); }

const JobType scu_store_job_type = {
    .name = "DicomModalityStore",
    .max_parallel = 1,
    .step = job_step,
    .finish = job_finish,
    .progress = job_progress,
    .content = job_content,
    .serialize = NULL, /* not saved: a restart does not resend */
    .reset = job_reset,
    .free = job_free,
    .unserialize = NULL,
};

bool scu_store_submit(SrvError *err, ScuStore *s, char job_id[JOB_ID_LEN])
{
    return jobs_submit(err, &scu_store_job_type, s, s->priority, job_id);
}

/* ---- queries ----------------------------------------------------------------------------- */

typedef struct Query {
    char id[STO_UUID_LEN];
    char modality[128];
    int level;
    cJSON *query;   /* {"PatientName": "...", ...} as given (names) */
    cJSON *answers; /* array of /tags-format objects */
} Query;

static pthread_mutex_t g_qmu = PTHREAD_MUTEX_INITIALIZER;
static Query *g_queries; /* oldest first */
static size_t g_nq;

static void query_clear(Query *q)
{
    cJSON_Delete(q->query);
    cJSON_Delete(q->answers);
    memset(q, 0, sizeof *q);
}

void scu_queries_cleanup(void)
{
    pthread_mutex_lock(&g_qmu);
    for (size_t i = 0; i < g_nq; i++) query_clear(&g_queries[i]);
    free(g_queries);
    g_queries = NULL;
    g_nq = 0;
    pthread_mutex_unlock(&g_qmu);
}

static const char *level_word(int l)
{
    static const char *const w[] = { "Patient", "Study", "Series", "Instance" };
    return l >= 0 && l < 4 ? w[l] : "?";
}

int scu_level_parse(const char *s)
{
    static const char *const w[] = { "Patient", "Study", "Series", "Instance" };
    for (int l = 0; l < 4; l++)
        if (s && !strcasecmp(s, w[l])) return l;
    if (s && !strcasecmp(s, "Image")) return 3;
    return -1;
}

typedef struct Answers {
    cJSON *arr;
} Answers;

static void on_answer(void *ctx, const struct DcmObject *obj)
{
    Answers *a = ctx;
    DcmError de = { 0 };
    cJSON *j = dcm_to_json(&de, obj, DCM_JSON_FULL, 0);
    if (j) cJSON_AddItemToArray(a->arr, j);
}

/* Query keys from a JSON object of names/tags -> DcmQrKey (strings borrowed from q). */
static bool keys_of(SrvError *err, const cJSON *q, DcmQrKey **keys, size_t *n)
{
    *n = 0;
    *keys = calloc((size_t)cJSON_GetArraySize(q) + 1, sizeof **keys);
    if (!*keys) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (const cJSON *k = q ? q->child : NULL; k; k = k->next) {
        uint32_t tag;
        if (!dcm_tag_parse(k->string, &tag)) {
            free(*keys);
            return srv_fail(err, SRV_UNKNOWN_DICOM_TAG, "unknown DICOM tag \"%s\" in Query", k->string);
        }
        if (!cJSON_IsString(k)) {
            free(*keys);
            return srv_fail(err, SRV_BAD_REQUEST, "the value of \"%s\" must be a string", k->string);
        }
        (*keys)[*n].tag = tag;
        (*keys)[(*n)++].value = k->valuestring;
    }
    return true;
}

/* The identifying keys of a level, always returned by a query (Orthanc adds them too). */
static const uint32_t ident_tags[] = { 0x00100020, 0x0020000d, 0x0020000e, 0x00080018 };

bool scu_query(SrvError *err, Srv *srv, const SrvModality *m, const cJSON *body,
               char id[STO_UUID_LEN])
{
    const cJSON *lv = cJSON_GetObjectItem(body, "Level");
    const cJSON *q = cJSON_GetObjectItem(body, "Query");
    int level = cJSON_IsString(lv) ? scu_level_parse(lv->valuestring) : -1;
    if (level < 0 || (q && !cJSON_IsObject(q)))
        return srv_fail(err, SRV_BAD_REQUEST, "a query needs \"Level\" (Patient, Study, Series, Instance) and \"Query\" (an object)");
    if (tls_refused(err, m)) return false;
    DcmQrKey *keys = NULL;
    size_t n = 0;
    if (!keys_of(err, q, &keys, &n)) return false;
    /* add the identifying keys of the level and its parents when absent */
    DcmQrKey *all = calloc(n + 4, sizeof *all);
    if (!all) {
        free(keys);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    memcpy(all, keys, n * sizeof *keys);
    size_t na = n;
    for (int l = 0; l <= level; l++) {
        bool have = false;
        for (size_t i = 0; i < n; i++) have = have || all[i].tag == ident_tags[l];
        if (!have) all[na++] = (DcmQrKey){ ident_tags[l], "" };
    }
    free(keys);
    Answers a = { cJSON_CreateArray() };
    DcmScuParams p = { local_aet(srv, m), m->aet, m->host, m->port, timeout_of(srv, m),
                       DCM_SCU_FIND, NULL, NULL, 0 };
    DcmError de = { 0 };
    DcmScu *s = a.arr ? dcm_scu_open(&de, &p) : NULL;
    uint16_t st = 0;
    bool ok = s && dcm_scu_find(&de, s, level == IDX_PATIENT ? DCM_QR_PATIENT_ROOT : DCM_QR_STUDY_ROOT,
                                level, all, na, on_answer, &a, &st);
    dcm_scu_close(s);
    free(all);
    if (!ok) {
        cJSON_Delete(a.arr);
        return a.arr ? net_fail(err, &de) : srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    Query nq = { 0 };
    sto_uuid_new(nq.id);
    snprintf(nq.modality, sizeof nq.modality, "%s", m->name);
    nq.level = level;
    nq.query = q ? cJSON_Duplicate(q, true) : cJSON_CreateObject();
    nq.answers = a.arr;
    pthread_mutex_lock(&g_qmu);
    size_t cap = (size_t)(srv->cfg.query_retrieve_size > 0 ? srv->cfg.query_retrieve_size : 100);
    if (g_nq >= cap) {
        query_clear(&g_queries[0]);
        memmove(&g_queries[0], &g_queries[1], (g_nq - 1) * sizeof *g_queries);
        g_nq--;
    }
    Query *grown = realloc(g_queries, (g_nq + 1) * sizeof *grown);
    if (!grown) {
        pthread_mutex_unlock(&g_qmu);
        query_clear(&nq);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    g_queries = grown;
    g_queries[g_nq++] = nq;
    pthread_mutex_unlock(&g_qmu);
    snprintf(id, STO_UUID_LEN, "%s", nq.id);
    return true;
}

/* A copy of a query (JSON duplicated), g_qmu not held afterwards. */
static bool query_copy(const char *id, Query *out)
{
    bool found = false;
    pthread_mutex_lock(&g_qmu);
    for (size_t i = 0; i < g_nq && !found; i++)
        if (!strcmp(g_queries[i].id, id)) {
            *out = g_queries[i];
            out->query = cJSON_Duplicate(g_queries[i].query, true);
            out->answers = cJSON_Duplicate(g_queries[i].answers, true);
            found = true;
        }
    pthread_mutex_unlock(&g_qmu);
    return found;
}

cJSON *scu_queries_json(void)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&g_qmu);
    for (size_t i = 0; a && i < g_nq; i++) cJSON_AddItemToArray(a, cJSON_CreateString(g_queries[i].id));
    pthread_mutex_unlock(&g_qmu);
    return a;
}

bool scu_query_delete(SrvError *err, const char *id)
{
    bool found = false;
    pthread_mutex_lock(&g_qmu);
    for (size_t i = 0; i < g_nq && !found; i++)
        if (!strcmp(g_queries[i].id, id)) {
            query_clear(&g_queries[i]);
            memmove(&g_queries[i], &g_queries[i + 1], (g_nq - i - 1) * sizeof *g_queries);
            g_nq--;
            found = true;
        }
    pthread_mutex_unlock(&g_qmu);
    return found || srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown query %s", id);
}

/* Simplified view of one /tags-format answer: {"PatientName": "value", ...}. */
static cJSON *simplify(const cJSON *full)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *e = full ? full->child : NULL; o && e; e = e->next) {
        const cJSON *name = cJSON_GetObjectItem(e, "Name");
        const cJSON *v = cJSON_GetObjectItem(e, "Value");
        const char *key = cJSON_IsString(name) ? name->valuestring : e->string;
        cJSON_AddItemToObject(o, key, cJSON_IsString(v) ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull());
    }
    return o;
}

bool scu_query_get(SrvError *err, const char *id, const char *what, int answer, bool simplified,
                   cJSON **out)
{
    Query q;
    *out = NULL;
    if (!query_copy(id, &q)) return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown query %s", id);
    int na = cJSON_GetArraySize(q.answers);
    if (!what) {
        *out = cJSON_CreateArray();
        const char *const items[] = { "answers", "level", "modality", "query", "retrieve" };
        for (size_t i = 0; *out && i < 5; i++) cJSON_AddItemToArray(*out, cJSON_CreateString(items[i]));
    } else if (!strcmp(what, "answers")) {
        *out = cJSON_CreateArray();
        for (int i = 0; *out && i < na; i++) {
            if (simplified) {
                cJSON_AddItemToArray(*out, simplify(cJSON_GetArrayItem(q.answers, i)));
            } else {
                char b[16];
                snprintf(b, sizeof b, "%d", i);
                cJSON_AddItemToArray(*out, cJSON_CreateString(b));
            }
        }
    } else if (!strcmp(what, "content")) {
        if (answer < 0 || answer >= na) {
            query_clear(&q);
            return srv_fail(err, SRV_UNKNOWN_RESOURCE, "query %s has no answer %d", id, answer);
        }
        const cJSON *a = cJSON_GetArrayItem(q.answers, answer);
        *out = simplified ? simplify(a) : cJSON_Duplicate(a, true);
    } else if (!strcmp(what, "level")) {
        *out = cJSON_CreateString(level_word(q.level));
    } else if (!strcmp(what, "modality")) {
        *out = cJSON_CreateString(q.modality);
    } else if (!strcmp(what, "query")) {
        *out = cJSON_Duplicate(q.query, true);
    } else {
        query_clear(&q);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown query item %s", what);
    }
    query_clear(&q);
    return *out || srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
}

/* The value of tag in a /tags-format answer, or NULL. */
static const char *answer_value(const cJSON *a, uint32_t tag)
{
    char key[16];
    snprintf(key, sizeof key, "%04x,%04x", tag >> 16, tag & 0xffff);
    const cJSON *e = cJSON_GetObjectItem(a, key);
    const cJSON *v = e ? cJSON_GetObjectItem(e, "Value") : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool scu_move(SrvError *err, Srv *srv, const SrvModality *m, int level, const DcmQrKey *keys,
                     size_t n, const char *target, cJSON **result)
{
    if (tls_refused(err, m)) return false;
    DcmScuParams p = { local_aet(srv, m), m->aet, m->host, m->port, timeout_of(srv, m),
                       DCM_SCU_MOVE, NULL, NULL, 0 };
    DcmError de = { 0 };
    DcmScu *s = dcm_scu_open(&de, &p);
    uint16_t st = 0;
    DcmQrCounts c = { 0, 0, 0 };
    const char *dest = target && *target ? target : srv->cfg.dicom_aet;
    bool ok = s && dcm_scu_move(&de, s, level == IDX_PATIENT ? DCM_QR_PATIENT_ROOT : DCM_QR_STUDY_ROOT,
                                level, keys, n, dest, &st, &c);
    dcm_scu_close(s);
    if (!ok) return net_fail(err, &de);
    if (result) {
        *result = cJSON_CreateObject();
        cJSON_AddStringToObject(*result, "Description", "REST API");
        cJSON_AddStringToObject(*result, "LocalAet", local_aet(srv, m));
        cJSON_AddStringToObject(*result, "RemoteAet", m->aet);
        cJSON_AddStringToObject(*result, "TargetAet", dest);
        cJSON_AddNumberToObject(*result, "CompletedCount", c.completed);
        cJSON_AddNumberToObject(*result, "FailedCount", c.failed);
        cJSON_AddNumberToObject(*result, "WarningCount", c.warning);
    }
    return true;
}

bool scu_move_json(SrvError *err, Srv *srv, const SrvModality *m, int level, const cJSON *keys,
                   const char *target, cJSON **result)
{
    DcmQrKey *k = NULL;
    size_t n = 0;
    if (!cJSON_IsObject(keys)) return srv_fail(err, SRV_BAD_REQUEST, "keys must be an object");
    if (!keys_of(err, keys, &k, &n)) return false;
    bool ok = scu_move(err, srv, m, level, k, n, target, result);
    free(k);
    return ok;
}

bool scu_query_retrieve(SrvError *err, Srv *srv, const char *id, int answer, const char *target,
                        cJSON **result)
{
    Query q;
    if (!query_copy(id, &q)) return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown query %s", id);
    SrvModality m;
    if (!modality_by_name(srv, q.modality, &m)) {
        query_clear(&q);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "the modality %s of query %s is gone", q.modality, id);
    }
    int na = cJSON_GetArraySize(q.answers);
    int from = answer < 0 ? 0 : answer, to = answer < 0 ? na : answer + 1;
    if (answer >= na) {
        query_clear(&q);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "query %s has no answer %d", id, answer);
    }
    bool ok = true;
    cJSON *all = cJSON_CreateArray();
    for (int i = from; ok && i < to; i++) {
        const cJSON *a = cJSON_GetArrayItem(q.answers, i);
        DcmQrKey keys[4];
        size_t nk = 0;
        for (int l = q.level == IDX_PATIENT ? 0 : 1; l <= q.level; l++) {
            const char *v = answer_value(a, ident_tags[l]);
            if (v) keys[nk++] = (DcmQrKey){ ident_tags[l], v };
        }
        if (q.level == IDX_PATIENT) {
            const char *v = answer_value(a, ident_tags[0]);
            nk = 0;
            if (v) keys[nk++] = (DcmQrKey){ ident_tags[0], v };
        }
        cJSON *r = NULL;
        ok = scu_move(err, srv, &m, q.level, keys, nk, target, &r);
        if (r) cJSON_AddItemToArray(all, r);
    }
    query_clear(&q);
    if (!ok) {
        cJSON_Delete(all);
        return false;
    }
    *result = all;
    return true;
}
