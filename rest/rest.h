/* rest.h -- the HTTP server: libmicrohttpd with a thread pool, the route table, JSON in/out
 * with cJSON. Calls server/ services only (server.h); never storage/ or dicom/.
 * Threads: rest_start/rest_stop from main; handlers run on MHD's pool threads ("http"). */
#ifndef MP_REST_H
#define MP_REST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/server.h"

typedef struct Rest Rest;

/* Starts listening on cfg.http_port. On success *out is the caller's, for rest_stop(). */
bool rest_start(SrvError *err, Srv *srv, Rest **out);
/* Stops accepting, lets running requests finish, frees. NULL is fine. */
void rest_stop(Rest *rest);

/* ---- Request bodies, for handlers (implemented in http.c) --------------------------------
 * http.c receives the whole body before it dispatches. A body of at most SRV_SPOOL_THRESHOLD
 * bytes (server.h), and any JSON or gzip body, is held in memory. A larger one is written as
 * it arrives to a spool file in the storage area and is never held in memory; the file is
 * removed when the request ends (also when the client goes away mid-body) unless a handler
 * stored it. MaximumUploadSize applies to both (413). A handler sees the body three ways:
 *  - call->body / call->body_len: every byte, contiguous. For a spooled body this is a
 *    read-only mapping of the file: reading a header costs a few pages, but reading it all
 *    brings it all into RSS (page cache, shared), so large-body handlers prefer:
 *  - rest_body_read(): the body as a stream, from memory or file alike (pread semantics: the
 *    caller keeps its offset, so several readers or a re-read are fine);
 *  - rest_body_spool(): the spool when the body is in a file (NULL when it is in memory), to
 *    store it with ingest_spool() (a rename into the storage area, no copy). */
typedef struct RestCall RestCall;
/* Copies up to max bytes of the body from offset into buf: the count, 0 at the end, -1 on a
 * read error (the spool's file cannot be read). */
ssize_t rest_body_read(RestCall *call, uint64_t offset, void *buf, size_t max);
/* The spool holding the body, or NULL when the body is in memory. Owned by the call. */
SrvSpool *rest_body_spool(RestCall *call);

#endif
