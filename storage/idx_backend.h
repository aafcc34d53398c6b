/* idx_backend.h -- the index's backend interface: the operations table a backend fills, and
 * the few helpers the front (storage/index.c) shares with backends. Private to storage/.
 *
 * DESIGN
 * The front owns the public idx_* functions of storage.h. Each one checks its arguments
 * (levels, NULL pointers, uuid shapes, ID lengths), zeroes its outputs, then calls the
 * matching operation below with the backend's private handle (`be`, whatever its open()
 * returned: SQLite keeps its connection pool there, a libpq backend would keep its own).
 * So a backend receives only well-formed arguments, and no operation mentions a type of
 * SQLite or of any other engine: a backend is a table of plain C functions.
 *
 * A backend must:
 * - give each operation the semantics written in storage.h (NOT_FOUND, CONFLICT, ordering,
 *   the transaction / pending / change-seq / totals guarantees, any thread at any time);
 * - leave nothing allocated in an output when it returns false (the front then zeroes it);
 * - allocate outputs with malloc (callers free them with free() or idx_strings_free());
 * - never call back into our code (jobs_load returns rows, the front calls fn).
 *
 * To add a backend: write its files (storage/<name>/), define one `const IdxBackend`, add an
 * IdxBackendKind value and its IdxOptions fields in storage.h, and one case in
 * idx_open_with(). The unit tests of tests/unit/test_storage.c run against any backend.
 */
#ifndef MP_IDX_BACKEND_H
#define MP_IDX_BACKEND_H

#include "storage/storage.h"

/* ---- /tools/find constraints, parsed once by the front ---------------------------------- */

typedef enum IdxMatchKind {
    IDX_MATCH_EQUAL,    /* value equals text */
    IDX_MATCH_WILDCARD, /* text has DICOM wildcards: '*' any run, '?' one character */
    IDX_MATCH_RANGE,    /* low <= value (if low), and value <= high or value begins with high
                           (if high): "-20201231" includes that whole day of DT values.
                           Plain string order, never case-folded. */
} IdxMatchKind;

typedef struct IdxMatch {
    IdxMatchKind kind;
    const char *text;  /* EQUAL, WILDCARD: the value; RANGE: low bound or NULL */
    const char *high;  /* RANGE: high bound or NULL */
} IdxMatch;

/* One constraint: any of its alternatives matches the tag of the resource searched
 * (depth 0) or of its ancestor `depth` levels up. An absent tag never matches.
 * case_insensitive: EQUAL and WILDCARD compare with ASCII case folding (PN). */
typedef struct IdxFindTerm {
    int depth;
    uint32_t tag;
    bool case_insensitive;
    size_t nmatch;
    IdxMatch *match;   /* points into the query's own storage */
} IdxFindTerm;

/* ---- the operations table ------------------------------------------------------------- */

