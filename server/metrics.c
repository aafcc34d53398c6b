/* metrics.c -- the metrics registry and its one renderer.
 *
 * DESIGN: a fixed table of items (counters, gauges, timers), each a handful of _Atomic fields;
 * registration takes a mutex and publishes the new item by a release store of the count, so
 * the hot path (metrics_add, metrics_timer_add) never locks: one relaxed load of the enabled
 * flag, one or two relaxed atomic operations. Figures owned by other modules are read when
 * rendering, not pushed: index totals and the last change (single-row queries), hk_stats(),
 * RSS, dimse_stats(), cache_stats(), jobs_stats(). Pull-only: those modules register nothing
 * and never call metrics for their own figures (the cache and the jobs engine used to push
 * callbacks under the same names, a cycle). One function, metrics_render(), writes the Prometheus text
 * in the order a reader expects, as Redis writes INFO.
 *
 * Timers follow Orthanc's MetricsUpdatePolicy_MaxOver10Seconds: the value is the largest
 * duration of the current 10 s window, or of the previous one when the current window is
 * still empty, so a scrape every 15 s sees every peak. Our summary (minipacs_*_count, _sum)
 * keeps totals for rates. A race at a window boundary can lose one sample from the max (never
 * from count and sum): acceptable for a monitoring figure, and it keeps the hot path lock-free.
 *
 * Differences from Orthanc 1.10.1, on purpose: `# TYPE` lines, no timestamps (both optional
 * in the format), and the figures Orthanc added later (orthanc_up_time_s, orthanc_last_change,
 * orthanc_memory_trimming_duration_ms) are there.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "housekeeper/housekeeper.h"
#include "server/server.h"
#include "storage/storage.h"

#define MAX_ITEMS 64
#define NAME_MAX_LEN 64
#define WINDOW_S 10
#define RENDER_MAX (1024 * 1024) /* ceiling of the rendered text */

struct MetricsItem {
    char name[NAME_MAX_LEN];
    MetricsType type;
    _Atomic uint64_t count;    /* counter value; timer: number of samples */
    _Atomic int64_t ival;      /* gauge changed by metrics_add */
    _Atomic uint64_t dbits;    /* gauge set by metrics_set: the double's bits */
    _Atomic bool is_double;    /* the last write was metrics_set */
    _Atomic uint64_t sum_us;   /* timer: sum of samples */
    _Atomic uint64_t window;   /* timer: index of the window cur_max_us belongs to */
    _Atomic uint64_t cur_max_us, prev_max_us;
};

static struct {
    pthread_mutex_t lock;           /* registration only */
    MetricsItem items[MAX_ITEMS];
    _Atomic size_t nitems;          /* published with release after the item is set */
    _Atomic bool enabled;
    uint64_t start_us;
    MetricsItem *rest_active, *rest_duration, *store_duration;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER, .enabled = true };

/* ---- clock ------------------------------------------------------------------------------ */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t metrics_clock_us(void)
{
    if (!atomic_load_explicit(&reg.enabled, memory_order_relaxed)) return 0;
    uint64_t t = mono_us();
    return t ? t : 1;
}

/* ---- registry ----------------------------------------------------------------------------- */

static bool valid_name(const char *name)
{
    if (!name || !*name || strlen(name) >= NAME_MAX_LEN) return false;
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || *p == '_' || (p != name && *p >= '0' && *p <= '9');
        if (!ok) return false;
    }
    return true;
}

static MetricsItem *find_item(const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(reg.items[i].name, name)) return &reg.items[i];
    return NULL;
}

