/* test_metrics.c -- the metrics registry: registration rules, counters/gauges/timers, the
 * enabled switch, gauge callbacks, exact counts under concurrent updates, and the Prometheus
 * text (every sample `name value`, a `# TYPE` line before it, the design's names) rendered
 * against a real index after a store through ingest_buffer. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "dicom/dicom.h"
#include "server/server.h"

/* Value of a sample in rendered text; -1 if absent. */
static double value_of(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

/* Every line is "# TYPE name type" or "name value" with that name typed before. */
static bool well_formed(const char *text)
{
    char typed[128][64];
    size_t ntyped = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) return false; /* every line ends with \n */
        char line[256];
        size_t len = (size_t)(e - p);
        if (len >= sizeof line) return false;
        memcpy(line, p, len);
        line[len] = '\0';
        p = e + 1;
        char name[64], type[32], value[64], extra[8];
        if (!strncmp(line, "# TYPE ", 7)) {
            if (sscanf(line + 7, "%63s %31s %7s", name, type, extra) != 2) return false;
            if (strcmp(type, "gauge") && strcmp(type, "counter") && strcmp(type, "summary")) return false;
            if (ntyped < 128) snprintf(typed[ntyped++], 64, "%s", name);
            continue;
        }
        if (sscanf(line, "%63s %63s %7s", name, value, extra) != 2) return false;
        for (const char *c = name; *c; c++)
            if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_')) return false;
        char *end;
        strtod(value, &end);
        if (*end) return false;
        bool found = false;
        for (size_t i = 0; i < ntyped && !found; i++) {
            size_t k = strlen(typed[i]);
            found = !strcmp(typed[i], name) ||
                    (!strncmp(typed[i], name, k) && (!strcmp(name + k, "_count") || !strcmp(name + k, "_sum")));
        }
        if (!found) return false;
    }
    return true;
}

static void test_metrics_registry(void)
{
    MetricsItem *a = metrics_get("test_counter_total", METRICS_COUNTER);
    CHECK(a != NULL);
    CHECK(metrics_get("test_counter_total", METRICS_COUNTER) == a);
    CHECK(metrics_get("test_counter_total", METRICS_GAUGE) == NULL); /* other type */
    CHECK(metrics_get("Bad-Name", METRICS_GAUGE) == NULL);
    CHECK(metrics_get("9starts_with_digit", METRICS_GAUGE) == NULL);
    CHECK(metrics_get("", METRICS_GAUGE) == NULL);
    CHECK(metrics_get(NULL, METRICS_GAUGE) == NULL);
    metrics_add(NULL, 1); /* no-op */
    metrics_set(NULL, 1);
    metrics_timer_add(NULL, 1);
}

static void test_metrics_values(void)
{
    MetricsItem *c = metrics_get("test_values_total", METRICS_COUNTER);
    MetricsItem *g = metrics_get("test_values_gauge", METRICS_GAUGE);
    MetricsItem *t = metrics_get("orthanc_test_duration_ms", METRICS_TIMER);
    metrics_add(c, 3);
    metrics_add(c, -5); /* a counter never goes down */
    metrics_add(g, 7);
    metrics_add(g, -2);
    metrics_timer_add(t, 4.0);
    metrics_timer_add(t, 12.5);
    metrics_timer_add(t, 1.0);
    size_t len;
    char *s = metrics_render(NULL, &len);
    CHECK(s && strlen(s) == len);
    CHECK(value_of(s, "test_values_total") == 3);
    CHECK(value_of(s, "test_values_gauge") == 5);
    CHECK(value_of(s, "orthanc_test_duration_ms") == 12.5); /* max of the window */
    CHECK(value_of(s, "minipacs_test_duration_ms_count") == 3);
    CHECK(value_of(s, "minipacs_test_duration_ms_sum") == 17.5);
    CHECK(strstr(s, "# TYPE test_values_total counter\n") != NULL);
    CHECK(strstr(s, "# TYPE minipacs_test_duration_ms summary\n") != NULL);
    free(s);
    metrics_set(g, 2.25);
    s = metrics_render(NULL, &len);
    CHECK(value_of(s, "test_values_gauge") == 2.25);
    CHECK(well_formed(s));
    free(s);
}

