/* modality.c -- the registry of remote modalities (see modality.h).
 *
 * DESIGN: configured modalities are read from Cfg on every lookup (read-only); the REST-added
 * ones live in a small array behind one mutex and are saved as one JSON object to
 * IndexDirectory/modalities.json (temp file, fsync, rename) after each change. A REST
 * modality with the name of a configured one replaces it (as Orthanc's PUT does).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/modality.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static SrvModality *g_rest; /* REST-added */
static size_t g_nrest;
static char g_path[4096];

static void from_cfg(const CfgModality *c, SrvModality *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", c->name);
    snprintf(m->aet, sizeof m->aet, "%s", c->aet);
    snprintf(m->host, sizeof m->host, "%s", c->host);
    m->port = c->port;
    m->allow_echo = c->allow_echo;
    m->allow_find = c->allow_find;
    m->allow_move = c->allow_move;
    m->allow_get = c->allow_get;
    m->allow_store = c->allow_store;
    snprintf(m->manufacturer, sizeof m->manufacturer, "%s", c->manufacturer ? c->manufacturer : "Generic");
    snprintf(m->local_aet, sizeof m->local_aet, "%s", c->local_aet ? c->local_aet : "");
    m->timeout = c->timeout;
    m->parallel = c->parallel > 1 ? c->parallel : 1;
}

/* Parses Orthanc's two forms into m (name set by the caller). */
bool modality_parse(SrvError *err, const cJSON *v, SrvModality *m)
{
    const cJSON *aet, *host, *port;
    m->allow_echo = m->allow_find = m->allow_move = m->allow_get = m->allow_store = true;
    m->parallel = 1;
    snprintf(m->manufacturer, sizeof m->manufacturer, "Generic");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) >= 3) {
        aet = cJSON_GetArrayItem(v, 0);
        host = cJSON_GetArrayItem(v, 1);
        port = cJSON_GetArrayItem(v, 2);
        const cJSON *man = cJSON_GetArrayItem(v, 3);
        if (cJSON_IsString(man)) snprintf(m->manufacturer, sizeof m->manufacturer, "%s", man->valuestring);
    } else if (cJSON_IsObject(v)) {
        aet = cJSON_GetObjectItem(v, "AET");
        host = cJSON_GetObjectItem(v, "Host");
        port = cJSON_GetObjectItem(v, "Port");
        static const char *const flags[] = { "AllowEcho", "AllowFind", "AllowMove", "AllowGet", "AllowStore" };
        bool *dst[] = { &m->allow_echo, &m->allow_find, &m->allow_move, &m->allow_get, &m->allow_store };
        for (size_t f = 0; f < 5; f++) {
            const cJSON *b = cJSON_GetObjectItem(v, flags[f]);
            if (b && !cJSON_IsBool(b)) return srv_fail(err, SRV_BAD_REQUEST, "%s must be a boolean", flags[f]);
            if (b) *dst[f] = cJSON_IsTrue(b);
        }
        const cJSON *x = cJSON_GetObjectItem(v, "Manufacturer");
        if (cJSON_IsString(x)) snprintf(m->manufacturer, sizeof m->manufacturer, "%s", x->valuestring);
        x = cJSON_GetObjectItem(v, "LocalAet");
        if (cJSON_IsString(x)) snprintf(m->local_aet, sizeof m->local_aet, "%s", x->valuestring);
        x = cJSON_GetObjectItem(v, "Timeout");
        if (cJSON_IsNumber(x) && x->valuedouble >= 0) m->timeout = (int)x->valuedouble;
        if (!cfg_parallel_associations(cJSON_GetObjectItem(v, "ParallelAssociations"), &m->parallel))
            return srv_fail(err, SRV_BAD_REQUEST, "ParallelAssociations must be an integer from 1 to %d",
                            CFG_MAX_PARALLEL_ASSOCIATIONS);
    } else {
        return srv_fail(err, SRV_BAD_REQUEST, "a modality is [AET, host, port] or {\"AET\", \"Host\", \"Port\"}");
    }
    int p = -1;
    if (cJSON_IsNumber(port) && port->valuedouble >= 1 && port->valuedouble <= 65535) p = (int)port->valuedouble;
    else if (cJSON_IsString(port) && *port->valuestring &&
             strspn(port->valuestring, "0123456789") == strlen(port->valuestring) &&
             strlen(port->valuestring) <= 5)
        p = atoi(port->valuestring);
    if (!cJSON_IsString(aet) || !*aet->valuestring || strlen(aet->valuestring) > 16 ||
        !cJSON_IsString(host) || !*host->valuestring || p < 1 || p > 65535)
        return srv_fail(err, SRV_BAD_REQUEST,
                        "a modality needs an AET (1-16 characters), a host and a port 1-65535");
    snprintf(m->aet, sizeof m->aet, "%s", aet->valuestring);
    snprintf(m->host, sizeof m->host, "%s", host->valuestring);
    m->port = p;
    return true;
}