MetricsItem *metrics_get(const char *name, MetricsType type)
{
    if (!valid_name(name) || type < METRICS_COUNTER || type > METRICS_TIMER) return NULL;
    pthread_mutex_lock(&reg.lock);
    size_t n = atomic_load_explicit(&reg.nitems, memory_order_relaxed);
    MetricsItem *m = find_item(name, n);
    if (m) {
        if (m->type != type) m = NULL;
    } else if (n < MAX_ITEMS) {
        m = &reg.items[n];
        snprintf(m->name, sizeof m->name, "%s", name);
        m->type = type;
        atomic_store_explicit(&reg.nitems, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&reg.lock);
    return m;
}

static inline bool on(void)
{
    return atomic_load_explicit(&reg.enabled, memory_order_relaxed);
}

void metrics_add(MetricsItem *m, int64_t delta)
{
    if (!m || !on()) return;
    if (m->type == METRICS_COUNTER) {
        if (delta > 0) atomic_fetch_add_explicit(&m->count, (uint64_t)delta, memory_order_relaxed);
    } else if (m->type == METRICS_GAUGE) {
        atomic_fetch_add_explicit(&m->ival, delta, memory_order_relaxed);
        atomic_store_explicit(&m->is_double, false, memory_order_relaxed);
    }
}

void metrics_set(MetricsItem *m, double value)
{
    if (!m || m->type != METRICS_GAUGE || !on()) return;
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    atomic_store_explicit(&m->dbits, bits, memory_order_relaxed);
    atomic_store_explicit(&m->is_double, true, memory_order_relaxed);
}

static void fetch_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void timer_record_us(MetricsItem *m, uint64_t us, uint64_t now_us)
{
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, us, memory_order_relaxed);
    uint64_t w = now_us / (WINDOW_S * 1000000u) + 1; /* + 1: window 0 means "never" */
    uint64_t seen = atomic_load_explicit(&m->window, memory_order_relaxed);
    if (seen != w &&
        atomic_compare_exchange_strong_explicit(&m->window, &seen, w, memory_order_relaxed,
                                                memory_order_relaxed)) {
        /* We opened window w: the old current max becomes the previous one if adjacent. */
        uint64_t old = atomic_exchange_explicit(&m->cur_max_us, us, memory_order_relaxed);
        atomic_store_explicit(&m->prev_max_us, seen + 1 == w ? old : 0, memory_order_relaxed);
        return;
    }
    fetch_max(&m->cur_max_us, us);
}

void metrics_timer_add(MetricsItem *m, double ms)
{
    if (!m || m->type != METRICS_TIMER || !on()) return;
    if (!(ms >= 0)) ms = 0; /* also NaN */
    timer_record_us(m, (uint64_t)(ms * 1000.0), mono_us());
}

void metrics_timer_since(MetricsItem *m, uint64_t t0)
{
    if (!m || !t0 || m->type != METRICS_TIMER) return;
    uint64_t now = mono_us();
    timer_record_us(m, now > t0 ? now - t0 : 0, now);
}

/* Timer value for rendering: max over the current window, else the previous one. */
static double timer_value_ms(MetricsItem *m, uint64_t now_us)
{
    uint64_t w = now_us / (WINDOW_S * 1000000u) + 1;
    uint64_t seen = atomic_load_explicit(&m->window, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&m->cur_max_us, memory_order_relaxed);
    uint64_t prev = atomic_load_explicit(&m->prev_max_us, memory_order_relaxed);
    if (seen == w) return (double)(cur > prev ? cur : prev) / 1000.0;
    if (seen + 1 == w) return (double)cur / 1000.0;
    return 0;
}

/* ---- built-in items and the REST / ingest hooks --------------------------------------------- */

static void builtins(void)
{
    if (!reg.rest_active) reg.rest_active = metrics_get("orthanc_rest_api_active_requests", METRICS_GAUGE);
    if (!reg.rest_duration) reg.rest_duration = metrics_get("orthanc_rest_api_duration_ms", METRICS_TIMER);
    if (!reg.store_duration) reg.store_duration = metrics_get("orthanc_store_dicom_duration_ms", METRICS_TIMER);
}

void metrics_init(const Srv *srv)
{
    builtins();
    reg.start_us = mono_us();
    atomic_store(&reg.enabled, srv ? srv->cfg.metrics_enabled : true);
}

