/* h_modalities.c -- /modalities (list, get, put, delete, echo, store, query, move),
 * /tools/dicom-echo and /queries. The services are server/modality.c and server/scu.c; this
 * file only maps them to HTTP, with Orthanc's answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"
#include "server/scu.h"

static bool lookup(RestCall *call, SrvModality *m)
{
    if (modality_by_name(call->srv, call->params[0], m)) return true;
    rest_fail(call, SRV_INEXISTENT_ITEM, "No modality with symbolic name: %s", call->params[0]);
    return false;
}

/* The body as JSON, or NULL after answering Orthanc's 400 BadFileFormat (details as given:
 * Orthanc's PUT gives none, its echo routes "Cannot parse the JSON body"). An empty body is
 * "none" (NULL, no answer) when empty_ok. */
static cJSON *body_json(RestCall *call, const char *details, bool empty_ok, bool *answered)
{
    *answered = false;
    if (!call->body_len && empty_ok) return NULL;
    cJSON *j = call->body_len ? cJSON_ParseWithLength(call->body, call->body_len) : NULL;
    if (!j) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "%s", details);
        *answered = true;
    }
    return j;
}

/* GET /modalities[?expand]: Orthanc expands whenever the argument is there, whatever its value */
static void h_modalities_list(RestCall *call)
{
    rest_reply_json(call, 200, modality_list_json(call->srv, rest_arg(call, "expand") != NULL));
}

/* GET /modalities/{name}: Orthanc 1.10.1's list of the modality's operations (some of them
 * are not ours: docs/compatibility.md); an unknown name is a bare 404, as there */
static void h_get_one(RestCall *call)
{
    SrvModality m;
    if (!modality_by_name(call->srv, call->params[0], &m)) {
        rest_reply_text(call, 404, NULL, "");
        return;
    }
    cJSON *a = cJSON_CreateArray();
    const char *const ops[] = { "configuration", "echo", "find", "find-instance", "find-patient",
                                "find-series", "find-study", "find-worklist", "move", "query",
                                "storage-commitment", "store", "store-straight" };
    for (size_t i = 0; a && i < sizeof ops / sizeof ops[0]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ops[i]));
    rest_reply_json(call, 200, a);
}

/* GET /modalities/{name}/configuration */
static void h_configuration(RestCall *call)
{
    SrvModality m;
    if (!lookup(call, &m)) return;
    rest_reply_json(call, 200, modality_json(&m));
}

/* PUT /modalities/{name}: Orthanc answers an empty text body */
static void h_put(RestCall *call)
{
    bool answered;
    cJSON *body = body_json(call, "", false, &answered);
    if (!body) return;
    SrvError err = { 0 };
    if (!modality_put(&err, call->srv, call->params[0], body)) rest_reply_error(call, &err);
    else rest_reply_text(call, 200, "text/plain", "");
    cJSON_Delete(body);
}

/* DELETE /modalities/{name} */
static void h_delete_one(RestCall *call)
{
    SrvError err = { 0 };
    if (!modality_delete(&err, call->srv, call->params[0])) rest_reply_error(call, &err);
    else rest_reply_text(call, 200, "text/plain", "");
}

/* The options of an echo body, as Orthanc reads them: "Timeout" (an unsigned integer) and
 * "CheckFind" (a boolean; absent: DicomEchoChecksFind) when the body is an object; any other
 * JSON is no options. false after answering 400. */
static bool echo_options(RestCall *call, const cJSON *body, int *timeout, bool *check_find)
{
    *timeout = 0;
    *check_find = call->srv->cfg.dicom_echo_checks_find;
    if (!cJSON_IsObject(body)) return true;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "Timeout");
    if (t) {
        if (!cJSON_IsNumber(t) || t->valuedouble != (double)(int)t->valuedouble) {
            rest_fail(call, SRV_BAD_FILE_FORMAT, "Integer value expected in field: Timeout");
            return false;
        }
        if (t->valuedouble < 0) {
            rest_fail(call, SRV_BAD_FILE_FORMAT, "Unsigned integer value expected in field: Timeout");
            return false;
        }
        *timeout = (int)t->valuedouble;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "CheckFind");
    if (c) {
        if (!cJSON_IsBool(c)) {
            rest_fail(call, SRV_BAD_FILE_FORMAT, "Boolean value expected in field: CheckFind");
            return false;
        }
        *check_find = cJSON_IsTrue(c);
    }
    return true;
}

