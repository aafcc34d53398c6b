/* storage.h -- the storage area (files on disk, prefix sto_) and the index (prefix idx_). A
 * leaf module: it stores what it is given and calls nothing of ours.
 *
 * Storage area: StorageDirectory/ab/cd/<uuid>, where uuid is a random v4 UUID and ab, cd its
 * first two hex pairs. A file is written to "<uuid>.tmp" in its final folder, fsync'ed when
 * the area was opened with sync=true, then renamed: never visible half-written.
 *
 * Index: patients, studies, series and instances (one tree of resources with a parent link),
 * their main DICOM tags, metadata (name/value), the instance attachment (file uuid, size,
 * MD5), the changes log, running totals, pending file uuids and saved jobs. Crash rules: a
 * uuid is noted as pending (idx_pending_add) before its file is written, and cleared in the
 * same transaction that adds its row; a delete moves the uuids of removed rows into the
 * pending list in the deleting transaction, and the caller clears them once the files are
 * gone. At start-up only pending uuids are checked.
 *
 * The index API below is one front (storage/index.c: argument checks, then a call through
 * the backend's operations table, storage/idx_backend.h) over a backend chosen at
 * idx_open_with(). Today's only backend is SQLite (storage/sqlite/: IndexDirectory/
 * index.sqlite in WAL mode). WHAT EVERY BACKEND GUARANTEES, and callers may rely on:
 * - Transactions: every idx_* call that writes is one transaction, all or nothing; a failed
 *   call leaves the index as it was (and its outputs zeroed / NULL). Every call that reads
 *   sees one consistent snapshot (a resource and its tags, children and metadata agree).
 * - Pending uuids: the crash rules above, i.e. the pending list changes in the same
 *   transaction as the attachment rows it protects.
 * - Changes: seq is global, strictly increasing in commit order and never reused, even after
 *   idx_changes_clear() or a restart.
 * - Totals: kept by the writing transactions themselves, exact at every commit.
 * - Threads: every function may be called from any thread at any time between idx_open and
 *   idx_close; writers are serialized (or retried) by the backend, readers run concurrently.
 *   No backend calls back into our code except idx_jobs_load's fn, which the front calls
 *   after the backend has returned (no lock or connection held).
 * Errors: functions return bool (or NULL) and fill the caller's StoError: NOT_FOUND, ARG and
 * CONFLICT mean what the comments say; a backend's own failure is STO_ERR_DB (FULL when the
 * disk is full, NOMEM when out of memory).
 *
 * Durability (SQLite): WAL with synchronous=NORMAL. A committed transaction survives a crash
 * of the process (kill -9); a power cut may lose the last commits, never corrupt the index.
 *
 * Levels: wherever a function takes `int level` together with an ID, -1 means "any level";
 * a resource of another level than the one asked is NOT_FOUND. A level outside -1..3 is ARG.
 */
#ifndef MP_STORAGE_H
#define MP_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    STO_OK = 0,
    STO_ERR_IO = 1,        /* read/write/rename failed (message says which, with errno text) */
    STO_ERR_FULL = 2,      /* ENOSPC / EDQUOT: the disk is full */
    STO_ERR_NOT_FOUND = 3, /* unknown resource or missing file */
    STO_ERR_DB = 4,        /* SQLite error */
    STO_ERR_NOMEM = 5,
    STO_ERR_ARG = 6,       /* bad argument (wrong level, malformed uuid, ...) */
    STO_ERR_CONFLICT = 7,  /* e.g. If-Match mismatch on metadata */
    STO_ERR_UNAVAILABLE = 8, /* the index server (PostgreSQL) cannot be reached right now: try
                                again later; nothing was written */
};

typedef struct StoError {
    int code;
    char message[256];
} StoError;

/* ---- Storage area ---------------------------------------------------------------------- */

#define STO_UUID_LEN 37 /* 36 characters + NUL */

typedef struct StoArea StoArea;

