/* test_config.c -- the configuration loader: defaults, comments, type errors with option and
 * line, malformed JSON with its line, structured options, environment overrides and their
 * names, and agreement between the option table and Orthanc.json.example. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../check.h"
#include "server/server.h"
#include "storage/storage.h"

void cfg_env_name(const char *option, char *out, size_t size);
long cfg_blank_comments(char *s);
const char *cfg_option_name(size_t i);
bool cfg_option_ignored(const char *name);

static char tmpdir[] = "/tmp/mp-cfg-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* stderr (where srv_log writes) to a file, and back: the log lines as one string. */
static int saved_stderr = -1;
static void capture_begin(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}
static const char *capture_end(void)
{
    static char buf[8192];
    char path[300];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Loads text from a file: true if accepted; else the message must contain each of the
 * given fragments (NULL-terminated). */
static bool load_text(const char *text, CfgError *e)
{
    Cfg c;
    memset(e, 0, sizeof *e);
    bool ok = cfg_load(e, write_tmp("t.json", text), &c);
    if (ok) cfg_cleanup(&c);
    return ok;
}
#define CHECK_REJECTED(text, frag1, frag2) \
    do { CfgError e_; CHECK(!load_text((text), &e_)); \
         if (!strstr(e_.message, (frag1)) || !strstr(e_.message, (frag2))) \
             fprintf(stderr, "     message: %s\n", e_.message); \
         CHECK(strstr(e_.message, (frag1)) && strstr(e_.message, (frag2))); } while (0)

static void test_config_defaults(void)
{
    Cfg c;
    CfgError e = { 0 };
    CHECK(cfg_load(&e, NULL, &c));
    CHECK(c.http_port == 8042 && c.dicom_port == 4242);
    CHECK_STR(c.dicom_aet, "ORTHANC");
    CHECK_STR(c.storage_dir, "OrthancStorage");
    CHECK_STR(c.index_dir, "OrthancStorage");
    CHECK(c.sync_storage && !c.overwrite_instances && c.stable_age == 60);
    CHECK(c.concurrent_jobs == 2 && c.jobs_history_size == 10 && c.save_jobs);
    CHECK(c.memory_trimming_interval == 30 && c.dicom_cache_size == 128 && c.malloc_arena_max == 5);
    CHECK(!c.remote_access_allowed && !c.authentication_enabled);
    cfg_cleanup(&c);
}

static void test_config_comments_and_structures(void)
{
    const char *p = write_tmp("a.json",
        "{\n"
        "  // a line comment with \"quotes\"\n"
        "  \"HttpPort\": 9000, /* block */ \"DicomAet\": \"MY//AET\",\n"
        "  /* multi\n     line */\n"
        "  \"StorageDirectory\": \"/tmp/x\",\n"
        "  \"RemoteAccessAllowed\": true,\n"
        "  \"RegisteredUsers\": {\"alice\": \"pw\", \"bob\": \"pw2\"},\n"
        "  \"DicomModalities\": {\"ct\": [\"CT1\", \"127.0.0.1\", 104], \"mr\": {\"AET\": \"MR1\", \"Host\": \"h\", \"Port\": 11112}},\n"
        "  \"UserMetadata\": {\"Sample\": 1024},\n"
        "  \"Dictionary\": {\"0009,1001\": [\"LO\", \"MyTag\", 1, 1, \"Creator\"]},\n"
        "  \"Plugins\": [], \"SomethingUnknown\": 1\n"
        "}\n");
    Cfg c;
    CfgError e = { 0 };
    CHECK(cfg_load(&e, p, &c));
    if (e.code) fprintf(stderr, "%s\n", e.message);
    CHECK(c.http_port == 9000);
    CHECK_STR(c.dicom_aet, "MY//AET");
    CHECK_STR(c.index_dir, "/tmp/x");
    CHECK(c.authentication_enabled); /* follows RemoteAccessAllowed when not given */
    CHECK(c.nusers == 2 && !strcmp(c.users[1].name, "bob") && !strcmp(c.users[1].password, "pw2"));
    CHECK(c.nmodalities == 2 && c.modalities[1].port == 11112 && !strcmp(c.modalities[0].aet, "CT1"));
    CHECK(c.nuser_metadata == 1 && c.user_metadata[0].number == 1024);
    CHECK(c.ndictionary == 1 && c.dictionary[0].tag == 0x00091001 && !strcmp(c.dictionary[0].private_creator, "Creator"));
    cfg_cleanup(&c);
}

static void test_config_errors_name_option_and_line(void)
{
    Cfg c;
    CfgError e = { 0 };
    const char *p = write_tmp("b.json", "{\n  \"Name\": \"x\",\n  \"HttpPort\": \"abc\"\n}\n");
    CHECK(!cfg_load(&e, p, &c));
    CHECK(strstr(e.message, "HttpPort") && strstr(e.message, ":3:"));
    memset(&e, 0, sizeof e);
    p = write_tmp("c.json", "{\n\n  \"DicomPort\": 70000\n}\n");
    CHECK(!cfg_load(&e, p, &c));
    CHECK(strstr(e.message, "DicomPort") && strstr(e.message, ":3:"));
    memset(&e, 0, sizeof e);
    p = write_tmp("d.json", "{\n  \"Name\": \"x\",\n  // fine\n  \"HttpPort\": 80,,\n}\n");
    CHECK(!cfg_load(&e, p, &c));
    CHECK(e.code == 2 && strstr(e.message, ":4:"));
    memset(&e, 0, sizeof e);
    p = write_tmp("e.json", "{ \"SyncStorageArea\": \"yes\" }");
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "SyncStorageArea"));
    memset(&e, 0, sizeof e);
    CHECK(!cfg_load(&e, "/nonexistent/file.json", &c) && e.code == 1);
    memset(&e, 0, sizeof e);
    p = write_tmp("f.json", "{ \"MaximumStorageMode\": \"Sometimes\" }");
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "MaximumStorageMode"));
}

