/* resources.c -- reading the store for the edges: Orthanc's JSON of a resource, lists of IDs,
 * walks up and down the hierarchy, counts and totals, and the stored file of an instance.
 *
 * DESIGN: the JSON of a resource is built here, as Orthanc's ServerContext expands a resource,
 * because the same object is the answer of GET /{level}/{id}, of every ?expand list, of
 * /tools/find with Expand and of the read-side features to come. Every read goes through the
 * index's read connections; nothing here writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "server/server.h"
#include "storage/storage.h"

/* Ceiling of an ID list a walk assembles (bytes of the char * array: 2^27 IDs). */
#define MAX_ID_LIST ((size_t)1 << 30)

static bool fail_sto(SrvError *err, const StoError *se)
{
    srv_error_from_sto(err, se);
    return false;
}

/* level_only: only the main tags of that level (a study row also holds its copy of the patient
 * tags); -1: all. */
static bool tag_of_level(uint32_t tag, int level)
{
    size_t n;
    const SrvMainTag *t = srv_main_tags(level, &n);
    for (size_t i = 0; i < n; i++)
        if (t[i].tag == tag) return true;
    return false;
}

static cJSON *main_tags_json_of(const IdxResource *r, int level_only)
{
    cJSON *tags = cJSON_CreateObject();
    for (size_t i = 0; i < r->ntags; i++) {
        if (level_only >= 0 && !tag_of_level(r->tag_keys[i], level_only)) continue;
        const char *name = srv_main_tag_name(r->tag_keys[i]);
        char key[16];
        if (!name) {
            snprintf(key, sizeof key, "%04x,%04x", r->tag_keys[i] >> 16, r->tag_keys[i] & 0xffff);
            name = key;
        }
        cJSON_AddStringToObject(tags, name, r->tag_values[i]);
    }
    return tags;
}

static cJSON *main_tags_json(const IdxResource *r)
{
    return main_tags_json_of(r, r->level == IDX_STUDY ? IDX_STUDY : -1);
}

