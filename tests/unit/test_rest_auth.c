/* test_rest_auth.c -- rest/auth.c: constant-time comparison, decoded credentials against
 * RegisteredUsers (the header itself is parsed by libmicrohttpd: 70_security_access.sh), and what counts as a local peer (127.0.0.1 and ::1 only). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../check.h"
#include "rest/rest_int.h"

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

static void test_auth_user(void)
{
    CfgUser users[2] = { { "alice", "s3cret" }, { "bob", "pa:ss word" } };
    Cfg cfg = { 0 };
    cfg.users = users;
    cfg.nusers = 2;
    char *u = NULL;
    CHECK(rest_auth_check_user(&cfg, "alice", "s3cret", &u));
    CHECK_STR(u, "alice");
    free(u);
    CHECK(rest_auth_check_user(&cfg, "bob", "pa:ss word", &u));
    CHECK_STR(u, "bob");
    free(u);
    CHECK(!rest_auth_check_user(&cfg, NULL, NULL, &u) && !u);        /* no header */
    CHECK(!rest_auth_check_user(&cfg, "alice", NULL, &u) && !u);     /* no password */
    CHECK(!rest_auth_check_user(&cfg, "alice", "s3cre", &u) && !u);  /* prefix */
    CHECK(!rest_auth_check_user(&cfg, "alice", "s3cretX", &u) && !u);
    CHECK(!rest_auth_check_user(&cfg, "alice", "", &u) && !u);
    CHECK(!rest_auth_check_user(&cfg, "bob", "s3cret", &u) && !u);   /* another user's */
    CHECK(!rest_auth_check_user(&cfg, "", "", &u) && !u);
    Cfg none = { 0 };
    CHECK(!rest_auth_check_user(&none, "alice", "s3cret", &u) && !u);
    char *big = malloc(100000);
    memset(big, 'A', 99999);
    big[99999] = '\0';
    CHECK(!rest_auth_check_user(&cfg, "alice", big, &u) && !u);
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
    RUN(test_auth_ct_diff);
    RUN(test_auth_user);
    RUN(test_auth_local);
    return CHECK_DONE();
}
