/* cache.c -- the parsed-DICOM cache: an LRU of full-parsed instances keyed by instance ID.
 *
 * DESIGN: one mutex guards a hash table (chained, power-of-two buckets) and a doubly-linked
 * LRU list (head = most recent). Entries count dcm_object_memory() bytes; the total of the
 * entries in the table never exceeds the bound: before inserting, unpinned entries are evicted
 * from the tail; when that is not enough (everything else pinned, or the object alone is
 * larger than the cache), the object is handed out uncached and freed at release. Loading
 * (index lookup, file read, parse) runs without the lock; two threads missing the same ID at
 * once may both load it, the second to insert keeps the first's entry. An invalidated entry
 * leaves the table at once; if pinned, its last release frees it (like Orthanc's
 * DicomCacheLocker, an object is only used while pinned). A load that overlapped an
 * invalidation (the generation counter moved between its index lookup and its insert) is
 * handed out uncached: it may be the file just deleted or replaced.
 *
 * Several processes (PostgreSQL index): another process's delete or overwrite arrives as an
 * invalidation (idx_invalidations, LISTEN/NOTIFY) on the "invalidate" thread, which drops the
 * entry; when the listening connection was lost, or the index is away, everything is dropped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

struct CacheEntry {
    char id[IDX_ID_LEN];
    DcmObject *obj;
    size_t bytes;
    unsigned pins;
    bool cached;              /* in the table and the LRU list */
    CacheEntry *hnext;        /* hash chain */
    CacheEntry *prev, *next;  /* LRU */
};

static struct {
    pthread_mutex_t lock;
    CacheEntry **buckets;
    size_t nbuckets;          /* power of two */
    CacheEntry *head, *tail;
    size_t bytes, count, max;
    uint64_t gen;             /* +1 at every invalidation and clear */
    bool configured;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER, .max = (size_t)128 << 20 };

static _Atomic uint64_t hits, misses;

static size_t hash_id(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static CacheEntry **slot(const char *id)
{
    CacheEntry **p = &C.buckets[hash_id(id) & (C.nbuckets - 1)];
    while (*p && strcmp((*p)->id, id) != 0) p = &(*p)->hnext;
    return p;
}

static void lru_unlink(CacheEntry *e)
{
    if (e->prev) e->prev->next = e->next; else C.head = e->next;
    if (e->next) e->next->prev = e->prev; else C.tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(CacheEntry *e)
{
    e->prev = NULL;
    e->next = C.head;
    if (C.head) C.head->prev = e; else C.tail = e;
    C.head = e;
}

static void entry_free(CacheEntry *e)
{
    if (!e) return;
    dcm_object_destroy(e->obj);
    free(e);
}

/* Takes e out of the table and the list (lock held). Returns it if it can be freed now. */
static CacheEntry *detach(CacheEntry *e)
{
    CacheEntry **p = slot(e->id);
    SRV_ASSERT(*p == e);
    *p = e->hnext;
    e->hnext = NULL;
    lru_unlink(e);
    e->cached = false;
    C.bytes -= e->bytes;
    C.count--;
    return e->pins == 0 ? e : NULL;
}

static bool ensure_buckets(void)
{
    if (C.buckets && C.count < C.nbuckets) return true;
    size_t n = C.nbuckets ? C.nbuckets * 2 : 1024;
    CacheEntry **b = calloc(n, sizeof *b);
    if (!b) return C.buckets != NULL; /* keep the old table: chains just get longer */
    for (size_t i = 0; i < C.nbuckets; i++) {
        for (CacheEntry *e = C.buckets[i], *nx; e; e = nx) {
            nx = e->hnext;
            size_t k = hash_id(e->id) & (n - 1);
            e->hnext = b[k];
            b[k] = e;
        }
    }
    free(C.buckets);
    C.buckets = b;
    C.nbuckets = n;
    return true;
}

void cache_configure(size_t max_bytes)
{
    cache_clear();
    pthread_mutex_lock(&C.lock);
    C.max = max_bytes;
    C.configured = true;
    pthread_mutex_unlock(&C.lock);
}

static DcmObject *load(SrvError *err, Srv *srv, const char *id)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, id, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    void *buf = NULL;
    size_t len = 0;
    bool ok = sto_area_read(&se, srv->area, r.uuid, &buf, &len);
    idx_resource_cleanup(&r);
    if (!ok) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
        return NULL;
    }
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    if (!dcm_parse(&de, buf, len, 0, &obj)) {
        srv_error_from_dcm(err, &de);
        if (err) err->code = SRV_CORRUPTED_FILE;
    }
    free(buf);
    return obj;
}

