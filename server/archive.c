/* archive.c -- ZIP archives and media of stored resources, streamed or as jobs; ZIP uploads.
 * See archive.h.
 *
 * DESIGN: one writer (Writer) turns the retrieve path's files into ZIP entries with libarchive
 * (format zip, entries stored: DICOM pixel data barely compress and deflate would cost most of
 * the time; libarchive switches to Zip64 records past 4 GB or 65,535 entries). Its output goes
 * to a callback: the bounded ring of a stream (HTTP) or an unnamed temporary file (jobs).
 * Folder names follow Orthanc 1.10.1: "<PatientID> <PatientName>/<AccessionNumber>
 * <StudyDescription>/<Modality> <SeriesDescription>/<MO>nnnnnn.dcm", kept to ASCII letters,
 * digits, '.', '_' and single spaces, "Unknown Study"/"Unknown Series" when empty, "-2", "-3"
 * for siblings with the same name. Media: "IMAGES/IMn" and a DICOMDIR written by DCMTK over a
 * temporary folder of symbolic links to the stored files (dicom/dcmtk_dicomdir.cpp).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/buf.h"
#include "dicom/dicom.h"
#include "server/archive.h"
#include "storage/storage.h"

#define RING_SIZE ((size_t)1 << 20)
#define CHUNK ((size_t)256 << 10)

/* ---- the writer ---------------------------------------------------------------------------- */

typedef struct Folder {
    char id[IDX_ID_LEN];
    char parent[IDX_ID_LEN];   /* "" for a patient */
    char name[128];
    char prefix[3];            /* series: modality letters for file names */
    unsigned counter;          /* series: files written */
} Folder;

typedef la_ssize_t (*WriterOut)(void *ctx, const void *buf, size_t n);

typedef struct Writer {
    Srv *srv;
    struct archive *a;
    bool media;
    char *transcode;
    Buf folders;                 /* Folder[] */
    char media_root[PATH_MAX];   /* media: temporary folder of links */
    DcmDicomDir *dicomdir;       /* media: records added as files are archived */
    Buf media_files;             /* char *[]: file IDs added so far */
    uint64_t uncompressed;
    size_t written;              /* entries */
    WriterOut out;
    void *out_ctx;
    uint8_t *chunk;
    bool out_failed;             /* the consumer refused bytes (client gone): stop at the next step */
} Writer;

/* libarchive is never told that the consumer failed: an archive in its FATAL state is freed
 * without closing its output filter, whose state then leaks (libarchive 3.6). The bytes are
 * dropped instead and each writing step checks out_failed. */
static la_ssize_t writer_cb(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    Writer *w = ctx;
    if (w->out_failed) return (la_ssize_t)n;
    la_ssize_t k = w->out(w->out_ctx, buf, n);
    if (k < 0) {
        w->out_failed = true;
        return (la_ssize_t)n;
    }
    return k;
}

static bool writer_fail(SrvError *err, Writer *w, const char *what)
{
    if (w->out_failed) return srv_fail(err, SRV_INTERNAL, "archive: %s: the receiver went away", what);
    const char *m = w->a ? archive_error_string(w->a) : NULL;
    return srv_fail(err, SRV_INTERNAL, "archive: %s%s%s", what, m ? ": " : "", m ? m : "");
}

