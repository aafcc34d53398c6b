/* test_jobs.c -- unit tests of the jobs engine (server/jobs.c) with a counting job type, and
 * of the DICOM cache (server/cache.c) on a real store in a temp dir: hits, the byte bound,
 * pinned entries surviving eviction and invalidation, objects larger than the cache; and of
 * the profile table generated from the CSV (dicom/). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

/* ---- a counting job: n steps, each sleeping `us` microseconds ---------------------------- */
typedef struct Count {
    size_t n;
    _Atomic size_t next, done;
    unsigned us;
    bool fail_at_half;
    _Atomic int finished;
    _Atomic int *freed;
} Count;

static int count_step(void *p, SrvError *err)
{
    Count *c = p;
    size_t i = atomic_fetch_add(&c->next, 1);
    if (i >= c->n) return JOB_STEP_DONE;
    if (c->us) usleep(c->us);
    if (c->fail_at_half && i == c->n / 2) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "step %zu failed", i);
        return JOB_STEP_FAILURE;
    }
    atomic_fetch_add(&c->done, 1);
    return i + 1 >= c->n ? JOB_STEP_DONE : JOB_STEP_CONTINUE;
}
static bool count_finish(void *p, SrvError *err) { (void)err; atomic_store(&((Count *)p)->finished, 1); return true; }
static double count_progress(void *p) { Count *c = p; return c->n ? (double)atomic_load(&c->done) / (double)c->n : 1; }
static cJSON *count_content(void *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "Done", (double)atomic_load(&((Count *)p)->done));
    return o;
}
static void count_reset(void *p) { Count *c = p; atomic_store(&c->next, 0); atomic_store(&c->done, 0); }
static void count_free(void *p) { Count *c = p; if (c->freed) atomic_fetch_add(c->freed, 1); free(c); }

static const JobType count_type = {
    .name = "Count", .max_parallel = 2, .step = count_step, .finish = count_finish,
    .progress = count_progress, .content = count_content, .reset = count_reset, .free = count_free,
};

static Count *count_new(size_t n, unsigned us, _Atomic int *freed)
{
    Count *c = calloc(1, sizeof *c);
    c->n = n;
    c->us = us;
    c->freed = freed;
    return c;
}

static Srv jsrv;

static int wait_state(const char *id, int state, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (jobs_state(id) == state) return state;
        usleep(1000);
    }
    return jobs_state(id);
}

static void test_jobs_run_to_success(void)
{
    char id[JOB_ID_LEN];
    SrvError e = { 0 };
    Count *c = count_new(50, 200, NULL);
    CHECK(jobs_submit(&e, &count_type, c, 0, id));
    cJSON *content = NULL;
    CHECK(jobs_wait(&e, id, &content));
    CHECK(cJSON_GetObjectItem(content, "Done")->valueint == 50);
    cJSON_Delete(content);
    cJSON *j = jobs_json(id);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "State")), "Success");
    CHECK(cJSON_GetObjectItem(j, "Progress")->valueint == 100);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Type")), "Count");
    CHECK(cJSON_GetObjectItem(j, "CompletionTime") != NULL);
    CHECK(cJSON_GetObjectItem(j, "ErrorCode")->valueint == 0);
    cJSON_Delete(j);
}

static void test_jobs_failure_and_resubmit(void)
{
    char id[JOB_ID_LEN];
    SrvError e = { 0 }, je = { 0 };
    Count *c = count_new(10, 0, NULL);
    c->fail_at_half = true;
    CHECK(jobs_submit(&e, &count_type, c, 0, id));
    CHECK(!jobs_wait(&je, id, NULL));
    CHECK(je.code == SRV_BAD_FILE_FORMAT);
    CHECK(jobs_state(id) == JOB_FAILURE);
    CHECK(!jobs_action(&e, id, "pause") && e.code == SRV_BAD_SEQUENCE_OF_CALLS);
    c->fail_at_half = false; /* the engine owns c, but nothing runs it now */
    CHECK(jobs_action(&e, id, "resubmit"));
    CHECK(jobs_wait(&je, id, NULL));
}

