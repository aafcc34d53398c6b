/* jobs.c -- the jobs engine.
 *
 * DESIGN: one list of jobs (active ones and the finished history) behind one mutex, and
 * ConcurrentJobs bio-style workers ("job-N"): a worker waits on `work` while no job is
 * eligible, takes the eligible job of highest priority (then oldest), runs ONE step of it
 * without the lock, and reports back. A job may run steps on several workers at once, up to
 * its type's max_parallel. A job's state only changes when no step of it is in flight: cancel
 * and pause set a request flag that stops new steps; the last step to return applies the
 * request (Failure/CanceledJob or Paused). When a step says there is nothing left to start,
 * the last one to return runs the type's finish() and the job ends in Success or Failure.
 * Every change is broadcast on `done` for jobs_wait().
 *
 * History: at most JobsHistorySize finished jobs are kept; the oldest finished ones are dropped
 * (and deleted from the index). A job waited on by jobs_wait() is referenced and freed only
 * when the last waiter lets go.
 *
 * Persistence (SaveJobs): a job's JSON ({ID, Type, State, Priority, CreationTime, ...,
 * Payload}) is written with idx_job_save on submit and on every state change, outside the
 * engine lock but under `save_lock`, so that saves of one job never go back in time. At start,
 * saved jobs come back: Pending and Running ones as Pending, reset to their beginning (a job
 * type makes a restart idempotent; a modification job regenerates the same UIDs, so instances
 * already written are AlreadyStored), Paused ones as Paused, finished ones into the history.
 * jobs_stop() saves Running jobs as they are, so a restart resumes them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "server/server.h"
#include "storage/storage.h"

typedef struct Job {
    char id[JOB_ID_LEN];
    const JobType *type;
    void *payload;
    int priority;
    int state;
    uint64_t seq;             /* submission order */
    uint64_t finish_seq;      /* completion order (history trimming) */
    int running;              /* steps in flight */
    int refs;                 /* jobs_wait() callers */
    bool exhausted;           /* a step said nothing is left to start */
    bool step_failed;
    bool cancel_req, pause_req;
    bool removed;             /* out of the list; freed when refs drop to 0 */
    SrvError err;
    double created, run_started, runtime, completed; /* wall clock seconds */
    struct Job *next;
} Job;

#define MAX_TYPES 8

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_mutex_t save_lock;
    Job *jobs;
    uint64_t seq, finish_seq;
    pthread_t *threads;
    int nthreads;
    bool stopping, started;
    Srv *srv;
    const JobType *types[MAX_TYPES];
    int ntypes;
    uint64_t completed;
    /* Several processes on one index (PostgreSQL): a "jobs-claim" thread takes over, every
     * JOBS_CLAIM_INTERVAL seconds, the saved jobs of processes that died. */
    pthread_t claim_thread;
    bool claim_started;
    pthread_cond_t claim_cond;
} E = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER, .save_lock = PTHREAD_MUTEX_INITIALIZER };

#define JOBS_CLAIM_INTERVAL 2

static const char *const state_names[] = { "Pending", "Running", "Success", "Failure", "Paused",
                                           "Retry" };

const char *jobs_state_name(int state)
{
    return state >= 0 && state <= JOB_RETRY ? state_names[state] : "Unknown";
}

