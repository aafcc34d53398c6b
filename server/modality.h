/* modality.h -- remote DICOM modalities (server/modality.c, prefix modality_) and the SCU
 * services on them (server/scu.c, prefix scu_): echo, store (job), query (/queries), move.
 *
 * Modalities: those of DicomModalities plus those added through PUT /modalities/{name}, kept in
 * IndexDirectory/modalities.json (written atomically; DicomModalitiesInDatabase true: only those
 * added through REST are known). The registry is what the DICOM listener's access control
 * consults too, so a modality added through REST may query and retrieve at once.
 * Threads: any thread.
 */
#ifndef MP_MODALITY_H
#define MP_MODALITY_H

#include "server/server.h"

typedef struct SrvModality {
    char name[128];
    char aet[65];
    char host[256];
    int port;
    bool allow_echo, allow_find, allow_move, allow_get, allow_store;
    char manufacturer[64];   /* "Generic" */
    char local_aet[65];      /* "" = DicomAet */
    int timeout;             /* 0 = DicomScuTimeout */
    int parallel;            /* "ParallelAssociations": C-MOVE sub-associations at once; 0 = 1 */
} SrvModality;

/* Loads the REST-added modalities (start-up, main thread, after srv_open). */
bool modality_init(SrvError *err, Srv *srv);
void modality_cleanup(void);
/* By name (the key of DicomModalities / the REST route). false if unknown. */
bool modality_by_name(Srv *srv, const char *name, SrvModality *out);
/* By AE title (case-insensitive); host non-NULL and DicomCheckModalityHost: the host must be
 * the modality's too. */
bool modality_by_aet(Srv *srv, const char *aet, const char *host, SrvModality *out);
/* GET /modalities (names, or with expand the objects as Orthanc's ?expand). New tree. */
cJSON *modality_list_json(Srv *srv, bool expand);
/* Orthanc's object form of a modality (GET /modalities?expand entries). */
cJSON *modality_json(const SrvModality *m);
/* PUT /modalities/{name}: body is [AET, host, port] or {"AET","Host","Port",...}; replaces
 * a modality of that name. SRV_BAD_REQUEST on a bad body. */
bool modality_put(SrvError *err, Srv *srv, const char *name, const cJSON *body);
/* Orthanc's [AET, host, port] or object form into *out (name left empty), without registering it
 * (POST /tools/dicom-echo). SRV_BAD_REQUEST on a bad body. */
bool modality_parse(SrvError *err, const cJSON *body, SrvModality *out);
/* DELETE /modalities/{name}: SRV_UNKNOWN_RESOURCE if unknown. */
bool modality_delete(SrvError *err, Srv *srv, const char *name);

/* C-ECHO to a modality (server/scu.c; timeout_s 0: its Timeout or DicomScuTimeout). Errors:
 * SRV_NETWORK_PROTOCOL with the association's message. More SCU services: server/scu.h. */
bool scu_echo(SrvError *err, Srv *srv, const SrvModality *m, int timeout_s);

#endif
