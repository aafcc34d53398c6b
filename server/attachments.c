/* attachments.c -- the attachments of resources.
 * - "dicom" (content type 1): the DICOM file of an instance, stored uncompressed (compressed
 *   and uncompressed sizes and MD5s are equal). Its MD5 is computed on first demand (ingest does
 *   not hash, to stay fast) and cached in the index. It cannot be replaced, deleted, nor
 *   compressed here (every way out streams the stored file as it is: see docs).
 * - User-defined attachments (content types 1024..65535, by number or by a name of
 *   "UserContentType") on any resource: a file of the storage area each, stored as given, or
 *   zlib-compressed when "StorageCompression" is true, in Orthanc's layout (the uncompressed
 *   size as 8 bytes little endian, then the zlib stream). A revision each, answered as Orthanc's
 *   ETag "<revision>-<uncompressed MD5>" by the REST layer; If-Match must name it.
 * Writes follow the store's crash rule: the new file's uuid is noted pending before it is
 * written and leaves the pending list in the index transaction that references it; a replaced
 * or removed file enters the pending list in that transaction and leaves it once removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "server/server.h"
#include "storage/storage.h"

#define CT_DICOM 1
#define CT_USER_MIN 1024
#define CT_USER_MAX 65535
#define ZLIB_HEADER 8 /* Orthanc's compressed layout: uncompressed size, 64 bits LE */
#define MAX_ATTACHMENT ((uint64_t)1 << 32) /* an uncompressed size we accept to inflate */

/* ---- names ------------------------------------------------------------------------------ */

/* "dicom" / "1" -> 1; a number 1024..65535; a UserContentType name. 0: unknown name; -1: a
 * number outside the user range (other than 1). */
static int resolve(const Cfg *cfg, const char *name)
{
    if (!strcmp(name, "dicom")) return CT_DICOM;
    char *end;
    long v = strtol(name, &end, 10);
    if (*name && !*end) {
        if (v == CT_DICOM || (v >= CT_USER_MIN && v <= CT_USER_MAX)) return (int)v;
        return -1;
    }
    for (size_t i = 0; i < cfg->nuser_content_types; i++)
        if (!strcmp(cfg->user_content_types[i].name, name)) return cfg->user_content_types[i].number;
    return 0;
}

static const CfgUserContentType *declared(const Cfg *cfg, int type)
{
    for (size_t i = 0; i < cfg->nuser_content_types; i++)
        if (cfg->user_content_types[i].number == type) return &cfg->user_content_types[i];
    return NULL;
}

/* The type of name for reading; UnknownResource-style 404 (InexistentItem) when unknown. */
static int type_for_read(SrvError *err, const Cfg *cfg, const char *name)
{
    int t = resolve(cfg, name);
    if (t <= 0) srv_fail(err, SRV_INEXISTENT_ITEM, "no attachment \"%s\"", name);
    return t > 0 ? t : -1;
}

/* The type of name for writing: user types only (403 otherwise, as Orthanc). */
static int type_for_write(SrvError *err, const Cfg *cfg, const char *name)
{
    int t = resolve(cfg, name);
    if (t == 0) {
        srv_fail(err, SRV_INEXISTENT_ITEM, "unknown attachment \"%s\" (declare it in UserContentType)", name);
        return -1;
    }
    if (t < CT_USER_MIN) {
        srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "attachment \"%s\" cannot be changed: only user-defined ones (1024..65535) can", name);
        err->http_status = 403;
        return -1;
    }
    return t;
}

