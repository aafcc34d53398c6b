/* store.h -- the store's services for the edges (rest/ today): reading resources, search,
 * the DICOM views of stored instances, creating an instance, metadata, attachments,
 * protection and the changes log. Included by server.h; one section per file of server/.
 *
 * DESIGN: rest/ calls server/ only. Whatever a change must also do (log a change, drop a cached
 * parse, respect quotas, count metrics) is done behind these functions, so no handler can
 * forget it. Levels are SRV_PATIENT..SRV_INSTANCE, or -1 for "any level" where a function
 * says so; an ID of another level than the one asked is UnknownResource (404).
 *
 * Errors: false / NULL / -1 with err set (SrvError, Orthanc's codes). Results: cJSON trees and
 * char * are the caller's (cJSON_Delete, free); ID lists are freed with srv_strings_free().
 * Threads: any.
 */
#ifndef MP_SERVER_STORE_H
#define MP_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/server.h"

/* ---- Resources (server/resources.c) ----------------------------------------------------- */
/* Orthanc's JSON of one resource (GET /{level}/{id}, and each item of ?expand): ID, Type,
 * MainDicomTags, parent, children, IsStable, LastUpdate, ... level may be -1. */
cJSON *srv_resource_json(SrvError *err, Srv *srv, int level, const char *id);
/* A JSON array of IDs, or of srv_resource_json() objects when expand (resources deleted
 * meanwhile are skipped). */
cJSON *srv_resources_json(SrvError *err, Srv *srv, int level, char *const *ids, size_t n,
                          bool expand);
/* The level of an existing resource (any level), -1 with err set when unknown. */
int srv_resource_level(SrvError *err, Srv *srv, const char *id);
/* IDs of a level in insertion order, skipping `since`, at most `limit` (0: all). */
bool srv_resource_list(SrvError *err, Srv *srv, int level, uint64_t since, uint64_t limit,
                       char ***ids, size_t *n);
void srv_strings_free(char **strings, size_t n); /* NULL is fine */
/* The ancestor of /level/id at level target (< level) into out. */
bool srv_resource_ancestor(SrvError *err, Srv *srv, int level, const char *id, int target,
                           char out[SRV_ID_LEN]);
/* The descendants of /level/id at level target (> level), breadth first, insertion order. */
bool srv_resource_descendants(SrvError *err, Srv *srv, int level, const char *id, int target,
                              char ***ids, size_t *n);
/* The instances under a resource (itself for an instance), in insertion order. */
bool srv_resource_instances(SrvError *err, Srv *srv, int level, const char *id, char ***ids,
                            size_t *n);
/* Counts of descendants (the resource counts itself, as in Orthanc) and the bytes stored. */
typedef struct SrvCounts {
    uint64_t studies, series, instances, disk_size;
} SrvCounts;
bool srv_resource_counts(SrvError *err, Srv *srv, int level, const char *id, SrvCounts *out);
/* Running totals of the whole store (no scan). */
typedef struct SrvTotals {
    uint64_t count[SRV_LEVELS];
    uint64_t disk_size, uncompressed_size;
} SrvTotals;
bool srv_totals(SrvError *err, Srv *srv, SrvTotals *out);
/* The stored file of an instance, opened read-only: the fd (caller closes it or hands it to
 * MHD) and its size; -1 with UnknownResource / InexistentFile. */
int srv_instance_open(SrvError *err, Srv *srv, const char *instance_id, uint64_t *size);
/* The whole stored file of an instance; *buf malloc'd. */
bool srv_instance_read(SrvError *err, Srv *srv, const char *instance_id, void **buf,
                       size_t *len);
/* The index's schema version (/system DatabaseVersion). */
int srv_database_version(void);

/* ---- Reconstruct (server/reconstruct.c) -------------------------------------------------
 * The main DICOM tags of every instance under /level/id (id NULL: the whole store) read again
 * from the files and rewritten in the index, with their series, study and patient. */
bool srv_reconstruct(SrvError *err, Srv *srv, int level, const char *id);
/* /tools/invalidate-tags: drops the cached parses (they are read again on demand). */
void srv_invalidate_tags(Srv *srv);

/* ---- Search (server/find.c) --------------------------------------------------------------
 * /tools/find: query is {tag: pattern} (tag by name or "gggg,eeee"), a translation onto the
 * one query engine (server/query.c) with Orthanc 1.10.1's REST rules: main tags of the level
 * and its ancestors in the index (patient tags on the study's own copy), other tags on a stored
 * file; every tag compared with case folding unless case_sensitive; the items of a '\\' list
 * compared whole; wildcards on DA/TM/DT refused (ParameterOutOfRange); a main tag of a lower
 * level than the one searched matches nothing; answers sorted by ID, since/limit paging them.
 * UnknownDicomTag / BadRequest for a bad query. */
