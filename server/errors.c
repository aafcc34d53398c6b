/* errors.c -- one place that turns error codes into text and HTTP statuses, and leaf errors
 * (storage, dicom) into SrvError. The codes and texts are Orthanc's, so that clients that
 * look at OrthancStatus / OrthancError see what they expect. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

bool srv_fail(SrvError *err, int code, const char *fmt, ...)
{
    if (!err) return false;
    err->code = code;
    err->http_status = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

static const struct {
    int code;
    int http;
    const char *text;
} table[] = {
    { SRV_INTERNAL, 500, "Internal error" },
    { SRV_SUCCESS, 200, "Success" },
    { SRV_NOT_IMPLEMENTED, 501, "Not implemented yet" },
    { SRV_PARAMETER_OUT_OF_RANGE, 400, "Parameter out of range" },
    { SRV_NOT_ENOUGH_MEMORY, 503, "The server hosting Orthanc is running out of memory" },
    { SRV_BAD_PARAMETER_TYPE, 400, "Bad type for a parameter" },
    { SRV_BAD_SEQUENCE_OF_CALLS, 400, "Bad sequence of calls" },
    { SRV_INEXISTENT_ITEM, 404, "Accessing an inexistent item" },
    { SRV_BAD_REQUEST, 400, "Bad request" },
    { SRV_DICOM_FIND_UNAVAILABLE, 500, "DicomUserConnection: The C-FIND command is not supported by the remote SCP" },
    { SRV_CREATE_DICOM_USE_CONTENT, 400,
      "The payload of the DICOM instance must be specified according to Data URI scheme" },
    { SRV_NETWORK_PROTOCOL, 500, "Error in the network protocol" },
    { SRV_DATABASE, 500, "Error with the database engine" },
    { SRV_URI_SYNTAX, 400, "Badly formatted URI" },
    { SRV_INEXISTENT_FILE, 404, "Inexistent file" },
    { SRV_CANNOT_WRITE_FILE, 500, "Cannot write to file" },
    { SRV_BAD_FILE_FORMAT, 400, "Bad file format" },
    { SRV_TIMEOUT, 504, "Timeout" },
    { SRV_UNKNOWN_RESOURCE, 404, "Unknown resource" },
    { SRV_FULL_STORAGE, 507, "The file storage is full" },
    { SRV_CORRUPTED_FILE, 500, "Corrupted file (e.g. inconsistent MD5 hash)" },
    { SRV_INEXISTENT_TAG, 404, "Inexistent tag" },
    { SRV_READ_ONLY, 500, "Cannot modify a read-only data structure" },
    { SRV_UNKNOWN_DICOM_TAG, 400, "Unknown DICOM tag" },
    { SRV_BAD_JSON, 400, "Cannot parse a JSON document" },
    { SRV_UNAUTHORIZED, 401, "Bad credentials were provided to an HTTP request" },
    { SRV_EMPTY_REQUEST, 400, "Empty request" },
    { SRV_NOT_ACCEPTABLE, 406, "Cannot send a response which is acceptable according to the "
                               "Accept HTTP header" },
    { SRV_CANCELED_JOB, 500, "The job has been canceled" },
    { SRV_REVISION, 409, "A bad revision number was provided, which might indicate conflict "
                         "between multiple writers" },
    { SRV_DATABASE_UNAVAILABLE, 503, "The database is currently not available (probably a transient situation)" },
};

static size_t find(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code) return i;
    return 0; /* InternalError */
}

const char *srv_error_text(int code) { return table[find(code)].text; }

int srv_error_http_status(const SrvError *err)
{
    return err->http_status ? err->http_status : table[find(err->code)].http;
}

void srv_error_from_sto(SrvError *err, const StoError *e)
{
    int code;
    switch (e->code) {
    case STO_ERR_FULL: code = SRV_FULL_STORAGE; break;
    case STO_ERR_NOT_FOUND: code = SRV_UNKNOWN_RESOURCE; break;
    case STO_ERR_DB: code = SRV_DATABASE; break;
    case STO_ERR_NOMEM: code = SRV_NOT_ENOUGH_MEMORY; break;
    case STO_ERR_ARG: code = SRV_BAD_REQUEST; break;
    case STO_ERR_CONFLICT: code = SRV_REVISION; break; /* Orthanc: Revision, 409 */
    case STO_ERR_IO: code = SRV_CANNOT_WRITE_FILE; break;
    case STO_ERR_UNAVAILABLE: code = SRV_DATABASE_UNAVAILABLE; break;
    default: code = SRV_INTERNAL; break;
    }
    srv_fail(err, code, "%s", e->message);
    if (e->code == STO_ERR_CONFLICT && err) err->http_status = 409;
}

void srv_error_from_dcm(SrvError *err, const DcmError *e)
{
    int code;
    switch (e->code) {
    case DCM_ERR_FORMAT: code = SRV_BAD_FILE_FORMAT; break;
    case DCM_ERR_MISSING: code = SRV_BAD_FILE_FORMAT; break;
    case DCM_ERR_NOMEM: code = SRV_NOT_ENOUGH_MEMORY; break;
    case DCM_ERR_ARG: code = SRV_BAD_REQUEST; break;
    case DCM_ERR_NETWORK: code = SRV_NETWORK_PROTOCOL; break;
    default: code = SRV_INTERNAL; break;
    }
    srv_fail(err, code, "%s", e->message);
}
