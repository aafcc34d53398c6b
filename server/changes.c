/* changes.c -- the changes log as the edges see it: logging a change, Orthanc's /changes
 * JSON ({Changes, Done, Last}) and clearing. Seq is global and never reused. */
#include <stdio.h>
#include <stdlib.h>

#include "server/server.h"
#include "storage/storage.h"

bool srv_change_log(SrvError *err, Srv *srv, const char *type, int level, const char *id)
{
    StoError se = { 0 };
    if (idx_change_add(&se, srv->db, type, level, id)) return true;
    srv_error_from_sto(err, &se);
    return false;
}

cJSON *srv_changes_json(SrvError *err, Srv *srv, int64_t since, uint64_t limit, bool last_only)
{
    IdxChange *ch = NULL;
    size_t n = 0;
    bool done = true;
    int64_t last = 0;
    StoError se = { 0 };
    bool ok = last_only ? idx_changes_last(&se, srv->db, &ch, &n, &last)
                        : idx_changes(&se, srv->db, since, limit, &ch, &n, &done, &last);
    if (!ok) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        char path[96];
        cJSON_AddStringToObject(c, "ChangeType", ch[i].type);
        cJSON_AddStringToObject(c, "Date", ch[i].date);
        cJSON_AddStringToObject(c, "ID", ch[i].id);
        snprintf(path, sizeof path, "/%s/%s", srv_level_route(ch[i].level), ch[i].id);
        cJSON_AddStringToObject(c, "Path", path);
        cJSON_AddStringToObject(c, "ResourceType", srv_level_name(ch[i].level));
        cJSON_AddNumberToObject(c, "Seq", (double)ch[i].seq);
        cJSON_AddItemToArray(a, c);
    }
    free(ch);
    cJSON_AddItemToObject(o, "Changes", a);
    cJSON_AddBoolToObject(o, "Done", done);
    cJSON_AddNumberToObject(o, "Last", (double)last);
    return o;
}

bool srv_changes_clear(SrvError *err, Srv *srv)
{
    StoError se = { 0 };
    if (idx_changes_clear(&se, srv->db)) return true;
    srv_error_from_sto(err, &se);
    return false;
}