cJSON *modality_json(const SrvModality *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "AET", m->aet);
    cJSON_AddBoolToObject(o, "AllowEcho", m->allow_echo);
    cJSON_AddBoolToObject(o, "AllowEventReport", true);
    cJSON_AddBoolToObject(o, "AllowFind", m->allow_find);
    cJSON_AddBoolToObject(o, "AllowFindWorklist", true);
    cJSON_AddBoolToObject(o, "AllowGet", m->allow_get);
    cJSON_AddBoolToObject(o, "AllowMove", m->allow_move);
    cJSON_AddBoolToObject(o, "AllowNAction", true);
    cJSON_AddBoolToObject(o, "AllowStore", m->allow_store);
    cJSON_AddBoolToObject(o, "AllowTranscoding", true);
    cJSON_AddStringToObject(o, "Host", m->host);
    cJSON_AddStringToObject(o, "LocalAet", m->local_aet);
    cJSON_AddStringToObject(o, "Manufacturer", m->manufacturer);
    /* ours: shown only when set, so Orthanc's shape stays as it is by default */
    if (m->parallel > 1) cJSON_AddNumberToObject(o, "ParallelAssociations", m->parallel);
    cJSON_AddNumberToObject(o, "Port", m->port);
    cJSON_AddNumberToObject(o, "Timeout", m->timeout);
    cJSON_AddBoolToObject(o, "UseDicomTls", false);
    return o;
}

/* Saves g_rest (g_mu held). */
static bool save_locked(SrvError *err)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root && i < g_nrest; i++)
        cJSON_AddItemToObject(root, g_rest[i].name, modality_json(&g_rest[i]));
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    size_t n = strlen(text), off = 0;
    while (ok && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) off += (size_t)w;
    }
    if (ok) ok = fsync(fd) == 0;
    if (fd >= 0) close(fd);
    if (ok) ok = rename(tmp, g_path) == 0;
    int e = errno;
    free(text);
    if (!ok) {
        unlink(tmp);
        return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot save %s: %s", g_path, strerror(e));
    }
    return true;
}

bool modality_init(SrvError *err, Srv *srv)
{
    snprintf(g_path, sizeof g_path, "%s/modalities.json", srv->cfg.index_dir ? srv->cfg.index_dir : srv->cfg.storage_dir);
    FILE *f = fopen(g_path, "rb");
    if (!f) return true;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = n > 0 ? malloc((size_t)n + 1) : NULL;
    bool ok = text && fread(text, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(text);
        return srv_fail(err, SRV_INTERNAL, "cannot read %s", g_path);
    }
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return srv_fail(err, SRV_BAD_FILE_FORMAT, "%s is not a JSON object", g_path);
    }
    size_t count = (size_t)cJSON_GetArraySize(root);
    g_rest = calloc(count ? count : 1, sizeof *g_rest);
    if (!g_rest) {
        cJSON_Delete(root);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    for (const cJSON *m = root->child; m; m = m->next) {
        SrvModality x = { 0 };
        SrvError pe = { 0 };
        if (!modality_parse(&pe, m, &x)) {
            SRV_LOG_WARN("modality", "%s: modality \"%s\" skipped: %s", g_path, m->string, pe.message);
            continue;
        }
        snprintf(x.name, sizeof x.name, "%s", m->string);
        g_rest[g_nrest++] = x;
    }
    cJSON_Delete(root);
    return true;
}

void modality_cleanup(void)
{
    pthread_mutex_lock(&g_mu);
    free(g_rest);
    g_rest = NULL;
    g_nrest = 0;
    pthread_mutex_unlock(&g_mu);
}