/* Opens (creating it if needed) the storage directory. sync: fsync each file before rename. */
StoArea *sto_area_open(StoError *err, const char *dir, bool sync);
void sto_area_close(StoArea *area); /* NULL is fine */

/* Fills out with a new random (v4) uuid, lower-case hex with dashes. */
void sto_uuid_new(char out[STO_UUID_LEN]);
/* true if s has the shape of a uuid (36 chars, hex and dashes): guards every path built. */
bool sto_uuid_valid(const char *s);

/* Writes buf under uuid atomically (temp name, optional fsync, rename). On failure no file
 * and no temp file remain; ENOSPC gives STO_ERR_FULL. */
bool sto_area_write(StoError *err, StoArea *area, const char *uuid, const void *buf, size_t len);
/* Spool files: a large upload (REST body, C-STORE dataset) is written as it arrives to
 * "<dir>/spool/<uuid>.spool" (same file system as the stored files), then adopted under its
 * final uuid by a rename: the bytes are written once and never held in memory.
 * sto_area_spool_open creates a new empty spool file (read-write) and returns its fd, with its
 * path in path (size >= 4096); -1 with err set on failure. The caller owns both: close the fd
 * and unlink the path unless the spool was adopted. */
int sto_area_spool_open(StoError *err, StoArea *area, char *path, size_t size);
/* Moves the spool file at path (fd: its open descriptor, fsync'ed first when the area is
 * sync, unless `synced`: sto_area_spool_sync already succeeded on it and it has not been
 * written since) to uuid's place. On success the path no longer exists; on failure it is
 * untouched. */
bool sto_area_spool_adopt(StoError *err, StoArea *area, const char *uuid, int fd, const char *path,
                          bool synced);
/* Durability of a batch of spool files (STOW-RS), when the area is sync (else they do nothing
 * and sync returns true): sto_area_spool_flush starts the writeback of fd's bytes, and with
 * wait, waits until they are written (no fsync: a hint, errors are the fsync's to report);
 * sto_area_spool_sync fsyncs. Flushing with wait every file of a batch, then fsyncing every
 * one, before any is read or renamed, makes the first fsync commit the file system's journal
 * for all of them (their block allocations are in it), so the others find little left to
 * commit; each file is still fsync'ed before its rename. */
void sto_area_spool_flush(StoArea *area, int fd, bool wait);
bool sto_area_spool_sync(StoError *err, StoArea *area, int fd);
/* Removes every leftover spool file (start-up: uploads a crash interrupted). Returns how many. */
size_t sto_area_spool_sweep(StoArea *area);
/* Reads the whole file. *buf is malloc'd (caller frees with free()). */
bool sto_area_read(StoError *err, StoArea *area, const char *uuid, void **buf, size_t *len);
/* Opens the file read-only; returns the fd (caller closes, or hands it to MHD) and its size,
 * or -1 with err set. */
int sto_area_open_fd(StoError *err, StoArea *area, const char *uuid, uint64_t *size);
/* Removes the file and a leftover "<uuid>.tmp"; a missing file is not an error. */
bool sto_area_remove(StoError *err, StoArea *area, const char *uuid);
/* Full path of the file for uuid into out (size >= 4096). */
void sto_area_path(const StoArea *area, const char *uuid, char *out, size_t size);

/* ---- Index ------------------------------------------------------------------------------- */

enum { IDX_PATIENT = 0, IDX_STUDY = 1, IDX_SERIES = 2, IDX_INSTANCE = 3 };
#define IDX_LEVELS 4
#define IDX_ID_LEN 45 /* "6e67da51-d119d6ae-c5667437-87b9a8a5-0f07c49f" + NUL */

typedef struct IdxDb IdxDb;

/* The backends; idx_open_with() is the one place that picks among them. */
typedef enum IdxBackendKind {
    IDX_BACKEND_SQLITE = 0,
    IDX_BACKEND_POSTGRESQL = 1,
} IdxBackendKind;

