/* dicomweb.c -- DICOMweb services (see dicomweb.h).
 *
 * DESIGN
 * - QIDO-RS is a translation onto the one query engine (server/query.c): path UIDs and
 *   matching attributes become QryKeys, includefield adds return keys, limit/offset become
 *   since/limit. Answers are printed as DICOM JSON text, one element at a time, by dicom/'s
 *   writer (dcm_dicomweb_value_text), in tag order, RetrieveURL added.
 * - WADO-RS metadata is fast by construction: ingest keeps each instance's DICOM JSON (the
 *   header-only parse it already made, PixelData by reference) as a hidden instance metadata
 *   item; a series' metadata is then one index read per instance, no file opened. The
 *   BulkDataURIs are stored behind a 0x01 marker that the stream replaces by the request's
 *   base URL, so X-Forwarded-Host/Proto and DicomWeb.Host apply to stored texts too. An
 *   instance stored before (or by a server with DicomWeb disabled) is parsed once through the
 *   DICOM cache and its text kept then. The kept text is deflated and base64-coded
 *   ("z:<length>:<base64>", json_pack/json_unpack): a CT instance's 1.9 KB JSON becomes ~0.8 KB,
 *   which fits in its index row (SQLite spilled the plain text into a 4 KB overflow page per
 *   instance: 4x the index size and writer cache per stored instance); text kept plain before
 *   (it starts with '{') is read as it is.
 * - Retrieval walks the one retrieve path (server/retrieve.c): retrieve_list() gives the files
 *   in order; retrieve_run() hands one file at a time to a sink that takes a dup of its fd (or
 *   the converted bytes), which the pull stream then sends part by part: never more than one
 *   file in memory (and only when it is converted).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <zlib.h>

#include "dicom/dicom.h"
#include "server/dicomweb.h"
#include "server/query.h"
#include "server/retrieve.h"
#include "storage/storage.h"

#define TAG_STUDY_UID 0x0020000Du
#define TAG_SERIES_UID 0x0020000Eu
#define TAG_SOP_UID 0x00080018u
#define TAG_RETRIEVE_URL 0x00081190u
#define TAG_CHARSET 0x00080005u

/* ---- the kept text ------------------------------------------------------------------------ */

#define PACK_PREFIX "z:"

/* The stored form of a DICOM JSON text (malloc'd), or NULL when out of memory. Deflate at
 * level 1: ~3x smaller for ~10 us per instance, inflated in ~3 us when read. */
static char *json_pack(const char *text, size_t len)
{
    uLong bound = compressBound((uLong)len);
    uLongf zl = bound;
    unsigned char *z = malloc(bound);
    char *out = NULL;
    if (!z || compress2(z, &zl, (const Bytef *)text, (uLong)len, 1) != Z_OK) goto out;
    size_t b64 = BASE64_ENCODE_RAW_LENGTH((size_t)zl);
    if (!(out = malloc(b64 + 32))) goto out;
    int n = snprintf(out, 32, PACK_PREFIX "%zu:", len);
    base64_encode_raw(out + n, (size_t)zl, z);
    out[(size_t)n + b64] = '\0';
out:
    free(z);
    return out;
}

/* The DICOM JSON text of a stored form (malloc'd), or NULL (err set) when it is damaged or
 * memory is short. */
static char *json_unpack(SrvError *err, const char *stored)
{
    if (strncmp(stored, PACK_PREFIX, strlen(PACK_PREFIX)) != 0) {
        char *t = strdup(stored);
        if (!t) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return t;
    }
    const char *p = stored + strlen(PACK_PREFIX);
    char *end;
    unsigned long long len = strtoull(p, &end, 10);
    if (end == p || *end != ':' || len > DW_METADATA_MAX) {
        srv_fail(err, SRV_INTERNAL, "damaged DICOM JSON in the index");
        return NULL;
    }
    size_t zl = 0;
    unsigned char *z = srv_base64_decode(end + 1, strlen(end + 1), &zl);
    char *text = z ? malloc((size_t)len + 1) : NULL;
    uLongf tl = (uLongf)len;
    if (!text) {
        if (z) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        else srv_fail(err, SRV_INTERNAL, "damaged DICOM JSON in the index");
    } else if (uncompress((Bytef *)text, &tl, z, (uLong)zl) != Z_OK || tl != (uLongf)len) {
        free(text);
        text = NULL;
        srv_fail(err, SRV_INTERNAL, "damaged DICOM JSON in the index");
    } else {
        text[len] = '\0';
    }
    free(z);
    return text;
}

/* ---- ingest ------------------------------------------------------------------------------- */