static void test_jobs_cancel_running(void)
{
    char id[JOB_ID_LEN];
    SrvError e = { 0 }, je = { 0 };
    Count *c = count_new(100000, 1000, NULL);
    CHECK(jobs_submit(&e, &count_type, c, 0, id));
    CHECK(wait_state(id, JOB_RUNNING, 2000) == JOB_RUNNING);
    usleep(20000);
    CHECK(jobs_action(&e, id, "cancel"));
    CHECK(!jobs_wait(&je, id, NULL));
    CHECK(je.code == SRV_CANCELED_JOB);
    cJSON *j = jobs_json(id);
    CHECK(cJSON_GetObjectItem(j, "Progress")->valueint < 100);
    CHECK(cJSON_GetObjectItem(j, "ErrorCode")->valueint == SRV_CANCELED_JOB);
    cJSON_Delete(j);
}

static void test_jobs_pause_resume(void)
{
    char id[JOB_ID_LEN];
    SrvError e = { 0 }, je = { 0 };
    Count *c = count_new(400, 1000, NULL);
    CHECK(jobs_submit(&e, &count_type, c, 0, id));
    CHECK(wait_state(id, JOB_RUNNING, 2000) == JOB_RUNNING);
    CHECK(jobs_action(&e, id, "pause"));
    CHECK(wait_state(id, JOB_PAUSED, 2000) == JOB_PAUSED);
    size_t done = atomic_load(&c->done);
    usleep(20000);
    CHECK(atomic_load(&c->done) == done); /* nothing runs while paused */
    CHECK(jobs_action(&e, id, "resume"));
    CHECK(jobs_wait(&je, id, NULL));
    CHECK(atomic_load(&c->done) == 400);
}

static void test_jobs_priority(void)
{
    /* Both workers are taken by two one-step jobs that end at different times; then a low
     * and a high priority job are queued. The first worker to free up must take the high one
     * and only then the low one, so the order is deterministic (with two workers freeing up
     * together, both queued jobs would run at once and their order would be a race). */
    char slow[JOB_ID_LEN], slower[JOB_ID_LEN], low[JOB_ID_LEN], high[JOB_ID_LEN];
    SrvError e = { 0 }, je = { 0 };
    CHECK(jobs_submit(&e, &count_type, count_new(1, 100000, NULL), 0, slow));
    CHECK(jobs_submit(&e, &count_type, count_new(1, 600000, NULL), 0, slower));
    CHECK(wait_state(slow, JOB_RUNNING, 2000) == JOB_RUNNING);
    CHECK(wait_state(slower, JOB_RUNNING, 2000) == JOB_RUNNING);
    CHECK(jobs_submit(&e, &count_type, count_new(1, 0, NULL), 1, low));
    CHECK(jobs_submit(&e, &count_type, count_new(1, 0, NULL), 5, high));
    CHECK(jobs_wait(&je, high, NULL));
    CHECK(jobs_wait(&je, low, NULL));
    cJSON *h = jobs_json(high), *l = jobs_json(low);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(h, "CompletionTime")),
                 cJSON_GetStringValue(cJSON_GetObjectItem(l, "CompletionTime"))) <= 0);
    cJSON_Delete(h);
    cJSON_Delete(l);
    CHECK(jobs_wait(&je, slow, NULL));
    CHECK(jobs_wait(&je, slower, NULL));
}

static void test_jobs_history(void)
{
    /* JobsHistorySize is 3 here: after 6 more jobs only 3 finished ones are listed. */
    static _Atomic int freed; /* the engine frees the last jobs at jobs_stop */
    atomic_store(&freed, 0);
    SrvError e = { 0 };
    char id[JOB_ID_LEN];
    for (int i = 0; i < 6; i++) {
        CHECK(jobs_submit(&e, &count_type, count_new(1, 0, &freed), 0, id));
        CHECK(jobs_wait(&e, id, NULL));
    }
    cJSON *a = jobs_list_json(false);
    CHECK(cJSON_GetArraySize(a) == 3);
    cJSON_Delete(a);
    CHECK(atomic_load(&freed) == 3);
    JobsStats st;
    jobs_stats(&st);
    CHECK(st.success + st.failed == 3 && st.running == 0 && st.pending == 0);
    CHECK(jobs_json("no-such-job") == NULL);
    CHECK(!jobs_action(&e, "no-such-job", "cancel") && e.code == SRV_UNKNOWN_RESOURCE);
}

/* ---- cache -------------------------------------------------------------------------------- */

static Srv csrv;
static char ids[3][IDX_ID_LEN];

static bool read_file(const char *path, void **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len);
    bool ok = fread(*buf, 1, *len, f) == *len;
    fclose(f);
    return ok;
}

