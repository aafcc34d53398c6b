/* h_reorganize.c -- Orthanc's routes that act on many resources at once or rebuild the index:
 * POST /tools/bulk-content, /tools/bulk-delete, /{level}/{id}/reconstruct, /tools/reconstruct,
 * /tools/invalidate-tags, and /studies/{id}/split|merge (jobs, server/reorganize.c).
 *
 * As Orthanc 1.10.1: unknown IDs in "Resources" are skipped (no error); bulk-content lists the
 * resources in the order given (duplicates kept), or, with "Level", the resources of that level
 * above or below them, once each, sorted by ID; "Metadata" (default true) adds each resource's
 * metadata; "Short" / "Full" give the tags as Orthanc's "gggg,eeee" keys (full: with Name, Type
 * and Value). The routes that only act answer 200 with an empty text/plain body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest/rest_int.h"

static int level_from_name(const char *s)
{
    static const char *const names[] = { "Patient", "Study", "Series", "Instance" };
    for (int l = 0; l < SRV_LEVELS; l++)
        if (s && !strcasecmp(s, names[l])) return l;
    return -1;
}

/* The body as a JSON object with "Resources" a list of strings; NULL and a reply otherwise. */
static cJSON *body_with_resources(RestCall *call, const cJSON **resources)
{
    cJSON *body = rest_body_json(call);
    if (!body) return NULL;
    if (!cJSON_IsObject(body)) {
        rest_fail(call, SRV_BAD_REQUEST, "The body must contain a JSON object");
        cJSON_Delete(body);
        return NULL;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(body, "Resources");
    bool ok = cJSON_IsArray(r);
    const cJSON *it;
    cJSON_ArrayForEach(it, r) ok = ok && cJSON_IsString(it);
    if (!ok) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "List of strings expected in field: Resources");
        cJSON_Delete(body);
        return NULL;
    }
    *resources = r;
    return body;
}

static void format_tags(cJSON *tags, int format)
{
    if (!cJSON_IsObject(tags)) return;
    for (cJSON *t = tags->child; t; t = t->next) {
        uint32_t tag;
        if (!t->string || !srv_tag_parse(t->string, &tag)) continue;
        char key[16];
        snprintf(key, sizeof key, "%04x,%04x", tag >> 16, tag & 0xffff);
        const char *name = srv_main_tag_name(tag);
        char *nm = strdup(name ? name : t->string);
        if (!nm) continue;
        if (format == REST_TAGS_FULL && cJSON_IsString(t)) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "Name", nm);
            cJSON_AddStringToObject(o, "Type", "String");
            cJSON_AddStringToObject(o, "Value", t->valuestring);
            cJSON *old = t;
            cJSON_ReplaceItemViaPointer(tags, old, o);
            t = o;
        }
        free(nm);
        /* the key: cJSON owns t->string */
        char *k = strdup(key);
        if (!k) continue;
        if (!(t->type & cJSON_StringIsConst)) free(t->string);
        t->string = k;
        t->type &= ~cJSON_StringIsConst;
    }
}

