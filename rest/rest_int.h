/* rest_int.h -- what the handlers (h_*.c), the router and the MHD glue share. */
#ifndef MP_REST_INT_H
#define MP_REST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "rest/rest.h"

#define REST_MAX_SEGMENTS 16
#define REST_MAX_ARGS 32
/* Query arguments a request may carry (only the first REST_MAX_ARGS are kept): more get 414,
 * answered before libmicrohttpd files them in its per-connection pool (see http.c). */
#define REST_MAX_QUERY_ARGS 1000
#define REST_MAX_PARAMS 4
/* Ceiling of a JSON request body (anonymize/modify options, find queries, ...): 413 above it,
 * before reading when the request says Content-Type: application/json. */
#define REST_MAX_JSON_BODY ((size_t)64 << 20)
#define REST_BODY_IO 100 /* body_rc: writing the spool file failed */
/* Ceiling of a reply body held in memory (JSON, rendered text). */
#define REST_MAX_REPLY ((size_t)4 << 30)
/* Ceiling of an ID list a handler assembles (bytes of char * array: 2^27 IDs). */
#define REST_MAX_ID_LIST ((size_t)1 << 30)

typedef struct RestArg {
    char *key;
    char *value; /* "" when given without a value (?expand) */
} RestArg;

typedef struct RestCall {
    Srv *srv;
    struct MHD_Connection *conn;
    const char *method;             /* "GET", ... (MHD's string) */
    char *url;                      /* path, as received (decoded by MHD) */
    char *seg[REST_MAX_SEGMENTS];   /* path segments (point into segbuf) */
    size_t nseg;
    bool bad_path;                  /* a "." or ".." segment: 404, never resolved */
    char *segbuf;
    const char *params[REST_MAX_PARAMS]; /* values matched by {..} in the route, in order */
    size_t nparams;
    RestArg args[REST_MAX_ARGS];    /* query arguments */
    size_t nargs;
    char remote_ip[64];
    char *user;                     /* authenticated user or NULL */
    /* request body: the whole body, set before dispatch (see "Request bodies" in rest.h:
     * a spooled body is a read-only mapping of its spool file here). */
    const char *body;
    size_t body_len;
    /* http.c's: the body as it arrives, held once, ceiling fixed at the first call */
    Buf body_buf;
    int body_rc;                    /* BUF_TOO_LARGE: 413; BUF_NOMEM: 503; REST_BODY_IO: body_err */
    bool gzip;
    bool spooled;                   /* the body is in body_spool (a file), not in body_buf */
    SrvSpool body_spool;
    void *body_map;                 /* mapping of body_spool handed out as body; NULL: none */
    SrvError body_err;              /* why the spool failed (body_rc REST_BODY_IO) */
    bool refused;                   /* access refused (401/403): the body is read and dropped */
    size_t discarded;               /* bytes of a refused request's body dropped so far */
    /* response */
    int status;
    char *resp;                     /* malloc'd body, handed to MHD */
    size_t resp_len;
    const char *resp_type;
    int resp_fd;                    /* >= 0: send this file */
    uint64_t resp_fd_size;
    ssize_t (*stream_read)(void *cls, char *buf, size_t max); /* streamed body (chunked) */
    void (*stream_free)(void *cls);
    void *stream_cls;
    char allow[64];                 /* for 405 */
    char extra_header[2][2][96];    /* up to two extra headers (name, value) */
    double started_ms;
    uint64_t metrics_token;         /* metrics_rest_begin's, 0: not counted */
    bool queued;                    /* a response was queued */
    bool set_up;                    /* the handler's first call has run */
    size_t query_args;              /* arguments in the query string, as counted on arrival */
    /* streamed request body (a route with a RestBodyFn): see RestRoute.body */
    bool (*body_fn)(struct RestCall *call, const char *data, size_t len);
    uint64_t body_seen;             /* bytes handed to body_fn */
    bool body_failed;               /* body_fn refused (its reply is set): the rest is swallowed */
    void *body_state;               /* the route's, freed by body_state_free when the call ends */
    void (*body_state_free)(void *state);
    bool xml;                       /* Accept: application/xml: JSON answers rendered as XML */
    int signal_after;               /* raised once the answer has gone (shutdown, reset) */
} RestCall;

typedef void (*RestHandler)(RestCall *call);

typedef struct RestRoute {
    const char *method;
    const char *pattern;            /* "/instances/{id}/file"; a final "*" matches the rest */
    RestHandler fn;
} RestRoute;

/* A route that consumes its request body as it arrives instead of having it held in memory
 * (listed in routes.c's body_tables besides its ordinary RestRoute): called once before the
 * body with data NULL (after the access rules; params are set), then with each chunk; false
 * means it has set an error reply (the rest of the body is read and dropped, then that reply
 * is sent). The body is not gunzipped; MaximumUploadSize still caps it. The route's
 * RestHandler then runs at the end with body NULL, unless the body function failed. */