static int state_from_name(const char *s)
{
    for (int i = 0; i <= JOB_RETRY; i++)
        if (s && !strcmp(s, state_names[i])) return i;
    return -1;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* "20261125T204400.123456" (UTC), Orthanc's format for job times. */
static void fmt_time(double t, char out[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[20];
    strftime(b, sizeof b, "%Y%m%dT%H%M%S", &tm);
    snprintf(out, 32, "%s.%06d", b, (int)((t - (double)s) * 1e6));
}

static double parse_time(const char *s)
{
    struct tm tm = { 0 };
    int us = 0;
    if (!s || sscanf(s, "%4d%2d%2dT%2d%2d%2d.%6d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + us / 1e6;
}

static bool is_final(int state) { return state == JOB_SUCCESS || state == JOB_FAILURE; }

static void job_free(Job *j)
{
    if (!j) return;
    if (j->payload && j->type->free) j->type->free(j->payload);
    free(j);
}

static Job *find(const char *id)
{
    for (Job *j = E.jobs; j; j = j->next)
        if (!strcmp(j->id, id)) return j;
    return NULL;
}

static int progress_pct(Job *j)
{
    if (j->state == JOB_SUCCESS) return 100;
    double p = j->type->progress ? j->type->progress(j->payload) : 0;
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    int pct = (int)(p * 100);
    return pct >= 100 && j->state != JOB_SUCCESS ? 99 : pct;
}

static double runtime_of(const Job *j)
{
    return j->runtime + (j->state == JOB_RUNNING ? now_s() - j->run_started : 0);
}

/* Orthanc's job JSON (lock held). */
static cJSON *job_json(Job *j)
{
    cJSON *o = cJSON_CreateObject();
    char t[32];
    fmt_time(j->completed, t);
    if (is_final(j->state)) cJSON_AddStringToObject(o, "CompletionTime", t);
    cJSON *content = j->type->content ? j->type->content(j->payload) : NULL;
    cJSON_AddItemToObject(o, "Content", content ? content : cJSON_CreateObject());
    fmt_time(j->created, t);
    cJSON_AddStringToObject(o, "CreationTime", t);
    cJSON_AddNumberToObject(o, "EffectiveRuntime", (double)(int64_t)(runtime_of(j) * 1000) / 1000.0);
    cJSON_AddNumberToObject(o, "ErrorCode", j->state == JOB_FAILURE ? j->err.code : 0);
    cJSON_AddStringToObject(o, "ErrorDescription",
                            srv_error_text(j->state == JOB_FAILURE ? j->err.code : SRV_SUCCESS));
    cJSON_AddStringToObject(o, "ErrorDetails", j->state == JOB_FAILURE ? j->err.message : "");
    cJSON_AddStringToObject(o, "ID", j->id);
    cJSON_AddNumberToObject(o, "Priority", j->priority);
    cJSON_AddNumberToObject(o, "Progress", progress_pct(j));
    cJSON_AddStringToObject(o, "State", jobs_state_name(j->state));
    fmt_time(now_s(), t);
    cJSON_AddStringToObject(o, "Timestamp", t);
    cJSON_AddStringToObject(o, "Type", j->type->name);
    return o;
}

/* The text saved in the index (lock held); NULL when the type is not saved. */
static char *job_saved_text(Job *j)
{
    if (!j->type->serialize) return NULL;
    cJSON *payload = j->type->serialize(j->payload);
    if (!payload) return NULL;
    cJSON *o = cJSON_CreateObject();
    char t[32];
    cJSON_AddStringToObject(o, "ID", j->id);
    cJSON_AddStringToObject(o, "Type", j->type->name);
    cJSON_AddStringToObject(o, "State", jobs_state_name(j->state));
    cJSON_AddNumberToObject(o, "Priority", j->priority);
    fmt_time(j->created, t);
    cJSON_AddStringToObject(o, "CreationTime", t);
    if (is_final(j->state)) {
        fmt_time(j->completed, t);
        cJSON_AddStringToObject(o, "CompletionTime", t);
    }
    cJSON_AddNumberToObject(o, "EffectiveRuntime", runtime_of(j));
    cJSON_AddNumberToObject(o, "ErrorCode", j->err.code);
    cJSON_AddStringToObject(o, "ErrorDetails", j->err.message);
    cJSON_AddItemToObject(o, "Payload", payload);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Saves the job's current state (call WITHOUT the engine lock; the job must be referenced or
 * otherwise kept alive by the caller). */
static void persist(Job *j)
{
    if (!E.srv || !E.srv->cfg.save_jobs) return;
    pthread_mutex_lock(&E.save_lock);
    pthread_mutex_lock(&E.lock);
    char *text = j->removed ? NULL : job_saved_text(j);
    char id[JOB_ID_LEN];
    memcpy(id, j->id, sizeof id);
    pthread_mutex_unlock(&E.lock);
    if (text) {
        StoError se = { 0 };
        if (!idx_job_save(&se, E.srv->db, id, text))
            SRV_LOG_WARN("jobs", "cannot save job %s: %s", id, se.message);
        free(text);
    }
    pthread_mutex_unlock(&E.save_lock);
}

static void unsave(const char *id)
{
    if (!E.srv || !E.srv->cfg.save_jobs) return;
    pthread_mutex_lock(&E.save_lock);
    StoError se = { 0 };
    if (!idx_job_delete(&se, E.srv->db, id)) SRV_LOG_WARN("jobs", "cannot delete saved job %s: %s", id, se.message);
    pthread_mutex_unlock(&E.save_lock);
}

/* Drops the oldest finished jobs beyond JobsHistorySize (lock held). Their IDs go to
 * dropped[] for unsave() after unlocking; returns how many. */
static size_t trim_history(char dropped[][JOB_ID_LEN], size_t max)
{
    size_t limit = E.srv ? (size_t)E.srv->cfg.jobs_history_size : 10, nfinished = 0, n = 0;
    for (Job *j = E.jobs; j; j = j->next)
        if (is_final(j->state)) nfinished++;
    while (nfinished > limit && n < max) {
        Job **oldest = NULL;
        for (Job **p = &E.jobs; *p; p = &(*p)->next)
            if (is_final((*p)->state) && (!oldest || (*p)->finish_seq < (*oldest)->finish_seq)) oldest = p;
        if (!oldest) break;
        Job *j = *oldest;
        *oldest = j->next;
        j->next = NULL;
        j->removed = true;
        memcpy(dropped[n++], j->id, JOB_ID_LEN);
        nfinished--;
        if (j->refs == 0) job_free(j);
    }
    return n;
}

static void set_final(Job *j, int state)
{
    if (j->state == JOB_RUNNING) j->runtime += now_s() - j->run_started;
    j->state = state;
    j->completed = now_s();
    j->finish_seq = ++E.finish_seq;
    E.completed++;
}

/* After a step returned or a request came while nothing runs (lock held): applies what is
 * due. Returns 1 when finish() must run (the caller runs it without the lock), else 0. */
static int settle(Job *j)
{
    if (j->running > 0 || (j->state != JOB_RUNNING && j->state != JOB_PENDING)) return 0;
    if (j->cancel_req) {
        j->cancel_req = j->pause_req = false;
        srv_fail(&j->err, SRV_CANCELED_JOB, "the job was canceled");
        set_final(j, JOB_FAILURE);
        return 0;
    }
    if (j->step_failed) {
        set_final(j, JOB_FAILURE);
        return 0;
    }
    if (j->pause_req) {
        j->pause_req = false;
        if (j->state == JOB_RUNNING) j->runtime += now_s() - j->run_started;
        j->state = JOB_PAUSED;
        return 0;
    }
    if (j->exhausted && j->state == JOB_RUNNING) return 1;
    return 0;
}

static Job *pick(void)
{
    Job *best = NULL;
    for (Job *j = E.jobs; j; j = j->next) {
        if (j->state != JOB_PENDING && j->state != JOB_RUNNING) continue;
        if (j->exhausted || j->step_failed || j->cancel_req || j->pause_req) continue;
        if (j->running >= (j->type->max_parallel > 0 ? j->type->max_parallel : 1)) continue;
        if (!best || j->priority > best->priority || (j->priority == best->priority && j->seq < best->seq))
            best = j;
    }
    return best;
}

/* Runs after a state change (lock held on entry and exit): finish() if due, history, saves,
 * broadcast. The lock is released meanwhile; j stays alive through a reference. */
static void after_change(Job *j)
{
    j->refs++;
    if (settle(j)) {
        j->running++; /* nobody else starts a step or settles meanwhile */
        pthread_mutex_unlock(&E.lock);
        SrvError e = { 0 };
        bool ok = !j->type->finish || j->type->finish(j->payload, &e);
        pthread_mutex_lock(&E.lock);
        j->running--;
        if (!ok) j->err = e;
        if (j->cancel_req && ok) j->cancel_req = false; /* too late: it is done */
        set_final(j, ok ? JOB_SUCCESS : JOB_FAILURE);
        SRV_LOG_INFO("jobs", "job %s (%s): %s", j->id, j->type->name, ok ? "Success" : e.message);
    } else if (j->state == JOB_FAILURE && j->running == 0) {
        SRV_LOG_INFO("jobs", "job %s (%s): Failure: %s", j->id, j->type->name, j->err.message);
    }
    char dropped[16][JOB_ID_LEN];
    size_t nd = trim_history(dropped, 16);
    pthread_cond_broadcast(&E.done);
    pthread_cond_broadcast(&E.work);
    pthread_mutex_unlock(&E.lock);
    persist(j);
    for (size_t i = 0; i < nd; i++) unsave(dropped[i]);
    pthread_mutex_lock(&E.lock);
    if (--j->refs == 0 && j->removed) job_free(j);
}

static void *worker(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "job-%d", (int)(intptr_t)arg);
    srv_thread_name(name);
    pthread_mutex_lock(&E.lock);
    for (;;) {
        Job *j;
        while (!E.stopping && !(j = pick())) pthread_cond_wait(&E.work, &E.lock);
        if (E.stopping) break;
        bool first = j->state == JOB_PENDING;
        if (first) {
            j->state = JOB_RUNNING;
            j->run_started = now_s();
        }
        j->running++;
        j->refs++;
        pthread_mutex_unlock(&E.lock);
        if (first) persist(j);
        SrvError e = { 0 };
        int r = j->type->step(j->payload, &e);
        pthread_mutex_lock(&E.lock);
        j->running--;
        j->refs--;
        if (r == JOB_STEP_FAILURE && !j->step_failed) {
            j->step_failed = true;
            j->err = e;
        } else if (r == JOB_STEP_DONE) {
            j->exhausted = true;
        }
        if (j->running == 0 && (j->exhausted || j->step_failed || j->cancel_req || j->pause_req))
            after_change(j);
        else if (j->refs == 0 && j->removed)
            job_free(j);
    }
    pthread_mutex_unlock(&E.lock);
    return NULL;
}

void jobs_register(const JobType *type)
{
    pthread_mutex_lock(&E.lock);
    for (int i = 0; i < E.ntypes; i++)
        if (E.types[i] == type) { pthread_mutex_unlock(&E.lock); return; }
    SRV_ASSERT(E.ntypes < MAX_TYPES);
    E.types[E.ntypes++] = type;
    pthread_mutex_unlock(&E.lock);
}

static void append(Job *j)
{
    Job **p = &E.jobs;
    while (*p) p = &(*p)->next;
    *p = j;
}

static void *claimer(void *arg);

/* idx_jobs_load / idx_jobs_claim callback: rebuilds one saved job. ctx non-NULL: the
 * workers are running, so the job is added under the engine lock and they are woken. */
static void restore_one(void *ctx, const char *id, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "Type");
    const JobType *t = NULL;
    for (int i = 0; i < E.ntypes && cJSON_IsString(type); i++)
        if (!strcmp(E.types[i]->name, type->valuestring)) t = E.types[i];
    SrvError err = { 0 };
    void *payload = NULL;
    if (!t || !t->unserialize ||
        !(payload = t->unserialize(&err, E.srv, cJSON_GetObjectItemCaseSensitive(o, "Payload")))) {
        SRV_LOG_WARN("jobs", "cannot restore saved job %s: %s", id, t ? err.message : "unknown type");
        cJSON_Delete(o);
        StoError se = { 0 };
        idx_job_delete(&se, E.srv->db, id);
        return;
    }
    Job *j = calloc(1, sizeof *j);
    if (!j) {
        t->free(payload);
        cJSON_Delete(o);
        return;
    }
    snprintf(j->id, sizeof j->id, "%s", id);
    j->type = t;
    j->payload = payload;
    const cJSON *v;
    j->priority = cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "Priority")) ? v->valueint : 0;
    j->created = parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "CreationTime")));
    j->runtime = cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "EffectiveRuntime")) ? v->valuedouble : 0;
    int st = state_from_name(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "State")));
    if (ctx) pthread_mutex_lock(&E.lock);
    if (is_final(st)) {
        j->state = st;
        j->completed = parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "CompletionTime")));
        j->err.code = cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "ErrorCode")) ? v->valueint : 0;
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "ErrorDetails"));
        snprintf(j->err.message, sizeof j->err.message, "%s", d ? d : "");
        j->finish_seq = ++E.finish_seq;
    } else {
        j->state = st == JOB_PAUSED ? JOB_PAUSED : JOB_PENDING;
        if (t->reset) t->reset(payload);
    }
    j->seq = ++E.seq;
    append(j);
    if (ctx) {
        pthread_cond_broadcast(&E.work);
        pthread_mutex_unlock(&E.lock);
    }
    SRV_LOG_INFO("jobs", "%s job %s (%s) as %s", ctx ? "took over the orphaned" : "restored",
                 id, t->name, jobs_state_name(st == JOB_PAUSED || is_final(st) ? st : JOB_PENDING));
    cJSON_Delete(o);
}

