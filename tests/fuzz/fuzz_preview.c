/* fuzz_preview.c -- the pixel decoders through the preview route: every input is stored with
 * ingest_buffer() (so only what a client can store gets here) and then rendered exactly as
 * GET /instances/{id}/frames/{n}/preview and /rendered?width=..&smooth=1 and /image-uint16
 * do (server/image.c: file opened from disk, one frame decoded by DCMTK's RLE/JPEG/JPEG-LS
 * codecs or OpenJPEG, rendered, PNG/JPEG encoded), first and last frame, then deleted. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store();
    return 0;
}

static void render(const char *id, uint32_t frame, int kind, bool jpeg)
{
    SrvError err = { 0 };
    SrvImageRequest req = { .kind = kind, .jpeg = jpeg, .quality = 80, .width = 37, .height = 0,
                            .smooth = true, .rescale = true };
    void *body = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (image_render(&err, &fuzz_srv, id, frame, &req, &body, &len, &mime)) free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SrvError err = { 0 };
    IngestResult res;
    IngestOrigin origin = { .origin = INGEST_ORIGIN_REST, .remote_ip = "127.0.0.1" };
    if (!ingest_buffer(&err, &fuzz_srv, data, size, &origin, &res)) return 0;
    const char *id = res.ids[IDX_INSTANCE];
    uint32_t n = 0;
    if (image_frame_count(&err, &fuzz_srv, id, &n) && n > 0) {
        render(id, 0, SRV_IMAGE_PREVIEW, false);
        render(id, n - 1, SRV_IMAGE_RENDERED, true);
        render(id, 0, SRV_IMAGE_UINT16, false);
        void *raw = NULL;
        size_t len = 0;
        const char *mime = NULL;
        if (image_frame_raw(&err, &fuzz_srv, id, n - 1, NULL, &raw, &len, &mime)) free(raw);
    } else {
        render(id, 0, SRV_IMAGE_PREVIEW, false); /* the error path */
    }
    if (strcmp(id, fuzz_seed.ids[IDX_INSTANCE]) != 0) {
        int rl;
        char rid[IDX_ID_LEN];
        srv_delete(&err, &fuzz_srv, IDX_PATIENT, res.ids[IDX_PATIENT], &rl, rid);
    }
    return 0;
}
