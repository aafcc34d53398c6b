/* retrieve.c -- the one retrieve path (see retrieve.h).
 *
 * DESIGN: retrieve_list() asks the index for the instances under each resource
 * (idx_instances_of, insertion order), drops duplicates (a study and one of its series given
 * together), and reads the instances' rows (a batch at a time, idx_resources_get) for their SOP
 * Instance UID (main tag) and TransferSyntax / SopClassUid metadata, so senders can negotiate
 * before opening any file.
 * retrieve_run() hands one file at a time to the sink, with the next one already open for the
 * sink's read-ahead; it never reads the files itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "server/retrieve.h"
#include "storage/storage.h"

void retrieve_list_cleanup(RetrieveList *l)
{
    if (!l) return;
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Open-addressing set of instance IDs already listed. */
typedef struct IdSet {
    char (*slots)[IDX_ID_LEN];
    size_t cap, n;
} IdSet;

static size_t hash_id(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool idset_add(IdSet *s, const char *id, bool *added)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char (*slots)[IDX_ID_LEN] = calloc(cap, IDX_ID_LEN);
        if (!slots) return false;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i][0]) continue;
            size_t k = hash_id(s->slots[i]) & (cap - 1);
            while (slots[k][0]) k = (k + 1) & (cap - 1);
            memcpy(slots[k], s->slots[i], IDX_ID_LEN);
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t k = hash_id(id) & (s->cap - 1);
    while (s->slots[k][0]) {
        if (strcmp(s->slots[k], id) == 0) {
            *added = false;
            return true;
        }
        k = (k + 1) & (s->cap - 1);
    }
    snprintf(s->slots[k], IDX_ID_LEN, "%s", id);
    s->n++;
    *added = true;
    return true;
}

#define RETRIEVE_BATCH 256 /* instance rows read in one index call */

static void copy_uid(char dst[RETRIEVE_UID_LEN], const char *src)
{
    snprintf(dst, RETRIEVE_UID_LEN, "%s", src ? src : "");
}

bool retrieve_list(SrvError *err, Srv *srv, const RetrieveResource *res, size_t n,
                   RetrieveList *out)
{
    memset(out, 0, sizeof *out);
    IdSet seen = { 0 };
    IdxResource *rows = NULL; /* RETRIEVE_BATCH of them, allocated at the first batch */
    size_t cap = 0;
    bool ok = false;
    for (size_t r = 0; r < n; r++) {
        IdxFile *files = NULL;
        size_t nf = 0;
        StoError se = { 0 };
        if (!res[r].id || !idx_instances_of(&se, srv->db, res[r].level, res[r].id, &files, &nf)) {
            free(files);
            if (!res[r].id || se.code == STO_ERR_NOT_FOUND || se.code == STO_ERR_ARG)
                srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown resource: %s",
                         res[r].id ? res[r].id : "(null)");
            else
                srv_error_from_sto(err, &se);
            goto out;
        }
        size_t first = out->n;
        for (size_t i = 0; i < nf; i++) {
            bool added;
            if (!idset_add(&seen, files[i].id, &added)) {
                free(files);
                srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
                goto out;
            }
            if (!added) continue;
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                RetrieveItem *p = realloc(out->items, nc * sizeof *p);
                if (!p) {
                    free(files);
                    srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
                    goto out;
                }
                out->items = p;
                cap = nc;
            }
            RetrieveItem *it = &out->items[out->n++];
            memset(it, 0, sizeof *it);
            snprintf(it->id, sizeof it->id, "%s", files[i].id);
            snprintf(it->uuid, sizeof it->uuid, "%s", files[i].uuid);
            it->size = files[i].size;
        }
        /* SOP UIDs and transfer syntaxes of the new items, read RETRIEVE_BATCH rows at a
         * time in one snapshot each; an instance deleted meanwhile is dropped */
        size_t keep = first;
        for (size_t b = first; b < out->n; b += RETRIEVE_BATCH) {
            size_t k = out->n - b < RETRIEVE_BATCH ? out->n - b : RETRIEVE_BATCH;
            const char *ids[RETRIEVE_BATCH];
            for (size_t j = 0; j < k; j++) ids[j] = out->items[b + j].id;
            if (!rows && !(rows = calloc(RETRIEVE_BATCH, sizeof *rows))) {
                free(files);
                srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
                goto out;
            }
            if (!idx_resources_get(&se, srv->db, IDX_INSTANCE, ids, k, IDX_GET_TAGS | IDX_GET_META,
                                   rows)) {
                free(files);
                srv_error_from_sto(err, &se);
                goto out;
            }
            for (size_t j = 0; j < k; j++) {
                RetrieveItem it = out->items[b + j];
                if (rows[j].id[0]) {
                    copy_uid(it.transfer_syntax, idx_resource_metadata(&rows[j], "TransferSyntax"));
                    copy_uid(it.sop_class_uid, idx_resource_metadata(&rows[j], "SopClassUid"));
                    for (size_t t = 0; t < rows[j].ntags; t++)
                        if (rows[j].tag_keys[t] == 0x00080018)
                            copy_uid(it.sop_instance_uid, rows[j].tag_values[t]);
                    out->total_size += it.size;
                    out->items[keep++] = it;
                }
                idx_resource_cleanup(&rows[j]);
            }
        }
        out->n = keep;
        free(files);
    }
    ok = true;
