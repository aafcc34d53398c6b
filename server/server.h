/* server.h -- the store itself: configuration, logging, errors, the one ingest path, the
 * services the REST layer and the DIMSE listener call. Includes config.h.
 *
 * Threads: Srv is created by main before any other thread and destroyed after they all stop;
 * its services may be called from any thread.
 */
#ifndef MP_SERVER_H
#define MP_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/config.h"
#include "storage/storage.h"

#define MP_NAME "MiniPACS"
#define MP_VERSION "0.1.0"
#define MP_API_VERSION 18 /* Orthanc 1.10.1's REST API version */

/* ---- Errors (server/errors.c) ------------------------------------------------------------
 * Orthanc's ErrorCode numbers (OrthancFramework/Sources/Enumerations.h), so JSON errors carry
 * the same OrthancStatus / OrthancError as Orthanc's. */
typedef enum SrvErrorCode {
    SRV_INTERNAL = -1,
    SRV_SUCCESS = 0,
    SRV_NOT_IMPLEMENTED = 2,
    SRV_PARAMETER_OUT_OF_RANGE = 3,
    SRV_NOT_ENOUGH_MEMORY = 4,
    SRV_BAD_PARAMETER_TYPE = 5,
    SRV_BAD_SEQUENCE_OF_CALLS = 6,
    SRV_INEXISTENT_ITEM = 7,
    SRV_BAD_REQUEST = 8,
    SRV_NETWORK_PROTOCOL = 9,
    SRV_DATABASE = 11,
    SRV_URI_SYNTAX = 12,
    SRV_INEXISTENT_FILE = 13,
    SRV_CANNOT_WRITE_FILE = 14,
    SRV_BAD_FILE_FORMAT = 15,
    SRV_TIMEOUT = 16,
    SRV_UNKNOWN_RESOURCE = 17,
    SRV_FULL_STORAGE = 19,
    SRV_CORRUPTED_FILE = 20,
    SRV_INEXISTENT_TAG = 21,
    SRV_READ_ONLY = 22,
    SRV_UNKNOWN_DICOM_TAG = 27,
    SRV_BAD_JSON = 28,
    SRV_UNAUTHORIZED = 29,
    SRV_EMPTY_REQUEST = 33,
    SRV_NOT_ACCEPTABLE = 34,
    SRV_CANCELED_JOB = 37,
} SrvErrorCode;

typedef struct SrvError {
    int code;          /* SrvErrorCode */
    int http_status;   /* 0: the default for the code (srv_error_http_status) */
    char message[256]; /* details for the operator and the client */
} SrvError;

