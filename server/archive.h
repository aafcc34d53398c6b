/* archive.h -- ZIP archives and media (DICOMDIR) of stored resources, streamed or as jobs, and
 * ZIP uploads (server/archive.c, prefix archive_).
 *
 * Streams: archive_stream_open() resolves the resources into the ordered file list (the one
 * retrieve path, server/retrieve.c) and starts a writer thread ("archive") that feeds the
 * files, one at a time from disk, to libarchive's ZIP writer (stored, Zip64 when needed), whose
 * output goes through a 1 MB buffer that archive_stream_read() drains: the HTTP layer sends the
 * ZIP while it is being read from disk, and memory stays bounded whatever the study size.
 * Jobs: the same writer into a temporary file, one instance per step; the output is fetched
 * with archive_job_output() (GET /jobs/{id}/archive) and removed with the job.
 * Threads: any thread.
 */
#ifndef MP_ARCHIVE_H
#define MP_ARCHIVE_H

#include <sys/types.h>

#include "server/retrieve.h"
#include "server/server.h"

typedef struct ArchiveRequest {
    const RetrieveResource *resources;
    size_t n;
    bool media;              /* IMAGES/IMn files plus a DICOMDIR, instead of Orthanc's folders */
    const char *transcode;   /* transfer syntax UID to write the files in; NULL: as stored */
} ArchiveRequest;

typedef struct ArchiveStream ArchiveStream;

/* Lists the files (SRV_UNKNOWN_RESOURCE for an unknown resource: nothing started) and starts
 * the writer thread. *out for archive_stream_read/close. */
bool archive_stream_open(SrvError *err, Srv *srv, const ArchiveRequest *req, ArchiveStream **out);
/* Up to max bytes of the ZIP into buf; blocks until some are ready. Returns the count, 0 at
 * the end, -1 if the writer failed (the ZIP is then incomplete: the caller drops the
 * connection). One reader thread. */
ssize_t archive_stream_read(ArchiveStream *s, char *buf, size_t max);
/* Stops the writer (if still running), joins it and frees everything. NULL is fine. */
void archive_stream_close(ArchiveStream *s);

/* Queues an archive job (type "Archive" or "Media"); its content says the sizes, as Orthanc's.
 * The job owns copies of everything in req. */
bool archive_job_submit(SrvError *err, Srv *srv, const ArchiveRequest *req, int priority,
                        char id[JOB_ID_LEN]);
/* The ZIP of a finished archive job: an fd open at 0 (caller closes) and its size.
 * SRV_UNKNOWN_RESOURCE: no such job; SRV_BAD_SEQUENCE_OF_CALLS: not an archive job, or not
 * finished with success. */
bool archive_job_output(SrvError *err, const char *job_id, int *fd, uint64_t *size);

/* ZIP upload: true if buf looks like a ZIP file (local file header signature). */
bool archive_is_zip(const void *buf, size_t len);
/* Stores every DICOM file of the ZIP through ingest_buffer(), one entry in memory at a time;
 * entries that are not DICOM (or directories) are skipped. each() is called with each stored
 * instance's result. Refused (SRV_BAD_REQUEST with status 413, nothing more stored) when the
 * entries together inflate beyond max_total bytes, or an entry beyond its declared size (ZIP
 * bomb). Errors of ingest other than a bad format (full storage, ...) stop the walk. */
bool archive_ingest_zip(SrvError *err, Srv *srv, const void *buf, size_t len, uint64_t max_total,
                        const IngestOrigin *origin,
                        void (*each)(void *ctx, const IngestResult *res), void *ctx);

#endif
