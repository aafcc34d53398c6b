/* stable.c -- StableSeries / StableStudy / StablePatient changes, StableAge seconds after the
 * last instance a resource received.
 *
 * DESIGN: one thread ("stable") and a list of the resources not yet stable, in the order they
 * were last touched. Every touch sets deadline = now + StableAge (one constant), so that
 * order is also the order of the deadlines: the head is always the next one due. A touch
 * finds its entry through a small hash table (chained, doubled when it grows past 1 entry per
 * bucket) and moves it to the tail: O(1) per ingest, no heap, no scan. The thread sleeps on a
 * CLOCK_MONOTONIC condvar until the head's deadline, or without timeout while the list is
 * empty: an idle server never wakes it. A touch signals only when the list was empty (a new
 * head is always the farthest deadline otherwise). At the deadline it logs the change through
 * idx_change_add_stable (with the lock released), skipping resources deleted meanwhile. On a
 * shared index (several processes) that call logs the change once across processes and may
 * answer "not yet, another process updated it N s ago": the entry is then put back at its
 * place in deadline order (the one case where a deadline is not now + StableAge).
 * After a restart every resource counts as stable (as in Orthanc: the unstable list lives in
 * memory); IsStable in the REST answers reads LastUpdate + StableAge, which agrees.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"
#include "storage/storage.h"

typedef struct Entry {
    struct Entry *prev, *next;   /* deadline order */
    struct Entry *hnext;         /* hash chain */
    int level;
    char id[IDX_ID_LEN];
    struct timespec deadline;
} Entry;

struct SrvStable {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool stopping;
    Srv *srv;
    int age_s;
    Entry *head, *tail;
    Entry **buckets;
    size_t nbuckets, count;
    _Atomic uint64_t emitted;
};