bool srv_find(SrvError *err, Srv *srv, int level, const cJSON *query, bool case_sensitive,
              uint64_t since, uint64_t limit, char ***ids, size_t *n);
/* /tools/lookup: the resources whose PatientID / Study / Series / SOP Instance UID is value:
 * [{ID, Path, Type}]. */
cJSON *srv_lookup(SrvError *err, Srv *srv, const char *value);

/* ---- DICOM views of stored instances (server/tags.c) ------------------------------------ */
enum { SRV_TAGS_FULL = 0, SRV_TAGS_SIMPLIFY = 1, SRV_TAGS_SHORT = 2 }; /* /tags, ?simplify, ?short */
#define SRV_TAGS_TOO_LONG 256 /* Orthanc's REST threshold for "TooLong" values */
typedef struct SrvTagsOptions {
    int format;             /* SRV_TAGS_* */
    size_t max_length;      /* longer values are TooLong; 0: none is */
    const uint32_t *ignore; /* tags never TooLong (?ignore-length=) */
    size_t nignore;
} SrvTagsOptions;
/* A tag by name ("PatientName") or number ("0010,0010", "00100010"); false if unknown. */
bool srv_tag_parse(const char *s, uint32_t *tag);
/* GET /instances/{id}/tags: from the DICOM cache (full parse). */
cJSON *srv_instance_tags(SrvError *err, Srv *srv, const char *instance_id,
                         const SrvTagsOptions *opt);
/* GET /instances/{id}/header: the file meta information (group 0002), format SRV_TAGS_*. */
cJSON *srv_instance_header(SrvError *err, Srv *srv, const char *instance_id, int format);
/* GET /instances/{id}/content/{path...}: a listing (list, a JSON array) or a value (data,
 * malloc'd, len bytes; is_text for UTF-8 text). UnknownResource for a missing path,
 * UnknownDicomTag for a malformed one. */
typedef struct SrvContent {
    cJSON *list;
    char *data;
    size_t len;
    bool is_text;
} SrvContent;
bool srv_instance_content(SrvError *err, Srv *srv, const char *instance_id,
                          const char *const *path, size_t npath, SrvContent *out);
void srv_content_cleanup(SrvContent *c); /* zeroes it */
/* GET /{level}/{id}/module (module == level) and /studies/{id}/module-patient (module
 * SRV_PATIENT): the module's tags of the first instance under the resource. */
cJSON *srv_module_tags(SrvError *err, Srv *srv, int level, const char *id, int module,
                       const SrvTagsOptions *opt);
/* GET /{level}/{id}/shared-tags: the tags equal in every instance under the resource. */
cJSON *srv_shared_tags(SrvError *err, Srv *srv, int level, const char *id,
                       const SrvTagsOptions *opt);
/* GET /{level}/{id}/instances-tags: {instance ID: tags} for every instance under it. */
cJSON *srv_instances_tags(SrvError *err, Srv *srv, int level, const char *id,
                          const SrvTagsOptions *opt);

/* ---- Creating an instance (server/create.c) ----------------------------------------------
 * /tools/create-dicom: builds a file from tags (JSON object, by name or number; completed
 * with the main tags of parent and its ancestors when parent is not NULL: a patient, study or
 * series) and optional content (mime "image/png", "application/pdf", ...; the decoded bytes),
 * then stores it through ingest_buffer. tags may be modified (parent tags are added).
 * private_creator: for private tags given by number (NULL: DefaultPrivateCreator).
 * interpret_binary (InterpretBinaryTags): "data:application/octet-stream;base64,..." values
 * are the bytes they encode. */
bool srv_create_dicom(SrvError *err, Srv *srv, cJSON *tags, const char *parent,
                      const char *private_creator, bool interpret_binary, const char *mime,
                      const void *content, size_t content_len, const IngestOrigin *origin,
                      IngestResult *res);
/* "Content" as an array (Orthanc's multi-content create-dicom): one instance per item (a data
 * URI, or {"Content": data URI, "Tags": {...}} whose tags override tags), all in one series:
 * PatientID, StudyInstanceUID, SeriesInstanceUID generated once when absent,
 * ImagesInAcquisition n, NumberOfTemporalPositions 1, InstanceNumber and ImageIndex 1..n.
 * On failure the instances already stored are deleted (nothing half written). series_id: the
 * series' ID. */
bool srv_create_dicom_series(SrvError *err, Srv *srv, cJSON *tags, const char *parent,
                             const char *private_creator, bool interpret_binary, const cJSON *items,
                             const IngestOrigin *origin, char series_id[SRV_ID_LEN]);
/* Decodes "data:<type>;base64,<data>": the type (at most type_size - 1 bytes) and the bytes
 * (*bytes malloc'd). SRV_BAD_REQUEST when malformed. */
bool srv_data_uri_decode(SrvError *err, const char *s, char *type, size_t type_size,
                         unsigned char **bytes, size_t *len);

