/* modality.c -- the registry of remote modalities (see modality.h).
 *
 * DESIGN: one array of modalities behind one mutex, filled at start-up. The modalities put
 * through REST are kept in IndexDirectory/modalities.json, one JSON object saved after each
 * change (temp file, fsync, rename), whatever DicomModalitiesInDatabase says: issue #13 asks
 * for REST-added modalities that survive a restart, where Orthanc 1.10 forgets them unless
 * that option is true. With it false (the default) the registry is DicomModalities plus the
 * saved ones (a saved one replaces a configured one of the same name; DELETE of a configured
 * one lasts until the restart brings the file's back); with it true, as Orthanc, only the saved
 * ones (DicomModalities ignored). Every modality, wherever it comes from, is read by
 * cfg_modality_parse (config.c).
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
static SrvModality *g_list; /* sorted by name (strcmp) */
static size_t g_n;
static char g_path[4096];

static void from_cfg(const CfgModality *c, SrvModality *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", c->name ? c->name : "");
    snprintf(m->aet, sizeof m->aet, "%s", c->aet);
    snprintf(m->host, sizeof m->host, "%s", c->host);
    m->port = c->port;
    m->allow_echo = c->allow_echo;
    m->allow_find = c->allow_find;
    m->allow_move = c->allow_move;
    m->allow_get = c->allow_get;
    m->allow_store = c->allow_store;
    m->allow_find_worklist = c->allow_find_worklist;
    m->allow_n_action = c->allow_n_action;
    m->allow_event_report = c->allow_event_report;
    m->allow_transcoding = c->allow_transcoding;
    m->use_dicom_tls = c->use_dicom_tls;
    snprintf(m->manufacturer, sizeof m->manufacturer, "%s", c->manufacturer ? c->manufacturer : "Generic");
    snprintf(m->local_aet, sizeof m->local_aet, "%s", c->local_aet ? c->local_aet : "");
    m->timeout = c->timeout;
    m->parallel = c->parallel > 1 ? c->parallel : 1;
}

bool modality_parse(SrvError *err, const cJSON *v, SrvModality *m)
{
    CfgModality c;
    if (!cfg_modality_parse(err, v, &c)) return false;
    from_cfg(&c, m);
    cfg_modality_free(&c);
    return true;
}

cJSON *modality_json(const SrvModality *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "AET", m->aet);
    cJSON_AddBoolToObject(o, "AllowEcho", m->allow_echo);
    cJSON_AddBoolToObject(o, "AllowEventReport", m->allow_event_report);
    cJSON_AddBoolToObject(o, "AllowFind", m->allow_find);
    cJSON_AddBoolToObject(o, "AllowFindWorklist", m->allow_find_worklist);
    cJSON_AddBoolToObject(o, "AllowGet", m->allow_get);
    cJSON_AddBoolToObject(o, "AllowMove", m->allow_move);
    cJSON_AddBoolToObject(o, "AllowNAction", m->allow_n_action);
    cJSON_AddBoolToObject(o, "AllowStore", m->allow_store);
    cJSON_AddBoolToObject(o, "AllowTranscoding", m->allow_transcoding);
    cJSON_AddStringToObject(o, "Host", m->host);
    cJSON_AddStringToObject(o, "LocalAet", m->local_aet);
    cJSON_AddStringToObject(o, "Manufacturer", m->manufacturer);
    /* ours: shown only when set, so Orthanc's shape stays as it is by default */
    if (m->parallel > 1) cJSON_AddNumberToObject(o, "ParallelAssociations", m->parallel);
    cJSON_AddNumberToObject(o, "Port", m->port);
    cJSON_AddNumberToObject(o, "Timeout", m->timeout);
    cJSON_AddBoolToObject(o, "UseDicomTls", m->use_dicom_tls);
    return o;
}

/* Index of name in g_list, or where it would go (*found false). g_mu held. */
static size_t find_locked(const char *name, bool *found)
{
    size_t lo = 0, hi = g_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g_list[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

/* Adds or replaces m (g_mu held, or start-up). */
static bool insert_locked(SrvError *err, const SrvModality *m)
{
    bool found;
    size_t i = find_locked(m->name, &found);
    if (!found) {
        SrvModality *p = realloc(g_list, (g_n + 1) * sizeof *p);
        if (!p) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        g_list = p;
        memmove(&g_list[i + 1], &g_list[i], (g_n - i) * sizeof *g_list);
        g_n++;
    }
    g_list[i] = *m;
    return true;
}

/* Saves the REST ones of g_list (g_mu held). */
static bool save_locked(SrvError *err)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root && i < g_n; i++)
        if (g_list[i].saved) cJSON_AddItemToObject(root, g_list[i].name, modality_json(&g_list[i]));
    return srv_save_json(err, g_path, root);
}

