/* h_content.c -- the DICOM views of stored instances beyond /tags: raw values by path
 * (/instances/{id}/content/...), the DICOM module of each level (/module, /module-patient),
 * the tags shared by all instances of a resource (/shared-tags) and every instance's tags at
 * once (/instances-tags).
 *
 * DESIGN: everything is computed from Orthanc's full /tags JSON of an instance
 * (dcm_to_json_ex, header-only parse), then filtered and, for ?simplify / ?short, converted
 * the way dcm_to_json would have (to_format below): one code path for the value rules (UTF-8,
 * TooLong, ?ignore-length=). The module tag lists are ours (DCMTK has no module tables and
 * Orthanc keeps hand-written ones too): PS3.3 Patient (C.7.1.1); General Study + Patient Study
 * (C.7.2.1, C.7.2.2) plus the study main tags; General Series + General Equipment + Frame of
 * Reference UID plus the series main tags; SOP Common, General Image, Image Plane and Image
 * Pixel (without PixelData) plus the instance main tags. See docs/compatibility.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "rest/rest_int.h"

#define MAX_TOO_LONG 256 /* Orthanc's REST threshold for TooLong */


static void fail_dcm(RestCall *call, const DcmError *de)
{
    SrvError e = { 0 };
    srv_error_from_dcm(&e, de);
    rest_reply_error(call, &e);
}

/* Reads the stored file of an instance; *buf malloc'd. Reply set on failure. */
static bool read_file(RestCall *call, const char *id, void **buf, size_t *len)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, call->srv->db, IDX_INSTANCE, id, &r)) {
        rest_fail_sto(call, &se);
        return false;
    }
    bool ok = sto_area_read(&se, call->srv->area, r.uuid, buf, len);
    idx_resource_cleanup(&r);
    if (!ok) {
        SrvError e = { 0 };
        srv_error_from_sto(&e, &se);
        if (se.code == STO_ERR_NOT_FOUND) e.code = SRV_INEXISTENT_FILE;
        rest_reply_error(call, &e);
    }
    return ok;
}

/* ---- /instances/{id}/content[/...] ----------------------------------------------------- */

void h_content(RestCall *call)
{
    void *buf = NULL;
    size_t len = 0;
    if (!read_file(call, call->params[0], &buf, &len)) return;
    const char *path[REST_MAX_SEGMENTS];
    size_t npath = 0;
    for (size_t i = 3; i < call->nseg && npath < REST_MAX_SEGMENTS; i++) path[npath++] = call->seg[i];
    DcmError de = { 0 };
    DcmContent c = { 0 };
    bool ok = dcm_content(&de, buf, len, path, npath, &c);
    free(buf);
    if (!ok) {
        if (de.code == DCM_ERR_MISSING)
            rest_fail(call, SRV_UNKNOWN_RESOURCE, "%s", de.message);
        else if (de.code == DCM_ERR_ARG)
            rest_fail(call, SRV_UNKNOWN_DICOM_TAG, "%s", de.message);
        else
            fail_dcm(call, &de);
        return;
    }
    if (c.is_list) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < c.nnames; i++) cJSON_AddItemToArray(a, cJSON_CreateString(c.names[i]));
        rest_reply_json(call, 200, a);
    } else {
        rest_reply_buffer(call, 200, c.is_text ? "text/plain; charset=utf-8" : "application/octet-stream",
                          c.data, c.len);
        c.data = NULL; /* handed over */
    }
    dcm_content_cleanup(&c);
}

/* ---- tags JSON helpers ------------------------------------------------------------------ */

/* Format of the answer from the query: ?simplify, ?short, else full. */
static int query_format(const RestCall *call)
{
    return rest_arg_bool(call, "simplify") ? DCM_JSON_SIMPLIFY
         : rest_arg_bool(call, "short")    ? DCM_JSON_SHORT
                                           : DCM_JSON_FULL;
}

/* Parses ?ignore-length=tag,tag ("" = every tag). Returns the max length to use; fills
 * tags (at most cap). false and a 400 reply on an unknown tag. */