static bool writer_open(SrvError *err, Writer *w, Srv *srv, bool media, const char *transcode, WriterOut out,
                        void *out_ctx)
{
    memset(w, 0, sizeof *w);
    buf_init(&w->folders, (size_t)1 << 30);
    buf_init(&w->media_files, (size_t)1 << 30);
    w->srv = srv;
    w->media = media;
    w->out = out;
    w->out_ctx = out_ctx;
    if (transcode && !(w->transcode = strdup(transcode))) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    w->chunk = malloc(CHUNK);
    w->a = archive_write_new();
    if (!w->chunk || !w->a) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    if (archive_write_set_format_zip(w->a) != ARCHIVE_OK ||
        archive_write_set_options(w->a, "zip:compression=store") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
        archive_write_open(w->a, w, NULL, writer_cb, NULL) != ARCHIVE_OK)
        return writer_fail(err, w, "cannot start the ZIP");
    if (media) {
        const char *tmp = getenv("TMPDIR");
        snprintf(w->media_root, sizeof w->media_root, "%s/mp-media.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(w->media_root)) {
            w->media_root[0] = 0;
            return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot create a temporary folder: %s", strerror(errno));
        }
        char d[PATH_MAX + 8];
        snprintf(d, sizeof d, "%s/IMAGES", w->media_root);
        if (mkdir(d, 0700) != 0) return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot create %s", d);
        DcmError de = { 0 };
        if (!dcm_dicomdir_begin(&de, w->media_root, &w->dicomdir)) {
            srv_error_from_dcm(err, &de);
            return false;
        }
    }
    return true;
}

/* Frees everything; removes the media folder. Does not finish the ZIP. */
static void writer_cleanup(Writer *w)
{
    if (w->a) archive_write_free(w->a); /* also closes: harmless after writer_finish */
    w->a = NULL;
    dcm_dicomdir_free(w->dicomdir);
    w->dicomdir = NULL;
    if (w->media_root[0]) {
        char p[PATH_MAX + 64];
        for (size_t i = 0; i < BUF_COUNT(&w->media_files, char *); i++) {
            snprintf(p, sizeof p, "%s/%s", w->media_root, BUF_AT(&w->media_files, char *, i));
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/DICOMDIR", w->media_root);
        unlink(p);
        snprintf(p, sizeof p, "%s/IMAGES", w->media_root);
        rmdir(p);
        rmdir(w->media_root);
        w->media_root[0] = 0;
    }
    for (size_t i = 0; i < BUF_COUNT(&w->media_files, char *); i++) free(BUF_AT(&w->media_files, char *, i));
    buf_free(&w->media_files);
    buf_free(&w->folders);
    free(w->chunk);
    free(w->transcode);
    memset(w, 0, sizeof *w);
}

/* Orthanc's folder-name rule: ASCII letters, digits, '.', '_'; '^' and white space become one
 * space; others dropped; trimmed. */
static void keep_alnum(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool space = false;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && n + 1 < size; p++) {
        unsigned char c = *p == '^' ? ' ' : *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (n && !space) out[n++] = ' ';
            space = true;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '_' || c == '-') {
            out[n++] = (char)c;
            space = false;
        }
    }
    while (n && out[n - 1] == ' ') n--;
    out[n] = 0;
}

static const char *tag_of(const IdxResource *r, uint32_t tag)
{
    for (size_t i = 0; i < r->ntags; i++)
        if (r->tag_keys[i] == tag) return r->tag_values[i];
    return "";
}

static Folder *find_folder(Writer *w, const char *id)
{
    for (size_t i = BUF_COUNT(&w->folders, Folder); i-- > 0;)
        if (!strcmp(BUF_AT(&w->folders, Folder, i).id, id)) return &BUF_AT(&w->folders, Folder, i);
    return NULL;
}

/* The folder of a resource (level patient/study/series), created with a unique name among its
 * siblings on first use. Returns NULL with err set. */