static void cache_setup(const char *dir)
{
    CfgError ce = { 0 };
    CHECK(cfg_load(&ce, NULL, &csrv.cfg));
    free(csrv.cfg.storage_dir);
    free(csrv.cfg.index_dir);
    csrv.cfg.storage_dir = strdup(dir);
    csrv.cfg.index_dir = strdup(dir);
    csrv.cfg.sync_storage = false;
    SrvError e = { 0 };
    CHECK(srv_open(&e, &csrv));
    /* three instances: the fixture with three SOP Instance UIDs (written by modify) */
    void *buf = NULL;
    size_t len = 0;
    CHECK(read_file(SRCDIR "/tests/data/dicom_fixture.dcm", &buf, &len));
    DcmError de = { 0 };
    for (int i = 0; i < 3; i++) {
        DcmObject *o = NULL;
        CHECK(dcm_parse(&de, buf, len, 0, &o));
        DcmModifySpec *s = dcm_modify_spec_new(&de, false, NULL, NULL);
        char uid[64];
        snprintf(uid, sizeof uid, "1.2.3.4.5.%d", i + 1);
        CHECK(dcm_modify_spec_replace(&de, s, 0x00080018u, uid));
        CHECK(dcm_modify(&de, o, s));
        void *out;
        size_t olen;
        CHECK(dcm_write(&de, o, NULL, &out, &olen));
        IngestResult r;
        IngestOrigin origin = { .origin = INGEST_ORIGIN_REST };
        CHECK(ingest_buffer(&e, &csrv, out, olen, &origin, &r));
        memcpy(ids[i], r.ids[IDX_INSTANCE], IDX_ID_LEN);
        free(out);
        dcm_modify_spec_free(s);
        dcm_object_destroy(o);
    }
    free(buf);
}

static void test_cache_hits_and_bound(void)
{
    SrvError e = { 0 };
    cache_configure((size_t)64 << 20);
    size_t bytes, count;
    uint64_t h0, m0, h1, m1;
    cache_counters(&h0, &m0);
    CacheEntry *a = cache_acquire(&e, &csrv, ids[0]);
    CHECK(a != NULL);
    size_t one = dcm_object_memory(cache_object(a));
    CHECK(one > 0);
    cache_release(a);
    a = cache_acquire(&e, &csrv, ids[0]);
    cache_release(a);
    cache_counters(&h1, &m1);
    CHECK(h1 - h0 == 1 && m1 - m0 == 1);
    cache_stats(&bytes, &count);
    CHECK(count == 1 && bytes == one);

    /* room for two: the third evicts the least recently used */
    cache_configure(one * 2 + one / 2);
    for (int i = 0; i < 3; i++) cache_release(cache_acquire(&e, &csrv, ids[i]));
    cache_stats(&bytes, &count);
    CHECK(count == 2 && bytes <= one * 2 + one / 2);
    cache_counters(&h0, &m0);
    cache_release(cache_acquire(&e, &csrv, ids[2])); /* most recent: a hit */
    cache_release(cache_acquire(&e, &csrv, ids[0])); /* evicted: a miss */
    cache_counters(&h1, &m1);
    CHECK(h1 - h0 == 1 && m1 - m0 == 1);

    /* pinned entries are never evicted; what does not fit is handed out uncached */
    cache_configure(one * 2 + one / 2);
    CacheEntry *p0 = cache_acquire(&e, &csrv, ids[0]);
    CacheEntry *p1 = cache_acquire(&e, &csrv, ids[1]);
    CacheEntry *p2 = cache_acquire(&e, &csrv, ids[2]);
    CHECK(p0 && p1 && p2);
    cache_stats(&bytes, &count);
    CHECK(count == 2 && bytes <= one * 2 + one / 2);
    char *v = NULL;
    DcmError de = { 0 };
    CHECK(dcm_get_string(&de, cache_object(p2), 0x00080018u, &v) == 1 && !strcmp(v, "1.2.3.4.5.3"));
    free(v);
    /* invalidate a pinned entry: gone from the cache, still readable until released */
    cache_invalidate(ids[0]);
    cache_stats(&bytes, &count);
    CHECK(count == 1);
    CHECK(dcm_get_string(&de, cache_object(p0), 0x00080018u, &v) == 1 && !strcmp(v, "1.2.3.4.5.1"));
    free(v);
    cache_release(p0);
    cache_release(p1);
    cache_release(p2);

    /* larger than the whole cache: used, never cached */
    cache_configure(one / 2);
    a = cache_acquire(&e, &csrv, ids[1]);
    CHECK(a != NULL);
    cache_stats(&bytes, &count);
    CHECK(count == 0 && bytes == 0);
    cache_release(a);

    CHECK(cache_acquire(&e, &csrv, "00000000-00000000-00000000-00000000-00000000") == NULL);
    CHECK(e.code == SRV_UNKNOWN_RESOURCE);
}