static void test_config_strictness(void)
{
    CfgError e;
    /* nothing but whitespace and comments after the top-level object */
    CHECK_REJECTED("{\"HttpPort\": 8043}\n\n}", ":3:", "malformed");
    CHECK_REJECTED("{\"HttpPort\": 8043}\n{\"HttpPort\": 1}", ":2:", "malformed");
    CHECK(load_text("{\"HttpPort\": 8043}\n// done\n/* really */\n", &e));
    CHECK_REJECTED("{\"HttpPort\": 8043}\n\n/* oops", ":3:", "comment");
    CHECK_REJECTED("{\n\"HttpPort\": /* oops\n 8043}", ":2:", "comment");
    CHECK_REJECTED("[1, 2]", ":1:", "object");
    CHECK_REJECTED("", ":1:", "malformed");
    /* the line is the top-level key's, not an earlier nested or commented-out one */
    CHECK_REJECTED("{\"DicomWeb\": {\"HttpPort\": 1},\n// \"HttpPort\": 2,\n \"HttpPort\": \"x\"}",
                   ":3:", "HttpPort");
    /* integers: integral, in range (no undefined cast of a huge double) */
    CHECK_REJECTED("{\"HttpPort\": 1e300}", "HttpPort", ":1:");
    CHECK_REJECTED("{\"HttpPort\": 8042.5}", "HttpPort", "1 to 65535");
    CHECK_REJECTED("{\"MaximumStorageSize\": -1}", "MaximumStorageSize", ":1:");
    /* strings with bounds or a closed set of values */
    CHECK_REJECTED("{\n\"DicomAet\": \"THIS_AET_IS_TOO_LONG\"}", "DicomAet", ":2:");
    CHECK_REJECTED("{\"DicomAet\": \"\"}", "DicomAet", "characters");
    CHECK_REJECTED("{\"StorageDirectory\": \"\"}", "StorageDirectory", "characters");
    CHECK_REJECTED("{\n\n\"LogLevel\": \"loud\"}", "LogLevel", ":3:");
    CHECK_REJECTED("{\"DefaultEncoding\": \"Klingon\"}", "DefaultEncoding", "Latin1");
    CHECK_REJECTED("{\"MaximumStorageMode\": \"Sometimes\"}", "MaximumStorageMode", "Recycle");
    Cfg c;
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, write_tmp("t.json", "{\"LogLevel\": \"DEBUG\", \"DefaultEncoding\": "
                                       "\"utf8\", \"MaximumStorageMode\": \"reject\"}"), &c));
    CHECK_STR(c.log_level, "debug"); /* stored in canonical spelling */
    CHECK_STR(c.default_encoding, "Utf8");
    CHECK_STR(c.maximum_storage_mode, "Reject");
    cfg_cleanup(&c);
    /* structured options */
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\", \"104abc\"]}}", "DicomModalities", "\"a\"");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\", 104.5]}}", "DicomModalities", "port");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\"]}}", "DicomModalities", "\"a\"");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Port\": 104}}}", "DicomModalities", "Host");
    /* Orthanc 1.10's rules (cfg_modality_parse, also PUT /modalities): port 1..65534, a known
     * Manufacturer, Timeout an unsigned integer, booleans, at most 4 array items */
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\", 65535]}}", "DicomModalities", "[1..65534]");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\", 104, \"Acme\"]}}", "DicomModalities", "Acme");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": [\"A\", \"h\", 104, \"GE\", 1]}}", "DicomModalities", "\"a\"");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\"}}}", "DicomModalities", "\"a\"");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 1, "
                   "\"Timeout\": -1}}}", "DicomModalities", "Unsigned integer value expected in field: Timeout");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 1, "
                   "\"AllowTranscoding\": 1}}}", "DicomModalities", "AllowTranscoding");
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, write_tmp("t.json", "{\"DicomModalities\": {\"a\": [\"\", \"h\", \"+12\", \"AgfaImpax\"], "
                                       "\"b\": {\"AET\": \"B\", \"Host\": \"h\", \"Port\": 1, \"AllowNAction\": true, "
                                       "\"AllowStorageCommitment\": false, \"UseDicomTls\": true, \"Timeout\": 9}}}"), &c));
    CHECK(c.nmodalities == 2 && c.modalities[0].port == 12 && !strcmp(c.modalities[0].aet, "") &&
          !strcmp(c.modalities[0].manufacturer, "GenericNoWildcardInDates") && c.modalities[0].allow_n_action &&
          !c.modalities[0].use_dicom_tls);
    CHECK(c.nmodalities == 2 && !c.modalities[1].allow_n_action && !c.modalities[1].allow_event_report &&
          c.modalities[1].use_dicom_tls && c.modalities[1].timeout == 9 && c.modalities[1].allow_transcoding);
    cfg_cleanup(&c);
    CHECK(load_text("{\"DicomModalities\": {\"a\": [\"A\", \"h\", \"104\", \"GE\"]}}", &e));
    /* ParallelAssociations (ours): an integer 1..8, default 1 */
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 104, "
                   "\"ParallelAssociations\": 9}}}", "ParallelAssociations", "1 to 8");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 104, "
                   "\"ParallelAssociations\": 0}}}", "DicomModalities", "\"a\"");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 104, "
                   "\"ParallelAssociations\": 2.5}}}", "DicomModalities", "ParallelAssociations");
    CHECK_REJECTED("{\"DicomModalities\": {\"a\": {\"AET\": \"A\", \"Host\": \"h\", \"Port\": 104, "
                   "\"ParallelAssociations\": \"3\"}}}", "DicomModalities", "ParallelAssociations");
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, write_tmp("t.json", "{\"DicomModalities\": {\"a\": [\"A\", \"h\", 104], \"b\": "
                                       "{\"AET\": \"B\", \"Host\": \"h\", \"Port\": 104}, \"c\": {\"AET\": "
                                       "\"C\", \"Host\": \"h\", \"Port\": 104, \"ParallelAssociations\": 8}}}"), &c));
    CHECK(c.nmodalities == 3 && c.modalities[0].parallel == 1 && c.modalities[1].parallel == 1 &&
          c.modalities[2].parallel == 8);
    cfg_cleanup(&c);
    CHECK_REJECTED("{\"UserMetadata\": {\"X\": 2000.7}}", "UserMetadata", "1024");
    CHECK_REJECTED("{\"UserMetadata\": {\"X\": 99}}", "UserMetadata", "\"X\"");
    CHECK_REJECTED("{\"RegisteredUsers\": {\"alice\": 1}}", "RegisteredUsers", "alice");
    CHECK_REJECTED("{\"Dictionary\": {\"0009,1001\": [\"LO\", \"N\", 1, -3]}}", "Dictionary", "multiplicit");
    CHECK_REJECTED("{\"Dictionary\": {\"0009,1001\": [\"lo\", \"N\"]}}", "Dictionary", "0009,1001");
    CHECK_REJECTED("{\"Dictionary\": {\"9,1001\": [\"LO\", \"N\"]}}", "Dictionary", "9,1001");
    CHECK_REJECTED("{\"Dictionary\": {\"0009,1001\": [\"LO\", \"N\", 1, 1, 7]}}", "Dictionary", "creator");
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, write_tmp("t.json", "{\"Dictionary\": {\"0009,1001\": [\"LO\", \"N\"], "
                                       "\"0011,0010\": [\"US\", \"M\", 1, 0]}}"), &c));
    CHECK(c.ndictionary == 2 && c.dictionary[0].min_multiplicity == 1 &&
          c.dictionary[0].max_multiplicity == 1 && !c.dictionary[0].private_creator);
    CHECK(c.dictionary[1].tag == 0x00110010 && c.dictionary[1].max_multiplicity == -1);
    cfg_cleanup(&c);
}

