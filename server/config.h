/* config.h -- the configuration (Orthanc.json), part of server/ (included by server.h).
 *
 * DESIGN: a Redis-style table in config.c, one row per option (name, type, offset in Cfg,
 * default, bounds). cfg_load() reads the file, drops // and block comments (cJSON_Minify,
 * careful to keep line numbers for messages by minifying a copy only after locating errors),
 * checks each known option's type and range (a wrong type or a malformed file stops start-up
 * with a message naming the option and the line), logs unknown options at warning, then
 * applies environment overrides ORTHANC__<OPTION>: the option name in upper snake case
 * (HttpPort -> ORTHANC__HTTP_PORT, DicomAet -> ORTHANC__DICOM_AET, RegisteredUsers ->
 * ORTHANC__REGISTERED_USERS with a JSON value). Without a file (path NULL) the embedded
 * defaults apply (Orthanc's), with StorageDirectory = IndexDirectory = "OrthancStorage".
 *
 * Cfg is read-only once loaded: any thread may read it without locking.
 */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct CfgUser {
    char *name;
    char *password;
} CfgUser;

#define CFG_MAX_PARALLEL_ASSOCIATIONS 8 /* "ParallelAssociations" ceiling */
/* Sizes (with the NUL) of a modality's AE titles and host, as SrvModality holds them: longer
 * ones are refused (ours; Orthanc takes any length). */
#define CFG_MODALITY_AET_MAX 65
#define CFG_MODALITY_HOST_MAX 256

typedef struct CfgModality {
    char *name;  /* key in DicomModalities */
    char *aet;
    char *host;
    int port;
    /* Orthanc's per-modality flags (object form; all true by default). AllowEcho/AllowStore
     * only matter when DicomAlwaysAllowEcho/Store is false. AllowFindWorklist, AllowNAction,
     * AllowEventReport (both set by AllowStorageCommitment), AllowTranscoding and UseDicomTls
     * are kept and shown as Orthanc does; nothing of ours acts on them yet. */
    bool allow_echo, allow_find, allow_move, allow_get, allow_store;
    bool allow_find_worklist, allow_n_action, allow_event_report, allow_transcoding;
    bool use_dicom_tls;  /* false by default */
    char *manufacturer;  /* "Manufacturer", Orthanc's canonical name, "Generic" by default */
    char *local_aet;     /* "LocalAet": our AET toward it; NULL = DicomAet */
    int timeout;         /* "Timeout" (s); 0 = DicomScuTimeout */
    int parallel;        /* "ParallelAssociations" (ours, 1..8): C-MOVE sub-associations at
                          * once toward it; 0 or 1 = one, as Orthanc */
} CfgModality;

typedef struct CfgDictEntry {  /* one "Dictionary" entry: "0009,1001": ["LO", "Name", 1, 1, "Creator"] */
    uint32_t tag;
    char *vr;
    char *name;
    int min_multiplicity, max_multiplicity; /* max -1: unbounded (0 in the file, as Orthanc) */
    char *private_creator;     /* NULL if none */
} CfgDictEntry;

typedef struct CfgUserMetadata { /* "UserMetadata": {"Name": 1024, ...} */
    char *name;
    int number;
} CfgUserMetadata;

typedef struct CfgUserContentType { /* "UserContentType": {"Name": 1024 | [1024, "mime"]} */
    char *name;
    int number;
    char *mime;                /* "application/octet-stream" unless given */
} CfgUserContentType;

typedef struct CfgPostgres {   /* "PostgreSQL": {...}, as Orthanc's PostgreSQL plugin */
    bool enable_index;         /* EnableIndex, false: the index stays in SQLite */
    char *host;                /* Host, "localhost" */
    int port;                  /* Port, 5432 */
    char *database;            /* Database, "orthanc" */
    char *username;            /* Username, "orthanc" */
    char *password;            /* Password, "" */
    char *connection_uri;      /* ConnectionUri: when set, replaces the five above */
    bool lock;                 /* Lock, true: this process alone uses the database */
    int connections;           /* IndexConnectionsCount, 4 (Orthanc's default is 1) */
    int retries;               /* MaximumConnectionRetries, 10 (a second apart, at start) */
} CfgPostgres;