bool jobs_start(SrvError *err, Srv *srv)
{
    E.srv = srv;
    E.stopping = false;
    if (srv->cfg.save_jobs) {
        StoError se = { 0 };
        if (!idx_jobs_load(&se, srv->db, restore_one, NULL))
            SRV_LOG_WARN("jobs", "cannot load saved jobs: %s", se.message);
    }
    int n = srv->cfg.concurrent_jobs > 0 ? srv->cfg.concurrent_jobs : 1;
    E.threads = calloc((size_t)n, sizeof *E.threads);
    if (!E.threads) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&E.threads[i], NULL, worker, (void *)(intptr_t)(i + 1)) != 0) {
            E.nthreads = i;
            jobs_stop();
            return srv_fail(err, SRV_INTERNAL, "cannot start job workers");
        }
    }
    E.nthreads = n;
    E.started = true;
    if (srv->cfg.save_jobs && idx_shared(srv->db)) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&E.claim_cond, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&E.claim_thread, NULL, claimer, NULL) == 0)
            E.claim_started = true;
        else
            pthread_cond_destroy(&E.claim_cond);
    }
    pthread_mutex_lock(&E.lock);
    char dropped[16][JOB_ID_LEN];
    size_t nd = trim_history(dropped, 16);
    pthread_mutex_unlock(&E.lock);
    for (size_t i = 0; i < nd; i++) unsave(dropped[i]);
    return true;
}