CacheEntry *cache_acquire(SrvError *err, Srv *srv, const char *id)
{
    if (!id || strlen(id) >= IDX_ID_LEN) {
        srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown instance");
        return NULL;
    }
    pthread_mutex_lock(&C.lock);
    uint64_t gen0 = C.gen;
    if (C.buckets) {
        CacheEntry *e = *slot(id);
        if (e) {
            e->pins++;
            lru_unlink(e);
            lru_push_front(e);
            pthread_mutex_unlock(&C.lock);
            atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
            return e;
        }
    }
    pthread_mutex_unlock(&C.lock);
    atomic_fetch_add_explicit(&misses, 1, memory_order_relaxed);

    DcmObject *obj = load(err, srv, id);
    if (!obj) return NULL;
    CacheEntry *e = calloc(1, sizeof *e);
    if (!e) {
        dcm_object_destroy(obj);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->obj = obj;
    e->bytes = dcm_object_memory(obj);
    e->pins = 1;

    CacheEntry *freed = NULL; /* chain of evicted entries, freed after unlocking */
    pthread_mutex_lock(&C.lock);
    CacheEntry *other = C.buckets ? *slot(id) : NULL;
    if (other) { /* loaded meanwhile by another thread: share that one */
        other->pins++;
        lru_unlink(other);
        lru_push_front(other);
        pthread_mutex_unlock(&C.lock);
        entry_free(e);
        return other;
    }
    if (C.gen == gen0 && e->bytes <= C.max && ensure_buckets()) {
        for (CacheEntry *v = C.tail; v && C.bytes + e->bytes > C.max;) {
            CacheEntry *pv = v->prev;
            if (v->pins == 0) {
                detach(v);
                v->hnext = freed;
                freed = v;
            }
            v = pv;
        }
        if (C.bytes + e->bytes <= C.max) {
            CacheEntry **p = slot(id);
            *p = e;
            lru_push_front(e);
            e->cached = true;
            C.bytes += e->bytes;
            C.count++;
        }
    }
    pthread_mutex_unlock(&C.lock);
    while (freed) {
        CacheEntry *nx = freed->hnext;
        entry_free(freed);
        freed = nx;
    }
    return e;
}

const struct DcmObject *cache_object(const CacheEntry *e) { return e ? e->obj : NULL; }

void cache_release(CacheEntry *e)
{
    if (!e) return;
    pthread_mutex_lock(&C.lock);
    SRV_ASSERT(e->pins > 0);
    bool drop = --e->pins == 0 && !e->cached;
    pthread_mutex_unlock(&C.lock);
    if (drop) entry_free(e);
}

void cache_invalidate(const char *id)
{
    CacheEntry *drop = NULL;
    pthread_mutex_lock(&C.lock);
    C.gen++;
    if (C.buckets) {
        CacheEntry *e = *slot(id);
        if (e) drop = detach(e);
    }
    pthread_mutex_unlock(&C.lock);
    entry_free(drop);
}

void cache_clear(void)
{
    CacheEntry *freed = NULL;
    pthread_mutex_lock(&C.lock);
    C.gen++;
    while (C.tail) {
        CacheEntry *e = detach(C.tail);
        if (e) { e->hnext = freed; freed = e; }
    }
    free(C.buckets);
    C.buckets = NULL;
    C.nbuckets = 0;
    pthread_mutex_unlock(&C.lock);
    while (freed) {
        CacheEntry *nx = freed->hnext;
        entry_free(freed);
        freed = nx;
    }
}

void cache_stats(size_t *bytes, size_t *count)
{
    pthread_mutex_lock(&C.lock);
    if (bytes) *bytes = C.bytes;
    if (count) *count = C.count;
    pthread_mutex_unlock(&C.lock);
}

void cache_counters(uint64_t *h, uint64_t *m)
{
    if (h) *h = atomic_load(&hits);
    if (m) *m = atomic_load(&misses);
}

/* ---- invalidations from other processes ------------------------------------------------- */

static struct {
    pthread_t thread;
    bool started;
    _Atomic bool stop;
    Srv *srv;
} L;

static void *listen_run(void *arg)
{
    (void)arg;
    srv_thread_name("invalidate");
    bool away = false;
    while (!atomic_load(&L.stop)) {
        char **ids = NULL;
        size_t n = 0;
        bool all = false;
        StoError se = { 0 };
        /* a short wait: the stop flag is seen within it */
        if (!idx_invalidations(&se, L.srv->db, 200, &ids, &n, &all)) {
            cache_clear(); /* what was missed meanwhile is unknown */
            if (!away) SRV_LOG_WARN("cache", "not listening for invalidations: %s", se.message);
            away = true;
            struct timespec ts = { 0, 200 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        if (away) SRV_LOG_INFO("cache", "listening for invalidations again");
        away = false;
        if (all) cache_clear();
        for (size_t i = 0; i < n; i++) cache_invalidate(ids[i]);
        idx_strings_free(ids, n);
    }
    return NULL;
}

void cache_listen_start(Srv *srv)
{
    if (L.started || !idx_shared(srv->db)) return;
    L.srv = srv;
    atomic_store(&L.stop, false);
    if (pthread_create(&L.thread, NULL, listen_run, NULL) != 0) {
        SRV_LOG_WARN("cache", "cannot start the invalidation thread: the DICOM cache is off");
        cache_configure(0);
        return;
    }
    L.started = true;
}

void cache_listen_stop(void)
{
    if (!L.started) return;
    atomic_store(&L.stop, true);
    pthread_join(L.thread, NULL);
    L.started = false;
    L.srv = NULL;
}