static bool cfg_visible(const Srv *srv, const char *name)
{
    if (srv->cfg.dicom_modalities_in_database) return false;
    for (size_t i = 0; i < g_nrest; i++)
        if (!strcmp(g_rest[i].name, name)) return false; /* replaced through REST */
    return true;
}

bool modality_by_name(Srv *srv, const char *name, SrvModality *out)
{
    bool found = false;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nrest && !found; i++)
        if (!strcmp(g_rest[i].name, name)) {
            *out = g_rest[i];
            found = true;
        }
    for (size_t i = 0; i < srv->cfg.nmodalities && !found; i++)
        if (!strcmp(srv->cfg.modalities[i].name, name) && cfg_visible(srv, name)) {
            from_cfg(&srv->cfg.modalities[i], out);
            found = true;
        }
    pthread_mutex_unlock(&g_mu);
    return found;
}

static bool aet_match(const Srv *srv, const SrvModality *m, const char *aet, const char *host)
{
    if (strcasecmp(m->aet, aet) != 0) return false;
    if (host && srv->cfg.dicom_check_modality_host && strcmp(m->host, host) != 0) return false;
    return true;
}

bool modality_by_aet(Srv *srv, const char *aet, const char *host, SrvModality *out)
{
    bool found = false;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nrest && !found; i++)
        if (aet_match(srv, &g_rest[i], aet, host)) {
            *out = g_rest[i];
            found = true;
        }
    for (size_t i = 0; i < srv->cfg.nmodalities && !found; i++) {
        SrvModality m;
        from_cfg(&srv->cfg.modalities[i], &m);
        if (cfg_visible(srv, m.name) && aet_match(srv, &m, aet, host)) {
            *out = m;
            found = true;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return found;
}

cJSON *modality_list_json(Srv *srv, bool expand)
{
    cJSON *out = expand ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!out) return NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < srv->cfg.nmodalities; i++) {
        if (!cfg_visible(srv, srv->cfg.modalities[i].name)) continue;
        SrvModality m;
        from_cfg(&srv->cfg.modalities[i], &m);
        if (expand) cJSON_AddItemToObject(out, m.name, modality_json(&m));
        else cJSON_AddItemToArray(out, cJSON_CreateString(m.name));
    }
    for (size_t i = 0; i < g_nrest; i++) {
        if (expand) cJSON_AddItemToObject(out, g_rest[i].name, modality_json(&g_rest[i]));
        else cJSON_AddItemToArray(out, cJSON_CreateString(g_rest[i].name));
    }
    pthread_mutex_unlock(&g_mu);
    return out;
}

bool modality_put(SrvError *err, Srv *srv, const char *name, const cJSON *body)
{
    (void)srv;
    SrvModality m = { 0 };
    if (!name || !*name || strlen(name) >= sizeof m.name)
        return srv_fail(err, SRV_BAD_REQUEST, "bad modality name");
    if (!modality_parse(err, body, &m)) return false;
    snprintf(m.name, sizeof m.name, "%s", name);
    pthread_mutex_lock(&g_mu);
    size_t i = 0;
    while (i < g_nrest && strcmp(g_rest[i].name, name) != 0) i++;
    bool ok = true;
    if (i == g_nrest) {
        SrvModality *p = realloc(g_rest, (g_nrest + 1) * sizeof *p);
        if (!p) ok = srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        else {
            g_rest = p;
            g_nrest++;
        }
    }
    if (ok) {
        g_rest[i] = m;
        ok = save_locked(err);
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}

bool modality_delete(SrvError *err, Srv *srv, const char *name)
{
    pthread_mutex_lock(&g_mu);
    size_t i = 0;
    while (i < g_nrest && strcmp(g_rest[i].name, name) != 0) i++;
    bool ok;
    if (i < g_nrest) {
        memmove(&g_rest[i], &g_rest[i + 1], (g_nrest - i - 1) * sizeof *g_rest);
        g_nrest--;
        ok = save_locked(err);
    } else {
        bool in_cfg = false;
        for (size_t k = 0; k < srv->cfg.nmodalities; k++)
            in_cfg = in_cfg || !strcmp(srv->cfg.modalities[k].name, name);
        /* a configured modality cannot be removed from the file; Orthanc refuses too */
        ok = srv_fail(err, in_cfg ? SRV_BAD_REQUEST : SRV_UNKNOWN_RESOURCE,
                      in_cfg ? "modality \"%s\" comes from the configuration file" : "unknown modality: %s", name);
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}