void rest_main_tags_format(cJSON *resource, int format)
{
    if (format != REST_TAGS_SHORT && format != REST_TAGS_FULL) return;
    format_tags(cJSON_GetObjectItemCaseSensitive(resource, "MainDicomTags"), format);
    format_tags(cJSON_GetObjectItemCaseSensitive(resource, "PatientMainDicomTags"), format);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the resources of `target` level related to /level/id to ids (Buf of char *). */
static bool related_at(SrvError *err, Srv *srv, int level, const char *id, int target, Buf *ids)
{
    char **found = NULL;
    size_t n = 0;
    char one[SRV_ID_LEN];
    char *onep = one;
    if (level == target) {
        found = &onep;
        snprintf(one, sizeof one, "%s", id);
        n = 1;
    } else if (target < level) {
        if (!srv_resource_ancestor(err, srv, level, id, target, one)) return false;
        found = &onep;
        n = 1;
    } else if (!srv_resource_descendants(err, srv, level, id, target, &found, &n)) {
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        char *s = strdup(found[i]);
        ok = s && buf_append(ids, &s, sizeof s) == BUF_OK;
        if (!ok) free(s);
    }
    if (target > level) srv_strings_free(found, n);
    if (!ok) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    return true;
}

/* POST /tools/bulk-content {Resources, Level?, Metadata?} */
static void h_bulk_content(RestCall *call)
{
    const cJSON *resources;
    cJSON *body = body_with_resources(call, &resources);
    if (!body) return;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(body, "Level");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(body, "Metadata");
    int target = -1;
    if (lv && (!cJSON_IsString(lv) || (target = level_from_name(lv->valuestring)) < 0)) {
        rest_fail(call, SRV_PARAMETER_OUT_OF_RANGE, "\"Level\" must be Patient, Study, Series or Instance");
        cJSON_Delete(body);
        return;
    }
    if (md && !cJSON_IsBool(md)) {
        rest_fail(call, SRV_BAD_FILE_FORMAT, "Boolean value expected in field: Metadata");
        cJSON_Delete(body);
        return;
    }
    bool with_meta = !md || cJSON_IsTrue(md);
    int format = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Full")) ? REST_TAGS_FULL
                 : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Short")) ? REST_TAGS_SHORT
                                                                               : REST_TAGS_NAMES;
    Buf ids;
    buf_init(&ids, REST_MAX_ID_LIST);
    SrvError e = { 0 };
    const cJSON *it;
    bool ok = true;
    cJSON_ArrayForEach(it, resources) {
        SrvError le = { 0 };
        int level = srv_resource_level(&le, call->srv, it->valuestring);
        if (level < 0) {
            if (le.code != SRV_UNKNOWN_RESOURCE) { e = le; ok = false; break; }
            continue; /* unknown: skipped, as Orthanc */
        }
        if (!related_at(&e, call->srv, level, it->valuestring, target < 0 ? level : target, &ids)) {
            if (e.code == SRV_UNKNOWN_RESOURCE) { memset(&e, 0, sizeof e); continue; } /* deleted meanwhile */
            ok = false;
            break;
        }
    }
    size_t n = BUF_COUNT(&ids, char *);
    char **v = n ? &BUF_AT(&ids, char *, 0) : NULL;
    cJSON *out = NULL;
    if (ok) {
        if (target >= 0 && n > 1) { /* once each, sorted: Orthanc's std::set */
            qsort(v, n, sizeof *v, cmp_str);
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                if (k && !strcmp(v[k - 1], v[i])) free(v[i]);
                else v[k++] = v[i];
            }
            n = k;
        }
        out = cJSON_CreateArray();
        for (size_t i = 0; out && i < n; i++) {
            SrvError re = { 0 };
            cJSON *o = srv_resource_json(&re, call->srv, target, v[i]);
            if (!o) {
                if (re.code == SRV_UNKNOWN_RESOURCE) continue;
                e = re;
                ok = false;
                break;
            }
            rest_main_tags_format(o, format);
            if (with_meta) {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "Type");
                int level = cJSON_IsString(type) ? level_from_name(type->valuestring) : -1;
                cJSON *m = level < 0 ? NULL : srv_metadata_list(&re, call->srv, level, v[i], true);
                if (m) cJSON_AddItemToObject(o, "Metadata", m);
            }
            cJSON_AddItemToArray(out, o);
        }
    }
    for (size_t i = 0; i < n; i++) free(v[i]);
    buf_free(&ids);
    cJSON_Delete(body);
    if (!ok) {
        cJSON_Delete(out);
        rest_reply_error(call, &e);
        return;
    }
    rest_reply_json(call, 200, out);
}

/* POST /tools/bulk-delete {Resources} */
static void h_bulk_delete(RestCall *call)
{
    const cJSON *resources;
    cJSON *body = body_with_resources(call, &resources);
    if (!body) return;
    const cJSON *it;
    cJSON_ArrayForEach(it, resources) {
        SrvError e = { 0 };
        int level = srv_resource_level(&e, call->srv, it->valuestring);
        int rl;
        char rid[SRV_ID_LEN];
        if ((level < 0 || !srv_delete(&e, call->srv, level, it->valuestring, &rl, rid)) &&
            e.code != SRV_UNKNOWN_RESOURCE) { /* unknown or deleted meanwhile: skipped */
            cJSON_Delete(body);
            rest_reply_error(call, &e);
            return;
        }
    }
    cJSON_Delete(body);
    rest_reply_text(call, 200, "text/plain", "");
}

/* POST /{level}/{id}/reconstruct */
static void h_reconstruct(RestCall *call)
{
    SrvError e = { 0 };
    if (!srv_reconstruct(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1]))
        rest_reply_error(call, &e);
    else rest_reply_text(call, 200, "text/plain", "");
}

/* POST /tools/reconstruct */
static void h_reconstruct_all(RestCall *call)
{
    SrvError e = { 0 };
    if (!srv_reconstruct(&e, call->srv, -1, NULL)) rest_reply_error(call, &e);
    else rest_reply_text(call, 200, "text/plain", "");
}

/* POST /tools/invalidate-tags */
static void h_invalidate_tags(RestCall *call)
{
    srv_invalidate_tags(call->srv);
    rest_reply_text(call, 200, "text/plain", "");
}

/* POST /studies/{id}/split and /merge: a job, waited for unless asynchronous. */
static void reorganize(RestCall *call, bool merge)
{
    cJSON *body = rest_body_json(call);
    if (!body) return;
    SrvError e = { 0 };
    Reorg *rq = reorg_new(&e, call->srv, merge, call->params[0], body);
    cJSON_Delete(body);
    char job[JOB_ID_LEN];
    if (!rq) {
        rest_reply_error(call, &e);
        return;
    }
    bool async = reorg_async(rq);
    if (!reorg_submit(&e, rq, job)) {
        rest_reply_error(call, &e);
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

static void h_split(RestCall *call) { reorganize(call, false); }
static void h_merge(RestCall *call) { reorganize(call, true); }

static const RestRoute routes[] = {
    { "POST", "/studies/{id}/split", h_split },
    { "POST", "/studies/{id}/merge", h_merge },
    { "POST", "/tools/bulk-content", h_bulk_content },
    { "POST", "/tools/bulk-delete", h_bulk_delete },
    { "POST", "/{level}/{id}/reconstruct", h_reconstruct },
    { "POST", "/tools/reconstruct", h_reconstruct_all },
    { "POST", "/tools/invalidate-tags", h_invalidate_tags },
};

const RestRouteTable rest_routes_reorganize = { routes, sizeof routes / sizeof routes[0] };