static void test_metrics_disabled(void)
{
    MetricsItem *c = metrics_get("test_disabled_total", METRICS_COUNTER);
    metrics_set_enabled(false);
    CHECK(!metrics_enabled());
    metrics_add(c, 10);
    CHECK(metrics_clock_us() == 0);
    uint64_t tok = metrics_rest_begin();
    CHECK(tok == 0);
    metrics_rest_end(tok);
    size_t len = 99;
    char *s = metrics_render(NULL, &len);
    CHECK(s && len == 0 && s[0] == '\0'); /* off: an empty page, as Orthanc's */
    free(s);
    metrics_set_enabled(true);
    s = metrics_render(NULL, &len);
    CHECK(value_of(s, "test_disabled_total") == 0);
    free(s);
}

static void test_metrics_rest_hooks(void)
{
    uint64_t a = metrics_rest_begin(), b = metrics_rest_begin();
    CHECK(a && b);
    size_t len;
    char *s = metrics_render(NULL, &len);
    CHECK(value_of(s, "orthanc_rest_api_active_requests") == 2);
    free(s);
    metrics_rest_duration(a);
    metrics_rest_end(a);
    metrics_set_enabled(false); /* turned off mid-request: still uncounted at the end */
    metrics_rest_end(b);
    metrics_set_enabled(true);
    s = metrics_render(NULL, &len);
    CHECK(value_of(s, "orthanc_rest_api_active_requests") == 0);
    CHECK(value_of(s, "minipacs_rest_api_duration_ms_count") == 1);
    free(s);
}

/* The design's figures of other modules are pulled from them at render time: present (0)
 * before those modules run, and what cache_stats() / jobs_stats() say afterwards. */
static void test_metrics_pulled_figures(void)
{
    size_t len;
    char *s = metrics_render(NULL, &len);
    static const char *const names[] = {
        "orthanc_dicom_cache_size_mb", "orthanc_dicom_cache_count", "orthanc_jobs_pending",
        "orthanc_jobs_running", "orthanc_jobs_success", "orthanc_jobs_failed",
        "orthanc_jobs_completed", "minipacs_jobs_paused",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) CHECK(value_of(s, names[i]) == 0);
    CHECK(well_formed(s));
    free(s);
    size_t bytes = 1, count = 1;
    cache_stats(&bytes, &count);
    JobsStats js;
    jobs_stats(&js);
    s = metrics_render(NULL, &len);
    CHECK(value_of(s, "orthanc_dicom_cache_count") == (double)count);
    CHECK(value_of(s, "orthanc_dicom_cache_size_mb") == (double)bytes / (1024.0 * 1024.0));
    CHECK(value_of(s, "orthanc_jobs_completed") == (double)js.completed);
    free(s);
}

#define NTHREADS 4
#define NADDS 200000
static MetricsItem *race_c, *race_g, *race_t;

static void *racer(void *arg)
{
    (void)arg;
    for (int i = 0; i < NADDS; i++) {
        metrics_add(race_c, 1);
        metrics_add(race_g, (i & 1) ? -1 : 1);
        if (i % 100 == 0) metrics_timer_add(race_t, 1);
    }
    return NULL;
}

static void test_metrics_concurrent(void)
{
    race_c = metrics_get("test_race_total", METRICS_COUNTER);
    race_g = metrics_get("test_race_gauge", METRICS_GAUGE);
    race_t = metrics_get("test_race_ms", METRICS_TIMER);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, racer, NULL);
    /* Registration and rendering while others update. */
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "test_late_%d", i);
        CHECK(metrics_get(name, METRICS_GAUGE) != NULL);
        size_t len;
        free(metrics_render(NULL, &len));
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    size_t len;
    char *s = metrics_render(NULL, &len);
    CHECK(value_of(s, "test_race_total") == (double)NTHREADS * NADDS);
    CHECK(value_of(s, "test_race_gauge") == 0);
    free(s);
}