typedef struct CfgDicomWeb {   /* "DicomWeb": {...}, as Orthanc's DICOMweb plugin (server side) */
    bool enable;               /* Enable, true */
    char *root;                /* Root, "/dicom-web/" */
    char *host;                /* Host, "": URLs use the request's Host (X-Forwarded-Host) */
    bool ssl;                  /* Ssl, false: URLs say https (else X-Forwarded-Proto) */
    bool qido_case_sensitive;  /* QidoCaseSensitive, true as Orthanc's plugin: PN matching */
    char *studies_metadata;    /* StudiesMetadata, "Full" | "MainDicomTags" */
    char *series_metadata;     /* SeriesMetadata, "Full" | "MainDicomTags" */
    char *public_root;         /* PublicRoot, "" (= Root): the root printed in URLs */
    int bulk_threshold;        /* BulkDataThreshold (ours), 1024 bytes: larger binaries by URI */
    char *servers;             /* Servers, NULL: JSON text of the client's servers (server/dwclient.c) */
} CfgDicomWeb;

typedef struct Cfg {
    char *name;                       /* Name, "MiniPACS" */
    char *storage_dir;                /* StorageDirectory, "OrthancStorage" */
    char *index_dir;                  /* IndexDirectory, defaults to StorageDirectory */
    int http_port;                    /* HttpPort, 8042 */
    int dicom_port;                   /* DicomPort, 4242 */
    char *dicom_aet;                  /* DicomAet, "ORTHANC" */
    bool dicom_check_called_aet;      /* DicomCheckCalledAet, false */
    CfgModality *modalities;          /* DicomModalities, {} */
    size_t nmodalities;
    int dicom_scp_timeout;            /* DicomScpTimeout, 30 (s) */
    int max_associations;             /* MaximumAssociations, 20 (ours; Orthanc has no limit) */
    bool dicom_always_allow_store;    /* DicomAlwaysAllowStore, true */
    bool dicom_check_modality_host;   /* DicomCheckModalityHost, false */
    bool dicom_tcp_nodelay;           /* DicomTcpNoDelay, true */
    int maximum_pdu_length;           /* MaximumPduLength, 16384 (bytes, 4096..131072) */
    bool remote_access_allowed;       /* RemoteAccessAllowed, false */
    bool authentication_enabled;      /* AuthenticationEnabled; when absent: true iff remote
                                         access is allowed (Orthanc's rule) */
    bool authentication_explicit;     /* the file set AuthenticationEnabled */
    CfgUser *users;                   /* RegisteredUsers, {} */
    size_t nusers;
    bool ssl_enabled;                 /* SslEnabled, false */
    char *ssl_certificate;            /* SslCertificate, "certificate.pem" */
    int concurrent_jobs;              /* ConcurrentJobs, 2 */
    int jobs_history_size;            /* JobsHistorySize, 10 */
    bool save_jobs;                   /* SaveJobs, true */
    uint64_t maximum_storage_size;    /* MaximumStorageSize, MB, 0 = unlimited */
    uint64_t maximum_patient_count;   /* MaximumPatientCount, 0 = unlimited */
    char *maximum_storage_mode;       /* MaximumStorageMode, "Recycle" | "Reject" */
    int malloc_arena_max;             /* MallocArenaMax, 5 */
    bool metrics_enabled;             /* MetricsEnabled, true */
    int http_threads;                 /* HttpThreadsCount, 0 = cores x 2 */
    int http_timeout;                 /* HttpRequestTimeout, 30 (s) */
    int http_connection_limit;        /* HttpConnectionLimit, 1000 (ours) */
    int http_connection_limit_per_ip; /* HttpConnectionLimitPerIp, 0 = none (ours) */
    uint64_t maximum_upload_size;     /* MaximumUploadSize, MB, 2048 (ours) */
    bool sync_storage;                /* SyncStorageArea, true */
    bool overwrite_instances;         /* OverwriteInstances, false */
    int stable_age;                   /* StableAge, 60 (s) */
    char *default_encoding;           /* DefaultEncoding, "Latin1" */
    char *default_private_creator;    /* DefaultPrivateCreator, "" */
    CfgDictEntry *dictionary;         /* Dictionary, {} */
    size_t ndictionary;
    CfgUserMetadata *user_metadata;   /* UserMetadata, {} */
    size_t nuser_metadata;
    int memory_trimming_interval;     /* MemoryTrimmingInterval, 30 (s), 0 = off (ours) */
    int dicom_cache_size;             /* DicomCacheSize, 128 (MB) (ours) */
    char *log_level;                  /* LogLevel, "info" (ours): error|warning|info|debug */
    /* query/retrieve (server/query.c, server/dimse.c, server/modality.c) */
    bool dicom_always_allow_echo;     /* DicomAlwaysAllowEcho, true */
    bool dicom_always_allow_find;     /* DicomAlwaysAllowFind, false */
    bool dicom_always_allow_move;     /* DicomAlwaysAllowMove, false */
    bool dicom_always_allow_get;      /* DicomAlwaysAllowGet, false */
    int dicom_scu_timeout;            /* DicomScuTimeout, 10 (s) */
    bool dicom_echo_checks_find;      /* DicomEchoChecksFind, false: echo's CheckFind default */
    uint64_t limit_find_results;      /* LimitFindResults, 0 = no limit */
    uint64_t limit_find_instances;    /* LimitFindInstances, 0 = no limit */
    bool case_sensitive_pn;           /* CaseSensitivePN, false */
    int query_retrieve_size;          /* QueryRetrieveSize, 100 (queries kept by /queries) */
    bool dicom_modalities_in_database; /* DicomModalitiesInDatabase, false */
    char *ingest_transcoding;         /* IngestTranscoding, "" (off): transfer syntax UID */
    CfgPostgres pg;                   /* PostgreSQL, {} */
    char *ohif_dir;                   /* OhifDirectory, "": the OHIF Viewer's dist/ served at /ohif/
                                         ("": beside the binary, else the source tree's; rest/h_ohif.c) */
    /* attachments (server/attachments.c) */
    CfgUserContentType *user_content_types; /* UserContentType, {} */
    size_t nuser_content_types;
    bool storage_compression;         /* StorageCompression, false: new user attachments are
                                         stored zlib-compressed when true */
    CfgDicomWeb dicomweb;             /* DicomWeb, {} */
    /* HTTP client (server/httpc.c, server/peers.c) */
    char *orthanc_peers;              /* OrthancPeers, {}: the JSON text, parsed by peers.c */
    bool orthanc_peers_in_database;   /* OrthancPeersInDatabase, false */
    int http_timeout_client;          /* HttpTimeout, 60 (s): outgoing requests */
    bool https_verify_peers;          /* HttpsVerifyPeers, true */
    char *https_ca_certificates;      /* HttpsCACertificates, "" */
    char *http_proxy;                 /* HttpProxy, "" */
} Cfg;

