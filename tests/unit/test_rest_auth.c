/* test_rest_auth.c -- rest/auth.c: strict base64, constant-time comparison, the Authorization
 * header against RegisteredUsers, and what counts as a local peer (127.0.0.1 and ::1 only). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../check.h"
#include "rest/rest_int.h"

static void test_auth_b64(void)
{
    char out[64];
    size_t n;
    CHECK(rest_auth_b64_decode("YWxpY2U6czNjcmV0", 16, out, sizeof out, &n) && n == 12);
    CHECK_STR(out, "alice:s3cret");
    CHECK(rest_auth_b64_decode("YQ==", 4, out, sizeof out, &n) && n == 1 && out[0] == 'a');
    CHECK(rest_auth_b64_decode("YWI=", 4, out, sizeof out, &n) && n == 2);
    CHECK(rest_auth_b64_decode("", 0, out, sizeof out, &n) && n == 0);
    CHECK(!rest_auth_b64_decode("YQ=a", 4, out, sizeof out, &n));    /* data after padding */
    CHECK(!rest_auth_b64_decode("Y!==", 4, out, sizeof out, &n));    /* bad character */
    CHECK(!rest_auth_b64_decode("YQ===", 5, out, sizeof out, &n));   /* too much padding */
    CHECK(!rest_auth_b64_decode("YWxpY2U6czNjcmV0", 16, out, 12, &n)); /* no room for NUL */
}

static void test_auth_ct_diff(void)
{
    CHECK(rest_auth_ct_diff("abc", 3, "abc", 3) == 0);
    CHECK(rest_auth_ct_diff("abc", 3, "abd", 3) != 0);
    CHECK(rest_auth_ct_diff("abc", 3, "ab", 2) != 0);
    CHECK(rest_auth_ct_diff("", 0, "", 0) == 0);
    CHECK(rest_auth_ct_diff("a", 1, "", 0) != 0);
    /* lengths that differ by a multiple of 256 still differ */
    char a[257], b[1];
    memset(a, 0, sizeof a);
    CHECK(rest_auth_ct_diff(a, 256, b, 0) != 0);
}

static void test_auth_header(void)
{
    CfgUser users[2] = { { "alice", "s3cret" }, { "bob", "pa:ss word" } };
    Cfg cfg = { 0 };
    cfg.users = users;
    cfg.nusers = 2;
    char *u = NULL;
    CHECK(rest_auth_check_header(&cfg, "Basic YWxpY2U6czNjcmV0", &u));
    CHECK_STR(u, "alice");
    free(u);
    CHECK(rest_auth_check_header(&cfg, "basic  Ym9iOnBhOnNzIHdvcmQ= ", &u)); /* bob:pa:ss word */
    CHECK_STR(u, "bob");
    free(u);
    CHECK(!rest_auth_check_header(&cfg, NULL, &u) && !u);
    CHECK(!rest_auth_check_header(&cfg, "Basic YWxpY2U6czNjcmU=", &u) && !u);   /* alice:s3cre */
    CHECK(!rest_auth_check_header(&cfg, "Basic YWxpY2U=", &u) && !u);           /* no colon */
    CHECK(!rest_auth_check_header(&cfg, "Bearer YWxpY2U6czNjcmV0", &u) && !u);
    CHECK(!rest_auth_check_header(&cfg, "Basic ", &u) && !u);
    CHECK(!rest_auth_check_header(&cfg, "Basic Ym9iOnMzY3JldA==", &u) && !u);   /* bob:s3cret */
    Cfg none = { 0 };
    CHECK(!rest_auth_check_header(&none, "Basic YWxpY2U6czNjcmV0", &u) && !u);
    char *big = malloc(100000);
    memset(big, 'A', 99999);
    memcpy(big, "Basic ", 6);
    big[99999] = '\0';
    CHECK(!rest_auth_check_header(&cfg, big, &u) && !u);
    free(big);
}

static void test_auth_local(void)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    CHECK(rest_auth_is_local((struct sockaddr *)&in));
    inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
    CHECK(!rest_auth_is_local((struct sockaddr *)&in));
    inet_pton(AF_INET, "10.0.0.1", &in.sin_addr);
    CHECK(!rest_auth_is_local((struct sockaddr *)&in));
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    CHECK(rest_auth_is_local((struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
    CHECK(rest_auth_is_local((struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:127.0.0.2", &in6.sin6_addr);
    CHECK(!rest_auth_is_local((struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    CHECK(!rest_auth_is_local((struct sockaddr *)&in6));
    CHECK(!rest_auth_is_local(NULL));
}

int main(void)
{
    RUN(test_auth_b64);
    RUN(test_auth_ct_diff);
    RUN(test_auth_header);
    RUN(test_auth_local);
    return CHECK_DONE();
}
