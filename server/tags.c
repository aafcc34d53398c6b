/* tags.c -- the DICOM views of stored instances: /tags (from the DICOM cache), raw values by
 * path (/content/...), the DICOM module of each level (/module, /module-patient), the tags
 * shared by all instances of a resource (/shared-tags) and every instance's tags at once
 * (/instances-tags).
 *
 * DESIGN: beyond /tags, everything is computed from Orthanc's full /tags JSON of an instance
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
#include "server/server.h"

_Static_assert((int)SRV_TAGS_FULL == (int)DCM_JSON_FULL &&
               (int)SRV_TAGS_SIMPLIFY == (int)DCM_JSON_SIMPLIFY &&
               (int)SRV_TAGS_SHORT == (int)DCM_JSON_SHORT, "SRV_TAGS_* are DCM_JSON_*");

bool srv_tag_parse(const char *s, uint32_t *tag)
{
    return dcm_tag_parse(s, tag);
}

cJSON *srv_instance_tags(SrvError *err, Srv *srv, const char *instance_id,
                         const SrvTagsOptions *opt)
{
    CacheEntry *ce = cache_acquire(err, srv, instance_id);
    if (!ce) return NULL;
    DcmError de = { 0 };
    cJSON *j = dcm_to_json_ex(&de, cache_object(ce), opt->format, opt->max_length, opt->ignore,
                              opt->nignore);
    cache_release(ce);
    if (!j) srv_error_from_dcm(err, &de);
    return j;
}

cJSON *srv_instance_header(SrvError *err, Srv *srv, const char *instance_id, int format)
{
    CacheEntry *ce = cache_acquire(err, srv, instance_id);
    if (!ce) return NULL;
    DcmError de = { 0 };
    cJSON *j = dcm_header_json(&de, cache_object(ce), format);
    cache_release(ce);
    if (!j) srv_error_from_dcm(err, &de);
    return j;
}

bool srv_instance_content(SrvError *err, Srv *srv, const char *instance_id,
                          const char *const *path, size_t npath, SrvContent *out)
{
    memset(out, 0, sizeof *out);
    void *buf = NULL;
    size_t len = 0;
    if (!srv_instance_read(err, srv, instance_id, &buf, &len)) return false;
    DcmError de = { 0 };
    DcmContent c = { 0 };
    bool ok = dcm_content(&de, buf, len, path, npath, &c);
    free(buf);
    if (!ok) {
        if (de.code == DCM_ERR_MISSING) return srv_fail(err, SRV_UNKNOWN_RESOURCE, "%s", de.message);
        if (de.code == DCM_ERR_ARG) return srv_fail(err, SRV_UNKNOWN_DICOM_TAG, "%s", de.message);
        srv_error_from_dcm(err, &de);
        return false;
    }
    if (c.is_list) {
        out->list = cJSON_CreateArray();
        for (size_t i = 0; i < c.nnames; i++) cJSON_AddItemToArray(out->list, cJSON_CreateString(c.names[i]));
    } else {
        out->data = c.data; /* handed over: malloc'd by the shim, freed with free() */
        out->len = c.len;
        out->is_text = c.is_text;
        c.data = NULL;
    }
    dcm_content_cleanup(&c);
    return true;
}

void srv_content_cleanup(SrvContent *c)
{
    cJSON_Delete(c->list);
    free(c->data);
    memset(c, 0, sizeof *c);
}

/* Full /tags JSON of one instance, read from its file (header-only parse). */
static cJSON *instance_tags_full(SrvError *err, Srv *srv, const char *id, const SrvTagsOptions *opt)
{
    void *buf = NULL;
    size_t len = 0;
    if (!srv_instance_read(err, srv, id, &buf, &len)) return NULL;
    DcmError de = { 0 };
    DcmObject *obj = NULL;
    bool ok = dcm_parse(&de, buf, len, DCM_PARSE_HEADER_ONLY, &obj);
    free(buf);
    if (!ok) {
        srv_error_from_dcm(err, &de);
        err->code = SRV_CORRUPTED_FILE;
        return NULL;
    }
    cJSON *j = dcm_to_json_ex(&de, obj, DCM_JSON_FULL, opt->max_length, opt->ignore, opt->nignore);
    dcm_object_destroy(obj);
    if (!j) srv_error_from_dcm(err, &de);
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

cJSON *srv_module_tags(SrvError *err, Srv *srv, int level, const char *id, int module,
                       const SrvTagsOptions *opt)
{
    char **ids = NULL;
    size_t n = 0;
    if (!srv_resource_instances(err, srv, level, id, &ids, &n)) return NULL;
    if (n == 0) {
        srv_strings_free(ids, n);
        srv_fail(err, SRV_UNKNOWN_RESOURCE, "no instance under %s", id);
        return NULL;
    }
    cJSON *full = instance_tags_full(err, srv, ids[0], opt);
    srv_strings_free(ids, n);
    if (!full) return NULL;
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
    cJSON *out = to_format(kept, opt->format);
    cJSON_Delete(kept);
    return out;
}

/* ---- /shared-tags, /instances-tags -------------------------------------------------------- */

/* Calls fn with the full-format tags of every instance under /{level}/{id} (fn takes them),
 * skipping instances deleted meanwhile. */
static bool each_instance_tags(SrvError *err, Srv *srv, int level, const char *id,
                               const SrvTagsOptions *opt,
                               void (*fn)(void *ctx, const char *id, cJSON *tags), void *ctx)
{
    char **ids = NULL;
    size_t n = 0;
    if (!srv_resource_instances(err, srv, level, id, &ids, &n)) return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        SrvError e = { 0 };
        cJSON *t = instance_tags_full(&e, srv, ids[i], opt);
        if (!t) {
            if (srv_error_http_status(&e) == 404) continue; /* deleted meanwhile */
            *err = e;
            ok = false;
            break;
        }
        fn(ctx, ids[i], t);
    }
    srv_strings_free(ids, n);
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

cJSON *srv_shared_tags(SrvError *err, Srv *srv, int level, const char *id,
                       const SrvTagsOptions *opt)
{
    cJSON *shared = NULL;
    if (!each_instance_tags(err, srv, level, id, opt, intersect_tags, &shared)) {
        cJSON_Delete(shared);
        return NULL;
    }
    if (!shared) shared = cJSON_CreateObject();
    cJSON *out = to_format(shared, opt->format);
    cJSON_Delete(shared);
    return out;
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

cJSON *srv_instances_tags(SrvError *err, Srv *srv, int level, const char *id,
                          const SrvTagsOptions *opt)
{
    PerInstance p = { cJSON_CreateObject(), opt->format };
    if (!each_instance_tags(err, srv, level, id, opt, add_instance_tags, &p)) {
        cJSON_Delete(p.out);
        return NULL;
    }
    return p.out;
}
