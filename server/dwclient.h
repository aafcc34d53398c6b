/* dwclient.h -- the DICOMweb client, as Orthanc's DICOMweb plugin offers it under
 * /dicom-web/servers (server/dwclient.c, prefix dwc_).
 *
 * Servers: DicomWeb.Servers (Orthanc's peer forms, plus the plugin's own keys such as HasDelete,
 * kept and shown as strings) plus those added with PUT, saved to
 * IndexDirectory/dicomweb-servers.json (a server/remotes.c registry).
 * get / qido: one request to the server (Uri relative to its URL, Arguments as the query,
 * HttpHeaders added). retrieve: WADO-RS of studies / series / instances, the multipart answer
 * split as it arrives (server/multipart.c) and each part stored through the one ingest path (one instance in memory
 * at a time). stow: STOW-RS of stored resources, the multipart body written from the files as
 * curl sends it (batches of instances, Content-Length known up front).
 * Threads: any thread.
 */
#ifndef MP_DWCLIENT_H
#define MP_DWCLIENT_H

#include "server/httpc.h"

bool dwc_init(SrvError *err, Srv *srv);
void dwc_cleanup(void);

bool dwc_get(const char *name, HttpcRemote *out);
cJSON *dwc_list_json(bool expand);
bool dwc_put(SrvError *err, const char *name, const cJSON *body);
bool dwc_delete(SrvError *err, const char *name);

/* POST /dicom-web/servers/{name}/get and /qido: body {"Uri", "Arguments"?, "HttpHeaders"?}.
 * The server's answer: *status, its Content-Type, its body (malloc'd). A non-2xx answer or a
 * transport failure: SRV_NETWORK_PROTOCOL. */
bool dwc_request(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body, const char *accept,
                 char ctype[256], char **out, size_t *len);

/* The /qido answer as Orthanc's plugin reshapes the server's DICOM JSON: each attribute becomes
 * {"Group", "Element", "Name" (dictionary name, "Unknown Tag & Data"), "vr", "Value" (the first
 * value when it is a string or a person name's Alphabetic form; absent otherwise)}. In place. */
void dwc_qido_simplify(cJSON *answer);

/* retrieve and stow: new checks the body (400/404 before any request), run does it all now,
 * submit makes it a job ("DicomWebWadoRetrieveClient" / "DicomWebStowClient"). */
typedef struct DwcTransfer DwcTransfer;
DwcTransfer *dwc_retrieve_new(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body);
DwcTransfer *dwc_stow_new(SrvError *err, Srv *srv, const HttpcRemote *server, const cJSON *body);
void dwc_transfer_free(DwcTransfer *t);
bool dwc_transfer_async(const DwcTransfer *t);
bool dwc_transfer_run(SrvError *err, DwcTransfer *t);
cJSON *dwc_transfer_result(const DwcTransfer *t);
bool dwc_transfer_submit(SrvError *err, DwcTransfer *t, char job_id[JOB_ID_LEN]);
extern const JobType dwc_retrieve_job_type, dwc_stow_job_type;

#endif