static void test_config_unknown_logged(void)
{
    Cfg c;
    CfgError e = { 0 };
    const char *p = write_tmp("u.json", "{\n  \"Plugins\": [\"/x.so\"],\n  \"OrthancExplorerEnabled\": true,\n"
                                        "  \"HttpPrt\": 1\n}\n");
    setenv("ORTHANC__HTTP_PROT", "1", 1);            /* a typo in a variable's name */
    setenv("ORTHANC__DICOM_WEB__ENABLE", "true", 1); /* an Orthanc plugin's setting */
    capture_begin();
    bool ok = cfg_load(&e, p, &c);
    const char *log = capture_end();
    unsetenv("ORTHANC__HTTP_PROT");
    unsetenv("ORTHANC__DICOM_WEB__ENABLE");
    CHECK(ok);
    if (ok) cfg_cleanup(&c);
    CHECK(strstr(log, "\"HttpPrt\"") && strstr(log, ":4:")); /* named, with its line */
    CHECK(strstr(log, " W ") != NULL);                           /* at warning */
    CHECK(strstr(log, "ORTHANC__HTTP_PROT") != NULL);
    CHECK(!strstr(log, "Plugins") && !strstr(log, "OrthancExplorerEnabled"));
    CHECK(!strstr(log, "DICOM_WEB"));
    if (!strstr(log, "HttpPrt")) fprintf(stderr, "     log: %s\n", log);
}

