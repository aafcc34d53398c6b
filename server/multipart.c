/* multipart.c -- incremental MIME multipart parser; see multipart.h for the design.
 *
 * The window holds unconsumed bytes. It starts with a virtual CRLF so that a body opening
 * with "--boundary" matches the delimiter CRLF "--boundary" like every later one. Each state
 * consumes from the front of the window what it can decide on, then the rest is moved to the
 * front and more input copied behind it.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/multipart.h"

#define WINDOW_MIN (64 * 1024)
#define DEFAULT_MAX_HEADER (16 * 1024)
#define MAX_PADDING 256 /* blanks allowed after a boundary (RFC 2046 transport padding) */

enum { ST_PREAMBLE, ST_AFTER_DELIM, ST_HEADERS, ST_BODY, ST_EPILOGUE, ST_FAILED };

struct MpartParser {
    MpartCallbacks cb;
    void *cls;
    MpartLimits lim;
    char delim[4 + MPART_MAX_BOUNDARY + 1]; /* CRLF "--" boundary */
    size_t dlen;
    char *win;
    size_t wlen, wcap;
    int state;
    size_t parts;
    uint64_t part_bytes;   /* of the current part */
    uint64_t consumed;     /* body bytes consumed (for messages; excludes the virtual CRLF) */
    uint64_t preamble;
    SrvError failure;      /* repeated to later calls */
    /* whole parts (mpart_create_whole): the current part gathered here */
    MpartWholeFn whole;
    void *whole_cls;
    char *part;
    size_t plen, pcap;
};

bool mpart_media_type(const char *ct, char *out, size_t size)
{
    if (!ct || !size) return false;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = 0;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t') n++;
    if (!n || n >= size) return false;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)ct[i]);
    out[n] = '\0';
    return true;
}

bool mpart_param(const char *v, const char *name, char *out, size_t size)
{
    if (!v || !name || !size) return false;
    size_t nlen = strlen(name);
    const char *p = strchr(v, ';');
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        const char *key = p;
        while (*p && *p != '=' && *p != ';' && *p != ' ' && *p != '\t') p++;
        size_t klen = (size_t)(p - key);
        while (*p == ' ' || *p == '\t') p++;
        if (*p != '=') { p = strchr(p, ';'); continue; }
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = 0;
        bool match = klen == nlen && !strncasecmp(key, name, nlen);
        if (*p == '"') {
            p++;
            for (; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) p++;
                if (match) { if (n + 1 >= size) return false; out[n++] = *p; }
            }
            if (*p != '"') return false; /* unterminated quote */
            p++;
        } else {
            for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
                if (match) { if (n + 1 >= size) return false; out[n++] = *p; }
        }
        if (match) { out[n] = '\0'; return true; }
        p = strchr(p, ';');
    }
    return false;
}

