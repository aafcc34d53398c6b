/* server.h -- the store itself: configuration, logging, errors, the one ingest path, the
 * services the REST layer and the DIMSE listener call. Includes config.h and store.h (the
 * services for rest/: resources, search, DICOM views, metadata, attachments, changes).
 * It does NOT include storage/ or dicom/ headers: rest/ reaches the store only through these
 * functions, so every rule of a change (change log, cache, quotas, metrics) stays in server/.
 *
 * Threads: Srv is created by main before any other thread and destroyed after they all stop;
 * its services may be called from any thread.
 */
#ifndef MP_SERVER_H
#define MP_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "server/config.h"

#define MP_NAME "MiniPACS"
#define MP_VERSION "0.1.0"
#define MP_API_VERSION 18 /* Orthanc 1.10.1's REST API version */

/* Levels and identifiers, as the index numbers them (server/srv.c checks they agree with
 * storage.h's IDX_* at compile time). */
enum { SRV_PATIENT = 0, SRV_STUDY = 1, SRV_SERIES = 2, SRV_INSTANCE = 3 };
#define SRV_LEVELS 4
#define SRV_ID_LEN 45   /* "6e67da51-d119d6ae-c5667437-87b9a8a5-0f07c49f" + NUL */
#define SRV_UUID_LEN 37 /* a stored file's or a job's uuid, 36 characters + NUL */
/* The index, opaque here (storage/storage.h is server/'s own business). */
typedef struct StoArea StoArea;
typedef struct IdxDb IdxDb;
struct StoError;

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
    SRV_REVISION = 43,             /* HTTP 409: If-Match names another revision */
    SRV_DATABASE_UNAVAILABLE = 44, /* HTTP 503: the PostgreSQL index is away, try again */
    SRV_DICOM_FIND_UNAVAILABLE = 2016,   /* echo's CheckFind: the peer did not take a C-FIND */
    SRV_CREATE_DICOM_USE_CONTENT = 2023, /* create-dicom: an item of Content is no data URI */
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
void srv_error_from_sto(SrvError *err, const struct StoError *e);
void srv_error_from_dcm(SrvError *err, const struct DcmError *e);

/* ---- Logging (server/log.c) ------------------------------------------------------------- */
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARNING = 1, SRV_LOG_INFO = 2, SRV_LOG_DEBUG = 3 };
extern _Atomic int srv_log_level; /* messages above it are not formatted (PUT /tools/log-level) */
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
void srv_sha1_id(const char *key, size_t len, char out[SRV_ID_LEN]);
/* MD5 of a buffer as 32 lower-case hex chars (for the attachment's CompressedMD5). */
void srv_md5_hex(const void *buf, size_t len, char out[33]);
/* A new random (v4) uuid, lower-case hex with dashes (server/srv.c). */
void srv_uuid_new(char out[SRV_UUID_LEN]);
/* Decodes n chars of base64 (white space skipped, base64url's '-' and '_' accepted, padding
 * optional); returns the bytes (malloc'd, NUL-terminated, *len without the NUL), or NULL when
 * malformed or out of memory. */
void *srv_base64_decode(const char *s, size_t n, size_t *len);
/* A "2.25." UID (PS3.5 B.2): "2.25." then the decimal value of 128 bits (big-endian bytes);
 * _random draws a version-4 UUID's bits. The one place such UIDs are spelled. */
#define SRV_UID_2_25_LEN 45 /* "2.25." + up to 39 digits + NUL */
void srv_uid_2_25(const uint8_t bits[16], char out[SRV_UID_2_25_LEN]);
void srv_uid_2_25_random(char out[SRV_UID_2_25_LEN]);
/* "20261125T204400" for now, UTC. */
void srv_now_iso(char out[16]);
/* Strips leading and trailing spaces (and NULs) in place; returns s. */
char *srv_strip(char *s);
/* Writes root as JSON text to path atomically (path.tmp, fsync, rename) and frees root (NULL:
 * out of memory). A failure leaves path as it was. */
bool srv_save_json(SrvError *err, const char *path, cJSON *root);
/* Whether s is spelled as an Orthanc ID (five groups of 8 lowercase hex digits, dashes). */
bool srv_is_orthanc_id(const char *s);