/* The "jobs-claim" thread: sleeps JOBS_CLAIM_INTERVAL seconds on a monotonic condition,
 * then claims the saved jobs of dead processes (idx_jobs_claim). Started only when the index
 * is shared (several processes). */
static void *claimer(void *arg)
{
    (void)arg;
    srv_thread_name("jobs-claim");
    pthread_mutex_lock(&E.lock);
    while (!E.stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += JOBS_CLAIM_INTERVAL;
        while (!E.stopping && pthread_cond_timedwait(&E.claim_cond, &E.lock, &ts) == 0)
            ;
        if (E.stopping) break;
        pthread_mutex_unlock(&E.lock);
        StoError se = { 0 };
        if (!idx_jobs_claim(&se, E.srv->db, restore_one, &E))
            SRV_LOG_WARN("jobs", "cannot claim orphaned jobs: %s", se.message);
        pthread_mutex_lock(&E.lock);
    }
    pthread_mutex_unlock(&E.lock);
    return NULL;
}

void jobs_stop(void)
{
    pthread_mutex_lock(&E.lock);
    E.stopping = true;
    pthread_cond_broadcast(&E.work);
    pthread_cond_broadcast(&E.done);
    if (E.claim_started) pthread_cond_signal(&E.claim_cond);
    pthread_mutex_unlock(&E.lock);
    if (E.claim_started) {
        pthread_join(E.claim_thread, NULL);
        pthread_cond_destroy(&E.claim_cond);
        E.claim_started = false;
    }
    for (int i = 0; i < E.nthreads; i++) pthread_join(E.threads[i], NULL);
    free(E.threads);
    E.threads = NULL;
    E.nthreads = 0;
    /* Save what is unfinished as it is (Running stays Running: restored as Pending). */
    for (Job *j = E.jobs; j; j = j->next)
        if (!is_final(j->state)) persist(j);
    pthread_mutex_lock(&E.lock);
    while (E.jobs) {
        Job *j = E.jobs;
        E.jobs = j->next;
        j->removed = true;
        if (j->refs == 0) job_free(j); /* a waiter left by jobs_wait frees it */
    }
    E.started = false;
    pthread_mutex_unlock(&E.lock);
}