static bool fail(SrvError *err, MpartParser *p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(SrvError *err, MpartParser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->failure.code = SRV_BAD_REQUEST;
    p->failure.http_status = 0;
    vsnprintf(p->failure.message, sizeof p->failure.message, fmt, ap);
    va_end(ap);
    p->state = ST_FAILED;
    if (err) *err = p->failure;
    return false;
}

/* A callback refused: keep its error as the parser's. */
static bool refused(SrvError *err, MpartParser *p)
{
    if (err && !err->code) srv_fail(err, SRV_BAD_REQUEST, "multipart part refused");
    if (err) p->failure = *err;
    else srv_fail(&p->failure, SRV_BAD_REQUEST, "multipart part refused");
    p->state = ST_FAILED;
    return false;
}

MpartParser *mpart_create(SrvError *err, const char *content_type, const MpartLimits *limits,
                          const MpartCallbacks *cb, void *cls)
{
    char boundary[MPART_MAX_BOUNDARY + 2];
    if (!content_type || !mpart_param(content_type, "boundary", boundary, sizeof boundary)) {
        srv_fail(err, SRV_BAD_REQUEST, "the multipart Content-Type has no valid boundary parameter "
                 "(1 to %d characters)", MPART_MAX_BOUNDARY);
        return NULL;
    }
    size_t blen = strlen(boundary);
    bool ok = blen >= 1 && blen <= MPART_MAX_BOUNDARY && boundary[blen - 1] != ' ';
    for (size_t i = 0; ok && i < blen; i++)
        if ((unsigned char)boundary[i] < 0x20 || (unsigned char)boundary[i] > 0x7e) ok = false;
    if (!ok) {
        srv_fail(err, SRV_BAD_REQUEST, "the multipart boundary must be 1 to %d printable "
                 "characters, not ending with a space", MPART_MAX_BOUNDARY);
        return NULL;
    }
    MpartParser *p = calloc(1, sizeof *p);
    if (!p) { srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); return NULL; }
    if (cb) p->cb = *cb;
    p->cls = cls;
    if (limits) p->lim = *limits;
    if (!p->lim.max_header_bytes) p->lim.max_header_bytes = DEFAULT_MAX_HEADER;
    p->dlen = (size_t)snprintf(p->delim, sizeof p->delim, "\r\n--%s", boundary);
    p->wcap = p->lim.max_header_bytes + p->dlen + 8 > WINDOW_MIN ? p->lim.max_header_bytes + p->dlen + 8
                                                                 : WINDOW_MIN;
    p->win = malloc(p->wcap);
    if (!p->win) { free(p); srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"); return NULL; }
    memcpy(p->win, "\r\n", 2); /* the virtual CRLF before a body that opens with the boundary */
    p->wlen = 2;
    p->state = ST_PREAMBLE;
    return p;
}

void mpart_destroy(MpartParser *p)
{
    if (!p) return;
    free(p->part);
    free(p->win);
    free(p);
}

size_t mpart_count(const MpartParser *p) { return p ? p->parts : 0; }

/* ---- whole parts: the streaming callbacks gather, part_end hands the part over ---------- */

static bool whole_begin(void *cls, SrvError *err, size_t index, const MpartHeader *h, size_t n)
{
    (void)err, (void)index, (void)h, (void)n;
    ((MpartParser *)cls)->plen = 0;
    return true;
}

static bool whole_data(void *cls, SrvError *err, const char *data, size_t len)
{
    MpartParser *p = cls;
    if (p->plen + len > p->pcap) { /* emit() already checked max_part_bytes */
        size_t cap = p->pcap ? p->pcap : 64 * 1024;
        while (cap < p->plen + len) cap *= 2;
        if (cap > p->lim.max_part_bytes) cap = (size_t)p->lim.max_part_bytes;
        char *np = realloc(p->part, cap);
        if (!np) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory for part %zu (%zu bytes)",
                                 p->parts, p->plen + len);
        p->part = np;
        p->pcap = cap;
    }
    memcpy(p->part + p->plen, data, len);
    p->plen += len;
    return true;
}

static bool whole_end(void *cls, SrvError *err)
{
    MpartParser *p = cls;
    return p->whole(p->whole_cls, err, p->parts, p->plen ? p->part : "", p->plen);
}

MpartParser *mpart_create_whole(SrvError *err, const char *content_type, const MpartLimits *limits,
                                MpartWholeFn part, void *cls)
{
    if (!limits || !limits->max_part_bytes || limits->max_part_bytes > SIZE_MAX / 2 || !part) {
        srv_fail(err, SRV_INTERNAL, "mpart_create_whole needs a part callback and a part ceiling");
        return NULL;
    }
    static const MpartCallbacks cb = { whole_begin, whole_data, whole_end };
    MpartParser *p = mpart_create(err, content_type, limits, &cb, NULL);
    if (!p) return NULL;
    p->cls = p;
    p->whole = part;
    p->whole_cls = cls;
    return p;
}

static void consume(MpartParser *p, size_t n, size_t *pos)
{
    *pos += n;
    p->consumed += n;
}

/* Parses the header block win[0..len) (lines separated by CRLF, no final empty line) and
 * calls part_begin. */
