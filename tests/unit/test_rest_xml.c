/* test_rest_xml.c -- rest/xml.c: JSON answers as Orthanc 1.10.1's XML (Accept:
 * application/xml), compared with the bytes Debian's Orthanc answered for the same trees. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "rest/rest_int.h"

static char *xml_of(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    CHECK(j != NULL);
    Buf b;
    buf_init(&b, 1 << 20);
    CHECK(rest_json_to_xml(&b, j) == BUF_OK);
    cJSON_Delete(j);
    return buf_take(&b, NULL);
}

static void test_xml_layout(void)
{
    /* Orthanc 1.10.1, GET /system with Accept: application/xml (members sorted, null, bools) */
    char *x = xml_of("{\"Version\":\"1.10.1\",\"Name\":\"t\",\"DatabaseBackendPlugin\":null,"
                     "\"CheckRevisions\":false,\"PluginsEnabled\":true,\"ApiVersion\":16}");
    CHECK_STR(x, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<root>\n"
                 "  <ApiVersion>16</ApiVersion>\n  <CheckRevisions>false</CheckRevisions>\n"
                 "  <DatabaseBackendPlugin>null</DatabaseBackendPlugin>\n  <Name>t</Name>\n"
                 "  <PluginsEnabled>true</PluginsEnabled>\n  <Version>1.10.1</Version>\n</root>\n");
    free(x);
    /* arrays as <item>, nesting, empty containers, empty strings, escaping */
    x = xml_of("{\"L\":[\"a\",{\"k\":[]}],\"E\":\"\",\"O\":{},\"S\":\"A<&>B\\u0001\\t\"}");
    CHECK_STR(x, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<root>\n  <E></E>\n"
                 "  <L>\n    <item>a</item>\n    <item>\n      <k />\n    </item>\n  </L>\n"
                 "  <O />\n  <S>A&lt;&amp;&gt;B&#01;\t</S>\n</root>\n");
    free(x);
    /* a top-level array; numbers: integers as such, others as floats with 9 digits */
    x = xml_of("[1,-2,0.5,1e20]");
    CHECK_STR(x, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<root>\n  <item>1</item>\n"
                 "  <item>-2</item>\n  <item>0.5</item>\n  <item>1.00000002e+20</item>\n</root>\n");
    free(x);
}

static void test_xml_ceiling(void)
{
    cJSON *j = cJSON_Parse("{\"a\":\"0123456789\"}");
    Buf b;
    buf_init(&b, 16); /* the caller's ceiling bounds the answer */
    CHECK(rest_json_to_xml(&b, j) == BUF_TOO_LARGE);
    buf_free(&b);
    cJSON_Delete(j);
}

int main(void)
{
    test_xml_layout();
    test_xml_ceiling();
    return check_failures;
}