/* "20261125T204400" (UTC) -> time_t; 0 if malformed. */
static time_t parse_iso(const char *s)
{
    struct tm tm = { 0 };
    if (!s || sscanf(s, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static cJSON *children_json(const IdxResource *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < r->nchildren; i++) cJSON_AddItemToArray(a, cJSON_CreateString(r->children[i]));
    return a;
}

static void add_int_or_null(cJSON *o, const char *key, const char *value)
{
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (value && *value && !*end) cJSON_AddNumberToObject(o, key, (double)v);
    else cJSON_AddNullToObject(o, key);
}

static cJSON *resource_to_json(Srv *srv, const IdxResource *r)
{
    cJSON *o = cJSON_CreateObject();
    const char *v;
    if ((v = idx_resource_metadata(r, "AnonymizedFrom"))) cJSON_AddStringToObject(o, "AnonymizedFrom", v);
    if (r->level == IDX_SERIES) {
        v = idx_resource_metadata(r, "ExpectedNumberOfInstances");
        add_int_or_null(o, "ExpectedNumberOfInstances", v);
    }
    if (r->level == IDX_INSTANCE) {
        cJSON_AddNumberToObject(o, "FileSize", (double)r->file_size);
        cJSON_AddStringToObject(o, "FileUuid", r->uuid);
    }
    cJSON_AddStringToObject(o, "ID", r->id);
    if (r->level == IDX_INSTANCE) add_int_or_null(o, "IndexInSeries", idx_resource_metadata(r, "IndexInSeries"));
    if (r->level == IDX_SERIES) cJSON_AddItemToObject(o, "Instances", children_json(r));
    if (r->level == IDX_PATIENT) {
        bool prot = false;
        StoError se = { 0 };
        if (!idx_patient_is_protected(&se, srv->db, r->id, &prot)) prot = false;
        cJSON_AddBoolToObject(o, "IsProtected", prot);
    }
    if (r->level != IDX_INSTANCE) {
        const char *lu = idx_resource_metadata(r, "LastUpdate");
        time_t t = parse_iso(lu);
        /* the stability thread knows (server/stable.c); LastUpdate + StableAge if not running */
        bool stable = srv->stable ? !srv_stable_is_unstable(srv, r->level, r->id)
                                  : t && time(NULL) - t >= srv->cfg.stable_age;
        cJSON_AddBoolToObject(o, "IsStable", stable);
        cJSON_AddStringToObject(o, "LastUpdate", lu ? lu : "");
    }
    cJSON_AddItemToObject(o, "MainDicomTags", main_tags_json(r));
    if ((v = idx_resource_metadata(r, "ModifiedFrom"))) cJSON_AddStringToObject(o, "ModifiedFrom", v);
    static const char *const parent_key[] = { NULL, "ParentPatient", "ParentStudy", "ParentSeries" };
    if (r->level > IDX_PATIENT) cJSON_AddStringToObject(o, parent_key[r->level], r->parent_id);
    bool own_copy = false; /* the study's copy of its patient tags (older indexes: none) */
    for (size_t i = 0; r->level == IDX_STUDY && i < r->ntags && !own_copy; i++)
        own_copy = tag_of_level(r->tag_keys[i], IDX_PATIENT);
    if (r->level == IDX_STUDY && own_copy) {
        cJSON_AddItemToObject(o, "PatientMainDicomTags", main_tags_json_of(r, IDX_PATIENT));
        cJSON_AddItemToObject(o, "Series", children_json(r));
    } else if (r->level == IDX_STUDY) {
        IdxResource p = { 0 };
        StoError se = { 0 };
        if (idx_resource_get(&se, srv->db, IDX_PATIENT, r->parent_id, &p)) {
            cJSON_AddItemToObject(o, "PatientMainDicomTags", main_tags_json(&p));
            idx_resource_cleanup(&p);
        } else {
            cJSON_AddItemToObject(o, "PatientMainDicomTags", cJSON_CreateObject());
        }
        cJSON_AddItemToObject(o, "Series", children_json(r));
    }
    if (r->level == IDX_SERIES) {
        v = idx_resource_metadata(r, "ExpectedNumberOfInstances");
        long expected = v ? strtol(v, NULL, 10) : 0;
        const char *status = "Unknown";
        if (expected > 0)
            status = (long)r->nchildren == expected ? "Complete"
                     : (long)r->nchildren < expected ? "Missing" : "Inconsistent";
        cJSON_AddStringToObject(o, "Status", status);
    }
    if (r->level == IDX_PATIENT) cJSON_AddItemToObject(o, "Studies", children_json(r));
    cJSON_AddStringToObject(o, "Type", srv_level_name(r->level));
    return o;
}

cJSON *srv_resource_json(SrvError *err, Srv *srv, int level, const char *id)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    cJSON *j = resource_to_json(srv, &r);
    idx_resource_cleanup(&r);
    return j;
}

cJSON *srv_resources_json(SrvError *err, Srv *srv, int level, char *const *ids, size_t n,
                          bool expand)
{
    (void)err;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!expand) {
            cJSON_AddItemToArray(a, cJSON_CreateString(ids[i]));
            continue;
        }
        SrvError e = { 0 };
        cJSON *o = srv_resource_json(&e, srv, level, ids[i]);
        if (o) cJSON_AddItemToArray(a, o); /* else deleted meanwhile: skip it */
    }
    return a;
}

int srv_resource_level(SrvError *err, Srv *srv, const char *id)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, -1, id, &r)) {
        srv_error_from_sto(err, &se);
        return -1;
    }
    int level = r.level;
    idx_resource_cleanup(&r);
    return level;
}

bool srv_resource_list(SrvError *err, Srv *srv, int level, uint64_t since, uint64_t limit,
                       char ***ids, size_t *n)
{
    StoError se = { 0 };
    if (!idx_list(&se, srv->db, level, since, limit, ids, n)) return fail_sto(err, &se);
    return true;
}

void srv_strings_free(char **strings, size_t n)
{
    idx_strings_free(strings, n);
}

bool srv_resource_ancestor(SrvError *err, Srv *srv, int level, const char *id, int target,
                           char out[SRV_ID_LEN])
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, level, id, &r)) return fail_sto(err, &se);
    while (r.level > target) {
        char pid[IDX_ID_LEN];
        snprintf(pid, sizeof pid, "%s", r.parent_id);
        int l = r.level - 1;
        idx_resource_cleanup(&r);
        if (!idx_resource_get(&se, srv->db, l, pid, &r)) return fail_sto(err, &se);
    }
    snprintf(out, SRV_ID_LEN, "%s", r.id);
    idx_resource_cleanup(&r);
    return true;
}

/* Appends copies of n IDs to an array of char * (BUF_* result; the copies already appended
 * stay owned by the array). */
static int append_ids(Buf *ids, char *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *id = strdup(src[i]);
        if (!id) return BUF_NOMEM;
        int rc = buf_append(ids, &id, sizeof id);
        if (rc) {
            free(id);
            return rc;
        }
    }
    return BUF_OK;
}