static bool begin_part(SrvError *err, MpartParser *p, char *block, size_t len)
{
    MpartHeader h[MPART_MAX_HEADERS];
    size_t n = 0;
    if (p->lim.max_parts && p->parts >= p->lim.max_parts)
        return fail(err, p, "more than %zu parts in one multipart body", p->lim.max_parts);
    size_t index = p->parts + 1;
    block[len] = '\0'; /* the byte was the CR of the empty line: already consumed */
    char *line = block;
    while (line && *line) {
        char *next = strstr(line, "\r\n");
        if (next) { *next = '\0'; next += 2; }
        if (*line == ' ' || *line == '\t') { /* folded: continues the previous value */
            if (!n) return fail(err, p, "part %zu: a header line starts with a blank", index);
            char *prev = (char *)h[n - 1].value;
            size_t pl = strlen(prev);
            while (*line == ' ' || *line == '\t') line++;
            /* the previous value ends before this line in the same block: shift in place */
            memmove(prev + pl + 1, line, strlen(line) + 1);
            prev[pl] = ' ';
        } else {
            char *colon = strchr(line, ':');
            if (!colon || colon == line)
                return fail(err, p, "part %zu: malformed header line (no \"name:\")", index);
            if (n == MPART_MAX_HEADERS)
                return fail(err, p, "part %zu: more than %d header lines", index, MPART_MAX_HEADERS);
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            h[n].name = line;
            h[n].value = v;
            n++;
        }
        line = next;
    }
    for (size_t i = 0; i < n; i++) { /* trailing blanks */
        char *v = (char *)h[i].value;
        size_t l = strlen(v);
        while (l && (v[l - 1] == ' ' || v[l - 1] == '\t')) v[--l] = '\0';
    }
    p->part_bytes = 0;
    p->parts = index;
    if (p->cb.part_begin && !p->cb.part_begin(p->cls, err, p->parts, h, n)) return refused(err, p);
    return true;
}

static bool emit(SrvError *err, MpartParser *p, const char *data, size_t len)
{
    if (!len) return true;
    p->part_bytes += len;
    if (p->lim.max_part_bytes && p->part_bytes > p->lim.max_part_bytes)
        return fail(err, p, "part %zu is larger than %llu bytes", p->parts,
                    (unsigned long long)p->lim.max_part_bytes);
    if (p->cb.part_data && !p->cb.part_data(p->cls, err, data, len)) return refused(err, p);
    return true;
}