static void echo_reply(RestCall *call, const SrvModality *m, int timeout, bool check_find)
{
    SrvError err = { 0 };
    if (!scu_echo(&err, call->srv, m, timeout, check_find)) {
        if (!err.http_status) err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

/* POST /modalities/{name}/echo [{"Timeout": s, "CheckFind": bool}]: Orthanc parses the body,
 * then looks the modality up, then reads the options */
static void h_echo(RestCall *call)
{
    bool answered;
    cJSON *body = body_json(call, "Cannot parse the JSON body", true, &answered);
    if (answered) return;
    int timeout;
    bool check_find;
    SrvModality m;
    if (lookup(call, &m) && echo_options(call, body, &timeout, &check_find))
        echo_reply(call, &m, timeout, check_find);
    cJSON_Delete(body);
}

/* POST /tools/dicom-echo: a modality ({"AET", "Host", "Port", ...} or [AET, host, port]),
 * its "Timeout" (the modality's own key) and "CheckFind" */
static void h_tools_echo(RestCall *call)
{
    bool answered;
    cJSON *body = body_json(call, "Cannot parse the JSON body", false, &answered);
    if (!body) return;
    SrvError err = { 0 };
    SrvModality m = { 0 };
    int timeout;
    bool check_find;
    if (!modality_parse(&err, body, &m)) rest_reply_error(call, &err);
    else if (echo_options(call, body, &timeout, &check_find)) echo_reply(call, &m, 0, check_find);
    cJSON_Delete(body);
}

/* POST /modalities/{name}/store */
static void h_store(RestCall *call)
{
    /* Orthanc reads the body and finds its resources before it looks the modality up: an
     * unknown modality is 404 only for a body that names existing resources */
    SrvModality m = { 0 };
    bool known = modality_by_name(call->srv, call->params[0], &m);
    /* JSON, or a bare ID as Orthanc accepts; anything else is its BadFileFormat */
    cJSON *body = call->body_len && call->body_len <= REST_MAX_JSON_BODY
                      ? cJSON_ParseWithLength(call->body, call->body_len) : NULL;
    if (!body) {
        char *id = strndup(call->body ? call->body : "", call->body_len < 256 ? call->body_len : 256);
        if (id && srv_is_orthanc_id(srv_strip(id))) body = cJSON_CreateString(id);
        free(id);
        if (!body) {
            rest_fail(call, SRV_BAD_FILE_FORMAT, "Must provide a JSON value");
            return;
        }
    }
    SrvError err = { 0 };
    ScuStore *s = scu_store_new(&err, call->srv, &m, body);
    cJSON_Delete(body);
    if (!s) {
        rest_reply_error(call, &err);
        return;
    }
    if (!known) {
        scu_store_free(s);
        lookup(call, &m);
        return;
    }
    if (scu_store_async(s)) {
        char id[JOB_ID_LEN];
        if (!scu_store_submit(&err, s, id)) {
            rest_reply_error(call, &err);
            return;
        }
        rest_reply_job(call, id);
        return;
    }
    if (!scu_store_run(&err, s)) {
        scu_store_free(s);
        err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, scu_store_result(s));
    scu_store_free(s);
}

/* POST /modalities/{name}/query {"Level", "Query"} -> {"ID", "Path"} */
static void h_query(RestCall *call)
{
    bool answered;
    cJSON *body = body_json(call, "Must provide a JSON object", false, &answered);
    if (!body) return;
    if (!cJSON_IsObject(body) || !cJSON_GetObjectItem(body, "Level")) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "%s", cJSON_IsObject(body) ? "The JSON body must contain field Level"
                                                                        : "Must provide a JSON object");
        cJSON_Delete(body);
        return;
    }
    /* Orthanc wants a "Level" before it looks the modality up, and reads it after */
    SrvModality m = { 0 };
    if (cJSON_GetObjectItem(body, "Level") && !lookup(call, &m)) {
        cJSON_Delete(body);
        return;
    }
    const cJSON *lv = cJSON_GetObjectItem(body, "Level");
    if (!cJSON_IsString(lv) || scu_level_parse(lv->valuestring) < 0) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "%s", "");
        cJSON_Delete(body);
        return;
    }
    SrvError err = { 0 };
    char id[SRV_UUID_LEN];
    bool ok = scu_query(&err, call->srv, &m, body, id);
    cJSON_Delete(body);
    if (!ok) {
        if (err.code == SRV_NETWORK_PROTOCOL) err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ID", id);
    char path[64];
    snprintf(path, sizeof path, "/queries/%s", id);
    cJSON_AddStringToObject(o, "Path", path);
    rest_reply_json(call, 200, o);
}

/* POST /modalities/{name}/move {"Level", "Resources": [{keys}], "TargetAet"} */
static void h_move(RestCall *call)
{
    SrvModality m;
    bool answered;
    const char *shape = "Must provide a JSON body containing fields Resources and Level";
    cJSON *body = body_json(call, shape, false, &answered);
    if (!body) return;
    const cJSON *lv = cJSON_GetObjectItem(body, "Level");
    const cJSON *res = cJSON_GetObjectItem(body, "Resources");
    const cJSON *tgt = cJSON_GetObjectItem(body, "TargetAet");
    int level = cJSON_IsString(lv) ? scu_level_parse(lv->valuestring) : -1;
    SrvError err = { 0 };
    cJSON *all = cJSON_CreateArray();
    if (!lv || !res) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "%s", shape);
        goto out;
    }
    if (level < 0 || !cJSON_IsArray(res)) {
        rest_fail(call, level < 0 ? SRV_PARAMETER_OUT_OF_RANGE : SRV_BAD_FILE_FORMAT, "%s",
                  level < 0 ? "" : "\"Resources\" must be a list of objects of keys");
        goto out;
    }
    if (!lookup(call, &m)) goto out; /* after the body's checks, as Orthanc */
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        cJSON *one = NULL;
        if (!scu_move_json(&err, call->srv, &m, level, r, cJSON_IsString(tgt) ? tgt->valuestring : NULL, &one)) {
            if (err.code == SRV_NETWORK_PROTOCOL) err.http_status = 500;
            rest_reply_error(call, &err);
            goto out;
        }
        cJSON_AddItemToArray(all, one);
    }
    rest_reply_json(call, 200, all);
    all = NULL;
