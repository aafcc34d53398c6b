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
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown modality: %s", call->params[0]);
    return false;
}

/* GET /modalities[?expand] */
static void h_modalities_list(RestCall *call)
{
    rest_reply_json(call, 200, modality_list_json(call->srv, rest_arg_bool(call, "expand")));
}

/* GET /modalities/{name}: Orthanc 1.10 answers the operations of the modality */
static void h_get_one(RestCall *call)
{
    SrvModality m;
    if (!lookup(call, &m)) return;
    cJSON *a = cJSON_CreateArray();
    const char *const ops[] = { "echo", "find-worklist", "move", "query", "storage-commitment", "store", "store-straight" };
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

/* PUT /modalities/{name} */
static void h_put(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    SrvError err = { 0 };
    if (!modality_put(&err, call->srv, call->params[0], body)) rest_reply_error(call, &err);
    else rest_reply_json(call, 200, cJSON_CreateObject());
    cJSON_Delete(body);
}

/* DELETE /modalities/{name} */
static void h_delete_one(RestCall *call)
{
    SrvError err = { 0 };
    if (!modality_delete(&err, call->srv, call->params[0])) rest_reply_error(call, &err);
    else rest_reply_json(call, 200, cJSON_CreateObject());
}

/* The optional {"Timeout": s} of echo bodies. */
static int body_timeout(RestCall *call)
{
    if (!call->body_len) return 0;
    cJSON *b = cJSON_ParseWithLength(call->body, call->body_len);
    const cJSON *t = cJSON_GetObjectItem(b, "Timeout");
    int v = cJSON_IsNumber(t) && t->valuedouble > 0 ? (int)t->valuedouble : 0;
    cJSON_Delete(b);
    return v;
}

/* POST /modalities/{name}/echo */
static void h_echo(RestCall *call)
{
    SrvModality m;
    if (!lookup(call, &m)) return;
    SrvError err = { 0 };
    if (!scu_echo(&err, call->srv, &m, body_timeout(call))) {
        err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

/* POST /tools/dicom-echo {"AET", "Host", "Port"} or [AET, host, port] */
static void h_tools_echo(RestCall *call)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    SrvError err = { 0 };
    SrvModality m = { 0 };
    if (!modality_parse(&err, body, &m)) {
        rest_reply_error(call, &err);
        cJSON_Delete(body);
        return;
    }
    const cJSON *t = cJSON_GetObjectItem(body, "Timeout");
    cJSON_Delete(body);
    if (!scu_echo(&err, call->srv, &m, cJSON_IsNumber(t) ? (int)t->valuedouble : 0)) {
        err.http_status = 500;
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

/* POST /modalities/{name}/store */
static void h_store(RestCall *call)
{
    SrvModality m;
    if (!lookup(call, &m)) return;
    cJSON *body = NULL;
    if (call->body_len && (call->body[0] == '{' || call->body[0] == '[' || call->body[0] == '"')) {
        body = rest_body_json(call);
        if (!body) return;
    } else {
        /* a bare ID, as Orthanc accepts */
        char *id = strndup(call->body ? call->body : "", call->body_len);
        body = id ? cJSON_CreateString(srv_strip(id)) : NULL;
        free(id);
    }
    SrvError err = { 0 };
    ScuStore *s = scu_store_new(&err, call->srv, &m, body);
    cJSON_Delete(body);
    if (!s) {
        rest_reply_error(call, &err);
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
    SrvModality m;
    if (!lookup(call, &m)) return;
    cJSON *body = rest_body_json(call);
    if (!body) return;
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
    if (!lookup(call, &m)) return;
    cJSON *body = rest_body_json(call);
    if (!body) return;
    const cJSON *lv = cJSON_GetObjectItem(body, "Level");
    const cJSON *res = cJSON_GetObjectItem(body, "Resources");
    const cJSON *tgt = cJSON_GetObjectItem(body, "TargetAet");
    int level = cJSON_IsString(lv) ? scu_level_parse(lv->valuestring) : -1;
    SrvError err = { 0 };
    cJSON *all = cJSON_CreateArray();
    if (level < 0 || !cJSON_IsArray(res)) {
        rest_fail(call, SRV_BAD_REQUEST, "a move needs \"Level\" and \"Resources\" (a list of objects of keys)");
        goto out;
    }
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