typedef bool (*RestBodyFn)(RestCall *call, const char *data, size_t len);
typedef struct RestBodyRoute {
    const char *method;
    const char *pattern;
    RestBodyFn body;
} RestBodyRoute;
typedef struct RestBodyRouteTable {
    const RestBodyRoute *routes;
    size_t n;
} RestBodyRouteTable;

typedef struct RestRouteTable {
    const RestRoute *routes;
    size_t n;
} RestRouteTable;

/* SRV_* level for "patients", "studies", "series", "instances"; -1 otherwise. */
int rest_level_from_route(const char *segment);
/* routes.c: the table, and dispatch (404 for no route, 405 with Allow for a wrong method). */
void rest_dispatch(RestCall *call);
/* The body function of a streaming route matching the call (params set), or NULL. */
RestBodyFn rest_body_route_find(RestCall *call);

/* Replies (http.c). Each sets the response; the last one called wins. */
void rest_reply_json(RestCall *call, int status, cJSON *json); /* takes json */
/* 200 {"ID": job_id, "Path": "/jobs/<job_id>"}: Orthanc's answer to a job submitted with
 * "Asynchronous": true. */
void rest_reply_job(RestCall *call, const char *job_id);
/* Waits for a job submitted synchronously: its content (caller owns it), or NULL once the job's
 * error was replied. */
cJSON *rest_job_wait(RestCall *call, const char *job_id);
void rest_reply_buffer(RestCall *call, int status, const char *type, char *buf, size_t len); /* takes buf */
void rest_reply_text(RestCall *call, int status, const char *type, const char *text); /* copies */
void rest_reply_fd(RestCall *call, const char *type, int fd, uint64_t size); /* takes fd */
void rest_reply_error(RestCall *call, const SrvError *err);
/* A body of unknown length sent as it is produced (chunked): MHD calls read (blocking until
 * bytes are ready; 0 at the end, -1 on failure: the connection is dropped) on a pool thread;
 * free_fn(cls) runs when the request ends (also when the client goes away). Takes cls. */
typedef ssize_t (*RestStreamRead)(void *cls, char *buf, size_t max);
void rest_reply_stream(RestCall *call, const char *type, RestStreamRead read, void (*free_fn)(void *), void *cls);
/* Replies a failed growth of a buffer the handler assembles (not the request body):
 * BUF_NOMEM -> NotEnoughMemory, BUF_TOO_LARGE -> InternalError naming `what`. */
