/* h_content.c -- the DICOM views of stored instances beyond /tags: raw values by path
 * (/instances/{id}/content/...), the DICOM module of each level (/module, /module-patient),
 * the tags shared by all instances of a resource (/shared-tags) and every instance's tags at
 * once (/instances-tags). The views are computed in server/tags.c; here are the arguments
 * (?simplify, ?short, ?ignore-length=) and the replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"

/* ---- /instances/{id}/content[/...] ----------------------------------------------------- */

void h_content(RestCall *call)
{
    const char *path[REST_MAX_SEGMENTS];
    size_t npath = 0;
    for (size_t i = 3; i < call->nseg && npath < REST_MAX_SEGMENTS; i++) path[npath++] = call->seg[i];
    SrvError e = { 0 };
    SrvContent c = { 0 };
    if (!srv_instance_content(&e, call->srv, call->params[0], path, npath, &c)) {
        rest_reply_error(call, &e);
        return;
    }
    if (c.list) {
        rest_reply_json(call, 200, c.list);
        c.list = NULL; /* handed over */
    } else {
        rest_reply_buffer(call, 200, c.is_text ? "text/plain; charset=utf-8" : "application/octet-stream",
                          c.data, c.len);
        c.data = NULL; /* handed over */
    }
    srv_content_cleanup(&c);
}

/* ---- tags options ----------------------------------------------------------------------- */

/* Format of the answer from the query: ?simplify, ?short, else full. */
int rest_tags_format(const RestCall *call)
{
    return rest_arg_bool(call, "simplify") ? SRV_TAGS_SIMPLIFY
         : rest_arg_bool(call, "short")    ? SRV_TAGS_SHORT
                                           : SRV_TAGS_FULL;
}

/* Parses ?ignore-length=tag,tag ("" = every tag). Returns the max length to use; fills
 * tags (at most cap). false and a 400 reply on an unknown tag. */
bool rest_ignore_length(RestCall *call, size_t *max_length, uint32_t *tags, size_t cap, size_t *n)
{
    *n = 0;
    *max_length = SRV_TAGS_TOO_LONG;
    const char *v = rest_arg(call, "ignore-length");
    if (!v) return true;
    if (!*v) {
        *max_length = 0;
        return true;
    }
    char *copy = strdup(v), *save = NULL;
    if (!copy) {
        rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return false;
    }
    /* tags are "gggg,eeee" (the comma is also the list separator) or names */
    char *p = copy;
    while (*p) {
        uint32_t tag;
        size_t l = strcspn(p, ",");
        if (strlen(p) >= 9 && p[4] == ',') l = 9; /* "0010,0010" */
        char item[128];
        snprintf(item, sizeof item, "%.*s", (int)(l < sizeof item ? l : sizeof item - 1), p);
        if (!srv_tag_parse(item, &tag)) {
            rest_fail(call, SRV_UNKNOWN_DICOM_TAG, "ignore-length: unknown tag \"%s\"", item);
            free(copy);
            return false;
        }
        if (*n < cap) tags[(*n)++] = tag;
        p += l;
        if (*p == ',') p++;
    }
    (void)save;
    free(copy);
    return true;
}

bool rest_tags_options(RestCall *call, int format, SrvTagsOptions *opt, uint32_t *ign, size_t cap)
{
    opt->format = format;
    opt->ignore = ign;
    return rest_ignore_length(call, &opt->max_length, ign, cap, &opt->nignore);
}

/* ---- /module, /module-patient ------------------------------------------------------------- */

static void reply_module(RestCall *call, int level, const char *rid, int module)
{
    SrvTagsOptions opt;
    uint32_t ign[32];
    if (!rest_tags_options(call, rest_tags_format(call), &opt, ign, 32)) return;
    SrvError e = { 0 };
    cJSON *out = srv_module_tags(&e, call->srv, level, rid, module, &opt);
    if (!out) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, out);
}

/* GET /{level}/{id}/module */
void h_module(RestCall *call)
{
    int level = rest_level_from_route(call->params[0]);
    reply_module(call, level, call->params[1], level);
}

/* GET /studies/{id}/module-patient */
void h_module_patient(RestCall *call)
{
    reply_module(call, SRV_STUDY, call->params[0], SRV_PATIENT);
}

/* ---- /shared-tags, /instances-tags -------------------------------------------------------- */

static void reply_instances(RestCall *call,
                            cJSON *(*fn)(SrvError *, Srv *, int, const char *, const SrvTagsOptions *))
{
    SrvTagsOptions opt;
    uint32_t ign[32];
    if (!rest_tags_options(call, rest_tags_format(call), &opt, ign, 32)) return;
    SrvError e = { 0 };
    cJSON *out = fn(&e, call->srv, rest_level_from_route(call->params[0]), call->params[1], &opt);
    if (!out) rest_reply_error(call, &e);
    else rest_reply_json(call, 200, out);
}

/* GET /{level}/{id}/shared-tags: the tags whose value (and type) is the same in every
 * instance under the resource. */
void h_shared_tags(RestCall *call) { reply_instances(call, srv_shared_tags); }

/* GET /{level}/{id}/instances-tags: {instance ID: tags} for every instance under it. */
void h_instances_tags(RestCall *call) { reply_instances(call, srv_instances_tags); }

static const RestRoute routes[] = {
    { "GET", "/instances/{id}/content", h_content },
    { "GET", "/instances/{id}/content/*", h_content },
    { "GET", "/{level}/{id}/module", h_module },
    { "GET", "/studies/{id}/module-patient", h_module_patient },
    { "GET", "/{level}/{id}/shared-tags", h_shared_tags },
    { "GET", "/{level}/{id}/instances-tags", h_instances_tags },
};

const RestRouteTable rest_routes_content = { routes, sizeof routes / sizeof routes[0] };