static void free_ids(Buf *ids)
{
    for (size_t i = 0; i < BUF_COUNT(ids, char *); i++) free(BUF_AT(ids, char *, i));
    buf_free(ids);
}

bool srv_resource_descendants(SrvError *err, Srv *srv, int level, const char *id, int target,
                              char ***ids_out, size_t *n_out)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    *ids_out = NULL;
    *n_out = 0;
    if (!idx_resource_get(&se, srv->db, level, id, &r)) return fail_sto(err, &se);
    Buf ids, next;
    buf_init(&ids, MAX_ID_LIST);
    buf_init(&next, MAX_ID_LIST);
    int rc = append_ids(&ids, r.children, r.nchildren);
    idx_resource_cleanup(&r);
    for (int cur = level + 1; !rc && cur < target; cur++) {
        for (size_t i = 0; !rc && i < BUF_COUNT(&ids, char *); i++) {
            IdxResource c = { 0 };
            if (idx_resource_get(&se, srv->db, cur, BUF_AT(&ids, char *, i), &c)) {
                rc = append_ids(&next, c.children, c.nchildren);
                idx_resource_cleanup(&c);
            } /* else deleted meanwhile */
        }
        free_ids(&ids);
        ids = next;
        buf_init(&next, MAX_ID_LIST);
    }
    free_ids(&next);
    if (rc) {
        free_ids(&ids);
        return srv_fail(err, rc == BUF_NOMEM ? SRV_NOT_ENOUGH_MEMORY : SRV_INTERNAL,
                        "the list of descendants %s", rc == BUF_NOMEM ? "ran out of memory"
                                                                      : "exceeds its ceiling");
    }
    *n_out = BUF_COUNT(&ids, char *);
    *ids_out = (char **)(void *)buf_take(&ids, NULL);
    return true;
}

bool srv_resource_instances(SrvError *err, Srv *srv, int level, const char *id, char ***ids,
                            size_t *n)
{
    StoError se = { 0 };
    IdxFile *files = NULL;
    size_t nf = 0;
    *ids = NULL;
    *n = 0;
    if (!idx_instances_of(&se, srv->db, level, id, &files, &nf)) return fail_sto(err, &se);
    char **out = calloc(nf ? nf : 1, sizeof *out);
    if (!out) {
        free(files);
        return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < nf; i++) {
        if (!(out[i] = strdup(files[i].id))) {
            idx_strings_free(out, i);
            free(files);
            return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        }
    }
    free(files);
    *ids = out;
    *n = nf;
    return true;
}

bool srv_resource_counts(SrvError *err, Srv *srv, int level, const char *id, SrvCounts *out)
{
    StoError se = { 0 };
    IdxCounts c;
    if (!idx_resource_counts(&se, srv->db, level, id, &c)) return fail_sto(err, &se);
    out->studies = c.studies;
    out->series = c.series;
    out->instances = c.instances;
    out->disk_size = c.disk_size;
    return true;
}

bool srv_totals(SrvError *err, Srv *srv, SrvTotals *out)
{
    StoError se = { 0 };
    IdxTotals t;
    if (!idx_totals(&se, srv->db, &t)) return fail_sto(err, &se);
    for (int l = 0; l < SRV_LEVELS; l++) out->count[l] = t.count[l];
    out->disk_size = t.disk_size;
    out->uncompressed_size = t.uncompressed_size;
    return true;
}

/* A missing file under an existing row is InexistentFile, not UnknownResource. */
static void fail_file(SrvError *err, const StoError *se)
{
    srv_error_from_sto(err, se);
    if (se->code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
}

int srv_instance_open(SrvError *err, Srv *srv, const char *instance_id, uint64_t *size)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, instance_id, &r)) {
        srv_error_from_sto(err, &se);
        return -1;
    }
    int fd = sto_area_open_fd(&se, srv->area, r.uuid, size);
    idx_resource_cleanup(&r);
    if (fd < 0) fail_file(err, &se);
    return fd;
}

bool srv_instance_read(SrvError *err, Srv *srv, const char *instance_id, void **buf,
                       size_t *len)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, instance_id, &r)) return fail_sto(err, &se);
    bool ok = sto_area_read(&se, srv->area, r.uuid, buf, len);
    idx_resource_cleanup(&r);
    if (!ok) fail_file(err, &se);
    return ok;
}

int srv_database_version(void)
{
    return IDX_SCHEMA_VERSION;
}
