/* h_modify.c -- POST /{level}/{id}/anonymize and /modify. The options are checked by
 * server/modify.c before any job exists (400 and no job on a bad one). Patients, studies and
 * series become a ResourceModification job: synchronous by default (the request waits and
 * answers {ID, Path, PatientID, Type} of the new resource), or {ID, Path} of the job with
 * "Asynchronous": true. An instance is answered with the modified DICOM file itself, not
 * stored, as Orthanc does. /tools/bulk-modify and /tools/bulk-anonymize take several resources
 * into one job and answer every new resource. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"

static void modify_route(RestCall *call, bool anonymize)
{
    int level = rest_level_from_route(call->params[0]);
    cJSON *body = rest_body_json(call);
    if (!body) return;
    SrvError err = { 0 };
    ModifyRequest *rq = modify_request_new(&err, call->srv, level, call->params[1], body, anonymize);
    cJSON_Delete(body);
    if (!rq) {
        rest_reply_error(call, &err);
        return;
    }
    if (level == SRV_INSTANCE) {
        void *buf = NULL;
        size_t len = 0;
        bool ok = modify_instance(&err, rq, &buf, &len);
        modify_request_free(rq);
        if (!ok) {
            rest_reply_error(call, &err);
            return;
        }
        rest_reply_buffer(call, 200, "application/dicom", buf, len);
        return;
    }
    bool async = modify_request_async(rq);
    char job[JOB_ID_LEN];
    if (!modify_submit(&err, rq, job)) {
        rest_reply_error(call, &err);
        return;
    }
    if (async) {
        rest_reply_job(call, job);
        return;
    }
    cJSON *content = rest_job_wait(call, job);
    if (!content) return;
    cJSON *o = cJSON_CreateObject();
    static const char *const keys[] = { "ID", "Path", "PatientID", "Type" };
    for (size_t i = 0; i < 4; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(content, keys[i]);
        if (v) cJSON_AddItemToObject(o, keys[i], v);
    }
    cJSON_Delete(content);
    rest_reply_json(call, 200, o);
}

static void h_anonymize(RestCall *call) { modify_route(call, true); }
static void h_modify(RestCall *call) { modify_route(call, false); }

/* POST /tools/bulk-modify|bulk-anonymize: synchronous by default, answering the job's content
 * ({Description, FailedInstancesCount, InstancesCount, IsAnonymization, Resources}), or {ID, Path}
 * of the job with "Asynchronous": true. */
static void bulk_route(RestCall *call, bool anonymize)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    SrvError err = { 0 };
    ModifyRequest *rq = modify_request_new_bulk(&err, call->srv, body, anonymize);
    cJSON_Delete(body);
    if (!rq) {
        rest_reply_error(call, &err);
        return;
    }
    bool async = modify_request_async(rq);
    char job[JOB_ID_LEN];
    if (!modify_submit(&err, rq, job)) {
        rest_reply_error(call, &err);
        return;
    }
    if (async) {
        rest_reply_job(call, job);
        return;
    }
    cJSON *content = rest_job_wait(call, job);
    if (!content) return;
    rest_reply_json(call, 200, content);
}

static void h_bulk_anonymize(RestCall *call) { bulk_route(call, true); }
static void h_bulk_modify(RestCall *call) { bulk_route(call, false); }

static const RestRoute routes[] = {
    { "POST", "/tools/bulk-anonymize", h_bulk_anonymize },
    { "POST", "/tools/bulk-modify", h_bulk_modify },
    { "POST", "/{level}/{id}/anonymize", h_anonymize },
    { "POST", "/{level}/{id}/modify", h_modify },
};

const RestRouteTable rest_routes_modify = { routes, sizeof routes / sizeof routes[0] };