bool rest_ignore_length(RestCall *call, size_t *max_length, uint32_t *tags, size_t cap, size_t *n)
{
    *n = 0;
    *max_length = MAX_TOO_LONG;
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
        if (!dcm_tag_parse(item, &tag)) {
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

/* Full /tags JSON of one instance (reply set on failure, NULL returned). */
static cJSON *instance_tags(RestCall *call, const char *id, size_t max_length, const uint32_t *ign,
                            size_t nign)
{
    void *buf = NULL;
    size_t len = 0;
    if (!read_file(call, id, &buf, &len)) return NULL;
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    bool ok = dcm_parse(&de, buf, len, DCM_PARSE_HEADER_ONLY, &obj);
    free(buf);
    if (!ok) {
        SrvError e = { 0 };
        srv_error_from_dcm(&e, &de);
        e.code = SRV_CORRUPTED_FILE;
        rest_reply_error(call, &e);
        return NULL;
    }
    cJSON *j = dcm_to_json_ex(&de, obj, DCM_JSON_FULL, max_length, ign, nign);
    dcm_object_destroy(obj);
    if (!j) fail_dcm(call, &de);
    return j;
}

/* Converts a full /tags tree into the simplified or short form (as dcm_to_json would). */
static cJSON *to_format(const cJSON *full, int format)
{
    if (format == DCM_JSON_FULL) return cJSON_Duplicate(full, 1);
    cJSON *o = cJSON_CreateObject();
    const cJSON *e;
    cJSON_ArrayForEach(e, full) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "Name");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "Type");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(e, "Value");
        const char *key = e->string;
        if (format == DCM_JSON_SIMPLIFY && cJSON_IsString(name) &&
            strcmp(name->valuestring, "Unknown Tag & Data") != 0 &&
            !cJSON_GetObjectItemCaseSensitive(o, name->valuestring))
            key = name->valuestring;
        cJSON *v;
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "Sequence") && cJSON_IsArray(value)) {
            v = cJSON_CreateArray();
            const cJSON *item;
            cJSON_ArrayForEach(item, value) cJSON_AddItemToArray(v, to_format(item, format));
        } else {
            v = value ? cJSON_Duplicate(value, 1) : cJSON_CreateNull();
        }
        cJSON_AddItemToObject(o, key, v);
    }
    return o;
}

/* ---- /module, /module-patient ------------------------------------------------------------- */

static const uint32_t MODULE_PATIENT[] = {
    0x00100010, 0x00100020, 0x00100021, 0x00100022, 0x00100024, 0x00100030, 0x00100032,
    0x00100033, 0x00100034, 0x00100035, 0x00100040, 0x00100200, 0x00101000, 0x00101001,
    0x00101002, 0x00102160, 0x00102201, 0x00102202, 0x00102292, 0x00102293, 0x00102294,
    0x00102295, 0x00102296, 0x00102297, 0x00102298, 0x00102299, 0x00104000, 0x00120062,
    0x00120063, 0x00120064, 0x00081120,
};
static const uint32_t MODULE_STUDY[] = {
    0x0020000d, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050,
    0x00080051, 0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00081032,
    0x00081110, 0x00321034, 0x00321060, 0x00321032, 0x00080080, 0x00081080, 0x00081084,
    0x00101010, 0x00101020, 0x00101021, 0x00101022, 0x00101023, 0x00101024, 0x00101030,
    0x00101080, 0x00102180, 0x001021a0, 0x001021b0, 0x001021c0, 0x001021d0, 0x00102203,
    0x00380010, 0x00380014, 0x00380060, 0x00380062, 0x00380064, 0x00380500, 0x00400250,
    0x00400251,
};
static const uint32_t MODULE_SERIES[] = {
    0x00080060, 0x0020000e, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050,
    0x00081052, 0x00181030, 0x0008103e, 0x0008103f, 0x00081070, 0x00081072, 0x00081111,
    0x00081250, 0x00180015, 0x00185100, 0x00280108, 0x00280109, 0x00400275, 0x00400253,
    0x00400244, 0x00400245, 0x00400254, 0x00400260, 0x00400280, 0x00080070, 0x00080080,
    0x00081010, 0x00081040, 0x00081090, 0x00181000, 0x00181020, 0x00200052, 0x00201040,
    0x00180024, 0x00181090, 0x00201002, 0x00200105, 0x00540081, 0x00540101, 0x00541000,
    0x00181400, 0x00180010,
};
static const uint32_t MODULE_INSTANCE[] = {
    0x00080005, 0x00080008, 0x00080012, 0x00080013, 0x00080014, 0x00080016, 0x00080018,
    0x00080022, 0x00080023, 0x0008002a, 0x00080032, 0x00080033, 0x00081140, 0x00082111,
    0x00082112, 0x00180050, 0x00200012, 0x00200013, 0x00200020, 0x00200032, 0x00200037,
    0x00200100, 0x00201041, 0x00204000, 0x00280002, 0x00280004, 0x00280006, 0x00280008,
    0x00280010, 0x00280011, 0x00280030, 0x00280034, 0x00280100, 0x00280101, 0x00280102,
    0x00280103, 0x00280300, 0x00280301, 0x00281050, 0x00281051, 0x00281052, 0x00281053,
    0x00281054, 0x00282110, 0x00282112, 0x00282114, 0x00541330,
};

static bool in_list(const uint32_t *list, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == tag) return true;
    return false;
}

/* The first instance under a resource into id. Reply set on failure. */
static bool first_instance(RestCall *call, int level, const char *rid, char id[IDX_ID_LEN])
{
    IdxFile *files = NULL;
    size_t n = 0;
    StoError se = { 0 };
    if (!idx_instances_of(&se, call->srv->db, level, rid, &files, &n)) {
        rest_fail_sto(call, &se);
        return false;
    }
    if (n == 0) {
        free(files);
        rest_fail(call, SRV_UNKNOWN_RESOURCE, "no instance under %s", rid);
        return false;
    }
    snprintf(id, IDX_ID_LEN, "%s", files[0].id);
    free(files);
    return true;
}