/* ---- Main DICOM tags (server/maintags.c): Orthanc 1.10's defaults per level ------------- */
typedef struct SrvMainTag {
    uint32_t tag;
    const char *name;
} SrvMainTag;
/* The main tags of a level (SRV_*), *n set to their count. */
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
typedef struct SrvMeta {
    const char *name;  /* Orthanc's metadata name: "ModifiedFrom", ... */
    const char *value;
} SrvMeta;

enum { INGEST_ORIGIN_REST = 0, INGEST_ORIGIN_DICOM = 1, INGEST_ORIGIN_PLUGINS = 2,
       INGEST_ORIGIN_UNKNOWN = 3 };

typedef struct IngestOrigin {
    int origin;               /* INGEST_ORIGIN_* */
    const char *remote_ip;    /* may be NULL */
    const char *remote_aet;   /* DICOM calling AET; NULL for REST */
    const char *called_aet;   /* DICOM called AET; NULL for REST */
    const char *http_user;    /* REST user; NULL if anonymous */
    /* extra metadata for the instance and its parents (ModifiedFrom, AnonymizedFrom, ...) */
    const struct SrvMeta *extra_meta[SRV_LEVELS];
    size_t nextra_meta[SRV_LEVELS];
    /* STOW-RS to /studies/{uid}: an instance of another study is refused (SRV_BAD_REQUEST)
     * before anything is written. NULL: any study. */
    const char *expect_study_uid;
} IngestOrigin;

#define SRV_DICOM_UID_LEN 65 /* a DICOM UID, 64 characters + NUL */
typedef struct IngestResult {
    char ids[SRV_LEVELS][SRV_ID_LEN]; /* patient, study, series, instance */
    bool already_stored;
    /* The instance's UIDs, filled as soon as the file is parsed, so also when ingest fails
     * afterwards ("" when unknown): STOW-RS answers with them. */
    char study_uid[SRV_DICOM_UID_LEN], series_uid[SRV_DICOM_UID_LEN];
    char sop_uid[SRV_DICOM_UID_LEN], sop_class_uid[SRV_DICOM_UID_LEN];
} IngestResult;

/* Parses the buffer (header only), computes the IDs, writes the file (unless the instance is
 * already stored and OverwriteInstances is false), and commits the index in one transaction.
 * The buffer is borrowed and stored as given, byte for byte. Errors: SRV_BAD_FILE_FORMAT (not
 * DICOM, truncated, missing PatientID? no: missing Study/Series/SOP Instance UID),
 * SRV_FULL_STORAGE (disk full or quota), SRV_DATABASE, SRV_CANNOT_WRITE_FILE. On failure
 * nothing remains: no file, no row. */
bool ingest_buffer(SrvError *err, Srv *srv, const void *buf, size_t len,
                   const IngestOrigin *origin, IngestResult *res);

/* Reads the stored file of an instance again and rewrites in the index the main DICOM tags of
 * the instance and, when upper, of its series, study and patient (Orthanc's reconstruct). */
bool ingest_reconstruct(SrvError *err, Srv *srv, const char *instance_id, bool upper);

/* ---- Spooled uploads (server/spool.c): large bodies and datasets never held in memory ----
 * An upload past SRV_SPOOL_THRESHOLD bytes (a REST body, a C-STORE dataset) is written as it
 * arrives to a spool file in the storage area (StorageDirectory/spool/<uuid>.spool); ingest_spool
 * then parses what the index needs from the file (header only, through a read-only mapping) and
 * moves the file into place with a rename: the bytes are written once and never copied.
 * Smaller uploads stay in memory (ingest_buffer), which is faster for them (no extra file).
 * The threshold is a measured choice: see bench/results/upload_memory.txt. A spool is owned by
 * whoever opened it; srv_spool_discard() always runs at the end (it leaves an adopted file
 * alone). Start-up removes spool files a crash left behind. Any thread, one owner at a time. */
