/* fuzz_router.c -- the REST front door without the socket. The input is
 *   "<user>:<password>\n<path>?<query>"                      (GET, or PATCH: 405/404), or
 *   "<user>:<password>\n<METHOD> <path>?<query>\n<body>"     (METHOD: POST, PUT or DELETE).
 * The credentials go through the Basic-auth check (constant-time comparison; libmicrohttpd
 * decodes the real header), the path through the same splitting rules as http.c ('.'/'..'
 * segments refused), then the route table and the handlers, against a store holding one
 * instance (stored again after a call that may have removed it). Every call must answer; the
 * reply is built as for a real client, then freed. */
#include "rest/rest_int.h"
#include "tests/fuzz/fuzz_common.h"

static CfgUser users[2] = { { "alice", "s3cret" }, { "bob", "pa:ss" } };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_open_store();
    return 0;
}

static void free_call(RestCall *c)
{
    free(c->resp);
    if (c->resp_fd >= 0) close(c->resp_fd);
    free(c->url);
    free(c->segbuf);
    free(c->user);
    for (size_t i = 0; i < c->nargs; i++) { free(c->args[i].key); free(c->args[i].value); }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = memchr(in, '\n', size);
    const char *path = in;
    if (nl) {
        *nl = '\0';
        Cfg cfg = { 0 };
        cfg.users = users;
        cfg.nusers = 2;
        char *user = NULL, *colon = strchr(in, ':');
        if (colon) *colon = '\0';
        (void)rest_auth_check_user(&cfg, in, colon ? colon + 1 : NULL, &user);
        free(user);
        path = nl + 1;
    }
    /* "METHOD path\nbody": the body is the rest of the input, NULs included */
    const char *method = (size & 1) ? "PATCH" : "GET";
    const char *body = NULL;
    size_t body_len = 0;
    static const char *const methods[] = { "POST", "PUT", "DELETE" };
    for (size_t m = 0; m < 3; m++) {
        size_t ml = strlen(methods[m]);
        if (!strncmp(path, methods[m], ml) && path[ml] == ' ') {
            method = methods[m];
            path += ml + 1;
            char *bl = memchr(path, '\n', (size_t)(in + size - path));
            if (bl) {
                *bl = '\0';
                body = bl + 1;
                body_len = (size_t)(in + size - body);
            }
            break;
        }
    }
    if (strlen(path) != (body ? (size_t)(body - 1 - path) : (size_t)(in + size - path))) {
        free(in); /* MHD strings have no NUL */
        return 0;
    }

    /* "@P", "@S", "@E", "@I" stand for the stored patient, study, series, instance: the
     * fuzzer reaches the handlers of existing resources without guessing SHA-1 IDs. */
    char expanded[8192];
    size_t o = 0;
    for (const char *p = path; *p && o + IDX_ID_LEN < sizeof expanded; p++) {
        const char *tok = p[0] == '@' ? strchr("PSEI", p[1] ? p[1] : '-') : NULL;
        if (tok && p[1]) {
            const char *id = fuzz_seed.ids[tok - "PSEI"];
            size_t n = strlen(id);
            memcpy(expanded + o, id, n);
            o += n;
            p++;
        } else {
            expanded[o++] = *p;
        }
    }
    expanded[o] = '\0';
    path = expanded;

    RestCall call;
    memset(&call, 0, sizeof call);
    call.srv = &fuzz_srv;
    call.resp_fd = -1;
    call.method = method;
    call.xml = size % 3 == 0; /* Accept: application/xml: every JSON answer through rest/xml.c */
    call.body = body_len ? body : NULL; /* as http.c: the whole body, set before dispatch */
    call.body_len = body_len;
    char *q = strchr(path, '?');
    call.url = strndup(path, q ? (size_t)(q - path) : strlen(path));
    if (q) { /* a=b&c */
        char *args = strdup(q + 1), *save = NULL;
        for (char *kv = strtok_r(args, "&", &save); kv && call.nargs < REST_MAX_ARGS; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0';
            call.args[call.nargs].key = strdup(kv);
            call.args[call.nargs].value = strdup(eq ? eq + 1 : "");
            call.nargs++;
        }
        free(args);
    }
    call.segbuf = strdup(call.url);
    char *save = NULL;
    for (char *s = strtok_r(call.segbuf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (call.nseg == REST_MAX_SEGMENTS) { call.nseg = 0; break; }
        if (!strcmp(s, ".") || !strcmp(s, "..")) call.bad_path = true;
        call.seg[call.nseg++] = s;
    }
    if (call.bad_path) rest_fail(&call, SRV_UNKNOWN_RESOURCE, "unknown route %s", call.url);
    else rest_dispatch(&call);
    if (!call.status) abort(); /* every route answers */
    free_call(&call);
    if (strcmp(method, "GET") && strcmp(method, "PATCH")) fuzz_reseed();
    free(in);
    return 0;
}