/* Consumes what the window allows. */
static bool process(SrvError *err, MpartParser *p)
{
    size_t pos = 0;
    for (;;) {
        char *w = p->win + pos;
        size_t avail = p->wlen - pos;
        if (p->state == ST_PREAMBLE) {
            char *d = memmem(w, avail, p->delim, p->dlen);
            if (d) {
                size_t skip = (size_t)(d - w);
                p->preamble += skip;
                if (p->preamble > MPART_MAX_PREAMBLE + 2) /* + the virtual CRLF */
                    return fail(err, p, "no multipart boundary \"%s\" in the first %d bytes of the body",
                                p->delim + 4, MPART_MAX_PREAMBLE);
                consume(p, skip + p->dlen, &pos);
                p->state = ST_AFTER_DELIM;
                continue;
            }
            size_t keep = p->dlen - 1;
            if (avail > keep) {
                p->preamble += avail - keep;
                consume(p, avail - keep, &pos);
            }
            if (p->preamble > MPART_MAX_PREAMBLE + 2)
                return fail(err, p, "no multipart boundary \"%s\" in the first %d bytes of the body",
                            p->delim + 4, MPART_MAX_PREAMBLE);
            break;
        }
        if (p->state == ST_AFTER_DELIM) {
            if (avail < 2) break;
            if (w[0] == '-' && w[1] == '-') {
                consume(p, 2, &pos);
                p->state = ST_EPILOGUE;
                continue;
            }
            size_t i = 0;
            while (i < avail && i < MAX_PADDING && (w[i] == ' ' || w[i] == '\t')) i++;
            if (i == MAX_PADDING) return fail(err, p, "malformed boundary line at byte %llu", (unsigned long long)p->consumed);
            if (i + 2 > avail) break;
            if (w[i] != '\r' || w[i + 1] != '\n')
                return fail(err, p, "malformed boundary line at byte %llu (a boundary must be "
                            "followed by CRLF or \"--\")", (unsigned long long)p->consumed);
            consume(p, i + 2, &pos);
            p->state = ST_HEADERS;
            continue;
        }
        if (p->state == ST_HEADERS) {
            if (avail >= 2 && w[0] == '\r' && w[1] == '\n') { /* no headers at all */
                consume(p, 2, &pos);
                if (!begin_part(err, p, w, 0)) return false;
                p->state = ST_BODY;
                continue;
            }
            char *end = memmem(w, avail, "\r\n\r\n", 4);
            if (!end) { /* the block is at least avail - 3 bytes long */
                if (avail > p->lim.max_header_bytes + 3)
                    return fail(err, p, "part %zu: its headers exceed %zu bytes", p->parts + 1,
                                p->lim.max_header_bytes);
                break;
            }
            size_t hl = (size_t)(end - w);
            if (hl > p->lim.max_header_bytes)
                return fail(err, p, "part %zu: its headers exceed %zu bytes", p->parts + 1,
                            p->lim.max_header_bytes);
            consume(p, hl + 4, &pos);
            if (!begin_part(err, p, w, hl)) return false;
            p->state = ST_BODY;
            continue;
        }
        if (p->state == ST_BODY) {
            char *d = memmem(w, avail, p->delim, p->dlen);
            if (d) {
                size_t n = (size_t)(d - w);
                if (!emit(err, p, w, n)) return false;
                consume(p, n + p->dlen, &pos);
                if (p->cb.part_end && !p->cb.part_end(p->cls, err)) return refused(err, p);
                p->state = ST_AFTER_DELIM;
                continue;
            }
            size_t keep = p->dlen - 1;
            if (avail > keep) {
                if (!emit(err, p, w, avail - keep)) return false;
                consume(p, avail - keep, &pos);
            }
            break;
        }
        if (p->state == ST_EPILOGUE) {
            consume(p, avail, &pos);
            break;
        }
        break; /* ST_FAILED */
    }
    if (pos) {
        memmove(p->win, p->win + pos, p->wlen - pos);
        p->wlen -= pos;
    }
    return true;
}

bool mpart_feed(SrvError *err, MpartParser *p, const void *data, size_t len)
{
    if (p->state == ST_FAILED) {
        if (err) *err = p->failure;
        return false;
    }
    const char *in = data;
    while (len) {
        if (p->state == ST_EPILOGUE) return true; /* the rest is ignored */
        size_t room = p->wcap - 1 - p->wlen; /* one byte kept for begin_part's NUL */
        size_t n = len < room ? len : room;
        memcpy(p->win + p->wlen, in, n);
        p->wlen += n;
        in += n;
        len -= n;
        if (!process(err, p)) return false;
        if (p->wlen == p->wcap - 1 && p->state != ST_EPILOGUE) /* cannot happen: states consume */
            return fail(err, p, "multipart parser stalled at byte %llu", (unsigned long long)p->consumed);
    }
    return true;
}

bool mpart_finish(SrvError *err, MpartParser *p)
{
    switch (p->state) {
    case ST_EPILOGUE: return true;
    case ST_FAILED:
        if (err) *err = p->failure;
        return false;
    case ST_PREAMBLE:
        return fail(err, p, "the body holds no multipart boundary \"%s\"", p->delim + 4);
    case ST_BODY:
        return fail(err, p, "the body ends inside part %zu (no closing boundary)", p->parts);
    case ST_HEADERS:
        return fail(err, p, "the body ends inside the headers of part %zu", p->parts + 1);
    default:
        return fail(err, p, "the body ends after a boundary without the closing \"--\"");
    }
}
