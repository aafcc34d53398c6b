/* peers.h -- Orthanc peers: other Orthanc-compatible servers reached over HTTP
 * (server/peers.c, prefix peers_). /peers and its store job.
 *
 * The registry is OrthancPeers (unless OrthancPeersInDatabase) plus the peers added with
 * PUT /peers/{name}, which are saved to IndexDirectory/peers.json (as modalities.json) and come
 * back after a restart. DELETE of a configured peer forgets it until the next start (as
 * Orthanc with OrthancPeersInDatabase false). Threads: any thread.
 */
#ifndef MP_PEERS_H
#define MP_PEERS_H

#include "server/httpc.h"

/* Start-up (main thread, after srv_open): parses OrthancPeers (a bad entry stops start-up),
 * loads peers.json. */
bool peers_init(SrvError *err, Srv *srv);
void peers_cleanup(void);

/* A copy of the named peer (httpc_remote_cleanup() it); false if unknown. */
bool peers_get(Srv *srv, const char *name, HttpcRemote *out);
/* GET /peers: names sorted, or with expand {name: public JSON}. New tree. */
cJSON *peers_list_json(bool expand);
/* PUT /peers/{name}: Orthanc's forms; SRV_BAD_FILE_FORMAT / SRV_INEXISTENT_FILE on a bad one. */
bool peers_put(SrvError *err, const char *name, const cJSON *body);
/* DELETE /peers/{name}: SRV_INEXISTENT_ITEM if unknown. */
bool peers_delete(SrvError *err, const char *name);

/* GET {peer}/system (its answer as parsed JSON). */
bool peers_system(SrvError *err, Srv *srv, const HttpcRemote *peer, cJSON **out);
/* POST {peer}/instances with body (store-straight): *status and *answer (the peer's answer,
 * malloc'd, *answer_len bytes, its Content-Type in ctype) on any HTTP answer. */
bool peers_store_straight(SrvError *err, Srv *srv, const HttpcRemote *peer, const void *body, size_t len,
                          long *status, char **answer, size_t *answer_len, char ctype[256]);

/* POST /peers/{name}/store. Body: an ID, a list of IDs, or {"Resources", "Synchronous" /
 * "Asynchronous", "Priority", "Transcode", "Compress"}. new: checks the body and lists the
 * files (400/404 before anything is sent); run: sends now; submit: as an "OrthancPeerStore"
 * job (takes s). Instances go one per request, streamed from their files (gzip on the fly
 * with Compress; Transcode converts one instance at a time in memory). */
typedef struct PeerStore PeerStore;
PeerStore *peers_store_new(SrvError *err, Srv *srv, const char *name, const HttpcRemote *peer,
                           const cJSON *body);
void peers_store_free(PeerStore *s);
bool peers_store_async(const PeerStore *s);
bool peers_store_run(SrvError *err, PeerStore *s);
cJSON *peers_store_result(const PeerStore *s);
bool peers_store_submit(SrvError *err, PeerStore *s, char job_id[JOB_ID_LEN]);
extern const JobType peers_store_job_type;

#endif
