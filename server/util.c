/* util.c -- small helpers with no state: SHA-1 (FIPS 180-4) for Orthanc's resource IDs,
 * MD5 (RFC 1321) for attachment checksums, time stamps, string stripping. Both digests are
 * written from their specifications; they are not security boundaries here, only
 * identifiers and checksums compatible with Orthanc's. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/server.h"
#include "storage/storage.h"

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* ---- SHA-1 ---- */
typedef struct {
    uint32_t h[5];
    uint64_t len;
    unsigned char block[64];
    size_t used;
} Sha1;

static void sha1_block(Sha1 *s, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void sha1(const void *data, size_t len, uint32_t out[5])
{
    Sha1 s = { { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 }, 0, { 0 }, 0 };
    const unsigned char *p = data;
    s.len = (uint64_t)len * 8;
    while (len >= 64) { sha1_block(&s, p); p += 64; len -= 64; }
    unsigned char tail[128] = { 0 };
    memcpy(tail, p, len);
    tail[len] = 0x80;
    size_t total = len + 9 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++) tail[total - 1 - i] = (unsigned char)(s.len >> (8 * i));
    sha1_block(&s, tail);
    if (total == 128) sha1_block(&s, tail + 64);
    memcpy(out, s.h, sizeof s.h);
}

void srv_sha1_id(const char *key, size_t len, char out[IDX_ID_LEN])
{
    uint32_t h[5];
    sha1(key, len, h);
    snprintf(out, IDX_ID_LEN, "%08x-%08x-%08x-%08x-%08x", h[0], h[1], h[2], h[3], h[4]);
}

/* ---- MD5 ---- */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
};
static const int md5_r[64] = { 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                               5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                               4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                               6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21 };

static void md5_block(uint32_t h[4], const unsigned char *p)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol(a + f + md5_k[i] + m[g], md5_r[i]);
        a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

void srv_md5_hex(const void *buf, size_t len, char out[33])
{
    uint32_t h[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };
    const unsigned char *p = buf;
    uint64_t bits = (uint64_t)len * 8;
    while (len >= 64) { md5_block(h, p); p += 64; len -= 64; }
    unsigned char tail[128] = { 0 };
    memcpy(tail, p, len);
    tail[len] = 0x80;
    size_t total = len + 9 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++) tail[total - 8 + i] = (unsigned char)(bits >> (8 * i));
    md5_block(h, tail);
    if (total == 128) md5_block(h, tail + 64);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", (h[i / 4] >> (8 * (i % 4))) & 0xff);
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