typedef struct IdxOptions {
    IdxBackendKind backend;
    /* SQLite: the folder of index.sqlite (created with its schema if absent, upgraded if
     * older). */
    const char *dir;
    int readers;     /* SQLite: read connections in the pool, 0 = the default (4) */
    /* PostgreSQL (storage/pg/): a libpq connection string ("host=... port=... dbname=..." or
     * a postgresql:// URI), the connections in the pool (0 = 4), how many times to try the
     * first connection a second apart (a database still starting), and Orthanc's "Lock":
     * true keeps an advisory lock so that no other server process opens the same database. */
    const char *pg_conninfo;
    int pg_connections;
    int pg_connect_retries;
    bool pg_lock;
} IdxOptions;

/* Opens the index described by opt: connects, creates or upgrades the schema. NULL with err
 * set on failure (an index whose schema is newer than this program's is STO_ERR_DB). */
IdxDb *idx_open_with(StoError *err, const IdxOptions *opt);
/* Shorthand for the SQLite backend: "<dir>/index.sqlite" in WAL mode. */
IdxDb *idx_open(StoError *err, const char *dir);
void idx_close(IdxDb *db); /* NULL is fine */

/* What the backend reports about itself (for /system, metrics and tests). */
typedef struct IdxInfo {
    const char *backend;          /* "sqlite"; static text */
    int schema_revision;          /* the backend's own schema revision, as stored in the
                                     index (SQLite: PRAGMA user_version) */
    uint64_t statements_prepared; /* statements prepared since open, all connections: stays
                                     flat once the hot paths have run (one cache) */
} IdxInfo;
bool idx_info(StoError *err, IdxDb *db, IdxInfo *out);

typedef struct IdxTag {
    uint32_t tag;      /* (group << 16) | element */
    const char *value; /* UTF-8, never NULL ("" for present-but-empty) */
} IdxTag;

typedef struct IdxMeta {
    const char *name;  /* Orthanc's metadata name: "ReceptionDate", "RemoteAET", ... */
    const char *value;
} IdxMeta;

typedef struct IdxNewInstance {
    const char *ids[IDX_LEVELS];     /* public IDs: patient, study, series, instance */
    const IdxTag *tags[IDX_LEVELS];  /* main DICOM tags of each level */
    size_t ntags[IDX_LEVELS];
    const IdxMeta *meta[IDX_LEVELS]; /* metadata to set on each level (instance: ReceptionDate,
                                        Origin, ...; series: RemoteAET, ...). Patient, study
                                        and series also get "LastUpdate" = now automatically. */
    size_t nmeta[IDX_LEVELS];
    const char *uuid;                /* the file, already written, noted pending */
    uint64_t size;                   /* its size in bytes */
    const char *md5;                 /* 32 lower-case hex chars, or NULL: computed on demand */
    bool overwrite;                  /* replace an existing instance with the same ID */
} IdxNewInstance;

typedef struct IdxStoreResult {
    bool already_stored;             /* the instance existed and overwrite was false: nothing
                                        changed; the caller removes its new file */
    bool created[IDX_LEVELS];        /* which levels this instance created */
    struct IdxFile *old_files;       /* overwrite deleted the old instance: its file and the
                                        user attachments of every row removed with it, now
                                        pending; the caller removes and clears them, then
                                        free()s the array. NULL otherwise */
    size_t nold_files;
    int64_t change_seq;              /* Seq of the NewInstance change */
} IdxStoreResult;

/* Adds a uuid to the pending list (its own small transaction). Adding it twice is fine; a
 * malformed uuid is STO_ERR_ARG. */
bool idx_pending_add(StoError *err, IdxDb *db, const char *uuid);
/* Removes uuids from the pending list (one transaction). */
bool idx_pending_clear(StoError *err, IdxDb *db, const char *const *uuids, size_t n);
/* Pending uuids, with for each whether an attachment row still references it.
 * *uuids is one malloc'd array of n entries (free with free()).
 * Start-up rule (call it before ingest starts, since in-flight uuids are pending too):
 * referenced -> keep the file; not referenced -> sto_area_remove() it. Then clear all. */
