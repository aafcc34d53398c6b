/* test_common.c -- the capped growable buffer: ceilings refuse with BUF_TOO_LARGE and free,
 * a body of known length is allocated once, text stays NUL-terminated, arrays of elements,
 * take hands the memory out, and an allocation failure is BUF_NOMEM (not TOO_LARGE). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "common/buf.h"

static void test_buf_append_and_text(void)
{
    Buf b;
    buf_init(&b, 1000);
    CHECK(b.data == NULL && b.len == 0);
    CHECK(buf_append(&b, "abc", 3) == BUF_OK);
    CHECK(buf_printf(&b, "-%d-%s", 42, "x") == BUF_OK);
    CHECK_STR(b.data, "abc-42-x");
    CHECK(b.len == 8);
    CHECK(buf_append(&b, NULL, 0) == BUF_OK);
    CHECK(b.len == 8);
    buf_set_len(&b, 3);
    CHECK_STR(b.data, "abc");
    size_t n = 0;
    char *s = buf_take(&b, &n);
    CHECK(n == 3 && s && !strcmp(s, "abc"));
    free(s);
    CHECK(b.data == NULL && b.len == 0 && b.max == 1000);
    buf_free(&b);
    buf_free(NULL);
}

/* A long printf (longer than the internal scratch) is formatted whole. */
static void test_buf_long_printf(void)
{
    Buf b;
    buf_init(&b, 1 << 20);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 10; i++) CHECK(buf_printf(&b, "%s%d", big, i) == BUF_OK);
    CHECK(b.len == 10 * 5000);
    CHECK(b.data[4999] == '0' && b.data[b.len - 1] == '9' && b.data[b.len] == '\0');
    buf_free(&b);
}

/* The ceiling is on len: exactly max fits, one byte more fails with TOO_LARGE and leaves the
 * contents as they were. */
static void test_buf_ceiling(void)
{
    Buf b;
    buf_init(&b, 10);
    CHECK(buf_append(&b, "0123456789", 10) == BUF_OK);
    CHECK(b.cap == 11);
    CHECK(buf_append(&b, "x", 1) == BUF_TOO_LARGE);
    CHECK(b.len == 10 && !strcmp(b.data, "0123456789") && b.max == 10);
    buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && b.max == 10);
    CHECK(buf_printf(&b, "%s", "01234567890") == BUF_TOO_LARGE);
    CHECK(b.data == NULL);
    CHECK(buf_reserve(&b, SIZE_MAX) == BUF_TOO_LARGE);
    CHECK(buf_append(&b, "abcde", 5) == BUF_OK);
    CHECK(buf_reserve(&b, SIZE_MAX - 2) == BUF_TOO_LARGE); /* len + extra would overflow */
    CHECK(b.len == 5);
    buf_free(&b);
}

/* A known length is allocated exactly once (the request body is held once). */
static void test_buf_reserve_exact(void)
{
    Buf b;
    buf_init(&b, (size_t)1 << 30);
    CHECK(buf_reserve(&b, 100000) == BUF_OK);
    CHECK(b.cap == 100001);
    char *first = b.data;
    static char chunk[1000];
    for (int i = 0; i < 100; i++) CHECK(buf_append(&b, chunk, sizeof chunk) == BUF_OK);
    CHECK(b.data == first && b.cap == 100001 && b.len == 100000);
    /* then growth doubles */
    CHECK(buf_append(&b, "x", 1) == BUF_OK);
    CHECK(b.cap == 200002);
    /* writing into the reserved room */
    CHECK(buf_reserve(&b, 10) == BUF_OK);
    memcpy(b.data + b.len, "0123456789", 10);
    buf_set_len(&b, b.len + 10);
    CHECK(b.len == 100011 && b.data[b.len - 1] == '9' && b.data[b.len] == '\0');
    buf_free(&b);
}

/* Growth stops at the ceiling: the last growth allocates max + 1, not the doubled size. */
static void test_buf_growth_capped(void)
{
    Buf b;
    buf_init(&b, 100);
    for (int i = 0; i < 100; i++) CHECK(buf_append(&b, "y", 1) == BUF_OK);
    CHECK(b.cap == 101 && b.len == 100);
    buf_free(&b);
}

/* Arrays of pointers and of structs. */
static void test_buf_array(void)
{
    typedef struct { int a; double d; } Pair;
    Buf b;
    buf_init(&b, 1000 * sizeof(Pair));
    for (int i = 0; i < 1000; i++) {
        Pair p = { i, i * 0.5 };
        CHECK(buf_append(&b, &p, sizeof p) == BUF_OK);
    }
    CHECK(BUF_COUNT(&b, Pair) == 1000);
    CHECK(BUF_AT(&b, Pair, 999).a == 999 && BUF_AT(&b, Pair, 10).d == 5.0);
    Pair extra = { 0, 0 };
    CHECK(buf_append(&b, &extra, sizeof extra) == BUF_TOO_LARGE);
    CHECK(BUF_COUNT(&b, Pair) == 1000);
    buf_free(&b);
    Buf ids;
    buf_init(&ids, 16 * sizeof(char *));
    const char *s = "id";
    for (int i = 0; i < 16; i++) CHECK(buf_append(&ids, &s, sizeof s) == BUF_OK);
    CHECK(BUF_COUNT(&ids, char *) == 16 && !strcmp(BUF_AT(&ids, char *, 15), "id"));
    buf_free(&ids);
}

/* An allocation that cannot succeed under a huge ceiling is NOMEM, not TOO_LARGE. */
static void test_buf_nomem(void)
{
    Buf b;
    buf_init(&b, SIZE_MAX / 2);
    CHECK(buf_append(&b, "ab", 2) == BUF_OK);
    CHECK(buf_reserve(&b, SIZE_MAX / 4) == BUF_NOMEM);
    CHECK(b.len == 2 && !strcmp(b.data, "ab"));
    buf_free(&b);
}

static void test_buf_adopt(void)
{
    Buf b;
    buf_init(&b, 8);
    CHECK(buf_adopt(&b, strdup("{}"), 2) == BUF_OK);
    CHECK(buf_append(&b, "\n", 1) == BUF_OK);
    CHECK_STR(b.data, "{}\n");
    CHECK(buf_adopt(&b, strdup("123456789"), 9) == BUF_TOO_LARGE); /* freed (ASan/LSan) */
    CHECK(b.data == NULL); /* adopt replaces the contents: the old ones are freed */
}

/* ASan aborts on a huge malloc unless told to return NULL, as libc does. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

int main(void)
{
    RUN(test_buf_append_and_text);
    RUN(test_buf_long_printf);
    RUN(test_buf_ceiling);
    RUN(test_buf_reserve_exact);
    RUN(test_buf_growth_capped);
    RUN(test_buf_array);
    RUN(test_buf_nomem);
    RUN(test_buf_adopt);
    return CHECK_DONE();
}
