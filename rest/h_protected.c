/* h_protected.c -- GET|PUT /patients/{id}/protected, as Orthanc: the answer is the text "1" or
 * "0"; PUT takes "1" or "0" (also "true"/"false") as its body. A protected patient is never
 * recycled by MaximumStorageSize / MaximumPatientCount (server/quota.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"

static void h_protected_get(RestCall *call)
{
    SrvError e = { 0 };
    bool on = false;
    if (!srv_patient_is_protected(&e, call->srv, call->params[0], &on)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", on ? "1" : "0");
}

static void h_protected_put(RestCall *call)
{
    char v[8] = "";
    size_t n = call->body_len;
    while (n && (call->body[n - 1] == '\n' || call->body[n - 1] == '\r' || call->body[n - 1] == ' ')) n--;
    if (n < sizeof v) {
        memcpy(v, call->body ? call->body : "", n);
        v[n] = '\0';
    }
    bool on;
    if (!strcmp(v, "1") || !strcasecmp(v, "true")) on = true;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false")) on = false;
    else {
        rest_fail(call, SRV_BAD_REQUEST, "the body must be \"0\" or \"1\"");
        return;
    }
    SrvError e = { 0 };
    if (!srv_patient_set_protected(&e, call->srv, call->params[0], on)) {
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_text(call, 200, "text/plain", "");
}

static const RestRoute routes[] = {
    { "GET", "/patients/{id}/protected", h_protected_get },
    { "PUT", "/patients/{id}/protected", h_protected_put },
};

const RestRouteTable rest_routes_protected = { routes, sizeof routes / sizeof routes[0] };
