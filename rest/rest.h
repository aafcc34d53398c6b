/* rest.h -- the HTTP server: libmicrohttpd with a thread pool, the route table, JSON in/out
 * with cJSON. Calls server/ services only (server.h); never storage/ or dicom/.
 * Threads: rest_start/rest_stop from main; handlers run on MHD's pool threads ("http"). */
#ifndef MP_REST_H
#define MP_REST_H

#include <stdbool.h>

#include "server/server.h"

typedef struct Rest Rest;

/* Starts listening on cfg.http_port. On success *out is the caller's, for rest_stop(). */
bool rest_start(SrvError *err, Srv *srv, Rest **out);
/* Stops accepting, lets running requests finish, frees. NULL is fine. */
void rest_stop(Rest *rest);

#endif
