/* test_housekeeper.c -- the trimming thread: trims on schedule, sleeps without polling
 * (voluntary context switches of its thread), stops at once mid-sleep, does not exist when
 * the interval is 0, and gives back memory that only malloc_trim can release. */
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
    HkStats s0, s;
    hk_stats(&s0);
    CHECK(hk_start(&e, &c));
    int tid = find_thread(); /* named by the time hk_start returns */
    CHECK(tid > 0);
    if (tid <= 0) {
        hk_stop();
        return;
    }
    long v0 = voluntary_switches(tid);
    usleep(3300 * 1000);
    long v1 = voluntary_switches(tid);
    hk_stats(&s);
    fprintf(stderr, "     (%llu trims, last %.3f ms, rss %llu -> %llu, %ld voluntary switches)\n",
            (unsigned long long)(s.trims - s0.trims), s.last_duration_ms,
            (unsigned long long)s.last_rss_before, (unsigned long long)s.last_rss_after, v1 - v0);
    CHECK(s.running);
    CHECK(s.trims - s0.trims >= 3 && s.trims - s0.trims <= 4);
    CHECK(s.last_rss_before > 0 && s.last_rss_after > 0);
    CHECK(s.last_duration_ms >= 0 && s.last_duration_ms < 1000);
    CHECK(s.last_released ==
          (s.last_rss_before > s.last_rss_after ? s.last_rss_before - s.last_rss_after : 0));
    /* The thread blocks once per wait: one wait per trim plus the one it is in now (4 for 3
     * trims), one of slack. Polling every 100 ms would show about 33. */
    CHECK(v0 >= 0 && v1 >= v0);
    CHECK(v1 - v0 <= (long)(s.trims - s0.trims) + 2);
    hk_stop();
    hk_stats(&s);
    CHECK(!s.running);
    CHECK(find_thread() == 0);
}

/* ASan and TSan replace malloc: glibc's malloc_trim then has nothing to release. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

enum { NBIG = 400, BIG = 100 * 1024 };
static void *volatile big[NBIG];

/* 100 KB blocks come from the heap (below the mmap threshold). Freeing every other one leaves
 * 200 holes between live blocks: free() cannot merge them into the top chunk and shrink the
 * heap itself, so only malloc_trim can give their pages back. (Freeing them all, by contrast,
 * lets free() release the memory at once and leaves the trim nothing to do.) */
static void test_housekeeper_releases_fragmented_memory(void)
{
    for (int i = 0; i < NBIG; i++) {
        big[i] = malloc(BIG);
        if (big[i]) memset(big[i], 0x5a, BIG);
    }
    for (int i = 0; i < NBIG; i += 2) {
        free(big[i]);
        big[i] = NULL;
    }
    HkError e = { 0 };
    HkConfig c = { .interval_s = 1 };
    HkStats s0, s;
    hk_stats(&s0);
    CHECK(hk_start(&e, &c));
    for (int i = 0; i < 30; i++) { /* the first trim is due 1 s after the start */
        usleep(100 * 1000);
        hk_stats(&s);
        if (s.trims > s0.trims) break;
    }
    hk_stop();
    hk_stats(&s);
    CHECK(s.trims == s0.trims + 1);
    fprintf(stderr, "     (freed %d x 100 KB between live blocks: the trim released %llu bytes in %.3f ms%s)\n",
            NBIG / 2, (unsigned long long)s.last_released, s.last_duration_ms,
            UNDER_ASAN ? "; not checked: ASan's allocator is not glibc's" : "");
    if (!UNDER_ASAN) CHECK(s.last_released >= (uint64_t)NBIG / 2 * BIG / 2);
    CHECK(s.total_released >= s.last_released);
    for (int i = 1; i < NBIG; i += 2) {
        free(big[i]);
        big[i] = NULL;
    }
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

static int before_calls;
static void count_before(void) { before_calls++; }

/* before_trim runs on the housekeeper thread once per trim, before it. */
static void test_housekeeper_before_trim(void)
{
    HkError e = { 0 };
    HkConfig c = { .interval_s = 1, .before_trim = count_before };
    HkStats s0, s;
    hk_stats(&s0);
    CHECK(hk_start(&e, &c));
    usleep(2300 * 1000);
    hk_stop();
    hk_stats(&s);
    CHECK(before_calls >= 2 && (uint64_t)before_calls == s.trims - s0.trims);
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
    RUN(test_housekeeper_releases_fragmented_memory);
    RUN(test_housekeeper_before_trim);
    RUN(test_housekeeper_rss);
    return CHECK_DONE();
}
