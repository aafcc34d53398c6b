/* auth.c -- who may talk to the REST API: the remote-access rule and HTTP Basic users.
 *
 * DESIGN: both checks run at the first call of the access handler (http.c), before a byte of
 * the body is read, so a refused client cannot make us hold a 2 GB upload.
 * - Remote access: with RemoteAccessAllowed false only 127.0.0.1 and ::1 (and 127.0.0.1 as a
 *   v4-mapped IPv6 address) are local, exactly as Orthanc compares the peer with "127.0.0.1";
 *   anyone else, 127.0.0.2 included, gets 403.
 * - Authentication: with AuthenticationEnabled (on by default when remote access is allowed,
 *   see config.c) the Authorization header must be "Basic base64(user:password)" naming one
 *   of RegisteredUsers; otherwise 401 with WWW-Authenticate. libmicrohttpd parses the header
 *   (MHD_basic_auth_get_username_password: "Basic " then base64 whose length is a multiple
 *   of 4, so a stray trailing character is refused). Comparison is constant-time in the length and
 *   content of the secret: every registered user is compared, each with a loop over the
 *   longest of the two strings that never exits early, so timing reveals neither which user
 *   matched nor how many characters of a password were right.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "rest/rest_int.h"

#define AUTH_MAX_LEN 1024 /* longer user names or passwords are refused without comparing */

bool rest_auth_is_local(const struct sockaddr *sa)
{
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            const uint8_t *b = in6->sin6_addr.s6_addr;
            return b[12] == 127 && b[13] == 0 && b[14] == 0 && b[15] == 1;
        }
    }
    return false;
}

/* 0 when a (length alen) equals b (length blen). Time depends on max(alen, blen) only. */
unsigned rest_auth_ct_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen > blen ? alen : blen;
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff;
}

bool rest_auth_check_user(const Cfg *cfg, const char *name, const char *password, char **user)
{
    *user = NULL;
    if (!name || !password) return false;
    size_t ulen = strlen(name), plen = strlen(password);
    if (ulen > AUTH_MAX_LEN || plen > AUTH_MAX_LEN) return false;
    /* Every user is compared: no early exit on a match. */
    size_t match = SIZE_MAX;
    for (size_t i = 0; i < cfg->nusers; i++) {
        const CfgUser *u = &cfg->users[i];
        unsigned d = rest_auth_ct_diff(name, ulen, u->name, strlen(u->name));
        d |= rest_auth_ct_diff(password, plen, u->password, strlen(u->password));
        if (d == 0 && match == SIZE_MAX) match = i;
    }
    if (match == SIZE_MAX) return false;
    *user = strdup(cfg->users[match].name);
    return *user != NULL;
}

bool rest_auth_admit(RestCall *call, const struct sockaddr *peer)
{
    const Cfg *cfg = &call->srv->cfg;
    if (!cfg->remote_access_allowed && !rest_auth_is_local(peer)) {
        SrvError e = { .code = SRV_UNAUTHORIZED, .http_status = 403 };
        snprintf(e.message, sizeof e.message, "remote access is not allowed");
        rest_reply_error(call, &e);
        return false;
    }
    if (!cfg->authentication_enabled) return true;
    const char *h = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    char *pw = NULL;
    char *name = h ? MHD_basic_auth_get_username_password(call->conn, &pw) : NULL;
    bool ok = rest_auth_check_user(cfg, name, pw, &call->user);
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        MHD_free(pw);
    }
    if (name) MHD_free(name);
    if (ok) return true;
    SRV_LOG_WARN("http", "%s %s from %s: %s credentials", call->method, call->url,
                 call->remote_ip, h ? "bad" : "no");
    SrvError e = { .code = SRV_UNAUTHORIZED, .http_status = 401 };
    snprintf(e.message, sizeof e.message, h ? "bad credentials" : "credentials required");
    rest_reply_error(call, &e);
    rest_add_header(call, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"" MP_NAME "\"");
    return false;
}