static void test_config_env_names(void)
{
    char n[96];
    cfg_env_name("HttpPort", n, sizeof n);
    CHECK_STR(n, "ORTHANC__HTTP_PORT");
    cfg_env_name("DicomAet", n, sizeof n);
    CHECK_STR(n, "ORTHANC__DICOM_AET");
    cfg_env_name("HttpThreadsCount", n, sizeof n);
    CHECK_STR(n, "ORTHANC__HTTP_THREADS_COUNT");
    cfg_env_name("DicomTcpNoDelay", n, sizeof n);
    CHECK_STR(n, "ORTHANC__DICOM_TCP_NO_DELAY");
    cfg_env_name("SyncStorageArea", n, sizeof n);
    CHECK_STR(n, "ORTHANC__SYNC_STORAGE_AREA");
    cfg_env_name("DicomScpTimeout", n, sizeof n);
    CHECK_STR(n, "ORTHANC__DICOM_SCP_TIMEOUT");
    cfg_env_name("HTTPPort", n, sizeof n); /* acronyms */
    CHECK_STR(n, "ORTHANC__HTTP_PORT");
    cfg_env_name("Windows1251Name", n, sizeof n);
    CHECK_STR(n, "ORTHANC__WINDOWS1251_NAME");

    /* Every table option, spelled out: a renamed row would silently change a variable that
     * containers rely on (docker/README.md). */
    static const char *const expected[][2] = {
        { "Name", "NAME" }, { "StorageDirectory", "STORAGE_DIRECTORY" },
        { "IndexDirectory", "INDEX_DIRECTORY" }, { "HttpPort", "HTTP_PORT" },
        { "DicomPort", "DICOM_PORT" }, { "DicomAet", "DICOM_AET" },
        { "DicomCheckCalledAet", "DICOM_CHECK_CALLED_AET" },
        { "DicomModalities", "DICOM_MODALITIES" }, { "DicomScpTimeout", "DICOM_SCP_TIMEOUT" },
        { "MaximumAssociations", "MAXIMUM_ASSOCIATIONS" },
        { "DicomAlwaysAllowStore", "DICOM_ALWAYS_ALLOW_STORE" },
        { "DicomCheckModalityHost", "DICOM_CHECK_MODALITY_HOST" },
        { "DicomTcpNoDelay", "DICOM_TCP_NO_DELAY" },
        { "MaximumPduLength", "MAXIMUM_PDU_LENGTH" },
        { "RemoteAccessAllowed", "REMOTE_ACCESS_ALLOWED" },
        { "AuthenticationEnabled", "AUTHENTICATION_ENABLED" },
        { "RegisteredUsers", "REGISTERED_USERS" }, { "SslEnabled", "SSL_ENABLED" },
        { "SslCertificate", "SSL_CERTIFICATE" }, { "ConcurrentJobs", "CONCURRENT_JOBS" },
        { "JobsHistorySize", "JOBS_HISTORY_SIZE" }, { "SaveJobs", "SAVE_JOBS" },
        { "MaximumStorageSize", "MAXIMUM_STORAGE_SIZE" },
        { "MaximumPatientCount", "MAXIMUM_PATIENT_COUNT" },
        { "MaximumStorageMode", "MAXIMUM_STORAGE_MODE" },
        { "MallocArenaMax", "MALLOC_ARENA_MAX" }, { "MetricsEnabled", "METRICS_ENABLED" },
        { "HttpThreadsCount", "HTTP_THREADS_COUNT" },
        { "HttpRequestTimeout", "HTTP_REQUEST_TIMEOUT" },
        { "HttpConnectionLimit", "HTTP_CONNECTION_LIMIT" },
        { "HttpConnectionLimitPerIp", "HTTP_CONNECTION_LIMIT_PER_IP" },
        { "MaximumUploadSize", "MAXIMUM_UPLOAD_SIZE" },
        { "SyncStorageArea", "SYNC_STORAGE_AREA" },
        { "OverwriteInstances", "OVERWRITE_INSTANCES" }, { "StableAge", "STABLE_AGE" },
        { "DefaultEncoding", "DEFAULT_ENCODING" }, { "Dictionary", "DICTIONARY" },
        { "DefaultPrivateCreator", "DEFAULT_PRIVATE_CREATOR" },
        { "UserMetadata", "USER_METADATA" },
        { "MemoryTrimmingInterval", "MEMORY_TRIMMING_INTERVAL" },
        { "DicomCacheSize", "DICOM_CACHE_SIZE" }, { "LogLevel", "LOG_LEVEL" },
        { "DicomAlwaysAllowEcho", "DICOM_ALWAYS_ALLOW_ECHO" },
        { "DicomAlwaysAllowFind", "DICOM_ALWAYS_ALLOW_FIND" },
        { "DicomAlwaysAllowMove", "DICOM_ALWAYS_ALLOW_MOVE" },
        { "DicomAlwaysAllowGet", "DICOM_ALWAYS_ALLOW_GET" },
        { "DicomScuTimeout", "DICOM_SCU_TIMEOUT" }, { "DicomEchoChecksFind", "DICOM_ECHO_CHECKS_FIND" }, { "LimitFindResults", "LIMIT_FIND_RESULTS" },
        { "LimitFindInstances", "LIMIT_FIND_INSTANCES" }, { "CaseSensitivePN", "CASE_SENSITIVE_PN" },
        { "QueryRetrieveSize", "QUERY_RETRIEVE_SIZE" },
        { "DicomModalitiesInDatabase", "DICOM_MODALITIES_IN_DATABASE" },
        { "IngestTranscoding", "INGEST_TRANSCODING" },
        { "UserContentType", "USER_CONTENT_TYPE" },
        { "StorageCompression", "STORAGE_COMPRESSION" },
        { "PostgreSQL", "POSTGRESQL" },
        { "OhifDirectory", "OHIF_DIRECTORY" },
        { "DicomWeb", "DICOM_WEB" },
        { "OrthancPeers", "ORTHANC_PEERS" }, { "OrthancPeersInDatabase", "ORTHANC_PEERS_IN_DATABASE" },
        { "HttpTimeout", "HTTP_TIMEOUT" }, { "HttpsVerifyPeers", "HTTPS_VERIFY_PEERS" },
        { "HttpsCACertificates", "HTTPS_CA_CERTIFICATES" }, { "HttpProxy", "HTTP_PROXY" },
    };
    size_t nexp = sizeof expected / sizeof expected[0], ntable = 0;
    for (size_t i = 0; cfg_option_name(i); i++) {
        ntable++;
        const char *want = NULL;
        for (size_t j = 0; j < nexp; j++)
            if (!strcmp(expected[j][0], cfg_option_name(i))) want = expected[j][1];
        if (!want) fprintf(stderr, "     option %s missing from this test\n", cfg_option_name(i));
        CHECK(want != NULL);
        if (!want) continue;
        char full[96];
        snprintf(full, sizeof full, "ORTHANC__%s", want);
        cfg_env_name(cfg_option_name(i), n, sizeof n);
        CHECK_STR(n, full);
    }
    CHECK(ntable == nexp);
}

