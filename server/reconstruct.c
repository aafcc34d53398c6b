/* reconstruct.c -- Orthanc's reconstruct (POST /{level}/{id}/reconstruct, /tools/reconstruct):
 * the main DICOM tags of every instance under a resource are read again from the stored files
 * and rewritten in the index, with those of their series, study and patient (after a change of
 * DefaultEncoding, of the Dictionary, or an index edited by hand). Public IDs, metadata,
 * attachments and the changes log stay as they are. The files are read through the DICOM
 * cache (entry dropped first), one at a time.
 *
 * /tools/invalidate-tags: Orthanc drops the JSON summaries it keeps beside the files; ours are
 * the parsed copies in the DICOM cache, so it empties the cache. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

bool srv_reconstruct(SrvError *err, Srv *srv, int level, const char *id)
{
    if (!id) { /* the whole store, patient by patient */
        char **patients = NULL;
        size_t n = 0;
        if (!srv_resource_list(err, srv, SRV_PATIENT, 0, 0, &patients, &n)) return false;
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++) {
            SrvError e = { 0 };
            ok = srv_reconstruct(&e, srv, SRV_PATIENT, patients[i]);
            if (!ok && e.code == SRV_UNKNOWN_RESOURCE) ok = true; /* deleted meanwhile */
            else if (!ok) *err = e;
        }
        srv_strings_free(patients, n);
        if (ok) SRV_LOG_INFO("reconstruct", "reconstructed %zu patient(s)", n);
        return ok;
    }
    char **ids = NULL;
    size_t n = 0;
    if (!srv_resource_instances(err, srv, level, id, &ids, &n)) return false;
    bool ok = true;
    char last_series[SRV_ID_LEN] = "";
    for (size_t i = 0; ok && i < n; i++) {
        /* the upper levels once per series (from its first instance), as they share them */
        char series[SRV_ID_LEN];
        ok = srv_resource_ancestor(err, srv, SRV_INSTANCE, ids[i], SRV_SERIES, series);
        if (!ok) break;
        bool upper = strcmp(series, last_series) != 0;
        ok = ingest_reconstruct(err, srv, ids[i], upper);
        snprintf(last_series, sizeof last_series, "%s", series);
    }
    srv_strings_free(ids, n);
    return ok;
}

void srv_invalidate_tags(Srv *srv)
{
    (void)srv;
    cache_clear();
    SRV_LOG_INFO("reconstruct", "cached DICOM parses dropped (invalidate-tags)");
}