#define SRV_SPOOL_THRESHOLD ((uint64_t)8 << 20)
typedef struct SrvSpool {
    int fd;            /* read-write descriptor; -1: none */
    uint64_t len;      /* bytes written so far */
    char path[4096];   /* "" once adopted by ingest_spool or discarded */
    bool synced;       /* sto_area_spool_sync succeeded after the last write: adopt skips the fsync */
} SrvSpool;
/* Creates an empty spool file. sp is the caller's (srv_spool_discard at the end). */
bool srv_spool_open(SrvError *err, Srv *srv, SrvSpool *sp);
/* Appends n bytes (all of them, or false: SRV_FULL_STORAGE on ENOSPC, else CANNOT_WRITE_FILE). */
bool srv_spool_write(SrvError *err, SrvSpool *sp, const void *buf, size_t n);
/* Durability of a batch of spool files (STOW-RS) when SyncStorageArea is on, else nothing:
 * flush starts (wait: and waits for) the writeback of fd's bytes, sync fsyncs it. See
 * sto_area_spool_flush for why a batch is flushed, then synced, before any is renamed. */
void srv_spool_flush(Srv *srv, int fd, bool wait);
bool srv_spool_sync(SrvError *err, Srv *srv, int fd);
/* Reads up to max bytes at offset (pread); bytes read, 0 at the end, -1 on error. */
ssize_t srv_spool_read(SrvSpool *sp, uint64_t offset, void *buf, size_t max);
/* Closes the descriptor and removes the file unless it was adopted. Safe on a zeroed or
 * already-discarded spool (fd 0 is never ours: open() sets fd only on success, and
 * srv_spool_open sets -1 first). */
void srv_spool_discard(SrvSpool *sp);
/* ingest_buffer for a spooled upload: the same steps, the file adopted instead of written.
 * On success the spool's file is the stored file (or, when the instance was already stored,
 * it is left for srv_spool_discard). The spool stays the caller's either way. */
bool ingest_spool(SrvError *err, Srv *srv, SrvSpool *sp, const IngestOrigin *origin,
                  IngestResult *res);

/* ---- Storage quotas (server/quota.c): MaximumStorageSize, MaximumPatientCount ------------
 * quota_begin: before a new instance of `size` bytes for patient_id is written, makes room
 * (MaximumStorageMode Recycle: deletes the oldest unprotected patients other than patient_id)
 * or refuses (Reject, or nothing left to recycle, or larger than the whole quota:
 * SRV_FULL_STORAGE). On success the caller stores, then calls quota_end() (also when the store
 * fails). With no quota configured both are free and take no lock. Any thread. */
bool quota_begin(SrvError *err, Srv *srv, const char *patient_id, uint64_t size);
void quota_end(Srv *srv);

/* Deletes a resource (and emptied ancestors): rows in one transaction, then files.
 * remaining_level -1 when nothing remains above. */
bool srv_delete(SrvError *err, Srv *srv, int level, const char *id, int *remaining_level,
                char remaining_id[SRV_ID_LEN]);

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
/* true while a patient/study/series waits for its Stable* change (IsStable is the opposite;
 * after a restart everything is stable, as in Orthanc). */
bool srv_stable_is_unstable(Srv *srv, int level, const char *id);

/* Names of levels as Orthanc prints them: "Patient", "Study", "Series", "Instance"; and the
 * plural route segment: "patients", "studies", "series", "instances". */
const char *srv_level_name(int level);
const char *srv_level_route(int level);


/* ---- Transcoding (server/transcode.c) ------------------------------------------------------
 * Rewrites a DICOM file in another transfer syntax (DCMTK; see dcm_transcode in dicom.h for the
 * targets: uncompressed, RLE, JPEG baseline/extended/lossless, JPEG-LS lossless/near-lossless;
 * lossy JPEG at quality 90). Errors: SRV_NOT_IMPLEMENTED with status 415 for a target or source
 * that cannot be converted, SRV_BAD_FILE_FORMAT, SRV_BAD_REQUEST (unknown UID). *out malloc'd.
 * Used by /instances/{id}/file?transcode=, /modify "Transcode", archives, IngestTranscoding, and
 * the DICOM senders (C-MOVE, /modalities/{x}/store) when the peer refuses the stored syntax.
 * Any thread. */
bool srv_transcode_supported(const char *transfer_syntax);
bool srv_transcode(SrvError *err, const void *buf, size_t len, const char *transfer_syntax,
                   void **out, size_t *outlen);
/* The same for a stored instance (reads its file). */
bool srv_transcode_instance(SrvError *err, Srv *srv, const char *instance,
                            const char *transfer_syntax, void **out, size_t *outlen);
