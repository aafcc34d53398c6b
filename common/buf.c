/* buf.c -- capped growable buffer (see buf.h). */
#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 32

void buf_init(Buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void buf_free(Buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_adopt(Buf *b, char *data, size_t len)
{
    buf_free(b);
    if (len > b->max) {
        free(data);
        return BUF_TOO_LARGE;
    }
    b->data = data;
    b->len = len;
    b->cap = len + 1;
    return BUF_OK;
}

int buf_reserve(Buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) return BUF_TOO_LARGE;
    size_t need = b->len + extra + 1; /* + the NUL; cannot overflow: max < SIZE_MAX */
    if (need <= b->cap) return BUF_OK;
    size_t cap = b->cap ? b->cap : need;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap < BUF_MIN_CAP) cap = BUF_MIN_CAP;
    if (cap - 1 > b->max) cap = b->max + 1;
    char *t = realloc(b->data, cap);
    if (!t) return BUF_NOMEM;
    b->data = t;
    b->cap = cap;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int buf_append(Buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) return BUF_NOMEM;
    int rc = buf_reserve(b, (size_t)n);
    if (rc) return rc;
    if ((size_t)n < sizeof small) memcpy(b->data + b->len, small, (size_t)n + 1);
    else vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return BUF_OK;
}

int buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_set_len(Buf *b, size_t n)
{
    if (!b->data || n >= b->cap) return;
    b->len = n;
    b->data[n] = '\0';
}

char *buf_take(Buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