out:
    free(seen.slots);
    free(rows);
    if (!ok) retrieve_list_cleanup(out);
    return ok;
}

bool retrieve_read(SrvError *err, const RetrieveFile *f, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t n = (size_t)f->item->size;
    unsigned char *p = malloc(n ? n : 1);
    if (!p) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory reading %s", f->item->id);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, p + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(p);
            return srv_fail(err, SRV_INEXISTENT_FILE, "cannot read the file of %s: %s", f->item->id,
                            r < 0 ? strerror(errno) : "short file");
        }
        got += (size_t)r;
    }
    *buf = p;
    *len = n;
    return true;
}

int retrieve_open(SrvError *err, Srv *srv, const RetrieveItem *it, uint64_t *size)
{
    StoError se = { 0 };
    int fd = sto_area_open_fd(&se, srv->area, it->uuid, size);
    if (fd < 0) srv_fail(err, SRV_INEXISTENT_FILE, "instance %s: file %s cannot be opened: %s", it->id, it->uuid, se.message);
    return fd;
}

/* An item's file, opened (fd -1 and se set when it cannot be). */
typedef struct Opened {
    int fd;
    uint64_t size;
    StoError se;
} Opened;

static Opened open_item(Srv *srv, const RetrieveList *list, size_t i)
{
    Opened o = { -1, 0, { 0 } };
    if (i < list->n) o.fd = sto_area_open_fd(&o.se, srv->area, list->items[i].uuid, &o.size);
    return o;
}

/* Hands item i's opened file to the sink, with item next_i's (next, borrowed) for its
 * read-ahead; closes cur. RETRIEVE_FAILED (logged) when cur could not be opened. */
static int hand_over(SrvError *err, Srv *srv, const RetrieveList *list, size_t i, Opened *cur,
                     size_t next_i, const Opened *next, const RetrieveSink *sink)
{
    const RetrieveItem *it = &list->items[i];
    if (cur->fd < 0) {
        SRV_LOG_WARN("retrieve", "instance %s: file %s cannot be opened: %s", it->id, it->uuid,
                     cur->se.message);
        return RETRIEVE_FAILED;
    }
    char path[PATH_MAX];
    sto_area_path(srv->area, it->uuid, path, sizeof path);
    RetrieveItem item = *it;
    item.size = cur->size; /* the file as it is now */
    bool ahead = next->fd >= 0;
    RetrieveFile f = { &item, i, cur->fd, path, ahead ? &list->items[next_i] : NULL,
                       ahead ? next->fd : -1, ahead ? next->size : 0 };
    int r = sink->file(sink->ctx, err, &f);
    close(cur->fd);
    cur->fd = -1;
    return r;
}

int retrieve_send(SrvError *err, Srv *srv, const RetrieveList *list, size_t i, size_t next,
                  const RetrieveSink *sink)
{
    /* the next one is opened here for the read-ahead and again at its own turn (another
     * thread's, maybe): the sink recognises it by device, inode and size */
    Opened cur = open_item(srv, list, i), ahead = open_item(srv, list, next);
    int r = hand_over(err, srv, list, i, &cur, next, &ahead, sink);
    if (ahead.fd >= 0) close(ahead.fd);
    return r;
}

void retrieve_store_file(const RetrieveFile *f, DcmStoreFile *sf, DcmStoreFile *next)
{
    *next = (DcmStoreFile){ f->next_fd, f->next_size, f->next ? f->next->sop_class_uid : NULL,
                            f->next ? f->next->sop_instance_uid : NULL,
                            f->next ? f->next->transfer_syntax : NULL, NULL };
    *sf = (DcmStoreFile){ f->fd, f->item->size, f->item->sop_class_uid, f->item->sop_instance_uid,
                          f->item->transfer_syntax, f->next ? next : NULL };
}

bool retrieve_run(SrvError *err, Srv *srv, const RetrieveList *list, size_t from,
                  const RetrieveSink *sink, RetrieveStats *stats, bool *canceled)
{
    RetrieveStats st = { list->n, 0, 0, 0 };
    if (canceled) *canceled = false;
    for (size_t i = 0; i < from && i < list->n; i++) st.completed++; /* done in an earlier run */
    bool ok = true;
    /* Each file is opened one turn ahead, so that the sink can read it ahead (RetrieveFile.next). */
    Opened next = open_item(srv, list, from);
    for (size_t i = from; i < list->n; i++) {
        Opened cur = next;
        next = open_item(srv, list, i + 1);
        int r = hand_over(err, srv, list, i, &cur, i + 1, &next, sink);
        if (r == RETRIEVE_ABORT) {
            ok = false;
            break;
        }
        if (r == RETRIEVE_SENT) st.completed++;
        else if (r == RETRIEVE_WARNING) st.warning++;
        else st.failed++;
        if (sink->progress && !sink->progress(sink->ctx, &st)) {
            if (canceled) *canceled = true;
            break;
        }
    }
    if (next.fd >= 0) close(next.fd);
    if (stats) *stats = st;
    return ok;
}
