/* query.c -- the one query engine (see query.h).
 *
 * DESIGN: three passes over one request.
 * 1. Classify each key: a main tag of the level or an ancestor becomes an IdxFindConstraint
 *    (matched in SQL by idx_find); ModalitiesInStudy at study level is a computed constraint;
 *    any other tag with a pattern is a file constraint. Universal patterns constrain nothing.
 * 2. idx_find gives the candidates in insertion order. With no computed or file constraint,
 *    paging (since/limit) goes into the SQL; otherwise it is applied after filtering here.
 * 3. For each candidate: check computed and file constraints, then build the values of every
 *    key (main tags from the index rows of the resource and its ancestors, computed counts,
 *    the stored file for other tags) and call the callback.
 * The index rows the answers need are read in batches of candidates (BATCH), one snapshot
 * per level (idx_resources_get): the candidates' own rows (children listed or counted only
 * when a computed key needs them), their ancestors' up to the highest level a key needs (a
 * study-level answer reads no patient row: the study keeps its copy of the patient tags), and
 * for ModalitiesInStudy / NumberOfStudyRelatedInstances their series' rows (tags, child
 * count). So an answer costs a few statements, not a round trip per row and per computed
 * attribute. A row missing from the batch (deleted meanwhile) is read alone, and reported.
 * The file of the current resource is read at most once per candidate through the DICOM
 * cache (a pinned, shared parsed object).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/query.h"
#include "storage/storage.h"

/* ---- matching -------------------------------------------------------------------------- */

bool qry_universal(const char *p)
{
    if (!p) return true;
    for (; *p; p++)
        if (*p != '*') return false;
    return true;
}

static int fold(int c, bool ci)
{
    return ci ? tolower((unsigned char)c) : (unsigned char)c;
}

/* '*' and '?' wildcards, iterative with one backtrack point (linear in practice). '?' matches
 * one byte: good enough for ASCII; a UTF-8 character is several bytes (as Orthanc's SQL). */