static size_t hash_of(int level, const char *id)
{
    size_t h = 1469598103934665603ull ^ (size_t)level;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static void list_unlink(SrvStable *st, Entry *e)
{
    if (e->prev) e->prev->next = e->next; else st->head = e->next;
    if (e->next) e->next->prev = e->prev; else st->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(SrvStable *st, Entry *e)
{
    e->prev = st->tail;
    e->next = NULL;
    if (st->tail) st->tail->next = e; else st->head = e;
    st->tail = e;
}

static void hash_remove(SrvStable *st, Entry *e)
{
    Entry **pp = &st->buckets[hash_of(e->level, e->id) & (st->nbuckets - 1)];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    st->count--;
}

static void hash_grow(SrvStable *st)
{
    size_t nb = st->nbuckets * 2;
    Entry **b = calloc(nb, sizeof *b);
    if (!b) return; /* keep the longer chains */
    for (size_t i = 0; i < st->nbuckets; i++) {
        Entry *e = st->buckets[i];
        while (e) {
            Entry *next = e->hnext;
            size_t k = hash_of(e->level, e->id) & (nb - 1);
            e->hnext = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = nb;
}

static bool due(const struct timespec *d, const struct timespec *now)
{
    return now->tv_sec > d->tv_sec || (now->tv_sec == d->tv_sec && now->tv_nsec >= d->tv_nsec);
}

/* Puts e back, due in wait_s seconds, at its place in deadline order (lock held); dropped
 * when a touch made a new entry for it meanwhile (that one is due later). */
static void rearm(SrvStable *st, Entry *e, int wait_s)
{
    size_t k = hash_of(e->level, e->id) & (st->nbuckets - 1);
    for (Entry *o = st->buckets[k]; o; o = o->hnext) {
        if (o->level == e->level && strcmp(o->id, e->id) == 0) {
            free(e);
            return;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &e->deadline);
    e->deadline.tv_sec += wait_s;
    Entry *after = st->tail;
    while (after && (after->deadline.tv_sec > e->deadline.tv_sec ||
                     (after->deadline.tv_sec == e->deadline.tv_sec &&
                      after->deadline.tv_nsec > e->deadline.tv_nsec)))
        after = after->prev;
    e->prev = after;
    e->next = after ? after->next : st->head;
    if (e->next) e->next->prev = e; else st->tail = e;
    if (after) after->next = e; else st->head = e;
    e->hnext = st->buckets[k];
    st->buckets[k] = e;
    if (++st->count > st->nbuckets) hash_grow(st);
}

static void *run(void *arg)
{
    SrvStable *st = arg;
    srv_thread_name("stable");
    static const char *const types[IDX_LEVELS] = { "StablePatient", "StableStudy", "StableSeries", NULL };
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        if (!st->head) {
            pthread_cond_wait(&st->cond, &st->lock);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        Entry *e = st->head;
        if (!due(&e->deadline, &now)) {
            struct timespec d = e->deadline;
            pthread_cond_timedwait(&st->cond, &st->lock, &d);
            continue;
        }
        list_unlink(st, e);
        hash_remove(st, e);
        pthread_mutex_unlock(&st->lock);
        StoError se = { 0 };
        bool logged = false;
        int wait_s = 0;
        if (types[e->level]) {
            if (idx_change_add_stable(&se, st->srv->db, types[e->level], e->level, e->id,
                                      st->age_s, &logged, &wait_s))
                st->emitted += logged;
            else if (se.code != STO_ERR_NOT_FOUND) /* deleted meanwhile: nothing to say */
                SRV_LOG_WARN("stable", "cannot log %s for %s: %s", types[e->level], e->id, se.message);
        }
        pthread_mutex_lock(&st->lock);
        if (wait_s > 0) {
            /* another process updated it since our touch: wait for its deadline too (the
             * change then comes once even if that process is gone) */
            rearm(st, e, wait_s);
        } else {
            free(e);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

bool srv_stable_start(SrvError *err, Srv *srv)
{
    SrvStable *st = calloc(1, sizeof *st);
    if (!st) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    st->srv = srv;
    st->age_s = srv->cfg.stable_age > 0 ? srv->cfg.stable_age : 0;
    st->nbuckets = 256;
    st->buckets = calloc(st->nbuckets, sizeof *st->buckets);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&st->lock, NULL);
    if (!st->buckets || pthread_create(&st->thread, NULL, run, st) != 0) {
        pthread_cond_destroy(&st->cond);
        pthread_mutex_destroy(&st->lock);
        free(st->buckets);
        free(st);
        return srv_fail(err, SRV_INTERNAL, "cannot start the stability thread");
    }
    srv->stable = st;
    return true;
}

void srv_stable_stop(Srv *srv)
{
    SrvStable *st = srv->stable;
    if (!st) return;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->thread, NULL);
    for (Entry *e = st->head; e;) {
        Entry *next = e->next;
        free(e);
        e = next;
    }
    free(st->buckets);
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->lock);
    free(st);
    srv->stable = NULL;
}

void srv_stable_touch(Srv *srv, const char *patient, const char *study, const char *series)
{
    const char *ids[IDX_SERIES + 1] = { patient, study, series };
    SrvStable *st = srv->stable;
    if (!st) return;
    struct timespec d;
    clock_gettime(CLOCK_MONOTONIC, &d);
    d.tv_sec += st->age_s;
    pthread_mutex_lock(&st->lock);
    bool was_empty = st->head == NULL;
    /* series first, then study, then patient: the order the changes come out in */
    for (int level = IDX_SERIES; level >= IDX_PATIENT; level--) {
        size_t k = hash_of(level, ids[level]) & (st->nbuckets - 1);
        Entry *e = st->buckets[k];
        while (e && (e->level != level || strcmp(e->id, ids[level]) != 0)) e = e->hnext;
        if (e) {
            list_unlink(st, e);
        } else {
            if (!(e = calloc(1, sizeof *e))) {
                SRV_LOG_WARN("stable", "out of memory: %s will not be reported stable", ids[level]);
                continue;
            }
            e->level = level;
            snprintf(e->id, sizeof e->id, "%s", ids[level]);
            e->hnext = st->buckets[k];
            st->buckets[k] = e;
            if (++st->count > st->nbuckets) hash_grow(st);
        }
        e->deadline = d;
        list_append(st, e);
    }
    if (was_empty) pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

size_t srv_stable_pending(Srv *srv)
{
    SrvStable *st = srv->stable;
    if (!st) return 0;
    pthread_mutex_lock(&st->lock);
    size_t n = st->count;
    pthread_mutex_unlock(&st->lock);
    return n;
}

bool srv_stable_is_unstable(Srv *srv, int level, const char *id)
{
    SrvStable *st = srv->stable;
    if (!st || level < IDX_PATIENT || level > IDX_SERIES || !id) return false;
    pthread_mutex_lock(&st->lock);
    Entry *e = st->buckets[hash_of(level, id) & (st->nbuckets - 1)];
    while (e && (e->level != level || strcmp(e->id, id) != 0)) e = e->hnext;
    pthread_mutex_unlock(&st->lock);
    return e != NULL;
}
