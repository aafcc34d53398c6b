/* routes.c -- the route table, one line per route, and the matcher.
 * "{level}" matches only patients|studies|series|instances; any other "{x}" matches any one
 * segment (its value goes to call->params in order);
 * a final "*" matches one or more remaining segments. A path that matches some pattern with
 * another method is 405 with Allow; no match at all is 404. As Orthanc 1.10.1, GET on /tools
 * and on /instances/{id}/frames/{n} lists the names that follow that path in the table
 * (h_list_children). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest_int.h"

/* The core routes. Other families (h_<family>.c) define their own tables, listed in
 * `tables` below. */
static const RestRoute core_routes[] = {
    { "POST", "/instances", h_upload },
    { "GET", "/patients", h_list },
    { "GET", "/studies", h_list },
    { "GET", "/series", h_list },
    { "GET", "/instances", h_list },
    { "GET", "/{level}/{id}", h_get },
    { "DELETE", "/{level}/{id}", h_delete },
    { "GET", "/{level}/{id}/statistics", h_statistics_resource },
    { "GET", "/{level}/{id}/patients", h_related },
    { "GET", "/{level}/{id}/studies", h_related },
    { "GET", "/{level}/{id}/series", h_related },
    { "GET", "/{level}/{id}/instances", h_related },
    { "GET", "/{level}/{id}/patient", h_related },
    { "GET", "/{level}/{id}/study", h_related },
    { "GET", "/instances/{id}/file", h_file },
    { "GET", "/instances/{id}/tags", h_tags },
    { "GET", "/instances/{id}/simplified-tags", h_simplified_tags },
    { "GET", "/instances/{id}/header", h_header },
    { "GET", "/system", h_system },
    { "GET", "/statistics", h_statistics },
    { "GET", "/changes", h_changes },
    { "DELETE", "/changes", h_changes_delete },
};

static const RestRouteTable core_table = { core_routes, sizeof core_routes / sizeof core_routes[0] };

static void h_list_children(RestCall *call);
/* The folder-like paths Orthanc 1.10.1 lists (RestApi::AutoListChildren). */
static const RestRoute listing_routes[] = {
    { "GET", "/tools", h_list_children },
    { "GET", "/instances/{id}/frames/{n}", h_list_children },
};
static const RestRouteTable listing_table = { listing_routes, sizeof listing_routes / sizeof listing_routes[0] };

/* Order matters only where patterns overlap: the first match wins. */
static const RestRouteTable *const tables[] = {
    &core_table,
    &rest_routes_protected,
    &rest_routes_jobs,
    &rest_routes_modify,
    &rest_routes_content,
    &rest_routes_metadata,
    &rest_routes_tools,
    &rest_routes_metrics,
    &rest_routes_modalities,
    &rest_routes_peers,
    &rest_routes_dwclient,
    &rest_routes_images,
    &rest_routes_archive,
    &rest_routes_dicomweb,
    &rest_routes_www,
    &rest_routes_ohif,
    &rest_routes_reorganize,
    &rest_routes_stow,
    &rest_routes_wado,
    &rest_routes_admin,
    &listing_table,
};
#define NTABLES (sizeof tables / sizeof tables[0])

int rest_level_from_route(const char *segment)
{
    for (int l = 0; l < SRV_LEVELS; l++)
        if (!strcmp(segment, srv_level_route(l))) return l;
    return -1;
}

/* Matches the path against a pattern, filling params. */
static bool match(RestCall *call, const char *pattern)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", pattern);
    char *save = NULL;
    size_t i = 0;
    call->nparams = 0;
    for (char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save), i++) {
        if (!strcmp(p, "*")) return i < call->nseg;
        if (i >= call->nseg) return false;
        if (!strcmp(p, "{level}") && rest_level_from_route(call->seg[i]) < 0) return false;
        if (p[0] == '{') {
            if (call->nparams < REST_MAX_PARAMS) call->params[call->nparams++] = call->seg[i];
        } else if (strcmp(p, call->seg[i]) != 0) {
            return false;
        }
    }
    return i == call->nseg;
}

