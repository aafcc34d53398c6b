/* h_peers.c -- /peers (list, get, put, delete, configuration, system, store, store-straight).
 * The services are server/peers.c (registry, store job) on server/httpc.c; this file maps
 * them to HTTP with Orthanc 1.10.1's answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"
#include "server/peers.h"

static bool lookup(RestCall *call, HttpcRemote *r)
{
    if (peers_get(call->srv, call->params[0], r)) return true;
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "No peer with symbolic name: %s", call->params[0]);
    return false;
}

/* Network failures are 500 NetworkProtocol, as Orthanc answers them. */
static void reply_net_error(RestCall *call, SrvError *err)
{
    if (err->code == SRV_NETWORK_PROTOCOL) err->http_status = 500;
    rest_reply_error(call, err);
}

/* GET /peers[?expand] */
static void h_peers_list(RestCall *call) { rest_reply_json(call, 200, peers_list_json(rest_arg_bool(call, "expand"))); }

/* GET /peers/{name}: the operations */
static void h_get_one(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    httpc_remote_cleanup(&r);
    cJSON *a = cJSON_CreateArray();
    const char *const ops[] = { "configuration", "store", "store-straight", "system" };
    for (size_t i = 0; a && i < 4; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ops[i]));
    rest_reply_json(call, 200, a);
}

static void h_configuration(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    rest_reply_json(call, 200, httpc_remote_public_json(&r));
    httpc_remote_cleanup(&r);
}

/* PUT /peers/{name}: Orthanc answers an empty text body */
static void h_put(RestCall *call)
{
    cJSON *body = cJSON_ParseWithLength(call->body ? call->body : "", call->body_len);
    if (!body) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "the body must be a JSON peer: [url, username, password] or {\"Url\", ...}");
        return;
    }
    SrvError err = { 0 };
    if (!peers_put(&err, call->params[0], body)) rest_reply_error(call, &err);
    else rest_reply_text(call, 200, "text/plain", "");
    cJSON_Delete(body);
}

static void h_delete_one(RestCall *call)
{
    SrvError err = { 0 };
    if (!peers_delete(&err, call->params[0])) rest_reply_error(call, &err);
    else rest_reply_text(call, 200, "text/plain", "");
}

static void h_peer_system(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    SrvError err = { 0 };
    cJSON *o = NULL;
    if (!peers_system(&err, call->srv, &r, &o)) reply_net_error(call, &err);
    else rest_reply_json(call, 200, o);
    httpc_remote_cleanup(&r);
}

/* POST /peers/{name}/store */
static void h_store(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    cJSON *body = NULL;
    if (call->body_len && (call->body[0] == '{' || call->body[0] == '[' || call->body[0] == '"')) {
        body = rest_body_json(call);
        if (!body) goto out;
    } else {
        /* a bare ID, as Orthanc accepts */
        char *id = strndup(call->body ? call->body : "", call->body_len);
        body = id ? cJSON_CreateString(srv_strip(id)) : NULL;
        free(id);
    }
    SrvError err = { 0 };
    PeerStore *s = peers_store_new(&err, call->srv, call->params[0], &r, body);
    cJSON_Delete(body);
    if (!s) {
        rest_reply_error(call, &err);
        goto out;
    }
    if (peers_store_async(s)) {
        char id[JOB_ID_LEN];
        if (!peers_store_submit(&err, s, id)) {
            rest_reply_error(call, &err);
            goto out;
        }
        rest_reply_job(call, id);
        goto out;
    }
    if (!peers_store_run(&err, s)) reply_net_error(call, &err);
    else rest_reply_json(call, 200, peers_store_result(s));
    peers_store_free(s);
out:
    httpc_remote_cleanup(&r);
}

/* POST /peers/{name}/store-straight: the body (a DICOM file) is sent as is; the peer's answer
 * comes back. */
static void h_store_straight(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    SrvError err = { 0 };
    long status = 0;
    char *answer = NULL, ctype[256] = "";
    size_t len = 0;
    if (!peers_store_straight(&err, call->srv, &r, call->body, call->body_len, &status, &answer, &len, ctype)) {
        reply_net_error(call, &err);
    } else if (status < 200 || status >= 300) {
        free(answer);
        srv_fail(&err, SRV_NETWORK_PROTOCOL, "Cannot send DICOM to remote peer: %s (HTTP status %ld)", call->params[0], status);
        reply_net_error(call, &err);
    } else {
        cJSON *j = cJSON_ParseWithLength(answer ? answer : "", len);
        if (j) {
            free(answer);
            rest_reply_json(call, 200, j);
        } else {
            rest_reply_buffer(call, 200, "application/octet-stream", answer, len);
        }
    }
    httpc_remote_cleanup(&r);
}

static const RestRoute routes[] = {
    { "GET", "/peers", h_peers_list },
    { "GET", "/peers/{name}", h_get_one },
    { "PUT", "/peers/{name}", h_put },
    { "DELETE", "/peers/{name}", h_delete_one },
    { "GET", "/peers/{name}/configuration", h_configuration },
    { "GET", "/peers/{name}/system", h_peer_system },
    { "POST", "/peers/{name}/store", h_store },
    { "POST", "/peers/{name}/store-straight", h_store_straight },
};

const RestRouteTable rest_routes_peers = { routes, sizeof routes / sizeof routes[0] };
