/* www.h -- the web interface's files (rest/www/), embedded at build time by
 * rest/www_embed.cmake into a generated www_assets.c. Read-only, shared by all threads. */
#ifndef MP_REST_WWW_H
#define MP_REST_WWW_H

#include <stddef.h>

typedef struct WwwAsset {
    const char *path;                /* "/index.html": relative to /app */
    const char *type;                /* Content-Type */
    const char *etag;                /* quoted, e.g. "\"0123456789abcdef\"" */
    const unsigned char *data;
    size_t size;
} WwwAsset;

extern const WwwAsset www_assets[];
extern const size_t www_nassets;
/* 16 hex digits naming this set of files: index.html asks for them under /app/v/<version>/ */
extern const char www_version[];

#endif
