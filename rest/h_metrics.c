/* h_metrics.c -- /tools/metrics-prometheus and /tools/metrics, as Orthanc 1.10.1 answers them:
 * the Prometheus text as "text/plain; version=0.0.4" (empty while metrics are off);
 * GET /tools/metrics answers "1" or "0" as text/plain; PUT takes "1", "0", "true" or "false"
 * (any case, surrounding blanks ignored) and answers an empty body; anything else is 400. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"

/* GET /tools/metrics-prometheus */
static void h_metrics_prometheus(RestCall *call)
{
    size_t len = 0;
    char *text = metrics_render(call->srv, &len);
    if (!text) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "cannot render the metrics");
        return;
    }
    rest_reply_buffer(call, 200, "text/plain; version=0.0.4", text, len);
}

/* GET /tools/metrics */
static void h_metrics_get(RestCall *call)
{
    rest_reply_text(call, 200, "text/plain", metrics_enabled() ? "1" : "0");
}

/* PUT /tools/metrics */
static void h_metrics_put(RestCall *call)
{
    char v[8] = "";
    size_t b = 0, e = call->body_len;
    while (b < e && isspace((unsigned char)call->body[b])) b++;
    while (e > b && isspace((unsigned char)call->body[e - 1])) e--;
    if (e - b < sizeof v) {
        memcpy(v, call->body + b, e - b);
        v[e - b] = '\0';
    }
    bool on;
    if (!strcmp(v, "1") || !strcasecmp(v, "true")) on = true;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false")) on = false;
    else {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "the body must be 0, 1, true or false");
        return;
    }
    metrics_set_enabled(on);
    SRV_LOG_INFO("metrics", "metrics %s", on ? "enabled" : "disabled");
    rest_reply_text(call, 200, "text/plain", "");
}

static const RestRoute routes[] = {
    { "GET", "/tools/metrics-prometheus", h_metrics_prometheus },
    { "GET", "/tools/metrics", h_metrics_get },
    { "PUT", "/tools/metrics", h_metrics_put },
};

const RestRouteTable rest_routes_metrics = { routes, sizeof routes / sizeof routes[0] };