static void bulk_prefix(char *out, size_t size, const char *study, const char *series, const char *sop)
{
    snprintf(out, size, "\x01/studies/%s/series/%s/instances/%s/bulk", study, series, sop);
}

char *dw_ingest_json(Srv *srv, const struct DcmObject *obj, const char *study_uid,
                     const char *series_uid, const char *sop_uid)
{
    if (!srv->cfg.dicomweb.enable) return NULL;
    char prefix[512];
    bulk_prefix(prefix, sizeof prefix, study_uid, series_uid, sop_uid);
    DcmWebJsonOptions o = { .bulk_threshold = (size_t)srv->cfg.dicomweb.bulk_threshold,
                            .bulk_prefix = prefix, .pixel_data = true };
    DcmError de = { 0 };
    char *text = NULL;
    size_t len = 0;
    if (!dcm_dicomweb_json_text(&de, obj, &o, &text, &len)) {
        SRV_LOG_WARN("dicomweb", "cannot build the DICOM JSON of %s: %s", sop_uid, de.message);
        return NULL;
    }
    char *packed = len <= DW_METADATA_MAX ? json_pack(text, len) : NULL; /* else from the file */
    free(text);
    return packed;
}

/* ---- resolving UIDs ----------------------------------------------------------------------- */

static bool plain_uid(const char *s)
{
    return s && *s && !strpbrk(s, "*?\\") && strlen(s) <= 64;
}

typedef struct FirstId {
    char id[SRV_ID_LEN];
    bool found;
} FirstId;

static bool take_first(void *ctx, const QryAnswer *a)
{
    FirstId *f = ctx;
    snprintf(f->id, sizeof f->id, "%s", a->id);
    f->found = true;
    return false;
}

bool dw_resolve(SrvError *err, Srv *srv, int level, const char *study_uid, const char *series_uid,
                const char *sop_uid, char id[SRV_ID_LEN])
{
    QryKey keys[3];
    size_t n = 0;
    const char *uids[3] = { study_uid, series_uid, sop_uid };
    const uint32_t tags[3] = { TAG_STUDY_UID, TAG_SERIES_UID, TAG_SOP_UID };
    for (int i = 0; i < 3; i++) {
        if (i + 1 > level && !(i == 2 && level == SRV_INSTANCE)) break;
        if (!uids[i]) continue;
        if (!plain_uid(uids[i])) return srv_fail(err, SRV_BAD_REQUEST, "not a UID: \"%s\"", uids[i]);
        keys[n].tag = tags[i];
        keys[n].pattern = uids[i];
        n++;
    }
    QryRequest rq = { .level = level, .keys = keys, .nkeys = n, .case_sensitive_pn = true,
                      .ids_only = true, .limit = 1 };
    FirstId f = { .found = false };
    if (!qry_run(err, srv, &rq, take_first, &f, NULL)) return false;
    if (!f.found) {
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown %s %s", level == SRV_STUDY ? "study"
                        : level == SRV_SERIES ? "series" : "instance",
                        level == SRV_STUDY ? study_uid : level == SRV_SERIES ? series_uid : sop_uid);
    }
    snprintf(id, SRV_ID_LEN, "%s", f.id);
    return true;
}

/* ---- QIDO-RS ------------------------------------------------------------------------------ */

static const uint32_t STUDY_DEFAULTS[] = { 0x00080020, 0x00080030, 0x00080050, 0x00080061, 0x00080090,
                                           0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x0020000D,
                                           0x00200010, 0x00201206, 0x00201208 };
static const uint32_t SERIES_DEFAULTS[] = { 0x00080020, 0x00080030, 0x00080050, 0x00080060, 0x00080090,
                                            0x0008103E, 0x00100010, 0x00100020, 0x00100030, 0x00100040,
                                            0x0020000D, 0x0020000E, 0x00200010, 0x00200011, 0x00201209 };
static const uint32_t INSTANCE_DEFAULTS[] = { 0x00080016, 0x00080018, 0x00080020, 0x00080030, 0x00080050,
                                              0x00080060, 0x00080090, 0x00100010, 0x00100020, 0x00100030,
                                              0x00100040, 0x0020000D, 0x0020000E, 0x00200010, 0x00200011,
                                              0x00200013, 0x00280008 };

typedef struct KeyList {
    QryKey *keys;
    char **owned; /* patterns we built (fuzzy) */
    size_t n, cap;
} KeyList;

