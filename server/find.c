/* find.c -- /tools/find (a translation onto the one query engine, server/query.c, which C-FIND
 * uses too: main DICOM tags matched in SQL, other tags on the stored files, as Orthanc does)
 * and identifier lookup (/tools/lookup). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/query.h"
#include "server/server.h"
#include "storage/storage.h"

/* Ceiling of the ID list of one answer (bytes of the char * array: 2^27 IDs). */
#define MAX_ID_LIST ((size_t)1 << 30)

typedef struct FindIds {
    Buf ids; /* char * */
    int rc;  /* BUF_* of the first failure */
} FindIds;

static bool find_collect(void *ctx, const QryAnswer *a)
{
    FindIds *f = ctx;
    char *id = strdup(a->id);
    if (!id) f->rc = BUF_NOMEM;
    else if ((f->rc = buf_append(&f->ids, &id, sizeof id))) free(id);
    return f->rc == BUF_OK;
}

static void free_found(FindIds *f)
{
    for (size_t i = 0; i < BUF_COUNT(&f->ids, char *); i++) free(BUF_AT(&f->ids, char *, i));
    buf_free(&f->ids);
}

bool srv_find(SrvError *err, Srv *srv, int level, const cJSON *query, bool case_sensitive,
              uint64_t since, uint64_t limit, char ***ids, size_t *nids)
{
    bool ok = false;
    size_t n = 0;
    bool empty = false;
    FindIds found = { .rc = BUF_OK };
    buf_init(&found.ids, MAX_ID_LIST);
    *ids = NULL;
    *nids = 0;
    QryKey *keys = calloc((size_t)cJSON_GetArraySize(query) + 1, sizeof *keys);
    if (!keys) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    const cJSON *q;
    cJSON_ArrayForEach(q, query) {
        uint32_t tag;
        if (!dcm_tag_parse(q->string, &tag)) {
            srv_fail(err, SRV_UNKNOWN_DICOM_TAG, "unknown DICOM tag \"%s\" in Query", q->string);
            goto out;
        }
        if (!cJSON_IsString(q)) {
            srv_fail(err, SRV_BAD_REQUEST, "the value of \"%s\" in Query must be a string", q->string);
            goto out;
        }
        char vr[3];
        dcm_tag_vr(tag, vr);
        if ((!strcmp(vr, "DA") || !strcmp(vr, "TM") || !strcmp(vr, "DT")) &&
            strpbrk(q->valuestring, "*?")) {
            srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "Wildcards are not allowed on tag %04x,%04x",
                     tag >> 16, tag & 0xffff);
            goto out;
        }
        if (qry_universal(q->valuestring)) continue; /* matches everything */
        /* a main tag of a level below the one searched: Orthanc's index matches nothing */
        if (qry_main_tag_level(tag, SRV_INSTANCE) > level) empty = true;
        keys[n].tag = tag;
        keys[n++].pattern = q->valuestring;
    }
    /* Orthanc's REST find: CaseSensitive (default false) applies to every tag, and the items
     * of a '\\' list are compared whole */
    QryRequest rq = { .level = level, .keys = keys, .nkeys = n, .case_sensitive_pn = case_sensitive,
                      .case_insensitive_all = !case_sensitive, .literal_lists = true, .sort_by_id = true,
                      .since = since, .limit = limit, .ids_only = true };
    if (!empty && (!qry_run(err, srv, &rq, find_collect, &found, NULL) || found.rc)) {
        if (found.rc == BUF_NOMEM) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        else if (found.rc) srv_fail(err, SRV_INTERNAL, "the list of answers exceeds its ceiling");
        goto out;
    }
    *nids = BUF_COUNT(&found.ids, char *);
    *ids = (char **)(void *)buf_take(&found.ids, NULL);
    ok = true;
out:
    free_found(&found);
    free(keys);
    return ok;
}

cJSON *srv_lookup(SrvError *err, Srv *srv, const char *value)
{
    static const uint32_t keys[IDX_LEVELS] = { 0x00100020, 0x0020000d, 0x0020000e, 0x00080018 };
    cJSON *a = cJSON_CreateArray();
    if (!a) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    for (int l = 0; l < IDX_LEVELS && *value; l++) {
        /* case-insensitive, as Orthanc's identifier lookup (it keeps identifiers upper-cased) */
        IdxFindConstraint c = { .level = l, .tag = keys[l], .pattern = value, .case_insensitive = true };
        char **ids = NULL;
        size_t n = 0;
        StoError se = { 0 };
        if (strchr(value, '\\')) break; /* a list is not one identifier */
        if (!idx_find(&se, srv->db, l, &c, 1, 0, 0, &ids, &n)) {
            cJSON_Delete(a);
            srv_error_from_sto(err, &se);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            char path[96];
            snprintf(path, sizeof path, "/%s/%s", srv_level_route(l), ids[i]);
            cJSON_AddStringToObject(o, "ID", ids[i]);
            cJSON_AddStringToObject(o, "Path", path);
            cJSON_AddStringToObject(o, "Type", srv_level_name(l));
            cJSON_AddItemToArray(a, o);
        }
        idx_strings_free(ids, n);
    }
    return a;
}
