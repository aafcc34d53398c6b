/* xml.c -- a JSON answer rendered as Orthanc's XML (Accept: application/xml).
 *
 * DESIGN: Orthanc converts the JSON tree with pugixml (Toolbox::JsonToXml): root element
 * <root>, object members as elements named by their key (sorted bytewise, as jsoncpp lists
 * them; a key that is no XML name is written as it is, as pugixml does), array items as
 * <item>, null as the text "null", booleans "true"/"false", integers in decimal, other
 * numbers through a float with 9 significant digits; pugixml's layout: two-space indent, an
 * element holding text on one line, an empty element as "<x />", text escaped (& < > and the
 * control characters other than tab, CR and LF as "&#NN;"). The writer appends to a Buf, so
 * the caller's ceiling bounds it; depth is cJSON's (its parser limits nesting).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"

static int put(Buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

static int indent(Buf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        if (buf_append(b, "  ", 2)) return BUF_TOO_LARGE;
    return BUF_OK;
}

static int text(Buf *b, const char *s)
{
    int rc = BUF_OK;
    const char *run = s;
    for (const char *p = s; *p && rc == BUF_OK; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char num[8];
        if (c == '&') esc = "&amp;";
        else if (c == '<') esc = "&lt;";
        else if (c == '>') esc = "&gt;";
        else if (c < 32 && c != '\t' && c != '\r' && c != '\n') {
            snprintf(num, sizeof num, "&#%d%d;", c / 10, c % 10);
            esc = num;
        }
        if (!esc) continue;
        rc = buf_append(b, run, (size_t)(p - run));
        if (!rc) rc = put(b, esc);
        run = p + 1;
    }
    if (!rc) rc = put(b, run);
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static int element(Buf *b, const char *name, const cJSON *v, int depth);

/* The children of an object (sorted members) or array (items named "item"). */
static int children(Buf *b, const cJSON *v, int depth)
{
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next) n++;
    if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c; c = c->next) {
            int rc = element(b, "item", c, depth);
            if (rc) return rc;
        }
        return BUF_OK;
    }
    const cJSON **m = malloc((n ? n : 1) * sizeof *m);
    if (!m) return BUF_NOMEM;
    size_t k = 0;
    for (const cJSON *c = v->child; c; c = c->next) m[k++] = c;
    qsort(m, n, sizeof *m, cmp_key);
    int rc = BUF_OK;
    for (size_t i = 0; i < n && !rc; i++) rc = element(b, m[i]->string ? m[i]->string : "", m[i], depth);
    free(m);
    return rc;
}

static int element(Buf *b, const char *name, const cJSON *v, int depth)
{
    int rc = indent(b, depth);
    if (!rc) rc = put(b, "<");
    if (!rc) rc = put(b, name);
    if (rc) return rc;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        if (!v->child) return put(b, " />\n");
        if ((rc = put(b, ">\n")) || (rc = children(b, v, depth + 1)) || (rc = indent(b, depth)))
            return rc;
    } else {
        char num[64];
        const char *s;
        if (cJSON_IsNull(v)) s = "null";
        else if (cJSON_IsTrue(v)) s = "true";
        else if (cJSON_IsFalse(v)) s = "false";
        else if (cJSON_IsString(v)) s = v->valuestring ? v->valuestring : "";
        else if (cJSON_IsNumber(v)) {
            double d = v->valuedouble;
            if (d > -9.2e18 && d < 9.2e18 && (double)(long long)d == d) snprintf(num, sizeof num, "%lld", (long long)d);
            else snprintf(num, sizeof num, "%.9g", (double)(float)d);
            s = num;
        } else s = "";
        if ((rc = put(b, ">")) || (rc = text(b, s))) return rc;
    }
    if ((rc = put(b, "</")) || (rc = put(b, name))) return rc;
    return put(b, ">\n");
}

int rest_json_to_xml(Buf *out, const cJSON *json)
{
    int rc = put(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    if (!rc) rc = element(out, "root", json, 0);
    return rc;
}
