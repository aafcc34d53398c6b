/* test_housekeeper.c -- the trimming thread: trims on schedule, sleeps without polling
 * (voluntary context switches of its thread), stops at once mid-sleep, does not exist when
 * the interval is 0, and releases memory after a burst of frees. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "housekeeper/housekeeper.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* tid of our thread named "housekeeper", or 0. */
static int find_thread(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int tid = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(name, sizeof name, f) && !strncmp(name, "housekeeper", 11)) tid = atoi(e->d_name);
        fclose(f);
    }
    if (d) closedir(d);
    return tid;
}

static long voluntary_switches(int tid)
{
    char path[128], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "voluntary_ctxt_switches:", 24)) v = atol(line + 24);
    if (f) fclose(f);
    return v;
}

static void test_housekeeper_off(void)
{
    HkError e = { 0 };
    HkConfig c = { .interval_s = 0, .malloc_arena_max = 0 };
    CHECK(hk_start(&e, &c));
    CHECK(find_thread() == 0);
    HkStats s;
    hk_stats(&s);
    CHECK(!s.running);
    hk_stop();
}

static void test_housekeeper_trims_without_polling(void)
{
    HkError e = { 0 };
    HkConfig c = { .interval_s = 1, .malloc_arena_max = 5 };
    CHECK(hk_start(&e, &c));
    int tid = find_thread();
    CHECK(tid > 0);
    long v0 = voluntary_switches(tid);
    /* a burst: many medium blocks, then free them all */
    enum { N = 2000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) { blocks[i] = malloc(100 * 1024); if (blocks[i]) memset(blocks[i], 1, 100 * 1024); }
    for (int i = 0; i < N; i++) free(blocks[i]);
    usleep(3300 * 1000);
    long v1 = voluntary_switches(tid);
    HkStats s;
    hk_stats(&s);
    fprintf(stderr, "trims %llu, last %.3f ms, released %llu bytes (total %llu), switches %ld\n",
            (unsigned long long)s.trims, s.last_duration_ms, (unsigned long long)s.last_released,
            (unsigned long long)s.total_released, v1 - v0);
    CHECK(s.running);
    CHECK(s.trims >= 3 && s.trims <= 4);
    CHECK(s.last_rss_before > 0 && s.last_rss_after > 0);
    /* one wake-up per trim, plus at most a couple for scheduling noise */
    CHECK(v1 - v0 <= 6);
    hk_stop();
    CHECK(find_thread() == 0);
}

static void test_housekeeper_stop_is_prompt(void)
{
    HkError e = { 0 };
    HkConfig c = { .interval_s = 30 };
    CHECK(hk_start(&e, &c));
    usleep(200 * 1000);
    double t0 = now_s();
    hk_stop();
    double dt = now_s() - t0;
    fprintf(stderr, "stop took %.3f ms\n", dt * 1e3);
    CHECK(dt < 1.0);
}

static void test_housekeeper_rss(void)
{
    CHECK(hk_rss_bytes() > 100 * 1024);
}

int main(void)
{
    RUN(test_housekeeper_off);
    RUN(test_housekeeper_trims_without_polling);
    RUN(test_housekeeper_stop_is_prompt);
    RUN(test_housekeeper_rss);
    return CHECK_DONE();
}
