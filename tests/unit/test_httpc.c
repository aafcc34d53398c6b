/* test_httpc.c -- the HTTP client's remote descriptions (Orthanc's peer forms). The DICOMweb
 * client's streaming multipart split is server/multipart.c's whole-part mode (test_multipart).
 * Network behaviour is tested end to end by tests/integration/93_peers.sh,
 * 93_dicomweb_client.sh and 93_dicomweb_client_self.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "server/httpc.h"

static void test_httpc_remote_forms(void)
{
    SrvError e = { 0 };
    HttpcRemote r;
    cJSON *j = cJSON_Parse("[\"http://h:1\", \"u\", \"p\"]");
    CHECK(httpc_remote_parse(&e, j, &r));
    CHECK_STR(r.url, "http://h:1/");
    CHECK_STR(r.username, "u");
    cJSON *pub = httpc_remote_public_json(&r);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(pub, "Password")));
    cJSON_Delete(pub);
    HttpcRemote c;
    CHECK(httpc_remote_copy(&e, &r, &c));
    CHECK_STR(c.password, "p");
    httpc_remote_cleanup(&c);
    httpc_remote_cleanup(&r);
    cJSON_Delete(j);

    j = cJSON_Parse("{\"Url\": \"https://h/dw\", \"HttpHeaders\": {\"A\": \"1\"}, \"HasDelete\": true, \"Timeout\": 3}");
    CHECK(httpc_remote_parse(&e, j, &r));
    CHECK_STR(r.url, "https://h/dw/");
    CHECK(r.timeout == 3 && r.username == NULL);
    pub = httpc_remote_public_json(&r);
    CHECK_STR(cJSON_GetObjectItem(pub, "HasDelete")->valuestring, "1"); /* as Orthanc shows it */
    CHECK_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(pub, "HttpHeaders"), 0)->valuestring, "A");
    CHECK(cJSON_GetObjectItem(pub, "Password") == NULL);
    cJSON_Delete(pub);
    httpc_remote_cleanup(&r);
    cJSON_Delete(j);

    const char *bad[] = { "{\"Username\": \"x\"}", "[\"ftp://h/\"]", "[\"http://h/\", \"u\"]", "42",
                          "{\"Url\": \"http://h/\", \"HttpHeaders\": {\"A\\r\\nB\": \"x\"}}",
                          "{\"Url\": \"http://h/\", \"CertificateFile\": \"/nonexistent/c.pem\"}",
                          "{\"Url\": \"http://h/\", \"Timeout\": -1}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = cJSON_Parse(bad[i]);
        memset(&e, 0, sizeof e);
        CHECK(!httpc_remote_parse(&e, j, &r));
        CHECK(e.code == SRV_BAD_FILE_FORMAT || e.code == SRV_INEXISTENT_FILE);
        httpc_remote_cleanup(&r);
        cJSON_Delete(j);
    }
}

int main(void)
{
    RUN(test_httpc_remote_forms);
    return CHECK_DONE();
}