typedef struct IdxPending {
    char uuid[STO_UUID_LEN];
    bool referenced;
} IdxPending;
bool idx_pending_list(StoError *err, IdxDb *db, IdxPending **uuids, size_t *n);

/* In one transaction: create the missing patient/study/series rows (with their main tags),
 * the instance row, its tags, metadata and attachment; log the changes NewInstance, then
 * NewSeries, NewStudy, NewPatient for the created levels (in that order); update the running
 * totals and LastUpdate; clear in->uuid from the pending list.
 * Details:
 * - in->meta[l] is applied on every store to every level, created or existing (like Orthanc;
 *   a given value overrides the automatic LastUpdate). Main tags of existing patient, study
 *   and series rows are left as they are.
 * - Already stored, !overwrite: returns true with already_stored; nothing changes and in->uuid
 *   STAYS pending: the caller removes the new file, then idx_pending_clear()s it.
 * - Already stored, overwrite (as Orthanc): in the same transaction the old instance is
 *   deleted as idx_delete() would (with the parents it leaves empty and the changes of every
 *   row removed; its files go pending, listed in out->old_files), then the instance is stored
 *   anew: created[] and the New* changes are those of a first store.
 * - On failure (returns false) the transaction is rolled back and in->uuid stays pending.
 * - in->md5 may be NULL: the attachment then reads back with md5 "".
 * out->change_seq is 0 when already_stored. */
bool idx_store_instance(StoError *err, IdxDb *db, const IdxNewInstance *in, IdxStoreResult *out);

/* A resource as read back. Strings are owned by the struct: release with
 * idx_resource_cleanup(). */
typedef struct IdxResource {
    int level;
    int64_t internal_id;
    char id[IDX_ID_LEN];
    char parent_id[IDX_ID_LEN];  /* "" for a patient */
    size_t ntags;
    uint32_t *tag_keys;          /* main DICOM tags of this level */
    char **tag_values;
    size_t nchildren;
    char **children;             /* public IDs of the children, in insertion order */
    size_t nmeta;
    char **meta_names;           /* all metadata of the resource, sorted by name */
    char **meta_values;
    /* instances only: */
    char uuid[STO_UUID_LEN];
    uint64_t file_size;
    char md5[33];
} IdxResource;

/* Reads one resource. level: IDX_* or -1 for any level. NOT_FOUND if absent (or of another
 * level). */
bool idx_resource_get(StoError *err, IdxDb *db, int level, const char *id, IdxResource *out);
void idx_resource_cleanup(IdxResource *r); /* zeroes it; safe on a zeroed struct */
/* Several resources of one level in one read snapshot (the query engine reads its answers in
 * batches: one round trip instead of one per answer and per computed attribute). out[i] is
 * ids[i]; a resource absent (deleted meanwhile) or of another level is left zeroed (id "").
 * what: the IDX_GET_* parts to read (the row, ID and parent ID always). IDX_GET_NCHILDREN
 * counts the children without listing them (children stays NULL, nchildren set). Instances
 * never have children; their attachment is not read. Release each with idx_resource_cleanup. */
#define IDX_GET_TAGS 1u
#define IDX_GET_META 2u
#define IDX_GET_CHILDREN 4u
#define IDX_GET_NCHILDREN 8u
bool idx_resources_get(StoError *err, IdxDb *db, int level, const char *const *ids, size_t n,
                       unsigned what, IdxResource *out);
/* The value of one metadata item of r (borrowed from r), or NULL if absent. */
const char *idx_resource_metadata(const IdxResource *r, const char *name);

/* Lists the public IDs of a level in insertion order, skipping `since` and returning at most
 * `limit` (0 = no limit). *ids: malloc'd array of malloc'd strings, free with
 * idx_strings_free(). */
bool idx_list(StoError *err, IdxDb *db, int level, uint64_t since, uint64_t limit, char ***ids,
              size_t *n);