static void test_config_env_overrides(void)
{
    const char *p = write_tmp("g.json", "{ \"HttpPort\": 9000, \"DicomAet\": \"FILE\" }");
    setenv("ORTHANC__HTTP_PORT", "9100", 1);
    setenv("ORTHANC__DICOM_AET", "ENVAET", 1);
    setenv("ORTHANC__SYNC_STORAGE_AREA", "no", 1);
    setenv("ORTHANC__REGISTERED_USERS", "{\"carol\": \"pw\"}", 1);
    setenv("ORTHANC__MAXIMUM_STORAGE_SIZE", "500", 1);
    Cfg c;
    CfgError e = { 0 };
    CHECK(cfg_load(&e, p, &c));
    CHECK(c.http_port == 9100);
    CHECK_STR(c.dicom_aet, "ENVAET");
    CHECK(!c.sync_storage && c.maximum_storage_size == 500);
    CHECK(c.nusers == 1 && !strcmp(c.users[0].name, "carol"));
    cfg_cleanup(&c);
    setenv("ORTHANC__HTTP_PORT", "abc", 1);
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "ORTHANC__HTTP_PORT"));
    setenv("ORTHANC__HTTP_PORT", "99999", 1);
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "ORTHANC__HTTP_PORT"));
    unsetenv("ORTHANC__HTTP_PORT");
    setenv("ORTHANC__REGISTERED_USERS", "{not json", 1);
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "ORTHANC__REGISTERED_USERS"));
    setenv("ORTHANC__REGISTERED_USERS", "[1,2]", 1);
    CHECK(!cfg_load(&e, p, &c) && strstr(e.message, "ORTHANC__REGISTERED_USERS"));
    unsetenv("ORTHANC__REGISTERED_USERS");
    unsetenv("ORTHANC__DICOM_AET");
    unsetenv("ORTHANC__SYNC_STORAGE_AREA");
    unsetenv("ORTHANC__MAXIMUM_STORAGE_SIZE");

    /* strict numbers */
    static const char *const bad_ints[] = { " 8042", "+8042", "8042 ", "0x1f90", "", "80.5" };
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        setenv("ORTHANC__HTTP_PORT", bad_ints[i], 1);
        memset(&e, 0, sizeof e);
        CHECK(!cfg_load(&e, NULL, &c) && strstr(e.message, "ORTHANC__HTTP_PORT"));
    }
    unsetenv("ORTHANC__HTTP_PORT");
    setenv("ORTHANC__MAXIMUM_STORAGE_SIZE", "-5", 1);
    CHECK(!cfg_load(&e, NULL, &c) && strstr(e.message, "ORTHANC__MAXIMUM_STORAGE_SIZE"));
    setenv("ORTHANC__MAXIMUM_STORAGE_SIZE", "99999999999999999999999", 1);
    CHECK(!cfg_load(&e, NULL, &c) && strstr(e.message, "ORTHANC__MAXIMUM_STORAGE_SIZE"));
    unsetenv("ORTHANC__MAXIMUM_STORAGE_SIZE");

    /* booleans: true/false/1/0/yes/no in any case */
    static const struct { const char *s; bool v; } bools[] = {
        { "true", true }, { "TRUE", true }, { "1", true }, { "Yes", true },
        { "false", false }, { "False", false }, { "0", false }, { "NO", false },
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        setenv("ORTHANC__OVERWRITE_INSTANCES", bools[i].s, 1);
        memset(&e, 0, sizeof e);
        CHECK(cfg_load(&e, NULL, &c));
        CHECK(c.overwrite_instances == bools[i].v);
        cfg_cleanup(&c);
    }
    setenv("ORTHANC__OVERWRITE_INSTANCES", "maybe", 1);
    CHECK(!cfg_load(&e, NULL, &c) && strstr(e.message, "ORTHANC__OVERWRITE_INSTANCES"));
    unsetenv("ORTHANC__OVERWRITE_INSTANCES");

    /* nested JSON (both modality forms), strings as they are, IndexDirectory follows an
     * environment StorageDirectory, AuthenticationEnabled from the environment is explicit */
    setenv("ORTHANC__DICOM_MODALITIES",
           "{\"ct\": [\"CT1\", \"10.0.0.5\", 104], \"mr\": {\"AET\": \"MR1\", \"Host\": \"mr\", \"Port\": \"11112\"}}", 1);
    setenv("ORTHANC__USER_METADATA", "{\"Note\": 1025}", 1);
    setenv("ORTHANC__NAME", "  spaced // not a comment ", 1);
    setenv("ORTHANC__STORAGE_DIRECTORY", "/srv/envdb", 1);
    setenv("ORTHANC__REMOTE_ACCESS_ALLOWED", "true", 1);
    setenv("ORTHANC__AUTHENTICATION_ENABLED", "false", 1);
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, NULL, &c));
    CHECK(c.nmodalities == 2);
    if (c.nmodalities == 2) {
        CHECK_STR(c.modalities[0].name, "ct");
        CHECK_STR(c.modalities[0].host, "10.0.0.5");
        CHECK(c.modalities[0].port == 104);
        CHECK_STR(c.modalities[1].aet, "MR1");
        CHECK(c.modalities[1].port == 11112);
    }
    CHECK(c.nuser_metadata == 1 && c.user_metadata[0].number == 1025);
    CHECK_STR(c.name, "  spaced // not a comment ");
    CHECK_STR(c.storage_dir, "/srv/envdb");
    CHECK_STR(c.index_dir, "/srv/envdb");
    CHECK(c.remote_access_allowed && !c.authentication_enabled && c.authentication_explicit);
    cfg_cleanup(&c);
    setenv("ORTHANC__DICOM_MODALITIES", "{\"ct\": [\"CT1\", \"10.0.0.5\", 0]}", 1);
    CHECK(!cfg_load(&e, NULL, &c) && strstr(e.message, "ORTHANC__DICOM_MODALITIES"));
    unsetenv("ORTHANC__DICOM_MODALITIES");
    unsetenv("ORTHANC__USER_METADATA");
    unsetenv("ORTHANC__NAME");
    unsetenv("ORTHANC__STORAGE_DIRECTORY");
    unsetenv("ORTHANC__AUTHENTICATION_ENABLED");
    memset(&e, 0, sizeof e);
    CHECK(cfg_load(&e, NULL, &c)); /* absent: follows RemoteAccessAllowed */
    CHECK(c.authentication_enabled && !c.authentication_explicit);
    cfg_cleanup(&c);
    unsetenv("ORTHANC__REMOTE_ACCESS_ALLOWED");
}

