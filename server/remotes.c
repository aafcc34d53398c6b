/* remotes.c -- a named registry of HTTP remotes (see remotes.h).
 *
 * DESIGN: one sorted array of (name, remote, from_rest) behind the registry's mutex; lookups
 * copy a remote out, so no network call ever runs under the lock. The REST-added entries are
 * saved after each change as one JSON object.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/remotes.h"

typedef struct Entry {
    char *name;
    HttpcRemote r;
    bool from_rest;
} Entry;

struct Remotes {
    pthread_mutex_t mu;
    Entry *e; /* sorted by name */
    size_t n;
    char what[64];
    char path[4096];
};

static void entry_clear(Entry *p)
{
    free(p->name);
    httpc_remote_cleanup(&p->r);
    memset(p, 0, sizeof *p);
}

/* Inserts or replaces (takes r). mu held. */
static bool set_locked(SrvError *err, Remotes *g, const char *name, HttpcRemote *r, bool from_rest)
{
    size_t i = 0;
    while (i < g->n && strcmp(g->e[i].name, name) < 0) i++;
    if (i < g->n && !strcmp(g->e[i].name, name)) {
        httpc_remote_cleanup(&g->e[i].r);
        g->e[i].r = *r;
        g->e[i].from_rest = from_rest;
        return true;
    }
    Entry *grown = realloc(g->e, (g->n + 1) * sizeof *grown);
    char *nm = strdup(name);
    if (!grown || !nm) {
        if (grown) g->e = grown;
        free(nm);
        httpc_remote_cleanup(r);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    g->e = grown;
    memmove(&g->e[i + 1], &g->e[i], (g->n - i) * sizeof *g->e);
    g->e[i] = (Entry){ nm, *r, from_rest };
    g->n++;
    return true;
}

static bool save_locked(SrvError *err, Remotes *g)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root && i < g->n; i++)
        if (g->e[i].from_rest) cJSON_AddItemToObject(root, g->e[i].name, httpc_remote_full_json(&g->e[i].r));
    return srv_save_json(err, g->path, root);
}

/* Adds every member of a JSON object; a bad one fails with its name. */
static bool add_all(SrvError *err, Remotes *g, const cJSON *root, const char *source, bool from_rest)
{
    for (const cJSON *m = root ? root->child : NULL; m; m = m->next) {
        HttpcRemote r;
        SrvError pe = { 0 };
        if (!httpc_remote_parse(&pe, m, &r)) {
            httpc_remote_cleanup(&r);
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s: %s \"%.100s\": %s", source, g->what, m->string, pe.message);
        }
        if (!set_locked(err, g, m->string, &r, from_rest)) return false;
    }
    return true;
}

Remotes *remotes_open(SrvError *err, const char *what, const char *path, const char *config)
{
    Remotes *g = calloc(1, sizeof *g);
    if (!g) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    snprintf(g->what, sizeof g->what, "%s", what);
    snprintf(g->path, sizeof g->path, "%s", path);
    bool ok = true;
    if (config) {
        cJSON *root = cJSON_Parse(config);
        ok = add_all(err, g, root, what, false);
        cJSON_Delete(root);
    }
    FILE *f = ok ? fopen(g->path, "rb") : NULL;
    if (f) {
        char *text = NULL;
        long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) &&
            fread(text, 1, (size_t)n, f) == (size_t)n) {
            text[n] = '\0';
            cJSON *root = cJSON_Parse(text);
            if (cJSON_IsObject(root)) ok = add_all(err, g, root, g->path, true);
            else ok = srv_fail(err, SRV_BAD_FILE_FORMAT, "%s is not a JSON object", g->path);
            cJSON_Delete(root);
        } else {
            ok = srv_fail(err, SRV_INTERNAL, "cannot read %s", g->path);
        }
        free(text);
        fclose(f);
    }
    if (!ok) {
        remotes_close(g);
        return NULL;
    }
    return g;
}

void remotes_close(Remotes *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) entry_clear(&g->e[i]);
    free(g->e);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

bool remotes_get(Remotes *g, const char *name, HttpcRemote *out)
{
    bool found = false;
    memset(out, 0, sizeof *out);
    if (!g) return false;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->n && !found; i++)
        if (!strcmp(g->e[i].name, name)) found = httpc_remote_copy(NULL, &g->e[i].r, out);
    pthread_mutex_unlock(&g->mu);
    return found;
}

cJSON *remotes_list_json(Remotes *g, bool expand)
{
    cJSON *o = expand ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!g) return o;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; o && i < g->n; i++) {
        if (expand) cJSON_AddItemToObject(o, g->e[i].name, httpc_remote_public_json(&g->e[i].r));
        else cJSON_AddItemToArray(o, cJSON_CreateString(g->e[i].name));
    }
    pthread_mutex_unlock(&g->mu);
    return o;
}

bool remotes_put(SrvError *err, Remotes *g, const char *name, const cJSON *body)
{
    if (!name || !*name || strlen(name) > 256) return srv_fail(err, SRV_BAD_REQUEST, "bad name");
    HttpcRemote r;
    if (!httpc_remote_parse(err, body, &r)) {
        httpc_remote_cleanup(&r);
        return false;
    }
    pthread_mutex_lock(&g->mu);
    bool ok = set_locked(err, g, name, &r, true) && save_locked(err, g);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

bool remotes_delete(SrvError *err, Remotes *g, const char *name, const char *unknown_prefix)
{
    bool ok;
    pthread_mutex_lock(&g->mu);
    size_t i = 0;
    while (i < g->n && strcmp(g->e[i].name, name) != 0) i++;
    if (i < g->n) {
        bool was_rest = g->e[i].from_rest;
        entry_clear(&g->e[i]);
        memmove(&g->e[i], &g->e[i + 1], (g->n - i - 1) * sizeof *g->e);
        g->n--;
        ok = !was_rest || save_locked(err, g);
    } else {
        ok = srv_fail(err, SRV_INEXISTENT_ITEM, "%s: %.200s", unknown_prefix, name);
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}
