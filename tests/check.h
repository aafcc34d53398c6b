/* check.h -- the unit tests' only framework. CHECK(cond) prints file:line and counts a
 * failure; main returns the count (0 = pass). Each test is test_<unit>_<case>(). */
#ifndef MP_CHECK_H
#define MP_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;
#define CHECK(cond) \
    do { check_count++; if (!(cond)) { check_failures++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_STR(a, b) \
    do { const char *ca_ = (a), *cb_ = (b); check_count++; \
        if (!ca_ || !cb_ || strcmp(ca_, cb_) != 0) { check_failures++; \
            fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    ca_ ? ca_ : "(null)", cb_ ? cb_ : "(null)"); } } while (0)
#define RUN(test) \
    do { int before_ = check_failures; test(); \
        fprintf(stderr, "%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test); } while (0)
#define CHECK_DONE() \
    (fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures), check_failures ? 1 : 0)
#endif