void idx_strings_free(char **strings, size_t n);

/* All instances under a resource (itself if an instance), in insertion order. */
typedef struct IdxFile {
    char id[IDX_ID_LEN];  /* instance public ID */
    char uuid[STO_UUID_LEN];
    uint64_t size;
} IdxFile;
bool idx_instances_of(StoError *err, IdxDb *db, int level, const char *id, IdxFile **files,
                      size_t *n); /* *files: one malloc'd array, free() */

/* Counts of descendants, for /{level}/{id}/statistics. The resource counts itself, as in
 * Orthanc: a study has studies == 1, an instance instances == 1. disk_size sums the files. */
typedef struct IdxCounts {
    uint64_t studies, series, instances, disk_size;
} IdxCounts;
bool idx_resource_counts(StoError *err, IdxDb *db, int level, const char *id, IdxCounts *out);

/* Deletes a resource and its descendants, and the ancestors it leaves empty, in one
 * transaction; logs a "Deleted" change for the resource asked and for each emptied ancestor
 * (not for every descendant: cheap on big patients); moves the removed files' uuids into the
 * pending list. The caller removes those files, then idx_pending_clear()s them.
 * remaining_*: the nearest ancestor still present (-1 / "" if none). out->files is NULL on
 * failure. */
typedef struct IdxDeleteResult {
    IdxFile *files;              /* malloc'd, free() */
    size_t nfiles;
    int remaining_level;         /* -1 when no ancestor remains */
    char remaining_id[IDX_ID_LEN];
} IdxDeleteResult;
bool idx_delete(StoError *err, IdxDb *db, int level, const char *id, IdxDeleteResult *out);

/* Running totals (kept in the index, not recounted). */
typedef struct IdxTotals {
    uint64_t count[IDX_LEVELS];
    uint64_t disk_size;          /* bytes of all stored files */
    uint64_t uncompressed_size;  /* same as disk_size: files are stored uncompressed */
} IdxTotals;
bool idx_totals(StoError *err, IdxDb *db, IdxTotals *out);

/* The changes log. Seq is global, increasing and never reused (even after clear). */
typedef struct IdxChange {
    int64_t seq;
    char type[32];               /* "NewInstance", "StableSeries", "Deleted", ... */
    int level;
    char id[IDX_ID_LEN];
    char date[16];               /* "20261125T204400" (UTC) */
} IdxChange;
bool idx_change_add(StoError *err, IdxDb *db, const char *type, int level, const char *id);
/* Changes with seq > since, at most limit (0 = 100), in seq order. done: no more after these.
 * last, as Orthanc's "Last": the seq of the last change returned; when none is returned, the
 * last seq ever handed out (it survives idx_changes_clear), 0 if none ever was. */
bool idx_changes(StoError *err, IdxDb *db, int64_t since, uint64_t limit, IdxChange **out,
                 size_t *n, bool *done, int64_t *last);
/* Only the newest change (the `?last` form). *n is 0 or 1; *out is malloc'd (free()) or
 * NULL. last: its seq, or the last seq ever handed out when the log is empty. */
bool idx_changes_last(StoError *err, IdxDb *db, IdxChange **out, size_t *n, int64_t *last);
bool idx_changes_clear(StoError *err, IdxDb *db);

/* Metadata on any resource. set: insert or replace. delete: NOT_FOUND if absent. Neither
 * logs a change (the caller may idx_change_add "UpdatedMetadata" for user metadata). */
bool idx_metadata_set(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value);
bool idx_metadata_delete(StoError *err, IdxDb *db, int level, const char *id, const char *name);

/* Metadata with revisions (Orthanc's ETag / If-Match): an item's revision is 0 when first
 * set through idx_metadata_put (or by ingest), +1 at each put. get: NOT_FOUND when absent;
 * *value malloc'd (free()). put: if_match >= 0 must equal the current revision (an absent
 * item never matches) or STO_ERR_CONFLICT; -1 skips the check; *revision = the new one.
 * remove: NOT_FOUND when absent, CONFLICT on a revision mismatch. */
