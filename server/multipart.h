/* multipart.h -- an incremental parser of MIME multipart bodies (RFC 2046, RFC 7578):
 * multipart/related (STOW-RS, and the DICOMweb client's WADO-RS answers) and
 * multipart/form-data (browser uploads), fed as the bytes arrive, in chunks of any size, never
 * holding a part (or holding one part at a time: mpart_create_whole). The one parser of the
 * server: request bodies and streamed answers alike.
 *
 * DESIGN: the boundary comes from the Content-Type's `boundary` parameter (1..70 printable
 * characters). The body is: a preamble (ignored; at most MPART_MAX_PREAMBLE bytes), then
 * parts, each "--boundary" CRLF, header lines, an empty line, data; the data of a part ends at
 * CRLF "--boundary"; "--boundary--" closes the body, after which the epilogue is ignored.
 * The parser keeps a window of at most 64 KB (or the header ceiling) and hands part data to
 * part_data() as soon as it cannot be the start of a delimiter, so memory does not depend on
 * part sizes. Limits (parts, header block size, part size) are checked as the bytes come, so a
 * hostile body is refused at the first byte past a limit, before the rest is read.
 * Errors are SRV_BAD_REQUEST (HTTP 400) with a message naming what was wrong and where (part
 * number, byte offset); a callback that returns false stops the parser with its own error.
 * Once failed, a parser stays failed. Not thread-safe: one parser per request.
 */
#ifndef MP_MULTIPART_H
#define MP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

#define MPART_MAX_BOUNDARY 70            /* RFC 2046 */
#define MPART_MAX_PREAMBLE (64 * 1024)   /* bytes before the first boundary */
#define MPART_MAX_HEADERS 64             /* header lines per part */

typedef struct MpartParser MpartParser;

typedef struct MpartHeader {
    const char *name;   /* as received (compare with strcasecmp) */
    const char *value;  /* without surrounding blanks; folded lines joined by a space */
} MpartHeader;

typedef struct MpartCallbacks {
    /* A part begins (1-based number `index`), with its headers (borrowed for the call).
     * false stops the parser: err must then be set. */
    bool (*part_begin)(void *cls, SrvError *err, size_t index, const MpartHeader *headers, size_t n);
    /* Bytes of the current part, in order (borrowed for the call; never empty). */
    bool (*part_data)(void *cls, SrvError *err, const char *data, size_t len);
    /* The current part ended (its closing delimiter was seen). */
    bool (*part_end)(void *cls, SrvError *err);
} MpartCallbacks;

typedef struct MpartLimits {
    size_t max_parts;          /* 0: no limit */
    size_t max_header_bytes;   /* a part's header block; 0: 16 KB */
    uint64_t max_part_bytes;   /* 0: no limit */
} MpartLimits;

/* The media type of a Content-Type value ("Multipart/Related; ..." -> "multipart/related"),
 * lower-cased, without parameters. false when empty or longer than size - 1. */
bool mpart_media_type(const char *content_type, char *out, size_t size);
/* The value of parameter `name` (case-insensitive) of a Content-Type or Content-Disposition
 * value, unquoted (backslash escapes resolved). false when absent, malformed or too long. */
bool mpart_param(const char *header_value, const char *name, char *out, size_t size);

/* A parser for a body of the given Content-Type (its boundary parameter is required:
 * SRV_BAD_REQUEST without one, or with an invalid one). Callbacks may be NULL. cls is passed
 * to them. Returns NULL with err set on failure; the caller destroys it. */
MpartParser *mpart_create(SrvError *err, const char *content_type, const MpartLimits *limits,
                          const MpartCallbacks *cb, void *cls);
/* Feeds the next bytes. false with err set when the body is malformed, over a limit, or a
 * callback refused; later calls fail again with the same message. */
bool mpart_feed(SrvError *err, MpartParser *p, const void *data, size_t len);
/* Whole parts (the DICOMweb client's WADO-RS answers, split as they stream): a parser that
 * gathers each part in memory and hands it complete to part() once its closing delimiter is
 * seen (borrowed for the call; the buffer is reused for the next part, so memory is the
 * largest part, never the body). limits->max_part_bytes is required (> 0): the ceiling of
 * that memory. Same errors as mpart_create / mpart_feed. */
typedef bool (*MpartWholeFn)(void *cls, SrvError *err, size_t index, const char *data, size_t len);
MpartParser *mpart_create_whole(SrvError *err, const char *content_type, const MpartLimits *limits,
                                MpartWholeFn part, void *cls);
/* The body has ended: false (err set) unless the closing delimiter was seen. */
bool mpart_finish(SrvError *err, MpartParser *p);
/* Parts begun so far. */
size_t mpart_count(const MpartParser *p);
void mpart_destroy(MpartParser *p); /* NULL is fine */

#endif
