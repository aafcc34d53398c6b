/* h_dwclient.c -- /dicom-web/servers: the DICOMweb client routes of Orthanc's DICOMweb plugin
 * (list, get, put, delete, and POST get / qido / retrieve / stow). The services are
 * server/dwclient.c; this file maps them to HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"
#include "server/dwclient.h"

static bool lookup(RestCall *call, HttpcRemote *r)
{
    if (dwc_get(call->params[0], r)) return true;
    rest_fail(call, SRV_INEXISTENT_ITEM, "Inexistent server: %s", call->params[0]);
    return false;
}

static void reply_net_error(RestCall *call, SrvError *err)
{
    if (err->code == SRV_NETWORK_PROTOCOL) err->http_status = 500;
    rest_reply_error(call, err);
}

static void h_dw_servers(RestCall *call) { rest_reply_json(call, 200, dwc_list_json(rest_arg_bool(call, "expand"))); }

/* GET /dicom-web/servers/{name}: the operations (Orthanc's plugin also lists "wado", and
 * "delete" with HasDelete; those two are not offered here) */
static void h_dw_server(RestCall *call)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    httpc_remote_cleanup(&r);
    cJSON *a = cJSON_CreateArray();
    const char *const ops[] = { "get", "retrieve", "stow", "qido" };
    for (size_t i = 0; a && i < 4; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ops[i]));
    rest_reply_json(call, 200, a);
}

static void h_dw_put(RestCall *call)
{
    cJSON *body = cJSON_ParseWithLength(call->body ? call->body : "", call->body_len);
    if (!body) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "the body must be a JSON server: [url, username, password] or {\"Url\", ...}");
        return;
    }
    SrvError err = { 0 };
    if (!dwc_put(&err, call->params[0], body)) rest_reply_error(call, &err);
    else rest_reply_json(call, 200, cJSON_CreateObject());
    cJSON_Delete(body);
}

static void h_dw_delete(RestCall *call)
{
    SrvError err = { 0 };
    if (!dwc_delete(&err, call->params[0])) rest_reply_error(call, &err);
    else rest_reply_json(call, 200, cJSON_CreateObject());
}

/* POST .../get (the answer as the server gave it) and .../qido (JSON) */
static void proxy(RestCall *call, bool qido)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    cJSON *body = rest_body_json(call);
    if (!body) {
        httpc_remote_cleanup(&r);
        return;
    }
    SrvError err = { 0 };
    char ctype[256] = "", *out = NULL;
    size_t len = 0;
    if (!dwc_request(&err, call->srv, &r, body, qido ? "application/dicom+json" : NULL, ctype, &out, &len)) {
        reply_net_error(call, &err);
    } else if (qido) {
        cJSON *j = len ? cJSON_ParseWithLength(out, len) : cJSON_CreateArray(); /* 204: no match */
        free(out);
        if (!j) {
            srv_fail(&err, SRV_NETWORK_PROTOCOL, "the DICOMweb server did not answer JSON to QIDO-RS");
            reply_net_error(call, &err);
        } else {
            dwc_qido_simplify(j);
            rest_reply_json(call, 200, j);
        }
    } else {
        /* resp_type is read when the answer is queued, right after this handler returns on
         * this thread: a thread-local copy outlives the call long enough */
        static _Thread_local char type[256];
        snprintf(type, sizeof type, "%s", ctype[0] ? ctype : "application/octet-stream");
        rest_reply_buffer(call, 200, type, out, len);
    }
    cJSON_Delete(body);
    httpc_remote_cleanup(&r);
}

static void h_dw_get(RestCall *call) { proxy(call, false); }
static void h_qido(RestCall *call) { proxy(call, true); }

static void transfer(RestCall *call, bool stow)
{
    HttpcRemote r;
    if (!lookup(call, &r)) return;
    cJSON *body = rest_body_json(call);
    if (!body) {
        httpc_remote_cleanup(&r);
        return;
    }
    SrvError err = { 0 };
    DwcTransfer *t = stow ? dwc_stow_new(&err, call->srv, &r, body) : dwc_retrieve_new(&err, call->srv, &r, body);
    cJSON_Delete(body);
    httpc_remote_cleanup(&r);
    if (!t) {
        rest_reply_error(call, &err);
        return;
    }
    if (dwc_transfer_async(t)) {
        char id[JOB_ID_LEN];
        if (!dwc_transfer_submit(&err, t, id)) {
            rest_reply_error(call, &err);
            return;
        }
        rest_reply_job(call, id);
        return;
    }
    if (!dwc_transfer_run(&err, t)) reply_net_error(call, &err);
    else rest_reply_json(call, 200, dwc_transfer_result(t));
    dwc_transfer_free(t);
}

static void h_retrieve(RestCall *call) { transfer(call, false); }
static void h_stow(RestCall *call) { transfer(call, true); }

static const RestRoute routes[] = {
    { "GET", "/dicom-web/servers", h_dw_servers },
    { "GET", "/dicom-web/servers/{name}", h_dw_server },
    { "PUT", "/dicom-web/servers/{name}", h_dw_put },
    { "DELETE", "/dicom-web/servers/{name}", h_dw_delete },
    { "POST", "/dicom-web/servers/{name}/get", h_dw_get },
    { "POST", "/dicom-web/servers/{name}/qido", h_qido },
    { "POST", "/dicom-web/servers/{name}/retrieve", h_retrieve },
    { "POST", "/dicom-web/servers/{name}/stow", h_stow },
};

const RestRouteTable rest_routes_dwclient = { routes, sizeof routes / sizeof routes[0] };