typedef struct IdxBackend {
    const char *name;  /* "sqlite" */
    /* Connects, creates or upgrades the schema; returns the backend's handle or NULL. */
    void *(*open)(StoError *err, const IdxOptions *opt);
    void (*close)(void *be);
    bool (*info)(StoError *err, void *be, IdxInfo *out);

    /* Pending uuids and the write path of resources. */
    bool (*pending_add)(StoError *err, void *be, const char *uuid);
    bool (*pending_clear)(StoError *err, void *be, const char *const *uuids, size_t n);
    bool (*pending_list)(StoError *err, void *be, IdxPending **uuids, size_t *n);
    bool (*store_instance)(StoError *err, void *be, const IdxNewInstance *in,
                           IdxStoreResult *out);
    bool (*delete_resource)(StoError *err, void *be, int level, const char *id,
                            IdxDeleteResult *out);

    /* Reads. */
    bool (*resource_get)(StoError *err, void *be, int level, const char *id,
                         IdxResource *out);
    bool (*resources_get)(StoError *err, void *be, int level, const char *const *ids, size_t n,
                          unsigned what, IdxResource *out);
    bool (*list)(StoError *err, void *be, int level, uint64_t since, uint64_t limit,
                 char ***ids, size_t *n);
    bool (*instances_of)(StoError *err, void *be, int level, const char *id, IdxFile **files,
                         size_t *n);
    bool (*resource_counts)(StoError *err, void *be, int level, const char *id,
                            IdxCounts *out);
    bool (*totals)(StoError *err, void *be, IdxTotals *out);
    bool (*find)(StoError *err, void *be, int level, const IdxFindTerm *terms, size_t nterms,
                 uint64_t since, uint64_t limit, char ***ids, size_t *n);

    /* Changes log. limit is already clamped to 1..1000000 by the front. */
    bool (*change_add)(StoError *err, void *be, const char *type, int level, const char *id);
    bool (*changes)(StoError *err, void *be, int64_t since, uint64_t limit, IdxChange **out,
                    size_t *n, bool *done, int64_t *last);
    bool (*changes_last)(StoError *err, void *be, IdxChange **out, size_t *n, int64_t *last);
    bool (*changes_clear)(StoError *err, void *be);

    /* Metadata. idx_metadata_delete is metadata_remove with if_match -1. */
    bool (*metadata_set)(StoError *err, void *be, int level, const char *id, const char *name,
                         const char *value);
    bool (*metadata_get)(StoError *err, void *be, int level, const char *id, const char *name,
                         char **value, int64_t *revision);
    bool (*metadata_put)(StoError *err, void *be, int level, const char *id, const char *name,
                         const char *value, int64_t if_match, int64_t *revision);
    bool (*metadata_remove)(StoError *err, void *be, int level, const char *id,
                            const char *name, int64_t if_match);
    bool (*attachment_set_md5)(StoError *err, void *be, const char *uuid, const char *md5);
    /* User-defined attachments (content type already checked by the front). */
    bool (*attachment_put)(StoError *err, void *be, int level, const char *id,
                           const IdxAttachment *a, int64_t if_match, int64_t *revision,
                           char old_uuid[STO_UUID_LEN]);
    bool (*attachment_get)(StoError *err, void *be, int level, const char *id,
                           int content_type, IdxAttachment *out);
    bool (*attachment_list)(StoError *err, void *be, int level, const char *id, int **types,
                            size_t *n);
    bool (*attachment_remove)(StoError *err, void *be, int level, const char *id,
                              int content_type, int64_t if_match, char old_uuid[STO_UUID_LEN]);
    /* Main tags of one resource replaced (reconstruct). */
    bool (*set_main_tags)(StoError *err, void *be, int level, const char *id,
                          const IdxTag *tags, size_t n);

    /* Protection and recycling order. */
    bool (*patient_set_protected)(StoError *err, void *be, const char *patient_id, bool on);
    bool (*patient_is_protected)(StoError *err, void *be, const char *patient_id, bool *out);
    bool (*oldest_patient)(StoError *err, void *be, const char *exclude_id,
                           char out[IDX_ID_LEN], bool *found);

    /* Saved jobs. jobs_load returns *n malloc'd strings, two per job (id, json, id, json,
     * ...), in the order the jobs were first saved; the front calls the caller's fn after. */
    bool (*job_save)(StoError *err, void *be, const char *job_id, const char *json);
    bool (*job_delete)(StoError *err, void *be, const char *job_id);
    bool (*jobs_load)(StoError *err, void *be, char ***rows, size_t *n);
    /* Several processes (shared): the saved jobs whose process is gone, now claimed by this
     * one, in jobs_load's format. NULL for a backend only one process uses. */
    bool (*jobs_claim)(StoError *err, void *be, char ***rows, size_t *n);
    /* Several processes: idx_invalidations and idx_change_add_stable (storage.h). NULL for
     * a backend only one process uses. */
    bool (*invalidations)(StoError *err, void *be, int timeout_ms, char ***ids, size_t *n,
                          bool *all);
    bool (*change_add_stable)(StoError *err, void *be, const char *type, int level,
                              const char *id, int stable_age, bool *logged, int *wait_s);
    bool shared;  /* several server processes may use one index at once */
} IdxBackend;

extern const IdxBackend idx_sqlite_backend;
extern const IdxBackend idx_pg_backend;

/* ---- helpers shared by the front and the backends (storage/index.c) ------------------- */

/* "patient", "study", "series", "instance"; "resource" for any other level. */
const char *idx_level_name(int level);
/* Now, UTC, as the changes log and LastUpdate write it: "20261125T204400". */
void idx_now(char out[16]);
/* The end of every backend's "find a resource" step: r is its lookup's result (1 found at
 * level `found`, 0 absent, -1 error already set). True when found at `level` (-1: any level);
 * else false, with NOT_FOUND set for an absent resource or one of another level. */
bool idx_lookup_result(StoError *err, int r, int level, int found, const char *id);
/* Grows a malloc'd array of elem-sized items so that index n fits (doubling, from 8). */
bool idx_grow(void **arr, size_t *cap, size_t n, size_t elem);

#endif