bool jobs_submit(SrvError *err, const JobType *type, void *payload, int priority, char id[JOB_ID_LEN])
{
    Job *j = calloc(1, sizeof *j);
    if (!j) {
        if (type->free) type->free(payload);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    sto_uuid_new(j->id);
    j->type = type;
    j->payload = payload;
    j->priority = priority;
    j->state = JOB_PENDING;
    j->created = now_s();
    pthread_mutex_lock(&E.lock);
    if (E.stopping || !E.started) {
        pthread_mutex_unlock(&E.lock);
        job_free(j);
        return srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "the jobs engine is not running");
    }
    j->seq = ++E.seq;
    append(j);
    memcpy(id, j->id, JOB_ID_LEN);
    j->refs++;
    SRV_LOG_INFO("jobs", "job %s (%s) submitted, priority %d", j->id, type->name, priority);
    pthread_cond_broadcast(&E.work);
    pthread_mutex_unlock(&E.lock);
    persist(j);
    pthread_mutex_lock(&E.lock);
    if (--j->refs == 0 && j->removed) job_free(j);
    pthread_mutex_unlock(&E.lock);
    return true;
}

bool jobs_wait(SrvError *job_err, const char *id, cJSON **content)
{
    if (content) *content = NULL;
    pthread_mutex_lock(&E.lock);
    Job *j = find(id);
    if (!j) {
        pthread_mutex_unlock(&E.lock);
        return srv_fail(job_err, SRV_UNKNOWN_RESOURCE, "unknown job %s", id);
    }
    j->refs++;
    while (!is_final(j->state) && !E.stopping && !j->removed) pthread_cond_wait(&E.done, &E.lock);
    bool ok = j->state == JOB_SUCCESS;
    if (!ok && job_err) {
        if (is_final(j->state)) *job_err = j->err;
        else srv_fail(job_err, SRV_INTERNAL, "the server is stopping");
    }
    if (content && j->type->content) *content = j->type->content(j->payload);
    if (--j->refs == 0 && j->removed) job_free(j);
    pthread_mutex_unlock(&E.lock);
    return ok;
}

