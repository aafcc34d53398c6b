/* fuzz_ingest_fast.c -- parse and index at hundreds of executions per second: every input goes
 * through ingest_buffer() (header parse, main tags, SHA-1 IDs, the file write and the index
 * transaction), as in fuzz_ingest, but the store lives in /dev/shm (tmpfs: no disk, no fsync;
 * SyncStorageArea off) in one folder reused for the whole run, nothing is read back or
 * deleted per input, and the store is emptied every 1000 new instances. fuzz_ingest keeps the
 * full path (cache read-back as JSON, deletes); CI's fuzz budget goes to this one
 * (scripts/fuzz.sh). */
#include "tests/fuzz/fuzz_common.h"

static unsigned stored;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store_at(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_DICOM, .remote_ip = "127.0.0.1",
                            .remote_aet = "FUZZ", .called_aet = "ORTHANC" };
    if (ingest_buffer(&err, &fuzz_srv, data, size, &origin, &res) && !res.already_stored &&
        ++stored % 1000 == 0)
        fuzz_reset_store();
    return 0;
}
