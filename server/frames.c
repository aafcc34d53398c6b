/* frames.c -- the frames of a stored instance (GET /instances/{id}/frames): how many there are,
 * from NumberOfFrames (1 when absent or not a positive number, as Orthanc), read through the
 * DICOM cache. */
#include <stdlib.h>

#include "dicom/dicom.h"
#include "server/server.h"

#define TAG_NUMBER_OF_FRAMES 0x00280008u

bool srv_instance_frames(SrvError *err, Srv *srv, const char *instance_id, unsigned *count)
{
    *count = 0;
    CacheEntry *ce = cache_acquire(err, srv, instance_id);
    if (!ce) return false;
    DcmError de = { 0 };
    char *v = NULL;
    int r = dcm_get_string(&de, cache_object(ce), TAG_NUMBER_OF_FRAMES, &v);
    cache_release(ce);
    long n = r == 1 && v ? strtol(v, NULL, 10) : 0;
    free(v);
    if (r < 0 && de.code != DCM_ERR_ARG) {
        srv_error_from_dcm(err, &de);
        return false;
    }
    *count = n > 0 && n < 1000000 ? (unsigned)n : 1;
    return true;
}
