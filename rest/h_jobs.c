/* h_jobs.c -- /jobs: the list (?expand), one job, and its actions (cancel, pause, resume,
 * resubmit). The engine is server/jobs.c; this file only maps it to HTTP. */
#include <string.h>

#include "rest/rest_int.h"

/* GET /jobs[?expand] */
static void h_jobs_list(RestCall *call)
{
    rest_reply_json(call, 200, jobs_list_json(rest_arg_bool(call, "expand")));
}

/* GET /jobs/{id} */
static void h_job_get(RestCall *call)
{
    cJSON *o = jobs_json(call->params[0]);
    if (!o) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown job %s", call->params[0]);
        return;
    }
    rest_reply_json(call, 200, o);
}

/* POST /jobs/{id}/cancel|pause|resume|resubmit: answers {} like Orthanc. */
static void h_job_action(RestCall *call)
{
    SrvError err = { 0 };
    if (!jobs_action(&err, call->params[0], call->seg[2])) {
        rest_reply_error(call, &err);
        return;
    }
    rest_reply_json(call, 200, cJSON_CreateObject());
}

static const RestRoute routes[] = {
    { "GET", "/jobs", h_jobs_list },
    { "GET", "/jobs/{id}", h_job_get },
    { "POST", "/jobs/{id}/cancel", h_job_action },
    { "POST", "/jobs/{id}/pause", h_job_action },
    { "POST", "/jobs/{id}/resume", h_job_action },
    { "POST", "/jobs/{id}/resubmit", h_job_action },
};

const RestRouteTable rest_routes_jobs = { routes, sizeof routes / sizeof routes[0] };
