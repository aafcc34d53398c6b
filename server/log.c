/* log.c -- one line per event on stderr: UTC time, level letter, thread name, category,
 * message. The macros in server.h test the level before formatting, so a debug line costs a
 * comparison when debug is off. Leaves log through srv_log_callback (set at start-up). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "server/server.h"

_Atomic int srv_log_level = SRV_LOG_INFO;
static _Thread_local char thread_name[16] = "main";

void srv_log_set_level(const char *name)
{
    if (!name) return;
    if (!strcasecmp(name, "error")) srv_log_level = SRV_LOG_ERROR;
    else if (!strcasecmp(name, "warning")) srv_log_level = SRV_LOG_WARNING;
    else if (!strcasecmp(name, "info")) srv_log_level = SRV_LOG_INFO;
    else if (!strcasecmp(name, "debug") || !strcasecmp(name, "verbose") ||
             !strcasecmp(name, "trace")) srv_log_level = SRV_LOG_DEBUG;
}

void srv_thread_name(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name);
    pthread_setname_np(pthread_self(), thread_name);
}

static void vlog(int level, const char *category, const char *fmt, va_list ap)
{
    static const char letters[] = "EWID";
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %-11s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L,
                     letters[level < 0 ? 0 : level > 3 ? 3 : level], thread_name, category);
    if (n < 0 || (size_t)n >= sizeof line) n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr); /* one write per line: lines from threads do not mix */
}

void srv_log(int level, const char *category, const char *fmt, ...)
{
    if (level > srv_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, category, fmt, ap);
    va_end(ap);
}

void srv_log_callback(int level, const char *message)
{
    srv_log(level, "lib", "%s", message);
}

_Noreturn void srv_assert_fail(const char *what, const char *file, int line)
{
    srv_log(SRV_LOG_ERROR, "assert", "%s:%d: assertion failed: %s", file, line, what);
    abort();
}