bool idx_metadata_get(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      char **value, int64_t *revision);
bool idx_metadata_put(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, int64_t *revision);
bool idx_metadata_remove(StoError *err, IdxDb *db, int level, const char *id, const char *name,
                         int64_t if_match);

/* User-defined attachments (Orthanc's PUT /{level}/{id}/attachments/{name}, content types
 * 1024..65535) of any resource: one file of the storage area each, with its sizes, MD5s,
 * compression and a revision (ETag / If-Match, as metadata). The DICOM file of an instance is
 * not one of them. Deleting a resource removes its attachments with it: their uuids are among
 * idx_delete()'s files (IdxFile.id is then the resource that owned the attachment). */
enum { IDX_COMPRESSION_NONE = 0, IDX_COMPRESSION_ZLIB = 1 }; /* zlib: Orthanc's layout */
typedef struct IdxAttachment {
    int content_type;              /* 1024..65535 */
    char uuid[STO_UUID_LEN];       /* the file */
    uint64_t compressed_size;      /* bytes of the file */
    uint64_t uncompressed_size;
    char compressed_md5[33], uncompressed_md5[33];
    int compression;               /* IDX_COMPRESSION_* */
    int64_t revision;              /* 0 when created, +1 at each put */
} IdxAttachment;
/* Inserts or replaces a->content_type of /level/id. if_match >= 0 must equal the current
 * revision (an absent attachment never matches): else CONFLICT. In the same transaction a->uuid
 * leaves the pending list and a replaced file's uuid enters it (old_uuid; "" when none: the
 * caller removes that file, then clears it). *revision: the new revision. */
bool idx_attachment_put(StoError *err, IdxDb *db, int level, const char *id,
                        const IdxAttachment *a, int64_t if_match, int64_t *revision,
                        char old_uuid[STO_UUID_LEN]);
/* NOT_FOUND when the resource or the attachment is absent. */
bool idx_attachment_get(StoError *err, IdxDb *db, int level, const char *id, int content_type,
                        IdxAttachment *out);
/* The content types of /level/id's attachments, ascending; *types malloc'd (free()). */
bool idx_attachment_list(StoError *err, IdxDb *db, int level, const char *id, int **types,
                         size_t *n);
/* Removes it (NOT_FOUND if absent, CONFLICT on an if_match >= 0 mismatch); its uuid moves to
 * the pending list (old_uuid): the caller removes the file, then clears it. */
bool idx_attachment_remove(StoError *err, IdxDb *db, int level, const char *id, int content_type,
                           int64_t if_match, char old_uuid[STO_UUID_LEN]);

/* Replaces the main DICOM tags of one resource by tags[0..n) (one transaction): what a
 * reconstruct (re-reading the stored files) writes. NOT_FOUND if absent or of another level.
 * Logs no change. */
bool idx_set_main_tags(StoError *err, IdxDb *db, int level, const char *id, const IdxTag *tags,
                       size_t n);

/* Caches the MD5 (32 hex chars) of the attachment stored under uuid. */
bool idx_attachment_set_md5(StoError *err, IdxDb *db, const char *uuid, const char *md5);

/* Search on main DICOM tags (/tools/find, /tools/lookup). A constraint applies to the tag of
 * the resource searched (level == the level asked) or of one of its ancestors (level <).
 * pattern: DICOM matching: '\\'-separated alternatives; in each, '*' and '?' wildcards; with
 * range, "a-b", "a-", "-b" (inclusive, string order: DA/TM/DT). An absent tag never matches
 * (the caller drops "" and "*" constraints, which match everything). case_insensitive: ASCII
 * case folding (PN). Result: public IDs in insertion order after skipping `since`, at most
 * `limit` (0: all); *ids as idx_list. */