/* Adds tag (or sets its pattern when already there). */
static bool key_add(KeyList *k, uint32_t tag, const char *pattern)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->keys[i].tag == tag) {
            if (pattern) k->keys[i].pattern = pattern;
            return true;
        }
    }
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 32;
        QryKey *nk = realloc(k->keys, cap * sizeof *nk);
        if (!nk) return false;
        k->keys = nk;
        char **no = realloc(k->owned, cap * sizeof *no);
        if (!no) return false;
        k->owned = no;
        for (size_t i = k->cap; i < cap; i++) no[i] = NULL;
        k->cap = cap;
    }
    k->keys[k->n].tag = tag;
    k->keys[k->n].pattern = pattern;
    k->n++;
    return true;
}

static void keys_free(KeyList *k)
{
    for (size_t i = 0; i < k->cap; i++) free(k->owned ? k->owned[i] : NULL);
    free(k->owned);
    free(k->keys);
}

static int cmp_key(const void *a, const void *b)
{
    uint32_t x = ((const QryKey *)a)->tag, y = ((const QryKey *)b)->tag;
    return x < y ? -1 : x > y;
}

typedef struct QidoOut {
    const DwQuery *q;
    const QryKey *keys;
    size_t nkeys;
    char (*vr)[3];  /* per key, looked up once per query (not once per answer) */
    Buf *out;
    size_t count;
    int rc; /* BUF_* of the first failed append */
} QidoOut;

static const char *value_of(const QidoOut *o, const QryAnswer *a, uint32_t tag)
{
    for (size_t i = 0; i < o->nkeys; i++)
        if (o->keys[i].tag == tag) return a->values[i];
    return NULL;
}

static void put(QidoOut *o, const char *s)
{
    if (o->rc == BUF_OK) o->rc = buf_append(o->out, s, strlen(s));
}

static void put_element(QidoOut *o, bool *first, uint32_t tag, const char *vr, const char *value)
{
    char *v = dcm_dicomweb_value_text(tag, vr, value);
    if (!v) {
        o->rc = BUF_NOMEM;
        return;
    }
    static const char hex[] = "0123456789ABCDEF";
    char key[16], *k = key; /* ,"GGGGEEEE": without printf: this runs for every value */
    if (!*first) *k++ = ',';
    *k++ = '"';
    for (int sh = 28; sh >= 0; sh -= 4) *k++ = hex[(tag >> sh) & 0xF];
    *k++ = '"';
    *k++ = ':';
    *k = '\0';
    *first = false;
    if (o->rc == BUF_OK) o->rc = buf_append(o->out, key, (size_t)(k - key));
    put(o, v);
    free(v);
}

static bool qido_answer(void *ctx, const QryAnswer *a)
{
    QidoOut *o = ctx;
    put(o, o->count++ ? ",{" : "{");
    bool first = true;
    bool url_done = false, cs_done = false;
    for (size_t i = 0; i <= o->nkeys && o->rc == BUF_OK; i++) {
        uint32_t tag = i < o->nkeys ? o->keys[i].tag : 0xFFFFFFFFu;
        if (!cs_done && TAG_CHARSET <= tag) {
            /* answers are UTF-8 whatever the files said */
            put_element(o, &first, TAG_CHARSET, "CS", "ISO_IR 192");
            cs_done = true;
        }
        if (!url_done && TAG_RETRIEVE_URL <= tag) {
            const char *st = value_of(o, a, TAG_STUDY_UID), *se = value_of(o, a, TAG_SERIES_UID),
                       *in = value_of(o, a, TAG_SOP_UID);
            Buf url;
            buf_init(&url, 1 << 16);
            int rc = buf_printf(&url, "%s/studies/%s", o->q->base, st ? st : "");
            if (o->q->level >= SRV_SERIES && rc == BUF_OK) rc = buf_printf(&url, "/series/%s", se ? se : "");
            if (o->q->level >= SRV_INSTANCE && rc == BUF_OK) rc = buf_printf(&url, "/instances/%s", in ? in : "");
            if (rc == BUF_OK) put_element(o, &first, TAG_RETRIEVE_URL, "UR", url.data);
            else o->rc = rc;
            buf_free(&url);
            url_done = true;
        }
        if (i == o->nkeys || tag == TAG_CHARSET || tag == TAG_RETRIEVE_URL) continue;
        const char *v = a->values[i];
        if (!v) continue; /* absent from the resource */
        put_element(o, &first, tag, o->vr[i][0] ? o->vr[i] : NULL, v);
    }
    put(o, "}");
    return o->rc == BUF_OK;
}

/* fuzzymatching on a PN: each value a prefix of the family or of any other name component,
 * case-insensitive (the engine's '\\'-list is an OR). */
static char *fuzzy_pattern(const char *p)
{
    if (strpbrk(p, "*?\\")) return strdup(p);
    size_t n = strlen(p);
    char *out = malloc(2 * n + 8);
    if (!out) return NULL;
    snprintf(out, 2 * n + 8, "%s*\\*^%s*", p, p);
    return out;
}

