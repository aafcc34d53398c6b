/* query.h -- the one query engine (server/query.c, prefix qry_).
 *
 * C-FIND SCP, /tools/find, QIDO-RS and the web UI's lists translate their requests onto one
 * QryRequest: a level, a list of keys (a tag and a DICOM matching pattern; an empty pattern or
 * "*" only asks for the value), paging. The engine
 * - matches main DICOM tags of the level and its ancestors in the index (idx_find, SQL); the
 *   patient tags of a query above the patient level are matched on the study's own copy (as
 *   Orthanc: studies of two patients that share a PatientID stay apart),
 * - matches computed keys (ModalitiesInStudy) and keys outside the main tags afterwards, the
 *   latter on a stored file of the resource (as Orthanc: only when such a key is asked),
 * - builds each answer from the index's main tags of the resource and its ancestors, the
 *   computed attributes (NumberOf*Related*, ModalitiesInStudy, SOPClassesInStudy) and, for
 *   keys outside the main tags, the stored file,
 * - hands answers one at a time to a callback, which may stop the walk (C-CANCEL, a full page).
 * Matching rules (PS3.4 C.2.2.2, as Orthanc applies them): single value; '*' and '?' wildcards;
 * '\\'-separated lists (UID lists); ranges "a-b", "a-", "-b" for DA, TM and DT; PN compared
 * case-insensitively (ASCII) unless case_sensitive_pn; an absent value never matches a
 * non-universal pattern.
 * Threads: any thread; nothing is shared between calls.
 */
#ifndef MP_QUERY_H
#define MP_QUERY_H

#include "server/server.h"

/* Tags the engine computes (PS3.4 C.3.4 "Additional Query/Retrieve Attributes"). */
#define QRY_TAG_MODALITIES_IN_STUDY 0x00080061u
#define QRY_TAG_SOP_CLASSES_IN_STUDY 0x00080062u
#define QRY_TAG_PATIENT_STUDIES 0x00201200u   /* NumberOfPatientRelatedStudies */
#define QRY_TAG_PATIENT_SERIES 0x00201202u    /* NumberOfPatientRelatedSeries */
#define QRY_TAG_PATIENT_INSTANCES 0x00201204u /* NumberOfPatientRelatedInstances */
#define QRY_TAG_STUDY_SERIES 0x00201206u      /* NumberOfStudyRelatedSeries */
#define QRY_TAG_STUDY_INSTANCES 0x00201208u   /* NumberOfStudyRelatedInstances */
#define QRY_TAG_SERIES_INSTANCES 0x00201209u  /* NumberOfSeriesRelatedInstances */
#define QRY_TAG_QUERY_LEVEL 0x00080052u       /* QueryRetrieveLevel: never a constraint */
#define QRY_TAG_CHARSET 0x00080005u           /* SpecificCharacterSet: never a constraint */

typedef struct QryKey {
    uint32_t tag;
    const char *pattern; /* UTF-8 matching pattern; NULL, "" or "*": return key only */
} QryKey;

typedef struct QryRequest {
    int level;               /* IDX_PATIENT .. IDX_INSTANCE */
    const QryKey *keys;
    size_t nkeys;
    bool case_sensitive_pn;  /* Orthanc's CaseSensitivePN (default false) */
    bool case_insensitive_all; /* every tag compared with ASCII case folding (Orthanc's REST
                                  find without CaseSensitive); else only PN, per the above */
    bool literal_lists;      /* items of a '\\' list compared whole, '*' and '?' as plain
                                characters (Orthanc's REST find); else each item may hold
                                wildcards */
    bool sort_by_id;         /* answers in public ID order, Since/Limit paging that order (as
                                Orthanc 1.10.1's REST find answers most queries: its order
                                comes from its SQLite plan); else insertion order */
    uint64_t since;          /* answers to skip */
    uint64_t limit;          /* at most this many answers; 0: all */
    bool ids_only;           /* answers carry the ID only (no values built) */
} QryRequest;

/* One answer, borrowed for the duration of the callback. values[i] is the value of
 * request->keys[i] (UTF-8, '\\'-joined for several values), NULL when the resource has no
 * such tag (absent, or a sequence/binary value). */
typedef struct QryAnswer {
    int level;
    const char *id;             /* public ID of the resource */
    const char *const *values;  /* nkeys entries (NULL array when ids_only) */
    size_t nvalues;
} QryAnswer;

/* Returns false to stop the walk (the engine then returns true with *complete false). */
typedef bool (*QryAnswerFn)(void *ctx, const QryAnswer *answer);

/* Runs the query. complete (may be NULL): false when the walk stopped early (callback or
 * limit with more matches left). Errors: SRV_BAD_REQUEST (bad level), SRV_DATABASE,
 * SRV_NOT_ENOUGH_MEMORY. A file that cannot be read for a fallback key makes that resource a
 * non-match (logged at warning), never the whole query a failure. */
bool qry_run(SrvError *err, Srv *srv, const QryRequest *rq, QryAnswerFn fn, void *ctx,
             bool *complete);

/* DICOM matching of one value (see above). range: the tag is DA/TM/DT. value NULL: absent. */
bool qry_match(const char *pattern, const char *value, bool case_insensitive, bool range);
/* The same, with literal_lists as in QryRequest. */
bool qry_match_ex(const char *pattern, const char *value, bool case_insensitive, bool range,
                  bool literal_lists);
/* true for patterns that match everything (NULL, "", "*", all '*'). */
bool qry_universal(const char *pattern);
/* The level (<= max_level) whose main tags include tag, or -1. */
int qry_main_tag_level(uint32_t tag, int max_level);
/* true if the engine computes tag at that level (ModalitiesInStudy at study level, ...). */
bool qry_is_computed(uint32_t tag, int level);

#endif
