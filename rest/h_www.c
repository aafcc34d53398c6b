/* h_www.c -- the web interface: "/" and "/app" redirect to "/app/", and /app/<file> answers
 * the files of rest/www/ embedded in the binary (www.h), with their Content-Type and ETag;
 * a request whose If-None-Match names the current ETag gets 304 and no body. Cache-Control
 * "no-cache" makes the browser revalidate each time (a 304 costs a few hundred bytes), so a
 * new binary is picked up at once.
 * The page (index.html) asks for its files under /app/v/<www_version>/<file>: those answers
 * are cached for good ("immutable", a year), since a changed file set has another version
 * and so other URLs. A warm load then revalidates index.html alone instead of its 15 files
 * (three waves of 304s over the browser's 6 connections: most of a warm load's time on a
 * busy machine). Another version answers 404: its files are gone with the old binary.
 * The files sit behind the same access rules as the API (auth.c runs before any route),
 * and the page itself only calls the public REST routes. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rest/rest_int.h"
#include "rest/www.h"

static const WwwAsset *find_asset(const char *path)
{
    for (size_t i = 0; i < www_nassets; i++)
        if (!strcmp(www_assets[i].path, path)) return &www_assets[i];
    return NULL;
}

/* Relative Locations, so the redirects also hold behind a reverse proxy's path prefix. */
static void redirect(RestCall *call, const char *location)
{
    rest_reply_text(call, 302, "text/plain", "");
    rest_add_header(call, MHD_HTTP_HEADER_LOCATION, location);
}

/* GET / */
static void h_root(RestCall *call)
{
    redirect(call, "app/");
}

/* GET /app, /app/, /app/<path> */
static void h_app(RestCall *call)
{
    const char *url = call->url;
    if (!strcmp(url, "/app")) {
        redirect(call, "app/");
        return;
    }
    const char *rel = url + 4; /* after "/app" */
    bool versioned = false;
    if (!strncmp(rel, "/v/", 3)) {
        size_t vlen = strlen(www_version);
        if (strncmp(rel + 3, www_version, vlen) || rel[3 + vlen] != '/') {
            rest_fail(call, SRV_UNKNOWN_RESOURCE, "the web interface has another version now: %s", url);
            return;
        }
        rel += 3 + vlen;
        versioned = true;
    }
    /* index.html is not part of the version (it names it): never under /v/ */
    if (versioned && (!strcmp(rel, "/") || !strcmp(rel, "/index.html"))) rel = "";
    const WwwAsset *a = find_asset(!strcmp(rel, "/") ? "/index.html" : rel);
    if (!a) {
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "no such file in the web interface: %s", url);
        return;
    }
    const char *inm = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strstr(inm, a->etag)) {
        rest_reply_buffer(call, 304, NULL, NULL, 0);
    } else {
        char *copy = malloc(a->size ? a->size : 1);
        if (!copy) {
            rest_fail(call, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            return;
        }
        memcpy(copy, a->data, a->size);
        rest_reply_buffer(call, 200, a->type, copy, a->size);
    }
    rest_add_header(call, MHD_HTTP_HEADER_ETAG, a->etag);
    rest_add_header(call, MHD_HTTP_HEADER_CACHE_CONTROL,
                    versioned ? "private, max-age=31536000, immutable" : "no-cache");
}

static const RestRoute routes[] = {
    { "GET", "/", h_root },
    { "GET", "/app", h_app },
    { "GET", "/app/*", h_app },
};

const RestRouteTable rest_routes_www = { routes, sizeof routes / sizeof routes[0] };
