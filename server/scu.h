/* scu.h -- the SCU services behind /modalities and /queries (server/scu.c, prefix scu_).
 * Threads: any thread. */
#ifndef MP_SCU_H
#define MP_SCU_H

#include "server/modality.h"

/* C-STORE of resources to a modality (POST /modalities/{name}/store). Body: an ID, a list of
 * IDs, or {"Resources": [...], "Synchronous"/"Asynchronous", "Priority", "MoveOriginatorAet",
 * "MoveOriginatorID"}. new: checks the body and lists the files (400 / 404 before anything is
 * sent). run: sends them all now; submit: as a "DicomModalityStore" job (takes s). */
typedef struct ScuStore ScuStore;
ScuStore *scu_store_new(SrvError *err, Srv *srv, const SrvModality *m, const cJSON *body);
void scu_store_free(ScuStore *s);
bool scu_store_async(const ScuStore *s);
int scu_store_priority(const ScuStore *s);
bool scu_store_run(SrvError *err, ScuStore *s);
cJSON *scu_store_result(const ScuStore *s); /* Orthanc's answer / job content */
bool scu_store_submit(SrvError *err, ScuStore *s, char job_id[JOB_ID_LEN]);
extern const JobType scu_store_job_type;

/* "Patient", "Study", "Series", "Instance" (or "Image"), any case -> IDX_*; -1 otherwise. */
int scu_level_parse(const char *s);

/* C-FIND on a modality (POST /modalities/{name}/query: {"Level", "Query"}); the answers are
 * kept as a query, *id its ID (at most QueryRetrieveSize queries, the oldest goes first). */
bool scu_query(SrvError *err, Srv *srv, const SrvModality *m, const cJSON *body,
               char id[SRV_UUID_LEN]);
cJSON *scu_queries_json(void);
bool scu_query_delete(SrvError *err, const char *id);
/* GET /queries/{id}[/what]: what NULL (the item list), "answers" (indexes, or simplified
 * contents), "content" of answer n (full /tags format, or simplified), "level", "modality",
 * "query". */
bool scu_query_get(SrvError *err, const char *id, const char *what, int answer, bool simplified,
                   cJSON **out);
/* C-MOVE of answer n (or all answers when n < 0) to target (NULL/"": DicomAet). */
bool scu_query_retrieve(SrvError *err, Srv *srv, const char *id, int answer, const char *target,
                        cJSON **result);
/* C-MOVE of keys ({"StudyInstanceUID": "1.2.3", ...}: names or "gggg,eeee") at level from a
 * modality to target (POST /modalities/{name}/move). */
bool scu_move_json(SrvError *err, Srv *srv, const SrvModality *m, int level, const cJSON *keys,
                   const char *target, cJSON **result);
void scu_queries_cleanup(void);

#endif