void metrics_set_enabled(bool enabled)
{
    atomic_store(&reg.enabled, enabled);
}

bool metrics_enabled(void)
{
    return on();
}

uint64_t metrics_rest_begin(void)
{
    if (!on() || !reg.rest_active) return 0;
    atomic_fetch_add_explicit(&reg.rest_active->ival, 1, memory_order_relaxed);
    uint64_t t = mono_us();
    return t ? t : 1;
}

void metrics_rest_duration(uint64_t token)
{
    metrics_timer_since(reg.rest_duration, token);
}

void metrics_rest_end(uint64_t token)
{
    /* Counted at begin, so uncounted at end even if metrics were turned off in between. */
    if (token && reg.rest_active)
        atomic_fetch_sub_explicit(&reg.rest_active->ival, 1, memory_order_relaxed);
}

void metrics_store_done(uint64_t t0)
{
    metrics_timer_since(reg.store_duration, t0);
}

/* ---- rendering ------------------------------------------------------------------------------ */

typedef struct Out {
    Buf b;  /* ceiling RENDER_MAX */
    int rc; /* first BUF_* failure; later writes are skipped */
} Out;

static void outf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(Out *o, const char *fmt, ...)
{
    if (o->rc) return;
    va_list ap;
    va_start(ap, fmt);
    o->rc = buf_vprintf(&o->b, fmt, ap);
    va_end(ap);
}

/* One sample with its # TYPE line; integers without a fraction, others with 10 digits. */
static void sample(Out *o, const char *type, const char *name, double v)
{
    if (!isfinite(v)) v = 0;
    outf(o, "# TYPE %s %s\n", name, type);
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
        outf(o, "%s %.0f\n", name, v);
    else outf(o, "%s %.10g\n", name, v);
}