/* IngestTranscoding: true and *out (malloc'd) when buf must be stored converted; false when it
 * is stored as received (option off, already in the syntax, or not convertible: logged). */
bool transcode_on_ingest(Srv *srv, const void *buf, size_t len, void **out, size_t *outlen);

/* ---- Images (server/image.c): frames, previews, renderings of stored instances -----------
 * Each call opens the instance's stored file and decodes only the frame asked for. Errors:
 * SRV_UNKNOWN_RESOURCE (no such instance), SRV_INEXISTENT_ITEM/404 (no such frame),
 * SRV_BAD_FILE_FORMAT (no or broken pixel data), SRV_NOT_IMPLEMENTED/415 (a transfer syntax or
 * pixel layout we do not decode), SRV_NOT_ACCEPTABLE/406 (JPEG asked for 16-bit values).
 * Bodies are malloc'd (free()). Any thread. */
enum { SRV_IMAGE_PREVIEW = 0, SRV_IMAGE_RENDERED, SRV_IMAGE_UINT8, SRV_IMAGE_UINT16, SRV_IMAGE_INT16,
       SRV_IMAGE_MATLAB, SRV_IMAGE_NUMPY };
typedef struct SrvImageRequest {
    int kind;                   /* SRV_IMAGE_* */
    bool jpeg;                  /* JPEG instead of PNG (8-bit kinds) */
    int quality;                /* JPEG quality 1..100 (0: 90) */
    uint32_t width, height;     /* rendered: output box (0: the frame's size) */
    bool smooth;                /* rendered: bilinear resize */
    bool has_window;            /* rendered: window given (else the file's, else min..max) */
    double window_center, window_width;
    bool rescale;               /* numpy: float32 with RescaleSlope/Intercept (grayscale) */
    bool compress;              /* numpy: .npz (ZIP) instead of .npy */
    bool all_frames;            /* numpy: every frame, shape (frames, h, w, c) */
} SrvImageRequest;
bool image_frame_count(SrvError *err, Srv *srv, const char *instance, uint32_t *n);
/* *mime: "image/png", "image/jpeg", "text/plain" (matlab), "application/octet-stream". */
bool image_render(SrvError *err, Srv *srv, const char *instance, uint32_t frame,
                  const SrvImageRequest *req, void **body, size_t *len, const char **mime);
/* The frame as stored (native bytes, or the compressed fragments joined; *mime says which).
 * want_ts (an Accept's transfer-syntax; NULL, "" or "*": as stored): the stored UID gives the
 * frame as stored, 1.2.840.10008.1.2.1 or .1.2 the decoded samples (as image_frames' decode);
 * another UID is SRV_NOT_ACCEPTABLE/406, an undecodable frame 415. */
bool image_frame_raw(SrvError *err, Srv *srv, const char *instance, uint32_t frame, const char *want_ts,
                     void **body, size_t *len, const char **mime);
/* Several frames of one instance (file opened once), each handed to fn (data borrowed for the
 * call): as stored (decode false; mime as image_frame_raw's) or decoded (native little-endian
 * interleaved samples, mime "application/octet-stream"). Frames are numbered from 0; one out of
 * range is SRV_INEXISTENT_ITEM/404 before or after earlier frames were handed out. fn returns
 * false (err set) to stop. */
typedef bool (*SrvFrameFn)(void *ctx, SrvError *err, uint32_t frame, const void *data, size_t len,
                           const char *mime);
bool image_frames(SrvError *err, Srv *srv, const char *instance, const uint32_t *frames, size_t n,
                  bool decode, SrvFrameFn fn, void *ctx);
/* The PDF of an Encapsulated PDF instance (SRV_BAD_REQUEST if it is not one). */
bool image_pdf(SrvError *err, Srv *srv, const char *instance, void **body, size_t *len);
/* Orthanc's /series/{id}/ordered-slices JSON (new tree), from the instances' main tags. */
cJSON *image_ordered_slices(SrvError *err, Srv *srv, const char *series);

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