cJSON *jobs_json(const char *id)
{
    pthread_mutex_lock(&E.lock);
    Job *j = find(id);
    cJSON *o = j ? job_json(j) : NULL;
    pthread_mutex_unlock(&E.lock);
    return o;
}

cJSON *jobs_list_json(bool expand)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&E.lock);
    for (Job *j = E.jobs; j; j = j->next)
        cJSON_AddItemToArray(a, expand ? job_json(j) : cJSON_CreateString(j->id));
    pthread_mutex_unlock(&E.lock);
    return a;
}

int jobs_state(const char *id)
{
    pthread_mutex_lock(&E.lock);
    Job *j = find(id);
    int s = j ? j->state : -1;
    pthread_mutex_unlock(&E.lock);
    return s;
}

bool jobs_action(SrvError *err, const char *id, const char *action)
{
    pthread_mutex_lock(&E.lock);
    Job *j = find(id);
    if (!j) {
        pthread_mutex_unlock(&E.lock);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown job %s", id);
    }
    bool ok = true;
    if (!strcmp(action, "cancel")) {
        if (j->state == JOB_PENDING || j->state == JOB_RUNNING) {
            j->cancel_req = true;
        } else if (j->state == JOB_PAUSED) {
            j->state = JOB_PENDING; /* settle() turns it into Failure at once */
            j->cancel_req = true;
        } else {
            ok = srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "job %s is %s: cannot cancel", id, jobs_state_name(j->state));
        }
    } else if (!strcmp(action, "pause")) {
        if (j->state == JOB_PENDING && j->running == 0) j->state = JOB_PAUSED;
        else if (j->state == JOB_RUNNING || j->state == JOB_PENDING) j->pause_req = true;
        else if (j->state != JOB_PAUSED)
            ok = srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "job %s is %s: cannot pause", id, jobs_state_name(j->state));
    } else if (!strcmp(action, "resume")) {
        if (j->state == JOB_PAUSED) {
            j->state = JOB_PENDING;
        } else if (j->pause_req) {
            j->pause_req = false;
        } else if (j->state != JOB_PENDING && j->state != JOB_RUNNING) {
            ok = srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "job %s is %s: cannot resume", id, jobs_state_name(j->state));
        }
    } else if (!strcmp(action, "resubmit")) {
        if (j->state == JOB_FAILURE && j->running == 0) {
            if (j->type->reset) j->type->reset(j->payload);
            j->state = JOB_PENDING;
            j->exhausted = j->step_failed = j->cancel_req = j->pause_req = false;
            memset(&j->err, 0, sizeof j->err);
            j->runtime = 0;
        } else {
            ok = srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "job %s is %s: only a failed job can be resubmitted",
                          id, jobs_state_name(j->state));
        }
    } else {
        ok = srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown job action %s", action);
    }
    if (ok) {
        SRV_LOG_INFO("jobs", "job %s: %s", id, action);
        after_change(j);
    }
    pthread_mutex_unlock(&E.lock);
    return ok;
}

void jobs_stats(JobsStats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&E.lock);
    for (Job *j = E.jobs; j; j = j->next) {
        switch (j->state) {
        case JOB_PENDING: case JOB_RETRY: out->pending++; break;
        case JOB_RUNNING: out->running++; break;
        case JOB_SUCCESS: out->success++; break;
        case JOB_FAILURE: out->failed++; break;
        case JOB_PAUSED: out->paused++; break;
        default: break;
        }
    }
    out->completed = E.completed;
    pthread_mutex_unlock(&E.lock);
}
