/* fuzz_create_dicom.c -- POST /tools/create-dicom bodies through the route table and the real
 * handler: JSON (Tags with names, gggg,eeee keys, sequences; Parent; Content as a data URI),
 * base64, and the PNG (libpng), JPEG-header and PDF paths of dcm_create, then the ingest of
 * the created file into the fuzz store. Every body must get an answer (200 or an error). */
#include "rest/rest_int.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) return 0;
    RestCall call;
    memset(&call, 0, sizeof call);
    call.srv = &fuzz_srv;
    call.resp_fd = -1;
    call.method = "POST";
    call.url = strdup("/tools/create-dicom");
    call.segbuf = strdup("tools/create-dicom");
    call.seg[0] = call.segbuf;
    call.segbuf[5] = '\0';
    call.seg[1] = call.segbuf + 6;
    call.nseg = 2;
    call.body = size ? (const char *)data : NULL; /* as http.c: the whole body, before dispatch */
    call.body_len = size;
    rest_dispatch(&call);
    if (!call.status) abort(); /* every body answers */
    free(call.resp);
    if (call.resp_fd >= 0) close(call.resp_fd);
    free(call.url);
    free(call.segbuf);
    return 0;
}
