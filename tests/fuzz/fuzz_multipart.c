/* fuzz_multipart.c -- the incremental multipart parser (server/multipart.c) on arbitrary
 * bodies. Input: one byte choosing the chunk size (1..64, or the whole body when 0), the
 * Content-Type up to the first '\n' (so the boundary parameter is fuzzed too), then the body.
 * Oracle: the body parsed whole and parsed in chunks must agree on success, the error message,
 * the number of parts, and each part's length and bytes (hashed); a refusal always says why;
 * nothing is read outside the input, nothing leaks. The whole-part mode (the DICOMweb client's
 * split of WADO-RS answers; this target replaced fuzz_dw_splitter when the client's own
 * splitter was folded into this parser) must hand the same parts, bytes and verdict. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/multipart.h"

typedef struct Sum {
    size_t begun, ended, headers;
    uint64_t bytes, hash;
} Sum;

static bool on_begin(void *cls, SrvError *err, size_t index, const MpartHeader *h, size_t n)
{
    (void)err;
    Sum *s = cls;
    if (index != s->begun + 1) abort();
    s->begun++;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].name[0]) abort();
        s->headers += strlen(h[i].name) + strlen(h[i].value);
        char v[80];
        mpart_param(h[i].value, "name", v, sizeof v);
        mpart_media_type(h[i].value, v, sizeof v);
    }
    return true;
}

static bool on_data(void *cls, SrvError *err, const char *d, size_t len)
{
    (void)err;
    Sum *s = cls;
    if (!len || s->ended >= s->begun) abort(); /* data only inside a part, never empty */
    for (size_t i = 0; i < len; i++) s->hash = (s->hash ^ (uint8_t)d[i]) * 1099511628211ULL;
    s->bytes += len;
    return true;
}

static bool on_end(void *cls, SrvError *err)
{
    (void)err;
    Sum *s = cls;
    s->ended++;
    s->hash = (s->hash ^ 0xffu) * 1099511628211ULL; /* part limits matter to the hash */
    return true;
}

/* whole-part mode (the DICOMweb client's WADO-RS split): the same bytes per part, handed at once */
static bool on_whole(void *cls, SrvError *err, size_t index, const char *d, size_t len)
{
    (void)err;
    Sum *s = cls;
    if (index != s->ended + 1 || len > 4096) abort();
    s->begun = s->ended = index;
    for (size_t i = 0; i < len; i++) s->hash = (s->hash ^ (uint8_t)d[i]) * 1099511628211ULL;
    s->bytes += len;
    s->hash = (s->hash ^ 0xffu) * 1099511628211ULL;
    return true;
}

static bool run_whole(const char *ct, const uint8_t *body, size_t len, size_t step, Sum *s, SrvError *e)
{
    MpartLimits lim = { .max_parts = 50, .max_header_bytes = 512, .max_part_bytes = 4096 };
    memset(s, 0, sizeof *s);
    s->hash = 14695981039346656037ULL;
    MpartParser *p = mpart_create_whole(e, ct, &lim, on_whole, s);
    if (!p) {
        if (!e->message[0]) abort();
        return false;
    }
    bool ok = true;
    for (size_t off = 0; ok && off < len; off += step)
        ok = mpart_feed(e, p, body + off, len - off < step ? len - off : step);
    if (ok) ok = mpart_finish(e, p);
    if (!ok && !e->message[0]) abort();
    mpart_destroy(p);
    return ok;
}

static bool run(const char *ct, const uint8_t *body, size_t len, size_t step, Sum *s, SrvError *e)
{
    static const MpartCallbacks cb = { on_begin, on_data, on_end };
    MpartLimits lim = { .max_parts = 50, .max_header_bytes = 512, .max_part_bytes = 4096 };
    memset(s, 0, sizeof *s);
    s->hash = 14695981039346656037ULL;
    MpartParser *p = mpart_create(e, ct, &lim, &cb, s);
    if (!p) {
        if (!e->message[0]) abort();
        return false;
    }
    bool ok = true;
    for (size_t off = 0; ok && off < len; off += step)
        ok = mpart_feed(e, p, body + off, len - off < step ? len - off : step);
    if (ok) ok = mpart_finish(e, p);
    if (!ok && !e->message[0]) abort();
    if (mpart_count(p) != s->begun) abort();
    mpart_destroy(p);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 20) return 0;
    size_t step = data[0] % 65;
    const uint8_t *nl = memchr(data + 1, '\n', size - 1 < 300 ? size - 1 : 300);
    if (!nl) return 0;
    size_t ctlen = (size_t)(nl - (data + 1));
    char ct[301];
    memcpy(ct, data + 1, ctlen);
    ct[ctlen] = '\0';
    const uint8_t *body = nl + 1;
    size_t len = size - (size_t)(body - data);
    Sum a, b;
    SrvError ea = { 0 }, eb = { 0 };
    bool oka = run(ct, body, len, len ? len : 1, &a, &ea);
    bool okb = run(ct, body, len, step ? step : 1, &b, &eb);
    if (oka != okb) abort();
    if (oka && (a.begun != b.begun || a.ended != b.ended || a.bytes != b.bytes || a.hash != b.hash ||
                a.headers != b.headers))
        abort();
    Sum w;
    SrvError ew = { 0 };
    bool okw = run_whole(ct, body, len, step ? step : 1, &w, &ew);
    if (okw != okb) abort();
    if (okw && (w.ended != b.ended || w.bytes != b.bytes || w.hash != b.hash)) abort();
    if (!oka && strcmp(ea.message, eb.message) != 0) {
        /* the same refusal whatever the chunking, except where a limit's byte offset differs */
        if (!strstr(ea.message, "byte") || !strstr(eb.message, "byte")) abort();
    }
    return 0;
}
