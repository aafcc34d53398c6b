/* housekeeper.h -- the memory-trimming thread. A leaf: libc only.
 *
 * One thread, named "housekeeper", sleeps in pthread_cond_timedwait on a CLOCK_MONOTONIC
 * condition variable and calls malloc_trim(128*1024) every `interval_s` seconds: no wake-up
 * while idle other than the trim itself, and hk_stop() wakes it at once. Each trim records
 * its duration and the resident memory before and after (from /proc/self/statm).
 * Where glibc has no malloc_trim (HK_HAVE_TRIM is 0) hk_start() starts nothing and says so
 * through the log callback once.
 *
 * Threads: hk_start/hk_stop from main only; hk_stats and hk_rss_bytes from any thread.
 */
#ifndef MP_HOUSEKEEPER_H
#define MP_HOUSEKEEPER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct HkError {
    int code;
    char message[256];
} HkError;

typedef void (*HkLogFn)(int level, const char *message); /* levels as dicom.h / log.h */

typedef struct HkConfig {
    unsigned interval_s;   /* MemoryTrimmingInterval; 0 = no thread */
    int malloc_arena_max;  /* MallocArenaMax; 0 = leave glibc's default */
    HkLogFn log;           /* may be NULL */
    /* Called on the housekeeper thread before each trim, no lock of ours held; may be NULL.
     * The server gives back what it holds without need there (an idle cache), so that the
     * trim can return it to the system. */
    void (*before_trim)(void);
} HkConfig;

typedef struct HkStats {
    uint64_t trims;               /* trims done */
    double last_duration_ms;      /* duration of the last malloc_trim */
    uint64_t last_rss_before;     /* bytes resident before the last trim (and before_trim) */
    uint64_t last_rss_after;      /* ... and after */
    uint64_t last_released;       /* before - after, 0 if it grew */
    uint64_t total_released;      /* sum of last_released over all trims */
    bool running;                 /* the thread exists */
} HkStats;

/* Applies mallopt(M_ARENA_MAX) (call before other threads start), then starts the thread
 * unless interval_s is 0. */
bool hk_start(HkError *err, const HkConfig *cfg);
/* Wakes and joins the thread (returns promptly even mid-sleep). Safe if never started. */
void hk_stop(void);
void hk_stats(HkStats *out);
/* Resident set size of this process in bytes (0 if unknown). */
uint64_t hk_rss_bytes(void);

#endif