void rest_fail_buf(RestCall *call, int rc, const char *what);
/* Shorthand: builds the SrvError and replies. */
void rest_fail(RestCall *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rest_add_header(RestCall *call, const char *name, const char *value);

/* Query arguments. */
const char *rest_arg(const RestCall *call, const char *key); /* NULL if absent */
bool rest_arg_bool(const RestCall *call, const char *key);   /* present and not "false"/"0" */
/* Parses an unsigned argument; false (and a 400 reply) if malformed. def if absent. */
bool rest_arg_u64(RestCall *call, const char *key, uint64_t def, uint64_t *out);
/* Parses the body as JSON (NULL and a 400 reply if malformed; an empty body gives {}). */
cJSON *rest_body_json(RestCall *call);

/* h_resources.c helpers shared with other handler families. */
/* Replies a JSON list of IDs, or of full resource objects when expand (skipping resources
 * deleted meanwhile). */
void rest_reply_ids(RestCall *call, int level, char *const *ids, size_t n, bool expand);
/* Replies the stored file of an instance (application/dicom), or the error. */
void rest_reply_instance_file(RestCall *call, const char *instance_id);
/* Adds "<key>": "<bytes>" and "<key>MB": <bytes / 2^20>, as Orthanc prints sizes. */
void rest_add_size(cJSON *o, const char *key, uint64_t bytes);

/* h_content.c: parses ?ignore-length= (a list of tags never TooLong; empty: all of them) into
 * the max length (SRV_TAGS_TOO_LONG, or 0) and the tags (at most cap). false and a 400
 * reply on an unknown tag. */
bool rest_ignore_length(RestCall *call, size_t *max_length, uint32_t *tags, size_t cap, size_t *n);
/* The tags format asked: ?simplify, ?short, else full (SRV_TAGS_*). */
int rest_tags_format(const RestCall *call);
/* Fills opt with format and ?ignore-length= (ign: room for cap tags, kept by opt). false and
 * a 400 reply on an unknown tag. */
bool rest_tags_options(RestCall *call, int format, SrvTagsOptions *opt, uint32_t *ign, size_t cap);

/* Route tables of the handler families (h_<family>.c), listed in routes.c. */
extern const RestRouteTable rest_routes_content;  /* h_content.c: /content, /module, shared tags */
extern const RestRouteTable rest_routes_metadata; /* h_metadata.c: /metadata, /attachments */
extern const RestRouteTable rest_routes_tools;    /* h_tools.c: /tools/find, create-dicom, ... */

/* auth.c: the remote-access rule and HTTP Basic authentication, checked at the first call of
 * a request (before its body is read). rest_auth_admit returns true when the request may go
 * on (call->user set to the authenticated user, if any); otherwise it has set the reply: 403
 * for a non-local peer without RemoteAccessAllowed, 401 with WWW-Authenticate for missing or
 * bad credentials. Local means 127.0.0.1 or ::1 only, as Orthanc. */
struct sockaddr;
bool rest_auth_is_local(const struct sockaddr *sa);
bool rest_auth_admit(RestCall *call, const struct sockaddr *peer);
/* Internals, exposed for the unit tests and the fuzz targets: constant-time difference (0
 * when equal), and the check of a user name and password (as libmicrohttpd decoded them from
 * the Authorization header; NULL when absent) against cfg->users (*user malloc'd). */
unsigned rest_auth_ct_diff(const char *a, size_t alen, const char *b, size_t blen);
bool rest_auth_check_user(const Cfg *cfg, const char *name, const char *password, char **user);

/* Handler families, registered in routes.c. */
void h_upload(RestCall *call);
void h_list(RestCall *call);
void h_get(RestCall *call);
void h_delete(RestCall *call);
void h_statistics_resource(RestCall *call);
void h_related(RestCall *call);
void h_file(RestCall *call);
void h_tags(RestCall *call);
void h_simplified_tags(RestCall *call);
void h_header(RestCall *call);
void h_system(RestCall *call);
void h_statistics(RestCall *call);
void h_changes(RestCall *call);
void h_changes_delete(RestCall *call);

/* Route tables of the other handler families (h_<family>.c), listed in routes.c. */
extern const RestRouteTable rest_routes_protected; /* h_protected.c: /patients/{id}/protected */
extern const RestRouteTable rest_routes_metrics;
extern const RestRouteTable rest_routes_jobs;   /* h_jobs.c: /jobs */
extern const RestRouteTable rest_routes_modify; /* h_modify.c: /{level}/{id}/anonymize|modify */
extern const RestRouteTable rest_routes_modalities; /* h_modalities.c: /modalities, /queries */
extern const RestRouteTable rest_routes_peers;      /* h_peers.c: /peers */
extern const RestRouteTable rest_routes_dwclient;   /* h_dwclient.c: /dicom-web/servers */
extern const RestRouteTable rest_routes_images; /* h_images.c: frames, previews, pdf, slices */
extern const RestRouteTable rest_routes_dicomweb; /* h_dicomweb.c: /dicom-web/ (QIDO-RS, WADO-RS) */
/* h_dicomweb.c: maps a path under DicomWeb.Root onto the table's /dicom-web/ (before dispatch). */
void rest_dicomweb_root(RestCall *call);
extern const RestRouteTable rest_routes_archive; /* h_archive.c: archive, media, create-archive */
/* h_archive.c: POST /instances with a ZIP body (true: handled, reply set); GET
 * /instances/{id}/file?transcode= (true: handled). */
struct IngestOrigin;
bool rest_upload_zip(RestCall *call, const struct IngestOrigin *origin);
bool rest_file_transcoded(RestCall *call);

/* h_reorganize.c: MainDicomTags / PatientMainDicomTags of a resource object in Orthanc's
 * "Short" ("gggg,eeee": value) or "Full" ("gggg,eeee": {Name, Type, Value}) form (bulk-content,
 * find with Expand). REST_TAGS_NAMES leaves it as it is. */
enum { REST_TAGS_NAMES = 0, REST_TAGS_SHORT = 1, REST_TAGS_FULL = 2 };
void rest_main_tags_format(cJSON *resource, int format);
extern const RestRouteTable rest_routes_reorganize; /* h_reorganize.c: bulk tools, reconstruct,
                                                       split/merge */
extern const RestRouteTable rest_routes_www;    /* h_www.c: /, /app/ (the web interface) */
extern const RestRouteTable rest_routes_ohif;   /* h_ohif.c: /ohif/ (the OHIF Viewer) */
extern const RestRouteTable rest_routes_stow;   /* h_stow.c: STOW-RS, POST /dicom-web/studies */
extern const RestBodyRouteTable rest_body_routes_stow; /* h_stow.c: its streamed body */
extern const RestRouteTable rest_routes_wado;   /* h_wado.c: WADO-URI, GET /wado */
extern const RestRouteTable rest_routes_admin;  /* h_admin.c: log levels, encoding, DICOM
                                                   settings, shutdown, reset, /exports */
/* xml.c: appends the JSON tree as Orthanc's XML (Accept: application/xml); BUF_* result. */
int rest_json_to_xml(Buf *out, const cJSON *json);
/* h_form.c: POST /instances with a multipart/form-data body (browsers' file uploads): each
 * part stored through the one ingest path as Orthanc does (true: handled, reply set). */
bool rest_upload_form(RestCall *call, const struct IngestOrigin *origin);

#endif