static void test_metrics_registry_full(void)
{
    int got = 0;
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "test_fill_%d", i);
        if (metrics_get(name, METRICS_COUNTER)) got++;
    }
    CHECK(got > 0 && got < 100); /* bounded, never a crash */
    size_t len;
    char *s = metrics_render(NULL, &len);
    CHECK(s && well_formed(s));
    free(s);
}

/* Against a real index: counts and the store timer after an ingest, the design's names. */
static void test_metrics_render_index(void)
{
    char dir[] = "/tmp/mp-metrics.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("ORTHANC__STORAGE_DIRECTORY", dir, 1);
    setenv("ORTHANC__SYNC_STORAGE_AREA", "false", 1);
    static Srv srv;
    CfgError ce = { 0 };
    CHECK(cfg_load(&ce, NULL, &srv.cfg));
    SrvError err = { 0 };
    DcmError de = { 0 };
    CHECK(dcm_global_init(&de));
    if (!srv_open(&err, &srv)) {
        fprintf(stderr, "srv_open: %s\n", err.message);
        CHECK(0);
        return;
    }
    FILE *f = fopen(SRCDIR "/tests/data/ct_small.dcm", "rb");
    if (!f) f = fopen(PYDICOM_FILES "/CT_small.dcm", "rb");
    CHECK(f != NULL);
    static char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    IngestResult r;
    IngestOrigin o = { .origin = INGEST_ORIGIN_REST };
    CHECK(ingest_buffer(&err, &srv, buf, n, &o, &r));
    size_t len;
    char *s = metrics_render(&srv, &len);
    CHECK(s && well_formed(s));
    CHECK(value_of(s, "orthanc_count_instances") == 1);
    CHECK(value_of(s, "orthanc_count_patients") == 1);
    CHECK(value_of(s, "orthanc_count_studies") == 1);
    CHECK(value_of(s, "orthanc_count_series") == 1);
    double mb = value_of(s, "orthanc_disk_size_mb");
    CHECK(mb > 0 && mb * 1048576.0 > (double)n - 1 && mb * 1048576.0 < (double)n + 1);
    CHECK(value_of(s, "orthanc_last_change") >= 4); /* NewInstance..NewPatient */
    CHECK(value_of(s, "minipacs_store_dicom_duration_ms_count") >= 1);
    CHECK(value_of(s, "orthanc_store_dicom_duration_ms") > 0);
    CHECK(value_of(s, "minipacs_resident_memory_bytes") > 1e6);
    static const char *const design[] = {
        "orthanc_count_patients", "orthanc_count_studies", "orthanc_count_series",
        "orthanc_count_instances", "orthanc_disk_size_mb", "orthanc_uncompressed_size_mb",
        "orthanc_dicom_cache_size_mb", "orthanc_dicom_cache_count", "orthanc_jobs_pending",
        "orthanc_jobs_running", "orthanc_jobs_success", "orthanc_jobs_failed",
        "orthanc_jobs_completed", "orthanc_memory_trimming_duration_ms",
        "orthanc_rest_api_active_requests", "orthanc_rest_api_duration_ms",
        "orthanc_store_dicom_duration_ms", "orthanc_up_time_s", "orthanc_last_change",
        "minipacs_resident_memory_bytes", "minipacs_memory_trim_released_bytes",
        "minipacs_memory_trims_total",
    };
    for (size_t i = 0; i < sizeof design / sizeof design[0]; i++) {
        if (value_of(s, design[i]) < 0) fprintf(stderr, "missing %s\n", design[i]);
        CHECK(value_of(s, design[i]) >= 0);
    }
    free(s);
    srv_close(&srv);
    cfg_cleanup(&srv.cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    metrics_init(NULL);
    RUN(test_metrics_registry);
    RUN(test_metrics_values);
    RUN(test_metrics_disabled);
    RUN(test_metrics_rest_hooks);
    RUN(test_metrics_pulled_figures);
    RUN(test_metrics_concurrent);
    RUN(test_metrics_render_index);
    RUN(test_metrics_registry_full); /* last: fills the table */
    return CHECK_DONE();
}