typedef struct IdxFindConstraint {
    int level;
    uint32_t tag;
    const char *pattern;
    bool case_insensitive;
    bool range;
    bool literal_list;  /* in a '\\'-separated list, '*' and '?' are plain characters (each
                           item compared whole, as Orthanc's REST find); a single value keeps
                           its wildcards */
} IdxFindConstraint;
bool idx_find(StoError *err, IdxDb *db, int level, const IdxFindConstraint *c, size_t n,
              uint64_t since, uint64_t limit, char ***ids, size_t *nids);

/* Protected patients (Orthanc's PUT /patients/{id}/protected): never recycled. Protection is
 * a row of its own (not metadata), dropped with the patient. NOT_FOUND for an unknown
 * patient; protecting twice is fine. */
bool idx_patient_set_protected(StoError *err, IdxDb *db, const char *patient_id, bool on);
bool idx_patient_is_protected(StoError *err, IdxDb *db, const char *patient_id, bool *out);
/* The first patient in Orthanc's recycling order (least recently updated, then oldest) that
 * is not protected and is not exclude_id (may be NULL). *found false when there is none. */
bool idx_oldest_patient(StoError *err, IdxDb *db, const char *exclude_id, char out[IDX_ID_LEN],
                        bool *found);

/* Saved jobs: an opaque text (JSON) per job ID. */
bool idx_job_save(StoError *err, IdxDb *db, const char *job_id, const char *json);
bool idx_job_delete(StoError *err, IdxDb *db, const char *job_id); /* absent: true */
/* Calls fn(ctx, id, json) for every saved job in the order they were first saved (saving an
 * existing ID again updates its text, keeps its place). fn runs with no index lock held. */
bool idx_jobs_load(StoError *err, IdxDb *db,
                   void (*fn)(void *ctx, const char *id, const char *json), void *ctx);
/* Several processes on one index (PostgreSQL): claims the saved jobs of processes that are
 * gone, each by exactly one live process, and calls fn for each as idx_jobs_load does (the
 * caller restores them). An index that only one process uses (SQLite) has none: true, no
 * call. The jobs engine calls it every few seconds when idx_shared(). */
bool idx_jobs_claim(StoError *err, IdxDb *db,
                    void (*fn)(void *ctx, const char *id, const char *json), void *ctx);
/* True when several server processes may share this index (its backend coordinates them). */
bool idx_shared(const IdxDb *db);

/* Several processes: the IDs of the instances that any process deleted or overwrote since the
 * last call (PostgreSQL LISTEN/NOTIFY, sent in the transaction that made the change, so
 * delivered only once it committed). Waits up to timeout_ms for the first one. *ids is
 * malloc'd (idx_strings_free). *all is true when some may have been missed (the listening
 * connection was lost and made again): the caller drops every per-process copy. Errors
 * (UNAVAILABLE while the server is away) leave *n 0; the next call reconnects. An index only
 * one process uses has nothing to report: true, *n 0, at once (start no thread for it).
 * One thread at a time. */
bool idx_invalidations(StoError *err, IdxDb *db, int timeout_ms, char ***ids, size_t *n,
                       bool *all);

/* Stable-resource detection: logs `type` (StablePatient/StableStudy/StableSeries) for the
 * resource unless that is not due or already done. Several processes see the same resource
 * become stable (each received some of its instances): under a row lock, the change is
 * logged only when the resource's LastUpdate is at least stable_age seconds old and no change
 * `type` of it was logged after that LastUpdate; otherwise *logged is false and *wait_s is
 * how many seconds later it becomes due (0: already logged, nothing to wait for). An index
 * only one process uses logs it at once. NOT_FOUND when the resource is gone. */
bool idx_change_add_stable(StoError *err, IdxDb *db, const char *type, int level,
                           const char *id, int stable_age, bool *logged, int *wait_s);

/* Database schema version reported by /system ("DatabaseVersion"): Orthanc 1.10's value,
 * which clients compare against. It is not the layout revision of our backends (idx_info). */
#define IDX_SCHEMA_VERSION 6

#endif