/* ---- DICOM cache (server/cache.c) ---------------------------------------------------------
 * A thread-safe LRU of FULL-parsed instances (dcm_parse flags 0) keyed by instance ID, bounded
 * by the sum of dcm_object_memory() of its entries (DicomCacheSize MB, default 128). An entry
 * is pinned by cache_acquire() and let go by cache_release(); eviction never frees a pinned
 * entry, so a new entry that does not fit beside the pinned ones, or one larger than the whole
 * cache, is handed out uncached (freed at release). The bound therefore always holds. Pinned
 * objects are shared: read them (dcm_get_string, dcm_to_json) or clone them
 * (dcm_object_clone) before modifying. Any thread. */
struct DcmObject;
typedef struct CacheEntry CacheEntry;
/* Sets the byte bound (0: nothing is cached) and empties the cache. srv_open calls it. */
void cache_configure(size_t max_bytes);
/* The parsed instance, from the cache or loaded (index -> file -> parse) and cached. NULL with
 * err set (SRV_UNKNOWN_RESOURCE, SRV_INEXISTENT_FILE, SRV_CORRUPTED_FILE, ...). */
CacheEntry *cache_acquire(SrvError *err, Srv *srv, const char *instance_id);
const struct DcmObject *cache_object(const CacheEntry *e);
void cache_release(CacheEntry *e); /* NULL is fine */

/* Drops an instance (deleted or overwritten); a pinned entry is freed at its last release. */
void cache_invalidate(const char *instance_id);
void cache_clear(void);
/* Several processes on one index (idx_shared): a thread ("invalidate") drops the entries of
 * instances any process deleted or overwrote (idx_invalidations), and everything when some
 * invalidations may have been missed. srv_open starts it, srv_close stops it. */
void cache_listen_start(Srv *srv);
void cache_listen_stop(void);
/* Current bytes and entries held (for orthanc_dicom_cache_size_mb / _count), and the
 * counters hits/misses (either may be NULL). */
void cache_stats(size_t *bytes, size_t *count);
void cache_counters(uint64_t *hits, uint64_t *misses);

/* ---- Jobs engine (server/jobs.c) ----------------------------------------------------------
 * ConcurrentJobs worker threads ("job-N") on a priority queue (higher Priority first, then
 * oldest). A job is a JobType (vtable) plus a payload the engine owns. A job is cut into steps;
 * a type with max_parallel > 1 lets that many workers run steps of one job at once (its step()
 * is then thread-safe). States as Orthanc's: Pending, Running, Success, Failure, Paused.
 * cancel: -> Failure (CanceledJob) once the steps in flight end; pause: -> Paused likewise;
 * resume: Paused -> Pending; resubmit: Failure -> Pending (payload reset). JobsHistorySize
 * finished jobs are kept. With SaveJobs each job is saved in the index on every state change
 * and restored by jobs_start(): a job that was Pending or Running starts again from the
 * beginning (its type makes that idempotent), Paused stays Paused, finished ones return to the
 * history. Any thread, except start/stop (main). */
enum { JOB_PENDING = 0, JOB_RUNNING = 1, JOB_SUCCESS = 2, JOB_FAILURE = 3, JOB_PAUSED = 4,
       JOB_RETRY = 5 };
enum { JOB_STEP_CONTINUE = 0, JOB_STEP_DONE = 1, JOB_STEP_FAILURE = 2 };

typedef struct JobType {
    const char *name;  /* "ResourceModification": the job's Type, and the key for restoring */
    int max_parallel;  /* >= 1 */
    /* One unit of work. JOB_STEP_DONE when there is nothing left to start (the job then
     * finishes when every step in flight has returned); JOB_STEP_FAILURE with err filled. */
    int (*step)(void *payload, SrvError *err);
    /* Once, after the last step, on a worker (may be NULL). false + err: the job fails. */
    bool (*finish)(void *payload, SrvError *err);
    double (*progress)(void *payload);   /* 0..1; called concurrently with steps */
    cJSON *(*content)(void *payload);    /* the job's "Content" (new tree) */
    cJSON *(*serialize)(void *payload);  /* for SaveJobs (new tree); NULL: never saved */
    void (*reset)(void *payload);        /* start again from the beginning (resubmit, restore) */
    void (*free)(void *payload);
    /* Rebuilds a payload from serialize()'s output (restore). NULL + err on failure. */
    void *(*unserialize)(SrvError *err, Srv *srv, const cJSON *json);
} JobType;

