/* auth.c -- who may talk to the REST API: the remote-access rule and HTTP Basic users.
 *
 * DESIGN: both checks run at the first call of the access handler (http.c), before a byte of
 * the body is read, so a refused client cannot make us hold a 2 GB upload.
 * - Remote access: with RemoteAccessAllowed false only 127.0.0.1 and ::1 (and 127.0.0.1 as a
 *   v4-mapped IPv6 address) are local, exactly as Orthanc compares the peer with "127.0.0.1";
 *   anyone else, 127.0.0.2 included, gets 403.
 * - Authentication: with AuthenticationEnabled (on by default when remote access is allowed,
 *   see config.c) the Authorization header must be "Basic base64(user:password)" naming one
 *   of RegisteredUsers; otherwise 401 with WWW-Authenticate. The header is decoded here (no
 *   library), into a bounded stack buffer. Comparison is constant-time in the length and
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

#define AUTH_MAX_DECODED 1024 /* longer credentials are refused without further work */

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

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

bool rest_auth_b64_decode(const char *in, size_t inlen, char *out, size_t cap,
                                   size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '=') { pad++; continue; }
        if (pad) return false; /* data after padding */
        int v = b64_value(ch);
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap) return false;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (pad > 2 || (inlen % 4 != 0 && pad)) return false;
    if (n >= cap) return false;
    out[n] = '\0';
    *outlen = n;
    return true;
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

bool rest_auth_check_header(const Cfg *cfg, const char *header, char **user)
{
    *user = NULL;
    if (!header) return false;
    while (*header == ' ') header++;
    if (strncasecmp(header, "Basic ", 6) != 0) return false;
    const char *p = header + 6;
    while (*p == ' ') p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len == 0 || len > (AUTH_MAX_DECODED / 3) * 4) return false;

    char decoded[AUTH_MAX_DECODED + 1];
    size_t dlen;
    if (!rest_auth_b64_decode(p, len, decoded, sizeof decoded, &dlen)) return false;
    const char *colon = memchr(decoded, ':', dlen);
    if (!colon) return false;
    size_t ulen = (size_t)(colon - decoded);
    const char *pw = colon + 1;
    size_t plen = dlen - ulen - 1;

    /* Every user is compared: no early exit on a match. */
    size_t match = SIZE_MAX;
    for (size_t i = 0; i < cfg->nusers; i++) {
        const CfgUser *u = &cfg->users[i];
        unsigned d = rest_auth_ct_diff(decoded, ulen, u->name, strlen(u->name));
        d |= rest_auth_ct_diff(pw, plen, u->password, strlen(u->password));
        if (d == 0 && match == SIZE_MAX) match = i;
    }
    explicit_bzero(decoded, sizeof decoded);
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
    if (rest_auth_check_header(cfg, h, &call->user)) return true;
    SRV_LOG_WARN("http", "%s %s from %s: %s credentials", call->method, call->url,
                 call->remote_ip, h ? "bad" : "no");
    SrvError e = { .code = SRV_UNAUTHORIZED, .http_status = 401 };
    snprintf(e.message, sizeof e.message, h ? "bad credentials" : "credentials required");
    rest_reply_error(call, &e);
    rest_add_header(call, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"" MP_NAME "\"");
    return false;
}
