/* main.c -- start-up and orderly shutdown. The only file that includes every module's
 * header: it loads the configuration, masks SIGINT/SIGTERM before the first thread starts
 * (so they reach only sigwait() here), starts the modules in order, waits for a signal, and
 * stops them in reverse order.
 *
 * usage: minipacs [Orthanc.json]   (without a file: embedded defaults)
 *
 * SIGHUP (also raised by POST /tools/reset, as Orthanc's reset) stops every module as SIGTERM
 * does (jobs saved, sockets closed, store closed), then reads the configuration file again and
 * starts them all again in the same process (run() below, once per life).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "housekeeper/housekeeper.h"
#include "rest/rest.h"
#include "server/modality.h"
#include "server/peers.h"
#include "server/dwclient.h"
#include "server/scu.h"
#include "server/server.h"

/* The housekeeper's before_trim: a DICOM cache that nobody used during a whole trimming
 * interval gives its memory back (up to DicomCacheSize, 128 MB, of parsed instances left by the
 * last anonymization); it refills on the next use. Runs on the housekeeper thread only. */
static void drop_idle_cache(void)
{
    static uint64_t last_uses = UINT64_MAX;
    uint64_t hits = 0, misses = 0;
    size_t bytes = 0, count = 0;
    cache_counters(&hits, &misses);
    cache_stats(&bytes, &count);
    if (hits + misses == last_uses && count > 0) {
        cache_clear();
        SRV_LOG_INFO("main", "DICOM cache idle for a trimming interval: released %zu entries, %zu MB",
                     count, bytes >> 20);
    }
    last_uses = hits + misses;
}

static void usage(void)
{
    fprintf(stderr, "usage: minipacs [--version] [Orthanc.json]\n");
}

/* One life of the server: the configuration read, the modules started, a signal awaited, the
 * modules stopped in reverse order. *reset: the signal was SIGHUP (start again). */
static int run(const char *path, const sigset_t *sigs, bool *reset)
{
    static Srv srv; /* modules keep pointers to it while they run */
    memset(&srv, 0, sizeof srv);
    *reset = false;
    CfgError ce = { 0 };
    if (!cfg_load(&ce, path, &srv.cfg)) {
        fprintf(stderr, "minipacs: configuration: %s\n", ce.message);
        return 1;
    }
    srv_log_set_level(srv.cfg.log_level);
    metrics_init(&srv);

    int rc = 1;
    Rest *rest = NULL;
    SrvError err = { 0 };
    DcmError de = { 0 };
    HkError he = { 0 };

    for (size_t i = 0; i < srv.cfg.ndictionary; i++) {
        const CfgDictEntry *d = &srv.cfg.dictionary[i];
        if (!dcm_dictionary_add(&de, d->tag, d->vr, d->name, d->min_multiplicity,
                                d->max_multiplicity, d->private_creator))
            SRV_LOG_WARN("main", "Dictionary entry %s: %s", d->name, de.message);
    }
    dcm_set_default_private_creator(srv.cfg.default_private_creator);
    if (!dcm_set_default_encoding(&de, srv.cfg.default_encoding ? srv.cfg.default_encoding : "Latin1")) {
        SRV_LOG_WARN("main", "DefaultEncoding: %s (keeping Latin1)", de.message);
        dcm_set_default_encoding(NULL, "Latin1");
    }
    /* the C-STORE SCP's run-time policy starts from its defaults in each life */
    dcm_scp_set_accepted_syntaxes(UINT64_MAX);
    dcm_scp_set_unknown_sop_class_accepted(false);
    if (!srv_open(&err, &srv)) {
        SRV_LOG_ERROR("main", "cannot open the store: %s", err.message);
        goto out;
    }
    HkConfig hk = { .interval_s = (unsigned)srv.cfg.memory_trimming_interval,
                    .malloc_arena_max = srv.cfg.malloc_arena_max,
                    .log = srv_log_callback,
                    .before_trim = drop_idle_cache };
    if (!hk_start(&he, &hk)) SRV_LOG_WARN("main", "housekeeper: %s", he.message);
    if (!srv_stable_start(&err, &srv)) {
        SRV_LOG_ERROR("main", "%s", err.message);
        goto stop;
    }
    jobs_register(&modify_job_type);
    jobs_register(&split_job_type);
    jobs_register(&merge_job_type);
    if (!modality_init(&err, &srv)) { /* REST-added modalities, before REST and DICOM */
        SRV_LOG_ERROR("main", "%s", err.message);
        goto stop;
    }
    if (!peers_init(&err, &srv) || !dwc_init(&err, &srv)) { /* peers, DICOMweb servers */
        SRV_LOG_ERROR("main", "%s", err.message);
        goto stop;
    }
    if (!jobs_start(&err, &srv)) {
        SRV_LOG_ERROR("main", "jobs: %s", err.message);
        goto stop;
    }
    if (!rest_start(&err, &srv, &rest)) {
        SRV_LOG_ERROR("main", "%s", err.message);
        goto stop;
    }
    if (!dimse_start(&err, &srv)) {
        SRV_LOG_ERROR("main", "DICOM listener: %s", err.message);
        goto stop;
    }
    SRV_LOG_INFO("main", "%s %s ready: HTTP %d, DICOM %s@%d, storage %s", MP_NAME, MP_VERSION,
                 srv.cfg.http_port, srv.cfg.dicom_aet, srv.cfg.dicom_port, srv.cfg.storage_dir);

    int sig = 0;
    sigwait(sigs, &sig);
    *reset = sig == SIGHUP;
    SRV_LOG_INFO("main", "signal %d: %s", sig, *reset ? "resetting (stop, then start again)" : "stopping");
    rc = 0;

stop:
    dimse_stop();
    jobs_stop(); /* first: a request waiting for a job is answered, then REST can stop */
    rest_stop(rest);
    srv_stable_stop(&srv);
    hk_stop();
    modality_cleanup();
    peers_cleanup();
    dwc_cleanup();
    scu_queries_cleanup();
    srv_close(&srv);
out:
    cfg_cleanup(&srv.cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", MP_NAME, MP_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (argv[i][0] == '-' || path) {
            usage();
            return 2;
        }
        path = argv[i];
    }
    srv_thread_name("main");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    SrvError err = { 0 };
    DcmError de = { 0 };
    dcm_set_log_fn(srv_log_callback);
    if (!httpc_global_init(&err)) { /* libcurl, before any thread */
        SRV_LOG_ERROR("main", "%s", err.message);
        return 1;
    }
    if (!dcm_global_init(&de)) {
        SRV_LOG_ERROR("main", "DICOM dictionary: %s", de.message);
        goto out;
    }
    bool reset;
    do rc = run(path, &sigs, &reset);
    while (rc == 0 && reset);
out:
    httpc_global_cleanup();
    if (rc == 0) SRV_LOG_INFO("main", "stopped");
    return rc;
}