char *metrics_render(Srv *srv, size_t *len)
{
    Out o = { .rc = BUF_OK };
    buf_init(&o.b, RENDER_MAX);
    *len = 0;
    if (buf_reserve(&o.b, 4096)) return NULL;
    if (!on()) return buf_take(&o.b, NULL);
    const double mb = 1024.0 * 1024.0;
    uint64_t now = mono_us();

    /* The index: running totals and the newest change (no scan). */
    IdxTotals t = { 0 };
    int64_t last = 0;
    if (srv && srv->db) {
        StoError se = { 0 };
        if (!idx_totals(&se, srv->db, &t))
            SRV_LOG_WARN("metrics", "index totals: %s", se.message);
        IdxChange *ch = NULL;
        size_t n = 0;
        if (!idx_changes_last(&se, srv->db, &ch, &n, &last))
            SRV_LOG_WARN("metrics", "last change: %s", se.message);
        free(ch);
    }
    sample(&o, "gauge", "orthanc_count_instances", (double)t.count[IDX_INSTANCE]);
    sample(&o, "gauge", "orthanc_count_patients", (double)t.count[IDX_PATIENT]);
    sample(&o, "gauge", "orthanc_count_series", (double)t.count[IDX_SERIES]);
    sample(&o, "gauge", "orthanc_count_studies", (double)t.count[IDX_STUDY]);
    sample(&o, "gauge", "orthanc_disk_size_mb", (double)t.disk_size / mb);
    sample(&o, "gauge", "orthanc_uncompressed_size_mb", (double)t.uncompressed_size / mb);
    sample(&o, "gauge", "orthanc_last_change", (double)last);
    sample(&o, "gauge", "orthanc_up_time_s", (double)((now - reg.start_us) / 1000000u));

    /* The figures other modules own, pulled from them (they push nothing under these names). */
    size_t cache_bytes = 0, cache_count = 0;
    cache_stats(&cache_bytes, &cache_count);
    JobsStats js;
    jobs_stats(&js);
    sample(&o, "gauge", "orthanc_dicom_cache_size_mb", (double)cache_bytes / mb);
    sample(&o, "gauge", "orthanc_dicom_cache_count", (double)cache_count);
    sample(&o, "gauge", "orthanc_jobs_pending", (double)js.pending);
    sample(&o, "gauge", "orthanc_jobs_running", (double)js.running);
    sample(&o, "gauge", "orthanc_jobs_success", (double)js.success);
    sample(&o, "gauge", "orthanc_jobs_failed", (double)js.failed);
    sample(&o, "gauge", "orthanc_jobs_completed", (double)js.completed);

    /* Registered items: counters, gauges, timers (max over 10 s, and our summary). */
    size_t nitems = atomic_load_explicit(&reg.nitems, memory_order_acquire);
    for (size_t i = 0; i < nitems; i++) {
        MetricsItem *m = &reg.items[i];
        if (m->type == METRICS_COUNTER) {
            sample(&o, "counter", m->name, (double)atomic_load(&m->count));
        } else if (m->type == METRICS_GAUGE) {
            double v;
            if (atomic_load(&m->is_double)) {
                uint64_t bits = atomic_load(&m->dbits);
                memcpy(&v, &bits, sizeof v);
            } else {
                v = (double)atomic_load(&m->ival);
            }
            sample(&o, "gauge", m->name, v);
        } else {
            sample(&o, "gauge", m->name, timer_value_ms(m, now));
            const char *base = !strncmp(m->name, "orthanc_", 8) ? m->name + 8 : m->name;
            if (!strncmp(base, "minipacs_", 9)) base += 9;
            outf(&o, "# TYPE minipacs_%s summary\n", base);
            outf(&o, "minipacs_%s_count %llu\n", base, (unsigned long long)atomic_load(&m->count));
            outf(&o, "minipacs_%s_sum %.3f\n", base, (double)atomic_load(&m->sum_us) / 1000.0);
        }
    }

    uint64_t hits = 0, misses = 0;
    cache_counters(&hits, &misses);
    sample(&o, "counter", "minipacs_dicom_cache_hits_total", (double)hits);
    sample(&o, "counter", "minipacs_dicom_cache_misses_total", (double)misses);
    sample(&o, "gauge", "minipacs_jobs_paused", (double)js.paused);

    /* The housekeeper and the process. */
    HkStats hs;
    hk_stats(&hs);
    sample(&o, "gauge", "orthanc_memory_trimming_duration_ms", hs.last_duration_ms);
    sample(&o, "gauge", "minipacs_resident_memory_bytes", (double)hk_rss_bytes());
    sample(&o, "counter", "minipacs_memory_trims_total", (double)hs.trims);
    sample(&o, "gauge", "minipacs_memory_trim_released_bytes", (double)hs.last_released);
    sample(&o, "counter", "minipacs_memory_trim_released_bytes_total", (double)hs.total_released);
    sample(&o, "gauge", "minipacs_memory_trimming_enabled", hs.running ? 1 : 0);

    /* The DICOM listener, when it runs. */
    SrvDimseStats ds;
    if (dimse_stats(&ds)) {
        sample(&o, "counter", "minipacs_dicom_associations_total", (double)ds.associations);
        sample(&o, "counter", "minipacs_dicom_associations_rejected_total", (double)ds.rejected);
        sample(&o, "gauge", "minipacs_dicom_associations_active", (double)ds.active);
        sample(&o, "counter", "minipacs_dicom_stored_total", (double)ds.stored);
        sample(&o, "counter", "minipacs_dicom_store_failures_total", (double)ds.store_failures);
    }

    if (o.rc) { /* TOO_LARGE means RENDER_MAX is too small for the registry: a bug */
        SRV_LOG_ERROR("metrics", "rendering failed: %s",
                      o.rc == BUF_TOO_LARGE ? "more than RENDER_MAX bytes" : "out of memory");
        return NULL;
    }
    return buf_take(&o.b, len);
}