/* ---- Metadata (server/metadata.c) --------------------------------------------------------
 * Names are Orthanc's built-in ones, the configuration's UserMetadata (by name or number) or
 * any number 1024..65535 (user metadata, named by its number). Revisions as Orthanc's ETag /
 * If-Match "<revision>-<md5 of the value>" (if_match -1: no check; if_match_md5 NULL: the
 * revision only; a mismatch is 409). put and delete accept only user metadata and log an
 * "UpdatedMetadata" change. */
/* Resolves a name or number into out; *user: user metadata. false: unknown. */
bool srv_metadata_resolve(const Cfg *cfg, const char *in, char *out, size_t size, bool *user);
/* GET /{level}/{id}/metadata: names (array), or {name: value} when expand. */
cJSON *srv_metadata_list(SrvError *err, Srv *srv, int level, const char *id, bool expand);
/* *value malloc'd. */
bool srv_metadata_get(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                      char **value, int64_t *revision);
bool srv_metadata_put(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                      const char *value, int64_t if_match, const char *if_match_md5,
                      int64_t *revision);
bool srv_metadata_delete(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                         int64_t if_match, const char *if_match_md5);
/* Orthanc's ETag of an item: "\"<revision>-<md5 hex of value>\"" (quotes included). */
#define SRV_ETAG_LEN 64
void srv_metadata_etag(int64_t revision, const char *value, char out[SRV_ETAG_LEN]);
/* Parses an If-Match / If-None-Match value "<revision>-<md5>" (quotes optional): 1 parsed,
 * 0 absent (in NULL), -1 malformed. */
int srv_metadata_parse_etag(const char *in, int64_t *revision, char md5[33]);

/* ---- Attachments (server/attachments.c) --------------------------------------------------
 * "dicom" (content type 1): the DICOM file of an instance, stored uncompressed, its MD5
 * computed on first demand and cached in the index; it cannot be changed here. User-defined
 * attachments (content types 1024..65535, by number or by a name of UserContentType) on any
 * resource: stored as given, zlib-compressed (Orthanc's layout) when StorageCompression, each
 * with a revision (If-Match: if_match -1 no check, a mismatch is 409). Names: "dicom", "1", a
 * number, or a declared name; an unknown name is InexistentItem (404), a write to a type
 * below 1024 is 403. */
typedef struct SrvAttachment {
    char uuid[SRV_UUID_LEN];
    uint64_t size;              /* uncompressed */
    char md5[33];               /* uncompressed; "" unless asked for (dicom) */
    int content_type;
    uint64_t compressed_size;   /* bytes of the stored file */
    char compressed_md5[33];
    bool compressed;
    int64_t revision;
    char mime[64];              /* of "data": UserContentType's, application/dicom for dicom */
} SrvAttachment;
/* Names of the attachments of a resource: a JSON array ("dicom" first for an instance, then
 * the user-defined ones by content type, named as declared or by number). */
cJSON *srv_attachments_list(SrvError *err, Srv *srv, int level, const char *id);
/* One attachment's description. */
bool srv_attachment_get(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                        bool with_md5, SrvAttachment *out);
/* The content (uncompressed), or the stored bytes when raw; *buf malloc'd. info (may be NULL)
 * gets the description. */
bool srv_attachment_read(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                         bool raw, void **buf, size_t *len, SrvAttachment *info);
/* Creates or replaces a user-defined attachment; *revision and md5 (uncompressed, may be
 * NULL) of the stored one. */
bool srv_attachment_put(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                        const void *data, size_t len, int64_t if_match, int64_t *revision,
                        char md5[33]);
bool srv_attachment_delete(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                           int64_t if_match);
/* Stores it again compressed or not (nothing to do when it already is); the DICOM file:
 * NotImplemented for compress, nothing for uncompress. */
bool srv_attachment_compress(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                             bool compress);
/* Re-hashes the file (and the inflated content) and compares with the MD5s recorded:
 * CorruptedFile on a mismatch. */
bool srv_attachment_verify(SrvError *err, Srv *srv, int level, const char *id,
                           const char *name);

/* ---- Protection (server/protection.c): patients never recycled by the quotas ------------ */
bool srv_patient_is_protected(SrvError *err, Srv *srv, const char *patient_id, bool *on);
bool srv_patient_set_protected(SrvError *err, Srv *srv, const char *patient_id, bool on);

/* ---- Changes (server/changes.c) ---------------------------------------------------------- */
/* Logs a change ("UpdatedMetadata", "StableSeries", ...) of /level/id. */
bool srv_change_log(SrvError *err, Srv *srv, const char *type, int level, const char *id);
/* GET /changes: {Changes, Done, Last}; last_only: only the newest change (?last). limit 0:
 * 100. */
cJSON *srv_changes_json(SrvError *err, Srv *srv, int64_t since, uint64_t limit, bool last_only);
bool srv_changes_clear(SrvError *err, Srv *srv);

#endif