static void test_cache_invalidated_on_delete(void)
{
    SrvError e = { 0 };
    cache_configure((size_t)64 << 20);
    cache_release(cache_acquire(&e, &csrv, ids[2]));
    size_t count;
    cache_stats(NULL, &count);
    CHECK(count == 1);
    int rl;
    char rid[IDX_ID_LEN];
    CHECK(srv_delete(&e, &csrv, IDX_INSTANCE, ids[2], &rl, rid));
    cache_stats(NULL, &count);
    CHECK(count == 0);
    CHECK(cache_acquire(&e, &csrv, ids[2]) == NULL);
}

static void test_cache_concurrent(void);

typedef struct Th { int n; } Th;
static void *hammer(void *arg)
{
    Th *t = arg;
    SrvError e = { 0 };
    for (int i = 0; i < t->n; i++) {
        CacheEntry *c = cache_acquire(&e, &csrv, ids[i % 2]);
        if (c) {
            DcmObject *copy = NULL;
            DcmError de = { 0 };
            if (dcm_object_clone(&de, cache_object(c), &copy)) dcm_object_destroy(copy);
            cache_release(c);
        }
        if (i % 7 == 0) cache_invalidate(ids[i % 2]);
    }
    return NULL;
}

static void test_cache_concurrent(void)
{
    SrvError e = { 0 };
    (void)e;
    size_t one;
    cache_configure((size_t)64 << 20);
    CacheEntry *a = cache_acquire(&e, &csrv, ids[0]);
    one = dcm_object_memory(cache_object(a));
    cache_release(a);
    cache_configure(one + one / 2); /* room for one: constant eviction */
    pthread_t t[4];
    Th arg = { 300 };
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, &arg);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    size_t bytes, count;
    cache_stats(&bytes, &count);
    CHECK(bytes <= one + one / 2 && count <= 1);
}

/* ---- the generated profile ------------------------------------------------------------------ */

static void test_profile_table(void)
{
    CHECK(dcm_profile_action(0x00100010u) == 'Z');  /* PatientName */
    CHECK(dcm_profile_action(0x0020000Du) == 'U');  /* StudyInstanceUID */
    CHECK(dcm_profile_action(0x00081030u) == 'X');  /* StudyDescription */
    CHECK(dcm_profile_action(0x00120010u) == 'D');  /* Clinical Trial Sponsor Name: D */
    CHECK(dcm_profile_action(0x00081140u) == 'S');  /* Referenced Image Sequence */
    CHECK(dcm_profile_action(0x50020010u) == 'X');  /* curve data range 50xx */
    CHECK(dcm_profile_action(0x60223000u) == 'X');  /* overlay data range 60xx,3000 */
    CHECK(dcm_profile_action(0x00280010u) == 'K');  /* Rows: not listed */
    uint32_t t = 0;
    CHECK(dcm_tag_parse("PatientName", &t) && t == 0x00100010u);
    CHECK(dcm_tag_parse("0010,0020", &t) && t == 0x00100020u);
    CHECK(dcm_tag_parse("0020-000d", &t) && t == 0x0020000Du);
    CHECK(!dcm_tag_parse("NoSuchTagName", &t));
}

int main(void)
{
    char dir[] = "/tmp/mp-test-jobs.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    DcmError de = { 0 };
    dcm_global_init(&de);

    RUN(test_profile_table);

    CfgError ce = { 0 };
    cfg_load(&ce, NULL, &jsrv.cfg);
    jsrv.cfg.save_jobs = false;
    jsrv.cfg.jobs_history_size = 3;
    jsrv.cfg.concurrent_jobs = 2;
    SrvError e = { 0 };
    CHECK(jobs_start(&e, &jsrv));
    RUN(test_jobs_run_to_success);
    RUN(test_jobs_failure_and_resubmit);
    RUN(test_jobs_cancel_running);
    RUN(test_jobs_pause_resume);
    RUN(test_jobs_priority);
    RUN(test_jobs_history);
    jobs_stop();
    cfg_cleanup(&jsrv.cfg);

    cache_setup(dir);
    RUN(test_cache_hits_and_bound);
    RUN(test_cache_concurrent);
    RUN(test_cache_invalidated_on_delete);
    srv_close(&csrv);
    cfg_cleanup(&csrv.cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return CHECK_DONE();
}