typedef struct CfgError {
    int code;  /* 0 ok, 1 cannot read, 2 malformed JSON, 3 bad option value */
    char message[256];
} CfgError;

/* Loads path (NULL: embedded defaults) then the ORTHANC__* environment. On failure the
 * message names the file, the line when known, and the option. *out is filled on success
 * and must be released with cfg_cleanup(). */
bool cfg_load(CfgError *err, const char *path, Cfg *out);
/* A modality's "ParallelAssociations" value (a cJSON item, or NULL: absent -> 1): false when it
 * is not an integer from 1 to CFG_MAX_PARALLEL_ASSOCIATIONS. Shared by the configuration and
 * PUT /modalities/{name}. */
struct cJSON;
bool cfg_parallel_associations(const struct cJSON *x, int *out);
/* One modality as Orthanc 1.10 reads it (RemoteModalityParameters::Unserialize): [AET, host,
 * port] or [AET, host, port, manufacturer], or the object form (AET, Host, Port required;
 * Manufacturer, the Allow* flags, UseDicomTls, LocalAet, Timeout, our ParallelAssociations;
 * other keys ignored). The one parser of DicomModalities, PUT /modalities/{name},
 * POST /tools/dicom-echo and the saved modalities. On success fills *out (name left NULL,
 * strings malloc'd: cfg_modality_free). On failure *out is untouched and err (a struct
 * SrvError, server.h) holds Orthanc's error: SRV_BAD_FILE_FORMAT or SRV_PARAMETER_OUT_OF_RANGE,
 * and as message Orthanc's details, empty where Orthanc gives none. */
struct SrvError;
bool cfg_modality_parse(struct SrvError *err, const struct cJSON *v, CfgModality *out);
/* Frees the strings of m (not m itself); m is zeroed. */
void cfg_modality_free(CfgModality *m);
void cfg_cleanup(Cfg *cfg);

#endif