bool dw_qido(SrvError *err, Srv *srv, const DwQuery *q, Buf *out)
{
    KeyList k = { 0 };
    QidoOut o = { 0 };
    bool ok = false;
    const uint32_t *defs = q->level == SRV_STUDY ? STUDY_DEFAULTS : q->level == SRV_SERIES ? SERIES_DEFAULTS
                                                                                             : INSTANCE_DEFAULTS;
    size_t ndefs = q->level == SRV_STUDY    ? sizeof STUDY_DEFAULTS / sizeof STUDY_DEFAULTS[0]
                   : q->level == SRV_SERIES ? sizeof SERIES_DEFAULTS / sizeof SERIES_DEFAULTS[0]
                                            : sizeof INSTANCE_DEFAULTS / sizeof INSTANCE_DEFAULTS[0];
    bool fail_mem = false;
    for (size_t i = 0; i < ndefs; i++) fail_mem |= !key_add(&k, defs[i], NULL);
    if (q->include_all) {
        for (int l = SRV_PATIENT; l <= q->level; l++) {
            size_t n;
            const SrvMainTag *t = srv_main_tags(l, &n);
            for (size_t i = 0; i < n; i++) fail_mem |= !key_add(&k, t[i].tag, NULL);
        }
        if (q->level == SRV_STUDY) {
            fail_mem |= !key_add(&k, QRY_TAG_SOP_CLASSES_IN_STUDY, NULL);
        }
    }
    for (size_t i = 0; i < q->ninclude; i++) fail_mem |= !key_add(&k, q->include[i], NULL);
    if (q->study_uid) {
        if (!plain_uid(q->study_uid)) {
            srv_fail(err, SRV_BAD_REQUEST, "not a UID: \"%s\"", q->study_uid);
            goto out;
        }
        fail_mem |= !key_add(&k, TAG_STUDY_UID, q->study_uid);
    }
    if (q->series_uid) {
        if (!plain_uid(q->series_uid)) {
            srv_fail(err, SRV_BAD_REQUEST, "not a UID: \"%s\"", q->series_uid);
            goto out;
        }
        fail_mem |= !key_add(&k, TAG_SERIES_UID, q->series_uid);
    }
    for (size_t i = 0; i < q->nmatch && !fail_mem; i++) {
        const char *p = q->match[i].value;
        char vr[3];
        dcm_tag_vr(q->match[i].tag, vr);
        if (q->fuzzy && !strcmp(vr, "PN") && p && *p) {
            char *fp = fuzzy_pattern(p);
            if (!fp) { fail_mem = true; break; }
            fail_mem |= !key_add(&k, q->match[i].tag, fp);
            for (size_t j = 0; j < k.n; j++)
                if (k.keys[j].tag == q->match[i].tag) { free(k.owned[j]); k.owned[j] = fp; }
        } else if (!strcmp(vr, "UI") && p && strchr(p, ',')) {
            /* a UID list may be comma-separated (PS3.18 8.3.4.1): the engine's is '\\' */
            char *cp = strdup(p);
            if (!cp) { fail_mem = true; break; }
            for (char *c = cp; *c; c++)
                if (*c == ',') *c = '\\';
            fail_mem |= !key_add(&k, q->match[i].tag, cp);
            for (size_t j = 0; j < k.n; j++)
                if (k.keys[j].tag == q->match[i].tag) { free(k.owned[j]); k.owned[j] = cp; }
        } else {
            fail_mem |= !key_add(&k, q->match[i].tag, p);
        }
    }
    if (fail_mem) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    /* keys in tag order: answers print in that order; owned patterns move with their key */
    {
        typedef struct { QryKey key; char *owned; } Pair;
        Pair *p = malloc((k.n ? k.n : 1) * sizeof *p);
        if (!p) {
            srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < k.n; i++) p[i] = (Pair){ k.keys[i], k.owned[i] };
        qsort(p, k.n, sizeof *p, cmp_key); /* key first in Pair: same order as by tag */
        for (size_t i = 0; i < k.n; i++) { k.keys[i] = p[i].key; k.owned[i] = p[i].owned; }
        free(p);
    }
    bool ci = q->fuzzy || !srv->cfg.dicomweb.qido_case_sensitive;
    QryRequest rq = { .level = q->level, .keys = k.keys, .nkeys = k.n, .case_sensitive_pn = !ci,
                      .since = q->offset, .limit = q->limit };
    o = (QidoOut){ .q = q, .keys = k.keys, .nkeys = k.n, .out = out, .rc = BUF_OK };
    o.vr = calloc(k.n ? k.n : 1, sizeof *o.vr);
    if (!o.vr) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < k.n; i++) dcm_dicomweb_vr(k.keys[i].tag, o.vr[i]);
    put(&o, "[");
    if (!qry_run(err, srv, &rq, qido_answer, &o, NULL)) goto out;
    put(&o, "]");
    if (o.rc != BUF_OK) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "the answer does not fit in memory");
        goto out;
    }
    ok = true;
