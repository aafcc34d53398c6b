/* fuzz_dw_splitter.c -- the DICOMweb client's streaming multipart/related splitter
 * (server/dwclient.c) on arbitrary answers: the first byte picks the chunk size the stream is
 * fed in (as curl's writes would cut it), the rest is the body, boundary "b0". Every part handed
 * out must be bytes of the input (a copy of a slice, never beyond it), the same parts whatever
 * the chunking when both succeed, and nothing may leak or read outside the buffers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/dwclient.h"

typedef struct Seen {
    const uint8_t *in;
    size_t len;
    uint64_t sum;
    size_t n;
} Seen;

static bool on_part(void *ctx, SrvError *err, const char *d, size_t len)
{
    (void)err;
    Seen *s = ctx;
    if (len > s->len || (len && !memmem(s->in, s->len, d, len))) abort(); /* not from the input */
    for (size_t i = 0; i < len; i++) s->sum = s->sum * 31 + (unsigned char)d[i];
    s->n++;
    return true;
}

static bool run(const uint8_t *in, size_t len, size_t chunk, Seen *s)
{
    memset(s, 0, sizeof *s);
    s->in = in;
    s->len = len;
    DwcSplitter *sp = dwc_splitter_new("multipart/related; type=\"application/dicom\"; boundary=b0", 4096, on_part, s);
    if (!sp) abort();
    SrvError e = { 0 };
    bool ok = true;
    for (size_t off = 0; ok && off < len; off += chunk)
        ok = dwc_splitter_feed(&e, sp, (const char *)in + off, len - off < chunk ? len - off : chunk);
    ok = ok && dwc_splitter_finish(&e, sp);
    if (!ok && !e.message[0]) abort(); /* a refusal says why */
    dwc_splitter_free(sp);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 14) return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    Seen a, b;
    bool ok_a = run(data + 1, size - 1, chunk, &a);
    bool ok_b = run(data + 1, size - 1, size, &b); /* whole */
    if (ok_a && ok_b && (a.n != b.n || a.sum != b.sum)) abort(); /* chunking changed the parts */
    return 0;
}