static void reply_module(RestCall *call, int level, const char *rid, int module)
{
    size_t max_length, nign;
    uint32_t ign[32];
    if (!rest_ignore_length(call, &max_length, ign, 32, &nign)) return;
    char iid[IDX_ID_LEN];
    if (!first_instance(call, level, rid, iid)) return;
    cJSON *full = instance_tags(call, iid, max_length, ign, nign);
    if (!full) return;
    static const uint32_t *const lists[] = { MODULE_PATIENT, MODULE_STUDY, MODULE_SERIES, MODULE_INSTANCE };
    static const size_t sizes[] = { sizeof MODULE_PATIENT / 4, sizeof MODULE_STUDY / 4,
                                    sizeof MODULE_SERIES / 4, sizeof MODULE_INSTANCE / 4 };
    cJSON *kept = cJSON_CreateObject();
    for (cJSON *e = full->child; e;) {
        cJSON *next = e->next;
        uint32_t tag;
        if (dcm_tag_parse(e->string, &tag) && in_list(lists[module], sizes[module], tag))
            cJSON_AddItemToObject(kept, e->string, cJSON_DetachItemViaPointer(full, e));
        e = next;
    }
    cJSON_Delete(full);
    cJSON *out = to_format(kept, query_format(call));
    cJSON_Delete(kept);
    rest_reply_json(call, 200, out);
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
    reply_module(call, IDX_STUDY, call->params[0], IDX_PATIENT);
}

/* ---- /shared-tags, /instances-tags -------------------------------------------------------- */

/* Calls fn with the full-format tags of every instance under /{level}/{id} (fn takes them),
 * skipping instances deleted meanwhile. false when the reply is already an error. */
static bool each_instance_tags(RestCall *call, void (*fn)(void *ctx, const char *id, cJSON *tags),
                               void *ctx)
{
    int level = rest_level_from_route(call->params[0]);
    size_t max_length, nign;
    uint32_t ign[32];
    if (!rest_ignore_length(call, &max_length, ign, 32, &nign)) return false;
    IdxFile *files = NULL;
    size_t n = 0;
    StoError se = { 0 };
    if (!idx_instances_of(&se, call->srv->db, level, call->params[1], &files, &n)) {
        rest_fail_sto(call, &se);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        cJSON *t = instance_tags(call, files[i].id, max_length, ign, nign);
        if (!t) {
            if (call->status == 404) { call->status = 0; continue; } /* deleted meanwhile */
            ok = false;
            break;
        }
        fn(ctx, files[i].id, t);
    }
    free(files);
    return ok;
}

/* Keeps in *shared only the entries equal in tags. */
static void intersect_tags(void *ctx, const char *id, cJSON *tags)
{
    (void)id;
    cJSON **shared = ctx;
    if (!*shared) {
        *shared = tags;
        return;
    }
    for (cJSON *e = (*shared)->child; e;) {
        cJSON *next = e->next;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(tags, e->string);
        if (!o || !cJSON_Compare(e, o, 1)) cJSON_Delete(cJSON_DetachItemViaPointer(*shared, e));
        e = next;
    }
    cJSON_Delete(tags);
}

/* GET /{level}/{id}/shared-tags: the tags whose value (and type) is the same in every
 * instance under the resource. */
void h_shared_tags(RestCall *call)
{
    cJSON *shared = NULL;
    if (!each_instance_tags(call, intersect_tags, &shared)) {
        cJSON_Delete(shared);
        return;
    }
    if (!shared) shared = cJSON_CreateObject();
    cJSON *out = to_format(shared, query_format(call));
    cJSON_Delete(shared);
    rest_reply_json(call, 200, out);
}

typedef struct {
    cJSON *out;
    int format;
} PerInstance;

static void add_instance_tags(void *ctx, const char *id, cJSON *tags)
{
    PerInstance *p = ctx;
    cJSON_AddItemToObject(p->out, id, p->format == DCM_JSON_FULL ? tags : to_format(tags, p->format));
    if (p->format != DCM_JSON_FULL) cJSON_Delete(tags);
}

/* GET /{level}/{id}/instances-tags: {instance ID: tags} for every instance under it. */
void h_instances_tags(RestCall *call)
{
    PerInstance p = { cJSON_CreateObject(), query_format(call) };
    if (!each_instance_tags(call, add_instance_tags, &p)) {
        cJSON_Delete(p.out);
        return;
    }
    rest_reply_json(call, 200, p.out);
}

static const RestRoute routes[] = {
    { "GET", "/instances/{id}/content", h_content },
    { "GET", "/instances/{id}/content/*", h_content },
    { "GET", "/{level}/{id}/module", h_module },
    { "GET", "/studies/{id}/module-patient", h_module_patient },
    { "GET", "/{level}/{id}/shared-tags", h_shared_tags },
    { "GET", "/{level}/{id}/instances-tags", h_instances_tags },
};

const RestRouteTable rest_routes_content = { routes, sizeof routes / sizeof routes[0] };
