/* fuzz_config.c -- the configuration parser (server/config.c) on arbitrary text: the input is
 * an Orthanc.json (comments, JSON, every option's type checks, users, modalities, dictionary
 * entries, user metadata), handed to cfg_load through a memfd so that it takes the same path as
 * a file on disk. Every input either loads (then is freed) or fails with a message; nothing
 * leaks, nothing reads outside the text. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server/server.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    srv_log_set_level("error"); /* unknown options are warned about: quiet */
    fd = memfd_create("fuzz-config", 0);
    if (fd < 0) { perror("memfd_create"); exit(1); }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) return 0;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    Cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    CfgError err = { 0 };
    if (cfg_load(&err, path, &cfg)) {
        if (!cfg.storage_dir || !cfg.index_dir) abort(); /* a loaded config is complete */
        cfg_cleanup(&cfg);
    } else if (!err.message[0]) {
        abort(); /* a refusal says why */
    }
    return 0;
}