out:
    free(o.vr);
    keys_free(&k);
    return ok;
}

/* ---- streams ------------------------------------------------------------------------------ */

enum { DW_METADATA = 0, DW_RETRIEVE = 1 };

struct DwStream {
    Srv *srv;
    int kind;
    /* what is being sent now: pending[pos..len) */
    Buf chunk;
    size_t pos;
    bool finished;            /* nothing after the chunk */
    /* metadata */
    char **ids;
    size_t nids, next;
    char *base;
    bool opened;              /* "[" sent */
    /* retrieve */
    RetrieveList list;
    char *ts;                 /* wanted transfer syntax, NULL: as stored */
    char boundary[72];
    int fd;                   /* the current file, or -1 */
    uint64_t left;            /* its bytes still to send */
    uint64_t off;
    void *mem;                /* the current file converted, or NULL */
    size_t memlen, mempos;
    bool tail;                /* CRLF after the current part still to send */
};

static DwStream *stream_new(Srv *srv, int kind)
{
    DwStream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->srv = srv;
    s->kind = kind;
    s->fd = -1;
    buf_init(&s->chunk, DW_METADATA_MAX * 4 + 4096);
    return s;
}

void dw_stream_free(DwStream *s)
{
    if (!s) return;
    buf_free(&s->chunk);
    srv_strings_free(s->ids, s->nids);
    free(s->base);
    retrieve_list_cleanup(&s->list);
    free(s->ts);
    if (s->fd >= 0) close(s->fd);
    free(s->mem);
    free(s);
}

