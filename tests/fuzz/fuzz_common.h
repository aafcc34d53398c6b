/* fuzz_common.h -- what the fuzz targets share: a real Srv (storage area and SQLite index) in
 * a temporary directory, opened once per process and removed at exit, with one instance
 * (CT_small.dcm from pydicom, when present) stored so that resource routes and modify/anonymize
 * options have something to point at. Header-only: each target is one translation unit. */
#ifndef MP_FUZZ_COMMON_H
#define MP_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "server/server.h"
#include "storage/storage.h"

static Srv fuzz_srv;
static char fuzz_dir[64];
static IngestResult fuzz_seed; /* IDs of the stored instance ("" if none) */
static void *fuzz_seed_buf;    /* its bytes, to store it again (fuzz_reseed) */
static size_t fuzz_seed_len;

static void fuzz_cleanup(void)
{
    srv_close(&fuzz_srv);
    free(fuzz_seed_buf);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir);
}

static bool fuzz_read_file(const char *path, void **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = *buf && n > 0 ? fread(*buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return *buf != NULL;
}

/* Opens the store in a new folder under `parent` (no seed instance); quiet logs. Exits on
 * failure: a fuzz run without its store is useless. */
static void fuzz_open_store_at(const char *parent)
{
    CfgError ce = { 0 };
    DcmError de = { 0 };
    SrvError se = { 0 };
    srv_log_set_level("error");
    if (!dcm_global_init(&de)) { fprintf(stderr, "fuzz: dcm_global_init: %s\n", de.message); exit(1); }
    if (!cfg_load(&ce, NULL, &fuzz_srv.cfg)) { fprintf(stderr, "fuzz: cfg: %s\n", ce.message); exit(1); }
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/mp-fuzz.XXXXXX", parent);
    if (!mkdtemp(fuzz_dir)) { perror("mkdtemp"); exit(1); }
    free(fuzz_srv.cfg.storage_dir);
    free(fuzz_srv.cfg.index_dir);
    fuzz_srv.cfg.storage_dir = strdup(fuzz_dir);
    fuzz_srv.cfg.index_dir = strdup(fuzz_dir);
    fuzz_srv.cfg.sync_storage = false;
    fuzz_srv.cfg.dicom_cache_size = 4;
    if (!srv_open(&se, &fuzz_srv)) { fprintf(stderr, "fuzz: srv_open: %s\n", se.message); exit(1); }
    atexit(fuzz_cleanup);
}

/* Empties the store (same folder): closes it, removes its content, opens it again. */
static inline void fuzz_reset_store(void)
{
    SrvError se = { 0 };
    srv_close(&fuzz_srv);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: cannot empty %s\n", fuzz_dir);
    if (!srv_open(&se, &fuzz_srv)) { fprintf(stderr, "fuzz: srv_open: %s\n", se.message); exit(1); }
}

/* The store in /tmp with one instance (CT_small.dcm from pydicom) stored. */
static inline void fuzz_open_store(void)
{
    SrvError se = { 0 };
    fuzz_open_store_at("/tmp");
    const char *files = getenv("PYDICOM_FILES");
    char path[512];
    snprintf(path, sizeof path, "%s/CT_small.dcm",
             files ? files : "/usr/lib/python3/dist-packages/pydicom/data/test_files");
    void *buf;
    size_t len;
    if (fuzz_read_file(path, &buf, &len)) {
        if (!ingest_buffer(&se, &fuzz_srv, buf, len, NULL, &fuzz_seed))
            fprintf(stderr, "fuzz: cannot store %s: %s\n", path, se.message);
        fuzz_seed_buf = buf;
        fuzz_seed_len = len;
    }
}

/* Stores the seed instance again after a call that may have deleted or changed it (a no-op
 * answer, AlreadyStored, when it is still there). */
static inline void fuzz_reseed(void)
{
    SrvError se = { 0 };
    IngestResult r;
    if (fuzz_seed_buf) (void)ingest_buffer(&se, &fuzz_srv, fuzz_seed_buf, fuzz_seed_len, NULL, &r);
}

#endif