#define JOB_ID_LEN SRV_UUID_LEN

/* Registers a type for restoring saved jobs. Before jobs_start. */
void jobs_register(const JobType *type);
/* Starts the workers (cfg.concurrent_jobs), restores saved jobs when cfg.save_jobs. */
bool jobs_start(SrvError *err, Srv *srv);
/* Stops taking steps, waits for the steps in flight, saves running jobs (they resume at the
 * next start), joins and frees everything. */
void jobs_stop(void);
/* Queues a job (Pending). Takes payload (freed through type->free, also on failure). */
bool jobs_submit(SrvError *err, const JobType *type, void *payload, int priority,
                 char id[JOB_ID_LEN]);
/* Blocks until the job is Success or Failure. Returns true on Success; *content (if not NULL)
 * gets a copy of its Content; on Failure job_err gets its error. false + SRV_UNKNOWN_RESOURCE
 * if there is no such job. */
bool jobs_wait(SrvError *job_err, const char *id, cJSON **content);
/* Orthanc's job JSON; NULL if unknown. */
cJSON *jobs_json(const char *id);
/* GET /jobs: IDs, or full objects with expand. */
cJSON *jobs_list_json(bool expand);
/* "cancel", "pause", "resume", "resubmit". SRV_UNKNOWN_RESOURCE, or SRV_BAD_SEQUENCE_OF_CALLS
 * when the job's state does not allow it. */
bool jobs_action(SrvError *err, const char *id, const char *action);
/* The job's state (JOB_*), -1 if unknown. */
int jobs_state(const char *id);
const char *jobs_state_name(int state);
typedef struct JobsStats {
    uint64_t pending, running, success, failed, paused; /* jobs now in each state */
    uint64_t completed;                                 /* finished since start */
} JobsStats;
void jobs_stats(JobsStats *out);

/* ---- Modify / anonymize (server/modify.c) ------------------------------------------------
 * POST /{level}/{id}/modify|anonymize: Orthanc's options (Keep, Replace, Remove,
 * KeepPrivateTags, RemovePrivateTags, DicomVersion, Asynchronous/Synchronous, Priority,
 * KeepSource, Force, Permissive, PrivateCreator) checked before any job exists (400 on a bad
 * one). The job ("ResourceModification") reads each instance through the cache, modifies a
 * clone, writes it and ingests it with AnonymizedFrom/ModifiedFrom; two workers may process one
 * job. New UIDs are a keyed hash of the old ones (2.25.<UUIDv5>, key random per job and saved
 * with it), consistent within the job and again after a restart. */
typedef struct ModifyRequest ModifyRequest;
/* Parses and checks the body for the resource (which must exist). */
ModifyRequest *modify_request_new(SrvError *err, Srv *srv, int level, const char *id,
                                  const cJSON *body, bool anonymize);
/* POST /tools/bulk-modify|bulk-anonymize: body {"Resources": [ids at any level], "Level"?, and
 * the options of the single-resource routes}; each resource is modified at its own level, new
 * UIDs below "Level" (else below the highest level among them). The job's content then lists
 * every new resource ("Resources": [{ID, Path, Type}]). */
ModifyRequest *modify_request_new_bulk(SrvError *err, Srv *srv, const cJSON *body, bool anonymize);
void modify_request_free(ModifyRequest *rq); /* NULL is fine */
bool modify_request_async(const ModifyRequest *rq);
int modify_request_priority(const ModifyRequest *rq);
/* Submits the job (takes rq in all cases). */
bool modify_submit(SrvError *err, ModifyRequest *rq, char job_id[JOB_ID_LEN]);
/* Instance level: the modified file, not stored (*buf malloc'd). Does not take rq. */
bool modify_instance(SrvError *err, ModifyRequest *rq, void **buf, size_t *len);
extern const JobType modify_job_type;

/* ---- Split / merge of studies (server/reorganize.c) ----------------------------------------
 * POST /studies/{id}/split (merge false: "Series", "Instances", "Replace", "Remove") and
 * /studies/{id}/merge ("Resources"), with "KeepSource", "Synchronous"/"Asynchronous",
 * "Priority", checked whole before the job exists (400/404 as Orthanc). Jobs "SplitStudy" and
 * "MergeStudy"; their Content is Orthanc's answer. */