DwStream *dw_metadata_open(SrvError *err, Srv *srv, int level, const char *id, const char *base)
{
    DwStream *s = stream_new(srv, DW_METADATA);
    if (!s || !(s->base = strdup(base))) {
        dw_stream_free(s);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    if (!srv_resource_instances(err, srv, level, id, &s->ids, &s->nids)) {
        dw_stream_free(s);
        return NULL;
    }
    return s;
}

/* The stored DICOM JSON of an instance, or NULL (err set; SRV_UNKNOWN_RESOURCE when it was
 * deleted meanwhile). Builds and keeps it when absent. */
static char *instance_text(SrvError *err, Srv *srv, const char *id)
{
    StoError se = { 0 };
    char *v = NULL;
    int64_t rev = 0;
    if (idx_metadata_get(&se, srv->db, IDX_INSTANCE, id, DW_METADATA_NAME, &v, &rev)) {
        char *text = json_unpack(err, v);
        free(v);
        return text;
    }
    if (se.code != STO_ERR_NOT_FOUND) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    /* stored before, or too large to keep: from the file */
    CacheEntry *e = cache_acquire(err, srv, id);
    if (!e) return NULL;
    const DcmObject *obj = cache_object(e);
    char *uids[3] = { NULL, NULL, NULL };
    const uint32_t tags[3] = { TAG_STUDY_UID, TAG_SERIES_UID, TAG_SOP_UID };
    DcmError de = { 0 };
    for (int i = 0; i < 3; i++)
        if (dcm_get_string(&de, obj, tags[i], &uids[i]) == 1) srv_strip(uids[i]);
    char prefix[512];
    bulk_prefix(prefix, sizeof prefix, uids[0] ? uids[0] : "", uids[1] ? uids[1] : "", uids[2] ? uids[2] : "");
    for (int i = 0; i < 3; i++) free(uids[i]);
    DcmWebJsonOptions o = { .bulk_threshold = (size_t)srv->cfg.dicomweb.bulk_threshold,
                            .bulk_prefix = prefix, .pixel_data = true };
    char *text = NULL;
    size_t len = 0;
    bool ok = dcm_dicomweb_json_text(&de, obj, &o, &text, &len);
    cache_release(e);
    if (!ok) {
        srv_error_from_dcm(err, &de);
        return NULL;
    }
    if (len <= DW_METADATA_MAX && srv->cfg.dicomweb.enable) {
        char *packed = json_pack(text, len);
        if (packed && !idx_metadata_set(&se, srv->db, IDX_INSTANCE, id, DW_METADATA_NAME, packed))
            SRV_LOG_WARN("dicomweb", "cannot keep the DICOM JSON of %s: %s", id, se.message);
        free(packed);
    }
    return text;
}

/* Appends text to the chunk with every marker replaced by base. */
static int append_replaced(Buf *b, const char *text, const char *base)
{
    size_t bl = strlen(base);
    int rc = BUF_OK;
    for (const char *p = text; rc == BUF_OK;) {
        const char *m = strchr(p, '\x01');
        if (!m) return buf_append(b, p, strlen(p));
        rc = buf_append(b, p, (size_t)(m - p));
        if (rc == BUF_OK) rc = buf_append(b, base, bl);
        p = m + 1;
    }
    return rc;
}

/* Refills the chunk of a metadata stream with the next instance; false on failure. */
static bool metadata_fill(DwStream *s)
{
    buf_set_len(&s->chunk, 0);
    s->pos = 0;
    while (s->next < s->nids) {
        SrvError e = { 0 };
        const char *id = s->ids[s->next++];
        char *text = instance_text(&e, s->srv, id);
        if (!text) {
            /* deleted meanwhile, or one unreadable file: the rest of the answer still goes */
            if (e.code != SRV_UNKNOWN_RESOURCE) SRV_LOG_WARN("dicomweb", "metadata of %s: %s", id, e.message);
            continue;
        }
        int rc = buf_append(&s->chunk, s->opened ? "," : "[", 1);
        s->opened = true;
        if (rc == BUF_OK) rc = append_replaced(&s->chunk, text, s->base);
        free(text);
        if (rc != BUF_OK) return false;
        break;
    }
    if (s->next >= s->nids) {
        s->finished = true;
        if (buf_append(&s->chunk, s->opened ? "]" : "[]", s->opened ? 1 : 2) != BUF_OK) return false;
    }
    return true;
}

/* ---- retrieve ---- */

void dw_boundary(char out[72])
{
    char u[SRV_UUID_LEN];
    srv_uuid_new(u);
    snprintf(out, 72, "MiniPACS-%s", u);
}

typedef struct TakeCtx {
    DwStream *s;
} TakeCtx;

static int take_file(void *ctx, SrvError *err, const RetrieveFile *f)
{
    DwStream *s = ((TakeCtx *)ctx)->s;
    bool convert = s->ts && strcmp(s->ts, f->item->transfer_syntax) != 0;
    if (!convert) {
        int fd = dup(f->fd);
        if (fd < 0) {
            srv_fail(err, SRV_INTERNAL, "dup: %s", strerror(errno));
            return RETRIEVE_ABORT;
        }
        s->fd = fd;
        s->left = f->item->size;
        s->off = 0;
        return RETRIEVE_SENT;
    }
    void *buf = NULL;
    size_t len = 0;
    if (!retrieve_read(err, f, &buf, &len)) return RETRIEVE_ABORT;
    void *out = NULL;
    size_t outlen = 0;
    bool ok = srv_transcode(err, buf, len, s->ts, &out, &outlen);
    free(buf);
    if (!ok) return RETRIEVE_ABORT;
    s->mem = out;
    s->memlen = outlen;
    s->mempos = 0;
    return RETRIEVE_SENT;
}

static bool stop_after_one(void *ctx, const RetrieveStats *st)
{
    (void)ctx;
    (void)st;
    return false;
}

DwStream *dw_retrieve_open(SrvError *err, Srv *srv, int level, const char *id,
                           const char *transfer_syntax, const char *boundary)
{
    DwStream *s = stream_new(srv, DW_RETRIEVE);
    if (!s) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    snprintf(s->boundary, sizeof s->boundary, "%s", boundary);
    if (transfer_syntax && strcmp(transfer_syntax, "*") != 0 && !(s->ts = strdup(transfer_syntax))) {
        dw_stream_free(s);
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    RetrieveResource r = { level, id };
    if (!retrieve_list(err, srv, &r, 1, &s->list)) {
        dw_stream_free(s);
        return NULL;
    }
    if (s->ts) {
        for (size_t i = 0; i < s->list.n; i++) {
            if (strcmp(s->list.items[i].transfer_syntax, s->ts) != 0 && !srv_transcode_supported(s->ts)) {
                srv_fail(err, SRV_NOT_ACCEPTABLE, "cannot convert to transfer syntax %s", s->ts);
                err->http_status = 406;
                dw_stream_free(s);
                return NULL;
            }
        }
    }
    return s;
}

/* Next part of a retrieve stream into the chunk (header) and fd/mem (body). */
static bool retrieve_fill(DwStream *s)
{
    buf_set_len(&s->chunk, 0);
    s->pos = 0;
    if (s->tail) {
        s->tail = false;
        if (buf_append(&s->chunk, "\r\n", 2) != BUF_OK) return false;
    }
    while (s->next < s->list.n) {
        size_t i = s->next++;
        TakeCtx tc = { s };
        RetrieveSink sink = { .file = take_file, .progress = stop_after_one, .ctx = &tc };
        SrvError e = { 0 };
        RetrieveStats st;
        if (!retrieve_run(&e, s->srv, &s->list, i, &sink, &st, NULL)) {
            SRV_LOG_WARN("dicomweb", "retrieve of %s stopped: %s", s->list.items[i].id, e.message);
            return false;
        }
        if (st.failed) continue; /* file gone: logged by retrieve_run */
        uint64_t size = s->mem ? s->memlen : s->left;
        if (buf_printf(&s->chunk, "--%s\r\nContent-Type: application/dicom%s%s\r\nContent-Length: %llu\r\n"
                       "MIME-Version: 1.0\r\n\r\n", s->boundary, s->ts ? "; transfer-syntax=" : "",
                       s->ts ? s->ts : "", (unsigned long long)size) != BUF_OK)
            return false;
        s->tail = true;
        return true;
    }
    s->finished = true;
    return buf_printf(&s->chunk, "--%s--\r\n", s->boundary) == BUF_OK;
}

ssize_t dw_stream_read(DwStream *s, char *buf, size_t max)
{
    for (;;) {
        if (s->pos < s->chunk.len) {
            size_t n = s->chunk.len - s->pos;
            if (n > max) n = max;
            memcpy(buf, s->chunk.data + s->pos, n);
            s->pos += n;
            return (ssize_t)n;
        }
        if (s->kind == DW_RETRIEVE) {
            if (s->mem) {
                if (s->mempos < s->memlen) {
                    size_t n = s->memlen - s->mempos;
                    if (n > max) n = max;
                    memcpy(buf, (char *)s->mem + s->mempos, n);
                    s->mempos += n;
                    return (ssize_t)n;
                }
                free(s->mem);
                s->mem = NULL;
            }
            if (s->fd >= 0) {
                if (s->left > 0) {
                    size_t want = s->left < max ? (size_t)s->left : max;
                    ssize_t r = pread(s->fd, buf, want, (off_t)s->off);
                    if (r < 0 && errno == EINTR) continue;
                    if (r <= 0) {
                        SRV_LOG_WARN("dicomweb", "file read failed mid-stream: %s",
                                     r < 0 ? strerror(errno) : "short file");
                        return -1;
                    }
                    s->off += (uint64_t)r;
                    s->left -= (uint64_t)r;
                    return r;
                }
                close(s->fd);
                s->fd = -1;
            }
        }
        if (s->finished) return 0;
        bool ok = s->kind == DW_METADATA ? metadata_fill(s) : retrieve_fill(s);
        if (!ok) return -1;
    }
}

/* ---- small services ----------------------------------------------------------------------- */

bool dw_representative_instance(SrvError *err, Srv *srv, int level, const char *id,
                                char out[SRV_ID_LEN])
{
    if (level == SRV_INSTANCE) {
        snprintf(out, SRV_ID_LEN, "%s", id);
        return true;
    }
    char series[SRV_ID_LEN];
    if (level == SRV_STUDY) {
        char **ids = NULL;
        size_t n = 0;
        if (!srv_resource_descendants(err, srv, level, id, SRV_SERIES, &ids, &n)) return false;
        if (n == 0) {
            srv_strings_free(ids, n);
            return srv_fail(err, SRV_UNKNOWN_RESOURCE, "study %s has no series", id);
        }
        snprintf(series, sizeof series, "%s", ids[0]);
        srv_strings_free(ids, n);
    } else {
        snprintf(series, sizeof series, "%s", id);
    }
    char **ids = NULL;
    size_t n = 0;
    if (!srv_resource_instances(err, srv, SRV_SERIES, series, &ids, &n)) return false;
    if (n == 0) {
        srv_strings_free(ids, n);
        return srv_fail(err, SRV_UNKNOWN_RESOURCE, "series %s has no instance", series);
    }
    snprintf(out, SRV_ID_LEN, "%s", ids[n / 2]);
    srv_strings_free(ids, n);
    return true;
}

cJSON *dw_instance_json(SrvError *err, Srv *srv, const char *instance_id, const char *base)
{
    char *text = instance_text(err, srv, instance_id);
    if (!text) return NULL;
    Buf b;
    buf_init(&b, DW_METADATA_MAX * 4 + 4096);
    cJSON *j = NULL;
    /* no base: BulkDataURIs relative to the DICOMweb root ("/studies/...") */
    if (append_replaced(&b, text, base ? base : "") == BUF_OK) j = cJSON_Parse(b.data);
    buf_free(&b);
    free(text);
    if (!j) srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    return j;
}

bool dw_instance_syntax(SrvError *err, Srv *srv, const char *instance_id, char out[68])
{
    char *v = NULL;
    int64_t rev;
    out[0] = 0;
    StoError se = { 0 };
    if (idx_metadata_get(&se, srv->db, IDX_INSTANCE, instance_id, "TransferSyntax", &v, &rev)) {
        snprintf(out, 68, "%s", v);
        free(v);
        return true;
    }
    if (se.code == STO_ERR_NOT_FOUND) {
        /* the instance exists? */
        if (srv_resource_level(err, srv, instance_id) < 0) return false;
        return true;
    }
    srv_error_from_sto(err, &se);
    return false;
}

/* ---- frames of native instances, straight from the file ----------------------------------- */

static long json_number(const cJSON *ds, const char *key, long def)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(ds, key);
    const cJSON *v = e ? cJSON_GetObjectItemCaseSensitive(e, "Value") : NULL;
    const cJSON *x = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : NULL;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble <= 1e9)) return def;
    return (long)x->valuedouble;
}