cJSON *srv_attachments_list(SrvError *err, Srv *srv, int level, const char *id)
{
    int *types = NULL;
    size_t n = 0;
    StoError se = { 0 };
    if (!idx_attachment_list(&se, srv->db, level, id, &types, &n)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    cJSON *a = cJSON_CreateArray();
    if (level == IDX_INSTANCE) cJSON_AddItemToArray(a, cJSON_CreateString("dicom"));
    for (size_t i = 0; i < n; i++) {
        const CfgUserContentType *d = declared(&srv->cfg, types[i]);
        char num[16];
        snprintf(num, sizeof num, "%d", types[i]);
        cJSON_AddItemToArray(a, cJSON_CreateString(d ? d->name : num));
    }
    free(types);
    return a;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The MD5 of a stored file into md5. */
static bool hash_file(SrvError *err, Srv *srv, const char *uuid, char md5[33])
{
    void *buf = NULL;
    size_t len = 0;
    StoError se = { 0 };
    if (!sto_area_read(&se, srv->area, uuid, &buf, &len)) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
        return false;
    }
    srv_md5_hex(buf, len, md5);
    free(buf);
    return true;
}

static void from_idx(const Cfg *cfg, const IdxAttachment *a, SrvAttachment *out)
{
    snprintf(out->uuid, sizeof out->uuid, "%s", a->uuid);
    out->size = a->uncompressed_size;
    snprintf(out->md5, sizeof out->md5, "%s", a->uncompressed_md5);
    out->content_type = a->content_type;
    out->compressed_size = a->compressed_size;
    snprintf(out->compressed_md5, sizeof out->compressed_md5, "%s", a->compressed_md5);
    out->compressed = a->compression == IDX_COMPRESSION_ZLIB;
    out->revision = a->revision;
    const CfgUserContentType *d = declared(cfg, a->content_type);
    snprintf(out->mime, sizeof out->mime, "%s", d ? d->mime : "application/octet-stream");
}

bool srv_attachment_get(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                        bool with_md5, SrvAttachment *out)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    memset(out, 0, sizeof *out);
    int type = type_for_read(err, &srv->cfg, name);
    if (type < 0) {
        /* an unknown resource is still a 404 UnknownResource */
        if (!idx_resource_get(&se, srv->db, level, id, &r)) srv_error_from_sto(err, &se);
        idx_resource_cleanup(&r);
        return false;
    }
    if (type != CT_DICOM) {
        IdxAttachment a;
        if (!idx_attachment_get(&se, srv->db, level, id, type, &a)) {
            srv_error_from_sto(err, &se);
            if (se.code == STO_ERR_NOT_FOUND && srv_resource_level(&(SrvError){ 0 }, srv, id) >= 0)
                srv_fail(err, SRV_INEXISTENT_ITEM, "no attachment \"%s\" on %s", name, id);
            return false;
        }
        from_idx(&srv->cfg, &a, out);
        return true;
    }
    if (!idx_resource_get(&se, srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    if (level != IDX_INSTANCE) {
        idx_resource_cleanup(&r);
        return srv_fail(err, SRV_INEXISTENT_ITEM, "no attachment \"%s\"", name);
    }
    snprintf(out->uuid, sizeof out->uuid, "%s", r.uuid);
    out->size = out->compressed_size = r.file_size;
    snprintf(out->md5, sizeof out->md5, "%s", r.md5);
    out->content_type = CT_DICOM;
    snprintf(out->mime, sizeof out->mime, "application/dicom");
    idx_resource_cleanup(&r);
    if (with_md5 && !out->md5[0]) {
        if (!hash_file(err, srv, out->uuid, out->md5)) return false;
        if (!idx_attachment_set_md5(&se, srv->db, out->uuid, out->md5))
            SRV_LOG_WARN("attachments", "cannot cache the MD5 of %s: %s", out->uuid, se.message);
    }
    snprintf(out->compressed_md5, sizeof out->compressed_md5, "%s", out->md5);
    return true;
}

/* Inflates Orthanc's layout (8-byte size, then zlib) into a malloc'd buffer. */
static bool inflate_file(SrvError *err, const unsigned char *in, size_t len, void **out, size_t *olen)
{
    if (len < ZLIB_HEADER) return srv_fail(err, SRV_CORRUPTED_FILE, "compressed attachment too short");
    uint64_t size = 0;
    for (int i = ZLIB_HEADER - 1; i >= 0; i--) size = size << 8 | in[i];
    if (size > MAX_ATTACHMENT) return srv_fail(err, SRV_CORRUPTED_FILE, "compressed attachment declares %llu bytes", (unsigned long long)size);
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    uLongf dlen = (uLongf)size;
    int rc = uncompress(buf, &dlen, in + ZLIB_HEADER, (uLong)(len - ZLIB_HEADER));
    if (rc != Z_OK || dlen != size) {
        free(buf);
        return srv_fail(err, SRV_CORRUPTED_FILE, "cannot inflate the attachment (zlib %d)", rc);
    }
    *out = buf;
    *olen = (size_t)size;
    return true;
}

static bool deflate_buf(SrvError *err, const void *in, size_t len, void **out, size_t *olen)
{
    uLongf bound = compressBound((uLong)len);
    unsigned char *buf = malloc(ZLIB_HEADER + bound);
    if (!buf) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (int i = 0; i < ZLIB_HEADER; i++) buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
    if (compress2(buf + ZLIB_HEADER, &bound, in, (uLong)len, Z_DEFAULT_COMPRESSION) != Z_OK) {
        free(buf);
        return srv_fail(err, SRV_INTERNAL, "zlib compression failed");
    }
    *out = buf;
    *olen = ZLIB_HEADER + bound;
    return true;
}

bool srv_attachment_read(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                         bool raw, void **buf, size_t *len, SrvAttachment *info)
{
    *buf = NULL;
    *len = 0;
    SrvAttachment a;
    if (!srv_attachment_get(err, srv, level, id, name, false, &a)) return false;
    if (info) *info = a;
    void *data = NULL;
    size_t dlen = 0;
    StoError se = { 0 };
    if (!sto_area_read(&se, srv->area, a.uuid, &data, &dlen)) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND) err->code = SRV_INEXISTENT_FILE;
        return false;
    }
    if (raw || !a.compressed) {
        *buf = data;
        *len = dlen;
        return true;
    }
    bool ok = inflate_file(err, data, dlen, buf, len);
    free(data);
    return ok;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Removes a file that left the index (pending) and clears it; logs but does not fail. */
static void drop_file(Srv *srv, const char *uuid)
{
    StoError se = { 0 };
    if (!uuid[0]) return;
    if (!sto_area_remove(&se, srv->area, uuid)) {
        SRV_LOG_WARN("attachments", "cannot remove %s: %s", uuid, se.message);
        return; /* stays pending: start-up retries */
    }
    if (!idx_pending_clear(&se, srv->db, &uuid, 1))
        SRV_LOG_WARN("attachments", "cannot clear pending %s: %s", uuid, se.message);
}

/* Stores data (uncompressed, len bytes) as attachment `type`, compressed or not. */
static bool store(SrvError *err, Srv *srv, int level, const char *id, int type, const void *data,
                  size_t len, bool compress, int64_t if_match, int64_t *revision, char md5[33])
{
    IdxAttachment a = { .content_type = type, .uncompressed_size = len,
                        .compression = compress ? IDX_COMPRESSION_ZLIB : IDX_COMPRESSION_NONE };
    srv_md5_hex(data, len, a.uncompressed_md5);
    void *z = NULL;
    size_t zlen = len;
    if (compress && !deflate_buf(err, data, len, &z, &zlen)) return false;
    const void *file = compress ? z : data;
    a.compressed_size = zlen;
    srv_md5_hex(file, zlen, a.compressed_md5);
    sto_uuid_new(a.uuid);
    StoError se = { 0 };
    char old[STO_UUID_LEN] = "";
    bool ok = idx_pending_add(&se, srv->db, a.uuid);
    bool pending = ok;
    ok = ok && sto_area_write(&se, srv->area, a.uuid, file, zlen);
    free(z);
    if (ok && idx_attachment_put(&se, srv->db, level, id, &a, if_match, revision, old)) {
        drop_file(srv, old);
        if (md5) snprintf(md5, 33, "%s", a.uncompressed_md5);
        return true;
    }
    srv_error_from_sto(err, &se);
    if (se.code == STO_ERR_FULL) err->code = SRV_FULL_STORAGE;
    if (pending) drop_file(srv, a.uuid); /* nothing references it */
    return false;
}

bool srv_attachment_put(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                        const void *data, size_t len, int64_t if_match, int64_t *revision,
                        char md5[33])
{
    int type = type_for_write(err, &srv->cfg, name);
    if (type < 0) return false;
    if (!store(err, srv, level, id, type, data, len, srv->cfg.storage_compression, if_match,
               revision, md5))
        return false;
    SRV_LOG_INFO("attachments", "attachment %d of %s stored (%zu bytes, revision %lld)", type, id,
                 len, (long long)*revision);
    return true;
}

bool srv_attachment_delete(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                           int64_t if_match)
{
    int type = type_for_write(err, &srv->cfg, name);
    if (type < 0) return false;
    StoError se = { 0 };
    char old[STO_UUID_LEN] = "";
    if (!idx_attachment_remove(&se, srv->db, level, id, type, if_match, old)) {
        srv_error_from_sto(err, &se);
        if (se.code == STO_ERR_NOT_FOUND && srv_resource_level(&(SrvError){ 0 }, srv, id) >= 0)
            srv_fail(err, SRV_INEXISTENT_ITEM, "no attachment \"%s\" on %s", name, id);
        return false;
    }
    drop_file(srv, old);
    return true;
}

bool srv_attachment_compress(SrvError *err, Srv *srv, int level, const char *id, const char *name,
                             bool compress)
{
    SrvAttachment a;
    void *data = NULL;
    size_t len = 0;
    if (!srv_attachment_get(err, srv, level, id, name, false, &a)) return false;
    if (a.content_type == CT_DICOM) {
        if (!compress) return true; /* it is not compressed */
        return srv_fail(err, SRV_NOT_IMPLEMENTED, "the DICOM file of an instance is always stored uncompressed here");
    }
    if (a.compressed == compress) return true; /* nothing to do, as Orthanc */
    if (!srv_attachment_read(err, srv, level, id, name, false, &data, &len, &a)) return false;
    int64_t rev;
    bool ok = store(err, srv, level, id, a.content_type, data, len, compress, a.revision, &rev, NULL);
    free(data);
    if (ok) SRV_LOG_INFO("attachments", "attachment %d of %s %s", a.content_type, id, compress ? "compressed" : "uncompressed");
    return ok;
}

bool srv_attachment_verify(SrvError *err, Srv *srv, int level, const char *id,
                           const char *name)
{
    SrvAttachment a;
    if (!srv_attachment_get(err, srv, level, id, name, true, &a)) return false;
    char md5[33];
    SrvError e = { 0 };
    if (!hash_file(&e, srv, a.uuid, md5)) { /* as before: the storage error as it is */
        *err = e;
        if (err->code == SRV_INEXISTENT_FILE) err->code = SRV_UNKNOWN_RESOURCE;
        return false;
    }
    if (strcmp(md5, a.compressed_md5)) return srv_fail(err, SRV_CORRUPTED_FILE, "the MD5 of the stored file does not match");
    if (a.compressed) { /* the content too */
        void *data = NULL;
        size_t len = 0;
        if (!srv_attachment_read(err, srv, level, id, name, false, &data, &len, NULL)) return false;
        srv_md5_hex(data, len, md5);
        free(data);
        if (strcmp(md5, a.md5)) return srv_fail(err, SRV_CORRUPTED_FILE, "the MD5 of the uncompressed attachment does not match");
    }
    return true;
}
