/* retrieve.h -- the one retrieve path (server/retrieve.c, prefix retrieve_).
 *
 * Resources of any level -> retrieve_list(): the ordered list of their stored files (patient,
 * study, series order as stored; instances in insertion order) with what a sender needs to
 * know without opening them (size, transfer syntax, SOP class and instance UIDs) ->
 * retrieve_run(): a sink called one file at a time, handed an open file descriptor (the sink
 * streams it, or reads it whole with retrieve_read() when it must parse it). Nothing holds more
 * than one file at a time: a 1 GB study leaves with RSS growing by one file at most.
 * Sinks: C-STORE SCU (C-MOVE, /modalities/{x}/store), C-GET on the requesting association;
 * archives and DICOMweb multipart add theirs. Long retrievals run as jobs (see modality.c).
 * Threads: any thread.
 */
#ifndef MP_RETRIEVE_H
#define MP_RETRIEVE_H

#include "server/server.h"

#define RETRIEVE_UID_LEN 65 /* 64 characters + NUL */

typedef struct RetrieveItem {
    char id[SRV_ID_LEN];                      /* instance public ID */
    char uuid[SRV_UUID_LEN];                  /* its file */
    uint64_t size;                            /* bytes on disk */
    char transfer_syntax[RETRIEVE_UID_LEN];   /* as stored ("" if unknown) */
    char sop_class_uid[RETRIEVE_UID_LEN];
    char sop_instance_uid[RETRIEVE_UID_LEN];
} RetrieveItem;

typedef struct RetrieveList {
    RetrieveItem *items;  /* malloc'd */
    size_t n;
    uint64_t total_size;
} RetrieveList;

typedef struct RetrieveResource {
    int level;            /* IDX_*, or -1: any level */
    const char *id;       /* public ID */
} RetrieveResource;

/* The files of the resources, in order, each instance once even when resources overlap.
 * SRV_UNKNOWN_RESOURCE names the first unknown resource. out: release with
 * retrieve_list_cleanup() (also after a failure). */
bool retrieve_list(SrvError *err, Srv *srv, const RetrieveResource *res, size_t n,
                   RetrieveList *out);
void retrieve_list_cleanup(RetrieveList *l); /* zeroes it */

/* What the sink gets for one file (borrowed for the call). fd is open read-only at offset 0;
 * the engine closes it after the call. */
typedef struct RetrieveFile {
    const RetrieveItem *item;
    size_t index;          /* position in the list */
    int fd;
    const char *path;      /* the file's path (for libraries that open files themselves) */
    /* The item the walk sends next and its open file, for sinks that read ahead while the peer
     * takes this one; NULL and -1 when there is none or it cannot be opened. Borrowed: the
     * engine closes it after its turn. */
    const RetrieveItem *next;
    int next_fd;
    uint64_t next_size;
} RetrieveFile;

/* Counts as C-MOVE/C-GET report them. */
typedef struct RetrieveStats {
    size_t total, completed, failed, warning;
} RetrieveStats;

/* Result of a sink for one file. */
enum { RETRIEVE_SENT = 0, RETRIEVE_WARNING = 1, RETRIEVE_FAILED = 2, RETRIEVE_ABORT = 3 };

typedef struct RetrieveSink {
    /* One file: RETRIEVE_SENT / _WARNING / _FAILED (counted, the walk goes on) or
     * RETRIEVE_ABORT (err filled: the walk stops and retrieve_run fails with it). */
    int (*file)(void *ctx, SrvError *err, const RetrieveFile *f);
    /* Optional, after each file: false stops the walk (cancel); retrieve_run then returns true
     * with *canceled set. */
    bool (*progress)(void *ctx, const RetrieveStats *st);
    void *ctx;
} RetrieveSink;

/* Runs the sink over items [from, list->n). A file missing on disk counts as failed (logged).
 * stats (may be NULL) gets the counts; canceled (may be NULL) tells a progress() stop. */
bool retrieve_run(SrvError *err, Srv *srv, const RetrieveList *list, size_t from,
                  const RetrieveSink *sink, RetrieveStats *stats, bool *canceled);

/* One file: item i of list opened and handed to sink->file (progress is not called), with
 * item next (>= list->n: none) as RetrieveFile.next for the sink's read-ahead;
 * RETRIEVE_FAILED when the file cannot be opened (logged). For the parallel C-MOVE
 * (server/dimse.c): several threads, each with the items it took from a shared cursor. */
int retrieve_send(SrvError *err, Srv *srv, const RetrieveList *list, size_t i, size_t next,
                  const RetrieveSink *sink);

/* The DcmStoreFile of f for a C-STORE sink, and of f->next for its read-ahead (in *next, which
 * must live as long as *sf; sf->next is NULL when there is nothing to read ahead). */
struct DcmStoreFile;
void retrieve_store_file(const RetrieveFile *f, struct DcmStoreFile *sf, struct DcmStoreFile *next);

/* Pull model, for senders that stream several files into one request (STOW-RS multipart):
 * opens the file of one item read-only; *size its size now. -1 and err (SRV_INEXISTENT_FILE)
 * when it is gone. The caller closes the fd. */
int retrieve_open(SrvError *err, Srv *srv, const RetrieveItem *it, uint64_t *size);

/* Reads the whole file of f (for sinks that must parse it). *buf malloc'd (free()). */
bool retrieve_read(SrvError *err, const RetrieveFile *f, void **buf, size_t *len);

#endif