int dw_frames_native(SrvError *err, Srv *srv, const char *instance, const uint32_t *frames, size_t n,
                     SrvFrameFn fn, void *ctx)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    int ret = 0;
    int fd = -1;
    char *buf = NULL;
    cJSON *ds = NULL;
    if (!idx_resource_get(&se, srv->db, IDX_INSTANCE, instance, &r)) {
        srv_error_from_sto(err, &se);
        return -1;
    }
    const char *ts = idx_resource_metadata(&r, "TransferSyntax");
    const char *off = idx_resource_metadata(&r, "PixelDataOffset");
    const char *kept = idx_resource_metadata(&r, DW_METADATA_NAME);
    if (!ts || !off || !kept || (strcmp(ts, "1.2.840.10008.1.2") && strcmp(ts, "1.2.840.10008.1.2.1")))
        goto out; /* not applicable: the general path decodes */
    {
        SrvError ue = { 0 };
        char *json = json_unpack(&ue, kept);
        ds = json ? cJSON_Parse(json) : NULL;
        free(json);
        if (!ds) goto out;
    }
    long rows = json_number(ds, "00280010", 0), cols = json_number(ds, "00280011", 0);
    long bits = json_number(ds, "00280100", 0), spp = json_number(ds, "00280002", 1);
    long total = json_number(ds, "00280008", 1);
    uint64_t offset = strtoull(off, NULL, 10);
    if (rows <= 0 || cols <= 0 || (bits != 8 && bits != 16 && bits != 32) || (spp != 1 && spp != 3) ||
        total <= 0 || offset < 4)
        goto out;
    uint64_t fsize = (uint64_t)rows * (uint64_t)cols * (uint64_t)spp * (uint64_t)(bits / 8);
    if (fsize > ((uint64_t)1 << 30)) goto out;
    uint64_t size = 0;
    if ((fd = sto_area_open_fd(&se, srv->area, r.uuid, &size)) < 0) goto out;
    uint8_t lb[4];
    if (pread(fd, lb, 4, (off_t)(offset - 4)) != 4) goto out;
    uint64_t len = (uint64_t)lb[0] | (uint64_t)lb[1] << 8 | (uint64_t)lb[2] << 16 | (uint64_t)lb[3] << 24;
    if (len == 0xFFFFFFFFu || len < fsize * (uint64_t)total || offset + len > size) goto out;
    if (!(buf = malloc(fsize))) {
        ret = -1;
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (frames[i] >= (uint64_t)total) {
            srv_fail(err, SRV_INEXISTENT_ITEM, "instance %s has no frame %u (it has %ld)", instance,
                     (unsigned)frames[i] + 1, total);
            err->http_status = 404;
            ret = -1;
            goto out;
        }
        size_t got = 0;
        while (got < fsize) {
            ssize_t k = pread(fd, buf + got, fsize - got, (off_t)(offset + frames[i] * fsize + got));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                srv_fail(err, SRV_INEXISTENT_FILE, "cannot read the pixels of %s", instance);
                ret = -1;
                goto out;
            }
            got += (size_t)k;
        }
        if (!fn(ctx, err, frames[i], buf, fsize, "application/octet-stream")) {
            ret = -1;
            goto out;
        }
    }
    ret = 1;
out:
    free(buf);
    if (fd >= 0) close(fd);
    cJSON_Delete(ds);
    idx_resource_cleanup(&r);
    return ret;
}
