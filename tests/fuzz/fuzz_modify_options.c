/* fuzz_modify_options.c -- the JSON options of POST /{level}/{id}/anonymize and /modify:
 * the body is parsed with cJSON as the REST layer does (rest_body_json) and checked by
 * modify_request_new() against the stored instance at each level, for both operations. No
 * job is submitted: this is the validation that runs before any job exists. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store();
    if (!fuzz_seed.ids[IDX_INSTANCE][0]) { fprintf(stderr, "fuzz: no seed instance\n"); exit(1); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!body) return 0;
    for (int level = 0; level < IDX_LEVELS; level++) {
        for (int anon = 0; anon < 2; anon++) {
            SrvError err = { 0 };
            ModifyRequest *rq = modify_request_new(&err, &fuzz_srv, level, fuzz_seed.ids[level], body, anon);
            if (rq) {
                (void)modify_request_async(rq);
                (void)modify_request_priority(rq);
            }
            modify_request_free(rq);
        }
    }
    cJSON_Delete(body);
    return 0;
}