/* Sets err (if not NULL) and returns false, for `return srv_fail(err, ...);`. */
bool srv_fail(SrvError *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Orthanc's description of a code: "Unknown resource", "Bad file format", ... */
const char *srv_error_text(int code);
/* HTTP status for the error: err->http_status if set, else the code's default. */
int srv_error_http_status(const SrvError *err);
/* Translate leaf errors (storage, dicom) into SrvError. */
struct DcmError;
void srv_error_from_sto(SrvError *err, const StoError *e);
void srv_error_from_dcm(SrvError *err, const struct DcmError *e);

/* ---- Logging (server/log.c) ------------------------------------------------------------- */
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARNING = 1, SRV_LOG_INFO = 2, SRV_LOG_DEBUG = 3 };
extern int srv_log_level; /* messages above it are not formatted */
void srv_log_set_level(const char *name); /* "error", "warning", "info", "debug" */
void srv_log(int level, const char *category, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For leaves' callbacks: level + preformatted message. */
void srv_log_callback(int level, const char *message);
#define SRV_LOG(lvl, cat, ...) \
    do { if ((lvl) <= srv_log_level) srv_log((lvl), (cat), __VA_ARGS__); } while (0)
#define SRV_LOG_ERROR(cat, ...) SRV_LOG(SRV_LOG_ERROR, cat, __VA_ARGS__)
#define SRV_LOG_WARN(cat, ...) SRV_LOG(SRV_LOG_WARNING, cat, __VA_ARGS__)
#define SRV_LOG_INFO(cat, ...) SRV_LOG(SRV_LOG_INFO, cat, __VA_ARGS__)
#define SRV_LOG_DEBUG(cat, ...) SRV_LOG(SRV_LOG_DEBUG, cat, __VA_ARGS__)
/* Names the calling thread (pthread_setname_np, max 15 chars) and the log's thread column. */
void srv_thread_name(const char *name);

/* ---- Always-on assert for broken invariants (never for bad input) ----------------------- */
#define SRV_ASSERT(c) \
    do { if (!(c)) srv_assert_fail(#c, __FILE__, __LINE__); } while (0)
_Noreturn void srv_assert_fail(const char *what, const char *file, int line);

/* ---- Small utilities (server/util.c) ---------------------------------------------------- */
/* Orthanc's resource ID: SHA-1 of `key` printed as five 8-hex-digit groups joined by '-'. */
void srv_sha1_id(const char *key, size_t len, char out[IDX_ID_LEN]);
/* MD5 of a buffer as 32 lower-case hex chars (for the attachment's CompressedMD5). */
void srv_md5_hex(const void *buf, size_t len, char out[33]);
/* "20261125T204400" for now, UTC. */
void srv_now_iso(char out[16]);
/* Strips leading and trailing spaces (and NULs) in place; returns s. */
char *srv_strip(char *s);

/* ---- Main DICOM tags (server/maintags.c): Orthanc 1.10's defaults per level ------------- */
typedef struct SrvMainTag {
    uint32_t tag;
    const char *name;
} SrvMainTag;
/* The main tags of a level (IDX_*), *n set to their count. */
const SrvMainTag *srv_main_tags(int level, size_t *n);
/* Name of a main tag of any level, NULL if it is not one. */
const char *srv_main_tag_name(uint32_t tag);

/* ---- The server context ------------------------------------------------------------------ */
typedef struct Srv {
    Cfg cfg;                 /* read-only after start */
    StoArea *area;
    IdxDb *db;
    time_t started;          /* for orthanc_up_time_s */
    struct SrvStable *stable; /* server/stable.c; NULL when not started */
} Srv;

/* Opens storage and index and recovers pending files (removes orphans). */
bool srv_open(SrvError *err, Srv *srv);
void srv_close(Srv *srv);

/* ---- Ingest (server/ingest.c): the one path REST and C-STORE share ---------------------- */
enum { INGEST_ORIGIN_REST = 0, INGEST_ORIGIN_DICOM = 1, INGEST_ORIGIN_PLUGINS = 2,
       INGEST_ORIGIN_UNKNOWN = 3 };

typedef struct IngestOrigin {
    int origin;               /* INGEST_ORIGIN_* */
    const char *remote_ip;    /* may be NULL */
    const char *remote_aet;   /* DICOM calling AET; NULL for REST */
    const char *called_aet;   /* DICOM called AET; NULL for REST */
    const char *http_user;    /* REST user; NULL if anonymous */
    /* extra metadata for the instance and its parents (ModifiedFrom, AnonymizedFrom, ...) */
    const IdxMeta *extra_meta[IDX_LEVELS];
    size_t nextra_meta[IDX_LEVELS];
} IngestOrigin;

typedef struct IngestResult {
    char ids[IDX_LEVELS][IDX_ID_LEN]; /* patient, study, series, instance */
    bool already_stored;
} IngestResult;

/* Parses the buffer (header only), computes the IDs, writes the file (unless the instance is
 * already stored and OverwriteInstances is false), and commits the index in one transaction.
 * The buffer is borrowed and stored as given, byte for byte. Errors: SRV_BAD_FILE_FORMAT (not
 * DICOM, truncated, missing PatientID? no: missing Study/Series/SOP Instance UID),
 * SRV_FULL_STORAGE (disk full or quota), SRV_DATABASE, SRV_CANNOT_WRITE_FILE. On failure
 * nothing remains: no file, no row. */
bool ingest_buffer(SrvError *err, Srv *srv, const void *buf, size_t len,
                   const IngestOrigin *origin, IngestResult *res);

/* Deletes a resource (and emptied ancestors): rows in one transaction, then files.
 * remaining_level -1 when nothing remains above. */
bool srv_delete(SrvError *err, Srv *srv, int level, const char *id, int *remaining_level,
                char remaining_id[IDX_ID_LEN]);

/* ---- Stability (server/stable.c): StableSeries/StableStudy/StablePatient changes ---------
 * A thread logs Stable<Level> for a series, study and patient StableAge seconds after the last
 * instance they received (no polling: it sleeps until the next deadline, or until signalled
 * when nothing is unstable). start/stop from main; touch from ingest (any thread), with the
 * patient, study and series IDs of a stored instance. */
typedef struct SrvStable SrvStable;
bool srv_stable_start(SrvError *err, Srv *srv);
void srv_stable_stop(Srv *srv); /* fine when not started */
void srv_stable_touch(Srv *srv, const char *patient, const char *study, const char *series);
size_t srv_stable_pending(Srv *srv); /* resources not yet stable (tests, metrics) */

/* Names of levels as Orthanc prints them: "Patient", "Study", "Series", "Instance"; and the
 * plural route segment: "patients", "studies", "series", "instances". */
const char *srv_level_name(int level);
const char *srv_level_route(int level);


/* ---- DICOM listener glue (server/dimse.c) ------------------------------------------------
 * C-ECHO / C-STORE SCP on DicomPort as DicomAet, policy from DicomCheckCalledAet,
 * DicomModalities, DicomAlwaysAllowStore, DicomCheckModalityHost; limits from
 * MaximumAssociations and DicomScpTimeout. Every C-STORE goes through ingest_buffer().
 * dimse_start/dimse_stop: main thread only, start after srv_open, stop before srv_close
 * (stop refuses new associations, lets running ones finish for up to 5 s, then aborts them). */
bool dimse_start(SrvError *err, Srv *srv);
void dimse_stop(void); /* no-op if not started */
typedef struct SrvDimseStats {
    uint64_t associations, rejected, stored, store_failures;
    uint32_t active;
} SrvDimseStats;
/* Current listener counters; false when the listener is not running. Any thread. */
bool dimse_stats(SrvDimseStats *out);

#endif
