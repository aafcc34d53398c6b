/* modality.h -- remote DICOM modalities (server/modality.c, prefix modality_) and the SCU
 * services on them (server/scu.c, prefix scu_): echo, store (job), query (/queries), move.
 *
 * Modalities, as Orthanc 1.10: with DicomModalitiesInDatabase false, those of DicomModalities,
 * changed in memory by PUT/DELETE /modalities/{name} (lost at restart); with it true, only
 * those of PUT /modalities/{name}, kept in IndexDirectory/modalities.json (written atomically).
 * The registry is what the DICOM listener's access control consults too, so a modality added
 * through REST may query and retrieve at once.
 * Threads: any thread.
 */
#ifndef MP_MODALITY_H
#define MP_MODALITY_H

#include "server/server.h"

typedef struct SrvModality {
    char name[128];
    char aet[CFG_MODALITY_AET_MAX];
    char host[CFG_MODALITY_HOST_MAX];
    int port;
    bool allow_echo, allow_find, allow_move, allow_get, allow_store;
    bool allow_find_worklist, allow_n_action, allow_event_report, allow_transcoding; /* shown only */
    bool use_dicom_tls;      /* we have no DICOM TLS: associations toward it are refused */
    char manufacturer[64];   /* "Generic" */
    char local_aet[CFG_MODALITY_AET_MAX]; /* "" = DicomAet */
    int timeout;             /* 0 = DicomScuTimeout */
    int parallel;            /* "ParallelAssociations": C-MOVE sub-associations at once; 0 = 1 */
    bool saved;              /* put through REST (or read back from modalities.json): kept there */
} SrvModality;

/* Fills the registry: DicomModalities (unless DicomModalitiesInDatabase) and then the ones
 * saved by PUT (start-up, main thread, after srv_open). */
bool modality_init(SrvError *err, Srv *srv);
void modality_cleanup(void);
/* By name (the key of DicomModalities / the REST route). false if unknown. */
bool modality_by_name(Srv *srv, const char *name, SrvModality *out);
/* By AE title (case-insensitive); host non-NULL and DicomCheckModalityHost: the host must be
 * the modality's too. */
bool modality_by_aet(Srv *srv, const char *aet, const char *host, SrvModality *out);
/* GET /modalities (names, or with expand the objects as Orthanc's ?expand), sorted by name
 * (bytewise, as Orthanc's std::map). New tree. */
cJSON *modality_list_json(Srv *srv, bool expand);
/* Orthanc's object form of a modality (GET /modalities?expand entries). */
cJSON *modality_json(const SrvModality *m);
/* PUT /modalities/{name}: body is [AET, host, port] or {"AET","Host","Port",...}; replaces
 * a modality of that name. A bad body: cfg_modality_parse's errors. */
bool modality_put(SrvError *err, Srv *srv, const char *name, const cJSON *body);
/* Orthanc's [AET, host, port] or object form into *out (name left empty), without registering it
 * (POST /tools/dicom-echo): cfg_modality_parse, the configuration's parser. */
bool modality_parse(SrvError *err, const cJSON *body, SrvModality *out);
/* DELETE /modalities/{name} (a configured one too, as Orthanc): SRV_INEXISTENT_ITEM if unknown. */
bool modality_delete(SrvError *err, Srv *srv, const char *name);

/* C-ECHO to a modality (server/scu.c; timeout_s 0: its Timeout or DicomScuTimeout); check_find:
 * then a C-FIND at study level for a random UID, as Orthanc's "CheckFind". Errors:
 * SRV_NETWORK_PROTOCOL with the association's message; SRV_DICOM_FIND_UNAVAILABLE when the
 * echo passed but the C-FIND did not. More SCU services: server/scu.h. */
bool scu_echo(SrvError *err, Srv *srv, const SrvModality *m, int timeout_s, bool check_find);

#endif