static Folder *folder_of(SrvError *err, Writer *w, int level, const char *id)
{
    Folder *f = find_folder(w, id);
    if (f) return f;
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, w->srv->db, level, id, &r)) {
        srv_error_from_sto(err, &se);
        return NULL;
    }
    char a[200], b[200], base[128];
    const char *unknown = "";
    switch (level) {
    case IDX_PATIENT:
        keep_alnum(tag_of(&r, 0x00100020), a, sizeof a);
        keep_alnum(tag_of(&r, 0x00100010), b, sizeof b);
        unknown = "Unknown Patient";
        break;
    case IDX_STUDY:
        keep_alnum(tag_of(&r, 0x00080050), a, sizeof a);
        keep_alnum(tag_of(&r, 0x00081030), b, sizeof b);
        unknown = "Unknown Study";
        break;
    default:
        keep_alnum(tag_of(&r, 0x00080060), a, sizeof a);
        keep_alnum(tag_of(&r, 0x0008103e), b, sizeof b);
        unknown = "Unknown Series";
        break;
    }
    snprintf(base, sizeof base, "%.60s%s%.60s", a, a[0] && b[0] ? " " : "", b);
    if (!base[0]) snprintf(base, sizeof base, "%s", unknown);
    char parent[IDX_ID_LEN];
    snprintf(parent, sizeof parent, "%s", r.parent_id);
    char modality[8];
    keep_alnum(tag_of(&r, 0x00080060), modality, sizeof modality);
    idx_resource_cleanup(&r);
    if (level != IDX_PATIENT && !folder_of(err, w, level - 1, parent)) return NULL;
    Folder nf;
    memset(&nf, 0, sizeof nf);
    f = &nf;
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->parent, sizeof f->parent, "%s", level == IDX_PATIENT ? "" : parent);
    size_t nfolders = BUF_COUNT(&w->folders, Folder);
    for (unsigned k = 1;; k++) {
        if (k == 1) snprintf(f->name, sizeof f->name, "%s", base);
        else snprintf(f->name, sizeof f->name, "%.100s-%u", base, k);
        bool taken = false;
        for (size_t i = 0; i < nfolders && !taken; i++)
            taken = !strcmp(BUF_AT(&w->folders, Folder, i).parent, f->parent) &&
                    !strcmp(BUF_AT(&w->folders, Folder, i).name, f->name);
        if (!taken) break;
    }
    for (int i = 0; i < 2 && modality[i] && modality[i] != ' '; i++)
        f->prefix[i] = (char)(modality[i] >= 'a' && modality[i] <= 'z' ? modality[i] - 32 : modality[i]);
    if (buf_append(&w->folders, &nf, sizeof nf) != BUF_OK) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        return NULL;
    }
    return &BUF_AT(&w->folders, Folder, nfolders);
}

/* The ZIP path of an instance ("" media handled by the caller). */
static bool entry_path(SrvError *err, Writer *w, const char *instance, char *out, size_t size)
{
    IdxResource r = { 0 };
    StoError se = { 0 };
    if (!idx_resource_get(&se, w->srv->db, IDX_INSTANCE, instance, &r)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    char series[IDX_ID_LEN];
    snprintf(series, sizeof series, "%s", r.parent_id);
    idx_resource_cleanup(&r);
    Folder *se_f = folder_of(err, w, IDX_SERIES, series);
    if (!se_f) return false;
    Folder *st_f = find_folder(w, se_f->parent);
    Folder *pa_f = st_f ? find_folder(w, st_f->parent) : NULL;
    if (!st_f || !pa_f) return srv_fail(err, SRV_INTERNAL, "archive: folder lost");
    char file[32];
    unsigned c = se_f->counter++;
    if (!se_f->prefix[0]) snprintf(file, sizeof file, "%08u.dcm", c);
    else if (!se_f->prefix[1]) snprintf(file, sizeof file, "%c%07u.dcm", se_f->prefix[0], c);
    else snprintf(file, sizeof file, "%c%c%06u.dcm", se_f->prefix[0], se_f->prefix[1], c);
    snprintf(out, size, "%s/%s/%s/%s", pa_f->name, st_f->name, se_f->name, file);
    return true;
}

static bool write_header(SrvError *err, Writer *w, const char *path, uint64_t size)
{
    struct archive_entry *e = archive_entry_new();
    if (!e) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, time(NULL), 0);
    int rc = archive_write_header(w->a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK || w->out_failed) return writer_fail(err, w, "cannot write an entry header");
    w->written++;
    return true;
}