typedef struct Reorg Reorg;
Reorg *reorg_new(SrvError *err, Srv *srv, bool merge, const char *study, const cJSON *body);
void reorg_free(Reorg *rq); /* NULL is fine */
bool reorg_async(const Reorg *rq);
bool reorg_submit(SrvError *err, Reorg *rq, char job_id[JOB_ID_LEN]); /* takes rq */
extern const JobType split_job_type, merge_job_type;

/* ---- Metrics (server/metrics.c) -----------------------------------------------------------
 * A registry of counters, gauges and timers, rendered in one function (metrics_render) as
 * Prometheus text with Orthanc's names (orthanc_*) plus ours (minipacs_*).
 * Hot path: metrics_add/metrics_set/metrics_timer_add are a relaxed atomic or two, and a single
 * load of the enabled flag when MetricsEnabled is false. Items are never freed: a pointer from
 * metrics_get() stays valid for the life of the process, so look it up once and keep it.
 * Pull-only for figures other modules own: the renderer asks them (cache_stats, jobs_stats,
 * dimse_stats, hk_stats, the index totals) at render time; they register nothing here and do
 * not call back into metrics, so no module depends on metrics for its own state. Events
 * (requests, stores) are counted through the hooks below.
 * Threads: every function may be called from any thread. */
typedef enum MetricsType { METRICS_COUNTER = 0, METRICS_GAUGE = 1, METRICS_TIMER = 2 } MetricsType;
typedef struct MetricsItem MetricsItem;

/* Registers the built-in items, sets the enabled flag from cfg.metrics_enabled (srv NULL:
 * on) and the start time. Main, before any other thread; the hooks below count nothing
 * before it. */
void metrics_init(const Srv *srv);
/* MetricsEnabled at run time (PUT /tools/metrics). Off: nothing is recorded and the
 * Prometheus page is empty, as Orthanc's. */
void metrics_set_enabled(bool on);
bool metrics_enabled(void);

/* The item of that name, registered on first use (name: [a-z_][a-z0-9_]*, < 64 chars).
 * NULL if the name is bad, already registered with another type, or the registry is full
 * (64 items). Takes a mutex: not for the hot path. */
MetricsItem *metrics_get(const char *name, MetricsType type);
/* Counter or gauge: += delta (a counter ignores negative deltas). NULL item: no-op. */
void metrics_add(MetricsItem *m, int64_t delta);
/* Gauge: = value. */
void metrics_set(MetricsItem *m, double value);
/* Timer: records one duration. Rendered as Orthanc does, the largest duration of the last
 * 10 s window (0 when nothing was recorded for 20 s), plus a minipacs_*_count/_sum summary. */
void metrics_timer_add(MetricsItem *m, double ms);
/* For timing a section: t0 = metrics_clock_us(); ...; metrics_timer_since(m, t0).
 * metrics_clock_us() returns 0 when metrics are off, and metrics_timer_since ignores t0 0. */
uint64_t metrics_clock_us(void);
void metrics_timer_since(MetricsItem *m, uint64_t t0);

/* The REST layer's hooks: orthanc_rest_api_active_requests and orthanc_rest_api_duration_ms.
 * metrics_rest_begin returns a token (0: not counted) that metrics_rest_end takes once;
 * metrics_rest_duration records the handler time once the answer is queued. */
uint64_t metrics_rest_begin(void);
void metrics_rest_duration(uint64_t token);
void metrics_rest_end(uint64_t token);
/* orthanc_store_dicom_duration_ms: ingest_buffer takes t0 = metrics_clock_us() on entry and
 * calls metrics_store_done(t0) when it succeeds. */
void metrics_store_done(uint64_t t0);

/* The Prometheus text (text/plain; version=0.0.4): `# TYPE` line then `name value` lines.
 * Reads the index totals and the last change (two single-row queries, no scan), the
 * housekeeper's figures, RSS, the DICOM listener's, the cache's and the jobs engine's
 * counters, every registered item and callback. Returns a malloc'd string (*len its length;
 * "" when metrics are off), NULL on out of memory. */
char *metrics_render(Srv *srv, size_t *len);

#include "server/store.h"

#endif
