/* util.c -- small helpers with no state: SHA-1 for Orthanc's resource IDs, MD5 for attachment
 * checksums, base64 decoding (all three through Nettle), time stamps, string stripping. The
 * digests are not security boundaries here, only identifiers and checksums compatible with
 * Orthanc's. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>
#include <time.h>

#include <nettle/base64.h>
#include <nettle/md5.h>
#include <nettle/sha1.h>

#include <cjson/cJSON.h>

#include "server/server.h"
#include "storage/storage.h"

void srv_sha1_id(const char *key, size_t len, char out[IDX_ID_LEN])
{
    struct sha1_ctx ctx;
    uint8_t d[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, len, (const uint8_t *)key);
    sha1_digest(&ctx, sizeof d, d);
    char *o = out;
    for (int i = 0; i < SHA1_DIGEST_SIZE; i++) {
        if (i && i % 4 == 0) *o++ = '-';
        o += snprintf(o, 3, "%02x", d[i]);
    }
}

void srv_md5_hex(const void *buf, size_t len, char out[33])
{
    struct md5_ctx ctx;
    uint8_t d[MD5_DIGEST_SIZE];
    md5_init(&ctx);
    md5_update(&ctx, len, buf);
    md5_digest(&ctx, sizeof d, d);
    for (int i = 0; i < MD5_DIGEST_SIZE; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void *srv_base64_decode(const char *s, size_t n, size_t *len)
{
    struct base64_decode_ctx ctx;
    uint8_t *d = malloc(BASE64_DECODE_LENGTH(n) + 1);
    if (!d) return NULL;
    size_t o = 0;
    base64_decode_init(&ctx);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-') c = '+'; /* base64url too, as before */
        else if (c == '_') c = '/';
        /* nettle skips white space itself; any other character outside the alphabet fails */
        int r = base64_decode_single(&ctx, d + o, (char)c);
        if (r < 0) goto bad;
        o += (size_t)r;
    }
    uint8_t none;
    while (ctx.bits) /* padding left out (or short): complete it */
        if (base64_decode_single(&ctx, &none, '=') < 0) goto bad;
    if (!base64_decode_final(&ctx)) goto bad;
    d[o] = 0;
    *len = o;
    return d;
bad:
    free(d);
    return NULL;
}

void srv_uid_2_25(const uint8_t bits[16], char out[SRV_UID_2_25_LEN])
{
    uint32_t w[4]; /* big-endian 32-bit words of the 128-bit number */
    for (int i = 0; i < 4; i++)
        w[i] = (uint32_t)bits[4 * i] << 24 | (uint32_t)bits[4 * i + 1] << 16 |
               (uint32_t)bits[4 * i + 2] << 8 | bits[4 * i + 3];
    char digits[40]; /* 2^128 has 39 decimal digits */
    int nd = 0;
    bool zero;
    do { /* repeated long division by 10 */
        uint64_t rem = 0;
        zero = true;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | w[i];
            w[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            if (w[i]) zero = false;
        }
        digits[nd++] = (char)('0' + rem);
    } while (!zero);
    int o = snprintf(out, SRV_UID_2_25_LEN, "2.25.");
    while (nd > 0) out[o++] = digits[--nd];
    out[o] = '\0';
}

void srv_uid_2_25_random(char out[SRV_UID_2_25_LEN])
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0) got += (size_t)n;
        else SRV_ASSERT(errno == EINTR); /* getrandom cannot fail otherwise for 16 bytes */
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* a version-4 UUID, as PS3.5 B.2 suggests */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    srv_uid_2_25(b, out);
}

void srv_now_iso(char out[16])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%dT%H%M%S", &tm);
}

char *srv_strip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0')) n--;
    s[n] = '\0';
    size_t i = 0;
    while (s[i] == ' ') i++;
    if (i) memmove(s, s + i, n - i + 1);
    return s;
}

bool srv_is_orthanc_id(const char *s)
{
    if (strlen(s) != SRV_ID_LEN - 1) return false;
    for (size_t i = 0; s[i]; i++) {
        bool dash = i % 9 == 8;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return false;
    }
    return true;
}

static const char *const level_names[IDX_LEVELS] = { "Patient", "Study", "Series", "Instance" };
static const char *const level_routes[IDX_LEVELS] = { "patients", "studies", "series",
                                                      "instances" };
const char *srv_level_name(int level)
{
    return level >= 0 && level < IDX_LEVELS ? level_names[level] : "?";
}
const char *srv_level_route(int level)
{
    return level >= 0 && level < IDX_LEVELS ? level_routes[level] : "?";
}

bool srv_save_json(SrvError *err, const char *path, cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    size_t n = strlen(text), off = 0;
    while (ok && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) off += (size_t)w;
    }
    if (ok) ok = fsync(fd) == 0;
    if (fd >= 0) close(fd);
    if (ok) ok = rename(tmp, path) == 0;
    int e = errno;
    free(text);
    if (!ok) {
        unlink(tmp);
        return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot save %s: %s", path, strerror(e));
    }
    return true;
}