static void test_config_example_matches_table(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/Orthanc.json.example", SRCDIR);
    Cfg c;
    CfgError e = { 0 };
    CHECK(cfg_load(&e, path, &c));
    if (e.code) fprintf(stderr, "%s\n", e.message);
    cfg_cleanup(&c);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (size_t i = 0; cfg_option_name(i); i++) { /* every option is documented */
        char key[96];
        snprintf(key, sizeof key, "\"%s\":", cfg_option_name(i));
        if (!strstr(text, key)) fprintf(stderr, "undocumented option %s\n", cfg_option_name(i));
        CHECK(strstr(text, key) != NULL);
    }
    cfg_blank_comments(text); /* every top-level key is an option */
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL);
    for (cJSON *it = root ? root->child : NULL; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; cfg_option_name(i); i++) known |= !strcmp(cfg_option_name(i), it->string);
        if (!known) fprintf(stderr, "example key %s is not an option\n", it->string);
        CHECK(known);
    }
    cJSON_Delete(root);
    CHECK(cfg_option_ignored("Plugins") && !cfg_option_ignored("HttpPort"));
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    for (char **e = environ; e && *e; e++) /* the caller's ORTHANC__* must not leak in */
        if (!strncmp(*e, "ORTHANC__", 9)) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name);
            e = environ - 1;
        }
    RUN(test_config_defaults);
    RUN(test_config_comments_and_structures);
    RUN(test_config_errors_name_option_and_line);
    RUN(test_config_strictness);
    RUN(test_config_unknown_logged);
    RUN(test_config_env_names);
    RUN(test_config_env_overrides);
    RUN(test_config_example_matches_table);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) return 1;
    return CHECK_DONE();
}