static bool wild(const char *p, size_t pn, const char *v, size_t vn, bool ci)
{
    size_t pi = 0, vi = 0, star = (size_t)-1, mark = 0;
    while (vi < vn) {
        if (pi < pn && (p[pi] == '?' || fold(p[pi], ci) == fold(v[vi], ci))) {
            pi++;
            vi++;
        } else if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = vi;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            vi = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*') pi++;
    return pi == pn;
}

static bool match_one(const char *p, size_t pn, const char *v, bool ci, bool range, bool literal)
{
    size_t vn = strlen(v);
    const char *dash = range ? memchr(p, '-', pn) : NULL;
    if (dash) {
        if (vn == 0) return false; /* an empty date is in no range */
        size_t lo = (size_t)(dash - p), hi = pn - lo - 1;
        /* string order works for DA (YYYYMMDD), TM (HHMMSS.F) and DT prefixes; the upper
         * bound includes every value that starts with it ("-2020" includes 20201231...) */
        if (lo && strncmp(v, p, lo) < 0) return false;
        if (hi) {
            size_t cmp = vn < hi ? vn : hi;
            int c = strncmp(v, dash + 1, cmp);
            if (c > 0) return false;
        }
        return true;
    }
    if (!literal && (memchr(p, '*', pn) || memchr(p, '?', pn))) return wild(p, pn, v, vn, ci);
    if (pn != vn) return false;
    for (size_t i = 0; i < pn; i++)
        if (fold(p[i], ci) != fold(v[i], ci)) return false;
    return true;
}

bool qry_match(const char *pattern, const char *value, bool ci, bool range)
{
    return qry_match_ex(pattern, value, ci, range, false);
}

bool qry_match_ex(const char *pattern, const char *value, bool ci, bool range, bool literal_lists)
{
    if (qry_universal(pattern)) return true;
    if (!value) return false;
    bool literal = literal_lists && strchr(pattern, '\\') != NULL;
    /* a multi-valued value matches when one of its values does */
    const char *p = pattern;
    for (;;) {
        const char *end = strchr(p, '\\');
        size_t pn = end ? (size_t)(end - p) : strlen(p);
        const char *v = value;
        for (;;) {
            const char *vend = strchr(v, '\\');
            char one[1024];
            size_t vl = vend ? (size_t)(vend - v) : strlen(v);
            if (vl >= sizeof one) vl = sizeof one - 1;
            memcpy(one, v, vl);
            one[vl] = '\0';
            if (match_one(p, pn, one, ci, range, literal)) return true;
            if (!vend) break;
            v = vend + 1;
        }
        if (!end) break;
        p = end + 1;
    }
    return false;
}

int qry_main_tag_level(uint32_t tag, int max_level)
{
    for (int l = max_level; l >= 0; l--) {
        size_t n;
        const SrvMainTag *t = srv_main_tags(l, &n);
        for (size_t i = 0; i < n; i++)
            if (t[i].tag == tag) return l;
    }
    return -1;
}

bool qry_is_computed(uint32_t tag, int level)
{
    switch (tag) {
    case QRY_TAG_PATIENT_STUDIES:
    case QRY_TAG_PATIENT_SERIES:
    case QRY_TAG_PATIENT_INSTANCES:
        return level == IDX_PATIENT;
    case QRY_TAG_STUDY_SERIES:
    case QRY_TAG_STUDY_INSTANCES:
    case QRY_TAG_MODALITIES_IN_STUDY:
    case QRY_TAG_SOP_CLASSES_IN_STUDY:
        return level == IDX_STUDY;
    case QRY_TAG_SERIES_INSTANCES:
        return level == IDX_SERIES;
    default:
        return false;
    }
}

static bool tag_is(uint32_t tag, const char *vr_want)
{
    char vr[3];
    dcm_tag_vr(tag, vr);
    return strstr(vr_want, vr) != NULL;
}

static bool has_letter(const char *p)
{
    for (; *p; p++)
        if (isalpha((unsigned char)*p)) return true;
    return false;
}

/* ---- the walk -------------------------------------------------------------------------- */

enum { K_NONE = 0, K_MAIN = 1, K_COMPUTED = 2, K_FILE = 3, K_LEVEL = 4, K_META = 5 };
#define TAG_SOP_CLASS_UID 0x00080016u /* at instance level: the index's SopClassUid metadata */

typedef struct Walk {
    Srv *srv;
    const QryRequest *rq;
    int *kind;                 /* per key */
    int *key_level;            /* K_MAIN: the level owning the tag */
    bool *ci, *range;          /* per key */
    bool post_filter;          /* some constraint is checked here, not in SQL */
    bool need_file;            /* some key needs the stored file */
    const IdxResource *chain[IDX_LEVELS]; /* rows of the current resource and ancestors */
    IdxResource own[IDX_LEVELS]; /* rows read one at a time (outside a batch; cached) */
    int top;                   /* the highest level (smallest number) whose row a key needs */
    unsigned what;             /* IDX_GET_* read for the answers' own rows */
    unsigned kids_what;        /* IDX_GET_* of the study answers' series rows (ModalitiesInStudy:
                                  tags, NumberOfStudyRelatedInstances: child counts), 0: none */
    /* the batch: the rows of the next BATCH candidates, their ancestors and their children,
     * read in one snapshot per level (sorted by ID for lookups) */
    IdxResource *pre[IDX_LEVELS];
    size_t npre[IDX_LEVELS];
    IdxResource *kids;
    size_t nkids;
    char **values;             /* per key, malloc'd, for the current answer */
    CacheEntry *file;          /* the current resource's representative file, or NULL */
    bool file_tried;
} Walk;

#define BATCH 64

static int cmp_res_id(const void *a, const void *b)
{
    return strcmp(((const IdxResource *)a)->id, ((const IdxResource *)b)->id);
}

static const IdxResource *find_in(const IdxResource *arr, size_t n, const char *id)
{
    if (!n || !id[0]) return NULL;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(arr[mid].id, id);
        if (!c) return &arr[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void free_rows(IdxResource **arr, size_t *n)
{
    for (size_t i = 0; i < *n; i++) idx_resource_cleanup(&(*arr)[i]);
    free(*arr);
    *arr = NULL;
    *n = 0;
}

static void batch_clear(Walk *w)
{
    for (int l = 0; l < IDX_LEVELS; l++) free_rows(&w->pre[l], &w->npre[l]);
    free_rows(&w->kids, &w->nkids);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads rows of `level` for the n IDs (duplicates and "" dropped) into *out, sorted by ID. */
static bool read_rows(SrvError *err, Walk *w, int level, const char **ids, size_t n, unsigned what,
                      IdxResource **out, size_t *nout)
{
    qsort(ids, n, sizeof *ids, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i][0] && (!k || strcmp(ids[k - 1], ids[i]))) ids[k++] = ids[i];
    if (!k) return true;
    IdxResource *rows = calloc(k, sizeof *rows);
    if (!rows) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    StoError se = { 0 };
    if (!idx_resources_get(&se, w->srv->db, level, (const char *const *)ids, k, what, rows)) {
        free(rows);
        srv_error_from_sto(err, &se);
        return false;
    }
    /* ids were sorted: rows are too (an absent one is zeroed: its "" sorts first) */
    qsort(rows, k, sizeof *rows, cmp_res_id);
    *out = rows;
    *nout = k;
    return true;
}

/* Reads the rows the next n candidates need, in one snapshot per level: theirs, their
 * ancestors' up to w->top, their children's when the computed keys need them. A row missing
 * here (deleted meanwhile) is read again one at a time by load_chain, which reports it. */
static bool batch_load(SrvError *err, Walk *w, char **ids, size_t n)
{
    batch_clear(w);
    int level = w->rq->level;
    const char **list = malloc((n ? n : 1) * sizeof *list);
    if (!list) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) list[i] = ids[i];
    bool ok = read_rows(err, w, level, list, n, w->what, &w->pre[level], &w->npre[level]);
    free(list);
    for (int l = level - 1; ok && l >= w->top; l--) {
        size_t m = w->npre[l + 1];
        const char **parents = malloc((m ? m : 1) * sizeof *parents);
        if (!parents) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        for (size_t i = 0; i < m; i++) parents[i] = w->pre[l + 1][i].parent_id;
        ok = read_rows(err, w, l, parents, m, IDX_GET_TAGS, &w->pre[l], &w->npre[l]);
        free(parents);
    }
    if (ok && w->kids_what) {
        size_t m = 0;
        for (size_t i = 0; i < w->npre[level]; i++) m += w->pre[level][i].nchildren;
        const char **kids = malloc((m ? m : 1) * sizeof *kids);
        if (!kids) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        m = 0;
        for (size_t i = 0; i < w->npre[level]; i++)
            for (size_t k = 0; k < w->pre[level][i].nchildren && w->pre[level][i].children; k++)
                kids[m++] = w->pre[level][i].children[k];
        ok = read_rows(err, w, level + 1, kids, m, w->kids_what, &w->kids, &w->nkids);
        free(kids);
    }
    return ok;
}

/* Points w->chain at the resource and the ancestors the keys need: the batch's rows, else read
 * one at a time (ancestors cached between answers: answers of one study come in a row). */
static bool load_chain(SrvError *err, Walk *w, int level, const char *id)
{
    const char *want = id;
    for (int l = level; l >= w->top; l--) {
        const IdxResource *r = find_in(w->pre[l], w->npre[l], want);
        if (!r) {
            if (strcmp(w->own[l].id, want) != 0) {
                idx_resource_cleanup(&w->own[l]);
                StoError se = { 0 };
                if (!idx_resource_get(&se, w->srv->db, l, want, &w->own[l])) {
                    srv_error_from_sto(err, &se);
                    return false;
                }
            }
            r = &w->own[l];
        }
        w->chain[l] = r;
        want = r->parent_id;
    }
    return true;
}

static const char *main_value(const IdxResource *r, uint32_t tag)
{
    for (size_t i = 0; i < r->ntags; i++)
        if (r->tag_keys[i] == tag) return r->tag_values[i];
    return NULL;
}

/* The representative instance: the resource itself, or its first instance. */
static const DcmObject *rep_file(Walk *w, int level, const char *id)
{
    if (w->file_tried) return w->file ? cache_object(w->file) : NULL;
    w->file_tried = true;
    SrvError e = { 0 };
    char inst[IDX_ID_LEN];
    if (level == IDX_INSTANCE) {
        snprintf(inst, sizeof inst, "%s", id);
    } else {
        StoError se = { 0 };
        IdxFile *files = NULL;
        size_t n = 0;
        if (!idx_instances_of(&se, w->srv->db, level, id, &files, &n) || n == 0) {
            free(files);
            return NULL;
        }
        snprintf(inst, sizeof inst, "%s", files[0].id);
        free(files);
    }
    w->file = cache_acquire(&e, w->srv, inst);
    if (!w->file) {
        SRV_LOG_WARN("query", "cannot read instance %s for a query key: %s", inst, e.message);
        return NULL;
    }
    return cache_object(w->file);
}

static char *file_value(Walk *w, int level, const char *id, uint32_t tag)
{
    const DcmObject *obj = rep_file(w, level, id);
    if (!obj) return NULL;
    DcmError de = { 0 };
    char *v = NULL;
    if (dcm_get_string(&de, obj, tag, &v) != 1) return NULL;
    return v;
}

static char *u64_text(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return strdup(buf);
}

/* Appends s to a '\\'-joined list if not already in it. */
static bool list_add(char **list, const char *s)
{
    if (!s) return true;
    size_t sl = strlen(s);
    if (*list) {
        for (const char *p = *list;;) {
            const char *e = strchr(p, '\\');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n == sl && memcmp(p, s, n) == 0) return true;
            if (!e) break;
            p = e + 1;
        }
    }
    size_t ol = *list ? strlen(*list) : 0;
    char *n = realloc(*list, ol + sl + 2);
    if (!n) return false;
    if (ol) n[ol++] = '\\';
    memcpy(n + ol, s, sl + 1);
    *list = n;
    return true;
}

/* ModalitiesInStudy or SOPClassesInStudy of a study. NULL on error; "" when none. */
static char *study_list(Walk *w, const IdxResource *study, bool sop_classes)
{
    char *out = NULL;
    bool ok = true;
    StoError se = { 0 };
    for (size_t i = 0; i < study->nchildren && ok; i++) {
        const IdxResource *kid = find_in(w->kids, w->nkids, study->children[i]);
        if (kid && !sop_classes) { /* the batch's row */
            ok = list_add(&out, main_value(kid, 0x00080060));
            continue;
        }
        IdxResource s = { 0 };
        if (!idx_resource_get(&se, w->srv->db, IDX_SERIES, study->children[i], &s)) continue;
        if (!sop_classes) {
            ok = list_add(&out, main_value(&s, 0x00080060));
        } else {
            for (size_t k = 0; k < s.nchildren && ok; k++) {
                IdxResource in = { 0 };
                if (!idx_resource_get(&se, w->srv->db, IDX_INSTANCE, s.children[k], &in)) continue;
                ok = list_add(&out, idx_resource_metadata(&in, "SopClassUid"));
                idx_resource_cleanup(&in);
            }
        }
        idx_resource_cleanup(&s);
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    return out ? out : strdup("");
}

static char *computed_value(Walk *w, int level, uint32_t tag)
{
    const IdxResource *r = w->chain[level];
    if (tag == QRY_TAG_MODALITIES_IN_STUDY) return study_list(w, r, false);
    if (tag == QRY_TAG_SOP_CLASSES_IN_STUDY) return study_list(w, r, true);
    if (tag == QRY_TAG_STUDY_SERIES) return u64_text(r->nchildren);
    if (tag == QRY_TAG_SERIES_INSTANCES) return u64_text(r->nchildren);
    if (tag == QRY_TAG_STUDY_INSTANCES && r->children) { /* the sum over the batch's series */
        uint64_t sum = 0;
        size_t i = 0;
        for (; i < r->nchildren; i++) {
            const IdxResource *kid = find_in(w->kids, w->nkids, r->children[i]);
            if (!kid) break;
            sum += kid->nchildren;
        }
        if (i == r->nchildren) return u64_text(sum);
    }
    IdxCounts c = { 0 };
    StoError se = { 0 };
    if (!idx_resource_counts(&se, w->srv->db, level, r->id, &c)) return NULL;
    switch (tag) {
    case QRY_TAG_PATIENT_STUDIES: return u64_text(c.studies);
    case QRY_TAG_PATIENT_SERIES: return u64_text(c.series);
    case QRY_TAG_PATIENT_INSTANCES:
    case QRY_TAG_STUDY_INSTANCES: return u64_text(c.instances);
    default: return NULL;
    }
}

static void clear_values(Walk *w)
{
    for (size_t i = 0; i < w->rq->nkeys; i++) {
        free(w->values[i]);
        w->values[i] = NULL;
    }
    if (w->file) cache_release(w->file);
    w->file = NULL;
    w->file_tried = false;
}

/* Fills w->values for the candidate; *match false when a post-filter rejects it. */
static bool build(SrvError *err, Walk *w, const char *id, bool *match)
{
    const QryRequest *rq = w->rq;
    int level = rq->level;
    *match = true;
    if (!load_chain(err, w, level, id)) return false;
    for (size_t i = 0; i < rq->nkeys; i++) {
        const QryKey *k = &rq->keys[i];
        char *v = NULL;
        switch (w->kind[i]) {
        case K_MAIN: {
            const char *m = main_value(w->chain[w->key_level[i]], k->tag);
            if (m && !(v = strdup(m))) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            break;
        }
        case K_COMPUTED:
            v = computed_value(w, level, k->tag);
            break;
        case K_FILE:
            v = file_value(w, level, id, k->tag);
            break;
        case K_META: {
            const char *m = idx_resource_metadata(w->chain[IDX_INSTANCE], "SopClassUid");
            if (m && !(v = strdup(m))) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            break;
        }
        case K_LEVEL:
            v = strdup(level == IDX_PATIENT ? "PATIENT" : level == IDX_STUDY ? "STUDY"
                       : level == IDX_SERIES ? "SERIES" : "IMAGE");
            break;
        default:
            break;
        }
        w->values[i] = v;
        if (w->kind[i] == K_MAIN && w->range[i] && k->pattern && strchr(k->pattern, '-') &&
            !qry_match(k->pattern, v, false, true))
            *match = false;
        bool counted = w->kind[i] == K_COMPUTED && k->tag != QRY_TAG_MODALITIES_IN_STUDY &&
                       k->tag != QRY_TAG_SOP_CLASSES_IN_STUDY; /* counts never filter */
        if ((w->kind[i] == K_COMPUTED && !counted) || w->kind[i] == K_FILE || w->kind[i] == K_META) {
            if (!qry_universal(k->pattern) &&
                !qry_match_ex(k->pattern, v, w->ci[i], w->range[i], rq->literal_lists))
                *match = false;
        }
        if (!*match && rq->ids_only) return true;
    }
    return true;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool qry_run(SrvError *err, Srv *srv, const QryRequest *rq, QryAnswerFn fn, void *ctx,
             bool *complete)
{
    bool ok = false, done = true;
    IdxFindConstraint *cons = NULL;
    char **ids = NULL;
    size_t nids = 0, ncons = 0;
    Walk w = { 0 };
    w.srv = srv;
    w.rq = rq;
    if (complete) *complete = true;
    if (rq->level < IDX_PATIENT || rq->level > IDX_INSTANCE)
        return srv_fail(err, SRV_BAD_REQUEST, "bad query level %d", rq->level);
    size_t nk = rq->nkeys ? rq->nkeys : 1;
    w.kind = calloc(nk, sizeof *w.kind);
    w.key_level = calloc(nk, sizeof *w.key_level);
    w.ci = calloc(nk, sizeof *w.ci);
    w.range = calloc(nk, sizeof *w.range);
    w.values = calloc(nk, sizeof *w.values);
    cons = calloc(nk, sizeof *cons);
    if (!w.kind || !w.key_level || !w.ci || !w.range || !w.values || !cons) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rq->nkeys; i++) {
        uint32_t tag = rq->keys[i].tag;
        const char *p = rq->keys[i].pattern;
        w.ci[i] = (tag_is(tag, "PN") && !rq->case_sensitive_pn) || rq->case_insensitive_all;
        w.range[i] = tag_is(tag, "DA TM DT");
        int ml;
        if (tag == QRY_TAG_QUERY_LEVEL) {
            w.kind[i] = K_LEVEL;
        } else if (tag == QRY_TAG_CHARSET) {
            w.kind[i] = K_NONE;
        } else if ((ml = qry_main_tag_level(tag, rq->level)) >= 0) {
            if (ml == IDX_PATIENT && rq->level >= IDX_STUDY)
                ml = IDX_STUDY; /* the study's copy of its patient tags */
            w.kind[i] = K_MAIN;
            w.key_level[i] = ml;
            if (!qry_universal(p) && w.range[i] && strchr(p, '-'))
                w.post_filter = true; /* the index's ranges let empty values in: checked here */
            if (!qry_universal(p)) {
                cons[ncons].level = ml;
                cons[ncons].tag = tag;
                cons[ncons].pattern = p;
                cons[ncons].case_insensitive = w.ci[i] && has_letter(p); /* else: the index */
                cons[ncons].range = w.range[i];
                cons[ncons].literal_list = rq->literal_lists;
                ncons++;
            }
        } else if (tag == TAG_SOP_CLASS_UID && rq->level == IDX_INSTANCE) {
            w.kind[i] = K_META;
            if (!qry_universal(p)) w.post_filter = true;
        } else if (qry_is_computed(tag, rq->level)) {
            w.kind[i] = K_COMPUTED;
            /* only ModalitiesInStudy / SOPClassesInStudy are matched; counts never are */
            if (!qry_universal(p) &&
                (tag == QRY_TAG_MODALITIES_IN_STUDY || tag == QRY_TAG_SOP_CLASSES_IN_STUDY))
                w.post_filter = true;
        } else if (((tag >> 16) & 1) == 0 && (tag >> 16) != 0x0002 && (tag >> 16) != 0x0000 &&
                   tag != 0x7fe00010) {
            w.kind[i] = K_FILE;
            w.need_file = true;
            if (!qry_universal(p)) w.post_filter = true;
        } else {
            w.kind[i] = K_NONE; /* private or group 0000/0002 tags: never answered */
        }
    }

    bool sort = rq->sort_by_id;
    bool page_here = w.post_filter || sort; /* paging after filtering / sorting */
    uint64_t since = page_here ? 0 : rq->since;
    uint64_t limit = page_here || !rq->limit ? 0 : rq->limit + 1; /* +1: more left? */
    StoError se = { 0 };
    if (!idx_find(&se, srv->db, rq->level, cons, ncons, since, limit, &ids, &nids)) {
        srv_error_from_sto(err, &se);
        goto out;
    }
    if (sort && nids > 1) qsort(ids, nids, sizeof *ids, cmp_id);
    /* which rows the answers need: theirs (with children only for the computed keys that
     * count or list them, metadata only for an instance's SOPClassUID), their ancestors' up
     * to the highest level of a main-tag key, their series' for ModalitiesInStudy and
     * NumberOfStudyRelatedInstances */
    w.top = rq->level;
    w.what = IDX_GET_TAGS;
    for (size_t i = 0; i < rq->nkeys; i++) {
        uint32_t tag = rq->keys[i].tag;
        if (w.kind[i] == K_MAIN && w.key_level[i] < w.top) w.top = w.key_level[i];
        if (w.kind[i] == K_META) w.what |= IDX_GET_META;
        if (w.kind[i] != K_COMPUTED) continue;
        if (tag == QRY_TAG_STUDY_SERIES || tag == QRY_TAG_SERIES_INSTANCES) w.what |= IDX_GET_NCHILDREN;
        if (tag == QRY_TAG_MODALITIES_IN_STUDY || tag == QRY_TAG_SOP_CLASSES_IN_STUDY ||
            tag == QRY_TAG_STUDY_INSTANCES)
            w.what |= IDX_GET_CHILDREN;
        if (tag == QRY_TAG_MODALITIES_IN_STUDY) w.kids_what |= IDX_GET_TAGS;
        if (tag == QRY_TAG_STUDY_INSTANCES) w.kids_what |= IDX_GET_NCHILDREN;
    }
    uint64_t skipped = 0, given = 0;
    size_t batch_end = 0, batch = BATCH / 4; /* a first small batch: C-FIND may stop early */
    for (size_t i = 0; i < nids; i++) {
        bool match = true;
        if (rq->ids_only && !w.post_filter) {
            /* nothing to check or build */
        } else {
            if (i >= batch_end) {
                batch_end = i + (nids - i < batch ? nids - i : batch);
                batch = BATCH;
                if (!batch_load(err, &w, ids + i, batch_end - i)) goto out;
            }
            SrvError be = { 0 };
            if (!build(&be, &w, ids[i], &match)) {
                if (be.code == SRV_UNKNOWN_RESOURCE) { /* deleted meanwhile */
                    clear_values(&w);
                    continue;
                }
                *err = be;
                clear_values(&w);
                goto out;
            }
        }
        if (!match) {
            clear_values(&w);
            continue;
        }
        if (page_here && skipped < rq->since) {
            skipped++;
            clear_values(&w);
            continue;
        }
        if (rq->limit && given >= rq->limit) {
            done = false;
            clear_values(&w);
            break;
        }
        QryAnswer a = { rq->level, ids[i], rq->ids_only ? NULL : (const char *const *)w.values,
                        rq->ids_only ? 0 : rq->nkeys };
        given++;
        bool go_on = fn(ctx, &a);
        clear_values(&w);
        if (!go_on) {
            done = false;
            break;
        }
    }
    ok = true;
out:
    if (complete) *complete = done;
    idx_strings_free(ids, nids);
    for (int l = 0; l < IDX_LEVELS; l++) idx_resource_cleanup(&w.own[l]);
    batch_clear(&w);
    if (w.values) clear_values(&w);
    free(w.kind);
    free(w.key_level);
    free(w.ci);
    free(w.range);
    free(w.values);
    free(cons);
    return ok;
}
