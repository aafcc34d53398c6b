/* test_config.c -- the configuration loader: defaults, comments, type errors with option and
 * line, malformed JSON with its line, structured options, environment overrides and their
 * names, and agreement between the option table and Orthanc.json.example. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../check.h"
#include "server/server.h"

void cfg_env_name(const char *option, char *out, size_t size);
void cfg_blank_comments(char *s);
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
    RUN(test_config_defaults);
    RUN(test_config_comments_and_structures);
    RUN(test_config_errors_name_option_and_line);
    RUN(test_config_env_names);
    RUN(test_config_env_overrides);
    RUN(test_config_example_matches_table);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) return 1;
    return CHECK_DONE();
}