/* The literal segment that follows the call's path in pattern, when the path is a strict
 * prefix of it ("{x}" segments of the pattern match any one path segment). */
static bool child_of(const RestCall *call, const char *pattern, char *child, size_t size)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", pattern);
    char *save = NULL;
    size_t i = 0;
    for (char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save), i++) {
        if (i == call->nseg) {
            if (p[0] == '{' || !strcmp(p, "*")) return false;
            snprintf(child, size, "%s", p);
            return true;
        }
        if (!strcmp(p, "*")) return false;
        if (!strcmp(p, "{level}") && rest_level_from_route(call->seg[i]) < 0) return false;
        if (p[0] != '{' && strcmp(p, call->seg[i]) != 0) return false;
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET on a folder-like path: the sorted names of its children, whatever their methods. */
static void h_list_children(RestCall *call)
{
    enum { MAX_CHILDREN = 256 };
    const char *names[MAX_CHILDREN];
    char store[MAX_CHILDREN][64];
    size_t n = 0;
    for (size_t t = 0; t < NTABLES; t++) {
        for (size_t r = 0; r < tables[t]->n && n < MAX_CHILDREN; r++) {
            char c[64];
            if (!child_of(call, tables[t]->routes[r].pattern, c, sizeof c)) continue;
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++) seen = !strcmp(names[k], c);
            if (seen) continue;
            snprintf(store[n], sizeof store[n], "%s", c);
            names[n] = store[n];
            n++;
        }
    }
    qsort(names, n, sizeof names[0], cmp_str);
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateString(names[k]));
    rest_reply_json(call, 200, a);
}

/* Routes whose body is streamed (RestBodyFn); each also has its RestRoute above. */
static const RestBodyRouteTable *const body_tables[] = {
    &rest_body_routes_stow,
};

RestBodyFn rest_body_route_find(RestCall *call)
{
    /* DicomWeb.Root moves the DICOMweb routes (h_dicomweb.c); rest_dispatch maps the segments
     * again later, so they are put back as they were (params point into segbuf, not seg). */
    char *seg[REST_MAX_SEGMENTS];
    size_t nseg = call->nseg;
    memcpy(seg, call->seg, sizeof seg);
    rest_dicomweb_root(call);
    RestBodyFn fn = NULL;
    for (size_t t = 0; !fn && t < sizeof body_tables / sizeof body_tables[0]; t++)
        for (size_t r = 0; r < body_tables[t]->n; r++) {
            const RestBodyRoute *route = &body_tables[t]->routes[r];
            if (!strcmp(route->method, call->method) && match(call, route->pattern)) { fn = route->body; break; }
        }
    memcpy(call->seg, seg, sizeof seg);
    call->nseg = nseg;
    return fn;
}

void rest_dispatch(RestCall *call)
{
    char allow[64] = "";
    rest_dicomweb_root(call);
    for (size_t t = 0; t < NTABLES; t++) {
        for (size_t r = 0; r < tables[t]->n; r++) {
            const RestRoute *route = &tables[t]->routes[r];
            if (!match(call, route->pattern)) continue;
            if (!strcmp(route->method, call->method)) {
                route->fn(call);
                return;
            }
            if (!strstr(allow, route->method) && strlen(allow) + strlen(route->method) + 2 < sizeof allow) {
                if (allow[0]) strcat(allow, ",");
                strcat(allow, route->method);
            }
        }
    }
    if (allow[0]) {
        /* as Orthanc: the Allow header only, no body nor Content-Type */
        rest_reply_buffer(call, 405, NULL, NULL, 0);
        snprintf(call->allow, sizeof call->allow, "%s", allow);
        return;
    }
    rest_fail(call, SRV_UNKNOWN_RESOURCE, "unknown route %s", call->url);
}
