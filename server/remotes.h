/* remotes.h -- a named registry of HTTP remotes (server/remotes.c, prefix remotes_): Orthanc
 * peers (server/peers.c) and DICOMweb servers (server/dwclient.c) are two instances.
 *
 * Entries come from a configuration object ({name: remote}, Orthanc's forms, see httpc.h) and
 * from PUT through REST; the REST ones are saved to one JSON file (temp file, fsync, rename,
 * mode 0600 since it holds passwords) and come back at start-up. DELETE of a configured entry
 * forgets it until the next start (as Orthanc does with its configuration). Names are kept
 * sorted (Orthanc lists them from a std::map). Threads: any thread; lookups copy out.
 */
#ifndef MP_REMOTES_H
#define MP_REMOTES_H

#include "server/httpc.h"

typedef struct Remotes Remotes;

/* what: "Orthanc peer" (messages); path: the file of REST-added entries; config: the JSON text
 * of the configuration's object (NULL: none). A bad entry fails with its name. */
Remotes *remotes_open(SrvError *err, const char *what, const char *path, const char *config);
void remotes_close(Remotes *r);
bool remotes_get(Remotes *r, const char *name, HttpcRemote *out);
cJSON *remotes_list_json(Remotes *r, bool expand);
bool remotes_put(SrvError *err, Remotes *r, const char *name, const cJSON *body);
/* SRV_INEXISTENT_ITEM "<unknown_fmt with the name>" if unknown. */
bool remotes_delete(SrvError *err, Remotes *r, const char *name, const char *unknown_prefix);

#endif
