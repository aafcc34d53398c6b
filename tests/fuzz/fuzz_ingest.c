/* fuzz_ingest.c -- the DICOM parse-and-index path: every input goes through ingest_buffer()
 * (header parse, main tags, SHA-1 IDs, file write, index transaction) exactly as a REST upload
 * or a C-STORE does; what gets stored is read back through the cache (full parse, tags as
 * JSON, as GET /tags does) and deleted again, so the store stays small. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST, .remote_ip = "127.0.0.1", .http_user = "fuzz" };
    if (!ingest_buffer(&err, &fuzz_srv, data, size, &origin, &res)) return 0;
    CacheEntry *e = cache_acquire(&err, &fuzz_srv, res.ids[IDX_INSTANCE]);
    if (e) {
        DcmError de = { 0 };
        cJSON *j = dcm_to_json(&de, cache_object(e), 0, 256);
        cJSON_Delete(j);
        cache_release(e);
    }
    if (strcmp(res.ids[IDX_PATIENT], fuzz_seed.ids[IDX_PATIENT]) != 0) {
        int rl;
        char rid[IDX_ID_LEN];
        srv_delete(&err, &fuzz_srv, IDX_PATIENT, res.ids[IDX_PATIENT], &rl, rid);
    } else if (!res.already_stored && strcmp(res.ids[IDX_INSTANCE], fuzz_seed.ids[IDX_INSTANCE]) != 0) {
        int rl;
        char rid[IDX_ID_LEN];
        srv_delete(&err, &fuzz_srv, IDX_INSTANCE, res.ids[IDX_INSTANCE], &rl, rid);
    }
    return 0;
}
