/* buf.h -- one capped growable buffer, for bytes and for arrays (curl's dynbuf).
 *
 * DESIGN: every growable buffer gets its ceiling when it is initialised; growing past it
 * fails with BUF_TOO_LARGE, and an allocation failure fails with BUF_NOMEM, so a caller can
 * tell "the client sent too much" (413) from "we are out of memory" (a 5xx). Unlike curl's
 * dynbuf a failed growth leaves the contents as they were (an array of owned pointers can
 * still be walked and freed); the caller decides, usually buf_free(). The contents are always NUL-terminated (one byte beyond len), so a text
 * buffer is a C string. Arrays are buffers of elements: append each element's bytes and read
 * data as the element type (malloc's alignment fits any type).
 *
 * Lives in common/ (library mp_common, libc only) so the leaves (storage/, dicom/,
 * housekeeper/) may use it as well as server/ and rest/; it calls nothing of ours.
 *
 * Ownership: the Buf owns data until buf_take() hands it out (free() it) or buf_free().
 * Threads: a Buf is used by one thread at a time; no global state.
 */
#ifndef MP_COMMON_BUF_H
#define MP_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

enum { BUF_OK = 0, BUF_TOO_LARGE = 1, BUF_NOMEM = 2 };

typedef struct Buf {
    char *data;  /* NULL until the first growth; then data[len] == '\0' */
    size_t len;  /* bytes held */
    size_t cap;  /* bytes allocated (len + 1 at least once allocated) */
    size_t max;  /* ceiling on len, set at init */
} Buf;

/* Empty buffer whose len may never exceed max bytes. Allocates nothing. */
void buf_init(Buf *b, size_t max);
/* Frees the contents; the buffer is empty again and keeps its ceiling. NULL is fine. */
void buf_free(Buf *b);
/* Takes over a malloc'd string of len bytes (data[len] must be its NUL), replacing the
 * contents: BUF_OK, or data is freed and BUF_TOO_LARGE when len > max. */
int buf_adopt(Buf *b, char *data, size_t len);
/* Makes room for `extra` more bytes (plus the NUL) without changing len: BUF_OK, or
 * BUF_TOO_LARGE (len + extra > max) / BUF_NOMEM with the contents unchanged. The first growth
 * allocates exactly what is asked (so a body of known length is held once); later ones
 * double, never past the ceiling. */
int buf_reserve(Buf *b, size_t extra);
/* Appends n bytes (buf_reserve's results). */
int buf_append(Buf *b, const void *p, size_t n);
/* Appends formatted text (buf_reserve's results; BUF_NOMEM also on a format error). */
int buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(Buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Sets len to n <= len (drops the tail), or to n <= cap - 1 after the caller wrote into the
 * reserved room (data + len .. data + cap - 1). */
void buf_set_len(Buf *b, size_t n);
/* Hands the contents out (caller frees; NULL if nothing was ever allocated), *len (if not
 * NULL) gets their length; the buffer is empty again and keeps its ceiling. */
char *buf_take(Buf *b, size_t *len);

/* Arrays: the number of elements of `type` held, and element i. */
#define BUF_COUNT(b, type) ((b)->len / sizeof(type))
#define BUF_AT(b, type, i) (((type *)(void *)(b)->data)[i])

#endif