out:
    cJSON_Delete(all);
    cJSON_Delete(body);
}

/* ---- /queries --------------------------------------------------------------------------- */

static void h_queries(RestCall *call) { rest_reply_json(call, 200, scu_queries_json()); }

static void reply_query(RestCall *call, const char *what, int answer)
{
    SrvError err = { 0 };
    cJSON *o = NULL;
    if (!scu_query_get(&err, call->params[0], what, answer,
                       rest_arg_bool(call, "simplify") || (what && !strcmp(what, "answers") && rest_arg_bool(call, "expand")),
                       &o)) {
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, o);
}

static void h_query_get(RestCall *call) { reply_query(call, NULL, -1); }
static void h_query_item(RestCall *call) { reply_query(call, call->seg[2], -1); }

static int answer_index(RestCall *call)
{
    char *end = NULL;
    long n = strtol(call->params[1], &end, 10);
    return end && !*end && n >= 0 && n < 1 << 30 ? (int)n : 1 << 30;
}

static void h_answer(RestCall *call)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString("content"));
    cJSON_AddItemToArray(a, cJSON_CreateString("retrieve"));
    SrvError err = { 0 };
    cJSON *c = NULL;
    if (!scu_query_get(&err, call->params[0], "content", answer_index(call), false, &c)) {
        cJSON_Delete(a);
        rest_reply_error(call, &err);
        return;
    }
    cJSON_Delete(c);
    rest_reply_json(call, 200, a);
}

static void h_answer_content(RestCall *call) { reply_query(call, "content", answer_index(call)); }

/* the target of a retrieve: a bare AET, or {"TargetAet": ...} */
static char *retrieve_target(RestCall *call)
{
    if (!call->body_len) return NULL;
    if (call->body[0] == '{') {
        cJSON *b = cJSON_ParseWithLength(call->body, call->body_len);
        const cJSON *t = cJSON_GetObjectItem(b, "TargetAet");
        char *r = cJSON_IsString(t) ? strdup(t->valuestring) : NULL;
        cJSON_Delete(b);
        return r;
    }
    char *t = strndup(call->body, call->body_len);
    return t ? srv_strip(t) : NULL;
}

static void do_retrieve(RestCall *call, int answer)
{
    char *target = retrieve_target(call);
    SrvError err = { 0 };
    cJSON *r = NULL;
    bool ok = scu_query_retrieve(&err, call->srv, call->params[0], answer, target, &r);
    free(target);
    if (!ok) {
        if (err.code == SRV_NETWORK_PROTOCOL) err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, r);
}

static void h_answer_retrieve(RestCall *call) { do_retrieve(call, answer_index(call)); }
static void h_query_retrieve(RestCall *call) { do_retrieve(call, -1); }

static void h_query_delete(RestCall *call)
{
    SrvError err = { 0 };
    if (!scu_query_delete(&err, call->params[0])) rest_reply_error(call, &err);
    else rest_reply_json(call, 200, cJSON_CreateObject());
}

static const RestRoute routes[] = {
    { "GET", "/modalities", h_modalities_list },
    { "GET", "/modalities/{name}", h_get_one },
    { "PUT", "/modalities/{name}", h_put },
    { "DELETE", "/modalities/{name}", h_delete_one },
    { "GET", "/modalities/{name}/configuration", h_configuration },
    { "POST", "/modalities/{name}/echo", h_echo },
    { "POST", "/modalities/{name}/store", h_store },
    { "POST", "/modalities/{name}/query", h_query },
    { "POST", "/modalities/{name}/move", h_move },
    { "POST", "/tools/dicom-echo", h_tools_echo },
    { "GET", "/queries", h_queries },
    { "GET", "/queries/{id}", h_query_get },
    { "DELETE", "/queries/{id}", h_query_delete },
    { "GET", "/queries/{id}/answers", h_query_item },
    { "GET", "/queries/{id}/level", h_query_item },
    { "GET", "/queries/{id}/modality", h_query_item },
    { "GET", "/queries/{id}/query", h_query_item },
    { "POST", "/queries/{id}/retrieve", h_query_retrieve },
    { "GET", "/queries/{id}/answers/{n}", h_answer },
    { "GET", "/queries/{id}/answers/{n}/content", h_answer_content },
    { "POST", "/queries/{id}/answers/{n}/retrieve", h_answer_retrieve },
};

const RestRouteTable rest_routes_modalities = { routes, sizeof routes / sizeof routes[0] };
