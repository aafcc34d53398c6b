/* dicomweb.h -- the DICOMweb services (server/dicomweb.c, prefix dw_): QIDO-RS answers on the
 * one query engine, WADO-RS metadata from the per-instance DICOM JSON kept at ingest, WADO-RS
 * retrieval as multipart/related through the one retrieve path, frames, bulk data.
 * rest/h_dicomweb.c maps HTTP onto these; nothing here knows about HTTP headers.
 *
 * URLs: every URL we print (RetrieveURL, BulkDataURI) starts with a base the REST layer
 * computes per request ("http://host:port/dicom-web": scheme from DicomWeb.Ssl or
 * X-Forwarded-Proto, host from DicomWeb.Host, X-Forwarded-Host or Host, the root from
 * DicomWeb.PublicRoot or Root, without the final '/').
 *
 * Threads: any; nothing is shared between calls.
 */
#ifndef MP_DICOMWEB_H
#define MP_DICOMWEB_H

#include <sys/types.h>

#include "common/buf.h"
#include "server/server.h"

/* The per-instance metadata item (hidden from /metadata listings) holding the instance's
 * DICOM JSON, BulkDataURIs starting with the 0x01 marker that stands for the base URL; stored
 * deflated and base64-coded ("z:<length>:<base64>"; see dicomweb.c), or plain (older). */
#define DW_METADATA_NAME "9999-DicomWebJson"
/* Text larger than this is not kept in the index (served from the file instead). */
#define DW_METADATA_MAX ((size_t)16 << 20)

/* Ingest's collect step: the instance's DICOM JSON in its stored form (malloc'd), or NULL when
 * DicomWeb is disabled, the text is too large, or it cannot be built (logged: never fails an
 * ingest). obj is the header-only parse. */
struct DcmObject;
char *dw_ingest_json(Srv *srv, const struct DcmObject *obj, const char *study_uid,
                     const char *series_uid, const char *sop_uid);

/* The resource a UID path names: level SRV_STUDY (study_uid), SRV_SERIES (+series_uid),
 * SRV_INSTANCE (+sop_uid; series_uid may be NULL for /studies/{s}/instances/{i}). UIDs must be
 * plain (no wildcard): else SRV_BAD_REQUEST. SRV_UNKNOWN_RESOURCE when nothing matches. */
bool dw_resolve(SrvError *err, Srv *srv, int level, const char *study_uid, const char *series_uid,
                const char *sop_uid, char id[SRV_ID_LEN]);

/* ---- QIDO-RS ------------------------------------------------------------------------------ */
typedef struct DwMatch {
    uint32_t tag;
    const char *value;       /* as received (UTF-8) */
} DwMatch;
typedef struct DwQuery {
    int level;               /* SRV_STUDY, SRV_SERIES, SRV_INSTANCE */
    const char *study_uid;   /* from the path, or NULL */
    const char *series_uid;  /* from the path, or NULL */
    const DwMatch *match;    /* attribute matching */
    size_t nmatch;
    const uint32_t *include; /* includefield tags */
    size_t ninclude;
    bool include_all;        /* includefield=all */
    bool fuzzy;              /* fuzzymatching=true */
    uint64_t limit, offset;  /* limit 0: none */
    const char *base;        /* base URL for RetrieveURL */
} DwQuery;
/* Appends the JSON array of answers to out (application/dicom+json). Default attributes come
 * from the index (main tags, computed counts, SOP class from the instance's metadata); only
 * included or matched attributes outside them are read from a stored file (by the engine). */
bool dw_qido(SrvError *err, Srv *srv, const DwQuery *q, Buf *out);

/* ---- streams (WADO-RS /metadata and multipart retrieval) ---------------------------------- */
typedef struct DwStream DwStream;
/* The JSON array of the DICOM JSON of every instance under /level/id (study, series or
 * instance), one instance at a time: the stored text (or, for an instance stored before, its
 * file parsed once and the text then kept), the marker replaced by base. */
DwStream *dw_metadata_open(SrvError *err, Srv *srv, int level, const char *id, const char *base);
/* multipart/related; type="application/dicom" of every instance under /level/id, each file as
 * stored (transfer_syntax NULL or "*"), or converted to transfer_syntax (server/transcode.c)
 * when it is in another. boundary: the multipart boundary (copied). Checked before the first
 * byte: SRV_NOT_ACCEPTABLE/406 when a file cannot be converted is found only while streaming
 * (the stream then ends early: logged). */
DwStream *dw_retrieve_open(SrvError *err, Srv *srv, int level, const char *id,
                           const char *transfer_syntax, const char *boundary);
/* Fills buf with up to max bytes: > 0 bytes, 0 at the end, -1 on failure (logged). */
ssize_t dw_stream_read(DwStream *s, char *buf, size_t max);
void dw_stream_free(DwStream *s); /* NULL is fine */

/* A random multipart boundary into out (at most 70 characters + NUL). */
void dw_boundary(char out[72]);

/* The first instance under /level/id (for /rendered and /thumbnail of a study or series: the
 * middle one of the first series, as a viewer's thumbnail). */
bool dw_representative_instance(SrvError *err, Srv *srv, int level, const char *id,
                                char out[SRV_ID_LEN]);

/* The instance's DICOM JSON as a tree (BulkDataURIs under base; base NULL: every binary
 * inline), for `Accept: application/dicom+json` on /instances/{id}/tags. */
cJSON *dw_instance_json(SrvError *err, Srv *srv, const char *instance_id, const char *base);

/* Frames of an instance stored in a native little-endian syntax, read straight from its file
 * (geometry from the kept DICOM JSON, position from PixelDataOffset; no DICOM parse): the fast
 * path of WADO-RS frames. 1: done (every frame handed to fn); 0: not applicable (another
 * syntax, no kept JSON, packed bits, ...: use image_frames); -1: failed (err set, e.g. a frame
 * out of range: 404). */
int dw_frames_native(SrvError *err, Srv *srv, const char *instance, const uint32_t *frames, size_t n,
                     SrvFrameFn fn, void *ctx);

/* The stored transfer syntax of an instance into out ("" when unknown). */
bool dw_instance_syntax(SrvError *err, Srv *srv, const char *instance_id, char out[68]);

#endif