bool modality_init(SrvError *err, Srv *srv)
{
    snprintf(g_path, sizeof g_path, "%s/modalities.json", srv->cfg.index_dir ? srv->cfg.index_dir : srv->cfg.storage_dir);
    bool in_db = srv->cfg.dicom_modalities_in_database; /* as Orthanc: the saved ones only */
    for (size_t i = 0; !in_db && i < srv->cfg.nmodalities; i++) {
        SrvModality m;
        from_cfg(&srv->cfg.modalities[i], &m);
        if (!insert_locked(err, &m)) return false;
    }
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
    ok = true;
    for (const cJSON *m = root->child; m && ok; m = m->next) {
        SrvModality x = { 0 };
        SrvError pe = { 0 };
        if (!m->string || strlen(m->string) >= sizeof x.name || !modality_parse(&pe, m, &x)) {
            SRV_LOG_WARN("modality", "%s: modality \"%s\" skipped: %s", g_path, m->string ? m->string : "",
                         pe.message[0] ? pe.message : srv_error_text(pe.code));
            continue;
        }
        snprintf(x.name, sizeof x.name, "%s", m->string);
        x.saved = true;
        ok = insert_locked(err, &x);
    }
    cJSON_Delete(root);
    return ok;
}

void modality_cleanup(void)
{
    pthread_mutex_lock(&g_mu);
    free(g_list);
    g_list = NULL;
    g_n = 0;
    pthread_mutex_unlock(&g_mu);
}

bool modality_by_name(Srv *srv, const char *name, SrvModality *out)
{
    (void)srv;
    bool found;
    pthread_mutex_lock(&g_mu);
    size_t i = find_locked(name, &found);
    if (found) *out = g_list[i];
    pthread_mutex_unlock(&g_mu);
    return found;
}

bool modality_by_aet(Srv *srv, const char *aet, const char *host, SrvModality *out)
{
    bool found = false;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_n && !found; i++) {
        const SrvModality *m = &g_list[i];
        if (strcasecmp(m->aet, aet) != 0) continue;
        if (host && srv->cfg.dicom_check_modality_host && strcmp(m->host, host) != 0) continue;
        *out = *m;
        found = true;
    }
    pthread_mutex_unlock(&g_mu);
    return found;
}

cJSON *modality_list_json(Srv *srv, bool expand)
{
    (void)srv;
    cJSON *out = expand ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!out) return NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_n; i++) {
        if (expand) cJSON_AddItemToObject(out, g_list[i].name, modality_json(&g_list[i]));
        else cJSON_AddItemToArray(out, cJSON_CreateString(g_list[i].name));
    }
    pthread_mutex_unlock(&g_mu);
    return out;
}

bool modality_put(SrvError *err, Srv *srv, const char *name, const cJSON *body)
{
    (void)srv;
    SrvModality m = { 0 };
    if (!name || !*name || strlen(name) >= sizeof m.name)
        return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "bad modality name");
    if (!modality_parse(err, body, &m)) return false;
    snprintf(m.name, sizeof m.name, "%s", name);
    m.saved = true;
    pthread_mutex_lock(&g_mu);
    bool ok = insert_locked(err, &m) && save_locked(err);
    pthread_mutex_unlock(&g_mu);
    return ok;
}

bool modality_delete(SrvError *err, Srv *srv, const char *name)
{
    (void)srv;
    bool found;
    pthread_mutex_lock(&g_mu);
    size_t i = find_locked(name, &found);
    bool ok;
    if (found) {
        memmove(&g_list[i], &g_list[i + 1], (g_n - i - 1) * sizeof *g_list);
        g_n--;
        ok = save_locked(err);
    } else {
        ok = srv_fail(err, SRV_INEXISTENT_ITEM, "Unknown DICOM modality with symbolic name: %s", name);
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}