static bool write_all(SrvError *err, Writer *w, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        la_ssize_t k = archive_write_data(w->a, p, n);
        if (k <= 0 || w->out_failed) return writer_fail(err, w, "cannot write data");
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Copies size bytes from fd into the current entry, CHUNK at a time. */
static bool copy_fd(SrvError *err, Writer *w, int fd, uint64_t size)
{
    uint64_t left = size;
    while (left) {
        ssize_t k = read(fd, w->chunk, left < CHUNK ? (size_t)left : CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return srv_fail(err, SRV_INEXISTENT_FILE, "archive: stored file shorter than indexed");
        if (!write_all(err, w, w->chunk, (size_t)k)) return false;
        left -= (uint64_t)k;
    }
    return true;
}

/* One stored file into the ZIP (the retrieve sink). */
static int writer_file(void *ctx, SrvError *err, const RetrieveFile *f)
{
    Writer *w = ctx;
    char path[600];
    if (w->media) {
        size_t k = BUF_COUNT(&w->media_files, char *);
        snprintf(path, sizeof path, "IMAGES/IM%zu", k);
        char *copy = strdup(path);
        if (!copy || buf_append(&w->media_files, &copy, sizeof copy) != BUF_OK) {
            free(copy);
            return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory"), RETRIEVE_ABORT;
        }
        char link[PATH_MAX + 640];
        snprintf(link, sizeof link, "%s/%s", w->media_root, path);
        if (symlink(f->path, link) != 0)
            return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot link %s: %s", link, strerror(errno)), RETRIEVE_ABORT;
        dcm_dicomdir_add(w->dicomdir, path); /* reads the file (through the link) now */
    } else if (!entry_path(err, w, f->item->id, path, sizeof path)) {
        return RETRIEVE_ABORT;
    }
    if (w->transcode && strcmp(w->transcode, f->item->transfer_syntax) != 0) {
        void *buf = NULL, *out = NULL;
        size_t len = 0, olen = 0;
        if (!retrieve_read(err, f, &buf, &len)) return RETRIEVE_ABORT;
        bool ok = srv_transcode(err, buf, len, w->transcode, &out, &olen);
        free(buf);
        if (!ok) return RETRIEVE_ABORT;
        ok = write_header(err, w, path, olen) && write_all(err, w, out, olen);
        free(out);
        w->uncompressed += olen;
        return ok ? RETRIEVE_SENT : RETRIEVE_ABORT;
    }
    if (!write_header(err, w, path, f->item->size) || !copy_fd(err, w, f->fd, f->item->size)) return RETRIEVE_ABORT;
    w->uncompressed += f->item->size;
    return RETRIEVE_SENT;
}

/* Media: the DICOMDIR last; then the central directory. */
static bool writer_finish(SrvError *err, Writer *w)
{
    if (w->media) {
        DcmError de = { 0 };
        size_t skipped = 0;
        if (!dcm_dicomdir_end(&de, w->dicomdir, &skipped)) {
            srv_error_from_dcm(err, &de);
            return false;
        }
        if (skipped) SRV_LOG_WARN("archive", "%zu file(s) left out of the DICOMDIR", skipped);
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/DICOMDIR", w->media_root);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0) close(fd);
            return srv_fail(err, SRV_INTERNAL, "cannot read the DICOMDIR");
        }
        bool ok = write_header(err, w, "DICOMDIR", (uint64_t)st.st_size) && copy_fd(err, w, fd, (uint64_t)st.st_size);
        close(fd);
        if (!ok) return false;
    }
    if (archive_write_close(w->a) != ARCHIVE_OK || w->out_failed) return writer_fail(err, w, "cannot finish the ZIP");
    return true;
}

/* ---- streams ------------------------------------------------------------------------------- */

struct ArchiveStream {
    Srv *srv;
    RetrieveList list;
    Writer w;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *ring;
    size_t head, len;
    bool done, failed, abort;
};

static la_ssize_t ring_push(void *ctx, const void *buf, size_t n)
{
    ArchiveStream *s = ctx;
    const uint8_t *p = buf;
    size_t left = n;
    pthread_mutex_lock(&s->mu);
    while (left) {
        while (s->len == RING_SIZE && !s->abort) pthread_cond_wait(&s->cv, &s->mu);
        if (s->abort) {
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        size_t tail = (s->head + s->len) % RING_SIZE;
        size_t k = RING_SIZE - s->len;
        if (k > RING_SIZE - tail) k = RING_SIZE - tail;
        if (k > left) k = left;
        memcpy(s->ring + tail, p, k);
        s->len += k;
        p += k;
        left -= k;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return (la_ssize_t)n;
}

static void *stream_main(void *arg)
{
    ArchiveStream *s = arg;
    srv_thread_name("archive");
    SrvError err = { 0 };
    /* an aborted stream makes ring_push fail, so the sink stops at the next write */
    RetrieveSink sink = { .file = writer_file, .ctx = &s->w };
    RetrieveStats st = { 0 };
    bool canceled = false;
    bool ok = retrieve_run(&err, s->srv, &s->list, 0, &sink, &st, &canceled);
    if (ok && !canceled) ok = writer_finish(&err, &s->w);
    if (!ok) {
        pthread_mutex_lock(&s->mu);
        bool aborted = s->abort;
        pthread_mutex_unlock(&s->mu);
        if (!aborted) SRV_LOG_WARN("archive", "archive stream failed: %s", err.message);
    } else {
        SRV_LOG_INFO("archive", "archive of %zu instance(s) sent (%zu failed)", st.completed, st.failed);
    }
    pthread_mutex_lock(&s->mu);
    s->done = true;
    s->failed = !ok;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

bool archive_stream_open(SrvError *err, Srv *srv, const ArchiveRequest *req, ArchiveStream **out)
{
    *out = NULL;
    ArchiveStream *s = calloc(1, sizeof *s);
    if (!s) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    s->srv = srv;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!retrieve_list(err, srv, req->resources, req->n, &s->list)) goto fail;
    if (!(s->ring = malloc(RING_SIZE))) {
        srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        goto fail;
    }
    if (!writer_open(err, &s->w, srv, req->media, req->transcode, ring_push, s)) goto fail;
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
        srv_fail(err, SRV_INTERNAL, "cannot start the archive thread");
        goto fail;
    }
    s->started = true;
    *out = s;
    return true;
fail:
    archive_stream_close(s);
    return false;
}

ssize_t archive_stream_read(ArchiveStream *s, char *buf, size_t max)
{
    pthread_mutex_lock(&s->mu);
    while (s->len == 0 && !s->done) pthread_cond_wait(&s->cv, &s->mu);
    ssize_t r;
    if (s->len == 0) {
        r = s->failed ? -1 : 0;
    } else {
        size_t k = s->len < max ? s->len : max;
        if (k > RING_SIZE - s->head) k = RING_SIZE - s->head;
        memcpy(buf, s->ring + s->head, k);
        s->head = (s->head + k) % RING_SIZE;
        s->len -= k;
        r = (ssize_t)k;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void archive_stream_close(ArchiveStream *s)
{
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->abort = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    writer_cleanup(&s->w);
    retrieve_list_cleanup(&s->list);
    free(s->ring);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

typedef struct ArchiveJob {
    Srv *srv;
    bool media;
    char *transcode;
    RetrieveResource *res; /* ids owned */
    size_t nres;
    RetrieveList list;
    Writer w;
    bool started, finished;
    size_t next;
    int fd;                /* unnamed temporary file (O_TMPFILE) */
    _Atomic uint64_t archive_size;
    _Atomic size_t done_count;
    char id[JOB_ID_LEN];   /* set once submitted */
} ArchiveJob;

static pthread_mutex_t g_jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static Buf g_jobs = { .max = (size_t)1 << 30 }; /* ArchiveJob *[] */
#define NJOBS BUF_COUNT(&g_jobs, ArchiveJob *)
#define JOB_AT(i) BUF_AT(&g_jobs, ArchiveJob *, i)

static la_ssize_t file_out(void *ctx, const void *buf, size_t n)
{
    ArchiveJob *j = ctx;
    const uint8_t *p = buf;
    size_t left = n;
    while (left) {
        ssize_t k = write(j->fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        left -= (size_t)k;
    }
    j->archive_size += n;
    return (la_ssize_t)n;
}

static bool one_file(void *ctx, const RetrieveStats *st)
{
    (void)ctx;
    (void)st;
    return false; /* a job step is one file */
}

static int job_step(void *payload, SrvError *err)
{
    ArchiveJob *j = payload;
    if (!j->started) {
        if (!retrieve_list(err, j->srv, j->res, j->nres, &j->list)) return JOB_STEP_FAILURE;
        if (!writer_open(err, &j->w, j->srv, j->media, j->transcode, file_out, j)) return JOB_STEP_FAILURE;
        j->started = true;
    }
    if (j->next < j->list.n) {
        RetrieveSink sink = { .file = writer_file, .progress = one_file, .ctx = &j->w };
        bool canceled;
        if (!retrieve_run(err, j->srv, &j->list, j->next, &sink, NULL, &canceled)) return JOB_STEP_FAILURE;
        j->next++;
        j->done_count = j->next;
        if (j->next < j->list.n) return JOB_STEP_CONTINUE;
    }
    if (!j->finished) {
        if (!writer_finish(err, &j->w)) return JOB_STEP_FAILURE;
        j->finished = true;
    }
    return JOB_STEP_DONE;
}

static double job_progress(void *payload)
{
    ArchiveJob *j = payload;
    size_t n = j->list.n;
    return n ? (double)j->done_count / (double)(n + 1) : 0;
}

static void add_size(cJSON *o, const char *key, uint64_t v)
{
    char b[32], k[64];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    cJSON_AddStringToObject(o, key, b);
    snprintf(k, sizeof k, "%sMB", key);
    cJSON_AddNumberToObject(o, k, (double)(v >> 20));
}

static cJSON *job_content(void *payload)
{
    ArchiveJob *j = payload;
    cJSON *o = cJSON_CreateObject();
    add_size(o, "ArchiveSize", j->archive_size);
    cJSON_AddStringToObject(o, "Description", "REST API");
    cJSON_AddNumberToObject(o, "InstancesCount", (double)j->list.n);
    add_size(o, "UncompressedSize", j->list.total_size);
    return o;
}

static void job_reset(void *payload)
{
    ArchiveJob *j = payload;
    writer_cleanup(&j->w);
    retrieve_list_cleanup(&j->list);
    j->started = j->finished = false;
    j->next = 0;
    j->done_count = 0;
    j->archive_size = 0;
    if (ftruncate(j->fd, 0) != 0 || lseek(j->fd, 0, SEEK_SET) < 0)
        SRV_LOG_WARN("archive", "cannot truncate an archive job's file: %s", strerror(errno));
}

static void job_free(void *payload)
{
    ArchiveJob *j = payload;
    if (!j) return;
    pthread_mutex_lock(&g_jobs_mu);
    for (size_t i = 0; i < NJOBS; i++)
        if (JOB_AT(i) == j) {
            JOB_AT(i) = JOB_AT(NJOBS - 1);
            buf_set_len(&g_jobs, g_jobs.len - sizeof(ArchiveJob *));
            break;
        }
    pthread_mutex_unlock(&g_jobs_mu);
    writer_cleanup(&j->w);
    retrieve_list_cleanup(&j->list);
    for (size_t i = 0; i < j->nres; i++) free((char *)j->res[i].id);
    free(j->res);
    free(j->transcode);
    if (j->fd >= 0) close(j->fd);
    free(j);
}

static const JobType archive_type = {
    .name = "Archive", .max_parallel = 1, .step = job_step, .progress = job_progress,
    .content = job_content, .reset = job_reset, .free = job_free,
};
static const JobType media_type = {
    .name = "Media", .max_parallel = 1, .step = job_step, .progress = job_progress,
    .content = job_content, .reset = job_reset, .free = job_free,
};

bool archive_job_submit(SrvError *err, Srv *srv, const ArchiveRequest *req, int priority, char id[JOB_ID_LEN])
{
    /* unknown resources are refused now, as Orthanc does, not by a failed job */
    RetrieveList probe;
    if (!retrieve_list(err, srv, req->resources, req->n, &probe)) return false;
    retrieve_list_cleanup(&probe);
    ArchiveJob *j = calloc(1, sizeof *j);
    if (!j) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
    j->fd = -1;
    j->srv = srv;
    j->media = req->media;
    j->res = calloc(req->n ? req->n : 1, sizeof *j->res);
    if (!j->res || (req->transcode && !(j->transcode = strdup(req->transcode)))) goto oom;
    for (size_t i = 0; i < req->n; i++) {
        j->res[i].level = req->resources[i].level;
        if (!(j->res[i].id = strdup(req->resources[i].id))) goto oom;
        j->nres++;
    }
    j->fd = open(srv->cfg.storage_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        const char *tmp = getenv("TMPDIR");
        j->fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (j->fd < 0) {
        job_free(j);
        return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot create the archive file: %s", strerror(errno));
    }
    pthread_mutex_lock(&g_jobs_mu);
    if (buf_append(&g_jobs, &j, sizeof j) != BUF_OK) {
        pthread_mutex_unlock(&g_jobs_mu);
        goto oom;
    }
    pthread_mutex_unlock(&g_jobs_mu);
    char jid[JOB_ID_LEN];
    if (!jobs_submit(err, req->media ? &media_type : &archive_type, j, priority, jid)) return false; /* freed */
    pthread_mutex_lock(&g_jobs_mu);
    for (size_t i = 0; i < NJOBS; i++)
        if (JOB_AT(i) == j) snprintf(j->id, sizeof j->id, "%s", jid);
    pthread_mutex_unlock(&g_jobs_mu);
    memcpy(id, jid, JOB_ID_LEN);
    return true;
oom:
    job_free(j);
    return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
}

bool archive_job_output(SrvError *err, const char *job_id, int *fd, uint64_t *size)
{
    int state = jobs_state(job_id);
    if (state < 0) return srv_fail(err, SRV_UNKNOWN_RESOURCE, "unknown job: %s", job_id);
    bool ok = false;
    pthread_mutex_lock(&g_jobs_mu);
    ArchiveJob *j = NULL;
    for (size_t i = 0; i < NJOBS; i++)
        if (!strcmp(JOB_AT(i)->id, job_id)) j = JOB_AT(i);
    if (!j) {
        srv_fail(err, SRV_UNKNOWN_RESOURCE, "job %s has no archive output", job_id);
        err->http_status = 404;
    } else if (state != JOB_SUCCESS) {
        srv_fail(err, SRV_BAD_SEQUENCE_OF_CALLS, "job %s has not finished successfully", job_id);
    } else {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", j->fd);
        *fd = open(p, O_RDONLY | O_CLOEXEC); /* own file description: own offset */
        struct stat st;
        if (*fd < 0 || fstat(*fd, &st) != 0) {
            if (*fd >= 0) close(*fd);
            srv_fail(err, SRV_INTERNAL, "cannot reopen the archive: %s", strerror(errno));
        } else {
            *size = (uint64_t)st.st_size;
            ok = true;
        }
    }
    pthread_mutex_unlock(&g_jobs_mu);
    return ok;
}

/* ---- ZIP upload ------------------------------------------------------------------------------ */

bool archive_is_zip(const void *buf, size_t len)
{
    return len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0;
}

static struct archive *zip_reader(const void *buf, size_t len)
{
    struct archive *a = archive_read_new();
    if (!a) return NULL;
    if (archive_read_support_format_zip_seekable(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

bool archive_ingest_zip(SrvError *err, Srv *srv, const void *buf, size_t len, uint64_t max_total,
                        const IngestOrigin *origin, void (*each)(void *ctx, const IngestResult *res), void *ctx)
{
    /* pass 1: the central directory's sizes, before anything is inflated or stored */
    struct archive *a = zip_reader(buf, len);
    if (!a) return srv_fail(err, SRV_BAD_FILE_FORMAT, "not a readable ZIP file");
    struct archive_entry *e;
    uint64_t declared = 0;
    size_t entries = 0;
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        if (!archive_entry_size_is_set(e)) {
            archive_read_free(a);
            return srv_fail(err, SRV_BAD_FILE_FORMAT, "ZIP entry without a size in the central directory");
        }
        declared += (uint64_t)archive_entry_size(e);
        entries++;
        if (declared > max_total) {
            archive_read_free(a);
            srv_fail(err, SRV_BAD_REQUEST, "the ZIP inflates to more than %llu bytes: refused",
                     (unsigned long long)max_total);
            err->http_status = 413;
            return false;
        }
    }
    if (rc != ARCHIVE_EOF) {
        srv_fail(err, SRV_BAD_FILE_FORMAT, "not a readable ZIP file: %s", archive_error_string(a));
        archive_read_free(a);
        return false;
    }
    archive_read_free(a);

    /* pass 2: one entry at a time, never more than it declared */
    a = zip_reader(buf, len);
    if (!a) return srv_fail(err, SRV_BAD_FILE_FORMAT, "not a readable ZIP file");
    bool ok = true;
    size_t stored = 0, skipped = 0;
    while (ok && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        uint64_t size = (uint64_t)archive_entry_size(e);
        uint8_t *data = malloc(size + 1);
        if (!data) {
            ok = srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
            break;
        }
        uint64_t got = 0;
        for (;;) {
            la_ssize_t k = archive_read_data(a, data + got, (size_t)(size + 1 - got));
            if (k < 0) {
                ok = srv_fail(err, SRV_BAD_FILE_FORMAT, "ZIP entry %s: %s", archive_entry_pathname(e),
                              archive_error_string(a));
                break;
            }
            if (k == 0) break;
            got += (uint64_t)k;
            if (got > size) {
                ok = srv_fail(err, SRV_BAD_REQUEST, "ZIP entry %s inflates beyond its declared size: refused",
                              archive_entry_pathname(e));
                err->http_status = 413;
                break;
            }
        }
        if (ok) {
            IngestResult res;
            SrvError ie = { 0 };
            if (ingest_buffer(&ie, srv, data, (size_t)got, origin, &res)) {
                stored++;
                if (each) each(ctx, &res);
            } else if (ie.code == SRV_BAD_FILE_FORMAT) {
                skipped++;
                SRV_LOG_INFO("archive", "ZIP upload: %s is not DICOM, skipped", archive_entry_pathname(e));
            } else {
                *err = ie;
                ok = false;
            }
        }
        free(data);
    }
    if (ok && rc != ARCHIVE_EOF)
        ok = srv_fail(err, SRV_BAD_FILE_FORMAT, "not a readable ZIP file: %s", archive_error_string(a));
    archive_read_free(a);
    if (ok) SRV_LOG_INFO("archive", "ZIP upload: %zu stored, %zu skipped of %zu entries", stored, skipped, entries);
    return ok;
}
